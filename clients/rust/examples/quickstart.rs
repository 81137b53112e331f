//! Puts 100 records (aggregated, with idempotency keys) and reads them back as a
//! member of a consumer group. Reads SLUICE_ENDPOINT, SLUICE_CA,
//! AWS_SHARED_CREDENTIALS_FILE and SLUICE_STREAM (a stream that exists).
use futures_util::StreamExt;
use sluice_client::Client;
use sluice_client::group::{GroupConsumer, GroupOptions, StartFrom};
use sluice_client::producer::{Producer, ProducerOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let stream = env("SLUICE_STREAM")?;
    let client = std::sync::Arc::new(Client::from_files(
        &env("SLUICE_ENDPOINT")?,
        env("SLUICE_CA")?.as_ref(),
        env("AWS_SHARED_CREDENTIALS_FILE")?.as_ref(),
        "us-east-1",
    )?);

    let producer = Producer::new(
        client.clone(),
        &stream,
        ProducerOptions {
            aggregate: true,
            ..ProducerOptions::default()
        },
    );
    let records: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| {
            (
                format!("customer-{}", i % 10),
                format!("order {i}").into_bytes(),
            )
        })
        .collect();
    let stored = producer.put(&records).await?;
    println!(
        "stored {} records, the first at {}",
        stored.len(),
        stored[0].sequence_number
    );

    let options = GroupOptions {
        create_from: Some(StartFrom::TrimHorizon),
        ..GroupOptions::default()
    };
    let group = GroupConsumer::join(client, &stream, "quickstart", options).await?;
    let mut records = Box::pin(group.records());
    let mut read = 0;
    while let Some(record) = records.next().await {
        let record = record?;
        read += 1;
        if read == 100 {
            println!(
                "read 100 records, the last: {}",
                String::from_utf8_lossy(&record.data)
            );
            break;
        }
    }
    Ok(())
}
