#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark 6: the outbound worker's outbox relay (workers/outbound/outbox.c)
empties N rows of ocs_outbox into Kafka (librdkafka's mock cluster,
tools/kafkamock), beside a plain librdkafka producer (kcat -P, idempotent,
acks=all) sending the same N messages to the same kind of cluster.

  outbox_bench.py BIN [--rows 3000000] [--rounds 3] [--no-check]

BIN is build/tenantd; the relay runs alone in test/bench/outbox_relay.c
(built here with cc against BIN's libcommon.a), as the worker runs it:
its own PostgreSQL connections and advisory lock, reads of 10,000 rows in
seq order, one idempotent producer, delivered rows cleared (partitions
truncated once all they hold was delivered).  The table is made as the
worker's migration 1 made it, then migration 2 (printed by outbox_relay
-m) partitions it, as on an upgraded database.  Both sides
are timed from process start to exit, pinned to core 0; PostgreSQL and
kafkamock run on core 1.  The ratio is the reference's time over the
relay's (goal 0.5).  The rows are many (3 million) so that each side lasts
seconds: with 200,000 kcat was done in a quarter of a second, mostly its
start, and the ratio mostly measured the noise.

Before the rounds, unless --no-check: the first round's topic is read back
(every row once, each key in seq order, the table empty), and a second
check takes Kafka down for 3 s while rows are being written and a second
relay competes for the lock: every row reaches Kafka, each key's first
occurrences in seq order, and only one relay relayed.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import benchlib as bl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import kafkahelp  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYS = 1000
TABLE = ("CREATE TABLE ocs_outbox (seq bigserial PRIMARY KEY, id uuid NOT NULL, "
         "key text NOT NULL, value text NOT NULL, "
         "created timestamptz NOT NULL DEFAULT now())")


def build_relay(tenantd, tmp):
    build = os.path.dirname(tenantd)
    lib = os.path.join(build, "libcommon.a")
    if not os.path.exists(lib):
        raise bl.BenchError(f"{lib} not found (make builds it)")
    out = os.path.join(tmp, "outbox_relay")
    pkgs = "libevent libpq hiredis rdkafka jansson libconfig libcrypt"
    cflags = subprocess.run(["pkg-config", "--cflags"] + pkgs.split(),
                            capture_output=True, text=True, check=True).stdout.split()
    libs = subprocess.run(["pkg-config", "--libs"] + pkgs.split(),
                          capture_output=True, text=True, check=True).stdout.split()
    r = subprocess.run(["cc", "-O2", "-g", "-std=gnu11", "-D_GNU_SOURCE",
                        "-I" + os.path.join(REPO, "common"),
                        "-I" + os.path.join(REPO, "workers", "outbound")] + cflags +
                       ["-o", out, os.path.join(REPO, "test/bench/outbox_relay.c"),
                        os.path.join(REPO, "workers/outbound/outbox.c"), lib] + libs +
                       ["-lpthread", "-lm"], capture_output=True, text=True)
    if r.returncode != 0:
        raise bl.BenchError("cannot build outbox_relay:\n" + r.stderr)
    return out


def relay_conf(tmp, name, pg, brokers, topic):
    path = os.path.join(tmp, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"""tenant = {{ id = "{bl.TENANT_ID}"; name = "{bl.TENANT_NAME}"; }};
log = {{ level = "info"; file = "{tmp}/{name}.log"; }};
postgres = {{ conninfo = "{pg.conninfo}"; }};
kafka = {{ brokers = "{brokers}"; }};
workers = {{
  metrics = {{ listen = "127.0.0.1:{bl.closed_port()}"; }};
  outbound = {{ enabled = false; kafka_topic = "{topic}"; }};
}};
""")
    return path


def messages(first, n):
    """(key, value) of rows first..first+n-1: ~200-byte JSON values."""
    for i in range(first, first + n):
        key = f"{i % KEYS}:{(i * 7) % KEYS}"
        v = {"id": str(uuid.uuid4()), "type": "attempt", "time": 1700000000000 + i,
             "tenant": bl.TENANT_ID, "phase": "finished", "n": i, "k": key,
             "campaignGroup": 17, "callingList": i % KEYS, "callResult": 33}
        yield key, json.dumps(v, separators=(",", ":"))


def insert(db, first, n):
    with db.cursor() as cur:
        with cur.copy("COPY ocs_outbox (id, key, value) FROM STDIN") as cp:
            for key, value in messages(first, n):
                cp.write_row((json.loads(value)["id"], key, value))
    db.commit()


def write_data(tmp, n):
    """The n rows once, as COPY text for the table and as kcat's key<TAB>
    value lines: the same keys and values on both sides."""
    rows, lines = os.path.join(tmp, "rows.copy"), os.path.join(tmp, "messages.tsv")
    with open(rows, "w") as fr, open(lines, "w") as fl:
        for key, value in messages(0, n):
            if "\\" in value or "\t" in value or "\t" in key:
                raise bl.BenchError("a value needs escaping: COPY and kcat would differ")
            fr.write(f"{json.loads(value)['id']}\t{key}\t{value}\n")
            fl.write(f"{key}\t{value}\n")
    return rows, lines


def copy_in(db, path):
    with db.cursor() as cur:
        with cur.copy("COPY ocs_outbox (id, key, value) FROM STDIN") as cp:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    cp.write(chunk)
    db.commit()


def table_count(db):
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ocs_outbox")
        n = cur.fetchone()[0]
    db.commit()
    return n


def check_topic(bootstrap, topic, n, dups_ok=False):
    """Every report reached Kafka (once, unless dups_ok), each key's first
    occurrences in seq order.  The mock cluster keeps only the newest
    ~20,000 messages of a partition: beyond that, the count is checked by
    offsets and the order on what it kept."""
    recs = kafkahelp.read_records(bootstrap, topic, count=n, timeout=120)
    held = {}
    for part, off, _, _ in recs:
        held[part] = max(held.get(part, 0), off + 1)
    whole = len(recs) == sum(held.values())
    if not dups_ok and sum(held.values()) != n:
        raise bl.BenchError(f"Kafka holds {sum(held.values())} reports, not {n}")
    first, by_key = {}, {}
    for part, off, key, value in recs:
        m = json.loads(value)
        if m["id"] in first:
            if not dups_ok:
                raise bl.BenchError(f"duplicate report {m['n']}")
            continue
        first[m["id"]] = m["n"]
        if m["k"] != key:
            raise bl.BenchError(f"report {m['n']} has key {key}, not {m['k']}")
        by_key.setdefault(key, []).append(m["n"])
    if whole and sorted(first.values()) != list(range(n)):
        raise bl.BenchError(f"Kafka holds {len(first)} distinct reports of {n}")
    for key, ns in by_key.items():
        if ns != sorted(ns):
            raise bl.BenchError(f"key {key}: reports out of seq order")
    return len(recs) - len(first)


def run_relay(relay, conf, n):
    t0 = time.monotonic()
    p = bl.spawn([relay, conf, str(n)], cpu=bl.SERVER_CPU, name="outbox_relay")
    try:
        rc = p.wait(300)
    except subprocess.TimeoutExpired:
        raise bl.BenchError("the relay did not empty the table in 300 s")
    if rc != 0:
        raise bl.BenchError(f"outbox_relay exited with {rc}")
    return time.monotonic() - t0


def run_kcat(bootstrap, topic, path, n):
    t0 = time.monotonic()
    with open(path, "rb") as f:
        r = subprocess.run(["taskset", "-c", str(bl.SERVER_CPU), "kcat", "-P", "-q",
                            "-b", bootstrap, "-t", topic, "-K", "\t",
                            "-X", "enable.idempotence=true", "-X", "acks=all",
                            "-X", "log_level=3"],
                           stdin=f, capture_output=True, timeout=300)
    t = time.monotonic() - t0
    if r.returncode != 0:
        raise bl.BenchError("kcat: " + r.stderr.decode(errors="replace"))
    return t


def outage_check(relay, tmp, pg, db, n=20000):
    """Rows written while Kafka goes down and comes back, two relays."""
    k = kafkahelp.KafkaMock(topic="outage", partitions=4)
    bl.at_cleanup(k.stop)
    confs = [relay_conf(tmp, f"outage{i}", pg, k.bootstrap, "outage") for i in (1, 2)]
    procs = [bl.spawn([relay, c], cpu=bl.SERVER_CPU, name="outbox_relay") for c in confs]
    writer_err = []

    def writer():
        try:
            for first in range(0, n, 500):
                insert(db2, first, 500)
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            writer_err.append(e)

    import psycopg
    db2 = psycopg.connect(pg.conninfo)
    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.3)
    k.down()
    time.sleep(3)
    k.up()
    t.join()
    db2.close()
    if writer_err:
        raise bl.BenchError(f"writer: {writer_err[0]!r}")
    bl.wait_for(lambda: table_count(db) == 0, 60, 0.1, "the outage table to empty")
    dups = check_topic(k.bootstrap, "outage", n, dups_ok=True)
    for p in procs:
        bl.stop_proc(p, "outbox_relay")
    logs = [open(os.path.join(tmp, f"outage{i}.log")).read() for i in (1, 2)]
    relays = sum("this instance relays" in lg for lg in logs)
    if relays != 1:
        raise bl.BenchError(f"{relays} relays took the lock")
    if not any("every broker is down" in lg for lg in logs):
        raise bl.BenchError("the relay did not log that Kafka went down")
    k.stop()
    print(f"check: outage of 3 s with 2 relays: {n} reports in order per key, "
          f"{dups} duplicates, one relay", flush=True)


def bench():
    ap = argparse.ArgumentParser()
    ap.add_argument("tenantd")
    ap.add_argument("--rows", type=int, default=3000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args()
    import psycopg

    tmp = bl.tempdir("tenantd-bench-outbox-")
    relay = build_relay(os.path.abspath(a.tenantd), tmp)
    pg = bl.PgServer()
    db = psycopg.connect(pg.conninfo, autocommit=True)
    with db.cursor() as cur:
        cur.execute(TABLE)
        cur.execute(subprocess.run([relay, "-m"], capture_output=True, text=True,
                                   check=True).stdout)
    rows, data = write_data(tmp, a.rows)
    print(f"== 6. outbox relay: {a.rows:,} reports from ocs_outbox to Kafka "
          f"(mock cluster) vs kcat -P (idempotent, acks=all); load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if not a.no_check:
        outage_check(relay, tmp, pg, db)
    relay_t, ref_t = [], []
    for rnd in range(a.rounds):
        k = kafkahelp.KafkaMock(topic="reports", partitions=4, cpu=bl.LOADGEN_CPU)
        bl.at_cleanup(k.stop)
        copy_in(db, rows)
        with db.cursor() as cur:
            cur.execute("VACUUM ANALYZE ocs_outbox")
        conf = relay_conf(tmp, f"relay{rnd}", pg, k.bootstrap, "reports")
        rt = run_relay(relay, conf, a.rows)
        if table_count(db) != 0:
            raise bl.BenchError("rows left in ocs_outbox")
        if rnd == 0 and not a.no_check:
            check_topic(k.bootstrap, "reports", a.rows)
            print(f"check: {a.rows:,} reports in Kafka, once each (by offsets), "
                  "in seq order per key (what the mock kept)", flush=True)
        k.stop()
        k = kafkahelp.KafkaMock(topic="reports", partitions=4, cpu=bl.LOADGEN_CPU)
        bl.at_cleanup(k.stop)
        ft = run_kcat(k.bootstrap, "reports", data, a.rows)
        k.stop()
        relay_t.append(rt)
        ref_t.append(ft)
        print(f"  round {rnd + 1}: relay {rt:.2f} s ({a.rows / rt:,.0f}/s), "
              f"kcat {ft:.2f} s ({a.rows / ft:,.0f}/s), ratio {ft / rt:.2f}; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rr = a.rows / bl.median(relay_t)
    fr = a.rows / bl.median(ref_t)
    ratio = rr / fr
    print(f"  median: relay {rr:,.0f} reports/s, kcat {fr:,.0f} messages/s, "
          f"ratio {ratio:.2f} (goal 0.5)", flush=True)
    bl.result_line("outbox relay (reports/s)", "msg/s", bl.fmt_num(rr), bl.fmt_num(fr),
                   f"{ratio:.2f}", ">= 0.5", ratio >= 0.5)


if __name__ == "__main__":
    sys.exit(bl.main_wrapper(bench, time_limit=600))
