//! The two body encodings Kinesis speaks, and the value types whose shape differs
//! between them.
//!
//! - `application/x-amz-json-1.1`: blobs are base64 strings, timestamps are epoch
//!   seconds as a number.
//! - `application/x-amz-cbor-1.1` (the Java SDK's default): blobs are byte strings,
//!   timestamps are CBOR tag 1 wrapping epoch *milliseconds*, as the AWS Java SDKs write
//!   and read them.
//!
//! The serde impls below tell the two apart by `is_human_readable`, which is true for
//! serde_json and false for ciborium.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ApiError, ErrorCode};

/// The body encoding of one request, and so of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Cbor,
}

impl Format {
    /// The format named by a `Content-Type`. AWS accepts `application/json` too.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
            Some("application/x-amz-cbor-1.1") | Some("application/cbor") => Format::Cbor,
            _ => Format::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/x-amz-json-1.1",
            Format::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    /// Decodes a request body. An empty body is an empty object, as AWS treats it.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, ApiError> {
        let serialization =
            |message: String| ApiError::new(ErrorCode::SerializationException, message);
        match self {
            Format::Json => {
                let body = if body.iter().all(u8::is_ascii_whitespace) {
                    b"{}" as &[u8]
                } else {
                    body
                };
                serde_json::from_slice(body)
                    .map_err(|e| serialization(aws_serialization_message(&e.to_string())))
            }
            Format::Cbor => {
                if body.is_empty() {
                    // An empty CBOR map.
                    return ciborium::from_reader(&[0xa0u8][..])
                        .map_err(|e| serialization(cbor_message(e)));
                }
                ciborium::from_reader(body).map_err(|e| serialization(cbor_message(e)))
            }
        }
    }

    /// Encodes a response or error body.
    pub fn encode<T: Serialize>(self, value: &T) -> Vec<u8> {
        match self {
            Format::Json => serde_json::to_vec(value).expect("wire types always serialize to JSON"),
            Format::Cbor => {
                let mut out = Vec::new();
                ciborium::into_writer(value, &mut out)
                    .expect("wire types always serialize to CBOR");
                out
            }
        }
    }
}

/// The error body: `{"__type": "...", "message": "..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    pub type_name: &'a str,
    pub message: &'a str,
}

/// A SerializationException's body, whose member AWS spells `Message`.
#[derive(Debug, Serialize)]
pub struct SerializationErrorBody<'a> {
    #[serde(rename = "__type")]
    pub type_name: &'a str,
    #[serde(rename = "Message")]
    pub message: &'a str,
}

/// A JSON decoding error in the words of AWS's (Java) deserializer, which clients and
/// the public emulator suites see: "class java.lang.Boolean can not be converted to an
/// String", "Start of structure or map found where not expected.", "Expected list or
/// null", ... `raw` is serde_json's message; what it does not describe passes through
/// without serde_json's position suffix.
pub fn aws_serialization_message(raw: &str) -> String {
    let text = match raw.rfind(" at line ") {
        Some(i) => &raw[..i],
        None => raw,
    };
    // A list where a structure belongs (serde reads a structure from a list by
    // position, and says the list is too short).
    if text.starts_with("invalid length ") && text.contains(", expected struct ") {
        return "Start of list found where not expected".to_string();
    }
    let Some(rest) = text.strip_prefix("invalid type: ") else {
        return text.to_string();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return text.to_string();
    };
    let expected_map = expected == "a map";
    let expected_list = expected == "a sequence";
    let expected_struct = expected.starts_with("struct ");
    if found == "map" && !expected_map && !expected_struct {
        return "Start of structure or map found where not expected.".to_string();
    }
    if found == "sequence" && !expected_list {
        return "Start of list found where not expected".to_string();
    }
    if expected_map {
        return "Expected map or null".to_string();
    }
    if expected_list {
        return "Expected list or null".to_string();
    }
    if expected_struct {
        return "Expected null".to_string();
    }
    let target = match expected {
        "a string" => "an String",
        "a boolean" => "an Boolean",
        "a base64 string or a byte string" => "a Blob",
        "an epoch timestamp" => "milliseconds since epoch",
        e if e.starts_with('i') || e.starts_with('u') || e.contains("integer") => "an Integer",
        _ => return text.to_string(),
    };
    if let Some(quoted) = found.strip_prefix("string ")
        && target == "an Boolean"
    {
        return format!(
            "'{}' can not be converted to an Boolean",
            quoted.trim_matches('"')
        );
    }
    let class = if found.starts_with("boolean") {
        "class java.lang.Boolean"
    } else if found.starts_with("integer") || found.starts_with("floating point") {
        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber"
    } else if found.starts_with("string") {
        "class java.lang.String"
    } else {
        return text.to_string();
    };
    format!("{class} can not be converted to {target}")
}

/// Why a base64 string is not one, in AWS's words.
fn base64_refusal(v: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !v.len().is_multiple_of(4) {
        return format!(
            "'{v}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            v.len()
        );
    }
    let body = v.trim_end_matches('=');
    if let Some(c) = body
        .chars()
        .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
    {
        return format!("'{v}' can not be converted to a Blob: Invalid Base64 character: '{c}'");
    }
    // AWS's text, its spelling kept.
    format!("'{v}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected")
}

/// A binary value: base64 in JSON, a byte string in CBOR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub bytes::Bytes);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&BASE64.encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl<'de> Visitor<'de> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a base64 string or a byte string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                BASE64
                    .decode(v)
                    .map(|v| Blob(v.into()))
                    .map_err(|_| E::custom(base64_refusal(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(bytes::Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v.into()))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BlobVisitor)
        } else {
            // ciborium's `deserialize_bytes` takes only what fits its 4 KiB scratch
            // buffer; `deserialize_byte_buf` takes byte strings of any length.
            deserializer.deserialize_byte_buf(BlobVisitor)
        }
    }
}

/// A point in time with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub epoch_ms: i64,
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_f64(self.epoch_ms as f64 / 1000.0)
        } else {
            ciborium::tag::Required::<i64, 1>(self.epoch_ms).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor {
            unit_ms: f64,
        }
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an epoch timestamp")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                let ms = v * self.unit_ms;
                if !ms.is_finite() || ms.abs() > 1e16 {
                    return Err(E::custom("timestamp out of range"));
                }
                Ok(Timestamp {
                    epoch_ms: ms.round() as i64,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
        }
        // A string is refused, as AWS refuses it ("class java.lang.String can not be
        // converted to milliseconds since epoch"): the JSON protocols send numbers.
        if deserializer.is_human_readable() {
            return deserializer.deserialize_any(NumberVisitor { unit_ms: 1000.0 });
        }
        // CBOR: the AWS Java SDKs send tag 1 around an integer count of milliseconds;
        // a float (with or without the tag) is read as RFC 8949 epoch seconds.
        let mut value = ciborium::Value::deserialize(deserializer)?;
        if let ciborium::Value::Tag(1, inner) = value {
            value = *inner;
        }
        match value {
            ciborium::Value::Integer(i) => {
                let ms =
                    i64::try_from(i).map_err(|_| de::Error::custom("timestamp out of range"))?;
                NumberVisitor { unit_ms: 1.0 }.visit_i64(ms)
            }
            ciborium::Value::Float(seconds) => NumberVisitor { unit_ms: 1000.0 }.visit_f64(seconds),
            _ => Err(de::Error::custom("expected an epoch timestamp")),
        }
    }
}

/// A CBOR decoding error as a sentence (ciborium's own text is its Debug form).
fn cbor_message(error: ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error;
    match error {
        Error::Io(_) => "The request body ends before its CBOR value does.".to_string(),
        Error::Syntax(offset) => format!("The request body is not valid CBOR (at byte {offset})."),
        Error::Semantic(Some(offset), message) => {
            format!(
                "{} (at byte {offset}).",
                aws_serialization_message(&message).trim_end_matches('.')
            )
        }
        Error::Semantic(None, message) => aws_serialization_message(&message),
        Error::RecursionLimitExceeded => "The request body nests too deeply.".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        data: Blob,
        at: Timestamp,
    }

    #[test]
    fn json_uses_base64_and_seconds() {
        let s = Sample {
            data: Blob(bytes::Bytes::from_static(b"hi")),
            at: Timestamp { epoch_ms: 1_500 },
        };
        let text = String::from_utf8(Format::Json.encode(&s)).unwrap();
        assert_eq!(text, r#"{"data":"aGk=","at":1.5}"#);
        assert_eq!(Format::Json.decode::<Sample>(text.as_bytes()).unwrap(), s);
    }

    #[test]
    fn cbor_uses_bytes_and_tagged_milliseconds() {
        let s = Sample {
            data: Blob(bytes::Bytes::from_static(b"hi")),
            at: Timestamp { epoch_ms: 1_500 },
        };
        let bytes = Format::Cbor.encode(&s);
        // tag 1 (0xc1) followed by 1500 as a 16-bit unsigned integer
        assert!(bytes.windows(4).any(|w| w == [0xc1, 0x19, 0x05, 0xdc]));
        assert!(bytes.windows(3).any(|w| w == [0x42, b'h', b'i']));
        assert_eq!(Format::Cbor.decode::<Sample>(&bytes).unwrap(), s);
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Shapes {
        name: Option<String>,
        count: Option<i64>,
        flag: Option<bool>,
        tags: Option<std::collections::BTreeMap<String, String>>,
        keys: Option<Vec<String>>,
        data: Option<Blob>,
        at: Option<Timestamp>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: Option<String>,
    }

    #[test]
    fn type_mismatches_are_worded_as_aws_words_them() {
        let said = |body: &str| {
            Format::Json
                .decode::<Shapes>(body.as_bytes())
                .unwrap_err()
                .message
        };
        let number = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";
        for (body, want) in [
            (r#"{"Name":true}"#, "class java.lang.Boolean can not be converted to an String".to_string()),
            (r#"{"Name":23}"#, format!("{number} can not be converted to an String")),
            (r#"{"Name":34.56}"#, format!("{number} can not be converted to an String")),
            (r#"{"Name":[]}"#, "Start of list found where not expected".to_string()),
            (r#"{"Name":{}}"#, "Start of structure or map found where not expected.".to_string()),
            (r#"{"Count":"23"}"#, "class java.lang.String can not be converted to an Integer".to_string()),
            (r#"{"Count":true}"#, "class java.lang.Boolean can not be converted to an Integer".to_string()),
            (r#"{"Flag":"23"}"#, "'23' can not be converted to an Boolean".to_string()),
            (r#"{"Tags":"23"}"#, "Expected map or null".to_string()),
            (r#"{"Tags":[]}"#, "Start of list found where not expected".to_string()),
            (r#"{"Keys":23}"#, "Expected list or null".to_string()),
            (r#"{"Keys":{}}"#, "Start of structure or map found where not expected.".to_string()),
            (r#"{"Inner":"23"}"#, "Expected null".to_string()),
            (r#"{"Data":true}"#, "class java.lang.Boolean can not be converted to a Blob".to_string()),
            (r#"{"Data":"23456"}"#, "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5".to_string()),
            (r#"{"Data":"=+/="}"#, "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='".to_string()),
            (r#"{"Data":"+/+="}"#, "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected".to_string()),
            (r#"{"At":true}"#, "class java.lang.Boolean can not be converted to milliseconds since epoch".to_string()),
            (r#"{"At":"23"}"#, "class java.lang.String can not be converted to milliseconds since epoch".to_string()),
            (r#"{"At":[]}"#, "Start of list found where not expected".to_string()),
            (r#"{"Inner":[]}"#, "Start of list found where not expected".to_string()),
        ] {
            assert_eq!(said(body), want, "{body}");
        }
    }

    #[test]
    fn garbage_is_a_serialization_error() {
        let err = Format::Json.decode::<Sample>(b"{not json").unwrap_err();
        assert_eq!(err.code, ErrorCode::SerializationException);
        let err = Format::Json
            .decode::<Sample>(br#"{"data":"!!!","at":1}"#)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::SerializationException);
        let err = Format::Cbor.decode::<Sample>(&[0xff, 0x00]).unwrap_err();
        assert_eq!(err.code, ErrorCode::SerializationException);
    }
}

#[cfg(test)]
mod large_blob_tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        data: Option<Blob>,
    }

    #[test]
    fn cbor_blobs_larger_than_the_scratch_buffer_decode() {
        for len in [4096usize, 4097, 65_536, 1_048_577] {
            let mut body = Vec::new();
            ciborium::into_writer(
                &ciborium::Value::Map(vec![(
                    ciborium::Value::Text("data".into()),
                    ciborium::Value::Bytes(vec![7u8; len]),
                )]),
                &mut body,
            )
            .unwrap();
            let holder: Holder = Format::Cbor.decode(&body).unwrap();
            assert_eq!(holder.data.unwrap().0.len(), len);
        }
    }
}
