-- GET /api/v1/contacts/{id}, a random id of one organization per request. The ids are read
-- from the file named by the environment variable CRM_LOAD_IDS (one per line).
local ids = {}
for line in io.lines(os.getenv("CRM_LOAD_IDS")) do
  ids[#ids + 1] = line
end
local prefix = "/api/v1/contacts/"

-- Each wrk thread has its own Lua state: give each its own random sequence.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 100 + (tid or 0))
end

request = function()
  return wrk.format("GET", prefix .. ids[math.random(#ids)])
end
