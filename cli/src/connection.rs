//! `sluice connection`: register where a tenant's Firehose destinations are and how to
//! sign in to them. A destination's `RoleARN` `arn:aws:iam::ACCOUNT:role/NAME` names
//! the connection `NAME`. Secrets go to the server sealed; they are never shown again.

use serde_json::json;

use crate::admin::{ConnectArgs, call, segment, tenant_segment};

#[derive(clap::Subcommand)]
pub enum ConnectionCommand {
    /// Register (or replace) a connection.
    Put {
        /// The connection's name (the role name in a destination's RoleARN).
        name: String,
        /// The tenant (account id); default: the caller's own.
        #[arg(long)]
        tenant: Option<String>,
        /// An S3-compatible endpoint: https://..., or http:// on a loopback address.
        #[arg(long)]
        s3_endpoint: Option<String>,
        #[arg(long)]
        s3_region: Option<String>,
        #[arg(long)]
        s3_access_key_id: Option<String>,
        /// The secret key; better given in the environment than on the command line.
        #[arg(long, env = "SLUICE_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
        s3_secret_access_key: Option<String>,
        /// Virtual-hosted-style bucket addressing (default: path-style).
        #[arg(long)]
        s3_virtual_hosted: bool,
        /// HTTP basic credentials for a search cluster: the user.
        #[arg(long)]
        http_username: Option<String>,
        /// ... and the password (better given in the environment).
        #[arg(long, env = "SLUICE_HTTP_PASSWORD", hide_env_values = true)]
        http_password: Option<String>,
    },
    /// List a tenant's connections (settings only).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a connection.
    Delete {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub async fn run(connect: ConnectArgs, command: ConnectionCommand) -> anyhow::Result<()> {
    match command {
        ConnectionCommand::Put {
            name,
            tenant,
            s3_endpoint,
            s3_region,
            s3_access_key_id,
            s3_secret_access_key,
            s3_virtual_hosted,
            http_username,
            http_password,
        } => {
            let path = format!(
                "/admin/v1/tenants/{}/connections/{}",
                tenant_segment(&tenant)?,
                segment(&name, "connection name")?
            );
            let mut settings = json!({});
            if let Some(v) = s3_endpoint {
                settings["s3_endpoint"] = v.into();
            }
            if let Some(v) = s3_region {
                settings["s3_region"] = v.into();
            }
            if let Some(v) = s3_access_key_id {
                settings["s3_access_key_id"] = v.into();
            }
            if s3_virtual_hosted {
                settings["s3_virtual_hosted"] = true.into();
            }
            if let Some(v) = http_username {
                settings["http_username"] = v.into();
            }
            let mut body = json!({ "settings": settings });
            if let Some(secret) = s3_secret_access_key {
                body["s3_secret_access_key"] = secret.into();
            }
            if let Some(password) = http_password {
                body["http_password"] = password.into();
            }
            call(&connect, "PUT", &path, &[], Some(body)).await
        }
        ConnectionCommand::List { tenant } => {
            let path = format!("/admin/v1/tenants/{}/connections", tenant_segment(&tenant)?);
            call(&connect, "GET", &path, &[], None).await
        }
        ConnectionCommand::Delete { name, tenant } => {
            let path = format!(
                "/admin/v1/tenants/{}/connections/{}",
                tenant_segment(&tenant)?,
                segment(&name, "connection name")?
            );
            call(&connect, "DELETE", &path, &[], None).await
        }
    }
}
