"""The issuer service for city clerks."""
