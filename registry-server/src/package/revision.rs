//! The CouchDB-style document revision (`_rev`, `N-hex`) npm sends back on every modification.

pub const INITIAL: &str = "0-0000000000000000";

/// The revision following `current`; the random part tells apart two writers that started from
/// the same revision.
pub fn next(current: Option<&str>) -> String {
    let n = current
        .and_then(|r| r.split_once('-'))
        .and_then(|(n, _)| n.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{}-{:016x}", n + 1, rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn increments() {
        let a = super::next(None);
        assert!(a.starts_with("1-"));
        assert_eq!(a.len(), 18);
        assert!(super::next(Some(&a)).starts_with("2-"));
        assert!(super::next(Some("garbage")).starts_with("1-"));
    }
}
