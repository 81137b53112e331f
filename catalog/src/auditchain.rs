//! The audit trail's tamper evidence and retention (migration 0017).
//!
//! Every append is one batch: the rows it added (every row with an id past the
//! previous batch's last, read back in id order) are hashed with the previous batch's
//! hash, and the batch and the chain's head are MACed under a key the server keeps
//! sealed by the root key. `verify_audit` walks the chain again from its start: an
//! edited, deleted or slipped-in row changes its batch's hash; a rewritten batch fails
//! its MAC; a removed or added batch breaks the links or the head. Whoever can write
//! the database but does not hold the root key cannot make a changed trail verify.
//!
//! Retention (`prune_audit`) removes whole batches from the oldest end and moves the
//! chain's start (its MACed `pruned_*` fields) past them; the delete trigger lets rows
//! go only behind that start.

use aws_lc_rs::{digest, hmac};
use serde::Serialize;
use sqlx::Row;

use crate::{Catalog, CatalogError};

/// Batches one verification reads per page.
const VERIFY_PAGE: i64 = 256;
/// Problems a verification reports at most (it stops looking after that).
const PROBLEMS_MAX: usize = 20;
/// Batches one retention pass removes at most.
pub const PRUNE_BATCHES_MAX: i64 = 200;

const ZERO_HASH: [u8; 32] = [0; 32];

/// The chain's state: its head (the newest batch) and its start (the last batch
/// retention removed, or the rows from before the chain began).
#[derive(Debug, Clone)]
struct Chain {
    head_batch: i64,
    head_hash: Vec<u8>,
    pruned_batch: i64,
    pruned_through_id: i64,
    pruned_hash: Vec<u8>,
    mac: Option<Vec<u8>>,
}

/// What a verification found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditVerification {
    /// Batches checked.
    pub batches: i64,
    /// Rows covered by them.
    pub rows: i64,
    /// Rows before the chain's start (from before it began, or kept past retention).
    pub rows_before_chain: i64,
    /// What does not verify; empty when the trail is intact.
    pub problems: Vec<String>,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.sign().as_ref().to_vec()
}

/// Whether `given` is the MAC `expected`, compared in constant time.
fn mac_ok(expected: &[u8], given: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(expected, given).is_ok()
}

fn chain_mac(key: &[u8], c: &Chain) -> Vec<u8> {
    mac(
        key,
        &[
            b"sluice-audit-chain",
            &c.head_batch.to_be_bytes(),
            &c.head_hash,
            &c.pruned_batch.to_be_bytes(),
            &c.pruned_through_id.to_be_bytes(),
            &c.pruned_hash,
        ],
    )
}

fn batch_parts<'a>(
    batch_id: &'a [u8; 8],
    after_id: &'a [u8; 8],
    last_id: &'a [u8; 8],
    prev_hash: &'a [u8],
    hash: &'a [u8],
) -> [&'a [u8]; 6] {
    [
        b"sluice-audit-batch",
        batch_id,
        after_id,
        last_id,
        prev_hash,
        hash,
    ]
}

async fn read_chain(conn: &mut sqlx::AnyConnection, lock: bool) -> Result<Chain, CatalogError> {
    let sql = if lock {
        "SELECT head_batch, head_hash, pruned_batch, pruned_through_id, pruned_hash, mac \
         FROM audit_chain WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT head_batch, head_hash, pruned_batch, pruned_through_id, pruned_hash, mac \
         FROM audit_chain WHERE id = 1"
    };
    let row = sqlx::query(sql).fetch_one(&mut *conn).await?;
    Ok(Chain {
        head_batch: row.try_get("head_batch")?,
        head_hash: row.try_get("head_hash")?,
        pruned_batch: row.try_get("pruned_batch")?,
        pruned_through_id: row.try_get("pruned_through_id")?,
        pruned_hash: row.try_get("pruned_hash")?,
        mac: row.try_get("mac")?,
    })
}

/// The last row id the chain covers.
async fn covered_through(
    conn: &mut sqlx::AnyConnection,
    chain: &Chain,
) -> Result<i64, CatalogError> {
    if chain.head_batch == chain.pruned_batch {
        return Ok(chain.pruned_through_id);
    }
    Ok(
        sqlx::query_scalar("SELECT last_id FROM audit_batches WHERE batch_id = $1")
            .bind(chain.head_batch)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The hash of the rows with ids in `(after_id, last_id]`, in id order, chained to
/// `prev_hash`; with their count and newest time.
async fn rows_hash(
    conn: &mut sqlx::AnyConnection,
    prev_hash: &[u8],
    after_id: i64,
    last_id: i64,
) -> Result<(Vec<u8>, i64, i64), CatalogError> {
    let rows = sqlx::query(
        "SELECT id, at_ms, request_id, principal_account, principal, action, resource_account, \
         resource, decision, policies, source_ip, tls_version FROM audit_log \
         WHERE id > $1 AND id <= $2 ORDER BY id",
    )
    .bind(after_id)
    .bind(last_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash);
    let mut newest = 0i64;
    for row in &rows {
        let at_ms: i64 = row.try_get("at_ms")?;
        newest = newest.max(at_ms);
        let canonical = serde_json::json!([
            row.try_get::<i64, _>("id")?,
            at_ms,
            row.try_get::<String, _>("request_id")?,
            row.try_get::<String, _>("principal_account")?,
            row.try_get::<String, _>("principal")?,
            row.try_get::<String, _>("action")?,
            row.try_get::<String, _>("resource_account")?,
            row.try_get::<String, _>("resource")?,
            row.try_get::<String, _>("decision")?,
            row.try_get::<String, _>("policies")?,
            row.try_get::<String, _>("source_ip")?,
            row.try_get::<String, _>("tls_version")?,
        ])
        .to_string();
        ctx.update(&(canonical.len() as u64).to_be_bytes());
        ctx.update(canonical.as_bytes());
    }
    Ok((ctx.finish().as_ref().to_vec(), rows.len() as i64, newest))
}

/// Locks the chain for an append (Postgres: the chain row; SQLite's write transaction
/// is exclusive already) and returns the last row id it covers.
pub(crate) async fn begin_append(
    conn: &mut sqlx::AnyConnection,
    postgres: bool,
) -> Result<i64, CatalogError> {
    let chain = read_chain(conn, postgres).await?;
    covered_through(conn, &chain).await
}

/// Seals what an append added after `after_id` as the chain's next batch.
pub(crate) async fn seal_append(
    conn: &mut sqlx::AnyConnection,
    key: &[u8],
    after_id: i64,
) -> Result<(), CatalogError> {
    let mut chain = read_chain(conn, false).await?;
    let last_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit_log")
        .fetch_one(&mut *conn)
        .await?;
    let Some(last_id) = last_id.filter(|&id| id > after_id) else {
        return Ok(());
    };
    let prev_hash = chain.head_hash.clone();
    let (hash, _, newest) = rows_hash(conn, &prev_hash, after_id, last_id).await?;
    let batch_id = chain.head_batch + 1;
    let batch_mac = mac(
        key,
        &batch_parts(
            &batch_id.to_be_bytes(),
            &after_id.to_be_bytes(),
            &last_id.to_be_bytes(),
            &prev_hash,
            &hash,
        ),
    );
    sqlx::query(
        "INSERT INTO audit_batches (batch_id, first_id, last_id, last_at_ms, prev_hash, hash, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(batch_id)
    .bind(after_id + 1)
    .bind(last_id)
    .bind(newest)
    .bind(prev_hash)
    .bind(hash.clone())
    .bind(batch_mac)
    .execute(&mut *conn)
    .await?;
    chain.head_batch = batch_id;
    chain.head_hash = hash;
    write_chain(conn, key, &chain).await
}

async fn write_chain(
    conn: &mut sqlx::AnyConnection,
    key: &[u8],
    chain: &Chain,
) -> Result<(), CatalogError> {
    sqlx::query(
        "UPDATE audit_chain SET head_batch = $1, head_hash = $2, pruned_batch = $3, \
         pruned_through_id = $4, pruned_hash = $5, mac = $6 WHERE id = 1",
    )
    .bind(chain.head_batch)
    .bind(chain.head_hash.clone())
    .bind(chain.pruned_batch)
    .bind(chain.pruned_through_id)
    .bind(chain.pruned_hash.clone())
    .bind(chain_mac(key, chain))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Catalog {
    /// Walks the whole chain from its start and reports what does not verify.
    pub async fn verify_audit(&self, key: &[u8]) -> Result<AuditVerification, CatalogError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == crate::Backend::Postgres {
            // One snapshot: appends made meanwhile are not half seen.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let chain = read_chain(&mut tx, false).await?;
        let mut out = AuditVerification {
            batches: 0,
            rows: 0,
            rows_before_chain: sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE id <= $1")
                .bind(chain.pruned_through_id)
                .fetch_one(&mut *tx)
                .await?,
            problems: Vec::new(),
        };
        let problem = |out: &mut AuditVerification, text: String| {
            if out.problems.len() < PROBLEMS_MAX {
                out.problems.push(text);
            }
        };
        match &chain.mac {
            Some(given) if mac_ok(&chain_mac(key, &chain), given) => {}
            Some(_) => problem(
                &mut out,
                "the chain's head and start do not carry a valid MAC: they were rewritten".into(),
            ),
            None if chain.head_batch == 0 && chain.pruned_batch == 0 => {}
            None => problem(&mut out, "the chain's head carries no MAC".into()),
        }
        let (mut prev_hash, mut after_id, mut expected) = (
            chain.pruned_hash.clone(),
            chain.pruned_through_id,
            chain.pruned_batch + 1,
        );
        if chain.pruned_batch == 0 && prev_hash != ZERO_HASH {
            problem(&mut out, "the chain's start was altered".into());
        }
        'pages: loop {
            let page = sqlx::query(
                "SELECT batch_id, last_id, prev_hash, hash, mac FROM audit_batches \
                 WHERE batch_id >= $1 ORDER BY batch_id LIMIT $2",
            )
            .bind(expected)
            .bind(VERIFY_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let batch_id: i64 = row.try_get("batch_id")?;
                let last_id: i64 = row.try_get("last_id")?;
                let stored_prev: Vec<u8> = row.try_get("prev_hash")?;
                let stored_hash: Vec<u8> = row.try_get("hash")?;
                let stored_mac: Vec<u8> = row.try_get("mac")?;
                if batch_id != expected {
                    problem(
                        &mut out,
                        format!("batches {expected} to {} are missing", batch_id - 1),
                    );
                }
                let expected_mac = mac(
                    key,
                    &batch_parts(
                        &batch_id.to_be_bytes(),
                        &after_id.to_be_bytes(),
                        &last_id.to_be_bytes(),
                        &stored_prev,
                        &stored_hash,
                    ),
                );
                if !mac_ok(&expected_mac, &stored_mac) {
                    problem(
                        &mut out,
                        format!(
                            "batch {batch_id} (rows {}..={last_id}) does not carry a valid MAC: it was rewritten, or rows before it were removed",
                            after_id + 1
                        ),
                    );
                }
                if stored_prev != prev_hash {
                    problem(
                        &mut out,
                        format!("batch {batch_id} does not follow the batch before it"),
                    );
                }
                let (hash, rows, _) = rows_hash(&mut tx, &stored_prev, after_id, last_id).await?;
                if hash != stored_hash {
                    problem(
                        &mut out,
                        format!(
                            "the rows of batch {batch_id} (ids {}..={last_id}) do not match its hash: a row was edited, deleted or added",
                            after_id + 1
                        ),
                    );
                }
                out.batches += 1;
                out.rows += rows;
                prev_hash = stored_hash;
                after_id = last_id;
                expected = batch_id + 1;
                if out.problems.len() >= PROBLEMS_MAX {
                    break 'pages;
                }
            }
        }
        if expected - 1 != chain.head_batch || prev_hash != chain.head_hash {
            problem(
                &mut out,
                format!(
                    "the chain's head names batch {} but the batches end at {}: batches were removed or added",
                    chain.head_batch,
                    expected - 1
                ),
            );
        }
        let outside: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE id > $1")
            .bind(after_id)
            .fetch_one(&mut *tx)
            .await?;
        if outside > 0 {
            problem(
                &mut out,
                format!("{outside} rows after the last batch belong to no batch: they were added"),
            );
        }
        tx.rollback().await?;
        Ok(out)
    }

    /// Removes whole batches whose rows are all older than `before_ms` (at most
    /// `PRUNE_BATCHES_MAX` a pass) and the rows from before the chain that are as old,
    /// moving the chain's start past them. Returns the rows removed.
    pub async fn prune_audit(&self, key: &[u8], before_ms: i64) -> Result<u64, CatalogError> {
        let postgres = self.backend() == crate::Backend::Postgres;
        let mut tx = self.begin_write().await?;
        let mut chain = read_chain(&mut tx, postgres).await?;
        let old = sqlx::query(
            "SELECT batch_id, last_id, last_at_ms, hash FROM audit_batches \
             WHERE batch_id > $1 ORDER BY batch_id LIMIT $2",
        )
        .bind(chain.pruned_batch)
        .bind(PRUNE_BATCHES_MAX)
        .fetch_all(&mut *tx)
        .await?;
        let mut moved = false;
        for row in &old {
            let last_at_ms: i64 = row.try_get("last_at_ms")?;
            if last_at_ms >= before_ms {
                break;
            }
            chain.pruned_batch = row.try_get("batch_id")?;
            chain.pruned_through_id = row.try_get("last_id")?;
            chain.pruned_hash = row.try_get("hash")?;
            moved = true;
        }
        if moved {
            write_chain(&mut tx, key, &chain).await?;
            sqlx::query("DELETE FROM audit_batches WHERE batch_id <= $1")
                .bind(chain.pruned_batch)
                .execute(&mut *tx)
                .await?;
        }
        let removed = sqlx::query("DELETE FROM audit_log WHERE id <= $1 AND at_ms < $2")
            .bind(chain.pruned_through_id)
            .bind(before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// Whether `account_id`'s allowed data events are audited (off unless turned on).
    pub async fn audit_data_events(&self, account_id: &str) -> Result<bool, CatalogError> {
        let on: Option<i64> =
            sqlx::query_scalar("SELECT data_events FROM audit_settings WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(on.unwrap_or(0) != 0)
    }

    pub async fn set_audit_data_events(
        &self,
        account_id: &str,
        on: bool,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO audit_settings (account_id, data_events) VALUES ($1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET data_events = excluded.data_events",
        )
        .bind(account_id)
        .bind(i64::from(on))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
