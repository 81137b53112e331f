//! `sluice tenant|principal|key ...`: the administration API from the command line.
//! Each verb is one signed HTTPS request to a running server; the answer is printed as
//! JSON on stdout, an error as the server's `__type: message` on stderr.

use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

use crate::client::tls_connector;
use crate::sigv4::Signer;

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The server, host:port (TLS).
    #[arg(long, env = "SLUICE_ENDPOINT", default_value = "127.0.0.1:4567")]
    pub(crate) endpoint: String,
    /// The CA certificate to trust.
    #[arg(long, env = "SLUICE_CA", default_value = "./sluice-data/tls/ca.pem")]
    pub(crate) ca: PathBuf,
    /// AWS shared-credentials file whose [default] profile signs the request.
    #[arg(
        long,
        env = "AWS_SHARED_CREDENTIALS_FILE",
        default_value = "./sluice-data/credentials"
    )]
    pub(crate) credentials: PathBuf,
    /// The region requests are signed for (the server's).
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
}

#[derive(clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its account id and its admin's first access key.
    Create { name: String },
    /// List tenants.
    List,
    /// Show one tenant.
    Get { account_id: String },
    /// Disable a tenant: its keys stop authenticating.
    Disable { account_id: String },
    /// Enable a tenant again.
    Enable { account_id: String },
}

#[derive(clap::Subcommand)]
pub enum PrincipalCommand {
    /// Create a user (or, with --role, a role) in a tenant.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        role: bool,
        name: String,
    },
    /// List a tenant's principals.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Disable a principal: its keys and tokens stop authenticating.
    Disable(PrincipalRef),
    /// Enable a principal again.
    Enable(PrincipalRef),
    /// Delete a principal and its keys.
    Delete(PrincipalRef),
}

#[derive(clap::Args)]
pub struct PrincipalRef {
    /// The tenant's account id.
    #[arg(long)]
    tenant: String,
    /// The user's name (or, with --role, the role's).
    #[arg(long)]
    user: String,
    #[arg(long)]
    role: bool,
}

#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Create an access key; prints its secret, which is shown only once.
    Create(PrincipalRef),
    /// List a principal's access keys (never their secrets).
    List(PrincipalRef),
    /// Make a key stop authenticating.
    Deactivate {
        #[command(flatten)]
        principal: PrincipalRef,
        key_id: String,
    },
    /// Make a key authenticate again.
    Activate {
        #[command(flatten)]
        principal: PrincipalRef,
        key_id: String,
    },
    /// Delete a key.
    Delete {
        #[command(flatten)]
        principal: PrincipalRef,
        key_id: String,
    },
}

/// Path segments the CLI sends unencoded (the canonical path is then the path itself).
pub(crate) fn segment(text: &str, what: &str) -> anyhow::Result<String> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bail!("{what} {text:?}: use letters, digits, '-', '_' and '.' here");
    }
    Ok(text.to_string())
}

/// The tenant a command names, as a path segment; `self` (the caller's own) when none.
pub(crate) fn tenant_segment(tenant: &Option<String>) -> anyhow::Result<String> {
    match tenant {
        Some(t) => segment(t, "tenant"),
        None => Ok("self".to_string()),
    }
}

impl PrincipalRef {
    fn principal_path(&self) -> anyhow::Result<String> {
        Ok(format!(
            "/admin/v1/tenants/{}/principals/{}/{}",
            segment(&self.tenant, "tenant")?,
            if self.role { "role" } else { "user" },
            segment(&self.user, "name")?
        ))
    }

    fn path(&self) -> anyhow::Result<String> {
        Ok(format!("{}/access-keys", self.principal_path()?))
    }
}

pub async fn tenant(connect: ConnectArgs, command: TenantCommand) -> anyhow::Result<()> {
    let (method, path, body) = match command {
        TenantCommand::Create { name } => (
            "POST",
            "/admin/v1/tenants".to_string(),
            Some(json!({"name": name})),
        ),
        TenantCommand::List => ("GET", "/admin/v1/tenants".to_string(), None),
        TenantCommand::Get { account_id } => (
            "GET",
            format!("/admin/v1/tenants/{}", segment(&account_id, "tenant")?),
            None,
        ),
        TenantCommand::Disable { account_id } => (
            "POST",
            format!(
                "/admin/v1/tenants/{}/disable",
                segment(&account_id, "tenant")?
            ),
            None,
        ),
        TenantCommand::Enable { account_id } => (
            "POST",
            format!(
                "/admin/v1/tenants/{}/enable",
                segment(&account_id, "tenant")?
            ),
            None,
        ),
    };
    call(&connect, method, &path, &[], body).await
}

pub async fn principal(connect: ConnectArgs, command: PrincipalCommand) -> anyhow::Result<()> {
    let (method, path, body) = match command {
        PrincipalCommand::Create { tenant, role, name } => (
            "POST",
            format!(
                "/admin/v1/tenants/{}/principals",
                segment(&tenant, "tenant")?
            ),
            Some(json!({"kind": if role { "role" } else { "user" }, "name": name})),
        ),
        PrincipalCommand::List { tenant } => (
            "GET",
            format!(
                "/admin/v1/tenants/{}/principals",
                segment(&tenant, "tenant")?
            ),
            None,
        ),
        PrincipalCommand::Disable(p) => ("POST", format!("{}/disable", p.principal_path()?), None),
        PrincipalCommand::Enable(p) => ("POST", format!("{}/enable", p.principal_path()?), None),
        PrincipalCommand::Delete(p) => ("DELETE", p.principal_path()?, None),
    };
    call(&connect, method, &path, &[], body).await
}

pub async fn key(connect: ConnectArgs, command: KeyCommand) -> anyhow::Result<()> {
    let (method, path) = match command {
        KeyCommand::Create(p) => ("POST", p.path()?),
        KeyCommand::List(p) => ("GET", p.path()?),
        KeyCommand::Deactivate { principal, key_id } => (
            "POST",
            format!(
                "{}/{}/deactivate",
                principal.path()?,
                segment(&key_id, "key id")?
            ),
        ),
        KeyCommand::Activate { principal, key_id } => (
            "POST",
            format!(
                "{}/{}/activate",
                principal.path()?,
                segment(&key_id, "key id")?
            ),
        ),
        KeyCommand::Delete { principal, key_id } => (
            "DELETE",
            format!("{}/{}", principal.path()?, segment(&key_id, "key id")?),
        ),
    };
    call(&connect, method, &path, &[], None).await
}

/// One signed request; prints the answer.
pub(crate) async fn call(
    connect: &ConnectArgs,
    method: &str,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> anyhow::Result<()> {
    let value = call_json(connect, method, path, query, body).await?;
    if !value.is_null() {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

/// One signed request whose answer is JSON; a failure becomes the error.
async fn call_json(
    connect: &ConnectArgs,
    method: &str,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let (status, _headers, bytes) = send(connect, method, path, query, body).await?;
    refused(status, &bytes)?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// An answer that is not a success, as the error: `status: __type: message`.
fn refused(status: hyper::StatusCode, bytes: &[u8]) -> anyhow::Result<()> {
    if status.is_success() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let kind = value["__type"].as_str().unwrap_or("Error");
    let message = value["message"].as_str().unwrap_or("");
    bail!("{status}: {kind}: {message}")
}

/// One signed request to the admin API.
async fn send(
    connect: &ConnectArgs,
    method: &str,
    path: &str,
    query: &[(&str, String)],
    body: Option<Value>,
) -> anyhow::Result<(hyper::StatusCode, hyper::HeaderMap, Bytes)> {
    let addr = tokio::net::lookup_host(&connect.endpoint)
        .await
        .with_context(|| format!("resolving {}", connect.endpoint))?
        .next()
        .with_context(|| format!("{} resolves to no address", connect.endpoint))?;
    let host = connect
        .endpoint
        .split(':')
        .next()
        .unwrap_or("localhost")
        .to_string();
    let signer = Signer::from_credentials_file(
        &connect.credentials,
        connect.region.clone(),
        connect.endpoint.clone(),
    )?;
    let body = Bytes::from(body.map(|b| b.to_string()).unwrap_or_default());
    let query = crate::sigv4::canonical_query(query);
    let (amz_date, authorization) = signer.sign_request(
        method,
        path,
        &query,
        "sluice",
        &[("content-type", "application/json")],
        &body,
        protocol::clock::now_utc(&protocol::clock::SystemClock),
    );

    let connector = tls_connector(&connect.ca)?;
    let mut sender = crate::client::connect(&connector, addr, &host).await?;
    let uri = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", &connect.endpoint)
        .header("content-type", "application/json")
        .header("x-amz-date", amz_date)
        .header("authorization", authorization)
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, bytes))
}

#[derive(clap::Args)]
pub struct TenantArg {
    /// The tenant's account id.
    #[arg(long)]
    tenant: String,
}

#[derive(clap::Args)]
pub struct ProposedDocument {
    /// The document's name (`stream/<name>` or `principal/user/<name>` attach it).
    #[arg(long)]
    name: Option<String>,
    /// A Cedar file to use in place of the stored document of that name.
    #[arg(long, requires = "name")]
    file: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Check a Cedar file against the schema (strictly) and the document's attachment.
    Validate {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        file: PathBuf,
    },
    /// Run decision cases (a JSON array, as in policies/cases/) against the tenant's
    /// policies, or against them with a proposed document in place; fails if any fails.
    Test {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        proposed: ProposedDocument,
        cases: PathBuf,
    },
    /// Would this request be allowed, and which policies decide it?
    Simulate {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        proposed: ProposedDocument,
        /// The principal's ARN.
        #[arg(long)]
        principal: String,
        /// The action, e.g. kinesis:PutRecord.
        #[arg(long)]
        action: String,
        /// The stream's ARN (or use --on-tenant for tenant-wide actions).
        #[arg(long, conflicts_with_all = ["on_tenant", "group"])]
        stream: Option<String>,
        /// A consumer group's ARN (`<stream ARN>/group/<name>`).
        #[arg(long, conflicts_with = "on_tenant")]
        group: Option<String>,
        /// The account id a tenant-wide action (ListStreams, sluice:*) is about.
        #[arg(long)]
        on_tenant: Option<String>,
        #[arg(long, default_value = "127.0.0.1")]
        source_ip: String,
        #[arg(long, default_value = "TLSv1.3")]
        tls_version: String,
    },
    /// Store a Cedar file as the next version of a document (refused if invalid).
    Apply {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        file: PathBuf,
    },
    /// The tenant's documents in force.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// One document (its newest version, or --version).
    Get {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// A document's versions, newest first.
    History {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
    },
    /// A unified diff between two versions (default: the newest and the one before).
    Diff {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        from: Option<i64>,
        #[arg(long)]
        to: Option<i64>,
    },
    /// Store an earlier version again as the newest.
    Rollback {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: i64,
    },
    /// Delete a document (its history stays).
    Delete {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
    },
}

fn read_text(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn policies_path(tenant: &TenantArg, verb: &str) -> anyhow::Result<String> {
    let base = format!(
        "/admin/v1/tenants/{}/policies",
        segment(&tenant.tenant, "tenant")?
    );
    Ok(if verb.is_empty() {
        base
    } else {
        format!("{base}/{verb}")
    })
}

fn proposal(proposed: &ProposedDocument) -> anyhow::Result<Value> {
    let mut out = json!({});
    if let Some(name) = &proposed.name {
        out["name"] = json!(name);
        if let Some(file) = &proposed.file {
            out["policy"] = json!(read_text(file)?);
        }
    }
    Ok(out)
}

pub async fn policy(connect: ConnectArgs, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Validate { tenant, name, file } => {
            let body = json!({"name": name, "policy": read_text(&file)?});
            let answer = call_json(
                &connect,
                "POST",
                &policies_path(&tenant, "validate")?,
                &[],
                Some(body),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            if answer["valid"] != json!(true) {
                bail!("{} does not validate", file.display());
            }
        }
        PolicyCommand::Test {
            tenant,
            proposed,
            cases,
        } => {
            let mut body = proposal(&proposed)?;
            body["cases"] = serde_json::from_str(&read_text(&cases)?)
                .with_context(|| format!("{} is not a JSON array of cases", cases.display()))?;
            let answer = call_json(
                &connect,
                "POST",
                &policies_path(&tenant, "test")?,
                &[],
                Some(body),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            if answer["failed"] != json!(0) {
                bail!("{} decision case(s) failed", answer["failed"]);
            }
        }
        PolicyCommand::Simulate {
            tenant,
            proposed,
            principal,
            action,
            stream,
            group,
            on_tenant,
            source_ip,
            tls_version,
        } => {
            let resource = match (stream, group, on_tenant) {
                (Some(arn), _, _) => json!({"stream": arn}),
                (None, Some(arn), _) => json!({"group": arn}),
                (None, None, Some(account)) => json!({"tenant": account}),
                (None, None, None) => {
                    bail!("name the resource with --stream, --group or --on-tenant")
                }
            };
            let mut body = proposal(&proposed)?;
            body["principal"] = json!(principal);
            body["action"] = json!(action);
            body["resource"] = resource;
            body["source_ip"] = json!(source_ip);
            body["tls_version"] = json!(tls_version);
            call(
                &connect,
                "POST",
                &policies_path(&tenant, "simulate")?,
                &[],
                Some(body),
            )
            .await?;
        }
        PolicyCommand::Apply { tenant, name, file } => {
            let body = json!({"name": name, "policy": read_text(&file)?});
            call(
                &connect,
                "POST",
                &policies_path(&tenant, "apply")?,
                &[],
                Some(body),
            )
            .await?;
        }
        PolicyCommand::List { tenant } => {
            call(&connect, "GET", &policies_path(&tenant, "")?, &[], None).await?;
        }
        PolicyCommand::Get {
            tenant,
            name,
            version,
        } => {
            let mut query = vec![("name", name)];
            if let Some(v) = version {
                query.push(("version", v.to_string()));
            }
            call(
                &connect,
                "GET",
                &policies_path(&tenant, "get")?,
                &query,
                None,
            )
            .await?;
        }
        PolicyCommand::History { tenant, name } => {
            call(
                &connect,
                "GET",
                &policies_path(&tenant, "history")?,
                &[("name", name)],
                None,
            )
            .await?;
        }
        PolicyCommand::Diff {
            tenant,
            name,
            from,
            to,
        } => {
            let mut query = vec![("name", name)];
            if let Some(v) = from {
                query.push(("from", v.to_string()));
            }
            if let Some(v) = to {
                query.push(("to", v.to_string()));
            }
            let answer = call_json(
                &connect,
                "GET",
                &policies_path(&tenant, "diff")?,
                &query,
                None,
            )
            .await?;
            print!("{}", answer["diff"].as_str().unwrap_or_default());
        }
        PolicyCommand::Rollback {
            tenant,
            name,
            version,
        } => {
            let body = json!({"name": name, "version": version});
            call(
                &connect,
                "POST",
                &policies_path(&tenant, "rollback")?,
                &[],
                Some(body),
            )
            .await?;
        }
        PolicyCommand::Delete { tenant, name } => {
            let body = json!({"name": name});
            call(
                &connect,
                "POST",
                &policies_path(&tenant, "delete")?,
                &[],
                Some(body),
            )
            .await?;
        }
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Write the tenant's audit trail to stdout as JSON lines, oldest first.
    Export {
        #[command(flatten)]
        tenant: TenantArg,
        /// Start after this entry id.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Stop after this many entries.
        #[arg(long, default_value_t = 100_000)]
        max: u64,
    },
    /// Check the whole trail against its hash chain (the operator's): exits non-zero,
    /// naming what does not verify, when a row or batch was edited, deleted or added.
    Verify,
    /// Whether a tenant's allowed data events (PutRecord, GetRecords, ...) are audited.
    DataEvents {
        #[command(flatten)]
        tenant: TenantArg,
        /// on or off; without it, show the setting.
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
    },
}

pub async fn audit(connect: ConnectArgs, command: AuditCommand) -> anyhow::Result<()> {
    use std::io::Write;
    let (tenant, after, max) = match command {
        AuditCommand::Export { tenant, after, max } => (tenant, after, max),
        AuditCommand::Verify => {
            let answer = call_json(&connect, "GET", "/admin/v1/audit/verify", &[], None).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            if answer["intact"] != Value::Bool(true) {
                bail!("the audit trail does not verify");
            }
            return Ok(());
        }
        AuditCommand::DataEvents { tenant, state } => {
            let path = format!(
                "/admin/v1/tenants/{}/audit/settings",
                segment(&tenant.tenant, "tenant")?
            );
            return match state {
                None => call(&connect, "GET", &path, &[], None).await,
                Some(state) => {
                    let body = json!({"data_events": state == "on"});
                    call(&connect, "PUT", &path, &[], Some(body)).await
                }
            };
        }
    };
    let path = format!(
        "/admin/v1/tenants/{}/audit",
        segment(&tenant.tenant, "tenant")?
    );
    let mut after = after;
    let mut written = 0u64;
    let mut out = std::io::stdout().lock();
    while written < max {
        let page = (max - written).min(10_000);
        let query = [("after", after.to_string()), ("limit", page.to_string())];
        let (status, headers, bytes) = send(&connect, "GET", &path, &query, None).await?;
        refused(status, &bytes)?;
        out.write_all(&bytes)?;
        written += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        match headers
            .get("x-sluice-next-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(next) => after = next,
            None => break,
        }
    }
    out.flush()?;
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum UsageCommand {
    /// A tenant's usage and its cost, per stream, UTC hour and metric.
    Report {
        #[command(flatten)]
        tenant: TenantArg,
        /// Start: RFC 3339 (2026-11-26T00:00:00Z) or milliseconds since the epoch.
        #[arg(long)]
        from: String,
        /// End (exclusive), at most 31 days after --from; default now.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_parser = ["json", "csv"], default_value = "json")]
        format: String,
    },
}

fn epoch_ms(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text:?} is neither RFC 3339 nor milliseconds"))?
        .timestamp_millis())
}

pub async fn usage(connect: ConnectArgs, command: UsageCommand) -> anyhow::Result<()> {
    use std::io::Write;
    let UsageCommand::Report {
        tenant,
        from,
        to,
        format,
    } = command;
    let path = format!(
        "/admin/v1/tenants/{}/usage",
        segment(&tenant.tenant, "tenant")?
    );
    let to = match to {
        Some(t) => epoch_ms(&t)?,
        None => protocol::clock::Clock::now_ms(&protocol::clock::SystemClock),
    };
    let query = [
        ("from", epoch_ms(&from)?.to_string()),
        ("to", to.to_string()),
        ("format", format.clone()),
    ];
    if format == "csv" {
        let (status, _, bytes) = send(&connect, "GET", &path, &query, None).await?;
        refused(status, &bytes)?;
        std::io::stdout().lock().write_all(&bytes)?;
    } else {
        call(&connect, "GET", &path, &query, None).await?;
    }
    Ok(())
}
