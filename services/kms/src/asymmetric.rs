//! The operations of asymmetric, HMAC and ML-KEM keys: GetPublicKey, Sign, Verify,
//! GenerateMac, VerifyMac, DeriveSharedSecret, Encapsulate, Decapsulate, and
//! GenerateDataKeyPair (a key pair sealed under a symmetric key); and ListKeyRotations.
//! The cryptography is `keyspec.rs`; here are the API's checks, in KMS's order:
//! the request's members, then the key (Cedar first), its state, its usage.

use protocol::kms::*;
use protocol::wire::Blob;
use protocol::{ApiError, ErrorCode};

use crate::api::{
    Kms, Naming, algorithms, api, check_grant_tokens, context, list_limit, refuse_unsupported,
    require_usage, required, spec_of, timestamp, with_context,
};
use crate::keyspec::{self, Curve, MessageType, Spec};

fn blob_member(value: Option<Blob>, member: &str, max: usize) -> Result<Blob, ApiError> {
    let blob = required(value, member)?;
    crate::api::blob_length(blob.0.len(), member, max)?;
    Ok(blob)
}

const SIGNING_ALGORITHMS: [&str; 13] = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "SM2DSA",
    "ML_DSA_SHAKE_256",
    "ED25519_SHA_512",
    "ED25519_PH_SHA_512",
];
const MAC_ALGORITHMS: [&str; 4] = [
    "HMAC_SHA_224",
    "HMAC_SHA_256",
    "HMAC_SHA_384",
    "HMAC_SHA_512",
];
const KEY_PAIR_SPECS: [&str; 12] = [
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SM2",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];

fn message_type(text: Option<&str>) -> Result<MessageType, ApiError> {
    match text {
        None | Some("RAW") => Ok(MessageType::Raw),
        Some("DIGEST") => Ok(MessageType::Digest),
        // aws-lc-rs signs an ML-DSA message, not a μ computed elsewhere.
        Some("EXTERNAL_MU") => Err(ApiError::new(
            ErrorCode::UnsupportedOperation,
            "MessageType EXTERNAL_MU (an ML-DSA mu computed by the caller) is not supported by this server; send the message itself with MessageType RAW.",
        )),
        Some(other) => Err(ApiError::validation(
            other,
            "messageType",
            "Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]",
        )),
    }
}

impl Kms<'_> {
    pub(crate) async fn get_public_key(
        &self,
        input: GetPublicKeyInput,
    ) -> Result<GetPublicKeyOutput, ApiError> {
        check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self.resolve(&id, "kms:GetPublicKey", Naming::Any).await?;
        crate::api::require_enabled(&key, &arn)?;
        let spec = spec_of(&key)?;
        if matches!(spec, Spec::Symmetric | Spec::Hmac(_)) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "{arn} key usage is {} and has no public key.",
                    key.key_usage
                ),
            ));
        }
        let material = self.key_material(&key, &arn).await?;
        Ok(GetPublicKeyOutput {
            public_key: Blob(keyspec::public_key_der(spec, &material)?.into()),
            customer_master_key_spec: key.key_spec.clone(),
            key_spec: key.key_spec.clone(),
            key_usage: key.key_usage.clone(),
            algorithms: algorithms(&key),
            key_id: arn,
        })
    }

    /// The key and the signing algorithm a Sign or Verify request names, checked.
    async fn signing_key(
        &self,
        input: &mut SignInput,
        action: &str,
        operation: &str,
    ) -> Result<
        (
            Spec,
            zeroize::Zeroizing<Vec<u8>>,
            String,
            String,
            Blob,
            MessageType,
        ),
        ApiError,
    > {
        refuse_unsupported(input.dry_run, false)?;
        check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id.take(), "keyId")?;
        let message = blob_member(input.message.take(), "Message", MESSAGE_BYTES_MAX)?;
        let algorithm = required(input.signing_algorithm.take(), "signingAlgorithm")?;
        if !SIGNING_ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(ApiError::validation(
                &algorithm,
                "signingAlgorithm",
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    SIGNING_ALGORITHMS.join(", ")
                ),
            ));
        }
        let kind = message_type(input.message_type.as_deref())?;
        let (key, arn) = self.resolve(&id, action, Naming::Any).await?;
        crate::api::require_enabled(&key, &arn)?;
        let spec = require_usage(&key, &arn, keyspec::SIGN_VERIFY, operation)?;
        if !spec.signing_algorithms().contains(&algorithm.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidKeyUsage,
                format!(
                    "Signing algorithm {algorithm} is not supported by {arn}: it takes {}.",
                    spec.signing_algorithms().join(", ")
                ),
            ));
        }
        let material = self.key_material(&key, &arn).await?;
        Ok((spec, material, arn, algorithm, message, kind))
    }

    pub(crate) async fn sign(&self, mut input: SignInput) -> Result<SignOutput, ApiError> {
        let (spec, material, arn, algorithm, message, kind) =
            self.signing_key(&mut input, "kms:Sign", "Sign").await?;
        let signature = keyspec::sign(spec, &material, &algorithm, &message.0, kind)?;
        self.used(&arn, "Sign").await;
        Ok(SignOutput {
            key_id: arn,
            signature: Blob(signature.into()),
            signing_algorithm: algorithm,
        })
    }

    /// Verify: true, or KMSInvalidSignatureException, as KMS answers a signature that
    /// does not verify.
    pub(crate) async fn verify(&self, mut input: SignInput) -> Result<VerifyOutput, ApiError> {
        let signature = blob_member(input.signature.take(), "Signature", SIGNATURE_BYTES_MAX)?;
        let (spec, material, arn, algorithm, message, kind) =
            self.signing_key(&mut input, "kms:Verify", "Verify").await?;
        if !keyspec::verify(spec, &material, &algorithm, &message.0, kind, &signature.0)? {
            return Err(ApiError::new(
                ErrorCode::KmsInvalidSignature,
                "The signature is not valid for this message, key and signing algorithm.",
            ));
        }
        self.used(&arn, "Verify").await;
        Ok(VerifyOutput {
            key_id: arn,
            signature_valid: true,
            signing_algorithm: algorithm,
        })
    }

    async fn mac_key(
        &self,
        input: &mut MacInput,
        action: &str,
        operation: &str,
    ) -> Result<(u16, zeroize::Zeroizing<Vec<u8>>, String, String, Blob), ApiError> {
        refuse_unsupported(input.dry_run, false)?;
        check_grant_tokens(&input.grant_tokens)?;
        let message = blob_member(input.message.take(), "Message", MESSAGE_BYTES_MAX)?;
        let id = required(input.key_id.take(), "keyId")?;
        let algorithm = required(input.mac_algorithm.take(), "macAlgorithm")?;
        if !MAC_ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(ApiError::validation(
                &algorithm,
                "macAlgorithm",
                "Member must satisfy enum value set: [HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512]",
            ));
        }
        let (key, arn) = self.resolve(&id, action, Naming::Any).await?;
        crate::api::require_enabled(&key, &arn)?;
        let spec = require_usage(&key, &arn, keyspec::GENERATE_VERIFY_MAC, operation)?;
        let Spec::Hmac(bits) = spec else {
            return Err(ApiError::internal());
        };
        if !spec.mac_algorithms().contains(&algorithm.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidKeyUsage,
                format!("MAC algorithm {algorithm} is not supported by {arn}."),
            ));
        }
        let material = self.key_material(&key, &arn).await?;
        Ok((bits, material, arn, algorithm, message))
    }

    pub(crate) async fn generate_mac(
        &self,
        mut input: MacInput,
    ) -> Result<GenerateMacOutput, ApiError> {
        let (bits, material, arn, algorithm, message) = self
            .mac_key(&mut input, "kms:GenerateMac", "GenerateMac")
            .await?;
        self.used(&arn, "GenerateMac").await;
        Ok(GenerateMacOutput {
            mac: Blob(keyspec::mac(bits, &material, &message.0).into()),
            mac_algorithm: algorithm,
            key_id: arn,
        })
    }

    /// VerifyMac: true, or KMSInvalidMacException.
    pub(crate) async fn verify_mac(
        &self,
        mut input: MacInput,
    ) -> Result<VerifyMacOutput, ApiError> {
        let tag = blob_member(input.mac.take(), "mac", SIGNATURE_BYTES_MAX)?;
        let (bits, material, arn, algorithm, message) = self
            .mac_key(&mut input, "kms:VerifyMac", "VerifyMac")
            .await?;
        if !keyspec::verify_mac(bits, &material, &message.0, &tag.0) {
            return Err(ApiError::new(
                ErrorCode::KmsInvalidMac,
                "The MAC is not valid for this message, key and MAC algorithm.",
            ));
        }
        self.used(&arn, "VerifyMac").await;
        Ok(VerifyMacOutput {
            key_id: arn,
            mac_valid: true,
            mac_algorithm: algorithm,
        })
    }

    /// GenerateDataKeyPair(WithoutPlaintext): a fresh key pair whose private key comes
    /// back sealed under the symmetric key the request names (and in the clear unless
    /// `with_plaintext` is false).
    pub(crate) async fn generate_data_key_pair(
        &self,
        input: GenerateDataKeyPairInput,
        with_plaintext: bool,
    ) -> Result<GenerateDataKeyPairOutput, ApiError> {
        refuse_unsupported(input.dry_run, input.recipient.is_some())?;
        check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id, "keyId")?;
        let pair_spec = required(input.key_pair_spec, "keyPairSpec")?;
        if !KEY_PAIR_SPECS.contains(&pair_spec.as_str()) {
            return Err(ApiError::validation(
                &pair_spec,
                "keyPairSpec",
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    KEY_PAIR_SPECS.join(", ")
                ),
            ));
        }
        let spec = Spec::parse(&pair_spec)?;
        if matches!(spec, Spec::MlKem(_)) {
            // Its private key has no PKCS #8 form here to hand back.
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("KeyPairSpec {pair_spec} is not supported by this server."),
            ));
        }
        let ctx = context(input.encryption_context, "encryptionContext")?;
        let action = if with_plaintext {
            "kms:GenerateDataKeyPair"
        } else {
            "kms:GenerateDataKeyPairWithoutPlaintext"
        };
        let (key, arn) = self
            .resolve_for(&id, action, Naming::Any, with_context(&ctx))
            .await?;
        let private = spec.generate()?;
        let public = keyspec::public_key_der(spec, &private)?;
        let sealed = self.seal(&key, &arn, &ctx, &private).await?;
        self.used(&arn, &action["kms:".len()..]).await;
        Ok(GenerateDataKeyPairOutput {
            private_key_ciphertext_blob: Blob(sealed.into()),
            private_key_plaintext: with_plaintext
                .then(|| Blob(bytes::Bytes::copy_from_slice(&private))),
            public_key: Blob(public.into()),
            key_id: arn,
            key_pair_spec: pair_spec,
        })
    }

    pub(crate) async fn derive_shared_secret(
        &self,
        input: DeriveSharedSecretInput,
    ) -> Result<DeriveSharedSecretOutput, ApiError> {
        refuse_unsupported(input.dry_run, input.recipient.is_some())?;
        check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id, "keyId")?;
        match required(input.key_agreement_algorithm, "keyAgreementAlgorithm")?.as_str() {
            "ECDH" => {}
            other => {
                return Err(ApiError::validation(
                    other,
                    "keyAgreementAlgorithm",
                    "Member must satisfy enum value set: [ECDH]",
                ));
            }
        }
        let peer = blob_member(input.public_key, "publicKey", PUBLIC_KEY_BYTES_MAX)?;
        let (key, arn) = self
            .resolve(&id, "kms:DeriveSharedSecret", Naming::Any)
            .await?;
        crate::api::require_enabled(&key, &arn)?;
        let spec = require_usage(&key, &arn, keyspec::KEY_AGREEMENT, "DeriveSharedSecret")?;
        let Spec::Ecc(curve @ (Curve::P256 | Curve::P384 | Curve::P521)) = spec else {
            return Err(ApiError::internal());
        };
        let material = self.key_material(&key, &arn).await?;
        let secret = keyspec::derive_shared_secret(curve, &material, &peer.0)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Validation,
                format!(
                    "PublicKey is not a DER-encoded X.509 public key on the curve of {arn} ({}).",
                    key.key_spec
                ),
            )
        })?;
        self.used(&arn, "DeriveSharedSecret").await;
        Ok(DeriveSharedSecretOutput {
            key_id: arn,
            shared_secret: Blob(bytes::Bytes::copy_from_slice(&secret)),
            key_agreement_algorithm: "ECDH",
            key_origin: "AWS_KMS",
        })
    }

    /// Encapsulate (`ciphertext` `None`) or Decapsulate under an ML-KEM key.
    pub(crate) async fn encapsulation(
        &self,
        input: EncapsulateInput,
        decapsulate: bool,
    ) -> Result<EncapsulateOutput, ApiError> {
        refuse_unsupported(input.dry_run, false)?;
        check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id, "keyId")?;
        let ciphertext = if decapsulate {
            Some(blob_member(
                input.shared_secret_ciphertext_blob,
                "sharedSecretCiphertextBlob",
                SIGNATURE_BYTES_MAX,
            )?)
        } else {
            None
        };
        match required(input.encapsulation_algorithm, "encapsulationAlgorithm")?.as_str() {
            "ML_KEM" => {}
            other => {
                return Err(ApiError::validation(
                    other,
                    "encapsulationAlgorithm",
                    "Member must satisfy enum value set: [ML_KEM]",
                ));
            }
        }
        let (action, operation) = if decapsulate {
            ("kms:Decapsulate", "Decapsulate")
        } else {
            ("kms:Encapsulate", "Encapsulate")
        };
        let (key, arn) = self.resolve(&id, action, Naming::Any).await?;
        crate::api::require_enabled(&key, &arn)?;
        let Spec::MlKem(bits) =
            require_usage(&key, &arn, keyspec::ENCAPSULATE_DECAPSULATE, operation)?
        else {
            return Err(ApiError::internal());
        };
        let material = self.key_material(&key, &arn).await?;
        let (secret, ciphertext_out) = match ciphertext {
            Some(ciphertext) => {
                let secret =
                    keyspec::decapsulate(bits, &material, &ciphertext.0)?.ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidCiphertext,
                            "The ciphertext is not an ML-KEM ciphertext of this key.",
                        )
                    })?;
                (secret, None)
            }
            None => {
                let (ciphertext, secret) = keyspec::encapsulate(bits, &material)?;
                (secret, Some(Blob(ciphertext.into())))
            }
        };
        self.used(&arn, operation).await;
        Ok(EncapsulateOutput {
            key_id: arn,
            shared_secret: Blob(bytes::Bytes::copy_from_slice(&secret)),
            shared_secret_ciphertext_blob: ciphertext_out,
            encapsulation_algorithm: "ML_KEM",
        })
    }

    /// GetKeyLastUsage: the last successful cryptographic operation with the key, since
    /// its tracking began.
    pub(crate) async fn get_key_last_usage(
        &self,
        input: GetPublicKeyInput,
    ) -> Result<GetKeyLastUsageOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self
            .resolve(&id, "kms:GetKeyLastUsage", Naming::KeyOnly)
            .await?;
        let (tracked_from, last) = self
            .state
            .catalog
            .key_last_use(self.account(), &key.key_id)
            .await
            .map_err(api)?
            .ok_or_else(|| crate::api::key_not_found(&arn))?;
        Ok(GetKeyLastUsageOutput {
            key_id: arn,
            key_last_usage: last.map(|(operation, at_ms, request_id)| KeyLastUsage {
                operation,
                timestamp: timestamp(at_ms),
                kms_request_id: request_id,
            }),
            tracking_start_date: timestamp(tracked_from.unwrap_or(key.created_at_ms)),
            key_creation_date: timestamp(key.created_at_ms),
        })
    }

    /// ListKeyRotations: the key's rotations, oldest first; the marker is the last
    /// version listed.
    pub(crate) async fn list_key_rotations(
        &self,
        input: ListKeyRotationsInput,
    ) -> Result<ListKeyRotationsOutput, ApiError> {
        let limit = list_limit(input.limit)?;
        let id = required(input.key_id, "keyId")?;
        match input.include_key_material.as_deref() {
            None | Some("ROTATIONS_ONLY") | Some("ALL_KEY_MATERIAL") => {}
            Some(other) => {
                return Err(ApiError::validation(
                    other,
                    "includeKeyMaterial",
                    "Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]",
                ));
            }
        }
        let after: i64 = match input.marker.as_deref() {
            None => 0,
            Some(marker) => marker.parse().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidMarker,
                    format!("Invalid marker: {marker}"),
                )
            })?,
        };
        let (key, arn) = self
            .resolve(&id, "kms:ListKeyRotations", Naming::KeyOnly)
            .await?;
        if key.key_spec != SYMMETRIC_DEFAULT {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "{arn} is a {} key, which KMS does not rotate.",
                    key.key_spec
                ),
            ));
        }
        let mut rows = self
            .state
            .catalog
            .key_rotations(self.account(), &key.key_id, after, limit + 1)
            .await
            .map_err(api)?;
        let truncated = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(ListKeyRotationsOutput {
            next_marker: truncated
                .then(|| rows.last().map(|(version, _, _)| version.to_string()))
                .flatten(),
            rotations: rows
                .into_iter()
                .map(|(_, at_ms, kind)| RotationsListEntry {
                    key_id: key.key_id.clone(),
                    rotation_date: timestamp(at_ms),
                    rotation_type: kind,
                })
                .collect(),
            truncated,
        })
    }
}
