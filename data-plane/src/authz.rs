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
    /// A tenant as a whole (ListStreams, DescribeLimits, CreateKey, ListKeys).
    Tenant { account: &'a str },
    /// A KMS key, by its key ARN (or the alias ARN a request named it by).
    Key { account: &'a str, arn: &'a str },
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

/// The schema's entity types, parsed once (parsing a name is a Cedar parse).
struct Types {
    tenant: EntityTypeName,
    user: EntityTypeName,
    role: EntityTypeName,
    stream: EntityTypeName,
    key: EntityTypeName,
    action: EntityTypeName,
}

/// (principal ARN, action, resource, source IP): with the time in whole seconds, all a
/// decision depends on while the policies are fixed.
type DecisionKey = (String, String, String, IpAddr);
/// Decisions remembered within one second, at most.
const DECISIONS_PER_SECOND_MAX: usize = 10_000;

pub struct Authz {
    types: Types,
    /// Decisions of the current second. A decision costs tens of microseconds (Cedar
    /// builds and closes the entity graph each time); a second's repeats reuse it.
    /// INVARIANT: the policies never change while an `Authz` lives; policy changes
    /// will have to clear this.
    decisions: std::sync::Mutex<(i64, HashMap<DecisionKey, Decision>)>,
    policies: PolicySet,
    authorizer: Authorizer,
    /// The schema's actions; a request names one of them or is an error.
    actions: HashSet<EntityUid>,
}

fn type_name(name: &str) -> Result<EntityTypeName, AuthzError> {
    EntityTypeName::from_str(name).map_err(|e| AuthzError::Schema(e.to_string()))
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
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
        let actions = schema.actions().cloned().collect();
        let types = Types {
            tenant: type_name("Sluice::Tenant")?,
            user: type_name("Sluice::User")?,
            role: type_name("Sluice::Role")?,
            stream: type_name("Sluice::Stream")?,
            key: type_name("Sluice::Key")?,
            action: type_name("Sluice::Action")?,
        };
        Ok(Authz {
            types,
            decisions: std::sync::Mutex::new((0, HashMap::new())),
            policies,
            authorizer: Authorizer::new(),
            actions,
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
            &self.types.role
        } else {
            &self.types.user
        };
        let principal_arn = format!(
            "arn:aws:iam::{}:{}/{}",
            principal.account, principal.kind, principal.name
        );
        let principal_uid = uid(principal_type, &principal_arn);
        let principal_tenant = uid(&self.types.tenant, principal.account);
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
                let tenant = uid(&self.types.tenant, account);
                let stream = uid(&self.types.stream, arn);
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
            Resource::Key { account, arn } => {
                let tenant = uid(&self.types.tenant, account);
                let key = uid(&self.types.key, arn);
                entities.push(entity(
                    key.clone(),
                    vec![(
                        "tenant",
                        RestrictedExpression::new_string(account.to_string()),
                    )],
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
                key
            }
            Resource::Tenant { account } => {
                let tenant = uid(&self.types.tenant, account);
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
        // The entities and request are built here from typed values, and every policy
        // was validated against the schema at start, so they are not validated again
        // per request: that validation was most of a decision's cost (measured; see
        // the identity issue's note). The action must still be one of the schema's.
        let entities = Entities::from_entities(entities, None)
            .map_err(|e| AuthzError::Request(e.to_string()))?;
        let action_uid = uid(&self.types.action, action);
        let context = Context::from_pairs([
            (
                "sourceIp".to_string(),
                RestrictedExpression::new_ip(source_ip.to_string()),
            ),
            ("time".to_string(), RestrictedExpression::new_long(now_s)),
        ])
        .map_err(|e| AuthzError::Request(e.to_string()))?;
        if !self.actions.contains(&action_uid) {
            return Err(AuthzError::Request(format!(
                "{action} is not an action of the schema"
            )));
        }
        let request = Request::new(principal_uid, action_uid, resource_uid, context, None)
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
        let resource_id = match resource {
            Resource::Stream { arn, .. } | Resource::Key { arn, .. } => arn.to_string(),
            Resource::Tenant { account } => account.to_string(),
        };
        let key: DecisionKey = (
            caller.principal_arn.clone(),
            action.to_string(),
            resource_id,
            source_ip,
        );
        if let Some(decision) = self.cached(now_s, &key) {
            return self.answer(caller, action, resource, decision);
        }
        let (decision, reasons) = self
            .decide(principal, action, resource, source_ip, now_s)
            .map_err(|e| {
                tracing::error!(error = %e, "authorization request could not be built");
                ApiError::internal()
            })?;
        tracing::debug!(principal = %caller.principal_arn, action, decision = ?decision, policies = ?reasons, "authorization");
        self.remember(now_s, key, decision);
        self.answer(caller, action, resource, decision)
    }

    /// A decision made this same second for the same request, if any.
    fn cached(&self, now_s: i64, key: &DecisionKey) -> Option<Decision> {
        let cache = self.decisions.lock().expect("decision cache lock");
        (cache.0 == now_s)
            .then(|| cache.1.get(key).copied())
            .flatten()
    }

    fn remember(&self, now_s: i64, key: DecisionKey, decision: Decision) {
        let mut cache = self.decisions.lock().expect("decision cache lock");
        if cache.0 != now_s || cache.1.len() >= DECISIONS_PER_SECOND_MAX {
            cache.0 = now_s;
            cache.1.clear();
        }
        cache.1.insert(key, decision);
    }

    fn answer(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        decision: Decision,
    ) -> Result<(), ApiError> {
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny => {
                let resource = match resource {
                    Resource::Stream { arn, .. } | Resource::Key { arn, .. } => arn.to_string(),
                    Resource::Tenant { account } if action.starts_with("kms:") => {
                        format!("arn:aws:kms:*:{account}:*")
                    }
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
    fn repeated_decisions_agree_with_fresh_ones() {
        let authz = Authz::load().unwrap();
        let caller = Caller {
            account_id: "111111111111".into(),
            principal_arn: "arn:aws:iam::111111111111:user/alice".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            source_ip: Some(IpAddr::from([10, 0, 0, 7])),
        };
        let own = Resource::Stream {
            account: "111111111111",
            arn: "arn:aws:kinesis:us-east-1:111111111111:stream/orders",
            name: "orders",
        };
        let other = Resource::Stream {
            account: "222222222222",
            arn: "arn:aws:kinesis:us-east-1:222222222222:stream/orders",
            name: "orders",
        };
        for _ in 0..3 {
            assert!(authz.authorize(&caller, "kinesis:PutRecord", own).is_ok());
            let denied = authz
                .authorize(&caller, "kinesis:PutRecord", other)
                .unwrap_err();
            assert_eq!(denied.code, ErrorCode::AccessDenied);
            assert!(denied.message.contains("kinesis:PutRecord"));
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
