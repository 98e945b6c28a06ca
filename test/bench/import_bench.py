#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""import_bench - 1,000,000 records into a calling list through the
outbound worker's real port (POST /v1/calling-lists/{dbid}/records,
text/csv, streamed into COPY), beside `psql \\copy` of the same file into
an identical table as the reference, both in this run; prints both times
and the ratio.  Goal: under 60 s, and within 3x of psql.

    import_bench.py /abs/path/to/tenantd [records]
"""

import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time

import benchlib as B

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
GOAL_S = 60.0


class OutboundTenantd:
    """tenantd with its config and outbound workers (Kafka: the mock)."""

    def __init__(self, binary, pg, redis_port):
        self.dir = B.tempdir("tenantd-bench-import-")
        self.port = B.free_port()
        self.api = B.free_port()
        self.ob = B.free_port()
        self.token = "tk-" + secrets.token_hex(20)
        tf = os.path.join(self.dir, "admin.token")
        with open(tf, "w") as f:
            f.write(self.token + "\n")
        os.chmod(tf, 0o600)
        text = B.tenantd_conf(self.dir, self.port, pg.conninfo, redis_port,
                              kafka="mock")
        text, n1 = re.subn(r'config = \{ enabled = false; listen = "[^"]*"; \};',
                           f'config = {{ listen = "127.0.0.1:{self.api}"; }};',
                           text)
        text, n2 = re.subn(r'outbound = \{\n    enabled = false;\n    listen = "[^"]*";',
                           f'outbound = {{\n    listen = "127.0.0.1:{self.ob}";',
                           text)
        if n1 != 1 or n2 != 1:
            raise B.BenchError("benchlib.tenantd_conf changed: cannot enable "
                               "the config and outbound workers in it")
        text += f'security = {{\n  admin_token_file = "{tf}";\n}};\n'
        conf = os.path.join(self.dir, "tenantd.conf")
        with open(conf, "w") as f:
            f.write(text)
        self.log = os.path.join(self.dir, "tenantd.log")
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        B.at_cleanup(self.stderr.close)
        self.proc = B.spawn([binary, "-c", conf], stderr=self.stderr,
                            name="tenantd")
        B.wait_for(lambda: self.call(self.ob, "GET", "/v1/dnc/1")[0] == 404,
                   30, what="the outbound worker")

    def call(self, port, method, path, body=None, ctype="application/json",
             timeout=30):
        if self.proc.poll() is not None:
            raise B.BenchError(f"tenantd exited with {self.proc.returncode}")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        h = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            h["Content-Type"] = ctype
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def create(self, coll, obj):
        st, data = self.call(self.api, "POST", f"/v1/{coll}", json.dumps(obj))
        if st != 201:
            raise B.BenchError(f"POST /v1/{coll}: {st} {data[:200]!r}")
        return json.loads(data)["dbid"]


def write_csv(path):
    with open(path, "w") as f:
        f.write("record_id,contact_info,record_type,chain_id,chain_n,"
                "customer_id\n")
        for i in range(1, N + 1):
            f.write(f"{i},+1555{i:07d},2,{i},0,cust{i}\n")


def body_chunks(path):
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return
            yield b


def run():
    pg = B.PgServer()
    redis = B.RedisServer()
    d = OutboundTenantd(os.path.abspath(sys.argv[1]), pg, redis.port)
    fid = d.create("fields", {"name": "customer_id", "dataType": "varchar",
                              "length": 32})
    fmt = d.create("formats", {"name": "bench", "fields": [fid]})
    lst = d.create("calling-lists", {"name": "bench", "format": fmt,
                                     "tableName": "cl_bench"})
    path = f"/v1/calling-lists/{lst}/records"
    B.wait_for(lambda: d.call(d.ob, "GET", path)[0] == 200, 30,
               what="the list's table")
    csv = os.path.join(d.dir, "records.csv")
    write_csv(csv)
    size = os.path.getsize(csv)
    # The reference: the same table, empty, filled by psql \copy.
    subprocess.run(B._as_postgres([f"{B.PG_BIN}/psql", "-X", "-q", "-h",
                                   "127.0.0.1", "-p", str(pg.port), "-U",
                                   "postgres", "-d", "t100", "-c",
                                   "CREATE TABLE ref (LIKE cl_bench INCLUDING "
                                   "ALL)"]), check=True)
    os.chmod(d.dir, 0o755)
    os.chmod(csv, 0o644)
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", d.ob, timeout=300)
    c.putrequest("POST", path)
    c.putheader("Authorization", f"Bearer {d.token}")
    c.putheader("Content-Type", "text/csv")
    c.putheader("Content-Length", str(size))
    c.endheaders()
    for b in body_chunks(csv):
        c.send(b)
    r = c.getresponse()
    ans = r.read()
    t_ob = time.monotonic() - t0
    if r.status != 200 or json.loads(ans) != {"imported": N}:
        raise B.BenchError(f"import answered {r.status}: {ans[:300]!r}")
    cols = "record_id,contact_info,record_type,chain_id,chain_n,customer_id"
    t0 = time.monotonic()
    subprocess.run(B._as_postgres([f"{B.PG_BIN}/psql", "-X", "-q", "-h",
                                   "127.0.0.1", "-p", str(pg.port), "-U",
                                   "postgres", "-d", "t100", "-c",
                                   f"\\copy ref ({cols}) FROM '{csv}' "
                                   "WITH (FORMAT csv, HEADER)"]), check=True)
    t_ref = time.monotonic() - t0
    ratio = t_ob / t_ref
    print(f"import of {N} records ({size / 1e6:.0f} MB of CSV): tenantd "
          f"{t_ob:.2f} s ({N / t_ob:,.0f} records/s), psql \\copy {t_ref:.2f} s, "
          f"ratio {ratio:.2f}", flush=True)
    B.result_line(f"outbound import {N} records", "s", f"{t_ob:.2f}",
                  f"{t_ref:.2f}", f"{ratio:.2f}", f"< {GOAL_S:.0f} s",
                  t_ob < GOAL_S)


if __name__ == "__main__":
    sys.exit(B.main_wrapper(run, time_limit=600))
