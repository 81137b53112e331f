//! The KMS service (`TrentService`, signing name `kms`): customer master keys per
//! tenant, aliases, states, rotation, and Encrypt/Decrypt/ReEncrypt/GenerateDataKey in
//! the versioned blob format of `envelope::ciphertext`.
//!
//! Every operation is authorized by Cedar (`kms:<Operation>`, as IAM names them) on
//! the key it names, or on the tenant for CreateKey, ListKeys and ListAliases, before
//! it reads any key material. A key named in another account (by its ARN, an alias
//! ARN or a ciphertext blob) is refused by the platform policy. Key material is
//! unwrapped per request from the catalog and dropped (zeroized) when the request ends.
//! Kinesis, Firehose and SQS reach it only through the doors the assembly builds on
//! `key_for_stream` and `key_for_service`.

mod api;
mod asymmetric;
mod dispatch;
mod grants;
mod import;
mod keyspec;
mod manage;
mod service;

pub use api::{KEY_SWEEP_INTERVAL, key_for_service, key_for_stream, sweep_keys};
pub use dispatch::dispatch;
pub use service::KmsService;
