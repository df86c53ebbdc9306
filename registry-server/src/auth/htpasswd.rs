//! The htpasswd file (in Kubernetes a read-only Secret): parsed into users, re-read when it
//! changes on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the file's metadata is checked for a change.
pub const POLL: Duration = Duration::from_secs(2);

/// `name:hash[:comment]` lines, as Verdaccio's plugin reads them.
pub fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let name = parts.next()?.trim();
            let hash = parts.next()?.trim();
            (!name.is_empty() && !name.starts_with('#') && !hash.is_empty()).then(|| (name.to_owned(), hash.to_owned()))
        })
        .collect()
}

#[derive(Debug)]
pub struct HtpasswdFile {
    path: PathBuf,
    users: RwLock<Arc<HashMap<String, String>>>,
    seen: RwLock<Option<(SystemTime, u64)>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl HtpasswdFile {
    /// Reads the file now; a missing file is an empty user list (it may be mounted later).
    pub fn open(path: &Path) -> Arc<Self> {
        let f = Arc::new(HtpasswdFile {
            path: path.to_owned(),
            users: RwLock::new(Arc::new(HashMap::new())),
            seen: RwLock::new(None),
        });
        f.reload_if_changed();
        f
    }

    pub fn users(&self) -> Arc<HashMap<String, String>> {
        self.users.read().expect("lock poisoned").clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    pub fn hash_of(&self, name: &str) -> Option<String> {
        self.users().get(name).cloned()
    }

    fn reload_if_changed(&self) {
        let now = stamp(&self.path);
        if *self.seen.read().expect("lock poisoned") == now {
            return;
        }
        let users = std::fs::read_to_string(&self.path)
            .map(|t| parse(&t))
            .unwrap_or_default();
        tracing::info!(file = %self.path.display(), users = users.len(), "htpasswd loaded");
        *self.users.write().expect("lock poisoned") = Arc::new(users);
        *self.seen.write().expect("lock poisoned") = now;
    }

    /// Polls the file in the background so an updated Secret takes effect without a restart.
    pub fn watch(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                let Some(f) = me.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || f.reload_if_changed()).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verdaccio_lines() {
        let u = parse("alice:$2y$10$abc:autocreated 2024-01-01T00:00:00.000Z\r\nbob:{SHA}xyz\n\n#c:x\nbad\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u["alice"], "$2y$10$abc");
        assert_eq!(u["bob"], "{SHA}xyz");
    }

    #[test]
    fn reloads_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        std::fs::write(&p, "a:{PLAIN}x\n").unwrap();
        let f = HtpasswdFile::open(&p);
        assert!(f.hash_of("a").is_some());
        std::fs::write(&p, "a:{PLAIN}x\nbb:{PLAIN}y\n").unwrap();
        f.reload_if_changed();
        assert!(f.hash_of("bb").is_some());
    }
}
