-- Personalization (docs/SONA.md): each user's LoRA adapters, taste profile and viewings, and
-- the event ids already folded in (a redelivered event changes nothing).

-- Every stored version of a user's adapter; only the user layer (agents/sona/adapter_codec.py).
-- The primary key serves "latest version of a user" as one backward index scan.
CREATE TABLE lora_adapters (
    user_id             text        NOT NULL,
    adapter_name        text        NOT NULL DEFAULT 'default',
    version             integer     NOT NULL CHECK (version >= 1),
    weights             bytea       NOT NULL,
    dtype               text        NOT NULL,
    dim                 integer     NOT NULL,
    rank                integer     NOT NULL,
    size_bytes          integer     NOT NULL,
    training_iterations integer     NOT NULL,
    -- How many usable viewings the round trained on.
    training_examples   integer     NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, adapter_name, version)
);

-- The profile rules' state (agents/sona/profile.py): the decayed taste sum (float64, little
-- endian, `dim` of them) referenced to taste_as_of, genre affinities, the 24-slot UTC hourly
-- histogram, the device mix, and how many events arrived since the adapter was last trained.
CREATE TABLE user_profiles (
    user_id               text        PRIMARY KEY,
    dim                   integer     NOT NULL,
    taste                 bytea       NOT NULL,
    taste_as_of           timestamptz,
    genre_affinities      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    hourly                integer[]   NOT NULL,
    device_mix            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    events_applied        integer     NOT NULL DEFAULT 0,
    events_since_training integer     NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One row per (user, title): the latest viewing session and whether it was counted, so a
-- title played, paused and resumed is one viewing, and a replay after finishing a rewatch.
CREATE TABLE sona_viewings (
    user_id        text             NOT NULL,
    content_id     uuid             NOT NULL,
    completion     double precision NOT NULL,
    counted        boolean          NOT NULL,
    finished_count integer          NOT NULL DEFAULT 0,
    rewatch        boolean          NOT NULL DEFAULT false,
    rating         smallint,
    watched_at     timestamptz      NOT NULL,
    -- The hour (UTC) of the counted viewing: the time-of-day context reads it.
    watched_hour   smallint         NOT NULL,
    PRIMARY KEY (user_id, content_id)
);
CREATE INDEX sona_viewings_counted ON sona_viewings (user_id, watched_at DESC) WHERE counted;
CREATE INDEX sona_viewings_by_title ON sona_viewings (content_id) WHERE counted;

