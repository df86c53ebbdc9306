//! S3 backend, laid out as Verdaccio's S3 plugin lays out a bucket: `<keyPrefix><key>`, with the
//! package list in `<keyPrefix>verdaccio-s3-db.json`. Safe with many replicas on one bucket:
//! documents are replaced with conditional writes (`If-Match` on the ETag that was read,
//! `If-None-Match: *` to create), blobs are created with `If-None-Match: *`, and deletes of
//! documents carry `If-Match`.

mod client;
mod error;

use super::{Blob, Key, Revision, Storage, StorageError, StorageKey, Versioned};
use crate::config::S3Store;
use async_trait::async_trait;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;
use error::{Failure, classify, io};
use futures_util::StreamExt;
use std::time::Duration;

pub struct S3Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    sse_kms_key_id: Option<String>,
    redirect_ttl: Option<Duration>,
    /// Bounds reading a document's body, which the SDK's attempt timeout does not cover.
    body_timeout: Duration,
}

impl S3Storage {
    /// Builds the client with credentials from the AWS default chain, which is asked once in the
    /// background so that missing credentials are logged at start; no request to S3 is made
    /// until the first use (see [`Storage::check`]).
    pub async fn connect(cfg: &S3Store) -> Self {
        Self::connect_with(cfg, None).await
    }

    /// Like [`S3Storage::connect`], with fixed credentials instead of the default chain.
    pub async fn connect_with(cfg: &S3Store, credentials: Option<Credentials>) -> Self {
        S3Storage {
            client: client::build(cfg, credentials).await,
            bucket: cfg.bucket.clone(),
            prefix: cfg.key_prefix.clone(),
            sse_kms_key_id: cfg.sse_kms_key_id.clone(),
            redirect_ttl: cfg.tarball_redirect,
            body_timeout: cfg.request_timeout,
        }
    }

    fn object_key(&self, key: &Key) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    fn what(&self, verb: &str, key: &Key) -> String {
        format!("{verb} s3://{}/{}", self.bucket, self.object_key(key))
    }

    /// A PUT of `key`, encrypted with the configured KMS key.
    fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        content_type: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.put_stream(key, ByteStream::from(bytes), content_type)
    }

    fn put_stream(
        &self,
        key: &Key,
        body: ByteStream,
        content_type: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .content_type(content_type)
            .body(body);
        match &self.sse_kms_key_id {
            None => put,
            Some(id) => put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(id),
        }
    }

    /// Names directly under `folder` (an object key prefix ending in `/`, or the bare prefix).
    async fn list_folder(&self, folder: String) -> Result<Vec<String>, StorageError> {
        let what = format!("LIST s3://{}/{folder}", self.bucket);
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&folder)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(&what, e).into_error(&what))?;
            let files = page.contents().iter().filter_map(|o| o.key());
            let dirs = page.common_prefixes().iter().filter_map(|p| p.prefix());
            for full in files.chain(dirs) {
                let name = full[folder.len().min(full.len())..].trim_end_matches('/');
                if !name.is_empty() && !name.starts_with('.') {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn exists(&self, key: &Key) -> Result<bool, StorageError> {
        let what = self.what("HEAD", key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match classify(&what, e) {
                Failure::NotFound => Ok(false),
                f => Err(f.into_error(&what)),
            },
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn read(&self, key: &Key) -> Result<Option<Versioned>, StorageError> {
        let what = self.what("GET", key);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match classify(&what, e) {
                    Failure::NotFound => Ok(None),
                    f => Err(f.into_error(&what)),
                };
            }
        };
        let etag = out.e_tag.ok_or_else(|| io(&what, "S3 returned no ETag"))?;
        let body = tokio::time::timeout(self.body_timeout, out.body.collect())
            .await
            .map_err(|_| StorageError::Unavailable(format!("S3 body of {what} timed out")))?
            .map_err(|e| StorageError::Unavailable(format!("reading {what}: {e}")))?;
        Ok(Some(Versioned {
            bytes: body.into_bytes(),
            revision: Revision(etag),
        }))
    }

    /// A HEAD: the ETag without the body, for revalidating cached packuments.
    async fn revision(&self, key: &Key) -> Result<Option<Revision>, StorageError> {
        let what = self.what("HEAD", key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(out) => Ok(Some(Revision(
                out.e_tag.ok_or_else(|| io(&what, "S3 returned no ETag"))?,
            ))),
            Err(e) => match classify(&what, e) {
                Failure::NotFound => Ok(None),
                f => Err(f.into_error(&what)),
            },
        }
    }

    async fn write(&self, key: &Key, bytes: Bytes, expected: Option<&Revision>) -> Result<Revision, StorageError> {
        let what = self.what("PUT", key);
        let put = self.put(key, bytes, "application/json");
        let put = match expected {
            None => put.if_none_match("*"),
            Some(rev) => put.if_match(&rev.0),
        };
        match put.send().await {
            Ok(out) => out.e_tag.map(Revision).ok_or_else(|| io(&what, "S3 returned no ETag")),
            Err(e) => match classify(&what, e) {
                // 404: `If-Match` on a document deleted since it was read.
                Failure::PreconditionFailed | Failure::ConcurrentWrite | Failure::NotFound => {
                    Err(StorageError::Conflict(key.as_str().to_owned()))
                }
                f => Err(f.into_error(&what)),
            },
        }
    }

    async fn delete(&self, key: &Key, expected: &Revision) -> Result<(), StorageError> {
        let what = self.what("DELETE", key);
        // Conditional delete (`If-Match`): S3 and moto honour it, so no check-then-delete race.
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .if_match(&expected.0)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify(&what, e) {
                Failure::NotFound => Ok(()),
                Failure::PreconditionFailed | Failure::ConcurrentWrite => {
                    Err(StorageError::Conflict(key.as_str().to_owned()))
                }
                f => Err(f.into_error(&what)),
            },
        }
    }

    async fn put_blob(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        let what = self.what("PUT", key);
        let sent = self
            .put(key, bytes, "application/octet-stream")
            .if_none_match("*")
            .send()
            .await;
        created(&what, key, sent)
    }

    async fn put_blob_file(&self, key: &Key, path: &std::path::Path) -> Result<(), StorageError> {
        let what = self.what("PUT", key);
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StorageError::io(key, std::io::Error::other(e.to_string())))?;
        let sent = self
            .put_stream(key, body, "application/octet-stream")
            .if_none_match("*")
            .send()
            .await;
        created(&what, key, sent)
    }

    async fn get_blob(&self, key: &Key) -> Result<Option<Blob>, StorageError> {
        let what = self.what("GET", key);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match classify(&what, e) {
                    Failure::NotFound => Ok(None),
                    f => Err(f.into_error(&what)),
                };
            }
        };
        let len = out
            .content_length
            .and_then(|l| u64::try_from(l).ok())
            .ok_or_else(|| io(&what, "S3 returned no Content-Length"))?;
        // Chunk by chunk as hyper delivers them: memory stays flat whatever the size.
        let stream = futures_util::stream::try_unfold(out.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(std::io::Error::other(e)),
            }
        });
        Ok(Some(Blob {
            len,
            stream: stream.boxed(),
        }))
    }

    async fn delete_blob(&self, key: &Key) -> Result<(), StorageError> {
        let what = self.what("DELETE", key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify(&what, e) {
                Failure::NotFound => Ok(()),
                f => Err(f.into_error(&what)),
            },
        }
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        self.list_folder(format!("{}/", self.object_key(prefix))).await
    }

    async fn list_root(&self) -> Result<Vec<String>, StorageError> {
        self.list_folder(self.prefix.clone()).await
    }

    async fn modified(&self, key: &Key) -> Result<Option<std::time::SystemTime>, StorageError> {
        let what = self.what("HEAD", key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(out) => Ok(out.last_modified.and_then(|t| std::time::SystemTime::try_from(t).ok())),
            Err(e) => match classify(&what, e) {
                Failure::NotFound => Ok(None),
                f => Err(f.into_error(&what)),
            },
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        // A one-key listing of our prefix: needs only the `s3:ListBucket` on that prefix that
        // `list` needs anyway (`HeadBucket` would fail under a prefix condition).
        let what = format!("LIST s3://{}/{}", self.bucket, self.prefix);
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&what, e).into_error(&what))
    }

    fn package_list_key(&self) -> Key {
        StorageKey::S3PackageList.key().expect("a constant key")
    }

    async fn blob_redirect(&self, key: &Key) -> Result<Option<String>, StorageError> {
        let Some(ttl) = self.redirect_ttl else {
            return Ok(None);
        };
        // A missing blob is answered by us (404), not by a redirect to S3's error page.
        if !self.exists(key).await? {
            return Ok(None);
        }
        let what = self.what("presign GET", key);
        let config = PresigningConfig::expires_in(ttl).map_err(|e| io(&what, e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .presigned(config)
            .await
            .map_err(|e| classify(&what, e).into_error(&what))?;
        Ok(Some(req.uri().to_owned()))
    }
}

/// The answer to a create-only PUT (`If-None-Match: *`): a tarball is written once.
fn created<T, E>(what: &str, key: &Key, sent: Result<T, aws_sdk_s3::error::SdkError<E>>) -> Result<(), StorageError>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(()),
        Err(e) => match classify(what, e) {
            Failure::PreconditionFailed => Err(StorageError::AlreadyExists(key.as_str().to_owned())),
            f => Err(f.into_error(what)),
        },
    }
}
