//! Test data: package folders, consumer projects, publish bodies, snapshots of a storage folder.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Writes a package folder with `package.json` and an `index.js`.
pub fn write_package(dir: &Path, name: &str, version: &str, deps: &[(&str, &str)], code: &str) -> PathBuf {
    let folder = dir.join(format!("src-{}-{version}", name.replace('/', "-").replace('@', "")));
    std::fs::create_dir_all(&folder).unwrap();
    let deps: serde_json::Map<String, Value> = deps.iter().map(|(n, v)| ((*n).to_owned(), json!(v))).collect();
    let manifest = json!({
        "name": name, "version": version, "main": "index.js", "license": "MIT",
        "description": format!("{name} test package"), "dependencies": deps,
    });
    std::fs::write(
        folder.join("package.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(folder.join("index.js"), code).unwrap();
    folder
}

/// A fresh consumer project folder.
pub fn project(dir: &Path, label: &str) -> PathBuf {
    let p = dir.join(label);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("package.json"),
        format!("{{\"name\":\"{label}\",\"version\":\"1.0.0\",\"private\":true}}"),
    )
    .unwrap();
    p
}

/// An npm-shaped publish body for `name@version` with `tarball` as its (opaque) tarball bytes.
pub fn publish_body(name: &str, version: &str, tarball: &[u8]) -> Value {
    registry_server::package::publish::request_body(name, version, tarball)
}

/// [`snapshot`] less the server's own records (keys, the search index, leases: written by its
/// background work whenever it gets to them), to prove a request wrote no package file.
pub fn package_files(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .into_iter()
        .filter(|f| !f.starts_with(".npm-registry/") && !f.starts_with(".locks/.npm-registry"))
        .collect()
}

/// Every file under `dir` (relative paths, sorted), to prove a request wrote nothing.
pub fn snapshot(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let meta = std::fs::metadata(&p).unwrap();
                out.push(format!("{} {}", p.strip_prefix(root).unwrap().display(), meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `len` bytes that do not compress: a stand-in for a large tarball.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `npm pack` of a tiny package: real tarball bytes npm can install.
pub fn npm_pack(dir: &Path, name: &str, version: &str) -> Vec<u8> {
    let folder = write_package(
        dir,
        name,
        version,
        &[],
        &format!("module.exports = '{name}@{version}';\n"),
    );
    let out = super::ok(
        std::process::Command::new("npm")
            .args(["pack", "--json", "--pack-destination"])
            .arg(&folder)
            .current_dir(&folder)
            .output()
            .unwrap(),
        "npm pack",
    );
    let file: serde_json::Value = serde_json::from_str(&out).unwrap();
    std::fs::read(folder.join(file[0]["filename"].as_str().unwrap())).unwrap()
}
