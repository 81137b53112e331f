//! The KPL's aggregated-record format (`protocol::kpl`, which the server's Firehose
//! also reads): re-exported here, where producers aggregate and consumers split.

pub use protocol::kpl::*;
