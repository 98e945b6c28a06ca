# SPDX-License-Identifier: Apache-2.0
"""Self-tests of the e2e fixtures: the real PostgreSQL and Redis servers that
every other test relies on come up, answer as tenantd would reach them,
stop and start again on the same port."""

import psycopg
import redis as redis_py

from helpers import port_open, render_conf, merge, dotted


def test_pg_fixture_serves_t100_as_tenantd(pg):
    with psycopg.connect(pg.conninfo, connect_timeout=5) as c:
        row = c.execute("SELECT current_user, current_database(), "
                        "(SELECT pg_get_userbyid(datdba) FROM pg_database "
                        "WHERE datname = 't100')").fetchone()
    assert row == ("tenantd", "t100", "tenantd")
    assert pg.conninfo == f"host=127.0.0.1 port={pg.port} dbname=t100 user=tenantd"


def test_pg_fixture_stop_start(pg):
    pg.stop()
    assert not port_open(pg.port), "PostgreSQL still listening after stop()"
    pg.start()
    with psycopg.connect(pg.conninfo, connect_timeout=5) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_redis_fixture_stop_start(redis):
    r = redis_py.Redis(host="127.0.0.1", port=redis.port, socket_timeout=2)
    assert r.ping()
    r.set("k", "v")
    redis.stop()
    assert not port_open(redis.port), "redis still listening after stop()"
    redis.start()
    r = redis_py.Redis(host="127.0.0.1", port=redis.port, socket_timeout=2)
    assert r.ping()
    assert r.get("k") is None, "redis kept data across restart (--save '' expected)"


def test_config_rendering():
    text = render_conf(merge({"a": {"b": 1, "c": "x"}}, dotted({"a.b": 2.0, "a.c": None,
                                                                 "d__e": True})))
    assert "b = 2.0;" in text and "c =" not in text and "e = true;" in text


def test_teardown_checks_catch_problems(tmp_path):
    """The teardown checks report error lines, crash reports, a bad exit
    status and a child left behind (checked on a fake daemon)."""
    import subprocess
    import time
    from conftest import check_daemon
    from helpers import Tenantd, ChildWatcher, base_conf
    d = Tenantd(str(tmp_path), base_conf(str(tmp_path), "x", 1, 1))
    with open(d.log_path, "w") as f:
        f.write('ts=2026-01-01T00:00:00.000Z level=error role=master pid=1 msg="boom"\n')
    with open(d.stderr_path, "w") as f:
        f.write("==1==ERROR: AddressSanitizer: heap-use-after-free\n")
    # a "master" that ignores nothing: TERM kills it (status -15), and it
    # leaves a child named like a worker behind
    d.proc = subprocess.Popen(["bash", "-c", "exec -a 'tenantd: metrics' sleep 30 & sleep 30"])
    d.watcher = ChildWatcher(d.pid)
    d.watcher.start()
    time.sleep(0.3)
    problems = check_daemon(d, allow_errors=False)
    text = "\n".join(problems)
    assert "level=error" in text, text
    assert "AddressSanitizer" in text, text
    assert "exited with status -15" in text, text
    assert "still running after the master exited" in text, text
    assert check_daemon(d, allow_errors=True) != []  # sanitizer report stays fatal
