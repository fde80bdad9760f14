"""The one way watcher reads a secret: ``env:NAME`` or ``file:PATH`` (``#KEY``), never the value itself.

Tokens, passwords, HMAC keys, SNMP communities and keys, mailbox passwords and sink
credentials are all written in the configuration as references, so the files can be
shared and committed.  Every reader goes through :func:`read_secret`, so the forms, the
base of a relative path (the folder of the configuration file that names it) and the
error texts (which name the variable, file or key, never a value) are the same
everywhere.  Settings read once at start (``auth``, ``sinks``, ``secret_key``...) use
:func:`secret_setting` through their ``Reader``; the mail checks keep the reference and
call :func:`read_secret` at every check, so a rotated password is picked up.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from watcher.config.yamlload import Reader

__all__ = ["REF_HELP", "Secret", "SecretError", "check_ref", "is_ref", "read_secret", "secret_setting"]

REF_HELP = "expected env:NAME, file:PATH or file:PATH#KEY; a password is never written in the configuration"
_MAP_SUFFIXES = (".yaml", ".yml", ".json")


class SecretError(Exception):
    """A secret reference that does not resolve; the message never contains a secret."""


class Secret:
    """A secret held in memory; ``repr``/``str`` are masked, :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def is_ref(value: str) -> bool:
    """True when ``value`` is a reference (``env:``/``file:``) rather than a value written inline."""
    return value.startswith(("env:", "file:"))


def check_ref(ref: str) -> None:
    """Raise ValueError (without echoing ``ref``, which may be a pasted password) unless well formed."""
    if ref.startswith("env:"):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ref[4:]):
            raise ValueError(f"env: needs an environment variable name; {REF_HELP}")
        return
    if ref.startswith("file:"):
        path = ref[5:].split("#", 1)[0]
        if not path:
            raise ValueError(f"file: needs a path; {REF_HELP}")
        return
    raise ValueError(REF_HELP)


def read_secret(ref: str, base: Path | None, key: str | None = None) -> Secret:
    """The secret ``ref`` names, read now.

    - ``env:NAME``: the environment variable ``NAME``;
    - ``file:PATH#KEY``: the value of ``KEY`` in the YAML or JSON map in ``PATH``;
    - ``file:PATH`` where PATH ends in ``.yaml``, ``.yml`` or ``.json`` and the caller gives
      a ``key`` (a mailbox address or login name): that map's value for ``key``;
    - ``file:PATH`` otherwise: the whole file without its trailing line break.

    A relative PATH is relative to ``base``, the folder of the configuration file that
    names it.  Raises SecretError naming the variable, file or key, never a value.
    """
    try:
        check_ref(ref)
    except ValueError as exc:
        raise SecretError(str(exc)) from None
    if ref.startswith("env:"):
        name = ref[4:]
        env = os.environ.get(name)
        if env is None:
            raise SecretError(f"environment variable {name} is not set")
        return Secret(env)
    path_text, _, map_key = ref[5:].partition("#")
    path = Path(path_text).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretError(f"cannot read secrets file {path}: {exc.strerror or type(exc).__name__}") from None
    wanted = map_key or key
    if wanted is None or (not map_key and path.suffix.lower() not in _MAP_SUFFIXES):
        return Secret(text.rstrip("\r\n"))
    data = _load_map(path, text)
    value: object = data.get(wanted)
    if value is None:
        lowered = {str(k).lower(): v for k, v in data.items()}
        value = lowered.get(wanted.lower())
    if value is None:
        raise SecretError(f"secrets file {path} has no entry for {wanted!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SecretError(f"secrets file {path}: the entry for {wanted!r} is not a string")
    return Secret(str(value))


def _load_map(path: Path, text: str) -> dict[object, object]:
    """A YAML/JSON mapping; a parse error names only the line (a snippet could leak a secret)."""
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SecretError(f"secrets file {path} is not valid JSON (line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SecretError(f"secrets file {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise SecretError(f"secrets file {path} is not a map of address -> password")
    return data


def secret_setting(r: Reader, key: str) -> str:
    """The setting ``key`` of ``r``, read through :func:`read_secret` when it is a reference.

    A value written inline is taken as it is; a reference that does not resolve is a
    configuration error at that key's file and line.  Relative paths are relative to the
    folder of ``r``'s file.
    """
    value = r.text(key, "")
    if not is_ref(value):
        return value
    try:
        return read_secret(value, Path(r.file).resolve().parent).reveal()
    except SecretError as exc:
        r.fail(key, str(exc))
