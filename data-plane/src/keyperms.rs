//! What KMS keys add to Cedar: a grant as the permits it is, and a request's
//! encryption context as
//! `context.encryptionContext` holds it. The authorizer (`authz.rs`) uses these when it
//! loads a tenant's policies and decides a KMS request.

use cedar_policy::PolicyId;
use protocol::kms::key_arn;

use crate::cedarterms::{AuthzError, PrincipalRef};

/// An encryption context as Cedar's `context.encryptionContext` holds it: one
/// `key=value` string per pair, a `%` or `=` in a key written `%25` or `%3D`, so that
/// no two contexts read alike.
pub fn encoded_context(context: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    context
        .iter()
        .map(|(k, v)| format!("{}={v}", k.replace('%', "%25").replace('=', "%3D")))
        .collect()
}

/// A KMS grant as the permits it is: its grantee may perform its operations on its
/// key, under its encryption-context constraint if it has one; its retiring
/// principal (and its grantee, when RetireGrant is one of its operations) may
/// retire this grant and no other.
pub fn grant_permits(
    region: &str,
    grant: &catalog::grants::Grant,
) -> Result<Vec<cedar_policy::Policy>, AuthzError> {
    use catalog::grants::ConstraintKind;
    let key = key_arn(region, &grant.account_id, &grant.key_id);
    let principal = |arn: &str| -> Result<String, AuthzError> {
        let who = PrincipalRef::from_arn(arn).ok_or_else(|| {
            AuthzError::Tenant(format!(
                "grant {}: {arn} is not a principal",
                grant.grant_id
            ))
        })?;
        let kind = if who.kind == "role" { "Role" } else { "User" };
        Ok(format!("Sluice::{kind}::\"{}\"", arn.escape_default()))
    };
    let quoted = |pairs: &[(String, String)]| {
        let map = pairs.iter().cloned().collect();
        encoded_context(&map)
            .iter()
            .map(|p| format!("\"{}\"", p.escape_default()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let condition = match &grant.constraint {
        None => String::new(),
        Some((ConstraintKind::Subset, pairs)) => format!(
            " when {{ context.encryptionContext.containsAll([{}]) }}",
            quoted(pairs)
        ),
        Some((ConstraintKind::Equals, pairs)) => format!(
            " when {{ context.encryptionContext == [{}] }}",
            quoted(pairs)
        ),
    };
    let resource = format!("Sluice::Key::\"{}\"", key.escape_default());
    let grantee = principal(&grant.grantee)?;
    let mut texts = Vec::new();
    let actions: Vec<String> = grant
        .operations
        .iter()
        .filter(|op| op.as_str() != "RetireGrant")
        .map(|op| format!("Sluice::Action::\"kms:{}\"", op.escape_default()))
        .collect();
    if !actions.is_empty() {
        texts.push((
            format!("grant/{}", grant.grant_id),
            format!(
                "permit (principal == {grantee}, action in [{}], resource == {resource}){condition};",
                actions.join(", ")
            ),
        ));
    }
    let mut retirers = Vec::new();
    if let Some(retiring) = &grant.retiring {
        retirers.push(principal(retiring)?);
    }
    if grant.operations.iter().any(|op| op == "RetireGrant") {
        retirers.push(grantee.clone());
    }
    for (i, retirer) in retirers.iter().enumerate() {
        texts.push((
            format!("grant/{}/retire.{i}", grant.grant_id),
            format!(
                "permit (principal == {retirer}, action == Sluice::Action::\"kms:RetireGrant\", \
                 resource == {resource}) when {{ context.grantId == \"{}\" }};",
                grant.grant_id.escape_default()
            ),
        ));
    }
    texts
        .into_iter()
        .map(|(id, text)| {
            cedar_policy::Policy::parse(Some(PolicyId::new(id)), text)
                .map_err(|e| AuthzError::Tenant(format!("grant {}: {e}", grant.grant_id)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use cedar_policy::Decision;
    use edge::Resource;

    use super::*;
    use crate::authz::{Authz, RequestFacts};

    const TENANT: &str = "111111111111";

    fn alice() -> PrincipalRef<'static> {
        PrincipalRef::from_arn("arn:aws:iam::111111111111:user/alice").unwrap()
    }

    fn facts(ip: IpAddr) -> RequestFacts<'static> {
        RequestFacts::plain(ip)
    }

    #[test]
    fn a_grant_permits_its_grantee_its_operations_under_its_constraint() {
        use catalog::grants::{ConstraintKind, Grant};
        let authz = Authz::load().unwrap();
        let key_arn = "arn:aws:kms:us-east-1:111111111111:key/k1";
        let key = Resource::Key {
            account: TENANT,
            arn: key_arn,
        };
        let grant = Grant {
            account_id: TENANT.into(),
            grant_id: "g1".into(),
            key_id: "k1".into(),
            name: String::new(),
            grantee: "arn:aws:iam::111111111111:user/alice".into(),
            retiring: Some("arn:aws:iam::111111111111:user/bob".into()),
            operations: vec!["Decrypt".into()],
            constraint: Some((
                ConstraintKind::Subset,
                vec![("purpose".into(), "billing".into())],
            )),
            created_at_ms: 0,
        };
        let mut set = authz.tenant_set(TENANT, []).unwrap();
        for policy in grant_permits("us-east-1", &grant).unwrap() {
            set.add(policy).unwrap();
        }
        let bob = PrincipalRef::from_arn("arn:aws:iam::111111111111:user/bob").unwrap();
        let decide = |who, action: &str, context: &[String], grant_id: &str| {
            let facts = RequestFacts {
                encryption_context: context,
                grant_id,
                ..facts(IpAddr::from([127, 0, 0, 1]))
            };
            authz.decide_with(&set, who, action, key, facts).unwrap().0
        };
        let billing = ["purpose=billing".to_string(), "team=data".to_string()];
        let other = ["purpose=other".to_string()];
        assert_eq!(
            decide(alice(), "kms:Decrypt", &billing, ""),
            Decision::Allow
        );
        assert_eq!(decide(alice(), "kms:Decrypt", &other, ""), Decision::Deny);
        assert_eq!(decide(alice(), "kms:Encrypt", &billing, ""), Decision::Deny);
        assert_eq!(decide(bob, "kms:Decrypt", &billing, ""), Decision::Deny);
        assert_eq!(decide(bob, "kms:RetireGrant", &[], "g1"), Decision::Allow);
        assert_eq!(decide(bob, "kms:RetireGrant", &[], "g2"), Decision::Deny);
        assert_eq!(
            decide(alice(), "kms:RetireGrant", &[], "g1"),
            Decision::Deny
        );
        // Encoded pairs never read alike: "=" in a key is escaped.
        let tricky = std::collections::BTreeMap::from([("purpose=billing".into(), String::new())]);
        assert_eq!(
            encoded_context(&tricky),
            vec!["purpose%3Dbilling=".to_string()]
        );
    }

    #[test]
    fn a_key_policy_with_an_open_resource_means_its_key() {
        let authz = Authz::load().unwrap();
        let key_id = "k1";
        let doc = r#"permit (principal == Sluice::User::"arn:aws:iam::111111111111:user/alice",
                            action == Sluice::Action::"kms:Encrypt", resource);"#;
        let set = authz
            .tenant_set(TENANT, [(format!("key/{key_id}").as_str(), doc)])
            .unwrap();
        let decide = |arn: &str| {
            let key = Resource::Key {
                account: TENANT,
                arn,
            };
            authz
                .decide_with(
                    &set,
                    alice(),
                    "kms:Encrypt",
                    key,
                    facts(IpAddr::from([127, 0, 0, 1])),
                )
                .unwrap()
                .0
        };
        assert_eq!(
            decide("arn:aws:kms:us-east-1:111111111111:key/k1"),
            Decision::Allow
        );
        assert_eq!(
            decide("arn:aws:kms:us-east-1:111111111111:key/k2"),
            Decision::Deny
        );
        // Naming another key in the key's document is refused.
        let stray = r#"permit (principal, action, resource == Sluice::Key::"arn:aws:kms:us-east-1:111111111111:key/k2");"#;
        assert!(authz.compile(TENANT, "key/k1", stray).is_err());
    }
}
