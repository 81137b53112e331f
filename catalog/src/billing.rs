//! The meter and the bill. What was provisioned lives in `usage_intervals` (a shard from
//! open to close, a retention setting from set to changed); what was counted lives in
//! `usage_counters` per UTC hour. A report splits every interval at hour boundaries, to
//! the millisecond, and prices each line with a `PriceList`.
//!
//! Every function takes the time it acts at (`now_ms`) from its caller, so a test drives
//! the meter's clock and can check a bill to the millisecond.

use std::collections::BTreeMap;

use crate::refusal::{Refusal, RefusalKind};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Catalog, CatalogError};

pub const HOUR_MS: i64 = 3_600_000;
/// A PUT payload unit is each 25 KB of a record (rounded up), as Kinesis bills them.
pub const PUT_PAYLOAD_UNIT_BYTES: u64 = 25 * 1024;
/// Retention included in the shard-hour price; hours above it are extended retention.
pub const RETENTION_INCLUDED_HOURS: i64 = 24;
/// The longest span one report covers (31 days).
pub const REPORT_SPAN_MS_MAX: i64 = 31 * 24 * HOUR_MS;
/// Lines one report holds at most.
pub const REPORT_LINES_MAX: usize = 100_000;

/// What a line of the bill counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ShardHours,
    ExtendedRetentionShardHours,
    PutPayloadUnits,
    KmsRequests,
    /// Enhanced fan-out: hours of one registered consumer on one open shard.
    ConsumerShardHours,
    /// Enhanced fan-out: bytes of record data SubscribeToShard delivered.
    EnhancedFanOutBytes,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ShardHours => "shard_hours",
            Metric::ExtendedRetentionShardHours => "extended_retention_shard_hours",
            Metric::PutPayloadUnits => "put_payload_units",
            Metric::KmsRequests => "kms_requests",
            Metric::ConsumerShardHours => "consumer_shard_hours",
            Metric::EnhancedFanOutBytes => "enhanced_fan_out_bytes",
        }
    }

    fn parse(text: &str) -> Option<Metric> {
        [
            Metric::ShardHours,
            Metric::ExtendedRetentionShardHours,
            Metric::PutPayloadUnits,
            Metric::KmsRequests,
            Metric::ConsumerShardHours,
            Metric::EnhancedFanOutBytes,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

/// Prices in US dollars per unit of each metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceList {
    pub currency: String,
    pub shard_hour: f64,
    pub extended_retention_shard_hour: f64,
    /// Per PUT payload unit (AWS publishes it per million).
    pub put_payload_unit: f64,
    /// Per request (AWS publishes it per 10,000).
    pub kms_request: f64,
    /// Per enhanced fan-out consumer-shard-hour (absent from older price lists: AWS's).
    #[serde(default = "aws_consumer_shard_hour")]
    pub consumer_shard_hour: f64,
    /// Per byte delivered by enhanced fan-out (AWS publishes it per GB, taken here as
    /// 2^30 bytes).
    #[serde(default = "aws_enhanced_fan_out_byte")]
    pub enhanced_fan_out_byte: f64,
}

fn aws_consumer_shard_hour() -> f64 {
    0.015
}

fn aws_enhanced_fan_out_byte() -> f64 {
    0.013 / (1u64 << 30) as f64
}

impl Default for PriceList {
    /// AWS's published on-demand prices for provisioned Kinesis Data Streams and KMS in
    /// us-east-1: $0.015 per shard-hour, $0.014 per million PUT payload units, $0.020 per
    /// shard-hour of extended retention (up to 7 days), $0.03 per 10,000 KMS requests.
    fn default() -> Self {
        PriceList {
            currency: "USD".into(),
            shard_hour: 0.015,
            extended_retention_shard_hour: 0.020,
            put_payload_unit: 0.014 / 1_000_000.0,
            kms_request: 0.03 / 10_000.0,
            consumer_shard_hour: aws_consumer_shard_hour(),
            enhanced_fan_out_byte: aws_enhanced_fan_out_byte(),
        }
    }
}

impl PriceList {
    pub fn price(&self, metric: Metric) -> f64 {
        match metric {
            Metric::ShardHours => self.shard_hour,
            Metric::ExtendedRetentionShardHours => self.extended_retention_shard_hour,
            Metric::PutPayloadUnits => self.put_payload_unit,
            Metric::KmsRequests => self.kms_request,
            Metric::ConsumerShardHours => self.consumer_shard_hour,
            Metric::EnhancedFanOutBytes => self.enhanced_fan_out_byte,
        }
    }

    /// Every price must be a finite, non-negative number.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("shard_hour", self.shard_hour),
            (
                "extended_retention_shard_hour",
                self.extended_retention_shard_hour,
            ),
            ("put_payload_unit", self.put_payload_unit),
            ("kms_request", self.kms_request),
            ("consumer_shard_hour", self.consumer_shard_hour),
            ("enhanced_fan_out_byte", self.enhanced_fan_out_byte),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "price {name} must be a non-negative number, got {v}"
                ));
            }
        }
        Ok(())
    }
}

/// One line of a usage report: a quantity of one metric, for one stream (or none), in
/// one UTC hour, and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageLine {
    pub account_id: String,
    /// Empty for what belongs to no stream.
    pub stream: String,
    pub hour_start_ms: i64,
    pub metric: Metric,
    pub quantity: f64,
    pub unit_price: f64,
    pub cost: f64,
}

/// PUT payload units of one record of `bytes` (data and partition key).
pub fn put_payload_units(bytes: u64) -> u64 {
    bytes.div_ceil(PUT_PAYLOAD_UNIT_BYTES).max(1)
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Adds `ms` of [start, end) to `out`, split at UTC hour boundaries, in hours.
fn split_hours(start: i64, end: i64, mut add: impl FnMut(i64, f64)) {
    let mut t = start;
    while t < end {
        let hour = hour_of(t);
        let until = (hour + HOUR_MS).min(end);
        add(hour, (until - t) as f64 / HOUR_MS as f64);
        t = until;
    }
}

struct Interval {
    stream: String,
    stream_id: i64,
    kind: String,
    retention_hours: i64,
    opened: i64,
    closed: Option<i64>,
}

/// What an interval of the ledger meters: its kind ('shard', 'consumer' or
/// 'retention'), the shard ordinal or consumer id (`RETENTION_ID` for retention), and
/// the retention period (0 but for retention).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metered<'a> {
    pub kind: &'a str,
    pub id: i64,
    pub retention_hours: i64,
}

impl Metered<'_> {
    pub(crate) fn of(kind: &'static str, id: i64) -> Metered<'static> {
        Metered {
            kind,
            id,
            retention_hours: 0,
        }
    }
}

/// The id column of a retention interval.
const RETENTION_ID: i64 = -1;

impl Catalog {
    /// Records, inside the transaction that made them, shards opening at `now_ms`.
    pub(crate) async fn meter_shards_opened(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        stream_id: i64,
        ordinals: impl IntoIterator<Item = i64>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        for ordinal in ordinals {
            let interval = Metered::of("shard", ordinal);
            Self::meter_opened(tx, account_id, stream_name, stream_id, interval, now_ms).await?;
        }
        Ok(())
    }

    /// Closes the shard intervals of `ordinals` (shards a reshard closed) at `now_ms`.
    pub(crate) async fn meter_shards_closed(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        stream_id: i64,
        ordinals: impl IntoIterator<Item = i64>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        for ordinal in ordinals {
            Self::meter_closed(tx, stream_id, "shard", ordinal, now_ms).await?;
        }
        Ok(())
    }

    /// Opens an interval at `now_ms`.
    pub(crate) async fn meter_opened(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        stream_id: i64,
        interval: Metered<'static>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO usage_intervals (account_id, stream_name, stream_id, kind, shard_ordinal, \
             retention_hours, opened_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(account_id)
        .bind(stream_name)
        .bind(stream_id)
        .bind(interval.kind)
        .bind(interval.id)
        .bind(interval.retention_hours)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Closes the open interval of `kind` for `id` at `now_ms`.
    pub(crate) async fn meter_closed(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        stream_id: i64,
        kind: &'static str,
        id: i64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE usage_intervals SET closed_at_ms = $4 WHERE stream_id = $1 \
             AND kind = $2 AND shard_ordinal = $3 AND closed_at_ms IS NULL",
        )
        .bind(stream_id)
        .bind(kind)
        .bind(id)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records, inside the transaction that set it, a stream's retention from `now_ms`
    /// (closing the setting before it).
    pub(crate) async fn meter_retention(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        stream_id: i64,
        hours: i64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        Self::meter_closed(tx, stream_id, "retention", RETENTION_ID, now_ms).await?;
        let interval = Metered {
            kind: "retention",
            id: RETENTION_ID,
            retention_hours: hours,
        };
        Self::meter_opened(tx, account_id, stream_name, stream_id, interval, now_ms).await
    }

    /// Closes, inside the deleting transaction, every open interval of a stream.
    pub(crate) async fn meter_stream_gone(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        stream_id: i64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE usage_intervals SET closed_at_ms = $2 WHERE stream_id = $1 AND closed_at_ms IS NULL",
        )
        .bind(stream_id)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Adds counted quantities for the hour of `now_ms`, inside the transaction that
    /// acknowledges the counted work (so what is billed is exactly what was done).
    pub async fn meter_count(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        metric: Metric,
        quantity: u64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        if quantity == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO usage_counters (account_id, stream_name, hour_ms, metric, quantity) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, stream_name, hour_ms, metric) \
             DO UPDATE SET quantity = usage_counters.quantity + excluded.quantity",
        )
        .bind(account_id)
        .bind(stream_name)
        .bind(hour_of(now_ms))
        .bind(metric.as_str())
        .bind(i64::try_from(quantity).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The same, in a transaction of its own.
    pub async fn meter_count_now(
        &self,
        account_id: &str,
        stream_name: &str,
        metric: Metric,
        quantity: u64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        Self::meter_count(&mut tx, account_id, stream_name, metric, quantity, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The usage of `account_id` in [from_ms, to_ms), per stream, UTC hour and metric,
    /// priced; intervals still open count up to `now_ms`.
    pub async fn usage_report(
        &self,
        account_id: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
        prices: &PriceList,
    ) -> Result<Vec<UsageLine>, CatalogError> {
        if to_ms <= from_ms || to_ms - from_ms > REPORT_SPAN_MS_MAX {
            return Err(Refusal::bad_argument(format!(
                "A report covers a span of 1 ms to 31 days with from < to; got {from_ms}..{to_ms}."
            ))
            .into());
        }
        let rows = sqlx::query(
            "SELECT stream_name, stream_id, kind, retention_hours, opened_at_ms, closed_at_ms \
             FROM usage_intervals WHERE account_id = $1 AND opened_at_ms < $3 \
             AND (closed_at_ms IS NULL OR closed_at_ms > $2)",
        )
        .bind(account_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        let intervals = rows
            .iter()
            .map(|r| {
                Ok(Interval {
                    stream: r.try_get("stream_name")?,
                    stream_id: r.try_get("stream_id")?,
                    kind: r.try_get("kind")?,
                    retention_hours: r.try_get("retention_hours")?,
                    opened: r.try_get("opened_at_ms")?,
                    closed: r.try_get("closed_at_ms")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let window = |i: &Interval| {
            let start = i.opened.max(from_ms);
            let end = i.closed.unwrap_or(now_ms).min(to_ms);
            (start, end)
        };
        let mut totals: BTreeMap<(String, i64, Metric), f64> = BTreeMap::new();
        let shards: Vec<&Interval> = intervals.iter().filter(|i| i.kind == "shard").collect();
        let extended: Vec<&Interval> = intervals
            .iter()
            .filter(|i| i.kind == "retention" && i.retention_hours > RETENTION_INCLUDED_HOURS)
            .collect();
        let consumers: Vec<&Interval> = intervals.iter().filter(|i| i.kind == "consumer").collect();
        for shard in &shards {
            let (start, end) = window(shard);
            split_hours(start, end, |hour, h| {
                *totals
                    .entry((shard.stream.clone(), hour, Metric::ShardHours))
                    .or_default() += h;
            });
            // Each registered consumer bills each hour its stream's shards are open.
            for c in consumers.iter().filter(|c| c.stream_id == shard.stream_id) {
                let (c_start, c_end) = window(c);
                split_hours(start.max(c_start), end.min(c_end), |hour, h| {
                    *totals
                        .entry((shard.stream.clone(), hour, Metric::ConsumerShardHours))
                        .or_default() += h;
                });
            }
            for r in extended.iter().filter(|r| r.stream_id == shard.stream_id) {
                let (r_start, r_end) = window(r);
                split_hours(start.max(r_start), end.min(r_end), |hour, h| {
                    *totals
                        .entry((
                            shard.stream.clone(),
                            hour,
                            Metric::ExtendedRetentionShardHours,
                        ))
                        .or_default() += h;
                });
            }
        }
        let counted = sqlx::query(
            "SELECT stream_name, hour_ms, metric, quantity FROM usage_counters \
             WHERE account_id = $1 AND hour_ms >= $2 AND hour_ms < $3",
        )
        .bind(account_id)
        .bind(hour_of(from_ms))
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        for row in &counted {
            let metric: String = row.try_get("metric")?;
            let Some(metric) = Metric::parse(&metric) else {
                return Err(CatalogError::Corrupt {
                    what: format!("usage counter of unknown metric {metric}"),
                });
            };
            let quantity: i64 = row.try_get("quantity")?;
            *totals
                .entry((row.try_get("stream_name")?, row.try_get("hour_ms")?, metric))
                .or_default() += quantity as f64;
        }
        if totals.len() > REPORT_LINES_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "The report would hold more than {REPORT_LINES_MAX} lines; ask for a shorter span."
                ),
            )
            .into());
        }
        Ok(totals
            .into_iter()
            .filter(|(_, q)| *q > 0.0)
            .map(|((stream, hour, metric), quantity)| {
                let unit_price = prices.price(metric);
                UsageLine {
                    account_id: account_id.to_string(),
                    stream,
                    hour_start_ms: hour,
                    metric,
                    quantity,
                    unit_price,
                    cost: quantity * unit_price,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_units_round_up_per_25_kib() {
        assert_eq!(put_payload_units(1), 1);
        assert_eq!(put_payload_units(25 * 1024), 1);
        assert_eq!(put_payload_units(25 * 1024 + 1), 2);
        assert_eq!(put_payload_units(1024 * 1024), 41);
    }

    #[test]
    fn intervals_split_at_hour_boundaries_to_the_millisecond() {
        let mut got = Vec::new();
        split_hours(HOUR_MS / 2, 2 * HOUR_MS + 1, |h, q| got.push((h, q)));
        assert_eq!(
            got,
            vec![
                (0, 0.5),
                (HOUR_MS, 1.0),
                (2 * HOUR_MS, 1.0 / HOUR_MS as f64)
            ]
        );
    }

    /// The meter, driven by a test clock: a 2-shard stream made at 00:30, raised to 48 h
    /// retention at 01:15, deleted at 02:45, with records put at 00:40 and 01:50.
    #[tokio::test]
    async fn a_bill_is_exact_for_a_driven_clock() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let t0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS; // an hour boundary
            let minute = 60_000;
            let mut new = crate::testing::provisioned_stream("metered", 2);
            new.now_ms = t0 + 30 * minute;
            let stream = catalog.create_stream(&new).await.unwrap();
            catalog
                .set_retention_hours(stream.id, 48, t0 + 75 * minute)
                .await
                .unwrap();
            let account = new.account_id;
            // A 1-byte record and a 60 KiB one at 00:40 (1 + 3 units), one more at 01:50.
            let units = put_payload_units(1) + put_payload_units(60 * 1024);
            catalog
                .meter_count_now(
                    account,
                    "metered",
                    Metric::PutPayloadUnits,
                    units,
                    t0 + 40 * minute,
                )
                .await
                .unwrap();
            catalog
                .meter_count_now(
                    account,
                    "metered",
                    Metric::PutPayloadUnits,
                    1,
                    t0 + 110 * minute,
                )
                .await
                .unwrap();
            catalog
                .delete_stream(account, "metered", t0 + 165 * minute)
                .await
                .unwrap();
            let prices = PriceList::default();
            let lines = catalog
                .usage_report(account, t0, t0 + 4 * HOUR_MS, t0 + 5 * HOUR_MS, &prices)
                .await
                .unwrap();
            let get = |hour: i64, metric: Metric| {
                lines
                    .iter()
                    .find(|l| l.hour_start_ms == t0 + hour * HOUR_MS && l.metric == metric)
                    .map_or(0.0, |l| l.quantity)
            };
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            // 2 shards x 30 min, x 60 min, x 45 min.
            assert!(close(get(0, Metric::ShardHours), 1.0));
            assert!(close(get(1, Metric::ShardHours), 2.0));
            assert!(close(get(2, Metric::ShardHours), 1.5));
            // Extended retention from 01:15: 2 x 45 min, then 2 x 45 min.
            assert!(close(get(0, Metric::ExtendedRetentionShardHours), 0.0));
            assert!(close(get(1, Metric::ExtendedRetentionShardHours), 1.5));
            assert!(close(get(2, Metric::ExtendedRetentionShardHours), 1.5));
            assert!(close(get(0, Metric::PutPayloadUnits), 4.0));
            assert!(close(get(1, Metric::PutPayloadUnits), 1.0));
            assert!(lines.iter().all(|l| l.hour_start_ms < t0 + 3 * HOUR_MS));
            let total: f64 = lines.iter().map(|l| l.cost).sum();
            let expected = 4.5 * 0.015 + 3.0 * 0.020 + 5.0 * 0.014 / 1e6;
            assert!(close(total, expected), "{total} vs {expected}");
            // Another account's report is empty; a span over 31 days is refused.
            assert!(
                catalog
                    .usage_report("999999999999", t0, t0 + HOUR_MS, t0, &prices)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                catalog
                    .usage_report(account, t0, t0 + 32 * 24 * HOUR_MS, t0, &prices)
                    .await
                    .is_err()
            );
        }
    }
    /// A simulated week on a driven clock: a stream created, split, merged, scaled
    /// uniformly, its retention raised and lowered, then deleted, beside a second
    /// stream that stays; the report's totals equal the hand-computed figures exactly.
    #[tokio::test]
    async fn a_week_of_resharding_bills_exactly() {
        use crate::streams::{Reshard, ReshardContext};
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let t0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
            let at = |hours: i64| t0 + hours * HOUR_MS;
            let mut new = crate::testing::provisioned_stream("week", 2);
            new.now_ms = at(0);
            let stream = catalog.create_stream(&new).await.unwrap();
            let account = new.account_id;
            let reshard = |now_ms: i64, change: Reshard| {
                let catalog = catalog.clone();
                async move {
                    catalog
                        .reshard(
                            &ReshardContext {
                                account_id: account,
                                name: "week",
                                region: "us-east-1",
                                now_ms,
                                account_shards_max: 10,
                                updating_until_ms: None,
                                by_hand: false,
                            },
                            change,
                        )
                        .await
                        .unwrap()
                }
            };
            // Day 1: shard 0 splits into 2 and 3 (3 open).
            reshard(
                at(24),
                Reshard::Split {
                    shard: 0,
                    new_starting_key: protocol::hash::HashKey(1 << 100),
                },
            )
            .await;
            // Day 2: retention 72 h; at 54 h shards 2 and 3 merge into 4 (2 open).
            catalog
                .set_retention_hours(stream.id, 72, at(48))
                .await
                .unwrap();
            reshard(
                at(54),
                Reshard::Merge {
                    shard: 2,
                    adjacent: 3,
                },
            )
            .await;
            // Day 3: uniform scaling to 4 (its passing shards add nothing).
            let done = reshard(at(72), Reshard::Uniform { target: 4 }).await;
            assert_eq!((done.open_before, done.open_after), (2, 4));
            catalog
                .meter_count_now(account, "week", Metric::PutPayloadUnits, 3, at(12))
                .await
                .unwrap();
            catalog
                .meter_count_now(account, "week", Metric::PutPayloadUnits, 7, at(100))
                .await
                .unwrap();
            // Day 4: a second stream of one shard, never deleted.
            let mut other = crate::testing::provisioned_stream("other", 1);
            other.now_ms = at(96);
            catalog.create_stream(&other).await.unwrap();
            // An enhanced fan-out consumer from day 4 to day 5, on 4 open shards, and
            // one registered on day 5 that the stream's deletion ends.
            catalog
                .register_consumer(account, "week", "efo", at(96), at(96))
                .await
                .unwrap();
            catalog
                .deregister_consumer(account, "week", "efo", at(120))
                .await
                .unwrap();
            catalog
                .register_consumer(account, "week", "late", at(132), at(132))
                .await
                .unwrap();
            // Day 5: retention back to 24 h; day 6: deleted.
            catalog
                .set_retention_hours(stream.id, 24, at(120))
                .await
                .unwrap();
            catalog
                .delete_stream(account, "week", at(144))
                .await
                .unwrap();

            let lines = catalog
                .usage_report(account, at(0), at(168), at(168), &PriceList::default())
                .await
                .unwrap();
            let total = |stream: &str, metric: Metric| -> f64 {
                lines
                    .iter()
                    .filter(|l| l.stream == stream && l.metric == metric)
                    .map(|l| l.quantity)
                    .sum()
            };
            let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
            // 2 x 24 h + 3 x 30 h + 2 x 18 h + 4 x 72 h.
            let shard_hours = total("week", Metric::ShardHours);
            assert!(close(shard_hours, 462.0), "{shard_hours}");
            // Above 24 h from 48 h to 120 h: 3 x 6 h + 2 x 18 h + 4 x 48 h.
            let extended = total("week", Metric::ExtendedRetentionShardHours);
            assert!(close(extended, 246.0), "{extended}");
            assert!(close(total("week", Metric::PutPayloadUnits), 10.0));
            // 4 shards x 24 h, then 4 shards x 12 h.
            let consumer_hours = total("week", Metric::ConsumerShardHours);
            assert!(close(consumer_hours, 144.0), "{consumer_hours}");
            assert!(close(total("other", Metric::ShardHours), 72.0));
            assert!(close(
                total("other", Metric::ExtendedRetentionShardHours),
                0.0
            ));
            // The hour of the split counts the three shards that followed it.
            let hour = |h: i64| {
                lines
                    .iter()
                    .filter(|l| l.stream == "week" && l.metric == Metric::ShardHours)
                    .find(|l| l.hour_start_ms == at(h))
                    .map_or(0.0, |l| l.quantity)
            };
            assert!(close(hour(23), 2.0) && close(hour(24), 3.0) && close(hour(72), 4.0));
            assert!(close(hour(144), 0.0));
        }
    }
}
