//! Packages that come from uplinks: the upstream packument, filtered by the package's rule and
//! laid under local data, and upstream tarballs (only of versions the rule lets through, at the
//! URL and integrity of the upstream packument, never the client's).

use super::{Registry, Result};
use crate::package::{PackageName, merge, packument};
use crate::storage::Blob;
use crate::uplink::{Fetched, UpstreamDoc};
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;

impl Registry {
    /// The upstream packument when the package's rule proxies; errors are tolerated when local
    /// data can answer alone.
    pub(super) async fn upstream(&self, name: &PackageName, have_local: bool) -> Result<Option<Arc<UpstreamDoc>>> {
        let proxies = self.rules.proxies(name.as_str());
        let Some(uplinks) = self.uplinks.as_ref().filter(|_| !proxies.is_empty()) else {
            return Ok(None);
        };
        match uplinks.packument(name, proxies).await {
            Ok(u) => Ok(u),
            Err(e) if have_local => {
                tracing::warn!(package = %name, error = %e, "serving local versions only");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Local data over the upstream packument as the package's rule filters it.
    pub(super) fn merge_view(
        &self,
        name: &PackageName,
        local: Option<Value>,
        upstream: Option<&UpstreamDoc>,
    ) -> Option<Value> {
        let filtered = upstream.map(|u| {
            let mut doc = u.doc.clone();
            self.rules
                .filter(name.as_str())
                .apply(name.as_str(), &mut doc, Utc::now());
            doc
        });
        merge::merge(local.as_ref(), filtered)
    }

    /// A tarball from the package's uplinks (kept by their cache, or fetched); `None` when no
    /// uplink has it or the rule hides its version.
    pub(super) async fn upstream_tarball(&self, name: &PackageName, file: &str) -> Result<Option<Blob>> {
        let Some(upstream) = self.upstream(name, false).await? else {
            return Ok(None);
        };
        let filter = self.rules.filter(name.as_str());
        let now = Utc::now();
        let version = upstream.doc.get("versions").and_then(Value::as_object).and_then(|vs| {
            vs.iter().find(|(v, m)| {
                packument::tarball_file(name, v, m) == file
                    && !filter.hides(
                        name.as_str(),
                        v,
                        upstream.doc.pointer(&format!("/time/{v}")).and_then(Value::as_str),
                        now,
                    )
            })
        });
        let Some((_, manifest)) = version else {
            return Ok(None);
        };
        let uplinks = self.uplinks.as_ref().expect("upstream data implies uplinks");
        if let Some(blob) = uplinks.cached_tarball(name, file).await? {
            return Ok(Some(blob));
        }
        let Some(url) = manifest.pointer("/dist/tarball").and_then(Value::as_str) else {
            return Ok(None);
        };
        let sri = manifest.pointer("/dist/integrity").and_then(Value::as_str);
        let sha = manifest.pointer("/dist/shasum").and_then(Value::as_str);
        Ok(
            match uplinks.tarball(name, file, &upstream.uplink, url, sri, sha).await? {
                Some(Fetched::Stored) => uplinks.cached_tarball(name, file).await?,
                Some(Fetched::Bytes(bytes)) => Some(Blob::whole(bytes)),
                Some(Fetched::Streaming(blob)) => Some(blob),
                None => None,
            },
        )
    }
}
