"""The worker framework: the agent loop, the Faust app, worker processes, the outbox and
the PostgreSQL plumbing. It knows no domain: slices declare their agents and hand them in."""
