//! Authentication: AWS Signature Version 4 on every request.
//!
//! `sigv4` parses and canonicalises; this module checks the scope and the clock, finds
//! the caller behind the access key, derives and caches the signing key per (key,
//! date, region, service), and compares signatures in constant time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use catalog::Catalog;
use catalog::identity::Principal;
use catalog::rootkey::RootKey;
pub use edge::Caller;
use protocol::clock::SharedClock;
use protocol::{ApiError, ErrorCode};

use protocol::sigv4;

/// Refuses, before anything else is read, a request that carries no signature at all:
/// neither an `Authorization` header nor a presigned query.
pub fn require_credentials(parts: &http::request::Parts) -> Result<(), ApiError> {
    let presigned = parts
        .uri
        .query()
        .is_some_and(|q| q.contains("X-Amz-Signature="));
    if parts.headers.contains_key(http::header::AUTHORIZATION) || presigned {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        ))
    }
}

/// The widest clock skew allowed (AWS's).
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(15 * 60);
/// A cached signing key is trusted this long, so a disabled key stops working within it
/// on every process (at once on the process that disabled it).
const SIGNING_KEY_TTL: Duration = Duration::from_secs(60);
const SIGNING_KEY_CACHE_MAX: usize = 10_000;

/// (access key, date, region, service)
type CacheKey = (String, String, String, String);
/// The derived signing key, whose it is, and when it was derived.
type CacheEntry = ([u8; 32], Caller, Instant);

pub struct Authenticator {
    catalog: Catalog,
    root: Arc<RootKey>,
    region: String,
    skew: chrono::Duration,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
    /// Signing times are checked against it.
    clock: SharedClock,
}

impl Authenticator {
    pub fn new(
        catalog: Catalog,
        root: Arc<RootKey>,
        region: String,
        skew: Duration,
        clock: SharedClock,
    ) -> Self {
        Authenticator {
            catalog,
            root,
            region,
            skew: chrono::Duration::from_std(skew.min(CLOCK_SKEW_MAX)).expect("at most 15 minutes"),
            cache: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Forgets every cached signing key (after a key, principal or tenant changed).
    pub fn forget_all(&self) {
        self.cache.lock().expect("auth cache lock").clear();
    }

    /// Verifies the request's signature for `service` and returns its caller.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        service: &str,
    ) -> Result<Caller, ApiError> {
        let now = protocol::clock::utc(self.clock.now_ms());
        self.authenticate_at(parts, body, service, now).await
    }

    /// `authenticate` as if the server's clock said `now` (tests replay signed requests).
    pub async fn authenticate_at(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        service: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Caller, ApiError> {
        let prepared = self.prepare_at(parts, service, now).await?;
        self.verify(prepared, parts, body).await
    }

    /// What can be checked before the body is read: the credential parses, its scope
    /// and signing time are this server's, and its access key exists and is enabled.
    /// A request that fails here holds no body budget.
    pub async fn prepare(
        &self,
        parts: &http::request::Parts,
        service: &str,
    ) -> Result<Prepared, ApiError> {
        let now = protocol::clock::utc(self.clock.now_ms());
        self.prepare_at(parts, service, now).await
    }

    async fn prepare_at(
        &self,
        parts: &http::request::Parts,
        service: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Prepared, ApiError> {
        let credential = sigv4::parse_credential(parts)?;
        // The operation is named by X-Amz-Target: unsigned, it could be swapped for
        // another on the way (every AWS SDK signs it).
        if parts.headers.contains_key("x-amz-target")
            && !credential
                .signed_headers
                .iter()
                .any(|h| h == "x-amz-target")
        {
            return Err(ApiError::new(
                ErrorCode::IncompleteSignature,
                "The X-Amz-Target header must be signed: list it in SignedHeaders.",
            ));
        }
        sigv4::check_scope_and_time(&credential, &self.region, service, now, self.skew)?;
        let (key, caller) = self.signing_key(&credential).await?;
        Ok(Prepared {
            credential,
            key,
            caller,
        })
    }

    /// Checks the signature over the whole request, body included.
    pub async fn verify(
        &self,
        prepared: Prepared,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Caller, ApiError> {
        let Prepared {
            credential,
            key,
            caller,
        } = prepared;
        // The payload hash is the costly step for large bodies; it runs only for
        // requests whose key exists.
        let payload_hash = if body.len() > 64 * 1024 {
            tokio::task::spawn_blocking(move || sigv4::sha256_hex(&body))
                .await
                .map_err(|_| ApiError::internal())?
        } else {
            sigv4::sha256_hex(&body)
        };
        let canonical = sigv4::canonical_request(parts, &credential, &payload_hash)?;
        let string_to_sign = sigv4::string_to_sign(&credential, &canonical);
        sigv4::verify(&key, &string_to_sign, &credential.signature)?;
        Ok(caller)
    }

    async fn signing_key(
        &self,
        credential: &sigv4::Credential,
    ) -> Result<([u8; 32], Caller), ApiError> {
        let cache_key: CacheKey = (
            credential.access_key_id.clone(),
            credential.date.clone(),
            credential.region.clone(),
            credential.service.clone(),
        );
        if let Some((key, caller, at)) = self.cache.lock().expect("auth cache lock").get(&cache_key)
            && at.elapsed() < SIGNING_KEY_TTL
        {
            return Ok((*key, caller.clone()));
        }
        let resolved = self
            .catalog
            .resolve_access_key(&self.root, &credential.access_key_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "access key lookup failed");
                ApiError::internal()
            })?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnrecognizedClient,
                    "The security token included in the request is invalid.",
                )
            })?;
        let key = sigv4::signing_key(
            resolved.secret.as_str(),
            &credential.date,
            &credential.region,
            &credential.service,
        );
        let caller = caller_of(&resolved.principal, &credential.access_key_id);
        let mut cache = self.cache.lock().expect("auth cache lock");
        if cache.len() >= SIGNING_KEY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(cache_key, (key, caller.clone(), Instant::now()));
        Ok((key, caller))
    }
}

impl Authenticator {
    /// HTTP Basic authentication with an access key (id as the user, secret as the
    /// password), which Prometheus can send from a file: a scrape credential that does
    /// not expire, is rotated and disabled like any key, and is limited by Cedar to what
    /// its principal may do. The intake accepts it for `GET /metrics` only.
    pub async fn basic(&self, access_key_id: &str, secret: &str) -> Result<Caller, ApiError> {
        let refused = || {
            ApiError::new(
                ErrorCode::UnrecognizedClient,
                "The security token included in the request is invalid.",
            )
        };
        let resolved = self
            .catalog
            .resolve_access_key(&self.root, access_key_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "access key lookup failed");
                ApiError::internal()
            })?
            .ok_or_else(refused)?;
        aws_lc_rs::constant_time::verify_slices_are_equal(
            resolved.secret.as_str().as_bytes(),
            secret.as_bytes(),
        )
        .map_err(|_| refused())?;
        Ok(caller_of(&resolved.principal, access_key_id))
    }
}

/// A request whose credential checked out before its body was read; `verify` ends it.
pub struct Prepared {
    credential: sigv4::Credential,
    key: [u8; 32],
    caller: Caller,
}

impl Prepared {
    /// Whose access key signed the request (not yet proven: the signature is not checked).
    pub fn claimed(&self) -> &Caller {
        &self.caller
    }
}

fn caller_of(principal: &Principal, access_key_id: &str) -> Caller {
    Caller {
        account_id: principal.account_id.clone(),
        principal_arn: principal.arn(),
        access_key_id: access_key_id.to_string(),
        source_ip: None,
        tls_version: None,
        request_id: String::new(),
    }
}
