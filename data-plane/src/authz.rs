//! Authorization: every request is decided by Cedar before its operation runs.
//!
//! The schema (`policies/sluice.cedarschema`) and the platform policies
//! (`policies/platform.cedar`) are embedded and validated in strict mode at start; a
//! policy that does not validate stops the server. Default deny: a request is allowed
//! only if some policy permits it and none forbids it, and the platform forbids every
//! cross-tenant access whatever else is permitted.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use protocol::{ApiError, ErrorCode};

use crate::auth::Caller;

pub const SCHEMA: &str = include_str!("../../policies/sluice.cedarschema");
pub const PLATFORM_POLICIES: &str = include_str!("../../policies/platform.cedar");

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("the Cedar schema does not parse: {0}")]
    Schema(String),
    #[error("the platform policies do not parse: {0}")]
    Parse(String),
    #[error("the platform policies do not validate against the schema: {0}")]
    Invalid(String),
    #[error("building the authorization request: {0}")]
    Request(String),
}

/// What a request acts on.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// A stream, by its ARN's parts.
    Stream {
        account: &'a str,
        arn: &'a str,
        name: &'a str,
    },
    /// A tenant as a whole (ListStreams, DescribeLimits).
    Tenant { account: &'a str },
}

/// Who asks, as Cedar sees it.
#[derive(Debug, Clone, Copy)]
pub struct PrincipalRef<'a> {
    pub account: &'a str,
    /// `user` or `role`.
    pub kind: &'a str,
    pub name: &'a str,
}

impl<'a> PrincipalRef<'a> {
    /// The principal behind an IAM-style ARN, `arn:aws:iam::<account>:<kind>/<name>`.
    pub fn from_arn(arn: &'a str) -> Option<Self> {
        let rest = arn.strip_prefix("arn:aws:iam::")?;
        let (account, rest) = rest.split_once(':')?;
        let (kind, name) = rest.split_once('/')?;
        matches!(kind, "user" | "role").then_some(PrincipalRef {
            account,
            kind,
            name,
        })
    }
}

pub struct Authz {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, AuthzError> {
    let type_name =
        EntityTypeName::from_str(type_name).map_err(|e| AuthzError::Request(e.to_string()))?;
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
}

fn entity(
    uid: EntityUid,
    attrs: Vec<(&str, RestrictedExpression)>,
    parents: Vec<EntityUid>,
) -> Result<Entity, AuthzError> {
    let attrs: HashMap<String, RestrictedExpression> =
        attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let parents: HashSet<EntityUid> = parents.into_iter().collect();
    Entity::new(uid, attrs, parents).map_err(|e| AuthzError::Request(e.to_string()))
}

impl Authz {
    /// Parses and strictly validates the embedded schema and platform policies.
    pub fn load() -> Result<Authz, AuthzError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| AuthzError::Schema(e.to_string()))?;
        let policies =
            PolicySet::from_str(PLATFORM_POLICIES).map_err(|e| AuthzError::Parse(e.to_string()))?;
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
            return Err(AuthzError::Invalid(errors.join("; ")));
        }
        Ok(Authz {
            schema,
            policies,
            authorizer: Authorizer::new(),
        })
    }

    /// The decision and the ids of the policies that made it.
    pub fn decide(
        &self,
        principal: PrincipalRef<'_>,
        action: &str,
        resource: Resource<'_>,
        source_ip: IpAddr,
        now_s: i64,
    ) -> Result<(Decision, Vec<String>), AuthzError> {
        let principal_type = if principal.kind == "role" {
            "Sluice::Role"
        } else {
            "Sluice::User"
        };
        let principal_arn = format!(
            "arn:aws:iam::{}:{}/{}",
            principal.account, principal.kind, principal.name
        );
        let principal_uid = uid(principal_type, &principal_arn)?;
        let principal_tenant = uid("Sluice::Tenant", principal.account)?;
        let admin = principal.kind == "user"
            && principal.name == control_plane::identity::BOOTSTRAP_PRINCIPAL;
        let mut entities = vec![
            entity(
                principal_uid.clone(),
                vec![
                    (
                        "tenant",
                        RestrictedExpression::new_string(principal.account.to_string()),
                    ),
                    ("admin", RestrictedExpression::new_bool(admin)),
                ],
                vec![principal_tenant.clone()],
            )?,
            entity(
                principal_tenant,
                vec![(
                    "tenant",
                    RestrictedExpression::new_string(principal.account.to_string()),
                )],
                vec![],
            )?,
        ];
        let resource_uid = match resource {
            Resource::Stream { account, arn, name } => {
                let tenant = uid("Sluice::Tenant", account)?;
                let stream = uid("Sluice::Stream", arn)?;
                entities.push(entity(
                    stream.clone(),
                    vec![
                        (
                            "tenant",
                            RestrictedExpression::new_string(account.to_string()),
                        ),
                        ("name", RestrictedExpression::new_string(name.to_string())),
                    ],
                    vec![tenant.clone()],
                )?);
                if account != principal.account {
                    entities.push(entity(
                        tenant,
                        vec![(
                            "tenant",
                            RestrictedExpression::new_string(account.to_string()),
                        )],
                        vec![],
                    )?);
                }
                stream
            }
            Resource::Tenant { account } => {
                let tenant = uid("Sluice::Tenant", account)?;
                if account != principal.account {
                    entities.push(entity(
                        tenant.clone(),
                        vec![(
                            "tenant",
                            RestrictedExpression::new_string(account.to_string()),
                        )],
                        vec![],
                    )?);
                }
                tenant
            }
        };
        let entities = Entities::from_entities(entities, Some(&self.schema))
            .map_err(|e| AuthzError::Request(e.to_string()))?;
        let action_uid = uid("Sluice::Action", action)?;
        let context = Context::from_pairs([
            (
                "sourceIp".to_string(),
                RestrictedExpression::new_ip(source_ip.to_string()),
            ),
            ("time".to_string(), RestrictedExpression::new_long(now_s)),
        ])
        .map_err(|e| AuthzError::Request(e.to_string()))?;
        let request = Request::new(
            principal_uid,
            action_uid,
            resource_uid,
            context,
            Some(&self.schema),
        )
        .map_err(|e| AuthzError::Request(e.to_string()))?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        // Policies are named by their `@id` annotation where they have one.
        let reasons = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.policies
                    .policy(id)
                    .and_then(|p| p.annotation("id"))
                    .map_or_else(|| id.to_string(), str::to_string)
            })
            .collect();
        Ok((response.decision(), reasons))
    }

    /// Allows the caller's request or answers `AccessDeniedException` naming the action
    /// and resource, as AWS words it.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
    ) -> Result<(), ApiError> {
        let Some(principal) = PrincipalRef::from_arn(&caller.principal_arn) else {
            tracing::error!(principal = %caller.principal_arn, "caller has no principal ARN");
            return Err(ApiError::internal());
        };
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let source_ip = caller.source_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let (decision, reasons) = self
            .decide(principal, action, resource, source_ip, now_s)
            .map_err(|e| {
                tracing::error!(error = %e, "authorization request could not be built");
                ApiError::internal()
            })?;
        tracing::debug!(principal = %caller.principal_arn, action, decision = ?decision, policies = ?reasons, "authorization");
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny => {
                let resource = match resource {
                    Resource::Stream { arn, .. } => arn.to_string(),
                    Resource::Tenant { account } => format!("arn:aws:kinesis:*:{account}:*"),
                };
                Err(ApiError::new(
                    ErrorCode::AccessDenied,
                    format!(
                        "User: {} is not authorized to perform: {action} on resource: {resource}",
                        caller.principal_arn
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        principal: CasePrincipal,
        action: String,
        resource: serde_json::Value,
        source_ip: IpAddr,
        decision: String,
        policies: Vec<String>,
    }

    #[derive(serde::Deserialize)]
    struct CasePrincipal {
        kind: String,
        account: String,
        name: String,
    }

    /// The decision cases in `policies/cases/*.json`, against the platform policies.
    #[test]
    fn decision_cases_hold() {
        let authz = Authz::load().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/cases");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let cases: Vec<Case> =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            for case in cases {
                let principal = PrincipalRef {
                    account: &case.principal.account,
                    kind: &case.principal.kind,
                    name: &case.principal.name,
                };
                let arn_parts;
                let resource = if let Some(arn) = case.resource["stream"].as_str() {
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
                    .decide(principal, &case.action, resource, case.source_ip, 0)
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
        assert!(checked >= 5, "only {checked} decision cases");
    }

    #[test]
    fn an_unknown_action_is_an_error_not_a_silent_deny() {
        let authz = Authz::load().unwrap();
        let principal = PrincipalRef {
            account: "111111111111",
            kind: "user",
            name: "alice",
        };
        let resource = Resource::Tenant {
            account: "111111111111",
        };
        assert!(
            authz
                .decide(
                    principal,
                    "kinesis:PutRecordz",
                    resource,
                    IpAddr::from([127, 0, 0, 1]),
                    0
                )
                .is_err()
        );
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

    /// What one decision costs; printed, never asserted (`cargo test -p
    /// sluice-data-plane --release authz_cost -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn authz_cost() {
        let authz = Authz::load().unwrap();
        let principal = PrincipalRef {
            account: "111111111111",
            kind: "user",
            name: "alice",
        };
        let resource = Resource::Stream {
            account: "111111111111",
            arn: "arn:aws:kinesis:us-east-1:111111111111:stream/orders",
            name: "orders",
        };
        let mut micros: Vec<u128> = (0..20_000)
            .map(|_| {
                let t = std::time::Instant::now();
                authz
                    .decide(
                        principal,
                        "kinesis:PutRecord",
                        resource,
                        IpAddr::from([10, 0, 0, 7]),
                        0,
                    )
                    .unwrap();
                t.elapsed().as_nanos()
            })
            .collect();
        micros.sort_unstable();
        println!(
            "authorization decision: p50 {} ns, p99 {} ns",
            micros[micros.len() / 2],
            micros[micros.len() * 99 / 100]
        );
    }
}
