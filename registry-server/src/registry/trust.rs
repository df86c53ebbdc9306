//! What clients verify packages with: the signing keys (ours and the uplinks', for proxied
//! versions that keep their upstream signatures), a package's visibility (npm asks it before it
//! turns provenance on), and a version's attestations: published here, or fetched from the uplink
//! the version came from and kept in storage.

use super::{Registry, RegistryError, Result, not_found};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::PackageName;
use crate::storage::document;
use crate::storage::{Key, StorageKey};
use bytes::Bytes;
use serde_json::Value;

/// The largest attestations document taken from an uplink (npm's are some 10 KiB).
const UPLINK_ATTESTATIONS_LIMIT: usize = 1024 * 1024;

fn no_attestations(name: &PackageName, version: &str) -> RegistryError {
    RegistryError::NotFound(format!("{name}@{version} has no attestations"))
}

/// Whether a version's manifest says it has attestations.
fn has_attestations(manifest: Option<&Value>) -> bool {
    manifest.and_then(|m| m.pointer("/dist/attestations")).is_some()
}

impl Registry {
    /// `GET /-/npm/v1/keys`: our keys, then every uplink's; `None` when there are none at all
    /// (answered 404, which npm reads as "this registry does not sign").
    pub async fn signing_keys(&self) -> Option<Vec<Value>> {
        let mut keys = self.signer.as_ref().map(|s| s.keys()).unwrap_or_default();
        if let Some(uplink_keys) = &self.uplink_keys {
            for k in uplink_keys.keys().await {
                let id = k.get("keyid");
                if !keys.iter().any(|mine| mine.get("keyid") == id) {
                    keys.push(k);
                }
            }
        }
        (!keys.is_empty()).then_some(keys)
    }

    /// `GET /-/package/<name>/visibility`: public when anyone, logged in or not, may read it.
    pub fn visibility(&self, name: &PackageName, who: &Identity) -> Result<bool> {
        self.authorize(name, Action::Access, who)?;
        Ok(self.rules.is_public(name.as_str()))
    }

    /// The trusted publishers of the package's rule (for the OIDC exchange).
    pub fn trusted_publishers(&self, name: &PackageName) -> &[crate::auth::oidc::TrustedPublisher] {
        self.rules.trusted_publishers(name.as_str())
    }

    /// `GET /-/npm/v1/attestations/<name>@<version>`: `{"attestations": [...]}` as stored.
    pub async fn attestations(&self, name: &PackageName, version: &str, who: &Identity) -> Result<Bytes> {
        self.authorize(name, Action::Access, who)?;
        if let Some(doc) = self.read_doc(name).await?
            && let Some(manifest) = doc.value.get("versions").and_then(|v| v.get(version))
        {
            // Only what the current document says it has: not what a version of that number,
            // unpublished since, left behind.
            if !has_attestations(Some(manifest)) {
                return Err(no_attestations(name, version));
            }
            let key = StorageKey::Attestations {
                package: name.as_str(),
                version,
            }
            .key()?;
            return match self.storage.read(&key).await? {
                Some(v) => Ok(v.bytes),
                None => Err(no_attestations(name, version)),
            };
        }
        self.upstream_attestations(name, version, who).await
    }

    /// A proxied version's attestations: kept in storage once fetched from the first uplink of the
    /// package's rule that has them.
    async fn upstream_attestations(&self, name: &PackageName, version: &str, who: &Identity) -> Result<Bytes> {
        let Some(uplinks) = self.uplinks.clone() else {
            return Err(not_found(name));
        };
        // The merged view: only versions the rule lets through, as clients see them.
        let merged = self.merged(name, who).await?;
        if !has_attestations(merged.get("versions").and_then(|v| v.get(version))) {
            return Err(no_attestations(name, version));
        }
        let key: Key = StorageKey::UplinkAttestations {
            package: name.as_str(),
            version,
        }
        .key()?;
        if let Some(v) = self.storage.read(&key).await? {
            return Ok(v.bytes);
        }
        let path = format!("-/npm/v1/attestations/{}@{version}", name.as_str().replace('/', "%2f"));
        let mut failure = None;
        for uplink in self.rules.proxies(name.as_str()) {
            let Some(client) = uplinks.client(uplink) else {
                continue;
            };
            match client.get_small(&path, UPLINK_ATTESTATIONS_LIMIT).await {
                Ok(Some(body)) => {
                    let usable = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .is_some_and(|d| d.get("attestations").is_some_and(Value::is_array));
                    if !usable {
                        tracing::warn!(package = %name, version, uplink, "the uplink's attestations are not an attestations document");
                        continue;
                    }
                    // Another replica's copy of the same answer will do as well as ours.
                    let cached = document::replace_at(self.storage.as_ref(), &key, body.clone(), None).await;
                    if let Err(e) = cached {
                        tracing::warn!(package = %name, version, error = %e, "attestations not cached");
                    }
                    return Ok(body);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(package = %name, version, error = %e, "uplink attestations request failed");
                    failure = Some(e);
                }
            }
        }
        match failure {
            Some(e) => Err(crate::uplink::UplinkError::Fetch(e).into()),
            None => Err(no_attestations(name, version)),
        }
    }
}
