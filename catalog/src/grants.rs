//! KMS grants: who may use a key for which operations, under which encryption context.
//! Nothing here knows Cedar; the authorizer reads a tenant's grants (`tenant_grants`)
//! and turns each into a permit. Every change counts in `grant_changes`, which the
//! tenant's policy generation includes, so every process reloads them.

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::{Catalog, CatalogError};

/// Grants one key may hold (AWS allows 50,000; every grant is a permit each decision
/// of the tenant evaluates, so Sluice keeps far fewer).
pub const GRANTS_PER_KEY_MAX: i64 = 500;
/// Grants one tenant may hold over all its keys.
pub const GRANTS_PER_TENANT_MAX: i64 = 1_000;

/// How a grant's encryption-context constraint compares with a request's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// The request's context includes every pair (EncryptionContextSubset).
    Subset,
    /// The request's context is exactly the pairs (EncryptionContextEquals).
    Equals,
}

impl ConstraintKind {
    fn as_str(self) -> &'static str {
        match self {
            ConstraintKind::Subset => "subset",
            ConstraintKind::Equals => "equals",
        }
    }
}

/// One grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub account_id: String,
    pub grant_id: String,
    pub key_id: String,
    /// `""` when the grant has no name.
    pub name: String,
    pub grantee: String,
    pub retiring: Option<String>,
    pub operations: Vec<String>,
    pub constraint: Option<(ConstraintKind, Vec<(String, String)>)>,
    pub created_at_ms: i64,
}

fn grant_of(row: &sqlx::any::AnyRow) -> Result<Grant, CatalogError> {
    let operations: String = row.try_get("operations")?;
    let kind: Option<String> = row.try_get("constraint_kind")?;
    let pairs: Option<String> = row.try_get("constraint_pairs")?;
    let grant_id: String = row.try_get("grant_id")?;
    let corrupt = |what: &str| CatalogError::Corrupt {
        what: format!("grant {grant_id}: {what}"),
    };
    let constraint = match kind.as_deref() {
        None => None,
        Some(kind) => {
            let kind = match kind {
                "subset" => ConstraintKind::Subset,
                "equals" => ConstraintKind::Equals,
                _ => return Err(corrupt("unknown constraint kind")),
            };
            let map: std::collections::BTreeMap<String, String> =
                serde_json::from_str(pairs.as_deref().unwrap_or("{}"))
                    .map_err(|_| corrupt("constraint pairs are not a JSON object"))?;
            Some((kind, map.into_iter().collect()))
        }
    };
    Ok(Grant {
        account_id: row.try_get("account_id")?,
        key_id: row.try_get("key_id")?,
        name: row.try_get("name")?,
        grantee: row.try_get("grantee")?,
        retiring: row.try_get("retiring")?,
        operations: operations
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
        constraint,
        created_at_ms: row.try_get("created_at_ms")?,
        grant_id,
    })
}

// Every query that names these is a fixed text: no caller input is formatted into SQL.
const COLUMNS: &str = "account_id, grant_id, key_id, name, grantee, retiring, operations, \
                       constraint_kind, constraint_pairs, created_at_ms";

/// Counts a change to `account`'s grants (in its policy generation).
pub(crate) async fn count_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &str,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO grant_changes (account_id, changes) VALUES ($1, 1) \
         ON CONFLICT (account_id) DO UPDATE SET changes = grant_changes.changes + 1",
    )
    .bind(account)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Catalog {
    /// Stores a grant on the account's key, or, when a grant with the same name, key,
    /// principals, operations and constraint exists, answers that one (CreateGrant is
    /// idempotent by name). Refused past the limits.
    pub async fn create_grant(&self, grant: &Grant) -> Result<Grant, CatalogError> {
        let mut tx = self.begin_write().await?;
        let (kind, pairs) = match &grant.constraint {
            None => (None, None),
            Some((kind, pairs)) => {
                let map: std::collections::BTreeMap<&str, &str> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                (
                    Some(kind.as_str()),
                    Some(serde_json::to_string(&map).expect("a string map serializes")),
                )
            }
        };
        let operations = grant.operations.join(",");
        if !grant.name.is_empty() {
            let same = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM kms_grants WHERE account_id = $1 AND key_id = $2 \
                 AND name = $3 AND grantee = $4 AND COALESCE(retiring, '') = $5 \
                 AND operations = $6 AND COALESCE(constraint_kind, '') = $7 \
                 AND COALESCE(constraint_pairs, '') = $8"
            )))
            .bind(&grant.account_id)
            .bind(&grant.key_id)
            .bind(&grant.name)
            .bind(&grant.grantee)
            .bind(grant.retiring.as_deref().unwrap_or(""))
            .bind(&operations)
            .bind(kind.unwrap_or(""))
            .bind(pairs.as_deref().unwrap_or(""))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = same {
                return grant_of(&row);
            }
        }
        // The write comes first (SQLite's write lock), then the counts are read inside
        // the same transaction.
        let inserted = sqlx::query(
            "INSERT INTO kms_grants (account_id, grant_id, key_id, name, grantee, retiring, \
             operations, constraint_kind, constraint_pairs, created_at_ms) \
             SELECT $1, $2, key_id, $4, $5, $6, $7, $8, $9, $10 FROM kms_keys \
             WHERE account_id = $1 AND key_id = $3",
        )
        .bind(&grant.account_id)
        .bind(&grant.grant_id)
        .bind(&grant.key_id)
        .bind(&grant.name)
        .bind(&grant.grantee)
        .bind(grant.retiring.as_deref())
        .bind(&operations)
        .bind(kind)
        .bind(pairs.as_deref())
        .bind(grant.created_at_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Refusal::new(
                RefusalKind::KeyMissing,
                format!("Key '{}' does not exist", grant.key_id),
            )
            .into());
        }
        let on_key: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM kms_grants WHERE account_id = $1 AND key_id = $2",
        )
        .bind(&grant.account_id)
        .bind(&grant.key_id)
        .fetch_one(&mut *tx)
        .await?;
        let in_tenant: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM kms_grants WHERE account_id = $1")
                .bind(&grant.account_id)
                .fetch_one(&mut *tx)
                .await?;
        if on_key > GRANTS_PER_KEY_MAX || in_tenant > GRANTS_PER_TENANT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "A KMS key holds at most {GRANTS_PER_KEY_MAX} grants and an account at most \
                     {GRANTS_PER_TENANT_MAX}."
                ),
            )
            .into());
        }
        count_change(&mut tx, &grant.account_id).await?;
        tx.commit().await?;
        Ok(grant.clone())
    }

    /// One grant of the account, if it exists.
    pub async fn grant(
        &self,
        account: &str,
        grant_id: &str,
    ) -> Result<Option<Grant>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM kms_grants WHERE account_id = $1 AND grant_id = $2"
        )))
        .bind(account)
        .bind(grant_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(grant_of).transpose()
    }

    /// Removes a grant (RetireGrant, RevokeGrant); false when there was none.
    pub async fn delete_grant(&self, account: &str, grant_id: &str) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM kms_grants WHERE account_id = $1 AND grant_id = $2")
            .bind(account)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        count_change(&mut tx, account).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A page of a key's grants, oldest first, after the grant id `after`; optionally
    /// only one grant or one grantee's.
    pub async fn key_grants(
        &self,
        account: &str,
        key_id: &str,
        after: Option<&str>,
        grant_id: Option<&str>,
        grantee: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Grant>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM kms_grants WHERE account_id = $1 AND key_id = $2 \
             AND grant_id > $3 AND ($4 = '' OR grant_id = $4) AND ($5 = '' OR grantee = $5) \
             ORDER BY grant_id LIMIT $6"
        )))
        .bind(account)
        .bind(key_id)
        .bind(after.unwrap_or(""))
        .bind(grant_id.unwrap_or(""))
        .bind(grantee.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_of).collect()
    }

    /// A page of the account's grants that `retiring` may retire, by grant id.
    pub async fn retirable_grants(
        &self,
        account: &str,
        retiring: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Grant>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM kms_grants WHERE account_id = $1 AND retiring = $2 \
             AND grant_id > $3 ORDER BY grant_id LIMIT $4"
        )))
        .bind(account)
        .bind(retiring)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_of).collect()
    }

    /// Every grant of the tenant (at most `GRANTS_PER_TENANT_MAX`), for the authorizer.
    pub async fn tenant_grants(&self, account: &str) -> Result<Vec<Grant>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM kms_grants WHERE account_id = $1 ORDER BY grant_id LIMIT $2"
        )))
        .bind(account)
        .bind(GRANTS_PER_TENANT_MAX)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(grant_of).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masterkeys::KeyManager;
    use crate::rootkey::RootKey;

    #[tokio::test]
    async fn grants_are_stored_listed_and_counted_in_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let account = "123456789012";
            let root = RootKey::from_bytes(&[5u8; 32]).unwrap();
            let key = catalog
                .create_master_key(&root, account, "", KeyManager::Customer, 1)
                .await
                .unwrap();
            let before = catalog.policy_generation(account).await.unwrap();
            let grant = Grant {
                account_id: account.into(),
                grant_id: "g1".into(),
                key_id: key.key_id.clone(),
                name: "n".into(),
                grantee: "arn:aws:iam::123456789012:user/app".into(),
                retiring: Some("arn:aws:iam::123456789012:user/ops".into()),
                operations: vec!["Decrypt".into(), "Encrypt".into()],
                constraint: Some((ConstraintKind::Subset, vec![("a".into(), "b".into())])),
                created_at_ms: 5,
            };
            assert_eq!(catalog.create_grant(&grant).await.unwrap(), grant);
            // The same grant by name again is the first one.
            let again = Grant {
                grant_id: "g2".into(),
                ..grant.clone()
            };
            assert_eq!(catalog.create_grant(&again).await.unwrap().grant_id, "g1");
            assert!(catalog.policy_generation(account).await.unwrap() > before);
            assert_eq!(
                catalog.tenant_grants(account).await.unwrap(),
                vec![grant.clone()]
            );
            let retirable = catalog
                .retirable_grants(account, "arn:aws:iam::123456789012:user/ops", None, 10)
                .await
                .unwrap();
            assert_eq!(retirable.len(), 1);
            let generation = catalog.policy_generation(account).await.unwrap();
            assert!(catalog.delete_grant(account, "g1").await.unwrap());
            assert!(!catalog.delete_grant(account, "g1").await.unwrap());
            assert!(catalog.policy_generation(account).await.unwrap() > generation);
            assert!(catalog.tenant_grants(account).await.unwrap().is_empty());
            // A grant on a key the account does not have is refused.
            let stray = Grant {
                key_id: "no-such-key".into(),
                grant_id: "g3".into(),
                name: String::new(),
                ..grant.clone()
            };
            let refused = catalog.create_grant(&stray).await.unwrap_err();
            assert!(refused.is(RefusalKind::KeyMissing));
            // A key holds at most GRANTS_PER_KEY_MAX grants; the one past it is refused
            // and not stored.
            for i in 0..GRANTS_PER_KEY_MAX {
                let one = Grant {
                    grant_id: format!("limit{i:04}"),
                    name: String::new(),
                    ..grant.clone()
                };
                catalog.create_grant(&one).await.unwrap();
            }
            let over = Grant {
                grant_id: "limit-over".into(),
                name: String::new(),
                ..grant.clone()
            };
            let refused = catalog.create_grant(&over).await.unwrap_err();
            assert!(refused.is(RefusalKind::OverLimit), "{refused}");
            assert_eq!(
                catalog.tenant_grants(account).await.unwrap().len() as i64,
                GRANTS_PER_KEY_MAX
            );
        }
    }
}
