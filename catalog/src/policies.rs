//! Tenant-authored policies, versioned: every `apply` stores a new version, a deletion
//! is a version without a body, and a rollback stores an older body again. Nothing
//! here parses Cedar; the data plane validates a body before it is stored.

use crate::refusal::{Refusal, RefusalKind};
use sqlx::Row;

use crate::{Catalog, CatalogError};

/// Policy documents a tenant may have at once (named, attached and resource policies).
pub const POLICIES_PER_TENANT_MAX: i64 = 200;
/// The largest policy document, in bytes (Kinesis resource policies allow 20 KiB).
pub const POLICY_BYTES_MAX: usize = 20 * 1024;
/// Versions kept per document; older ones stay but `history` lists this many newest.
pub const HISTORY_MAX: i64 = 100;

/// One stored version of a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub name: String,
    pub version: i64,
    /// `None`: this version deleted the document.
    pub body: Option<String>,
    pub created_at_ms: i64,
    pub created_by: String,
}

/// A policy document's name: letters, digits and `-_.:/`, 1..=256 characters.
pub fn validate_policy_name(name: &str) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Refusal::validation(
            name,
            "policyName",
            "Member must have length between 1 and 256 and satisfy regular expression pattern: [a-zA-Z0-9_.:/-]+",
        ))
    }
}

/// A policy document holds at most `POLICY_BYTES_MAX` bytes; checked before anything
/// parses it.
pub fn check_policy_size(body: &str) -> Result<(), Refusal> {
    if body.len() > POLICY_BYTES_MAX {
        return Err(Refusal::new(
            RefusalKind::OverLimit,
            format!("A policy document holds at most {POLICY_BYTES_MAX} bytes."),
        ));
    }
    Ok(())
}

fn version_of(row: &sqlx::any::AnyRow) -> Result<PolicyVersion, CatalogError> {
    Ok(PolicyVersion {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        body: row.try_get("body")?,
        created_at_ms: row.try_get("created_at_ms")?,
        created_by: row.try_get("created_by")?,
    })
}

impl Catalog {
    /// Stores `body` (or a deletion, `None`) as the next version of `name`.
    pub async fn put_policy_version(
        &self,
        account_id: &str,
        name: &str,
        body: Option<&str>,
        created_by: &str,
        now_ms: i64,
    ) -> Result<PolicyVersion, CatalogError> {
        validate_policy_name(name)?;
        if let Some(body) = body {
            check_policy_size(body)?;
        }
        let mut tx = self.begin_write().await?;
        // The write comes first, so SQLite takes its write lock before reading; the
        // version is the next after the newest, inside the same transaction.
        let inserted = sqlx::query(
            "INSERT INTO policy_versions (account_id, name, version, body, created_at_ms, created_by) \
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5 FROM policy_versions \
             WHERE account_id = $1 AND name = $2 \
             RETURNING version",
        )
        .bind(account_id)
        .bind(name)
        .bind(body)
        .bind(now_ms)
        .bind(created_by)
        .fetch_one(&mut *tx)
        .await;
        let version: i64 = match inserted {
            Ok(row) => row.try_get("version")?,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(Refusal::new(
                    RefusalKind::InUse,
                    format!("Policy {name} changed concurrently; retry."),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        if version == 1 && body.is_none() {
            return Err(
                Refusal::new(RefusalKind::Missing, format!("No policy named {name}.")).into(),
            );
        }
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM policy_versions p WHERE account_id = $1 AND body IS NOT NULL \
             AND version = (SELECT MAX(version) FROM policy_versions q \
                            WHERE q.account_id = p.account_id AND q.name = p.name)",
        )
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        if active > POLICIES_PER_TENANT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A tenant holds at most {POLICIES_PER_TENANT_MAX} policy documents."),
            )
            .into());
        }
        tx.commit().await?;
        Ok(PolicyVersion {
            name: name.to_string(),
            version,
            body: body.map(str::to_string),
            created_at_ms: now_ms,
            created_by: created_by.to_string(),
        })
    }

    /// The newest version of every document that is not deleted, by name.
    pub async fn active_policies(
        &self,
        account_id: &str,
    ) -> Result<Vec<PolicyVersion>, CatalogError> {
        let rows = sqlx::query(
            "SELECT name, version, body, created_at_ms, created_by FROM policy_versions p \
             WHERE account_id = $1 AND body IS NOT NULL \
             AND version = (SELECT MAX(version) FROM policy_versions q \
                            WHERE q.account_id = p.account_id AND q.name = p.name) \
             ORDER BY name",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_of).collect()
    }

    /// One version of a document, or its newest when `version` is `None`.
    pub async fn policy_version(
        &self,
        account_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<PolicyVersion, CatalogError> {
        let row = sqlx::query(
            "SELECT name, version, body, created_at_ms, created_by FROM policy_versions \
             WHERE account_id = $1 AND name = $2 AND ($3 < 0 OR version = $3) \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(name)
        .bind(version.unwrap_or(-1))
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => version_of(&row),
            None => Err(Refusal::new(
                RefusalKind::Missing,
                match version {
                    Some(v) => format!("Policy {name} has no version {v}."),
                    None => format!("No policy named {name}."),
                },
            )
            .into()),
        }
    }

    /// The newest versions of a document, newest first.
    pub async fn policy_history(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Vec<PolicyVersion>, CatalogError> {
        let rows = sqlx::query(
            "SELECT name, version, body, created_at_ms, created_by FROM policy_versions \
             WHERE account_id = $1 AND name = $2 ORDER BY version DESC LIMIT $3",
        )
        .bind(account_id)
        .bind(name)
        .bind(HISTORY_MAX)
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            return Err(
                Refusal::new(RefusalKind::Missing, format!("No policy named {name}.")).into(),
            );
        }
        rows.iter().map(version_of).collect()
    }

    /// A number that changes whenever any of the tenant's documents or KMS grants
    /// changes: the count of versions (versions are only ever added) and of grant
    /// changes (only ever counted up).
    pub async fn policy_generation(&self, account_id: &str) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM policy_versions WHERE account_id = $1) + \
             COALESCE((SELECT changes FROM grant_changes WHERE account_id = $1), 0)",
        )
        .bind(account_id)
        .fetch_one(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_accumulate_and_deletion_hides_a_document() {
        let dir = tempfile::tempdir().unwrap();
        for (i, catalog) in crate::testing::catalogs(dir.path())
            .await
            .into_iter()
            .enumerate()
        {
            let label = ["sqlite", "postgres"][i];
            let a = "111111111111";
            let v1 = catalog
                .put_policy_version(
                    a,
                    "writers",
                    Some("permit(principal, action, resource);"),
                    "alice",
                    1,
                )
                .await
                .unwrap();
            assert_eq!(v1.version, 1, "{label}");
            let v2 = catalog
                .put_policy_version(
                    a,
                    "writers",
                    Some("forbid(principal, action, resource);"),
                    "alice",
                    2,
                )
                .await
                .unwrap();
            assert_eq!(v2.version, 2, "{label}");
            catalog
                .put_policy_version("222222222222", "writers", Some("x"), "bob", 3)
                .await
                .unwrap();
            let active = catalog.active_policies(a).await.unwrap();
            assert_eq!(active.len(), 1, "{label}");
            assert_eq!(active[0].version, 2, "{label}");
            assert_eq!(
                catalog
                    .policy_version(a, "writers", Some(1))
                    .await
                    .unwrap()
                    .body
                    .as_deref(),
                Some("permit(principal, action, resource);"),
                "{label}"
            );
            let generation = catalog.policy_generation(a).await.unwrap();
            catalog
                .put_policy_version(a, "writers", None, "alice", 4)
                .await
                .unwrap();
            assert!(
                catalog.active_policies(a).await.unwrap().is_empty(),
                "{label}"
            );
            assert!(
                catalog.policy_generation(a).await.unwrap() > generation,
                "{label}"
            );
            let history = catalog.policy_history(a, "writers").await.unwrap();
            assert_eq!(
                history.iter().map(|v| v.version).collect::<Vec<_>>(),
                vec![3, 2, 1],
                "{label}"
            );
            // Deleting what never existed is not found, and stores nothing.
            let missing = catalog
                .put_policy_version(a, "nobody", None, "alice", 5)
                .await
                .unwrap_err();
            assert_eq!(
                missing.refusal().unwrap().kind,
                RefusalKind::Missing,
                "{label}"
            );
            assert!(
                catalog.policy_history(a, "nobody").await.is_err(),
                "{label}"
            );
            assert!(
                catalog
                    .put_policy_version(a, "bad name!", Some("x"), "alice", 6)
                    .await
                    .is_err(),
                "{label}"
            );
            // A document past the size limit, and one document past the count limit,
            // are refused and store nothing.
            let big = "x".repeat(POLICY_BYTES_MAX + 1);
            let refused = catalog
                .put_policy_version(a, "big", Some(&big), "alice", 7)
                .await
                .unwrap_err();
            assert_eq!(
                refused.refusal().unwrap().kind,
                RefusalKind::OverLimit,
                "{label}"
            );
            let b = "333333333333";
            for i in 0..POLICIES_PER_TENANT_MAX {
                catalog
                    .put_policy_version(b, &format!("p{i}"), Some("x"), "bob", 8)
                    .await
                    .unwrap();
            }
            let refused = catalog
                .put_policy_version(b, "one-more", Some("x"), "bob", 9)
                .await
                .unwrap_err();
            assert_eq!(
                refused.refusal().unwrap().kind,
                RefusalKind::OverLimit,
                "{label}"
            );
            assert!(
                catalog.policy_history(b, "one-more").await.is_err(),
                "{label}"
            );
            // A new version of an existing document is not one more document.
            catalog
                .put_policy_version(b, "p0", Some("y"), "bob", 10)
                .await
                .unwrap();
        }
    }
}
