-- Columns the pipeline resolves and enriches by, kept next to the JSONB document.
ALTER TABLE content
    ADD COLUMN normalized_title   text,
    -- Words of the normalized title: fuzzy-title candidates share at least one of them.
    ADD COLUMN title_words        text[],
    ADD COLUMN eidr               text,
    ADD COLUMN imdb_id            text,
    ADD COLUMN tmdb_id            text,
    ADD COLUMN data_quality_score real,
    -- updated_at of the row version last embedded: enrichment is due when the row is newer.
    ADD COLUMN enriched_version   timestamptz,
    ADD COLUMN enriched_at        timestamptz;

CREATE INDEX content_normalized_title_idx ON content (normalized_title);
CREATE INDEX content_title_words_idx ON content USING gin (title_words);
CREATE INDEX content_eidr_idx ON content (eidr) WHERE eidr IS NOT NULL;
CREATE INDEX content_imdb_idx ON content (imdb_id) WHERE imdb_id IS NOT NULL;
CREATE INDEX content_tmdb_idx ON content (tmdb_id) WHERE tmdb_id IS NOT NULL;
CREATE INDEX content_enrich_due_idx ON content (canonical_id)
    WHERE enriched_version IS NULL OR enriched_version < updated_at;

-- One row per (title, platform, region, offer type): what a client can watch where, until when.
-- A row that left a feed is kept with expires_at set to the time it left.
CREATE TABLE platform_availability (
    canonical_id      uuid        NOT NULL REFERENCES content ON DELETE CASCADE,
    platform          text        NOT NULL,
    region            char(2)     NOT NULL,
    availability_type text        NOT NULL,
    price_cents       integer,
    currency          char(3),
    deep_link         text,
    web_fallback      text,
    available_from    timestamptz,
    expires_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (canonical_id, platform, region, availability_type)
);
CREATE INDEX platform_availability_expiry_idx ON platform_availability (expires_at)
    WHERE expires_at IS NOT NULL;

-- Which canonical title a platform's item became, and the newest source version applied.
CREATE TABLE entity_mappings (
    platform          text        NOT NULL,
    platform_item_id  text        NOT NULL,
    canonical_id      uuid        NOT NULL REFERENCES content ON DELETE CASCADE,
    method            text        NOT NULL,
    confidence        real        NOT NULL,
    source_updated_at timestamptz NOT NULL,
    availability_updated_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, platform_item_id)
);
CREATE INDEX entity_mappings_canonical_idx ON entity_mappings (canonical_id);

-- Transactional outbox: events written in the same transaction as the change they describe,
-- published after commit and deleted once the broker acknowledged them.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    envelope   bytea       NOT NULL,
    event_id   uuid        NOT NULL,
    event_type text        NOT NULL,
    version    integer     NOT NULL,
    correlation_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Expiry notices already emitted, so the periodic check sends each one once.
CREATE TABLE expiration_notifications (
    canonical_id uuid        NOT NULL,
    platform     text        NOT NULL,
    region       char(2)     NOT NULL,
    window_days  integer     NOT NULL,
    expires_at   timestamptz NOT NULL,
    notified_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (canonical_id, platform, region, window_days, expires_at)
);
