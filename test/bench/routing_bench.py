#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark 10: the routing worker (workers/routing/, port 5580), each
figure beside a reference measured in the same run.

    routing_bench.py BIN [--rounds 3] [--agents 10000] [--waiting 1000]
        [--duration 5] [--warmup 3] [--rate 500] [--routings 100000]
        [--only latency,throughput,check,http] [--perf]

Set-up: one POST /v1/import of NDJSON makes a switch, 8 skills S0..S7,
--agents agents (an Extension DN 100000+i, an AgentLogin 200000+i, a Place,
a Person with 4 of the 8 skills at levels 1-10) and the virtual queues.
The bench plays the voice side itself (no voicesim): it writes the agents'
states to voice:state and their EventAgentLogin/Ready/NotReady to
voice:events (MULTI, HSET, XADD, EXEC, as docs/voice-redis.md says) and
keeps voice:heartbeat set.  Interactions target "S<k> >= <1..3>" (one in
four MostSkilled): a free agent fits about 45 % of them.  tenantd (master
and workers) runs on core 0; PostgreSQL, Redis and the load generator
(routing_load.c, built here with cc) on core 1; the references on core 0.

 10a. latency, agent free -> reservation (goal: p99 <= 5 ms).  Every agent
      NotReady, --waiting interactions waiting; then --rate agents a second
      go Ready (EventAgentReady XADDed to voice:events).  Measured on one
      clock, the client's: from just before the XADD is written to the
      `reserved` event for that agent being read from GET /v1/events.
      Also printed: the same on Redis's clock (the reservation's position
      minus the Ready event's stream id, both ms), and the feed's share
      (read time minus the position).  Reference: routing_load pathref
      doing the Redis work of that path back to back (XADD; XREAD of it;
      EVALSHA of the worker's reserve script; XREAD of the reservation
      event), at the same rate.
 10b. routed/s with --agents agents and --waiting interactions waiting
      (goal: >= 0.5 of the reference).  Every agent Ready; the client
      queues agents + waiting interactions, accepts each one whose
      `reserved` event it reads on the feed, completes it once accepted,
      and queues a new one for each completed: the agents stay busy and
      --waiting interactions wait (the client sends new interactions first
      while fewer than --waiting wait in tenantd, else accepts and
      completes first).  Routed = completed answered 200 within the window
      (--duration s, from --warmup s after the first agents + waiting
      interactions are all queued).  Reference:
      routing_load ref, one hiredis connection running per routing the
      worker's own four scripts (the Lua text read from store.c at run
      time and checked against the SHAs tenantd loaded) with tenantd's
      arguments: queue (no agent free), reserve (SET NX PX of the agent's
      key, HSET, XADD), accept (PEXPIRE, HSET, HINCRBY, XADD), end
      "completed" (DEL of the key, HSET, ZREM, XADD, EXPIRE); 64 routings
      in flight pipelined in lock step, --waiting waiting, over --agents
      agent keys, on its own keys (another tenant id) of the same Redis.
      It does not read the event stream back; every tenantd instance does.
 10c. correctness: a second tenantd (routing worker only) on the same
      PostgreSQL and Redis; the client queues --routings interactions
      spread over both and accepts and completes through whichever
      instance's feed told it first, with every agent Ready and --waiting
      waiting: both instances race for every agent freed.  routing_load
      check follows tenantd:{t}:routing:events with XREAD (the stream is
      trimmed near 100,000 entries, so it is read while it grows) and
      counts agents reserved, or accepted, while another interaction still
      held them (a reservation holds until its `until` or its release; an
      accepted one until completed).  Goal: none.
 10d. POST /v1/interactions/s (goal: >= 0.3 of nginx): wrk -t1 -c50 with
      routing_post.lua into an empty virtual queue (a new one each round),
      every agent NotReady so that each one waits; nginx answers the same
      bytes (one answer of tenantd, checked byte for byte) to the same
      POSTs.

BENCH_KEEP_LOGS=DIR keeps the tenantd logs, and 10c's routing events (the
stream's last ~100,000), in DIR.

usage: routing_bench.py TENANTD_BINARY [options]
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from config_bench import (JSON_CTYPE, pids_cpu_s, postmaster_pid,  # noqa: E402
                          wrk as wrk_run)
from dialler_bench import Redis  # noqa: E402
from metrics_scrape import nginx_escape  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DN_BASE = 100000
LOGIN_BASE = 200000
NSKILLS = 8
VQ = "8001"
VQ_HTTP = 8100          # 8100: the sample answer; 8101..: one per wrk round
REF_TENANT = "0b0e4a1c-7d2f-4e35-9a61-3c8d5b7f2e90"   # the references' keys
THROUGHPUT_GOAL = 0.5
LATENCY_GOAL_MS = 5.0
HTTP_GOAL = 0.3
POST_LUA = os.path.join(HERE, "routing_post.lua")


def key(name, tenant=B.TENANT_ID):
    return f"tenantd:{{{tenant}}}:{name}"


# ------------------------------------------------------------ programs

def build(tmp):
    exe = os.path.join(tmp, "routing_load")
    r = subprocess.run(["cc", "-O2", "-Wall", "-o", exe,
                        os.path.join(HERE, "routing_load.c"), "-lhiredis"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise B.BenchError("cannot build routing_load:\n"
                           + r.stdout.decode(errors="replace"))
    return exe


def parse_kv(text):
    out = {}
    for ln in text.splitlines():
        k, sep, v = ln.partition("=")
        if sep:
            try:
                out[k] = float(v) if "." in v else int(v)
            except ValueError:
                out[k] = v
    return out


def sched(pid):
    """(CPU s, s spent runnable but waiting for a CPU) of pid's main
    thread (/proc/PID/schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run, wait, _ = f.read().split()
        return int(run) / 1e9, int(wait) / 1e9
    except OSError:
        return 0.0, 0.0


def cores():
    """(busy, total) jiffies of each core so far (/proc/stat)."""
    out = {}
    with open("/proc/stat") as f:
        for ln in f:
            m = re.match(r"cpu(\d+) (.*)", ln)
            if m:
                v = [int(x) for x in m.group(2).split()]
                out[int(m.group(1))] = (sum(v) - v[3] - v[4], sum(v))
    return out


def run_load(exe, program, kv, cpu, timeout, pids=(), stdin=None):
    """routing_load PROGRAM k=v... pinned to cpu; (results, wall s, its
    CPU s, {pid: CPU s of pids meanwhile}).  When it prints mark=start and
    mark=end, results["_win"] has the window's wall time and, for pids and
    routing_load itself, CPU and run-queue wait s (schedstat)."""
    argv = ["taskset", "-c", str(cpu), exe, program] + [
        f"{k}={v}" for k, v in kv.items()]
    c0 = {p: B.proc_cpu_s(p) for p in pids}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    errf = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf,
                         stdin=stdin if stdin is not None else subprocess.DEVNULL,
                         preexec_fn=B._child_setup)
    B.at_cleanup(lambda: B.stop_proc(p, f"routing_load {program}"))
    lines, marks = [], {}
    deadline = time.monotonic() + timeout
    for raw in p.stdout:
        ln = raw.decode(errors="replace")
        if ln.startswith("mark="):
            marks[ln.strip()[5:]] = (time.monotonic(), {
                q: sched(q) for q in list(pids) + [p.pid]}, cores())
        else:
            lines.append(ln)
        if time.monotonic() > deadline:
            break
    try:
        p.wait(max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        errf.seek(0)
        raise B.BenchError(f"routing_load {program} did not finish in {timeout} s:\n"
                           + errf.read().decode(errors="replace")[-2000:])
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    used = {q: B.proc_cpu_s(q) - c for q, c in c0.items()}
    errf.seek(0)
    err = errf.read().decode(errors="replace").strip()
    out = "".join(lines)
    if p.returncode != 0:
        raise B.BenchError(f"routing_load {program} failed ({p.returncode}):\n"
                           + err[-3000:] + out[-2000:])
    if err:
        print("   routing_load: " + err.replace("\n", "\n   routing_load: "))
    res = parse_kv(out)
    if "start" in marks and "end" in marks:
        (ts, s0, k0), (te, s1, k1) = marks["start"], marks["end"]
        res["_win"] = {"wall": te - ts, "load": p.pid,
                       "core": {c: (k1[c][0] - k0[c][0]) / max(1, k1[c][1] - k0[c][1])
                                for c in k0},
                       "cpu": {q: s1[q][0] - s0[q][0] for q in s0},
                       "wait": {q: s1[q][1] - s0[q][1] for q in s0}}
    return res, wall, cpu_s, used


# ------------------------------------------------------------ tenantd

class RtTenantd:
    """tenantd with the metrics and routing workers, and the config worker
    when config is true; every process on core 0."""

    def __init__(self, binary, pg, redis_port, token_file, config=True,
                 name="tenantd"):
        self.dir = B.tempdir("tenantd-bench-rt-")
        self.port = B.free_port()
        self.api = B.free_port() if config else None
        self.rt = B.free_port()
        text = B.tenantd_conf(self.dir, self.port, pg.conninfo, redis_port)
        n1 = 1
        if config:
            text, n1 = re.subn(r'config = \{ enabled = false; listen = "[^"]*"; \};',
                               f'config = {{ listen = "127.0.0.1:{self.api}"; }};',
                               text)
        text, n2 = re.subn(r'routing = \{ enabled = false; listen = "[^"]*"; \};',
                           f'routing = {{ listen = "127.0.0.1:{self.rt}"; '
                           'reservation_ttl = 300.0; };', text)
        if n1 != 1 or n2 != 1:
            raise B.BenchError("benchlib.tenantd_conf changed: cannot enable "
                               "the config and routing workers in it")
        text += f'security = {{\n  admin_token_file = "{token_file}";\n}};\n'
        self.conf = os.path.join(self.dir, "tenantd.conf")
        B.write_conf(binary, self.conf, text)
        self.log = os.path.join(self.dir, "tenantd.log")
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        B.at_cleanup(self.stderr.close)
        if os.environ.get("BENCH_KEEP_LOGS"):
            keep = os.path.join(os.environ["BENCH_KEEP_LOGS"],
                                name.replace(" ", "-") + ".log")
            B.at_cleanup(lambda: shutil.copy(self.log, keep))
        self.proc = B.spawn([binary, "-c", self.conf], stderr=self.stderr,
                            name=name)
        self.master_pid = self.proc.pid
        want = ("metrics", "routing") + (("config",) if config else ())
        B.wait_for(lambda: self._ready(want), 60, interval=0.2,
                   what=f"{name}: workers ready")

    def _ready(self, want):
        self.alive()
        w = self.health()["workers"]
        return all(w.get(k, {}).get("state") == "ready" for k in want)

    def alive(self):
        if self.proc.poll() is not None:
            raise B.BenchError(f"tenantd exited with {self.proc.returncode}:\n"
                               + self.log_tail())

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def health(self):
        st, _, body = B.http_get(self.port, "/tenant/health", timeout=5)
        if st != 200:
            raise B.BenchError(f"/tenant/health answered {st}")
        return json.loads(body)

    def routing_pid(self):
        return int(self.health()["workers"]["routing"]["pid"])

    def pids(self):
        return [self.master_pid] + B.children_of(self.master_pid)


def call(port, token, method, path, body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = JSON_CTYPE
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, raw


def vq_figures(port, token, vq=VQ):
    st, _, raw = call(port, token, "GET", f"/v1/virtual-queues/{vq}")
    if st != 200:
        raise B.BenchError(f"GET /v1/virtual-queues/{vq}: {st} {raw[:200]!r}")
    return json.loads(raw)


def skills_of(i):
    """Person i's 4 skills of 8, with levels 1..10 (the same every run)."""
    rnd = random.Random(i)
    return [(s, rnd.randint(1, 10)) for s in rnd.sample(range(NSKILLS), 4)]


def import_tenant(api_port, token, n, rounds):
    """One NDJSON import: switch, skills, n agents, the virtual queues."""
    lines = [{"type": "Switch", "object": {"dbid": -1, "name": "sw1", "type": "SIP"}}]
    for s in range(NSKILLS):
        lines.append({"type": "Skill", "object": {"dbid": -(2 + s), "name": f"S{s}"}})
    ph = 2 + NSKILLS
    for i in range(n):
        dn, login, place, person = ph, ph + 1, ph + 2, ph + 3
        ph += 4
        lines.append({"type": "DN", "object": {"dbid": -dn, "number": str(DN_BASE + i),
                                                "type": "Extension", "switch": -1}})
        lines.append({"type": "AgentLogin", "object": {
            "dbid": -login, "loginCode": str(LOGIN_BASE + i), "switch": -1}})
        lines.append({"type": "Place", "object": {"dbid": -place, "name": f"P{i}",
                                                   "dns": [-dn]}})
        lines.append({"type": "Person", "object": {
            "dbid": -person, "userName": f"agent{i}", "isAgent": True,
            "place": -place, "agentLogins": [{"agentLogin": -login}],
            "skills": [{"skill": -(2 + s), "level": lv} for s, lv in skills_of(i)]}})
    for number in [VQ] + [str(VQ_HTTP + r) for r in range(rounds + 1)]:
        lines.append({"type": "DN", "object": {"number": number, "type": "VirtualQueue",
                                                "switch": -1}})
    body = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines).encode()
    t0 = time.monotonic()
    st, _, raw = call(api_port, token, "POST", "/v1/import", body, timeout=300)
    if st != 200:
        raise B.BenchError(f"POST /v1/import: {st}: {raw[:500]!r}")
    return len(lines), time.monotonic() - t0


# ------------------------------------------------------------ the voice side

def pipe(r, cmds):
    """Send every command, then read every reply (one round trip)."""
    out = []
    for args in cmds:
        out.append(f"*{len(args)}\r\n".encode())
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    r.s.sendall(b"".join(out))
    return [r._read() for _ in cmds]


def voice_agents(r, n, event, state, batch=2000):
    """Every agent's event on voice:events and its state in voice:state, in
    one MULTI each, as the voice side writes them."""
    now = int(time.time() * 1000)
    for lo in range(0, n, batch):
        cmds = []
        for i in range(lo, min(n, lo + batch)):
            dn, login = str(DN_BASE + i), str(LOGIN_BASE + i)
            ev = {"event": event, "eventId": f"bench-{event}-{dn}-{now}",
                  "region": "local", "time": now, "thisDN": dn, "agentId": login,
                  "workMode": "ManualIn"}
            st = {"dn": dn, "agent": {"agentId": login, "state": state,
                                      "workMode": "ManualIn", "reason": None,
                                      "since": now}, "calls": []}
            cmds += [["MULTI"], ["HSET", key("voice:state"), dn, json.dumps(st)],
                     ["XADD", key("voice:events"), "MAXLEN", "~", "1000000", "*",
                      "event", json.dumps(ev)], ["EXEC"]]
        pipe(r, cmds)


class Heartbeat:
    """voice:heartbeat, SET ... PX 3000 every second."""

    def __init__(self, port):
        self.r = Redis(port)
        self.stop = threading.Event()
        self.r.cmd("SET", key("voice:heartbeat"), "bench", "PX", 3000)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        B.at_cleanup(self.close)

    def _run(self):
        while not self.stop.wait(1.0):
            try:
                self.r.cmd("SET", key("voice:heartbeat"), "bench", "PX", 3000)
            except Exception:  # noqa: BLE001 - Redis going away at the end
                pass

    def close(self):
        self.stop.set()
        self.t.join(3)


def wait_agents(ctx, free, what):
    """Until the worker(s) count every agent logged in and `free` of them
    free (nothing waiting in the queue)."""
    def ok():
        for t in ctx.instances:
            t.alive()
            f = vq_figures(t.rt, ctx.token)
            if f["waiting"] != 0 or f["agents"] != ctx.args.agents or \
                    f["agentsFree"] != free:
                return False
        return True
    B.wait_for(ok, 60, interval=0.2, what=what)


# ------------------------------------------------------------ the scripts of store.c

_C_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)|(;)', re.S)


def _unescape(s):
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def store_scripts():
    """The Lua text of store.c's scripts (prelude + body), as the worker
    loads them: {name: text}.  A source that cannot be read stops the
    bench: a copy kept here would go stale."""
    path = os.path.join(REPO, "workers", "routing", "store.c")
    try:
        with open(path) as f:
            src = f.read()
    except OSError as e:
        raise B.BenchError(f"cannot read {path}: {e}")
    macros = dict(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', src))
    out = {}
    for name in ("prelude", "queue_lua", "reserve_lua", "accept_lua", "end_lua"):
        m = re.search(r"static const char " + name + r"\[\]\s*=", src)
        if not m:
            raise B.BenchError(f"store.c has no {name}[]: update routing_bench.py")
        text, pos = [], m.end()
        for t in _C_TOKEN.finditer(src, pos):
            if t.group(3):
                break
            text.append(_unescape(t.group(1)) if t.group(1) is not None
                        else macros[t.group(2)])
        out[name] = "".join(text)
    return {k: out["prelude"] + out[k + "_lua"] for k in
            ("queue", "reserve", "accept", "end")}


def load_scripts(redis_port):
    """SCRIPT LOAD each; each SHA must be one tenantd loaded already (the
    same text)."""
    r = Redis(redis_port)
    try:
        shas = {}
        for k, text in store_scripts().items():
            sha = r.cmd("SCRIPT", "LOAD", text)
            sha = sha.decode() if isinstance(sha, bytes) else sha
            if sha != hashlib.sha1(text.encode()).hexdigest():
                raise B.BenchError("SCRIPT LOAD answered an unexpected SHA")
            shas[k] = sha
        return shas
    finally:
        r.close()


def sample_doc(ctx):
    """An interaction's document as tenantd stores it (one queued and
    cancelled), with its id as @ID@: the references store the same bytes."""
    t = ctx.a
    st, _, raw = call(t.rt, ctx.token, "POST", "/v1/interactions",
                      {"virtualQueue": VQ, "target": "S3 >= 2"})
    if st != 201:
        raise B.BenchError(f"POST /v1/interactions: {st} {raw[:300]!r}")
    iid = json.loads(raw)["id"]
    r = Redis(ctx.redis.port)
    try:
        doc = r.cmd("HGET", key(f"routing:ix:{iid}"), "doc").decode()
        vq = r.cmd("HGET", key(f"routing:ix:{iid}"), "vq").decode()
    finally:
        r.close()
    st, _, raw = call(t.rt, ctx.token, "DELETE", f"/v1/interactions/{iid}")
    if st != 204:
        raise B.BenchError(f"DELETE /v1/interactions/{iid}: {st} {raw[:300]!r}")
    if iid not in doc:
        raise B.BenchError(f"the stored document has not its id: {doc[:200]}")
    return doc.replace(iid, "@ID@"), vq


# ------------------------------------------------------------ 10a. latency

def ms(us):
    return f"{us / 1000:.2f}"


def bench_latency(ctx):
    a = ctx.args
    print(f"-- 10a. latency, agent free -> its reservation: {a.agents:,} agents "
          f"NotReady, {a.waiting:,} interactions waiting; {a.rate} agents/s go Ready "
          f"(EventAgentReady XADDed), {a.latency_secs} s measured after 1 s, "
          f"{a.rounds} rounds", flush=True)
    res = {"pathref": [], "tenantd": []}
    for rnd in range(1, a.rounds + 1):
        tag = f"{rnd:02d}{secrets.token_hex(3)}"
        r, wall, _, _ = run_load(ctx.exe, "pathref", {
            "redis": ctx.redis.port, "kevents": key("voice:events", REF_TENANT),
            "prefix": key("routing:", REF_TENANT), "agentprefix": key("agent:", REF_TENANT),
            "doc": ctx.doc, "vq": ctx.vq_dbid, "sha_queue": ctx.shas["queue"],
            "sha_reserve": ctx.shas["reserve"], "rate": a.rate, "warm": 1,
            "secs": a.latency_secs, "agents": a.agents, "tag": f"p{tag}"[:8]},
            B.SERVER_CPU, 120)
        print(f"   round {rnd} pathref  p50 {ms(r['ready_to_read_us_p50'])} ms, p90 "
              f"{ms(r['ready_to_read_us_p90'])}, p99 {ms(r['ready_to_read_us_p99'])}, "
              f"max {ms(r['ready_to_read_us_max'])} ms ({r['ready_to_read_us_n']} samples)",
              flush=True)
        res["pathref"].append(r)
        rpid = ctx.a.routing_pid()
        r, wall, lcpu, used = run_load(ctx.exe, "drive", {
            "mode": "paced", "ports": ctx.a.rt, "token": ctx.token, "vq": VQ,
            "conns": a.conns, "agents": a.agents, "waiting": a.waiting,
            "rate": a.rate, "warm": 1, "secs": a.latency_secs,
            "redis": ctx.redis.port, "kstate": key("voice:state"),
            "kevents": key("voice:events"), "seed": rnd * 1000003},
            B.LOADGEN_CPU, 180, pids=[rpid, ctx.redis.proc.pid])
        if r["not_reserved"] or r["bad_queue"] or r["bad_accept"] or r["left"]:
            raise B.BenchError(f"10a: {r['not_reserved']} Ready agents got no "
                               f"reservation; {r['bad_queue']} queue and "
                               f"{r['bad_accept']} accept errors; {r['left']} left")
        print(f"   round {rnd} tenantd  p50 {ms(r['ready_to_read_us_p50'])} ms, p90 "
              f"{ms(r['ready_to_read_us_p90'])}, p99 {ms(r['ready_to_read_us_p99'])}, "
              f"max {ms(r['ready_to_read_us_max'])} ms ({r['ready_to_read_us_n']} "
              f"samples, {r['rate_sent']:.0f}/s sent); on Redis's clock p50 "
              f"{r['ready_to_reserved_redis_ms_p50']} ms, p99 "
              f"{r['ready_to_reserved_redis_ms_p99']} ms; the feed's share "
              f"(read - position) p50 {ms(r['reserved_to_read_us_p50'])} ms, p99 "
              f"{ms(r['reserved_to_read_us_p99'])} ms; in the window: routing worker "
              f"{share(r['_win'], rpid)} of core {B.SERVER_CPU} (runnable but waiting "
              f"for it {r['_win']['wait'][rpid] / r['_win']['wall']:.1%}), core 0 busy "
              f"{r['_win']['core'][0]:.0%}, core 1 {r['_win']['core'][1]:.0%}",
              flush=True)
        res["tenantd"].append(r)
        wait_agents(ctx, 0, "every agent NotReady and nothing waiting after 10a")
    p99 = {k: B.median([x["ready_to_read_us_p99"] for x in v]) for k, v in res.items()}
    p50 = {k: B.median([x["ready_to_read_us_p50"] for x in v]) for k, v in res.items()}
    ok = p99["tenantd"] / 1000 <= LATENCY_GOAL_MS
    print(f"   => median over rounds: tenantd p50 {ms(p50['tenantd'])} ms, p99 "
          f"{ms(p99['tenantd'])} ms; pathref p50 {ms(p50['pathref'])} ms, p99 "
          f"{ms(p99['pathref'])} ms; p99 ratio {p99['tenantd'] / p99['pathref']:.1f} "
          f"(goal: tenantd p99 <= {LATENCY_GOAL_MS} ms: {'met' if ok else 'MISSED'})",
          flush=True)
    B.result_line(f"routing agent free -> reserved p99 ({a.rate}/s) (ms)", "ms",
                  ms(p99["tenantd"]), ms(p99["pathref"]),
                  f"{p99['tenantd'] / p99['pathref']:.1f}", f"<= {LATENCY_GOAL_MS} ms",
                  ok)


# ------------------------------------------------------------ 10b. throughput

def bench_throughput(ctx):
    a = ctx.args
    print(f"-- 10b. routed/s: {a.agents:,} agents Ready, {a.waiting:,} interactions "
          f"kept waiting; each reservation accepted then completed by the client; "
          f"{a.duration} s measured after {a.warmup} s; {a.rounds} rounds", flush=True)
    voice_agents(ctx.vr, a.agents, "EventAgentReady", "Ready")
    wait_agents(ctx, a.agents, "every agent free")
    res = {"redis": [], "tenantd": []}
    rp = ctx.redis.proc.pid
    for rnd in range(1, a.rounds + 1):
        r, wall, lcpu, used = run_load(ctx.exe, "ref", {
            "redis": ctx.redis.port, "prefix": key("routing:", REF_TENANT),
            "agentprefix": key("agent:", REF_TENANT), "doc": ctx.doc,
            "vq": ctx.vq_dbid, "sha_queue": ctx.shas["queue"],
            "sha_reserve": ctx.shas["reserve"], "sha_accept": ctx.shas["accept"],
            "sha_end": ctx.shas["end"], "day": time.strftime("%Y%m%d"),
            "ttl": 300000, "agents": a.agents, "waiting": a.waiting, "depth": a.depth,
            "warm": 1, "secs": a.duration, "tag": f"r{rnd:02d}{secrets.token_hex(3)}"[:8],
            # agents of its own each round: a round leaves the agents of the
            # routings it had in flight held (8 h, as accepted tasks hold them)
            "dnbase": DN_BASE + (rnd - 1) * a.agents},
            B.SERVER_CPU, a.duration + 60, pids=[rp])
        rate = r["routed"] / r["window_s"]
        res["redis"].append(rate)
        w = r["_win"]
        print(f"   round {rnd} reference {rate:8,.0f} routed/s ({r['win_scripts']:,} "
              f"scripts in the window); client {share(w, w['load'])} of core "
              f"{B.SERVER_CPU}, redis-server {share(w, rp)} of core {B.LOADGEN_CPU} "
              f"(busy {w['core'][1]:.0%}), "
              f"{w['cpu'][rp] / max(1, r['win_scripts']) * 1e6:.1f} us per script",
              flush=True)
        rpid = ctx.a.routing_pid()
        perf = start_perf(ctx, rpid) if a.perf and rnd == 1 else None
        r, wall, lcpu, used = run_load(ctx.exe, "drive", {
            "mode": "saturate", "ports": ctx.a.rt, "token": ctx.token, "vq": VQ,
            "conns": a.conns, "agents": a.agents, "waiting": a.waiting,
            "warm": a.warmup, "secs": a.duration, "seed": rnd * 7919},
            a.drive_cpu, a.warmup + a.duration + 180, pids=[rpid, rp])
        if perf:
            stop_perf(perf)
        bad = sum(r[f"bad_{k}"] for k in ("queue", "accept", "complete"))
        if bad or r["created"] != r["done"]:
            raise B.BenchError(f"10b: {bad} answers not 2xx; {r['created']} "
                               f"queued, {r['done']} done")
        rate = r["routed"] / r["window_s"]
        res["tenantd"].append(rate)
        w = r["_win"]
        n = max(1, r["routed"])
        print(f"   round {rnd} tenantd   {rate:8,.0f} routed/s; in the window: routing "
              f"worker {share(w, rpid)} of core {B.SERVER_CPU} (runnable but waiting "
              f"for it {w['wait'][rpid] / w['wall']:.0%}), redis-server "
              f"{share(w, rp)} and the client {share(w, w['load'])} of core "
              f"{B.LOADGEN_CPU} (core 0 busy {w['core'][0]:.0%}, core 1 "
              f"{w['core'][1]:.0%}: everything on them); "
              f"per routing: worker {w['cpu'][rpid] / n * 1e6:.0f} us, "
              f"redis {w['cpu'][rp] / n * 1e6:.0f} us; answers p50/p99 (ms): queue "
              f"{ms(r.get('queue_us_p50', 0))}/{ms(r.get('queue_us_p99', 0))}, accept "
              f"{ms(r.get('accept_us_p50', 0))}/{ms(r.get('accept_us_p99', 0))}, "
              f"complete {ms(r.get('complete_us_p50', 0))}/"
              f"{ms(r.get('complete_us_p99', 0))}; completed -> next reservation of "
              f"that agent (Redis ms) p50 {r['free_to_reserved_ms_p50']}, p99 "
              f"{r['free_to_reserved_ms_p99']}", flush=True)
        wait_agents(ctx, a.agents, "every agent free again after the round")
    med = {k: B.median(v) for k, v in res.items()}
    ratio = med["tenantd"] / med["redis"]
    ok = ratio >= THROUGHPUT_GOAL
    for k, v in res.items():
        print(f"   {k:9s} median {med[k]:,.0f} routed/s (min {min(v):,.0f}, "
              f"max {max(v):,.0f})")
    print(f"   => tenantd {med['tenantd']:,.0f} routed/s, reference "
          f"{med['redis']:,.0f} routed/s, ratio {ratio:.2f} (goal >= "
          f"{THROUGHPUT_GOAL}: {'met' if ok else 'MISSED'})", flush=True)
    B.result_line(f"routing routed/s ({a.agents:,} agents, {a.waiting:,} waiting)",
                  "routed/s", f"{med['tenantd']:,.0f}", f"{med['redis']:,.0f}",
                  f"{ratio:.2f}", f">= {THROUGHPUT_GOAL}", ok)


def share(w, pid):
    """pid's CPU over the window, as a share of one core."""
    return f"{w['cpu'][pid] / w['wall']:.0%}"


def start_perf(ctx, pid):
    # BENCH_KEEP_LOGS=DIR keeps perf.data there too, for perf report -g
    path = os.path.join(os.environ.get("BENCH_KEEP_LOGS") or ctx.tmp,
                        f"perf-{pid}.data")
    p = subprocess.Popen(["perf", "record", "-g", "-F", "499", "-o", path, "-p",
                          str(pid)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=B._child_setup)
    B.at_cleanup(lambda: B.stop_proc(p, "perf", sig=2))
    return p, path


def stop_perf(perf, what="10b, round 1"):
    p, path = perf
    B.stop_proc(p, "perf", sig=2)
    r = subprocess.run(["perf", "report", "-i", path, "--no-children",
                        "--sort", "symbol", "--stdio", "-g", "none",
                        "--percent-limit", "1.5"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
    lines = [ln for ln in r.stdout.decode(errors="replace").splitlines()
             if ln.strip() and not ln.startswith("#")]
    print(f"   perf (routing worker, {what}, self time):")
    for ln in lines[:25]:
        print("     " + ln.strip())


# ------------------------------------------------------------ 10c. two instances

def checker_selftest(ctx):
    """routing_load check on a made-up stream with two double reservations
    and one after an expiry: it must count exactly those."""
    k = key("routing:selftest", REF_TENANT)
    r = Redis(ctx.redis.port)
    evs = [("reserved", "A", "100000", 1000, 2000), ("reserved", "B", "100000", 1500, 2500),
           ("reserved", "C", "100001", 1000, 1100), ("reserved", "D", "100001", 1200, 3000),
           ("accepted", "D", "100001", 1250, 0), ("reserved", "E", "100001", 9000, 9999),
           ("completed", "E", "100002", 9100, 0)]
    for typ, iid, dn, at, until in evs:
        r.cmd("XADD", k, "*", "e", json.dumps(
            {"type": typ, "id": iid, "state": typ, "at": at, "created": 1, "seq": 1,
             "agent": 7, "dn": dn, "until": until, "interaction": {"id": "X", "dn": "1"}},
            separators=(",", ":")))
    r.close()
    out = subprocess.run([ctx.exe, "check", f"redis={ctx.redis.port}", f"key={k}",
                          "start=0-0", f"agents={ctx.args.agents}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=30)
    c = parse_kv(out.stdout.decode())
    if (c.get("violations"), c.get("after_expiry"), c.get("reserved")) != (2, 1, 5):
        raise B.BenchError("routing_load check does not find what it should in its "
                           f"self-test: {out.stdout.decode()}")


def bench_check(ctx):
    a = ctx.args
    checker_selftest(ctx)
    print(f"-- 10c. correctness: two instances on the same PostgreSQL and Redis, "
          f"{a.routings:,} routings over {a.agents:,} agents ({a.waiting:,} waiting), "
          "checked from the routing event stream (the checker passed its "
          "self-test: 2 double reservations found in a made-up stream)", flush=True)
    b = RtTenantd(ctx.binary, ctx.pg, ctx.redis.port, ctx.token_file, config=False,
                  name="tenantd B")
    ctx.instances.append(b)
    voice_agents(ctx.vr, a.agents, "EventAgentReady", "Ready")
    wait_agents(ctx, a.agents, "both instances: every agent free")
    r = Redis(ctx.redis.port)
    last = r.cmd("XREVRANGE", key("routing:events"), "+", "-", "COUNT", 1)
    start = last[0][0].decode() if last else "0-0"
    calls0 = cmd_calls(r)
    chk = subprocess.Popen(["taskset", "-c", str(B.LOADGEN_CPU), ctx.exe, "check",
                            f"redis={ctx.redis.port}", f"key={key('routing:events')}",
                            f"start={start}", f"agents={a.agents}"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, preexec_fn=B._child_setup)
    B.at_cleanup(lambda: B.stop_proc(chk, "routing_load check"))
    pids = [ctx.a.routing_pid(), b.routing_pid(), ctx.redis.proc.pid]
    d, wall, lcpu, used = run_load(ctx.exe, "drive", {
        "mode": "check", "ports": f"{ctx.a.rt},{b.rt}", "token": ctx.token,
        "vq": VQ, "conns": a.conns, "agents": a.agents, "waiting": a.waiting,
        "routings": a.routings, "secs": 400, "seed": 424242},
        B.LOADGEN_CPU, 420, pids=pids)
    try:
        out, err = chk.communicate(timeout=60)      # closes its stdin: finish
    except subprocess.TimeoutExpired:
        raise B.BenchError("routing_load check did not finish")
    if chk.returncode != 0:
        raise B.BenchError("routing_load check failed:\n" + err.decode(errors="replace"))
    c = parse_kv(out.decode())
    for ln in out.decode().splitlines():
        if ln.startswith("violation:"):
            print("   " + ln)
    calls = {k: v - calls0[k] for k, v in cmd_calls(r).items()}
    if os.environ.get("BENCH_KEEP_LOGS"):
        # what the stream still holds (about its last 100,000 events)
        with open(os.path.join(os.environ["BENCH_KEEP_LOGS"], "routing-events.txt"),
                  "w") as f:
            for eid, fields in r.xrange_all(key("routing:events"), start):
                f.write(f"{eid} {fields.get('e', b'').decode()}\n")
    r.close()
    bad = sum(d[f"bad_{k}"] for k in ("queue", "accept", "complete"))
    print(f"   {d['done']:,} routings in {d['elapsed_s']:.1f} s "
          f"({d['done'] / d['elapsed_s']:,.0f}/s); instance A's routing worker "
          f"{used[pids[0]] / wall:.0%}, B's {used[pids[1]] / wall:.0%} of core "
          f"{B.SERVER_CPU}; {bad} answers not 2xx, {d['ev_timed-out']} "
          f"reservations ran out before the client accepted them; {d['reopened']} client "
          f"connections closed by the port when idle 10 s, opened again "
          f"({d['resent']} requests sent again)")
    print(f"   the stream: {c['events']:,} events, {c['reserved']:,} reservations, "
          f"{c['completed']:,} completed; reservations that found the agent held by "
          f"another interaction: {c['violations']}; after the holder's reservation "
          f"had expired: {c['after_expiry']}; accepted while not the holder: "
          f"{c['odd_accept']}")
    print(f"   contention (INFO commandstats): {calls['evalsha']:,} scripts run, "
          f"{calls['xadd']:,} events written: at least "
          f"{max(0, calls['evalsha'] - calls['xadd']):,} scripts refused (an "
          f"interaction the other instance had just reserved, or an agent it had "
          f"just taken); {calls['set']:,} SET NX of an agent's key for "
          f"{c['reserved']:,} reservations: {max(0, calls['set'] - c['reserved']):,} "
          "found the key taken (the heartbeat's SETs, one a second, included)")
    ok = c["violations"] == 0 and c["completed"] >= a.routings and \
        d["done"] >= a.routings
    print(f"   => {'no agent reserved twice' if ok else 'FAILED'} over "
          f"{c['completed']:,} routings (goal: none)", flush=True)
    B.result_line(f"routing agents reserved twice ({c['completed']:,} routings, 2 "
                  "instances)", "", str(c["violations"]), "0", "-", "0", ok)
    B.stop_proc(b.proc, "tenantd B")
    ctx.instances.remove(b)
    if c["violations"]:
        raise B.BenchError("an agent was reserved for two interactions at once")


def cmd_calls(r):
    """Calls of EVALSHA, XADD and SET so far (INFO commandstats counts the
    commands a script runs too)."""
    info = r.cmd("INFO", "commandstats").decode()
    return {c: int(m.group(1)) if (m := re.search(rf"cmdstat_{c}:calls=(\d+)", info))
            else 0 for c in ("evalsha", "xadd", "set")}


# ------------------------------------------------------------ 10d. HTTP

def core1_pids(ctx):
    """What shares the load generator's core with wrk in 10d: Redis and
    every PostgreSQL process (name -> pids)."""
    pm = postmaster_pid(ctx.pg)
    return {"redis": [ctx.redis.proc.pid], "postgres": [pm] + B.children_of(pm)}


def bench_http(ctx):
    a = ctx.args
    print(f"-- 10d. POST /v1/interactions/s: wrk -t1 -c50 -d{a.duration}s "
          "(routing_post.lua) on core 1, every agent NotReady, a new empty virtual "
          "queue each round; beside nginx answering the same bytes", flush=True)
    voice_agents(ctx.vr, a.agents, "EventAgentNotReady", "NotReady")
    wait_agents(ctx, 0, "every agent NotReady")
    body = json.dumps({"virtualQueue": str(VQ_HTTP), "target": "S1 >= 2"},
                      separators=(",", ":"))
    st, hdrs, sample = call(ctx.a.rt, ctx.token, "POST", "/v1/interactions",
                            body.encode())
    if st != 201:
        raise B.BenchError(f"POST /v1/interactions: {st} {sample[:300]!r}")
    ctype = hdrs.get("content-type")
    block = f"""  geo $dollar {{
    default "$";
  }}
  server {{
    listen 127.0.0.1:@PORT@ reuseport backlog=511;
    default_type "{ctype}";
    location / {{
      return 201 '{nginx_escape(sample)}';
    }}
  }}
"""
    prefix, conf, nport = B.nginx_prefix(block, master_process=False)
    nginx = B.start_nginx(prefix, conf, nport)
    st, nh, nbody = call(nport, ctx.token, "POST", "/v1/interactions", body.encode())
    if st != 201 or nbody != sample or nh.get("content-type") != ctype:
        raise B.BenchError(f"nginx does not answer the same bytes: {st} "
                           f"{nh.get('content-type')} {nbody[:200]!r}")
    print(f"   the answer: {len(sample)} bytes, {ctype}; nginx's checked byte for byte")
    res = {"nginx": [], "tenantd": []}
    rpid = ctx.a.routing_pid()
    for rnd in range(1, a.rounds + 1):
        vq = str(VQ_HTTP + rnd)
        rbody = json.dumps({"virtualQueue": vq, "target": "S1 >= 2"},
                           separators=(",", ":"))
        for name, port, pid in (("nginx", nport, nginx.pid), ("tenantd", ctx.a.rt, rpid)):
            perf = start_perf(ctx, pid) if a.perf and rnd == 1 and \
                name == "tenantd" else None
            others = core1_pids(ctx) if name == "tenantd" else {}
            c0 = {k: pids_cpu_s(p) for k, p in others.items()}
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            k0 = cores()
            w = wrk_run(f"http://127.0.0.1:{port}/v1/interactions", a.duration,
                        script=POST_LUA, script_args=[ctx.token_file, rbody],
                        server_pid=pid)
            k1 = cores()
            c1 = {k: pids_cpu_s(p) for k, p in others.items()}
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            c0["wrk"], c1["wrk"] = 0, (ru1.ru_utime + ru1.ru_stime -
                                       ru0.ru_utime - ru0.ru_stime)
            busy = [(k1[c][0] - k0[c][0]) / max(1, k1[c][1] - k0[c][1]) for c in (0, 1)]
            if perf:
                stop_perf(perf, "10d, round 1")
            if w["non2xx"] or w["errors"]:
                raise B.BenchError(f"10d: {name}: {w['non2xx']} non-2xx answers, "
                                   f"{w['errors']} socket errors\n{w['raw']}")
            extra = ""
            if name == "tenantd":
                f = vq_figures(ctx.a.rt, ctx.token, vq)
                n = max(1, w["requests"])
                per = ", ".join(f"{k} {(c1[k] - c0[k]) / n * 1e6:.1f} us"
                                for k in c1)
                extra = (f"; {f['waiting']:,} waiting in {vq} after it; per POST on "
                         f"core {B.LOADGEN_CPU}: {per}")
            print(f"   round {rnd} {name:8s} {w['rps']:9,.0f} req/s, p50 "
                  f"{w['p50']:.2f} ms, p99 {w['p99']:.2f} ms, {w['cpu_us']:.1f} us "
                  f"CPU/request, {w['server_busy']:.0%} of core {B.SERVER_CPU} (core 0 "
                  f"busy {busy[0]:.0%}, core 1 {busy[1]:.0%}){extra}",
                  flush=True)
            res[name].append(w["rps"])
    med = {k: B.median(v) for k, v in res.items()}
    ratio = med["tenantd"] / med["nginx"]
    ok = ratio >= HTTP_GOAL
    print(f"   => tenantd {med['tenantd']:,.0f} req/s, nginx {med['nginx']:,.0f} "
          f"req/s, ratio {ratio:.2f} (goal >= {HTTP_GOAL}: "
          f"{'met' if ok else 'MISSED'})", flush=True)
    B.result_line("routing POST /v1/interactions", "req/s", f"{med['tenantd']:,.0f}",
                  f"{med['nginx']:,.0f}", f"{ratio:.2f}", f">= {HTTP_GOAL}", ok)


# ------------------------------------------------------------ the run

class Ctx:
    pass


def run(args):
    binary = os.path.abspath(args.binary)
    only = set((args.only or "latency,throughput,check,http").split(","))
    if os.environ.get("BENCH_KEEP_LOGS"):
        os.makedirs(os.environ["BENCH_KEEP_LOGS"], exist_ok=True)
    print("== routing worker: latency, routed/s, two instances, POST/s "
          "(benchmark 10)", flush=True)
    print(B.busy_note(), flush=True)
    ctx = Ctx()
    ctx.args, ctx.binary = args, binary
    ctx.tmp = B.tempdir("tenantd-bench-routing-")
    ctx.exe = build(ctx.tmp)
    ctx.pg = B.PgServer()
    ctx.redis = B.RedisServer()
    ctx.token = "tk-" + secrets.token_hex(20)
    ctx.token_file = os.path.join(ctx.tmp, "admin.token")
    with open(ctx.token_file, "w") as f:
        f.write(ctx.token + "\n")
    os.chmod(ctx.token_file, 0o600)
    ctx.a = RtTenantd(binary, ctx.pg, ctx.redis.port, ctx.token_file)
    ctx.instances = [ctx.a]
    n, took = import_tenant(ctx.a.api, ctx.token, args.agents, args.rounds)
    print(f"   import: {n:,} objects in {took:.1f} s", flush=True)
    B.wait_for(lambda: call(ctx.a.rt, ctx.token, "GET", f"/v1/virtual-queues/{VQ}")[0]
               == 200, 60, interval=0.2, what="the routing worker sees the queue")
    ctx.vr = Redis(ctx.redis.port)
    B.at_cleanup(ctx.vr.close)
    t0 = time.monotonic()
    voice_agents(ctx.vr, args.agents, "EventAgentLogin", "NotReady")
    Heartbeat(ctx.redis.port)
    wait_agents(ctx, 0, "the routing worker sees every agent logged in")
    print(f"   {args.agents:,} agents logged in (voice:state, voice:events, heartbeat) "
          f"and seen by the worker in {time.monotonic() - t0:.1f} s", flush=True)
    for pid in ctx.a.pids():
        if B.affinity(pid) != {B.SERVER_CPU}:
            raise B.BenchError(f"tenantd process {pid} is not pinned to core "
                               f"{B.SERVER_CPU}")
    ctx.shas = load_scripts(ctx.redis.port)
    r = Redis(ctx.redis.port)
    loaded = r.cmd("SCRIPT", "EXISTS", *ctx.shas.values())
    r.cmd("XADD", key("voice:events", REF_TENANT), "*", "event", "{}")
    r.close()
    if loaded != [1] * len(ctx.shas):
        raise B.BenchError("the scripts read from store.c are not the ones tenantd "
                           "loaded (SCRIPT EXISTS): routing_bench.py reads them wrong")
    print("   reference scripts: queue, reserve, accept, end from store.c, the same "
          "SHAs as tenantd loaded", flush=True)
    ctx.doc, ctx.vq_dbid = sample_doc(ctx)
    if "latency" in only:
        bench_latency(ctx)
    if "throughput" in only:
        bench_throughput(ctx)
    if "check" in only:
        bench_check(ctx)
    if "http" in only:
        bench_http(ctx)
    ctx.a.alive()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--waiting", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=5,
                    help="s measured of each throughput round and wrk run")
    ap.add_argument("--warmup", type=float, default=3,
                    help="s of each throughput round before it is measured")
    ap.add_argument("--rate", type=int, default=500,
                    help="agents going Ready per second (10a)")
    ap.add_argument("--latency-secs", type=int, default=5,
                    help="s measured of each latency round (10a)")
    ap.add_argument("--routings", type=int, default=100000,
                    help="routings of the two-instance check (10c)")
    ap.add_argument("--conns", type=int, default=256,
                    help="HTTP connections of the client, per instance")
    ap.add_argument("--depth", type=int, default=64,
                    help="routings in flight in the reference (10b)")
    ap.add_argument("--only", metavar="PARTS",
                    help="comma-separated: latency, throughput, check, http")
    ap.add_argument("--drive-cpu", type=int, default=B.LOADGEN_CPU,
                    help="the core of 10b's client (default: the load generator's, "
                    "with Redis and PostgreSQL; the server's core shows how much of "
                    "the gap is that core's sharing)")
    ap.add_argument("--perf", action="store_true",
                    help="perf record the routing worker in the first tenantd "
                    "round of 10b and of 10d")
    ap.add_argument("--time-limit", type=int, default=600)
    args = ap.parse_args()
    B.pin_self(B.LOADGEN_CPU)
    return B.main_wrapper(lambda: run(args), time_limit=args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
