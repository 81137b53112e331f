//! Stream lifecycle and description: CreateStream, DeleteStream, DescribeStream(Summary),
//! ListStreams, ListShards, tags, DescribeLimits and the retention period.

use catalog::streams::{NewStream, parse_shard_id, shard_id};
use catalog::tags::Tagged;
use catalog::{Shard, Stream, StreamMode};
use edge::{Caller, Resource};
use protocol::model::*;
use protocol::wire::Timestamp;
use protocol::{ApiError, ErrorCode, limits, validate};

use crate::state::*;

pub(crate) const DESCRIBE_STREAM_SHARDS_MAX: usize = 100;

pub(crate) async fn create_stream(
    state: &Kinesis,
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
    // The account's limit, with its current count in the message, is the catalog's to
    // check (in the transaction that counts the new shards).
    let tags: Vec<(String, String)> = input.tags.unwrap_or_default().into_iter().collect();
    if tags.len() > limits::TAGS_PER_STREAM_MAX {
        return Err(ApiError::validation(
            format!("{} tags", tags.len()),
            "tags",
            "Member must have length less than or equal to 50",
        ));
    }
    validate_tags(&tags, &name, &caller.account_id)?;
    if let Some(kib) = input.max_record_size_in_kib {
        validate::int_range(
            kib,
            "maxRecordSizeInKiB",
            limits::MAX_RECORD_SIZE_KIB_MIN,
            limits::MAX_RECORD_SIZE_KIB_MAX,
        )?;
    }
    let created = state
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
    if let Some(kib) = input.max_record_size_in_kib
        && kib != created.max_record_size_kib
    {
        state
            .catalog
            .set_max_record_size(created.id, kib)
            .await
            .map_err(api)?;
    }
    // CREATING for the configured while; the server's sweep makes it ACTIVE.
    if !state
        .begin_transition(caller, &name, catalog::StreamStatus::Creating)
        .await?
    {
        state.streams.forget(caller.account_id.as_str(), &name);
    }
    Ok(Empty {})
}

pub(crate) async fn delete_stream(
    state: &Kinesis,
    caller: &Caller,
    input: DeleteStreamInput,
) -> Result<Empty, ApiError> {
    let name = state
        .stream_name(caller, "kinesis:DeleteStream", input.stream())
        .await?;
    // DELETING for the configured while (reads and writes refused); the server's sweep
    // then deletes it. Without a while, at once.
    let moved = match state
        .begin_transition(caller, &name, catalog::StreamStatus::Deleting)
        .await
    {
        // Deleting a stream already being deleted succeeds, as Kinesis has it.
        Err(e) if e.code == ErrorCode::ResourceNotFound => {
            let stream = state
                .catalog
                .load_stream(caller.account_id.as_str(), &name)
                .await
                .map_err(|_| e.clone())?;
            if stream.status == catalog::StreamStatus::Deleting {
                return Ok(Empty {});
            }
            return Err(e);
        }
        other => other?,
    };
    if !moved {
        state
            .catalog
            .delete_stream(caller.account_id.as_str(), &name, state.clock.now_ms())
            .await
            .map_err(api)?;
    }
    state.streams.forget(caller.account_id.as_str(), &name);
    Ok(Empty {})
}

pub(crate) fn shard_out(shard: &Shard) -> ShardOut {
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

pub(crate) async fn describe_stream(
    state: &Kinesis,
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
    // A stream still being created has no shards to show yet, as Kinesis describes it.
    let creating = stream.status == catalog::StreamStatus::Creating;
    let mut shards: Vec<ShardOut> = stream
        .shards
        .iter()
        .filter(|_| !creating)
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
    let key_id = reported_key(&stream).to_string();
    let monitoring = crate::monitoring::enhanced_monitoring(&stream);
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
            enhanced_monitoring: monitoring,
            encryption_type: ENCRYPTION_TYPE.to_string(),
            key_id: Some(key_id),
        },
    })
}

pub(crate) async fn describe_stream_summary(
    state: &Kinesis,
    caller: &Caller,
    input: StreamOnlyInput,
) -> Result<DescribeStreamSummaryOutput, ApiError> {
    let stream = state
        .load(caller, "kinesis:DescribeStreamSummary", input.stream())
        .await?;
    let warm = (stream.mode == StreamMode::OnDemand)
        .then(|| crate::reshard::warm_throughput(state, &stream));
    let consumer_count = state
        .catalog
        .count_consumers(stream.id)
        .await
        .map_err(api)?;
    let key_id = reported_key(&stream).to_string();
    let monitoring = crate::monitoring::enhanced_monitoring(&stream);
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
            enhanced_monitoring: monitoring,
            encryption_type: ENCRYPTION_TYPE.to_string(),
            key_id: Some(key_id),
            consumer_count,
            record_distribution_strategy: stream.record_distribution.clone(),
            max_record_size_in_kib: stream.max_record_size_kib,
            warm_throughput: warm,
        },
    })
}

pub(crate) async fn list_streams(
    state: &Kinesis,
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
pub(crate) fn shard_passes(
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

pub(crate) async fn list_shards(
    state: &Kinesis,
    caller: &Caller,
    input: ListShardsInput,
) -> Result<ListShardsOutput, ApiError> {
    let max = input
        .max_results
        .unwrap_or(limits::LIST_SHARDS_MAX_RESULTS_DEFAULT);
    validate::int_range(max, "maxResults", 1, limits::LIST_SHARDS_MAX_RESULTS_MAX)?;
    // Kinesis's words for the two members that page ListShards.
    if input.next_token.is_none() && input.stream_name.is_none() && input.stream_arn.is_none() {
        return Err(ApiError::invalid_argument(
            "Either NextToken or StreamName should be provided.",
        ));
    }
    let (name, after) = match &input.next_token {
        Some(token) => {
            if input.stream_name.is_some() {
                return Err(ApiError::invalid_argument(
                    "NextToken and StreamName cannot be provided together.",
                ));
            }
            if input.stream_arn.is_some() || input.exclusive_start_shard_id.is_some() {
                return Err(ApiError::invalid_argument(
                    "NextToken and StreamARN or ExclusiveStartShardId cannot be provided together.",
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

pub(crate) async fn add_tags(
    state: &Kinesis,
    caller: &Caller,
    input: AddTagsToStreamInput,
) -> Result<Empty, ApiError> {
    let tags: Vec<(String, String)> = validate::required(input.tags.clone(), "tags")?
        .into_iter()
        .collect();
    let stream = state
        .load(caller, "kinesis:AddTagsToStream", input.stream())
        .await?;
    validate_tags(&tags, &stream.name, &caller.account_id)?;
    state
        .catalog
        .add_tags(Tagged::Stream(stream.id), &tags)
        .await
        .map_err(api)?;
    Ok(Empty {})
}

pub(crate) async fn remove_tags(
    state: &Kinesis,
    caller: &Caller,
    input: RemoveTagsFromStreamInput,
) -> Result<Empty, ApiError> {
    let keys = validate::required(input.tag_keys.clone(), "tagKeys")?;
    for key in &keys {
        validate::string_length(key, "tagKeys.member", 1, limits::TAG_KEY_CHARS_MAX)?;
    }
    let stream = state
        .load(caller, "kinesis:RemoveTagsFromStream", input.stream())
        .await?;
    validate_tag_keys(&keys, &stream.name, &caller.account_id)?;
    state
        .catalog
        .remove_tags(Tagged::Stream(stream.id), &keys)
        .await
        .map_err(api)?;
    Ok(Empty {})
}

pub(crate) async fn list_tags(
    state: &Kinesis,
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
        .list_tags(
            Tagged::Stream(stream.id),
            input.exclusive_start_tag_key.as_deref(),
            limit,
        )
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

pub(crate) async fn describe_limits(
    state: &Kinesis,
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

pub(crate) async fn change_retention(
    state: &Kinesis,
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
