"""Loopback stand-ins for outside services, spoken to by their real SDKs."""
