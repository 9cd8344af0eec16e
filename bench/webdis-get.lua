-- GET of 1,000 hot keys through webdis (comparison only; bench/run --compare).
math.randomseed(os.time())
request = function() return wrk.format("GET", string.format("/GET/hot%04d", math.random(0, 999))) end
