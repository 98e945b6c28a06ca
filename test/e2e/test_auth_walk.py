# SPDX-License-Identifier: Apache-2.0
"""Every port refuses every request without a valid token (issue 14).

The routes are derived from the sources, not typed here: the OpenAPI files
(docs/openapi/*.yaml) cross-checked against the C (the paths the config
worker compares, its collections in common/schema.c, the route tables at
the top of workers/routing/http.c and workers/outbound/http.c, the paths
the metrics worker serves); the session request types are every
"RequestX" string in the workers and the session module.  Each route is
walked with every method, plus paths no table has, with no token, malformed
ones, an expired token and a revoked one: all 401.  Each session port
(events, stats, outbound) gets every request type before RequestOpen
(NotOpened) and behind a RequestOpen with each bad token (Unauthorized,
then the connection closes, nothing served).  Nothing changed afterwards.

What is public is listed here, by design: a new public route, or a new
route on the metrics port, fails the test until it is listed."""

import http.client
import json
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import redis as redis_py
import yaml

from evclient import Session
from helpers import free_port, merge, wait_for

REPO = Path(__file__).resolve().parents[2]
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HTTP_PORTS = ("config", "routing", "outbound", "events", "stats")
SESSION_PORTS = ("events", "stats", "outbound")

# Public by design: (port, method, path).  HEAD is served as GET.
PUBLIC = {
    ("config", "POST", "/v1/auth/token"),
    ("routing", "GET", "/healthz"),
    ("outbound", "GET", "/healthz"),
    ("events", "GET", "/healthz"),
    ("stats", "GET", "/healthz"),
    ("metrics", "GET", "/metrics"),
    ("metrics", "GET", "/healthz"),
    ("metrics", "GET", "/readyz"),
    ("metrics", "GET", "/tenant/health"),
}
# Paths in no table: the gate must stand before the routing.
STRAY = ("/v1/nosuch", "/v1/nosuch/1/2/3", "/v1/auth", "/v1/auth/tokens",
         "/nosuch", "/v2/persons", "/v1/persons/1/extra")


def norm(path):
    """/a/{dbid}/b -> /a/{}/b"""
    return re.sub(r"\{[^}]*\}", "{}", path)


# ---- routes from the sources ----

def openapi(name):
    """{(METHOD, path)}, and the public ones (security: [])."""
    doc = yaml.safe_load((REPO / "docs" / "openapi" / f"{name}.yaml").read_text())
    routes, public = set(), set()
    for path, ops in doc["paths"].items():
        for m, op in ops.items():
            if m.upper() not in METHODS:
                continue
            routes.add((m.upper(), path))
            if op.get("security", doc.get("security")) == []:
                public.add((m.upper(), path))
    return routes, public


def config_c_paths():
    """The fixed paths the config worker compares, its token path, and its
    collections."""
    paths = set()
    for f in (REPO / "workers" / "config").glob("*.c"):
        text = f.read_text()
        paths |= set(re.findall(r'http_path_is\(r, "(/[^"]*)"\)', text))
        for p in re.findall(r'#define\s+TOKENS_PATH\s+"(/[^"]*)"', text):
            paths.add(p + "{}")
    schema = (REPO / "common" / "schema.c").read_text()
    colls = set(re.findall(r'\[CFG_\w+\] = \{ CFG_\w+, "\w+", "([a-z-]+)"', schema))
    return paths, colls


def c_route_table(rel):
    """The route table at the top of an http.c: {(METHOD, path)}."""
    text = (REPO / rel).read_text()
    head = re.search(r"/\*\n(.*?)\*/", text, re.S).group(1)
    routes, cur = set(), None
    for line in head.splitlines():
        body = line.lstrip(" *\t")
        m = re.match(r"(/\S+)\s+(.*)", body)
        if m:
            cur = norm(m.group(1).replace("{connid|max}", "{connid}"))
            rest = m.group(2)
        elif cur is not None and body and body.split()[0].rstrip(",") in METHODS:
            rest = body
        else:
            cur = None
            continue
        for w in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE)\b", rest):
            routes.add((w, cur))
    return routes


def metrics_c_paths():
    text = (REPO / "workers" / "metrics" / "metrics.c").read_text()
    return set(re.findall(r'http_path_is\(r, "(/[^"]*)"\)', text))


def request_types():
    """Every request name the workers and the session module know."""
    names = set()
    files = list((REPO / "workers").glob("*/*.c")) + [REPO / "common" / "sess.c"]
    for f in files:
        names |= set(re.findall(r'"(Request[A-Z][A-Za-z]+)"', f.read_text()))
    return names


def test_route_tables_agree_with_the_openapi_files():
    routes, public = openapi("config")
    fixed, colls = config_c_paths()
    # Every path is a fixed one of the C, or a collection's.
    fixed = {norm(p) for p in fixed}
    documented = set()
    for _, p in routes:
        m = re.fullmatch(r"/v1/([a-z-]+)(/\{dbid\})?", p)
        if norm(p) in fixed:
            documented.add(norm(p))
        elif "{collection}" not in p:
            assert m and m.group(1) in colls, f"{p}: not a route of the C"
    assert documented == fixed, fixed - documented
    assert {("config", m, p) for m, p in public} == \
        {x for x in PUBLIC if x[0] == "config"}
    for port, rel in (("routing", "workers/routing/http.c"),
                      ("outbound", "workers/outbound/http.c")):
        routes, public = openapi(port)
        table = c_route_table(rel)
        doc = {(m, norm(p)) for m, p in routes if (m, p) not in public}
        assert doc == table, (port, doc ^ table)
        assert {(port, m, p) for m, p in public} <= PUBLIC
    assert {("metrics", "GET", p) for p in metrics_c_paths()} == \
        {x for x in PUBLIC if x[0] == "metrics"}
    assert len(request_types()) > 30


# ---- the daemon and the tokens ----

class Walk:
    def __init__(self, tenantd):
        self.port = {w: free_port() for w in HTTP_PORTS}
        workers = {w: {"enabled": True, "listen": f"127.0.0.1:{p}"}
                   for w, p in self.port.items() if w != "config"}
        # throttling off: the walk makes hundreds of failed opens
        sec = {"login_delay_after": 0, "login_refuse_after": 0,
               "login_address_delay_after": 0, "login_address_refuse_after": 0}
        self.d = tenantd({"workers": workers, "kafka": {"brokers": "mock"},
                          "security": sec},
                         config_worker={"token_ttl": 1,
                                        "listen": f"127.0.0.1:{self.port['config']}"})
        self.port["metrics"] = self.d.metrics_port
        from helpers import config_api_ready
        config_api_ready(self.d)
        for w in SESSION_PORTS + ("routing",):
            wait_for(lambda w=w: self.status(w, "GET", "/healthz", None) == 200,
                     30, what=f"the {w} port")

    def status(self, port, method, path, auth, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port[port], timeout=10)
        h = {} if auth is None else {"Authorization": auth}
        if body is not None:
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            r.read()
            self.last = r
            return r.status
        except OSError:
            return None
        finally:
            c.close()

    def login(self, name):
        r = self.d.api("POST", "/v1/auth/token", {"userName": name,
                                                  "password": "pw-walk"}, token=None)
        assert r.status == 200, r.text
        return r.json


def fill(path, ids):
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "1"), path)


def every_http_route(ids, colls):
    """(port, method, path) for every route, method and stray path."""
    out = set()
    routes, _ = openapi("config")
    paths = {p for _, p in routes if "{collection}" not in p}
    for c in colls:
        paths |= {f"/v1/{c}", f"/v1/{c}/{{dbid}}"}
    paths |= set(STRAY)
    for p in paths:
        for m in METHODS:
            out.add(("config", m, fill(p, ids)))
    for port in ("routing", "outbound"):
        routes, _ = openapi(port)
        for p in {p for _, p in routes} | set(STRAY):
            for m in METHODS:
                out.add((port, m, fill(p, ids)))
    for port in ("events", "stats"):
        for p in ("/healthz",) + STRAY:
            for m in METHODS:
                out.add((port, m, p))
    return out


def public(port, method, path):
    m = "GET" if method == "HEAD" else method
    return (port, m, path) in PUBLIC


def snapshot(d, redis):
    r = d.api("GET", "/v1/export")
    assert r.status == 200, r.text
    keys = {k.decode() for k in redis_py.Redis(port=redis.port).keys("*")
            if b":login:" not in k}
    # what the walked routes would write: tokens, routing's interactions
    # (voice and stats keys move by themselves)
    mine = {k for k in keys if ":token" in k or ":routing:" in k}
    return r.text, mine


def test_every_port_refuses_every_request_without_a_valid_token(tenantd, redis):
    w = Walk(tenantd)
    d = w.d
    who = d.create("persons", {"userName": "walker", "password": "pw-walk"})
    sw = d.create("switches", {"name": "sw-walk", "type": "SIP"})
    d.create("dns", {"number": "5001", "type": "Extension", "switch": sw})
    # A revoked token, by its id, and an expired one (token_ttl 1 s).
    revoked = w.login("walker")
    r = d.api("DELETE", f"/v1/auth/tokens/{revoked['tokenId']}")
    assert r.status == 204, r.text
    expired = w.login("walker")["token"]
    time.sleep(1.3)
    # A token that lives through the walk, whose id the walk tries to end.
    off = d.log_size()
    d.write_conf(merge(d.conf, {"workers": {"config": {"token_ttl": 3600}}}))
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload complete", timeout=10, since=off)
    live = w.login("walker")
    assert d.api("GET", "/v1/whoami", token=expired).status == 401
    kinds = {
        "none": None,
        "basic": "Basic d2Fsa2VyOnB3LXdhbGs=",
        "empty": "Bearer ",
        "malformed": "Bearer " + "zz" * 32,
        "short": "Bearer abc",
        "expired": "Bearer " + expired,
        "revoked": "Bearer " + revoked["token"],
    }
    _, colls = config_c_paths()
    ids = {"dbid": str(who), "tokenId": live["tokenId"], "id": "ix-1",
           "action": "accept", "number": "vq1", "record_id": "1",
           "value": "5551234", "connid": "max", "vq": "vq1"}
    before = snapshot(d, redis)
    routes = every_http_route(ids, colls)
    assert len(routes) > 300
    # bodies that would write something if a route let them through
    bodies = {"outbound": json.dumps({"phone": "5551234"}),
              "routing": json.dumps({"virtualQueue": "vq1"})}
    plain = json.dumps({"userName": "x-walk", "password": "y", "name": "x-walk"})
    bad = []
    walked = 0
    for port, method, path in sorted(routes):
        if public(port, method, path):
            continue
        for kind, auth in kinds.items():
            st = w.status(port, method, path, auth,
                          bodies.get(port, plain)
                          if method in ("POST", "PUT", "PATCH") else None)
            walked += 1
            if port == "config" and not path.startswith("/v1/"):
                # Nothing is served outside /v1/ there: 404 before any
                # token is looked at (common to every method and token).
                if st != 404:
                    bad.append((port, method, path, kind, st))
                continue
            if st != 401 or "Bearer" not in (w.last.getheader("WWW-Authenticate") or ""):
                bad.append((port, method, path, kind, st))
    assert not bad, f"{len(bad)} of {walked} not refused with 401: {bad[:20]}"
    # The public routes are served without a token.
    for port, method, path in PUBLIC:
        st = w.status(port, method, path, None)
        assert st is not None and st != 401, (port, path, st)
    # The metrics port has no route that wants a token: anything else is 404.
    for p in STRAY:
        assert w.status("metrics", "GET", p, None) == 404, p
    # The session ports.
    for port in SESSION_PORTS:
        walk_session_port(w.port[port], port, kinds)
    # Nothing changed; the live token still works (its revocation was walked).
    assert snapshot(d, redis) == before
    # the DNC list (PostgreSQL) did not get the walked POST /v1/dnc
    c = http.client.HTTPConnection("127.0.0.1", w.port["outbound"], timeout=10)
    c.request("GET", "/v1/dnc/5551234",
              headers={"Authorization": f"Bearer {d.admin_token}"})
    assert c.getresponse().status == 404
    c.close()
    r = d.api("GET", "/v1/whoami", token=live["token"])
    assert r.status == 200, r.text


def walk_session_port(port, name, kinds):
    types = sorted(request_types() - {"RequestOpen"}) + ["RequestNoSuch"]
    fields = {"dn": "5001", "connId": "00a1b2c3d4e5f601", "destination": "5002",
              "statistic": "x", "campaignGroup": 1, "agentId": "7001"}
    # Nothing before RequestOpen: each answered NotOpened.
    s = Session(port)
    try:
        refs = {}
        for t in types:
            refs[s.send(t, **fields)] = t
        for _ in range(len(refs)):
            m = s.read(5)
            assert m is not None, (name, "no answer")
            assert m["event"] == "EventError" and m["code"] == "NotOpened", (name, m)
            refs.pop(m["ref"])
        assert not refs
        # RequestOpen without a token: BadRequest, the link stays, unopened.
        m = s.call("RequestOpen", client="walk")
        assert m["event"] == "EventError" and m["code"] == "BadRequest", (name, m)
        m = s.call("RequestPing")
        assert m["code"] == "NotOpened", (name, m)
    finally:
        s.close()
    # Each bad token: Unauthorized, the connection closes, nothing served
    # of what came behind the open.
    for kind, auth in kinds.items():
        if auth is None or not auth.startswith("Bearer "):
            token = auth or "-"
        else:
            token = auth[7:] or "-"
        s = Session(port)
        try:
            lines = [json.dumps({"request": "RequestOpen", "ref": 1,
                                 "token": token, "client": "walk"})]
            for i, t in enumerate(types):
                lines.append(json.dumps(dict({"request": t, "ref": 100 + i},
                                             **fields)))
            s.send_raw(("\n".join(lines) + "\n").encode())
            got = []
            with pytest.raises(EOFError):
                while True:
                    m = s.read(5)
                    assert m is not None, (name, kind, "not closed", got)
                    got.append(m)
            assert got and got[0]["event"] == "EventError" and \
                got[0]["code"] == "Unauthorized" and got[0]["ref"] == 1, \
                (name, kind, got)
            assert all(m.get("event") == "EventError" for m in got), (name, kind, got)
        finally:
            s.close()
