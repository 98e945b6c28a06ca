# SPDX-License-Identifier: Apache-2.0
"""The events worker (port 8000) end to end, with the voice side scripted
through Redis exactly as docs/voice-redis.md defines it: sessions and
tokens, registration filtering, requests out and their answers back with
the ref, de-duplication across regions, the voice link, RequestQueryAddress
from the state hash, resuming after a lost connection or a killed worker
with nothing lost or doubled, ghost agents, limits and bad input."""

import json
import os
import signal
import threading
import time

import pytest

from evclient import Session, Voice, key, merge_position, wait_link, session_opens
from helpers import RedisServer, free_port, wait_for


class Tenant:
    """tenantd with the config and events workers, a switch, DNs 5001..5004,
    a routing point 8000, agent logins 7001..7002, and two persons: an
    agent allowed DNs 5001 and 5002 only, and one without any right."""

    def __init__(self, tenantd, events=None, remotes=None):
        port = free_port()
        section = {"enabled": True, "listen": f"127.0.0.1:{port}",
                   "logout_grace": 0.5, "max_registrations": 10,
                   "max_line": 8192, "user_data_max": 1024}
        section.update(events or {})
        over = {"workers": {"events": section}}
        if remotes:
            over["redis"] = {"remote": remotes}
        self.d = tenantd(over, config_worker=True)
        self.port = port
        self.token = self.d.admin_token
        from helpers import config_api_ready
        config_api_ready(self.d)
        c = self.d.create
        self.switch = c("switches", {"name": "sw1", "type": "SIP"})
        self.dns = {n: c("dns", {"number": n, "type": "Extension", "switch": self.switch})
                    for n in ("5001", "5002", "5003", "5004")}
        self.dns["8000"] = c("dns", {"number": "8000", "type": "RoutingPoint",
                                     "switch": self.switch})
        for code in ("7001", "7002"):
            c("agent-logins", {"loginCode": code, "switch": self.switch})
        self.agent = c("persons", {"userName": "agent1", "password": "s3cret-pw",
                                   "isAgent": True})
        c("persons", {"userName": "nobody", "password": "s3cret-pw"})
        c("access-groups", {"name": "desk", "members": [self.agent], "permissions": [
            {"collection": "dns", "rights": ["read"], "dbid": self.dns["5001"]},
            {"collection": "dns", "rights": ["read"], "dbid": self.dns["5002"]}]})
        wait_for(self.events_up, 20, what="the events port to open a session")

    def link_up(self):
        s = self.session(client="probe")
        try:
            return s.seen[-1]["link"] == "connected"
        finally:
            s.close()

    def events_up(self):
        return session_opens(self.port, self.token, timeout=1)

    def token_of(self, user):
        r = self.d.api("POST", "/v1/auth/token", {"userName": user,
                                                  "password": "s3cret-pw"}, token=None)
        assert r.status == 200, r.text
        return r.json["token"]

    def session(self, token=None, client="test", **fields):
        s = Session(self.port)
        s.open(token or self.token, client, **fields)
        return s


@pytest.fixture
def ev(tenantd, redis):
    t = Tenant(tenantd)
    t.voice = Voice(redis.port)
    t.voice.beat()
    wait_for(t.link_up, 5, what="the voice link")
    yield t


@pytest.fixture(autouse=True)
def _no_heartbeat_left():
    yield
    Voice.stop_all()


def call_fields(dn, conn="00a1b2c3d4e5f601", **kw):
    f = {"connId": conn, "callId": "41", "callThreadId": "41", "thisDN": dn,
         "thisDNRole": "Destination", "otherDN": "+15550100", "callType": "Inbound",
         "userData": {}}
    f.update(kw)
    return f


# ---------------------------------------------------------------- sessions

def test_open_needs_a_valid_token(ev):
    s = Session(ev.port)
    r = s.call("RequestRegisterAddress", dn="5001")
    assert r["event"] == "EventError" and r["code"] == "NotOpened"
    s.send("RequestOpen", token="no-such-token", client="x")
    r = s.event("EventError")
    assert r["code"] == "Unauthorized"
    with pytest.raises(EOFError):
        s.read(3)
    s = ev.session()
    assert s.seen[-1]["link"] in ("connected", "disconnected")
    assert s.seen[-1]["regions"] == ["local"]
    # A person's token works too.
    s2 = ev.session(ev.token_of("agent1"), "desktop")
    assert s2.call("RequestPing")["event"] == "EventPong"


def test_link_follows_the_heartbeat(ev):
    s = ev.session()
    wait_link(s, True) if s.seen[-1]["link"] != "connected" else None
    ev.voice.stop_beat()
    wait_link(s, False)
    r = s.call("RequestMakeCall", dn="5001", destination="5002")
    assert r["event"] == "EventError" and r["code"] == "LinkDown"
    ev.voice.beat()
    wait_link(s, True)


# ---------------------------------------------------------------- events and requests

def test_registration_filters_and_request_answer_carries_ref(ev):
    a = ev.session(client="desk-a")
    b = ev.session(client="dashboard")
    other = ev.session(client="other")
    assert a.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    assert b.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    assert other.call("RequestRegisterAddress", dn="5003")["event"] == "EventRegistered"

    ref = a.send("RequestMakeCall", dn="5001", destination="5002",
                 userData={"Segment": "Gold"})
    req = ev.voice.request()
    assert req["request"] == "RequestMakeCall" and req["dn"] == "5001"
    assert req["destination"] == "5002" and req["userData"] == {"Segment": "Gold"}
    assert req["requestId"] and "ref" not in req

    ev.voice.event("EventDialing", requestId=req["requestId"],
                   **call_fields("5001", thisDNRole="Origination", otherDN="5002",
                                 callType="Internal", userData={"Segment": "Gold"}))
    ev.voice.event("EventRinging", **call_fields("5002", otherDN="5001",
                                                  callType="Internal"))
    mine = a.answer(ref)
    assert mine["event"] == "EventDialing" and mine["connId"] == "00a1b2c3d4e5f601"
    assert mine["userData"] == {"Segment": "Gold"} and "requestId" not in mine
    assert list(mine["position"]) == ["local"]
    theirs = b.event("EventDialing")
    assert "ref" not in theirs and theirs["eventId"] == mine["eventId"]
    # Nothing for 5002 (not registered here) nor for the other client.
    assert a.quiet() == [] and b.quiet() == []
    assert other.quiet() == []


def test_every_event_once_and_in_order(ev):
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    names = ["EventRinging", "EventEstablished", "EventHeld", "EventRetrieved",
             "EventReleased"] * 20
    for i, n in enumerate(names):
        ev.voice.event(n, **call_fields("5001", conn=f"{i:016x}"))
    got = [a.event(n) for n in names]
    assert [int(m["connId"], 16) for m in got] == list(range(len(names)))
    assert a.quiet() == []


def test_duplicate_event_ids_are_dropped(ev):
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    ev.voice.event("EventRinging", event_id="same-1", **call_fields("5001"))
    ev.voice.event("EventRinging", event_id="same-1", **call_fields("5001"))
    ev.voice.event("EventReleased", event_id="same-2", **call_fields("5001"))
    got = [m for m in a.quiet(0.8) if m.get("event", "").startswith("EventR")]
    assert [m["eventId"] for m in got] == ["same-1", "same-2"]


def test_voice_error_goes_to_the_sender_only(ev):
    a = ev.session()
    b = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    b.call("RequestRegisterAddress", dn="5001")
    ref = a.send("RequestMakeCall", dn="5001", destination="9999")
    req = ev.voice.request()
    ev.voice.event("EventError", requestId=req["requestId"], thisDN="5001",
                   code="UnknownDN", message="no such destination")
    r = a.answer(ref)
    assert r["event"] == "EventError" and r["code"] == "UnknownDN"
    assert b.quiet() == []


def test_query_address_reads_the_voice_state(ev):
    a = ev.session()
    r = a.call("RequestQueryAddress", dn="5004")
    assert r["event"] == "EventAddressInfo" and r["dn"] == "5004"
    assert r["agent"] == {"state": "LoggedOut"} and r["calls"] == []
    assert r["type"] == "Extension"
    state = {"dn": "5004", "agent": {"agentId": "7001", "state": "Ready",
                                     "workMode": "AutoIn"},
             "calls": [{"connId": "00000000000000aa", "state": "Established"}]}
    ev.voice.event("EventEstablished", state=state, **call_fields("5004"))
    r = a.call("RequestQueryAddress", dn="5004")
    assert r["agent"]["state"] == "Ready" and r["calls"][0]["connId"] == "00000000000000aa"


def test_request_timeout_when_the_voice_side_is_silent(ev):
    a = ev.session()
    ref = a.send("RequestAnswerCall", dn="5001", connId="0000000000000001")
    ev.voice.request()
    r = a.answer(ref, timeout=15)
    assert r["event"] == "EventError" and r["code"] == "Timeout"


# ---------------------------------------------------------------- bad input and limits

def test_bad_requests_get_event_error(ev):
    a = ev.session()
    cases = [
        (dict(request="RequestRegisterAddress", dn="0000"), "UnknownDN"),
        (dict(request="RequestRegisterAddress"), "BadArgument"),
        (dict(request="RequestMakeCall", dn="5001"), "BadArgument"),
        (dict(request="RequestAnswerCall", dn="5001", connId=5), "BadArgument"),
        (dict(request="RequestAgentLogin", dn="5001", agentId="9999"), "UnknownAgent"),
        (dict(request="RequestAgentReady", dn="5001", workMode="Sleepy"), "BadArgument"),
        (dict(request="RequestAttachUserData", dn="5001", connId="1",
              userData={"k": "x" * 2000}), "UserDataTooLarge"),
        (dict(request="RequestAttachUserData", dn="5001", connId="1",
              userData="text"), "BadArgument"),
        (dict(request="RequestFly", dn="5001"), "UnknownRequest"),
        (dict(request="RequestUnregisterAddress", dn="5003"), "NotRegistered"),
    ]
    for fields, code in cases:
        name = fields.pop("request")
        r = a.call(name, **fields)
        assert r["event"] == "EventError" and r["code"] == code, (name, fields, r)
    a.send_raw(b'{"request": "RequestPing", "ref": 1\n')
    assert a.event("EventError")["code"] == "BadJson"
    ev.voice.no_request()           # none of them reached the voice side
    assert a.call("RequestPing")["event"] == "EventPong"   # still open
    a.send_raw(b'{"request": "RequestPing", "pad": "' + b"x" * 9000 + b'"}\n')
    assert a.event("EventError")["code"] == "LineTooLong"
    with pytest.raises(EOFError):
        a.quiet(3)


def test_registration_limit(ev):
    a = ev.session()
    for dn in ("5001", "5002", "5003", "5004", "8000"):
        assert a.call("RequestRegisterAddress", dn=dn)["event"] == "EventRegistered"
    # Registering again is no new registration.
    assert a.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"


def test_permissions_limit_dns(ev):
    agent = ev.session(ev.token_of("agent1"), "desktop")
    assert agent.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    r = agent.call("RequestRegisterAddress", dn="5003")
    assert r["event"] == "EventError" and r["code"] == "Forbidden"
    r = agent.call("RequestMakeCall", dn="5003", destination="5001")
    assert r["event"] == "EventError" and r["code"] == "Forbidden"
    nobody = ev.session(ev.token_of("nobody"), "x")
    r = nobody.call("RequestQueryAddress", dn="5001")
    assert r["event"] == "EventError" and r["code"] == "Forbidden"
    ev.voice.no_request()


def test_slow_client_is_cut_and_others_keep_up(tenantd, redis):
    # One read of the stream (500 entries, ~0.5 MB here) fits in max_output.
    t = Tenant(tenantd, events={"max_output": 1048576})
    voice = Voice(redis.port)
    voice.beat()
    wait_for(t.link_up, 5, what="the voice link")
    slow = Session(t.port, rcvbuf=4096)
    slow.open(t.token)
    slow.call("RequestRegisterAddress", dn="5001")
    fast = t.session()
    fast.call("RequestRegisterAddress", dn="5001")
    pad = {"note": "y" * 900}
    n = 10000       # 10 MB: more than max_output and the kernel's buffers
    got = []

    def read_fast():        # a client that keeps up, reading all along
        try:
            while len(got) < n:
                m = fast.read(15)
                if m is None:
                    return
                if m.get("event") == "EventUserEvent":
                    got.append(m["eventId"])
        except EOFError:
            pass
    reader = threading.Thread(target=read_fast)
    reader.start()
    p = voice.r.pipeline(transaction=False)
    for i in range(n):
        ev = {"event": "EventUserEvent", "eventId": f"flood-{i}", "region": "local",
              "time": int(time.time() * 1000), "thisDN": "5001", "userData": pad}
        p.xadd(key("events"), {"event": json.dumps(ev)})
        if i % 500 == 499:
            p.execute()
    reader.join()
    assert got == [f"flood-{i}" for i in range(n)]
    with pytest.raises(EOFError):       # cut, after what fitted
        while slow.read(5) is not None:
            pass
    assert got == [f"flood-{i}" for i in range(n)]
    wait_for(lambda: t.d.metric("tenantd_events_slow_clients_total") >= 1, 10,
             what="the slow client to be cut")


# ---------------------------------------------------------------- resuming

def test_resume_after_a_lost_connection(ev):
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    pos = {}
    for i in range(5):
        ev.voice.event("EventRinging", **call_fields("5001", conn=f"{i:016x}"))
    for i in range(5):
        merge_position(pos, a.event("EventRinging"))
    a.close()
    for i in range(5, 12):
        ev.voice.event("EventRinging", **call_fields("5001", conn=f"{i:016x}"))
        ev.voice.event("EventRinging", **call_fields("5003", conn=f"{i:016x}"))
    b = ev.session(resume=pos)
    assert b.seen[-1]["resume"] is True
    b.call("RequestRegisterAddress", dn="5001")
    for i in range(12, 15):     # while it has not resumed: held back
        ev.voice.event("EventRinging", **call_fields("5001", conn=f"{i:016x}"))
    ref = b.send("RequestResume")
    done = b.answer(ref)
    assert done["event"] == "EventResumed" and done["lost"] == []
    for i in range(15, 18):
        ev.voice.event("EventRinging", **call_fields("5001", conn=f"{i:016x}"))
    ids = [int(m["connId"], 16) for m in b.seen if m.get("event") == "EventRinging"]
    ids += [int(b.event("EventRinging")["connId"], 16) for _ in range(3)]
    assert ids == list(range(5, 18)), ids
    assert done["replayed"] >= 7
    assert b.quiet() == []


def test_resume_reports_trimmed_history(ev):
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    ev.voice.event("EventRinging", **call_fields("5001"))
    pos = merge_position({}, a.event("EventRinging"))
    for i in range(20):
        ev.voice.event("EventRinging", **call_fields("5002"))
    ev.voice.r.xtrim(key("events"), maxlen=5)
    b = ev.session(resume=pos)
    b.call("RequestRegisterAddress", dn="5001")
    r = b.call("RequestResume")
    assert r["event"] == "EventResumed" and r["lost"] == ["local"]


def test_resume_after_the_worker_is_killed(ev):
    """kill -9 of the events worker mid-traffic: the client reconnects to
    the new worker with its positions and gets every event exactly once."""
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    pos = {}
    sent = 0
    for _ in range(50):
        ev.voice.event("EventUserEvent", thisDN="5001", userData={"n": sent})
        sent += 1
    got = []
    for _ in range(20):
        m = a.event("EventUserEvent")
        got.append(m["userData"]["n"])
        merge_position(pos, m)
    old = ev.d.worker_pid("events")
    os.kill(old, signal.SIGKILL)
    for _ in range(50):
        ev.voice.event("EventUserEvent", thisDN="5001", userData={"n": sent})
        sent += 1
    wait_for(lambda: ev.d.worker_pid("events") not in (None, old), 10,
             what="a new events worker")
    wait_for(ev.events_up, 10, what="the new events worker to serve")
    b = ev.session(resume=pos)
    b.call("RequestRegisterAddress", dn="5001")
    b.send("RequestResume")
    for _ in range(20):
        ev.voice.event("EventUserEvent", thisDN="5001", userData={"n": sent})
        sent += 1
    while len(got) < sent:
        m = b.event("EventUserEvent", timeout=10)
        got.append(m["userData"]["n"])
    assert got == list(range(sent))
    assert b.quiet() == [] or all(m.get("event") != "EventUserEvent" for m in b.quiet())


# ---------------------------------------------------------------- Redis and regions

@pytest.mark.allow_errors
def test_redis_restart_loses_nothing(ev, redis):
    """The live reader goes on from the last entry it read once Redis is
    back; Redis keeps its data over the restart (SHUTDOWN SAVE)."""
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    for i in range(10):
        ev.voice.event("EventUserEvent", thisDN="5001", userData={"n": i})
    got = [a.event("EventUserEvent")["userData"]["n"] for _ in range(10)]
    ev.voice.r.save()               # into redis.dir, read at the next start
    redis.proc.send_signal(signal.SIGKILL)
    redis.proc.wait()
    redis.proc = None
    wait_link(a, False)
    try:
        redis.start()
    finally:
        os.remove(os.path.join(redis.dir, "dump.rdb"))
    voice = Voice(redis.port)
    voice.beat()
    wait_link(a, True)
    for i in range(10, 20):
        voice.event("EventUserEvent", thisDN="5001", userData={"n": i})
    got += [a.event("EventUserEvent")["userData"]["n"] for _ in range(10)]
    assert got == list(range(20))
    assert a.quiet() == []


def test_two_regions_deliver_a_copied_event_once(tenantd, redis):
    remote = RedisServer()
    try:
        t = Tenant(tenantd, remotes=[{"name": "eu", "host": "127.0.0.1",
                                      "port": remote.port}])
        local, eu = Voice(redis.port, "local"), Voice(remote.port, "eu")
        local.beat()
        wait_for(t.link_up, 5, what="the voice link")
        a = t.session()
        assert a.seen[-1]["regions"] == ["local", "eu"]
        a.call("RequestRegisterAddress", dn="5001")
        for i in range(10):
            eid = f"call-{i}"
            local.event("EventRinging", event_id=eid, **call_fields("5001", conn=f"{i:016x}"))
            eu.event("EventRinging", event_id=eid, **call_fields("5001", conn=f"{i:016x}"))
        eu.event("EventRinging", event_id="eu-only", **call_fields("5001"))
        got = [m["eventId"] for m in a.quiet(1.5) if m.get("event") == "EventRinging"]
        assert sorted(got) == sorted([f"call-{i}" for i in range(10)] + ["eu-only"])
        assert t.d.metric("tenantd_events_duplicates_total") >= 10
    finally:
        remote.destroy()


# ---------------------------------------------------------------- ghost agents

def test_ghost_agent_is_logged_out(ev):
    a = ev.session(ev.token_of("agent1"), "desktop")
    ref = a.send("RequestAgentLogin", dn="5001", agentId="7001", workMode="AutoIn")
    req = ev.voice.request()
    assert req["request"] == "RequestAgentLogin" and req["agentId"] == "7001"
    ev.voice.event("EventAgentLogin", requestId=req["requestId"], thisDN="5001",
                   agentId="7001", workMode="AutoIn")
    assert a.answer(ref)["event"] == "EventAgentLogin"
    a.close()
    req = ev.voice.request(timeout=5)
    assert req["request"] == "RequestAgentLogout"
    assert req["dn"] == "5001" and req["agentId"] == "7001"


def test_agent_taken_back_in_time_stays(ev):
    a = ev.session(ev.token_of("agent1"), "desktop")
    ref = a.send("RequestAgentLogin", dn="5002", agentId="7002")
    req = ev.voice.request()
    ev.voice.event("EventAgentLogin", requestId=req["requestId"], thisDN="5002",
                   agentId="7002")
    a.answer(ref)
    a.close()
    b = ev.session(ev.token_of("agent1"), "desktop")
    b.call("RequestRegisterAddress", dn="5002")
    ev.voice.no_request(1.5)        # no logout: the agent's desktop is back


def test_oversized_user_data_in_an_event_is_cut(ev):
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    ev.voice.event("EventRinging", **call_fields("5001", userData={"big": "z" * 3000}))
    ev.voice.event("EventRinging", **call_fields("5001", userData={"small": "ok"}))
    big = a.event("EventRinging")
    assert big["userData"] == {} and big["userDataTruncated"] is True
    small = a.event("EventRinging")
    assert small["userData"] == {"small": "ok"} and "userDataTruncated" not in small


def test_metrics(ev):
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    ev.voice.event("EventRinging", **call_fields("5001"))
    a.event("EventRinging")
    a.call("RequestFly", dn="5001")

    def seen():
        m = ev.d.metrics()
        return (m.get(("tenant_events_clients", frozenset())) >= 1 and
                m.get(("tenantd_events_received_total", frozenset())) >= 1 and
                m.get(("tenantd_events_delivered_total", frozenset())) >= 1 and
                m.get(("tenantd_events_voice_link_up", frozenset())) == 1)
    wait_for(seen, 5, what="the events worker's metrics")


def test_event_text_from_the_voice_side_is_one_line(ev):
    """Events are passed on as the voice side wrote them; one written with
    line breaks between its tokens still reaches the client as one line."""
    a = ev.session()
    a.call("RequestRegisterAddress", dn="5001")
    ev_ = {"event": "EventUserEvent", "eventId": "pretty-1", "region": "local",
           "thisDN": "5001", "userData": {"a": "x"}}
    ev.voice.r.xadd(key("events"), {"event": json.dumps(ev_, indent=2)})
    ev.voice.event("EventUserEvent", thisDN="5001", userData={"b": "y"})
    m1, m2 = a.event("EventUserEvent"), a.event("EventUserEvent")
    assert m1["eventId"] == "pretty-1" and m1["userData"] == {"a": "x"}
    assert list(m1["position"]) == ["local"] and m2["userData"] == {"b": "y"}
