//! The Redshift destination, with Postgres as the warehouse: as Firehose does for
//! Redshift, each buffer is first staged as an object under the S3 configuration, then
//! loaded into `DataTableName` (`DataTableColumns`) by a COPY whose meaning follows the
//! `CopyOptions` Redshift's COPY documents: `JSON 'auto'` (each JSON object's members
//! matched to the columns by name, case-insensitively), `CSV` (with `DELIMITER`), or
//! Redshift's default, text delimited by `|`. Postgres gets the rows with
//! `COPY ... FROM STDIN`, sent by `catalog::warehouse` (the crate that holds all SQL);
//! this module reads the destination's shape and turns the buffer into rows.

use std::time::Duration;

use catalog::warehouse::{CopyFormat, Target, Warehouse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

use crate::shapes::{ProcessingConfiguration, RetryOptions, S3_BUFFER_SIZE_MAX_MIB, S3Destination};

/// How long a load is retried by default (Firehose: 3,600 s), and at most (2 hours).
pub const RETRY_DEFAULT_S: i64 = 3_600;
pub const RETRY_MAX_S: i64 = 7_200;
/// Connecting and one COPY must each finish within these.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const COPY_TIMEOUT: Duration = Duration::from_secs(300);

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CopyCommand {
    #[serde(rename = "DataTableName")]
    pub table: String,
    #[serde(rename = "DataTableColumns", skip_serializing_if = "Option::is_none")]
    pub columns: Option<String>,
    #[serde(rename = "CopyOptions", skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
}

/// A Redshift destination (a Postgres database here).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RedshiftDestination {
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    #[serde(rename = "ClusterJDBCURL")]
    pub jdbc_url: String,
    #[serde(rename = "CopyCommand")]
    pub copy: CopyCommand,
    #[serde(rename = "Username", skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// As given; replaced by `password_sealed` before it is stored.
    #[serde(rename = "Password", skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(
        rename = "SluicePasswordSealed",
        skip_serializing_if = "Option::is_none"
    )]
    pub password_sealed: Option<String>,
    #[serde(rename = "RetryOptions", default)]
    pub retry_options: RetryOptions,
    #[serde(rename = "S3Configuration")]
    pub s3: S3Destination,
    #[serde(
        rename = "ProcessingConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    #[serde(
        rename = "S3BackupConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_backup_configuration: Option<S3Destination>,
    #[serde(
        rename = "CloudWatchLoggingOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_watch_logging_options: Option<Value>,
}

/// Where the warehouse is: host, port and database of a
/// `jdbc:(redshift|postgresql)://host:port/db` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
}

pub fn parse_jdbc_url(url: &str) -> Result<Endpoint, ApiError> {
    let bad = || {
        invalid(format!(
            "ClusterJDBCURL {url:?} must be jdbc:redshift://host:port/database or jdbc:postgresql://host:port/database."
        ))
    };
    let rest = url
        .strip_prefix("jdbc:redshift://")
        .or_else(|| url.strip_prefix("jdbc:postgresql://"))
        .ok_or_else(bad)?;
    let (authority, database) = rest.split_once('/').ok_or_else(bad)?;
    let database = database.split(['?', ';']).next().unwrap_or("");
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty()
        || database.is_empty()
        || !database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_$-".contains(&b))
    {
        return Err(bad());
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
        database: database.to_string(),
    })
}

/// How the buffer's bytes become rows, from `CopyOptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `JSON 'auto'`: objects, members matched to columns by name.
    JsonAuto,
    Csv {
        delimiter: char,
    },
    /// Redshift's default: text, `|`-delimited.
    Text {
        delimiter: char,
    },
}

/// Reads the COPY options Sluice honours; any other refuses the destination.
pub fn parse_copy_options(options: Option<&str>) -> Result<Layout, ApiError> {
    let text = options.unwrap_or("").trim();
    let mut json = false;
    let mut csv = false;
    let mut delimiter: Option<char> = None;
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].to_ascii_uppercase();
        match word.as_str() {
            "FORMAT" | "AS" => {}
            "JSON" => {
                json = true;
                match words.get(i + 1).map(|w| w.to_ascii_lowercase()) {
                    Some(w) if w == "'auto'" || w == "'auto" => i += 1,
                    Some(w) if w.starts_with('\'') => {
                        return Err(invalid(
                            "CopyOptions: Sluice loads JSON with 'auto' only (a JSONPaths file is not supported).",
                        ));
                    }
                    _ => {}
                }
            }
            "CSV" => csv = true,
            "DELIMITER" => {
                let given = words
                    .get(i + 1)
                    .ok_or_else(|| invalid("CopyOptions: DELIMITER needs a character."))?;
                let inner = given.trim_matches('\'');
                let mut chars = inner.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => delimiter = Some(c),
                    _ => {
                        return Err(invalid(
                            "CopyOptions: DELIMITER must be one character in quotes.",
                        ));
                    }
                }
                i += 1;
            }
            other => {
                return Err(invalid(format!(
                    "CopyOptions: {other} is not supported by Sluice (JSON 'auto', CSV and DELIMITER are)."
                )));
            }
        }
        i += 1;
    }
    match (json, csv) {
        (true, true) => Err(invalid("CopyOptions: JSON and CSV exclude each other.")),
        (true, false) => Ok(Layout::JsonAuto),
        (false, true) => Ok(Layout::Csv {
            delimiter: delimiter.unwrap_or(','),
        }),
        (false, false) => Ok(Layout::Text {
            delimiter: delimiter.unwrap_or('|'),
        }),
    }
}

/// A table or column name the warehouse module will quote.
fn check_identifier(text: &str) -> Result<(), ApiError> {
    catalog::warehouse::quoted_identifier(text)
        .map(|_| ())
        .ok_or_else(|| invalid(format!("{text:?} is not a table or column name.")))
}

fn column_names(columns: Option<&str>) -> Result<Vec<String>, ApiError> {
    match columns.map(str::trim) {
        None | Some("") => Ok(Vec::new()),
        Some(list) => list
            .split(',')
            .map(|c| {
                check_identifier(c)?;
                Ok(c.trim().to_ascii_lowercase())
            })
            .collect(),
    }
}

impl RedshiftDestination {
    pub fn check(&self) -> Result<(), ApiError> {
        let endpoint = parse_jdbc_url(&self.jdbc_url)?;
        if !is_loopback(&endpoint.host) {
            return Err(invalid(
                "Sluice reaches a warehouse without TLS only on this machine (127.0.0.1 or localhost); a remote warehouse over TLS is not supported yet.",
            ));
        }
        check_identifier(&self.copy.table)?;
        column_names(self.copy.columns.as_deref())?;
        parse_copy_options(self.copy.options.as_deref())?;
        self.retry_options.check(RETRY_MAX_S)?;
        if let Some(p) = &self.password
            && !(6..=512).contains(&p.len())
        {
            return Err(invalid("Password must be 6 to 512 characters."));
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        if let Some(b) = &self.s3_backup_configuration {
            b.check(S3_BUFFER_SIZE_MAX_MIB)?;
        }
        self.s3.check(S3_BUFFER_SIZE_MAX_MIB)
    }

    pub fn retry_ms(&self) -> i64 {
        self.retry_options.duration_s.unwrap_or(RETRY_DEFAULT_S) * 1000
    }

    pub fn described(&self) -> Value {
        let mut d = self.clone();
        d.retry_options.duration_s = Some(self.retry_ms() / 1000);
        d.s3_backup_mode = Some(
            self.s3_backup_mode
                .clone()
                .unwrap_or_else(|| "Disabled".into()),
        );
        let s3 = d.s3.described(false);
        let backup = d.s3_backup_configuration.take().map(|b| b.described(false));
        let mut v = serde_json::to_value(&d).expect("serializable");
        if let Value::Object(map) = &mut v {
            // INVARIANT: the password never leaves the server.
            map.remove("Password");
            map.remove("SluicePasswordSealed");
            map.remove("S3Configuration");
            map.insert("S3DestinationDescription".into(), s3);
            if let Some(b) = backup {
                map.insert("S3BackupDescription".into(), b);
            }
        }
        v
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One CSV field: NULL as nothing, anything else quoted.
fn csv_field(out: &mut Vec<u8>, value: Option<&Value>) {
    let text = match value {
        None | Some(Value::Null) => return,
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    out.push(b'"');
    for b in text.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The JSON objects in `data` as CSV rows of `columns` (members matched by name,
/// case-insensitively); what is not an object is an error.
pub fn json_rows(data: &[u8], columns: &[String]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len());
    for value in serde_json::Deserializer::from_slice(data).into_iter::<Value>() {
        let value = value.map_err(|e| format!("a record is not JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("a record is not a JSON object".into());
        };
        let lowered: std::collections::HashMap<String, &Value> = map
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            csv_field(&mut out, lowered.get(column).copied());
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// Loads one buffer (its records already joined) into the table.
pub async fn load(
    destination: &RedshiftDestination,
    password: Option<&str>,
    data: &[u8],
) -> Result<u64, String> {
    let endpoint = parse_jdbc_url(&destination.jdbc_url).map_err(|e| e.message)?;
    let target = Target {
        host: &endpoint.host,
        port: endpoint.port,
        database: &endpoint.database,
        username: destination.username.as_deref(),
        password,
    };
    let mut warehouse = tokio::time::timeout(CONNECT_TIMEOUT, Warehouse::connect(&target))
        .await
        .map_err(|_| "connecting to the warehouse timed out".to_string())??;
    let table = destination.copy.table.as_str();
    let mut columns = column_names(destination.copy.columns.as_deref()).map_err(|e| e.message)?;
    let layout = parse_copy_options(destination.copy.options.as_deref()).map_err(|e| e.message)?;
    if columns.is_empty() && layout == Layout::JsonAuto {
        // JSON 'auto' needs the names: the table's own, in order.
        columns = warehouse.columns(table).await?;
        if columns.is_empty() {
            return Err(format!("the table {table} does not exist"));
        }
    }
    let (rows, format) = match layout {
        Layout::JsonAuto => (
            json_rows(data, &columns)?,
            CopyFormat::Csv { delimiter: ',' },
        ),
        Layout::Csv { delimiter } => (data.to_vec(), CopyFormat::Csv { delimiter }),
        Layout::Text { delimiter } => (data.to_vec(), CopyFormat::Text { delimiter }),
    };
    let copied = tokio::time::timeout(COPY_TIMEOUT, warehouse.copy(table, &columns, format, rows))
        .await
        .map_err(|_| "the COPY timed out".to_string())??;
    warehouse.close().await;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_urls_name_host_port_and_database() {
        assert_eq!(
            parse_jdbc_url("jdbc:postgresql://127.0.0.1:5432/test").unwrap(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 5432,
                database: "test".into()
            }
        );
        assert!(
            parse_jdbc_url("jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev")
                .is_ok()
        );
        assert!(parse_jdbc_url("postgres://127.0.0.1/test").is_err());
        assert!(parse_jdbc_url("jdbc:postgresql://127.0.0.1:5432/te st").is_err());
    }

    #[test]
    fn copy_options_choose_the_layout() {
        assert_eq!(
            parse_copy_options(Some("JSON 'auto'")).unwrap(),
            Layout::JsonAuto
        );
        assert_eq!(
            parse_copy_options(Some("format as json 'auto'")).unwrap(),
            Layout::JsonAuto
        );
        assert_eq!(
            parse_copy_options(Some("CSV DELIMITER ';'")).unwrap(),
            Layout::Csv { delimiter: ';' }
        );
        assert_eq!(
            parse_copy_options(None).unwrap(),
            Layout::Text { delimiter: '|' }
        );
        assert!(parse_copy_options(Some("JSON 's3://b/paths.json'")).is_err());
        assert!(parse_copy_options(Some("MANIFEST")).is_err());
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(check_identifier("public.Orders").is_ok());
        assert!(check_identifier("orders; DROP TABLE x").is_err());
        assert!(column_names(Some("id, name")).is_ok());
        assert!(column_names(Some("id,\"x\"")).is_err());
    }

    #[test]
    fn json_objects_become_csv_rows() {
        let rows = json_rows(
            b"{\"ID\":1,\"name\":\"a \\\"q\\\"\"}\n{\"id\":2,\"extra\":[1]}",
            &["id".into(), "name".into()],
        )
        .unwrap();
        assert_eq!(rows, b"\"1\",\"a \"\"q\"\"\"\n\"2\",\n");
        assert!(json_rows(b"[1]", &["id".into()]).is_err());
    }
}
