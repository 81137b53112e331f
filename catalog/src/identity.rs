//! Tenants, principals and access keys.
//!
//! A tenant is an account with a 12-digit id. Principals (users and roles) belong to
//! one tenant; access keys belong to one principal. An access key's secret is shown
//! once, when it is made, and is stored only sealed under the root key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::refusal::{Refusal, RefusalKind};
use sqlx::Row;
use sqlx::any::AnyRow;
use zeroize::Zeroizing;

use crate::rootkey::RootKey;
use crate::{Catalog, CatalogError};

/// The tenant made on first start, which administers the others.
pub const BOOTSTRAP_TENANT: &str = "admin";
pub const BOOTSTRAP_PRINCIPAL: &str = "admin";
/// Tenants, principals per tenant and keys per principal, at most.
pub const TENANTS_MAX: i64 = 10_000;
pub const PRINCIPALS_PER_TENANT_MAX: i64 = 1_000;
pub const ACCESS_KEYS_PER_PRINCIPAL_MAX: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(PrincipalKind::User),
            "role" => Some(PrincipalKind::Role),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub account_id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub account_id: String,
    pub kind: PrincipalKind,
    pub name: String,
    pub created_at_ms: i64,
    pub disabled: bool,
}

impl Principal {
    /// `arn:aws:iam::<account>:user/<name>`, as IAM names its principals.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:{}/{}",
            self.account_id,
            self.kind.as_str(),
            self.name
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    pub principal_id: i64,
    pub active: bool,
    pub created_at_ms: i64,
}

/// An access key as the authenticator needs it: whose it is, and its secret.
pub struct ResolvedAccessKey {
    pub principal: Principal,
    pub secret: Zeroizing<String>,
}

/// A new key: the only time its secret leaves the server.
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

fn random_chars(alphabet: &[u8], len: usize) -> String {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    // 256 is a multiple of neither alphabet length, so reject the top of the range to
    // keep every character equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut pool = bytes.iter().copied().collect::<Vec<u8>>();
    while out.len() < len {
        match pool.pop() {
            Some(b) if (b as usize) < limit => {
                out.push(alphabet[b as usize % alphabet.len()] as char)
            }
            Some(_) => {}
            None => {
                pool.resize(len, 0);
                aws_lc_rs::rand::fill(&mut pool).expect("system randomness");
            }
        }
    }
    pool.iter_mut().for_each(|b| *b = 0);
    out
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGITS: &[u8] = b"0123456789";

/// Names of tenants and principals: 1..=64 characters of `[A-Za-z0-9+=,.@_-]`, as IAM.
pub fn validate_name(name: &str, member: &str) -> Result<(), Refusal> {
    // The protocol's length check, in the catalog's own terms.
    protocol::validate::string_length(name, member, 1, 64)
        .map_err(|e| Refusal::new(RefusalKind::Invalid, e.message))?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        return Err(Refusal::validation(
            name,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        account_id: row.try_get("account_id")?,
        name: row
            .try_get::<Option<String>, _>("tenant_name")?
            .unwrap_or_default(),
        created_at_ms: row.try_get("created_at_ms")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at_ms")?.is_some(),
    })
}

fn principal_from_row(row: &AnyRow) -> Result<Principal, CatalogError> {
    let kind: String = row.try_get("kind")?;
    Ok(Principal {
        id: row.try_get("principal_id")?,
        account_id: row.try_get("account_id")?,
        kind: PrincipalKind::parse(&kind).ok_or_else(|| CatalogError::Corrupt {
            what: format!("principal kind {kind:?}"),
        })?,
        name: row.try_get("principal_name")?,
        created_at_ms: row.try_get("created_at_ms")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at_ms")?.is_some(),
    })
}

/// `ResourceNotFoundException` when a statement touched no row.
fn found(rows: u64, message: impl FnOnce() -> String) -> Result<(), CatalogError> {
    if rows == 0 {
        return Err(Refusal::new(RefusalKind::Missing, message()).into());
    }
    Ok(())
}

fn access_key_not_found(access_key_id: &str) -> String {
    format!("The Access Key with id {access_key_id} cannot be found.")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Catalog {
    /// Makes a tenant with a fresh 12-digit account id, or the one given.
    pub async fn create_tenant(
        &self,
        name: &str,
        account_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Tenant, CatalogError> {
        validate_name(name, "tenantName")?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE tenant_name IS NOT NULL")
                .fetch_one(self.pool())
                .await?;
        if count >= TENANTS_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A deployment holds at most {TENANTS_MAX} tenants."),
            )
            .into());
        }
        for _ in 0..8 {
            let id = account_id.map(str::to_string).unwrap_or_else(|| {
                // Account ids never start with 0 here, so they cannot be mistaken for
                // the bootstrap default 000000000000.
                let mut id = random_chars(DIGITS, 12);
                if id.starts_with('0') {
                    id.replace_range(0..1, "1");
                }
                id
            });
            // An account row may exist already without a tenant (streams made before
            // tenants existed); it becomes the tenant.
            let result = sqlx::query(
                "INSERT INTO accounts (account_id, tenant_name, created_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id) DO UPDATE SET tenant_name = excluded.tenant_name, \
                 created_at_ms = excluded.created_at_ms WHERE accounts.tenant_name IS NULL \
                 RETURNING account_id",
            )
            .bind(&id)
            .bind(name)
            .bind(now_ms)
            .fetch_optional(self.pool())
            .await;
            match result {
                Ok(Some(_)) => {
                    return Ok(Tenant {
                        account_id: id,
                        name: name.to_string(),
                        created_at_ms: now_ms,
                        disabled: false,
                    });
                }
                Err(e) if is_unique_violation(&e) => {
                    return Err(Refusal::new(
                        RefusalKind::InUse,
                        format!("A tenant named {name} already exists."),
                    )
                    .into());
                }
                Err(e) => return Err(e.into()),
                // The account id is taken by another tenant.
                Ok(None) if account_id.is_some() => {
                    return Err(Refusal::new(
                        RefusalKind::InUse,
                        format!("Account {id} already belongs to a tenant."),
                    )
                    .into());
                }
                Ok(None) => continue,
            }
        }
        Err(CatalogError::Corrupt {
            what: "no free account id after 8 tries".into(),
        })
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, CatalogError> {
        let rows = sqlx::query(
            "SELECT account_id, tenant_name, created_at_ms, disabled_at_ms FROM accounts \
             WHERE tenant_name IS NOT NULL ORDER BY account_id LIMIT $1",
        )
        .bind(TENANTS_MAX)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(tenant_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn tenant(&self, account_id: &str) -> Result<Tenant, CatalogError> {
        let row = sqlx::query(
            "SELECT account_id, tenant_name, created_at_ms, disabled_at_ms FROM accounts \
             WHERE account_id = $1 AND tenant_name IS NOT NULL",
        )
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| {
            Refusal::new(
                RefusalKind::Missing,
                format!("Tenant {account_id} not found."),
            )
        })?;
        Ok(tenant_from_row(&row)?)
    }

    /// Disables or enables a tenant; a disabled tenant's keys authenticate nobody.
    pub async fn set_tenant_disabled(
        &self,
        account_id: &str,
        disabled_at_ms: Option<i64>,
    ) -> Result<(), CatalogError> {
        let updated = sqlx::query(
            "UPDATE accounts SET disabled_at_ms = $2 WHERE account_id = $1 AND tenant_name IS NOT NULL",
        )
        .bind(account_id)
        .bind(disabled_at_ms)
        .execute(self.pool())
        .await?;
        found(updated.rows_affected(), || {
            format!("Tenant {account_id} not found.")
        })
    }

    pub async fn create_principal(
        &self,
        account_id: &str,
        kind: PrincipalKind,
        name: &str,
        now_ms: i64,
    ) -> Result<Principal, CatalogError> {
        validate_name(name, "principalName")?;
        self.tenant(account_id).await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM principals WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(self.pool())
                .await?;
        if count >= PRINCIPALS_PER_TENANT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A tenant holds at most {PRINCIPALS_PER_TENANT_MAX} principals."),
            )
            .into());
        }
        let inserted = sqlx::query(
            "INSERT INTO principals (account_id, kind, principal_name, created_at_ms) VALUES ($1, $2, $3, $4) \
             RETURNING principal_id",
        )
        .bind(account_id)
        .bind(kind.as_str())
        .bind(name)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await;
        match inserted {
            Ok(row) => Ok(Principal {
                id: row.try_get("principal_id")?,
                account_id: account_id.to_string(),
                kind,
                name: name.to_string(),
                created_at_ms: now_ms,
                disabled: false,
            }),
            Err(e) if is_unique_violation(&e) => Err(Refusal::new(
                RefusalKind::InUse,
                format!(
                    "A {} named {name} already exists in tenant {account_id}.",
                    kind.as_str()
                ),
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn principal(
        &self,
        account_id: &str,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Principal, CatalogError> {
        let row = sqlx::query(
            "SELECT principal_id, account_id, kind, principal_name, created_at_ms, disabled_at_ms \
             FROM principals WHERE account_id = $1 AND kind = $2 AND principal_name = $3",
        )
        .bind(account_id)
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| {
            Refusal::new(
                RefusalKind::Missing,
                format!("No {} named {name} in tenant {account_id}.", kind.as_str()),
            )
        })?;
        principal_from_row(&row)
    }

    /// Disables or enables a principal; a disabled principal's keys and tokens
    /// authenticate nobody.
    pub async fn set_principal_disabled(
        &self,
        principal: &Principal,
        disabled_at_ms: Option<i64>,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE principals SET disabled_at_ms = $2 WHERE principal_id = $1")
            .bind(principal.id)
            .bind(disabled_at_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes a principal and its access keys. A tenant's `user/admin` stays: it is the
    /// tenant's way back in.
    pub async fn delete_principal(&self, principal: &Principal) -> Result<(), CatalogError> {
        if principal.kind == PrincipalKind::User && principal.name == BOOTSTRAP_PRINCIPAL {
            return Err(Refusal::bad_argument(
                "A tenant's admin user cannot be deleted; disable its keys instead.",
            )
            .into());
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM access_keys WHERE principal_id = $1")
            .bind(principal.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM principals WHERE principal_id = $1")
            .bind(principal.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_principals(&self, account_id: &str) -> Result<Vec<Principal>, CatalogError> {
        let rows = sqlx::query(
            "SELECT principal_id, account_id, kind, principal_name, created_at_ms, disabled_at_ms \
             FROM principals WHERE account_id = $1 ORDER BY kind, principal_name LIMIT $2",
        )
        .bind(account_id)
        .bind(PRINCIPALS_PER_TENANT_MAX)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(principal_from_row).collect()
    }

    /// Makes an access key for a principal; its secret is returned this once.
    pub async fn create_access_key(
        &self,
        root: &RootKey,
        principal: &Principal,
        now_ms: i64,
    ) -> Result<NewAccessKey, CatalogError> {
        let key = NewAccessKey {
            access_key_id: format!("AKIA{}", random_chars(BASE32, 16)),
            secret_access_key: Zeroizing::new(random_chars(SECRET_ALPHABET, 40)),
        };
        self.import_access_key(root, principal, &key, now_ms)
            .await?;
        Ok(key)
    }

    /// Stores a key pair made elsewhere (the fixed keys of an emulator a team moves
    /// from, or AWS's documentation examples in tests). Ids are 3..=128 characters of
    /// `[A-Za-z0-9]`; secrets 4..=128 printable ASCII characters.
    pub async fn import_access_key(
        &self,
        root: &RootKey,
        principal: &Principal,
        key: &NewAccessKey,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let id = &key.access_key_id;
        if !(3..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Refusal::validation(
                id,
                "accessKeyId",
                "Member must satisfy regular expression pattern: [A-Za-z0-9]{3,128}",
            )
            .into());
        }
        let secret = key.secret_access_key.as_str();
        if !(4..=128).contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Refusal::bad_argument(
                "A secret access key is 4 to 128 printable ASCII characters.",
            )
            .into());
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE principal_id = $1")
                .bind(principal.id)
                .fetch_one(self.pool())
                .await?;
        if count >= ACCESS_KEYS_PER_PRINCIPAL_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_PRINCIPAL_MAX}"
                ),
            )
            .into());
        }
        let sealed = root.seal(secret.as_bytes(), id.as_bytes());
        let inserted = sqlx::query(
            "INSERT INTO access_keys (access_key_id, principal_id, secret_sealed, status, created_at_ms) \
             VALUES ($1, $2, $3, 'Active', $4)",
        )
        .bind(id)
        .bind(principal.id)
        .bind(sealed)
        .bind(now_ms)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Refusal::new(
                RefusalKind::InUse,
                format!("The access key {id} already exists."),
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_access_keys(
        &self,
        principal_id: i64,
    ) -> Result<Vec<AccessKeyInfo>, CatalogError> {
        let rows = sqlx::query(
            "SELECT access_key_id, principal_id, status, created_at_ms FROM access_keys \
             WHERE principal_id = $1 ORDER BY access_key_id",
        )
        .bind(principal_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccessKeyInfo {
                    access_key_id: r.try_get("access_key_id")?,
                    principal_id: r.try_get("principal_id")?,
                    active: r.try_get::<String, _>("status")? == "Active",
                    created_at_ms: r.try_get("created_at_ms")?,
                })
            })
            .collect()
    }

    /// Sets a key of this principal Active or Inactive.
    pub async fn set_access_key_active(
        &self,
        principal_id: i64,
        access_key_id: &str,
        active: bool,
    ) -> Result<(), CatalogError> {
        let updated = sqlx::query(
            "UPDATE access_keys SET status = $3 WHERE principal_id = $1 AND access_key_id = $2",
        )
        .bind(principal_id)
        .bind(access_key_id)
        .bind(if active { "Active" } else { "Inactive" })
        .execute(self.pool())
        .await?;
        found(updated.rows_affected(), || {
            access_key_not_found(access_key_id)
        })
    }

    pub async fn delete_access_key(
        &self,
        principal_id: i64,
        access_key_id: &str,
    ) -> Result<(), CatalogError> {
        let deleted =
            sqlx::query("DELETE FROM access_keys WHERE principal_id = $1 AND access_key_id = $2")
                .bind(principal_id)
                .bind(access_key_id)
                .execute(self.pool())
                .await?;
        found(deleted.rows_affected(), || {
            access_key_not_found(access_key_id)
        })
    }

    /// The principal and secret behind an access key, if the key, its principal and
    /// its tenant are all enabled.
    pub async fn resolve_access_key(
        &self,
        root: &RootKey,
        access_key_id: &str,
    ) -> Result<Option<ResolvedAccessKey>, CatalogError> {
        let row = sqlx::query(
            "SELECT k.secret_sealed, p.principal_id, p.account_id, p.kind, p.principal_name, \
                    p.created_at_ms, p.disabled_at_ms \
             FROM access_keys k JOIN principals p ON p.principal_id = k.principal_id \
             JOIN accounts a ON a.account_id = p.account_id \
             WHERE k.access_key_id = $1 AND k.status = 'Active' \
               AND p.disabled_at_ms IS NULL AND a.disabled_at_ms IS NULL",
        )
        .bind(access_key_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.try_get("secret_sealed")?;
        let secret =
            root.open(&sealed, access_key_id.as_bytes())
                .map_err(|_| CatalogError::Corrupt {
                    what: format!(
                        "the secret of access key {access_key_id} does not open under this root key"
                    ),
                })?;
        let secret = Zeroizing::new(String::from_utf8(secret.to_vec()).map_err(|_| {
            CatalogError::Corrupt {
                what: format!("the secret of access key {access_key_id} is not text"),
            }
        })?);
        Ok(Some(ResolvedAccessKey {
            principal: principal_from_row(&row)?,
            secret,
        }))
    }

    /// On first start: the administering tenant, its admin user and one access key.
    /// Returns the key when it was made now; `None` when the admin already has one.
    pub async fn bootstrap(
        &self,
        root: &RootKey,
        account_id: &str,
        now_ms: i64,
    ) -> Result<Option<NewAccessKey>, CatalogError> {
        self.bootstrap_with(root, account_id, None, now_ms).await
    }

    /// `bootstrap`, giving the admin `given` (from an operator's credentials file)
    /// rather than a random key when it has none; a given key is never returned.
    pub async fn bootstrap_with(
        &self,
        root: &RootKey,
        account_id: &str,
        given: Option<&NewAccessKey>,
        now_ms: i64,
    ) -> Result<Option<NewAccessKey>, CatalogError> {
        match self
            .create_tenant(BOOTSTRAP_TENANT, Some(account_id), now_ms)
            .await
        {
            Ok(_) => {}
            Err(CatalogError::Refused(e)) if e.kind == RefusalKind::InUse => {
                let tenant = self.tenant(account_id).await.map_err(|_| CatalogError::Corrupt {
                    what: format!(
                        "the administering tenant exists under another account id than {account_id}; \
                         start with the account id it was made with (--account-id)"
                    ),
                })?;
                if tenant.name != BOOTSTRAP_TENANT {
                    return Err(CatalogError::Corrupt {
                        what: format!(
                            "account {account_id} belongs to tenant {:?}, not the bootstrap tenant",
                            tenant.name
                        ),
                    });
                }
            }
            Err(e) => return Err(e),
        }
        let admin = match self
            .create_principal(account_id, PrincipalKind::User, BOOTSTRAP_PRINCIPAL, now_ms)
            .await
        {
            Ok(p) => p,
            Err(CatalogError::Refused(e)) if e.kind == RefusalKind::InUse => {
                self.principal(account_id, PrincipalKind::User, BOOTSTRAP_PRINCIPAL)
                    .await?
            }
            Err(e) => return Err(e),
        };
        if !self.list_access_keys(admin.id).await?.is_empty() {
            return Ok(None);
        }
        match given {
            Some(key) => {
                self.import_access_key(root, &admin, key, now_ms).await?;
                Ok(None)
            }
            None => self.create_access_key(root, &admin, now_ms).await.map(Some),
        }
    }
}

/// Reads the `[default]` profile of an AWS shared-credentials file.
pub fn read_credentials_file(path: &Path) -> std::io::Result<NewAccessKey> {
    let text = Zeroizing::new(fs::read_to_string(path)?);
    let (mut id, mut secret) = (None, None);
    let mut in_default = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
        } else if in_default && let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(Zeroizing::new(v.trim().to_string())),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(NewAccessKey {
            access_key_id,
            secret_access_key,
        }),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no [default] aws_access_key_id and aws_secret_access_key",
        )),
    }
}

/// Writes an AWS shared-credentials file (mode 0600) holding one profile.
pub fn write_credentials_file(path: &Path, key: &NewAccessKey) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let contents = Zeroizing::new(format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id,
        key.secret_access_key.as_str()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_aws_shapes() {
        let id = format!("AKIA{}", random_chars(BASE32, 16));
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| BASE32.contains(&b)));
        let secret = random_chars(SECRET_ALPHABET, 40);
        assert_eq!(secret.len(), 40);
        assert_ne!(secret, random_chars(SECRET_ALPHABET, 40));
    }

    #[tokio::test]
    async fn tenants_principals_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        let root = RootKey::from_bytes(&[3u8; 32]).unwrap();
        let key = catalog
            .bootstrap(&root, "000000000000", 1)
            .await
            .unwrap()
            .unwrap();
        assert!(
            catalog
                .bootstrap(&root, "000000000000", 2)
                .await
                .unwrap()
                .is_none()
        );
        let resolved = catalog
            .resolve_access_key(&root, &key.access_key_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resolved.secret.as_str(), key.secret_access_key.as_str());
        assert_eq!(
            resolved.principal.arn(),
            "arn:aws:iam::000000000000:user/admin"
        );

        // Nothing in the database reads as the secret.
        let raw: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM access_keys")
            .fetch_one(catalog.pool())
            .await
            .unwrap();
        assert!(
            !raw.windows(40)
                .any(|w| w == key.secret_access_key.as_bytes())
        );

        let tenant = catalog.create_tenant("team-a", None, 3).await.unwrap();
        assert_eq!(tenant.account_id.len(), 12);
        assert!(matches!(
            catalog.create_tenant("team-a", None, 4).await,
            Err(CatalogError::Refused(e)) if e.kind == RefusalKind::InUse
        ));
        let alice = catalog
            .create_principal(&tenant.account_id, PrincipalKind::User, "alice", 5)
            .await
            .unwrap();
        let k = catalog.create_access_key(&root, &alice, 6).await.unwrap();
        catalog.create_access_key(&root, &alice, 6).await.unwrap();
        assert!(catalog.create_access_key(&root, &alice, 6).await.is_err());
        catalog
            .set_access_key_active(alice.id, &k.access_key_id, false)
            .await
            .unwrap();
        assert!(
            catalog
                .resolve_access_key(&root, &k.access_key_id)
                .await
                .unwrap()
                .is_none()
        );
        catalog
            .set_access_key_active(alice.id, &k.access_key_id, true)
            .await
            .unwrap();
        assert!(
            catalog
                .resolve_access_key(&root, &k.access_key_id)
                .await
                .unwrap()
                .is_some()
        );
        catalog
            .set_tenant_disabled(&tenant.account_id, Some(7))
            .await
            .unwrap();
        assert!(
            catalog
                .resolve_access_key(&root, &k.access_key_id)
                .await
                .unwrap()
                .is_none()
        );
        catalog
            .set_tenant_disabled(&tenant.account_id, None)
            .await
            .unwrap();
        catalog
            .delete_access_key(alice.id, &k.access_key_id)
            .await
            .unwrap();
        assert!(
            catalog
                .resolve_access_key(&root, &k.access_key_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            catalog
                .resolve_access_key(&root, "AKIANOSUCHKEY0000000")
                .await
                .unwrap()
                .is_none()
        );
        let other_root = RootKey::from_bytes(&[4u8; 32]).unwrap();
        assert!(
            catalog
                .resolve_access_key(&other_root, &key.access_key_id)
                .await
                .is_err()
        );
    }
}
