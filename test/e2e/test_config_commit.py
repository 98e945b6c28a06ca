# SPDX-License-Identifier: Apache-2.0
"""A config write whose answer PostgreSQL sent but the worker never got:
the connection dies after the commit (issue 11).  The worker must not say
"nothing was written" when the change committed: it asks the change log,
on its next connection, for the change with the write's id, and answers
the truth, or says plainly that it cannot know yet.

The fault is made deterministic by a TCP proxy between the worker and
PostgreSQL: armed with a statement's text, it forwards the statement,
lets PostgreSQL run and commit it, swallows the answer up to its
ReadyForQuery, and then cuts both connections."""

import json
import select
import socket
import threading
import time

from helpers import ConfigClient, config_api_ready


def show(r):
    return f"{r.status} {r.headers} {r.text[:500]}"


def expect(r, status, code=None):
    assert r.status == status, f"expected {status} {code or ''}, got {show(r)}"
    if code is not None:
        assert r.json and r.json.get("error") == code, show(r)
    return r.json


# PostgreSQL's ReadyForQuery message: 'Z', length 5, then the status byte.
READY = b"Z\x00\x00\x00\x05"


class LosingProxy:
    """Relays 127.0.0.1:port to PostgreSQL; arm() makes it lose the answer
    to the next statement holding a given text (after another text, when
    after is given), once."""

    def __init__(self, pg_port):
        self.pg_port = pg_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.trigger = self.after = None
        self.dropped = 0
        self.down_until = 0.0
        self.hold_down = 0.0
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} dbname=t100 user=tenantd"

    def arm(self, trigger, after=None, hold_down=0.0):
        """Lose the answer to the next statement holding trigger (seen after
        a statement holding after, if given); then refuse connections for
        hold_down seconds."""
        with self.lock:
            self.trigger, self.after, self.hold_down = trigger, after, hold_down

    def close(self):
        self.stopping = True
        self.lsock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                c.close()
                continue
            t = threading.Thread(target=self._relay, args=(c,), daemon=True)
            t.start()

    def _relay(self, c):
        try:
            s = socket.create_connection(("127.0.0.1", self.pg_port))
        except OSError:
            c.close()
            return
        waiting_after = None    # this connection saw `after`
        losing = False          # the armed statement went through
        swallowed = b""
        try:
            while not self.stopping:
                r, _, _ = select.select([c, s], [], [], 0.5)
                if c in r:
                    data = c.recv(65536)
                    if not data:
                        return
                    with self.lock:
                        if self.trigger is not None and not losing:
                            if self.after is not None and self.after in data:
                                waiting_after = True
                            if self.trigger in data and (
                                    self.after is None or waiting_after):
                                losing = True
                                self.trigger = self.after = None
                    s.sendall(data)
                if s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if not losing:
                        c.sendall(data)
                        continue
                    swallowed += data
                    if READY in swallowed:
                        # PostgreSQL is done with it: committed, and idle.
                        with self.lock:
                            self.dropped += 1
                            self.down_until = time.monotonic() + self.hold_down
                        return
        except OSError:
            return
        finally:
            c.close()
            s.close()


def start(tenantd, pg):
    proxy = LosingProxy(pg.port)
    d = config_api_ready(tenantd(config_worker=True,
                                 postgres__conninfo=proxy.conninfo))
    return proxy, d


def count(pg, typ, key):
    return int(pg.psql(f"SELECT count(*) FROM cfg_object WHERE type = '{typ}'"
                       f" AND key = '{key}'", db="t100").strip())


def test_create_committed_answer_lost(tenantd, pg):
    """The create commits and its answer is lost: 201 with the object, as
    if nothing had happened, and the object exists once."""
    proxy, d = start(tenantd, pg)
    try:
        # create_sql is the only statement that takes a dbid
        proxy.arm(b"nextval('cfg_dbid_seq')")
        r = d.api("POST", "/v1/skills", {"name": "lost-answer"}, timeout=15)
        assert proxy.dropped == 1, "the proxy never lost an answer"
        o = expect(r, 201)
        assert o["name"] == "lost-answer" and o["version"] == 1, show(r)
        assert r.headers.get("location") == f"/v1/skills/{o['dbid']}", show(r)
        assert count(pg, "Skill", "lost-answer") == 1
        assert expect(d.api("GET", f"/v1/skills/{o['dbid']}"), 200) == o
        # and the worker goes on writing through its new connection
        expect(d.api("POST", "/v1/skills", {"name": "after"}), 201)
        log = d.log_text()
        assert "the change log shows it committed" in log, log[-2000:]
    finally:
        proxy.close()


def test_cascade_commit_answer_lost(tenantd, pg):
    """A cascade (BEGIN ... COMMIT) whose COMMIT's answer is lost: 204, and
    both the cut reference and the delete are there."""
    proxy, d = start(tenantd, pg)
    try:
        s = expect(d.api("POST", "/v1/skills", {"name": "doomed"}), 201)
        p = expect(d.api("POST", "/v1/persons", {"userName": "keeper", "skills": [
            {"skill": s["dbid"], "level": 3}]}), 201)
        proxy.arm(b"COMMIT", after=b"DELETE FROM cfg_object")
        r = d.api("DELETE", f"/v1/skills/{s['dbid']}?cascade=true", timeout=15)
        assert proxy.dropped == 1, "the proxy never lost an answer"
        assert r.status == 204, show(r)
        assert count(pg, "Skill", "doomed") == 0
        expect(d.api("GET", f"/v1/skills/{s['dbid']}"), 404, "NotFound")
        assert expect(d.api("GET", f"/v1/persons/{p['dbid']}"), 200)["skills"] == []
    finally:
        proxy.close()


def test_commit_answer_lost_and_postgres_away(tenantd, pg):
    """The answer is lost and PostgreSQL stays out of reach longer than the
    worker looks: 503 that says the write may have committed, never
    "nothing was written"; it had committed, and shows once back."""
    proxy, d = start(tenantd, pg)
    try:
        proxy.arm(b"nextval('cfg_dbid_seq')", hold_down=8.0)
        t0 = time.monotonic()
        r = d.api("POST", "/v1/skills", {"name": "unknown"}, timeout=15)
        took = time.monotonic() - t0
        assert proxy.dropped == 1, "the proxy never lost an answer"
        expect(r, 503, "Unavailable")
        msg = r.json["message"]
        assert "may have been committed" in msg, show(r)
        assert "nothing was written" not in msg, show(r)
        assert 2.5 < took < 5, f"answered after {took:.1f} s"
        assert count(pg, "Skill", "unknown") == 1
        # once PostgreSQL is reachable again the cache shows the write
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = expect(d.api("GET", "/v1/skills?name=unknown"), 200)["items"]
            if items:
                break
            time.sleep(0.2)
        assert [o["name"] for o in items] == ["unknown"]
    finally:
        proxy.close()


def test_statement_answer_lost_before_commit(tenantd, pg):
    """In a cascade, the connection dies on a statement before the COMMIT
    was sent: nothing was written, and the answer says so."""
    proxy, d = start(tenantd, pg)
    try:
        s = expect(d.api("POST", "/v1/skills", {"name": "kept"}), 201)
        expect(d.api("POST", "/v1/persons", {"userName": "holder", "skills": [
            {"skill": s["dbid"], "level": 1}]}), 201)
        proxy.arm(b"DELETE FROM cfg_object")
        r = d.api("DELETE", f"/v1/skills/{s['dbid']}?cascade=true", timeout=15)
        assert proxy.dropped == 1, "the proxy never lost an answer"
        expect(r, 503, "Unavailable")
        assert "nothing was written" in r.json["message"], show(r)
        assert count(pg, "Skill", "kept") == 1
        expect(d.api("GET", f"/v1/skills/{s['dbid']}"), 200)
    finally:
        proxy.close()


def test_import_commit_answer_lost(tenantd, pg):
    """An import (on its own connection) whose COMMIT's answer is lost:
    200 with its counts, and every object is there once."""
    proxy, d = start(tenantd, pg)
    try:
        text = "".join(json.dumps({"type": "Skill", "object": {"name": f"imp-{i}"}})
                       + "\n" for i in range(3))
        proxy.arm(b"COMMIT", after=b"WITH cnt AS")
        c = ConfigClient(d.config_port, d.admin_token)
        r = c("POST", "/v1/import", text.encode(), timeout=30)
        assert proxy.dropped == 1, "the proxy never lost an answer"
        assert r.status == 200, show(r)
        assert r.json["created"] == 3 and r.json["updated"] == 0, show(r)
        for i in range(3):
            assert count(pg, "Skill", f"imp-{i}") == 1
        names = {o["name"] for o in expect(d.api("GET", "/v1/skills"), 200)["items"]}
        assert {"imp-0", "imp-1", "imp-2"} <= names
    finally:
        proxy.close()
