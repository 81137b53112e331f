//! A small AWS Signature Version 4 signer for the requests `sluice bench` sends: POST /
//! with a JSON body and four signed headers. The server verifies with a full verifier
//! (and the black-box tests sign with botocore), so this covers only the one shape.

use aws_lc_rs::{digest, hmac};

pub struct Signer {
    pub access_key_id: String,
    secret_access_key: String,
    pub region: String,
    pub host: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

impl Signer {
    pub fn new(
        access_key_id: String,
        secret_access_key: String,
        region: String,
        host: String,
    ) -> Self {
        Signer {
            access_key_id,
            secret_access_key,
            region,
            host,
        }
    }

    /// Reads the `[default]` profile of an AWS shared-credentials file.
    pub fn from_credentials_file(
        path: &std::path::Path,
        region: String,
        host: String,
    ) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading credentials {}: {e}", path.display()))?;
        let mut in_default = false;
        let (mut id, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_default = line == "[default]";
                continue;
            }
            if !in_default {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        match (id, secret) {
            (Some(id), Some(secret)) => Ok(Signer::new(id, secret, region, host)),
            _ => anyhow::bail!(
                "{} has no [default] aws_access_key_id and aws_secret_access_key",
                path.display()
            ),
        }
    }

    /// Returns the `x-amz-date` and `authorization` values for a Kinesis JSON request.
    pub fn sign(
        &self,
        target: &str,
        content_type: &str,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> (String, String) {
        self.sign_request(
            "POST",
            "/",
            "",
            "kinesis",
            &[("content-type", content_type), ("x-amz-target", target)],
            body,
            now,
        )
    }

    /// Signs any request to this host: `headers` (lowercase names) are signed along with
    /// `host` and `x-amz-date`. `path` must be made of unreserved characters and `/`,
    /// so that its canonical form is itself; `canonical_query` comes from
    /// `canonical_query`.
    #[allow(clippy::too_many_arguments)]
    pub fn sign_request(
        &self,
        method: &str,
        path: &str,
        canonical_query: &str,
        service: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> (String, String) {
        debug_assert!(
            path.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        );
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = &amz_date[..8];
        let mut signed: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        signed.push(("host".into(), self.host.clone()));
        signed.push(("x-amz-date".into(), amz_date.clone()));
        signed.sort();
        let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = signed
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_request = format!(
            "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
            hex(digest::digest(&digest::SHA256, body).as_ref())
        );
        let scope = format!("{date}/{}/{service}/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
        );
        let k_date = hmac(
            format!("AWS4{}", self.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(k_date.as_ref(), self.region.as_bytes());
        let k_service = hmac(k_region.as_ref(), service.as_bytes());
        let k_signing = hmac(k_service.as_ref(), b"aws4_request");
        let signature = hex(hmac(k_signing.as_ref(), string_to_sign.as_bytes()).as_ref());
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key_id
        );
        (amz_date, authorization)
    }
}

/// A query string in SigV4's canonical form (each name and value percent-encoded except
/// unreserved characters, pairs sorted), which is also a valid query to send.
pub fn canonical_query(pairs: &[(&str, String)]) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
    let mut encoded: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signing-key derivation example from AWS's SigV4 documentation.
    #[test]
    fn derives_the_documented_signing_key() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), b"20120215");
        let k_region = hmac(k_date.as_ref(), b"us-east-1");
        let k_service = hmac(k_region.as_ref(), b"iam");
        let k_signing = hmac(k_service.as_ref(), b"aws4_request");
        assert_eq!(
            hex(k_signing.as_ref()),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
