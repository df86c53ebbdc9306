//! The deletes of npm's unpublish flow: a whole package with its tarballs, or the tarball of a
//! version already removed from the packument. Both are deletions in the three steps of
//! `package::deletion`, so a publish racing them never ends with a version whose tarball is gone.

use super::tarball_deletion::Step;
use super::{Registry, Result, not_found, verdaccio_db};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageName, deletion, update};
use chrono::Utc;

impl Registry {
    /// `DELETE /:pkg/-rev/:rev`: the document becomes a tombstone naming every tarball, the
    /// tarballs go, then the tombstone.
    pub async fn unpublish_package(&self, name: &PackageName, rev: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Unpublish, who)?;
        let now = Utc::now();
        let files = self
            .deletion_step(name, |doc| {
                let doc = doc
                    .filter(|d| !deletion::is_tombstone(d))
                    .ok_or_else(|| not_found(name))?;
                update::check_revision(doc, Some(rev))?;
                let (tombstone, files) = deletion::tombstone(name, doc, now);
                Ok((Step::Write(tombstone), files))
            })
            .await?;
        verdaccio_db::remove(self.storage.as_ref(), name).await?;
        if self.delete_marked(name, &files, now).await? {
            // Published again while its old tarballs went: it stays listed.
            verdaccio_db::add(self.storage.as_ref(), name).await?;
        }
        tracing::info!(package = %name, tarballs = files.len(), "package unpublished");
        Ok(())
    }

    /// `DELETE /:pkg/-/:file/-rev/:rev`.
    pub async fn delete_tarball(&self, name: &PackageName, file: &str, rev: &str, who: &Identity) -> Result<()> {
        PackageName::check_filename(file)?;
        self.authorize(name, Action::Unpublish, who)?;
        let now = Utc::now();
        let files = vec![file.to_owned()];
        self.deletion_step(name, |doc| {
            let doc = doc
                .filter(|d| !deletion::is_tombstone(d))
                .ok_or_else(|| not_found(name))?;
            update::check_revision(doc, Some(rev))?;
            let mut doc = doc.clone();
            deletion::mark(name, &mut doc, &files, now)?;
            Ok((Step::Write(doc), ()))
        })
        .await?;
        self.delete_marked(name, &files, now).await?;
        Ok(())
    }
}
