//! Search over local packages: every listed package the caller may read, scored (a full scan;
//! fine for a private registry's few thousand packages).

use super::{Registry, Result, package_list};
use crate::auth::Identity;
use crate::auth::access::Action;
use crate::package::{PackageName, search};
use serde_json::Value;

impl Registry {
    /// Local packages the caller may read that match `text`, best first: `(page, total)`.
    pub async fn search(&self, text: &str, from: usize, size: usize, who: &Identity) -> Result<(Vec<Value>, usize)> {
        let query = search::Query::parse(text);
        let mut hits = Vec::new();
        for n in package_list::read(self.storage.as_ref()).await? {
            let Ok(name) = PackageName::parse(&n) else {
                continue;
            };
            if !self.rules.allows(name.as_str(), Action::Access, who) {
                continue;
            }
            let Some(doc) = self.read_doc(&name).await? else {
                continue;
            };
            let score = query.score(&doc.value);
            if score > 0.0 {
                hits.push((score, doc.value));
            }
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        let max = hits.first().map(|h| h.0).unwrap_or(0.0);
        let total = hits.len();
        let page = hits
            .into_iter()
            .skip(from)
            .take(size)
            .map(|(s, d)| search::result(&d, s, max))
            .collect();
        Ok((page, total))
    }
}
