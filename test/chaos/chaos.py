#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Chaos driver: one whole tenant under faults, then its invariants.

It runs PostgreSQL and Redis each in a network namespace of its own,
joined to this side by a veth pair, kafkamock, and tenantd with every
worker (config, events, stats, outbound, routing, metrics); voicesim makes
inbound traffic for its agents and plays the customers of a small
agentless campaign; desktops (events clients that resume after a lost
connection), statistics clients, a configuration writer and an
application queueing tasks on the routing port work beside it.  A seeded RNG then injects faults, one at a time:

  kill9     kill -9 of a worker
  stop      SIGSTOP of a worker for 1-8 s, then SIGCONT (past the
            supervisor's 5 s heartbeat timeout the master kills it)
  redis     restart of Redis (SIGTERM; append-only file, so it keeps its data)
  pg        restart of PostgreSQL (pg_ctl -m fast)
  cut-redis, cut-pg
            the link to that server's namespace set down for 2-8 s, then
            up: its TCP connections hang as in a real partition

When the faults stop it restores everything, lets the tenant settle,
freezes the voice side (voicesim stopped, its heartbeat kept) and checks:

  desktops  each desktop saw every event of its DNs in voice:events
            exactly once and in order, across its resumes
  stats     the Growing totals of every statistics client equal a recount
            of voice:events; logged-in agents equal the logins in the stream
  config    the config worker's cache equals PostgreSQL (cfg_object), and
            the events and stats workers know exactly the DNs and agent
            groups the writer left in the database
  outbound  every record final and unleased, no call attempt asked twice,
            each phone dialled as often as its attempt column says, the
            outbox drained to Kafka
  routing   every task an application was answered 201 for can be read
            back; the journal (rt_interaction) holds exactly the
            interactions Redis holds live; no agent reserved while it held
            another; the application's event feed read every event of the
            stream once and in order, across its resumes
  stuck     every worker alive and serving its port, /readyz 200, no
            crash or sanitizer report in any log

It prints the seed first, a summary last, and exits 1 (with the evidence
and the seed) when an invariant fails, 2 when it could not run (no
network namespaces: it needs root or CAP_NET_ADMIN).

  /usr/bin/python3 test/chaos/chaos.py [--seed N] [--minutes M] [--keep]

Binaries: $TENANTD_BIN, $VOICESIM_BIN, $KAFKAMOCK_BIN (default build/).
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "e2e"))

for _b, _n in (("TENANTD_BIN", "tenantd"), ("VOICESIM_BIN", "voicesim"),
               ("KAFKAMOCK_BIN", "kafkamock")):
    os.environ.setdefault(_b, os.path.join(REPO, "build", _n))

import psycopg                                       # noqa: E402
import redis as redislib                             # noqa: E402

import helpers                                       # noqa: E402
from conftest import check_daemon                    # noqa: E402
from evclient import Session, key, merge_position    # noqa: E402
from helpers import (PG_BIN, PgServer, RedisServer, Tenantd, VoiceSim,  # noqa: E402
                     base_conf, config_api_ready, enable_config_worker,
                     free_port, merge, wait_for)
from kafkahelp import KafkaMock                      # noqa: E402

WORKERS = ("config", "events", "stats", "outbound", "routing", "metrics")
FAULTS = ("kill9", "stop", "redis", "pg", "cut-redis", "cut-pg")
TOPIC = "tenantd.outbound"
FINAL = {3, 5, 6, 7}
N_AGENTS = 8            # persons E1..E8 on phones 5001..5008
QUEUE, RP = "6000", "6100"
VQ = "8001"             # the routing worker's virtual queue
RT_EVENTS = f"tenantd:{{{helpers.TENANT_ID}}}:routing:events"
_cleanups = []


def log(msg):
    print(f"chaos {time.strftime('%H:%M:%S')} {msg}", flush=True)


class Failed(Exception):
    """An invariant does not hold: the message is the evidence."""


class CannotRun(Exception):
    """The driver could not set itself up (no namespaces, a server)."""


# ------------------------------------------------------------ namespaces

def sh(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise CannotRun(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


def mac_of(dev, ns=None):
    pre = ["ip", "netns", "exec", ns] if ns else []
    out = sh(*pre, "ip", "-o", "link", "show", dev)
    return re.search(r"link/ether (\S+)", out).group(1)


class Netns:
    """A named network namespace with its own loopback, joined to this
    side by a veth pair on a /30.  cut() sets the namespace's end down:
    packets to it are dropped silently (permanent neighbour entries, so no
    ARP failure turns the partition into a fast error)."""

    def __init__(self, name, subnet):
        self.name = name
        self.host_dev, self.ns_dev = name + "h", name + "n"
        self.host_ip, self.ip = f"10.{subnet}.1", f"10.{subnet}.2"
        sh("ip", "netns", "add", name)
        _cleanups.append(self.destroy)
        sh("ip", "link", "add", "name", self.host_dev, "type", "veth",
           "peer", "name", self.ns_dev)
        sh("ip", "link", "set", self.ns_dev, "netns", name)
        sh("ip", "addr", "add", self.host_ip + "/30", "dev", self.host_dev)
        sh("ip", "link", "set", self.host_dev, "up")
        self.ex("ip", "addr", "add", self.ip + "/30", "dev", self.ns_dev)
        self.ex("ip", "link", "set", self.ns_dev, "up")
        self.ex("ip", "link", "set", "lo", "up")
        sh("ip", "neigh", "replace", self.ip, "lladdr", mac_of(self.ns_dev, name),
           "dev", self.host_dev, "nud", "permanent")
        self.ex("ip", "neigh", "replace", self.host_ip, "lladdr",
                mac_of(self.host_dev), "dev", self.ns_dev, "nud", "permanent")
        self.is_cut = False

    def ex(self, *cmd):
        return sh("ip", "netns", "exec", self.name, *cmd)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def cut(self):
        self.ex("ip", "link", "set", self.ns_dev, "down")
        self.is_cut = True

    def restore(self):
        self.ex("ip", "link", "set", self.ns_dev, "up")
        self.ex("ip", "neigh", "replace", self.host_ip, "lladdr",
                mac_of(self.host_dev), "dev", self.ns_dev, "nud", "permanent")
        self.is_cut = False

    def destroy(self):
        sh("ip", "netns", "del", self.name, check=False)
        sh("ip", "link", "del", self.host_dev, check=False)


def netns_possible():
    """Can this process make a network namespace?  (root or CAP_NET_ADMIN)"""
    name = f"tdchaosprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        return r.stdout.strip() or f"ip netns add exited {r.returncode}"
    subprocess.run(["ip", "netns", "del", name])
    return None


# ------------------------------------------------------------ servers

class SqlMixin:
    def sql(self, q, *args):
        with psycopg.connect(self.conninfo, autocommit=True) as c:
            cur = c.execute(q, args)
            return cur.fetchall() if cur.description else None


class RedisMixin:
    host = "127.0.0.1"

    def client(self):
        return redislib.Redis(host=self.host, port=self.port, decode_responses=True,
                              socket_timeout=10)


class NsPg(SqlMixin, PgServer):
    """helpers.PgServer inside a namespace, listening on its address."""

    def __init__(self, ns):
        self.ns = ns
        _cleanups.append(self.destroy)     # also when the start below fails
        super().__init__()       # initdb, start (below), role, database
        self.conninfo = (f"host={ns.ip} port={self.port} dbname=t100 user=tenantd "
                         "connect_timeout=5")

    def start(self):
        if self.running:
            return
        if not os.path.exists(os.path.join(self.data, "chaos.hba")):
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write("host all all 10.0.0.0/8 trust\n")
            open(os.path.join(self.data, "chaos.hba"), "w").close()
        opts = (f"-p {self.port} -k {self.data} -c listen_addresses={self.ns.ip} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200")
        r = subprocess.run(self.ns.prefix() + helpers._as_postgres(
            [f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.logfile, "-o", opts,
             "-w", "-t", "60", "start"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
        if r.returncode != 0:
            raise CannotRun("pg_ctl start failed:\n" + r.stdout.decode(errors="replace")
                            + self.log_tail())
        self.running = True

    def psql(self, sql, db="postgres"):
        r = subprocess.run(helpers._as_postgres(
            [f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.ns.ip,
             "-p", str(self.port), "-U", "postgres", "-d", db, "-At", "-c", sql]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise CannotRun(f"psql {sql!r}: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    def reset_db(self):
        self.psql("CREATE DATABASE t100 OWNER tenantd")


class NsRedis(RedisMixin, RedisServer):
    """helpers.RedisServer inside a namespace, with an append-only file
    written at every command, so that a restart keeps the voice streams."""

    def __init__(self, ns):
        self.ns = ns
        self.host = ns.ip
        _cleanups.append(self.destroy)     # also when the start below fails
        super().__init__()

    def start(self):
        if self.running:
            return
        self.logfile = os.path.join(self.dir, "redis.log")
        self.proc = subprocess.Popen(self.ns.prefix() + [
            "redis-server", "--port", str(self.port), "--bind", self.ns.ip,
            "--protected-mode", "no",
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--dir", self.dir, "--logfile", self.logfile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, 20, what=f"redis-server on {self.ns.ip}:{self.port}")

    def ping(self):
        try:
            with socket.create_connection((self.ns.ip, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


# ------------------------------------------------------------ the tenant

class Tenant:
    """tenantd with every worker, and its configuration: switch sw1,
    phones 5001-5008 on places P1-P8 with agents E1-E8 (logins 7001-7008),
    agent group G1 {all}, queue 6000, routing point 6100 (to the queue),
    and an agentless campaign group CG1 (ProgressiveGVP, 3 channels) on
    calling list L1 (table cl_chaos) whose answered calls go to IVR 6600."""

    def __init__(self, tmp, pg, rd, km, agents=N_AGENTS):
        self.tmp, self.pg, self.rd, self.agents = tmp, pg, rd, agents
        self.ports = {w: free_port() for w in WORKERS}
        conf = base_conf(tmp, pg.conninfo, rd.port, self.ports["metrics"])
        conf, token = enable_config_worker(conf, tmp, port=self.ports["config"])
        listen = {w: {"enabled": True, "listen": f"127.0.0.1:{self.ports[w]}"}
                  for w in ("events", "stats", "outbound", "routing")}
        listen["outbound"].update({"lease_time": 6.0, "stats_interval": 1.0})
        conf = merge(conf, {"redis": {"host": rd.host}, "kafka": {"brokers": km.bootstrap},
                            "workers": listen})
        self.d = Tenantd(tmp, conf, allow_errors=True)
        self.d.admin_token = token
        self.token = token
        self.d.start()
        config_api_ready(self.d, timeout=60)
        self.make_objects()

    def make_objects(self):
        c = self.d.create
        self.sw = c("switches", {"name": "sw1"})
        persons = []
        for i in range(1, self.agents + 1):
            dn = c("dns", {"number": f"50{i:02d}", "type": "Extension", "switch": self.sw})
            place = c("places", {"name": f"P{i}", "dns": [dn]})
            login = c("agent-logins", {"loginCode": f"70{i:02d}", "switch": self.sw})
            persons.append(c("persons", {
                "userName": f"agent{i}", "employeeId": f"E{i}", "isAgent": True,
                "place": place, "agentLogins": [{"agentLogin": login}]}))
        self.g1 = c("agent-groups", {"name": "G1", "members": persons})
        c("dns", {"number": QUEUE, "type": "ACDQueue", "switch": self.sw})
        c("dns", {"number": RP, "type": "RoutingPoint", "switch": self.sw})
        c("dns", {"number": VQ, "type": "VirtualQueue", "switch": self.sw})
        orig = c("dns", {"number": "6500", "type": "TrunkGroup", "switch": self.sw})
        ivr = c("dns", {"number": "6600", "type": "RoutingPoint", "switch": self.sw})
        tz = c("time-zones", {"name": "UTC", "tzName": "UTC"})
        f1 = c("fields", {"name": "customer_id", "dataType": "varchar", "length": 32})
        fmt = c("formats", {"name": "F1", "fields": [f1]})
        busy = c("treatments", {"name": "BusyRetry", "callResult": "Busy",
                                "action": "RetryIn", "interval": 1, "attempts": 3})
        lst = c("calling-lists", {
            "name": "L1", "format": fmt, "tableName": "cl_chaos", "timeFrom": 0,
            "timeUntil": 86399, "maxAttempts": 3, "treatments": [busy], "timeZone": tz})
        camp = c("campaigns", {"name": "C1", "callingLists": [
            {"callingList": lst, "share": 10}]})
        self.group = c("campaign-groups", {
            "name": "CG1", "campaign": camp, "group": self.g1,
            "dialMode": "ProgressiveGVP", "origDN": orig, "ivrDN": ivr,
            "numOfChannels": 3})

    def worker_pids(self):
        """{worker name: pid} from the process titles of the master's children."""
        out = {}
        for pid, cl in self.d.worker_procs().items():
            for w in WORKERS:
                if cl and re.search(rf"\b{w}\b", cl):
                    out[w] = pid
        return out

    def session(self, worker, client):
        s = Session(self.ports[worker], timeout=10)
        s.open(self.token, client)
        return s

    def ob_http(self, method, path, body=None):
        import http.client
        h = http.client.HTTPConnection("127.0.0.1", self.ports["outbound"], timeout=10)
        hdr = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            hdr["Content-Type"] = "application/json"
        try:
            h.request(method, path, body=data, headers=hdr)
            r = h.getresponse()
            out = r.read()
            return r.status, (json.loads(out) if out else None)
        finally:
            h.close()

    def add_records(self, n, start):
        rows = [(i, f"+3360{i:06d}", i, f"C{i}") for i in range(start, start + n)]
        q = ("INSERT INTO cl_chaos (record_id, contact_info, chain_id, customer_id) VALUES "
             + ", ".join(["(%s, %s, %s, %s)"] * len(rows)))
        self.pg.sql(q, *[v for r in rows for v in r])


# ------------------------------------------------------------ clients

class Client(threading.Thread):
    """A session client that comes back after a lost connection."""

    def __init__(self, tenant, name):
        super().__init__(daemon=True, name=name)
        self.t = tenant
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.s = None
        self.reconnects = 0
        self.errors = []

    def run(self):
        while not self.halt.is_set():
            try:
                if self.s is None:
                    self.connect()
                self.step()
            except (OSError, EOFError, AssertionError, ValueError) as e:
                with self.lock:
                    if self.s is not None:
                        self.s.close()
                        self.s = None
                        self.reconnects += 1
                self.last_error = repr(e)
                self.halt.wait(0.3)

    def stop(self):
        self.halt.set()
        self.join(15)


class Desktop(Client):
    """An agent desktop on the events port: registers its DNs, keeps every
    event's position, and resumes from it after a lost connection."""

    def __init__(self, tenant, dns):
        super().__init__(tenant, "desktop-" + "-".join(dns))
        self.dns = dns
        self.pos = {}
        self.got = []            # (stream id, eventId, event, thisDN)
        self.lat = []            # (receive time, seconds since the event's time)
        self.resumes = 0

    def connect(self):
        resume = dict(self.pos) if self.pos else None
        s = Session(self.t.ports["events"], timeout=10)
        try:
            fields = {"resume": resume} if resume else {}
            s.open(self.t.token, "desktop", **fields)
            for dn in self.dns:
                r = s.call("RequestRegisterAddress", dn=dn, timeout=10)
                assert r["event"] != "EventError", r
            if resume:
                ref = s.send("RequestResume")
                while True:
                    m = s.read(15)
                    if m is None:
                        raise AssertionError("no EventResumed")
                    if m.get("ref") == ref:
                        break
                    self.take(m)
                if m["event"] != "EventResumed" or m.get("lost"):
                    self.errors.append(f"resume answered {m}")
                self.resumes += 1
        except Exception:
            s.close()
            raise
        self.s = s

    def take(self, m):
        p = m.get("position")
        if p and "local" in p and m.get("thisDN") in self.dns:
            self.got.append((p["local"], m.get("eventId"), m.get("event"), m.get("thisDN")))
            if isinstance(m.get("time"), int):
                now = time.time()
                self.lat.append((now, now - m["time"] / 1000.0))
            merge_position(self.pos, m)

    def step(self):
        m = self.s.read(1.0)
        if m is not None:
            self.take(m)


class StatsClient(Client):
    """A wallboard on the stats port: Growing totals of queue 6000 and
    routing point 6100, logged-in agents of G1; peeks one every second."""

    STATS = (("Queue", QUEUE, "TotalNumberInboundCalls"),
             ("Queue", QUEUE, "TotalNumberAbandonedCalls"),
             ("RoutingPoint", RP, "TotalNumberInboundCalls"),
             ("GroupAgents", "G1", "CurrentNumberLoggedInAgents"))

    def __init__(self, tenant, n, profile):
        super().__init__(tenant, f"stats-{n}")
        self.profile = profile
        self.ids = {}
        self.rtt = []            # (time, seconds) of each peek
        self.i = 0

    def connect(self):
        s = Session(self.t.ports["stats"], timeout=10)
        try:
            s.open(self.t.token, "wallboard")
            ids = {}
            for typ, oid, st in self.STATS:
                r = s.call("RequestOpenStatistic", object={"type": typ, "id": oid},
                           statistic=st, profile=self.profile, timeout=10,
                           notify={"mode": "changes"})
                assert r["event"] == "EventStatisticOpened", r
                ids[(oid, st)] = r["statisticId"]
        except Exception:
            s.close()
            raise
        with self.lock:
            self.s, self.ids = s, ids

    def peek(self, k):
        with self.lock:
            if self.s is None:
                raise OSError("not connected")
            t0 = time.monotonic()
            r = self.s.call("RequestPeekStatistic", statisticId=self.ids[k], timeout=10)
            self.rtt.append((time.time(), time.monotonic() - t0))
            if r["event"] != "EventInfo":
                raise AssertionError(r)
            return r["value"], r.get("valid", True)

    def values(self):
        return {k: self.peek(k)[0] for k in self.ids}

    def step(self):
        keys = list(self.ids)
        self.peek(keys[self.i % len(keys)])
        self.i += 1
        with self.lock:
            if self.s is not None:
                self.s.quiet(0.5)
        self.halt.wait(0.5)


class ConfigWriter(threading.Thread):
    """Creates and deletes DNs 59xx and agent groups CGx, PATCHes G1-less
    skills: what a provisioning tool does, through outages."""

    def __init__(self, tenant, rng, cap=None, interval=0.25):
        super().__init__(daemon=True, name="config-writer")
        self.t, self.rng, self.cap, self.interval = tenant, rng, cap, interval
        self.halt = threading.Event()
        self.n = 0
        self.status = collections.Counter()
        self.dns, self.groups = {}, {}     # name -> dbid, as answered 201
        self.tried = set()                 # every name a POST was sent for

    def api(self, method, path, body=None):
        try:
            r = self.t.d.api(method, path, body, timeout=5)
            self.status[r.status] += 1
            return r
        except OSError:
            self.status["no answer"] += 1
            return None

    def one(self):
        self.n += 1
        op = self.rng.random()
        if self.cap is not None and len(self.dns) + len(self.groups) >= self.cap:
            op = 0.4 if op < 0.5 and self.dns or not self.groups else 0.8
        if op < 0.35 or not self.dns:
            num = f"59{self.n:03d}"
            self.tried.add(num)
            r = self.api("POST", "/v1/dns", {"number": num, "type": "Extension",
                                             "switch": self.t.sw})
            if r is not None and r.status == 201:
                self.dns[num] = r.json["dbid"]
        elif op < 0.5:
            num = self.rng.choice(sorted(self.dns))
            r = self.api("DELETE", f"/v1/dns/{self.dns[num]}")
            if r is not None and r.status in (200, 204, 404):
                del self.dns[num]
        elif op < 0.75 or not self.groups:
            name = f"CG{self.n}"
            self.tried.add(name)
            r = self.api("POST", "/v1/agent-groups", {"name": name})
            if r is not None and r.status == 201:
                self.groups[name] = r.json["dbid"]
        elif op < 0.85:
            name = self.rng.choice(sorted(self.groups))
            r = self.api("DELETE", f"/v1/agent-groups/{self.groups[name]}")
            if r is not None and r.status in (200, 204, 404):
                del self.groups[name]
        else:
            self.api("GET", "/v1/dns?limit=100")

    def run(self):
        while not self.halt.is_set():
            self.one()
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(15)


class RoutingApp(threading.Thread):
    """An application on the routing port: queues a task for agent group G1
    every `interval` s (timeout 600 s: what waits at the end is
    still there for the checks), follows GET /v1/events as NDJSON
    from where the stream was when it began (resuming after a lost
    connection from the last position it read), accepts each reservation
    of its own tasks and completes it a second later.  Requests that get no
    answer (the worker killed, the port closed) are tried again, but a POST
    whose answer was lost is not: it may or may not have queued."""

    def __init__(self, tenant, rd, interval=0.5):
        super().__init__(daemon=True, name="routing-app")
        self.t, self.interval = tenant, interval
        self.halt = threading.Event()
        self.created = set()               # ids answered 201
        self.status = collections.Counter()
        self.actions = []                  # requests to send: (at, id, action)
        self.lock = threading.Lock()
        self.positions = []                # the feed's, in the order read
        self.resumes = 0
        last = rd.client().xrevrange(RT_EVENTS, count=1)
        self.start_pos = last[0][0] if last else "0"
        self.feed = threading.Thread(target=self.follow, daemon=True,
                                     name="routing-feed")

    def http(self, method, path, body=None, timeout=5):
        import http.client
        h = http.client.HTTPConnection("127.0.0.1", self.t.ports["routing"],
                                       timeout=timeout)
        try:
            h.request(method, path, json.dumps(body) if body is not None else None,
                      headers={"Authorization": f"Bearer {self.t.token}",
                               "Content-Type": "application/json"})
            r = h.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None)
        finally:
            h.close()

    def follow(self):
        import http.client
        while not self.halt.is_set():
            after = self.positions[-1] if self.positions else self.start_pos
            try:
                h = http.client.HTTPConnection("127.0.0.1", self.t.ports["routing"],
                                               timeout=10)
                h.request("GET", f"/v1/events?after={after}",
                          headers={"Authorization": f"Bearer {self.t.token}",
                                   "Accept": "application/x-ndjson"})
                r = h.getresponse()
                if r.status != 200:
                    r.read()
                    h.close()
                    self.halt.wait(0.5)
                    continue
                while not self.halt.is_set():
                    line = r.readline()
                    if not line:
                        break
                    if not line.strip():
                        continue
                    e = json.loads(line)
                    if e.get("type") == "reset":
                        raise Failed(f"routing feed: reset {e}")
                    self.positions.append(e["position"])
                    if e.get("type") == "reserved" and e.get("id") in self.created:
                        with self.lock:
                            self.actions.append((0, e["id"], "accept"))
                h.close()
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if not self.halt.is_set():
                self.resumes += 1
                self.halt.wait(0.2)

    def act(self, iid, action):
        try:
            s, _ = self.http("POST", f"/v1/interactions/{iid}/{action}")
        except OSError:
            s = "no answer"
        self.status[f"{action} {s}"] += 1
        if s in ("no answer", 503):
            with self.lock:
                self.actions.append((time.monotonic() + 0.5, iid, action))
        elif s == 200 and action == "accept":
            with self.lock:
                self.actions.append((time.monotonic() + 1, iid, "complete"))

    def run(self):
        self.feed.start()
        n = 0
        while not self.halt.is_set():
            n += 1
            try:
                s, b = self.http("POST", "/v1/interactions", {
                    "virtualQueue": VQ, "target": {"agentGroup": self.t.g1},
                    "timeout": 600, "userData": {"n": n}})
            except OSError:
                s, b = "no answer", None
            self.status[f"queue {s}"] += 1
            if s == 201:
                self.created.add(b["id"])
            now = time.monotonic()
            with self.lock:
                due = [x for x in self.actions if x[0] <= now]
                self.actions = [x for x in self.actions if x[0] > now]
            for _, iid, action in due:
                self.act(iid, action)
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(15)
        self.feed.join(15)


class Heartbeat(threading.Thread):
    """Keeps voicesim's heartbeat (its boot id) while it is frozen, so the
    voice link stays up and nothing new happens during the checks."""

    def __init__(self, rd, value):
        super().__init__(daemon=True)
        self.rd, self.value = rd, value
        self.halt = threading.Event()

    def run(self):
        r = self.rd.client()
        while not self.halt.is_set():
            try:
                r.set(key("heartbeat"), self.value, px=3000)
            except redislib.RedisError:
                pass
            self.halt.wait(0.5)

    def stop(self):
        self.halt.set()
        self.join(5)


# ------------------------------------------------------------ the run

class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.faults = collections.Counter()
        self.log = []
        self.checked = []
        self.tmp = tempfile.mkdtemp(prefix="tenantd-chaos-")
        _cleanups.insert(0, self.remove_files)

    def remove_files(self):
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def setup(self):
        why = netns_possible()
        if why:
            raise CannotRun("cannot make a network namespace (needs root or "
                            f"CAP_NET_ADMIN): {why}")
        base = f"tdc{os.getpid() % 100000}"
        sub = 100 + os.getpid() % 100
        k = random.randrange(1, 250)       # not the seeded RNG: the run's own
        self.ns_pg = Netns(base + "p", f"{sub}.{k}")
        self.ns_rd = Netns(base + "r", f"{sub}.{k + 1}")
        self.pg = NsPg(self.ns_pg)
        self.rd = NsRedis(self.ns_rd)
        self.km = KafkaMock(topic=TOPIC, partitions=4)
        _cleanups.append(self.km.stop)
        log(f"PostgreSQL {self.ns_pg.ip}:{self.pg.port} in netns {self.ns_pg.name}; "
            f"Redis {self.ns_rd.ip}:{self.rd.port} in netns {self.ns_rd.name}; "
            f"kafkamock {self.km.bootstrap}; files in {self.tmp}")
        self.t = Tenant(self.tmp, self.pg, self.rd, self.km)
        _cleanups.append(self.stop_tenantd)
        self.t.d.wait_ready(60)
        wait_for(lambda: self.pg.sql("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_name = 'cl_chaos'")[0][0] == 1,
                 60, what="the calling list's table")
        self.records = int(20 + 20 * self.args.minutes)
        self.t.add_records(self.records, 1)

    def start_load(self):
        a = self.args
        dns = [f"50{i:02d}" for i in range(1, N_AGENTS + 1)] + [QUEUE, RP]
        self.desktops = [Desktop(self.t, dns[i::a.desktops]) for i in range(a.desktops)]
        reset = time.strftime("%H:%M", time.gmtime(time.time() + 12 * 3600))
        profile = {"type": "Growing", "reset": [reset]}
        self.stats = [StatsClient(self.t, i, profile) for i in range(a.stats_clients)]
        for c in self.desktops + self.stats:
            c.connect()
            c.start()
        # A Growing statistic is kept over a restart from its first save
        # (every 5 s): let it be saved before anything counts.
        time.sleep(6)
        self.writer = ConfigWriter(self.t, random.Random(self.args.seed + 1))
        self.writer.start()
        self.app = RoutingApp(self.t, self.rd)
        self.app.start()
        self.sim = VoiceSim(os.environ["VOICESIM_BIN"], self.t.d.conf_path, self.tmp, [
            "--agents", str(N_AGENTS), "--rate", str(a.rate), "--to", RP,
            "--talk", "3", "--wrap", "1", "--break", "3", "--patience", "8",
            "--ring", "0.5", "--outbound-mix", "answer=40,busy=35,machine=10,fax=5,sit=10",
            "--outbound-ring", "0.2:0.6", "--busy-after", "0.1", "--outbound-patience", "5",
            "--seed", str(a.seed)])
        _cleanups.append(lambda: self.sim.proc.poll() is None and self.sim.proc.kill())
        st, body = self.t.ob_http("POST", f"/v1/campaign-groups/{self.t.group}/load")
        if st != 200:
            raise CannotRun(f"load campaign: {st} {body}")
        st, body = self.t.ob_http("POST", f"/v1/campaign-groups/{self.t.group}/start")
        if st != 200:
            raise CannotRun(f"start campaign: {st} {body}")

    # -- faults
    def schedule(self):
        kinds = []
        while True:
            if not kinds:
                kinds = list(FAULTS)
                self.rng.shuffle(kinds)
            yield kinds.pop()

    def next_worker(self):
        """Workers in turn, in a seeded order: the events and stats workers
        (whose clients' invariants are checked) first in each round."""
        if not getattr(self, "turn", None):
            a, b = ["events", "stats"], [w for w in WORKERS if w not in ("events", "stats")]
            self.rng.shuffle(a)
            self.rng.shuffle(b)
            self.turn = a + b
        return self.turn.pop(0)

    def inject(self, kind):
        rng = self.rng
        if kind in ("kill9", "stop"):
            w = self.next_worker()
            pids = self.t.worker_pids()
            if w not in pids:
                self.note(f"{kind} {w}: no such worker running now, skipped")
                return
            pid = pids[w]
            if kind == "kill9":
                os.kill(pid, signal.SIGKILL)
                self.note(f"kill -9 {w} (pid {pid})")
            else:
                secs = rng.uniform(1, 8)
                os.kill(pid, signal.SIGSTOP)
                self.note(f"SIGSTOP {w} (pid {pid}) for {secs:.1f} s")
                time.sleep(secs)
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    self.note(f"  {w} (pid {pid}) was killed meanwhile (heartbeat)")
            self.faults[f"{kind} {w}"] += 1
        elif kind == "redis":
            self.rd.stop()
            down = rng.uniform(0.5, 4)
            self.note(f"Redis restart, down {down:.1f} s")
            time.sleep(down)
            self.rd.start()
            self.faults[kind] += 1
        elif kind == "pg":
            self.pg.stop(mode="fast")
            down = rng.uniform(0.5, 4)
            self.note(f"PostgreSQL restart, down {down:.1f} s")
            time.sleep(down)
            self.pg.start()
            self.faults[kind] += 1
        else:
            ns = self.ns_rd if kind == "cut-redis" else self.ns_pg
            secs = rng.uniform(2, 8)
            ns.cut()
            self.note(f"network to {kind[4:]} cut for {secs:.1f} s")
            time.sleep(secs)
            ns.restore()
            self.faults[kind] += 1

    def note(self, msg):
        self.log.append(msg)
        log("fault: " + msg)

    def run_faults(self):
        end = time.monotonic() + self.args.minutes * 60
        sched = self.schedule()
        time.sleep(5)
        while time.monotonic() < end:
            self.inject(next(sched))
            self.sim_alive()
            time.sleep(self.rng.uniform(self.args.gap / 2, self.args.gap * 1.5))

    def sim_alive(self):
        if self.sim.proc.poll() is not None:
            raise Failed(f"voicesim exited with {self.sim.proc.returncode}")

    # -- settle and freeze
    def settle(self):
        log("faults over; settling")
        self.t.d.wait_ready(90)
        for w in ("events", "stats", "outbound"):
            wait_for(lambda w=w: self.session_ok(w), 60, what=f"the {w} port to serve")
        # The campaign runs out while the voice side still answers.
        def records_final():
            rows = self.pg.sql("SELECT record_status, lease_owner FROM cl_chaos")
            return all(s in FINAL and o is None for s, o in rows)
        try:
            wait_for(records_final, 120, interval=0.5, what="every record final")
        except AssertionError as e:
            rows = self.pg.sql("SELECT record_id, record_status, call_result, attempt, "
                               "lease_owner FROM cl_chaos WHERE record_status <> ALL(%s) "
                               "OR lease_owner IS NOT NULL", list(FINAL))
            raise Failed(f"stuck: {e}; records not final: {rows[:20]}") from None
        self.writer.stop()
        self.app.stop()
        # Freeze the voice side: stop voicesim, keep its heartbeat.
        r = self.rd.client()
        boot = r.get(key("heartbeat"))
        if boot is None:
            raise Failed("no voicesim heartbeat in Redis after the settle")
        self.beat = Heartbeat(self.rd, boot)
        self.beat.start()
        self.sim.proc.send_signal(signal.SIGSTOP)
        _cleanups.append(lambda: self.sim.proc.poll() is None
                         and self.sim.proc.send_signal(signal.SIGCONT))
        time.sleep(1)
        log("voice side frozen; checking")

    def session_ok(self, w):
        try:
            s = self.t.session(w, "probe")
            s.close()
            return True
        except (OSError, EOFError, AssertionError):
            return False

    # -- invariants
    def stream(self):
        r = self.rd.client()
        out = []
        last = "-"
        while True:
            got = r.xrange(key("events"), min=last, count=5000)
            if last != "-" and got and got[0][0] == last:
                got = got[1:]
            if not got:
                return out
            for sid, f in got:
                out.append((sid, json.loads(f["event"])))
            last = got[-1][0]

    def check_desktops(self, events):
        for dsk in self.desktops:
            want = [(sid, e.get("eventId")) for sid, e in events
                    if e.get("thisDN") in dsk.dns]

            def caught_up(dsk=dsk, want=want):
                return len(dsk.got) >= len(want)
            try:
                wait_for(caught_up, 60, interval=0.2, what=f"{dsk.name} to catch up")
            except AssertionError:
                pass
            got = [(g[0], g[1]) for g in dsk.got]
            if got != want:
                dup = [x for x, n in collections.Counter(got).items() if n > 1]
                missing = [x for x in want if x not in set(got)]
                extra = [x for x in got if x not in set(want)]
                order = got == sorted(got, key=lambda x: tuple(map(int, x[0].split("-"))))
                raise Failed(f"{dsk.name}: saw {len(got)} events, the stream holds "
                             f"{len(want)} for its DNs; duplicates {dup[:5]}, missing "
                             f"{missing[:5]}, not in the stream {extra[:5]}, in order: "
                             f"{order}; resumes {dsk.resumes}")
            if dsk.errors:
                raise Failed(f"{dsk.name}: {dsk.errors[:3]}")
        n = sum(len(d.got) for d in self.desktops)
        self.checked.append(f"desktops: {len(self.desktops)} desktops saw each of their "
                            f"{n} events once and in order "
                            f"({sum(d.resumes for d in self.desktops)} resumes)")

    def check_stats(self, events):
        want = {
            (QUEUE, "TotalNumberInboundCalls"):
                sum(1 for _, e in events if e["event"] == "EventQueued"
                    and e.get("thisDN") == QUEUE),
            (QUEUE, "TotalNumberAbandonedCalls"):
                sum(1 for _, e in events if e["event"] == "EventAbandoned"
                    and e.get("thisDN") == QUEUE),
            (RP, "TotalNumberInboundCalls"):
                sum(1 for _, e in events if e["event"] == "EventRinging"
                    and e.get("thisDN") == RP),
        }
        logged = {}
        for _, e in events:
            if e["event"] in ("EventAgentLogin", "EventAgentLogout"):
                logged[e.get("thisDN")] = e["event"] == "EventAgentLogin"
        want[("G1", "CurrentNumberLoggedInAgents")] = sum(logged.values())
        last = {}
        for c in self.stats:
            def agrees(c=c):
                last[c.name] = c.values()
                return last[c.name] == want
            try:
                wait_for(agrees, 60, interval=0.5, what=f"{c.name} to equal the recount")
            except AssertionError as e:
                raise Failed(f"{c.name}: statistics {last.get(c.name)} but the recount "
                             f"from voice:events is {want} ({e}); it reconnected "
                             f"{c.reconnects} times") from None
        self.checked.append(f"stats: {len(self.stats)} clients' totals equal the recount "
                            f"{ {f'{k[0]} {k[1]}': v for k, v in want.items()} }")

    def check_config(self):
        types = {"dns": None, "agent-groups": None}
        # The config worker's cache (its GETs) against cfg_object.
        def same():
            for coll in types:
                r = self.t.d.api("GET", f"/v1/{coll}?limit=10000", timeout=10)
                if r.status != 200:
                    return False
                api = {(o["dbid"], o.get("version")) for o in r.json["items"]}
                db_types = [ty for (ty,) in self.pg.sql(
                    "SELECT DISTINCT type FROM cfg_object")]
                best = None
                for ty in db_types:
                    rows = {(d, v) for d, v in self.pg.sql(
                        "SELECT dbid, version FROM cfg_object WHERE type = %s", ty)}
                    if {d for d, _ in rows} == {d for d, _ in api}:
                        best = rows
                if best is None or best != api:
                    rows = {(d, v) for d, v in self.pg.sql(
                        "SELECT dbid, version FROM cfg_object")}
                    self.config_diff = (f"{coll}: only in the cache (dbid, version) "
                                        f"{sorted(api - rows)[:5]}; in the database as "
                                        f"other versions "
                                        f"{sorted(r for r in rows - api if r[0] in {d for d, _ in api})[:5]}")
                    return False
            return True
        try:
            wait_for(same, 30, interval=0.5, what="the config cache to equal PostgreSQL")
        except AssertionError:
            raise Failed(f"config cache differs from cfg_object: {self.config_diff}") from None
        dns = {n for (n,) in self.pg.sql(
            "SELECT data->>'number' FROM cfg_object WHERE data->>'number' LIKE '59%%'")}
        groups = {n for (n,) in self.pg.sql(
            "SELECT data->>'name' FROM cfg_object WHERE data->>'name' LIKE 'CG%%' "
            "AND data->>'name' <> 'CG1'")}
        # Names the writer tried to create that the database does not hold
        # (deleted, or a write that failed): the workers must not know them.
        gone_dns = {n for n in self.writer.tried if n.startswith("59")} - dns
        gone_groups = {n for n in self.writer.tried if n.startswith("CG")} - groups
        gone_dns = set(sorted(gone_dns)[-20:])
        # The events worker: DNs in the database register, deleted ones do not.
        def events_agree():
            s = self.t.session("events", "checker")
            try:
                bad = []
                for dn in sorted(dns) + sorted(gone_dns):
                    r = s.call("RequestRegisterAddress", dn=dn, timeout=10)
                    ok = r["event"] != "EventError"
                    if ok != (dn in dns):
                        bad.append((dn, dn in dns, r))
                self.events_bad = bad
                return not bad
            finally:
                s.close()
        try:
            wait_for(events_agree, 30, interval=1, what="the events worker's DNs")
        except AssertionError:
            raise Failed(f"events worker's configuration differs from PostgreSQL: "
                         f"{self.events_bad[:5]}") from None
        # The stats worker: agent groups in the database open, deleted do not.
        def stats_agree():
            s = self.t.session("stats", "checker")
            try:
                bad = []
                for g in sorted(groups) + sorted(gone_groups)[-20:]:
                    r = s.call("RequestOpenStatistic", object={"type": "GroupAgents",
                                                              "id": g},
                               statistic="CurrentNumberLoggedInAgents",
                               notify={"mode": "none"}, timeout=10)
                    ok = r["event"] == "EventStatisticOpened"
                    if ok != (g in groups):
                        bad.append((g, g in groups, r))
                self.stats_bad = bad
                return not bad
            finally:
                s.close()
        try:
            wait_for(stats_agree, 30, interval=1, what="the stats worker's groups")
        except AssertionError:
            raise Failed(f"stats worker's configuration differs from PostgreSQL: "
                         f"{self.stats_bad[:5]}") from None
        self.checked.append(f"config: cache equals cfg_object; events worker knows the "
                            f"{len(dns)} writer DNs and none of {len(gone_dns)} deleted; "
                            f"stats worker the {len(groups)} groups and none of "
                            f"{len(gone_groups)} deleted (writes: "
                            f"{dict(self.writer.status)})")

    def check_outbound(self):
        rows = {r[0]: r[1:] for r in self.pg.sql(
            "SELECT record_id, record_status, attempt, contact_info, lease_owner "
            "FROM cl_chaos")}
        r = self.rd.client()
        reqs = [json.loads(f["request"]) for _, f in r.xrange(key("requests"))]
        calls = [q for q in reqs if q["request"] == "RequestMakePredictiveCall"]
        guids = collections.Counter(q["userData"]["GSW_CALL_ATTEMPT_GUID"] for q in calls)
        twice = [g for g, n in guids.items() if n > 1]
        if twice:
            raise Failed(f"call attempts asked of the voice side twice: {twice[:5]}")
        per_phone = collections.Counter(q["destination"] for q in calls)
        bad = [(rid, row) for rid, row in rows.items()
               if per_phone[row[2]] != row[1] or row[0] not in FINAL or row[3] is not None]
        if bad:
            raise Failed("records dialled otherwise than their attempt column says, or "
                         "not final: " + "; ".join(
                             f"record {rid} status {row[0]} attempt {row[1]} dialled "
                             f"{per_phone[row[2]]} lease {row[3]}" for rid, row in bad[:5]))
        try:
            wait_for(lambda: self.pg.sql("SELECT count(*) FROM ocs_outbox")[0][0] == 0, 60,
                     interval=0.5, what="ocs_outbox drained")
        except AssertionError as e:
            raise Failed(f"stuck: {e}") from None
        try:
            wait_for(lambda: self.t.d.metric("tenantd_outbound_calls_in_progress") == 0,
                     30, interval=0.5, what="no outbound call in progress")
        except AssertionError as e:
            raise Failed(f"stuck: {e}") from None
        self.checked.append(f"outbound: {len(rows)} records final, {len(calls)} calls, "
                            f"none asked twice, each phone dialled as often as its "
                            f"attempts; outbox drained")

    def check_routing(self):
        app, r = self.app, self.rd.client()
        base = f"tenantd:{{{helpers.TENANT_ID}}}:routing:"

        def rows_live():
            return ({x[0] for x in self.pg.sql("SELECT id FROM rt_interaction")},
                    set(r.zrange(base + "live", 0, -1)))
        def same():
            rows, live = rows_live()
            return rows == live
        try:
            wait_for(same, 30, interval=0.5,
                     what="the journal to hold what Redis holds live")
        except AssertionError:
            rows, live = rows_live()
            raise Failed(f"routing: journal and Redis differ: only in Redis "
                         f"{sorted(live - rows)[:10]}, only in PostgreSQL "
                         f"{sorted(rows - live)[:10]}") from None
        lost = []
        for iid in sorted(app.created):
            st, b = app.http("GET", f"/v1/interactions/{iid}", timeout=10)
            if st != 200:
                lost.append((iid, st, b))
        if lost:
            raise Failed(f"routing: {len(lost)} of {len(app.created)} interactions "
                         f"answered 201 are lost: {lost[:5]}")
        lo = "-" if app.start_pos == "0" else "(" + app.start_pos
        stream = r.xrange(RT_EVENTS, min=lo)
        holding, states = {}, collections.Counter()
        for sid, f in stream:
            e = json.loads(f["e"])
            states[e["type"]] += 1
            if e["type"] == "reserved":
                if e["agent"] in holding:
                    raise Failed(f"routing: agent {e['agent']} reserved for "
                                 f"{e['id']} at {sid} while it held "
                                 f"{holding[e['agent']]}")
                holding[e["agent"]] = e["id"]
            elif e["type"] in ("completed", "rejected", "timed-out", "cancelled",
                               "abandoned"):
                for ag, iid in list(holding.items()):
                    if iid == e["id"]:
                        del holding[ag]
        want = [sid for sid, _ in stream]
        got = app.positions
        if got != want[:len(got)]:
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                     min(len(got), len(want)))
            raise Failed(f"routing feed: read {len(got)} events across "
                         f"{app.resumes} resumes, the stream holds {len(want)}; "
                         f"first difference at {k}: read {got[k:k + 3]}, "
                         f"stream {want[k:k + 3]}")
        if len(got) < len(want) * 0.9:
            raise Failed(f"routing feed: read only {len(got)} of {len(want)} events")
        self.checked.append(
            f"routing: {len(app.created)} tasks queued ({dict(app.status)}); none "
            f"lost; the journal equals Redis's live set; no agent reserved twice in "
            f"{len(stream)} events ({dict(states)}); the feed read {len(got)} of "
            f"them in order, once each, across {app.resumes} resumes")

    def check_alive(self):
        pids = self.t.worker_pids()
        missing = [w for w in WORKERS if w not in pids]
        if missing:
            raise Failed(f"stuck: workers not running: {missing}")
        for w in ("events", "stats", "outbound"):
            if not self.session_ok(w):
                raise Failed(f"stuck: the {w} port does not open a session")
        st, _, body = self.t.d.get("/readyz", timeout=5)
        if st != 200:
            raise Failed(f"stuck: /readyz {st} {body}")
        st, _, body = helpers.http_get(f"http://127.0.0.1:{self.t.ports['routing']}",
                                       "/healthz", timeout=5)
        if st >= 500:
            raise Failed(f"stuck: routing port answered {st} {body}")
        lags = {n: self.t.d.metrics().get((f"tenantd_{n}_lag_seconds", frozenset()))
                for n in ("events", "stats")}
        self.checked.append("stuck: every worker running, its port serving, /readyz 200, "
                            "no outbound call in progress (last voice event's lag when "
                            f"read, not checked: {lags})")

    def check_logs(self):
        self.stop_tenantd()
        problems = check_daemon(self.t.d, allow_errors=True)
        if problems:
            raise Failed("tenantd at stop: " + "; ".join(problems))
        self.checked.append("logs: tenantd stopped with status 0, no crash or "
                            "sanitizer report, no worker left")

    def stop_tenantd(self):
        d = getattr(self, "t", None)
        if d is not None and d.d.alive():
            d.d.stop(signal.SIGTERM, timeout=20)

    def sabotage(self, what):
        """Break one invariant on purpose, to see its check fail."""
        r = self.rd.client()
        if what == "desktop":           # a desktop that lost one event
            d = max(self.desktops, key=lambda d: len(d.got))
            del d.got[len(d.got) // 2]
        elif what == "stats":           # totals lost: no snapshot, worker killed
            r.delete(f"tenantd:{{{helpers.TENANT_ID}}}:stats:growing")
            old = self.t.worker_pids()["stats"]
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: self.t.worker_pids().get("stats") not in (None, old), 30,
                     what="a new stats worker")
            r.delete(f"tenantd:{{{helpers.TENANT_ID}}}:stats:growing")
        elif what == "config":          # a row removed behind the API's back
            self.pg.sql("DELETE FROM cfg_object WHERE dbid = %s",
                        next(iter(self.writer.dns.values())))
        elif what == "routing":         # a waiting task's row lost from the journal
            live = r.zrange(f"tenantd:{{{helpers.TENANT_ID}}}:routing:live", 0, -1)
            if not live:
                raise Failed("sabotage routing: nothing live to take out")
            self.pg.sql("DELETE FROM rt_interaction WHERE id = %s", live[0])
        elif what == "outbound":        # one call asked of the voice side twice
            last = [f for _, f in r.xrange(key("requests"))
                    if "RequestMakePredictiveCall" in f["request"]][-1]
            r.xadd(key("requests"), last)
        log(f"sabotaged: {what}")

    def check(self):
        if self.args.sabotage:
            self.sabotage(self.args.sabotage)
        events = self.stream()
        log(f"voice:events holds {len(events)} events")
        self.check_desktops(events)
        self.check_stats(events)
        self.check_config()
        self.check_outbound()
        self.check_routing()
        self.check_alive()
        for c in self.desktops + self.stats:
            c.stop()
        self.beat.stop()
        self.sim.proc.send_signal(signal.SIGCONT)
        self.sim.stop()
        self.check_logs()

    def summary(self):
        print("\n== chaos summary")
        print(f"  seed {self.args.seed}, {self.args.minutes} min of faults")
        print("  faults injected:")
        for k, n in sorted(self.faults.items()):
            print(f"    {k:<20} {n}")
        print(f"    {'total':<20} {sum(self.faults.values())}")
        print("  invariants checked:")
        for c in self.checked:
            print(f"    {c}")


def bench_result(args, c, ok):
    """The line run.sh's summary collects, when make bench runs this."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    with open(path, "a") as f:
        f.write(f"chaos: {args.minutes:g} min, seed {args.seed}|faults|"
                f"{sum(c.faults.values())}|-|-|every invariant|"
                f"{'met' if ok else 'MISSED'}\n")


def cleanup():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - go on cleaning
            print(f"chaos: cleanup: {e!r}", file=sys.stderr)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("CHAOS_SEED", random.randrange(1 << 31))))
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes of faults")
    ap.add_argument("--gap", type=float, default=4.0, help="mean seconds between faults")
    ap.add_argument("--rate", type=float, default=1.0, help="inbound calls per second")
    ap.add_argument("--desktops", type=int, default=4)
    ap.add_argument("--stats-clients", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the files (logs)")
    ap.add_argument("--sabotage", choices=("desktop", "stats", "config", "outbound",
                                           "routing"),
                    help="break that invariant before the checks: the run must fail")
    args = ap.parse_args()
    print(f"chaos: seed {args.seed} (rerun with --seed {args.seed} or CHAOS_SEED={args.seed})",
          flush=True)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    c = Chaos(args)
    rc = 0
    try:
        c.setup()
        c.start_load()
        c.run_faults()
        c.settle()
        c.check()
        c.summary()
        print(f"chaos: PASS, seed {args.seed}")
        bench_result(args, c, True)
    except CannotRun as e:
        print(f"chaos: cannot run: {e}", file=sys.stderr)
        rc = 2
    except (Failed, AssertionError) as e:
        c.summary()
        print(f"chaos: FAIL, seed {args.seed}: {e}", file=sys.stderr)
        print("chaos: fault log:\n  " + "\n  ".join(c.log), file=sys.stderr)
        if getattr(c, "t", None) is not None:
            print(c.t.d.diagnostics(40), file=sys.stderr)
        print(f"chaos: files kept in {c.tmp}", file=sys.stderr)
        c.args.keep = True
        bench_result(args, c, False)
        rc = 1
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print(f"chaos: ERROR, seed {args.seed}", file=sys.stderr)
        rc = 1
    finally:
        cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
