//! The shapes every Firehose destination shares: buffering hints, processors,
//! compression, retry options and the S3 destination (every destination keeps one for
//! backups and failures), the names a RoleARN and a BucketARN carry, and where a
//! destination may be (https, or http on this machine). They depend on nothing else
//! in the crate, so each destination's module builds on them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

/// Buffering defaults and bounds (S3: 1-128 MiB; 0-900 s).
pub const BUFFER_SIZE_DEFAULT_MIB: i64 = 5;
pub const BUFFER_INTERVAL_DEFAULT_S: i64 = 300;
pub const S3_BUFFER_SIZE_MAX_MIB: i64 = 128;
pub const BUFFER_INTERVAL_MAX_S: i64 = 900;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BufferingHints {
    #[serde(rename = "SizeInMBs", skip_serializing_if = "Option::is_none")]
    pub size_mib: Option<i64>,
    #[serde(rename = "IntervalInSeconds", skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<i64>,
}

impl BufferingHints {
    pub fn check(&self, size_max_mib: i64) -> Result<(), ApiError> {
        if let Some(size) = self.size_mib
            && !(1..=size_max_mib).contains(&size)
        {
            return Err(invalid(format!(
                "BufferingHints.SizeInMBs must be between 1 and {size_max_mib}, got {size}."
            )));
        }
        if let Some(interval) = self.interval_s
            && !(0..=BUFFER_INTERVAL_MAX_S).contains(&interval)
        {
            return Err(invalid(format!(
                "BufferingHints.IntervalInSeconds must be between 0 and {BUFFER_INTERVAL_MAX_S}, got {interval}."
            )));
        }
        Ok(())
    }

    pub fn size_bytes(&self) -> usize {
        (self.size_mib.unwrap_or(BUFFER_SIZE_DEFAULT_MIB) as usize) << 20
    }

    pub fn interval_ms(&self) -> i64 {
        self.interval_s.unwrap_or(BUFFER_INTERVAL_DEFAULT_S) * 1000
    }

    pub fn described(&self) -> BufferingHints {
        BufferingHints {
            size_mib: Some(self.size_mib.unwrap_or(BUFFER_SIZE_DEFAULT_MIB)),
            interval_s: Some(self.interval_s.unwrap_or(BUFFER_INTERVAL_DEFAULT_S)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessorParameter {
    #[serde(rename = "ParameterName")]
    pub name: String,
    #[serde(rename = "ParameterValue")]
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Processor {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Parameters", default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ProcessorParameter>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessingConfiguration {
    #[serde(rename = "Enabled", skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(rename = "Processors", default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Processor>,
}

impl ProcessingConfiguration {
    pub fn check(&self) -> Result<(), ApiError> {
        for p in &self.processors {
            match p.kind.as_str() {
                "AppendDelimiterToRecord" => {}
                "Lambda" => {
                    return Err(invalid(
                        "A Lambda processor cannot run here: Sluice has no Lambda. Transform records before PutRecord, or use AppendDelimiterToRecord.",
                    ));
                }
                "MetadataExtraction" => {
                    let query = p
                        .parameters
                        .iter()
                        .find(|x| x.name == "MetadataExtractionQuery")
                        .ok_or_else(|| {
                            invalid("MetadataExtraction needs a MetadataExtractionQuery parameter.")
                        })?;
                    crate::partition::Query::compile(&query.value)
                        .map_err(|e| invalid(format!("MetadataExtractionQuery: {e}.")))?;
                    if let Some(engine) =
                        p.parameters.iter().find(|x| x.name == "JsonParsingEngine")
                        && engine.value != "JQ-1.6"
                    {
                        return Err(invalid("JsonParsingEngine must be JQ-1.6."));
                    }
                }
                "RecordDeAggregation" | "CloudWatchLogProcessing" | "Decompression" => {
                    return Err(invalid(format!(
                        "Processor type {} is not supported by Sluice yet.",
                        p.kind
                    )));
                }
                other => {
                    return Err(invalid(format!("Unknown processor type {other}.")));
                }
            }
        }
        Ok(())
    }

    /// The MetadataExtraction processor's query, if it is on.
    pub fn extraction_query(&self) -> Option<&str> {
        if self.enabled == Some(false) {
            return None;
        }
        self.processors
            .iter()
            .find(|p| p.kind == "MetadataExtraction")?
            .parameters
            .iter()
            .find(|x| x.name == "MetadataExtractionQuery")
            .map(|x| x.value.as_str())
    }

    /// The delimiter AppendDelimiterToRecord appends to each record, if it is on.
    pub fn delimiter(&self) -> Option<Vec<u8>> {
        if self.enabled == Some(false) {
            return None;
        }
        let p = self
            .processors
            .iter()
            .find(|p| p.kind == "AppendDelimiterToRecord")?;
        let given = p
            .parameters
            .iter()
            .find(|x| x.name == "Delimiter")
            .map(|x| unescape(&x.value));
        Some(given.unwrap_or_else(|| b"\n".to_vec()))
    }
}

/// `\n`, `\t`, `\r` and `\\` as the console writes them.
fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\r", "\r")
        .replace("\\\\", "\\")
        .into_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Gzip,
    Snappy,
    HadoopSnappy,
    Zip,
}

impl Compression {
    pub fn parse(text: Option<&str>) -> Result<Compression, ApiError> {
        Ok(match text.unwrap_or("UNCOMPRESSED") {
            "UNCOMPRESSED" => Compression::Uncompressed,
            "GZIP" => Compression::Gzip,
            "Snappy" => Compression::Snappy,
            "HADOOP_SNAPPY" => Compression::HadoopSnappy,
            "ZIP" => Compression::Zip,
            other => {
                return Err(invalid(format!(
                    "CompressionFormat must be one of UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY; got {other}."
                )));
            }
        })
    }

    /// The object name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Snappy | Compression::HadoopSnappy => ".snappy",
            Compression::Zip => ".zip",
        }
    }
}

/// An S3 destination (`S3DestinationConfiguration` or its extended form).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct S3Destination {
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,
    #[serde(rename = "Prefix", skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(rename = "ErrorOutputPrefix", skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,
    #[serde(rename = "BufferingHints", default)]
    pub buffering_hints: BufferingHints,
    #[serde(rename = "CompressionFormat", skip_serializing_if = "Option::is_none")]
    pub compression_format: Option<String>,
    #[serde(
        rename = "EncryptionConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption_configuration: Option<Value>,
    #[serde(
        rename = "CloudWatchLoggingOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_watch_logging_options: Option<Value>,
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
    pub s3_backup_configuration: Option<Box<S3Destination>>,
    #[serde(
        rename = "DataFormatConversionConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_format_conversion_configuration: Option<Value>,
    #[serde(
        rename = "DynamicPartitioningConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_partitioning_configuration: Option<Value>,
    #[serde(rename = "FileExtension", skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    #[serde(rename = "CustomTimeZone", skip_serializing_if = "Option::is_none")]
    pub custom_time_zone: Option<String>,
}

pub fn enabled(value: &Option<Value>) -> bool {
    value
        .as_ref()
        .and_then(|v| v.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl S3Destination {
    pub fn check(&self, size_max_mib: i64) -> Result<(), ApiError> {
        role_connection(&self.role_arn)?;
        bucket_name(&self.bucket_arn)?;
        self.buffering_hints.check(size_max_mib)?;
        Compression::parse(self.compression_format.as_deref())?;
        for (what, prefix) in [
            ("Prefix", &self.prefix),
            ("ErrorOutputPrefix", &self.error_output_prefix),
        ] {
            if let Some(p) = prefix {
                if p.len() > 1024 {
                    return Err(invalid(format!("{what} is longer than 1024 characters.")));
                }
                crate::prefix::check(p, what == "ErrorOutputPrefix", self.partitioned())?;
            }
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        if crate::convert::Conversion::parse(&self.data_format_conversion_configuration)?.is_some()
        {
            if self.compression() != Compression::Uncompressed {
                return Err(invalid(
                    "With record format conversion, CompressionFormat is UNCOMPRESSED (the ParquetSerDe compresses).",
                ));
            }
            if let Some(size) = self.buffering_hints.size_mib
                && size < crate::convert::BUFFER_SIZE_MIN_MIB
            {
                return Err(invalid(format!(
                    "With record format conversion, BufferingHints.SizeInMBs is at least {}; got {size}.",
                    crate::convert::BUFFER_SIZE_MIN_MIB
                )));
            }
        }
        if self.partitioned() {
            let query = self
                .processing_configuration
                .as_ref()
                .and_then(ProcessingConfiguration::extraction_query);
            if query.is_none() {
                return Err(invalid(
                    "Dynamic partitioning needs a MetadataExtraction processor (Sluice has no Lambda).",
                ));
            }
            if self.prefix.as_deref().unwrap_or("").is_empty() {
                return Err(invalid(
                    "With dynamic partitioning, Prefix must use !{partitionKeyFromQuery:...}.",
                ));
            }
            if self.error_output_prefix.as_deref().unwrap_or("").is_empty() {
                return Err(invalid(
                    "With dynamic partitioning, ErrorOutputPrefix is required.",
                ));
            }
        } else if self
            .processing_configuration
            .as_ref()
            .and_then(ProcessingConfiguration::extraction_query)
            .is_some()
        {
            return Err(invalid(
                "The MetadataExtraction processor needs DynamicPartitioningConfiguration enabled.",
            ));
        }
        if let Some(tz) = &self.custom_time_zone
            && tz != "UTC"
        {
            return Err(invalid(format!(
                "CustomTimeZone {tz} is not supported by Sluice: object names use UTC."
            )));
        }
        if let Some(ext) = &self.file_extension
            && (ext.len() > 128
                || !ext.starts_with('.')
                || !ext[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c)))
        {
            return Err(invalid(format!(
                "FileExtension {ext:?} must start with a period and hold only letters, digits and !-_.*'()"
            )));
        }
        match self.s3_backup_mode.as_deref() {
            None | Some("Disabled") => {}
            Some("Enabled") => match &self.s3_backup_configuration {
                Some(backup) => backup.check(S3_BUFFER_SIZE_MAX_MIB)?,
                None => {
                    return Err(invalid(
                        "S3BackupMode Enabled needs an S3BackupConfiguration.",
                    ));
                }
            },
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode must be Disabled or Enabled, got {other}."
                )));
            }
        }
        Ok(())
    }

    /// The buffering hints, with conversion's larger default size.
    pub fn buffering(&self) -> BufferingHints {
        let mut hints = self.buffering_hints.clone();
        if hints.size_mib.is_none()
            && crate::convert::enabled(&self.data_format_conversion_configuration)
        {
            hints.size_mib = Some(crate::convert::BUFFER_SIZE_DEFAULT_MIB);
        }
        hints
    }

    /// The extension objects are named with: FileExtension, or `.parquet` when records
    /// are converted, or the compression's.
    pub fn extension(&self) -> String {
        match &self.file_extension {
            Some(e) => e.clone(),
            None if crate::convert::enabled(&self.data_format_conversion_configuration) => {
                ".parquet".into()
            }
            None => self.compression().extension().into(),
        }
    }

    /// Whether dynamic partitioning is on.
    pub fn partitioned(&self) -> bool {
        enabled(&self.dynamic_partitioning_configuration)
    }

    pub fn compression(&self) -> Compression {
        Compression::parse(self.compression_format.as_deref()).unwrap_or(Compression::Uncompressed)
    }

    /// The description: what was given, with AWS's defaults.
    pub fn described(&self, extended: bool) -> Value {
        let mut d = self.clone();
        d.buffering_hints = self.buffering().described();
        d.compression_format = Some(
            self.compression_format
                .clone()
                .unwrap_or_else(|| "UNCOMPRESSED".into()),
        );
        if d.encryption_configuration.is_none() {
            d.encryption_configuration =
                Some(serde_json::json!({"NoEncryptionConfig": "NoEncryption"}));
        }
        let backup = d.s3_backup_configuration.take();
        let mut v = serde_json::to_value(&d).expect("serializable");
        if extended {
            if d.s3_backup_mode.is_none() {
                v["S3BackupMode"] = "Disabled".into();
            }
            if let Some(b) = backup {
                v["S3BackupDescription"] = b.described(false);
            }
        } else if let Value::Object(map) = &mut v {
            for key in [
                "ProcessingConfiguration",
                "S3BackupMode",
                "DataFormatConversionConfiguration",
                "DynamicPartitioningConfiguration",
                "FileExtension",
                "CustomTimeZone",
            ] {
                map.remove(key);
            }
        }
        v
    }
}
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RetryOptions {
    #[serde(rename = "DurationInSeconds", skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<i64>,
}

impl RetryOptions {
    /// A destination's retry duration is 0 to `max_s` seconds.
    pub fn check(&self, max_s: i64) -> Result<(), ApiError> {
        match self.duration_s {
            Some(d) if !(0..=max_s).contains(&d) => Err(invalid(format!(
                "RetryOptions.DurationInSeconds must be between 0 and {max_s}, got {d}."
            ))),
            _ => Ok(()),
        }
    }
}

/// The connection a RoleARN names: `arn:aws:iam::ACCOUNT:role/NAME` names `NAME`.
pub fn role_connection(role_arn: &str) -> Result<&str, ApiError> {
    let bad = || {
        invalid(format!(
            "RoleARN {role_arn:?} must be arn:aws:iam::<account>:role/<name>, naming a Sluice connection (sluice connection put NAME ...)."
        ))
    };
    if role_arn.len() > 512 {
        return Err(bad());
    }
    let rest = role_arn.strip_prefix("arn:").ok_or_else(bad)?;
    let (_partition, rest) = rest.split_once(":iam::").ok_or_else(bad)?;
    let (account, name) = rest.split_once(":role/").ok_or_else(bad)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let name = name.rsplit('/').next().unwrap_or(name);
    if name.is_empty() || !valid_connection_name(name) {
        return Err(bad());
    }
    Ok(name)
}

/// The bucket a BucketARN names: `arn:aws:s3:::BUCKET`.
pub fn bucket_name(bucket_arn: &str) -> Result<&str, ApiError> {
    let bad = || {
        invalid(format!(
            "BucketARN {bucket_arn:?} must be arn:aws:s3:::<bucket> with a bucket name of 3 to 63 characters."
        ))
    };
    let rest = bucket_arn.strip_prefix("arn:").ok_or_else(bad)?;
    let (_partition, bucket) = rest.split_once(":s3:::").ok_or_else(bad)?;
    if !(3..=63).contains(&bucket.len())
        || !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(bad());
    }
    Ok(bucket)
}

/// `[a-zA-Z0-9_.@+=,-]`, 1 to 64 characters: an IAM role name's characters, which a
/// connection's name uses.
pub fn valid_connection_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@+=,-".contains(&b))
}

pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return authority.split(']').next().map_or("", |h| &h[1..]);
    }
    authority.split(':').next().unwrap_or("")
}

/// An endpoint URL Firehose takes: `https://`, as the API's pattern says.
pub fn check_url(url: &str) -> Result<(), ApiError> {
    check_url_allowing_loopback_http(url)
}

/// `https://...`, or `http://` to a loopback address (a server on this machine).
pub fn check_url_allowing_loopback_http(url: &str) -> Result<(), ApiError> {
    if let Some(rest) = url.strip_prefix("https://") {
        if host_of(rest).is_empty() {
            return Err(invalid(format!("The URL {url:?} names no host.")));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        if is_loopback_host(host_of(rest)) {
            return Ok(());
        }
        return Err(invalid(format!(
            "The URL {url:?} is plain http to another machine: use https."
        )));
    }
    Err(invalid(format!(
        "The URL {url:?} must start with https://."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_name_connections() {
        assert_eq!(
            role_connection("arn:aws:iam::123456789012:role/lake").unwrap(),
            "lake"
        );
        assert_eq!(
            role_connection("arn:aws:iam::123456789012:role/path/lake").unwrap(),
            "lake"
        );
        assert!(role_connection("arn:aws:iam::12345:role/lake").is_err());
        assert!(role_connection("lake").is_err());
    }

    #[test]
    fn bucket_arns_name_buckets() {
        assert_eq!(bucket_name("arn:aws:s3:::my-lake").unwrap(), "my-lake");
        assert!(bucket_name("arn:aws:s3:::ab").is_err());
        assert!(bucket_name("arn:aws:s3:::Upper").is_err());
    }

    #[test]
    fn buffering_hints_keep_their_bounds() {
        let ok = BufferingHints {
            size_mib: Some(128),
            interval_s: Some(0),
        };
        assert!(ok.check(S3_BUFFER_SIZE_MAX_MIB).is_ok());
        assert!(ok.check(64).is_err());
        let slow = BufferingHints {
            size_mib: None,
            interval_s: Some(901),
        };
        assert!(slow.check(S3_BUFFER_SIZE_MAX_MIB).is_err());
        let retry = |d| RetryOptions {
            duration_s: Some(d),
        };
        assert!(retry(7_200).check(7_200).is_ok());
        assert!(retry(7_201).check(7_200).is_err());
        assert!(retry(-1).check(7_200).is_err());
        assert_eq!(BufferingHints::default().size_bytes(), 5 << 20);
    }

    #[test]
    fn delimiters_unescape() {
        let p = ProcessingConfiguration {
            enabled: Some(true),
            processors: vec![Processor {
                kind: "AppendDelimiterToRecord".into(),
                parameters: vec![],
            }],
        };
        assert_eq!(p.delimiter(), Some(b"\n".to_vec()));
        assert!(p.check().is_ok());
        let lambda = ProcessingConfiguration {
            enabled: Some(true),
            processors: vec![Processor {
                kind: "Lambda".into(),
                parameters: vec![],
            }],
        };
        assert!(lambda.check().is_err());
    }

    #[test]
    fn urls_are_https_or_loopback() {
        assert!(check_url("https://example.com/in").is_ok());
        assert!(check_url("http://127.0.0.1:8080/in").is_ok());
        assert!(check_url("http://[::1]:8080/in").is_ok());
        assert!(check_url("http://localhost/in").is_ok());
        assert!(check_url("http://example.com/in").is_err());
        assert!(check_url("http://127.0.0.1.evil.com/in").is_err());
        assert!(check_url("ftp://127.0.0.1/").is_err());
        assert!(check_url("https://").is_err());
    }
}
