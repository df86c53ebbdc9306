//! Package URLs in every spelling clients send: `@scope%2fname` or `@scope/name`, and tarballs as
//! `/name/-/name-1.0.0.tgz`, `/@scope/name/-/name-1.0.0.tgz` or `/@scope/name/-/@scope/name-1.0.0.tgz`.
//! Parsing is pure; handlers dispatch on the result.

use crate::package::{PackageError, PackageName};
use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackagePath {
    /// `/:pkg`
    Packument(PackageName),
    /// `/:pkg/:version-or-tag`
    Version(PackageName, String),
    /// `/:pkg/-rev/:rev`
    Revision(PackageName, String),
    /// `/:pkg/-/:file`
    Tarball(PackageName, String),
    /// `/:pkg/-/:file/-rev/:rev`
    TarballRevision(PackageName, String, String),
}

fn bad(path: &str) -> PackageError {
    PackageError::BadRequest(format!("not a package URL: {path}"))
}

/// Splits a decoded path into the package name and the segments after it.
pub fn split_name(path: &str) -> Result<(PackageName, Vec<&str>), PackageError> {
    let mut segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segs.last() == Some(&"") {
        segs.pop();
    }
    if segs.is_empty() {
        return Err(bad(path));
    }
    let (name, rest) = if segs[0].starts_with('@') {
        if segs.len() < 2 {
            return Err(PackageError::InvalidName {
                name: segs[0].to_owned(),
                reason: "a scoped name must look like @scope/name".into(),
            });
        }
        (format!("{}/{}", segs[0], segs[1]), segs.split_off(2))
    } else {
        (segs[0].to_owned(), segs.split_off(1))
    };
    Ok((PackageName::parse(&name)?, rest))
}

pub fn decode(raw: &str) -> Result<String, PackageError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| PackageError::BadRequest(format!("path is not valid UTF-8: {raw}")))
}

pub fn parse(raw_path: &str) -> Result<PackagePath, PackageError> {
    let path = decode(raw_path)?;
    let (name, rest) = split_name(&path)?;
    let file = |f: &str| -> Result<String, PackageError> {
        PackageName::check_filename(f)?;
        Ok(f.to_owned())
    };
    let scope_matches = |s: &str| name.scope().is_some_and(|scope| s.strip_prefix('@') == Some(scope));
    Ok(match rest.as_slice() {
        [] => PackagePath::Packument(name),
        ["-rev", rev] => PackagePath::Revision(name, (*rev).to_owned()),
        ["-", f] => PackagePath::Tarball(name.clone(), file(f)?),
        ["-", s, f] if scope_matches(s) => PackagePath::Tarball(name.clone(), file(f)?),
        ["-", f, "-rev", rev] => PackagePath::TarballRevision(name.clone(), file(f)?, (*rev).to_owned()),
        ["-", s, f, "-rev", rev] if scope_matches(s) => {
            PackagePath::TarballRevision(name.clone(), file(f)?, (*rev).to_owned())
        }
        [v] if !v.starts_with('-') => PackagePath::Version(name, (*v).to_owned()),
        _ => return Err(bad(&path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PackageName {
        PackageName::parse(s).unwrap()
    }

    #[test]
    fn packument_spellings() {
        for p in ["/@s/pkg", "/@s%2fpkg", "/@s%2Fpkg", "/@s/pkg/"] {
            assert_eq!(parse(p).unwrap(), PackagePath::Packument(n("@s/pkg")), "{p}");
        }
        assert_eq!(parse("/lodash").unwrap(), PackagePath::Packument(n("lodash")));
        assert_eq!(parse("/JSONStream").unwrap(), PackagePath::Packument(n("JSONStream")));
        assert_eq!(
            parse("/lodash/latest").unwrap(),
            PackagePath::Version(n("lodash"), "latest".into())
        );
        assert_eq!(
            parse("/@s%2fpkg/1.0.0").unwrap(),
            PackagePath::Version(n("@s/pkg"), "1.0.0".into())
        );
    }

    #[test]
    fn tarball_spellings() {
        let t = PackagePath::Tarball(n("@s/pkg"), "pkg-1.0.0.tgz".into());
        for p in [
            "/@s/pkg/-/pkg-1.0.0.tgz",
            "/@s%2fpkg/-/pkg-1.0.0.tgz",
            "/@s/pkg/-/@s/pkg-1.0.0.tgz",
            "/@s%2fpkg/-/@s%2fpkg-1.0.0.tgz",
        ] {
            assert_eq!(parse(p).unwrap(), t, "{p}");
        }
        assert_eq!(
            parse("/a/-/a-1.0.0.tgz").unwrap(),
            PackagePath::Tarball(n("a"), "a-1.0.0.tgz".into())
        );
        assert_eq!(
            parse("/@s%2fpkg/-/pkg-1.0.3.tgz/-rev/16-e11c").unwrap(),
            PackagePath::TarballRevision(n("@s/pkg"), "pkg-1.0.3.tgz".into(), "16-e11c".into())
        );
        assert_eq!(
            parse("/a/-rev/3-abc").unwrap(),
            PackagePath::Revision(n("a"), "3-abc".into())
        );
    }

    #[test]
    fn tricks_are_refused() {
        for p in [
            "/..",
            "/%2e%2e",
            "/a/-/..%2f..%2fetc%2fpasswd",
            "/a/-/../x.tgz",
            "/@s",
            "/@other/x/-/@s/x-1.tgz",
            "/a/-/b/c/d",
            "/%ff",
            "/a/-/package.json",
            "/",
        ] {
            assert!(parse(p).is_err(), "{p} accepted: {:?}", parse(p));
        }
    }
}
