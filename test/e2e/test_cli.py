# SPDX-License-Identifier: Apache-2.0
"""Command line: -V, -h, -t (config check with FILE:LINE: reason) and -T
(normalized config that must itself pass -t)."""

import os
import re

import pytest

from helpers import base_conf, merge, dotted, render_conf, run_tenantd, TENANT_ID

PG = "host=127.0.0.1 port=1 dbname=t100 user=tenantd"


@pytest.fixture
def conf_file(tmp_path, tenantd_binary):
    """Write a config (base + overrides) and return (path, text)."""
    def write(overrides=None, text=None, name="t.conf"):
        c = base_conf(str(tmp_path), PG, 1, 15999)
        if overrides:
            c = merge(c, overrides)
        t = text if text is not None else render_conf(c)
        p = tmp_path / name
        p.write_text(t)
        return str(p), t
    return write


def line_of(text, needle, occurrence=1):
    """1-based line number of the occurrence-th line containing needle."""
    n = 0
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            n += 1
            if n == occurrence:
                return i
    raise AssertionError(f"{needle!r} not in generated config")


def test_version(tenantd_binary):
    r = run_tenantd(["-V"])
    assert r.returncode == 0, f"-V exited {r.returncode}: {r.stderr}"
    assert "0.1.0" in r.stdout, f"-V should print version 0.1.0 on stdout, got {r.stdout!r}"


def test_help(tenantd_binary):
    r = run_tenantd(["-h"])
    assert r.returncode == 0, f"-h exited {r.returncode}: {r.stderr}"
    out = r.stdout + r.stderr
    for opt in ("-c", "-t", "-T", "-V"):
        assert opt in out, f"usage text does not mention {opt}: {out!r}"


def test_unknown_option_fails(tenantd_binary):
    r = run_tenantd(["-Z"])
    assert r.returncode != 0, "an unknown option must not succeed"
    assert r.stderr.strip(), "an unknown option must say something on stderr"


def test_check_valid_config(conf_file):
    path, _ = conf_file()
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 0, f"-t on a valid config exited {r.returncode}: {r.stderr}"


def test_check_shipped_config(tenantd_binary, tmp_path):
    """conf/tenantd.conf passes -t once its admin token exists beside it
    (make run and the Debian package create it), and names it clearly
    when it does not."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "tenantd.conf")
    path = tmp_path / "tenantd.conf"
    path.write_text(open(src).read())
    r = run_tenantd(["-t", "-c", str(path)])
    assert r.returncode == 1 and f"{tmp_path}/admin.token" in r.stderr, r.stderr
    (tmp_path / "admin.token").write_text("t0ken\n")
    r = run_tenantd(["-t", "-c", str(path)])
    assert r.returncode == 0, f"conf/tenantd.conf does not pass -t: {r.stderr}"


# (id, overrides, needle on the offending line or None, words the reason must contain)
BAD = [
    ("unknown-key", {"log": {"colour": "red"}}, "colour", ["colour"]),
    ("unknown-section", {"frobnicate": {"x": 1}}, "frobnicate", ["frobnicate"]),
    ("wrong-type-number", {"supervisor": {"heartbeat_timeout": "soon"}},
     "heartbeat_timeout", ["heartbeat_timeout"]),
    ("wrong-type-port", {"redis": {"port": "six"}}, "port = \"six\"", ["port"]),
    ("port-out-of-range", {"redis": {"port": 70000}}, "port = 70000", ["port"]),
    ("bad-address", {"workers": {"metrics": {"listen": "127.0.0.1:99999"}}},
     "listen", ["listen"]),
    ("bad-address-no-port", {"workers": {"metrics": {"listen": "localhost"}}},
     "listen", ["listen"]),
    ("bad-uuid", {"tenant": {"id": "not-a-uuid"}}, "not-a-uuid", ["id"]),
    ("bad-level", {"log": {"level": "loud"}}, "loud", ["level"]),
    ("bad-format", {"log": {"format": "xml"}}, "xml", ["format"]),
    ("missing-conninfo", {"postgres": {"conninfo": None}}, None, ["conninfo"]),
    ("missing-tenant-id", {"tenant": {"id": None}}, None, ["id"]),
    ("pg-password-file", {"postgres": {"password_file": "/nonexistent/pg.pw"}},
     "password_file", ["/nonexistent/pg.pw"]),
    ("admin-token-file", {"security": {"admin_token_file": "/nonexistent/admin.tok"}},
     "admin_token_file", ["/nonexistent/admin.tok"]),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_check_rejects(conf_file, case):
    _, overrides, needle, words = case
    path, text = conf_file(overrides)
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 1, (f"-t should exit 1 on {case[0]}, exited {r.returncode}; "
                               f"stderr={r.stderr!r}\nconfig:\n{text}")
    m = re.search(re.escape(path) + r":(\d+): (.+)", r.stderr)
    assert m, f"stderr should hold '{path}:LINE: reason', got {r.stderr!r}"
    if needle is not None:
        want = line_of(text, needle)
        assert int(m.group(1)) == want, (f"error points at line {m.group(1)}, the offending "
                                         f"line is {want}: {r.stderr!r}\nconfig:\n{text}")
    for w in words:
        assert w in m.group(2), f"reason should mention {w!r}: {r.stderr!r}"


def test_check_empty_secret_file(conf_file, tmp_path):
    empty = tmp_path / "empty.tok"
    empty.write_text("")
    path, text = conf_file({"security": {"admin_token_file": str(empty)}})
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 1, f"an empty secret file should be refused: {r.stderr!r}"
    assert f"{path}:{line_of(text, 'admin_token_file')}:" in r.stderr, r.stderr


def test_check_readable_secret_files_pass(conf_file, tmp_path):
    pw = tmp_path / "pg.pw"
    pw.write_text("s3cret\n")
    tok = tmp_path / "admin.tok"
    tok.write_text("token-123\n")
    path, _ = conf_file({"postgres": {"password_file": str(pw)},
                         "security": {"admin_token_file": str(tok)}})
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 0, f"readable secret files should pass -t: {r.stderr!r}"


def test_check_syntax_error(conf_file):
    text = 'tenant = { id = "%s"; name = "t100" }\nlog = { level = "info"\n' % TENANT_ID
    path, _ = conf_file(text=text)
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 1, f"a syntax error should exit 1: {r.stderr!r}"
    assert re.search(re.escape(path) + r":\d+: \S", r.stderr), r.stderr


def test_check_missing_file(tmp_path, tenantd_binary):
    path = str(tmp_path / "nope.conf")
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 1, f"a missing file should exit 1: {r.stderr!r}"
    assert path in r.stderr, f"stderr should name the file: {r.stderr!r}"


def test_check_disabled_unbuilt_workers_pass(conf_file):
    path, _ = conf_file({"workers": {w: {"enabled": False, "listen": "127.0.0.1:18002"}
                                     for w in ("config", "events", "stats", "routing")}})
    r = run_tenantd(["-t", "-c", path])
    assert r.returncode == 0, f"disabled worker sections must pass: {r.stderr!r}"


def test_dump_is_normalized_and_valid(conf_file, tmp_path):
    path, _ = conf_file({"log": {"level": "debug"}})
    r = run_tenantd(["-T", "-c", path])
    assert r.returncode == 0, f"-T exited {r.returncode}: {r.stderr!r}"
    out = r.stdout
    assert TENANT_ID in out and "127.0.0.1:15999" in out, f"-T lost values:\n{out}"
    assert re.search(r'level\s*=\s*"debug"', out), f"-T lost log.level:\n{out}"
    # defaults spelled out
    for key in ("heartbeat_interval", "restart_delay_max", "max_clients"):
        assert key in out, f"-T should spell out the default of {key}:\n{out}"
    dumped = tmp_path / "dumped.conf"
    dumped.write_text(out)
    r2 = run_tenantd(["-t", "-c", str(dumped)])
    assert r2.returncode == 0, f"-T output does not pass -t: {r2.stderr!r}\n{out}"
    r3 = run_tenantd(["-T", "-c", str(dumped)])
    assert r3.returncode == 0 and r3.stdout == out, \
        "-T of the -T output should be identical (normalized form is a fixed point)"


def test_dump_invalid_fails(conf_file):
    path, _ = conf_file({"log": {"colour": "red"}})
    r = run_tenantd(["-T", "-c", path])
    assert r.returncode == 1, f"-T on an invalid config should exit 1: {r.returncode}"
    assert f"{path}:" in r.stderr


def test_check_does_not_start(conf_file):
    """-t must only check: return promptly without opening the metrics port."""
    import socket
    path, _ = conf_file()
    r = run_tenantd(["-t", "-c", path], timeout=5)
    assert r.returncode == 0
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", 15999)) != 0, "-t left something listening"
    finally:
        s.close()


def test_start_with_invalid_config_exits_2(conf_file):
    """Bad configuration at start: FILE:LINE: reason, exit 2 (the systemd unit
    has RestartPreventExitStatus=2: restarting cannot fix a bad config)."""
    path, text = conf_file({"log": {"colour": "red", "file": None}})
    r = run_tenantd(["-c", path], timeout=10)
    assert r.returncode == 2, f"start with a bad config exited {r.returncode}: {r.stderr!r}"
    assert f"{path}:{line_of(text, 'colour')}:" in r.stderr, r.stderr


def test_start_with_busy_port_fails(conf_file):
    """The metrics address is taken: fail at once, saying which address."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        path, _ = conf_file({"log": {"file": None},
                             "workers": {"metrics": {"listen": f"127.0.0.1:{port}"}}})
        r = run_tenantd(["-c", path], timeout=10)
    finally:
        s.close()
    assert r.returncode not in (0, None), "started although its port is taken"
    assert f"127.0.0.1:{port}" in r.stderr, f"the error should name the address: {r.stderr!r}"
