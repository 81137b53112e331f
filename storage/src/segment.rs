//! The local object store: chunks appended to segment files under `DATA_DIR/objects`.
//!
//! One flush is one append. The file's data is synced before the append returns, and a
//! new segment's directory entry is synced before its first append returns, so a chunk
//! that the catalog names is on disk. A segment is never appended to after a failed
//! write or a restart (its tail may be torn): the next append starts a new segment.
//! Bytes that no catalog row names (a flush whose commit failed) are never read.
//! Compaction writes whole new objects instead (`write_object`), never appended to.

use protocol::clock::{Clock, SharedClock};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A segment is closed once it is this long; the next append opens a new one.
pub const SEGMENT_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Read handles kept open at most.
const READ_HANDLES_MAX: usize = 256;
/// Every object key starts with this (both stores).
pub const SEGMENT_PREFIX: &str = "segments/";

/// Checks that `key` is one of ours (`segments/<hex>-<hex>.seg`) and returns its name
/// under the prefix.
// INVARIANT: keys come from the catalog; refusing anything else means a corrupt row
// cannot name a path outside the store, or another object in a shared bucket.
pub fn check_key(key: &str) -> io::Result<&str> {
    key.strip_prefix(SEGMENT_PREFIX)
        .filter(|n| {
            n.strip_suffix(".seg").is_some_and(|stem| {
                !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            })
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad object key {key:?}"),
            )
        })
}

#[derive(Debug)]
struct ActiveSegment {
    key: String,
    file: File,
    len: u64,
}

#[derive(Debug)]
pub struct SegmentStore {
    root: PathBuf,
    active: Mutex<Option<ActiveSegment>>,
    readers: Mutex<HashMap<String, Arc<File>>>,
    /// Names new segments (their keys start with the time).
    clock: SharedClock,
}

/// A new object key no other process will pick: the time in microseconds and 64
/// random bits (the local store and S3 name objects alike).
pub(crate) fn new_key(clock: &dyn Clock) -> io::Result<String> {
    let now_us = clock.now_us().max(0);
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| io::Error::other("no randomness"))?;
    Ok(format!(
        "{SEGMENT_PREFIX}{:016x}-{:016x}.seg",
        now_us,
        u64::from_le_bytes(random)
    ))
}

impl SegmentStore {
    pub fn open(root: &Path, clock: SharedClock) -> io::Result<SegmentStore> {
        fs::create_dir_all(root.join(SEGMENT_PREFIX))?;
        Ok(SegmentStore {
            root: root.to_path_buf(),
            active: Mutex::new(None),
            readers: Mutex::new(HashMap::new()),
            clock,
        })
    }

    /// Whether the segment directory is there and a directory.
    pub fn check(&self) -> io::Result<()> {
        let dir = self.root.join(SEGMENT_PREFIX);
        if fs::metadata(&dir)?.is_dir() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{} is not a directory",
                dir.display()
            )))
        }
    }

    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        let name = check_key(key)?;
        Ok(self.root.join(SEGMENT_PREFIX).join(name))
    }

    fn new_segment(&self) -> io::Result<ActiveSegment> {
        let key = new_key(self.clock.as_ref())?;
        let path = self.path_of(&key)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        // The new name must survive a crash before any chunk in it is acknowledged.
        File::open(path.parent().expect("segments have a parent"))?.sync_all()?;
        Ok(ActiveSegment { key, file, len: 0 })
    }

    /// Appends `bytes` durably and returns the object key and offset they start at.
    /// Blocking: call it from a blocking thread.
    pub fn append(&self, bytes: &[u8]) -> io::Result<(String, u64)> {
        self.append_with(bytes.len(), |_, _, out| out.extend_from_slice(bytes))
    }

    /// Appends the `len` bytes that `encode` writes, durably, and returns the object
    /// key and offset they start at. `encode` is told that key and offset before it
    /// writes, so what it writes can be bound to where it lands (sealed chunks are).
    /// Blocking: call it from a blocking thread.
    pub fn append_with(
        &self,
        len: usize,
        encode: impl FnOnce(&str, u64, &mut Vec<u8>),
    ) -> io::Result<(String, u64)> {
        // INVARIANT: the segment lock is held from choosing (key, offset) until the
        // bytes are written, so no other append can land at the place `encode` was told.
        let mut active = self.active.lock().expect("segment lock");
        if active
            .as_ref()
            .is_none_or(|a| a.len + len as u64 > SEGMENT_BYTES_MAX && a.len > 0)
        {
            *active = Some(self.new_segment()?);
        }
        let segment = active.as_mut().expect("just made");
        let offset = segment.len;
        let mut bytes = Vec::with_capacity(len);
        encode(&segment.key, offset, &mut bytes);
        // INVARIANT: the caller computed offsets inside the append from `len`, and the
        // segment's length bookkeeping relies on it too.
        assert_eq!(
            bytes.len(),
            len,
            "encode wrote other than the announced length"
        );
        let result = segment
            .file
            .write_all(&bytes)
            .and_then(|()| segment.file.sync_data());
        match result {
            Ok(()) => {
                segment.len += len as u64;
                Ok((segment.key.clone(), offset))
            }
            Err(e) => {
                // The tail of this segment is unknown now; never append to it again.
                *active = None;
                Err(e)
            }
        }
    }

    /// Writes a brand-new object holding only the `len` bytes `encode` writes, and
    /// returns its key. `encode` is told the key before it writes, so what it writes
    /// can be bound to where it lands. The object is durable when this returns (its
    /// data and its directory entry synced); it is never the active segment and never
    /// appended to. Until a catalog row names it, the janitor spares it only for
    /// `janitor::SEGMENT_GRACE` after this returns. Blocking: call it from a blocking
    /// thread.
    pub fn write_object(
        &self,
        len: usize,
        encode: impl FnOnce(&str, &mut Vec<u8>),
    ) -> io::Result<String> {
        let key = new_key(self.clock.as_ref())?;
        let path = self.path_of(&key)?;
        let mut bytes = Vec::with_capacity(len);
        encode(&key, &mut bytes);
        assert_eq!(
            bytes.len(),
            len,
            "encode wrote other than the announced length"
        );
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| File::open(path.parent().expect("segments have a parent"))?.sync_all());
        if let Err(e) = written {
            // Nothing names it; removing it now only saves the janitor the work.
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(key)
    }

    fn reader(&self, key: &str) -> io::Result<Arc<File>> {
        let mut readers = self.readers.lock().expect("reader lock");
        if let Some(file) = readers.get(key) {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(self.path_of(key)?)?);
        if readers.len() >= READ_HANDLES_MAX {
            readers.clear();
        }
        readers.insert(key.to_string(), file.clone());
        Ok(file)
    }

    /// Deletes the segments not in `referenced`, except the one being appended to and
    /// any modified less than `grace` ago (a flush may have appended to it and not yet
    /// committed the rows that name it). Returns the keys deleted. Blocking.
    pub fn delete_unreferenced(
        &self,
        referenced: &std::collections::HashSet<String>,
        grace: std::time::Duration,
    ) -> io::Result<Vec<String>> {
        let active = self
            .active
            .lock()
            .expect("segment lock")
            .as_ref()
            .map(|a| a.key.clone());
        let mut deleted = Vec::new();
        for entry in fs::read_dir(self.root.join(SEGMENT_PREFIX))? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let key = format!("{SEGMENT_PREFIX}{name}");
            if self.path_of(&key).is_err()
                || referenced.contains(&key)
                || active.as_deref() == Some(key.as_str())
            {
                continue;
            }
            let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
            if age < grace {
                continue;
            }
            self.readers.lock().expect("reader lock").remove(&key);
            fs::remove_file(entry.path())?;
            deleted.push(key);
        }
        if !deleted.is_empty() {
            File::open(self.root.join(SEGMENT_PREFIX))?.sync_all()?;
        }
        Ok(deleted)
    }

    /// Reads `len` bytes at `offset` of the object. Blocking.
    pub fn read(&self, key: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let file = self.reader(key)?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), protocol::clock::SystemClock::shared()).unwrap();
        let (k1, o1) = store.append(b"hello").unwrap();
        let (k2, o2) = store.append(b"world!").unwrap();
        assert_eq!(k1, k2);
        assert_eq!((o1, o2), (0, 5));
        let (k4, o4) = store
            .append_with(3, |key, offset, out| {
                assert_eq!((key, offset), (k1.as_str(), 11));
                out.extend_from_slice(b"abc");
            })
            .unwrap();
        assert_eq!((k4.as_str(), o4), (k1.as_str(), 11));
        assert_eq!(store.read(&k2, o2, 6).unwrap(), b"world!");
        // A fresh store (a restart) starts a new segment and still reads the old one.
        let store = SegmentStore::open(dir.path(), protocol::clock::SystemClock::shared()).unwrap();
        let (k3, o3) = store.append(b"x").unwrap();
        assert_ne!(k3, k1);
        assert_eq!(o3, 0);
        assert_eq!(store.read(&k1, 0, 5).unwrap(), b"hello");
        assert!(store.read(&k1, 100, 5).is_err());
    }

    #[test]
    fn writes_whole_objects_apart_from_the_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), protocol::clock::SystemClock::shared()).unwrap();
        let (active, _) = store.append(b"flush").unwrap();
        let mut told = String::new();
        let key = store
            .write_object(4, |key, out| {
                told = key.to_string();
                out.extend_from_slice(b"only");
            })
            .unwrap();
        assert_eq!(key, told);
        assert_ne!(key, active);
        assert_eq!(store.read(&key, 0, 4).unwrap(), b"only");
        // Appends still go to the active segment, never to the written object.
        let (k, o) = store.append(b"more").unwrap();
        assert_eq!((k.as_str(), o), (active.as_str(), 5));
    }

    #[test]
    fn refuses_keys_outside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(dir.path(), protocol::clock::SystemClock::shared()).unwrap();
        for key in [
            "../etc/passwd",
            "segments/../../x",
            "segments/",
            "other/abc",
        ] {
            assert!(store.read(key, 0, 1).is_err(), "{key}");
        }
    }
}
