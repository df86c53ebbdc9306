//! The house's layering, checked on the sources so it stays: requests flow down from `http` (and
//! the web UI above it) through `registry` to `storage`, with `config` as data below every room.
//! No module imports one above it, and a lost write race is named only on the storage floor (its
//! document layer) and in the HTTP error mapping.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its code lines (comments left out).
fn sources(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .map(str::to_owned)
                    .collect();
                out.push((path, code));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The lines of the room `room` (a folder of `src/`) that name any of `forbidden`.
fn offences(room: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, code) in sources(&src().join(room)) {
        for line in code.iter().filter(|l| forbidden.iter().any(|f| l.contains(f))) {
            found.push(format!("{}: {}", path.display(), line.trim()));
        }
    }
    found
}

#[test]
fn config_is_data_below_every_room() {
    let above = [
        "crate::auth",
        "crate::registry",
        "crate::http",
        "crate::web",
        "crate::serve",
        "crate::storage",
    ];
    assert_eq!(offences("config", &above), Vec::<String>::new());
}

#[test]
fn storage_is_the_floor() {
    let above = [
        "crate::auth",
        "crate::registry",
        "crate::http",
        "crate::web",
        "crate::serve",
        "crate::signing",
        "crate::uplink",
        "crate::package",
    ];
    assert_eq!(offences("storage", &above), Vec::<String>::new());
}

#[test]
fn handlers_know_no_connection_loop_and_no_ui() {
    assert_eq!(offences("http", &["crate::serve", "crate::web"]), Vec::<String>::new());
}

#[test]
fn a_lost_race_is_named_only_on_the_storage_floor() {
    let names = ["StorageError::Conflict", "StorageError::AlreadyExists"];
    let mut found = Vec::new();
    for (path, code) in sources(&src()) {
        let rel = path.strip_prefix(src()).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("storage/") || rel == "http/error.rs" {
            continue;
        }
        found.extend(
            code.iter()
                .filter(|l| names.iter().any(|n| l.contains(n)))
                .map(|l| format!("{rel}: {}", l.trim())),
        );
    }
    assert_eq!(found, Vec::<String>::new(), "use storage::document instead");
}

#[test]
fn the_rules_see_what_they_check() {
    // A rule that finds nothing because it reads nothing would pass forever.
    assert!(!offences("http", &["crate::registry"]).is_empty());
    assert!(!offences("storage", &["crate::storage"]).is_empty());
}
