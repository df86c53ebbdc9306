//! `PUT /:pkg` with attachments: new versions merged into the packument, their tarballs stored
//! once the merge has accepted them and before the metadata that names them.

use super::write::{Prepare, Reading};
use super::{Registry, RegistryError, Result, packument_key, tarball_key, verdaccio_db};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::provenance::Attestation;
use crate::package::{PackageName, deletion, publish};
use crate::storage::document::put_blob_once;
use crate::storage::{StorageKey, read_blob_bytes};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

impl Registry {
    /// `base` is this registry's URL for `dist.tarball`; `email` the publisher's, if known.
    pub async fn publish(
        &self,
        name: &PackageName,
        body: &Value,
        who: &Identity,
        email: Option<&str>,
        base: &str,
    ) -> Result<()> {
        self.authorize(name, Action::Publish, who)?;
        let parsed = publish::parse(name, body)?;
        let trusted = who
            .grant
            .as_ref()
            .map(|g| json!({"issuer": g.issuer, "subject": g.subject, "claims": g.claims}));
        let publisher = match (who.name.as_deref(), &who.grant) {
            (Some(name), _) => Some(publish::Publisher {
                name,
                email,
                trusted: None,
            }),
            (None, Some(g)) => Some(publish::Publisher {
                name: g.subject.as_deref().unwrap_or(&g.issuer),
                email: None,
                trusted: trusted.as_ref(),
            }),
            (None, None) => None,
        };
        let now = Utc::now();
        // An existing version is refused before anything is written.
        let parsed_ref = &parsed;
        let store_tarballs: Prepare<'_> = Box::new(move || {
            Box::pin(async move {
                for v in &parsed_ref.versions {
                    self.store_tarball(name, &v.filename, &v.tarball).await?;
                    if let Some(a) = &v.provenance {
                        self.store_attestations(name, &v.version, a).await?;
                    }
                }
                Ok(())
            })
        });
        let unlisted = self
            .modify(
                name,
                Reading::AddingVersions,
                |doc| {
                    let created = doc.is_none();
                    if created {
                        name.validate_new()?;
                    }
                    // A first publish over Verdaccio's cached copy of an upstream package makes
                    // it a package of this registry: listed like a new one (the repair pass
                    // leaves unlisted copies alone).
                    let adopted = doc.as_ref().is_some_and(crate::package::packument::is_upstream_copy);
                    Ok((
                        publish::merge(name, doc, &parsed, base, now, publisher)?,
                        created || adopted,
                    ))
                },
                Some(store_tarballs),
            )
            .await?;
        if unlisted {
            self.list_later(name);
        }
        Ok(())
    }

    /// A version's attestations as `GET /-/npm/v1/attestations/<name>@<version>` answers them;
    /// replaces what a version of that number once unpublished left behind.
    async fn store_attestations(&self, name: &PackageName, version: &str, a: &Attestation) -> Result<()> {
        let key = StorageKey::Attestations {
            package: name.as_str(),
            version,
        }
        .key()?;
        let doc = json!({"attestations": [{"predicateType": a.predicate_type, "bundle": a.bundle}]});
        let bytes = Bytes::from(serde_json::to_vec(&doc).expect("JSON serializes"));
        crate::storage::document::overwrite(self.storage.as_ref(), &key, bytes).await?;
        Ok(())
    }

    /// Adds a new package to the package list after the publish is answered (one compare-and-swap
    /// round trip less on the request path): the list is for Verdaccio, the repair pass and the
    /// web UI's listing, none of which needs it within the moment this takes, and an entry lost
    /// to a crash is added by the next repair pass.
    fn list_later(&self, name: &PackageName) {
        let (storage, name) = (self.storage.clone(), name.clone());
        tokio::spawn(async move {
            let listed = async {
                verdaccio_db::add(storage.as_ref(), &name).await?;
                // Unpublished meanwhile (its tombstone written before this add, its own removal
                // from the list perhaps too): take the entry out again.
                let stored = storage.read(&packument_key(&name)?).await?;
                let gone = stored.is_none_or(|v| {
                    serde_json::from_slice::<Value>(&v.bytes).is_ok_and(|d| deletion::is_tombstone(&d))
                });
                if gone {
                    verdaccio_db::remove(storage.as_ref(), &name).await?;
                }
                Ok::<_, RegistryError>(())
            };
            if let Err(e) = listed.await {
                tracing::warn!(package = %name, error = %e, "package list not updated; the repair pass puts it right");
            }
        });
    }

    async fn store_tarball(&self, name: &PackageName, file: &str, bytes: &[u8]) -> Result<()> {
        let key = tarball_key(name, file)?;
        let storage = self.storage.as_ref();
        // A retried publish of identical bytes is fine; anything else would silently change a
        // tarball whose integrity someone may already have recorded.
        if put_blob_once(storage, &key, Bytes::copy_from_slice(bytes)).await?
            || read_blob_bytes(storage, &key).await?.as_deref() == Some(bytes)
        {
            Ok(())
        } else {
            Err(RegistryError::Conflict(format!(
                "a different tarball {file} is already stored for {name}; publish a new version"
            )))
        }
    }
}
