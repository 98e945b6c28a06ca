#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark 2: kill-to-ready time of a worker.

tenantd runs against a real PostgreSQL 15 and a real redis-server (so that
/readyz can answer 200).  Each sample: read the metrics worker's pid from
/tenant/health, SIGKILL it, then poll the metrics port every 1 ms, each poll
on a fresh TCP connection, until GET /readyz answers 200.  The sample is the
time from kill(2) to that answer; the first answer of any status from the
new worker is recorded too, and the master's log line
`worker metrics ready (pid N, X ms after start)` gives the fork-to-ready
part.  After every sample /tenant/health must show a new pid in state ready.

The master restarts a worker that dies after it was ready at once only the
first time; a second death within 10 s of the worker's start is restarted
after a capped exponential backoff (crash-loop protection, by design).  To
measure the immediate restart 30 times in well under a minute the samples
rotate over --instances independent tenantd instances, and an instance's
worker is killed only once it has been up for more than 10.5 s; the master
log is checked to say `restarting in 0.000s` for every sample.

Reference: nginx 1.22 with `master_process on; worker_processes 1;`: kill
-9 its worker and poll the same way until `return 200` answers again.

Rounds alternate reference and tenantd.  Servers on core 0; this poller,
PostgreSQL and Redis on core 1.

usage: restart.py TENANTD_BINARY [--kills 30] [--rounds 3] [--instances 10]
"""

import argparse
import datetime
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

STABLE_S = 10.5         # > STABLE_US of supervisor/master.c (10 s)
POLL_S = 0.001
SAMPLE_TIMEOUT_S = 10.0


def dead(pid):
    """True once pid is a zombie or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return True
    return data[data.rfind(b")") + 2:].split()[0] in (b"Z", b"X")


def status_of(port, path):
    """HTTP status of GET path on a fresh connection, or None."""
    try:
        st, _, _ = B.http_get(port, path, timeout=1.0)
        return st
    except (OSError, socket.timeout, ConnectionError, Exception):  # noqa: BLE001
        return None


def kill_and_wait(pid, port, path):
    """SIGKILL pid, poll path until 200.  Returns (first answer ms, 200 ms,
    polls, wall-clock time of the kill)."""
    wall = time.time()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    # Not timed apart: make sure no poll can reach the dying process.
    while not dead(pid):
        pass
    first, polls = None, 0
    while True:
        st = status_of(port, path)
        now = time.monotonic()
        polls += 1
        if st is not None and first is None:
            first = (now - t0) * 1e3
        if st == 200:
            return first, (now - t0) * 1e3, polls, wall
        if now - t0 > SAMPLE_TIMEOUT_S:
            raise B.BenchError(f"port {port} {path}: no 200 within "
                               f"{SAMPLE_TIMEOUT_S}s after killing pid {pid} "
                               f"(last status {st})")
        time.sleep(POLL_S)


# ------------------------------------------------------------ tenantd

_TS = re.compile(r"^ts=(\S+) ")


def log_ts(line):
    m = _TS.match(line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def master_lines(t, old_pid, new_pid):
    """(restart delay s, fork-to-ready ms, wall time of the fork) from the
    master's log, waiting briefly for the lines to be written."""
    re_restart = re.compile(r'msg="worker metrics killed by signal 9; restarting '
                            r'in ([\d.]+)s"')
    re_started = re.compile(rf'msg="started worker metrics \(pid {new_pid}\)"')
    re_ready = re.compile(rf'msg="worker metrics ready \(pid {new_pid}, '
                          r'([\d.]+) ms after start\)"')

    def find():
        delay = ready = started = None
        for line in t.log_text().splitlines():
            if f"role=master pid={t.master_pid} " not in line:
                continue
            m = re_restart.search(line)
            if m:
                delay = float(m.group(1))       # the last one wins
            if re_started.search(line):
                started = log_ts(line)
            m = re_ready.search(line)
            if m:
                ready = float(m.group(1))
        return (delay, ready, started) if None not in (delay, ready, started) else None
    return B.wait_for(find, 3, interval=0.01,
                      what=f"master log lines for worker pid {new_pid}")


def tenantd_sample(t):
    # Kill only a worker that has been stable: otherwise the master's
    # crash backoff, not the restart path, would be measured.
    h = t.health()
    up = h["workers"]["metrics"]["uptime_seconds"]
    if up < STABLE_S:
        time.sleep(STABLE_S - up)
    B.wait_for(lambda: status_of(t.port, "/readyz") == 200, 10,
               what=f"tenantd on {t.port} ready before the kill")
    old = t.worker_pid()
    first, ready, polls, wall = kill_and_wait(old, t.port, "/readyz")
    h = t.health()
    w = h["workers"]["metrics"]
    if w["pid"] == old or w["state"] != "ready":
        raise B.BenchError(f"after /readyz 200, /tenant/health shows {w}")
    delay, fork_ready, started = master_lines(t, old, w["pid"])
    if delay != 0:
        raise B.BenchError(f"the master delayed the restart by {delay}s "
                           "(crash backoff): the sample would not measure the "
                           "restart path")
    return {"first": first, "ready": ready, "polls": polls,
            "fork_ready": fork_ready, "kill_fork": (started - wall) * 1e3}


# ------------------------------------------------------------ nginx

def start_nginx_reference():
    block = """  server {
    listen 127.0.0.1:@PORT@ backlog=511;
    default_type text/plain;
    location / {
      return 200 "ok\\n";
    }
  }
"""
    prefix, conf, port = B.nginx_prefix(block, master_process=True, workers=1)
    p = B.start_nginx(prefix, conf, port)
    B.wait_for(lambda: len(B.children_of(p.pid)) == 1, 10,
               what="one nginx worker")
    return p, port


def nginx_sample(p, port):
    B.wait_for(lambda: len(B.children_of(p.pid)) == 1 and
               status_of(port, "/") == 200, 10, what="nginx ready before the kill")
    (old,) = B.children_of(p.pid)
    first, ready, polls, _ = kill_and_wait(old, port, "/")
    kids = B.children_of(p.pid)
    if len(kids) != 1 or kids[0] == old:
        raise B.BenchError(f"nginx workers after the kill: {kids} (old {old})")
    return {"first": first, "ready": ready, "polls": polls}


# ------------------------------------------------------------ report

def summary(xs):
    return (f"median {B.median(xs):7.1f}  p90 {B.percentile(xs, 90):7.1f}  "
            f"max {max(xs):7.1f}  min {min(xs):7.1f} ms")


def run(args):
    B.pin_self(B.LOADGEN_CPU)
    print(f"== 2. kill-to-ready time of a worker ({args.kills} kill -9 each, "
          f"{args.rounds} rounds alternating nginx and tenantd; 1 ms polls on "
          "fresh connections)", flush=True)
    pg = B.PgServer()
    redis = B.RedisServer()
    print(f"   PostgreSQL 15 on port {pg.port}, redis-server on port "
          f"{redis.port} (both on core {B.LOADGEN_CPU})", flush=True)
    insts = [B.Tenantd(args.binary, pg.conninfo, redis.port,
                       name=f"tenantd #{i}") for i in range(args.instances)]
    for t in insts:
        B.wait_for(lambda t=t: status_of(t.port, "/readyz") == 200, 15,
                   what=f"tenantd on port {t.port} /readyz 200 (PostgreSQL and "
                   "Redis reachable)")
        for pid in (t.master_pid, t.worker_pid()):
            if B.affinity(pid) != {B.SERVER_CPU}:
                raise B.BenchError(f"pid {pid} is not pinned to core {B.SERVER_CPU}")
    print(f"   tenantd: {args.instances} instances (metrics worker only), each "
          f"killed only after > {STABLE_S}s up; sample = kill -> GET /readyz 200",
          flush=True)
    ng, nport = start_nginx_reference()
    print("   nginx: master_process on, worker_processes 1; sample = kill -> "
          "GET / 200", flush=True)

    per_round = [args.kills // args.rounds + (1 if r < args.kills % args.rounds else 0)
                 for r in range(args.rounds)]
    res = {"nginx": [], "tenantd": []}
    rmed = {"nginx": [], "tenantd": []}
    k = 0
    print(f"   {'round':<6}{'kills':>6}{'nginx median ms':>17}{'tenantd median ms':>19}",
          flush=True)
    for r, n in enumerate(per_round, 1):
        ns = [nginx_sample(ng, nport) for _ in range(n)]
        ts = []
        for _ in range(n):
            ts.append(tenantd_sample(insts[k % len(insts)]))
            k += 1
        res["nginx"] += ns
        res["tenantd"] += ts
        rmed["nginx"].append(B.median([s["ready"] for s in ns]))
        rmed["tenantd"].append(B.median([s["ready"] for s in ts]))
        print(f"   {r:<6}{n:>6}{rmed['nginx'][-1]:>17.1f}{rmed['tenantd'][-1]:>19.1f}",
              flush=True)

    tn = [s["ready"] for s in res["nginx"]]
    tt = [s["ready"] for s in res["tenantd"]]
    print(f"   nginx    kill -> 200:            {summary(tn)}", flush=True)
    print(f"   tenantd  kill -> /readyz 200:    {summary(tt)}", flush=True)
    print(f"   tenantd  kill -> first answer:   "
          f"{summary([s['first'] for s in res['tenantd']])}", flush=True)
    print(f"   tenantd  kill -> fork (log, +-1 ms): "
          f"{summary([s['kill_fork'] for s in res['tenantd']])}", flush=True)
    print(f"   tenantd  fork -> ready (master log): "
          f"{summary([s['fork_ready'] for s in res['tenantd']])}", flush=True)
    print(f"   polls per sample: nginx median "
          f"{B.median([s['polls'] for s in res['nginx']]):.0f}, tenantd median "
          f"{B.median([s['polls'] for s in res['tenantd']]):.0f}", flush=True)
    print(f"   round medians: nginx min {min(rmed['nginx']):.1f} max "
          f"{max(rmed['nginx']):.1f}; tenantd min {min(rmed['tenantd']):.1f} max "
          f"{max(rmed['tenantd']):.1f} ms", flush=True)
    mt, mn = B.median(tt), B.median(tn)
    ok = mt < 100
    print(f"   ratio tenantd/nginx (medians, lower is better): {mt / mn:.2f}   "
          f"goal tenantd median < 100 ms: {'met' if ok else 'MISSED'}", flush=True)
    B.result_line("worker kill -> ready (ms, lower is better)", "ms",
                  f"{mt:.1f}", f"{mn:.1f}", f"{mt / mn:.2f}", "< 100 ms", ok)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--time-limit", type=int, default=150,
                    help="seconds before it gives up (and cleans up)")
    args = ap.parse_args()
    return B.main_wrapper(lambda: run(args), time_limit=args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
