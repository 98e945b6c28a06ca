# SPDX-License-Identifier: Apache-2.0
"""HTTP/1.1 on the session ports (DESIGN §3 "one socket, three faces",
docs/protocol.md "HTTP on a session port"): on the events (8000) and stats
(2060) ports a connection whose first bytes are an HTTP request line is
served by common/http.c, anything else is the session protocol.  GET
/healthz needs no token; any other request needs "Authorization: Bearer"
(the admin token, or one the config API issued), checked before the
worker sees it (401 with the config API's error body without it); the
session protocol goes on beside and after HTTP; a client that sends half
a request line and stalls is cut by a deadline; and a thousand idle
connections of every kind do not keep a new session out."""

import http.client
import json
import os
import signal
import socket
import time

import pytest

from evclient import Session, session_opens
from helpers import config_api_ready, free_port, wait_for

WORKERS = ("events", "stats", "outbound")


class Ports:
    """tenantd with the config, events, stats and outbound workers on free
    ports (the outbound worker reporting to librdkafka's mock cluster)."""

    def __init__(self, tenantd, **section):
        self.port = {w: free_port() for w in WORKERS}
        workers = {w: dict({"enabled": True,
                            "listen": f"127.0.0.1:{self.port[w]}"}, **section)
                   for w in WORKERS}
        # The outbound port has HTTP keys of its own: its head deadline
        # is header_timeout, not open_timeout.
        if "open_timeout" in section:
            workers["outbound"]["header_timeout"] = section["open_timeout"]
        self.d = tenantd({"workers": workers, "kafka": {"brokers": "mock"}},
                         config_worker=True)
        config_api_ready(self.d)
        self.token = self.d.admin_token
        for w in WORKERS:
            wait_for(lambda w=w: self.opens(w), 20, what=f"the {w} port to open")

    def opens(self, w):
        return session_opens(self.port[w], self.token, timeout=2)

    def http(self, w, method, path, token=None, body=None, conn=None):
        """(status, headers, body bytes) of one request; conn keeps alive."""
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port[w],
                                               timeout=5)
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, r, data


@pytest.fixture
def ports(tenantd):
    return Ports(tenantd, open_timeout=1.5)


def session_works(port, token, client="after-http"):
    s = Session(port)
    try:
        s.open(token, client)
        assert s.call("RequestPing")["event"] == "EventPong"
    finally:
        s.close()


def error_body(data, code):
    j = json.loads(data)
    assert j["error"] == code and j["message"], j
    return j


@pytest.mark.parametrize("w", WORKERS)
def test_healthz_tokens_and_sessions_on_one_port(ports, w):
    st, r, data = ports.http(w, "GET", "/healthz")
    assert st == 200 and data == b"ok\n"
    st, r, data = ports.http(w, "HEAD", "/healthz")
    assert st == 200 and data == b""
    # No token, a malformed one, a wrong one: 401 in the config API's shape.
    st, r, data = ports.http(w, "GET", "/v1/anything")
    assert st == 401 and r.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert r.getheader("Content-Type") == "application/json"
    error_body(data, "Unauthorized")
    st, r, data = ports.http(w, "GET", "/v1/anything", token="")
    assert st == 401
    st, r, data = ports.http(w, "POST", "/v1/anything", token="f" * 64,
                             body=b"x" * 100)
    assert st == 401
    assert "invalid" in error_body(data, "Unauthorized")["message"]
    # The admin token: the worker has no route here, so 404.
    st, r, data = ports.http(w, "GET", "/v1/anything", token=ports.token)
    assert st == 404
    error_body(data, "NotFound")
    # A token the config API issued is looked up in Redis: good, then not.
    ports.d.create("persons", {"userName": "u1", "password": "s3cret-pw"})
    t = ports.d.api("POST", "/v1/auth/token", {"userName": "u1",
                                               "password": "s3cret-pw"}, token=None)
    assert t.status == 200, t.text
    st, r, data = ports.http(w, "GET", "/v1/anything", token=t.json["token"])
    assert st == 404, data
    # The session protocol on the same port, alongside a keep-alive HTTP
    # connection, and after it.
    keep = http.client.HTTPConnection("127.0.0.1", ports.port[w], timeout=5)
    assert ports.http(w, "GET", "/healthz", conn=keep)[0] == 200
    sock = keep.sock
    session_works(ports.port[w], ports.token, "beside-http")
    assert ports.http(w, "GET", "/x", token=ports.token, conn=keep)[0] == 404
    assert ports.http(w, "GET", "/healthz", conn=keep)[0] == 200
    assert ports.http(w, "GET", "/x", conn=keep)[0] == 401
    assert keep.sock is sock, "the connection was not kept alive"
    keep.close()
    session_works(ports.port[w], t.json["token"])
    # A JSON line that merely starts like a word is still the session
    # protocol: an error line, not HTTP.
    s = Session(ports.port[w])
    s.send_raw(b'{"request": "RequestPing", "ref": 1}\n')
    m = s.read(3)
    assert m["event"] == "EventError" and m["code"] == "NotOpened", m
    s.close()


def recv_all(sock, timeout):
    """What the server sends until it closes, and how long that took."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        except socket.timeout:
            raise AssertionError(f"not closed within {timeout} s; got {out!r}")
        if not data:
            break
        out += data
    return out, time.monotonic() - t0


@pytest.mark.parametrize("w", WORKERS)
def test_half_request_line_is_cut_by_the_deadline(ports, w):
    # Decided HTTP ("GET /he"), then nothing: 408 at the head's deadline
    # (open_timeout on these ports), then closed.
    a = socket.create_connection(("127.0.0.1", ports.port[w]))
    a.sendall(b"GET /he")
    # Too few bytes to tell ("GE"): the open timeout closes it.
    b = socket.create_connection(("127.0.0.1", ports.port[w]))
    b.sendall(b"GE")
    # Nothing at all: the open timeout too.
    c = socket.create_connection(("127.0.0.1", ports.port[w]))
    out, took = recv_all(a, 6)
    assert out.startswith(b"HTTP/1.1 408 "), out
    assert took < 4
    out, took = recv_all(b, 6)
    assert b"OpenTimeout" in out and took < 4
    out, took = recv_all(c, 6)
    assert b"OpenTimeout" in out
    for s in (a, b, c):
        s.close()
    session_works(ports.port[w], ports.token)


def test_a_thousand_idle_connections_do_not_keep_a_session_out(tenantd):
    # 600 sessions at most, and 600 HTTP connections: 1,000 connections
    # of every kind fit only because HTTP ones count on their own side.
    p = Ports(tenantd, max_clients=600)
    port = p.port["events"]
    socks = []
    try:
        def conn(first=None):
            s = socket.create_connection(("127.0.0.1", port))
            if first:
                s.sendall(first)
            socks.append(s)
            return s
        for _ in range(250):
            conn()                                  # silent
        for _ in range(100):
            conn(b"PU")                             # undecided
        for _ in range(450):
            conn(b"GET /x HTTP/1.1\r\nHost: t\r\n")     # half an HTTP head
        for _ in range(100):                        # keep-alive, answered
            s = conn(b"GET /healthz HTTP/1.1\r\n\r\n")
        for _ in range(100):                        # open sessions, idle
            s = conn((json.dumps({"request": "RequestOpen", "ref": 1,
                                  "token": p.token, "client": "idle"}) +
                      "\n").encode())
        assert len(socks) == 1000
        # Every one of them is held, none was turned away yet.
        time.sleep(0.5)
        t0 = time.monotonic()
        session_works(port, p.token, "newcomer")
        assert time.monotonic() - t0 < 3
        st, r, data = p.http("events", "GET", "/v1/x", token=p.token)
        assert st == 404
        assert p.http("events", "GET", "/healthz")[0] == 200
        # The answered keep-alive connections did get their 200.
        got = socks[350 + 450].recv(4096)
        assert got.startswith(b"HTTP/1.1 200 "), got
    finally:
        for s in socks:
            s.close()
    session_works(port, p.token, "after")


def test_a_burst_accepted_before_it_speaks_takes_the_place_of_silent_ones(
        tenantd):
    """The worker accepts a burst of connections before it reads any: each
    is a session in state NEW until its first bytes are read.  At
    max_clients, the ones that waited longest without opening make room
    (they get TooManyClients) rather than the burst being turned away.
    Found by CI: under ASan the 1,000-connection test above met it."""
    p = Ports(tenantd, max_clients=300)
    port = p.port["events"]
    pid = p.d.worker_pid("events")
    silent, heads, alive = [], [], []
    try:
        for i in range(150):
            s = socket.create_connection(("127.0.0.1", port))
            if i >= 100:
                s.sendall(b"PU")                    # undecided
            silent.append(s)
        wait_for(lambda: p.d.metric("tenant_events_clients") >= 150, 10,
                 what="150 connections held")
        # Stopped, the worker accepts nothing: the next 300 wait in the
        # backlog (511), then come in one accept loop, unread.
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(250):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n")
                heads.append(s)
            for _ in range(50):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                alive.append(s)
        finally:
            os.kill(pid, signal.SIGCONT)
        for s in alive:
            s.settimeout(10)
            got = s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200 "), got
        # The 150 silent or undecided made room, and were told why.
        for s in silent:
            s.settimeout(10)
            got = s.recv(4096)
            assert b"TooManyClients" in got, got
        session_works(port, p.token, "newcomer")
        wait_for(lambda: p.d.metric("tenantd_events_clients_evicted_total")
                 == 150, 5, what="150 evicted, counted")
        assert p.d.metric("tenantd_events_clients_refused_total") == 0
    finally:
        for s in silent + heads + alive:
            s.close()
