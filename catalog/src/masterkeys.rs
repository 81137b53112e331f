//! KMS master keys in the catalog: per tenant (account), each with a UUID key id, a
//! state, versions of key material and aliases. Material is stored only sealed under
//! the root key, bound to its account, key id and version, and leaves this module only
//! as `envelope::DataKey` (zeroized on drop). Every query names the caller's account: a key
//! of another tenant is simply not found here.

use crate::refusal::{Refusal, RefusalKind};
use envelope::{DataKey, DataKeyId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rootkey::RootKey;
use crate::{Catalog, CatalogError};

/// Master keys one account may hold (AWS's default quota is 100,000; ours is smaller
/// because ListKeys and the sweep read them from one database).
pub const KEYS_PER_ACCOUNT_MAX: i64 = 10_000;
/// Aliases one account may hold.
pub const ALIASES_PER_ACCOUNT_MAX: i64 = 10_000;
/// On-demand rotations of one key, as AWS bounds them.
pub const ON_DEMAND_ROTATIONS_MAX: i64 = 25;
/// Versions of one key, at most: automatic rotation at its shortest period (90 days)
/// for 250 years plus every on-demand rotation stays far below this.
pub const KEY_VERSIONS_MAX: i64 = 1_100;
/// ScheduleKeyDeletion's waiting period, in days, as AWS bounds it.
pub const PENDING_WINDOW_DAYS_MIN: i64 = 7;
pub const PENDING_WINDOW_DAYS_MAX: i64 = 30;
pub const PENDING_WINDOW_DAYS_DEFAULT: i64 = 30;
/// Automatic rotation period, in days, as AWS bounds it.
pub const ROTATION_PERIOD_DAYS_MIN: i64 = 90;
pub const ROTATION_PERIOD_DAYS_MAX: i64 = 2_560;
pub const ROTATION_PERIOD_DAYS_DEFAULT: i64 = 365;
pub const DAY_MS: i64 = 86_400_000;
/// Unexpired import tokens (GetParametersForImport) one key may hold.
pub const IMPORT_TOKENS_PER_KEY_MAX: i64 = 20;
/// Keys the deletion sweep destroys in one pass, at most.
pub const SWEEP_KEYS_MAX: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// An EXTERNAL key without material (never imported, deleted or expired).
    PendingImport,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
        }
    }

    fn parse(text: &str) -> Option<KeyState> {
        match text {
            "Enabled" => Some(KeyState::Enabled),
            "Disabled" => Some(KeyState::Disabled),
            "PendingDeletion" => Some(KeyState::PendingDeletion),
            "PendingImport" => Some(KeyState::PendingImport),
            _ => None,
        }
    }
}

/// Who manages a key: the tenant, or the service (its `alias/aws/...` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyManager {
    Customer,
    Aws,
}

impl KeyManager {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyManager::Customer => "CUSTOMER",
            KeyManager::Aws => "AWS",
        }
    }
}

/// A master key's metadata; never its material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub key_id: String,
    pub account_id: String,
    pub description: String,
    pub state: KeyState,
    pub manager: KeyManager,
    pub created_at_ms: i64,
    pub deletion_date_ms: Option<i64>,
    pub pending_window_days: Option<i64>,
    pub rotation_enabled: bool,
    pub rotation_period_days: i64,
    pub next_rotation_ms: Option<i64>,
    pub current_version: u32,
    pub last_rotation_ms: Option<i64>,
    /// KMS's KeySpec (`SYMMETRIC_DEFAULT`, `RSA_2048`, `ECC_NIST_P256`, `HMAC_256`, ...).
    pub key_spec: String,
    /// KMS's KeyUsage (`ENCRYPT_DECRYPT`, `SIGN_VERIFY`, ...).
    pub key_usage: String,
    /// `AWS_KMS`, or `EXTERNAL` for imported key material.
    pub origin: String,
    /// When imported material expires, if it does.
    pub material_expires_ms: Option<i64>,
    /// What identifies imported material (its KeyMaterialId), if any was imported.
    pub material_fingerprint: Option<String>,
}

/// A key of another kind than symmetric encryption, with its first material (a PKCS #8
/// private key, or an HMAC secret), made by the caller.
pub struct KeyKind<'a> {
    pub spec: &'a str,
    pub usage: &'a str,
    pub material: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub key_id: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The alias of each account's default key for streams (made on first use).
pub const DEFAULT_STREAM_ALIAS: &str = "alias/aws/kinesis";

/// The alias of each account's default key for queues (made on first use).
pub const DEFAULT_QUEUE_ALIAS: &str = "alias/aws/sqs";

/// The error Kinesis answers with when a stream's master key (`None`: it does not
/// exist any more) cannot seal or open its data keys.
pub fn kinesis_key_error(key: Option<&MasterKey>, key_id: &str) -> Option<Refusal> {
    key_refusal(key, key_id, "this stream")
}

/// Why a master key (`None`: it does not exist any more) of `owner` (`this stream`,
/// `this queue`) cannot make or open data keys; `None` when it can.
pub fn key_refusal(key: Option<&MasterKey>, key_id: &str, owner: &str) -> Option<Refusal> {
    let (kind, why) = match key.map(|k| k.state) {
        Some(KeyState::Enabled) => return None,
        Some(KeyState::Disabled) => (RefusalKind::StreamKeyDisabled, "is disabled"),
        Some(KeyState::PendingDeletion) => {
            (RefusalKind::StreamKeyPendingDeletion, "is pending deletion")
        }
        Some(KeyState::PendingImport) => (
            RefusalKind::StreamKeyPendingDeletion,
            "is pending import: it has no key material",
        ),
        None => (RefusalKind::StreamKeyGone, "does not exist"),
    };
    Some(Refusal::new(
        kind,
        format!("The KMS key {key_id} of {owner} {why}."),
    ))
}

/// The description of the AWS managed key an alias names (`alias/aws/kinesis`,
/// `alias/aws/sqs`); `None` for any other alias.
pub fn aws_managed_key_description(alias: &str) -> Option<&'static str> {
    match alias {
        DEFAULT_STREAM_ALIAS => {
            Some("Default key that protects my Kinesis data when no other key is defined")
        }
        DEFAULT_QUEUE_ALIAS => {
            Some("Default key that protects my SQS messages when no other key is defined")
        }
        _ => None,
    }
}

/// The state change a key-state operation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    Enable,
    Disable,
    ScheduleDeletion { deletion_date_ms: i64, days: i64 },
    CancelDeletion,
}

/// What a wrapped key version is bound to: its account, key id and version.
fn material_aad(account: &str, key_id: &str, version: u32) -> Vec<u8> {
    let mut aad = b"sluice kms key material v1\0".to_vec();
    aad.extend_from_slice(account.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// What an import token's sealed wrapping key is bound to.
fn import_aad(account: &str, key_id: &str, token: &str) -> Vec<u8> {
    let mut aad = b"sluice kms import wrapping key v1\0".to_vec();
    for part in [account, key_id, token] {
        aad.extend_from_slice(part.as_bytes());
        aad.push(0);
    }
    aad
}

fn corrupt(what: String) -> CatalogError {
    CatalogError::Corrupt { what }
}

fn key_from_row(row: &AnyRow) -> Result<MasterKey, CatalogError> {
    let key_id: String = row.try_get("key_id")?;
    let state: String = row.try_get("key_state")?;
    let manager: String = row.try_get("key_manager")?;
    let version: i64 = row.try_get("current_version")?;
    let rotation: i64 = row.try_get("rotation_enabled")?;
    Ok(MasterKey {
        account_id: row.try_get("account_id")?,
        description: row.try_get("description")?,
        state: KeyState::parse(&state)
            .ok_or_else(|| corrupt(format!("key {key_id} state {state:?}")))?,
        manager: match manager.as_str() {
            "CUSTOMER" => KeyManager::Customer,
            "AWS" => KeyManager::Aws,
            _ => return Err(corrupt(format!("key {key_id} manager {manager:?}"))),
        },
        created_at_ms: row.try_get("created_at_ms")?,
        deletion_date_ms: row.try_get("deletion_date_ms")?,
        pending_window_days: row.try_get("pending_window_days")?,
        rotation_enabled: rotation != 0,
        rotation_period_days: row.try_get("rotation_period_days")?,
        next_rotation_ms: row.try_get("next_rotation_ms")?,
        current_version: u32::try_from(version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| corrupt(format!("key {key_id} version {version}")))?,
        last_rotation_ms: row.try_get("last_rotation_ms")?,
        key_spec: row.try_get("key_spec")?,
        key_usage: row.try_get("key_usage")?,
        origin: row.try_get("origin")?,
        material_expires_ms: row.try_get("material_expires_ms")?,
        material_fingerprint: row.try_get("material_fingerprint")?,
        key_id,
    })
}

const KEY_COLUMNS: &str = "key_id, account_id, description, key_state, key_manager, \
     created_at_ms, deletion_date_ms, pending_window_days, rotation_enabled, \
     rotation_period_days, next_rotation_ms, current_version, last_rotation_ms, key_spec, \
     key_usage, origin, material_expires_ms, material_fingerprint";

fn limit_exceeded(what: &str, max: i64) -> CatalogError {
    Refusal::new(
        RefusalKind::OverLimit,
        format!(
            "The request was rejected because the account holds {max} {what}, the most allowed."
        ),
    )
    .into()
}

/// Seals a fresh version's material and stores it; the caller's transaction commits.
#[allow(clippy::too_many_arguments)]
async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    root: &RootKey,
    account: &str,
    key_id: &str,
    version: u32,
    now_ms: i64,
    material: Option<&[u8]>,
    rotation_type: Option<&str>,
) -> Result<(), CatalogError> {
    let aad = material_aad(account, key_id, version);
    let sealed = match material {
        Some(bytes) => root.seal(bytes, &aad),
        None => {
            let fresh =
                DataKey::generate(DataKeyId::new(u64::from(version)).expect("version >= 1"));
            root.seal(fresh.expose_bytes(), &aad)
        }
    };
    sqlx::query(
        "INSERT INTO kms_key_versions (key_id, version, material_sealed, created_at_ms, \
         rotation_type) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key_id)
    .bind(i64::from(version))
    .bind(sealed)
    .bind(now_ms)
    .bind(rotation_type)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Catalog {
    /// Makes a master key with its first version of material.
    pub async fn create_master_key(
        &self,
        root: &RootKey,
        account: &str,
        description: &str,
        manager: KeyManager,
        now_ms: i64,
    ) -> Result<MasterKey, CatalogError> {
        self.create_master_key_of(root, account, description, manager, now_ms, None)
            .await
    }

    /// Makes a master key of `kind` (symmetric when `None`, with fresh material).
    pub async fn create_master_key_of(
        &self,
        root: &RootKey,
        account: &str,
        description: &str,
        manager: KeyManager,
        now_ms: i64,
        kind: Option<&KeyKind<'_>>,
    ) -> Result<MasterKey, CatalogError> {
        let key_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.begin_write().await?;
        // INVARIANT: the write comes first (see lib.rs), and the count is read inside
        // the same transaction, so concurrent creates cannot pass the limit together
        // on SQLite; on Postgres two may, by one key each: the bound stays a bound.
        sqlx::query(
            "INSERT INTO kms_keys (key_id, account_id, description, key_state, key_manager, \
             created_at_ms, current_version, key_spec, key_usage, usage_tracked_from_ms) \
             VALUES ($1, $2, $3, 'Enabled', $4, $5, 1, $6, $7, $5)",
        )
        .bind(&key_id)
        .bind(account)
        .bind(description)
        .bind(manager.as_str())
        .bind(now_ms)
        .bind(kind.map_or("SYMMETRIC_DEFAULT", |k| k.spec))
        .bind(kind.map_or("ENCRYPT_DECRYPT", |k| k.usage))
        .execute(&mut *tx)
        .await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms_keys WHERE account_id = $1")
            .bind(account)
            .fetch_one(&mut *tx)
            .await?;
        if count > KEYS_PER_ACCOUNT_MAX {
            return Err(limit_exceeded("KMS keys", KEYS_PER_ACCOUNT_MAX));
        }
        insert_version(
            &mut tx,
            root,
            account,
            &key_id,
            1,
            now_ms,
            kind.map(|k| k.material),
            None,
        )
        .await?;
        if manager == KeyManager::Customer {
            Self::meter_key_created(&mut tx, account, &key_id, now_ms).await?;
        }
        tx.commit().await?;
        self.master_key(account, &key_id)
            .await?
            .ok_or_else(|| corrupt(format!("key {key_id} vanished after its creation")))
    }

    /// Makes an EXTERNAL symmetric key: PendingImport, with no material until
    /// `import_key_material`.
    pub async fn create_external_key(
        &self,
        account: &str,
        description: &str,
        now_ms: i64,
    ) -> Result<MasterKey, CatalogError> {
        let key_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO kms_keys (key_id, account_id, description, key_state, key_manager, \
             created_at_ms, current_version, usage_tracked_from_ms, origin) \
             VALUES ($1, $2, $3, 'PendingImport', 'CUSTOMER', $4, 1, $4, 'EXTERNAL')",
        )
        .bind(&key_id)
        .bind(account)
        .bind(description)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms_keys WHERE account_id = $1")
            .bind(account)
            .fetch_one(&mut *tx)
            .await?;
        if count > KEYS_PER_ACCOUNT_MAX {
            return Err(limit_exceeded("KMS keys", KEYS_PER_ACCOUNT_MAX));
        }
        tx.commit().await?;
        self.master_key(account, &key_id)
            .await?
            .ok_or_else(|| corrupt(format!("key {key_id} vanished after its creation")))
    }

    /// Stores an import's wrapping private key (sealed by the caller's root key) under
    /// `token`; older tokens of the key past their time go.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_import_token(
        &self,
        root: &RootKey,
        account: &str,
        key_id: &str,
        token: &str,
        algorithm: &str,
        wrapping_key: &[u8],
        valid_to_ms: i64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let sealed = root.seal(wrapping_key, &import_aad(account, key_id, token));
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM kms_import_tokens WHERE key_id = $1 AND valid_to_ms <= $2")
            .bind(key_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO kms_import_tokens (token, account_id, key_id, wrapping_algorithm, \
             wrapping_key_sealed, valid_to_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token)
        .bind(account)
        .bind(key_id)
        .bind(algorithm)
        .bind(sealed)
        .bind(valid_to_ms)
        .execute(&mut *tx)
        .await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM kms_import_tokens WHERE key_id = $1")
                .bind(key_id)
                .fetch_one(&mut *tx)
                .await?;
        if count > IMPORT_TOKENS_PER_KEY_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A key holds at most {IMPORT_TOKENS_PER_KEY_MAX} unexpired import tokens."),
            )
            .into());
        }
        tx.commit().await?;
        Ok(())
    }

    /// An import token of the account's key: its wrapping algorithm, wrapping private
    /// key and end of validity; `None` when there is no such token.
    pub async fn import_token(
        &self,
        root: &RootKey,
        account: &str,
        key_id: &str,
        token: &str,
    ) -> Result<Option<(String, zeroize::Zeroizing<Vec<u8>>, i64)>, CatalogError> {
        let row = sqlx::query(
            "SELECT wrapping_algorithm, wrapping_key_sealed, valid_to_ms FROM kms_import_tokens \
             WHERE token = $1 AND account_id = $2 AND key_id = $3",
        )
        .bind(token)
        .bind(account)
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.try_get("wrapping_key_sealed")?;
        let key = root
            .open(&sealed, &import_aad(account, key_id, token))
            .map_err(|_| corrupt(format!("the wrapping key of an import token of {key_id}")))?;
        Ok(Some((
            row.try_get("wrapping_algorithm")?,
            key,
            row.try_get("valid_to_ms")?,
        )))
    }

    /// Gives an EXTERNAL key in PendingImport its material (version 1) and enables it;
    /// the token is used up. False when the key was not pending import.
    #[allow(clippy::too_many_arguments)]
    pub async fn import_key_material(
        &self,
        root: &RootKey,
        account: &str,
        key_id: &str,
        token: &str,
        material: &[u8],
        fingerprint: &str,
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE kms_keys SET key_state = 'Enabled', material_expires_ms = $1, \
             material_fingerprint = $2, current_version = 1 \
             WHERE account_id = $3 AND key_id = $4 AND origin = 'EXTERNAL' \
             AND key_state = 'PendingImport'",
        )
        .bind(expires_ms)
        .bind(fingerprint)
        .bind(account)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM kms_key_versions WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        insert_version(
            &mut tx,
            root,
            account,
            key_id,
            1,
            now_ms,
            Some(material),
            None,
        )
        .await?;
        sqlx::query("DELETE FROM kms_import_tokens WHERE token = $1")
            .bind(token)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes an EXTERNAL key's material: it is PendingImport again (a key pending
    /// deletion stays so). False when the key is not EXTERNAL.
    pub async fn delete_imported_material(
        &self,
        account: &str,
        key_id: &str,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE kms_keys SET material_expires_ms = NULL, key_state = CASE \
             WHEN key_state = 'PendingDeletion' THEN key_state ELSE 'PendingImport' END \
             WHERE account_id = $1 AND key_id = $2 AND origin = 'EXTERNAL'",
        )
        .bind(account)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM kms_key_versions WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes imported material (any account) whose time has passed; the keys
    /// whose material went.
    pub async fn expire_imported_material(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let due = sqlx::query(
            "SELECT account_id, key_id FROM kms_keys WHERE origin = 'EXTERNAL' \
             AND material_expires_ms <= $1 LIMIT $2",
        )
        .bind(now_ms)
        .bind(SWEEP_KEYS_MAX)
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::new();
        for row in &due {
            let account: String = row.try_get("account_id")?;
            let key_id: String = row.try_get("key_id")?;
            if self.delete_imported_material(&account, &key_id).await? {
                expired.push((account, key_id));
            }
        }
        Ok(expired)
    }

    /// Records a successful cryptographic operation with the account's key
    /// (GetKeyLastUsage).
    pub async fn record_key_use(
        &self,
        account: &str,
        key_id: &str,
        operation: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE kms_keys SET last_used_operation = $1, last_used_at_ms = $2, \
             last_used_request_id = $3 WHERE account_id = $4 AND key_id = $5",
        )
        .bind(operation)
        .bind(now_ms)
        .bind(request_id)
        .bind(account)
        .bind(key_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The last recorded use of the account's key: (tracked since, and the last
    /// operation, when and its request id, if any).
    pub async fn key_last_use(
        &self,
        account: &str,
        key_id: &str,
    ) -> Result<Option<(Option<i64>, Option<(String, i64, String)>)>, CatalogError> {
        let row = sqlx::query(
            "SELECT usage_tracked_from_ms, last_used_operation, last_used_at_ms, \
             last_used_request_id FROM kms_keys WHERE account_id = $1 AND key_id = $2",
        )
        .bind(account)
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let operation: Option<String> = row.try_get("last_used_operation")?;
        let at: Option<i64> = row.try_get("last_used_at_ms")?;
        let request: Option<String> = row.try_get("last_used_request_id")?;
        let last = match (operation, at) {
            (Some(operation), Some(at)) => Some((operation, at, request.unwrap_or_default())),
            _ => None,
        };
        Ok(Some((row.try_get("usage_tracked_from_ms")?, last)))
    }

    /// Removes a key made by this same request before anything used it (CreateKey
    /// whose policy was refused): its row and material go at once.
    pub async fn discard_new_master_key(
        &self,
        account: &str,
        key_id: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM kms_key_versions WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM kms_key_tags WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM kms_keys WHERE account_id = $1 AND key_id = $2")
            .bind(account)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        Self::meter_key_gone(&mut tx, key_id, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's default key for streams (`alias/aws/kinesis`), made with its
    /// alias on first use.
    pub async fn default_stream_key(
        &self,
        root: &RootKey,
        account: &str,
        now_ms: i64,
    ) -> Result<MasterKey, CatalogError> {
        self.aws_managed_key(root, account, DEFAULT_STREAM_ALIAS, now_ms)
            .await
    }

    /// The account's AWS managed key of a service (`alias/aws/kinesis`,
    /// `alias/aws/sqs`), made with its alias on first use.
    pub async fn aws_managed_key(
        &self,
        root: &RootKey,
        account: &str,
        alias: &str,
        now_ms: i64,
    ) -> Result<MasterKey, CatalogError> {
        let description = aws_managed_key_description(alias)
            .ok_or_else(|| corrupt(format!("{alias} is no AWS managed key's alias")))?;
        for _ in 0..2 {
            if let Some(id) = self.resolve_alias(account, alias).await?
                && let Some(key) = self.master_key(account, &id).await?
            {
                return Ok(key);
            }
            let key = self
                .create_master_key(root, account, description, KeyManager::Aws, now_ms)
                .await?;
            match self.create_alias(account, alias, &key.key_id, now_ms).await {
                Ok(()) => {
                    // AWS managed keys rotate every year; so does this one.
                    self.set_key_rotation(
                        account,
                        &key.key_id,
                        Some(ROTATION_PERIOD_DAYS_DEFAULT),
                        now_ms,
                    )
                    .await?;
                    return self
                        .master_key(account, &key.key_id)
                        .await?
                        .ok_or_else(|| corrupt(format!("default key {} vanished", key.key_id)));
                }
                // Another request made the default key first: use theirs, drop ours.
                Err(CatalogError::Refused(e)) if e.kind == RefusalKind::KeyExists => {
                    sqlx::query("DELETE FROM kms_keys WHERE key_id = $1")
                        .bind(&key.key_id)
                        .execute(self.pool())
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(corrupt(format!(
            "{alias} of account {account} neither resolves nor can be made"
        )))
    }

    /// The key a stream's new data keys are wrapped under: the one it names, or the
    /// account's default key. `None`: the key it names does not exist any more.
    pub async fn stream_master_key(
        &self,
        root: &RootKey,
        account: &str,
        master_key_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<MasterKey>, CatalogError> {
        match master_key_id {
            Some(id) => self.master_key(account, id).await,
            None => self
                .default_stream_key(root, account, now_ms)
                .await
                .map(Some),
        }
    }

    /// The account's key `key_id`, if it has one.
    pub async fn master_key(
        &self,
        account: &str,
        key_id: &str,
    ) -> Result<Option<MasterKey>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM kms_keys WHERE account_id = $1 AND key_id = $2"
        )))
        .bind(account)
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Up to `limit` of the account's keys after `after`, in key-id order.
    pub async fn list_master_keys(
        &self,
        account: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MasterKey>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM kms_keys WHERE account_id = $1 AND key_id > $2 \
             ORDER BY key_id LIMIT $3"
        )))
        .bind(account)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Applies a state change if the key is in `from`; returns the key after it, or
    /// the key unchanged (with `false`) when its state was not one of `from`.
    pub async fn change_master_key_state(
        &self,
        account: &str,
        key_id: &str,
        from: KeyState,
        change: StateChange,
    ) -> Result<bool, CatalogError> {
        let (state, deletion, days) = match change {
            StateChange::Enable => (KeyState::Enabled, None, None),
            StateChange::Disable => (KeyState::Disabled, None, None),
            StateChange::ScheduleDeletion {
                deletion_date_ms,
                days,
            } => (
                KeyState::PendingDeletion,
                Some(deletion_date_ms),
                Some(days),
            ),
            // AWS leaves a key whose deletion was cancelled disabled.
            StateChange::CancelDeletion => (KeyState::Disabled, None, None),
        };
        // A key without material (an EXTERNAL key never imported, or whose material
        // was deleted) goes back to PendingImport, not Disabled.
        let done = sqlx::query(
            "UPDATE kms_keys SET key_state = CASE WHEN $1 = 'Disabled' AND NOT EXISTS \
                 (SELECT 1 FROM kms_key_versions v WHERE v.key_id = kms_keys.key_id) \
                 THEN 'PendingImport' ELSE $1 END, \
             deletion_date_ms = $2, pending_window_days = $3 \
             WHERE account_id = $4 AND key_id = $5 AND key_state = $6",
        )
        .bind(state.as_str())
        .bind(deletion)
        .bind(days)
        .bind(account)
        .bind(key_id)
        .bind(from.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Turns automatic rotation on (with its period) or off.
    pub async fn set_key_rotation(
        &self,
        account: &str,
        key_id: &str,
        period_days: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, CatalogError> {
        let done = match period_days {
            Some(days) => sqlx::query(
                "UPDATE kms_keys SET rotation_enabled = 1, rotation_period_days = $1, \
                 next_rotation_ms = $2 WHERE account_id = $3 AND key_id = $4",
            )
            .bind(days)
            .bind(now_ms.saturating_add(days.saturating_mul(DAY_MS)))
            .bind(account)
            .bind(key_id),
            None => sqlx::query(
                "UPDATE kms_keys SET rotation_enabled = 0, next_rotation_ms = NULL \
                 WHERE account_id = $1 AND key_id = $2",
            )
            .bind(account)
            .bind(key_id),
        }
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds a version of fresh material and makes it the key's current one; returns
    /// the new version. `on_demand` rotations count against `ON_DEMAND_ROTATIONS_MAX`.
    pub async fn rotate_master_key(
        &self,
        root: &RootKey,
        account: &str,
        key_id: &str,
        on_demand: bool,
        now_ms: i64,
    ) -> Result<Option<u32>, CatalogError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE kms_keys SET current_version = current_version + 1, last_rotation_ms = $1, \
             on_demand_rotations = on_demand_rotations + $2, \
             next_rotation_ms = CASE WHEN rotation_enabled = 1 \
                 THEN $1 + rotation_period_days * $3 ELSE NULL END \
             WHERE account_id = $4 AND key_id = $5 \
             RETURNING current_version, on_demand_rotations",
        )
        .bind(now_ms)
        .bind(i64::from(on_demand))
        .bind(DAY_MS)
        .bind(account)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version: i64 = row.try_get("current_version")?;
        let on_demand_count: i64 = row.try_get("on_demand_rotations")?;
        if on_demand && on_demand_count > ON_DEMAND_ROTATIONS_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "The key has been rotated on demand {ON_DEMAND_ROTATIONS_MAX} times, the most allowed."
                ),
            )
            .into());
        }
        if version > KEY_VERSIONS_MAX {
            return Err(limit_exceeded("versions of this key", KEY_VERSIONS_MAX));
        }
        let version = u32::try_from(version)
            .map_err(|_| corrupt(format!("key {key_id} version {version}")))?;
        let rotation_type = if on_demand { "ON_DEMAND" } else { "AUTOMATIC" };
        insert_version(
            &mut tx,
            root,
            account,
            key_id,
            version,
            now_ms,
            None,
            Some(rotation_type),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    /// Keys (any account) whose automatic rotation is due; the rotation sweep's input.
    pub async fn keys_due_for_rotation(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT account_id, key_id FROM kms_keys WHERE rotation_enabled = 1 \
             AND key_state = 'Enabled' AND next_rotation_ms <= $1 LIMIT $2",
        )
        .bind(now_ms)
        .bind(SWEEP_KEYS_MAX)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("account_id")?, r.try_get("key_id")?)))
            .collect()
    }

    /// Unwraps version `version` of the account's key; `None` when there is no such
    /// key or version (deleted, or never made). Material that does not open is
    /// `Corrupt`.
    pub async fn master_key_material(
        &self,
        root: &RootKey,
        account: &str,
        key_id: &str,
        version: u32,
    ) -> Result<Option<DataKey>, CatalogError> {
        let Some(bytes) = self
            .master_key_secret(root, account, key_id, version)
            .await?
        else {
            return Ok(None);
        };
        let bad = || {
            corrupt(format!(
                "material of key {key_id} version {version} is not a symmetric key"
            ))
        };
        let id = DataKeyId::new(u64::from(version)).map_err(|_| bad())?;
        DataKey::from_bytes(id, &bytes).map(Some).map_err(|_| bad())
    }

    /// The versions after the first of the account's key, oldest first, after
    /// `after_version`: (version, when, `AUTOMATIC` or `ON_DEMAND`).
    pub async fn key_rotations(
        &self,
        account: &str,
        key_id: &str,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT v.version, v.created_at_ms, COALESCE(v.rotation_type, 'AUTOMATIC') AS kind \
             FROM kms_key_versions v JOIN kms_keys k ON k.key_id = v.key_id \
             WHERE k.account_id = $1 AND v.key_id = $2 AND v.version > 1 AND v.version > $3 \
             ORDER BY v.version LIMIT $4",
        )
        .bind(account)
        .bind(key_id)
        .bind(after_version)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("version")?,
                    r.try_get("created_at_ms")?,
                    r.try_get("kind")?,
                ))
            })
            .collect()
    }

    /// Unwraps version `version` of the account's key as bytes, whatever its kind;
    /// `None` when there is no such key or version.
    pub async fn master_key_secret(
        &self,
        root: &RootKey,
        account: &str,
        key_id: &str,
        version: u32,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, CatalogError> {
        let row = sqlx::query(
            "SELECT v.material_sealed FROM kms_key_versions v \
             JOIN kms_keys k ON k.key_id = v.key_id \
             WHERE k.account_id = $1 AND v.key_id = $2 AND v.version = $3",
        )
        .bind(account)
        .bind(key_id)
        .bind(i64::from(version))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.try_get("material_sealed")?;
        let bad = || {
            corrupt(format!(
                "material of key {key_id} version {version} does not open"
            ))
        };
        let bytes = root
            .open(&sealed, &material_aad(account, key_id, version))
            .map_err(|_| bad())?;
        Ok(Some(bytes))
    }

    /// Destroys every key (any account) whose deletion date has passed: its material,
    /// aliases and row go in one transaction per key. Returns the keys destroyed.
    pub async fn destroy_due_master_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let due = sqlx::query(
            "SELECT account_id, key_id FROM kms_keys WHERE key_state = 'PendingDeletion' \
             AND deletion_date_ms <= $1 LIMIT $2",
        )
        .bind(now_ms)
        .bind(SWEEP_KEYS_MAX)
        .fetch_all(self.pool())
        .await?;
        let mut destroyed = Vec::new();
        for row in &due {
            let account: String = row.try_get("account_id")?;
            let key_id: String = row.try_get("key_id")?;
            let mut tx = self.begin_write().await?;
            // INVARIANT: the key is still pending deletion and due when it goes; a
            // CancelKeyDeletion that committed first keeps it.
            let gone = sqlx::query(
                "DELETE FROM kms_keys WHERE key_id = $1 AND key_state = 'PendingDeletion' \
                 AND deletion_date_ms <= $2",
            )
            .bind(&key_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if gone.rows_affected() == 1 {
                Self::meter_key_gone(&mut tx, &key_id, Some(now_ms)).await?;
                // The cascade removes these too; said explicitly so that no material
                // outlives its key whatever the foreign-key setting of a connection.
                sqlx::query("DELETE FROM kms_key_versions WHERE key_id = $1")
                    .bind(&key_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM kms_aliases WHERE key_id = $1")
                    .bind(&key_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM kms_import_tokens WHERE key_id = $1")
                    .bind(&key_id)
                    .execute(&mut *tx)
                    .await?;
                // Its grants and its key policy go with it; both change what the
                // tenant's requests are decided by, so both count as changes.
                let grants = sqlx::query("DELETE FROM kms_grants WHERE key_id = $1")
                    .bind(&key_id)
                    .execute(&mut *tx)
                    .await?;
                if grants.rows_affected() > 0 {
                    crate::grants::count_change(&mut tx, &account).await?;
                }
                sqlx::query(
                    "INSERT INTO policy_versions (account_id, name, version, body, created_at_ms, created_by) \
                     SELECT account_id, name, version + 1, NULL, $3, 'sluice:key-deletion' \
                     FROM policy_versions WHERE account_id = $1 AND name = $2 AND body IS NOT NULL \
                     AND version = (SELECT MAX(version) FROM policy_versions \
                                    WHERE account_id = $1 AND name = $2)",
                )
                .bind(&account)
                .bind(format!("key/{key_id}"))
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                destroyed.push((account, key_id));
            }
            tx.commit().await?;
        }
        Ok(destroyed)
    }

    /// Points a new alias of the account at its key `key_id`.
    pub async fn create_alias(
        &self,
        account: &str,
        name: &str,
        key_id: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO kms_aliases (account_id, alias_name, key_id, created_at_ms, updated_at_ms) \
             SELECT $1, $2, key_id, $4, $4 FROM kms_keys WHERE account_id = $1 AND key_id = $3 \
             ON CONFLICT (account_id, alias_name) DO NOTHING",
        )
        .bind(account)
        .bind(name)
        .bind(key_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT alias_name FROM kms_aliases WHERE account_id = $1 AND alias_name = $2",
            )
            .bind(account)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match exists {
                Some(_) => Refusal::new(
                    RefusalKind::KeyExists,
                    format!(
                        "An alias with the name {} already exists",
                        alias_arn_hint(account, name)
                    ),
                ),
                None => Refusal::new(
                    RefusalKind::KeyMissing,
                    format!("Key '{key_id}' does not exist"),
                ),
            }
            .into());
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM kms_aliases WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut *tx)
                .await?;
        if count > ALIASES_PER_ACCOUNT_MAX {
            return Err(limit_exceeded("aliases", ALIASES_PER_ACCOUNT_MAX));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The key id an alias of the account points at.
    pub async fn resolve_alias(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT key_id FROM kms_aliases WHERE account_id = $1 AND alias_name = $2",
        )
        .bind(account)
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Up to `limit` of the account's aliases after `after` (by name), of one key or
    /// of all.
    pub async fn list_aliases(
        &self,
        account: &str,
        key_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Alias>, CatalogError> {
        let rows = sqlx::query(
            "SELECT alias_name, key_id, created_at_ms, updated_at_ms FROM kms_aliases \
             WHERE account_id = $1 AND alias_name > $2 AND ($3 = '' OR key_id = $3) \
             ORDER BY alias_name LIMIT $4",
        )
        .bind(account)
        .bind(after.unwrap_or(""))
        .bind(key_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Alias {
                    name: r.try_get("alias_name")?,
                    key_id: r.try_get("key_id")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    updated_at_ms: r.try_get("updated_at_ms")?,
                })
            })
            .collect()
    }

    /// Deletes an alias of the account; `false` when it has none of that name.
    pub async fn delete_alias(&self, account: &str, name: &str) -> Result<bool, CatalogError> {
        let done = sqlx::query("DELETE FROM kms_aliases WHERE account_id = $1 AND alias_name = $2")
            .bind(account)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn alias_arn_hint(account: &str, name: &str) -> String {
    format!("arn:aws:kms:*:{account}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    #[tokio::test]
    async fn keys_are_per_account_and_their_material_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let root = RootKey::from_bytes(&[5u8; 32]).unwrap();
            let key = catalog
                .create_master_key(&root, A, "first", KeyManager::Customer, 10)
                .await
                .unwrap();
            assert_eq!(key.state, KeyState::Enabled);
            assert_eq!(key.current_version, 1);
            assert!(uuid::Uuid::parse_str(&key.key_id).is_ok());
            // Another account sees no such key, nor its material.
            assert!(catalog.master_key(B, &key.key_id).await.unwrap().is_none());
            assert!(
                catalog
                    .master_key_material(&root, B, &key.key_id, 1)
                    .await
                    .unwrap()
                    .is_none()
            );
            let m1 = catalog
                .master_key_material(&root, A, &key.key_id, 1)
                .await
                .unwrap()
                .unwrap();
            let stored: Vec<u8> =
                sqlx::query_scalar("SELECT material_sealed FROM kms_key_versions")
                    .fetch_one(catalog.pool())
                    .await
                    .unwrap();
            assert!(!stored.windows(32).any(|w| w == m1.expose_bytes()));
            // Rotation adds a version; both open, and differ.
            let v2 = catalog
                .rotate_master_key(&root, A, &key.key_id, true, 20)
                .await
                .unwrap();
            assert_eq!(v2, Some(2));
            let m2 = catalog
                .master_key_material(&root, A, &key.key_id, 2)
                .await
                .unwrap()
                .unwrap();
            assert_ne!(m1.expose_bytes(), m2.expose_bytes());
            // Material moved to another version's row, or another root key, does not open.
            sqlx::query("UPDATE kms_key_versions SET material_sealed = $1 WHERE version = 2")
                .bind(stored)
                .execute(catalog.pool())
                .await
                .unwrap();
            assert!(matches!(
                catalog.master_key_material(&root, A, &key.key_id, 2).await,
                Err(CatalogError::Corrupt { .. })
            ));
            let other = RootKey::from_bytes(&[6u8; 32]).unwrap();
            assert!(
                catalog
                    .master_key_material(&other, A, &key.key_id, 1)
                    .await
                    .is_err()
            );
            // A key moved to another account does not open there either.
            sqlx::query("UPDATE kms_keys SET account_id = $1")
                .bind(B)
                .execute(catalog.pool())
                .await
                .unwrap();
            assert!(
                catalog
                    .master_key_material(&root, B, &key.key_id, 1)
                    .await
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn states_aliases_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let root = RootKey::from_bytes(&[5u8; 32]).unwrap();
            let key = catalog
                .create_master_key(&root, A, "", KeyManager::Customer, 10)
                .await
                .unwrap();
            let id = key.key_id.as_str();
            catalog.create_alias(A, "alias/one", id, 11).await.unwrap();
            let again = catalog.create_alias(A, "alias/one", id, 12).await;
            assert!(
                matches!(again, Err(CatalogError::Refused(ref e)) if e.kind == RefusalKind::KeyExists)
            );
            // The same name in another account is another alias, but only for its own keys.
            let foreign = catalog.create_alias(B, "alias/one", id, 12).await;
            assert!(
                matches!(foreign, Err(CatalogError::Refused(ref e)) if e.kind == RefusalKind::KeyMissing)
            );
            assert_eq!(
                catalog
                    .resolve_alias(A, "alias/one")
                    .await
                    .unwrap()
                    .as_deref(),
                Some(id)
            );
            assert!(
                catalog
                    .resolve_alias(B, "alias/one")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                catalog
                    .list_aliases(A, Some(id), None, 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert!(
                catalog
                    .list_aliases(A, Some("x"), None, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );

            assert!(
                catalog
                    .change_master_key_state(A, id, KeyState::Enabled, StateChange::Disable)
                    .await
                    .unwrap()
            );
            // Only from the state named.
            assert!(
                !catalog
                    .change_master_key_state(A, id, KeyState::Enabled, StateChange::Disable)
                    .await
                    .unwrap()
            );
            let schedule = StateChange::ScheduleDeletion {
                deletion_date_ms: 1_000,
                days: 7,
            };
            assert!(
                catalog
                    .change_master_key_state(A, id, KeyState::Disabled, schedule)
                    .await
                    .unwrap()
            );
            // Not due yet: nothing destroyed.
            assert!(
                catalog
                    .destroy_due_master_keys(999)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let gone = catalog.destroy_due_master_keys(1_000).await.unwrap();
            assert_eq!(gone, vec![(A.to_string(), id.to_string())]);
            assert!(catalog.master_key(A, id).await.unwrap().is_none());
            assert!(
                catalog
                    .resolve_alias(A, "alias/one")
                    .await
                    .unwrap()
                    .is_none()
            );
            let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms_key_versions")
                .fetch_one(catalog.pool())
                .await
                .unwrap();
            assert_eq!(versions, 0);
        }
    }

    #[tokio::test]
    async fn on_demand_rotations_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let root = RootKey::from_bytes(&[5u8; 32]).unwrap();
            let key = catalog
                .create_master_key(&root, A, "", KeyManager::Customer, 10)
                .await
                .unwrap();
            for i in 0..ON_DEMAND_ROTATIONS_MAX {
                catalog
                    .rotate_master_key(&root, A, &key.key_id, true, 11 + i)
                    .await
                    .unwrap();
            }
            let over = catalog
                .rotate_master_key(&root, A, &key.key_id, true, 100)
                .await;
            assert!(
                matches!(over, Err(CatalogError::Refused(ref e)) if e.kind == RefusalKind::OverLimit)
            );
            let key = catalog.master_key(A, &key.key_id).await.unwrap().unwrap();
            assert_eq!(i64::from(key.current_version), ON_DEMAND_ROTATIONS_MAX + 1);
            // Automatic rotation is not on demand.
            assert!(
                catalog
                    .set_key_rotation(A, &key.key_id, Some(90), 0)
                    .await
                    .unwrap()
            );
            assert_eq!(
                catalog
                    .keys_due_for_rotation(90 * DAY_MS)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            catalog
                .rotate_master_key(&root, A, &key.key_id, false, 90 * DAY_MS)
                .await
                .unwrap();
            assert!(
                catalog
                    .keys_due_for_rotation(90 * DAY_MS)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
