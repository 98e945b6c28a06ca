# SPDX-License-Identifier: Apache-2.0
"""The stats worker with tools/voicesim as the voice side: scripted inbound
calls through routing point 6100 and queue 6000 to agents E1 and E2
(requests written into voice:requests, as the voicesim tests do), and
every shipped statistic checked against values worked out from the
events' own `time` fields, read back from voice:events with redis-py, so
that the check is exact whatever the wall clock did in between.  Also a
Growing profile with a reset time a minute ahead in notify mode "reset",
and SinceLogin for an agent.

Skipped when $VOICESIM_BIN is not set (make e2e sets it)."""

import datetime
import json
import signal
import time

import pytest
import redis as redislib

from evclient import key
from helpers import wait_for, VoiceSim
from test_stats import StatsTenant, open_stat, peek




class Switch:
    """Requests to voicesim through voice:requests, answers and every event
    read back from voice:events."""

    def __init__(self, port):
        self.rc = redislib.Redis(host="127.0.0.1", port=port, decode_responses=True)
        self.seen = []
        self.last = "0-0"
        self.n = 0

    def poll(self):
        for eid, f in self.rc.xrange(key("events"), min="(" + self.last
                                     if self.last != "0-0" else "-"):
            self.last = eid
            self.seen.append(json.loads(f["event"]))

    def send(self, request, **fields):
        self.n += 1
        rid = f"st-{self.n}"
        self.rc.xadd(key("requests"), {"request": json.dumps(
            dict(fields, request=request, requestId=rid))})
        return rid

    def expect(self, pred, what, timeout=8):
        def find():
            self.poll()
            for e in self.seen:
                if pred(e):
                    return e
            return None
        return wait_for(find, timeout, interval=0.02, what=what)

    def do(self, request, **fields):
        """A request, and the event that answers it (not an error)."""
        rid = self.send(request, **fields)
        e = self.expect(lambda e: e.get("requestId") == rid, f"answer to {request}")
        assert e["event"] != "EventError", (request, fields, e)
        return e

    def event(self, name, dn, conn=None, after=None):
        def pred(e):
            return (e.get("event") == name and e.get("thisDN") == dn
                    and (conn is None or e.get("connId") == conn)
                    and (after is None or e["time"] >= after))
        return self.expect(pred, f"{name} on {dn}")

    def events(self, name, dn=None, conn=None):
        self.poll()
        return [e for e in self.seen if e.get("event") == name
                and (dn is None or e.get("thisDN") == dn)
                and (conn is None or e.get("connId") == conn)]


@pytest.fixture
def sim(tenantd, redis, voicesim_bin, tmp_path):
    t = StatsTenant(tenantd)
    s = VoiceSim(voicesim_bin, t.d.conf_path, str(tmp_path))
    wait_for(t.link_up, 15, what="voicesim's heartbeat seen by the stats worker")
    t.sw = Switch(redis.port)
    t.sw.poll()
    yield t
    s.stop()


def s_(ms):
    return ms / 1000.0


def close(a, b):
    """Values the worker rounds to 3 decimals."""
    return a == pytest.approx(b, abs=0.0015)


def test_calls_through_queue_every_shipped_statistic(sim):
    t, sw = sim, sim.sw
    s = t.session()
    A, Q, RP = "Agent", "Queue", "RoutingPoint"
    ids = {}
    want = [
        (A, "E1", "CurrentAgentState"), (A, "E2", "CurrentAgentState"),
        ("Place", "P1", "CurrentAgentState"),
        ("GroupAgents", "G1", "CurrentNumberReadyAgents"),
        ("GroupAgents", "G1", "CurrentNumberNotReadyAgents"),
        ("GroupAgents", "G1", "CurrentNumberTalkingAgents"),
        ("GroupAgents", "G1", "CurrentNumberLoggedInAgents"),
        (Q, "6000", "CurrentNumberWaitingCalls"), (Q, "6000", "CurrentMaxWaitingTime"),
        ("GroupQueues", "Q", "CurrentNumberWaitingCalls"),
        (Q, "6000", "TotalNumberInboundCalls"), (RP, "6100", "TotalNumberInboundCalls"),
        ("Tenant", "t", "TotalNumberInboundCalls"),
        (Q, "6000", "TotalNumberAnsweredCalls"), (RP, "6100", "TotalNumberAnsweredCalls"),
        (A, "E1", "TotalNumberAnsweredCalls"), (A, "E2", "TotalNumberAnsweredCalls"),
        ("Tenant", "t", "TotalNumberAnsweredCalls"),
        (Q, "6000", "TotalNumberAbandonedCalls"), (RP, "6100", "TotalNumberAbandonedCalls"),
        ("Tenant", "t", "TotalNumberAbandonedCalls"),
        (A, "E1", "TotalTalkTime"), (A, "E2", "TotalTalkTime"),
        ("GroupAgents", "G1", "TotalTalkTime"),
        (A, "E1", "AverageHandlingTime"), ("GroupAgents", "G1", "AverageHandlingTime"),
        (A, "E1", "AverageSpeedOfAnswer"), (Q, "6000", "AverageSpeedOfAnswer"),
        (Q, "6000", "ServiceFactor"), (A, "E2", "TotalLoginTime"),
    ]
    for typ, oid, st in want:
        ids[(oid, st)] = open_stat(s, typ, oid, st)
    sf1 = open_stat(s, Q, "6000", {"category": "ServiceFactor", "threshold": 1,
                                   "actions": ["CallAnswered", "CallAbandoned"]})

    def v(oid, st):
        return peek(s, ids[(oid, st)])

    # E1 logs in Ready, E2 NotReady; E3 stays out.
    l1 = sw.do("RequestAgentLogin", dn="5001", agentId="7001", workMode="ManualIn")
    r1 = sw.event("EventAgentReady", "5001")
    l2 = sw.do("RequestAgentLogin", dn="5002", agentId="7002")
    sw.event("EventAgentNotReady", "5002")
    wait_for(lambda: v("G1", "CurrentNumberLoggedInAgents") == 2, 5, what="2 logged in")
    assert v("G1", "CurrentNumberReadyAgents") == 1
    assert v("G1", "CurrentNumberNotReadyAgents") == 1
    st = v("E1", "CurrentAgentState")
    assert st["state"] == "Ready" and st["since"] == r1["time"] and st["dn"] == "5001"
    assert v("P1", "CurrentAgentState")["state"] == "Ready"

    # Call 1: routing point -> queue -> E1 (Ready), answered, talk, release,
    # after-call work, Ready.
    sw.do("SimInboundCall", to="6100", patience=0)
    ring1 = sw.event("EventRinging", "5001")
    c1 = ring1["connId"]
    wait_for(lambda: v("E1", "CurrentAgentState")["state"] == "Ringing", 5,
             what="E1 ringing")
    assert v("G1", "CurrentNumberReadyAgents") == 0
    time.sleep(0.3)
    est1 = sw.do("RequestAnswerCall", dn="5001", connId=c1)
    wait_for(lambda: v("G1", "CurrentNumberTalkingAgents") == 1, 5, what="talking")
    st = v("E1", "CurrentAgentState")
    assert st["state"] == "Talking" and st["connId"] == c1 and st["since"] == est1["time"]
    time.sleep(0.6)
    rel1 = sw.do("RequestReleaseCall", dn="5001", connId=c1)
    acw1 = sw.do("RequestAgentNotReady", dn="5001", workMode="AfterCallWork")
    wait_for(lambda: v("E1", "CurrentAgentState")["state"] == "AfterCallWork", 5,
             what="E1 in after-call work")
    assert v("G1", "CurrentNumberNotReadyAgents") == 2
    time.sleep(0.4)
    # E1 goes on a break instead: calls 2 and 3 wait in the queue.
    nr1 = sw.do("RequestAgentNotReady", dn="5001", workMode="AuxWork", reason="Break")

    sw.do("SimInboundCall", to="6100", patience=0)
    q2 = sw.expect(lambda e: e["event"] == "EventQueued" and e["connId"] != c1,
                   "call 2 queued")
    c2 = q2["connId"]
    sw.do("SimInboundCall", to="6100", patience=0)
    q3 = sw.expect(lambda e: e["event"] == "EventQueued" and e["connId"] not in (c1, c2),
                   "call 3 queued")
    c3 = q3["connId"]
    wait_for(lambda: v("6000", "CurrentNumberWaitingCalls") == 2, 5, what="2 waiting")
    assert v("Q", "CurrentNumberWaitingCalls") == 2
    t0 = time.time()
    mw = v("6000", "CurrentMaxWaitingTime")
    t1 = time.time()
    # The oldest waits since its EventQueued; "now" is the worker's clock.
    assert t0 - s_(q2["time"]) - 0.05 <= mw <= t1 - s_(q2["time"]) + 0.05, mw
    time.sleep(1.2)
    # Call 2's caller hangs up; call 3 goes to E2 when E2 becomes Ready.
    sw.do("SimRelease", connId=c2)
    ab2 = sw.event("EventAbandoned", "6000", c2)
    wait_for(lambda: v("6000", "CurrentNumberWaitingCalls") == 1, 5, what="1 waiting")
    sw.do("RequestAgentReady", dn="5002")
    ring3 = sw.event("EventRinging", "5002", c3)
    est3 = sw.do("RequestAnswerCall", dn="5002", connId=c3)
    wait_for(lambda: v("6000", "CurrentNumberWaitingCalls") == 0, 5, what="0 waiting")
    time.sleep(0.5)
    rel3 = sw.do("RequestReleaseCall", dn="5002", connId=c3)
    out2 = sw.do("RequestAgentLogout", dn="5002")
    wait_for(lambda: v("G1", "CurrentNumberLoggedInAgents") == 1, 5, what="E2 out")

    # ---- expected values, from the events' own times ----
    sw.poll()
    rp_ring = {e["connId"]: e for e in sw.events("EventRinging", "6100")}
    queued = {e["connId"]: e for e in sw.events("EventQueued", "6000")}
    assert set(rp_ring) == set(queued) == {c1, c2, c3}
    entered = {c: rp_ring[c]["time"] for c in (c1, c2, c3)}   # first RP or queue
    ans1 = s_(est1["time"] - entered[c1])
    ans3 = s_(est3["time"] - entered[c3])
    # Abandoned in the queue: its wait there (docs: "duration: the wait").
    aband2 = s_(ab2["time"] - queued[c2]["time"])
    talk1 = s_(rel1["time"] - est1["time"])
    talk3 = s_(rel3["time"] - est3["time"])
    acw = s_(nr1["time"] - acw1["time"])
    expect = {
        ("6000", "TotalNumberInboundCalls"): 3,
        ("6100", "TotalNumberInboundCalls"): 3,
        ("t", "TotalNumberInboundCalls"): 3,
        ("6000", "TotalNumberAnsweredCalls"): 2,
        ("6100", "TotalNumberAnsweredCalls"): 2,
        ("E1", "TotalNumberAnsweredCalls"): 1,
        ("E2", "TotalNumberAnsweredCalls"): 1,
        ("t", "TotalNumberAnsweredCalls"): 2,
        ("6000", "TotalNumberAbandonedCalls"): 1,
        ("6100", "TotalNumberAbandonedCalls"): 0,
        ("t", "TotalNumberAbandonedCalls"): 1,
        ("6000", "CurrentNumberWaitingCalls"): 0,
        ("6000", "CurrentMaxWaitingTime"): 0,
        ("G1", "CurrentNumberReadyAgents"): 0,
        ("G1", "CurrentNumberNotReadyAgents"): 1,
        ("G1", "CurrentNumberTalkingAgents"): 0,
        ("G1", "CurrentNumberLoggedInAgents"): 1,
    }
    got = {k: v(*k) for k in expect}
    assert got == expect
    approx = {
        ("E1", "TotalTalkTime"): talk1,
        ("E2", "TotalTalkTime"): talk3,
        ("G1", "TotalTalkTime"): talk1 + talk3,
        # (inbound talk + after-call work) / answered
        ("E1", "AverageHandlingTime"): (talk1 + acw) / 1,
        ("G1", "AverageHandlingTime"): (talk1 + acw + talk3) / 2,
        ("E1", "AverageSpeedOfAnswer"): ans1,
        ("6000", "AverageSpeedOfAnswer"): (ans1 + ans3) / 2,
        ("6000", "ServiceFactor"): 100.0,
        ("E2", "TotalLoginTime"): s_(out2["time"] - l2["time"]),
    }
    got = {k: v(*k) for k in approx}
    bad = {k: (got[k], w) for k, w in approx.items() if not close(got[k], w)}
    assert not bad, f"(got, expected): {bad}"
    # Threshold 1 s: answered within 1 s / (answered + abandoned after 1 s).
    within = sum(1 for a in (ans1, ans3) if a <= 1)
    late = 1 if aband2 > 1 else 0
    assert close(peek(s, sf1), 100.0 * within / (2 + late)), (ans1, ans3, aband2)
    st = v("E1", "CurrentAgentState")
    assert st["state"] == "NotReady" and st["reason"] == "Break"
    assert st["since"] == nr1["time"] and st["workMode"] == "AuxWork"
    assert v("E2", "CurrentAgentState")["state"] == "LoggedOut"
    assert ring3["thirdDN"] == "6000" and ring1["otherDN"]


def call_on(sw, dn, done):
    """An inbound call to queue 6000, answered on dn and released."""
    sw.do("SimInboundCall", to="6000", patience=0)
    ring = sw.expect(lambda e: e["event"] == "EventRinging" and e["thisDN"] == dn
                     and e["connId"] not in done, f"a call ringing on {dn}")
    done.add(ring["connId"])
    sw.do("RequestAnswerCall", dn=dn, connId=ring["connId"])
    return sw.do("RequestReleaseCall", dn=dn, connId=ring["connId"])


def test_since_login(sim):
    """SinceLogin counts only since the agent's last login: a call answered
    before a logout and login again is not counted, nor the first login's
    time."""
    t, sw = sim, sim.sw
    s = t.session()
    since = open_stat(s, "Agent", "E1", "TotalNumberAnsweredCalls",
                      profile={"type": "SinceLogin"})
    grow = open_stat(s, "Agent", "E1", "TotalNumberAnsweredCalls")
    login_since = open_stat(s, "Agent", "E1", "TotalLoginTime",
                            profile={"type": "SinceLogin"})
    state = open_stat(s, "Agent", "E1", "CurrentAgentState")
    done = set()
    sw.do("RequestAgentLogin", dn="5001", agentId="7001", workMode="ManualIn")
    sw.event("EventAgentReady", "5001")
    call_on(sw, "5001", done)
    wait_for(lambda: peek(s, grow) == 1, 5, what="1 answered")
    assert peek(s, since) == 1
    sw.do("RequestAgentLogout", dn="5001")
    login2 = sw.do("RequestAgentLogin", dn="5001", agentId="7001", workMode="ManualIn")
    ready2 = sw.event("EventAgentReady", "5001", after=login2["time"])
    wait_for(lambda: peek(s, state)["since"] == ready2["time"], 5,
             what="the second login seen")
    t0 = time.time()
    lt = peek(s, login_since)
    t1 = time.time()
    got = peek(s, since)
    assert got == 0, (f"SinceLogin TotalNumberAnsweredCalls is {got} right after "
                      "the agent logged in again (the call before is counted)")
    assert t0 - s_(login2["time"]) - 0.05 <= lt <= t1 - s_(login2["time"]) + 0.05, \
        (lt, t0 - s_(login2["time"]))
    call_on(sw, "5001", done)
    wait_for(lambda: peek(s, grow) == 2, 5, what="2 answered")
    assert peek(s, since) == 1


def test_growing_reset_notify_mode_reset(sim):
    """A Growing total with a reset a minute ahead (UTC: the tenant has no
    timeZone) sends its value at the reset (notify "reset"), once, and
    starts again from 0."""
    t, sw = sim, sim.sw
    s = t.session()
    now = datetime.datetime.now(datetime.timezone.utc)
    at = (now + datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (at - now).total_seconds() < 10:       # room for the calls first
        at += datetime.timedelta(minutes=1)
    hhmm = at.strftime("%H:%M")
    reset = open_stat(s, "Queue", "6000", "TotalNumberInboundCalls",
                      profile={"type": "Growing", "reset": [hhmm]},
                      notify={"mode": "reset"})
    done = set()
    sw.do("RequestAgentLogin", dn="5001", agentId="7001", workMode="ManualIn")
    sw.event("EventAgentReady", "5001")
    call_on(sw, "5001", done)
    call_on(sw, "5001", done)
    wait_for(lambda: peek(s, reset) == 2, 5, what="2 entered")
    assert not [m for m in s.quiet(0.3) if m.get("statisticId") == reset]
    left = (at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert left < 75, left
    info = s.wait(lambda m: m.get("event") == "EventInfo" and "ref" not in m
                  and m["statisticId"] == reset, timeout=left + 5,
                  what=f"the reset at {hhmm} UTC")
    assert info["value"] == 2
    assert info["time"] >= at.timestamp() * 1000
    assert peek(s, reset) == 0
    # Nothing else from it in "reset" mode, even as calls come.
    call_on(sw, "5001", done)
    wait_for(lambda: peek(s, reset) == 1, 5, what="1 after the reset")
    assert not [m for m in s.quiet(0.5) if m.get("statisticId") == reset]


def test_voice_side_restart_forgets_its_calls(tenantd, redis, voicesim_bin, tmp_path):
    """voicesim is killed while E1 talks and a call waits in the queue; a
    new voicesim (a new boot) knows none of it.  It releases those calls and
    logs out those agents on the stream before anything else, so the stats
    worker, which reads only the stream, does not show E1 talking forever."""
    t = StatsTenant(tenantd)
    old = VoiceSim(voicesim_bin, t.d.conf_path, str(tmp_path))
    wait_for(t.link_up, 15, what="voicesim's heartbeat seen by the stats worker")
    sw = Switch(redis.port)
    s = t.session()
    state = open_stat(s, "Agent", "E1", "CurrentAgentState")
    logged = open_stat(s, "GroupAgents", "G1", "CurrentNumberLoggedInAgents")
    waiting = open_stat(s, "Queue", "6000", "CurrentNumberWaitingCalls")
    sw.do("RequestAgentLogin", dn="5001", agentId="7001", workMode="ManualIn")
    sw.do("SimInboundCall", to="6000", patience=0)
    c1 = sw.event("EventRinging", "5001")["connId"]
    sw.do("RequestAnswerCall", dn="5001", connId=c1)
    sw.do("SimInboundCall", to="6000", patience=0)      # nobody Ready: it waits
    wait_for(lambda: peek(s, waiting) == 1, 5, what="a call waiting")
    assert peek(s, state)["state"] == "Talking"
    old.proc.send_signal(signal.SIGKILL)
    old.proc.wait()
    old._log.close()
    new = VoiceSim(voicesim_bin, t.d.conf_path, str(tmp_path))
    try:
        wait_for(lambda: peek(s, state)["state"] == "LoggedOut", 15,
                 what="E1 logged out by the new voice side")
        assert peek(s, logged) == 0
        assert peek(s, waiting) == 0
        rel = sw.event("EventReleased", "5001", conn=c1)
        assert rel["cause"] == "VoiceRestart"
        # The new start works as usual.
        sw.do("RequestAgentLogin", dn="5001", agentId="7001")
        wait_for(lambda: peek(s, state)["state"] == "NotReady", 5, what="E1 back")
    finally:
        new.stop()
