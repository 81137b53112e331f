//! Authorization: every request is decided by Cedar before its operation runs.
//!
//! The schema (`policies/sluice.cedarschema`) and the platform policies
//! (`policies/platform.cedar`) are embedded and validated in strict mode at start; a
//! policy that does not validate stops the server. Tenants add their own policies
//! (the policy workflow in `admin.rs`), validated the same way before they are stored;
//! a request is decided by the platform policies together with the policies of the
//! caller's tenant. Default deny: a request is allowed only if some policy permits it
//! and none forbids it, and the platform forbids every cross-tenant access whatever
//! else is permitted. Every decision is appended to the audit trail.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use catalog::Catalog;
use catalog::audit::AuditEntry;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, PrincipalConstraint, Request, ResourceConstraint, RestrictedExpression, Schema,
    ValidationMode, Validator,
};
use protocol::clock::{SharedClock, SystemClock};
use protocol::{ApiError, ErrorCode};

use crate::auth::Caller;

pub const SCHEMA: &str = include_str!("../../policies/sluice.cedarschema");
pub const PLATFORM_POLICIES: &str = include_str!("../../policies/platform.cedar");

pub use crate::cedarterms::{AuthzError, PrincipalRef};
pub use edge::Resource;

/// What a request's context carries besides principal, action and resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestFacts<'a> {
    pub source_ip: IpAddr,
    pub tls_version: &'a str,
    /// Seconds since the Unix epoch.
    pub time_s: i64,
    /// A KMS request's encryption context, as `encoded_context` writes it.
    pub encryption_context: &'a [String],
    /// The grant a RetireGrant names, or "".
    pub grant_id: &'a str,
}

impl RequestFacts<'static> {
    /// A request from `ip` over TLS 1.3 at time 0 with no KMS context (tests).
    #[cfg(test)]
    pub(crate) fn plain(ip: IpAddr) -> Self {
        RequestFacts {
            source_ip: ip,
            tls_version: "TLSv1.3",
            time_s: 0,
            encryption_context: &[],
            grant_id: "",
        }
    }
}

/// The schema's entity types, parsed once (parsing a name is a Cedar parse).
struct Types {
    tenant: EntityTypeName,
    user: EntityTypeName,
    role: EntityTypeName,
    stream: EntityTypeName,
    group: EntityTypeName,
    queue: EntityTypeName,
    channel: EntityTypeName,
    message_queue: EntityTypeName,
    topic: EntityTypeName,
    delivery_stream: EntityTypeName,
    key: EntityTypeName,
    action: EntityTypeName,
}

/// A tenant's policies together with the platform's, as last loaded.
struct TenantPolicies {
    set: Arc<PolicySet>,
    generation: i64,
    checked: Instant,
}

/// (principal ARN, action, resource, source IP, TLS version, policy generation, KMS
/// encryption context and grant): with the time in whole seconds, all a decision
/// depends on.
type DecisionKey = (
    String,
    String,
    String,
    IpAddr,
    &'static str,
    i64,
    Vec<String>,
    String,
);
/// A decision and the ids of the policies that made it.
type Decided = (Decision, Arc<[String]>);
/// Decisions remembered within one second, at most.
const DECISIONS_PER_SECOND_MAX: usize = 10_000;
/// How long a tenant's loaded policies are used before the catalog is asked whether
/// they changed (this process drops them at once when it changes them itself).
const TENANT_POLICIES_TTL: Duration = Duration::from_secs(1);
/// Tenants whose policies are kept loaded at once.
const TENANT_POLICIES_MAX: usize = 10_000;
/// Decisions waiting for the audit writer; past it requests wait (backpressure).
pub const AUDIT_QUEUE_MAX: usize = 16_384;
/// How long the audit writer gathers entries before it appends them.
const AUDIT_BATCH_WINDOW: Duration = Duration::from_millis(50);
/// How long a request waits for room in the audit queue before it is refused.
const AUDIT_QUEUE_WAIT: Duration = Duration::from_secs(5);

pub struct Authz {
    types: Types,
    schema: Schema,
    platform: Arc<PolicySet>,
    authorizer: Authorizer,
    /// The schema's actions; a request names one of them or is an error.
    actions: HashSet<EntityUid>,
    /// The actions on a KMS key (`kms:Decrypt`, ...), what IAM key policies expand to.
    key_actions: Vec<String>,
    /// The actions an SQS queue has, which a queue policy's `Action` patterns expand over.
    queue_actions: Vec<String>,
    /// Decisions of the current second. A decision costs tens of microseconds (Cedar
    /// builds and closes the entity graph each time); a second's repeats reuse it.
    decisions: std::sync::Mutex<(i64, HashMap<DecisionKey, Decided>)>,
    /// Where tenants' policies live; `None` decides by the platform policies alone.
    catalog: Option<Catalog>,
    tenants: std::sync::Mutex<HashMap<String, TenantPolicies>>,
    /// The administering tenant, whose principals are operators.
    operator_account: String,
    region: String,
    /// Where decisions go; `None` in unit tests only.
    audit: Option<tokio::sync::mpsc::Sender<AuditEntry>>,
    /// The time of decisions (policies may condition on it) and audit entries.
    clock: SharedClock,
    /// Set by the audit writer while it cannot write the trail (a full disk, a lost
    /// database): requests are refused until it can again.
    audit_failing: Arc<AtomicBool>,
    /// Bounds the rows outsiders can make: failed authentication, cross-tenant denials.
    trail: Arc<crate::trail::Limiter>,
    /// Each tenant's data-events setting, as read from the catalog, and when.
    data_events: std::sync::Mutex<HashMap<String, (bool, Instant)>>,
}

/// The actions CloudTrail calls data events: audited when allowed only if the tenant
/// turned data events on (denials always are).
const DATA_EVENTS: &[&str] = &[
    "kinesis:PutRecord",
    "kinesis:PutRecords",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:SubscribeToShard",
];
/// How long a tenant's data-events setting is trusted before it is read again.
const DATA_EVENTS_TTL: Duration = Duration::from_secs(5);
/// Tenants whose setting is remembered at once.
const DATA_EVENTS_CACHE_MAX: usize = 10_000;

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

/// A TLS version as one of the few strings a context can carry, so cache keys need not
/// own it.
fn tls_label(version: &str) -> &'static str {
    match version {
        "TLSv1.3" => "TLSv1.3",
        "TLSv1.2" => "TLSv1.2",
        _ => "unknown",
    }
}

/// What a policy document is attached to, by its name.
enum Attachment {
    /// A named tenant policy; its scope says what it covers.
    None,
    /// `stream/<name>`: every policy must name exactly that stream as its resource.
    Stream(String),
    /// `principal/<kind>/<name>`: every policy must name exactly that principal.
    Principal(String, String),
    /// `key/<key id>`: a KMS key's policy; every policy must name that key.
    Key(String),
    /// `sqs/<queue name>`: an SQS queue's policy (its `Policy` attribute); every
    /// policy must name that queue.
    MessageQueue(String),
}

fn attachment(name: &str) -> Attachment {
    if let Some(stream) = name.strip_prefix("stream/") {
        Attachment::Stream(stream.to_string())
    } else if let Some(key) = name.strip_prefix("key/") {
        Attachment::Key(key.to_string())
    } else if let Some(queue) = name.strip_prefix("sqs/") {
        Attachment::MessageQueue(queue.to_string())
    } else if let Some(rest) = name.strip_prefix("principal/")
        && let Some((kind, who)) = rest.split_once('/')
    {
        Attachment::Principal(kind.to_string(), who.to_string())
    } else {
        Attachment::None
    }
}

impl Authz {
    /// The platform policies alone, with no tenant policies and no audit trail (tests
    /// and offline checks).
    pub fn load() -> Result<Authz, AuthzError> {
        Self::build(
            None,
            String::new(),
            "us-east-1".into(),
            None,
            SystemClock::shared(),
        )
    }

    /// The server's authorizer: tenants' policies from `catalog`, decisions to `audit`.
    pub fn new(
        catalog: Catalog,
        operator_account: String,
        region: String,
        audit: tokio::sync::mpsc::Sender<AuditEntry>,
        audit_failing: Arc<AtomicBool>,
        trail: Arc<crate::trail::Limiter>,
        clock: SharedClock,
    ) -> Result<Authz, AuthzError> {
        let mut authz = Self::build(Some(catalog), operator_account, region, Some(audit), clock)?;
        authz.audit_failing = audit_failing;
        authz.trail = trail;
        Ok(authz)
    }

    /// The administering tenant's account id.
    pub fn operator_account(&self) -> &str {
        &self.operator_account
    }

    /// Puts a failed authentication in the trail, within its address's share (it
    /// never waits: a full queue drops the row, counted in
    /// `sluice_audit_dropped_total`). Returns whether it was written one by one.
    pub fn record_refused_authentication(&self, peer: IpAddr, entry: AuditEntry) -> bool {
        let Some(audit) = &self.audit else {
            return false;
        };
        if !self
            .trail
            .admit(crate::trail::Source::Address(peer), &entry)
        {
            return false;
        }
        if audit.try_send(entry).is_err() {
            metrics::counter!("sluice_audit_dropped_total", "kind" => "authentication")
                .increment(1);
        }
        true
    }

    fn build(
        catalog: Option<Catalog>,
        operator_account: String,
        region: String,
        audit: Option<tokio::sync::mpsc::Sender<AuditEntry>>,
        clock: SharedClock,
    ) -> Result<Authz, AuthzError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| AuthzError::Schema(e.to_string()))?;
        let parsed =
            PolicySet::from_str(PLATFORM_POLICIES).map_err(|e| AuthzError::Parse(e.to_string()))?;
        let result = Validator::new(schema.clone()).validate(&parsed, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
            return Err(AuthzError::Invalid(errors.join("; ")));
        }
        // Platform policies are known by their `@id`, which every one must have.
        let mut platform = PolicySet::new();
        for policy in parsed.policies() {
            let id = policy.annotation("id").ok_or_else(|| {
                AuthzError::Invalid(format!("platform policy {} has no @id", policy.id()))
            })?;
            platform
                .add(policy.new_id(PolicyId::new(id)))
                .map_err(|e| AuthzError::Invalid(e.to_string()))?;
        }
        let actions = schema.actions().cloned().collect();
        let user_type = type_name("Sluice::User")?;
        let key_type = type_name("Sluice::Key")?;
        let mut key_actions: Vec<String> = schema
            .actions_for_principal_and_resource(&user_type, &key_type)
            .map(|uid| uid.id().unescaped().to_string())
            .collect();
        key_actions.sort();
        let queue_type = type_name("Sluice::MessageQueue")?;
        let mut queue_actions: Vec<String> = schema
            .actions_for_principal_and_resource(&user_type, &queue_type)
            .map(|uid| uid.id().unescaped().to_string())
            .collect();
        queue_actions.sort();
        let types = Types {
            tenant: type_name("Sluice::Tenant")?,
            user: type_name("Sluice::User")?,
            role: type_name("Sluice::Role")?,
            stream: type_name("Sluice::Stream")?,
            group: type_name("Sluice::ConsumerGroup")?,
            queue: type_name("Sluice::Queue")?,
            channel: type_name("Sluice::Channel")?,
            message_queue: type_name("Sluice::MessageQueue")?,
            topic: type_name("Sluice::Topic")?,
            delivery_stream: type_name("Sluice::DeliveryStream")?,
            key: type_name("Sluice::Key")?,
            action: type_name("Sluice::Action")?,
        };
        Ok(Authz {
            types,
            schema,
            platform: Arc::new(platform),
            authorizer: Authorizer::new(),
            actions,
            key_actions,
            queue_actions,
            decisions: std::sync::Mutex::new((0, HashMap::new())),
            catalog,
            tenants: std::sync::Mutex::new(HashMap::new()),
            operator_account,
            region,
            audit,
            clock,
            trail: Default::default(),
            data_events: Default::default(),
            audit_failing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Parses and strictly validates one policy document of `account` named `name`,
    /// and checks that an attached document covers only what it is attached to. The
    /// policies come back renamed `<name>/<@id or index>`, ready to join a set.
    pub fn compile(
        &self,
        account: &str,
        name: &str,
        body: &str,
    ) -> Result<Vec<cedar_policy::Policy>, Vec<String>> {
        catalog::policies::check_policy_size(body).map_err(|e| vec![e.message])?;
        // A key's or queue's policy may come as IAM JSON (what KMS and SQS tools send):
        // it is read as the Cedar it means here (`iampolicy.rs`) and stored as written;
        // its open resources mean its own resource.
        let attached = attachment(name);
        let attached_resource = match &attached {
            Attachment::Key(key_id) => Some((
                "Sluice::Key",
                protocol::kms::key_arn(&self.region, account, key_id),
                &self.key_actions,
            )),
            Attachment::MessageQueue(queue) => Some((
                "Sluice::MessageQueue",
                format!("arn:aws:sqs:{}:{account}:{queue}", self.region),
                &self.queue_actions,
            )),
            _ => None,
        };
        let translated;
        let body = match &attached_resource {
            Some((_, arn, actions)) if body.trim_start().starts_with('{') => {
                translated =
                    crate::iampolicy::resource_policy_to_cedar(account, arn, actions, body)?;
                translated.as_str()
            }
            _ => body,
        };
        let parsed = PolicySet::from_str(body).map_err(|e| {
            let mut errors = vec![e.to_string()];
            for cause in parse_causes(&e) {
                if !errors.contains(&cause) {
                    errors.push(cause);
                }
            }
            errors
        })?;
        if parsed.templates().next().is_some() {
            return Err(vec![
                "policy templates (?principal, ?resource) are not supported; name the principal or resource".into(),
            ]);
        }
        if parsed.policies().next().is_none() {
            return Err(vec!["the document holds no policy".into()]);
        }
        let parsed = match &attached_resource {
            Some((entity_type, arn, _)) => crate::iampolicy::bind_to(&parsed, entity_type, arn)?,
            None => parsed,
        };
        let result = Validator::new(self.schema.clone()).validate(&parsed, ValidationMode::Strict);
        let mut errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
        let expected_resource;
        let expected_principal;
        let (resource_must, principal_must) = match attached {
            Attachment::None => (None, None),
            Attachment::Stream(stream) => {
                let arn = protocol::arn::StreamArn::format(&self.region, account, &stream);
                expected_resource = uid(&self.types.stream, &arn);
                (Some(&expected_resource), None)
            }
            Attachment::Key(_) | Attachment::MessageQueue(_) => {
                let (_, arn, _) = attached_resource.as_ref().expect("an attached resource");
                let ty = match attached {
                    Attachment::Key(_) => &self.types.key,
                    _ => &self.types.message_queue,
                };
                expected_resource = uid(ty, arn);
                (Some(&expected_resource), None)
            }
            Attachment::Principal(kind, who) => {
                let ty = match kind.as_str() {
                    "user" => &self.types.user,
                    "role" => &self.types.role,
                    _ => {
                        return Err(vec![format!(
                            "no principal kind {kind:?}; use user or role"
                        )]);
                    }
                };
                expected_principal = uid(ty, &format!("arn:aws:iam::{account}:{kind}/{who}"));
                (None, Some(&expected_principal))
            }
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (index, policy) in parsed.policies().enumerate() {
            let label = policy
                .annotation("id")
                .map_or_else(|| index.to_string(), str::to_string);
            if let Some(want) = resource_must
                && policy.resource_constraint() != ResourceConstraint::Eq(want.clone())
            {
                errors.push(format!(
                    "policy {label}: an attached policy must say `resource == {want}`"
                ));
            }
            if let Some(want) = principal_must
                && policy.principal_constraint() != PrincipalConstraint::Eq(want.clone())
            {
                errors.push(format!(
                    "policy {label}: a principal's policy must say `principal == {want}`"
                ));
            }
            let mut id = format!("{name}/{label}");
            if !seen.insert(id.clone()) {
                id = format!("{name}/{label}.{index}");
                seen.insert(id.clone());
            }
            out.push(policy.new_id(PolicyId::new(id)));
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The platform policies plus the given tenant documents.
    pub fn tenant_set<'b>(
        &self,
        account: &str,
        documents: impl IntoIterator<Item = (&'b str, &'b str)>,
    ) -> Result<PolicySet, Vec<String>> {
        let mut set = (*self.platform).clone();
        for (name, body) in documents {
            for policy in self.compile(account, name, body)? {
                set.add(policy).map_err(|e| vec![e.to_string()])?;
            }
        }
        Ok(set)
    }

    /// The policies deciding `account`'s requests and their generation, reloaded when
    /// older than `TENANT_POLICIES_TTL` and changed in the catalog.
    async fn policies_for(&self, account: &str) -> Result<(Arc<PolicySet>, i64), AuthzError> {
        let Some(catalog) = &self.catalog else {
            return Ok((self.platform.clone(), 0));
        };
        let cached = {
            let tenants = self.tenants.lock().expect("tenant policies lock");
            tenants
                .get(account)
                .map(|t| (t.set.clone(), t.generation, t.checked.elapsed()))
        };
        if let Some((set, generation, age)) = &cached
            && *age < TENANT_POLICIES_TTL
        {
            return Ok((set.clone(), *generation));
        }
        let generation = catalog
            .policy_generation(account)
            .await
            .map_err(|e| AuthzError::Tenant(e.to_string()))?;
        let set = match cached {
            Some((set, known, _)) if known == generation => set,
            _ if generation == 0 => self.platform.clone(),
            _ => {
                let documents = catalog
                    .active_policies(account)
                    .await
                    .map_err(|e| AuthzError::Tenant(e.to_string()))?;
                // Stored documents validated when applied; one that no longer does
                // (a schema change) fails the tenant's requests closed, never open.
                let mut set = self
                    .tenant_set(
                        account,
                        documents
                            .iter()
                            .filter_map(|d| Some((d.name.as_str(), d.body.as_deref()?))),
                    )
                    .map_err(|errors| AuthzError::Tenant(errors.join("; ")))?;
                self.add_grants(catalog, account, &mut set).await?;
                Arc::new(set)
            }
        };
        let mut tenants = self.tenants.lock().expect("tenant policies lock");
        if tenants.len() >= TENANT_POLICIES_MAX {
            tenants.clear();
        }
        tenants.insert(
            account.to_string(),
            TenantPolicies {
                set: set.clone(),
                generation,
                checked: Instant::now(),
            },
        );
        Ok((set, generation))
    }

    /// Adds the permits of `account`'s KMS grants to its policies.
    async fn add_grants(
        &self,
        catalog: &Catalog,
        account: &str,
        set: &mut PolicySet,
    ) -> Result<(), AuthzError> {
        let grants = catalog
            .tenant_grants(account)
            .await
            .map_err(|e| AuthzError::Tenant(e.to_string()))?;
        for grant in &grants {
            for policy in crate::keyperms::grant_permits(&self.region, grant)? {
                set.add(policy)
                    .map_err(|e| AuthzError::Tenant(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Drops what this process knows of `account`'s policies, after it changed them.
    pub fn forget_tenant(&self, account: &str) {
        self.tenants
            .lock()
            .expect("tenant policies lock")
            .remove(account);
        self.decisions
            .lock()
            .expect("decision cache lock")
            .1
            .clear();
    }

    /// The decision of the platform policies alone and the ids of the policies that
    /// made it.
    pub fn decide(
        &self,
        principal: PrincipalRef<'_>,
        action: &str,
        resource: Resource<'_>,
        facts: RequestFacts<'_>,
    ) -> Result<(Decision, Vec<String>), AuthzError> {
        self.decide_with(&self.platform, principal, action, resource, facts)
    }

    pub fn decide_with(
        &self,
        policies: &PolicySet,
        principal: PrincipalRef<'_>,
        action: &str,
        resource: Resource<'_>,
        facts: RequestFacts<'_>,
    ) -> Result<(Decision, Vec<String>), AuthzError> {
        let principal_type = if principal.kind == "role" {
            &self.types.role
        } else {
            &self.types.user
        };
        let principal_uid = uid(principal_type, &principal.arn());
        let principal_tenant = uid(&self.types.tenant, principal.account);
        let admin =
            principal.kind == "user" && principal.name == catalog::identity::BOOTSTRAP_PRINCIPAL;
        let operator =
            !self.operator_account.is_empty() && principal.account == self.operator_account;
        let tenant_entity = |account: &str| {
            entity(
                uid(&self.types.tenant, account),
                vec![(
                    "tenant",
                    RestrictedExpression::new_string(account.to_string()),
                )],
                vec![],
            )
        };
        let mut entities = vec![
            entity(
                principal_uid.clone(),
                vec![
                    (
                        "tenant",
                        RestrictedExpression::new_string(principal.account.to_string()),
                    ),
                    ("admin", RestrictedExpression::new_bool(admin)),
                    ("operator", RestrictedExpression::new_bool(operator)),
                ],
                vec![principal_tenant],
            )?,
            tenant_entity(principal.account)?,
        ];
        // A resource is its tenant's, carries its name where it has one, and sits in
        // `parent` (its tenant, or a group's stream).
        let owned = |ty: &EntityTypeName,
                     id: &str,
                     account: &str,
                     name: Option<&str>,
                     parent: EntityUid|
         -> Result<(EntityUid, Entity), AuthzError> {
            let mut attrs = vec![(
                "tenant",
                RestrictedExpression::new_string(account.to_string()),
            )];
            if let Some(name) = name {
                attrs.push(("name", RestrictedExpression::new_string(name.to_string())));
            }
            let made = uid(ty, id);
            Ok((made.clone(), entity(made, attrs, vec![parent])?))
        };
        let tenant_of = |account: &str| uid(&self.types.tenant, account);
        let (resource_uid, resource_account) = match resource {
            Resource::Stream { account, arn, name } => {
                let (stream, made) = owned(
                    &self.types.stream,
                    arn,
                    account,
                    Some(name),
                    tenant_of(account),
                )?;
                entities.push(made);
                (stream, account)
            }
            Resource::DeliveryStream { account, arn, name } => {
                let (made_uid, made) = owned(
                    &self.types.delivery_stream,
                    arn,
                    account,
                    Some(name),
                    tenant_of(account),
                )?;
                entities.push(made);
                (made_uid, account)
            }
            Resource::Queue { account, arn } => {
                let (queue, made) =
                    owned(&self.types.queue, arn, account, None, tenant_of(account))?;
                entities.push(made);
                (queue, account)
            }
            Resource::MessageQueue { account, arn } => {
                let (queue, made) = owned(
                    &self.types.message_queue,
                    arn,
                    account,
                    None,
                    tenant_of(account),
                )?;
                entities.push(made);
                (queue, account)
            }
            Resource::Topic { account, arn } => {
                let (topic, made) =
                    owned(&self.types.topic, arn, account, None, tenant_of(account))?;
                entities.push(made);
                (topic, account)
            }
            Resource::Channel { account, arn } => {
                let (channel, made) =
                    owned(&self.types.channel, arn, account, None, tenant_of(account))?;
                entities.push(made);
                (channel, account)
            }
            Resource::Key { account, arn } => {
                let (key, made) = owned(&self.types.key, arn, account, None, tenant_of(account))?;
                entities.push(made);
                (key, account)
            }
            Resource::Tenant { account } => (tenant_of(account), account),
            Resource::Group {
                account,
                arn,
                name,
                stream_arn,
                stream_name,
            } => {
                let (stream, made) = owned(
                    &self.types.stream,
                    stream_arn,
                    account,
                    Some(stream_name),
                    tenant_of(account),
                )?;
                entities.push(made);
                let (group, made) = owned(&self.types.group, arn, account, Some(name), stream)?;
                entities.push(made);
                (group, account)
            }
        };
        if resource_account != principal.account {
            entities.push(tenant_entity(resource_account)?);
        }
        // The entities and request are built here from typed values, and every policy
        // was validated against the schema before it was stored, so they are not
        // validated again per request: that validation was most of a decision's cost
        // (measured; see the identity issue's note). The action must still be one of
        // the schema's.
        let entities = Entities::from_entities(entities, None)
            .map_err(|e| AuthzError::Request(e.to_string()))?;
        let action_uid = uid(&self.types.action, action);
        if !self.actions.contains(&action_uid) {
            return Err(AuthzError::Request(format!(
                "{action} is not an action of the schema"
            )));
        }
        let context = Context::from_pairs([
            (
                "sourceIp".to_string(),
                RestrictedExpression::new_ip(facts.source_ip.to_string()),
            ),
            (
                "tlsVersion".to_string(),
                RestrictedExpression::new_string(facts.tls_version.to_string()),
            ),
            (
                "time".to_string(),
                RestrictedExpression::new_long(facts.time_s),
            ),
            (
                "encryptionContext".to_string(),
                RestrictedExpression::new_set(
                    facts
                        .encryption_context
                        .iter()
                        .map(|pair| RestrictedExpression::new_string(pair.clone())),
                ),
            ),
            (
                "grantId".to_string(),
                RestrictedExpression::new_string(facts.grant_id.to_string()),
            ),
        ])
        .map_err(|e| AuthzError::Request(e.to_string()))?;
        let request = Request::new(principal_uid, action_uid, resource_uid, context, None)
            .map_err(|e| AuthzError::Request(e.to_string()))?;
        let response = self.authorizer.is_authorized(&request, policies, &entities);
        let reasons = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        Ok((response.decision(), reasons))
    }

    /// What `principal` asking for `action` on `resource` would get under `account`'s
    /// policies, with `proposed` (a document name and its new body, `None` to remove
    /// it) in place of the stored one. Nothing is stored and nothing audited.
    pub async fn simulate(
        &self,
        account: &str,
        proposed: Option<(&str, Option<&str>)>,
        principal: PrincipalRef<'_>,
        action: &str,
        resource: Resource<'_>,
        facts: RequestFacts<'_>,
    ) -> Result<(Decision, Vec<String>), SimulationError> {
        let set = match (proposed, &self.catalog) {
            (Some((name, body)), Some(catalog)) => {
                let stored = catalog
                    .active_policies(account)
                    .await
                    .map_err(|e| SimulationError::Internal(e.to_string()))?;
                let documents = stored
                    .iter()
                    .filter(|d| d.name != name)
                    .filter_map(|d| Some((d.name.as_str(), d.body.as_deref()?)))
                    .chain(body.map(|b| (name, b)));
                let mut set = self
                    .tenant_set(account, documents)
                    .map_err(SimulationError::Invalid)?;
                self.add_grants(catalog, account, &mut set)
                    .await
                    .map_err(|e| SimulationError::Internal(e.to_string()))?;
                Arc::new(set)
            }
            _ => {
                self.policies_for(account)
                    .await
                    .map_err(|e| SimulationError::Internal(e.to_string()))?
                    .0
            }
        };
        self.decide_with(&set, principal, action, resource, facts)
            .map_err(|e| SimulationError::Invalid(vec![e.to_string()]))
    }

    /// Allows the caller's request or answers `AccessDeniedException` naming the action
    /// and resource, as AWS words it; either way the decision joins the audit trail.
    pub async fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
    ) -> Result<(), ApiError> {
        self.authorize_key_use(caller, action, resource, edge::KeyUse::default())
            .await
    }

    /// `authorize`, with the trail naming `acted_on` (a principal, a token, a policy
    /// document) rather than the tenant the decision was made on.
    pub async fn authorize_acting_on(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        acted_on: &str,
    ) -> Result<(), ApiError> {
        self.decide_and_record(
            caller,
            action,
            resource,
            edge::KeyUse::default(),
            Some(acted_on),
        )
        .await
    }

    /// `authorize`, with what a KMS request says about its use of a key in the context.
    pub async fn authorize_key_use(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        used: edge::KeyUse<'_>,
    ) -> Result<(), ApiError> {
        self.decide_and_record(caller, action, resource, used, None)
            .await
    }

    async fn decide_and_record(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        used: edge::KeyUse<'_>,
        acted_on: Option<&str>,
    ) -> Result<(), ApiError> {
        let encryption_context = used
            .encryption_context
            .map(crate::keyperms::encoded_context)
            .unwrap_or_default();
        let grant_id = used.grant_id.unwrap_or("");
        let Some(principal) = PrincipalRef::from_arn(&caller.principal_arn) else {
            tracing::error!(principal = %caller.principal_arn, "caller has no principal ARN");
            return Err(ApiError::internal());
        };
        let now_s = self.clock.now_s();
        let tls_version = tls_label(caller.tls_version.unwrap_or("unknown"));
        let facts = RequestFacts {
            source_ip: caller.source_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            tls_version,
            time_s: now_s,
            encryption_context: &encryption_context,
            grant_id,
        };
        // Only the caller's own tenant's policies take part: the platform forbids every
        // cross-tenant request whatever a tenant says, so no other tenant's could matter.
        let (policies, generation) = self.policies_for(principal.account).await.map_err(|e| {
            tracing::error!(error = %e, account = principal.account, "tenant policies unavailable");
            ApiError::internal()
        })?;
        let resource_arn = resource.arn(action);
        let key: DecisionKey = (
            caller.principal_arn.clone(),
            action.to_string(),
            resource_arn.clone(),
            facts.source_ip,
            tls_version,
            generation,
            encryption_context.clone(),
            grant_id.to_string(),
        );
        let (decision, reasons) = match self.cached(now_s, &key) {
            Some(hit) => hit,
            None => {
                let (decision, reasons) = self
                    .decide_with(&policies, principal, action, resource, facts)
                    .map_err(|e| {
                        tracing::error!(error = %e, "authorization request could not be built");
                        ApiError::internal()
                    })?;
                let reasons: Arc<[String]> = reasons.into();
                self.remember(now_s, key, decision, reasons.clone());
                (decision, reasons)
            }
        };
        tracing::debug!(principal = %caller.principal_arn, action, decision = ?decision, policies = ?reasons, "authorization");
        metrics::counter!(
            "sluice_authorization_decisions_total",
            "decision" => match decision {
                Decision::Allow => "Allow",
                Decision::Deny => "Deny",
            }
        )
        .increment(1);
        self.record(
            caller,
            principal.account,
            action,
            &resource,
            acted_on.unwrap_or(&resource_arn),
            facts,
            decision,
            &reasons,
        )
        .await?;
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny => Err(ApiError::new(
                ErrorCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {resource_arn}",
                    caller.principal_arn
                ),
            )),
        }
    }

    /// Queues the decision for the audit trail, waiting (bounded) for room.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        caller: &Caller,
        principal_account: &str,
        action: &str,
        resource: &Resource<'_>,
        resource_arn: &str,
        facts: RequestFacts<'_>,
        decision: Decision,
        reasons: &[String],
    ) -> Result<(), ApiError> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        // INVARIANT: fail closed. While the trail cannot be written, a decision could
        // be lost with the process; no request proceeds on one.
        if self.audit_failing.load(Ordering::Acquire) {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The audit trail cannot be written (the server's storage may be full); retry later.",
            ));
        }
        // Allowed data events are recorded only where the tenant turned them on; they
        // still wait for a working trail above, so nothing is served while earlier
        // decisions could be lost.
        if decision == Decision::Allow
            && DATA_EVENTS.contains(&action)
            && !self.data_events_on(principal_account).await
        {
            return Ok(());
        }
        let entry = AuditEntry {
            id: 0,
            at_ms: self.clock.now_ms(),
            request_id: caller.request_id.clone(),
            principal_account: principal_account.to_string(),
            principal: caller.principal_arn.clone(),
            action: action.to_string(),
            resource_account: resource.account().to_string(),
            resource: resource_arn.to_string(),
            decision: match decision {
                Decision::Allow => "Allow",
                Decision::Deny => "Deny",
            }
            .to_string(),
            policies: reasons.to_vec(),
            source_ip: facts.source_ip.to_string(),
            tls_version: facts.tls_version.to_string(),
        };
        // A tenant's denied requests on another tenant's resources land in that
        // tenant's trail too: past a few a minute they are counted into one row.
        if decision == Decision::Deny
            && principal_account != entry.resource_account
            && !self.trail.admit(
                crate::trail::Source::Tenants {
                    principal_account: principal_account.to_string(),
                    resource_account: entry.resource_account.clone(),
                },
                &entry,
            )
        {
            return Ok(());
        }
        // INVARIANT: no decision takes effect unrecorded: when the trail cannot take
        // the entry, the request fails.
        match tokio::time::timeout(AUDIT_QUEUE_WAIT, audit.send(entry)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                tracing::error!("the audit writer has stopped; refusing the request");
                Err(ApiError::internal())
            }
            Err(_) => Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The audit trail is behind; retry the request.",
            )),
        }
    }

    /// Whether `account`'s allowed data events are audited (read at most every
    /// `DATA_EVENTS_TTL`; when the catalog cannot say, they are).
    async fn data_events_on(&self, account: &str) -> bool {
        if let Some((on, at)) = self
            .data_events
            .lock()
            .expect("data events cache")
            .get(account)
            && at.elapsed() < DATA_EVENTS_TTL
        {
            return *on;
        }
        let Some(catalog) = &self.catalog else {
            return true;
        };
        let on = catalog.audit_data_events(account).await.unwrap_or(true);
        let mut cache = self.data_events.lock().expect("data events cache");
        if cache.len() >= DATA_EVENTS_CACHE_MAX {
            cache.clear();
        }
        cache.insert(account.to_string(), (on, Instant::now()));
        on
    }

    /// Forgets `account`'s data-events setting (this process reads it again at once).
    pub fn forget_data_events(&self, account: &str) {
        self.data_events
            .lock()
            .expect("data events cache")
            .remove(account);
    }

    /// A decision made this same second for the same request, if any.
    fn cached(&self, now_s: i64, key: &DecisionKey) -> Option<Decided> {
        let cache = self.decisions.lock().expect("decision cache lock");
        (cache.0 == now_s)
            .then(|| cache.1.get(key).cloned())
            .flatten()
    }

    fn remember(&self, now_s: i64, key: DecisionKey, decision: Decision, reasons: Arc<[String]>) {
        let mut cache = self.decisions.lock().expect("decision cache lock");
        if cache.0 != now_s || cache.1.len() >= DECISIONS_PER_SECOND_MAX {
            cache.0 = now_s;
            cache.1.clear();
        }
        cache.1.insert(key, (decision, reasons));
    }

    /// Stores `body` as the next version of `account`'s policy document `name` once it
    /// validates (`None` deletes the document, which must exist); this process decides
    /// with it from the next request on.
    pub async fn store_policy(
        &self,
        caller: &Caller,
        account: &str,
        name: &str,
        body: Option<&str>,
    ) -> Result<catalog::policies::PolicyVersion, ApiError> {
        let Some(catalog) = &self.catalog else {
            tracing::error!("an authorizer without a catalog cannot store policies");
            return Err(ApiError::internal());
        };
        let api = edge::wire_error;
        match body {
            Some(text) => {
                catalog::policies::check_policy_size(text).map_err(|r| edge::refusal_error(&r))?;
                self.compile(account, name, text)
                    .map_err(|errors| invalid_policy(&errors))?;
            }
            None => {
                let current = catalog
                    .policy_version(account, name, None)
                    .await
                    .map_err(api)?;
                if current.body.is_none() {
                    return Err(ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("Policy {name} is already deleted."),
                    ));
                }
            }
        }
        let stored = catalog
            .put_policy_version(
                account,
                name,
                body,
                &caller.principal_arn,
                self.clock.now_ms(),
            )
            .await
            .map_err(api)?;
        self.forget_tenant(account);
        Ok(stored)
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

impl edge::Authorizer for Authz {
    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        action: &'a str,
        resource: Resource<'a>,
    ) -> edge::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(Authz::authorize(self, caller, action, resource))
    }

    fn authorize_key_use<'a>(
        &'a self,
        caller: &'a Caller,
        action: &'a str,
        resource: Resource<'a>,
        used: edge::KeyUse<'a>,
    ) -> edge::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(Authz::authorize_key_use(
            self, caller, action, resource, used,
        ))
    }

    fn permits_changed(&self, account: &str) {
        self.forget_tenant(account);
    }

    fn store_policy<'a>(
        &'a self,
        caller: &'a Caller,
        account: &'a str,
        name: &'a str,
        body: Option<&'a str>,
    ) -> edge::BoxFuture<'a, Result<catalog::policies::PolicyVersion, ApiError>> {
        Box::pin(Authz::store_policy(self, caller, account, name, body))
    }
}

/// The error a policy document that does not validate gets.
pub fn invalid_policy(errors: &[String]) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!("The policy does not validate: {}", errors.join("; ")),
    )
}

/// Why a simulation could not decide.
#[derive(Debug)]
pub enum SimulationError {
    /// The proposed or stored policies do not validate.
    Invalid(Vec<String>),
    Internal(String),
}

/// The messages under a Cedar parse error, which its `Display` alone leaves out.
fn parse_causes(e: &cedar_policy::ParseErrors) -> Vec<String> {
    e.iter().map(|one| one.to_string()).collect()
}

/// Writes queued decisions to the audit trail in batches, until every sender is gone.
/// A failed append is retried (the entries are kept), so the queue backs up and
/// requests wait rather than decisions being lost.
pub async fn audit_writer(
    catalog: Catalog,
    mut queue: tokio::sync::mpsc::Receiver<AuditEntry>,
    failing: Arc<AtomicBool>,
    trail: Arc<crate::trail::Limiter>,
    chain_key: Arc<zeroize::Zeroizing<Vec<u8>>>,
    clock: SharedClock,
) {
    let mut batch = Vec::with_capacity(catalog::audit::AUDIT_BATCH_MAX);
    let mut aggregate = tokio::time::interval(AGGREGATE_EVERY);
    aggregate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    // After a failed append, requests stay refused until every decision queued during
    // the failure is written: a request answered before the failure is then in the
    // trail before any request after it is served.
    let mut recovering = false;
    while open {
        tokio::select! {
            entry = queue.recv() => match entry {
                Some(entry) => batch.push(entry),
                None => {
                    open = false;
                    batch.extend(trail.drain(clock.now_ms(), true));
                }
            },
            _ = aggregate.tick() => batch.extend(trail.drain(clock.now_ms(), false)),
        }
        if batch.is_empty() {
            continue;
        }
        // Gather for a short window, so that a busy server writes a few large batches
        // a second instead of contending with the group-commit writer for SQLite's
        // write lock hundreds of times a second.
        let window = tokio::time::sleep(AUDIT_BATCH_WINDOW);
        tokio::pin!(window);
        while open && batch.len() < catalog::audit::AUDIT_BATCH_MAX {
            tokio::select! {
                entry = queue.recv() => match entry {
                    Some(entry) => batch.push(entry),
                    None => break,
                },
                () = &mut window => break,
            }
        }
        let mut delay = Duration::from_millis(50);
        let started = Instant::now();
        while let Err(e) = catalog.append_audit(&batch, &chain_key).await {
            tracing::error!(error = %e, entries = batch.len(), "appending to the audit trail failed; retrying");
            failing.store(true, Ordering::Release);
            recovering = true;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        if !recovering || queue.is_empty() {
            failing.store(false, Ordering::Release);
            recovering = false;
        }
        metrics::histogram!("sluice_catalog_duration_seconds", "op" => "audit")
            .record(started.elapsed().as_secs_f64());
        batch.clear();
    }
}

/// How often aggregate rows of ended minutes are written (`trail`).
const AGGREGATE_EVERY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
