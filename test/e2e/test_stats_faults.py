# SPDX-License-Identifier: Apache-2.0
"""The stats worker tells the truth after faults, each made by the test:

- a statistic opened while the worker is ready but its snapshot not yet
  restored (the restore held back by the test) is corrected once the
  model is back, for its client and for new ones;
- after a Redis restart under voicesim traffic (events lost while Redis
  was away), and after the stream was trimmed past the worker's position
  (the worker stopped with SIGSTOP meanwhile), the model agrees with the
  voice side's state hash voice:state again;
- a Growing TotalLoginTime opened on a worker that is killed before its
  total was saved counts the logins from their own start on the next
  worker, with a snapshot of the model and without one.

The voicesim tests are skipped when $VOICESIM_BIN is not set (make e2e
sets it)."""

import json
import os
import signal
import time

import pytest

from evclient import Voice, key
from helpers import TENANT_ID, config_api_ready, free_port, wait_for, VoiceSim
from test_stats import StatsTenant, open_stat, peek, wait_value

MODEL_KEY = f"tenantd:{{{TENANT_ID}}}:stats:model"
GROWING_KEY = f"tenantd:{{{TENANT_ID}}}:stats:growing"
TENANT = ("Tenant", "t")


class FaultTenant(StatsTenant):
    """tenantd with config and stats workers; a switch, phones 5001-500N on
    places P1-PN, agent logins 7001-700N, persons E1-EN (agents), queue
    6000 and routing point 6100, for voicesim's traffic."""

    def __init__(self, tenantd, agents):        # pylint: disable=super-init-not-called
        self.port = free_port()
        self.d = tenantd({"workers": {"stats": {
            "enabled": True, "listen": f"127.0.0.1:{self.port}"}}},
            config_worker=True)
        self.token = self.d.admin_token
        config_api_ready(self.d)

        c = self.d.create
        sw = c("switches", {"name": "sw1"})
        for i in range(1, agents + 1):
            dn = c("dns", {"number": f"50{i:02d}", "type": "Extension", "switch": sw})
            place = c("places", {"name": f"P{i}", "dns": [dn]})
            login = c("agent-logins", {"loginCode": f"70{i:02d}", "switch": sw})
            c("persons", {"userName": f"agent{i}", "employeeId": f"E{i}",
                          "isAgent": True, "place": place,
                          "agentLogins": [{"agentLogin": login}]})
        c("dns", {"number": "6000", "type": "ACDQueue", "switch": sw})
        c("dns", {"number": "6100", "type": "RoutingPoint", "switch": sw})
        wait_for(self.up, 20, what="the stats port")


def kill_stats(t, before_kill=None):
    """SIGSTOP the stats worker (it saves nothing more), run before_kill,
    SIGKILL it; wait for the next worker to serve.  Returns its pid."""
    old = t.d.worker_pid("stats")
    os.kill(old, signal.SIGSTOP)
    if before_kill is not None:
        before_kill()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: t.d.worker_pid("stats") not in (None, old), 10,
             what="a new stats worker")
    wait_for(t.up, 10, what="the new stats worker serving")
    return t.d.worker_pid("stats")


def saved_agents(r):
    text = r.get(MODEL_KEY)
    return {a["id"] for a in json.loads(text)["model"]["agents"]} if text else set()


# ---- 1: opened before the restore ----

def test_statistic_opened_before_the_restore_is_corrected(tenantd, redis, voicesim_bin,
                                                          tmp_path):
    """8 agents logged in by voicesim; the worker is killed, and its
    successor finds stats:model unreadable (the test made it a hash) so the
    restore is retried every second while the worker already serves.  A
    statistic opened then is invalid; once the test puts the snapshot back,
    it turns valid with 8, and a new client gets 8 too."""
    t = FaultTenant(tenantd, 8)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, str(tmp_path), ["--agents", "8"])
    try:
        wait_for(t.link_up, 15, what="voicesim's heartbeat")
        s = t.session()
        logged = open_stat(s, *TENANT, "CurrentNumberLoggedInAgents")
        wait_value(s, logged, 8, timeout=10)
        r = Voice(redis.port).r
        wait_for(lambda: len(saved_agents(r)) == 8, 10, what="a snapshot with 8 agents")
        snap = {}

        def hide_snapshot():
            snap["text"] = r.get(MODEL_KEY)
            p = r.pipeline(transaction=True)
            p.delete(MODEL_KEY)
            p.hset(MODEL_KEY, "held", "back by the test")
            p.execute()
        kill_stats(t, hide_snapshot)
        early = t.session()
        r1 = early.call("RequestOpenStatistic", object={"type": "Tenant", "id": "t"},
                        statistic="CurrentNumberLoggedInAgents")
        assert r1["event"] == "EventStatisticOpened" and r1["valid"] is False, r1
        sid = r1["statisticId"]
        ready = open_stat(early, *TENANT, "CurrentNumberReadyAgents")
        time.sleep(1.2)                 # a retried restore or two
        assert peek(early, sid) == 0    # nothing of the model yet
        r.delete(MODEL_KEY)
        r.set(MODEL_KEY, snap["text"])
        early.wait(lambda m: m.get("event") == "EventStatisticValid"
                   and m["statisticId"] == sid, 10, "EventStatisticValid")
        info = early.wait(lambda m: m.get("event") == "EventInfo"
                          and m["statisticId"] == sid, 5, "its value")
        assert info["value"] == 8, info
        wait_value(early, sid, 8)
        wait_value(early, ready, 8)
        late = t.session()
        r2 = late.call("RequestOpenStatistic", object={"type": "Tenant", "id": "t"},
                       statistic="CurrentNumberLoggedInAgents")
        assert r2["valid"] is True and r2["value"] == 8, r2
    finally:
        sim.stop()


# ---- 2: events missed ----

QUEUES = {"6000"}


def truth(state):
    """What voice:state says, counted as the stats worker counts: agents
    logged in, Ready with no call, calls talking on phones (established or
    held), calls waiting in queues."""
    logged = ready = talking = waiting = 0
    for dn, text in state.items():
        st = json.loads(text)
        calls = st.get("calls") or []
        if dn in QUEUES:
            waiting += sum(1 for c in calls if c.get("state") == "Queued")
            continue
        ag = st.get("agent") or {}
        if ag.get("agentId") and ag.get("state") not in (None, "LoggedOut"):
            logged += 1
            ready += ag["state"] == "Ready" and not calls
        talking += sum(1 for c in calls if c.get("state") in ("Established", "Held"))
    return {"logged": logged, "ready": ready, "talking": talking, "waiting": waiting}


def test_redis_restart_under_traffic(tenantd, redis, voicesim_bin, tmp_path):
    """voicesim drives traffic; Redis restarts empty, so the events written
    while it was away are lost (voicesim writes its whole state hash again
    when it is back).  The stats worker's reader reconnects: its model must
    agree with voice:state, as the events worker's answers do.  voicesim is
    then stopped (SIGSTOP) so that the hash holds still for the check."""
    t = FaultTenant(tenantd, 8)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, str(tmp_path), [
        "--agents", "8", "--rate", "4", "--ring", "0.2", "--talk", "1.5",
        "--wrap", "0.3", "--notready", "0", "--patience", "30", "--seed", "11",
        "--to", "6000"])
    stopped = False
    try:
        wait_for(t.link_up, 15, what="voicesim's heartbeat")
        s = t.session()
        sids = {name: open_stat(s, *TENANT, stat, notify={"mode": "none"})
                for name, stat in (("logged", "CurrentNumberLoggedInAgents"),
                                   ("ready", "CurrentNumberReadyAgents"),
                                   ("talking", "CurrentNumberTalkingAgents"),
                                   ("waiting", "CurrentNumberWaitingCalls"))}
        wait_value(s, sids["logged"], 8, timeout=10)
        time.sleep(2)
        redis.stop()
        time.sleep(2)               # voicesim's calls go on; their events are lost
        redis.start()
        wait_for(t.link_up, 15, what="the voice link back")
        time.sleep(2)               # traffic after the restart
        sim.proc.send_signal(signal.SIGSTOP)
        stopped = True
        r = Voice(redis.port).r
        want = truth(r.hgetall(key("state")))
        got = {}

        def agree():
            got.update({n: peek(s, sid) for n, sid in sids.items()})
            return got == want
        try:
            wait_for(agree, 5, what="the stats worker to agree with voice:state")
        except AssertionError:
            raise AssertionError(f"stats {got} against voice:state {want}") from None
    finally:
        if stopped:
            sim.proc.send_signal(signal.SIGCONT)
        sim.stop()


@pytest.fixture
def st(tenantd, redis):
    t = StatsTenant(tenantd)
    t.voice = Voice(redis.port)
    t.voice.beat()
    wait_for(t.link_up, 10, what="the voice link")
    yield t
    Voice.stop_all()


def agent(code, state="Ready", **more):
    return dict({"agentId": code, "state": state, "workMode": "ManualIn",
                 "since": int(time.time() * 1000)}, **more)


def login(st, n):
    """Agent 700n logs in on 500n, Ready, with its state in voice:state."""
    dn, code = f"500{n}", f"700{n}"
    st.voice.event("EventAgentLogin", thisDN=dn, agentId=code)
    st.voice.event("EventAgentReady", thisDN=dn, agentId=code, workMode="ManualIn",
                   state={"dn": dn, "agent": agent(code), "calls": []})


def test_stream_trimmed_past_the_worker(st):
    """The stats worker is stopped (SIGSTOP); meanwhile agents 7001 and 7002
    log out and the stream is trimmed past both logouts, then 7003 goes
    NotReady.  Resumed, the worker reads only that last entry: it must see
    that entries after its position were deleted and take the truth from
    voice:state."""
    s = st.session()
    logged = open_stat(s, *TENANT, "CurrentNumberLoggedInAgents")
    ready = open_stat(s, *TENANT, "CurrentNumberReadyAgents")
    e1 = open_stat(s, "Agent", "E1", "CurrentAgentState")
    e3 = open_stat(s, "Agent", "E3", "CurrentAgentState")
    for n in (1, 2, 3):
        login(st, n)
    wait_value(s, logged, 3)
    time.sleep(2.2)         # its trim check has seen where it is
    pid = st.d.worker_pid("stats")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(1.3)         # its blocked XREAD times out meanwhile
        ev = {"region": "local", "time": int(time.time() * 1000)}
        p = st.voice.r.pipeline(transaction=True)
        for n in (1, 2):
            p.xadd(key("events"), {"event": json.dumps(dict(
                ev, event="EventAgentLogout", eventId=f"trim-{n}", thisDN=f"500{n}",
                agentId=f"700{n}"))})
            p.hset(key("state"), f"500{n}", json.dumps({"dn": f"500{n}", "calls": []}))
        p.xtrim(key("events"), maxlen=0)
        p.xadd(key("events"), {"event": json.dumps(dict(
            ev, event="EventAgentNotReady", eventId="trim-3", thisDN="5003",
            agentId="7003", reason="Break"))})
        p.hset(key("state"), "5003", json.dumps({"dn": "5003", "calls": [], "agent": agent(
            "7003", "NotReady", reason="Break")}))
        p.execute()
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_value(s, e3, {"state": "NotReady", "reason": "Break"})    # its own event
    wait_value(s, logged, 1)
    assert peek(s, ready) == 0
    assert peek(s, e1)["state"] == "LoggedOut"


# ---- 3: a Growing TotalLoginTime whose total was never saved ----

def login_time_after_kill(st, snapshot):
    s = st.session()
    t0 = time.time()
    login(st, 1)
    total = open_stat(s, "Agent", "E1", "TotalLoginTime")
    r = st.voice.r
    if snapshot:
        wait_for(lambda: "7001" in saved_agents(r), 10, what="a snapshot with 7001")
    time.sleep(1.5)

    def forget():
        if not snapshot:
            r.delete(MODEL_KEY)
        # The total was never saved: the test takes it away if it was.
        r.delete(GROWING_KEY)
    kill_stats(st, forget)
    s = st.session()
    wait_for(lambda: peek(s, open_stat(s, "Agent", "E1", "CurrentAgentState"))["state"]
             == "Ready", 10, what="E1 Ready on the new worker")
    total = open_stat(s, "Agent", "E1", "TotalLoginTime")
    before = time.time()
    got = peek(s, total)
    assert before - t0 - 0.5 <= got <= time.time() - t0 + 0.5, (got, before - t0)


def test_total_login_time_resumes_after_kill(st):
    """Killed after a snapshot of the model (7001 logged in) but before its
    TotalLoginTime was saved: on the next worker, the login counts from its
    own start."""
    login_time_after_kill(st, snapshot=True)


def test_total_login_time_resumes_after_kill_without_snapshot(st):
    """Killed before anything was saved: the next worker starts at the
    stream's end, learns 7001 from voice:state and counts the login from
    the time the state gives."""
    login_time_after_kill(st, snapshot=False)
