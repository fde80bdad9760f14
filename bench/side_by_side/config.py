"""Writes the load's config for watcher and Alertmanager into a folder: 50 clients, 500
offices (office sK belongs to client c(K % 50)), two remote people an office, all told at
the sink; Alertmanager routes everything to the same sink."""
import sys
from pathlib import Path

out, sink = Path(sys.argv[1]), sys.argv[2]
lines = ["clients:"]
for c in range(50):
    lines += [f"  - id: c{c}", f"    name: Client {c}", "    sla: standard", "    language: en",
              "    timezone: Europe/Warsaw", '    business_hours: "Mon-Fri 08:00-17:00"',
              f'    admins: ["json://{sink}/watcher"]', "    sites:"]
    offices = [s for s in range(500) if s % 50 == c]
    lines += [f"      - {{id: s{s}, name: Office {s}}}" for s in offices]
    lines.append("    people:")
    lines += [f'      - {{id: p{s}-{p}, name: Person {s}-{p}, site: s{s}, remote: true, notify: ["json://{sink}/watcher"]}}'
              for s in offices for p in range(2)]
(out / "inventory.yaml").write_text("\n".join(lines) + "\n")
(out / "watcher.yaml").write_text("rules: rules.yaml\ninventory: inventory.yaml\n"
                                  "collectors:\n  probes: false\n  disk: false\n")
(out / "am.yml").write_text(f"""route:
  receiver: sink
  group_by: [client, site]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 4h
receivers:
  - name: sink
    webhook_configs: [{{url: "http://{sink}/am"}}]
""")
