//! The KMS wire protocol (`X-Amz-Target: TrentService.<Operation>`, JSON 1.1): the
//! operations Sluice serves, their request and response shapes, the ways a request
//! names a key, and KMS's documented limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::wire::{Blob, Timestamp};

/// Plaintext bytes Encrypt takes at most (AWS's limit).
pub const PLAINTEXT_BYTES_MAX: usize = 4_096;
/// Ciphertext-blob bytes Decrypt and ReEncrypt take at most (AWS's limit).
pub const CIPHERTEXT_BYTES_MAX: usize = 6_144;
/// GenerateDataKey's NumberOfBytes range.
pub const DATA_KEY_BYTES_MIN: i64 = 1;
pub const DATA_KEY_BYTES_MAX: i64 = 1_024;
/// Description characters at most.
pub const DESCRIPTION_CHARS_MAX: usize = 8_192;
/// KeyId characters at most.
pub const KEY_ID_CHARS_MAX: usize = 2_048;
/// Alias-name characters at most.
pub const ALIAS_NAME_CHARS_MAX: usize = 256;
/// ListKeys / ListAliases page sizes.
pub const LIST_LIMIT_MAX: i64 = 1_000;
pub const LIST_LIMIT_DEFAULT: i64 = 100;
/// An encryption context's pairs, and its serialised bytes, at most. AWS bounds it
/// only by the request size; a bound of our own keeps the associated data small.
pub const CONTEXT_PAIRS_MAX: usize = 64;
pub const CONTEXT_BYTES_MAX: usize = 8_192;
/// Grant tokens a request may carry (AWS's limit); Sluice has no grants and ignores them.
pub const GRANT_TOKENS_MAX: usize = 10;

/// The prefix of aliases the service keeps for itself.
pub const RESERVED_ALIAS_PREFIX: &str = "alias/aws/";
/// Tag keys and values, in characters, at most (AWS's limits).
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// Every key spec and key usage KMS defines; Sluice's keys are symmetric ones.
pub const KEY_SPECS: [&str; 20] = [
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];
pub const KEY_USAGES: [&str; 5] = [
    "SIGN_VERIFY",
    "ENCRYPT_DECRYPT",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
];
/// The only key spec and encryption algorithm Sluice's keys have.
pub const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
pub const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsOperation {
    CancelKeyDeletion,
    CreateAlias,
    CreateKey,
    Decrypt,
    DeleteAlias,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    EnableKey,
    EnableKeyRotation,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GetKeyRotationStatus,
    ListAliases,
    ListKeys,
    ReEncrypt,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    TagResource,
    UntagResource,
    ListResourceTags,
    UpdateAlias,
    UpdateKeyDescription,
    GenerateRandom,
    DescribeCustomKeyStores,
    CreateGrant,
    ListGrants,
    RetireGrant,
    RevokeGrant,
    ListRetirableGrants,
    GetKeyPolicy,
    PutKeyPolicy,
    ListKeyPolicies,
    GetPublicKey,
    Sign,
    Verify,
    GenerateMac,
    VerifyMac,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    DeriveSharedSecret,
    Encapsulate,
    Decapsulate,
    ListKeyRotations,
    GetKeyLastUsage,
    GetParametersForImport,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    /// Operations on custom key stores and multi-Region keys, which a server with its
    /// own key storage and one region has no meaning for: UnsupportedOperationException.
    Unavailable(&'static str),
}

impl KmsOperation {
    pub const TARGET_PREFIX: &'static str = "TrentService.";

    pub fn from_target(target: &str) -> Option<KmsOperation> {
        let name = target.strip_prefix(Self::TARGET_PREFIX)?;
        Some(match name {
            "CancelKeyDeletion" => KmsOperation::CancelKeyDeletion,
            "CreateAlias" => KmsOperation::CreateAlias,
            "CreateKey" => KmsOperation::CreateKey,
            "Decrypt" => KmsOperation::Decrypt,
            "DeleteAlias" => KmsOperation::DeleteAlias,
            "DescribeKey" => KmsOperation::DescribeKey,
            "DisableKey" => KmsOperation::DisableKey,
            "DisableKeyRotation" => KmsOperation::DisableKeyRotation,
            "EnableKey" => KmsOperation::EnableKey,
            "EnableKeyRotation" => KmsOperation::EnableKeyRotation,
            "Encrypt" => KmsOperation::Encrypt,
            "GenerateDataKey" => KmsOperation::GenerateDataKey,
            "GenerateDataKeyWithoutPlaintext" => KmsOperation::GenerateDataKeyWithoutPlaintext,
            "GetKeyRotationStatus" => KmsOperation::GetKeyRotationStatus,
            "ListAliases" => KmsOperation::ListAliases,
            "ListKeys" => KmsOperation::ListKeys,
            "ReEncrypt" => KmsOperation::ReEncrypt,
            "RotateKeyOnDemand" => KmsOperation::RotateKeyOnDemand,
            "ScheduleKeyDeletion" => KmsOperation::ScheduleKeyDeletion,
            "TagResource" => KmsOperation::TagResource,
            "UntagResource" => KmsOperation::UntagResource,
            "ListResourceTags" => KmsOperation::ListResourceTags,
            "UpdateAlias" => KmsOperation::UpdateAlias,
            "UpdateKeyDescription" => KmsOperation::UpdateKeyDescription,
            "GenerateRandom" => KmsOperation::GenerateRandom,
            "DescribeCustomKeyStores" => KmsOperation::DescribeCustomKeyStores,
            "CreateGrant" => KmsOperation::CreateGrant,
            "ListGrants" => KmsOperation::ListGrants,
            "RetireGrant" => KmsOperation::RetireGrant,
            "RevokeGrant" => KmsOperation::RevokeGrant,
            "ListRetirableGrants" => KmsOperation::ListRetirableGrants,
            "GetKeyPolicy" => KmsOperation::GetKeyPolicy,
            "PutKeyPolicy" => KmsOperation::PutKeyPolicy,
            "ListKeyPolicies" => KmsOperation::ListKeyPolicies,
            "GetPublicKey" => KmsOperation::GetPublicKey,
            "Sign" => KmsOperation::Sign,
            "Verify" => KmsOperation::Verify,
            "GenerateMac" => KmsOperation::GenerateMac,
            "VerifyMac" => KmsOperation::VerifyMac,
            "GenerateDataKeyPair" => KmsOperation::GenerateDataKeyPair,
            "GenerateDataKeyPairWithoutPlaintext" => {
                KmsOperation::GenerateDataKeyPairWithoutPlaintext
            }
            "DeriveSharedSecret" => KmsOperation::DeriveSharedSecret,
            "Encapsulate" => KmsOperation::Encapsulate,
            "Decapsulate" => KmsOperation::Decapsulate,
            "ListKeyRotations" => KmsOperation::ListKeyRotations,
            "GetKeyLastUsage" => KmsOperation::GetKeyLastUsage,
            "GetParametersForImport" => KmsOperation::GetParametersForImport,
            "ImportKeyMaterial" => KmsOperation::ImportKeyMaterial,
            "DeleteImportedKeyMaterial" => KmsOperation::DeleteImportedKeyMaterial,
            "CreateCustomKeyStore" => KmsOperation::Unavailable("CreateCustomKeyStore"),
            "ConnectCustomKeyStore" => KmsOperation::Unavailable("ConnectCustomKeyStore"),
            "DisconnectCustomKeyStore" => KmsOperation::Unavailable("DisconnectCustomKeyStore"),
            "UpdateCustomKeyStore" => KmsOperation::Unavailable("UpdateCustomKeyStore"),
            "DeleteCustomKeyStore" => KmsOperation::Unavailable("DeleteCustomKeyStore"),
            "ReplicateKey" => KmsOperation::Unavailable("ReplicateKey"),
            "UpdatePrimaryRegion" => KmsOperation::Unavailable("UpdatePrimaryRegion"),
            _ => return None,
        })
    }
}

/// A key as a request names it; AWS takes all four forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A bare key id (a UUID).
    Id(String),
    /// `arn:aws:kms:REGION:ACCOUNT:key/ID`.
    KeyArn {
        region: String,
        account: String,
        key_id: String,
    },
    /// `alias/NAME`.
    AliasName(String),
    /// `arn:aws:kms:REGION:ACCOUNT:alias/NAME`.
    AliasArn {
        region: String,
        account: String,
        alias: String,
    },
}

fn not_found(text: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("Invalid keyId {text}"))
}

impl KeyRef {
    pub fn parse(text: &str) -> Result<KeyRef, ApiError> {
        if text.is_empty() || text.chars().count() > KEY_ID_CHARS_MAX {
            return Err(ApiError::validation(
                text,
                "keyId",
                "Member must have length between 1 and 2048",
            ));
        }
        if text.starts_with("alias/") {
            return Ok(KeyRef::AliasName(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("arn:") {
            let mut parts = rest.splitn(5, ':');
            let (Some(partition), Some("kms"), Some(region), Some(account), Some(resource)) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Err(not_found(text));
            };
            if !partition.starts_with("aws")
                || region.is_empty()
                || account.len() != 12
                || !account.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(not_found(text));
            }
            let (region, account) = (region.to_string(), account.to_string());
            if let Some(key_id) = resource.strip_prefix("key/") {
                return Ok(KeyRef::KeyArn {
                    region,
                    account,
                    key_id: key_id.to_string(),
                });
            }
            if resource.starts_with("alias/") {
                return Ok(KeyRef::AliasArn {
                    region,
                    account,
                    alias: resource.to_string(),
                });
            }
            return Err(not_found(text));
        }
        Ok(KeyRef::Id(text.to_string()))
    }
}

pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

pub fn alias_arn(region: &str, account: &str, alias: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{alias}")
}

/// An alias name as CreateAlias takes it: `alias/` then `[A-Za-z0-9/_-]+`, at most
/// 256 characters, not in the service's reserved `alias/aws/` space. The refusals are
/// KMS's own words (recorded by the public emulator suites): the model's pattern, a
/// separate text for `:`, "Invalid identifier" for another prefix, and
/// NotAuthorizedException for the reserved space.
pub fn validate_alias_name(name: &str) -> Result<(), ApiError> {
    let pattern_ok = !name.is_empty()
        && name.len() <= ALIAS_NAME_CHARS_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if !pattern_ok {
        return Err(ApiError::validation(
            name,
            "aliasName",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ));
    }
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(ApiError::new(ErrorCode::Validation, "Invalid identifier"));
    };
    if rest.is_empty() || name.contains(':') {
        return Err(ApiError::new(
            ErrorCode::Validation,
            format!("{name} contains invalid characters for an alias"),
        ));
    }
    if name.starts_with(RESERVED_ALIAS_PREFIX) {
        return Err(ApiError::new(
            ErrorCode::NotAuthorized,
            "Alias must not begin with 'alias/aws/'. It is reserved for AWS managed keys.",
        ));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateKeyInput {
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub key_spec: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub origin: Option<String>,
    pub multi_region: Option<bool>,
    pub policy: Option<String>,
    pub tags: Option<Vec<KeyTag>>,
    pub custom_key_store_id: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
}

/// KMS's tag shape (TagKey/TagValue, where Kinesis says Key/Value).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyTag {
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    pub key_id: Option<String>,
    pub tags: Option<Vec<KeyTag>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    pub key_id: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsOutput {
    pub tags: Vec<KeyTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAliasInput {
    pub alias_name: Option<String>,
    pub target_key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateKeyDescriptionInput {
    pub key_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomInput {
    pub number_of_bytes: Option<i64>,
    pub custom_key_store_id: Option<String>,
    pub recipient: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomOutput {
    pub plaintext: Blob,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCustomKeyStoresOutput {
    pub custom_key_stores: Vec<serde_json::Value>,
    pub truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdInput {
    pub key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionInput {
    pub key_id: Option<String>,
    pub pending_window_in_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnableKeyRotationInput {
    pub key_id: Option<String>,
    pub rotation_period_in_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    pub limit: Option<i64>,
    pub marker: Option<String>,
    pub key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAliasInput {
    pub alias_name: Option<String>,
    pub target_key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteAliasInput {
    pub alias_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptInput {
    pub key_id: Option<String>,
    pub plaintext: Option<Blob>,
    pub encryption_context: Option<BTreeMap<String, String>>,
    pub grant_tokens: Option<Vec<String>>,
    pub encryption_algorithm: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptInput {
    pub ciphertext_blob: Option<Blob>,
    pub key_id: Option<String>,
    pub encryption_context: Option<BTreeMap<String, String>>,
    pub grant_tokens: Option<Vec<String>>,
    pub encryption_algorithm: Option<String>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyInput {
    pub key_id: Option<String>,
    pub key_spec: Option<String>,
    pub number_of_bytes: Option<i64>,
    pub encryption_context: Option<BTreeMap<String, String>>,
    pub grant_tokens: Option<Vec<String>>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptInput {
    pub ciphertext_blob: Option<Blob>,
    pub source_encryption_context: Option<BTreeMap<String, String>>,
    pub source_key_id: Option<String>,
    pub destination_key_id: Option<String>,
    pub destination_encryption_context: Option<BTreeMap<String, String>>,
    pub source_encryption_algorithm: Option<String>,
    pub destination_encryption_algorithm: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: Timestamp,
    pub enabled: bool,
    pub description: String,
    pub key_usage: String,
    pub key_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion_window_in_days: Option<i64>,
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    pub key_manager: &'static str,
    pub customer_master_key_spec: String,
    pub key_spec: String,
    #[serde(flatten)]
    pub algorithms: KeyAlgorithms,
    pub multi_region: bool,
}

/// The algorithms a key of its spec and usage takes; lists that would be empty are
/// left out, as KMS leaves them out.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyAlgorithms {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encryption_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mac_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_agreement_algorithms: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encapsulation_algorithms: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadataOutput {
    pub key_metadata: KeyMetadata,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdOutput {
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionOutput {
    pub key_id: String,
    pub deletion_date: Timestamp,
    pub key_state: &'static str,
    pub pending_window_in_days: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyRotationStatusOutput {
    pub key_rotation_enabled: bool,
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysOutput {
    pub keys: Vec<KeyListEntry>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    pub target_key_id: String,
    pub creation_date: Timestamp,
    pub last_updated_date: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesOutput {
    pub aliases: Vec<AliasListEntry>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptOutput {
    pub ciphertext_blob: Blob,
    pub key_id: String,
    pub encryption_algorithm: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptOutput {
    pub key_id: String,
    pub plaintext: Blob,
    pub encryption_algorithm: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyOutput {
    pub ciphertext_blob: Blob,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Blob>,
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptOutput {
    pub ciphertext_blob: Blob,
    pub source_key_id: String,
    pub key_id: String,
    pub source_encryption_algorithm: &'static str,
    pub destination_encryption_algorithm: &'static str,
}

/// The operations a grant may allow, in KMS's names.
pub const GRANT_OPERATIONS: [&str; 19] = [
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];
/// A grant's name, and a principal's ARN in a grant: at most this many characters.
pub const GRANT_NAME_CHARS_MAX: usize = 256;
pub const GRANT_PRINCIPAL_CHARS_MAX: usize = 256;
/// A grant token: at most this many characters.
pub const GRANT_TOKEN_CHARS_MAX: usize = 8_192;
/// A key policy: at most this many characters (AWS's limit is 32 KiB).
pub const KEY_POLICY_CHARS_MAX: usize = 32_768;
/// The one name a key policy has.
pub const KEY_POLICY_NAME: &str = "default";

#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantInput {
    pub key_id: Option<String>,
    pub grantee_principal: Option<String>,
    pub retiring_principal: Option<String>,
    pub operations: Option<Vec<String>>,
    pub constraints: Option<GrantConstraints>,
    pub grant_tokens: Option<Vec<String>>,
    pub name: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantOutput {
    pub grant_token: String,
    pub grant_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsInput {
    pub limit: Option<i64>,
    pub marker: Option<String>,
    pub key_id: Option<String>,
    pub grant_id: Option<String>,
    pub grantee_principal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRetirableGrantsInput {
    pub limit: Option<i64>,
    pub marker: Option<String>,
    pub retiring_principal: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    pub key_id: String,
    pub grant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub creation_date: Timestamp,
    pub grantee_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsOutput {
    pub grants: Vec<GrantListEntry>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetireGrantInput {
    pub grant_token: Option<String>,
    pub key_id: Option<String>,
    pub grant_id: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RevokeGrantInput {
    pub key_id: Option<String>,
    pub grant_id: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPolicyInput {
    pub key_id: Option<String>,
    pub policy_name: Option<String>,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyPolicyOutput {
    pub policy: String,
    pub policy_name: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyPoliciesOutput {
    pub policy_names: Vec<&'static str>,
    pub truncated: bool,
}

/// A message Sign, Verify, GenerateMac and VerifyMac take: at most this many bytes.
pub const MESSAGE_BYTES_MAX: usize = 4_096;
/// A signature or MAC Verify and VerifyMac take: at most this many bytes.
pub const SIGNATURE_BYTES_MAX: usize = 6_144;
/// A peer public key DeriveSharedSecret takes: at most this many bytes.
pub const PUBLIC_KEY_BYTES_MAX: usize = 8_192;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignInput {
    pub key_id: Option<String>,
    pub message: Option<Blob>,
    pub message_type: Option<String>,
    pub signature: Option<Blob>,
    pub signing_algorithm: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignOutput {
    pub key_id: String,
    pub signature: Blob,
    pub signing_algorithm: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyOutput {
    pub key_id: String,
    pub signature_valid: bool,
    pub signing_algorithm: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MacInput {
    pub key_id: Option<String>,
    pub message: Option<Blob>,
    pub mac_algorithm: Option<String>,
    pub mac: Option<Blob>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateMacOutput {
    pub mac: Blob,
    pub mac_algorithm: String,
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMacOutput {
    pub key_id: String,
    pub mac_valid: bool,
    pub mac_algorithm: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPublicKeyInput {
    pub key_id: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPublicKeyOutput {
    pub key_id: String,
    pub public_key: Blob,
    pub customer_master_key_spec: String,
    pub key_spec: String,
    pub key_usage: String,
    #[serde(flatten)]
    pub algorithms: KeyAlgorithms,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairInput {
    pub key_id: Option<String>,
    pub key_pair_spec: Option<String>,
    pub encryption_context: Option<BTreeMap<String, String>>,
    pub grant_tokens: Option<Vec<String>>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairOutput {
    pub private_key_ciphertext_blob: Blob,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_plaintext: Option<Blob>,
    pub public_key: Blob,
    pub key_id: String,
    pub key_pair_spec: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeriveSharedSecretInput {
    pub key_id: Option<String>,
    pub key_agreement_algorithm: Option<String>,
    pub public_key: Option<Blob>,
    pub grant_tokens: Option<Vec<String>>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeriveSharedSecretOutput {
    pub key_id: String,
    pub shared_secret: Blob,
    pub key_agreement_algorithm: &'static str,
    pub key_origin: &'static str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncapsulateInput {
    pub key_id: Option<String>,
    pub encapsulation_algorithm: Option<String>,
    pub shared_secret_ciphertext_blob: Option<Blob>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncapsulateOutput {
    pub key_id: String,
    pub shared_secret: Blob,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_secret_ciphertext_blob: Option<Blob>,
    pub encapsulation_algorithm: &'static str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsInput {
    pub key_id: Option<String>,
    pub include_key_material: Option<String>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationsListEntry {
    pub key_id: String,
    pub rotation_date: Timestamp,
    pub rotation_type: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsOutput {
    pub rotations: Vec<RotationsListEntry>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyLastUsage {
    pub operation: String,
    pub timestamp: Timestamp,
    pub kms_request_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyLastUsageOutput {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_last_usage: Option<KeyLastUsage>,
    pub tracking_start_date: Timestamp,
    pub key_creation_date: Timestamp,
}

/// How long GetParametersForImport's token and public key may be used (AWS: 24 hours).
pub const IMPORT_PARAMETERS_VALID_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersForImportInput {
    pub key_id: Option<String>,
    pub wrapping_algorithm: Option<String>,
    pub wrapping_key_spec: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersForImportOutput {
    pub key_id: String,
    pub import_token: Blob,
    pub public_key: Blob,
    pub parameters_valid_to: Timestamp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyMaterialInput {
    pub key_id: Option<String>,
    pub import_token: Option<Blob>,
    pub encrypted_key_material: Option<Blob>,
    pub valid_to: Option<Timestamp>,
    pub expiration_model: Option<String>,
    pub import_type: Option<String>,
    pub key_material_description: Option<String>,
    pub key_material_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMaterialOutput {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteImportedKeyMaterialInput {
    pub key_id: Option<String>,
    pub key_material_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_parse_in_all_four_forms() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(KeyRef::parse(id).unwrap(), KeyRef::Id(id.into()));
        assert_eq!(
            KeyRef::parse(&format!("arn:aws:kms:us-east-1:111122223333:key/{id}")).unwrap(),
            KeyRef::KeyArn {
                region: "us-east-1".into(),
                account: "111122223333".into(),
                key_id: id.into()
            }
        );
        assert_eq!(
            KeyRef::parse("alias/orders").unwrap(),
            KeyRef::AliasName("alias/orders".into())
        );
        assert_eq!(
            KeyRef::parse("arn:aws:kms:us-east-1:111122223333:alias/a/b").unwrap(),
            KeyRef::AliasArn {
                region: "us-east-1".into(),
                account: "111122223333".into(),
                alias: "alias/a/b".into()
            }
        );
        for bad in [
            "arn:aws:kinesis:us-east-1:111122223333:key/x",
            "arn:aws:kms:us-east-1:1111:key/x",
            "arn:aws:kms:us-east-1:111122223333:thing/x",
        ] {
            assert_eq!(KeyRef::parse(bad).unwrap_err().code, ErrorCode::NotFound);
        }
        assert_eq!(KeyRef::parse("").unwrap_err().code, ErrorCode::Validation);
    }

    #[test]
    fn alias_names_are_checked() {
        assert!(validate_alias_name("alias/orders-2024/x_y").is_ok());
        for bad in ["orders", "alias/", "alias/a b", "alias/é"] {
            assert_eq!(
                validate_alias_name(bad).unwrap_err().code,
                ErrorCode::Validation
            );
        }
        assert_eq!(
            validate_alias_name("alias/aws/kinesis").unwrap_err().code,
            ErrorCode::NotAuthorized
        );
        assert_eq!(
            validate_alias_name("orders").unwrap_err().message,
            "Invalid identifier"
        );
    }

    #[test]
    fn targets_name_operations() {
        assert_eq!(
            KmsOperation::from_target("TrentService.GenerateDataKeyWithoutPlaintext"),
            Some(KmsOperation::GenerateDataKeyWithoutPlaintext)
        );
        assert_eq!(
            KmsOperation::from_target("TrentService.NoSuchOperation"),
            None
        );
        assert_eq!(KmsOperation::from_target("Kinesis_20131202.Encrypt"), None);
    }
}
