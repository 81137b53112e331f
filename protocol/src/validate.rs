//! Member constraints, checked and worded as AWS's validation layer does.

use crate::error::ApiError;
use crate::limits;

/// `StreamName`: 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub fn stream_name(name: &str) -> Result<(), ApiError> {
    resource_name(name, "streamName")
}

/// `ConsumerName`: 1..=128 characters of `[a-zA-Z0-9_.-]`, as a stream's name.
pub fn consumer_name(name: &str) -> Result<(), ApiError> {
    resource_name(name, "consumerName")
}

fn resource_name(name: &str, member: &str) -> Result<(), ApiError> {
    let len = name.chars().count();
    if len < 1 {
        return Err(ApiError::validation(
            name,
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if len > limits::STREAM_NAME_CHARS_MAX {
        return Err(ApiError::validation(
            name,
            member,
            "Member must have length less than or equal to 128",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(ApiError::validation(
            name,
            member,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

/// `PartitionKey`: 1..=256 Unicode characters.
pub fn partition_key(key: &str, member: &str) -> Result<(), ApiError> {
    let len = key.chars().count();
    if len < 1 {
        return Err(ApiError::validation(
            key,
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if len > limits::PARTITION_KEY_CHARS_MAX {
        return Err(ApiError::validation(
            key,
            member,
            "Member must have length less than or equal to 256",
        ));
    }
    Ok(())
}

/// A record's data blob: at most 1 MiB.
pub fn data(bytes: &[u8], member: &str) -> Result<(), ApiError> {
    data_within(bytes, member, limits::RECORD_BYTES_MAX)
}

/// A record's data blob: at most `max` bytes (its stream's MaxRecordSizeInKiB).
pub fn data_within(bytes: &[u8], member: &str, max: usize) -> Result<(), ApiError> {
    if bytes.len() > max {
        return Err(ApiError::validation(
            format!(
                "java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]",
                bytes.len()
            ),
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// An integer member within `min..=max`.
pub fn int_range(value: i64, member: &str, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min {
        return Err(ApiError::validation(
            value,
            member,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(ApiError::validation(
            value,
            member,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A required member that is absent.
pub fn required<T>(value: Option<T>, member: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::validation("null", member, "Member must not be null"))
}

/// A string member of bounded length.
pub fn string_length(value: &str, member: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len < min {
        return Err(ApiError::validation(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(ApiError::validation(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// `ShardId`: 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub fn shard_id(id: &str, member: &str) -> Result<(), ApiError> {
    string_length(id, member, 1, 128)?;
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(ApiError::validation(
            id,
            member,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn stream_name_bounds() {
        assert!(stream_name("a").is_ok());
        assert!(stream_name(&"a".repeat(128)).is_ok());
        assert_eq!(
            stream_name(&"a".repeat(129)).unwrap_err().code,
            ErrorCode::Validation
        );
        assert_eq!(stream_name("").unwrap_err().code, ErrorCode::Validation);
        assert_eq!(stream_name("a b").unwrap_err().code, ErrorCode::Validation);
        assert_eq!(stream_name("a/b").unwrap_err().code, ErrorCode::Validation);
    }

    #[test]
    fn partition_key_counts_characters_not_bytes() {
        assert!(partition_key(&"é".repeat(256), "partitionKey").is_ok());
        assert!(partition_key(&"é".repeat(257), "partitionKey").is_err());
        assert!(partition_key("", "partitionKey").is_err());
    }

    #[test]
    fn data_bound_is_one_mebibyte() {
        assert!(data(&vec![0; limits::RECORD_BYTES_MAX], "data").is_ok());
        let err = data(&vec![0; limits::RECORD_BYTES_MAX + 1], "data").unwrap_err();
        assert!(err.message.contains("less than or equal to 1048576"));
    }

    #[test]
    fn int_range_names_the_bound() {
        assert!(int_range(1, "limit", 1, 10_000).is_ok());
        let err = int_range(10_001, "limit", 1, 10_000).unwrap_err();
        assert!(
            err.message.contains("less than or equal to 10000"),
            "{}",
            err.message
        );
        let err = int_range(0, "limit", 1, 10_000).unwrap_err();
        assert!(err.message.contains("greater than or equal to 1"));
    }
}
