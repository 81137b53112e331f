//! Credentials and request signing: keys from an AWS shared-credentials file,
//! signatures by `protocol::sigv4`, the same code the server verifies with.

use protocol::sigv4::{self, SigningKeyPair};

pub struct Signer {
    pub access_key_id: String,
    secret_access_key: String,
    pub region: String,
    pub host: String,
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
    ) -> Result<Self, crate::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::Error::Config(format!("reading credentials {}: {e}", path.display()))
        })?;
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
            _ => Err(crate::Error::Config(format!(
                "{} has no [default] aws_access_key_id and aws_secret_access_key",
                path.display()
            ))),
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
    /// `host` and `x-amz-date`, by the workspace's one SigV4 implementation
    /// (`protocol::sigv4`), the one the server verifies with. `canonical_query` comes
    /// from `canonical_query`.
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
        let uri = if canonical_query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{canonical_query}")
        };
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name.to_ascii_lowercase(), value.trim());
        }
        let (mut parts, ()) = request
            .header("host", self.host.as_str())
            .body(())
            .expect("a request of valid parts")
            .into_parts();
        let key = SigningKeyPair {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region: &self.region,
            service,
        };
        sigv4::sign(&mut parts, body, &key, now).expect("signable request");
        let header = |name: &str| {
            parts.headers[name]
                .to_str()
                .expect("ASCII header")
                .to_string()
        };
        (header("x-amz-date"), header("authorization"))
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

    /// A request this client signs passes the server's verifier.
    #[test]
    fn what_the_client_signs_the_server_verifies() {
        let signer = Signer::new(
            "AKIDEXAMPLE".into(),
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            "us-east-1".into(),
            "localhost:4567".into(),
        );
        let now = protocol::clock::utc(1_767_225_600_000);
        let query = canonical_query(&[("b", "x y".into()), ("a", "1".into())]);
        assert_eq!(query, "a=1&b=x%20y");
        let (amz_date, authorization) =
            signer.sign_request("GET", "/admin/v1/tenants", &query, "sluice", &[], b"", now);
        let (parts, ()) = http::Request::get(format!("/admin/v1/tenants?{query}"))
            .header("host", "localhost:4567")
            .header("x-amz-date", amz_date)
            .header("authorization", authorization)
            .body(())
            .unwrap()
            .into_parts();
        let credential = sigv4::parse_credential(&parts).unwrap();
        let canonical =
            sigv4::canonical_request(&parts, &credential, &sigv4::sha256_hex(b"")).unwrap();
        let key = sigv4::signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &credential.date,
            "us-east-1",
            "sluice",
        );
        sigv4::verify(
            &key,
            &sigv4::string_to_sign(&credential, &canonical),
            &credential.signature,
        )
        .unwrap();
    }
}
