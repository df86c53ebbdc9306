//! Search over local packages: what a search index keeps of each package ([`Entry`], small and
//! capped, so the index is bounded by the number of packages), a text query matched against
//! names, descriptions and keywords, and results in the shape npm prints.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Caps on what an entry keeps, so that one package cannot make the index large.
const MAX_TEXT: usize = 300;
const MAX_SHORT: usize = 100;
const MAX_LIST: usize = 20;

/// What the index keeps of one package: enough to match a query, print npm's search result and
/// list packages newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// The `latest` version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// When the package last changed (`time.modified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// When its `latest` version was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<String>,
    /// Which of two entries of one package is newer: the package's creation time (a package
    /// unpublished and published again starts over), then its revision number (`_rev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub seq: u64,
}

fn text(v: Option<&Value>, max: usize) -> Option<String> {
    let s = v?.as_str()?;
    Some(s.chars().take(max).collect())
}

/// The manifest of the document's `latest` version, if the document holds it.
pub fn latest_manifest(doc: &Value) -> Option<&Value> {
    let v = doc.pointer("/dist-tags/latest")?.as_str()?;
    doc.get("versions")?.get(v).filter(|m| m.is_object())
}

impl Entry {
    /// The entry of a stored packument; `latest` is its `latest` manifest (passed apart: a
    /// publish holds stored manifests as raw text).
    pub fn from_doc(name: &str, doc: &Value, latest: Option<&Value>) -> Entry {
        let field = |f: &str| latest.and_then(|l| l.get(f)).or_else(|| doc.get(f));
        let version = doc
            .pointer("/dist-tags/latest")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let license = match field("license") {
            Some(Value::String(s)) => Some(s.chars().take(MAX_SHORT).collect()),
            Some(Value::Object(o)) => text(o.get("type"), MAX_SHORT),
            _ => None,
        };
        let keywords = field("keywords")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| text(Some(k), MAX_SHORT))
                    .take(MAX_LIST)
                    .collect()
            })
            .unwrap_or_default();
        let maintainers = doc
            .get("maintainers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| text(m.get("name"), MAX_SHORT))
                    .take(MAX_LIST)
                    .collect()
            })
            .unwrap_or_default();
        let seq = doc
            .get("_rev")
            .and_then(Value::as_str)
            .and_then(|r| r.split_once('-'))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(0);
        Entry {
            name: name.to_owned(),
            description: text(field("description"), MAX_TEXT),
            keywords,
            license,
            modified: text(doc.pointer("/time/modified"), MAX_SHORT),
            published: version
                .as_deref()
                .and_then(|v| text(doc.get("time").and_then(|t| t.get(v)), MAX_SHORT)),
            publisher: text(latest.and_then(|l| l.pointer("/_npmUser/name")), MAX_SHORT),
            maintainers,
            created: text(doc.pointer("/time/created"), MAX_SHORT),
            seq,
            version: version.map(|v| v.chars().take(MAX_SHORT).collect()),
        }
    }

    /// Whether this entry describes a later state of the package than `other`.
    pub fn is_newer_than(&self, other: &Entry) -> bool {
        (&self.created, self.seq) >= (&other.created, other.seq)
    }

    /// About how many bytes the entry takes in memory (for the index's bound).
    pub fn weight(&self) -> usize {
        let strings = [
            &self.version,
            &self.description,
            &self.license,
            &self.modified,
            &self.published,
            &self.publisher,
            &self.created,
        ];
        self.name.len()
            + strings.iter().map(|s| s.as_ref().map_or(0, String::len)).sum::<usize>()
            + self
                .keywords
                .iter()
                .chain(&self.maintainers)
                .map(String::len)
                .sum::<usize>()
    }
}

/// An entry prepared for matching: lower-cased once, when it enters the index.
#[derive(Debug)]
pub struct Searchable {
    pub entry: Entry,
    name: String,
    description: String,
    keywords: Vec<String>,
}

impl Searchable {
    pub fn new(entry: Entry) -> Self {
        Searchable {
            name: entry.name.to_lowercase(),
            description: entry.description.as_deref().unwrap_or_default().to_lowercase(),
            keywords: entry.keywords.iter().map(|k| k.to_lowercase()).collect(),
            entry,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub terms: Vec<String>,
    pub keywords: Vec<String>,
    pub scope: Option<String>,
}

impl Query {
    pub fn parse(text: &str) -> Self {
        let mut q = Query {
            terms: Vec::new(),
            keywords: Vec::new(),
            scope: None,
        };
        for word in text.split_whitespace() {
            let lower = word.to_lowercase();
            if let Some(k) = lower.strip_prefix("keywords:") {
                q.keywords
                    .extend(k.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
            } else if let Some(s) = lower.strip_prefix("scope:") {
                q.scope = Some(s.trim_start_matches('@').to_owned());
            } else if !lower.contains(':') {
                q.terms.push(lower);
            }
        }
        q
    }

    /// A score above zero when the package matches; higher is better.
    pub fn score(&self, p: &Searchable) -> f64 {
        if let Some(scope) = &self.scope
            && !(p.name.starts_with('@')
                && p.name[1..].starts_with(scope.as_str())
                && p.name[1 + scope.len()..].starts_with('/'))
        {
            return 0.0;
        }
        if !self.keywords.iter().all(|k| p.keywords.contains(k)) {
            return 0.0;
        }
        let mut score = 1.0;
        for term in &self.terms {
            score *= if p.name == *term {
                10.0
            } else if p.name.contains(term.as_str()) {
                4.0
            } else if p.keywords.iter().any(|k| k.contains(term.as_str())) {
                2.0
            } else if p.description.contains(term.as_str()) {
                1.0
            } else {
                return 0.0;
            };
        }
        score
    }
}

/// One entry of the `objects` list of `/-/v1/search`.
pub fn result(e: &Entry, score: f64, max_score: f64) -> Value {
    let normalized = if max_score > 0.0 { score / max_score } else { 0.0 };
    let maintainers: Vec<Value> = e.maintainers.iter().map(|m| json!({"username": m})).collect();
    let mut package = json!({
        "name": e.name,
        "version": e.version,
        "description": e.description,
        "keywords": e.keywords,
        "date": e.modified,
        "links": {},
        "maintainers": maintainers,
    });
    if let Some(p) = &e.publisher {
        package["publisher"] = json!({"username": p});
    }
    if let Some(l) = &e.license {
        package["license"] = json!(l);
    }
    json!({
        "package": package,
        "score": {"final": normalized, "detail": {"quality": 1.0, "popularity": 1.0, "maintenance": 1.0}},
        "searchScore": score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, desc: &str, kw: &[&str]) -> Value {
        json!({"name": name, "_rev": "3-ab", "dist-tags": {"latest": "1.0.0"},
               "time": {"created": "2024-01-01T00:00:00.000Z", "modified": "2024-02-01T00:00:00.000Z", "1.0.0": "2024-02-01T00:00:00.000Z"},
               "maintainers": [{"name": "alice"}],
               "versions": {"1.0.0": {"version": "1.0.0", "description": desc, "keywords": kw, "license": "MIT",
                                      "_npmUser": {"name": "alice"}}}})
    }

    fn searchable(d: &Value) -> Searchable {
        Searchable::new(Entry::from_doc(d["name"].as_str().unwrap(), d, latest_manifest(d)))
    }

    #[test]
    fn matches_name_description_keywords() {
        let a = searchable(&doc("left-pad", "pads strings", &["string"]));
        let b = searchable(&doc("@acme/widget", "a widget", &["ui"]));
        assert!(Query::parse("pad").score(&a) > Query::parse("strings").score(&a));
        assert!(Query::parse("left-pad").score(&a) > Query::parse("pad").score(&a));
        assert_eq!(Query::parse("pad").score(&b), 0.0);
        assert!(Query::parse("keywords:ui").score(&b) > 0.0);
        assert_eq!(Query::parse("keywords:ui").score(&a), 0.0);
        assert!(Query::parse("scope:acme").score(&b) > 0.0);
        assert_eq!(Query::parse("scope:@acme").score(&a), 0.0);
        assert_eq!(Query::parse("scope:ac").score(&b), 0.0, "a whole scope, not a prefix");
        let r = result(&a.entry, 4.0, 4.0);
        assert_eq!(r["package"]["name"], "left-pad");
        assert_eq!(r["package"]["version"], "1.0.0");
        assert_eq!(r["package"]["publisher"]["username"], "alice");
        assert_eq!(r["package"]["license"], "MIT");
        assert_eq!(r["score"]["final"], 1.0);
    }

    #[test]
    fn entries_are_capped_and_ordered_by_revision() {
        let mut d = doc("big", &"d".repeat(10_000), &[]);
        d["versions"]["1.0.0"]["keywords"] = json!(vec!["k".repeat(500); 1000]);
        let e = Entry::from_doc("big", &d, latest_manifest(&d));
        assert!(e.weight() < 5_000, "{}", e.weight());
        assert_eq!(e.seq, 3);
        assert_eq!(e.published.as_deref(), Some("2024-02-01T00:00:00.000Z"));
        let mut later = e.clone();
        later.seq = 4;
        assert!(later.is_newer_than(&e) && !e.is_newer_than(&later));
        // Published again after an unpublish: a newer creation wins over a higher revision.
        let mut reborn = e.clone();
        reborn.seq = 1;
        reborn.created = Some("2025-01-01T00:00:00.000Z".into());
        assert!(reborn.is_newer_than(&later));
    }
}
