# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL and Redis outages: reported by /readyz, the metrics and
/tenant/health, never fatal, and recovered from without a restart."""

import json
import time

import pytest

from helpers import wait_for


def readyz(d):
    st, _, body = d.get("/readyz", timeout=2)
    return st, body


def wait_serving(d, timeout=15):
    wait_for(lambda: d.get("/healthz", timeout=1)[0] == 200, timeout,
             what="/healthz 200 (metrics worker serving)")


def assert_down(d, dep, metric, down_value):
    st, body = readyz(d)
    assert st == 503, f"/readyz {st} with {dep} down"
    assert dep in body.lower(), f"/readyz body should name {dep}: {body!r}"
    assert d.metric(metric) == down_value, f"{metric} should be {down_value} with {dep} down"
    h = d.health()
    assert h["dependencies"][dep]["state"] == "down", h["dependencies"]
    assert h["status"] in ("degraded", "failed"), h["status"]
    assert d.metric("tenant_service_health_level") < 2
    st, _, _ = d.get("/healthz")
    assert st == 200, "/healthz is liveness: it must stay 200 during an outage"


def wait_up(d, metric, up_value, timeout=8):
    t0 = time.monotonic()
    wait_for(lambda: readyz(d)[0] == 200, timeout, interval=0.1,
             what="/readyz 200 after the dependency came back")
    wait_for(lambda: d.metric(metric) == up_value, 3, what=f"{metric} == {up_value}")
    assert d.metric("tenant_service_health_level") == 2
    assert d.health()["status"] == "healthy"
    return time.monotonic() - t0


def test_start_with_redis_down(tenantd, redis):
    redis.stop()
    d = tenantd()
    wait_serving(d)
    wait_for(lambda: readyz(d)[0] == 503, 5, what="/readyz 503")
    time.sleep(1.0)  # a few reconnect attempts
    assert_down(d, "redis", "tenant_redis_state", 0)
    assert d.metric("tenantd_postgres_up") == 1
    redis.start()
    took = wait_up(d, "tenant_redis_state", 2)
    assert took <= 6, f"took {took:.1f}s to notice Redis is back"
    assert d.metric("tenantd_worker_restarts_total", worker="metrics") == 0, \
        "a Redis outage must not restart the worker"


def test_start_with_postgres_down(tenantd, pg):
    pg.stop()
    d = tenantd()
    wait_serving(d)
    wait_for(lambda: readyz(d)[0] == 503, 5, what="/readyz 503")
    time.sleep(1.0)
    assert_down(d, "postgres", "tenantd_postgres_up", 0)
    assert d.metric("tenant_redis_state") == 2
    pg.start()
    took = wait_up(d, "tenantd_postgres_up", 1)
    assert took <= 6, f"took {took:.1f}s to notice PostgreSQL is back"
    assert d.metric("tenantd_worker_restarts_total", worker="metrics") == 0


def test_redis_outage_while_running(tenantd, redis):
    d = tenantd().wait_ready()
    assert d.metric("tenant_redis_state") == 2
    off = d.log_size()
    redis.stop()
    wait_for(lambda: readyz(d)[0] == 503, 6, what="/readyz 503 after Redis stopped")
    wait_for(lambda: d.metric("tenant_redis_state") == 0, 3, what="tenant_redis_state 0")
    time.sleep(3.0)
    assert_down(d, "redis", "tenant_redis_state", 0)
    noisy = [ln for ln in d.log_text()[off:].splitlines()
             if "redis" in ln.lower() and ("level=warn" in ln or "level=error" in ln)]
    assert len(noisy) <= 3, ("a Redis outage should be logged once, not on every "
                             "reconnect attempt:\n" + "\n".join(noisy[:20]))
    redis.start()
    wait_up(d, "tenant_redis_state", 2)
    # and a second time
    redis.stop()
    wait_for(lambda: readyz(d)[0] == 503, 6, what="/readyz 503 after the second stop")
    redis.start()
    wait_up(d, "tenant_redis_state", 2)
    assert d.metric("tenantd_worker_restarts_total", worker="metrics") == 0


def test_postgres_outage_while_running(tenantd, pg):
    d = tenantd().wait_ready()
    pg.stop()
    wait_for(lambda: readyz(d)[0] == 503, 8, what="/readyz 503 after PostgreSQL stopped")
    wait_for(lambda: d.metric("tenantd_postgres_up") == 0, 3, what="tenantd_postgres_up 0")
    assert_down(d, "postgres", "tenantd_postgres_up", 0)
    pg.start()
    wait_up(d, "tenantd_postgres_up", 1)
    assert d.metric("tenantd_worker_restarts_total", worker="metrics") == 0
