//! Every storage key the server uses, named in one place. The local package layout is Verdaccio's
//! (`<name>/package.json`, tarballs beside it, the list of local packages at the root), so that
//! Verdaccio can serve our storage and we can serve its; what Verdaccio does not know lives under
//! `.npm-registry/`. Backends add their own root (a folder, a bucket and key prefix).
//!
//! Keys take plain strings: storage moves bytes and knows no package types. A new key is one
//! line in the list below.

use super::{Key, StorageError};

macro_rules! storage_keys {
    ($($(#[$doc:meta])* $variant:ident $({ $($field:ident),* })? => $path:literal,)*) => {
        /// A key by what it stores; [`StorageKey::key`] spells it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum StorageKey<'a> {
            $($(#[$doc])* $variant $({ $($field: &'a str),* })?,)*
        }

        impl StorageKey<'_> {
            fn path(&self) -> String {
                match *self {
                    $(StorageKey::$variant $({ $($field),* })? => format!($path),)*
                }
            }
        }
    };
}

storage_keys! {
    /// A local package's folder (its packument and tarballs).
    PackageDir { package } => "{package}",
    /// A local package's packument.
    Packument { package } => "{package}/package.json",
    /// A tarball of a local package, by its file name.
    Tarball { package, file } => "{package}/{file}",
    /// Verdaccio's `{"list": [...], "secret": "..."}` of locally published packages, on disk.
    PackageList => ".verdaccio-db.json",
    /// The same list as Verdaccio's S3 plugin names it.
    S3PackageList => "verdaccio-s3-db.json",
    /// An upstream packument as the pull-through cache keeps it (with its ETag and fetch time).
    UplinkPackument { package } => ".npm-registry/uplinks/{package}/package.json",
    /// An upstream tarball kept by the pull-through cache.
    UplinkTarball { package, file } => ".npm-registry/uplinks/{package}/{file}",
    /// The folder of registered users.
    Users => ".npm-registry/users",
    /// A registered user.
    User { name } => ".npm-registry/users/{name}.json",
    /// The folder of tokens.
    Tokens => ".npm-registry/tokens",
    /// A token, by the SHA-256 of its secret.
    Token { hash } => ".npm-registry/tokens/{hash}.json",
    /// Which replica runs the repair task, until when.
    RepairLease => ".npm-registry/repair-lease.json",
    /// A shard of the search index (`00`, `01`, ...).
    SearchShard { shard } => ".npm-registry/search/{shard}.json",
    /// Says the search index was built in this storage.
    SearchMarker => ".npm-registry/search/index.json",
    /// The folder of the web UI's browser sessions.
    WebSessions => ".npm-registry/web/sessions",
    /// A browser session, by its expiry and the SHA-256 of its secret (`auth::expiring`).
    WebSession { name } => ".npm-registry/web/sessions/{name}.json",
    /// The folder of pending `npm login --auth-type=web` logins.
    WebLogins => ".npm-registry/web/logins",
    /// A pending web login, named like a session.
    WebLogin { name } => ".npm-registry/web/logins/{name}.json",
    /// The folder of exchanged OIDC id-tokens, remembered until they expire.
    IdTokens => ".npm-registry/oidc/id-tokens",
    /// An exchanged id-token: `<exp>-<SHA-256 of a hash of its iss and jti>`, created once.
    IdToken { name } => ".npm-registry/oidc/id-tokens/{name}.json",
    /// The folder of user names ever held (by htpasswd or registration), which stay taken.
    UserNames => ".npm-registry/user-names",
    /// A user name ever held: created once, by registration or when a replica first saw it in
    /// the htpasswd file, and never deleted, so a removed user's name cannot be registered again.
    UserName { name } => ".npm-registry/user-names/{name}.json",
    /// The web UI's signing key (CSRF tokens), made once by the first replica that needs it.
    WebKey => ".npm-registry/web/key.json",
    /// The registry's signing keys when they are not given as a file: the current one and those
    /// it replaced (with when they stopped signing).
    SigningKeys => ".npm-registry/signing/keys.json",
    /// An uplink's signing keys as its `/-/npm/v1/keys` last listed them.
    UplinkKeys { uplink } => ".npm-registry/uplink-keys/{uplink}.json",
    /// The attestations (provenance bundles) published with a local version.
    Attestations { package, version } => ".npm-registry/attestations/{package}/{version}.json",
    /// An upstream version's attestations as the pull-through cache keeps them.
    UplinkAttestations { package, version } => ".npm-registry/uplinks/{package}/-attestations/{version}.json",
}

impl StorageKey<'_> {
    /// The key; refused when a string it is made of would escape its place (`..`, `/x`, ...).
    pub fn key(&self) -> Result<Key, StorageError> {
        Key::new(self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::StorageKey;

    #[test]
    fn keys_are_spelled_as_verdaccio_lays_them_out() {
        let key = |k: StorageKey| k.key().unwrap().as_str().to_owned();
        assert_eq!(key(StorageKey::Packument { package: "@s/p" }), "@s/p/package.json");
        assert_eq!(
            key(StorageKey::Tarball {
                package: "@s/p",
                file: "p-1.0.0.tgz"
            }),
            "@s/p/p-1.0.0.tgz"
        );
        assert_eq!(key(StorageKey::PackageList), ".verdaccio-db.json");
        assert_eq!(
            key(StorageKey::UplinkTarball {
                package: "p",
                file: "p-1.0.0.tgz"
            }),
            ".npm-registry/uplinks/p/p-1.0.0.tgz"
        );
        assert_eq!(key(StorageKey::Token { hash: "ab" }), ".npm-registry/tokens/ab.json");
        assert_eq!(
            key(StorageKey::WebSession { name: "1700000000-ab" }),
            ".npm-registry/web/sessions/1700000000-ab.json"
        );
        assert!(StorageKey::User { name: "../x" }.key().is_err());
        assert!(StorageKey::Packument { package: "" }.key().is_err());
    }
}
