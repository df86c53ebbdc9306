//! Search and the package list, from the shared search index (`search_index`): every package the
//! caller may read that matches a query, best first; every package the caller may read, newest
//! first (the web UI's home page). Each answers from memory after a cheap check that no other
//! replica changed the index.

use super::search_index::Change;
use super::{Registry, Result};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::search::{self, Entry};
use crate::package::{PackageName, deletion, raw_manifests};
use serde_json::Value;

impl Registry {
    /// Local packages the caller may read that match `text`, best first: `(page, total)`.
    pub async fn search(&self, text: &str, from: usize, size: usize, who: &Identity) -> Result<(Vec<Value>, usize)> {
        self.search.refresh().await?;
        let query = search::Query::parse(text);
        let mut hits = Vec::new();
        self.search.for_each(|s| {
            let score = query.score(s);
            if score > 0.0 && self.rules.allows(&s.entry.name, Action::Access, who) {
                hits.push((score, s.clone()));
            }
        });
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.entry.name.cmp(&b.1.entry.name)));
        let max = hits.first().map(|h| h.0).unwrap_or(0.0);
        let total = hits.len();
        let page = hits
            .into_iter()
            .skip(from)
            .take(size)
            .map(|(score, s)| search::result(&s.entry, score, max))
            .collect();
        Ok((page, total))
    }

    /// Every local package the caller may read, most recently changed first: `(page, total)`.
    pub async fn packages(&self, from: usize, size: usize, who: &Identity) -> Result<(Vec<Entry>, usize)> {
        self.search.refresh().await?;
        let mut all = Vec::new();
        self.search.for_each(|s| {
            if self.rules.allows(&s.entry.name, Action::Access, who) {
                all.push(s.clone());
            }
        });
        all.sort_by(|a, b| {
            b.entry
                .modified
                .cmp(&a.entry.modified)
                .then_with(|| a.entry.name.cmp(&b.entry.name))
        });
        let total = all.len();
        let page = all.into_iter().skip(from).take(size).map(|s| s.entry.clone()).collect();
        Ok((page, total))
    }

    /// The entry of a packument just written (`stored`: the manifests a publish kept raw).
    pub(super) fn index_written(&self, name: &PackageName, doc: &Value, stored: Option<&raw_manifests::Stored>) {
        let change = if deletion::is_tombstone(doc) || doc.get("versions").is_none() {
            removal(doc, 0)
        } else {
            let raw = || {
                let latest = doc.pointer("/dist-tags/latest")?.as_str()?;
                stored?.manifest(latest)
            };
            let parsed = search::latest_manifest(doc).is_none().then(raw).flatten();
            let latest = search::latest_manifest(doc).or(parsed.as_ref());
            Change::Upsert(Box::new(Entry::from_doc(name.as_str(), doc, latest)))
        };
        self.search.note(name.as_str(), change);
    }

    /// The packument `doc` was deleted.
    pub(super) fn index_deleted(&self, name: &PackageName, doc: &Value) {
        self.search.note(name.as_str(), removal(doc, 1));
    }
}

/// A removal as of `doc`'s state (`later` revisions after it).
fn removal(doc: &Value, later: u64) -> Change {
    let e = Entry::from_doc("", doc, None);
    Change::Remove {
        created: e.created,
        seq: e.seq + later,
    }
}
