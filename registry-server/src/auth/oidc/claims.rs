//! Which id-tokens a trusted publisher accepts: the issuer, and claims each matched exactly or as
//! a pattern in which `*` stands for any text (`/` included: `release.yml@refs/tags/v1.2.3`
//! matches `release.yml@*`). Pure.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Config data (a package rule's `trusted_publishers`); how a token is matched against it is here.
pub use crate::config::TrustedPublisher;

/// Whether `value` matches `pattern`, where `*` matches any run of characters.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: exact
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A claim's value as text: strings as they are, numbers and booleans as JSON writes them.
fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

impl TrustedPublisher {
    /// Why `claims` (a verified token's payload) is not this publisher's: the first configured
    /// claim that is missing or does not match; `None` when every one matches.
    pub fn mismatch(&self, claims: &Map<String, Value>) -> Option<String> {
        for (name, pattern) in &self.claims {
            match claims.get(name).and_then(claim_text) {
                None => return Some(format!("the token has no {name} claim (expected {pattern:?})")),
                Some(actual) if !glob_matches(pattern, &actual) => {
                    return Some(format!("{name} is {actual:?}, expected {pattern:?}"));
                }
                Some(_) => {}
            }
        }
        None
    }

    /// The configured claims as the token has them: what a publish records of who made it.
    pub fn matched(&self, claims: &Map<String, Value>) -> BTreeMap<String, String> {
        self.claims
            .keys()
            .filter_map(|name| Some((name.clone(), claim_text(claims.get(name)?)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns() {
        assert!(glob_matches("acme/widgets", "acme/widgets"));
        assert!(!glob_matches("acme/widgets", "acme/widgets2"));
        assert!(!glob_matches("acme/widgets", "acme/widget"));
        let wf = "acme/widgets/.github/workflows/release.yml@*";
        assert!(glob_matches(
            wf,
            "acme/widgets/.github/workflows/release.yml@refs/tags/v1.2.3"
        ));
        assert!(glob_matches(wf, "acme/widgets/.github/workflows/release.yml@"));
        assert!(!glob_matches(
            wf,
            "acme/widgets/.github/workflows/other.yml@refs/heads/main"
        ));
        assert!(!glob_matches(wf, "evil/acme/widgets/.github/workflows/release.yml@x"));
        assert!(glob_matches("*", "anything/at/all"));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(!glob_matches("a*b*c", "a-x-c-y-b"));
        assert!(!glob_matches("ab*ba", "aba"), "the two ends may not overlap");
        assert!(glob_matches("refs/*/main", "refs/heads/main"));
    }

    #[test]
    fn every_configured_claim_must_match() {
        let p = TrustedPublisher {
            issuer: "https://issuer.example".into(),
            claims: BTreeMap::from([
                ("repository".into(), "acme/widgets".into()),
                (
                    "workflow_ref".into(),
                    "acme/widgets/.github/workflows/release.yml@*".into(),
                ),
            ]),
        };
        let good = json!({"repository": "acme/widgets", "workflow_ref": "acme/widgets/.github/workflows/release.yml@refs/heads/main", "sub": "x"});
        let good = good.as_object().unwrap();
        assert_eq!(p.mismatch(good), None);
        assert_eq!(
            p.matched(good),
            BTreeMap::from([
                ("repository".into(), "acme/widgets".into()),
                (
                    "workflow_ref".into(),
                    "acme/widgets/.github/workflows/release.yml@refs/heads/main".into()
                ),
            ])
        );
        let other =
            json!({"repository": "evil/widgets", "workflow_ref": "acme/widgets/.github/workflows/release.yml@x"});
        let why = p.mismatch(other.as_object().unwrap()).unwrap();
        assert!(why.contains("repository is \"evil/widgets\""), "{why}");
        let missing = json!({"repository": "acme/widgets"});
        assert!(
            p.mismatch(missing.as_object().unwrap())
                .unwrap()
                .contains("no workflow_ref claim")
        );
        let odd =
            json!({"repository": ["acme/widgets"], "workflow_ref": "acme/widgets/.github/workflows/release.yml@x"});
        assert!(
            p.mismatch(odd.as_object().unwrap()).is_some(),
            "a list is no claim value"
        );
    }
}
