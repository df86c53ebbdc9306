-- wrk script for every scenario; configured by environment variables (bench.py sets them):
--   BENCH_MODE     get | revalidate | publish
--   BENCH_ACCEPT   Accept header (optional)
--   BENCH_ENCODING Accept-Encoding header (optional)
--   BENCH_INM      If-None-Match header (revalidate)
--   BENCH_TOKEN    bearer token (publish)
--   BENCH_PUB_*    publish: PREFIX (package name prefix), PACKAGES (how many), DIGITS (of the
--                  package number), THREADS (wrk's -t), RUN (distinct per wrk run, so versions
--                  never repeat), PORT, B64, SHA1, SRI, LENGTH (the tarball)
-- done() prints one line "BENCHJSON {...}" with counts, percentiles (microseconds) and, for
-- revalidate and publish, the response status counts.

local mode = os.getenv("BENCH_MODE") or "get"
local accept = os.getenv("BENCH_ACCEPT")
local inm = os.getenv("BENCH_INM")
local encoding = os.getenv("BENCH_ENCODING")
if accept and accept ~= "" then wrk.headers["Accept"] = accept end
if encoding and encoding ~= "" then wrk.headers["Accept-Encoding"] = encoding end
if mode == "revalidate" then wrk.headers["If-None-Match"] = inm end

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

statuses = {}

if mode ~= "get" then
   -- Only where needed: defining response() makes wrk hand every response to Lua.
   function response(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
   end
end

if mode == "publish" then
   local prefix = os.getenv("BENCH_PUB_PREFIX")
   local npkgs = tonumber(os.getenv("BENCH_PUB_PACKAGES"))
   local pkgfmt = "%s%0" .. (os.getenv("BENCH_PUB_DIGITS") or "2") .. "d"
   local nthreads = tonumber(os.getenv("BENCH_PUB_THREADS") or "1")
   local run = tonumber(os.getenv("BENCH_PUB_RUN"))
   local port = os.getenv("BENCH_PUB_PORT")
   local b64 = os.getenv("BENCH_PUB_B64")
   local sha1 = os.getenv("BENCH_PUB_SHA1")
   local sri = os.getenv("BENCH_PUB_SRI")
   local length = os.getenv("BENCH_PUB_LENGTH")
   local token = os.getenv("BENCH_TOKEN")
   local counter = 0
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
      ["npm-command"] = "publish",
   }
   local template = '{"_id":"%s","name":"%s","description":"bench publish","dist-tags":{"latest":"%s"},'
      .. '"versions":{"%s":{"name":"%s","version":"%s","description":"bench publish","main":"index.js",'
      .. '"license":"MIT","dependencies":{"ms":"^2.1.3"},"_id":"%s@%s","_nodeVersion":"20.11.1",'
      .. '"_npmVersion":"10.2.4","dist":{"integrity":"%s","shasum":"%s",'
      .. '"tarball":"http://127.0.0.1:%s/%s/-/%s-%s.tgz"}}},"access":null,'
      .. '"_attachments":{"%s-%s.tgz":{"content_type":"application/octet-stream","data":"%s","length":%s}}}'

   function request()
      counter = counter + 1
      -- Packages round-robin, interleaved between threads.
      local pkg = string.format(pkgfmt, prefix, (counter * nthreads + id) % npkgs)
      -- major = run, minor = thread, patch = counter: distinct across threads and runs.
      local ver = string.format("%d.%d.%d", run, id, counter)
      local body = string.format(template, pkg, pkg, ver, ver, pkg, ver, pkg, ver, sri, sha1,
         port, pkg, pkg, ver, pkg, ver, b64, length)
      return wrk.format("PUT", "/" .. pkg, headers, body)
   end
end

function done(summary, latency, requests)
   local merged = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
         for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end
      end
   end
   local parts = {}
   for k, v in pairs(merged) do table.insert(parts, string.format('"%d":%d', k, v)) end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, table.concat(parts, ",")))
end
