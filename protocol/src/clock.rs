//! Time as a value: every expiry, lease, retention window, billing hour and signing
//! check asks a `Clock` handed to it, so a test drives a week in a millisecond.
//!
//! INVARIANT: `SystemClock` is the only place the server reads the wall clock.
//! Monotonic `Instant`s (cache ages, latencies) are not time decisions and stay local.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;

    /// Whole seconds since the epoch (floored).
    fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1_000)
    }

    /// Microseconds since the epoch; a manual clock has millisecond resolution.
    fn now_us(&self) -> i64 {
        self.now_ms().saturating_mul(1_000)
    }
}

/// The clock every component shares.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }

    fn since_epoch() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        i64::try_from(Self::since_epoch().as_millis()).unwrap_or(i64::MAX)
    }

    fn now_us(&self) -> i64 {
        i64::try_from(Self::since_epoch().as_micros()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told: for tests of expiries, leases and billing hours.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    pub fn at(now_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now_ms: AtomicI64::new(now_ms),
        })
    }

    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// A clock's time as a UTC date-time (what a client signs with).
pub fn now_utc(clock: &dyn Clock) -> chrono::DateTime<chrono::Utc> {
    utc(clock.now_ms())
}

/// Milliseconds since the epoch as a UTC date-time (SigV4's signing times).
/// A moment as Java's `Date.toString` prints it in UTC ("Sat Dec 05 12:00:00 UTC 2026"),
/// the form AWS's Java services put in some messages.
pub fn java_date(epoch_ms: i64) -> String {
    utc(epoch_ms).format("%a %b %d %H:%M:%S UTC %Y").to_string()
}

pub fn utc(now_ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates() {
        // 2026-12-05T12:00:00Z
        assert_eq!(java_date(1_796_472_000_000), "Sat Dec 05 12:00:00 UTC 2026");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.now_s(), 1);
        clock.advance(Duration::from_secs(7 * 24 * 3600));
        assert_eq!(clock.now_ms(), 1_000 + 604_800_000);
        clock.set_ms(-1);
        assert_eq!(clock.now_s(), -1, "seconds floor, also before the epoch");
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
        assert_eq!(utc(0).timestamp(), 0);
    }
}
