"""The topic catalog: every topic declared once."""
