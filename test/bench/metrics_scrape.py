#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark 1: /metrics scrape throughput with about 1,000 series.

tenantd runs with only its metrics worker and TENANTD_BENCH_SERIES=1000
(PostgreSQL and Redis point at closed loopback ports: a scrape does not
need them).  The reference is nginx 1.22 serving the very bytes of one
tenantd scrape from memory (`set $bN '...'` chunks + `return 200`), checked
byte for byte before anything is measured.  Both servers are pinned to
core 0, wrk -t1 -c50 to core 1; rounds alternate reference and tenantd.

usage: metrics_scrape.py TENANTD_BINARY [--rounds 3] [--duration 5]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

SERIES = 1000
CHUNK = 3900            # bytes of escaped text per nginx parameter (< 4096)


def nginx_escape(raw):
    """Text for a single-quoted nginx parameter that is also an nginx
    complex value: backslash and quote are escaped for the tokenizer, and
    every '$' becomes ${dollar} (a geo variable whose value is a literal
    '$'), so no byte of the body can start a variable."""
    s = raw.decode("latin-1")       # byte-transparent
    return (s.replace("\\", "\\\\").replace("'", "\\'")
            .replace("$", "${dollar}"))


def chunks(body):
    """Split body into pieces whose escaped form stays under CHUNK bytes."""
    out, cur, cur_len = [], [], 0
    for line in body.splitlines(keepends=True):
        # One line may itself be too long: cut it in byte slices.
        pieces = [line[i:i + 512] for i in range(0, len(line), 512)]
        for p in pieces:
            e = nginx_escape(p)
            if cur_len + len(e) > CHUNK and cur:
                out.append("".join(cur))
                cur, cur_len = [], 0
            cur.append(e)
            cur_len += len(e)
    if cur:
        out.append("".join(cur))
    return out


def nginx_set_return(body):
    parts = chunks(body)
    sets = "".join(f"      set $b{i} '{p}';\n" for i, p in enumerate(parts))
    ret = "".join(f"$b{i}" for i in range(len(parts)))
    block = f"""  geo $dollar {{
    default "$";
  }}
  server {{
    listen 127.0.0.1:@PORT@ reuseport backlog=511;
    default_type "{B.METRICS_CTYPE}";
    location = /metrics {{
{sets}      return 200 "{ret}";
    }}
  }}
"""
    return block, len(parts)


def nginx_static_file(body, prefix_hint):
    block = f"""  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 3600s;
  server {{
    listen 127.0.0.1:@PORT@ reuseport backlog=511;
    default_type "{B.METRICS_CTYPE}";
    location = /metrics {{
      alias {prefix_hint}/metrics.txt;
    }}
  }}
"""
    return block


def start_reference(body):
    """nginx answering body on /metrics; returns (port, how, pid)."""
    block, n = nginx_set_return(body)
    prefix, conf, port = B.nginx_prefix(block, master_process=False)
    how = f"nginx 1.22 `set` x{n} + `return 200` from memory"
    try:
        proc = B.start_nginx(prefix, conf, port)
    except B.BenchError as e:
        print(f"NOTE: set/return reference failed ({e}); falling back to a "
              "static file with open_file_cache", flush=True)
        d = B.tempdir("tenantd-bench-static-")
        with open(os.path.join(d, "metrics.txt"), "wb") as f:
            f.write(body)
        prefix, conf, port = B.nginx_prefix(nginx_static_file(body, d))
        proc = B.start_nginx(prefix, conf, port)
        how = "nginx 1.22 static file + open_file_cache (FALLBACK)"
    st, hdr, got = B.http_get(port, "/metrics")
    if st != 200 or got != body:
        where = next((i for i, (a, b) in enumerate(zip(got, body)) if a != b),
                     min(len(got), len(body)))
        raise B.BenchError(
            f"nginx does not serve the same bytes: status {st}, {len(got)} vs "
            f"{len(body)} bytes, first difference at byte {where}: "
            f"{got[max(0, where - 40):where + 40]!r} vs "
            f"{body[max(0, where - 40):where + 40]!r}")
    if hdr.get("content-type") != B.METRICS_CTYPE:
        raise B.BenchError(f"nginx Content-Type is {hdr.get('content-type')!r}")
    return port, how, proc.pid


def run(args):
    B.pin_self(B.LOADGEN_CPU)
    print(f"== 1. /metrics scrape throughput (TENANTD_BENCH_SERIES={SERIES}; "
          f"wrk -t1 -c50 -d{args.duration}s on core {B.LOADGEN_CPU}, "
          f"servers on core {B.SERVER_CPU})", flush=True)
    print(B.busy_note(), flush=True)
    t = B.Tenantd(args.binary, f"host=127.0.0.1 port={B.closed_port()} "
                  "dbname=t100 user=tenantd connect_timeout=2",
                  B.closed_port(), env_extra={"TENANTD_BENCH_SERIES": str(SERIES)})
    wpid = t.worker_pid()
    for pid in (t.master_pid, wpid):
        B.taskset_pid(pid, B.SERVER_CPU)
        if B.affinity(pid) != {B.SERVER_CPU}:
            raise B.BenchError(f"pid {pid} is not pinned to core {B.SERVER_CPU}")
    st, hdr, body = B.http_get(t.port, "/metrics")
    if st != 200:
        raise B.BenchError(f"tenantd /metrics answered {st}")
    series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
    if series < SERIES:
        raise B.BenchError(f"only {series} series: TENANTD_BENCH_SERIES ignored?")
    print(f"   tenantd: master pid {t.master_pid}, metrics worker pid {wpid}, "
          f"{series} series, {len(body)}-byte body, Content-Type "
          f"{hdr.get('content-type')!r}", flush=True)

    nport, how, npid = start_reference(body)
    if B.affinity(npid) != {B.SERVER_CPU}:
        raise B.BenchError(f"nginx pid {npid} is not pinned to core {B.SERVER_CPU}")
    print(f"   reference: {how}; body verified byte for byte "
          f"({len(body)} bytes)", flush=True)

    servers = [("nginx", nport, npid), ("tenantd", t.port, wpid)]
    for name, port, _ in servers:        # warm up caches and connections
        B.wrk(port, "/metrics", duration=1)
    res = {"nginx": [], "tenantd": []}
    cpu = {"nginx": [], "tenantd": []}
    busy = {"nginx": [], "tenantd": [], "wrk": []}
    print(f"   {'round':<6}{'nginx req/s':>12}{'tenantd req/s':>15}"
          f"{'nginx lat':>11}{'tenantd lat':>13}{'nginx CPU/req':>15}"
          f"{'tenantd CPU/req':>17}", flush=True)
    for r in range(1, args.rounds + 1):
        row = {}
        for name, port, pid in servers:
            w = B.wrk(port, "/metrics", duration=args.duration, server_pid=pid)
            if w["non2xx"] or w["errors"]:
                raise B.BenchError(f"{name}: {w['non2xx']} non-2xx answers and "
                                   f"{w['errors']} socket errors:\n{w['raw']}")
            res[name].append(w["rps"])
            cpu[name].append(w["cpu_us"])
            busy[name].append(w["server_busy"])
            busy["wrk"].append(w["wrk_busy"])
            row[name] = w
        print(f"   {r:<6}{row['nginx']['rps']:>12,.0f}{row['tenantd']['rps']:>15,.0f}"
              f"{row['nginx']['latency_avg']:>11}{row['tenantd']['latency_avg']:>13}"
              f"{row['nginx']['cpu_us']:>13.1f}us{row['tenantd']['cpu_us']:>15.1f}us",
              flush=True)
    # The worker must still be the one we pinned (no crash during the load).
    if t.worker_pid() != wpid:
        raise B.BenchError("the metrics worker was restarted during the benchmark")
    mn, mt = B.median(res["nginx"]), B.median(res["tenantd"])
    ratio = mt / mn
    for name in ("nginx", "tenantd"):
        xs = res[name]
        print(f"   {name:<8} median {B.median(xs):>10,.0f} req/s   "
              f"min {min(xs):>10,.0f}   max {max(xs):>10,.0f}   "
              f"server CPU {B.median(cpu[name]):.1f} us/request (median)",
              flush=True)
    eff = B.median(cpu["nginx"]) / B.median(cpu["tenantd"])
    print(f"   CPU busy (median share of a core): nginx "
          f"{B.median(busy['nginx']):.0%}, tenantd {B.median(busy['tenantd']):.0%}, "
          f"wrk {B.median(busy['wrk']):.0%}", flush=True)
    if B.median(busy["wrk"]) > 0.9:
        print("   NOTE: wrk saturates its core, so req/s is capped by the load "
              "generator for the faster server; the CPU/request figures compare "
              "the servers", flush=True)
    print(f"   CPU efficiency nginx us/req / tenantd us/req: {eff:.2f} "
          "(informative; insensitive to the load generator)", flush=True)
    ok = ratio >= 0.5
    print(f"   ratio tenantd/nginx (medians): {ratio:.2f}   goal >= 0.50: "
          f"{'met' if ok else 'MISSED'}", flush=True)
    print(f"   ({mt * len(body) / 1e6:,.0f} MB/s of metrics text from tenantd)",
          flush=True)
    B.result_line(f"metrics scrape ({series} series, {len(body) // 1024} KiB)",
                  "req/s",
                  f"{mt:,.0f}", f"{mn:,.0f}", f"{ratio:.2f}", ">= 0.50", ok)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--time-limit", type=int, default=120,
                    help="seconds before it gives up (and cleans up)")
    args = ap.parse_args()
    return B.main_wrapper(lambda: run(args), time_limit=args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
