# SPDX-License-Identifier: Apache-2.0
"""Redis failover through Sentinel: a primary and a replica (replicaof)
and three sentinels (quorum 2, down-after 1 s) on loopback, started with
`redis-server --sentinel`; tenantd with the config, events, stats and
routing workers given redis.sentinels and redis.master_name, and
tools/voicesim (the same configuration) making calls.

The primary is killed with SIGKILL (or paused with SIGSTOP, as a hung or
partitioned server whose connections stay open) while a desktop is registered on the
events port, statistics are open on the stats port and the routing port
has an interaction queued.  The sentinels' failover time is measured
(from the kill to the moment they name the replica), then the time each
worker takes to work on the new primary: a config write and a token
issued (the config worker), that token accepted on the events and stats
ports (their token checks), events reaching the desktop again, a
statistic counting calls again, the routing port answering and queueing,
the metrics worker's Redis probe answered again.
Each must be back within the failover time plus one backoff (3 s here,
for a loaded machine).  What was acknowledged before the kill (a token,
an interaction, agents' logins) is there after it.  The replica got no
command from tenantd while it was one; nor does the paused primary once it
is back and made a replica (what it still had from before is the loss
docs/operations.md describes).

Skipped when $VOICESIM_BIN is not set (make e2e sets it)."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import redis as redislib

from evclient import Session, session_opens
from helpers import config_api_ready, free_port, wait_for, VoiceSim

MASTER = "tenantd-main"
SLACK = 3.0         # one backoff, and the checks' own pace, on a busy machine

TEST_NAME = "tenantd-test"    # this test's own connections


class Node:
    """One redis-server, plain or --sentinel, on a free loopback port."""

    def __init__(self, top, name, lines, sentinel=False):
        self.port = free_port()
        self.name = name
        self.conf = os.path.join(top, f"{name}.conf")
        self.log = os.path.join(top, f"{name}.log")
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndir {top}\n"
                    f"logfile {self.log}\n" + "".join(x + "\n" for x in lines))
        argv = ["redis-server", self.conf] + (["--sentinel"] if sentinel else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.r = redislib.Redis(host="127.0.0.1", port=self.port,
                                decode_responses=True, socket_timeout=2,
                                client_name=TEST_NAME)
        wait_for(self.ping, 10, what=f"{name} on port {self.port}")

    def ping(self):
        try:
            return self.r.ping()
        except redislib.RedisError:
            return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def strangers(self, seconds=1.0):
        """Clients seen here within seconds that are neither a sentinel
        (named sentinel-...), nor a replication link, nor this test: such as
        tenantd's or voicesim's connections."""
        seen = []
        end = time.monotonic() + seconds
        while True:
            seen += [c for c in self.r.client_list()
                     if not c["name"].startswith("sentinel-")
                     and c["name"] != TEST_NAME
                     and not set(c["flags"]) & {"M", "S"}]
            if time.monotonic() >= end:
                return seen
            time.sleep(0.05)


@pytest.fixture
def cluster():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    top = tempfile.mkdtemp(prefix="tenantd-sentinel-")
    nodes = []
    try:
        primary = Node(top, "primary", ["save \"\"", "appendonly no"])
        nodes.append(primary)
        replica = Node(top, "replica", ["save \"\"", "appendonly no",
                                        f"replicaof 127.0.0.1 {primary.port}"])
        nodes.append(replica)
        sentinels = []
        for i in range(3):
            s = Node(top, f"sentinel{i}", [
                f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2",
                f"sentinel down-after-milliseconds {MASTER} 1000",
                f"sentinel failover-timeout {MASTER} 4000",
                f"sentinel parallel-syncs {MASTER} 1"], sentinel=True)
            nodes.append(s)
            sentinels.append(s)

        def known():
            for s in sentinels:
                m = s.r.execute_command("SENTINEL", "MASTER", MASTER)
                m = dict(zip(m[::2], m[1::2])) if isinstance(m, list) else m
                if int(m["num-slaves"]) != 1 or int(m["num-other-sentinels"]) != 2:
                    return False
            return True
        wait_for(known, 20, interval=0.2,
                 what="the sentinels to know the replica and each other")
        yield primary, replica, sentinels
    finally:
        for n in nodes:
            n.kill()
        shutil.rmtree(top, ignore_errors=True)


def master_of(sentinels):
    """The port the sentinels (most of them) name as master, or None."""
    ports = []
    for s in sentinels:
        try:
            a = s.r.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
            ports.append(int(a[1]))
        except (redislib.RedisError, TypeError, IndexError):
            pass
    for p in ports:
        if ports.count(p) >= 2:
            return p
    return None


class Site:
    """tenantd (config, events, stats, routing) through the sentinels, 8
    agents on 5001-5008, queue 6000, routing point 6100, virtual queue 8001,
    and voicesim making calls to the queue."""

    def __init__(self, tenantd, sentinels, voicesim_bin, tmp):
        self.ports = {w: free_port() for w in ("events", "stats", "routing")}
        workers = {w: {"enabled": True, "listen": f"127.0.0.1:{p}"}
                   for w, p in self.ports.items()}
        workers["events"]["logout_grace"] = 30.0
        self.d = tenantd({
            "redis": {"host": None, "port": None, "master_name": MASTER,
                      "sentinels": [f"127.0.0.1:{s.port}" for s in sentinels]},
            "workers": workers}, config_worker=True)
        self.token = self.d.admin_token
        config_api_ready(self.d)
        c = self.d.create
        self.sw = sw = c("switches", {"name": "sw1"})
        for i in range(1, 9):
            dn = c("dns", {"number": f"50{i:02d}", "type": "Extension", "switch": sw})
            place = c("places", {"name": f"P{i}", "dns": [dn]})
            login = c("agent-logins", {"loginCode": f"70{i:02d}", "switch": sw})
            c("persons", {"userName": f"agent{i}", "password": "s3cret-pw",
                          "employeeId": f"E{i}", "isAgent": True, "place": place,
                          "agentLogins": [{"agentLogin": login}]})
        c("dns", {"number": "6000", "type": "ACDQueue", "switch": sw})
        c("dns", {"number": "6100", "type": "RoutingPoint", "switch": sw})
        c("dns", {"number": "8001", "type": "VirtualQueue", "switch": sw})
        wait_for(lambda: session_opens(self.ports["stats"], self.token, 1), 20,
                 what="the stats port")
        wait_for(lambda: session_opens(self.ports["events"], self.token, 1), 20,
                 what="the events port")
        self.sim = VoiceSim(voicesim_bin, self.d.conf_path, tmp, [
            "--agents", "8", "--rate", "4", "--ring", "0.2", "--talk", "1.0",
            "--wrap", "0.2", "--notready", "0", "--patience", "30",
            "--seed", "5", "--to", "6000"])

    def session(self, worker, token=None):
        s = Session(self.ports[worker])
        s.open(token or self.token, "sentinel-test")
        return s

    def issue_token(self):
        r = self.d.api("POST", "/v1/auth/token",
                       {"userName": "agent1", "password": "s3cret-pw"}, token=None,
                       timeout=2)
        return r.json["token"] if r.status == 200 else None

    def token_works(self, worker, token):
        return session_opens(self.ports[worker], token, timeout=1)

    def routing(self, method, path, body=None):
        import http.client
        import json
        h = http.client.HTTPConnection("127.0.0.1", self.ports["routing"], timeout=3)
        hdr = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data, hdr["Content-Type"] = json.dumps(body), "application/json"
        try:
            h.request(method, path, body=data, headers=hdr)
            r = h.getresponse()
            out = r.read()
            return r.status, (json.loads(out) if out else None)
        except (OSError, ValueError):
            return 0, None
        finally:
            h.close()


class Desktop(threading.Thread):
    """An events session registered on every agent's DN, noting when each
    event arrives."""

    def __init__(self, site):
        super().__init__(daemon=True)
        self.s = site.session("events")
        for i in range(1, 9):
            r = self.s.call("RequestRegisterAddress", dn=f"50{i:02d}")
            assert r["event"] == "EventRegistered", r
        self.times = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                m = self.s.read(0.2)
            except Exception:       # noqa: BLE001 -- a timeout, or the end
                m = None
            if m and "event" in m and "ref" not in m:
                self.times.append(time.monotonic())

    def since(self, t):
        return sum(1 for x in self.times if x > t)


class Probe(threading.Thread):
    """Samples the metrics worker's tenant_redis_state: when was it 2
    again after it was seen otherwise?"""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.halt = d, threading.Event()
        self.was_down, self.up_at = False, None

    def run(self):
        while not self.halt.is_set() and self.up_at is None:
            try:
                v = self.d.metric("tenant_redis_state")
            except (OSError, AssertionError):
                v = None
            if v != 2:
                self.was_down = True
            elif self.was_down:
                self.up_at = time.monotonic()
            time.sleep(0.05)


def stat(s, name):
    r = s.call("RequestOpenStatistic", object={"type": "Tenant", "id": "t"},
               statistic=name, notify={"mode": "none"})
    assert r["event"] == "EventStatisticOpened", r
    return r["statisticId"]


def peek(s, sid):
    r = s.call("RequestPeekStatistic", statisticId=sid)
    return r.get("value") if r.get("event") == "EventInfo" else None


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_failover_under_traffic(tenantd, cluster, voicesim_bin, tmp_path, how):
    primary, replica, sentinels = cluster
    site = Site(tenantd, sentinels, voicesim_bin, str(tmp_path))
    desk = probe = None
    try:
        wait_for(lambda: primary.r.exists(
            f"tenantd:{{{site.d.conf['tenant']['id']}}}:voice:heartbeat"), 20,
            what="voicesim writing through the sentinels")
        stats = site.session("stats")
        logged = stat(stats, "CurrentNumberLoggedInAgents")
        calls = stat(stats, "TotalNumberInboundCalls")
        wait_for(lambda: peek(stats, logged) == 8, 15, what="8 agents logged in")
        desk = Desktop(site)
        desk.start()
        wait_for(lambda: desk.since(0) > 0, 10, what="events on the desktop")
        wait_for(lambda: site.routing("GET", "/v1/virtual-queues/8001")[0] == 200,
                 10, what="the routing port")
        st, queued = site.routing("POST", "/v1/interactions",
                                  {"virtualQueue": "8001"})
        assert st == 201, queued
        token = site.issue_token()
        assert token and site.token_works("stats", token)

        # what was acknowledged is on the replica before the kill
        offset = primary.r.info("replication")["master_repl_offset"]
        wait_for(lambda: replica.r.info("replication")["slave_repl_offset"] >= offset,
                 5, what="the replica to catch up")
        before = replica.strangers()
        assert not before, f"a client of the replica: {before}"

        probe = Probe(site.d)
        probe.start()
        wait_for(lambda: site.d.metric("tenant_redis_state") == 2, 5,
                 what="the metrics worker's probe")
        if how == "kill":
            primary.kill()
        else:
            primary.proc.send_signal(signal.SIGSTOP)
        t_kill = time.monotonic()
        wait_for(lambda: master_of(sentinels) == replica.port, 30, interval=0.05,
                 what="the sentinels to promote the replica")
        failover = time.monotonic() - t_kill

        back = {}
        n = [0]

        def config_write():
            n[0] += 1
            r = site.d.api("POST", "/v1/dns", {"number": f"9{n[0]:04d}",
                                               "type": "Extension", "switch": site.sw},
                           timeout=2)
            return r.status == 201 and site.issue_token() is not None

        fresh = {}

        def token_checks():
            fresh.setdefault("t", site.issue_token())
            if fresh["t"] is None:
                del fresh["t"]
                return False
            return (site.token_works("events", fresh["t"])
                    and site.token_works("stats", fresh["t"]))

        at_failover = [None]

        def stats_count():
            v = peek(stats, calls)
            if at_failover[0] is None:
                at_failover[0] = v
                return False
            return v is not None and v > at_failover[0]

        def routing():
            s1, _ = site.routing("GET", "/v1/virtual-queues/8001")
            s2, _ = site.routing("POST", "/v1/interactions", {"virtualQueue": "8001"})
            return s1 == 200 and s2 == 201

        t_promoted = time.monotonic()
        checks = {"metrics": lambda: probe.up_at is not None,
                  "config": config_write, "tokens": token_checks,
                  "events": lambda: desk.since(t_promoted) > 0,
                  "stats": stats_count, "routing": routing}
        deadline = t_kill + failover + 20
        while len(back) < len(checks) and time.monotonic() < deadline:
            for name, check in checks.items():
                try:
                    ok = name not in back and check()
                except (OSError, EOFError):    # a worker still stuck
                    ok = False
                if ok:
                    back[name] = time.monotonic() - t_kill
                    if name == "metrics":
                        back[name] = probe.up_at - t_kill
            time.sleep(0.05)
        report = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(back.items()))
        print(f"\n{how}: sentinel failover {failover:.2f} s after it; "
              f"back on the new primary: {report}")
        assert set(back) == set(checks), f"not back: {set(checks) - set(back)}"
        late = {k: v for k, v in back.items() if v > failover + SLACK}
        assert not late, (f"back later than failover {failover:.2f} s + "
                          f"{SLACK} s: {late}")

        # acknowledged before the kill, there after it
        assert site.token_works("events", token)
        st, got = site.routing("GET", f"/v1/interactions/{queued['id']}")
        assert st == 200 and got["id"] == queued["id"], got
        wait_for(lambda: peek(stats, logged) == 8, 5,
                 what="8 agents logged in after the failover")
        # and every connection is on the new primary
        clients = replica.r.client_list()
        assert len(clients) >= 10, clients
        if how == "pause":
            # the old primary comes back, is made a replica, and is left alone
            primary.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: primary.r.info("replication")["role"] == "slave",
                     20, interval=0.1, what="the sentinels to demote the old primary")
            time.sleep(1)       # its old clients' hang-ups are read
            late = primary.strangers(2.0)
            assert not late, f"a client of the demoted primary: {late}"
    finally:
        if probe is not None:
            probe.halt.set()
        if desk is not None:
            desk.halt.set()
            desk.join(5)
        site.sim.stop()
