-- wrk_search.lua - wrk script for the HTTP search benchmark (bench/http.sh): POSTs
-- /v1/search with k=10 and the query texts of a file, one per line.  Thread t of T sends
-- queries t, t+T, t+2T, ... in turn, as bench_search does in-process, so both sides see
-- the same queries in the same order.
--
-- usage: wrk -t T -c C -d S --latency -s wrk_search.lua URL -- QUERY_FILE T [K]
-- done() prints one line: wrk_result requests=N seconds=S errors=N non2xx=N p50_us=X p99_us=X

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local function json_string(s)
   s = s:gsub('[%c"\\]', function(c)
      if c == '"' then return '\\"' end
      if c == '\\' then return '\\\\' end
      return string.format("\\u%04x", c:byte())
   end)
   return '"' .. s .. '"'
end

local bodies = {}
local pos, step = 1, 1
local headers = {["Content-Type"] = "application/json"}

function init(args)
   local file, nthreads, k = args[1], tonumber(args[2] or "1"), tonumber(args[3] or "10")
   assert(file, "usage: -- QUERY_FILE THREADS [K]")
   for line in io.lines(file) do
      if #line > 0 then
         table.insert(bodies, '{"query":' .. json_string(line) .. ',"k":' .. k .. '}')
      end
   end
   assert(#bodies > 0, "no queries in " .. file)
   pos = (tid % #bodies) + 1
   step = nthreads
end

function request()
   local body = bodies[pos]
   pos = ((pos - 1 + step) % #bodies) + 1
   return wrk.format("POST", "/v1/search", headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "wrk_result requests=%d seconds=%.3f errors=%d non2xx=%d p50_us=%.1f p99_us=%.1f\n",
      summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout,
      e.status, latency:percentile(50), latency:percentile(99)))
end
