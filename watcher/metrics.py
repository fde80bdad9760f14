"""watcher's own Prometheus metrics, on a registry of their own (tests get a fresh one)."""

from __future__ import annotations

import os
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess


def exposition(registry: CollectorRegistry) -> bytes:
    """The text /metrics serves.  With several worker processes (prometheus_client's
    multiprocess mode, set up by ``watcher serve --workers``) it adds up every worker's
    counters and histograms and shows each gauge's most recent value."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
    return generate_latest(registry)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        gauge = partial(Gauge, registry=r, multiprocess_mode="livemostrecent")
        self.events_received = Counter("watcher_events_received", "Events accepted (stored), by source",
                                       ["source"], registry=r)
        self.events_duplicate = Counter("watcher_events_duplicate", "Events that repeated an occurrence "
                                        "already stored", ["source"], registry=r)
        self.ingest_rejected = Counter("watcher_ingest_rejected", "Requests refused, by path and reason",
                                       ["path", "reason"], registry=r)
        self.truncated_alerts = Counter("watcher_truncated_alerts", "Alerts a sender left out of its payloads "
                                        "(Alertmanager's and Grafana's truncatedAlerts)", ["path"], registry=r)
        self.auth_failures = Counter("watcher_auth_failures", "Ingest requests with a missing or wrong "
                                     "credential", ["path"], registry=r)
        self.tickets_opened = Counter("watcher_tickets_opened", "Tickets opened, by category", ["category"],
                                      registry=r)
        self.tickets_resolved = Counter("watcher_tickets_resolved", "Tickets resolved, by category",
                                        ["category"], registry=r)
        self.notifications = Counter("watcher_notifications", "Notification deliveries, by kind and result "
                                     "(sent, retry, dead)", ["kind", "result"], registry=r)
        self.inbox_lag = gauge("watcher_inbox_lag", "Stored events the engine has not handled yet")
        self.outbox_depth = gauge("watcher_outbox", "Notifications in the outbox, by state", ["state"])
        self.open_tickets = gauge("watcher_open_tickets", "Tickets open in the engine")
        self.unbound_events = gauge("watcher_unbound_events", "Events that bound to no client of the "
                                    "inventory (kept, counted)")
        self.quarantined_items = Counter("watcher_quarantined", "Items (events, ops, timers) the engine set "
                                         "aside because handling them failed", registry=r)
        self.quarantine_size = gauge("watcher_quarantine_size", "Items in the quarantine (GET /api/v1/quarantine)")
        self.inbox_lag_seconds = gauge("watcher_inbox_lag_seconds", "How long the oldest stored event the "
                                       "engine has not handled yet has waited")
        self.engine_ready = gauge("watcher_ready", "1 while /ready says this process is ready for work")
        self.unrouted_events = gauge("watcher_unrouted_events", "Events that no rule names (recorded only)")
        self.ingest_seconds = Histogram("watcher_ingest_seconds", "Time to accept one ingest request, "
                                        "durably", ["path"], registry=r,
                                        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.engine_batch_seconds = Histogram("watcher_engine_batch_seconds", "Time to handle and commit "
                                              "one engine batch", registry=r,
                                              buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.delivery_seconds = Histogram("watcher_delivery_seconds", "From a notice queued to its "
                                          "delivery", ["kind"], registry=r,
                                          buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600))
        self.collector_up = gauge("watcher_collector_up", "1 while a collector job's last run succeeded",
                                  ["job"])
        self.collector_runs = gauge("watcher_collector_runs", "Runs of a collector job", ["job"])
        self.collector_errors = gauge("watcher_collector_errors", "Failed runs of a collector job", ["job"])
        self.collector_duration = gauge("watcher_collector_last_duration_seconds", "Duration of a collector "
                                        "job's last run", ["job"])
        self.snmp_traps = gauge("watcher_snmp_traps", "SNMP traps received and rejected, by outcome",
                                ["outcome"])
