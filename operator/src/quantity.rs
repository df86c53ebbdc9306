//! Kubernetes quantities (`500m`, `0.5`, `1Gi`, `1024Mi`, `1e3`) as exact values: the API server
//! stores them in a canonical spelling, so the spelling in a spec says nothing; the value does.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Units of 10^-9: the finest precision the API server keeps.
const NANO: i128 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Kubernetes quantity (for example 256Mi, 1Gi, 500m)")]
pub struct QuantityError(pub String);

/// The value of `text` in nano-units, rounded up as the API server rounds.
pub fn nanos(text: &str) -> Result<i128, QuantityError> {
    let bad = || QuantityError(text.to_string());
    let text = text.trim();
    let (number, suffix) = split(text).ok_or_else(bad)?;
    let (decimal_exponent, binary_exponent) = suffix_exponents(suffix).ok_or_else(bad)?;
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        let digit = c.to_digit(10).ok_or_else(bad)?;
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(digit.into()))
            .ok_or_else(bad)?;
    }
    // value = mantissa × 10^(decimal_exponent − fraction digits) × 2^binary_exponent, in nanos.
    let mut value = mantissa.checked_mul(1i128 << binary_exponent).ok_or_else(bad)?;
    let exponent = decimal_exponent - fraction.len() as i32 + 9;
    if exponent >= 0 {
        value = value
            .checked_mul(10i128.checked_pow(exponent as u32).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    } else {
        let divisor = 10i128.checked_pow(exponent.unsigned_abs()).ok_or_else(bad)?;
        value = (value + divisor - 1) / divisor;
    }
    Ok(if negative { -value } else { value })
}

/// Whole bytes (rounded up) of a non-negative quantity.
pub fn bytes(quantity: &Quantity) -> Result<u64, QuantityError> {
    let value = nanos(&quantity.0)?;
    if value < 0 {
        return Err(QuantityError(quantity.0.clone()));
    }
    u64::try_from((value + NANO - 1) / NANO).map_err(|_| QuantityError(quantity.0.clone()))
}

/// Whether two spellings are the same quantity (`0.5` and `500m`, `1024Mi` and `1Gi`).
pub fn same(a: &str, b: &str) -> bool {
    a == b || matches!((nanos(a), nanos(b)), (Ok(x), Ok(y)) if x == y)
}

/// `bytes` as a quantity in whole MiB, rounded up (what a memory request is written in).
pub fn mebibytes(bytes: u64) -> Quantity {
    const MIB: u64 = 1024 * 1024;
    Quantity(format!("{}Mi", bytes.div_ceil(MIB)))
}

/// Splits `12.5Mi` into (`12.5`, `Mi`) and `1e3` into (`1`, `e3`).
fn split(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    (!number.is_empty()).then_some((number, suffix))
}

/// (decimal exponent, binary exponent) of a suffix.
fn suffix_exponents(suffix: &str) -> Option<(i32, u32)> {
    Some(match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            let value: i32 = digits.parse().ok()?;
            (value.abs() <= 30).then_some((value, 0))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_the_api_server_canonicalizes_are_the_same_value() {
        for (a, b) in [
            ("0.5", "500m"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1e3", "1k"),
            ("1000", "1k"),
            ("2", "2000m"),
            ("+1", "1"),
            (".5", "500m"),
        ] {
            assert!(same(a, b), "{a} = {b}");
        }
        for (a, b) in [("1Gi", "1G"), ("500m", "5"), ("1Mi", "1M"), ("1", "1001m")] {
            assert!(!same(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn bytes_round_up_and_refuse_what_is_not_a_size() {
        assert_eq!(bytes(&Quantity("128Mi".into())), Ok(128 * 1024 * 1024));
        assert_eq!(bytes(&Quantity("1.5k".into())), Ok(1500));
        assert_eq!(bytes(&Quantity("100m".into())), Ok(1));
        assert_eq!(bytes(&Quantity("256".into())), Ok(256));
        for bad in ["", "Mi", "12XB", "-1Gi", "1..2", "1e99", "abc"] {
            assert!(bytes(&Quantity(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mebibytes_round_up() {
        assert_eq!(mebibytes(1), Quantity("1Mi".into()));
        assert_eq!(mebibytes(352 * 1024 * 1024), Quantity("352Mi".into()));
        assert_eq!(mebibytes(352 * 1024 * 1024 + 1), Quantity("353Mi".into()));
    }
}
