-- How many titles each user likes (a positive taste weight), kept by the training agents in
-- the transaction of the change, as sona_title_viewers is per title: the collaborative source
-- weighs each peer by it, and counting a peer's liked titles per request was a third of a
-- recommendation's time (docs/SONA.md, "Figures").
CREATE TABLE sona_user_likes (
    user_id text    PRIMARY KEY,
    liked   integer NOT NULL
);
INSERT INTO sona_user_likes (user_id, liked)
SELECT user_id, count(*) FROM sona_viewings WHERE taste_weight > 0 GROUP BY user_id;

-- A user's liked titles by user: the peers' titles are read from this index alone.
CREATE INDEX sona_viewings_liked_by_user ON sona_viewings (user_id, content_id)
    WHERE taste_weight > 0;
