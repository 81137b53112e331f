//! The KMS entry point: decodes a request, meters it, and hands it to the operation
//! (`api.rs` for keys, aliases, states, rotation and cryptography; `manage.rs` for tags,
//! descriptions, UpdateAlias, GenerateRandom and what has no meaning here; `grants.rs`
//! for grants and key policies; `asymmetric.rs` for signing, MACs, key agreement,
//! ML-KEM, key pairs and ListKeyRotations; `import.rs` for imported key material).

use edge::Caller;
use protocol::ApiError;
use protocol::kms::KmsOperation;
use protocol::wire::Format;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::Kms;
use crate::service::KmsService;

pub async fn dispatch(
    state: &KmsService,
    caller: &Caller,
    op: KmsOperation,
    format: Format,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    fn input<T: DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, ApiError> {
        format.decode(body)
    }
    fn out<T: Serialize>(format: Format, value: T) -> Vec<u8> {
        format.encode(&value)
    }
    // Every authenticated KMS request is metered, as AWS bills them.
    let now = state.clock.now_ms();
    state
        .catalog
        .meter_count_now(
            &caller.account_id,
            "",
            catalog::billing::Metric::KmsRequests,
            1,
            now,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "metering a KMS request failed");
            ApiError::internal()
        })?;
    let kms = Kms {
        state,
        caller,
        region: &state.region,
    };
    Ok(match op {
        KmsOperation::CreateKey => out(format, kms.create_key(input(format, body)?).await?),
        KmsOperation::DescribeKey => out(format, kms.describe_key(input(format, body)?).await?),
        KmsOperation::ListKeys => out(format, kms.list_keys(input(format, body)?).await?),
        KmsOperation::CreateAlias => out(format, kms.create_alias(input(format, body)?).await?),
        KmsOperation::ListAliases => out(format, kms.list_aliases(input(format, body)?).await?),
        KmsOperation::DeleteAlias => out(format, kms.delete_alias(input(format, body)?).await?),
        KmsOperation::EnableKey => out(
            format,
            kms.change_state(input(format, body)?, "kms:EnableKey")
                .await?,
        ),
        KmsOperation::DisableKey => out(
            format,
            kms.change_state(input(format, body)?, "kms:DisableKey")
                .await?,
        ),
        KmsOperation::ScheduleKeyDeletion => {
            out(format, kms.schedule_deletion(input(format, body)?).await?)
        }
        KmsOperation::CancelKeyDeletion => {
            out(format, kms.cancel_deletion(input(format, body)?).await?)
        }
        KmsOperation::EnableKeyRotation => {
            out(format, kms.enable_rotation(input(format, body)?).await?)
        }
        KmsOperation::DisableKeyRotation => {
            out(format, kms.disable_rotation(input(format, body)?).await?)
        }
        KmsOperation::GetKeyRotationStatus => {
            out(format, kms.rotation_status(input(format, body)?).await?)
        }
        KmsOperation::RotateKeyOnDemand => {
            out(format, kms.rotate_on_demand(input(format, body)?).await?)
        }
        KmsOperation::GenerateDataKey => out(
            format,
            kms.generate_data_key(input(format, body)?, true).await?,
        ),
        KmsOperation::GenerateDataKeyWithoutPlaintext => out(
            format,
            kms.generate_data_key(input(format, body)?, false).await?,
        ),
        KmsOperation::Encrypt => out(format, kms.encrypt(input(format, body)?).await?),
        KmsOperation::Decrypt => out(format, kms.decrypt(input(format, body)?).await?),
        KmsOperation::ReEncrypt => out(format, kms.re_encrypt(input(format, body)?).await?),
        KmsOperation::TagResource => out(format, kms.tag_resource(input(format, body)?).await?),
        KmsOperation::UntagResource => out(format, kms.untag_resource(input(format, body)?).await?),
        KmsOperation::ListResourceTags => {
            out(format, kms.list_resource_tags(input(format, body)?).await?)
        }
        KmsOperation::UpdateAlias => out(format, kms.update_alias(input(format, body)?).await?),
        KmsOperation::UpdateKeyDescription => out(
            format,
            kms.update_key_description(input(format, body)?).await?,
        ),
        KmsOperation::GenerateRandom => {
            out(format, kms.generate_random(input(format, body)?).await?)
        }
        KmsOperation::DescribeCustomKeyStores => {
            out(format, kms.describe_custom_key_stores().await?)
        }
        KmsOperation::CreateGrant => out(format, kms.create_grant(input(format, body)?).await?),
        KmsOperation::ListGrants => out(format, kms.list_grants(input(format, body)?).await?),
        KmsOperation::ListRetirableGrants => out(
            format,
            kms.list_retirable_grants(input(format, body)?).await?,
        ),
        KmsOperation::RetireGrant => out(format, kms.retire_grant(input(format, body)?).await?),
        KmsOperation::RevokeGrant => out(format, kms.revoke_grant(input(format, body)?).await?),
        KmsOperation::GetKeyPolicy => out(format, kms.get_key_policy(input(format, body)?).await?),
        KmsOperation::PutKeyPolicy => out(format, kms.put_key_policy(input(format, body)?).await?),
        KmsOperation::ListKeyPolicies => {
            out(format, kms.list_key_policies(input(format, body)?).await?)
        }
        KmsOperation::GetPublicKey => out(format, kms.get_public_key(input(format, body)?).await?),
        KmsOperation::Sign => out(format, kms.sign(input(format, body)?).await?),
        KmsOperation::Verify => out(format, kms.verify(input(format, body)?).await?),
        KmsOperation::GenerateMac => out(format, kms.generate_mac(input(format, body)?).await?),
        KmsOperation::VerifyMac => out(format, kms.verify_mac(input(format, body)?).await?),
        KmsOperation::GenerateDataKeyPair => out(
            format,
            kms.generate_data_key_pair(input(format, body)?, true)
                .await?,
        ),
        KmsOperation::GenerateDataKeyPairWithoutPlaintext => out(
            format,
            kms.generate_data_key_pair(input(format, body)?, false)
                .await?,
        ),
        KmsOperation::DeriveSharedSecret => out(
            format,
            kms.derive_shared_secret(input(format, body)?).await?,
        ),
        KmsOperation::Encapsulate => out(
            format,
            kms.encapsulation(input(format, body)?, false).await?,
        ),
        KmsOperation::Decapsulate => {
            out(format, kms.encapsulation(input(format, body)?, true).await?)
        }
        KmsOperation::ListKeyRotations => {
            out(format, kms.list_key_rotations(input(format, body)?).await?)
        }
        KmsOperation::GetKeyLastUsage => {
            out(format, kms.get_key_last_usage(input(format, body)?).await?)
        }
        KmsOperation::GetParametersForImport => out(
            format,
            kms.get_parameters_for_import(input(format, body)?).await?,
        ),
        KmsOperation::ImportKeyMaterial => {
            out(format, kms.import_key_material(input(format, body)?).await?)
        }
        KmsOperation::DeleteImportedKeyMaterial => out(
            format,
            kms.delete_imported_key_material(input(format, body)?)
                .await?,
        ),
        KmsOperation::Unavailable(operation) => {
            return Err(crate::manage::unavailable(operation));
        }
    })
}
