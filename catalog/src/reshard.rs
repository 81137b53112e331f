//! Resharding as a plan, with no I/O: which open shards close and which shards open,
//! with their hash key ranges and lineage.
//!
//! Every change is made of two elementary steps, as Kinesis makes them:
//! - a split closes one shard and opens two children whose ranges are its lower and
//!   upper part; both children name it as their parent;
//! - a merge closes two shards with adjacent ranges and opens one child holding both
//!   ranges; the child's parent is the shard asked to merge, its adjacent parent the
//!   other one.
//!
//! UpdateShardCount (UNIFORM_SCALING) is a sequence of these steps: first every
//! boundary of the target layout (the key space split evenly) that is not already a
//! boundary splits the open shard holding it, then the shards inside each target range
//! merge left to right into one. Shards made and closed within one plan are *passing*:
//! they open and close at the same instant, hold no record, and exist only so that
//! every shard has at most a parent and an adjacent parent, which is all lineage can
//! say. A reader that reads parents before children reads them through as empty.
//!
//! INVARIANT: applied to open shards whose ranges cover the key space with no gap and
//! no overlap, a plan leaves open shards that do too (a property test below).

use std::collections::BTreeMap;

use protocol::hash::{HashKey, HashKeyRange};

/// A shard that is open before the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenShard {
    pub ordinal: u64,
    pub range: HashKeyRange,
}

/// A shard the plan opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewShard {
    pub ordinal: u64,
    pub range: HashKeyRange,
    pub parent: u64,
    pub adjacent_parent: Option<u64>,
    /// Opened and closed by the same plan (an intermediate step of UpdateShardCount).
    pub passing: bool,
}

/// What a reshard does, in the order its steps were taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Shards open before the plan that it closes.
    pub close: Vec<u64>,
    pub open: Vec<NewShard>,
}

impl Plan {
    /// How many more (or fewer) shards are open after the plan.
    pub fn open_shard_change(&self) -> i64 {
        let opened = self.open.iter().filter(|s| !s.passing).count() as i64;
        opened - self.close.len() as i64
    }
}

/// Why a step cannot be taken; the handler words it as Kinesis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReshardError {
    /// No open shard has this ordinal.
    NotOpen(u64),
    /// The new starting hash key does not leave both children a key.
    BadSplitKey {
        ordinal: u64,
        range: HashKeyRange,
        key: HashKey,
    },
    /// The two shards' ranges do not touch.
    NotAdjacent(u64, u64),
}

/// The open shards while a plan is made, by starting hash key.
struct Planner {
    open: BTreeMap<u128, OpenShard>,
    before: Vec<u64>,
    next_ordinal: u64,
    plan: Plan,
}

impl Planner {
    fn new(open: &[OpenShard], next_ordinal: u64) -> Planner {
        Planner {
            open: open.iter().map(|s| (s.range.starting.0, *s)).collect(),
            before: open.iter().map(|s| s.ordinal).collect(),
            next_ordinal,
            plan: Plan::default(),
        }
    }

    fn find(&self, ordinal: u64) -> Result<OpenShard, ReshardError> {
        self.open
            .values()
            .find(|s| s.ordinal == ordinal)
            .copied()
            .ok_or(ReshardError::NotOpen(ordinal))
    }

    fn close(&mut self, shard: OpenShard) {
        self.open.remove(&shard.range.starting.0);
        if self.before.contains(&shard.ordinal) {
            self.plan.close.push(shard.ordinal);
        } else if let Some(made) = self
            .plan
            .open
            .iter_mut()
            .find(|s| s.ordinal == shard.ordinal)
        {
            made.passing = true;
        }
    }

    fn open(&mut self, range: HashKeyRange, parent: u64, adjacent_parent: Option<u64>) -> u64 {
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        self.open
            .insert(range.starting.0, OpenShard { ordinal, range });
        self.plan.open.push(NewShard {
            ordinal,
            range,
            parent,
            adjacent_parent,
            passing: false,
        });
        ordinal
    }

    /// Splits `ordinal` so that its upper child starts at `key`.
    fn split(&mut self, ordinal: u64, key: HashKey) -> Result<(u64, u64), ReshardError> {
        let shard = self.find(ordinal)?;
        let range = shard.range;
        // Kinesis's rule: the key is greater than one plus the starting key and less
        // than the ending key.
        if key.0 <= range.starting.0.saturating_add(1) || key.0 >= range.ending.0 {
            return Err(ReshardError::BadSplitKey {
                ordinal,
                range,
                key,
            });
        }
        self.close(shard);
        let lower = self.open(
            HashKeyRange {
                starting: range.starting,
                ending: HashKey(key.0 - 1),
            },
            ordinal,
            None,
        );
        let upper = self.open(
            HashKeyRange {
                starting: key,
                ending: range.ending,
            },
            ordinal,
            None,
        );
        Ok((lower, upper))
    }

    /// Merges `ordinal` with `adjacent`, whose range must start right after its own (as
    /// Kinesis has it: the pair in the other order is not an adjacent pair).
    fn merge(&mut self, ordinal: u64, adjacent: u64) -> Result<u64, ReshardError> {
        let a = self.find(ordinal)?;
        let b = self.find(adjacent)?;
        let (low, high) = (a, b);
        if ordinal == adjacent || low.range.ending.0.checked_add(1) != Some(high.range.starting.0) {
            return Err(ReshardError::NotAdjacent(ordinal, adjacent));
        }
        self.close(a);
        self.close(b);
        Ok(self.open(
            HashKeyRange {
                starting: low.range.starting,
                ending: high.range.ending,
            },
            ordinal,
            Some(adjacent),
        ))
    }

    /// The open shard holding `key`.
    fn holding(&self, key: u128) -> OpenShard {
        *self
            .open
            .range(..=key)
            .next_back()
            .expect("open shards cover the key space")
            .1
    }
}

/// SplitShard: `ordinal` closes; its children hold `..key` and `key..`.
pub fn split(
    open: &[OpenShard],
    next_ordinal: u64,
    ordinal: u64,
    key: HashKey,
) -> Result<Plan, ReshardError> {
    let mut planner = Planner::new(open, next_ordinal);
    planner.split(ordinal, key)?;
    Ok(planner.plan)
}

/// MergeShards: `ordinal` and `adjacent` close; their child holds both ranges.
pub fn merge(
    open: &[OpenShard],
    next_ordinal: u64,
    ordinal: u64,
    adjacent: u64,
) -> Result<Plan, ReshardError> {
    let mut planner = Planner::new(open, next_ordinal);
    planner.merge(ordinal, adjacent)?;
    Ok(planner.plan)
}

/// UpdateShardCount with UNIFORM_SCALING: the open shards become `target` shards that
/// split the key space evenly, by splits and then merges.
pub fn uniform(open: &[OpenShard], next_ordinal: u64, target: u32) -> Plan {
    let mut planner = Planner::new(open, next_ordinal);
    let layout = HashKeyRange::split_evenly(target);
    // 1. Every target boundary becomes a shard boundary.
    for range in &layout[1..] {
        let key = range.starting.0;
        let holder = planner.holding(key);
        if holder.range.starting.0 != key {
            // A holder whose range starts one key below the boundary cannot be split
            // there by Kinesis's rule; split it at the boundary all the same (its lower
            // child holds one key), as an internal step.
            planner.close(holder);
            let lower = HashKeyRange {
                starting: holder.range.starting,
                ending: HashKey(key - 1),
            };
            let upper = HashKeyRange {
                starting: HashKey(key),
                ending: holder.range.ending,
            };
            planner.open(lower, holder.ordinal, None);
            planner.open(upper, holder.ordinal, None);
        }
    }
    // 2. The shards inside each target range merge, left to right, into one.
    for range in &layout {
        let mut current = planner.holding(range.starting.0);
        while current.range.ending < range.ending {
            let next = planner.holding(current.range.ending.0 + 1);
            let child = planner
                .merge(current.ordinal, next.ordinal)
                .expect("neighbours in the open map are adjacent");
            current = planner.find(child).expect("just opened");
        }
    }
    planner.plan
}

/// The open shards after `plan`, by starting hash key.
pub fn apply(open: &[OpenShard], plan: &Plan) -> Vec<OpenShard> {
    let mut after: Vec<OpenShard> = open
        .iter()
        .filter(|s| !plan.close.contains(&s.ordinal))
        .copied()
        .chain(plan.open.iter().filter(|s| !s.passing).map(|s| OpenShard {
            ordinal: s.ordinal,
            range: s.range,
        }))
        .collect();
    after.sort_by_key(|s| s.range.starting);
    after
}

/// Whether the ranges, sorted by start, cover the key space with no gap and no overlap.
pub fn covers_key_space(sorted: &[OpenShard]) -> bool {
    let Some(first) = sorted.first() else {
        return false;
    };
    if first.range.starting.0 != 0 || sorted.last().map(|s| s.range.ending.0) != Some(u128::MAX) {
        return false;
    }
    sorted.iter().all(|s| s.range.starting <= s.range.ending)
        && sorted
            .windows(2)
            .all(|w| w[0].range.ending.0.checked_add(1) == Some(w[1].range.starting.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn even(count: u32) -> Vec<OpenShard> {
        HashKeyRange::split_evenly(count)
            .into_iter()
            .enumerate()
            .map(|(i, range)| OpenShard {
                ordinal: i as u64,
                range,
            })
            .collect()
    }

    #[test]
    fn a_split_makes_two_children_of_one_parent() {
        let open = even(1);
        let plan = split(&open, 1, 0, HashKey(1 << 127)).unwrap();
        assert_eq!(plan.close, vec![0]);
        assert_eq!(plan.open.len(), 2);
        assert!(
            plan.open
                .iter()
                .all(|s| s.parent == 0 && s.adjacent_parent.is_none())
        );
        assert_eq!(plan.open[0].range.ending.0, (1 << 127) - 1);
        assert_eq!(plan.open[1].range.starting.0, 1 << 127);
        assert_eq!(plan.open_shard_change(), 1);
    }

    #[test]
    fn a_split_key_must_leave_both_children_a_key() {
        let open = even(1);
        for key in [0, 1, u128::MAX] {
            assert!(matches!(
                split(&open, 1, 0, HashKey(key)),
                Err(ReshardError::BadSplitKey { .. })
            ));
        }
        assert!(split(&open, 1, 0, HashKey(2)).is_ok());
        assert_eq!(
            split(&open, 1, 7, HashKey(5)),
            Err(ReshardError::NotOpen(7))
        );
    }

    #[test]
    fn only_adjacent_shards_merge() {
        let open = even(3);
        assert_eq!(merge(&open, 3, 0, 2), Err(ReshardError::NotAdjacent(0, 2)));
        assert_eq!(merge(&open, 3, 1, 1), Err(ReshardError::NotAdjacent(1, 1)));
        // The upper shard first is not an adjacent pair, as Kinesis answers.
        assert_eq!(merge(&open, 3, 2, 1), Err(ReshardError::NotAdjacent(2, 1)));
        let plan = merge(&open, 3, 1, 2).unwrap();
        assert_eq!(plan.close, vec![1, 2]);
        assert_eq!(plan.open[0].parent, 1);
        assert_eq!(plan.open[0].adjacent_parent, Some(2));
        assert_eq!(plan.open[0].range.starting, open[1].range.starting);
        assert_eq!(plan.open[0].range.ending.0, u128::MAX);
    }

    #[test]
    fn uniform_scaling_from_four_to_three_splits_the_middle_and_merges() {
        let open = even(4);
        let plan = uniform(&open, 4, 3);
        let after = apply(&open, &plan);
        assert_eq!(
            after.iter().map(|s| s.range).collect::<Vec<_>>(),
            HashKeyRange::split_evenly(3)
        );
        // Every made shard has at most two parents, each of them a shard that was open
        // before or made earlier in the plan.
        let mut known: Vec<u64> = open.iter().map(|s| s.ordinal).collect();
        for made in &plan.open {
            assert!(known.contains(&made.parent));
            assert!(made.adjacent_parent.is_none_or(|a| known.contains(&a)));
            known.push(made.ordinal);
        }
        assert_eq!(plan.open_shard_change(), -1);
    }

    #[test]
    fn doubling_splits_every_shard_once_as_aws_does() {
        // AWS: 2 -> 4 leaves 6 shards (2 closed, 4 open), 4 -> 8 leaves 12.
        for (from, to) in [(2u32, 4u32), (4, 8), (1, 2)] {
            let open = even(from);
            let plan = uniform(&open, u64::from(from), to);
            assert_eq!(plan.close.len(), from as usize);
            assert_eq!(plan.open.len(), to as usize, "{from} -> {to}");
            assert!(plan.open.iter().all(|s| !s.passing));
            let after = apply(&open, &plan);
            assert_eq!(
                after.iter().map(|s| s.range).collect::<Vec<_>>(),
                HashKeyRange::split_evenly(to)
            );
        }
        // Halving merges neighbours pairwise: 4 -> 2 closes 4 and opens 2.
        let plan = uniform(&even(4), 4, 2);
        assert_eq!((plan.close.len(), plan.open.len()), (4, 2));
    }

    #[test]
    fn uniform_scaling_to_the_same_even_layout_changes_nothing() {
        let open = even(5);
        assert_eq!(uniform(&open, 5, 5), Plan::default());
    }

    /// One random step: split a shard at a point of its range, or merge it with its
    /// upper neighbour, or scale the stream uniformly.
    #[derive(Debug, Clone)]
    enum Step {
        Split { pick: usize, at: u128 },
        Merge { pick: usize },
        Uniform { target: u32 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (any::<usize>(), any::<u128>()).prop_map(|(pick, at)| Step::Split { pick, at }),
            any::<usize>().prop_map(|pick| Step::Merge { pick }),
            (1u32..40).prop_map(|target| Step::Uniform { target }),
        ]
    }

    proptest! {
        #[test]
        fn open_shards_always_cover_the_key_space(
            initial in 1u32..12,
            steps in proptest::collection::vec(step(), 1..30),
        ) {
            let mut open = even(initial);
            let mut next = u64::from(initial);
            let mut parents_seen: Vec<u64> = open.iter().map(|s| s.ordinal).collect();
            for step in steps {
                let n = open.len();
                let plan = match step {
                    Step::Split { pick, at } => {
                        let shard = open[pick % n];
                        let width = shard.range.ending.0 - shard.range.starting.0;
                        if width < 3 {
                            continue;
                        }
                        let key = shard.range.starting.0 + 2 + at % (width - 2);
                        split(&open, next, shard.ordinal, HashKey(key)).unwrap()
                    }
                    Step::Merge { pick } => {
                        if n < 2 {
                            continue;
                        }
                        let i = pick % (n - 1);
                        merge(&open, next, open[i].ordinal, open[i + 1].ordinal).unwrap()
                    }
                    Step::Uniform { target } => uniform(&open, next, target),
                };
                for made in &plan.open {
                    prop_assert!(parents_seen.contains(&made.parent));
                    prop_assert!(made.adjacent_parent.is_none_or(|a| parents_seen.contains(&a)));
                    prop_assert_eq!(made.ordinal, next);
                    parents_seen.push(made.ordinal);
                    next += 1;
                }
                let before = open.len() as i64;
                open = apply(&open, &plan);
                prop_assert!(covers_key_space(&open), "{:?}", open);
                prop_assert_eq!(open.len() as i64, before + plan.open_shard_change());
                if let Step::Uniform { target } = step {
                    prop_assert_eq!(
                        open.iter().map(|s| s.range).collect::<Vec<_>>(),
                        HashKeyRange::split_evenly(target)
                    );
                }
            }
        }
    }
}
