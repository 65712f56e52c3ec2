-- wrk script for benches/soak/run.sh: one kind of request per wrk process, paced.
--   WRK_METHOD  GET or POST (default GET)
--   WRK_AUTH    the Authorization header's value (none: an unauthenticated request, a challenge)
--   WRK_PACE_MS milliseconds a connection waits after a response before its next request
local method = os.getenv("WRK_METHOD") or "GET"
local auth = os.getenv("WRK_AUTH") or ""
local pace = tonumber(os.getenv("WRK_PACE_MS") or "0")

wrk.method = method
if method == "POST" then
    wrk.body = "x"
end
if auth ~= "" then
    wrk.headers["Authorization"] = auth
end

function delay()
    return pace
end
