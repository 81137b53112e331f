//! Bearer tokens for callers that are not AWS-shaped: JWTs the control plane issues for
//! a principal, signed with a rotating Ed25519 key (`kid` in the header; public keys at
//! `/admin/v1/jwks.json`).
//!
//! Verification accepts one algorithm (EdDSA), only keys the catalog lists, and checks
//! `exp`, `nbf`, `iss`, `aud`, that the subject belongs to the tenant the token names,
//! that subject and tenant are still enabled, and that the token id is not revoked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use catalog::identity::{Principal, PrincipalKind};
use catalog::rootkey::RootKey;
use catalog::tokens::TOKEN_TTL_MS_MAX;
use catalog::{Catalog, CatalogError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::clock::SharedClock;
use protocol::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;

pub const ISSUER: &str = "sluice";
pub const AUDIENCE: &str = "sluice";
/// Tokens are at most this long; anything longer is refused before it is parsed.
const TOKEN_CHARS_MAX: usize = 4_096;
/// How long the verifier trusts its list of keys before reading it again (a key it
/// has not seen makes it read at once).
const KEYS_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The principal's ARN.
    pub sub: String,
    /// The principal's account.
    pub tenant: String,
    /// The principal's catalog id: a principal deleted and made again under the same
    /// name is another principal, and its predecessor's tokens do not pass for it.
    pub pid: i64,
    /// The token id, for revocation.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// A token as issued.
pub struct IssuedToken {
    pub token: String,
    pub token_id: String,
    pub expires_at_ms: i64,
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::UnrecognizedClient,
        "The security token included in the request is invalid.",
    )
}

fn internal(e: CatalogError) -> ApiError {
    edge::wire_error(e)
}

/// `arn:aws:iam::<account>:<kind>/<name>` back into its parts.
fn parse_principal_arn(arn: &str) -> Option<(&str, PrincipalKind, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, rest) = rest.split_once(':')?;
    let (kind, name) = rest.split_once('/')?;
    Some((account, PrincipalKind::parse(kind)?, name))
}

pub struct TokenService {
    catalog: Catalog,
    root: Arc<RootKey>,
    keys: Mutex<(HashMap<String, DecodingKey>, Option<Instant>)>,
    clock: SharedClock,
}

impl TokenService {
    pub fn new(catalog: Catalog, root: Arc<RootKey>, clock: SharedClock) -> TokenService {
        TokenService {
            catalog,
            root,
            keys: Mutex::new((HashMap::new(), None)),
            clock,
        }
    }

    /// Issues a token for `principal` valid for `ttl_ms` (1 s ..= 12 h).
    pub async fn issue(&self, principal: &Principal, ttl_ms: i64) -> Result<IssuedToken, ApiError> {
        if !(1_000..=TOKEN_TTL_MS_MAX).contains(&ttl_ms) {
            return Err(ApiError::invalid_argument(format!(
                "A token lives 1 to {} seconds.",
                TOKEN_TTL_MS_MAX / 1000
            )));
        }
        let now = self.clock.now_ms();
        let mut id = [0u8; 16];
        aws_lc_rs::rand::fill(&mut id).expect("system randomness");
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: principal.arn(),
            tenant: principal.account_id.clone(),
            pid: principal.id,
            jti: URL_SAFE_NO_PAD.encode(id),
            iat: now / 1000,
            nbf: now / 1000,
            exp: (now + ttl_ms) / 1000,
        };
        let token = self.sign(&claims, now).await?;
        Ok(IssuedToken {
            token,
            token_id: claims.jti,
            expires_at_ms: claims.exp * 1000,
        })
    }

    /// Signs any claims with the current key (tests forge bad claims with it).
    pub async fn sign(&self, claims: &Claims, now_ms: i64) -> Result<String, ApiError> {
        let key = self
            .catalog
            .token_signing_key(&self.root, now_ms)
            .await
            .map_err(internal)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&key.pkcs8)).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            ApiError::internal()
        })
    }

    /// The public keys, as a JSON Web Key Set.
    pub async fn jwks(&self) -> Result<serde_json::Value, ApiError> {
        let keys = self
            .catalog
            .token_verifying_keys(self.clock.now_ms())
            .await
            .map_err(internal)?;
        Ok(serde_json::json!({
            "keys": keys.iter().map(|k| serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "use": "sig",
                "alg": "EdDSA",
                "kid": k.kid,
                "x": URL_SAFE_NO_PAD.encode(&k.public_key),
            })).collect::<Vec<_>>()
        }))
    }

    async fn decoding_key(&self, kid: &str) -> Result<Option<DecodingKey>, ApiError> {
        {
            let keys = self.keys.lock().expect("token keys lock");
            if let Some(key) = keys.0.get(kid)
                && keys.1.is_some_and(|at| at.elapsed() < KEYS_TTL)
            {
                return Ok(Some(key.clone()));
            }
        }
        let listed = self
            .catalog
            .token_verifying_keys(self.clock.now_ms())
            .await
            .map_err(internal)?;
        let map: HashMap<String, DecodingKey> = listed
            .into_iter()
            .map(|k| (k.kid, DecodingKey::from_ed_der(&k.public_key)))
            .collect();
        let found = map.get(kid).cloned();
        *self.keys.lock().expect("token keys lock") = (map, Some(Instant::now()));
        Ok(found)
    }

    /// Verifies a bearer token and returns its caller.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        if token.is_empty() || token.len() > TOKEN_CHARS_MAX {
            return Err(invalid_token());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid_token())?;
        // INVARIANT: one algorithm only; `none`, HMAC and RSA tokens never reach a key.
        if header.alg != Algorithm::EdDSA {
            return Err(invalid_token());
        }
        let kid = header.kid.ok_or_else(invalid_token)?;
        let key = self.decoding_key(&kid).await?.ok_or_else(invalid_token)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 2;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(
                    ErrorCode::ExpiredToken,
                    "The security token included in the request is expired",
                ),
                _ => invalid_token(),
            })?
            .claims;
        let (account, kind, name) = parse_principal_arn(&claims.sub).ok_or_else(invalid_token)?;
        // The token names its tenant, and its subject must belong to it.
        if account != claims.tenant {
            return Err(invalid_token());
        }
        let principal = match self.catalog.principal(account, kind, name).await {
            Ok(p) => p,
            Err(CatalogError::Refused(_)) => return Err(invalid_token()),
            Err(e) => return Err(internal(e)),
        };
        let tenant = match self.catalog.tenant(account).await {
            Ok(t) => t,
            Err(CatalogError::Refused(_)) => return Err(invalid_token()),
            Err(e) => return Err(internal(e)),
        };
        if principal.disabled || tenant.disabled || principal.id != claims.pid {
            return Err(invalid_token());
        }
        if self
            .catalog
            .is_token_revoked(&principal.account_id, &claims.jti)
            .await
            .map_err(internal)?
        {
            return Err(invalid_token());
        }
        Ok(Caller {
            account_id: principal.account_id.clone(),
            principal_arn: principal.arn(),
            access_key_id: format!("token:{}", claims.jti),
            source_ip: None,
            tls_version: None,
            request_id: String::new(),
        })
    }

    /// Revokes a token of `account_id` until it would expire.
    pub async fn revoke(&self, account_id: &str, token_id: &str) -> Result<(), ApiError> {
        if token_id.is_empty() || token_id.len() > 64 {
            return Err(ApiError::invalid_argument(
                "A token id is 1 to 64 characters.",
            ));
        }
        let now = self.clock.now_ms();
        self.catalog
            .revoke_token(token_id, account_id, now + TOKEN_TTL_MS_MAX, now)
            .await
            .map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn principal_arns_parse() {
        let (a, k, n) = super::parse_principal_arn("arn:aws:iam::123456789012:user/alice").unwrap();
        assert_eq!(
            (a, k, n),
            ("123456789012", super::PrincipalKind::User, "alice")
        );
        assert!(super::parse_principal_arn("arn:aws:iam::1:group/x").is_none());
        assert!(super::parse_principal_arn("nope").is_none());
    }
}
