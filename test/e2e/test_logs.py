# SPDX-License-Identifier: Apache-2.0
"""Log format: logfmt and JSON lines tagged with time, level, role, pid."""

import json
import re

from helpers import wait_for

LOGFMT = re.compile(r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z '
                    r'level=(error|warn|info|debug) role=([a-z]+) pid=(\d+) msg="(.*)"$')


def test_logfmt_lines(tenantd):
    d = tenantd(log__level="debug").wait_ready()
    wpid = d.worker_pid()
    d.get("/metrics")
    lines = d.log_text().splitlines()
    assert lines, "nothing logged"
    roles = {}
    for ln in lines:
        m = LOGFMT.match(ln)
        assert m, f"not a logfmt line: {ln!r}"
        roles.setdefault(m.group(2), set()).add(int(m.group(3)))
    assert roles.get("master") == {d.pid}, f"master lines carry pids {roles.get('master')}"
    assert wpid in roles.get("metrics", set()), f"no line from the worker {wpid}: {roles}"


def test_json_lines(tenantd):
    d = tenantd(log__format="json", log__level="debug").wait_ready()
    wpid = d.worker_pid()
    d.get("/metrics")
    lines = d.log_text().splitlines()
    assert lines, "nothing logged"
    roles = {}
    for ln in lines:
        try:
            j = json.loads(ln)
        except ValueError:
            raise AssertionError(f"not a JSON line: {ln!r}") from None
        assert isinstance(j, dict)
        for k in ("ts", "level", "role", "pid", "msg"):
            assert k in j, f"key {k} missing in {ln!r}"
        assert j["level"] in ("error", "warn", "info", "debug")
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", j["ts"]), j["ts"]
        assert isinstance(j["pid"], int)
        roles.setdefault(j["role"], set()).add(j["pid"])
    assert roles.get("master") == {d.pid}, roles
    assert wpid in roles.get("metrics", set()), roles


def test_log_to_stderr_by_default(tenantd):
    d = tenantd(log__file=None).wait_ready()
    assert d.log_path == d.stderr_path
    wait_for(lambda: re.search(r"role=master pid=%d " % d.pid, d.stderr_text()), 5,
             what="master lines on stderr")
    assert re.search(r"role=metrics pid=%d " % d.worker_pid(), d.stderr_text()), \
        "no worker line on stderr"


def test_hup_switches_to_json(tenantd):
    import signal
    from helpers import merge
    d = tenantd().wait_ready()
    off = d.log_size()
    d.write_conf(merge(d.conf, {"log": {"format": "json"}}))
    d.signal(signal.SIGHUP)
    wpid = d.worker_pid()
    wait_for(lambda: any('"role":"metrics"' in ln for ln in d.log_text()[off:].splitlines()),
             5, what="a JSON line from the worker after the reload")
    lines = d.log_text()[off:].splitlines()
    # the reload's own first line may still be logfmt; everything after the
    # first JSON line must be JSON
    first = next(i for i, ln in enumerate(lines) if ln.startswith("{"))
    for ln in lines[first:]:
        j = json.loads(ln)
        assert j["role"] in ("master", "metrics"), j
    assert any(json.loads(ln)["pid"] == wpid for ln in lines[first:])
