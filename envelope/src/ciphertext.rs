//! The KMS API's ciphertext blobs: what Encrypt and GenerateDataKey return and Decrypt
//! takes back. A blob names the key that made it (account, key id, key version), so
//! Decrypt needs no KeyId, and it is opaque to callers: they store it and hand it back.
//!
//! Format, version 1 (all integers big-endian):
//!
//! ```text
//! offset  bytes  field
//! 0       1      format version, 1
//! 1       12     account id, ASCII digits
//! 13      16     key id, the UUID's 16 bytes
//! 29      4      key version, >= 1
//! 33      16     salt, random per blob
//! 49      12     nonce, random per blob
//! 61      n      ciphertext
//! 61+n    16     GCM tag
//! ```
//!
//! Each blob is sealed under its own AES-256-GCM key, HKDF-SHA256(key material, salt,
//! info = "sluice kms blob v1" | bytes 0..33), so one key version can seal any number
//! of blobs without approaching GCM's bound on random nonces per key. The associated
//! data is bytes 0..49 followed by the canonical encryption context: changing any
//! header byte, or decrypting with another context, fails to open.

use std::collections::BTreeMap;

use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::{DataKey, DataKeyId, KEY_BYTES, KmsError, NONCE_BYTES, TAG_BYTES};

pub const BLOB_VERSION: u8 = 1;
pub const ACCOUNT_BYTES: usize = 12;
pub const SALT_BYTES: usize = 16;
const HEADER_BYTES: usize = 1 + ACCOUNT_BYTES + 16 + 4;
const AAD_HEADER_BYTES: usize = HEADER_BYTES + SALT_BYTES;
/// How much longer a blob is than its plaintext.
pub const BLOB_OVERHEAD_BYTES: usize = AAD_HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
const HKDF_INFO: &[u8] = b"sluice kms blob v1";

/// An encryption context: string pairs bound to a ciphertext as associated data.
pub type EncryptionContext = BTreeMap<String, String>;

/// Which key version sealed a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobKey {
    pub account: [u8; ACCOUNT_BYTES],
    pub key_id: [u8; 16],
    pub version: u32,
}

impl BlobKey {
    pub fn account_str(&self) -> &str {
        // Checked to be ASCII digits when parsed or made.
        std::str::from_utf8(&self.account).unwrap_or("")
    }

    fn header(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[0] = BLOB_VERSION;
        h[1..13].copy_from_slice(&self.account);
        h[13..29].copy_from_slice(&self.key_id);
        h[29..33].copy_from_slice(&self.version.to_be_bytes());
        h
    }
}

/// An account id as a blob carries it: exactly 12 ASCII digits.
pub fn account_bytes(account: &str) -> Option<[u8; ACCOUNT_BYTES]> {
    let bytes: [u8; ACCOUNT_BYTES] = account.as_bytes().try_into().ok()?;
    bytes.iter().all(u8::is_ascii_digit).then_some(bytes)
}

/// The encryption context as one unambiguous byte string: the pair count, then each
/// pair in byte order of its key, every string preceded by its length (u32).
pub fn canonical_context(context: &EncryptionContext) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Reads the key a blob names, without opening it; `None` when it is not a blob of
/// this format (too short, another version, an account that is not 12 digits).
pub fn blob_key(blob: &[u8]) -> Option<BlobKey> {
    if blob.len() < BLOB_OVERHEAD_BYTES || blob[0] != BLOB_VERSION {
        return None;
    }
    let account: [u8; ACCOUNT_BYTES] = blob[1..13].try_into().ok()?;
    if !account.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let version = u32::from_be_bytes(blob[29..33].try_into().ok()?);
    if version == 0 {
        return None;
    }
    Some(BlobKey {
        account,
        key_id: blob[13..29].try_into().ok()?,
        version,
    })
}

fn blob_data_key(
    material: &DataKey,
    header: &[u8; HEADER_BYTES],
    salt: &[u8],
) -> Result<DataKey, KmsError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(material.expose_bytes());
    let info = [HKDF_INFO, header.as_slice()];
    let mut derived = Zeroizing::new([0u8; KEY_BYTES]);
    prk.expand(&info, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(derived.as_mut()))
        .map_err(|_| KmsError::Open)?;
    DataKey::from_bytes(DataKeyId::new(1).expect("nonzero"), derived.as_ref())
}

/// Seals `plaintext` under key version `key` (whose material is `material`), bound to
/// `context`.
pub fn seal_blob(
    key: BlobKey,
    material: &DataKey,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Vec<u8> {
    let header = key.header();
    let mut salt = [0u8; SALT_BYTES];
    aws_lc_rs::rand::fill(&mut salt).expect("system randomness");
    let blob_key = blob_data_key(material, &header, &salt).expect("HKDF of 32 bytes");
    let mut aad = Vec::with_capacity(AAD_HEADER_BYTES + 64);
    aad.extend_from_slice(&header);
    aad.extend_from_slice(&salt);
    let mut out = aad.clone();
    aad.extend_from_slice(&canonical_context(context));
    crate::seal_into(&blob_key, &aad, plaintext, &mut out);
    out
}

/// Opens a blob that `seal_blob` made under `material` (the version `blob_key(blob)`
/// names) with the same context; anything else is `KmsError::Open`.
pub fn open_blob(
    blob: &[u8],
    material: &DataKey,
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let key = blob_key(blob).ok_or(KmsError::Open)?;
    let header = key.header();
    let salt = &blob[HEADER_BYTES..AAD_HEADER_BYTES];
    let blob_key = blob_data_key(material, &header, salt)?;
    let mut aad = blob[..AAD_HEADER_BYTES].to_vec();
    aad.extend_from_slice(&canonical_context(context));
    crate::open(&blob_key, &aad, &blob[AAD_HEADER_BYTES..]).map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (BlobKey, DataKey) {
        let material = DataKey::generate(DataKeyId::new(3).unwrap());
        let key = BlobKey {
            account: account_bytes("111122223333").unwrap(),
            key_id: [7u8; 16],
            version: 3,
        };
        (key, material)
    }

    fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_names_its_key_and_binds_the_context() {
        let (key, material) = key();
        let ctx = context(&[("purpose", "test"), ("a", "b")]);
        let blob = seal_blob(key, &material, &ctx, b"secret");
        assert_eq!(blob.len(), 6 + BLOB_OVERHEAD_BYTES);
        assert_eq!(blob_key(&blob), Some(key));
        assert_eq!(key.account_str(), "111122223333");
        assert_eq!(&open_blob(&blob, &material, &ctx).unwrap()[..], b"secret");
        // Another context, a missing one, or another key fails.
        assert!(open_blob(&blob, &material, &context(&[("purpose", "test")])).is_err());
        assert!(open_blob(&blob, &material, &EncryptionContext::new()).is_err());
        let other = DataKey::generate(DataKeyId::new(3).unwrap());
        assert!(open_blob(&blob, &other, &ctx).is_err());
        // Every byte is covered: header, salt, nonce, ciphertext and tag.
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(open_blob(&bad, &material, &ctx).is_err(), "byte {i}");
        }
        assert!(open_blob(&blob[..blob.len() - 1], &material, &ctx).is_err());
    }

    #[test]
    fn blobs_differ_and_the_empty_plaintext_seals() {
        let (key, material) = key();
        let ctx = EncryptionContext::new();
        let a = seal_blob(key, &material, &ctx, b"");
        let b = seal_blob(key, &material, &ctx, b"");
        assert_ne!(a, b);
        assert!(open_blob(&a, &material, &ctx).unwrap().is_empty());
    }

    #[test]
    fn canonical_context_is_unambiguous_and_order_free() {
        // ("ab","c") and ("a","bc") must not serialise alike.
        assert_ne!(
            canonical_context(&context(&[("ab", "c")])),
            canonical_context(&context(&[("a", "bc")]))
        );
        assert_eq!(
            canonical_context(&context(&[("x", "1"), ("y", "2")])),
            canonical_context(&context(&[("y", "2"), ("x", "1")]))
        );
    }

    #[test]
    fn foreign_bytes_are_not_blobs() {
        assert!(blob_key(b"").is_none());
        assert!(blob_key(&[0u8; 200]).is_none());
        let (key, material) = key();
        let mut blob = seal_blob(key, &material, &EncryptionContext::new(), b"x");
        blob[1] = b'a';
        assert!(blob_key(&blob).is_none());
        assert!(account_bytes("12345").is_none());
        assert!(account_bytes("12345678901a").is_none());
    }
}
