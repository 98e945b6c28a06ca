# SPDX-License-Identifier: Apache-2.0
"""A session port (events 8000) out of file descriptors: accept pauses
instead of spinning, says so once, and serves again once descriptors are
free (common/net.c's pause, shared with the HTTP ports)."""

import socket
import time

from evclient import Session
from helpers import config_api_ready, free_port, wait_for


def test_session_port_out_of_descriptors_backs_off_and_logs_once(tenantd):
    port = free_port()
    d = tenantd({"workers": {"events": {"enabled": True,
                                        "listen": f"127.0.0.1:{port}"}}},
                config_worker=True, argv_prefix=["prlimit", "--nofile=96:96"])
    config_api_ready(d)

    def opens():
        try:
            s = Session(port, timeout=2)
            s.open(d.admin_token, "probe")
            s.close()
            return True
        except (OSError, AssertionError, EOFError):
            return False
    wait_for(opens, 20, what="the events port to open a session")
    size0 = d.log_size()
    socks = []
    try:
        for _ in range(300):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        time.sleep(3)
        text = d.log_text()
        paused = [ln for ln in text.splitlines() if "sess: accept:" in ln]
        assert len(paused) == 1, f"want one warning: {paused[:5]} ({len(paused)})"
        assert "Too many open files" in paused[0]
        assert d.log_size() - size0 < 8192
    finally:
        for s in socks:
            s.close()
    wait_for(opens, 10, what="a session to open again")
    wait_for(lambda: "sess: accepting connections again" in d.log_text(), 5,
             what="the recovery to be logged")
