"""Every regular expression a user writes (rule and silence matchers, inventory host
patterns) goes through RE2, a linear-time engine, as Alertmanager's matchers do.

Python's ``re`` backtracks: ``(a+)+`` against ``"aaaa...!"`` takes time doubling with every
character, and one such pattern in a silence froze the whole service.  RE2 answers in time
linear in the input, whatever the pattern; the price is that it does not take
backreferences or lookaround, which are refused here with a message naming the reason.
Patterns are compiled once, where the configuration or the silence is read.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import re2

__all__ = ["Pattern", "RegexError", "compile_regex"]

_OPTIONS: Any = re2.Options()
_OPTIONS.log_errors = False  # our error message says it; RE2 would also print to stderr


class Pattern(Protocol):
    """What watcher uses of a compiled pattern."""

    @property
    def pattern(self) -> str: ...

    def fullmatch(self, text: str) -> object | None: ...


class RegexError(ValueError):
    """A pattern RE2 cannot take (bad syntax, or a backreference or lookaround)."""


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Pattern:
    """The compiled RE2 pattern; RegexError with RE2's reason otherwise."""
    if not isinstance(pattern, str):
        raise RegexError("expected a string")
    try:
        compiled: Pattern = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"not a regular expression RE2 accepts (linear-time; no backreferences or "
                         f"lookaround): {reason}") from None
    return compiled
