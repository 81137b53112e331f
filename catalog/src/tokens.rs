//! The keys that sign bearer tokens, and revoked token ids.
//!
//! Tokens are signed with Ed25519 keys kept here, private halves sealed under the root
//! key. The newest key signs; a key is replaced after `SIGNING_KEY_ROTATE_MS` and keeps
//! verifying until every token it could have signed has expired.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::rootkey::RootKey;
use crate::{Catalog, CatalogError};

/// A signing key signs new tokens for a day...
pub const SIGNING_KEY_ROTATE_MS: i64 = 24 * 3_600_000;
/// ...and tokens live at most 12 hours, so a key verifies for a day and a half.
pub const TOKEN_TTL_MS_MAX: i64 = 12 * 3_600_000;
/// Verification keys listed at most (JWKS and the verifier's view).
const VERIFY_KEYS_MAX: i64 = 64;
/// Revocations of unexpired tokens one tenant holds at most (tokens live 12 hours).
pub const REVOCATIONS_PER_TENANT_MAX: i64 = 10_000;

/// The key new tokens are signed with.
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 document of the Ed25519 key pair.
    pub pkcs8: Zeroizing<Vec<u8>>,
}

/// A key tokens are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub kid: String,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    pub verify_until_ms: i64,
}

fn new_kid() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Catalog {
    /// The current signing key, made when none is younger than the rotation period.
    pub async fn token_signing_key(
        &self,
        root: &RootKey,
        now_ms: i64,
    ) -> Result<SigningKey, CatalogError> {
        let row = sqlx::query(
            "SELECT kid, private_sealed FROM token_signing_keys WHERE created_at_ms > $1 \
             ORDER BY created_at_ms DESC LIMIT 1",
        )
        .bind(now_ms - SIGNING_KEY_ROTATE_MS)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            let kid: String = row.try_get("kid")?;
            let sealed: Vec<u8> = row.try_get("private_sealed")?;
            let pkcs8 = root
                .open(&sealed, kid.as_bytes())
                .map_err(|_| CatalogError::Corrupt {
                    what: format!("token signing key {kid} does not open under this root key"),
                })?;
            return Ok(SigningKey { kid, pkcs8 });
        }
        let document = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| CatalogError::Corrupt {
                what: "Ed25519 key generation failed".into(),
            })?;
        let pkcs8 = Zeroizing::new(document.as_ref().to_vec());
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| CatalogError::Corrupt {
            what: "Ed25519 key did not parse".into(),
        })?;
        let kid = new_kid();
        sqlx::query(
            "INSERT INTO token_signing_keys (kid, private_sealed, public_key, created_at_ms, verify_until_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(root.seal(&pkcs8, kid.as_bytes()))
        .bind(pair.public_key().as_ref().to_vec())
        .bind(now_ms)
        .bind(now_ms + SIGNING_KEY_ROTATE_MS + TOKEN_TTL_MS_MAX)
        .execute(self.pool())
        .await?;
        Ok(SigningKey { kid, pkcs8 })
    }

    /// Every key that still verifies, newest first.
    pub async fn token_verifying_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<VerifyingKey>, CatalogError> {
        let rows = sqlx::query(
            "SELECT kid, public_key, verify_until_ms FROM token_signing_keys WHERE verify_until_ms > $1 \
             ORDER BY created_at_ms DESC LIMIT $2",
        )
        .bind(now_ms)
        .bind(VERIFY_KEYS_MAX)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VerifyingKey {
                    kid: r.try_get("kid")?,
                    public_key: r.try_get("public_key")?,
                    verify_until_ms: r.try_get("verify_until_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(CatalogError::from)
    }

    /// Revokes a token of `account_id` by its id until it would have expired anyway.
    pub async fn revoke_token(
        &self,
        token_id: &str,
        account_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM revoked_tokens WHERE account_id = $1 AND expires_at_ms >= $2",
        )
        .bind(account_id)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        if held >= REVOCATIONS_PER_TENANT_MAX {
            return Err(crate::Refusal::new(
                crate::RefusalKind::OverLimit,
                format!(
                    "A tenant holds at most {REVOCATIONS_PER_TENANT_MAX} revocations of unexpired tokens."
                ),
            )
            .into());
        }
        sqlx::query(
            "INSERT INTO revoked_tokens (token_id, account_id, expires_at_ms, revoked_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, token_id) DO NOTHING",
        )
        .bind(token_id)
        .bind(account_id)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        // Revocations of tokens that have expired since need not be kept.
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at_ms < $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether `account_id` (the token's own tenant) revoked the token.
    pub async fn is_token_revoked(
        &self,
        account_id: &str,
        token_id: &str,
    ) -> Result<bool, CatalogError> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT token_id FROM revoked_tokens WHERE account_id = $1 AND token_id = $2",
        )
        .bind(account_id)
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signing_keys_rotate_and_old_ones_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        let root = RootKey::from_bytes(&[5u8; 32]).unwrap();
        let first = catalog.token_signing_key(&root, 1_000).await.unwrap();
        let again = catalog.token_signing_key(&root, 2_000).await.unwrap();
        assert_eq!(first.kid, again.kid);
        let later = 1_000 + SIGNING_KEY_ROTATE_MS + 1;
        let second = catalog.token_signing_key(&root, later).await.unwrap();
        assert_ne!(first.kid, second.kid);
        let kids: Vec<String> = catalog
            .token_verifying_keys(later)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, vec![second.kid.clone(), first.kid.clone()]);
        let much_later = 1_000 + SIGNING_KEY_ROTATE_MS + TOKEN_TTL_MS_MAX + 1;
        let kids: Vec<String> = catalog
            .token_verifying_keys(much_later)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert!(!kids.contains(&first.kid));
        // The private half is stored sealed.
        let raw: Vec<u8> =
            sqlx::query_scalar("SELECT private_sealed FROM token_signing_keys WHERE kid = $1")
                .bind(&first.kid)
                .fetch_one(catalog.pool())
                .await
                .unwrap();
        assert!(
            !raw.windows(16)
                .any(|w| first.pkcs8.windows(16).any(|p| p == w))
        );
        catalog
            .revoke_token("t1", "000000000000", 10_000, 5_000)
            .await
            .unwrap();
        assert!(
            catalog
                .is_token_revoked("000000000000", "t1")
                .await
                .unwrap()
        );
        // Another tenant's revocation of the same id is its own, not this one's.
        catalog
            .revoke_token("t2", "111111111111", 10_000, 5_000)
            .await
            .unwrap();
        assert!(
            !catalog
                .is_token_revoked("000000000000", "t2")
                .await
                .unwrap()
        );
        catalog
            .revoke_token("t2", "000000000000", 10_000, 20_000)
            .await
            .unwrap();
        assert!(
            !catalog
                .is_token_revoked("000000000000", "t1")
                .await
                .unwrap(),
            "expired revocations are dropped"
        );
    }
}
