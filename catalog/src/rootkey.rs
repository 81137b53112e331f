//! The root key: 32 bytes that seal every secret the catalog keeps (access-key secrets
//! now, master keys when the KMS arrives). It lives outside the database: in a file
//! (made on first start of the embedded default, mode 0600) or, in a cluster, in a
//! Secret mounted as a file. A stolen database alone reveals no secret.
//!
//! Sealed format: `version (1) | nonce (12) | ciphertext | tag (16)`, AES-256-GCM with
//! caller-given associated data that binds the ciphertext to its row.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

const KEY_BYTES: usize = 32;
const SEALED_VERSION: u8 = 1;
const TAG_BYTES: usize = 16;
/// What `RootKey::seal` adds to a plaintext: a version byte, the nonce and the tag.
pub const SEAL_OVERHEAD_BYTES: usize = 1 + NONCE_LEN + TAG_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    #[error("reading the root key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the root key file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the root key file {path} must hold 64 hex characters (32 bytes)")]
    Malformed { path: PathBuf },
    #[error("the root key must be 64 hex characters (32 bytes)")]
    MalformedValue,
    #[error(
        "the root key file {path} is open to others or writable by its group (mode {mode:o}); chmod 600 it"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("sealed secret is malformed or was not sealed under this root key")]
    Open,
}

pub struct RootKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    /// Loads the key from `path`, making it first if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<RootKey, RootKeyError> {
        if !path.exists() {
            let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
            aws_lc_rs::rand::fill(bytes.as_mut()).expect("system randomness");
            let hex = Zeroizing::new(to_hex(bytes.as_ref()));
            let write = || -> std::io::Result<()> {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                f.write_all(hex.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()?;
                if let Some(dir) = path.parent() {
                    fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            };
            match write() {
                Ok(()) => {}
                // Another process made it first; read theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(RootKeyError::Write {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        let read = |source| RootKeyError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Readable by its group is allowed (Kubernetes mounts a Secret 0440 for the pod's
        // fsGroup); writable by its group, or any access for others, is not.
        let mode = fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o027 != 0 {
            return Err(RootKeyError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(read)?);
        let bytes = from_hex(text.trim()).ok_or_else(|| RootKeyError::Malformed {
            path: path.to_path_buf(),
        })?;
        Self::from_bytes(&bytes).ok_or_else(|| RootKeyError::Malformed {
            path: path.to_path_buf(),
        })
    }

    /// The key given as 64 hex characters, e.g. from `SLUICE_ROOT_KEY` (a Kubernetes
    /// Secret in an environment variable).
    pub fn from_hex(text: &str) -> Result<RootKey, RootKeyError> {
        let bytes = from_hex(text.trim()).ok_or(RootKeyError::MalformedValue)?;
        Self::from_bytes(&bytes).ok_or(RootKeyError::MalformedValue)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<RootKey> {
        if bytes.len() != KEY_BYTES {
            return None;
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(RootKey {
            key: LessSafeKey::new(key),
        })
    }

    /// Seals `plaintext`, bound to `aad`, under a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .expect("sealing a small secret cannot fail");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        in_out.iter_mut().for_each(|b| *b = 0);
        sealed
    }

    /// Opens what `seal` made with the same `aad`; any change is an error.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, RootKeyError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_BYTES || sealed[0] != SEALED_VERSION {
            return Err(RootKeyError::Open);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
            .map_err(|_| RootKeyError::Open)?;
        let mut in_out = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| RootKeyError::Open)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if text.len() != KEY_BYTES * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(Zeroizing::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let a = RootKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = a.seal(b"secret", b"row-1");
        let b = RootKey::load_or_create(&path).unwrap();
        assert_eq!(&b.open(&sealed, b"row-1").unwrap()[..], b"secret");
        // A Secret mounted for the pod's group reads; one open to others does not.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
        assert!(RootKey::load_or_create(&path).is_ok());
        for open in [0o444, 0o460, 0o604] {
            fs::set_permissions(&path, fs::Permissions::from_mode(open)).unwrap();
            assert!(
                matches!(
                    RootKey::load_or_create(&path),
                    Err(RootKeyError::Exposed { .. })
                ),
                "{open:o}"
            );
        }
    }

    #[test]
    fn tampering_and_the_wrong_row_fail() {
        let key = RootKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal(b"secret", b"row-1");
        assert!(key.open(&sealed, b"row-2").is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(key.open(&bad, b"row-1").is_err(), "byte {i}");
        }
        let other = RootKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed, b"row-1").is_err());
    }

    #[test]
    fn a_key_given_as_hex_is_the_same_key_as_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let from_file = RootKey::load_or_create(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let from_value = RootKey::from_hex(&text).unwrap();
        let sealed = from_file.seal(b"secret", b"row-1");
        assert_eq!(
            from_value.open(&sealed, b"row-1").unwrap().as_slice(),
            b"secret"
        );
        assert!(RootKey::from_hex("abcd").is_err());
        assert!(RootKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn exposed_or_malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        fs::write(&path, "ab".repeat(32)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            RootKey::load_or_create(&path),
            Err(RootKeyError::Exposed { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(RootKey::load_or_create(&path).is_ok());
        fs::write(&path, "xyz").unwrap();
        assert!(matches!(
            RootKey::load_or_create(&path),
            Err(RootKeyError::Malformed { .. })
        ));
    }
}
