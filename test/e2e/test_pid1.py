# SPDX-License-Identifier: Apache-2.0
"""tenantd as PID 1 of a PID namespace (container entrypoint): TERM stops it
cleanly and it reaps orphans."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers import children_of, pid_alive, proc_cmdline, proc_stat, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare")


def nspid(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("NSpid:"):
                return [int(x) for x in ln.split()[1:]]
    return []


@pytest.fixture
def pid1(tenantd):
    d = tenantd(argv_prefix=["unshare", "--pid", "--fork", "--kill-child", "--"])
    master = wait_for(lambda: [p for p in children_of(d.proc.pid)
                               if (proc_cmdline(p) or "").startswith("tenantd")],
                      10, what="tenantd under unshare")[0]
    d.master_pid = master
    d.wait_ready()
    return d


def test_pid1_term(pid1):
    d = pid1
    m = d.master_pid
    assert nspid(m)[-1] == 1, f"tenantd is not PID 1 in its namespace: NSpid {nspid(m)}"
    assert d.health()["master"]["pid"] == 1, "the master sees itself as pid 1"
    workers = [p for p in children_of(m) if pid_alive(p)]
    assert workers, "no worker under the PID 1 master"
    t0 = time.monotonic()
    os.kill(m, signal.SIGTERM)
    rc = d.proc.wait(10)
    took = time.monotonic() - t0
    assert rc == 0, f"unshare (tenantd as PID 1) exited {rc} after TERM\n{d.diagnostics()}"
    assert took < 5, f"stop took {took:.1f}s"
    for w in workers:
        assert not pid_alive(w), f"worker {w} left behind"


def test_pid1_reaps_orphans(pid1):
    d = pid1
    m = d.master_pid
    # A shell in the namespace starts a sleeper and exits: the sleeper is
    # re-parented to PID 1, which must reap it when it dies.
    r = subprocess.run(["nsenter", "-t", str(m), "-p", "--", "sh", "-c",
                        "sleep 30 >/dev/null 2>&1 & exit 0"], timeout=10)
    assert r.returncode == 0
    orphan = wait_for(lambda: [p for p in children_of(m)
                               if (proc_cmdline(p) or "").startswith("sleep 30")],
                      5, what="the orphan re-parented to tenantd")[0]
    os.kill(orphan, signal.SIGKILL)
    wait_for(lambda: proc_stat(orphan) is None, 5,
             what=f"orphan {orphan} to be reaped by PID 1 (still {proc_stat(orphan)})")
    d.wait_ready(5)
    assert d.metric("tenantd_worker_restarts_total", worker="metrics") == 0, \
        "reaping an orphan was mistaken for a worker death"
    os.kill(m, signal.SIGTERM)
    assert d.proc.wait(10) == 0
