# SPDX-License-Identifier: Apache-2.0
"""The HTTP ports (config 8888, metrics 15000) under attack, and HEAD:

- out of descriptors, accept backs off and logs once, and serves again
  once descriptors are free;
- slowloris: heads and bodies sent a byte at a time are cut off by their
  deadlines (408), and while such connections fill max_clients a real
  client is still served;
- an unauthenticated (or unentitled) POST /v1/import is refused from its
  head, before any of its body is read: the worker's memory stays flat;
  Expect: 100-continue gets 100 Continue at once when the head is good;
- HEAD is served wherever GET is, without the body.
"""

import http.client
import socket
import threading
import time

import pytest

from helpers import ConfigClient, config_api_ready, rss_kib, wait_for


def expect(r, status, code=None):
    assert r.status == status, f"expected {status} {code or ''}, got " \
        f"{r.status} {r.text[:300]}"
    if code is not None:
        assert r.json.get("error") == code, r.text
    return r.json


def read_head(s, timeout):
    """Read from s until a blank line ends a response head (or EOF)."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def lines_matching(d, text):
    return [ln for ln in d.log_text().splitlines() if text in ln]


# ---------------------------------------------------------------- descriptors

def test_out_of_descriptors_backs_off_and_logs_once(tenantd):
    """With 96 descriptors, 300 connections to each HTTP port: accept pauses
    instead of spinning, says so once per port, and serves again after."""
    d = config_api_ready(tenantd(config_worker=True,
                                 argv_prefix=["prlimit", "--nofile=96:96"]))
    d.wait_ready()
    size0 = d.log_size()
    socks = []
    try:
        for port in (d.metrics_port, d.config_port):
            for _ in range(300):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                socks.append(s)
        time.sleep(3)
        grown = d.log_size() - size0
        paused = lines_matching(d, "http: accept:")
        assert grown < 4096, (f"the log grew by {grown} bytes in 3 s out of "
                              f"descriptors:\n{d.log_text()[-2000:]}")
        assert 1 <= len(paused) <= 2, f"want one warning per port: {paused}"
        assert "Too many open files" in paused[0], paused
    finally:
        for s in socks:
            s.close()
    st = wait_for(lambda: d.get("/healthz", timeout=1)[0] == 200, 10,
                  what="the metrics port to serve again")
    assert st
    expect(d.api("GET", "/v1/tenants", timeout=5), 200)
    wait_for(lambda: lines_matching(d, "accepting connections again"), 5,
             what="the recovery to be logged")
    assert d.alive()


# ---------------------------------------------------------------- slowloris

def trickler(port, head, stop, out, step=0.25):
    """Send head, then a byte every step seconds; out gets (answer, when
    the server ended it) once it does."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    s.sendall(head)
    s.settimeout(step)
    got = b""
    try:
        while not stop.is_set():
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                continue
            except socket.timeout:
                pass
            s.send(b"x")
    except OSError:
        pass                    # reset or broken pipe: closed too
    finally:
        out.append((got, time.monotonic() - t0, stop.is_set()))
        s.close()


def test_slowloris_heads_and_bodies_are_cut_off(tenantd):
    """16 connections trickle heads into a server of max_clients 16: a real
    client is served all along, and the tricklers are cut off at the head
    deadline; an authenticated body trickled in gets 408 at its deadline."""
    d = config_api_ready(tenantd(config_worker={
        "max_clients": 16, "header_timeout": 1.5, "body_timeout": 1.5}))
    port = d.config_port
    stop = threading.Event()
    out = []
    head = b"GET /v1/tenants HTTP/1.1\r\nHost: x\r\nX-Slow: "
    threads = [threading.Thread(target=trickler, args=(port, head, stop, out))
               for _ in range(16)]
    body_head = (f"POST /v1/skills HTTP/1.1\r\nHost: x\r\nAuthorization: "
                 f"Bearer {d.admin_token}\r\nContent-Length: 100\r\n\r\n{{"
                 ).encode()
    body_out = []
    threads.append(threading.Thread(target=trickler,
                                    args=(port, body_head, stop, body_out)))
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for _ in range(3):
            r = d.api("GET", "/v1/tenants", timeout=3)
            assert r.status == 200, f"a real client got {r.status} {r.text}"
            time.sleep(0.2)
        wait_for(lambda: len(out) == 16 and body_out, 4,
                 what="every trickler to be cut off")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    for got, took, stopped in out:
        assert not stopped and took < 3.5, (got, took)
        # Pushed out to make room (nothing), or timed out (408).
        assert got in (b"",) or got.startswith(b"HTTP/1.1 408 "), got
    assert any(g.startswith(b"HTTP/1.1 408 ") for g, _, _ in out), out
    got, took, stopped = body_out[0]
    assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), got
    assert 1.4 < took < 3.5, took
    expect(d.api("GET", "/v1/tenants"), 200)
    # an operator sees it: connections pushed out, none turned away
    evicted = [g for g, _, _ in out if g == b""]
    assert d.metric("tenantd_config_clients_evicted_total") >= len(evicted) > 0
    assert d.metric("tenantd_config_clients_refused_total") == 0


# ---------------------------------------------------------------- bodies

def post_big(port, auth, result, send_max=48 << 20):
    """POST /v1/import announcing 200 MB; send up to send_max of it while
    the server lets us, then read the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    head = "POST /v1/import HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n"
    if auth:
        head += f"Authorization: Bearer {auth}\r\n"
    s.sendall((head + "\r\n").encode())
    chunk = b"\n" * (1 << 20)
    sent = 0
    try:
        while sent < send_max:
            sent += s.send(chunk)
    except OSError:
        pass
    try:
        answer = read_head(s, 5)
    except OSError as e:
        answer = repr(e).encode()
    result.append((answer, time.monotonic() - t0, sent))
    s.close()


def test_unauthenticated_import_is_refused_unread(tenantd):
    """Four unauthenticated imports announcing 200 MB each: 401 at once,
    and the config worker's memory does not grow with what they send."""
    d = config_api_ready(tenantd(config_worker=True))
    pid = d.worker_pid("config")
    rss0 = rss_kib(pid)
    result = []
    threads = [threading.Thread(target=post_big,
                                args=(d.config_port, auth, result))
               for auth in (None, None, "0" * 64, "not-a-token")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    grown = rss_kib(pid) - rss0
    for answer, took, sent in result:
        assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), answer
        assert b"Connection: close" in answer, answer
        assert took < 5, took
    assert len(result) == 4
    assert grown < 16 * 1024, f"the config worker grew by {grown} KiB"
    # The one body read without a token, a token request's, is small.
    s = socket.create_connection(("127.0.0.1", d.config_port), timeout=5)
    s.sendall(b"POST /v1/auth/token HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
    assert read_head(s, 5).startswith(b"HTTP/1.1 413 "), "token body limit"
    s.close()
    expect(d.api("GET", "/v1/tenants"), 200)


def test_expect_100_continue(tenantd):
    """A good head gets 100 Continue at once, then the answer; a refused
    one gets its final answer instead, without a 100 (401, and 403 for a
    person with no right an import could use)."""
    d = config_api_ready(tenantd(config_worker=True))
    port = d.config_port
    u = expect(d.api("POST", "/v1/persons", {"userName": "reader",
                                              "password": "pw"}), 201)
    expect(d.api("POST", "/v1/access-groups", {
        "name": "readers", "members": [u["dbid"]],
        "permissions": [{"collection": "skills", "rights": ["read"]}]}), 201)
    reader = expect(d.api("POST", "/v1/auth/token", {"userName": "reader",
                          "password": "pw"}, token=None), 200)["token"]
    body = b'{"type":"Skill","object":{"name":"via-import"}}\n'

    def head(token):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall((f"POST /v1/import HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {token}\r\n"
                   f"Content-Length: {len(body)}\r\n"
                   f"Expect: 100-continue\r\n\r\n").encode())
        return s

    s = head(d.admin_token)
    t0 = time.monotonic()
    interim = read_head(s, 0.9)     # curl would give up waiting at 1 s
    took = time.monotonic() - t0
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
    assert took < 0.5, took
    s.sendall(body)
    answer = read_head(s, 10)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    s.close()
    for token, status in ((reader, b"403 Forbidden"),
                          ("f" * 64, b"401 Unauthorized")):
        s = head(token)
        answer = read_head(s, 5)
        assert answer.startswith(b"HTTP/1.1 " + status + b"\r\n"), answer
        assert b"Connection: close" in answer, answer
        s.close()
    r = expect(d.api("GET", "/v1/skills?name=via-import"), 200)
    assert len(r["items"]) == 1, r


# ---------------------------------------------------------------- HEAD

def head_then_get(port, path, token=None):
    """HEAD then GET of path on one kept-alive connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    h = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        c.request("HEAD", path, headers=h)
        r = c.getresponse()
        hh = (r.status, dict(r.getheaders()), r.read())
        c.request("GET", path, headers=h)
        r = c.getresponse()
        g = (r.status, dict(r.getheaders()), r.read())
        return hh, g
    finally:
        c.close()


def test_head_is_get_without_the_body(tenantd):
    d = config_api_ready(tenantd(config_worker=True))
    cases = [(d.metrics_port, "/healthz", None),
             (d.metrics_port, "/nope", None),
             (d.config_port, "/v1/tenants/1", d.admin_token),
             (d.config_port, "/v1/skills", d.admin_token),
             (d.config_port, "/v1/skills", None)]
    for port, path, token in cases:
        (hs, hh, hb), (gs, gh, gb) = head_then_get(port, path, token)
        assert hs == gs, (path, hs, gs)
        assert hb == b"", (path, hb)
        assert int(hh["Content-Length"]) == len(gb), (path, hh, len(gb))
        hh.pop("Date", None)
        gh.pop("Date", None)
        assert hh == gh, (path, hh, gh)
    # HEAD of /metrics: the same headers (its length moves between scrapes)
    (hs, hh, hb), (gs, gh, gb) = head_then_get(d.metrics_port, "/metrics")
    assert hs == 200 and hb == b"" and int(hh["Content-Length"]) > 0
    assert hh["Content-Type"] == gh["Content-Type"]
    # Other methods still get 405, naming HEAD too.
    st, h, _ = d.request("POST", "/healthz", body=b"x")
    assert st == 405 and h["allow"] == "GET, HEAD", (st, h)
