"""A dict that remembers which keys were written or handed out for writing.

The engine holds one entry per alert and per group, up to a million of them; writing all
of them on every commit would make a commit's cost follow how much is held.  Every change
to an entry goes through ``get``/``[]``/``pop``/``del``/assignment on the engine's dicts,
so remembering those keys gives the set of entries that may have changed since the last
commit, with no bookkeeping at the places that change them.  Reads that never lead to a
write (condition checks, timer validity) use ``peek`` and stay out of the set.
"""

from __future__ import annotations

from typing import TypeVar, overload

V = TypeVar("V")
T = TypeVar("T")
_MISSING = object()  # no default given: ``pop`` raises KeyError as dict's does


class TrackedDict(dict[str, V]):
    """``dict`` plus ``touched``: keys possibly changed since ``take_touched``."""

    __slots__ = ("touched",)

    def __init__(self) -> None:
        super().__init__()
        self.touched: set[str] = set()

    def __getitem__(self, key: str) -> V:
        self.touched.add(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: str, value: V) -> None:
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    @overload
    def get(self, key: str, default: None = None, /) -> V | None: ...
    @overload
    def get(self, key: str, default: V, /) -> V: ...
    @overload
    def get(self, key: str, default: T, /) -> V | T: ...

    def get(self, key: str, default: object = None, /) -> object:
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return default
        self.touched.add(key)
        return value

    @overload
    def pop(self, key: str, /) -> V: ...
    @overload
    def pop(self, key: str, default: V, /) -> V: ...
    @overload
    def pop(self, key: str, default: T, /) -> V | T: ...

    def pop(self, key: str, default: object = _MISSING, /) -> object:
        self.touched.add(key)
        if default is _MISSING:
            return dict.pop(self, key)
        return dict.pop(self, key, default)

    def peek(self, key: str) -> V | None:
        """A read that will not change the entry: not remembered."""
        return dict.get(self, key)

    def take_touched(self) -> set[str]:
        touched, self.touched = self.touched, set()
        return touched
