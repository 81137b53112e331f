//! Data keys in the catalog: each stream's AES-256-GCM keys, stored only wrapped under
//! a version of the stream's KMS master key (the key StartStreamEncryption named, or
//! the account's default `alias/aws/kinesis` key). The wrapping's associated data names
//! the data key's id and stream and the master key and version, so a wrapped key
//! copied onto another row, or a row moved to another stream, does not unwrap. While
//! the master key is disabled or pending deletion no data key of it is made or
//! unwrapped; once it is deleted its material is gone and so, for good, are these.
//! Plaintext keys leave this module only as `envelope::DataKey`, zeroized on drop.
//!
//! Rows written before master keys existed name none; they are wrapped under the root
//! key directly and still unwrap.

use crate::refusal::{Refusal, RefusalKind};
use envelope::{DataKey, DataKeyId};
use sqlx::Row;

use crate::masterkeys::kinesis_key_error;
use crate::rootkey::RootKey;
use crate::{Catalog, CatalogError};

/// What a data key wrapped under the root key (older rows) is bound to.
fn root_wrapping_aad(id: DataKeyId, stream_id: i64) -> Vec<u8> {
    let mut aad = b"sluice data key v1\0".to_vec();
    aad.extend_from_slice(&id.get().to_le_bytes());
    aad.extend_from_slice(&stream_id.to_le_bytes());
    aad
}

/// What a data key wrapped under a master key is bound to: its id and stream, and
/// the master key and version.
fn wrapping_aad(id: DataKeyId, stream_id: i64, master_key_id: &str, version: u32) -> Vec<u8> {
    let mut aad = b"sluice data key v2\0".to_vec();
    aad.extend_from_slice(&id.get().to_le_bytes());
    aad.extend_from_slice(&stream_id.to_le_bytes());
    aad.extend_from_slice(master_key_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn key_error(error: Refusal) -> CatalogError {
    CatalogError::Refused(error)
}

impl Catalog {
    /// Makes a fresh data key for the stream and stores it wrapped under the stream's
    /// master key (its newest version); `None` when the stream does not exist (any
    /// more). A master key that is not enabled is Kinesis's KMS error.
    pub async fn create_data_key(
        &self,
        root: &RootKey,
        stream_id: i64,
        now_ms: i64,
    ) -> Result<Option<DataKey>, CatalogError> {
        let stream =
            sqlx::query("SELECT account_id, master_key_id FROM streams WHERE stream_id = $1")
                .bind(stream_id)
                .fetch_optional(self.pool())
                .await?;
        let Some(stream) = stream else {
            return Ok(None);
        };
        let account: String = stream.try_get("account_id")?;
        let named: Option<String> = stream.try_get("master_key_id")?;
        let master = self
            .stream_master_key(root, &account, named.as_deref(), now_ms)
            .await?;
        let master_id = master
            .as_ref()
            .map_or_else(|| named.clone().unwrap_or_default(), |k| k.key_id.clone());
        if let Some(error) = kinesis_key_error(master.as_ref(), &master_id) {
            return Err(key_error(error));
        }
        let master = master.expect("an enabled key exists");
        let material = self
            .master_key_material(root, &account, &master.key_id, master.current_version)
            .await?
            .ok_or_else(|| key_error(kinesis_key_error(None, &master_id).expect("missing")))?;
        let mut tx = self.begin_write().await?;
        // The id is the row's, so the row comes first (empty) and gets its wrapped key
        // in the same transaction; nobody ever sees the placeholder.
        let row = sqlx::query(
            "INSERT INTO data_keys (stream_id, key_wrapped, created_at_ms, master_key_id, master_key_version) \
             SELECT stream_id, $2, $3, $4, $5 FROM streams WHERE stream_id = $1 \
             RETURNING data_key_id",
        )
        .bind(stream_id)
        .bind(Vec::<u8>::new())
        .bind(now_ms)
        .bind(&master.key_id)
        .bind(i64::from(master.current_version))
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
        let wrapped = envelope::seal(
            &material,
            &wrapping_aad(id, stream_id, &master.key_id, master.current_version),
            key.expose_bytes(),
        );
        sqlx::query("UPDATE data_keys SET key_wrapped = $1 WHERE data_key_id = $2")
            .bind(wrapped)
            .bind(raw_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(key))
    }

    /// Loads and unwraps data key `id` of the stream; `None` when the stream has no
    /// such key. A master key that is not enabled (or gone) is Kinesis's KMS error; a
    /// row that does not unwrap (altered, moved, or wrapped under another key) is
    /// `Corrupt`.
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
            "SELECT d.stream_id, d.key_wrapped, d.master_key_id, d.master_key_version, s.account_id \
             FROM data_keys d JOIN streams s ON s.stream_id = d.stream_id \
             WHERE d.data_key_id = $1 AND d.stream_id = $2",
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
        let master_id: Option<String> = row.try_get("master_key_id")?;
        let version: Option<i64> = row.try_get("master_key_version")?;
        let account: String = row.try_get("account_id")?;
        let corrupt = || CatalogError::Corrupt {
            what: format!("data key {id} of stream {stream_id} does not unwrap"),
        };
        let bytes = match (master_id, version) {
            (None, None) => root
                .open(&wrapped, &root_wrapping_aad(id, row_stream))
                .map_err(|_| corrupt())?,
            (Some(master_id), Some(version)) => {
                let version = u32::try_from(version).map_err(|_| corrupt())?;
                let master = self.master_key(&account, &master_id).await?;
                if let Some(error) = kinesis_key_error(master.as_ref(), &master_id) {
                    return Err(key_error(error));
                }
                let material = self
                    .master_key_material(root, &account, &master_id, version)
                    .await?
                    .ok_or_else(|| {
                        key_error(Refusal::new(
                            RefusalKind::StreamKeyGone,
                            format!("Version {version} of the KMS key {master_id} does not exist."),
                        ))
                    })?;
                let plain = envelope::open(
                    &material,
                    &wrapping_aad(id, row_stream, &master_id, version),
                    &wrapped,
                )
                .map_err(|_| corrupt())?;
                zeroize::Zeroizing::new(plain)
            }
            _ => return Err(corrupt()),
        };
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
                    account_on_demand_streams_max: 50,
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

    #[tokio::test]
    async fn keys_wrapped_before_master_keys_still_unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, a, _) = catalog_with_streams(dir.path()).await;
        let root = RootKey::from_bytes(&[9u8; 32]).unwrap();
        // A row as builds before master keys wrote it: under the root key, no master key.
        let id = DataKeyId::new(77).unwrap();
        let key = DataKey::generate(id);
        sqlx::query(
            "INSERT INTO data_keys (data_key_id, stream_id, key_wrapped, created_at_ms) \
             VALUES ($1, $2, $3, 0)",
        )
        .bind(77i64)
        .bind(a)
        .bind(root.seal(key.expose_bytes(), &root_wrapping_aad(id, a)))
        .execute(catalog.pool())
        .await
        .unwrap();
        let loaded = catalog.load_data_key(&root, id, a).await.unwrap().unwrap();
        assert_eq!(loaded.expose_bytes(), key.expose_bytes());
        // A row that names a master key but no version is malformed, not a legacy row.
        sqlx::query("UPDATE data_keys SET master_key_id = 'x' WHERE data_key_id = 77")
            .execute(catalog.pool())
            .await
            .unwrap();
        assert!(matches!(
            catalog.load_data_key(&root, id, a).await,
            Err(CatalogError::Corrupt { .. })
        ));
        // New keys are wrapped under the account's default master key.
        let fresh = catalog.create_data_key(&root, a, 1).await.unwrap().unwrap();
        let master: Option<String> =
            sqlx::query_scalar("SELECT master_key_id FROM data_keys WHERE data_key_id = $1")
                .bind(fresh.id().get() as i64)
                .fetch_one(catalog.pool())
                .await
                .unwrap();
        let default = catalog
            .resolve_alias("000000000000", crate::masterkeys::DEFAULT_STREAM_ALIAS)
            .await
            .unwrap();
        assert!(master.is_some() && master == default);
    }
}
