-- Series, seasons and episodes (docs/INGESTION.md, "Series"). A series and an episode are
-- canonical titles (rows of `content`, content_type series / episode); these tables hold the
-- relations between them, in the catalog's canonical numbering.
CREATE TABLE seasons (
    season_id      uuid    PRIMARY KEY,  -- uuid5 of (series, season number): stable on replay
    series_id      uuid    NOT NULL REFERENCES content (canonical_id) ON DELETE CASCADE,
    season_number  integer NOT NULL,     -- 0: specials
    -- When a season listing last changed the season's offers, and when the series read model
    -- last showed them: the read-model timer refreshes the series whose first is later.
    offers_changed_at    timestamptz,
    offers_projected_at  timestamptz,
    UNIQUE (series_id, season_number)
);
CREATE INDEX seasons_offers_pending_idx ON seasons (offers_changed_at)
    WHERE offers_changed_at IS NOT NULL;

CREATE TABLE episodes (
    canonical_id     uuid    PRIMARY KEY REFERENCES content (canonical_id) ON DELETE CASCADE,
    series_id        uuid    NOT NULL REFERENCES content (canonical_id) ON DELETE CASCADE,
    season_id        uuid    REFERENCES seasons (season_id),
    season_number    integer,           -- null: the feed gave none
    episode_number   integer,
    absolute_number  integer
);
CREATE INDEX episodes_series_idx ON episodes (series_id, season_number, episode_number);

-- How a platform's seasons map onto the canonical ones when it splits or renumbers them:
-- its season `platform_season`, episode e, is canonical season `canonical_season`, episode
-- e + `episode_offset`. Learnt from episodes identified by ids or absolute numbers.
CREATE TABLE season_maps (
    series_id         uuid    NOT NULL REFERENCES content (canonical_id) ON DELETE CASCADE,
    platform          text    NOT NULL,
    platform_season   integer NOT NULL,
    canonical_season  integer NOT NULL,
    episode_offset    integer NOT NULL,
    PRIMARY KEY (series_id, platform, platform_season)
);

-- Platform items that list a whole season: their offers are the season's, whichever topic
-- brings them (a catalog item, or an availability-only update).
CREATE TABLE season_listings (
    platform          text    NOT NULL,
    platform_item_id  text    NOT NULL,
    series_id         uuid    NOT NULL REFERENCES content (canonical_id) ON DELETE CASCADE,
    season_number     integer NOT NULL,
    PRIMARY KEY (platform, platform_item_id)
);

-- Offers a platform makes for a whole season (a season listing): one row per offer and region,
-- like platform_availability's rows for a title.
CREATE TABLE season_availability (
    series_id          uuid    NOT NULL REFERENCES content (canonical_id) ON DELETE CASCADE,
    season_number      integer NOT NULL,
    platform           text    NOT NULL,
    region             text    NOT NULL,
    availability_type  text    NOT NULL,
    price_cents        integer,
    currency           text,
    deep_link          text,
    web_fallback       text,
    available_from     timestamptz,
    expires_at         timestamptz,
    PRIMARY KEY (series_id, season_number, platform, region, availability_type)
);

-- Episodes and season listings whose series is not known yet, parked like availability for
-- items not ingested yet (0011): the newest envelope per item, with the keys that name its
-- series ("imdb:tt...", "tmdb:tv:...", "platform:netflix:80100172", "title:office"). The batch
-- that maps a series with any of these keys sends the envelope back to content.raw.
CREATE TABLE pending_episodes (
    platform           text        NOT NULL,
    platform_item_id   text        NOT NULL,
    source_updated_at  timestamptz NOT NULL,
    keys               text[]      NOT NULL,
    envelope           bytea       NOT NULL,
    parked_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, platform_item_id)
);
CREATE INDEX pending_episodes_keys_idx ON pending_episodes USING gin (keys);
