# SPDX-License-Identifier: Apache-2.0
"""The routing worker through its real port (HTTP on 5580's stand-in),
with real PostgreSQL and Redis and tools/voicesim as the voice side: the
agents log in and go Ready through the voice request stream, as a desktop
would through the events worker.

A tenant: switch sw1; phones 5001-5004 on places P1-P4, logins 7001-7004,
persons agent1-agent4 with skills (agent1 Sales 3 English 5, agent2 Sales 7,
agent3 Support 4, agent4 Sales 5 English 9); agent group G1 {agent1,
agent2}; place group PG34 {P3, P4}; virtual queues 8001 (no aging) and 8002
(priority +10 every second waited).
"""

import json
import os
import signal
import socket
import threading
import time
import collections
import http.client
import queue

import pytest
import redis as redislib

from evclient import Session, key
import helpers
from helpers import config_api_ready, free_port, wait_for, VoiceSim


class Routing:
    def __init__(self, tenantd, voicesim_bin, rt=None, events=False):
        self.port = free_port()
        section = {"enabled": True, "listen": f"127.0.0.1:{self.port}",
                   "reservation_ttl": 30.0}
        section.update(rt or {})
        workers = {"routing": section}
        if events:
            self.events_port = free_port()
            workers["events"] = {"enabled": True,
                                 "listen": f"127.0.0.1:{self.events_port}"}
        self.d = tenantd({"workers": workers,
                          "log": {"level": os.environ.get("RT_LOG_LEVEL", "info")}},
                         config_worker=True)
        self.token = self.d.admin_token
        config_api_ready(self.d)
        self.redis_port = self.d.conf["redis"]["port"]
        c = self.d.create
        self.sw = sw = c("switches", {"name": "sw1"})
        self.skills = {n: c("skills", {"name": n}) for n in ("Sales", "English", "Support")}
        S = self.skills
        skills = {1: [(S["Sales"], 3), (S["English"], 5)], 2: [(S["Sales"], 7)],
                  3: [(S["Support"], 4)], 4: [(S["Sales"], 5), (S["English"], 9)]}
        self.persons, self.places = {}, {}
        for i in (1, 2, 3, 4):
            dn = c("dns", {"number": f"500{i}", "type": "Extension", "switch": sw})
            self.places[i] = c("places", {"name": f"P{i}", "dns": [dn]})
            login = c("agent-logins", {"loginCode": f"700{i}", "switch": sw})
            self.persons[i] = c("persons", {
                "userName": f"agent{i}", "isAgent": True, "place": self.places[i],
                "agentLogins": [{"agentLogin": login}],
                "skills": [{"skill": s, "level": lv} for s, lv in skills[i]]})
        self.g1 = c("agent-groups", {"name": "G1",
                                      "members": [self.persons[1], self.persons[2]]})
        self.pg34 = c("place-groups", {"name": "PG34",
                                        "members": [self.places[3], self.places[4]]})
        self.vq1 = c("dns", {"number": "8001", "type": "VirtualQueue", "switch": sw})
        self.vq2 = c("dns", {"number": "8002", "type": "VirtualQueue", "switch": sw,
                             "priorityIncrement": 10, "priorityInterval": 1})
        self.sim = VoiceSim(voicesim_bin, self.d.conf_path, self.d.tmpdir)
        self.r = redislib.Redis(host="127.0.0.1", port=self.redis_port,
                                decode_responses=True)
        wait_for(self.up, 20, what="the routing port")
        wait_for(lambda: self.r.exists(key("heartbeat")), 20, what="voicesim")
        wait_for(lambda: self.r.xinfo_groups(key("requests")), 20,
                 what="voicesim reading requests")

    def stop(self):
        self.sim.stop()

    def up(self):
        try:
            s, b = self.http("GET", "/v1/virtual-queues/8001")
            return s == 200
        except OSError:
            return False

    def http(self, method, path, body=None, token=None, headers=None, raw=None):
        h = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdr = {"Authorization": f"Bearer {token or self.token}"}
        hdr.update(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body)
            hdr["Content-Type"] = "application/json"
        h.request(method, path, body=data, headers=hdr)
        r = h.getresponse()
        out = r.read()
        h.close()
        try:
            return r.status, (json.loads(out) if out else None)
        except ValueError:
            return r.status, out

    def queue(self, **body):
        body.setdefault("virtualQueue", "8001")
        return self.http("POST", "/v1/interactions", body)

    def voice(self, request, **fields):
        fields["request"] = request
        fields.setdefault("requestId", f"t-{time.monotonic_ns()}")
        self.r.xadd(key("requests"), {"request": json.dumps(fields)})

    def dn_state(self, dn):
        v = self.r.hget(key("state"), dn)
        return json.loads(v) if v else {}

    def free_agents(self, vq="8001"):
        return self.http("GET", f"/v1/virtual-queues/{vq}")[1]["agentsFree"]

    def ready(self, i, seen=True):
        """Agent i logs in on 500i (if not yet) and goes Ready; with seen,
        until the routing worker counts one more free agent."""
        n = self.free_agents() if seen else 0
        st = self.dn_state(f"500{i}").get("agent")
        if not st:
            self.voice("RequestAgentLogin", dn=f"500{i}", agentId=f"700{i}")
        self.voice("RequestAgentReady", dn=f"500{i}")
        wait_for(lambda: (self.dn_state(f"500{i}").get("agent") or {}).get("state")
                 == "Ready", 10, what=f"agent {i} Ready")
        if seen:
            wait_for(lambda: self.free_agents() > n, 10,
                     what=f"the routing worker sees agent {i} free")

    def not_ready(self, i):
        self.voice("RequestAgentNotReady", dn=f"500{i}")
        wait_for(lambda: (self.dn_state(f"500{i}").get("agent") or {}).get("state")
                 == "NotReady", 10, what=f"agent {i} NotReady")

    def get(self, iid):
        return self.http("GET", f"/v1/interactions/{iid}")[1]


@pytest.fixture
def rt(tenantd, voicesim_bin):
    t = Routing(tenantd, voicesim_bin)
    yield t
    t.stop()


def test_longest_idle_agent_of_a_group_then_the_queue(rt):
    rt.ready(1)
    time.sleep(0.05)
    rt.ready(2)
    rt.ready(3)                         # not in G1
    time.sleep(0.3)
    s, a = rt.queue(target={"agentGroup": rt.g1})
    assert s == 201 and a["state"] == "reserved", a
    assert a["agent"] == rt.persons[1] and a["dn"] == "5001"   # idle longest
    s, b = rt.queue(target={"agentGroup": rt.g1})
    assert s == 201 and b["state"] == "reserved" and b["agent"] == rt.persons[2], b
    s, c = rt.queue(target={"agentGroup": rt.g1}, userData={"CustomerId": "C9"})
    assert s == 201 and c["state"] == "queued" and c["position"] == 1, c
    assert c["userData"] == {"CustomerId": "C9"}
    # the agent takes it, finishes: the next one is reserved for it
    s, x = rt.http("POST", f"/v1/interactions/{a['id']}/accept")
    assert s == 200 and x["state"] == "accepted", x
    assert rt.get(c["id"])["state"] == "queued"
    s, x = rt.http("POST", f"/v1/interactions/{a['id']}/complete")
    assert s == 200, x
    wait_for(lambda: rt.get(c["id"]).get("state") == "reserved", 5,
             what="the waiting one reserved")
    got = rt.get(c["id"])
    assert got["agent"] == rt.persons[1] and got["dn"] == "5001"
    s, x = rt.http("GET", f"/v1/interactions/{a['id']}")
    assert s == 200 and x["state"] == "completed", x


def test_longest_idle_follows_a_fresh_ready(rt):
    """A Ready agent made Ready again is idle from then: the free list,
    kept longest idle first, moves it to the end."""
    for i in (1, 2, 3):
        rt.ready(i)
        time.sleep(0.05)
    rt.voice("RequestAgentReady", dn="5001")
    time.sleep(0.5)
    got = []
    for _ in range(3):
        s, a = rt.queue()
        assert s == 201 and a["state"] == "reserved", a
        got.append(a["agent"])
    assert got == [rt.persons[2], rt.persons[3], rt.persons[1]], got


def test_skill_targets_and_strategies(rt):
    for i in (1, 2, 3, 4):
        rt.ready(i)
    time.sleep(0.3)
    # most skilled in Sales: agent2 (7), not the longest idle (agent1)
    s, a = rt.queue(target="Sales >= 3", strategy="MostSkilled")
    assert s == 201 and a["agent"] == rt.persons[2], a
    # English > 5 & Sales: only agent4
    s, b = rt.queue(target="English>5 & Sales")
    assert s == 201 and b["agent"] == rt.persons[4], b
    # a place group: P3, P4; agent4 is taken, so agent3
    s, c = rt.queue(target={"placeGroup": rt.pg34})
    assert s == 201 and c["agent"] == rt.persons[3], c
    # one agent by dbid, taken: it waits
    s, d = rt.queue(target={"agent": rt.persons[2]})
    assert s == 201 and d["state"] == "queued", d
    # any agent left: agent1
    s, e = rt.queue()
    assert s == 201 and e["agent"] == rt.persons[1], e


def test_bad_requests_queue_nothing(rt):
    cases = [
        ({"target": "Sales >= "}, 422, "at 9"),
        ({"target": "Salse"}, 422, "unknown skill"),
        ({"target": "(Sales"}, 422, "parenthes"),
        ({"priority": -1}, 422, "priority"),
        ({"priority": "high"}, 422, "priority"),
        ({"timeout": 0}, 422, "timeout"),
        ({"target": {"agentGroup": 999999}}, 422, "no such AgentGroup"),
        ({"target": {"skill": 1}}, 422, "unknown kind"),
        ({"strategy": "Fastest"}, 422, "strategy"),
        ({"steps": [{"after": 5}]}, 422, "steps[0]"),
        ({"steps": [{"after": 5, "target": "Sales", "strategy": "Fastest"}]}, 422,
         "steps[0].strategy"),
        ({"steps": [{"after": 5, "target": "Sales", "colour": "red"}]}, 422,
         "steps[0]"),
        ({"colour": "red"}, 422, "unknown field"),
        ({"virtualQueue": "9999"}, 404, "no virtual queue"),
        ({"userData": {"blob": "x" * 70000}}, 413, "userData too large"),
    ]
    for body, status, text in cases:
        s, r = rt.queue(**body)
        assert s == status and text in r["message"], (body, s, r)
    # the configuration refuses a malformed expression when it is written
    s, _, r = rt.d.api("POST", "/v1/dns", {
        "number": "6699", "type": "RoutingPoint", "switch": rt.sw,
        "virtualQueue": rt.vq1, "routeTarget": "Sales >= & English"})
    assert s == 422 and "routeTarget" in r["message"] and "at 9" in r["message"], r
    s, _, r = rt.d.api("POST", "/v1/agent-groups", {
        "name": "bad", "skillExpression": "(Sales"})
    assert s == 422 and "parenthesis" in r["message"], r
    s, r = rt.http("POST", "/v1/interactions", raw=b"{not json")
    assert s == 400
    s, r = rt.http("POST", "/v1/interactions", {"virtualQueue": "8001"},
                   token="not-a-token")
    assert s == 401
    s, r = rt.http("GET", "/v1/virtual-queues/8001/interactions")
    assert s == 200 and r["interactions"] == [], r
    assert rt.r.zcard(f"tenantd:{{{rt.d.conf['tenant']['id']}}}:routing:live") == 0


def test_rights_on_the_virtual_queue(rt):
    c = rt.d.create
    reader = c("persons", {"userName": "reader", "password": "pw-reader-1"})
    c("access-groups", {"name": "readers", "members": [reader], "permissions": [
        {"collection": "dns", "rights": ["read"], "dbid": rt.vq1}]})
    s, _, tok = rt.d.api("POST", "/v1/auth/token",
                      {"userName": "reader", "password": "pw-reader-1"}, token=None)
    assert s == 200, tok
    t = tok["token"]
    s, r = rt.http("POST", "/v1/interactions", {"virtualQueue": "8001"}, token=t)
    assert s == 403, r
    s, r = rt.http("GET", "/v1/virtual-queues/8001", token=t)
    assert s == 200, r
    s, r = rt.http("GET", "/v1/virtual-queues/8002", token=t)
    assert s == 403, r
    s, a = rt.queue()
    assert s == 201
    s, r = rt.http("DELETE", f"/v1/interactions/{a['id']}", token=t)
    assert s == 403
    s, r = rt.http("GET", f"/v1/interactions/{a['id']}", token=t)
    assert s == 200 and r["state"] == "queued"


def test_priority_then_age_orders_the_queue(rt):
    s, a = rt.queue(priority=1)
    s, b = rt.queue(priority=5)
    s, c = rt.queue(priority=5)
    s, lst = rt.http("GET", "/v1/virtual-queues/8001/interactions")
    assert [x["id"] for x in lst["interactions"]] == [b["id"], c["id"], a["id"]]
    assert [x["position"] for x in lst["interactions"]] == [1, 2, 3]
    # a raised priority moves it up
    s, r = rt.http("PATCH", f"/v1/interactions/{a['id']}", {"priority": 9})
    assert s == 200 and r["priority"] == 9 and r["position"] == 1, r
    s, r = rt.http("PATCH", f"/v1/interactions/{a['id']}", {"state": "x"})
    assert s == 422
    # aging: in 8002 an old priority-0 one overtakes a newer priority-15 one
    s, old = rt.queue(virtualQueue="8002")
    time.sleep(2.1)                     # +20
    s, new = rt.queue(virtualQueue="8002", priority=15)
    assert rt.get(old["id"])["position"] == 1
    assert rt.get(new["id"])["position"] == 2
    # the first agent free takes the first in order
    rt.ready(1, seen=False)
    wait_for(lambda: rt.get(old["id"]).get("state") == "reserved", 5,
             what="the aged one reserved")
    assert rt.get(new["id"])["state"] == "queued"


def test_positions_follow_the_order_in_a_long_queue(rt):
    """A queue that does not age keeps its waiting interactions sorted
    (priority, then age): a position counts the ones ahead, a freed agent
    takes the first in that order that it fits.  Checked against the order
    computed here, through creations, a raised priority, cancellations and
    reservations."""
    import random
    rnd = random.Random(13)
    waiting = []                        # [priority, arrival, id, target]
    for n in range(60):
        p = rnd.randint(0, 3)
        t = "Support" if n % 7 == 0 else None
        body = {"priority": p}
        if t:
            body["target"] = t
        s, x = rt.queue(**body)
        assert s == 201 and x["state"] == "queued", x
        # the 201's position: behind every one of a priority as high or higher
        assert x["position"] == 1 + sum(1 for w in waiting if w[0] >= p), (n, x)
        waiting.append([p, n, x["id"], t])

    def check():
        order = sorted(waiting, key=lambda w: (-w[0], w[1]))
        for i, w in enumerate(order):
            g = rt.get(w[2])
            assert g["state"] == "queued" and g["position"] == i + 1, (i, w, g)
        s, lst = rt.http("GET", "/v1/virtual-queues/8001/interactions")
        assert [x["id"] for x in lst["interactions"]] == [w[2] for w in order]
        return order

    check()
    # a raised priority moves one up, a lowered one down; cancelled ones go
    top = waiting[49]                   # a Support one (49 % 7 == 0)
    for w, p in ((top, 9), (waiting[3], 0), (waiting[20], 2)):
        s, r = rt.http("PATCH", f"/v1/interactions/{w[2]}", {"priority": p})
        assert s == 200, r
        w[0] = p
    for w in (waiting[10], waiting[0], waiting[59]):
        assert rt.http("DELETE", f"/v1/interactions/{w[2]}")[0] == 204
        waiting.remove(w)
    order = check()
    # agent1 (Sales, English) fits no Support one: it gets the first other
    # one in order, past the Support one ahead of it (49, raised to 9)
    assert order[0] is top and top[3] == "Support"
    first = next(w for w in order if w[3] is None)
    rt.ready(1, seen=False)
    wait_for(lambda: rt.get(first[2]).get("state") == "reserved", 5,
             what="the first one agent1 fits reserved")
    assert rt.get(first[2])["agent"] == rt.persons[1]
    waiting.remove(first)
    # agent3 (Support only) gets the first Support one
    first = next(w for w in order if w[3] == "Support")
    rt.ready(3, seen=False)
    wait_for(lambda: rt.get(first[2]).get("state") == "reserved", 5,
             what="the first Support one reserved for agent3")
    assert rt.get(first[2])["agent"] == rt.persons[3]
    waiting.remove(first)
    check()


def test_widening_steps(rt):
    rt.ready(1)                          # Sales 3
    time.sleep(0.2)
    s, a = rt.queue(target="Sales>=5", steps=[{"after": 1.5, "target": "Sales>=2"}])
    assert s == 201 and a["state"] == "queued", a
    time.sleep(0.8)
    assert rt.get(a["id"])["state"] == "queued"
    wait_for(lambda: rt.get(a["id"]).get("state") == "reserved", 5,
             what="reserved once the step applies")
    assert rt.get(a["id"])["agent"] == rt.persons[1]


def test_a_step_brings_its_own_strategy(rt):
    """Agent1 (Sales 3) has been idle longest, agent2 (Sales 7) is the more
    skilled. Nobody fits the target; a step fits both. Without a strategy of
    its own the step goes on with the interaction's (LongestIdle: agent1);
    with MostSkilled it picks agent2."""
    rt.ready(1)
    time.sleep(0.2)
    rt.ready(2)
    time.sleep(0.2)
    s, a = rt.queue(target="Sales>=9", strategy="LongestIdle",
                    steps=[{"after": 1, "target": "Sales>=1"}])
    assert s == 201 and a["state"] == "queued", a
    wait_for(lambda: rt.get(a["id"]).get("state") == "reserved", 5,
             what="reserved once the step applies")
    assert rt.get(a["id"])["agent"] == rt.persons[1]
    assert rt.http("DELETE", f"/v1/interactions/{a['id']}")[0] == 204
    wait_for(lambda: rt.free_agents() == 2, 5, what="agent1 free again")
    s, b = rt.queue(target="Sales>=9", strategy="LongestIdle",
                    steps=[{"after": 1, "target": "Sales>=1",
                            "strategy": "MostSkilled"}])
    assert s == 201 and b["state"] == "queued", b
    assert b["steps"][0]["strategy"] == "MostSkilled", b
    wait_for(lambda: rt.get(b["id"]).get("state") == "reserved", 5,
             what="reserved once the step applies")
    assert rt.get(b["id"])["agent"] == rt.persons[2]


def test_reject_and_expiry_return_it_to_the_queue(tenantd, voicesim_bin):
    rt = Routing(tenantd, voicesim_bin, rt={"reservation_ttl": 1.0})
    try:
        rt.ready(1)
        time.sleep(0.05)
        rt.ready(2)
        time.sleep(0.2)
        s, a = rt.queue(target={"agentGroup": rt.g1})
        assert a["agent"] == rt.persons[1]
        created = a["created"]
        s, r = rt.http("POST", f"/v1/interactions/{a['id']}/reject")
        assert s == 200, r
        # back in the queue with its age, offered to the other agent
        wait_for(lambda: rt.get(a["id"]).get("agent") == rt.persons[2], 5,
                 what="offered to agent2")
        x = rt.get(a["id"])
        assert x["created"] == created and x["state"] == "reserved"
        # agent2 lets it run out: back again, and to agent1
        wait_for(lambda: rt.get(a["id"]).get("agent") == rt.persons[1], 5,
                 what="expired, offered to agent1")
        # accepting a reservation that is not yours: 403 or 409
        s, r = rt.http("POST", f"/v1/interactions/{a['id']}/accept")
        assert s == 200 and r["state"] == "accepted"
        s, r = rt.http("POST", f"/v1/interactions/{a['id']}/accept")
        assert s == 409, r
    finally:
        for sid, f in rt.r.xrange(f"tenantd:{{{rt.d.conf['tenant']['id']}}}:routing:events"):
            print(sid, f["e"][:200])
        rt.stop()


def test_cancel_and_timeout(rt):
    s, a = rt.queue()
    s, r = rt.http("DELETE", f"/v1/interactions/{a['id']}")
    assert s == 204
    assert rt.get(a["id"])["state"] == "cancelled"
    s, r = rt.http("DELETE", f"/v1/interactions/{a['id']}")
    assert s == 404, r
    s, b = rt.queue(timeout=1)
    wait_for(lambda: rt.get(b["id"]).get("state") == "timed-out", 5,
             what="timed out")


def read_events(port, token, after=None, n=1, sse=False, timeout=5):
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    path = "/v1/events" + (f"?after={after}" if after else "")
    hdr = {"Authorization": f"Bearer {token}"}
    if sse:
        hdr["Accept"] = "text/event-stream"
    h.request("GET", path, headers=hdr)
    r = h.getresponse()
    assert r.status == 200
    out = []
    while len(out) < n:
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if sse and line.startswith(b"data: "):
            out.append(json.loads(line[6:]))
        elif not sse and line.startswith(b"{"):
            out.append(json.loads(line))
    h.close()
    return out


def test_event_stream_resumes(rt):
    s, a = rt.queue()
    s, b = rt.queue()
    ev = read_events(rt.port, rt.token, after="0", n=2)
    assert [(e["type"], e["id"]) for e in ev] == [("queued", a["id"]),
                                                  ("queued", b["id"])]
    pos = ev[0]["position"]
    # a live reader sees what happens next
    got = []
    th = threading.Thread(target=lambda: got.extend(
        read_events(rt.port, rt.token, n=1, sse=True)))
    th.start()
    time.sleep(0.5)
    rt.ready(1, seen=False)
    th.join(10)
    assert [(e["type"], e["id"], e["agent"]) for e in got] == [
        ("reserved", a["id"], rt.persons[1])], got
    # resuming from the first position gives the rest, in order, once
    ev = read_events(rt.port, rt.token, after=pos, n=2)
    assert ev[0]["id"] == b["id"] and ev[0]["type"] == "queued"
    assert ev[1]["type"] == "reserved" and ev[1]["id"] == a["id"]


def test_a_feed_goes_on_over_a_lost_link_and_resets_over_lost_data(rt, redis):
    """The worker's links to Redis cut (CLIENT KILL) while a feed is open:
    Redis kept everything, so the feed goes on from where it was, every
    event once and in order, no reset. Redis restarted empty: the state is
    put back from PostgreSQL under a new epoch and the feed says reset."""
    got, stop = [], threading.Event()

    def follow():
        h = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=30)
        h.request("GET", "/v1/events", headers={
            "Authorization": f"Bearer {rt.token}"})
        r = h.getresponse()
        while not stop.is_set():
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"{"):
                got.append(json.loads(line))
        h.close()

    th = threading.Thread(target=follow, daemon=True)
    th.start()
    time.sleep(0.3)

    def queue():
        def ok():
            s, x = rt.queue()
            return x["id"] if s == 201 else None
        return wait_for(ok, 20, what="a 201")

    ids = [queue() for _ in range(3)]
    rt.r.client_kill_filter(_type="normal", skipme=True)
    ids += [queue() for _ in range(3)]
    wait_for(lambda: {e.get("id") for e in got} >= set(ids), 10,
             what="every event on the feed")
    assert not [e for e in got if e["type"] == "reset"], got
    tid = rt.d.conf['tenant']['id']
    stream = [sid for sid, _ in rt.r.xrange(f"tenantd:{{{tid}}}:routing:events")]
    pos = [e["position"] for e in got]
    assert pos == stream[stream.index(pos[0]):][:len(pos)], (pos, stream)
    redis.stop()
    redis.start()
    wait_for(lambda: [e for e in got if e["type"] == "reset"], 30,
             what="a reset once Redis lost its data")
    stop.set()


def test_a_burst_reaches_every_feed_whole_and_in_order(rt):
    """What a feed is sent in one turn goes out as one chunk: 200
    interactions queued from 10 connections at once reach a live NDJSON
    feed and a live SSE feed each once, whole, in the stream's order."""
    got = {False: [], True: []}

    def reader(sse):
        got[sse].extend(read_events(rt.port, rt.token, n=200, sse=sse,
                                    timeout=20))

    th = [threading.Thread(target=reader, args=(sse,)) for sse in (False, True)]
    for t in th:
        t.start()
    time.sleep(0.5)
    ids = []

    def post():
        for _ in range(20):
            s, x = rt.queue()
            assert s == 201, x
            ids.append(x["id"])

    ps = [threading.Thread(target=post) for _ in range(10)]
    for t in ps:
        t.start()
    for t in ps + th:
        t.join(30)
    for sse in (False, True):
        ev = got[sse]
        assert sorted(e["id"] for e in ev) == sorted(ids), sse
        assert all(e["type"] == "queued" and e["interaction"]["id"] == e["id"]
                   for e in ev)
        pos = [tuple(map(int, e["position"].split("-"))) for e in ev]
        assert pos == sorted(pos) and len(set(pos)) == 200, sse


def test_feeds_whose_clients_vanish_are_let_go(rt):
    """Feeds whose clients close (or reset) their connections while events
    are coming: the write that finds one gone ends that feed alone (under
    ASan, no use after free: the teardown reads the log), the others and
    the worker go on, and a stop after it is clean."""
    import socket
    socks = []
    for i in range(6):
        s = socket.create_connection(("127.0.0.1", rt.port))
        s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: "
                  f"Bearer {rt.token}\r\n\r\n".encode())
        socks.append(s)
    time.sleep(0.3)
    for i in range(20):
        assert rt.queue()[0] == 201
        if i % 3 == 0 and socks:
            s = socks.pop()
            if i % 2:           # a reset, not a close
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
    ev = read_events(rt.port, rt.token, after="0", n=20)
    assert len(ev) == 20
    for s in socks:
        s.close()
    for i in range(5):
        assert rt.queue()[0] == 201
    assert rt.http("GET", "/v1/virtual-queues/8001")[1]["waiting"] == 25


def test_urs_position_and_expected_wait(rt):
    """Scripted flow with a known answer: one agent takes an interaction
    every second and handles it for a second, so interactions leave the
    queue one a second (urs: position x 1 s) and the handle time is 1 s
    with one agent (urs2: position x 1 s)."""
    s, r = rt.http("GET", "/urs/call/max/lvq/8001?aqt=urs")
    assert s == 200 and r == {"pos": 1, "ewt": -1}, r      # nothing known
    ids = [rt.queue()[1]["id"] for _ in range(6)]
    rt.ready(1, seen=False)
    for _ in range(4):
        wait_for(lambda: any(rt.get(i).get("state") == "reserved" for i in ids),
                 5, what="one reserved")
        res = next(i for i in ids if rt.get(i).get("state") == "reserved")
        rt.http("POST", f"/v1/interactions/{res}/accept")
        time.sleep(1.0)
        rt.http("POST", f"/v1/interactions/{res}/complete")
        ids.remove(res)
    wait_for(lambda: rt.get(ids[0]).get("state") == "reserved", 5)
    # four departures, 1 s apart; ids[1] waits second in line
    assert rt.get(ids[1])["position"] == 1
    s, r = rt.http("GET", f"/urs/call/{ids[1]}/lvq/8001?aqt=urs")
    assert r == {"pos": 1, "ewt": 1}, r
    s, r = rt.http("GET", "/urs/call/max/lvq/8001?aqt=urs")
    assert r == {"pos": 2, "ewt": 2}, r
    s, r = rt.http("GET", "/urs/call/max/lvq/8001?aqt=urs2")
    assert r == {"pos": 2, "ewt": 2}, r
    s, r = rt.http("GET", "/urs/call/nope/lvq/8001?aqt=urs")
    assert r == {"pos": -1, "ewt": -1}
    s, r = rt.http("GET", "/urs/call/max/lvq/8001?aqt=bogus")
    assert s == 400
    s, r = rt.http("GET", "/urs/call/max/lvq/9999?aqt=urs")
    assert s == 404


def test_kill9_loses_no_waiting_interaction(rt):
    ids = [rt.queue(priority=p, target=t)[1]["id"]
           for p, t in ((3, "Sales>=3"), (1, {"agentGroup": rt.g1}), (2, None))]
    before = {i: rt.get(i)["position"] for i in ids}
    pid = rt.d.worker_pid("routing")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: rt.d.worker_pid("routing") not in (None, pid), 20,
             what="a new routing worker")
    wait_for(rt.up, 20, what="the routing port again")
    after = {i: rt.get(i)["position"] for i in ids}
    assert after == before
    # their targets still work: the successor read them before its
    # configuration, and parsed them again once it had it
    rt.ready(1, seen=False)
    wait_for(lambda: rt.get(ids[0]).get("state") == "reserved", 5)
    rt.ready(2, seen=False)
    wait_for(lambda: rt.get(ids[2]).get("state") == "reserved", 5)


# ---- routing points ----

def calls_at(rt, dn):
    return [c.get("connId") for c in rt.dn_state(dn).get("calls", [])]


def test_routing_point_calls_are_queued_and_routed(tenantd, voicesim_bin):
    rt = Routing(tenantd, voicesim_bin, events=True)
    try:
        routing_point_calls(rt)
    finally:
        rt.stop()


def routing_point_calls(rt):
    c = rt.d.create
    c("dns", {"number": "6600", "type": "RoutingPoint", "switch": rt.sw,
              "virtualQueue": rt.vq1, "routeAgentGroup": rt.g1,
              "routePriority": 3, "routeTimeout": 60})
    time.sleep(0.5)                     # voicesim and the worker see it
    rt.voice("SimInboundCall", to="6600", **{"from": "+15550101"},
             userData={"CustomerId": "C1"}, patience=0)
    wait_for(lambda: calls_at(rt, "6600"), 5, what="the call at 6600")
    conn = calls_at(rt, "6600")[0]
    s, lst = rt.http("GET", "/v1/virtual-queues/8001/interactions")
    wait_for(lambda: rt.http("GET", "/v1/virtual-queues/8001/interactions")[1]
             ["interactions"], 5, what="the call queued")
    s, lst = rt.http("GET", "/v1/virtual-queues/8001/interactions")
    x = lst["interactions"][0]
    assert x["connId"] == conn and x["routingPoint"] == "6600"
    assert x["priority"] == 3 and x["userData"]["CustomerId"] == "C1", x
    s, u = rt.http("GET", f"/urs/call/{conn}/lvq/8001?aqt=urs")
    assert u["pos"] == 1, u
    rt.ready(3, seen=False)             # not in G1: nothing
    time.sleep(0.5)
    assert calls_at(rt, "6600") == [conn]
    # desktops on 8000 see it as they would any routed call
    rp_desk, agent_desk = Session(rt.events_port), Session(rt.events_port)
    for desk, dn in ((rp_desk, "6600"), (agent_desk, "5002")):
        desk.open(rt.token, "desktop")
        r = desk.call("RequestRegisterAddress", dn=dn)
        assert r["event"] == "EventRegistered", r
    rt.ready(2, seen=False)
    wait_for(lambda: calls_at(rt, "5002") == [conn], 5, what="the call at 5002")
    used = rp_desk.event("EventRouteUsed")
    assert used["connId"] == conn and used["thirdDN"] == "5002", used
    ring = agent_desk.event("EventRinging")
    assert ring["connId"] == conn and ring["thirdDN"] == "6600", ring
    assert ring["userData"]["CustomerId"] == "C1"
    rp_desk.close()
    agent_desk.close()
    assert calls_at(rt, "6600") == []
    wait_for(lambda: rt.http("GET", f"/v1/interactions/{x['id']}")[1].get("state")
             == "accepted", 5, what="accepted")


def test_routing_point_abandon_and_default_destination(rt):
    c = rt.d.create
    c("dns", {"number": "6601", "type": "RoutingPoint", "switch": rt.sw,
              "virtualQueue": rt.vq1, "routeTarget": "Support>=9",
              "routeTimeout": 1, "defaultDestination": "5004"})
    c("dns", {"number": "6602", "type": "RoutingPoint", "switch": rt.sw,
              "virtualQueue": rt.vq2})
    time.sleep(0.5)
    # a caller who gives up
    rt.voice("SimInboundCall", to="6602", patience=1)
    wait_for(lambda: calls_at(rt, "6602"), 5, what="the call at 6602")
    wait_for(lambda: rt.http("GET", "/v1/virtual-queues/8002")[1]["waiting"] == 1,
             5, what="queued")
    wait_for(lambda: not calls_at(rt, "6602"), 5, what="the caller gone")
    wait_for(lambda: rt.http("GET", "/v1/virtual-queues/8002")[1]["waiting"] == 0,
             5, what="abandoned")
    evs = [json.loads(f["e"]) for _, f in rt.r.xrange(
        f"tenantd:{{{rt.d.conf['tenant']['id']}}}:routing:events")]
    assert [e["type"] for e in evs] == ["queued", "abandoned"], evs
    # nobody fits, the timeout passes: to the default destination
    rt.voice("SimInboundCall", to="6601", patience=0)
    wait_for(lambda: calls_at(rt, "6601"), 5, what="the call at 6601")
    conn = calls_at(rt, "6601")[0]
    wait_for(lambda: calls_at(rt, "5004") == [conn], 5,
             what="the call at the default destination")
    evs = [json.loads(f["e"]) for _, f in rt.r.xrange(
        f"tenantd:{{{rt.d.conf['tenant']['id']}}}:routing:events")]
    assert [e["type"] for e in evs][2:] == ["queued", "timed-out"], evs


def test_a_routed_call_ends_when_the_agent_hangs_up(rt):
    c = rt.d.create
    c("dns", {"number": "6603", "type": "RoutingPoint", "switch": rt.sw,
              "virtualQueue": rt.vq1})
    rt.ready(1)
    time.sleep(0.3)
    rt.voice("SimInboundCall", to="6603", patience=0)
    wait_for(lambda: calls_at(rt, "5001"), 5, what="the call at the agent")
    conn = calls_at(rt, "5001")[0]
    rt.voice("RequestAnswerCall", dn="5001", connId=conn)
    time.sleep(0.5)
    rt.voice("RequestReleaseCall", dn="5001", connId=conn)
    tid = rt.d.conf['tenant']['id']
    wait_for(lambda: [json.loads(f["e"])["type"] for _, f in rt.r.xrange(
        f"tenantd:{{{tid}}}:routing:events")] == ["queued", "reserved", "accepted",
                                                  "completed"], 5,
             what="queued, reserved, accepted, completed")
    assert rt.r.zcard(f"tenantd:{{{tid}}}:routing:live") == 0
    # its handle time now feeds urs2
    s, r = rt.http("GET", "/urs/call/max/lvq/8001?aqt=urs2")
    assert r["pos"] == 1 and r["ewt"] >= 0, r


def test_redis_restart_loses_no_waiting_interaction(rt, redis):
    # a task accepted by agent 1, which it holds
    rt.ready(1)
    s, t = rt.queue()
    assert t["state"] == "reserved"
    assert rt.http("POST", f"/v1/interactions/{t['id']}/accept")[0] == 200
    ids = [rt.queue(priority=p, userData={"n": p})[1]["id"] for p in (1, 3, 2)]
    before = {i: rt.get(i) for i in ids}
    redis.stop()
    s, r = rt.queue()
    assert s == 503, r                 # nothing half-written meanwhile
    redis.start()
    # Redis came back empty: the worker puts them back from PostgreSQL
    wait_for(lambda: rt.http("GET", "/v1/virtual-queues/8001")[0] == 200 and
             rt.http("GET", "/v1/virtual-queues/8001")[1]["waiting"] == 3, 30,
             what="the three back")
    for i in ids:
        g = rt.get(i)
        assert g["position"] == before[i]["position"], (g, before[i])
        assert g["userData"] == before[i]["userData"]
        assert abs(g["created"] - before[i]["created"]) < 1000
    # the task is still agent 1's: not offered again, the agent still held
    g = rt.get(t["id"])
    assert g["state"] == "accepted" and g["agent"] == rt.persons[1], g
    time.sleep(1)
    assert all(rt.get(i)["state"] == "queued" for i in ids)
    assert rt.http("POST", f"/v1/interactions/{t['id']}/complete")[0] == 200
    wait_for(lambda: rt.get(ids[1]).get("state") == "reserved", 5,
             what="the first in line reserved for agent 1")


def test_rows_of_ended_interactions_are_swept(rt, redis, pg):
    """A worker killed between an interaction's end and the delete of its
    row leaves the row. A new worker sweeps old rows whose interaction
    Redis does not hold live, so a Redis that then loses its data gets
    back only the waiting ones."""
    s, live = rt.queue(userData={"n": "live"})
    assert s == 201 and live["state"] == "queued", live
    doc = json.dumps({"id": "ended-1", "virtualQueue": "8001", "vq": rt.vq1,
                      "strategy": "LongestIdle", "priority": 0, "timeout": 3600})
    # older than the sweep's 10 minutes, well within the 1 h timeout
    old = int(time.time() * 1000) - 15 * 60 * 1000
    pg.psql(f"INSERT INTO rt_interaction (id, doc, vq, created) VALUES "
            f"('ended-1', '{doc}', {rt.vq1}, {old})", "t100")
    # the live one is as old: age alone takes out nothing
    pg.psql(f"UPDATE rt_interaction SET created = {old} WHERE id = "
            f"'{live['id']}'", "t100")

    def rows():
        return set(pg.psql("SELECT id FROM rt_interaction", "t100").split())

    assert rows() == {"ended-1", live["id"]}
    pid = rt.d.worker_pid("routing")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: rt.d.worker_pid("routing") not in (None, pid), 20,
             what="a new routing worker")
    wait_for(lambda: rows() == {live["id"]}, 20, what="the ended one's row swept")
    assert "taken out of rt_interaction" in rt.d.log_text()
    redis.stop()
    redis.start()
    wait_for(lambda: rt.http("GET", "/v1/virtual-queues/8001")[0] == 200 and
             rt.http("GET", "/v1/virtual-queues/8001")[1]["waiting"] == 1, 30,
             what="the waiting one back")
    assert rt.get(live["id"])["userData"] == {"n": "live"}
    assert rt.http("GET", "/v1/interactions/ended-1")[0] == 404


def test_rows_a_killed_worker_left_go_when_it_restarts(rt, pg):
    """A worker killed between an interaction's end and the delete of its
    row, or between a new one's row and its queueing, leaves a row Redis
    does not hold live. These are young, so the 10-minute rule keeps
    them; the new worker's first sweep takes them out all the same: the
    ended one because Redis says it ended, the never-queued one because a
    dead worker of this instance wrote it. A young row of another writer
    may be a creation on its way and stays (found by the chaos run, whose
    check found such a row 30 s after a kill -9)."""
    s, live = rt.queue(userData={"n": "live"})
    assert s == 201, live
    s, gone = rt.queue(userData={"n": "ended"})
    assert s == 201, gone
    assert rt.http("DELETE", f"/v1/interactions/{gone['id']}")[0] == 204

    def rows():
        return set(pg.psql("SELECT id FROM rt_interaction", "t100").split())

    wait_for(lambda: rows() == {live["id"]}, 10, what="the cancelled one's row gone")
    pid = rt.d.worker_pid("routing")
    master = helpers.proc_stat(pid)[1]
    now = int(time.time() * 1000)
    doc = json.dumps({"virtualQueue": "8001", "vq": rt.vq1, "priority": 0,
                      "strategy": "LongestIdle", "timeout": 3600})
    for iid, owner in ((gone["id"], None),
                       ("orphan-1", f"{socket.gethostname()}/{master}/{pid + 100000}/1"),
                       ("theirs-1", f"elsewhere/{master}/{pid}/1")):
        pg.psql("INSERT INTO rt_interaction (id, doc, vq, created, owner) VALUES "
                f"('{iid}', '{doc}', {rt.vq1}, {now}, "
                f"{'NULL' if owner is None else repr(owner)})", "t100")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: rt.d.worker_pid("routing") not in (None, pid), 20,
             what="a new routing worker")
    wait_for(lambda: rows() == {live["id"], "theirs-1"}, 20,
             what="the ended one's and the orphan's rows swept")
    assert rt.d.metric("tenantd_routing_journal_swept_total") == 2
    assert rt.get(live["id"])["userData"] == {"n": "live"}
    # the new worker's own rows are not orphans
    s, mine = rt.queue(userData={"n": "mine"})
    assert s == 201
    time.sleep(1)
    assert rows() == {live["id"], "theirs-1", mine["id"]}


class AnswerCutProxy(helpers.Proxy):
    """A Proxy that, once armed with some bytes, lets the first chunk a
    client sends holding them reach Redis and loses Redis's answers (and
    the connections): a script that ran, whose answer was lost."""

    armed = None

    def arm(self, needle):
        self.fired.clear()
        self.armed = needle

    def relay(self, data, to_server, state):
        if to_server and self.armed is not None and self.armed in data:
            self.armed = None
            self.lose_answers()
        return data


def test_a_change_whose_answer_is_lost_leaves_the_journal_as_redis(
        tenantd, voicesim_bin, pg):
    """Redis runs an instance's script and the answer is lost with the
    connection. A cancel that ran: its row must go, though the instance
    never heard that it ended (before, it stayed 10 minutes, and a Redis
    that lost its data meanwhile would have brought the cancelled one
    back). A queueing that ran: its creator hears 503, but the interaction
    waits in Redis and its row must stay (before, the row was deleted: a
    waiting interaction that a Redis restart would lose)."""
    a = Routing(tenantd, voicesim_bin)
    proxy = AnswerCutProxy(a.redis_port)
    port_b = free_port()
    b = tenantd({"workers": {"routing": {"enabled": True,
                                         "listen": f"127.0.0.1:{port_b}"}},
                 "redis": {"port": proxy.port}},
                config_worker=True, admin_token=a.token)
    hdr = {"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"}

    def call_b(method, path, body=None):
        try:
            h = http.client.HTTPConnection("127.0.0.1", port_b, timeout=10)
            h.request(method, path, body=json.dumps(body) if body else None,
                      headers=hdr)
            r = h.getresponse()
            out = r.read()
            h.close()
            return r.status, out
        except OSError as e:
            return None, str(e)

    def rows():
        return set(pg.psql("SELECT id FROM rt_interaction", "t100").split())

    def live():
        return set(a.r.zrange(f"tenantd:{{{helpers.TENANT_ID}}}:routing:live", 0, -1))

    try:
        wait_for(lambda: call_b("GET", "/v1/virtual-queues/8001")[0] == 200, 20,
                 what="instance B")
        s, x = a.queue(userData={"n": "cancel-me"})
        assert s == 201
        wait_for(lambda: rows() == {x["id"]}, 10, what="its row")
        # the cancel: its script reaches Redis, its answer does not
        proxy.arm(x["id"].encode() + b"\r\n$9\r\ncancelled")
        st, out = call_b("DELETE", f"/v1/interactions/{x['id']}")
        assert proxy.fired.is_set(), (st, out)
        assert st != 204, (st, out)
        assert a.get(x["id"])["state"] == "cancelled"
        wait_for(lambda: rows() == set(), 15,
                 what="the cancelled one's row taken out by B")
        b.wait_log(r"rows of interactions not live in Redis", timeout=5)

        # the queueing: it ran, its creator hears of a failure
        wait_for(lambda: call_b("GET", "/v1/virtual-queues/8001")[0] == 200, 20,
                 what="instance B again")
        proxy.arm(b'"lost-answer"')
        st, out = call_b("POST", "/v1/interactions",
                         {"virtualQueue": "8001", "userData": {"n": "lost-answer"}})
        assert proxy.fired.is_set(), (st, out)
        assert st != 201, (st, out)
        wait_for(lambda: len(live()) == 1, 10, what="the queued one live in Redis")
        (iid,) = live()
        assert a.get(iid)["userData"] == {"n": "lost-answer"}
        # B checks it against Redis once it answers again, and keeps it
        wait_for(lambda: call_b("GET", "/v1/virtual-queues/8001")[0] == 200, 20,
                 what="instance B again")
        time.sleep(3)
        assert rows() == {iid}
    finally:
        a.stop()
        proxy.stop()


def test_concurrent_posts_are_all_journalled(rt, redis):
    """The journal keeps one batch out at a time; what comes meanwhile goes
    with the next.  400 POSTs from 20 connections at once: each answered
    201 within its time, and each back after Redis restarts empty (so each
    had its row)."""
    ids, errors = [], []

    def post(k):
        h = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=10)
        hdr = {"Authorization": f"Bearer {rt.token}",
               "Content-Type": "application/json"}
        for i in range(20):
            t0 = time.monotonic()
            h.request("POST", "/v1/interactions", body=json.dumps(
                {"virtualQueue": "8001", "userData": {"k": k, "i": i}}),
                headers=hdr)
            r = h.getresponse()
            b = json.loads(r.read())
            if r.status != 201 or b.get("state") != "queued" or \
                    time.monotonic() - t0 > 5:
                errors.append((r.status, b))
            else:
                ids.append(b["id"])
        h.close()

    th = [threading.Thread(target=post, args=(k,)) for k in range(20)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    assert not errors, errors[:3]
    assert len(set(ids)) == 400
    assert rt.http("GET", "/v1/virtual-queues/8001")[1]["waiting"] == 400
    redis.stop()
    redis.start()
    wait_for(lambda: rt.http("GET", "/v1/virtual-queues/8001")[0] == 200 and
             rt.http("GET", "/v1/virtual-queues/8001")[1]["waiting"] == 400, 30,
             what="the 400 back from PostgreSQL")
    s, lst = rt.http("GET", "/v1/virtual-queues/8001/interactions")
    assert sorted(x["id"] for x in lst["interactions"]) == sorted(ids)


def test_posts_that_come_while_the_journal_is_out_go_with_the_next(rt, pg):
    """One journal batch out at a time: POSTs that come while it waits (here
    on a lock held on rt_interaction) are written as the next batch once it
    is answered, and answered 201; nothing is queued before its row is
    written."""
    import psycopg
    out = {}

    def post(k):
        out[k] = rt.queue(userData={"k": k})

    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres "
                         "dbname=t100") as c:
        c.execute("LOCK TABLE rt_interaction IN ACCESS EXCLUSIVE MODE")
        first = threading.Thread(target=post, args=(0,))
        first.start()
        wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
            "'Lock' AND query LIKE 'INSERT INTO rt_interaction%'", "t100").strip()
            == "1", 10, what="the first batch waiting on the lock")
        rest = [threading.Thread(target=post, args=(k,)) for k in (1, 2, 3)]
        for t in rest:
            t.start()
        time.sleep(0.5)
        assert not out, out             # nothing answered, nothing queued
        assert rt.http("GET", "/v1/virtual-queues/8001")[1]["waiting"] == 0
        c.commit()
    for t in [first] + rest:
        t.join()
    assert all(s == 201 and x["state"] == "queued" for s, x in out.values()), out
    assert int(pg.psql("SELECT count(*) FROM rt_interaction", "t100")) == 4


def test_two_instances_never_reserve_one_agent_twice(tenantd, voicesim_bin):
    """Two tenantd on one PostgreSQL and Redis, both queueing and routing to
    the same four agents: from the one event stream, an agent is never
    reserved while it holds another interaction."""
    a = Routing(tenantd, voicesim_bin)
    port_b = free_port()
    b = tenantd({"workers": {"routing": {"enabled": True,
                                         "listen": f"127.0.0.1:{port_b}"}}},
                config_worker=True, admin_token=a.token)
    try:
        wait_for(lambda: a.http("GET", "/v1/virtual-queues/8001")[0] == 200, 20)
        for i in (1, 2, 3, 4):
            a.ready(i)
        ports = [a.port, port_b]
        total, done = 400, []
        stop = threading.Event()

        def conn(port, method, path, body=None):
            h = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            h.request(method, path, body=json.dumps(body) if body else None,
                      headers={"Authorization": f"Bearer {a.token}"})
            r = h.getresponse()
            out = r.read()
            h.close()
            return r.status, json.loads(out) if out else None

        def produce():
            for n in range(total):
                s, _ = conn(ports[n % 2], "POST", "/v1/interactions",
                            {"virtualQueue": "8001", "priority": n % 3})
                assert s == 201, (n, _)

        def handle():
            h = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
            h.request("GET", "/v1/events?after=0",
                      headers={"Authorization": f"Bearer {a.token}"})
            r = h.getresponse()
            k = 0
            while len(done) < total and not stop.is_set():
                line = r.fp.readline()
                if not line:
                    break
                if not line.startswith(b"{"):
                    continue
                e = json.loads(line)
                if e["type"] == "reserved":
                    k += 1
                    p = ports[k % 2]
                    conn(p, "POST", f"/v1/interactions/{e['id']}/accept")
                    s, _ = conn(p, "POST", f"/v1/interactions/{e['id']}/complete")
                    if s == 200:
                        done.append(e["id"])
            h.close()

        def b_up():
            try:
                return conn(port_b, "GET", "/v1/virtual-queues/8001")[0] == 200
            except OSError:
                return False
        # B answers 503 until it has read the configuration
        wait_for(b_up, 20, what="instance B")
        th = threading.Thread(target=handle)
        th.start()
        produce()
        th.join(120)
        stop.set()
        assert len(done) == total
        holding = {}
        tid = a.d.conf['tenant']['id']
        n = 0
        for _, f in a.r.xrange(f"tenantd:{{{tid}}}:routing:events"):
            e = json.loads(f["e"])
            if e["type"] == "reserved":
                n += 1
                assert e["agent"] not in holding, (e, holding[e["agent"]])
                holding[e["agent"]] = e["id"]
            elif e["type"] in ("completed", "rejected", "timed-out", "cancelled"):
                for ag, iid in list(holding.items()):
                    if iid == e["id"]:
                        del holding[ag]
        assert n == total
    finally:
        a.stop()


def test_an_instance_catches_up_before_it_says_not_found(tenantd, voicesim_bin):
    """A client told of an interaction by one instance (its 201, its feed)
    and asking another about it at once is never told 404: the other
    catches up with the routing stream first (found by the two-instance
    test, which accepted through B what A's feed had just reserved)."""
    a = Routing(tenantd, voicesim_bin)
    port_b = free_port()
    # B reaches Redis through a link that delays every byte 150 ms: B
    # hears of A's changes well after the client does
    slow = DelayProxy(a.redis_port, 0.15)
    b = tenantd({"workers": {"routing": {"enabled": True,
                                         "listen": f"127.0.0.1:{port_b}"}},
                 "redis": {"port": slow.port}},
                config_worker=True, admin_token=a.token)
    try:
        wait_for(lambda: a.http("GET", "/v1/virtual-queues/8001")[0] == 200, 20)
        hdr = {"Authorization": f"Bearer {a.token}",
               "Content-Type": "application/json"}

        def b_up():
            try:
                h = http.client.HTTPConnection("127.0.0.1", port_b, timeout=5)
                h.request("GET", "/v1/virtual-queues/8001", headers=hdr)
                return h.getresponse().status == 200
            except OSError:
                return False
        wait_for(b_up, 20, what="instance B")
        ha = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
        hb = http.client.HTTPConnection("127.0.0.1", port_b, timeout=10)
        statuses = collections.Counter()
        for n in range(16):
            ha.request("POST", "/v1/interactions", json.dumps(
                {"virtualQueue": "8001", "userData": {"n": n}}), headers=hdr)
            r = ha.getresponse()
            iid = json.loads(r.read())["id"]
            assert r.status == 201
            if n % 2:
                hb.request("DELETE", f"/v1/interactions/{iid}", headers=hdr)
            else:
                hb.request("PATCH", f"/v1/interactions/{iid}",
                           json.dumps({"priority": 5}), headers=hdr)
            r = hb.getresponse()
            r.read()
            statuses[r.status] += 1
        assert statuses == {204: 8, 200: 8}, statuses
        # an id no instance knows is still 404, after at most a second
        t0 = time.monotonic()
        hb.request("DELETE", "/v1/interactions/nope", headers=hdr)
        r = hb.getresponse()
        r.read()
        assert r.status == 404 and time.monotonic() - t0 < 1.5
        ha.close()
        hb.close()
    finally:
        a.stop()
        slow.close()


def test_a_change_whose_event_is_late_says_what_it_did(tenantd, voicesim_bin):
    """The routing stream read 1.5 s late (every XREAD held by a relay):
    a POST's own event does not come back within the second it waits, so
    it is answered with what the script did, "queued" (it used to say
    "ended" of an interaction just queued), and a read after shows it."""
    a = Routing(tenantd, voicesim_bin)
    port_b = free_port()
    slow = DelayProxy(a.redis_port, 1.5, only=b"XREAD")
    b = tenantd({"workers": {"routing": {"enabled": True,
                                         "listen": f"127.0.0.1:{port_b}"}},
                 "redis": {"port": slow.port}},
                config_worker=True, admin_token=a.token)
    try:
        hdr = {"Authorization": f"Bearer {a.token}",
               "Content-Type": "application/json"}

        def call(method, path, body=None):
            h = http.client.HTTPConnection("127.0.0.1", port_b, timeout=10)
            try:
                h.request(method, path, body and json.dumps(body), headers=hdr)
                r = h.getresponse()
                return r.status, json.loads(r.read() or b"null")
            finally:
                h.close()

        def b_up():
            try:
                return call("GET", "/v1/virtual-queues/8001")[0] == 200
            except OSError:
                return False
        wait_for(b_up, 20, what="instance B")
        t0 = time.monotonic()
        s, x = call("POST", "/v1/interactions", {"virtualQueue": "8001"})
        took = time.monotonic() - t0
        assert s == 201 and x == {"id": x["id"], "state": "queued"}, x
        assert 0.9 < took < 3, took
        wait_for(lambda: call("GET", f"/v1/interactions/{x['id']}")[1].get(
            "position") == 1, 10, what="B hears of it")
        assert call("GET", f"/v1/interactions/{x['id']}")[1]["state"] == "queued"
    finally:
        a.stop()
        slow.close()


class DelayProxy:
    """DelayProxy - a TCP relay to 127.0.0.1:upstream that holds every
    chunk `delay` seconds before passing it on, in order; with `only`,
    only a client's chunk that holds those bytes (the rest in order
    behind it), nothing the server sends."""

    def __init__(self, upstream, delay, only=None):
        import socket
        self.upstream, self.delay, self.only = upstream, delay, only
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.closed = False
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        while not self.closed:
            try:
                c, _ = self.ls.accept()
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                return
            self.socks += [c, u]
            for src, dst in ((c, u), (u, c)):
                q = queue.Queue()
                threading.Thread(target=self._read, args=(src, q, src is c),
                                 daemon=True).start()
                threading.Thread(target=self._send, args=(dst, q), daemon=True).start()

    def _read(self, src, q, client):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            held = self.only is None or (client and self.only in data)
            q.put((time.monotonic() + (self.delay if held else 0), data))
            if not data:
                return

    def _send(self, dst, q):
        while True:
            t, data = q.get()
            time.sleep(max(0.0, t - time.monotonic()))
            try:
                if not data:
                    dst.shutdown(1)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.closed = True
        for x in [self.ls] + self.socks:
            try:
                x.close()
            except OSError:
                pass


def test_round_robin_fewest_calls_and_group_expressions(rt):
    c = rt.d.create
    eng = c("agent-groups", {"name": "English speakers",
                             "skillExpression": "English >= 5"})
    for i in (1, 2, 3, 4):
        rt.ready(i)
    time.sleep(0.3)
    def take(**kw):
        s, a = rt.queue(**kw)
        assert s == 201 and a["state"] == "reserved", a
        rt.http("POST", f"/v1/interactions/{a['id']}/accept")
        rt.http("POST", f"/v1/interactions/{a['id']}/complete")
        return a["agent"]
    # round robin: the persons in dbid order, wrapping
    got = [take(strategy="RoundRobin") for _ in range(5)]
    p = sorted(rt.persons.values())
    start = p.index(got[0])
    assert got == [p[(start + k) % 4] for k in range(5)], (got, p)
    # fewest calls today: the one with fewest accepted so far
    counts = {x: got.count(x) for x in p}
    fewest = [x for x in p if counts[x] == min(counts.values())]
    assert take(strategy="FewestCalls") in fewest
    # a group defined by its skill expression: agents 1 and 4
    a = take(target={"agentGroup": eng})
    assert a in (rt.persons[1], rt.persons[4])


def test_odds_and_ends_of_the_api(rt):
    # an ended interaction is still read for a while
    s, a = rt.queue(userData={"k": "v"})
    rt.http("DELETE", f"/v1/interactions/{a['id']}")
    s, r = rt.http("GET", f"/v1/interactions/{a['id']}")
    assert s == 200 and r["state"] == "cancelled" and r["userData"] == {"k": "v"}, r
    assert rt.http("GET", "/v1/interactions/nope")[0] == 404
    # 405 is JSON
    s, r = rt.http("PUT", "/v1/interactions")
    assert s == 405 and r["error"] == "MethodNotAllowed", r
    # a routing point's fields are not for requests
    s, r = rt.queue(connId="0000000100000001", routingPoint="6600")
    assert s == 422 and "connId" in r["message"], r
    # a group of virtual queues
    c = rt.d.create
    c("dn-groups", {"name": "Sales", "members": [rt.vq1, rt.vq2]})
    rt.queue(virtualQueue="8002")
    s, r = rt.http("GET", "/urs/call/max/lvq/Sales.GQ?aqt=urs")
    assert s == 200 and r["pos"] == 1, r      # 8001 is empty: the shorter
    # the metrics
    mport = rt.d.conf["workers"]["metrics"]["listen"].split(":")[1]
    h = http.client.HTTPConnection("127.0.0.1", int(mport), timeout=5)
    h.request("GET", "/metrics")
    text = h.getresponse().read().decode()
    for name in ("tenantd_routing_cancelled_total 1",
                 'tenantd_routing_waiting{virtual_queue="8002"} 1',
                 "tenantd_routing_time_to_route_seconds_bucket",
                 "tenantd_routing_routed_total", "tenantd_routing_abandoned_total",
                 "tenantd_routing_timed_out_total",
                 "tenantd_routing_reservations_rejected_total",
                 "tenantd_routing_reservations_expired_total"):
        assert name in text, name


def test_a_feed_ends_when_its_token_is_revoked(rt):
    c = rt.d.create
    reader = c("persons", {"userName": "reader", "password": "pw-reader-1"})
    c("access-groups", {"name": "readers", "members": [reader], "permissions": [
        {"collection": "dns", "rights": ["read"], "dbid": rt.vq1}]})
    s, _, tok = rt.d.api("POST", "/v1/auth/token",
                         {"userName": "reader", "password": "pw-reader-1"}, token=None)
    h = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=15)
    h.request("GET", "/v1/events", headers={"Authorization": f"Bearer {tok['token']}"})
    r = h.getresponse()
    assert r.status == 200
    rt.queue()
    # a new password revokes the reader's tokens: the stream ends
    s, _, _ = rt.d.api("PATCH", f"/v1/persons/{reader}", {"password": "pw-reader-2"})
    assert s == 200
    t0 = time.monotonic()
    body = r.read()                      # to the end of the stream
    assert time.monotonic() - t0 < 10
    lines = [json.loads(x) for x in body.splitlines() if x.startswith(b"{")]
    assert [e["type"] for e in lines] == ["queued"], lines
    h.close()
