//! The deletes of npm's unpublish flow: a whole package with its tarballs, or the tarball of a
//! version already removed from the packument.

use super::{Registry, RegistryError, Result, not_found, package_list, packument_key, tarball_key};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageName, packument, update};
use crate::storage::{StorageError, StorageKey};
use serde_json::Value;

impl Registry {
    /// `DELETE /:pkg/-rev/:rev`.
    pub async fn unpublish_package(&self, name: &PackageName, rev: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Unpublish, who)?;
        let doc = self.read_doc(name).await?.ok_or_else(|| not_found(name))?;
        update::check_revision(&doc.value, Some(rev))?;
        self.storage
            .delete(&packument_key(name)?, &doc.revision)
            .await
            .map_err(|e| match e {
                StorageError::Conflict(_) => {
                    RegistryError::Conflict(format!("{name} changed while it was being unpublished; retry"))
                }
                e => e.into(),
            })?;
        self.cache.invalidate(name);
        let folder = StorageKey::PackageDir { package: name.as_str() }.key()?;
        for file in self.storage.list(&folder).await? {
            if file.ends_with(".tgz") {
                self.storage.delete_blob(&tarball_key(name, &file)?).await?;
            }
        }
        package_list::remove(self.storage.as_ref(), name).await?;
        tracing::info!(package = %name, "package unpublished");
        Ok(())
    }

    /// `DELETE /:pkg/-/:file/-rev/:rev`.
    pub async fn delete_tarball(&self, name: &PackageName, file: &str, rev: &str, who: &Identity) -> Result<()> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Unpublish, who)?;
        let doc = self.read_doc(name).await?.ok_or_else(|| not_found(name))?;
        update::check_revision(&doc.value, Some(rev))?;
        let still_used = doc
            .value
            .get("versions")
            .and_then(Value::as_object)
            .is_some_and(|vs| vs.iter().any(|(v, m)| packument::tarball_file(name, v, m) == file));
        if still_used {
            return Err(RegistryError::Conflict(format!(
                "{file} belongs to a published version of {name}; unpublish the version first"
            )));
        }
        self.storage.delete_blob(&tarball_key(name, file)?).await?;
        Ok(())
    }
}
