//! The uplinks' signing keys, served beside ours: proxied versions keep their upstream
//! `dist.signatures`, and npm looks their key ids up in our `/-/npm/v1/keys`. Each uplink's
//! `/-/npm/v1/keys` is fetched once, kept in storage (so replicas and restarts share it, and an
//! uplink that is down still has its keys served), and fetched again after [`FRESH_FOR`], or
//! sooner when a proxied version names a key id it did not list (before that version is served),
//! at most once per [`UNKNOWN_KEY_AFTER`]. An uplink that answers 404 or 400 has no keys.

use crate::storage::{Storage, StorageKey, document};
use crate::uplink::Uplinks;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const FRESH_FOR: Duration = Duration::from_secs(3600);
pub const RETRY_AFTER: Duration = Duration::from_secs(60);
/// How soon after a fetch an unknown key id fetches again: a rotation upstream shows at once, and
/// an uplink whose versions name keys it never lists costs one small request per this at most.
pub const UNKNOWN_KEY_AFTER: Duration = Duration::from_secs(5);
/// The largest keys document accepted from an uplink.
const KEYS_LIMIT: usize = 256 * 1024;
/// The most keys kept of one uplink.
const MAX_KEYS: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    keys: Vec<Value>,
}

#[derive(Debug, Clone)]
struct Entry {
    keys: Vec<Value>,
    /// When these keys were fetched from the uplink by this process (`None`: read from storage).
    fetched: Option<Instant>,
    /// When a fetch was last tried.
    attempted: Option<Instant>,
}

impl Entry {
    fn due(&self, now: Instant) -> bool {
        let stale = self.fetched.is_none_or(|f| now.duration_since(f) >= FRESH_FOR);
        stale && self.attempted.is_none_or(|a| now.duration_since(a) >= RETRY_AFTER)
    }

    fn knows(&self, keyid: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.get("keyid").and_then(Value::as_str) == Some(keyid))
    }
}

pub struct UplinkKeys {
    uplinks: Arc<Uplinks>,
    storage: Arc<dyn Storage>,
    entries: Mutex<HashMap<String, Entry>>,
    /// One fetch at a time (they are rare, small, and for a handful of uplinks).
    fetching: tokio::sync::Mutex<()>,
}

/// The keys of an uplink's `/-/npm/v1/keys` answer that have what npm needs (`keyid`, `key`).
fn usable_keys(body: &[u8]) -> Option<Vec<Value>> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let keys = doc.get("keys")?.as_array()?;
    Some(
        keys.iter()
            .filter(|k| k.get("keyid").is_some_and(Value::is_string) && k.get("key").is_some_and(Value::is_string))
            .take(MAX_KEYS)
            .cloned()
            .collect(),
    )
}

impl UplinkKeys {
    pub fn new(uplinks: Arc<Uplinks>, storage: Arc<dyn Storage>) -> Arc<Self> {
        Arc::new(UplinkKeys {
            uplinks,
            storage,
            entries: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn entry(&self, uplink: &str) -> Option<Entry> {
        self.entries.lock().expect("not poisoned").get(uplink).cloned()
    }

    async fn stored(&self, uplink: &str) -> Option<Vec<Value>> {
        let key = StorageKey::UplinkKeys { uplink }.key().ok()?;
        let v = self.storage.read(&key).await.ok()??;
        serde_json::from_slice::<Stored>(&v.bytes).ok().map(|s| s.keys)
    }

    /// Fetches `uplink`'s keys now (unless another call just did), keeping what it had when the
    /// uplink fails.
    async fn fetch(&self, uplink: &str) {
        let _one = self.fetching.lock().await;
        let now = Instant::now();
        if self.entry(uplink).is_some_and(|e| !e.due(now)) {
            return;
        }
        let Some(client) = self.uplinks.client(uplink) else {
            return;
        };
        let fetched = client.get_small("-/npm/v1/keys", KEYS_LIMIT).await;
        let keys = match fetched {
            Ok(None) => Some(Vec::new()),
            Ok(Some(body)) => {
                let keys = usable_keys(&body);
                if keys.is_none() {
                    tracing::warn!(uplink, "the uplink's /-/npm/v1/keys is not a keys document; ignored");
                }
                keys
            }
            Err(e) => {
                tracing::warn!(uplink, error = %e, "the uplink's signing keys could not be fetched");
                None
            }
        };
        let previous = match self.entry(uplink) {
            Some(e) => Some(e.keys),
            None => self.stored(uplink).await,
        };
        let entry = match keys {
            Some(keys) => {
                if let Ok(key) = (StorageKey::UplinkKeys { uplink }).key() {
                    let doc = serde_json::to_vec(&Stored { keys: keys.clone() }).expect("keys serialize");
                    // Whoever writes last wins: every copy is a fresh answer of the uplink.
                    if let Err(e) = document::overwrite(self.storage.as_ref(), &key, Bytes::from(doc)).await {
                        tracing::debug!(uplink, error = %e, "uplink keys not stored");
                    }
                }
                Entry {
                    keys,
                    fetched: Some(now),
                    attempted: Some(now),
                }
            }
            None => Entry {
                keys: previous.unwrap_or_default(),
                fetched: None,
                attempted: Some(now),
            },
        };
        self.entries
            .lock()
            .expect("not poisoned")
            .insert(uplink.to_owned(), entry);
    }

    /// Every uplink's keys. An uplink never asked before is asked now; stale keys are served
    /// while they are fetched again in the background.
    pub async fn keys(self: &Arc<Self>) -> Vec<Value> {
        let mut out = Vec::new();
        let names: Vec<String> = self.uplinks.clients().map(|c| c.name.clone()).collect();
        for uplink in names {
            let now = Instant::now();
            let entry = match self.entry(&uplink) {
                Some(e) => Some(e),
                None => self.stored(&uplink).await.map(|keys| {
                    let e = Entry {
                        keys,
                        fetched: None,
                        attempted: None,
                    };
                    self.entries
                        .lock()
                        .expect("not poisoned")
                        .insert(uplink.clone(), e.clone());
                    e
                }),
            };
            match entry {
                None => {
                    self.fetch(&uplink).await;
                }
                Some(e) if e.due(now) => {
                    let me = self.clone();
                    let name = uplink.clone();
                    tokio::spawn(async move { me.fetch(&name).await });
                }
                Some(_) => {}
            }
            if let Some(e) = self.entry(&uplink) {
                out.extend(e.keys);
            }
        }
        out
    }

    /// Proxied versions of `uplink` are signed with `keyids`: when one is not among the keys it
    /// listed (a rotation upstream), they are fetched again now, within the retry bound, so the
    /// version verifies as soon as it is served. An uplink whose keys were never asked for is
    /// asked when they are.
    pub async fn saw_keyids(&self, uplink: &str, keyids: &std::collections::BTreeSet<String>) {
        if keyids.is_empty() {
            return;
        }
        let entry = match self.entry(uplink) {
            Some(e) => e,
            None => match self.stored(uplink).await {
                Some(keys) => Entry {
                    keys,
                    fetched: None,
                    attempted: None,
                },
                None => return,
            },
        };
        let unknown = keyids.iter().any(|k| !entry.knows(k));
        let retry = entry.attempted.is_none_or(|a| a.elapsed() >= UNKNOWN_KEY_AFTER);
        if !(unknown && retry) {
            return;
        }
        // An unknown key id makes even fresh (or just tried) keys due.
        {
            let mut entries = self.entries.lock().expect("not poisoned");
            let e = entries.entry(uplink.to_owned()).or_insert(entry);
            (e.fetched, e.attempted) = (None, None);
        }
        self.fetch(uplink).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_npm_can_use_are_kept() {
        let body = br#"{"keys": [{"keyid": "SHA256:a", "key": "AAAA", "expires": null}, {"keyid": 3}, {"key": "x"}]}"#;
        let keys = usable_keys(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["keyid"], "SHA256:a");
        assert!(usable_keys(b"[]").is_none());
        assert!(usable_keys(b"not json").is_none());
    }

    #[test]
    fn entries_are_due_when_stale_and_not_just_tried() {
        let now = Instant::now();
        let fresh = Entry {
            keys: vec![],
            fetched: Some(now),
            attempted: Some(now),
        };
        assert!(!fresh.due(now));
        let from_storage = Entry {
            keys: vec![],
            fetched: None,
            attempted: None,
        };
        assert!(from_storage.due(now));
        let just_failed = Entry {
            keys: vec![],
            fetched: None,
            attempted: Some(now),
        };
        assert!(!just_failed.due(now));
        assert!(just_failed.due(now + RETRY_AFTER));
    }
}
