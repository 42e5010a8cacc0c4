"""The gateway serves the web app's files at /app/ and hands a TV's code to it at /activate;
the files are outside the rate limit (a page loads several at once, anonymously)."""

from __future__ import annotations

from starlette.testclient import TestClient

from core.config import Settings
from gateway.app import create_app
from gateway.middleware.rate_limit import is_exempt


def test_app_files_activate_and_no_rate_limit(settings: Settings, topics_created: None) -> None:
    with TestClient(create_app(settings)) as client:
        index = client.get("/app/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert 'src="js/main.js"' in index.text
        script = client.get("/app/js/api.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        # Past the anonymous limit (5/s): static files are never refused.
        assert all(client.get("/app/app.css").status_code == 200 for _ in range(12))
        assert client.get("/app/js/nothing.js").status_code == 404

        moved = client.get("/activate", params={"user_code": "WDJB MJHT&x"}, follow_redirects=False)
        assert moved.status_code == 303
        assert moved.headers["location"] == "/app/#/activate?user_code=WDJB%20MJHT%26x"
        bare = client.get("/activate", follow_redirects=False)
        assert bare.headers["location"] == "/app/#/activate"
    assert is_exempt("/app/js/main.js")
    assert not is_exempt("/application")
