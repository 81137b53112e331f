//! Key metadata and the operations around keys: tags (TagResource, UntagResource,
//! ListResourceTags, CreateKey's Tags), UpdateKeyDescription, UpdateAlias,
//! GenerateRandom, and the answers for what a server with its own key storage in one
//! region has no meaning for (custom key stores, multi-Region keys).

use catalog::masterkeys::KeyState;
use protocol::kms::*;
use protocol::wire::Blob;
use protocol::{ApiError, ErrorCode};

use crate::api::{
    Empty, Kms, Naming, api, checked_tags, key_not_found, list_limit, pending_deletion, required,
};

fn tag_refusal(e: catalog::CatalogError, arn: &str) -> ApiError {
    if e.is(catalog::RefusalKind::KeyMissing) {
        key_not_found(arn)
    } else {
        api(e)
    }
}

impl Kms<'_> {
    pub(crate) async fn tag_resource(&self, input: TagResourceInput) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let tags = checked_tags(required(input.tags, "tags")?)?;
        let (key, arn) = self
            .resolve(&id, "kms:TagResource", Naming::KeyOnly)
            .await?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        self.state
            .catalog
            .tag_key(self.account(), &key.key_id, &tags)
            .await
            .map_err(|e| tag_refusal(e, &arn))?;
        Ok(Empty {})
    }

    pub(crate) async fn untag_resource(
        &self,
        input: UntagResourceInput,
    ) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let keys = required(input.tag_keys, "tagKeys")?;
        // The model sets no minimum: an empty list removes nothing from a key that must
        // still exist.
        if keys.len() > catalog::keymeta::KEY_TAGS_MAX as usize {
            return Err(ApiError::validation(
                format!("{} keys", keys.len()),
                "tagKeys",
                "Member must have length less than or equal to 50",
            ));
        }
        let (key, arn) = self
            .resolve(&id, "kms:UntagResource", Naming::KeyOnly)
            .await?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        self.state
            .catalog
            .untag_key(&key.key_id, &keys)
            .await
            .map_err(api)?;
        Ok(Empty {})
    }

    pub(crate) async fn list_resource_tags(
        &self,
        input: ListInput,
    ) -> Result<ListResourceTagsOutput, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let limit = list_limit(input.limit)?;
        let (key, _) = self
            .resolve(&id, "kms:ListResourceTags", Naming::KeyOnly)
            .await?;
        let mut tags = self
            .state
            .catalog
            .key_tags(&key.key_id, input.marker.as_deref(), limit + 1)
            .await
            .map_err(api)?;
        let truncated = tags.len() as i64 > limit;
        tags.truncate(limit as usize);
        Ok(ListResourceTagsOutput {
            next_marker: truncated
                .then(|| tags.last().map(|(k, _)| k.clone()))
                .flatten(),
            truncated,
            tags: tags
                .into_iter()
                .map(|(k, v)| KeyTag {
                    tag_key: Some(k),
                    tag_value: Some(v),
                })
                .collect(),
        })
    }

    pub(crate) async fn update_key_description(
        &self,
        input: UpdateKeyDescriptionInput,
    ) -> Result<Empty, ApiError> {
        let id = required(input.key_id, "keyId")?;
        let description = required(input.description, "description")?;
        if description.chars().count() > DESCRIPTION_CHARS_MAX {
            return Err(ApiError::validation(
                "(description)",
                "description",
                "Member must have length less than or equal to 8192",
            ));
        }
        let (key, arn) = self
            .resolve(&id, "kms:UpdateKeyDescription", Naming::KeyOnly)
            .await?;
        if key.manager == catalog::masterkeys::KeyManager::Aws {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperation,
                format!("{arn} is an AWS managed key; its description is the service's."),
            ));
        }
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        self.state
            .catalog
            .set_key_description(self.account(), &key.key_id, &description)
            .await
            .map_err(api)?;
        Ok(Empty {})
    }

    /// UpdateAlias: points an existing alias at another key of the account. Authorized on
    /// the alias's current key and on the new one, as AWS asks kms:UpdateAlias of both.
    pub(crate) async fn update_alias(&self, input: UpdateAliasInput) -> Result<Empty, ApiError> {
        let name = required(input.alias_name, "aliasName")?;
        let target = required(input.target_key_id, "targetKeyId")?;
        validate_alias_name(&name)?;
        let (_current, _) = self.resolve(&name, "kms:UpdateAlias", Naming::Any).await?;
        let (key, arn) = self
            .resolve(&target, "kms:UpdateAlias", Naming::Target)
            .await?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&arn));
        }
        let done = self
            .state
            .catalog
            .retarget_alias(
                self.account(),
                &name,
                &key.key_id,
                self.state.clock.now_ms(),
            )
            .await
            .map_err(api)?;
        if !done {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("Alias {name} is not found."),
            ));
        }
        Ok(Empty {})
    }

    pub(crate) async fn generate_random(
        &self,
        input: GenerateRandomInput,
    ) -> Result<GenerateRandomOutput, ApiError> {
        let n = required(input.number_of_bytes, "numberOfBytes")?;
        if !(DATA_KEY_BYTES_MIN..=DATA_KEY_BYTES_MAX).contains(&n) {
            return Err(ApiError::validation(
                n,
                "numberOfBytes",
                "Member must have value between 1 and 1024",
            ));
        }
        if input.custom_key_store_id.is_some() {
            return Err(unavailable("A custom key store"));
        }
        if input.recipient.is_some() {
            return Err(unavailable("A Nitro Enclaves recipient"));
        }
        self.authorize_tenant("kms:GenerateRandom").await?;
        let mut bytes = vec![0u8; n as usize];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ApiError::internal())?;
        Ok(GenerateRandomOutput {
            plaintext: Blob(bytes.into()),
        })
    }

    /// The account has no custom key stores: one cannot be made here.
    pub(crate) async fn describe_custom_key_stores(
        &self,
    ) -> Result<DescribeCustomKeyStoresOutput, ApiError> {
        self.authorize_tenant("kms:DescribeCustomKeyStores").await?;
        Ok(DescribeCustomKeyStoresOutput {
            custom_key_stores: Vec::new(),
            truncated: false,
        })
    }
}

pub(crate) fn unavailable(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedOperation,
        format!(
            "{what} is not available here: Sluice keeps key material in its own store, in one region."
        ),
    )
}
