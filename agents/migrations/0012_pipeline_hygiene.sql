-- What normalization dropped or changed of the applied version of each platform item
-- (contracts/catalog_warnings.py): [{"kind", "field", "message"}, ...]. `mgw ingest-report`.
ALTER TABLE entity_mappings ADD COLUMN warnings jsonb NOT NULL DEFAULT '[]'::jsonb;
CREATE INDEX entity_mappings_warned_idx ON entity_mappings (platform, platform_item_id)
    WHERE warnings <> '[]'::jsonb;

-- Rows a sweep or batch could not process, set aside so the work behind them goes on. One per
-- (agent, entity): `version` is the row version that failed; a newer version is tried again.
-- Readiness and mgw_quarantined_rows report them; deleting a row retries it.
CREATE TABLE quarantine (
    agent          text        NOT NULL,
    entity_id      text        NOT NULL,
    version        text        NOT NULL,
    reason         text        NOT NULL,
    error          text        NOT NULL,
    attempts       integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent, entity_id)
);

-- Who is enriching which version of a title: the event path and the sweep each claim a title's
-- version before embedding it, so one version is embedded (and announced) once. A claim that
-- outlives `claimed_until` (its worker died) may be taken over.
CREATE TABLE enrichment_claims (
    canonical_id  uuid        PRIMARY KEY,
    version       timestamptz NOT NULL,
    claimed_until timestamptz NOT NULL,
    claimed_by    text        NOT NULL
);
