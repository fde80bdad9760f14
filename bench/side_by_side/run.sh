#!/bin/bash
# watcher against Prometheus' Alertmanager on this machine, end to end, in one run.
#
#   bash bench/side_by_side/run.sh [SECONDS]
#
# Both take POST /api/v2/alerts from wrk (load.lua: batches of 100 alerts), one at a time
# while the other is paused with SIGSTOP, for a pool of 100,000 alert identities (new
# alerts, growing state) and for re-sends of 10,000, two rounds each. Both notify a local
# sink (sink.py); watcher's inventory knows every client and office of the load (config.py).
# Alertmanager handles an alert in memory on arrival; watcher answers once the alert is on
# disk (SQLite, synchronous=FULL) and its engine works behind, so watcher's figure is end to
# end: alerts accepted / (load time + time until the engine's cursor reaches the inbox head).
# Needs wrk, prometheus-alertmanager and sqlite3 (Debian packages; installed when missing).
set -u
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
secs=${1:-10}
work=$(mktemp -d /tmp/watcher-sbs.XXXXXX); pids=()
stop_all() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; sleep 1
             for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$work"; }
trap stop_all EXIT
for tool in wrk prometheus-alertmanager sqlite3; do
  command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk prometheus-alertmanager sqlite3 >/dev/null
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AM=$(free_port); W=$(free_port); SINK=$(free_port)
python3 "$here/sink.py" "$SINK" & pids+=($!)
cp "$root/rules.yaml" "$work/"; python3 "$here/config.py" "$work" "127.0.0.1:$SINK"

up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; echo "did not start: $1"; exit 1; }
start() {
  rm -rf "$work/am-data" "$work"/w.db*
  prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am-data" \
    --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= >"$work/am.log" 2>&1 & am=$!; pids+=($am)
  (cd "$work" && exec "$root/.venv/bin/watcher" serve --config watcher.yaml --listen "127.0.0.1:$W" \
     --db "sqlite:///$work/w.db" --snmp-listen off) >"$work/w.log" 2>&1 & w=$!; pids+=($w)
  up "127.0.0.1:$AM/-/ready"; up "127.0.0.1:$W/healthz"
}
rate() { POOL=$2 wrk -t2 -c8 -d"${secs}s" -s "$here/load.lua" "http://127.0.0.1:$1" | awk '/Requests\/sec/ {printf "%d", $2 * 100}'; }
rss_mb() { ps -o rss= -p "$1" | awk '{printf "%d", $1 / 1024}'; }
cursor() { curl -s -m 5 "127.0.0.1:$W/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["engine"]["cursor"])' 2>/dev/null || echo -1; }
drain() {
  local t0 head; t0=$(date +%s.%N); head=$(sqlite3 "$work/w.db" 'select coalesce(max(seq),0) from inbox')
  for _ in $(seq 600); do [ "$(cursor)" -ge "$head" ] && break; sleep 0.25; done
  [ "$(cursor)" -ge "$head" ] || { echo stalled; return; }
  python3 -c "import time; print(round(time.time() - $t0, 1))"
}

echo "machine: $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg), $secs s per measurement"
echo "| alert pool | round | Alertmanager alerts/s | watcher ingest alerts/s | engine drain s | watcher end to end alerts/s | ratio | Alertmanager RSS MB | watcher RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
for pool in 100000 10000; do
  start
  for round in 1 2; do
    kill -STOP "$w"; a=$(rate "$AM" "$pool"); kill -CONT "$w"
    kill -STOP "$am"; b=$(rate "$W" "$pool"); d=$(drain); kill -CONT "$am"
    if [ "$d" = stalled ]; then e=0; else e=$(python3 -c "print(round(${b:-0} * $secs / ($secs + $d)))"); fi
    r=$(python3 -c "print(round(${e:-0} / max(${a:-1}, 1), 2))")
    echo "| $pool | $round | $a | $b | $d | $e | $r | $(rss_mb "$am") | $(rss_mb "$w") |"
  done
  kill "$am" "$w"; wait "$am" "$w" 2>/dev/null
done
echo "notices at the sink: $(curl -s "127.0.0.1:$SINK/count")"
