//! The server's configuration: Verdaccio's `config.yaml` format plus a few keys of ours, parsed,
//! defaulted and validated into a [`Config`]. Unknown keys become warnings, unless they are a near
//! miss of a known key (an error naming it); bad values become a [`ConfigError`] naming the key
//! and the reason in the file's terms.

mod auth;
mod duration;
mod keys;
pub mod listen;
mod log;
mod read;
mod rule;
mod security;
mod server;
mod signing;
mod size;
mod store;
mod uplink;
mod value;

use registry_config::{self as file, ConfigFile, StringList, defaults};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use value::{duration_value, positive_duration, size_or_zero, size_value};

pub use duration::parse_duration;
pub use rule::{PackageRule, TrustedPublisher};
pub use security::{ApiTokens, JwtCheck, Security};
pub use server::{Connections, Shutdown, TrustedProxies};
pub use signing::{KeySource, RetiredKey, Signing};
pub use size::parse_size;
pub use store::{S3Store, Store};
pub use uplink::{Uplink, UplinkAuth, UplinkAuthKind};

/// The configuration used when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("unknown config key `{key}`: did you mean `{expected}`?")]
    NearMiss { key: String, expected: String },
    #[error("config key `{key}` is in the wrong place: {reason}")]
    Misplaced { key: String, reason: String },
    #[error("`auth.{plugin}`: {reason}")]
    UnsupportedAuthPlugin { plugin: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The storage folder, used when `store` is [`Store::Filesystem`].
    pub storage: PathBuf,
    pub store: Store,
    pub listen: SocketAddr,
    /// Absolute base URL clients reach us at, ending in `/`; when unset it comes from the request.
    pub public_url: Option<String>,
    /// Path prefix used when the base URL comes from the request (`url_prefix`), ending in `/`.
    pub url_prefix: String,
    pub max_body_size: u64,
    pub packages: Vec<PackageRule>,
    pub uplinks: BTreeMap<String, Uplink>,
    pub htpasswd: Option<Htpasswd>,
    /// `None` is unlimited; `Some(0)` disables registration.
    pub max_users: Option<u64>,
    pub groups: BTreeMap<String, Vec<String>>,
    /// How the tokens Verdaccio issued are checked.
    pub security: Security,
    pub web: Web,
    pub log: Log,
    pub packument_cache: CacheConfig,
    pub tarball_cache: CacheConfig,
    /// `server`: timeouts and limits of connections.
    pub connections: Connections,
    /// `server.trustProxy`: whose forwarded headers are believed (none: the TCP peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// `server.shutdown`: the drain on SIGTERM.
    pub shutdown: Shutdown,
    pub repair: Repair,
    /// The key that signs hosted versions.
    pub signing: Signing,
}

/// `repair`: how often leftovers are looked for, and how old they must be.
#[derive(Debug, Clone)]
pub struct Repair {
    pub interval: Duration,
    pub grace: Duration,
}

/// One of our in-memory caches: its size (0: off), and how often a cached entry is checked
/// against storage (the bound on how late another replica's publish or unpublish is seen here).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub max_size: u64,
    pub revalidate_after: Duration,
}

#[derive(Debug, Clone)]
pub struct Htpasswd {
    pub file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Web {
    pub enable: bool,
    pub title: String,
    pub logo: Option<Logo>,
    /// Bytes of package pages and rendered READMEs kept in memory.
    pub cache_size: u64,
}

/// Where `web.logo` comes from; read once at start and served by us either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logo {
    File(PathBuf),
    Url(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

/// A config with the warnings met while reading it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads `path`, or the embedded default when `None`. Relative paths in a file are relative to
    /// the file's folder (as in Verdaccio); in the embedded default they are relative to the
    /// working directory. Files the config names are checked here (see [`auth::check_htpasswd`]).
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let mut loaded = match path {
            None => Self::parse(EMBEDDED_DEFAULT, Path::new(".")),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                let base = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                Self::parse(&text, base)
            }
        }?;
        auth::check_htpasswd(&loaded.config, &mut loaded.warnings)?;
        Ok(loaded)
    }

    /// Parses config text; `base` is the folder relative paths start from.
    pub fn parse(text: &str, base: &Path) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let raw = read::model(text, &mut warnings)?;
        for key in raw.unused_verdaccio_keys() {
            warnings.push(format!(
                "config key `{key}` is a Verdaccio setting this server does not use; ignored"
            ));
        }
        let config = resolve(raw, base, &mut warnings)?;
        Ok(Loaded { config, warnings })
    }

    /// Proxies every package that no rule proxies yet through `url` (the no-config start, where
    /// public packages install through the server as with Verdaccio's default config).
    pub fn with_default_uplink(mut self, url: &str) -> Result<Self, ConfigError> {
        let name = DEFAULT_UPLINK.to_owned();
        let uplink = uplink::resolve(
            &name,
            file::UplinkFile {
                url: Some(url.to_owned()),
                ..Default::default()
            },
            &mut Vec::new(),
        )?;
        self.uplinks.insert(name.clone(), uplink);
        for rule in &mut self.packages {
            if rule.proxy.is_empty() {
                rule.proxy.push(name.clone());
            }
        }
        Ok(self)
    }
}

/// The uplink's name when it comes from `--uplink` or the local npm's registry.
pub const DEFAULT_UPLINK: &str = "upstream";

/// `base` joined with `rel`, without the `.` components (`./storage` under `.` is `./storage`,
/// under `/etc/reg` it is `/etc/reg/storage`).
fn join_clean(base: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let joined = base.join(rel);
    let mut out = PathBuf::new();
    for c in joined.components() {
        if c != Component::CurDir {
            out.push(c.as_os_str());
        }
    }
    if out.as_os_str().is_empty() || (joined.starts_with(".") && !out.is_absolute()) {
        Path::new(".").join(out)
    } else {
        out
    }
}

fn resolve(raw: ConfigFile, base: &Path, warnings: &mut Vec<String>) -> Result<Config, ConfigError> {
    let storage = join_clean(base, raw.storage.as_deref().unwrap_or(defaults::STORAGE));
    let listen = match raw.listen {
        None => listen::parse(defaults::LISTEN).map_err(|r| invalid("listen", r))?,
        Some(v) => listen::parse_value(&v, warnings).map_err(|r| invalid("listen", r))?,
    };
    let (public_url, url_prefix) = public_url(raw.public_url, raw.url_prefix)?;
    let max_body_size = size_value("max_body_size", raw.max_body_size, defaults::MAX_BODY_SIZE)?;

    let mut uplinks = BTreeMap::new();
    for (name, raw_uplink) in raw.uplinks.unwrap_or_default() {
        let uplink = uplink::resolve(&name, raw_uplink, warnings)?;
        uplinks.insert(name, uplink);
    }

    let mut packages = Vec::new();
    for (pattern, rule) in raw.packages.unwrap_or_default() {
        packages.push(rule::resolve(&pattern, rule, &uplinks, warnings)?);
    }

    let users = auth::resolve(raw.auth, list(raw.ignore_auth_plugins), base, warnings)?;

    let groups = raw
        .groups
        .unwrap_or_default()
        .into_iter()
        .map(|(g, members)| (g, members.into_vec()))
        .collect();

    let web = resolve_web(raw.web.unwrap_or_default(), base)?;

    let log = log::resolve(raw.log.or(raw.logs))?;
    let packument_cache = cache_config("packument_cache", raw.packument_cache, defaults::PACKUMENT_CACHE_SIZE)?;
    let tarball_cache = cache_config("tarball_cache", raw.tarball_cache, defaults::TARBALL_CACHE_SIZE)?;

    let store = store::resolve(raw.store, warnings)?;
    let security = security::resolve(raw.security, warnings)?;
    let shutdown = server::resolve_shutdown(raw.server.as_ref())?;
    let (connections, trusted_proxies) = server::resolve(raw.server, max_body_size, warnings)?;
    let repair = raw.repair.unwrap_or_default();
    let repair = Repair {
        interval: positive_duration("repair.interval", repair.interval, defaults::REPAIR_INTERVAL)?,
        grace: duration_value("repair.grace", repair.grace, defaults::REPAIR_GRACE)?,
    };
    let signing = signing::resolve(raw.signing, base)?;
    // The audience an id-token must carry is this registry's host: never the `Host` a request
    // names, which would let a token minted for another registry be exchanged here.
    if public_url.is_none()
        && let Some(rule) = packages.iter().find(|r| !r.trusted_publishers.is_empty())
    {
        return Err(invalid(
            format!("packages.'{}'.trusted_publishers", rule.pattern),
            "trusted publishing needs public_url (the URL npm is configured with): an id-token's \
             audience is checked against npm:<its host>, never against the host a request names",
        ));
    }

    Ok(Config {
        storage,
        store,
        listen,
        public_url,
        url_prefix,
        max_body_size,
        packages,
        uplinks,
        htpasswd: users.htpasswd,
        max_users: users.max_users,
        groups,
        security,
        web,
        log,
        packument_cache,
        tarball_cache,
        connections,
        trusted_proxies,
        shutdown,
        repair,
        signing,
    })
}

fn resolve_web(raw: file::WebFile, base: &Path) -> Result<Web, ConfigError> {
    let logo = match raw.logo.filter(|l| !l.trim().is_empty()) {
        None => None,
        Some(l) if l.starts_with("http://") || l.starts_with("https://") => {
            url::Url::parse(&l).map_err(|e| invalid("web.logo", format!("{l:?} is not a URL: {e}")))?;
            Some(Logo::Url(l))
        }
        Some(l) => Some(Logo::File(base.join(l))),
    };
    let cache_size = size_or_zero("web.cache_size", raw.cache_size, defaults::WEB_CACHE_SIZE)?;
    Ok(Web {
        enable: raw.enable.unwrap_or(true),
        title: raw.title.unwrap_or_else(|| defaults::WEB_TITLE.to_owned()),
        logo,
        cache_size,
    })
}

fn cache_config(key: &str, raw: Option<file::CacheFile>, default_size: u64) -> Result<CacheConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let size_key = format!("{key}.max_size");
    Ok(CacheConfig {
        max_size: size_or_zero(&size_key, raw.max_size, default_size)?,
        revalidate_after: duration_value(
            &format!("{key}.revalidate_after"),
            raw.revalidate_after,
            defaults::CACHE_REVALIDATE_AFTER,
        )?,
    })
}

fn public_url(public_url: Option<String>, url_prefix: Option<String>) -> Result<(Option<String>, String), ConfigError> {
    let env_url = std::env::var("VERDACCIO_PUBLIC_URL").ok().filter(|s| !s.is_empty());
    let mut prefix = url_prefix.unwrap_or_else(|| "/".to_owned());
    // Old Verdaccio configs put a whole URL in url_prefix.
    let mut url = public_url.or(env_url).map(|u| ("public_url", u));
    if prefix.starts_with("http://") || prefix.starts_with("https://") {
        url = url.or(Some(("url_prefix", prefix.clone())));
        prefix = "/".to_owned();
    }
    if !prefix.starts_with('/') {
        prefix.insert(0, '/');
    }
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let url = url.map(|(key, u)| http_url(key, &u)).transpose()?;
    Ok((url, prefix))
}

/// An absolute http(s) URL, ending in `/` so that paths can be appended.
fn http_url(key: &str, u: &str) -> Result<String, ConfigError> {
    let parsed = url::Url::parse(u).map_err(|e| invalid(key, format!("{u:?} is not a URL: {e}")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(invalid(key, format!("{u:?} must be an http or https URL")));
    }
    let mut s = parsed.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

fn list(v: Option<StringList>) -> Option<Vec<String>> {
    v.map(StringList::into_vec)
}

#[cfg(test)]
mod tests;
