"""Share and folder usage from a real directory tree that the tests fill and clean."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from watcher.collectors.disk import DiskCollector, TreeWalk, file_kind
from watcher.collectors.schedule import Scheduler
from watcher.config.inventory import Inventory, Share
from watcher.model import Event

PHOTO = 1000
DOC = 5000


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def __call__(self, events: list[Event]) -> None:
        self.batches.append(events)

    def last(self) -> dict[str, Event]:
        """The latest batch keyed by ``share`` or ``share/folder``."""
        out = {}
        for e in self.batches[-1]:
            key = e.labels["share"] + ("/" + e.labels["folder"] if "folder" in e.labels else "")
            out[key] = e
        return out


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def fill(root: Path) -> int:
    """Jan: 120 photos in nested albums; Ewa: 10 PDFs; one loose file.  Returns the total."""
    for i in range(120):
        write(root / "Jan" / f"album{i % 4}" / f"IMG_{i:04d}.JPG", PHOTO)
    for i in range(10):
        write(root / "Ewa" / f"report-{i}.pdf", DOC)
    write(root / "readme.txt", 123)
    return 120 * PHOTO + 10 * DOC + 123


def share_inventory(path: Path, folders: dict[str, str] | None = None, size: int | None = 10**9) -> Inventory:
    inv = Inventory()
    inv.shares["acme-projects"] = Share("acme-projects", "acme", "acme-krk", "Projects", str(path), size,
                                        folders if folders is not None else {"jan.kowalski": "Jan",
                                                                             "ewa.nowak": "Ewa"})
    return inv


def test_file_kinds() -> None:
    assert file_kind("IMG_0001.JPG") == "photos"
    assert file_kind("holiday.heic") == "photos"
    assert file_kind("clip.MOV") == "videos"
    assert file_kind("backup.tar.gz") == "archives"
    assert file_kind("offer.docx") == "documents"
    assert file_kind(".bashrc") == "other"
    assert file_kind("Makefile") == "other"


async def test_samples_reflect_sizes_and_cleanup(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    total = fill(root)
    sink = Sink()
    collector = DiskCollector(share_inventory(root), sink, clock=Clock())
    await collector.collect("acme-projects")

    got = sink.last()
    share = got["acme-projects"]
    assert share.labels == {"metric": "share_used_bytes", "share": "acme-projects"}
    assert share.value == total and share.source == "disk"
    assert share.status == "firing" and share.starts_at is None and share.observed_at is not None
    assert share.annotations["basis"] == "walk" and share.annotations["total_bytes"] == str(10**9)

    jan = got["acme-projects/Jan"]
    assert jan.labels == {"metric": "folder_used_bytes", "share": "acme-projects", "folder": "Jan"}
    assert jan.value == 120 * PHOTO
    assert json.loads(jan.annotations["file_kinds"]) == {"photos": 120 * PHOTO}
    assert jan.annotations["file_kinds_basis"] == "contents"
    ewa = got["acme-projects/Ewa"]
    assert ewa.value == 10 * DOC
    assert json.loads(ewa.annotations["file_kinds_total"]) == {"documents": 10 * DOC}

    for album in (root / "Jan").iterdir():
        for photo in album.iterdir():
            photo.unlink()
        album.rmdir()
    await collector.collect("acme-projects")
    got = sink.last()
    assert got["acme-projects/Jan"].value == 0
    assert got["acme-projects"].value == 10 * DOC + 123
    assert json.loads(got["acme-projects/Jan"].annotations["file_kinds_total"]) == {}

    usage = collector.usage("acme-projects")
    assert usage is not None and usage.used_bytes == 10 * DOC + 123
    assert {f.folder: (f.person, f.used_bytes) for f in usage.folders} == {
        "Jan": ("jan.kowalski", 0), "Ewa": ("ewa.nowak", 10 * DOC)}


async def test_growth_names_photos(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    fill(root)
    sink = Sink()
    collector = DiskCollector(share_inventory(root), sink, clock=Clock())
    await collector.collect("acme-projects")

    for i in range(30):
        write(root / "Jan" / "Wakacje" / f"DSC{i}.jpeg", 4 * PHOTO)
    write(root / "Jan" / "Wakacje" / "beach.mp4", 50_000)
    write(root / "Jan" / "notes.txt", 10)
    write(root / "Ewa" / "report-new.pdf", DOC)
    await collector.collect("acme-projects")

    jan = sink.last()["acme-projects/Jan"]
    assert jan.annotations["file_kinds_basis"] == "growth"
    grown = json.loads(jan.annotations["file_kinds"])
    assert list(grown) == ["photos", "videos", "documents"]
    assert grown == {"photos": 120_000, "videos": 50_000, "documents": 10}
    assert next(iter(json.loads(jan.annotations["file_kinds_total"]))) == "photos"
    ewa = sink.last()["acme-projects/Ewa"]
    assert json.loads(ewa.annotations["file_kinds"]) == {"documents": DOC}


async def test_growth_window_moves_the_base(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    fill(root)
    sink = Sink()
    clock = Clock()
    collector = DiskCollector(share_inventory(root), sink, clock=clock, growth_window=3 * 60)
    await collector.collect("acme-projects")
    write(root / "Jan" / "big.zip", 9000)
    for _ in range(5):
        await collector.collect("acme-projects")
    jan = sink.last()["acme-projects/Jan"]
    assert jan.annotations["file_kinds_basis"] == "contents"
    assert json.loads(jan.annotations["file_kinds"]) == {"photos": 120 * PHOTO, "archives": 9000}


async def test_incremental_walk_converges(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    total = fill(root)
    walk = TreeWalk(root, ["Jan", "Ewa"])
    steps = 0
    while True:
        progress = await asyncio.to_thread(walk.step, 7)
        steps += 1
        assert progress.entries <= 7
        if progress.passes:
            break
        assert steps < 100
    entries = 120 + 4 + 1 + 10 + 3 + 4 + 1
    assert steps >= entries // 7
    assert progress.total_bytes == total
    assert progress.folders["Jan"][0] == 120 * PHOTO and progress.folders["Ewa"][0] == 10 * DOC
    walk.close()

    sink = Sink()
    collector = DiskCollector(share_inventory(root), sink, max_entries_per_cycle=7, clock=Clock())
    for _ in range(steps - 1):
        await collector.collect("acme-projects")
    assert sink.batches == [], "no sample before the first complete pass"
    await collector.collect("acme-projects")
    assert sink.last()["acme-projects"].value == total

    for i in range(40):
        write(root / "Ewa" / "scans" / f"scan{i}.png", 2000)
    for photo in (root / "Jan" / "album0").iterdir():
        photo.unlink()
    (root / "Jan" / "album0").rmdir()
    truth = total + 40 * 2000 - 30 * PHOTO
    seen = []
    for _ in range(3 * steps):
        await collector.collect("acme-projects")
        seen.append(sink.last()["acme-projects"].value)
    assert seen[-1] == truth
    assert sink.last()["acme-projects/Ewa"].value == 10 * DOC + 40 * 2000
    assert sink.last()["acme-projects/Jan"].value == 90 * PHOTO
    assert all(v is not None and min(total, truth) - 30 * PHOTO <= v <= truth + 30 * PHOTO for v in seen)
    collector.close()


async def test_links_mounts_and_missing_folders(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    write(root / "Jan" / "a.jpg", 700)
    os.link(root / "Jan" / "a.jpg", root / "Jan" / "a-copy.jpg")
    os.symlink(tmp_path, root / "Jan" / "loop")
    write(tmp_path / "outside.bin", 10_000)
    sink = Sink()
    collector = DiskCollector(share_inventory(root, {"jan.kowalski": "Jan", "ewa.nowak": "Ewa"}), sink)
    await collector.collect("acme-projects")
    got = sink.last()
    assert got["acme-projects"].value == 700
    assert got["acme-projects/Jan"].value == 700
    assert got["acme-projects/Ewa"].value == 0
    assert got["acme-projects/Ewa"].annotations["exists"] == "false"


async def test_mount_point_share_uses_the_file_system() -> None:
    inv = Inventory()
    inv.shares["root"] = Share("root", "acme", None, "Root", "/", None, {})
    sink = Sink()
    collector = DiskCollector(inv, sink)
    await collector.collect("root")
    [event] = sink.batches[-1]
    fs = psutil.disk_usage("/")
    assert event.annotations["basis"] == "filesystem"
    assert event.annotations["total_bytes"] == str(fs.total)
    assert event.value is not None and abs(event.value - fs.used) < 0.05 * fs.total


async def test_missing_share_path_is_a_collector_error(tmp_path: Path) -> None:
    sink = Sink()
    collector = DiskCollector(share_inventory(tmp_path / "gone"), sink)
    with pytest.raises(FileNotFoundError):
        await collector.collect("acme-projects")
    async with Scheduler(max_jitter=0) as scheduler:
        collector.register(scheduler, interval=0.01)
        await until(lambda: scheduler.health()["disk acme-projects"].errors >= 2)
    health = scheduler.health()["disk acme-projects"]
    assert health.last_error is not None and health.last_error.startswith("FileNotFoundError")
    assert sink.batches == []


async def test_on_the_scheduler(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    total = fill(root)
    inv = share_inventory(root)
    inv.shares["no-path"] = Share("no-path", "acme", None, "Cloud", None, None, {})
    sink = Sink()
    collector = DiskCollector(inv, sink, max_entries_per_cycle=50)
    assert collector.share_ids() == ["acme-projects"]
    with collector:
        async with Scheduler(max_jitter=0) as scheduler:
            collector.register(scheduler, interval=0.01)
            await until(lambda: bool(sink.batches))
    assert sink.last()["acme-projects"].value == total


async def test_share_that_vanishes_and_returns_keeps_its_totals(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    total = fill(root)
    sink = Sink()
    collector = DiskCollector(share_inventory(root), sink)
    await collector.collect("acme-projects")
    root.rename(tmp_path / "unmounted")
    with pytest.raises(FileNotFoundError):
        await collector.collect("acme-projects")
    (tmp_path / "unmounted").rename(root)
    await collector.collect("acme-projects")
    assert [batch[0].value for batch in sink.batches] == [total, total]
