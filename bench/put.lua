-- PUT new documents (each id used once): durable writes.
local counter = 0
local prefix = string.format("%x", math.random(0, 0xffffff))
math.randomseed(os.time())
prefix = string.format("%x%x", os.time(), math.random(0, 0xffffff))
request = function()
    counter = counter + 1
    return wrk.format("PUT", string.format("/v1/bench/n%s-%d", prefix, counter),
                      {["Content-Type"] = "application/json"},
                      string.format('{"n":%d,"text":"a new document"}', counter))
end
