"""The ASGI scope key that marks a request as the MCP server's own check of the token of the
/mcp request it serves (the server mounted on the gateway, `assistant/mount.py`): that /mcp
request was counted already, so the gateway's limiter (`gateway/middleware/rate_limit.py`)
does not count the check again (docs/MCP.md "Rate limits"). A scope key, not a header: only a
request made in process can carry it.
"""

from __future__ import annotations

UNCOUNTED = "mgw.uncounted"
