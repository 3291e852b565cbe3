-- wrk script: POST /orders with a JSON order; optional fixed count per thread.
-- Usage: wrk -t2 -c32 -d30s -s post_orders.lua http://127.0.0.1:PORT -- [LIMIT_PER_THREAD]
-- Prints one JSON line (prefix "BENCH_JSON ") with requests/s and latency percentiles.
wrk.method = "POST"
wrk.path = "/orders"
wrk.body = '{"product_id": "sku-1", "quantity": 1}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}
local limit = 0
local done_count = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(args[1] or "0") or 0
  done_count = 0
  status_bad = 0
end

function response(status, headers, body)
  done_count = done_count + 1
  if status < 200 or status >= 300 then
    status_bad = status_bad + 1
  end
  if limit > 0 and done_count >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("status_bad") or 0)
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_s": %.4f, "rps": %.2f, "non_2xx": %d, ' ..
    '"socket_errors": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, secs, summary.requests / secs, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3))
end
