"""Mailbox health checks, in parts: ``collector.py`` (state and signals), ``imap.py`` and
``smtp.py`` (the blocking checks), ``dsn.py`` (the bounce parser), ``outcome.py`` (what a
check concludes).  The settings live in ``watcher.config.mail``."""
