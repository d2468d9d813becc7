-- wrk script: POST one fixed chat completion body, then print a one-line JSON summary.
-- The body and the bearer token come from the environment so run.py needs no templating.
-- No per-response callback: that would run Lua for every reply and make wrk itself slower.
-- BENCH_PORTS="4001,4002" (several gateway processes on 127.0.0.1): thread i connects to port i mod n,
-- so with -t<n> the connections are spread evenly over the processes (run.py passes -t<n>).

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "none")

local ports = {}
for port in string.gmatch(os.getenv("BENCH_PORTS") or "", "%d+") do
  table.insert(ports, port)
end
local next_thread = 0

function setup(thread)
  if #ports > 0 then
    local port = ports[(next_thread % #ports) + 1]
    next_thread = next_thread + 1
    thread.addr = wrk.lookup("127.0.0.1", port)[1]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"tool":"wrk","requests":%d,"duration_s":%.6f,"p50_ms":%.4f,"p90_ms":%.4f,' ..
    '"p99_ms":%.4f,"max_ms":%.4f,"mean_ms":%.4f,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
