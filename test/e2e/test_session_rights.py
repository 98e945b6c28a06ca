# SPDX-License-Identifier: Apache-2.0
"""Rights on the session ports are the principal's rights now (DESIGN §3,
docs/protocol.md "Rights while a session lasts"): on the events port, a
person taken out of the access group that lets it read a DN loses that DN
at once, told with EventUnregistered; a password change, a disable or a
delete ends its sessions, told with EventError Unauthorized naming why, on
every instance; and RequestOpen says Unavailable or BadRequest, not
Unauthorized, when the credentials were not what was wrong."""

import socket
import time

import pytest

from evclient import Session, Voice
import redis as redis_py

from helpers import TENANT_ID, config_api_ready, free_port, wait_for
from test_events import Tenant, call_fields


@pytest.fixture
def ev(tenantd, redis):
    t = Tenant(tenantd)
    t.voice = Voice(redis.port)
    t.voice.beat()
    wait_for(t.link_up, 5, what="the voice link")
    yield t
    Voice.stop_all()


def group(ev, name="desk"):
    r = ev.d.api("GET", "/v1/access-groups")
    return [g for g in r.json["items"] if g["name"] == name][0]


def agent_session(ev, client="desktop"):
    token = ev.token_of("agent1")
    s = ev.session(token, client)
    s.token = token
    assert s.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    assert s.call("RequestRegisterAddress", dn="5002")["event"] == "EventRegistered"
    return s


def ended(s, reason, within=1.5):
    """The session is told why within `within` seconds, then closed."""
    t0 = time.monotonic()
    m = s.wait(lambda m: m.get("event") == "EventError", within, "EventError")
    assert m["code"] == "Unauthorized" and m["reason"] == reason, m
    assert "ref" not in m
    with pytest.raises(EOFError):
        s.read(3)
    return time.monotonic() - t0


def test_withdrawn_right_unregisters_the_dn(ev):
    s = agent_session(ev)
    g = group(ev)
    keep = [p for p in g["permissions"] if p.get("dbid") != ev.dns["5001"]]
    r = ev.d.api("PATCH", f"/v1/access-groups/{g['dbid']}", {"permissions": keep})
    assert r.status == 200, r.text
    m = s.wait(lambda m: m.get("event") == "EventUnregistered", 1.5,
               "EventUnregistered")
    assert m["dn"] == "5001" and m["reason"] == "Forbidden" and "ref" not in m
    # Nothing more of 5001; 5002 still flows.
    ev.voice.event("EventRinging", **call_fields("5001"))
    ev.voice.event("EventRinging", **call_fields("5002", conn="00a1b2c3d4e5f602"))
    got = s.event("EventRinging")
    assert got["thisDN"] == "5002"
    assert [m for m in s.quiet(0.5) if m.get("thisDN") == "5001"] == []
    # Every request on 5001 is refused now.
    for req in ("RequestRegisterAddress", "RequestQueryAddress"):
        r = s.call(req, dn="5001")
        assert r["event"] == "EventError" and r["code"] == "Forbidden", r
    r = s.call("RequestMakeCall", dn="5001", destination="5002")
    assert r["code"] == "Forbidden"
    # Given back: usable again.
    r = ev.d.api("PATCH", f"/v1/access-groups/{g['dbid']}",
                 {"permissions": g["permissions"]})
    assert r.status == 200
    wait_for(lambda: s.call("RequestQueryAddress", dn="5001")["event"] ==
             "EventAddressInfo", 2, what="5001 readable again")


def test_removed_member_loses_every_dn(ev):
    s = agent_session(ev)
    g = group(ev)
    assert ev.d.api("PATCH", f"/v1/access-groups/{g['dbid']}",
                    {"members": []}).status == 200
    gone = set()
    while len(gone) < 2:
        m = s.wait(lambda m: m.get("event") == "EventUnregistered", 1.5,
                   "EventUnregistered")
        gone.add(m["dn"])
    assert gone == {"5001", "5002"}
    assert s.call("RequestPing")["event"] == "EventPong"   # the session stays


def test_password_change_ends_the_session(ev):
    s = agent_session(ev)
    admin = ev.session(client="dashboard")
    assert admin.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    r = ev.d.api("PATCH", f"/v1/persons/{ev.agent}", {"password": "n3w-pw-123"})
    assert r.status == 200, r.text
    assert ended(s, "TokenRevoked") < 1.5
    # Others are not touched.
    ev.voice.event("EventRinging", **call_fields("5001"))
    assert admin.event("EventRinging")["thisDN"] == "5001"
    # The old token cannot open again.
    s2 = Session(ev.port)
    s2.send("RequestOpen", token=s.token, client="again")
    assert s2.event("EventError")["code"] == "Unauthorized"


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_disabled_or_deleted_principal_ends_the_session(ev, change):
    s = agent_session(ev)
    if change == "disable":
        r = ev.d.api("PATCH", f"/v1/persons/{ev.agent}", {"state": "disabled"})
    else:
        r = ev.d.api("DELETE", f"/v1/persons/{ev.agent}?cascade=true")
    assert r.status in (200, 204), r.text
    # A delete also revokes the tokens: whichever is heard first ends it.
    m = s.wait(lambda m: m.get("event") == "EventError", 1.5, "EventError")
    assert m["code"] == "Unauthorized", m
    want = {"PrincipalGone"} if change == "disable" else {"PrincipalGone",
                                                           "TokenRevoked"}
    assert m["reason"] in want, m
    with pytest.raises(EOFError):
        s.read(3)


def test_revocation_reaches_every_instance(ev, tenantd):
    port = free_port()
    b = tenantd({"workers": {"events": {"enabled": True,
                                        "listen": f"127.0.0.1:{port}"}}},
                config_worker=True, admin_token=ev.token)
    config_api_ready(b)
    token = ev.token_of("agent1")

    def opened():
        try:
            s = Session(port, timeout=1)
            s.open(token, "desk-b")
            return s
        except (OSError, AssertionError, EOFError):
            return None
    s = None
    deadline = time.monotonic() + 20
    while s is None and time.monotonic() < deadline:
        s = opened()
        if s is None:
            time.sleep(0.2)
    assert s is not None, "instance B never opened a session"
    assert s.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    r = ev.d.api("PATCH", f"/v1/persons/{ev.agent}", {"password": "n3w-pw-123"})
    assert r.status == 200
    assert ended(s, "TokenRevoked") < 1.5


def test_revocation_missed_while_unsubscribed_is_made_up(ev, redis):
    """Tokens deleted with no message heard (as when the subscription was
    down): a new subscription looks every session's token up again."""
    s = agent_session(ev)
    s2 = ev.session(s.token, "second")
    r = redis_py.Redis(port=redis.port)
    prefix = f"tenantd:{{{TENANT_ID}}}:"
    for t in r.zrange(f"{prefix}tokens:{ev.agent}", 0, -1):
        r.delete(prefix.encode() + b"token:" + t)
    assert s.quiet(0.5) == []           # nobody said so yet
    r.client_kill_filter(_type="pubsub")
    ended(s, "TokenRevoked", within=5)
    ended(s2, "TokenRevoked", within=3)


# ---------------------------------------------------------------- open errors

def test_open_errors_say_what_was_wrong(ev, redis):
    s = Session(ev.port)
    s.send("RequestOpen", token=ev.token, client="x", resume={"local": "nope"})
    m = s.event("EventError")
    assert m["code"] == "BadRequest" and "resume" in m["message"]
    s.send("RequestOpen", token=ev.token, client="x", resume={"mars": "1-0"})
    assert s.event("EventError")["code"] == "BadRequest"
    # The connection stayed open: a good open works on it.
    s.open(ev.token, "x")
    # Redis away: a person's token cannot be checked -> Unavailable, and
    # the connection stays open for another try.
    token = ev.token_of("agent1")
    redis.stop()
    try:
        s3 = Session(ev.port)
        s3.send("RequestOpen", token=token, client="y")
        m = s3.event("EventError", timeout=8)
        assert m["code"] == "Unavailable", m
        assert s3.call("RequestPing")["code"] == "NotOpened"
    finally:
        redis.start()
    # The same connection opens once Redis is back (the admin token needs
    # no Redis; what the refused open kept is replaced, not leaked).
    s3.open(ev.token, "y")


@pytest.mark.parametrize("pos", ["99999999999999-0",
                                 "18446744073709551615-18446744073709551615"])
def test_resume_past_the_end_is_a_bad_request(ev, pos):
    """A position after the last entry ever added was given by no server:
    BadRequest, not "Redis unreachable", and not a silent resume that then
    drops every live event as already seen."""
    ev.voice.event("EventRinging", **call_fields("5003"))    # the stream is
    s = Session(ev.port)
    s.open(ev.token, "x", resume={"local": pos})
    assert s.call("RequestRegisterAddress", dn="5001")["event"] == "EventRegistered"
    r = s.call("RequestResume")
    assert r["event"] == "EventError" and r["code"] == "BadRequest", r
    assert "past the end" in r["message"]
    # Going on without it: the region is reported lost, live events flow.
    r = s.call("RequestResume")
    assert r["event"] == "EventResumed" and r["lost"] == ["local"], r
    ev.voice.event("EventRinging", **call_fields("5001", conn="00a1b2c3d4e5f6ff"))
    assert s.event("EventRinging")["thisDN"] == "5001"


def test_address_info_link_is_a_word(ev):
    s = ev.session()
    r = s.call("RequestQueryAddress", dn="5001")
    assert r["event"] == "EventAddressInfo"
    assert r["link"] in ("connected", "disconnected")


def test_reloaded_admin_token_ends_sessions_opened_with_the_old_one(ev):
    import os
    import signal
    old = ev.session(client="old-admin")
    agent = agent_session(ev)
    path = ev.d.conf["security"]["admin_token_file"]
    with open(path, "w") as f:
        f.write("tk-" + "b" * 40 + "\n")
    os.kill(ev.d.pid, signal.SIGHUP)
    ended(old, "TokenRevoked", within=5)
    assert agent.call("RequestPing")["event"] == "EventPong"
    ev.session("tk-" + "b" * 40, "new-admin")


# ---------------------------------------------------------------- stats port

@pytest.fixture
def st(tenantd, redis):
    from test_stats import StatsTenant
    t = StatsTenant(tenantd)
    t.voice = Voice(redis.port)
    t.voice.beat()
    wait_for(t.link_up, 10, what="the stats worker's voice link")
    api = t.d.api

    c = t.d.create
    # A supervisor: reads agent1 and the queue 6000, updates agent1 only.
    t.sup = c("persons", {"userName": "sup", "password": "s3cret-pw"})
    q = api("GET", "/v1/dns?number=6000").json["items"][0]["dbid"]
    t.group = c("access-groups", {"name": "team", "members": [t.sup], "permissions": [
        {"collection": "persons", "rights": ["read", "update"], "dbid": t.persons[1]},
        {"collection": "persons", "rights": ["read"], "dbid": t.persons[2]},
        {"collection": "dns", "rights": ["read"], "dbid": q}]})
    r = api("POST", "/v1/auth/token", {"userName": "sup", "password": "s3cret-pw"},
            token=None)
    t.sup_token = r.json["token"]
    yield t
    Voice.stop_all()


def sup_session(st):
    s = Session(st.port)
    s.open(st.sup_token, "supervisor")
    return s


def stat_open(s, typ, oid, stat="CurrentAgentState"):
    return s.call("RequestOpenStatistic", object={"type": typ, "id": oid},
                  statistic=stat)


def test_stats_open_needs_read_on_the_object(st):
    s = sup_session(st)
    assert stat_open(s, "Agent", "E1")["event"] == "EventStatisticOpened"
    assert stat_open(s, "Queue", "6000", "CurrentNumberWaitingCalls")[
        "event"] == "EventStatisticOpened"
    for typ, oid, stat in (("Agent", "E3", "CurrentAgentState"),
                           ("GroupAgents", "G1", "CurrentNumberReadyAgents"),
                           ("RoutingPoint", "6100", "CurrentNumberWaitingCalls"),
                           ("GroupQueues", "Q", "CurrentNumberWaitingCalls"),
                           ("Tenant", "t", "CurrentNumberLoggedInAgents")):
        r = stat_open(s, typ, oid, stat)
        assert r["event"] == "EventError" and r["code"] == "Forbidden", (typ, r)
    # The admin token may open everything.
    a = st.session()
    assert stat_open(a, "Agent", "E3")["event"] == "EventStatisticOpened"


def test_media_state_needs_update_on_the_person(st):
    s = sup_session(st)
    r = s.call("RequestAgentMediaState", agent="E2", media="chat", state="Ready")
    assert r["event"] == "EventError" and r["code"] == "Forbidden", r
    r = s.call("RequestAgentMediaState", agent="E1", media="chat", state="Ready")
    assert r["event"] == "EventAck", r


def test_stats_withdrawn_right_closes_the_statistic(st):
    s = sup_session(st)
    e1 = stat_open(s, "Agent", "E1")["statisticId"]
    e2 = stat_open(s, "Agent", "E2")["statisticId"]
    g = st.d.api("GET", f"/v1/access-groups/{st.group}").json
    keep = [p for p in g["permissions"] if p.get("dbid") != st.persons[2]]
    assert st.d.api("PATCH", f"/v1/access-groups/{st.group}",
                    {"permissions": keep}).status == 200
    m = s.wait(lambda m: m.get("event") == "EventStatisticClosed", 1.5,
               "EventStatisticClosed")
    assert m["statisticId"] == e2 and m["reason"] == "Forbidden" and "ref" not in m
    # Nothing more of E2; E1 is still served.
    r = s.call("RequestPeekStatistic", statisticId=e2)
    assert r["code"] == "NoSuchStatistic"
    assert s.call("RequestPeekStatistic", statisticId=e1)["event"] == "EventInfo"


def test_stats_password_change_ends_the_session(st):
    s = sup_session(st)
    stat_open(s, "Agent", "E1")
    r = st.d.api("PATCH", f"/v1/persons/{st.sup}", {"password": "n3w-pw-123"})
    assert r.status == 200
    assert ended(s, "TokenRevoked") < 1.5


def test_stats_open_errors_say_what_was_wrong(st, redis):
    redis.stop()
    try:
        s = Session(st.port)
        s.send("RequestOpen", token=st.sup_token, client="y")
        m = s.event("EventError", timeout=8)
        assert m["code"] == "Unavailable", m
        assert s.call("RequestPing")["code"] == "NotOpened"    # still open
    finally:
        redis.start()
    # Redis came back empty (no persistence): once the worker is connected
    # again, the token is found gone, which is a refusal of the credentials.
    deadline = time.monotonic() + 15
    while True:
        s = Session(st.port)
        m = s.call("RequestOpen", token=st.sup_token, client="y", timeout=8)
        assert m["event"] == "EventError", m
        if m["code"] != "Unavailable" or time.monotonic() > deadline:
            break
        s.close()
        time.sleep(0.2)
    assert m["code"] == "Unauthorized", m


@pytest.mark.parametrize("worker", ["events", "stats"])
def test_open_before_the_configuration_is_loaded_is_unavailable(tenantd, pg, redis,
                                                                worker):
    """PostgreSQL away at start: the worker cannot load its configuration,
    so RequestOpen gets Unavailable (retry), not Unauthorized, and the
    link stays open; a client that retries opens once it is loaded."""
    port = free_port()
    pg.stop()
    try:
        d = tenantd({"workers": {worker: {"enabled": True,
                                          "listen": f"127.0.0.1:{port}"}}},
                    config_worker=True)
        wait_for(lambda: _connects(port), 20, what=f"the {worker} port")
        s = Session(port)
        s.send("RequestOpen", token=d.admin_token, client="early")
        m = s.event("EventError", timeout=8)
        assert m["code"] == "Unavailable" and "not loaded" in m["message"], m
        assert s.call("RequestPing")["code"] == "NotOpened"     # still open
    finally:
        pg.start()
    deadline = time.monotonic() + 30
    while True:
        s = Session(port)
        r = s.call("RequestOpen", token=d.admin_token, client="early", timeout=8)
        if r["event"] == "EventOpened" or time.monotonic() > deadline:
            break
        assert r["code"] == "Unavailable", r
        s.close()
        time.sleep(0.3)
    assert r["event"] == "EventOpened", r


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
