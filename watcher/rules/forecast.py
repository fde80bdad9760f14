"""Trend arithmetic for forecast rules: when will a series reach a limit?  And the series a
forecast group keeps (``Trend``), shared by the forecast kind and the disk advice."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Trend:
    """A forecast group's samples: the total's ``series`` and each folder's, [time, value] each,
    within the rule's window; ``folder_kinds``: what kinds of files each folder holds."""

    series: list[list[float]] = field(default_factory=list)
    folders: dict[str, list[list[float]]] = field(default_factory=dict)
    folder_kinds: dict[str, object] = field(default_factory=dict)  # JSON from the exporter, shown as is

    def to_row(self) -> dict[str, Any]:
        return {"series": self.series, "folders": self.folders, "folder_kinds": self.folder_kinds}


def least_squares(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line through (t, v) points; None if degenerate."""
    n = len(points)
    if n < 2:
        return None
    t0 = points[0][0]
    mt = sum(p[0] - t0 for p in points) / n
    mv = sum(p[1] for p in points) / n
    sxx = sum((p[0] - t0 - mt) ** 2 for p in points)
    if sxx <= 0:
        return None
    sxy = sum((p[0] - t0 - mt) * (p[1] - mv) for p in points)
    slope = sxy / sxx
    return slope, mv - slope * (mt + t0)


def seconds_to_reach(points: Sequence[tuple[float, float]], limit: float, now: float) -> float | None:
    """Seconds from ``now`` until the fitted line reaches ``limit``; 0 if already there; None if never."""
    fit = least_squares(points)
    if fit is None:
        return None
    slope, intercept = fit
    current = slope * now + intercept
    if current >= limit:
        return 0.0
    if slope <= 0:
        return None
    return (limit - current) / slope


def steady_growth(points: Sequence[tuple[float, float]]) -> float:
    """The share of consecutive steps that do not go down: near 1 for a steady fill.

    A one-off jump that is later cleaned up has one big step up and one big step down and
    flat steps in between, so most of its growth sits in one step; callers combine this
    with ``largest_step_share`` to tell a trend from a jump.
    """
    if len(points) < 2:
        return 0.0
    ups = sum(1 for a, b in itertools.pairwise(points) if b[1] >= a[1])
    return ups / (len(points) - 1)


def largest_step_share(points: Sequence[tuple[float, float]]) -> float:
    """The largest single rise as a share of the total rise over the series (0..1)."""
    rises = [b[1] - a[1] for a, b in itertools.pairwise(points) if b[1] > a[1]]
    total = sum(rises)
    return max(rises) / total if total > 0 else 1.0
