# SPDX-License-Identifier: Apache-2.0
"""The config worker's HTTP API (issue 3), through its port only, against the
real PostgreSQL and Redis of the fixtures: auth, CRUD of every type,
validation and integrity errors, optimistic concurrency, write-only fields,
SQL metacharacters, filters and paging over 10,000 objects, and the change
log (order, long poll, list-then-watch, 410 on expired history)."""

import os
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import config_api_ready, port_open, wait_for

COLLECTIONS = [
    "tenants", "persons", "agent-logins", "switches", "dns", "places", "skills",
    "agent-groups", "place-groups", "dn-groups", "applications", "transactions",
    "access-groups", "folders", "time-zones", "campaigns", "campaign-groups",
    "calling-lists", "treatments", "formats", "fields",
]
TYPE_NAMES = {
    "tenants": "Tenant", "persons": "Person", "agent-logins": "AgentLogin",
    "switches": "Switch", "dns": "DN", "places": "Place", "skills": "Skill",
    "agent-groups": "AgentGroup", "place-groups": "PlaceGroup",
    "dn-groups": "DNGroup", "applications": "Application",
    "transactions": "Transaction", "access-groups": "AccessGroup",
    "folders": "Folder", "time-zones": "TimeZone", "campaigns": "Campaign",
    "campaign-groups": "CampaignGroup", "calling-lists": "CallingList",
    "treatments": "Treatment", "formats": "Format", "fields": "Field",
}
WRITE_ONLY = {"persons": "password", "applications": "secret"}


# ---------------------------------------------------------------- helpers

def show(r):
    return f"{r.status} {r.headers} {r.text[:600]}"


def expect(r, status, code=None, field=None):
    """Assert the answer's status and, for errors, its JSON error body."""
    assert r.status == status, f"expected {status} {code or ''}, got {show(r)}"
    if code is not None:
        assert isinstance(r.json, dict), f"error body is not JSON: {show(r)}"
        assert r.json.get("error") == code, f"expected error {code}: {show(r)}"
        assert isinstance(r.json.get("message"), str) and r.json["message"], show(r)
    if field is not None:
        assert r.json.get("field") == field, f"expected field {field!r}: {show(r)}"
    return r.json


def create(api, coll, body):
    r = api("POST", f"/v1/{coll}", body)
    return expect(r, 201)


def revision(api):
    r = api("GET", "/v1/changes?since=0&limit=1")
    return expect(r, 200)["revision"]


def changes(api, since, limit=1000):
    """Every change after since, following pages; (latest, [changes])."""
    out = []
    while True:
        r = api("GET", f"/v1/changes?since={since}&limit={limit}")
        j = expect(r, 200)
        out += j["changes"]
        if not j["changes"] or j["changes"][-1]["revision"] >= j["revision"]:
            return j["revision"], out
        since = j["changes"][-1]["revision"]


def assert_unchanged(api, rev):
    """Nothing was written since revision rev."""
    now, ch = changes(api, rev)
    assert now == rev and ch == [], f"a refused request changed something: {ch}"


def list_all(api, coll, query="", limit=1000):
    """Every item of a (filtered) list, following "next"; checks the paging."""
    items, after, pages = [], None, 0
    while True:
        q = [query] if query else []
        q.append(f"limit={limit}")
        if after is not None:
            q.append(f"after={after}")
        r = api("GET", f"/v1/{coll}?" + "&".join(q))
        j = expect(r, 200)
        assert isinstance(j.get("revision"), int), show(r)
        assert len(j["items"]) <= limit
        items += j["items"]
        pages += 1
        assert pages < 100000
        if "next" not in j:
            return items
        assert j["items"], f"empty page with a next cursor: {show(r)}"
        assert j["next"] == j["items"][-1]["dbid"], show(r)
        after = j["next"]


def q(v):
    return urllib.parse.quote(str(v), safe="")


class World:
    """One object of every type the samples refer to."""

    def __init__(self, api):
        self.api = api
        c = lambda coll, body: create(api, coll, body)["dbid"]  # noqa: E731
        self.folder = c("folders", {"name": "root"})
        self.tz = c("time-zones", {"name": "Paris", "tzName": "Europe/Paris"})
        self.switch = c("switches", {"name": "sw-main", "type": "SIP"})
        self.switch2 = c("switches", {"name": "sw-other"})
        self.skill = c("skills", {"name": "Sales"})
        self.dn = c("dns", {"number": "5001", "type": "Extension", "switch": self.switch})
        self.login = c("agent-logins", {"loginCode": "7001", "switch": self.switch})
        self.place = c("places", {"name": "Place 1", "dns": [self.dn]})
        self.person = c("persons", {"userName": "base.agent", "isAgent": True})
        self.agroup = c("agent-groups", {"name": "Base group", "members": [self.person]})
        self.app = c("applications", {"name": "base-app", "type": "ThirdPartyServer"})
        self.field = c("fields", {"name": "phone", "dataType": "varchar", "length": 32})
        self.format = c("formats", {"name": "Base format", "fields": [self.field]})
        self.treatment = c("treatments", {"name": "Busy retry", "callResult": "Busy",
                                          "action": "RetryIn", "interval": 300})
        self.clist = c("calling-lists", {"name": "Base list", "format": self.format,
                                         "tableName": "base_list"})
        self.campaign = c("campaigns", {"name": "Base campaign"})


def sample(coll, w, t):
    """A valid creation body of collection coll; t makes it unique."""
    return {
        "persons": {"userName": f"user{t}", "firstName": "Ann", "lastName": "Lee",
                    "employeeId": f"E{t}", "emailAddress": f"ann{t}@example.com",
                    "isAgent": True, "password": f"pw-{t}-secret",
                    "skills": [{"skill": w.skill, "level": 5}],
                    "agentLogins": [{"agentLogin": w.login}], "place": w.place,
                    "folder": w.folder, "userProperties": {"sec": {"k": "v", "n": 3}}},
        "agent-logins": {"loginCode": f"8{t}", "switch": w.switch},
        "switches": {"name": f"switch {t}", "type": "SIP"},
        "dns": {"number": f"6{t}", "type": "ACDQueue", "switch": w.switch,
                "association": "q"},
        "places": {"name": f"place {t}", "dns": [w.dn]},
        "skills": {"name": f"skill {t}"},
        "agent-groups": {"name": f"group {t}", "members": [w.person],
                         "supervisors": [w.person], "skillExpression": "Sales > 5"},
        "place-groups": {"name": f"pgroup {t}", "members": [w.place]},
        "dn-groups": {"name": f"dgroup {t}", "members": [w.dn]},
        "applications": {"name": f"app {t}", "type": "ThirdPartyServer",
                         "options": {"log": {"verbose": "all", "segment": 100}},
                         "secret": f"app-secret-{t}"},
        "transactions": {"name": f"tx {t}", "type": "BusinessAttribute", "alias": "a",
                         "description": "line 1\nline 2", "options": {"s": {"k": "v"}}},
        "access-groups": {"name": f"ag {t}", "members": [w.person],
                          "applications": [w.app],
                          "permissions": [{"collection": "persons",
                                           "rights": ["read", "update"]},
                                          {"collection": "skills", "rights": ["read"],
                                           "dbid": w.skill}]},
        "folders": {"name": f"folder {t}", "parent": w.folder},
        "time-zones": {"name": f"tz {t}", "tzName": "America/New_York"},
        "campaigns": {"name": f"campaign {t}",
                      "callingLists": [{"callingList": w.clist, "share": 50}],
                      "description": "d"},
        "campaign-groups": {"name": f"cg {t}", "campaign": w.campaign,
                            "group": w.agroup, "dialMode": "Predictive",
                            "optimizeBy": "BusyFactor", "origDN": w.dn,
                            "callerId": "+15551234"},
        "calling-lists": {"name": f"list {t}", "format": w.format,
                          "tableName": f"list_{t}", "timeFrom": 32400,
                          "timeUntil": 64800, "treatments": [w.treatment],
                          "timeZone": w.tz, "maxAttempts": 3},
        "treatments": {"name": f"treat {t}", "callResult": "NoAnswer",
                       "action": "RetryIn", "interval": 600, "attempts": 3},
        "formats": {"name": f"format {t}", "fields": [w.field], "description": "f"},
        "fields": {"name": f"field_{t}", "dataType": "varchar", "length": 64,
                   "description": "x"},
    }[coll]


def assert_subset(sent, got, where):
    for k, v in sent.items():
        assert k in got, f"{where}: field {k} missing from {got}"
        if isinstance(v, list) and v and isinstance(v[0], dict):
            assert len(got[k]) == len(v), f"{where}: {k}: {got[k]} != {v}"
            for a, b in zip(v, got[k]):
                assert_subset(a, b, f"{where}.{k}")
        else:
            assert got[k] == v, f"{where}: {k}: sent {v!r}, got {got[k]!r}"


# ---------------------------------------------------------------- auth

def test_auth(config_api):
    d = config_api
    tok = d.admin_token
    rev = revision(d.api)
    paths = [("GET", "/v1/skills", None), ("GET", "/v1/skills/1", None),
             ("POST", "/v1/skills", {"name": "x"}), ("GET", "/v1/changes?since=0", None),
             ("PATCH", "/v1/skills/1", {"name": "y"}), ("DELETE", "/v1/skills/1", None),
             ("GET", "/v1/no-such-collection", None)]
    bad = [None, "", "wrong", tok + "x", tok[:-1], tok.upper(), " " + tok]
    for method, path, body in paths:
        for t in bad:
            r = d.api(method, path, body, token=t)
            expect(r, 401, "Unauthorized")
            www = r.headers.get("www-authenticate", "")
            assert www.lower().startswith("bearer"), \
                f"401 without a Bearer WWW-Authenticate: {show(r)}"
        for h in ({"Authorization": f"Basic {tok}"}, {"Authorization": tok}):
            r = d.api(method, path, body, token=None, headers=h)
            expect(r, 401, "Unauthorized")
    assert_unchanged(d.api, rev)
    expect(d.api("GET", "/v1/skills"), 200)
    # The scheme is case-insensitive (RFC 9110 11.1).
    expect(d.api("GET", "/v1/skills", token=None,
                 headers={"Authorization": f"bearer {tok}"}), 200)


def test_tenants_post_405(config_api):
    api = config_api.api
    rev = revision(api)
    r = api("POST", "/v1/tenants", {"name": "other"})
    expect(r, 405)
    assert_unchanged(api, rev)
    assert "GET" in r.headers.get("allow", ""), f"405 without Allow: {show(r)}"


def test_tenants_lists_served_tenant(config_api):
    """The tenant this instance serves is an object of the API (issue 3:
    "Tenant (tenants, the one this instance serves)"; POST says "the tenant
    object is created by tenantd itself")."""
    j = expect(config_api.api("GET", "/v1/tenants"), 200)
    assert [t.get("name") for t in j["items"]] == ["t100"], \
        f"GET /v1/tenants should list the served tenant t100: {j}"
    t = j["items"][0]
    assert expect(config_api.api("GET", f"/v1/tenants/{t['dbid']}"), 200) == t


# ---------------------------------------------------------------- CRUD

@pytest.mark.parametrize("coll", [c for c in COLLECTIONS if c != "tenants"])
def test_crud(config_api, coll):
    api = config_api.api
    w = World(api)
    body = sample(coll, w, 42)
    rev0 = revision(api)
    wo = WRITE_ONLY.get(coll)

    # create
    r = api("POST", f"/v1/{coll}", body)
    obj = expect(r, 201)
    dbid = obj["dbid"]
    assert isinstance(dbid, int) and dbid > 0
    assert obj["version"] == 1
    assert r.headers.get("location") == f"/v1/{coll}/{dbid}", show(r)
    assert r.headers.get("etag") == '"1"', show(r)
    assert r.headers.get("content-type", "").startswith("application/json")
    public = {k: v for k, v in body.items() if k != wo}
    assert_subset(public, obj, "POST answer")
    for k in ("state", "folder", "userProperties", "name"):
        assert k in obj, f"common field {k} missing: {obj}"
    if wo:
        assert wo not in obj, f"write-only {wo} returned: {obj}"

    # read
    r = api("GET", f"/v1/{coll}/{dbid}")
    assert expect(r, 200) == obj
    assert r.headers.get("etag") == '"1"'
    items = list_all(api, coll)
    assert [i for i in items if i["dbid"] == dbid] == [obj]

    # PUT: a full replace
    put = dict(public, state="disabled", userProperties={"put": {"x": "1"}})
    r = api("PUT", f"/v1/{coll}/{dbid}", put)
    o2 = expect(r, 200)
    assert o2["version"] == 2 and r.headers.get("etag") == '"2"', show(r)
    assert o2["state"] == "disabled" and o2["userProperties"] == {"put": {"x": "1"}}
    assert o2["dbid"] == dbid

    # PATCH: a JSON merge patch
    r = api("PATCH", f"/v1/{coll}/{dbid}",
            {"state": "enabled", "userProperties": {"patch": {"y": 2}}})
    o3 = expect(r, 200)
    assert o3["version"] == 3 and r.headers.get("etag") == '"3"', show(r)
    assert o3["state"] == "enabled"
    assert o3["userProperties"] == {"put": {"x": "1"}, "patch": {"y": 2}}, o3
    assert {k: v for k, v in o3.items() if k not in ("state", "userProperties", "version")} == \
        {k: v for k, v in o2.items() if k not in ("state", "userProperties", "version")}

    # PUT replaces: what the body leaves out is gone (back to its default)
    public.pop("userProperties", None)
    r = api("PUT", f"/v1/{coll}/{dbid}", dict(public, version=3))
    o4 = expect(r, 200)
    assert o4["version"] == 4 and o4["userProperties"] == {}, o4
    assert expect(api("GET", f"/v1/{coll}/{dbid}"), 200) == o4

    # delete
    r = api("DELETE", f"/v1/{coll}/{dbid}")
    assert r.status == 204 and r.text == "", show(r)
    expect(api("GET", f"/v1/{coll}/{dbid}"), 404, "NotFound")
    expect(api("DELETE", f"/v1/{coll}/{dbid}"), 404, "NotFound")
    expect(api("PATCH", f"/v1/{coll}/{dbid}", {"state": "disabled"}), 404, "NotFound")
    assert dbid not in [i["dbid"] for i in list_all(api, coll)]

    # the change log: created, updated x3, deleted, in order, gap-free
    latest, ch = changes(api, rev0)
    assert [c["revision"] for c in ch] == list(range(rev0 + 1, latest + 1))
    assert [(c["op"], c["type"], c["dbid"]) for c in ch] == \
        [("created", TYPE_NAMES[coll], dbid)] + [("updated", TYPE_NAMES[coll], dbid)] * 3 + \
        [("deleted", TYPE_NAMES[coll], dbid)]
    assert [c["object"] for c in ch[:4]] == [obj, o2, o3, o4]
    assert "object" not in ch[4] or ch[4]["object"] is None, ch[4]

    # dbids are never reused
    again = create(api, coll, body)
    assert again["dbid"] > dbid


def test_dbids_unique_across_types(config_api):
    api = config_api.api
    w = World(api)
    ids = [v for k, v in vars(w).items() if k != "api"]
    assert len(set(ids)) == len(ids), ids
    # a dbid of one type is not found in another collection
    expect(api("GET", f"/v1/skills/{w.switch}"), 404, "NotFound")
    expect(api("PATCH", f"/v1/skills/{w.switch}", {"name": "x"}), 404, "NotFound")
    expect(api("DELETE", f"/v1/skills/{w.switch}"), 404, "NotFound")
    expect(api("GET", f"/v1/switches/{w.switch}"), 200)


# ---------------------------------------------------------------- errors

def test_bad_bodies(config_api):
    api = config_api.api
    w = World(api)
    pid = create(api, "persons", sample("persons", w, 1))["dbid"]
    rev = revision(api)
    for method, path in (("POST", "/v1/persons"), ("PUT", f"/v1/persons/{pid}"),
                         ("PATCH", f"/v1/persons/{pid}")):
        for raw in ('{"userName": "x"', "{'userName': 'x'}", "nope", "", "{} {}",
                    '{"userName": "a", "userName": "b"}', b"\xff\xfe{}"):
            expect(api(method, path, raw), 400, "BadJson")
        expect(api(method, path, '{"userProperties":' + "[" * 100000), 400, "BadJson")
        for raw in ("[]", '"x"', "1", "null", "true", '[{"userName": "x"}]'):
            r = api(method, path, raw)
            expect(r, 400)
            assert r.json.get("error"), show(r)
    assert_unchanged(api, rev)


@pytest.mark.parametrize("body,status,code,field", [
    ({"userName": "u", "bogus": 1}, 422, "UnknownField", "bogus"),
    ({"userName": "u", "skills": [{"skill": 1, "level": 1, "x": 1}]}, 422, "UnknownField",
     "skills[0].x"),
    ({"userName": 5}, 422, "WrongType", "userName"),
    ({"userName": "u", "isAgent": "yes"}, 422, "WrongType", "isAgent"),
    ({"userName": "u", "skills": {}}, 422, "WrongType", "skills"),
    ({"userName": "u", "skills": [{"skill": "1", "level": 1}]}, 422, "WrongType",
     "skills[0].skill"),
    ({"userName": "u", "userProperties": {"sec": "flat"}}, 422, "WrongType",
     "userProperties.sec"),
    ({"userName": "u", "userProperties": {"a": {"b": {"c": 1}}}}, 422, "WrongType",
     "userProperties.a.b"),
    ({"userName": "u", "state": "on"}, 422, "BadValue", "state"),
    ({"userName": "u", "skills": [{"skill": 1, "level": 11}]}, 422, "OutOfRange",
     "skills[0].level"),
    ({"userName": "x" * 256}, 422, "OutOfRange", "userName"),
    ({"userName": "tab\there"}, 422, "BadValue", "userName"),
    ({"firstName": "no user name"}, 422, "Missing", "userName"),
    ({"userName": None}, 422, "Missing", "userName"),
    ({"userName": "u", "skills": [{"skill": 1}]}, 422, "Missing", "skills[0].level"),
    ({"userName": "u", "dbid": 5}, 422, "ReadOnly", "dbid"),
    ({"userName": "u", "version": 1}, 422, "ReadOnly", "version"),
])
def test_person_validation(config_api, body, status, code, field):
    api = config_api.api
    rev = revision(api)
    expect(api("POST", "/v1/persons", body), status, code, field)
    assert_unchanged(api, rev)


def test_nul_in_string(config_api):
    api = config_api.api
    rev = revision(api)
    r = api("POST", "/v1/persons", '{"userName": "nul\\u0000byte"}')
    assert r.status in (400, 422), show(r)
    assert r.json.get("error") in ("BadJson", "BadValue"), show(r)
    assert_unchanged(api, rev)


def test_validation_other_types(config_api):
    api = config_api.api
    w = World(api)
    rev = revision(api)
    cases = [
        ("dns", {"number": "12a", "type": "Extension", "switch": w.switch}, "BadValue", "number"),
        ("dns", {"number": "12", "type": "Phone", "switch": w.switch}, "BadValue", "type"),
        ("dns", {"number": "12", "type": "Extension"}, "Missing", "switch"),
        ("agent-logins", {"loginCode": "1"}, "Missing", "switch"),
        ("fields", {"name": "Bad Name", "dataType": "int"}, "BadValue", "name"),
        ("fields", {"name": "f", "dataType": "varchar"}, "Missing", "length"),
        ("calling-lists", {"name": "l", "format": w.format, "tableName": "pg_x"},
         "BadValue", "tableName"),
        ("calling-lists", {"name": "l", "format": w.format, "tableName": "t",
                           "timeFrom": 50000, "timeUntil": 40000}, "BadValue", "timeUntil"),
        ("time-zones", {"name": "z", "tzName": "../../etc/passwd"}, "BadValue", "tzName"),
        ("access-groups", {"name": "a", "permissions": [{"collection": "nope",
                                                         "rights": ["read"]}]},
         "BadValue", "permissions[0].collection"),
        ("places", {"name": "p", "dns": [w.dn, w.dn]}, "Duplicate", "dns[1]"),
        ("folders", {"name": "f", "folder": w.folder}, "BadValue", "folder"),
    ]
    for coll, body, code, field in cases:
        expect(api("POST", f"/v1/{coll}", body), 422, code, field)
    assert_unchanged(api, rev)


def test_bad_references(config_api):
    api = config_api.api
    w = World(api)
    rev = revision(api)
    missing = 10 ** 12
    cases = [
        ("persons", {"userName": "u", "skills": [{"skill": missing, "level": 1}]},
         "skills[0].skill"),
        ("persons", {"userName": "u", "skills": [{"skill": w.skill, "level": 1},
                                                 {"skill": w.switch, "level": 1}]},
         "skills[1].skill"),   # an object of another type
        ("persons", {"userName": "u", "place": missing}, "place"),
        ("persons", {"userName": "u", "agentLogins": [{"agentLogin": w.dn}]},
         "agentLogins[0].agentLogin"),
        ("dns", {"number": "1", "type": "Extension", "switch": missing}, "switch"),
        ("places", {"name": "p", "dns": [w.dn, missing]}, "dns[1]"),
        ("agent-groups", {"name": "g", "members": [w.skill]}, "members[0]"),
        ("access-groups", {"name": "a", "permissions": [
            {"collection": "skills", "rights": ["read"], "dbid": w.person}]},
         "permissions[0].dbid"),
        ("campaigns", {"name": "c", "callingLists": [{"callingList": missing}]},
         "callingLists[0].callingList"),
        ("folders", {"name": "f", "parent": missing}, "parent"),
        ("skills", {"name": "s", "folder": w.skill}, "folder"),
    ]
    for coll, body, field in cases:
        expect(api("POST", f"/v1/{coll}", body), 422, "BadReference", field)
    # on update too
    expect(api("PATCH", f"/v1/persons/{w.person}", {"place": missing}), 422,
           "BadReference", "place")
    assert_unchanged(api, rev)


def test_duplicates(config_api):
    api = config_api.api
    w = World(api)
    rev = revision(api)
    expect(api("POST", "/v1/skills", {"name": "Sales"}), 409, "Duplicate")
    expect(api("POST", "/v1/persons", {"userName": "base.agent"}), 409, "Duplicate")
    expect(api("POST", "/v1/switches", {"name": "sw-main"}), 409, "Duplicate")
    # DN number and login code are unique per switch
    expect(api("POST", "/v1/dns", {"number": "5001", "type": "ACDQueue",
                                   "switch": w.switch}), 409, "Duplicate")
    expect(api("POST", "/v1/agent-logins", {"loginCode": "7001", "switch": w.switch}),
           409, "Duplicate")
    assert_unchanged(api, rev)
    create(api, "dns", {"number": "5001", "type": "Extension", "switch": w.switch2})
    create(api, "agent-logins", {"loginCode": "7001", "switch": w.switch2})
    # a rename onto an existing name
    s2 = create(api, "skills", {"name": "Support"})
    rev = revision(api)
    expect(api("PATCH", f"/v1/skills/{s2['dbid']}", {"name": "Sales"}), 409, "Duplicate")
    expect(api("PUT", f"/v1/skills/{s2['dbid']}", {"name": "Sales"}), 409, "Duplicate")
    assert_unchanged(api, rev)
    assert expect(api("GET", f"/v1/skills/{s2['dbid']}"), 200) == s2
    # a freed name can be taken again
    expect(api("DELETE", f"/v1/skills/{s2['dbid']}"), 204)
    create(api, "skills", {"name": "Support"})


def test_optimistic_concurrency(config_api):
    api = config_api.api
    s = create(api, "skills", {"name": "occ"})
    url = f"/v1/skills/{s['dbid']}"
    s = expect(api("PATCH", url, {"state": "disabled"}), 200)   # version 2
    rev = revision(api)
    for method, body in (("PUT", {"name": "occ2"}), ("PATCH", {"name": "occ2"}),
                         ("DELETE", None)):
        expect(api(method, url, body, headers={"If-Match": '"1"'}), 412,
               "PreconditionFailed")
        expect(api(method, url, body, headers={"If-Match": '"3"'}), 412,
               "PreconditionFailed")
    # a version in the body that is not the current one
    expect(api("PUT", url, {"name": "occ2", "version": 1}), 409, "VersionMismatch")
    expect(api("PATCH", url, {"name": "occ2", "version": 1}), 409, "VersionMismatch")
    expect(api("PUT", url, {"name": "occ2", "dbid": s["dbid"] + 1}), 422, "ReadOnly", "dbid")
    assert_unchanged(api, rev)
    assert expect(api("GET", url), 200) == s
    # with the right ones
    o = expect(api("PUT", url, {"name": "occ2", "version": 2},
                   headers={"If-Match": '"2"'}), 200)
    assert o["version"] == 3
    o = expect(api("PATCH", url, {"name": "occ3"}, headers={"If-Match": "3"}), 200)
    assert o["version"] == 4
    r = api("DELETE", url, headers={"If-Match": '"4"'})
    assert r.status == 204, show(r)


def test_if_match_star(config_api):
    """RFC 9110 13.1.1: If-Match: * is true for any current representation."""
    api = config_api.api
    s = create(api, "skills", {"name": "star"})
    r = api("PATCH", f"/v1/skills/{s['dbid']}", {"state": "disabled"},
            headers={"If-Match": "*"})
    expect(r, 200)


def test_referenced_and_cascade(config_api):
    api = config_api.api
    w = World(api)
    sk = create(api, "skills", {"name": "Doomed"})["dbid"]
    p1 = create(api, "persons", {"userName": "p1", "skills": [
        {"skill": w.skill, "level": 1}, {"skill": sk, "level": 2}]})
    p2 = create(api, "persons", {"userName": "p2", "skills": [{"skill": sk, "level": 3}]})
    ag = create(api, "access-groups", {"name": "ag", "permissions": [
        {"collection": "persons", "rights": ["read"]},
        {"collection": "skills", "rights": ["read", "update"], "dbid": sk}]})
    rev = revision(api)

    r = api("DELETE", f"/v1/skills/{sk}")
    j = expect(r, 409, "Referenced")
    got = sorted((x["type"], x["dbid"], x["field"]) for x in j["referrers"])
    assert got == sorted([("Person", p1["dbid"], "skills[1].skill"),
                          ("Person", p2["dbid"], "skills[0].skill"),
                          ("AccessGroup", ag["dbid"], "permissions[1].dbid")]), j
    assert_unchanged(api, rev)
    for v in ("false", "1", "yes"):
        expect(api("DELETE", f"/v1/skills/{sk}?cascade={v}"), 409, "Referenced")
    assert_unchanged(api, rev)

    r = api("DELETE", f"/v1/skills/{sk}?cascade=true")
    assert r.status == 204, show(r)
    expect(api("GET", f"/v1/skills/{sk}"), 404)
    n1 = expect(api("GET", f"/v1/persons/{p1['dbid']}"), 200)
    n2 = expect(api("GET", f"/v1/persons/{p2['dbid']}"), 200)
    na = expect(api("GET", f"/v1/access-groups/{ag['dbid']}"), 200)
    assert n1["skills"] == [{"skill": w.skill, "level": 1}] and n1["version"] == 2, n1
    assert n2["skills"] == [] and n2["version"] == 2, n2
    assert na["permissions"] == [{"collection": "persons", "rights": ["read"],
                                  "dbid": None}] or \
        na["permissions"] == [{"collection": "persons", "rights": ["read"]}], na
    assert na["version"] == 2
    latest, ch = changes(api, rev)
    assert [c["revision"] for c in ch] == list(range(rev + 1, latest + 1)) and len(ch) == 4, ch
    assert sorted((c["op"], c["dbid"]) for c in ch[:3]) == sorted(
        [("updated", p1["dbid"]), ("updated", p2["dbid"]), ("updated", ag["dbid"])]), ch
    assert (ch[3]["op"], ch[3]["type"], ch[3]["dbid"]) == ("deleted", "Skill", sk), ch
    objs = {c["dbid"]: c["object"] for c in ch[:3]}
    assert objs[p1["dbid"]] == n1 and objs[p2["dbid"]] == n2 and objs[ag["dbid"]] == na

    # optional single references become null
    pl = create(api, "places", {"name": "doomed place", "dns": [w.dn]})["dbid"]
    p3 = create(api, "persons", {"userName": "p3", "place": pl})["dbid"]
    expect(api("DELETE", f"/v1/places/{pl}"), 409, "Referenced")
    assert api("DELETE", f"/v1/places/{pl}?cascade=true").status == 204
    assert expect(api("GET", f"/v1/persons/{p3}"), 200)["place"] is None

    # a DN held in several kinds of lists and references
    dn = create(api, "dns", {"number": "999", "type": "Extension", "switch": w.switch})["dbid"]
    pl2 = create(api, "places", {"name": "pl2", "dns": [w.dn, dn]})["dbid"]
    dg = create(api, "dn-groups", {"name": "dg", "members": [dn]})["dbid"]
    cg = create(api, "campaign-groups", {"name": "cg", "campaign": w.campaign,
                                         "group": w.agroup, "origDN": dn})["dbid"]
    j = expect(api("DELETE", f"/v1/dns/{dn}"), 409, "Referenced")
    assert sorted((x["type"], x["dbid"], x["field"]) for x in j["referrers"]) == sorted(
        [("Place", pl2, "dns[1]"), ("DNGroup", dg, "members[0]"),
         ("CampaignGroup", cg, "origDN")]), j
    assert api("DELETE", f"/v1/dns/{dn}?cascade=true").status == 204
    assert expect(api("GET", f"/v1/places/{pl2}"), 200)["dns"] == [w.dn]
    assert expect(api("GET", f"/v1/dn-groups/{dg}"), 200)["members"] == []
    assert expect(api("GET", f"/v1/campaign-groups/{cg}"), 200)["origDN"] is None


def test_required_reference_blocks_cascade(config_api):
    api = config_api.api
    w = World(api)
    rev = revision(api)
    dn_before = expect(api("GET", f"/v1/dns/{w.dn}"), 200)
    r = api("DELETE", f"/v1/switches/{w.switch}")
    j = expect(r, 409, "Referenced")
    fields = {(x["type"], x["field"]) for x in j["referrers"]}
    assert ("DN", "switch") in fields and ("AgentLogin", "switch") in fields, j
    r = api("DELETE", f"/v1/switches/{w.switch}?cascade=true")
    expect(r, 409, "RequiredRef")
    assert r.json.get("field") == "switch", show(r)
    assert_unchanged(api, rev)
    assert expect(api("GET", f"/v1/dns/{w.dn}"), 200) == dn_before
    expect(api("GET", f"/v1/switches/{w.switch}"), 200)
    # a campaign group needs its campaign and group
    cg = create(api, "campaign-groups", {"name": "cg", "campaign": w.campaign,
                                         "group": w.agroup})["dbid"]
    rev = revision(api)
    expect(api("DELETE", f"/v1/campaigns/{w.campaign}?cascade=true"), 409, "RequiredRef",
           "campaign")
    assert_unchanged(api, rev)
    # once the referrer is gone, the delete works
    assert api("DELETE", f"/v1/campaign-groups/{cg}").status == 204
    assert api("DELETE", f"/v1/campaigns/{w.campaign}").status == 204


def test_folder_cycle(config_api):
    """Folders nest by parent; a cycle (a folder inside its own subtree) is
    refused (schema.h leaves "folder cycles" to the store)."""
    api = config_api.api
    f1 = create(api, "folders", {"name": "f1"})["dbid"]
    f2 = create(api, "folders", {"name": "f2", "parent": f1})["dbid"]
    f3 = create(api, "folders", {"name": "f3", "parent": f2})["dbid"]
    rev = revision(api)
    expect(api("PATCH", f"/v1/folders/{f1}", {"parent": f1}), 422, "BadValue", "parent")
    for parent in (f2, f3):
        r = api("PATCH", f"/v1/folders/{f1}", {"parent": parent})
        assert r.status == 422 and r.json.get("field") == "parent", \
            f"folder {f1} moved under its own descendant {parent}: {show(r)}"
    assert_unchanged(api, rev)


def test_pipelined_read_your_write(config_api):
    """A GET pipelined behind a POST on one connection answers after it and
    sees the object."""
    d = config_api
    body = b'{"name": "pipelined"}'
    auth = f"Authorization: Bearer {d.admin_token}\r\n"
    req = (f"POST /v1/skills HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(body)}"
           f"\r\n\r\n").encode() + body
    req += f"GET /v1/skills?name=pipelined HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()
    req += (f"GET /v1/skills HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n"
            "\r\n").encode()
    with socket.create_connection(("127.0.0.1", d.config_port), timeout=10) as so:
        so.sendall(req)
        data = b""
        while True:
            c = so.recv(65536)
            if not c:
                break
            data += c
    parts = data.decode().split("HTTP/1.1 ")[1:]
    assert [p[:3] for p in parts] == ["201", "200", "200"], data
    assert '"name":"pipelined"' in parts[1].replace(" ", ""), parts[1]
    assert '"name":"pipelined"' in parts[2].replace(" ", ""), parts[2]


def test_clients_leaving_early(config_api):
    """Clients that hang up while their long poll or write is pending harm
    nothing: the worker keeps running and serving."""
    d = config_api
    pid = d.worker_pid("config")
    auth = f"Authorization: Bearer {d.admin_token}\r\n"
    rev = revision(d.api)
    for i in range(5):
        with socket.create_connection(("127.0.0.1", d.config_port)) as so:
            so.sendall(f"GET /v1/changes?since={rev}&wait=1 HTTP/1.1\r\nHost: x\r\n{auth}"
                       "\r\n".encode())
            time.sleep(0.02)
    for i in range(20):
        b = f'{{"name": "gone-{i}"}}'.encode()
        with socket.create_connection(("127.0.0.1", d.config_port)) as so:
            so.sendall(f"POST /v1/skills HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: "
                       f"{len(b)}\r\n\r\n".encode() + b)
    create(d.api, "skills", {"name": "wake the pollers"})
    time.sleep(1.5)
    expect(d.api("GET", "/v1/skills?limit=1"), 200)
    assert d.worker_pid("config") == pid, "the config worker restarted"
    names = {o["name"] for o in list_all(d.api, "skills")}
    assert "wake the pollers" in names
    # every write that committed is in the log exactly once
    latest, ch = changes(d.api, rev)
    assert len({c["dbid"] for c in ch}) == len(ch) == len(names)


def test_metrics(config_api):
    d = config_api
    api = d.api
    keys = {"create201": ("create", "201"), "create422": ("create", "422"),
            "patch200": ("patch", "200"), "delete204": ("delete", "204"),
            "get404": ("get", "404"), "list200": ("list", "200")}

    def counts():
        m = d.metrics()
        out = {k: m.get(("tenantd_config_requests_total",
                         frozenset({("route", r), ("code", c)})), 0)
               for k, (r, c) in keys.items()}
        out["latency"] = m.get(("tenantd_config_request_duration_seconds_count",
                                frozenset()), 0)
        return m, out
    _, before = counts()
    for i in range(7):
        create(api, "skills", {"name": f"m{i}"})
    s = create(api, "skills", {"name": "m-last"})
    expect(api("PATCH", f"/v1/skills/{s['dbid']}", {"state": "disabled"}), 200)
    assert api("DELETE", f"/v1/skills/{s['dbid']}").status == 204
    expect(api("GET", f"/v1/skills/{s['dbid']}"), 404)
    for i in range(3):
        expect(api("GET", "/v1/skills"), 200)
    expect(api("POST", "/v1/skills", {"bogus": 1}), 422)
    rev = revision(api)
    want = {"create201": 8, "create422": 1, "patch200": 1, "delete204": 1,
            "get404": 1, "list200": 3, "latency": 16}
    delta = {}

    def done():
        m, after = counts()
        delta.update({k: after[k] - before[k] for k in after})
        return m if delta == want else None
    try:
        m = wait_for(done, 2, what="the request counters")
    except AssertionError:
        assert delta == want
    assert m.get(("tenantd_config_objects", frozenset())) == 8  # + tenant
    assert m.get(("tenantd_config_revision", frozenset())) == rev
    assert ("tenant_cs_clients", frozenset()) in m


def test_not_found_and_methods(config_api):
    api = config_api.api
    s = create(api, "skills", {"name": "m"})["dbid"]
    for path in ("/v1/nope", "/v1/nope/1", "/v1/Skills", "/v1/skill", "/v1/skills/abc",
                 "/v1/skills/0", "/v1/skills/-1", "/v1/skills/1.0", "/v1/skills/0x1",
                 f"/v1/skills/{s} ", f"/v1/skills/{s}/x", "/v1/skills/99999999999",
                 "/v1/skills/9007199254740992", "/v1/skills/123456789012345678901",
                 "/v1/", "/v1", "/", "/skills"):
        r = api("GET", path.replace(" ", "%20"))
        expect(r, 404, "NotFound")
    for path, allowed, methods in (
            ("/v1/skills", {"GET", "POST"}, ("PUT", "PATCH", "DELETE")),
            (f"/v1/skills/{s}", {"GET", "PUT", "PATCH", "DELETE"}, ("POST",)),
            ("/v1/changes", {"GET"}, ("POST", "PUT", "DELETE"))):
        for m in methods:
            r = api(m, path, {"name": "z"})
            expect(r, 405)
            allow = {x.strip() for x in r.headers.get("allow", "").split(",") if x.strip()}
            assert allow == allowed, f"{m} {path}: Allow should be {allowed}: {show(r)}"
    expect(api("GET", f"/v1/skills/{s}"), 200)


def test_body_too_large(config_api):
    d = config_api
    rev = revision(d.api)
    limit = 1048576   # workers.config.max_body default

    def raw(method, path, length, send):
        with socket.create_connection(("127.0.0.1", d.config_port), timeout=10) as so:
            head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {d.admin_token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
            so.sendall(head.encode())
            try:
                if send:
                    so.sendall(b'{"name": "' + b"a" * (length - 12) + b'"}')
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = so.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            return data
    for method, path in (("POST", "/v1/skills"), ("PUT", "/v1/skills/1"),
                         ("PATCH", "/v1/skills/1")):
        for send in (False, True):
            data = raw(method, path, limit + 1, send)
            assert data.startswith(b"HTTP/1.1 413"), \
                f"{method} body of {limit + 1} bytes: {data[:200]!r}"
    # just under the limit is read and judged on its content
    r = d.api("POST", "/v1/skills", b'{"name": "' + b"a" * (limit - 12) + b'"}')
    expect(r, 422, "OutOfRange", "name")
    assert_unchanged(d.api, rev)
    expect(d.api("GET", "/v1/skills"), 200)


def test_unavailable_before_loaded(tenantd, pg):
    """Until the configuration is loaded the API answers 503, then serves."""
    pg.stop()
    try:
        d = tenantd(config_worker=True)
        wait_for(lambda: port_open(d.config_port), 10, what="config port open")
        time.sleep(0.5)
        r = d.api("GET", "/v1/skills")
        expect(r, 503, "Unavailable")
        assert "not loaded" in r.json["message"], show(r)
        expect(d.api("POST", "/v1/skills", {"name": "x"}), 503)
    finally:
        pg.start()
    config_api_ready(d, timeout=20)
    create(d.api, "skills", {"name": "after"})


# ---------------------------------------------------------------- secrets, SQL

def test_write_only_fields(config_api, pg):
    api = config_api.api
    pw, sec = "Pa55'w\"0rd-clear-text", "app-s3cret-clear-text"
    p = create(api, "persons", {"userName": "secretive", "password": pw})
    a = create(api, "applications", {"name": "secret app", "type": "T", "secret": sec})
    assert "password" not in p and "secret" not in a
    p = expect(api("PATCH", f"/v1/persons/{p['dbid']}", {"password": pw + "2"}), 200)
    p = expect(api("PUT", f"/v1/persons/{p['dbid']}",
                   {"userName": "secretive", "password": pw + "3", "firstName": "S"}), 200)
    a = expect(api("PATCH", f"/v1/applications/{a['dbid']}", {"secret": sec + "2"}), 200)
    texts = [api("GET", f"/v1/persons/{p['dbid']}").text,
             api("GET", f"/v1/applications/{a['dbid']}").text,
             api("GET", "/v1/persons").text, api("GET", "/v1/applications").text,
             api("GET", "/v1/changes?since=0").text,
             api("GET", "/v1/persons?userName=secretive").text]
    for t in texts:
        assert '"password"' not in t and '"secret"' not in t, t
        assert pw not in t and sec not in t, t
    for c in ("password", "secret"):
        assert c not in expect(api("GET", f"/v1/persons/{p['dbid']}"), 200)
    # Stored hashed, never in clear (a look at the database, read-only).
    for table, col in (("cfg_object", "data"), ("cfg_change", "object")):
        n = pg.psql(f"SELECT count(*) FROM {table} WHERE {col}::text LIKE '%clear-text%'",
                    db="t100").strip()
        assert n == "0", f"a clear-text secret is stored in {table}"
    hashes = pg.psql("SELECT field, hash FROM cfg_secret ORDER BY field", db="t100").split()
    assert len(hashes) == 2 and all("clear-text" not in h for h in hashes), hashes
    assert all(h.split("|")[1].startswith(("$y$", "$6$")) for h in hashes), hashes
    # nulling a write-only field on PATCH is accepted and still not output
    r = api("PATCH", f"/v1/persons/{p['dbid']}", {"password": None})
    assert r.status in (200, 422), show(r)
    assert "password" not in r.text


NASTY = [
    "'; DROP TABLE cfg_object; --",
    "Robert'); DELETE FROM cfg_change; --",
    'double " and single \' quotes',
    "back\\slash \\\\ \\' \\\" \\n \\x00 \\u0000",
    "ünïcødé 日本語 😀 \u202eevil",
    "$1 $$dollar$$ %s %d %n {} ${x} `id`",
    "null",
    '{"json": [1, 2], "x": null}',
    "1' OR '1'='1",
    "/* c */ -- c ; % _ * ? [a-z]",
]
NASTY_TEXT = "multi\nline\ttab\r\n'; DROP TABLE cfg_ref; --"


def nasty_bodies(w):
    """One body per collection, every free-form string field nasty."""
    n = iter(NASTY * 20)
    s = lambda: f"{next(n)} #{next(counter)}"   # noqa: E731
    counter = iter(range(1, 10000))
    up = {"sec'; --": {"key \"q\"": "val \\ ' ;--", "n": 1}, NASTY[4]: {NASTY[0]: NASTY[1]}}
    return {
        "persons": {"userName": s(), "name": s(), "firstName": s(), "lastName": s(),
                    "employeeId": s(), "externalId": s(),
                    "emailAddress": "o'brien\";--\\x@ex'am;ple.com", "password": s(),
                    "userProperties": up},
        "agent-logins": {"loginCode": s(), "name": s(), "switch": w.switch},
        "switches": {"name": s(), "type": s(), "userProperties": up},
        "dns": {"number": "+1*#9", "name": s(), "type": "Extension", "switch": w.switch,
                "association": s()},
        "places": {"name": s()},
        "skills": {"name": s()},
        # a skill expression: one quoted name, nasty inside
        "agent-groups": {"name": s(), "skillExpression": '"' + s().replace(
            "\\", "\\\\").replace('"', '\\"') + '"'},
        "place-groups": {"name": s()},
        "dn-groups": {"name": s()},
        "applications": {"name": s(), "type": s(), "secret": s(), "options": up},
        "transactions": {"name": s(), "type": "List", "alias": s(),
                         "description": NASTY_TEXT, "options": up},
        "access-groups": {"name": s()},
        "folders": {"name": s()},
        "time-zones": {"name": s(), "tzName": "Etc/GMT+5"},
        "campaigns": {"name": s(), "description": NASTY_TEXT},
        "campaign-groups": {"name": s(), "campaign": w.campaign, "group": w.agroup},
        "calling-lists": {"name": s(), "format": w.format, "tableName": "robert_drop_table",
                          "description": NASTY_TEXT},
        "treatments": {"name": s(), "callResult": "Busy", "action": "RetryIn"},
        "formats": {"name": s(), "description": NASTY_TEXT},
        "fields": {"name": "drop_table_x", "dataType": "int", "defaultValue": s(),
                   "description": NASTY_TEXT},
    }


def test_sql_metacharacters(tenantd, config_api):
    api = config_api.api
    w = World(api)
    before = {c: list_all(api, c) for c in COLLECTIONS}
    rev0 = revision(api)
    bodies = nasty_bodies(w)
    made, created = {}, {}
    for coll, body in bodies.items():
        obj = create(api, coll, body)
        pub = {k: v for k, v in body.items() if k != WRITE_ONLY.get(coll)}
        assert_subset(pub, obj, f"POST {coll}")
        assert expect(api("GET", f"/v1/{coll}/{obj['dbid']}"), 200) == obj
        # the name filter finds exactly it, whatever it holds
        found = list_all(api, coll, "name=" + q(obj["name"]))
        assert [x["dbid"] for x in found] == [obj["dbid"]], (coll, obj["name"], found)
        made[coll] = created[coll] = obj
    # a PATCH with nasty values too
    p = made["persons"]
    o = expect(api("PATCH", f"/v1/persons/{p['dbid']}",
                   {"lastName": NASTY[0], "firstName": NASTY[3]}), 200)
    assert o["lastName"] == NASTY[0] and o["firstName"] == NASTY[3]
    made["persons"] = o
    hits = list_all(api, "persons", "lastName=" + q(NASTY[0]))
    assert [x["dbid"] for x in hits] == [o["dbid"]]
    # nothing else changed: every earlier object is intact, one change per write
    for c in COLLECTIONS:
        now = list_all(api, c)
        assert [x for x in now if x["dbid"] not in {m["dbid"] for m in made.values()}] \
            == before[c], f"{c} changed"
    latest, ch = changes(api, rev0)
    assert len(ch) == len(bodies) + 1 and latest == rev0 + len(ch)
    answers = [created[c] for c in bodies] + [o]
    assert [c["object"] for c in ch] == answers, "the change log does not hold the objects"
    # A second instance loads them from PostgreSQL (snapshot) verbatim.
    d2 = config_api_ready(tenantd(config_worker=True, admin_token=config_api.admin_token))
    for coll, obj in made.items():
        assert expect(d2.api("GET", f"/v1/{coll}/{obj['dbid']}"), 200) == obj, coll


# ---------------------------------------------------------------- lists

def test_paging_10000(config_api):
    """10,000 skills: every one exactly once in dbid order, whatever the page
    size; state and name filters; the change log pages the same way."""
    api = config_api.api
    cl = config_api.api_client(keepalive=True)
    n = 10000
    rev0 = revision(api)
    t0 = time.monotonic()

    def mk(i):
        r = cl("POST", "/v1/skills", {"name": f"bulk-{i:05d}",
                                      "state": "disabled" if i % 10 == 3 else "enabled"})
        assert r.status == 201, show(r)
        return r.json["dbid"], r.json["name"], r.json["state"]
    with ThreadPoolExecutor(16) as ex:
        made = list(ex.map(mk, range(n)))
    took = time.monotonic() - t0
    print(f"\ncreated {n} skills in {took:.1f} s ({n / took:.0f}/s)")
    ids = sorted(m[0] for m in made)
    assert len(set(ids)) == n
    disabled = sorted(m[0] for m in made if m[2] == "disabled")

    for limit in (1000, 777, 10000):
        items = list_all(api, "skills", limit=limit)
        got = [i["dbid"] for i in items]
        assert got == ids, f"limit={limit}: {len(got)} items, sorted={got == sorted(got)}"
    r = api("GET", "/v1/skills")
    j = expect(r, 200)
    assert len(j["items"]) == 100 and j["next"] == ids[99], "default limit is 100"
    r = api("GET", f"/v1/skills?limit=10000")
    j = expect(r, 200)
    assert len(j["items"]) == n and "next" not in j and j["revision"] == rev0 + n
    r = api("GET", f"/v1/skills?after={ids[-1]}")
    assert expect(r, 200)["items"] == [] and "next" not in r.json
    r = api("GET", f"/v1/skills?after={ids[4999]}&limit=3")
    assert [i["dbid"] for i in expect(r, 200)["items"]] == ids[5000:5003]
    # after need not be a dbid of the collection
    r = api("GET", f"/v1/skills?after={ids[0] - 1 if ids[0] > 1 else 0}&limit=1")
    if ids[0] > 1:
        assert [i["dbid"] for i in expect(r, 200)["items"]] == [ids[0]]

    got = [i["dbid"] for i in list_all(api, "skills", "state=disabled", limit=333)]
    assert got == disabled
    got = [i["dbid"] for i in list_all(api, "skills", "state=enabled", limit=5000)]
    assert got == sorted(set(ids) - set(disabled))
    by_name = {m[1]: m[0] for m in made}
    for name in ("bulk-00000", "bulk-04567", "bulk-09999"):
        got = [i["dbid"] for i in list_all(api, "skills", "name=" + name)]
        assert got == [by_name[name]]
    assert list_all(api, "skills", "name=bulk-1") == []
    assert list_all(api, "skills", "name=bulk-0000") == []

    # the change log: 10,000 created, gap-free, in order
    latest, ch = changes(api, rev0)
    assert latest == rev0 + n
    assert [c["revision"] for c in ch] == list(range(rev0 + 1, rev0 + n + 1))
    assert sorted(c["dbid"] for c in ch) == ids and all(c["op"] == "created" for c in ch)


def test_filters(config_api):
    api = config_api.api
    w = World(api)
    c = lambda coll, body: create(api, coll, body)  # noqa: E731
    skills = [c("skills", {"name": f"f-skill-{i}"})["dbid"] for i in range(4)]
    f2 = c("folders", {"name": "f2"})["dbid"]
    places = [c("places", {"name": f"f-place-{i}"})["dbid"] for i in range(3)]
    dns = []
    for i in range(40):
        sw = w.switch if i % 4 else w.switch2
        dns.append(c("dns", {"number": str(7000 + i), "switch": sw,
                             "type": ("Extension", "ACDQueue", "RoutingPoint")[i % 3],
                             "state": "disabled" if i % 7 == 0 else "enabled"}))
    persons = []
    for i in range(45):
        body = {"userName": f"agent{i}", "lastName": "Smith" if i % 5 == 0 else f"L{i}",
                "employeeId": f"E{i}", "isAgent": i % 3 != 0,
                "skills": [{"skill": skills[k], "level": i % 10}
                           for k in range(4) if (i >> k) & 1],
                "state": "disabled" if i % 4 == 0 else "enabled"}
        if i % 6:
            body["place"] = places[i % 3]
        if i % 8 == 0:
            body["folder"] = f2
        persons.append(c("persons", body))
    logins = [c("agent-logins", {"loginCode": f"9{i}", "switch":
                                 w.switch2 if i % 2 else w.switch}) for i in range(10)]

    def check(coll, query, pred, objs):
        want = sorted(o["dbid"] for o in objs if pred(o))
        for limit in (1000, 4):
            got = [i["dbid"] for i in list_all(api, coll, query, limit=limit)]
            assert got == want, f"{coll}?{query} limit={limit}: got {got}, want {want}"

    allp = persons + [expect(api("GET", f"/v1/persons/{w.person}"), 200)]
    has_skill = lambda o, s: any(x["skill"] == s for x in o["skills"])  # noqa: E731
    check("persons", "isAgent=true", lambda o: o["isAgent"], allp)
    check("persons", "isAgent=false", lambda o: not o["isAgent"], allp)
    for s in skills:
        check("persons", f"skill={s}", lambda o, s=s: has_skill(o, s), allp)
    check("persons", f"skill={skills[1]}&isAgent=true",
          lambda o: has_skill(o, skills[1]) and o["isAgent"], allp)
    check("persons", f"skill={skills[0]}&skill={skills[2]}",
          lambda o: has_skill(o, skills[0]) and has_skill(o, skills[2]), allp)
    check("persons", f"place={places[1]}", lambda o: o["place"] == places[1], allp)
    check("persons", "place=null", lambda o: o["place"] is None, allp)
    check("persons", "lastName=Smith", lambda o: o.get("lastName") == "Smith", allp)
    check("persons", "employeeId=E7", lambda o: o.get("employeeId") == "E7", allp)
    check("persons", "userName=agent12", lambda o: o["userName"] == "agent12", allp)
    check("persons", "state=disabled&isAgent=true",
          lambda o: o["state"] == "disabled" and o["isAgent"], allp)
    check("persons", f"folder={f2}", lambda o: o["folder"] == f2, allp)
    check("persons", "folder=null", lambda o: o["folder"] is None, allp)
    check("persons", f"skill={skills[0]}&place=null&state=enabled",
          lambda o: has_skill(o, skills[0]) and o["place"] is None
          and o["state"] == "enabled", allp)
    alld = dns + [expect(api("GET", f"/v1/dns/{w.dn}"), 200)]
    check("dns", f"switch={w.switch}", lambda o: o["switch"] == w.switch, alld)
    check("dns", f"switch={w.switch2}&type=ACDQueue",
          lambda o: o["switch"] == w.switch2 and o["type"] == "ACDQueue", alld)
    check("dns", "number=7013", lambda o: o["number"] == "7013", alld)
    check("dns", "state=disabled", lambda o: o["state"] == "disabled", alld)
    alll = logins + [expect(api("GET", f"/v1/agent-logins/{w.login}"), 200)]
    check("agent-logins", f"switch={w.switch2}", lambda o: o["switch"] == w.switch2, alll)
    pl = list_all(api, "places")
    check("places", f"dn={w.dn}", lambda o: w.dn in o["dns"], pl)
    # a filter that matches nothing, with a well-formed value
    assert list_all(api, "persons", f"skill={10 ** 9}") == []
    assert list_all(api, "dns", f"switch={w.switch}&number=1") == []


def test_bad_filters_and_params(config_api):
    api = config_api.api
    wrong = []
    for path, code in (
            ("/v1/persons?bogus=1", "UnknownFilter"),
            ("/v1/skills?switch=1", "UnknownFilter"),
            ("/v1/skills?isAgent=true", "UnknownFilter"),
            ("/v1/persons?isAgent=maybe", "BadFilter"),
            ("/v1/persons?isAgent=1", "BadFilter"),
            ("/v1/persons?skill=abc", "BadFilter"),
            ("/v1/persons?skill=0", "BadFilter"),
            ("/v1/persons?skill=-3", "BadFilter"),
            ("/v1/persons?state=on", "BadFilter"),
            ("/v1/dns?switch=null", "BadFilter"),     # a required reference
            ("/v1/dns?type=Phone", "BadFilter"),
            ("/v1/skills?limit=0", None), ("/v1/skills?limit=10001", None),
            ("/v1/skills?limit=-1", None), ("/v1/skills?limit=abc", None),
            ("/v1/skills?limit=", None), ("/v1/skills?limit=1e3", None),
            ("/v1/skills?limit=99999999999999999999", None),
            ("/v1/skills?after=abc", None), ("/v1/skills?after=-1", None),
            ("/v1/skills?name=%zz", None), ("/v1/skills?name=%00", None),
            ("/v1/changes?since=abc", None), ("/v1/changes?since=-1", None),
            ("/v1/changes?wait=61", None), ("/v1/changes?wait=-1", None),
            ("/v1/changes?wait=x", None), ("/v1/changes?limit=0", None),
            ("/v1/changes?limit=1001", None), ("/v1/changes?limit=x", None)):
        r = api("GET", path)
        if r.status != 400 or not r.json or not r.json.get("error") or \
                (code and r.json["error"] != code):
            wrong.append(f"GET {path} -> {show(r)}")
    assert not wrong, "not refused with 400:\n" + "\n".join(wrong)
    expect(api("GET", "/v1/skills?limit=1"), 200)
    expect(api("GET", "/v1/skills?limit=10000"), 200)


# ---------------------------------------------------------------- change log

def test_changes_params_strict(config_api):
    """limit and since are whole numbers: anything else is refused (400),
    never read as a prefix nor silently ignored."""
    api = config_api.api
    for i in range(3):
        create(api, "skills", {"name": f"p{i}"})
    wrong = []
    for path, ok_revs in (("/v1/changes?limit=2x", None),
                          ("/v1/changes?since=1x", None),
                          ("/v1/changes?since=" + "0" * 39 + "1", [2, 3]),  # 1
                          ("/v1/changes?since=" + "9" * 40, []),
                          ("/v1/changes?since=99999999999999999999", [])):
        r = api("GET", path)
        if r.status == 400:
            continue
        if r.status == 200 and ok_revs is not None and \
                [c["revision"] for c in r.json["changes"]] == ok_revs:
            continue
        wrong.append(f"GET {path} -> {show(r)[:200]}")
    assert not wrong, "neither refused nor answered right:\n" + "\n".join(wrong)


def test_changes_shape(config_api):
    api = config_api.api
    # Revision 1 is the tenant object, made by the first start.
    j = expect(api("GET", "/v1/changes?since=1"), 200)
    assert j == {"revision": 1, "changes": [], "next": 1}, j
    first = expect(api("GET", "/v1/changes?since=0"), 200)["changes"]
    assert [(c["revision"], c["op"], c["type"]) for c in first] == \
        [(1, "created", "Tenant")], first
    s = create(api, "skills", {"name": "c1"})
    s2 = expect(api("PATCH", f"/v1/skills/{s['dbid']}", {"state": "disabled"}), 200)
    assert api("DELETE", f"/v1/skills/{s['dbid']}").status == 204
    j = expect(api("GET", "/v1/changes?since=1"), 200)
    assert j["revision"] == 4
    assert j["changes"] == [
        {"revision": 2, "op": "created", "type": "Skill", "dbid": s["dbid"], "object": s},
        {"revision": 3, "op": "updated", "type": "Skill", "dbid": s["dbid"], "object": s2},
        {"revision": 4, "op": "deleted", "type": "Skill", "dbid": s["dbid"]},
    ], j
    # resume from anywhere; limit pages
    assert [c["revision"] for c in expect(api("GET", "/v1/changes?since=2"), 200)["changes"]] \
        == [3, 4]
    j = expect(api("GET", "/v1/changes?since=1&limit=2"), 200)
    assert j["revision"] == 4 and [c["revision"] for c in j["changes"]] == [2, 3]
    assert j["next"] == 3, j  # a full page: go on after its last change
    assert expect(api("GET", "/v1/changes?since=4"), 200) == \
        {"revision": 4, "changes": [], "next": 4}
    # without since: from the start
    assert len(expect(api("GET", "/v1/changes"), 200)["changes"]) == 4
    # a since ahead of the log: nothing yet
    assert expect(api("GET", "/v1/changes?since=1000"), 200)["changes"] == []
    # refused writes log nothing
    expect(api("POST", "/v1/skills", {"name": 1}), 422)
    assert revision(api) == 4


def test_long_poll(config_api):
    api = config_api.api
    rev = revision(api)
    # nothing happens: an empty answer after the wait
    t0 = time.monotonic()
    j = expect(api("GET", f"/v1/changes?since={rev}&wait=1"), 200)
    took = time.monotonic() - t0
    assert j == {"revision": rev, "changes": [], "next": rev}, j
    assert 0.9 <= took <= 2.5, f"wait=1 answered after {took:.2f} s"
    # a write wakes it at once
    lat = []
    for i in range(5):
        rev = revision(api)
        out = {}

        def poll():
            t = time.monotonic()
            out["r"] = api("GET", f"/v1/changes?since={rev}&wait=10", timeout=15)
            out["t"] = time.monotonic()
            out["waited"] = out["t"] - t
        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.3)
        assert th.is_alive(), f"the long poll answered before any write: {out}"
        s = create(api, "skills", {"name": f"lp{i}"})
        t_written = time.monotonic()
        th.join(12)
        assert not th.is_alive(), "the long poll did not answer"
        j = expect(out["r"], 200)
        assert [(c["revision"], c["op"], c["dbid"]) for c in j["changes"]] == \
            [(rev + 1, "created", s["dbid"])], j
        lat.append(out["t"] - t_written)
        assert out["waited"] >= 0.25
    print(f"\nlong-poll wake-up after the write answered: max {max(lat) * 1000:.1f} ms")
    assert max(lat) < 1.0, lat
    # a poll from behind answers at once
    t0 = time.monotonic()
    j = expect(api("GET", "/v1/changes?since=0&wait=30"), 200)
    assert time.monotonic() - t0 < 1 and len(j["changes"]) == 6  # + tenant


def test_list_then_watch(config_api):
    """A list's revision, then changes?since=that revision, while another
    client writes: nothing lost, nothing repeated."""
    api = config_api.api
    cl = config_api.api_client(keepalive=True)
    for i in range(50):
        create(api, "skills", {"name": f"ltw-{i}"})
    stop = threading.Event()
    errors = []

    def writer(k):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = cl("POST", "/v1/skills", {"name": f"w{k}-{i}"})
                if r.status != 201:
                    errors.append(show(r))
                    continue
                dbid = r.json["dbid"]
                if i % 2:
                    r = cl("PATCH", f"/v1/skills/{dbid}", {"state": "disabled"})
                    if r.status != 200:
                        errors.append(show(r))
                if i % 3 == 0:
                    r = cl("DELETE", f"/v1/skills/{dbid}")
                    if r.status != 204:
                        errors.append(show(r))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
    ths = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in ths:
        t.start()
    try:
        for _round in range(5):
            time.sleep(0.1)
            j = expect(api("GET", "/v1/skills?limit=10000"), 200)
            state = {o["dbid"]: o for o in j["items"]}
            since = j["revision"]
            for _k in range(3):
                time.sleep(0.1)
                latest, ch = changes(api, since)
                assert [c["revision"] for c in ch] == list(range(since + 1, since + 1 + len(ch)))
                for c in ch:
                    if c["op"] == "created":
                        assert c["dbid"] not in state, f"repeated: {c} already in the list"
                        state[c["dbid"]] = c["object"]
                    elif c["op"] == "updated":
                        assert c["dbid"] in state, f"lost: update of an unknown {c}"
                        assert c["object"]["version"] == state[c["dbid"]]["version"] + 1, \
                            f"repeated or lost update: {c} after {state[c['dbid']]}"
                        state[c["dbid"]] = c["object"]
                    else:
                        assert state.pop(c["dbid"], None) is not None, f"lost: {c}"
                if ch:
                    since = ch[-1]["revision"]
    finally:
        stop.set()
        for t in ths:
            t.join(10)
    assert not errors, errors[:5]
    latest, ch = changes(api, since)
    for c in ch:
        if c["op"] == "deleted":
            state.pop(c["dbid"])
        else:
            state[c["dbid"]] = c["object"]
    j = expect(api("GET", "/v1/skills?limit=10000"), 200)
    assert j["revision"] == latest
    assert {o["dbid"]: o for o in j["items"]} == state


def test_history_gone(tenantd, pg):
    """410 for a since older than the retained history.  The worker prunes
    every 60 s; the prune is done here as the worker does it, in SQL."""
    d = config_api_ready(tenantd(config_worker={"history": 5}))
    api = d.api
    s = create(api, "skills", {"name": "h"})
    for i in range(11):
        expect(api("PATCH", f"/v1/skills/{s['dbid']}", {"name": f"h{i}"}), 200)
    assert revision(api) == 13  # 1 is the tenant object
    pg.psql("DELETE FROM cfg_change WHERE revision <= "
            "(SELECT revision FROM cfg_revision) - 5", db="t100")
    for since in (0, 1, 7):
        r = api("GET", f"/v1/changes?since={since}")
        j = expect(r, 410, "Gone")
        assert j.get("oldest") == 9, show(r)
    j = expect(api("GET", "/v1/changes?since=8"), 200)
    assert [c["revision"] for c in j["changes"]] == [9, 10, 11, 12, 13]
    expect(api("GET", "/v1/changes?since=13"), 200)
    # a long poll from too far back is refused at once too
    t0 = time.monotonic()
    expect(api("GET", "/v1/changes?since=2&wait=5"), 410, "Gone")
    assert time.monotonic() - t0 < 2
    # the API goes on
    expect(api("PATCH", f"/v1/skills/{s['dbid']}", {"name": "h-last"}), 200)
    assert [c["revision"] for c in changes(api, 8)[1]] == [9, 10, 11, 12, 13, 14]


@pytest.mark.skipif(not os.environ.get("TENANTD_E2E_SLOW"),
                    reason="waits for the worker's own 60 s prune; set TENANTD_E2E_SLOW=1")
def test_history_pruned_by_worker(tenantd):
    d = config_api_ready(tenantd(config_worker={"history": 5}))
    s = create(d.api, "skills", {"name": "h"})
    for i in range(9):
        expect(d.api("PATCH", f"/v1/skills/{s['dbid']}", {"name": f"h{i}"}), 200)
    wait_for(lambda: d.api("GET", "/v1/changes?since=0").status == 410, 75, interval=1,
             what="the worker's prune")
    expect(d.api("GET", "/v1/changes?since=0"), 410, "Gone")
    # 11 revisions: the tenant object, the create, 9 patches
    assert d.api("GET", "/v1/changes?since=0").json["oldest"] == 7
    assert [c["revision"] for c in changes(d.api, 6)[1]] == [7, 8, 9, 10, 11]
