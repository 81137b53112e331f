//! Helpers for tests in this workspace that run against a real Postgres.

use sqlx::any::AnyPoolOptions;

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
