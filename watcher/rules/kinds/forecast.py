"""``forecast``: a least-squares trend over metric samples; a ticket when the share is full
within ``horizon``, or over ``full_ratio``.

Reads metric samples (events with ``value`` and a ``metric`` label): the share's total
(``metric``) and its folders' (``folder_metric``), kept in the group's ``Trend`` over
``window``.  A series whose rise is mostly one step (a one-off jump) is not a trend; the
signal's ``for`` requires the forecast to hold that long.  The ticket names the folder that
grew most; its owner gets an ``advice`` (watcher.rules.advice) and the admins a ``disk_review``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watcher.model import MAX_VALUE
from watcher.rules import advice
from watcher.rules.forecast import Trend, largest_step_share, seconds_to_reach
from watcher.rules.kinds.base import GroupState, RuleKind, state_of

if TYPE_CHECKING:
    from watcher.config.inventory import Client
    from watcher.config.yamlload import Reader
    from watcher.model import Event, Ticket
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group


@dataclass(frozen=True)
class ForecastConfig:
    metric: str
    folder_metric: str = ""
    window: float = 6 * 3600.0
    horizon: float = 7 * 86400.0
    full_ratio: float = 0.9
    min_span: float = 3 * 3600.0
    min_growth_ratio: float = 0.002


def _size(text: str | None) -> float | None:
    """A size an exporter reported in an annotation, if it is a usable number of bytes."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and 0 < value <= MAX_VALUE else None


class Forecast(RuleKind[ForecastConfig]):
    name = "forecast"
    keys = frozenset({"metric", "folder_metric", "window", "horizon", "full_ratio", "min_span", "min_growth_ratio"})
    needs_signals = False
    routed = False

    @classmethod
    def parse(cls, r: Reader) -> ForecastConfig:
        metric = r.text("metric", "")
        if not metric:
            r.fail("metric", "required for a forecast rule")
        return ForecastConfig(
            metric=metric, folder_metric=r.text("folder_metric", ""), window=r.duration("window", 6 * 3600),
            horizon=r.duration("horizon", 7 * 86400), full_ratio=r.number("full_ratio", 0.9),
            min_span=r.duration("min_span", 3 * 3600), min_growth_ratio=r.number("min_growth_ratio", 0.002))

    def new_state(self) -> GroupState:
        return Trend()

    def state_from_row(self, row: dict[str, Any]) -> GroupState:
        return Trend(list(row.get("series", [])), dict(row.get("folders", {})), dict(row.get("folder_kinds", {})))

    def keep_when_idle(self, g: Group) -> bool:
        return True  # the series is the forecast's history

    def metrics(self) -> tuple[tuple[str, str], ...]:
        return ((self.config.metric, "total"),) + (((self.config.folder_metric, "folder"),)
                                                   if self.config.folder_metric else ())

    def take_sample(self, engine: Engine, g: Group, role: str, ev: Event, labels: dict[str, str], value: float,
                    t: float) -> bool:
        kept = state_of(g, Trend)
        at = min((ev.observed_at or ev.start).timestamp(), t) if ev.observed_at else t
        if role == "folder":
            series = kept.folders.setdefault(labels.get("folder", "?"), [])
            kinds = ev.annotations.get("file_kinds")
            if kinds:
                try:
                    kept.folder_kinds[labels.get("folder", "?")] = json.loads(kinds)
                except ValueError:
                    pass
        else:
            series = kept.series
        if series and at <= series[-1][0]:
            return False  # a re-sent or out-of-order sample
        series.append([at, value])
        cutoff = t - self.config.window
        while series and series[0][0] < cutoff:
            series.pop(0)
        if role != "total":
            return False
        total = _size(ev.annotations.get("total_bytes") or ev.annotations.get("size_bytes"))
        if total:
            g.detail["reported_size"] = total
        return True

    def condition(self, engine: Engine, g: Group, t: float) -> tuple[bool, float]:
        ok = self._forecast(engine, g, t)
        if ok and not g.cond:
            g.since = t
        return ok, (g.since or t)

    def _forecast(self, engine: Engine, g: Group, t: float) -> bool:
        cfg = self.config
        share = engine.inv.shares.get(g.labels.get("share", ""))
        reported = g.detail.get("reported_size")
        size = (share.size_bytes if share else None) or (int(reported) if reported else None)
        pts = [(p[0], p[1]) for p in state_of(g, Trend).series]
        if not size or len(pts) < 4:
            return False
        used = pts[-1][1] / size
        g.detail = {"reported_size": reported} if reported else {}
        g.detail |= {"used_pct": round(100 * used, 1), "size_bytes": size, "used_bytes": int(pts[-1][1])}
        if used >= cfg.full_ratio:
            g.detail["reason"] = f"over {int(cfg.full_ratio * 100)} % full"
            return True
        if pts[-1][0] - pts[0][0] < cfg.min_span:
            return False
        eta = seconds_to_reach(pts, float(size), t)
        if eta is None or eta > cfg.horizon:
            return False
        rise = pts[-1][1] - pts[0][1]
        if rise < cfg.min_growth_ratio * size or largest_step_share(pts) > 0.5:
            return False
        g.detail["days_to_full"] = round(eta / 86400, 1)
        g.detail["reason"] = f"forecast full in {eta / 86400:.1f} days"
        return True

    def hold_due(self, g: Group, since: float, t: float) -> float:
        hold = self.rule.signals[0].hold if self.rule.signals else 0.0
        return max(t, since + hold)

    def open_details(self, engine: Engine, g: Group, client: Client, details: dict[str, object]) -> str | None:
        details.update(g.detail)
        share = engine.inv.shares.get(g.labels.get("share", ""))
        advice_to = advice.decide(state_of(g, Trend), share, client.advice, details)
        if share:
            details["share_name"] = share.name
        return advice_to

    def on_open(self, engine: Engine, tk: Ticket, t: float) -> None:
        engine.notify(tk, "admins", "disk_review", t)
