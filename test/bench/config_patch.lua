-- SPDX-License-Identifier: Apache-2.0
--
-- config_patch.lua - wrk script of the config worker's PATCH benchmark
-- (config_bench.py).  Every request is a JSON merge patch of one Person,
-- cycling over the dbids listed in a file, with a new firstName each time
-- ({"firstName": "x<n>"}) and no If-Match.  With -t1 there is one Lua state,
-- so consecutive requests go to consecutive dbids: with more dbids than
-- connections, no two PATCHes of one person are ever in flight together
-- (the second would get 409 VersionMismatch).
--
--   wrk -t1 -c50 -d5s -s config_patch.lua http://HOST:PORT -- TOKEN_FILE IDS_FILE

local ids, n, i, seq = {}, 0, 0, 0
local headers

function init(args)
	local f = assert(io.open(args[1]))
	local token = f:read("*l")
	f:close()
	for line in io.lines(args[2]) do
		n = n + 1
		ids[n] = "/v1/persons/" .. line
	end
	assert(n > 0, "no dbids in " .. args[2])
	headers = {
		["Authorization"] = "Bearer " .. token,
		["Content-Type"] = "application/json",
	}
end

function request()
	i = i % n + 1
	seq = seq + 1
	return wrk.format("PATCH", ids[i], headers,
	    '{"firstName": "x' .. seq .. '"}')
end
