-- wrk script: every request is a binary-mode CloudEvent with an id never sent before.
-- kshop's idempotency answers a repeated id from Redis without running the handler,
-- so a fixed id would measure the duplicate path, not the handler.
--
--   wrk -s bench/wrk_cloudevents.lua http://127.0.0.1:PORT/ -- RUN_ID EVENT_TYPE
--
-- done() prints one line "WRK_JSON {...}" for bench/throughput.py to read.

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

local counter = 0
local id_prefix = "bench"
local event_type = "bench.noop"
local body = '{"userId":"u-1","totalCents":1250}'
local headers = {
  ["Content-Type"] = "application/json",
  ["ce-specversion"] = "1.0",
  ["ce-source"] = "/bench/throughput",
  -- a sampled trace context: kshop continues it (and records a span when it exports)
  ["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}

function init(args)
  -- The run id keeps ids unique across rounds and warm-ups; the thread number across threads.
  id_prefix = (args[1] or "bench") .. "-" .. tostring(thread_number or 0)
  event_type = args[2] or event_type
  headers["ce-type"] = event_type
end

function request()
  counter = counter + 1
  headers["ce-id"] = id_prefix .. "-" .. counter
  return wrk.format("POST", "/", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
