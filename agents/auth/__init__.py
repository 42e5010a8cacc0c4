"""The built-in token service: signing keys, sign-in sessions, refresh rotation, revocation."""
