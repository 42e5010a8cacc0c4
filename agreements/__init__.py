"""What gateway and agents must agree on besides payloads and topics: Redis key names of read
models and caches, and the producers that write to our topics from outside the agents."""
