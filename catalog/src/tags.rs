//! Tags of Kinesis resources, a stream's (`stream_tags`) and an enhanced fan-out
//! consumer's (`consumer_tags`), through one code path. KMS keys keep theirs in
//! `keymeta.rs` (a key's id is text).

use protocol::limits;
use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::{Catalog, CatalogError};

/// What the tags are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    Stream(i64),
    Consumer(i64),
}

impl Tagged {
    /// The table, its owner column and the owner's id. Constants: safe to put in SQL.
    fn place(self) -> (&'static str, &'static str, i64) {
        match self {
            Tagged::Stream(id) => ("stream_tags", "stream_id", id),
            Tagged::Consumer(id) => ("consumer_tags", "consumer_id", id),
        }
    }
}

impl Catalog {
    /// Adds or overwrites tags; a resource keeps at most 50.
    pub async fn add_tags(
        &self,
        owner: Tagged,
        tags: &[(String, String)],
    ) -> Result<(), CatalogError> {
        let (table, column, id) = owner.place();
        let mut tx = self.begin_write().await?;
        for (key, value) in tags {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} ({column}, tag_key, tag_value) VALUES ($1, $2, $3) \
                 ON CONFLICT ({column}, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
            )))
            .bind(id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE {column} = $1"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if count > limits::TAGS_PER_STREAM_MAX as i64 {
            tx.rollback().await?;
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "Failed to add tags: a stream or consumer can have at most {} tags; this request would leave it {count}.",
                    limits::TAGS_PER_STREAM_MAX
                ),
            )
            .into());
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_tags(&self, owner: Tagged, keys: &[String]) -> Result<(), CatalogError> {
        let (table, column, id) = owner.place();
        let mut tx = self.begin_write().await?;
        for key in keys {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE {column} = $1 AND tag_key = $2"
            )))
            .bind(id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tags in key order after `after`; up to `limit` and whether more exist.
    pub async fn list_tags(
        &self,
        owner: Tagged,
        after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<(String, String)>, bool), CatalogError> {
        let (table, column, id) = owner.place();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT tag_key, tag_value FROM {table} WHERE {column} = $1 AND tag_key > $2 \
             ORDER BY tag_key LIMIT $3"
        )))
        .bind(id)
        .bind(after.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let has_more = rows.len() as i64 > limit;
        let tags = rows
            .iter()
            .take(limit as usize)
            .map(|r| Ok((r.try_get("tag_key")?, r.try_get("tag_value")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((tags, has_more))
    }
}
