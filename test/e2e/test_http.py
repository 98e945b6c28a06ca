# SPDX-License-Identifier: Apache-2.0
"""The metrics port: /metrics (Prometheus text, promtool-clean), /healthz,
/readyz, /tenant/health, and errors for unknown paths and methods."""

import json
import subprocess
import time

import pytest

from helpers import TENANT_ID, TENANT_NAME, parse_prom, proc_cmdline

PROMTOOL = "/usr/bin/promtool"


@pytest.fixture
def ready(tenantd):
    return tenantd().wait_ready()


def test_metrics_content_type(ready):
    st, h, body = ready.get("/metrics")
    assert st == 200, f"/metrics answered {st}"
    ct = h.get("content-type", "")
    assert ct.replace(" ", "").startswith("text/plain;version=0.0.4"), \
        f"/metrics content type should be text/plain; version=0.0.4, got {ct!r}"
    assert body.endswith("\n"), "Prometheus text must end with a newline"


def test_metrics_series_healthy(ready):
    m = parse_prom(ready.get("/metrics")[2])

    def val(name, **labels):
        k = (name, frozenset(labels.items()))
        assert k in m, f"missing series {name}{labels}; families: " + \
            ", ".join(sorted({x[0] for x in m}))
        return m[k]
    assert val("tenantd_worker_up", worker="metrics") == 1
    assert val("tenantd_worker_restarts_total", worker="metrics") == 0
    assert val("tenantd_worker_uptime_seconds", worker="metrics") >= 0
    rss = val("tenantd_worker_resident_memory_bytes", worker="metrics")
    assert 256 * 1024 < rss < 4 * 1024 ** 3, f"implausible resident memory {rss}"
    assert val("tenant_service_health_level") == 2
    assert val("tenant_redis_state") == 2
    assert val("tenantd_postgres_up") == 1


def test_metrics_worker_rss_matches_proc(ready):
    pid = ready.worker_pid()
    with open(f"/proc/{pid}/status") as f:
        rss_kb = int([ln for ln in f if ln.startswith("VmRSS:")][0].split()[1])
    got = ready.metric("tenantd_worker_resident_memory_bytes", worker="metrics")
    assert abs(got - rss_kb * 1024) < max(8 * 1024 * 1024, rss_kb * 1024 * 0.5), \
        f"resident memory {got} far from /proc VmRSS {rss_kb * 1024}"


def test_metrics_uptime_grows(ready):
    a = ready.metric("tenantd_worker_uptime_seconds", worker="metrics")
    time.sleep(1.2)
    b = ready.metric("tenantd_worker_uptime_seconds", worker="metrics")
    assert 0.8 <= b - a <= 5, f"worker uptime went from {a} to {b} over 1.2 s"


def test_promtool_check_metrics(ready):
    body = ready.get("/metrics")[2]
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "", \
        f"promtool check metrics found problems:\n{r.stdout}\n--- body:\n{body}"


def test_healthz(ready):
    st, _, _ = ready.get("/healthz")
    assert st == 200


def test_readyz(ready):
    st, _, body = ready.get("/readyz")
    assert st == 200, f"/readyz {st}: {body}"


def test_tenant_health(ready):
    st, h, body = ready.get("/tenant/health")
    assert st == 200
    assert "application/json" in h.get("content-type", ""), h
    j = json.loads(body)
    assert j["status"] == "healthy", j
    assert j["tenant"] == {"id": TENANT_ID, "name": TENANT_NAME}, j["tenant"]
    assert j["master"]["pid"] == ready.pid, (j["master"], ready.pid)
    assert isinstance(j["master"]["uptime_seconds"], (int, float))
    assert 0 <= j["master"]["uptime_seconds"] < 60
    assert set(j["workers"]) == {"metrics"}, f"only metrics is enabled: {j['workers']}"
    w = j["workers"]["metrics"]
    assert w["state"] == "ready", w
    assert w["restarts"] == 0, w
    assert 0 <= w["uptime_seconds"] < 60, w
    kids = ready.worker_procs()
    assert w["pid"] in kids, f"worker pid {w['pid']} is not a child of the master: {kids}"
    assert proc_cmdline(w["pid"]).startswith("tenantd: metrics")
    assert j["dependencies"]["postgres"]["state"] == "up", j["dependencies"]
    assert j["dependencies"]["redis"]["state"] == "up", j["dependencies"]


def test_unknown_path_404(ready):
    bad = {}
    for path in ["/", "/nope", "/metrics/x", "/tenant", "/healthzz", "/tenant/health/x"]:
        st, _, _ = ready.get(path)
        if st != 404:
            bad[path] = st
    assert not bad, f"unknown paths should answer 404: {bad}"


@pytest.mark.parametrize("body", [None, b"x"], ids=["no-body", "small-body"])
def test_non_get_405(ready, body):
    bad = {}
    for method in ["POST", "PUT", "DELETE", "PATCH"]:
        for path in ["/metrics", "/healthz", "/readyz", "/tenant/health"]:
            st, _, _ = ready.request(method, path, body=body)
            if st != 405:
                bad[f"{method} {path}"] = st
    assert not bad, f"non-GET requests should answer 405: {bad}"
    st, _, _ = ready.get("/healthz")
    assert st == 200


def test_server_survives_garbage(ready):
    """Malformed requests get an error or a close, and the port keeps serving."""
    import socket
    for junk in (b"\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                 b"\x00\xff" * 2000 + b"\r\n\r\n", b"G" * 100000):
        s = socket.create_connection(("127.0.0.1", ready.metrics_port), timeout=3)
        try:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(4096)
            except OSError:
                pass
        except OSError:
            pass
        finally:
            s.close()
    st, _, _ = ready.get("/healthz")
    assert st == 200
    assert ready.worker_pid() in ready.worker_procs()
    assert ready.metric("tenantd_worker_restarts_total", worker="metrics") == 0, \
        "garbage requests made the metrics worker restart"


def test_slow_clients_do_not_stall(ready):
    """Clients that send half a request and stall must not block others."""
    import socket
    stalled = []
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", ready.metrics_port), timeout=3)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)
        t0 = time.monotonic()
        for _ in range(10):
            st, _, _ = ready.get("/healthz", timeout=2)
            assert st == 200
        took = time.monotonic() - t0
        assert took < 3, f"10 requests took {took:.1f}s beside 40 stalled clients"
    finally:
        for s in stalled:
            s.close()
    st, _, body = ready.get("/metrics")
    assert st == 200 and "tenantd_worker_up" in body
