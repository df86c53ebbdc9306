//! npm version ranges, and `name@range` entries (a rule's block list): parsed once, by one parser
//! with npm's own semantics (`nodejs-semver`: hyphen ranges, x-ranges, `~`/`^`, `||`, prereleases
//! only when a comparator names one), both when the config is validated and when a version is
//! checked against an entry.

use nodejs_semver::{Range, Version};

/// An npm range, as `npm install name@range` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmRange(Range);

impl NpmRange {
    /// Whether `version` (a version string as a packument spells it) is in the range; a string
    /// that is not a version is in no range.
    pub fn matches(&self, version: &str) -> bool {
        Version::parse(version).is_ok_and(|v| self.0.satisfies(&v))
    }
}

pub fn parse_npm_range(range: &str) -> Result<NpmRange, nodejs_semver::SemverError> {
    // An empty string is `*` to npm; in a block entry `name@` is a typo, not "every version".
    if range.trim().is_empty() {
        return Err(nodejs_semver::SemverError);
    }
    Range::parse(range).map(NpmRange)
}

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("an empty entry names no package")]
    Empty,
    #[error("{range:?} is not an npm version range (forms: 1.2.3, >=1 <2, ^1.2, ~1.2, 1.x, 1 - 2, 1.x || 2.x, *)")]
    Range { range: String },
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
        let entry = entry.trim();
        let Some(first) = entry.chars().next() else {
            return Err(EntryError::Empty);
        };
        // The range follows the first `@` after the name's first character (a scope's `@`):
        // package names hold no `@`, ranges may (`1.0.0-beta@x` is no range, but the parser says so).
        let skip = first.len_utf8();
        let Some(at) = entry[skip..].find('@').map(|i| i + skip) else {
            return Ok(NameRange {
                name: entry.to_owned(),
                range: None,
            });
        };
        let range = &entry[at + 1..];
        let parsed = parse_npm_range(range).map_err(|_| EntryError::Range {
            range: range.to_owned(),
        })?;
        Ok(NameRange {
            name: entry[..at].to_owned(),
            range: Some(parsed),
        })
    }

    /// Whether the entry names this version (as the packument spells it) of this package.
    pub fn covers(&self, name: &str, version: &str) -> bool {
        self.name == name
            && match &self.range {
                None => true,
                Some(range) => range.matches(version),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(r: &str) -> NpmRange {
        parse_npm_range(r).unwrap_or_else(|_| panic!("{r:?} is an npm range"))
    }

    #[test]
    fn every_npm_range_form() {
        // (range, versions in it, versions not in it), as `npm install pkg@range` picks them.
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("1.2.3", &["1.2.3"], &["1.2.4", "1.2.3-beta.1"]),
            ("=1.2.3", &["1.2.3"], &["1.2.4"]),
            (">=1 <2", &["1.0.0", "1.9.9"], &["2.0.0", "0.9.0", "1.5.0-beta.1"]),
            (">=1.0.0 <2.0.0", &["1.5.0"], &["2.0.0"]),
            ("1.x || 2.x", &["1.0.0", "2.3.4"], &["3.0.0", "0.1.0"]),
            ("1.0.0 || >=3", &["1.0.0", "3.1.0"], &["2.0.0", "1.0.1"]),
            ("~1.2", &["1.2.0", "1.2.9"], &["1.3.0"]),
            ("~1.2.3", &["1.2.3", "1.2.8"], &["1.3.0", "1.2.2"]),
            ("^1", &["1.0.0", "1.99.0"], &["2.0.0"]),
            ("^0.2.3", &["0.2.3", "0.2.9"], &["0.3.0"]),
            ("1 - 2", &["1.0.0", "2.9.9"], &["3.0.0", "0.9.9"]),
            ("1.2.3 - 2.3.4", &["1.2.3", "2.3.4"], &["2.3.5", "1.2.2"]),
            ("*", &["0.0.1", "9.9.9"], &["1.0.0-alpha"]),
            ("x", &["1.0.0"], &[]),
            ("1.2.x", &["1.2.0", "1.2.7"], &["1.3.0"]),
            ("1", &["1.0.0", "1.5.0"], &["2.0.0"]),
            // A prerelease is in a range only when a comparator of the same version names one.
            (
                ">=1.0.0-beta.2 <1.0.0",
                &["1.0.0-beta.2", "1.0.0-rc.1"],
                &["1.0.0-beta.1", "1.1.0-beta.1"],
            ),
            ("<2.0.0-0", &["1.9.9"], &["2.0.0"]),
        ];
        for (r, inside, outside) in cases {
            let parsed = range(r);
            for v in *inside {
                assert!(parsed.matches(v), "{v} is in {r:?}");
            }
            for v in *outside {
                assert!(!parsed.matches(v), "{v} is not in {r:?}");
            }
        }
        assert!(!range("*").matches("not-a-version"));
        for bad in ["", "  ", "not a range", ">=>1", "1.2.3.4.5"] {
            assert!(parse_npm_range(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn entries_name_a_package_and_maybe_a_range() {
        let e = NameRange::parse("@s/x@1.0.0 || >=2.0.0-0").unwrap();
        assert_eq!(e.name, "@s/x");
        assert!(e.covers("@s/x", "1.0.0") && e.covers("@s/x", "2.1.0"));
        assert!(!e.covers("@s/x", "1.0.1") && !e.covers("@s/y", "1.0.0"));
        let whole = NameRange::parse("@s/x").unwrap();
        assert_eq!((whole.name.as_str(), whole.range.is_none()), ("@s/x", true));
        assert!(whole.covers("@s/x", "whatever"));
        assert!(NameRange::parse("lib@>=1 <2").unwrap().covers("lib", "1.5.0"));
        assert!(
            NameRange::parse("left-pad@1.x || 2.x")
                .unwrap()
                .covers("left-pad", "2.0.1")
        );
        assert!(NameRange::parse("lib@1 - 2").unwrap().covers("lib", "2.5.0"));
        assert!(matches!(NameRange::parse(""), Err(EntryError::Empty)));
        assert!(matches!(NameRange::parse("lib@"), Err(EntryError::Range { .. })));
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
