//! The AWS query protocol (SNS, and SQS's legacy form): form-encoded `Action=...`
//! request bodies and XML error answers. Only what the gateway needs to recognise such
//! a request and refuse it in the shape its client parses.

use crate::ApiError;

/// Whether a request body is form-encoded, as query-protocol clients send it.
pub fn is_query_request(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// The first value of `name` in a form-encoded body, percent-decoded (`+` is a space);
/// `None` when absent or not UTF-8.
pub fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key)? == name).then(|| decode(value)).flatten()
    })
}

/// Every pair of a form-encoded body, percent-decoded, in order; `None` when the body
/// is not UTF-8 or a pair does not decode.
pub fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(key)?, decode(value)?))
        })
        .collect()
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Text as XML character data or an attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The query protocol's error document: `ErrorResponse/Error/{Type,Code,Message}` and
/// the request id; `Type` is `Sender` for a caller's error, `Receiver` for the server's.
pub fn error_xml(error: &ApiError, request_id: &str) -> String {
    let kind = if error.code.status() >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        // SQS's errors carry the query protocol's own codes.
        escape(match error.code {
            crate::ErrorCode::Sqs(kind) => kind.query_code(),
            other => other.type_name(),
        }),
        escape(&error.message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn actions_are_read_from_form_bodies() {
        assert!(is_query_request(Some(
            "application/x-www-form-urlencoded; charset=utf-8"
        )));
        assert!(!is_query_request(Some("application/x-amz-json-1.1")));
        assert!(!is_query_request(None));
        let body = b"Version=2010-03-31&Action=List%54opics&Name=a+b";
        assert_eq!(form_value(body, "Action").as_deref(), Some("ListTopics"));
        assert_eq!(form_value(body, "Name").as_deref(), Some("a b"));
        assert_eq!(form_value(body, "Missing"), None);
        assert_eq!(form_value(b"Action=%zz", "Action"), None);
    }

    #[test]
    fn errors_are_escaped_xml() {
        let error = ApiError::new(ErrorCode::InvalidAction, "The action <x&y> is not valid.");
        let xml = error_xml(&error, "id-1");
        assert!(
            xml.contains("<Type>Sender</Type><Code>InvalidAction</Code>"),
            "{xml}"
        );
        assert!(
            xml.contains("The action &lt;x&amp;y&gt; is not valid."),
            "{xml}"
        );
        assert!(xml.contains("<RequestId>id-1</RequestId>"), "{xml}");
    }
}
