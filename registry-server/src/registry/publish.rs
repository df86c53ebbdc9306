//! `PUT /:pkg` with attachments: new versions merged into the packument, their tarballs stored
//! once the merge has accepted them and before the metadata that names them.

use super::write::{Prepare, Reading};
use super::{Registry, RegistryError, Result, package_list, tarball_key};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::provenance::Attestation;
use crate::package::{PackageName, publish};
use crate::storage::{StorageError, StorageKey, read_blob_bytes};
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
        let created = self
            .modify(
                name,
                Reading::AddingVersions,
                |doc| {
                    let created = doc.is_none();
                    if created {
                        name.validate_new()?;
                    }
                    Ok((publish::merge(name, doc, &parsed, base, now, publisher)?, created))
                },
                Some(store_tarballs),
            )
            .await?;
        if created {
            package_list::add(self.storage.as_ref(), name).await?;
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
        super::write::compare_and_swap(
            key.as_str(),
            Replace {
                registry: self,
                key: &key,
                bytes,
            },
        )
        .await
    }

    async fn store_tarball(&self, name: &PackageName, file: &str, bytes: &[u8]) -> Result<()> {
        let key = tarball_key(name, file)?;
        match self.storage.put_blob(&key, Bytes::copy_from_slice(bytes)).await {
            Ok(()) => Ok(()),
            Err(StorageError::AlreadyExists(_)) => {
                // A retried publish of identical bytes is fine; anything else would silently
                // change a tarball whose integrity someone may already have recorded.
                if read_blob_bytes(self.storage.as_ref(), &key).await?.as_deref() == Some(bytes) {
                    Ok(())
                } else {
                    Err(RegistryError::Conflict(format!(
                        "a different tarball {file} is already stored for {name}; publish a new version"
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// One attempt at replacing a small document whatever it holds.
struct Replace<'a> {
    registry: &'a Registry,
    key: &'a crate::storage::Key,
    bytes: Bytes,
}

impl super::write::Attempt for Replace<'_> {
    type Output = ();

    async fn run(&mut self, _attempt: u32) -> Result<Option<()>> {
        let current = self.registry.storage.revision(self.key).await?;
        super::write::won(
            self.registry
                .storage
                .write(self.key, self.bytes.clone(), current.as_ref())
                .await,
        )
        .map(|w| w.map(|_| ()))
    }
}
