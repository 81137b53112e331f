//! Imported key material (KMS's "bring your own key"): CreateKey with Origin EXTERNAL
//! makes a symmetric key PendingImport; GetParametersForImport hands out an RSA
//! wrapping public key and a token (valid 24 hours); ImportKeyMaterial unwraps the
//! caller's 256-bit material with RSAES-OAEP and enables the key, optionally until a
//! ValidTo the key sweep enforces; DeleteImportedKeyMaterial takes it away again. A key
//! takes back only the material it had (by its fingerprint, never the material itself).

use aws_lc_rs::digest;
use catalog::masterkeys::{KeyState, MasterKey};
use protocol::kms::*;
use protocol::wire::Blob;
use protocol::{ApiError, ErrorCode};

use crate::api::{Kms, Naming, api, pending_deletion, required, timestamp};
use crate::keyspec::{self, Spec};

/// Symmetric key material is 256 bits.
const MATERIAL_BYTES: usize = 32;

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedOperation,
        format!("{what} is not supported by this server."),
    )
}

/// KeyMaterialId: the SHA-256 of the key id and the material, in hex.
fn fingerprint(key_id: &str, material: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"sluice kms imported material v1\0");
    ctx.update(key_id.as_bytes());
    ctx.update(b"\0");
    ctx.update(material);
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn require_external(key: &MasterKey, arn: &str) -> Result<(), ApiError> {
    if key.origin != "EXTERNAL" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperation,
            format!(
                "{arn} has Origin {}; only EXTERNAL keys take imported key material.",
                key.origin
            ),
        ));
    }
    Ok(())
}

impl Kms<'_> {
    pub(crate) async fn get_parameters_for_import(
        &self,
        input: GetParametersForImportInput,
    ) -> Result<GetParametersForImportOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let algorithm = required(input.wrapping_algorithm, "wrappingAlgorithm")?;
        let spec_name = required(input.wrapping_key_spec, "wrappingKeySpec")?;
        let algorithm: &'static str = match algorithm.as_str() {
            "RSAES_OAEP_SHA_1" => "RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_256" => "RSAES_OAEP_SHA_256",
            "RSAES_PKCS1_V1_5"
            | "RSA_AES_KEY_WRAP_SHA_1"
            | "RSA_AES_KEY_WRAP_SHA_256"
            | "SM2PKE" => {
                return Err(unsupported(&format!(
                    "WrappingAlgorithm {algorithm} (use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256)"
                )));
            }
            other => {
                return Err(ApiError::validation(
                    other,
                    "wrappingAlgorithm",
                    "Member must satisfy enum value set: [RSAES_PKCS1_V1_5, RSAES_OAEP_SHA_1, \
                     RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, SM2PKE]",
                ));
            }
        };
        let spec = match spec_name.as_str() {
            "RSA_2048" | "RSA_3072" | "RSA_4096" => Spec::parse(&spec_name)?,
            "SM2" => return Err(unsupported("WrappingKeySpec SM2")),
            other => {
                return Err(ApiError::validation(
                    other,
                    "wrappingKeySpec",
                    "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]",
                ));
            }
        };
        let (key, arn) = self
            .resolve(&id, "kms:GetParametersForImport", Naming::KeyOnly)
            .await?;
        require_external(&key, &arn)?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        let wrapping = spec.generate()?;
        let public = keyspec::public_key_der(spec, &wrapping)?;
        let mut token = [0u8; 32];
        aws_lc_rs::rand::fill(&mut token).expect("system randomness");
        let token_text: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let now = self.state.clock.now_ms();
        let valid_to = now.saturating_add(IMPORT_PARAMETERS_VALID_MS);
        self.state
            .catalog
            .put_import_token(
                &self.state.root_key,
                self.account(),
                &key.key_id,
                &token_text,
                algorithm,
                &wrapping,
                valid_to,
                now,
            )
            .await
            .map_err(api)?;
        Ok(GetParametersForImportOutput {
            key_id: arn,
            import_token: Blob(bytes::Bytes::copy_from_slice(&token)),
            public_key: Blob(public.into()),
            parameters_valid_to: timestamp(valid_to),
        })
    }

    pub(crate) async fn import_key_material(
        &self,
        input: ImportKeyMaterialInput,
    ) -> Result<KeyMaterialOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let token = required(input.import_token, "importToken")?;
        let wrapped = required(input.encrypted_key_material, "encryptedKeyMaterial")?;
        if token.0.is_empty() || token.0.len() > 6_144 {
            return Err(ApiError::validation(
                format!("{} bytes", token.0.len()),
                "importToken",
                "Member must have length between 1 and 6144",
            ));
        }
        if wrapped.0.is_empty() || wrapped.0.len() > 6_144 {
            return Err(ApiError::validation(
                format!("{} bytes", wrapped.0.len()),
                "encryptedKeyMaterial",
                "Member must have length between 1 and 6144",
            ));
        }
        let expires_ms = match (input.expiration_model.as_deref(), input.valid_to) {
            (None | Some("KEY_MATERIAL_EXPIRES"), Some(valid_to)) => Some(valid_to.epoch_ms),
            (None | Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None) => None,
            (Some("KEY_MATERIAL_EXPIRES"), None) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "A ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.",
                ));
            }
            (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(_)) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "ValidTo cannot be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.",
                ));
            }
            (Some(other), _) => {
                return Err(ApiError::validation(
                    other,
                    "expirationModel",
                    "Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]",
                ));
            }
        };
        let now = self.state.clock.now_ms();
        if expires_ms.is_some_and(|at| at <= now) {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "ValidTo must be in the future.",
            ));
        }
        if let Some(kind) = input.import_type.as_deref()
            && !matches!(kind, "NEW_KEY_MATERIAL" | "EXISTING_KEY_MATERIAL")
        {
            return Err(ApiError::validation(
                kind,
                "importType",
                "Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]",
            ));
        }
        let (key, arn) = self
            .resolve(&id, "kms:ImportKeyMaterial", Naming::KeyOnly)
            .await?;
        require_external(&key, &arn)?;
        match key.state {
            KeyState::PendingImport => {}
            KeyState::PendingDeletion => return Err(pending_deletion(&arn)),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::KmsInvalidState,
                    format!("{arn} already has key material; delete it before importing again."),
                ));
            }
        }
        let token_text: String = token.0.iter().map(|b| format!("{b:02x}")).collect();
        let (algorithm, wrapping, valid_to) = self
            .state
            .catalog
            .import_token(
                &self.state.root_key,
                self.account(),
                &key.key_id,
                &token_text,
            )
            .await
            .map_err(api)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidImportToken,
                    format!("The import token is not one GetParametersForImport gave for {arn}."),
                )
            })?;
        if valid_to <= now {
            return Err(ApiError::new(
                ErrorCode::ExpiredImportToken,
                "The import token has expired; call GetParametersForImport again.",
            ));
        }
        let material = keyspec::rsa_decrypt(&wrapping, &algorithm, &wrapped.0)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCiphertext,
                format!(
                    "The EncryptedKeyMaterial does not open with the import's wrapping key and {algorithm}."
                ),
            )
        })?;
        if material.len() != MATERIAL_BYTES {
            return Err(ApiError::new(
                ErrorCode::IncorrectKeyMaterial,
                format!(
                    "Key material for a SYMMETRIC_DEFAULT key is 256 bits; this is {} bits.",
                    material.len() * 8
                ),
            ));
        }
        let id_of_material = fingerprint(&key.key_id, &material);
        let mismatch = key
            .material_fingerprint
            .as_deref()
            .is_some_and(|had| had != id_of_material)
            || input
                .key_material_id
                .as_deref()
                .is_some_and(|named| named != id_of_material);
        if mismatch {
            return Err(ApiError::new(
                ErrorCode::IncorrectKeyMaterial,
                format!("{arn} takes back only the key material it had before."),
            ));
        }
        if !self
            .state
            .catalog
            .import_key_material(
                &self.state.root_key,
                self.account(),
                &key.key_id,
                &token_text,
                &material,
                &id_of_material,
                expires_ms,
                now,
            )
            .await
            .map_err(api)?
        {
            return Err(ApiError::new(
                ErrorCode::KmsInvalidState,
                format!("{arn} changed state while this request ran; retry it."),
            ));
        }
        tracing::info!(key_id = %key.key_id, "KMS key material imported");
        Ok(KeyMaterialOutput {
            key_id: arn,
            key_material_id: Some(id_of_material),
        })
    }

    pub(crate) async fn delete_imported_key_material(
        &self,
        input: DeleteImportedKeyMaterialInput,
    ) -> Result<KeyMaterialOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self
            .resolve(&id, "kms:DeleteImportedKeyMaterial", Naming::KeyOnly)
            .await?;
        require_external(&key, &arn)?;
        if let Some(named) = input.key_material_id.as_deref()
            && key.material_fingerprint.as_deref() != Some(named)
        {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{arn} has no key material {named}."),
            ));
        }
        self.state
            .catalog
            .delete_imported_material(self.account(), &key.key_id)
            .await
            .map_err(api)?;
        tracing::info!(key_id = %key.key_id, "KMS imported key material deleted");
        Ok(KeyMaterialOutput {
            key_id: arn,
            key_material_id: key.material_fingerprint,
        })
    }
}
