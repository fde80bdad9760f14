"""The configuration in force, as one reference that a reload swaps.

The engine worker, the notify dispatcher, the report scheduler, the helpdesk sinks, the
self-watch and the HTTP handlers all read ``live.config`` when they need it (none keeps a
copy), so a reload that has built and checked the whole new configuration changes what all
of them see with one assignment, and a rejected one changes nothing.
"""

from __future__ import annotations

from watcher.config import Config


class Live:
    """Holds the configuration in force; ``watcher.app`` swaps ``config`` on a reload."""

    __slots__ = ("config",)

    def __init__(self, config: Config) -> None:
        self.config = config

    @staticmethod
    def of(config: Config | Live) -> Live:
        """``config`` itself when it is a holder (shared with the rest of a service), else a
        holder of its own (a part used alone, as tests and commands do)."""
        return config if isinstance(config, Live) else Live(config)
