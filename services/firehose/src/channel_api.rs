//! Kinesis channels' API (`Kinesis_20131202.CreateChannel` and the rest, signed as
//! `kinesis`): delivery of a stream's records, as they are, to an S3-compatible bucket.
//! A channel is a stream-sourced delivery stream kept under the name `channel/<name>`
//! (which Firehose's API cannot name, and ListDeliveryStreams skips), so Firehose's
//! deliverers deliver it: from the moment it is made (no backfill), across reshards,
//! checkpointed, at least once. What is the channel's own is its API, its shapes, and
//! its object keys (the output key template). Streaming tables (S3 Tables, Iceberg) are
//! refused: Sluice has none yet.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use catalog::firehose::{DeliveryStream, NewDeliveryStream, NewSource};
use edge::{Caller, Resource, wire_error};
use protocol::wire::Format;
use protocol::{ApiError, ErrorCode};

use crate::FirehoseService;
use crate::channel::{StoredChannel, check_template};
use crate::config::{Destination, KinesisSource, Stored};
use crate::shapes::{BufferingHints, Compression, S3Destination};

pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// Data freshness: 300 s unless given, at most 900 s (AWS's bounds; the least a
/// channel may ask for is the server's `channel_freshness_min_s`, AWS's 300 s unless
/// the operator lowered it).
pub const FRESHNESS_DEFAULT_S: i64 = 300;
pub const FRESHNESS_MAX_S: i64 = 900;
/// A channel's buffer: freshness decides when it is delivered, unless it fills first.
const CHANNEL_BUFFER_MIB: i64 = 128;
/// ListChannels answers at most this many a page.
const LIST_PAGE_MAX: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOperation {
    CreateChannel,
    DeleteChannel,
    DescribeChannel,
    ListChannels,
    UpdateChannel,
}

impl ChannelOperation {
    pub const ALL: [ChannelOperation; 5] = [
        ChannelOperation::CreateChannel,
        ChannelOperation::DeleteChannel,
        ChannelOperation::DescribeChannel,
        ChannelOperation::ListChannels,
        ChannelOperation::UpdateChannel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChannelOperation::CreateChannel => "CreateChannel",
            ChannelOperation::DeleteChannel => "DeleteChannel",
            ChannelOperation::DescribeChannel => "DescribeChannel",
            ChannelOperation::ListChannels => "ListChannels",
            ChannelOperation::UpdateChannel => "UpdateChannel",
        }
    }

    pub fn from_target(target: &str) -> Option<ChannelOperation> {
        let name = target.strip_prefix(TARGET_PREFIX)?;
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

fn channel_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:channel/{name}")
}

/// The delivery stream a channel runs as.
fn ds_name(name: &str) -> String {
    format!("channel/{name}")
}

fn check_channel_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(ApiError::validation(
            name,
            "channelName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

/// A channel ARN's account and name.
fn parse_arn<'a>(state: &FirehoseService, arn: &'a str) -> Result<(&'a str, &'a str), ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "kinesis", region, account, resource]
            if partition.starts_with("aws")
                && *region == state.region
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let name = resource
                .strip_prefix("channel/")
                .ok_or_else(|| invalid(format!("{arn} is not a channel ARN.")))?;
            check_channel_name(name)?;
            Ok((account, name))
        }
        _ => Err(invalid(format!(
            "{arn} is not a channel ARN of this region (arn:aws:kinesis:{}:ACCOUNT:channel/NAME).",
            state.region
        ))),
    }
}

async fn authorize(
    state: &FirehoseService,
    caller: &Caller,
    op: ChannelOperation,
    arn: &str,
) -> Result<(), ApiError> {
    state
        .authz
        .authorize(
            caller,
            &format!("kinesis:{}", op.name()),
            Resource::Channel {
                account: &caller.account_id,
                arn,
            },
        )
        .await
}

/// The channel the ARN names, in the caller's account.
async fn load(
    state: &FirehoseService,
    caller: &Caller,
    op: ChannelOperation,
    arn: &str,
) -> Result<(DeliveryStream, Stored, StoredChannel), ApiError> {
    let (account, name) = parse_arn(state, arn)?;
    authorize(state, caller, op, arn).await?;
    let not_found = || {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("Channel {name} under account {account} not found."),
        )
    };
    if account != caller.account_id {
        return Err(not_found());
    }
    let ds = state
        .catalog
        .delivery_stream(account, &ds_name(name))
        .await
        .map_err(|e| match e {
            catalog::CatalogError::Refused(_) => not_found(),
            e => wire_error(e),
        })?;
    let stored = Stored::parse(&ds.config)?;
    let channel = stored.channel.clone().ok_or_else(not_found)?;
    Ok((ds, stored, channel))
}

fn millis_to_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn described(state: &FirehoseService, ds: &DeliveryStream, c: &StoredChannel) -> Value {
    let streams: Vec<Value> = c
        .streams
        .iter()
        .map(|s| {
            json!({
                "StreamARN": s["StreamARN"],
                "StreamCreationTimestamp": millis_to_seconds(c.stream_created_ms),
                "RecordConfiguration": s["RecordConfiguration"],
            })
        })
        .collect();
    let mut destination = json!({
        "DataFreshnessInSeconds": c.freshness_s,
        "StorageConfiguration": c.storage,
    });
    if let Some(d) = &c.dead_letter {
        destination["DeadLetterQueueS3Configuration"] = d.clone();
    }
    let mut v = json!({
        "ChannelName": c.name,
        "ChannelARN": channel_arn(&state.region, &ds.account_id, &c.name),
        "ChannelId": c.id,
        "ChannelStatus": "ACTIVE",
        "ChannelCreationTimestamp": millis_to_seconds(ds.created_at_ms),
        "ServiceExecutionRoleARN": c.role_arn,
        "StreamConfigurationList": streams,
        "S3DestinationConfiguration": destination,
        "LoggingConfiguration": c.logging.clone().unwrap_or_else(
            || json!({"CloudWatchLogs": {"Enabled": false}})
        ),
    });
    if let Some(e) = &c.encryption {
        v["EncryptionConfiguration"] = e.clone();
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    channel_name: String,
    #[serde(rename = "ServiceExecutionRoleARN")]
    service_execution_role_arn: String,
    stream_configuration_list: Vec<Value>,
    s3_destination_configuration: Option<Value>,
    s3_tables_destination_configuration: Option<Value>,
    encryption_configuration: Option<Value>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    logging_configuration: Option<Value>,
}

fn freshness(state: &FirehoseService, given: Option<&Value>) -> Result<i64, ApiError> {
    let Some(v) = given else {
        return Ok(FRESHNESS_DEFAULT_S.max(state.channel_freshness_min_s));
    };
    let s = v
        .as_i64()
        .ok_or_else(|| invalid("DataFreshnessInSeconds is a whole number of seconds."))?;
    if !(state.channel_freshness_min_s..=FRESHNESS_MAX_S).contains(&s) {
        return Err(invalid(format!(
            "DataFreshnessInSeconds must be between {} and {FRESHNESS_MAX_S}, got {s}.",
            state.channel_freshness_min_s
        )));
    }
    Ok(s)
}

/// The S3 storage configuration, checked: bucket ARN, owner, compression, storage
/// class, key template.
fn check_storage(storage: &Value) -> Result<Compression, ApiError> {
    let bucket = storage
        .get("BucketARN")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("StorageConfiguration.BucketARN is required."))?;
    crate::shapes::bucket_name(bucket)?;
    check_owner(storage, "StorageConfiguration")?;
    if let Some(t) = storage.get("OutputKeyTemplate").and_then(Value::as_str) {
        check_template(t)?;
    }
    match storage.get("StorageClass").and_then(Value::as_str) {
        None | Some("STANDARD" | "INTELLIGENT_TIERING" | "GLACIER_IR") => {}
        Some(other) => {
            return Err(invalid(format!(
                "StorageClass must be STANDARD, INTELLIGENT_TIERING or GLACIER_IR, got {other}."
            )));
        }
    }
    match storage.get("CompressionType").and_then(Value::as_str) {
        Some("NONE") => Ok(Compression::Uncompressed),
        Some("GZIP") => Ok(Compression::Gzip),
        Some("ZSTD") => Err(invalid(
            "CompressionType ZSTD is not supported by Sluice yet: use NONE or GZIP.",
        )),
        Some(other) => Err(invalid(format!(
            "CompressionType must be NONE, GZIP or ZSTD, got {other}."
        ))),
        None => Err(invalid("StorageConfiguration.CompressionType is required.")),
    }
}

fn check_owner(config: &Value, what: &str) -> Result<(), ApiError> {
    match config.get("ExpectedBucketOwner").and_then(Value::as_str) {
        Some(o) if o.len() == 12 && o.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(invalid(format!(
            "{what}.ExpectedBucketOwner is a 12-digit account id."
        ))),
    }
}

async fn create(
    state: &FirehoseService,
    caller: &Caller,
    input: CreateInput,
) -> Result<Value, ApiError> {
    let name = input.channel_name.as_str();
    check_channel_name(name)?;
    let arn = channel_arn(&state.region, &caller.account_id, name);
    authorize(state, caller, ChannelOperation::CreateChannel, &arn).await?;
    if input.s3_tables_destination_configuration.is_some() {
        return Err(invalid(
            "S3TablesDestinationConfiguration is not supported by Sluice yet (it has no S3 Tables): deliver to a bucket with S3DestinationConfiguration.",
        ));
    }
    let destination = input.s3_destination_configuration.ok_or_else(|| {
        invalid("Specify S3DestinationConfiguration or S3TablesDestinationConfiguration.")
    })?;
    let storage = destination
        .get("StorageConfiguration")
        .cloned()
        .ok_or_else(|| invalid("S3DestinationConfiguration.StorageConfiguration is required."))?;
    let compression = check_storage(&storage)?;
    let dead_letter = destination.get("DeadLetterQueueS3Configuration").cloned();
    if let Some(d) = &dead_letter {
        let bucket = d
            .get("BucketARN")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("DeadLetterQueueS3Configuration.BucketARN is required."))?;
        crate::shapes::bucket_name(bucket)?;
        check_owner(d, "DeadLetterQueueS3Configuration")?;
    }
    let freshness_s = freshness(state, destination.get("DataFreshnessInSeconds"))?;
    if input.stream_configuration_list.len() != 1 {
        return Err(invalid(format!(
            "A channel reads one stream; StreamConfigurationList has {}.",
            input.stream_configuration_list.len()
        )));
    }
    let source = &input.stream_configuration_list[0];
    let stream_arn = source
        .get("StreamARN")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("StreamConfigurationList[0].StreamARN is required."))?;
    let delimiter = match source
        .pointer("/RecordConfiguration/RecordFormatType")
        .and_then(Value::as_str)
    {
        Some("JSON" | "STRING") => true,
        Some("BYTE_ARRAY") => false,
        Some("GSR_JSON") => {
            return Err(invalid(
                "RecordFormatType GSR_JSON is for streaming tables only; use JSON, STRING or BYTE_ARRAY.",
            ));
        }
        _ => {
            return Err(invalid(
                "RecordConfiguration.RecordFormatType must be GSR_JSON, JSON, STRING or BYTE_ARRAY.",
            ));
        }
    };
    let stream = crate::api::source_stream(state, caller, stream_arn)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("Stream {stream_arn} not found."),
            )
        })?;
    if stream.mode != catalog::streams::StreamMode::OnDemand {
        return Err(invalid(format!(
            "Channels read on-demand streams only; {} is provisioned (UpdateStreamMode to ON_DEMAND first).",
            stream.name
        )));
    }
    let existing = state
        .catalog
        .list_channels(&caller.account_id, "", i64::MAX)
        .await
        .map_err(wire_error)?;
    if existing.iter().any(|c| c.name == ds_name(name)) {
        return Err(ApiError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Channel {name} under account {} already exists.",
                caller.account_id
            ),
        ));
    }
    for other in existing {
        if other.stream_id == stream.id {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "The stream {} already has a channel to S3 ({}).",
                    stream.name,
                    other.name.trim_start_matches("channel/")
                ),
            ));
        }
    }
    let role = input.service_execution_role_arn.as_str();
    let connection = crate::shapes::role_connection(role)?;
    if state
        .catalog
        .connection(&caller.account_id, connection)
        .await
        .map_err(wire_error)?
        .is_none()
    {
        return Err(invalid(format!(
            "Unable to use role {role}: no connection {connection} is registered for this tenant (sluice connection put {connection} ...)."
        )));
    }
    if let Some(e) = &input.encryption_configuration {
        let key = e
            .get("KeyId")
            .and_then(Value::as_str)
            .filter(|_| e.get("EncryptionType").and_then(Value::as_str) == Some("KMS"))
            .ok_or_else(|| {
                invalid("EncryptionConfiguration is EncryptionType KMS with a KeyId.")
            })?;
        state.keys.key_for_delivery_stream(caller, key).await?;
    }
    if input.tags.len() > catalog::firehose::TAGS_PER_DELIVERY_STREAM_MAX {
        return Err(invalid(format!(
            "A channel carries at most {} tags in Sluice.",
            catalog::firehose::TAGS_PER_DELIVERY_STREAM_MAX
        )));
    }
    let tags: Vec<(String, String)> = input.tags.into_iter().collect();
    let now = state.clock.now_ms();
    let s3 = S3Destination {
        role_arn: role.to_string(),
        bucket_arn: storage["BucketARN"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        buffering_hints: BufferingHints {
            size_mib: Some(CHANNEL_BUFFER_MIB),
            interval_s: Some(freshness_s),
        },
        compression_format: Some(
            match compression {
                Compression::Gzip => "GZIP",
                _ => "UNCOMPRESSED",
            }
            .into(),
        ),
        processing_configuration: delimiter.then(|| crate::shapes::ProcessingConfiguration {
            enabled: Some(true),
            processors: vec![crate::shapes::Processor {
                kind: "AppendDelimiterToRecord".into(),
                parameters: Vec::new(),
            }],
        }),
        ..S3Destination::default()
    };
    let channel = StoredChannel {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        role_arn: role.to_string(),
        streams: input.stream_configuration_list.clone(),
        stream_created_ms: stream.created_at_ms,
        storage,
        dead_letter,
        freshness_s,
        encryption: input.encryption_configuration,
        logging: input.logging_configuration,
    };
    let stored = Stored {
        destination: Destination::S3 {
            extended: true,
            s3: Box::new(s3),
        },
        kinesis_source: Some(KinesisSource {
            stream_arn: stream_arn.to_string(),
            role_arn: role.to_string(),
        }),
        delivery_start_ms: Some(now),
        channel: Some(channel.clone()),
    };
    let config = serde_json::to_string(&stored).expect("serializable");
    let made = state
        .catalog
        .create_delivery_stream(&NewDeliveryStream {
            account_id: &caller.account_id,
            name: &ds_name(name),
            stream_type: "KinesisStreamAsSource",
            source: NewSource::Stream {
                stream_id: stream.id,
            },
            config: &config,
            tags: &tags,
            encryption: None,
            now_ms: now,
        })
        .await
        .map_err(|e| match e {
            catalog::CatalogError::Refused(r) if r.kind == catalog::refusal::RefusalKind::InUse => {
                ApiError::new(
                    ErrorCode::ResourceInUse,
                    format!(
                        "Channel {name} under account {} already exists.",
                        caller.account_id
                    ),
                )
            }
            e => wire_error(e),
        })?;
    Ok(json!({"ChannelDescription": described(state, &made, &channel)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArnInput {
    #[serde(rename = "ChannelARN")]
    channel_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    #[serde(rename = "ChannelARN")]
    channel_arn: String,
    s3_destination_configuration: Option<Value>,
    s3_tables_destination_configuration: Option<Value>,
    logging_configuration: Option<Value>,
}

async fn update(
    state: &FirehoseService,
    caller: &Caller,
    input: UpdateInput,
) -> Result<Value, ApiError> {
    let (ds, mut stored, mut channel) = load(
        state,
        caller,
        ChannelOperation::UpdateChannel,
        &input.channel_arn,
    )
    .await?;
    if input.s3_tables_destination_configuration.is_some() {
        return Err(invalid(
            "This channel delivers to a bucket: update S3DestinationConfiguration.",
        ));
    }
    if let Some(d) = &input.s3_destination_configuration {
        channel.freshness_s = freshness(
            state,
            Some(d.get("DataFreshnessInSeconds").unwrap_or(&Value::Null)),
        )?;
        if let Destination::S3 { s3, .. } = &mut stored.destination {
            s3.buffering_hints.interval_s = Some(channel.freshness_s);
        }
    }
    if let Some(l) = input.logging_configuration {
        channel.logging = Some(l);
    }
    stored.channel = Some(channel.clone());
    let config = serde_json::to_string(&stored).expect("serializable");
    state
        .catalog
        .update_delivery_config(
            &ds.account_id,
            &ds.name,
            ds.version_id,
            &config,
            state.clock.now_ms(),
        )
        .await
        .map_err(|e| match e {
            catalog::CatalogError::Refused(_) => ApiError::new(
                ErrorCode::ResourceInUse,
                "The channel is being updated; try again.",
            ),
            e => wire_error(e),
        })?;
    Ok(json!({"ChannelDescription": described(state, &ds, &channel)}))
}

async fn delete(
    state: &FirehoseService,
    caller: &Caller,
    input: ArnInput,
) -> Result<Value, ApiError> {
    let (ds, _, _) = load(
        state,
        caller,
        ChannelOperation::DeleteChannel,
        &input.channel_arn,
    )
    .await?;
    state
        .catalog
        .delete_delivery_stream(&ds.account_id, &ds.name)
        .await
        .map_err(wire_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    #[serde(default)]
    stream_filter: Vec<Value>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

async fn list(
    state: &FirehoseService,
    caller: &Caller,
    input: ListInput,
) -> Result<Value, ApiError> {
    let limit = input.max_results.unwrap_or(LIST_PAGE_MAX);
    crate::api::check_list(state, caller, "kinesis:ListChannels", limit, "maxResults").await?;
    let limit = limit.min(LIST_PAGE_MAX);
    let after = match &input.next_token {
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|n| n.starts_with("channel/"))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    "NextToken is not one ListChannels gave.",
                )
            })?,
        None => String::new(),
    };
    let filter: Vec<&str> = input
        .stream_filter
        .iter()
        .filter_map(|f| f.get("StreamARN").and_then(Value::as_str))
        .collect();
    let mut summaries = Vec::new();
    let mut next = None;
    let mut cursor = after;
    'pages: loop {
        let page = state
            .catalog
            .list_channels(&caller.account_id, &cursor, LIST_PAGE_MAX)
            .await
            .map_err(wire_error)?;
        if page.is_empty() {
            break;
        }
        for ds in &page {
            cursor = ds.name.clone();
            let Some(c) = Stored::parse(&ds.config)?.channel else {
                continue;
            };
            let stream_arn = c.streams[0]["StreamARN"].as_str().unwrap_or_default();
            if !filter.is_empty() && !filter.contains(&stream_arn) {
                continue;
            }
            if summaries.len() as i64 == limit {
                next = Some(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(summaries_last(&summaries).as_bytes()),
                );
                break 'pages;
            }
            summaries.push(json!({
                "ChannelName": c.name,
                "ChannelARN": channel_arn(&state.region, &ds.account_id, &c.name),
                "ChannelId": c.id,
                "ChannelStatus": "ACTIVE",
                "ChannelCreationTimestamp": millis_to_seconds(ds.created_at_ms),
                "ChannelDestinationType": "S3",
                "Streams": [{
                    "StreamARN": stream_arn,
                    "StreamCreationTimestamp": millis_to_seconds(c.stream_created_ms),
                }],
            }));
        }
    }
    let mut out = json!({"ChannelSummaries": summaries});
    if let Some(n) = next {
        out["NextToken"] = n.into();
    }
    Ok(out)
}

/// The delivery stream name of the last summary (where the next page starts after).
fn summaries_last(summaries: &[Value]) -> String {
    ds_name(
        summaries
            .last()
            .and_then(|s| s["ChannelName"].as_str())
            .unwrap_or_default(),
    )
}

pub async fn dispatch(
    state: &FirehoseService,
    caller: &Caller,
    op: ChannelOperation,
    format: Format,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use ChannelOperation as Op;
    let out = match op {
        Op::CreateChannel => create(state, caller, crate::input(format, body)?).await?,
        Op::DescribeChannel => {
            let input: ArnInput = crate::input(format, body)?;
            let (ds, _, c) = load(
                state,
                caller,
                ChannelOperation::DescribeChannel,
                &input.channel_arn,
            )
            .await?;
            json!({"ChannelDescription": described(state, &ds, &c)})
        }
        Op::UpdateChannel => update(state, caller, crate::input(format, body)?).await?,
        Op::DeleteChannel => delete(state, caller, crate::input(format, body)?).await?,
        Op::ListChannels => list(state, caller, crate::input(format, body)?).await?,
    };
    crate::out(&out)
}
