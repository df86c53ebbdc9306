//! The file's keys in the file's terms: which keys exist at each level we parse (read off the file
//! model itself, so no list is written twice), the known key an unknown one is a near miss of
//! ("did you mean `packages`?"), YAML paths as a user writes them, and serde's messages without
//! the Rust type names they may carry.

use registry_config as file;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// A YAML path as a user writes it: `packages.'@scope/*'.access`, `uplinks.npmjs.timeout`,
/// `packages.'**'.block[0]`.
pub fn display_path<'a>(segments: impl IntoIterator<Item = Segment<'a>>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
                if plain {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("'{k}'"));
                }
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// The keys a struct of the file model declares, as the file spells them (asked of its
/// `Deserialize` impl, which names them when it asks for a struct).
pub(super) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields.unwrap_or(&[])
}

struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only the field names are wanted"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("only the field names are wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The keys the file model knows under `parent` (the path of the mapping an unknown key was
/// found in), where that set is fixed.
fn known_under(parent: &[&str]) -> &'static [&'static str] {
    match parent {
        [] => fields_of::<file::ConfigFile>(),
        ["packages", _] => fields_of::<file::RuleFile>(),
        ["uplinks", _] => fields_of::<file::UplinkFile>(),
        ["uplinks", _, "auth"] => fields_of::<file::UplinkAuthFile>(),
        ["auth", "htpasswd"] => fields_of::<file::HtpasswdFile>(),
        ["log" | "logs"] => fields_of::<file::LogFile>(),
        ["packument_cache" | "tarball_cache"] => fields_of::<file::CacheFile>(),
        ["security"] => fields_of::<file::SecurityFile>(),
        ["security", "api"] => fields_of::<file::ApiSecurityFile>(),
        ["security", "web"] | ["security", "api", "jwt"] => fields_of::<file::JwtFile>(),
        ["signing"] => fields_of::<file::SigningFile>(),
        ["signing", "retired_keys"] => fields_of::<file::RetiredKeyFile>(),
        ["packages", _, "trusted_publishers"] => fields_of::<file::TrustedPublisherFile>(),
        _ => &[],
    }
}

/// The known key that `key` is most likely a typo of: the same but for case, or at most one edit
/// away (two for keys of more than four characters).
pub fn near_miss<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    let limit = if key.chars().count() > 4 { 2 } else { 1 };
    known
        .iter()
        .filter(|k| **k != key)
        .map(|k| {
            let distance = if k.eq_ignore_ascii_case(key) {
                0
            } else {
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase())
            };
            (distance, *k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// What an unknown key found at `path` (its last segment) amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Unknown {
    /// A typo of a known key: an error, since the setting it meant would silently not apply.
    NearMiss { key: String, expected: String },
    /// A package rule's key written outside `packages` (it would silently not apply).
    Misplaced { key: String, belongs: &'static str },
    /// Some other key: a warning.
    Ignored { key: String },
}

pub fn classify_unknown(path: &[&str]) -> Unknown {
    let Some((key, parent)) = path.split_last() else {
        return Unknown::Ignored { key: String::new() };
    };
    let shown = display_path(path.iter().map(|k| Segment::Key(k)));
    if let Some(expected) = near_miss(key, known_under(parent)) {
        let mut expected_path: Vec<&str> = parent.to_vec();
        expected_path.push(expected);
        return Unknown::NearMiss {
            key: shown,
            expected: display_path(expected_path.iter().map(|k| Segment::Key(k))),
        };
    }
    if parent.is_empty() && fields_of::<file::RuleFile>().contains(key) {
        return Unknown::Misplaced {
            key: shown,
            belongs: "it is a key of a package rule: put it under a pattern in `packages` (e.g. packages: {'**': {proxy: ...}})",
        };
    }
    Unknown::Ignored { key: shown }
}

/// serde's message with Rust's primitive type names replaced by what a user should write
/// (`expected u32` → `expected a whole number`); the model's own types say it in `expecting`.
pub fn humanize(message: &str) -> String {
    const WORDS: [(&str, &str); 11] = [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number of at least 0"),
        ("usize", "a whole number of at least 0"),
        ("i8", "a whole number"),
        ("i16", "a whole number"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let mut out = message.to_owned();
    for (rust, words) in WORDS {
        for lead in ["expected ", "expected a "] {
            let from = format!("{lead}{rust}");
            if let Some(at) = out.find(&from) {
                let end = at + from.len();
                let at_word_end = out[end..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric());
                if at_word_end {
                    out.replace_range(at..end, &format!("expected {words}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_off_the_model() {
        let top = fields_of::<file::ConfigFile>();
        assert!(top.contains(&"packages") && top.contains(&"userRateLimit") && top.contains(&"_debug"));
        assert!(fields_of::<file::RuleFile>().contains(&"proxy"));
    }

    #[test]
    fn near_misses_name_the_expected_key() {
        assert_eq!(
            classify_unknown(&["packges"]),
            Unknown::NearMiss {
                key: "packges".into(),
                expected: "packages".into()
            }
        );
        assert_eq!(
            classify_unknown(&["packages", "@s/*", "acess"]),
            Unknown::NearMiss {
                key: "packages.'@s/*'.acess".into(),
                expected: "packages.'@s/*'.access".into()
            }
        );
        assert!(matches!(
            classify_unknown(&["uplinks", "up", "timout"]),
            Unknown::NearMiss { expected, .. } if expected == "uplinks.up.timeout"
        ));
        assert!(matches!(
            classify_unknown(&["auth", "htpasswd", "max_user"]),
            Unknown::NearMiss { expected, .. } if expected == "auth.htpasswd.max_users"
        ));
        assert!(matches!(classify_unknown(&["Listen"]), Unknown::NearMiss { expected, .. } if expected == "listen"));
        assert!(matches!(classify_unknown(&["proxy"]), Unknown::Misplaced { .. }));
        assert_eq!(
            classify_unknown(&["frobnicate"]),
            Unknown::Ignored {
                key: "frobnicate".into()
            }
        );
        assert_eq!(near_miss("titel", &["enable", "title"]), Some("title"));
        assert_eq!(near_miss("logo", &["enable", "title"]), None);
    }

    #[test]
    fn primitive_type_names_become_words() {
        assert_eq!(
            humanize("invalid type: string \"x\", expected u32 at line 3 column 5"),
            "invalid type: string \"x\", expected a whole number from 0 to 4294967295 at line 3 column 5"
        );
        assert_eq!(humanize("expected a boolean"), "expected a boolean");
        assert_eq!(humanize("expected u8s"), "expected u8s");
    }

    #[test]
    fn paths_quote_patterns() {
        let p = [
            Segment::Key("packages"),
            Segment::Key("**"),
            Segment::Key("block"),
            Segment::Index(0),
        ];
        assert_eq!(display_path(p), "packages.'**'.block[0]");
    }
}
