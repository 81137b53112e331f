//! Every member constraint of one request, checked together and reported together, as
//! AWS's validation layer reports them: "2 validation errors detected: Value null at
//! 'shardCount' failed to satisfy constraint: Member must not be null; Value '' at
//! 'streamName' failed to satisfy constraint: ...". A member's value is printed as the
//! service prints it: strings quoted, null bare, lists `[a, b]` and maps `{k=v}`.
//!
//! Each Kinesis input states its constraints (`Checked`); the service runs them after
//! decoding and before anything else, so a request with several bad members hears of
//! all of them at once. The operations' own checks stay, for the constraints that
//! need state.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::error::{ApiError, ErrorCode};

/// The pattern AWS states for names (streams, consumers) and shard ids.
pub const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Failed constraints one message lists at most.
pub const ERRORS_LISTED_MAX: usize = 10;

/// A failed-constraint collector for one request.
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<String>,
}

/// The constraints of an input's members, in the model's member order.
pub trait Checked {
    fn check(&self, c: &mut Checks);
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    /// One failed constraint; `value` is already printed (`None`: null).
    pub fn fail(&mut self, value: Option<&str>, member: &str, constraint: &str) {
        let mut line = String::new();
        match value {
            None => line.push_str("Value null"),
            Some(v) => {
                let _ = write!(line, "Value '{v}'");
            }
        }
        let _ = write!(
            line,
            " at '{member}' failed to satisfy constraint: {constraint}"
        );
        self.errors.push(line);
    }

    /// A member that must be present.
    pub fn required<T>(&mut self, value: &Option<T>, member: &str) {
        if value.is_none() {
            self.fail(None, member, "Member must not be null");
        }
    }

    /// A string's length in characters, when present.
    pub fn length(&mut self, value: Option<&str>, member: &str, min: usize, max: usize) {
        let Some(v) = value else { return };
        let len = v.chars().count();
        if len < min {
            self.fail(
                Some(v),
                member,
                &format!("Member must have length greater than or equal to {min}"),
            );
        }
        if len > max {
            self.fail(
                Some(v),
                member,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// A name (stream, consumer, shard id): the pattern, then 1..=`max` characters.
    pub fn name(&mut self, value: Option<&str>, member: &str, max: usize) {
        let Some(v) = value else { return };
        if !is_name(v) {
            self.fail(
                Some(v),
                member,
                &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
            );
        }
        self.length(Some(v), member, 1, max);
    }

    /// A string matching `ok`, described by `pattern`.
    pub fn pattern(&mut self, value: Option<&str>, member: &str, ok: bool, pattern: &str) {
        if let Some(v) = value
            && !ok
        {
            self.fail(
                Some(v),
                member,
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    /// An integer within `min..=max`, when present.
    pub fn range(&mut self, value: Option<i64>, member: &str, min: i64, max: i64) {
        let Some(v) = value else { return };
        let text = v.to_string();
        if v < min {
            self.fail(
                Some(&text),
                member,
                &format!("Member must have value greater than or equal to {min}"),
            );
        }
        if v > max {
            self.fail(
                Some(&text),
                member,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// One of a closed set of values, when present.
    pub fn one_of(&mut self, value: Option<&str>, member: &str, allowed: &[&str]) {
        if let Some(v) = value
            && !allowed.contains(&v)
        {
            self.fail(
                Some(v),
                member,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// A list's item count, when present.
    pub fn count<T: AsRef<str>>(
        &mut self,
        value: Option<&[T]>,
        member: &str,
        min: usize,
        max: usize,
    ) {
        let Some(items) = value else { return };
        let printed = list(items);
        if items.len() < min {
            self.fail(
                Some(&printed),
                member,
                &format!("Member must have length greater than or equal to {min}"),
            );
        }
        if items.len() > max {
            self.fail(
                Some(&printed),
                member,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// A string map's entry count, key lengths and value lengths, when present.
    pub fn map(
        &mut self,
        value: Option<&BTreeMap<String, String>>,
        member: &str,
        entries: (usize, usize),
        key_max: usize,
        value_max: usize,
    ) {
        let Some(m) = value else { return };
        let printed = format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if m.keys()
            .any(|k| k.is_empty() || k.chars().count() > key_max)
        {
            self.fail(
                Some(&printed),
                member,
                &format!(
                    "Map keys must satisfy constraint: [Member must have length less than or equal to {key_max}, Member must have length greater than or equal to 1]"
                ),
            );
        }
        if m.values().any(|v| v.chars().count() > value_max) {
            self.fail(
                Some(&printed),
                member,
                &format!(
                    "Map value must satisfy constraint: [Member must have length less than or equal to {value_max}, Member must have length greater than or equal to 0]"
                ),
            );
        }
        if m.len() < entries.0 {
            self.fail(
                Some(&printed),
                member,
                &format!(
                    "Member must have length greater than or equal to {}",
                    entries.0
                ),
            );
        }
        if m.len() > entries.1 {
            self.fail(
                Some(&printed),
                member,
                &format!(
                    "Member must have length less than or equal to {}",
                    entries.1
                ),
            );
        }
    }

    /// Every failed constraint as one ValidationException, or nothing. As AWS does,
    /// the message lists (and counts) the first ten.
    pub fn finish(mut self) -> Result<(), ApiError> {
        self.errors.truncate(ERRORS_LISTED_MAX);
        match self.errors.len() {
            0 => Ok(()),
            n => Err(ApiError::new(
                ErrorCode::Validation,
                format!(
                    "{n} validation error{} detected: {}",
                    if n == 1 { "" } else { "s" },
                    self.errors.join("; ")
                ),
            )),
        }
    }
}

/// A list printed as the service prints it: `[a, b]`.
pub fn list<T: AsRef<str>>(items: &[T]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| i.as_ref().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Whether `text` is a decimal integer without leading zeros of at most `digits` digits
/// (`0|([1-9]\d{0,digits-1})`): hash keys and sequence numbers.
pub fn is_decimal(text: &str, digits: usize) -> bool {
    text == "0"
        || (!text.is_empty()
            && text.len() <= digits
            && !text.starts_with('0')
            && text.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_errors_are_reported_together_in_aws_words() {
        let mut c = Checks::new();
        c.required(&None::<i64>, "shardCount");
        c.name(Some(""), "streamName", 128);
        let e = c.finish().unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert_eq!(
            e.message,
            "3 validation errors detected: \
             Value null at 'shardCount' failed to satisfy constraint: Member must not be null; \
             Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        let mut one = Checks::new();
        one.range(Some(0), "limit", 1, 10_000);
        assert_eq!(
            one.finish().unwrap_err().message,
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        assert!(Checks::new().finish().is_ok());
        let mut many = Checks::new();
        for i in 0..12 {
            many.required(&None::<i64>, &format!("m{i}"));
        }
        let message = many.finish().unwrap_err().message;
        assert!(
            message.starts_with("10 validation errors detected: "),
            "{message}"
        );
        assert!(message.contains("'m9'") && !message.contains("'m10'"));
    }

    #[test]
    fn decimals() {
        assert!(is_decimal("0", 39));
        assert!(is_decimal("340282366920938463463374607431768211455", 39));
        assert!(!is_decimal("01", 39));
        assert!(!is_decimal("", 39));
        assert!(!is_decimal("-1", 39));
        assert!(!is_decimal(&"1".repeat(40), 39));
    }
}
