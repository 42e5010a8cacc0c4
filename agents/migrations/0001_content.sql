-- The canonical catalog: one row per title, the full record kept as a JSONB document.
CREATE TABLE content (
    canonical_id        uuid PRIMARY KEY,
    content_type        text        NOT NULL,
    title               text        NOT NULL,
    release_year        integer,
    doc                 jsonb       NOT NULL,
    -- The producer's clock for this version: an older version never overwrites a newer one.
    source_updated_at   timestamptz NOT NULL,
    last_event_id       uuid        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX content_title_year_idx ON content (lower(title), release_year);
