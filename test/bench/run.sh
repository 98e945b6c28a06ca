#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh /abs/path/to/tenantd - run every tenantd benchmark beside its
# reference, measured in the same run, and print the ratios.
#
#   1. /metrics scrape throughput, ~1,000 series     vs nginx 1.22 (same bytes)
#   2. kill -9 of a worker -> /readyz 200 again      vs nginx 1.22 worker respawn
#   3. config worker: GET, PATCH, change propagation vs nginx, pgbench, Redis pub/sub
#   4. events worker: fan-out to 50 clients, latency, memory per client
#                                                    vs redis-server pub/sub fan-out
#   5. stats worker: events/s with 10,000 agents and 50,000 statistics,
#      latency to EventInfo, memory per statistic     vs a plain stream reader
#   6. outbound outbox relay: 200,000 reports from ocs_outbox to Kafka (mock)
#                                                    vs kcat -P (librdkafka)
#   7. outbound import: 1,000,000 records (CSV) through port 5050 into a
#      calling list                                  vs psql \copy of the same file
#   8. outbound dialler: records leased, dialled and finished per second, an
#      agentless group against voicesim answering at once
#                                                    vs pgbench running the same
#                                                       lease and outcome statements
#  10. routing worker, 10,000 agents with skills, 1,000 interactions waiting:
#      agent free -> reservation p99; routed/s       vs the same Redis work
#                                                       (pathref; the worker's
#                                                       scripts, pipelined)
#      two instances, no agent reserved twice; POST /v1/interactions/s
#                                                    vs nginx 1.22 (same bytes)
#   9. predictive vs progressive dialling, 2 x 50 agents, paced, about 10
#      minutes (BENCH_PREDICTIVE_MINUTES): abandoned per live answer and busy
#      factor, from the voice events                 vs the progressive group
#  11. soak: one hour (BENCH_SOAK_MINUTES; 0 skips it) at a steady load,
#      RSS and descriptors of every process, p99s per minute
#                                                    vs redis-server, PostgreSQL
#  12. the long chaos run: 30 minutes of faults (BENCH_CHAOS_MINUTES; 0
#      skips it), then the invariants (test/chaos/chaos.py, needs root)
#
# `make bench` installs what is missing (tools/deps.sh bench), builds, and
# runs this.  Loopback only, free ports, temporary directories; the server
# under test on core 0, the load generator on core 1.  Everything started is
# stopped on exit, Ctrl-C or TERM.  Each benchmark has its own time limit;
# the whole run takes about 10 minutes.  test/bench/README.md explains the
# figures.
#
# Exit status: 1 when a benchmark could not run (missing tool, reference
# not serving the same bytes, a server that died, a time limit); a missed
# goal is reported but exits 0 unless BENCH_STRICT=1.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3

if [ $# -ne 1 ]; then
	echo "usage: $0 /abs/path/to/tenantd" >&2
	exit 2
fi
bin=$1
case "$bin" in
/*) ;;
*) bin=$(pwd)/$bin ;;
esac
if [ ! -x "$bin" ]; then
	echo "bench: $bin is not an executable (run make first)" >&2
	exit 2
fi

missing=""
for t in "$py" wrk taskset cc kcat /usr/sbin/nginx redis-server runuser \
	/usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "bench: missing:$missing (tools/deps.sh bench installs them)" >&2
	exit 2
fi
if [ "$(nproc --all)" -lt 2 ]; then
	echo "bench: needs 2 cores (server on core 0, load generator on core 1)" >&2
	exit 2
fi

tmp=$(mktemp -d -t tenantd-bench.XXXXXX)
child=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'echo "bench: terminated" >&2; exit 143' TERM HUP

export BENCH_RESULTS=$tmp/results
: >"$BENCH_RESULTS"

echo "tenantd benchmarks - $(date -u '+%Y-%m-%d %H:%M UTC') - $(uname -srm)"
echo "binary: $bin ($("$bin" -V 2>/dev/null || echo "version unknown" ))"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc --all) cores;" \
	"nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
echo

failed=""
run() {
	local name=$1
	shift
	# In the background, so that a trapped signal interrupts `wait` and
	# is passed on; the Python side stops everything it started.
	"$py" "$@" &
	child=$!
	wait "$child"
	local rc=$?
	child=""
	[ $rc -eq 0 ] || failed="$failed $name"
	echo
}

run metrics_scrape "$here/metrics_scrape.py" "$bin"
run restart "$here/restart.py" "$bin"
run config_bench "$here/config_bench.py" "$bin"
run events_bench "$here/events_bench.py" "$bin"
run stats_bench "$here/stats_bench.py" "$bin"
run outbox_bench "$here/outbox_bench.py" "$bin"
run import_bench "$here/import_bench.py" "$bin"
run dialler_bench "$here/dialler_bench.py" "$bin"
run routing_bench "$here/routing_bench.py" "$bin"
run predictive_bench "$here/predictive_bench.py" "$bin" \
	--minutes "${BENCH_PREDICTIVE_MINUTES:-10}"
if [ "${BENCH_SOAK_MINUTES:-60}" != 0 ]; then
	run soak "$here/soak.py" "$bin" --minutes "${BENCH_SOAK_MINUTES:-60}"
fi
if [ "${BENCH_CHAOS_MINUTES:-30}" != 0 ]; then
	export TENANTD_BIN=$bin VOICESIM_BIN=${bin%/*}/voicesim \
		KAFKAMOCK_BIN=${bin%/*}/kafkamock
	run chaos "$here/../chaos/chaos.py" --minutes "${BENCH_CHAOS_MINUTES:-30}"
fi

echo "== summary (tenantd beside its reference, both measured in this run; medians)"
missed=0
"$py" - "$BENCH_RESULTS" <<'PY' || missed=1
import sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
hdr = ("benchmark", "tenantd", "reference", "ratio", "goal", "")
w = [max([len(hdr[0])] + [len(r[0]) for r in rows]), 10, 10, 6, 9, 6]
fmt = "  {:<%d}  {:>%d}  {:>%d}  {:>%d}  {:<%d}  {}" % tuple(w[:5])
print(fmt.format(*hdr))
for name, unit, t, ref, ratio, goal, ok in rows:
    print(fmt.format(name, f"{t}", f"{ref}", ratio, goal, ok))
sys.exit(1 if any(r[6] != "met" for r in rows) else 0)
PY
echo "(run.sh took ${SECONDS}s)"
if [ -n "$failed" ]; then
	echo "bench: FAILED to run:$failed" >&2
	exit 1
fi
if [ $missed -ne 0 ]; then
	echo "bench: a goal was missed (see above)"
	[ "${BENCH_STRICT:-0}" = 1 ] && exit 1
fi
exit 0
