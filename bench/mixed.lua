-- 90% GET of the hot documents, 10% PUT over them.
math.randomseed(os.time())
request = function()
    local id = string.format("/v1/bench/hot%04d", math.random(0, 999))
    if math.random(1, 10) == 1 then
        return wrk.format("PUT", id, {["Content-Type"] = "application/json"},
                          '{"name":"hot","n":2}')
    end
    return wrk.format("GET", id)
end
