//! A publish body (`PUT /:pkg` with `_attachments`): parsed and checked, then merged into the
//! stored packument by a pure function the storage layer retries on conflicts.

use super::provenance::{self, Attestation};
use super::{PackageError, PackageName, integrity, packument, revision, tags};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct NewVersion {
    pub version: String,
    pub manifest: Map<String, Value>,
    /// Storage file name (`name-1.0.0.tgz`) and the checked tarball bytes.
    pub filename: String,
    pub tarball: Vec<u8>,
    /// The provenance bundle published with it (`<name>-<version>.sigstore`), checked.
    pub provenance: Option<Attestation>,
}

#[derive(Debug, Clone)]
pub struct Publish {
    pub versions: Vec<NewVersion>,
    pub dist_tags: Map<String, Value>,
    pub readme: Option<String>,
}

fn bad(msg: impl Into<String>) -> PackageError {
    PackageError::BadRequest(msg.into())
}

/// True when a `PUT /:pkg` body is a publish (it carries attachments) rather than a document update.
pub fn is_publish(body: &Value) -> bool {
    body.get("_attachments")
        .and_then(Value::as_object)
        .is_some_and(|a| !a.is_empty())
}

/// The body `npm publish` sends for one version of `name` with `tarball` as its (opaque) tarball
/// bytes: the inverse of [`parse`], for tests and tools that publish without the npm CLI.
pub fn request_body(name: &str, version: &str, tarball: &[u8]) -> Value {
    let (sha1, sri) = integrity::digests(tarball);
    let file = format!("{name}-{version}.tgz");
    json!({
        "_id": name, "name": name, "description": "test",
        "dist-tags": {"latest": version},
        "versions": {version: {
            "name": name, "version": version, "description": "test",
            "dist": {"integrity": sri, "shasum": sha1, "tarball": format!("http://ignored.example/{name}/-/{file}")}
        }},
        "_attachments": {file: {"content_type": "application/octet-stream", "data": STANDARD.encode(tarball), "length": tarball.len()}}
    })
}

/// Reads a publish body: names agree, versions are semver, every version has its tarball, and
/// every tarball matches the integrity its version declares.
pub fn parse(name: &PackageName, body: &Value) -> Result<Publish, PackageError> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("publish body must be a JSON object"))?;
    for key in ["name", "_id"] {
        if let Some(n) = obj.get(key).and_then(Value::as_str)
            && n != name.as_str()
        {
            return Err(bad(format!("body {key} {n:?} does not match the URL's package {name}")));
        }
    }
    let versions = obj
        .get("versions")
        .and_then(Value::as_object)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("publish body has no versions"))?;
    let attachments = obj
        .get("_attachments")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("publish body has no _attachments"))?;

    let mut tarballs: Vec<(String, Vec<u8>)> = Vec::new();
    // Provenance bundles by file name; their `data` is the bundle's JSON text, not base64.
    let mut bundles: Vec<(String, &str)> = Vec::new();
    for (key, att) in attachments {
        // npm and yarn 4 put the scope in the key (`@scope/pkg-1.0.0.tgz`); we store by basename.
        let file = key.rsplit('/').next().unwrap_or(key);
        if file.ends_with(".sigstore") {
            let data = att
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("attachment {key} has no data")))?;
            bundles.push((file.to_owned(), data));
            continue;
        }
        if !file.ends_with(".tgz") {
            continue;
        }
        PackageName::check_filename(file)?;
        let data = att
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("attachment {key} has no data")))?;
        let bytes = STANDARD
            .decode(data.trim())
            .map_err(|e| bad(format!("attachment {key} is not valid base64: {e}")))?;
        if let Some(len) = att.get("length").and_then(Value::as_u64)
            && len != bytes.len() as u64
        {
            return Err(bad(format!(
                "attachment {key} is {} bytes, its length says {len}",
                bytes.len()
            )));
        }
        tarballs.push((file.to_owned(), bytes));
    }

    let mut out = Vec::new();
    for (version, manifest) in versions {
        let parsed = semver::Version::parse(version).map_err(|_| PackageError::InvalidVersion(version.clone()))?;
        if parsed.to_string() != *version {
            return Err(PackageError::InvalidVersion(version.clone()));
        }
        let manifest = manifest
            .as_object()
            .ok_or_else(|| bad(format!("version {version} is not an object")))?
            .clone();
        if let Some(v) = manifest.get("version").and_then(Value::as_str)
            && v != version
        {
            return Err(bad(format!("version {version} has version field {v:?}")));
        }
        if let Some(n) = manifest.get("name").and_then(Value::as_str)
            && n != name.as_str()
        {
            return Err(bad(format!("version {version} is named {n:?}, not {name}")));
        }
        let expected = packument::tarball_file(name, version, &Value::Object(manifest.clone()));
        let pos = tarballs
            .iter()
            .position(|(f, _)| *f == expected)
            .or_else(|| (versions.len() == 1 && tarballs.len() == 1).then_some(0))
            .ok_or_else(|| PackageError::MissingAttachment(version.clone()))?;
        let (_, bytes) = tarballs.remove(pos);
        let dist = manifest.get("dist");
        let sri = dist.and_then(|d| d.get("integrity")).and_then(Value::as_str);
        let sha = dist.and_then(|d| d.get("shasum")).and_then(Value::as_str);
        integrity::verify(&expected, &bytes, sri, sha)?;
        let filename = name.tarball_filename(version);
        PackageName::check_filename_length(&filename)?;
        let bundle_file = provenance::attachment_file(name.as_str(), version);
        let provenance = match bundles.iter().position(|(f, _)| *f == bundle_file) {
            Some(i) => Some(provenance::validate(
                bundles.remove(i).1,
                name.as_str(),
                version,
                &bytes,
            )?),
            None => None,
        };
        out.push(NewVersion {
            version: version.clone(),
            manifest,
            filename,
            tarball: bytes,
            provenance,
        });
    }
    if let Some((file, _)) = bundles.first() {
        return Err(bad(format!(
            "attachment {file} is the provenance of no version in this publish"
        )));
    }

    let dist_tags = obj
        .get("dist-tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (tag, v) in &dist_tags {
        tags::check_tag(tag)?;
        if !v.is_string() {
            return Err(bad(format!("dist-tag {tag} must name a version")));
        }
    }
    let readme = obj.get("readme").and_then(Value::as_str).map(str::to_owned);
    Ok(Publish {
        versions: out,
        dist_tags,
        readme,
    })
}

/// Checks that none of the publish's versions exist yet: a version is never published over.
/// Versions are compared by semver precedence, as npm compares them: build metadata does not
/// count (`1.0.0+build.1` and `1.0.0+build.2` are one version).
fn check_new_versions(existing: Option<&Value>, publish: &Publish) -> Result<(), PackageError> {
    let Some(stored) = existing.and_then(|d| d.get("versions")).and_then(Value::as_object) else {
        return Ok(());
    };
    let stored: Vec<semver::Version> = stored.keys().filter_map(|v| semver::Version::parse(v).ok()).collect();
    for v in &publish.versions {
        let new = semver::Version::parse(&v.version).map_err(|_| PackageError::InvalidVersion(v.version.clone()))?;
        if let Some(old) = stored.iter().find(|old| old.cmp_precedence(&new).is_eq()) {
            return Err(PackageError::VersionExists(old.to_string()));
        }
    }
    Ok(())
}

pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Who publishes: recorded as `_npmUser` and, on a new package, as its first maintainer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Publisher<'a> {
    pub name: &'a str,
    /// The email given at registration (`npm view` prints `<undefined>` without one).
    pub email: Option<&'a str>,
    /// A CI job publishing by OIDC trusted publishing: what its id-token said (issuer, claims),
    /// recorded as `_npmUser.trustedPublisher`, as npm does. It becomes no maintainer.
    pub trusted: Option<&'a Value>,
}

impl<'a> From<&'a str> for Publisher<'a> {
    fn from(name: &'a str) -> Self {
        Publisher {
            name,
            email: None,
            trusted: None,
        }
    }
}

impl Publisher<'_> {
    /// npm's person object: `{"name": ..., "email": ...}`.
    fn person(&self) -> Value {
        let mut p = json!({"name": self.name});
        if let Some(email) = self.email {
            p["email"] = json!(email);
        }
        if let Some(t) = self.trusted {
            p["trustedPublisher"] = t.clone();
        }
        p
    }
}

/// The URL of a version's attestations on this registry (`<base>-/npm/v1/attestations/<name>@<version>`).
pub fn attestations_url(base: &str, name: &PackageName, version: &str) -> String {
    format!(
        "{base}-/npm/v1/attestations/{}@{version}",
        name.as_str().replace('/', "%2f")
    )
}

/// Merges a checked publish into the stored packument (or a new one). `base` is the registry URL
/// written into `dist.tarball` (clients always get it rewritten on read).
pub fn merge(
    name: &PackageName,
    existing: Option<Value>,
    publish: &Publish,
    base: &str,
    now: DateTime<Utc>,
    publisher: Option<Publisher<'_>>,
) -> Result<Value, PackageError> {
    check_new_versions(existing.as_ref(), publish)?;
    let stamp = timestamp(now);
    let mut doc = existing.unwrap_or_else(|| {
        json!({
            "_id": name.as_str(), "name": name.as_str(), "dist-tags": {}, "versions": {},
            "time": {"created": stamp}, "users": {}, "_uplinks": {}, "_distfiles": {}, "_attachments": {},
            "_rev": revision::INITIAL,
        })
    });
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| PackageError::Corrupt("not an object".into()))?;
    for key in ["versions", "time", "dist-tags", "_attachments"] {
        if !obj.get(key).is_some_and(Value::is_object) {
            obj.insert(key.to_owned(), json!({}));
        }
    }

    if let Some(user) = publisher.filter(|p| p.trusted.is_none())
        && obj
            .get("maintainers")
            .is_none_or(|m| m.as_array().is_none_or(|a| a.is_empty()))
    {
        obj.insert("maintainers".into(), json!([user.person()]));
    }
    let maintainers = obj.get("maintainers").cloned();
    let mut newest_readme = publish.readme.clone();
    for nv in &publish.versions {
        let mut m = nv.manifest.clone();
        if let Some(Value::String(r)) = m.remove("readme") {
            newest_readme.get_or_insert(r);
        }
        m.remove("readmeFilename");
        m.insert("_id".into(), Value::String(format!("{name}@{}", nv.version)));
        m.insert("name".into(), Value::String(name.to_string()));
        m.insert("version".into(), Value::String(nv.version.clone()));
        if let Some(user) = publisher {
            m.insert("_npmUser".into(), user.person());
        }
        if let Some(ms) = &maintainers {
            m.insert("maintainers".into(), ms.clone());
        }
        let dist = m.entry("dist").or_insert_with(|| json!({}));
        if let Some(d) = dist.as_object_mut() {
            let (sha1, sri) = integrity::digests(&nv.tarball);
            d.insert(
                "tarball".into(),
                Value::String(packument::tarball_url(base, name, &nv.filename)),
            );
            d.entry("shasum").or_insert(Value::String(sha1.clone()));
            d.entry("integrity").or_insert(Value::String(sri));
            // Whatever the client claimed: only what was checked here is served.
            d.remove("attestations");
            d.remove("signatures");
            if let Some(p) = &nv.provenance {
                d.insert(
                    "attestations".into(),
                    json!({
                        "url": attestations_url(base, name, &nv.version),
                        "provenance": {"predicateType": p.predicate_type},
                    }),
                );
            }
            obj["_attachments"]
                .as_object_mut()
                .expect("checked above")
                .insert(nv.filename.clone(), json!({"shasum": sha1, "version": nv.version}));
        }
        obj["versions"]
            .as_object_mut()
            .expect("checked above")
            .insert(nv.version.clone(), Value::Object(m));
        obj["time"]
            .as_object_mut()
            .expect("checked above")
            .insert(nv.version.clone(), Value::String(stamp.clone()));
    }
    obj["time"]
        .as_object_mut()
        .expect("checked above")
        .insert("modified".into(), Value::String(stamp.clone()));
    obj["time"]
        .as_object_mut()
        .expect("checked above")
        .entry("created")
        .or_insert(Value::String(stamp));

    for (tag, v) in &publish.dist_tags {
        let v = v.as_str().unwrap_or_default();
        tags::set(&mut doc, tag, v)?;
    }
    let has_latest = doc.pointer("/dist-tags/latest").is_some();
    if !has_latest {
        let versions: Vec<String> = doc["versions"]
            .as_object()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(h) = tags::highest(&versions) {
            tags::set(&mut doc, "latest", &h)?;
        }
    }
    // Keep the readme and description of the version that is latest now.
    let latest = doc
        .pointer("/dist-tags/latest")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(latest) = latest
        && publish.versions.iter().any(|v| v.version == latest)
    {
        if let Some(r) = newest_readme {
            doc["readme"] = Value::String(r);
        }
        if let Some(d) = doc.pointer(&format!("/versions/{latest}/description")).cloned() {
            doc["description"] = d;
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests;
