use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a token exchanged by OIDC trusted publishing may do: publish one package, as the CI job
/// whose id-token was verified (recorded in each version it publishes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishGrant {
    pub package: String,
    pub issuer: String,
    /// The id-token's `sub`.
    #[serde(default)]
    pub subject: Option<String>,
    /// The claims the trusted publisher names, as the id-token had them.
    pub claims: BTreeMap<String, String>,
}

/// The caller of a request, as package rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// Authenticated with a read-only token: may read, never change.
    pub readonly: bool,
    /// The key (hash) of the token this request used, if any.
    pub token_key: Option<String>,
    /// Anonymous because the token sent was unknown, expired or revoked: a refusal says so.
    pub rejected_token: bool,
    /// A trusted publisher's token: anonymous, but for publishing its one package.
    pub grant: Option<Box<PublishGrant>>,
}

/// Verdaccio's legacy spellings of its built-in groups.
const ANONYMOUS: &[&str] = &[
    "$all",
    "$anonymous",
    "@all",
    "@anonymous",
    "all",
    "anonymous",
    "undefined",
];
const AUTHENTICATED: &[&str] = &["$all", "$authenticated", "@all", "@authenticated", "all"];

impl Identity {
    pub fn anonymous() -> Self {
        Identity {
            name: None,
            groups: Vec::new(),
            readonly: false,
            token_key: None,
            rejected_token: false,
            grant: None,
        }
    }

    /// A trusted publisher, by the token it was given.
    pub fn publisher(grant: PublishGrant, token_key: String) -> Self {
        Identity {
            token_key: Some(token_key),
            grant: Some(Box::new(grant)),
            ..Self::anonymous()
        }
    }

    /// A caller whose token did not hold: anonymous (as in Verdaccio), told why when refused.
    pub fn with_rejected_token() -> Self {
        Identity {
            rejected_token: true,
            ..Self::anonymous()
        }
    }

    pub fn user(name: impl Into<String>, groups: Vec<String>) -> Self {
        Identity {
            name: Some(name.into()),
            groups,
            readonly: false,
            token_key: None,
            rejected_token: false,
            grant: None,
        }
    }

    /// Whether a principal named in a rule (`$all`, a user name, a group) covers this caller.
    pub fn matches(&self, principal: &str) -> bool {
        match &self.name {
            None => ANONYMOUS.contains(&principal),
            Some(name) => {
                AUTHENTICATED.contains(&principal) || name == principal || self.groups.iter().any(|g| g == principal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Identity;

    #[test]
    fn builtin_groups() {
        let anon = Identity::anonymous();
        assert!(anon.matches("$all") && anon.matches("$anonymous") && anon.matches("@all"));
        assert!(!anon.matches("$authenticated"));
        let alice = Identity::user("alice", vec!["staff".into()]);
        assert!(
            alice.matches("$all")
                && alice.matches("$authenticated")
                && alice.matches("alice")
                && alice.matches("staff")
        );
        assert!(!alice.matches("$anonymous") && !alice.matches("bob"));
    }
}
