//! The I/O-free planner of a consumer group's leases, applied by `groups.rs` inside the
//! group's transaction: it drops members whose heartbeat expired and frees their
//! leases, takes back a lease whose owner was asked to give it up and did not in time,
//! decides which shards may be read now (not finished, every parent that still exists
//! finished), and spreads those over the live members as evenly as they go, moving as
//! few leases as it can. A lease moves from a live member only by a request to give
//! it up (so the member checkpoints first); every hand-over to a member advances the
//! lease's counter, which fences the previous holder's checkpoints.

use std::collections::{BTreeMap, BTreeSet};

/// A member as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMember {
    pub id: String,
    pub expires_at_ms: i64,
}

/// A shard of the stream and the shards it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanShard {
    pub ordinal: u64,
    pub parents: Vec<u64>,
}

/// Where the group stands on one shard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    pub owner: Option<String>,
    /// Advances with every hand-over; a checkpoint names the counter it holds.
    pub counter: i64,
    /// When a rebalance asked the owner to give the lease up.
    pub releasing_since_ms: Option<i64>,
    /// The last record processed: (shard counter, sub-sequence within an aggregate).
    pub checkpoint: Option<(i64, Option<i64>)>,
    /// The checkpointed record's arrival second, when the member named it by its
    /// sequence number (which carries it); the number is then written back as given.
    pub checkpoint_time_s: Option<i64>,
    /// Read to its end.
    pub finished: bool,
}

/// What the planner decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Members whose heartbeat expired: they leave the group.
    pub expired: Vec<String>,
    /// Every shard's lease, changed or not.
    pub leases: BTreeMap<u64, Lease>,
    /// The shards whose lease changed.
    pub changed: BTreeSet<u64>,
}

/// Plans the group's leases at `now_ms`. `leases` may lack shards (new ones get a
/// fresh lease); leases of shards the stream no longer has are dropped.
pub fn plan(
    now_ms: i64,
    lease_timeout_ms: i64,
    members: &[PlanMember],
    shards: &[PlanShard],
    leases: &BTreeMap<u64, Lease>,
) -> Plan {
    let live: BTreeSet<&str> = members
        .iter()
        .filter(|m| m.expires_at_ms > now_ms)
        .map(|m| m.id.as_str())
        .collect();
    let expired = members
        .iter()
        .filter(|m| !live.contains(m.id.as_str()))
        .map(|m| m.id.clone())
        .collect();
    let mut out: BTreeMap<u64, Lease> = BTreeMap::new();
    let mut changed = BTreeSet::new();
    for shard in shards {
        let before = leases.get(&shard.ordinal);
        if before.is_none() {
            changed.insert(shard.ordinal);
        }
        out.insert(shard.ordinal, before.cloned().unwrap_or_default());
    }
    let finished: BTreeSet<u64> = out
        .iter()
        .filter(|(_, l)| l.finished)
        .map(|(o, _)| *o)
        .collect();
    // A shard may be read once every parent the stream still has was read to its end
    // (a parent gone with retention has nothing left to read first).
    let readable: BTreeSet<u64> = shards
        .iter()
        .filter(|s| !finished.contains(&s.ordinal))
        .filter(|s| {
            s.parents
                .iter()
                .all(|p| finished.contains(p) || !out.contains_key(p))
        })
        .map(|s| s.ordinal)
        .collect();
    for (ordinal, lease) in out.iter_mut() {
        let before = lease.clone();
        let owner_gone = lease.owner.as_deref().is_some_and(|o| !live.contains(o));
        let release_overdue = lease
            .releasing_since_ms
            .is_some_and(|since| now_ms.saturating_sub(since) >= lease_timeout_ms);
        if owner_gone || release_overdue || !readable.contains(ordinal) {
            lease.owner = None;
        }
        if lease.owner.is_none() {
            lease.releasing_since_ms = None;
        }
        if *lease != before {
            changed.insert(*ordinal);
        }
    }
    if live.is_empty() {
        return Plan {
            expired,
            leases: out,
            changed,
        };
    }
    // Each member's share: the readable shards divided evenly; the members that hold
    // the most now keep the larger shares, so as little as possible moves.
    let mut held: BTreeMap<&str, usize> = live.iter().map(|m| (*m, 0)).collect();
    for ordinal in &readable {
        let lease = &out[ordinal];
        if let Some(owner) = lease.owner.as_deref()
            && lease.releasing_since_ms.is_none()
        {
            *held.get_mut(owner).expect("owners are live") += 1;
        }
    }
    let mut by_load: Vec<(&str, usize)> = held.iter().map(|(m, n)| (*m, *n)).collect();
    by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (floor, extra) = (readable.len() / live.len(), readable.len() % live.len());
    let target: BTreeMap<&str, usize> = by_load
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (*m, floor + usize::from(i < extra)))
        .collect();
    // Above its share: ask the member to give its newest shards up.
    for (member, share) in &target {
        let mut surplus = held[member].saturating_sub(*share);
        for ordinal in readable.iter().rev() {
            if surplus == 0 {
                break;
            }
            let lease = out.get_mut(ordinal).expect("readable shards have leases");
            if lease.owner.as_deref() == Some(*member) && lease.releasing_since_ms.is_none() {
                lease.releasing_since_ms = Some(now_ms);
                changed.insert(*ordinal);
                surplus -= 1;
                *held.get_mut(member).expect("live") -= 1;
            }
        }
    }
    // Free shards go to the members furthest below their share.
    for ordinal in &readable {
        if out[ordinal].owner.is_some() {
            continue;
        }
        let Some(member) = target
            .iter()
            .filter(|(m, share)| held[**m] < **share)
            .max_by(|a, b| (a.1 - held[a.0]).cmp(&(b.1 - held[b.0])).then(b.0.cmp(a.0)))
            .map(|(m, _)| *m)
        else {
            break;
        };
        let lease = out.get_mut(ordinal).expect("readable shards have leases");
        lease.owner = Some(member.to_string());
        lease.counter += 1;
        lease.releasing_since_ms = None;
        changed.insert(*ordinal);
        *held.get_mut(member).expect("live") += 1;
    }
    Plan {
        expired,
        leases: out,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(ids: &[&str], expires: i64) -> Vec<PlanMember> {
        ids.iter()
            .map(|id| PlanMember {
                id: id.to_string(),
                expires_at_ms: expires,
            })
            .collect()
    }

    fn roots(n: u64) -> Vec<PlanShard> {
        (0..n)
            .map(|ordinal| PlanShard {
                ordinal,
                parents: vec![],
            })
            .collect()
    }

    fn owned_by(plan: &Plan, member: &str) -> Vec<u64> {
        plan.leases
            .iter()
            .filter(|(_, l)| l.owner.as_deref() == Some(member))
            .map(|(o, _)| *o)
            .collect()
    }

    #[test]
    fn one_member_takes_every_shard_and_a_second_gets_half_after_a_release() {
        let shards = roots(4);
        let first = plan(
            0,
            10_000,
            &members(&["a"], 10_000),
            &shards,
            &BTreeMap::new(),
        );
        assert_eq!(owned_by(&first, "a"), vec![0, 1, 2, 3]);
        assert!(first.leases.values().all(|l| l.counter == 1));
        // b joins: a is asked to give two shards up and keeps them until it does.
        let second = plan(
            1,
            10_000,
            &members(&["a", "b"], 10_000),
            &shards,
            &first.leases,
        );
        assert_eq!(owned_by(&second, "a"), vec![0, 1, 2, 3]);
        let releasing: Vec<u64> = second
            .leases
            .iter()
            .filter(|(_, l)| l.releasing_since_ms.is_some())
            .map(|(o, _)| *o)
            .collect();
        assert_eq!(releasing, vec![2, 3]);
        // Planning again asks for nothing more.
        let again = plan(
            2,
            10_000,
            &members(&["a", "b"], 10_000),
            &shards,
            &second.leases,
        );
        assert_eq!(again.leases, second.leases);
        // a gives them up; b gets them with new counters.
        let mut released = again.leases.clone();
        for ordinal in [2, 3] {
            let lease = released.get_mut(&ordinal).unwrap();
            lease.owner = None;
            lease.releasing_since_ms = None;
        }
        let third = plan(3, 10_000, &members(&["a", "b"], 10_000), &shards, &released);
        assert_eq!(owned_by(&third, "b"), vec![2, 3]);
        assert_eq!(third.leases[&2].counter, 2);
        assert_eq!(third.leases[&0].counter, 1);
    }

    #[test]
    fn an_expired_member_loses_its_leases_and_a_child_waits_for_its_parents() {
        let mut shards = roots(1);
        shards.push(PlanShard {
            ordinal: 1,
            parents: vec![0],
        });
        let first = plan(
            0,
            10_000,
            &members(&["a"], 10_000),
            &shards,
            &BTreeMap::new(),
        );
        assert_eq!(owned_by(&first, "a"), vec![0], "the child waits");
        let mut people = members(&["a"], 10_000);
        people.extend(members(&["b"], 30_000));
        let later = plan(20_000, 10_000, &people, &shards, &first.leases);
        assert_eq!(later.expired, vec!["a".to_string()]);
        assert_eq!(owned_by(&later, "b"), vec![0]);
        assert_eq!(later.leases[&0].counter, 2);
        let mut done = later.leases.clone();
        done.get_mut(&0).unwrap().finished = true;
        done.get_mut(&0).unwrap().owner = None;
        let after = plan(20_001, 10_000, &people, &shards, &done);
        assert_eq!(owned_by(&after, "b"), vec![1]);
    }

    #[test]
    fn an_overdue_release_is_taken_back() {
        let shards = roots(2);
        let first = plan(
            0,
            1_000,
            &members(&["a"], 100_000),
            &shards,
            &BTreeMap::new(),
        );
        let both = members(&["a", "b"], 100_000);
        let asked = plan(10, 1_000, &both, &shards, &first.leases);
        let forced = plan(1_010, 1_000, &both, &shards, &asked.leases);
        assert_eq!(owned_by(&forced, "a"), vec![0]);
        assert_eq!(owned_by(&forced, "b"), vec![1]);
        assert_eq!(forced.leases[&1].counter, 2);
    }

    proptest! {
        /// Whatever the leases were, a plan never gives one shard to two members, gives
        /// only readable shards, keeps every live member within one of another, and a
        /// lease that changed hands has a larger counter.
        #[test]
        fn plans_are_exclusive_even_and_fencing(
            shard_count in 1u64..12,
            member_count in 1usize..5,
            owners in proptest::collection::vec(proptest::option::of(0usize..6), 12),
            finished in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let ids = ["m0", "m1", "m2", "m3", "m4", "m5"];
            let people = members(&ids[..member_count], 1_000);
            let shards = roots(shard_count);
            let mut leases = BTreeMap::new();
            for ordinal in 0..shard_count {
                leases.insert(ordinal, Lease {
                    owner: owners[ordinal as usize].map(|i| ids[i].to_string()),
                    counter: 5,
                    finished: finished[ordinal as usize],
                    ..Lease::default()
                });
            }
            let first = plan(0, 1_000, &people, &shards, &leases);
            // Once every release was honoured, the plan is even.
            let mut released = first.leases.clone();
            for lease in released.values_mut() {
                if lease.releasing_since_ms.is_some() {
                    lease.owner = None;
                    lease.releasing_since_ms = None;
                }
            }
            let settled = plan(1, 1_000, &people, &shards, &released);
            let mut counts = vec![0usize; member_count];
            for (ordinal, lease) in &settled.leases {
                if let Some(owner) = &lease.owner {
                    prop_assert!(!lease.finished, "shard {ordinal} is finished but leased");
                    let i = ids.iter().position(|id| id == owner).unwrap();
                    prop_assert!(i < member_count, "a lease of a non-member");
                    counts[i] += 1;
                    let was = leases[ordinal].owner.as_deref();
                    if was != Some(owner.as_str()) {
                        prop_assert!(lease.counter > leases[ordinal].counter);
                    }
                }
            }
            let readable = settled.leases.values().filter(|l| !l.finished).count();
            prop_assert_eq!(counts.iter().sum::<usize>(), readable);
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "uneven: {:?}", counts);
        }
    }
}
