//! The data directory: private to the user that runs Sluice (0700, its catalog files
//! 0600, whatever the umask or an earlier owner left), and used by one `sluice serve`
//! at a time (an exclusive lock on `sluice.lock`, released by the kernel when the
//! process ends, however it ends).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::StartError;

/// Makes `dir` (0700) or makes an existing one private, and with `lock` takes its lock.
pub fn prepare(dir: &Path, lock: bool) -> Result<Option<fs::File>, StartError> {
    let data_dir = |source| StartError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(data_dir)?;
    make_private(dir, 0o700)?;
    if !lock {
        return Ok(None);
    }
    let path = dir.join("sluice.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(data_dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Err(StartError::DataDirInUse {
            dir: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(data_dir(source)),
    }
}

/// Creates the SQLite catalog file 0600 before SQLite does (SQLite gives its WAL and
/// shared-memory files the database file's mode), and makes existing ones private.
pub fn private_sqlite(path: &Path) -> Result<(), StartError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| StartError::DataDir {
            path: path.to_path_buf(),
            source,
        })?;
    make_private(path, 0o600)?;
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let companion = Path::new(&name);
        if companion.exists() {
            make_private(companion, 0o600)?;
        }
    }
    Ok(())
}

/// Takes group and other permissions away from `path` when it has any.
fn make_private(path: &Path, mode: u32) -> Result<(), StartError> {
    let refused = |source| StartError::DataDirMode {
        path: path.to_path_buf(),
        source,
    };
    let current = fs::metadata(path).map_err(refused)?.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(refused)?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "made private");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_directory_is_made_private_and_locked_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("catalog.db");
        fs::write(&db, b"").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        let held = prepare(&dir, true).unwrap();
        assert!(held.is_some());
        assert_eq!(mode(&dir), 0o700);
        assert!(matches!(
            prepare(&dir, true),
            Err(StartError::DataDirInUse { .. })
        ));
        private_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        drop(held);
        assert!(prepare(&dir, true).unwrap().is_some());
    }
}
