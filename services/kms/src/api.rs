//! The KMS operations (`X-Amz-Target: TrentService.<Operation>`, JSON 1.1), one method
//! per operation on a request's `Kms` context.
//!
//! Every operation is authorized by Cedar (`kms:<Operation>`, as IAM names them) on
//! the key it names, or on the tenant for CreateKey, ListKeys and ListAliases, before
//! it reads any key material. A key named in another account (by its ARN, an alias
//! ARN or a ciphertext blob) is refused by the platform policy. Key material is
//! unwrapped per request from the catalog and dropped (zeroized) when the request ends.

use catalog::masterkeys::{
    self, KeyManager, KeyState, MasterKey, PENDING_WINDOW_DAYS_DEFAULT, PENDING_WINDOW_DAYS_MAX,
    PENDING_WINDOW_DAYS_MIN, ROTATION_PERIOD_DAYS_DEFAULT, ROTATION_PERIOD_DAYS_MAX,
    ROTATION_PERIOD_DAYS_MIN, StateChange,
};
use envelope::ciphertext::{self, BlobKey, EncryptionContext};
use protocol::kms::*;
use protocol::wire::{Blob, Timestamp};
use protocol::{ApiError, ErrorCode};
use serde::Serialize;
use zeroize::Zeroizing;

use edge::{Caller, KeyUse, Resource};

use crate::keyspec::{self, Spec};
use crate::service::KmsService;

/// A catalog error as the caller sees it (internal causes are logged, never sent).
pub(crate) use edge::wire_error as api;

#[derive(Serialize)]
pub(crate) struct Empty {}

pub(crate) struct Kms<'a> {
    pub(crate) state: &'a KmsService,
    pub(crate) caller: &'a Caller,
    pub(crate) region: &'a str,
}

/// Which of AWS's four ways of naming a key (id, key ARN, alias name, alias ARN) a
/// member takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// All four: DescribeKey and the cryptographic operations.
    Any,
    /// The key id or key ARN; an alias is not found (key management).
    KeyOnly,
    /// The key id or key ARN; an alias is invalid input (an alias's TargetKeyId).
    Target,
}

/// A use of a key under an encryption context.
pub(crate) fn with_context(ctx: &EncryptionContext) -> KeyUse<'_> {
    KeyUse {
        encryption_context: Some(ctx),
        grant_id: None,
    }
}

pub(crate) fn required<T>(value: Option<T>, member: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Validation,
            format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ),
        )
    })
}

pub(crate) fn key_not_found(arn: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("Key '{arn}' does not exist"))
}

/// Refuses a key that cannot do cryptography now, with the error AWS gives.
pub(crate) fn require_enabled(key: &MasterKey, arn: &str) -> Result<(), ApiError> {
    match key.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(ApiError::new(
            ErrorCode::Disabled,
            format!("{arn} is disabled."),
        )),
        KeyState::PendingDeletion => Err(ApiError::new(
            ErrorCode::KmsInvalidState,
            format!("{arn} is pending deletion."),
        )),
        KeyState::PendingImport => Err(ApiError::new(
            ErrorCode::KmsInvalidState,
            format!("{arn} is pending import."),
        )),
    }
}

pub(crate) fn pending_deletion(arn: &str) -> ApiError {
    ApiError::new(
        ErrorCode::KmsInvalidState,
        format!("{arn} is pending deletion."),
    )
}

/// An EncryptionAlgorithm member: `None` for SYMMETRIC_DEFAULT (or none given), else
/// the RSAES-OAEP algorithm named.
fn check_algorithm(
    algorithm: Option<&str>,
    member: &str,
) -> Result<Option<&'static str>, ApiError> {
    match algorithm {
        None | Some(SYMMETRIC_DEFAULT) => Ok(None),
        Some("RSAES_OAEP_SHA_1") => Ok(Some("RSAES_OAEP_SHA_1")),
        Some("RSAES_OAEP_SHA_256") => Ok(Some("RSAES_OAEP_SHA_256")),
        Some(a @ ("SM2PKE" | "RSA_AES_KEY_WRAP_SHA_1" | "RSA_AES_KEY_WRAP_SHA_256")) => {
            Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{a} is not supported by this server."),
            ))
        }
        Some(other) => Err(ApiError::validation(
            other,
            member,
            "Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]",
        )),
    }
}

/// The spec a stored key has.
pub(crate) fn spec_of(key: &MasterKey) -> Result<Spec, ApiError> {
    Spec::parse(&key.key_spec).map_err(|_| {
        tracing::error!(key_id = %key.key_id, spec = %key.key_spec, "a stored key has an unknown spec");
        ApiError::internal()
    })
}

/// The algorithms DescribeKey and GetPublicKey list for a key.
pub(crate) fn algorithms(key: &MasterKey) -> KeyAlgorithms {
    let Ok(spec) = Spec::parse(&key.key_spec) else {
        return KeyAlgorithms::default();
    };
    let mut out = KeyAlgorithms::default();
    match key.key_usage.as_str() {
        keyspec::ENCRYPT_DECRYPT => out.encryption_algorithms = spec.encryption_algorithms(),
        keyspec::SIGN_VERIFY => out.signing_algorithms = spec.signing_algorithms(),
        keyspec::GENERATE_VERIFY_MAC => out.mac_algorithms = spec.mac_algorithms(),
        keyspec::KEY_AGREEMENT => out.key_agreement_algorithms = vec!["ECDH"],
        keyspec::ENCAPSULATE_DECAPSULATE => out.encapsulation_algorithms = vec!["ML_KEM"],
        _ => {}
    }
    out
}

/// Refuses a key whose usage is not `usage` for `operation`.
pub(crate) fn require_usage(
    key: &MasterKey,
    arn: &str,
    usage: &str,
    operation: &str,
) -> Result<Spec, ApiError> {
    if key.key_usage != usage {
        return Err(ApiError::new(
            ErrorCode::InvalidKeyUsage,
            format!(
                "{arn} key usage is {} which is not valid for {operation}.",
                key.key_usage
            ),
        ));
    }
    spec_of(key)
}

/// Refuses a key that is not a symmetric encryption key (what the blob format seals
/// under).
fn require_symmetric(key: &MasterKey, arn: &str) -> Result<(), ApiError> {
    if key.key_spec != SYMMETRIC_DEFAULT || key.key_usage != ENCRYPT_DECRYPT {
        return Err(ApiError::new(
            ErrorCode::InvalidKeyUsage,
            format!(
                "{arn} is a {} {} key; this operation needs a symmetric encryption key.",
                key.key_spec, key.key_usage
            ),
        ));
    }
    Ok(())
}

/// Options Sluice does not have are refused, never silently ignored.
pub(crate) fn refuse_unsupported(dry_run: Option<bool>, recipient: bool) -> Result<(), ApiError> {
    if dry_run == Some(true) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperation,
            "DryRun is not supported by this server.",
        ));
    }
    if recipient {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperation,
            "Recipient (Nitro Enclaves attestation) is not supported by this server.",
        ));
    }
    Ok(())
}

pub(crate) fn check_grant_tokens(tokens: &Option<Vec<String>>) -> Result<(), ApiError> {
    match tokens {
        Some(t) if t.len() > GRANT_TOKENS_MAX => Err(ApiError::validation(
            format!("{} grant tokens", t.len()),
            "grantTokens",
            "Member must have length less than or equal to 10",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn context(
    ctx: Option<EncryptionContext>,
    member: &str,
) -> Result<EncryptionContext, ApiError> {
    let ctx = ctx.unwrap_or_default();
    if ctx.len() > CONTEXT_PAIRS_MAX
        || ciphertext::canonical_context(&ctx).len() > CONTEXT_BYTES_MAX
    {
        return Err(ApiError::validation(
            format!("{} pairs", ctx.len()),
            member,
            &format!(
                "Member must have at most {CONTEXT_PAIRS_MAX} pairs and {CONTEXT_BYTES_MAX} bytes"
            ),
        ));
    }
    Ok(ctx)
}

fn blob_bytes(blob: Option<Blob>, member: &str) -> Result<Blob, ApiError> {
    let blob = required(blob, member)?;
    blob_length(blob.0.len(), member, CIPHERTEXT_BYTES_MAX)?;
    Ok(blob)
}

/// A blob member's length within 1..=`max`, refused as KMS words it: a blob's value
/// is never repeated back.
pub(crate) fn blob_length(len: usize, member: &str, max: usize) -> Result<(), ApiError> {
    let constraint = if len == 0 {
        "Member must have length greater than or equal to 1".to_string()
    } else if len > max {
        format!("Member must have length less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}"
        ),
    ))
}

pub(crate) fn timestamp(epoch_ms: i64) -> Timestamp {
    Timestamp { epoch_ms }
}

pub(crate) fn list_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(l) if (1..=LIST_LIMIT_MAX).contains(&l) => Ok(l),
        Some(l) => Err(ApiError::validation(
            l,
            "limit",
            "Member must have value between 1 and 1000",
        )),
    }
}

/// A key-id string as a blob carries it: its UUID bytes.
fn uuid_bytes(key_id: &str) -> Result<[u8; 16], ApiError> {
    uuid::Uuid::parse_str(key_id)
        .map(|u| *u.as_bytes())
        .map_err(|_| {
            tracing::error!(key_id, "a catalog key id is not a UUID");
            ApiError::internal()
        })
}

impl Kms<'_> {
    pub(crate) fn account(&self) -> &str {
        &self.caller.account_id
    }

    pub(crate) fn arn(&self, key_id: &str) -> String {
        key_arn(self.region, self.account(), key_id)
    }

    // The two places this module asks Cedar; async already so that an asynchronous
    // `Authz::authorize` needs an `.await` here and nowhere else.
    pub(crate) async fn authorize_tenant(&self, action: &str) -> Result<(), ApiError> {
        self.state
            .authz
            .authorize(
                self.caller,
                action,
                Resource::Tenant {
                    account: self.account(),
                },
            )
            .await
    }

    pub(crate) async fn authorize_key(
        &self,
        action: &str,
        account: &str,
        arn: &str,
        used: KeyUse<'_>,
    ) -> Result<(), ApiError> {
        self.state
            .authz
            .authorize_key_use(self.caller, action, Resource::Key { account, arn }, used)
            .await
    }

    /// The key a request names, once Cedar allowed `action` on it, and its key ARN.
    /// `naming`: which of AWS's four ways of naming a key the member takes.
    pub(crate) async fn resolve(
        &self,
        text: &str,
        action: &str,
        naming: Naming,
    ) -> Result<(MasterKey, String), ApiError> {
        self.resolve_for(text, action, naming, KeyUse::default())
            .await
    }

    /// `resolve`, with what the request says of its use of the key (its encryption
    /// context, the grant it retires) for key policies and grants to decide on.
    pub(crate) async fn resolve_for(
        &self,
        text: &str,
        action: &str,
        naming: Naming,
        used: KeyUse<'_>,
    ) -> Result<(MasterKey, String), ApiError> {
        let key_ref = KeyRef::parse(text)?;
        let (account, key_id) = match key_ref {
            // A bare id that is not a UUID names no key KMS could have made.
            KeyRef::Id(id) if uuid::Uuid::parse_str(&id).is_err() => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("Invalid keyId {text}"),
                ));
            }
            KeyRef::Id(id) => (self.account().to_string(), Ok(id)),
            KeyRef::KeyArn {
                region,
                account,
                key_id,
            } => {
                if region != self.region {
                    return Err(key_not_found(text));
                }
                (account, Ok(key_id))
            }
            KeyRef::AliasName(_) | KeyRef::AliasArn { .. } if naming == Naming::Target => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "Aliases must refer to keys. Not aliases",
                ));
            }
            // Key management names the key itself, by id or ARN; KMS does not find a
            // key by an alias there.
            KeyRef::AliasName(_) | KeyRef::AliasArn { .. } if naming == Naming::KeyOnly => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("Invalid keyId {text}"),
                ));
            }
            KeyRef::AliasName(alias) => (self.account().to_string(), Err(alias)),
            KeyRef::AliasArn {
                region,
                account,
                alias,
            } => {
                if region != self.region {
                    return Err(key_not_found(text));
                }
                (account, Err(alias))
            }
        };
        if account != self.account() {
            // INVARIANT: another tenant's key is never looked up; the platform policy
            // denies it, which names the resource as the caller named it.
            let arn = match &key_id {
                Ok(id) => key_arn(self.region, &account, id),
                Err(alias) => alias_arn(self.region, &account, alias),
            };
            self.authorize_key(action, &account, &arn, used).await?;
            return Err(key_not_found(&arn));
        }
        // `key_id` is the key id the caller named, or (`Err`) the alias it named.
        let key_id = match key_id {
            Ok(id) => id,
            Err(alias) => self
                .state
                .catalog
                .resolve_alias(self.account(), &alias)
                .await
                .map_err(api)?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        format!(
                            "Alias {} is not found.",
                            alias_arn(self.region, self.account(), &alias)
                        ),
                    )
                })?,
        };
        let arn = self.arn(&key_id);
        self.authorize_key(action, self.account(), &arn, used)
            .await?;
        let key = self
            .state
            .catalog
            .master_key(self.account(), &key_id)
            .await
            .map_err(api)?
            .ok_or_else(|| key_not_found(&arn))?;
        Ok((key, arn))
    }

    pub(crate) fn metadata(&self, key: &MasterKey) -> KeyMetadata {
        KeyMetadata {
            aws_account_id: key.account_id.clone(),
            key_id: key.key_id.clone(),
            arn: key_arn(self.region, &key.account_id, &key.key_id),
            creation_date: timestamp(key.created_at_ms),
            enabled: key.state == KeyState::Enabled,
            description: key.description.clone(),
            key_usage: key.key_usage.clone(),
            key_state: key.state.as_str(),
            deletion_date: key.deletion_date_ms.map(timestamp),
            pending_deletion_window_in_days: key.pending_window_days,
            origin: key.origin.clone(),
            expiration_model: (key.origin == "EXTERNAL").then_some(
                if key.material_expires_ms.is_some() {
                    "KEY_MATERIAL_EXPIRES"
                } else {
                    "KEY_MATERIAL_DOES_NOT_EXPIRE"
                },
            ),
            valid_to: key.material_expires_ms.map(timestamp),
            key_manager: key.manager.as_str(),
            customer_master_key_spec: key.key_spec.clone(),
            key_spec: key.key_spec.clone(),
            algorithms: algorithms(key),
            multi_region: false,
        }
    }

    pub(crate) async fn create_key(
        &self,
        input: CreateKeyInput,
    ) -> Result<KeyMetadataOutput, ApiError> {
        self.authorize_tenant("kms:CreateKey").await?;
        let description = input.description.unwrap_or_default();
        if description.chars().count() > DESCRIPTION_CHARS_MAX {
            return Err(ApiError::validation(
                "(description)",
                "description",
                "Member must have length less than or equal to 8192",
            ));
        }
        if let Some(usage) = input.key_usage.as_deref()
            && !KEY_USAGES.contains(&usage)
        {
            return Err(ApiError::validation(
                usage,
                "keyUsage",
                "Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, \
                 GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]",
            ));
        }
        for (spec, member) in [
            (&input.key_spec, "keySpec"),
            (&input.customer_master_key_spec, "customerMasterKeySpec"),
        ] {
            if let Some(spec) = spec.as_deref()
                && !KEY_SPECS.contains(&spec)
            {
                return Err(ApiError::validation(
                    spec,
                    member,
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        KEY_SPECS.join(", ")
                    ),
                ));
            }
        }
        if input.key_spec.is_some() && input.customer_master_key_spec.is_some() {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.",
            ));
        }
        let spec_name = input
            .key_spec
            .as_deref()
            .or(input.customer_master_key_spec.as_deref())
            .unwrap_or(SYMMETRIC_DEFAULT);
        let spec = Spec::parse(spec_name)?;
        let usage = input.key_usage.as_deref().unwrap_or(spec.usages()[0]);
        if !spec.usages().contains(&usage) {
            return Err(ApiError::new(
                ErrorCode::Validation,
                format!("KeyUsage {usage} is not compatible with KeySpec {spec_name}."),
            ));
        }
        let unsupported = |what: &str| {
            Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{what} is not supported by this server."),
            ))
        };
        let external = match input.origin.as_deref() {
            None | Some("AWS_KMS") => false,
            Some("EXTERNAL") if spec == Spec::Symmetric => true,
            Some("EXTERNAL") => {
                return unsupported(
                    "Importing key material into a key other than SYMMETRIC_DEFAULT",
                );
            }
            Some(o @ ("AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE")) => {
                return unsupported(&format!("Origin {o} (a custom key store)"));
            }
            Some(other) => {
                return Err(ApiError::validation(
                    other,
                    "origin",
                    "Member must satisfy enum value set: [AWS_CLOUDHSM, EXTERNAL, AWS_KMS, EXTERNAL_KEY_STORE]",
                ));
            }
        };
        if input.multi_region == Some(true) {
            return unsupported("MultiRegion");
        }
        let tags = checked_tags(input.tags.unwrap_or_default())?;
        if tags.len() as i64 > catalog::keymeta::KEY_TAGS_MAX {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "A KMS key can have at most {} tags.",
                    catalog::keymeta::KEY_TAGS_MAX
                ),
            ));
        }
        if input.custom_key_store_id.is_some() {
            return unsupported("A custom key store");
        }
        let material;
        let kind = if spec == Spec::Symmetric {
            None
        } else {
            material = spec.generate()?;
            Some(masterkeys::KeyKind {
                spec: spec_name,
                usage,
                material: &material,
            })
        };
        let key = if external {
            self.state
                .catalog
                .create_external_key(self.account(), &description, self.state.clock.now_ms())
                .await
                .map_err(api)?
        } else {
            self.state
                .catalog
                .create_master_key_of(
                    &self.state.root_key,
                    self.account(),
                    &description,
                    KeyManager::Customer,
                    self.state.clock.now_ms(),
                    kind.as_ref(),
                )
                .await
                .map_err(api)?
        };
        if !tags.is_empty() {
            self.state
                .catalog
                .tag_key(self.account(), &key.key_id, &tags)
                .await
                .map_err(api)?;
        }
        if let Some(policy) = input.policy.as_deref()
            && let Err(refused) = self.store_key_policy(&key.key_id, policy).await
        {
            // A key whose policy was refused was never made, as far as the caller knows.
            self.state
                .catalog
                .discard_new_master_key(self.account(), &key.key_id)
                .await
                .map_err(api)?;
            return Err(refused);
        }
        tracing::info!(key_id = %key.key_id, account = %key.account_id, "KMS key created");
        Ok(KeyMetadataOutput {
            key_metadata: self.metadata(&key),
        })
    }

    pub(crate) async fn describe_key(
        &self,
        input: KeyIdInput,
    ) -> Result<KeyMetadataOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, _) = self.resolve(&id, "kms:DescribeKey", Naming::Any).await?;
        Ok(KeyMetadataOutput {
            key_metadata: self.metadata(&key),
        })
    }

    pub(crate) async fn list_keys(&self, input: ListInput) -> Result<ListKeysOutput, ApiError> {
        self.authorize_tenant("kms:ListKeys").await?;
        let limit = list_limit(input.limit)?;
        if let Some(marker) = &input.marker
            && uuid::Uuid::parse_str(marker).is_err()
        {
            return Err(ApiError::new(
                ErrorCode::InvalidMarker,
                "The marker is not valid.",
            ));
        }
        let mut keys = self
            .state
            .catalog
            .list_master_keys(self.account(), input.marker.as_deref(), limit + 1)
            .await
            .map_err(api)?;
        let truncated = keys.len() as i64 > limit;
        keys.truncate(limit as usize);
        let next_marker = truncated
            .then(|| keys.last().map(|k| k.key_id.clone()))
            .flatten();
        Ok(ListKeysOutput {
            keys: keys
                .into_iter()
                .map(|k| KeyListEntry {
                    key_arn: self.arn(&k.key_id),
                    key_id: k.key_id,
                })
                .collect(),
            truncated,
            next_marker,
        })
    }

    pub(crate) async fn create_alias(&self, input: CreateAliasInput) -> Result<Empty, ApiError> {
        let name = required(input.alias_name, "aliasName")?;
        let target = required(input.target_key_id, "targetKeyId")?;
        validate_alias_name(&name)?;
        let (key, arn) = self
            .resolve(&target, "kms:CreateAlias", Naming::Target)
            .await?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        self.state
            .catalog
            .create_alias(
                self.account(),
                &name,
                &key.key_id,
                self.state.clock.now_ms(),
            )
            .await
            .map_err(|e| match e {
                e if e.is(catalog::RefusalKind::KeyExists) => ApiError::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "An alias with the name {} already exists",
                        alias_arn(self.region, self.account(), &name)
                    ),
                ),
                other => api(other),
            })?;
        Ok(Empty {})
    }

    pub(crate) async fn list_aliases(
        &self,
        input: ListInput,
    ) -> Result<ListAliasesOutput, ApiError> {
        self.authorize_tenant("kms:ListAliases").await?;
        let limit = list_limit(input.limit)?;
        let key_id = match input.key_id.as_deref() {
            None => None,
            Some(text) => match KeyRef::parse(text)? {
                KeyRef::Id(id) => Some(id),
                KeyRef::KeyArn {
                    account, key_id, ..
                } if account == self.account() => Some(key_id),
                _ => return Err(key_not_found(text)),
            },
        };
        if let Some(marker) = &input.marker
            && !marker.starts_with("alias/")
        {
            return Err(ApiError::new(
                ErrorCode::InvalidMarker,
                "The marker is not valid.",
            ));
        }
        let mut aliases = self
            .state
            .catalog
            .list_aliases(
                self.account(),
                key_id.as_deref(),
                input.marker.as_deref(),
                limit + 1,
            )
            .await
            .map_err(api)?;
        let truncated = aliases.len() as i64 > limit;
        aliases.truncate(limit as usize);
        let next_marker = truncated
            .then(|| aliases.last().map(|a| a.name.clone()))
            .flatten();
        Ok(ListAliasesOutput {
            aliases: aliases
                .into_iter()
                .map(|a| AliasListEntry {
                    alias_arn: alias_arn(self.region, self.account(), &a.name),
                    alias_name: a.name,
                    target_key_id: a.key_id,
                    creation_date: timestamp(a.created_at_ms),
                    last_updated_date: timestamp(a.updated_at_ms),
                })
                .collect(),
            truncated,
            next_marker,
        })
    }

    pub(crate) async fn delete_alias(&self, input: DeleteAliasInput) -> Result<Empty, ApiError> {
        let name = required(input.alias_name, "aliasName")?;
        if !name.starts_with("alias/") {
            return Err(ApiError::new(ErrorCode::Validation, "Invalid identifier"));
        }
        // Authorized on the key the alias points at.
        let (_key, _arn) = self.resolve(&name, "kms:DeleteAlias", Naming::Any).await?;
        if name.starts_with(RESERVED_ALIAS_PREFIX) {
            return Err(ApiError::new(
                ErrorCode::NotAuthorized,
                format!("{name} is an AWS managed key's alias; it cannot be deleted."),
            ));
        }
        let deleted = self
            .state
            .catalog
            .delete_alias(self.account(), &name)
            .await
            .map_err(api)?;
        if !deleted {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "Alias {} is not found.",
                    alias_arn(self.region, self.account(), &name)
                ),
            ));
        }
        Ok(Empty {})
    }

    /// Applies `change` to a key in state `from`; a concurrent change in between is
    /// `KMSInvalidStateException`, as if the request had come second.
    pub(crate) async fn apply(
        &self,
        key: &MasterKey,
        arn: &str,
        change: StateChange,
    ) -> Result<(), ApiError> {
        let done = self
            .state
            .catalog
            .change_master_key_state(self.account(), &key.key_id, key.state, change)
            .await
            .map_err(api)?;
        if !done {
            return Err(ApiError::new(
                ErrorCode::KmsInvalidState,
                format!("{arn} changed state while this request ran; retry it."),
            ));
        }
        tracing::info!(key_id = %key.key_id, change = ?change, "KMS key state changed");
        Ok(())
    }

    pub(crate) async fn change_state(
        &self,
        input: KeyIdInput,
        action: &str,
    ) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self.resolve(&id, action, Naming::KeyOnly).await?;
        if key.manager == KeyManager::Aws {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{arn} is an AWS managed key; its state is the service's."),
            ));
        }
        let enable = action == "kms:EnableKey";
        match (key.state, enable) {
            (KeyState::PendingDeletion, _) => return Err(pending_deletion(&arn)),
            (KeyState::PendingImport, _) => return require_enabled(&key, &arn).map(|_| Empty {}),
            (KeyState::Enabled, true) | (KeyState::Disabled, false) => {}
            (KeyState::Disabled, true) => self.apply(&key, &arn, StateChange::Enable).await?,
            (KeyState::Enabled, false) => self.apply(&key, &arn, StateChange::Disable).await?,
        }
        Ok(Empty {})
    }

    pub(crate) async fn schedule_deletion(
        &self,
        input: ScheduleKeyDeletionInput,
    ) -> Result<ScheduleKeyDeletionOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let days = input
            .pending_window_in_days
            .unwrap_or(PENDING_WINDOW_DAYS_DEFAULT);
        if !(PENDING_WINDOW_DAYS_MIN..=PENDING_WINDOW_DAYS_MAX).contains(&days) {
            return Err(ApiError::validation(
                days,
                "pendingWindowInDays",
                "Member must have value between 7 and 30",
            ));
        }
        let (key, arn) = self
            .resolve(&id, "kms:ScheduleKeyDeletion", Naming::KeyOnly)
            .await?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        if key.manager == KeyManager::Aws {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{arn} is an AWS managed key; it cannot be scheduled for deletion."),
            ));
        }
        let deletion_date_ms = self
            .state
            .clock
            .now_ms()
            .saturating_add(days.saturating_mul(masterkeys::DAY_MS));
        self.apply(
            &key,
            &arn,
            StateChange::ScheduleDeletion {
                deletion_date_ms,
                days,
            },
        )
        .await?;
        Ok(ScheduleKeyDeletionOutput {
            key_id: arn,
            deletion_date: timestamp(deletion_date_ms),
            key_state: KeyState::PendingDeletion.as_str(),
            pending_window_in_days: days,
        })
    }

    pub(crate) async fn cancel_deletion(&self, input: KeyIdInput) -> Result<KeyIdOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self
            .resolve(&id, "kms:CancelKeyDeletion", Naming::KeyOnly)
            .await?;
        if key.state != KeyState::PendingDeletion {
            return Err(ApiError::new(
                ErrorCode::KmsInvalidState,
                format!("{arn} is not pending deletion."),
            ));
        }
        self.apply(&key, &arn, StateChange::CancelDeletion).await?;
        Ok(KeyIdOutput { key_id: arn })
    }

    /// A key whose rotation settings may change: enabled and customer managed.
    pub(crate) async fn rotatable(
        &self,
        id: &str,
        action: &str,
    ) -> Result<(MasterKey, String), ApiError> {
        let (key, arn) = self.resolve(id, action, Naming::KeyOnly).await?;
        require_enabled(&key, &arn)?;
        if key.key_spec != SYMMETRIC_DEFAULT {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "{arn} is a {} key; KMS rotates only symmetric encryption keys.",
                    key.key_spec
                ),
            ));
        }
        if key.origin != "AWS_KMS" && action != "kms:GetKeyRotationStatus" {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{arn} holds imported key material, which this server does not rotate."),
            ));
        }
        if key.manager == KeyManager::Aws && action != "kms:GetKeyRotationStatus" {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{arn} is an AWS managed key; its rotation is the service's."),
            ));
        }
        Ok((key, arn))
    }

    pub(crate) async fn enable_rotation(
        &self,
        input: EnableKeyRotationInput,
    ) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let days = input
            .rotation_period_in_days
            .unwrap_or(ROTATION_PERIOD_DAYS_DEFAULT);
        if !(ROTATION_PERIOD_DAYS_MIN..=ROTATION_PERIOD_DAYS_MAX).contains(&days) {
            return Err(ApiError::validation(
                days,
                "rotationPeriodInDays",
                "Member must have value between 90 and 2560",
            ));
        }
        let (key, _) = self.rotatable(&id, "kms:EnableKeyRotation").await?;
        self.state
            .catalog
            .set_key_rotation(
                self.account(),
                &key.key_id,
                Some(days),
                self.state.clock.now_ms(),
            )
            .await
            .map_err(api)?;
        Ok(Empty {})
    }

    pub(crate) async fn disable_rotation(&self, input: KeyIdInput) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, _) = self.rotatable(&id, "kms:DisableKeyRotation").await?;
        self.state
            .catalog
            .set_key_rotation(self.account(), &key.key_id, None, self.state.clock.now_ms())
            .await
            .map_err(api)?;
        Ok(Empty {})
    }

    pub(crate) async fn rotation_status(
        &self,
        input: KeyIdInput,
    ) -> Result<KeyRotationStatusOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self
            .resolve(&id, "kms:GetKeyRotationStatus", Naming::KeyOnly)
            .await?;
        Ok(KeyRotationStatusOutput {
            key_rotation_enabled: key.rotation_enabled,
            key_id: arn,
            rotation_period_in_days: key.rotation_enabled.then_some(key.rotation_period_days),
            next_rotation_date: key.next_rotation_ms.map(timestamp),
        })
    }

    pub(crate) async fn rotate_on_demand(
        &self,
        input: KeyIdInput,
    ) -> Result<KeyIdOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let (key, arn) = self.rotatable(&id, "kms:RotateKeyOnDemand").await?;
        let version = self
            .state
            .catalog
            .rotate_master_key(
                &self.state.root_key,
                self.account(),
                &key.key_id,
                true,
                self.state.clock.now_ms(),
            )
            .await
            .map_err(api)?
            .ok_or_else(|| key_not_found(&arn))?;
        tracing::info!(key_id = %key.key_id, version, "KMS key rotated on demand");
        // AWS answers the key id here (ScheduleKeyDeletion and CancelKeyDeletion answer
        // the key ARN).
        Ok(KeyIdOutput { key_id: key.key_id })
    }

    /// Seals `plaintext` under the key's newest version.
    pub(crate) async fn seal(
        &self,
        key: &MasterKey,
        arn: &str,
        ctx: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        require_enabled(key, arn)?;
        require_symmetric(key, arn)?;
        let material = self
            .state
            .catalog
            .master_key_material(
                &self.state.root_key,
                &key.account_id,
                &key.key_id,
                key.current_version,
            )
            .await
            .map_err(api)?
            .ok_or_else(|| key_not_found(arn))?;
        let blob_key = BlobKey {
            account: ciphertext::account_bytes(&key.account_id).ok_or_else(|| {
                tracing::error!(account = %key.account_id, "account id is not 12 digits");
                ApiError::internal()
            })?,
            key_id: uuid_bytes(&key.key_id)?,
            version: key.current_version,
        };
        Ok(ciphertext::seal_blob(blob_key, &material, ctx, plaintext))
    }

    /// Opens a blob: finds the key it names (authorizing `action` on it), checks it
    /// against `expected_key` when the caller named one, and opens it under the version
    /// it names.
    pub(crate) async fn open(
        &self,
        blob: &[u8],
        expected_key: Option<&str>,
        ctx: &EncryptionContext,
        action: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, String), ApiError> {
        let invalid = || {
            ApiError::new(
                ErrorCode::InvalidCiphertext,
                "The ciphertext is invalid, was altered, or its encryption context does not match.",
            )
        };
        let named = ciphertext::blob_key(blob).ok_or_else(invalid)?;
        let key_id = uuid::Uuid::from_bytes(named.key_id).to_string();
        let blob_arn = key_arn(self.region, named.account_str(), &key_id);
        let used = KeyUse {
            encryption_context: Some(ctx),
            grant_id: None,
        };
        if let Some(expected) = expected_key {
            let (_, expected_arn) = self
                .resolve_for(expected, action, Naming::Any, used)
                .await?;
            if expected_arn != blob_arn {
                return Err(ApiError::new(
                    ErrorCode::IncorrectKey,
                    "The key ID in the request does not identify a KMS key that can perform this operation.",
                ));
            }
        }
        let (key, arn) = self
            .resolve_for(&blob_arn, action, Naming::Any, used)
            .await?;
        require_enabled(&key, &arn)?;
        let material = self
            .state
            .catalog
            .master_key_material(
                &self.state.root_key,
                &key.account_id,
                &key.key_id,
                named.version,
            )
            .await
            .map_err(api)?
            .ok_or_else(invalid)?;
        let plaintext = ciphertext::open_blob(blob, &material, ctx).map_err(|_| invalid())?;
        Ok((plaintext, arn))
    }

    pub(crate) async fn generate_data_key(
        &self,
        input: GenerateDataKeyInput,
        with_plaintext: bool,
    ) -> Result<GenerateDataKeyOutput, ApiError> {
        refuse_unsupported(input.dry_run, input.recipient.is_some())?;
        check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id, "keyId")?;
        let len = match (input.key_spec.as_deref(), input.number_of_bytes) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "Please specify either number of bytes or key spec.",
                ));
            }
            (Some("AES_256"), None) => 32,
            (Some("AES_128"), None) => 16,
            (Some(other), None) => {
                return Err(ApiError::validation(
                    other,
                    "keySpec",
                    "Member must satisfy enum value set: [AES_256, AES_128]",
                ));
            }
            (None, Some(n)) if (DATA_KEY_BYTES_MIN..=DATA_KEY_BYTES_MAX).contains(&n) => n as usize,
            (None, Some(n)) => {
                return Err(ApiError::validation(
                    n,
                    "numberOfBytes",
                    "Member must have value between 1 and 1024",
                ));
            }
        };
        let ctx = context(input.encryption_context, "encryptionContext")?;
        let action = if with_plaintext {
            "kms:GenerateDataKey"
        } else {
            "kms:GenerateDataKeyWithoutPlaintext"
        };
        let (key, arn) = self
            .resolve_for(&id, action, Naming::Any, with_context(&ctx))
            .await?;
        let mut data_key = Zeroizing::new(vec![0u8; len]);
        aws_lc_rs::rand::fill(&mut data_key).expect("system randomness");
        let blob = self.seal(&key, &arn, &ctx, &data_key).await?;
        self.used(&arn, &action["kms:".len()..]).await;
        Ok(GenerateDataKeyOutput {
            ciphertext_blob: Blob(blob.into()),
            plaintext: with_plaintext.then(|| Blob(bytes::Bytes::copy_from_slice(&data_key))),
            key_id: arn,
        })
    }

    pub(crate) async fn encrypt(&self, input: EncryptInput) -> Result<EncryptOutput, ApiError> {
        refuse_unsupported(input.dry_run, false)?;
        check_grant_tokens(&input.grant_tokens)?;
        let algorithm =
            check_algorithm(input.encryption_algorithm.as_deref(), "encryptionAlgorithm")?;
        let id = required(input.key_id, "keyId")?;
        let plaintext = required(input.plaintext, "plaintext")?;
        blob_length(plaintext.0.len(), "plaintext", PLAINTEXT_BYTES_MAX)?;
        let ctx = context(input.encryption_context, "encryptionContext")?;
        let (key, arn) = self
            .resolve_for(&id, "kms:Encrypt", Naming::Any, with_context(&ctx))
            .await?;
        let blob = self
            .seal_with(&key, &arn, algorithm, &ctx, &plaintext.0)
            .await?;
        self.used(&arn, "Encrypt").await;
        Ok(EncryptOutput {
            ciphertext_blob: Blob(blob.into()),
            key_id: arn,
            encryption_algorithm: algorithm.unwrap_or(SYMMETRIC_DEFAULT),
        })
    }

    /// Seals under a symmetric key (`algorithm` `None`), or encrypts with RSAES-OAEP
    /// under an RSA key's public half.
    async fn seal_with(
        &self,
        key: &MasterKey,
        arn: &str,
        algorithm: Option<&str>,
        ctx: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let Some(algorithm) = algorithm else {
            return self.seal(key, arn, ctx, plaintext).await;
        };
        require_enabled(key, arn)?;
        let material = self.rsa_material(key, arn, algorithm, ctx).await?;
        keyspec::rsa_encrypt(&material, algorithm, plaintext)
    }

    /// An RSA encryption key's private key, once the key and request fit RSAES-OAEP.
    async fn rsa_material(
        &self,
        key: &MasterKey,
        arn: &str,
        algorithm: &str,
        ctx: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let spec = require_usage(key, arn, ENCRYPT_DECRYPT, "RSAES-OAEP encryption")?;
        if !spec.encryption_algorithms().contains(&algorithm) {
            return Err(ApiError::new(
                ErrorCode::InvalidKeyUsage,
                format!("{algorithm} is not a valid encryption algorithm for {arn}."),
            ));
        }
        if !ctx.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "EncryptionContext is not supported with asymmetric keys.",
            ));
        }
        self.key_material(key, arn).await
    }

    /// Records a successful cryptographic operation with the key `arn` names
    /// (GetKeyLastUsage). A failure to record is logged; the operation stands.
    pub(crate) async fn used(&self, arn: &str, operation: &str) {
        let Some(key_id) = arn.rsplit_once("key/").map(|(_, id)| id) else {
            return;
        };
        if let Err(e) = self
            .state
            .catalog
            .record_key_use(
                self.account(),
                key_id,
                operation,
                &self.caller.request_id,
                self.state.clock.now_ms(),
            )
            .await
        {
            tracing::warn!(error = %e, key_id, operation, "recording a key's last use failed");
        }
    }

    /// The current material of any kind of key, unsealed for this request.
    pub(crate) async fn key_material(
        &self,
        key: &MasterKey,
        arn: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        self.state
            .catalog
            .master_key_secret(
                &self.state.root_key,
                &key.account_id,
                &key.key_id,
                key.current_version,
            )
            .await
            .map_err(api)?
            .ok_or_else(|| key_not_found(arn))
    }

    /// Opens a ciphertext: a blob under a symmetric key (`algorithm` `None`), or an
    /// RSAES-OAEP ciphertext under the RSA key the request names.
    async fn open_with(
        &self,
        blob: &[u8],
        key_id: Option<&str>,
        algorithm: Option<&str>,
        ctx: &EncryptionContext,
        action: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, String), ApiError> {
        let Some(algorithm) = algorithm else {
            return self.open(blob, key_id, ctx, action).await;
        };
        let Some(key_id) = key_id else {
            return Err(ApiError::new(
                ErrorCode::Validation,
                "KeyId is required to decrypt with an asymmetric key.",
            ));
        };
        let (key, arn) = self
            .resolve_for(key_id, action, Naming::Any, with_context(ctx))
            .await?;
        require_enabled(&key, &arn)?;
        let material = self.rsa_material(&key, &arn, algorithm, ctx).await?;
        let plaintext = keyspec::rsa_decrypt(&material, algorithm, blob)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCiphertext,
                "The ciphertext is invalid or was not made under this key and algorithm.",
            )
        })?;
        Ok((plaintext, arn))
    }

    pub(crate) async fn decrypt(&self, input: DecryptInput) -> Result<DecryptOutput, ApiError> {
        refuse_unsupported(input.dry_run, input.recipient.is_some())?;
        check_grant_tokens(&input.grant_tokens)?;
        let algorithm =
            check_algorithm(input.encryption_algorithm.as_deref(), "encryptionAlgorithm")?;
        let blob = blob_bytes(input.ciphertext_blob, "ciphertextBlob")?;
        let ctx = context(input.encryption_context, "encryptionContext")?;
        let (plaintext, arn) = self
            .open_with(
                &blob.0,
                input.key_id.as_deref(),
                algorithm,
                &ctx,
                "kms:Decrypt",
            )
            .await?;
        self.used(&arn, "Decrypt").await;
        Ok(DecryptOutput {
            key_id: arn,
            plaintext: Blob(bytes::Bytes::copy_from_slice(&plaintext)),
            encryption_algorithm: algorithm.unwrap_or(SYMMETRIC_DEFAULT),
        })
    }

    pub(crate) async fn re_encrypt(
        &self,
        input: ReEncryptInput,
    ) -> Result<ReEncryptOutput, ApiError> {
        refuse_unsupported(input.dry_run, false)?;
        check_grant_tokens(&input.grant_tokens)?;
        let source_algorithm = check_algorithm(
            input.source_encryption_algorithm.as_deref(),
            "sourceEncryptionAlgorithm",
        )?;
        let destination_algorithm = check_algorithm(
            input.destination_encryption_algorithm.as_deref(),
            "destinationEncryptionAlgorithm",
        )?;
        let blob = blob_bytes(input.ciphertext_blob, "ciphertextBlob")?;
        let destination = required(input.destination_key_id, "destinationKeyId")?;
        let source_ctx = context(input.source_encryption_context, "sourceEncryptionContext")?;
        let destination_ctx = context(
            input.destination_encryption_context,
            "destinationEncryptionContext",
        )?;
        let (plaintext, source_arn) = self
            .open_with(
                &blob.0,
                input.source_key_id.as_deref(),
                source_algorithm,
                &source_ctx,
                "kms:ReEncryptFrom",
            )
            .await?;
        let (key, arn) = self
            .resolve_for(
                &destination,
                "kms:ReEncryptTo",
                Naming::Any,
                with_context(&destination_ctx),
            )
            .await?;
        let sealed = self
            .seal_with(
                &key,
                &arn,
                destination_algorithm,
                &destination_ctx,
                &plaintext,
            )
            .await?;
        self.used(&source_arn, "ReEncrypt").await;
        self.used(&arn, "ReEncrypt").await;
        Ok(ReEncryptOutput {
            ciphertext_blob: Blob(sealed.into()),
            source_key_id: source_arn,
            key_id: arn,
            source_encryption_algorithm: source_algorithm.unwrap_or(SYMMETRIC_DEFAULT),
            destination_encryption_algorithm: destination_algorithm.unwrap_or(SYMMETRIC_DEFAULT),
        })
    }
}

/// The master key StartStreamEncryption names, once Cedar allowed the caller to make
/// data keys under it (`kms:GenerateDataKey`); it must be enabled. `alias/aws/kinesis`
/// is the account's default key, made on first use. KMS's errors become Kinesis's.
pub async fn key_for_stream(
    state: &KmsService,
    caller: &Caller,
    key_ref: &str,
) -> Result<MasterKey, ApiError> {
    key_for_service(state, caller, key_ref, "kms:GenerateDataKey").await
}

/// The master key a service's resource names (a stream's, a queue's), once Cedar
/// allowed the caller `action` (`kms:GenerateDataKey` to seal, `kms:Decrypt` to open)
/// on it; it must be an enabled symmetric key. An AWS managed key's alias
/// (`alias/aws/kinesis`, `alias/aws/sqs`) makes that key on first use.
pub async fn key_for_service(
    state: &KmsService,
    caller: &Caller,
    key_ref: &str,
    action: &str,
) -> Result<MasterKey, ApiError> {
    let kms = Kms {
        state,
        caller,
        region: &state.region,
    };
    if masterkeys::aws_managed_key_description(key_ref).is_some() {
        state
            .catalog
            .aws_managed_key(
                &state.root_key,
                kms.account(),
                key_ref,
                state.clock.now_ms(),
            )
            .await
            .map_err(api)?;
    }
    let (key, arn) = kms
        .resolve(key_ref, action, Naming::Any)
        .await
        .map_err(|e| match e.code {
            ErrorCode::NotFound => ApiError::new(ErrorCode::KmsNotFound, e.message),
            _ => e,
        })?;
    if let Some(refusal) = masterkeys::kinesis_key_error(Some(&key), &arn) {
        return Err(edge::refusal_error(&refusal));
    }
    require_symmetric(&key, &arn)?;
    Ok(key)
}

/// How often the key sweep runs: it destroys keys whose deletion date passed, deletes
/// imported material past its ValidTo, and rotates keys whose automatic rotation is due.
pub const KEY_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// One pass of the key sweep. Errors are logged and the next pass tries again. True
/// when it destroyed a key or its imported material: data keys unwrapped under it must
/// be forgotten.
pub async fn sweep_keys(state: &KmsService) -> bool {
    let mut destroyed_any = false;
    let now = state.clock.now_ms();
    match state.catalog.destroy_due_master_keys(now).await {
        Ok(destroyed) => {
            destroyed_any = !destroyed.is_empty();
            for (account, key_id) in destroyed {
                tracing::info!(%account, %key_id, "KMS key deleted: its material is destroyed");
            }
        }
        Err(e) => tracing::error!(error = %e, "KMS key deletion sweep failed"),
    }
    match state.catalog.expire_imported_material(now).await {
        Ok(expired) => {
            destroyed_any |= !expired.is_empty();
            for (account, key_id) in expired {
                tracing::info!(%account, %key_id, "KMS imported key material expired and deleted");
            }
        }
        Err(e) => tracing::error!(error = %e, "KMS imported-material expiry sweep failed"),
    }
    match state.catalog.keys_due_for_rotation(now).await {
        Ok(due) => {
            for (account, key_id) in due {
                match state
                    .catalog
                    .rotate_master_key(&state.root_key, &account, &key_id, false, now)
                    .await
                {
                    Ok(version) => {
                        tracing::info!(%account, %key_id, ?version, "KMS key rotated automatically")
                    }
                    Err(e) => tracing::error!(error = %e, %key_id, "KMS key rotation failed"),
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "KMS key rotation sweep failed"),
    }
    destroyed_any
}

/// Checks KMS tags as AWS does: a key of 1 to 128 characters, a value of 0 to 256, and
/// no `aws:` prefix (TagException).
pub(crate) fn checked_tags(tags: Vec<KeyTag>) -> Result<Vec<(String, String)>, ApiError> {
    tags.into_iter()
        .map(|t| {
            let key = required(t.tag_key, "tags.member.tagKey")?;
            let value = required(t.tag_value, "tags.member.tagValue")?;
            if key.is_empty() || key.chars().count() > TAG_KEY_CHARS_MAX {
                return Err(ApiError::validation(
                    &key,
                    "tags.member.tagKey",
                    "Member must have length between 1 and 128",
                ));
            }
            if value.chars().count() > TAG_VALUE_CHARS_MAX {
                return Err(ApiError::validation(
                    "(value)",
                    "tags.member.tagValue",
                    "Member must have length less than or equal to 256",
                ));
            }
            if key.starts_with("aws:") {
                return Err(ApiError::new(
                    ErrorCode::Tag,
                    format!("Tags beginning with aws: are reserved: {key}"),
                ));
            }
            Ok((key, value))
        })
        .collect()
}
