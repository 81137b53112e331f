//! The retention janitor: deletes the catalog rows of chunks whose records have all
//! outlived their stream's retention period, then the objects (segment files, or S3
//! objects) no row names any more. Reads already skip expired records, so TRIM_HORIZON
//! moves as time passes whether or not the janitor has run; the janitor gives the space
//! back.

use std::sync::Arc;
use std::time::Duration;

use catalog::{Catalog, CatalogError};

use crate::objects::ObjectStore;

/// How often the janitor runs.
pub const JANITOR_INTERVAL: Duration = Duration::from_secs(60);
/// Chunk rows one pass deletes at most.
const EXPIRED_ROWS_PER_PASS: i64 = 10_000;
/// An object is deleted only this long after it was last written: a flush may have
/// written it and not yet committed the rows that name it.
pub const SEGMENT_GRACE: Duration = Duration::from_secs(600);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired_rows: u64,
    pub deleted_segments: usize,
}

/// One pass at `now_ms`.
pub async fn sweep(
    catalog: &Catalog,
    store: &Arc<ObjectStore>,
    now_ms: i64,
    grace: Duration,
) -> Result<Swept, CatalogError> {
    let expired_rows = catalog.expire_chunks(now_ms, EXPIRED_ROWS_PER_PASS).await?;
    let referenced = catalog.referenced_objects().await?;
    let deleted = store
        .delete_unreferenced(referenced, grace)
        .await
        .map_err(|e| CatalogError::Corrupt {
            what: format!("deleting unreferenced objects: {e}"),
        })?;
    if expired_rows > 0 || !deleted.is_empty() {
        tracing::info!(
            expired_rows,
            deleted_segments = deleted.len(),
            "retention janitor"
        );
    }
    Ok(Swept {
        expired_rows,
        deleted_segments: deleted.len(),
    })
}
