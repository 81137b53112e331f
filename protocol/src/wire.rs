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
                serde_json::from_slice(body).map_err(|e| serialization(e.to_string()))
            }
            Format::Cbor => {
                if body.is_empty() {
                    // An empty CBOR map.
                    return ciborium::from_reader(&[0xa0u8][..])
                        .map_err(|e| serialization(e.to_string()));
                }
                ciborium::from_reader(body).map_err(|e| serialization(e.to_string()))
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
                    .map_err(|_| E::custom("Base64 encoded data is not valid"))
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
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                let seconds: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| E::custom("timestamp is not a number"))?;
                self.visit_f64(seconds)
            }
        }
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
