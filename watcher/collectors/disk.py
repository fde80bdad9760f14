"""Disk usage of the inventory's shares: ``share_used_bytes`` and ``folder_used_bytes`` samples.

For each share with a ``path`` one scheduler job measures, per run:

- the share's used bytes: from the file system (``psutil.disk_usage``) when the path is
  a mount point, else (a directory on a bigger disk) the size of the directory tree;
- for each folder of the share's ``folders`` map, the size of that subdirectory, and
  how its bytes split into kinds of files (photos, videos, archives, documents, ...), so
  the advice notice can say what fills it.

Walking a tree of millions of files takes minutes, so :class:`TreeWalk` walks
incrementally: each run looks at no more than ``max_entries_per_cycle`` directory
entries, in a worker thread, and resumes where it stopped on the next run.  It keeps
the last measured size of every directory; a directory's new size replaces its old one
when its listing is done, and directories not met again in a pass are dropped at its
end.  So after the first complete pass every run reports a total in which each
directory counts once, at its latest measured size, and the numbers follow the disk
within one pass.  No walk-based sample is emitted before the first pass completes: a
partial sum would look like a share filling fast.

Sizes are apparent sizes (``st_size``), as a user sees them in a file manager; a file
with several hard links counts once; the walk does not follow symbolic links or
descend into other file systems mounted inside the share.

Events (``source: disk``; ``observed_at`` = the time of the run; no ``starts_at``):

- ``{metric: share_used_bytes, share}``, value = used bytes; annotations ``total_bytes``
  (the inventory's ``size_bytes``, else the file system's size), ``basis``
  (``filesystem`` or ``walk``), ``fs_free_bytes``, and ``walk_errors`` (entries that
  could not be read in the last pass) when there were any.
- ``{metric: folder_used_bytes, share, folder}``, value = the folder's bytes;
  annotations ``file_kinds`` (JSON object kind -> bytes, largest first: the kinds that
  grew within ``growth_window`` when anything grew, else the folder's contents, as
  ``file_kinds_basis`` says: ``growth`` or ``contents``), ``file_kinds_total`` (the
  contents by kind, always) and ``exists`` (``false`` when the folder is missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import psutil

from watcher.collectors.base import EventSink
from watcher.collectors.schedule import Job, Scheduler
from watcher.config.inventory import Inventory, Share
from watcher.model import Event, utcnow

__all__ = [
    "FILE_KINDS",
    "SOURCE",
    "DiskCollector",
    "FolderUsage",
    "ShareUsage",
    "TreeWalk",
    "WalkProgress",
    "file_kind",
]

SOURCE = "disk"

FILE_KINDS: dict[str, tuple[str, ...]] = {
    "photos": ("jpg", "jpeg", "png", "heic", "heif", "gif", "bmp", "tif", "tiff", "raw", "cr2", "cr3",
               "nef", "arw", "orf", "rw2", "dng", "webp"),
    "videos": ("mp4", "mov", "avi", "mkv", "wmv", "m4v", "mts", "m2ts", "3gp", "webm", "mpg", "mpeg"),
    "music": ("mp3", "flac", "m4a", "aac", "ogg", "wma", "opus"),
    "audio": ("wav", "aiff"),
    "archives": ("zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "xz", "zst"),
    "disk_images": ("iso", "img", "vhd", "vhdx", "vmdk", "qcow2"),
    "installers": ("exe", "msi", "dmg", "pkg", "deb", "rpm", "apk"),
    "documents": ("pdf", "doc", "docx", "odt", "txt", "rtf", "ppt", "pptx", "odp", "md"),
    "spreadsheets": ("xls", "xlsx", "ods", "csv"),
    "backups": ("bak", "bkf", "tib"),
    "mail_archives": ("pst", "ost", "mbox"),
    "temporary": ("tmp", "temp"),
}
"""Kind -> extensions; the kind words are those the notice templates translate."""

_KIND_OF: dict[str, str] = {ext: kind for kind, exts in FILE_KINDS.items() for ext in exts}


def file_kind(name: str) -> str:
    """The kind of a file by its extension, ``other`` when unknown."""
    dot = name.rfind(".")
    if dot <= 0:
        return "other"
    return _KIND_OF.get(name[dot + 1:].lower(), "other")


class _Listing(Iterator[os.DirEntry[str]], Protocol):
    """An open ``os.scandir`` listing, kept between steps."""

    def close(self) -> None: ...


@dataclass(slots=True)
class _Dir:
    """The files directly inside one directory, as last measured."""

    size: int = 0
    kinds: dict[str, int] | None = None
    folder: str | None = None


@dataclass(slots=True)
class _Sum:
    size: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, d: _Dir, sign: int) -> None:
        self.size += sign * d.size
        if d.kinds:
            for kind, n in d.kinds.items():
                left = self.kinds.get(kind, 0) + sign * n
                if left:
                    self.kinds[kind] = left
                else:
                    self.kinds.pop(kind, None)


@dataclass(frozen=True, slots=True)
class WalkProgress:
    """The state of a walk after one step; dicts are copies."""

    entries: int
    pass_complete: bool
    passes: int
    total_bytes: int
    folders: dict[str, tuple[int, dict[str, int], bool]]
    errors: int


class TreeWalk:
    """Incremental size of one directory tree and of some of its subdirectories.

    ``folders`` are paths relative to ``root`` (``Jan`` or ``users/Jan``).  :meth:`step`
    is blocking I/O: call it in a thread.  One lock keeps two steps from overlapping
    (a timed-out run's thread may still be finishing when the next run starts).
    """

    def __init__(self, root: str | os.PathLike[str], folders: Iterable[str] = ()) -> None:
        self.root = os.fspath(root)
        self.folders = frozenset(f.strip("/") for f in folders if f.strip("/"))
        self.passes = 0
        self._lock = threading.Lock()
        self._dirs: dict[str, _Dir] = {}
        self._total = _Sum()
        self._by_folder: dict[str, _Sum] = {f: _Sum() for f in self.folders}
        self._pending: list[tuple[str, str | None]] = []
        self._current: tuple[str, _Listing, _Dir] | None = None
        self._seen: set[str] = set()
        self._links: set[tuple[int, int]] = set()
        self._root_dev = 0
        self._errors = 0
        self._last_errors = 0
        self._in_pass = False

    def step(self, budget: int, cancel: threading.Event | None = None) -> WalkProgress:
        """Look at up to ``budget`` entries (a directory opened counts as one), then stop.

        Stops early at the end of a pass, so one step never starts measuring anew what
        it has just finished.  Raises OSError when the root itself cannot be read.
        """
        with self._lock:
            if not self._in_pass:
                self._begin()
            done = 0
            complete = False
            while done < budget and not (cancel is not None and cancel.is_set()):
                if self._current is None:
                    if not self._pending:
                        self._finish()
                        complete = True
                        break
                    self._open(*self._pending.pop())
                    done += 1
                    continue
                rel, it, acc = self._current
                try:
                    entry = next(it, None)
                except OSError:
                    self._errors += 1
                    self._close_current()
                    if rel in self._dirs:
                        self._seen.add(rel)
                    continue
                if entry is None:
                    self._close_current()
                    self._commit(rel, acc)
                    continue
                done += 1
                self._visit(rel, entry, acc)
            return self._progress(done, complete)

    def close(self) -> None:
        """Release the directory handle a paused step keeps open."""
        with self._lock:
            self._close_current()
            self._pending.clear()
            self._in_pass = False

    def _begin(self) -> None:
        self._root_dev = os.stat(self.root).st_dev
        self._pending = [("", None)]
        self._seen.clear()
        self._links.clear()
        self._errors = 0
        self._in_pass = True

    def _open(self, rel: str, folder: str | None) -> None:
        try:
            it = os.scandir(os.path.join(self.root, rel) if rel else self.root)
        except OSError as exc:
            if not rel:
                self._pending.clear()
                self._in_pass = False
                raise
            if isinstance(exc, FileNotFoundError):
                return
            self._errors += 1
            if rel in self._dirs:
                self._seen.add(rel)
            return
        acc = _Dir(kinds={} if folder is not None else None, folder=folder)
        self._current = (rel, it, acc)

    def _visit(self, rel: str, entry: os.DirEntry[str], acc: _Dir) -> None:
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.stat(follow_symlinks=False).st_dev != self._root_dev:
                    return
                child = f"{rel}/{entry.name}" if rel else entry.name
                self._pending.append((child, acc.folder or (child if child in self.folders else None)))
                return
            if not entry.is_file(follow_symlinks=False):
                return
            st = entry.stat(follow_symlinks=False)
        except OSError:
            self._errors += 1
            return
        if st.st_nlink > 1:
            inode = (st.st_dev, st.st_ino)
            if inode in self._links:
                return
            self._links.add(inode)
        acc.size += st.st_size
        if acc.kinds is not None:
            kind = file_kind(entry.name)
            acc.kinds[kind] = acc.kinds.get(kind, 0) + st.st_size

    def _commit(self, rel: str, new: _Dir) -> None:
        old = self._dirs.get(rel)
        if old is not None:
            self._account(old, -1)
        self._dirs[rel] = new
        self._account(new, 1)
        self._seen.add(rel)

    def _account(self, d: _Dir, sign: int) -> None:
        self._total.add(d, sign)
        if d.folder is not None:
            self._by_folder[d.folder].add(d, sign)

    def _finish(self) -> None:
        for rel in [r for r in self._dirs if r not in self._seen]:
            self._account(self._dirs.pop(rel), -1)
        self._seen.clear()
        self._links.clear()
        self._last_errors = self._errors
        self._in_pass = False
        self.passes += 1

    def _close_current(self) -> None:
        if self._current is not None:
            self._current[1].close()
            self._current = None

    def _progress(self, done: int, complete: bool) -> WalkProgress:
        folders = {f: (s.size, dict(s.kinds), f in self._dirs) for f, s in self._by_folder.items()}
        return WalkProgress(done, complete, self.passes, self._total.size, folders,
                            max(self._errors, self._last_errors))


@dataclass(frozen=True, slots=True)
class FolderUsage:
    """One folder of a share, as last reported; kind maps are ordered largest first."""

    folder: str
    person: str | None
    used_bytes: int
    kinds: dict[str, int]
    grown: dict[str, int]
    exists: bool


@dataclass(frozen=True, slots=True)
class ShareUsage:
    """One share as last reported (for the API)."""

    share: str
    used_bytes: int
    total_bytes: int | None
    basis: Literal["filesystem", "walk"]
    measured_at: datetime
    passes: int
    walk_errors: int
    folders: tuple[FolderUsage, ...]


@dataclass(slots=True)
class _ShareState:
    share: Share
    walk: TreeWalk | None = None
    mount: bool | None = None
    history: deque[tuple[datetime, dict[str, dict[str, int]]]] = field(default_factory=deque)
    usage: ShareUsage | None = None


class DiskCollector:
    """Measures every share of ``inventory`` that has a ``path`` and hands samples to ``sink``.

    Wire it with ``collector.register(scheduler, interval=...)`` (one job per share, named
    ``disk <share id>``) and call :meth:`close` (or use ``with``) at shutdown.
    ``max_entries_per_cycle`` bounds the I/O of one run of one share; ``growth_window``
    is how far back "what grew" looks (a pass's snapshot at least that old is the base).
    """

    def __init__(
        self,
        inventory: Inventory,
        sink: EventSink,
        *,
        interval: float = 60.0,
        max_entries_per_cycle: int = 50_000,
        growth_window: float = 24 * 3600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_entries_per_cycle < 1:
            raise ValueError("max_entries_per_cycle must be at least 1")
        self._sink = sink
        self.interval = interval
        self.max_entries_per_cycle = max_entries_per_cycle
        self.growth_window = growth_window
        self._clock = clock
        self._shares = {s.id: _ShareState(s) for s in inventory.shares.values() if s.path}

    def share_ids(self) -> list[str]:
        return list(self._shares)

    def usage(self, share_id: str) -> ShareUsage | None:
        """The last report of one share, None before its first."""
        state = self._shares.get(share_id)
        return state.usage if state else None

    def register(self, scheduler: Scheduler, *, interval: float | None = None, timeout: float | None = None) -> None:
        """One job per share, every ``interval`` (default: the one given at construction)."""
        for share_id in self._shares:
            scheduler.add(f"disk {share_id}", self._job(share_id), interval=interval or self.interval,
                          timeout=timeout)

    def close(self) -> None:
        for state in self._shares.values():
            if state.walk is not None:
                state.walk.close()

    def __enter__(self) -> DiskCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> DiskCollector:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def collect(self, share_id: str) -> None:
        """One run for one share: a bounded step of its walk, then its samples (if any yet)."""
        state = self._shares[share_id]
        share = state.share
        assert share.path is not None
        if state.mount is None:
            state.mount = await asyncio.to_thread(os.path.ismount, share.path)
            if not state.mount or share.folders:
                state.walk = TreeWalk(share.path, share.folders.values())
        progress = await self._step(state.walk) if state.walk is not None else None
        fs = await asyncio.to_thread(psutil.disk_usage, share.path)
        now = self._clock()
        if state.mount:
            used, basis = int(fs.used), "filesystem"
        elif progress is not None and progress.passes:
            used, basis = progress.total_bytes, "walk"
        else:
            return
        total = share.size_bytes or int(fs.total)
        events = [Event(
            labels={"metric": "share_used_bytes", "share": share.id}, source=SOURCE, observed_at=now,
            value=float(used),
            annotations={"total_bytes": str(total), "basis": basis, "fs_free_bytes": str(int(fs.free))})]
        if progress is not None and progress.errors:
            events[0].annotations["walk_errors"] = str(progress.errors)
        folders: list[FolderUsage] = []
        if progress is not None and progress.passes:
            if progress.pass_complete:
                self._remember(state, now, progress)
            for folder_name in share.folders.values():
                key = folder_name.strip("/")
                size, kinds, exists = progress.folders.get(key, (0, {}, False))
                grown = self._grown(state, key, kinds)
                usage = FolderUsage(folder_name, share.owner_of(folder_name), size, _ordered(kinds),
                                    grown, exists)
                folders.append(usage)
                events.append(self._folder_event(share, usage, now))
        await self._sink(events)
        state.usage = ShareUsage(share.id, used, total, "filesystem" if state.mount else "walk", now,
                                 progress.passes if progress else 0, progress.errors if progress else 0,
                                 tuple(folders))

    async def _step(self, walk: TreeWalk) -> WalkProgress:
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(walk.step, self.max_entries_per_cycle, cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise

    def _remember(self, state: _ShareState, now: datetime, progress: WalkProgress) -> None:
        state.history.append((now, {f: dict(v[1]) for f, v in progress.folders.items()}))
        horizon = now.timestamp() - self.growth_window
        while len(state.history) > 1 and state.history[1][0].timestamp() <= horizon:
            state.history.popleft()

    def _grown(self, state: _ShareState, folder: str, kinds: dict[str, int]) -> dict[str, int]:
        if len(state.history) < 2:
            return {}
        base = state.history[0][1].get(folder, {})
        return _ordered({k: n - base.get(k, 0) for k, n in kinds.items() if n > base.get(k, 0)})

    def _folder_event(self, share: Share, usage: FolderUsage, now: datetime) -> Event:
        basis = "growth" if usage.grown else "contents"
        return Event(
            labels={"metric": "folder_used_bytes", "share": share.id, "folder": usage.folder},
            source=SOURCE, observed_at=now, value=float(usage.used_bytes),
            annotations={
                "file_kinds": json.dumps(usage.grown or usage.kinds),
                "file_kinds_basis": basis,
                "file_kinds_total": json.dumps(usage.kinds),
                "exists": "true" if usage.exists else "false",
            })

    def _job(self, share_id: str) -> Job:
        async def job() -> None:
            await self.collect(share_id)
        return job


def _ordered(kinds: dict[str, int]) -> dict[str, int]:
    return dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
