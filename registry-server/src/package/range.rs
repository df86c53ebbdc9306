//! npm version ranges, and `name@range` entries (a rule's block list): parsed once, by one parser,
//! both when the config is validated and when a version is checked against an entry.

/// An npm range (`>=1.1.0 <2.0.0 || 3.x`): alternatives of the semver crate's comma-separated
/// requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmRange(Vec<semver::VersionReq>);

impl NpmRange {
    pub fn matches(&self, version: &semver::Version) -> bool {
        self.0.iter().any(|req| req.matches(version))
    }
}

pub fn parse_npm_range(range: &str) -> Result<NpmRange, semver::Error> {
    // npm reads a bare `1.0.0` as exactly that version; the semver crate as `^1.0.0`.
    let comparator = |c: &str| {
        if semver::Version::parse(c).is_ok() {
            format!("={c}")
        } else {
            c.to_owned()
        }
    };
    range
        .split("||")
        .map(|alt| semver::VersionReq::parse(&alt.split_whitespace().map(comparator).collect::<Vec<_>>().join(", ")))
        .collect::<Result<_, _>>()
        .map(NpmRange)
}

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("an empty entry names no package")]
    Empty,
    #[error("{range:?} is not a version range ({source})")]
    Range { range: String, source: semver::Error },
}

/// `name` (every version of it) or `name@range`, scoped names included (`@scope/name@range`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRange {
    pub name: String,
    /// `None`: every version.
    pub range: Option<NpmRange>,
}

impl NameRange {
    pub fn parse(entry: &str) -> Result<Self, EntryError> {
        let Some(first) = entry.chars().next() else {
            return Err(EntryError::Empty);
        };
        // The range follows the last `@` that is not the first character (a scope's).
        let skip = first.len_utf8();
        let Some(at) = entry[skip..].rfind('@').map(|i| i + skip) else {
            return Ok(NameRange {
                name: entry.to_owned(),
                range: None,
            });
        };
        let range = &entry[at + 1..];
        let parsed = parse_npm_range(range).map_err(|source| EntryError::Range {
            range: range.to_owned(),
            source,
        })?;
        Ok(NameRange {
            name: entry[..at].to_owned(),
            range: Some(parsed),
        })
    }

    /// Whether the entry names this version of this package.
    pub fn covers(&self, name: &str, version: Option<&semver::Version>) -> bool {
        self.name == name
            && match &self.range {
                None => true,
                Some(range) => version.is_some_and(|v| range.matches(v)),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn entries_name_a_package_and_maybe_a_range() {
        let e = NameRange::parse("@s/x@1.0.0 || >=2.0.0-0").unwrap();
        assert_eq!(e.name, "@s/x");
        assert!(e.covers("@s/x", Some(&v("1.0.0"))) && e.covers("@s/x", Some(&v("2.1.0"))));
        assert!(!e.covers("@s/x", Some(&v("1.0.1"))) && !e.covers("@s/y", Some(&v("1.0.0"))));
        let whole = NameRange::parse("@s/x").unwrap();
        assert_eq!((whole.name.as_str(), whole.range.is_none()), ("@s/x", true));
        assert!(whole.covers("@s/x", None));
        assert!(NameRange::parse("lib@>=1 <2").unwrap().covers("lib", Some(&v("1.5.0"))));
        assert!(matches!(NameRange::parse(""), Err(EntryError::Empty)));
        assert!(matches!(
            NameRange::parse("lib@not a range"),
            Err(EntryError::Range { .. })
        ));
        assert_eq!(
            NameRange::parse("é@1").unwrap().name,
            "é",
            "no panic on a wide first character"
        );
    }
}
