-- wrk script for the paced runs of benches/load/run.sh: after each response a connection waits
-- WRK_PACE_MS milliseconds before it sends its next request, so the offered load is about
-- connections / (pace + latency) requests per second, well below what any server here can
-- take. Latency measured this way is the time a server adds to a request, not time spent
-- queued behind other requests, which is what the saturated runs' p99 mostly is on 2 cores.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "2")

function delay()
    return pace
end
