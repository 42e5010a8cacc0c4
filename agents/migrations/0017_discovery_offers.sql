-- Where a title is offered, in a form an index can search (docs/DISCOVERY.md, "Filters and
-- where they run"): "on Netflix", "in GB" and the platform facet of a browse read these keys
-- through their GIN indexes instead of every title's offers. Derived from the document, like
-- the columns of 0013, so every writer keeps them current without knowing they exist.
--
-- The keys of one offer listed in at least one region: its platform ('netflix'), the platform
-- in each region ('netflix@US') and each region alone ('@US'). An offer without regions means
-- the title left the platform and gives none.
-- open_offer_keys: offers without a window (no available_from, no available_until), current
-- whenever they are read. timed_offer_keys: offers with a window, current only between its
-- ends, which a query checks against the document at the time it runs.
CREATE FUNCTION discovery_offer_keys(availability jsonb, timed boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
    FROM jsonb_array_elements(
            CASE WHEN jsonb_typeof(availability) = 'array' THEN availability ELSE '[]' END) o,
         jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(o->'regions') = 'array' THEN o->'regions' ELSE '[]' END) r,
         LATERAL (VALUES (o->>'platform'), (o->>'platform' || '@' || r), ('@' || r)) AS keys(k)
    WHERE o->>'platform' IS NOT NULL
      AND (o->>'available_from' IS NOT NULL OR o->>'available_until' IS NOT NULL) = timed
$$;

ALTER TABLE content
    ADD COLUMN open_offer_keys text[]
        GENERATED ALWAYS AS (discovery_offer_keys(doc->'availability', false)) STORED,
    ADD COLUMN timed_offer_keys text[]
        GENERATED ALWAYS AS (discovery_offer_keys(doc->'availability', true)) STORED;

CREATE INDEX content_open_offer_keys_idx ON content USING gin (open_offer_keys);
CREATE INDEX content_timed_offer_keys_idx ON content USING gin (timed_offer_keys);
-- Browsing a genre ("drama"): the titles carrying it, without reading every document.
CREATE INDEX content_genres_idx ON content USING gin ((doc->'genres'));
