//! Users, tokens and logins. Seed users come from an htpasswd file (read-only is fine); users who
//! register later and every token live in the storage backend, shared by all replicas. Tokens are
//! random and stored only as SHA-256 hashes. Tokens Verdaccio issued keep working ([`verdaccio`])
//! while their user exists. A token that is unknown, expired or revoked makes its request
//! anonymous (see `http::identity`), so it fails only where a user is needed.

pub mod access;
pub mod expiring;
mod htpasswd;
pub mod identity;
mod limiter;
pub mod oidc;
mod password;
pub mod sessions;
pub mod store;
mod tokens;
mod verdaccio;
pub mod web_login;

pub use identity::{Identity, PublishGrant};

use crate::config::Config;
use crate::storage::{Storage, StorageError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use htpasswd::HtpasswdFile;
use limiter::{LoginLimiter, Refused};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use store::{TokenRecord, UserRecord};
use verdaccio::{Claim, VerdaccioTokens};

/// How long a verified token or Basic credential is trusted without asking storage again. A
/// revocation on this replica applies at once; on other replicas within this time.
const AUTH_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_PREFIX: &str = "npmreg_";
/// How long a token exchanged by OIDC trusted publishing publishes: one CI publish step.
pub const GRANT_TTL: ChronoDuration = ChronoDuration::minutes(15);
const MIN_PASSWORD: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("incorrect username or password")]
    BadCredentials,
    #[error("too many failed logins from this address; try again in {} minutes", .0.as_secs().div_ceil(60))]
    TooManyAttempts(Duration),
    #[error("too many failed logins from this address; try again in {} minutes", .0.as_secs().div_ceil(60))]
    AddressBlocked(Duration),
    #[error("too many unknown tokens from this address; try again in {} seconds", .0.as_secs().max(1))]
    TooManyTokens(Duration),
    #[error("too many password checks are waiting; try again in a moment")]
    Busy,
    #[error("the token is invalid, expired or revoked; log in again with `npm login`")]
    InvalidToken,
    #[error("this token may not be used from {0}")]
    AddressNotAllowed(String),
    #[error("user registration is disabled on this registry")]
    RegistrationClosed,
    #[error("user registration is closed: the limit of {0} users is reached")]
    UserLimit(u64),
    #[error("the user name {0} is taken: it belongs or belonged to another user, and cannot be registered again")]
    NameTaken(String),
    #[error("invalid user name {0:?}: use letters, digits, '-', '_' and '.'")]
    InvalidUsername(String),
    #[error("the password must be at least {MIN_PASSWORD} characters")]
    WeakPassword,
    #[error("invalid CIDR {0:?} in cidr_whitelist")]
    InvalidCidr(String),
    #[error("authentication required: log in with `npm login`")]
    Required,
    #[error("the authorization header is not a Bearer token or Basic credentials")]
    BadHeader,
    #[error("the htpasswd file {0} does not exist: its users cannot log in")]
    HtpasswdMissing(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Options of a new token.
#[derive(Debug, Default, Clone)]
pub struct TokenOptions {
    pub readonly: bool,
    pub cidr_whitelist: Vec<String>,
    pub name: Option<String>,
    pub expires_days: Option<u32>,
}

pub struct Auth {
    storage: Arc<dyn Storage>,
    htpasswd: Option<Arc<HtpasswdFile>>,
    /// user → groups, inverted from the config's group → users.
    groups: BTreeMap<String, Vec<String>>,
    max_users: Option<u64>,
    limiter: LoginLimiter,
    hasher: password::Hasher,
    tokens: Cache<String, TokenRecord>,
    basic: Cache<String, ()>,
    verdaccio: VerdaccioTokens,
    /// Verdaccio tokens checked lately, by the SHA-256 of the token: the user, or `None` for a
    /// token that did not hold (so a stale token in CI costs no bcrypt per request).
    verdaccio_seen: Cache<String, Option<String>>,
    /// Whether a registered user (not in htpasswd) still exists, as storage said lately: a
    /// token or session of a removed user stops working within [`AUTH_CACHE_TTL`].
    users_seen: Cache<String, bool>,
    oidc: oidc::Oidc,
    /// Exchanged id-tokens (by issuer and `jti`) until they expire: each is exchanged once.
    id_tokens: expiring::Expiring,
}

fn ttl_cache<V: Clone + Send + Sync + 'static>() -> Cache<String, V> {
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(AUTH_CACHE_TTL)
        .build()
}

/// A real bcrypt hash to check unknown users against, so timing does not reveal which names exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| password::hash("not a real password"));

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Verdaccio's rule: a user name must survive URL encoding unchanged.
pub fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidUsername(name.to_owned()))
    }
}

/// Marks in storage each user name not marked yet: at first every registered user's (records
/// older than the marks), then each name of the htpasswd file as it appears. `held`: what this
/// process knows to be marked, listed once.
async fn hold_names(
    storage: &dyn Storage,
    file: Option<&HtpasswdFile>,
    held: &mut Option<std::collections::HashSet<String>>,
) -> Result<(), StorageError> {
    let mut names: Vec<String> = file.map(|f| f.users().keys().cloned().collect()).unwrap_or_default();
    // Taken out while marking: after an error it stays `None`, so the next pass lists the
    // registered users again and marks the ones left (else they would stay unmarked for good).
    let mut marked = match held.take() {
        Some(marked) => marked,
        None => {
            names.extend(store::registered_names(storage).await?);
            store::held_names(storage).await?.into_iter().collect()
        }
    };
    for name in names {
        if marked.contains(&name) || check_username(&name).is_err() {
            continue;
        }
        store::hold_name(storage, &name, "seen").await?;
        marked.insert(name);
    }
    *held = Some(marked);
    Ok(())
}

impl Auth {
    pub fn new(storage: Arc<dyn Storage>, config: &Config) -> Self {
        let htpasswd = config.htpasswd.as_ref().map(|h| HtpasswdFile::open(&h.file));
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, members) in &config.groups {
            for m in members {
                groups.entry(m.clone()).or_default().push(group.clone());
            }
        }
        Auth {
            htpasswd,
            groups,
            max_users: config.max_users,
            limiter: LoginLimiter::default(),
            hasher: password::Hasher::new(),
            tokens: ttl_cache(),
            basic: ttl_cache(),
            verdaccio: VerdaccioTokens::new(config.security.api.clone()),
            verdaccio_seen: ttl_cache(),
            users_seen: ttl_cache(),
            oidc: oidc::Oidc::default(),
            id_tokens: expiring::Expiring::new(storage.clone(), expiring::Kind::IdToken),
            storage,
        }
    }

    /// Whether users can log in as configured (readiness): a configured htpasswd file exists.
    pub fn check(&self) -> Result<(), AuthError> {
        match &self.htpasswd {
            Some(h) if !h.exists() => Err(AuthError::HtpasswdMissing(h.path().display().to_string())),
            _ => Ok(()),
        }
    }

    /// The email a registered user gave (`npm adduser`); htpasswd users have none.
    pub async fn email_of(&self, user: &str) -> Result<Option<String>, AuthError> {
        if check_username(user).is_err() {
            return Ok(None);
        }
        Ok(store::get_user(self.storage.as_ref(), user)
            .await?
            .and_then(|u| u.email)
            .filter(|e| !e.is_empty()))
    }

    /// Starts background work: re-reading the htpasswd file when it changes, and marking each
    /// user name as taken in storage (so that, once removed, nobody can register it).
    pub fn start(&self) {
        if let Some(h) = &self.htpasswd {
            h.watch();
        }
        let (file, storage) = (self.htpasswd.as_ref().map(Arc::downgrade), self.storage.clone());
        tokio::spawn(async move {
            let mut held: Option<std::collections::HashSet<String>> = None;
            let mut reminder = crate::reminder::Reminder::default();
            loop {
                let current = file.as_ref().and_then(std::sync::Weak::upgrade);
                if file.is_some() && current.is_none() {
                    return;
                }
                match hold_names(storage.as_ref(), current.as_deref(), &mut held).await {
                    Ok(()) => {
                        if reminder.succeeded() {
                            tracing::info!("user names recorded in storage again");
                        }
                    }
                    Err(e) => {
                        if let Some(quiet) = reminder.failed(std::time::Instant::now()) {
                            tracing::warn!(
                                error = %e,
                                failures_not_logged = quiet,
                                "cannot record the user names in storage (retrying, logged once per {:?})",
                                crate::reminder::REMIND_EVERY
                            );
                        }
                    }
                }
                // Without htpasswd, registration marks new names itself: one pass is enough.
                if file.is_none() && held.is_some() {
                    return;
                }
                drop(current);
                tokio::time::sleep(htpasswd::POLL).await;
            }
        });
    }

    /// Whether `user`, named by a token or session, still exists: in the htpasswd file as last
    /// read, or in storage as seen within [`AUTH_CACHE_TTL`].
    pub async fn still_exists(&self, user: &str) -> Result<bool, AuthError> {
        if self.htpasswd.as_ref().is_some_and(|h| h.hash_of(user).is_some()) {
            return Ok(true);
        }
        if check_username(user).is_err() {
            return Ok(false);
        }
        if let Some(seen) = self.users_seen.get(user) {
            return Ok(seen);
        }
        let exists = store::get_user(self.storage.as_ref(), user).await?.is_some();
        self.users_seen.insert(user.to_owned(), exists);
        Ok(exists)
    }

    pub fn identity(&self, user: &str) -> Identity {
        Identity::user(user, self.groups.get(user).cloned().unwrap_or_default())
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, AuthError> {
        if let Some(h) = self.htpasswd.as_ref().and_then(|f| f.hash_of(name)) {
            return Ok(Some(h));
        }
        if check_username(name).is_err() {
            return Ok(None);
        }
        Ok(store::get_user(self.storage.as_ref(), name).await?.map(|u| u.password))
    }

    pub async fn user_exists(&self, name: &str) -> Result<bool, AuthError> {
        Ok(self.password_hash(name).await?.is_some())
    }

    /// Whether `password` is `name`'s, without counting a failure: for the password inside a
    /// Verdaccio token, which only the holder of the secret could have made.
    async fn password_holds(&self, name: &str, password: &str) -> Result<bool, AuthError> {
        let Some(hash) = self.password_hash(name).await? else {
            return Ok(false);
        };
        let password = password.to_owned();
        self.hasher.run(move || password::verify(&password, &hash)).await
    }

    /// Checks a password within the login limits (`limiter`): reserved first, so concurrent
    /// guesses cannot overtake the count; bcrypt runs behind the hasher's bound.
    pub async fn check_password(&self, name: &str, password: &str, addr: Option<IpAddr>) -> Result<(), AuthError> {
        let attempt = self.limiter.begin(name, addr).await.map_err(|r| match r {
            Refused::TooMany(wait) => AuthError::TooManyAttempts(wait),
            Refused::Address(wait) => AuthError::AddressBlocked(wait),
        })?;
        let hash = self.password_hash(name).await?;
        let password = password.to_owned();
        let ok = self
            .hasher
            .run(move || match hash {
                Some(h) => password::verify(&password, &h),
                None => {
                    // Unknown users cost the same, so timing does not tell which names exist.
                    let _ = password::verify(&password, &DUMMY_HASH);
                    false
                }
            })
            .await?;
        if ok {
            attempt.succeeded();
            Ok(())
        } else {
            attempt.failed();
            Err(AuthError::BadCredentials)
        }
    }

    /// Registers a new user (bcrypt, in storage), within `max_users`.
    pub async fn register(&self, name: &str, password: &str, email: Option<String>) -> Result<(), AuthError> {
        check_username(name)?;
        if password.chars().count() < MIN_PASSWORD {
            return Err(AuthError::WeakPassword);
        }
        if let Some(limit) = self.max_users {
            if limit == 0 {
                return Err(AuthError::RegistrationClosed);
            }
            let seeded = self.htpasswd.as_ref().map(|h| h.users().len()).unwrap_or(0);
            let count = seeded + store::count_users(self.storage.as_ref()).await?;
            if count as u64 >= limit {
                return Err(AuthError::UserLimit(limit));
            }
        }
        let password = password.to_owned();
        let hash = self.hasher.run(move || password::hash(&password)).await?;
        let record = UserRecord {
            name: name.to_owned(),
            password: hash,
            email,
            created: now(),
        };
        // The name is taken for good first: a name htpasswd (or a removed user) held is refused.
        if !store::hold_name(self.storage.as_ref(), name, "registration").await? {
            return Err(AuthError::NameTaken(name.to_owned()));
        }
        if let Err(e) = store::create_user(self.storage.as_ref(), &record).await {
            // Given back only when no user holds the name (a record there, not yet marked, keeps
            // the mark this registration just made).
            let unheld = matches!(store::get_user(self.storage.as_ref(), name).await, Ok(None));
            if unheld && let Err(e) = store::release_name(self.storage.as_ref(), name).await {
                tracing::warn!(error = %e, user = name, "cannot release a name whose registration failed");
            }
            return Err(e.into());
        }
        tracing::info!(user = name, "user registered");
        Ok(())
    }
}
