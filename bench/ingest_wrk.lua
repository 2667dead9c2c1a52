-- wrk script for bench_ingest: cycles through pre-signed bodies, one per request, so every
-- request carries new event ids. Arguments (after --): header name, file of "signature\tbody"
-- lines. Prints one JSON line of figures when done.
local signatures, bodies, count, next_index = {}, {}, 0, 0
local header

function init(args)
  header = args[1]
  for line in io.lines(args[2]) do
    local tab = line:find("\t", 1, true)
    count = count + 1
    signatures[count] = line:sub(1, tab - 1)
    bodies[count] = line:sub(tab + 1)
  end
end

function request()
  next_index = next_index % count + 1
  local headers = { ["Content-Type"] = "application/json" }
  headers[header] = signatures[next_index]
  return wrk.format("POST", nil, headers, bodies[next_index])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
