//! What the KMS service may touch: the catalog's keys, the root key that seals their
//! material, the gateway's authorizer, its region and the clock.

use std::sync::Arc;

use catalog::Catalog;
use catalog::rootkey::RootKey;
use edge::Authorizer;
use protocol::clock::SharedClock;

pub struct KmsService {
    pub catalog: Catalog,
    /// Seals and unseals key material stored in the catalog.
    pub root_key: Arc<RootKey>,
    /// Cedar, through the gateway's door: every operation asks it first.
    pub authz: Arc<dyn Authorizer>,
    pub region: String,
    /// Deletion dates, rotation dates and creation times.
    pub clock: SharedClock,
}
