# SPDX-License-Identifier: Apache-2.0
"""Supervision: a killed worker comes back fast and is counted, a worker
that dies at start is throttled, exit code 2 is not retried blindly, and a
hung worker is killed and replaced."""

import os
import re
import signal
import time

import pytest

from helpers import pid_alive, proc_cmdline, wait_for


def new_worker(d, old, timeout):
    """Wait for a live metrics worker other than old; (pid, seconds)."""
    t0 = time.monotonic()

    def find():
        for pid, cl in d.worker_procs().items():
            if pid != old and cl and cl.startswith("tenantd: metrics"):
                return pid
        return None
    pid = wait_for(find, timeout, interval=0.01, what="a new metrics worker")
    return pid, time.monotonic() - t0


def test_kill9_worker_restarted(tenantd):
    d = tenantd().wait_ready()
    for n in (1, 2, 3):
        old = d.worker_pid()
        os.kill(old, signal.SIGKILL)
        pid, took = new_worker(d, old, 10)
        if n == 1:
            assert took <= 1.0, f"worker restarted after {took:.2f}s, want <= 1 s"
        d.wait_ready(10)
        assert d.worker_pid() == pid
        assert not pid_alive(old), f"killed worker {old} not reaped"
        restarts = d.metric("tenantd_worker_restarts_total", worker="metrics")
        assert restarts == n, f"tenantd_worker_restarts_total is {restarts} after {n} kills"
        assert d.health()["workers"]["metrics"]["restarts"] == n
        assert d.metric("tenantd_worker_up", worker="metrics") == 1
    up = d.metric("tenantd_worker_uptime_seconds", worker="metrics")
    assert up < 10, f"uptime {up} should restart from zero with the new worker"
    # other workers would not be disturbed; the master never restarted
    assert d.health()["master"]["pid"] == d.pid


def worker_pids_from_log(text, master_pid):
    """pids of metrics processes named in the log (own lines or master's)."""
    pids = set(int(p) for p in re.findall(r"role=metrics pid=(\d+)", text))
    pids |= set(int(p) for p in re.findall(r'"role":"metrics","pid":(\d+)', text))
    for ln in text.splitlines():
        if "metrics" in ln:
            for p in re.findall(r"pid[ =:]+(\d+)", ln.split("msg=", 1)[-1]):
                pids.add(int(p))
    pids.discard(master_pid)
    return pids


def test_crash_at_start_is_throttled(tenantd):
    d = tenantd(env={"TENANTD_FAULT": "crash_at_start:metrics"},
                supervisor__throttle_delay=1.0, supervisor__restart_delay_max=30.0)
    d.watcher.interval = 0.005
    time.sleep(4.2)
    assert d.alive(), f"master died ({d.proc.returncode}) with a crashing worker\n" + \
        d.diagnostics()
    pids = set(d.watcher.seen) | worker_pids_from_log(d.log_text(), d.pid)
    assert 2 <= len(pids) <= 4, (f"{len(pids)} metrics starts in 4 s with "
                                 f"throttle_delay=1: want 2..4 (retried, but throttled); "
                                 f"pids {sorted(pids)}\n{d.diagnostics()}")
    # never ready: no metrics port
    with pytest.raises(OSError):
        d.get("/healthz", timeout=0.5)
    rc, took, killed = d.stop(signal.SIGTERM, timeout=10)
    assert not killed and rc == 0 and took < 5, \
        f"master should exit 0 on TERM within 5 s: rc={rc} took={took:.1f}s killed={killed}"


def worker_starts_from_log(text):
    """{pid: first timestamp (s)} of each metrics process in the log, from its
    own lines or the master's lines naming it."""
    import datetime
    starts = {}
    for ln in text.splitlines():
        m = re.match(r"ts=(\S+) level=\w+ role=(\w+) pid=(\d+) msg=(.*)", ln)
        if not m:
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        pids = []
        if m.group(2) == "metrics":
            pids.append(int(m.group(3)))
        elif "metrics" in m.group(4):
            pids += [int(p) for p in re.findall(r"pid[ =:]+(\d+)", m.group(4))]
        for p in pids:
            starts.setdefault(p, t)
    return starts


def test_crash_at_start_delays_grow(tenantd):
    d = tenantd(env={"TENANTD_FAULT": "crash_at_start:metrics"},
                supervisor__throttle_delay=0.3, supervisor__restart_delay_max=30.0)
    wait_for(lambda: len(worker_starts_from_log(d.log_text())) >= 4, 6,
             what="4 starts of the crashing worker (throttle_delay=0.3)")
    t = sorted(worker_starts_from_log(d.log_text()).values())
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert gaps[0] >= 0.25, f"first retry after {gaps[0]:.2f}s, throttle_delay is 0.3"
    assert all(g2 > g1 * 1.3 for g1, g2 in zip(gaps, gaps[1:])), \
        f"delays between starts should grow: {['%.2f' % g for g in gaps]}"
    assert d.alive()


def test_exit2_not_respawned(tenantd):
    d = tenantd(env={"TENANTD_FAULT": "exit2_at_start:metrics"},
                supervisor__throttle_delay=0.2)
    d.watcher.interval = 0.005
    d.wait_log(r"(?i)(gave up|give up|giving up|not restart|will not|won't)", timeout=5)
    # the worker said why, through its channel (IPC_FATAL), before exiting
    d.wait_log(r"role=master .*worker metrics reports: fault injection: "
               r"exiting with status 2", timeout=5)
    time.sleep(3.0)
    pids = set(d.watcher.seen) | worker_pids_from_log(d.log_text(), d.pid)
    assert len(pids) <= 1, (f"a worker exiting with 2 was started {len(pids)} times: "
                            f"{sorted(pids)}\n{d.diagnostics()}")
    if d.alive():
        rc, took, killed = d.stop(signal.SIGTERM, timeout=10)
        assert not killed and rc == 0 and took < 5, (rc, took, killed)


def test_hung_worker_replaced(tenantd):
    d = tenantd(supervisor__heartbeat_interval=0.5,
                supervisor__heartbeat_timeout=2.0).wait_ready()
    old = d.worker_pid()
    t0 = time.monotonic()
    os.kill(old, signal.SIGSTOP)
    try:
        pid, _ = new_worker(d, old, 10)
        took = time.monotonic() - t0
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except OSError:
            pass
    assert 1.5 <= took <= 5.0, \
        f"hung worker replaced after {took:.2f}s; heartbeat_timeout is 2.0"
    wait_for(lambda: not pid_alive(old), 3, what=f"hung worker {old} to be killed")
    d.wait_ready(10)
    assert d.worker_pid() == pid
    assert d.metric("tenantd_worker_restarts_total", worker="metrics") == 1
    assert d.health()["workers"]["metrics"]["restarts"] == 1


def test_worker_exits_when_master_dies(tenantd):
    """A worker whose channel closes exits at once (no orphan left serving)."""
    d = tenantd().wait_ready()
    w = d.worker_pid()
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(5)
    wait_for(lambda: not pid_alive(w), 3,
             what=f"worker {w} to exit after its master was killed")
    d.exit_checked = True
