//! `PUT /:pkg` with attachments: new versions merged into the packument, their tarballs stored
//! once the merge has accepted them and before the metadata that names them.

use super::write::{Prepare, Reading};
use super::{Registry, RegistryError, Result, package_list, tarball_key};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageName, publish};
use crate::storage::{StorageError, read_blob_bytes};
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

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
        let publisher = who.name.as_deref().map(|name| publish::Publisher { name, email });
        let now = Utc::now();
        // An existing version is refused before anything is written.
        let parsed_ref = &parsed;
        let store_tarballs: Prepare<'_> = Box::new(move || {
            Box::pin(async move {
                for v in &parsed_ref.versions {
                    self.store_tarball(name, &v.filename, &v.tarball).await?;
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
