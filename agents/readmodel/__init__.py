"""The Redis read model of titles: projection, lookups for the gateway, and the rebuild guard."""
