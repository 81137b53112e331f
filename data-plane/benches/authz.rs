//! What one authorization decision costs, printed as p50/p99 (never asserted):
//! `cargo bench -p sluice-data-plane --bench authz`.
//!
//! Three cases: the platform policies alone (a tenant admin), a tenant with 50 policy
//! documents (a user granted by one of them, with a source-IP condition), and the
//! request path's per-second decision cache (`Authz::authorize` repeating a decision).

use std::net::IpAddr;
use std::time::Instant;

use sluice_data_plane::auth::Caller;
use sluice_data_plane::authz::{Authz, PrincipalRef, RequestFacts, Resource};

const ROUNDS: usize = 20_000;

fn report(label: &str, mut nanos: Vec<u128>) {
    nanos.sort_unstable();
    println!(
        "{label:<48} p50 {:>7} ns   p99 {:>7} ns",
        nanos[nanos.len() / 2],
        nanos[nanos.len() * 99 / 100]
    );
}

fn main() {
    let authz = Authz::load().expect("the embedded policies load");
    let account = "111111111111";
    let arn = "arn:aws:kinesis:us-east-1:111111111111:stream/orders";
    let resource = Resource::Stream {
        account,
        arn,
        name: "orders",
    };
    let facts = RequestFacts {
        source_ip: IpAddr::from([10, 0, 0, 7]),
        tls_version: "TLSv1.3",
        time_s: 0,
        encryption_context: &[],
        grant_id: "",
    };
    let admin = PrincipalRef::from_arn("arn:aws:iam::111111111111:user/admin").unwrap();
    let platform: Vec<u128> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            authz
                .decide(admin, "kinesis:PutRecord", resource, facts)
                .unwrap();
            t.elapsed().as_nanos()
        })
        .collect();
    report("platform policies, tenant admin", platform);

    let documents: Vec<(String, String)> = (0..50)
        .map(|i| {
            (
                format!("team-{i}"),
                format!(
                    "permit (principal == Sluice::User::\"arn:aws:iam::111111111111:user/u{i}\", \
                     action in [Sluice::Action::\"kinesis:PutRecord\", Sluice::Action::\"kinesis:GetRecords\"], \
                     resource) when {{ context.sourceIp.isInRange(ip(\"10.0.0.0/8\")) }};"
                ),
            )
        })
        .collect();
    let set = authz
        .tenant_set(
            account,
            documents.iter().map(|(n, b)| (n.as_str(), b.as_str())),
        )
        .expect("the documents validate");
    let user = PrincipalRef::from_arn("arn:aws:iam::111111111111:user/u49").unwrap();
    let tenant: Vec<u128> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            authz
                .decide_with(&set, user, "kinesis:PutRecord", resource, facts)
                .unwrap();
            t.elapsed().as_nanos()
        })
        .collect();
    report("50 tenant documents, granted user", tenant);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caller = Caller {
        account_id: account.into(),
        principal_arn: "arn:aws:iam::111111111111:user/admin".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        source_ip: Some(IpAddr::from([10, 0, 0, 7])),
        tls_version: Some("TLSv1.3"),
        request_id: "bench".into(),
    };
    let cached: Vec<u128> = runtime.block_on(async {
        let mut out = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            authz
                .authorize(&caller, "kinesis:PutRecord", resource)
                .await
                .unwrap();
            out.push(t.elapsed().as_nanos());
        }
        out
    });
    report("request path, repeated within a second", cached);
}
