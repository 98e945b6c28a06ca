# SPDX-License-Identifier: Apache-2.0
"""Calls end to end through port 8000 with tools/voicesim as the voice
side: an inbound call through a routing point and a queue to an agent,
answered, data attached, held, retrieved, transferred to a second agent
and released, as both agents' desktops and a dashboard see it; an
outbound call; the agent state flow; RequestQueryAddress; the stream of
events surviving a kill -9 of the worker while voicesim generates traffic.

Skipped when $VOICESIM_BIN is not set (make e2e sets it)."""

import json
import os
import signal

import pytest

from evclient import key, merge_position, wait_link
from helpers import wait_for, VoiceSim
from test_events import Tenant




@pytest.fixture
def sim_tenant(tenantd, redis, voicesim_bin, tmp_path):
    t = Tenant(tenantd)
    api = t.d.api
    r = api("POST", "/v1/dns", {"number": "8100", "type": "ACDQueue",
                                "switch": t.switch})
    assert r.status == 201, r.text
    sims = []

    def start(*args):
        s = VoiceSim(voicesim_bin, t.d.conf_path, str(tmp_path), args)
        sims.append(s)
        wait_for(t.link_up, 15, what="voicesim's heartbeat seen by tenantd")
        return s
    t.start_sim = start
    t.rc = __import__("redis").Redis(host="127.0.0.1", port=redis.port,
                                     decode_responses=True)
    yield t
    for s in sims:
        s.stop()


def sim_request(t, request, **fields):
    """A simulator-only request, written as the voice side reads them."""
    body = dict(fields, request=request, requestId=f"test-{request}")
    t.rc.xadd(key("requests"), {"request": json.dumps(body)})


def names(msgs):
    return [m["event"] for m in msgs if "event" in m]


def test_inbound_call_transfer_and_release(sim_tenant):
    t = sim_tenant
    t.start_sim("--ring", "0.2", "--seed", "1")
    a, b, board = t.session(client="desk-a"), t.session(client="desk-b"), \
        t.session(client="wallboard")
    for s, dns in ((a, ["5001"]), (b, ["5002"]),
                   (board, ["5001", "5002", "8000", "8100"])):
        for dn in dns:
            assert s.call("RequestRegisterAddress", dn=dn)["event"] == "EventRegistered"

    # Agents log in; B takes a break so that the call goes to A.
    r = a.call("RequestAgentLogin", dn="5001", agentId="7001", workMode="ManualIn")
    assert r["event"] == "EventAgentLogin" and r["agentId"] == "7001"
    assert a.event("EventAgentReady")["workMode"] == "ManualIn"
    assert b.call("RequestAgentLogin", dn="5002", agentId="7002")["event"] == \
        "EventAgentLogin"
    b.event("EventAgentNotReady")
    r = b.call("RequestAgentNotReady", dn="5002", workMode="AuxWork", reason="Break")
    assert r["event"] == "EventAgentNotReady" and r["reason"] == "Break"

    # A customer calls the routing point; the queue hands the call to A.
    sim_request(t, "SimInboundCall", to="8000", **{"from": "+15550100"},
                userData={"Segment": "Gold"})
    ring = a.event("EventRinging")
    call1 = ring["connId"]
    assert ring["otherDN"] == "+15550100" and ring["callType"] == "Inbound"
    assert ring["userData"] == {"Segment": "Gold"} and ring["thisDN"] == "5001"

    r = a.call("RequestAnswerCall", dn="5001", connId=call1)
    assert r["event"] == "EventEstablished" and r["connId"] == call1
    r = a.call("RequestAttachUserData", dn="5001", connId=call1,
               userData={"CaseId": "42"})
    assert r["event"] == "EventAttachedDataChanged"
    assert r["userData"] == {"Segment": "Gold", "CaseId": "42"}
    assert a.call("RequestHoldCall", dn="5001", connId=call1)["event"] == "EventHeld"
    assert a.call("RequestRetrieveCall", dn="5001", connId=call1)["event"] == \
        "EventRetrieved"

    # Two-step transfer to B.
    r = a.call("RequestInitiateTransfer", dn="5001", connId=call1, destination="5002")
    assert r["event"] == "EventHeld" and r["connId"] == call1
    dialing = a.event("EventDialing")
    call2 = dialing["connId"]
    assert call2 != call1 and dialing["callType"] == "Consult"
    assert dialing["callThreadId"] == ring["callThreadId"]
    bring = b.event("EventRinging")
    assert bring["connId"] == call2 and bring["otherDN"] == "5001"
    assert b.call("RequestAnswerCall", dn="5002", connId=call2)["event"] == \
        "EventEstablished"
    a.event("EventEstablished")
    r = a.call("RequestCompleteTransfer", dn="5001", connId=call1, consultConnId=call2)
    assert r["event"] == "EventReleased"
    a.event("EventReleased")
    changed = b.event("EventPartyChanged")
    assert changed["connId"] == call1 and changed["userData"]["CaseId"] == "42"

    # The customer hangs up: B's call ends.
    sim_request(t, "SimRelease", connId=call1)
    rel = b.event("EventReleased")
    assert rel["connId"] == call1

    # What each client saw, in order, and only for its DNs.
    a_names = names(m for m in a.seen if m.get("thisDN") == "5001")
    assert a_names == ["EventAgentLogin", "EventAgentReady", "EventRinging",
                       "EventEstablished", "EventAttachedDataChanged", "EventHeld",
                       "EventRetrieved", "EventHeld", "EventDialing",
                       "EventEstablished", "EventReleased", "EventReleased"], a_names
    assert all(m.get("thisDN") in (None, "5001") for m in a.seen)
    assert all(m.get("thisDN") in (None, "5002") for m in b.seen)
    b_names = names(m for m in b.seen if m.get("thisDN") == "5002")
    assert b_names[-4:] == ["EventRinging", "EventEstablished", "EventPartyChanged",
                            "EventReleased"], b_names
    # The wallboard got both DNs' events, the same ones, without refs.
    board.quiet(0.5)
    wall = [m for m in board.seen if m.get("thisDN") in ("5001", "5002")]
    assert all("ref" not in m for m in wall)
    assert names(m for m in wall if m["thisDN"] == "5001") == a_names
    assert names(m for m in wall if m["thisDN"] == "5002") == b_names

    # The routing point and the queue, as the wallboard saw them.
    rp = [m for m in board.seen if m.get("thisDN") == "8000"]
    assert names(rp)[:2] == ["EventRinging", "EventDiverted"], names(rp)
    assert rp[1]["thirdDN"] == "8100"
    queue = [m for m in board.seen if m.get("thisDN") == "8100"]
    assert names(queue)[:2] == ["EventQueued", "EventDiverted"], names(queue)
    assert queue[1]["thirdDN"] == "5001" and queue[0]["connId"] == call1

    # The state, from the voice side.
    q = board.call("RequestQueryAddress", dn="5002")
    assert q["agent"]["agentId"] == "7002" and q["calls"] == []
    q = board.call("RequestQueryAddress", dn="5001")
    assert q["agent"]["state"] == "Ready"


def test_outbound_call_and_errors_from_the_switch(sim_tenant):
    t = sim_tenant
    t.start_sim("--ring", "0.2")
    a = t.session()
    a.call("RequestRegisterAddress", dn="5003")
    r = a.call("RequestMakeCall", dn="5003", destination="+15550199",
               userData={"Campaign": "Renewals"})
    assert r["event"] == "EventDialing" and r["otherDN"] == "+15550199"
    est = a.event("EventEstablished")
    assert est["connId"] == r["connId"] and est["userData"] == {"Campaign": "Renewals"}
    r = a.call("RequestReleaseCall", dn="5003", connId=est["connId"])
    assert r["event"] == "EventReleased"
    # The switch says no: errors come back to the sender only.
    r = a.call("RequestAnswerCall", dn="5003", connId="0000000000000000")
    assert r["event"] == "EventError" and r["code"] == "NoSuchCall"
    r = a.call("RequestAgentLogout", dn="5003")
    assert r["event"] == "EventError" and r["code"] == "AgentNotLoggedIn"
    r = a.call("RequestMakeCall", dn="5003", destination="12")
    assert r["event"] == "EventError" and r["code"] == "UnknownDN"


def test_worker_killed_while_voicesim_generates_traffic(sim_tenant):
    """Generated calls run while the events worker is killed; a client that
    resumes with its positions has the same events as one that never left
    (the stream itself), each exactly once and in order."""
    t = sim_tenant
    t.start_sim("--agents", "0", "--rate", "20", "--to", "5004", "--patience", "0.3",
                "--seed", "7")
    a = t.session()
    a.call("RequestRegisterAddress", dn="5004")
    pos, got = {}, []
    while len(got) < 20:
        m = a.read(10)
        assert m is not None, "no events from the generator"
        if m.get("thisDN") == "5004":
            got.append(m["eventId"])
            merge_position(pos, m)
    old = t.d.worker_pid("events")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: t.d.worker_pid("events") not in (None, old), 10,
             what="a new events worker")
    wait_for(t.events_up, 10, what="the new events worker")
    b = t.session(resume=pos)
    b.call("RequestRegisterAddress", dn="5004")
    # What it missed comes before the answer to RequestResume.
    before = len(b.seen)
    b.call("RequestResume", timeout=10)
    got += [m["eventId"] for m in b.seen[before:] if m.get("thisDN") == "5004"]
    # Catch up with what the stream holds at some point after resuming.
    stream = t.rc.xrange(key("events"))
    evs = [json.loads(f["event"]) for _, f in stream]
    want = [e["eventId"] for e in evs     # errors go to their requester only
            if e.get("thisDN") == "5004" and e["event"] != "EventError"]
    want = want[want.index(got[0]):]   # from a's first one on
    while len(got) < len(want):
        m = b.read(10)
        assert m is not None, f"missing events: have {len(got)} of {len(want)}"
        if m.get("thisDN") == "5004":
            got.append(m["eventId"])
    assert got == want


def test_user_data_carried_and_link_recovery(sim_tenant):
    t = sim_tenant
    sim = t.start_sim("--ring", "0.2")
    a = t.session()
    b = t.session()
    a.call("RequestRegisterAddress", dn="5001")
    b.call("RequestRegisterAddress", dn="5002")
    r = a.call("RequestMakeCall", dn="5001", destination="5002",
               userData={"Lang": "fr", "Tier": "1"})
    conn = r["connId"]
    b.event("EventRinging")
    r = a.call("RequestUpdateUserData", dn="5001", connId=conn,
               userData={"Tier": "2", "Case": "9"})
    assert r["userData"] == {"Lang": "fr", "Tier": "2", "Case": "9"}
    r = a.call("RequestDeleteUserData", dn="5001", connId=conn, keys=["Lang"])
    assert r["userData"] == {"Tier": "2", "Case": "9"}
    assert b.event("EventAttachedDataChanged")["userData"]["Tier"] == "2"
    assert b.event("EventAttachedDataChanged")["userData"] == {"Tier": "2", "Case": "9"}
    est = b.call("RequestAnswerCall", dn="5002", connId=conn)
    assert est["userData"] == {"Tier": "2", "Case": "9"}      # carried on
    assert a.call("RequestQueryAddress", dn="5002")["calls"][0]["connId"] == conn

    # The voice side goes away and comes back having forgotten its calls:
    # the link events say so, and the query shows the switch's truth.
    sim.stop()
    wait_link(a, False)
    r = a.call("RequestMakeCall", dn="5003", destination="5004")
    assert r["event"] == "EventError" and r["code"] == "LinkDown"
    t.start_sim("--ring", "0.2")
    wait_link(a, True)
    q = a.call("RequestQueryAddress", dn="5002")
    assert q["calls"] == [] and q["link"] == "connected"
