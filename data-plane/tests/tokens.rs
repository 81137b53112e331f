//! Bearer-token attacks against the real verifier and a real catalog: every classic JWT
//! forgery is refused, and only a well-formed, live token of an enabled principal passes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use catalog::Catalog;
use catalog::identity::PrincipalKind;
use catalog::rootkey::RootKey;
use protocol::ErrorCode;
use sluice_data_plane::bearer::{AUDIENCE, Claims, ISSUER, TokenService};
use std::sync::Arc;

fn now_s() -> i64 {
    protocol::clock::Clock::now_s(&protocol::clock::SystemClock)
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn setup() -> (TokenService, Catalog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    let root = Arc::new(RootKey::from_bytes(&[6u8; 32]).unwrap());
    for (account, name) in [("111111111111", "a"), ("222222222222", "b")] {
        catalog.create_tenant(name, Some(account), 0).await.unwrap();
        catalog
            .create_principal(account, PrincipalKind::User, "alice", 0)
            .await
            .unwrap();
    }
    (
        TokenService::new(
            catalog.clone(),
            root,
            protocol::clock::SystemClock::shared(),
        ),
        catalog,
        dir,
    )
}

fn claims(sub: &str, tenant: &str) -> Claims {
    let now = now_s();
    Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: sub.into(),
        tenant: tenant.into(),
        pid: 0,
        jti: "test-token".into(),
        iat: now,
        nbf: now,
        exp: now + 600,
    }
}

const ALICE_A: &str = "arn:aws:iam::111111111111:user/alice";

#[tokio::test]
async fn a_good_token_passes_and_every_forgery_fails() {
    let (tokens, catalog, _dir) = setup().await;
    let now_ms = now_s() * 1000;
    let alice = catalog
        .principal("111111111111", PrincipalKind::User, "alice")
        .await
        .unwrap();
    let issued = tokens.issue(&alice, 60_000).await.unwrap();
    let caller = tokens.verify(&issued.token).await.unwrap();
    assert_eq!(caller.account_id, "111111111111");
    assert_eq!(caller.principal_arn, ALICE_A);

    let refused = |code: ErrorCode| {
        move |r: Result<_, protocol::ApiError>| {
            assert_eq!(r.unwrap_err().code, code);
        }
    };
    let unrecognized = refused(ErrorCode::UnrecognizedClient);

    // A tampered payload (another tenant's subject) under the original signature.
    let parts: Vec<&str> = issued.token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = "arn:aws:iam::222222222222:user/alice".into();
    payload["tenant"] = "222222222222".into();
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    unrecognized(tokens.verify(&tampered).await);

    // alg: none, with and without a signature.
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_string();
    let none = b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}));
    unrecognized(tokens.verify(&format!("{none}.{}.", parts[1])).await);
    unrecognized(
        tokens
            .verify(&format!("{none}.{}.{}", parts[1], parts[2]))
            .await,
    );

    // HS256 "signed" with the public key as the HMAC secret (key confusion).
    let jwks = tokens.jwks().await.unwrap();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let hs_header = b64(&serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}));
    let signing_input = format!("{hs_header}.{}", parts[1]);
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public),
        signing_input.as_bytes(),
    );
    let confused = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    unrecognized(tokens.verify(&confused).await);

    // An unknown kid, and no kid at all.
    let other_kid = b64(&serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "not-a-key"}));
    unrecognized(
        tokens
            .verify(&format!("{other_kid}.{}.{}", parts[1], parts[2]))
            .await,
    );
    let no_kid = b64(&serde_json::json!({"alg": "EdDSA", "typ": "JWT"}));
    unrecognized(
        tokens
            .verify(&format!("{no_kid}.{}.{}", parts[1], parts[2]))
            .await,
    );

    // Properly signed but wrong in substance.
    let mut expired = claims(ALICE_A, "111111111111");
    expired.exp = now_s() - 3_600;
    expired.nbf = now_s() - 7_200;
    refused(ErrorCode::ExpiredToken)(
        tokens
            .verify(&tokens.sign(&expired, now_ms).await.unwrap())
            .await,
    );
    let mut early = claims(ALICE_A, "111111111111");
    early.nbf = now_s() + 3_600;
    early.exp = now_s() + 7_200;
    unrecognized(
        tokens
            .verify(&tokens.sign(&early, now_ms).await.unwrap())
            .await,
    );
    let mut wrong_aud = claims(ALICE_A, "111111111111");
    wrong_aud.aud = "someone-else".into();
    unrecognized(
        tokens
            .verify(&tokens.sign(&wrong_aud, now_ms).await.unwrap())
            .await,
    );
    let mut wrong_iss = claims(ALICE_A, "111111111111");
    wrong_iss.iss = "evil".into();
    unrecognized(
        tokens
            .verify(&tokens.sign(&wrong_iss, now_ms).await.unwrap())
            .await,
    );
    // A subject of one tenant claiming another tenant.
    let cross = claims(ALICE_A, "222222222222");
    unrecognized(
        tokens
            .verify(&tokens.sign(&cross, now_ms).await.unwrap())
            .await,
    );
    // A subject that does not exist.
    let ghost = claims("arn:aws:iam::111111111111:user/ghost", "111111111111");
    unrecognized(
        tokens
            .verify(&tokens.sign(&ghost, now_ms).await.unwrap())
            .await,
    );
    // Garbage and oversize.
    unrecognized(tokens.verify("a.b.c").await);
    unrecognized(tokens.verify(&"a".repeat(10_000)).await);

    // Revoked by id; a disabled tenant's tokens stop too.
    tokens
        .revoke("111111111111", &issued.token_id)
        .await
        .unwrap();
    unrecognized(tokens.verify(&issued.token).await);
    let second = tokens.issue(&alice, 60_000).await.unwrap();
    tokens.verify(&second.token).await.unwrap();
    catalog
        .set_tenant_disabled("111111111111", Some(1))
        .await
        .unwrap();
    unrecognized(tokens.verify(&second.token).await);

    // A principal deleted and made again under its name is another principal: the old
    // one's tokens do not pass for it.
    catalog
        .set_tenant_disabled("111111111111", None)
        .await
        .unwrap();
    let third = tokens.issue(&alice, 60_000).await.unwrap();
    tokens.verify(&third.token).await.unwrap();
    catalog.delete_principal(&alice).await.unwrap();
    let reborn = catalog
        .create_principal("111111111111", PrincipalKind::User, "alice", 0)
        .await
        .unwrap();
    assert_ne!(reborn.id, alice.id);
    unrecognized(tokens.verify(&third.token).await);
    tokens
        .verify(&tokens.issue(&reborn, 60_000).await.unwrap().token)
        .await
        .unwrap();

    // Lifetimes out of bounds are refused at issue.
    assert!(tokens.issue(&alice, 0).await.is_err());
    assert!(tokens.issue(&alice, 13 * 3_600_000).await.is_err());
}
