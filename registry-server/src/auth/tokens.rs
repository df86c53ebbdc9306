//! Bearer tokens: issued at login and by OIDC trusted publishing, checked on every request
//! (ours, then Verdaccio's), listed and revoked.

use super::*;

impl Auth {
    pub async fn issue_token(&self, user: &str, opts: TokenOptions) -> Result<(String, TokenRecord), AuthError> {
        for c in &opts.cidr_whitelist {
            c.parse::<ipnet::IpNet>()
                .map_err(|_| AuthError::InvalidCidr(c.clone()))?;
        }
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let record = TokenRecord {
            key: sha256_hex(&token),
            user: user.to_owned(),
            prefix: token[..TOKEN_PREFIX.len() + 4].to_owned(),
            name: opts.name,
            readonly: opts.readonly,
            cidr_whitelist: opts.cidr_whitelist,
            created: now(),
            expires: opts
                .expires_days
                .map(|d| (Utc::now() + ChronoDuration::days(d.into())).to_rfc3339_opts(SecondsFormat::Millis, true)),
            grant: None,
        };
        store::create_token(self.storage.as_ref(), &record).await?;
        Ok((token, record))
    }

    /// OIDC trusted publishing: verifies a CI job's `id_token` against the trusted publishers of
    /// `package` (`audience`: `npm:<this registry's host>`) and gives a token that may publish
    /// `package`, and nothing else, for [`GRANT_TTL`]. Kept in the token store like every token,
    /// so every replica accepts it.
    pub async fn exchange_id_token(
        &self,
        package: &str,
        publishers: &[oidc::TrustedPublisher],
        id_token: &str,
        audience: &str,
    ) -> Result<(String, PublishGrant), oidc::OidcError> {
        let verified = self.oidc.verify(id_token, package, publishers, audience).await?;
        self.remember_id_token(&verified).await?;
        let grant = PublishGrant {
            package: package.to_owned(),
            issuer: verified.publisher.issuer.clone(),
            subject: verified.claims.get("sub").and_then(|s| s.as_str()).map(str::to_owned),
            claims: verified.publisher.matched(&verified.claims),
        };
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let record = TokenRecord {
            key: sha256_hex(&token),
            // Never a user's name (those cannot hold `:`), so no user lists or revokes it.
            user: format!("oidc:{package}"),
            prefix: token[..TOKEN_PREFIX.len() + 4].to_owned(),
            name: Some("OIDC trusted publishing".into()),
            readonly: false,
            cidr_whitelist: Vec::new(),
            created: now(),
            expires: Some((Utc::now() + GRANT_TTL).to_rfc3339_opts(SecondsFormat::Millis, true)),
            grant: Some(grant.clone()),
        };
        store::create_token(self.storage.as_ref(), &record).await?;
        Ok((token, grant))
    }

    /// Records a verified id-token (by issuer and `jti`) until its expiry, with a create that
    /// fails when the record exists: a replay, on any replica, is refused.
    async fn remember_id_token(&self, verified: &oidc::Verified) -> Result<(), oidc::OidcError> {
        let jti = verified
            .claims
            .get("jti")
            .and_then(|v| v.as_str())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| oidc::OidcError::Invalid("it has no jti claim, so a replay could not be told".into()))?;
        let exp = verified.claims.get("exp").and_then(|v| v.as_i64()).unwrap_or_default();
        let material = format!("{}\0{jti}", verified.publisher.issuer);
        // Kept past `exp` by the leeway a late replay would still be verified within.
        let ticket = expiring::Ticket::derived(exp + oidc::LEEWAY as i64, material.as_bytes());
        self.id_tokens.sweep().await;
        let first = self
            .id_tokens
            .create_new(&ticket, &serde_json::json!({ "exchanged": now() }))
            .await?;
        if first { Ok(()) } else { Err(oidc::OidcError::Replayed) }
    }

    pub async fn authenticate_bearer(&self, token: &str, addr: Option<IpAddr>) -> Result<Identity, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return self.authenticate_verdaccio(token).await;
        }
        let key = sha256_hex(token);
        let record = match self.tokens.get(&key) {
            Some(r) => r,
            None => {
                self.limiter.check_token(addr).map_err(AuthError::TooManyTokens)?;
                let Some(r) = store::get_token(self.storage.as_ref(), &key).await? else {
                    self.limiter.bad_token(addr);
                    return Err(AuthError::InvalidToken);
                };
                self.tokens.insert(key.clone(), r.clone());
                r
            }
        };
        if record.expires.as_deref().is_some_and(|e| e < now().as_str()) {
            return Err(AuthError::InvalidToken);
        }
        if !record.cidr_whitelist.is_empty() {
            let allowed = addr.is_some_and(|a| {
                record
                    .cidr_whitelist
                    .iter()
                    .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
                    .any(|net| net.contains(&a))
            });
            if !allowed {
                return Err(AuthError::AddressNotAllowed(
                    addr.map(|a| a.to_string())
                        .unwrap_or_else(|| "an unknown address".into()),
                ));
            }
        }
        if let Some(grant) = record.grant {
            return Ok(Identity::publisher(grant, key));
        }
        // A removed user's tokens stop with them (within the trust window).
        if !self.still_exists(&record.user).await? {
            return Err(AuthError::InvalidToken);
        }
        let mut who = self.identity(&record.user);
        who.readonly = record.readonly;
        who.token_key = Some(key);
        Ok(who)
    }

    /// A token Verdaccio issued: valid while its user exists and, for a legacy token, while the
    /// password inside still verifies.
    async fn authenticate_verdaccio(&self, token: &str) -> Result<Identity, AuthError> {
        let key = sha256_hex(token);
        let user = match self.verdaccio_seen.get(&key) {
            Some(seen) => seen,
            None => {
                let user = match self.verdaccio.decode(token, self.storage.as_ref()).await {
                    None => None,
                    Some(Claim::Password { user, password }) => {
                        self.password_holds(&user, &password).await?.then_some(user)
                    }
                    Some(Claim::User(user)) => self.user_exists(&user).await?.then_some(user),
                };
                self.verdaccio_seen.insert(key, user.clone());
                user
            }
        };
        match user {
            Some(u) if self.still_exists(&u).await? => Ok(self.identity(&u)),
            _ => Err(AuthError::InvalidToken),
        }
    }

    pub async fn authenticate_basic(
        &self,
        user: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<Identity, AuthError> {
        let key = sha256_hex(&format!("{user}\0{password}"));
        if self.basic.get(&key).is_none() {
            self.check_password(user, password, addr).await?;
            self.basic.insert(key, ());
        } else if !self.still_exists(user).await? {
            // Checked a moment ago, removed since: the htpasswd line or the record is gone.
            self.basic.invalidate(&key);
            return Err(AuthError::BadCredentials);
        }
        Ok(self.identity(user))
    }

    pub async fn tokens(&self, user: &str) -> Result<Vec<TokenRecord>, AuthError> {
        Ok(store::tokens_of(self.storage.as_ref(), user).await?)
    }

    /// Revokes one of `user`'s tokens by its key; false when there is no such token of theirs.
    pub async fn revoke(&self, user: &str, key: &str) -> Result<bool, AuthError> {
        if !key.chars().all(|c| c.is_ascii_hexdigit()) || key.len() != 64 {
            return Ok(false);
        }
        match store::get_token(self.storage.as_ref(), key).await? {
            Some(t) if t.user == user => {
                store::delete_token(self.storage.as_ref(), key).await?;
                self.tokens.invalidate(key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Revokes a token given in full (`npm logout`).
    pub async fn revoke_token(&self, user: &str, token: &str) -> Result<bool, AuthError> {
        self.revoke(user, &sha256_hex(token)).await
    }
}
