"""watcher's own Prometheus metrics, on a registry of their own (tests get a fresh one).

Three kinds, so that a scrape means the same whichever worker or replica answers it:

* figures of the database (inbox lag, engine cursor, open tickets, the outbox): not here,
  but read from the store at scrape time (``watcher.status.FiguresCollector``);
* counters and histograms of work done (events taken, notices sent): with several worker
  processes, added up over the workers by prometheus_client's multiprocess mode;
* gauges about one process (its collectors, its SNMP receiver, whether it runs the engine):
  with several workers each keeps its own series, labelled ``pid`` (multiprocess ``liveall``).
"""

from __future__ import annotations

import os
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.registry import Collector


def exposition(registry: CollectorRegistry, shared: Collector | None = None) -> bytes:
    """The text /metrics serves: this process's metrics, or with several worker processes
    (prometheus_client's multiprocess mode, set up by ``watcher serve --workers``) every
    worker's counters added up and each worker's gauges; then the ``shared`` figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        registry = merged
    body = generate_latest(registry)
    if shared is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(shared)
        body += generate_latest(extra)
    return body


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        gauge = partial(Gauge, registry=r, multiprocess_mode="liveall")
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
        self.engine_leader = gauge("watcher_process_engine_leader", "1 while this process runs the engine "
                                   "(per process)")
        self.quarantined_items = Counter("watcher_quarantined", "Items (events, ops, timers) the engine set "
                                         "aside because handling them failed", registry=r)
        self.engine_ready = gauge("watcher_process_ready", "1 while /ready says this process is ready for work "
                                  "(per process)")
        self.ingest_seconds = Histogram("watcher_ingest_seconds", "Time to accept one ingest request, "
                                        "durably", ["path"], registry=r,
                                        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.engine_batch_seconds = Histogram("watcher_engine_batch_seconds", "Time to handle and commit "
                                              "one engine batch", registry=r,
                                              buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.delivery_seconds = Histogram("watcher_delivery_seconds", "From a notice queued to its "
                                          "delivery", ["kind"], registry=r,
                                          buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600))
        self.collector_up = gauge("watcher_collector_up", "1 while a collector job's last run succeeded and found what "
                                  "it watches working (0: the job fails, or a probe's target does not answer)",
                                  ["job"])
        self.collector_runs = gauge("watcher_collector_runs", "Runs of a collector job", ["job"])
        self.collector_errors = gauge("watcher_collector_errors", "Failed runs of a collector job", ["job"])
        self.collector_duration = gauge("watcher_collector_last_duration_seconds", "Duration of a collector "
                                        "job's last run", ["job"])
        self.snmp_traps = gauge("watcher_snmp_traps", "SNMP traps received and rejected, by outcome",
                                ["outcome"])
        # who watches the watcher (watcher.feeds, watcher.heartbeat)
        self.feed_silent = Gauge("watcher_feed_silent", "1 while an expected source (a feed of watcher.yaml) "
                                 "has been silent past its period (set by the process that runs the engine)",
                                 ["feed", "client"], registry=r, multiprocess_mode="livemax")
        self.feed_last_seen = Gauge("watcher_feed_last_seen_timestamp_seconds", "When an expected source last "
                                    "spoke (Unix time)", ["feed"], registry=r, multiprocess_mode="max")
        self.heartbeat_pings = Counter("watcher_heartbeat_pings", "Pings to the dead man's switch, by result "
                                       "(sent, failed, skipped while unhealthy)", ["result"], registry=r)
        self.store_up = gauge("watcher_store_up", "1 while the database answered the last health probe")
        self.store_errors = Counter("watcher_store_errors", "Database health probes that failed", registry=r)
        self.sink_calls = Counter("watcher_sink_calls", "Calls to helpdesk ticket systems, by system, action "
                                  "and result (ok, skipped, retry, dead)", ["sink", "action", "result"], registry=r)
        self.sink_poll_errors = Counter("watcher_sink_poll_errors", "Failed polls of a helpdesk ticket system",
                                        ["sink"], registry=r)
        self.sink_agent_steps = Counter("watcher_sink_agent_steps", "Agents' steps learnt from a helpdesk "
                                        "ticket system (ack, resolve)", ["sink", "action"], registry=r)
        self.sink_jobs = gauge("watcher_sink_jobs", "Calls owed to helpdesk ticket systems, by system and "
                               "state (pending, sending, done, dead)", ["sink", "state"])
