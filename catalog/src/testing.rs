//! Helpers for tests in this workspace: fresh Postgres databases, and the few ways a
//! test looks at or tampers with chunk rows (to prove that a forged or moved row is
//! refused). They are here so that no SQL lives outside this crate; nothing in a
//! server calls them.

use sqlx::any::AnyPoolOptions;

use crate::compaction::{ChunkRow, chunk_row};
use crate::{Catalog, CatalogError};

/// Which chunk rows an edit touches: every given member must match.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkFilter {
    pub stream_id: Option<i64>,
    pub shard_ordinal: Option<u64>,
    pub first_sequence: Option<u64>,
}

/// One column of a chunk row, set to a value.
#[derive(Debug, Clone)]
pub enum ChunkEdit {
    ObjectKey(String),
    ByteOffset(i64),
    ByteLength(i64),
    DataKeyId(Option<i64>),
    StreamId(i64),
    ShardOrdinal(i64),
    /// Both arrival times.
    ArrivalMs(i64),
}

/// Every chunk row, by stream, shard and first sequence number.
pub async fn chunk_rows(catalog: &Catalog) -> Result<Vec<ChunkRow>, CatalogError> {
    let rows = sqlx::query(
        "SELECT stream_id, shard_ordinal, first_sequence, last_sequence, first_arrival_ms, \
         last_arrival_ms, object_key, byte_offset, byte_length, data_key_id, placement \
         FROM chunks ORDER BY stream_id, shard_ordinal, first_sequence",
    )
    .fetch_all(catalog.pool())
    .await?;
    rows.iter().map(chunk_row).collect()
}

/// Data keys retired so far.
pub async fn retired_data_keys(catalog: &Catalog) -> Result<i64, CatalogError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE retired_at_ms IS NOT NULL")
            .fetch_one(catalog.pool())
            .await?,
    )
}

/// Sets one column of the chunk rows `filter` matches; returns how many changed.
pub async fn edit_chunks(
    catalog: &Catalog,
    filter: ChunkFilter,
    edit: ChunkEdit,
) -> Result<u64, CatalogError> {
    let set = match &edit {
        ChunkEdit::ObjectKey(_) => "object_key = $1",
        ChunkEdit::ByteOffset(_) => "byte_offset = $1",
        ChunkEdit::ByteLength(_) => "byte_length = $1",
        ChunkEdit::DataKeyId(_) => "data_key_id = $1",
        ChunkEdit::StreamId(_) => "stream_id = $1",
        ChunkEdit::ShardOrdinal(_) => "shard_ordinal = $1",
        ChunkEdit::ArrivalMs(_) => "first_arrival_ms = $1, last_arrival_ms = $1",
    };
    // Unset members match every row (`$n IS NULL OR column = $n`).
    let sql = format!(
        "UPDATE chunks SET {set} WHERE ($2 IS NULL OR stream_id = $2) \
         AND ($3 IS NULL OR shard_ordinal = $3) AND ($4 IS NULL OR first_sequence = $4)"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql));
    let query = match edit {
        ChunkEdit::ObjectKey(key) => query.bind(key),
        ChunkEdit::DataKeyId(id) => query.bind(id),
        ChunkEdit::ByteOffset(v)
        | ChunkEdit::ByteLength(v)
        | ChunkEdit::StreamId(v)
        | ChunkEdit::ShardOrdinal(v)
        | ChunkEdit::ArrivalMs(v) => query.bind(v),
    };
    let done = query
        .bind(filter.stream_id)
        .bind(filter.shard_ordinal.map(|o| o as i64))
        .bind(filter.first_sequence.map(|f| f as i64))
        .execute(catalog.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Creates an empty database beside the one `admin_url` names and returns its URL.
/// Panics when Postgres cannot be reached: a test that was given a Postgres URL must
/// fail loudly rather than pass without it.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("sluice_test_{}", std::process::id()) + &random_suffix();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("SLUICE_TEST_POSTGRES_URL is set but unreachable: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create a test database");
    pool.close().await;
    with_database(admin_url, &name)
}

fn random_suffix() -> String {
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).expect("system randomness");
    format!("_{}", u64::from_le_bytes(random))
}

/// `admin_url` with its database name replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// The catalogs a test should run against: a SQLite one under `dir` always, and a fresh
/// Postgres database when `SLUICE_TEST_POSTGRES_URL` names a server (skipped, and said
/// so, when it does not).
pub async fn catalogs(dir: &std::path::Path) -> Vec<crate::Catalog> {
    let sqlite = format!("sqlite://{}", dir.join("catalog.db").display());
    let mut out = vec![
        crate::Catalog::open(&sqlite)
            .await
            .expect("open a SQLite catalog"),
    ];
    match std::env::var("SLUICE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let db = fresh_postgres_database(&url).await;
            out.push(
                crate::Catalog::open(&db)
                    .await
                    .expect("open a Postgres catalog"),
            );
        }
        _ => eprintln!("Postgres variant skipped: SLUICE_TEST_POSTGRES_URL not set"),
    }
    out
}

/// A provisioned stream of the default account, as tests make them.
pub fn provisioned_stream(name: &str, shard_count: u32) -> crate::streams::NewStream<'_> {
    crate::streams::NewStream {
        account_id: "000000000000",
        name,
        shard_count,
        mode: crate::StreamMode::Provisioned,
        tags: &[],
        now_ms: 0,
        account_shards_max: 10,
        account_on_demand_streams_max: 50,
        region: "us-east-1",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
