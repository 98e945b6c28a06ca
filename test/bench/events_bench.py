#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark 4: the events worker (issue 4), each part beside a reference
measured in the same run.

  4a. Saturation throughput.  50 session clients each open a session with
      the admin token and register the same 10 DNs (5000..5009); a
      producer XADDs ~360-byte EventRinging events (userData included) on
      those DNs to `tenantd:{<tenant>}:voice:events`, and every event
      reaches all 50 clients.  Reference: a redis-server fanning the same
      payloads out to 50 pub/sub subscribers (PUBLISH to one channel, 50
      SUBSCRIBE clients).  Counted as deliveries/s (events x clients) at
      the clients.  Goal: ratio >= 0.5.
  4b. Added latency at 20,000 events/s to 50 clients: p50/p99 from the
      moment the producer writes the XADD (a send timestamp in the event's
      userData) to the moment a client reads the line, beside the same
      for the PUBLISH -> subscriber path at the same rate.  Goal:
      tenantd's p99 within 2 ms of Redis's.
  4c. Memory per connected client: the events worker's RSS with 1,000
      idle sessions (open only, open + 1 DN, open + 10 DNs) minus with 0,
      divided by 1,000; beside redis-server with 1,000 idle subscribers.

The load generator is one small C program (evload, its source below,
compiled with cc into a temporary directory at start): one process, one
epoll loop, that writes the pipelined XADDs or PUBLISHes and reads all 50
client sockets, counting lines that carry an event and checking their
order per client.  Python sets the connections up (sessions, registrations,
SUBSCRIBE) and hands the sockets over.  The producer is closed-loop in 4a:
at most --window events are written and not yet read by every client, so
neither Redis's pub/sub output limit nor tenantd's max_output is reached
by a reader that keeps up; in 4b it is paced by a 100 us timerfd.

Cores: tenantd (master and every worker, the events worker included) and
the reference redis-server on core 0; evload, this script, PostgreSQL and
the Redis that tenantd reads the stream from on core 1.  Rounds alternate
the reference and tenantd; the figures are the medians of the rounds.

usage: events_bench.py TENANTD_BINARY [--rounds 3] [--duration 5]
       [--rate 20000] [--low-rate 5000] [--clients 50] [--dns 10]
       [--idle 1000] [--window 4000] [--only memory,throughput,latency]
"""

import argparse
import json
import os
import re
import resource
import secrets
import selectors
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from config_bench import Api  # noqa: E402

THROUGHPUT_GOAL = 0.5
LATENCY_GOAL_MS = 2.0
DN_BASE = 5000
STREAM_MAXLEN = 1000000     # docs/voice-redis.md: MAXLEN ~ 1000000

# Placeholders evload fills in for each event (fixed widths, so that the
# RESP lengths never change).
PH_SEQ, PH_US, PH_MS, PH_DN = "@" * 12, "^" * 16, "`" * 13, "|" * 4

EVLOAD_C = r"""
/* evload - producer and fan-out reader of test/bench/events_bench.py */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUFCAP		(1 << 20)
#define OUTCAP		(1 << 20)
#define HIST		(1 << 22)	/* latency buckets, 1 us each (4.2 s) */

struct conn {
	int		 fd, closed;
	char		*buf;
	size_t		 len, o_us, o_seq;
	uint64_t	 n, last;
	int		 has_last;
};

static struct conn	*cs;
static int		 ncs, nopen;
static uint32_t		*hist;
static uint64_t		 hist_over, lat_n, gaps, dups, other;
static int		 in_window;

static uint64_t
mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
real_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
digits(const char *p, const char *end)
{
	uint64_t	v = 0;

	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

static void
on_line(struct conn *c, const char *p, size_t len, uint64_t now)
{
	const char	*end = p + len, *m;
	uint64_t	 us, seq, d;

	/* The markers sit at the same offsets in every line of a server:
	 * look there first. */
	if (c->o_us + 10 <= len && memcmp(p + c->o_us, "\"sendUs\":\"", 10) == 0)
		m = p + c->o_us;
	else if ((m = memmem(p, len, "\"sendUs\":\"", 10)) == NULL) {
		other++;
		return;
	}
	c->o_us = (size_t)(m - p);
	us = digits(m + 10, end);
	if (c->o_seq + 7 <= len && memcmp(p + c->o_seq, "\"seq\":\"", 7) == 0)
		m = p + c->o_seq;
	else if ((m = memmem(p, len, "\"seq\":\"", 7)) == NULL) {
		other++;
		return;
	}
	c->o_seq = (size_t)(m - p);
	seq = digits(m + 7, end);
	c->n++;
	if (!c->has_last) {
		gaps += seq;
		c->has_last = 1;
	} else if (seq <= c->last) {
		dups++;
		return;
	} else
		gaps += seq - c->last - 1;
	c->last = seq;
	if (in_window) {
		d = now > us ? now - us : 0;
		if (d < HIST)
			hist[d]++;
		else
			hist_over++;
		lat_n++;
	}
}

static void
on_read(struct conn *c, int ep)
{
	ssize_t		 r;
	uint64_t	 now;
	char		*p, *nl, *end;

	r = read(c->fd, c->buf + c->len, BUFCAP - c->len);
	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->closed = 1;
		nopen--;
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		return;
	}
	now = mono_us();
	c->len += (size_t)r;
	p = c->buf;
	end = c->buf + c->len;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		on_line(c, p, (size_t)(nl - p), now);
		p = nl + 1;
	}
	c->len = (size_t)(end - p);
	if (c->len == BUFCAP) {
		fprintf(stderr, "evload: a line over %d bytes\n", BUFCAP);
		exit(1);
	}
	memmove(c->buf, p, c->len);
}

static uint64_t
pct(double p)
{
	uint64_t	want, seen = 0;
	size_t		i;

	if (lat_n == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)lat_n + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST; i++)
		if ((seen += hist[i]) >= want)
			return i;
	return HIST;
}

static void
fill(char *dst, const char *tpl, size_t len, uint64_t seq, uint64_t us,
    uint64_t ms, int ndns)
{
	char	sseq[16], sus[20], sms[16], sdn[8];
	size_t	i, j;

	memcpy(dst, tpl, len);
	snprintf(sseq, sizeof(sseq), "%012" PRIu64, seq);
	snprintf(sus, sizeof(sus), "%016" PRIu64, us);
	snprintf(sms, sizeof(sms), "%013" PRIu64, ms);
	snprintf(sdn, sizeof(sdn), "%04d", 5000 + (int)(seq % (uint64_t)ndns));
	for (i = 0; i < len; i++) {
		const char	*src;
		size_t		 w;

		switch (tpl[i]) {
		case '@': src = sseq; w = 12; break;
		case '^': src = sus; w = 16; break;
		case '`': src = sms; w = 13; break;
		case '|': src = sdn; w = 4; break;
		default: continue;
		}
		for (j = 0; j < w; j++)
			dst[i + j] = src[j];
		i += w - 1;
	}
}

int
main(int argc, char **argv)
{
	int			 prod, ep, tfd = -1, i, n, ndns, line_start = 1;
	double			 rate, warm, measure;
	uint64_t		 window, sent = 0, t0, now, minr, due, ms;
	uint64_t		 w0 = 0, w1 = 0, ws0 = 0, ws1 = 0, tw0 = 0, tw1 = 0;
	uint64_t		 late = 0, lag_max = 0, perr = 0, stalls = 0;
	char			*tpl, *out, rbuf[65536];
	size_t			 tlen, olen = 0, cap = 1 << 16;
	int			 producing = 1, phase = 0, want_out = 0;
	struct epoll_event	 ev, evs[128];
	FILE			*f;

	if (argc < 9) {
		fprintf(stderr, "usage: evload PROD_FD RATE WINDOW WARMUP_S "
		    "MEASURE_S TEMPLATE NDNS FD...\n");
		return 2;
	}
	prod = atoi(argv[1]);
	rate = atof(argv[2]);
	window = strtoull(argv[3], NULL, 10);
	warm = atof(argv[4]);
	measure = atof(argv[5]);
	ndns = atoi(argv[7]);
	if ((f = fopen(argv[6], "rb")) == NULL)
		return 2;
	tpl = malloc(cap);
	tlen = fread(tpl, 1, cap, f);
	fclose(f);
	out = malloc(OUTCAP);
	hist = calloc(HIST, sizeof(*hist));
	ncs = argc - 8;
	cs = calloc((size_t)ncs, sizeof(*cs));
	ep = epoll_create1(0);
	for (i = 0; i < ncs; i++) {
		cs[i].fd = atoi(argv[8 + i]);
		cs[i].buf = malloc(BUFCAP);
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	nopen = ncs;
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)ncs;
	epoll_ctl(ep, EPOLL_CTL_ADD, prod, &ev);
	if (rate > 0) {
		struct itimerspec	its = { { 0, 100000 }, { 0, 100000 } };

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
		timerfd_settime(tfd, 0, &its, NULL);
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)ncs + 1;
		epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	}
	t0 = mono_us();
	for (;;) {
		now = mono_us();
		if (phase == 0 && now >= t0 + (uint64_t)(warm * 1e6)) {
			phase = 1;
			in_window = 1;
			tw0 = now;
			ws0 = sent;
			for (i = 0; i < ncs; i++)
				w0 += cs[i].n;
		} else if (phase == 1 && now >= tw0 + (uint64_t)(measure * 1e6)) {
			phase = 2;
			in_window = 0;
			tw1 = now;
			ws1 = sent;
			for (i = 0; i < ncs; i++)
				w1 += cs[i].n;
			producing = 0;
		}
		minr = UINT64_MAX;
		for (i = 0; i < ncs; i++)
			if (!cs[i].closed && cs[i].n < minr)
				minr = cs[i].n;
		if (nopen == 0)
			break;
		if (!producing) {
			if (minr >= sent && olen == 0)
				break;
			if (now > tw1 + 5000000)
				break;		/* what is missing is lost */
		}
		if (producing) {
			due = rate > 0 ? (uint64_t)((double)(now - t0) * rate /
			    1e6) + 1 : UINT64_MAX;
			ms = real_ms();
			while (sent < due && olen + tlen <= OUTCAP) {
				if (sent - minr >= window) {
					stalls++;
					break;
				}
				fill(out + olen, tpl, tlen, sent, now, ms, ndns);
				olen += tlen;
				if (rate > 0) {
					uint64_t sched = t0 + (uint64_t)((double)
					    sent * 1e6 / rate);
					uint64_t lag = now > sched ? now - sched : 0;
					if (lag > lag_max && phase == 1)
						lag_max = lag;
					if (lag > 2000 && phase == 1)
						late++;
				}
				sent++;
			}
		}
		if (olen > 0) {
			ssize_t w = write(prod, out, olen);
			if (w > 0) {
				memmove(out, out + w, olen - (size_t)w);
				olen -= (size_t)w;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "evload: producer write: %s\n",
				    strerror(errno));
				return 1;
			}
		}
		if ((olen > 0) != want_out) {
			want_out = olen > 0;
			ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
			ev.data.u64 = (uint64_t)ncs;
			epoll_ctl(ep, EPOLL_CTL_MOD, prod, &ev);
		}
		n = epoll_wait(ep, evs, 128, 10);
		for (i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;
			if (k < (uint64_t)ncs) {
				on_read(&cs[k], ep);
			} else if (k == (uint64_t)ncs) {
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
					ssize_t r = read(prod, rbuf, sizeof(rbuf));
					ssize_t j;
					if (r == 0) {
						fprintf(stderr, "evload: the producer's "
						    "Redis closed\n");
						return 1;
					}
					for (j = 0; j < r; j++) {
						if (line_start && rbuf[j] == '-')
							perr++;
						line_start = rbuf[j] == '\n';
					}
				}
			} else {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) < 0)
					(void)0;
			}
		}
	}
	if (phase < 2) {
		tw1 = mono_us();
		ws1 = sent;
		for (i = 0; i < ncs; i++)
			w1 += cs[i].n;
	}
	{
		uint64_t tot = 0, mn = UINT64_MAX, mx = 0, missing = 0;
		int closed = 0;
		for (i = 0; i < ncs; i++) {
			tot += cs[i].n;
			if (cs[i].n < mn) mn = cs[i].n;
			if (cs[i].n > mx) mx = cs[i].n;
			if (cs[i].closed) closed++;
			else if (cs[i].n < sent) missing += sent - cs[i].n;
		}
		printf("sent=%" PRIu64 "\n", sent);
		printf("delivered=%" PRIu64 "\n", tot);
		printf("window_s=%.6f\n", (double)(tw1 - tw0) / 1e6);
		printf("window_delivered=%" PRIu64 "\n", w1 - w0);
		printf("window_sent=%" PRIu64 "\n", ws1 - ws0);
		printf("clients=%d\nclosed=%d\n", ncs, closed);
		printf("min_client=%" PRIu64 "\nmax_client=%" PRIu64 "\n", mn, mx);
		printf("missing=%" PRIu64 "\ngaps=%" PRIu64 "\ndups=%" PRIu64 "\n",
		    missing, gaps, dups);
		printf("other_lines=%" PRIu64 "\nproducer_errors=%" PRIu64 "\n",
		    other, perr);
		printf("window_stalls=%" PRIu64 "\nlate=%" PRIu64 "\nlag_max_us=%"
		    PRIu64 "\n", stalls, late, lag_max);
		printf("lat_n=%" PRIu64 "\nlat_over_1s=%" PRIu64 "\n", lat_n,
		    hist_over);
		printf("p50_us=%" PRIu64 "\np90_us=%" PRIu64 "\np99_us=%" PRIu64
		    "\np999_us=%" PRIu64 "\nmax_us=%" PRIu64 "\n", pct(50), pct(90),
		    pct(99), pct(99.9), hist_over ? (uint64_t)HIST : pct(100));
	}
	return 0;
}
"""


# ------------------------------------------------------------ the load generator

def build_evload(tmp):
    src = os.path.join(tmp, "evload.c")
    exe = os.path.join(tmp, "evload")
    with open(src, "w") as f:
        f.write(EVLOAD_C)
    r = subprocess.run(["cc", "-O2", "-Wall", "-o", exe, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise B.BenchError("cannot build the load generator:\n"
                           + r.stdout.decode(errors="replace"))
    return exe


def event_json(run_tag):
    """A ~360-byte EventRinging with userData, as docs/voice-redis.md has
    it; placeholders for evload: sequence, send time (us), time (ms), DN."""
    ev = {"event": "EventRinging", "eventId": f"bench{run_tag}-{PH_SEQ}",
          "region": "local", "time": PH_MS, "connId": "00a1b2c3d4e5f601",
          "callId": "41", "callThreadId": "41", "thisDN": PH_DN,
          "thisDNRole": "Destination", "otherDN": "+15550100",
          "otherDNRole": "Origination", "callType": "Inbound",
          "userData": {"seq": PH_SEQ, "sendUs": PH_US, "Segment": "Gold",
                       "CustomerId": "C-0012345", "IVR": "billing"}}
    text = json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
    # "time" is a number in the real event: no quotes around it.
    return text.replace(f'"{PH_MS}"', PH_MS)


def resp(*parts):
    out = f"*{len(parts)}\r\n"
    for p in parts:
        out += f"${len(p.encode())}\r\n{p}\r\n"
    return out.encode("latin-1")


def write_template(tmp, name, cmd):
    for ph, k in ((PH_SEQ, 2), (PH_US, 1), (PH_MS, 1), (PH_DN, 1)):
        if cmd.count(ph[0].encode()) != k * len(ph) or cmd.count(ph.encode()) != k:
            raise B.BenchError(f"the template holds {ph[0]!r} outside its placeholder")
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(cmd)
    return path


def run_evload(exe, prod_sock, clients, rate, window, warm, measure, template,
               ndns, server_pids):
    """Run evload on LOADGEN_CPU over the given sockets; returns its figures
    plus the CPU seconds of server_pids and of evload itself."""
    fds = [c.fileno() for c in clients]
    for s in [prod_sock] + list(clients):
        s.setblocking(False)
    argv = ["taskset", "-c", str(B.LOADGEN_CPU), exe, str(prod_sock.fileno()),
            str(rate), str(window), str(warm), str(measure), template,
            str(ndns)] + [str(fd) for fd in fds]
    cpu0 = {p: B.proc_cpu_s(p) for p in server_pids}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         pass_fds=[prod_sock.fileno()] + fds,
                         preexec_fn=B._child_setup)
    B.at_cleanup(lambda: B.stop_proc(p, "evload"))
    try:
        out, err = p.communicate(timeout=warm + measure + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise B.BenchError("evload did not finish")
    elapsed = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise B.BenchError(f"evload failed ({p.returncode}): "
                           f"{err.decode(errors='replace')}")
    r = {}
    for line in out.decode().splitlines():
        k, _, v = line.partition("=")
        r[k] = float(v) if "." in v else int(v)
    r["elapsed"] = elapsed
    r["server_cpu"] = {pid: B.proc_cpu_s(pid) - c for pid, c in cpu0.items()}
    r["loadgen_cpu"] = ((ru1.ru_utime + ru1.ru_stime)
                        - (ru0.ru_utime + ru0.ru_stime))
    return r


# ------------------------------------------------------------ tenantd with the events worker

class EventsTenantd:
    """tenantd with the metrics, config and events workers, every process
    pinned to SERVER_CPU, on the given PostgreSQL and Redis."""

    def __init__(self, binary, pg_conninfo, redis_port, token_file, max_clients):
        self.dir = B.tempdir("tenantd-bench-events-")
        self.port = B.free_port()
        self.api_port = B.free_port()
        self.ev_port = B.free_port()
        self.log = os.path.join(self.dir, "tenantd.log")
        self.conf = os.path.join(self.dir, "tenantd.conf")
        text = B.tenantd_conf(self.dir, self.port, pg_conninfo, redis_port)
        text, n1 = re.subn(r'config = \{ enabled = false; listen = "[^"]*"; \};',
                           f'config = {{ listen = "127.0.0.1:{self.api_port}"; }};',
                           text)
        text, n2 = re.subn(r'events = \{ enabled = false; listen = "[^"]*"; \};',
                           f'events = {{ listen = "127.0.0.1:{self.ev_port}"; '
                           f'max_clients = {max_clients}; '
                           f'max_registrations = 20; }};', text)
        if n1 != 1 or n2 != 1:
            raise B.BenchError("benchlib.tenantd_conf changed: cannot enable "
                               "workers.config and workers.events in it")
        text += f'security = {{\n  admin_token_file = "{token_file}";\n}};\n'
        B.write_conf(binary, self.conf, text)
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        B.at_cleanup(self.stderr.close)
        self.proc = B.spawn([binary, "-c", self.conf], stderr=self.stderr,
                            name="tenantd")
        self.master_pid = self.proc.pid
        B.wait_for(self._ready, 30, what="tenantd: config and events workers ready")

    def _ready(self):
        if self.proc.poll() is not None:
            raise B.BenchError(f"tenantd exited with {self.proc.returncode}:\n"
                               + self.log_text()[-3000:])
        w = self.health()["workers"]
        return all(w[k]["state"] == "ready" for k in ("metrics", "config"))

    def health(self):
        st, _, body = B.http_get(self.port, "/tenant/health", timeout=2)
        if st != 200:
            raise B.BenchError(f"/tenant/health answered {st}")
        return json.loads(body)

    def pid(self, worker):
        return int(self.health()["workers"][worker]["pid"])

    def pin_check(self):
        for pid in [self.master_pid] + B.children_of(self.master_pid):
            B.taskset_pid(pid, B.SERVER_CPU)
            if B.affinity(pid) != {B.SERVER_CPU}:
                raise B.BenchError(f"pid {pid} is not pinned to core {B.SERVER_CPU}")

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Heartbeat:
    """The voice side's heartbeat: SET ... PX 3000 every second."""

    def __init__(self, port, tenant):
        import redis as redislib
        self.r = redislib.Redis(host="127.0.0.1", port=port)
        self.key = f"tenantd:{{{tenant}}}:voice:heartbeat"
        self.stop = threading.Event()
        self.r.set(self.key, "bench", px=3000)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        B.at_cleanup(self.close)

    def _run(self):
        while not self.stop.wait(1.0):
            try:
                self.r.set(self.key, "bench", px=3000)
            except Exception:  # noqa: BLE001 - Redis going away at the end
                pass

    def close(self):
        self.stop.set()
        self.t.join(3)


# ------------------------------------------------------------ clients

def recv_lines(sock, buf, want, pred, timeout=10.0, sep=b"\n"):
    """Read until `want` lines matching pred arrived; returns (lines, rest)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        while sep in buf and len(got) < want:
            line, buf = buf.split(sep, 1)
            if pred(line):
                got.append(line)
        if len(got) >= want:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise B.BenchError(f"timed out: {len(got)} of {want} answers; "
                               f"last bytes {buf[-200:]!r}")
        sock.settimeout(left)
        data = sock.recv(65536)
        if not data:
            raise B.BenchError(f"connection closed after {got[-3:]!r} {buf!r}")
        buf += data
    return got, buf


def open_sessions(port, token, n, dns, tag):
    """n sessions, each opened with the admin token and registered on dns;
    requests pipelined, many connections at once."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = [json.dumps({"request": "RequestOpen", "ref": 1, "token": token,
                           "client": f"{tag}-{i}"})]
        for k, dn in enumerate(dns):
            req.append(json.dumps({"request": "RequestRegisterAddress",
                                   "ref": 2 + k, "dn": dn}))
        s.sendall(("\n".join(req) + "\n").encode())
        socks.append(s)
    for s in socks:
        lines, rest = recv_lines(s, b"", 1 + len(dns), lambda ln: b'"ref"' in ln)
        for ln in lines:
            m = json.loads(ln)
            if m.get("event") not in ("EventOpened", "EventRegistered"):
                raise B.BenchError(f"session set-up answered {m}")
        if rest:
            raise B.BenchError(f"unexpected bytes after set-up: {rest[:200]!r}")
    return socks


def register_more(socks, dns, ref0):
    for s in socks:
        s.setblocking(True)
        s.sendall(("\n".join(json.dumps({"request": "RequestRegisterAddress",
                                         "ref": ref0 + k, "dn": dn})
                             for k, dn in enumerate(dns)) + "\n").encode())
    for s in socks:
        lines, _ = recv_lines(s, b"", len(dns), lambda ln: b'"ref"' in ln)
        for ln in lines:
            if json.loads(ln).get("event") != "EventRegistered":
                raise B.BenchError(f"registration answered {ln!r}")


def subscribers(port, channel, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(resp("SUBSCRIBE", channel))
        socks.append(s)
    for s in socks:
        _, rest = recv_lines(s, b"", 6, lambda ln: True, sep=b"\r\n")
        if rest:
            raise B.BenchError(f"unexpected bytes after SUBSCRIBE: {rest!r}")
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise B.BenchError(f"no VmRSS for pid {pid}")


def settle_rss(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kb(pid)


# ------------------------------------------------------------ one round of each server

class Ctx:
    pass


def tenantd_run(ctx, rate, window, warm, measure, tag):
    clients = open_sessions(ctx.t.ev_port, ctx.token, ctx.args.clients, ctx.dns, tag)
    prod = socket.create_connection(("127.0.0.1", ctx.redis.port), timeout=10)
    prod.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cmd = resp("XADD", ctx.stream, "MAXLEN", "~", str(STREAM_MAXLEN), "*",
               "event", event_json(tag))
    tpl = write_template(ctx.tmp, f"xadd-{tag}", cmd)
    try:
        r = run_evload(ctx.exe, prod, clients, rate, window, warm, measure, tpl,
                       len(ctx.dns), [ctx.ev_pid, ctx.redis.proc.pid])
    finally:
        close_all(clients + [prod])
    r["server_pid"] = ctx.ev_pid
    r["redis_pid"] = ctx.redis.proc.pid
    # The worker must have read everything before the next run's clients
    # register, or they would get this run's backlog.
    ctx.xadded += r["sent"]
    t0 = time.monotonic()
    B.wait_for(lambda: ev_metric(ctx, "tenantd_events_received_total") >= ctx.xadded,
               120, interval=0.1, what="the events worker to read the whole stream")
    r["catchup_s"] = time.monotonic() - t0
    return r


def ev_metric(ctx, name):
    st, _, body = B.http_get(ctx.t.port, "/metrics", timeout=5)
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise B.BenchError(f"/metrics has no {name}")


def redis_run(ctx, rate, window, warm, measure, tag):
    chan = f"tenantd:{{{B.TENANT_ID}}}:bench:{tag}"
    clients = subscribers(ctx.ref.port, chan, ctx.args.clients)
    prod = socket.create_connection(("127.0.0.1", ctx.ref.port), timeout=10)
    prod.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cmd = resp("PUBLISH", chan, event_json(tag))
    tpl = write_template(ctx.tmp, f"pub-{tag}", cmd)
    try:
        r = run_evload(ctx.exe, prod, clients, rate, window, warm, measure, tpl,
                       len(ctx.dns), [ctx.ref.proc.pid])
    finally:
        close_all(clients + [prod])
    r["server_pid"] = ctx.ref.proc.pid
    return r


def check_run(name, r, ctx):
    """Problems that make a run's figures wrong, and behaviour to report."""
    notes = []
    if r["producer_errors"]:
        raise B.BenchError(f"{name}: the producer got {r['producer_errors']} "
                           "error replies")
    if r["closed"]:
        notes.append(f"{r['closed']} of {r['clients']} clients were CUT")
    if r["gaps"]:
        notes.append(f"LOST: {r['gaps']} gaps in the clients' sequences")
    if r["missing"]:
        notes.append(f"{r['missing']:,} deliveries had not arrived 5 s after "
                     "the producer stopped")
    if r["dups"]:
        notes.append(f"{r['dups']} events twice or out of order")
    return notes


# ------------------------------------------------------------ 4a, 4b, 4c

def fmt_k(x):
    return f"{x:,.0f}"


def bench_throughput(ctx):
    a = ctx.args
    print(f"-- 4a. saturation: {a.clients} clients x {len(ctx.dns)} DNs, "
          f"closed loop (window {a.window} events), {a.duration}s measured after "
          f"1s warm-up, {a.rounds} rounds", flush=True)
    res = {"redis": [], "tenantd": []}
    for rnd in range(1, a.rounds + 1):
        for name, fn in (("redis", redis_run), ("tenantd", tenantd_run)):
            r = fn(ctx, 0, a.window, 1.0, a.duration, f"s{rnd}{name[0]}")
            dps = r["window_delivered"] / r["window_s"]
            eps = r["window_sent"] / r["window_s"]
            total = r["delivered"]
            cpu = r["server_cpu"][r["server_pid"]]
            r.update(dps=dps, eps=eps, cpu_us=cpu * 1e6 / total if total else 0,
                     busy=cpu / r["elapsed"], lg_busy=r["loadgen_cpu"] / r["elapsed"])
            extra = ""
            if name == "tenantd":
                rc = r["server_cpu"][r["redis_pid"]]
                extra = (f", stream redis-server {rc / r['elapsed'] * 100:.0f}% "
                         f"of core {B.LOADGEN_CPU}")
            notes = check_run(name, r, ctx)
            print(f"   round {rnd} {name:8s} {fmt_k(dps):>10} deliveries/s "
                  f"({fmt_k(eps)} events/s); server {r['cpu_us']:.2f} us "
                  f"CPU/delivery, {r['busy'] * 100:.0f}% of core {B.SERVER_CPU}; "
                  f"evload {r['lg_busy'] * 100:.0f}% of core {B.LOADGEN_CPU}"
                  f"{extra}; producer held by the window "
                  f"{r['window_stalls']:,} times"
                  + (f"; {'; '.join(notes)}" if notes else ""), flush=True)
            res[name].append(r)
    med = {k: B.median([r["dps"] for r in v]) for k, v in res.items()}
    cpu = {k: B.median([r["cpu_us"] for r in v]) for k, v in res.items()}
    ratio = med["tenantd"] / med["redis"]
    ok = ratio >= THROUGHPUT_GOAL
    for k in ("redis", "tenantd"):
        v = [r["dps"] for r in res[k]]
        print(f"   {k:8s} median {fmt_k(med[k])} deliveries/s "
              f"({fmt_k(med[k] / a.clients)} events/s; min {fmt_k(min(v))}, "
              f"max {fmt_k(max(v))}); {cpu[k]:.2f} us server CPU/delivery",
              flush=True)
    print(f"   ratio tenantd/redis {ratio:.2f} (goal >= {THROUGHPUT_GOAL}): "
          f"{'met' if ok else 'MISSED'}; CPU efficiency (redis us/delivery / "
          f"tenantd us/delivery) {cpu['redis'] / cpu['tenantd']:.2f}", flush=True)
    bad = [n for k in res for r in res[k] for n in check_run(k, r, ctx)]
    B.result_line(f"events fan-out to {a.clients} clients (deliveries/s)",
                  "deliveries/s", fmt_k(med["tenantd"]), fmt_k(med["redis"]),
                  f"{ratio:.2f}", f">= {THROUGHPUT_GOAL}", ok and not bad)
    return res


def ms(us):
    return f">{(1 << 22) / 1000:.0f}" if us >= (1 << 22) else f"{us / 1000:.3f}"


def bench_latency(ctx, rate, goal=True):
    a = ctx.args
    print(f"-- 4b. latency at {rate:,} events/s to {a.clients} clients "
          f"({rate * a.clients:,} deliveries/s){'' if goal else ', informative'}: "
          f"producer paced by a 100 us timer, {a.duration}s measured after 1s "
          f"warm-up, {a.rounds} rounds; every delivery is a sample (XADD or "
          "PUBLISH written -> line read by the client)", flush=True)
    res = {"redis": [], "tenantd": []}
    for rnd in range(1, a.rounds + 1):
        for name, fn in (("redis", redis_run), ("tenantd", tenantd_run)):
            r = fn(ctx, rate, 1 << 40, 1.0, a.duration, f"l{rate // 1000}k{rnd}{name[0]}")
            r["eps"] = r["window_sent"] / r["window_s"]
            r["dps"] = r["window_delivered"] / r["window_s"]
            cpu = r["server_cpu"][r["server_pid"]]
            r["busy"] = cpu / r["elapsed"]
            notes = check_run(name, r, ctx)
            if r.get("catchup_s", 0) > 0.5:
                notes.append(f"the worker needed {r['catchup_s']:.1f} s more to "
                             "read the stream to its end")
            print(f"   round {rnd} {name:8s} p50 {ms(r['p50_us'])} ms, "
                  f"p90 {ms(r['p90_us'])}, p99 {ms(r['p99_us'])}, "
                  f"p99.9 {ms(r['p999_us'])}, max {ms(r['max_us'])} "
                  f"({r['lat_n']:,} samples); sent {fmt_k(r['eps'])} events/s, "
                  f"delivered {fmt_k(r['dps'])}/s; {r['late']:,} sends late >2 ms "
                  f"(max {r['lag_max_us'] / 1000:.1f} ms); server "
                  f"{r['busy'] * 100:.0f}% of core {B.SERVER_CPU}"
                  + (f"; {'; '.join(notes)}" if notes else ""), flush=True)
            res[name].append(r)
    med = {k: {p: B.median([r[p] for r in v]) for p in
               ("p50_us", "p90_us", "p99_us", "p999_us")} for k, v in res.items()}
    for k in ("redis", "tenantd"):
        m = med[k]
        print(f"   {k:8s} medians: p50 {ms(m['p50_us'])} ms, p90 {ms(m['p90_us'])}, "
              f"p99 {ms(m['p99_us'])}, p99.9 {ms(m['p999_us'])}", flush=True)
    diff = (med["tenantd"]["p99_us"] - med["redis"]["p99_us"]) / 1000
    rate_ok = all(r["eps"] >= 0.95 * rate for v in res.values() for r in v)
    ok = diff <= LATENCY_GOAL_MS and rate_ok
    print(f"   p99 tenantd - redis: {diff:+.3f} ms"
          + (f" (goal <= {LATENCY_GOAL_MS} ms)" if goal else "")
          + ("" if rate_ok else "; the producer did not reach 95% of the rate")
          + (f": {'met' if ok else 'MISSED'}" if goal else ""), flush=True)
    bad = [n for k in res for r in res[k] for n in check_run(k, r, ctx)]
    B.result_line(f"events p99 at {rate:,} ev/s x {a.clients} (ms)", "ms",
                  ms(med["tenantd"]["p99_us"]), ms(med["redis"]["p99_us"]),
                  f"{diff:+.2f} ms", f"<= +{LATENCY_GOAL_MS} ms" if goal else
                  "(informative)", (ok and not bad) if goal else True)
    return res


def bench_memory(ctx):
    a = ctx.args
    n = a.idle
    print(f"-- 4c. memory: {n:,} idle clients (VmRSS, 1 s after the last set-up)",
          flush=True)
    pid = ctx.ev_pid
    r0 = settle_rss(pid)
    socks = open_sessions(ctx.t.ev_port, ctx.token, n, [], "idle")
    r_open = settle_rss(pid)
    register_more(socks, ctx.dns[:1], 100)
    r_one = settle_rss(pid)
    register_more(socks, ctx.dns[1:], 200)
    r_ten = settle_rss(pid)
    close_all(socks)
    per = {k: (v - r0) * 1024 / n for k, v in
           (("open", r_open), ("1 DN", r_one), (f"{len(ctx.dns)} DNs", r_ten))}
    print(f"   events worker: {r0:,} KiB with 0 clients; {r_open:,} KiB with {n:,} "
          f"open; {r_one:,} with 1 DN each; {r_ten:,} with {len(ctx.dns)} DNs each",
          flush=True)
    print("   per client: " + ", ".join(f"{k} {v:,.0f} B" for k, v in per.items()),
          flush=True)
    rp = ctx.ref.proc.pid
    q0 = settle_rss(rp)
    subs = subscribers(ctx.ref.port, "idle", n)
    q1 = settle_rss(rp)
    close_all(subs)
    ref_per = (q1 - q0) * 1024 / n
    print(f"   reference redis-server: {q0:,} KiB with 0 subscribers, {q1:,} KiB "
          f"with {n:,}: {ref_per:,.0f} B per subscriber", flush=True)
    t_per = per[f"{len(ctx.dns)} DNs"]
    B.result_line(f"events memory per idle client, {len(ctx.dns)} DNs (bytes)", "B",
                  f"{t_per:,.0f}", f"{ref_per:,.0f}",
                  f"{t_per / ref_per:.2f}" if ref_per > 0 else "-",
                  "(informative)", True)


# ------------------------------------------------------------ main

def run(args):
    B.pin_self(B.LOADGEN_CPU)
    print(f"== 4. events worker (issue 4): 4a fan-out throughput, 4b latency at "
          f"{args.rate:,} events/s, 4c memory per client; rounds alternate "
          "redis pub/sub and tenantd", flush=True)
    print(B.busy_note(), flush=True)
    tmp = B.tempdir("tenantd-bench-ev-")
    exe = build_evload(tmp)
    token = "tk-" + secrets.token_hex(20)
    token_file = os.path.join(tmp, "admin.token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)
    pg = B.PgServer()
    redis = B.RedisServer()                         # the voice side's, core 1
    ref = B.RedisServer(cpu=B.SERVER_CPU)           # the reference, core 0
    t = EventsTenantd(args.binary, pg.conninfo, redis.port, token_file,
                      max_clients=args.idle + args.clients + 50)
    hb = Heartbeat(redis.port, B.TENANT_ID)
    api = Api(t.api_port, token)
    sw = api.json("POST", "/v1/switches", {"name": "sw1", "type": "SIP"}, want=201)
    dns = [str(DN_BASE + i) for i in range(args.dns)]
    for dn in dns:
        api.json("POST", "/v1/dns", {"number": dn, "type": "Extension",
                                     "switch": sw["dbid"]}, want=201)
    api.close()

    def events_up():
        if t.health()["workers"]["events"]["state"] != "ready":
            return False
        s = open_sessions(t.ev_port, token, 1, dns, "probe")
        close_all(s)
        return True
    B.wait_for(events_up, 30, interval=0.2, what="the events worker to register DNs")
    t.pin_check()
    ctx = Ctx()
    ctx.args, ctx.t, ctx.token, ctx.dns, ctx.tmp, ctx.exe = args, t, token, dns, tmp, exe
    ctx.redis, ctx.ref, ctx.hb = redis, ref, hb
    ctx.ev_pid = t.pid("events")
    ctx.stream = f"tenantd:{{{B.TENANT_ID}}}:voice:events"
    if B.affinity(ref.proc.pid) != {B.SERVER_CPU}:
        raise B.BenchError("the reference redis-server is not on core 0")
    print(f"   core {B.SERVER_CPU}: tenantd (master {t.master_pid}, events worker "
          f"{ctx.ev_pid}, config and metrics workers, all pinned) and the reference "
          f"redis-server (pid {ref.proc.pid}, port {ref.port}); core "
          f"{B.LOADGEN_CPU}: evload (producer and all clients), this script, "
          f"the voice side's redis-server (pid {redis.proc.pid}, port {redis.port}) "
          f"and PostgreSQL 15", flush=True)
    sample = event_json("s1t")
    print(f"   event: {len(sample.encode())} bytes of JSON as written to Redis "
          f"(EventRinging with a 5-key userData); tenantd adds its position",
          flush=True)
    ctx.xadded = 0
    stages = (("memory", bench_memory), ("throughput", bench_throughput),
              ("latency", lambda c: bench_latency(c, args.rate)))
    if args.low_rate:
        stages += (("latency", lambda c: bench_latency(c, args.low_rate, False)),)
    for name, stage in stages:
        if args.only is None or name in args.only.split(","):
            print(flush=True)
            stage(ctx)
    slow = re.findall(r"slow|max_output|cut", t.log_text())
    st, _, body = B.http_get(t.port, "/metrics", timeout=5)
    m = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("tenantd_events_") or line.startswith("tenant_events_"):
            k, _, v = line.rpartition(" ")
            m[k] = v
    print(flush=True)
    print("   events worker counters at the end: " + ", ".join(
        f"{k.replace('tenantd_events_', '')}={v}" for k, v in sorted(m.items())
        if "lag" in k or "slow" in k or "duplicates" in k or "received" in k
        or "delivered" in k), flush=True)
    if slow:
        print(f"   tenantd's log mentions slow clients {len(slow)} times", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5,
                    help="seconds measured in each run (after 1 s of warm-up)")
    ap.add_argument("--rate", type=int, default=20000, help="events/s in 4b")
    ap.add_argument("--low-rate", type=int, default=5000,
                    help="events/s of an informative latency run below "
                    "saturation (0: none)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--dns", type=int, default=10, help="DNs each client registers")
    ap.add_argument("--window", type=int, default=4000,
                    help="4a: events written and not yet read by every client")
    ap.add_argument("--idle", type=int, default=1000, help="idle clients in 4c")
    ap.add_argument("--only", metavar="STAGES",
                    help="comma-separated: memory, throughput, latency")
    ap.add_argument("--time-limit", type=int, default=330)
    args = ap.parse_args()
    return B.main_wrapper(lambda: run(args), time_limit=args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
