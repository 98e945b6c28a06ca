# SPDX-License-Identifier: Apache-2.0
"""tools/voicesim, the voice-platform simulator (docs/voicesim.md), against
real PostgreSQL, Redis and tenantd's config worker: the tenant is created
through the config API, voicesim follows it, and the test speaks the
contract of docs/voice-redis.md through redis-py only: requests written to
voice:requests, events read from voice:events, voice:state and the
heartbeat checked.

Skipped when $VOICESIM_BIN is not set (make e2e sets it)."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import CRASH_PATTERNS, TENANT_ID, ConfigClient, wait_for

P = f"tenantd:{{{TENANT_ID}}}:voice:"
EVENTS, REQUESTS, STATE, HEARTBEAT = (P + "events", P + "requests", P + "state",
                                      P + "heartbeat")
HEX16 = re.compile(r"^[0-9a-f]{16}$")

# The test tenant: one switch, phones 5001-5006 with agents 7001-7006 on
# places, a queue 6000, a routing point 6100, a trunk 8000 (not dialable).
PHONES = [f"500{i}" for i in range(1, 7)]


def tenant_lines():
    lines = [{"type": "Switch", "object": {"dbid": -1, "name": "sw1"}},
             {"type": "DN", "object": {"dbid": -2, "number": "6000",
                                       "type": "ACDQueue", "switch": -1}},
             {"type": "DN", "object": {"dbid": -3, "number": "6100",
                                       "type": "RoutingPoint", "switch": -1}},
             {"type": "DN", "object": {"dbid": -4, "number": "8000",
                                       "type": "Trunk", "switch": -1}}]
    for i, dn in enumerate(PHONES):
        d, lg, pl = -(10 + 3 * i), -(11 + 3 * i), -(12 + 3 * i)
        lines += [
            {"type": "DN", "object": {"dbid": d, "number": dn,
                                      "type": "Extension", "switch": -1}},
            {"type": "AgentLogin", "object": {"dbid": lg,
                                              "loginCode": f"700{i + 1}",
                                              "switch": -1}},
            {"type": "Place", "object": {"dbid": pl, "name": f"place{dn}",
                                         "dns": [d]}},
            {"type": "Person", "object": {"userName": f"agent{i + 1}",
                                          "isAgent": True, "place": pl,
                                          "agentLogins": [{"agentLogin": lg}]}},
        ]
    return "".join(json.dumps(x) + "\n" for x in lines)


@pytest.fixture
def voicesim_bin():
    b = os.environ.get("VOICESIM_BIN")
    if not b:
        pytest.skip("VOICESIM_BIN is not set")
    if not os.access(b, os.X_OK):
        pytest.fail(f"VOICESIM_BIN {b} is not an executable")
    return b


@pytest.fixture
def rc(redis):
    import redis as redislib
    c = redislib.Redis(host="127.0.0.1", port=redis.port, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def tenant(config_api):
    """tenantd with the config worker and the test tenant imported."""
    r = ConfigClient(config_api.config_port, config_api.admin_token)(
        "POST", "/v1/import", tenant_lines().encode(), timeout=60)
    assert r.status == 200, r.text
    return config_api


class Voicesim:
    """One voicesim process; stopped and checked at teardown."""

    def __init__(self, binary, conf_path, tmpdir, args, name):
        self.log_path = os.path.join(tmpdir, f"{name}.log")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "-c", conf_path] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=tmpdir)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("voicesim did not stop on SIGTERM")
        return self.proc.returncode

    def problems(self, allow_errors=False):
        out = []
        for line in self.log().splitlines():
            if any(p.lower() in line.lower() if p == "assertion" else p in line
                   for p in CRASH_PATTERNS):
                out.append(line)
            elif not allow_errors and "level=error" in line:
                out.append(line)
        return out


@pytest.fixture
def voicesim(voicesim_bin, tenant, tmp_path):
    """Factory: voicesim(*args) starts one on the tenant's tenantd.conf."""
    sims = []

    def start(*args, wait_group=True):
        v = Voicesim(voicesim_bin, tenant.conf_path, str(tmp_path), args,
                     f"voicesim{len(sims)}")
        sims.append(v)
        return v
    yield start
    bad = []
    for v in sims:
        rc = v.stop()
        if rc != 0:
            bad.append(f"voicesim exited {rc}")
        bad += v.problems()
    assert not bad, "\n".join(bad) + "\n" + "\n".join(v.log()[-3000:] for v in sims)


class Voice:
    """The client side of docs/voice-redis.md over redis-py."""

    def __init__(self, rc):
        self.rc = rc
        self.seen = []          # every event read, in stream order
        self.pos = 0            # expect() looks from here on
        self.last = "0-0"
        self.n = 0

    def ready(self, timeout=15):
        """voicesim is up: heartbeat set and the consumer group there."""
        wait_for(lambda: self.rc.get(HEARTBEAT), timeout, what="voice heartbeat")

        def group():
            return any(g["name"] == "voice" for g in self.rc.xinfo_groups(REQUESTS))
        wait_for(group, timeout, what="consumer group voice")
        return self

    def send(self, request, raw=None, **fields):
        self.n += 1
        rid = f"t-{self.n}"
        body = dict(fields, request=request, requestId=rid)
        self.rc.xadd(REQUESTS, {"request": raw if raw is not None else
                                json.dumps(body)}, maxlen=100000, approximate=True)
        return rid

    def poll(self):
        for eid, f in self.rc.xrange(EVENTS, min="(" + self.last if
                                     self.last != "0-0" else "-"):
            self.last = eid
            self.seen.append(json.loads(f["event"]))

    def expect(self, event, dn=None, timeout=8, **match):
        """The next event (after the last one expected) named event on dn
        whose fields include match; waits for it.  Enforces order."""
        def find():
            self.poll()
            for i in range(self.pos, len(self.seen)):
                e = self.seen[i]
                if e.get("event") != event or (dn is not None and e.get("thisDN") != dn):
                    continue
                if all(e.get(k) == v for k, v in match.items()):
                    self.pos = i + 1
                    return e
            return None
        try:
            return wait_for(find, timeout, interval=0.02,
                            what=f"{event} on {dn} with {match}")
        except AssertionError:
            tail = "\n".join(json.dumps(e) for e in self.seen[self.pos:][-20:])
            raise AssertionError(f"no {event} on {dn} with {match} after "
                                 f"position {self.pos}; events since:\n{tail}")

    def answer(self, rid, timeout=8):
        """The event carrying requestId rid (there is exactly one)."""
        e = self.expect_any(lambda e: e.get("requestId") == rid, timeout)
        return e

    def expect_any(self, pred, timeout=8):
        def find():
            self.poll()
            for i in range(self.pos, len(self.seen)):
                if pred(self.seen[i]):
                    self.pos = i + 1
                    return self.seen[i]
            return None
        return wait_for(find, timeout, interval=0.02, what="event")

    def error(self, rid, code):
        e = self.answer(rid)
        assert e["event"] == "EventError", e
        assert e["code"] == code, e
        assert e.get("message"), e
        return e

    def state(self, dn):
        v = self.rc.hget(STATE, dn)
        return json.loads(v) if v is not None else None

    def call_state(self, dn, conn):
        st = self.state(dn)
        assert st is not None, f"no state for {dn}"
        for c in st["calls"]:
            if c["connId"] == conn:
                return c
        raise AssertionError(f"call {conn} not in state of {dn}: {st}")


@pytest.fixture
def voice(rc):
    return Voice(rc)


def check_common(e):
    assert e["eventId"] and len(e["eventId"]) <= 128, e
    assert e["region"] == "local", e
    assert abs(e["time"] - time.time() * 1000) < 60000, e
    if "connId" in e:
        assert HEX16.match(e["connId"]), e
        for k in ("callId", "callThreadId", "thisDNRole", "callType"):
            assert k in e, (k, e)
        assert isinstance(e["userData"], dict), e


# ---------------------------------------------------------------- tests

def test_heartbeat_group_and_event_shape(voicesim, voice, rc):
    voicesim()
    voice.ready()
    boot = rc.get(HEARTBEAT)
    assert HEX16.match(boot), boot
    assert 0 < rc.pttl(HEARTBEAT) <= 3000
    # refreshed every second: the expiry goes back up
    t = rc.pttl(HEARTBEAT)
    wait_for(lambda: rc.pttl(HEARTBEAT) > t, 3, what="heartbeat refreshed")
    rid = voice.send("RequestMakeCall", dn="5001", destination="5002")
    e = voice.expect("EventDialing", "5001", requestId=rid)
    check_common(e)
    assert e["eventId"].startswith("local:" + boot + ":"), e
    r = voice.expect("EventRinging", "5002", connId=e["connId"])
    check_common(r)
    assert r["eventId"] != e["eventId"]
    assert "requestId" not in r
    # the stream entry is one field named event, trimmed by MAXLEN ~
    entry = rc.xrange(EVENTS, count=1)[0][1]
    assert list(entry) == ["event"]
    # every request was acknowledged
    wait_for(lambda: rc.xpending(REQUESTS, "voice")["pending"] == 0, 5,
             what="no pending requests")


def test_call_hold_transfer_release(voicesim, voice):
    voicesim()
    voice.ready()
    rid = voice.send("RequestMakeCall", dn="5001", destination="5002")
    d = voice.expect("EventDialing", "5001", requestId=rid, otherDN="5002",
                     thisDNRole="Origination", callType="Internal")
    c1 = d["connId"]
    assert d["callThreadId"] == d["callId"]
    r = voice.expect("EventRinging", "5002", connId=c1, otherDN="5001",
                     thisDNRole="Destination", otherDNRole="Origination")
    assert voice.call_state("5001", c1)["state"] == "Dialing"
    assert voice.call_state("5002", c1)["state"] == "Ringing"

    rid = voice.send("RequestAnswerCall", dn="5002", connId=c1)
    voice.expect("EventEstablished", "5002", requestId=rid, connId=c1)
    voice.expect("EventEstablished", "5001", connId=c1)
    assert voice.call_state("5001", c1)["state"] == "Established"
    assert voice.call_state("5002", c1)["parties"] == ["5001", "5002"]

    rid = voice.send("RequestHoldCall", dn="5001", connId=c1)
    voice.expect("EventHeld", "5001", requestId=rid, connId=c1)
    assert voice.call_state("5001", c1)["state"] == "Held"
    assert voice.call_state("5002", c1)["state"] == "Established"
    rid = voice.send("RequestRetrieveCall", dn="5001", connId=c1)
    voice.expect("EventRetrieved", "5001", requestId=rid, connId=c1)
    assert voice.call_state("5001", c1)["state"] == "Established"

    # two-step transfer to 5003
    rid = voice.send("RequestInitiateTransfer", dn="5001", connId=c1,
                     destination="5003")
    voice.expect("EventHeld", "5001", requestId=rid, connId=c1)
    d2 = voice.expect("EventDialing", "5001", callType="Consult", otherDN="5003")
    c2 = d2["connId"]
    assert c2 != c1 and d2["callThreadId"] == r["callThreadId"]
    voice.expect("EventRinging", "5003", connId=c2, callType="Consult")
    rid = voice.send("RequestAnswerCall", dn="5003", connId=c2)
    voice.expect("EventEstablished", "5003", requestId=rid, connId=c2)
    voice.expect("EventEstablished", "5001", connId=c2)
    rid = voice.send("RequestCompleteTransfer", dn="5001", connId=c1,
                     consultConnId=c2)
    voice.expect("EventReleased", "5001", requestId=rid, connId=c1,
                 cause="Transferred")
    voice.expect("EventReleased", "5001", connId=c2, cause="Transferred")
    voice.expect("EventPartyChanged", "5002", connId=c1, otherDN="5003",
                 thirdDN="5001")
    voice.expect("EventPartyChanged", "5003", connId=c1, otherDN="5002",
                 thirdDN="5001", previousConnId=c2)
    assert voice.state("5001") is None
    assert voice.call_state("5003", c1)["state"] == "Established"
    assert voice.call_state("5002", c1)["parties"] == ["5002", "5003"]

    rid = voice.send("RequestReleaseCall", dn="5003", connId=c1)
    voice.expect("EventReleased", "5003", requestId=rid, connId=c1, cause="Normal")
    voice.expect("EventReleased", "5002", connId=c1)
    assert voice.state("5002") is None and voice.state("5003") is None


def test_single_step_transfer_and_conference(voicesim, voice):
    voicesim()
    voice.ready()
    voice.send("RequestMakeCall", dn="5001", destination="5002")
    c1 = voice.expect("EventRinging", "5002")["connId"]
    voice.send("RequestAnswerCall", dn="5002", connId=c1)
    voice.expect("EventEstablished", "5001", connId=c1)

    # conference in 5003
    rid = voice.send("RequestInitiateConference", dn="5001", connId=c1,
                     destination="5003")
    voice.expect("EventHeld", "5001", requestId=rid, connId=c1)
    c2 = voice.expect("EventRinging", "5003")["connId"]
    rid = voice.send("RequestCompleteConference", dn="5001", connId=c1,
                     consultConnId=c2)
    voice.error(rid, "InvalidState")        # the consult call rings yet
    voice.send("RequestAnswerCall", dn="5003", connId=c2)
    voice.expect("EventEstablished", "5001", connId=c2)
    rid = voice.send("RequestCompleteConference", dn="5001", connId=c1,
                     consultConnId=c2)
    voice.expect("EventReleased", "5001", requestId=rid, connId=c2)
    voice.expect("EventRetrieved", "5001", connId=c1)
    for dn in ("5001", "5002", "5003"):
        voice.expect("EventPartyAdded", dn, connId=c1, thirdDN="5003",
                     thisDNRole="ConferenceMember")
    assert sorted(voice.call_state("5002", c1)["parties"]) == ["5001", "5002", "5003"]
    # one member leaves: the others are told, the call goes on
    voice.send("RequestReleaseCall", dn="5003", connId=c1)
    voice.expect("EventReleased", "5003", connId=c1)
    voice.expect("EventPartyDeleted", "5001", connId=c1, thirdDN="5003")
    voice.expect("EventPartyDeleted", "5002", connId=c1, thirdDN="5003")

    # single-step transfer of 5002's caller to 5004
    rid = voice.send("RequestSingleStepTransfer", dn="5002", connId=c1,
                     destination="5004")
    voice.expect("EventReleased", "5002", requestId=rid, connId=c1,
                 cause="Transferred")
    voice.expect("EventPartyChanged", "5001", connId=c1, thirdDN="5002")
    voice.expect("EventRinging", "5004", connId=c1, otherDN="5001", thirdDN="5002")
    voice.send("RequestAnswerCall", dn="5004", connId=c1)
    voice.expect("EventEstablished", "5004", connId=c1)
    voice.send("RequestReleaseCall", dn="5001", connId=c1)
    voice.expect("EventReleased", "5004", connId=c1)


def test_errors(voicesim, voice):
    voicesim("--busy-suffix", "0199")
    voice.ready()
    voice.error(voice.send("RequestMakeCall", dn="9999", destination="5002"),
                "UnknownDN")
    e = voice.error(voice.send("RequestMakeCall", dn="5001", destination="4242"),
                    "UnknownDN")
    assert e["thisDN"] == "5001"
    voice.error(voice.send("RequestMakeCall", dn="5001", destination="8000"),
                "UnknownDN")
    voice.error(voice.send("RequestMakeCall", dn="5001"), "BadRequest")
    voice.error(voice.send("RequestMakeCall", dn="5001", destination=5002),
                "BadRequest")
    voice.error(voice.send("RequestMakeCall", dn="5001", destination="5002",
                           userData="x"), "BadRequest")
    voice.error(voice.send("RequestAnswerCall", dn="5001",
                           connId="00000000000000ff"), "NoSuchCall")
    voice.error(voice.send("RequestAnswerCall", dn="5001"), "BadRequest")
    voice.error(voice.send("RequestFrobnicate", dn="5001"), "BadRequest")
    voice.error(voice.send("RequestMakeCall", dn="5001",
                           destination="+15550199"), "Busy")
    # not JSON: answered without a requestId
    voice.send("RequestMakeCall", raw="{not json")
    e = voice.expect("EventError", code="BadRequest")
    assert "requestId" not in e

    voice.send("RequestMakeCall", dn="5001", destination="5002")
    c = voice.expect("EventRinging", "5002")["connId"]
    voice.error(voice.send("RequestMakeCall", dn="5003", destination="5002"), "Busy")
    voice.error(voice.send("RequestAnswerCall", dn="5001", connId=c), "InvalidState")
    voice.error(voice.send("RequestHoldCall", dn="5002", connId=c), "InvalidState")
    voice.error(voice.send("RequestAnswerCall", dn="5003", connId=c), "NoSuchCall")
    voice.error(voice.send("RequestMakeCall", dn="5001", destination="5003"),
                "InvalidState")
    # a failed request changed nothing
    assert voice.call_state("5002", c)["state"] == "Ringing"
    assert voice.state("5003") is None
    # the destination rejects: both released
    rid = voice.send("RequestReleaseCall", dn="5002", connId=c)
    voice.expect("EventReleased", "5002", requestId=rid, connId=c)
    voice.expect("EventReleased", "5001", connId=c)


def test_user_data(voicesim, voice):
    voicesim()
    voice.ready()
    rid = voice.send("RequestMakeCall", dn="5001", destination="5002",
                     userData={"a": 1, "n": {"x": "y"}})
    c = voice.expect("EventDialing", "5001", requestId=rid)["connId"]
    voice.expect("EventRinging", "5002", userData={"a": 1, "n": {"x": "y"}})
    rid = voice.send("RequestAttachUserData", dn="5001", connId=c,
                     userData={"a": 2, "b": "x"})
    voice.expect("EventAttachedDataChanged", "5001", requestId=rid,
                 userData={"a": 1, "n": {"x": "y"}, "b": "x"})
    voice.expect("EventAttachedDataChanged", "5002",
                 userData={"a": 1, "n": {"x": "y"}, "b": "x"})
    rid = voice.send("RequestUpdateUserData", dn="5002", connId=c,
                     userData={"a": 3})
    voice.expect("EventAttachedDataChanged", "5002", requestId=rid,
                 userData={"a": 3, "n": {"x": "y"}, "b": "x"})
    rid = voice.send("RequestDeleteUserData", dn="5002", connId=c, keys=["b", "n"])
    voice.expect("EventAttachedDataChanged", "5002", requestId=rid, userData={"a": 3})
    voice.error(voice.send("RequestDeleteUserData", dn="5002", connId=c,
                           keys=[1]), "BadRequest")
    voice.error(voice.send("RequestAttachUserData", dn="5002", connId=c),
                "BadRequest")
    # later events carry it, and so does the state
    voice.send("RequestAnswerCall", dn="5002", connId=c)
    voice.expect("EventEstablished", "5002", userData={"a": 3})
    voice.expect("EventEstablished", "5001", userData={"a": 3})
    assert voice.call_state("5001", c)["userData"] == {"a": 3}
    rid = voice.send("RequestDeleteUserData", dn="5001", connId=c)
    voice.expect("EventAttachedDataChanged", "5001", requestId=rid, userData={})
    rid = voice.send("RequestSendUserEvent", dn="5003", userData={"k": "v"})
    voice.expect("EventUserEvent", "5003", requestId=rid, userData={"k": "v"})
    voice.error(voice.send("RequestSendUserEvent", dn="5003"), "BadRequest")


def test_agent_flow(voicesim, voice):
    voicesim()
    voice.ready()
    voice.error(voice.send("RequestAgentLogin", dn="5001", agentId="9999"),
                "UnknownAgent")
    voice.error(voice.send("RequestAgentReady", dn="5001"), "AgentNotLoggedIn")
    rid = voice.send("RequestAgentLogin", dn="5001", agentId="7001")
    e = voice.expect("EventAgentLogin", "5001", requestId=rid, agentId="7001")
    assert e["workMode"] == "Unknown"
    voice.expect("EventAgentNotReady", "5001", agentId="7001")
    st = voice.state("5001")
    assert st["agent"]["agentId"] == "7001" and st["agent"]["state"] == "NotReady"
    voice.error(voice.send("RequestAgentLogin", dn="5001", agentId="7002"),
                "AgentAlreadyLoggedIn")
    voice.error(voice.send("RequestAgentLogin", dn="5002", agentId="7001"),
                "AgentAlreadyLoggedIn")
    voice.error(voice.send("RequestAgentReady", dn="5001", workMode="Lazy"),
                "BadRequest")
    rid = voice.send("RequestAgentReady", dn="5001")
    voice.expect("EventAgentReady", "5001", requestId=rid, workMode="ManualIn")
    assert voice.state("5001")["agent"]["state"] == "Ready"
    rid = voice.send("RequestAgentNotReady", dn="5001", workMode="AuxWork",
                     reason="Lunch")
    voice.expect("EventAgentNotReady", "5001", requestId=rid, workMode="AuxWork",
                 reason="Lunch")
    assert voice.state("5001")["agent"]["reason"] == "Lunch"
    # agentId on call events of that DN
    voice.send("RequestMakeCall", dn="5001", destination="5002")
    voice.expect("EventDialing", "5001", agentId="7001")
    voice.error(voice.send("RequestAgentLogout", dn="5001", agentId="7002"),
                "AgentNotLoggedIn")
    rid = voice.send("RequestAgentLogout", dn="5001", agentId="7001")
    voice.expect("EventAgentLogout", "5001", requestId=rid, agentId="7001")
    assert voice.state("5001")["agent"]["state"] == "LoggedOut"
    rid = voice.send("RequestAgentLogin", dn="5003", agentId="7001",
                     workMode="AutoIn")
    voice.expect("EventAgentLogin", "5003", requestId=rid, workMode="AutoIn")
    voice.expect("EventAgentReady", "5003", workMode="AutoIn")


def login_ready(voice, dn, agent):
    voice.send("RequestAgentLogin", dn=dn, agentId=agent, workMode="ManualIn")
    voice.expect("EventAgentReady", dn, agentId=agent)


def test_inbound_queue_and_routing_point(voicesim, voice):
    voicesim()
    voice.ready()
    login_ready(voice, "5002", "7002")
    login_ready(voice, "5001", "7001")      # 5002 has been idle longer
    rid = voice.send("SimInboundCall", **{"from": "+15550123", "to": "6100",
                                          "userData": {"Segment": "Gold"}})
    r = voice.expect("EventRinging", "6100", requestId=rid, thisDNRole="RoutingPoint",
                     otherDN="+15550123", callType="Inbound")
    c = r["connId"]
    voice.expect("EventDiverted", "6100", connId=c, thirdDN="6000")
    voice.expect("EventQueued", "6000", connId=c, thisDNRole="Queue",
                 otherDN="+15550123", userData={"Segment": "Gold"})
    voice.expect("EventDiverted", "6000", connId=c, thirdDN="5002")
    voice.expect("EventRinging", "5002", connId=c, otherDN="+15550123",
                 callType="Inbound", agentId="7002", thirdDN="6000",
                 userData={"Segment": "Gold"})
    assert voice.state("6000") is None and voice.state("6100") is None
    rid = voice.send("RequestAnswerCall", dn="5002", connId=c)
    voice.expect("EventEstablished", "5002", requestId=rid, connId=c)
    # a second call goes to the other ready agent, straight into the queue
    rid = voice.send("SimInboundCall", to="6000")
    c2 = voice.expect("EventQueued", "6000", requestId=rid)["connId"]
    voice.expect("EventRinging", "5001", connId=c2)
    # a third waits: nobody is free; then the caller gives up
    rid = voice.send("SimInboundCall", to="6000", patience=0.5)
    c3 = voice.expect("EventQueued", "6000", requestId=rid)["connId"]
    assert voice.call_state("6000", c3)["state"] == "Queued"
    voice.expect("EventAbandoned", "6000", connId=c3, cause="Abandoned")
    assert voice.state("6000") is None
    # the far end hangs up
    rid = voice.send("SimRelease", connId=c)
    voice.expect("EventReleased", "5002", requestId=rid, connId=c)
    voice.error(voice.send("SimRelease", connId=c), "NoSuchCall")
    voice.error(voice.send("SimInboundCall", to="4242"), "UnknownDN")
    voice.error(voice.send("SimInboundCall"), "BadRequest")
    # an agent who becomes Ready takes the oldest queued call
    voice.send("RequestAgentNotReady", dn="5002")
    voice.expect("EventAgentNotReady", "5002")
    c4 = voice.expect("EventQueued", "6000", requestId=voice.send(
        "SimInboundCall", to="6000"))["connId"]
    voice.send("RequestAgentReady", dn="5002")
    voice.expect("EventRinging", "5002", connId=c4)


def known(voice, dn, timeout=15):
    """Wait until voicesim knows dn from the configuration: a route request
    for a call it does not have is NoSuchCall there, UnknownDN before."""
    def answered():
        e = voice.answer(voice.send("RequestRouteCall", dn=dn,
                                    connId="00000000000000ff",
                                    destination="5001"))
        return e["code"] == "NoSuchCall"
    wait_for(answered, timeout, interval=0.1, what=f"voicesim knows DN {dn}")


def test_routing_point_routed_by_tenantd(voicesim, voice, tenant):
    """A routing point with a virtualQueue (docs/voice-redis.md, "Routing
    points routed by tenantd"): the test plays the routing worker, reading
    EventRouteRequest from voice:events and writing RequestRouteCall to
    voice:requests."""
    voicesim()
    voice.ready()
    sw = tenant.api("GET", "/v1/dns?number=6100").json["items"][0]["switch"]
    vq = tenant.create("dns", {"number": "6300", "type": "VirtualQueue",
                               "switch": sw})
    rp = tenant.create("dns", {"number": "6200", "type": "RoutingPoint",
                               "switch": sw, "virtualQueue": vq})
    known(voice, "6200")
    login_ready(voice, "5002", "7002")
    ud = {"Segment": "Gold"}
    rid = voice.send("SimInboundCall", **{"from": "+15550123", "to": "6200",
                                          "userData": ud})
    rr = voice.expect("EventRouteRequest", "6200", requestId=rid,
                      thisDNRole="RoutingPoint", otherDN="+15550123",
                      dnis="6200", callType="Inbound", userData=ud)
    check_common(rr)
    c = rr["connId"]
    st = voice.call_state("6200", c)
    assert st["state"] == "Ringing" and st["role"] == "RoutingPoint", st
    # the call waits: an agent is Ready, but nothing moves it but the
    # routing worker; the RP rings not, nor diverts
    time.sleep(0.5)
    voice.poll()
    assert [e for e in voice.seen[voice.pos:] if e.get("connId") == c] == []

    rid = voice.send("RequestRouteCall", dn="6200", connId=c, destination="5002")
    used = voice.expect("EventRouteUsed", "6200", requestId=rid, connId=c,
                        thirdDN="5002", otherDN="+15550123",
                        thisDNRole="RoutingPoint", userData=ud)
    check_common(used)
    r = voice.expect("EventRinging", "5002", connId=c, otherDN="+15550123",
                     thirdDN="6200", agentId="7002", callType="Inbound",
                     userData=ud)
    assert "requestId" not in r
    assert voice.state("6200") is None
    assert voice.call_state("5002", c)["state"] == "Ringing"
    voice.send("RequestAnswerCall", dn="5002", connId=c)
    voice.expect("EventEstablished", "5002", connId=c)
    for e in voice.seen:
        if e.get("thisDN") == "6200" and e.get("connId") == c:
            assert e["event"] in ("EventRouteRequest", "EventRouteUsed"), e

    # a destination the switch does not know: EventError, the call waits
    # on; then its caller gives up there
    rid = voice.send("SimInboundCall", to="6200", patience=1.5)
    c2 = voice.expect("EventRouteRequest", "6200", requestId=rid)["connId"]
    voice.error(voice.send("RequestRouteCall", dn="6200", connId=c2,
                           destination="4242"), "UnknownDN")
    voice.error(voice.send("RequestRouteCall", dn="6200", connId=c,
                           destination="5003"), "NoSuchCall")
    assert voice.call_state("6200", c2)["state"] == "Ringing"
    voice.expect("EventAbandoned", "6200", connId=c2, cause="Abandoned",
                 thisDNRole="RoutingPoint")
    assert voice.state("6200") is None

    # without its virtualQueue the routing point diverts to the queue as
    # before, once voicesim has the change
    r = tenant.api("PATCH", f"/v1/dns/{rp}", {"virtualQueue": None})
    assert r.status == 200, r.text

    def diverts():
        rid = voice.send("SimInboundCall", to="6200", patience=0.2)
        return voice.answer(rid)["event"] == "EventRinging"
    wait_for(diverts, 15, interval=0.2, what="6200 without a virtualQueue")
    voice.expect("EventDiverted", "6200", thirdDN="6000")
    voice.expect("EventQueued", "6000", thirdDN="6200")
    wait_for(lambda: voice.state("6200") is None and
             voice.state("6000") is None, 5, what="the test calls gone")


def test_external_calls(voicesim, voice):
    voicesim("--ring", "0.3", "--busy-suffix", "0199")
    voice.ready()
    rid = voice.send("RequestMakeCall", dn="5001", destination="+15550100")
    d = voice.expect("EventDialing", "5001", requestId=rid, callType="Outbound",
                     otherDN="+15550100")
    t0 = time.monotonic()
    voice.expect("EventEstablished", "5001", connId=d["connId"])
    assert time.monotonic() - t0 < 5
    rid = voice.send("SimRelease", connId=d["connId"])
    voice.expect("EventReleased", "5001", requestId=rid, connId=d["connId"])
    voice.error(voice.send("RequestMakeCall", dn="5001", destination="+15550199"),
                "Busy")


def event_trace(rc):
    return [(e["event"], e.get("thisDN"))
            for e in (json.loads(f["event"]) for _, f in rc.xrange(EVENTS))]


def test_traffic_is_deterministic_with_a_seed(voicesim, rc):
    args = ("--seed", "42", "--agents", "4", "--rate", "6", "--ring", "0.1",
            "--talk", "0.4", "--wrap", "0.2", "--break", "0.3",
            "--notready", "0.3", "--patience", "2", "--duration", "3")
    traces = []
    for _ in range(2):
        v = voicesim(*args)
        v.proc.wait(20)
        assert v.proc.returncode == 0, v.log()
        traces.append(event_trace(rc))
        rc.delete(EVENTS, STATE)
    a, b = traces
    names = {n for n, _ in a}
    assert {"EventAgentLogin", "EventRinging", "EventQueued", "EventEstablished",
            "EventReleased", "EventAgentNotReady", "EventAgentReady"} <= names, a
    n = min(len(a), len(b))
    assert n >= 40, (len(a), len(b))
    # the end may be cut at a slightly different moment
    assert a[:n - 10] == b[:n - 10]
    logins = [dn for ev, dn in a if ev == "EventAgentLogin"]
    assert logins == ["5001", "5002", "5003", "5004"]


def test_redis_restart(voicesim, voice, redis, rc):
    v = voicesim()
    voice.ready()
    login_ready(voice, "5001", "7001")
    boot = rc.get(HEARTBEAT)
    redis.stop()
    time.sleep(0.5)
    redis.start()
    # the heartbeat, the group and the state come back without a restart
    wait_for(lambda: rc.get(HEARTBEAT) == boot, 15, what="heartbeat after restart")
    wait_for(lambda: voice.state("5001") is not None, 5, what="state rewritten")
    assert voice.state("5001")["agent"]["state"] == "Ready"
    voice.last = "0-0"
    voice.seen, voice.pos = [], 0
    rid = voice.send("RequestMakeCall", dn="5001", destination="5002")
    voice.expect("EventDialing", "5001", requestId=rid, timeout=15)
    voice.expect("EventRinging", "5002")
    assert v.proc.poll() is None


@pytest.fixture
def remote_redis():
    from helpers import RedisServer
    srv = RedisServer()
    yield srv
    srv.destroy()


def conf_with_remote(tenant, tmp_path, remote):
    """tenant's configuration with remote as region eu-west; its path."""
    from helpers import merge, render_conf
    conf = merge(tenant.conf, {"redis": {"remote": [
        {"name": "eu-west", "host": "127.0.0.1", "port": remote.port}]}})
    path = os.path.join(str(tmp_path), "regions.conf")
    with open(path, "w") as f:
        f.write(render_conf(conf))
    return path


def test_mirror_and_region(voicesim_bin, tenant, tmp_path, rc, remote_redis, voice):
    import redis as redislib
    rr = redislib.Redis(host="127.0.0.1", port=remote_redis.port,
                        decode_responses=True)
    path = conf_with_remote(tenant, tmp_path, remote_redis)
    v = Voicesim(voicesim_bin, path, str(tmp_path), ["--mirror"], "mirror")
    try:
        voice.ready()
        rid = voice.send("RequestMakeCall", dn="5001", destination="5002")
        d = voice.expect("EventDialing", "5001", requestId=rid)
        voice.expect("EventRinging", "5002")

        def copies():
            return [json.loads(f["event"]) for _, f in rr.xrange(EVENTS)]
        wait_for(lambda: len(copies()) >= 2, 5, what="mirrored events")
        assert [e["eventId"] for e in copies()] == \
            [e["eventId"] for e in voice.seen[:2]]
        assert copies()[0]["eventId"] == d["eventId"]
        # state, heartbeat and requests stay in the home region
        assert rr.exists(STATE, HEARTBEAT, REQUESTS) == 0
    finally:
        assert v.stop() == 0
        assert not v.problems(), v.log()
    # a voice platform of region eu-west writes there, region eu-west
    v = Voicesim(voicesim_bin, path, str(tmp_path), ["--region", "eu-west"],
                 "euwest")
    try:
        wait_for(lambda: rr.get(HEARTBEAT), 15, what="eu-west heartbeat")
        rr.xadd(REQUESTS, {"request": json.dumps({
            "request": "RequestMakeCall", "requestId": "eu-1", "dn": "5003",
            "destination": "5004"})})

        def answered():
            for _, f in rr.xrange(EVENTS):
                e = json.loads(f["event"])
                if e.get("requestId") == "eu-1":
                    return e
        e = wait_for(answered, 10, what="answer in eu-west")
        assert e["region"] == "eu-west" and e["eventId"].startswith("eu-west:")
        assert json.loads(rr.hget(STATE, "5003"))["calls"][0]["state"] == "Dialing"
    finally:
        assert v.stop() == 0
        assert not v.problems(), v.log()


def test_flood(voicesim_bin, tenant, tmp_path, rc):
    v = Voicesim(voicesim_bin, tenant.conf_path, str(tmp_path),
                 ["--flood", "20000"], "flood")
    assert v.proc.wait(60) == 0, v.log()
    assert re.search(r"flood: 20000 events in [0-9.]+ s: [0-9]+ events/s", v.log()), v.log()
    assert rc.xlen(EVENTS) == 20000
    e = json.loads(rc.xrange(EVENTS, count=1)[0][1]["event"])
    assert e["event"] == "EventRinging" and HEX16.match(e["connId"])
    assert not v.problems(), v.log()


def test_demo_tenant_with_traffic(voicesim_bin, config_api, tmp_path, rc):
    """conf/demo-tenant.ndjson imports as make run does, and the generator
    logs its agents in and sends calls through the routing point."""
    from helpers import REPO_ROOT
    with open(os.path.join(REPO_ROOT, "conf", "demo-tenant.ndjson"), "rb") as f:
        r = ConfigClient(config_api.config_port, config_api.admin_token)(
            "POST", "/v1/import", f.read(), timeout=60)
    assert r.status == 200 and r.json["created"] == 56, r.text
    # 3000 is routed by the routing worker (not running here): voicesim's
    # own routing takes it back once it names no virtual queue
    c = ConfigClient(config_api.config_port, config_api.admin_token)
    rp = c("GET", "/v1/dns?number=3000").json["items"][0]
    assert rp["virtualQueue"] > 0
    r = c("PATCH", f"/v1/dns/{rp['dbid']}", {"virtualQueue": None})
    assert r.status == 200, r.text
    v = Voicesim(voicesim_bin, config_api.conf_path, str(tmp_path),
                 ["--agents", "8", "--rate", "8", "--ring", "0.1", "--talk",
                  "0.3", "--wrap", "0.1", "--duration", "2.5"], "demo")
    assert v.proc.wait(20) == 0, v.log()
    assert not v.problems(), v.log()
    ev = [json.loads(f["event"]) for _, f in rc.xrange(EVENTS)]
    logins = [e["thisDN"] for e in ev if e["event"] == "EventAgentLogin"]
    assert logins == [f"10{n:02d}" for n in range(1, 9)]
    assert any(e["event"] == "EventRinging" and e["thisDN"] == "3000" for e in ev)
    # the first queue of the switch: the ACD queue or the virtual queue
    assert any(e["event"] == "EventQueued" and e["thisDN"] in ("2000", "2500")
               for e in ev)
    est = [e for e in ev if e["event"] == "EventEstablished"]
    assert est and all(e["callType"] == "Inbound" and e["otherDN"].startswith("+1555")
                       and "Segment" in e["userData"] for e in est)
    # the stop deleted the heartbeat
    assert rc.get(HEARTBEAT) is None


# ------------------------------------------------ predictive calls
# docs/outbound.md, "The voice side: predictive calls": the dialler's
# requests written straight into voice:requests, as workers/outbound does.

def dial(voice, dn="8000", destination="+15550100", **kw):
    """RequestMakePredictiveCall; its EventDialing."""
    rid = voice.send("RequestMakePredictiveCall", dn=dn, destination=destination,
                     **kw)
    d = voice.expect("EventDialing", dn, requestId=rid, callType="Outbound",
                     otherDN=destination, thisDNRole="Origination")
    check_common(d)
    return d


def waited(a, b):
    """Milliseconds between two events, by their time."""
    return b["time"] - a["time"]


def test_predictive_answer_route_to_agent(voicesim, voice):
    voicesim("--outbound-ring", "0.6:0.6")
    voice.ready()
    login_ready(voice, "5002", "7002")
    ud = {"GSW_RECORD_HANDLE": 7, "GSW_CAMPAIGN_NAME": "c1"}
    d = dial(voice, "8000", callerId="+15559999", ringTimeout=25, cpd=True,
             userData=ud)
    c = d["connId"]
    assert d["userData"] == ud
    assert voice.call_state("8000", c)["state"] == "Dialing"
    e = voice.expect("EventEstablished", "8000", connId=c, callResult="Answer",
                     otherDN="+15550100")
    assert 550 <= waited(d, e) <= 1500, waited(d, e)
    assert voice.call_state("8000", c)["state"] == "Established"
    # the call waits at 8000 until it is routed to the agent's phone
    rid = voice.send("RequestRouteCall", dn="8000", connId=c, destination="5002")
    voice.expect("EventReleased", "8000", requestId=rid, connId=c,
                 cause="Transferred")
    r = voice.expect("EventRinging", "5002", connId=c, otherDN="+15550100",
                     thirdDN="8000", callType="Outbound", agentId="7002")
    assert r["userData"] == ud and "requestId" not in r
    assert voice.state("8000") is None
    assert voice.call_state("5002", c)["state"] == "Ringing"
    voice.send("RequestAnswerCall", dn="5002", connId=c)
    voice.expect("EventEstablished", "5002", connId=c)
    assert voice.call_state("5002", c)["parties"] == ["+15550100", "5002"]
    # the customer hangs up: the phone is released, no one else is told
    rid = voice.send("SimRelease", connId=c)
    voice.expect("EventReleased", "5002", requestId=rid, connId=c, cause="Normal")
    assert voice.state("5002")["calls"] == []
    time.sleep(0.3)
    voice.poll()
    assert [e for e in voice.seen[voice.pos:] if e.get("connId") == c] == []


def test_predictive_generated_agents(voicesim, voice, rc):
    """Routed calls go to the generated agents, who answer after
    --agent-answer, talk, wrap up and, with --notready 0, never break."""
    v = voicesim("--agents", "2", "--agent-answer", "0.3", "--talk", "0.4",
                 "--dist", "fixed", "--wrap", "0.2", "--notready", "0",
                 "--outbound-ring", "0.05:0.05")
    voice.ready()
    voice.expect("EventAgentReady", "5002")
    for n in range(6):
        c = dial(voice, "6000", f"+1555010{n}")["connId"]
        voice.expect("EventEstablished", "6000", connId=c, callResult="Answer")
        voice.send("RequestRouteCall", dn="6000", connId=c, destination="5001")
        r = voice.expect("EventRinging", "5001", connId=c)
        e = voice.expect("EventEstablished", "5001", connId=c)
        assert 250 <= waited(r, e) <= 1000, waited(r, e)
        end = voice.expect("EventReleased", "5001", connId=c, cause="Normal")
        assert 350 <= waited(e, end) <= 1200, waited(e, end)
        voice.expect("EventAgentNotReady", "5001", workMode="AfterCallWork")
        voice.expect("EventAgentReady", "5001", workMode="AutoIn")
    assert not [e for e in voice.seen if e.get("workMode") == "AuxWork"]
    v.stop()
    assert re.search(r"outbound: 6 predictive calls, Answer 6; routed 6, "
                     r"abandoned 0, released by the dialler 0", v.log()), v.log()


def test_predictive_outcomes(voicesim, voice, rc):
    # busy after --busy-after (default 2 s); no answer at ringTimeout
    v = voicesim("--outbound-mix", "busy=50,noanswer=50", "--seed", "3",
                 "--log-level", "debug")
    voice.ready()
    got = {}
    for n in range(12):
        d = dial(voice, "6100", f"+1555020{n:02d}", ringTimeout=1.0)
        e = voice.expect_any(lambda e: e.get("connId") == d["connId"] and
                             e["event"] == "EventReleased", timeout=6)
        assert e["thisDN"] == "6100" and "requestId" not in e, e
        got.setdefault(e["cause"], []).append(waited(d, e))
        assert voice.state("6100") is None
        if len(got) == 2 and n >= 3:
            break
    assert set(got) == {"Busy", "NoAnswer"}, got
    assert all(1900 <= t <= 2700 for t in got["Busy"]), got
    assert all(950 <= t <= 1700 for t in got["NoAnswer"]), got
    assert re.search(r"level=debug .*predictive call [0-9a-f]{16}: 6100 -> "
                     r"\+1555020\d\d: Busy after \d+ ms", v.log()), v.log()
    v.stop()
    rc.delete(EVENTS, STATE)
    voice.last, voice.seen, voice.pos = "0-0", [], 0
    # a machine: dropped with CPD, established (waiting) without
    voicesim("--outbound-mix", "machine=100", "--outbound-ring", "0.1:0.2",
             "--busy-suffix", "0199")
    voice.ready()
    d = dial(voice, "6100", cpd=True)
    voice.expect("EventReleased", "6100", connId=d["connId"],
                 cause="AnsweringMachine")
    d = dial(voice, "6100", cpd=False)
    voice.expect("EventEstablished", "6100", connId=d["connId"],
                 callResult="AnsweringMachine")
    assert voice.call_state("6100", d["connId"])["state"] == "Established"
    # --busy-suffix keeps its precedence
    d = dial(voice, "6100", destination="+15550199", cpd=True)
    voice.expect("EventReleased", "6100", connId=d["connId"], cause="Busy",
                 timeout=5)


def test_predictive_patience(voicesim, voice):
    voicesim("--outbound-ring", "0.1:0.1", "--outbound-patience", "0.8")
    voice.ready()
    d = dial(voice, "6000")
    c = d["connId"]
    e = voice.expect("EventEstablished", "6000", connId=c, callResult="Answer")
    a = voice.expect("EventAbandoned", "6000", connId=c, cause="Abandoned")
    assert 750 <= waited(e, a) <= 1600, waited(e, a)
    assert voice.state("6000") is None
    voice.error(voice.send("RequestRouteCall", dn="6000", connId=c,
                           destination="5001"), "NoSuchCall")


def test_predictive_errors_and_release(voicesim, voice):
    voicesim("--outbound-ring", "0.5:0.5", "--busy-suffix", "0199")
    voice.ready()
    send = voice.send
    voice.error(send("RequestMakePredictiveCall", dn="9999",
                     destination="+15550100"), "UnknownDN")
    voice.error(send("RequestMakePredictiveCall", dn="8000", destination="5001"),
                "InvalidState")
    voice.error(send("RequestMakePredictiveCall", dn="8000", destination="4242"),
                "UnknownDN")
    voice.error(send("RequestMakePredictiveCall", dn="8000"), "BadRequest")
    voice.error(send("RequestMakePredictiveCall", dn="8000",
                     destination="+15550100", ringTimeout="x"), "BadRequest")
    voice.error(send("RequestMakePredictiveCall", dn="8000",
                     destination="+15550100", cpd="yes"), "BadRequest")
    # released by the dialler while it rings: the outcome never comes
    c = dial(voice, "8000")["connId"]
    voice.error(send("RequestRouteCall", dn="8000", connId=c, destination="5001"),
                "InvalidState")
    rid = send("RequestReleaseCall", dn="8000", connId=c)
    voice.expect("EventReleased", "8000", requestId=rid, connId=c, cause="Normal")
    assert voice.state("8000") is None
    # answered: route errors leave it waiting at 8000
    c = dial(voice, "8000")["connId"]
    voice.expect("EventEstablished", "8000", connId=c, callResult="Answer")
    voice.send("RequestMakeCall", dn="5001", destination="5003")
    voice.expect("EventRinging", "5003")
    for kw, code in ((dict(connId="00000000000000ff", destination="5002"),
                      "NoSuchCall"),
                     (dict(destination="4242"), "UnknownDN"),
                     (dict(destination="8000"), "InvalidState"),
                     (dict(destination="5003"), "Busy"),
                     (dict(destination="+15550199"), "Busy"),
                     (dict(destination=5002), "BadRequest")):
        voice.error(send("RequestRouteCall", **dict(dict(dn="8000", connId=c),
                                                    **kw)), code)
    voice.error(send("RequestRouteCall", dn="5002", connId=c, destination="5004"),
                "NoSuchCall")
    assert voice.call_state("8000", c)["state"] == "Established"
    # the dialler lets it go: released, the customer disappears
    rid = send("RequestReleaseCall", dn="8000", connId=c)
    voice.expect("EventReleased", "8000", requestId=rid, connId=c, cause="Normal")
    assert voice.state("8000") is None
    voice.error(send("SimRelease", connId=c), "NoSuchCall")
    # routed to a queue: queued there like an inbound call
    login_ready(voice, "5004", "7004")
    c = dial(voice, "8000")["connId"]
    voice.expect("EventEstablished", "8000", connId=c)
    rid = send("RequestRouteCall", dn="8000", connId=c, destination="6100")
    voice.expect("EventReleased", "8000", requestId=rid, connId=c,
                 cause="Transferred")
    voice.expect("EventRinging", "6100", connId=c, otherDN="+15550100")
    voice.expect("EventQueued", "6000", connId=c)
    voice.expect("EventRinging", "5004", connId=c, otherDN="+15550100",
                 callType="Outbound")


def test_predictive_options_checked(voicesim_bin, tenant):
    for args, said in ((["--outbound-mix", "answer=50,busy=40"], "adding up to 100"),
                       (["--outbound-mix", "answer=90,robot=10"], "no outcome robot"),
                       (["--outbound-ring", "5:2"], "MIN is over MAX"),
                       (["--outbound-ring", "5"], "want MIN:MAX"),
                       (["--busy-after", "x"], "not a number"),
                       (["--outbound-patience", "-1"], "not a number")):
        p = subprocess.run([voicesim_bin, "-c", tenant.conf_path] + args,
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and said in p.stderr, (args, p.stderr)


MIX = ("--outbound-mix", "answer=30,machine=15,busy=15,noanswer=40",
       "--outbound-ring", "0.05:0.1", "--busy-after", "0.05",
       "--outbound-patience", "0.3")


def mix_run(voicesim, voice, rc, seed, n=200):
    """n predictive calls under MIX: each call's result, in request order;
    and voicesim's summary line."""
    v = voicesim("--seed", str(seed), *MIX)
    voice.ready()
    pipe = rc.pipeline(transaction=False)
    rids = []
    for k in range(n):
        voice.n += 1
        rid = f"mix-{seed}-{k}"
        rids.append(rid)
        pipe.xadd(REQUESTS, {"request": json.dumps({
            "request": "RequestMakePredictiveCall", "requestId": rid,
            "dn": "6000", "destination": f"+1555{k:07d}",
            "ringTimeout": 0.2, "cpd": True, "userData": {"k": k}})})
    pipe.execute()
    conn, result, gone = {}, {}, set()

    def done():
        voice.poll()
        for e in voice.seen:
            if e["event"] == "EventDialing" and e.get("requestId") in rids:
                conn[e["requestId"]] = e["connId"]
            elif e["event"] == "EventEstablished" and "callResult" in e:
                result[e["connId"]] = e["callResult"]
            elif e["event"] == "EventReleased" and e["thisDN"] == "6000":
                result[e["connId"]] = e["cause"]
            elif e["event"] == "EventAbandoned" and e["thisDN"] == "6000":
                gone.add(e["connId"])
        return len(result) == n and len(gone) == list(
            result.values()).count("Answer")
    wait_for(done, 20, interval=0.1, what=f"{n} outcomes, answered ones gone")
    assert voice.state("6000") is None
    seq = [result[conn[r]] for r in rids]
    v.stop()
    summary = re.search(r"outbound: ([^\"]*)", v.log()).group(1)
    rc.delete(EVENTS, STATE, REQUESTS)
    voice.last, voice.seen, voice.pos = "0-0", [], 0
    return seq, summary


def test_predictive_mix_is_seeded(voicesim, voice, rc):
    a, summary = mix_run(voicesim, voice, rc, 11)
    count = {k: a.count(k) for k in set(a)}
    assert set(count) == {"Answer", "AnsweringMachine", "Busy", "NoAnswer"}, count
    # 200 draws: within four standard deviations of the mix
    for k, p in (("Answer", .30), ("AnsweringMachine", .15), ("Busy", .15),
                 ("NoAnswer", .40)):
        sd = (200 * p * (1 - p)) ** 0.5
        assert abs(count[k] - 200 * p) <= 4 * sd, (k, count)
    # every answered customer waited, then hung up (patience 0.3 s)
    assert summary.startswith("200 predictive calls, Answer %d, "
                              "AnsweringMachine %d, Busy %d, NoAnswer %d; "
                              "routed 0, abandoned %d" % (
                                  count["Answer"], count["AnsweringMachine"],
                                  count["Busy"], count["NoAnswer"],
                                  count["Answer"])), summary
    b, _ = mix_run(voicesim, voice, rc, 11)
    assert a == b
    c, _ = mix_run(voicesim, voice, rc, 12)
    assert a != c
