//! What the gateway and the admin API hold, and the doors the assembly builds between
//! services: each service gets its own state with only what it may touch; this is the
//! one place that sees them all.

use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use catalog::masterkeys::MasterKey;
use catalog::rootkey::RootKey;
use edge::{BoxFuture, Caller};
use protocol::ApiError;
use protocol::clock::SharedClock;
use storage::keyring::Keyring;
use storage::objects::ObjectStore;

use crate::Config;
use crate::auth::Authenticator;
use crate::authz::Authz;
use crate::bearer::TokenService;

pub struct AppState {
    pub config: Config,
    pub catalog: Catalog,
    pub authenticator: Arc<Authenticator>,
    pub tokens: TokenService,
    pub authz: Arc<Authz>,
    /// Seals the secrets of access keys made through the admin API.
    pub root_key: Arc<RootKey>,
    pub grace: Duration,
    /// The memory request bodies may take, and each address's share of it.
    pub bodies: crate::budget::BodyBudget,
    pub clock: SharedClock,
    /// The services, each behind its own state.
    pub kinesis: Arc<kinesis::Kinesis>,
    pub kms: Arc<kms::KmsService>,
    pub groups: Arc<groups::GroupsService>,
    pub firehose: Arc<firehose::FirehoseService>,
    pub sqs: Arc<sqs::SqsService>,
    pub sns: Arc<sns::SnsService>,
    /// The log engine, for the periodic passes (janitor, compaction).
    pub store: Arc<ObjectStore>,
    pub keyring: Arc<Keyring>,
    /// The audit chain's MAC key (`catalog::auditchain`).
    pub audit_chain_key: Arc<zeroize::Zeroizing<Vec<u8>>>,
}

/// Firehose's door to KMS: the key StartDeliveryStreamEncryption names, resolved and
/// authorized by the KMS service as a stream's key is.
pub struct FirehoseKeys(pub Arc<kms::KmsService>);

impl firehose::DeliveryKeys for FirehoseKeys {
    fn key_for_delivery_stream<'a>(
        &'a self,
        caller: &'a Caller,
        key_arn: &'a str,
    ) -> BoxFuture<'a, Result<MasterKey, ApiError>> {
        Box::pin(kms::key_for_stream(&self.0, caller, key_arn))
    }
}

/// Kinesis's door to KMS: StartStreamEncryption's key, resolved and authorized by the
/// KMS service.
pub struct KinesisKeys(pub Arc<kms::KmsService>);

impl kinesis::StreamKeys for KinesisKeys {
    fn key_for_stream<'a>(
        &'a self,
        caller: &'a Caller,
        key_ref: &'a str,
    ) -> BoxFuture<'a, Result<MasterKey, ApiError>> {
        Box::pin(kms::key_for_stream(&self.0, caller, key_ref))
    }
}

/// SNS's door to SQS: deliveries into queues, with the subscriber's rights.
pub struct SnsQueues(pub Arc<sqs::SqsService>);

impl sns::QueueSink for SnsQueues {
    fn check<'a>(
        &'a self,
        caller: &'a Caller,
        queue_arn: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(sqs::delivery::may_deliver(&self.0, caller, queue_arn))
    }

    fn send<'a>(
        &'a self,
        caller: &'a Caller,
        queue_arn: &'a str,
        delivery: sns::publish::Delivery<'a>,
    ) -> BoxFuture<'a, Result<String, ApiError>> {
        Box::pin(sqs::delivery::deliver(
            &self.0,
            caller,
            queue_arn,
            delivery.body,
            delivery.attributes,
            (delivery.group_id, delivery.dedup_id),
        ))
    }
}

/// SQS's door to KMS: a queue's KmsMasterKeyId, resolved and authorized (to seal or to
/// open) by the KMS service.
pub struct QueueKeys(pub Arc<kms::KmsService>);

impl sqs::keys::QueueKeys for QueueKeys {
    fn key_for_queue<'a>(
        &'a self,
        caller: &'a Caller,
        key_ref: &'a str,
        action: &'static str,
    ) -> BoxFuture<'a, Result<MasterKey, ApiError>> {
        Box::pin(kms::key_for_service(&self.0, caller, key_ref, action))
    }
}
