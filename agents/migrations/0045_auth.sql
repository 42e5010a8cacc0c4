-- The built-in token service (docs/AUTH.md, "The token service"); written by the auth agents
-- (agents/auth) and `mgw auth rotate-key` only.

-- Signing keys. One is active (retired_at null); a retired key keeps verifying until
-- verify_until, when the last token it signed has expired, and is then withdrawn from Redis.
-- The private key is stored as PEM: whoever reads this table can sign tokens, so it is as
-- secret as AUTH_JWT_SECRET (docs/AUTH.md).
CREATE TABLE auth_signing_keys (
    kid          text        PRIMARY KEY,
    algorithm    text        NOT NULL,
    private_pem  text        NOT NULL,
    public_jwk   jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    verify_until timestamptz
);
-- At most one active key, so two agents starting at once cannot both create one.
CREATE UNIQUE INDEX auth_signing_keys_one_active ON auth_signing_keys ((true))
    WHERE retired_at IS NULL;

-- A sign-in session: one refresh-token family, revoked as a whole.
CREATE TABLE auth_sessions (
    session_id     text        PRIMARY KEY,
    user_id        text        NOT NULL,
    grant_type     text        NOT NULL,
    scope          text        NOT NULL,
    roles          text[]      NOT NULL DEFAULT '{}',
    tier           text        NOT NULL DEFAULT 'free',
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

-- Refresh tokens by the SHA-256 of their value (never the value). used_at set: rotated
-- already, so a second use is a reuse and revokes the session.
CREATE TABLE auth_refresh_tokens (
    token_hash  text        PRIMARY KEY,
    session_id  text        NOT NULL REFERENCES auth_sessions (session_id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX auth_refresh_tokens_session ON auth_refresh_tokens (session_id);
