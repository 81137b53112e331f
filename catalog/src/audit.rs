//! The audit trail: one row per authorization decision, appended in batches and never
//! changed. The tables carry triggers that refuse UPDATE and DELETE, so not even a bug
//! in this process can rewrite history through the catalog connection.

use serde::Serialize;
use sqlx::Row;

use crate::{Catalog, CatalogError};

/// Rows one read returns at most.
pub const AUDIT_PAGE_MAX: i64 = 10_000;
/// Rows one statement inserts at most (on Postgres 11 parameters each, below its 65,535).
pub const AUDIT_BATCH_MAX: usize = 1_000;

/// One authorization decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Assigned by the catalog; 0 until stored.
    pub id: i64,
    pub at_ms: i64,
    pub request_id: String,
    pub principal_account: String,
    pub principal: String,
    pub action: String,
    pub resource_account: String,
    pub resource: String,
    /// `Allow` or `Deny`.
    pub decision: String,
    /// The ids of the policies that decided (empty for a default deny).
    pub policies: Vec<String>,
    pub source_ip: String,
    pub tls_version: String,
}

impl Catalog {
    /// Appends entries in one transaction, in order, sealed as the audit chain's next
    /// batch under `chain_key` (`auditchain`).
    pub async fn append_audit(
        &self,
        entries: &[AuditEntry],
        chain_key: &[u8],
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let after_id =
            crate::auditchain::begin_append(&mut tx, self.backend() == crate::Backend::Postgres)
                .await?;
        match self.backend() {
            // SQLite: one statement and one parameter per batch, the rows as a JSON array
            // that SQLite unpacks itself. Binding many `$n` parameters instead costs
            // quadratic time in the driver, and row-by-row statements held SQLite's
            // write lock (which the group commit needs) for ~30 us a row (measured).
            crate::Backend::Sqlite => {
                for batch in entries.chunks(AUDIT_BATCH_MAX) {
                    let rows: Vec<serde_json::Value> = batch
                        .iter()
                        .map(|e| {
                            serde_json::json!([
                                e.at_ms,
                                e.request_id,
                                e.principal_account,
                                e.principal,
                                e.action,
                                e.resource_account,
                                e.resource,
                                e.decision,
                                serde_json::to_string(&e.policies).unwrap_or_else(|_| "[]".into()),
                                e.source_ip,
                                e.tls_version,
                            ])
                        })
                        .collect();
                    sqlx::query(
                        "INSERT INTO audit_log (at_ms, request_id, principal_account, principal, \
                         action, resource_account, resource, decision, policies, source_ip, \
                         tls_version) \
                         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                                value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, \
                                value ->> 10 \
                         FROM json_each($1) ORDER BY key",
                    )
                    .bind(serde_json::Value::Array(rows).to_string())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            // Postgres: multi-row statements, one round trip per `AUDIT_BATCH_MAX` rows.
            crate::Backend::Postgres => {
                for batch in entries.chunks(AUDIT_BATCH_MAX) {
                    let mut sql = String::from(
                        "INSERT INTO audit_log (at_ms, request_id, principal_account, principal, \
                         action, resource_account, resource, decision, policies, source_ip, \
                         tls_version) VALUES ",
                    );
                    for i in 0..batch.len() {
                        let b = i * 11;
                        if i > 0 {
                            sql.push(',');
                        }
                        sql.push('(');
                        for c in 1..=11 {
                            if c > 1 {
                                sql.push(',');
                            }
                            sql.push_str(&format!("${}", b + c));
                        }
                        sql.push(')');
                    }
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for e in batch {
                        query = query
                            .bind(e.at_ms)
                            .bind(e.request_id.clone())
                            .bind(e.principal_account.clone())
                            .bind(e.principal.clone())
                            .bind(e.action.clone())
                            .bind(e.resource_account.clone())
                            .bind(e.resource.clone())
                            .bind(e.decision.clone())
                            .bind(
                                serde_json::to_string(&e.policies).unwrap_or_else(|_| "[]".into()),
                            )
                            .bind(e.source_ip.clone())
                            .bind(e.tls_version.clone());
                    }
                    query.execute(&mut *tx).await?;
                }
            }
        }
        crate::auditchain::seal_append(&mut tx, chain_key, after_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Entries where `account_id` is the principal's or the resource's tenant, after
    /// `after_id`, oldest first, at most `limit` (capped at `AUDIT_PAGE_MAX`).
    pub async fn audit_entries(
        &self,
        account_id: &str,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, request_id, principal_account, principal, action, \
             resource_account, resource, decision, policies, source_ip, tls_version \
             FROM audit_log WHERE id > $2 AND (principal_account = $1 OR resource_account = $1) \
             ORDER BY id LIMIT $3",
        )
        .bind(account_id)
        .bind(after_id)
        .bind(limit.clamp(1, AUDIT_PAGE_MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let policies: String = row.try_get("policies")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    request_id: row.try_get("request_id")?,
                    principal_account: row.try_get("principal_account")?,
                    principal: row.try_get("principal")?,
                    action: row.try_get("action")?,
                    resource_account: row.try_get("resource_account")?,
                    resource: row.try_get("resource")?,
                    decision: row.try_get("decision")?,
                    policies: serde_json::from_str(&policies).map_err(|_| {
                        CatalogError::Corrupt {
                            what: "audit entry policies are not a JSON array".into(),
                        }
                    })?,
                    source_ip: row.try_get("source_ip")?,
                    tls_version: row.try_get("tls_version")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = &[7u8; 32];

    fn intact(v: &crate::auditchain::AuditVerification) -> bool {
        v.problems.is_empty()
    }

    /// Runs `sql` with the append-only triggers out of the way, as someone with write
    /// access to the database could.
    async fn tamper(catalog: &Catalog, sql: &str) {
        let drops: &[&str] = match catalog.backend() {
            crate::Backend::Sqlite => &[
                "DROP TRIGGER IF EXISTS audit_log_no_update",
                "DROP TRIGGER IF EXISTS audit_log_no_delete",
            ],
            crate::Backend::Postgres => &[
                "DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log",
                "DROP TRIGGER IF EXISTS audit_log_no_delete ON audit_log",
            ],
        };
        for drop in drops {
            sqlx::query(sqlx::AssertSqlSafe(drop.to_string()))
                .execute(catalog.pool())
                .await
                .unwrap();
        }
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(catalog.pool())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_chain_shows_every_change_and_retention_moves_its_start() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let a = "111111111111";
            for t in 0..5 {
                let batch: Vec<AuditEntry> = (0..10).map(|n| entry(a, a, t * 1_000 + n)).collect();
                catalog.append_audit(&batch, KEY).await.unwrap();
            }
            let v = catalog.verify_audit(KEY).await.unwrap();
            assert!(intact(&v), "{v:?}");
            assert_eq!((v.batches, v.rows), (5, 50));
            // Another key does not verify the MACs.
            assert!(!intact(&catalog.verify_audit(&[8u8; 32]).await.unwrap()));
            // Retention: the batches older than 2,500 ms go, the chain still verifies.
            let removed = catalog.prune_audit(KEY, 2_500).await.unwrap();
            assert_eq!(removed, 30);
            let v = catalog.verify_audit(KEY).await.unwrap();
            assert!(intact(&v), "{v:?}");
            assert_eq!((v.batches, v.rows), (2, 20));
            // Deleting a kept row outside retention is refused by the trigger ...
            assert!(
                sqlx::query("DELETE FROM audit_log WHERE at_ms = 4005")
                    .execute(catalog.pool())
                    .await
                    .is_err()
            );
            // ... and edits, deletions and insertions made around it are found.
            tamper(
                &catalog,
                "UPDATE audit_log SET decision = 'Allow' WHERE at_ms = 3003",
            )
            .await;
            let v = catalog.verify_audit(KEY).await.unwrap();
            assert!(
                v.problems
                    .iter()
                    .any(|p| p.contains("do not match its hash")),
                "{v:?}"
            );
            tamper(
                &catalog,
                "UPDATE audit_log SET decision = 'Deny' WHERE at_ms = 3003",
            )
            .await;
            assert!(intact(&catalog.verify_audit(KEY).await.unwrap()));
            tamper(&catalog, "DELETE FROM audit_log WHERE at_ms = 4009").await;
            assert!(!intact(&catalog.verify_audit(KEY).await.unwrap()));
        }
    }

    #[tokio::test]
    async fn rows_slipped_in_after_the_last_batch_are_found() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            catalog
                .append_audit(&[entry("111111111111", "111111111111", 1)], KEY)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO audit_log (at_ms, request_id, principal_account, principal, action, \
                 resource_account, resource, decision, policies, source_ip, tls_version) \
                 VALUES (2, 'r', 'a', 'p', 'x', 'a', 'r', 'Allow', '[]', '', '')",
            )
            .execute(catalog.pool())
            .await
            .unwrap();
            let v = catalog.verify_audit(KEY).await.unwrap();
            assert!(
                v.problems.iter().any(|p| p.contains("belong to no batch")),
                "{v:?}"
            );
        }
    }

    fn entry(principal_account: &str, resource_account: &str, n: i64) -> AuditEntry {
        AuditEntry {
            id: 0,
            at_ms: n,
            request_id: format!("req-{n}"),
            principal_account: principal_account.into(),
            principal: format!("arn:aws:iam::{principal_account}:user/alice"),
            action: "kinesis:PutRecord".into(),
            resource_account: resource_account.into(),
            resource: format!("arn:aws:kinesis:us-east-1:{resource_account}:stream/s"),
            decision: "Deny".into(),
            policies: vec!["platform-forbid-cross-tenant".into()],
            source_ip: "127.0.0.1".into(),
            tls_version: "TLSv1.3".into(),
        }
    }

    #[tokio::test]
    async fn entries_append_in_order_and_cannot_be_changed() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let a = "111111111111";
            let b = "222222222222";
            let batch: Vec<AuditEntry> = (0..2_500)
                .map(|n| {
                    if n % 2 == 0 {
                        entry(a, a, n)
                    } else {
                        entry(b, a, n)
                    }
                })
                .collect();
            catalog.append_audit(&batch, KEY).await.unwrap();
            catalog
                .append_audit(&[entry(b, b, 9_999)], KEY)
                .await
                .unwrap();
            // A's trail holds both its own principals' decisions and B's attempts on A.
            let page = catalog.audit_entries(a, 0, 10_000).await.unwrap();
            assert_eq!(page.len(), 2_500);
            assert!(page.windows(2).all(|w| w[0].id < w[1].id));
            assert_eq!(page[1].principal_account, b);
            assert_eq!(page[0].policies, vec!["platform-forbid-cross-tenant"]);
            let rest = catalog.audit_entries(a, page[9].id, 5).await.unwrap();
            assert_eq!(rest[0].id, page[10].id);
            assert_eq!(rest.len(), 5);
            // B sees its own decisions and its attempts on A, never A's own.
            let b_page = catalog.audit_entries(b, 0, 10_000).await.unwrap();
            assert_eq!(b_page.len(), 1_251);
            // Append-only, whatever statement the catalog connection runs.
            for sql in [
                "UPDATE audit_log SET decision = 'Allow'",
                "DELETE FROM audit_log",
            ] {
                assert!(
                    sqlx::query(sql).execute(catalog.pool()).await.is_err(),
                    "{sql}"
                );
            }
            assert_eq!(catalog.audit_entries(a, 0, 10_000).await.unwrap(), page);
        }
    }
}
