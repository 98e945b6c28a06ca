# SPDX-License-Identifier: Apache-2.0
"""test_packaging - the systemd unit and the Debian package.

The unit must pass `systemd-analyze verify` without a word about it, keep its
hardening, and say what the daemon relies on (notify, watchdog, mixed kill,
no respawn on exit 2).  `systemd-analyze verify` checks that every Exec*
binary exists, and /usr/sbin/tenantd does not on a build machine: the test
verifies a copy of the unit in a temporary directory with that one path
rewritten to /bin/true, and nothing else changed.

The package is built by `make deb` and installed with dpkg into a scratch
root (--root with --force-script-chrootless, so the maintainer scripts run on
the host with DPKG_ROOT set; --force-depends, since the scratch root holds no
libraries).  The test then checks the installed files, the conffile, the
tenantd user, an upgrade that keeps an edited conffile, and remove and purge.
A `systemctl` placed first on PATH fails the test if any maintainer script
calls it: nothing may touch the host's systemd from a scratch root.

Self-contained: standard library and pytest only.  Runs as root.
"""
import hashlib
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "systemd" / "tenantd.service"
CONF = REPO / "conf" / "tenantd.conf"
# The Debian package of each library tenantd may link.
SONAME_PACKAGES = {
    "libc.so.6": "libc6",
    "libevent-2.1.so.7": "libevent-2.1-7",
    "libevent_core-2.1.so.7": "libevent-core-2.1-7",
    "libevent_pthreads-2.1.so.7": "libevent-pthreads-2.1-7",
    "libevent_openssl-2.1.so.7": "libevent-openssl-2.1-7",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3",
    "libpq.so.5": "libpq5",
    "libhiredis.so.0.14": "libhiredis0.14",
    "librdkafka.so.1": "librdkafka1",
    "libjansson.so.4": "libjansson4",
    "libconfig.so.9": "libconfig9",
}


def run(cmd, **kw):
    """run - a command with its output captured; never raises on failure"""
    kw.setdefault("timeout", 600)
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, **kw)


def output(res):
    return f"rc={res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


def unit_settings(text):
    """unit_settings - {section: [(key, value), ...]} of a unit file"""
    sections, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = sections.setdefault(line[1:-1], [])
            continue
        key, _, value = line.partition("=")
        cur.append((key.strip(), value.strip()))
    return sections


def values(settings, key):
    return [v for k, v in settings if k == key]


# ---- the systemd unit -----------------------------------------------------

@pytest.fixture
def checkable_unit(tmp_path):
    """the unit with /usr/sbin/tenantd rewritten to a binary that exists"""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    assert "/usr/sbin/tenantd" in text
    unit = tmp_path / "tenantd.service"
    unit.write_text(text.replace("/usr/sbin/tenantd", "/bin/true"))
    return unit


def test_unit_verifies(checkable_unit):
    res = run(["systemd-analyze", "verify", checkable_unit])
    about_unit = [line for line in (res.stdout + res.stderr).splitlines()
                  if "tenantd" in line]
    assert res.returncode == 0 and not about_unit, output(res)


def test_unit_hardening_exposure(checkable_unit):
    # 2.5 when written; 3.0 leaves room for a justified relaxation but
    # fails when a whole group of protections is dropped.
    res = run(["systemd-analyze", "security", "--offline=yes",
               "--threshold=30", "--no-pager", checkable_unit])
    assert res.returncode == 0, output(res)


def test_unit_contract():
    svc = unit_settings(UNIT.read_text())["Service"]
    one = {k: v for k, v in svc}
    assert one["Type"] == "notify"
    assert one["NotifyAccess"] == "main"
    assert one["ExecStart"] == "/usr/sbin/tenantd -c /etc/tenantd/tenantd.conf"
    assert one["ExecStartPre"] == \
        "/usr/sbin/tenantd -t -c /etc/tenantd/tenantd.conf"
    assert values(svc, "ExecReload")[-1] == "/bin/kill -HUP $MAINPID"
    assert one["WatchdogSec"] == "30"
    # The master stops its workers itself; systemd only signals it.
    assert one["KillMode"] == "mixed"
    assert one["Restart"] == "on-failure"
    assert "2" in one["RestartPreventExitStatus"].split()
    assert one["LimitNOFILE"] == "65536"
    # The master starts as root and drops its workers itself, so it needs
    # exactly these: bind low ports, set ids and groups, signal workers.
    assert "User" not in one and "DynamicUser" not in one
    assert set(one["CapabilityBoundingSet"].split()) == {
        "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
    assert one["NoNewPrivileges"] == "yes"
    assert one["ProtectSystem"] == "strict"


# ---- the Debian package ---------------------------------------------------

def build_dir():
    """build_dir - the folder of the binary under test, relative to REPO"""
    binary = os.environ.get("TENANTD_BIN")
    if binary:
        parent = Path(binary).resolve().parent
        if parent.is_relative_to(REPO):
            return parent.relative_to(REPO)
    return Path("build")


@pytest.fixture(scope="module")
def deb():
    """deb - the package `make deb` builds"""
    for tool in ("make", "dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    build = build_dir()
    # The sanitizer build must be remade with its own flags, if at all.
    flags = ["SANITIZE=1"] if build == Path("build/asan") else [f"BUILD={build}"]
    res = run(["make", "--no-print-directory", "-C", REPO, "deb"] + flags,
              timeout=1800)
    assert res.returncode == 0, output(res)
    debs = [line for line in res.stdout.splitlines() if line.endswith(".deb")]
    assert debs, output(res)
    path = (REPO / debs[-1]).resolve()
    assert path.parent == (REPO / build).resolve() and path.is_file()
    return path


@pytest.fixture
def scratch_root(tmp_path):
    """scratch_root - an empty dpkg database and the account files"""
    if os.geteuid() != 0:
        pytest.skip("installing into a scratch root needs root")
    root = tmp_path / "root"
    admin = root / "var" / "lib" / "dpkg"
    for d in ("info", "updates"):
        (admin / d).mkdir(parents=True)
    for f in ("status", "available"):
        (admin / f).touch()
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    for f, line in (("shadow", "root:*:19000:0:99999:7:::\n"),
                    ("gshadow", "root:*::\n")):
        (etc / f).write_text(line)
        (etc / f).chmod(0o640)
    nologin = root / "usr" / "sbin" / "nologin"
    nologin.parent.mkdir(parents=True)
    nologin.touch(mode=0o755)
    return root


@pytest.fixture
def dpkg(tmp_path, scratch_root):
    """dpkg - run dpkg on the scratch root, systemctl booby-trapped"""
    trap_dir = tmp_path / "trap"
    trap_dir.mkdir()
    trap_log = tmp_path / "systemctl-called"
    trap = trap_dir / "systemctl"
    trap.write_text(f'#!/bin/sh\necho "$@" >> "{trap_log}"\nexit 1\n')
    trap.chmod(0o755)
    env = dict(os.environ, PATH=f"{trap_dir}:{os.environ['PATH']}")

    def call(*args):
        res = run(["dpkg", f"--root={scratch_root}",
                   "--force-script-chrootless", *args], env=env)
        assert not trap_log.exists(), \
            "a maintainer script called systemctl: " + trap_log.read_text()
        return res
    return call


def account(root, name, db):
    for line in (root / "etc" / db).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    return None


def assert_mode(path, mode, uid=None, gid=None):
    st = path.lstat()
    assert stat.S_IMODE(st.st_mode) == mode, f"{path}: {oct(st.st_mode)}"
    if uid is not None:
        assert st.st_uid == uid, f"{path}: uid {st.st_uid}"
    if gid is not None:
        assert st.st_gid == gid, f"{path}: gid {st.st_gid}"


def needed_libraries(binary):
    """needed_libraries - the DT_NEEDED sonames of an ELF file"""
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed")
    res = run(["readelf", "--dynamic", binary])
    assert res.returncode == 0, output(res)
    return [line.rsplit("[", 1)[1].rstrip("]") for line in
            res.stdout.splitlines() if "(NEEDED)" in line]


def test_deb_fields(deb):
    res = run(["dpkg-deb", "--field", deb, "Package", "Architecture",
               "Depends"])
    assert res.returncode == 0, output(res)
    assert "Package: tenantd" in res.stdout
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    assert f"Architecture: {arch}" in res.stdout
    depends = {d.split()[0] for d in
               res.stdout.split("Depends:", 1)[1].split(",")}
    assert "passwd" in depends, depends
    # Every library the binary loads comes from a package it depends on.
    needed = needed_libraries(deb.parent / "tenantd")
    assert "libc.so.6" in needed, needed
    for soname in needed:
        if soname in SONAME_PACKAGES:
            assert SONAME_PACKAGES[soname] in depends, (soname, depends)


def test_deb_install_upgrade_remove(deb, scratch_root, dpkg):
    root = scratch_root
    res = dpkg("--force-depends", "-i", deb)
    assert res.returncode == 0, output(res)

    # The database: installed, with its conffile and checksum.
    res = run(["dpkg", f"--root={root}", "-s", "tenantd"])
    assert res.returncode == 0, output(res)
    assert "Status: install ok installed" in res.stdout
    # The packaged config is the default one with the workers' user set.
    packaged = CONF.read_text().replace('  # user = "tenantd";',
                                        '  user = "tenantd";')
    assert '\n  user = "tenantd";' in packaged
    conf_md5 = hashlib.md5(packaged.encode()).hexdigest()
    assert f" /etc/tenantd/tenantd.conf {conf_md5}" in res.stdout, res.stdout

    # The user and group, made in the scratch root and not on the host.
    user = account(root, "tenantd", "passwd")
    group = account(root, "tenantd", "group")
    assert user and group, (root / "etc" / "passwd").read_text()
    uid, gid = int(user[2]), int(group[2])
    assert 0 < uid < 1000 and int(user[3]) == gid
    assert user[5:] == ["/var/lib/tenantd", "/usr/sbin/nologin"]
    assert account(root, "tenantd", "shadow"), "no shadow entry"

    # The files, where they belong, as built.
    built = deb.parent / "tenantd"
    sbin = root / "usr" / "sbin" / "tenantd"
    assert sbin.read_bytes() == built.read_bytes()
    assert_mode(sbin, 0o755, 0, 0)
    unit = root / "lib" / "systemd" / "system" / "tenantd.service"
    assert unit.read_text() == UNIT.read_text()
    assert_mode(unit, 0o644, 0, 0)
    conf = root / "etc" / "tenantd" / "tenantd.conf"
    assert conf.read_text() == packaged
    # The admin token the packaged config names, random, readable by the
    # workers' group only.
    token = root / "etc" / "tenantd" / "admin.token"
    assert re.fullmatch(r"[0-9a-f]{64}\n", token.read_text()), token.read_text()
    assert_mode(token, 0o640, 0, gid)
    assert_mode(conf, 0o640, 0, gid)
    assert_mode(conf.parent, 0o750, 0, gid)
    assert_mode(root / "var" / "lib" / "tenantd", 0o750, uid, gid)
    doc = root / "usr" / "share" / "doc" / "tenantd"
    copyright = (doc / "copyright").read_text()
    assert "License: Apache-2.0" in copyright
    assert "Version 2.0, January 2004" in copyright
    if (REPO / "README.md").exists():
        assert (doc / "README.md").read_bytes() == \
            (REPO / "README.md").read_bytes()
    wants = (root / "etc" / "systemd" / "system" / "multi-user.target.wants"
             / "tenantd.service")
    if shutil.which("deb-systemd-helper"):
        assert os.readlink(wants) == "/lib/systemd/system/tenantd.service"

    # An upgrade (here a reinstall) keeps an edited conffile and the user.
    conf.write_text(packaged + "\n# edited by the operator\n")
    res = dpkg("--force-depends", "--force-confold", "-i", deb)
    assert res.returncode == 0, output(res)
    assert conf.read_text().endswith("# edited by the operator\n")
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd.count("\ntenantd:") == 1, passwd

    # Remove: program files go, the edited conffile stays.
    res = dpkg("-r", "tenantd")
    assert res.returncode == 0, output(res)
    res = run(["dpkg", f"--root={root}", "-s", "tenantd"])
    assert "Status: deinstall ok config-files" in res.stdout, output(res)
    assert not sbin.exists() and not unit.exists() and not doc.exists()
    assert conf.exists()

    # Purge: configuration and state go; the user stays, as Debian does.
    res = dpkg("-P", "tenantd")
    assert res.returncode == 0, output(res)
    res = run(["dpkg", f"--root={root}", "-s", "tenantd"])
    assert res.returncode != 0, output(res)
    assert not conf.exists()
    assert not token.exists()
    assert not (root / "var" / "lib" / "tenantd").exists()
    assert not os.path.lexists(wants)
    assert account(root, "tenantd", "passwd")
