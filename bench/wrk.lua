-- wrk script for bench/run.sh. Configured by environment variables:
--   BENCH_ID, BENCH_ROUND  labels copied into the result line
--   WRK_METHOD, WRK_BODY   request method and JSON body (e.g. POST /omni/start)
--   WRK_BODY_BYTES         a request body of that many bytes
--   WRK_IDS, WRK_PREFIX    a file of ids: each request asks WRK_PREFIX..<random id>
-- At the end it prints one line "BENCHJSON {...}" with the throughput, the
-- latency percentiles (microseconds) and the error counts.

local id = os.getenv("BENCH_ID") or "unnamed"
local round = tonumber(os.getenv("BENCH_ROUND") or "0") or 0

local method = os.getenv("WRK_METHOD")
if method ~= nil and method ~= "" then
  wrk.method = method
end
local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

-- WRK_BODY_BYTES: a body of that many bytes (the big-body rows).
local size = tonumber(os.getenv("WRK_BODY_BYTES") or "")
if size ~= nil and size > 0 then
  wrk.body = string.rep("x", size)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

local idsfile = os.getenv("WRK_IDS")
local paths = nil
if idsfile ~= nil and idsfile ~= "" then
  local prefix = os.getenv("WRK_PREFIX") or "/"
  paths = {}
  for line in io.lines(idsfile) do
    if line ~= "" then
      paths[#paths + 1] = prefix .. line
    end
  end
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

-- With ids, every request is formatted once, here: request() then makes no
-- garbage. Formatting per request made a new string each time, and with
-- 100 000 ids wrk spent about 6 us more per request than with 100 (Lua
-- interns strings: 100 distinct requests are found again, 100 000 are
-- allocated and collected), CPU taken from the server on the shared cores,
-- which the resume row then charged to the server.
local reqs = nil

function init(args)
  math.randomseed((seed or 1) * 7919 + os.time())
  if paths ~= nil then
    reqs = {}
    for i, p in ipairs(paths) do
      reqs[i] = wrk.format(nil, p)
    end
    paths = nil
    collectgarbage()
  end
end

if paths ~= nil then
  function request()
    return reqs[math.random(#reqs)]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCHJSON {"kind":"wrk","id":"%s","round":%d,"requests":%d,"seconds":%.3f,"rps":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"non2xx":%d}\n',
    id, round, summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
