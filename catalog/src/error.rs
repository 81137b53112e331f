//! What every catalog function answers with: the backend a catalog runs on and the
//! error a call ends in (a refusal for the caller to fix, or a failure).

use crate::refusal::{Refusal, RefusalKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request cannot be done (not found, in use, a limit): the caller's to fix.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("catalog database error")]
    Database(#[from] sqlx::Error),
    #[error("catalog migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {url:?}: use sqlite:// or postgres://")]
    UnsupportedUrl { url: String },
    #[error("catalog row is corrupt: {what}")]
    Corrupt { what: String },
}

impl CatalogError {
    /// The refusal, when the catalog refused rather than failed.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            CatalogError::Refused(r) => Some(r),
            CatalogError::Database(_)
            | CatalogError::Migrate(_)
            | CatalogError::UnsupportedUrl { .. }
            | CatalogError::Corrupt { .. } => None,
        }
    }

    /// Whether the database failed because its storage is full (SQLite's SQLITE_FULL,
    /// Postgres's disk_full): a condition that passes, so callers are told to retry.
    pub fn is_storage_full(&self) -> bool {
        match self {
            CatalogError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("13" | "53100"))
                    || e.message().contains("database or disk is full")
            }
            CatalogError::Database(_)
            | CatalogError::Refused(_)
            | CatalogError::Migrate(_)
            | CatalogError::UnsupportedUrl { .. }
            | CatalogError::Corrupt { .. } => false,
        }
    }

    /// Whether this is a refusal of `kind`.
    pub fn is(&self, kind: RefusalKind) -> bool {
        self.refusal().is_some_and(|r| r.kind == kind)
    }
}
