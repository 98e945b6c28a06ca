# SPDX-License-Identifier: Apache-2.0
"""systemd notification protocol: READY, STATUS, RELOADING/READY around a
reload, STOPPING, and watchdog pings."""

import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest

from helpers import merge, wait_for


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tnd-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.done.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode("utf-8", "replace")))

    def texts(self):
        with self.lock:
            return [m for _, m in self.msgs]

    def find(self, rx, start=0):
        """index of the first message (from start) with a line matching rx."""
        r = re.compile(rx, re.M)
        for i, m in enumerate(self.texts()[start:], start):
            if r.search(m):
                return i
        return None

    def wait(self, rx, timeout, start=0):
        return wait_for(lambda: self.find(rx, start) is not None and self.find(rx, start) + 1,
                        timeout, what=f"notify message {rx!r}; got {self.texts()}") - 1

    def close(self):
        self.done.set()
        self.sock.close()
        self.t.join(2)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def test_notify_ready_reload_stopping(tenantd, notify):
    d = tenantd(env={"NOTIFY_SOCKET": notify.path})
    i_ready = notify.wait(r"^READY=1$", 15)
    st, _, body = d.get("/healthz")
    assert st == 200, "READY=1 sent before the metrics worker serves"
    h = d.health()
    assert h["workers"]["metrics"]["state"] == "ready", f"READY=1 before workers ready: {h}"
    assert notify.find(r"^STATUS=.+") is not None, f"no STATUS= line: {notify.texts()}"
    assert notify.find(r"^RELOADING=1") is None
    # reload
    n0 = len(notify.texts())
    d.write_conf(merge(d.conf, {"log": {"level": "debug"}}))
    now_us = time.monotonic_ns() // 1000
    d.signal(signal.SIGHUP)
    i_rel = notify.wait(r"^RELOADING=1$", 5, start=n0)
    msg = notify.texts()[i_rel]
    m = re.search(r"^MONOTONIC_USEC=(\d+)$", msg, re.M)
    assert m, f"RELOADING=1 must carry MONOTONIC_USEC= in the same message: {msg!r}"
    assert abs(int(m.group(1)) - now_us) < 5_000_000, \
        f"MONOTONIC_USEC={m.group(1)} is not CLOCK_MONOTONIC (now ~{now_us})"
    notify.wait(r"^READY=1$", 10, start=i_rel + 1)
    assert notify.find(r"^STOPPING=1$") is None, "STOPPING=1 before any stop"
    # stop
    n1 = len(notify.texts())
    rc, took, killed = d.stop(signal.SIGTERM, 10)
    assert rc == 0 and not killed
    time.sleep(0.2)
    assert notify.find(r"^STOPPING=1$", n1) is not None, \
        f"no STOPPING=1 on TERM: {notify.texts()[n1:]}"
    assert notify.find(r"^WATCHDOG=1$") is None, "WATCHDOG=1 without WATCHDOG_USEC"
    assert i_ready >= 0


def test_notify_not_ready_while_worker_crashes(tenantd, notify):
    d = tenantd(env={"NOTIFY_SOCKET": notify.path,
                     "TENANTD_FAULT": "crash_at_start:metrics"})
    time.sleep(2.5)
    assert d.alive()
    assert notify.find(r"^READY=1$") is None, \
        f"READY=1 sent although the worker never got ready: {notify.texts()}"


def test_watchdog_pings(tenantd, notify):
    d = tenantd(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
    notify.wait(r"^READY=1$", 15)
    t0 = time.monotonic()
    time.sleep(3.0)
    with notify.lock:
        pings = [t for t, m in notify.msgs if re.search(r"^WATCHDOG=1$", m, re.M) and t >= t0]
    assert 3 <= len(pings) <= 30, f"{len(pings)} WATCHDOG=1 pings in 3 s with WATCHDOG_USEC=1s"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.9, f"watchdog gap {max(gaps):.2f}s exceeds the 1 s period: {gaps}"
