//! SQS data keys: the AES-256-GCM keys that seal the messages of queues with a
//! KmsMasterKeyId, stored only wrapped under a version of that KMS key. The wrapping's
//! associated data names the data key's id and account and the master key and
//! version, so a wrapped key copied onto another row or into another account does not
//! unwrap. Which master key a queue uses, and whether the caller may use it, is the
//! KMS service's to decide before these are called; here the key's state is checked
//! again (a key disabled since makes and opens nothing). Plaintext keys leave this
//! module only as `envelope::DataKey`, zeroized on drop.

use envelope::{DataKey, DataKeyId};
use sqlx::Row;

use crate::masterkeys::{MasterKey, key_refusal};
use crate::refusal::{Refusal, RefusalKind};
use crate::rootkey::RootKey;
use crate::{Catalog, CatalogError};

/// How long a data key is kept: a sender uses it for at most a day (the longest
/// KmsDataKeyReusePeriodSeconds), and its messages live at most 14 days from their
/// send (a move to a dead-letter queue keeps a message's expiry), so after 15 days
/// and an hour no message sealed under it is left.
pub const SQS_DATA_KEY_KEEP_MS: i64 = (15 * 24 + 1) * 3_600_000;

/// A data key opened for reading, with the master key it was wrapped under (whose
/// `kms:Decrypt` the reader needs).
pub struct SqsDataKey {
    pub key: DataKey,
    pub master_key_id: String,
}

fn wrapping_aad(id: DataKeyId, account: &str, master_key_id: &str, version: u32) -> Vec<u8> {
    let mut aad = b"sluice sqs data key v1\0".to_vec();
    aad.extend_from_slice(&id.get().to_le_bytes());
    aad.extend_from_slice(account.as_bytes());
    aad.push(0);
    aad.extend_from_slice(master_key_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Why the queue's master key cannot make or open data keys (`None`: it can).
fn unusable(key: Option<&MasterKey>, key_id: &str) -> Option<Refusal> {
    key_refusal(key, key_id, "this queue")
}

fn key_id_of(raw: i64) -> Result<DataKeyId, CatalogError> {
    u64::try_from(raw)
        .ok()
        .and_then(|id| DataKeyId::new(id).ok())
        .ok_or_else(|| CatalogError::Corrupt {
            what: format!("sqs data key id {raw}"),
        })
}

impl Catalog {
    /// Makes a fresh data key for a sender of the queue and stores it wrapped under
    /// the newest version of the account's master key `master_key_id`.
    pub async fn create_sqs_data_key(
        &self,
        root: &RootKey,
        account: &str,
        queue_id: i64,
        master_key_id: &str,
        now_ms: i64,
    ) -> Result<DataKey, CatalogError> {
        let master = self.master_key(account, master_key_id).await?;
        if let Some(refusal) = unusable(master.as_ref(), master_key_id) {
            return Err(CatalogError::Refused(refusal));
        }
        let master = master.expect("an enabled key exists");
        let material = self
            .master_key_material(root, account, &master.key_id, master.current_version)
            .await?
            .ok_or_else(|| {
                CatalogError::Refused(unusable(None, master_key_id).expect("refused"))
            })?;
        let mut tx = self.begin_write().await?;
        // The id is the row's, so the row comes first (empty) and gets its wrapped key
        // in the same transaction; nobody ever sees the placeholder.
        let raw_id: i64 = sqlx::query(
            "INSERT INTO sqs_data_keys (account_id, queue_id, master_key_id, \
             master_key_version, key_wrapped, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING data_key_id",
        )
        .bind(account)
        .bind(queue_id)
        .bind(&master.key_id)
        .bind(i64::from(master.current_version))
        .bind(Vec::<u8>::new())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get("data_key_id")?;
        let id = key_id_of(raw_id)?;
        let key = DataKey::generate(id);
        let wrapped = envelope::seal(
            &material,
            &wrapping_aad(id, account, &master.key_id, master.current_version),
            key.expose_bytes(),
        );
        sqlx::query("UPDATE sqs_data_keys SET key_wrapped = $1 WHERE data_key_id = $2")
            .bind(wrapped)
            .bind(raw_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Loads and unwraps the account's data key `id`; `None` when the account has no
    /// such key. A master key that is not enabled is refused; a row that does not
    /// unwrap (altered, or moved to another account) is `Corrupt`.
    pub async fn load_sqs_data_key(
        &self,
        root: &RootKey,
        account: &str,
        id: i64,
    ) -> Result<Option<SqsDataKey>, CatalogError> {
        let row = sqlx::query(
            "SELECT master_key_id, master_key_version, key_wrapped FROM sqs_data_keys \
             WHERE data_key_id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let master_key_id: String = row.try_get("master_key_id")?;
        let version: i64 = row.try_get("master_key_version")?;
        let wrapped: Vec<u8> = row.try_get("key_wrapped")?;
        let corrupt = || CatalogError::Corrupt {
            what: format!("sqs data key {id} of account {account} does not unwrap"),
        };
        let version = u32::try_from(version).map_err(|_| corrupt())?;
        let master = self.master_key(account, &master_key_id).await?;
        if let Some(refusal) = unusable(master.as_ref(), &master_key_id) {
            return Err(CatalogError::Refused(refusal));
        }
        let material = self
            .master_key_material(root, account, &master_key_id, version)
            .await?
            .ok_or_else(|| {
                CatalogError::Refused(Refusal::new(
                    RefusalKind::StreamKeyGone,
                    format!("Version {version} of the KMS key {master_key_id} does not exist."),
                ))
            })?;
        let data_key_id = key_id_of(id)?;
        let plain = envelope::open(
            &material,
            &wrapping_aad(data_key_id, account, &master_key_id, version),
            &wrapped,
        )
        .map_err(|_| corrupt())?;
        let plain = zeroize::Zeroizing::new(plain);
        let key = DataKey::from_bytes(data_key_id, &plain).map_err(|_| corrupt())?;
        Ok(Some(SqsDataKey { key, master_key_id }))
    }

    /// Deletes data keys no message can be sealed under any more
    /// (`SQS_DATA_KEY_KEEP_MS`).
    pub async fn forget_old_sqs_data_keys(&self, now_ms: i64) -> Result<u64, CatalogError> {
        let gone = sqlx::query("DELETE FROM sqs_data_keys WHERE created_at_ms < $1")
            .bind(now_ms - SQS_DATA_KEY_KEEP_MS)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masterkeys::{KeyManager, KeyState, StateChange};

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    #[tokio::test]
    async fn a_data_key_opens_only_in_its_account_while_its_master_key_is_enabled() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let root = RootKey::from_bytes(&[9u8; 32]).unwrap();
            let master = catalog
                .create_master_key(&root, A, "queue key", KeyManager::Customer, 1)
                .await
                .unwrap();
            let made = catalog
                .create_sqs_data_key(&root, A, 7, &master.key_id, 10)
                .await
                .unwrap();
            let raw = i64::try_from(made.id().get()).unwrap();
            let opened = catalog
                .load_sqs_data_key(&root, A, raw)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(opened.key.expose_bytes(), made.expose_bytes());
            assert_eq!(opened.master_key_id, master.key_id);
            assert!(
                catalog
                    .load_sqs_data_key(&root, B, raw)
                    .await
                    .unwrap()
                    .is_none()
            );
            // Moved to another account, the row does not unwrap.
            let other = catalog
                .create_master_key(&root, B, "other", KeyManager::Customer, 1)
                .await
                .unwrap();
            sqlx::query("UPDATE sqs_data_keys SET account_id = $1, master_key_id = $2")
                .bind(B)
                .bind(&other.key_id)
                .execute(catalog.pool())
                .await
                .unwrap();
            assert!(matches!(
                catalog.load_sqs_data_key(&root, B, raw).await,
                Err(CatalogError::Corrupt { .. })
            ));
            sqlx::query("UPDATE sqs_data_keys SET account_id = $1, master_key_id = $2")
                .bind(A)
                .bind(&master.key_id)
                .execute(catalog.pool())
                .await
                .unwrap();
            assert!(
                catalog
                    .change_master_key_state(
                        A,
                        &master.key_id,
                        KeyState::Enabled,
                        StateChange::Disable
                    )
                    .await
                    .unwrap()
            );
            assert!(matches!(
                catalog.load_sqs_data_key(&root, A, raw).await,
                Err(CatalogError::Refused(r)) if r.kind == RefusalKind::StreamKeyDisabled
            ));
            assert!(matches!(
                catalog.create_sqs_data_key(&root, A, 7, &master.key_id, 30).await,
                Err(CatalogError::Refused(r)) if r.kind == RefusalKind::StreamKeyDisabled
            ));
            let forget = |now| catalog.forget_old_sqs_data_keys(now);
            assert_eq!(forget(10 + SQS_DATA_KEY_KEEP_MS).await.unwrap(), 0);
            assert_eq!(forget(11 + SQS_DATA_KEY_KEEP_MS).await.unwrap(), 1);
        }
    }
}
