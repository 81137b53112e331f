//! The sns phase: every connection publishes to one topic with `--sns-queues` SQS
//! queues subscribed (raw delivery), over and over. Publish answers once the message is
//! durably in every queue, so its latency is publish-to-delivery; records are
//! deliveries (messages x queues).

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::json;

use super::{BenchArgs, Client, Connection, PhaseResult};

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// `%XX` for everything but unreserved characters, as a form value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> Bytes {
    let text: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    Bytes::from(text.join("&"))
}

/// The text of `<name>...</name>` in an XML answer.
fn xml_value(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].to_string())
}

impl Connection {
    /// Signs (for `sns`) and posts a query-protocol form; answers the XML of a success.
    async fn call_form(&mut self, body: Bytes) -> anyhow::Result<String> {
        let (amz_date, authorization) = self.signer.sign_request(
            "POST",
            "/",
            "",
            "sns",
            &[("content-type", FORM)],
            &body,
            protocol::clock::now_utc(&protocol::clock::SystemClock),
        );
        let request = Request::post("/")
            .header("host", &self.signer.host)
            .header("content-type", FORM)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization)
            .body(Full::new(body))?;
        if self.sender.ready().await.is_err() {
            self.sender = self.client.sender().await?;
            self.sender.ready().await?;
        }
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            bail!("SNS answered {status}: {text}");
        }
        Ok(text)
    }
}

pub(super) async fn sns(client: &Client, args: &BenchArgs) -> anyhow::Result<PhaseResult> {
    let name = format!("bench-sns-{}", std::process::id());
    let mut control = client.connect().await?;
    let created = control
        .call_form(form(&[("Action", "CreateTopic"), ("Name", &name)]))
        .await?;
    let topic = xml_value(&created, "TopicArn")
        .ok_or_else(|| anyhow::anyhow!("CreateTopic answered no TopicArn"))?;
    let mut urls = Vec::new();
    for q in 0..args.sns_queues {
        let queue = format!("{name}-{q}");
        let made = control
            .call(
                "AmazonSQS.CreateQueue",
                Bytes::from(json!({ "QueueName": queue }).to_string()),
            )
            .await?;
        let url = made["QueueUrl"].as_str().unwrap_or_default().to_string();
        let account = url.rsplit('/').nth(1).unwrap_or_default().to_string();
        let queue_arn = format!("arn:aws:sqs:{}:{account}:{queue}", args.region);
        control
            .call_form(form(&[
                ("Action", "Subscribe"),
                ("TopicArn", &topic),
                ("Protocol", "sqs"),
                ("Endpoint", &queue_arn),
                ("Attributes.entry.1.key", "RawMessageDelivery"),
                ("Attributes.entry.1.value", "true"),
            ]))
            .await?;
        urls.push(url);
    }
    let publish = form(&[
        ("Action", "Publish"),
        ("TopicArn", &topic),
        ("Message", &"x".repeat(args.record_bytes)),
    ]);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let client = client.clone();
        let publish = publish.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await?;
            let (mut published, mut errors) = (0u64, 0u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                match conn.call_form(publish.clone()).await {
                    Ok(_) => {
                        published += 1;
                        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("sluice bench: a Publish failed: {e:#}");
                        }
                        errors += 1;
                        conn = client.connect().await?;
                    }
                }
            }
            anyhow::Ok((published, errors, latencies))
        }));
    }
    let mut result = PhaseResult::empty();
    for task in tasks {
        let (published, errors, latencies) = task.await??;
        result.requests += published;
        result.errors += errors;
        result.latencies_us.extend(latencies);
    }
    result.elapsed = started.elapsed();
    result.records = result.requests * args.sns_queues as u64;
    result.bytes = result.records * args.record_bytes as u64;
    let mut conn = client.connect().await?;
    conn.call_form(form(&[("Action", "DeleteTopic"), ("TopicArn", &topic)]))
        .await?;
    for url in urls {
        conn.call(
            "AmazonSQS.DeleteQueue",
            Bytes::from(json!({ "QueueUrl": url }).to_string()),
        )
        .await?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded_and_answers_read() {
        assert_eq!(
            &form(&[("Action", "Publish"), ("Message", "a b&c=d/é")])[..],
            b"Action=Publish&Message=a%20b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(
            xml_value("<R><TopicArn>arn:x</TopicArn></R>", "TopicArn").as_deref(),
            Some("arn:x")
        );
        assert_eq!(xml_value("<R/>", "TopicArn"), None);
    }
}
