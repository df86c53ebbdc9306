//! Who may do what to a package, in one place: Verdaccio's `packages` rules (the first pattern
//! that matches a name decides; a name no rule matches can be neither read nor written), read-only
//! tokens, and how a refusal is told without revealing what the caller may not see.

use super::Identity;
use crate::config::PackageRule;
use crate::package::merge::VersionFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Access,
    Publish,
    /// A change to a package that publishes nothing (dist-tags, deprecation, stars, owners):
    /// whoever may publish it may make it; a trusted publisher's grant may not.
    Change,
    Unpublish,
}

/// Why an action was refused; the registry maps each to its error (and so to an HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this token is read-only: it cannot publish or change {0}")]
    ReadOnlyToken(String),
    /// Anonymous callers are told to log in.
    #[error("authentication required to {verb} {name}; log in with `npm login`")]
    LoginRequired { verb: &'static str, name: String },
    /// Anonymous because the token sent did not hold: told so, and how to get a new one.
    #[error(
        "the token sent is invalid, expired or revoked, so this request counts as anonymous and may not {verb} {name}; log in again with `npm login`"
    )]
    InvalidToken { verb: &'static str, name: String },
    /// A package the caller may not read is reported as missing: its existence is not revealed.
    #[error("package {0} not found")]
    Hidden(String),
    /// A trusted publisher's token used for anything but publishing its package.
    #[error(
        "this token was given to a trusted publisher of {granted} and may only publish {granted}, not {verb} {name}"
    )]
    OutOfGrant {
        granted: String,
        verb: &'static str,
        name: String,
    },
    #[error("user {user} is not allowed to {verb} {name}")]
    Forbidden {
        user: String,
        verb: &'static str,
        name: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    rules: Vec<PackageRule>,
}

impl AccessRules {
    pub fn new(rules: Vec<PackageRule>) -> Self {
        AccessRules { rules }
    }

    pub fn rule_for(&self, name: &str) -> Option<&PackageRule> {
        self.rules.iter().find(|r| r.matcher.is_match(name))
    }

    pub fn allows(&self, name: &str, action: Action, who: &Identity) -> bool {
        let Some(rule) = self.rule_for(name) else {
            return false;
        };
        let principals = match action {
            Action::Access => &rule.access,
            Action::Publish | Action::Change => &rule.publish,
            Action::Unpublish => &rule.unpublish,
        };
        principals.iter().any(|p| who.matches(p))
    }

    /// Refuses `action` on `name` for `who`, saying why.
    pub fn check(&self, name: &str, action: Action, who: &Identity) -> Result<(), Denied> {
        if who.readonly && action != Action::Access {
            return Err(Denied::ReadOnlyToken(name.to_owned()));
        }
        let verb = match action {
            Action::Access => "read",
            Action::Publish => "publish",
            Action::Change => "change",
            Action::Unpublish => "unpublish or change",
        };
        // The trusted publisher's grant (its rule named it) publishes its package, whatever
        // `publish` says; it changes nothing else, and reads as anonymous callers do.
        if let Some(grant) = &who.grant {
            match action {
                Action::Publish if grant.package == name => return Ok(()),
                Action::Access => {}
                _ => {
                    return Err(Denied::OutOfGrant {
                        granted: grant.package.clone(),
                        verb,
                        name: name.to_owned(),
                    });
                }
            }
        }
        if self.allows(name, action, who) {
            return Ok(());
        }
        let name = name.to_owned();
        Err(match (&who.name, action) {
            (None, _) if who.rejected_token => Denied::InvalidToken { verb, name },
            (None, _) => Denied::LoginRequired { verb, name },
            (Some(_), Action::Access) => Denied::Hidden(name),
            (Some(user), _) => Denied::Forbidden {
                user: user.clone(),
                verb,
                name,
            },
        })
    }

    /// Refuses any change to `name` (publish, update, unpublish, tag) before the request's body is
    /// read: `who` may neither publish nor unpublish it. The change itself is checked again once
    /// the body says what it is.
    pub fn check_change(&self, name: &str, who: &Identity) -> Result<(), Denied> {
        match self.check(name, Action::Publish, who) {
            Err(denied) if self.check(name, Action::Unpublish, who).is_err() => Err(denied),
            _ => Ok(()),
        }
    }

    /// The upstream versions the package's rule hides.
    pub fn filter(&self, name: &str) -> &VersionFilter {
        static NONE: VersionFilter = VersionFilter {
            min_age: None,
            block: Vec::new(),
        };
        self.rule_for(name).map_or(&NONE, |r| &r.filter)
    }

    /// Whether anyone, logged in or not, may read the package (npm's "public" visibility).
    pub fn is_public(&self, name: &str) -> bool {
        self.allows(name, Action::Access, &Identity::anonymous())
    }

    /// The CI workflows that may publish the package by OIDC trusted publishing.
    pub fn trusted_publishers(&self, name: &str) -> &[crate::auth::oidc::TrustedPublisher] {
        self.rule_for(name)
            .map(|r| r.trusted_publishers.as_slice())
            .unwrap_or(&[])
    }

    /// The uplinks a package may be fetched from, in failover order.
    pub fn proxies(&self, name: &str) -> &[String] {
        self.rule_for(name).map(|r| r.proxy.as_slice()).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn rules(yaml: &str) -> AccessRules {
        AccessRules::new(Config::parse(yaml, Path::new(".")).unwrap().config.packages)
    }

    #[test]
    fn first_match_wins() {
        let r = rules(
            "packages:\n  '@internal/*': {access: staff, publish: alice}\n  '**': {access: $all, publish: $authenticated}\n",
        );
        let anon = Identity::anonymous();
        let alice = Identity::user("alice", vec![]);
        let carol = Identity::user("carol", vec!["staff".into()]);
        assert!(!r.allows("@internal/lib", Action::Access, &anon));
        assert!(!r.allows("@internal/lib", Action::Access, &alice), "alice is not staff");
        assert!(r.allows("@internal/lib", Action::Publish, &alice));
        assert!(r.allows("@internal/lib", Action::Access, &carol));
        assert!(!r.allows("@internal/lib", Action::Publish, &carol));
        assert!(r.allows("lodash", Action::Access, &anon));
        assert!(!r.allows("lodash", Action::Publish, &anon));
        assert!(r.allows("lodash", Action::Publish, &carol));
        assert!(
            r.allows("lodash", Action::Unpublish, &carol),
            "unpublish falls back to publish"
        );
    }

    #[test]
    fn a_rejected_token_is_anonymous_and_told_so() {
        let r = rules(
            "packages:\n  'open-*': {access: $all, publish: $all}\n  '**': {access: $all, publish: $authenticated}\n",
        );
        let stale = Identity::with_rejected_token();
        assert!(r.check("open-lib", Action::Access, &stale).is_ok());
        assert!(r.check("open-lib", Action::Publish, &stale).is_ok(), "$all publishes");
        let denied = r.check("lib", Action::Publish, &stale).unwrap_err();
        assert!(matches!(denied, Denied::InvalidToken { .. }), "{denied:?}");
        assert!(denied.to_string().contains("npm login"), "{denied}");
        assert!(matches!(
            r.check("lib", Action::Publish, &Identity::anonymous()),
            Err(Denied::LoginRequired { .. })
        ));
    }

    #[test]
    fn changes_are_refused_before_the_body_only_when_nothing_could_be_allowed() {
        let r = rules("packages:\n  'mine': {access: $all, publish: alice, unpublish: bob}\n  '**': {access: $all}\n");
        let alice = Identity::user("alice", vec![]);
        let bob = Identity::user("bob", vec![]);
        let carol = Identity::user("carol", vec![]);
        assert!(r.check_change("mine", &alice).is_ok());
        assert!(r.check_change("mine", &bob).is_ok(), "bob may unpublish");
        assert!(matches!(r.check_change("mine", &carol), Err(Denied::Forbidden { .. })));
        assert!(matches!(
            r.check_change("other", &Identity::anonymous()),
            Err(Denied::LoginRequired { .. })
        ));
    }

    #[test]
    fn a_publishing_grant_publishes_its_package_whatever_the_rule_and_nothing_else() {
        let r =
            rules("packages:\n  '@acme/*': {access: $all, publish: alice}\n  '**': {access: $all, publish: $all}\n");
        let grant = crate::auth::identity::PublishGrant {
            package: "@acme/widgets".into(),
            issuer: "https://issuer.example".into(),
            subject: None,
            claims: Default::default(),
        };
        let ci = Identity::publisher(grant, "k".into());
        assert!(r.check("@acme/widgets", Action::Publish, &ci).is_ok());
        assert!(r.check_change("@acme/widgets", &ci).is_ok());
        assert!(r.check("@acme/widgets", Action::Access, &ci).is_ok());
        let other = r.check("@acme/gadgets", Action::Publish, &ci).unwrap_err();
        assert!(matches!(other, Denied::OutOfGrant { .. }), "{other:?}");
        assert!(other.to_string().contains("may only publish @acme/widgets"), "{other}");
        assert!(
            r.check("open", Action::Publish, &ci).is_err(),
            "not even where anyone may publish: the token is for one package"
        );
        assert!(r.check("@acme/widgets", Action::Unpublish, &ci).is_err());
        assert!(r.is_public("@acme/widgets"));
    }

    #[test]
    fn unmatched_names_are_blocked() {
        let r = rules("packages:\n  '@mine/*': {access: $all}\n");
        assert!(!r.allows("lodash", Action::Access, &Identity::anonymous()));
        assert!(r.proxies("lodash").is_empty());
    }
}
