//! What KMS keeps about a key besides its material and state: its tags, its description
//! and where an alias points (UpdateAlias).

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::{Catalog, CatalogError};

/// Tags a KMS key holds at most (AWS's limit).
pub const KEY_TAGS_MAX: i64 = 50;

impl Catalog {
    /// Adds or overwrites tags on the account's key; refused past 50.
    pub async fn tag_key(
        &self,
        account: &str,
        key_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        for (k, v) in tags {
            let done = sqlx::query(
                "INSERT INTO kms_key_tags (key_id, tag_key, tag_value) \
                 SELECT key_id, $3, $4 FROM kms_keys WHERE account_id = $1 AND key_id = $2 \
                 ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(account)
            .bind(key_id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(Refusal::new(
                    RefusalKind::KeyMissing,
                    format!("Key '{key_id}' does not exist"),
                )
                .into());
            }
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms_key_tags WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await?;
        if count > KEY_TAGS_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A KMS key can have at most {KEY_TAGS_MAX} tags; this request would leave it {count}."),
            )
            .into());
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn untag_key(&self, key_id: &str, keys: &[String]) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        for k in keys {
            sqlx::query("DELETE FROM kms_key_tags WHERE key_id = $1 AND tag_key = $2")
                .bind(key_id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` of a key's tags after `after`, by tag key.
    pub async fn key_tags(
        &self,
        key_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM kms_key_tags WHERE key_id = $1 AND tag_key > $2 \
             ORDER BY tag_key LIMIT $3",
        )
        .bind(key_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("tag_key")?, r.try_get("tag_value")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    pub async fn set_key_description(
        &self,
        account: &str,
        key_id: &str,
        description: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE kms_keys SET description = $3 WHERE account_id = $1 AND key_id = $2")
            .bind(account)
            .bind(key_id)
            .bind(description)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Points the account's existing alias at another of its keys; `false` when the
    /// account has no alias of that name.
    pub async fn retarget_alias(
        &self,
        account: &str,
        name: &str,
        key_id: &str,
        now_ms: i64,
    ) -> Result<bool, CatalogError> {
        let done = sqlx::query(
            "UPDATE kms_aliases SET key_id = $3, updated_at_ms = $4 \
             WHERE account_id = $1 AND alias_name = $2",
        )
        .bind(account)
        .bind(name)
        .bind(key_id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
