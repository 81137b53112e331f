//! Consumer groups: Sluice's own API (JSON 1.1, target prefix
//! `SluiceConsumerGroups_20261205.`, signing name `kinesis`) for reading a Kinesis
//! stream as a group of workers, the way the KCL does with a lease table, but kept
//! by the server. Members join and heartbeat; each readable shard is leased to one
//! live member with a fencing counter; a rebalance asks a member to give a lease up
//! (it checkpoints first); a silent member's leases are taken after the group's lease
//! timeout; a checkpoint from a member whose lease was handed on is refused
//! (`LeaseLostException`); after a reshard a child is leased only once its parents
//! were read to their ends. The state is the catalog's (`catalog::groups`); the
//! records themselves are read with Kinesis's GetShardIterator/GetRecords.
//!
//! Every operation is authorized by Cedar first: CreateConsumerGroup and
//! ListConsumerGroups on the stream, the rest on the group (`<stream ARN>/group/<name>`).

pub mod wire;

use std::sync::Arc;

use catalog::Catalog;
use catalog::groups::{CheckpointAt, GroupShard, GroupStart, GroupState, MemberAnswer};
use edge::{Authorizer, Caller, Resource, wire_error};
use protocol::arn::StreamArn;
use protocol::clock::SharedClock;
use protocol::sequence::SequenceNumber;
use protocol::wire::{Format, Timestamp};
use protocol::{ApiError, ErrorCode, validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::*;

pub const TARGET_PREFIX: &str = "SluiceConsumerGroups_20261205.";

/// The lease timeout a group gets when CreateConsumerGroup names none.
pub const LEASE_TIMEOUT_DEFAULT_S: i64 = 10;
pub const LEASE_TIMEOUT_MIN_S: i64 = 2;
pub const LEASE_TIMEOUT_MAX_S: i64 = 600;

/// What the service may touch.
pub struct GroupsService {
    pub catalog: Catalog,
    pub authz: Arc<dyn Authorizer>,
    pub region: String,
    pub clock: SharedClock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOperation {
    CreateConsumerGroup,
    DeleteConsumerGroup,
    DescribeConsumerGroup,
    ListConsumerGroups,
    JoinConsumerGroup,
    HeartbeatConsumerGroup,
    CheckpointConsumerGroup,
    LeaveConsumerGroup,
}

impl GroupOperation {
    pub const ALL: [GroupOperation; 8] = [
        GroupOperation::CreateConsumerGroup,
        GroupOperation::DeleteConsumerGroup,
        GroupOperation::DescribeConsumerGroup,
        GroupOperation::ListConsumerGroups,
        GroupOperation::JoinConsumerGroup,
        GroupOperation::HeartbeatConsumerGroup,
        GroupOperation::CheckpointConsumerGroup,
        GroupOperation::LeaveConsumerGroup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GroupOperation::CreateConsumerGroup => "CreateConsumerGroup",
            GroupOperation::DeleteConsumerGroup => "DeleteConsumerGroup",
            GroupOperation::DescribeConsumerGroup => "DescribeConsumerGroup",
            GroupOperation::ListConsumerGroups => "ListConsumerGroups",
            GroupOperation::JoinConsumerGroup => "JoinConsumerGroup",
            GroupOperation::HeartbeatConsumerGroup => "HeartbeatConsumerGroup",
            GroupOperation::CheckpointConsumerGroup => "CheckpointConsumerGroup",
            GroupOperation::LeaveConsumerGroup => "LeaveConsumerGroup",
        }
    }

    pub fn from_target(target: &str) -> Option<GroupOperation> {
        let name = target.strip_prefix(TARGET_PREFIX)?;
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The Cedar action, as `kinesis:<Operation>`.
    pub fn action(self) -> String {
        format!("kinesis:{}", self.name())
    }
}

pub async fn dispatch(
    state: &GroupsService,
    caller: &Caller,
    op: GroupOperation,
    format: Format,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    fn input<T: DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, ApiError> {
        format.decode(body)
    }
    fn out<T: Serialize>(format: Format, value: &T) -> Result<Vec<u8>, ApiError> {
        Ok(format.encode(value))
    }
    match op {
        GroupOperation::CreateConsumerGroup => {
            out(format, &create(state, caller, input(format, body)?).await?)
        }
        GroupOperation::DeleteConsumerGroup => {
            delete(state, caller, input(format, body)?).await?;
            Ok(Vec::new())
        }
        GroupOperation::DescribeConsumerGroup => out(
            format,
            &describe(state, caller, input(format, body)?).await?,
        ),
        GroupOperation::ListConsumerGroups => {
            out(format, &list(state, caller, input(format, body)?).await?)
        }
        GroupOperation::JoinConsumerGroup => {
            out(format, &join(state, caller, input(format, body)?).await?)
        }
        GroupOperation::HeartbeatConsumerGroup => out(
            format,
            &heartbeat(state, caller, input(format, body)?).await?,
        ),
        GroupOperation::CheckpointConsumerGroup => out(
            format,
            &checkpoint(state, caller, input(format, body)?).await?,
        ),
        GroupOperation::LeaveConsumerGroup => {
            leave(state, caller, input(format, body)?).await?;
            Ok(Vec::new())
        }
    }
}

/// The stream a request names, as (account, name, ARN).
fn stream_of(
    state: &GroupsService,
    caller: &Caller,
    named: &StreamNamed,
) -> Result<(String, String, String), ApiError> {
    let (account, name) = match (&named.stream_name, &named.stream_arn) {
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "Either StreamName or StreamARN should be provided.",
            ));
        }
        (Some(name), None) => (caller.account_id.clone(), name.clone()),
        (name, Some(text)) => {
            let arn = StreamArn::parse(text)?;
            if let Some(name) = name
                && *name != arn.stream_name
            {
                return Err(ApiError::invalid_argument(format!(
                    "StreamARN {text} and StreamName {name} name different streams."
                )));
            }
            if arn.region != state.region {
                return Err(ApiError::stream_not_found(
                    &arn.stream_name,
                    &arn.account_id,
                ));
            }
            (arn.account_id, arn.stream_name)
        }
    };
    validate::stream_name(&name)?;
    let arn = StreamArn::format(&state.region, &account, &name);
    Ok((account, name, arn))
}

/// A group or member name: 1..=128 of `[a-zA-Z0-9_.-]`.
fn name_member(value: Option<&str>, member: &str) -> Result<String, ApiError> {
    let value = validate::required(value, member)?;
    validate::string_length(value, member, 1, 128)?;
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(ApiError::validation(
            value,
            member,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(value.to_string())
}

/// A group named by a request, once Cedar allowed `op` on it.
struct Named {
    account: String,
    stream: String,
    stream_arn: String,
    group: String,
}

impl Named {
    fn arn(&self) -> String {
        format!("{}/group/{}", self.stream_arn, self.group)
    }
}

async fn authorize_group(
    state: &GroupsService,
    caller: &Caller,
    op: GroupOperation,
    stream: &StreamNamed,
    group: Option<&str>,
) -> Result<Named, ApiError> {
    let (account, name, stream_arn) = stream_of(state, caller, stream)?;
    let group = name_member(group, "groupName")?;
    let named = Named {
        account,
        stream: name,
        stream_arn,
        group,
    };
    let arn = named.arn();
    // INVARIANT: nothing is read or written before Cedar allowed the operation; the
    // platform policy forbids every cross-tenant access.
    state
        .authz
        .authorize(
            caller,
            &op.action(),
            Resource::Group {
                account: &named.account,
                arn: &arn,
                name: &named.group,
                stream_arn: &named.stream_arn,
                stream_name: &named.stream,
            },
        )
        .await?;
    Ok(named)
}

async fn authorize_stream(
    state: &GroupsService,
    caller: &Caller,
    op: GroupOperation,
    stream: &StreamNamed,
) -> Result<(String, String, String), ApiError> {
    let (account, name, arn) = stream_of(state, caller, stream)?;
    state
        .authz
        .authorize(
            caller,
            &op.action(),
            Resource::Stream {
                account: &account,
                arn: &arn,
                name: &name,
            },
        )
        .await?;
    Ok((account, name, arn))
}

fn starting_position(start: GroupStart) -> StartingPosition {
    StartingPosition {
        kind: start.as_str().to_string(),
        timestamp: match start {
            GroupStart::AtTimestamp(at) => Some(Timestamp { epoch_ms: at }),
            _ => None,
        },
    }
}

fn summary(group: &catalog::groups::Group, stream_arn: &str) -> GroupSummary {
    GroupSummary {
        group_name: group.name.clone(),
        group_arn: format!("{stream_arn}/group/{}", group.name),
        stream_arn: stream_arn.to_string(),
        starting_position: starting_position(group.start),
        lease_timeout_seconds: group.lease_timeout_ms / 1000,
        creation_timestamp: Timestamp {
            epoch_ms: group.created_at_ms,
        },
    }
}

async fn create(
    state: &GroupsService,
    caller: &Caller,
    input: CreateInput,
) -> Result<CreateOutput, ApiError> {
    let (account, stream, stream_arn) = authorize_stream(
        state,
        caller,
        GroupOperation::CreateConsumerGroup,
        &input.stream,
    )
    .await?;
    let group = name_member(input.group_name.as_deref(), "groupName")?;
    let start = match input.starting_position {
        None => GroupStart::TrimHorizon,
        Some(p) => match (p.kind.as_str(), p.timestamp) {
            ("TRIM_HORIZON", None) => GroupStart::TrimHorizon,
            ("LATEST", None) => GroupStart::Latest,
            ("AT_TIMESTAMP", Some(at)) => GroupStart::AtTimestamp(at.epoch_ms),
            ("AT_TIMESTAMP", None) => {
                return Err(ApiError::invalid_argument(
                    "A StartingPosition of type AT_TIMESTAMP needs a Timestamp.",
                ));
            }
            ("TRIM_HORIZON" | "LATEST", Some(_)) => {
                return Err(ApiError::invalid_argument(format!(
                    "A StartingPosition of type {} takes no Timestamp.",
                    p.kind
                )));
            }
            (other, _) => {
                return Err(ApiError::validation(
                    other,
                    "startingPosition.type",
                    "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                ));
            }
        },
    };
    let timeout_s = input
        .lease_timeout_seconds
        .unwrap_or(LEASE_TIMEOUT_DEFAULT_S);
    validate::int_range(
        timeout_s,
        "leaseTimeoutSeconds",
        LEASE_TIMEOUT_MIN_S,
        LEASE_TIMEOUT_MAX_S,
    )?;
    let made = state
        .catalog
        .create_group(
            &account,
            &stream,
            &group,
            start,
            timeout_s * 1000,
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    Ok(CreateOutput {
        consumer_group: summary(&made, &stream_arn),
    })
}

async fn delete(state: &GroupsService, caller: &Caller, input: GroupInput) -> Result<(), ApiError> {
    let named = authorize_group(
        state,
        caller,
        GroupOperation::DeleteConsumerGroup,
        &input.stream,
        input.group_name.as_deref(),
    )
    .await?;
    state
        .catalog
        .delete_group(&named.account, &named.stream, &named.group)
        .await
        .map_err(wire_error)
}

async fn list(
    state: &GroupsService,
    caller: &Caller,
    input: GroupInput,
) -> Result<ListOutput, ApiError> {
    let (account, stream, stream_arn) = authorize_stream(
        state,
        caller,
        GroupOperation::ListConsumerGroups,
        &input.stream,
    )
    .await?;
    let groups = state
        .catalog
        .list_groups(&account, &stream)
        .await
        .map_err(wire_error)?;
    Ok(ListOutput {
        consumer_groups: groups.iter().map(|g| summary(g, &stream_arn)).collect(),
    })
}

/// A checkpoint's sequence number: the record's own, as the member gave it, when its
/// arrival second is known; else the position after record `counter` of the shard
/// (equal to that record's number, and sorting between it and the next).
fn sequence(shard: &GroupShard, counter: i64) -> String {
    let counter = u64::try_from(counter).unwrap_or(0);
    match shard.lease.checkpoint_time_s {
        Some(s) => SequenceNumber::record(
            shard.ordinal,
            counter,
            shard.created_at_ms,
            s.saturating_mul(1000),
        ),
        None => SequenceNumber::position(shard.ordinal, counter, shard.created_at_ms),
    }
    .to_string()
}

/// Publishes a shard's lag and returns it as (records, milliseconds).
async fn lag(
    state: &GroupsService,
    named: &Named,
    stream_id: i64,
    shard: &GroupShard,
) -> Result<(u64, i64), ApiError> {
    shard_lag(
        &state.catalog,
        state.clock.now_ms(),
        [&named.account, &named.stream, &named.group],
        stream_id,
        shard,
    )
    .await
    .map_err(wire_error)
}

/// Groups one lag pass publishes at most.
pub const LAG_PASS_GROUPS_MAX: i64 = 1_000;
/// How often the control plane publishes every group's lag (DescribeConsumerGroup
/// publishes the group it describes at once), readers or not.
pub const LAG_PASS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Publishes the lag of every group's shards (the first `LAG_PASS_GROUPS_MAX`).
pub async fn publish_lag(catalog: &Catalog, now_ms: i64) -> Result<(), catalog::CatalogError> {
    for (account, stream, group) in catalog.all_groups(LAG_PASS_GROUPS_MAX).await? {
        let found = match catalog.describe_group(&account, &stream, &group).await {
            Ok(found) => found,
            // Deleted since it was listed.
            Err(catalog::CatalogError::Refused(_)) => continue,
            Err(e) => return Err(e),
        };
        for shard in &found.shards {
            shard_lag(
                catalog,
                now_ms,
                [&account, &stream, &group],
                found.group.stream_id,
                shard,
            )
            .await?;
        }
    }
    Ok(())
}

async fn shard_lag(
    catalog: &Catalog,
    now_ms: i64,
    [account, stream, group]: [&String; 3],
    stream_id: i64,
    shard: &GroupShard,
) -> Result<(u64, i64), catalog::CatalogError> {
    let records = shard.records_behind();
    let millis = match catalog.first_unread_arrival(stream_id, shard).await? {
        Some(at) => now_ms.saturating_sub(at).max(0),
        None => 0,
    };
    let labels = [
        ("account", account.clone()),
        ("stream", stream.clone()),
        ("group", group.clone()),
        ("shard", catalog::streams::shard_id(shard.ordinal)),
    ];
    metrics::gauge!("sluice_consumer_group_lag_records", &labels).set(records as f64);
    metrics::gauge!("sluice_consumer_group_lag_milliseconds", &labels).set(millis as f64);
    Ok((records, millis))
}

async fn describe(
    state: &GroupsService,
    caller: &Caller,
    input: GroupInput,
) -> Result<DescribeOutput, ApiError> {
    let named = authorize_group(
        state,
        caller,
        GroupOperation::DescribeConsumerGroup,
        &input.stream,
        input.group_name.as_deref(),
    )
    .await?;
    let found = state
        .catalog
        .describe_group(&named.account, &named.stream, &named.group)
        .await
        .map_err(wire_error)?;
    let mut shards = Vec::with_capacity(found.shards.len());
    for shard in &found.shards {
        let (records_behind, millis_behind) =
            lag(state, &named, found.group.stream_id, shard).await?;
        shards.push(ShardDescription {
            shard_id: catalog::streams::shard_id(shard.ordinal),
            parent_shard_ids: shard
                .parents
                .iter()
                .map(|p| catalog::streams::shard_id(*p))
                .collect(),
            open: shard.open,
            owner: shard.lease.owner.clone(),
            lease_counter: shard.lease.counter,
            releasing: shard.lease.releasing_since_ms.is_some(),
            checkpoint: shard.lease.checkpoint.map(|(counter, sub)| Checkpoint {
                sequence_number: sequence(shard, counter),
                sub_sequence_number: sub,
            }),
            finished: shard.lease.finished,
            records_behind,
            millis_behind,
        });
    }
    Ok(DescribeOutput {
        consumer_group: GroupDescription {
            summary: summary(&found.group, &named.stream_arn),
            members: found
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    member_name: m.name.clone(),
                    joined_timestamp: Timestamp {
                        epoch_ms: m.joined_at_ms,
                    },
                    expires_timestamp: Timestamp {
                        epoch_ms: m.expires_at_ms,
                    },
                })
                .collect(),
            shards,
        },
    })
}

/// What a member is told after a change: its leases and where to read each from.
fn assignment(state: &GroupState, member: &str) -> Assignment {
    let timeout = state.group.lease_timeout_ms;
    Assignment {
        member_id: member.to_string(),
        heartbeat_interval_millis: (timeout / 3).max(500),
        lease_timeout_millis: timeout,
        leases: state
            .leases_of(member)
            .map(|shard| MemberLease {
                shard_id: catalog::streams::shard_id(shard.ordinal),
                lease_counter: shard.lease.counter,
                release_requested: shard.lease.releasing_since_ms.is_some(),
                starting_position: match (shard.lease.checkpoint, state.group.start) {
                    (Some((counter, None)), _) => LeaseStart {
                        kind: "AFTER_SEQUENCE_NUMBER",
                        sequence_number: Some(sequence(shard, counter)),
                        sub_sequence_number: None,
                        timestamp: None,
                    },
                    (Some((counter, Some(sub))), _) => LeaseStart {
                        kind: "AT_SEQUENCE_NUMBER",
                        sequence_number: Some(sequence(shard, counter)),
                        sub_sequence_number: Some(sub),
                        timestamp: None,
                    },
                    (None, GroupStart::AtTimestamp(at)) => LeaseStart {
                        kind: "AT_TIMESTAMP",
                        sequence_number: None,
                        sub_sequence_number: None,
                        timestamp: Some(Timestamp { epoch_ms: at }),
                    },
                    // A LATEST group was given checkpoints at the tips when it was made:
                    // a shard without one was empty then, or is a child read after its
                    // parents.
                    (None, _) => LeaseStart {
                        kind: "TRIM_HORIZON",
                        sequence_number: None,
                        sub_sequence_number: None,
                        timestamp: None,
                    },
                },
            })
            .collect(),
    }
}

/// A member's assignment, or `LeaseLostException` when it was fenced. (Lag is not
/// computed here, on every heartbeat and checkpoint: describe and the control plane's
/// pass publish it.)
fn answered(member: &str, answer: MemberAnswer) -> Result<Assignment, ApiError> {
    match answer {
        MemberAnswer::Done(group) => Ok(assignment(&group, member)),
        MemberAnswer::Fenced(why) => Err(ApiError::new(ErrorCode::LeaseLost, why)),
    }
}

async fn join(
    state: &GroupsService,
    caller: &Caller,
    input: JoinInput,
) -> Result<Assignment, ApiError> {
    let named = authorize_group(
        state,
        caller,
        GroupOperation::JoinConsumerGroup,
        &input.stream,
        input.group_name.as_deref(),
    )
    .await?;
    let member_name = match input.member_name.as_deref() {
        None => "member".to_string(),
        Some(name) => name_member(Some(name), "memberName")?,
    };
    // A fresh id per join: a restarted worker is a new member, so nothing the old one
    // still sends can pass for the new one's.
    let member_id = format!("{member_name}-{}", uuid::Uuid::new_v4().simple());
    let group = state
        .catalog
        .join_group(
            &named.account,
            &named.stream,
            &named.group,
            &member_id,
            &member_name,
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    Ok(assignment(&group, &member_id))
}

/// The group a member's request names, once Cedar allowed `op` on it, and the member.
async fn member_of(
    state: &GroupsService,
    caller: &Caller,
    op: GroupOperation,
    stream: &StreamNamed,
    group: Option<&str>,
    member: Option<&str>,
) -> Result<(Named, String), ApiError> {
    let named = authorize_group(state, caller, op, stream, group).await?;
    let id = validate::required(member, "memberId")?;
    validate::string_length(id, "memberId", 1, 256)?;
    Ok((named, id.to_string()))
}

async fn heartbeat(
    state: &GroupsService,
    caller: &Caller,
    input: MemberInput,
) -> Result<Assignment, ApiError> {
    let (named, member) = member_of(
        state,
        caller,
        GroupOperation::HeartbeatConsumerGroup,
        &input.stream,
        input.group_name.as_deref(),
        input.member_id.as_deref(),
    )
    .await?;
    let answer = state
        .catalog
        .heartbeat_group(
            &named.account,
            &named.stream,
            &named.group,
            &member,
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    answered(&member, answer)
}

async fn checkpoint(
    state: &GroupsService,
    caller: &Caller,
    input: CheckpointInput,
) -> Result<Assignment, ApiError> {
    let (named, member) = member_of(
        state,
        caller,
        GroupOperation::CheckpointConsumerGroup,
        &input.stream,
        input.group_name.as_deref(),
        input.member_id.as_deref(),
    )
    .await?;
    let shard_id = validate::required(input.shard_id.as_deref(), "shardId")?;
    validate::shard_id(shard_id, "shardId")?;
    let ordinal = catalog::streams::parse_shard_id(shard_id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Shard {shard_id} under stream {} under account {} not found.",
                named.stream, named.account
            ),
        )
    })?;
    let lease_counter = validate::required(input.lease_counter, "leaseCounter")?;
    let at = match (input.shard_end, input.sequence_number.as_deref()) {
        (true, _) => {
            if input.sub_sequence_number.is_some() {
                return Err(ApiError::invalid_argument(
                    "A ShardEnd checkpoint takes no SubSequenceNumber.",
                ));
            }
            Some(CheckpointAt::ShardEnd)
        }
        (false, Some(text)) => {
            let number = SequenceNumber::parse(text, "sequenceNumber")?;
            if number.shard_ordinal() != ordinal {
                return Err(ApiError::invalid_argument(format!(
                    "Sequence number {text} is not one of shard {shard_id}."
                )));
            }
            let sub = match input.sub_sequence_number {
                None => None,
                Some(sub) => {
                    validate::int_range(sub, "subSequenceNumber", 0, i64::from(u32::MAX))?;
                    Some(sub.unsigned_abs())
                }
            };
            Some(CheckpointAt::Record {
                counter: number.counter(),
                sub,
                time_s: number.record_time_s(),
            })
        }
        (false, None) => {
            if input.sub_sequence_number.is_some() {
                return Err(ApiError::invalid_argument(
                    "A SubSequenceNumber needs the SequenceNumber of its aggregated record.",
                ));
            }
            if !input.release {
                return Err(ApiError::invalid_argument(
                    "A checkpoint names a SequenceNumber, ShardEnd, or Release (or both).",
                ));
            }
            None
        }
    };
    let answer = state
        .catalog
        .checkpoint_group(
            &named.account,
            &named.stream,
            &named.group,
            &member,
            ordinal,
            lease_counter,
            at,
            input.release,
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    answered(&member, answer)
}

async fn leave(state: &GroupsService, caller: &Caller, input: MemberInput) -> Result<(), ApiError> {
    let (named, member) = member_of(
        state,
        caller,
        GroupOperation::LeaveConsumerGroup,
        &input.stream,
        input.group_name.as_deref(),
        input.member_id.as_deref(),
    )
    .await?;
    match state
        .catalog
        .leave_group(
            &named.account,
            &named.stream,
            &named.group,
            &member,
            state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?
    {
        MemberAnswer::Done(_) => Ok(()),
        MemberAnswer::Fenced(why) => Err(ApiError::new(ErrorCode::LeaseLost, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_its_target() {
        for op in GroupOperation::ALL {
            let target = format!("{TARGET_PREFIX}{}", op.name());
            assert_eq!(GroupOperation::from_target(&target), Some(op));
        }
        assert_eq!(
            GroupOperation::from_target("SluiceConsumerGroups_20261205.Nope"),
            None
        );
        assert_eq!(
            GroupOperation::from_target("Kinesis_20131202.JoinConsumerGroup"),
            None
        );
    }

    #[test]
    fn names_are_checked_as_aws_checks_resource_names() {
        assert!(name_member(Some("workers-1.a_b"), "groupName").is_ok());
        for bad in ["", "a b", "x/y", &"n".repeat(129)] {
            assert_eq!(
                name_member(Some(bad), "groupName").unwrap_err().code,
                ErrorCode::Validation,
                "{bad:?}"
            );
        }
        assert_eq!(
            name_member(None, "groupName").unwrap_err().code,
            ErrorCode::Validation
        );
    }
}
