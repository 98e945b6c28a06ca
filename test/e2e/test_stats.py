# SPDX-License-Identifier: Apache-2.0
"""The stats worker (port 2060) end to end, with the voice side scripted
through Redis (docs/voice-redis.md) and every value worked out by hand:
agent states, group counts, queue waits, totals and averages, service
factor, profiles, notification modes, validity on voice link loss,
restart of the worker keeping states and totals, multimedia capacity,
bad requests."""

import json
import os
import signal
import time

import pytest

from evclient import Session, Voice, key, session_opens
from helpers import TENANT_ID, config_api_ready, free_port, wait_for


class StatsTenant:
    """tenantd with config and stats workers; a switch, phones 5001-5003
    on places P1-P3, agent logins 7001-7003, persons E1-E3 (agents), agent
    group G1 {E1, E2}, queue 6000, routing point 6100, DN groups Q {6000}
    and QR {6000, 6100}."""

    def __init__(self, tenantd, stats=None):
        self.port = free_port()
        section = {"enabled": True, "listen": f"127.0.0.1:{self.port}"}
        section.update(stats or {})
        self.d = tenantd({"workers": {"stats": section}}, config_worker=True)
        self.token = self.d.admin_token
        config_api_ready(self.d)
        c = self.d.create
        sw = c("switches", {"name": "sw1"})
        self.persons = {}
        for i in (1, 2, 3):
            dn = c("dns", {"number": f"500{i}", "type": "Extension", "switch": sw})
            place = c("places", {"name": f"P{i}", "dns": [dn]})
            login = c("agent-logins", {"loginCode": f"700{i}", "switch": sw})
            self.persons[i] = c("persons", {
                "userName": f"agent{i}", "employeeId": f"E{i}", "isAgent": True,
                "place": place, "agentLogins": [{"agentLogin": login}]})
        c("agent-groups", {"name": "G1", "members": [self.persons[1], self.persons[2]]})
        q = c("dns", {"number": "6000", "type": "ACDQueue", "switch": sw})
        rp = c("dns", {"number": "6100", "type": "RoutingPoint", "switch": sw})
        c("dn-groups", {"name": "Q", "members": [q]})
        c("dn-groups", {"name": "QR", "members": [q, rp]})
        wait_for(self.up, 20, what="the stats port")

    def up(self):
        return session_opens(self.port, self.token, timeout=1)

    def link_up(self):
        s = self.session()
        try:
            r = s.call("RequestOpenStatistic", object={"type": "Tenant", "id": "t"},
                       statistic="CurrentNumberLoggedInAgents", notify={"mode": "none"})
            return r.get("valid") is True
        finally:
            s.close()

    def session(self):
        s = Session(self.port)
        s.open(self.token, "wallboard")
        return s


@pytest.fixture
def st(tenantd, redis):
    t = StatsTenant(tenantd)
    t.voice = Voice(redis.port)
    t.voice.beat()
    wait_for(t.link_up, 10, what="the voice link, as the stats worker sees it")
    yield t
    Voice.stop_all()


T0 = 1_800_000_000_000      # event times in ms: far from "now", all explicit


def ev(t, name, dn, at, **fields):
    """One voice event at T0 + at seconds."""
    return t.voice.event(name, thisDN=dn, time=T0 + int(at * 1000), **fields)


def open_stat(s, typ, oid, stat, **kw):
    r = s.call("RequestOpenStatistic", object={"type": typ, "id": oid},
               statistic=stat, **kw)
    assert r["event"] == "EventStatisticOpened", r
    return r["statisticId"]


def peek(s, sid):
    r = s.call("RequestPeekStatistic", statisticId=sid)
    assert r["event"] == "EventInfo", r
    return r["value"]


def wait_value(s, sid, want, timeout=5):
    def ok():
        v = peek(s, sid)
        return v == want or (isinstance(want, dict) and isinstance(v, dict)
                             and all(v.get(k) == w for k, w in want.items()))
    wait_for(ok, timeout, what=f"statistic {sid} to be {want}")


def test_agent_state_and_group_counts(st):
    s = st.session()
    state = open_stat(s, "Agent", "E1", "CurrentAgentState")
    ready = open_stat(s, "GroupAgents", "G1", "CurrentNumberReadyAgents")
    logged = open_stat(s, "GroupAgents", "G1", "CurrentNumberLoggedInAgents")
    place = open_stat(s, "Place", "P1", "CurrentAgentState")
    assert peek(s, state)["state"] == "LoggedOut"
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    ev(st, "EventAgentReady", "5001", 1, agentId="7001", workMode="ManualIn")
    ev(st, "EventAgentLogin", "5002", 2, agentId="7002")
    ev(st, "EventAgentReady", "5002", 3, agentId="7002")
    ev(st, "EventAgentLogin", "5003", 4, agentId="7003")   # not in G1
    ev(st, "EventAgentReady", "5003", 5, agentId="7003")
    wait_value(s, ready, 2)
    assert peek(s, logged) == 2
    v = peek(s, state)
    assert v["state"] == "Ready" and v["agentId"] == "7001" and v["dn"] == "5001"
    assert v["since"] == T0 + 1000 and v["workMode"] == "ManualIn"
    assert peek(s, place)["agentId"] == "7001"
    # A call: E1 rings, talks; Ready count drops while it does.
    ev(st, "EventRinging", "5001", 10, connId="c1", callType="Inbound",
       otherDN="+1555", userData={})
    wait_value(s, ready, 1)
    assert peek(s, state)["state"] == "Ringing"
    ev(st, "EventEstablished", "5001", 12, connId="c1", callType="Inbound")
    wait_value(s, state, {"state": "Talking", "connId": "c1"})
    ev(st, "EventReleased", "5001", 40, connId="c1", callType="Inbound")
    ev(st, "EventAgentNotReady", "5001", 40, agentId="7001", workMode="AfterCallWork")
    wait_value(s, state, {"state": "AfterCallWork"})
    assert peek(s, ready) == 1
    ev(st, "EventAgentLogout", "5002", 50, agentId="7002")
    wait_value(s, logged, 1)


def test_queue_service_factor_and_averages(st):
    """Calls 1-4 enter queue 6000 at t=0,10,20,30.  1: answered by E1 after
    5 s; 2: answered by E2 after 25 s; 3: abandoned after 8 s (within 20:
    not counted against); 4: abandoned after 30 s.  ServiceFactor(20) =
    100 * 1 within / (2 answered + 1 late abandoned) = 33.333."""
    s = st.session()
    sf = open_stat(s, "Queue", "6000", "ServiceFactor")
    entered = open_stat(s, "Queue", "6000", "TotalNumberInboundCalls")
    answered = open_stat(s, "Queue", "6000", "TotalNumberAnsweredCalls")
    abandoned = open_stat(s, "Queue", "6000", "TotalNumberAbandonedCalls")
    asa = open_stat(s, "Queue", "6000", "AverageSpeedOfAnswer")
    waiting = open_stat(s, "GroupQueues", "Q", "CurrentNumberWaitingCalls")
    aht = open_stat(s, "Agent", "E1", "AverageHandlingTime")
    talk = open_stat(s, "Agent", "E1", "TotalTalkTime")
    for i, at in enumerate((0, 10, 20, 30), 1):
        ev(st, "EventQueued", "6000", at, connId=f"q{i}", otherDN="+1555")
    wait_value(s, waiting, 4)
    # 1: to E1 at 5 s, talks 60 s, 10 s wrap-up.
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    ev(st, "EventDiverted", "6000", 5, connId="q1", thirdDN="5001")
    ev(st, "EventRinging", "5001", 5, connId="q1", callType="Inbound")
    ev(st, "EventEstablished", "5001", 5, connId="q1", callType="Inbound")
    ev(st, "EventReleased", "5001", 65, connId="q1", callType="Inbound")
    ev(st, "EventAgentNotReady", "5001", 65, agentId="7001", workMode="AfterCallWork")
    ev(st, "EventAgentReady", "5001", 75, agentId="7001")
    # 3: abandoned at 28 (waited 8); 2: to E2 at 35 (waited 25).
    ev(st, "EventAbandoned", "6000", 28, connId="q3")
    ev(st, "EventAgentLogin", "5002", 0, agentId="7002")
    ev(st, "EventDiverted", "6000", 35, connId="q2", thirdDN="5002")
    ev(st, "EventRinging", "5002", 35, connId="q2", callType="Inbound")
    ev(st, "EventEstablished", "5002", 35, connId="q2", callType="Inbound")
    # 4: abandoned at 60 (waited 30).
    ev(st, "EventAbandoned", "6000", 60, connId="q4")
    wait_value(s, waiting, 0)
    assert peek(s, entered) == 4
    assert peek(s, answered) == 2
    assert peek(s, abandoned) == 2
    assert peek(s, sf) == pytest.approx(33.333, abs=0.01)
    assert peek(s, asa) == pytest.approx(15.0)          # (5 + 25) / 2
    assert peek(s, aht) == pytest.approx(70.0)          # (60 + 10) / 1
    assert peek(s, talk) == pytest.approx(60.0)


def test_a_call_through_a_routing_point_and_a_queue_counts_once(st):
    """A call rings at routing point 6100, is diverted to queue 6000 and
    answered by E1: the routing point and the queue count it each, and so
    once the DN group QR that holds both, the DN group Q and the tenant."""
    s = st.session()
    counts = {}
    for typ, oid in (("RoutingPoint", "6100"), ("Queue", "6000"),
                     ("GroupQueues", "QR"), ("GroupQueues", "Q"),
                     ("Tenant", "t")):
        for stat in ("TotalNumberInboundCalls", "TotalNumberAnsweredCalls"):
            counts[(oid, stat)] = open_stat(s, typ, oid, stat)
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    ev(st, "EventAgentReady", "5001", 0, agentId="7001")
    ev(st, "EventRinging", "6100", 1, connId="r1", otherDN="+1555")
    ev(st, "EventDiverted", "6100", 2, connId="r1", thirdDN="6000")
    ev(st, "EventQueued", "6000", 2, connId="r1", otherDN="+1555")
    ev(st, "EventDiverted", "6000", 4, connId="r1", thirdDN="5001")
    ev(st, "EventRinging", "5001", 4, connId="r1", callType="Inbound")
    ev(st, "EventEstablished", "5001", 6, connId="r1", callType="Inbound")
    wait_value(s, counts[("t", "TotalNumberAnsweredCalls")], 1)
    got = {k: peek(s, sid) for k, sid in counts.items()}
    assert got == {k: 1 for k in counts}, got


def test_notification_modes(st):
    s = st.session()
    ch = open_stat(s, "GroupAgents", "G1", "CurrentNumberLoggedInAgents")
    none = open_stat(s, "GroupAgents", "G1", "CurrentNumberReadyAgents",
                     notify={"mode": "none"})
    per = open_stat(s, "Tenant", "t", "CurrentNumberLoggedInAgents",
                    notify={"mode": "periodic", "interval": 0.3})
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    info = s.wait(lambda m: m.get("event") == "EventInfo" and m["statisticId"] == ch)
    assert info["value"] == 1
    ticks = [m for m in s.collect(1.2) if m.get("statisticId") == per]
    assert len(ticks) >= 2 and all(m["value"] == 1 for m in ticks)
    assert not [m for m in s.seen if m.get("statisticId") == none
                and m.get("event") == "EventInfo" and "ref" not in m]


def test_insensitivity(st):
    s = st.session()
    sid = open_stat(s, "Queue", "6000", "TotalNumberInboundCalls",
                    notify={"mode": "changes", "insensitivity": 50})
    got = []
    for i in range(1, 7):
        ev(st, "EventQueued", "6000", i, connId=f"x{i}")
    wait_value(s, sid, 6)
    got = [m["value"] for m in s.seen if m.get("statisticId") == sid
           and m.get("event") == "EventInfo" and "ref" not in m]
    # From 0 every change counts; then only a change of more than 50 %.
    assert got[0] == 1 and all(b > a * 1.5 for a, b in zip(got, got[1:])), got


def test_validity_follows_the_voice_link(st):
    s = st.session()
    wait_for(lambda: open_stat(s, "Agent", "E1", "CurrentAgentState") and
             s.seen[-1].get("valid") is True, 5, what="a valid statistic")
    sid = s.seen[-1]["statisticId"]
    st.voice.stop_beat()
    m = s.wait(lambda m: m.get("event") == "EventStatisticInvalid"
               and m["statisticId"] == sid, 8)
    assert "voice" in m["reason"]
    st.voice.beat()
    s.wait(lambda m: m.get("event") == "EventStatisticValid" and m["statisticId"] == sid, 8)


def test_bad_requests(st):
    s = st.session()
    cases = [
        ({"object": {"type": "Agent", "id": "nobody"}, "statistic": "CurrentAgentState"},
         "UnknownObject"),
        ({"object": {"type": "Planet", "id": "x"}, "statistic": "CurrentAgentState"},
         "UnknownObject"),
        ({"object": {"type": "Agent", "id": "E1"}, "statistic": "NoSuchType"},
         "UnknownStatistic"),
        ({"object": {"type": "Queue", "id": "6000"}, "statistic": "CurrentAgentState"},
         "NotApplicable"),
        ({"object": {"type": "Agent", "id": "E1"}, "statistic": "TotalTalkTime",
          "profile": {"type": "Sliding", "window": 5, "step": 10}}, "BadProfile"),
        ({"object": {"type": "Queue", "id": "6000"}, "statistic": "TotalNumberInboundCalls",
          "profile": {"type": "SinceLogin"}}, "BadProfile"),
        ({"object": {"type": "Agent", "id": "E1"}, "statistic": "TotalTalkTime",
          "notify": {"mode": "sometimes"}}, "BadNotify"),
        ({"object": {"type": "Agent", "id": "E1"},
          "statistic": {"category": "TotalTime", "actions": "Flying"}}, "BadArgument"),
    ]
    for fields, code in cases:
        r = s.call("RequestOpenStatistic", **fields)
        assert r["event"] == "EventError" and r["code"] == code, (fields, r)
    r = s.call("RequestPeekStatistic", statisticId=999)
    assert r["code"] == "NoSuchStatistic"
    r = s.call("RequestFly")
    assert r["code"] == "UnknownRequest"


def test_sliding_window_and_inline_type(st):
    s = st.session()
    sid = open_stat(s, "Queue", "6000",
                    {"category": "TotalNumber", "actions": ["CallEntered"],
                     "filter": "userData.Segment=Gold"},
                    profile={"type": "Sliding", "window": 2, "step": 1})
    now = int(time.time() * 1000)
    st.voice.event("EventQueued", thisDN="6000", connId="s1", time=now,
                   userData={"Segment": "Gold"})
    st.voice.event("EventQueued", thisDN="6000", connId="s2", time=now,
                   userData={"Segment": "Silver"})
    wait_value(s, sid, 1)
    wait_value(s, sid, 0, timeout=5)        # out of the 2 s window


def test_restart_keeps_states_and_totals(st):
    s = st.session()
    talk = open_stat(s, "Queue", "6000", "TotalNumberInboundCalls")
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    ev(st, "EventAgentReady", "5001", 1, agentId="7001")
    for i in range(3):
        ev(st, "EventQueued", "6000", 2 + i, connId=f"r{i}")
    wait_value(s, talk, 3)
    time.sleep(6)       # a snapshot (2 s) and a save of the totals (5 s)
    old = st.d.worker_pid("stats")
    os.kill(old, signal.SIGKILL)
    ev(st, "EventQueued", "6000", 9, connId="r9")   # while it is down
    wait_for(lambda: st.d.worker_pid("stats") not in (None, old), 10,
             what="a new stats worker")
    wait_for(st.up, 10, what="the new stats worker")
    s = st.session()
    state = open_stat(s, "Agent", "E1", "CurrentAgentState")
    assert peek(s, state)["state"] == "Ready"
    total = open_stat(s, "Queue", "6000", "TotalNumberInboundCalls")
    wait_value(s, total, 4)


AGENTS_KEY = f"tenantd:{{{TENANT_ID}}}:stats:agents"


def agents_hash(st):
    return {k: json.loads(v) for k, v in st.voice.r.hgetall(AGENTS_KEY).items()}


def test_agent_states_in_redis(st, redis):
    """stats:agents holds every agent's CurrentAgentState by employeeId,
    written as it changes, and whole again when Redis comes back empty."""
    wait_for(lambda: set(agents_hash(st)) == {"E1", "E2", "E3"}, 10,
             what="every agent in stats:agents")
    assert agents_hash(st)["E2"]["state"] == "LoggedOut"
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    ev(st, "EventAgentReady", "5001", 1, agentId="7001")
    wait_for(lambda: agents_hash(st)["E1"].get("state") == "Ready", 5,
             what="E1 Ready in stats:agents")
    e1 = agents_hash(st)["E1"]
    assert e1["since"] == T0 + 1000 and e1["agentId"] == "7001" and e1["dn"] == "5001"
    # Redis restarts empty: the worker writes every agent again.
    redis.proc.send_signal(signal.SIGKILL)
    redis.proc.wait()
    redis.proc = None
    redis.start()
    st.voice = Voice(redis.port)
    st.voice.beat()
    wait_for(st.link_up, 10, what="the voice link back")
    # A new voice side (a new boot): it tells its state in the hash too.
    ev(st, "EventAgentNotReady", "5001", 5, agentId="7001", reason="Lunch",
       state={"dn": "5001", "calls": [], "agent": {
           "agentId": "7001", "state": "NotReady", "reason": "Lunch"}})
    wait_for(lambda: agents_hash(st).get("E1", {}).get("state") == "NotReady", 10,
             what="E1 NotReady in stats:agents after the restart")
    got = agents_hash(st)
    assert set(got) == {"E1", "E2", "E3"}, got
    assert got["E1"]["reason"] == "Lunch"


def test_voice_side_restart_that_only_clears_its_state(st, redis):
    """A voice side restarts (a new boot id) and only rewrites its state
    hash, as docs/voice-redis.md allows: the stats worker drops the calls
    and agents the hash no longer lists, and keeps those it lists."""
    s = st.session()
    e1 = open_stat(s, "Agent", "E1", "CurrentAgentState")
    e2 = open_stat(s, "Agent", "E2", "CurrentAgentState")
    waiting = open_stat(s, "Queue", "6000", "CurrentNumberWaitingCalls")
    a1 = {"agentId": "7001", "state": "Ready"}
    a2 = {"agentId": "7002", "state": "Ready"}
    call = {"connId": "k1", "state": "Established", "callType": "Inbound"}
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001",
       state={"dn": "5001", "agent": a1, "calls": []})
    ev(st, "EventAgentLogin", "5002", 0, agentId="7002",
       state={"dn": "5002", "agent": a2, "calls": []})
    ev(st, "EventQueued", "6000", 1, connId="k2",
       state={"dn": "6000", "calls": [{"connId": "k2", "state": "Queued"}]})
    ev(st, "EventRinging", "5001", 1, connId="k1", callType="Inbound",
       state={"dn": "5001", "agent": a1, "calls": [call]})
    ev(st, "EventEstablished", "5001", 2, connId="k1", callType="Inbound",
       state={"dn": "5001", "agent": a1, "calls": [call]})
    wait_for(lambda: peek(s, e1)["state"] == "Talking", 5, what="E1 talking")
    assert peek(s, waiting) == 1
    # The new start knows E2 only: no event about E1, k1 or k2.
    st.voice.stop_beat()
    r = st.voice.r
    p = r.pipeline(transaction=True)
    p.delete(key("state"))
    p.hset(key("state"), "5002", json.dumps({"dn": "5002", "agent": a2, "calls": []}))
    p.execute()
    st.voice = Voice(redis.port)
    st.voice.boot = "local-new-boot"
    st.voice.beat()
    wait_for(lambda: peek(s, e1)["state"] == "LoggedOut", 10,
             what="E1 dropped with the voice side's restart")
    assert peek(s, waiting) == 0
    assert peek(s, e2)["state"] == "NotReady"     # kept: still logged in


def test_multimedia_capacity(st):
    api = st.d.api
    r = api("POST", "/v1/applications", {
        "name": "StatServer", "type": "StatServer",
        "options": {"capacity:blended": {"voice": 1, "chat": 3, "email": 1,
                                         "exclusive": "voice"}}})
    assert r.status == 201, r.text
    r = api("PATCH", f"/v1/persons/{st.persons[1]}",
            {"userProperties": {"stats": {"capacityRule": "blended"}}})
    assert r.status == 200, r.text
    time.sleep(0.5)
    s = st.session()
    sid = open_stat(s, "Agent", "E1", "CurrentAgentStatus")
    ev(st, "EventAgentLogin", "5001", 0, agentId="7001")
    ev(st, "EventAgentReady", "5001", 1, agentId="7001")
    for media, n in (("chat", 2), ("email", 0)):
        r = s.call("RequestAgentMediaState", agent="E1", media=media, state="Ready",
                   interactions=n)
        assert r["event"] == "EventAck", r
    # Chats in progress: voice (exclusive) cannot come; chat 1 more; email 1.
    wait_value(s, sid, {"canTake": ["chat", "email"]})
    v = peek(s, sid)
    assert v["media"]["chat"] == {"state": "Ready", "interactions": 2,
                                  "capacity": 3, "available": 1}
    s.call("RequestAgentMediaState", agent="E1", media="chat", state="Ready",
           interactions=0)
    wait_value(s, sid, {"canTake": ["voice", "chat", "email"]})
    # A voice call: everything else stops.
    ev(st, "EventRinging", "5001", 5, connId="v1", callType="Inbound")
    ev(st, "EventEstablished", "5001", 6, connId="v1", callType="Inbound")
    wait_value(s, sid, {"canTake": []})
    r = s.call("RequestAgentMediaState", agent="E1", media="voice", state="Ready")
    assert r["code"] == "BadArgument"


def test_deleted_object_makes_its_statistics_invalid(st):
    api = st.d.api
    r = api("POST", "/v1/agent-groups", {"name": "G9", "members": [st.persons[3]]})
    assert r.status == 201, r.text
    gid = r.json["dbid"]
    s = st.session()
    wait_for(lambda: s.call("RequestOpenStatistic",
                            object={"type": "GroupAgents", "id": "G9"},
                            statistic="CurrentNumberLoggedInAgents").get("event") ==
             "EventStatisticOpened", 5, what="G9 known to the stats worker")
    sid = s.seen[-1]["statisticId"]
    assert api("DELETE", f"/v1/agent-groups/{gid}").status == 204
    m = s.wait(lambda m: m.get("event") == "EventStatisticInvalid"
               and m["statisticId"] == sid, 8)
    assert "deleted" in m["reason"]


def test_slow_client_is_cut_and_counted(tenantd, redis):
    """A client that does not read its notifications is cut when its
    output passes max_output, counted in tenantd_stats_slow_clients_total,
    and the others are served on."""
    t = StatsTenant(tenantd, stats={"max_output": 65536})
    t.voice = Voice(redis.port)
    t.voice.beat()
    wait_for(t.link_up, 10, what="the voice link")
    assert t.d.metric("tenantd_stats_slow_clients_total") == 0
    ev(t, "EventAgentLogin", "5001", 1, agentId="7001", workMode="ManualIn")
    ev(t, "EventAgentNotReady", "5001", 2, agentId="7001", reason="r" * 3000)
    fast = t.session()
    slow = Session(t.port, rcvbuf=4096)
    slow.open(t.token, "slow")
    wait_for(lambda: t.d.metric("tenant_stats_clients") == 2, 5, what="2 sessions")
    try:
        for _ in range(100):
            slow.send("RequestOpenStatistic", object={"type": "Agent", "id": "E1"},
                      statistic="CurrentAgentState",
                      notify={"mode": "periodic", "interval": 0.1})
    except OSError:
        pass            # cut already, while it was still asking
    # 100 x 3 kB every 0.1 s, nobody reading: over max_output at once.
    wait_for(lambda: t.d.metric("tenantd_stats_slow_clients_total") >= 1, 30,
             what="the slow client to be cut and counted")
    wait_for(lambda: t.d.metric("tenant_stats_clients") == 1, 5, what="1 session")
    assert t.d.metric("tenantd_stats_slow_clients_total") == 1
    assert fast.call("RequestGetStatisticTypes")["event"] == "EventStatisticTypes"
    Voice.stop_all()
