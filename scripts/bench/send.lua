-- wrk script for `make bench`: POST /api/v1/notifications/ with a unique request id per request,
-- rotating over the users in BENCH_USERS (one id per line). Prints p50/p95/p99 and status counts.
-- With BENCH_BATCH=N, each request POSTs N such sends to /api/v1/notifications/batch instead, and
-- the items answered 202 are counted too.
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
  batch = tonumber(os.getenv("BENCH_BATCH") or "0")
  codes = {}
  items = 0
end

local function send()
  counter = counter + 1
  local user = users[(counter % #users) + 1]
  return string.format(
    '{"notification_type":"email","user_id":"%s","template_code":"%s","variables":{"name":"Bench","link":"https://example.com"},"request_id":"%s-%d-%d","priority":%d}',
    user, template, run, tid, counter, (counter % 10) + 1)
end

function request()
  if batch == 0 then
    return wrk.format(nil, "/api/v1/notifications/", nil, send())
  end
  local sends = {}
  for i = 1, batch do sends[i] = send() end
  return wrk.format(nil, "/api/v1/notifications/batch", nil, '{"notifications":[' .. table.concat(sends, ",") .. ']}')
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if batch > 0 and status == 200 then
    local _, found = string.gsub(body, '"status_code":%s*202', "")
    items = items + found
  end
end

function done(summary, latency, requests)
  local merged = {}
  local accepted_items = 0
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
    accepted_items = accepted_items + t:get("items")
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%d": %d', k, v)) end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_s": %.3f, "rps": %.1f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "errors": %d, "accepted_items": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
      + summary.errors.status, accepted_items, table.concat(parts, ", ")))
end
