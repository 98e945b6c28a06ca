# SPDX-License-Identifier: Apache-2.0
"""TLS on every listening port (issue 14, docs/operations.md "TLS"), with
certificates made here by the openssl command:

- config, events, stats, outbound, routing and metrics each answer over
  TLS: HTTP (http.client with an SSL context), and the session protocol on
  a session port (RequestOpen over a wrapped socket), beside HTTP on the
  same port;
- a TLS port refuses plaintext, and TLS 1.1 and below (while 1.2 and 1.3
  are served), and a client that connects and never makes the handshake
  is dropped at the port's first deadline;
- mutual TLS: with client_ca_file a client without a certificate, or with
  one from another CA, is refused; one from that CA is served;
- a HUP with a new certificate gives new connections the new one, while
  an open session and a keep-alive HTTP connection go on with theirs; a
  HUP with a key that is not the certificate's keeps the running one and
  says why;
- `tenantd -t`: a missing file, a key that is not the certificate's, a CA
  file with no certificate, as file:line: reason;
- bodies and answers larger than a TLS record, and pipelined requests,
  cross TLS whole.
"""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from evclient import Session
from helpers import base_conf, free_port, merge, render_conf, run_tenantd, wait_for

SESSION_PORTS = ("events", "stats", "outbound")
SVC_PORTS = SESSION_PORTS + ("routing",)   # session ports speaking HTTP


# ---------------------------------------------------------------- certificates

def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"
    return r.stdout


class Pki:
    """CAs and certificates (P-256 keys) under one directory."""

    def __init__(self, d):
        self.d = str(d)
        os.makedirs(self.d, exist_ok=True)

    def path(self, name):
        return os.path.join(self.d, name)

    def ca(self, name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.pem", cwd=self.d)
        return name

    def cert(self, name, ca, cn, client=False):
        """name.pem signed by ca, name.key; a server's names localhost and
        127.0.0.1."""
        ext = self.path(f"{name}.ext")
        with open(ext, "w") as f:
            if client:
                f.write("extendedKeyUsage=clientAuth\n")
            else:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=self.d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
                "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
                "-extfile", ext, "-out", f"{name}.pem", cwd=self.d)
        return name

    def der(self, name):
        return ssl.PEM_cert_to_DER_cert(open(self.path(f"{name}.pem")).read())


@pytest.fixture
def pki(tmp_path):
    p = Pki(tmp_path / "pki")
    p.ca("ca")                              # signs the server certificates
    p.cert("server", "ca", "tenantd-1")
    p.cert("server2", "ca", "tenantd-2")
    p.ca("clientca")                        # signs the clients' certificates
    p.cert("client", "clientca", "desktop-1", client=True)
    p.ca("rogue")                           # another CA
    p.cert("stranger", "rogue", "desktop-2", client=True)
    return p


def client_ctx(pki, cert=None, minimum=None, maximum=None):
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    if cert:
        ctx.load_cert_chain(pki.path(f"{cert}.pem"), pki.path(f"{cert}.key"))
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def tls_section(pki, server="server", client_ca=None):
    t = {"cert_file": pki.path(f"{server}.pem"),
         "key_file": pki.path(f"{server}.key")}
    if client_ca:
        t["client_ca_file"] = pki.path(f"{client_ca}.pem")
    return t


# ---------------------------------------------------------------- clients

def https(port, ctx, method, path, token=None, body=None, conn=None, timeout=5):
    """(status, response, body) of one request over TLS; conn keeps alive."""
    c = conn or http.client.HTTPSConnection("localhost", port, context=ctx,
                                            timeout=timeout)
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, r, data


def tls_session(port, ctx, timeout=5.0):
    """A session-protocol client on a TLS socket."""
    s = Session(port, timeout=timeout)
    s.sock = ctx.wrap_socket(s.sock, server_hostname="localhost")
    return s


def peer_der(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def refused(fn):
    """fn() fails the way a refused TLS client does; returns the error."""
    try:
        fn()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError,
            http.client.RemoteDisconnected, ConnectionAbortedError) as e:
        return e
    raise AssertionError("the client was served")


def plaintext_answer(port, data, timeout=5):
    """What a TLS port sends back to plaintext: bytes until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            pass
        return got


# ---------------------------------------------------------------- the daemon

class TlsPorts:
    """tenantd with every port on TLS (same certificate), the outbound
    worker reporting to librdkafka's mock cluster."""

    def __init__(self, tenantd, pki, client_ca=None, metrics=True, **section):
        self.pki = pki
        self.port = {w: free_port() for w in ("config",) + SVC_PORTS}
        tls = tls_section(pki, client_ca=client_ca)
        workers = {w: dict({"enabled": True, "listen": f"127.0.0.1:{p}",
                            "tls": tls}, **section)
                   for w, p in self.port.items()}
        if metrics:
            workers["metrics"] = {"tls": tls}
        self.d = tenantd({"workers": workers, "kafka": {"brokers": "mock"}},
                         config_worker=True)
        self.port["metrics"] = self.d.metrics_port
        self.token = self.d.admin_token
        self.ctx = client_ctx(pki, "client" if client_ca else None)
        wait_for(self.config_loaded, 20, what="the config API over TLS")
        for w in SVC_PORTS:
            wait_for(lambda w=w: self.healthy(w), 20, what=f"the {w} port")

    def config_loaded(self):
        if not self.d.alive():
            raise AssertionError("tenantd exited\n" + self.d.diagnostics())
        try:
            st, _, data = https(self.port["config"], self.ctx, "GET",
                                "/v1/tenants", self.token, timeout=2)
        except (OSError, ssl.SSLError):
            return False
        return st == 200 and len(json.loads(data)["items"]) == 1

    def healthy(self, w):
        try:
            return https(self.port[w], self.ctx, "GET", "/healthz",
                         timeout=2)[0] == 200
        except (OSError, ssl.SSLError):
            return False

    def opens(self, w, ctx=None):
        s = tls_session(self.port[w], ctx or self.ctx)
        try:
            r = s.open(self.token, "tls-test")
            assert r["event"] == "EventOpened", r
            assert s.call("RequestPing")["event"] == "EventPong"
        finally:
            s.close()


@pytest.fixture
def ports(tenantd, pki):
    return TlsPorts(tenantd, pki)


# ---------------------------------------------------------------- tests

def test_every_port_answers_over_tls(ports):
    p, ctx = ports.port, ports.ctx
    # config: the API; metrics: health and the registry.
    st, _, data = https(p["config"], ctx, "GET", "/v1/tenants", ports.token)
    assert st == 200 and json.loads(data)["items"]
    assert https(p["metrics"], ctx, "GET", "/healthz")[0] == 200
    st, _, data = https(p["metrics"], ctx, "GET", "/metrics")
    assert st == 200 and b"tenantd_worker_up" in data
    for w in SVC_PORTS:
        # The session protocol, and HTTP beside it, on one TLS port (the
        # routing port tells a session line it speaks HTTP only).
        if w == "routing":
            s = tls_session(p[w], ctx)
            r = s.call("RequestOpen", token=ports.token, client="x")
            assert r["code"] == "BadRequest" and "HTTP" in r["message"], r
            s.close()
        else:
            ports.opens(w)
        assert https(p[w], ctx, "GET", "/healthz")[0] == 200
        st, r, data = https(p[w], ctx, "GET", "/v1/nothing")
        assert st == 401 and json.loads(data)["error"] == "Unauthorized"
        st, r, data = https(p[w], ctx, "GET", "/v1/nothing", ports.token)
        assert st == 404, (w, st, data)
    # A keep-alive connection serves request after request, and a session
    # whose first line comes in two records is sniffed and opened.
    c = http.client.HTTPSConnection("localhost", p["events"], context=ctx,
                                    timeout=5)
    for _ in range(3):
        assert https(p["events"], ctx, "GET", "/healthz", conn=c)[0] == 200
    c.close()
    s = tls_session(p["stats"], ctx)
    s.send_raw(b'{"request": "RequestOpen", "ref": 1, ')
    time.sleep(0.1)
    s.send_raw(json.dumps({"token": ports.token, "client": "split"}).encode()[1:]
               + b"\n")
    assert s.answer(1)["event"] == "EventOpened"
    # A graceful stop tells an open TLS session, then closes it cleanly.
    rc, took, killed = ports.d.stop(signal.SIGTERM)
    assert rc == 0 and not killed
    assert s.event("EventError")["code"] == "Shutdown"
    s.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_plaintext_and_old_protocols_are_refused(ports):
    p = ports.port
    for w in ("config", "metrics", "events", "outbound"):
        # Plaintext HTTP and a plaintext session line get no answer of
        # theirs: the bytes are not a TLS handshake.
        got = plaintext_answer(p[w], b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"HTTP/1.1" not in got, (w, got)
        if w in SESSION_PORTS:
            line = json.dumps({"request": "RequestOpen", "ref": 1,
                               "token": ports.token, "client": "x"}).encode()
            got = plaintext_answer(p[w], line + b"\n")
            assert b"EventOpened" not in got, (w, got)
    # TLS 1.0 and 1.1 are refused by the server (the client offers them:
    # its own floor is lowered), 1.2 and 1.3 are served.
    old = client_ctx(ports.pki, minimum=ssl.TLSVersion.TLSv1,
                     maximum=ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    for w in ("config", "events"):
        e = refused(lambda: https(p[w], old, "GET", "/healthz"))
        # the server's alert, not the client's refusal
        assert isinstance(e, ssl.SSLError) and \
            "ALERT_PROTOCOL_VERSION" in str(e), repr(e)
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx(ports.pki, minimum=v, maximum=v)
            with socket.create_connection(("127.0.0.1", p[w]), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                           ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[v]
            assert https(p[w], ctx, "GET", "/healthz")[0] in (200, 404)


def test_a_client_that_never_handshakes_is_dropped(tenantd, pki):
    ports = TlsPorts(tenantd, pki, metrics=False)
    # The section's first deadline bounds the handshake: 1 s here.
    d = ports.d
    conf = merge(d.conf, {"workers": {
        "config": {"header_timeout": 1.0},
        "events": {"open_timeout": 1.0}}})
    off = d.log_size()
    d.write_conf(conf)
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload complete", timeout=10, since=off)
    for w in ("config", "events"):
        with socket.create_connection(("127.0.0.1", ports.port[w]),
                                      timeout=5) as s:
            t0 = time.monotonic()
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
            took = time.monotonic() - t0
            assert 0.5 < took < 3.5, (w, took)
        # and half a ClientHello fares no better
        with socket.create_connection(("127.0.0.1", ports.port[w]),
                                      timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            t0 = time.monotonic()
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
            assert time.monotonic() - t0 < 3.5
    ports.opens("events")


def test_mutual_tls(tenantd, pki):
    ports = TlsPorts(tenantd, pki, client_ca="clientca", metrics=False)
    p = ports.port
    none = client_ctx(pki)
    stranger = client_ctx(pki, "stranger")
    for w in ("config", "events", "routing"):
        if w == "events":
            ports.opens(w)
        assert https(p[w], ports.ctx, "GET", "/healthz")[0] in (200, 404)
        for ctx in (none, stranger):
            refused(lambda: https(p[w], ctx, "GET", "/healthz"))
            if w == "events":
                def session():
                    s = tls_session(p[w], ctx)
                    try:
                        s.open(ports.token, "no-cert")
                    finally:
                        s.close()
                refused(session)
    st, _, _ = https(p["config"], ports.ctx, "GET", "/v1/tenants", ports.token)
    assert st == 200


def test_hup_new_certificate_keeps_open_connections(ports):
    d, p, pki = ports.d, ports.port, ports.pki
    assert peer_der(p["events"], ports.ctx) == pki.der("server")
    # Open: a session, and a keep-alive HTTP connection on config.
    s = tls_session(p["events"], ports.ctx)
    assert s.open(ports.token, "kept")["event"] == "EventOpened"
    keep = http.client.HTTPSConnection("localhost", p["config"],
                                       context=ports.ctx, timeout=5)
    assert https(p["config"], ports.ctx, "GET", "/v1/tenants", ports.token,
                 conn=keep)[0] == 200
    # The files are replaced in place (a renewal), then HUP.
    for ext in ("pem", "key"):
        os.replace(pki.path(f"server2.{ext}"), pki.path(f"server.{ext}.new"))
        os.replace(pki.path(f"server.{ext}.new"), pki.path(f"server.{ext}"))
    new = ssl.PEM_cert_to_DER_cert(open(pki.path("server.pem")).read())
    assert new != ports.pki.der("ca")
    off = d.log_size()
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload complete", timeout=10, since=off)
    for w in ("config", "metrics") + SVC_PORTS:
        assert peer_der(p[w], ports.ctx) == new, w
    assert s.call("RequestPing")["event"] == "EventPong"
    assert https(p["config"], ports.ctx, "GET", "/v1/tenants", ports.token,
                 conn=keep)[0] == 200
    # A key that is not the certificate's: the reload fails, says why, and
    # the running certificate stays.
    with open(pki.path("server.key"), "w") as f:
        f.write(open(pki.path("stranger.key")).read())
    off = d.log_size()
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload failed, keeping the running configuration: .*"
               r"tls\.key_file: the key in .* does not match", timeout=10,
               since=off)
    for w in ("config", "events"):
        assert peer_der(p[w], ports.ctx) == new, w
    assert s.call("RequestPing")["event"] == "EventPong"
    ports.opens("stats")
    s.close()
    keep.close()


def test_large_bodies_answers_and_pipelining_over_tls(ports):
    p, ctx = ports.port, ports.ctx
    # A body of many records is read whole before it is judged.
    big = b'{"userName": "' + b"x" * 300000 + b'"'
    st, _, data = https(p["config"], ctx, "POST", "/v1/persons", ports.token,
                        body=big)
    assert st == 400 and json.loads(data)["error"] == "BadJson", data[:200]
    # Pipelined requests in one write come back in order.
    with socket.create_connection(("127.0.0.1", p["config"]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"".join(
                b"GET /v1/nothing-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                for i in range(40)))
            got = b""
            deadline = time.monotonic() + 5
            while got.count(b"HTTP/1.1 401") < 40 and time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            assert got.count(b"HTTP/1.1 401") == 40, got[-300:]
    # A large answer to a client that reads slowly comes whole: the
    # metrics page, many times over on one connection, not read at first.
    # (A 4 KiB receive buffer made loopback TCP crawl at about 40 KB/s,
    # zero-window probes and all: the 30 pages took the whole deadline as
    # the page grew.  16 KiB still makes the server hold most of them.)
    with socket.create_connection(("127.0.0.1", p["metrics"]), timeout=10) as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            n = 30
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * n)
            time.sleep(0.5)
            got = b""
            deadline = time.monotonic() + 30
            while got.count(b"HTTP/1.1 200") < n or not got.endswith(b"\n"):
                if time.monotonic() > deadline:
                    break
                b = s.recv(4096)
                if not b:
                    break
                got += b
            assert got.count(b"HTTP/1.1 200") == n and len(got) > 5 * 16384


# ---------------------------------------------------------------- tenantd -t

PG = "host=127.0.0.1 port=1 dbname=t100 user=tenantd"


def test_check_reports_tls_files(tmp_path, pki, tenantd_binary):


    def check(tls, worker="events"):
        c = base_conf(str(tmp_path), PG, 1, free_port())
        c = merge(c, {"workers": {worker: {"enabled": True, "listen":
                                           f"127.0.0.1:{free_port()}",
                                           "tls": tls}}})
        text = render_conf(c)
        path = tmp_path / "t.conf"
        path.write_text(text)
        r = run_tenantd(["-t", "-c", str(path)])
        return r, text, str(path)

    def line_of(text, needle):
        for i, ln in enumerate(text.splitlines(), 1):
            if needle in ln:
                return i
        raise AssertionError(needle)

    good = tls_section(pki, client_ca="clientca")
    r, _, _ = check(good)
    assert r.returncode == 0, r.stderr
    r, _, _ = check(tls_section(pki), worker="metrics")
    assert r.returncode == 0, r.stderr
    cases = [
        (dict(good, cert_file=pki.path("missing.pem")), "cert_file",
         "cannot read .*missing.pem: No such file or directory"),
        (dict(good, key_file=pki.path("stranger.key")), "key_file",
         "the key in .*stranger.key does not match the certificate in "
         ".*server.pem"),
        (dict(good, key_file=pki.path("server.pem")), "key_file",
         "holds no PEM private key"),
        (dict(good, cert_file=pki.path("server.key")), "cert_file",
         "holds no PEM certificate"),
        (dict(good, client_ca_file=pki.path("client.key")), "client_ca_file",
         "holds no PEM certificate"),
        (dict(good, client_ca_file=pki.path("nope.pem")), "client_ca_file",
         "cannot read"),
        ({"cert_file": pki.path("server.pem")}, None,
         "missing required value workers.events.tls.key_file"),
        (dict(good, ciphers="HIGH"), "ciphers",
         "unknown key workers.events.tls.ciphers"),
    ]
    for tls, key, rx in cases:
        r, text, path = check(tls)
        assert r.returncode == 1, (tls, r.stderr)
        line = line_of(text, f"{key} = " if key else "tls = {")
        want = f"{path}:{line}: " + (f"workers.events.tls.{key}: " if key and
                                     key != "ciphers" else "")
        assert r.stderr.startswith(want), (want, r.stderr)
        assert re.search(rx, r.stderr), (rx, r.stderr)
    # A relative path is beside the configuration file.
    rel = {"cert_file": os.path.relpath(pki.path("server.pem"), str(tmp_path)),
           "key_file": os.path.relpath(pki.path("server.key"), str(tmp_path))}
    r, _, _ = check(rel)
    assert r.returncode == 0, r.stderr


def test_routing_links_to_a_tls_stats_port(tenantd, pki):
    """The routing worker's link to the stats port (aqt=stat) speaks TLS
    when that port does, mutual TLS included, and is made again when the
    port's certificate is renewed."""
    ports = TlsPorts(tenantd, pki, client_ca="clientca", metrics=False)
    d = ports.d
    d.wait_log(r"role=stats .*client tenantd-routing opened", timeout=20)
    off = d.log_size()
    for ext in ("pem", "key"):
        os.replace(pki.path(f"server2.{ext}"), pki.path(f"server.{ext}"))
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload complete", timeout=10, since=off)
    d.wait_log(r"role=stats .*client tenantd-routing opened", timeout=20,
               since=off)
    assert peer_der(ports.port["stats"], ports.ctx) == pki.der("server")
