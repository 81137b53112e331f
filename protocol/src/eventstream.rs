//! The `application/vnd.amazon.eventstream` framing that SubscribeToShard answers in.
//!
//! A message is a prelude (total length, headers length, both u32 big-endian, and a
//! CRC-32 of those 8 bytes), the headers (each: name length u8, name, value type u8,
//! and for strings (type 7) a u16 big-endian length and the UTF-8 bytes), the payload,
//! and a CRC-32 of everything before it. CRC-32 is the IEEE polynomial.

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
/// The header value type of a string.
const STRING: u8 = 7;
/// A message is at most this long (AWS's event stream limit is 16 MiB).
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One message with string headers. Panics if a header name is over 255 bytes or a
/// value over 65,535 (the names and values here are fixed by the protocol).
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = 12 + headers_len + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = CRC32.checksum(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        out.push(u8::try_from(name.len()).expect("header names are short"));
        out.extend_from_slice(name.as_bytes());
        out.push(STRING);
        out.extend_from_slice(
            &u16::try_from(value.len())
                .expect("header values are short")
                .to_be_bytes(),
        );
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let message_crc = CRC32.checksum(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// An event of `event_type` whose payload is in `content_type`.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// An exception event, as a subscription that fails after it started reports it.
pub fn exception(exception_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    message(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_lengths_and_checksums() {
        let framed = event("SubscribeToShardEvent", "application/json", b"{}");
        let total = u32::from_be_bytes(framed[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(framed[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, framed.len());
        assert_eq!(
            u32::from_be_bytes(framed[8..12].try_into().unwrap()),
            CRC32.checksum(&framed[..8])
        );
        assert_eq!(&framed[12 + headers..total - 4], b"{}");
        assert_eq!(
            u32::from_be_bytes(framed[total - 4..].try_into().unwrap()),
            CRC32.checksum(&framed[..total - 4])
        );
        // The first header: ":message-type" = "event".
        assert_eq!(framed[12] as usize, ":message-type".len());
        assert_eq!(&framed[13..26], b":message-type");
        assert_eq!(framed[26], STRING);
        assert_eq!(&framed[27..29], &5u16.to_be_bytes());
        assert_eq!(&framed[29..34], b"event");
    }

    #[test]
    fn the_crc_is_ieee() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }
}
