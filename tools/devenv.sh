#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# devenv.sh BINARY CONFIG - the `make run` environment: a private PostgreSQL
# and Redis for development (data under var/dev/ in the checkout, PostgreSQL
# as the postgres user), the role and database the default configuration
# names, then tenantd in the foreground.  Once its config API answers, the
# demo tenant (conf/demo-tenant.ndjson) is imported if it is not there yet,
# and the voice simulator (voicesim beside BINARY) runs in the background
# with generated agents and calls.  Ctrl-C stops the simulator and tenantd,
# then both servers.
set -eu

bin=$1
conf=$2
top=$(cd "$(dirname "$0")/.." && pwd)
dev="$top/var/dev"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pgport=5432
redisport=6379
apiport=8888
obport=5050
demo="$top/conf/demo-tenant.ndjson"
voicesim="$(dirname "$bin")/voicesim"
tenantd_pid=
voicesim_pid=

as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

port_busy() {
	(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop_all() {
	trap - INT TERM EXIT
	for pid in $voicesim_pid $tenantd_pid; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $voicesim_pid $tenantd_pid; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -f "$dev/redis.pid" ]; then
		kill "$(cat "$dev/redis.pid")" 2>/dev/null || true
		rm -f "$dev/redis.pid"
	fi
	if [ -f "$dev/pg/postmaster.pid" ]; then
		as_postgres "$pgbin/pg_ctl" -D "$dev/pg" -m fast -w stop \
		    >/dev/null 2>&1 || true
	fi
	echo "devenv: stopped PostgreSQL and Redis"
}

start_pg() {
	mkdir -p "$dev"
	if [ ! -f "$dev/pg/PG_VERSION" ]; then
		mkdir -p "$dev/pg"
		[ "$(id -u)" -ne 0 ] || chown postgres: "$dev/pg"
		chmod 700 "$dev/pg"
		as_postgres "$pgbin/initdb" -D "$dev/pg" -A trust -U postgres \
		    >"$dev/initdb.log" 2>&1
	fi
	if port_busy $pgport; then
		echo "devenv: port $pgport is taken; stop the other" \
		    "PostgreSQL or edit $conf" >&2
		exit 1
	fi
	as_postgres "$pgbin/pg_ctl" -D "$dev/pg" -l "$dev/pg/server.log" -w \
	    -o "-p $pgport -k $dev/pg -c listen_addresses=127.0.0.1" start \
	    >/dev/null
	psql="$pgbin/psql -h 127.0.0.1 -p $pgport -U postgres -qtA"
	if [ -z "$($psql -c "select 1 from pg_roles where rolname='tenantd'")" ]
	then
		$psql -c "create role tenantd login"
	fi
	if [ -z "$($psql -c "select 1 from pg_database where datname='t100'")" ]
	then
		$psql -c "create database t100 owner tenantd"
	fi
}

start_redis() {
	if port_busy $redisport; then
		echo "devenv: port $redisport is taken; stop the other Redis" \
		    "or edit $conf" >&2
		exit 1
	fi
	redis-server --port $redisport --bind 127.0.0.1 --daemonize yes \
	    --pidfile "$dev/redis.pid" --logfile "$dev/redis.log" \
	    --dir "$dev" >/dev/null
}

# admin_token - the token conf/tenantd.conf names, made once
admin_token() {
	token="$(dirname "$conf")/admin.token"
	if [ ! -s "$token" ]; then
		(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' \
		    > "$token" && echo >> "$token")
	fi
	echo "devenv: admin token (in $token): $(cat "$token")"
}

# api - curl the config API with the admin token; prints the body
api() {
	curl -s -H "Authorization: Bearer $(cat "$token")" "$@"
}

# demo_tenant - import the demo tenant once the config API answers, unless
# its switch is there already
demo_tenant() {
	local i
	for i in $(seq 1 60); do
		if api -o /dev/null -f "http://127.0.0.1:$apiport/v1/switches"; then
			break
		fi
		kill -0 "$tenantd_pid" 2>/dev/null || return 1
		sleep 0.5
	done
	if api "http://127.0.0.1:$apiport/v1/switches?name=demo-switch" |
	    grep -q '"dbid"'; then
		echo "devenv: demo tenant already imported"
		return 0
	fi
	echo "devenv: importing $demo: $(api -H 'Content-Type: application/x-ndjson' \
	    --data-binary "@$demo" "http://127.0.0.1:$apiport/v1/import")"
}

# demo_outbound - 200 records into the demo calling list once the outbound
# port answers (unless it has records), then its campaign group loaded and
# dialling
demo_outbound() {
	local i list group csv
	for i in $(seq 1 60); do
		api -o /dev/null -f "http://127.0.0.1:$obport/healthz" && break
		sleep 0.5
	done
	list=$(api "http://127.0.0.1:$apiport/v1/calling-lists?name=demo-list" |
	    sed -n 's/.*"dbid":\([0-9]*\).*/\1/p' | head -1)
	group=$(api "http://127.0.0.1:$apiport/v1/campaign-groups?name=demo-outbound" |
	    sed -n 's/.*"dbid":\([0-9]*\).*/\1/p' | head -1)
	if [ -z "$list" ] || [ -z "$group" ]; then
		echo "devenv: no demo campaign; nothing dialled" >&2
		return 0
	fi
	for i in $(seq 1 20); do	# the list's table comes a moment later
		api -f "http://127.0.0.1:$obport/v1/calling-lists/$list/records?limit=1" \
		    > /dev/null && break
		sleep 0.5
	done
	if api "http://127.0.0.1:$obport/v1/calling-lists/$list/records?limit=1" |
	    grep -q record_id; then
		echo "devenv: the demo calling list has records already"
	else
		csv=$(printf 'contact_info,customer_id,first_name\n'
		    for i in $(seq 1 200); do
			printf '+3361%07d,CUST%04d,Customer %d\n' "$i" "$i" "$i"
		    done)
		echo "devenv: demo calling list: $(printf '%s\n' "$csv" |
		    api -H 'Content-Type: text/csv' --data-binary @- \
		    "http://127.0.0.1:$obport/v1/calling-lists/$list/records")"
	fi
	for i in $(seq 1 20); do	# its own tables may come a moment later
		api -o /dev/null -f -X POST \
		    "http://127.0.0.1:$obport/v1/campaign-groups/$group/load" &&
		    break
		api "http://127.0.0.1:$obport/v1/campaign-groups/$group" |
		    grep -q '"state":"NotLoaded"' || break
		sleep 0.5
	done
	# Its state outlives tenantd: a group left running dials again.
	if api "http://127.0.0.1:$obport/v1/campaign-groups/$group" |
	    grep -q '"state":"Running"'; then
		echo "devenv: campaign group demo-outbound: running (as it was)"
		return 0
	fi
	echo "devenv: campaign group demo-outbound: $(api -X POST \
	    "http://127.0.0.1:$obport/v1/campaign-groups/$group/start")"
}

# start_voicesim - the voice simulator with generated agents and calls
start_voicesim() {
	if [ ! -x "$voicesim" ]; then
		echo "devenv: $voicesim not built; no simulated calls" >&2
		return 0
	fi
	setsid "$voicesim" -c "$conf" --agents 10 --rate 0.2 \
	    --outbound-mix answer=40,machine=10,busy=20,noanswer=30 \
	    --outbound-ring 2:8 &
	voicesim_pid=$!
	echo "devenv: voicesim running (pid $voicesim_pid): 10 agents," \
	    "0.2 calls/s, and the customers of the demo campaign"
}

trap stop_all INT TERM EXIT
admin_token
start_pg
start_redis
echo "devenv: PostgreSQL on 127.0.0.1:$pgport, Redis on 127.0.0.1:$redisport"
echo "devenv: try: curl -H \"Authorization: Bearer \$(cat $(dirname "$conf")/admin.token)\" http://127.0.0.1:8888/v1/persons"
echo "devenv: running $bin -c $conf (Ctrl-C stops everything)"
# A session of its own: Ctrl-C reaches the script only, which stops each
# process with one SIGTERM (a graceful stop, not a second, fast one).
setsid "$bin" -c "$conf" &
tenantd_pid=$!
if demo_tenant; then
	start_voicesim
	demo_outbound
else
	echo "devenv: the config API did not answer; no demo tenant" >&2
fi
wait "$tenantd_pid" || true
tenantd_pid=""
