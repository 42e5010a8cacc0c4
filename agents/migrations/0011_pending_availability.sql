-- Availability-only updates for platform items the catalog has not ingested yet. Accepted
-- events are never dropped: availability-sync parks the newest per item here, and
-- process-batch hands it back to content.availability.raw (through the outbox) in the
-- transaction that maps the item, so availability-sync then applies it like any other.
CREATE TABLE pending_availability (
    platform           text        NOT NULL,
    platform_item_id   text        NOT NULL,
    source_updated_at  timestamptz NOT NULL,
    envelope           bytea       NOT NULL,  -- the AvailabilityReceived envelope as consumed
    parked_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, platform_item_id)
);
