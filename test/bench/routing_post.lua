-- SPDX-License-Identifier: Apache-2.0
--
-- routing_post.lua - wrk script of the routing worker's POST benchmark
-- (routing_bench.py, 10d): every request is the same
-- POST /v1/interactions with the admin token and the JSON body given,
-- formatted once.
--
--   wrk -t1 -c50 -d5s -s routing_post.lua http://HOST:PORT/v1/interactions \
--       -- TOKEN_FILE BODY

local req

function init(args)
	local f = assert(io.open(args[1]))
	local token = f:read("*l")
	f:close()
	req = wrk.format("POST", nil, {
		["Authorization"] = "Bearer " .. token,
		["Content-Type"] = "application/json",
	}, args[2])
end

function request()
	return req
end
