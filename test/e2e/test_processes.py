# SPDX-License-Identifier: Apache-2.0
"""Process layout: one master, one process per enabled worker, titled so
that ps shows what each one is."""

import subprocess

from helpers import proc_cmdline


def test_process_titles(tenantd):
    d = tenantd().wait_ready()
    kids = d.worker_procs()
    assert len(kids) == 1, f"exactly one worker (metrics) expected, children: {kids}"
    (wpid, cl), = kids.items()
    assert cl.startswith("tenantd: metrics"), f"worker cmdline {cl!r}"
    assert proc_cmdline(d.pid).startswith("tenantd: master"), \
        f"master cmdline {proc_cmdline(d.pid)!r}"
    ps = subprocess.run(["ps", "-o", "pid=,args=", "-p", f"{d.pid},{wpid}"],
                        stdout=subprocess.PIPE, text=True, timeout=10).stdout
    rows = {int(ln.split(None, 1)[0]): ln.split(None, 1)[1] for ln in ps.splitlines()}
    assert rows[d.pid].startswith("tenantd: master"), rows
    assert rows[wpid].startswith("tenantd: metrics"), rows
    assert wpid == d.worker_pid(), "/tenant/health names another pid than the worker"

