//! Filesystem backend (a local folder, a PVC, EFS). Documents are replaced by temp file + rename
//! under an advisory lock per key, so several processes sharing one volume never lose an update;
//! blobs are created with a hard link, which fails if the name exists.

use super::{Blob, Key, Revision, Storage, StorageError, Versioned};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use tokio_util::io::ReaderStream;

const LOCK_DIR: &str = ".locks";
/// Blobs up to this size are read in one go (one trip to the blocking pool); larger ones stream.
const READ_WHOLE: u64 = 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;
/// Longest lock file name spelled from its key; longer keys are hashed (file names stop at 255).
const MAX_LOCK_NAME: usize = 200;

#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

/// A file's identity. Every write renames a new file into place, so the inode changes with each
/// write; size and mtime guard against inode reuse. It costs a stat, not a read and a hash.
fn revision_of(meta: &fs::Metadata) -> Revision {
    use std::os::unix::fs::MetadataExt;
    Revision(format!(
        "{:x}-{:x}-{:x}.{:x}",
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// What temp files' names start with, so that leftovers of a crash can be found.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A temp file beside `path`. Short whatever the target's name: a file name may be 255 bytes, a
/// name built on it would not fit.
fn temp_name(path: &Path) -> PathBuf {
    path.with_file_name(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()))
}

/// Whether a file name is one of our temp files (or one of the older `.<file>.tmp-<hex>`).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || (name.starts_with('.') && name.contains(TEMP_PREFIX))
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Puts the blob written to `tmp` (by `fill`) at `path`, unless `path` exists.
fn link_new_blob(path: &Path, k: &Key, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<(), StorageError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(k, e))?;
    }
    let tmp = temp_name(path);
    fill(&tmp).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StorageError::io(k, e)
    })?;
    // link() refuses to replace an existing name, unlike rename(): write-once for free.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(StorageError::AlreadyExists(k.as_str().to_owned())),
        Err(e) => Err(StorageError::io(k, e)),
    }
}

impl FsStorage {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        fs::create_dir_all(root.join(LOCK_DIR)).map_err(|e| StorageError::Io {
            key: root.display().to_string(),
            source: e,
        })?;
        Ok(FsStorage { root })
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// The lock file of `key`: the key spelled flat, or its hash when that would be too long a
    /// file name (short keys keep the spelling older versions use, so both lock alike during an
    /// upgrade).
    fn lock_path(&self, key: &Key) -> PathBuf {
        let flat = format!("{}.lock", key.as_str().replace('/', "%2F"));
        let file = if flat.len() <= MAX_LOCK_NAME {
            flat
        } else {
            use sha2::Digest;
            format!("{}.lock", hex::encode(sha2::Sha256::digest(key.as_str().as_bytes())))
        };
        self.root.join(LOCK_DIR).join(file)
    }

    /// Runs `f` holding the exclusive lock of `key`, on a blocking thread.
    async fn locked<T: Send + 'static>(
        &self,
        key: &Key,
        f: impl FnOnce(&Path) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let path = self.path(key);
        let lock_path = self.lock_path(key);
        let k = key.clone();
        tokio::task::spawn_blocking(move || {
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| StorageError::io(&k, e))?;
            lock.lock().map_err(|e| StorageError::io(&k, e))?;
            let out = f(&path);
            drop(lock); // closing the file releases the lock
            out
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }
}

fn current_revision(path: &Path, key: &Key) -> Result<Option<Revision>, StorageError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(revision_of(&m))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(key, e)),
    }
}

fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Removes temp files older than `older_than` under `dir` (symlinks not followed, the lock
/// folder left alone); returns how many went.
fn sweep(dir: &Path, older_than: std::time::Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() && name != LOCK_DIR {
            removed += sweep(&entry.path(), older_than);
        } else if kind.is_file() && is_temp_name(&name) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m.elapsed().is_ok_and(|age| age >= older_than));
            if old && fs::remove_file(entry.path()).is_ok() {
                tracing::info!(file = %entry.path().display(), "removed a temp file left by an interrupted write");
                removed += 1;
            }
        }
    }
    removed
}

#[async_trait]
impl Storage for FsStorage {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        let path = self.path(key);
        let k = key.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StorageError::io(&k, e)),
            };
            // The revision of the very file read (fstat on the open handle), even if it is
            // replaced meanwhile.
            let meta = file.metadata().map_err(|e| StorageError::io(&k, e))?;
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            file.read_to_end(&mut bytes).map_err(|e| StorageError::io(&k, e))?;
            Ok(Some(Versioned {
                revision: revision_of(&meta),
                bytes: bytes.into(),
            }))
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    async fn revision(&self, key: &Key) -> Result<Option<Revision>, StorageError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) => Ok(Some(revision_of(&m))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError> {
        let expected = expected.cloned();
        let k = key.clone();
        self.locked(key, move |path| {
            if current_revision(path, &k)? != expected {
                return Err(StorageError::Conflict(k.as_str().to_owned()));
            }
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| StorageError::io(&k, e))?;
            }
            let tmp = temp_name(path);
            let result = write_new_file(&tmp, &bytes).and_then(|()| fs::rename(&tmp, path));
            if let Err(e) = result {
                let _ = fs::remove_file(&tmp);
                return Err(StorageError::io(&k, e));
            }
            current_revision(path, &k)?.ok_or_else(|| StorageError::Conflict(k.as_str().to_owned()))
        })
        .await
    }

    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        let expected = expected.clone();
        let k = key.clone();
        let root = self.root.clone();
        self.locked(key, move |path| {
            match current_revision(path, &k)? {
                None => return Ok(()),
                Some(r) if r != expected => {
                    return Err(StorageError::Conflict(k.as_str().to_owned()));
                }
                Some(_) => {}
            }
            fs::remove_file(path).map_err(|e| StorageError::io(&k, e))?;
            remove_empty_parents(&root, path);
            Ok(())
        })
        .await
    }

    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        let path = self.path(key);
        let k = key.clone();
        tokio::task::spawn_blocking(move || link_new_blob(&path, &k, |tmp| write_new_file(tmp, &bytes)))
            .await
            .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    async fn put_blob_file(&self, key: &Key, source: &Path) -> Result<(), StorageError> {
        let (path, source) = (self.path(key), source.to_owned());
        let k = key.clone();
        tokio::task::spawn_blocking(move || {
            link_new_blob(&path, &k, |tmp| {
                fs::copy(&source, tmp)?;
                File::open(tmp)?.sync_all()
            })
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        let path = self.path(key);
        let k = key.clone();
        // Open, stat and (for most tarballs) read in one blocking call: each trip to the blocking
        // pool costs more than the read itself.
        let opened =
            tokio::task::spawn_blocking(move || -> Result<Option<(u64, Result<Bytes, File>)>, StorageError> {
                let mut file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(StorageError::io(&k, e)),
                };
                let meta = file.metadata().map_err(|e| StorageError::io(&k, e))?;
                if !meta.is_file() {
                    return Ok(None);
                }
                if meta.len() > READ_WHOLE {
                    return Ok(Some((meta.len(), Err(file))));
                }
                let mut bytes = Vec::with_capacity(meta.len() as usize);
                file.read_to_end(&mut bytes).map_err(|e| StorageError::io(&k, e))?;
                Ok(Some((bytes.len() as u64, Ok(Bytes::from(bytes)))))
            })
            .await
            .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))??;
        Ok(opened.map(|(len, content)| match content {
            Ok(bytes) => Blob::whole(bytes),
            Err(file) => Blob {
                len,
                stream: ReaderStream::with_capacity(tokio::fs::File::from_std(file), READ_CHUNK).boxed(),
            },
        }))
    }

    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                let root = self.root.clone();
                let _ = tokio::task::spawn_blocking(move || remove_empty_parents(&root, &path)).await;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        let mut dir = match tokio::fs::read_dir(self.path(prefix)).await {
            Ok(d) => d,
            // A file is a folder with nothing in it (a stray file at the root of the storage).
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io(prefix, e)),
        };
        let mut names = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(|e| StorageError::io(prefix, e))? {
            if let Some(n) = entry.file_name().to_str()
                && !n.starts_with('.')
            {
                names.push(n.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    async fn list_root(&self) -> Result<Vec<String>, StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut names = Vec::new();
            let entries = fs::read_dir(&root).map_err(|e| StorageError::Io {
                key: root.display().to_string(),
                source: e,
            })?;
            for entry in entries.flatten() {
                if let Some(n) = entry.file_name().to_str()
                    && !n.starts_with('.')
                {
                    names.push(n.to_owned());
                }
            }
            names.sort();
            Ok(names)
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    async fn modified(&self, key: &Key) -> Result<Option<std::time::SystemTime>, StorageError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) => Ok(m.modified().ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    async fn sweep_temp(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || Ok(sweep(&root, older_than)))
            .await
            .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    async fn check(&self) -> Result<(), StorageError> {
        let meta = tokio::fs::metadata(&self.root)
            .await
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", self.root.display())))?;
        if meta.is_dir() {
            Ok(())
        } else {
            Err(StorageError::Unavailable(format!(
                "{} is not a folder",
                self.root.display()
            )))
        }
    }
}
