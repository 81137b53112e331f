//! Dynamic partitioning: the `MetadataExtraction` processor's JQ query (run by jaq)
//! turns each JSON record into its partition keys, `{name: value}` with scalar values,
//! which `!{partitionKeyFromQuery:name}` in the prefix names. A buffer becomes one
//! object per distinct set of keys; a record whose query fails, or yields anything but
//! an object of scalars, is a processing failure.

use std::collections::BTreeMap;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, RcIter};
use jaq_json::Val;

/// Partition keys one record may have (AWS allows 50).
pub const KEYS_MAX: usize = 50;
/// A partition key's value is at most this long once it is text.
const VALUE_BYTES_MAX: usize = 512;

/// A record's partition: key name to value.
pub type Partition = BTreeMap<String, String>;

/// The compiled query. jaq's filters are not `Send`: a `Query` lives inside one
/// synchronous call, never across an await.
pub struct Query {
    filter: jaq_core::Filter<jaq_core::Native<Val>>,
}

impl Query {
    pub fn compile(code: &str) -> Result<Query, String> {
        let program = File { code, path: () };
        let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
        let arena = Arena::default();
        let modules = loader
            .load(&arena, program)
            .map_err(|errors| format!("the query does not parse ({} errors)", errors.len()))?;
        let filter = Compiler::default()
            .with_funs(jaq_std::funs().chain(jaq_json::funs()))
            .compile(modules)
            .map_err(|errors| format!("the query does not compile ({} errors)", errors.len()))?;
        Ok(Query { filter })
    }

    /// The partition of one record.
    pub fn partition(&self, record: &[u8]) -> Result<Partition, String> {
        let value: serde_json::Value =
            serde_json::from_slice(record).map_err(|e| format!("the record is not JSON: {e}"))?;
        let inputs = RcIter::new(core::iter::empty());
        let mut out = self.filter.run((Ctx::new([], &inputs), Val::from(value)));
        let first = out
            .next()
            .ok_or("the query yielded nothing")?
            .map_err(|e| format!("the query failed: {e}"))?;
        let first = serde_json::Value::from(first);
        let serde_json::Value::Object(map) = first else {
            return Err("the query must yield an object of partition keys".into());
        };
        if map.len() > KEYS_MAX {
            return Err(format!(
                "the query yielded more than {KEYS_MAX} partition keys"
            ));
        }
        map.into_iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Null => {
                        return Err(format!("the partition key {k} is null"));
                    }
                    _ => return Err(format!("the partition key {k} is not a scalar")),
                };
                if text.len() > VALUE_BYTES_MAX {
                    return Err(format!(
                        "the partition key {k} is longer than {VALUE_BYTES_MAX} bytes"
                    ));
                }
                Ok((k, text))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_yield_their_partition_keys() {
        let q = Query::compile("{customer_id: .customer.id, year: (.ts | .[0:4])}").unwrap();
        let p = q
            .partition(br#"{"customer":{"id":42},"ts":"2026-12-06T01:00:00Z"}"#)
            .unwrap();
        assert_eq!(p["customer_id"], "42");
        assert_eq!(p["year"], "2026");
        assert!(q.partition(b"not json").is_err());
        assert!(Query::compile("{a: .x").is_err());
        let scalar = Query::compile(".x").unwrap();
        assert!(scalar.partition(br#"{"x":1}"#).is_err());
        let nested = Query::compile("{a: .x}").unwrap();
        assert!(nested.partition(br#"{"x":[1]}"#).is_err());
    }
}
