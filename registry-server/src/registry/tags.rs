//! dist-tags: read from the merged view, changed with compare-and-swap.

use super::write::Reading;
use super::{Registry, Result, not_found};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageName, tags};
use serde_json::{Map, Value};

impl Registry {
    pub async fn dist_tags(&self, name: &PackageName, who: &Identity) -> Result<Map<String, Value>> {
        Ok(tags::tags(&self.merged(name, who).await?))
    }

    pub async fn set_tag(&self, name: &PackageName, tag: &str, version: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Change, who)?;
        let change = |doc: Option<Value>| {
            let mut doc = doc.ok_or_else(|| not_found(name))?;
            tags::set(&mut doc, tag, version)?;
            Ok((doc, ()))
        };
        self.modify(name, Reading::Whole, change, None).await
    }

    pub async fn remove_tag(&self, name: &PackageName, tag: &str, who: &Identity) -> Result<()> {
        self.authorize(name, Action::Change, who)?;
        let change = |doc: Option<Value>| {
            let mut doc = doc.ok_or_else(|| not_found(name))?;
            tags::remove(&mut doc, tag)?;
            Ok((doc, ()))
        };
        self.modify(name, Reading::Whole, change, None).await
    }
}
