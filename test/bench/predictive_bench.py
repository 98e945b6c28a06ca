#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""predictive_bench - a paced run of the outbound dialler: a Predictive
group (optimizeBy OverdialRate, optimizeGoal 3) and a Progressive group
side by side, each with its own 50 agents and its own calling list, against
one voicesim playing the agents and the customers; prints per group the
live answers, abandoned per live answer, the agents' busy factor and the
dial rate, measured from the voice events (independently of the worker),
beside the worker's own figures.  Goal: predictive abandoned/live <= 3 %
with busy factor >= 90 %.

    predictive_bench.py /abs/path/to/tenantd [--minutes 10] [--quick]
        [--warmup S] [--seed N]

The population (voicesim): of the dialled calls 30 % answered by a person,
15 % by a machine (detected at answer and dropped), 15 % busy after 2 s,
40 % unanswered (released at the dialler's 25 s ring timeout); answers
after 4 to 20 s (uniform); talk exponential, mean 20 s; wrap-up 5 s;
agents never take a break.  A live answer the worker cannot give an agent
within workers.outbound.abandon_timeout (2 s) is dropped.

Both groups run at once: voicesim logs in 100 agents, and the config puts
persons 1-50 in the predictive group's agent group and 51-100 in the
progressive group's; each group dials from its own origination DN (6500,
6501), which is how the voice events are told apart.

Measured over the run less a warm-up (--warmup, default 60 s, 30 s with
--quick), from the voice events in Redis:
  live answers   EventEstablished with callResult Answer on the group's DN
  abandoned      of those, released by the dialler (no agent) or abandoned
                 by the customer before reaching an agent
  busy factor    the agents' time talking (EventEstablished to
                 EventReleased on their phone) plus wrapping up (NotReady
                 AfterCallWork to Ready), over their logged-in time
  dial rate      EventDialing on the group's DN per minute
The worker's own figures come from GET /v1/campaign-groups/{dbid} (the
EventCampaignStatus figures: hitRatio, abandonRate, busyFactor, and the
totals), read every 10 s.
"""

import argparse
import json
import os
import sys
import time

import benchlib as B
import dialler_bench as D

GOAL_ABANDON = 3.0
GOAL_BUSY = 90.0
AGENTS = 50
GROUPS = (("predictive", "6500", "cl_pred"), ("progressive", "6501", "cl_prog"))


def build_tenant(d, records):
    """100 agents (phones, places, logins, persons), two agent groups of 50,
    two lists, two campaigns, two campaign groups."""
    c = d.create
    sw = c("switches", {"name": "sw1"})
    persons = []
    for i in range(1, 2 * AGENTS + 1):
        dn = c("dns", {"number": f"{5000 + i}", "type": "Extension", "switch": sw})
        place = c("places", {"name": f"P{i}", "dns": [dn]})
        login = c("agent-logins", {"loginCode": f"{7000 + i}", "switch": sw})
        persons.append(c("persons", {
            "userName": f"agent{i}", "employeeId": f"E{i}", "isAgent": True,
            "place": place, "agentLogins": [{"agentLogin": login}]}))
    tz = c("time-zones", {"name": "UTC", "tzName": "UTC"})
    fld = c("fields", {"name": "customer_id", "dataType": "varchar", "length": 32})
    fmt = c("formats", {"name": "F1", "fields": [fld]})
    out = {}
    for k, (name, orig, table) in enumerate(GROUPS):
        ag = c("agent-groups", {"name": f"G-{name}",
                                "members": persons[k * AGENTS:(k + 1) * AGENTS]})
        odn = c("dns", {"number": orig, "type": "TrunkGroup", "switch": sw})
        lst = c("calling-lists", {"name": f"L-{name}", "format": fmt,
                                  "tableName": table, "timeFrom": 0,
                                  "timeUntil": 86399, "maxAttempts": 1,
                                  "timeZone": tz})
        camp = c("campaigns", {"name": f"C-{name}", "callingLists": [
            {"callingList": lst, "share": 10}]})
        g = {"name": f"CG-{name}", "campaign": camp, "group": ag,
             "origDN": odn, "numOfChannels": 500}
        if name == "predictive":
            g.update(dialMode="Predictive", optimizeBy="OverdialRate",
                     optimizeGoal=3)
        else:
            g.update(dialMode="Progressive")
        out[name] = {"group": c("campaign-groups", g), "orig": orig,
                     "table": table,
                     "dns": {f"{5000 + i}" for i in
                             range(k * AGENTS + 1, (k + 1) * AGENTS + 1)}}
    return out


def analyse(events, groups, w0, w1):
    """The independent figures of each group over [w0, w1] (ms), from the
    voice events."""
    by_orig = {g["orig"]: name for name, g in groups.items()}
    by_agent = {dn: name for name, g in groups.items() for dn in g["dns"]}
    calls = {}          # connId -> dict(group, answered ms, end)
    res = {name: {"dials": 0, "live": 0, "routed": 0, "dropped": 0,
                  "hungup": 0, "machine": 0, "busy": 0, "noanswer": 0, "cut": 0,
                  "talk": 0.0, "wrap": 0.0, "ring": 0.0, "idle": 0.0}
           for name in groups}
    state = {}          # agent dn -> (state, since ms)

    def account(dn, t_to):
        st, since = state[dn]
        a, b = max(since, w0), min(t_to, w1)
        if b > a:
            res[by_agent[dn]][st] += (b - a) / 1000.0

    for ev in events:
        name, dn, t = ev.get("event"), ev.get("thisDN"), ev.get("time", 0)
        conn = ev.get("connId")
        if dn in by_orig:
            g = by_orig[dn]
            inw = w0 <= t < w1
            if name == "EventDialing":
                calls[conn] = {"group": g, "answered": None}
                if inw:
                    res[g]["dials"] += 1
            elif name == "EventEstablished" and conn in calls:
                if ev.get("callResult", "Answer") == "Answer":
                    calls[conn]["answered"] = t
                    if inw:
                        res[g]["live"] += 1
            elif name in ("EventReleased", "EventAbandoned") and conn in calls:
                c = calls[conn]
                cause = ev.get("cause")
                ans_in = c["answered"] is not None and w0 <= c["answered"] < w1
                if c["answered"] is not None:
                    if ans_in:
                        if cause == "Transferred":
                            c["at_agent"] = True
                            res[g]["routed"] += 1
                        elif name == "EventAbandoned":
                            res[g]["hungup"] += 1
                        else:
                            res[g]["dropped"] += 1
                elif inw:
                    # "Normal": the dialler hung up a call still ringing
                    key = {"AnsweringMachine": "machine", "Busy": "busy",
                           "NoAnswer": "noanswer", "Normal": "cut"}.get(cause)
                    if key:
                        res[g][key] += 1
        elif dn in by_agent:
            if dn not in state:
                state[dn] = ("idle", t)
            new = None
            if name == "EventRinging":
                new = "ring"
            elif name == "EventEstablished":
                new = "talk"
            elif name in ("EventReleased", "EventAbandoned"):
                if name == "EventAbandoned" and conn in calls and \
                        calls[conn].get("at_agent") and calls[conn]["answered"] \
                        is not None and w0 <= calls[conn]["answered"] < w1:
                    g = calls[conn]["group"]
                    res[g]["hungup"] += 1       # hung up ringing at the agent
                    res[g]["routed"] -= 1
                new = "wrap"
            elif name == "EventAgentNotReady":
                new = "wrap"
            elif name in ("EventAgentReady", "EventAgentLogin"):
                new = "idle"
            if new is not None and new != state[dn][0]:
                account(dn, t)
                state[dn] = (new, t)
    for dn in state:
        account(dn, w1)
    return res


def sample(d, groups, log):
    now = time.time()
    row = {"t": now}
    for name, g in groups.items():
        row[name] = d.group(g["group"])
    log.append(row)
    return row


def worker_figures(log, name, w0, w1):
    """The worker's figures over the window: means of its windowed figures,
    and its totals' differences."""
    rows = [r for r in log if w0 / 1000 <= r["t"] <= w1 / 1000]
    if len(rows) < 2:
        return None
    a, b = rows[0][name], rows[-1][name]
    live = b.get("answered", 0) - a.get("answered", 0)
    mean = lambda k: sum(r[name].get(k, 0) for r in rows[1:]) / (len(rows) - 1)
    return {"dialed": b.get("dialed", 0) - a.get("dialed", 0), "live": live,
            "abandoned": b.get("abandoned", 0) - a.get("abandoned", 0),
            "hit": mean("hitRatio") * 100, "abandon": mean("abandonRate") * 100,
            "busy": mean("busyFactor") * 100,
            "secs": rows[-1]["t"] - rows[0]["t"]}


def run(args):
    binary = os.path.abspath(args.binary)
    minutes = 2.0 if args.quick else args.minutes
    warmup = args.warmup if args.warmup is not None else (30 if args.quick else 60)
    records = max(5000, int(minutes * 1500))
    print(f"== predictive vs progressive dialling, 2 x {AGENTS} agents, "
          f"{minutes:g} min ({warmup} s warm-up not counted)", flush=True)
    print(B.busy_note(), flush=True)
    pg = B.PgServer()
    redis = B.RedisServer()
    d = D.ObTenantd(binary, pg, redis.port)
    groups = build_tenant(d, records)
    for name, g in groups.items():
        D.wait_table(pg, g["table"], f"the table of {name}'s list")
        D.fill(pg, g["table"], records, start=1 if name == "predictive" else
               10000000)
    D.psql_db(pg, "ANALYZE")
    vs = D.Voicesim(binary, d.conf, [
        "--agents", str(2 * AGENTS), "--talk", "20", "--dist", "exp",
        "--wrap", "5", "--notready", "0", "--agent-answer", "0.5",
        "--outbound-mix", "answer=30,machine=15,busy=15,noanswer=40",
        "--outbound-ring", "4:20", "--busy-after", "2",
        "--outbound-patience", "30", "--seed", str(args.seed),
        "--log-level", "info"])
    D.wait_voice(redis, vs)
    r = D.Redis(redis.port)
    B.wait_for(lambda: len(r.cmd("HKEYS", D.voice_key("state"))) >= 2 * AGENTS,
               30, interval=0.5, what=f"{2 * AGENTS} agents logged in")
    time.sleep(2.0)     # the worker's roster reads them
    for name, g in groups.items():
        d.group_cmd(g["group"], "load")
    for name, g in groups.items():
        d.group_cmd(g["group"], "start")
    t_start = time.time()
    w0 = int((t_start + warmup) * 1000)
    w1 = int((t_start + minutes * 60) * 1000)
    log = []
    print("   every 30 s: the worker's figures (dialed/answered/abandoned "
          "since load; hitRatio, abandonRate, busyFactor of its last window)",
          flush=True)
    next_print = t_start + 30
    while time.time() * 1000 < w1:
        time.sleep(min(10.0, max(0.0, w1 / 1000 - time.time())))
        d.alive()
        vs.alive()
        row = sample(d, groups, log)
        if row["t"] >= next_print or row["t"] * 1000 >= w1:
            next_print += 30
            parts = []
            for name in groups:
                s = row[name]
                parts.append(f"{name[:4]} {s.get('dialed', 0)}/"
                             f"{s.get('answered', 0)}/{s.get('abandoned', 0)} "
                             f"hit {s.get('hitRatio', 0):.2f} ab "
                             f"{s.get('abandonRate', 0):.3f} bf "
                             f"{s.get('busyFactor', 0):.2f}")
            print(f"   {row['t'] - t_start:5.0f} s  " + "  |  ".join(parts),
                  flush=True)
    events = []
    for _, f in r.xrange_all(D.voice_key("events")):
        try:
            events.append(json.loads(f["event"]))
        except (KeyError, ValueError):
            pass
    r.close()
    for name, g in groups.items():
        d.group_cmd(g["group"], "stop")
    vtext = vs.stop()
    res = analyse(events, groups, w0, w1)
    mins = (w1 - w0) / 60000.0
    print()
    print(f"   measured over {mins:.1f} min; {len(events):,} voice events")
    hdr = ["", "live", "aband.", "ab/live", "busy f.", "dials/min",
           "hit", "| worker: ab/live", "busy f.", "hit", "live"]
    fmt = "   {:<12} {:>6} {:>6} {:>8} {:>8} {:>9} {:>6}  {:>16} {:>8} {:>6} {:>5}"
    print(fmt.format(*hdr))
    ok = True
    summary = {}
    for name in groups:
        x = res[name]
        ab = x["dropped"] + x["hungup"]
        abp = 100.0 * ab / x["live"] if x["live"] else 0.0
        logged = x["talk"] + x["wrap"] + x["ring"] + x["idle"]
        bf = 100.0 * (x["talk"] + x["wrap"]) / logged if logged else 0.0
        w = worker_figures(log, name, w0, w1) or {}
        wab = (100.0 * w["abandoned"] / w["live"]) if w.get("live") else 0.0
        print(fmt.format(name, x["live"], ab, f"{abp:.1f} %", f"{bf:.1f} %",
                         f"{x['dials'] / mins:.1f}",
                         f"{100.0 * x['live'] / x['dials']:.0f} %" if x["dials"]
                         else "-",
                         f"{wab:.1f} % ({w.get('abandon', 0):.1f})",
                         f"{w.get('busy', 0):.1f} %", f"{w.get('hit', 0):.0f} %",
                         w.get("live", 0)))
        summary[name] = (x, abp, bf)
    print("   (aband. = dropped by the dialler for want of an agent + hung up "
          "waiting; busy f. = talk + wrap-up over logged-in time, from the "
          "voice events; the worker's ab/live from its totals, in brackets "
          "the mean of its windowed abandonRate; its busy f. and hit are "
          "means of its windowed figures)")
    for name in groups:
        x = summary[name][0]
        logged = x["talk"] + x["wrap"] + x["ring"] + x["idle"]
        print(f"   {name}: {x['dials']} dials: {x['live']} live ({x['routed']} "
              f"to an agent, {x['dropped']} dropped, {x['hungup']} hung up), "
              f"{x['machine']} machines, {x['busy']} busy, {x['noanswer']} no "
              f"answer, {x['cut']} cut ringing; agents' time: talk {x['talk'] / logged:.0%}, wrap "
              f"{x['wrap'] / logged:.0%}, ringing {x['ring'] / logged:.0%}, "
              f"idle {x['idle'] / logged:.0%}" if logged else f"   {name}: no data")
    vsum = [ln for ln in vtext.splitlines() if "predictive calls" in ln]
    if vsum:
        print("   voicesim: " + vsum[-1].split("msg=")[-1].strip('"'))
    x, abp, bf = summary["predictive"]
    _, pabp, pbf = summary["progressive"]
    total_live = x["live"] + summary["progressive"][0]["live"]
    ok = abp <= GOAL_ABANDON and bf >= GOAL_BUSY
    print(f"   => predictive: abandoned/live {abp:.1f} % (goal <= "
          f"{GOAL_ABANDON:g} %), busy factor {bf:.1f} % (goal >= "
          f"{GOAL_BUSY:g} %): {'met' if ok else 'MISSED'}; progressive: "
          f"{pabp:.1f} %, busy factor {pbf:.1f} % (expected about 32 %); "
          f"{total_live} live answers in the window", flush=True)
    B.result_line("outbound predictive, busy factor %", "%", f"{bf:.1f}",
                  f"{pbf:.1f} (progressive)", f"{bf / pbf:.2f}" if pbf else "-",
                  f"ab <= {GOAL_ABANDON:g}%, bf >= {GOAL_BUSY:g}%", ok)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="2 minutes")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    B.pin_self(B.LOADGEN_CPU)
    minutes = 2.0 if args.quick else args.minutes
    return B.main_wrapper(lambda: run(args), time_limit=int(minutes * 60) + 300)


if __name__ == "__main__":
    sys.exit(main())
