//! `auth`: where users come from. The htpasswd plugin is built in; any other plugin section
//! (ldap, gitlab, ...) stops the server from starting, since its users could not log in and rules
//! naming its groups would never match, unless `ignore_auth_plugins` names it. Registration is
//! never opened because a plugin was left out.

use super::keys::near_miss;
use super::{Config, ConfigError, Htpasswd, invalid, join_clean};
use registry_config::AuthFile;
use std::path::Path;

/// The built-in plugin's section name.
const HTPASSWD: &str = "htpasswd";
/// Our key that lets the server start without the named plugins.
pub const IGNORE_KEY: &str = "ignore_auth_plugins";

pub(super) struct Users {
    pub htpasswd: Option<Htpasswd>,
    pub max_users: Option<u64>,
}

pub(super) fn resolve(
    raw: Option<AuthFile>,
    ignore: Option<Vec<String>>,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Users, ConfigError> {
    let ignore = ignore.unwrap_or_default();
    let auth = raw.unwrap_or_default();
    let mut ignored_any = false;
    for plugin in auth.plugins.keys() {
        if ignore.iter().any(|i| i == plugin) {
            ignored_any = true;
            warnings.push(format!(
                "auth plugin `auth.{plugin}` is not implemented here and is ignored as `{IGNORE_KEY}` asks: \
                 its users cannot log in"
            ));
            continue;
        }
        let hint = match near_miss(plugin, &[HTPASSWD]) {
            Some(h) => format!("did you mean `auth.{h}`? "),
            None => String::new(),
        };
        return Err(ConfigError::UnsupportedAuthPlugin {
            plugin: plugin.clone(),
            reason: format!(
                "{hint}this server does not implement the `{plugin}` auth plugin, so its users could not \
                 log in and rules naming its groups would never match. Give the users an htpasswd file \
                 (`auth.htpasswd.file`, bcrypt lines as `htpasswd -B` writes them) or let them register, \
                 or start without the plugin by adding `{IGNORE_KEY}: [{plugin}]` (registration then \
                 stays closed unless `auth.htpasswd` opens it)"
            ),
        });
    }
    for name in &ignore {
        if !auth.plugins.contains_key(name) {
            warnings.push(format!(
                "`{IGNORE_KEY}` names `{name}`, which has no section under `auth`"
            ));
        }
    }
    let Some(h) = auth.htpasswd else {
        // Without htpasswd, users register (Verdaccio's default), unless the installation meant
        // them to come from a plugin that is now left out.
        return Ok(Users {
            htpasswd: None,
            max_users: ignored_any.then_some(0),
        });
    };
    let file = h.file.ok_or_else(|| invalid("auth.htpasswd.file", "is required"))?;
    if let Some(alg) = h.algorithm.as_deref()
        && !alg.eq_ignore_ascii_case("bcrypt")
    {
        warnings.push(format!(
            "`auth.htpasswd.algorithm: {alg}` ignored: new users are always written with bcrypt"
        ));
    }
    let max_users = h.max_users.map(|n| u64::try_from(n).unwrap_or(0));
    Ok(Users {
        htpasswd: Some(Htpasswd {
            file: join_clean(base, &file),
        }),
        max_users,
    })
}

/// A configured htpasswd file that does not exist: an error when nobody could register either
/// (no user could ever log in), a warning otherwise (`/-/ready` stays false until it appears).
pub(super) fn check_htpasswd(config: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let Some(h) = &config.htpasswd else { return Ok(()) };
    if h.file.exists() {
        return Ok(());
    }
    let shown = h.file.display();
    if config.max_users == Some(0) {
        return Err(invalid(
            "auth.htpasswd.file",
            format!("{shown} does not exist and registration is off (max_users: -1), so nobody could log in"),
        ));
    }
    warnings.push(format!(
        "`auth.htpasswd.file`: {shown} does not exist; its users cannot log in and /-/ready answers 503 \
         until it appears"
    ));
    Ok(())
}
