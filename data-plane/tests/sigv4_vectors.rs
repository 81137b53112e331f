//! AWS's Signature Version 4 test suite (the signed requests, `.sreq`, from the copy
//! `scratchstack-aws-signature` ships, kept as data under tests/data) replayed through
//! the server's authenticator, with the suite's key imported into a real catalog.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use catalog::Catalog;
use catalog::identity::{NewAccessKey, PrincipalKind};
use catalog::rootkey::RootKey;
use chrono::{TimeZone, Utc};
use protocol::ErrorCode;
use sluice_data_plane::auth::Authenticator;

const SUITE_KEY_ID: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Parses a `.sreq` file into request parts and body; `None` for the requests the
/// `http` crate cannot represent (a space in the path, folded header lines).
fn parse_sreq(text: &str) -> Option<(http::request::Parts, Bytes)> {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text, ""),
    };
    let mut lines = head.lines();
    let request_line = lines.next()?;
    let method = request_line.split(' ').next()?;
    let target = request_line
        .strip_prefix(method)?
        .trim_start()
        .strip_suffix(" HTTP/1.1")?;
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            return None;
        }
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim_start());
    }
    let request = builder.body(()).ok()?;
    let (parts, ()) = request.into_parts();
    Some((parts, Bytes::from(body.to_string())))
}

#[tokio::test]
async fn the_aws_test_suite_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    let root = Arc::new(RootKey::from_bytes(&[9u8; 32]).unwrap());
    catalog
        .create_tenant("vectors", Some("111111111111"), 0)
        .await
        .unwrap();
    let principal = catalog
        .create_principal("111111111111", PrincipalKind::User, "example", 0)
        .await
        .unwrap();
    let key = NewAccessKey {
        access_key_id: SUITE_KEY_ID.into(),
        secret_access_key: zeroize::Zeroizing::new(SUITE_SECRET.into()),
    };
    catalog
        .import_access_key(&root, &principal, &key, 0)
        .await
        .unwrap();
    let auth = Arc::new(Authenticator::new(
        catalog.clone(),
        root,
        "us-east-1".into(),
        std::time::Duration::from_secs(900),
        protocol::clock::SystemClock::shared(),
    ));
    let signed_at = Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap();

    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-sig-v4-test-suite");
    let mut verified = Vec::new();
    let mut unrepresentable = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sreq"))
        .collect();
    files.sort();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        // Session tokens (STS) are not issued by Sluice. The two form-encoded vectors
        // are for the query protocol (a form body folded into the query string), not
        // the JSON protocols Sluice serves, and this copy of them is inconsistent (the
        // canonical request lists a header the signature does not sign); the crate's
        // own suite leaves them out too.
        if name.starts_with("post-sts") || name.starts_with("post-x-www-form-urlencoded") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some((parts, body)) = parse_sreq(&text) else {
            unrepresentable.push(name);
            continue;
        };
        let caller = auth
            .authenticate_at(&parts, body.clone(), "service", signed_at)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(caller.account_id, "111111111111", "{name}");
        assert_eq!(
            caller.principal_arn,
            "arn:aws:iam::111111111111:user/example"
        );

        // One changed hex digit of the signature fails it.
        let mut tampered = parts.clone();
        let header = tampered.headers[http::header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .to_string();
        let last = header.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        let header = format!("{}{flipped}", &header[..header.len() - 1]);
        tampered
            .headers
            .insert(http::header::AUTHORIZATION, header.parse().unwrap());
        let err = auth
            .authenticate_at(&tampered, body.clone(), "service", signed_at)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSignature, "{name}");

        // Replayed 16 minutes later, it is too old.
        let late = signed_at + chrono::Duration::minutes(16);
        let err = auth
            .authenticate_at(&parts, body, "service", late)
            .await
            .unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::InvalidSignature,
            "{name}: {}",
            err.message
        );
        verified.push(name);
    }
    eprintln!(
        "verified {} vectors; not representable as http requests: {unrepresentable:?}",
        verified.len()
    );
    assert!(
        verified.len() >= 20,
        "only {} vectors verified",
        verified.len()
    );

    // A key the catalog does not know, signing the same request.
    let text = std::fs::read_to_string(suite.join("get-vanilla.sreq")).unwrap();
    let (mut parts, body) = parse_sreq(&text).unwrap();
    let header = parts.headers[http::header::AUTHORIZATION]
        .to_str()
        .unwrap()
        .replace(SUITE_KEY_ID, "AKIDOTHEREXAMPLE");
    parts
        .headers
        .insert(http::header::AUTHORIZATION, header.parse().unwrap());
    let err = auth
        .authenticate_at(&parts, body, "service", signed_at)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnrecognizedClient);
}
