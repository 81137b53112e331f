//! Kinesis settings: a stream's enhanced monitoring, record distribution and warm
//! throughput, and the account's minimum throughput billing commitment
//! (DescribeAccountSettings, UpdateAccountSettings).

use sqlx::Row;

use crate::{Catalog, CatalogError};

/// AWS's minimum commitment window: a commitment cannot end sooner after it started.
pub const COMMITMENT_MINIMUM_MS: i64 = 24 * 60 * 60 * 1000;

/// The commitment as stored: when it started and, once a disable was asked for, when it
/// ends (or ended).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Commitment {
    pub started_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
}

/// What the commitment is at a moment, as Kinesis reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmentStatus {
    Enabled,
    Disabled,
    EnabledUntilEarliestAllowedEnd,
}

impl CommitmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentStatus::Enabled => "ENABLED",
            CommitmentStatus::Disabled => "DISABLED",
            CommitmentStatus::EnabledUntilEarliestAllowedEnd => {
                "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
            }
        }
    }
}

impl Commitment {
    pub fn status(&self, now_ms: i64) -> CommitmentStatus {
        match (self.started_at_ms, self.ends_at_ms) {
            (None, _) => CommitmentStatus::Disabled,
            (Some(_), None) => CommitmentStatus::Enabled,
            (Some(_), Some(end)) if end > now_ms => {
                CommitmentStatus::EnabledUntilEarliestAllowedEnd
            }
            (Some(_), Some(_)) => CommitmentStatus::Disabled,
        }
    }

    /// The earliest moment the commitment may end, while it is (or was) on.
    pub fn earliest_allowed_end_ms(&self) -> Option<i64> {
        self.started_at_ms.map(|s| s + COMMITMENT_MINIMUM_MS)
    }

    /// The commitment after an UpdateAccountSettings asking for `enable` at `now_ms`:
    /// enabling starts a commitment (or cancels a pending end); disabling ends it now
    /// if its minimum window has passed, else at the window's end.
    pub fn updated(&self, enable: bool, now_ms: i64) -> Commitment {
        let status = self.status(now_ms);
        match (enable, status) {
            (true, CommitmentStatus::Disabled) => Commitment {
                started_at_ms: Some(now_ms),
                ends_at_ms: None,
            },
            (true, _) => Commitment {
                started_at_ms: self.started_at_ms,
                ends_at_ms: None,
            },
            (false, CommitmentStatus::Enabled) => Commitment {
                started_at_ms: self.started_at_ms,
                ends_at_ms: Some(
                    self.earliest_allowed_end_ms()
                        .map_or(now_ms, |earliest| earliest.max(now_ms)),
                ),
            },
            (false, _) => *self,
        }
    }
}

impl Catalog {
    /// Sets the shard-level metrics enhanced monitoring reports for a stream.
    pub async fn set_shard_level_metrics(
        &self,
        stream_id: i64,
        metrics: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE streams SET shard_level_metrics = $2 WHERE stream_id = $1")
            .bind(stream_id)
            .bind(metrics)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets the warm throughput an on-demand stream keeps shards for.
    pub async fn set_warm_throughput(
        &self,
        stream_id: i64,
        mibps: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE streams SET warm_throughput_mibps = $2 WHERE stream_id = $1")
            .bind(stream_id)
            .bind(mibps)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets the largest record a stream takes (UpdateMaxRecordSize).
    pub async fn set_max_record_size(&self, stream_id: i64, kib: i64) -> Result<(), CatalogError> {
        sqlx::query("UPDATE streams SET max_record_size_kib = $2 WHERE stream_id = $1")
            .bind(stream_id)
            .bind(kib)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets how a stream places records on its shards (USER_PARTITION_KEY or AUTO).
    pub async fn set_record_distribution(
        &self,
        stream_id: i64,
        strategy: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE streams SET record_distribution = $2 WHERE stream_id = $1")
            .bind(stream_id)
            .bind(strategy)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn commitment(&self, account_id: &str) -> Result<Commitment, CatalogError> {
        let row = sqlx::query(
            "SELECT commitment_started_at_ms, commitment_ends_at_ms FROM account_settings \
             WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) => Commitment {
                started_at_ms: row.try_get("commitment_started_at_ms")?,
                ends_at_ms: row.try_get("commitment_ends_at_ms")?,
            },
            None => Commitment::default(),
        })
    }

    /// Applies an UpdateAccountSettings in one transaction and returns the result.
    pub async fn update_commitment(
        &self,
        account_id: &str,
        enable: bool,
        now_ms: i64,
    ) -> Result<Commitment, CatalogError> {
        let mut tx = self.begin_write().await?;
        // The write comes first, so SQLite's write lock is held before the read.
        sqlx::query(
            "INSERT INTO account_settings (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT commitment_started_at_ms, commitment_ends_at_ms FROM account_settings \
             WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        let before = Commitment {
            started_at_ms: row.try_get("commitment_started_at_ms")?,
            ends_at_ms: row.try_get("commitment_ends_at_ms")?,
        };
        let after = before.updated(enable, now_ms);
        sqlx::query(
            "UPDATE account_settings SET commitment_started_at_ms = $2, commitment_ends_at_ms = $3 \
             WHERE account_id = $1",
        )
        .bind(account_id)
        .bind(after.started_at_ms)
        .bind(after.ends_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * 60 * 1000;

    #[test]
    fn a_commitment_lasts_at_least_a_day() {
        let off = Commitment::default();
        assert_eq!(off.status(0), CommitmentStatus::Disabled);
        let on = off.updated(true, 10 * HOUR);
        assert_eq!(on.status(11 * HOUR), CommitmentStatus::Enabled);
        assert_eq!(on.earliest_allowed_end_ms(), Some(34 * HOUR));
        // Disabled early: on until the window ends, then off.
        let ending = on.updated(false, 12 * HOUR);
        assert_eq!(ending.ends_at_ms, Some(34 * HOUR));
        assert_eq!(
            ending.status(20 * HOUR),
            CommitmentStatus::EnabledUntilEarliestAllowedEnd
        );
        assert_eq!(ending.status(34 * HOUR), CommitmentStatus::Disabled);
        // Enabled again before then: the pending end is cancelled, the start kept.
        let kept = ending.updated(true, 20 * HOUR);
        assert_eq!(kept, on);
        // Disabled after the window: off at once.
        let late = on.updated(false, 40 * HOUR);
        assert_eq!(late.status(40 * HOUR), CommitmentStatus::Disabled);
        assert_eq!(late.ends_at_ms, Some(40 * HOUR));
        // Enabled again after that: a new commitment from now.
        let again = late.updated(true, 50 * HOUR);
        assert_eq!(again.started_at_ms, Some(50 * HOUR));
        assert_eq!(again.status(50 * HOUR), CommitmentStatus::Enabled);
    }
}
