//! `PUT /:pkg[/-rev/:rev]` without attachments: a whole-document update (deprecate, unpublish of
//! versions, tags, star, owners), authorized by what it changes.

use super::write::Reading;
use super::{Registry, Result, not_found};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageError, PackageName, update};
use chrono::Utc;
use serde_json::Value;

impl Registry {
    pub async fn update(&self, name: &PackageName, rev: Option<&str>, body: &Value, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Access, who)?;
        let rev = rev.or_else(|| body.get("_rev").and_then(Value::as_str));
        let now = Utc::now();
        let removed = self
            .modify(
                name,
                Reading::Whole,
                |doc| {
                    let doc = doc.ok_or_else(|| match body.get("versions").and_then(Value::as_object) {
                        // A first publish that forgot its tarball, not an update.
                        Some(vs) if !vs.is_empty() => {
                            PackageError::MissingAttachment(vs.keys().next().cloned().unwrap_or_default()).into()
                        }
                        _ => not_found(name),
                    })?;
                    update::check_revision(&doc, rev)?;
                    let u = update::apply(&doc, body, now)?;
                    let action = if u.is_destructive() {
                        Action::Unpublish
                    } else {
                        Action::Change
                    };
                    self.authorize(name, action, who)?;
                    Ok((u.doc, u.removed_versions))
                },
                None,
            )
            .await?;
        tracing::info!(package = %name, removed = ?removed, "packument updated");
        Ok(())
    }
}
