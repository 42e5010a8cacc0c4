-- One expiry notice per offer and window: (title, platform, region, offer type, window). The
-- offer type joins the key (a rental and a purchase ending together are two notices) and the
-- expiry time leaves it (a feed moving expires_at by seconds is the same expiry, not a new
-- one); `expires_at` is kept as the expiry announced, to tell a new round (an expiry moved by
-- a day or more) from jitter (agents/ingestion/availability.py).
ALTER TABLE expiration_notifications DROP CONSTRAINT expiration_notifications_pkey;
ALTER TABLE expiration_notifications ADD COLUMN availability_type text;

-- The notices sent so far named no offer type: attribute each to the offers that expire at
-- the time it announced, where they still do; the rest are of offers since gone or moved.
INSERT INTO expiration_notifications
    (canonical_id, platform, region, window_days, expires_at, notified_at, availability_type)
SELECT DISTINCT n.canonical_id, n.platform, n.region, n.window_days, n.expires_at,
       n.notified_at, a.availability_type
FROM expiration_notifications n
JOIN platform_availability a
  ON a.canonical_id = n.canonical_id AND a.platform = n.platform AND a.region = n.region
 AND a.expires_at = n.expires_at
WHERE n.availability_type IS NULL;
DELETE FROM expiration_notifications WHERE availability_type IS NULL;
-- Of several notices per new key (one per jittered expiry), the latest announced stays.
DELETE FROM expiration_notifications n
USING expiration_notifications m
WHERE n.canonical_id = m.canonical_id AND n.platform = m.platform AND n.region = m.region
  AND n.availability_type = m.availability_type AND n.window_days = m.window_days
  AND (n.notified_at, n.expires_at) < (m.notified_at, m.expires_at);

ALTER TABLE expiration_notifications ALTER COLUMN availability_type SET NOT NULL;
ALTER TABLE expiration_notifications
    ADD PRIMARY KEY (canonical_id, platform, region, availability_type, window_days);
