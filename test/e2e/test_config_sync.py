# SPDX-License-Identifier: Apache-2.0
"""Two tenantd instances on one PostgreSQL database and one Redis (issue 3,
"Shared state"): a write on one is seen on the other's GETs and change
stream at once; the caches converge through a Redis restart; a PostgreSQL
outage refuses writes (503) but keeps reads served from the cache, and
writes come back without a restart; a killed config worker comes back with
the same data; concurrent writers on both instances never both win; a write
that PostgreSQL aborts as a deadlock victim is run again, never answered
500."""

import os
import signal
import statistics
import threading
import time

import pytest

from helpers import config_api_ready, wait_for


def show(r):
    return f"{r.status} {r.headers} {r.text[:500]}"


def expect(r, status, code=None):
    assert r.status == status, f"expected {status} {code or ''}, got {show(r)}"
    if code is not None:
        assert r.json and r.json.get("error") == code, show(r)
    return r.json


def create(d, coll, body):
    return expect(d.api("POST", f"/v1/{coll}", body), 201)


def changes(d, since):
    out = []
    while True:
        j = expect(d.api("GET", f"/v1/changes?since={since}&limit=1000"), 200)
        out += j["changes"]
        if not j["changes"] or j["changes"][-1]["revision"] >= j["revision"]:
            return j["revision"], out
        since = j["changes"][-1]["revision"]


def snapshot(d, coll="skills"):
    j = expect(d.api("GET", f"/v1/{coll}?limit=10000"), 200)
    return j["revision"], j["items"]


def wait_converged(a, b, timeout=5.0, colls=("skills",)):
    """Both instances list the same objects at the same revision."""
    def same():
        return all(snapshot(a, c) == snapshot(b, c) for c in colls)
    wait_for(same, timeout, interval=0.05, what="both caches to converge")
    return snapshot(a)


def seen_on(d, coll, dbid, version, timeout):
    """Poll d's GET until the object is at version (None: deleted); return
    the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        r = d.api("GET", f"/v1/{coll}/{dbid}", timeout=2)
        now = time.monotonic()
        if version is None and r.status == 404:
            return now
        if r.status == 200 and r.json["version"] == version:
            return now
        if now > deadline:
            raise AssertionError(f"{coll}/{dbid} version {version} not seen within "
                                 f"{timeout}s; last: {show(r)}")
        time.sleep(0.001)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class StreamWatcher(threading.Thread):
    """Follows d's /v1/changes with long polls from since; records when each
    revision arrived."""

    def __init__(self, d, since):
        super().__init__(daemon=True)
        self.d, self.since = d, since
        self.got = []           # (monotonic time, change)
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                r = self.d.api("GET", f"/v1/changes?since={self.since}&wait=1", timeout=5)
            except OSError as e:
                self.errors.append(repr(e))
                time.sleep(0.05)
                continue
            now = time.monotonic()
            if r.status != 200:
                self.errors.append(show(r))
                time.sleep(0.05)
                continue
            for c in r.json["changes"]:
                self.got.append((now, c))
                self.since = c["revision"]

    def stop(self):
        self.halt.set()
        self.join(5)
        assert not self.is_alive()


def start_pair(tenantd, **kw):
    a = tenantd(config_worker=True, **kw)
    b = tenantd(config_worker=True, admin_token=a.admin_token, **kw)
    config_api_ready(a)
    config_api_ready(b)
    return a, b


@pytest.fixture
def pair(tenantd):
    """Two instances started at the same moment on an empty database (their
    migrations race), both loaded."""
    return start_pair(tenantd)


def test_start_together_and_share(pair, pg):
    a, b = pair
    assert a.config_port != b.config_port
    # one schema, migrated once
    v = pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'cfg_object'",
                db="t100").strip()
    assert v == "1"
    s = create(a, "skills", {"name": "from A"})
    t = create(b, "skills", {"name": "from B"})
    assert t["dbid"] != s["dbid"]
    seen_on(b, "skills", s["dbid"], 1, 2)
    seen_on(a, "skills", t["dbid"], 1, 2)
    # one name space: B cannot take A's name
    expect(b.api("POST", "/v1/skills", {"name": "from A"}), 409, "Duplicate")
    wait_converged(a, b)
    assert changes(a, 0) == changes(b, 0)


def test_propagation_latency(pair):
    a, b = pair
    n = 50
    base = [create(a, "skills", {"name": f"lat-{i}"}) for i in range(5)]
    wait_converged(a, b)
    watcher = StreamWatcher(b, changes(b, 0)[0])
    watcher.start()
    time.sleep(0.2)
    acked = {}        # (dbid, version) -> (t_sent, t_acked)
    get_lat, get_lat_send = [], []
    try:
        for i in range(n):
            t_sent = time.monotonic()
            if i % 2:
                o = create(a, "skills", {"name": f"lat-new-{i}"})
            else:
                s = base[i % 5]
                o = expect(a.api("PATCH", f"/v1/skills/{s['dbid']}",
                                 {"userProperties": {"t": {"i": i}}}), 200)
            t_ack = time.monotonic()
            acked[(o["dbid"], o["version"])] = (t_sent, t_ack)
            t_seen = seen_on(b, "skills", o["dbid"], o["version"], 5)
            get_lat.append(t_seen - t_ack)
            get_lat_send.append(t_seen - t_sent)
            time.sleep(0.01)
        wait_for(lambda: len(watcher.got) >= n, 5, what=f"{n} changes on B's stream")
    finally:
        watcher.stop()
    stream_lat = []
    for t_got, c in watcher.got:
        key = (c["dbid"], c["object"]["version"])
        assert key in acked, f"unexpected change on B's stream: {c}"
        stream_lat.append(t_got - acked[key][1])
    assert len(stream_lat) == n and not watcher.errors, watcher.errors
    revs = [c["revision"] for _, c in watcher.got]
    assert revs == list(range(revs[0], revs[0] + n)), "B's stream is not gap-free"
    fmt = lambda v: (f"p50 {pct(v, 50) * 1000:.1f} ms, p90 {pct(v, 90) * 1000:.1f} ms, "  # noqa
                     f"max {max(v) * 1000:.1f} ms")
    print(f"\nA write acknowledged by A -> visible on B's GET:     {fmt(get_lat)}"
          f"\nA write sent to A         -> visible on B's GET:     {fmt(get_lat_send)}"
          f"\nA write acknowledged by A -> on B's /v1/changes:     {fmt(stream_lat)}")
    assert max(get_lat_send) < 1.0 and max(stream_lat) < 1.0
    assert pct(get_lat, 50) < 0.1 and pct(stream_lat, 50) < 0.1, \
        "the issue asks for propagation within 100 ms"


def test_redis_restart_converges(pair, redis):
    a, b = pair
    objs = [create(a, "skills", {"name": f"r-{i}"}) for i in range(5)]
    watcher = StreamWatcher(b, changes(b, 0)[0])
    watcher.start()
    stop = threading.Event()
    errors, written = [], []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = a.api("PATCH", f"/v1/skills/{objs[i % 5]['dbid']}",
                          {"userProperties": {"w": {"i": i}}})
                if r.status != 200:
                    errors.append(show(r))
                else:
                    written.append(r.json["version"])
            except OSError as e:
                errors.append(repr(e))
            time.sleep(0.02)
    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(0.5)
        redis.stop()
        down_lat = []
        for i in range(3):
            time.sleep(0.3)
            t0 = time.monotonic()
            o = create(a, "skills", {"name": f"while-down-{i}"})
            t = seen_on(b, "skills", o["dbid"], 1, 5)
            down_lat.append(t - t0)
        redis.start()
        time.sleep(0.5)
    finally:
        stop.set()
        th.join(10)
    print(f"\nwrites while Redis was down reached B after "
          + ", ".join(f"{x * 1000:.0f} ms" for x in down_lat))
    assert not errors, f"writes on A failed around the Redis restart: {errors[:5]}"
    assert max(down_lat) < 2.0, f"B's 1 s poll should catch up: {down_lat}"
    rev, items = wait_converged(a, b, timeout=5)
    # B's stream saw every revision exactly once
    wait_for(lambda: watcher.got and watcher.got[-1][1]["revision"] == rev, 5,
             what="B's stream to reach the last revision")
    watcher.stop()
    revs = [c["revision"] for _, c in watcher.got]
    assert revs == list(range(revs[0], rev + 1)), "B's stream lost or repeated a change"
    assert not [e for e in watcher.errors if not e.startswith("5")], watcher.errors

    # once Redis is back, B follows by notification again, not by its poll
    def fast():
        lat = []
        for i in range(5):
            o = create(a, "skills", {"name": f"after-{time.monotonic_ns()}"})
            t0 = time.monotonic()
            lat.append(seen_on(b, "skills", o["dbid"], 1, 3) - t0)
        return statistics.median(lat) < 0.1
    wait_for(fast, 10, interval=0.2, what="notifications after Redis came back (B "
             "follows only by its 1 s poll)")
    wait_converged(a, b)


def test_postgres_down(pair, pg):
    a, b = pair
    objs = [create(a, "skills", {"name": f"pg-{i}"}) for i in range(3)]
    p = create(a, "persons", {"userName": "pgdown", "skills": [
        {"skill": objs[0]["dbid"], "level": 1}]})
    wait_converged(a, b, colls=("skills", "persons"))
    before = {d: (snapshot(d), snapshot(d, "persons")) for d in (a, b)}
    pids = (a.worker_pid("config"), b.worker_pid("config"))
    pg.stop()
    try:
        for d in (a, b):
            for method, path, body in (
                    ("POST", "/v1/skills", {"name": "during"}),
                    ("PATCH", f"/v1/skills/{objs[1]['dbid']}", {"name": "renamed"}),
                    ("PUT", f"/v1/skills/{objs[1]['dbid']}", {"name": "renamed"}),
                    ("DELETE", f"/v1/skills/{objs[2]['dbid']}", None),
                    ("DELETE", f"/v1/skills/{objs[0]['dbid']}?cascade=true", None)):
                t0 = time.monotonic()
                r = d.api(method, path, body, timeout=15)
                took = time.monotonic() - t0
                expect(r, 503, "Unavailable")
                assert "postgresql" in r.json["message"].lower(), show(r)
                assert took < 5, f"{method} {path} took {took:.1f} s to be refused"
            # reads are served from the cache
            for _ in range(3):
                assert (snapshot(d), snapshot(d, "persons")) == before[d]
                assert expect(d.api("GET", f"/v1/persons/{p['dbid']}"), 200) == p
                time.sleep(0.2)
            # validation still answers without PostgreSQL
            expect(d.api("POST", "/v1/skills", {"bogus": 1}), 422, "UnknownField")
            r = d.api("GET", "/v1/changes?since=0", timeout=15)
            assert r.status in (200, 503), show(r)
            if r.status == 503:
                assert "postgresql" in r.json["message"].lower(), show(r)
    finally:
        pg.start()
    t0 = time.monotonic()
    wait_for(lambda: a.api("POST", "/v1/skills", {"name": "after"}).status == 201, 15,
             interval=0.25, what="a write on A to work again after PostgreSQL came back")
    print(f"\nwrites worked again {time.monotonic() - t0:.1f} s after PostgreSQL restarted")
    wait_for(lambda: b.api("POST", "/v1/skills", {"name": "after-b"}).status == 201, 15,
             interval=0.25, what="a write on B to work again")
    expect(a.api("PATCH", f"/v1/skills/{objs[1]['dbid']}", {"name": "renamed"}), 200)
    assert a.api("DELETE", f"/v1/skills/{objs[0]['dbid']}?cascade=true").status == 204
    wait_converged(a, b, colls=("skills", "persons"))
    assert expect(b.api("GET", f"/v1/persons/{p['dbid']}"), 200)["skills"] == []
    # nothing was restarted
    assert (a.worker_pid("config"), b.worker_pid("config")) == pids
    for d in (a, b):
        assert d.metric("tenantd_worker_restarts_total", worker="config") == 0
    rev, ch = changes(a, 0)
    assert [c["revision"] for c in ch] == list(range(1, rev + 1))


def test_config_worker_kill9(pair):
    a, b = pair
    for i in range(20):
        create(a, "skills", {"name": f"k-{i}"})
    create(a, "persons", {"userName": "k", "password": "x"})
    wait_converged(a, b, colls=("skills", "persons"))
    before = (snapshot(a), snapshot(a, "persons"), changes(a, 0))
    pid = a.worker_pid("config")
    os.kill(pid, signal.SIGKILL)
    # B serves and takes writes meanwhile
    s = create(b, "skills", {"name": "while A's worker was dead"})
    t0 = time.monotonic()
    wait_for(lambda: a.worker_pid("config") != pid, 10, what="a new config worker")
    config_api_ready(a, timeout=15)
    print(f"\nA's config worker answered again {time.monotonic() - t0:.2f} s after kill -9")
    assert a.alive() and a.worker_pid("config") != pid
    expect(a.api("GET", f"/v1/skills/{s['dbid']}"), 200)
    after = (snapshot(a), snapshot(a, "persons"), changes(a, 0))
    rev0 = before[0][0]
    assert after[0][0] == rev0 + 1
    assert [x for x in after[0][1] if x["dbid"] != s["dbid"]] == before[0][1]
    assert after[1][1] == before[1][1]
    assert after[2][1][:rev0] == before[2][1]
    assert a.metric("tenantd_worker_restarts_total", worker="config") == 1
    assert b.metric("tenantd_worker_restarts_total", worker="config") == 0
    # and it writes
    create(a, "skills", {"name": "after restart"})
    wait_converged(a, b, colls=("skills", "persons"))


def test_concurrent_if_match(pair):
    a, b = pair
    s = create(a, "skills", {"name": "contended"})
    url = f"/v1/skills/{s['dbid']}"
    version = 1
    outcomes = []
    for rnd in range(20):
        seen_on(b, "skills", s["dbid"], version, 3)
        barrier = threading.Barrier(2)
        res = {}

        def go(d, tag):
            barrier.wait()
            res[tag] = d.api("PATCH", url, {"name": f"{tag}-{rnd}"},
                             headers={"If-Match": f'"{version}"'})
        ths = [threading.Thread(target=go, args=(d, t)) for d, t in ((a, "A"), (b, "B"))]
        for t in ths:
            t.start()
        for t in ths:
            t.join(15)
        st = sorted(r.status for r in res.values())
        assert st in ([200, 409], [200, 412]), \
            f"round {rnd}: {[show(r) for r in res.values()]}"
        winner = next(t for t, r in res.items() if r.status == 200)
        outcomes.append(winner)
        version += 1
        for d in (a, b):
            seen_on(d, "skills", s["dbid"], version, 3)
            o = expect(d.api("GET", url), 200)
            assert o["name"] == f"{winner}-{rnd}", (rnd, winner, o)
    print(f"\nIf-Match races won: A {outcomes.count('A')}, B {outcomes.count('B')}")
    rev, ch = changes(a, 1)  # 1 is the tenant object
    assert len(ch) == 21 and [c["revision"] for c in ch] == list(range(2, 23))


def test_concurrent_without_if_match_loses_nothing(pair):
    """Two PATCHes of different fields from two instances at once: either
    both apply, or one is refused; never one silently overwritten."""
    a, b = pair
    s = create(a, "persons", {"userName": "lost-update"})
    url = f"/v1/persons/{s['dbid']}"
    version = 1
    for rnd in range(15):
        seen_on(b, "persons", s["dbid"], version, 3)
        barrier = threading.Barrier(2)
        res = {}

        def go(d, tag, field):
            barrier.wait()
            res[tag] = d.api("PATCH", url, {field: f"{tag}{rnd}"})
        ths = [threading.Thread(target=go, args=x)
               for x in ((a, "A", "firstName"), (b, "B", "lastName"))]
        for t in ths:
            t.start()
        for t in ths:
            t.join(15)
        ok = [t for t, r in res.items() if r.status == 200]
        for t, r in res.items():
            assert r.status in (200, 409), f"round {rnd}: {show(r)}"
        assert ok, f"round {rnd}: both refused: {[show(r) for r in res.values()]}"
        version += len(ok)
        seen_on(a, "persons", s["dbid"], version, 3)
        o = expect(a.api("GET", url), 200)
        if "A" in ok:
            assert o.get("firstName") == f"A{rnd}", f"A's change was lost: {o}"
        if "B" in ok:
            assert o.get("lastName") == f"B{rnd}", f"B's change was lost: {o}"


def test_concurrent_creates(pair):
    a, b = pair
    # the same name from both at once: one wins
    for rnd in range(10):
        barrier = threading.Barrier(2)
        res = {}

        def go(d, tag):
            barrier.wait()
            res[tag] = d.api("POST", "/v1/skills", {"name": f"same-{rnd}"})
        ths = [threading.Thread(target=go, args=(d, t)) for d, t in ((a, "A"), (b, "B"))]
        for t in ths:
            t.start()
        for t in ths:
            t.join(15)
        st = sorted(r.status for r in res.values())
        assert st == [201, 409], [show(r) for r in res.values()]
        assert next(r for r in res.values() if r.status == 409).json["error"] == "Duplicate"
    # many writers on both: one gap-free log, identical caches
    errs = []

    def burst(d, tag):
        cl = d.api_client(keepalive=True)
        for i in range(150):
            r = cl("POST", "/v1/skills", {"name": f"{tag}-{i}"})
            if r.status != 201:
                errs.append(show(r))
    ths = [threading.Thread(target=burst, args=(d, f"{n}{k}"))
           for n, d in (("A", a), ("B", b)) for k in range(3)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    assert not errs, errs[:5]
    rev, items = wait_converged(a, b)
    assert len(items) == 10 + 900
    ca, cb = changes(a, 0), changes(b, 0)
    assert ca == cb and [c["revision"] for c in ca[1]] == list(range(1, rev + 1))


def test_start_with_redis_down(tenantd, redis):
    """Without Redis at start both instances still load from PostgreSQL,
    follow each other by polling, and switch to notifications once Redis
    is there."""
    redis.stop()
    a, b = start_pair(tenantd)
    lat = []
    for i in range(3):
        t0 = time.monotonic()
        o = create(a, "skills", {"name": f"no-redis-{i}"})
        lat.append(seen_on(b, "skills", o["dbid"], 1, 5) - t0)
    print("\nwithout Redis, writes reached B after "
          + ", ".join(f"{x * 1000:.0f} ms" for x in lat))
    assert max(lat) < 2.0, lat
    redis.start()

    def fast():
        lat = []
        for i in range(5):
            o = create(a, "skills", {"name": f"redis-{time.monotonic_ns()}"})
            t0 = time.monotonic()
            lat.append(seen_on(b, "skills", o["dbid"], 1, 3) - t0)
        return statistics.median(lat) < 0.1
    wait_for(fast, 15, interval=0.2, what="notifications once Redis is up")
    wait_converged(a, b)


# ------------------------------------------------ deadlocks and serialization

def pg_connect(pg, autocommit=False):
    """A superuser session on the tenant's database, beside tenantd's."""
    import psycopg
    return psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres "
                           "dbname=t100 connect_timeout=10", autocommit=autocommit)


def lock_waiters(mon):
    """Pids of tenantd's PostgreSQL sessions that wait for a lock now."""
    return [r[0] for r in mon.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = 't100' AND "
        "application_name = 'tenantd' AND wait_event_type = 'Lock'").fetchall()]


class Call(threading.Thread):
    """One API request on a thread: .join() and read .reply."""

    def __init__(self, d, method, path, body=None):
        super().__init__(daemon=True)
        self.d, self.args, self.reply = d, (method, path, body), None
        self.start()

    def run(self):
        try:
            self.reply = self.d.api(*self.args, timeout=30)
        except OSError as e:
            self.reply = e

    def result(self, timeout=30):
        self.join(timeout)
        assert not self.is_alive(), f"{self.args} did not answer"
        assert not isinstance(self.reply, OSError), f"{self.args}: {self.reply!r}"
        return self.reply


def retries(d):
    return d.metric("tenantd_config_write_retries_total")


def test_deadlocked_write_is_retried(tenantd, pg):
    """A lone write that PostgreSQL picks as a deadlock victim (40P01) is
    run again, and succeeds: the client sees 200, not 500.  The deadlock
    is made on purpose: a session of the test holds the revision row, the
    write takes its object's row and waits for the revision row, then the
    test's session asks for the object's row.  The write waited first, so
    its deadlock check (deadlock_timeout, 1 s) finds the cycle and aborts
    it; the test's session waits 20 s before it would look."""
    d = config_api_ready(tenantd(config_worker=True))
    p = create(d, "persons", {"userName": "dl", "firstName": "Old"})
    before = retries(d)
    with pg_connect(pg, autocommit=True) as mon, pg_connect(pg) as holder:
        holder.execute("SET LOCAL deadlock_timeout = '20s'")
        holder.execute("SELECT 1 FROM cfg_revision WHERE id = 1 FOR UPDATE")
        call = Call(d, "PATCH", f"/v1/persons/{p['dbid']}", {"firstName": "New"})
        wait_for(lambda: lock_waiters(mon), 5, interval=0.005,
                 what="the write to wait for the revision row")
        holder.execute("SELECT 1 FROM cfg_object WHERE dbid = %s FOR UPDATE",
                       (p["dbid"],))
        holder.rollback()
        r = call.result()
    assert r.status == 200, show(r)
    assert r.json["firstName"] == "New" and r.json["version"] == 2, show(r)
    assert retries(d) == before + 1
    rev, ch = changes(d, 0)
    assert [c["revision"] for c in ch] == list(range(1, rev + 1))
    assert ch[-1]["op"] == "updated" and ch[-1]["object"]["firstName"] == "New"


def test_deadlocked_cascade_is_retried(tenantd, pg):
    """A cascade (BEGIN, one update per referrer, the delete, COMMIT) that
    is the deadlock victim is run again whole: 204, every reference cut,
    the skill gone, one change per operation and no gap."""
    d = config_api_ready(tenantd(config_worker=True))
    s = create(d, "skills", {"name": "doomed"})
    p1 = create(d, "persons", {"userName": "r1", "skills": [{"skill": s["dbid"], "level": 1}]})
    p2 = create(d, "persons", {"userName": "r2", "skills": [{"skill": s["dbid"], "level": 2}]})
    rev0 = changes(d, 0)[0]
    before = retries(d)
    with pg_connect(pg, autocommit=True) as mon, pg_connect(pg) as holder:
        holder.execute("SET LOCAL deadlock_timeout = '20s'")
        # The cascade updates r1 (and takes the revision row), then waits
        # for r2; then the test's session asks for the revision row.
        holder.execute("SELECT 1 FROM cfg_object WHERE dbid = %s FOR UPDATE",
                       (p2["dbid"],))
        call = Call(d, "DELETE", f"/v1/skills/{s['dbid']}?cascade=true")
        wait_for(lambda: lock_waiters(mon), 5, interval=0.005,
                 what="the cascade to wait for the second referrer")
        holder.execute("SELECT 1 FROM cfg_revision WHERE id = 1 FOR UPDATE")
        holder.rollback()
        r = call.result()
    assert r.status == 204, show(r)
    assert retries(d) == before + 1
    expect(d.api("GET", f"/v1/skills/{s['dbid']}"), 404)
    for p in (p1, p2):
        o = expect(d.api("GET", f"/v1/persons/{p['dbid']}"), 200)
        assert o["skills"] == [] and o["version"] == 2, o
    rev, ch = changes(d, rev0)
    assert rev == rev0 + 3
    assert [(c["op"], c["dbid"]) for c in ch] == [
        ("updated", p1["dbid"]), ("updated", p2["dbid"]), ("deleted", s["dbid"])]


def test_write_that_keeps_deadlocking_gets_503(tenantd, pg):
    """A write is run 6 times in all; if PostgreSQL aborts every try, the
    client gets 503 Conflict and nothing is written.  The test's session
    makes the same deadlock again for each try: it keeps the revision row,
    and takes the person's row in a savepoint that it rolls back once the
    try was aborted."""
    d = config_api_ready(tenantd(config_worker=True))
    p = create(d, "persons", {"userName": "dl", "firstName": "Old"})
    rev0 = changes(d, 0)[0]
    before = retries(d)
    cycles = 0
    with pg_connect(pg, autocommit=True) as mon, pg_connect(pg) as holder:
        holder.execute("SET LOCAL deadlock_timeout = '20s'")
        holder.execute("SELECT 1 FROM cfg_revision WHERE id = 1 FOR UPDATE")
        call = Call(d, "PATCH", f"/v1/persons/{p['dbid']}", {"firstName": "New"})
        while True:
            wait_for(lambda: lock_waiters(mon) or not call.is_alive(), 5,
                     interval=0.005, what="the next try to wait, or the answer")
            if not call.is_alive():
                break
            holder.execute("SAVEPOINT s")
            holder.execute("SELECT 1 FROM cfg_object WHERE dbid = %s FOR UPDATE",
                           (p["dbid"],))
            holder.execute("ROLLBACK TO SAVEPOINT s")
            cycles += 1
            assert cycles <= 6, "the write was tried more than 6 times"
        holder.rollback()
    r = call.result()
    assert r.status == 503 and r.json["error"] == "Conflict", show(r)
    assert "nothing was written" in r.json["message"]
    assert cycles == 6 and retries(d) == before + 5
    o = expect(d.api("GET", f"/v1/persons/{p['dbid']}"), 200)
    assert o["firstName"] == "Old" and o["version"] == 1
    assert changes(d, 0)[0] == rev0
    # and the next write goes through
    expect(d.api("PATCH", f"/v1/persons/{p['dbid']}", {"firstName": "New"}), 200)


def test_cascades_race_referrer_patches(pair):
    """Real contention across two instances: A deletes skills with
    ?cascade=true while B patches the persons that refer to them.  The
    cascade holds the revision row from its first update to its commit,
    and a PATCH holds its person's row while it waits for the revision
    row, so PostgreSQL finds deadlocks and aborts one side.  No client
    ever gets a 500: a victim is run again (and may then find its object
    changed: 409), and the two caches end identical and consistent."""
    a, b = pair
    rounds, fan, patched = 4, 24, 8
    statuses = []
    for rnd in range(rounds):
        s = create(a, "skills", {"name": f"race-{rnd}"})
        ps = [create(a, "persons", {"userName": f"race-{rnd}-{i}", "skills": [
            {"skill": s["dbid"], "level": 1}]}) for i in range(fan)]
        for p in ps:
            seen_on(b, "persons", p["dbid"], 1, 3)
        barrier = threading.Barrier(patched + 1)
        res = []

        def go(d, *args):
            barrier.wait()
            res.append((args, d.api(*args, timeout=30)))
        ths = [threading.Thread(target=go, args=(a, "DELETE",
               f"/v1/skills/{s['dbid']}?cascade=true"))]
        ths += [threading.Thread(target=go, args=(b, "PATCH", f"/v1/persons/{p['dbid']}",
                {"lastName": f"L{rnd}"})) for p in reversed(ps[-patched:])]
        for t in ths:
            t.start()
        for t in ths:
            t.join(60)
        assert len(res) == patched + 1, f"round {rnd}: a request got no answer"
        for args, r in res:
            statuses.append(r.status)
            assert r.status in (200, 204, 409), f"round {rnd}: {args[:2]} {show(r)}"
            if r.status == 409:
                assert r.json["error"] == "VersionMismatch", show(r)
    print(f"\nstatuses: { {s: statuses.count(s) for s in set(statuses)} }, "
          f"retries: A {retries(a)}, B {retries(b)}")
    wait_converged(a, b, colls=("skills", "persons"))
    _, skills = snapshot(a, "skills")
    _, persons = snapshot(a, "persons")
    live = {x["dbid"] for x in skills}
    for p in persons:
        for e in p["skills"]:
            assert e["skill"] in live, f"{p['userName']} refers to a deleted skill"
    ca, cb = changes(a, 0), changes(b, 0)
    assert ca == cb and [c["revision"] for c in ca[1]] == list(range(1, ca[0] + 1))
