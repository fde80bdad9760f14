"""The monthly report for a client's IT coordinator: what happened, how fast it was handled,
and what we recommend.

- ``data``: the month's figures from tickets and share samples (pure);
- ``recommend``: the table of recommendation rules (built-in and from watcher.yaml);
- ``render`` and ``charts``: text, HTML with SVG charts, and PDF, in the client's language;
- ``send``: the reports table, the once-a-month schedule and the mail with the PDF.

``build`` joins the first two, so the service, ``watcher report`` and the tests compute the
same report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from watcher.config.inventory import Client
from watcher.config.report import RecommendationRule
from watcher.report import data, recommend
from watcher.report.data import Report, Sample, samples_from_events

__all__ = ["Report", "Sample", "build", "data", "recommend", "samples_from_events"]


def build(tickets: Sequence[dict[str, Any]], client: Client, month: str, samples: Iterable[Sample] = (),
          now: datetime | None = None, rules: Sequence[RecommendationRule] = recommend.DEFAULT_RULES) -> Report:
    """The report of ``client``'s ``month`` with the recommendations ``rules`` derive from it."""
    report = data.build(tickets, client, month, samples, now)
    report.recommendations = recommend.recommend(report, client, rules)
    return report
