-- The population-trained layer of SONA's adapter (agents/sona/population.py): one low-rank map
-- learned from every user's liked titles, retrained by the `sona-population` timer; answers use
-- the latest version. Per-user adapters trained on a user's ~20 events added nothing over the
-- profile; this one, trained on all users' events, does (docs/SONA.md, "Quality", fourth pass).
CREATE TABLE sona_population_layers (
    version    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dim        integer     NOT NULL,
    rank       integer     NOT NULL,
    -- float32, little endian: A (rank x dim), B (rank x dim), then the item bias (dim).
    weights    bytea       NOT NULL,
    triples    integer     NOT NULL,
    users      integer     NOT NULL,
    trained_at timestamptz NOT NULL DEFAULT now()
);
