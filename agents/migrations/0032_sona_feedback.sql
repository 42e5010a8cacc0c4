-- Personalization feedback and taste bookkeeping (docs/SONA.md): a title's rating and
-- dismissal, what it weighs in the user's taste, and what the stored taste sum holds for it.
-- They differ while the title has no vector yet: the vector's arrival folds the difference in.
-- watched_hour becomes the hour on the user's own clock (user_profiles.time_zone).

ALTER TABLE sona_viewings
    ADD COLUMN engagement    double precision,
    ADD COLUMN rated_at      timestamptz,
    ADD COLUMN dismissed_at  timestamptz,
    ADD COLUMN taste_weight  double precision NOT NULL DEFAULT 0,
    ADD COLUMN folded_weight double precision NOT NULL DEFAULT 0,
    ADD COLUMN folded_at     timestamptz;

-- Rows counted before: their engagement (docs/RULES.md's label at a neutral rating) was folded in
-- when they were counted, at the time they were watched.
UPDATE sona_viewings
SET engagement = 0.4 * (0.5 + (completion - 0.3) / 1.4) + 0.15 + CASE WHEN rewatch THEN 0.2 ELSE 0 END,
    folded_at = watched_at
WHERE counted AND completion >= 0.3;
UPDATE sona_viewings SET taste_weight = engagement, folded_weight = engagement
WHERE engagement IS NOT NULL;

-- Titles whose weight is not folded yet (no vector when it changed), found by title when its
-- vector arrives.
CREATE INDEX sona_viewings_unfolded ON sona_viewings (content_id)
    WHERE taste_weight <> folded_weight;

ALTER TABLE user_profiles ADD COLUMN time_zone text;

-- Titles a user likes (a positive taste weight): what viewers with shared taste are found by.
CREATE INDEX sona_viewings_liked ON sona_viewings (content_id, user_id) WHERE taste_weight > 0;

-- How many users like each title here (a positive taste weight), kept by the training agents
-- in the transaction of the change: the popularity this system observes itself, which the
-- catalog's own popularity may not have (agents/sona/candidates_store.py).
CREATE TABLE sona_title_viewers (
    content_id uuid    PRIMARY KEY,
    viewers    integer NOT NULL
);
CREATE INDEX sona_title_viewers_most ON sona_title_viewers (viewers DESC, content_id);
