-- The titles the tombstone-compaction timer looks for (agents/sync/store.py titles_to_compact):
-- those holding tombstones or a clear, oldest write first. Partial, so the many titles that
-- are simply on a list cost the index nothing; the predicate is the query's, word for word.
CREATE INDEX sync_watchlist_compactable ON sync_watchlist (updated_at)
    WHERE (state->'tombstones' NOT IN ('[]'::jsonb, '{}'::jsonb)
           OR jsonb_typeof(state->'cleared') = 'array');
