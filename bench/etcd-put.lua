-- Durable puts of new keys into etcd over its HTTP/JSON gateway (comparison only).
local counter = 0
local b64 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
local function enc(data)
    return ((data:gsub('.', function(x)
        local r,b='',x:byte()
        for i=8,1,-1 do r=r..(b%2^i-b%2^(i-1)>0 and '1' or '0') end
        return r;
    end)..'0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
        if (#x < 6) then return '' end
        local c=0
        for i=1,6 do c=c+(x:sub(i,i)=='1' and 2^(6-i) or 0) end
        return b64:sub(c+1,c+1)
    end)..({ '', '==', '=' })[#data%3+1])
end
math.randomseed(os.time())
local prefix = string.format("%x", math.random(0, 0xffffff))
request = function()
    counter = counter + 1
    local body = string.format('{"key":"%s","value":"%s"}', enc("n" .. prefix .. counter), enc('{"n":1,"text":"a new document"}'))
    return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
