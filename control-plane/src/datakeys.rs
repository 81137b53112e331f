//! Data keys in the catalog: each stream's AES-256-GCM keys, stored only wrapped under
//! the root key. The wrapping's associated data names the key's id and stream, so a
//! wrapped key copied onto another row, or a row moved to another stream, does not
//! unwrap. Plaintext keys leave this module only as `kms::DataKey`, which zeroizes
//! itself on drop.

use kms::{DataKey, DataKeyId};
use sqlx::Row;

use crate::catalog::{Catalog, CatalogError};
use crate::rootkey::RootKey;

/// What a wrapped data key is bound to: its id and its stream.
fn wrapping_aad(id: DataKeyId, stream_id: i64) -> Vec<u8> {
    let mut aad = b"sluice data key v1\0".to_vec();
    aad.extend_from_slice(&id.get().to_le_bytes());
    aad.extend_from_slice(&stream_id.to_le_bytes());
    aad
}

impl Catalog {
    /// Makes a fresh data key for the stream and stores it wrapped under `root`;
    /// `None` when the stream does not exist (any more).
    pub async fn create_data_key(
        &self,
        root: &RootKey,
        stream_id: i64,
        now_ms: i64,
    ) -> Result<Option<DataKey>, CatalogError> {
        let mut tx = self.pool().begin().await?;
        // The id is the row's, so the row comes first (empty) and gets its wrapped key
        // in the same transaction; nobody ever sees the placeholder.
        let row = sqlx::query(
            "INSERT INTO data_keys (stream_id, key_wrapped, created_at_ms) \
             SELECT stream_id, $2, $3 FROM streams WHERE stream_id = $1 \
             RETURNING data_key_id",
        )
        .bind(stream_id)
        .bind(Vec::<u8>::new())
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let raw_id: i64 = row.try_get("data_key_id")?;
        let id = u64::try_from(raw_id)
            .ok()
            .and_then(|id| DataKeyId::new(id).ok())
            .ok_or_else(|| CatalogError::Corrupt {
                what: format!("data key id {raw_id}"),
            })?;
        let key = DataKey::generate(id);
        let wrapped = root.seal(key.expose_bytes(), &wrapping_aad(id, stream_id));
        sqlx::query("UPDATE data_keys SET key_wrapped = $1 WHERE data_key_id = $2")
            .bind(wrapped)
            .bind(raw_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(key))
    }

    /// Loads and unwraps data key `id` of the stream; `None` when the stream has no
    /// such key. A row that does not unwrap (altered, moved, or wrapped under another
    /// root key) is `Corrupt`.
    pub async fn load_data_key(
        &self,
        root: &RootKey,
        id: DataKeyId,
        stream_id: i64,
    ) -> Result<Option<DataKey>, CatalogError> {
        let raw_id = i64::try_from(id.get()).map_err(|_| CatalogError::Corrupt {
            what: format!("data key id {id}"),
        })?;
        let row = sqlx::query(
            "SELECT stream_id, key_wrapped FROM data_keys WHERE data_key_id = $1 AND stream_id = $2",
        )
        .bind(raw_id)
        .bind(stream_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let row_stream: i64 = row.try_get("stream_id")?;
        let wrapped: Vec<u8> = row.try_get("key_wrapped")?;
        let corrupt = || CatalogError::Corrupt {
            what: format!("data key {id} of stream {stream_id} does not unwrap"),
        };
        let bytes = root
            .open(&wrapped, &wrapping_aad(id, row_stream))
            .map_err(|_| corrupt())?;
        DataKey::from_bytes(id, &bytes)
            .map(Some)
            .map_err(|_| corrupt())
    }

    /// Notes that this key's writer moved on to a newer one.
    pub async fn retire_data_key(&self, id: DataKeyId, now_ms: i64) -> Result<(), CatalogError> {
        let raw_id = i64::try_from(id.get()).map_err(|_| CatalogError::Corrupt {
            what: format!("data key id {id}"),
        })?;
        sqlx::query(
            "UPDATE data_keys SET retired_at_ms = $1 WHERE data_key_id = $2 AND retired_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(raw_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamMode;
    use crate::streams::NewStream;

    async fn catalog_with_streams(dir: &std::path::Path) -> (Catalog, i64, i64) {
        let catalog = Catalog::open(&format!("sqlite://{}", dir.join("c.db").display()))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let stream = catalog
                .create_stream(&NewStream {
                    account_id: "000000000000",
                    name,
                    shard_count: 1,
                    mode: StreamMode::Provisioned,
                    tags: &[],
                    now_ms: 0,
                    account_shards_max: 10,
                    region: "us-east-1",
                })
                .await
                .unwrap();
            ids.push(stream.id);
        }
        (catalog, ids[0], ids[1])
    }

    #[tokio::test]
    async fn made_wrapped_and_unwrapped_only_for_their_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, a, b) = catalog_with_streams(dir.path()).await;
        let root = RootKey::from_bytes(&[9u8; 32]).unwrap();
        let key = catalog.create_data_key(&root, a, 1).await.unwrap().unwrap();
        let again = catalog
            .load_data_key(&root, key.id(), a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.expose_bytes(), key.expose_bytes());
        assert!(
            catalog
                .load_data_key(&root, key.id(), b)
                .await
                .unwrap()
                .is_none()
        );
        // The stored form is not the key.
        let stored: Vec<u8> = sqlx::query_scalar("SELECT key_wrapped FROM data_keys")
            .fetch_one(catalog.pool())
            .await
            .unwrap();
        assert!(!stored.windows(32).any(|w| w == key.expose_bytes()));
        // Another root key, or a row moved to another stream, does not unwrap.
        let other = RootKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(matches!(
            catalog.load_data_key(&other, key.id(), a).await,
            Err(CatalogError::Corrupt { .. })
        ));
        sqlx::query("UPDATE data_keys SET stream_id = $1")
            .bind(b)
            .execute(catalog.pool())
            .await
            .unwrap();
        assert!(matches!(
            catalog.load_data_key(&root, key.id(), b).await,
            Err(CatalogError::Corrupt { .. })
        ));
        // A wrapped key copied onto another key's row does not unwrap either.
        let second = catalog.create_data_key(&root, b, 2).await.unwrap().unwrap();
        sqlx::query("UPDATE data_keys SET key_wrapped = $1 WHERE data_key_id = $2")
            .bind(stored)
            .bind(second.id().get() as i64)
            .execute(catalog.pool())
            .await
            .unwrap();
        assert!(catalog.load_data_key(&root, second.id(), b).await.is_err());
        catalog.retire_data_key(second.id(), 3).await.unwrap();
    }

    #[tokio::test]
    async fn a_deleted_stream_gets_no_key_and_loses_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, a, _) = catalog_with_streams(dir.path()).await;
        let root = RootKey::from_bytes(&[9u8; 32]).unwrap();
        let key = catalog.create_data_key(&root, a, 1).await.unwrap().unwrap();
        catalog.delete_stream("000000000000", "a", 0).await.unwrap();
        assert!(
            catalog
                .create_data_key(&root, a, 2)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            catalog
                .load_data_key(&root, key.id(), a)
                .await
                .unwrap()
                .is_none()
        );
    }
}
