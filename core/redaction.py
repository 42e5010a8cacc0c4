"""Credentials out of what a process prints: URLs with their password masked, and any text
(an exception message, a value shown in a configuration error) with the passwords of the URLs
it contains masked.

Pure: no I/O. Used by core/config.py (its errors and reprs), the readiness log
(core/observability/health.py) and `mgw up`'s banner (cli/up.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@ or scheme://password@ (Redis takes a bare password): everything
# between the scheme and the last '@' before the host is userinfo.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@]*)@")


def redact_url(url: str) -> str:
    """`url` with its password (or a bare userinfo secret) replaced by ***:
    postgresql://app:s3cret@db/media -> postgresql://app:***@db/media. A URL without
    credentials comes back unchanged."""
    if "://" not in url:
        # No scheme (a mistyped variable): whatever precedes the last '@' may be a password.
        return f"{MASK}@{url.rpartition('@')[2]}" if "@" in url else url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    # redis://:password@host and redis://password@host: no user name, only a secret.
    shown = f"{user}:{MASK}" if colon and user else MASK
    return urlunsplit(parts._replace(netloc=f"{shown}@{hostport}"))


def redact_text(text: str) -> str:
    """`text` with the userinfo of every URL in it masked (for exception messages, which may
    quote the URL they failed on)."""

    def mask(found: re.Match[str]) -> str:
        user, colon, _ = found.group("userinfo").partition(":")
        shown = f"{user}:{MASK}" if colon and user else MASK
        return f"{found.group('scheme')}{shown}@"

    return _USERINFO.sub(mask, text)
