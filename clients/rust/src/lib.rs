//! A client for Sluice.
//!
//! - [`Client`]: signed (SigV4) AWS JSON calls to one endpoint over TLS, on a kept
//!   connection.
//! - [`group::GroupConsumer`]: reads a stream as a member of a server-side consumer
//!   group: the server leases each shard to one member, rebalances as members come
//!   and go, fences a member whose lease was taken, and keeps the checkpoints; the
//!   consumer reads its leased shards with GetRecords, turns KPL aggregates back into
//!   their user records, and checkpoints what the caller processed.
//! - [`kpl`]: the KPL's aggregated-record format, both ways.
//!
//! ```no_run
//! # async fn run() -> Result<(), sluice_client::Error> {
//! use sluice_client::{Client, group::{GroupConsumer, GroupOptions}};
//! let client = Client::from_files(
//!     "127.0.0.1:4567",
//!     "./sluice-data/tls/ca.pem".as_ref(),
//!     "./sluice-data/credentials".as_ref(),
//!     "us-east-1",
//! )?;
//! let mut group = GroupConsumer::join(client, "orders", "billing", GroupOptions::default()).await?;
//! loop {
//!     let batch = group.next_batch().await?;
//!     for record in &batch.records {
//!         println!("{} {}", record.partition_key, String::from_utf8_lossy(&record.data));
//!     }
//!     group.commit(&batch).await?;
//! }
//! # }
//! ```

pub mod connection;
pub mod group;
pub mod kpl;
pub mod producer;
pub mod sigv4;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::Value;
use tokio_rustls::TlsConnector;

pub use crate::sigv4::Signer;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an AWS error.
    #[error("{kind}: {message}")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// The client's own settings (files, names).
    #[error("{0}")]
    Config(String),
    /// An answer the client could not read.
    #[error("{0}")]
    Format(String),
}

impl Error {
    /// The AWS error type (`LeaseLostException`, ...) of an API error.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Worth retrying after a pause: throttling, the server busy, the connection lost.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, kind, .. } => {
                *status >= 500
                    || kind == "ProvisionedThroughputExceededException"
                    || kind == "LimitExceededException"
                    || kind == "ThrottlingException"
            }
            Error::Transport(_) => true,
            _ => false,
        }
    }
}

/// The consumer-group API's target prefix.
pub const GROUPS_TARGET_PREFIX: &str = "SluiceConsumerGroups_20261205.";
const JSON: &str = "application/x-amz-json-1.1";

/// Signed AWS JSON 1.1 calls to one Sluice endpoint.
pub struct Client {
    endpoint: String,
    host: String,
    connector: TlsConnector,
    signer: Signer,
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl Client {
    /// A client for `endpoint` (host:port) that trusts the CA in `ca` and signs with
    /// `signer`.
    pub fn new(endpoint: &str, ca: &Path, signer: Signer) -> Result<Client, Error> {
        Ok(Client {
            endpoint: endpoint.to_string(),
            host: endpoint
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(endpoint)
                .to_string(),
            connector: connection::tls_connector(ca)?,
            signer,
            sender: tokio::sync::Mutex::new(None),
        })
    }

    /// A client signing with the `[default]` profile of an AWS credentials file.
    pub fn from_files(
        endpoint: &str,
        ca: &Path,
        credentials: &Path,
        region: &str,
    ) -> Result<Client, Error> {
        let signer = Signer::from_credentials_file(credentials, region.into(), endpoint.into())?;
        Client::new(endpoint, ca, signer)
    }

    /// A Kinesis operation (`Kinesis_20131202.<operation>`).
    pub async fn kinesis(&self, operation: &str, body: &Value) -> Result<Value, Error> {
        self.call(
            "kinesis",
            &format!("Kinesis_20131202.{operation}"),
            body,
            &[],
        )
        .await
    }

    /// A consumer-group operation.
    pub async fn groups(&self, operation: &str, body: &Value) -> Result<Value, Error> {
        self.call(
            "kinesis",
            &format!("{GROUPS_TARGET_PREFIX}{operation}"),
            body,
            &[],
        )
        .await
    }

    /// One signed `POST /` with `X-Amz-Target: target` and `extra` headers (signed
    /// too). A connection the server closed is replaced once.
    pub async fn call(
        &self,
        service: &str,
        target: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Value, Error> {
        let body = Bytes::from(body.to_string());
        let mut headers = vec![("content-type", JSON), ("x-amz-target", target)];
        headers.extend_from_slice(extra);
        let mut guard = self.sender.lock().await;
        for attempt in 0..2 {
            let (amz_date, authorization) = self.signer.sign_request(
                "POST",
                "/",
                "",
                service,
                &headers,
                &body,
                chrono::Utc::now(),
            );
            let mut request = http::Request::builder()
                .method("POST")
                .uri("/")
                .header("host", &self.endpoint)
                .header("x-amz-date", amz_date)
                .header("authorization", authorization);
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            let request = request
                .body(Full::new(body.clone()))
                .map_err(|e| Error::Config(e.to_string()))?;
            let sender = match guard.as_mut() {
                Some(sender) if sender.is_ready() => sender,
                _ => guard.insert(self.connect().await?),
            };
            let response = match sender.send_request(request).await {
                Ok(response) => response,
                Err(e) => {
                    *guard = None;
                    if attempt == 0 && (e.is_closed() || e.is_incomplete_message()) {
                        continue;
                    }
                    return Err(Error::Transport(format!("{target}: {e}")));
                }
            };
            let status = response.status();
            let bytes = match response.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    *guard = None;
                    return Err(Error::Transport(format!("{target}: {e}")));
                }
            };
            let value: Value = if bytes.is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Format(format!("{target}: the answer is not JSON: {e}")))?
            };
            if !status.is_success() {
                let kind = value["__type"].as_str().unwrap_or("Error");
                return Err(Error::Api {
                    status: status.as_u16(),
                    kind: kind.rsplit('#').next().unwrap_or(kind).to_string(),
                    message: value["message"]
                        .as_str()
                        .or(value["Message"].as_str())
                        .unwrap_or("")
                        .to_string(),
                });
            }
            return Ok(value);
        }
        Err(Error::Transport(format!(
            "{target}: the server closed the connection twice"
        )))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Error> {
        let addr: SocketAddr = tokio::net::lookup_host(&self.endpoint)
            .await
            .map_err(|e| Error::Transport(format!("resolving {}: {e}", self.endpoint)))?
            .next()
            .ok_or_else(|| Error::Transport(format!("{} resolves to no address", self.endpoint)))?;
        connection::connect(&self.connector, addr, &self.host).await
    }
}
