//! The S3-compatible destination: a client per bucket and connection, made from the
//! connection the destination's RoleARN names, and the PUT of one object.

use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStoreExt as _, PutPayload, RetryConfig};

use catalog::Catalog;
use catalog::rootkey::RootKey;

use crate::shapes::{S3Destination, bucket_name, role_connection};

/// One object PUT (up to 128 MiB), retries included, must finish within this.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(120);

/// A client for one destination bucket.
pub struct Bucket {
    client: AmazonS3,
    pub name: String,
}

fn extra_roots() -> Vec<object_store::Certificate> {
    let Ok(path) = std::env::var(crate::http::CA_BUNDLE_ENV) else {
        return Vec::new();
    };
    std::fs::read(&path)
        .ok()
        .and_then(|pem| object_store::Certificate::from_pem_bundle(&pem).ok())
        .unwrap_or_default()
}

/// The bucket an S3 destination names, signed in with its connection.
pub async fn open(
    catalog: &Catalog,
    root: &RootKey,
    account_id: &str,
    destination: &S3Destination,
) -> Result<Bucket, String> {
    let connection = role_connection(&destination.role_arn).map_err(|e| e.message)?;
    let bucket = bucket_name(&destination.bucket_arn).map_err(|e| e.message)?;
    let (settings, secrets) = crate::connections::open(catalog, root, account_id, connection)
        .await
        .map_err(|e| e.message)?
        .ok_or_else(|| format!("no connection {connection} is registered"))?;
    let allow_http = settings
        .s3_endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let mut options = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(PUT_TIMEOUT);
    for cert in extra_roots() {
        options = options.with_root_certificate(cert);
    }
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(settings.s3_region.as_deref().unwrap_or("us-east-1"))
        .with_allow_http(allow_http)
        .with_virtual_hosted_style_request(settings.s3_virtual_hosted)
        .with_client_options(options)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(60),
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &settings.s3_endpoint {
        crate::shapes::check_url_allowing_loopback_http(endpoint).map_err(|e| e.message)?;
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(id) = &settings.s3_access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &secrets.s3_secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    Ok(Bucket {
        client,
        name: bucket.to_string(),
    })
}

impl Bucket {
    /// Writes (or overwrites) one object.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), String> {
        let path = ObjectPath::parse(key).map_err(|e| format!("object key {key:?}: {e}"))?;
        tokio::time::timeout(PUT_TIMEOUT, self.client.put(&path, PutPayload::from(body)))
            .await
            .map_err(|_| format!("the PUT of {key} to bucket {} timed out", self.name))?
            .map_err(|e| format!("the PUT of {key} to bucket {} failed: {e}", self.name))?;
        Ok(())
    }
}
