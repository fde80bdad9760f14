-- wrk script: POST /api/v2/alerts, 100 Prometheus-style alerts a request, cycling over POOL
-- alert identities (ProbeFailed for 500 offices of 50 clients, the inventory's names).
local pool = tonumber(os.getenv("POOL") or "100000")
local n, tid = 0, 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function request()
  local alerts = {}
  for i = 1, 100 do
    n = n + 1
    local id = (n * 7919 + tid * 104729) % pool
    local site = id % 500
    alerts[i] = string.format(
      '{"labels":{"alertname":"ProbeFailed","client":"c%d","site":"s%d","instance":"probe-%d","severity":"critical"},' ..
      '"annotations":{"summary":"probe %d failed"},"startsAt":"2026-11-29T10:00:00Z","generatorURL":"http://prom/graph"}',
      site % 50, site, id, id)
  end
  return wrk.format("POST", "/api/v2/alerts", {["Content-Type"] = "application/json"}, "[" .. table.concat(alerts, ",") .. "]")
end
