//! Idempotency keys of puts (migration 0018): the first request with a key claims it,
//! runs, and stores its answer; a retry within the window gets that answer and writes
//! nothing. A key is a tenant's; its request hash ties it to one request.

use sqlx::Row;

use crate::{Catalog, CatalogError};

/// Keys one tenant holds at once (claims expire with their window).
pub const KEYS_PER_TENANT_MAX: i64 = 100_000;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's now: run it, then `complete` or `release` the key.
    New,
    /// The same request ran already: its answer.
    Done(Vec<u8>),
    /// The same request is running (or its process died before answering, when the
    /// claim is older than the caller's patience): the claim's time.
    Pending { claimed_at_ms: i64 },
    /// The key names another request.
    Mismatch,
}

impl Catalog {
    /// Claims `key` for the request hashed `request_sha256` until `expires_at_ms`, or
    /// says what holds it. Expired claims are replaced.
    pub async fn claim_idempotency_key(
        &self,
        account_id: &str,
        key: &str,
        request_sha256: &[u8],
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, CatalogError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2 AND expires_at_ms <= $3",
        )
        .bind(account_id)
        .bind(key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (account_id, idem_key, request_sha256, response, \
             claimed_at_ms, expires_at_ms) VALUES ($1, $2, $3, NULL, $4, $5) \
             ON CONFLICT (account_id, idem_key) DO NOTHING",
        )
        .bind(account_id)
        .bind(key)
        .bind(request_sha256)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE account_id = $1")
                    .bind(account_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if held > KEYS_PER_TENANT_MAX {
                return Err(crate::Refusal::new(
                    crate::RefusalKind::OverLimit,
                    format!(
                        "A tenant holds at most {KEYS_PER_TENANT_MAX} idempotency keys within their window."
                    ),
                )
                .into());
            }
            tx.commit().await?;
            return Ok(Claim::New);
        }
        let row = sqlx::query(
            "SELECT request_sha256, response, claimed_at_ms FROM idempotency_keys \
             WHERE account_id = $1 AND idem_key = $2",
        )
        .bind(account_id)
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let stored: Vec<u8> = row.try_get("request_sha256")?;
        if stored != request_sha256 {
            return Ok(Claim::Mismatch);
        }
        Ok(match row.try_get::<Option<Vec<u8>>, _>("response")? {
            Some(answer) => Claim::Done(answer),
            None => Claim::Pending {
                claimed_at_ms: row.try_get("claimed_at_ms")?,
            },
        })
    }

    /// Stores the answer of the request that claimed `key`.
    pub async fn complete_idempotency_key(
        &self,
        account_id: &str,
        key: &str,
        response: &[u8],
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE idempotency_keys SET response = $3 WHERE account_id = $1 AND idem_key = $2",
        )
        .bind(account_id)
        .bind(key)
        .bind(response)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives `key` up after its request failed without writing anything, so that a
    /// retry runs again.
    pub async fn release_idempotency_key(
        &self,
        account_id: &str,
        key: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2 AND response IS NULL",
        )
        .bind(account_id)
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets keys whose window has passed; returns how many.
    pub async fn expire_idempotency_keys(&self, now_ms: i64) -> Result<u64, CatalogError> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_claimed_once_answered_from_store_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let a = "111111111111";
            let claim = |hash: &'static [u8], now: i64| {
                let catalog = catalog.clone();
                async move {
                    catalog
                        .claim_idempotency_key(a, "k1", hash, now, now + 300_000)
                        .await
                        .unwrap()
                }
            };
            assert_eq!(claim(b"h1", 1_000).await, Claim::New);
            assert_eq!(
                claim(b"h1", 2_000).await,
                Claim::Pending {
                    claimed_at_ms: 1_000
                }
            );
            assert_eq!(claim(b"h2", 2_000).await, Claim::Mismatch);
            catalog
                .complete_idempotency_key(a, "k1", b"answer")
                .await
                .unwrap();
            assert_eq!(claim(b"h1", 3_000).await, Claim::Done(b"answer".to_vec()));
            // Another tenant's key of the same name is its own.
            let other = || catalog.claim_idempotency_key("222222222222", "k1", b"h9", 3_000, 9_000);
            assert_eq!(other().await.unwrap(), Claim::New);
            // Released (the request failed), the key runs again; past its window, too.
            catalog
                .release_idempotency_key("222222222222", "k1")
                .await
                .unwrap();
            assert_eq!(other().await.unwrap(), Claim::New);
            assert_eq!(claim(b"h2", 301_000).await, Claim::New);
            assert_eq!(catalog.expire_idempotency_keys(700_000).await.unwrap(), 2);
        }
    }
}
