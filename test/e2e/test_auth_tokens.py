# SPDX-License-Identifier: Apache-2.0
"""The life of a token after POST /v1/auth/token (docs/config-api.md,
"Tokens"): POST /v1/auth/refresh gives a new token and ends the old one
for requests at once; POST /v1/auth/logout ends the token sent; the admin
ends one token by its id with DELETE /v1/auth/tokens/{id}.  Sessions opened
with a token go on through its refreshes and end when it is ended, as for
any revocation; so does a routing event feed."""

import http.client
import json
import time

import pytest

from evclient import Session, session_opens
from helpers import config_api_ready, free_port, wait_for
from test_routing import rt  # noqa: F401  (the routing fixture)


def daemon(tenantd, ttl=3600):
    port = free_port()
    d = tenantd({"workers": {"events": {"enabled": True,
                                        "listen": f"127.0.0.1:{port}"}}},
                config_worker={"token_ttl": ttl})
    config_api_ready(d)
    wait_for(lambda: session_opens(port, d.admin_token), 20,
             what="the events port to open a session")
    d.events_port = port
    return d


def person(d, name="tess", pw="pw-tess"):
    r = d.api("POST", "/v1/persons", {"userName": name, "password": pw})
    assert r.status == 201, r.text
    return r.json["dbid"]


def login(d, name="tess", pw="pw-tess"):
    r = d.api("POST", "/v1/auth/token", {"userName": name, "password": pw},
              token=None)
    assert r.status == 200, r.text
    assert len(r.json["tokenId"]) == 40 and r.json["tokenId"] != r.json["token"]
    return r.json


def whoami(d, token):
    return d.api("GET", "/v1/whoami", token=token).status


def refresh(d, token):
    return d.api("POST", "/v1/auth/refresh", token=token)


def session(d, token):
    s = Session(d.events_port)
    s.open(token, "tokens-test")
    return s


def ended(s, within=3.0):
    m = s.wait(lambda m: m.get("event") == "EventError", within, "EventError")
    assert m["code"] == "Unauthorized" and m["reason"] == "TokenRevoked", m
    with pytest.raises(EOFError):
        s.read(3)


def still_open(s):
    assert s.call("RequestPing")["event"] == "EventPong"


def test_refresh_gives_a_new_token_and_ends_the_old_one(tenantd, redis):
    d = daemon(tenantd)
    person(d)
    old = login(d)
    r = refresh(d, old["token"])
    assert r.status == 200, r.text
    new = r.json
    assert new["token"] != old["token"] and new["tokenId"] != old["tokenId"]
    assert new["expiresIn"] == 3600 and new["principal"]["name"] == "tess"
    assert whoami(d, new["token"]) == 200
    assert whoami(d, old["token"]) == 401
    # Once only: the old token cannot be refreshed again, nor opened with.
    assert refresh(d, old["token"]).status == 401
    s = Session(d.events_port)
    m = s.call("RequestOpen", token=old["token"], client="t")
    assert m["code"] == "Unauthorized", m
    s.close()
    # The admin token is configured, not issued.
    r = refresh(d, d.admin_token)
    assert r.status == 422, r.text
    assert d.api("POST", "/v1/auth/refresh", token=None).status == 401


def test_a_revoked_or_disabled_principal_cannot_refresh(tenantd, redis):
    d = daemon(tenantd)
    dbid = person(d)
    t = login(d)
    assert d.api("DELETE", f"/v1/auth/tokens/{t['tokenId']}").status == 204
    assert refresh(d, t["token"]).status == 401
    t = login(d)
    r = d.api("PATCH", f"/v1/persons/{dbid}", {"state": "disabled"})
    assert r.status == 200, r.text
    r = refresh(d, t["token"])
    assert r.status == 401 and "disabled" in r.json["message"], r.text


def test_an_expired_token_cannot_be_refreshed(tenantd, redis):
    d = daemon(tenantd, ttl=1)
    person(d)
    t = login(d)
    time.sleep(1.3)
    assert refresh(d, t["token"]).status == 401


def test_a_session_goes_on_through_refreshes_and_ends_with_the_last(tenantd, redis):
    d = daemon(tenantd)
    person(d)
    a = login(d)
    s = session(d, a["token"])
    b = refresh(d, a["token"]).json
    c = refresh(d, b["token"]).json
    # Another token of the same person ends: every session of the person
    # looks its token up again, and finds its line of refreshes alive.
    other = login(d)
    r = d.api("POST", "/v1/auth/logout", token=other["token"])
    assert r.status == 204, r.text
    time.sleep(0.5)
    still_open(s)
    assert whoami(d, c["token"]) == 200
    # The last of the line is revoked by its id: the session ends.
    assert d.api("DELETE", f"/v1/auth/tokens/{c['tokenId']}").status == 204
    ended(s)
    assert whoami(d, c["token"]) == 401


def test_logout_ends_the_token_and_its_sessions(tenantd, redis):
    d = daemon(tenantd)
    person(d)
    t = login(d)
    keep = login(d)
    s = session(d, t["token"])
    s2 = session(d, keep["token"])
    r = d.api("POST", "/v1/auth/logout", token=t["token"])
    assert r.status == 204, r.text
    ended(s)
    assert whoami(d, t["token"]) == 401
    # Only that token: the person's other one and its session go on.
    assert whoami(d, keep["token"]) == 200
    still_open(s2)
    assert d.api("POST", "/v1/auth/logout", token=t["token"]).status == 401
    assert d.api("POST", "/v1/auth/logout").status == 422     # the admin's
    assert d.api("GET", "/v1/auth/logout", token=keep["token"]).status == 405


def test_the_admin_revokes_one_token_by_its_id(tenantd, redis):
    d = daemon(tenantd)
    person(d)
    person(d, "ulla", "pw-ulla")
    t = login(d)
    u = login(d, "ulla", "pw-ulla")
    # Only the admin: a person may not end another's token, nor its own so.
    r = d.api("DELETE", f"/v1/auth/tokens/{t['tokenId']}", token=u["token"])
    assert r.status == 403, r.text
    r = d.api("DELETE", f"/v1/auth/tokens/{t['tokenId']}", token=t["token"])
    assert r.status == 403, r.text
    assert whoami(d, t["token"]) == 200
    # Bad ids; never the secret in the URL.
    for bad in ("x", t["token"], t["tokenId"].upper(), t["tokenId"] + "0"):
        r = d.api("DELETE", f"/v1/auth/tokens/{bad}")
        assert r.status == 400, (bad, r.text)
    r = d.api("GET", f"/v1/auth/tokens/{t['tokenId']}")
    assert r.status == 405
    s = session(d, t["token"])
    r = d.api("DELETE", f"/v1/auth/tokens/{t['tokenId']}")
    assert r.status == 204, r.text
    ended(s)
    assert whoami(d, t["token"]) == 401
    assert whoami(d, u["token"]) == 200
    r = d.api("DELETE", f"/v1/auth/tokens/{t['tokenId']}")
    assert r.status == 404, r.text


def test_a_routing_feed_ends_at_logout_and_survives_a_refresh(rt):
    c = rt.d.create
    reader = c("persons", {"userName": "reader", "password": "pw-reader-1"})
    c("access-groups", {"name": "readers", "members": [reader], "permissions": [
        {"collection": "dns", "rights": ["read"], "dbid": rt.vq1}]})
    tok = login(rt.d, "reader", "pw-reader-1")
    h = http.client.HTTPConnection("127.0.0.1", rt.port, timeout=20)
    h.request("GET", "/v1/events", headers={"Authorization": f"Bearer {tok['token']}"})
    r = h.getresponse()
    assert r.status == 200
    new = refresh(rt.d, tok["token"]).json
    time.sleep(5.5)     # past a recheck of the feeds' tokens (every 5 s)
    rt.queue()
    assert next_event(r)["type"] == "queued", "the feed goes on after a refresh"
    assert rt.d.api("POST", "/v1/auth/logout", token=new["token"]).status == 204
    t0 = time.monotonic()
    while r.fp.readline() not in (b"", b"0\r\n"):   # the last chunk
        pass
    assert time.monotonic() - t0 < 10
    h.close()


def next_event(r):
    while True:
        line = r.fp.readline()
        assert line, "the feed ended"
        if line.startswith(b"{"):
            return json.loads(line)


def test_a_change_stream_survives_a_refresh_and_ends_at_logout(tenantd, redis):
    d = daemon(tenantd)
    dbid = person(d)
    r = d.api("POST", "/v1/access-groups", {"name": "see-self", "members": [dbid],
              "permissions": [{"collection": "switches", "rights": ["read"]}]})
    assert r.status == 201, r.text
    t = login(d)
    c = http.client.HTTPConnection("127.0.0.1", d.config_port, timeout=20)
    c.request("GET", "/v1/changes?since=0", headers={
        "Authorization": f"Bearer {t['token']}", "Accept": "application/x-ndjson"})
    r = c.getresponse()
    assert r.status == 200
    new = refresh(d, t["token"]).json
    time.sleep(5.5)     # past a recheck of the streams' tokens (every 5 s)
    d.create("switches", {"name": "sw-x", "type": "SIP"})
    assert next_event(r)["type"] == "Switch", "the stream goes on after a refresh"
    assert d.api("POST", "/v1/auth/logout", token=new["token"]).status == 204
    t0 = time.monotonic()
    while r.fp.readline() not in (b"", b"0\r\n"):   # the last chunk
        pass
    assert time.monotonic() - t0 < 10
    c.close()
