"""watcher: monitoring signals in, one ticket per real problem, the affected told before they call."""

__version__ = "0.1.0"
