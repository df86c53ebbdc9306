//! The config file's text into the file model: YAML syntax errors first, then values of the
//! wrong type reported at their key in the file's terms, then unknown keys sorted into errors
//! (near misses, misplaced rule keys) and warnings.

use super::{ConfigError, invalid, keys};
use registry_config::ConfigFile;
use serde_yaml::Value;

/// The file model read from YAML: syntax errors and wrongly typed values become errors naming the
/// key in the file's terms; unknown keys become warnings, or errors when they are a near miss of
/// a known key.
pub(super) fn model(text: &str, warnings: &mut Vec<String>) -> Result<ConfigFile, ConfigError> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    // Syntax first, so that a YAML error is never reported as a bad value of some key.
    serde_yaml::from_str::<Value>(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    let mut unknown: Vec<Vec<String>> = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let mut note = |path: serde_ignored::Path| unknown.push(ignored_keys(&path));
    let raw: ConfigFile =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut note)).map_err(|e| {
            let segments: Vec<keys::Segment> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(keys::Segment::Key(key)),
                    serde_path_to_error::Segment::Seq { index } => Some(keys::Segment::Index(*index)),
                    _ => None,
                })
                .collect();
            let key = keys::display_path(segments);
            let reason = keys::humanize(&e.inner().to_string());
            if key.is_empty() {
                ConfigError::Yaml(reason)
            } else {
                invalid(key, reason)
            }
        })?;
    for path in unknown {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match keys::classify_unknown(&path) {
            keys::Unknown::NearMiss { key, expected } => return Err(ConfigError::NearMiss { key, expected }),
            keys::Unknown::Misplaced { key, belongs } => {
                return Err(ConfigError::Misplaced {
                    key,
                    reason: belongs.to_owned(),
                });
            }
            keys::Unknown::Ignored { key } => warnings.push(format!("unknown config key `{key}` ignored")),
        }
    }
    Ok(raw)
}

/// The map keys along a path `serde_ignored` reports (sequence indexes and `Option` layers left out).
fn ignored_keys(path: &serde_ignored::Path) -> Vec<String> {
    use serde_ignored::Path as P;
    match path {
        P::Root => Vec::new(),
        P::Seq { parent, .. } | P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_keys(parent)
        }
        P::Map { parent, key } => {
            let mut keys = ignored_keys(parent);
            keys.push(key.clone());
            keys
        }
    }
}
