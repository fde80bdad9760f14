"""YAML with line numbers, and the strict reader every config file is parsed with.

Configuration errors must name the file, the line and the key.  PyYAML forgets lines once
it has built Python objects, so the loader here builds ``Node`` dicts and lists that keep
the line of every key, and ``Reader`` walks them with typed accessors that raise
``ConfigError`` pointing at the exact place.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration problem at FILE:LINE in KEY."""

    def __init__(self, file: str, line: int | None, key: str, message: str) -> None:
        self.file, self.line, self.key, self.message = file, line, key, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class ConfigErrors(ConfigError):
    """Several configuration problems found in one pass; it reads as the first one, and its
    text lists them all, one per line, so that a user fixes them all in one round."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.key, first.message)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return str(self.args[0])


_COLLECT: ContextVar[list[ConfigError] | None] = ContextVar("watcher_config_errors", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[list[ConfigError]]:
    """Within this block, problems a reader can step over (an unknown key, a value of the
    wrong type where a default exists) are recorded in the yielded list instead of raised,
    so that one run reports every mistake of a file; the caller raises them together."""
    errors: list[ConfigError] = []
    token = _COLLECT.set(errors)
    try:
        yield errors
    finally:
        _COLLECT.reset(token)


def record(error: ConfigError) -> bool:
    """Keep ``error`` for the enclosing ``collecting`` block; False when there is none."""
    errors = _COLLECT.get()
    if errors is None:
        return False
    if not any(str(e) == str(error) for e in errors):
        errors.append(error)
    return True


def suggest(key: str, known: Iterable[str]) -> str:
    """ "did you mean 'x'?" for the known key nearest to a misspelt one, or ""."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)  # type: ignore[arg-type]


def load_yaml(path: Path) -> Any:
    """Parse one YAML file, keeping lines; syntax errors become ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(str(path), line, "", f"YAML syntax: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), None, "", f"YAML: {exc}") from exc


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: Any) -> float | None:
    """``90s``, ``2m``, ``1.5h``, ``7d`` or a bare number of seconds; None if not one."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text) if text >= 0 else None
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text)
    if not m:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Reader:
    """A view on one mapping of a config file: typed getters, strict about unknown keys."""

    file: str
    data: LineDict
    path: str = ""

    def where(self, key: str | None = None) -> tuple[int | None, str]:
        line = self.data.key_lines.get(key, self.data.line) if key else self.data.line
        full = f"{self.path}.{key}" if self.path and key else (key or self.path)
        return line, full

    def fail(self, key: str | None, message: str) -> NoReturn:
        line, full = self.where(key)
        raise ConfigError(self.file, line, full, message)

    def soft(self, key: str | None, message: str, fallback: T) -> T:
        """Fail, unless errors are being collected: then record and go on with ``fallback``."""
        line, full = self.where(key)
        if not record(ConfigError(self.file, line, full, message)):
            raise ConfigError(self.file, line, full, message)
        return fallback

    def check_keys(self, allowed: set[str] | frozenset[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.soft(key, f"unknown key; {suggest(key, allowed)}(allowed: {', '.join(sorted(allowed))})",
                          None)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def text(self, key: str, default: str | None = None, required: bool = False) -> str:
        if key not in self.data or self.data[key] is None:
            if required or default is None:
                self.fail(key, "required") if required else None
            return default if default is not None else ""
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            message = f"expected a string, got {type(value).__name__}"
            return self.soft(key, message, default) if default is not None else self.fail(key, message)
        return str(value)

    def opt_str(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            return self.soft(key, f"expected true or false, got {value!r}", default)
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "required")
        if isinstance(value, bool) or not isinstance(value, int):
            message = f"expected a whole number, got {value!r}"
            return self.soft(key, message, default) if default is not None else self.fail(key, message)
        if minimum is not None and value < minimum:
            message = f"must be at least {minimum}"
            return self.soft(key, message, default) if default is not None else self.fail(key, message)
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            message = f"expected a number, got {value!r}"
            return self.soft(key, message, default) if default is not None else self.fail(key, message)
        return float(value)

    def duration(self, key: str, default: float | None = None) -> float:
        if key not in self.data or self.data[key] is None:
            if default is None:
                self.fail(key, "required")
            return default
        value = parse_duration(self.data[key])
        if value is None:
            message = f"expected a duration like 90s, 2m, 4h, 7d; got {self.data[key]!r}"
            return self.soft(key, message, default) if default is not None else self.fail(key, message)
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            self.fail(key, "expected a list of strings")
        return [str(v) for v in value]

    def str_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "expected a mapping of strings")
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                self.child_or_fail(key).fail(k, "expected a string")
            out[str(k)] = str(v)
        return out

    def child(self, key: str) -> Reader | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, LineDict):
            self.fail(key, f"expected a mapping, got {type(value).__name__}")
        return Reader(self.file, value, f"{self.path}.{key}" if self.path else key)

    def child_or_fail(self, key: str) -> Reader:
        child = self.child(key)
        if child is None:
            self.fail(key, "required")
        return child

    def items(self, key: str) -> Iterator[Reader]:
        """Each element of a list of mappings, as a Reader whose path says its index."""
        value = self.data.get(key)
        if value is None:
            return
        if not isinstance(value, LineList):
            self.fail(key, f"expected a list, got {type(value).__name__}")
        base = f"{self.path}.{key}" if self.path else key
        for i, item in enumerate(value):
            if not isinstance(item, LineDict):
                raise ConfigError(self.file, value.item_lines[i], f"{base}[{i}]", "expected a mapping")
            yield Reader(self.file, item, f"{base}[{i}]")


def root_reader(path: Path) -> Reader:
    data = load_yaml(path)
    if data is None:
        data = LineDict()
        data.line = 1
        data.key_lines = {}
    if not isinstance(data, LineDict):
        raise ConfigError(str(path), 1, "", "the file must hold a mapping at its top")
    return Reader(str(path), data)
