//! Tables for record format conversion: a tenant describes a table's columns in Hive's
//! type names (as a Glue table holds them), and a delivery stream's SchemaConfiguration
//! names it by DatabaseName and TableName. Here are the type grammar, the checks a
//! description passes before the catalog keeps it, and the Arrow schema it becomes.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use serde::{Deserialize, Serialize};

use protocol::{ApiError, ErrorCode};

/// Columns a table may have.
pub const COLUMNS_MAX: usize = 1_000;
/// The longest type name (Glue's limit on a column's type).
pub const TYPE_LEN_MAX: usize = 131_072;
/// How deep types may nest.
pub const NESTING_MAX: usize = 32;
/// Database, table and column names: 1 to 255 characters.
pub const NAME_LEN_MAX: usize = 255;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// A column as described: its name and its Hive type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// A Hive type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    String,
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal(u8, i8),
    Date,
    Timestamp,
    Binary,
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

impl HiveType {
    pub fn parse(text: &str) -> Result<HiveType, String> {
        if text.len() > TYPE_LEN_MAX {
            return Err(format!("a type is at most {TYPE_LEN_MAX} characters"));
        }
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        let t = p.parse_type(0)?;
        p.skip_space();
        if p.at != p.s.len() {
            return Err(format!("unexpected {:?} at {}", &text[p.at..], p.at));
        }
        Ok(t)
    }

    /// The Arrow type a column of this type is written as.
    pub fn arrow(&self) -> DataType {
        match self {
            HiveType::String => DataType::Utf8,
            HiveType::Boolean => DataType::Boolean,
            HiveType::TinyInt => DataType::Int8,
            HiveType::SmallInt => DataType::Int16,
            HiveType::Int => DataType::Int32,
            HiveType::BigInt => DataType::Int64,
            HiveType::Float => DataType::Float32,
            HiveType::Double => DataType::Float64,
            HiveType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            HiveType::Date => DataType::Date32,
            HiveType::Timestamp => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
            }
            HiveType::Binary => DataType::Binary,
            HiveType::Array(inner) => {
                DataType::List(Arc::new(Field::new("element", inner.arrow(), true)))
            }
            HiveType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", k.arrow(), false),
                        Field::new("value", v.arrow(), true),
                    ])),
                    false,
                )),
                false,
            ),
            HiveType::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(name, t)| Field::new(name, t.arrow(), true))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let start = self.at;
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_alphanumeric() || self.s[self.at] == b'_')
        {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).to_ascii_lowercase()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.at))
        }
    }

    fn number(&mut self) -> Result<u32, String> {
        let w = self.word();
        w.parse()
            .map_err(|_| format!("expected a number at {}, got {w:?}", self.at))
    }

    fn parse_type(&mut self, depth: usize) -> Result<HiveType, String> {
        if depth > NESTING_MAX {
            return Err(format!("types nest at most {NESTING_MAX} deep"));
        }
        let at = self.at;
        let name = self.word();
        Ok(match name.as_str() {
            "string" => HiveType::String,
            "varchar" | "char" => {
                self.expect(b'(')?;
                let n = self.number()?;
                self.expect(b')')?;
                if n == 0 || n > 65_535 {
                    return Err(format!("{name}({n}): the length is 1 to 65535"));
                }
                HiveType::String
            }
            "boolean" => HiveType::Boolean,
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" => HiveType::Float,
            "double" => HiveType::Double,
            "date" => HiveType::Date,
            "timestamp" => HiveType::Timestamp,
            "binary" => HiveType::Binary,
            "decimal" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat(b'(') {
                    precision = self.number()?;
                    if self.eat(b',') {
                        scale = self.number()?;
                    }
                    self.expect(b')')?;
                }
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(format!(
                        "decimal({precision},{scale}): the precision is 1 to 38 and the scale at most the precision"
                    ));
                }
                HiveType::Decimal(precision as u8, scale as i8)
            }
            "array" => {
                self.expect(b'<')?;
                let inner = self.parse_type(depth + 1)?;
                self.expect(b'>')?;
                HiveType::Array(Box::new(inner))
            }
            "map" => {
                self.expect(b'<')?;
                let key = self.parse_type(depth + 1)?;
                if matches!(
                    key,
                    HiveType::Array(_) | HiveType::Map(..) | HiveType::Struct(_)
                ) {
                    return Err("a map's key is a primitive type".into());
                }
                self.expect(b',')?;
                let value = self.parse_type(depth + 1)?;
                self.expect(b'>')?;
                HiveType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields: Vec<(String, HiveType)> = Vec::new();
                loop {
                    let field = self.word();
                    check_name("a struct field", &field).map_err(|e| e.message)?;
                    if fields.iter().any(|(n, _)| *n == field) {
                        return Err(format!("struct field {field} appears twice"));
                    }
                    self.expect(b':')?;
                    fields.push((field, self.parse_type(depth + 1)?));
                    if !self.eat(b',') {
                        break;
                    }
                }
                self.expect(b'>')?;
                HiveType::Struct(fields)
            }
            "" => return Err(format!("expected a type at {at}")),
            other => return Err(format!("{other} is not a Hive type Sluice converts to")),
        })
    }
}

/// A database, table or column name: 1 to 255 of lowercase letters, digits and `_`
/// (Glue keeps names in lowercase; records' keys are matched to them).
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > NAME_LEN_MAX
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(format!(
            "{what} name is 1 to {NAME_LEN_MAX} of a-z, 0-9 and _; got {name:?}."
        )));
    }
    Ok(())
}

/// A table's columns, checked: names valid and distinct, types parsed.
pub fn parse_columns(columns: &[Column]) -> Result<Vec<(String, HiveType)>, ApiError> {
    if columns.is_empty() || columns.len() > COLUMNS_MAX {
        return Err(invalid(format!(
            "A table has 1 to {COLUMNS_MAX} columns; got {}.",
            columns.len()
        )));
    }
    let mut out: Vec<(String, HiveType)> = Vec::with_capacity(columns.len());
    for c in columns {
        check_name("A column", &c.name)?;
        if out.iter().any(|(n, _)| *n == c.name) {
            return Err(invalid(format!("Column {} appears twice.", c.name)));
        }
        let t = HiveType::parse(&c.type_name)
            .map_err(|e| invalid(format!("Column {}: {e}.", c.name)))?;
        out.push((c.name.clone(), t));
    }
    Ok(out)
}

/// The Arrow schema of checked columns (every column nullable: a record may lack it).
pub fn schema(columns: &[(String, HiveType)]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|(n, t)| Field::new(n, t.arrow(), true))
            .collect::<Vec<_>>(),
    )
}

/// The columns the catalog keeps, read back.
fn stored_columns(text: &str) -> Result<Vec<Column>, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        tracing::error!(error = %e, "a stored table's columns do not read back");
        ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
    })
}

/// A table as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub database: String,
    pub table: String,
    pub columns: Vec<Column>,
    pub version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An account's tables.
pub async fn list(catalog: &catalog::Catalog, account_id: &str) -> Result<Vec<Shown>, ApiError> {
    let rows = catalog
        .list_table_schemas(account_id)
        .await
        .map_err(edge::wire_error)?;
    rows.into_iter()
        .map(|t| {
            Ok(Shown {
                columns: stored_columns(&t.columns)?,
                database: t.database_name,
                table: t.table_name,
                version: t.version,
                created_at_ms: t.created_at_ms,
                updated_at_ms: t.updated_at_ms,
            })
        })
        .collect()
}

/// Describes (or replaces) a table after checking its columns; answers its version.
pub async fn put(
    catalog: &catalog::Catalog,
    account_id: &str,
    database: &str,
    table: &str,
    columns: &[Column],
    now_ms: i64,
) -> Result<i64, ApiError> {
    check_name("A database", database)?;
    check_name("A table", table)?;
    parse_columns(columns)?;
    let text = serde_json::to_string(columns).expect("columns serialize");
    catalog
        .put_table_schema(account_id, database, table, &text, now_ms)
        .await
        .map_err(edge::wire_error)
}

/// A described table's columns, checked again (a description is only stored checked,
/// but a later Sluice may read one an earlier wrote).
pub async fn load(
    catalog: &catalog::Catalog,
    account_id: &str,
    database: &str,
    table: &str,
) -> Result<Option<(i64, Vec<(String, HiveType)>)>, ApiError> {
    let Some(t) = catalog
        .table_schema(account_id, database, table)
        .await
        .map_err(edge::wire_error)?
    else {
        return Ok(None);
    };
    Ok(Some((
        t.version,
        parse_columns(&stored_columns(&t.columns)?)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_types_parse_into_arrow_types() {
        let t = HiveType::parse(
            "struct<id:bigint, tags:array<string>, m:map<string,double>, d:decimal(12,2)>",
        )
        .unwrap();
        let HiveType::Struct(fields) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[3].1, HiveType::Decimal(12, 2));
        assert!(matches!(t.arrow(), DataType::Struct(f) if f.len() == 4));
        assert_eq!(HiveType::parse("VARCHAR(10)").unwrap(), HiveType::String);
        assert_eq!(
            HiveType::parse("decimal").unwrap(),
            HiveType::Decimal(10, 0)
        );
        assert_eq!(
            HiveType::parse("timestamp").unwrap().arrow(),
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
        );
    }

    #[test]
    fn bad_types_and_names_are_refused() {
        for bad in [
            "",
            "strin",
            "array<string",
            "map<array<int>,int>",
            "decimal(39,1)",
            "decimal(5,6)",
            "struct<a:int,a:int>",
            "int int",
            "varchar(0)",
        ] {
            assert!(HiveType::parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}int{}", "array<".repeat(40), ">".repeat(40));
        assert!(HiveType::parse(&deep).is_err());
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            type_name: t.into(),
        };
        assert!(parse_columns(&[col("a", "int"), col("a", "string")]).is_err());
        assert!(parse_columns(&[col("A", "int")]).is_err());
        assert!(parse_columns(&[]).is_err());
        assert!(parse_columns(&[col("a", "int"), col("b", "array<struct<x:int>>")]).is_ok());
    }
}
