//! The catalog: the only crate that speaks SQL. Everything else asks it typed
//! questions (`Catalog::load_stream`, `Catalog::commit_chunks`, ...).
//!
//! It holds accounts, streams, shards, tags, the log's chunk index, the
//! wrapped data keys, the KMS master keys, the server's secrets and the per-shard write
//! budgets that data-plane processes share, in SQLite (the embedded default) or
//! Postgres, through one code path: sqlx's `Any` driver and SQL that both dialects
//! accept (`$n` parameters, `RETURNING`, `ON CONFLICT`). Each write transaction opens
//! with a write statement, so SQLite takes its write lock up front and waits on
//! `busy_timeout` instead of failing a read-to-write upgrade.

pub mod audit;
pub mod auditchain;
pub mod billing;
pub mod chunks;
pub mod compaction;
pub mod consumers;
pub mod database;
pub mod datakeys;
mod error;
pub mod firehose;
pub mod grants;
mod groupcommit;
pub mod groupplan;
pub mod groups;
pub mod idempotency;
pub mod identity;
pub mod keymeta;
pub mod masterkeys;
pub mod policies;
pub mod queues;
pub mod refusal;
pub mod reshard;
pub mod rootkey;
pub mod settings;
pub mod sns;
pub mod sqs;
pub mod sqskeys;
mod sqsmessages;
pub mod streams;
pub mod tableschemas;
pub mod tags;
pub mod testing;
pub mod throughput;
pub mod tokens;
pub mod warehouse;

pub use database::Catalog;
pub use error::{Backend, CatalogError};
pub use refusal::{Refusal, RefusalKind};
pub use streams::{Reshard, Shard, Stream, StreamMode, StreamStatus};
