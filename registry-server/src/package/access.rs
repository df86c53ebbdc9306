//! Verdaccio's `packages` rules: the first pattern that matches a name decides; a name no rule
//! matches can be neither read nor written.

use crate::auth::Identity;
use crate::config::PackageRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Access,
    Publish,
    Unpublish,
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
            Action::Publish => &rule.publish,
            Action::Unpublish => &rule.unpublish,
        };
        principals.iter().any(|p| who.matches(p))
    }

    /// The upstream versions the package's rule hides.
    pub fn filter(&self, name: &str) -> crate::package::merge::VersionFilter {
        self.rule_for(name).map(|r| r.filter.clone()).unwrap_or_default()
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
    fn unmatched_names_are_blocked() {
        let r = rules("packages:\n  '@mine/*': {access: $all}\n");
        assert!(!r.allows("lodash", Action::Access, &Identity::anonymous()));
        assert!(r.proxies("lodash").is_empty());
    }
}
