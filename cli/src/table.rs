//! `sluice table`: describe the tables a Firehose delivery stream's record format
//! conversion writes (its SchemaConfiguration names one by DatabaseName and
//! TableName). Columns are `NAME:TYPE` in Hive's type names, as a Glue table has them.

use serde_json::json;

use crate::admin::{ConnectArgs, call, segment, tenant_segment};

#[derive(clap::Subcommand)]
pub enum TableCommand {
    /// Describe a table, or replace its columns.
    Put {
        database: String,
        table: String,
        /// A column as NAME:TYPE, e.g. `id:bigint`, `tags:array<string>`; repeat for
        /// each column, in order.
        #[arg(long = "column", required = true)]
        columns: Vec<String>,
        /// The tenant (account id); default: the caller's own.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List a tenant's tables.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a table's description.
    Delete {
        database: String,
        table: String,
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn table_path(tenant: &Option<String>, database: &str, table: &str) -> anyhow::Result<String> {
    Ok(format!(
        "/admin/v1/tenants/{}/tables/{}/{}",
        tenant_segment(tenant)?,
        segment(database, "database")?,
        segment(table, "table")?
    ))
}

/// `NAME:TYPE` as the admin API's column (the type may hold colons of its own).
fn column(text: &str) -> anyhow::Result<serde_json::Value> {
    match text.split_once(':') {
        Some((name, type_name)) if !name.is_empty() && !type_name.is_empty() => {
            Ok(json!({"name": name, "type": type_name}))
        }
        _ => anyhow::bail!("a column is NAME:TYPE, e.g. id:bigint; got {text:?}"),
    }
}

pub async fn run(connect: ConnectArgs, command: TableCommand) -> anyhow::Result<()> {
    match command {
        TableCommand::Put {
            database,
            table,
            columns,
            tenant,
        } => {
            let columns = columns
                .iter()
                .map(|c| column(c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let path = table_path(&tenant, &database, &table)?;
            call(
                &connect,
                "PUT",
                &path,
                &[],
                Some(json!({"columns": columns})),
            )
            .await
        }
        TableCommand::List { tenant } => {
            let path = format!("/admin/v1/tenants/{}/tables", tenant_segment(&tenant)?);
            call(&connect, "GET", &path, &[], None).await
        }
        TableCommand::Delete {
            database,
            table,
            tenant,
        } => {
            let path = table_path(&tenant, &database, &table)?;
            call(&connect, "DELETE", &path, &[], None).await
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_column_is_split_at_its_first_colon() {
        let c = super::column("s:struct<a:int>").unwrap();
        assert_eq!(c["name"], "s");
        assert_eq!(c["type"], "struct<a:int>");
        assert!(super::column("nocolon").is_err());
        assert!(super::column(":int").is_err());
    }
}
