//! What the pages show, read out of documents the registry gives (a packument as clients see it,
//! search-result entries). Pure: no I/O, no HTTP. Links are kept only when they are http(s).

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub version: String,
    pub published: Option<String>,
    pub deprecated: Option<String>,
    pub tags: Vec<String>,
}

impl VersionRow {
    /// The publish date (`2024-05-01`), or nothing.
    pub fn day(&self) -> &str {
        self.published.as_deref().map(day).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyGroup {
    pub label: &'static str,
    /// Name and range.
    pub dependencies: Vec<(String, String)>,
}

/// A package page's content for the latest version (the README comes separately: it is
/// rendered and cached on its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageModel {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub deprecated: Option<String>,
    pub license: Option<String>,
    pub keywords: Vec<String>,
    pub published: Option<String>,
    pub author: Option<Person>,
    pub maintainers: Vec<Person>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub bugs: Option<String>,
    pub tarball: Option<String>,
    /// The tarball's file name (what its size is looked up by).
    pub tarball_file: Option<String>,
    pub unpacked_size: Option<u64>,
    pub file_count: Option<u64>,
    pub integrity: Option<String>,
    pub engines: Vec<(String, String)>,
    /// Tag and version, `latest` first.
    pub tags: Vec<(String, String)>,
    /// Newest first.
    pub versions: Vec<VersionRow>,
    pub dependencies: Vec<DependencyGroup>,
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An absolute http(s) URL, else nothing (no `javascript:` or other schemes reach a link).
pub fn web_url(s: &str) -> Option<String> {
    let u = url::Url::parse(s.trim()).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

/// A repository field (`"git+https://host/a/b.git"`, `{"url": "git@host:a/b.git"}`) as a web link.
pub fn repository_url(v: &Value) -> Option<String> {
    let raw = v.as_str().or_else(|| v.get("url")?.as_str())?.trim();
    let raw = raw.strip_prefix("git+").unwrap_or(raw);
    let https = if let Some(rest) = raw.strip_prefix("git://") {
        format!("https://{rest}")
    } else if let Some(rest) = raw.strip_prefix("ssh://git@") {
        format!("https://{rest}")
    } else if let Some(rest) = raw.strip_prefix("git@") {
        format!("https://{}", rest.replacen(':', "/", 1))
    } else {
        raw.to_owned()
    };
    web_url(https.strip_suffix(".git").unwrap_or(&https))
}

/// `"Name <email> (url)"` or `{"name", "email", "url"}`.
pub fn person(v: &Value) -> Option<Person> {
    if let Some(s) = v.as_str() {
        let (rest, url) = match s.split_once('(') {
            Some((a, b)) => (a, b.strip_suffix(')').and_then(web_url)),
            None => (s, None),
        };
        let (name, email) = match rest.split_once('<') {
            Some((a, b)) => (a, b.split('>').next().map(str::trim).map(str::to_owned)),
            None => (rest, None),
        };
        let name = name.trim();
        return (!name.is_empty()).then(|| Person {
            name: name.to_owned(),
            email: email.filter(|e| !e.is_empty()),
            url,
        });
    }
    Some(Person {
        name: string(v.get("name"))?,
        email: string(v.get("email")),
        url: string(v.get("url")).and_then(|u| web_url(&u)),
    })
}

fn license(v: Option<&Value>) -> Option<String> {
    let v = v?;
    string(Some(v)).or_else(|| string(v.get("type")))
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

const DEPENDENCY_KINDS: &[(&str, &str)] = &[
    ("dependencies", "Dependencies"),
    ("peerDependencies", "Peer dependencies"),
    ("optionalDependencies", "Optional dependencies"),
    ("devDependencies", "Development dependencies"),
];

/// Versions newest first: by semver, those that do not parse last.
fn newest_first(versions: &mut [VersionRow]) {
    versions.sort_by(
        |a, b| match (semver::Version::parse(&a.version), semver::Version::parse(&b.version)) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => b.version.cmp(&a.version),
        },
    );
}

impl PackageModel {
    /// From a packument as clients see it (tarball URLs pointing here).
    pub fn from_packument(doc: &Value) -> PackageModel {
        let tags = doc.get("dist-tags").and_then(Value::as_object);
        let latest_version = tags.and_then(|t| t.get("latest")).and_then(Value::as_str);
        let versions_obj = doc.get("versions").and_then(Value::as_object);
        let latest = latest_version.and_then(|v| versions_obj?.get(v));
        let time = doc.get("time");
        let mut tag_list: Vec<(String, String)> = tags
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        tag_list.sort_by(|a, b| (a.0 != "latest", &a.0).cmp(&(b.0 != "latest", &b.0)));
        let mut versions: Vec<VersionRow> = versions_obj
            .map(|all| {
                all.iter()
                    .map(|(v, m)| VersionRow {
                        version: v.clone(),
                        published: string(time.and_then(|t| t.get(v))),
                        deprecated: string(m.get("deprecated")),
                        tags: tag_list
                            .iter()
                            .filter(|(_, tv)| tv == v)
                            .map(|(t, _)| t.clone())
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        newest_first(&mut versions);
        let field = |k: &str| latest.and_then(|l| l.get(k)).or_else(|| doc.get(k));
        let dist = latest.and_then(|l| l.get("dist"));
        let tarball = string(dist.and_then(|d| d.get("tarball"))).and_then(|u| web_url(&u));
        PackageModel {
            name: string(doc.get("name")).unwrap_or_default(),
            version: latest_version.map(str::to_owned),
            description: string(field("description")),
            deprecated: string(latest.and_then(|l| l.get("deprecated"))),
            license: license(field("license")),
            keywords: field("keywords")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(|s| string(Some(s))).collect())
                .unwrap_or_default(),
            published: latest_version.and_then(|v| string(time.and_then(|t| t.get(v)))),
            author: field("author").and_then(person),
            maintainers: doc
                .get("maintainers")
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(person).collect())
                .unwrap_or_default(),
            repository: field("repository").and_then(repository_url),
            homepage: string(field("homepage")).and_then(|u| web_url(&u)),
            bugs: field("bugs")
                .and_then(|b| b.as_str().or_else(|| b.get("url")?.as_str()))
                .and_then(web_url),
            tarball_file: tarball.as_deref().and_then(|u| u.rsplit('/').next()).map(str::to_owned),
            tarball,
            unpacked_size: dist.and_then(|d| d.get("unpackedSize")).and_then(Value::as_u64),
            file_count: dist.and_then(|d| d.get("fileCount")).and_then(Value::as_u64),
            integrity: string(dist.and_then(|d| d.get("integrity").or_else(|| d.get("shasum")))),
            engines: pairs(latest.and_then(|l| l.get("engines"))),
            tags: tag_list,
            versions,
            dependencies: DEPENDENCY_KINDS
                .iter()
                .map(|(k, label)| DependencyGroup {
                    label,
                    dependencies: pairs(latest.and_then(|l| l.get(*k))),
                })
                .filter(|g| !g.dependencies.is_empty())
                .collect(),
        }
    }
}

/// The README markdown of a packument: the document's (where npm and Verdaccio keep the
/// latest's), else the latest version's.
pub fn readme_source(doc: &Value) -> &str {
    let latest = doc
        .pointer("/dist-tags/latest")
        .and_then(Value::as_str)
        .and_then(|v| doc.get("versions")?.get(v));
    doc.get("readme")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .or_else(|| latest?.get("readme")?.as_str())
        .unwrap_or("")
}

/// One line of a list of packages (home, search), from a search-result entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub date: Option<String>,
    pub license: Option<String>,
    pub keywords: Vec<String>,
}

impl Summary {
    pub fn from_search_result(entry: &Value) -> Option<Summary> {
        let p = entry.get("package")?;
        Some(Summary {
            name: string(p.get("name"))?,
            version: string(p.get("version")),
            description: string(p.get("description")),
            date: string(p.get("date")),
            license: license(p.get("license")),
            keywords: p
                .get("keywords")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(|s| string(Some(s))).collect())
                .unwrap_or_default(),
        })
    }
}

/// A timestamp as people read it in a list: "3 days ago".
pub fn ago(iso: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(iso) else {
        return String::new();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    let (n, unit) = match secs {
        s if s < 60 => return "just now".to_owned(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 30 * 86_400 => (s / 86_400, "day"),
        s if s < 365 * 86_400 => (s / (30 * 86_400), "month"),
        s => (s / (365 * 86_400), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The date part of a timestamp (`2024-05-01`).
pub fn day(iso: &str) -> &str {
    iso.get(..10).unwrap_or(iso)
}

/// A byte count as people read it.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_packument_as_a_page() {
        let doc = json!({
            "name": "lib", "readme": "# lib",
            "dist-tags": {"latest": "1.10.0", "next": "2.0.0-beta.1", "old": "1.2.0"},
            "time": {"1.2.0": "2024-01-01T00:00:00.000Z", "1.10.0": "2024-03-01T00:00:00.000Z"},
            "maintainers": [{"name": "alice", "email": "a@example.com"}],
            "versions": {
                "1.2.0": {"version": "1.2.0", "deprecated": "use 1.10"},
                "2.0.0-beta.1": {"version": "2.0.0-beta.1"},
                "1.10.0": {"version": "1.10.0", "description": "d", "license": "MIT",
                    "keywords": ["a", ""], "author": "Bob <bob@example.com> (https://bob.example)",
                    "repository": {"type": "git", "url": "git+ssh://git@git.example.com/org/lib.git"},
                    "homepage": "javascript:alert(1)", "bugs": {"url": "https://git.example.com/org/lib/issues"},
                    "dependencies": {"dep": "^1"}, "devDependencies": {"jest": "*"},
                    "dist": {"tarball": "http://reg/lib/-/lib-1.10.0.tgz", "unpackedSize": 2048, "integrity": "sha512-x"}}
            }
        });
        let m = PackageModel::from_packument(&doc);
        assert_eq!(m.version.as_deref(), Some("1.10.0"));
        assert_eq!(m.description.as_deref(), Some("d"));
        assert_eq!(m.keywords, ["a"]);
        assert_eq!(m.published.as_deref(), Some("2024-03-01T00:00:00.000Z"));
        let order: Vec<_> = m.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(order, ["2.0.0-beta.1", "1.10.0", "1.2.0"]);
        assert_eq!(m.versions[2].deprecated.as_deref(), Some("use 1.10"));
        assert_eq!(m.versions[1].tags, ["latest"]);
        assert_eq!(m.tags[0].0, "latest");
        assert_eq!(m.repository.as_deref(), Some("https://git.example.com/org/lib"));
        assert_eq!(m.homepage, None, "javascript: is not a link");
        assert_eq!(m.bugs.as_deref(), Some("https://git.example.com/org/lib/issues"));
        let bob = m.author.unwrap();
        assert_eq!(
            (bob.name.as_str(), bob.email.as_deref()),
            ("Bob", Some("bob@example.com"))
        );
        assert_eq!(bob.url.as_deref(), Some("https://bob.example/"));
        assert_eq!(m.maintainers[0].name, "alice");
        assert_eq!(m.tarball_file.as_deref(), Some("lib-1.10.0.tgz"));
        assert_eq!(m.unpacked_size, Some(2048));
        let labels: Vec<_> = m.dependencies.iter().map(|g| g.label).collect();
        assert_eq!(labels, ["Dependencies", "Development dependencies"]);
        assert_eq!(readme_source(&doc), "# lib");
    }

    #[test]
    fn list_lines_and_times() {
        let e = json!({"package": {"name": "a", "version": "1.0.0", "date": "2024-01-01T00:00:00Z", "license": "MIT"}});
        let s = Summary::from_search_result(&e).unwrap();
        assert_eq!((s.name.as_str(), s.license.as_deref()), ("a", Some("MIT")));
        let now = DateTime::parse_from_rfc3339("2024-01-04T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ago("2024-01-01T00:00:00Z", now), "3 days ago");
        assert_eq!(ago("2024-01-03T23:00:00Z", now), "1 hour ago");
        assert_eq!(ago("bad", now), "");
        assert_eq!(day("2024-01-01T00:00:00Z"), "2024-01-01");
        assert_eq!(size(2048), "2.0 kB");
    }
}
