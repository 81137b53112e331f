//! Per-shard write budgets that several data-plane processes share through the catalog.
//!
//! A shard's rate (records or bytes per second) is a budget per one-second window of
//! wall-clock time. A process leases a slice of the current window's budget with one
//! statement and spends it in memory, so it pays one round trip per slice, not per
//! record; once the window's budget is leased out, every process refuses until the
//! next window.

use crate::{Catalog, CatalogError};

/// The budgets a shard's writes draw on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteBudget {
    Records,
    Bytes,
}

impl WriteBudget {
    fn as_str(self) -> &'static str {
        match self {
            WriteBudget::Records => "write_records",
            WriteBudget::Bytes => "write_bytes",
        }
    }
}

/// Windows older than this many seconds are deleted by `expire_write_budgets`; a
/// process's clock may lag the others' by less than this without losing its counters.
pub const WRITE_BUDGET_WINDOWS_KEPT: i64 = 10;

/// One shard's budget in one window: whose, which and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetWindow {
    pub stream_id: i64,
    pub shard_ordinal: u64,
    pub budget: WriteBudget,
    /// Seconds since the Unix epoch.
    pub window_s: i64,
}

impl Catalog {
    /// Leases up to `want` of `rate` from a shard's budget for one window and returns
    /// what was granted: `want`, or what was left when less was, or 0 once the window's
    /// budget is spent.
    ///
    /// INVARIANT: check and increment are one statement (Postgres takes the row lock,
    /// SQLite its write lock), so the grants of a window sum to at most `rate`, whatever
    /// the number of processes asking.
    pub async fn lease_write_budget(
        &self,
        window: BudgetWindow,
        want: u64,
        rate: u64,
    ) -> Result<u64, CatalogError> {
        let rate = i64::try_from(rate).unwrap_or(i64::MAX);
        let want = i64::try_from(want).unwrap_or(i64::MAX).min(rate);
        if want <= 0 {
            return Ok(0);
        }
        // All right-hand sides of the SET read the row as it was, so `granted` is what
        // this lease added to `used`.
        let granted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO shard_write_budgets (stream_id, shard_ordinal, budget, window_s, used, granted) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (stream_id, shard_ordinal, budget, window_s) DO UPDATE SET \
             granted = CASE WHEN shard_write_budgets.used + $5 > $6 \
                 THEN $6 - shard_write_budgets.used ELSE $5 END, \
             used = CASE WHEN shard_write_budgets.used + $5 > $6 \
                 THEN $6 ELSE shard_write_budgets.used + $5 END \
             WHERE shard_write_budgets.used < $6 \
             RETURNING granted",
        )
        .bind(window.stream_id)
        .bind(i64::try_from(window.shard_ordinal).unwrap_or(i64::MAX))
        .bind(window.budget.as_str())
        .bind(window.window_s)
        .bind(want)
        .bind(rate)
        .fetch_optional(self.pool())
        .await?;
        match granted {
            None => Ok(0),
            Some(g) if (0..=want).contains(&g) => Ok(g as u64),
            Some(g) => Err(CatalogError::Corrupt {
                what: format!("shard write budget lease granted {g} of {want}"),
            }),
        }
    }

    /// Deletes the budgets of windows before `before_window_s`; returns how many.
    pub async fn expire_write_budgets(&self, before_window_s: i64) -> Result<u64, CatalogError> {
        let done = sqlx::query("DELETE FROM shard_write_budgets WHERE window_s < $1")
            .bind(before_window_s)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(shard_ordinal: u64, budget: WriteBudget, window_s: i64) -> BudgetWindow {
        BudgetWindow {
            stream_id: 7,
            shard_ordinal,
            budget,
            window_s,
        }
    }

    #[tokio::test]
    async fn leases_of_a_window_never_sum_past_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let w = window(0, WriteBudget::Records, 1_000);
            // 200 a second in slices of 15: 13 whole slices, then the 5 left, then none.
            let mut grants = Vec::new();
            for _ in 0..16 {
                grants.push(catalog.lease_write_budget(w, 15, 200).await.unwrap());
            }
            assert_eq!(&grants[..13], &[15; 13]);
            assert_eq!(&grants[13..], &[5, 0, 0]);
            assert_eq!(grants.iter().sum::<u64>(), 200);
            // Another budget, shard or window starts from nothing.
            let bytes = window(0, WriteBudget::Bytes, 1_000);
            assert_eq!(
                catalog.lease_write_budget(bytes, 15, 200).await.unwrap(),
                15
            );
            let shard1 = window(1, WriteBudget::Records, 1_000);
            assert_eq!(
                catalog.lease_write_budget(shard1, 15, 200).await.unwrap(),
                15
            );
            let next = window(0, WriteBudget::Records, 1_001);
            assert_eq!(catalog.lease_write_budget(next, 15, 200).await.unwrap(), 15);
            // A slice larger than the rate is cut to the rate; nothing asked, nothing given.
            let big = window(2, WriteBudget::Bytes, 1_000);
            assert_eq!(
                catalog.lease_write_budget(big, 500, 200).await.unwrap(),
                200
            );
            assert_eq!(catalog.lease_write_budget(big, 1, 200).await.unwrap(), 0);
            assert_eq!(catalog.lease_write_budget(next, 0, 200).await.unwrap(), 0);
            // Old windows go; the current ones stay.
            assert_eq!(catalog.expire_write_budgets(1_001).await.unwrap(), 4);
            assert_eq!(catalog.lease_write_budget(next, 15, 200).await.unwrap(), 15);
        }
    }

    #[tokio::test]
    async fn concurrent_leases_share_one_budget() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let w = window(0, WriteBudget::Records, 2_000);
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let catalog = catalog.clone();
                    tokio::spawn(async move {
                        let mut got = 0;
                        for _ in 0..10 {
                            got += catalog.lease_write_budget(w, 7, 300).await.unwrap();
                        }
                        got
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            // 8 x 10 x 7 = 560 asked of 300.
            assert_eq!(total, 300);
        }
    }
}
