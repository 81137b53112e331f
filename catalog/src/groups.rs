//! Consumer groups (migration 0019): groups of a stream, their members, and per shard
//! the group's lease and checkpoint. Every change runs in one transaction that first
//! advances the group's generation (so changes to one group are serialized on both
//! dialects), loads the group, applies the change, lets `groupplan::plan` settle the
//! leases, and writes what changed. Each member request is metered.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::billing::Metric;
use crate::groupplan::{Lease, PlanMember, PlanShard, plan};
use crate::refusal::{Refusal, RefusalKind};
use crate::streams::{to_i64, to_u64};
use crate::{Catalog, CatalogError};

/// Groups a stream may have.
pub const GROUPS_PER_STREAM_MAX: i64 = 20;
/// Members a group may have at once.
pub const MEMBERS_PER_GROUP_MAX: usize = 1_000;

/// Where a group starts reading a shard it has no checkpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    TrimHorizon,
    /// Stored as checkpoints at each open shard's last record when the group is made
    /// (closed shards count as read), so a restart never skips what came after.
    Latest,
    AtTimestamp(i64),
}

impl GroupStart {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStart::TrimHorizon => "TRIM_HORIZON",
            GroupStart::Latest => "LATEST",
            GroupStart::AtTimestamp(_) => "AT_TIMESTAMP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub stream_id: i64,
    pub stream_name: String,
    pub name: String,
    pub start: GroupStart,
    pub lease_timeout_ms: i64,
    pub created_at_ms: i64,
    pub generation: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub id: String,
    pub name: String,
    pub joined_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One shard of the stream as the group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupShard {
    pub ordinal: u64,
    pub parents: Vec<u64>,
    pub open: bool,
    /// When the shard was made (its sequence numbers carry it).
    pub created_at_ms: i64,
    /// The counter the shard's next record will get.
    pub next_sequence: u64,
    pub lease: Lease,
}

impl GroupShard {
    /// Whether the group has a record of this shard left to read.
    pub fn records_behind(&self) -> u64 {
        if self.lease.finished {
            return 0;
        }
        let next_unread = match self.lease.checkpoint {
            Some((counter, None)) => counter.saturating_add(1),
            Some((counter, Some(_))) => counter,
            // A shard's first record has counter 1.
            None => 1,
        };
        self.next_sequence
            .saturating_sub(u64::try_from(next_unread).unwrap_or(0))
    }
}

/// A group with its members and shards, after a change settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub group: Group,
    pub members: Vec<GroupMember>,
    pub shards: Vec<GroupShard>,
}

impl GroupState {
    /// The shards `member` holds the lease of.
    pub fn leases_of<'a>(&'a self, member: &'a str) -> impl Iterator<Item = &'a GroupShard> {
        self.shards
            .iter()
            .filter(move |s| s.lease.owner.as_deref() == Some(member))
    }

    pub fn member(&self, id: &str) -> Option<&GroupMember> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// Where a checkpoint puts the group on a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointAt {
    /// Every record up to this counter (and, in an aggregate, up to this sub-sequence)
    /// is processed.
    Record {
        counter: u64,
        sub: Option<u64>,
        /// The record's arrival second, as its sequence number gives it.
        time_s: Option<i64>,
    },
    /// The closed shard was read to its end.
    ShardEnd,
}

/// What a member's request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAnswer {
    Done(Box<GroupState>),
    /// The member is not in the group (it left, or its heartbeat expired), or the
    /// lease it names was handed to someone else: the sentence says which.
    Fenced(String),
}

const GROUP_COLUMNS: &str = "g.group_id, g.stream_id, s.stream_name, g.group_name, g.start_type, \
     g.start_timestamp_ms, g.lease_timeout_ms, g.created_at_ms, g.generation";

fn group_from_row(row: &sqlx::any::AnyRow) -> Result<Group, CatalogError> {
    let start_type: String = row.try_get("start_type")?;
    let at: Option<i64> = row.try_get("start_timestamp_ms")?;
    let start = match (start_type.as_str(), at) {
        ("TRIM_HORIZON", _) => GroupStart::TrimHorizon,
        ("LATEST", _) => GroupStart::Latest,
        ("AT_TIMESTAMP", Some(at)) => GroupStart::AtTimestamp(at),
        _ => {
            return Err(CatalogError::Corrupt {
                what: format!("group start {start_type:?}"),
            });
        }
    };
    Ok(Group {
        id: row.try_get("group_id")?,
        stream_id: row.try_get("stream_id")?,
        stream_name: row.try_get("stream_name")?,
        name: row.try_get("group_name")?,
        start,
        lease_timeout_ms: row.try_get("lease_timeout_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        generation: row.try_get("generation")?,
    })
}

fn group_not_found(group: &str, stream: &str, account: &str) -> CatalogError {
    Refusal::new(
        RefusalKind::Missing,
        format!("Consumer group {group} under stream {stream} under account {account} not found."),
    )
    .into()
}

/// What a change loaded of its group.
struct Loaded {
    members: Vec<GroupMember>,
    shards: Vec<GroupShard>,
    leases: BTreeMap<u64, Lease>,
}

impl Catalog {
    /// Makes a group on the caller's stream, at most `GROUPS_PER_STREAM_MAX` a stream.
    pub async fn create_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
        start: GroupStart,
        lease_timeout_ms: i64,
        now_ms: i64,
    ) -> Result<Group, CatalogError> {
        let mut tx = self.begin_write().await?;
        // The write statement first, as register_consumer does: two creations cannot
        // both pass the count below.
        let stream_id: i64 = sqlx::query_scalar(
            "UPDATE streams SET stream_name = stream_name \
             WHERE account_id = $1 AND stream_name = $2 AND status <> 'DELETING' \
             RETURNING stream_id",
        )
        .bind(account_id)
        .bind(stream_name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Refusal::stream_not_found(stream_name, account_id))?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM consumer_groups WHERE stream_id = $1")
                .bind(stream_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= GROUPS_PER_STREAM_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "Consumer group limit of {GROUPS_PER_STREAM_MAX} for stream {stream_name} under account {account_id} has been reached."
                ),
            )
            .into());
        }
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT group_id FROM consumer_groups WHERE stream_id = $1 AND group_name = $2",
        )
        .bind(stream_id)
        .bind(group_name)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Refusal::new(
                RefusalKind::InUse,
                format!(
                    "Consumer group {group_name} under stream {stream_name} under account {account_id} already exists."
                ),
            )
            .into());
        }
        let group = Group {
            id: crate::consumers::random_id()?,
            stream_id,
            stream_name: stream_name.to_string(),
            name: group_name.to_string(),
            start,
            lease_timeout_ms,
            created_at_ms: now_ms,
            generation: 0,
        };
        sqlx::query(
            "INSERT INTO consumer_groups (group_id, stream_id, group_name, start_type, \
             start_timestamp_ms, lease_timeout_ms, created_at_ms, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(group.id)
        .bind(stream_id)
        .bind(group_name)
        .bind(start.as_str())
        .bind(match start {
            GroupStart::AtTimestamp(at) => Some(at),
            _ => None,
        })
        .bind(lease_timeout_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if start == GroupStart::Latest {
            // LATEST is where each shard stands now: closed shards are behind it, open
            // ones are read after their last record (or from their start if empty).
            sqlx::query(
                "INSERT INTO consumer_group_shards (group_id, shard_ordinal, owner, lease_counter, \
                 releasing_since_ms, checkpoint_counter, checkpoint_sub, finished, updated_at_ms) \
                 SELECT $1, shard_ordinal, NULL, 0, NULL, \
                 CASE WHEN next_sequence > 1 THEN next_sequence - 1 ELSE NULL END, NULL, \
                 CASE WHEN closed_at_ms IS NULL THEN 0 ELSE 1 END, $2 \
                 FROM shards WHERE stream_id = $3",
            )
            .bind(group.id)
            .bind(now_ms)
            .bind(stream_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(group)
    }

    /// Deletes a group with its members, leases and checkpoints.
    pub async fn delete_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let group = Self::lock_group(&mut tx, account_id, stream_name, group_name).await?;
        for table in ["consumer_group_shards", "consumer_group_members"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE group_id = $1"
            )))
            .bind(group.id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM consumer_groups WHERE group_id = $1")
            .bind(group.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The groups of the caller's stream, by name.
    pub async fn list_groups(
        &self,
        account_id: &str,
        stream_name: &str,
    ) -> Result<Vec<Group>, CatalogError> {
        let stream_id: i64 = sqlx::query_scalar(
            "SELECT stream_id FROM streams WHERE account_id = $1 AND stream_name = $2 \
             AND status <> 'DELETING'",
        )
        .bind(account_id)
        .bind(stream_name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| Refusal::stream_not_found(stream_name, account_id))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM consumer_groups g JOIN streams s ON s.stream_id = g.stream_id \
             WHERE g.stream_id = $1 ORDER BY g.group_name"
        )))
        .bind(stream_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Every group, as (account, stream, group), at most `limit`, oldest first: what
    /// the lag pass publishes.
    pub async fn all_groups(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT s.account_id, s.stream_name, g.group_name FROM consumer_groups g \
             JOIN streams s ON s.stream_id = g.stream_id ORDER BY g.created_at_ms, g.group_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("account_id")?,
                    r.try_get("stream_name")?,
                    r.try_get("group_name")?,
                ))
            })
            .collect()
    }

    /// The group as it stands (read only: members past their expiry are shown as
    /// such until the next change removes them).
    pub async fn describe_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
    ) -> Result<GroupState, CatalogError> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM consumer_groups g JOIN streams s ON s.stream_id = g.stream_id \
             WHERE s.account_id = $1 AND s.stream_name = $2 AND g.group_name = $3"
        )))
        .bind(account_id)
        .bind(stream_name)
        .bind(group_name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| group_not_found(group_name, stream_name, account_id))?;
        let group = group_from_row(&row)?;
        let loaded = Self::load_group(&mut conn, &group).await?;
        Ok(GroupState {
            group,
            members: loaded.members,
            shards: loaded.shards,
        })
    }

    /// When the record after the group's checkpoint on a shard arrived; `None` when
    /// the group has read everything written (or kept) there.
    pub async fn first_unread_arrival(
        &self,
        stream_id: i64,
        shard: &GroupShard,
    ) -> Result<Option<i64>, CatalogError> {
        if shard.records_behind() == 0 {
            return Ok(None);
        }
        let from = shard.next_sequence - shard.records_behind();
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT first_arrival_ms FROM chunks WHERE stream_id = $1 AND shard_ordinal = $2 \
             AND last_sequence >= $3 ORDER BY last_sequence LIMIT 1",
        )
        .bind(stream_id)
        .bind(to_i64(shard.ordinal))
        .bind(to_i64(from))
        .fetch_optional(self.pool())
        .await?;
        Ok(at)
    }

    /// Adds a member (the caller picked its unique id) and settles the leases.
    pub async fn join_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
        member_id: &str,
        member_name: &str,
        now_ms: i64,
    ) -> Result<GroupState, CatalogError> {
        let mut tx = self.begin_write().await?;
        let group = Self::lock_group(&mut tx, account_id, stream_name, group_name).await?;
        let mut loaded = Self::load_group(&mut tx, &group).await?;
        let live = loaded
            .members
            .iter()
            .filter(|m| m.expires_at_ms > now_ms)
            .count();
        if live >= MEMBERS_PER_GROUP_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "Consumer group {group_name} has {MEMBERS_PER_GROUP_MAX} members, the most a group may have."
                ),
            )
            .into());
        }
        let member = GroupMember {
            id: member_id.to_string(),
            name: member_name.to_string(),
            joined_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(group.lease_timeout_ms),
        };
        sqlx::query(
            "INSERT INTO consumer_group_members (group_id, member_id, member_name, joined_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(group.id)
        .bind(member_id)
        .bind(member_name)
        .bind(now_ms)
        .bind(member.expires_at_ms)
        .execute(&mut *tx)
        .await?;
        loaded.members.push(member);
        let state = Self::settle(&mut tx, group, loaded, now_ms).await?;
        Self::meter_member_request(&mut tx, account_id, stream_name, now_ms).await?;
        tx.commit().await?;
        Ok(state)
    }

    /// Renews a member's membership and settles the leases; `Fenced` when the member
    /// is no longer in the group (it must join again).
    pub async fn heartbeat_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
        member_id: &str,
        now_ms: i64,
    ) -> Result<MemberAnswer, CatalogError> {
        let mut tx = self.begin_write().await?;
        let group = Self::lock_group(&mut tx, account_id, stream_name, group_name).await?;
        let mut loaded = Self::load_group(&mut tx, &group).await?;
        let expires = now_ms.saturating_add(group.lease_timeout_ms);
        match loaded.members.iter_mut().find(|m| m.id == member_id) {
            Some(member) if member.expires_at_ms > now_ms => member.expires_at_ms = expires,
            _ => {
                let answer = Self::member_gone(member_id, group_name);
                // The change of an expired member still settles (and is kept).
                Self::settle(&mut tx, group, loaded, now_ms).await?;
                tx.commit().await?;
                return Ok(answer);
            }
        }
        sqlx::query(
            "UPDATE consumer_group_members SET expires_at_ms = $1 WHERE group_id = $2 AND member_id = $3",
        )
        .bind(expires)
        .bind(group.id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
        let state = Self::settle(&mut tx, group, loaded, now_ms).await?;
        Self::meter_member_request(&mut tx, account_id, stream_name, now_ms).await?;
        tx.commit().await?;
        Ok(MemberAnswer::Done(Box::new(state)))
    }

    /// Stores a member's checkpoint on a shard whose lease it holds with `counter`,
    /// and gives the lease up when `release` (or at the shard's end). `Fenced` when
    /// the member is out of the group or the lease was handed on; a checkpoint behind
    /// the stored one, or past the shard's last record, is refused.
    #[allow(clippy::too_many_arguments)]
    pub async fn checkpoint_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
        member_id: &str,
        ordinal: u64,
        lease_counter: i64,
        at: Option<CheckpointAt>,
        release: bool,
        now_ms: i64,
    ) -> Result<MemberAnswer, CatalogError> {
        let mut tx = self.begin_write().await?;
        let group = Self::lock_group(&mut tx, account_id, stream_name, group_name).await?;
        let loaded = Self::load_group(&mut tx, &group).await?;
        // Settle first: a member whose heartbeat expired, or whose lease was asked
        // back and is overdue, has lost it before its checkpoint is looked at.
        let settled = Self::settle(&mut tx, group, loaded, now_ms).await?;
        let fenced = if settled.member(member_id).is_none() {
            Some(Self::member_gone(member_id, group_name))
        } else {
            match settled.shards.iter().find(|s| s.ordinal == ordinal) {
                None => {
                    return Err(Refusal::new(
                        RefusalKind::Missing,
                        format!(
                            "Shard {} under stream {stream_name} under account {account_id} not found.",
                            crate::streams::shard_id(ordinal)
                        ),
                    )
                    .into());
                }
                Some(shard)
                    if shard.lease.owner.as_deref() != Some(member_id)
                        || shard.lease.counter != lease_counter =>
                {
                    Some(MemberAnswer::Fenced(format!(
                        "Member {member_id} does not hold lease {lease_counter} of shard {} in consumer group {group_name}: it was handed on (lease {}).",
                        crate::streams::shard_id(ordinal),
                        shard.lease.counter
                    )))
                }
                Some(_) => None,
            }
        };
        if let Some(fenced) = fenced {
            tx.commit().await?;
            return Ok(fenced);
        }
        let GroupState {
            group,
            members,
            shards,
        } = settled;
        let before: BTreeMap<u64, Lease> = shards
            .iter()
            .map(|s| (s.ordinal, s.lease.clone()))
            .collect();
        let mut after = before.clone();
        let shard = shards
            .iter()
            .find(|s| s.ordinal == ordinal)
            .expect("found above");
        let lease = after.get_mut(&ordinal).expect("every shard has a lease");
        match at {
            Some(CheckpointAt::Record {
                counter,
                sub,
                time_s,
            }) => {
                if counter >= shard.next_sequence {
                    return Err(Refusal::new(
                        RefusalKind::BadArgument,
                        format!(
                            "Shard {} has no record with sequence counter {counter} yet: a checkpoint names a record that was read.",
                            crate::streams::shard_id(ordinal)
                        ),
                    )
                    .into());
                }
                let new = (to_i64(counter), sub.map(to_i64));
                if let Some(old) = lease.checkpoint
                    && checkpoint_order(new) < checkpoint_order(old)
                {
                    return Err(Refusal::new(
                        RefusalKind::BadArgument,
                        format!(
                            "The checkpoint of shard {} would move backwards; checkpoints only move forwards.",
                            crate::streams::shard_id(ordinal)
                        ),
                    )
                    .into());
                }
                lease.checkpoint = Some(new);
                lease.checkpoint_time_s = time_s;
            }
            Some(CheckpointAt::ShardEnd) => {
                if shard.open {
                    return Err(Refusal::new(
                        RefusalKind::BadArgument,
                        format!(
                            "Shard {} is open: only a closed shard can be read to its end.",
                            crate::streams::shard_id(ordinal)
                        ),
                    )
                    .into());
                }
                lease.finished = true;
                if shard.next_sequence > 1 {
                    lease.checkpoint = Some((to_i64(shard.next_sequence - 1), None));
                    lease.checkpoint_time_s = None;
                }
                lease.owner = None;
                lease.releasing_since_ms = None;
            }
            None => {}
        }
        if release {
            lease.owner = None;
            lease.releasing_since_ms = None;
        }
        Self::store_leases(&mut tx, group.id, &before, &after, now_ms).await?;
        let loaded = Loaded {
            members,
            shards,
            leases: after,
        };
        let state = Self::settle(&mut tx, group, loaded, now_ms).await?;
        Self::meter_member_request(&mut tx, account_id, stream_name, now_ms).await?;
        tx.commit().await?;
        Ok(MemberAnswer::Done(Box::new(state)))
    }

    /// Takes a member out of the group; its leases go to the others at once.
    pub async fn leave_group(
        &self,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
        member_id: &str,
        now_ms: i64,
    ) -> Result<MemberAnswer, CatalogError> {
        let mut tx = self.begin_write().await?;
        let group = Self::lock_group(&mut tx, account_id, stream_name, group_name).await?;
        let mut loaded = Self::load_group(&mut tx, &group).await?;
        let Some(member) = loaded.members.iter_mut().find(|m| m.id == member_id) else {
            tx.commit().await?;
            return Ok(Self::member_gone(member_id, group_name));
        };
        // Leaving is expiring now: the planner frees its leases and drops it.
        member.expires_at_ms = now_ms;
        let state = Self::settle(&mut tx, group, loaded, now_ms).await?;
        Self::meter_member_request(&mut tx, account_id, stream_name, now_ms).await?;
        tx.commit().await?;
        Ok(MemberAnswer::Done(Box::new(state)))
    }

    /// Bills one member request, in the transaction that did it.
    async fn meter_member_request(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        Self::meter_count(
            tx,
            account_id,
            stream_name,
            Metric::ConsumerGroupRequests,
            1,
            now_ms,
        )
        .await
    }

    fn member_gone(member_id: &str, group_name: &str) -> MemberAnswer {
        MemberAnswer::Fenced(format!(
            "Member {member_id} is not in consumer group {group_name}: it left or its heartbeat expired, and its leases were handed on. Join the group again."
        ))
    }

    /// Advances the group's generation (the write that serializes changes to it) and
    /// returns it.
    async fn lock_group(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        group_name: &str,
    ) -> Result<Group, CatalogError> {
        let updated: Option<i64> = sqlx::query_scalar(
            "UPDATE consumer_groups SET generation = generation + 1 \
             WHERE group_name = $3 AND stream_id = (SELECT stream_id FROM streams \
             WHERE account_id = $1 AND stream_name = $2 AND status <> 'DELETING') \
             RETURNING group_id",
        )
        .bind(account_id)
        .bind(stream_name)
        .bind(group_name)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(group_id) = updated else {
            let stream: Option<i64> = sqlx::query_scalar(
                "SELECT stream_id FROM streams WHERE account_id = $1 AND stream_name = $2 \
                 AND status <> 'DELETING'",
            )
            .bind(account_id)
            .bind(stream_name)
            .fetch_optional(&mut **tx)
            .await?;
            return Err(match stream {
                None => Refusal::stream_not_found(stream_name, account_id).into(),
                Some(_) => group_not_found(group_name, stream_name, account_id),
            });
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM consumer_groups g JOIN streams s ON s.stream_id = g.stream_id \
             WHERE g.group_id = $1"
        )))
        .bind(group_id)
        .fetch_one(&mut **tx)
        .await?;
        group_from_row(&row)
    }

    async fn load_group(
        conn: &mut sqlx::AnyConnection,
        group: &Group,
    ) -> Result<Loaded, CatalogError> {
        let members = sqlx::query(
            "SELECT member_id, member_name, joined_at_ms, expires_at_ms FROM consumer_group_members \
             WHERE group_id = $1 ORDER BY joined_at_ms, member_id",
        )
        .bind(group.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(GroupMember {
                id: r.try_get("member_id")?,
                name: r.try_get("member_name")?,
                joined_at_ms: r.try_get("joined_at_ms")?,
                expires_at_ms: r.try_get("expires_at_ms")?,
            })
        })
        .collect::<Result<Vec<_>, CatalogError>>()?;
        let mut leases = BTreeMap::new();
        for r in sqlx::query(
            "SELECT shard_ordinal, owner, lease_counter, releasing_since_ms, checkpoint_counter, \
             checkpoint_sub, checkpoint_time_s, finished FROM consumer_group_shards WHERE group_id = $1",
        )
        .bind(group.id)
        .fetch_all(&mut *conn)
        .await?
        {
            let counter: Option<i64> = r.try_get("checkpoint_counter")?;
            let sub: Option<i64> = r.try_get("checkpoint_sub")?;
            leases.insert(
                to_u64(r.try_get("shard_ordinal")?, "shard_ordinal")?,
                Lease {
                    owner: r.try_get("owner")?,
                    counter: r.try_get("lease_counter")?,
                    releasing_since_ms: r.try_get("releasing_since_ms")?,
                    checkpoint: counter.map(|c| (c, sub)),
                    checkpoint_time_s: r.try_get("checkpoint_time_s")?,
                    finished: r.try_get::<i64, _>("finished")? != 0,
                },
            );
        }
        let mut shards = Vec::new();
        for r in sqlx::query(
            "SELECT shard_ordinal, parent_ordinal, adjacent_parent_ordinal, created_at_ms, closed_at_ms, \
             next_sequence FROM shards WHERE stream_id = $1 ORDER BY shard_ordinal",
        )
        .bind(group.stream_id)
        .fetch_all(&mut *conn)
        .await?
        {
            let ordinal = to_u64(r.try_get("shard_ordinal")?, "shard_ordinal")?;
            let parents = [
                r.try_get::<Option<i64>, _>("parent_ordinal")?,
                r.try_get::<Option<i64>, _>("adjacent_parent_ordinal")?,
            ]
            .into_iter()
            .flatten()
            .map(|p| to_u64(p, "parent_ordinal"))
            .collect::<Result<Vec<_>, _>>()?;
            shards.push(GroupShard {
                ordinal,
                parents,
                open: r.try_get::<Option<i64>, _>("closed_at_ms")?.is_none(),
                created_at_ms: r.try_get("created_at_ms")?,
                next_sequence: to_u64(r.try_get("next_sequence")?, "next_sequence")?,
                lease: leases.get(&ordinal).cloned().unwrap_or_default(),
            });
        }
        Ok(Loaded {
            members,
            shards,
            leases,
        })
    }

    /// Plans the leases, writes what changed, drops expired members, and returns the
    /// group as it now stands.
    async fn settle(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        group: Group,
        loaded: Loaded,
        now_ms: i64,
    ) -> Result<GroupState, CatalogError> {
        let plan_members: Vec<PlanMember> = loaded
            .members
            .iter()
            .map(|m| PlanMember {
                id: m.id.clone(),
                expires_at_ms: m.expires_at_ms,
            })
            .collect();
        let plan_shards: Vec<PlanShard> = loaded
            .shards
            .iter()
            .map(|s| PlanShard {
                ordinal: s.ordinal,
                parents: s.parents.clone(),
            })
            .collect();
        let planned = plan(
            now_ms,
            group.lease_timeout_ms,
            &plan_members,
            &plan_shards,
            &loaded.leases,
        );
        for gone in &planned.expired {
            sqlx::query(
                "DELETE FROM consumer_group_members WHERE group_id = $1 AND member_id = $2",
            )
            .bind(group.id)
            .bind(gone)
            .execute(&mut **tx)
            .await?;
        }
        Self::store_leases(tx, group.id, &loaded.leases, &planned.leases, now_ms).await?;
        let members = loaded
            .members
            .into_iter()
            .filter(|m| !planned.expired.contains(&m.id))
            .collect();
        let shards = loaded
            .shards
            .into_iter()
            .map(|mut s| {
                s.lease = planned.leases[&s.ordinal].clone();
                s
            })
            .collect();
        Ok(GroupState {
            group,
            members,
            shards,
        })
    }

    /// Writes the leases that differ between `before` and `after`.
    async fn store_leases(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        group_id: i64,
        before: &BTreeMap<u64, Lease>,
        after: &BTreeMap<u64, Lease>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        for (ordinal, lease) in after {
            if before.get(ordinal) == Some(lease) {
                continue;
            }
            sqlx::query(
                "INSERT INTO consumer_group_shards (group_id, shard_ordinal, owner, lease_counter, \
                 releasing_since_ms, checkpoint_counter, checkpoint_sub, checkpoint_time_s, finished, \
                 updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (group_id, shard_ordinal) DO UPDATE SET owner = excluded.owner, \
                 lease_counter = excluded.lease_counter, releasing_since_ms = excluded.releasing_since_ms, \
                 checkpoint_counter = excluded.checkpoint_counter, checkpoint_sub = excluded.checkpoint_sub, \
                 checkpoint_time_s = excluded.checkpoint_time_s, finished = excluded.finished, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(group_id)
            .bind(to_i64(*ordinal))
            .bind(lease.owner.clone())
            .bind(lease.counter)
            .bind(lease.releasing_since_ms)
            .bind(lease.checkpoint.map(|c| c.0))
            .bind(lease.checkpoint.and_then(|c| c.1))
            .bind(lease.checkpoint_time_s)
            .bind(i64::from(lease.finished))
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        for ordinal in before.keys().filter(|o| !after.contains_key(o)) {
            sqlx::query(
                "DELETE FROM consumer_group_shards WHERE group_id = $1 AND shard_ordinal = $2",
            )
            .bind(group_id)
            .bind(to_i64(*ordinal))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// Checkpoints in the order of the records they name: a whole record (no
/// sub-sequence) comes after every user record inside it.
fn checkpoint_order(at: (i64, Option<i64>)) -> (i64, i64) {
    (at.0, at.1.unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::testing::{catalogs, provisioned_stream};

    const A: &str = "000000000000";

    async fn stream_with_records(catalog: &Catalog, shards: u32, records: i64) {
        catalog
            .create_stream(&provisioned_stream("s", shards))
            .await
            .unwrap();
        sqlx::query("UPDATE shards SET next_sequence = $1")
            .bind(records)
            .execute(catalog.pool())
            .await
            .unwrap();
    }

    fn leases(state: &GroupState, member: &str) -> BTreeMap<u64, i64> {
        state
            .leases_of(member)
            .map(|s| (s.ordinal, s.lease.counter))
            .collect()
    }

    fn done(answer: MemberAnswer) -> GroupState {
        match answer {
            MemberAnswer::Done(state) => *state,
            MemberAnswer::Fenced(why) => panic!("fenced: {why}"),
        }
    }

    #[tokio::test]
    async fn members_share_shards_and_a_paused_member_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalogs(dir.path()).await {
            stream_with_records(&catalog, 4, 10).await;
            catalog
                .create_group(A, "s", "g", GroupStart::TrimHorizon, 10_000, 0)
                .await
                .unwrap();
            let one = catalog
                .join_group(A, "s", "g", "m1", "one", 0)
                .await
                .unwrap();
            assert_eq!(leases(&one, "m1").len(), 4);
            let two = catalog
                .join_group(A, "s", "g", "m2", "two", 1)
                .await
                .unwrap();
            assert!(leases(&two, "m2").is_empty(), "m1 gives two up first");
            let releasing: Vec<u64> = two
                .leases_of("m1")
                .filter(|s| s.lease.releasing_since_ms.is_some())
                .map(|s| s.ordinal)
                .collect();
            assert_eq!(releasing.len(), 2);
            // m1 checkpoints each and lets go, as a graceful rebalance does.
            for ordinal in &releasing {
                done(
                    catalog
                        .checkpoint_group(
                            A,
                            "s",
                            "g",
                            "m1",
                            *ordinal,
                            1,
                            Some(CheckpointAt::Record {
                                counter: 4,
                                sub: None,
                                time_s: None,
                            }),
                            true,
                            2,
                        )
                        .await
                        .unwrap(),
                );
            }
            let two = done(catalog.heartbeat_group(A, "s", "g", "m2", 3).await.unwrap());
            assert_eq!(leases(&two, "m2").len(), 2);
            assert!(
                two.leases_of("m2")
                    .all(|s| s.lease.checkpoint == Some((4, None)))
            );
            // m1 pauses past its lease; m2's heartbeat takes its shards over.
            done(
                catalog
                    .heartbeat_group(A, "s", "g", "m2", 9_000)
                    .await
                    .unwrap(),
            );
            let two = done(
                catalog
                    .heartbeat_group(A, "s", "g", "m2", 12_000)
                    .await
                    .unwrap(),
            );
            assert_eq!(leases(&two, "m2").len(), 4);
            assert!(two.member("m1").is_none());
            let kept = *leases(&one, "m1")
                .keys()
                .find(|o| !releasing.contains(o))
                .unwrap();
            let late = catalog
                .checkpoint_group(
                    A,
                    "s",
                    "g",
                    "m1",
                    kept,
                    1,
                    Some(CheckpointAt::Record {
                        counter: 9,
                        sub: None,
                        time_s: None,
                    }),
                    false,
                    12_001,
                )
                .await
                .unwrap();
            assert!(matches!(late, MemberAnswer::Fenced(_)), "{late:?}");
            assert!(matches!(
                catalog
                    .heartbeat_group(A, "s", "g", "m1", 12_002)
                    .await
                    .unwrap(),
                MemberAnswer::Fenced(_)
            ));
            // Backwards and beyond the tip are refused; forwards is kept.
            let counter = leases(&two, "m2")[&releasing[0]];
            let back = catalog
                .checkpoint_group(
                    A,
                    "s",
                    "g",
                    "m2",
                    releasing[0],
                    counter,
                    Some(CheckpointAt::Record {
                        counter: 3,
                        sub: None,
                        time_s: None,
                    }),
                    false,
                    12_003,
                )
                .await;
            assert!(back.is_err());
            let beyond = catalog
                .checkpoint_group(
                    A,
                    "s",
                    "g",
                    "m2",
                    releasing[0],
                    counter,
                    Some(CheckpointAt::Record {
                        counter: 10,
                        sub: None,
                        time_s: None,
                    }),
                    false,
                    12_003,
                )
                .await;
            assert!(beyond.is_err());
            let described = catalog.describe_group(A, "s", "g").await.unwrap();
            let shard = described
                .shards
                .iter()
                .find(|s| s.ordinal == releasing[0])
                .unwrap();
            assert_eq!(shard.lease.checkpoint, Some((4, None)));
            assert_eq!(shard.records_behind(), 5);
            catalog.delete_group(A, "s", "g").await.unwrap();
            assert!(catalog.list_groups(A, "s").await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn latest_starts_at_the_tips_and_children_wait_for_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalogs(dir.path()).await {
            stream_with_records(&catalog, 1, 7).await;
            catalog
                .create_group(A, "s", "late", GroupStart::Latest, 10_000, 0)
                .await
                .unwrap();
            let state = catalog
                .join_group(A, "s", "late", "m", "m", 0)
                .await
                .unwrap();
            assert_eq!(state.shards[0].lease.checkpoint, Some((6, None)));
            assert_eq!(state.shards[0].records_behind(), 0);
            // A child of shard 0: waits until shard 0 is read to its end.
            sqlx::query("UPDATE shards SET closed_at_ms = 1 WHERE shard_ordinal = 0")
                .execute(catalog.pool())
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO shards (stream_id, shard_ordinal, hash_key_start, hash_key_end, \
                 parent_ordinal, adjacent_parent_ordinal, created_at_ms, closed_at_ms, next_sequence) \
                 SELECT stream_id, 1, hash_key_start, hash_key_end, 0, NULL, 1, NULL, 0 FROM shards \
                 WHERE shard_ordinal = 0",
            )
            .execute(catalog.pool())
            .await
            .unwrap();
            let state = done(
                catalog
                    .heartbeat_group(A, "s", "late", "m", 1)
                    .await
                    .unwrap(),
            );
            assert_eq!(
                leases(&state, "m").keys().copied().collect::<Vec<_>>(),
                vec![0]
            );
            let state = done(
                catalog
                    .checkpoint_group(
                        A,
                        "s",
                        "late",
                        "m",
                        0,
                        1,
                        Some(CheckpointAt::ShardEnd),
                        false,
                        2,
                    )
                    .await
                    .unwrap(),
            );
            assert_eq!(
                leases(&state, "m").keys().copied().collect::<Vec<_>>(),
                vec![1]
            );
            assert!(state.shards[0].lease.finished);
        }
    }

    /// What a member was last told: its id, when it was renewed, its leases.
    type Belief = (String, i64, BTreeMap<u64, i64>);

    #[tokio::test]
    async fn a_stream_has_at_most_its_share_of_groups() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalogs(dir.path()).await {
            stream_with_records(&catalog, 1, 0).await;
            for i in 0..GROUPS_PER_STREAM_MAX {
                catalog
                    .create_group(A, "s", &format!("g{i}"), GroupStart::TrimHorizon, 10_000, 0)
                    .await
                    .unwrap();
            }
            let over = catalog
                .create_group(A, "s", "one-more", GroupStart::TrimHorizon, 10_000, 0)
                .await
                .unwrap_err();
            assert!(
                matches!(&over, CatalogError::Refused(r) if r.kind == RefusalKind::OverLimit),
                "{over:?}"
            );
            let missing = catalog
                .create_group(A, "nope", "g", GroupStart::TrimHorizon, 10_000, 0)
                .await
                .unwrap_err();
            assert!(matches!(&missing, CatalogError::Refused(r) if r.kind == RefusalKind::Missing));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join(usize),
        Heartbeat(usize),
        Leave(usize),
        Pause(i64),
        /// A member checkpoints the n-th shard it believes it holds, `step` records on.
        Checkpoint(usize, usize, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0..3usize).prop_map(Op::Join),
            4 => (0..3usize).prop_map(Op::Heartbeat),
            1 => (0..3usize).prop_map(Op::Leave),
            2 => (1..8_000i64).prop_map(Op::Pause),
            8 => (0..3usize, 0..4usize, 0..4u64).prop_map(|(m, n, s)| Op::Checkpoint(m, n, s)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Members join, beat, pause past their lease and checkpoint what they believe
        /// they hold: a checkpoint is kept only from a member whose lease no one else
        /// was handed since and whose membership had not expired, and a shard's stored
        /// checkpoint never moves backwards.
        #[test]
        fn fencing_holds_and_checkpoints_never_move_backwards(ops in proptest::collection::vec(op(), 1..60)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let catalog = Catalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
                    .await
                    .unwrap();
                stream_with_records(&catalog, 3, 1_000).await;
                const TIMEOUT: i64 = 5_000;
                catalog.create_group(A, "s", "g", GroupStart::TrimHorizon, TIMEOUT, 0).await.unwrap();
                let mut now = 0i64;
                // What each member was last told: its id, renewal time and leases.
                let mut believed: Vec<Option<Belief>> = vec![None, None, None];
                let mut highest_handed: BTreeMap<u64, i64> = BTreeMap::new();
                let mut stored: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
                let mut next_id = 0;
                for op in ops {
                    now += 1;
                    let note = |state: &GroupState, highest: &mut BTreeMap<u64, i64>| {
                        for shard in &state.shards {
                            if shard.lease.owner.is_some() {
                                let h = highest.entry(shard.ordinal).or_insert(0);
                                *h = (*h).max(shard.lease.counter);
                            }
                        }
                    };
                    match op {
                        Op::Join(m) => {
                            next_id += 1;
                            let id = format!("m{m}-{next_id}");
                            let state = catalog.join_group(A, "s", "g", &id, "w", now).await.unwrap();
                            note(&state, &mut highest_handed);
                            believed[m] = Some((id.clone(), now, leases(&state, &id)));
                        }
                        Op::Heartbeat(m) => {
                            if let Some((id, _, _)) = believed[m].clone() {
                                match catalog.heartbeat_group(A, "s", "g", &id, now).await.unwrap() {
                                    MemberAnswer::Done(state) => {
                                        note(&state, &mut highest_handed);
                                        believed[m] = Some((id.clone(), now, leases(&state, &id)));
                                    }
                                    MemberAnswer::Fenced(_) => believed[m] = None,
                                }
                            }
                        }
                        Op::Leave(m) => {
                            if let Some((id, _, _)) = believed[m].take() {
                                let _ = catalog.leave_group(A, "s", "g", &id, now).await.unwrap();
                            }
                        }
                        Op::Pause(ms) => now += ms,
                        Op::Checkpoint(m, n, step) => {
                            let Some((id, renewed, held)) = believed[m].clone() else { continue };
                            let Some((&ordinal, &counter)) = held.iter().nth(n % held.len().max(1)) else { continue };
                            let at = stored.get(&ordinal).map(|s| s.0 + 1).unwrap_or(0) + step as i64 - 2;
                            let at = at.clamp(0, 999) as u64;
                            let answer = catalog.checkpoint_group(
                                A, "s", "g", &id, ordinal, counter,
                                Some(CheckpointAt::Record { counter: at, sub: None, time_s: None }), false, now,
                            ).await;
                            if let Ok(MemberAnswer::Done(state)) = answer {
                                assert!(now < renewed + TIMEOUT, "a checkpoint from an expired member");
                                assert_eq!(highest_handed.get(&ordinal).copied(), Some(counter),
                                    "a checkpoint from a member whose lease was handed on");
                                note(&state, &mut highest_handed);
                            }
                        }
                    }
                    let described = catalog.describe_group(A, "s", "g").await.unwrap();
                    note(&described, &mut highest_handed);
                    for shard in &described.shards {
                        if let Some(at) = shard.lease.checkpoint {
                            let order = checkpoint_order(at);
                            if let Some(before) = stored.get(&shard.ordinal) {
                                assert!(order >= *before, "shard {} moved backwards", shard.ordinal);
                            }
                            stored.insert(shard.ordinal, order);
                        }
                    }
                }
            });
        }
    }
}
