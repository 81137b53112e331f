//! Grants and key policies: the two ways KMS says who may use one key.
//!
//! A grant (CreateGrant) is a Cedar permit the authorizer builds from the stored grant:
//! its grantee may perform its operations on its key, under its encryption-context
//! constraint if it has one; its retiring principal may retire it (RetireGrant), and
//! anyone Cedar allows `kms:RevokeGrant` on the key may revoke it. A caller grants only
//! what it may do itself: CreateGrant asks Cedar for each operation it grants, under
//! the grant's constraint, so a grant never widens what its issuer holds.
//!
//! A key policy (PutKeyPolicy) is a Cedar policy document attached to the key (stored
//! as `key/<key id>`): each policy in it names the key or leaves its resource open,
//! which means the key. It is decided together with the tenant's own policies and
//! grants: a permit in any allows, a forbid in any denies. A policy in IAM JSON (what
//! KMS tools send) is read as the Cedar it means (the authorizer's `iampolicy.rs`) and
//! stored as written.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use catalog::grants::{ConstraintKind, Grant};
use catalog::masterkeys::KeyState;
use edge::KeyUse;
use envelope::ciphertext::EncryptionContext;
use protocol::kms::*;
use protocol::{ApiError, ErrorCode};

use crate::api::{Empty, Kms, Naming, api, key_not_found, pending_deletion, required, timestamp};

/// ListGrants and ListRetirableGrants answer at most this many grants a page (AWS).
const GRANT_PAGE_MAX: i64 = 100;
const GRANT_PAGE_DEFAULT: i64 = 50;
/// A grant id is this many hex digits, as AWS's are.
const GRANT_ID_HEX: usize = 64;
/// Grant tokens Sluice issues begin with this.
const TOKEN_PREFIX: &str = "sluicegrant1";

/// The operations that take an encryption context: only they may be constrained.
const CONTEXT_OPERATIONS: [&str; 8] = [
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];
/// The operations a grant on `key` may allow, by its spec and usage.
fn grantable(key: &catalog::masterkeys::MasterKey) -> &'static [&'static str] {
    const SYMMETRIC: [&str; 11] = [
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    ];
    const RSA_ENCRYPTION: [&str; 8] = [
        "Decrypt",
        "Encrypt",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    ];
    const SIGNING: [&str; 6] = [
        "Sign",
        "Verify",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    ];
    const MAC: [&str; 5] = [
        "GenerateMac",
        "VerifyMac",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    ];
    const AGREEMENT: [&str; 5] = [
        "DeriveSharedSecret",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    ];
    const KEM: [&str; 6] = [
        "Encapsulate",
        "Decapsulate",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
    ];
    match (key.key_spec.as_str(), key.key_usage.as_str()) {
        ("SYMMETRIC_DEFAULT", _) => &SYMMETRIC,
        (_, crate::keyspec::ENCRYPT_DECRYPT) => &RSA_ENCRYPTION,
        (_, crate::keyspec::SIGN_VERIFY) => &SIGNING,
        (_, crate::keyspec::GENERATE_VERIFY_MAC) => &MAC,
        (_, crate::keyspec::KEY_AGREEMENT) => &AGREEMENT,
        _ => &KEM,
    }
}

/// The key policy a key has until one is put: AWS's own default, whose one statement
/// (the account root may do everything) leaves the decision to the account's policies,
/// which is what a key without a policy means here too.
pub(crate) fn default_key_policy(account: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \
         \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \
         \"Principal\" : {{\n      \"AWS\" : \"arn:aws:iam::{account}:root\"\n    }},\n    \
         \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

/// The policy document a key's policy is stored as.
pub(crate) fn key_policy_document(key_id: &str) -> String {
    format!("key/{key_id}")
}

/// An IAM principal ARN of `account` (`arn:aws:iam::<account>:user/<name>` or
/// `role/<name>`); grants name principals of the key's own account only, since no
/// tenant ever acts on another's keys.
fn checked_principal(text: &str, member: &str, account: &str) -> Result<String, ApiError> {
    let pattern_ok = !text.is_empty()
        && text.chars().count() <= GRANT_PRINCIPAL_CHARS_MAX
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if !pattern_ok {
        return Err(ApiError::validation(
            text,
            member,
            "Member must have length between 1 and 256 and satisfy regular expression pattern: ^[\\w+=,.@:/-]+$",
        ));
    }
    let principal = text
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(_, who)| {
            who.split_once('/')
                .is_some_and(|(kind, name)| matches!(kind, "user" | "role") && !name.is_empty())
        });
    match principal {
        Some((owner, _)) if owner == account => Ok(text.to_string()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Validation,
            format!(
                "{member} {text} is in another account; a Sluice grant names principals of the key's own account."
            ),
        )),
        None => Err(ApiError::new(
            ErrorCode::Validation,
            format!(
                "{member} {text} is not a principal ARN of this account \
                 (arn:aws:iam::{account}:user/NAME or arn:aws:iam::{account}:role/NAME)."
            ),
        )),
    }
}

fn checked_grant_id(text: &str) -> Result<(), ApiError> {
    if text.is_empty() || text.chars().count() > 128 {
        return Err(ApiError::validation(
            text,
            "grantId",
            "Member must have length between 1 and 128",
        ));
    }
    Ok(())
}

fn grant_not_found(grant_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("Grant ID {grant_id} not found"),
    )
}

/// A grant token: what RetireGrant needs to find the grant (its account, key and id).
/// It grants nothing by itself; retiring still asks Cedar.
fn grant_token(grant: &Grant) -> String {
    let inner = format!("{}:{}:{}", grant.account_id, grant.key_id, grant.grant_id);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(inner))
}

fn parse_grant_token(token: &str) -> Option<(String, String, String)> {
    let decoded = URL_SAFE_NO_PAD
        .decode(token.strip_prefix(TOKEN_PREFIX)?)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let mut parts = text.splitn(3, ':');
    let (account, key_id, grant_id) = (parts.next()?, parts.next()?, parts.next()?);
    Some((account.into(), key_id.into(), grant_id.into()))
}

fn list_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(GRANT_PAGE_DEFAULT),
        Some(n) if (1..=GRANT_PAGE_MAX).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::validation(
            n,
            "limit",
            "Member must have value between 1 and 100",
        )),
    }
}

impl Kms<'_> {
    fn entry(&self, grant: &Grant) -> GrantListEntry {
        let constraints = grant.constraint.as_ref().map(|(kind, pairs)| {
            let map = pairs.iter().cloned().collect();
            match kind {
                ConstraintKind::Subset => GrantConstraints {
                    encryption_context_subset: Some(map),
                    encryption_context_equals: None,
                },
                ConstraintKind::Equals => GrantConstraints {
                    encryption_context_subset: None,
                    encryption_context_equals: Some(map),
                },
            }
        });
        GrantListEntry {
            key_id: self.arn(&grant.key_id),
            grant_id: grant.grant_id.clone(),
            name: (!grant.name.is_empty()).then(|| grant.name.clone()),
            creation_date: timestamp(grant.created_at_ms),
            grantee_principal: grant.grantee.clone(),
            retiring_principal: grant.retiring.clone(),
            issuing_account: format!("arn:aws:iam::{}:root", grant.account_id),
            operations: grant.operations.clone(),
            constraints,
        }
    }

    /// A page of at most `limit` grants, from `limit + 1` read: more means truncated.
    fn page(&self, mut grants: Vec<Grant>, limit: i64) -> ListGrantsOutput {
        let truncated = grants.len() as i64 > limit;
        grants.truncate(limit as usize);
        ListGrantsOutput {
            next_marker: truncated
                .then(|| grants.last().map(|g| g.grant_id.clone()))
                .flatten(),
            grants: grants.iter().map(|g| self.entry(g)).collect(),
            truncated,
        }
    }

    pub(crate) async fn create_grant(
        &self,
        input: CreateGrantInput,
    ) -> Result<CreateGrantOutput, ApiError> {
        crate::api::refuse_unsupported(input.dry_run, false)?;
        crate::api::check_grant_tokens(&input.grant_tokens)?;
        let id = required(input.key_id, "keyId")?;
        let grantee = checked_principal(
            &required(input.grantee_principal, "granteePrincipal")?,
            "granteePrincipal",
            self.account(),
        )?;
        let retiring = input
            .retiring_principal
            .map(|r| checked_principal(&r, "retiringPrincipal", self.account()))
            .transpose()?;
        let mut operations = required(input.operations, "operations")?;
        if operations.is_empty() {
            return Err(ApiError::validation(
                "[]",
                "operations",
                "Member must have length greater than or equal to 1",
            ));
        }
        for op in &operations {
            if !GRANT_OPERATIONS.contains(&op.as_str()) {
                return Err(ApiError::validation(
                    op,
                    "operations",
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        GRANT_OPERATIONS.join(", ")
                    ),
                ));
            }
        }
        operations.sort();
        operations.dedup();
        let name = input.name.unwrap_or_default();
        if !name.is_empty()
            && (name.chars().count() > GRANT_NAME_CHARS_MAX
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c)))
        {
            return Err(ApiError::validation(
                &name,
                "name",
                "Member must have length between 1 and 256 and satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
            ));
        }
        let constraint = match input.constraints {
            None => None,
            Some(GrantConstraints {
                encryption_context_subset: Some(_),
                encryption_context_equals: Some(_),
            }) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "A grant takes EncryptionContextSubset or EncryptionContextEquals, not both.",
                ));
            }
            Some(GrantConstraints {
                encryption_context_subset: Some(pairs),
                ..
            }) => Some((ConstraintKind::Subset, pairs)),
            Some(GrantConstraints {
                encryption_context_equals: Some(pairs),
                ..
            }) => Some((ConstraintKind::Equals, pairs)),
            Some(_) => None,
        };
        if let Some((_, pairs)) = &constraint {
            crate::api::context(Some(pairs.clone()), "constraints")?;
            if let Some(op) = operations
                .iter()
                .find(|op| !CONTEXT_OPERATIONS.contains(&op.as_str()) && *op != "RetireGrant")
            {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    format!(
                        "Grant constraints apply only to operations that take an encryption context; {op} does not."
                    ),
                ));
            }
        }
        let (key, arn) = self
            .resolve(&id, "kms:CreateGrant", Naming::KeyOnly)
            .await?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        if let Some(op) = operations
            .iter()
            .find(|op| !grantable(&key).contains(&op.as_str()))
        {
            return Err(ApiError::new(
                ErrorCode::Validation,
                format!(
                    "Grant operation {op} is not valid for this key: its KeySpec is {} and its KeyUsage {}.",
                    key.key_spec, key.key_usage
                ),
            ));
        }
        // INVARIANT: a grant never widens what its issuer holds. Each operation is
        // asked of Cedar for the caller, under the grant's constraint (the narrowest
        // context the grantee could use it under).
        let empty = EncryptionContext::new();
        let granted_context: EncryptionContext = constraint
            .as_ref()
            .map(|(_, pairs)| pairs.clone())
            .unwrap_or_default();
        for op in operations.iter().filter(|op| *op != "RetireGrant") {
            let used = KeyUse {
                encryption_context: Some(if CONTEXT_OPERATIONS.contains(&op.as_str()) {
                    &granted_context
                } else {
                    &empty
                }),
                grant_id: None,
            };
            self.authorize_key(&format!("kms:{op}"), self.account(), &arn, used)
                .await?;
        }
        let mut id_bytes = [0u8; GRANT_ID_HEX / 2];
        aws_lc_rs::rand::fill(&mut id_bytes).expect("system randomness");
        let grant = Grant {
            account_id: self.account().to_string(),
            grant_id: id_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            key_id: key.key_id.clone(),
            name,
            grantee,
            retiring,
            operations,
            constraint: constraint.map(|(kind, pairs)| (kind, pairs.into_iter().collect())),
            created_at_ms: self.state.clock.now_ms(),
        };
        let stored = self.state.catalog.create_grant(&grant).await.map_err(|e| {
            if e.is(catalog::RefusalKind::KeyMissing) {
                key_not_found(&arn)
            } else {
                api(e)
            }
        })?;
        self.state.authz.permits_changed(self.account());
        tracing::info!(grant_id = %stored.grant_id, key_id = %stored.key_id, grantee = %stored.grantee, "KMS grant created");
        Ok(CreateGrantOutput {
            grant_token: grant_token(&stored),
            grant_id: stored.grant_id,
        })
    }

    pub(crate) async fn list_grants(
        &self,
        input: ListGrantsInput,
    ) -> Result<ListGrantsOutput, ApiError> {
        let limit = list_limit(input.limit)?;
        let id = required(input.key_id, "keyId")?;
        if let Some(grant_id) = &input.grant_id {
            checked_grant_id(grant_id)?;
        }
        let (key, _) = self.resolve(&id, "kms:ListGrants", Naming::KeyOnly).await?;
        let grants = self
            .state
            .catalog
            .key_grants(
                self.account(),
                &key.key_id,
                input.marker.as_deref(),
                input.grant_id.as_deref(),
                input.grantee_principal.as_deref(),
                limit + 1,
            )
            .await
            .map_err(api)?;
        Ok(self.page(grants, limit))
    }

    pub(crate) async fn list_retirable_grants(
        &self,
        input: ListRetirableGrantsInput,
    ) -> Result<ListGrantsOutput, ApiError> {
        let limit = list_limit(input.limit)?;
        let retiring = required(input.retiring_principal, "retiringPrincipal")?;
        self.authorize_tenant("kms:ListRetirableGrants").await?;
        let grants = self
            .state
            .catalog
            .retirable_grants(
                self.account(),
                &retiring,
                input.marker.as_deref(),
                limit + 1,
            )
            .await
            .map_err(api)?;
        Ok(self.page(grants, limit))
    }

    /// RetireGrant: by its token, or by key and grant id. Cedar decides with the grant
    /// id in the context: the grant's own permits let its retiring principal (and its
    /// grantee, when it may RetireGrant) retire it and no other.
    pub(crate) async fn retire_grant(&self, input: RetireGrantInput) -> Result<Empty, ApiError> {
        crate::api::refuse_unsupported(input.dry_run, false)?;
        let (key_text, grant_id) = match (input.grant_token, input.key_id, input.grant_id) {
            (Some(token), _, _) => {
                if token.is_empty() || token.chars().count() > GRANT_TOKEN_CHARS_MAX {
                    return Err(ApiError::validation(
                        "(grantToken)",
                        "grantToken",
                        "Member must have length between 1 and 8192",
                    ));
                }
                let Some((account, key_id, grant_id)) = parse_grant_token(&token) else {
                    return Err(ApiError::new(
                        ErrorCode::InvalidGrantToken,
                        "The grant token is not valid.",
                    ));
                };
                (key_arn(self.region, &account, &key_id), grant_id)
            }
            (None, Some(key_id), Some(grant_id)) => (key_id, grant_id),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "RetireGrant takes a GrantToken, or a KeyId and a GrantId.",
                ));
            }
        };
        checked_grant_id(&grant_id)?;
        let used = KeyUse {
            encryption_context: None,
            grant_id: Some(&grant_id),
        };
        let (key, _) = self
            .resolve_for(&key_text, "kms:RetireGrant", Naming::KeyOnly, used)
            .await?;
        self.remove_grant(&key.key_id, &grant_id).await
    }

    pub(crate) async fn revoke_grant(&self, input: RevokeGrantInput) -> Result<Empty, ApiError> {
        crate::api::refuse_unsupported(input.dry_run, false)?;
        let id = required(input.key_id, "keyId")?;
        let grant_id = required(input.grant_id, "grantId")?;
        checked_grant_id(&grant_id)?;
        let (key, _) = self
            .resolve(&id, "kms:RevokeGrant", Naming::KeyOnly)
            .await?;
        self.remove_grant(&key.key_id, &grant_id).await
    }

    async fn remove_grant(&self, key_id: &str, grant_id: &str) -> Result<Empty, ApiError> {
        let catalog = &self.state.catalog;
        match catalog.grant(self.account(), grant_id).await.map_err(api)? {
            Some(grant) if grant.key_id == key_id => {}
            _ => return Err(grant_not_found(grant_id)),
        }
        if !catalog
            .delete_grant(self.account(), grant_id)
            .await
            .map_err(api)?
        {
            return Err(grant_not_found(grant_id));
        }
        self.state.authz.permits_changed(self.account());
        tracing::info!(grant_id, key_id, "KMS grant removed");
        Ok(Empty {})
    }

    fn checked_policy_name(name: Option<String>) -> Result<(), ApiError> {
        match name.as_deref() {
            None | Some(KEY_POLICY_NAME) => Ok(()),
            Some(other) => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("No such policy exists: {other}. A key has one policy, named default."),
            )),
        }
    }

    pub(crate) async fn get_key_policy(
        &self,
        input: KeyPolicyInput,
    ) -> Result<GetKeyPolicyOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        Self::checked_policy_name(input.policy_name)?;
        let (key, _) = self
            .resolve(&id, "kms:GetKeyPolicy", Naming::KeyOnly)
            .await?;
        let stored = match self
            .state
            .catalog
            .policy_version(self.account(), &key_policy_document(&key.key_id), None)
            .await
        {
            Ok(version) => version.body,
            Err(e) if e.is(catalog::RefusalKind::Missing) => None,
            Err(e) => return Err(api(e)),
        };
        Ok(GetKeyPolicyOutput {
            policy: stored.unwrap_or_else(|| default_key_policy(self.account())),
            policy_name: KEY_POLICY_NAME,
        })
    }

    pub(crate) async fn put_key_policy(&self, input: KeyPolicyInput) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        Self::checked_policy_name(input.policy_name)?;
        let policy = required(input.policy, "policy")?;
        let (key, _) = self
            .resolve(&id, "kms:PutKeyPolicy", Naming::KeyOnly)
            .await?;
        self.store_key_policy(&key.key_id, &policy).await
    }

    /// Validates and attaches `policy` to the key (PutKeyPolicy, CreateKey's Policy).
    /// BypassPolicyLockoutSafetyCheck changes nothing: no key policy can lock the
    /// account out, since its admin can always replace it through the admin API.
    pub(crate) async fn store_key_policy(
        &self,
        key_id: &str,
        policy: &str,
    ) -> Result<Empty, ApiError> {
        if policy.is_empty() || policy.chars().count() > KEY_POLICY_CHARS_MAX {
            return Err(ApiError::validation(
                "(policy)",
                "policy",
                "Member must have length between 1 and 32768",
            ));
        }
        self.state
            .authz
            .store_policy(
                self.caller,
                self.account(),
                &key_policy_document(key_id),
                Some(policy),
            )
            .await
            .map_err(|e| match e.code {
                ErrorCode::Validation => {
                    ApiError::new(ErrorCode::MalformedPolicyDocument, e.message)
                }
                _ => e,
            })?;
        Ok(Empty {})
    }

    pub(crate) async fn list_key_policies(
        &self,
        input: KeyPolicyInput,
    ) -> Result<ListKeyPoliciesOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        if let Some(limit) = input.limit
            && !(1..=1000).contains(&limit)
        {
            return Err(ApiError::validation(
                limit,
                "limit",
                "Member must have value between 1 and 1000",
            ));
        }
        self.resolve(&id, "kms:ListKeyPolicies", Naming::KeyOnly)
            .await?;
        Ok(ListKeyPoliciesOutput {
            policy_names: vec![KEY_POLICY_NAME],
            truncated: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_token_names_its_grant_and_nothing_else() {
        let grant = Grant {
            account_id: "123456789012".into(),
            grant_id: "ab".repeat(32),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            name: String::new(),
            grantee: "arn:aws:iam::123456789012:user/app".into(),
            retiring: None,
            operations: vec!["Decrypt".into()],
            constraint: None,
            created_at_ms: 0,
        };
        let token = grant_token(&grant);
        assert_eq!(
            parse_grant_token(&token),
            Some((grant.account_id, grant.key_id, grant.grant_id))
        );
        assert_eq!(parse_grant_token("not a token"), None);
        assert_eq!(parse_grant_token(&format!("{TOKEN_PREFIX}!!")), None);
    }

    #[test]
    fn grants_name_principals_of_their_own_account() {
        let account = "123456789012";
        assert!(checked_principal("arn:aws:iam::123456789012:role/app", "g", account).is_ok());
        for bad in [
            "arn:aws:iam::999999999999:user/app",
            "kinesis.amazonaws.com",
            "arn:aws:iam::123456789012:group/g",
            "arn:aws:iam::123456789012:user/",
            "",
            "has space",
        ] {
            let e = checked_principal(bad, "granteePrincipal", account).unwrap_err();
            assert_eq!(e.code, ErrorCode::Validation, "{bad}");
        }
    }
}
