//! Record format conversion (DataFormatConversionConfiguration): JSON records become
//! one Parquet object per buffer, its columns those of the table SchemaConfiguration
//! names (`crate::tables`). The input deserializer decides how a record's keys meet the
//! columns (OpenX: case-insensitive, dots to underscores, explicit key mappings) and how
//! timestamps read (Hive: its formats or `millis`); the ParquetSerDe decides compression,
//! page size, dictionaries and the writer version. A record that is not JSON or does not
//! fit the columns is not written; it goes to the error prefix as
//! `format-conversion-failed`, as Firehose sends it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_json::ReaderBuilder;
use arrow_schema::Schema;
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tables::HiveType;
use protocol::{ApiError, ErrorCode};

/// With conversion on, a buffer is at least 64 MiB and 128 MiB unless given (AWS's rule).
pub const BUFFER_SIZE_MIN_MIB: i64 = 64;
pub const BUFFER_SIZE_DEFAULT_MIB: i64 = 128;
const BLOCK_SIZE_MIN: i64 = 64 << 20;
const PAGE_SIZE_MIN: i64 = 64 << 10;
/// JSON documents one record may hold (each is a row).
const DOCUMENTS_PER_RECORD_MAX: usize = 10_000;

/// Records that did not convert: each one's place in the buffer, and why.
pub type Unconverted = Vec<(usize, String)>;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SchemaConfiguration {
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(rename = "CatalogId", skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    #[serde(rename = "DatabaseName", skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    #[serde(rename = "TableName", skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(rename = "Region", skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(rename = "VersionId", skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct OpenX {
    #[serde(rename = "ConvertDotsInJsonKeysToUnderscores", default)]
    dots_to_underscores: bool,
    #[serde(rename = "CaseInsensitive")]
    case_insensitive: Option<bool>,
    #[serde(rename = "ColumnToJsonKeyMappings", default)]
    mappings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Hive {
    #[serde(rename = "TimestampFormats", default)]
    timestamp_formats: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Deserializer {
    #[serde(rename = "OpenXJsonSerDe")]
    openx: Option<OpenX>,
    #[serde(rename = "HiveJsonSerDe")]
    hive: Option<Hive>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ParquetSerDe {
    #[serde(rename = "BlockSizeBytes")]
    block_size: Option<i64>,
    #[serde(rename = "PageSizeBytes")]
    page_size: Option<i64>,
    #[serde(rename = "Compression")]
    compression: Option<String>,
    #[serde(rename = "EnableDictionaryCompression", default)]
    dictionary: bool,
    #[serde(rename = "MaxPaddingBytes")]
    max_padding: Option<i64>,
    #[serde(rename = "WriterVersion")]
    writer_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Serializer {
    #[serde(rename = "ParquetSerDe")]
    parquet: Option<ParquetSerDe>,
    #[serde(rename = "OrcSerDe")]
    orc: Option<Value>,
}

/// How a record's timestamps read.
#[derive(Debug, Clone, PartialEq)]
enum TimestampFormat {
    /// `millis`: milliseconds since the epoch.
    Millis,
    /// A Joda pattern, as chrono's.
    Pattern(String),
}

/// How records' keys meet the columns.
#[derive(Debug, Clone, PartialEq)]
enum Input {
    OpenX {
        case_insensitive: bool,
        dots_to_underscores: bool,
        /// column -> the JSON key it reads
        mappings: BTreeMap<String, String>,
    },
    Hive {
        formats: Vec<TimestampFormat>,
    },
}

/// A checked conversion configuration.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub schema: SchemaConfiguration,
    input: Input,
    properties: WriterProperties,
}

/// Whether the configuration turns conversion on (`Enabled` defaults to true).
pub fn enabled(value: &Option<Value>) -> bool {
    value
        .as_ref()
        .is_some_and(|v| !v.is_null() && v.get("Enabled").and_then(Value::as_bool).unwrap_or(true))
}

impl Conversion {
    /// The configuration checked; `None` when conversion is off.
    pub fn parse(value: &Option<Value>) -> Result<Option<Conversion>, ApiError> {
        if !enabled(value) {
            return Ok(None);
        }
        let value = value.as_ref().expect("enabled");
        let bad = |e: serde_json::Error| invalid(format!("DataFormatConversionConfiguration: {e}"));
        let schema: SchemaConfiguration = serde_json::from_value(
            value
                .get("SchemaConfiguration")
                .cloned()
                .unwrap_or(Value::Null),
        )
        .map_err(bad)?;
        let (Some(database), Some(table)) = (&schema.database_name, &schema.table_name) else {
            return Err(invalid(
                "SchemaConfiguration needs DatabaseName and TableName (a table described with `sluice table put`).",
            ));
        };
        crate::tables::check_name("SchemaConfiguration's database", database)?;
        crate::tables::check_name("SchemaConfiguration's table", table)?;
        if let Some(v) = &schema.version_id
            && v != "LATEST"
        {
            return Err(invalid(format!(
                "SchemaConfiguration.VersionId is LATEST (Sluice converts with a table's current columns); got {v:?}."
            )));
        }
        let deserializer: Deserializer = serde_json::from_value(
            value
                .pointer("/InputFormatConfiguration/Deserializer")
                .cloned()
                .unwrap_or(Value::Null),
        )
        .map_err(bad)?;
        let input = match (deserializer.openx, deserializer.hive) {
            (Some(o), None) => {
                for (column, key) in &o.mappings {
                    crate::tables::check_name("A mapped column", column)?;
                    if key.is_empty() || key.len() > 1024 {
                        return Err(invalid(
                            "ColumnToJsonKeyMappings' keys are 1 to 1024 characters.",
                        ));
                    }
                }
                Input::OpenX {
                    case_insensitive: o.case_insensitive.unwrap_or(true),
                    dots_to_underscores: o.dots_to_underscores,
                    mappings: o.mappings,
                }
            }
            (None, Some(h)) => Input::Hive {
                formats: h
                    .timestamp_formats
                    .iter()
                    .map(|f| {
                        if f == "millis" {
                            Ok(TimestampFormat::Millis)
                        } else {
                            joda_to_chrono(f)
                                .map(TimestampFormat::Pattern)
                                .map_err(|e| invalid(format!("TimestampFormats {f:?}: {e}")))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            },
            _ => {
                return Err(invalid(
                    "InputFormatConfiguration.Deserializer names exactly one of OpenXJsonSerDe and HiveJsonSerDe.",
                ));
            }
        };
        let serializer: Serializer = serde_json::from_value(
            value
                .pointer("/OutputFormatConfiguration/Serializer")
                .cloned()
                .unwrap_or(Value::Null),
        )
        .map_err(bad)?;
        let parquet = match (serializer.parquet, serializer.orc) {
            (Some(p), None) => p,
            (None, Some(_)) => {
                return Err(invalid(
                    "Sluice converts records to Parquet only: use ParquetSerDe (OrcSerDe is not supported).",
                ));
            }
            _ => {
                return Err(invalid(
                    "OutputFormatConfiguration.Serializer names exactly one of ParquetSerDe and OrcSerDe.",
                ));
            }
        };
        Ok(Some(Conversion {
            schema,
            input,
            properties: writer_properties(&parquet)?,
        }))
    }

    /// The table's database and name.
    pub fn table(&self) -> (&str, &str) {
        (
            self.schema.database_name.as_deref().unwrap_or_default(),
            self.schema.table_name.as_deref().unwrap_or_default(),
        )
    }

    /// The buffer's records as one Parquet object (`None` when no record converts),
    /// and the records that did not convert with why.
    pub fn convert(
        &self,
        columns: &[(String, HiveType)],
        records: &[Bytes],
    ) -> Result<(Option<Vec<u8>>, Unconverted), String> {
        let schema = Arc::new(crate::tables::schema(columns));
        let mut rows: Vec<(usize, Value)> = Vec::with_capacity(records.len());
        let mut failed = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match self.rows_of(columns, record) {
                Ok(r) => rows.extend(r.into_iter().map(|row| (i, row))),
                Err(e) => failed.push((i, e)),
            }
        }
        // One decoder for every row; if it refuses the batch, each record alone, to
        // find the ones it refuses.
        let values: Vec<&Value> = rows.iter().map(|(_, v)| v).collect();
        let batch = match decode(&schema, &values) {
            Ok(batch) => batch,
            Err(_) => {
                let mut bad: BTreeMap<usize, String> = BTreeMap::new();
                let mut start = 0;
                while start < rows.len() {
                    let i = rows[start].0;
                    let end = start + rows[start..].iter().take_while(|(j, _)| *j == i).count();
                    let mine: Vec<&Value> = rows[start..end].iter().map(|(_, v)| v).collect();
                    if let Err(e) = decode(&schema, &mine) {
                        bad.insert(i, e);
                    }
                    start = end;
                }
                let good: Vec<&Value> = rows
                    .iter()
                    .filter(|(i, _)| !bad.contains_key(i))
                    .map(|(_, v)| v)
                    .collect();
                failed.extend(bad);
                failed.sort_by_key(|(i, _)| *i);
                decode(&schema, &good)?
            }
        };
        let Some(batch) = batch else {
            return Ok((None, failed));
        };
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(self.properties.clone()))
            .map_err(|e| format!("the Parquet writer: {e}"))?;
        writer
            .write(&batch)
            .map_err(|e| format!("writing Parquet: {e}"))?;
        let body = writer
            .into_inner()
            .map_err(|e| format!("closing Parquet: {e}"))?;
        Ok((Some(body), failed))
    }

    /// A record's JSON documents as rows keyed by column.
    fn rows_of(&self, columns: &[(String, HiveType)], record: &[u8]) -> Result<Vec<Value>, String> {
        let mut rows = Vec::new();
        for document in serde_json::Deserializer::from_slice(record).into_iter::<Value>() {
            let document = document.map_err(|e| format!("not JSON: {e}"))?;
            let Value::Object(object) = document else {
                return Err("a record's JSON is an object".into());
            };
            if rows.len() == DOCUMENTS_PER_RECORD_MAX {
                return Err(format!(
                    "a record holds at most {DOCUMENTS_PER_RECORD_MAX} JSON documents"
                ));
            }
            rows.push(Value::Object(self.row(columns, object)?));
        }
        if rows.is_empty() {
            return Err("the record holds no JSON".into());
        }
        Ok(rows)
    }

    fn row(
        &self,
        columns: &[(String, HiveType)],
        object: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let object = self.keys(object);
        let mut row = Map::new();
        for (name, t) in columns {
            let key = match &self.input {
                Input::OpenX { mappings, .. } => mappings.get(name).map(|k| self.key(k)),
                Input::Hive { .. } => None,
            };
            if let Some(v) = object.get(key.as_deref().unwrap_or(name))
                && !v.is_null()
            {
                let v = self
                    .value(t, v.clone())
                    .map_err(|e| format!("column {name}: {e}"))?;
                row.insert(name.clone(), v);
            }
        }
        Ok(row)
    }

    /// A key as the deserializer matches it.
    fn key(&self, key: &str) -> String {
        match &self.input {
            Input::OpenX {
                case_insensitive,
                dots_to_underscores,
                ..
            } => {
                let k = if *dots_to_underscores {
                    key.replace('.', "_")
                } else {
                    key.to_string()
                };
                if *case_insensitive {
                    k.to_lowercase()
                } else {
                    k
                }
            }
            Input::Hive { .. } => key.to_lowercase(),
        }
    }

    fn keys(&self, object: Map<String, Value>) -> Map<String, Value> {
        object.into_iter().map(|(k, v)| (self.key(&k), v)).collect()
    }

    /// A value shaped for its column's type: struct keys matched like a record's,
    /// timestamps as milliseconds, binary (base64 in JSON) as hex for the decoder.
    fn value(&self, t: &HiveType, v: Value) -> Result<Value, String> {
        Ok(match (t, v) {
            (_, Value::Null) => Value::Null,
            (HiveType::Struct(fields), Value::Object(o)) => {
                let o = self.keys(o);
                let mut out = Map::new();
                for (name, ft) in fields {
                    if let Some(v) = o.get(name) {
                        out.insert(
                            name.clone(),
                            self.value(ft, v.clone())
                                .map_err(|e| format!("{name}: {e}"))?,
                        );
                    }
                }
                Value::Object(out)
            }
            (HiveType::Struct(_), other) => return Err(format!("{other} is not an object")),
            (HiveType::Array(inner), Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.value(inner, v))
                    .collect::<Result<_, _>>()?,
            ),
            (HiveType::Array(_), other) => return Err(format!("{other} is not an array")),
            (HiveType::Map(_, value_type), Value::Object(o)) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| Ok((k, self.value(value_type, v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            (HiveType::Map(..), other) => return Err(format!("{other} is not an object")),
            (HiveType::Timestamp, v) => Value::from(self.timestamp(&v)?),
            (HiveType::Binary, Value::String(s)) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| format!("binary is base64: {e}"))?;
                Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
            }
            (_, v) => v,
        })
    }

    /// A timestamp as milliseconds since the epoch (UTC where it names no zone).
    fn timestamp(&self, v: &Value) -> Result<i64, String> {
        let text = match v {
            Value::String(s) => s.trim(),
            Value::Number(n) => {
                let millis_allowed = match &self.input {
                    Input::OpenX { .. } => true,
                    Input::Hive { formats } => formats.contains(&TimestampFormat::Millis),
                };
                return match n.as_i64() {
                    Some(ms) if millis_allowed => Ok(ms),
                    _ => Err(format!("{n} is not a timestamp this deserializer reads")),
                };
            }
            other => return Err(format!("{other} is not a timestamp")),
        };
        let formats: &[TimestampFormat] = match &self.input {
            Input::Hive { formats } => formats,
            Input::OpenX { .. } => &[],
        };
        for f in formats {
            let parsed = match f {
                TimestampFormat::Millis => text.parse::<i64>().ok(),
                TimestampFormat::Pattern(p) => parse_with(text, p),
            };
            if let Some(ms) = parsed {
                return Ok(ms);
            }
        }
        // java.sql.Timestamp's own form (Hive's default), and for OpenX also ISO 8601.
        if let Some(ms) = parse_with(text, "%Y-%m-%d %H:%M:%S%.f") {
            return Ok(ms);
        }
        if matches!(self.input, Input::OpenX { .. }) {
            if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                return Ok(t.timestamp_millis());
            }
            if let Some(ms) = parse_with(text, "%Y-%m-%dT%H:%M:%S%.f") {
                return Ok(ms);
            }
        }
        Err(format!(
            "{text:?} is not a timestamp this deserializer reads"
        ))
    }
}

/// Parses with a chrono pattern: with a zone when the pattern has one, else as UTC.
fn parse_with(text: &str, pattern: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_str(text, pattern) {
        return Some(t.timestamp_millis());
    }
    NaiveDateTime::parse_from_str(text, pattern)
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// The rows decoded against the schema into one batch (`None` when there are none).
fn decode(
    schema: &Arc<Schema>,
    rows: &[&Value],
) -> Result<Option<arrow_array::RecordBatch>, String> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len())
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    decoder.serialize(rows).map_err(|e| e.to_string())?;
    decoder.flush().map_err(|e| e.to_string())
}

fn writer_properties(p: &ParquetSerDe) -> Result<WriterProperties, ApiError> {
    if let Some(b) = p.block_size
        && b < BLOCK_SIZE_MIN
    {
        return Err(invalid(format!(
            "ParquetSerDe.BlockSizeBytes is at least {BLOCK_SIZE_MIN}; got {b}."
        )));
    }
    let page = p.page_size.unwrap_or(1 << 20);
    if page < PAGE_SIZE_MIN {
        return Err(invalid(format!(
            "ParquetSerDe.PageSizeBytes is at least {PAGE_SIZE_MIN}; got {page}."
        )));
    }
    if p.max_padding.is_some_and(|m| m < 0) {
        return Err(invalid("ParquetSerDe.MaxPaddingBytes is at least 0."));
    }
    let compression = match p.compression.as_deref().unwrap_or("SNAPPY") {
        "SNAPPY" => Compression::SNAPPY,
        "GZIP" => Compression::GZIP(GzipLevel::default()),
        "UNCOMPRESSED" => Compression::UNCOMPRESSED,
        other => {
            return Err(invalid(format!(
                "ParquetSerDe.Compression is UNCOMPRESSED, GZIP or SNAPPY; got {other}."
            )));
        }
    };
    let version = match p.writer_version.as_deref().unwrap_or("V1") {
        "V1" => WriterVersion::PARQUET_1_0,
        "V2" => WriterVersion::PARQUET_2_0,
        other => {
            return Err(invalid(format!(
                "ParquetSerDe.WriterVersion is V1 or V2; got {other}."
            )));
        }
    };
    Ok(WriterProperties::builder()
        .set_compression(compression)
        .set_data_page_size_limit(page as usize)
        .set_dictionary_enabled(p.dictionary)
        .set_writer_version(version)
        .set_created_by("Sluice Firehose".into())
        .build())
}

/// A Joda DateTimeFormat pattern as chrono's, for the letters timestamps use.
fn joda_to_chrono(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|d| **d == c).count();
        if c == '\'' {
            // A quoted literal; '' is a quote.
            let end = chars[i + 1..]
                .iter()
                .position(|d| *d == '\'')
                .ok_or("an unclosed quote")?;
            if end == 0 {
                out.push('\'');
            }
            for d in &chars[i + 1..i + 1 + end] {
                if *d == '%' {
                    out.push_str("%%");
                } else {
                    out.push(*d);
                }
            }
            i += end + 2;
            continue;
        }
        if c.is_ascii_alphabetic() {
            let spec = match (c, run) {
                ('y' | 'Y' | 'u', 2) => "%y".to_string(),
                ('y' | 'Y' | 'u', _) => "%Y".to_string(),
                ('M', 1 | 2) => "%m".to_string(),
                ('M', 3) => "%b".to_string(),
                ('M', _) => "%B".to_string(),
                ('d', 1 | 2) => "%d".to_string(),
                ('D', _) => "%j".to_string(),
                ('H', 1 | 2) => "%H".to_string(),
                ('h', 1 | 2) => "%I".to_string(),
                ('m', 1 | 2) => "%M".to_string(),
                ('s', 1 | 2) => "%S".to_string(),
                ('S', n) if n <= 9 => format!("%{n}f"),
                ('a', _) => "%p".to_string(),
                ('E', 1..=3) => "%a".to_string(),
                ('E', _) => "%A".to_string(),
                ('Z', 1) => "%z".to_string(),
                ('Z', 2) => "%:z".to_string(),
                _ => {
                    return Err(format!(
                        "the pattern letter {} is not one Sluice reads",
                        c.to_string().repeat(run)
                    ));
                }
            };
            out.push_str(&spec);
        } else if c == '%' {
            out.push_str(&"%%".repeat(run));
        } else {
            out.extend(std::iter::repeat_n(c, run));
        }
        i += run;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns() -> Vec<(String, HiveType)> {
        crate::tables::parse_columns(&[
            crate::tables::Column {
                name: "id".into(),
                type_name: "bigint".into(),
            },
            crate::tables::Column {
                name: "name".into(),
                type_name: "string".into(),
            },
            crate::tables::Column {
                name: "at".into(),
                type_name: "timestamp".into(),
            },
            crate::tables::Column {
                name: "tags".into(),
                type_name: "array<string>".into(),
            },
            crate::tables::Column {
                name: "inner".into(),
                type_name: "struct<score:double>".into(),
            },
        ])
        .unwrap()
    }

    fn openx() -> Conversion {
        Conversion::parse(&Some(json!({
            "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {
                "ConvertDotsInJsonKeysToUnderscores": true,
                "ColumnToJsonKeyMappings": {"name": "Full.Name"}}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "GZIP"}}}
        })))
        .unwrap()
        .unwrap()
    }

    fn read(body: Vec<u8>) -> Vec<arrow_array::RecordBatch> {
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(Bytes::from(body), 1024)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    #[test]
    fn json_records_become_parquet_rows_and_bad_ones_are_named() {
        use arrow_array::Array;
        let records = [
            Bytes::from_static(
                br#"{"ID": 1, "full.name": "a", "at": "2024-01-02T03:04:05Z", "tags": ["x"], "Inner": {"Score": 1.5}}"#,
            ),
            Bytes::from_static(b"not json"),
            Bytes::from_static(br#"{"id": "not a number"}"#),
            Bytes::from_static(b"{\"id\": 2, \"at\": 1700000000000}\n{\"id\": 3}\n"),
            Bytes::from_static(br#"{"id": 4, "at": "yesterday"}"#),
        ];
        let (body, failed) = openx().convert(&columns(), &records).unwrap();
        let failed: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
        assert_eq!(failed, vec![1, 2, 4]);
        let batches = read(body.unwrap());
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
        let b = &batches[0];
        let ids = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Int64Array>()
            .unwrap();
        assert_eq!(ids.values().to_vec(), vec![1, 2, 3]);
        let names = b
            .column_by_name("name")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(names.value(0), "a");
        assert!(names.is_null(1));
        let at = b
            .column_by_name("at")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(at.value(0), 1_704_164_645_000);
        assert_eq!(at.value(1), 1_700_000_000_000);
        let inner = b
            .column_by_name("inner")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StructArray>()
            .unwrap();
        assert!(!inner.is_null(0));
    }

    #[test]
    fn hive_reads_its_formats_only() {
        let c = Conversion::parse(&Some(json!({
            "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"HiveJsonSerDe": {
                "TimestampFormats": ["dd/MM/yyyy HH:mm:ss", "millis"]}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
        })))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.timestamp(&json!("02/01/2024 03:04:05")).unwrap(),
            1_704_164_645_000
        );
        assert_eq!(c.timestamp(&json!(5)).unwrap(), 5);
        assert_eq!(
            c.timestamp(&json!("2024-01-02 03:04:05.5")).unwrap(),
            1_704_164_645_500
        );
        assert!(c.timestamp(&json!("2024-01-02T03:04:05Z")).is_err());
    }

    #[test]
    fn configurations_are_checked() {
        let base = json!({
            "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t"},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
        });
        assert!(Conversion::parse(&Some(base.clone())).unwrap().is_some());
        let mut off = base.clone();
        off["Enabled"] = false.into();
        assert!(Conversion::parse(&Some(off)).unwrap().is_none());
        let mut orc = base.clone();
        orc["OutputFormatConfiguration"]["Serializer"] = json!({"OrcSerDe": {}});
        assert!(Conversion::parse(&Some(orc)).is_err());
        let mut small = base.clone();
        small["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["PageSizeBytes"] =
            1024.into();
        assert!(Conversion::parse(&Some(small)).is_err());
        let mut joda = base.clone();
        joda["InputFormatConfiguration"]["Deserializer"] =
            json!({"HiveJsonSerDe": {"TimestampFormats": ["yyyy-MM-dd G"]}});
        assert!(Conversion::parse(&Some(joda)).is_err());
        let mut no_table = base;
        no_table["SchemaConfiguration"] = json!({"DatabaseName": "db"});
        assert!(Conversion::parse(&Some(no_table)).is_err());
        assert_eq!(
            joda_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSSZ").unwrap(),
            "%Y-%m-%dT%H:%M:%S.%3f%z"
        );
    }
}
