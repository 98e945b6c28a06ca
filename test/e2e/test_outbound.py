# SPDX-License-Identifier: Apache-2.0
"""The outbound worker's campaign control and dialler, through its real
port (session protocol and HTTP), with real PostgreSQL and Redis,
tools/voicesim playing the called parties and the agents, and Kafka
reports read back from the records' tables (the Kafka side has its own
tests in test_outbound_kafka.py).

A tenant: switch sw1, phones 5001-5003 on places P1-P3, agent logins
7001-7003, persons agent1-agent3, agent group G1 {agent1, agent2} (agent3
is not in it), trunk group 6500 (the campaign group's origination DN),
IVR routing point 6600, time zone Europe/Paris, format F1 (customer_id),
calling list L1 (table cl_one, whole day), treatment Busy -> RetryIn 1 s,
campaign C1 {L1}, campaign group CG1 (C1, G1, Progressive, from 6500).
"""

import json
import os
import signal
import time

import psycopg
import pytest
import redis as redislib

from evclient import Session, key, session_opens
from helpers import config_api_ready, free_port, wait_for, VoiceSim




class Outbound:
    """tenantd with the config and outbound workers and the tenant above."""

    def __init__(self, tenantd, pg, ob=None, mode="Progressive", brokers="mock",
                 conf=None, **group):
        self.port = free_port()
        section = {"enabled": True, "listen": f"127.0.0.1:{self.port}",
                   "lease_time": 6.0, "stats_interval": 1.0}
        section.update(ob or {})
        self.d = tenantd(dict({"workers": {"outbound": section},
                               "kafka": {"brokers": brokers},
                               "log": {"level": os.environ.get("OB_LOG_LEVEL",
                                                               "info")}},
                              **(conf or {})),
                         config_worker=True)
        self.token = self.d.admin_token
        self.pg = pg
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
        self.ag = c("agent-groups", {"name": "G1", "members": [self.persons[1],
                                                              self.persons[2]]})
        self.orig = c("dns", {"number": "6500", "type": "TrunkGroup", "switch": sw})
        self.ivr = c("dns", {"number": "6600", "type": "RoutingPoint", "switch": sw})
        self.tz = c("time-zones", {"name": "Paris", "tzName": "Europe/Paris"})
        f1 = c("fields", {"name": "customer_id", "dataType": "varchar", "length": 32})
        self.fmt = c("formats", {"name": "F1", "fields": [f1]})
        busy = c("treatments", {"name": "BusyRetry", "callResult": "Busy",
                                "action": "RetryIn", "interval": 1, "attempts": 5})
        self.list = c("calling-lists", {
            "name": "L1", "format": self.fmt, "tableName": "cl_one",
            "timeFrom": 0, "timeUntil": 86399, "maxAttempts": 3,
            "treatments": [busy], "timeZone": self.tz})
        self.camp = c("campaigns", {"name": "C1", "callingLists": [
            {"callingList": self.list, "share": 10}]})
        g = {"name": "CG1", "campaign": self.camp, "group": self.ag,
             "dialMode": mode, "origDN": self.orig, "ivrDN": self.ivr,
             "numOfChannels": 10}
        g.update(group)
        self.group = c("campaign-groups", g)
        wait_for(self.up, 20, what="the outbound port")
        wait_for(self.table_ready, 20, what="the calling list's table")
        # the table is made as the list is seen; the group may come a batch
        # of changes later
        wait_for(self.group_seen, 20, what="the campaign group")

    def up(self):
        return session_opens(self.port, self.token, timeout=1)

    def sql(self, q, *args):
        with psycopg.connect(self.pg.conninfo, autocommit=True) as conn:
            cur = conn.execute(q, args)
            return cur.fetchall() if cur.description else None

    def group_seen(self):
        return self.http("GET", f"/v1/campaign-groups/{self.group}")[0] == 200

    def table_ready(self):
        r = self.sql("SELECT count(*) FROM information_schema.columns WHERE "
                     "table_name = 'cl_one' AND column_name = 'customer_id'")
        return r[0][0] == 1

    def add_records(self, n, start=1, phone=lambda i: f"+3360000{i:04d}", **cols):
        rows = []
        for i in range(start, start + n):
            r = {"record_id": i, "contact_info": phone(i), "chain_id": i,
                 "customer_id": f"C{i}"}
            r.update(cols)
            rows.append(r)
        cols = list(rows[0].keys())
        q = (f"INSERT INTO cl_one ({', '.join(cols)}) VALUES "
             + ", ".join("(" + ", ".join(["%s"] * len(cols)) + ")" for _ in rows))
        self.sql(q, *[r[c] for r in rows for c in cols])

    def records(self):
        return self.sql("SELECT record_id, record_status, call_result, attempt, "
                        "agent_id, lease_owner FROM cl_one ORDER BY record_id")

    def session(self):
        s = Session(self.port)
        s.open(self.token, "campaign-manager")
        return s

    def http(self, method, path, body=None, token=None):
        import http.client
        h = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdr = {"Authorization": f"Bearer {token or self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            hdr["Content-Type"] = "application/json"
        h.request(method, path, body=data, headers=hdr)
        r = h.getresponse()
        out = r.read()
        h.close()
        return r.status, (json.loads(out) if out else None)


def requests_of(redis_port):
    rc = redislib.Redis(host="127.0.0.1", port=redis_port, decode_responses=True)
    return [json.loads(f["request"]) for _, f in rc.xrange(key("requests"))]


# ---- campaign control ----

def test_campaign_control_states(tenantd, pg):
    t = Outbound(tenantd, pg)
    s = t.session()
    w = t.session()          # a second manager, watching
    g = t.group
    r = s.call("RequestGetCampaignStatus", campaignGroup=g)
    assert r["event"] == "EventCampaignStatus" and r["state"] == "NotLoaded", r
    w.call("RequestGetCampaignStatus", campaignGroup=g)

    r = s.call("RequestLoadCampaign", campaignGroup=g)
    assert r["event"] == "EventCampaignLoaded" and r["state"] == "Loaded", r
    seen = w.wait(lambda m: m.get("event") == "EventCampaignStatus"
                  and m.get("state") == "Loaded", what="the watcher told")
    assert seen["previous"] == "NotLoaded"
    r = s.call("RequestLoadCampaign", campaignGroup=g)
    assert r["event"] == "EventError" and r["code"] == "InvalidState", r

    r = s.call("RequestSetDialingMode", campaignGroup=g, dialMode="Predictive",
               optimizeBy="BusyFactor", optimizeGoal=85)
    assert r["event"] == "EventDialingModeChanged", r
    assert (r["dialMode"], r["optimizeBy"], r["optimizeGoal"]) == \
        ("Predictive", "BusyFactor", 85)
    r = s.call("RequestSetDialingMode", campaignGroup=g, dialMode="Sideways")
    assert r["event"] == "EventError" and r["code"] == "BadArgument", r

    r = s.call("RequestStartDialing", campaignGroup=g)
    assert r["event"] == "EventDialingStarted" and r["state"] == "Running", r
    r = s.call("RequestStopDialing", campaignGroup=g)
    assert r["event"] == "EventDialingStopped", r
    assert r["state"] in ("Loaded", "Stopping"), r
    wait_for(lambda: s.call("RequestGetCampaignStatus", campaignGroup=g)["state"]
             == "Loaded", 5, what="stopped")
    r = s.call("RequestUnloadCampaign", campaignGroup=g)
    assert r["event"] == "EventCampaignUnloaded" and r["state"] == "NotLoaded", r
    w.wait(lambda m: m.get("state") == "NotLoaded", what="the watcher told")

    # what the state is, is the database's too
    assert t.sql("SELECT state FROM ocs_group_state WHERE group_dbid = %s",
                 g) == [("NotLoaded",)]
    # bad input: a clear error, nothing changed
    r = s.call("RequestLoadCampaign", campaignGroup=999999)
    assert r["event"] == "EventError" and r["code"] == "NotFound", r
    r = s.call("RequestLoadCampaign", campaignGroup="x")
    assert r["event"] == "EventError" and r["code"] == "BadArgument", r
    r = s.call("RequestStopDialing", campaignGroup=g)
    assert r["event"] == "EventError" and r["code"] == "InvalidState", r
    r = s.call("RequestFrobnicate", campaignGroup=g)
    assert r["event"] == "EventError", r
    s.close()
    w.close()


def test_campaign_control_over_http(tenantd, pg):
    t = Outbound(tenantd, pg)
    g = t.group
    st, body = t.http("GET", f"/v1/campaign-groups/{g}")
    assert st == 200 and body["state"] == "NotLoaded", body
    st, body = t.http("POST", f"/v1/campaign-groups/{g}/load", {"autoCompletion": True})
    assert st == 200 and body["state"] == "Loaded" and body["autoCompletion"], body
    st, body = t.http("POST", f"/v1/campaign-groups/{g}/load")
    assert st == 409 and body["error"] == "InvalidState", body
    st, body = t.http("POST", f"/v1/campaign-groups/{g}/set-dialing-mode",
                      {"dialMode": "Power", "optimizeGoal": 2})
    assert st == 200 and body["dialMode"] == "Power", body
    st, body = t.http("POST", f"/v1/campaign-groups/{g}/force-unload")
    assert st == 200 and body["state"] == "NotLoaded", body
    st, body = t.http("POST", "/v1/campaign-groups/424242/load")
    assert st == 404, body
    st, body = t.http("POST", f"/v1/campaign-groups/{g}/load", token="nope")
    assert st == 401, body


def test_rights_on_campaign_control(tenantd, pg):
    t = Outbound(tenantd, pg)
    c = t.d.create
    c("persons", {"userName": "viewer", "password": "secret-pass-1"})
    r = t.d.api("POST", "/v1/auth/token",
                {"userName": "viewer", "password": "secret-pass-1"}, token=None)
    assert r.status == 200, r.text
    tok = r.json
    s = Session(t.port)
    s.open(tok["token"], "nosy")
    r = s.call("RequestLoadCampaign", campaignGroup=t.group)
    assert r["event"] == "EventError" and r["code"] == "Forbidden", r
    r = s.call("RequestGetCampaignStatus", campaignGroup=t.group)
    assert r["event"] == "EventError" and r["code"] == "Forbidden", r
    s.close()
    st, body = t.http("POST", f"/v1/campaign-groups/{t.group}/load", token=tok["token"])
    assert st == 403, body


def test_group_state_survives_a_killed_worker(tenantd, pg):
    t = Outbound(tenantd, pg)
    s = t.session()
    r = s.call("RequestLoadCampaign", campaignGroup=t.group)
    assert r["event"] == "EventCampaignLoaded", r
    r = s.call("RequestStartDialing", campaignGroup=t.group)
    assert r["state"] == "Running", r
    s.close()
    old = t.d.worker_pid("outbound")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: t.d.worker_pid("outbound") not in (None, old) and t.up(),
             20, what="a new outbound worker")
    s = t.session()
    r = s.call("RequestGetCampaignStatus", campaignGroup=t.group)
    assert r["state"] == "Running", r
    s.close()


def test_a_restarted_worker_tells_no_state_before_it_has_read_it(tenantd, pg):
    """A request that comes before the groups' states are read is told to
    retry (503 with Retry-After; RequestOpen Unavailable), never answered
    NotLoaded for a group that is running (found by CI: a GET right after
    the restart raced the read)."""
    t = Outbound(tenantd, pg)
    s = t.session()
    s.call("RequestLoadCampaign", campaignGroup=t.group)
    r = s.call("RequestStartDialing", campaignGroup=t.group)
    assert r["state"] == "Running", r
    s.close()
    with psycopg.connect(t.pg.conninfo) as lock:
        lock.execute("LOCK TABLE ocs_group_state IN ACCESS EXCLUSIVE MODE")
        old = t.d.worker_pid("outbound")
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: t.d.worker_pid("outbound") not in (None, old), 20,
                 what="a new outbound worker")
        import http.client

        def answered():
            try:
                h = http.client.HTTPConnection("127.0.0.1", t.port, timeout=5)
                h.request("GET", f"/v1/campaign-groups/{t.group}",
                          headers={"Authorization": f"Bearer {t.token}"})
                r = h.getresponse()
                out = (r.status, r.getheader("Retry-After"), json.loads(r.read()))
                h.close()
                return out
            except OSError:
                return None
        wait_for(lambda: (a := answered()) is not None and a[0] != 401, 20,
                 what="the new worker's HTTP")
        time.sleep(1.0)             # past its config load: only the lock holds
        st, retry, body = answered()
        assert st == 503 and retry == "1" and body["error"] == "Unavailable", body
        assert "states" in body["message"], body
        assert not t.up()           # RequestOpen: Unavailable as well
        lock.rollback()
    wait_for(t.up, 20, what="the worker serving")
    assert t.http("GET", f"/v1/campaign-groups/{t.group}")[1]["state"] == "Running"


# ---- the dialler ----

def start_group(t, **kw):
    s = t.session()
    r = s.call("RequestLoadCampaign", campaignGroup=t.group, **kw)
    assert r["event"] == "EventCampaignLoaded", r
    r = s.call("RequestStartDialing", campaignGroup=t.group)
    assert r["event"] == "EventDialingStarted", r
    return s


def test_progressive_dials_records_and_treats_results(tenantd, pg, redis,
                                                       voicesim_bin):
    t = Outbound(tenantd, pg)
    t.add_records(12)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "3", "--talk", "0.3", "--wrap", "0.2", "--notready", "0",
        "--dist", "fixed", "--agent-answer", "0.1",
        "--outbound-mix", "answer=30,busy=70", "--outbound-ring", "0.1:0.3",
        "--busy-after", "0.1", "--seed", "7"])
    try:
        s = start_group(t)

        def settled():
            rows = t.records()
            return all(r[1] != 1 and r[1] != 2 for r in rows)
        wait_for(settled, 60, interval=0.5, what="every record finished")
        rows = t.records()
        for rid, status, result, attempt, agent, owner in rows:
            assert owner is None
            if result == 33:                  # answered: went to an agent of G1
                assert status == 3 and agent in ("7001", "7002"), rows
            else:                             # busy every time: out of attempts
                assert result == 6 and status == 3 and attempt == 3, rows
        assert any(r[2] == 33 for r in rows) and any(r[2] == 6 for r in rows)
        reqs = [q for q in requests_of(redis.port)
                if q["request"] == "RequestMakePredictiveCall"]
        assert all(q["dn"] == "6500" for q in reqs)
        ud = reqs[0]["userData"]
        for k in ("GSW_RECORD_HANDLE", "GSW_CAMPAIGN_NAME", "GSW_CALLING_LIST",
                  "GSW_PHONE", "GSW_ATTEMPTS", "GSW_CALL_ATTEMPT_GUID", "GSW_TZ_NAME"):
            assert k in ud, ud
        assert ud["GSW_TZ_NAME"] == "Europe/Paris" and ud["GSW_CALLING_LIST"] == "L1"
        # one attempt per record at a time: attempts add up
        assert len(reqs) == sum(r[3] for r in rows)
        # the Ready records left are counted while the group runs
        wait_for(lambda: s.call("RequestGetCampaignStatus",
                                campaignGroup=t.group).get("recordsLeft") == 0,
                 10, what="recordsLeft 0")
        s.close()
    finally:
        sim.stop()


def test_a_killed_workers_calls_are_adopted(tenantd, pg, redis, voicesim_bin):
    """SIGKILL the worker while its calls ring and talk: its successor takes
    them over (their leases, then their events), so each record is dialled
    once and its result is written; without it they would wait for their
    leases to expire and be dialled again."""
    t = Outbound(tenantd, pg)
    t.add_records(6)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "2", "--talk", "4", "--wrap", "0.2", "--notready", "0",
        "--dist", "fixed", "--agent-answer", "0.1",
        "--outbound-mix", "answer=100", "--outbound-ring", "1.5:2.5",
        "--seed", "3"])
    try:
        start_group(t).close()

        def talking():
            rc = redislib.Redis(host="127.0.0.1", port=redis.port,
                                decode_responses=True)
            return any(json.loads(f["event"]).get("event") == "EventEstablished"
                       and json.loads(f["event"]).get("thisDN") in ("5001", "5002")
                       for _, f in rc.xrange(key("events")))
        wait_for(talking, 30, interval=0.1, what="a call at an agent")
        old = t.d.worker_pid("outbound")
        held = [r for r in t.records() if r[1] == 2]
        assert held, t.records()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: t.d.worker_pid("outbound") not in (None, old),
                 20, what="a new outbound worker")

        def settled():
            return all(r[1] == 3 for r in t.records())
        try:
            wait_for(settled, 60, interval=0.5, what="every record finished")
        except AssertionError as e:
            raise AssertionError(f"{e}: {t.records()}\n{t.d.log_text()[-8000:]}")
        rows = t.records()
        for rid, status, result, attempt, agent, owner in rows:
            assert (status, result, attempt, owner) == (3, 33, 1, None), rows
            assert agent in ("7001", "7002"), rows
        reqs = [q for q in requests_of(redis.port)
                if q["request"] == "RequestMakePredictiveCall"]
        assert len(reqs) == 6, reqs
        assert "adopted the call" in t.d.log_text()
    finally:
        sim.stop()


def test_do_not_call_and_cancel(tenantd, pg, redis, voicesim_bin):
    t = Outbound(tenantd, pg)
    t.add_records(4)
    s = t.session()
    r = s.call("RequestDoNotCall", phone="+33600000002")
    assert r["event"] == "EventDoNotCallProcessed" and r["records"] == 1, r
    r = s.call("RequestDoNotCall", customerId="C3")
    assert r["event"] == "EventDoNotCallProcessed" and r["records"] == 1, r
    r = s.call("RequestDoNotCall", phone="call me")
    assert r["event"] == "EventError" and r["code"] == "BadArgument", r
    r = s.call("RequestCancelRecord", callingList=t.list, recordId=4)
    assert r["event"] == "EventRecordCanceled" and r["records"] == 1, r
    # a DNC entry added after the import still keeps the record from dialling
    t.add_records(1, start=5, phone=lambda i: "+33600000002")
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "2", "--talk", "0.2", "--wrap", "0.1", "--notready", "0",
        "--outbound-mix", "answer=100", "--outbound-ring", "0.1:0.1"])
    try:
        start_group(t).close()
        wait_for(lambda: t.records()[0][1] == 3, 30, what="record 1 dialled")
        time.sleep(1.5)
        rows = {r[0]: r for r in t.records()}
        assert rows[2][1:3] == (5, 51) and rows[3][1:3] == (5, 51), rows
        assert rows[4][1] == 5 and rows[5][1] == 1, rows
        dialled = {q["destination"] for q in requests_of(redis.port)
                   if q["request"] == "RequestMakePredictiveCall"}
        assert dialled == {"+33600000001"}, dialled
    finally:
        sim.stop()


def test_auto_completion_unloads_the_group(tenantd, pg, voicesim_bin):
    t = Outbound(tenantd, pg, mode="ProgressiveGVP")
    t.add_records(3)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--outbound-mix", "answer=100", "--outbound-ring", "0.1:0.1"])
    try:
        s = start_group(t, autoCompletion=True)
        m = s.wait(lambda m: m.get("event") == "EventCampaignStatus"
                   and m.get("state") == "NotLoaded", timeout=30,
                   what="the group unloaded itself")
        assert m["previous"] in ("Running", "Unloading"), m
        assert all(r[1] == 3 and r[2] == 33 for r in t.records()), t.records()
        s.close()
    finally:
        sim.stop()


def test_two_instances_never_dial_a_record_twice(tenantd, pg, redis, voicesim_bin):
    t = Outbound(tenantd, pg, mode="ProgressiveGVP", numOfChannels=40)
    port2 = free_port()
    d2 = tenantd({"workers": {"outbound": {"enabled": True,
                                           "listen": f"127.0.0.1:{port2}",
                                           "lease_time": 6.0}},
                  "kafka": {"brokers": "mock"}})
    n = 1500
    t.add_records(n)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--outbound-mix", "answer=100", "--outbound-ring", "0.05:0.15",
        # the IVR (a routing point with no queue) keeps what it is given:
        # its customers hang up after 1 s, so voicesim holds few calls
        "--outbound-patience", "1"])
    try:
        start_group(t).close()
        wait_for(lambda: all(r[1] == 3 for r in t.records()), 120, interval=1,
                 what="every record dialled")
        reqs = [q for q in requests_of(redis.port)
                if q["request"] == "RequestMakePredictiveCall"]
        phones = [q["destination"] for q in reqs]
        assert len(phones) == n and len(set(phones)) == n
        owners = {q["requestId"] for q in reqs}
        assert len(owners) == n
        # both instances dialled
        assert d2.metric("tenantd_outbound_calls_dialed_total") > 0
        assert t.d.metric("tenantd_outbound_calls_dialed_total") > 0
    finally:
        sim.stop()


def made_calls(redis_port):
    return [q for q in requests_of(redis_port)
            if q["request"] == "RequestMakePredictiveCall"]


def test_power_places_goal_calls_per_ready_agent(tenantd, pg, redis, voicesim_bin):
    t = Outbound(tenantd, pg, mode="Power", optimizeGoal=2)
    t.add_records(20)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "2", "--notready", "0", "--outbound-mix", "noanswer=100"])
    try:
        start_group(t).close()
        wait_for(lambda: len(made_calls(redis.port)) >= 4, 15, what="calls")
        time.sleep(1.0)          # nothing answers for 25 s: no more calls
        assert len(made_calls(redis.port)) == 4
    finally:
        sim.stop()


def test_predictive_starts_progressive_and_stays_within_channels(
        tenantd, pg, redis, voicesim_bin):
    t = Outbound(tenantd, pg, mode="Predictive", numOfChannels=3)
    t.add_records(20)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "2", "--notready", "0", "--outbound-mix", "noanswer=100"])
    try:
        start_group(t).close()
        wait_for(lambda: len(made_calls(redis.port)) >= 2, 15, what="calls")
        time.sleep(1.0)
        # unmeasured: one call per ready agent, never past the channels
        assert len(made_calls(redis.port)) == 2
    finally:
        sim.stop()


@pytest.mark.parametrize("mode", ["ProgressiveGVP", "PredictiveGVP", "PowerGVP"])
def test_agentless_modes_route_answers_to_the_ivr(tenantd, pg, redis, voicesim_bin,
                                                  mode):
    t = Outbound(tenantd, pg, mode=mode, numOfChannels=4, optimizeGoal=1)
    t.add_records(6)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--outbound-mix", "answer=100", "--outbound-ring", "0.1:0.2"])
    try:
        start_group(t).close()
        wait_for(lambda: all(r[1] == 3 for r in t.records()), 60, what="dialled")
        routes = [q for q in requests_of(redis.port)
                  if q["request"] == "RequestRouteCall"]
        assert len(routes) == 6 and {q["destination"] for q in routes} == {"6600"}
        assert all(r[2] == 33 for r in t.records())
    finally:
        sim.stop()


def test_time_windows_in_each_records_zone(tenantd, pg, redis, voicesim_bin):
    import datetime
    import zoneinfo
    t = Outbound(tenantd, pg)
    nz = t.d.create("time-zones", {"name": "Auckland", "tzName": "Pacific/Auckland"})

    def sod(zone):
        n = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
        return n.hour * 3600 + n.minute * 60 + n.second

    paris, akl = sod("Europe/Paris"), sod("Pacific/Auckland")
    win = lambda s, a, b: ((s + a) % 86400, (s + b) % 86400)   # noqa: E731
    # 1: open now in the list's zone; 2: closed now (opens in 2 h);
    # 3: open now in Auckland; 4: open in Paris' terms but not Auckland's
    t.add_records(1, start=1, daily_from=win(paris, -3600, 3600)[0],
                  daily_till=win(paris, -3600, 3600)[1])
    t.add_records(1, start=2, daily_from=win(paris, 7200, 10800)[0],
                  daily_till=win(paris, 7200, 10800)[1])
    t.add_records(1, start=3, tz_dbid=nz, daily_from=win(akl, -1800, 1800)[0],
                  daily_till=win(akl, -1800, 1800)[1])
    if abs(((paris - akl + 43200) % 86400) - 43200) > 7200:
        t.add_records(1, start=4, tz_dbid=nz, daily_from=win(paris, -1800, 1800)[0],
                      daily_till=win(paris, -1800, 1800)[1])
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "2", "--talk", "0.2", "--wrap", "0.1", "--notready", "0",
        "--outbound-mix", "answer=100", "--outbound-ring", "0.1:0.1"])
    try:
        start_group(t).close()
        wait_for(lambda: {r[0] for r in t.records() if r[1] == 3} >= {1, 3}, 30,
                 what="the open records dialled")
        time.sleep(1.5)
        dialled = {q["destination"] for q in made_calls(redis.port)}
        assert dialled == {"+33600000001", "+33600000003"}, dialled
        # the list's own window closed: nothing more is dialled
        nowp = sod("Europe/Paris")
        st = t.d.api("PATCH", f"/v1/calling-lists/{t.list}",
                     {"timeFrom": (nowp + 3600) % 86000,
                      "timeUntil": (nowp + 3600) % 86000 + 60})
        assert st.status == 200, st.text
        t.sql("UPDATE cl_one SET record_status = 1, daily_from = NULL, "
              "daily_till = NULL WHERE record_id = 2")
        time.sleep(2.0)
        assert {q["destination"] for q in made_calls(redis.port)} == dialled
    finally:
        sim.stop()


def test_chains_next_in_chain_and_a_final_result(tenantd, pg, redis, voicesim_bin):
    t = Outbound(tenantd, pg, mode="ProgressiveGVP", numOfChannels=4)
    nxt = t.d.create("treatments", {"name": "BusyNext", "callResult": "Busy",
                                   "action": "NextInChain"})
    st = t.d.api("PATCH", f"/v1/calling-lists/{t.list}", {"treatments": [nxt]})
    assert st.status == 200, st.text
    # chain 10: home (busy) -> mobile (answers) -> office (never dialled);
    # chain 20 alone, answered
    t.add_records(1, start=1, phone=lambda i: "+33611000009", chain_id=10, chain_n=0)
    t.add_records(1, start=2, phone=lambda i: "+33622000002", chain_id=10, chain_n=1)
    t.add_records(1, start=3, phone=lambda i: "+33633000003", chain_id=10, chain_n=2)
    t.add_records(1, start=4, phone=lambda i: "+33644000004", chain_id=20, chain_n=0)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--outbound-mix", "answer=100", "--outbound-ring", "0.3:0.3",
        "--busy-suffix", "0009", "--busy-after", "0.3"])
    try:
        start_group(t).close()
        wait_for(lambda: t.records()[1][1] == 3, 30, what="the chain's second record")
        time.sleep(1.0)
    finally:
        sim.stop()
    rows = {r[0]: r for r in t.records()}
    assert rows[1][1:3] == (3, 6), rows     # busy: done, next in chain
    assert rows[2][1:3] == (3, 33), rows    # answered: the chain is done
    assert rows[3][1] == 7, rows            # Chain Updated, never dialled
    assert rows[4][1:3] == (3, 33), rows
    order = [q["destination"] for q in made_calls(redis.port)]
    assert "+33633000003" not in order
    # one record of a chain at a time: the mobile only after the home
    assert order.index("+33622000002") > order.index("+33611000009")
