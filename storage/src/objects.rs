//! The object store the writer, the reader and the janitor use: the local segment store
//! of `sluice serve` (`segment.rs`), or an S3-compatible bucket for the split
//! deployment, where any number of data-plane processes write and read.
//!
//! On S3 one flush is one PUT of a new, immutable object under a unique key
//! (`segments/<micros>-<random>.seg`, created only if absent), so the object key and
//! offset (always 0) are known before the chunks are encoded and sealed, exactly as with
//! an append. The PUT completes before the catalog commit, so a record is acknowledged
//! only once its bytes are durable in the bucket. Reads are ranged GETs. Every S3 call
//! has a deadline, and the client retries within it.
//!
//! Errors come back as `std::io::Error` (a missing object is `NotFound`) so the writer's
//! and reader's error types stay the same for both stores.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use crate::SecretText;
use protocol::clock::SharedClock;

use crate::segment::{SEGMENT_PREFIX, SegmentStore, check_key, new_key};

/// A PUT of one flush (at most 16 MiB) must finish within this, retries included.
pub const S3_PUT_TIMEOUT: Duration = Duration::from_secs(30);
/// A ranged GET of one chunk, or one DELETE, must finish within this.
pub const S3_GET_TIMEOUT: Duration = Duration::from_secs(10);
/// Listing the bucket for one janitor pass must finish within this.
const S3_LIST_TIMEOUT: Duration = Duration::from_secs(120);
/// Objects one janitor pass deletes at most.
const S3_DELETES_PER_PASS: usize = 10_000;
/// Objects one janitor pass looks at most (a bounded listing).
const S3_LISTED_PER_PASS: usize = 1_000_000;

/// Where an S3-compatible object store is and how to sign for it.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None`: AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretText>,
    /// Path-style addressing (`https://host/bucket/key`) rather than virtual-hosted.
    pub path_style: bool,
}

impl S3Config {
    /// Whether plain HTTP may be used: only for an endpoint on this machine (a test
    /// server); anything else must be https.
    pub fn allows_http(&self) -> Result<bool, String> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(false);
        };
        if let Some(rest) = endpoint.strip_prefix("http://") {
            let host = rest.split('/').next().unwrap_or("");
            let host = match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            };
            if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return Ok(true);
            }
            return Err(format!(
                "SLUICE_S3_ENDPOINT {endpoint:?} is plain http to another machine: use https"
            ));
        }
        if endpoint.starts_with("https://") {
            Ok(false)
        } else {
            Err(format!(
                "SLUICE_S3_ENDPOINT {endpoint:?} must start with https:// (or http://127.0.0.1)"
            ))
        }
    }
}

/// Which object store a server uses.
#[derive(Debug, Clone)]
pub enum ObjectStoreConfig {
    /// Segment files under `DATA_DIR/objects`.
    Local,
    S3(S3Config),
}

#[derive(Debug)]
pub struct S3Store {
    client: AmazonS3,
    bucket: String,
    /// Names new objects and dates the janitor's grace.
    clock: SharedClock,
}

impl S3Store {
    pub fn open(config: &S3Config, clock: SharedClock) -> io::Result<S3Store> {
        let allow_http = config
            .allows_http()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(allow_http)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(S3_PUT_TIMEOUT),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.0.as_str());
        }
        let client = builder.build().map_err(io::Error::other)?;
        Ok(S3Store {
            client,
            bucket: config.bucket.clone(),
            clock,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// One listing call, so a missing bucket or wrong credentials fail at start.
    pub async fn check(&self) -> io::Result<()> {
        let prefix = ObjectPath::from(SEGMENT_PREFIX);
        deadline(
            S3_GET_TIMEOUT,
            "LIST",
            SEGMENT_PREFIX,
            self.client.list_with_delimiter(Some(&prefix)),
        )
        .await?;
        Ok(())
    }

    /// Stores `bytes` as a new object under `key`; fails if the key exists.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> io::Result<()> {
        check_key(key)?;
        let path = ObjectPath::from(key);
        let put = self.client.put_opts(
            &path,
            PutPayload::from(bytes),
            PutOptions::from(PutMode::Create),
        );
        deadline(S3_PUT_TIMEOUT, "PUT", key, put).await?;
        Ok(())
    }

    pub async fn read(&self, key: &str, offset: u64, len: usize) -> io::Result<Bytes> {
        check_key(key)?;
        let range = offset..offset + len as u64;
        let bytes = deadline(
            S3_GET_TIMEOUT,
            "GET",
            key,
            self.client.get_range(&ObjectPath::from(key), range),
        )
        .await?;
        if bytes.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{key}: asked for {len} bytes at {offset}, got {}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Deletes the objects under `segments/` that `referenced` does not name and that
    /// were last modified at least `grace` ago (a PUT may have completed whose rows are
    /// not committed yet). Returns the keys deleted.
    pub async fn delete_unreferenced(
        &self,
        referenced: &HashSet<String>,
        grace: Duration,
    ) -> io::Result<Vec<String>> {
        let cutoff = protocol::clock::utc(self.clock.now_ms())
            - chrono::Duration::from_std(grace).map_err(|e| io::Error::other(e.to_string()))?;
        let prefix = ObjectPath::from(SEGMENT_PREFIX);
        let listing = async {
            let mut listed = self.client.list(Some(&prefix));
            let mut doomed = Vec::new();
            let mut seen = 0usize;
            while let Some(meta) = listed.next().await {
                let meta = meta?;
                seen += 1;
                let key = meta.location.to_string();
                if check_key(&key).is_ok()
                    && !referenced.contains(&key)
                    && meta.last_modified <= cutoff
                {
                    doomed.push(key);
                }
                if doomed.len() >= S3_DELETES_PER_PASS || seen >= S3_LISTED_PER_PASS {
                    break;
                }
            }
            Ok::<_, object_store::Error>(doomed)
        };
        let doomed = deadline(S3_LIST_TIMEOUT, "LIST", SEGMENT_PREFIX, listing).await?;
        let mut deleted = Vec::with_capacity(doomed.len());
        for key in doomed {
            let path = ObjectPath::from(key.as_str());
            deadline(S3_GET_TIMEOUT, "DELETE", &key, self.client.delete(&path)).await?;
            deleted.push(key);
        }
        Ok(deleted)
    }
}

/// Runs one S3 call with a hard deadline (the client's own retries happen inside it).
async fn deadline<T>(
    limit: Duration,
    op: &str,
    key: &str,
    call: impl Future<Output = Result<T, object_store::Error>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(io::Error::from),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("S3 {op} of {key} took longer than {limit:?}"),
        )),
    }
}

/// The object store of a server: one of the two kinds, chosen at start.
#[derive(Debug)]
pub enum ObjectStore {
    Local(SegmentStore),
    S3(S3Store),
}

impl ObjectStore {
    /// Whether the store answers: the bucket lists (S3), the segment directory is
    /// there (local).
    pub async fn check(&self) -> io::Result<()> {
        match self {
            ObjectStore::S3(s3) => s3.check().await,
            ObjectStore::Local(local) => local.check(),
        }
    }

    /// Runs `work` on the local segment store on a blocking thread (its file I/O
    /// blocks). Only for a local store.
    async fn on_local<R: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&SegmentStore) -> R + Send + 'static,
    ) -> Result<R, tokio::task::JoinError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || match &*store {
            ObjectStore::Local(segments) => work(segments),
            ObjectStore::S3(_) => unreachable!("on_local is called for a local store only"),
        })
        .await
    }

    /// Encodes `len` bytes with `encode` (told the object key and offset they will land
    /// at, and handed `state`) and stores them durably; returns `state` back with the
    /// key and offset. Encoding runs on a blocking thread. `Err` is a panic in `encode`.
    pub async fn append_with<T, F>(
        self: &Arc<Self>,
        len: usize,
        state: T,
        encode: F,
    ) -> Result<(T, io::Result<(String, u64)>), tokio::task::JoinError>
    where
        T: Send + 'static,
        F: FnOnce(&T, &str, u64, &mut Vec<u8>) + Send + 'static,
    {
        match &**self {
            ObjectStore::Local(_) => {
                self.on_local(move |segments| {
                    let appended = segments
                        .append_with(len, |key, offset, out| encode(&state, key, offset, out));
                    (state, appended)
                })
                .await
            }
            ObjectStore::S3(s3) => {
                let key = match new_key(s3.clock.as_ref()) {
                    Ok(key) => key,
                    Err(e) => return Ok((state, Err(e))),
                };
                let (state, key, bytes) = tokio::task::spawn_blocking(move || {
                    let mut bytes = Vec::with_capacity(len);
                    encode(&state, &key, 0, &mut bytes);
                    // INVARIANT: the rows name offsets computed from `len`.
                    assert_eq!(
                        bytes.len(),
                        len,
                        "encode wrote other than the announced length"
                    );
                    (state, key, bytes)
                })
                .await?;
                // INVARIANT: the PUT has completed (the object is durable in the bucket)
                // before the caller commits the rows that name it.
                let stored = s3.put(&key, bytes).await.map(|()| (key, 0));
                Ok((state, stored))
            }
        }
    }

    /// Stores a brand-new object of `len` bytes that `encode` writes (told its key),
    /// durably, and returns its key. Call it on a blocking thread of the runtime (S3
    /// waits for its PUT there).
    pub fn write_object_blocking(
        &self,
        len: usize,
        encode: impl FnOnce(&str, &mut Vec<u8>),
    ) -> io::Result<String> {
        match self {
            ObjectStore::Local(segments) => segments.write_object(len, encode),
            ObjectStore::S3(s3) => {
                let key = new_key(s3.clock.as_ref())?;
                let mut bytes = Vec::with_capacity(len);
                encode(&key, &mut bytes);
                assert_eq!(
                    bytes.len(),
                    len,
                    "encode wrote other than the announced length"
                );
                tokio::runtime::Handle::current().block_on(s3.put(&key, bytes))?;
                Ok(key)
            }
        }
    }

    /// `read`, on a blocking thread of the runtime.
    pub fn read_blocking(&self, key: &str, offset: u64, len: usize) -> io::Result<Bytes> {
        match self {
            ObjectStore::Local(segments) => segments.read(key, offset, len).map(Bytes::from),
            ObjectStore::S3(s3) => {
                tokio::runtime::Handle::current().block_on(s3.read(key, offset, len))
            }
        }
    }

    /// Reads `len` bytes at `offset` of the object `key`.
    pub async fn read(self: &Arc<Self>, key: &str, offset: u64, len: usize) -> io::Result<Bytes> {
        match &**self {
            ObjectStore::Local(_) => {
                let key = key.to_string();
                self.on_local(move |segments| segments.read(&key, offset, len).map(Bytes::from))
                    .await
                    .map_err(|e| io::Error::other(format!("a segment read panicked: {e}")))?
            }
            ObjectStore::S3(s3) => s3.read(key, offset, len).await,
        }
    }

    /// Deletes the objects no catalog row names, after `grace`. Returns the keys deleted.
    pub async fn delete_unreferenced(
        self: &Arc<Self>,
        referenced: HashSet<String>,
        grace: Duration,
    ) -> io::Result<Vec<String>> {
        match &**self {
            ObjectStore::Local(_) => self
                .on_local(move |segments| segments.delete_unreferenced(&referenced, grace))
                .await
                .map_err(|e| io::Error::other(format!("the segment sweep panicked: {e}")))?,
            ObjectStore::S3(s3) => s3.delete_unreferenced(&referenced, grace).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: &str) -> S3Config {
        S3Config {
            endpoint: Some(endpoint.to_string()),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
        }
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert_eq!(s3("http://127.0.0.1:9000").allows_http(), Ok(true));
        assert_eq!(s3("http://localhost:9000/").allows_http(), Ok(true));
        assert_eq!(s3("https://s3.example.com").allows_http(), Ok(false));
        assert!(s3("http://s3.example.com").allows_http().is_err());
        assert!(s3("http://127.0.0.1.example.com").allows_http().is_err());
        assert!(s3("ftp://127.0.0.1").allows_http().is_err());
    }

    #[test]
    fn keys_are_unique_and_well_formed() {
        let a = new_key(&protocol::clock::SystemClock).unwrap();
        let b = new_key(&protocol::clock::SystemClock).unwrap();
        assert_ne!(a, b);
        check_key(&a).unwrap();
    }

    #[tokio::test]
    async fn the_local_store_through_the_common_face() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(dir.path(), protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let (state, placed) = store
            .append_with(5, 7u32, |state, _key, offset, out| {
                assert_eq!((*state, offset), (7, 0));
                out.extend_from_slice(b"hello");
            })
            .await
            .unwrap();
        let (key, offset) = placed.unwrap();
        assert_eq!(state, 7);
        assert_eq!(&store.read(&key, offset + 1, 3).await.unwrap()[..], b"ell");
        let missing = store.read("segments/00-00.seg", 0, 1).await.unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
