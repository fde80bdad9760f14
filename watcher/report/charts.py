"""The report's charts as SVG, drawn by matplotlib's SVG backend.

Each function takes the figures of one section and returns an SVG document.  Figures are
made with ``matplotlib.figure.Figure`` (not pyplot): no global state, so reports can be
drawn in worker threads of the service.  Text is drawn as paths, so the PDF looks the
same whatever fonts the reader has; the numbers a reader needs are in the tables beside.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from watcher.report import i18n
from watcher.report.data import MonthFigures, Office, Share

RED, GREY, BLUE, GREEN = "#c62828", "#9e9e9e", "#1565c0", "#2e7d32"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96)
    fig.set_layout_engine("constrained")
    return fig


def _svg(fig: Any) -> str:
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    canvas: Any = FigureCanvasSVG(fig)
    with rc_context({"svg.hashsalt": "watcher-report", "svg.fonttype": "path"}):
        canvas.print_svg(buf, metadata={"Date": None})
    return buf.getvalue()


def categories(by_category: dict[str, int], lang: str) -> str:
    fig = _figure(6.5, 0.45 * max(2, len(by_category)) + 0.6)
    ax = fig.add_subplot()
    names = [i18n.category(c, lang) for c in by_category][::-1]
    values = list(by_category.values())[::-1]
    bars = ax.barh(names, values, color=BLUE)
    ax.bar_label(bars, padding=3)
    ax.set_xlabel(i18n.t("tickets", lang))
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _svg(fig)


def timeline(offices: Sequence[Office], start: datetime, end: datetime, tz: tzinfo, lang: str) -> str:
    """One row per office, a bar for every outage (red) and planned break (grey)."""
    from matplotlib import dates

    mdates: Any = dates

    fig = _figure(7.0, 0.42 * max(2, len(offices)) + 0.9)
    ax = fig.add_subplot()
    for row, office in enumerate(reversed(offices)):
        for begin, until, planned in office.spans:
            width = max(until - begin, timedelta(minutes=90))  # a short outage stays visible
            ax.broken_barh([(mdates.date2num(begin), width.total_seconds() / 86400)], (row - 0.35, 0.7),
                           facecolors=GREY if planned else RED)
    ax.set_yticks(range(len(offices)), [o.name for o in reversed(offices)])
    ax.set_ylim(-0.6, len(offices) - 0.4)
    ax.set_xlim(mdates.date2num(start), mdates.date2num(end))
    ax.xaxis.set_major_locator(mdates.DayLocator(bymonthday=[1, 8, 15, 22], tz=tz))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d.%m", tz=tz))
    ax.grid(axis="x", color="#e0e0e0")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def shares(items: Sequence[Share], start: datetime, end: datetime, tz: tzinfo, lang: str) -> str:
    """Used space in % of each share over the month, and its forecast (dashed) to 100 %."""
    from matplotlib import dates

    mdates: Any = dates

    fig = _figure(7.0, 3.0)
    ax = fig.add_subplot()
    horizon = end
    for share in items:
        if not share.series or not share.size_bytes:
            continue
        xs = [t for t, _ in share.series]
        ys = [100 * v / share.size_bytes for _, v in share.series]
        line = ax.plot(xs, ys, label=share.name, linewidth=1.6)[0]
        if share.fill_date is not None and share.days_to_full is not None and share.days_to_full <= 120:
            ax.plot([xs[-1], share.fill_date], [ys[-1], 100], linestyle="--", color=line.get_color(), linewidth=1)
            horizon = max(horizon, share.fill_date)
    ax.axhline(100, color=RED, linewidth=0.8)
    ax.set_ylim(0, 105)
    ax.set_xlim(mdates.date2num(start), mdates.date2num(horizon))
    ax.set_ylabel("%")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d.%m", tz=tz))
    ax.legend(loc="best", fontsize=8, framealpha=0.8)
    ax.grid(color="#eeeeee")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def trend(months: Sequence[MonthFigures], lang: str) -> str:
    """Tickets, sudden outages and SLA misses of the month and the three before."""
    fig = _figure(6.5, 2.6)
    ax = fig.add_subplot()
    labels = [i18n.short_month(m.month, lang) for m in months]
    width = 0.27
    for k, (key, color, values) in enumerate((
            ("tickets", BLUE, [m.tickets for m in months]),
            ("sudden", RED, [m.sudden_outages for m in months]),
            ("sla_missed", GREY, [m.sla_missed for m in months]))):
        bars = ax.bar([i + (k - 1) * width for i in range(len(months))], values, width, color=color,
                      label=i18n.t(key, lang))
        ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xticks(range(len(months)), labels)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)
