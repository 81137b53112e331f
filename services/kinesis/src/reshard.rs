//! Resharding on request: SplitShard, MergeShards, UpdateShardCount and
//! UpdateStreamMode, each one catalog transaction.

use catalog::StreamMode;
use edge::Caller;
use protocol::hash::HashKey;
use protocol::model::*;
use protocol::{ApiError, ErrorCode, validate};

use crate::state::*;

/// A shard id member of a reshard request, as an ordinal, read as Kinesis reads shard
/// ids; one that can name no shard is not found, in Kinesis's words.
pub(crate) fn reshard_shard(
    text: Option<String>,
    member: &str,
    stream: &str,
    account: &str,
) -> Result<u64, ApiError> {
    let text = validate::required(text, member)?;
    validate::shard_id(&text, member)?;
    crate::records::resolve_shard_id(&text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("Could not find shard {text} in stream {stream} under account {account}."),
        )
    })
}

/// The caller's stream `name` once it has a shard of each ordinal; Kinesis's words when
/// it has not.
async fn with_shards(
    state: &Kinesis,
    caller: &Caller,
    name: &str,
    ordinals: &[u64],
) -> Result<catalog::Stream, ApiError> {
    let stream = state
        .catalog
        .load_stream(&caller.account_id, name)
        .await
        .map_err(api)?;
    for &ordinal in ordinals {
        if stream.shard(ordinal).is_none() {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "Could not find shard {} in stream {name} under account {}.",
                    catalog::streams::shard_id(ordinal),
                    caller.account_id
                ),
            ));
        }
    }
    Ok(stream)
}

/// Runs a reshard of the caller's stream `name` (Cedar has allowed it): the shards
/// change at once, and the stream is UPDATING for the configured while after.
pub(crate) async fn reshard(
    state: &Kinesis,
    caller: &Caller,
    name: &str,
    change: catalog::streams::Reshard,
) -> Result<catalog::streams::Resharded, ApiError> {
    let now = state.clock.now_ms();
    let done = state
        .catalog
        .reshard(
            &catalog::streams::ReshardContext {
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

pub(crate) async fn split_shard(
    state: &Kinesis,
    caller: &Caller,
    input: SplitShardInput,
) -> Result<Empty, ApiError> {
    let key_text = validate::required(input.new_starting_hash_key.clone(), "newStartingHashKey")?;
    // A key past 2^128 - 1 is refused against the shard, as any key outside it is.
    let key = HashKey::parse_member(&key_text, "newStartingHashKey", |text| text.to_string()).ok();
    let name_for_errors = input.stream_name.clone().unwrap_or_default();
    let shard = reshard_shard(
        input.shard_to_split.clone(),
        "shardToSplit",
        &name_for_errors,
        caller.account_id.as_str(),
    )?;
    let name = state
        .stream_name(caller, "kinesis:SplitShard", input.stream())
        .await?;
    let stream = with_shards(state, caller, &name, &[shard]).await?;
    let Some(key) = key else {
        let range = stream.shard(shard).expect("checked").hash_key_range;
        return Err(ApiError::invalid_argument(format!(
            "NewStartingHashKey {key_text} used in SplitShard() on shard {} in stream {name} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
            catalog::streams::shard_id(shard),
            caller.account_id,
            range.starting.0,
            range.ending.0
        )));
    };
    reshard(
        state,
        caller,
        &name,
        catalog::streams::Reshard::Split {
            shard,
            new_starting_key: key,
        },
    )
    .await?;
    Ok(Empty {})
}

pub(crate) async fn merge_shards(
    state: &Kinesis,
    caller: &Caller,
    input: MergeShardsInput,
) -> Result<Empty, ApiError> {
    let account = caller.account_id.as_str();
    let name_for_errors = input.stream_name.clone().unwrap_or_default();
    let shard = reshard_shard(
        input.shard_to_merge.clone(),
        "shardToMerge",
        &name_for_errors,
        account,
    )?;
    let adjacent = reshard_shard(
        input.adjacent_shard_to_merge.clone(),
        "adjacentShardToMerge",
        &name_for_errors,
        account,
    )?;
    let name = state
        .stream_name(caller, "kinesis:MergeShards", input.stream())
        .await?;
    with_shards(state, caller, &name, &[shard, adjacent]).await?;
    reshard(
        state,
        caller,
        &name,
        catalog::streams::Reshard::Merge { shard, adjacent },
    )
    .await?;
    Ok(Empty {})
}

pub(crate) async fn update_shard_count(
    state: &Kinesis,
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
        catalog::streams::Reshard::Uniform { target: target_u32 },
    )
    .await?;
    Ok(UpdateShardCountOutput {
        stream_arn: state.arn(caller, &name),
        stream_name: name,
        current_shard_count: done.open_before,
        target_shard_count: target,
    })
}

pub(crate) async fn update_stream_mode(
    state: &Kinesis,
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
            now,
        )
        .await
        .map_err(api)?;
    state.streams.forget(caller.account_id.as_str(), &name);
    Ok(Empty {})
}

/// UpdateStreamRecordDistributionStrategy: AUTO spreads an on-demand stream's records
/// over its shards whatever their keys; USER_PARTITION_KEY (the default) routes by key.
/// A provisioned stream takes only the default, as Kinesis says.
pub(crate) async fn update_record_distribution(
    state: &Kinesis,
    caller: &Caller,
    input: UpdateRecordDistributionInput,
) -> Result<Empty, ApiError> {
    let arn = validate::required(input.stream_arn.clone(), "streamARN")?;
    let strategy = validate::required(
        input.record_distribution_strategy.clone(),
        "recordDistributionStrategy",
    )?;
    if strategy != AUTO_DISTRIBUTION && strategy != "USER_PARTITION_KEY" {
        return Err(ApiError::validation(
            &strategy,
            "recordDistributionStrategy",
            "Member must satisfy enum value set: [AUTO, USER_PARTITION_KEY]",
        ));
    }
    let stream = state
        .load(
            caller,
            "kinesis:UpdateStreamRecordDistributionStrategy",
            StreamRef {
                stream_name: None,
                stream_arn: Some(&arn),
            },
        )
        .await?;
    if strategy == AUTO_DISTRIBUTION && stream.mode != StreamMode::OnDemand {
        return Err(ApiError::invalid_argument(format!(
            "Stream {} under account {} is in PROVISIONED mode: the AUTO record distribution \
             strategy is for ON_DEMAND streams.",
            stream.name, stream.account_id
        )));
    }
    state
        .catalog
        .set_record_distribution(stream.id, &strategy)
        .await
        .map_err(api)?;
    state.streams.forget(&caller.account_id, &stream.name);
    Ok(Empty {})
}

/// UpdateMaxRecordSize: the largest record the stream takes from now on, 1024 to 10240
/// KiB. Records already stored are not touched; readers take any size up to the most.
pub(crate) async fn update_max_record_size(
    state: &Kinesis,
    caller: &Caller,
    input: UpdateMaxRecordSizeInput,
) -> Result<Empty, ApiError> {
    let kib = validate::required(input.max_record_size_in_kib, "maxRecordSizeInKiB")?;
    validate::int_range(
        kib,
        "maxRecordSizeInKiB",
        protocol::limits::MAX_RECORD_SIZE_KIB_MIN,
        protocol::limits::MAX_RECORD_SIZE_KIB_MAX,
    )?;
    let arn = validate::required(input.stream_arn.clone(), "streamARN")?;
    let stream = state
        .load(
            caller,
            "kinesis:UpdateMaxRecordSize",
            StreamRef {
                stream_name: None,
                stream_arn: Some(&arn),
            },
        )
        .await?;
    if stream.status != catalog::StreamStatus::Active {
        return Err(ApiError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Stream {} under account {} not ACTIVE, instead in state {}",
                stream.name,
                stream.account_id,
                stream.status.as_str()
            ),
        ));
    }
    state
        .catalog
        .set_max_record_size(stream.id, kib)
        .await
        .map_err(api)?;
    state.streams.forget(&caller.account_id, &stream.name);
    Ok(Empty {})
}

/// An on-demand stream's warm throughput as DescribeStreamSummary and
/// UpdateStreamWarmThroughput report it: the target, and the write throughput its open
/// shards take now.
pub(crate) fn warm_throughput(state: &Kinesis, stream: &catalog::Stream) -> WarmThroughput {
    let per_shard = crate::autoscale::shard_write_bytes(&state.config.shard_limits);
    let open = stream.open_shards().count() as u64;
    WarmThroughput {
        target_mi_bps: stream.warm_throughput_mibps,
        current_mi_bps: (open.saturating_mul(per_shard) / (1024 * 1024)) as i64,
    }
}

/// UpdateStreamWarmThroughput: an on-demand stream keeps at least the shards that take
/// `WarmThroughputMiBps` of writes; if it has fewer, it scales to them now (evenly, as
/// UpdateShardCount does), and the scaler never merges below them.
pub(crate) async fn update_warm_throughput(
    state: &Kinesis,
    caller: &Caller,
    input: WarmThroughputInput,
) -> Result<WarmThroughputOutput, ApiError> {
    let mibps = validate::required(input.warm_throughput_mi_bps, "warmThroughputMiBps")?;
    validate::int_range(mibps, "warmThroughputMiBps", 0, i64::from(i32::MAX))?;
    let name = state
        .stream_name(caller, "kinesis:UpdateStreamWarmThroughput", input.stream())
        .await?;
    let stream = state
        .catalog
        .load_stream(&caller.account_id, &name)
        .await
        .map_err(api)?;
    if stream.mode != StreamMode::OnDemand {
        return Err(ApiError::invalid_argument(format!(
            "Stream {name} under account {} is in PROVISIONED mode: warm throughput is for ON_DEMAND streams.",
            caller.account_id
        )));
    }
    let per_shard = crate::autoscale::shard_write_bytes(&state.config.shard_limits);
    let floor = (mibps as u64 * 1024 * 1024).div_ceil(per_shard);
    let shards_max = u64::from(state.config.on_demand.shards_max);
    if floor > shards_max {
        return Err(ApiError::invalid_argument(format!(
            "WarmThroughputMiBps {mibps} needs {floor} shards; an on-demand stream here grows to {shards_max} at most."
        )));
    }
    state
        .catalog
        .set_warm_throughput(stream.id, mibps)
        .await
        .map_err(api)?;
    let open = stream.open_shards().count() as u64;
    if open < floor {
        let now = state.clock.now_ms();
        state
            .catalog
            .reshard(
                &catalog::streams::ReshardContext {
                    account_id: caller.account_id.as_str(),
                    name: &name,
                    region: &state.config.region,
                    now_ms: now,
                    account_shards_max: state.config.account_shards_max,
                    updating_until_ms: (state.config.stream_transition_ms > 0)
                        .then(|| now + state.config.stream_transition_ms as i64),
                    by_hand: false,
                },
                catalog::streams::Reshard::Uniform {
                    target: floor as u32,
                },
            )
            .await
            .map_err(api)?;
    }
    state.streams.forget(caller.account_id.as_str(), &name);
    let stream = state
        .catalog
        .load_stream(&caller.account_id, &name)
        .await
        .map_err(api)?;
    Ok(WarmThroughputOutput {
        stream_arn: state.arn(caller, &name),
        warm_throughput: warm_throughput(state, &stream),
        stream_name: name,
    })
}
