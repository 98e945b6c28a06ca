# SPDX-License-Identifier: Apache-2.0
"""The change log as a stream: GET /v1/changes with Accept:
application/x-ndjson answers one JSON change per line, as they commit,
filtered by the principal's rights, and 410 when it starts too far back."""

import http.client
import json
import threading
import time

from helpers import wait_for


def open_stream(d, since, token=None):
    c = http.client.HTTPConnection("127.0.0.1", d.config_port, timeout=10)
    c.request("GET", f"/v1/changes?since={since}", headers={
        "Authorization": f"Bearer {token or d.admin_token}",
        "Accept": "application/x-ndjson"})
    r = c.getresponse()
    return c, r


def read_lines(r, n, timeout=5.0):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        line = r.readline()
        if not line:
            break
        out.append(json.loads(line))
    return out


def expect(r, status):
    assert r.status == status, f"{r.status} {r.text[:300]}"
    return r.json


def revision(api):
    return expect(api("GET", "/v1/changes?since=0&limit=1"), 200)["revision"]


def test_stream_history_then_live(config_api):
    d = config_api
    api = d.api
    s1 = expect(api("POST", "/v1/skills", {"name": "before"}), 201)
    c, r = open_stream(d, 0)
    try:
        assert r.status == 200
        assert r.getheader("Content-Type") == "application/x-ndjson"
        assert r.getheader("Transfer-Encoding") == "chunked"
        hist = read_lines(r, 2)
        assert [(x["op"], x["type"]) for x in hist] == [
            ("created", "Tenant"), ("created", "Skill")], hist
        assert hist[1]["object"]["dbid"] == s1["dbid"]
        # live: each write arrives, in revision order, within a second
        t0 = time.monotonic()
        s2 = expect(api("POST", "/v1/skills", {"name": "live"}), 201)
        expect(api("PATCH", f"/v1/skills/{s2['dbid']}", {"state": "disabled"}),
               200)
        expect(api("DELETE", f"/v1/skills/{s2['dbid']}"), 204)
        live = read_lines(r, 3)
        took = time.monotonic() - t0
        assert [x["op"] for x in live] == ["created", "updated", "deleted"]
        revs = [x["revision"] for x in hist + live]
        assert revs == list(range(revs[0], revs[0] + 5)), revs
        assert "object" not in live[2]
        assert took < 2, f"three changes reached the stream in {took:.2f} s"
    finally:
        c.close()
    # the worker serves on after the client went away
    time.sleep(0.2)
    expect(api("POST", "/v1/skills", {"name": "after"}), 201)
    expect(api("GET", "/v1/skills"), 200)


def test_stream_filtered_by_rights(config_api):
    d = config_api
    api = d.api
    u = expect(api("POST", "/v1/persons", {"userName": "s", "password": "p"}),
               201)
    expect(api("POST", "/v1/access-groups", {"name": "g", "members": [u["dbid"]],
           "permissions": [{"collection": "skills", "rights": ["read"]}]}), 201)
    tok = expect(api("POST", "/v1/auth/token", {"userName": "s",
                 "password": "p"}, token=None), 200)["token"]
    c, r = open_stream(d, revision(api), token=tok)
    try:
        assert r.status == 200
        expect(api("POST", "/v1/persons", {"userName": "hidden"}), 201)
        expect(api("POST", "/v1/skills", {"name": "shown"}), 201)
        got = read_lines(r, 1)
        assert [(x["type"], x["object"]["name"]) for x in got] == \
            [("Skill", "shown")], got
    finally:
        c.close()


def test_stream_gone_and_refused(config_api, pg):
    d = config_api
    api = d.api
    for i in range(4):
        expect(api("POST", "/v1/skills", {"name": f"g{i}"}), 201)
    pg.psql("DELETE FROM cfg_change WHERE revision <= 3", db="t100")
    c, r = open_stream(d, 0)
    try:
        assert r.status == 410
        assert json.loads(r.read())["oldest"] == 4
    finally:
        c.close()
    c, r = open_stream(d, 0, token="ab" * 32)
    try:
        assert r.status == 401
    finally:
        c.close()


def test_many_streams_and_a_slow_one(config_api):
    """Ten followers get every change; one that never reads does not hold
    the others up."""
    d = config_api
    api = d.api
    rev = revision(api)
    conns = [open_stream(d, rev) for _ in range(10)]
    slow_c, slow_r = open_stream(d, rev)   # never read
    got = [[] for _ in conns]
    errs = []

    def follow(i, r):
        try:
            got[i] = read_lines(r, 50, timeout=20)
        except Exception as e:
            errs.append(repr(e))
    ths = [threading.Thread(target=follow, args=(i, r))
           for i, (_, r) in enumerate(conns)]
    for t in ths:
        t.start()
    for i in range(50):
        expect(api("POST", "/v1/skills", {"name": f"m{i}",
               "userProperties": {"s": {"pad": "x" * 2000}}}), 201)
    for t in ths:
        t.join(25)
    assert not errs, errs
    for g in got:
        assert [x["revision"] for x in g] == list(range(rev + 1, rev + 51))
    for c, _ in conns:
        c.close()
    slow_c.close()
    wait_for(lambda: api("GET", "/v1/skills?limit=1").status == 200, 5)
