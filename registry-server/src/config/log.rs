//! `log` (or `logs`): where and how the server logs, in Verdaccio's terms.

use super::{ConfigError, Log, LogFormat, invalid};
use registry_config as file;

pub fn resolve(raw: Option<file::LogFile>) -> Result<Log, ConfigError> {
    let raw = raw.unwrap_or_default();
    if let Some(kind) = raw.kind.as_deref()
        && kind != "stdout"
        && kind != "stderr"
    {
        return Err(invalid(
            "log.type",
            format!("only stdout and stderr are supported, got {kind:?}"),
        ));
    }
    let format = match raw.format.as_deref().unwrap_or("pretty") {
        "pretty" | "pretty-timestamped" => LogFormat::Pretty,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                "log.format",
                format!("must be pretty, pretty-timestamped or json, got {other:?}"),
            ));
        }
    };
    let level = match raw.level.as_deref().unwrap_or("info") {
        "trace" => "trace",
        "debug" => "debug",
        "info" | "http" => "info",
        "warn" => "warn",
        "error" | "fatal" => "error",
        other => {
            return Err(invalid(
                "log.level",
                format!("must be one of trace, debug, http, info, warn, error, fatal; got {other:?}"),
            ));
        }
    };
    Ok(Log {
        format,
        level: level.to_owned(),
    })
}
