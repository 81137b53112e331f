//! IAM JSON key policies read as Cedar. Tools that manage KMS keys (Terraform, the
//! CDK, the console's default) send key policies in IAM's JSON; Sluice decides with
//! Cedar, so such a document is translated into the Cedar policies that mean the same
//! here, and stored as the caller wrote it (GetKeyPolicy gives it back unchanged).
//!
//! What each statement becomes:
//! - a principal that is the account itself (`arn:aws:iam::ACCOUNT:root` or
//!   `ACCOUNT`): AWS's "let IAM policies decide". In Sluice the tenant's own Cedar
//!   policies always take part, so an Allow adds nothing; a Deny forbids everyone.
//! - `"*"`: every principal of the tenant (no other tenant can ever use the key).
//! - a user or role ARN of the tenant: that principal. Principals of other accounts,
//!   service principals and session ARNs name no one here; their statements are skipped.
//! - `Action`: KMS actions, with IAM's `*` wildcards, expanded over the actions a key
//!   has; `Resource` must be `"*"` or the key's own ARN.
//! - An Allow with a `Condition` is skipped (it grants less, never more); a Deny with
//!   one, `NotPrincipal`, `NotAction` and `NotResource` are refused as unsupported.

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

/// The Cedar text an IAM JSON key policy of `account`'s key `key_arn` means, given the
/// actions a key has (`kms:Decrypt`, ...). Errors say what is malformed or unsupported.
pub fn key_policy_to_cedar(
    account: &str,
    key_arn: &str,
    key_actions: &[String],
    json: &str,
) -> Result<String, Vec<String>> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| vec![format!("the key policy is not JSON: {e}")])?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(vec!["the key policy has no Statement".into()]),
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
        if statement.get("Condition").is_some() {
            if allow {
                continue;
            }
            fail("a Deny with a Condition is not supported".into());
            continue;
        }
        // Resource: "*" or this key.
        match statement.get("Resource").map(|r| strings(r, "Resource")) {
            None => fail("Resource is required".into()),
            Some(Err(e)) => fail(e),
            Some(Ok(resources)) => {
                if !resources.iter().any(|r| glob(r, key_arn)) {
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
        let actions: Vec<&String> = key_actions
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
        let cedar = key_policy_to_cedar("111122223333", KEY, &actions(), json).unwrap();
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
                key_policy_to_cedar("111122223333", KEY, &actions(), json).is_err(),
                "{json}"
            );
        }
    }
}
