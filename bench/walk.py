"""Benchmark: the incremental share walk over a tree of N files.

    .venv/bin/python bench/walk.py DIR [N] [--budget ENTRIES] [--folders K]

Builds a tree of N files under DIR (or reuses one built before with the same N: a marker
file remembers it), split over K person folders with 1000 files per directory and a mix
of photo, document, video and archive names; the files are empty-but-sized (sparse), so
building a million takes a minute or two rather than filling the disk.  Then it walks the
tree twice the way the disk collector does (steps of at most ``--budget`` entries) and
prints files/s, the longest step, CPU seconds and memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psutil

from watcher.collectors.disk import TreeWalk

EXTENSIONS = ("jpg", "jpg", "jpg", "pdf", "docx", "mp4", "zip", "txt", "heic", "xlsx")
PER_DIR = 1000


def build(root: Path, n: int, folders: int) -> None:
    marker = root / f".bench-tree-{n}-{folders}"
    if marker.exists():
        print(f"reusing the tree of {n} files in {root}", file=sys.stderr)
        return
    print(f"building {n} files in {root} ...", file=sys.stderr)
    started = time.perf_counter()
    for i in range(n):
        folder = f"person{i % folders:02d}"
        directory = root / folder / f"d{(i // folders) // PER_DIR:05d}"
        if (i // folders) % PER_DIR == 0:
            directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"f{i:08d}.{EXTENSIONS[i % len(EXTENSIONS)]}",
                     os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.ftruncate(fd, 1000 + (i % 7) * 4096)
        os.close(fd)
        if i and i % 100_000 == 0:
            print(f"  {i} files, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    marker.touch()
    print(f"built in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def walk_once(walk: TreeWalk, budget: int, proc: psutil.Process) -> dict[str, float]:
    cpu0 = proc.cpu_times()
    started = time.perf_counter()
    entries = steps = 0
    longest = 0.0
    peak = proc.memory_info().rss
    while True:
        t = time.perf_counter()
        progress = walk.step(budget)
        longest = max(longest, time.perf_counter() - t)
        entries += progress.entries
        steps += 1
        peak = max(peak, proc.memory_info().rss)
        if progress.pass_complete:
            break
    elapsed = time.perf_counter() - started
    cpu1 = proc.cpu_times()
    return {
        "entries": entries,
        "steps": steps,
        "seconds": elapsed,
        "entries/s": entries / elapsed,
        "longest step (ms)": longest * 1000,
        "CPU (s)": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "peak RSS (MiB)": peak / 2**20,
        "total (GiB)": progress.total_bytes / 2**30,
    }


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 1000 or float(value).is_integer() else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dir", type=Path, help="where the tree is built (or reused)")
    parser.add_argument("n", nargs="?", type=int, default=1_000_000, help="number of files (default 1e6)")
    parser.add_argument("--budget", type=int, default=50_000, help="entries per step (default 50000)")
    parser.add_argument("--folders", type=int, default=20, help="person folders (default 20)")
    args = parser.parse_args()
    root: Path = args.dir
    root.mkdir(parents=True, exist_ok=True)
    build(root, args.n, args.folders)

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    walk = TreeWalk(root, [f"person{k:02d}" for k in range(args.folders)])
    first = walk_once(walk, args.budget, proc)
    second = walk_once(walk, args.budget, proc)
    walk.close()

    print(f"files: {args.n}, budget: {args.budget} entries/step, RSS before: {rss0 / 2**20:.1f} MiB")
    width = max(len(k) for k in first)
    print(f"{'':<{width}}  {'pass 1':>12}  {'pass 2':>12}")
    for key in first:
        print(f"{key:<{width}}  {_fmt(first[key]):>12}  {_fmt(second[key]):>12}")


if __name__ == "__main__":
    main()
