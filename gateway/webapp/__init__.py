"""The reference web app (docs/WEB_APP.md): static files served at /app/, nothing else.

The app is plain ES modules loaded by the browser as they are: no build step, so the gateway
image and `mgw up` need no Node.js and what is served is what is committed. The gateway serves
the files and nothing more: every call the app makes goes to the public API like any client's.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PREFIX = "/app"


def mount_webapp(app: FastAPI) -> None:
    """/app/ (index.html for the directory) and /activate, the device-code verification page
    the token service names by default (docs/AUTH.md, "TV sign-in"), which is the app's."""
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="webapp")

    @app.get("/activate", include_in_schema=False)
    async def activate(request: Request) -> RedirectResponse:
        # The code travels in the fragment: the app reads it there, and a fragment is never
        # sent to a server or written to its access log.
        code = request.query_params.get("user_code", "")
        target = f"{PREFIX}/#/activate" + (f"?user_code={quote(code)}" if code else "")
        return RedirectResponse(target, status_code=303)
