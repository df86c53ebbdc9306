//! Upstream tarballs, fetched only at the URL and integrity of the upstream packument (never the
//! client's) and stored once they match. A small one is checked whole before it is sent (a
//! mismatch answers 502); a large one goes through a spool file ([`super::spool`]). One download
//! per file however many clients ask at once.

use super::spool::{self, Download};
use super::{UplinkError, Uplinks, tarball_key};
use crate::package::PackageName;
use crate::package::integrity::Verifier;
use crate::package::packument::UpstreamTarball;
use crate::storage::{Blob, Key, StorageError, document};
use bytes::Bytes;
use std::sync::Arc;

/// Tarballs up to this size are downloaded into memory; larger ones (or of unknown size) are
/// spooled to a file.
const IN_MEMORY_MAX: u64 = 1024 * 1024;

/// What a fetch produced, for every request that waited on it.
#[derive(Clone)]
pub enum Fetched {
    /// Stored meanwhile (by another request or replica): read it from storage.
    Stored,
    /// A small file, downloaded and verified whole.
    Bytes(Bytes),
    /// A large file, downloading to a spool file.
    Spooled(Arc<spool::Spool>),
}

impl Uplinks {
    /// An upstream tarball this cache has already stored.
    pub async fn cached_tarball(&self, name: &PackageName, file: &str) -> Result<Option<Blob>, StorageError> {
        self.storage.get_blob(&tarball_key(name.as_str(), file)?).await
    }

    /// Fetches a tarball from `uplink` and stores it once it matches (when the uplink caches).
    pub async fn tarball(
        &self,
        name: &PackageName,
        file: &str,
        uplink: &str,
        t: &UpstreamTarball,
    ) -> Result<Option<Blob>, UplinkError> {
        let key = tarball_key(name.as_str(), file)?;
        let spooled = self.spools.lock().expect("not poisoned").get(key.as_str()).cloned();
        let fetched = match spooled {
            Some(s) => Some(Fetched::Spooled(s)),
            None => {
                self.fetches
                    .run(key.as_str(), || self.fetch(name, file, uplink, t, &key))
                    .await?
            }
        };
        Ok(match fetched {
            None => None,
            Some(Fetched::Bytes(b)) => Some(Blob::whole(b)),
            Some(Fetched::Stored) => self.cached_tarball(name, file).await?,
            Some(Fetched::Spooled(s)) => match s.reader() {
                Some(blob) => Some(blob),
                // Upstream did not say how long it is: serve it once it is all there.
                None => {
                    s.finished().await.map_err(|e| self.broken(uplink, e))?;
                    s.reader()
                }
            },
        })
    }

    fn broken(&self, uplink: &str, reason: String) -> UplinkError {
        let url = self
            .client(uplink)
            .map_or_else(String::new, |c| super::client::public_url(&c.config.url));
        UplinkError::Fetch(super::FetchError::Failed {
            uplink: uplink.to_owned(),
            url,
            cause: "the download broke off".to_owned(),
            reason,
        })
    }

    async fn fetch(
        &self,
        name: &PackageName,
        file: &str,
        uplink: &str,
        t: &UpstreamTarball,
        key: &Key,
    ) -> Result<Option<Fetched>, UplinkError> {
        if self.storage.revision(key).await?.is_some() {
            return Ok(Some(Fetched::Stored));
        }
        let Some(client) = self.client(uplink).cloned() else {
            return Ok(None);
        };
        let refused = |e| UplinkError::Integrity {
            uplink: uplink.to_owned(),
            file: file.to_owned(),
            source: Box::new(e),
        };
        let mut verifier = Verifier::new(file, t.integrity.as_deref(), t.shasum.as_deref()).map_err(refused)?;
        let Some(mut res) = client.tarball(&t.url).await? else {
            return Ok(None);
        };
        let store = client.config.cache.then(|| (self.storage.clone(), key.clone()));
        match res.content_length().filter(|&n| n <= IN_MEMORY_MAX) {
            Some(len) => {
                let mut buf = self
                    .budget
                    .buffer(len, client.config.timeout)
                    .await
                    .map_err(|e| self.broken(uplink, e.to_string()))?;
                while let Some(chunk) = res.chunk().await.map_err(|e| client.body_failed(e))? {
                    if (buf.len() + chunk.len()) as u64 > len {
                        return Err(client.tarball_too_large().into());
                    }
                    buf.extend(&chunk)
                        .await
                        .map_err(|e| self.broken(uplink, e.to_string()))?;
                }
                client.body_done();
                let (bytes, _room) = buf.freeze();
                verifier.update(&bytes);
                verifier.finish().map_err(|e| {
                    tracing::error!(package = %name, file, error = %e, "tarball refused");
                    refused(e)
                })?;
                // Stored beside the answer, not before it (a durable write takes a while).
                if let Some((storage, key)) = store {
                    let (b, package, file) = (bytes.clone(), name.to_string(), file.to_owned());
                    tokio::spawn(async move {
                        if let Err(e) = document::put_blob_once(storage.as_ref(), &key, b).await {
                            tracing::warn!(package, file, error = %e, "tarball not cached");
                        }
                    });
                }
                Ok(Some(Fetched::Bytes(bytes)))
            }
            None => {
                let download = Download {
                    client,
                    package: name.to_string(),
                    file: file.to_owned(),
                    verifier,
                    store,
                };
                let spools = self.spools.clone();
                let k = key.as_str().to_owned();
                // Listed before its download can end (and unlist it).
                let mut listed = self.spools.lock().expect("not poisoned");
                let s = spool::start(download, res, move || {
                    spools.lock().expect("not poisoned").remove(&k);
                })
                .map_err(|e| self.broken(uplink, format!("cannot create a spool file: {e}")))?;
                listed.insert(key.as_str().to_owned(), s.clone());
                Ok(Some(Fetched::Spooled(s)))
            }
        }
    }
}
