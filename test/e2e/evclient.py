# SPDX-License-Identifier: Apache-2.0
"""Clients for the events worker's tests: a session-protocol client (what
an agent desktop does on port 8000) and a scripted voice side speaking
docs/voice-redis.md through redis-py, so that a test decides exactly which
event the voice side writes and when."""

import itertools
import json
import socket
import threading
import time

import redis as redislib

from helpers import TENANT_ID, wait_for


class Session:
    """One connection to a session-protocol port."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        else:       # before connect: a small window, a reader that lags
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.refs = itertools.count(1)
        self.seen = []          # every message read, in order

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, request, **fields):
        """Send a request; returns its ref."""
        ref = fields.pop("ref", None)
        if ref is None:
            ref = next(self.refs)
        msg = {"request": request, "ref": ref}
        msg.update(fields)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return ref

    def read(self, timeout=5.0):
        """The next message, or None at the timeout; raises EOFError when
        the server closed the connection."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                raise EOFError("connection reset")
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        self.seen.append(msg)
        return msg

    def wait(self, pred, timeout=5.0, what="message"):
        """Read until pred(msg) holds; return that message."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            msg = self.read(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise AssertionError(f"no {what} within {timeout} s; read {got!r}")
            got.append(msg)
            if pred(msg):
                return msg

    def answer(self, ref, timeout=5.0):
        return self.wait(lambda m: m.get("ref") == ref, timeout, f"answer to ref {ref}")

    def call(self, request, timeout=5.0, **fields):
        return self.answer(self.send(request, **fields), timeout)

    def event(self, name, timeout=5.0):
        return self.wait(lambda m: m.get("event") == name, timeout, name)

    def collect(self, seconds):
        """Everything that arrives within the next seconds."""
        out, deadline = [], time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            msg = self.read(left)
            if msg is not None:
                out.append(msg)

    def quiet(self, seconds=0.3):
        """Everything that arrives within seconds."""
        out = []
        while True:
            msg = self.read(seconds)
            if msg is None:
                return out
            out.append(msg)

    def open(self, token, client="test", **fields):
        r = self.call("RequestOpen", token=token, client=client, **fields)
        assert r["event"] == "EventOpened", r
        return r


def session_opens(port, token, timeout=1.0):
    """Does a session open on port with token now?  (A readiness probe.)"""
    try:
        s = Session(port, timeout=timeout)
    except OSError:
        return False
    try:
        s.send("RequestOpen", token=token, client="probe")
        m = s.read(2)
        return m is not None and m.get("event") == "EventOpened"
    except (OSError, EOFError):
        return False
    finally:
        s.close()


def key(name, tenant=TENANT_ID):
    return f"tenantd:{{{tenant}}}:voice:{name}"


class Voice:
    """The voice side of one region, scripted by a test."""

    beating = []        # every Voice whose heartbeat runs: stop_all()

    @classmethod
    def stop_all(cls):
        for v in list(cls.beating):
            v.stop_beat()

    def __init__(self, port, region="local", tenant=TENANT_ID):
        self.port = port
        self.r = redislib.Redis(host="127.0.0.1", port=port, decode_responses=True)
        self.region = region
        self.tenant = tenant
        self.seq = itertools.count(1)
        self.boot = f"{region}-{int(time.time() * 1000)}"
        self.last_request = "0-0"

    def beat(self):
        """Keep the heartbeat up, as a voice side does, until stop_beat."""
        self._beating = threading.Event()
        stop = self._beating

        def run():
            r = redislib.Redis(host="127.0.0.1", port=self.port)
            while not stop.is_set():
                try:
                    r.set(key("heartbeat", self.tenant), self.boot, px=3000)
                except redislib.RedisError:
                    pass
                stop.wait(0.5)
        self._beat_thread = threading.Thread(target=run, daemon=True)
        self._beat_thread.start()
        Voice.beating.append(self)

    def stop_beat(self):
        if getattr(self, "_beating", None) is not None:
            self._beating.set()
            self._beat_thread.join()
            self._beating = None
            Voice.beating.remove(self)
        self.r.delete(key("heartbeat", self.tenant))

    def event(self, name, event_id=None, state=None, **fields):
        """XADD one event (and a DN's state in the same transaction);
        returns (stream id, eventId)."""
        eid = event_id or f"{self.boot}-{next(self.seq)}"
        ev = {"event": name, "eventId": eid, "region": self.region,
              "time": int(time.time() * 1000)}
        ev.update(fields)
        p = self.r.pipeline(transaction=True)
        p.xadd(key("events", self.tenant), {"event": json.dumps(ev)})
        if state is not None:
            p.hset(key("state", self.tenant), state["dn"], json.dumps(state))
        sid = p.execute()[0]
        return sid, eid

    def requests(self, timeout=5.0, count=1):
        """The next count requests tenantd wrote."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"tenantd wrote {len(out)} of {count} "
                                     f"requests within {timeout} s: {out!r}")
            got = self.r.xread({key("requests", self.tenant): self.last_request},
                               block=max(1, int(left * 1000)), count=count - len(out))
            for _, entries in got or []:
                for sid, fields in entries:
                    self.last_request = sid
                    out.append(json.loads(fields["request"]))
        return out

    def request(self, timeout=5.0):
        return self.requests(timeout, 1)[0]

    def no_request(self, seconds=0.5):
        got = self.r.xread({key("requests", self.tenant): self.last_request},
                           block=int(seconds * 1000))
        assert not got, f"unexpected request: {got!r}"


def wait_link(sess, up, timeout=8.0):
    name = "EventLinkConnected" if up else "EventLinkDisconnected"
    return sess.event(name, timeout)


def merge_position(positions, msg):
    """Fold an event's position into a client's resume positions."""
    for region, sid in (msg.get("position") or {}).items():
        positions[region] = sid
    return positions


__all__ = ["Session", "Voice", "key", "wait_link", "merge_position", "wait_for"]
