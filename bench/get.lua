-- GET one of 1,000 hot documents, chosen at random.
math.randomseed(os.time())
request = function()
    return wrk.format("GET", string.format("/v1/bench/hot%04d", math.random(0, 999)))
end
