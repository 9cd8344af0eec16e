-- GET /v1/bench/zNNNNNN with NNNNNN Zipf-distributed over ZIPF_N documents
-- (rank k drawn with probability proportional to 1 / k^ZIPF_S; defaults
-- 100000 and 0.99). The draws are made once, in init, so that the request
-- loop costs what get.lua's does.
local n = tonumber(os.getenv("ZIPF_N") or "100000")
local s = tonumber(os.getenv("ZIPF_S") or "0.99")
local draws = 65536
local requests = {}
local next_request = 0

init = function(args)
    local cdf = {}
    local sum = 0
    for k = 1, n do
        sum = sum + 1 / k ^ s
        cdf[k] = sum
    end
    math.randomseed(os.time())
    for i = 1, draws do
        local u = math.random() * sum
        local lo, hi = 1, n
        while lo < hi do
            local mid = math.floor((lo + hi) / 2)
            if cdf[mid] < u then lo = mid + 1 else hi = mid end
        end
        requests[i] = wrk.format("GET", string.format("/v1/bench/z%06d", lo - 1))
    end
end

request = function()
    next_request = next_request % draws + 1
    return requests[next_request]
end
