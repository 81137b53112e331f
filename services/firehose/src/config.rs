//! A delivery stream's configuration: which destination it has (each destination's
//! shape lives in its module, the shared ones in `shapes`), its source, and what the
//! catalog keeps of it. What is stored is the request's own JSON (with secrets sealed),
//! so a Describe shows what was asked for, with AWS's defaults filled in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

use crate::http::HttpDestination;
use crate::shapes::{BufferingHints, ProcessingConfiguration, S3Destination};

/// Where a delivery stream delivers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Destination {
    /// `S3DestinationConfiguration` (true: given as ExtendedS3DestinationConfiguration).
    S3 {
        extended: bool,
        s3: Box<S3Destination>,
    },
    Http(Box<HttpDestination>),
    /// `RedshiftDestinationConfiguration`, loading into a Postgres table.
    Redshift(Box<crate::warehouse::RedshiftDestination>),
    /// OpenSearch (`elasticsearch`: given as ElasticsearchDestinationConfiguration).
    Search {
        elasticsearch: bool,
        search: Box<crate::search::SearchDestination>,
    },
    Splunk(Box<crate::splunk::SplunkDestination>),
}

impl Destination {
    pub fn buffering(&self) -> BufferingHints {
        match self {
            Destination::S3 { s3, .. } => s3.buffering(),
            Destination::Http(h) => h.buffering_hints.clone(),
            Destination::Redshift(r) => r.s3.buffering_hints.clone(),
            Destination::Search { search, .. } => search.buffering_hints.clone(),
            Destination::Splunk(s) => s.buffering(),
        }
    }

    pub fn processing(&self) -> Option<&ProcessingConfiguration> {
        match self {
            Destination::S3 { s3, .. } => s3.processing_configuration.as_ref(),
            Destination::Http(h) => h.processing_configuration.as_ref(),
            Destination::Redshift(r) => r.processing_configuration.as_ref(),
            Destination::Search { search, .. } => search.processing_configuration.as_ref(),
            Destination::Splunk(s) => s.processing_configuration.as_ref(),
        }
    }

    /// The `Destinations` entry DescribeDeliveryStream answers.
    pub fn described(&self) -> Value {
        let mut v = serde_json::json!({"DestinationId": DESTINATION_ID});
        match self {
            Destination::S3 { s3, .. } => {
                v["S3DestinationDescription"] = s3.described(false);
                v["ExtendedS3DestinationDescription"] = s3.described(true);
            }
            Destination::Http(h) => v["HttpEndpointDestinationDescription"] = h.described(),
            Destination::Redshift(r) => v["RedshiftDestinationDescription"] = r.described(),
            Destination::Search {
                elasticsearch: true,
                search,
            } => v["ElasticsearchDestinationDescription"] = search.described(),
            Destination::Search { search, .. } => {
                v["AmazonopensearchserviceDestinationDescription"] = search.described()
            }
            Destination::Splunk(s) => v["SplunkDestinationDescription"] = s.described(),
        }
        v
    }
}

/// The one destination a delivery stream has.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// The source a KinesisStreamAsSource delivery stream reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KinesisSource {
    #[serde(rename = "KinesisStreamARN")]
    pub stream_arn: String,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
}

/// What the catalog keeps as a delivery stream's `config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis_source: Option<KinesisSource>,
    /// When a stream-sourced delivery stream started reading (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_start_ms: Option<i64>,
    /// A Kinesis channel's own configuration, when the delivery stream is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<crate::channel::StoredChannel>,
}

impl Stored {
    pub fn parse(text: &str) -> Result<Stored, ApiError> {
        serde_json::from_str(text).map_err(|e| {
            tracing::error!(error = %e, "a delivery stream's stored configuration does not parse");
            ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
        })
    }
}
