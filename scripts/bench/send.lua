-- wrk script for `make bench`: POST /api/v1/notifications/ with a unique request id per request,
-- rotating over the users in BENCH_USERS (one id per line). Prints p50/p95/p99 and status counts.
local users = {}
local counter = 0
local thread_id = 0
local threads = {}
local statuses = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_USERS")) do
    if #line > 0 then table.insert(users, line) end
  end
  token = os.getenv("BENCH_TOKEN")
  template = os.getenv("BENCH_TEMPLATE")
  run = os.getenv("BENCH_RUN")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  codes = {}
end

function request()
  counter = counter + 1
  local user = users[(counter % #users) + 1]
  local body = string.format(
    '{"notification_type":"email","user_id":"%s","template_code":"%s","variables":{"name":"Bench","link":"https://example.com"},"request_id":"%s-%d-%d","priority":%d}',
    user, template, run, tid, counter, (counter % 10) + 1)
  return wrk.format(nil, "/api/v1/notifications/", nil, body)
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%d": %d', k, v)) end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_s": %.3f, "rps": %.1f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
      + summary.errors.status, table.concat(parts, ", ")))
end
