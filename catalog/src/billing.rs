//! The meter and the bill. What was provisioned lives in `usage_intervals` (a shard from
//! open to close, a retention setting from set to changed); what was counted lives in
//! `usage_counters` per UTC hour. A report splits every interval at hour boundaries, to
//! the millisecond, and prices each line with a `PriceList`.
//!
//! Every function takes the time it acts at (`now_ms`) from its caller, so a test drives
//! the meter's clock and can check a bill to the millisecond.

use std::collections::BTreeMap;

use crate::refusal::{Refusal, RefusalKind};
pub use rust_decimal::Decimal;
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

impl crate::groupcommit::Meters {
    /// Counts `quantity` of `metric` for `resource` of `account_id` at `now_ms`, in the
    /// group's transaction.
    pub(crate) fn add(
        &mut self,
        account_id: &str,
        resource: &str,
        metric: Metric,
        quantity: u64,
        now_ms: i64,
    ) {
        self.add_named(
            account_id,
            resource,
            metric.as_str(),
            quantity,
            hour_of(now_ms),
        );
    }
}

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
    /// Enhanced fan-out: GiB of record data SubscribeToShard delivered (counted in
    /// bytes).
    EnhancedFanOutGib,
    /// Hours an ON_DEMAND stream exists (its shards bill no shard-hours meanwhile).
    OnDemandStreamHours,
    /// GiB written to ON_DEMAND streams, each record rounded up to 1 KiB (counted in
    /// KiB).
    OnDemandIngressGib,
    /// GiB GetRecords read from ON_DEMAND streams (counted in bytes).
    OnDemandEgressGib,
    /// Months a customer managed KMS key exists, prorated hourly (a month is 730
    /// hours).
    KmsKeyMonths,
    /// Consumer-group member requests (join, heartbeat, checkpoint, leave): the lease
    /// table's writes, priced as AWS prices the DynamoDB writes of a KCL lease table.
    ConsumerGroupRequests,
    /// GiB a Firehose delivery stream took in, each record rounded up to 5 KB, as
    /// Firehose bills ingestion (counted in KiB).
    FirehoseIngestedGib,
    /// SQS requests, each 64 KiB of a request's payload one more, as SQS bills them.
    SqsRequests,
    /// SNS publishes, each 64 KiB of a message and its attributes one more, as SNS
    /// bills them.
    SnsRequests,
    /// SNS deliveries into SQS queues (which AWS does not charge for).
    SnsSqsDeliveries,
}

/// The metrics, in report order.
const METRICS: [Metric; 15] = [
    Metric::ShardHours,
    Metric::ExtendedRetentionShardHours,
    Metric::PutPayloadUnits,
    Metric::KmsRequests,
    Metric::ConsumerShardHours,
    Metric::EnhancedFanOutGib,
    Metric::OnDemandStreamHours,
    Metric::OnDemandIngressGib,
    Metric::OnDemandEgressGib,
    Metric::KmsKeyMonths,
    Metric::ConsumerGroupRequests,
    Metric::FirehoseIngestedGib,
    Metric::SqsRequests,
    Metric::SnsRequests,
    Metric::SnsSqsDeliveries,
];

/// A month, for prorating monthly fees (AWS's 730 hours).
pub const MONTH_MS: i64 = 730 * HOUR_MS;

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ShardHours => "shard_hours",
            Metric::ExtendedRetentionShardHours => "extended_retention_shard_hours",
            Metric::PutPayloadUnits => "put_payload_units",
            Metric::KmsRequests => "kms_requests",
            Metric::ConsumerShardHours => "consumer_shard_hours",
            Metric::EnhancedFanOutGib => "enhanced_fan_out_gib",
            Metric::OnDemandStreamHours => "on_demand_stream_hours",
            Metric::OnDemandIngressGib => "on_demand_ingress_gib",
            Metric::OnDemandEgressGib => "on_demand_egress_gib",
            Metric::KmsKeyMonths => "kms_key_months",
            Metric::ConsumerGroupRequests => "consumer_group_requests",
            Metric::FirehoseIngestedGib => "firehose_ingested_gib",
            Metric::SqsRequests => "sqs_requests",
            Metric::SnsRequests => "sns_requests",
            Metric::SnsSqsDeliveries => "sns_sqs_deliveries",
        }
    }

    fn parse(text: &str) -> Option<Metric> {
        match text {
            // Its name before the bill counted it in GiB; its counters were bytes then too.
            "enhanced_fan_out_bytes" => Some(Metric::EnhancedFanOutGib),
            _ => METRICS.into_iter().find(|m| m.as_str() == text),
        }
    }

    /// How many of the base units the meter counts (milliseconds, KiB, bytes, ...)
    /// make one unit of the bill.
    fn base_units(self) -> i64 {
        match self {
            Metric::ShardHours
            | Metric::ExtendedRetentionShardHours
            | Metric::ConsumerShardHours
            | Metric::OnDemandStreamHours => HOUR_MS,
            Metric::KmsKeyMonths => MONTH_MS,
            Metric::OnDemandIngressGib | Metric::FirehoseIngestedGib => 1 << 20,
            Metric::OnDemandEgressGib | Metric::EnhancedFanOutGib => 1 << 30,
            Metric::PutPayloadUnits
            | Metric::KmsRequests
            | Metric::ConsumerGroupRequests
            | Metric::SqsRequests
            | Metric::SnsRequests
            | Metric::SnsSqsDeliveries => 1,
        }
    }
}

/// Prices in US dollars per unit of each metric, as exact decimals (JSON strings or
/// numbers in a price-list file), with the list's version shown on every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceList {
    /// Which list this is (a report names it).
    #[serde(default = "custom_version")]
    pub version: String,
    pub currency: String,
    pub shard_hour: Decimal,
    pub extended_retention_shard_hour: Decimal,
    /// Per PUT payload unit (AWS publishes it per million).
    pub put_payload_unit: Decimal,
    /// Per request (AWS publishes it per 10,000).
    pub kms_request: Decimal,
    #[serde(default = "aws_consumer_shard_hour")]
    pub consumer_shard_hour: Decimal,
    /// Per GiB delivered by enhanced fan-out (AWS publishes it per GB, taken here as
    /// 2^30 bytes).
    #[serde(default = "aws_enhanced_fan_out_gib")]
    pub enhanced_fan_out_gib: Decimal,
    #[serde(default = "aws_on_demand_stream_hour")]
    pub on_demand_stream_hour: Decimal,
    #[serde(default = "aws_on_demand_ingress_gib")]
    pub on_demand_ingress_gib: Decimal,
    #[serde(default = "aws_on_demand_egress_gib")]
    pub on_demand_egress_gib: Decimal,
    /// Per customer managed key per month, prorated hourly.
    #[serde(default = "aws_kms_key_month")]
    pub kms_key_month: Decimal,
    /// Per consumer-group member request (DynamoDB on-demand publishes $0.625 per
    /// million write request units).
    #[serde(default = "aws_consumer_group_request")]
    pub consumer_group_request: Decimal,
    #[serde(default = "aws_firehose_ingested_gib")]
    pub firehose_ingested_gib: Decimal,
    /// Per SQS request (standard queues: $0.40 per million, past the free tier).
    #[serde(default = "aws_sqs_request")]
    pub sqs_request: Decimal,
    /// Per SNS publish request ($0.50 per million, past the free tier).
    #[serde(default = "aws_sns_request")]
    pub sns_request: Decimal,
    /// Per SNS delivery into an SQS queue (free on AWS).
    #[serde(default)]
    pub sns_sqs_delivery: Decimal,
}

/// The version of AWS's published us-east-1 prices this default list holds.
pub const AWS_PRICES_VERSION: &str = "aws-us-east-1-2026-12";

fn custom_version() -> String {
    "custom".into()
}

fn aws_consumer_shard_hour() -> Decimal {
    Decimal::new(15, 3)
}

fn aws_enhanced_fan_out_gib() -> Decimal {
    Decimal::new(13, 3)
}

fn aws_on_demand_stream_hour() -> Decimal {
    Decimal::new(4, 2)
}

fn aws_on_demand_ingress_gib() -> Decimal {
    Decimal::new(8, 2)
}

fn aws_on_demand_egress_gib() -> Decimal {
    Decimal::new(4, 2)
}

fn aws_kms_key_month() -> Decimal {
    Decimal::ONE
}

fn aws_consumer_group_request() -> Decimal {
    Decimal::new(625, 9)
}

/// Firehose Direct PUT and Kinesis-source ingestion, the first 500 TB a month.
fn aws_firehose_ingested_gib() -> Decimal {
    Decimal::new(29, 3)
}

fn aws_sqs_request() -> Decimal {
    Decimal::new(4, 7)
}

fn aws_sns_request() -> Decimal {
    Decimal::new(5, 7)
}

impl Default for PriceList {
    /// AWS's published prices for Kinesis Data Streams and KMS in us-east-1:
    /// provisioned $0.015 per shard-hour, $0.014 per million PUT payload units, $0.020
    /// per shard-hour of extended retention (up to 7 days); on-demand $0.04 per
    /// stream-hour, $0.08 per GB written, $0.04 per GB read; enhanced fan-out $0.015
    /// per consumer-shard-hour and $0.013 per GB; KMS $1 per key-month and $0.03 per
    /// 10,000 requests.
    fn default() -> Self {
        PriceList {
            version: AWS_PRICES_VERSION.into(),
            currency: "USD".into(),
            shard_hour: Decimal::new(15, 3),
            extended_retention_shard_hour: Decimal::new(20, 3),
            put_payload_unit: Decimal::new(14, 9),
            kms_request: Decimal::new(3, 6),
            consumer_shard_hour: aws_consumer_shard_hour(),
            enhanced_fan_out_gib: aws_enhanced_fan_out_gib(),
            on_demand_stream_hour: aws_on_demand_stream_hour(),
            on_demand_ingress_gib: aws_on_demand_ingress_gib(),
            on_demand_egress_gib: aws_on_demand_egress_gib(),
            kms_key_month: aws_kms_key_month(),
            consumer_group_request: aws_consumer_group_request(),
            firehose_ingested_gib: aws_firehose_ingested_gib(),
            sqs_request: aws_sqs_request(),
            sns_request: aws_sns_request(),
            sns_sqs_delivery: Decimal::ZERO,
        }
    }
}

impl PriceList {
    pub fn price(&self, metric: Metric) -> Decimal {
        match metric {
            Metric::ShardHours => self.shard_hour,
            Metric::ExtendedRetentionShardHours => self.extended_retention_shard_hour,
            Metric::PutPayloadUnits => self.put_payload_unit,
            Metric::KmsRequests => self.kms_request,
            Metric::ConsumerShardHours => self.consumer_shard_hour,
            Metric::EnhancedFanOutGib => self.enhanced_fan_out_gib,
            Metric::OnDemandStreamHours => self.on_demand_stream_hour,
            Metric::OnDemandIngressGib => self.on_demand_ingress_gib,
            Metric::OnDemandEgressGib => self.on_demand_egress_gib,
            Metric::KmsKeyMonths => self.kms_key_month,
            Metric::ConsumerGroupRequests => self.consumer_group_request,
            Metric::FirehoseIngestedGib => self.firehose_ingested_gib,
            Metric::SqsRequests => self.sqs_request,
            Metric::SnsRequests => self.sns_request,
            Metric::SnsSqsDeliveries => self.sns_sqs_delivery,
        }
    }

    /// Every price must be non-negative, and the version short and printable.
    pub fn check(&self) -> Result<(), String> {
        for metric in METRICS {
            let v = self.price(metric);
            if v.is_sign_negative() {
                return Err(format!(
                    "the price of {} must not be negative, got {v}",
                    metric.as_str()
                ));
            }
        }
        if self.version.is_empty()
            || self.version.len() > 64
            || !self.version.chars().all(|c| c.is_ascii_graphic())
        {
            return Err("the price list's version is 1 to 64 printable characters".into());
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
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub cost: Decimal,
}

/// KiB one record of `bytes` bills on an ON_DEMAND stream (rounded up, at least 1).
pub fn ingress_kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024).max(1)
}

/// Firehose bills ingestion in 5 KB increments: KiB one record of `bytes` bills.
pub fn firehose_ingested_kib(bytes: u64) -> u64 {
    bytes.div_ceil(5 * 1024).max(1) * 5
}

/// PUT payload units of one record of `bytes` (data and partition key).
pub fn put_payload_units(bytes: u64) -> u64 {
    bytes.div_ceil(PUT_PAYLOAD_UNIT_BYTES).max(1)
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Adds [start, end) split at UTC hour boundaries, in milliseconds per hour.
fn split_hours(start: i64, end: i64, mut add: impl FnMut(i64, i64)) {
    let mut t = start;
    while t < end {
        let hour = hour_of(t);
        let until = (hour + HOUR_MS).min(end);
        add(hour, until - t);
        t = until;
    }
}

/// The parts of [start, end) outside every window of `holes`.
fn outside(start: i64, end: i64, holes: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut parts = vec![(start, end)];
    for &(h_start, h_end) in holes {
        parts = parts
            .into_iter()
            .flat_map(|(s, e)| {
                let mut kept = Vec::new();
                if s < h_start.min(e) {
                    kept.push((s, h_start.min(e)));
                }
                if h_end.max(s) < e {
                    kept.push((h_end.max(s), e));
                }
                kept
            })
            .collect();
    }
    parts
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
/// The id column of an ON_DEMAND interval.
const ON_DEMAND_ID: i64 = -2;

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

    /// Records, inside the transaction that set it, whether a stream is ON_DEMAND from
    /// `now_ms` (an open ON_DEMAND interval bills stream-hours instead of shard-hours).
    pub(crate) async fn meter_on_demand(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        account_id: &str,
        stream_name: &str,
        stream_id: i64,
        on_demand: bool,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        Self::meter_closed(tx, stream_id, "on_demand", ON_DEMAND_ID, now_ms).await?;
        if on_demand {
            let interval = Metered::of("on_demand", ON_DEMAND_ID);
            Self::meter_opened(tx, account_id, stream_name, stream_id, interval, now_ms).await?;
        }
        Ok(())
    }

    /// Opens a customer managed key's monthly fee at `now_ms` (its id in the stream
    /// column: a report has a line per key).
    pub(crate) async fn meter_key_created(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        account_id: &str,
        key_id: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let interval = Metered::of("kms_key", 0);
        Self::meter_opened(tx, account_id, key_id, 0, interval, now_ms).await
    }

    /// Ends a key's fee at `now_ms` (`None`: the key never was, and neither is its fee).
    pub(crate) async fn meter_key_gone(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        key_id: &str,
        now_ms: Option<i64>,
    ) -> Result<(), CatalogError> {
        let query = match now_ms {
            Some(now) => sqlx::query(
                "UPDATE usage_intervals SET closed_at_ms = $2 WHERE kind = 'kms_key' \
                 AND stream_name = $1 AND closed_at_ms IS NULL",
            )
            .bind(key_id)
            .bind(now),
            None => sqlx::query(
                "DELETE FROM usage_intervals WHERE kind = 'kms_key' AND stream_name = $1",
            )
            .bind(key_id),
        };
        query.execute(&mut **tx).await?;
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
        crate::groupcommit::count_usage(
            tx,
            account_id,
            stream_name,
            metric.as_str(),
            quantity,
            hour_of(now_ms),
        )
        .await
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
        // Base units (milliseconds for time, the counters' own units) per stream, UTC
        // hour and metric: integers, turned into billed units once, at the end.
        let mut totals: BTreeMap<(String, i64, Metric), i128> = BTreeMap::new();
        let mut add = |stream: &str, hour: i64, metric: Metric, base: i64| {
            *totals
                .entry((stream.to_string(), hour, metric))
                .or_default() += i128::from(base);
        };
        let of_kind = |kind: &str| -> Vec<&Interval> {
            intervals.iter().filter(|i| i.kind == kind).collect()
        };
        let (shards, consumers, on_demand, keys) = (
            of_kind("shard"),
            of_kind("consumer"),
            of_kind("on_demand"),
            of_kind("kms_key"),
        );
        let extended: Vec<&Interval> = intervals
            .iter()
            .filter(|i| i.kind == "retention" && i.retention_hours > RETENTION_INCLUDED_HOURS)
            .collect();
        for od in &on_demand {
            let (start, end) = window(od);
            split_hours(start, end, |hour, ms| {
                add(&od.stream, hour, Metric::OnDemandStreamHours, ms)
            });
        }
        for key in &keys {
            let (start, end) = window(key);
            split_hours(start, end, |hour, ms| {
                add(&key.stream, hour, Metric::KmsKeyMonths, ms)
            });
        }
        for shard in &shards {
            let (start, end) = window(shard);
            // While its stream is ON_DEMAND, a shard bills nothing of its own.
            let holes: Vec<(i64, i64)> = on_demand
                .iter()
                .filter(|o| o.stream_id == shard.stream_id)
                .map(|o| window(o))
                .collect();
            for (start, end) in outside(start, end, &holes) {
                split_hours(start, end, |hour, ms| {
                    add(&shard.stream, hour, Metric::ShardHours, ms)
                });
                // Each registered consumer bills each hour its stream's shards are open.
                for c in consumers.iter().filter(|c| c.stream_id == shard.stream_id) {
                    let (c_start, c_end) = window(c);
                    split_hours(start.max(c_start), end.min(c_end), |hour, ms| {
                        add(&shard.stream, hour, Metric::ConsumerShardHours, ms)
                    });
                }
                for r in extended.iter().filter(|r| r.stream_id == shard.stream_id) {
                    let (r_start, r_end) = window(r);
                    split_hours(start.max(r_start), end.min(r_end), |hour, ms| {
                        add(&shard.stream, hour, Metric::ExtendedRetentionShardHours, ms)
                    });
                }
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
            let stream: String = row.try_get("stream_name")?;
            add(&stream, row.try_get("hour_ms")?, metric, quantity);
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
            .filter(|(_, base)| *base > 0)
            .map(|((stream, hour, metric), base)| {
                let unit_price = prices.price(metric);
                let quantity =
                    Decimal::from_i128_with_scale(base, 0) / Decimal::from(metric.base_units());
                UsageLine {
                    account_id: account_id.to_string(),
                    stream,
                    hour_start_ms: hour,
                    metric,
                    quantity: quantity.normalize(),
                    unit_price,
                    cost: (quantity * unit_price).normalize(),
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
            vec![(0, HOUR_MS / 2), (HOUR_MS, HOUR_MS), (2 * HOUR_MS, 1)]
        );
        assert_eq!(outside(0, 10, &[(2, 4), (6, 20)]), vec![(0, 2), (4, 6)]);
        assert_eq!(outside(5, 10, &[(0, 3)]), vec![(5, 10)]);
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
                    .map_or(Decimal::ZERO, |l| l.quantity)
            };
            let d = |text: &str| text.parse::<Decimal>().unwrap();
            // 2 shards x 30 min, x 60 min, x 45 min.
            assert_eq!(get(0, Metric::ShardHours), d("1"));
            assert_eq!(get(1, Metric::ShardHours), d("2"));
            assert_eq!(get(2, Metric::ShardHours), d("1.5"));
            // Extended retention from 01:15: 2 x 45 min, then 2 x 45 min.
            assert_eq!(get(0, Metric::ExtendedRetentionShardHours), d("0"));
            assert_eq!(get(1, Metric::ExtendedRetentionShardHours), d("1.5"));
            assert_eq!(get(2, Metric::ExtendedRetentionShardHours), d("1.5"));
            assert_eq!(get(0, Metric::PutPayloadUnits), d("4"));
            assert_eq!(get(1, Metric::PutPayloadUnits), d("1"));
            assert!(lines.iter().all(|l| l.hour_start_ms < t0 + 3 * HOUR_MS));
            // Exactly: 4.5 x 0.015 + 3 x 0.020 + 5 x 0.000000014.
            let total: Decimal = lines.iter().map(|l| l.cost).sum();
            assert_eq!(total, d("0.12750007"), "{total}");
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
            let total = |stream: &str, metric: Metric| -> Decimal {
                lines
                    .iter()
                    .filter(|l| l.stream == stream && l.metric == metric)
                    .map(|l| l.quantity)
                    .sum()
            };
            let n = Decimal::from;
            // 2 x 24 h + 3 x 30 h + 2 x 18 h + 4 x 72 h.
            assert_eq!(total("week", Metric::ShardHours), n(462));
            // Above 24 h from 48 h to 120 h: 3 x 6 h + 2 x 18 h + 4 x 48 h.
            assert_eq!(total("week", Metric::ExtendedRetentionShardHours), n(246));
            assert_eq!(total("week", Metric::PutPayloadUnits), n(10));
            // 4 shards x 24 h, then 4 shards x 12 h.
            assert_eq!(total("week", Metric::ConsumerShardHours), n(144));
            assert_eq!(total("other", Metric::ShardHours), n(72));
            assert_eq!(total("other", Metric::ExtendedRetentionShardHours), n(0));
            // The hour of the split counts the three shards that followed it.
            let hour = |h: i64| {
                lines
                    .iter()
                    .filter(|l| l.stream == "week" && l.metric == Metric::ShardHours)
                    .find(|l| l.hour_start_ms == at(h))
                    .map_or(Decimal::ZERO, |l| l.quantity)
            };
            assert_eq!((hour(23), hour(24), hour(72)), (n(2), n(3), n(4)));
            assert_eq!(hour(144), n(0));
            // The bill in exact decimals: shard-hours, extended retention, PUT units
            // and consumer-shard-hours of both streams at AWS's prices.
            let cost: Decimal = lines.iter().map(|l| l.cost).sum();
            assert_eq!(
                cost,
                "6.93".parse::<Decimal>().unwrap()
                    + "1.08".parse::<Decimal>().unwrap()
                    + "4.92".parse::<Decimal>().unwrap()
                    + "0.00000014".parse::<Decimal>().unwrap()
                    + "2.16".parse::<Decimal>().unwrap(),
                "{cost}"
            );
        }
    }

    /// An ON_DEMAND stream on a driven clock: stream-hours instead of shard-hours while
    /// it is on demand, GiB in and out, then shard-hours again after switching back;
    /// and a customer managed key's monthly fee, prorated hourly, until destroyed.
    #[tokio::test]
    async fn on_demand_streams_and_keys_bill_as_aws_does() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let t0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
            let at = |hours: i64| t0 + hours * HOUR_MS;
            let mut new = crate::testing::provisioned_stream("od", 4);
            new.mode = crate::streams::StreamMode::OnDemand;
            new.now_ms = at(0);
            catalog.create_stream(&new).await.unwrap();
            let account = new.account_id;
            // 3 GiB in (in KiB) and 1.5 GiB out in the first hour.
            catalog
                .meter_count_now(account, "od", Metric::OnDemandIngressGib, 3 << 20, at(0))
                .await
                .unwrap();
            catalog
                .meter_count_now(account, "od", Metric::OnDemandEgressGib, 3 << 29, at(0))
                .await
                .unwrap();
            // Provisioned from 10 h to 20 h, on demand again, deleted at 30 h.
            for (hours, mode) in [
                (10, crate::streams::StreamMode::Provisioned),
                (20, crate::streams::StreamMode::OnDemand),
            ] {
                catalog
                    .set_stream_mode(account, "od", mode, "us-east-1", 50, None, at(hours))
                    .await
                    .unwrap();
            }
            catalog.delete_stream(account, "od", at(30)).await.unwrap();
            // 20,000 KMS requests and 2 GiB of enhanced fan-out, counted at 05:00.
            catalog
                .meter_count_now(account, "", Metric::KmsRequests, 20_000, at(5))
                .await
                .unwrap();
            catalog
                .meter_count_now(account, "od", Metric::EnhancedFanOutGib, 2 << 30, at(5))
                .await
                .unwrap();
            let root = crate::rootkey::RootKey::from_bytes(&[4u8; 32]).unwrap();
            let key = catalog
                .create_master_key(
                    &root,
                    account,
                    "billed",
                    crate::masterkeys::KeyManager::Customer,
                    at(0),
                )
                .await
                .unwrap();
            catalog
                .create_master_key(
                    &root,
                    account,
                    "aws managed",
                    crate::masterkeys::KeyManager::Aws,
                    at(0),
                )
                .await
                .unwrap();
            let lines = catalog
                .usage_report(account, at(0), at(73), at(73), &PriceList::default())
                .await
                .unwrap();
            let total = |metric: Metric| -> Decimal {
                lines
                    .iter()
                    .filter(|l| l.metric == metric)
                    .map(|l| l.quantity)
                    .sum()
            };
            let d = |text: &str| text.parse::<Decimal>().unwrap();
            assert_eq!(total(Metric::OnDemandStreamHours), d("20"));
            // 4 shards for the 10 provisioned hours only.
            assert_eq!(total(Metric::ShardHours), d("40"));
            assert_eq!(total(Metric::OnDemandIngressGib), d("3"));
            assert_eq!(total(Metric::OnDemandEgressGib), d("1.5"));
            // One customer managed key for 73 hours: 73/730 of a month; the AWS
            // managed one is free. An hour is 1/730 of a month, which no decimal holds
            // exactly: each line carries 28 significant digits, and the sum agrees to
            // far below a billable amount.
            assert_eq!(total(Metric::KmsKeyMonths).round_dp(20), d("0.1"));
            assert!(
                lines
                    .iter()
                    .filter(|l| l.metric == Metric::KmsKeyMonths)
                    .all(|l| l.stream == key.key_id)
            );
            let cost: Decimal = lines.iter().map(|l| l.cost).sum();
            assert_eq!(total(Metric::KmsRequests), d("20000"));
            assert_eq!(total(Metric::EnhancedFanOutGib), d("2"));
            // 20 x 0.04 + 40 x 0.015 + 3 x 0.08 + 1.5 x 0.04 + 0.1 x 1, and 20,000 KMS
            // requests at 0.03 per 10,000 and 2 GiB of fan-out at 0.013 per GiB.
            assert_eq!(cost.round_dp(20), d("1.886"), "{cost}");
        }
    }
}
