-- SNS (migration 0029): topics and their subscriptions. Attributes are JSON of what was
-- set (defaults are applied when read); a subscription remembers the principal that
-- made it, whose rights its deliveries are made with.
CREATE TABLE sns_topics (
    topic_id BIGINT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON: attribute name -> value
    attributes TEXT NOT NULL,
    -- JSON: tag key -> value
    tags TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE sns_subscriptions (
    -- the last part of the subscription's ARN (a UUID)
    subscription_id TEXT NOT NULL PRIMARY KEY,
    topic_id BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    owner_arn TEXT NOT NULL,
    protocol TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    -- JSON: attribute name -> value
    attributes TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX sns_subscriptions_by_topic ON sns_subscriptions (topic_id, subscription_id);
CREATE INDEX sns_subscriptions_by_account ON sns_subscriptions (account_id, subscription_id);
