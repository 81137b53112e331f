//! S3 object names as Firehose makes them: `<evaluated prefix><suffix>`. A prefix may
//! hold `!{timestamp:<Java DateTimeFormatter pattern>}` (the oldest record's arrival,
//! UTC), `!{firehose:random-string}` and, in an error prefix,
//! `!{firehose:error-output-type}`. A prefix with no timestamp expression gets
//! `yyyy/MM/dd/HH/` appended; the suffix is
//! `<stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><extension>`.

use chrono::{DateTime, Datelike, Timelike, Utc};

use protocol::{ApiError, ErrorCode};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Timestamp(String),
    RandomString,
    ErrorOutputType,
    PartitionKey(String),
}

fn parse(prefix: &str) -> Result<Vec<Piece>, ApiError> {
    let mut pieces = Vec::new();
    let mut rest = prefix;
    while let Some(at) = rest.find("!{") {
        if at > 0 {
            pieces.push(Piece::Text(rest[..at].to_string()));
        }
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| {
            invalid(format!(
                "The prefix {prefix:?} has an unclosed !{{ expression."
            ))
        })?;
        let expression = &after[..end];
        let (namespace, value) = expression.split_once(':').ok_or_else(|| {
            invalid(format!(
                "The expression !{{{expression}}} must be !{{namespace:value}}."
            ))
        })?;
        pieces.push(match (namespace, value) {
            ("timestamp", pattern) => {
                check_pattern(pattern)?;
                Piece::Timestamp(pattern.to_string())
            }
            ("firehose", "random-string") => Piece::RandomString,
            ("firehose", "error-output-type") => Piece::ErrorOutputType,
            ("partitionKeyFromQuery", key) if !key.is_empty() => Piece::PartitionKey(key.to_string()),
            ("partitionKeyFromLambda", _) => {
                return Err(invalid(format!(
                    "The expression !{{{expression}}} needs a Lambda processor, which Sluice does not have."
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "The expression !{{{expression}}} is not one Firehose evaluates."
                )));
            }
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// Checks a prefix as CreateDeliveryStream does: partition keys only with dynamic
/// partitioning on (and then the prefix must use one), the error type only in an
/// error prefix.
pub fn check(prefix: &str, is_error_prefix: bool, partitioned: bool) -> Result<(), ApiError> {
    let pieces = parse(prefix)?;
    if !is_error_prefix && pieces.contains(&Piece::ErrorOutputType) {
        return Err(invalid(
            "!{firehose:error-output-type} may be used only in ErrorOutputPrefix.",
        ));
    }
    let keyed = pieces.iter().any(|p| matches!(p, Piece::PartitionKey(_)));
    if keyed && (is_error_prefix || !partitioned) {
        return Err(invalid(
            "!{partitionKeyFromQuery:...} needs DynamicPartitioningConfiguration enabled, and only in Prefix.",
        ));
    }
    if partitioned && !is_error_prefix && !keyed {
        return Err(invalid(
            "With dynamic partitioning, Prefix must use at least one !{partitionKeyFromQuery:...} expression.",
        ));
    }
    Ok(())
}

/// The partition keys a prefix names.
pub fn partition_keys(prefix: &str) -> Vec<String> {
    parse(prefix)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p {
            Piece::PartitionKey(k) => Some(k),
            _ => None,
        })
        .collect()
}

/// The letters of a DateTimeFormatter pattern Sluice formats: years, months, days,
/// hours, minutes, seconds; text between single quotes is literal.
fn check_pattern(pattern: &str) -> Result<(), ApiError> {
    format_time(pattern, DateTime::<Utc>::UNIX_EPOCH).map(|_| ())
}

fn format_time(pattern: &str, at: DateTime<Utc>) -> Result<String, ApiError> {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let close = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or_else(|| {
                    invalid(format!(
                        "The timestamp pattern {pattern:?} has an unclosed quote."
                    ))
                })?;
            out.extend(&chars[i + 1..i + 1 + close]);
            i += close + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let value: i64 = match c {
            'y' | 'u' => i64::from(at.year()),
            'M' => i64::from(at.month()),
            'd' => i64::from(at.day()),
            'H' => i64::from(at.hour()),
            'm' => i64::from(at.minute()),
            's' => i64::from(at.second()),
            _ => {
                return Err(invalid(format!(
                    "The timestamp pattern {pattern:?} uses {c:?}; Sluice formats y, M, d, H, m and s."
                )));
            }
        };
        if (c == 'y' || c == 'u') && run == 2 {
            out.push_str(&format!("{:02}", value % 100));
        } else {
            out.push_str(&format!("{value:0run$}"));
        }
        i += run;
    }
    Ok(out)
}

/// Eleven random lowercase letters and digits (`!{firehose:random-string}`).
fn random_string() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 11];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The evaluated prefix for an object whose oldest record arrived at `arrival_ms`;
/// `error_type` fills `!{firehose:error-output-type}`.
pub fn evaluate(prefix: Option<&str>, arrival_ms: i64, error_type: Option<&str>) -> String {
    evaluate_partitioned(prefix, arrival_ms, error_type, None)
}

/// `evaluate`, with the values of `!{partitionKeyFromQuery:...}`.
pub fn evaluate_partitioned(
    prefix: Option<&str>,
    arrival_ms: i64,
    error_type: Option<&str>,
    partition: Option<&crate::partition::Partition>,
) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(arrival_ms).unwrap_or_default();
    let pieces = parse(prefix.unwrap_or("")).unwrap_or_default();
    let mut out = String::new();
    let mut stamped = false;
    for piece in &pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Timestamp(p) => {
                stamped = true;
                out.push_str(&format_time(p, at).unwrap_or_default());
            }
            Piece::RandomString => out.push_str(&random_string()),
            Piece::ErrorOutputType => out.push_str(error_type.unwrap_or("")),
            Piece::PartitionKey(k) => {
                // A partitioned prefix is used as written: no hour is appended.
                stamped = true;
                out.push_str(partition.and_then(|p| p.get(k)).map_or("", String::as_str))
            }
        }
    }
    if !stamped {
        // A plain error prefix without the type names it first, as Firehose does.
        if let Some(kind) = error_type
            && !pieces.contains(&Piece::ErrorOutputType)
        {
            out.push_str(kind);
            out.push('/');
        }
        out.push_str(&format_time("yyyy/MM/dd/HH/", at).expect("a fixed pattern"));
    }
    out
}

/// The suffix: `<stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><extension>`.
pub fn suffix(stream: &str, version: i64, arrival_ms: i64, extension: &str) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(arrival_ms).unwrap_or_default();
    format!(
        "{stream}-{version}-{}-{}{extension}",
        format_time("yyyy-MM-dd-HH-mm-ss", at).expect("a fixed pattern"),
        uuid::Uuid::new_v4()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2018-07-09T13:05:07Z
    const AT: i64 = 1_531_141_507_000;

    #[test]
    fn a_plain_prefix_gets_the_hour_appended() {
        assert_eq!(evaluate(None, AT, None), "2018/07/09/13/");
        assert_eq!(evaluate(Some("logs/"), AT, None), "logs/2018/07/09/13/");
    }

    #[test]
    fn timestamp_expressions_replace_the_default() {
        assert_eq!(
            evaluate(
                Some("dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/"),
                AT,
                None
            ),
            "dt=2018-07-09/h=13/"
        );
        assert_eq!(evaluate(Some("!{timestamp:yy}/"), AT, None), "18/");
    }

    #[test]
    fn error_prefixes_name_the_error() {
        assert_eq!(
            evaluate(
                Some("err/!{firehose:error-output-type}/!{timestamp:yyyy}/"),
                AT,
                Some("http-endpoint-failed")
            ),
            "err/http-endpoint-failed/2018/"
        );
        assert_eq!(
            evaluate(None, AT, Some("http-endpoint-failed")),
            "http-endpoint-failed/2018/07/09/13/"
        );
        assert!(check("a/!{firehose:error-output-type}/", false, false).is_err());
    }

    #[test]
    fn random_strings_differ() {
        let a = evaluate(Some("!{firehose:random-string}/"), AT, None);
        assert_eq!(a.len(), 11 + 1 + "2018/07/09/13/".len());
        assert_ne!(a, evaluate(Some("!{firehose:random-string}/"), AT, None));
    }

    #[test]
    fn bad_expressions_are_refused() {
        assert!(check("!{timestamp:yyyy", false, false).is_err());
        assert!(check("!{nope:x}", false, false).is_err());
        assert!(check("!{timestamp:EEEE}", false, false).is_err());
        assert!(check("!{partitionKeyFromQuery:id}", false, false).is_err());
        assert!(check("c=!{partitionKeyFromQuery:id}/", false, true).is_ok());
        assert!(check("plain/", false, true).is_err());
        assert!(check("!{partitionKeyFromLambda:id}", false, true).is_err());
    }

    #[test]
    fn suffixes_follow_the_documented_form() {
        let s = suffix("orders", 3, AT, ".gz");
        assert!(s.starts_with("orders-3-2018-07-09-13-05-07-"), "{s}");
        assert!(s.ends_with(".gz"));
        assert_eq!(s.len(), "orders-3-2018-07-09-13-05-07-".len() + 36 + 3);
    }
}
