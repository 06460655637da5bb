-- POST /api/v1/contacts: one new contact per request.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"first_name":"Load","last_name":"Test %d","email":"load.%d.%d@example.test"}', n, n, math.random(1, 1000000000))
  return wrk.format(nil, nil, nil, body)
end
