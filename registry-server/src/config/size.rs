//! Verdaccio's size syntax (`10mb`, `500kb`, `1.5gb`, or a plain byte count), 1024-based as in the
//! `bytes` package Verdaccio uses.

/// Parses a size such as `10mb` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a size such as 10mb, got {text:?}"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        "tb" | "t" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(format!("size must be at least one byte, got {text:?}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn parses_verdaccio_sizes() {
        assert_eq!(parse_size("10mb"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("500KB"), Ok(500 * 1024));
        assert_eq!(parse_size("1.5gb"), Ok(1024 * 1024 * 1024 * 3 / 2));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }
}
