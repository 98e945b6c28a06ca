# SPDX-License-Identifier: Apache-2.0
"""POST /v1/import: NDJSON lines {"type", "object"}, all or nothing;
objects whose natural key exists are replaced, others created; negative
placeholder dbids let new objects refer to each other."""

import json
import threading
import time

from helpers import ConfigClient


def expect(r, status, code=None):
    assert r.status == status, f"expected {status} {code or ''}, got " \
        f"{r.status} {r.text[:500]}"
    if code is not None:
        assert r.json.get("error") == code, r.text
    return r.json


def ndjson(*lines):
    return "".join(json.dumps(x) + "\n" for x in lines)


def post_import(d, text, token=None):
    c = ConfigClient(d.config_port, d.admin_token)
    kw = {} if token is None else {"token": token}
    return c("POST", "/v1/import", text.encode(), timeout=60, **kw)


def revision(api):
    return expect(api("GET", "/v1/changes?since=0&limit=1"), 200)["revision"]


def test_import_creates_with_placeholders(config_api):
    d = config_api
    api = d.api
    rev0 = revision(api)
    text = ndjson(
        {"type": "Switch", "object": {"dbid": -1, "name": "sw"}},
        {"type": "Skill", "object": {"dbid": -2, "name": "Sales"}},
        {"type": "DN", "object": {"number": "5001", "type": "Extension",
                                  "switch": -1}},
        {"type": "Person", "object": {"userName": "imp", "password": "pw",
                                      "skills": [{"skill": -2, "level": 4}]}})
    j = expect(post_import(d, text + "\n  \n"), 200)
    assert j == {"created": 4, "updated": 0, "revision": rev0 + 4}, j
    sw = expect(api("GET", "/v1/switches?name=sw"), 200)["items"][0]
    sk = expect(api("GET", "/v1/skills?name=Sales"), 200)["items"][0]
    dn = expect(api("GET", "/v1/dns"), 200)["items"][0]
    p = expect(api("GET", "/v1/persons?userName=imp"), 200)["items"][0]
    assert dn["switch"] == sw["dbid"]
    assert p["skills"] == [{"skill": sk["dbid"], "level": 4}]
    assert "password" not in p
    # one revision per object, in line order
    ch = expect(api("GET", f"/v1/changes?since={rev0}"), 200)["changes"]
    assert [(c["op"], c["type"]) for c in ch] == [
        ("created", "Switch"), ("created", "Skill"), ("created", "DN"),
        ("created", "Person")]
    # the password was hashed and works
    r = api("POST", "/v1/auth/token", {"userName": "imp", "password": "pw"},
            token=None)
    expect(r, 200)


def test_import_updates_by_natural_key(config_api):
    d = config_api
    api = d.api
    p = expect(api("POST", "/v1/persons", {"userName": "u1",
               "firstName": "Old", "password": "keep"}), 201)
    j = expect(post_import(d, ndjson(
        {"type": "Person", "object": {"userName": "u1", "firstName": "New"}},
        {"type": "Person", "object": {"userName": "u2"}})), 200)
    assert j["created"] == 1 and j["updated"] == 1, j
    q = expect(api("GET", f"/v1/persons/{p['dbid']}"), 200)
    assert q["firstName"] == "New" and q["version"] == 2
    # a replace keeps the secret it was not given
    expect(api("POST", "/v1/auth/token", {"userName": "u1",
           "password": "keep"}, token=None), 200)


def test_import_is_all_or_nothing(config_api):
    d = config_api
    api = d.api
    rev0 = revision(api)
    text = ndjson(
        {"type": "Skill", "object": {"name": "ok1"}},
        {"type": "Person", "object": {"userName": "bad",
                                      "skills": [{"skill": 999999, "level": 1}]}},
        {"type": "Skill", "object": {"name": "ok1"}},
        {"type": "Nope", "object": {}}) + "garbage\n" + ndjson(
        {"type": "Person", "object": {"userName": "x", "bogus": 1}},
        {"type": "Tenant", "object": {"name": "t"}})
    j = expect(post_import(d, text), 422, "ImportRejected")
    got = {(e["line"], e["error"]) for e in j["errors"]}
    assert got == {(2, "BadReference"), (3, "Duplicate"), (4, "BadValue"),
                   (5, "BadJson"), (6, "UnknownField"), (7, "BadValue")}, j
    assert j["count"] == 6
    assert revision(api) == rev0, "a rejected import wrote something"
    assert expect(api("GET", "/v1/skills?name=ok1"), 200)["items"] == []
    # an empty import and a placeholder declared twice are refused too
    expect(post_import(d, "\n"), 422)
    j = expect(post_import(d, ndjson(
        {"type": "Skill", "object": {"dbid": -1, "name": "a"}},
        {"type": "Skill", "object": {"dbid": -1, "name": "b"}})), 422)
    assert j["errors"][0]["line"] == 2 and j["errors"][0]["error"] == "Duplicate"


def test_import_permissions(config_api):
    d = config_api
    api = d.api
    u = expect(api("POST", "/v1/persons", {"userName": "limited",
               "password": "pw"}), 201)
    expect(api("POST", "/v1/access-groups", {"name": "skills only",
           "members": [u["dbid"]], "permissions": [
               {"collection": "skills", "rights": ["read", "create"]}]}), 201)
    t = expect(api("POST", "/v1/auth/token", {"userName": "limited",
               "password": "pw"}, token=None), 200)["token"]
    expect(post_import(d, ndjson({"type": "Skill", "object": {"name": "s"}}),
                       token=t), 200)
    j = expect(post_import(d, ndjson(
        {"type": "Skill", "object": {"name": "s2"}},
        {"type": "Person", "object": {"userName": "p"}}), token=t), 422)
    assert [(e["line"], e["error"]) for e in j["errors"]] == [(2, "Forbidden")]


def test_import_large_does_not_stall_others(config_api):
    """20,000 persons: quick, and other clients are served meanwhile."""
    d = config_api
    api = d.api
    text = ndjson(*({"type": "Person", "object": {"userName": f"bulk{i}",
                     "firstName": f"F{i}", "isAgent": True}}
                    for i in range(20000)))
    worst = [0.0]
    done = threading.Event()

    def reader():
        while not done.is_set():
            t = time.monotonic()
            expect(api("GET", "/v1/skills"), 200)
            worst[0] = max(worst[0], time.monotonic() - t)
            time.sleep(0.02)
    th = threading.Thread(target=reader)
    th.start()
    t0 = time.monotonic()
    try:
        j = expect(post_import(d, text), 200)
    finally:
        done.set()
        th.join()
    took = time.monotonic() - t0
    assert j["created"] == 20000
    assert took < 30, f"20,000 persons took {took:.1f} s"
    assert worst[0] < 1.0, f"a GET waited {worst[0]:.2f} s during the import"
    n = expect(api("GET", "/v1/persons?isAgent=true&limit=10000"), 200)
    assert len(n["items"]) == 10000 and "next" in n
    print(f"\n20,000 persons imported in {took:.2f} s; slowest GET meanwhile "
          f"{worst[0] * 1000:.0f} ms")


def test_other_bodies_keep_max_body(tenantd):
    from helpers import config_api_ready
    d = config_api_ready(tenantd(config_worker={"max_body": 1024}))
    big = {"name": "x" * 2000}
    expect(d.api("POST", "/v1/skills", big), 413)
    text = ndjson(*({"type": "Skill", "object": {"name": f"s{i}"}}
                    for i in range(100)))
    assert len(text) > 1024
    expect(post_import(d, text), 200)
