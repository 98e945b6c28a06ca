# SPDX-License-Identifier: Apache-2.0
"""URS's aqt=stat: the routing worker's expected wait from the stats
worker's queue statistics, end to end.  test_routing's tenant (virtual
queues 8001 and 8002, agents 1-4 on 5001-5004 through tools/voicesim),
with the stats worker beside the routing worker: the stats worker counts
the virtual queues' calls from the routing event stream (docs/stats.md
"Virtual queues"), the routing worker opens on each one the expected wait
of the first in line and answers GET /urs/call/.../lvq/...?aqt=stat with
it times the position (workers/routing/statlink.c).

Scripted traffic with every count known: interactions queued, one
cancelled, an agent that rejects one reservation, then takes one
interaction every PACE seconds.  The statistics the stats port gives for
the VirtualQueue's Queue object count exactly that; the expected wait is
checked against its definition, (waiting + 1) x the interval / calls
distributed in it; the worker's restart neither misses nor counts twice;
a gap in the routing stream is made good from the routing state."""

import os
import signal
import time

import pytest

from evclient import Session
from helpers import free_port, wait_for
from test_routing import Routing

PACE = 2.0          # s between the agent's interactions

# What statlink.c opens on every virtual queue (shared with its
# subscription: the same object, definition and profile).
FIRST = {"category": "EstimWaitTime", "per": "CallDistributed"}
SLIDING = {"type": "Sliding", "window": 300, "step": 10}
DISTRIBUTED = {"category": "TotalNumber", "actions": "CallDistributed"}


class RoutingStat(Routing):
    """test_routing's tenant with the stats worker; .t_vq: when virtual
    queue 8001 was created (the routing worker opens its statistic then)."""

    def __init__(self, tenantd, voicesim_bin, stats=True):
        self.stats_port = free_port()
        self.t_vq = None

        def start(overrides=None, **kw):
            if stats:
                overrides.setdefault("workers", {})["stats"] = {
                    "enabled": True, "listen": f"127.0.0.1:{self.stats_port}"}
            d = tenantd(overrides, **kw)
            create = d.create

            def timed(coll, obj):
                before = time.time()
                dbid = create(coll, obj)
                if obj.get("number") == "8001":
                    self.t_vq = before
                return dbid
            d.create = timed
            return d
        super().__init__(start, voicesim_bin)

    def stats(self):
        s = Session(self.stats_port)
        s.open(self.token, "test")
        return s

    def urs(self, who="max", vq="8001"):
        s, r = self.http("GET", f"/urs/call/{who}/lvq/{vq}?aqt=stat")
        assert s == 200, r
        return r

    def reserved(self, ids):
        """The one of ids reserved for an agent, once there is one."""
        def one():
            for i in ids:
                if self.get(i).get("state") == "reserved":
                    return i
            return None
        return wait_for(one, 10, what="an interaction reserved")


def open_stat(s, statistic, profile=None, obj="8001"):
    """Open a statistic of the VirtualQueue's Queue object; its id, once
    the stats worker says it is valid (the routing events followed)."""
    def valid():
        fields = {"object": {"type": "Queue", "id": obj},
                  "statistic": statistic, "notify": {"mode": "none"}}
        if profile is not None:
            fields["profile"] = profile
        r = s.call("RequestOpenStatistic", **fields)
        assert r["event"] == "EventStatisticOpened", r
        if r["valid"]:
            return r["statisticId"]
        s.call("RequestCloseStatistic", statisticId=r["statisticId"])
        return None
    return wait_for(valid, 15, interval=0.2, what="a valid statistic")


def peek(s, sid):
    """(value, time in s) of a statistic now."""
    r = s.call("RequestPeekStatistic", statisticId=sid)
    assert r["event"] == "EventInfo", r
    return r["value"], r["time"] / 1000.0


@pytest.fixture
def rs(tenantd, voicesim_bin):
    t = RoutingStat(tenantd, voicesim_bin)
    yield t
    t.stop()


def test_stat_counts_the_virtual_queue_and_expected_wait(rs):
    assert rs.urs() == {"pos": 1, "ewt": -1}       # nothing distributed yet
    s = rs.stats()
    waiting = open_stat(s, "CurrentNumberWaitingCalls")
    entered = open_stat(s, "TotalNumberInboundCalls")
    abandoned = open_stat(s, "TotalNumberAbandonedCalls")
    answered = open_stat(s, "TotalNumberAnsweredCalls")
    oldest = open_stat(s, "CurrentMaxWaitingTime")
    distributed = open_stat(s, DISTRIBUTED)
    first = open_stat(s, FIRST, SLIDING)
    t_open = time.time()
    ewt = open_stat(s, "ExpectedWaitTime")      # Growing, from now
    t_opened = time.time()
    t_traffic = time.time()

    # Eight queued, the last one cancelled while it waits.
    ids = [rs.queue()[1]["id"] for _ in range(8)]
    created = {i: rs.get(i)["created"] / 1000.0 for i in ids}
    rs.http("DELETE", f"/v1/interactions/{ids[7]}")
    wait_for(lambda: peek(s, abandoned)[0] == 1, 5, what="the cancel counted")
    assert peek(s, waiting)[0] == 7 and peek(s, entered)[0] == 8

    # An agent: the first one reserved for it, rejected (back in the
    # queue: entered again), the second reserved at once.
    rs.ready(1, seen=False)
    assert rs.reserved(ids) == ids[0]
    rs.http("POST", f"/v1/interactions/{ids[0]}/reject")
    wait_for(lambda: rs.get(ids[1]).get("state") == "reserved", 5,
             what="the next one reserved")
    # Then one every PACE s: accepted, completed, the next reserved.
    for k in (1, 2, 3):
        time.sleep(PACE)
        rs.http("POST", f"/v1/interactions/{ids[k]}/accept")
        rs.http("POST", f"/v1/interactions/{ids[k]}/complete")
        wait_for(lambda: rs.get(ids[k + 1]).get("state") == "reserved", 5,
                 what=f"interaction {k + 2} reserved")
    # Distributed: ids[0] (rejected), 1, 2, 3, 4; waiting: ids[0], 5, 6.
    wait_for(lambda: peek(s, distributed)[0] == 5, 5,
             what="five distributed")
    assert peek(s, waiting)[0] == 3
    assert peek(s, entered)[0] == 9             # 8 and the one rejected
    assert peek(s, abandoned)[0] == 1
    assert peek(s, answered)[0] == 3            # ids 1-3 accepted
    v, t = peek(s, oldest)                      # ids[0], back since reject
    assert v < t - created[ids[5]] + 0.1 and v > PACE * 3 - 1, v

    # The first in line's expected wait: the interval / distributed in it;
    # the interval began when the statistic did (the window is longer):
    # every peek gives one and the same start, after the queue was made.
    time.sleep(1.5)             # the routing worker has a fresh value
    starts = []
    for _ in range(3):
        v, t = peek(s, first)
        starts.append(t - v * 5)
        time.sleep(0.3)
    assert max(starts) - min(starts) < 0.05, starts
    born = sum(starts) / 3
    assert rs.t_vq - 0.2 < born < t_traffic, (rs.t_vq, born, t_traffic)

    # ExpectedWaitTime, Growing from when the test opened it: (3 + 1) x
    # the time since / 5.
    v, t = peek(s, ewt)
    assert 4 * (t - t_opened) / 5 - 0.01 < v < 4 * (t - t_open) / 5 + 0.01, v

    # The routing worker: the position times the first in line's, as it
    # was at most a second ago.  max: the one that would come now, 4th.
    t0 = time.time()
    r = rs.urs()
    t1 = time.time()
    assert r["pos"] == 4, r
    lo, hi = 4 * (t0 - 1.3 - born) / 5, 4 * (t1 - born) / 5
    assert lo - 0.5 <= r["ewt"] <= hi + 0.5, (r, lo, hi)
    # ... and the same as the stats worker's ExpectedWaitTime of a queue
    # whose statistic began when the routing worker's did.
    # A call that waits: ids[6] is third.
    t0 = time.time()
    r = rs.urs(ids[6])
    t1 = time.time()
    assert r["pos"] == 3, r
    lo, hi = 3 * (t0 - 1.3 - born) / 5, 3 * (t1 - born) / 5
    assert lo - 0.5 <= r["ewt"] <= hi + 0.5, (r, lo, hi)
    # Reserved, it waits no more.
    assert rs.urs(ids[4]) == {"pos": -1, "ewt": -1}
    s.close()


def test_restart_neither_misses_nor_counts_twice(rs):
    s = rs.stats()
    entered = open_stat(s, "TotalNumberInboundCalls")
    distributed = open_stat(s, DISTRIBUTED)
    abandoned = open_stat(s, "TotalNumberAbandonedCalls")
    waiting = open_stat(s, "CurrentNumberWaitingCalls")
    ids = [rs.queue()[1]["id"] for _ in range(3)]
    rs.ready(1, seen=False)
    rs.reserved(ids)
    wait_for(lambda: peek(s, distributed)[0] == 1, 5)
    time.sleep(6)               # saved: the snapshot and the totals
    # After the save: two more, one of them cancelled; then killed.
    more = [rs.queue()[1]["id"] for _ in range(2)]
    rs.http("DELETE", f"/v1/interactions/{more[1]}")
    wait_for(lambda: peek(s, abandoned)[0] == 1, 5)
    assert peek(s, entered)[0] == 5 and peek(s, waiting)[0] == 3
    s.close()
    pid = rs.d.worker_pid("stats")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: rs.d.worker_pid("stats") not in (None, pid), 20,
             what="a new stats worker")
    wait_for(lambda: Session(rs.stats_port).close() is None, 20,
             what="the stats port")
    s = wait_for(lambda: rs.stats(), 20, what="a session again")
    # The totals as they were: what came after the save read again from
    # the saved position of the routing events, what came before not.
    assert peek(s, open_stat(s, "TotalNumberInboundCalls"))[0] == 5
    assert peek(s, open_stat(s, DISTRIBUTED))[0] == 1
    assert peek(s, open_stat(s, "TotalNumberAbandonedCalls"))[0] == 1
    assert peek(s, open_stat(s, "CurrentNumberWaitingCalls"))[0] == 3
    # The routing worker's link comes back and it opens its statistic
    # again, which is new (a Sliding one is not kept): the test opens the
    # same one first, so that what is distributed from now on counts in
    # it whichever comes first.  Once something is, aqt=stat is known.
    first = open_stat(s, FIRST, SLIDING)
    assert peek(s, first)[0] == -1
    reserved = rs.reserved(ids)
    rs.http("POST", f"/v1/interactions/{reserved}/accept")
    rs.http("POST", f"/v1/interactions/{reserved}/complete")
    wait_for(lambda: rs.urs()["ewt"] >= 0, 10, what="aqt=stat known again")
    v, t = peek(s, first)
    r = rs.urs()
    assert r["pos"] == 3 and abs(r["ewt"] - 3 * v) <= 3 * 1.3 + 0.5, (r, v)
    s.close()


def test_a_gap_is_made_good_from_the_routing_state(rs):
    s = rs.stats()
    waiting = open_stat(s, "CurrentNumberWaitingCalls")
    entered = open_stat(s, "TotalNumberInboundCalls")
    ids = [rs.queue()[1]["id"] for _ in range(2)]
    wait_for(lambda: peek(s, waiting)[0] == 2, 5)
    # The stats worker stopped while five more come and the stream is
    # trimmed to nothing: it reads at most the entries Redis had handed
    # it, then finds the stream trimmed past it.
    pid = rs.d.worker_pid("stats")
    os.kill(pid, signal.SIGSTOP)
    try:
        ids += [rs.queue()[1]["id"] for _ in range(5)]
        rs.http("DELETE", f"/v1/interactions/{ids[0]}")
        time.sleep(0.5)         # the routing worker read them
        tenant = rs.d.conf["tenant"]["id"]
        rs.r.xtrim(f"tenantd:{{{tenant}}}:routing:events", maxlen=0)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: peek(s, waiting)[0] == 6, 10,
             what="the six waiting, as the routing state has them")
    assert "routing events may have been missed" in rs.d.log_text()
    # Instants missed are not made up: at most the seven queued entered.
    assert 2 <= peek(s, entered)[0] <= 7
    # And it goes on from there.
    rs.queue()
    wait_for(lambda: peek(s, waiting)[0] == 7, 5)
    s.close()


def test_without_a_stats_worker_stat_is_unknown(tenantd, voicesim_bin):
    rs = RoutingStat(tenantd, voicesim_bin, stats=False)
    try:
        ids = [rs.queue()[1]["id"] for _ in range(3)]
        rs.ready(1, seen=False)
        for _ in range(2):
            x = rs.reserved(ids)
            rs.http("POST", f"/v1/interactions/{x}/accept")
            rs.http("POST", f"/v1/interactions/{x}/complete")
            ids.remove(x)
        rs.reserved(ids)                # the last one: nothing waits
        s, r = rs.http("GET", "/urs/call/max/lvq/8001?aqt=urs")
        assert r["ewt"] >= 0, r         # the worker's own flow is known
        assert rs.urs() == {"pos": 1, "ewt": -1}
    finally:
        rs.stop()
