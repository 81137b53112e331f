//! The Cedar authorizer's decisions, against the platform policies and tenants' own.

use super::*;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    principal: String,
    action: String,
    resource: serde_json::Value,
    source_ip: IpAddr,
    decision: String,
    policies: Vec<String>,
}

fn operator_authz() -> Authz {
    Authz::build(
        None,
        "000000000000".into(),
        "us-east-1".into(),
        None,
        SystemClock::shared(),
    )
    .unwrap()
}

fn facts(ip: IpAddr) -> RequestFacts<'static> {
    RequestFacts::plain(ip)
}

const TENANT: &str = "111111111111";
const ORDERS: &str = "arn:aws:kinesis:us-east-1:111111111111:stream/orders";

fn orders() -> Resource<'static> {
    Resource::Stream {
        account: TENANT,
        arn: ORDERS,
        name: "orders",
    }
}

fn alice() -> PrincipalRef<'static> {
    PrincipalRef::from_arn("arn:aws:iam::111111111111:user/alice").unwrap()
}

/// The decision cases in `policies/cases/*.json`, against the platform policies
/// (the same format `sluice policy test` runs against a tenant's).
#[test]
fn decision_cases_hold() {
    let authz = operator_authz();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/cases");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let cases: Vec<Case> =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        for case in cases {
            let principal = PrincipalRef::from_arn(&case.principal).unwrap();
            let arn_parts;
            let resource = if let Some(arn) = case.resource["key"].as_str() {
                Resource::Key {
                    account: arn.split(':').nth(4).unwrap(),
                    arn,
                }
            } else if let Some(arn) = case.resource["stream"].as_str() {
                let parsed = protocol::arn::StreamArn::parse(arn).unwrap();
                arn_parts = (parsed.account_id, parsed.stream_name);
                Resource::Stream {
                    account: &arn_parts.0,
                    arn,
                    name: &arn_parts.1,
                }
            } else {
                Resource::Tenant {
                    account: case.resource["tenant"].as_str().unwrap(),
                }
            };
            let (decision, reasons) = authz
                .decide(principal, &case.action, resource, facts(case.source_ip))
                .unwrap();
            let expected = if case.decision == "Allow" {
                Decision::Allow
            } else {
                Decision::Deny
            };
            assert_eq!(decision, expected, "{}", case.name);
            for policy in &case.policies {
                assert!(
                    reasons.contains(policy),
                    "{}: {policy} not among {reasons:?}",
                    case.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} decision cases");
}

#[test]
fn an_unknown_action_is_an_error_not_a_silent_deny() {
    let authz = Authz::load().unwrap();
    let resource = Resource::Tenant { account: TENANT };
    assert!(
        authz
            .decide(
                alice(),
                "kinesis:PutRecordz",
                resource,
                facts(IpAddr::from([127, 0, 0, 1]))
            )
            .is_err()
    );
}

#[test]
fn tenant_policies_grant_within_the_tenant_and_never_across() {
    let authz = operator_authz();
    let doc = r#"
        @id("writers")
        permit (principal == Sluice::User::"arn:aws:iam::111111111111:user/alice",
                action in [Sluice::Action::"kinesis:PutRecord"], resource);
        @id("everyone-everywhere")
        permit (principal, action, resource);
    "#;
    let set = authz.tenant_set(TENANT, [("team", doc)]).unwrap();
    let ip = facts(IpAddr::from([10, 0, 0, 7]));
    let (d, why) = authz
        .decide_with(&set, alice(), "kinesis:PutRecord", orders(), ip)
        .unwrap();
    assert_eq!(d, Decision::Allow);
    assert!(why.contains(&"team/writers".to_string()), "{why:?}");
    // Even "permit everything" stops at the tenant's edge.
    let other = Resource::Stream {
        account: "222222222222",
        arn: "arn:aws:kinesis:us-east-1:222222222222:stream/orders",
        name: "orders",
    };
    let (d, why) = authz
        .decide_with(&set, alice(), "kinesis:PutRecord", other, ip)
        .unwrap();
    assert_eq!(d, Decision::Deny);
    assert_eq!(why, vec!["platform-forbid-cross-tenant".to_string()]);
    // And a tenant may not make itself an operator.
    let (d, _) = authz
        .decide_with(
            &set,
            alice(),
            "sluice:CreateTenant",
            Resource::Tenant { account: TENANT },
            ip,
        )
        .unwrap();
    assert_eq!(d, Decision::Deny);
}

#[test]
fn conditions_see_source_ip_and_tls_version() {
    let authz = operator_authz();
    let doc = r#"
        permit (principal, action == Sluice::Action::"kinesis:GetRecords", resource)
        when { context.sourceIp.isInRange(ip("10.0.0.0/8")) && context.tlsVersion == "TLSv1.3" };
    "#;
    let set = authz.tenant_set(TENANT, [("net", doc)]).unwrap();
    let decide = |ip: [u8; 4], tls: &str| {
        authz
            .decide_with(
                &set,
                alice(),
                "kinesis:GetRecords",
                orders(),
                RequestFacts {
                    source_ip: IpAddr::from(ip),
                    tls_version: tls,
                    time_s: 0,
                    encryption_context: &[],
                    grant_id: "",
                },
            )
            .unwrap()
            .0
    };
    assert_eq!(decide([10, 1, 2, 3], "TLSv1.3"), Decision::Allow);
    assert_eq!(decide([192, 168, 0, 1], "TLSv1.3"), Decision::Deny);
    assert_eq!(decide([10, 1, 2, 3], "TLSv1.2"), Decision::Deny);
}

/// A consumer group is in its stream: a permit on the stream covers its groups; a
/// permit on one group does not cover another, nor another tenant's.
#[test]
fn a_group_is_in_its_stream() {
    let authz = operator_authz();
    let group = |name: &'static str, arn: &'static str| Resource::Group {
        account: TENANT,
        arn,
        name,
        stream_arn: ORDERS,
        stream_name: "orders",
    };
    let billing = group(
        "billing",
        "arn:aws:kinesis:us-east-1:111111111111:stream/orders/group/billing",
    );
    let audit = group(
        "audit",
        "arn:aws:kinesis:us-east-1:111111111111:stream/orders/group/audit",
    );
    let decide = |set: &cedar_policy::PolicySet, resource| {
        authz
            .decide_with(
                set,
                alice(),
                "kinesis:CheckpointConsumerGroup",
                resource,
                RequestFacts::plain(IpAddr::from([10, 0, 0, 1])),
            )
            .unwrap()
            .0
    };
    let on_stream = format!(
        r#"permit (principal, action == Sluice::Action::"kinesis:CheckpointConsumerGroup", resource in Sluice::Stream::"{ORDERS}");"#
    );
    let set = authz
        .tenant_set(TENANT, [("s", on_stream.as_str())])
        .unwrap();
    assert_eq!(decide(&set, billing), Decision::Allow);
    assert_eq!(decide(&set, audit), Decision::Allow);
    let on_group = r#"permit (principal, action, resource == Sluice::ConsumerGroup::"arn:aws:kinesis:us-east-1:111111111111:stream/orders/group/billing");"#;
    let set = authz.tenant_set(TENANT, [("g", on_group)]).unwrap();
    assert_eq!(decide(&set, billing), Decision::Allow);
    assert_eq!(decide(&set, audit), Decision::Deny);
    let elsewhere = Resource::Group {
        account: "222222222222",
        arn: "arn:aws:kinesis:us-east-1:222222222222:stream/orders/group/billing",
        name: "billing",
        stream_arn: "arn:aws:kinesis:us-east-1:222222222222:stream/orders",
        stream_name: "orders",
    };
    let everything = "permit (principal, action, resource);";
    let set = authz.tenant_set(TENANT, [("all", everything)]).unwrap();
    assert_eq!(decide(&set, elsewhere), Decision::Deny);
}

#[test]
fn documents_are_validated_strictly_and_attachments_checked() {
    let authz = operator_authz();
    let errors = |name: &str, body: &str| authz.compile(TENANT, name, body).unwrap_err();
    // A typo in an entity type, an attribute and an action: errors, not no-matches.
    assert!(
        !errors(
            "t",
            r#"permit (principal is Sluice::Usr, action, resource);"#
        )
        .is_empty()
    );
    assert!(
        !errors(
            "t",
            "permit (principal, action, resource) when { principal.admn };"
        )
        .is_empty()
    );
    assert!(
        !errors(
            "t",
            r#"permit (principal, action == Sluice::Action::"kinesis:PutRecordz", resource);"#
        )
        .is_empty()
    );
    assert!(!errors("t", "permit (principal, action, resource").is_empty());
    assert!(!errors("t", "").is_empty());
    assert!(!errors("t", "permit (principal == ?principal, action, resource);").is_empty());
    // A stream's document may only speak about that stream.
    let on_orders =
        format!(r#"permit (principal, action, resource == Sluice::Stream::"{ORDERS}");"#);
    assert!(authz.compile(TENANT, "stream/orders", &on_orders).is_ok());
    assert!(!errors("stream/payments", &on_orders).is_empty());
    assert!(!errors("stream/orders", "permit (principal, action, resource);").is_empty());
    // A principal's document only about that principal.
    // A key policy only about that key.
    let on_key = r#"permit (principal, action == Sluice::Action::"kms:Decrypt", resource == Sluice::Key::"arn:aws:kms:us-east-1:111111111111:key/k1");"#;
    assert!(authz.compile(TENANT, "key/k1", on_key).is_ok());
    assert!(!errors("key/k2", on_key).is_empty());
    let for_alice = r#"permit (principal == Sluice::User::"arn:aws:iam::111111111111:user/alice", action, resource);"#;
    assert!(
        authz
            .compile(TENANT, "principal/user/alice", for_alice)
            .is_ok()
    );
    assert!(!errors("principal/user/bob", for_alice).is_empty());
}

#[tokio::test]
async fn repeated_decisions_agree_with_fresh_ones() {
    let authz = Authz::load().unwrap();
    let caller = Caller {
        account_id: TENANT.into(),
        principal_arn: "arn:aws:iam::111111111111:user/admin".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        source_ip: Some(IpAddr::from([10, 0, 0, 7])),
        tls_version: Some("TLSv1.3"),
        request_id: "r".into(),
    };
    let other = Resource::Stream {
        account: "222222222222",
        arn: "arn:aws:kinesis:us-east-1:222222222222:stream/orders",
        name: "orders",
    };
    for _ in 0..3 {
        assert!(
            authz
                .authorize(&caller, "kinesis:PutRecord", orders())
                .await
                .is_ok()
        );
        let denied = authz
            .authorize(&caller, "kinesis:PutRecord", other)
            .await
            .unwrap_err();
        assert_eq!(denied.code, ErrorCode::AccessDenied);
        assert!(denied.message.contains("kinesis:PutRecord"));
        assert!(denied.message.contains("222222222222:stream/orders"));
    }
}

#[test]
fn principal_arns_parse() {
    let p = PrincipalRef::from_arn("arn:aws:iam::123456789012:role/reader").unwrap();
    assert_eq!(
        (p.account, p.kind, p.name),
        ("123456789012", "role", "reader")
    );
    assert!(PrincipalRef::from_arn("arn:aws:iam::123456789012:group/x").is_none());
}
