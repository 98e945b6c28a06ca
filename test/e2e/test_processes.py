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



def tcp_inodes_to(port):
    """Socket inodes of established TCP connections to 127.0.0.1:port."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for ln in f:
                    parts = ln.split()
                    rport = int(parts[2].split(":")[1], 16)
                    if rport == port and parts[3] == "01":
                        out.add(parts[9])
        except FileNotFoundError:
            pass
    return out


def socket_inodes(pid):
    import os
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(t[8:-1])
    return out


def test_master_never_connects_to_dependencies(tenantd, pg, redis):
    """Only workers hold PostgreSQL and Redis connections; the master none."""
    d = tenantd().wait_ready()
    wpid = d.worker_pid()
    pg_socks, rd_socks = tcp_inodes_to(pg.port), tcp_inodes_to(redis.port)
    master = socket_inodes(d.pid)
    worker = socket_inodes(wpid)
    assert not master & pg_socks, "the master holds a PostgreSQL connection"
    assert not master & rd_socks, "the master holds a Redis connection"
    assert worker & pg_socks, "the worker holds no PostgreSQL connection"
    assert worker & rd_socks, "the worker holds no Redis connection"


def test_two_instances_side_by_side(tenantd):
    """Two tenantd on the same PostgreSQL and Redis; stopping one leaves the
    other serving."""
    import signal
    a = tenantd()
    b = tenantd()
    a.wait_ready()
    b.wait_ready()
    rc, took, killed = a.stop(signal.SIGTERM, 10)
    assert rc == 0 and not killed
    st, _, _ = b.get("/readyz")
    assert st == 200
    assert b.metric("tenantd_worker_restarts_total", worker="metrics") == 0


def test_workers_drop_privileges(tenantd):
    """Started as root with security.user, the worker runs as that user."""
    import os
    import pwd
    import pytest
    if os.geteuid() != 0:
        pytest.skip("needs root")
    nobody = pwd.getpwnam("nobody")
    d = tenantd(security__user="nobody").wait_ready()
    wpid = d.worker_pid()
    with open(f"/proc/{wpid}/status") as f:
        st = {ln.split(":")[0]: ln.split()[1:] for ln in f}
    assert [int(x) for x in st["Uid"]] == [nobody.pw_uid] * 4, f"worker Uid {st['Uid']}"
    assert int(st["Gid"][0]) == nobody.pw_gid, f"worker Gid {st['Gid']}"
    groups = [int(x) for x in st.get("Groups", [])]
    assert groups in ([], [nobody.pw_gid]), f"worker kept supplementary groups {groups}"
    assert d.metric("tenantd_worker_up", worker="metrics") == 1
