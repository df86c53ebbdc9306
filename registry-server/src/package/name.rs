//! Package names. Reads accept any name that is safe as a storage path (legacy names such as
//! `JSONStream` included); new packages must follow npm's current naming rules.

use super::PackageError;
use std::fmt;

pub const MAX_NAME_LENGTH: usize = 214;
/// The longest tarball file name: what file systems store (and a key segment on every backend).
pub const MAX_FILENAME_LENGTH: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName {
    full: String,
    /// Byte index of the `/` in a scoped name.
    slash: Option<usize>,
}

fn err(name: &str, reason: &str) -> PackageError {
    PackageError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Characters `encodeURIComponent` leaves alone: anything else could not round-trip through a URL.
fn url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!*'()".contains(c)
}

fn check_part(full: &str, part: &str) -> Result<(), PackageError> {
    if part.is_empty() {
        return Err(err(full, "name parts must not be empty"));
    }
    if part.starts_with('.') {
        return Err(err(full, "name cannot start with a period"));
    }
    if !part.chars().all(url_safe) {
        return Err(err(full, "name can only contain URL-friendly characters"));
    }
    Ok(())
}

impl PackageName {
    /// Parses a name for reading: safe as a path, possibly legacy.
    pub fn parse(name: &str) -> Result<Self, PackageError> {
        if name.len() > MAX_NAME_LENGTH {
            return Err(err(name, "name can no longer contain more than 214 characters"));
        }
        let slash = if let Some(rest) = name.strip_prefix('@') {
            let (scope, pkg) = rest
                .split_once('/')
                .ok_or_else(|| err(name, "a scoped name must look like @scope/name"))?;
            check_part(name, scope)?;
            check_part(name, pkg)?;
            Some(scope.len() + 1)
        } else {
            check_part(name, name)?;
            None
        };
        Ok(PackageName {
            full: name.to_owned(),
            slash,
        })
    }

    /// npm's rules for a package that does not exist yet.
    pub fn validate_new(&self) -> Result<(), PackageError> {
        let n = &self.full;
        if n.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err(n, "name can no longer contain capital letters"));
        }
        if self.unscoped().starts_with('_') || self.scope().is_some_and(|s| s.starts_with('_')) {
            return Err(err(n, "name cannot start with an underscore"));
        }
        if n.chars().any(|c| "~'!()*".contains(c)) {
            return Err(err(n, "name can no longer contain special characters (\"~'!()*\")"));
        }
        if ["node_modules", "favicon.ico"].contains(&self.unscoped()) && self.slash.is_none() {
            return Err(err(n, "name is not allowed"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// `@scope` without the `@`, for scoped names.
    pub fn scope(&self) -> Option<&str> {
        self.slash.map(|i| &self.full[1..i])
    }

    /// The name without its scope.
    pub fn unscoped(&self) -> &str {
        match self.slash {
            Some(i) => &self.full[i + 1..],
            None => &self.full,
        }
    }

    /// The tarball file name npm gives a version: `name-1.0.0.tgz`, scope left out.
    pub fn tarball_filename(&self, version: &str) -> String {
        format!("{}-{}.tgz", self.unscoped(), version)
    }

    /// Checks a tarball file name taken from a URL or made for a publish, so it is safe to use
    /// as a storage key and fits in a file name.
    pub fn check_filename(file: &str) -> Result<(), PackageError> {
        Self::check_filename_length(file)?;
        let ok = file.ends_with(".tgz")
            && !file.starts_with('.')
            && file.chars().all(|c| c.is_ascii_alphanumeric() || "-._+".contains(c));
        if ok {
            Ok(())
        } else {
            Err(PackageError::InvalidFilename(file.to_owned()))
        }
    }
}

impl PackageName {
    /// A tarball file name must fit in a file name (255 bytes): a long name with a long version
    /// may not.
    pub fn check_filename_length(file: &str) -> Result<(), PackageError> {
        if file.len() > MAX_FILENAME_LENGTH {
            return Err(PackageError::BadRequest(format!(
                "the tarball file name would be {} bytes long; the limit is {MAX_FILENAME_LENGTH} (use a shorter version)",
                file.len()
            )));
        }
        Ok(())
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_scoped() {
        let n = PackageName::parse("@scope/pkg").unwrap();
        assert_eq!(n.scope(), Some("scope"));
        assert_eq!(n.unscoped(), "pkg");
        assert_eq!(n.tarball_filename("1.0.0"), "pkg-1.0.0.tgz");
        let n = PackageName::parse("lodash").unwrap();
        assert_eq!(n.scope(), None);
        assert_eq!(n.tarball_filename("4.0.0-beta.1"), "lodash-4.0.0-beta.1.tgz");
    }

    #[test]
    fn refuses_path_tricks() {
        for bad in [
            "..",
            ".",
            "../etc",
            "a/b",
            "@scope/../x",
            "@/x",
            "@s/",
            "@s/a/b",
            "a\\b",
            "",
            "a b",
            "%2e%2e",
            ".hidden",
            "@s/.x",
        ] {
            assert!(PackageName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(PackageName::parse(&"a".repeat(215)).is_err());
        assert!(PackageName::parse(&"a".repeat(214)).is_ok());
    }

    #[test]
    fn legacy_names_read_but_not_created() {
        let n = PackageName::parse("JSONStream").unwrap();
        assert!(n.validate_new().is_err());
        assert!(PackageName::parse("_under").unwrap().validate_new().is_err());
        assert!(PackageName::parse("a!b").unwrap().validate_new().is_err());
        assert!(PackageName::parse("node_modules").unwrap().validate_new().is_err());
        assert!(PackageName::parse("@a/node_modules").unwrap().validate_new().is_ok());
        assert!(PackageName::parse("good-name.js").unwrap().validate_new().is_ok());
    }

    #[test]
    fn filenames_are_checked() {
        assert!(PackageName::check_filename("pkg-1.0.0.tgz").is_ok());
        assert!(PackageName::check_filename("pkg-1.0.0+build.1.tgz").is_ok());
        for bad in ["../x.tgz", ".x.tgz", "a/b.tgz", "pkg.tar", "package.json"] {
            assert!(PackageName::check_filename(bad).is_err(), "{bad}");
        }
    }
}
