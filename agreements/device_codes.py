"""RFC 8628 user codes and device codes: made by the gateway, stored hashed by the auth agents.
No I/O.

A user code is 8 characters of 20 consonants (RFC 8628 section 6.1: no vowels, so no words;
about 34.6 bits), shown as WDJB-MJHT. A person types it, so it is compared after
normalising: case, spaces and hyphens do not matter.
"""

from __future__ import annotations

import hashlib
import secrets

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8


def new_user_code() -> str:
    raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_user_code(typed: str) -> str | None:
    """The code as stored, or None when it cannot be one (wrong length or letters)."""
    code = "".join(ch for ch in typed.upper() if ch not in " -")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def new_device_code() -> str:
    return secrets.token_urlsafe(32)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
