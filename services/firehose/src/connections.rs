//! Connections: where a tenant's destinations are and how to sign in to them. A
//! destination's `RoleARN` (`arn:aws:iam::ACCOUNT:role/NAME`) names one, registered by
//! the tenant's admin (`sluice connection put NAME ...`, the admin API). Settings are
//! plain; secrets are sealed under the server's root key, bound to the tenant and the
//! connection's name, and never answered by any API.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use catalog::Catalog;
use catalog::rootkey::RootKey;
use protocol::{ApiError, ErrorCode};

/// What a connection says, but its secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// An S3-compatible endpoint (`https://...`, or `http://` on a loopback address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    /// Virtual-hosted-style addressing instead of path-style (the default here).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub s3_virtual_hosted: bool,
    /// HTTP basic credentials' user for a search cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_username: Option<String>,
}

/// A connection's secrets, sealed at rest.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_password: Option<String>,
}

impl Drop for Secrets {
    fn drop(&mut self) {
        for secret in [self.s3_secret_access_key.take(), self.http_password.take()]
            .into_iter()
            .flatten()
        {
            drop(Zeroizing::new(secret));
        }
    }
}

use crate::shapes::valid_connection_name as valid_name;

fn aad(account_id: &str, name: &str) -> Vec<u8> {
    format!("sluice connection\0{account_id}\0{name}").into_bytes()
}

/// A connection as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub name: String,
    pub settings: Settings,
    pub has_secrets: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

fn corrupt(what: &str) -> ApiError {
    tracing::error!(what, "a stored connection does not read back");
    ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
}

/// Registers (or replaces) a connection after checking it.
pub async fn put(
    catalog: &Catalog,
    root: &RootKey,
    account_id: &str,
    name: &str,
    settings: &Settings,
    secrets: &Secrets,
    now_ms: i64,
) -> Result<(), ApiError> {
    if !valid_name(name) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("A connection's name is 1 to 64 of [a-zA-Z0-9_.@+=,-]; got {name:?}."),
        ));
    }
    if let Some(endpoint) = &settings.s3_endpoint {
        crate::shapes::check_url_allowing_loopback_http(endpoint).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("s3_endpoint: {}", e.message),
            )
        })?;
    }
    let settings_json = serde_json::to_string(settings).expect("serializable");
    let secrets_json = Zeroizing::new(serde_json::to_vec(secrets).expect("serializable"));
    let sealed = root.seal(&secrets_json, &aad(account_id, name));
    catalog
        .put_connection(account_id, name, &settings_json, &sealed, now_ms)
        .await
        .map_err(edge::wire_error)
}

/// An account's connections, secrets left out.
pub async fn list(catalog: &Catalog, account_id: &str) -> Result<Vec<Shown>, ApiError> {
    let rows = catalog
        .list_connections(account_id)
        .await
        .map_err(edge::wire_error)?;
    rows.into_iter()
        .map(|c| {
            Ok(Shown {
                settings: serde_json::from_str(&c.settings).map_err(|_| corrupt("settings"))?,
                has_secrets: !c.secrets_sealed.is_empty(),
                name: c.name,
                created_at_ms: c.created_at_ms,
                updated_at_ms: c.updated_at_ms,
            })
        })
        .collect()
}

/// A connection's settings and opened secrets, for a delivery.
pub async fn open(
    catalog: &Catalog,
    root: &RootKey,
    account_id: &str,
    name: &str,
) -> Result<Option<(Settings, Secrets)>, ApiError> {
    let Some(row) = catalog
        .connection(account_id, name)
        .await
        .map_err(edge::wire_error)?
    else {
        return Ok(None);
    };
    let settings: Settings =
        serde_json::from_str(&row.settings).map_err(|_| corrupt("settings"))?;
    let opened = root
        .open(&row.secrets_sealed, &aad(account_id, name))
        .map_err(|_| corrupt("secrets"))?;
    let secrets: Secrets = serde_json::from_slice(&opened).map_err(|_| corrupt("secrets"))?;
    Ok(Some((settings, secrets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_role_names() {
        assert!(valid_name("lake-writer_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
