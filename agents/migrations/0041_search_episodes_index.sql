-- The searches by words find episodes whatever the filters (agents/discovery/store.py,
-- _SEARCHABLE: `content_type = 'episode' OR (filters)`). With no index answering the episode
-- arm of that OR, PostgreSQL could not combine the full-text and genre indexes and scanned
-- the table for a filtered keyword search ("dance magic in Paris" read as music: 72,000 rows
-- read for 2,000 at 100,000 titles, 123-140 ms). With this one it takes a BitmapOr of the
-- episodes and the genre's titles, ANDed with the full-text index: 62 ms at the same load; the
-- bench's keyword queries p95 168 -> 96 ms (docs/DISCOVERY.md, "Figures"). Small: episodes
-- only, their ids.
CREATE INDEX content_episodes_idx ON content (canonical_id) WHERE content_type = 'episode';
