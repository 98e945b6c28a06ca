#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Soak: tenantd at a steady realistic load for an hour (--minutes), its
memory, descriptors and latencies sampled, growth reported.

The tenant is the chaos driver's (test/chaos/chaos.py), on loopback and
without faults: every worker; voicesim with 20 agents and inbound calls
(--rate) through routing point 6100 and queue 6000, and the customers of
an agentless campaign that gets new records every minute; desktops on
8000, wallboards on 2060, a config writer creating and deleting DNs and
agent groups (at most 40 at a time) and a reader GETting one object.

Every 10 s: VmRSS (/proc/PID/status) and open descriptors (/proc/PID/fd)
of the master, of each worker, and, for reference, of the PostgreSQL
postmaster (and the sum of its backends) and of redis-server.  Every
minute: p99 of a config GET, of a stats round trip (RequestPeekStatistic),
and of event delivery (a desktop's receive time minus the event's `time`,
set by voicesim when it wrote it).

At the end: growth of RSS and descriptors after the warm-up, the mean of
minutes 10-15 against the mean of the last 5 (for runs shorter than 30
minutes the warm-up is a third of the run and the first window the five
minutes after it), against the goal of 5 %; the p99s of the same two
windows and their ratio.  One RESULT line: the largest RSS growth of a
tenantd process, beside redis-server's.

  /usr/bin/python3 test/bench/soak.py BIN [--minutes 60] [--rate 1.5] [--csv FILE]
"""

import argparse
import collections
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "chaos"))

import benchlib                                          # noqa: E402

GOAL_GROWTH = 5.0       # percent
GOAL_P99 = 1.5          # last window's p99 over the first's ...
GOAL_P99_MS = 5.0       # ... or not more than 5 ms above it (ms-scale noise)


def proc_rss_fds(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    data = f.read()
                if int(data[data.rfind(")") + 2:].split()[1]) == ppid:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def pct(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


class Sampler(threading.Thread):
    """RSS and descriptors of every process every 10 s."""

    def __init__(self, tenant, pg, rd, period=10.0):
        super().__init__(daemon=True)
        self.t, self.pg, self.rd, self.period = tenant, pg, rd, period
        self.rows = []          # (time, name, rss KiB, fds)
        self.halt = threading.Event()
        self.restarts = collections.Counter()
        self.pids = {}

    def pg_pid(self):
        with open(os.path.join(self.pg.data, "postmaster.pid")) as f:
            return int(f.readline())

    def sample(self):
        now = time.time()
        procs = {"master": self.t.d.pid}
        for w, pid in self.t.worker_pids().items():
            procs[w] = pid
            if self.pids.get(w, pid) != pid:
                self.restarts[w] += 1
            self.pids[w] = pid
        procs["redis-server (ref)"] = self.rd.proc.pid
        pm = self.pg_pid()
        procs["postgres postmaster (ref)"] = pm
        for name, pid in procs.items():
            v = proc_rss_fds(pid)
            if v:
                self.rows.append((now, name, v[0], v[1]))
        backends = [proc_rss_fds(p) for p in children(pm)]
        backends = [b for b in backends if b]
        self.rows.append((now, "postgres, all backends (ref)",
                          sum(b[0] for b in backends), sum(b[1] for b in backends)))

    def run(self):
        while not self.halt.is_set():
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 - keep sampling
                print(f"soak: sample: {e!r}", flush=True)
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join(20)


class Reader(threading.Thread):
    """GET /v1/agent-groups/<G1> on the config port, 10 per second."""

    def __init__(self, tenant):
        super().__init__(daemon=True)
        self.t = tenant
        self.lat = []
        self.errors = collections.Counter()
        self.halt = threading.Event()

    def run(self):
        c = self.t.d.api_client(keepalive=True)
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                r = c("GET", f"/v1/agent-groups/{self.t.g1}", timeout=10)
                if r.status == 200:
                    self.lat.append((time.time(), time.monotonic() - t0))
                else:
                    self.errors[r.status] += 1
            except OSError as e:
                self.errors[type(e).__name__] += 1
            self.halt.wait(0.1)

    def stop(self):
        self.halt.set()
        self.join(10)


def windows(minutes):
    """(warm-up end, first window end) in minutes: 10 and 15 for an hour."""
    warm = 10.0 if minutes >= 30 else minutes / 3.0
    return warm, warm + min(5.0, (minutes - warm) / 2.0)


def growth_table(rows, t0, minutes):
    warm, w1 = windows(minutes)
    last0 = minutes - min(5.0, (minutes - warm) / 2.0)
    by = collections.defaultdict(lambda: ([], [], [], []))
    for t, name, rss, fds in rows:
        m = (t - t0) / 60.0
        if warm <= m < w1:
            by[name][0].append(rss)
            by[name][1].append(fds)
        elif m >= last0:
            by[name][2].append(rss)
            by[name][3].append(fds)
    out = []
    for name, (r1, f1, r2, f2) in by.items():
        if not (r1 and r2):
            continue
        a, b = statistics.mean(r1), statistics.mean(r2)
        fa, fb = statistics.mean(f1), statistics.mean(f2)
        out.append((name, a, b, 100.0 * (b - a) / a, fa, fb,
                    100.0 * (fb - fa) / fa if fa else 0.0))
    return out, (warm, w1, last0)


def p99_table(series, t0, minutes):
    warm, w1 = windows(minutes)
    last0 = minutes - min(5.0, (minutes - warm) / 2.0)
    out = []
    for name, lat in series.items():
        per_min = collections.defaultdict(list)
        for t, s in lat:
            if t0 <= t < t0 + minutes * 60:
                per_min[int((t - t0) // 60)].append(s)
        p = {m: pct(v, 99) for m, v in per_min.items()}
        first = [p[m] for m in p if warm <= m < w1]
        last = [p[m] for m in p if m >= last0]
        if not first or not last:
            continue
        a, b = statistics.mean(first), statistics.mean(last)
        out.append((name, a * 1000, b * 1000, b / a if a else float("inf"),
                    [round(p[m] * 1000, 1) for m in sorted(p)]))
    return out


def soak(args):
    import chaos
    from helpers import PgServer, RedisServer, VoiceSim
    from kafkahelp import KafkaMock

    class Pg(chaos.SqlMixin, PgServer):
        pass

    class Rd(chaos.RedisMixin, RedisServer):
        pass

    os.environ["TENANTD_BIN"] = os.path.abspath(args.bin)
    tmp = benchlib.tempdir("tenantd-soak-")
    pg = Pg()
    benchlib.at_cleanup(pg.destroy)
    rd = Rd()
    benchlib.at_cleanup(rd.destroy)
    km = KafkaMock(topic=chaos.TOPIC, partitions=4)
    benchlib.at_cleanup(km.stop)
    t = chaos.Tenant(tmp, pg, rd, km, agents=args.agents)
    benchlib.at_cleanup(lambda: t.d.alive() and t.d.stop(timeout=20))
    t.d.wait_ready(60)
    benchlib.wait_for(lambda: pg.sql("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_name = 'cl_chaos'")[0][0] == 1,
                      60, what="the calling list's table")
    dns = [f"50{i:02d}" for i in range(1, args.agents + 1)] + [chaos.QUEUE, chaos.RP]
    desktops = [chaos.Desktop(t, dns[i::4]) for i in range(4)]
    reset = time.strftime("%H:%M", time.gmtime(time.time() + 12 * 3600))
    wallboards = [chaos.StatsClient(t, i, {"type": "Growing", "reset": [reset]})
                  for i in range(4)]
    for c in desktops + wallboards:
        c.connect()
        c.start()
    writer = chaos.ConfigWriter(t, random.Random(args.seed), cap=40, interval=1.0)
    writer.start()
    reader = Reader(t)
    reader.start()
    sim = VoiceSim(os.environ["VOICESIM_BIN"], t.d.conf_path, tmp, [
        "--agents", str(args.agents), "--rate", str(args.rate), "--to", chaos.RP,
        "--talk", "8", "--wrap", "2", "--break", "10", "--patience", "20",
        "--outbound-mix", "answer=40,busy=35,machine=10,fax=5,sit=10",
        "--outbound-ring", "0.5:2", "--busy-after", "0.3", "--outbound-patience", "10",
        "--seed", str(args.seed)])
    benchlib.at_cleanup(lambda: sim.proc.poll() is None and sim.proc.kill())
    rec = 1
    t.add_records(30, rec)
    rec += 30
    for path in ("load", "start"):
        st, body = t.ob_http("POST", f"/v1/campaign-groups/{t.group}/{path}")
        if st != 200:
            raise benchlib.BenchError(f"campaign {path}: {st} {body}")
    sampler = Sampler(t, pg, rd)
    t0 = time.time()
    sampler.start()
    print(f"soak: {args.minutes} min, {args.agents} agents, {args.rate} calls/s; "
          f"files in {tmp}", flush=True)
    end = t0 + args.minutes * 60
    next_min = t0 + 60
    while time.time() < end:
        time.sleep(min(5, max(0, end - time.time())))
        if sim.proc.poll() is not None:
            raise benchlib.BenchError(f"voicesim exited {sim.proc.returncode}")
        if not t.d.alive():
            raise benchlib.BenchError("tenantd exited\n" + t.d.diagnostics())
        if time.time() >= next_min:
            next_min += 60
            t.add_records(30, rec)
            rec += 30
            m = int((time.time() - t0) // 60)
            last = {r[1]: r for r in sampler.rows[-12:]}
            rss = ", ".join(f"{n.split(' (')[0]} {r[2] // 1024} MiB/{r[3]} fd"
                            for n, r in sorted(last.items()))
            print(f"soak: minute {m}: events {sum(len(d.got) for d in desktops)}, "
                  f"{rss}", flush=True)
    sampler.stop()
    for c in [reader, writer] + desktops + wallboards:
        c.stop()
    sim.stop()
    report(args, t0, sampler, {
        "config GET": reader.lat,
        "stats round trip": [x for w in wallboards for x in w.rtt],
        "event delivery": [x for d in desktops for x in d.lat]},
        reader, writer, wallboards, desktops)
    rc, _, killed = t.d.stop(timeout=20)
    if rc != 0 or killed:
        raise benchlib.BenchError(f"tenantd stopped with {rc} (killed: {killed})")
    return 0


def report(args, t0, sampler, series, reader, writer, wallboards, desktops):
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("time,process,rss_kib,fds\n")
            for r in sampler.rows:
                f.write(f"{r[0] - t0:.1f},{r[1]},{r[2]},{r[3]}\n")
    rows, (warm, w1, last0) = growth_table(sampler.rows, t0, args.minutes)
    print(f"\n== soak: growth, mean of minutes {warm:g}-{w1:g} against minutes "
          f"{last0:g}-{args.minutes:g} (goal: under {GOAL_GROWTH:g} %)")
    print(f"  {'process':<30} {'RSS MiB':>8} {'->':>8} {'growth':>8}   {'fds':>5} "
          f"{'->':>5} {'growth':>7}")
    worst = 0.0
    ref = None
    for name, a, b, g, fa, fb, fg in sorted(rows, key=lambda r: r[0]):
        print(f"  {name:<30} {a / 1024:8.1f} {b / 1024:8.1f} {g:7.1f}%   "
              f"{fa:5.1f} {fb:5.1f} {fg:6.1f}%")
        if "(ref)" not in name:
            worst = max(worst, g, fg)
        elif name.startswith("redis"):
            ref = g
    print(f"  worker restarts during the run: {dict(sampler.restarts) or 'none'}")
    print(f"\n== soak: p99 per minute, ms (mean of the same windows; goal: last "
          f"within {GOAL_P99:g}x of the first, or {GOAL_P99_MS:g} ms above it)")
    flat = True
    for name, a, b, ratio, per_min in p99_table(series, t0, args.minutes):
        ok = ratio <= GOAL_P99 or b - a <= GOAL_P99_MS
        flat &= ok
        print(f"  {name:<18} {a:8.1f} -> {b:8.1f}  x{ratio:.2f}  "
              f"{'flat' if ok else 'NOT FLAT'}")
        print(f"    per minute: {per_min}")
    print(f"\n  config reader errors {dict(reader.errors) or 'none'}; writer "
          f"{dict(writer.status)}; wallboard reconnects "
          f"{sum(w.reconnects for w in wallboards)}; desktop resumes "
          f"{sum(d.resumes for d in desktops)}; events delivered "
          f"{sum(len(d.got) for d in desktops)}")
    ok = worst < GOAL_GROWTH and flat
    benchlib.result_line("soak: largest RSS/fd growth of a tenantd process", "%",
                         f"{worst:.1f}", f"{ref:.1f}" if ref is not None else "-",
                         "-", f"<{GOAL_GROWTH:g}% & p99 flat", ok)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=1.5)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--csv", help="write every sample to this file")
    args = ap.parse_args()
    if args.minutes < 3:
        ap.error("--minutes: at least 3")
    bindir = os.path.dirname(os.path.abspath(args.bin))
    os.environ.setdefault("VOICESIM_BIN", os.path.join(bindir, "voicesim"))
    os.environ.setdefault("KAFKAMOCK_BIN", os.path.join(bindir, "kafkamock"))
    return benchlib.main_wrapper(lambda: soak(args),
                                 time_limit=int(args.minutes * 60) + 600)


if __name__ == "__main__":
    sys.exit(main())
