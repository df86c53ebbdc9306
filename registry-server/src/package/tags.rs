//! Dist-tags: checks and changes on a stored packument.

use super::PackageError;
use serde_json::{Map, Value};

/// npm refuses tags that read as a version range (`npm install pkg@1.x` would be ambiguous).
pub fn check_tag(tag: &str) -> Result<(), PackageError> {
    let bad_char = tag
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '%' || c.is_control());
    if tag.is_empty() || bad_char || tag.len() > 128 {
        return Err(PackageError::InvalidTag(format!("{tag:?} is not a valid dist-tag")));
    }
    if semver::VersionReq::parse(tag).is_ok() {
        return Err(PackageError::InvalidTag(format!(
            "dist-tag {tag:?} looks like a version range; tags must not be valid semver ranges"
        )));
    }
    Ok(())
}

pub fn tags(doc: &Value) -> Map<String, Value> {
    doc.get("dist-tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn tags_mut(doc: &mut Value) -> Result<&mut Map<String, Value>, PackageError> {
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| PackageError::Corrupt("not an object".into()))?;
    obj.entry("dist-tags")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| PackageError::Corrupt("dist-tags is not an object".into()))
}

pub fn set(doc: &mut Value, tag: &str, version: &str) -> Result<(), PackageError> {
    check_tag(tag)?;
    if doc
        .pointer(&format!("/versions/{}", version.replace('~', "~0").replace('/', "~1")))
        .is_none()
    {
        return Err(PackageError::UnknownVersion(version.to_owned()));
    }
    tags_mut(doc)?.insert(tag.to_owned(), Value::String(version.to_owned()));
    Ok(())
}

pub fn remove(doc: &mut Value, tag: &str) -> Result<(), PackageError> {
    if tag == "latest" {
        return Err(PackageError::InvalidTag("the latest dist-tag cannot be removed".into()));
    }
    tags_mut(doc)?
        .remove(tag)
        .map(|_| ())
        .ok_or_else(|| PackageError::UnknownTag(tag.to_owned()))
}

/// The version `latest` should fall back to: the highest release, else the highest prerelease.
pub fn highest(versions: impl IntoIterator<Item = impl AsRef<str>>) -> Option<String> {
    let parsed: Vec<semver::Version> = versions
        .into_iter()
        .filter_map(|v| semver::Version::parse(v.as_ref()).ok())
        .collect();
    parsed
        .iter()
        .filter(|v| v.pre.is_empty())
        .max()
        .or_else(|| parsed.iter().max())
        .map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_and_remove() {
        let mut doc = json!({"dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {}, "2.0.0-rc.1": {}}});
        set(&mut doc, "next", "2.0.0-rc.1").unwrap();
        assert_eq!(doc["dist-tags"]["next"], "2.0.0-rc.1");
        assert_eq!(
            set(&mut doc, "next", "9.9.9"),
            Err(PackageError::UnknownVersion("9.9.9".into()))
        );
        assert!(matches!(
            set(&mut doc, "1.x", "1.0.0"),
            Err(PackageError::InvalidTag(_))
        ));
        remove(&mut doc, "next").unwrap();
        assert_eq!(remove(&mut doc, "next"), Err(PackageError::UnknownTag("next".into())));
        assert!(remove(&mut doc, "latest").is_err());
    }

    #[test]
    fn highest_prefers_releases() {
        assert_eq!(highest(["1.0.0", "2.0.0-rc.1", "1.5.0"]).as_deref(), Some("1.5.0"));
        assert_eq!(highest(["2.0.0-rc.1", "2.0.0-rc.2"]).as_deref(), Some("2.0.0-rc.2"));
        assert_eq!(highest(Vec::<String>::new()), None);
    }
}
