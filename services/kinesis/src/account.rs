//! Account-level settings: DescribeAccountSettings and UpdateAccountSettings (the
//! minimum throughput billing commitment, with AWS's 24-hour minimum), authorized on
//! the caller's tenant.

use catalog::settings::Commitment;
use edge::{Caller, Resource};
use protocol::model::*;
use protocol::wire::Timestamp;
use protocol::{ApiError, validate};

use crate::state::*;

fn out(commitment: &Commitment, now_ms: i64) -> AccountSettingsOutput {
    let status = commitment.status(now_ms);
    let stamp = |ms: Option<i64>| ms.map(|epoch_ms| Timestamp { epoch_ms });
    let ended = commitment.ends_at_ms.filter(|&end| end <= now_ms);
    let on = commitment.started_at_ms.is_some() && ended.is_none();
    AccountSettingsOutput {
        minimum_throughput_billing_commitment: CommitmentOut {
            status: status.as_str(),
            started_at: stamp(commitment.started_at_ms),
            ended_at: stamp(ended),
            earliest_allowed_end_at: if on {
                stamp(commitment.earliest_allowed_end_ms())
            } else {
                None
            },
        },
    }
}

async fn authorize(state: &Kinesis, caller: &Caller, action: &str) -> Result<(), ApiError> {
    state
        .authz
        .authorize(
            caller,
            action,
            Resource::Tenant {
                account: &caller.account_id,
            },
        )
        .await
}

pub(crate) async fn describe(
    state: &Kinesis,
    caller: &Caller,
) -> Result<AccountSettingsOutput, ApiError> {
    authorize(state, caller, "kinesis:DescribeAccountSettings").await?;
    let commitment = state
        .catalog
        .commitment(&caller.account_id)
        .await
        .map_err(api)?;
    Ok(out(&commitment, state.clock.now_ms()))
}

pub(crate) async fn update(
    state: &Kinesis,
    caller: &Caller,
    input: UpdateAccountSettingsInput,
) -> Result<AccountSettingsOutput, ApiError> {
    let asked = validate::required(
        input.minimum_throughput_billing_commitment,
        "minimumThroughputBillingCommitment",
    )?;
    let status = validate::required(asked.status, "minimumThroughputBillingCommitment.status")?;
    let enable = match status.as_str() {
        "ENABLED" => true,
        "DISABLED" => false,
        _ => {
            return Err(ApiError::validation(
                &status,
                "minimumThroughputBillingCommitment.status",
                "Member must satisfy enum value set: [ENABLED, DISABLED]",
            ));
        }
    };
    authorize(state, caller, "kinesis:UpdateAccountSettings").await?;
    let now = state.clock.now_ms();
    let commitment = state
        .catalog
        .update_commitment(&caller.account_id, enable, now)
        .await
        .map_err(api)?;
    Ok(out(&commitment, now))
}
