-- Typo-tolerant search of titles and people (docs/DISCOVERY.md, "Typo tolerance"):
-- - search_words: the catalog's vocabulary, every word of a title's matching form and of a
--   credited name (two letters or more);
-- - search_word_variants: each word with one letter deleted (words of 4 letters or more) and
--   with two deleted (7 or more), the "symmetric delete" index: a query word within its allowed
--   typos of a catalog word shares a variant with it (a substitution or an adjacent swap is one
--   deletion on each side), so candidates come from a b-tree lookup of the query word's own
--   variants, and the agent checks the true (Damerau) distance of the few found;
-- - content_people: one row per credit, with the words of the name, for "spielberg" and "movies
--   by Steven Spielberg".
-- All three are derived from content by the triggers below, in the transaction that writes the
-- title, as the generated columns of 0013 and 0017 are: every writer keeps them current without
-- knowing they exist. mgw_rebuild_search_words() derives them again from the whole catalog
-- (`mgw db reindex-search`).
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TABLE search_words (word text PRIMARY KEY);
-- The last word of a query matches as a prefix: LIKE 'prefix%' through this index.
CREATE INDEX search_words_prefix_idx ON search_words (word text_pattern_ops);

CREATE TABLE search_word_variants (
    variant text NOT NULL,
    word    text NOT NULL,
    PRIMARY KEY (variant, word)
);

CREATE TABLE content_people (
    canonical_id uuid NOT NULL REFERENCES content (canonical_id) ON DELETE CASCADE,
    position     int  NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL,
    name_form    text NOT NULL,
    name_words   text[] NOT NULL,
    PRIMARY KEY (canonical_id, position)
);
CREATE INDEX content_people_words_idx ON content_people USING gin (name_words);
CREATE INDEX content_people_form_idx ON content_people (name_form text_pattern_ops);

-- The matching form of a name, as agents/discovery/words.py name_form() computes it.
CREATE FUNCTION mgw_name_form(name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT btrim(regexp_replace(
        regexp_replace(lower(unaccent(name)), '[''’]', '', 'g'), '[^[:alnum:]]+', ' ', 'g'))
$$;

-- A word and its variants with one or two letters deleted (see above).
CREATE FUNCTION mgw_word_variants(word text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT word
    UNION
    SELECT overlay(word PLACING '' FROM i FOR 1)
    FROM generate_series(1, length(word)) i WHERE length(word) >= 4
    UNION
    SELECT overlay(overlay(word PLACING '' FROM i FOR 1) PLACING '' FROM j FOR 1)
    FROM generate_series(1, length(word)) i, generate_series(1, length(word) - 1) j
    WHERE length(word) >= 7
$$;

-- Adds the words the vocabulary lacks, with their variants. Words are never removed: a word no
-- title uses any more only costs a lookup that finds no title.
CREATE FUNCTION mgw_add_search_words(words text[]) RETURNS void
LANGUAGE sql AS $$
    WITH added AS (
        INSERT INTO search_words (word)
        SELECT DISTINCT w FROM unnest(words) w WHERE length(w) > 1 ORDER BY 1
        ON CONFLICT DO NOTHING
        RETURNING word
    )
    INSERT INTO search_word_variants (variant, word)
    SELECT v, a.word FROM added a, mgw_word_variants(a.word) v
    ON CONFLICT DO NOTHING
$$;

CREATE FUNCTION mgw_index_people(ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM content_people WHERE canonical_id = ANY(ids);
    INSERT INTO content_people (canonical_id, position, name, role, name_form, name_words)
    SELECT c.canonical_id, cr.n::int, cr.value->>'name', cr.value->>'role', f.form,
           array(SELECT DISTINCT w FROM regexp_split_to_table(f.form, ' ') w WHERE length(w) > 1)
    FROM content c,
         jsonb_array_elements(coalesce(c.doc->'credits', '[]')) WITH ORDINALITY AS cr(value, n),
         LATERAL (SELECT mgw_name_form(cr.value->>'name') AS form) f
    WHERE c.canonical_id = ANY(ids) AND f.form <> '';
    PERFORM mgw_add_search_words(array(
        SELECT DISTINCT w FROM content c, unnest(c.title_words) w WHERE c.canonical_id = ANY(ids)
        UNION
        SELECT DISTINCT w FROM content_people p, unnest(p.name_words) w
        WHERE p.canonical_id = ANY(ids)));
END
$$;

CREATE FUNCTION mgw_content_search_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mgw_index_people(array(SELECT canonical_id FROM changed));
    RETURN NULL;
END
$$;

-- An update re-indexes only the titles whose words or credits changed: availability syncs
-- rewrite thousands of documents at a time without touching either.
CREATE FUNCTION mgw_content_search_words_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mgw_index_people(array(
        SELECT n.canonical_id FROM changed n JOIN before o USING (canonical_id)
        WHERE n.title_words IS DISTINCT FROM o.title_words
           OR n.doc->'credits' IS DISTINCT FROM o.doc->'credits'));
    RETURN NULL;
END
$$;

-- Statement-level with transition tables: a batch of 2,000 titles is indexed in one pass.
CREATE TRIGGER content_search_words_insert AFTER INSERT ON content
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION mgw_content_search_words();
CREATE TRIGGER content_search_words_update AFTER UPDATE ON content
    REFERENCING OLD TABLE AS before NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION mgw_content_search_words_changed();

CREATE FUNCTION mgw_rebuild_search_words() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE search_words, search_word_variants, content_people;
    PERFORM mgw_index_people(array(SELECT canonical_id FROM content));
    RETURN (SELECT count(*) FROM search_words);
END
$$;

SELECT mgw_rebuild_search_words();
