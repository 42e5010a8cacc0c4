-- Tokens bound to a profile of the account (docs/AUTH.md, "Which profile a request acts as"):
-- a TV approved for the kids profile carries `"profile": <id>` in every access token, so it
-- can never act as the parent. Null: unbound, as before.

-- The profile the approver chose (or acted as) for the TV, until the TV collects its tokens.
ALTER TABLE auth_device_codes ADD COLUMN profile_id text;

-- Kept by the session (the refresh-token family), so every refresh keeps the binding.
ALTER TABLE auth_sessions ADD COLUMN profile_id text;
