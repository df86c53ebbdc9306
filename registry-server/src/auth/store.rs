//! Users who registered and all tokens, kept in the storage backend (not in process memory) so
//! every replica sees the same ones and registration works with a read-only htpasswd file.

use crate::storage::document;
use crate::storage::{Key, Storage, StorageError, StorageKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    pub name: String,
    /// bcrypt
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    /// SHA-256 (hex) of the token: the only form in which a token is stored.
    pub key: String,
    pub user: String,
    /// The first characters of the token, so a user can recognise it in `npm token list`.
    pub prefix: String,
    #[serde(default)]
    pub name: Option<String>,
    pub readonly: bool,
    #[serde(default)]
    pub cidr_whitelist: Vec<String>,
    pub created: String,
    #[serde(default)]
    pub expires: Option<String>,
    /// A token exchanged by OIDC trusted publishing: it publishes this one package, nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<super::identity::PublishGrant>,
}

fn user_key(name: &str) -> Result<Key, StorageError> {
    StorageKey::User { name }.key()
}

fn token_key(hash: &str) -> Result<Key, StorageError> {
    StorageKey::Token { hash }.key()
}

async fn read<T: DeserializeOwned>(storage: &dyn Storage, key: &Key) -> Result<Option<T>, StorageError> {
    Ok(document::read(storage, key).await?.map(|d| d.value))
}

async fn create<T: Serialize>(storage: &dyn Storage, key: &Key, value: &T) -> Result<(), StorageError> {
    document::insert(storage, key, value).await.map(|_| ())
}

pub async fn get_user(storage: &dyn Storage, name: &str) -> Result<Option<UserRecord>, StorageError> {
    read(storage, &user_key(name)?).await
}

/// Creates a user; an error the HTTP layer answers 409 when the name is taken (by any replica).
pub async fn create_user(storage: &dyn Storage, user: &UserRecord) -> Result<(), StorageError> {
    create(storage, &user_key(&user.name)?, user).await
}

/// Marks `name` as held, once and for good; false when it already was.
pub async fn hold_name(storage: &dyn Storage, name: &str, by: &str) -> Result<bool, StorageError> {
    let key = StorageKey::UserName { name }.key()?;
    Ok(document::create(storage, &key, &serde_json::json!({ "by": by }))
        .await?
        .is_some())
}

/// Gives back a name [`hold_name`] just took for a registration that then failed.
pub async fn release_name(storage: &dyn Storage, name: &str) -> Result<(), StorageError> {
    let key = StorageKey::UserName { name }.key()?;
    if let Some(revision) = storage.revision(&key).await? {
        storage.delete(&key, &revision).await?;
    }
    Ok(())
}

/// The names of registered users, from their records.
pub async fn registered_names(storage: &dyn Storage) -> Result<Vec<String>, StorageError> {
    Ok(storage
        .list(&StorageKey::Users.key()?)
        .await?
        .into_iter()
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect())
}

/// The names already marked as held.
pub async fn held_names(storage: &dyn Storage) -> Result<Vec<String>, StorageError> {
    Ok(storage
        .list(&StorageKey::UserNames.key()?)
        .await?
        .into_iter()
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect())
}

pub async fn count_users(storage: &dyn Storage) -> Result<usize, StorageError> {
    Ok(storage.list(&StorageKey::Users.key()?).await?.len())
}

pub async fn get_token(storage: &dyn Storage, hash: &str) -> Result<Option<TokenRecord>, StorageError> {
    read(storage, &token_key(hash)?).await
}

pub async fn create_token(storage: &dyn Storage, token: &TokenRecord) -> Result<(), StorageError> {
    create(storage, &token_key(&token.key)?, token).await
}

pub async fn delete_token(storage: &dyn Storage, hash: &str) -> Result<(), StorageError> {
    document::remove(storage, &token_key(hash)?).await
}

pub async fn tokens_of(storage: &dyn Storage, user: &str) -> Result<Vec<TokenRecord>, StorageError> {
    let mut out = Vec::new();
    for file in storage.list(&StorageKey::Tokens.key()?).await? {
        let Some(hash) = file.strip_suffix(".json") else {
            continue;
        };
        if let Some(t) = get_token(storage, hash).await?
            && t.user == user
        {
            out.push(t);
        }
    }
    out.sort_by(|a, b| a.created.cmp(&b.created));
    Ok(out)
}
