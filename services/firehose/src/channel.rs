//! What a Kinesis channel keeps beside the delivery stream it runs as (`channel_api`
//! has the API), and how it names objects: its output key template (AWS's default
//! unless given) evaluated with the oldest record's arrival time, and a unique suffix
//! before the extension, so no two buffers share a key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

/// The key template AWS uses when a channel gives none.
pub const DEFAULT_KEY_TEMPLATE: &str = "kinesis-channel/!{channel-name}/!{channel-id}/!{yyyy}/!{MM}/!{dd}/!{HH}/!{channel-name}-!{channel-id}-!{yyyy}-!{MM}-!{dd}-!{HH}-!{mm}!{extension}";
pub const VARIABLES: [&str; 9] = [
    "channel-name",
    "channel-id",
    "yyyy",
    "YY",
    "MM",
    "dd",
    "HH",
    "mm",
    "extension",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// What a channel keeps beside the delivery stream it runs as.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredChannel {
    pub id: String,
    pub name: String,
    pub role_arn: String,
    /// The stream configuration as given (one stream), with its creation time.
    pub streams: Vec<Value>,
    pub stream_created_ms: i64,
    pub storage: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<Value>,
    pub freshness_s: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Value>,
}

impl StoredChannel {
    /// The object key a buffer whose oldest record arrived at `oldest_ms` is delivered
    /// under: the template evaluated, with a unique suffix before the extension.
    pub fn object_key(&self, oldest_ms: i64, extension: &str) -> String {
        use chrono::{Datelike, TimeZone, Timelike};
        let t = chrono::Utc
            .timestamp_millis_opt(oldest_ms)
            .single()
            .unwrap_or_default();
        let template = self
            .storage
            .get("OutputKeyTemplate")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_KEY_TEMPLATE);
        let unique = format!("-{}", uuid::Uuid::new_v4());
        let (template, tail) = match template.strip_suffix("!{extension}") {
            Some(head) => (head, format!("{unique}{extension}")),
            None => (template, unique),
        };
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("!{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            let value = match &rest[start + 2..end] {
                "channel-name" => self.name.clone(),
                "channel-id" => self.id.clone(),
                "yyyy" => format!("{:04}", t.year()),
                "YY" => format!("{:02}", t.year() % 100),
                "MM" => format!("{:02}", t.month()),
                "dd" => format!("{:02}", t.day()),
                "HH" => format!("{:02}", t.hour()),
                "mm" => format!("{:02}", t.minute()),
                "extension" => extension.to_string(),
                _ => String::new(),
            };
            out.push_str(&value);
            rest = &rest[(end + 1).min(rest.len())..];
        }
        out.push_str(rest);
        out.push_str(&tail);
        out
    }
}

/// An output key template, checked: 1 to 1024 of the characters the API allows, no
/// path traversal, no leading or trailing `/`, known variables only, at least one.
pub fn check_template(template: &str) -> Result<(), ApiError> {
    let bad = |why: &str| invalid(format!("OutputKeyTemplate {template:?}: {why}."));
    if template.is_empty() || template.len() > 1024 {
        return Err(bad("it is 1 to 1024 characters"));
    }
    if !template
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "!-_'.*()/=:{}".contains(c))
    {
        return Err(bad(
            "it holds letters, digits and !-_'.*()/=:{} only (no spaces)",
        ));
    }
    if template.contains("..") || template.contains("./") || template.starts_with('/') {
        return Err(bad("it must not start with / or hold .. or ./"));
    }
    if template.ends_with('/') {
        return Err(bad("it names an object, so it must not end with /"));
    }
    let mut variables = 0;
    let mut rest = template;
    while let Some(start) = rest.find("!{") {
        let Some(end) = rest[start..].find('}') else {
            return Err(bad("a !{ has no closing }"));
        };
        let name = &rest[start + 2..start + end];
        if !VARIABLES.contains(&name) {
            return Err(bad(&format!(
                "!{{{name}}} is not one of !{{{}}}",
                VARIABLES.join("}, !{")
            )));
        }
        variables += 1;
        rest = &rest[start + end + 1..];
    }
    if variables == 0 {
        return Err(bad("it uses at least one variable"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn channel(template: Option<&str>) -> StoredChannel {
        StoredChannel {
            id: "abc".into(),
            name: "orders".into(),
            role_arn: String::new(),
            streams: vec![],
            stream_created_ms: 0,
            storage: match template {
                Some(t) => json!({"OutputKeyTemplate": t}),
                None => json!({}),
            },
            dead_letter: None,
            freshness_s: 300,
            encryption: None,
            logging: None,
        }
    }

    #[test]
    fn keys_follow_the_template_with_a_unique_suffix() {
        // 2024-01-02T03:04:05Z
        let key = channel(None).object_key(1_704_164_645_000, ".gz");
        assert!(
            key.starts_with(
                "kinesis-channel/orders/abc/2024/01/02/03/orders-abc-2024-01-02-03-04-"
            ),
            "{key}"
        );
        assert!(key.ends_with(".gz"), "{key}");
        let key = channel(Some("data/!{YY}/!{channel-name}")).object_key(1_704_164_645_000, "");
        assert!(key.starts_with("data/24/orders-"), "{key}");
        assert_ne!(
            channel(None).object_key(0, ""),
            channel(None).object_key(0, ""),
            "two objects never share a key"
        );
    }

    #[test]
    fn templates_are_checked() {
        check_template(DEFAULT_KEY_TEMPLATE).unwrap();
        for bad in [
            "",
            "plain/literal",
            "a/!{bogus}",
            "a b/!{mm}",
            "/!{mm}",
            "!{mm}/",
            "../!{mm}",
            "!{mm",
        ] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
    }
}
