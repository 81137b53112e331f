//! The words authorization and its helpers (`authz`, `keyperms`) share: who asks, as
//! Cedar sees it, and what can go wrong building a decision.

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
    #[error("loading the tenant's policies: {0}")]
    Tenant(String),
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

    pub(crate) fn arn(&self) -> String {
        format!("arn:aws:iam::{}:{}/{}", self.account, self.kind, self.name)
    }
}
