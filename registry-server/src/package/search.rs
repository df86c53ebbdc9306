//! `npm search` over local packages: a text query matched against names, descriptions and
//! keywords, answered in the shape npm prints.

use serde_json::{Value, json};

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

    /// A score above zero when the packument matches; higher is better.
    pub fn score(&self, doc: &Value) -> f64 {
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let latest = latest(doc);
        let description = latest
            .and_then(|l| l.get("description"))
            .or_else(|| doc.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let keywords: Vec<String> = latest
            .and_then(|l| l.get("keywords"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_lowercase).collect())
            .unwrap_or_default();
        if let Some(scope) = &self.scope
            && !name.starts_with(&format!("@{scope}/"))
        {
            return 0.0;
        }
        if !self.keywords.iter().all(|k| keywords.contains(k)) {
            return 0.0;
        }
        let mut score = 1.0;
        for term in &self.terms {
            score *= if name == *term {
                10.0
            } else if name.contains(term.as_str()) {
                4.0
            } else if keywords.iter().any(|k| k.contains(term.as_str())) {
                2.0
            } else if description.contains(term.as_str()) {
                1.0
            } else {
                return 0.0;
            };
        }
        score
    }
}

fn latest(doc: &Value) -> Option<&Value> {
    let v = doc.pointer("/dist-tags/latest")?.as_str()?;
    doc.get("versions")?.get(v)
}

/// One entry of the `objects` list of `/-/v1/search`.
pub fn result(doc: &Value, score: f64, max_score: f64) -> Value {
    let latest = latest(doc).cloned().unwrap_or(Value::Null);
    let name = doc.get("name").cloned().unwrap_or(Value::Null);
    let version = latest.get("version").cloned().unwrap_or(Value::Null);
    let date = doc.pointer("/time/modified").cloned().unwrap_or(Value::Null);
    let publisher = latest
        .pointer("/_npmUser/name")
        .and_then(Value::as_str)
        .map(|u| json!({"username": u}));
    let maintainers: Vec<Value> = doc
        .get("maintainers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("name").and_then(Value::as_str))
                .map(|n| json!({"username": n}))
                .collect()
        })
        .unwrap_or_default();
    let normalized = if max_score > 0.0 { score / max_score } else { 0.0 };
    let mut package = json!({
        "name": name,
        "version": version,
        "description": latest.get("description").cloned().unwrap_or(Value::Null),
        "keywords": latest.get("keywords").cloned().unwrap_or(json!([])),
        "date": date,
        "links": {},
        "maintainers": maintainers,
    });
    if let Some(p) = publisher {
        package["publisher"] = p;
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
        json!({"name": name, "dist-tags": {"latest": "1.0.0"},
               "versions": {"1.0.0": {"version": "1.0.0", "description": desc, "keywords": kw}}})
    }

    #[test]
    fn matches_name_description_keywords() {
        let a = doc("left-pad", "pads strings", &["string"]);
        let b = doc("@acme/widget", "a widget", &["ui"]);
        assert!(Query::parse("pad").score(&a) > Query::parse("strings").score(&a));
        assert!(Query::parse("left-pad").score(&a) > Query::parse("pad").score(&a));
        assert_eq!(Query::parse("pad").score(&b), 0.0);
        assert!(Query::parse("keywords:ui").score(&b) > 0.0);
        assert_eq!(Query::parse("keywords:ui").score(&a), 0.0);
        assert!(Query::parse("scope:acme").score(&b) > 0.0);
        assert_eq!(Query::parse("scope:@acme").score(&a), 0.0);
        let r = result(&a, 4.0, 4.0);
        assert_eq!(r["package"]["name"], "left-pad");
        assert_eq!(r["package"]["version"], "1.0.0");
        assert_eq!(r["score"]["final"], 1.0);
    }
}
