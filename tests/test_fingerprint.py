"""An alert's fingerprint is its identity across releases: it must not change.

The definition is sha256 over each sorted key and its value in UTF-8, each followed by the
byte 0xff, cut to 16 hex digits; the engine state and the inbox of earlier releases hold
fingerprints made that way.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from watcher.model import fingerprint

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


def _by_definition(labels: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(labels):
        h.update(key.encode() + b"\xff" + labels[key].encode() + b"\xff")
    return h.hexdigest()[:16]


@given(st.dictionaries(_TEXT, _TEXT, max_size=12))
def test_fingerprint_is_the_defined_hash(labels: dict[str, str]) -> None:
    assert fingerprint(labels) == _by_definition(labels)
    assert fingerprint(dict(reversed(list(labels.items())))) == fingerprint(labels)


def test_known_fingerprint_and_odd_values() -> None:
    assert fingerprint({"alertname": "LinkDown", "site": "krk"}) == _by_definition(
        {"alertname": "LinkDown", "site": "krk"})
    assert len(fingerprint({"x": "\udc80"})) == 16  # a lone surrogate is hashed, not raised
