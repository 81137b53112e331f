//! The OpenSearch / Elasticsearch destination: each buffer is one `_bulk` request of
//! `index` actions into `IndexName` (with the rotation suffix the
//! `IndexRotationPeriod` asks for, from the buffer's oldest arrival), each document's
//! `_id` derived from its place in the log (so a retried or repeated buffer overwrites
//! rather than duplicates); items the cluster refuses with 429 or 5xx are sent again
//! until the retry duration runs out, the rest go to the S3 configuration's error
//! prefix. The cluster is reached at `ClusterEndpoint` with HTTP basic credentials from
//! the connection the `RoleARN` names (when it has them).

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

use crate::shapes::{ProcessingConfiguration, RetryOptions, S3_BUFFER_SIZE_MAX_MIB, S3Destination};

pub const BUFFER_SIZE_MAX_MIB: i64 = 100;
pub const RETRY_DEFAULT_S: i64 = 300;
pub const RETRY_MAX_S: i64 = 7_200;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DocumentIdOptions {
    #[serde(rename = "DefaultDocumentIdFormat")]
    pub format: String,
}

/// `AmazonopensearchserviceDestinationConfiguration` and its Elasticsearch twin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchDestination {
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    #[serde(rename = "DomainARN", skip_serializing_if = "Option::is_none")]
    pub domain_arn: Option<String>,
    #[serde(rename = "ClusterEndpoint", skip_serializing_if = "Option::is_none")]
    pub cluster_endpoint: Option<String>,
    #[serde(rename = "IndexName")]
    pub index_name: String,
    #[serde(rename = "TypeName", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(
        rename = "IndexRotationPeriod",
        skip_serializing_if = "Option::is_none"
    )]
    pub index_rotation_period: Option<String>,
    #[serde(rename = "BufferingHints", default)]
    pub buffering_hints: crate::shapes::BufferingHints,
    #[serde(rename = "RetryOptions", default)]
    pub retry_options: RetryOptions,
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    #[serde(rename = "S3Configuration")]
    pub s3: S3Destination,
    #[serde(
        rename = "ProcessingConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(
        rename = "CloudWatchLoggingOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_watch_logging_options: Option<Value>,
    #[serde(rename = "DocumentIdOptions", skip_serializing_if = "Option::is_none")]
    pub document_id_options: Option<DocumentIdOptions>,
}

impl SearchDestination {
    pub fn check(&self) -> Result<(), ApiError> {
        crate::shapes::role_connection(&self.role_arn)?;
        let endpoint = self.cluster_endpoint.as_deref().ok_or_else(|| {
            invalid("Sluice reaches a search cluster by its ClusterEndpoint (a DomainARN names no address here).")
        })?;
        crate::shapes::check_url_allowing_loopback_http(endpoint)?;
        let name = &self.index_name;
        if name.is_empty()
            || name.len() > 80
            || name.starts_with(['-', '_', '+'])
            || name
                .chars()
                .any(|c| c.is_ascii_uppercase() || " \"*\\<|,>/?#:".contains(c))
        {
            return Err(invalid(format!("IndexName {name:?} is not an index name.")));
        }
        match self.index_rotation_period.as_deref() {
            None | Some("NoRotation" | "OneHour" | "OneDay" | "OneWeek" | "OneMonth") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "IndexRotationPeriod must be NoRotation, OneHour, OneDay, OneWeek or OneMonth; got {other}."
                )));
            }
        }
        if let Some(size) = self.buffering_hints.size_mib
            && !(1..=BUFFER_SIZE_MAX_MIB).contains(&size)
        {
            return Err(invalid(format!(
                "BufferingHints.SizeInMBs must be between 1 and {BUFFER_SIZE_MAX_MIB}, got {size}."
            )));
        }
        self.retry_options.check(RETRY_MAX_S)?;
        match self.s3_backup_mode.as_deref() {
            None | Some("FailedDocumentsOnly" | "AllDocuments") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode must be FailedDocumentsOnly or AllDocuments, got {other}."
                )));
            }
        }
        if let Some(o) = &self.document_id_options
            && !["FIREHOSE_DEFAULT", "NO_DOCUMENT_ID"].contains(&o.format.as_str())
        {
            return Err(invalid(
                "DocumentIdOptions.DefaultDocumentIdFormat must be FIREHOSE_DEFAULT or NO_DOCUMENT_ID.",
            ));
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        self.s3.check(S3_BUFFER_SIZE_MAX_MIB)
    }

    pub fn retry_ms(&self) -> i64 {
        self.retry_options.duration_s.unwrap_or(RETRY_DEFAULT_S) * 1000
    }

    pub fn described(&self) -> Value {
        let mut d = self.clone();
        d.retry_options.duration_s = Some(self.retry_ms() / 1000);
        d.index_rotation_period = Some(
            self.index_rotation_period
                .clone()
                .unwrap_or_else(|| "OneDay".into()),
        );
        d.s3_backup_mode = Some(
            self.s3_backup_mode
                .clone()
                .unwrap_or_else(|| "FailedDocumentsOnly".into()),
        );
        d.buffering_hints = crate::shapes::BufferingHints {
            size_mib: Some(self.buffering_hints.size_mib.unwrap_or(5)),
            interval_s: Some(self.buffering_hints.interval_s.unwrap_or(300)),
        };
        let s3 = d.s3.described(false);
        let mut v = serde_json::to_value(&d).expect("serializable");
        if let Value::Object(map) = &mut v {
            map.remove("S3Configuration");
            map.insert("S3DestinationDescription".into(), s3);
        }
        v
    }

    /// The index a buffer whose oldest record arrived at `arrival_ms` goes to.
    pub fn index(&self, arrival_ms: i64) -> String {
        let at = DateTime::<Utc>::from_timestamp_millis(arrival_ms).unwrap_or_default();
        let suffix = match self.index_rotation_period.as_deref().unwrap_or("OneDay") {
            "NoRotation" => String::new(),
            "OneHour" => at.format("-%Y-%m-%d-%H").to_string(),
            "OneWeek" => {
                let week = at.iso_week();
                format!("-{}-w{:02}", week.year(), week.week())
            }
            "OneMonth" => at.format("-%Y-%m").to_string(),
            _ => at.format("-%Y-%m-%d").to_string(),
        };
        format!("{}{suffix}", self.index_name)
    }

    fn with_ids(&self) -> bool {
        self.document_id_options
            .as_ref()
            .is_none_or(|o| o.format == "FIREHOSE_DEFAULT")
    }
}

/// One `_bulk` body: an `index` action and the document per record. `ids` are the
/// documents' ids (used unless NO_DOCUMENT_ID is asked for).
pub fn bulk_body(
    destination: &SearchDestination,
    index: &str,
    documents: &[(&[u8], String)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(documents.iter().map(|(d, _)| d.len() + 96).sum());
    for (doc, id) in documents {
        let mut action = serde_json::json!({"_index": index});
        if destination.with_ids() {
            action["_id"] = id.clone().into();
        }
        if let Some(t) = &destination.type_name
            && !t.is_empty()
        {
            action["_type"] = t.clone().into();
        }
        out.extend_from_slice(
            serde_json::json!({ "index": action })
                .to_string()
                .as_bytes(),
        );
        out.push(b'\n');
        let trimmed = doc.trim_ascii_end();
        out.extend_from_slice(trimmed);
        out.push(b'\n');
    }
    out
}

/// What became of each item of a `_bulk` answer: `None` taken, `Some(retry, why)`.
pub fn bulk_outcomes(answer: &Value, count: usize) -> Result<Vec<Option<(bool, String)>>, String> {
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .ok_or("the _bulk answer has no items")?;
    if items.len() != count {
        return Err(format!(
            "the _bulk answer has {} items for {count} documents",
            items.len()
        ));
    }
    Ok(items
        .iter()
        .map(|item| {
            let result = item.as_object().and_then(|o| o.values().next());
            let status = result
                .and_then(|r| r.get("status"))
                .and_then(Value::as_u64)
                .unwrap_or(500);
            if (200..300).contains(&status) {
                None
            } else {
                let why = result
                    .and_then(|r| r.get("error"))
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| format!("status {status}"));
                Some((status == 429 || status >= 500, why))
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> SearchDestination {
        serde_json::from_value(serde_json::json!({
            "RoleARN": "arn:aws:iam::123456789012:role/search",
            "ClusterEndpoint": "https://127.0.0.1:9200",
            "IndexName": "logs",
            "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/lake", "BucketARN": "arn:aws:s3:::bkt"}
        }))
        .unwrap()
    }

    #[test]
    fn indexes_rotate_by_the_oldest_arrival() {
        let mut d = destination();
        let at = 1_531_141_507_000; // 2018-07-09T13:05:07Z
        assert_eq!(d.index(at), "logs-2018-07-09");
        d.index_rotation_period = Some("OneHour".into());
        assert_eq!(d.index(at), "logs-2018-07-09-13");
        d.index_rotation_period = Some("OneMonth".into());
        assert_eq!(d.index(at), "logs-2018-07");
        d.index_rotation_period = Some("OneWeek".into());
        assert_eq!(d.index(at), "logs-2018-w28");
        d.index_rotation_period = Some("NoRotation".into());
        assert_eq!(d.index(at), "logs");
        assert!(d.check().is_ok());
    }

    #[test]
    fn bulk_bodies_pair_actions_and_documents() {
        let d = destination();
        let body = bulk_body(&d, "logs-x", &[(b"{\"a\":1}\n", "id-1".into())]);
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            vec![
                serde_json::json!({"index": {"_id": "id-1", "_index": "logs-x"}}),
                serde_json::json!({"a": 1}),
            ]
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn bulk_answers_say_which_items_to_retry() {
        let answer = serde_json::json!({"errors": true, "items": [
            {"index": {"status": 201}},
            {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}},
            {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}},
        ]});
        let outcomes = bulk_outcomes(&answer, 3).unwrap();
        assert!(outcomes[0].is_none());
        assert!(outcomes[1].as_ref().unwrap().0);
        assert!(!outcomes[2].as_ref().unwrap().0);
        assert!(bulk_outcomes(&answer, 2).is_err());
    }
}
