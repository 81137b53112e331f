//! Resource policies in IAM JSON read as Cedar: KMS key policies and SQS queue
//! policies. Tools that manage keys and queues (Terraform, the CDK, the consoles'
//! defaults, AddPermission) write these in IAM's JSON; Sluice decides with Cedar, so
//! such a document is translated into the Cedar policies that mean the same here, and
//! stored as the caller wrote it (GetKeyPolicy and GetQueueAttributes give it back
//! unchanged). The policies are then bound to their one resource (`bind_to`).
//!
//! What each statement becomes:
//! - a principal that is the account itself (`arn:aws:iam::ACCOUNT:root` or
//!   `ACCOUNT`): AWS's "let IAM policies decide". In Sluice the tenant's own Cedar
//!   policies always take part, so an Allow adds nothing; a Deny forbids everyone.
//! - `"*"`: every principal of the tenant (no other tenant can ever use the key).
//! - a user or role ARN of the tenant: that principal. Principals of other accounts,
//!   service principals and session ARNs name no one here; their statements are skipped.
//! - `Action`: the service's actions, with IAM's `*` wildcards, expanded over the
//!   actions the resource has; `Resource` is `"*"`, the resource's own ARN or a pattern
//!   matching it (a statement about other resources is skipped).
//! - An Allow with a `Condition` is skipped (it grants less, never more). A Deny whose
//!   only condition is `aws:SecureTransport` false is skipped too (Sluice answers only
//!   over TLS, so it never applies); a Deny with any other condition, `NotPrincipal`,
//!   `NotAction` and `NotResource` are refused as unsupported.

use cedar_policy::{PolicySet, ResourceConstraint};

use serde_json::Value;

/// A one-value-or-list JSON member as a list of strings.
fn strings(value: &Value, member: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{member} must hold strings"))
            })
            .collect(),
        _ => Err(format!("{member} must be a string or a list of strings")),
    }
}

/// IAM's wildcard match (`*` any run, `?` one character), case-insensitive as IAM
/// compares action names.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn cedar_string(text: &str) -> String {
    format!("\"{}\"", text.escape_default())
}

/// Whether a condition block says only "when the request is not over TLS".
fn only_insecure_transport(condition: &Value) -> bool {
    let Some(ops) = condition.as_object() else {
        return false;
    };
    !ops.is_empty()
        && ops.iter().all(|(op, tests)| {
            op == "Bool"
                && tests.as_object().is_some_and(|t| {
                    !t.is_empty()
                        && t.iter().all(|(k, v)| {
                            k.eq_ignore_ascii_case("aws:SecureTransport")
                                && (v == "false"
                                    || v == &Value::Bool(false)
                                    || v == &serde_json::json!(["false"]))
                        })
                })
        })
}

/// The Cedar text an IAM JSON policy attached to `account`'s resource `resource_arn`
/// means, given the actions that resource has (`kms:Decrypt`, `sqs:SendMessage`, ...).
/// Errors say what is malformed or unsupported.
pub fn resource_policy_to_cedar(
    account: &str,
    resource_arn: &str,
    resource_actions: &[String],
    json: &str,
) -> Result<String, Vec<String>> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| vec![format!("the policy is not JSON: {e}")])?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(vec!["the policy has no Statement".into()]),
    };
    let mut errors = Vec::new();
    // The account's admin may do everything anyway; this keeps a policy whose
    // statements all delegate to the account a valid document.
    let mut out = vec![
        "@id(\"iam-delegation\")\npermit (principal, action, resource) when { principal.admin };"
            .to_string(),
    ];
    let root_arn = format!("arn:aws:iam::{account}:root");
    for (index, statement) in statements.iter().enumerate() {
        let label = statement
            .get("Sid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(|| format!("statement{index}"), str::to_string);
        let mut fail = |why: String| errors.push(format!("statement {label}: {why}"));
        for unsupported in ["NotPrincipal", "NotAction", "NotResource"] {
            if statement.get(unsupported).is_some() {
                fail(format!("{unsupported} is not supported"));
            }
        }
        let allow = match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => {
                fail("Effect must be Allow or Deny".into());
                continue;
            }
        };
        if let Some(condition) = statement.get("Condition") {
            if allow || only_insecure_transport(condition) {
                continue;
            }
            fail("a Deny with a Condition is not supported".into());
            continue;
        }
        // Resource: "*", this resource, or a pattern matching it.
        match statement.get("Resource").map(|r| strings(r, "Resource")) {
            None => fail("Resource is required".into()),
            Some(Err(e)) => fail(e),
            Some(Ok(resources)) => {
                if !resources.iter().any(|r| glob(r, resource_arn)) {
                    continue;
                }
            }
        }
        let patterns = match statement.get("Action").map(|a| strings(a, "Action")) {
            Some(Ok(patterns)) => patterns,
            Some(Err(e)) => {
                fail(e);
                continue;
            }
            None => {
                fail("Action is required".into());
                continue;
            }
        };
        let actions: Vec<&String> = resource_actions
            .iter()
            .filter(|a| patterns.iter().any(|p| glob(p, a)))
            .collect();
        if actions.is_empty() {
            continue;
        }
        let action_list = actions
            .iter()
            .map(|a| format!("Sluice::Action::{}", cedar_string(a)))
            .collect::<Vec<_>>()
            .join(", ");
        let principals = match statement.get("Principal") {
            Some(Value::String(s)) if s == "*" => vec!["*".to_string()],
            Some(Value::Object(map)) => match map.get("AWS") {
                Some(aws) => match strings(aws, "Principal.AWS") {
                    Ok(list) => list,
                    Err(e) => {
                        fail(e);
                        continue;
                    }
                },
                // Service principals name nothing that calls Sluice.
                None => continue,
            },
            _ => {
                fail("Principal must be \"*\" or {\"AWS\": ...}".into());
                continue;
            }
        };
        let effect = if allow { "permit" } else { "forbid" };
        for (n, principal) in principals.iter().enumerate() {
            let scope = if principal == "*" {
                "principal".to_string()
            } else if principal == &root_arn || principal == account {
                if allow {
                    continue;
                }
                "principal".to_string()
            } else if let Some(rest) = principal.strip_prefix(&format!("arn:aws:iam::{account}:")) {
                match rest.split_once('/') {
                    Some(("user", name)) if !name.is_empty() => {
                        format!("principal == Sluice::User::{}", cedar_string(principal))
                    }
                    Some(("role", name)) if !name.is_empty() => {
                        format!("principal == Sluice::Role::{}", cedar_string(principal))
                    }
                    _ => continue,
                }
            } else {
                continue;
            };
            out.push(format!(
                "@id({})\n{effect} ({scope}, action in [{action_list}], resource);",
                cedar_string(&format!("{label}.{n}"))
            ));
        }
    }
    if errors.is_empty() {
        Ok(out.join("\n"))
    } else {
        Err(errors)
    }
}

/// `set` with every policy whose resource is open bound to the resource `arn` of
/// Cedar type `entity_type` (`Sluice::Key`, `Sluice::MessageQueue`): an attached
/// policy's open resource, as IAM's `"Resource": "*"`, means its own resource.
pub(crate) fn bind_to(
    set: &PolicySet,
    entity_type: &str,
    arn: &str,
) -> Result<PolicySet, Vec<String>> {
    let mut bound = PolicySet::new();
    for policy in set.policies() {
        let policy = if policy.resource_constraint() == ResourceConstraint::Any {
            let mut json = policy.to_json().map_err(|e| vec![e.to_string()])?;
            json["resource"] = serde_json::json!({
                "op": "==",
                "entity": { "type": entity_type, "id": arn },
            });
            cedar_policy::Policy::from_json(Some(policy.id().clone()), json)
                .map_err(|e| vec![e.to_string()])?
        } else {
            policy.clone()
        };
        bound.add(policy).map_err(|e| vec![e.to_string()])?;
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

    fn actions() -> Vec<String> {
        [
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob("kms:*", "kms:Decrypt"));
        assert!(glob("KMS:decrypt", "kms:Decrypt"));
        assert!(glob("kms:Describe*", "kms:DescribeKey"));
        assert!(!glob("kms:Describe*", "kms:Decrypt"));
        assert!(glob("kms:?ncrypt", "kms:Encrypt"));
        assert!(glob("*", KEY));
    }

    #[test]
    fn statements_become_permits_and_forbids() {
        let json = r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "app", "Effect": "Allow",
             "Principal": {"AWS": ["arn:aws:iam::111122223333:role/app", "arn:aws:iam::999999999999:root"]},
             "Action": ["kms:Decrypt", "kms:Describe*"], "Resource": "*"},
            {"Sid": "nobody", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
            {"Sid": "conditional", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
            {"Sid": "service", "Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"},
             "Action": "kms:*", "Resource": "*"}
        ]}"#;
        let cedar = resource_policy_to_cedar("111122223333", KEY, &actions(), json).unwrap();
        assert!(cedar.contains(
            "permit (principal == Sluice::Role::\"arn:aws:iam::111122223333:role/app\", action in [Sluice::Action::\"kms:Decrypt\", Sluice::Action::\"kms:DescribeKey\"], resource);"
        ), "{cedar}");
        assert!(cedar.contains(
            "forbid (principal, action in [Sluice::Action::\"kms:Encrypt\"], resource);"
        ));
        // The root delegation, the other account, the condition and the service add nothing.
        assert_eq!(cedar.matches("permit").count(), 2, "{cedar}");
    }

    #[test]
    fn what_cannot_be_meant_here_is_refused() {
        for json in [
            "not json",
            r#"{"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "kms:*", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {}}]}"#,
            r#"{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}"#,
            r#"{"Version": "2012-10-17"}"#,
        ] {
            assert!(
                resource_policy_to_cedar("111122223333", KEY, &actions(), json).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn a_deny_only_of_plain_http_never_applies() {
        let json = r#"{"Statement": [
            {"Sid": "tls", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]}"#;
        let cedar = resource_policy_to_cedar("111122223333", KEY, &actions(), json).unwrap();
        assert!(!cedar.contains("forbid"), "{cedar}");
        let other = r#"{"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
        ]}"#;
        assert!(resource_policy_to_cedar("111122223333", KEY, &actions(), other).is_err());
    }

    #[test]
    fn a_queue_policy_decides_for_its_queue_alone() {
        use std::net::IpAddr;

        use cedar_policy::Decision;
        use edge::Resource;

        use crate::authz::{Authz, RequestFacts};
        use crate::cedarterms::PrincipalRef;

        let tenant = "111111111111";
        let authz = Authz::load().unwrap();
        let queue = "arn:aws:sqs:us-east-1:111111111111:jobs";
        let json = format!(
            r#"{{"Version": "2012-10-17", "Statement": [
                {{"Sid": "workers", "Effect": "Allow",
                  "Principal": {{"AWS": "arn:aws:iam::111111111111:user/alice"}},
                  "Action": ["SQS:ReceiveMessage", "sqs:Delete*"], "Resource": "{queue}"}},
                {{"Sid": "no-purge", "Effect": "Deny", "Principal": "*",
                  "Action": "sqs:PurgeQueue", "Resource": "*"}}
            ]}}"#
        );
        let set = authz
            .tenant_set(tenant, [("sqs/jobs", json.as_str())])
            .unwrap();
        let alice = PrincipalRef::from_arn("arn:aws:iam::111111111111:user/alice").unwrap();
        let decide = |action: &str, arn: &str| {
            let resource = Resource::MessageQueue {
                account: tenant,
                arn,
            };
            let facts = RequestFacts::plain(IpAddr::from([127, 0, 0, 1]));
            authz
                .decide_with(&set, alice, action, resource, facts)
                .unwrap()
                .0
        };
        assert_eq!(decide("sqs:ReceiveMessage", queue), Decision::Allow);
        assert_eq!(decide("sqs:DeleteMessage", queue), Decision::Allow);
        assert_eq!(decide("sqs:PurgeQueue", queue), Decision::Deny);
        assert_eq!(decide("sqs:SendMessage", queue), Decision::Deny);
        let other = "arn:aws:sqs:us-east-1:111111111111:other";
        assert_eq!(decide("sqs:ReceiveMessage", other), Decision::Deny);
        // A statement about another queue is no part of this one's policy.
        let elsewhere = r#"{"Statement": [{"Effect": "Allow", "Principal": "*",
            "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:111111111111:other"}]}"#;
        let set = authz.tenant_set(tenant, [("sqs/jobs", elsewhere)]).unwrap();
        let facts = RequestFacts::plain(IpAddr::from([127, 0, 0, 1]));
        let other_queue = Resource::MessageQueue {
            account: tenant,
            arn: other,
        };
        assert_eq!(
            authz
                .decide_with(&set, alice, "sqs:SendMessage", other_queue, facts)
                .unwrap()
                .0,
            Decision::Deny
        );
        // Cedar naming another queue is refused in this queue's document.
        let stray = r#"permit (principal, action, resource == Sluice::MessageQueue::"arn:aws:sqs:us-east-1:111111111111:other");"#;
        assert!(authz.compile(tenant, "sqs/jobs", stray).is_err());
    }
}
