# SPDX-License-Identifier: Apache-2.0
"""The outbound worker's calling lists over HTTP on port 5050: tables made
from the configuration (and altered when a field is added), imports (CSV,
NDJSON, all or nothing, bad lines with their line numbers), exports,
records read, changed and deleted, the do-not-call list, rights, and two
instances starting together on one database."""

import http.client
import json
import os
import socket
import threading
import time

import psycopg
import pytest

from helpers import free_port, rss_kib, wait_for


def outbound_conf(tenantd, port, **kw):
    return tenantd(config_worker=True, workers__outbound__enabled=True,
                   workers__outbound__listen=f"127.0.0.1:{port}",
                   kafka__brokers="mock", **kw)


class OB:
    def __init__(self, tenantd, pg, **kw):
        self.port = free_port()
        self.d = outbound_conf(tenantd, self.port, **kw)
        self.pg = pg
        wait_for(lambda: self.d.api("GET", "/v1/tenants").status == 200, 20,
                 what="the config API")
        self.token = self.d.admin_token
        # The outbound worker has the configuration and its tables.
        wait_for(lambda: self.req("GET", "/v1/dnc/1")[0] == 404, 20,
                 what="the outbound worker")

    def req(self, method, path, body=None, ctype=None, token="admin",
            headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        tok = self.token if token == "admin" else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            ctype = ctype or "application/json"
        if ctype:
            h["Content-Type"] = ctype
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            j = json.loads(data) if data else None
        except ValueError:
            j = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data, j

    def db(self):
        return psycopg.connect(self.pg.conninfo, autocommit=True)

    def columns(self, table):
        with self.db() as c:
            return [r[0] for r in c.execute(
                "SELECT column_name FROM information_schema.columns WHERE "
                "table_name = %s ORDER BY ordinal_position", (table,))]

    def count(self, table):
        with self.db() as c:
            return c.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def make_list(self, table="cl_one", fields=(("customer_id", "varchar", 32),),
                  fmt=None):
        fids = None
        if fmt is None:
            fids = [self.d.create("fields", {"name": n, "dataType": t,
                                              **({"length": ln} if ln else {})})
                    for n, t, ln in fields]
            fmt = self.d.create("formats", {"name": f"fmt_{table}",
                                             "fields": fids})
        lst = self.d.create("calling-lists", {"name": table, "format": fmt,
                                              "tableName": table})
        wait_for(lambda: self.req("GET", f"/v1/calling-lists/{lst}/records")[0]
                 == 200, 20, what=f"list {table} ready")
        return lst, fmt, fids


MANDATORY = ["record_id", "contact_info", "contact_info_type", "record_type",
             "record_status", "call_result", "attempt", "dial_sched_time",
             "call_time", "daily_from", "daily_till", "tz_dbid", "campaign_id",
             "agent_id", "chain_id", "chain_n", "group_id", "app_id",
             "treatments", "media_ref", "switch_id"]


@pytest.fixture
def ob(tenantd, pg):
    return OB(tenantd, pg)


def test_table_made_and_altered(ob):
    lst, fmt, fids = ob.make_list()
    assert ob.columns("cl_one") == MANDATORY + ["lease_owner", "lease_until",
                                                "customer_id"]
    f2 = ob.d.create("fields", {"name": "score", "dataType": "float"})
    r = ob.d.api("PATCH", f"/v1/formats/{fmt}", {"fields": fids + [f2]})
    assert r.status == 200, r.text
    wait_for(lambda: "score" in ob.columns("cl_one"), 10, what="column added")
    with ob.db() as c:
        idx = {r[0] for r in c.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'cl_one'")}
    assert any("(record_status, dial_sched_time)" in i for i in idx)
    assert any("(chain_id, chain_n)" in i for i in idx)
    assert any("(customer_id)" in i for i in idx)


def test_bad_format_leaves_the_list_unusable(ob):
    f = ob.d.create("fields", {"name": "record_status", "dataType": "int"})
    fmt = ob.d.create("formats", {"name": "badfmt", "fields": [f]})
    lst = ob.d.create("calling-lists", {"name": "bad", "format": fmt,
                                        "tableName": "cl_bad"})
    ob.d.wait_log(r"calling list %d .*unusable" % lst, 10)
    st, _, _, j = ob.req("GET", f"/v1/calling-lists/{lst}/records")
    assert st == 503 and j["error"] == "NotReady"
    assert ob.columns("cl_bad") == []


def test_import_csv_ndjson_export_round_trip(ob):
    lst, fmt, _ = ob.make_list()
    body = ("contact_info,customer_id,record_type,tz_dbid\n"
            "+1 (555) 010-0001,c1,2,\n"
            "\"555.010.0002\",\"c,2\",3,\n")
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", body,
                         "text/csv")
    assert st == 200 and j == {"imported": 2}, j
    nd = "\n".join(json.dumps(x) for x in [
        {"record_id": 10, "contact_info": "5550100010", "chain_id": 1,
         "chain_n": 1},
        {"contact_info": "5550100011", "customer_id": None}]) + "\n"
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", nd,
                         "application/x-ndjson")
    assert st == 200 and j == {"imported": 2}, j
    st, _, data, recs = ob.req("GET", f"/v1/calling-lists/{lst}/records")
    assert st == 200
    # Without a record_id: the numbers after the highest at the start.
    assert [r["record_id"] for r in recs] == [1, 2, 3, 10]
    assert recs[0]["contact_info"] == "+15550100001"
    assert recs[0]["chain_id"] == 1 and recs[1]["chain_id"] == 2
    assert recs[3]["chain_id"] == 1 and recs[3]["chain_n"] == 1
    assert recs[2]["chain_id"] == 3 and recs[2]["customer_id"] is None
    assert recs[1]["customer_id"] == "c,2" and recs[1]["record_type"] == 3
    assert recs[0]["record_status"] == 1 and recs[0]["call_result"] == 28
    assert "lease_owner" not in recs[0]
    # Export: CSV, then NDJSON; the CSV goes back into a second list.
    st, h, data, _ = ob.req("GET", f"/v1/calling-lists/{lst}/export")
    assert st == 200 and h["content-type"].startswith("text/csv")
    lines = data.decode().splitlines()
    assert lines[0] == ",".join(MANDATORY + ["customer_id"])
    assert len(lines) == 5
    st, h, nd, _ = ob.req("GET", f"/v1/calling-lists/{lst}/export?format=ndjson")
    assert st == 200
    assert [json.loads(x) for x in nd.decode().splitlines()] == recs
    lst2, _, _ = ob.make_list("cl_two", fmt=fmt)
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst2}/records", data,
                         "text/csv")
    assert st == 200 and j == {"imported": 4}, j
    assert ob.req("GET", f"/v1/calling-lists/{lst2}/records")[3] == recs


def test_bad_lines_import_nothing(ob):
    lst, _, _ = ob.make_list()
    tz = ob.d.create("time-zones", {"name": "paris", "tzName": "Europe/Paris"})
    body = ("record_id,contact_info,tz_dbid,record_status\n"
            "1,5550001,,1\n"
            "2,555-CALL-NOW,,1\n"
            f"3,5550003,{tz},1\n"
            f"4,5550004,{tz + 1000},1\n"
            "5,5550005,,10\n"
            "\"6\",\"multi\nline\",,1\n"
            "7,5550007\n")
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", body,
                         "text/csv")
    assert st == 422 and j["error"] == "InvalidRecords", j
    got = [(e["line"], e["message"].split(":")[0]) for e in j["errors"]]
    assert got == [(3, "contact_info"), (5, "tz_dbid"), (6, "record_status"),
                   (7, "contact_info"), (9, "2 fields where the header has 4")]
    assert "no TimeZone" in j["errors"][1]["message"]
    assert ob.count("cl_one") == 0
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records",
                         "record_id,phone\n1,2\n", "text/csv")
    assert st == 422 and j["errors"] == [
        {"line": 1, "message": 'unknown column "phone"'}]
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", "",
                         "text/csv")
    assert st == 422
    # A duplicate record_id: PostgreSQL names the COPY line, mapped back.
    body = "record_id,contact_info\n1,5551\n\n2,5552\n1,5553\n"
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", body,
                         "text/csv")
    assert st == 422 and j["errors"][0]["line"] == 5, j
    assert "already exists" in j["errors"][0]["message"]
    assert ob.count("cl_one") == 0


def test_records_get_patch_delete_query(ob):
    lst, _, _ = ob.make_list()
    nd = "".join(json.dumps({"record_id": i, "contact_info": f"55500{i:02d}",
                             "customer_id": f"c{i % 3}",
                             "record_status": 1 + i % 2}) + "\n"
                 for i in range(1, 21))
    assert ob.req("POST", f"/v1/calling-lists/{lst}/records", nd,
                  "application/x-ndjson")[0] == 200
    base = f"/v1/calling-lists/{lst}/records"
    st, _, _, r = ob.req("GET", f"{base}/7")
    assert st == 200 and r["contact_info"] == "5550007"
    assert ob.req("GET", f"{base}/70")[0] == 404
    st, _, _, r = ob.req("PATCH", f"{base}/7", {"contact_info": "+1 555 7",
                                                "dial_sched_time": 1700000000})
    assert st == 200 and r["contact_info"] == "+15557", r
    assert r["dial_sched_time"] == 1700000000
    assert ob.req("PATCH", f"{base}/7", {"lease_owner": "x"})[0] == 422
    assert ob.req("PATCH", f"{base}/7", {"record_type": 99})[0] == 422
    assert ob.req("PATCH", f"{base}/7", "{nope", "application/json")[0] == 400
    # Being dialled: 409 for PATCH and DELETE.
    with ob.db() as c:
        c.execute("UPDATE cl_one SET record_status = 2, lease_owner = 'x', "
                  "lease_until = (extract(epoch FROM now()) * 1000 + 60000)"
                  "::bigint WHERE record_id = 8")
    assert ob.req("PATCH", f"{base}/8", {"attempt": 1})[0] == 409
    assert ob.req("DELETE", f"{base}/8")[0] == 409
    assert ob.req("DELETE", f"{base}/9")[0] == 204
    assert ob.req("DELETE", f"{base}/9")[0] == 404
    st, _, _, rs = ob.req("GET", f"{base}?record_status=2&limit=3")
    assert [r["record_id"] for r in rs] == [1, 3, 5]
    st, _, _, rs = ob.req("GET", f"{base}?record_status=2&after=5&limit=3")
    assert [r["record_id"] for r in rs] == [7, 8, 11]
    st, _, _, rs = ob.req("GET", f"{base}?customer_id=c0")
    assert [r["record_id"] for r in rs] == [3, 6, 12, 15, 18]
    st, _, _, rs = ob.req("GET", f"{base}?contact_info=555-0004")
    assert [r["record_id"] for r in rs] == [4]
    assert ob.req("GET", f"{base}?limit=0")[0] == 400
    assert ob.req("PUT", f"{base}/7")[0] == 405
    assert ob.req("GET", "/v1/nothing")[0] == 404


def test_dnc_single_and_bulk(ob):
    st, _, _, j = ob.req("POST", "/v1/dnc", {"phone": "+1 (555) 123"})
    assert st == 201 and j["value"] == "+1555123", j
    assert ob.req("POST", "/v1/dnc", {"phone": "+1555123"})[0] == 200
    assert ob.req("POST", "/v1/dnc", {"customerId": "cust-9"})[0] == 201
    assert ob.req("POST", "/v1/dnc", {"phone": "call-me"})[0] == 422
    st, _, _, j = ob.req("GET", "/v1/dnc/%2B1555123")
    assert st == 200 and j["kind"] == "phone"
    assert ob.req("GET", "/v1/dnc/cust-9?kind=customer")[0] == 200
    assert ob.req("DELETE", "/v1/dnc/+1555123")[0] == 204
    assert ob.req("GET", "/v1/dnc/+1555123")[0] == 404
    body = "phone,customerId\n" + "".join(f"555{i:06d},\n" for i in range(50000)) \
        + ",cust-1\n5551,\n"
    st, _, _, j = ob.req("POST", "/v1/dnc", body, "text/csv")
    assert st == 200 and j == {"imported": 50002}, j
    with ob.db() as c:
        assert c.execute("SELECT count(*) FROM ocs_dnc").fetchone()[0] == 50003


def test_rights(ob):
    lst, _, _ = ob.make_list()
    p = ob.d.create("persons", {"userName": "reader", "password": "s3cret-pw"})
    ob.d.create("access-groups", {"name": "readers", "members": [p],
                                  "permissions": [{"collection": "calling-lists",
                                                   "rights": ["read"]}]})
    r = ob.d.api("POST", "/v1/auth/token", {"userName": "reader",
                                            "password": "s3cret-pw"}, token=None)
    tok = r.json["token"]
    base = f"/v1/calling-lists/{lst}/records"
    assert ob.req("GET", base, token=tok)[0] == 200
    st, _, _, j = ob.req("POST", base, "contact_info\n5551\n", "text/csv",
                         token=tok)
    assert st == 403 and j["error"] == "Forbidden"
    assert ob.req("GET", "/v1/dnc/5551", token=tok)[0] == 403
    assert ob.req("GET", base, token=None)[0] == 401
    assert ob.req("GET", "/v1/calling-lists/999999/records")[0] == 404


def test_import_100k(ob):
    lst, _, _ = ob.make_list()
    body = "record_id,contact_info,customer_id\n" + "".join(
        f"{i},+1555{i:07d},c{i}\n" for i in range(1, 100001))
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", body,
                         "text/csv", timeout=120)
    assert st == 200 and j == {"imported": 100000}, j
    assert ob.count("cl_one") == 100000
    st, _, data, _ = ob.req("GET", f"/v1/calling-lists/{lst}/export",
                            timeout=120)
    assert st == 200 and data.count(b"\n") == 100001


def export_backends(ob):
    """The worker's COPY connections (a parallel query's workers have the
    same application_name: not counted)."""
    with ob.db() as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                         "application_name = 'tenantd-import' AND "
                         "backend_type = 'client backend'").fetchone()[0]


def small_window_socket(port, rcvbuf):
    """A client socket whose receive buffer, set before connecting, keeps
    the kernel from taking much of what the server sends for it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    return s


def test_slow_export_gets_every_record_in_bounded_memory(tenantd, pg):
    """200,000 records (about 37 MB of CSV) exported to a client that takes
    16 KiB at a time and pauses between reads, with max_output at 1 MiB: the
    worker stops reading COPY TO while the client's backlog is full instead
    of cutting the client off, so it gets every record, and the worker's
    memory does not grow with the list.  A client that reads nothing at all
    is still cut off after the idle timeout, and its export's PostgreSQL
    connection closes."""
    # Under ASan, freed memory is held in quarantine (256 MB) and would be
    # counted as resident: keep it small, so VmRSS shows live memory.
    asan = os.environ.get("ASAN_OPTIONS", "")
    ob = OB(tenantd, pg, workers__outbound__max_output="1m",
            workers__outbound__open_timeout=2.0,
            env={"ASAN_OPTIONS": ":".join(x for x in (
                asan, "quarantine_size_mb=4") if x)})
    lst, _, _ = ob.make_list(fields=(("customer_id", "varchar", 32),
                                     ("note", "varchar", 100)))
    n, note = 200000, "n" * 100
    body = "record_id,contact_info,customer_id,note\n" + "".join(
        f"{i},+1555{i:07d},c{i:031d},{note}\n" for i in range(1, n + 1))
    st, _, _, j = ob.req("POST", f"/v1/calling-lists/{lst}/records", body,
                         "text/csv", timeout=180)
    assert st == 200 and j == {"imported": n}, j
    pid = ob.d.worker_pid("outbound")
    rss0 = peak = rss_kib(pid)
    auth = {"Authorization": f"Bearer {ob.token}"}

    c = http.client.HTTPConnection("127.0.0.1", ob.port, timeout=60)
    c.sock = small_window_socket(ob.port, 65536)
    c.request("GET", f"/v1/calling-lists/{lst}/export", headers=auth)
    r = c.getresponse()
    assert r.status == 200
    got, lines, last, t0, sampled = 0, 0, b"", time.monotonic(), 0.0
    while True:
        data = r.read(16384)    # IncompleteRead if the client is cut off
        if not data:
            break
        got += len(data)
        lines += data.count(b"\n")
        last = (last + data)[-200:]
        time.sleep(0.002)
        if time.monotonic() - sampled > 0.1:
            peak = max(peak, rss_kib(pid))
            sampled = time.monotonic()
    took = time.monotonic() - t0
    c.close()
    assert lines == n + 1, f"{lines - 1} records of {n}"
    assert last.endswith(f"c{n:031d},{note}\n".encode()), last
    grown = peak - rss0
    print(f"slow export: {got} bytes in {took:.1f} s, worker RSS "
          f"{rss0} KiB -> peak {peak} KiB (+{grown} KiB)")
    assert got > 32 * 2 ** 20 and took > 3, (got, took)
    assert grown < 16 * 1024, \
        f"the worker grew by {grown} KiB for a {got // 1024} KiB export"

    # A client that reads nothing: cut off once it has taken nothing for
    # open_timeout (2 s), and its COPY's connection goes.
    s = small_window_socket(ob.port, 4096)
    s.sendall(f"GET /v1/calling-lists/{lst}/export HTTP/1.1\r\n"
              f"Host: x\r\nAuthorization: Bearer {ob.token}\r\n\r\n"
              .encode())
    wait_for(lambda: export_backends(ob) == 1, 10, what="the export running")
    t1 = time.monotonic()
    wait_for(lambda: export_backends(ob) == 0, 15,
             what="the stalled export ended")
    assert time.monotonic() - t1 > 1, "cut before its idle timeout"
    assert rss_kib(pid) - rss0 < 16 * 1024
    seen = b""
    try:
        while chunk := s.recv(65536):
            seen += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert seen.startswith(b"HTTP/1.1 200 ") and not seen.endswith(
        b"\r\n0\r\n\r\n"), "the stalled client got a whole export"
    assert ob.d.worker_pid("outbound") == pid, "the outbound worker restarted"


def test_two_instances_start_together(tenantd, pg):
    a = OB(tenantd, pg)
    lst, fmt, _ = a.make_list("cl_shared")
    ports = [free_port(), free_port()]
    ds = []
    for p in ports:
        ds.append(outbound_conf(tenantd, p, start=False))
    ts = [threading.Thread(target=d.start) for d in ds]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for d in ds:
        d.wait_log(r"table \"cl_shared\" ready|calling list", 30)
    for d in [a.d] + ds:
        assert "level=error" not in d.log_text()
        assert "not made yet" not in d.log_text()
