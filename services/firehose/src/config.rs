//! A delivery stream's configuration: the destination shapes of Firehose's API as the
//! request gives them, checked against the documented constraints and against what
//! Sluice can deliver, and turned back into the shapes DescribeDeliveryStream answers.
//! What is stored is the request's own JSON (with a secret, the HTTP endpoint's access
//! key, sealed), so a Describe shows what was asked for, with AWS's defaults filled in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

/// Buffering defaults and bounds (S3: 1-128 MiB; HTTP endpoints: 1-64 MiB; 0-900 s).
pub const BUFFER_SIZE_DEFAULT_MIB: i64 = 5;
pub const BUFFER_INTERVAL_DEFAULT_S: i64 = 300;
pub const S3_BUFFER_SIZE_MAX_MIB: i64 = 128;
pub const HTTP_BUFFER_SIZE_MAX_MIB: i64 = 64;
pub const BUFFER_INTERVAL_MAX_S: i64 = 900;
/// How long an HTTP endpoint delivery is retried by default, and at most (2 hours).
pub const HTTP_RETRY_DEFAULT_S: i64 = 300;
pub const HTTP_RETRY_MAX_S: i64 = 7_200;
/// Common attributes one HTTP endpoint request carries at most.
pub const COMMON_ATTRIBUTES_MAX: usize = 50;

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
    fn check(&self, size_max_mib: i64) -> Result<(), ApiError> {
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

    fn described(&self) -> BufferingHints {
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
                "RecordDeAggregation"
                | "MetadataExtraction"
                | "CloudWatchLogProcessing"
                | "Decompression" => {
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

fn enabled(value: &Option<Value>) -> bool {
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
                crate::prefix::check(p, what == "ErrorOutputPrefix")?;
            }
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        if enabled(&self.data_format_conversion_configuration) {
            return Err(invalid(
                "Record format conversion is not supported by Sluice yet; deliver JSON as it is.",
            ));
        }
        if enabled(&self.dynamic_partitioning_configuration) {
            return Err(invalid(
                "Dynamic partitioning is not supported by Sluice yet.",
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

    pub fn compression(&self) -> Compression {
        Compression::parse(self.compression_format.as_deref()).unwrap_or(Compression::Uncompressed)
    }

    /// The description: what was given, with AWS's defaults.
    pub fn described(&self, extended: bool) -> Value {
        let mut d = self.clone();
        d.buffering_hints = self.buffering_hints.described();
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointConfiguration {
    #[serde(rename = "Url")]
    pub url: String,
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// As given; replaced by `access_key_sealed` before it is stored.
    #[serde(rename = "AccessKey", skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The access key sealed under the server's root key (base64); never described.
    #[serde(
        rename = "SluiceAccessKeySealed",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_sealed: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommonAttribute {
    #[serde(rename = "AttributeName")]
    pub name: String,
    #[serde(rename = "AttributeValue")]
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestConfiguration {
    #[serde(rename = "ContentEncoding", skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(
        rename = "CommonAttributes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub common_attributes: Vec<CommonAttribute>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RetryOptions {
    #[serde(rename = "DurationInSeconds", skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<i64>,
}

/// An HTTP endpoint destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HttpDestination {
    #[serde(rename = "EndpointConfiguration")]
    pub endpoint: EndpointConfiguration,
    #[serde(rename = "BufferingHints", default)]
    pub buffering_hints: BufferingHints,
    #[serde(
        rename = "CloudWatchLoggingOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_watch_logging_options: Option<Value>,
    #[serde(rename = "RequestConfiguration", default)]
    pub request: RequestConfiguration,
    #[serde(
        rename = "ProcessingConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(rename = "RetryOptions", default)]
    pub retry_options: RetryOptions,
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    #[serde(rename = "S3Configuration")]
    pub s3: S3Destination,
    #[serde(
        rename = "SecretsManagerConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub secrets_manager_configuration: Option<Value>,
}

impl HttpDestination {
    pub fn check(&self) -> Result<(), ApiError> {
        let url = &self.endpoint.url;
        if url.len() > 1000 {
            return Err(invalid(
                "EndpointConfiguration.Url is longer than 1000 characters.",
            ));
        }
        crate::http::check_url(url)?;
        if let Some(key) = &self.endpoint.access_key
            && key.len() > 4096
        {
            return Err(invalid(
                "EndpointConfiguration.AccessKey is longer than 4096 characters.",
            ));
        }
        self.buffering_hints.check(HTTP_BUFFER_SIZE_MAX_MIB)?;
        match self.request.content_encoding.as_deref() {
            None | Some("NONE") | Some("GZIP") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "RequestConfiguration.ContentEncoding must be NONE or GZIP, got {other}."
                )));
            }
        }
        if self.request.common_attributes.len() > COMMON_ATTRIBUTES_MAX {
            return Err(invalid(format!(
                "RequestConfiguration.CommonAttributes holds at most {COMMON_ATTRIBUTES_MAX} attributes."
            )));
        }
        if let Some(d) = self.retry_options.duration_s
            && !(0..=HTTP_RETRY_MAX_S).contains(&d)
        {
            return Err(invalid(format!(
                "RetryOptions.DurationInSeconds must be between 0 and {HTTP_RETRY_MAX_S}, got {d}."
            )));
        }
        match self.s3_backup_mode.as_deref() {
            None | Some("FailedDataOnly") | Some("AllData") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode must be FailedDataOnly or AllData, got {other}."
                )));
            }
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        if enabled(&self.secrets_manager_configuration) {
            return Err(invalid(
                "Secrets Manager is not available here: give the AccessKey, or name a Sluice connection in RoleARN.",
            ));
        }
        self.s3.check(S3_BUFFER_SIZE_MAX_MIB)
    }

    pub fn retry_ms(&self) -> i64 {
        self.retry_options
            .duration_s
            .unwrap_or(HTTP_RETRY_DEFAULT_S)
            * 1000
    }

    pub fn described(&self) -> Value {
        let mut d = self.clone();
        d.buffering_hints = self.buffering_hints.described();
        d.retry_options.duration_s = Some(
            self.retry_options
                .duration_s
                .unwrap_or(HTTP_RETRY_DEFAULT_S),
        );
        d.s3_backup_mode = Some(
            self.s3_backup_mode
                .clone()
                .unwrap_or_else(|| "FailedDataOnly".into()),
        );
        if d.request.content_encoding.is_none() {
            d.request.content_encoding = Some("NONE".into());
        }
        let s3 = d.s3.described(false);
        let mut v = serde_json::to_value(&d).expect("serializable");
        if let Value::Object(map) = &mut v {
            map.remove("S3Configuration");
            map.insert("S3DestinationDescription".into(), s3);
            if let Some(Value::Object(endpoint)) = map.get_mut("EndpointConfiguration") {
                // INVARIANT: the access key never leaves the server.
                endpoint.remove("AccessKey");
                endpoint.remove("SluiceAccessKeySealed");
            }
        }
        v
    }
}

/// Where a delivery stream delivers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Destination {
    /// `S3DestinationConfiguration` (true: given as ExtendedS3DestinationConfiguration).
    S3 {
        extended: bool,
        s3: Box<S3Destination>,
    },
    Http(Box<HttpDestination>),
    /// `RedshiftDestinationConfiguration`, loading into a Postgres table.
    Redshift(Box<crate::warehouse::RedshiftDestination>),
    /// OpenSearch (`elasticsearch`: given as ElasticsearchDestinationConfiguration).
    Search {
        elasticsearch: bool,
        search: Box<crate::search::SearchDestination>,
    },
    Splunk(Box<crate::splunk::SplunkDestination>),
}

impl Destination {
    pub fn buffering(&self) -> BufferingHints {
        match self {
            Destination::S3 { s3, .. } => s3.buffering_hints.clone(),
            Destination::Http(h) => h.buffering_hints.clone(),
            Destination::Redshift(r) => r.s3.buffering_hints.clone(),
            Destination::Search { search, .. } => search.buffering_hints.clone(),
            Destination::Splunk(s) => s.buffering(),
        }
    }

    pub fn processing(&self) -> Option<&ProcessingConfiguration> {
        match self {
            Destination::S3 { s3, .. } => s3.processing_configuration.as_ref(),
            Destination::Http(h) => h.processing_configuration.as_ref(),
            Destination::Redshift(r) => r.processing_configuration.as_ref(),
            Destination::Search { search, .. } => search.processing_configuration.as_ref(),
            Destination::Splunk(s) => s.processing_configuration.as_ref(),
        }
    }

    /// The `Destinations` entry DescribeDeliveryStream answers.
    pub fn described(&self) -> Value {
        let mut v = serde_json::json!({"DestinationId": DESTINATION_ID});
        match self {
            Destination::S3 { s3, .. } => {
                v["S3DestinationDescription"] = s3.described(false);
                v["ExtendedS3DestinationDescription"] = s3.described(true);
            }
            Destination::Http(h) => v["HttpEndpointDestinationDescription"] = h.described(),
            Destination::Redshift(r) => v["RedshiftDestinationDescription"] = r.described(),
            Destination::Search {
                elasticsearch: true,
                search,
            } => v["ElasticsearchDestinationDescription"] = search.described(),
            Destination::Search { search, .. } => {
                v["AmazonopensearchserviceDestinationDescription"] = search.described()
            }
            Destination::Splunk(s) => v["SplunkDestinationDescription"] = s.described(),
        }
        v
    }
}

/// The one destination a delivery stream has.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// The source a KinesisStreamAsSource delivery stream reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KinesisSource {
    #[serde(rename = "KinesisStreamARN")]
    pub stream_arn: String,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
}

/// What the catalog keeps as a delivery stream's `config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_source: Option<KinesisSource>,
    /// When a stream-sourced delivery stream started reading (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_start_ms: Option<i64>,
}

impl Stored {
    pub fn parse(text: &str) -> Result<Stored, ApiError> {
        serde_json::from_str(text).map_err(|e| {
            tracing::error!(error = %e, "a delivery stream's stored configuration does not parse");
            ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
        })
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
    if name.is_empty() || !crate::connections::valid_name(name) {
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
        assert!(ok.check(HTTP_BUFFER_SIZE_MAX_MIB).is_err());
        let slow = BufferingHints {
            size_mib: None,
            interval_s: Some(901),
        };
        assert!(slow.check(S3_BUFFER_SIZE_MAX_MIB).is_err());
        assert_eq!(BufferingHints::default().size_bytes(), 5 << 20);
    }

    #[test]
    fn described_http_destinations_keep_their_access_key() {
        let h: HttpDestination = serde_json::from_value(serde_json::json!({
            "EndpointConfiguration": {"Url": "https://127.0.0.1:9/x", "AccessKey": "s3cret"},
            "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/c", "BucketARN": "arn:aws:s3:::bkt"}
        }))
        .unwrap();
        let text = h.described().to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("S3DestinationDescription"));
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
}
