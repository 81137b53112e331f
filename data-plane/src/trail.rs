//! What joins the audit trail besides each authorization decision, bounded so that no
//! outsider can flood a tenant's trail: failed authentication (per client address),
//! and denials of one tenant's requests on another tenant's resources (per pair of
//! tenants). Each source writes its first `ROWS_PER_MINUTE` rows a minute one by one;
//! the rest of that minute become one aggregate row that says how many there were,
//! so every refusal is still accounted for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use catalog::audit::AuditEntry;

/// Rows one source writes one by one each minute.
pub const ROWS_PER_MINUTE: u32 = 20;
/// Sources tracked at once; when full, the oldest minute's are aggregated early.
const SOURCES_MAX: usize = 10_000;

/// Whose rows are limited together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// Failed authentication from one client address.
    Address(IpAddr),
    /// Denials of `principal_account`'s requests on `resource_account`'s resources.
    Tenants {
        principal_account: String,
        resource_account: String,
    },
}

struct Window {
    minute: i64,
    written: u32,
    suppressed: u64,
    /// The last suppressed entry, the model of the aggregate row.
    last: Option<AuditEntry>,
}

/// The per-source minute windows.
#[derive(Default)]
pub struct Limiter {
    windows: Mutex<HashMap<Source, Window>>,
}

impl Limiter {
    /// Whether `entry` is written now (`true`) or counted into its source's aggregate.
    pub fn admit(&self, source: Source, entry: &AuditEntry) -> bool {
        let minute = entry.at_ms.div_euclid(60_000);
        let mut windows = self.windows.lock().expect("trail limiter");
        if windows.len() >= SOURCES_MAX && !windows.contains_key(&source) {
            return false;
        }
        let window = windows.entry(source).or_insert(Window {
            minute,
            written: 0,
            suppressed: 0,
            last: None,
        });
        if window.minute != minute && window.suppressed == 0 {
            window.minute = minute;
            window.written = 0;
        }
        if window.minute == minute && window.written < ROWS_PER_MINUTE {
            window.written += 1;
            return true;
        }
        window.suppressed += 1;
        window.last = Some(entry.clone());
        false
    }

    /// The aggregate rows of minutes that have ended (all of them with `everything`,
    /// at shutdown), and windows no longer needed forgotten.
    pub fn drain(&self, now_ms: i64, everything: bool) -> Vec<AuditEntry> {
        let minute = now_ms.div_euclid(60_000);
        let mut windows = self.windows.lock().expect("trail limiter");
        let full = windows.len() >= SOURCES_MAX;
        let mut aggregates = Vec::new();
        windows.retain(|_, window| {
            if window.minute == minute && !everything && !full {
                return true;
            }
            if let Some(mut row) = window.last.take() {
                row.id = 0;
                row.at_ms = now_ms;
                row.request_id = String::new();
                row.policies = vec![format!(
                    "aggregated: {} more like this in the minute from {} (only the first {} are written one by one)",
                    window.suppressed,
                    chrono::DateTime::from_timestamp(window.minute * 60, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                    ROWS_PER_MINUTE
                )];
                aggregates.push(row);
            }
            false
        });
        aggregates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: i64) -> AuditEntry {
        AuditEntry {
            id: 0,
            at_ms,
            request_id: "r".into(),
            principal_account: "111111111111".into(),
            principal: "p".into(),
            action: "kinesis:PutRecord".into(),
            resource_account: "222222222222".into(),
            resource: "arn".into(),
            decision: "Deny".into(),
            policies: vec![],
            source_ip: "127.0.0.1".into(),
            tls_version: "TLSv1.3".into(),
        }
    }

    #[test]
    fn a_flood_becomes_its_first_rows_and_one_aggregate() {
        let limiter = Limiter::default();
        let source = || Source::Address("10.0.0.1".parse().unwrap());
        let written = (0..1_000)
            .filter(|i| limiter.admit(source(), &entry(60_000 + i)))
            .count();
        assert_eq!(written, ROWS_PER_MINUTE as usize);
        // Another source is not held back by the first.
        assert!(limiter.admit(Source::Address("10.0.0.2".parse().unwrap()), &entry(60_001)));
        // Nothing is aggregated while the minute lasts ...
        assert!(limiter.drain(119_999, false).is_empty());
        // ... and once it ends, one row counts the rest.
        let rows = limiter.drain(120_000, false);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].policies[0].starts_with("aggregated: 980 more like this"));
        // The next minute starts afresh.
        assert!(limiter.admit(source(), &entry(120_001)));
    }
}
