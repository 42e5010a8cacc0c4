-- Keyword search for discovery (docs/DISCOVERY.md): full text over what a title is called and
-- what it is about, and trigram similarity of its matching form, so a typo ("shawshank
-- redemtion") or a missing hyphen ("spiderman") still finds the title.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Derived from the document, so every writer keeps them current without knowing they exist.
-- Title words weigh most (A), then keywords and genres (B), then the description (C).
ALTER TABLE content
    ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english',
            coalesce(doc->>'title', '') || ' ' || coalesce(doc->>'original_title', '') || ' '
            || coalesce(doc->>'alternate_titles', '')), 'A')
        || setweight(to_tsvector('english',
            coalesce(doc->>'keywords', '') || ' ' || coalesce(doc->>'genres', '')), 'B')
        || setweight(to_tsvector('english', coalesce(doc->>'description', '')), 'C')
    ) STORED,
    ADD COLUMN popularity real GENERATED ALWAYS AS (
        coalesce((doc->>'popularity_score')::real, 0)
    ) STORED;

CREATE INDEX content_search_document_idx ON content USING gin (search_document);
-- GiST rather than GIN: it also orders by trigram distance (`<->`), so the closest titles come
-- first without scoring every title that shares a trigram with the query.
CREATE INDEX content_title_trigram_idx ON content USING gist (normalized_title gist_trgm_ops);
-- Browsing ("on Netflix from the 90s"): the most popular titles passing the filters.
CREATE INDEX content_popularity_idx ON content (popularity DESC, canonical_id);
