# SPDX-License-Identifier: Apache-2.0
"""Shared plumbing for the tenantd benchmarks (test/bench/).

Standard library only (Debian's /usr/bin/python3).  Everything runs on
loopback, on free ports, in temporary directories; every process started
here is registered and stopped when the script ends, by a normal exit, an
exception, SIGTERM/SIGINT/SIGHUP (run.sh's trap, or `timeout`), and, for
the processes that stay our children, also when this script is SIGKILLed
(PR_SET_PDEATHSIG).
"""

import ctypes
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SERVER_CPU = 0          # the server under test (tenantd or the reference)
LOADGEN_CPU = 1         # wrk, and the Python poller
PG_BIN = "/usr/lib/postgresql/15/bin"
NGINX = "/usr/sbin/nginx"
TENANT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
TENANT_NAME = "t100"
METRICS_CTYPE = "text/plain; version=0.0.4; charset=utf-8"

_cleanups = []          # callables, run last-in first-out
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    """A benchmark could not run as intended: fail loudly."""


# ------------------------------------------------------------ life cycle

def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def install_signal_handlers():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)


def at_cleanup(fn):
    _cleanups.append(fn)
    return fn


def cleanup():
    """Run every registered cleanup once, newest first; never raises."""
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while _cleanups:
            fn = _cleanups.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - go on cleaning
                print(f"bench: cleanup: {e!r}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, old)


def _on_alarm(signum, frame):
    raise BenchError("time limit reached")


def main_wrapper(fn, time_limit=240):
    """Run fn() with signal handling, a time limit and cleanup; map errors
    to exit 1."""
    install_signal_handlers()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(time_limit)
    try:
        return fn() or 0
    except BenchError as e:
        print(f"BENCH FAILED: {e}", flush=True)
        return 1
    finally:
        signal.alarm(0)
        cleanup()


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    at_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def pin_self(cpu):
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


def _child_setup():
    # Die with this script even if it is SIGKILLed.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv, cpu=SERVER_CPU, env=None, stdout=None, stderr=None, name=None):
    """Start argv pinned to cpu (taskset, so that its children inherit it)
    and register its stop.  Returns the Popen."""
    full = ["taskset", "-c", str(cpu)] + list(argv) if cpu is not None else list(argv)
    p = subprocess.Popen(full, env=env, stdin=subprocess.DEVNULL,
                         stdout=stdout or subprocess.DEVNULL,
                         stderr=stderr or subprocess.DEVNULL,
                         preexec_fn=_child_setup)
    at_cleanup(lambda: stop_proc(p, name or argv[0]))
    return p


def stop_proc(p, name, sig=signal.SIGTERM, timeout=10):
    if p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"bench: {name} (pid {p.pid}) ignored signal {sig}; killing it",
              file=sys.stderr)
        p.kill()
        p.wait(5)


def taskset_pid(pid, cpu):
    subprocess.run(["taskset", "-pc", str(cpu), str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def affinity(pid):
    return os.sched_getaffinity(pid)


def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        if int(rest[1]) == ppid and rest[0] != "Z":
            out.append(int(d))
    return out


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port with nobody listening (for dependencies that must
    be unreachable)."""
    return free_port()


def wait_for(pred, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last!r})" if last else ""
            raise BenchError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def http_get(port, path, timeout=3.0):
    """GET on a fresh connection: (status, headers{lower: value}, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


# ------------------------------------------------------------ statistics

def median(xs):
    return statistics.median(xs)


def percentile(xs, p):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def fmt_num(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def result_line(name, unit, tenantd, reference, ratio, goal, ok):
    """The one line per benchmark that run.sh collects for its summary:
    appended to $BENCH_RESULTS when run.sh set it, else printed."""
    line = (f"{name}|{unit}|{tenantd}|{reference}|{ratio}|{goal}|"
            f"{'met' if ok else 'MISSED'}\n")
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with open(path, "a") as f:
            f.write(line)
    else:
        print("RESULT|" + line, end="", flush=True)


# ------------------------------------------------------------ wrk

_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_WRK_LAT = re.compile(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", re.M)
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_ERR = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                      r"timeout (\d+)")
_WRK_REQS = re.compile(r"^\s+(\d+) requests in", re.M)


def proc_cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    rest = data[data.rfind(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def busy_note():
    """A line saying how busy the machine was before a benchmark."""
    la = float(loadavg())
    note = f"   load average (1 min) before it: {la:.2f}"
    if la > 0.5:
        note += ("  -- other processes are busy on this 2-core machine; "
                 "figures are noisy")
    return note


def wrk(port, path, duration=5, conns=50, cpu=LOADGEN_CPU, server_pid=None):
    """wrk -t1 -cN -dDs on cpu; returns dict(rps, requests, latency_avg,
    non2xx, errors; cpu_us: server CPU time per request and server_busy:
    its share of one core, when server_pid is given; wrk_busy: wrk's share
    of its core).  Raises BenchError when wrk fails or nothing got through."""
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{conns}",
            f"-d{duration}s", "--timeout", "5s",
            f"http://127.0.0.1:{port}{path}"]
    c0 = proc_cpu_s(server_pid) if server_pid else 0
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=duration + 30)
    elapsed = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c1 = proc_cpu_s(server_pid) if server_pid else 0
    wrk_cpu = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / elapsed
    out = r.stdout.decode(errors="replace")
    m = _WRK_RPS.search(out)
    if r.returncode != 0 or not m:
        raise BenchError(f"wrk failed (exit {r.returncode}):\n{out}")
    non2xx = int(_WRK_NON2XX.search(out).group(1)) if _WRK_NON2XX.search(out) else 0
    em = _WRK_ERR.search(out)
    errors = sum(int(x) for x in em.groups()) if em else 0
    lat = _WRK_LAT.search(out)
    reqs = int(_WRK_REQS.search(out).group(1)) if _WRK_REQS.search(out) else 0
    return {"rps": float(m.group(1)), "requests": reqs,
            "cpu_us": (c1 - c0) * 1e6 / reqs if reqs else 0.0,
            "server_busy": (c1 - c0) / elapsed, "wrk_busy": wrk_cpu,
            "latency_avg": lat.group(1) if lat else "?",
            "non2xx": non2xx, "errors": errors, "raw": out}


# ------------------------------------------------------------ tenantd

def tenantd_conf(tmpdir, metrics_port, pg_conninfo, redis_port, kafka="127.0.0.1:1"):
    """A configuration of the shape of conf/tenantd.conf: only the metrics
    worker enabled, logging to a file."""
    return f"""# written by test/bench
tenant = {{
  id = "{TENANT_ID}";
  name = "{TENANT_NAME}";
}};
log = {{
  level = "info";
  format = "logfmt";
  file = "{tmpdir}/tenantd.log";
}};
postgres = {{
  conninfo = "{pg_conninfo}";
}};
redis = {{
  host = "127.0.0.1";
  port = {redis_port};
}};
kafka = {{
  brokers = "{kafka}";
}};
supervisor = {{
  heartbeat_interval = 1.0;
  heartbeat_timeout = 10.0;
  stop_timeout = 10.0;
  restart_delay_max = 30.0;
  throttle_delay = 1.0;
}};
workers = {{
  metrics = {{ listen = "127.0.0.1:{metrics_port}"; }};
  config = {{ enabled = false; listen = "127.0.0.1:{closed_port()}"; }};
  events = {{ enabled = false; listen = "127.0.0.1:{closed_port()}"; }};
  stats = {{ enabled = false; listen = "127.0.0.1:{closed_port()}"; }};
  outbound = {{
    enabled = false;
    listen = "127.0.0.1:{closed_port()}";
    interaction_server = "127.0.0.1:{closed_port()}";
  }};
  routing = {{ enabled = false; listen = "127.0.0.1:{closed_port()}"; }};
}};
"""


def write_conf(binary, path, text):
    """write_conf - text into path, checked by tenantd -t (BenchError if
    refused: a bench must not measure a tenantd that did not start)"""
    with open(path, "w") as f:
        f.write(text)
    chk = subprocess.run([binary, "-t", "-c", path],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if chk.returncode != 0:
        raise BenchError("tenantd -t rejects the generated config:\n"
                         + chk.stdout.decode(errors="replace"))


class Tenantd:
    """One tenantd master (and its metrics worker) pinned to SERVER_CPU."""

    def __init__(self, binary, pg_conninfo, redis_port, env_extra=None,
                 name="tenantd"):
        self.binary = binary
        self.dir = tempdir("tenantd-bench-")
        self.port = free_port()
        self.log = os.path.join(self.dir, "tenantd.log")
        self.conf = os.path.join(self.dir, "tenantd.conf")
        write_conf(binary, self.conf, tenantd_conf(self.dir, self.port,
                                                   pg_conninfo, redis_port))
        env = dict(os.environ)
        env.update(env_extra or {})
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        at_cleanup(self.stderr.close)
        self.proc = spawn([binary, "-c", self.conf], env=env, stderr=self.stderr,
                          name=name)
        self.master_pid = self.proc.pid     # taskset exec()s tenantd
        wait_for(self._answers, 15, what=f"tenantd metrics port {self.port}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise BenchError(f"tenantd exited with {self.proc.returncode}:\n"
                             + self.log_text()[-3000:])
        return self.health()["workers"]["metrics"]["state"] == "ready"

    def health(self):
        import json
        st, _, body = http_get(self.port, "/tenant/health", timeout=2)
        if st != 200:
            raise BenchError(f"/tenant/health answered {st}")
        return json.loads(body)

    def worker_pid(self):
        return int(self.health()["workers"]["metrics"]["pid"])

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# ------------------------------------------------------------ PostgreSQL, Redis

def _as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


class PgServer:
    """A throw-away PostgreSQL 15 cluster on a free loopback port, with role
    tenantd and database t100; pinned to LOADGEN_CPU so that it does not
    share the core of the server under test."""

    def __init__(self, cpu=LOADGEN_CPU):
        self.dir = tempdir("tenantd-bench-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=t100 user=tenantd"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)
        r = subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A",
                                         "trust", "-U", "postgres", "--no-sync",
                                         "-E", "UTF8"]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise BenchError("initdb failed:\n" + r.stdout.decode(errors="replace"))
        opts = (f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        at_cleanup(self.stop)
        r = subprocess.run(["taskset", "-c", str(cpu)] + _as_postgres(
            [f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "pg.log"),
             "-o", opts, "-w", "-t", "60", "start"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
        if r.returncode != 0:
            raise BenchError("pg_ctl start failed:\n" + r.stdout.decode(errors="replace"))
        self.psql("CREATE ROLE tenantd LOGIN")
        self.psql("CREATE DATABASE t100 OWNER tenantd")

    def psql(self, sql):
        r = subprocess.run(_as_postgres([f"{PG_BIN}/psql", "-X", "-q", "-v",
                                         "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                                         str(self.port), "-U", "postgres", "-d",
                                         "postgres", "-At", "-c", sql]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise BenchError(f"psql {sql!r}: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m",
                                         "immediate", "-w", "-t", "30", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60)


class RedisServer:
    def __init__(self, cpu=LOADGEN_CPU):
        self.dir = tempdir("tenantd-bench-redis-")
        self.port = free_port()
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind",
                           "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--dir", self.dir, "--logfile",
                           os.path.join(self.dir, "redis.log")],
                          cpu=cpu, name="redis-server")
        wait_for(self.ping, 10, what=f"redis-server on port {self.port}")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False


# ------------------------------------------------------------ nginx

def nginx_prefix(server_block, master_process=False, workers=1):
    """Write an nginx configuration under a fresh prefix; return
    (prefix, conf path, port).  server_block gets {port} formatted in."""
    prefix = tempdir("tenantd-bench-nginx-")
    port = free_port()
    for d in ("logs", "tmp"):
        os.makedirs(os.path.join(prefix, d), exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    head = f"""daemon off;
master_process {'on' if master_process else 'off'};
worker_processes {workers};
pid {prefix}/logs/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{
  worker_connections 1024;
}}
http {{
  access_log off;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  keepalive_requests 1000000;
"""
    with open(conf, "w") as f:
        f.write(head + server_block.replace("@PORT@", str(port)) + "}\n")
    return prefix, conf, port


def start_nginx(prefix, conf, port, name="nginx"):
    t = subprocess.run([NGINX, "-t", "-q", "-p", prefix, "-e",
                        f"{prefix}/logs/error.log", "-c", conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if t.returncode != 0:
        raise BenchError("nginx -t rejects the generated config:\n"
                         + t.stdout.decode(errors="replace"))
    p = spawn([NGINX, "-p", prefix, "-e", f"{prefix}/logs/error.log", "-c", conf],
              name=name)

    def up():
        if p.poll() is not None:
            with open(f"{prefix}/logs/error.log", errors="replace") as f:
                raise BenchError(f"nginx exited with {p.returncode}:\n{f.read()}")
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    wait_for(up, 10, what=f"nginx on port {port}")
    return p
