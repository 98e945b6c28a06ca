# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL failover: a primary and a streaming standby on loopback,
tenantd given both hosts with target_session_attrs=read-write.  Config
writes run while the standby is promoted and the primary stopped: every
write is answered 201, or 503 with Retry-After (never 500, never a
half-applied change); reads keep being served from the cache; once the new
primary answers, writes succeed again; and no change that was answered 201
is missing from the new primary's change log.

Replication is synchronous here (synchronous_standby_names), so that an
acknowledged commit is on the standby when the primary goes: with
asynchronous replication a failover may lose the last acknowledged
changes, as docs/operations.md says.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest

from helpers import PG_BIN, _as_postgres, free_port, wait_for, config_api_ready


class Cluster:
    """One PostgreSQL 15 data directory on a free port."""

    def __init__(self, data, port, extra=""):
        self.data, self.port, self.extra = data, port, extra
        self.logfile = data + ".log"
        self.running = False

    def pg_ctl(self, *args, check=True):
        r = subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data] +
                                        list(args)),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(r.stdout.decode(errors="replace") + self.tail())
        return r

    def start(self):
        opts = (f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off " + self.extra)
        self.pg_ctl("-l", self.logfile, "-o", opts, "-w", "-t", "60", "start")
        self.running = True

    def stop(self, mode="fast"):
        if self.running:
            self.pg_ctl("-m", mode, "-w", "-t", "60", "stop", check=False)
            self.running = False

    def tail(self, n=30):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


@pytest.fixture
def pair():
    top = tempfile.mkdtemp(prefix="tenantd-pgha-")
    if os.geteuid() == 0:
        shutil.chown(top, "postgres", "postgres")
    os.chmod(top, 0o700)
    p1, p2 = free_port(), free_port()
    primary = Cluster(os.path.join(top, "primary"), p1, "-c wal_level=replica")
    r = subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", primary.data, "-A",
                                     "trust", "-U", "postgres", "--no-sync",
                                     "-E", "UTF8"]),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, r.stdout
    primary.start()
    admin = f"host=127.0.0.1 port={p1} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("CREATE ROLE tenantd LOGIN")
        c.execute("CREATE DATABASE t100 OWNER tenantd")
    standby = Cluster(os.path.join(top, "standby"), p2)
    r = subprocess.run(_as_postgres([f"{PG_BIN}/pg_basebackup", "-h", "127.0.0.1",
                                     "-p", str(p1), "-U", "postgres", "-D",
                                     standby.data, "-R", "-X", "stream", "-c", "fast"]),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, r.stdout
    standby.start()
    with psycopg.connect(admin, autocommit=True) as c:
        wait_for(lambda: c.execute("SELECT count(*) FROM pg_stat_replication "
                                   "WHERE state = 'streaming'").fetchone()[0] == 1,
                 30, what="the standby streaming")
        # from now on a commit waits for the standby (set once it streams:
        # before, every commit would wait for one)
        c.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        c.execute("SELECT pg_reload_conf()")
    yield primary, standby
    primary.stop("immediate")
    standby.stop("immediate")
    shutil.rmtree(top, ignore_errors=True)


def test_config_writes_ride_through_a_failover(tenantd, pair):
    primary, standby = pair
    conninfo = (f"host=127.0.0.1,127.0.0.1 port={primary.port},{standby.port} "
                "dbname=t100 user=tenantd target_session_attrs=read-write "
                "connect_timeout=2")
    d = tenantd({"postgres": {"conninfo": conninfo}}, config_worker=True)
    config_api_ready(d)
    sw = d.create("switches", {"name": "sw1"})
    acked, statuses, stop = [], [], threading.Event()

    def write():
        n = 0
        while not stop.is_set():
            n += 1
            s, h, b = d.api("POST", "/v1/dns", {"number": f"9{n:05d}",
                                                "type": "Extension", "switch": sw})
            statuses.append(s)
            if s == 201:
                acked.append(b["dbid"])
            elif s == 503:
                assert "retry-after" in h, h
            time.sleep(0.01)

    reads = []

    def read():
        while not stop.is_set():
            reads.append(d.api("GET", f"/v1/switches/{sw}")[0])
            time.sleep(0.02)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    before = len(acked)
    # the failover: the primary goes, the standby is promoted
    primary.stop("immediate")
    t_down = time.monotonic()
    standby.pg_ctl("promote", "-w", "-t", "60")
    wait_for(lambda: len(acked) > before + 20, 60,
             what="writes acknowledged on the new primary")
    back = time.monotonic() - t_down
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert before > 0
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    assert reads and set(reads) == {200}, sorted(set(reads))
    # nothing answered 201 is missing on the new primary, nor from its log
    admin = f"host=127.0.0.1 port={standby.port} user=postgres dbname=t100"
    with psycopg.connect(admin) as c:
        rows = {r[0] for r in c.execute("SELECT dbid FROM cfg_object").fetchall()}
        logged = {r[0] for r in c.execute("SELECT dbid FROM cfg_change").fetchall()}
    missing = [x for x in acked if x not in rows or x not in logged]
    assert not missing, missing
    print(f"failover: writes back {back:.1f} s after the primary stopped; "
          f"{statuses.count(503)} answered 503 meanwhile")
