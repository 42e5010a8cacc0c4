"""Why a readiness check failed, in a few words safe to serve on a public port.

An exception's text may name hosts, addresses, user names or a URL; the readiness body says
only the kind of failure ("unreachable", "refused the credentials") and the log keeps the text.
Pure: no I/O.
"""

from __future__ import annotations

UNREACHABLE = "unreachable"
TIMED_OUT = "timed out"
CREDENTIALS = "refused the credentials"
FAILED = "failed"

# Matched on class names (the drivers' exception types are not imported here).
_CREDENTIAL_WORDS = ("password", "authentication", "authorization", "auth", "permission")


def short_reason(exc: BaseException) -> str:
    """A short, fixed phrase for `exc`: never any of its text."""
    names = [cls.__name__.lower() for cls in type(exc).__mro__]
    if any(word in name for name in names for word in _CREDENTIAL_WORDS):
        return CREDENTIALS
    if isinstance(exc, TimeoutError) or any("timeout" in name for name in names):
        return TIMED_OUT
    if isinstance(exc, OSError) or any("connection" in name for name in names):
        return UNREACHABLE
    return f"{FAILED} ({type(exc).__name__})"
