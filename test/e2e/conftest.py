# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the tenantd end-to-end tests.

  pg       a real PostgreSQL 15 (one cluster per session, started again if a
           test stopped it; database t100 owned by role tenantd is recreated
           empty for every test).  .port .conninfo .stop() .start()
  redis    a real redis-server (one per session, started again if a test
           stopped it, flushed for every test).  .port .stop() .start()
  tenantd  a factory: tenantd(overrides=None, env=None, allow_errors=False,
           start=True, args=None, **dotted) writes a config from the test
           template and starts $TENANTD_BIN -c FILE.  Overrides are a nested
           dict ({"log": {"level": "debug"}}) and/or keywords with "__" as
           the separator (log__level="debug"); None removes a key.
           config_worker=True (or a dict of workers.config settings, e.g.
           {"history": 5}) enables the config worker on a free loopback port
           with an admin token file: d.admin_token, d.config_port, d.api().
  config_api  one such tenantd with its configuration loaded; its
           .api(method, path, body=None, token=..., headers=None) returns
           (status, headers, parsed JSON or None).

On teardown every daemon still running gets SIGTERM and must exit 0; no
process it forked may be left; and its log and stderr must show no crash or
sanitizer report, and no level=error line unless the test allowed errors
(allow_errors=True or @pytest.mark.allow_errors).
"""

import glob
import os
import re
import signal
import time

import pytest

import helpers
from helpers import (CRASH_PATTERNS, PgServer, RedisServer, Tenantd, base_conf,
                     config_api_ready, dotted, enable_config_worker, free_port, merge,
                     pid_alive, proc_cmdline, tenantd_bin)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "allow_errors: level=error log lines are expected in this test")


# ---------------------------------------------------------------- servers

@pytest.fixture(scope="session")
def _pg_server():
    srv = PgServer()
    yield srv
    srv.destroy()


@pytest.fixture
def pg(_pg_server):
    """A running PostgreSQL with an empty database t100 owned by tenantd."""
    _pg_server.start()
    _pg_server.reset_db()
    yield _pg_server
    # A test that stopped it leaves it stopped; the next test starts it.


@pytest.fixture(scope="session")
def _redis_server():
    srv = RedisServer()
    yield srv
    srv.destroy()


@pytest.fixture
def redis(_redis_server):
    """A running, empty redis-server."""
    _redis_server.start()
    _redis_server.command("FLUSHALL")
    yield _redis_server


# ---------------------------------------------------------------- tenantd

@pytest.fixture(scope="session")
def tenantd_binary():
    b = tenantd_bin()
    if not os.access(b, os.X_OK):
        pytest.fail(f"tenantd binary {b} not found or not executable "
                    "(run make, or set TENANTD_BIN)")
    return b


def _crash_lines(text):
    out = []
    for line in text.splitlines():
        for p in CRASH_PATTERNS:
            if (p.lower() in line.lower()) if p == "assertion" else (p in line):
                out.append(line)
                break
    return out


_ERROR_RX = re.compile(r'(^|\s)level=error(\s|$)|"level"\s*:\s*"error"')


def check_daemon(d, allow_errors):
    """Teardown checks for one daemon; returns a list of problems."""
    problems = []
    if d.proc is None:
        return problems
    if d.alive():
        rc, took, killed = d.stop(signal.SIGTERM, timeout=10.0)
        if killed:
            problems.append("did not exit within 10 s of SIGTERM at teardown (killed)")
        elif rc != 0:
            problems.append(f"exited with status {rc} after SIGTERM at teardown")
    rc = d.proc.returncode
    if rc is not None and rc < 0 and -rc in (signal.SIGSEGV, signal.SIGABRT,
                                             signal.SIGBUS, signal.SIGFPE,
                                             signal.SIGILL):
        problems.append(f"master died of signal {signal.Signals(-rc).name}")
    if d.watcher:
        d.watcher.stop()
        d.watcher.join(2)
        seen = dict(d.watcher.seen)

        def leftovers():
            out = []
            for pid, cl in seen.items():
                now = proc_cmdline(pid)
                if pid_alive(pid) and now and now.startswith("tenantd"):
                    out.append((pid, now))
            return out
        deadline = time.monotonic() + 2.0
        left = leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = leftovers()
        for pid, cl in left:
            problems.append(f"child process {pid} ({cl!r}) still running after the "
                            "master exited")
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    files = [d.stderr_path]
    if d.log_path != d.stderr_path:
        files += [d.log_path] + sorted(glob.glob(d.log_path + ".*"))
    for path in files:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        for line in _crash_lines(text)[:5]:
            problems.append(f"crash/sanitizer report in {os.path.basename(path)}: {line}")
        if not allow_errors:
            errs = [ln for ln in text.splitlines() if _ERROR_RX.search(ln)]
            for line in errs[:5]:
                problems.append(f"unexpected error line in {os.path.basename(path)}: {line}")
    return problems


class TenantdFactory:
    def __init__(self, tmp_path, pg, redis, allow_errors_default):
        self.tmp_path = tmp_path
        self.pg = pg
        self.redis = redis
        self.allow_errors_default = allow_errors_default
        self.daemons = []

    def base_conf(self, subdir=None):
        d = subdir or str(self.tmp_path)
        return base_conf(d, self.pg.conninfo, self.redis.port, free_port())

    def __call__(self, overrides=None, *, env=None, allow_errors=None, start=True,
                 args=None, argv_prefix=None, config_worker=False,
                 admin_token=None, **dotted_overrides):
        """config_worker=True (or a dict of workers.config settings) enables
        the config worker on a free loopback port with an admin token file;
        the daemon's .admin_token, .config_port and .api() use them."""
        n = len(self.daemons)
        name = "tenantd" if n == 0 else f"tenantd{n}"
        sub = str(self.tmp_path) if n == 0 else str(self.tmp_path / name)
        os.makedirs(sub, exist_ok=True)
        conf = self.base_conf(sub)
        token = None
        if config_worker:
            settings = config_worker if isinstance(config_worker, dict) else {}
            conf, token = enable_config_worker(conf, sub, token=admin_token,
                                               **settings)
        if overrides:
            conf = merge(conf, overrides)
        if dotted_overrides:
            conf = merge(conf, dotted(dotted_overrides))
        if allow_errors is None:
            allow_errors = self.allow_errors_default
        d = Tenantd(sub, conf, env=env, allow_errors=allow_errors, args=args,
                    name="tenantd", argv_prefix=argv_prefix)
        d.admin_token = token
        self.daemons.append(d)
        if start:
            d.start()
        return d


@pytest.fixture
def tenantd(request, tmp_path, pg, redis, tenantd_binary):
    """Factory starting tenantd processes; checked and stopped on teardown."""
    allow = request.node.get_closest_marker("allow_errors") is not None
    f = TenantdFactory(tmp_path, pg, redis, allow)
    yield f
    problems = []
    for d in f.daemons:
        for p in check_daemon(d, d.allow_errors):
            problems.append(f"[{d.conf_path}] {p}")
    if problems:
        diag = "\n".join(d.diagnostics() for d in f.daemons if d.proc is not None)
        pytest.fail("tenantd teardown checks failed:\n  " + "\n  ".join(problems)
                    + "\n" + diag, pytrace=False)


@pytest.fixture
def config_api(tenantd):
    """One tenantd with the config worker enabled and its configuration
    loaded; use .api(method, path, body=None, token=..., headers=None)."""
    d = tenantd(config_worker=True)
    return config_api_ready(d)


@pytest.fixture
def voicesim_bin():
    """build/voicesim ($VOICESIM_BIN, which make e2e sets), else skip."""
    b = os.environ.get("VOICESIM_BIN")
    if not b:
        pytest.skip("VOICESIM_BIN is not set")
    return b
