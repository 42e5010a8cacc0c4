"""The gateway's ASGI middleware, outermost first: correlation id, body limit, HTTP metrics,
response cache, rate limit (wired in gateway/app.py)."""
