//! The log engine under Kinesis: records of every shard group-committed into sealed
//! chunks (`chunk`) of objects in a local segment store or an S3 bucket (`objects`,
//! `segment`), their order and place committed to the catalog before anyone is told
//! a sequence number (`commit`), read back and checked (`reader`) under per-stream
//! data keys (`keyring`); the retention janitor and compaction keep the objects and
//! rows bounded (`janitor`, `compact`). No service state lives here, and no SQL: the
//! catalog crate answers every question about rows.

pub mod chunk;
pub mod commit;
pub mod compact;
pub mod janitor;
pub mod keyring;
pub mod objects;
pub mod reader;
pub mod segment;
pub mod traffic;

/// A secret string that never shows in `Debug` output and is wiped when dropped.
#[derive(Clone)]
pub struct SecretText(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}
