//! Table schemas (migration 0022): the columns a tenant describes for a table, named
//! by database and table as a Firehose delivery stream's SchemaConfiguration names
//! them, so its record format conversion knows what to write. The catalog keeps the
//! columns as JSON; `firehose::tables` checks them before they get here.

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::{Catalog, CatalogError};

/// Tables an account may describe.
pub const TABLE_SCHEMAS_PER_ACCOUNT_MAX: i64 = 1_000;

/// A described table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub database_name: String,
    pub table_name: String,
    /// JSON: `[{"name": ..., "type": ...}, ...]`.
    pub columns: String,
    pub version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

fn row_to_table(r: &sqlx::any::AnyRow) -> Result<TableSchema, CatalogError> {
    Ok(TableSchema {
        database_name: r.try_get("database_name")?,
        table_name: r.try_get("table_name")?,
        columns: r.try_get("columns")?,
        version: r.try_get("version")?,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
    })
}

const COLUMNS: &str = "database_name, table_name, columns, version, created_at_ms, updated_at_ms";

impl Catalog {
    /// Describes a table, or replaces its columns (its version goes up by one).
    /// Answers the version stored.
    pub async fn put_table_schema(
        &self,
        account_id: &str,
        database_name: &str,
        table_name: &str,
        columns: &str,
        now_ms: i64,
    ) -> Result<i64, CatalogError> {
        let mut tx = self.begin_write().await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM table_schemas WHERE account_id = $1 \
             AND NOT (database_name = $2 AND table_name = $3)",
        )
        .bind(account_id)
        .bind(database_name)
        .bind(table_name)
        .fetch_one(&mut *tx)
        .await?;
        if count >= TABLE_SCHEMAS_PER_ACCOUNT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A tenant describes at most {TABLE_SCHEMAS_PER_ACCOUNT_MAX} tables."),
            )
            .into());
        }
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO table_schemas (account_id, database_name, table_name, columns, version, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, 1, $5, $5) \
             ON CONFLICT (account_id, database_name, table_name) DO UPDATE SET \
             columns = excluded.columns, version = table_schemas.version + 1, \
             updated_at_ms = excluded.updated_at_ms RETURNING version",
        )
        .bind(account_id)
        .bind(database_name)
        .bind(table_name)
        .bind(columns)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    pub async fn table_schema(
        &self,
        account_id: &str,
        database_name: &str,
        table_name: &str,
    ) -> Result<Option<TableSchema>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM table_schemas \
             WHERE account_id = $1 AND database_name = $2 AND table_name = $3"
        )))
        .bind(account_id)
        .bind(database_name)
        .bind(table_name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_table).transpose()
    }

    /// An account's tables, by database and name.
    pub async fn list_table_schemas(
        &self,
        account_id: &str,
    ) -> Result<Vec<TableSchema>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM table_schemas WHERE account_id = $1 \
             ORDER BY database_name, table_name"
        )))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_table).collect()
    }

    pub async fn delete_table_schema(
        &self,
        account_id: &str,
        database_name: &str,
        table_name: &str,
    ) -> Result<(), CatalogError> {
        let done = sqlx::query(
            "DELETE FROM table_schemas \
             WHERE account_id = $1 AND database_name = $2 AND table_name = $3",
        )
        .bind(account_id)
        .bind(database_name)
        .bind(table_name)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(Refusal::new(
                RefusalKind::Missing,
                format!("Table {database_name}.{table_name} not found."),
            )
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_table_is_described_replaced_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let v = catalog
                .put_table_schema(
                    "111122223333",
                    "db",
                    "t",
                    r#"[{"name":"a","type":"int"}]"#,
                    1,
                )
                .await
                .unwrap();
            assert_eq!(v, 1);
            let v = catalog
                .put_table_schema(
                    "111122223333",
                    "db",
                    "t",
                    r#"[{"name":"b","type":"int"}]"#,
                    2,
                )
                .await
                .unwrap();
            assert_eq!(v, 2);
            let t = catalog
                .table_schema("111122223333", "db", "t")
                .await
                .unwrap()
                .unwrap();
            assert_eq!((t.version, t.created_at_ms, t.updated_at_ms), (2, 1, 2));
            assert!(t.columns.contains("\"b\""));
            assert!(
                catalog
                    .table_schema("444455556666", "db", "t")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                catalog
                    .list_table_schemas("111122223333")
                    .await
                    .unwrap()
                    .len(),
                1
            );
            catalog
                .delete_table_schema("111122223333", "db", "t")
                .await
                .unwrap();
            assert!(
                catalog
                    .delete_table_schema("111122223333", "db", "t")
                    .await
                    .is_err()
            );
        }
    }
}
