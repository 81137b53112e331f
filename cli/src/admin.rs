//! `sluice tenant|principal|key ...`: the administration API from the command line.
//! Each verb is one signed HTTPS request to a running server; the answer is printed as
//! JSON on stdout, an error as the server's `__type: message` on stderr.

use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::bench::tls_connector;
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
fn segment(text: &str, what: &str) -> anyhow::Result<String> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bail!("{what} {text:?}: use letters, digits, '-', '_' and '.' here");
    }
    Ok(text.to_string())
}

impl PrincipalRef {
    fn path(&self) -> anyhow::Result<String> {
        Ok(format!(
            "/admin/v1/tenants/{}/principals/{}/{}/access-keys",
            segment(&self.tenant, "tenant")?,
            if self.role { "role" } else { "user" },
            segment(&self.user, "name")?
        ))
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
    call(&connect, method, &path, body).await
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
    };
    call(&connect, method, &path, body).await
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
    call(&connect, method, &path, None).await
}

/// One signed request; prints the answer.
async fn call(
    connect: &ConnectArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
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
    let (amz_date, authorization) = signer.sign_request(
        method,
        path,
        "sluice",
        &[("content-type", "application/json")],
        &body,
        chrono::Utc::now(),
    );

    let connector = tls_connector(&connect.ca)?;
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let name = ServerName::try_from(host.clone())
        .with_context(|| format!("{host} is not a server name"))?;
    let tls = connector
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", &connect.endpoint)
        .header("content-type", "application/json")
        .header("x-amz-date", amz_date)
        .header("authorization", authorization)
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let kind = value["__type"].as_str().unwrap_or("Error");
        let message = value["message"].as_str().unwrap_or("");
        bail!("{status}: {kind}: {message}");
    }
    if !value.is_null() {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}
