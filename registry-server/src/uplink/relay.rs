//! Passes a large upstream tarball on to the client while it downloads, then stores it once it is
//! whole and verified. The last chunk is held back until the integrity check passes, so a client
//! never receives the whole of a file that does not match: on a mismatch the transfer breaks off
//! and nothing is stored.

use super::{UplinkClient, UplinkError, keep, verify};
use crate::storage::{Blob, Key, Storage};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::{OwnedMutexGuard, mpsc};

/// What a download must match, and where it goes when it does.
pub struct Download {
    pub client: Arc<UplinkClient>,
    pub package: String,
    pub file: String,
    pub sri: Option<String>,
    pub shasum: Option<String>,
    /// Where to keep the verified file; `None` when the uplink does not cache.
    pub cache: Option<(Arc<dyn Storage>, Key)>,
}

/// Chunks in flight between the download and a slow client (the download waits beyond that).
const BACKLOG: usize = 16;
/// A cap on the memory reserved up front from an upstream's declared length.
const RESERVE_MAX: u64 = 64 * 1024 * 1024;

/// Starts the download in a task of its own, so that it completes and fills the cache even when
/// the client goes away; `single` (the package's single-flight lock) is held until it is stored.
pub fn start(download: Download, res: reqwest::Response, len: u64, single: OwnedMutexGuard<()>) -> Blob {
    let (tx, mut rx) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        run(download, res, len, tx).await;
        drop(single);
    });
    Blob {
        len,
        stream: Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))),
    }
}

async fn run(d: Download, mut res: reqwest::Response, len: u64, tx: mpsc::Sender<std::io::Result<Bytes>>) {
    let broken = |e: &UplinkError| Err(std::io::Error::other(e.to_string()));
    let mut whole = BytesMut::with_capacity(len.min(RESERVE_MAX) as usize);
    let mut held: Option<Bytes> = None;
    let mut listening = true;
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                whole.extend_from_slice(&chunk);
                if let Some(previous) = held.replace(chunk)
                    && listening
                {
                    listening = tx.send(Ok(previous)).await.is_ok();
                }
            }
            Ok(None) => break,
            Err(e) => {
                let e = UplinkError::Fetch(d.client.body_failed(e));
                tracing::warn!(package = %d.package, file = %d.file, error = %e, "tarball download broke off");
                let _ = tx.send(broken(&e)).await;
                return;
            }
        }
    }
    d.client.body_done();
    let whole = whole.freeze();
    // Hashing many megabytes is CPU work: off the async workers.
    let bytes = whole.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let checked = verify(&d.client.name, &d.file, &bytes, d.sri.as_deref(), d.shasum.as_deref());
        (d, checked)
    })
    .await;
    let d = match checked {
        Ok((d, Ok(()))) => d,
        Ok((d, Err(e))) => {
            tracing::error!(package = %d.package, error = %e, "tarball refused; its transfer was broken off");
            let _ = tx.send(broken(&e)).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "tarball integrity check did not run; its transfer was broken off");
            let _ = tx.send(Err(std::io::Error::other("integrity check failed"))).await;
            return;
        }
    };
    if let Some(last) = held
        && listening
    {
        let _ = tx.send(Ok(last)).await;
    }
    drop(tx);
    if let Some((storage, key)) = &d.cache {
        keep(storage.as_ref(), key, whole, &d.package, &d.file).await;
    }
}
