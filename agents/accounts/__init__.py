"""Accounts: an account's profiles and their parental limits, and API keys issued over HTTP."""
