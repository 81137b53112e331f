//! A user's Postgres warehouse, as Firehose's Redshift destination loads it: connect,
//! read a table's column names, and `COPY ... FROM STDIN` rows into it. This is the
//! tenant's database, not Sluice's catalog, but its SQL lives here with the rest: the
//! only statements are the column lookup (bound parameters) and one COPY built from
//! identifiers `quoted_identifier` checked.

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Where the warehouse is and who signs in.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

/// How the rows sent are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Csv { delimiter: char },
    Text { delimiter: char },
}

/// `name` or `schema.name`, each part a plain SQL identifier, lowercased and quoted;
/// `None` for anything else.
pub fn quoted_identifier(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.trim().split('.').collect();
    if parts.len() > 2 {
        return None;
    }
    let mut out = Vec::new();
    for part in parts {
        let ok = (1..=63).contains(&part.len())
            && part
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if !ok {
            return None;
        }
        out.push(format!("\"{}\"", part.to_ascii_lowercase()));
    }
    Some(out.join("."))
}

fn quote_char(c: char) -> String {
    if c == '\'' {
        "''''".to_string()
    } else {
        format!("'{c}'")
    }
}

/// One open connection to a warehouse.
pub struct Warehouse {
    conn: PgConnection,
}

impl Warehouse {
    pub async fn connect(target: &Target<'_>) -> Result<Warehouse, String> {
        let mut options = PgConnectOptions::new()
            .host(target.host)
            .port(target.port)
            .database(target.database)
            .application_name("sluice-firehose");
        if let Some(user) = target.username {
            options = options.username(user);
        }
        if let Some(p) = target.password {
            options = options.password(p);
        }
        let conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| format!("connecting to the warehouse failed: {e}"))?;
        Ok(Warehouse { conn })
    }

    /// The columns of `table` (`name` or `schema.name`), in order; empty when there is
    /// no such table.
    pub async fn columns(&mut self, table: &str) -> Result<Vec<String>, String> {
        let (schema, name) = match table.split_once('.') {
            Some((s, n)) => (Some(s.to_ascii_lowercase()), n.to_ascii_lowercase()),
            None => (None, table.to_ascii_lowercase()),
        };
        sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = $1 AND ($2::text IS NULL OR table_schema = $2) \
             AND ($2::text IS NOT NULL OR table_schema = ANY (current_schemas(false))) \
             ORDER BY ordinal_position",
        )
        .bind(&name)
        .bind(schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| format!("reading the table's columns failed: {e}"))
    }

    /// Copies `rows` into `table` (`columns`, or all of them when empty); how many
    /// rows the warehouse took.
    pub async fn copy(
        &mut self,
        table: &str,
        columns: &[String],
        format: CopyFormat,
        rows: Vec<u8>,
    ) -> Result<u64, String> {
        let bad = |what: &str| format!("{what:?} is not a table or column name");
        let table = quoted_identifier(table).ok_or_else(|| bad(table))?;
        let column_list = if columns.is_empty() {
            String::new()
        } else {
            let quoted = columns
                .iter()
                .map(|c| quoted_identifier(c).ok_or_else(|| bad(c)))
                .collect::<Result<Vec<_>, _>>()?;
            format!(" ({})", quoted.join(", "))
        };
        let with = match format {
            CopyFormat::Csv { delimiter } => {
                format!("FORMAT csv, DELIMITER {}", quote_char(delimiter))
            }
            CopyFormat::Text { delimiter } => {
                format!("FORMAT text, DELIMITER {}", quote_char(delimiter))
            }
        };
        let statement = format!("COPY {table}{column_list} FROM STDIN WITH ({with})");
        let mut copy = self
            .conn
            .copy_in_raw(&statement)
            .await
            .map_err(|e| format!("the COPY failed: {e}"))?;
        copy.send(rows)
            .await
            .map_err(|e| format!("the COPY failed: {e}"))?;
        copy.finish()
            .await
            .map_err(|e| format!("the COPY failed: {e}"))
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_and_quoted() {
        assert_eq!(
            quoted_identifier("public.Orders").unwrap(),
            "\"public\".\"orders\""
        );
        assert!(quoted_identifier("orders; DROP TABLE x").is_none());
        assert!(quoted_identifier("a.b.c").is_none());
        assert!(quoted_identifier("").is_none());
        assert!(quoted_identifier("x\"y").is_none());
        assert_eq!(quote_char('\''), "''''");
    }
}
