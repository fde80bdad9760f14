"""The HTTP API: ingest endpoints, tickets and agents' operations."""
