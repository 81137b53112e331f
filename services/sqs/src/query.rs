//! SQS's legacy query protocol, which older SDKs and tools still send: a form-encoded
//! `Action=...` request (to `/` or to a queue URL's path) answered in XML in the
//! `http://queue.amazonaws.com/doc/2012-11-05/` namespace. The form becomes the JSON
//! input the operation takes (lists as `Name.N`, maps as `Name.N.Key/Value`, batch
//! entries as `...RequestEntry.N.Member`), the operation runs as it does for JSON, and
//! its JSON answer is written as the query protocol's XML.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use edge::Caller;
use protocol::ApiError;
use protocol::query::escape;
use protocol::sqs::SqsError;
use protocol::wire::Format;

use crate::{SqsOperation, SqsService, sqs_error};

const NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
/// Form pairs a request may carry.
const PAIRS_MAX: usize = 4_096;

/// A form's pairs as a tree: `A.1.B=v` is `{"A": {"1": {"B": "v"}}}`.
#[derive(Debug, Default)]
struct Tree {
    value: Option<String>,
    children: BTreeMap<String, Tree>,
}

impl Tree {
    fn insert(&mut self, path: &[&str], value: String) {
        match path.split_first() {
            None => self.value = Some(value),
            Some((head, rest)) => self
                .children
                .entry((*head).to_string())
                .or_default()
                .insert(rest, value),
        }
    }

    fn get(&self, name: &str) -> Option<&Tree> {
        self.children.get(name)
    }

    fn scalar(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|t| t.value.as_deref())
    }

    /// `Name.1`, `Name.2`, ... in index order.
    fn indexed(&self, name: &str) -> Vec<&Tree> {
        let Some(t) = self.get(name) else {
            return Vec::new();
        };
        let mut items: Vec<(u32, &Tree)> = t
            .children
            .iter()
            .filter_map(|(k, v)| k.parse().ok().map(|i| (i, v)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }
}

fn integer(text: &str, name: &str) -> Result<Value, ApiError> {
    text.parse::<i64>().map(Value::from).map_err(|_| {
        sqs_error(
            SqsError::InvalidParameterValue,
            format!("Value {text} for parameter {name} is invalid."),
        )
    })
}

/// Scalars of the operation's input, typed as its JSON takes them.
const STRINGS: [&str; 14] = [
    "QueueName",
    "QueueUrl",
    "MessageBody",
    "ReceiptHandle",
    "QueueNamePrefix",
    "NextToken",
    "MessageGroupId",
    "MessageDeduplicationId",
    "QueueOwnerAWSAccountId",
    "ReceiveRequestAttemptId",
    "Label",
    "SourceArn",
    "DestinationArn",
    "TaskHandle",
];
const INTEGERS: [&str; 6] = [
    "DelaySeconds",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "WaitTimeSeconds",
    "MaxResults",
    "MaxNumberOfMessagesPerSecond",
];

/// A message's `MessageAttribute.N.{Name,Value.{DataType,StringValue,BinaryValue}}`.
fn message_attributes(t: &Tree) -> Value {
    let mut out = Map::new();
    for a in t.indexed("MessageAttribute") {
        let (Some(name), Some(v)) = (a.scalar("Name"), a.get("Value")) else {
            continue;
        };
        let mut value = Map::new();
        for field in ["DataType", "StringValue", "BinaryValue"] {
            if let Some(x) = v.scalar(field) {
                value.insert(field.into(), x.into());
            }
        }
        out.insert(name.into(), Value::Object(value));
    }
    Value::Object(out)
}

/// The scalars of one level (the request, or a batch entry).
fn scalars(t: &Tree, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    for name in STRINGS {
        if let Some(v) = t.scalar(name) {
            out.insert(name.into(), v.into());
        }
    }
    for name in INTEGERS {
        if let Some(v) = t.scalar(name) {
            out.insert(name.into(), integer(v, name)?);
        }
    }
    if t.get("MessageAttribute").is_some() {
        out.insert("MessageAttributes".into(), message_attributes(t));
    }
    Ok(())
}

/// The JSON input of `op` from the form.
fn input(op: SqsOperation, form: &Tree) -> Result<Value, ApiError> {
    let mut out = Map::new();
    scalars(form, &mut out)?;
    let pairs = |name: &str, key: &str, value: &str| -> Map<String, Value> {
        form.indexed(name)
            .into_iter()
            .filter_map(|e| Some((e.scalar(key)?.to_string(), e.scalar(value)?.into())))
            .collect()
    };
    let list = |name: &str| -> Vec<Value> {
        form.indexed(name)
            .into_iter()
            .filter_map(|e| e.value.clone().map(Value::from))
            .collect()
    };
    match op {
        SqsOperation::CreateQueue | SqsOperation::SetQueueAttributes => {
            out.insert(
                "Attributes".into(),
                Value::Object(pairs("Attribute", "Name", "Value")),
            );
            if op == SqsOperation::CreateQueue {
                out.insert("tags".into(), Value::Object(pairs("Tag", "Key", "Value")));
            }
        }
        SqsOperation::TagQueue => {
            out.insert("Tags".into(), Value::Object(pairs("Tag", "Key", "Value")));
        }
        SqsOperation::UntagQueue => {
            out.insert("TagKeys".into(), Value::Array(list("TagKey")));
        }
        SqsOperation::GetQueueAttributes => {
            out.insert("AttributeNames".into(), Value::Array(list("AttributeName")));
        }
        SqsOperation::AddPermission => {
            out.insert("AWSAccountIds".into(), Value::Array(list("AWSAccountId")));
            out.insert("Actions".into(), Value::Array(list("ActionName")));
        }
        SqsOperation::ReceiveMessage => {
            out.insert("AttributeNames".into(), Value::Array(list("AttributeName")));
            out.insert(
                "MessageSystemAttributeNames".into(),
                Value::Array(list("MessageSystemAttributeName")),
            );
            out.insert(
                "MessageAttributeNames".into(),
                Value::Array(list("MessageAttributeName")),
            );
        }
        SqsOperation::SendMessageBatch
        | SqsOperation::DeleteMessageBatch
        | SqsOperation::ChangeMessageVisibilityBatch => {
            let entry = format!("{}RequestEntry", op.name());
            let mut entries = Vec::new();
            for e in form.indexed(&entry) {
                let mut m = Map::new();
                if let Some(id) = e.scalar("Id") {
                    m.insert("Id".into(), id.into());
                }
                scalars(e, &mut m)?;
                entries.push(Value::Object(m));
            }
            out.insert("Entries".into(), Value::Array(entries));
        }
        _ => {}
    }
    Ok(Value::Object(out))
}

/// One JSON value as XML elements named `name` (arrays repeat the element).
fn element(name: &str, value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            for item in items {
                element(name, item, out);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            members(map, out);
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => {}
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// An object's members as the query protocol names them: maps as repeated
/// `Name/Value` (or `Key/Value`) pairs, lists flattened under their member's name.
fn members(map: &Map<String, Value>, out: &mut String) {
    for (key, value) in map {
        match (key.as_str(), value) {
            ("Attributes", Value::Object(attrs)) => {
                for (n, v) in attrs {
                    element("Attribute", &json!({"Name": n, "Value": v}), out);
                }
            }
            ("Tags", Value::Object(tags)) => {
                for (k, v) in tags {
                    element("Tag", &json!({"Key": k, "Value": v}), out);
                }
            }
            ("MessageAttributes", Value::Object(attrs)) => {
                for (n, v) in attrs {
                    element("MessageAttribute", &json!({"Name": n, "Value": v}), out);
                }
            }
            ("QueueUrls" | "queueUrls", v) => element("QueueUrl", v, out),
            ("Messages", v) => element("Message", v, out),
            ("Failed", v) => element("BatchResultErrorEntry", v, out),
            (k, v) => element(k, v, out),
        }
    }
}

/// The XML answer to `op` from its JSON answer.
fn answer(op: SqsOperation, output: &Value, request_id: &str) -> String {
    let name = op.name();
    let mut result = String::new();
    if let Value::Object(map) = output {
        let mut map = map.clone();
        // Batch answers name their successful entries by the operation.
        if let Some(ok) = map.remove("Successful") {
            element(&format!("{name}ResultEntry"), &ok, &mut result);
        }
        members(&map, &mut result);
    }
    format!(
        "<?xml version=\"1.0\"?>\n<{name}Response xmlns=\"{NAMESPACE}\"><{name}Result>{result}</{name}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{name}Response>",
        escape(request_id)
    )
}

/// Runs a query-protocol request: `path` is the request's (a queue URL's path names
/// the queue when the form does not). Answers the XML document.
pub async fn dispatch(
    state: &SqsService,
    caller: &Caller,
    body: &[u8],
    path: &str,
    endpoint: &str,
    request_id: &str,
) -> Result<String, ApiError> {
    let pairs = protocol::query::form_pairs(body).ok_or_else(|| {
        sqs_error(
            SqsError::InvalidParameterValue,
            "The request body is not a form this endpoint reads.",
        )
    })?;
    if pairs.len() > PAIRS_MAX {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            format!("A request carries at most {PAIRS_MAX} parameters."),
        ));
    }
    let mut form = Tree::default();
    for (k, v) in pairs {
        let path: Vec<&str> = k.split('.').collect();
        form.insert(&path, v);
    }
    let action = form.scalar("Action").unwrap_or_default().to_string();
    let op = crate::SqsOperation::from_target(&format!("{}{action}", crate::TARGET_PREFIX))
        .ok_or_else(|| {
            ApiError::new(
                protocol::ErrorCode::InvalidAction,
                format!("The action {action} is not valid for this endpoint."),
            )
        })?;
    let mut input = input(op, &form)?;
    if input.get("QueueUrl").is_none() && path.trim_matches('/').contains('/') {
        input["QueueUrl"] = format!("{endpoint}{path}").into();
    }
    let body = serde_json::to_vec(&input).expect("serializable");
    let output = crate::dispatch(state, caller, op, Format::Json, &body, endpoint).await?;
    let output: Value = serde_json::from_slice(&output).expect("the operation answers JSON");
    Ok(answer(op, &output, request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(pairs: &[(&str, &str)]) -> Tree {
        let mut t = Tree::default();
        for (k, v) in pairs {
            t.insert(&k.split('.').collect::<Vec<_>>(), v.to_string());
        }
        t
    }

    #[test]
    fn forms_become_the_json_the_operations_take() {
        let form = tree(&[
            ("Action", "SendMessageBatch"),
            ("QueueUrl", "https://h/1/q"),
            ("SendMessageBatchRequestEntry.2.Id", "b"),
            ("SendMessageBatchRequestEntry.2.MessageBody", "two"),
            ("SendMessageBatchRequestEntry.1.Id", "a"),
            ("SendMessageBatchRequestEntry.1.MessageBody", "one"),
            ("SendMessageBatchRequestEntry.1.DelaySeconds", "3"),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name",
                "k",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType",
                "String",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue",
                "v",
            ),
        ]);
        let v = input(SqsOperation::SendMessageBatch, &form).unwrap();
        assert_eq!(v["Entries"][0]["Id"], "a");
        assert_eq!(v["Entries"][0]["DelaySeconds"], 3);
        assert_eq!(
            v["Entries"][0]["MessageAttributes"]["k"]["StringValue"],
            "v"
        );
        assert_eq!(v["Entries"][1]["MessageBody"], "two");
        let form = tree(&[
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "40"),
            ("QueueName", "q"),
        ]);
        let v = input(SqsOperation::CreateQueue, &form).unwrap();
        assert_eq!(v["Attributes"]["VisibilityTimeout"], "40");
        assert!(
            input(
                SqsOperation::ReceiveMessage,
                &tree(&[("WaitTimeSeconds", "x")])
            )
            .is_err()
        );
    }

    #[test]
    fn answers_are_the_query_protocols_xml() {
        let xml = answer(
            SqsOperation::ReceiveMessage,
            &json!({"Messages": [{"MessageId": "m", "Body": "a<b", "Attributes": {"SenderId": "s"}}]}),
            "r",
        );
        // (Member order follows the JSON map's, which features decide: test pieces.)
        for piece in [
            "<ReceiveMessageResult><Message><",
            "<MessageId>m</MessageId>",
            "<Body>a&lt;b</Body>",
            "<Attribute><Name>SenderId</Name><Value>s</Value></Attribute>",
            "</Message></ReceiveMessageResult>",
        ] {
            assert!(xml.contains(piece), "{piece} in {xml}");
        }
        let xml = answer(
            SqsOperation::DeleteMessageBatch,
            &json!({"Successful": [{"Id": "1"}], "Failed": []}),
            "r",
        );
        assert!(
            xml.contains(
                "<DeleteMessageBatchResultEntry><Id>1</Id></DeleteMessageBatchResultEntry>"
            ),
            "{xml}"
        );
        let xml = answer(
            SqsOperation::ListQueues,
            &json!({"QueueUrls": ["u1", "u2"]}),
            "r",
        );
        assert!(
            xml.contains("<QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl>"),
            "{xml}"
        );
    }
}
