//! One function per Kinesis operation: decode, validate as AWS does, act, encode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use control_plane::chunks::ReadTarget;
use control_plane::streams::{NewStream, parse_shard_id, shard_id};
use control_plane::{Catalog, CatalogError, Shard, Stream, StreamMode};
use protocol::arn::StreamArn;
use protocol::clock::SharedClock;
use protocol::hash::HashKey;
use protocol::model::*;
use protocol::wire::{Blob, Format, Timestamp};
use protocol::{ApiError, ErrorCode, SequenceNumber, limits, validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Config;
use crate::auth::{Authenticator, Caller};
use crate::authz::Resource;
use crate::iterator::{IteratorKey, ShardPosition};
use storage::commit::{Committer, PendingRecord};
use storage::objects::ObjectStore;
use storage::reader;

pub struct AppState {
    pub config: Config,
    pub catalog: Catalog,
    pub store: Arc<ObjectStore>,
    /// The data keys chunks are sealed and opened with.
    pub keyring: Arc<storage::keyring::Keyring>,
    pub committer: Committer,
    pub iterators: IteratorKey,
    pub authenticator: Arc<Authenticator>,
    pub tokens: crate::bearer::TokenService,
    pub authz: crate::authz::Authz,
    /// Seals the secrets of access keys made through the admin API.
    pub root_key: Arc<control_plane::rootkey::RootKey>,
    pub streams: StreamCache,
    /// Per-shard throughput limits.
    pub throttle: crate::throttle::Throttle,
    pub grace: Duration,
    /// Permits are bytes of request bodies in memory; see `gateway::BODY_BUDGET_BYTES`.
    pub body_budget: tokio::sync::Semaphore,
    /// SubscribeToShard subscriptions open in this process.
    pub subscriptions: crate::subscribe::Subscriptions,
    /// Every time decision of a handler.
    pub clock: SharedClock,
}

/// Streams by name, for routing writes without a catalog round trip per request.
/// Entries live a second; this process drops them itself when it changes a stream.
/// (account, stream name) to the stream and when it was loaded.
type StreamEntries = HashMap<(String, String), (Arc<Stream>, Instant)>;

#[derive(Default)]
pub struct StreamCache {
    entries: Mutex<StreamEntries>,
}

const DESCRIBE_STREAM_SHARDS_MAX: usize = 100;
const STREAM_CACHE_TTL: Duration = Duration::from_secs(1);
const STREAM_CACHE_ENTRIES_MAX: usize = 10_000;

impl StreamCache {
    async fn get(
        &self,
        catalog: &Catalog,
        account: &str,
        name: &str,
    ) -> Result<Arc<Stream>, ApiError> {
        let key = (account.to_string(), name.to_string());
        if let Some((stream, at)) = self.entries.lock().expect("cache lock").get(&key)
            && at.elapsed() < STREAM_CACHE_TTL
        {
            return Ok(stream.clone());
        }
        let stream = Arc::new(catalog.load_stream(account, name).await.map_err(api)?);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= STREAM_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key, (stream.clone(), Instant::now()));
        Ok(stream)
    }

    pub(crate) fn forget(&self, account: &str, name: &str) {
        self.entries
            .lock()
            .expect("cache lock")
            .remove(&(account.to_string(), name.to_string()));
    }
}

/// A catalog error as the caller sees it; internal causes are logged here.
pub(crate) fn api(error: CatalogError) -> ApiError {
    if !matches!(error, CatalogError::Api(_)) {
        tracing::error!(error = %error, source = ?std::error::Error::source(&error), "catalog failure");
    }
    error.to_api()
}

fn encode<T: Serialize>(format: Format, value: &T) -> Result<Vec<u8>, ApiError> {
    Ok(format.encode(value))
}

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    op: Operation,
    format: Format,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    fn input<T: DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, ApiError> {
        format.decode(body)
    }
    match op {
        Operation::CreateStream => create_stream(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DeleteStream => delete_stream(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeStream => describe_stream(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeStreamSummary => {
            describe_stream_summary(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::ListStreams => list_streams(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::ListShards => list_shards(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::PutRecord => put_record(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::PutRecords => put_records(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::GetShardIterator => get_shard_iterator(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::GetRecords => get_records(state, caller, input(format, body)?)
            .await
            .map(|o| match format {
                Format::Json => o.to_json(),
                Format::Cbor => format.encode(&o),
            }),
        Operation::AddTagsToStream => add_tags(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::RemoveTagsFromStream => remove_tags(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::ListTagsForStream => list_tags(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeLimits => describe_limits(state, caller)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::IncreaseStreamRetentionPeriod => {
            change_retention(state, caller, input(format, body)?, true)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DecreaseStreamRetentionPeriod => {
            change_retention(state, caller, input(format, body)?, false)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::PutResourcePolicy => put_resource_policy(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::GetResourcePolicy => get_resource_policy(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DeleteResourcePolicy => {
            delete_resource_policy(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::StartStreamEncryption => {
            stream_encryption(state, caller, input(format, body)?, true)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::StopStreamEncryption => {
            stream_encryption(state, caller, input(format, body)?, false)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::SplitShard => split_shard(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::MergeShards => merge_shards(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UpdateShardCount => update_shard_count(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UpdateStreamMode => update_stream_mode(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::RegisterStreamConsumer => {
            crate::consumers::register(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DeregisterStreamConsumer => {
            crate::consumers::deregister(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DescribeStreamConsumer => {
            crate::consumers::describe(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::ListStreamConsumers => {
            crate::consumers::list(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        // Answered as an event stream by the gateway, never here.
        Operation::SubscribeToShard => Err(ApiError::internal()),
    }
}

impl AppState {
    /// The stream name a request means, from its StreamName or StreamARN.
    /// The stream a request means, from its StreamName or StreamARN, once Cedar has
    /// allowed `action` on it.
    pub(crate) async fn stream_name(
        &self,
        caller: &Caller,
        action: &str,
        r: StreamRef<'_>,
    ) -> Result<String, ApiError> {
        let (account, name) = match (r.stream_name, r.stream_arn) {
            (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "Either StreamName or StreamARN should be provided.",
                ));
            }
            (Some(name), None) => (caller.account_id.clone(), name.to_string()),
            (name, Some(arn_text)) => {
                let arn = StreamArn::parse(arn_text)?;
                if let Some(name) = name
                    && name != arn.stream_name
                {
                    return Err(ApiError::invalid_argument(format!(
                        "StreamARN {arn_text} and StreamName {name} name different streams."
                    )));
                }
                if arn.region != self.config.region {
                    return Err(ApiError::stream_not_found(
                        &arn.stream_name,
                        &arn.account_id,
                    ));
                }
                (arn.account_id, arn.stream_name)
            }
        };
        validate::stream_name(&name)?;
        let arn = StreamArn::format(&self.config.region, &account, &name);
        // INVARIANT: the operation runs only once Cedar has allowed it; the platform
        // policies forbid every cross-tenant access, so `account` is the caller's below.
        self.authz
            .authorize(
                caller,
                action,
                Resource::Stream {
                    account: &account,
                    arn: &arn,
                    name: &name,
                },
            )
            .await?;
        if account != caller.account_id {
            return Err(ApiError::stream_not_found(&name, &account));
        }
        Ok(name)
    }

    async fn load(
        &self,
        caller: &Caller,
        action: &str,
        r: StreamRef<'_>,
    ) -> Result<Stream, ApiError> {
        let name = self.stream_name(caller, action, r).await?;
        self.catalog
            .load_stream(&caller.account_id, &name)
            .await
            .map_err(api)
    }

    /// Stores `body` as the next version of `account`'s policy document `name` once it
    /// validates (`None` deletes the document, which must exist); this process decides
    /// with it from the next request on.
    pub(crate) async fn store_policy(
        &self,
        caller: &Caller,
        account: &str,
        name: &str,
        body: Option<&str>,
    ) -> Result<control_plane::policies::PolicyVersion, ApiError> {
        match body {
            Some(text) => {
                control_plane::policies::check_policy_size(text)?;
                self.authz
                    .compile(account, name, text)
                    .map_err(|errors| crate::authz::invalid_policy(&errors))?;
            }
            None => {
                let current = self
                    .catalog
                    .policy_version(account, name, None)
                    .await
                    .map_err(api)?;
                if current.body.is_none() {
                    return Err(ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("Policy {name} is already deleted."),
                    ));
                }
            }
        }
        let stored = self
            .catalog
            .put_policy_version(
                account,
                name,
                body,
                &caller.principal_arn,
                self.clock.now_ms(),
            )
            .await
            .map_err(api)?;
        self.authz.forget_tenant(account);
        Ok(stored)
    }

    /// Puts the caller's stream in a passing state for the configured while; `false`
    /// when the while is 0 (the change is immediate, and the caller makes it).
    async fn begin_transition(
        &self,
        caller: &Caller,
        name: &str,
        status: control_plane::StreamStatus,
    ) -> Result<bool, ApiError> {
        if self.config.stream_transition_ms == 0 {
            return Ok(false);
        }
        self.catalog
            .set_stream_transition(
                caller.account_id.as_str(),
                name,
                status,
                self.clock.now_ms() + self.config.stream_transition_ms as i64,
            )
            .await
            .map_err(api)?;
        self.streams.forget(caller.account_id.as_str(), name);
        Ok(true)
    }

    fn arn(&self, caller: &Caller, name: &str) -> String {
        StreamArn::format(&self.config.region, &caller.account_id, name)
    }
}

fn validate_tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    for (key, value) in tags {
        validate::string_length(key, "tags.key", 1, limits::TAG_KEY_CHARS_MAX)?;
        validate::string_length(value, "tags.value", 0, limits::TAG_VALUE_CHARS_MAX)?;
    }
    Ok(())
}

async fn create_stream(
    state: &AppState,
    caller: &Caller,
    input: CreateStreamInput,
) -> Result<Empty, ApiError> {
    let name = validate::required(input.stream_name, "streamName")?;
    let name = state
        .stream_name(
            caller,
            "kinesis:CreateStream",
            StreamRef {
                stream_name: Some(&name),
                stream_arn: None,
            },
        )
        .await?;
    let mode = match input.stream_mode_details {
        None => StreamMode::Provisioned,
        Some(details) => StreamMode::parse(&details.stream_mode).ok_or_else(|| {
            ApiError::validation(
                &details.stream_mode,
                "streamModeDetails.streamMode",
                "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]",
            )
        })?,
    };
    let shard_count = match (mode, input.shard_count) {
        (StreamMode::Provisioned, None) => {
            return Err(ApiError::invalid_argument(
                "ShardCount is required for a PROVISIONED stream.",
            ));
        }
        (StreamMode::OnDemand, Some(_)) => {
            return Err(ApiError::invalid_argument(
                "ShardCount must not be given for an ON_DEMAND stream.",
            ));
        }
        (StreamMode::OnDemand, None) => limits::ON_DEMAND_INITIAL_SHARDS,
        (StreamMode::Provisioned, Some(count)) => {
            validate::int_range(count, "shardCount", 1, i64::from(i32::MAX))?;
            count
        }
    };
    if shard_count > state.config.account_shards_max {
        return Err(ApiError::new(
            ErrorCode::LimitExceeded,
            format!(
                "This request would exceed the shard limit for the account {} in {}. Current limit of shards is {}. Request a limit increase to create more shards.",
                caller.account_id.as_str(),
                state.config.region,
                state.config.account_shards_max
            ),
        ));
    }
    let tags: Vec<(String, String)> = input.tags.unwrap_or_default().into_iter().collect();
    if tags.len() > limits::TAGS_PER_STREAM_MAX {
        return Err(ApiError::validation(
            format!("{} tags", tags.len()),
            "tags",
            "Member must have length less than or equal to 50",
        ));
    }
    validate_tags(&tags)?;
    state
        .catalog
        .create_stream(&NewStream {
            account_id: caller.account_id.as_str(),
            name: &name,
            shard_count: u32::try_from(shard_count).expect("checked against the limit"),
            mode,
            tags: &tags,
            now_ms: state.clock.now_ms(),
            account_shards_max: state.config.account_shards_max,
            account_on_demand_streams_max: state.config.account_on_demand_streams_max,
            region: &state.config.region,
        })
        .await
        .map_err(api)?;
    // CREATING for the configured while; the server's sweep makes it ACTIVE.
    if !state
        .begin_transition(caller, &name, control_plane::StreamStatus::Creating)
        .await?
    {
        state.streams.forget(caller.account_id.as_str(), &name);
    }
    Ok(Empty {})
}

async fn delete_stream(
    state: &AppState,
    caller: &Caller,
    input: DeleteStreamInput,
) -> Result<Empty, ApiError> {
    let name = state
        .stream_name(caller, "kinesis:DeleteStream", input.stream())
        .await?;
    // DELETING for the configured while (reads and writes refused); the server's sweep
    // then deletes it. Without a while, at once.
    if !state
        .begin_transition(caller, &name, control_plane::StreamStatus::Deleting)
        .await?
    {
        state
            .catalog
            .delete_stream(caller.account_id.as_str(), &name, state.clock.now_ms())
            .await
            .map_err(api)?;
    }
    state.streams.forget(caller.account_id.as_str(), &name);
    Ok(Empty {})
}

fn shard_out(shard: &Shard) -> ShardOut {
    ShardOut {
        shard_id: shard.shard_id(),
        parent_shard_id: shard.parent_ordinal.map(shard_id),
        adjacent_parent_shard_id: shard.adjacent_parent_ordinal.map(shard_id),
        hash_key_range: HashKeyRangeOut {
            starting_hash_key: shard.hash_key_range.starting.0.to_string(),
            ending_hash_key: shard.hash_key_range.ending.0.to_string(),
        },
        sequence_number_range: SequenceNumberRangeOut {
            starting_sequence_number: shard.starting_sequence_number().to_string(),
            ending_sequence_number: shard.ending_sequence_number().map(|s| s.to_string()),
        },
    }
}

fn enhanced_monitoring() -> Vec<EnhancedMetrics> {
    vec![EnhancedMetrics {
        shard_level_metrics: vec![],
    }]
}

async fn describe_stream(
    state: &AppState,
    caller: &Caller,
    input: DescribeStreamInput,
) -> Result<DescribeStreamOutput, ApiError> {
    let limit = input.limit.unwrap_or(limits::DESCRIBE_STREAM_LIMIT_DEFAULT);
    validate::int_range(limit, "limit", 1, limits::DESCRIBE_STREAM_LIMIT_MAX)?;
    if let Some(start) = &input.exclusive_start_shard_id {
        validate::shard_id(start, "exclusiveStartShardId")?;
    }
    let stream = state
        .load(caller, "kinesis:DescribeStream", input.stream())
        .await?;
    let after = input
        .exclusive_start_shard_id
        .as_deref()
        .and_then(parse_shard_id);
    let mut shards: Vec<ShardOut> = stream
        .shards
        .iter()
        .filter(|s| match (&input.exclusive_start_shard_id, after) {
            (None, _) => true,
            (Some(_), Some(after)) => s.ordinal > after,
            // An id that is not ours sorts before every shard of ours.
            (Some(id), None) => s.shard_id().as_str() > id.as_str(),
        })
        .map(shard_out)
        .collect();
    // DescribeStream returns at most 100 shards whatever Limit says; ListShards pages
    // through more.
    let page = (limit as usize).min(DESCRIBE_STREAM_SHARDS_MAX);
    let has_more_shards = shards.len() > page;
    shards.truncate(page);
    Ok(DescribeStreamOutput {
        stream_description: StreamDescription {
            stream_arn: state.arn(caller, &stream.name),
            stream_name: stream.name,
            stream_status: stream.status.as_str().to_string(),
            stream_mode_details: StreamModeDetails {
                stream_mode: stream.mode.as_str().to_string(),
            },
            shards,
            has_more_shards,
            retention_period_hours: stream.retention_hours,
            stream_creation_timestamp: Timestamp {
                epoch_ms: stream.created_at_ms,
            },
            enhanced_monitoring: enhanced_monitoring(),
            encryption_type: stream.encryption_type,
            key_id: stream.key_id,
        },
    })
}

async fn describe_stream_summary(
    state: &AppState,
    caller: &Caller,
    input: StreamOnlyInput,
) -> Result<DescribeStreamSummaryOutput, ApiError> {
    let stream = state
        .load(caller, "kinesis:DescribeStreamSummary", input.stream())
        .await?;
    Ok(DescribeStreamSummaryOutput {
        stream_description_summary: StreamDescriptionSummary {
            stream_arn: state.arn(caller, &stream.name),
            open_shard_count: stream.open_shards().count() as i64,
            stream_name: stream.name,
            stream_status: stream.status.as_str().to_string(),
            stream_mode_details: StreamModeDetails {
                stream_mode: stream.mode.as_str().to_string(),
            },
            retention_period_hours: stream.retention_hours,
            stream_creation_timestamp: Timestamp {
                epoch_ms: stream.created_at_ms,
            },
            enhanced_monitoring: enhanced_monitoring(),
            encryption_type: stream.encryption_type,
            key_id: stream.key_id,
            consumer_count: 0,
        },
    })
}

/// Paging tokens are base64url of what the next page starts after; they carry nothing
/// a caller could use to reach what it could not name anyway.
pub(crate) fn page_token(kind: &str, after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}\n{after}"))
}

pub(crate) fn open_page_token(kind: &str, token: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_argument(format!("Invalid NextToken: {token}"));
    if token.is_empty() || token.len() > 1_048_576 {
        return Err(invalid());
    }
    let text = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (k, after) = text.split_once('\n').ok_or_else(invalid)?;
    if k != kind {
        return Err(invalid());
    }
    Ok(after.to_string())
}

async fn list_streams(
    state: &AppState,
    caller: &Caller,
    input: ListStreamsInput,
) -> Result<ListStreamsOutput, ApiError> {
    let limit = input.limit.unwrap_or(limits::LIST_STREAMS_LIMIT_DEFAULT);
    validate::int_range(limit, "limit", 1, limits::LIST_STREAMS_LIMIT_MAX)?;
    state
        .authz
        .authorize(
            caller,
            "kinesis:ListStreams",
            Resource::Tenant {
                account: &caller.account_id,
            },
        )
        .await?;
    let after = match (&input.next_token, &input.exclusive_start_stream_name) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_argument(
                "NextToken and ExclusiveStartStreamName cannot be provided together.",
            ));
        }
        (Some(token), None) => Some(open_page_token("streams", token)?),
        (None, Some(name)) => {
            validate::stream_name(name)?;
            Some(name.clone())
        }
        (None, None) => None,
    };
    let (listings, has_more) = state
        .catalog
        .list_streams(caller.account_id.as_str(), after.as_deref(), limit)
        .await
        .map_err(api)?;
    let next_token = if has_more {
        listings.last().map(|l| page_token("streams", &l.name))
    } else {
        None
    };
    Ok(ListStreamsOutput {
        stream_names: listings.iter().map(|l| l.name.clone()).collect(),
        has_more_streams: has_more,
        next_token,
        stream_summaries: listings
            .into_iter()
            .map(|l| StreamSummary {
                stream_arn: state.arn(caller, &l.name),
                stream_name: l.name,
                stream_status: l.status.as_str().to_string(),
                stream_mode_details: StreamModeDetails {
                    stream_mode: l.mode.as_str().to_string(),
                },
                stream_creation_timestamp: Timestamp {
                    epoch_ms: l.created_at_ms,
                },
            })
            .collect(),
    })
}

/// Whether a shard passes a ListShards filter.
fn shard_passes(
    filter: &ShardFilter,
    shard: &Shard,
    stream: &Stream,
    now: i64,
) -> Result<bool, ApiError> {
    let trim_horizon = (now - stream.retention_hours * 3_600_000).max(stream.created_at_ms);
    let open_at = |t: i64| {
        shard.created_at_ms <= t.max(stream.created_at_ms)
            && shard.closed_at_ms.is_none_or(|c| c > t)
    };
    let open_since = |t: i64| shard.closed_at_ms.is_none_or(|c| c >= t);
    let timestamp = || {
        filter.timestamp.map(|t| t.epoch_ms).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "Timestamp is required for ShardFilter type {}.",
                filter.filter_type
            ))
        })
    };
    Ok(match filter.filter_type.as_str() {
        "AFTER_SHARD_ID" => {
            let id = filter.shard_id.as_deref().ok_or_else(|| {
                ApiError::invalid_argument(
                    "ShardId is required for ShardFilter type AFTER_SHARD_ID.",
                )
            })?;
            validate::shard_id(id, "shardFilter.shardId")?;
            match parse_shard_id(id) {
                Some(after) => shard.ordinal > after,
                None => shard.shard_id().as_str() > id,
            }
        }
        "AT_TRIM_HORIZON" => open_at(trim_horizon),
        "FROM_TRIM_HORIZON" => open_since(trim_horizon),
        "AT_LATEST" => shard.is_open(),
        "AT_TIMESTAMP" => open_at(timestamp()?),
        "FROM_TIMESTAMP" => open_since(timestamp()?),
        other => {
            return Err(ApiError::validation(
                other,
                "shardFilter.type",
                "Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
            ));
        }
    })
}

async fn list_shards(
    state: &AppState,
    caller: &Caller,
    input: ListShardsInput,
) -> Result<ListShardsOutput, ApiError> {
    let max = input
        .max_results
        .unwrap_or(limits::LIST_SHARDS_MAX_RESULTS_DEFAULT);
    validate::int_range(max, "maxResults", 1, limits::LIST_SHARDS_MAX_RESULTS_MAX)?;
    let (name, after) = match &input.next_token {
        Some(token) => {
            if input.stream_name.is_some()
                || input.stream_arn.is_some()
                || input.exclusive_start_shard_id.is_some()
            {
                return Err(ApiError::invalid_argument(
                    "NextToken and StreamName, StreamARN or ExclusiveStartShardId cannot be provided together.",
                ));
            }
            let inner = open_page_token("shards", token)?;
            let (name, after) = inner
                .split_once('\n')
                .ok_or_else(|| ApiError::invalid_argument("Invalid NextToken."))?;
            let name = state
                .stream_name(
                    caller,
                    "kinesis:ListShards",
                    StreamRef {
                        stream_name: Some(name),
                        stream_arn: None,
                    },
                )
                .await?;
            (
                name,
                Some(
                    after
                        .parse::<u64>()
                        .map_err(|_| ApiError::invalid_argument("Invalid NextToken."))?,
                ),
            )
        }
        None => {
            let name = state
                .stream_name(caller, "kinesis:ListShards", input.stream())
                .await?;
            let after = match &input.exclusive_start_shard_id {
                Some(id) => {
                    validate::shard_id(id, "exclusiveStartShardId")?;
                    Some(parse_shard_id(id).ok_or_else(|| {
                        ApiError::invalid_argument(format!("Invalid ExclusiveStartShardId {id}."))
                    })?)
                }
                None => None,
            };
            (name, after)
        }
    };
    let stream = state
        .catalog
        .load_stream(caller.account_id.as_str(), &name)
        .await
        .map_err(api)?;
    let now = state.clock.now_ms();
    let mut shards = Vec::new();
    for shard in &stream.shards {
        if after.is_some_and(|a| shard.ordinal <= a) {
            continue;
        }
        if let Some(filter) = &input.shard_filter
            && !shard_passes(filter, shard, &stream, now)?
        {
            continue;
        }
        shards.push(shard);
    }
    let has_more = shards.len() > max as usize;
    shards.truncate(max as usize);
    let next_token = if has_more {
        shards
            .last()
            .map(|s| page_token("shards", &format!("{}\n{}", stream.name, s.ordinal)))
    } else {
        None
    };
    Ok(ListShardsOutput {
        shards: shards.into_iter().map(shard_out).collect(),
        next_token,
    })
}

/// Checks one record's members and picks its shard.
fn route_record(
    stream: &Stream,
    data: Option<Blob>,
    partition_key: Option<String>,
    explicit_hash_key: Option<&str>,
    member_prefix: &str,
) -> Result<PendingRecord, ApiError> {
    let member = |m: &str| format!("{member_prefix}{m}");
    let data = validate::required(data, &member("data"))?.0;
    let partition_key = validate::required(partition_key, &member("partitionKey"))?;
    validate::data(&data, &member("data"))?;
    validate::partition_key(&partition_key, &member("partitionKey"))?;
    if data.len() + partition_key.len() > limits::RECORD_BYTES_MAX {
        return Err(ApiError::invalid_argument(format!(
            "The record's data and partition key together are {} bytes; the limit is {} bytes.",
            data.len() + partition_key.len(),
            limits::RECORD_BYTES_MAX
        )));
    }
    let hash_key = match explicit_hash_key {
        Some(text) => HashKey::parse_explicit(text)?,
        None => HashKey::of_partition_key(&partition_key),
    };
    let shard = stream.route(hash_key).ok_or_else(|| {
        // INVARIANT: open shards cover the key space; a miss means the catalog changed
        // under a cached stream, so the caller may retry.
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The stream's shards are changing; retry the request.",
        )
    })?;
    Ok(PendingRecord {
        shard_ordinal: shard.ordinal,
        hash_key,
        partition_key,
        data,
    })
}

/// How many times a record whose shard closed under it is routed again.
const REROUTES_MAX: usize = 4;

/// Each record's shard and sequence number, or why it was not written.
type Appended = Vec<Result<(u64, SequenceNumber), ApiError>>;

/// Appends routed records; a record whose shard a reshard closed between routing and
/// commit is routed again over the stream's shards as the catalog has them now (the
/// child that holds its hash key) and appended again. Results are in input order.
async fn append_routed(
    state: &AppState,
    caller: &Caller,
    stream: &Stream,
    records: Vec<PendingRecord>,
) -> Result<Appended, ApiError> {
    let account = caller.account_id.as_str();
    let mut results: Vec<Option<Result<(u64, SequenceNumber), ApiError>>> =
        (0..records.len()).map(|_| None).collect();
    let mut pending: Vec<(usize, PendingRecord)> = records.into_iter().enumerate().collect();
    let mut current: Option<Arc<Stream>> = None;
    for _ in 0..=REROUTES_MAX {
        if pending.is_empty() {
            break;
        }
        let (stream_id, name) = match &current {
            Some(s) => (s.id, s.name.as_str()),
            None => (stream.id, stream.name.as_str()),
        };
        let (places, batch): (Vec<usize>, Vec<PendingRecord>) = pending.into_iter().unzip();
        let shards: Vec<u64> = batch.iter().map(|r| r.shard_ordinal).collect();
        let answers = state
            .committer
            .append(stream_id, name, account, batch)
            .await?;
        pending = Vec::new();
        for ((place, shard), answer) in places.into_iter().zip(shards).zip(answers) {
            match answer {
                Ok(seq) => results[place] = Some(Ok((shard, seq))),
                Err(storage::commit::AppendError::Refused(e)) => results[place] = Some(Err(e)),
                // Handed back by the writer, unacknowledged.
                Err(storage::commit::AppendError::ShardClosed(record)) => {
                    pending.push((place, *record))
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        state.streams.forget(account, &stream.name);
        let fresh = state
            .streams
            .get(&state.catalog, account, &stream.name)
            .await?;
        if fresh.id != stream.id {
            return Err(ApiError::stream_not_found(&stream.name, account));
        }
        writable(&fresh)?;
        for (_, record) in pending.iter_mut() {
            record.shard_ordinal = fresh
                .route(record.hash_key)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ServiceUnavailable,
                        "The stream's shards are changing; retry the request.",
                    )
                })?
                .ordinal;
        }
        current = Some(fresh);
    }
    for (place, _) in pending {
        results[place] = Some(Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The stream's shards are changing; retry the request.",
        )));
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every record gets an outcome"))
        .collect())
}

/// A stream records can be written to and read from: not CREATING or DELETING.
pub(crate) fn writable(stream: &Stream) -> Result<(), ApiError> {
    use control_plane::StreamStatus::*;
    match stream.status {
        Active | Updating => Ok(()),
        Creating | Deleting => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Stream {} under account {} not found.",
                stream.name, stream.account_id
            ),
        )),
    }
}

async fn put_record(
    state: &AppState,
    caller: &Caller,
    input: PutRecordInput,
) -> Result<PutRecordOutput, ApiError> {
    let name = state
        .stream_name(caller, "kinesis:PutRecord", input.stream())
        .await?;
    if let Some(ordering) = &input.sequence_number_for_ordering {
        SequenceNumber::parse(ordering, "sequenceNumberForOrdering")?;
    }
    let stream = state
        .streams
        .get(&state.catalog, caller.account_id.as_str(), &name)
        .await?;
    writable(&stream)?;
    state
        .keyring
        .check_stream_key(&stream.account_id, stream.master_key_id.as_deref())
        .await?;
    let record = route_record(
        &stream,
        input.data,
        input.partition_key,
        input.explicit_hash_key.as_deref(),
        "",
    )?;
    let shard = record.shard_ordinal;
    let bytes = (record.data.len() + record.partition_key.len()) as u64;
    if !state
        .throttle
        .admit_write(stream.id, shard, bytes)
        .await
        .map_err(api)?
    {
        return Err(crate::throttle::exceeded(
            &stream.name,
            &caller.account_id,
            shard,
        ));
    }
    let mut results = append_routed(state, caller, &stream, vec![record]).await?;
    let (shard, sequence_number) = results.pop().expect("one result per record")?;
    Ok(PutRecordOutput {
        shard_id: shard_id(shard),
        sequence_number: sequence_number.to_string(),
        encryption_type: stream.encryption_type.clone(),
    })
}

async fn put_records(
    state: &AppState,
    caller: &Caller,
    input: PutRecordsInput,
) -> Result<PutRecordsOutput, ApiError> {
    let entries = validate::required(input.records, "records")?;
    if entries.is_empty() {
        return Err(ApiError::validation(
            "[]",
            "records",
            "Member must have length greater than or equal to 1",
        ));
    }
    if entries.len() > limits::PUT_RECORDS_COUNT_MAX {
        return Err(ApiError::validation(
            format!("{} records", entries.len()),
            "records",
            "Member must have length less than or equal to 500",
        ));
    }
    let name = state
        .stream_name(
            caller,
            "kinesis:PutRecords",
            StreamRef {
                stream_name: input.stream_name.as_deref(),
                stream_arn: input.stream_arn.as_deref(),
            },
        )
        .await?;
    let total: usize = entries
        .iter()
        .map(|e| {
            e.data.as_ref().map_or(0, |d| d.0.len())
                + e.partition_key.as_ref().map_or(0, String::len)
        })
        .sum();
    if total > limits::PUT_RECORDS_BYTES_MAX {
        return Err(ApiError::invalid_argument(format!(
            "Records size exceeds 5 MB limit: the request carries {total} bytes of data and partition keys."
        )));
    }
    let stream = state
        .streams
        .get(&state.catalog, caller.account_id.as_str(), &name)
        .await?;
    writable(&stream)?;
    state
        .keyring
        .check_stream_key(&stream.account_id, stream.master_key_id.as_deref())
        .await?;
    let mut records = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        records.push(route_record(
            &stream,
            entry.data,
            entry.partition_key,
            entry.explicit_hash_key.as_deref(),
            &format!("records.{}.member.", i + 1),
        )?);
    }
    let shards: Vec<u64> = records.iter().map(|r| r.shard_ordinal).collect();
    // Records over their shard's limit fail alone, with Kinesis's per-record error;
    // the rest are appended.
    let mut admitted = Vec::with_capacity(records.len());
    for r in &records {
        let bytes = (r.data.len() + r.partition_key.len()) as u64;
        admitted.push(
            state
                .throttle
                .admit_write(stream.id, r.shard_ordinal, bytes)
                .await
                .map_err(api)?,
        );
    }
    let to_append: Vec<PendingRecord> = records
        .into_iter()
        .zip(&admitted)
        .filter_map(|(r, &ok)| ok.then_some(r))
        .collect();
    let mut appended = if to_append.is_empty() {
        Vec::new()
    } else {
        append_routed(state, caller, &stream, to_append).await?
    }
    .into_iter();
    let results: Vec<Result<(u64, SequenceNumber), ApiError>> = admitted
        .iter()
        .zip(&shards)
        .map(|(&ok, &shard)| {
            if ok {
                appended.next().expect("one result per appended record")
            } else {
                Err(crate::throttle::exceeded(
                    &stream.name,
                    &caller.account_id,
                    shard,
                ))
            }
        })
        .collect();
    if let Some(Err(e)) = results.first()
        && e.code == ErrorCode::ResourceNotFound
    {
        return Err(e.clone());
    }
    let mut failed = 0;
    let out = results
        .into_iter()
        .zip(shards)
        .map(|(result, _)| match result {
            Ok((shard, seq)) => PutRecordsResultEntry {
                sequence_number: Some(seq.to_string()),
                shard_id: Some(shard_id(shard)),
                error_code: None,
                error_message: None,
            },
            Err(e) => {
                failed += 1;
                PutRecordsResultEntry {
                    sequence_number: None,
                    shard_id: None,
                    error_code: Some(e.code.type_name().to_string()),
                    error_message: Some(if e.code == ErrorCode::InternalFailure {
                        "Internal service failure.".to_string()
                    } else {
                        e.message
                    }),
                }
            }
        })
        .collect();
    Ok(PutRecordsOutput {
        failed_record_count: failed,
        records: out,
        encryption_type: stream.encryption_type.clone(),
    })
}

async fn get_shard_iterator(
    state: &AppState,
    caller: &Caller,
    input: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput, ApiError> {
    let shard_id_text = validate::required(input.shard_id.clone(), "shardId")?;
    validate::shard_id(&shard_id_text, "shardId")?;
    let kind = validate::required(input.shard_iterator_type.clone(), "shardIteratorType")?;
    let starting = start_kind_and_sequence(
        &kind,
        input.starting_sequence_number.as_deref(),
        "shardIteratorType",
        "startingSequenceNumber",
    )?;
    let stream = state
        .load(caller, "kinesis:GetShardIterator", input.stream())
        .await?;
    writable(&stream)?;
    let shard = shard_of(&stream, &shard_id_text)?;
    let next_counter =
        start_counter(state, &stream, shard, &kind, starting, input.timestamp).await?;
    let position = ShardPosition {
        stream_id: stream.id,
        shard_ordinal: shard.ordinal,
        next_counter,
    };
    Ok(GetShardIteratorOutput {
        shard_iterator: state.iterators.issue(
            caller.account_id.as_str(),
            &position,
            state.clock.now_ms(),
        ),
    })
}

/// The position kinds GetShardIterator and SubscribeToShard take.
const START_KINDS: [&str; 5] = [
    "AFTER_SEQUENCE_NUMBER",
    "AT_SEQUENCE_NUMBER",
    "AT_TIMESTAMP",
    "TRIM_HORIZON",
    "LATEST",
];

/// Checks a start position's kind and its sequence number (which only the
/// *_SEQUENCE_NUMBER kinds take), naming the members as the operation does.
pub(crate) fn start_kind_and_sequence(
    kind: &str,
    starting: Option<&str>,
    kind_member: &str,
    sequence_member: &str,
) -> Result<Option<SequenceNumber>, ApiError> {
    if !START_KINDS.contains(&kind) {
        return Err(ApiError::validation(
            kind,
            kind_member,
            "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]",
        ));
    }
    let starting = starting
        .map(|s| SequenceNumber::parse(s, sequence_member))
        .transpose()?;
    let takes_sequence = matches!(kind, "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER");
    if starting.is_some() && !takes_sequence {
        return Err(ApiError::invalid_argument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON, LATEST or AT_TIMESTAMP and no StartingSequenceNumber. Request specified {kind} and also a StartingSequenceNumber."
        )));
    }
    Ok(starting)
}

/// The shard a shard id names in `stream`.
pub(crate) fn shard_of<'a>(stream: &'a Stream, shard_id_text: &str) -> Result<&'a Shard, ApiError> {
    parse_shard_id(shard_id_text)
        .and_then(|o| stream.shard(o))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "Shard {shard_id_text} in stream {} under account {} does not exist",
                    stream.name, stream.account_id
                ),
            )
        })
}

/// The counter of the first record a read from this start position returns.
pub(crate) async fn start_counter(
    state: &AppState,
    stream: &Stream,
    shard: &Shard,
    kind: &str,
    starting: Option<SequenceNumber>,
    timestamp: Option<Timestamp>,
) -> Result<u64, ApiError> {
    let sequence = |kind: &str| {
        let seq = starting.ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "StartingSequenceNumber is required for ShardIteratorType {kind}."
            ))
        })?;
        if seq.shard_ordinal() != shard.ordinal || seq.counter() >= shard.next_sequence {
            return Err(ApiError::invalid_argument(format!(
                "StartingSequenceNumber {seq} used in GetShardIterator on shard {} in stream {} under account {} is invalid.",
                shard.shard_id(),
                stream.name,
                stream.account_id
            )));
        }
        Ok(seq.counter())
    };
    Ok(match kind {
        "TRIM_HORIZON" => 0,
        "LATEST" => shard.next_sequence,
        "AT_SEQUENCE_NUMBER" => sequence("AT_SEQUENCE_NUMBER")?,
        "AFTER_SEQUENCE_NUMBER" => sequence("AFTER_SEQUENCE_NUMBER")? + 1,
        "AT_TIMESTAMP" => {
            let at = timestamp.ok_or_else(|| {
                ApiError::invalid_argument(
                    "Timestamp is required for ShardIteratorType AT_TIMESTAMP.",
                )
            })?;
            first_counter_at(state, stream, shard, at.epoch_ms).await?
        }
        _ => unreachable!("checked against START_KINDS"),
    })
}

/// The counter of the first record that arrived at or after `at_ms`, or the shard's
/// tip when none has.
async fn first_counter_at(
    state: &AppState,
    stream: &Stream,
    shard: &Shard,
    at_ms: i64,
) -> Result<u64, ApiError> {
    state
        .catalog
        .first_counter_at(stream.id, shard.ordinal, at_ms)
        .await
        .map_err(api)
}

async fn get_records(
    state: &AppState,
    caller: &Caller,
    input: GetRecordsInput,
) -> Result<GetRecordsOutput, ApiError> {
    let iterator = validate::required(input.shard_iterator, "shardIterator")?;
    let limit = input.limit.unwrap_or(limits::GET_RECORDS_LIMIT_MAX);
    validate::int_range(limit, "limit", 1, limits::GET_RECORDS_LIMIT_MAX)?;
    if let Some(arn) = &input.stream_arn {
        StreamArn::parse(arn)?;
    }
    let now = state.clock.now_ms();
    let position = state
        .iterators
        .open(caller.account_id.as_str(), &iterator, now)?;
    // The shard's row is read before its records: once it says closed, every record
    // the shard will ever hold is committed, so a read that reaches the end of its
    // chunks has read the shard to its end.
    let target = state
        .catalog
        .read_target(
            caller.account_id.as_str(),
            position.stream_id,
            position.shard_ordinal,
        )
        .await
        .map_err(api)?;
    let Some(target) = target else {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "The stream this shard iterator belongs to no longer exists under account {}.",
                caller.account_id.as_str()
            ),
        ));
    };
    let ReadTarget {
        retention_hours,
        stream_name,
        master_key_id,
        shard_closed: closed,
    } = target;
    let stream_arn = state.arn(caller, &stream_name);
    state
        .authz
        .authorize(
            caller,
            "kinesis:GetRecords",
            Resource::Stream {
                account: &caller.account_id,
                arn: &stream_arn,
                name: &stream_name,
            },
        )
        .await?;
    state
        .keyring
        .check_stream_key(&caller.account_id, master_key_id.as_deref())
        .await?;
    if !state
        .throttle
        .admit_read(position.stream_id, position.shard_ordinal)
    {
        return Err(crate::throttle::exceeded(
            &stream_name,
            &caller.account_id,
            position.shard_ordinal,
        ));
    }
    let read = reader::read_shard(
        &state.catalog,
        &state.store,
        &state.keyring,
        caller.account_id.as_str(),
        position.stream_id,
        position.shard_ordinal,
        position.next_counter,
        limit as usize,
        limits::GET_RECORDS_BYTES_MAX,
        now - retention_hours * 3_600_000,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, source = ?std::error::Error::source(&e), "shard read failed");
        e.to_api()
    })?;
    // A closed shard read to its end: no next iterator, and the shards its records
    // continue in.
    let child_shards = if closed && read.at_tip {
        Some(child_shards(state, position.stream_id, position.shard_ordinal).await?)
    } else {
        None
    };
    let millis_behind_latest = match (read.at_tip, read.records.last()) {
        (true, _) | (false, None) => 0,
        (false, Some(last)) => (now - last.record.arrival_ms).max(0),
    };
    let next = ShardPosition {
        next_counter: read.next_counter,
        ..position
    };
    state.throttle.charge_read(
        position.stream_id,
        position.shard_ordinal,
        read.records
            .iter()
            .map(|r| (r.record.data.len() + r.record.partition_key.len()) as u64)
            .sum(),
    );
    storage::traffic::stream_traffic(
        storage::traffic::Direction::Out,
        &caller.account_id,
        &stream_name,
        read.records.len() as u64,
        read.records
            .iter()
            .map(|r| r.record.data.len() as u64)
            .sum(),
    );
    Ok(GetRecordsOutput {
        records: records_out(position.shard_ordinal, read.records),
        next_shard_iterator: child_shards.is_none().then(|| {
            state
                .iterators
                .issue(caller.account_id.as_str(), &next, now)
        }),
        millis_behind_latest,
        child_shards,
    })
}

/// A shard's records as GetRecords and SubscribeToShard return them.
pub(crate) fn records_out(ordinal: u64, records: Vec<reader::ShardRecord>) -> Vec<RecordOut> {
    records
        .into_iter()
        .map(|r| RecordOut {
            sequence_number: SequenceNumber::new(ordinal, r.counter).to_string(),
            approximate_arrival_timestamp: Timestamp {
                epoch_ms: r.record.arrival_ms,
            },
            data: Blob(r.record.data),
            partition_key: r.record.partition_key,
        })
        .collect()
}

/// The shards that name `ordinal` as parent or adjacent parent, with both parents.
pub(crate) async fn child_shards(
    state: &AppState,
    stream_id: i64,
    ordinal: u64,
) -> Result<Vec<ChildShard>, ApiError> {
    Ok(state
        .catalog
        .child_shards(stream_id, ordinal)
        .await
        .map_err(api)?
        .into_iter()
        .map(|child| ChildShard {
            shard_id: child.shard_id,
            parent_shards: child.parent_shard_ids,
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: child.hash_key_start,
                ending_hash_key: child.hash_key_end,
            },
        })
        .collect())
}

async fn add_tags(
    state: &AppState,
    caller: &Caller,
    input: AddTagsToStreamInput,
) -> Result<Empty, ApiError> {
    let tags: Vec<(String, String)> = validate::required(input.tags.clone(), "tags")?
        .into_iter()
        .collect();
    if tags.is_empty() || tags.len() > limits::TAGS_PER_CALL_MAX {
        return Err(ApiError::validation(
            format!("{} tags", tags.len()),
            "tags",
            if tags.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 10"
            },
        ));
    }
    validate_tags(&tags)?;
    let stream = state
        .load(caller, "kinesis:AddTagsToStream", input.stream())
        .await?;
    state
        .catalog
        .add_tags(stream.id, &tags)
        .await
        .map_err(api)?;
    Ok(Empty {})
}

async fn remove_tags(
    state: &AppState,
    caller: &Caller,
    input: RemoveTagsFromStreamInput,
) -> Result<Empty, ApiError> {
    let keys = validate::required(input.tag_keys.clone(), "tagKeys")?;
    if keys.is_empty() || keys.len() > limits::TAGS_PER_CALL_MAX {
        return Err(ApiError::validation(
            format!("{} keys", keys.len()),
            "tagKeys",
            if keys.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 10"
            },
        ));
    }
    for key in &keys {
        validate::string_length(key, "tagKeys.member", 1, limits::TAG_KEY_CHARS_MAX)?;
    }
    let stream = state
        .load(caller, "kinesis:RemoveTagsFromStream", input.stream())
        .await?;
    state
        .catalog
        .remove_tags(stream.id, &keys)
        .await
        .map_err(api)?;
    Ok(Empty {})
}

async fn list_tags(
    state: &AppState,
    caller: &Caller,
    input: ListTagsForStreamInput,
) -> Result<ListTagsForStreamOutput, ApiError> {
    let limit = input.limit.unwrap_or(limits::LIST_TAGS_LIMIT_MAX);
    validate::int_range(limit, "limit", 1, limits::LIST_TAGS_LIMIT_MAX)?;
    if let Some(start) = &input.exclusive_start_tag_key {
        validate::string_length(start, "exclusiveStartTagKey", 1, limits::TAG_KEY_CHARS_MAX)?;
    }
    let stream = state
        .load(caller, "kinesis:ListTagsForStream", input.stream())
        .await?;
    let (tags, has_more_tags) = state
        .catalog
        .list_tags(stream.id, input.exclusive_start_tag_key.as_deref(), limit)
        .await
        .map_err(api)?;
    Ok(ListTagsForStreamOutput {
        tags: tags
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
        has_more_tags,
    })
}

async fn describe_limits(
    state: &AppState,
    caller: &Caller,
) -> Result<DescribeLimitsOutput, ApiError> {
    state
        .authz
        .authorize(
            caller,
            "kinesis:DescribeLimits",
            Resource::Tenant {
                account: &caller.account_id,
            },
        )
        .await?;
    let (open, on_demand) = state
        .catalog
        .account_usage(caller.account_id.as_str())
        .await
        .map_err(api)?;
    Ok(DescribeLimitsOutput {
        shard_limit: state.config.account_shards_max,
        open_shard_count: open,
        on_demand_stream_count: on_demand,
        on_demand_stream_count_limit: state.config.account_on_demand_streams_max,
    })
}

async fn change_retention(
    state: &AppState,
    caller: &Caller,
    input: RetentionInput,
    increase: bool,
) -> Result<Empty, ApiError> {
    let hours = validate::required(input.retention_period_hours, "retentionPeriodHours")?;
    validate::int_range(hours, "retentionPeriodHours", 1, i64::from(i32::MAX))?;
    let retention_action = if increase {
        "kinesis:IncreaseStreamRetentionPeriod"
    } else {
        "kinesis:DecreaseStreamRetentionPeriod"
    };
    let stream = state.load(caller, retention_action, input.stream()).await?;
    if hours < limits::RETENTION_HOURS_MIN {
        return Err(ApiError::invalid_argument(format!(
            "Minimum allowed retention period is {} hours. Requested retention period ({hours} hours) is too short.",
            limits::RETENTION_HOURS_MIN
        )));
    }
    if hours > limits::RETENTION_HOURS_MAX {
        return Err(ApiError::invalid_argument(format!(
            "Maximum allowed retention period is {} hours. Requested retention period ({hours} hours) is too long.",
            limits::RETENTION_HOURS_MAX
        )));
    }
    let current = stream.retention_hours;
    if increase && hours < current {
        return Err(ApiError::invalid_argument(format!(
            "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
            stream.name
        )));
    }
    if !increase && hours > current {
        return Err(ApiError::invalid_argument(format!(
            "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
            stream.name
        )));
    }
    state
        .catalog
        .set_retention_hours(stream.id, hours, state.clock.now_ms())
        .await
        .map_err(api)?;
    Ok(Empty {})
}

/// The stream a resource-policy request names by its ResourceARN, once Cedar allowed
/// `action` on it, with the name of the policy document attached to it.
async fn policy_stream(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource_arn: Option<&str>,
) -> Result<(Stream, String), ApiError> {
    let arn = validate::required(resource_arn, "resourceARN")?;
    let stream = state
        .load(
            caller,
            action,
            StreamRef {
                stream_name: None,
                stream_arn: Some(arn),
            },
        )
        .await?;
    let document = format!("stream/{}", stream.name);
    Ok((stream, document))
}

/// Attaches a Cedar policy document to a stream (Kinesis's PutResourcePolicy, with
/// Cedar where AWS takes IAM JSON): every policy in it must name the stream as its
/// resource, and it is validated like any tenant policy before it is stored.
async fn put_resource_policy(
    state: &AppState,
    caller: &Caller,
    input: PutResourcePolicyInput,
) -> Result<Empty, ApiError> {
    let (_stream, document) = policy_stream(
        state,
        caller,
        "kinesis:PutResourcePolicy",
        input.resource_arn.as_deref(),
    )
    .await?;
    let policy = validate::required(input.policy, "policy")?;
    state
        .store_policy(caller, &caller.account_id, &document, Some(&policy))
        .await
        .map_err(|e| match e.code {
            ErrorCode::Validation => ApiError::invalid_argument(format!(
                "The resource policy does not validate: {}",
                e.message
            )),
            _ => e,
        })?;
    Ok(Empty {})
}

async fn get_resource_policy(
    state: &AppState,
    caller: &Caller,
    input: ResourcePolicyInput,
) -> Result<GetResourcePolicyOutput, ApiError> {
    let (_stream, document) = policy_stream(
        state,
        caller,
        "kinesis:GetResourcePolicy",
        input.resource_arn.as_deref(),
    )
    .await?;
    // Kinesis answers an empty policy for a stream that has none.
    let policy = match state
        .catalog
        .policy_version(&caller.account_id, &document, None)
        .await
    {
        Ok(version) => version.body.unwrap_or_default(),
        Err(CatalogError::Api(e)) if e.code == ErrorCode::ResourceNotFound => String::new(),
        Err(e) => return Err(api(e)),
    };
    Ok(GetResourcePolicyOutput { policy })
}

async fn delete_resource_policy(
    state: &AppState,
    caller: &Caller,
    input: ResourcePolicyInput,
) -> Result<Empty, ApiError> {
    let (stream, document) = policy_stream(
        state,
        caller,
        "kinesis:DeleteResourcePolicy",
        input.resource_arn.as_deref(),
    )
    .await?;
    state
        .store_policy(caller, &caller.account_id, &document, None)
        .await
        .map_err(|e| match e.code {
            ErrorCode::ResourceNotFound => ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("No resource policy is attached to stream {}.", stream.name),
            ),
            _ => e,
        })?;
    Ok(Empty {})
}

/// StartStreamEncryption (`start`) and StopStreamEncryption. Sluice seals every stream
/// at rest whatever they say: Start puts the stream's new data keys under the tenant
/// key it names, Stop puts them back under the account's default key
/// (`alias/aws/kinesis`) and reports EncryptionType NONE, as Kinesis does.
async fn stream_encryption(
    state: &AppState,
    caller: &Caller,
    input: StreamEncryptionInput,
    start: bool,
) -> Result<Empty, ApiError> {
    let action = if start {
        "kinesis:StartStreamEncryption"
    } else {
        "kinesis:StopStreamEncryption"
    };
    let encryption_type = validate::required(input.encryption_type.clone(), "encryptionType")?;
    if encryption_type != "KMS" && encryption_type != "NONE" {
        return Err(ApiError::validation(
            &encryption_type,
            "encryptionType",
            "Member must satisfy enum value set: [KMS, NONE]",
        ));
    }
    if encryption_type != "KMS" {
        return Err(ApiError::invalid_argument("EncryptionType must be KMS."));
    }
    let key_ref = validate::required(input.key_id.clone(), "keyId")?;
    validate::string_length(&key_ref, "keyId", 1, 2048)?;
    let stream = state.load(caller, action, input.stream()).await?;
    if start {
        let key = crate::kms_api::key_for_stream(state, caller, &key_ref).await?;
        state
            .catalog
            .set_stream_encryption(stream.id, Some((&key_ref, &key.key_id)))
            .await
            .map_err(api)?;
    } else {
        state
            .catalog
            .set_stream_encryption(stream.id, None)
            .await
            .map_err(api)?;
    }
    state.streams.forget(&caller.account_id, &stream.name);
    state.keyring.forget_stream(stream.id).await;
    // UPDATING for the configured while, as Kinesis reports a stream whose encryption
    // changes; records still flow.
    state
        .begin_transition(caller, &stream.name, control_plane::StreamStatus::Updating)
        .await?;
    Ok(Empty {})
}

/// A shard id member of a reshard request, as an ordinal; an id that cannot be one of
/// the stream's is not found.
fn reshard_shard(
    text: Option<String>,
    member: &str,
    stream: &str,
    account: &str,
) -> Result<u64, ApiError> {
    let text = validate::required(text, member)?;
    validate::shard_id(&text, member)?;
    parse_shard_id(&text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("Could not find shard {text} in stream {stream} under account {account}."),
        )
    })
}

/// Runs a reshard of the caller's stream `name` (Cedar has allowed it): the shards
/// change at once, and the stream is UPDATING for the configured while after.
async fn reshard(
    state: &AppState,
    caller: &Caller,
    name: &str,
    change: control_plane::streams::Reshard,
) -> Result<control_plane::streams::Resharded, ApiError> {
    let now = state.clock.now_ms();
    let done = state
        .catalog
        .reshard(
            &control_plane::streams::ReshardContext {
                account_id: caller.account_id.as_str(),
                name,
                region: &state.config.region,
                now_ms: now,
                account_shards_max: state.config.account_shards_max,
                updating_until_ms: (state.config.stream_transition_ms > 0)
                    .then(|| now + state.config.stream_transition_ms as i64),
                by_hand: true,
            },
            change,
        )
        .await
        .map_err(api)?;
    state.streams.forget(caller.account_id.as_str(), name);
    Ok(done)
}

async fn split_shard(
    state: &AppState,
    caller: &Caller,
    input: SplitShardInput,
) -> Result<Empty, ApiError> {
    let key_text = validate::required(input.new_starting_hash_key.clone(), "newStartingHashKey")?;
    let key = HashKey::parse_member(&key_text, "newStartingHashKey", |text| {
        format!("NewStartingHashKey {text} is not in the hash key range [0, 2^128-1].")
    })?;
    let name = state
        .stream_name(caller, "kinesis:SplitShard", input.stream())
        .await?;
    let shard = reshard_shard(
        input.shard_to_split,
        "shardToSplit",
        &name,
        caller.account_id.as_str(),
    )?;
    reshard(
        state,
        caller,
        &name,
        control_plane::streams::Reshard::Split {
            shard,
            new_starting_key: key,
        },
    )
    .await?;
    Ok(Empty {})
}

async fn merge_shards(
    state: &AppState,
    caller: &Caller,
    input: MergeShardsInput,
) -> Result<Empty, ApiError> {
    let name = state
        .stream_name(caller, "kinesis:MergeShards", input.stream())
        .await?;
    let account = caller.account_id.as_str();
    let shard = reshard_shard(input.shard_to_merge, "shardToMerge", &name, account)?;
    let adjacent = reshard_shard(
        input.adjacent_shard_to_merge,
        "adjacentShardToMerge",
        &name,
        account,
    )?;
    reshard(
        state,
        caller,
        &name,
        control_plane::streams::Reshard::Merge { shard, adjacent },
    )
    .await?;
    Ok(Empty {})
}

async fn update_shard_count(
    state: &AppState,
    caller: &Caller,
    input: UpdateShardCountInput,
) -> Result<UpdateShardCountOutput, ApiError> {
    let target = validate::required(input.target_shard_count, "targetShardCount")?;
    validate::int_range(target, "targetShardCount", 1, i64::from(i32::MAX))?;
    let scaling = validate::required(input.scaling_type.clone(), "scalingType")?;
    if scaling != "UNIFORM_SCALING" {
        return Err(ApiError::validation(
            &scaling,
            "scalingType",
            "Member must satisfy enum value set: [UNIFORM_SCALING]",
        ));
    }
    let name = state
        .stream_name(caller, "kinesis:UpdateShardCount", input.stream())
        .await?;
    let target_u32 = u32::try_from(target).expect("checked against i32::MAX");
    let done = reshard(
        state,
        caller,
        &name,
        control_plane::streams::Reshard::Uniform { target: target_u32 },
    )
    .await?;
    Ok(UpdateShardCountOutput {
        stream_arn: state.arn(caller, &name),
        stream_name: name,
        current_shard_count: done.open_before,
        target_shard_count: target,
    })
}

async fn update_stream_mode(
    state: &AppState,
    caller: &Caller,
    input: UpdateStreamModeInput,
) -> Result<Empty, ApiError> {
    let arn = validate::required(input.stream_arn.clone(), "streamARN")?;
    let details = validate::required(input.stream_mode_details, "streamModeDetails")?;
    let mode = StreamMode::parse(&details.stream_mode).ok_or_else(|| {
        ApiError::validation(
            &details.stream_mode,
            "streamModeDetails.streamMode",
            "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]",
        )
    })?;
    let name = state
        .stream_name(
            caller,
            "kinesis:UpdateStreamMode",
            StreamRef {
                stream_name: None,
                stream_arn: Some(&arn),
            },
        )
        .await?;
    let now = state.clock.now_ms();
    state
        .catalog
        .set_stream_mode(
            caller.account_id.as_str(),
            &name,
            mode,
            &state.config.region,
            state.config.account_on_demand_streams_max,
            (state.config.stream_transition_ms > 0)
                .then(|| now + state.config.stream_transition_ms as i64),
        )
        .await
        .map_err(api)?;
    state.streams.forget(caller.account_id.as_str(), &name);
    Ok(Empty {})
}
