//! Authentication: AWS Signature Version 4 on every request.
//!
//! The canonical request, string to sign and constant-time comparison are
//! `scratchstack-aws-signature`'s; this module finds the caller behind the access key,
//! derives and caches the signing key per (key, date, region, service), bounds the
//! clock skew, and maps failures to the error types Kinesis answers with.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use control_plane::Catalog;
use control_plane::identity::Principal;
use control_plane::rootkey::RootKey;
use protocol::{ApiError, ErrorCode};
use scratchstack_aws_signature::{
    GetSigningKeyRequest, GetSigningKeyResponse, KSecretKey, KSigningKey,
    NO_ADDITIONAL_SIGNED_HEADERS, SignatureError, SignatureOptions, service_for_signing_key_fn,
    sigv4_validate_request,
};

/// The error type scratchstack's signing-key services use (tower's `BoxError`).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who made a request, once its signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub principal_arn: String,
    pub access_key_id: String,
}

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

/// The widest skew scratchstack allows; a deployment may only narrow it.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(15 * 60);
/// A cached signing key is trusted this long, so a disabled key stops working within it.
const SIGNING_KEY_TTL: Duration = Duration::from_secs(60);
const SIGNING_KEY_CACHE_MAX: usize = 10_000;

type CacheKey = (String, NaiveDate, String, String);

pub struct Authenticator {
    catalog: Catalog,
    root: Arc<RootKey>,
    region: String,
    skew: Duration,
    cache: Mutex<HashMap<CacheKey, (KSigningKey, Caller, Instant)>>,
}

impl Authenticator {
    pub fn new(catalog: Catalog, root: Arc<RootKey>, region: String, skew: Duration) -> Self {
        Authenticator {
            catalog,
            root,
            region,
            skew: skew.min(CLOCK_SKEW_MAX),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached signing key (after a key, principal or tenant changed).
    pub fn forget_all(&self) {
        self.cache.lock().expect("auth cache lock").clear();
    }

    /// Verifies the request's signature for `service` and returns its caller.
    pub async fn authenticate(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body: Bytes,
        service: &str,
    ) -> Result<Caller, ApiError> {
        self.authenticate_at(parts, body, service, Utc::now()).await
    }

    /// `authenticate` as if the server's clock said `now` (tests replay signed requests).
    pub async fn authenticate_at(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body: Bytes,
        service: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Caller, ApiError> {
        require_credentials(parts)?;
        let mut request = http::Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version)
            .body(body)
            .map_err(|_| ApiError::internal())?;
        *request.headers_mut() = parts.headers.clone();
        if !request.headers().contains_key(http::header::HOST) {
            // HTTP/2 carries the host in the :authority pseudo-header.
            if let Some(authority) = parts
                .uri
                .authority()
                .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
            {
                request.headers_mut().insert(http::header::HOST, authority);
            }
        }

        let found: Arc<Mutex<Option<Caller>>> = Arc::default();
        // Bound to a variable first so its kind is inferred from its body (Fn), not
        // from `service_for_signing_key_fn`'s `FnOnce` bound: the service needs FnMut.
        let this = self.clone();
        let slot = found.clone();
        let lookup_fn = move |req: GetSigningKeyRequest| {
            let this = this.clone();
            let slot = slot.clone();
            async move {
                let (key, caller) = this.signing_key(&req).await?;
                *slot.lock().expect("caller slot") = Some(caller);
                GetSigningKeyResponse::builder()
                    .signing_key(key)
                    .build()
                    .map_err(|e| Box::new(e) as BoxError)
            }
        };
        let mut lookup = service_for_signing_key_fn(lookup_fn);
        let result = sigv4_validate_request(
            request,
            &self.region,
            service,
            &mut lookup,
            now,
            &NO_ADDITIONAL_SIGNED_HEADERS,
            SignatureOptions::default(),
        )
        .await;
        if let Err(e) = result {
            return Err(map_error(e));
        }
        self.check_skew(parts, now)?;
        found
            .lock()
            .expect("caller slot")
            .take()
            .ok_or_else(ApiError::internal)
    }

    /// scratchstack bounds the skew at 15 minutes; a narrower configured bound is
    /// checked here, after the signature.
    fn check_skew(
        &self,
        parts: &http::request::Parts,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if self.skew >= CLOCK_SKEW_MAX {
            return Ok(());
        }
        let stamp = parts
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                parts.uri.query().and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("X-Amz-Date=").map(str::to_string))
                })
            });
        let Some(stamp) = stamp else { return Ok(()) };
        let Ok(at) = chrono::NaiveDateTime::parse_from_str(&stamp, "%Y%m%dT%H%M%SZ") else {
            return Ok(());
        };
        let at = at.and_utc();
        let skew = chrono::Duration::from_std(self.skew).unwrap_or(chrono::Duration::minutes(15));
        if at + skew < now {
            return Err(ApiError::new(
                ErrorCode::InvalidSignature,
                format!(
                    "Signature expired: {stamp} is now earlier than {} ({} - {} min.)",
                    (now - skew).format("%Y%m%dT%H%M%SZ"),
                    now.format("%Y%m%dT%H%M%SZ"),
                    skew.num_minutes()
                ),
            ));
        }
        if at - skew > now {
            return Err(ApiError::new(
                ErrorCode::InvalidSignature,
                format!(
                    "Signature not yet current: {stamp} is still later than {} ({} + {} min.)",
                    (now + skew).format("%Y%m%dT%H%M%SZ"),
                    now.format("%Y%m%dT%H%M%SZ"),
                    skew.num_minutes()
                ),
            ));
        }
        Ok(())
    }

    async fn signing_key(
        &self,
        req: &GetSigningKeyRequest,
    ) -> Result<(KSigningKey, Caller), BoxError> {
        let cache_key: CacheKey = (
            req.access_key().to_string(),
            req.request_date(),
            req.region().to_string(),
            req.service().to_string(),
        );
        if let Some((key, caller, at)) = self.cache.lock().expect("auth cache lock").get(&cache_key)
            && at.elapsed() < SIGNING_KEY_TTL
        {
            return Ok((*key, caller.clone()));
        }
        let resolved = self
            .catalog
            .resolve_access_key(&self.root, req.access_key())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "access key lookup failed");
                Box::new(SignatureError::InternalServiceError("access key lookup failed".into()))
                    as BoxError
            })?;
        let Some(resolved) = resolved else {
            return Err(Box::new(SignatureError::InvalidClientTokenId(
                "The security token included in the request is invalid.".into(),
            )));
        };
        let secret = KSecretKey::from_str(resolved.secret.as_str()).map_err(|_| {
            Box::new(SignatureError::InternalServiceError(
                "unusable secret".into(),
            ))
        })?;
        let key = secret.to_ksigning(req.request_date(), req.region(), req.service());
        let caller = caller_of(&resolved.principal, req.access_key());
        let mut cache = self.cache.lock().expect("auth cache lock");
        if cache.len() >= SIGNING_KEY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(cache_key, (key, caller.clone(), Instant::now()));
        Ok((key, caller))
    }
}

fn caller_of(principal: &Principal, access_key_id: &str) -> Caller {
    Caller {
        account_id: principal.account_id.clone(),
        principal_arn: principal.arn(),
        access_key_id: access_key_id.to_string(),
    }
}

/// Kinesis's names for each failure. `SignatureError` is `#[non_exhaustive]`, so a
/// variant added upstream lands in the last arm: refused as an invalid signature.
fn map_error(error: BoxError) -> ApiError {
    let error = match error.downcast::<SignatureError>() {
        Ok(e) => *e,
        Err(other) => {
            tracing::error!(error = %other, "signature verification failed internally");
            return ApiError::internal();
        }
    };
    let message = error.to_string();
    match error {
        SignatureError::MissingAuthenticationToken(_) => ApiError::new(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        ),
        SignatureError::IncompleteSignature(_)
        | SignatureError::InvalidBodyEncoding(_)
        | SignatureError::InvalidContentType(_)
        | SignatureError::InvalidRequestMethod(_)
        | SignatureError::InvalidURIPath(_)
        | SignatureError::MalformedQueryString(_) => {
            ApiError::new(ErrorCode::IncompleteSignature, message)
        }
        SignatureError::InvalidClientTokenId(_) | SignatureError::ExpiredToken(_) => ApiError::new(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        ),
        SignatureError::SignatureDoesNotMatch(_) => ApiError::new(
            ErrorCode::InvalidSignature,
            if message.is_empty() {
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_string()
            } else {
                message
            },
        ),
        SignatureError::IO(_) | SignatureError::InternalServiceError(_) => {
            tracing::error!(error = %message, "signature verification failed internally");
            ApiError::internal()
        }
        _ => ApiError::new(ErrorCode::InvalidSignature, message),
    }
}
