# SPDX-License-Identifier: Apache-2.0
"""Helpers for the tenantd end-to-end tests: real PostgreSQL and Redis
servers on free loopback ports, a tenantd process wrapper, polling, config
rendering (libconfig syntax) and small /proc utilities.

Everything here talks to tenantd only as a client or an operator would:
through its ports, its signals, its log and /proc.
"""

import copy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG_BIN = "/usr/lib/postgresql/15/bin"
TENANT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
TENANT_NAME = "t100"
_DEFAULT = object()   # "argument not given" (config API token)

# Text that must never appear in a daemon's log or stderr.
CRASH_PATTERNS = [
    "AddressSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "Segmentation fault",
    "SIGSEGV",
    "SIGABRT",
    "assertion",
]


def tenantd_bin():
    """The binary under test: $TENANTD_BIN, else build/tenantd."""
    b = os.environ.get("TENANTD_BIN") or os.path.join(REPO_ROOT, "build", "tenantd")
    return os.path.abspath(b)


_ports_given = set()


def free_port():
    """A loopback TCP port nobody listens on right now, and not one this
    test run handed out before: two calls in a row (the metrics and config
    ports of one daemon) must not get the same port from the kernel."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no fresh free port")


def port_open(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def rss_kib(pid):
    """A process's resident memory (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; return that value.

    Raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report last
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def http_get(url_base, path, timeout=3.0, method="GET", body=None):
    """(status, headers{lower-case name: value}, body text)."""
    m = re.match(r"http://([^:/]+):(\d+)$", url_base)
    host, port = m.group(1), int(m.group(2))
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        return r.status, headers, data.decode("utf-8", "replace")
    finally:
        c.close()


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_of(ppid):
    """pids whose parent is ppid (zombies included)."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid:
            out.append(pid)
    return out


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


# ---------------------------------------------------------------- libconfig

def _render_value(v, ind):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        s = repr(v)
        return s if ("." in s or "e" in s) else s + ".0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{\n" + _render_group(v, ind + "  ") + ind + "}"
    if isinstance(v, (list, tuple)):
        items = [_render_value(x, ind + "  ") for x in v]
        if v and isinstance(v[0], dict):
            return "(\n" + ",\n".join(ind + "  " + i for i in items) + "\n" + ind + ")"
        return "[ " + ", ".join(items) + " ]"
    raise TypeError(f"cannot render {v!r} as libconfig")


def _render_group(d, ind):
    out = ""
    for k, v in d.items():
        if v is None:
            continue
        out += f"{ind}{k} = {_render_value(v, ind)};\n"
    return out


def render_conf(d):
    """Render a nested dict as a libconfig file.  None values are omitted."""
    return "# written by the tenantd e2e tests\n" + _render_group(d, "")


def merge(base, over):
    """Deep-merge over into a copy of base; None in over deletes a key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def dotted(overrides):
    """{"log.level": "debug"} or {"log__level": "debug"} -> nested dict."""
    out = {}
    for key, v in overrides.items():
        parts = key.replace("__", ".").split(".")
        cur = out
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return out


# ---------------------------------------------------------------- PostgreSQL

def _as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class PgServer:
    """A throw-away PostgreSQL 15 cluster on a free loopback port."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tenantd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "pg.log")
        self.port = free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=t100 user=tenantd"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)
        r = subprocess.run(
            _as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
                          "-U", "postgres", "--no-sync", "-E", "UTF8"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout.decode(errors="replace"))
        self.running = False
        self.start()
        self.psql("CREATE ROLE tenantd LOGIN")
        self.reset_db()

    def start(self):
        if self.running:
            return
        opts = (f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        r = subprocess.run(
            _as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.logfile,
                          "-o", opts, "-w", "-t", "60", "start"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed:\n" + r.stdout.decode(errors="replace")
                               + "\n" + self.log_tail())
        self.running = True

    def stop(self, mode="fast"):
        if not self.running:
            return
        subprocess.run(
            _as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                          "-t", "60", "stop"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90)
        self.running = False

    def psql(self, sql, db="postgres"):
        r = subprocess.run(
            _as_postgres([f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          "-d", db, "-At", "-c", sql]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    def reset_db(self):
        """An empty database t100 owned by tenantd (created once; afterwards
        emptied of everything tenantd created, which is much faster)."""
        import psycopg
        admin = f"host=127.0.0.1 port={self.port} user=postgres connect_timeout=10"
        with psycopg.connect(admin + " dbname=postgres", autocommit=True) as c:
            exists = c.execute("SELECT 1 FROM pg_database WHERE datname = 't100'").fetchone()
            if not exists:
                c.execute("CREATE DATABASE t100 OWNER tenantd")
                return
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = 't100' AND pid <> pg_backend_pid()")
        with psycopg.connect(admin + " dbname=t100", autocommit=True) as c:
            c.execute("DROP OWNED BY tenantd CASCADE")

    def log_tail(self, n=30):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def destroy(self):
        self.stop(mode="immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- Redis

class RedisServer:
    """A redis-server on a free loopback port, restartable on the same port."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tenantd-redis-")
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if self.running:
            return
        self.logfile = os.path.join(self.dir, "redis.log")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", self.logfile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.ping(), 10, what=f"redis-server on port {self.port}")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args):
        """Send one command; return the raw reply bytes."""
        msg = f"*{len(args)}\r\n".encode()
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            msg += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(msg)
            return s.recv(65536)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        wait_for(lambda: not port_open(self.port), 5, what="redis port to close")

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- tenantd

class ChildWatcher(threading.Thread):
    """Records every pid seen as a child of the master while it runs."""

    def __init__(self, master_pid, interval=0.05):
        super().__init__(daemon=True)
        self.master_pid = master_pid
        self.interval = interval
        self.seen = {}          # pid -> first cmdline seen
        self._halt = threading.Event()
        self.lock = threading.Lock()

    def scan(self):
        for pid in children_of(self.master_pid):
            if pid not in self.seen:
                cl = proc_cmdline(pid)
                with self.lock:
                    self.seen[pid] = cl
        return self.seen

    def run(self):
        while not self._halt.is_set():
            try:
                self.scan()
            except Exception:  # noqa: BLE001
                pass
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()


def base_conf(tmpdir, pg_conninfo, redis_port, metrics_port):
    """The configuration every test starts from."""
    return {
        "tenant": {"id": TENANT_ID, "name": TENANT_NAME},
        "log": {"level": "info", "format": "logfmt",
                "file": os.path.join(tmpdir, "tenantd.log")},
        "postgres": {"conninfo": pg_conninfo},
        "redis": {"host": "127.0.0.1", "port": redis_port},
        "kafka": {"brokers": "127.0.0.1:1"},
        "supervisor": {
            "heartbeat_interval": 0.5,
            "heartbeat_timeout": 5.0,
            "stop_timeout": 3.0,
            "restart_delay_max": 5.0,
            "throttle_delay": 0.5,
        },
        "workers": {
            "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
            "config": {"enabled": False},
            "events": {"enabled": False},
            "stats": {"enabled": False},
            "outbound": {"enabled": False},
            "routing": {"enabled": False},
        },
    }


class Tenantd:
    """One tenantd master started by a test."""

    def __init__(self, tmpdir, conf, env=None, allow_errors=False, args=None,
                 name="tenantd", argv_prefix=None):
        self.tmpdir = tmpdir
        self.name = name
        self.conf = conf
        self.conf_path = os.path.join(tmpdir, f"{name}.conf")
        self.stderr_path = os.path.join(tmpdir, f"{name}.stderr")
        self.allow_errors = allow_errors
        self.extra_args = list(args or [])
        self.argv_prefix = list(argv_prefix or [])
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("WATCHDOG_USEC", None)
        self.env.pop("WATCHDOG_PID", None)
        self.env.update(env or {})
        self.proc = None
        self.watcher = None
        self.exit_checked = False
        self.write_conf(conf)

    # -- config
    @property
    def log_path(self):
        return self.conf.get("log", {}).get("file") or self.stderr_path

    @property
    def metrics_port(self):
        return int(self.conf["workers"]["metrics"]["listen"].rsplit(":", 1)[1])

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.metrics_port}"

    def write_conf(self, conf=None, text=None):
        """Write conf (a dict) or raw text to conf_path; remember the dict."""
        if conf is not None:
            self.conf = conf
        with open(self.conf_path, "w") as f:
            f.write(text if text is not None else render_conf(self.conf))

    # -- process
    def start(self):
        self._stderr = open(self.stderr_path, "ab")
        cmd = self.argv_prefix + [tenantd_bin()] + self.extra_args + ["-c", self.conf_path]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr,
                                     env=self.env, cwd=self.tmpdir)
        self.watcher = ChildWatcher(self.pid)
        self.watcher.start()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def stop(self, sig=None, timeout=10.0):
        """Send sig (default SIGTERM), wait up to timeout; SIGKILL if needed.

        Returns (returncode, seconds taken, killed?)."""
        sig = signal.SIGTERM if sig is None else sig
        if self.proc is None:
            return None, 0.0, False
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0, False
        if self.watcher:
            self.watcher.scan()
        t0 = time.monotonic()
        killed = False
        try:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            killed = True
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.returncode, time.monotonic() - t0, killed

    # -- HTTP
    def get(self, path, timeout=3.0, port=None):
        base = self.metrics_url if port is None else f"http://127.0.0.1:{port}"
        return http_get(base, path, timeout=timeout)

    def request(self, method, path, body=None, timeout=3.0):
        return http_get(self.metrics_url, path, timeout=timeout, method=method, body=body)

    def health(self):
        st, _, body = self.get("/tenant/health")
        assert st == 200, f"/tenant/health answered {st}: {body}"
        return json.loads(body)

    def wait_ready(self, timeout=15.0):
        """Poll /readyz until it answers 200."""
        last = [None]

        def ready():
            if not self.alive():
                raise AssertionError(
                    f"tenantd exited with {self.proc.returncode} before ready\n"
                    + self.diagnostics())
            try:
                st, _, body = self.get("/readyz", timeout=1.0)
            except OSError as e:
                last[0] = repr(e)
                return False
            last[0] = f"{st} {body.strip()}"
            return st == 200
        try:
            wait_for(ready, timeout, interval=0.05, what="/readyz 200")
        except AssertionError as e:
            raise AssertionError(f"{e}; last /readyz: {last[0]}\n{self.diagnostics()}") from None
        return self

    def worker_pid(self, name="metrics"):
        return int(self.health()["workers"][name]["pid"])

    def metrics(self):
        """Parsed /metrics: {(name, frozenset(labels.items())): float}."""
        st, _, body = self.get("/metrics")
        assert st == 200, f"/metrics answered {st}"
        return parse_prom(body)

    def metric(self, name, **labels):
        m = self.metrics()
        key = (name, frozenset(labels.items()))
        if key not in m:
            raise AssertionError(f"series {name}{labels} not found in /metrics; have: "
                                 + ", ".join(sorted({k[0] for k in m})))
        return m[key]

    # -- config API (when the test enabled workers.config)
    admin_token = None

    @property
    def config_port(self):
        return int(self.conf["workers"]["config"]["listen"].rsplit(":", 1)[1])

    def api(self, method, path, body=None, token=_DEFAULT, headers=None, timeout=10.0):
        """One request to the config API; see ConfigClient."""
        return ConfigClient(self.config_port, self.admin_token)(
            method, path, body=body, token=token, headers=headers, timeout=timeout)

    def create(self, collection, obj):
        """POST obj to /v1/<collection> as admin: its dbid (201, or the
        test fails)."""
        r = self.api("POST", f"/v1/{collection}", obj)
        assert r.status == 201, r.text
        return r.json["dbid"]

    def api_client(self, keepalive=True):
        return ConfigClient(self.config_port, self.admin_token, keepalive=keepalive)

    # -- logs
    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=5.0, since=0, path=None):
        """Wait until the log (from byte offset since) matches regex pattern."""
        rx = re.compile(pattern)

        def found():
            p = path or self.log_path
            try:
                with open(p, errors="replace") as f:
                    f.seek(since)
                    return rx.search(f.read())
            except FileNotFoundError:
                return None
        try:
            return wait_for(found, timeout, what=f"log line matching {pattern!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diagnostics()}") from None

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def diagnostics(self, n=25):
        def tail(t):
            return "\n".join(t.splitlines()[-n:])
        out = f"--- {self.name} stderr ({self.stderr_path}) tail:\n{tail(self.stderr_text())}\n"
        if self.log_path != self.stderr_path:
            out += f"--- {self.name} log ({self.log_path}) tail:\n{tail(self.log_text())}\n"
        return out

    def worker_procs(self):
        """Live (non-zombie) children of the master: {pid: cmdline}."""
        out = {}
        for pid in children_of(self.pid):
            if pid_alive(pid):
                out[pid] = proc_cmdline(pid)
        return out


def parse_prom(text):
    """Minimal Prometheus text parser: {(name, frozenset(labels)): value}."""
    out = {}
    rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
    lrx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = rx.match(line)
        if not m:
            continue
        labels = frozenset(lrx.findall(m.group(3) or ""))
        v = m.group(4)
        out[(m.group(1), labels)] = float(v.replace("+Inf", "inf").replace("-Inf", "-inf"))
    return out


def run_tenantd(args, timeout=15, env=None):
    """Run the binary to completion (for -t, -T, -V, -h)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([tenantd_bin()] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL, text=True)


# ---------------------------------------------------------------- config API

ADMIN_TOKEN_FILE = "admin.token"


def enable_config_worker(conf, tmpdir, port=None, token=None, **settings):
    """Return (conf, token): conf with workers.config enabled on a free
    loopback port (or port) and security.admin_token_file naming a token file
    written in tmpdir.  settings go into workers.config (history=5, ...)."""
    import secrets
    token = token or ("tk-" + secrets.token_hex(20))
    path = os.path.join(tmpdir, ADMIN_TOKEN_FILE)
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    section = {"enabled": True, "listen": f"127.0.0.1:{port or free_port()}"}
    section.update(settings)
    conf = merge(conf, {"workers": {"config": section},
                        "security": {"admin_token_file": path}})
    return conf, token


class Reply(tuple):
    """(status, headers{lower-case: value}, parsed JSON or None); .text is
    the raw body."""

    def __new__(cls, status, headers, body, text):
        r = super().__new__(cls, (status, headers, body))
        r.text = text
        return r

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    json = property(lambda self: self[2])



def _encode_body(body):
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _reply(r):
    data = r.read()
    headers = {k.lower(): v for k, v in r.getheaders()}
    text = data.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if data else None
    except ValueError:
        parsed = None
    return Reply(r.status, headers, parsed, text)


class ConfigClient:
    """A client of the config API on 127.0.0.1:port.

    client(method, path, body=None, token=..., headers=None, timeout=10)
    returns a Reply.  body: a dict/list (sent as JSON), str or bytes (sent
    as is).  token: the admin token by default; None sends no
    Authorization header.  Each call uses a fresh connection, unless the
    client was made with keepalive=True: then one connection per thread is
    kept (for bulk loads from a thread pool)."""

    def __init__(self, port, token, keepalive=False):
        self.port = port
        self.token = token
        self.keepalive = keepalive
        self._local = threading.local()

    def _conn(self, timeout):
        if not self.keepalive:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout), False
        c = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self._local.conn = c
            return c, False
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c, True

    def _drop(self):
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def __call__(self, method, path, body=None, token=_DEFAULT, headers=None,
                 timeout=10.0):
        h = {}
        tok = self.token if token is _DEFAULT else token
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        data = _encode_body(body)
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in (0, 1):
            c, reused = self._conn(timeout)
            try:
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                rep = _reply(r)
                if not self.keepalive or r.will_close:
                    c.close()
                    if self.keepalive:
                        self._local.conn = None
                return rep
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                # A kept connection the server closed meanwhile: once more
                # on a fresh one.
                if self.keepalive:
                    self._drop()
                else:
                    c.close()
                if not reused or attempt == 1:
                    raise
            except Exception:
                if self.keepalive:
                    self._drop()
                else:
                    c.close()
                raise
        raise AssertionError("unreachable")


def config_api_ready(d, timeout=20.0):
    """Wait until the config API of daemon d answers an authorized GET with
    200 (the configuration is loaded); return d."""
    last = [None]

    def ok():
        if not d.alive():
            raise AssertionError(f"tenantd exited with {d.proc.returncode}\n"
                                 + d.diagnostics())
        try:
            r = d.api("GET", "/v1/tenants", timeout=2)
        except OSError as e:
            last[0] = repr(e)
            return False
        last[0] = f"{r.status} {r.text[:200]}"
        # Loaded, and the tenant object made on the first start exists.
        return r.status == 200 and len(r.json.get("items", [])) == 1
    try:
        wait_for(ok, timeout, interval=0.05, what="the config API to answer 200")
    except AssertionError as e:
        raise AssertionError(f"{e}; last answer: {last[0]}\n{d.diagnostics()}") from None
    return d


class VoiceSim:
    """tools/voicesim as the voice side of a test: its log, under tmpdir,
    is checked at stop (exit 0, no crash, no error line)."""

    _n = 0

    def __init__(self, binary, conf_path, tmpdir, args=()):
        VoiceSim._n += 1
        self.log_path = os.path.join(tmpdir, f"voicesim-{VoiceSim._n}.log")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "-c", conf_path] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=tmpdir)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self._log.close()
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        bad = [ln for ln in text.splitlines()
               if any(p in ln for p in CRASH_PATTERNS) or "level=error" in ln]
        assert self.proc.returncode == 0 and not bad, text[-3000:]


class Proxy(threading.Thread):
    """A TCP relay to 127.0.0.1:target on a free port; cut() closes every
    connection and refuses new ones (a partition), mend() accepts again;
    lose_answers() drops what the server says, then cuts and mends (a
    request that ran, whose answer was lost). relay() may change or drop
    what passes."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target, self.port = target, free_port()
        self.conns, self.lock = [], threading.Lock()
        self.open = threading.Event()
        self.open.set()
        self.halt = threading.Event()
        self.mute, self.fired = threading.Event(), threading.Event()
        self.start()

    def run(self):
        while not self.halt.is_set():
            self.open.wait(0.2)
            if not self.open.is_set():
                continue
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", self.port))
            ls.listen(64)
            ls.settimeout(0.1)
            while self.open.is_set() and not self.halt.is_set():
                try:
                    a, _ = ls.accept()
                except OSError:
                    continue
                try:
                    b = socket.create_connection(("127.0.0.1", self.target), 2)
                except OSError:
                    a.close()
                    continue
                with self.lock:
                    self.conns += [a, b]
                for x, y in ((a, b), (b, a)):
                    threading.Thread(target=self.pipe, args=(x, y), daemon=True).start()
            ls.close()

    def pipe(self, x, y):
        try:
            to_server = x.getsockname()[1] == self.port
        except OSError:
            to_server = False
        state = {}
        try:
            while True:
                data = x.recv(65536)
                if not data:
                    break
                data = self.relay(data, to_server, state)
                if data and not (self.mute.is_set() and not to_server):
                    y.sendall(data)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.close()
            except OSError:
                pass

    def cut(self):
        self.open.clear()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns = []

    def relay(self, data, to_server, state):
        """What goes on of data read from one side (state: the pipe's)."""
        return data

    def mend(self):
        self.open.set()

    def lose_answers(self):
        """From now on nothing the server says gets through; every
        connection is cut 0.3 s later and accepted again 1 s after."""
        self.mute.set()
        self.fired.set()
        threading.Thread(target=self._lose, daemon=True).start()

    def _lose(self):
        time.sleep(0.3)
        self.cut()
        self.mute.clear()
        time.sleep(1.0)
        self.mend()

    def stop(self):
        self.cut()
        self.halt.set()
        self.join(5)
