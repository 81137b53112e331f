//! The operations: each checks its input against the documented constraints, asks
//! Cedar, then acts through the catalog (configuration) or the log (records).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use catalog::firehose::{DeliveryStream, NewDeliveryStream, NewSource};
use edge::{Caller, Resource, wire_error};
use protocol::arn::StreamArn;
use protocol::hash::HashKey;
use protocol::{ApiError, ErrorCode};
use storage::commit::{AppendError, Appended, PendingRecord};

use crate::FirehoseService;
use crate::config::{DESTINATION_ID, Destination, KinesisSource, Stored};
use crate::http::HttpDestination;
use crate::shapes::{S3_BUFFER_SIZE_MAX_MIB, S3Destination};

/// PutRecordBatch's limits: records, bytes of a request, bytes of a record.
pub const BATCH_RECORDS_MAX: usize = 500;
pub const BATCH_BYTES_MAX: usize = 4 << 20;
pub const RECORD_BYTES_MAX: usize = 1_024_000;
/// ListDeliveryStreams' page size, by default and at most.
const LIST_LIMIT_DEFAULT: i64 = 10;
const LIST_LIMIT_MAX: i64 = 10_000;
/// Tags one ListTagsForDeliveryStream answers at most, and one request names.
const TAGS_PAGE_MAX: usize = 50;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if !(1..=64).contains(&name.len())
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(ApiError::validation(
            name,
            "deliveryStreamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 64",
        ));
    }
    Ok(())
}

pub fn delivery_stream_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:firehose:{region}:{account}:deliverystream/{name}")
}

/// Asks Cedar for `op` on the named delivery stream of the caller's account.
async fn authorize(
    state: &FirehoseService,
    caller: &Caller,
    action: &str,
    name: &str,
) -> Result<(), ApiError> {
    let arn = delivery_stream_arn(&state.region, &caller.account_id, name);
    state
        .authz
        .authorize(
            caller,
            action,
            Resource::DeliveryStream {
                account: &caller.account_id,
                arn: &arn,
                name,
            },
        )
        .await
}

async fn load(
    state: &FirehoseService,
    caller: &Caller,
    name: &str,
) -> Result<DeliveryStream, ApiError> {
    state
        .catalog
        .delivery_stream(&caller.account_id, name)
        .await
        .map_err(wire_error)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionInput {
    #[serde(rename = "KeyARN")]
    key_arn: Option<String>,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagInput {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    delivery_stream_name: String,
    delivery_stream_type: Option<String>,
    kinesis_stream_source_configuration: Option<KinesisSource>,
    delivery_stream_encryption_configuration_input: Option<EncryptionInput>,
    s3_destination_configuration: Option<S3Destination>,
    extended_s3_destination_configuration: Option<S3Destination>,
    http_endpoint_destination_configuration: Option<HttpDestination>,
    redshift_destination_configuration: Option<crate::warehouse::RedshiftDestination>,
    amazonopensearchservice_destination_configuration: Option<crate::search::SearchDestination>,
    elasticsearch_destination_configuration: Option<crate::search::SearchDestination>,
    splunk_destination_configuration: Option<crate::splunk::SplunkDestination>,
    #[serde(default)]
    tags: Vec<TagInput>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOutput {
    #[serde(rename = "DeliveryStreamARN")]
    delivery_stream_arn: String,
}

/// Destinations in the model Sluice does not deliver to yet, and sources it does not
/// read: answered with a clear error rather than accepted and never delivered.
const UNSUPPORTED: [&str; 5] = [
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
    "MSKSourceConfiguration",
    "DatabaseSourceConfiguration",
];

fn check_tags(tags: &[TagInput]) -> Result<Vec<(String, String)>, ApiError> {
    if tags.len() > TAGS_PAGE_MAX {
        return Err(invalid(format!(
            "A request carries at most {TAGS_PAGE_MAX} tags."
        )));
    }
    tags.iter()
        .map(|t| {
            let ok_chars = |s: &str| {
                s.chars()
                    .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@%".contains(c))
            };
            if !(1..=128).contains(&t.key.chars().count())
                || t.key.starts_with("aws:")
                || !ok_chars(&t.key)
            {
                return Err(invalid(format!("Tag key {:?} is not valid.", t.key)));
            }
            if t.value.chars().count() > 256 || !ok_chars(&t.value) {
                return Err(invalid(format!("Tag value {:?} is not valid.", t.value)));
            }
            Ok((t.key.clone(), t.value.clone()))
        })
        .collect()
}

/// A connection a destination names must be registered before it is used.
async fn check_connection(
    state: &FirehoseService,
    caller: &Caller,
    role_arn: &str,
) -> Result<(), ApiError> {
    let name = crate::shapes::role_connection(role_arn)?;
    let found = state
        .catalog
        .connection(&caller.account_id, name)
        .await
        .map_err(wire_error)?;
    if found.is_none() {
        return Err(invalid(format!(
            "Firehose is unable to use role {role_arn}: no connection {name} is registered for this tenant (sluice connection put {name} ...)."
        )));
    }
    Ok(())
}

/// The table record format conversion names must be described, in the caller's own
/// catalog.
async fn check_table(
    state: &FirehoseService,
    caller: &Caller,
    conversion: &crate::convert::Conversion,
) -> Result<(), ApiError> {
    if let Some(id) = &conversion.schema.catalog_id
        && *id != caller.account_id
    {
        return Err(invalid(format!(
            "SchemaConfiguration.CatalogId {id} is not this tenant's ({}).",
            caller.account_id
        )));
    }
    let (database, table) = conversion.table();
    if crate::tables::load(&state.catalog, &caller.account_id, database, table)
        .await?
        .is_none()
    {
        return Err(invalid(format!(
            "Table {database}.{table} is not described for this tenant (sluice table put {database} {table} --column NAME:TYPE ...)."
        )));
    }
    Ok(())
}

/// Checks a destination and the connections it names; seals an HTTP access key.
async fn settle_destination(
    state: &FirehoseService,
    caller: &Caller,
    mut destination: Destination,
) -> Result<Destination, ApiError> {
    match &mut destination {
        Destination::S3 { s3, .. } => {
            s3.check(S3_BUFFER_SIZE_MAX_MIB)?;
            check_connection(state, caller, &s3.role_arn).await?;
            if let Some(c) =
                crate::convert::Conversion::parse(&s3.data_format_conversion_configuration)?
            {
                check_table(state, caller, &c).await?;
            }
            if let Some(b) = &s3.s3_backup_configuration {
                check_connection(state, caller, &b.role_arn).await?;
            }
        }
        Destination::Http(h) => {
            h.check()?;
            check_connection(state, caller, &h.s3.role_arn).await?;
            if let Some(key) = h.endpoint.access_key.take() {
                let aad = access_key_aad(&caller.account_id);
                let sealed = state.root_key.seal(key.as_bytes(), &aad);
                h.endpoint.access_key_sealed =
                    Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            }
        }
        Destination::Splunk(s) => {
            s.check()?;
            check_connection(state, caller, &s.s3.role_arn).await?;
            if let Some(token) = s.token.take() {
                let aad = access_key_aad(&caller.account_id);
                let sealed = state.root_key.seal(token.as_bytes(), &aad);
                s.token_sealed = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            }
        }
        Destination::Search { search, .. } => {
            search.check()?;
            check_connection(state, caller, &search.role_arn).await?;
            check_connection(state, caller, &search.s3.role_arn).await?;
        }
        Destination::Redshift(r) => {
            r.check()?;
            check_connection(state, caller, &r.s3.role_arn).await?;
            if let Some(b) = &r.s3_backup_configuration {
                check_connection(state, caller, &b.role_arn).await?;
            }
            if let Some(password) = r.password.take() {
                let aad = access_key_aad(&caller.account_id);
                let sealed = state.root_key.seal(password.as_bytes(), &aad);
                r.password_sealed = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            }
        }
    }
    Ok(destination)
}

/// The stream a delivery (a stream-sourced delivery stream, a Kinesis channel) is to
/// read: in the caller's account, and readable by the caller, who gives the delivery
/// the right to read it. `None` when there is no such stream.
pub(crate) async fn source_stream(
    state: &FirehoseService,
    caller: &Caller,
    stream_arn: &str,
) -> Result<Option<catalog::streams::Stream>, ApiError> {
    let arn = StreamArn::parse(stream_arn)?;
    if arn.account_id != caller.account_id {
        return Err(invalid(format!(
            "The stream {stream_arn} is not in this account."
        )));
    }
    state
        .authz
        .authorize(
            caller,
            "kinesis:GetRecords",
            Resource::Stream {
                account: &caller.account_id,
                arn: stream_arn,
                name: &arn.stream_name,
            },
        )
        .await?;
    match state
        .catalog
        .load_stream(&caller.account_id, &arn.stream_name)
        .await
    {
        Ok(stream) => Ok(Some(stream)),
        Err(catalog::CatalogError::Refused(_)) => Ok(None),
        Err(e) => Err(wire_error(e)),
    }
}

/// A List operation's check: the caller may list on the tenant, and asked for 1 to
/// 10,000 (`member` names the limit as the model does).
pub(crate) async fn check_list(
    state: &FirehoseService,
    caller: &Caller,
    action: &str,
    limit: i64,
    member: &str,
) -> Result<(), ApiError> {
    state
        .authz
        .authorize(
            caller,
            action,
            Resource::Tenant {
                account: &caller.account_id,
            },
        )
        .await?;
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::validation(
            limit,
            member,
            "Member must have value between 1 and 10000",
        ));
    }
    Ok(())
}

pub(crate) fn access_key_aad(account: &str) -> Vec<u8> {
    format!("sluice firehose http access key\0{account}").into_bytes()
}

pub async fn create(
    state: &FirehoseService,
    caller: &Caller,
    input: CreateInput,
) -> Result<CreateOutput, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:CreateDeliveryStream", name).await?;
    for key in UNSUPPORTED {
        if input.rest.get(key).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!(
                "{key} is not supported by Sluice yet: deliver to ExtendedS3DestinationConfiguration or HttpEndpointDestinationConfiguration."
            )));
        }
    }
    let stream_type = input.delivery_stream_type.as_deref().unwrap_or("DirectPut");
    let destinations = [
        input.s3_destination_configuration.is_some(),
        input.extended_s3_destination_configuration.is_some(),
        input.http_endpoint_destination_configuration.is_some(),
        input.redshift_destination_configuration.is_some(),
        input
            .amazonopensearchservice_destination_configuration
            .is_some(),
        input.elasticsearch_destination_configuration.is_some(),
        input.splunk_destination_configuration.is_some(),
    ];
    let splunk = input.splunk_destination_configuration;
    let redshift = input.redshift_destination_configuration;
    let opensearch = input.amazonopensearchservice_destination_configuration;
    let elasticsearch = input.elasticsearch_destination_configuration;
    let destination = match (
        input.s3_destination_configuration,
        input.extended_s3_destination_configuration,
        input.http_endpoint_destination_configuration,
    ) {
        _ if destinations.iter().filter(|d| **d).count() != 1 => {
            return Err(invalid(
                "Exactly one destination configuration is required.",
            ));
        }
        (Some(s3), _, _) => Destination::S3 {
            extended: false,
            s3: Box::new(s3),
        },
        (_, Some(s3), _) => Destination::S3 {
            extended: true,
            s3: Box::new(s3),
        },
        (_, _, Some(h)) => Destination::Http(Box::new(h)),
        _ => match (redshift, opensearch, elasticsearch) {
            (Some(r), _, _) => Destination::Redshift(Box::new(r)),
            (_, Some(search), _) => Destination::Search {
                elasticsearch: false,
                search: Box::new(search),
            },
            (_, _, Some(search)) => Destination::Search {
                elasticsearch: true,
                search: Box::new(search),
            },
            _ => Destination::Splunk(Box::new(splunk.expect("one destination is given"))),
        },
    };
    let destination = settle_destination(state, caller, destination).await?;
    let now = state.clock.now_ms();
    let (source, kinesis_source) = match stream_type {
        "DirectPut" => {
            if input.kinesis_stream_source_configuration.is_some() {
                return Err(invalid(
                    "KinesisStreamSourceConfiguration is only for DeliveryStreamType KinesisStreamAsSource.",
                ));
            }
            (
                NewSource::Buffer {
                    shard_count: state.buffer_shards,
                },
                None,
            )
        }
        "KinesisStreamAsSource" => {
            let source = input.kinesis_stream_source_configuration.ok_or_else(|| {
                invalid("DeliveryStreamType KinesisStreamAsSource needs a KinesisStreamSourceConfiguration.")
            })?;
            crate::shapes::role_connection(&source.role_arn)?;
            let stream = source_stream(state, caller, &source.stream_arn)
                .await?
                .ok_or_else(|| {
                    invalid(format!(
                        "The source stream {} does not exist.",
                        source.stream_arn
                    ))
                })?;
            (
                NewSource::Stream {
                    stream_id: stream.id,
                },
                Some(source),
            )
        }
        "MSKAsSource" | "DatabaseAsSource" => {
            return Err(invalid(format!(
                "DeliveryStreamType {stream_type} is not supported by Sluice: use DirectPut or KinesisStreamAsSource."
            )));
        }
        other => {
            return Err(ApiError::validation(
                other,
                "deliveryStreamType",
                "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource, MSKAsSource, DatabaseAsSource]",
            ));
        }
    };
    let master = match &input.delivery_stream_encryption_configuration_input {
        Some(e) => {
            if kinesis_source.is_some() {
                return Err(invalid(
                    "Server-side encryption is not available for a delivery stream with a Kinesis source: encrypt the stream itself.",
                ));
            }
            encryption_key(state, caller, e).await?
        }
        None => None,
    };
    let tags = check_tags(&input.tags)?;
    let stored = Stored {
        destination,
        kinesis_source,
        delivery_start_ms: matches!(source, NewSource::Stream { .. }).then_some(now),
        channel: None,
    };
    let config = serde_json::to_string(&stored).expect("serializable");
    let encryption = input
        .delivery_stream_encryption_configuration_input
        .as_ref()
        .map(|e| (e.key_type.as_str(), e.key_arn.as_deref()));
    let made = state
        .catalog
        .create_delivery_stream(&NewDeliveryStream {
            account_id: &caller.account_id,
            name,
            stream_type,
            source,
            config: &config,
            tags: &tags,
            encryption,
            now_ms: now,
        })
        .await
        .map_err(wire_error)?;
    if let Some(master) = master {
        seal_buffer_under(state, &made, Some(&master)).await?;
    }
    Ok(CreateOutput {
        delivery_stream_arn: delivery_stream_arn(&state.region, &caller.account_id, name),
    })
}

/// The master key a customer managed encryption configuration names (checked by KMS),
/// or `None` for an AWS owned key.
async fn encryption_key(
    state: &FirehoseService,
    caller: &Caller,
    input: &EncryptionInput,
) -> Result<Option<catalog::masterkeys::MasterKey>, ApiError> {
    match (input.key_type.as_str(), &input.key_arn) {
        ("AWS_OWNED_CMK", None) => Ok(None),
        ("AWS_OWNED_CMK", Some(_)) => Err(invalid(
            "KeyARN must not be given with KeyType AWS_OWNED_CMK.",
        )),
        ("CUSTOMER_MANAGED_CMK", Some(arn)) => {
            let key = state
                .keys
                .key_for_delivery_stream(caller, arn)
                .await
                .map_err(|e| match e.code {
                    ErrorCode::AccessDenied => e,
                    _ => ApiError::new(
                        ErrorCode::InvalidKmsResource,
                        format!("The KMS key {arn} cannot be used: {}", e.message),
                    ),
                })?;
            Ok(Some(key))
        }
        ("CUSTOMER_MANAGED_CMK", None) => Err(invalid(
            "KeyARN is required with KeyType CUSTOMER_MANAGED_CMK.",
        )),
        (other, _) => Err(ApiError::validation(
            other,
            "keyType",
            "Member must satisfy enum value set: [AWS_OWNED_CMK, CUSTOMER_MANAGED_CMK]",
        )),
    }
}

/// Puts a DirectPut buffer's new data keys under `master` (or the account's default).
async fn seal_buffer_under(
    state: &FirehoseService,
    ds: &DeliveryStream,
    master: Option<&catalog::masterkeys::MasterKey>,
) -> Result<(), ApiError> {
    if ds.stream_type != "DirectPut" {
        return Ok(());
    }
    let arn = ds.encryption_key_arn.clone().unwrap_or_default();
    state
        .catalog
        .set_stream_encryption(
            ds.stream_id,
            master.map(|m| (arn.as_str(), m.key_id.as_str())),
        )
        .await
        .map_err(wire_error)?;
    state.keyring.forget_stream(ds.stream_id).await;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameInput {
    delivery_stream_name: String,
}

pub async fn delete(
    state: &FirehoseService,
    caller: &Caller,
    input: NameInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:DeleteDeliveryStream", name).await?;
    state
        .catalog
        .delete_delivery_stream(&caller.account_id, name)
        .await
        .map_err(wire_error)?;
    Ok(json!({}))
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub async fn describe(
    state: &FirehoseService,
    caller: &Caller,
    input: NameInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:DescribeDeliveryStream", name).await?;
    let ds = load(state, caller, name).await?;
    let stored = Stored::parse(&ds.config)?;
    let source = match &stored.kinesis_source {
        Some(k) => json!({"KinesisStreamSourceDescription": {
            "KinesisStreamARN": k.stream_arn,
            "RoleARN": k.role_arn,
            "DeliveryStartTimestamp": seconds(stored.delivery_start_ms.unwrap_or(ds.created_at_ms)),
        }}),
        None => json!({"DirectPutSourceDescription": {}}),
    };
    let mut encryption = json!({"Status": ds.encryption_status});
    if let Some(t) = &ds.encryption_key_type {
        encryption["KeyType"] = t.clone().into();
    }
    if let Some(a) = &ds.encryption_key_arn {
        encryption["KeyARN"] = a.clone().into();
    }
    Ok(json!({"DeliveryStreamDescription": {
        "DeliveryStreamName": ds.name,
        "DeliveryStreamARN": delivery_stream_arn(&state.region, &caller.account_id, name),
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamType": ds.stream_type,
        "DeliveryStreamEncryptionConfiguration": encryption,
        "VersionId": ds.version_id.to_string(),
        "CreateTimestamp": seconds(ds.created_at_ms),
        "LastUpdateTimestamp": seconds(ds.updated_at_ms),
        "Source": source,
        "Destinations": [stored.destination.described()],
        "HasMoreDestinations": false,
    }}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    limit: Option<i64>,
    delivery_stream_type: Option<String>,
    exclusive_start_delivery_stream_name: Option<String>,
}

pub async fn list(
    state: &FirehoseService,
    caller: &Caller,
    input: ListInput,
) -> Result<Value, ApiError> {
    let limit = input.limit.unwrap_or(LIST_LIMIT_DEFAULT);
    check_list(
        state,
        caller,
        "firehose:ListDeliveryStreams",
        limit,
        "limit",
    )
    .await?;
    if let Some(t) = &input.delivery_stream_type
        && ![
            "DirectPut",
            "KinesisStreamAsSource",
            "MSKAsSource",
            "DatabaseAsSource",
        ]
        .contains(&t.as_str())
    {
        return Err(ApiError::validation(
            t,
            "deliveryStreamType",
            "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource, MSKAsSource, DatabaseAsSource]",
        ));
    }
    let (names, more) = state
        .catalog
        .list_delivery_streams(
            &caller.account_id,
            input.delivery_stream_type.as_deref(),
            input.exclusive_start_delivery_stream_name.as_deref(),
            limit,
        )
        .await
        .map_err(wire_error)?;
    Ok(json!({"DeliveryStreamNames": names, "HasMoreDeliveryStreams": more}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordInput {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    delivery_stream_name: String,
    record: RecordInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchInput {
    delivery_stream_name: String,
    records: Vec<RecordInput>,
}

fn decode_data(data: &str) -> Result<bytes::Bytes, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| {
            ApiError::new(
                ErrorCode::SerializationException,
                "Record.Data is not valid base64.",
            )
        })?;
    if bytes.len() > RECORD_BYTES_MAX {
        return Err(ApiError::validation(
            "<data>",
            "record.data",
            "Member must have length less than or equal to 1024000",
        ));
    }
    Ok(bytes.into())
}

/// Appends records to a DirectPut delivery stream's buffer; each answer in order.
async fn append(
    state: &FirehoseService,
    caller: &Caller,
    name: &str,
    records: Vec<bytes::Bytes>,
) -> Result<(bool, Vec<Result<String, ApiError>>), ApiError> {
    let ds = load(state, caller, name).await?;
    if ds.stream_type != "DirectPut" {
        return Err(invalid(format!(
            "Firehose {name} under account {} has a Kinesis stream as its source: put records to the stream.",
            caller.account_id
        )));
    }
    let buffer = catalog::firehose::buffer_stream_name(name);
    let stream = state
        .catalog
        .load_stream(&caller.account_id, &buffer)
        .await
        .map_err(wire_error)?;
    let total: usize = records.iter().map(|r| r.len()).sum();
    let pending = records
        .into_iter()
        .map(|data| {
            let mut random = [0u8; 16];
            aws_lc_rs::rand::fill(&mut random).expect("system randomness");
            let hash_key = HashKey(u128::from_be_bytes(random));
            let shard = stream.route(hash_key).map(|s| s.ordinal).unwrap_or(0);
            PendingRecord {
                shard_ordinal: shard,
                hash_key,
                partition_key: String::new(),
                data,
            }
        })
        .collect::<Vec<_>>();
    let count = pending.len();
    let answers = state
        .committer
        .append(stream.id, &stream.name, &caller.account_id, pending)
        .await?;
    let results: Vec<Result<String, ApiError>> = answers
        .into_iter()
        .map(|a| match a {
            Ok(seq) => Ok(record_id(&seq)),
            Err(AppendError::Refused(e)) => Err(e),
            Err(AppendError::ShardClosed(_)) => Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The delivery stream's buffer is changing; retry the record.",
            )),
        })
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let labels = [("delivery_stream", format!("{}/{name}", caller.account_id))];
    metrics::counter!("sluice_firehose_incoming_records_total", &labels).increment(ok as u64);
    metrics::counter!("sluice_firehose_incoming_bytes_total", &labels).increment(total as u64);
    if ok < count {
        metrics::counter!("sluice_firehose_incoming_failed_records_total", &labels)
            .increment((count - ok) as u64);
    }
    Ok((ds.encryption_status == "ENABLED", results))
}

/// A record's id: its place in the buffer, as an opaque string.
fn record_id(at: &Appended) -> String {
    format!("{:016x}{:016x}", at.shard_ordinal(), at.counter())
}

pub async fn put_record(
    state: &FirehoseService,
    caller: &Caller,
    input: PutRecordInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:PutRecord", name).await?;
    let data = decode_data(&input.record.data)?;
    let (encrypted, mut results) = append(state, caller, name, vec![data]).await?;
    let id = results.pop().expect("one answer per record")?;
    Ok(json!({"RecordId": id, "Encrypted": encrypted}))
}

pub async fn put_record_batch(
    state: &FirehoseService,
    caller: &Caller,
    input: PutRecordBatchInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    if input.records.is_empty() || input.records.len() > BATCH_RECORDS_MAX {
        return Err(ApiError::validation(
            input.records.len(),
            "records",
            "Member must have length less than or equal to 500 and greater than or equal to 1",
        ));
    }
    authorize(state, caller, "firehose:PutRecordBatch", name).await?;
    let records = input
        .records
        .iter()
        .map(|r| decode_data(&r.data))
        .collect::<Result<Vec<_>, _>>()?;
    let total: usize = records.iter().map(|r| r.len()).sum();
    if total > BATCH_BYTES_MAX {
        return Err(invalid(format!(
            "Records size exceeds 4 MiB limit: the batch holds {total} bytes."
        )));
    }
    let (encrypted, results) = append(state, caller, name, records).await?;
    let failed = results.iter().filter(|r| r.is_err()).count();
    let responses: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(id) => json!({"RecordId": id}),
            Err(e) => json!({
                "ErrorCode": if e.code == ErrorCode::ServiceUnavailable {
                    "ServiceUnavailableException"
                } else {
                    e.code.type_name()
                },
                "ErrorMessage": e.message,
            }),
        })
        .collect();
    Ok(json!({
        "FailedPutCount": failed,
        "Encrypted": encrypted,
        "RequestResponses": responses,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionRequest {
    delivery_stream_name: String,
    delivery_stream_encryption_configuration_input: Option<EncryptionInput>,
}

pub async fn start_encryption(
    state: &FirehoseService,
    caller: &Caller,
    input: EncryptionRequest,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(
        state,
        caller,
        "firehose:StartDeliveryStreamEncryption",
        name,
    )
    .await?;
    let ds = load(state, caller, name).await?;
    if ds.stream_type != "DirectPut" {
        return Err(invalid(format!(
            "Firehose {name} has a Kinesis stream as its source: encrypt the stream itself."
        )));
    }
    let given = input
        .delivery_stream_encryption_configuration_input
        .unwrap_or(EncryptionInput {
            key_arn: None,
            key_type: "AWS_OWNED_CMK".into(),
        });
    let master = encryption_key(state, caller, &given).await?;
    state
        .catalog
        .set_delivery_encryption(
            &caller.account_id,
            name,
            Some((given.key_type.as_str(), given.key_arn.as_deref())),
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    let ds = load(state, caller, name).await?;
    seal_buffer_under(state, &ds, master.as_ref()).await?;
    Ok(json!({}))
}

pub async fn stop_encryption(
    state: &FirehoseService,
    caller: &Caller,
    input: NameInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:StopDeliveryStreamEncryption", name).await?;
    state
        .catalog
        .set_delivery_encryption(&caller.account_id, name, None, state.clock.now_ms())
        .await
        .map_err(wire_error)?;
    let ds = load(state, caller, name).await?;
    seal_buffer_under(state, &ds, None).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagRequest {
    delivery_stream_name: String,
    tags: Vec<TagInput>,
}

pub async fn tag(
    state: &FirehoseService,
    caller: &Caller,
    input: TagRequest,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:TagDeliveryStream", name).await?;
    if input.tags.is_empty() {
        return Err(invalid("Tags must hold at least one tag."));
    }
    let tags = check_tags(&input.tags)?;
    let ds = load(state, caller, name).await?;
    state
        .catalog
        .tag_delivery_stream(ds.id, &tags)
        .await
        .map_err(wire_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagRequest {
    delivery_stream_name: String,
    tag_keys: Vec<String>,
}

pub async fn untag(
    state: &FirehoseService,
    caller: &Caller,
    input: UntagRequest,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:UntagDeliveryStream", name).await?;
    if input.tag_keys.is_empty() || input.tag_keys.len() > TAGS_PAGE_MAX {
        return Err(invalid(format!(
            "TagKeys must hold 1 to {TAGS_PAGE_MAX} keys."
        )));
    }
    let ds = load(state, caller, name).await?;
    state
        .catalog
        .untag_delivery_stream(ds.id, &input.tag_keys)
        .await
        .map_err(wire_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    delivery_stream_name: String,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
}

pub async fn list_tags(
    state: &FirehoseService,
    caller: &Caller,
    input: ListTagsInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:ListTagsForDeliveryStream", name).await?;
    let limit = input.limit.unwrap_or(TAGS_PAGE_MAX as i64);
    if !(1..=TAGS_PAGE_MAX as i64).contains(&limit) {
        return Err(ApiError::validation(
            limit,
            "limit",
            "Member must have value between 1 and 50",
        ));
    }
    let ds = load(state, caller, name).await?;
    let tags = state
        .catalog
        .delivery_stream_tags(ds.id)
        .await
        .map_err(wire_error)?;
    let after: Vec<&(String, String)> = tags
        .iter()
        .filter(|(k, _)| {
            input
                .exclusive_start_tag_key
                .as_ref()
                .is_none_or(|start| k > start)
        })
        .collect();
    let more = after.len() > limit as usize;
    let page: Vec<Value> = after
        .into_iter()
        .take(limit as usize)
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": page, "HasMoreTags": more}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInput {
    delivery_stream_name: String,
    current_delivery_stream_version_id: String,
    destination_id: String,
    s3_destination_update: Option<serde_json::Map<String, Value>>,
    extended_s3_destination_update: Option<serde_json::Map<String, Value>>,
    http_endpoint_destination_update: Option<serde_json::Map<String, Value>>,
    redshift_destination_update: Option<serde_json::Map<String, Value>>,
    amazonopensearchservice_destination_update: Option<serde_json::Map<String, Value>>,
    elasticsearch_destination_update: Option<serde_json::Map<String, Value>>,
    splunk_destination_update: Option<serde_json::Map<String, Value>>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// `update` laid over `base`: each member given replaces the one stored (an update's
/// nested S3 update is laid over the stored S3 configuration the same way).
fn merge(base: &mut serde_json::Map<String, Value>, update: serde_json::Map<String, Value>) {
    for (key, value) in update {
        let key = match key.as_str() {
            "S3Update" => "S3Configuration".to_string(),
            "S3BackupUpdate" => "S3BackupConfiguration".to_string(),
            _ => key,
        };
        match (base.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(given))
                if key == "S3Configuration" || key == "S3BackupConfiguration" =>
            {
                merge(inner, given)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

pub async fn update_destination(
    state: &FirehoseService,
    caller: &Caller,
    input: UpdateInput,
) -> Result<Value, ApiError> {
    let name = input.delivery_stream_name.as_str();
    check_name(name)?;
    authorize(state, caller, "firehose:UpdateDestination", name).await?;
    let version: i64 = input
        .current_delivery_stream_version_id
        .parse()
        .map_err(|_| {
            ApiError::validation(
                &input.current_delivery_stream_version_id,
                "currentDeliveryStreamVersionId",
                "Member must satisfy regular expression pattern: [0-9]+",
            )
        })?;
    for key in UNSUPPORTED {
        let update = key.replace("Configuration", "Update");
        if input.rest.get(&update).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!("{update} is not supported by Sluice yet.")));
        }
    }
    let ds = load(state, caller, name).await?;
    if input.destination_id != DESTINATION_ID {
        return Err(invalid(format!(
            "Destination {} not found; this delivery stream's destination is {DESTINATION_ID}.",
            input.destination_id
        )));
    }
    let mut stored = Stored::parse(&ds.config)?;
    let given = [
        input.s3_destination_update.is_some(),
        input.extended_s3_destination_update.is_some(),
        input.http_endpoint_destination_update.is_some(),
        input.redshift_destination_update.is_some(),
        input.amazonopensearchservice_destination_update.is_some(),
        input.elasticsearch_destination_update.is_some(),
        input.splunk_destination_update.is_some(),
    ];
    let splunk_update = input.splunk_destination_update;
    let redshift_update = input.redshift_destination_update;
    let search_update = input
        .amazonopensearchservice_destination_update
        .or(input.elasticsearch_destination_update);
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(invalid("Exactly one destination update is required."));
    }
    let bad = |e: serde_json::Error| invalid(format!("The destination update is not valid: {e}"));
    let destination = match (
        input.s3_destination_update,
        input.extended_s3_destination_update,
        input.http_endpoint_destination_update,
    ) {
        (Some(update), _, _) | (_, Some(update), _) => {
            let extended = given[1];
            let mut base = match &stored.destination {
                Destination::S3 { s3, .. } => match serde_json::to_value(s3.as_ref()) {
                    Ok(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                },
                _ => serde_json::Map::new(),
            };
            merge(&mut base, update);
            Destination::S3 {
                extended,
                s3: Box::new(serde_json::from_value(Value::Object(base)).map_err(bad)?),
            }
        }
        (_, _, Some(update)) => {
            let mut base = match &stored.destination {
                Destination::Http(h) => match serde_json::to_value(h.as_ref()) {
                    Ok(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                },
                _ => serde_json::Map::new(),
            };
            // A new endpoint configuration without an access key keeps none.
            if update.contains_key("EndpointConfiguration")
                && let Some(Value::Object(e)) = base.get_mut("EndpointConfiguration")
            {
                e.remove("SluiceAccessKeySealed");
            }
            merge(&mut base, update);
            Destination::Http(Box::new(
                serde_json::from_value(Value::Object(base)).map_err(bad)?,
            ))
        }
        _ if splunk_update.is_some() => {
            let update = splunk_update.expect("just checked");
            let mut base = match &stored.destination {
                Destination::Splunk(s) => match serde_json::to_value(s.as_ref()) {
                    Ok(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                },
                _ => serde_json::Map::new(),
            };
            if update.contains_key("HECToken") {
                base.remove("SluiceHECTokenSealed");
            }
            merge(&mut base, update);
            Destination::Splunk(Box::new(
                serde_json::from_value(Value::Object(base)).map_err(bad)?,
            ))
        }
        _ if search_update.is_some() => {
            let update = search_update.expect("just checked");
            let mut base = match &stored.destination {
                Destination::Search { search, .. } => match serde_json::to_value(search.as_ref()) {
                    Ok(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                },
                _ => serde_json::Map::new(),
            };
            merge(&mut base, update);
            Destination::Search {
                elasticsearch: given[5],
                search: Box::new(serde_json::from_value(Value::Object(base)).map_err(bad)?),
            }
        }
        _ => {
            let update = redshift_update.expect("one update is given");
            let mut base = match &stored.destination {
                Destination::Redshift(r) => match serde_json::to_value(r.as_ref()) {
                    Ok(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                },
                _ => serde_json::Map::new(),
            };
            if update.contains_key("Password") {
                base.remove("SluicePasswordSealed");
            }
            merge(&mut base, update);
            Destination::Redshift(Box::new(
                serde_json::from_value(Value::Object(base)).map_err(bad)?,
            ))
        }
    };
    stored.destination = settle_destination(state, caller, destination).await?;
    let config = serde_json::to_string(&stored).expect("serializable");
    state
        .catalog
        .update_delivery_config(
            &caller.account_id,
            name,
            version,
            &config,
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_lay_over_the_stored_configuration() {
        let mut base = json!({
            "RoleARN": "arn:aws:iam::123456789012:role/a",
            "BucketARN": "arn:aws:s3:::one",
            "S3Configuration": {"BucketARN": "arn:aws:s3:::b", "Prefix": "p/"}
        })
        .as_object()
        .unwrap()
        .clone();
        merge(
            &mut base,
            json!({"BucketARN": "arn:aws:s3:::two", "S3Update": {"Prefix": "q/"}})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(base["BucketARN"], "arn:aws:s3:::two");
        assert_eq!(base["RoleARN"], "arn:aws:iam::123456789012:role/a");
        assert_eq!(base["S3Configuration"]["Prefix"], "q/");
        assert_eq!(base["S3Configuration"]["BucketARN"], "arn:aws:s3:::b");
    }

    #[test]
    fn names_follow_the_pattern() {
        assert!(check_name("orders-1.x_y").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
