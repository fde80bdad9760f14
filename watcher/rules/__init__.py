"""The rule engine: events and the current time in, ticket decisions out (no I/O)."""

from watcher.rules.engine import Changes, Engine

__all__ = ["Changes", "Engine"]
