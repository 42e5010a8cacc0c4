"""Who is calling: JWT bearer tokens for users, hashed API keys for machine clients."""
