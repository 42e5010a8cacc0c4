-- RFC 8628 device codes (docs/AUTH.md, "TV sign-in"), written by the auth agents. Both codes
-- are stored as SHA-256 only: the device code is a bearer secret, the user code a short one.
CREATE TABLE auth_device_codes (
    device_code_hash text        PRIMARY KEY,
    user_code_hash   text        NOT NULL UNIQUE,
    client_id        text        NOT NULL,
    scope            text,
    device           jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    -- The polling interval in force: raised by 5 s at each slow_down (RFC 8628 section 3.5).
    interval_s       integer     NOT NULL,
    last_polled_at   timestamptz,
    -- pending, approved, denied, or consumed (tokens issued: single use).
    status           text        NOT NULL DEFAULT 'pending',
    user_id          text,
    granted_scope    text
);
CREATE INDEX auth_device_codes_expiry ON auth_device_codes (expires_at);
