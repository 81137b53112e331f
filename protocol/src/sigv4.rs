//! AWS Signature Version 4 with no I/O, the one implementation in the workspace: the
//! server verifies with it (parsing the credential from an `Authorization` header or a
//! presigned query, then the canonical request, the string to sign, the signing key and
//! a constant-time comparison) and the CLI signs with it (`sign`).
//!
//! Written here rather than taken from a crate because the payload hash dominates the
//! cost of a large PutRecords: on machines without SHA extensions, aws-lc-rs hashes
//! about 1.8 times as fast as the RustCrypto `sha2` that the verifying crates use
//! (measured in the closing note of the identity issue). AWS's own test suite, replayed
//! in `tests/sigv4_vectors.rs`, and the black-box tests with botocore pin the behaviour.

use crate::{ApiError, ErrorCode};
use aws_lc_rs::{constant_time, digest, hmac};
use chrono::{DateTime, NaiveDateTime, Utc};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Presigned requests live at most seven days, as AWS allows.
const PRESIGNED_EXPIRES_MAX_SECONDS: i64 = 604_800;
/// Signed headers per request, at most.
const SIGNED_HEADERS_MAX: usize = 64;

/// What a request claims about its signature, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `YYYYMMDD` from the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// The signing time, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    pub signed_at: DateTime<Utc>,
    /// For a presigned request: how long it stays valid.
    pub expires_seconds: Option<i64>,
}

impl Credential {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::IncompleteSignature, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature, message)
}

pub fn mismatch() -> ApiError {
    invalid(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

fn parse_amz_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Reads the credential from the `Authorization` header, or from the query of a
/// presigned request.
pub fn parse_credential(parts: &http::request::Parts) -> Result<Credential, ApiError> {
    if let Some(value) = parts.headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| incomplete("The Authorization header is not ASCII."))?;
        return parse_authorization(value, parts);
    }
    let query = parts.uri.query().unwrap_or("");
    if query_pairs(query).any(|(k, _)| k == "X-Amz-Signature") {
        return parse_presigned(query);
    }
    Err(ApiError::new(
        ErrorCode::MissingAuthenticationToken,
        "Missing Authentication Token",
    ))
}

fn parse_authorization(value: &str, parts: &http::request::Parts) -> Result<Credential, ApiError> {
    let Some(rest) = value.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')) else {
        // The value is not echoed: it may be another scheme's secret (a token).
        return Err(incomplete(format!(
            "Authorization header requires the '{ALGORITHM}' algorithm."
        )));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match component.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {
                return Err(incomplete(format!(
                    "'{component}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
                )));
            }
        }
    }
    let mut missing = String::new();
    for (name, part) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if part.is_none() {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(format!("{missing}Authorization={value}")));
    };
    let (amz_date, signed_at) = match parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
    {
        Some(text) => (
            text.to_string(),
            parse_amz_date(text).ok_or_else(|| {
                incomplete(format!(
                    "X-Amz-Date {text:?} is not an ISO-8601 basic date-time."
                ))
            })?,
        ),
        None => {
            let date = parts
                .headers
                .get(http::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .ok_or_else(|| {
                    incomplete(format!(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={value}"
                    ))
                })?
                .with_timezone(&Utc);
            (date.format("%Y%m%dT%H%M%SZ").to_string(), date)
        }
    };
    build(
        credential,
        signed_headers,
        signature,
        amz_date,
        signed_at,
        None,
    )
}

fn parse_presigned(query: &str) -> Result<Credential, ApiError> {
    let get = |name: &str| {
        query_pairs(query)
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
            .transpose()
            .map_err(|_| incomplete(format!("{name} is not valid percent-encoding.")))
    };
    let algorithm = get("X-Amz-Algorithm")?;
    if algorithm.as_deref() != Some(ALGORITHM) {
        return Err(incomplete(format!("X-Amz-Algorithm must be {ALGORITHM}.")));
    }
    let mut missing = Vec::new();
    let mut need = |name: &'static str| -> Result<String, ApiError> {
        let value = get(name)?;
        if value.is_none() {
            missing.push(name);
        }
        Ok(value.unwrap_or_default())
    };
    let credential = need("X-Amz-Credential")?;
    let signed_headers = need("X-Amz-SignedHeaders")?;
    let signature = need("X-Amz-Signature")?;
    let amz_date = need("X-Amz-Date")?;
    let expires = need("X-Amz-Expires")?;
    if !missing.is_empty() {
        return Err(incomplete(format!(
            "A presigned request requires the query parameters {}.",
            missing.join(", ")
        )));
    }
    let signed_at = parse_amz_date(&amz_date)
        .ok_or_else(|| incomplete("X-Amz-Date is not an ISO-8601 basic date-time."))?;
    let expires: i64 = expires
        .parse()
        .ok()
        .filter(|e| (1..=PRESIGNED_EXPIRES_MAX_SECONDS).contains(e))
        .ok_or_else(|| {
            incomplete(format!(
                "X-Amz-Expires must be 1..={PRESIGNED_EXPIRES_MAX_SECONDS} seconds."
            ))
        })?;
    build(
        &credential,
        &signed_headers,
        &signature,
        amz_date,
        signed_at,
        Some(expires),
    )
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: String,
    signed_at: DateTime<Utc>,
    expires_seconds: Option<i64>,
) -> Result<Credential, ApiError> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if access_key_id.is_empty() || access_key_id.len() > 128 {
        return Err(ApiError::new(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        ));
    }
    if !amz_date.starts_with(date) || date.len() != 8 {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}', from '{amz_date}'.",
            &amz_date[..amz_date.len().min(8)]
        )));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_string).collect();
    if signed_headers.len() > SIGNED_HEADERS_MAX
        || signed_headers
            .iter()
            .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(incomplete(
            "SignedHeaders must be lowercase header names separated by ';'.",
        ));
    }
    if !signed_headers.iter().any(|h| h == "host" || h == AUTHORITY) {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(mismatch());
    }
    Ok(Credential {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        amz_date,
        signed_at,
        expires_seconds,
    })
}

/// Checks the scope against this server and the signing time against its clock.
pub fn check_scope_and_time(
    credential: &Credential,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
    skew: chrono::Duration,
) -> Result<(), ApiError> {
    if credential.region != region {
        return Err(invalid(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            credential.region
        )));
    }
    if credential.service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    let at = credential.signed_at;
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let oldest = match credential.expires_seconds {
        // A presigned request is good from its signing time until it expires.
        Some(expires) => {
            if at + chrono::Duration::seconds(expires) < now {
                return Err(invalid(format!(
                    "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
                    credential.amz_date,
                    stamp(now - chrono::Duration::seconds(expires)),
                    stamp(now)
                )));
            }
            now
        }
        None => now - skew,
    };
    if credential.expires_seconds.is_none() && at < oldest {
        return Err(invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - {} min.)",
            credential.amz_date,
            stamp(oldest),
            stamp(now),
            skew.num_minutes()
        )));
    }
    if at > now + skew {
        return Err(invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + {} min.)",
            credential.amz_date,
            stamp(now + skew),
            stamp(now),
            skew.num_minutes()
        )));
    }
    Ok(())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn uri_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The canonical URI of a non-S3 request: the path with dot segments and empty
/// segments removed, each segment encoded (again) as the SDKs do.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 8);
    for segment in &segments {
        out.push('/');
        uri_encode(segment.as_bytes(), &mut out);
    }
    if out.is_empty() || (path.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    out
}

fn canonical_query(query: &str, presigned: bool) -> Result<String, ApiError> {
    let mut pairs = Vec::new();
    for (k, v) in query_pairs(query) {
        if presigned && k == "X-Amz-Signature" {
            continue;
        }
        let bad = || incomplete("The query string is not valid percent-encoding.");
        let (k, v) = (
            percent_decode(k).map_err(|_| bad())?,
            percent_decode(v).map_err(|_| bad())?,
        );
        let (mut ek, mut ev) = (String::new(), String::new());
        uri_encode(k.as_bytes(), &mut ek);
        uri_encode(v.as_bytes(), &mut ev);
        pairs.push((ek, ev));
    }
    pairs.sort();
    Ok(pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"))
}

/// A header value as canonicalised: trimmed, runs of spaces made one.
fn canonical_value(value: &[u8], out: &mut Vec<u8>) {
    let trimmed = value.trim_ascii();
    let mut last_space = false;
    for &b in trimmed {
        if b == b' ' || b == b'\t' {
            if !last_space {
                out.push(b' ');
            }
            last_space = true;
        } else {
            out.push(b);
            last_space = false;
        }
    }
}

/// The canonical request; `payload_hash` is the hex SHA-256 of the body.
pub fn canonical_request(
    parts: &http::request::Parts,
    credential: &Credential,
    payload_hash: &str,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(parts.uri.path()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(
        canonical_query(
            parts.uri.query().unwrap_or(""),
            credential.expires_seconds.is_some(),
        )?
        .as_bytes(),
    );
    out.push(b'\n');
    for name in &credential.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if name == AUTHORITY {
            // Signers on HTTP/2 (the JavaScript SDK v3) sign the :authority pseudo-header
            // under its own name; over HTTP/1.1 the same value is the Host header.
            let authority = parts
                .uri
                .authority()
                .map(|a| a.as_str().as_bytes())
                .or_else(|| parts.headers.get(http::header::HOST).map(|v| v.as_bytes()))
                .ok_or_else(|| {
                    incomplete("The signed header ':authority' is not in the request.")
                })?;
            canonical_value(authority, &mut out);
            out.push(b'\n');
            continue;
        }
        let mut first = true;
        let mut any = false;
        for value in parts.headers.get_all(name.as_str()) {
            if !first {
                out.push(b',');
            }
            canonical_value(value.as_bytes(), &mut out);
            first = false;
            any = true;
        }
        if !any {
            // HTTP/2 carries the host as the :authority pseudo-header.
            match (name.as_str(), parts.uri.authority()) {
                ("host", Some(authority)) => out.extend_from_slice(authority.as_str().as_bytes()),
                _ => {
                    return Err(incomplete(format!(
                        "The signed header '{name}' is not in the request."
                    )));
                }
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(credential.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// The HTTP/2 pseudo-header that carries the host, as HTTP/2 signers name it.
const AUTHORITY: &str = ":authority";

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

pub fn string_to_sign(credential: &Credential, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        credential.amz_date,
        credential.scope(),
        sha256_hex(canonical_request)
    )
}

/// The key derived from a secret for one date, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let step = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let k_date = step(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = step(k_date.as_ref(), region.as_bytes());
    let k_service = step(k_region.as_ref(), service.as_bytes());
    let k_signing = step(k_service.as_ref(), b"aws4_request");
    let mut key = [0u8; 32];
    key.copy_from_slice(k_signing.as_ref());
    key
}

/// The hex signature of `string_to_sign` under a derived signing key.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, signing_key),
        string_to_sign.as_bytes(),
    )
    .as_ref())
}

/// Compares the request's signature with the one `signing_key` makes, in constant time.
pub fn verify(
    signing_key: &[u8; 32],
    string_to_sign: &str,
    signature_hex: &str,
) -> Result<(), ApiError> {
    let expected = signature(signing_key, string_to_sign);
    constant_time::verify_slices_are_equal(expected.as_bytes(), signature_hex.as_bytes())
        .map_err(|_| mismatch())
}

/// What a client signs with.
pub struct SigningKeyPair<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// Signs a request whose headers are all in `parts` (`host`, when the URI has no
/// authority, among them): adds `x-amz-date` and `authorization`, signing every header
/// present. The same canonical request the verifier builds, so the two cannot drift.
pub fn sign(
    parts: &mut http::request::Parts,
    body: &[u8],
    key: &SigningKeyPair<'_>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    parts.headers.insert(
        "x-amz-date",
        http::HeaderValue::from_str(&amz_date).map_err(|_| incomplete("bad date"))?,
    );
    let mut signed_headers: Vec<String> = parts
        .headers
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .filter(|name| name != "authorization")
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    let mut credential = Credential {
        access_key_id: key.access_key_id.to_string(),
        date: amz_date[..8].to_string(),
        region: key.region.to_string(),
        service: key.service.to_string(),
        signed_headers,
        signature: String::new(),
        amz_date,
        signed_at: now,
        expires_seconds: None,
    };
    let canonical = canonical_request(parts, &credential, &sha256_hex(body))?;
    let to_sign = string_to_sign(&credential, &canonical);
    let derived = signing_key(
        key.secret_access_key,
        &credential.date,
        &credential.region,
        &credential.service,
    );
    credential.signature = signature(&derived, &to_sign);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
        credential.access_key_id,
        credential.scope(),
        credential.signed_headers.join(";"),
        credential.signature
    );
    parts.headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&authorization).map_err(|_| incomplete("bad key id"))?,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uris() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/example1/example2/../.."), "/");
        assert_eq!(canonical_uri("/./example"), "/example");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/ሴ"), "/%E1%88%B4");
    }

    #[test]
    fn canonical_queries() {
        assert_eq!(
            canonical_query("b=2&a=1&a=0", false).unwrap(),
            "a=0&a=1&b=2"
        );
        assert_eq!(canonical_query("Param1", false).unwrap(), "Param1=");
        assert_eq!(canonical_query("x=%2B+y", false).unwrap(), "x=%2B%2By");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&a=1", true).unwrap(),
            "a=1"
        );
        assert!(canonical_query("a=%zz", false).is_err());
    }

    #[test]
    fn header_values_collapse_spaces() {
        let mut out = Vec::new();
        canonical_value(b"  \"a   b   c\"  ", &mut out);
        assert_eq!(out, b"\"a b c\"");
    }

    #[test]
    fn what_sign_signs_verifies() {
        let (mut parts, ()) = http::Request::post("/")
            .header("host", "localhost:4567")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Kinesis_20131202.ListStreams")
            .body(())
            .unwrap()
            .into_parts();
        let key = SigningKeyPair {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "secret",
            region: "us-east-1",
            service: "kinesis",
        };
        let now = crate::clock::utc(1_767_225_600_000);
        sign(&mut parts, b"{}", &key, now).unwrap();
        let credential = parse_credential(&parts).unwrap();
        assert_eq!(credential.service, "kinesis");
        check_scope_and_time(
            &credential,
            "us-east-1",
            "kinesis",
            now,
            chrono::Duration::minutes(5),
        )
        .unwrap();
        let canonical = canonical_request(&parts, &credential, &sha256_hex(b"{}")).unwrap();
        let to_sign = string_to_sign(&credential, &canonical);
        let derived = signing_key("secret", &credential.date, "us-east-1", "kinesis");
        verify(&derived, &to_sign, &credential.signature).unwrap();
        let wrong = signing_key("other", &credential.date, "us-east-1", "kinesis");
        assert!(verify(&wrong, &to_sign, &credential.signature).is_err());
        let tampered = canonical_request(&parts, &credential, &sha256_hex(b"{ }")).unwrap();
        assert!(
            verify(
                &derived,
                &string_to_sign(&credential, &tampered),
                &credential.signature
            )
            .is_err()
        );
    }

    #[test]
    fn the_authority_pseudo_header_is_signed_under_its_name() {
        // HTTP/2: the host is the URI's authority; HTTP/1.1: the Host header.
        let (h2, ()) = http::Request::post("https://localhost:4567/")
            .version(http::Version::HTTP_2)
            .header("x-amz-date", "20260101T000000Z")
            .body(())
            .unwrap()
            .into_parts();
        let (h1, ()) = http::Request::post("/")
            .header("host", "localhost:4567")
            .header("x-amz-date", "20260101T000000Z")
            .body(())
            .unwrap()
            .into_parts();
        let credential = |names: &[&str]| Credential {
            access_key_id: "AKIDEXAMPLE".into(),
            date: "20260101".into(),
            region: "us-east-1".into(),
            service: "kinesis".into(),
            signed_headers: names.iter().map(|n| n.to_string()).collect(),
            signature: String::new(),
            amz_date: "20260101T000000Z".into(),
            signed_at: crate::clock::utc(1_767_225_600_000),
            expires_seconds: None,
        };
        let by_authority = credential(&[":authority", "x-amz-date"]);
        let text = |parts| {
            String::from_utf8(canonical_request(parts, &by_authority, "e3b0").unwrap()).unwrap()
        };
        let expected = "POST\n/\n\n:authority:localhost:4567\nx-amz-date:20260101T000000Z\n\n\
                        :authority;x-amz-date\ne3b0";
        assert_eq!(text(&h2), expected);
        assert_eq!(text(&h1), expected);
        // Signed as `host`, an HTTP/2 request's authority stands in for the header.
        let by_host = credential(&["host", "x-amz-date"]);
        let host = String::from_utf8(canonical_request(&h2, &by_host, "e3b0").unwrap()).unwrap();
        assert!(host.contains("\nhost:localhost:4567\n"), "{host}");
    }

    #[test]
    fn documented_signing_key() {
        // The derivation example in AWS's Signature Version 4 documentation.
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
