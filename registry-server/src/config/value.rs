//! Reading one scalar setting (a size or an interval, as a number or in Verdaccio's text syntax)
//! with its key named in the error: the one home of these rules for every section.

use super::{ConfigError, invalid, parse_duration, parse_size};
use serde_yaml::Value;
use std::time::Duration;

/// A size of at least one byte (`64mb`, or bytes) at `key`; `default` when not set.
pub fn size_value(key: &str, v: Option<Value>, default: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(key, "must be a positive number of bytes")),
        Some(Value::String(s)) => parse_size(&s).map_err(|r| invalid(key, r)),
        Some(_) => Err(invalid(key, "expected a size such as 64mb")),
    }
}

/// A size that may be `0` (a cache switched off) at `key`; `default` when not set.
pub fn size_or_zero(key: &str, v: Option<Value>, default: u64) -> Result<u64, ConfigError> {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| invalid(key, "must be a size such as 64mb, or 0 for none")),
        Some(Value::String(s)) if s.trim() == "0" => Ok(0),
        other => size_value(key, other, default),
    }
}

/// An interval (`30s`, `2m`, or seconds) at `key`; `default` when not set.
pub fn duration_value(key: &str, v: Option<Value>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|n| *n >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid(key, "must be a non-negative interval")),
        Some(Value::String(s)) => parse_duration(&s).map_err(|r| invalid(key, r)),
        Some(_) => Err(invalid(key, "expected an interval such as 30s or 2m")),
    }
}

/// An interval longer than zero at `key`.
pub fn positive_duration(key: &str, v: Option<Value>, default: Duration) -> Result<Duration, ConfigError> {
    let d = duration_value(key, v, default)?;
    if d.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(d)
}
