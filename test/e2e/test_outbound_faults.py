# SPDX-License-Identifier: Apache-2.0
"""What the outbound worker must never lose, proven through its real ports:
every attempt, record, chain and group report reaches Kafka (kafkamock,
read back with kafkahelp), and the calling list in PostgreSQL agrees with
it, through a Kafka outage, a killed worker, a PostgreSQL restart, a
second instance, and an instance cut off from PostgreSQL for longer than
its leases; a report committed after later ones were relayed and
deleted still reaches Kafka; and in the partitioned ocs_outbox, no row is
cleared before it was relayed (a transaction open in a partition, a late
commit, a row written into a partition already truncated, a later lap of
the ring), and the migration to it keeps an old table's reports
(docs/outbound.md, "Reporting to Kafka").

The tenant is test_outbound.py's (Outbound); voicesim plays the called
parties with short ring times; the list's one treatment is Busy -> RetryIn
1 s, maxAttempts 3, and every other result ends its record and chain.

What every test checks of the reports (check_reports): each has a UUID
`id`, a `type`, a `time`, the tenant; a report read twice is the same
bytes under the same id, and no report exists under two ids; for every
record, one `dialed` report per attempt the record's `attempt` column
counts, each `finished` after its `dialed` (same attemptGuid, same
partition, a later offset), one `record` report per finished attempt, the
last one saying what PostgreSQL holds, one `chain` report for a chain
done; the reports of one key in one partition, in the order they happened;
and the attempts Kafka saw are the calls the voice side was asked for.
"""

import collections
import json
import os
import signal
import threading
import time
import uuid

import pytest

from evclient import Session
from helpers import ADMIN_TOKEN_FILE, TENANT_ID, Proxy, free_port, wait_for, VoiceSim
from kafkahelp import KafkaMock, read_records
from test_outbound import Outbound, requests_of, start_group

pytest.importorskip("confluent_kafka")

TOPIC = "tenantd.outbound"
TYPES = {"attempt", "record", "chain", "group-state", "group-stats"}
FINAL = {3, 5, 6, 7}            # Updated, Cancelled, Agent Error, Chain Updated
# The order of one attempt's reports under its key.
RANK = {"dialed": 0, "finished": 1, "record": 2, "chain": 3}
STATS_FIELDS = ("GSW_STAT_BUSY_FACTOR", "GSW_STAT_HIT_RATIO",
                "GSW_STAT_OVERDIAL_RATE", "GSW_STAT_TIME_TO_COMPLETE",
                "callsInProgress", "dialRate")
# Called parties that answer or fail fast (noanswer rings out the 25 s of
# the request's ringTimeout: too slow here).
MIX = "answer=40,busy=35,machine=10,fax=5,sit=10"


@pytest.fixture
def km():
    k = KafkaMock(topic=TOPIC, partitions=4)
    yield k
    assert k.stop() == 0, "kafkamock did not exit cleanly"


# ---- helpers ----

def sim_gvp(t, seed, ring="0.2:0.6", mix=MIX):
    """voicesim for an agentless (ProgressiveGVP) group: called parties only."""
    return VoiceSim(os.environ["VOICESIM_BIN"], t.d.conf_path, t.d.tmpdir, [
        "--outbound-mix", mix, "--outbound-ring", ring, "--busy-after", "0.1",
        "--seed", str(seed)])


def gvp_campaign(tenantd, pg, km, channels, records, seed, ring, mix=MIX):
    """An agentless (ProgressiveGVP) group on `channels` channels,
    reporting to km, with `records` records, and voicesim playing their
    called parties: (t, sim); the caller stops sim."""
    t = Outbound(tenantd, pg, brokers=km.bootstrap, mode="ProgressiveGVP",
                 numOfChannels=channels)
    t.add_records(records)
    return t, sim_gvp(t, seed, ring=ring, mix=mix)


def start_in_flight(t, dialed, in_flight, d=None, port=None):
    """Start dialling t's group (through port, t's unless given); wait until
    d (t's daemon unless given) has dialled `dialed` calls and has
    `in_flight` of them in progress."""
    d = d or t.d
    if port is None:
        start_group(t).close()
    else:
        s = Session(port)
        s.open(t.token, "campaign-manager")
        for rq, ev in (("RequestLoadCampaign", "EventCampaignLoaded"),
                       ("RequestStartDialing", "EventDialingStarted")):
            r = s.call(rq, campaignGroup=t.group)
            assert r["event"] == ev, r
        s.close()
    try:
        wait_for(lambda: d.metric("tenantd_outbound_calls_dialed_total")
                 >= dialed and
                 d.metric("tenantd_outbound_calls_in_progress") >= in_flight,
                 40, interval=0.05, what="calls in flight")
    except AssertionError as e:
        # Once, in CI's ASan run, a second instance never had two calls
        # in flight: say what it and the list were doing.
        rows = collections.Counter((r[0], r[5] is not None)
                                   for r in rows_of(t).values())
        raise AssertionError(
            f"{e}; dialled {d.metric('tenantd_outbound_calls_dialed_total')}"
            f", in progress {d.metric('tenantd_outbound_calls_in_progress')}"
            f"; (record_status, leased): count {dict(rows)}\n"
            f"{d.diagnostics(60)}{t.d.diagnostics(30) if d is not t.d else ''}"
        ) from None


def run_out(t):
    """Every record final, the group unloaded, its reports in Kafka."""
    wait_for(lambda: all_final(t), 60, interval=0.3, what="every record final")
    unload(t)
    drained(t)


def rows_of(t):
    """{record_id: (status, result, attempt, phone, chain_id, lease_owner)}"""
    return {r[0]: r[1:] for r in t.sql(
        "SELECT record_id, record_status, call_result, attempt, contact_info, "
        "chain_id, lease_owner FROM cl_one ORDER BY record_id")}


def all_final(t):
    return all(r[0] in FINAL and r[5] is None for r in rows_of(t).values())


def outbox_depth(t):
    return t.sql("SELECT count(*) FROM ocs_outbox")[0][0]


def group_state(t):
    st, body = t.http("GET", f"/v1/campaign-groups/{t.group}")
    assert st == 200, body
    return body["state"]


def unload(t):
    """Stop dialling and unload the group: no group-stats after this."""
    if group_state(t) == "Running":
        st, body = t.http("POST", f"/v1/campaign-groups/{t.group}/stop")
        assert st == 200, body
    wait_for(lambda: group_state(t) == "Loaded", 15, interval=0.2,
             what="the group stopped")
    st, body = t.http("POST", f"/v1/campaign-groups/{t.group}/unload")
    assert st == 200 and body["state"] == "NotLoaded", body


def drained(t, timeout=20):
    wait_for(lambda: outbox_depth(t) == 0, timeout, interval=0.2,
             what="ocs_outbox drained to Kafka")


class Reports:
    """What the topic holds: the first copy of every report, in partition
    and offset order, and how many later copies there were."""

    def __init__(self, bootstrap, timeout=20.0):
        self.raw = read_records(bootstrap, TOPIC, timeout=timeout)
        self.first = {}          # id -> (partition, offset, key, msg)
        self.dups = 0
        for p, o, k, v in self.raw:
            m = json.loads(v)
            assert isinstance(m.get("id"), str), m
            if m["id"] in self.first:
                fp, fo, fk, fv = self.first[m["id"]]
                assert (fk, fv) == (k, m), \
                    f"two different reports share id {m['id']}: {fv} / {m}"
                self.dups += 1
                continue
            self.first[m["id"]] = (p, o, k, m)
        self.msgs = sorted(self.first.values(), key=lambda x: (x[0], x[1]))

    def of(self, typ):
        return [x for x in self.msgs if x[3]["type"] == typ]


def check_envelopes(rep, t0_ms):
    now_ms = time.time() * 1000
    for p, o, k, m in rep.msgs:
        assert str(uuid.UUID(m["id"])) == m["id"], m
        assert m["type"] in TYPES, m
        assert isinstance(m["time"], int) and t0_ms - 1000 <= m["time"] <= now_ms + 1000, m
        assert m["tenant"] == TENANT_ID, m


def check_reports(t, rep, redis_port, t0_ms, unknown_ok=0):
    """Every attempt, record and chain report against PostgreSQL and the
    voice side's requests (module docstring).  unknown_ok: how many
    attempts may have been dialled without an outcome (a killed worker's
    calls in flight).  Returns (attempts by guid, unknown guids)."""
    check_envelopes(rep, t0_ms)
    rows = rows_of(t)
    lst = t.list
    att = collections.defaultdict(dict)     # guid -> phase -> (p, o, k, m)
    recs = collections.defaultdict(list)    # record_id -> [(p, o, k, m)]
    chains = collections.defaultdict(list)  # chain_id -> [(p, o, k, m)]
    for x in rep.msgs:
        m = x[3]
        if m["type"] == "attempt":
            assert m["phase"] in ("dialed", "finished"), m
            assert m["phase"] not in att[m["attemptGuid"]], \
                f"attempt {m['attemptGuid']} {m['phase']} reported under two ids: " \
                f"{att[m['attemptGuid']][m['phase']][3]} / {m}"
            att[m["attemptGuid"]][m["phase"]] = x
            for f in ("campaignGroup", "campaign", "callingList", "recordId",
                      "chainId", "phone", "attempt", "dialMode", "connId"):
                assert f in m, (f, m)
            assert (m["campaignGroup"], m["campaign"], m["callingList"]) == \
                (t.group, t.camp, lst), m
        elif m["type"] == "record":
            recs[m["record_id"]].append(x)
        elif m["type"] == "chain":
            chains[m["chainId"]].append(x)

    by_record = collections.defaultdict(list)
    unknown = []
    for guid, ph in att.items():
        assert "dialed" in ph, f"attempt {guid} finished, never dialed: {ph}"
        d = ph["dialed"]
        by_record[d[3]["recordId"]].append(guid)
        if "finished" not in ph:
            unknown.append(guid)
            continue
        f = ph["finished"]
        for k in ("recordId", "chainId", "phone", "attempt"):
            assert f[3][k] == d[3][k], (d[3], f[3])
        assert f[0] == d[0] and f[1] > d[1], \
            f"finished before dialed, or elsewhere: {d[:2]} {f[:2]} {f[3]}"
        assert f[3]["time"] >= d[3]["time"], (d[3], f[3])
        for k in ("callResult", "callResultName", "duration"):
            assert k in f[3], (k, f[3])
        assert f[3]["connId"], f[3]
    assert len(unknown) <= unknown_ok, \
        f"{len(unknown)} attempts dialed with no outcome reported: " \
        f"{[att[g]['dialed'][3] for g in unknown]}"

    assert set(by_record) == set(rows), \
        f"records with attempts {sorted(by_record)} / records {sorted(rows)}"
    for rid, (status, result, attempt, phone, chain, owner) in rows.items():
        assert status in FINAL and owner is None, (rid, rows[rid])
        key = f"{lst}:{chain}"
        ds = sorted(att[g]["dialed"][3]["attempt"] for g in by_record[rid])
        assert ds == list(range(1, attempt + 1)), \
            f"record {rid}: attempt column {attempt}, dialed reports {ds}"
        fins = {att[g]["finished"][3]["attempt"]: att[g]["finished"][3]
                for g in by_record[rid] if "finished" in att[g]}
        assert attempt in fins, f"record {rid}: its last attempt has no outcome"
        assert fins[attempt]["callResult"] == result, (rid, rows[rid], fins[attempt])
        rm = {x[3]["attempt"]: x[3] for x in recs[rid]}
        assert len(rm) == len(recs[rid]), \
            f"record {rid}: two record reports for one attempt: {recs[rid]}"
        assert set(rm) == set(fins), \
            f"record {rid}: record reports for attempts {sorted(rm)}, " \
            f"outcomes for {sorted(fins)}"
        for a, m in rm.items():
            assert m["call_result"] == fins[a]["callResult"], (m, fins[a])
            assert m["callingList"] == lst and m["chain_id"] == chain, m
            assert "treatment" in m and "record_status" in m, m
        last = rm[attempt]
        assert (last["record_status"], last["call_result"]) == (status, result), \
            f"record {rid}: PostgreSQL holds {(status, result)}, Kafka {last}"
        assert len(chains[chain]) == 1, f"chain {chain}: {chains[chain]}"
        c = chains[chain][0][3]
        assert (c["recordStatus"], c["callResult"], c["callingList"]) == \
            (status, result, lst), (c, rows[rid])
        # Every report of the chain under its key, in what happened's order.
        mine = sorted([att[g][ph] for g in by_record[rid] for ph in att[g]]
                      + recs[rid] + chains[chain], key=lambda x: (x[0], x[1]))
        assert {x[2] for x in mine} == {key}, (key, {x[2] for x in mine})
        assert len({x[0] for x in mine}) == 1, f"key {key} in two partitions"
        order = [(x[3]["attempt"] if x[3]["type"] != "chain" else attempt,
                  RANK[x[3].get("phase", x[3]["type"])]) for x in mine]
        assert order == sorted(order), f"key {key} out of order: {order}"
        times = [x[3]["time"] for x in mine]
        assert times == sorted(times), f"key {key}: times go back: {times}"

    # The voice side was asked for exactly the calls Kafka reports, once
    # each; a phone is dialled as many times as its attempt column says.
    reqs = [q for q in requests_of(redis_port)
            if q["request"] == "RequestMakePredictiveCall"]
    guids = [q["userData"]["GSW_CALL_ATTEMPT_GUID"] for q in reqs]
    assert len(guids) == len(set(guids)) and set(guids) == set(att), \
        f"{len(guids)} calls asked for, {len(att)} attempts reported"
    per_phone = collections.Counter(q["destination"] for q in reqs)
    for rid, r in rows.items():
        assert per_phone[r[3]] == r[2], \
            f"record {rid} ({r[3]}): dialled {per_phone[r[3]]} times, attempt {r[2]}"
    return att, unknown


def group_reports(t, rep):
    """The group key's reports: all in one partition, group-stats fields."""
    gk = [x for x in rep.msgs if x[3]["type"] in ("group-state", "group-stats")]
    assert {x[2] for x in gk} == {f"group:{t.group}"}, {x[2] for x in gk}
    assert len({x[0] for x in gk}) == 1, "the group's key in two partitions"
    for _, _, _, m in gk:
        assert m["campaignGroup"] == t.group, m
        if m["type"] == "group-stats":
            for f in STATS_FIELDS:
                assert isinstance(m.get(f), (int, float)), (f, m)
    return gk


class Sampler(threading.Thread):
    """Samples a daemon's metrics every 0.1 s, for a metric that must go
    down and come back."""

    def __init__(self, d, names):
        super().__init__(daemon=True)
        self.d, self.names = d, names
        self.seen = {n: [] for n in names}
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                m = self.d.metrics()
                for n in self.names:
                    v = m.get((n, frozenset()))
                    if v is not None and (not self.seen[n] or self.seen[n][-1] != v):
                        self.seen[n].append(v)
            except (OSError, AssertionError):
                pass
            self.halt.wait(0.1)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.seen


# ---- 1. every report arrives ----

def test_every_report_arrives(tenantd, pg, redis, km, voicesim_bin):
    t0 = int(time.time() * 1000)
    t = Outbound(tenantd, pg, brokers=km.bootstrap)
    t.add_records(30)
    sim = VoiceSim(voicesim_bin, t.d.conf_path, t.d.tmpdir, [
        "--agents", "3", "--talk", "0.3", "--wrap", "0.2", "--notready", "0",
        "--dist", "fixed", "--agent-answer", "0.1",
        "--outbound-mix", MIX, "--outbound-ring", "0.1:0.3",
        "--busy-after", "0.1", "--seed", "11"])
    try:
        s = start_group(t)
        started = time.monotonic()
        wait_for(lambda: all_final(t), 60, interval=0.3, what="every record final")
        ran = time.monotonic() - started
        unload(t)
        drained(t)
        s.close()
    finally:
        sim.stop()
    rep = Reports(km.bootstrap)
    assert rep.dups == 0, f"{rep.dups} duplicates with no crash nor handover"
    att, _ = check_reports(t, rep, redis.port, t0)
    results = collections.Counter(a["finished"][3]["callResult"] for a in att.values())
    assert results[33] and results[6] and len(results) >= 3, results
    for a in att.values():
        f = a["finished"][3]
        if f["callResult"] == 33:     # answered: at an agent of G1
            assert f.get("agent") in ("7001", "7002") and f.get("dn"), f

    gk = group_reports(t, rep)
    states = [m for _, _, _, m in gk if m["type"] == "group-state"]
    seq = [m["state"] for m in states]
    assert seq in (["Loaded", "Running", "Loaded", "NotLoaded"],
                   ["Loaded", "Running", "Stopping", "Loaded", "NotLoaded"]), seq
    prev = "NotLoaded"
    for m in states:
        assert m["previous"] == prev and m["dialMode"] == "Progressive", states
        assert "reason" in m, m
        prev = m["state"]
    stats = [m for _, _, _, m in gk if m["type"] == "group-stats"]
    # stats_interval is 1 s: one a second while the group was loaded
    assert len(stats) >= int(ran) - 2, (len(stats), ran)
    assert any(m["GSW_STAT_HIT_RATIO"] > 0 for m in stats), stats
    assert all(0 <= m["GSW_STAT_HIT_RATIO"] <= 100 for m in stats), stats
    times = [m["time"] for _, _, _, m in gk]
    assert times == sorted(times), "the group's reports out of order"
    assert outbox_depth(t) == 0
    # docs/outbound.md lists readyAgents among group-stats' fields.
    assert all("readyAgents" in m for m in stats), \
        f"group-stats without the documented readyAgents: {stats[0]}"


# ---- 2. Kafka away for a while ----

def test_kafka_outage_loses_nothing(tenantd, pg, redis, km, voicesim_bin):
    t0 = int(time.time() * 1000)
    t, sim = gvp_campaign(tenantd, pg, km, channels=3, records=50, seed=21,
                          ring="0.2:0.6")
    names = ("tenantd_outbound_kafka_up", "tenant_ocs_connection_status")
    try:
        start_group(t).close()
        wait_for(lambda: t.d.metric("tenantd_outbound_reports_total") >= 10, 15,
                 interval=0.2, what="reports relayed before the outage")
        sampler = Sampler(t.d, names)
        sampler.start()
        # its first sample, before the outage (the thread may start late)
        wait_for(lambda: all(sampler.seen[n] for n in names), 10,
                 interval=0.05, what="the sampler's first sample")
        km.down()
        down_at = time.monotonic()
        wait_for(lambda: t.d.metric("tenantd_outbound_kafka_up") == 0, 10,
                 interval=0.1, what="tenantd_outbound_kafka_up 0")
        dialed = t.d.metric("tenantd_outbound_calls_dialed_total")
        relayed = t.d.metric("tenantd_outbound_reports_total")
        time.sleep(max(0.0, 7 - (time.monotonic() - down_at)))
        # dialling went on; what it reported waits in ocs_outbox
        assert t.d.metric("tenantd_outbound_calls_dialed_total") >= dialed + 5
        assert t.d.metric("tenantd_outbound_reports_total") == relayed
        held = outbox_depth(t)
        assert held >= 10, held
        assert not all_final(t), "the campaign ended during the outage: too short"
        km.up()
        wait_for(lambda: t.d.metric("tenantd_outbound_kafka_up") == 1, 15,
                 interval=0.1, what="tenantd_outbound_kafka_up 1 again")
        wait_for(lambda: all(sampler.seen[n][-1:] == [1] for n in names), 5,
                 interval=0.1, what="both metrics 1 again")
        seen = sampler.stop()
        run_out(t)
    finally:
        sim.stop()
    for n in names:
        # 1 before the outage, 0 in it, 1 after it
        assert seen[n][0] == 1 and 0 in seen[n] and seen[n][-1] == 1, (n, seen[n])
    log = t.d.log_text()
    assert "every broker is down" in log and "reachable again" in log
    rep = Reports(km.bootstrap)
    assert rep.dups == 0, f"{rep.dups} duplicates with no crash nor handover"
    check_reports(t, rep, redis.port, t0)
    group_reports(t, rep)
    wait_for(lambda: t.d.metric("tenantd_outbound_outbox_depth") == 0, 5,
             interval=0.2, what="tenantd_outbound_outbox_depth 0")


# ---- 3. the worker killed mid-campaign ----

# What a kill costs: the calls in flight at the kill were dialled, and
# their "dialed" reports (written with the lease) reach Kafka, but their
# outcome is never known: the dead worker took it with it, and the voice
# side's events for it go to no one.  Their records stay Retrieved until
# the lease runs out (lease_time, 6 s here; the sweep every 5 s), then
# they are dialled again as the next attempt: one attempt more on the
# record, no "finished" for the lost one.  Nothing committed is lost; a
# report relayed but not yet deleted may arrive twice, under its id.

def test_killed_worker_loses_nothing_committed(tenantd, pg, redis, km,
                                               voicesim_bin):
    t0 = int(time.time() * 1000)
    t, sim = gvp_campaign(tenantd, pg, km, channels=8, records=30, seed=31,
                          ring="1.0:2.0")
    try:
        start_in_flight(t, dialed=12, in_flight=4)
        old = t.d.worker_pid("outbound")
        in_flight = t.sql("SELECT record_id FROM cl_one WHERE record_status = 2")
        os.kill(old, signal.SIGKILL)
        killed_at = time.monotonic()
        assert len(in_flight) >= 4, in_flight
        wait_for(lambda: t.d.worker_pid("outbound") not in (None, old) and t.up(),
                 20, what="a new outbound worker")
        assert group_state(t) == "Running"
        wait_for(lambda: all_final(t), 40, interval=0.3, what="every record final")
        took = time.monotonic() - killed_at
        unload(t)
        drained(t)
    finally:
        sim.stop()
    rows = rows_of(t)
    rep = Reports(km.bootstrap)
    att, unknown = check_reports(t, rep, redis.port, t0, unknown_ok=len(in_flight))
    # the unknown outcomes are the killed calls', and each was dialled again
    lost = {att[g]["dialed"][3]["recordId"] for g in unknown}
    assert lost <= {r[0] for r in in_flight}, (lost, in_flight)
    for g in unknown:
        d = att[g]["dialed"][3]
        assert rows[d["recordId"]][2] > d["attempt"], (d, rows[d["recordId"]])
    # the redial waited for the lease (6 s): it did not come sooner
    assert took >= 5, took
    group_reports(t, rep)


# ---- 4. PostgreSQL restarted mid-campaign ----

def test_postgres_restart_loses_no_outcome(tenantd, pg, redis, km, voicesim_bin):
    t0 = int(time.time() * 1000)
    t, sim = gvp_campaign(tenantd, pg, km, channels=6, records=40, seed=41,
                          ring="0.8:1.6")
    try:
        start_in_flight(t, dialed=10, in_flight=3)
        log_at = t.d.log_size()
        pg.stop()
        time.sleep(3)
        pg.start()
        # outcomes that came while it was away waited, and are written now
        t.d.wait_log(r"waits for PostgreSQL", timeout=5, since=log_at)
        run_out(t)
    finally:
        sim.stop()
    rep = Reports(km.bootstrap)
    # No crash, no handover: nothing twice; every attempt's outcome known.
    assert rep.dups == 0, f"{rep.dups} duplicates"
    check_reports(t, rep, redis.port, t0)
    group_reports(t, rep)


# ---- 5. two instances: one relays ----

def test_two_instances_one_relay(tenantd, pg, redis, km, voicesim_bin):
    t0 = int(time.time() * 1000)
    t, sim = gvp_campaign(tenantd, pg, km, channels=6, records=60, seed=51,
                          ring="0.2:0.6")
    port2 = free_port()
    try:
        d2 = tenantd({"workers": {"outbound": {"enabled": True,
                                               "listen": f"127.0.0.1:{port2}",
                                               "lease_time": 6.0,
                                               "stats_interval": 1.0}},
                      "kafka": {"brokers": km.bootstrap}})
        wait_for(lambda: d2.metric("tenantd_outbound_kafka_up") == 1, 20,
                 interval=0.2, what="the second instance up")
        start_group(t).close()
        run_out(t)
        # the second instance's stats reports are rows too: wait for them
        time.sleep(1.5)
        drained(t)
    finally:
        sim.stop()
    assert d2.metric("tenantd_outbound_calls_dialed_total") > 0
    assert t.d.metric("tenantd_outbound_calls_dialed_total") > 0
    r1 = t.d.metric("tenantd_outbound_reports_total")
    r2 = d2.metric("tenantd_outbound_reports_total")
    assert (r1 > 0) != (r2 > 0), f"reports relayed: {r1} and {r2}"
    rep = Reports(km.bootstrap)
    check_reports(t, rep, redis.port, t0)
    assert r1 + r2 >= len(rep.msgs)
    group_reports(t, rep)


# ---- 6. one instance cut off from PostgreSQL for longer than its leases ----

class CommitCutProxy(Proxy):
    """A Proxy that loses the answer to the first COMMIT after a lease: the
    COMMIT reaches PostgreSQL, what PostgreSQL says back is dropped, and
    every connection is cut 0.3 s later, then accepted again 1 s after."""

    def relay(self, data, to_server, state):
        if to_server and not self.fired.is_set():
            if b"SET record_status = 2, lease_owner" in data:
                state["armed"] = True
            elif state.get("armed") and b"COMMIT" in data:
                self.lose_answers()
        return data


def test_a_lease_whose_commit_answer_is_lost_is_given_back(tenantd, pg, redis,
                                                            km, voicesim_bin):
    """The connection is lost after a lease's COMMIT reached PostgreSQL and
    before its answer came back: the worker cannot know whether it holds
    those records.  It gives them back (Ready, the attempt uncounted) if
    the lease took effect, once PostgreSQL answers, and leases nothing
    until then.  Before, it forgot them: leased to it in the table, renewed
    while it dialled others, never taken back by its own sweep, they were
    never dialled."""
    t0 = int(time.time() * 1000)
    proxy = CommitCutProxy(pg.port)
    try:
        t = Outbound(tenantd, pg, brokers=km.bootstrap, mode="ProgressiveGVP",
                     numOfChannels=4, conf={"postgres": {
                         "conninfo": f"host=127.0.0.1 port={proxy.port} "
                                     f"dbname=t100 user=tenantd"}})
        t.add_records(12)
        sim = sim_gvp(t, 71, ring="0.3:0.8", mix="answer=70,busy=30")
        try:
            start_group(t).close()
            assert proxy.fired.wait(20), "no lease was committed"
            t.d.wait_log(r"the answer to the lease of \d+ record\(s\) of "
                         r"calling list \d+ was lost", timeout=20)
            run_out(t)
        finally:
            sim.stop()
    finally:
        proxy.stop()
    rows = rows_of(t)
    assert all(r[0] in FINAL and r[5] is None for r in rows.values()), rows
    reqs = [q for q in requests_of(redis.port)
            if q["request"] == "RequestMakePredictiveCall"]
    per_phone = collections.Counter(q["destination"] for q in reqs)
    for rid, r in rows.items():
        assert per_phone[r[3]] == r[2], \
            f"record {rid} ({r[3]}): dialled {per_phone[r[3]]} times, attempt {r[2]}"
    # Kafka: the lost lease's `dialed` reports have no `finished` one (the
    # records were given back); every other attempt is a call placed.
    rep = Reports(km.bootstrap)
    check_envelopes(rep, t0)
    phases = collections.defaultdict(dict)
    for x in rep.msgs:
        if x[3]["type"] == "attempt":
            phases[x[3]["attemptGuid"]][x[3]["phase"]] = x[3]
    asked = {q["userData"]["GSW_CALL_ATTEMPT_GUID"] for q in reqs}
    done = {g for g, ph in phases.items() if "finished" in ph}
    assert asked == done, (len(asked), len(done))
    lost = [ph["dialed"] for g, ph in phases.items() if g not in done]
    assert 1 <= len(lost) <= 4, lost
    for m in lost:
        again = [ph["dialed"] for g, ph in phases.items() if g in done
                 and ph["dialed"]["recordId"] == m["recordId"]
                 and ph["dialed"]["attempt"] == m["attempt"]]
        assert len(again) == 1, (m, again)


def test_partitioned_instance_outcome_not_applied_twice(tenantd, pg, redis, km,
                                                         voicesim_bin):
    """An instance cut off from PostgreSQL for longer than lease_time:
    its records' leases run out, the other instance gives them back and
    dials them again (as after a kill).  When the cut-off instance comes
    back with the outcomes it held, they must not contradict what
    PostgreSQL holds: Kafka's last `record` report of a record is what
    PostgreSQL holds, and a chain is done once."""
    t0 = int(time.time() * 1000)
    t, sim = gvp_campaign(tenantd, pg, km, channels=4, records=40, seed=61,
                          ring="1.0:2.0", mix="answer=80,busy=20")
    proxy = Proxy(pg.port)
    port2 = free_port()
    try:
        d2 = tenantd({"postgres": {"conninfo": f"host=127.0.0.1 "
                                   f"port={proxy.port} dbname=t100 user=tenantd"},
                      "workers": {"outbound": {"enabled": True,
                                               "listen": f"127.0.0.1:{port2}",
                                               "lease_time": 6.0,
                                               "stats_interval": 1.0}},
                      "kafka": {"brokers": km.bootstrap},
                      "security": {"admin_token_file": os.path.join(
                          t.d.tmpdir, ADMIN_TOKEN_FILE)}})
        wait_for(lambda: d2.metric("tenantd_outbound_kafka_up") == 1, 20,
                 interval=0.2, what="the second instance up")
        # Started on the second instance, which dials at once; the first
        # adopts the group within 2 s.  (Started on the first, the second
        # once had no record left to dial by the time it adopted the
        # group, in CI's ASan run.)
        start_in_flight(t, dialed=0, in_flight=2, d=d2, port=port2)
        pid2 = d2.worker_pid("outbound")
        proxy.cut()
        held = [r[0] for r in t.sql(
            "SELECT record_id FROM cl_one WHERE record_status = 2 AND "
            "lease_owner LIKE %s", f"%/{pid2}/%")]
        assert len(held) >= 2, held
        # the leases run out (6 s), the sweep (5 s) gives the records back
        wait_for(lambda: all(rows_of(t)[r][5] is None or pid2 not in
                             (rows_of(t)[r][5] or "") for r in held), 20,
                 interval=0.3, what="the cut-off instance's leases given back")
        wait_for(lambda: all(rows_of(t)[r][0] in FINAL for r in held), 20,
                 interval=0.3, what="its records dialled again, to the end")
        proxy.mend()
        d2.wait_log(r"role=outbound.*up again", timeout=20)
        wait_for(lambda: all_final(t), 60, interval=0.3, what="every record final")
        time.sleep(2)           # the held outcomes written, if they are
        unload(t)
        drained(t)
        time.sleep(1.5)
        drained(t)
    finally:
        sim.stop()
        proxy.stop()
    rows = rows_of(t)
    rep = Reports(km.bootstrap)
    check_envelopes(rep, t0)
    per_key = collections.defaultdict(list)
    for x in rep.msgs:
        if x[3]["type"] in ("record", "chain"):
            per_key[x[2]].append(x[3])
    bad = []
    for rid, (status, result, attempt, phone, chain, owner) in rows.items():
        ms = per_key[f"{t.list}:{chain}"]
        recs = [m for m in ms if m["type"] == "record"]
        chains = [m for m in ms if m["type"] == "chain"]
        last = recs[-1] if recs else None
        if (last is None or (last["record_status"], last["call_result"],
                             last["attempt"]) != (status, result, attempt)
                or len(chains) != 1):
            bad.append((rid, rows[rid], [(m["type"], m.get("attempt"),
                                          m.get("record_status", m.get("recordStatus")),
                                          m.get("call_result", m.get("callResult")))
                                         for m in ms]))
    assert not bad, ("Kafka contradicts PostgreSQL for records the cut-off "
                     f"instance held {held}: " + "; ".join(map(str, bad)))
    # Every attempt counted is a call placed, but for a lease whose COMMIT
    # took effect while its answer was lost with the cut: the cut-off
    # instance never placed those calls, and, the cut outlasting the
    # lease, the other instance had the records by the time it could give
    # them back, so they stay counted (a `dialed` report, no call).
    reqs = [q for q in requests_of(redis.port)
            if q["request"] == "RequestMakePredictiveCall"]
    asked = {q["userData"]["GSW_CALL_ATTEMPT_GUID"] for q in reqs}
    dialed = {x[3]["attemptGuid"]: x[3] for x in rep.msgs
              if x[3]["type"] == "attempt" and x[3]["phase"] == "dialed"}
    assert asked <= set(dialed), "a call placed with no dialed report"
    unasked = [m for g, m in dialed.items() if g not in asked]
    assert len(unasked) <= 4, unasked          # one lease of 4 channels
    per_phone = collections.Counter(q["destination"] for q in reqs)
    for rid, r in rows.items():
        nums = sorted({m["attempt"] for m in dialed.values()
                       if m["recordId"] == rid})
        assert nums == list(range(1, r[2] + 1)), (rid, r, nums)
        placed = {m["attempt"] for g, m in dialed.items()
                  if m["recordId"] == rid and g in asked}
        never = set(nums) - placed
        assert per_phone[r[3]] == len(placed) == r[2] - len(never), \
            (rid, r, per_phone[r[3]], sorted(placed))


# ---- 7. a report committed late, between reports relayed before it ----

# The relay deletes what Kafka acknowledged by runs of consecutive seqs; a
# seq it read past without seeing (a transaction still open) splits a run
# and is asked for again.  The reports here are written straight into
# ocs_outbox, as outbox_put writes them, by the test.

def test_late_report_between_relayed_ones(tenantd, pg, km):
    import psycopg
    d = tenantd({"workers": {"outbound": {"enabled": True,
                                          "listen": f"127.0.0.1:{free_port()}"}},
                 "kafka": {"brokers": km.bootstrap}})
    wait_for(lambda: d.metric("tenantd_outbound_kafka_up") == 1, 20,
             interval=0.2, what="the relay connected to Kafka")
    ids = []

    def rows(conn, first, n):
        with conn.cursor() as cur:
            for i in range(first, first + n):
                rid = str(uuid.uuid4())
                ids.append(rid)
                v = {"id": rid, "type": "record", "time": 1, "tenant": TENANT_ID,
                     "n": i}
                cur.execute("INSERT INTO ocs_outbox (id, key, value) VALUES "
                            "(%s, %s, %s) RETURNING seq",
                            (rid, f"k{i % 7}", json.dumps(v)))
            return cur.fetchone()[0]

    now = psycopg.connect(pg.conninfo, autocommit=True)
    late = psycopg.connect(pg.conninfo)
    try:
        rows(now, 0, 1500)
        late_seq = rows(late, 1500, 1)          # its seq taken, not committed
        last_seq = rows(now, 1501, 1500)
        assert late_seq < last_seq
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= 3000, 20,
                 interval=0.1, what="the 3,000 committed reports relayed")
        wait_for(lambda: now.execute("SELECT count(*) FROM ocs_outbox")
                 .fetchone()[0] == 0, 20, interval=0.1,
                 what="the relayed rows deleted")
        # the open transaction's row is still there, not relayed
        assert late.execute("SELECT count(*) FROM ocs_outbox WHERE seq = %s",
                            (late_seq,)).fetchone()[0] == 1
        assert d.metric("tenantd_outbound_reports_total") == 3000
        late.commit()
        wait_for(lambda: now.execute("SELECT count(*) FROM ocs_outbox")
                 .fetchone()[0] == 0 and
                 d.metric("tenantd_outbound_reports_total") >= 3001, 20,
                 interval=0.1, what="the late report relayed and deleted")
    finally:
        late.close()
        now.close()
    got = [json.loads(v)["id"] for _, _, _, v in
           read_records(km.bootstrap, TOPIC, count=3001, timeout=20)]
    assert sorted(set(got)) == sorted(ids), (len(got), len(ids))


# ---- 8. ocs_outbox partitioned: what is cleared, and when ----

# ocs_outbox is a ring of partitions by seq (docs/outbound.md, "Deleting");
# a partition is truncated only when every row in it was delivered, under
# a lock that no writer's open transaction may hold.  Slices are 200,000
# seqs: these tests write a little more than one, server-side.

SLICE = 200000


def relay_only(tenantd, km):
    """tenantd with the outbound worker relaying to km, its table
    partitioned (migration 2)."""
    d = tenantd({"workers": {"outbound": {"enabled": True,
                                          "listen": f"127.0.0.1:{free_port()}"}},
                 "kafka": {"brokers": km.bootstrap}})
    wait_for(lambda: d.metric("tenantd_outbound_kafka_up") == 1, 20,
             interval=0.2, what="the relay connected to Kafka")
    return d


def partitioned(conn):
    return conn.execute(
        "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON "
        "c.oid = p.partrelid WHERE c.relname = 'ocs_outbox'").fetchone()[0] == 1


def put(conn, tag, seq=None):
    """A report as outbox_put writes it (or under seq, taken earlier):
    its id."""
    rid = str(uuid.uuid4())
    v = json.dumps({"id": rid, "type": "record", "time": 1,
                    "tenant": TENANT_ID, "tag": tag})
    if seq is None:
        conn.execute("INSERT INTO ocs_outbox (id, key, value) VALUES "
                     "(%s, %s, %s)", (rid, f"k:{tag}", v))
    else:
        conn.execute("INSERT INTO ocs_outbox (seq, id, key, value) VALUES "
                     "(%s, %s, %s, %s)", (seq, rid, f"k:{tag}", v))
    return rid


def bulk(conn, n):
    """n reports in one statement, keys k0..k6."""
    conn.execute(
        "WITH s AS (SELECT gen_random_uuid() AS id, i FROM generate_series(1, %s) i) "
        "INSERT INTO ocs_outbox (id, key, value) SELECT id, 'k' || (i %% 7), "
        "json_build_object('id', id, 'type', 'record', 'time', 1, "
        "'tenant', %s::text, 'n', i)::text FROM s", (n, TENANT_ID))


def relfilenode(conn, rel):
    return conn.execute("SELECT relfilenode FROM pg_class WHERE relname = %s",
                        (rel,)).fetchone()[0]


def rows_left(conn):
    return conn.execute("SELECT count(*) FROM ocs_outbox").fetchone()[0]


def ids_in_kafka(km, ids, timeout=30):
    """Whether each id is among the newest reports the topic kept."""
    got = {json.loads(v)["id"] for _, _, _, v in
           read_records(km.bootstrap, TOPIC, timeout=timeout)}
    return [i for i in ids if i not in got]


def test_open_transaction_keeps_its_partition(tenantd, pg, km):
    """A transaction that took a seq of the first slice stays open while
    that slice and some of the next are written and relayed: the first
    partition cannot be truncated (its lock is held), so its delivered
    rows are deleted instead, and the open transaction's row, committed
    at last, is relayed."""
    import psycopg
    d = relay_only(tenantd, km)
    now = psycopg.connect(pg.conninfo, autocommit=True)
    late = psycopg.connect(pg.conninfo)
    try:
        wait_for(lambda: partitioned(now), 20, interval=0.2,
                 what="ocs_outbox partitioned")
        node0 = relfilenode(now, "ocs_outbox_0")
        late_id = put(late, "late")             # seq 1, not committed
        n = SLICE + 10000
        bulk(now, n)
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n, 60,
                 interval=0.2, what="the committed reports relayed")
        wait_for(lambda: rows_left(now) == 0, 30, interval=0.2,
                 what="the relayed rows cleared")
        assert relfilenode(now, "ocs_outbox_0") == node0, \
            "the partition was truncated under an open transaction"
        assert late.execute("SELECT count(*) FROM ocs_outbox WHERE id = %s",
                            (late_id,)).fetchone()[0] == 1
        assert d.metric("tenantd_outbound_reports_total") == n
        late.commit()
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n + 1
                 and rows_left(now) == 0, 20, interval=0.2,
                 what="the late report relayed and cleared")
    finally:
        late.close()
        now.close()
    assert ids_in_kafka(km, [late_id]) == []


def test_late_commit_before_the_truncation(tenantd, pg, km):
    """The same, but the open transaction commits as soon as the rest is
    relayed, while the relay still tries to truncate the first partition:
    whichever comes first, the check under the lock finds the row or the
    relay has it, and it reaches Kafka."""
    import psycopg
    d = relay_only(tenantd, km)
    now = psycopg.connect(pg.conninfo, autocommit=True)
    late = psycopg.connect(pg.conninfo)
    try:
        wait_for(lambda: partitioned(now), 20, interval=0.2,
                 what="ocs_outbox partitioned")
        late_id = put(late, "late")
        n = SLICE + 10000
        bulk(now, n)
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n, 60,
                 interval=0.05, what="the committed reports relayed")
        late.commit()
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n + 1
                 and rows_left(now) == 0, 30, interval=0.2,
                 what="the late report relayed and everything cleared")
    finally:
        late.close()
        now.close()
    assert ids_in_kafka(km, [late_id]) == []


def test_row_written_into_a_truncated_partition(tenantd, pg, km):
    """A transaction takes its seq, then writes its row only after the
    relay truncated that seq's partition (all it held was delivered): the
    row is relayed all the same (the relay reads every row left again
    once it is idle)."""
    import psycopg
    d = relay_only(tenantd, km)
    now = psycopg.connect(pg.conninfo, autocommit=True)
    try:
        wait_for(lambda: partitioned(now), 20, interval=0.2,
                 what="ocs_outbox partitioned")
        node0 = relfilenode(now, "ocs_outbox_0")
        seq = now.execute("SELECT nextval('ocs_outbox_seq_seq')").fetchone()[0]
        assert seq < SLICE
        n = SLICE + 10000
        bulk(now, n)
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n
                 and rows_left(now) == 0, 60, interval=0.2,
                 what="the reports relayed and cleared")
        assert relfilenode(now, "ocs_outbox_0") != node0, \
            "the first partition was not truncated"
        late_id = put(now, "late", seq=seq)
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n + 1
                 and rows_left(now) == 0, 20, interval=0.2,
                 what="the late report relayed and cleared")
    finally:
        now.close()
    assert ids_in_kafka(km, [late_id]) == []


def test_migration_moves_the_old_rows(tenantd, pg, km):
    """A database a tenantd of migration 1 left, with reports not relayed:
    two instances start on it together; one migrates (the table is
    partitioned, its rows and sequence kept) and every old report and a
    new one reach Kafka."""
    import psycopg
    conn = psycopg.connect(pg.conninfo, autocommit=True)
    old = []
    try:
        conn.execute("CREATE TABLE tenantd_migrations (owner text NOT NULL, "
                     "version integer NOT NULL, applied_at timestamptz NOT NULL "
                     "DEFAULT now(), PRIMARY KEY (owner, version))")
        conn.execute("INSERT INTO tenantd_migrations (owner, version) "
                     "VALUES ('outbound', 1)")
        conn.execute("CREATE TABLE ocs_group_state (group_dbid bigint PRIMARY KEY, "
                     "state text NOT NULL, dial_mode text, optimize_by text, "
                     "optimize_goal integer, auto_completion boolean NOT NULL "
                     "DEFAULT false, updated timestamptz NOT NULL DEFAULT now())")
        conn.execute("CREATE TABLE ocs_outbox (seq bigserial PRIMARY KEY, "
                     "id uuid NOT NULL, key text NOT NULL, value text NOT NULL, "
                     "created timestamptz NOT NULL DEFAULT now())")
        for i in range(500):
            old.append(put(conn, f"old{i % 7}"))
        conn.execute("SELECT setval('ocs_outbox_seq_seq', 1000)")  # a gap
        old.append(put(conn, "old-last"))
        ds = [tenantd({"workers": {"outbound": {
            "enabled": True, "listen": f"127.0.0.1:{free_port()}"}},
            "kafka": {"brokers": km.bootstrap}}) for _ in range(2)]
        wait_for(lambda: sum(d.metric("tenantd_outbound_reports_total")
                             for d in ds) >= len(old) and rows_left(conn) == 0,
                 30, interval=0.2, what="the old reports relayed")
        assert partitioned(conn)
        assert conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON "
            "c.oid = i.inhparent WHERE c.relname = 'ocs_outbox'").fetchone()[0] == 16
        assert conn.execute("SELECT to_regclass('ocs_outbox_v1')").fetchone()[0] is None
        assert conn.execute("SELECT version FROM tenantd_migrations WHERE "
                            "owner = 'outbound' ORDER BY version").fetchall() == [(1,), (2,)]
        new_id = put(conn, "new")
        assert conn.execute("SELECT seq FROM ocs_outbox WHERE id = %s",
                            (new_id,)).fetchone()[0] > 1001
        wait_for(lambda: rows_left(conn) == 0, 20, interval=0.2,
                 what="the new report relayed")
    finally:
        conn.close()
    assert ids_in_kafka(km, old + [new_id]) == []


def test_a_later_lap_in_the_partition(tenantd, pg, km):
    """The ring went round (a backlog longer than it): the first partition
    also holds a row of the next lap, far behind the relay's read-ahead
    when the first slice is done.  The check under the lock finds it, so
    the partition is truncated only once that row was relayed too."""
    import psycopg
    d = relay_only(tenantd, km)
    conn = psycopg.connect(pg.conninfo, autocommit=True)
    try:
        wait_for(lambda: partitioned(conn), 20, interval=0.2,
                 what="ocs_outbox partitioned")
        n = SLICE + 40000       # more than the relay reads ahead (20,000)
        with conn.transaction():
            bulk(conn, n)
            lap_id = put(conn, "lap", seq=16 * SLICE + 5)
        assert conn.execute("SELECT count(*) FROM ocs_outbox_0").fetchone()[0] \
            == SLICE
        wait_for(lambda: d.metric("tenantd_outbound_reports_total") >= n + 1
                 and rows_left(conn) == 0, 60, interval=0.2,
                 what="every report relayed and cleared")
    finally:
        conn.close()
    assert d.metric("tenantd_outbound_reports_total") == n + 1
    assert ids_in_kafka(km, [lap_id]) == []
