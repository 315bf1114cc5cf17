"""The resident's phone wallet (PWA)."""
