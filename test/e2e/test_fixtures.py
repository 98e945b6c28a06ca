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
