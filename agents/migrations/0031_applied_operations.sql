-- Operations an agent has applied, by event id (agents/framework/applied.py): a write retried
-- with the same Idempotency-Key, or a record redelivered, carries the same event id and is
-- applied once. Claimed in the transaction of the effects; pruned after the topics' retention.
CREATE TABLE applied_operations (
    agent      text        NOT NULL,
    event_id   uuid        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent, event_id)
);
CREATE INDEX applied_operations_age_idx ON applied_operations (applied_at);
