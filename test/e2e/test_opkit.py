# SPDX-License-Identifier: Apache-2.0
"""test_opkit - the operator's kit: what an operator installs beside the
daemon, and the metrics it relies on.

- packaging/prometheus/: the recording and alerting rules pass
  `promtool check rules`, their unit tests pass `promtool test rules`,
  every alert fires in a test and none fires for a healthy instance, every
  recording rule is tested, and every worker has its group.
- packaging/grafana/tenantd.json: a dashboard whose queries parse (promtool
  checks them as rules) and that covers health, workers, clients, events,
  statistics, configuration, outbound and routing.
- Every metric name in a rule expression or a dashboard query is served:
  a tenantd with every worker is scraped, and the names are taken out of
  the PromQL (identifiers not followed by "(", outside strings, label
  matchers, ranges and grouping clauses, and not keywords).  Rules may
  also name what a recording rule makes, and `up` (Prometheus's own).
- The manual pages tenantd(8) and tenantd.conf(5) render without a
  warning (`man --warnings`), have a NAME line lexgrog reads, and say
  what the code does: tenantd.conf(5) has every key of common/conf.c's
  tables under its section, with its type and default (or "required"),
  and no key that is not there; `tenantd -T` agrees on every default;
  tenantd(8) has every option of supervisor/main.c, the signals and the
  exit codes.  `make install` and the Debian package install them, with
  the kit, under share/man and share/tenantd.
- The two series of the Tenant Service's alert rules:
  tenant_rq_client_state (2 while a worker's Redis connection to the
  voice request stream is up) and tenant_tserver_configuration_retry (not
  0 while a worker cannot read the configuration) follow Redis and
  PostgreSQL outages.
- A clean first start: workers that start before the configuration
  tables exist wait for them, saying so once at info, with no warning.

promtool comes with Debian's prometheus package, man and lexgrog with
man-db (tools/deps.sh test installs both).  Where one is missing the tests
that need it are skipped, except under CI (CI set), where they fail.
"""

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import config_api_ready, free_port, merge, parse_prom, run_tenantd, wait_for

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "packaging" / "prometheus"
ALERTS = PROM / "tenantd-alerts.rules.yml"
RECORDING = PROM / "tenantd-recording.rules.yml"
RULE_TESTS = PROM / "tenantd.rules.test.yml"
DASHBOARD = REPO / "packaging" / "grafana" / "tenantd.json"
MAN8 = REPO / "packaging" / "man" / "tenantd.8"
MAN5 = REPO / "packaging" / "man" / "tenantd.conf.5"
CONF_C = REPO / "common" / "conf.c"
MAIN_C = REPO / "supervisor" / "main.c"

WORKERS = ("metrics", "config", "events", "stats", "outbound", "routing")
VOICE_FACING = ("events", "stats", "outbound", "routing")
# Series Prometheus makes itself, which rules may name.
PROMETHEUS_OWN = {"up"}


def need(tool, package):
    """need - the path of tool; a skip without it, a failure under CI"""
    path = shutil.which(tool)
    if path is None:
        msg = (f"{tool} is not installed (Debian package {package}; "
               "tools/deps.sh test installs it)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def run(cmd, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, **kw)


def output(res):
    return f"rc={res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


# ---- PromQL: the metric names an expression reads --------------------------

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring",
             "group_left", "group_right", "bool", "offset", "inf", "nan"}
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"(\d[\w.]*(?:[eE][+-]?\d+)?)|([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr):
    """metric_names - the metric names a PromQL expression (or a Grafana
    query: $variables are taken for durations) selects"""
    s = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_]\w*", "5m", expr)
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', s)
    s = re.sub(r"#[^\n]*", " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = _GROUPING.sub(" ", s)
    names = set()
    for m in _TOKEN.finditer(s):
        name = m.group(2)
        if name and not m.group(3) and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def test_metric_names_reads_promql():
    cases = {
        'sum by (worker) (rate(a_total{code=~"5..",x="by (y)"}[5m])) '
        '/ on(instance) group_left(version) b_info': {"a_total", "b_info"},
        'histogram_quantile(0.9, sum by (le) (rate(c_bucket{instance=~"$instance"}'
        '[$__rate_interval])))': {"c_bucket"},
        'up{job="tenantd"} == 0 and d offset 5m > bool 1': {"up", "d"},
        'topk(5, e) unless f or g > inf': {"e", "f", "g"},
        'sum(h) without (le) * 1e3 + i:rec:rate5m': {"h", "i:rec:rate5m"},
        'increase(j[1h30m]) > 3 # a comment naming k': {"j"},
        'label_replace(l, "dst", "$1", "src", "(.*)")': {"l"},
        'm and ignoring(worker) n': {"m", "n"},
    }
    for expr, want in cases.items():
        assert metric_names(expr) == want, (expr, metric_names(expr))


# ---- the files --------------------------------------------------------------

def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def rules(path):
    """rules - [(group name, rule)] of a rule file"""
    return [(g["name"], r) for g in load_yaml(path)["groups"] for r in g["rules"]]


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_panels(d):
    for p in d["panels"]:
        yield p
        yield from p.get("panels", [])


def dashboard_queries(d):
    """dashboard_queries - [(where, expr)]: every panel target, and the
    metric part of every template variable query"""
    out = []
    for p in dashboard_panels(d):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
    for v in d["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
        out.append((f"variable {v['name']}", m.group(1) if m else q))
    return out


# ---- Prometheus rules -------------------------------------------------------

def test_rules_check():
    promtool = need("promtool", "prometheus")
    res = run([promtool, "check", "rules", RECORDING, ALERTS])
    assert res.returncode == 0, output(res)
    assert res.stdout.count("SUCCESS") == 2, output(res)


def test_rules_unit_tests_pass():
    promtool = need("promtool", "prometheus")
    res = run([promtool, "test", "rules", RULE_TESTS], cwd=PROM)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, output(res)


def test_rules_unit_tests_can_fail(tmp_path):
    """The tests see a rule changed: a threshold moved fails them."""
    promtool = need("promtool", "prometheus")
    for f in (ALERTS, RECORDING, RULE_TESTS):
        shutil.copy(f, tmp_path)
    alerts = tmp_path / ALERTS.name
    text = alerts.read_text()
    assert "tenant_rq_client_state != 2" in text
    alerts.write_text(text.replace("tenant_rq_client_state != 2",
                                   "tenant_rq_client_state < 1"))
    res = run([promtool, "test", "rules", RULE_TESTS.name], cwd=tmp_path)
    assert res.returncode != 0 and \
        "TenantRequestQueueDisconnected" in res.stdout + res.stderr, \
        output(res)


def test_every_rule_is_tested():
    tests = load_yaml(RULE_TESTS)
    assert set(tests["rule_files"]) == {ALERTS.name, RECORDING.name}
    fired, quiet, checked = set(), {}, set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            if a.get("exp_alerts"):
                fired.add(a["alertname"])
            elif t["name"] == "healthy":
                quiet[a["alertname"]] = a["eval_time"]
        for e in t.get("promql_expr_test", []):
            checked |= metric_names(e["expr"])
    alerts = {r["alert"] for _, r in rules(ALERTS)}
    records = {r["record"] for _, r in rules(RECORDING)}
    assert alerts - fired == set(), "alerts never seen firing in a test"
    assert set(quiet) == alerts, "the healthy test must list every alert, none firing"
    assert records - checked == set(), "recording rules no test checks"
    for _, r in rules(ALERTS):
        labels = r.get("labels", {})
        assert labels.get("severity") in ("critical", "warning", "info"), r
        assert r.get("annotations", {}).get("summary"), r


def test_rules_cover_every_worker():
    for path in (ALERTS, RECORDING):
        groups = {g for g, _ in rules(path)}
        for w in WORKERS:
            assert f"tenantd-{w}" in groups, f"{path.name}: no group for {w}"
    # The Tenant Service's published names, unchanged.
    exprs = " ".join(r["expr"] for _, r in rules(ALERTS))
    for name in ("tenant_service_health_level", "tenant_redis_state",
                 "tenant_rq_client_state", "tenant_tserver_configuration_retry"):
        assert name in metric_names(exprs), name


# ---- the Grafana dashboard --------------------------------------------------

def test_dashboard_structure():
    d = dashboard()
    ids = [p["id"] for p in dashboard_panels(d)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    for want in ("Health", "Workers", "Clients", "Events", "Statistics",
                 "Configuration", "Outbound", "Routing"):
        assert want in rows, rows
    names = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "instance"} <= names
    for p in dashboard_panels(d):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert 'instance=~"$instance"' in t["expr"], (p["title"], t["expr"])
    # Each area shows what its worker serves.
    used = set()
    for _, q in dashboard_queries(d):
        used |= metric_names(q)
    for name in ("tenant_service_health_level", "tenant_rq_client_state",
                 "tenant_tserver_configuration_retry", "tenantd_worker_up",
                 "tenant_cs_clients", "tenant_events_clients",
                 "tenantd_events_delivered_total", "tenantd_stats_notifications_total",
                 "tenantd_config_requests_total", "tenantd_outbound_calls_dialed_total",
                 "tenantd_routing_routed_total"):
        assert name in used, name


def test_dashboard_queries_parse(tmp_path):
    """promtool checks each query as the expression of a rule."""
    promtool = need("promtool", "prometheus")
    qs = dashboard_queries(dashboard())
    group = {"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}",
         "expr": re.sub(r"\$__\w+|\$\{\w+\}|\$\w+", lambda m: "5m" if "__" in m.group(0)
                        else ".*", q)}
        for i, (_, q) in enumerate(qs)]}
    f = tmp_path / "dashboard.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [group]}))
    res = run([promtool, "check", "rules", f])
    assert res.returncode == 0, output(res) + "\n" + "\n".join(
        f"{i}: {w}: {q}" for i, (w, q) in enumerate(qs))


# ---- every name is served ----------------------------------------------------

def start_all_workers(tenantd, **kw):
    """start_all_workers - tenantd with every worker on free loopback ports,
    the outbound worker on librdkafka's mock cluster; its configuration
    loaded"""
    over = {"workers": {w: {"enabled": True, "listen": f"127.0.0.1:{free_port()}"}
                        for w in VOICE_FACING},
            "kafka": {"brokers": "mock"}}
    d = tenantd(over, config_worker=True, **kw)
    config_api_ready(d, timeout=30)
    d.wait_ready(30)
    return d


def test_every_name_used_is_served(tenantd):
    d = start_all_workers(tenantd)
    served = {name for name, _ in d.metrics()}
    records = {r["record"] for _, r in rules(RECORDING)}
    missing = []
    for path in (RECORDING, ALERTS):
        for group, r in rules(path):
            for name in metric_names(r["expr"]) - served - records - PROMETHEUS_OWN:
                missing.append(f"{path.name} {group} "
                               f"{r.get('alert') or r.get('record')}: {name}")
    for where, q in dashboard_queries(dashboard()):
        for name in metric_names(q) - served:
            missing.append(f"{DASHBOARD.name} {where}: {name}")
    assert not missing, "names not served by tenantd:\n  " + "\n  ".join(missing)
    # and the two series of the Tenant Service's rules, one per worker,
    # set every second
    for w in VOICE_FACING:
        wait_for(lambda w=w: d.metric("tenant_rq_client_state", worker=w) == 2,
                 3, what=f"tenant_rq_client_state of {w} 2")
        assert d.metric("tenant_tserver_configuration_retry", worker=w) == 0


# ---- the two Tenant Service series -------------------------------------------

def events_worker(tenantd):
    d = tenantd({"workers": {"events": {"enabled": True,
                                        "listen": f"127.0.0.1:{free_port()}"}}},
                config_worker=True)
    config_api_ready(d)
    d.wait_ready(20)
    return d


def test_rq_client_state_follows_redis(tenantd, redis):
    d = events_worker(tenantd)
    wait_for(lambda: d.metric("tenant_rq_client_state", worker="events") == 2,
             5, what="tenant_rq_client_state 2")
    redis.stop()
    wait_for(lambda: d.metric("tenant_rq_client_state", worker="events") != 2,
             5, what="tenant_rq_client_state not 2 with Redis down")
    redis.start()
    wait_for(lambda: d.metric("tenant_rq_client_state", worker="events") == 2,
             10, what="tenant_rq_client_state 2 again")


def test_configuration_retry_follows_postgres(tenantd, pg):
    d = events_worker(tenantd)
    assert d.metric("tenant_tserver_configuration_retry", worker="events") == 0
    pg.stop()
    try:
        wait_for(lambda: d.metric("tenant_tserver_configuration_retry",
                                  worker="events") >= 2,
                 10, what="configuration reads failing in a row")
    finally:
        pg.start()
    wait_for(lambda: d.metric("tenant_tserver_configuration_retry",
                              worker="events") == 0,
             15, what="tenant_tserver_configuration_retry 0 again")
    assert d.metric("tenantd_worker_restarts_total", worker="events") == 0


# ---- a clean first start ------------------------------------------------------

WARN = re.compile(r"(^|\s)level=(warn|error)(\s|$)")
NOT_YET = "the configuration tables do not exist yet"


def warnings(text):
    return [ln for ln in text.splitlines() if WARN.search(ln)]


def test_workers_wait_for_the_schema_without_a_warning(tenantd):
    """Voice-facing workers on an empty database, the config worker off:
    they wait, say so once at info, count their failed reads; once the
    config worker is enabled (a reload) they load and serve."""
    ports = {w: free_port() for w in ("events", "stats")}
    d = tenantd({"workers": {w: {"enabled": True, "listen": f"127.0.0.1:{p}"}
                             for w, p in ports.items()}})
    wait_for(lambda: d.get("/healthz", timeout=1)[0] == 200, 10, what="/healthz")
    for w in ports:
        wait_for(lambda w=w: d.metric("tenant_tserver_configuration_retry",
                                      worker=w) >= 2,
                 10, what=f"{w}: failed reads counted")
    text = d.log_text()
    for w in ports:
        said = [ln for ln in text.splitlines()
                if f"role={w} " in ln and NOT_YET in ln]
        assert len(said) == 1 and "level=info" in said[0], said
    assert warnings(text) == [], warnings(text)
    st, _, body = d.get("/readyz")
    assert st == 503 and "worker events: starting" in body, body

    # Now the config worker makes the tables.
    token = d.tmpdir + "/admin.token"
    with open(token, "w") as f:
        f.write("tk-opkit\n")
    d.admin_token = "tk-opkit"
    d.write_conf(merge(d.conf, {
        "workers": {"config": {"enabled": True, "listen": f"127.0.0.1:{free_port()}"}},
        "security": {"admin_token_file": token}}))
    d.signal(signal.SIGHUP)
    config_api_ready(d)
    d.wait_ready(20)
    for w in ports:
        wait_for(lambda w=w: d.metric("tenant_tserver_configuration_retry",
                                      worker=w) == 0,
                 5, what=f"{w}: reads succeed")
    assert warnings(d.log_text()) == [], warnings(d.log_text())


def test_first_start_of_every_worker_logs_no_warning(tenantd):
    """What `make run` does on a new database, on free ports: every worker
    at once; nothing at warn or above from start to stop."""
    d = start_all_workers(tenantd)
    time.sleep(1.5)         # the voice links come up, the first sweeps run
    rc, _, killed = d.stop()
    assert rc == 0 and not killed, d.diagnostics()
    text = d.log_text()
    assert warnings(text) == [], warnings(text)
    for w in VOICE_FACING:
        said = [ln for ln in text.splitlines() if f"role={w} " in ln and NOT_YET in ln]
        assert len(said) <= 1, said


# ---- manual pages --------------------------------------------------------------

def render(page):
    man = need("man", "man-db")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    return run([man, "--warnings", "-E", "UTF-8", "-l", page], env=env)


@pytest.mark.parametrize("page", [MAN8, MAN5], ids=lambda p: p.name)
def test_man_page_renders_without_warnings(page):
    res = render(page)
    assert res.returncode == 0 and res.stderr == "", output(res)
    assert "SEE ALSO" in res.stdout
    lexgrog = need("lexgrog", "man-db")
    res = run([lexgrog, page])
    name = page.name.rsplit(".", 1)[0]
    assert res.returncode == 0 and f'"{name} - ' in res.stdout, output(res)


def test_man_pages_carry_the_version():
    version = re.search(r"^VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(),
                        re.M).group(1)
    for page in (MAN8, MAN5):
        th = re.search(r"^\.TH .*$", page.read_text(), re.M).group(0)
        assert f'"tenantd {version}"' in th, (page.name, th)


def sections_of(text):
    """sections_of - {heading: text} of a rendered or roff page, by .SH/.SS"""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"\.S[HS] (.*)$", line)
        if m:
            cur = m.group(1).strip('"')
            out[cur] = ""
        elif cur is not None:
            out[cur] += line + "\n"
    return out


def test_tenantd8_says_what_the_code_does():
    page = sections_of(MAN8.read_text())
    letters = re.search(r'getopt\(argc, argv, "([^"]+)"\)', MAIN_C.read_text()).group(1)
    for opt in letters.replace(":", ""):
        assert re.search(rf"^\.B[IR]? \\-{opt}\b", page["OPTIONS"], re.M), \
            f"option -{opt} is not in OPTIONS"
    for sig in ("HUP", "TERM", "INT", "QUIT", "USR1"):
        assert re.search(rf"^\.BR? .*\b{sig}\b", page["SIGNALS"], re.M), sig
    for code in ("0", "1", "2"):
        assert re.search(rf"^\.B {code}$", page["EXIT STATUS"], re.M), code
    for f in ("/etc/tenantd/tenantd.conf", "/lib/systemd/system/tenantd.service"):
        assert f in page["FILES"], f
    for env in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        assert env in page["ENVIRONMENT"], env


# common/conf.c's schema: its key tables, and where each is loaded.
_KEY = re.compile(r'\{\s*"(\w+)",\s*(K_\w+),\s*\w+\(\w+\),\s*(\d),\s*(NULL|"[^"]*")')
TYPES = {"K_UUID": "UUID", "K_STRING": "string", "K_LEVEL": "string",
         "K_FORMAT": "string", "K_SECRET": "secret file", "K_INT": "integer",
         "K_UINT": "integer", "K_NUMBER": "number", "K_BOOL": "boolean",
         "K_SIZE": "size", "K_ADDR": "address", "K_PORT": "port",
         "K_ADDRS": "address list"}


def conf_schema():
    """conf_schema - {section: [(key, type, required, default or None)]}"""
    src = CONF_C.read_text()
    macros = {m.group(1): (m.group(2), m.group(3).replace("\\\n", "\n"))
              for m in re.finditer(r"#define (\w+)(?:\((\w+)\))?[ \t]*\\\n((?:.*\\\n)*.*\n)",
                                   src)}

    def expand(m):
        param, text = macros[m.group(1)]
        return re.sub(rf"\b{param}\b", m.group(2), text) if param else text
    tables = {}
    for m in re.finditer(r"static const struct key (\w+)_keys\[\] = \{(.*?)\n\};", src, re.S):
        body = re.sub(r'\b(WORKER_KEYS|SESSION_KEYS|HTTP_KEYS)\b(?:\(("[^"]*")\))?',
                      expand, m.group(2))
        tables[m.group(1)] = [(k.group(1), TYPES[k.group(2)], k.group(3) == "1",
                               None if k.group(4) == "NULL" else k.group(4).strip('"'))
                              for k in _KEY.finditer(body)]
    where = {}
    for name, table in re.findall(r'\{ "(\w+)", (\w+)_keys, \d \}', src):
        where[table] = name                     # top-level sections
    for name, table in re.findall(r'\[WORKER_\w+\] = \{ "(\w+)", (\w+)_keys, \d \}', src):
        where[table] = f"workers.{name}"
    assert 'load_group(ld, grp, "redis", redis_keys' in src
    assert 'load_group(ld, r, path, remote_keys' in src
    assert "load_group(ld, g, path, tls_keys" in src
    where.update(redis="redis", remote="redis.remote", tls="workers.NAME.tls")
    assert set(where) == set(tables), (where, tables.keys())
    return {where[t]: keys for t, keys in tables.items()}


# Keys the page documents that no table holds: loaded by code of their own.
SPECIAL_KEYS = {("redis", "remote")}


def page_keys():
    """page_keys - {section: {key: (type, what)}} from tenantd.conf(5)'s
    tagged paragraphs: \\fBkey\\fR (type, default X | required | no default)"""
    out = {}
    for sec, text in sections_of(MAN5.read_text()).items():
        for m in re.finditer(r"^\.TP\n\\fB(\w+)\\fR \(([^,]+), (.*)\)$", text, re.M):
            out.setdefault(sec, {})[m.group(1)] = (m.group(2), m.group(3).replace("\\-", "-"))
    return out


def test_conf5_has_every_key_of_the_schema():
    schema = conf_schema()
    assert len(schema) == 15 and sum(len(k) for k in schema.values()) > 80
    page = page_keys()
    for sec, keys in schema.items():
        assert sec in page, f"tenantd.conf(5) has no section {sec}"
        for key, typ, required, default in keys:
            assert key in page[sec], f"{sec}.{key} is not in tenantd.conf(5)"
            got_type, what = page[sec][key]
            assert got_type == typ, (sec, key, got_type, typ)
            want = ("required" if required else
                    f"default {default}" if default is not None else "no default")
            assert what == want, (sec, key, what, want)
    for sec, keys in page.items():
        for key in keys:
            known = {k[0] for k in schema.get(sec, [])}
            assert key in known or (sec, key) in SPECIAL_KEYS, \
                f"tenantd.conf(5) documents {sec}.{key}, which common/conf.c does not have"


def test_conf5_defaults_agree_with_tenantd_T(tmp_path):
    """tenantd -T prints every default: the page says the same."""
    conf = tmp_path / "min.conf"
    conf.write_text(
        'tenant = { id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"; name = "t"; };\n'
        'postgres = { conninfo = "host=127.0.0.1"; };\n'
        'redis = { remote = ( { name = "eu"; host = "10.0.0.1"; } ); };\n'
        'workers = { metrics = { }; };\n')
    res = run_tenantd(["-T", "-c", str(conf)])
    assert res.returncode == 0, res.stderr
    page = page_keys()
    path, seen = [], 0
    for line in res.stdout.splitlines():
        line = line.strip()
        if m := re.fullmatch(r"(\w+) = [{(]", line):
            path.append(m.group(1))
        elif line in ("};", ");", "}", "},"):
            path.pop()
        elif line == "{":
            path.append("")             # a list element
        elif m := re.fullmatch(r"(\w+) = (.*);", line):
            sec = ".".join(p for p in path if p)
            if sec in ("tenant", "postgres", "redis.remote") or \
                    (sec, m.group(1)) in (("workers.metrics", "enabled"),):
                continue                # set by the file, or by absence
            value = m.group(2).strip('"')
            if m.group(1) == "enabled" and value == "false":
                continue                # an absent worker group
            assert page[sec][m.group(1)][1] == f"default {value}", (sec, m.group(1), value)
            seen += 1
    assert seen >= 60, res.stdout


# ---- installed by make install and the package --------------------------------

def build_flags():
    """build_flags - make's flags for the build under test (as test_packaging)"""
    binary = os.environ.get("TENANTD_BIN")
    if binary and Path(binary).resolve().parent == (REPO / "build" / "asan").resolve():
        return ["SANITIZE=1"]
    return []


def test_make_install_lays_out_the_kit(tmp_path):
    res = run(["make", "--no-print-directory", "-C", REPO, "install",
               f"DESTDIR={tmp_path}", "PREFIX=/usr"] + build_flags(), timeout=1800)
    assert res.returncode == 0, output(res)
    share = tmp_path / "usr" / "share"
    # PREFIX=/usr: the pages as written, but the unit's place (make
    # install puts it under PREFIX/lib).
    assert (share / "man" / "man8" / "tenantd.8").read_text() == MAN8.read_text().replace(
        "/lib/systemd/system/", "/usr/lib/systemd/system/")
    assert (share / "man" / "man5" / "tenantd.conf.5").read_text() == MAN5.read_text()
    for f in (ALERTS, RECORDING, RULE_TESTS):
        assert (share / "tenantd" / "prometheus" / f.name).read_bytes() == f.read_bytes()
    assert (share / "tenantd" / "grafana" / "tenantd.json").read_bytes() == \
        DASHBOARD.read_bytes()
    # Another prefix: the pages name the paths of that install.
    stage = tmp_path / "local"
    res = run(["make", "--no-print-directory", "-C", REPO, "install",
               f"DESTDIR={stage}", "PREFIX=/usr/local"] + build_flags(), timeout=1800)
    assert res.returncode == 0, output(res)
    page = (stage / "usr/local/share/man/man8/tenantd.8").read_text()
    assert "/usr/local/share/tenantd/prometheus/" in page
    assert "/usr/share/" not in page
    res = run(["make", "--no-print-directory", "-C", REPO, "uninstall",
               f"DESTDIR={stage}", "PREFIX=/usr/local"])
    assert res.returncode == 0, output(res)
    assert not (stage / "usr/local/share/man/man8/tenantd.8").exists()
    assert not (stage / "usr/local/share/tenantd").exists()


def test_deb_holds_the_pages_and_the_kit(tmp_path, tenantd_binary):
    for tool in ("dpkg", "dpkg-deb"):
        need(tool, "dpkg")
    shutil.copy(tenantd_binary, tmp_path / "tenantd")
    res = run([REPO / "packaging" / "debian" / "build-deb.sh", tmp_path, "0.1.0"])
    assert res.returncode == 0, output(res)
    deb = Path(res.stdout.strip().splitlines()[-1])
    root = tmp_path / "root"
    res = run(["dpkg-deb", "-x", deb, root])
    assert res.returncode == 0, output(res)
    for page, sect in ((MAN8, 8), (MAN5, 5)):
        gz = root / "usr" / "share" / "man" / f"man{sect}" / f"{page.name}.gz"
        assert gzip.decompress(gz.read_bytes()) == page.read_bytes(), gz
        assert oct(gz.stat().st_mode & 0o777) == "0o644"
    kit = root / "usr" / "share" / "tenantd"
    for f in (ALERTS, RECORDING, RULE_TESTS):
        assert (kit / "prometheus" / f.name).read_bytes() == f.read_bytes()
    assert (kit / "grafana" / "tenantd.json").read_bytes() == DASHBOARD.read_bytes()
    # The installed rules still pass their tests where they are.
    if shutil.which("promtool"):
        res = run(["promtool", "test", "rules", "tenantd.rules.test.yml"],
                  cwd=kit / "prometheus")
        assert res.returncode == 0, output(res)
