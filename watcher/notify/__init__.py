"""The message side of the notify stage: what a notice says, how it travels, and signed links.

- ``render``: a ticket's context in, a ``Message`` (subject, text, optional HTML) out, in the
  person's language, from sandboxed Jinja2 templates a user may override file by file.
- ``sender``: a ``Message`` and a person's Apprise URLs in, a ``SendResult`` out that says
  whether it arrived, over which channel, and whether a failure is worth retrying.  Retries
  and the per-recipient delivery record belong to the outbox, not to this module.
- ``links``: signed, expiring links (callback, "planned or failure?") that people click
  without logging in; the caller enforces single use through the token's nonce.
"""
