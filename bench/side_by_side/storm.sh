#!/bin/bash
# A notification storm: 500 offices go down at once (one LinkDown each, in 5 requests of
# 100) on watcher with the load's inventory (two remote people an office, told at a local
# sink). Prints the seconds until the sink holds all 1,000 notices.
#
#   bash bench/side_by_side/storm.sh
set -u
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/watcher-storm.XXXXXX); pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
W=$(free_port); SINK=$(free_port)
python3 "$here/sink.py" "$SINK" & pids+=($!)
cp "$root/rules.yaml" "$work/"; python3 "$here/config.py" "$work" "127.0.0.1:$SINK"
(cd "$work" && exec "$root/.venv/bin/watcher" serve --config watcher.yaml --listen "127.0.0.1:$W" \
   --db "sqlite:///$work/w.db" --snmp-listen off) >"$work/w.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf "127.0.0.1:$W/healthz" >/dev/null && break; sleep 0.2; done
t0=$(date +%s.%N)
for b in 0 1 2 3 4; do
  python3 -c "import json,sys; b=int(sys.argv[1]); print(json.dumps([{'labels': {'alertname': 'LinkDown',
    'client': f'c{s % 50}', 'site': f's{s}', 'ifIndex': '1'}} for s in range(b * 100, (b + 1) * 100)]))" "$b" |
    curl -s -o /dev/null -w '%{http_code} ' -XPOST "127.0.0.1:$W/api/v1/events" -H 'Content-Type: application/json' --data-binary @-
done; echo
for _ in $(seq 1200); do n=$(curl -s "127.0.0.1:$SINK/count"); [ "${n:-0}" -ge 1000 ] && break; sleep 0.1; done
echo "1,000 notices expected, $n at the sink after $(python3 -c "import time; print(round(time.time() - $t0, 1))") s"
