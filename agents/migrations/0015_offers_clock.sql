-- The source time of the offers applied for each platform item, by either topic: a catalog
-- item that states its availability, or an availability-only update. A catalog item without
-- availability says nothing of its offers and leaves this as it was, so an availability-only
-- update newer than the offers (though older than that item) still applies. NULL: no offers
-- stated yet. Until now the offers were taken to be as of the newer of the two clocks.
ALTER TABLE entity_mappings ADD COLUMN offers_as_of timestamptz;
UPDATE entity_mappings SET offers_as_of = GREATEST(source_updated_at, availability_updated_at);
