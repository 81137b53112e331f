//! SNS topics and subscriptions (migration 0029). Attributes and tags are JSON text the
//! service reads and writes; the catalog keeps them and the limits.

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::{Catalog, CatalogError};

/// Topics an account may have (AWS's default quota for standard topics).
pub const TOPICS_PER_ACCOUNT_MAX: i64 = 100_000;
/// Subscriptions a topic may have (AWS: 12,500,000 for a standard topic).
pub const SUBSCRIPTIONS_PER_TOPIC_MAX: i64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    pub attributes: String,
    pub tags: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub topic_id: i64,
    pub topic_name: String,
    pub account_id: String,
    /// The principal that subscribed; deliveries are made with its rights.
    pub owner_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub attributes: String,
    pub created_at_ms: i64,
}

const TOPIC_COLUMNS: &str = "topic_id, account_id, name, attributes, tags, created_at_ms";
const SUBSCRIPTION_COLUMNS: &str = "s.subscription_id, s.topic_id, t.name AS topic_name, \
     s.account_id, s.owner_arn, s.protocol, s.endpoint, s.attributes, s.created_at_ms";

fn row_to_topic(row: &sqlx::any::AnyRow) -> Result<Topic, CatalogError> {
    Ok(Topic {
        id: row.try_get("topic_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        attributes: row.try_get("attributes")?,
        tags: row.try_get("tags")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn row_to_subscription(row: &sqlx::any::AnyRow) -> Result<Subscription, CatalogError> {
    Ok(Subscription {
        id: row.try_get("subscription_id")?,
        topic_id: row.try_get("topic_id")?,
        topic_name: row.try_get("topic_name")?,
        account_id: row.try_get("account_id")?,
        owner_arn: row.try_get("owner_arn")?,
        protocol: row.try_get("protocol")?,
        endpoint: row.try_get("endpoint")?,
        attributes: row.try_get("attributes")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

/// What a subscribe asks for.
#[derive(Debug, Clone)]
pub struct NewSubscription<'a> {
    pub id: &'a str,
    pub owner_arn: &'a str,
    pub protocol: &'a str,
    pub endpoint: &'a str,
    pub attributes: &'a str,
}

impl Catalog {
    /// Meters what a topic's publishes did (requests and deliveries), through the group
    /// writer on SQLite (one commit with the writes waiting beside it).
    pub async fn meter_sns(
        &self,
        account_id: &str,
        topic_name: &str,
        counts: Vec<(crate::billing::Metric, u64)>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let (account_id, topic_name) = (account_id.to_string(), topic_name.to_string());
        self.write_grouped(move |_, meters| {
            for &(metric, count) in &counts {
                if count > 0 {
                    meters.add(&account_id, &topic_name, metric, count, now_ms);
                }
            }
            Box::pin(async { Ok(()) })
        })
        .await
    }

    /// Makes a topic, or finds the one of that name (`false`): CreateTopic is
    /// idempotent.
    pub async fn create_sns_topic(
        &self,
        account_id: &str,
        name: &str,
        attributes: &str,
        tags: &str,
        now_ms: i64,
    ) -> Result<(Topic, bool), CatalogError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOPIC_COLUMNS} FROM sns_topics WHERE account_id = $1 AND name = $2"
        )))
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok((row_to_topic(&row)?, false));
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sns_topics WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= TOPICS_PER_ACCOUNT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("An account has at most {TOPICS_PER_ACCOUNT_MAX} topics."),
            )
            .into());
        }
        let id = crate::consumers::random_id()?;
        sqlx::query(
            "INSERT INTO sns_topics (topic_id, account_id, name, attributes, tags, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(account_id)
        .bind(name)
        .bind(attributes)
        .bind(tags)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((
            Topic {
                id,
                account_id: account_id.to_string(),
                name: name.to_string(),
                attributes: attributes.to_string(),
                tags: tags.to_string(),
                created_at_ms: now_ms,
            },
            true,
        ))
    }

    pub async fn sns_topic(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Topic>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOPIC_COLUMNS} FROM sns_topics WHERE account_id = $1 AND name = $2"
        )))
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_topic).transpose()
    }

    /// An account's topics after `after`, in name order, at most `limit`.
    pub async fn list_sns_topics(
        &self,
        account_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Topic>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOPIC_COLUMNS} FROM sns_topics WHERE account_id = $1 AND name > $2 \
             ORDER BY name LIMIT $3"
        )))
        .bind(account_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_topic).collect()
    }

    /// Deletes a topic and its subscriptions; `false` when there was none.
    pub async fn delete_sns_topic(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT topic_id FROM sns_topics WHERE account_id = $1 AND name = $2",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM sns_subscriptions WHERE topic_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sns_topics WHERE topic_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a topic's attributes (JSON).
    pub async fn set_sns_topic_attributes(
        &self,
        topic_id: i64,
        attributes: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE sns_topics SET attributes = $1 WHERE topic_id = $2")
            .bind(attributes)
            .bind(topic_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Replaces a topic's tags (JSON).
    pub async fn set_sns_topic_tags(&self, topic_id: i64, tags: &str) -> Result<(), CatalogError> {
        sqlx::query("UPDATE sns_topics SET tags = $1 WHERE topic_id = $2")
            .bind(tags)
            .bind(topic_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Subscribes an endpoint to a topic, or finds the subscription the same protocol
    /// and endpoint already have there (`false`).
    pub async fn subscribe_sns(
        &self,
        topic: &Topic,
        new: &NewSubscription<'_>,
        now_ms: i64,
    ) -> Result<(Subscription, bool), CatalogError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions s JOIN sns_topics t \
             ON t.topic_id = s.topic_id WHERE s.topic_id = $1 AND s.protocol = $2 AND s.endpoint = $3"
        )))
        .bind(topic.id)
        .bind(new.protocol)
        .bind(new.endpoint)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok((row_to_subscription(&row)?, false));
        }
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM sns_subscriptions WHERE topic_id = $1 LIMIT $2) x",
        )
        .bind(topic.id)
        .bind(SUBSCRIPTIONS_PER_TOPIC_MAX)
        .fetch_one(&mut *tx)
        .await?;
        if count >= SUBSCRIPTIONS_PER_TOPIC_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A topic has at most {SUBSCRIPTIONS_PER_TOPIC_MAX} subscriptions."),
            )
            .into());
        }
        sqlx::query(
            "INSERT INTO sns_subscriptions (subscription_id, topic_id, account_id, owner_arn, \
             protocol, endpoint, attributes, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id)
        .bind(topic.id)
        .bind(&topic.account_id)
        .bind(new.owner_arn)
        .bind(new.protocol)
        .bind(new.endpoint)
        .bind(new.attributes)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((
            Subscription {
                id: new.id.to_string(),
                topic_id: topic.id,
                topic_name: topic.name.clone(),
                account_id: topic.account_id.clone(),
                owner_arn: new.owner_arn.to_string(),
                protocol: new.protocol.to_string(),
                endpoint: new.endpoint.to_string(),
                attributes: new.attributes.to_string(),
                created_at_ms: now_ms,
            },
            true,
        ))
    }

    pub async fn sns_subscription(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<Option<Subscription>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions s JOIN sns_topics t \
             ON t.topic_id = s.topic_id WHERE s.subscription_id = $1 AND s.account_id = $2"
        )))
        .bind(id)
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_subscription).transpose()
    }

    /// Removes a subscription; `false` when there was none.
    pub async fn delete_sns_subscription(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<bool, CatalogError> {
        let done = sqlx::query(
            "DELETE FROM sns_subscriptions WHERE subscription_id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a subscription's attributes (JSON).
    pub async fn set_sns_subscription_attributes(
        &self,
        id: &str,
        attributes: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE sns_subscriptions SET attributes = $1 WHERE subscription_id = $2")
            .bind(attributes)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// How many subscriptions a topic has (counted up to the limit).
    pub async fn count_sns_subscriptions(&self, topic_id: i64) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM sns_subscriptions WHERE topic_id = $1 LIMIT $2) x",
        )
        .bind(topic_id)
        .bind(SUBSCRIPTIONS_PER_TOPIC_MAX)
        .fetch_one(self.pool())
        .await?)
    }

    /// An account's subscriptions (of one topic, when `topic_id` is given) after
    /// `after`, in id order, at most `limit`.
    pub async fn list_sns_subscriptions(
        &self,
        account_id: &str,
        topic_id: Option<i64>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Subscription>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions s JOIN sns_topics t \
             ON t.topic_id = s.topic_id WHERE s.account_id = $1 AND s.subscription_id > $2 \
             AND ($3 = 0 OR s.topic_id = $4) ORDER BY s.subscription_id LIMIT $5"
        )))
        .bind(account_id)
        .bind(after)
        .bind(i64::from(topic_id.is_some()))
        .bind(topic_id.unwrap_or(0))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_subscription).collect()
    }
}
