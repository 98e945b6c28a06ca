#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""dialler_bench - records leased, dialled and finished per second by the
outbound worker, beside pgbench doing the same PostgreSQL work per record,
both in this run; prints both rates and the ratio.  Goal: ratio >= 0.7.

    dialler_bench.py /abs/path/to/tenantd [--records 200000]
        [--channels 500] [--warmup 5] [--duration 20] [--batch N]

tenantd: a calling list of --records records and an agentless campaign
group (ProgressiveGVP, numOfChannels --channels, so agents are not the
limit) dialling against build/voicesim whose customers all answer at once
(--outbound-mix answer=100 --outbound-ring 0:0); each answered call is
routed to the group's IVR DN and its record finished.  Measured: records
whose status became Updated (3) in the table over --duration s, after
--warmup s.

Reference: pgbench -c 1 -M extended (one statement at a time, unnamed, as
the worker's libpq client sends them) running, per transaction of the
script, the worker's own lease statement (read from workers/outbound/dial.c
at run time) for a batch of B records with one outbox INSERT per record,
then per record the outcome transaction: the outcome UPDATE, the chain
UPDATE and three outbox INSERTs; B is the worker's mean lease batch in
this run (pg_stat_statements), against an identical table and an
outbox-like table, for the same duration.

It also prints where the time went: CPU of the outbound worker, voicesim,
Redis and PostgreSQL over the window; for each side, how much of a
record's wall time PostgreSQL spent running statements and waiting inside
a transaction for the client's next statement (pg_stat_database); and the
worker's statements by total time (pg_stat_statements) beside pgbench's.

The module also holds what predictive_bench.py shares with it: tenantd with
the config and outbound workers, the tenant's config objects, voicesim,
psql on the tenant's database, and a small Redis client.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

import benchlib as B

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
GOAL = 0.7
OWNER_REF = "bench-ref"


# ------------------------------------------------------------ shared plumbing

class ObTenantd:
    """tenantd with its config and outbound workers (Kafka: the in-worker
    mock); `outbound` adds keys to workers.outbound."""

    def __init__(self, binary, pg, redis_port, outbound=None, log_level="info"):
        self.dir = B.tempdir("tenantd-bench-dial-")
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
        extra = "".join(f"\n    {k} = {v};" for k, v in (outbound or {}).items())
        text, n1 = re.subn(r'config = \{ enabled = false; listen = "[^"]*"; \};',
                           f'config = {{ listen = "127.0.0.1:{self.api}"; }};',
                           text)
        text, n2 = re.subn(r'outbound = \{\n    enabled = false;\n    listen = "[^"]*";',
                           f'outbound = {{\n    listen = "127.0.0.1:{self.ob}";'
                           + extra, text)
        text, n3 = re.subn(r'level = "info";', f'level = "{log_level}";', text)
        if n1 != 1 or n2 != 1 or n3 != 1:
            raise B.BenchError("benchlib.tenantd_conf changed: cannot enable "
                               "the config and outbound workers in it")
        text += f'security = {{\n  admin_token_file = "{tf}";\n}};\n'
        self.conf = os.path.join(self.dir, "tenantd.conf")
        B.write_conf(binary, self.conf, text)
        self.log = os.path.join(self.dir, "tenantd.log")
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        B.at_cleanup(self.stderr.close)
        self.proc = B.spawn([binary, "-c", self.conf], stderr=self.stderr,
                            name="tenantd")
        B.wait_for(lambda: self.call(self.ob, "GET", "/v1/dnc/1")[0] == 404,
                   30, what="the outbound worker")

    def alive(self):
        if self.proc.poll() is not None:
            raise B.BenchError(f"tenantd exited with {self.proc.returncode}:\n"
                               + self.log_tail())

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def call(self, port, method, path, body=None, ctype="application/json",
             timeout=30):
        self.alive()
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

    def group_cmd(self, dbid, cmd, body=None):
        st, data = self.call(self.ob, "POST", f"/v1/campaign-groups/{dbid}/{cmd}",
                             json.dumps(body) if body is not None else None)
        if st != 200:
            raise B.BenchError(f"campaign group {dbid} {cmd}: {st} {data[:300]!r}")
        return json.loads(data)

    def group(self, dbid):
        st, data = self.call(self.ob, "GET", f"/v1/campaign-groups/{dbid}")
        if st != 200:
            raise B.BenchError(f"GET campaign group {dbid}: {st} {data[:300]!r}")
        return json.loads(data)

    def health(self):
        st, _, body = B.http_get(self.port, "/tenant/health", timeout=3)
        if st != 200:
            raise B.BenchError(f"/tenant/health answered {st}")
        return json.loads(body)

    def worker_pid(self, name):
        return int(self.health()["workers"][name]["pid"])

    def metrics(self):
        st, _, body = B.http_get(self.port, "/metrics", timeout=3)
        out = {}
        for ln in body.decode(errors="replace").splitlines():
            if ln and not ln.startswith("#"):
                k, _, v = ln.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out


def psql_db(pg, sql, db="t100"):
    """psql -At on the tenant's database as postgres; stdout."""
    r = subprocess.run(B._as_postgres([f"{B.PG_BIN}/psql", "-X", "-q", "-v",
                                       "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                       "-p", str(pg.port), "-U", "postgres",
                                       "-d", db, "-At", "-F", "|", "-c", sql]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        raise B.BenchError(f"psql {sql[:200]!r}: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def pg_with_statements():
    """benchlib's PostgreSQL, restarted with pg_stat_statements loaded."""
    pg = B.PgServer()
    pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    r = subprocess.run(["taskset", "-c", str(B.LOADGEN_CPU)] + B._as_postgres(
        [f"{B.PG_BIN}/pg_ctl", "-D", pg.data, "-l", os.path.join(pg.dir, "pg.log"),
         "-w", "-t", "60", "restart"]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    if r.returncode != 0:
        raise B.BenchError("pg_ctl restart failed:\n" + r.stdout.decode(errors="replace"))
    psql_db(pg, "CREATE EXTENSION pg_stat_statements")
    return pg


def pg_cpu_s(pg):
    """CPU seconds of every process of the PostgreSQL cluster."""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        pm = int(f.readline())
    total = B.proc_cpu_s(pm)
    for pid in B.children_of(pm):
        try:
            total += B.proc_cpu_s(pid)
        except OSError:
            pass
    return total


def db_times(pg):
    """Seconds the tenant database's sessions have spent running
    statements, and waiting inside a transaction for the client's next one
    (pg_stat_database; a busy backend reports about once a second)."""
    a, i = psql_db(pg, "SELECT active_time, idle_in_transaction_time FROM "
                   "pg_stat_database WHERE datname = 't100'").strip().split("|")
    return float(a) / 1000, float(i) / 1000


def statements(pg, user):
    """pg_stat_statements of a role: [(calls, rows, total ms, query)],
    most total time first."""
    out = psql_db(pg, "SELECT s.calls, s.rows, round(s.total_exec_time::numeric "
                  "+ s.total_plan_time::numeric, 1), "
                  "regexp_replace(s.query, '\\s+', ' ', 'g') "
                  "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                  f"WHERE r.rolname = '{user}' ORDER BY 3 DESC")
    rows = []
    for ln in out.splitlines():
        c, n, t, q = ln.split("|", 3)
        rows.append((int(c), int(n), float(t), q))
    return rows


def reset_statements(pg):
    psql_db(pg, "SELECT pg_stat_statements_reset()")


class Voicesim:
    """build/voicesim beside the tenantd binary, on the load generator's
    core; stop() returns its log (the last line sums the calls up)."""

    def __init__(self, binary, conf, args, name="voicesim", cpu=B.LOADGEN_CPU):
        vs = os.path.join(os.path.dirname(binary), "voicesim")
        if not os.access(vs, os.X_OK):
            raise B.BenchError(f"{vs} is not built (make)")
        self.log = os.path.join(os.path.dirname(conf), f"{name}.log")
        self.f = open(self.log, "wb")
        B.at_cleanup(self.f.close)
        self.proc = B.spawn([vs, "-c", conf] + list(args), cpu=cpu,
                            stdout=self.f, stderr=self.f, name=name)
        self.pid = self.proc.pid

    def alive(self):
        if self.proc.poll() is not None:
            raise B.BenchError(f"voicesim exited with {self.proc.returncode}:\n"
                               + self.text()[-3000:])

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        B.stop_proc(self.proc, "voicesim", signal.SIGTERM)
        return self.text()


class Redis:
    """A minimal RESP client (the standard library only)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def cmd(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._read()

    def _read(self):
        ln = self.f.readline()
        if not ln:
            raise B.BenchError("redis closed the connection")
        t, rest = ln[:1], ln[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise B.BenchError(f"redis: {rest.decode()}")
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise B.BenchError(f"redis: bad reply {ln!r}")

    def xrange_all(self, key, start="-", count=5000):
        """Every entry of a stream: [(id str, {field: bytes})]."""
        out = []
        while True:
            batch = self.cmd("XRANGE", key, start, "+", "COUNT", count)
            for eid, fields in batch:
                out.append((eid.decode(), {fields[i].decode(): fields[i + 1]
                                           for i in range(0, len(fields), 2)}))
            if len(batch) < count:
                return out
            ms, sq = out[-1][0].split("-")
            start = f"{ms}-{int(sq) + 1}"


def voice_key(name):
    return f"tenantd:{{{B.TENANT_ID}}}:voice:{name}"


def wait_voice(redis, vs):
    """Until voicesim's heartbeat is in Redis (it knows the DNs)."""
    r = Redis(redis.port)
    try:
        B.wait_for(lambda: (vs.alive(), r.cmd("EXISTS", voice_key("heartbeat"))
                            == 1)[1], 30, interval=0.2,
                   what="voicesim's heartbeat")
    finally:
        r.close()
    time.sleep(1.5)     # the worker sees the link up at its next tick


# ------------------------------------------------------------ the SQL of dial.c

def _c_calls(src, fn):
    """The argument text of every call of fn( ... ) in C source (balanced
    parentheses, strings skipped)."""
    out = []
    for m in re.finditer(re.escape(fn) + r"\(", src):
        i, depth, start = m.end(), 1, m.end()
        while i < len(src) and depth:
            ch = src[i]
            if ch == '"':
                i += 1
                while src[i] != '"':
                    i += 2 if src[i] == "\\" else 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            i += 1
        out.append(src[start:i - 1])
    return out


def _leading_literal(args):
    """The first argument of a call when it is a run of C string literals,
    joined."""
    parts = []
    pos = 0
    for m in re.finditer(r'\s*"((?:[^"\\]|\\.)*)"', args):
        if m.start() != pos:
            break
        parts.append(m.group(1))
        pos = m.end()
    return "".join(parts).replace('\\"', '"') if parts else None


CUST_A = ("AND NOT EXISTS (SELECT 1 FROM ocs_dnc e "
          "WHERE e.kind = 2 AND e.value = c.")
CUST_B = "::text) "


def dial_sql():
    """The lease, outcome and chain statements of the dialler (dial.c and
    the files beside it in workers/outbound/) and the outbox INSERT of
    outbox.c, as the source has them now.  A source that cannot be read
    or parsed stops the benchmark: a copy kept here would go stale and
    measure statements the worker no longer runs."""
    found = {}
    dial = outbox = ""
    src = os.path.join(REPO, "workers", "outbound")
    try:
        for name in sorted(os.listdir(src)):
            if name.endswith(".c"):
                with open(os.path.join(src, name)) as f:
                    text = f.read()
                if name == "outbox.c":
                    outbox = text
                else:
                    dial += text
    except OSError:
        pass
    for args in _c_calls(dial, "xasprintf"):
        lit = _leading_literal(args)
        if lit is None:
            continue
        if "SET record_status = 2, lease_owner = $1" in lit:
            found["lease"] = lit
        elif "lease_owner = NULL, lease_until = NULL WHERE record_id = $1" in lit:
            found["outcome"] = lit
        elif "SET record_status = 7 WHERE chain_id = $1" in lit:
            found["chain"] = lit
    m = re.search(r'SQL_PUT[^"]*"((?:[^"\\]|\\.)*)"', outbox)
    if m:
        found["put"] = m.group(1)
    read = (len(found) == 4 and CUST_A in dial.replace('"\n\t    "', "")
            .replace('" "', "") and "%2$s%3$s%4$s" in found["lease"])
    if not read:
        raise B.BenchError("the dialler's statements could not be read from "
                           "workers/outbound/*.c: dial_sql() must follow them")
    return found


# ------------------------------------------------------------ the benchmark

def build_tenant(d, n_channels):
    """The config objects: an agentless campaign group on one list."""
    c = d.create
    sw = c("switches", {"name": "sw1"})
    orig = c("dns", {"number": "6500", "type": "TrunkGroup", "switch": sw})
    ivr = c("dns", {"number": "6600", "type": "RoutingPoint", "switch": sw})
    ag = c("agent-groups", {"name": "IVR", "members": []})
    tz = c("time-zones", {"name": "UTC", "tzName": "UTC"})
    fld = c("fields", {"name": "customer_id", "dataType": "varchar", "length": 32})
    fmt = c("formats", {"name": "F1", "fields": [fld]})
    lst = c("calling-lists", {"name": "L1", "format": fmt, "tableName": "cl_bench",
                              "timeFrom": 0, "timeUntil": 86399, "maxAttempts": 3,
                              "timeZone": tz})
    camp = c("campaigns", {"name": "C1", "callingLists": [
        {"callingList": lst, "share": 10}]})
    grp = c("campaign-groups", {"name": "CG1", "campaign": camp, "group": ag,
                                "dialMode": "ProgressiveGVP", "origDN": orig,
                                "ivrDN": ivr, "numOfChannels": n_channels})
    return {"list": lst, "group": grp, "tz": tz, "camp": camp}


def fill(pg, table, n, start=1):
    psql_db(pg, f"INSERT INTO {table} (record_id, contact_info, chain_id, "
            f"customer_id) SELECT i, '+1555' || lpad(i::text, 7, '0'), i, "
            f"'C' || i FROM generate_series({start}, {start + n - 1}) i")


def wait_table(pg, table, what):
    B.wait_for(lambda: psql_db(pg, "SELECT count(*) FROM information_schema."
                               f"columns WHERE table_name = '{table}' AND "
                               "column_name = 'customer_id'").strip() == "1",
               30, interval=0.2, what=what)


def finished(pg, table):
    return int(psql_db(pg, f"SELECT count(*) FROM {table} WHERE "
                       "record_status = 3").strip())


def pgbench_script(sql, table, batch):
    """One transaction of the script: a lease of batch records with their
    dialed reports, then each record's outcome transaction."""
    def params(q, names):
        for i in range(len(names), 0, -1):
            q = q.replace(f"${i}", names[i - 1])
        return q
    lease = sql["lease"].replace("%1$s", table).replace(
        "%2$s", CUST_A).replace("%3$s", "customer_id").replace("%4$s", CUST_B)
    lease = params(lease, [":owner", ":until", ":now", ":cid", ":gid", ":ids",
                           ":sods", ":lz", ":batch"])
    put = sql["put"].replace("ocs_outbox", "ref_outbox")
    outcome = params(sql["outcome"].replace("%s", table),
                     [":rid", ":owner", ":status", ":res", "NULL", "''",
                      "NULL"])
    chain = params(sql["chain"].replace("%s", table), [":rid", ":rid"])
    lines = ["BEGIN;", lease + ";"]
    lines += [params(put, ["gen_random_uuid()", ":key", ":vdial"]) + ";"] * batch
    lines.append("COMMIT;")
    for k in range(1, batch + 1):
        lines += [f"\\set rid :base + {k}", "BEGIN;", outcome + ";", chain + ";",
                  params(put, ["gen_random_uuid()", ":key", ":vfin"]) + ";",
                  params(put, ["gen_random_uuid()", ":key", ":vrec"]) + ";",
                  params(put, ["gen_random_uuid()", ":key", ":vchain"]) + ";",
                  "COMMIT;"]
    lines.append("\\set base :base + :batch")
    return "\n".join(lines) + "\n"


def report_values(tid):
    """Reports of about the size the worker writes."""
    att = {"id": "00000000-0000-4000-8000-000000000000", "type": "attempt",
           "time": 1764000000000, "tenant": tid, "phase": "dialed",
           "attemptGuid": "3f2b8c1e-9d4a-4c6b-8e2f-1a2b3c4d5e6f",
           "campaignGroup": 12, "campaign": 11, "callingList": 9,
           "recordId": 123456, "chainId": 123456, "phone": "+15550123456",
           "attempt": 1, "dialMode": "ProgressiveGVP",
           "connId": "a1b2c30000012345"}
    fin = dict(att, phase="finished", callResult=33, callResultName="Answer",
               duration=0.012, dn="6600")
    rec = {"id": att["id"], "type": "record", "time": att["time"], "tenant": tid,
           "callingList": 9, "record_id": 123456, "chain_id": 123456,
           "record_status": 3, "call_result": 33, "attempt": 1,
           "treatments": "", "treatment": "None"}
    chn = {"id": att["id"], "type": "chain", "time": att["time"], "tenant": tid,
           "callingList": 9, "chainId": 123456, "recordStatus": 3,
           "callResult": 33}
    return [json.dumps(v, separators=(",", ":")) for v in (att, fin, rec, chn)]


def run_pgbench(pg, d, script, duration, ids, sods, lz, batch, base, cpu_pg,
                dbt=None):
    path = os.path.join(d.dir, "dial.pgb")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(d.dir, 0o755)
    os.chmod(path, 0o644)
    vd, vf, vr, vc = report_values(B.TENANT_ID)
    now = int(time.time())
    argv = ["taskset", "-c", str(B.SERVER_CPU), f"{B.PG_BIN}/pgbench", "-n",
            "-M", "extended", "-c", "1", "-j", "1", "-T", str(duration),
            "-h", "127.0.0.1", "-p", str(pg.port), "-U", "tenantd",
            "-f", path, "-D", f"owner={OWNER_REF}",
            "-D", f"until={(now + 86400) * 1000}", "-D", f"now={now}",
            "-D", "cid=1", "-D", "gid=1", "-D", f"ids={ids}", "-D", f"sods={sods}",
            "-D", f"lz={lz}", "-D", f"batch={batch}", "-D", f"base={base}",
            "-D", "status=3", "-D", "res=33",
            "-D", "key=9:1", "-D", f"vdial={vd}", "-D", f"vfin={vf}",
            "-D", f"vrec={vr}", "-D", f"vchain={vc}", "t100"]
    c0 = pg_cpu_s(pg)
    db0 = db_times(pg)
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=duration + 120)
    el = time.monotonic() - t0
    cpu_pg.append(pg_cpu_s(pg) - c0)
    if dbt is not None:
        dbt.append([b - a for a, b in zip(db0, db_times(pg))])
    out = r.stdout.decode(errors="replace")
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    if r.returncode != 0 or not m:
        raise B.BenchError(f"pgbench failed (exit {r.returncode}):\n{out[-3000:]}")
    m2 = re.search(r"duration: (\d+) s", out)
    return int(m.group(1)), float(m2.group(1)) if m2 else el, out


def wait_line(times, records, secs, client):
    """Where a record's wall time went on the PostgreSQL side."""
    act, idle = (t / records * 1e6 for t in times)
    return (f"per record: {secs / records * 1e6:,.0f} us of wall time, of which "
            f"PostgreSQL ran statements {act:,.0f} us and waited inside a "
            f"transaction for {client}'s next statement {idle:,.0f} us "
            f"(pg_stat_database, all sessions)")


def top(rows, n=6, width=110):
    out = []
    for calls, nrows, ms, q in rows[:n]:
        out.append(f"     {ms:9.0f} ms  {calls:7d} calls  {nrows:8d} rows  "
                   f"{q[:width]}")
    return "\n".join(out)


def run(args):
    binary = os.path.abspath(args.binary)
    print("== dialler: records leased, dialled and finished per second "
          "(outbound worker vs pgbench with the same statements)", flush=True)
    print(B.busy_note(), flush=True)
    sql = dial_sql()
    print("   statements: read from workers/outbound/*.c", flush=True)
    pg = pg_with_statements()
    redis = B.RedisServer()
    d = ObTenantd(binary, pg, redis.port)
    ids = build_tenant(d, args.channels)
    wait_table(pg, "cl_bench", "the calling list's table")
    fill(pg, "cl_bench", args.records)
    # ocs_outbox is partitioned (its primary keys are its partitions'):
    # the reference's outbox is one plain table like a partition, its
    # primary key on seq, as the reference had before.
    psql_db(pg, "CREATE TABLE ref (LIKE cl_bench INCLUDING ALL); "
            "CREATE TABLE ref_outbox (LIKE ocs_outbox_0 INCLUDING INDEXES "
            "INCLUDING CONSTRAINTS); CREATE SEQUENCE ref_outbox_seq OWNED BY "
            "ref_outbox.seq; ALTER TABLE ref_outbox ALTER seq SET DEFAULT "
            "nextval('ref_outbox_seq'), ALTER created SET DEFAULT now(); "
            "ALTER TABLE ref OWNER TO tenantd; ALTER TABLE ref_outbox OWNER "
            "TO tenantd")
    fill(pg, "ref", args.records)
    psql_db(pg, "ANALYZE")
    vs = Voicesim(binary, d.conf, ["--outbound-mix", "answer=100",
                                   "--outbound-ring", "0:0",
                                   "--outbound-patience", str(args.patience),
                                   "--log-level", "info"], cpu=B.SERVER_CPU)
    wait_voice(redis, vs)
    d.group_cmd(ids["group"], "load")
    d.group_cmd(ids["group"], "start")
    B.wait_for(lambda: (vs.alive(), finished(pg, "cl_bench") > 0)[1], 30,
               interval=0.5, what="the first record finished")
    time.sleep(args.warmup)
    obpid = d.worker_pid("outbound")
    rp = redis.proc.pid
    reset_statements(pg)
    n0 = finished(pg, "cl_bench")
    cpu0 = (B.proc_cpu_s(obpid), B.proc_cpu_s(vs.pid), B.proc_cpu_s(rp),
            pg_cpu_s(pg))
    m0 = d.metrics()
    db0 = db_times(pg)
    t0 = time.monotonic()
    time.sleep(args.duration)
    n1 = finished(pg, "cl_bench")
    el = time.monotonic() - t0
    db1 = db_times(pg)
    cpu1 = (B.proc_cpu_s(obpid), B.proc_cpu_s(vs.pid), B.proc_cpu_s(rp),
            pg_cpu_s(pg))
    m1 = d.metrics()
    d.alive()
    vs.alive()
    ob_rows = statements(pg, "tenantd")
    rate = (n1 - n0) / el
    if n1 - n0 <= 0:
        raise B.BenchError("tenantd finished no record in the window:\n"
                           + d.log_tail())
    dialed = (m1.get("tenantd_outbound_calls_dialed_total", 0)
              - m0.get("tenantd_outbound_calls_dialed_total", 0))
    lease = [r for r in ob_rows if "lease_owner = $1" in r[3]
             and "SKIP LOCKED" in r[3]]
    lcalls = sum(r[0] for r in lease)
    lrows = sum(r[1] for r in lease)
    mean_batch = lrows / lcalls if lcalls else 0
    batch = args.batch or max(1, round(mean_batch))
    d.group_cmd(ids["group"], "stop")
    vtext = vs.stop()
    vsum = [ln for ln in vtext.splitlines() if "predictive calls" in ln]
    cpus = [(b - a) / el for a, b in zip(cpu0, cpu1)]

    print(f"   tenantd: {n1 - n0:,} records finished in {el:.1f} s after a "
          f"{args.warmup} s warm-up: {rate:,.0f} records/s "
          f"({dialed / el:,.0f} calls/s placed, by the metric)", flush=True)
    print(f"   lease statements: {lcalls} in the window, {mean_batch:.1f} "
          f"records each on average (numOfChannels {args.channels})")
    print(f"   CPU share of a core over the window: outbound worker "
          f"{cpus[0]:.0%}, voicesim {cpus[1]:.0%}, redis {cpus[2]:.0%}, "
          f"PostgreSQL {cpus[3]:.0%} (the worker and voicesim on core 0, PostgreSQL and Redis on core 1)")
    print(f"   CPU per record: worker {cpus[0] / rate * 1e6:,.0f} us, PostgreSQL "
          f"{cpus[3] / rate * 1e6:,.0f} us")
    print("   " + wait_line([b - a for a, b in zip(db0, db1)], n1 - n0, el,
                            "the worker"))
    res = psql_db(pg, "SELECT call_result, count(*) FROM cl_bench WHERE "
                  "record_status = 3 GROUP BY 1 ORDER BY 2 DESC").split()
    print("   call results of the finished records (code|count): "
          + ", ".join(res) + " (33 Answer: routed to the IVR DN)")
    if vsum:
        print("   voicesim: " + vsum[-1].split("msg=")[-1].strip('"'))
    print("   the worker's statements by total time (pg_stat_statements, "
          "the window):")
    print(top(ob_rows))

    # The reference, on the other table; the rows it starts from are the
    # lowest Ready ones, in order: its ids are consecutive.
    tz = ids["tz"]
    sod = int(time.time()) % 86400
    script = pgbench_script(sql, "ref", batch)
    cpu_pg, dbt = [], []
    run_pgbench(pg, d, script, 2, f"{{{tz}}}", f"{{{sod}}}", tz, batch, 0,
                cpu_pg)                                         # warm-up
    base = int(psql_db(pg, "SELECT coalesce(max(record_id), 0) FROM ref "
                       "WHERE record_status = 3").strip())
    reset_statements(pg)
    before = finished(pg, "ref")
    txns, secs, out = run_pgbench(pg, d, script, args.duration, f"{{{tz}}}",
                                  f"{{{sod}}}", tz, batch, base, cpu_pg, dbt)
    after = finished(pg, "ref")
    ref_rows = statements(pg, "tenantd")
    left = int(psql_db(pg, "SELECT count(*) FROM ref WHERE record_status = 2"
                       ).strip())
    if after - before != txns * batch or left:
        raise B.BenchError(f"pgbench's work does not add up: {txns} "
                           f"transactions of {batch}, {after - before} records "
                           f"finished, {left} still leased")
    ref_rate = (after - before) / secs
    ratio = rate / ref_rate
    print(f"   pgbench: {after - before:,} records finished in {secs:.0f} s "
          f"({txns} script runs of {batch} records): {ref_rate:,.0f} "
          f"records/s; PostgreSQL {cpu_pg[-1] / secs:.0%} of a core, "
          f"{cpu_pg[-1] / (after - before) * 1e6:,.0f} us per record")
    print("   " + wait_line(dbt[-1], after - before, secs, "pgbench"))
    print("   pgbench's statements by total time:")
    print(top(ref_rows))
    if args.explain:
        lease = pgbench_script(sql, "ref", batch).split("\n")[1]
        for k, v in ((":owner", f"'{OWNER_REF}'"), (":until", "0"),
                     (":now", str(int(time.time()))), (":cid", "1"),
                     (":gid", "1"), (":ids", f"'{{{tz}}}'"),
                     (":sods", f"'{{{sod}}}'"), (":lz", str(tz)),
                     (":batch", str(batch))):
            lease = lease.replace(k, v)
        print("   EXPLAIN (ANALYZE, BUFFERS) of one lease of the reference's "
              f"table ({args.records} records):")
        plan = psql_db(pg, "BEGIN; EXPLAIN (ANALYZE, BUFFERS) "
                       + lease.rstrip(";") + "; ROLLBACK")
        print("\n".join("     " + ln for ln in plan.splitlines()))
    ok = ratio >= GOAL
    print(f"   => tenantd {rate:,.0f} records/s, pgbench {ref_rate:,.0f} "
          f"records/s, ratio {ratio:.2f} (goal >= {GOAL}: "
          f"{'met' if ok else 'MISSED'})", flush=True)
    B.result_line("outbound dialler, records/s", "records/s", f"{rate:,.0f}",
                  f"{ref_rate:,.0f}", f"{ratio:.2f}", f">= {GOAL}", ok)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--channels", type=int, default=500)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--patience", type=float, default=1.0,
                    help="voicesim's --outbound-patience: how long a call "
                    "routed to the IVR DN lives on in voicesim")
    ap.add_argument("--explain", action="store_true",
                    help="print EXPLAIN ANALYZE of one lease at the end")
    ap.add_argument("--batch", type=int, default=0,
                    help="pgbench's lease batch (default: the worker's mean)")
    args = ap.parse_args()
    B.pin_self(B.LOADGEN_CPU)
    return B.main_wrapper(lambda: run(args), time_limit=360)


if __name__ == "__main__":
    sys.exit(main())
