#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark 5: the stats worker (issue 5), beside a plain Redis stream
reader measured in the same run.

Set-up: 10,000 agents (persons with employeeId, agent logins, places with
one extension each; 100 agent groups of 100, 10 ACD queues in a DN group),
created with one POST /v1/import of NDJSON; every agent logged in through
the voice stream; 50,000 open change-based statistics over 10 sessions:
per agent CurrentAgentState, TotalTalkTime, AverageHandlingTime and
TotalNumberAnsweredCalls, per group Ready/NotReady/Talking/LoggedIn
counts, per queue and for the tenant the queue statistics, and
CurrentAgentState on as many places as make 50,000.

  5a. Memory per open statistic: the stats worker's VmRSS with the 50,000
      statistics open minus with 0 (agents logged in), divided by 50,000.
  5b. Saturation: sustained voice events/s.  stload (C, its source below)
      writes pipelined XADDs of agent state flips and short inbound calls
      (Ready; Queued and Diverted on a queue; Ringing, Established,
      Released on the agent's DN; NotReady AfterCallWork), at most
      --window events ahead of what the reader has taken, and reads every
      session, counting EventInfo.  The worker's progress is the newest
      event whose time it shows as an agent's `since`.  Reference:
      streamref (C, hiredis + jansson, the worker's libraries), which
      XREADs the same events (COUNT 500, as the worker) from a stream of
      its own and only parses each JSON and counts.  Goal: ratio >= 0.5
      and >= 30,000 EventInfo/s delivered.
  5c. Latency at --rate events/s (paced by a 100 us timer): from the
      XADD being written to the EventInfo that shows the event (an
      agent's CurrentAgentState whose `since` is the event's `time`)
      being read, for every Agent and Place CurrentAgentState
      notification.  Goal: p99 <= 50 ms.  Reference: the same from the
      XADD to streamref having parsed the batch holding the event.

The heartbeat key is kept set (SET ... PX 3000 every second), or the
statistics would be invalid and nothing notified.

Cores: tenantd (master, every worker) and streamref on core 0; stload,
this script, PostgreSQL and the voice side's redis-server on core 1.
Rounds alternate the reference and tenantd; figures are medians.

usage: stats_bench.py TENANTD_BINARY [--rounds 3] [--duration 5]
       [--rate 8000] [--agents 10000] [--stats 50000] [--sessions 10]
       [--window 20000] [--only memory,throughput,latency]
"""

import argparse
import http.client
import json
import os
import re
import resource
import secrets
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from config_bench import Api  # noqa: E402
from events_bench import (EventsTenantd, Heartbeat, close_all,  # noqa: E402
                          recv_lines, rss_kb, settle_rss)

THROUGHPUT_GOAL = 0.5
NOTIFY_GOAL = 30000
LATENCY_GOAL_MS = 50.0
STREAM_MAXLEN = 1000000     # docs/voice-redis.md: MAXLEN ~ 1000000
DN_BASE = 100000            # agent i: DN 100000+i, login 200000+i
LOGIN_BASE = 200000
Q_BASE = 9000
NQUEUES = 10
GROUP_SIZE = 100

STLOAD_C = r"""
/* stload - voice event producer and statistics reader of
 * test/bench/stats_bench.py */
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

#define BUFCAP		(1 << 22)
#define OUTCAP		(1 << 21)
#define HIST		(1 << 22)	/* latency buckets, 1 us each */
#define RING		4

struct conn {
	int	 fd, closed;
	char	*buf;
	size_t	 len;
};

struct sent { uint64_t ms, us, seq; int sampled, step; };
static uint64_t slow_step[7], all_step[7];
static FILE *trace;

static struct conn	*cs;
static int		 ncs, nopen, ref_mode;
static uint32_t		*hist;
static uint64_t		 hist_over, lat_n, infos, win_infos, unmatched, repeats;
static uint64_t		 progress;	/* events the reader has taken */
static int		 in_window;
static struct sent	*ring;		/* per agent, RING recent state events */
static int		 nagents, nq, dnbase, loginbase, qbase;
static const char	*stream, *tag;

static uint64_t
mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
real_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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
sample(uint64_t agent, uint64_t ms, uint64_t now)
{
	struct sent	*r;
	uint64_t	 d;
	int		 i;

	if (agent >= (uint64_t)nagents)
		return;
	r = &ring[agent * RING];
	for (i = 0; i < RING; i++)
		if (r[i].us != 0 && r[i].ms == ms)
			break;
	if (i == RING) {
		unmatched++;
		return;
	}
	if (!ref_mode && r[i].seq + 1 > progress)
		progress = r[i].seq + 1;
	/* One sample per event: the first notification that shows it (the
	 * Agent's or the Place's); later ones showing the same `since` are
	 * counted apart. */
	if (r[i].sampled) {
		repeats++;
		return;
	}
	r[i].sampled = 1;
	if (in_window) {
		d = now > r[i].us ? now - r[i].us : 0;
		all_step[r[i].step]++;
		if (trace != NULL)
			fprintf(trace, "%" PRIu64 " %" PRIu64 " %d\n", now, d,
			    r[i].step);
		if (d > 50000)
			slow_step[r[i].step]++;
		if (d < HIST)
			hist[d]++;
		else
			hist_over++;
		lat_n++;
	}
}

static void
on_line(const char *p, size_t len, uint64_t now)
{
	const char	*end = p + len, *m;
	uint64_t	 agent, ms;

	if (ref_mode) {		/* "R <count> <agent> <time ms>" */
		char	*q;

		if (len < 2 || p[0] != 'R')
			return;
		progress = strtoull(p + 2, &q, 10);
		agent = strtoull(q, &q, 10);
		ms = strtoull(q, &q, 10);
		if (ms != 0)
			sample(agent, ms, now);
		return;
	}
	if (memmem(p, len, "\"EventInfo\"", 11) == NULL)
		return;
	infos++;
	if (in_window)
		win_infos++;
	if ((m = memmem(p, len, "\"since\":", 8)) == NULL)
		return;
	ms = digits(m + 8 + (m[8] == ' '), end);
	if ((m = memmem(p, len, "\"agentId\":", 10)) == NULL)
		return;
	m += 10;
	while (m < end && (*m == ' ' || *m == '"'))
		m++;
	agent = digits(m, end) - (uint64_t)loginbase;
	sample(agent, ms, now);
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
	now = real_us();
	c->len += (size_t)r;
	p = c->buf;
	end = c->buf + c->len;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		on_line(p, (size_t)(nl - p), now);
		p = nl + 1;
	}
	c->len = (size_t)(end - p);
	if (c->len == BUFCAP) {
		fprintf(stderr, "stload: a line over %d bytes\n", BUFCAP);
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

/*
 * One event: agent a = seq % N does its k-th event (k = seq / N, offset
 * by a so that agents are at different steps), step k % 7 of a cycle.
 * Returns the bytes of the XADD written to dst.
 */
static size_t
event(char *dst, uint64_t seq, uint64_t ms, uint64_t us)
{
	static char	 js[1024];
	uint64_t	 a = seq % (uint64_t)nagents;
	uint64_t	 k = seq / (uint64_t)nagents + a;
	int		 step = (int)(k % 7), n, hl;
	uint64_t	 cyc = k / 7;
	char		 conn[48], head[256];
	int		 dn = dnbase + (int)a, login = loginbase + (int)a;
	int		 q = qbase + (int)(a % (uint64_t)nq);
	const char	*ud = "\"userData\":{\"Segment\":\"Gold\","
			    "\"CustomerId\":\"C-0012345\"}";

	snprintf(conn, sizeof(conn), "%06" PRIx64 "%010" PRIx64, a, cyc);
	n = snprintf(js, sizeof(js), "{\"event\":\"%s\",\"eventId\":"
	    "\"%s-%" PRIu64 "\",\"region\":\"local\",\"time\":%" PRIu64 ",",
	    step == 0 ? "EventAgentReady" : step == 1 ? "EventQueued" :
	    step == 2 ? "EventDiverted" : step == 3 ? "EventRinging" :
	    step == 4 ? "EventEstablished" : step == 5 ? "EventReleased" :
	    "EventAgentNotReady", tag, seq, ms);
	switch (step) {
	case 0:
	case 6:
		n += snprintf(js + n, sizeof(js) - (size_t)n, "\"thisDN\":"
		    "\"%d\",\"agentId\":\"%d\",\"workMode\":\"%s\"}", dn, login,
		    step == 0 ? "ManualIn" : "AfterCallWork");
		break;
	case 1:
	case 2:
		n += snprintf(js + n, sizeof(js) - (size_t)n, "\"connId\":"
		    "\"%s\",\"callId\":\"%" PRIu64 "\",\"callThreadId\":\"%"
		    PRIu64 "\",\"thisDN\":\"%d\",\"thisDNRole\":\"Queue\","
		    "\"otherDN\":\"+15550100\",\"otherDNRole\":\"Origination\",",
		    conn, seq, seq, q);
		if (step == 2)
			n += snprintf(js + n, sizeof(js) - (size_t)n,
			    "\"thirdDN\":\"%d\",", dn);
		n += snprintf(js + n, sizeof(js) - (size_t)n, "\"callType\":"
		    "\"Inbound\",%s}", ud);
		break;
	default:
		n += snprintf(js + n, sizeof(js) - (size_t)n, "\"connId\":"
		    "\"%s\",\"callId\":\"%" PRIu64 "\",\"callThreadId\":\"%"
		    PRIu64 "\",\"thisDN\":\"%d\",\"thisDNRole\":\"Destination\","
		    "\"otherDN\":\"+15550100\",\"otherDNRole\":\"Origination\","
		    "\"thirdDN\":\"%d\",\"callType\":\"Inbound\",\"agentId\":"
		    "\"%d\",%s%s}", conn, seq, seq, dn, q, login,
		    step == 5 ? "\"cause\":\"Normal\"," : "", ud);
		break;
	}
	if (step == 0 || step >= 3) {	/* the agent's state changes */
		struct sent	*r = &ring[a * RING];

		memmove(r + 1, r, sizeof(*r) * (RING - 1));
		r[0].ms = ms;
		r[0].us = us;
		r[0].seq = seq;
		r[0].sampled = 0;
		r[0].step = step;
	}
	hl = snprintf(head, sizeof(head), "*8\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n"
	    "$6\r\nMAXLEN\r\n$1\r\n~\r\n$7\r\n1000000\r\n$1\r\n*\r\n$5\r\n"
	    "event\r\n$%d\r\n", strlen(stream), stream, n);
	memcpy(dst, head, (size_t)hl);
	memcpy(dst + hl, js, (size_t)n);
	memcpy(dst + hl + n, "\r\n", 2);
	return (size_t)hl + (size_t)n + 2;
}

int
main(int argc, char **argv)
{
	int			 prod, ep, tfd = -1, i, n, line_start = 1;
	double			 rate, warm, measure;
	uint64_t		 window, sent = 0, t0, now, due, us, ms;
	uint64_t		 tw0 = 0, tw1 = 0, p0 = 0, p1 = 0, ws0 = 0, ws1 = 0;
	uint64_t		 late = 0, lag_max = 0, perr = 0, stalls = 0;
	uint64_t		 last_ms = 0;
	char			*out, rbuf[65536];
	size_t			 olen = 0;
	int			 producing = 1, phase = 0, want_out = 0;
	struct epoll_event	 ev, evs[128];

	if (argc < 14) {
		fprintf(stderr, "usage: stload MODE PROD_FD RATE WINDOW WARM "
		    "MEASURE NAGENTS DNBASE LOGINBASE QBASE NQ STREAM TAG "
		    "FD...\n");
		return 2;
	}
	ref_mode = strcmp(argv[1], "ref") == 0;
	prod = atoi(argv[2]);
	rate = atof(argv[3]);
	window = strtoull(argv[4], NULL, 10);
	warm = atof(argv[5]);
	measure = atof(argv[6]);
	nagents = atoi(argv[7]);
	dnbase = atoi(argv[8]);
	loginbase = atoi(argv[9]);
	qbase = atoi(argv[10]);
	nq = atoi(argv[11]);
	stream = argv[12];
	tag = argv[13];
	if (getenv("STLOAD_TRACE") != NULL)
		trace = fopen(getenv("STLOAD_TRACE"), "w");
	out = malloc(OUTCAP);
	hist = calloc(HIST, sizeof(*hist));
	ring = calloc((size_t)nagents * RING, sizeof(*ring));
	ncs = argc - 14;
	cs = calloc((size_t)ncs, sizeof(*cs));
	ep = epoll_create1(0);
	for (i = 0; i < ncs; i++) {
		cs[i].fd = atoi(argv[14 + i]);
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
			p0 = progress;
			ws0 = sent;
			win_infos = 0;
		} else if (phase == 1 && now >= tw0 + (uint64_t)(measure * 1e6)) {
			phase = 2;
			in_window = 0;
			tw1 = now;
			p1 = progress;
			ws1 = sent;
			producing = 0;
		}
		if (nopen == 0)
			break;
		if (!producing) {
			if (progress >= sent && olen == 0)
				break;
			if (now > tw1 + 5000000)
				break;
		}
		if (producing) {
			due = rate > 0 ? (uint64_t)((double)(now - t0) * rate /
			    1e6) + 1 : UINT64_MAX;
			us = real_us();
			ms = us / 1000;
			/* Event times never go back (the worker's totals
			 * would see negative durations). */
			if (ms < last_ms)
				ms = last_ms;
			last_ms = ms;
			while (sent < due && olen + 4096 <= OUTCAP) {
				if (sent - progress >= window) {
					stalls++;
					break;
				}
				olen += event(out + olen, sent, ms, us);
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
				fprintf(stderr, "stload: producer write: %s\n",
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
		n = epoll_wait(ep, evs, 128, 5);
		for (i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;
			if (k < (uint64_t)ncs) {
				on_read(&cs[k], ep);
			} else if (k == (uint64_t)ncs) {
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
					ssize_t r = read(prod, rbuf, sizeof(rbuf));
					ssize_t j;
					if (r == 0) {
						fprintf(stderr, "stload: the producer's "
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
		p1 = progress;
		ws1 = sent;
	}
	if (trace != NULL)
		fclose(trace);
	printf("sent=%" PRIu64 "\n", sent);
	printf("progress=%" PRIu64 "\n", progress);
	printf("window_s=%.6f\n", (double)(tw1 - tw0) / 1e6);
	printf("window_taken=%" PRIu64 "\n", p1 - p0);
	printf("window_sent=%" PRIu64 "\n", ws1 - ws0);
	printf("infos=%" PRIu64 "\nwindow_infos=%" PRIu64 "\n", infos, win_infos);
	printf("closed=%d\nunmatched=%" PRIu64 "\nrepeats=%" PRIu64 "\n",
	    ncs - nopen, unmatched, repeats);
	printf("producer_errors=%" PRIu64 "\n", perr);
	printf("slow_by_step=%" PRIu64 "/%" PRIu64 ",%" PRIu64 "/%" PRIu64 ",%"
	    PRIu64 "/%" PRIu64 ",%" PRIu64 "/%" PRIu64 ",%" PRIu64 "/%" PRIu64
	    "\n", slow_step[0], all_step[0], slow_step[3], all_step[3],
	    slow_step[4], all_step[4], slow_step[5], all_step[5], slow_step[6],
	    all_step[6]);
	printf("window_stalls=%" PRIu64 "\nlate=%" PRIu64 "\nlag_max_us=%"
	    PRIu64 "\n", stalls, late, lag_max);
	printf("lat_n=%" PRIu64 "\nlat_over=%" PRIu64 "\n", lat_n, hist_over);
	printf("p50_us=%" PRIu64 "\np90_us=%" PRIu64 "\np99_us=%" PRIu64
	    "\np999_us=%" PRIu64 "\nmax_us=%" PRIu64 "\n", pct(50), pct(90),
	    pct(99), pct(99.9), hist_over ? (uint64_t)HIST : pct(100));
	return 0;
}
"""

STREAMREF_C = r"""
/* streamref - the reference of test/bench/stats_bench.py: a plain Redis
 * stream reader that XREADs (COUNT 500, as the stats worker) and parses
 * each event's JSON with jansson, and counts.  After each batch it writes
 * "R <count> <agent> <time>" to stdout: the count and the last agent
 * event of the batch (its agentId minus LOGINBASE and its time). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

int
main(int argc, char **argv)
{
	redisContext	*c;
	redisReply	*r;
	char		 last[64], line[128];
	uint64_t	 count = 0;
	long		 loginbase;
	size_t		 i, j;

	if (argc != 5) {
		fprintf(stderr, "usage: streamref PORT STREAM START_ID "
		    "LOGINBASE\n");
		return 2;
	}
	loginbase = atol(argv[4]);
	snprintf(last, sizeof(last), "%s", argv[3]);
	if ((c = redisConnect("127.0.0.1", atoi(argv[1]))) == NULL || c->err)
		return 1;
	for (;;) {
		long		 agent = -1;
		json_int_t	 t = 0;

		r = redisCommand(c, "XREAD COUNT 500 BLOCK 100 STREAMS %s %s",
		    argv[2], last);
		if (r == NULL)
			return 1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
			freeReplyObject(r);
			continue;
		}
		for (i = 0; i < r->element[0]->element[1]->elements; i++) {
			redisReply	*e = r->element[0]->element[1]->element[i];
			redisReply	*f = e->element[1];

			snprintf(last, sizeof(last), "%s", e->element[0]->str);
			for (j = 0; j + 1 < f->elements; j += 2) {
				json_t		*ev, *a;
				json_error_t	 err;

				if (strcmp(f->element[j]->str, "event") != 0)
					continue;
				ev = json_loadb(f->element[j + 1]->str,
				    f->element[j + 1]->len, 0, &err);
				if (ev == NULL)
					continue;
				count++;
				a = json_object_get(ev, "agentId");
				if (json_is_string(a)) {
					agent = atol(json_string_value(a)) -
					    loginbase;
					t = json_integer_value(json_object_get(
					    ev, "time"));
				}
				json_decref(ev);
			}
		}
		freeReplyObject(r);
		snprintf(line, sizeof(line), "R %" PRIu64 " %ld %lld\n", count,
		    agent < 0 ? 0 : agent, agent < 0 ? 0LL : (long long)t);
		if (write(1, line, strlen(line)) < 0)
			return 0;
	}
}
"""


def build(tmp):
    out = {}
    for name, src, libs in (("stload", STLOAD_C, []),
                            ("streamref", STREAMREF_C, ["-lhiredis", "-ljansson"])):
        path = os.path.join(tmp, name + ".c")
        exe = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(src)
        r = subprocess.run(["cc", "-O2", "-Wall", "-o", exe, path] + libs,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise B.BenchError(f"cannot build {name}:\n"
                               + r.stdout.decode(errors="replace"))
        out[name] = exe
    return out


# ------------------------------------------------------------ tenantd

class StatsTenantd(EventsTenantd):
    """tenantd with the metrics, config and stats workers (the events
    worker stays off: it would read the same stream on the same core),
    every process pinned to SERVER_CPU."""

    def __init__(self, binary, pg_conninfo, redis_port, token_file, sessions):
        self.dir = B.tempdir("tenantd-bench-stats-")
        self.port = B.free_port()
        self.api_port = B.free_port()
        self.st_port = B.free_port()
        self.log = os.path.join(self.dir, "tenantd.log")
        self.conf = os.path.join(self.dir, "tenantd.conf")
        text = B.tenantd_conf(self.dir, self.port, pg_conninfo, redis_port)
        text, n1 = re.subn(r'config = \{ enabled = false; listen = "[^"]*"; \};',
                           f'config = {{ listen = "127.0.0.1:{self.api_port}"; }};',
                           text)
        text, n2 = re.subn(r'stats = \{ enabled = false; listen = "[^"]*"; \};',
                           f'stats = {{ listen = "127.0.0.1:{self.st_port}"; '
                           f'max_clients = {sessions + 50}; '
                           f'max_output = 268435456; }};', text)
        if n1 != 1 or n2 != 1:
            raise B.BenchError("benchlib.tenantd_conf changed: cannot enable "
                               "workers.config and workers.stats in it")
        text += f'security = {{\n  admin_token_file = "{token_file}";\n}};\n'
        B.write_conf(binary, self.conf, text)
        self.stderr = open(os.path.join(self.dir, "stderr"), "wb")
        B.at_cleanup(self.stderr.close)
        self.proc = B.spawn([binary, "-c", self.conf], stderr=self.stderr,
                            name="tenantd")
        self.master_pid = self.proc.pid
        B.wait_for(self._ready, 30, what="tenantd: config and stats workers ready")

    def _ready(self):
        if self.proc.poll() is not None:
            raise B.BenchError(f"tenantd exited with {self.proc.returncode}:\n"
                               + self.log_text()[-3000:])
        w = self.health()["workers"]
        return all(w.get(k, {}).get("state") == "ready"
                   for k in ("metrics", "config", "stats"))


# ------------------------------------------------------------ the tenant

def import_tenant(api_port, token, n):
    """One NDJSON import: a switch, n agents (DN, login, place, person),
    agent groups of GROUP_SIZE, NQUEUES queues in a DN group."""
    lines = [{"type": "Switch", "object": {"dbid": -1, "name": "sw1", "type": "SIP"}}]
    ph = 2
    persons = []
    for i in range(n):
        dn, login, place, person = ph, ph + 1, ph + 2, ph + 3
        ph += 4
        lines.append({"type": "DN", "object": {"dbid": -dn, "number": str(DN_BASE + i),
                                                "type": "Extension", "switch": -1}})
        lines.append({"type": "AgentLogin", "object": {
            "dbid": -login, "loginCode": str(LOGIN_BASE + i), "switch": -1}})
        lines.append({"type": "Place", "object": {"dbid": -place, "name": f"P{i}",
                                                   "dns": [-dn]}})
        lines.append({"type": "Person", "object": {
            "dbid": -person, "userName": f"agent{i}", "employeeId": f"E{i}",
            "isAgent": True, "place": -place,
            "agentLogins": [{"agentLogin": -login}]}})
        persons.append(-person)
    for g in range(0, n, GROUP_SIZE):
        lines.append({"type": "AgentGroup", "object": {
            "name": f"G{g // GROUP_SIZE}", "members": persons[g:g + GROUP_SIZE]}})
    qs = []
    for q in range(NQUEUES):
        lines.append({"type": "DN", "object": {"dbid": -ph, "number": str(Q_BASE + q),
                                                "type": "ACDQueue", "switch": -1}})
        qs.append(-ph)
        ph += 1
    lines.append({"type": "DNGroup", "object": {"name": "Queues", "members": qs}})
    body = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines).encode()
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", api_port,
                                                        timeout=300)
    c.request("POST", "/v1/import", body=body,
              headers={"Authorization": f"Bearer {token}",
                       "Content-Type": "application/x-ndjson"})
    r = c.getresponse()
    raw = r.read()
    c.close()
    if r.status != 200:
        raise B.BenchError(f"POST /v1/import: {r.status}: {raw[:500]!r}")
    return len(lines), time.monotonic() - t0, json.loads(raw)


def stat_requests(n_agents, total):
    """The RequestOpenStatistic bodies: (object, statistic)."""
    out = []
    for i in range(n_agents):
        for st in ("CurrentAgentState", "TotalTalkTime", "AverageHandlingTime",
                   "TotalNumberAnsweredCalls"):
            out.append(({"type": "Agent", "id": f"E{i}"}, st))
    for g in range(n_agents // GROUP_SIZE):
        for st in ("CurrentNumberReadyAgents", "CurrentNumberNotReadyAgents",
                   "CurrentNumberTalkingAgents", "CurrentNumberLoggedInAgents"):
            out.append(({"type": "GroupAgents", "id": f"G{g}"}, st))
    qstats = ("CurrentNumberWaitingCalls", "CurrentMaxWaitingTime",
              "TotalNumberInboundCalls", "TotalNumberAnsweredCalls",
              "AverageSpeedOfAnswer", "ServiceFactor")
    for q in range(NQUEUES):
        for st in qstats:
            out.append(({"type": "Queue", "id": str(Q_BASE + q)}, st))
    for st in qstats + ("CurrentNumberReadyAgents", "CurrentNumberNotReadyAgents",
                        "CurrentNumberTalkingAgents", "TotalTalkTime"):
        out.append(({"type": "Tenant", "id": "t"}, st))
    i = 0
    while len(out) < total and i < n_agents:
        out.append(({"type": "Place", "id": f"P{i}"}, "CurrentAgentState"))
        i += 1
    return out[:total]


def open_sessions(port, token, n):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(json.dumps({"request": "RequestOpen", "ref": 1, "token": token,
                              "client": f"wallboard-{i}"}).encode() + b"\n")
        lines, rest = recv_lines(s, b"", 1, lambda ln: b'"ref"' in ln)
        if json.loads(lines[0]).get("event") != "EventOpened":
            raise B.BenchError(f"RequestOpen answered {lines[0]!r}")
        socks.append(s)
    return socks


def open_stats(socks, reqs):
    """Open every statistic, spread over the sessions, pipelined; returns
    how many came back valid."""
    per = [[] for _ in socks]
    for k, r in enumerate(reqs):
        per[k % len(socks)].append(r)
    for s, rs in zip(socks, per):
        s.setblocking(True)
        s.sendall("".join(json.dumps({"request": "RequestOpenStatistic",
                                      "ref": 10 + j, "object": o, "statistic": st})
                          + "\n" for j, (o, st) in enumerate(rs)).encode())
    valid = 0
    for s, rs in zip(socks, per):
        lines, _ = recv_lines(s, b"", len(rs), lambda ln: b'"ref"' in ln, timeout=120)
        for ln in lines:
            m = json.loads(ln)
            if m.get("event") != "EventStatisticOpened":
                raise B.BenchError(f"RequestOpenStatistic answered {m}")
            valid += m.get("valid") is True
    return valid


def drain(socks, quiet=0.3):
    for s in socks:
        s.setblocking(False)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        got = 0
        time.sleep(quiet)
        for s in socks:
            try:
                while True:
                    d = s.recv(1 << 20)
                    if not d:
                        raise B.BenchError("the stats worker closed a session")
                    got += len(d)
            except BlockingIOError:
                pass
        if got == 0:
            return


def st_metric(ctx, name):
    st, _, body = B.http_get(ctx.t.port, "/metrics", timeout=5)
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise B.BenchError(f"/metrics has no {name}")


def xadd_logins(ctx):
    """Log every agent in through the stream (pipelined, real times)."""
    import redis as redislib
    r = redislib.Redis(host="127.0.0.1", port=ctx.redis.port)
    p = r.pipeline(transaction=False)
    now = int(time.time() * 1000)
    for i in range(ctx.args.agents):
        ev = {"event": "EventAgentLogin", "eventId": f"login-{i}", "region": "local",
              "time": now, "thisDN": str(DN_BASE + i), "agentId": str(LOGIN_BASE + i),
              "workMode": "ManualIn"}
        p.xadd(ctx.stream, {"event": json.dumps(ev)}, maxlen=STREAM_MAXLEN,
               approximate=True)
        if i % 1000 == 999:
            p.execute()
    p.execute()
    ctx.xadded += ctx.args.agents


# ------------------------------------------------------------ one run

def run_stload(ctx, mode, prod, fds, rate, window, warm, measure, stream, tag,
               pids):
    argv = ["taskset", "-c", str(B.LOADGEN_CPU), ctx.exe["stload"], mode,
            str(prod.fileno()), str(rate), str(window), str(warm), str(measure),
            str(ctx.args.agents), str(DN_BASE), str(LOGIN_BASE), str(Q_BASE),
            str(NQUEUES), stream, tag] + [str(fd) for fd in fds]
    prod.setblocking(False)
    cpu0 = {p: B.proc_cpu_s(p) for p in pids}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         pass_fds=[prod.fileno()] + list(fds),
                         preexec_fn=B._child_setup)
    B.at_cleanup(lambda: B.stop_proc(p, "stload"))
    try:
        out, err = p.communicate(timeout=warm + measure + 40)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise B.BenchError("stload did not finish")
    elapsed = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise B.BenchError(f"stload failed ({p.returncode}): "
                           f"{err.decode(errors='replace')}")
    r = {}
    for line in out.decode().splitlines():
        k, _, v = line.partition("=")
        r[k] = v if "/" in v else float(v) if "." in v else int(v)
    if r["producer_errors"]:
        raise B.BenchError(f"the producer got {r['producer_errors']} error replies")
    r["elapsed"] = elapsed
    r["cpu"] = {pid: B.proc_cpu_s(pid) - c for pid, c in cpu0.items()}
    r["loadgen_cpu"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return r


def tenantd_run(ctx, rate, window, warm, measure, tag):
    for s in ctx.socks:
        s.setblocking(False)
    prod = socket.create_connection(("127.0.0.1", ctx.redis.port), timeout=10)
    prod.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        r = run_stload(ctx, "stats", prod, [s.fileno() for s in ctx.socks], rate,
                       window, warm, measure, ctx.stream, tag,
                       [ctx.st_pid, ctx.redis.proc.pid])
    finally:
        prod.close()
    ctx.xadded += r["sent"]
    t0 = time.monotonic()
    B.wait_for(lambda: st_metric(ctx, "tenantd_stats_voice_events_total") >= ctx.xadded,
               120, interval=0.1, what="the stats worker to read the whole stream")
    r["catchup_s"] = time.monotonic() - t0
    drain(ctx.socks)
    r["server_pid"] = ctx.st_pid
    return r


def redis_run(ctx, rate, window, warm, measure, tag):
    import redis as redislib
    stream = f"tenantd:{{bench-ref}}:voice:events"
    rc = redislib.Redis(host="127.0.0.1", port=ctx.redis.port)
    last = rc.xrevrange(stream, count=1)
    start = last[0][0].decode() if last else "0-0"
    ref = subprocess.Popen(["taskset", "-c", str(B.SERVER_CPU), ctx.exe["streamref"],
                            str(ctx.redis.port), stream, start, str(LOGIN_BASE)],
                           stdout=subprocess.PIPE, preexec_fn=B._child_setup)
    B.at_cleanup(lambda: B.stop_proc(ref, "streamref"))
    prod = socket.create_connection(("127.0.0.1", ctx.redis.port), timeout=10)
    prod.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    os.set_blocking(ref.stdout.fileno(), False)
    try:
        r = run_stload(ctx, "ref", prod, [ref.stdout.fileno()], rate, window, warm,
                       measure, stream, tag, [ref.pid, ctx.redis.proc.pid])
    finally:
        prod.close()
        B.stop_proc(ref, "streamref")
        ref.stdout.close()
    rc.delete(stream)
    r["server_pid"] = ref.pid
    return r


# ------------------------------------------------------------ 5a, 5b, 5c

def fmt_k(x):
    return f"{x:,.0f}"


def ms(us):
    return f">{(1 << 22) / 1000:.0f}" if us >= (1 << 22) else f"{us / 1000:.2f}"


def bench_memory(ctx):
    a = ctx.args
    print(f"-- 5a. memory: the stats worker's VmRSS with 0, then {a.stats:,} open "
          f"statistics over {a.sessions} sessions ({a.agents:,} agents logged in; "
          "1 s after the set-up)", flush=True)
    socks = open_sessions(ctx.t.st_port, ctx.token, a.sessions)
    r0 = settle_rss(ctx.st_pid)
    t0 = time.monotonic()
    valid = open_stats(socks, ctx.reqs)
    took = time.monotonic() - t0
    r1 = settle_rss(ctx.st_pid)
    per = (r1 - r0) * 1024 / len(ctx.reqs)
    kinds = {}
    for o, st in ctx.reqs:
        kinds[o["type"]] = kinds.get(o["type"], 0) + 1
    print(f"   opened {len(ctx.reqs):,} statistics in {took:.1f} s "
          f"({len(ctx.reqs) / took:,.0f}/s; {valid:,} valid): "
          + ", ".join(f"{k} {v:,}" for k, v in kinds.items()), flush=True)
    print(f"   stats worker: {r0:,} KiB with 0 statistics, {r1:,} KiB with "
          f"{len(ctx.reqs):,}: {per:,.0f} B per open statistic", flush=True)
    if valid != len(ctx.reqs):
        raise B.BenchError(f"only {valid} of {len(ctx.reqs)} statistics are valid "
                           "(the voice link?)")
    ctx.socks = socks
    B.result_line(f"stats memory per open statistic ({len(ctx.reqs):,}) (bytes)",
                  "B", f"{per:,.0f}", "-", "-", "(informative)", True)


def bench_throughput(ctx):
    a = ctx.args
    print(f"-- 5b. saturation: voice events/s taken, closed loop (at most "
          f"{a.window:,} events ahead of the reader), {a.duration}s measured after "
          f"2 s warm-up, {a.rounds} rounds; events cycle Ready, Queued, Diverted, "
          "Ringing, Established, Released, NotReady(AfterCallWork) over "
          f"{a.agents:,} agents", flush=True)
    res = {"streamref": [], "tenantd": []}
    for rnd in range(1, a.rounds + 1):
        for name, fn in (("streamref", redis_run), ("tenantd", tenantd_run)):
            tag = f"s{rnd}{name[0]}{secrets.token_hex(3)}"
            r = fn(ctx, 0, a.window, 2.0, a.duration, tag)
            r["eps"] = r["window_taken"] / r["window_s"]
            r["ips"] = r["window_infos"] / r["window_s"]
            cpu = r["cpu"][r["server_pid"]]
            rcpu = r["cpu"][ctx.redis.proc.pid]
            r["busy"] = cpu / r["elapsed"]
            r["cpu_us"] = cpu * 1e6 / r["sent"] if r["sent"] else 0
            extra = ""
            if name == "tenantd":
                extra = (f"; {fmt_k(r['ips'])} EventInfo/s "
                         f"({r['ips'] / r['eps']:.2f} per event), p99 "
                         f"{ms(r['p99_us'])} ms; read the rest in "
                         f"{r['catchup_s']:.1f} s")
            print(f"   round {rnd} {name:9s} {fmt_k(r['eps']):>8} events/s{extra}; "
                  f"{r['cpu_us']:.1f} us CPU/event, {r['busy'] * 100:.0f}% of core "
                  f"{B.SERVER_CPU}; stload {r['loadgen_cpu'] / r['elapsed'] * 100:.0f}%"
                  f" and redis-server {rcpu / r['elapsed'] * 100:.0f}% of core "
                  f"{B.LOADGEN_CPU}; held by the window {r['window_stalls']:,} times"
                  + (f"; {r['closed']} sessions CUT" if r["closed"] else ""),
                  flush=True)
            res[name].append(r)
    med = {k: B.median([r["eps"] for r in v]) for k, v in res.items()}
    cpu = {k: B.median([r["cpu_us"] for r in v]) for k, v in res.items()}
    ips = B.median([r["ips"] for r in res["tenantd"]])
    ratio = med["tenantd"] / med["streamref"]
    for k in res:
        v = [r["eps"] for r in res[k]]
        print(f"   {k:9s} median {fmt_k(med[k])} events/s (min {fmt_k(min(v))}, max "
              f"{fmt_k(max(v))}); {cpu[k]:.1f} us CPU/event", flush=True)
    ok = ratio >= THROUGHPUT_GOAL and ips >= NOTIFY_GOAL
    print(f"   ratio tenantd/streamref {ratio:.2f} (goal >= {THROUGHPUT_GOAL}); "
          f"EventInfo delivered {fmt_k(ips)}/s (goal >= {NOTIFY_GOAL:,}): "
          f"{'met' if ok else 'MISSED'}; CPU efficiency "
          f"{cpu['streamref'] / cpu['tenantd']:.2f}", flush=True)
    bad = any(r["closed"] for v in res.values() for r in v)
    B.result_line(f"stats events/s, {len(ctx.reqs):,} statistics (events/s)",
                  "events/s", f"{fmt_k(med['tenantd'])} ({fmt_k(ips)} info/s)",
                  fmt_k(med["streamref"]), f"{ratio:.2f}",
                  f">= {THROUGHPUT_GOAL}, >= {NOTIFY_GOAL // 1000}k info/s",
                  ok and not bad)
    return res


def bench_latency(ctx, rate):
    a = ctx.args
    print(f"-- 5c. latency at {rate:,} events/s: XADD written -> EventInfo of the "
          f"agent's CurrentAgentState (Agent and Place) read; paced by a 100 us "
          f"timer, {a.duration}s measured after 2 s warm-up, {a.rounds} rounds",
          flush=True)
    res = {"streamref": [], "tenantd": []}
    for rnd in range(1, a.rounds + 1):
        for name, fn in (("streamref", redis_run), ("tenantd", tenantd_run)):
            tag = f"l{rnd}{name[0]}{secrets.token_hex(3)}"
            r = fn(ctx, rate, 1 << 40, 2.0, a.duration, tag)
            r["eps"] = r["window_sent"] / r["window_s"]
            r["ips"] = r["window_infos"] / r["window_s"]
            r["busy"] = r["cpu"][r["server_pid"]] / r["elapsed"]
            extra = ""
            if name == "tenantd":
                extra = f", {fmt_k(r['ips'])} EventInfo/s"
                extra += (f"; {r['repeats']:,} notifications showed an event "
                          "already shown")
                if r["catchup_s"] > 0.5:
                    extra += f"; it needed {r['catchup_s']:.1f} s more to catch up"
            print(f"   round {rnd} {name:9s} p50 {ms(r['p50_us'])} ms, p90 "
                  f"{ms(r['p90_us'])}, p99 {ms(r['p99_us'])}, p99.9 "
                  f"{ms(r['p999_us'])}, max {ms(r['max_us'])} ({r['lat_n']:,} "
                  f"samples); sent {fmt_k(r['eps'])} events/s{extra}; "
                  f"{r['late']:,} sends late >2 ms; {r['busy'] * 100:.0f}% of core "
                  f"{B.SERVER_CPU}", flush=True)
            res[name].append(r)
    med = {k: {p: B.median([r[p] for r in v]) for p in
               ("p50_us", "p90_us", "p99_us", "p999_us")} for k, v in res.items()}
    for k in res:
        m = med[k]
        print(f"   {k:9s} medians: p50 {ms(m['p50_us'])} ms, p90 {ms(m['p90_us'])}, "
              f"p99 {ms(m['p99_us'])}, p99.9 {ms(m['p999_us'])}", flush=True)
    rate_ok = all(r["eps"] >= 0.95 * rate for v in res.values() for r in v)
    ips = B.median([r["ips"] for r in res["tenantd"]])
    ok = med["tenantd"]["p99_us"] / 1000 <= LATENCY_GOAL_MS and rate_ok
    print(f"   tenantd p99 {ms(med['tenantd']['p99_us'])} ms at {fmt_k(ips)} "
          f"EventInfo/s (goal <= {LATENCY_GOAL_MS:.0f} ms)"
          + ("" if rate_ok else "; the producer did not reach 95% of the rate")
          + f": {'met' if ok else 'MISSED'}", flush=True)
    B.result_line(f"stats p99 XADD->EventInfo at {rate:,} ev/s (ms)", "ms",
                  ms(med["tenantd"]["p99_us"]), ms(med["streamref"]["p99_us"]),
                  "-", f"<= {LATENCY_GOAL_MS:.0f} ms", ok)


# ------------------------------------------------------------ main

class Ctx:
    pass


def run(args):
    B.pin_self(B.LOADGEN_CPU)
    print(f"== 5. stats worker (issue 5): 5a memory per statistic, 5b events/s with "
          f"{args.agents:,} agents and {args.stats:,} statistics beside a plain "
          f"stream reader, 5c latency at {args.rate:,} events/s", flush=True)
    print(B.busy_note(), flush=True)
    tmp = B.tempdir("tenantd-bench-st-")
    exe = build(tmp)
    token = "tk-" + secrets.token_hex(20)
    token_file = os.path.join(tmp, "admin.token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)
    pg = B.PgServer()
    redis = B.RedisServer()
    t = StatsTenantd(args.binary, pg.conninfo, redis.port, token_file,
                     args.sessions)
    hb = Heartbeat(redis.port, B.TENANT_ID)
    nobj, took, res = import_tenant(t.api_port, token, args.agents)
    print(f"   POST /v1/import of {nobj:,} objects: {took:.1f} s ({res})", flush=True)
    t.pin_check()
    ctx = Ctx()
    ctx.args, ctx.t, ctx.token, ctx.exe, ctx.redis, ctx.hb = args, t, token, exe, redis, hb
    ctx.st_pid = t.pid("stats")
    ctx.stream = f"tenantd:{{{B.TENANT_ID}}}:voice:events"
    ctx.xadded = 0
    ctx.reqs = stat_requests(args.agents, args.stats)
    # The worker must know the objects before statistics open on them.
    probe = open_sessions(t.st_port, token, 1)[0]

    def known():
        probe.sendall(json.dumps({"request": "RequestOpenStatistic", "ref": 5,
                                  "object": {"type": "Agent",
                                             "id": f"E{args.agents - 1}"},
                                  "statistic": "CurrentAgentState",
                                  "notify": {"mode": "none"}}).encode() + b"\n")
        lines, _ = recv_lines(probe, b"", 1, lambda ln: b'"ref"' in ln)
        m = json.loads(lines[0])
        return m.get("event") == "EventStatisticOpened" and m.get("valid") is True
    B.wait_for(known, 60, interval=0.5, what="the stats worker to know every agent "
               "and see the voice link")
    probe.close()
    xadd_logins(ctx)
    B.wait_for(lambda: st_metric(ctx, "tenantd_stats_voice_events_total") >= ctx.xadded,
               60, interval=0.2, what="the stats worker to read the logins")
    print(f"   core {B.SERVER_CPU}: tenantd (master {t.master_pid}, stats worker "
          f"{ctx.st_pid}, config and metrics workers, all pinned) and "
          f"streamref in its rounds; core {B.LOADGEN_CPU}: stload (producer and "
          f"reader of every session), this script, the voice side's redis-server "
          f"(pid {redis.proc.pid}) and PostgreSQL 15", flush=True)
    bench_memory(ctx)
    stages = (("throughput", bench_throughput),
              ("latency", lambda c: bench_latency(c, args.rate)))
    for name, stage in stages:
        if args.only is None or name in args.only.split(","):
            print(flush=True)
            stage(ctx)
    close_all(ctx.socks)
    refused = st_metric(ctx, "tenantd_stats_refused_total")
    if refused:
        print(f"   the stats worker refused {refused:.0f} statistics", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5,
                    help="seconds measured in each run (after 2 s of warm-up)")
    ap.add_argument("--rate", type=int, default=8000, help="events/s in 5c")
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--stats", type=int, default=50000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--window", type=int, default=20000,
                    help="5b: events written and not yet taken by the reader")
    ap.add_argument("--only", metavar="STAGES",
                    help="comma-separated: throughput, latency (memory always)")
    ap.add_argument("--time-limit", type=int, default=360)
    args = ap.parse_args()
    return B.main_wrapper(lambda: run(args), time_limit=args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
