//! A large upstream tarball downloaded to a temporary file at upstream speed, whatever the pace
//! of its clients, hashed as it arrives (never held whole) and stored from the file once it
//! matches its integrity. Every client reads from the file, the first and those that come while
//! it downloads alike; the last bytes are held back until the file is verified, so no client
//! ever receives the whole of a file that does not match.

use super::UplinkClient;
use crate::package::integrity::Verifier;
use crate::storage::{Blob, Key, Storage, document};
use bytes::Bytes;
use futures_util::StreamExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// Bytes held back from readers until the file is verified.
const HOLD_BACK: u64 = 64 * 1024;
const READ_CHUNK: u64 = 256 * 1024;

/// What a download must match, and where it goes when it does.
pub struct Download {
    pub client: Arc<UplinkClient>,
    pub package: String,
    pub file: String,
    pub verifier: Verifier,
    /// Where to keep the verified file; `None` when the uplink does not cache.
    pub store: Option<(Arc<dyn Storage>, Key)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Receiving,
    Verified,
    Failed(String),
}

pub struct Spool {
    file: std::fs::File,
    path: tempfile::TempPath,
    /// The length upstream declared.
    declared: Option<u64>,
    progress: watch::Receiver<(u64, State)>,
}

/// Starts the download in a task of its own, so that it completes and fills the cache even when
/// every client goes away; `done` runs when it has ended (stored or not).
pub fn start(d: Download, res: reqwest::Response, done: impl FnOnce() + Send + 'static) -> std::io::Result<Arc<Spool>> {
    let (file, path) = tempfile::NamedTempFile::new()?.into_parts();
    let writer = tokio::fs::File::from_std(file.try_clone()?);
    let (tx, progress) = watch::channel((0, State::Receiving));
    let spool = Arc::new(Spool {
        file,
        path,
        declared: res.content_length(),
        progress,
    });
    let s = spool.clone();
    tokio::spawn(async move {
        run(d, res, writer, tx, &s).await;
        done();
    });
    Ok(spool)
}

async fn run(
    d: Download,
    mut res: reqwest::Response,
    mut writer: tokio::fs::File,
    tx: watch::Sender<(u64, State)>,
    spool: &Spool,
) {
    let Download {
        client,
        package,
        file,
        mut verifier,
        store,
    } = d;
    let fail = |reason: String| {
        tracing::warn!(package = %package, file = %file, error = %reason, "tarball download broke off");
        tx.send_modify(|p| p.1 = State::Failed(reason));
    };
    let limit = client.config.max_tarball_size;
    let mut written = 0u64;
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                if written + chunk.len() as u64 > limit {
                    return fail(client.tarball_too_large().to_string());
                }
                verifier.update(&chunk);
                if let Err(e) = async {
                    writer.write_all(&chunk).await?;
                    writer.flush().await
                }
                .await
                {
                    return fail(format!("spool file: {e}"));
                }
                written += chunk.len() as u64;
                tx.send_modify(|p| p.0 = written);
            }
            Ok(None) => break,
            Err(e) => return fail(client.body_failed(e).to_string()),
        }
    }
    if spool.declared.is_some_and(|n| n != written) {
        return fail(format!("upstream sent {written} bytes of {:?}", spool.declared));
    }
    client.body_done();
    if let Err(e) = verifier.finish() {
        tracing::error!(package = %package, file = %file, uplink = %client.name, error = %e,
            "tarball refused: it does not match its integrity (uplink {}); its transfer was broken off", client.name);
        tx.send_modify(|p| p.1 = State::Failed(format!("{e} (uplink {})", client.name)));
        return;
    }
    tx.send_modify(|p| p.1 = State::Verified);
    if let Some((storage, key)) = store {
        // Already stored (by another download) will do as well.
        if let Err(e) = document::put_blob_file_once(storage.as_ref(), &key, &spool.path).await {
            tracing::warn!(package = %package, file = %file, error = %e, "tarball not cached");
        }
    }
}

impl Spool {
    /// Waits until the download has ended; whether it was verified.
    pub async fn finished(&self) -> Result<u64, String> {
        let mut rx = self.progress.clone();
        let done = rx
            .wait_for(|(_, s)| *s != State::Receiving)
            .await
            .map_err(|_| "the download ended unexpectedly".to_owned())?;
        match &done.1 {
            State::Failed(e) => Err(e.clone()),
            _ => Ok(done.0),
        }
    }

    /// A reader from the start of the file; `None` until upstream's length is known (an
    /// undeclared length is known once the download has ended).
    pub fn reader(self: &Arc<Self>) -> Option<Blob> {
        let progress = self.progress.borrow().clone();
        let len = match (&progress.1, self.declared) {
            (_, Some(n)) => n,
            (State::Verified, None) => progress.0,
            _ => return None,
        };
        let state = (self.clone(), self.progress.clone(), 0u64);
        let stream = futures_util::stream::unfold(state, move |(spool, mut rx, pos)| async move {
            if pos >= len {
                return None;
            }
            loop {
                let (written, state) = rx.borrow_and_update().clone();
                let readable = match state {
                    State::Verified => written,
                    State::Failed(e) => return Some((Err(std::io::Error::other(e)), (spool, rx, u64::MAX))),
                    State::Receiving => written.saturating_sub(HOLD_BACK),
                };
                if pos < readable {
                    let n = (readable - pos).min(READ_CHUNK) as usize;
                    let s = spool.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0; n];
                        s.file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                    return Some(match read {
                        Ok(b) => (Ok(b), (spool, rx, pos + n as u64)),
                        Err(e) => (Err(e), (spool, rx, u64::MAX)),
                    });
                }
                if rx.changed().await.is_err() && rx.borrow().1 == State::Receiving {
                    let e = std::io::Error::other("the download ended unexpectedly");
                    return Some((Err(e), (spool, rx, u64::MAX)));
                }
            }
        });
        Some(Blob {
            len,
            stream: stream.boxed(),
        })
    }
}
