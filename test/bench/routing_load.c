/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routing_load - the C parts of test/bench/routing_bench.py, built there
 * with cc at start (-lhiredis).  Three programs in one:
 *
 *   routing_load drive k=v ...	the client of tenantd's routing port(s):
 *	keep-alive HTTP connections for POST /v1/interactions, .../accept,
 *	.../complete and DELETE, one GET /v1/events (NDJSON) per instance
 *	whose `reserved` events say what to accept; in the paced mode also
 *	the voice side's EventAgentReady / EventAgentNotReady (MULTI, HSET of
 *	voice:state, XADD to voice:events, EXEC) on a Redis connection.
 *	mode=saturate: closed loop, agents+waiting interactions queued, each
 *	reservation accepted then completed, and a new one queued for each
 *	completed; mode=check: the same over every port until routings=N;
 *	mode=paced: the agents are NotReady, `waiting` interactions wait, and
 *	rate=R agents a second go Ready: from the XADD of that event to the
 *	`reserved` event read from the feed.
 *   routing_load ref k=v ...	the reference: a plain hiredis client
 *	running, per routing, the worker's own four scripts (EVALSHA of the
 *	SHAs given: queue, reserve, accept, end "completed") over `agents`
 *	agent keys, with `waiting` interactions always waiting, `depth`
 *	routings in flight, pipelined in lock step.
 *   routing_load pathref k=v ...	the reference of the latency (below).
 *   routing_load check k=v ...	follows the routing event stream in Redis
 *	(XREAD) from `start` until its stdin closes and it has read up to the
 *	stream's last entry then, and checks that no agent was ever reserved
 *	for two interactions at once.
 *
 * Results are key=value lines on stdout; errors go to stderr, exit 1.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <hiredis/hiredis.h>

#define ID_MAX		48
#define MAX_INST	4
#define FEED_BUF	(1 << 22)
#define HBUF		(1 << 16)

static int	 g_argc;
static char	**g_argv;

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fprintf(stderr, "routing_load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void	*p = calloc(1, n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* arg - the value of name=... among the arguments, or dflt */
static const char *
arg(const char *name, const char *dflt)
{
	size_t	n = strlen(name);
	int	i;

	for (i = 2; i < g_argc; i++)
		if (strncmp(g_argv[i], name, n) == 0 && g_argv[i][n] == '=')
			return g_argv[i] + n + 1;
	if (dflt == NULL)
		die("missing %s=", name);
	return dflt;
}

static long long
iarg(const char *name, const char *dflt)
{
	return strtoll(arg(name, dflt), NULL, 10);
}

static double
darg(const char *name, const char *dflt)
{
	return strtod(arg(name, dflt), NULL);
}

/* wall clock, as Redis's stream ids and TIME have it */
static uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* ---- samples ---- */

struct samples {
	uint64_t	*v;
	size_t		 n, cap;
};

static void
sample(struct samples *s, uint64_t x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (s->v == NULL)
			die("out of memory");
	}
	s->v[s->n++] = x;
}

/* pct - nearest-rank percentile p (0..100) */
static uint64_t
pct(struct samples *s, double p)
{
	size_t	k;

	if (s->n == 0)
		return 0;
	k = (size_t)((p * (double)s->n + 99.999999) / 100.0);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

static void
print_samples(const char *name, struct samples *s)
{
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	printf("%s_n=%zu\n%s_p50=%" PRIu64 "\n%s_p90=%" PRIu64 "\n%s_p99=%"
	    PRIu64 "\n%s_max=%" PRIu64 "\n", name, s->n, name, pct(s, 50), name,
	    pct(s, 90), name, pct(s, 99), name, s->n ? s->v[s->n - 1] : 0);
}

/* ---- a stream position "ms-seq" ---- */

struct pos {
	uint64_t	ms, seq;
};

static int
pos_parse(const char *s, struct pos *p)
{
	char	*end;

	p->ms = strtoull(s, &end, 10);
	p->seq = 0;
	if (*end == '-')
		p->seq = strtoull(end + 1, &end, 10);
	return 0;
}

static int
pos_cmp(const struct pos *a, const struct pos *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/*
 * jfield - the value of "key": in an event's text (strings without
 * escapes, or numbers), looked for before ,"interaction": only, so that
 * the document's own fields are not taken for the event's
 */
static int
jfield(const char *s, size_t n, const char *key, char *out, size_t len)
{
	char		 pat[40];
	const char	*p, *end, *cut;
	size_t		 k;

	cut = memmem(s, n, ",\"interaction\":", 15);
	if (cut != NULL)
		n = (size_t)(cut - s);
	k = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = memmem(s, n, pat, k)) == NULL)
		return -1;
	p += k;
	end = s + n;
	if (p < end && *p == '"') {
		p++;
		for (k = 0; p + k < end && p[k] != '"'; k++)
			;
	} else
		for (k = 0; p + k < end && (isdigit((unsigned char)p[k]) ||
		    p[k] == '-'); k++)
			;
	if (k >= len)
		return -1;
	memcpy(out, p, k);
	out[k] = '\0';
	return 0;
}

/* ================================================================ drive */

enum rkind { RQ_QUEUE, RQ_ACCEPT, RQ_COMPLETE, RQ_CANCEL, RQ_MAX };
static const char *const rk_name[RQ_MAX] = { "queue", "accept", "complete",
    "cancel" };

struct req {
	int		 kind;
	char		 id[ID_MAX];
};

struct ring {
	struct req	*v;
	size_t		 cap, head, n;
};

static void
ring_push(struct ring *r, int kind, const char *id)
{
	struct req	*nv;
	size_t		 i;

	if (r->n == r->cap) {
		nv = xmalloc((r->cap ? r->cap * 2 : 1024) * sizeof(*nv));
		for (i = 0; i < r->n; i++)
			nv[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = nv;
		r->head = 0;
		r->cap = r->cap ? r->cap * 2 : 1024;
	}
	nv = &r->v[(r->head + r->n) % r->cap];
	nv->kind = kind;
	snprintf(nv->id, sizeof(nv->id), "%s", id ? id : "");
	r->n++;
}

static int
ring_pop(struct ring *r, struct req *out)
{
	if (r->n == 0)
		return -1;
	*out = r->v[r->head];
	r->head = (r->head + 1) % r->cap;
	r->n--;
	return 0;
}

/* ---- the interactions this client made (paced mode's clean-up) ---- */

enum ixstate { IXS_FREE = 0, IXS_QUEUED, IXS_RESERVED, IXS_ACCEPTED };

struct slot {
	char		 id[ID_MAX];
	int		 state;
	int		 inst;
	struct pos	 pos;		/* its reservation event's */
	uint64_t	 read_us;	/* when that was read */
};

static struct slot	*map;
static size_t		 map_cap, map_n;

static uint64_t
fnv(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct slot *
map_get(const char *id, int create)
{
	size_t	i = fnv(id) & (map_cap - 1);

	while (map[i].state != IXS_FREE) {
		if (strcmp(map[i].id, id) == 0)
			return &map[i];
		i = (i + 1) & (map_cap - 1);
	}
	if (!create)
		return NULL;
	if (map_n * 2 >= map_cap)
		die("too many interactions in flight (%zu)", map_n);
	snprintf(map[i].id, sizeof(map[i].id), "%s", id);
	map_n++;
	return &map[i];
}

/* map_del - linear probing's backward shift */
static void
map_del(struct slot *s)
{
	size_t	i = (size_t)(s - map), j = i, k;

	map[i].state = IXS_FREE;
	map_n--;
	for (;;) {
		j = (j + 1) & (map_cap - 1);
		if (map[j].state == IXS_FREE)
			return;
		k = fnv(map[j].id) & (map_cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			map[i] = map[j];
			map[j].state = IXS_FREE;
			i = j;
		}
	}
}

/* ---- connections ---- */

struct hconn {
	int		 fd, inst, busy;
	struct req	 r;
	char		 out[4096];
	size_t		 olen, ooff;
	char		 in[HBUF];
	size_t		 ilen;
	uint64_t	 sent_us;
};

struct feed {
	int		 fd, inst;
	int		 st;		/* 0 head, 1 size, 2 data */
	size_t		 left;		/* of the chunk */
	char		*buf;
	size_t		 blen;
	char		*line;
	size_t		 llen;
};

enum fdkind { FD_HTTP = 1, FD_FEED, FD_REDIS, FD_TIMER };

struct voice_op {
	int		 agent;
	int		 ready;
};

static struct {
	const char	*mode;
	int		 ninst;
	int		 ports[MAX_INST];
	const char	*token, *vq;
	int		 conns, agents, waiting, skills;
	long		 dnbase, loginbase;
	double		 warm, secs, rate;
	long long	 routings;
	int		 ep;
	struct hconn	*hc;		/* ninst * conns */
	struct feed	 feeds[MAX_INST];
	struct ring	 q[MAX_INST];	/* accept, complete, cancel */
	struct ring	 qpost[MAX_INST]; /* new interactions: they go first */
	int		 rr;		/* next instance for a POST */
	unsigned	 seq;		/* bodies */
	/* progress */
	uint64_t	 t0;		/* start (us) */
	int		 draining;
	long long	 posted, created, done, busy_conns;
	long long	 win_routed, win_created, win_accepted;
	long long	 status_bad[RQ_MAX];
	int		 bad_shown;
	long long	 events[8];
	struct pos	 last;		/* the newest event handled */
	struct samples	 rq_us[RQ_MAX];	/* in the window */
	struct samples	 free_ms;	/* completed -> reserved, same DN */
	uint64_t	*freed_ms;	/* per agent: its completed event */
	long long	 foreign;	/* events of DNs not ours */
	long long	 reopened, resent;	/* idle connections closed */
	long long	 reserved_events;	/* of our agents, handled */
	/* paced */
	int		 rfd;
	redisReader	*rd;
	char		*rout;
	size_t		 rolen, rocap, rooff;
	struct voice_op	*vops;
	size_t		 vops_n, vops_cap, vops_head;
	int		 vreplies;	/* of the op at the head */
	long long	 voice_sent, voice_acked;
	uint64_t	*ready_us;	/* per agent: the XADD written */
	uint64_t	*ready_ms;	/* its stream id's ms */
	uint64_t	*resv_us;	/* the reserved event read */
	uint64_t	*resv_ms;	/* its position's ms */
	int		*in_win;
	int		 next_agent;
	long long	 readies, reserved_seen;
	const char	*k_state, *k_events;
} D;

static const char *const ev_names[] = { "queued", "reserved", "accepted",
    "completed", "rejected", "timed-out", "cancelled", NULL };

static int
tcp_connect(int port)
{
	struct sockaddr_in	 sa;
	int			 fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("connect to port %d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void
ep_add(int fd, int kind, int idx, uint32_t events)
{
	struct epoll_event	e;

	e.events = events;
	e.data.u64 = ((uint64_t)kind << 32) | (uint32_t)idx;
	if (epoll_ctl(D.ep, EPOLL_CTL_ADD, fd, &e) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

static void
ep_mod(int fd, int kind, int idx, uint32_t events)
{
	struct epoll_event	e;

	e.events = events;
	e.data.u64 = ((uint64_t)kind << 32) | (uint32_t)idx;
	epoll_ctl(D.ep, EPOLL_CTL_MOD, fd, &e);
}

/* write_all - what the socket takes now; the rest waits for EPOLLOUT */
static int
flush_out(int fd, const char *buf, size_t len, size_t *off)
{
	ssize_t	n;

	while (*off < len) {
		n = write(fd, buf + *off, len - *off);
		if (n > 0)
			*off += (size_t)n;
		else if (n == -1 && errno == EAGAIN)
			return 1;
		else if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			return -1;
		else
			die("write: %s", n == 0 ? "closed" : strerror(errno));
	}
	return 0;
}

static void	h_closed(struct hconn *);

/* body - a new interaction: a skill expression most agents fit */
static int
body(char *out, size_t len)
{
	unsigned	s = D.seq++;
	unsigned	h = (s * 2654435761u) >> 7;

	return snprintf(out, len, "{\"virtualQueue\":\"%s\",\"target\":"
	    "\"S%u >= %u\"%s}", D.vq, h % (unsigned)D.skills, 1 + (h >> 8) % 3,
	    s % 4 == 3 ? ",\"strategy\":\"MostSkilled\"" : "");
}

static void
h_send(struct hconn *c)
{
	char		 b[512];
	int		 n = 0;

	switch (c->r.kind) {
	case RQ_QUEUE:
		n = body(b, sizeof(b));
		c->olen = (size_t)snprintf(c->out, sizeof(c->out),
		    "POST /v1/interactions HTTP/1.1\r\nHost: bench\r\n"
		    "Authorization: Bearer %s\r\nContent-Type: application/json"
		    "\r\nContent-Length: %d\r\n\r\n%s", D.token, n, b);
		break;
	case RQ_ACCEPT:
	case RQ_COMPLETE:
		c->olen = (size_t)snprintf(c->out, sizeof(c->out),
		    "POST /v1/interactions/%s/%s HTTP/1.1\r\nHost: bench\r\n"
		    "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n",
		    c->r.id, c->r.kind == RQ_ACCEPT ? "accept" : "complete",
		    D.token);
		break;
	case RQ_CANCEL:
		c->olen = (size_t)snprintf(c->out, sizeof(c->out),
		    "DELETE /v1/interactions/%s HTTP/1.1\r\nHost: bench\r\n"
		    "Authorization: Bearer %s\r\n\r\n", c->r.id, D.token);
		break;
	}
	c->ooff = 0;
	c->busy = 1;
	D.busy_conns++;
	c->sent_us = now_us();
	switch (flush_out(c->fd, c->out, c->olen, &c->ooff)) {
	case 1:
		ep_mod(c->fd, FD_HTTP, (int)(c - D.hc), EPOLLIN | EPOLLOUT);
		break;
	case -1:
		h_closed(c);
		break;
	}
}

/*
 * dispatch - idle connections take what waits for their instance.  New
 * interactions go first while fewer than `waiting` wait in tenantd (those
 * queued minus those reserved), so that the agents find them there rather
 * than in this client; else accepts and completes go first, so that no
 * reservation waits here until it runs out.
 */
static void
dispatch(void)
{
	int		 i, posts_first;
	struct ring	*a, *b;

	posts_first = D.created - D.reserved_events < D.waiting;
	for (i = 0; i < D.ninst * D.conns; i++) {
		struct hconn	*c = &D.hc[i];

		if (c->busy)
			continue;
		a = posts_first ? &D.qpost[c->inst] : &D.q[c->inst];
		b = posts_first ? &D.q[c->inst] : &D.qpost[c->inst];
		if (ring_pop(a, &c->r) == 0 || ring_pop(b, &c->r) == 0)
			h_send(c);
	}
}

static int
in_window(uint64_t t)
{
	return t >= D.t0 + (uint64_t)(D.warm * 1e6) &&
	    t < D.t0 + (uint64_t)((D.warm + D.secs) * 1e6);
}

static void
post_new(void)
{
	if (D.draining || (D.routings > 0 && D.posted >= D.routings))
		return;
	D.posted++;
	ring_push(&D.qpost[D.rr], RQ_QUEUE, NULL);
	D.rr = (D.rr + 1) % D.ninst;
}

static int
agent_of(const char *dn)
{
	long	v = strtol(dn, NULL, 10) - D.dnbase;

	return v >= 0 && v < D.agents ? (int)v : -1;
}

/* answered - a whole HTTP answer to c's request */
static void
answered(struct hconn *c, int status, const char *b, size_t blen)
{
	int		 ok, paced = strcmp(D.mode, "paced") == 0;
	uint64_t	 t = now_us();
	char		 id[ID_MAX];
	struct slot	*s;

	ok = (c->r.kind == RQ_QUEUE && status == 201) ||
	    (c->r.kind == RQ_CANCEL && status == 204) ||
	    ((c->r.kind == RQ_ACCEPT || c->r.kind == RQ_COMPLETE) &&
	    status == 200);
	c->busy = 0;
	D.busy_conns--;
	if (in_window(c->sent_us))
		sample(&D.rq_us[c->r.kind], t - c->sent_us);
	if (!paced && (s = map_get(c->r.id, 0)) != NULL &&
	    (!ok || c->r.kind == RQ_COMPLETE)) {
		if (!ok && D.bad_shown < 5)
			fprintf(stderr, "routing_load: (its reservation %" PRIu64
			    "-%" PRIu64 " was read on the feed of port %d at %"
			    PRIu64 " ms)\n", s->pos.ms, s->pos.seq,
			    D.ports[s->inst], s->read_us / 1000);
		map_del(s);
	}
	if (!ok) {
		D.status_bad[c->r.kind]++;
		if (D.bad_shown++ < 5)
			fprintf(stderr, "routing_load: %s %s on port %d at %"
			    PRIu64 " ms (sent %" PRIu64 " us before): %d %.*s\n",
			    rk_name[c->r.kind], c->r.id, D.ports[c->inst],
			    t / 1000, t - c->sent_us, status,
			    (int)(blen > 300 ? 300 : blen), b);
		if (c->r.kind == RQ_COMPLETE || c->r.kind == RQ_CANCEL)
			D.done++;	/* nothing more to do for it */
		return;
	}
	switch (c->r.kind) {
	case RQ_QUEUE:
		D.created++;
		if (in_window(t))
			D.win_created++;
		if (paced && jfield(b, blen, "id", id, sizeof(id)) == 0 &&
		    (s = map_get(id, 1))->state == IXS_FREE) {
			s->state = IXS_QUEUED;
			s->inst = c->inst;
		}
		break;
	case RQ_ACCEPT:
		if (in_window(t))
			D.win_accepted++;
		if (paced) {
			if ((s = map_get(c->r.id, 0)) != NULL)
				s->state = IXS_ACCEPTED;
		} else
			ring_push(&D.q[c->inst], RQ_COMPLETE, c->r.id);
		break;
	case RQ_COMPLETE:
	case RQ_CANCEL:
		D.done++;
		if (c->r.kind == RQ_COMPLETE && in_window(t))
			D.win_routed++;
		if (paced && (s = map_get(c->r.id, 0)) != NULL)
			map_del(s);
		if (!paced && c->r.kind == RQ_COMPLETE)
			post_new();
		break;
	}
}

/*
 * h_closed - the port closed c: it does so to a keep-alive connection idle
 * for its idle timeout (open_timeout, 10 s), so c is opened again; a
 * request it was carrying, not answered at all, is sent again.
 */
static void
h_closed(struct hconn *c)
{
	int	idx = (int)(c - D.hc);

	if (c->ilen > 0)
		die("the routing port closed a connection in the middle of an "
		    "answer");
	epoll_ctl(D.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = tcp_connect(D.ports[c->inst]);
	ep_add(c->fd, FD_HTTP, idx, EPOLLIN);
	D.reopened++;
	if (c->busy) {
		D.busy_conns--;
		D.resent++;
		h_send(c);
	}
}

static void
h_read(struct hconn *c)
{
	ssize_t		 n;
	char		*hend, *cl;
	size_t		 head, blen;
	int		 status;

	for (;;) {
		n = read(c->fd, c->in + c->ilen, sizeof(c->in) - c->ilen - 1);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			h_closed(c);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			die("read: %s", strerror(errno));
		}
		c->ilen += (size_t)n;
		if (c->ilen >= sizeof(c->in) - 1)
			die("an answer too large");
	}
	c->in[c->ilen] = '\0';
	while ((hend = strstr(c->in, "\r\n\r\n")) != NULL) {
		head = (size_t)(hend - c->in) + 4;
		status = atoi(c->in + 9);
		cl = strcasestr(c->in, "\r\nContent-Length:");
		blen = cl != NULL && cl < hend ? strtoul(cl + 17, NULL, 10) : 0;
		if (c->ilen < head + blen)
			return;
		if (!c->busy)
			die("an answer nobody asked for");
		answered(c, status, c->in + head, blen);
		memmove(c->in, c->in + head + blen, c->ilen - head - blen);
		c->ilen -= head + blen;
		c->in[c->ilen] = '\0';
	}
}

/* ---- the feeds ---- */

static void
feed_open(struct feed *f, int inst)
{
	char	req[512];
	size_t	off = 0, len;

	f->inst = inst;
	f->fd = tcp_connect(D.ports[inst]);
	f->buf = xmalloc(FEED_BUF);
	f->line = xmalloc(FEED_BUF);
	len = (size_t)snprintf(req, sizeof(req), "GET /v1/events HTTP/1.1\r\n"
	    "Host: bench\r\nAuthorization: Bearer %s\r\nAccept: "
	    "application/x-ndjson\r\n\r\n", D.token);
	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK);
	if (write(f->fd, req, len) != (ssize_t)len)
		die("feed: write");
	(void)off;
	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
	ep_add(f->fd, FD_FEED, inst, EPOLLIN);
}

static void
voice_op(int agent, int ready);

/* on_event - one event line of a feed, handled once across the feeds */
static void
on_event(struct feed *f, const char *s, size_t n)
{
	char		 ps[48], type[32], id[ID_MAX], dn[32];
	struct pos	 p;
	int		 a, i, paced = strcmp(D.mode, "paced") == 0;
	uint64_t	 t = now_us();
	struct slot	*sl;

	if (jfield(s, n, "position", ps, sizeof(ps)) == -1 ||
	    jfield(s, n, "type", type, sizeof(type)) == -1)
		return;
	pos_parse(ps, &p);
	if (pos_cmp(&p, &D.last) <= 0)
		return;		/* the other feed had it */
	D.last = p;
	for (i = 0; ev_names[i] != NULL && strcmp(ev_names[i], type); i++)
		;
	D.events[i]++;
	if (jfield(s, n, "id", id, sizeof(id)) == -1)
		return;
	a = jfield(s, n, "dn", dn, sizeof(dn)) == 0 ? agent_of(dn) : -1;
	if (strcmp(type, "completed") == 0 && a >= 0)
		D.freed_ms[a] = p.ms;
	if (strcmp(type, "reserved") != 0)
		return;
	if (a < 0) {
		D.foreign++;
		return;
	}
	D.reserved_events++;
	if (!paced) {
		if (D.freed_ms[a] > 0 && in_window(t))
			sample(&D.free_ms, p.ms - D.freed_ms[a]);
		D.freed_ms[a] = 0;
		sl = map_get(id, 1);
		sl->state = IXS_RESERVED;
		sl->inst = f->inst;
		sl->pos = p;
		sl->read_us = t;
		ring_push(&D.q[f->inst], RQ_ACCEPT, id);
		return;
	}
	if (D.ready_us[a] > 0 && D.resv_us[a] == 0) {
		D.resv_us[a] = t;
		D.resv_ms[a] = p.ms;
		D.reserved_seen++;
	}
	sl = map_get(id, 1);
	if (sl->state == IXS_FREE)
		sl->inst = f->inst;
	sl->state = IXS_RESERVED;
	ring_push(&D.q[f->inst], RQ_ACCEPT, id);
	post_new();	/* keep `waiting` waiting */
}

static void
feed_read(struct feed *f)
{
	ssize_t	 n;
	size_t	 off = 0, k;
	char	*e, *nl;

	for (;;) {
		n = read(f->fd, f->buf + f->blen, FEED_BUF - f->blen - 1);
		if (n == 0)
			die("the routing port closed the event feed");
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			die("feed read: %s", strerror(errno));
		}
		f->blen += (size_t)n;
		if (f->blen >= FEED_BUF - 1)
			break;
	}
	f->buf[f->blen] = '\0';
	for (;;) {
		if (f->st == 0) {
			if ((e = strstr(f->buf + off, "\r\n\r\n")) == NULL)
				break;
			if (strncmp(f->buf + off, "HTTP/1.1 200", 12) != 0)
				die("GET /v1/events: %.100s", f->buf + off);
			off = (size_t)(e - f->buf) + 4;
			f->st = 1;
		} else if (f->st == 1) {
			if ((e = memmem(f->buf + off, f->blen - off, "\r\n", 2))
			    == NULL)
				break;
			f->left = strtoul(f->buf + off, NULL, 16);
			if (f->left == 0)
				die("the event feed ended");
			off = (size_t)(e - f->buf) + 2;
			f->st = 2;
		} else {
			if (f->blen - off < f->left + 2)
				break;
			memcpy(f->line + f->llen, f->buf + off, f->left);
			f->llen += f->left;
			off += f->left + 2;
			f->st = 1;
			while ((nl = memchr(f->line, '\n', f->llen)) != NULL) {
				k = (size_t)(nl - f->line);
				on_event(f, f->line, k);
				memmove(f->line, nl + 1, f->llen - k - 1);
				f->llen -= k + 1;
			}
		}
	}
	memmove(f->buf, f->buf + off, f->blen - off);
	f->blen -= off;
}

/* ---- the voice side (paced mode) ---- */

static void
r_append(const char *cmd, size_t len)
{
	if (D.rolen + len > D.rocap) {
		D.rocap = (D.rolen + len) * 2;
		D.rout = realloc(D.rout, D.rocap);
		if (D.rout == NULL)
			die("out of memory");
	}
	memcpy(D.rout + D.rolen, cmd, len);
	D.rolen += len;
}

static void
r_flush(void)
{
	if (flush_out(D.rfd, D.rout, D.rolen, &D.rooff))
		ep_mod(D.rfd, FD_REDIS, 0, EPOLLIN | EPOLLOUT);
	else {
		D.rolen = D.rooff = 0;
		ep_mod(D.rfd, FD_REDIS, 0, EPOLLIN);
	}
}

static void
r_cmd(int argc, const char **argv)
{
	char	*cmd;
	int	 len = redisFormatCommandArgv(&cmd, argc, argv, NULL);

	if (len < 0)
		die("redisFormatCommandArgv");
	r_append(cmd, (size_t)len);
	redisFreeCommand(cmd);
}

/* voice_op - the agent goes Ready (or NotReady) as the voice side says it */
static void
voice_op(int agent, int ready)
{
	char		 dn[24], login[24], ev[512], st[512];
	uint64_t	 t = now_us();
	const char	*hset[] = { "HSET", D.k_state, dn, st };
	const char	*xadd[] = { "XADD", D.k_events, "MAXLEN", "~", "1000000",
			    "*", "event", ev };
	const char	*multi[] = { "MULTI" }, *exec[] = { "EXEC" };

	snprintf(dn, sizeof(dn), "%ld", D.dnbase + agent);
	snprintf(login, sizeof(login), "%ld", D.loginbase + agent);
	snprintf(ev, sizeof(ev), "{\"event\":\"EventAgent%s\",\"eventId\":"
	    "\"bench-%s-%" PRIu64 "\",\"region\":\"local\",\"time\":%" PRIu64
	    ",\"thisDN\":\"%s\",\"agentId\":\"%s\",\"workMode\":\"ManualIn\"}",
	    ready ? "Ready" : "NotReady", dn, t, t / 1000, dn, login);
	snprintf(st, sizeof(st), "{\"dn\":\"%s\",\"agent\":{\"agentId\":\"%s\","
	    "\"state\":\"%s\",\"workMode\":\"ManualIn\",\"reason\":null,"
	    "\"since\":%" PRIu64 "},\"calls\":[]}", dn, login,
	    ready ? "Ready" : "NotReady", t / 1000);
	r_cmd(1, multi);
	r_cmd(4, hset);
	r_cmd(8, xadd);
	r_cmd(1, exec);
	if (D.vops_n == D.vops_cap) {
		struct voice_op	*nv;
		size_t		 i;

		nv = xmalloc((D.vops_cap ? D.vops_cap * 2 : 1024) *
		    sizeof(*nv));
		for (i = 0; i < D.vops_n; i++)
			nv[i] = D.vops[(D.vops_head + i) % D.vops_cap];
		free(D.vops);
		D.vops = nv;
		D.vops_head = 0;
		D.vops_cap = D.vops_cap ? D.vops_cap * 2 : 1024;
	}
	D.vops[(D.vops_head + D.vops_n) % D.vops_cap] =
	    (struct voice_op){ agent, ready };
	D.vops_n++;
	D.voice_sent++;
	if (ready)
		D.ready_us[agent] = now_us();
	r_flush();
}

static void
r_read(void)
{
	char		 buf[65536];
	ssize_t		 n;
	redisReply	*rep;
	void		*vr;
	struct voice_op	*op;
	struct pos	 p;

	for (;;) {
		n = read(D.rfd, buf, sizeof(buf));
		if (n == 0)
			die("redis closed the connection");
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			die("redis read: %s", strerror(errno));
		}
		redisReaderFeed(D.rd, buf, (size_t)n);
	}
	while (redisReaderGetReply(D.rd, &vr) == REDIS_OK && vr != NULL) {
		rep = vr;
		if (rep->type == REDIS_REPLY_ERROR)
			die("redis: %s", rep->str);
		if (++D.vreplies == 4) {
			D.vreplies = 0;
			if (D.vops_n == 0)
				die("a voice reply nobody asked for");
			op = &D.vops[D.vops_head];
			D.vops_head = (D.vops_head + 1) % D.vops_cap;
			D.vops_n--;
			D.voice_acked++;
			if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
			    rep->element[1]->type != REDIS_REPLY_STRING)
				die("EXEC answered something else");
			if (op->ready) {
				pos_parse(rep->element[1]->str, &p);
				D.ready_ms[op->agent] = p.ms;
			}
		}
		freeReplyObject(rep);
	}
}

/* ---- the loop ---- */

static int
idle(void)
{
	int	i;

	for (i = 0; i < D.ninst; i++)
		if (D.q[i].n > 0 || D.qpost[i].n > 0)
			return 0;
	return D.busy_conns == 0;
}

/* turn - one wait for events, at most ms; then what is to send */
static void
turn(int ms)
{
	struct epoll_event	 ev[256];
	int			 n, i, kind, idx;
	uint64_t		 x;

	n = epoll_wait(D.ep, ev, 256, ms);
	for (i = 0; i < n; i++) {
		kind = (int)(ev[i].data.u64 >> 32);
		idx = (int)(uint32_t)ev[i].data.u64;
		if (kind == FD_HTTP) {
			struct hconn	*c = &D.hc[idx];

			if ((ev[i].events & EPOLLOUT) && c->busy) {
				int	rc = flush_out(c->fd, c->out, c->olen,
					    &c->ooff);

				if (rc == 0)
					ep_mod(c->fd, FD_HTTP, idx, EPOLLIN);
				else if (rc == -1) {
					h_closed(c);
					continue;
				}
			}
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				h_read(c);
		} else if (kind == FD_FEED)
			feed_read(&D.feeds[idx]);
		else if (kind == FD_REDIS) {
			if (ev[i].events & EPOLLOUT)
				r_flush();
			if (ev[i].events & EPOLLIN)
				r_read();
		} else if (kind == FD_TIMER) {
			if (read(idx, &x, sizeof(x)) < 0 && errno != EAGAIN)
				die("timerfd");
		}
	}
	dispatch();
}

/* run_until - turns until done() or the deadline (s from now): 0, -1 */
static int
run_until(int (*done)(void), double secs)
{
	uint64_t	end = now_us() + (uint64_t)(secs * 1e6);

	while (!done()) {
		if (now_us() >= end)
			return -1;
		turn(5);
	}
	return 0;
}

static int
all_created(void)
{
	return D.created + D.status_bad[RQ_QUEUE] >= D.posted && idle();
}

static int
drained(void)
{
	return D.done >= D.created && idle();
}

static void
print_common(void)
{
	int	i;

	printf("posted=%lld\ncreated=%lld\ndone=%lld\n", D.posted, D.created,
	    D.done);
	for (i = 0; i < RQ_MAX; i++) {
		printf("bad_%s=%lld\n", rk_name[i], D.status_bad[i]);
		if (D.rq_us[i].n > 0) {
			char	name[32];

			snprintf(name, sizeof(name), "%s_us", rk_name[i]);
			print_samples(name, &D.rq_us[i]);
		}
	}
	for (i = 0; ev_names[i] != NULL; i++)
		printf("ev_%s=%lld\n", ev_names[i], D.events[i]);
	printf("ev_other=%lld\nforeign=%lld\nreopened=%lld\nresent=%lld\n",
	    D.events[i], D.foreign, D.reopened, D.resent);
}

static int
drive_saturate(void)
{
	long long	i, first = D.agents + D.waiting;
	uint64_t	end;

	if (D.routings > 0 && first > D.routings)
		first = D.routings;
	D.t0 = now_us();
	for (i = 0; i < first; i++)
		post_new();
	dispatch();
	if (D.routings > 0) {
		/* check: until N were queued, then drain */
		while (D.posted < D.routings || !drained()) {
			if (now_us() > D.t0 + (uint64_t)(D.secs * 1e6))
				die("check: only %lld of %lld routings in %.0f s",
				    D.done, D.routings, D.secs);
			turn(5);
		}
		printf("elapsed_s=%.3f\n", (now_us() - D.t0) / 1e6);
	} else {
		/*
		 * New interactions go first (dispatch): the window starts
		 * once the first ones are all queued, after `warm` s more.
		 */
		while (D.created + D.status_bad[RQ_QUEUE] < first) {
			if (now_us() > D.t0 + 120000000)
				die("the first %lld interactions were not queued in "
				    "120 s", first);
			turn(5);
		}
		printf("ramp_s=%.3f\n", (now_us() - D.t0) / 1e6);
		D.t0 = now_us();
		end = D.t0 + (uint64_t)((D.warm + D.secs) * 1e6);
		while (now_us() < D.t0 + (uint64_t)(D.warm * 1e6))
			turn(5);
		printf("mark=start\n");
		while (now_us() < end)
			turn(5);
		printf("mark=end\n");
		D.draining = 1;
		if (run_until(drained, 120) == -1)
			die("did not drain in 120 s: %lld created, %lld done",
			    D.created, D.done);
		printf("window_s=%.3f\nrouted=%lld\nwin_created=%lld\n"
		    "win_accepted=%lld\n", D.secs, D.win_routed, D.win_created,
		    D.win_accepted);
	}
	print_samples("free_to_reserved_ms", &D.free_ms);
	print_common();
	return 0;
}

static int
all_reserved(void)
{
	return D.reserved_seen >= D.readies && D.voice_acked >= D.voice_sent &&
	    idle();
}

static int
voice_done(void)
{
	return D.voice_acked >= D.voice_sent;
}

static int
drive_paced(void)
{
	struct itimerspec	 its = { { 0, 1000000 }, { 0, 1000000 } };
	struct samples		 client, redis_ms, feed_us, tenantd_us;
	uint64_t		 start, end, due, t;
	int			 tfd, a, marked = 0;
	long long		 lost = 0;
	size_t			 i;

	memset(&client, 0, sizeof(client));
	memset(&redis_ms, 0, sizeof(redis_ms));
	memset(&feed_us, 0, sizeof(feed_us));
	memset(&tenantd_us, 0, sizeof(tenantd_us));
	D.t0 = now_us();
	for (a = 0; a < D.waiting; a++)
		post_new();
	dispatch();
	if (run_until(all_created, 60) == -1)
		die("paced: the first %d interactions were not queued", D.waiting);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	timerfd_settime(tfd, 0, &its, NULL);
	ep_add(tfd, FD_TIMER, tfd, EPOLLIN);
	start = now_us();
	D.t0 = start;		/* the window counts from here */
	end = start + (uint64_t)((D.warm + D.secs) * 1e6);
	while ((t = now_us()) < end) {
		if (!marked && t >= start + (uint64_t)(D.warm * 1e6)) {
			printf("mark=start\n");
			marked = 1;
		}
		due = (uint64_t)((double)(t - start) * D.rate / 1e6);
		while ((uint64_t)D.readies < due && D.next_agent < D.agents) {
			a = D.next_agent++;
			D.in_win[a] = in_window(now_us());
			voice_op(a, 1);
			D.readies++;
		}
		turn(1);
	}
	printf("mark=end\n");
	close(tfd);
	D.draining = 1;
	run_until(all_reserved, 5);
	for (a = 0; a < D.next_agent; a++) {
		if (!D.in_win[a])
			continue;
		if (D.resv_us[a] == 0) {
			lost++;
			continue;
		}
		sample(&client, D.resv_us[a] - D.ready_us[a]);
		sample(&redis_ms, D.resv_ms[a] - D.ready_ms[a]);
		sample(&feed_us, D.resv_us[a] > D.resv_ms[a] * 1000 ?
		    D.resv_us[a] - D.resv_ms[a] * 1000 : 0);
		sample(&tenantd_us, D.resv_ms[a] * 1000 > D.ready_us[a] ?
		    D.resv_ms[a] * 1000 - D.ready_us[a] : 0);
	}
	printf("readies=%lld\nwindow_readies=%zu\nnot_reserved=%lld\n"
	    "rate_sent=%.1f\n", D.readies, client.n + (size_t)lost, lost,
	    (double)D.readies / (D.warm + D.secs));
	print_samples("ready_to_read_us", &client);
	print_samples("ready_to_reserved_redis_ms", &redis_ms);
	print_samples("reserved_to_read_us", &feed_us);
	print_samples("ready_to_reserved_wall_us", &tenantd_us);
	/* clean up: the agents NotReady, then nothing left */
	for (a = 0; a < D.next_agent; a++)
		voice_op(a, 0);
	if (run_until(voice_done, 30) == -1)
		die("paced: Redis did not take the NotReady events");
	run_until(idle, 30);
	t = now_us() + 1000000;	/* the worker reads them meanwhile */
	while (now_us() < t)
		turn(5);
	for (i = 0; i < map_cap; i++)
		if (map[i].state == IXS_QUEUED)
			ring_push(&D.q[map[i].inst], RQ_CANCEL, map[i].id);
		else if (map[i].state == IXS_ACCEPTED)
			ring_push(&D.q[map[i].inst], RQ_COMPLETE, map[i].id);
		else if (map[i].state == IXS_RESERVED)
			fprintf(stderr, "routing_load: %s still reserved\n",
			    map[i].id);
	dispatch();
	if (run_until(idle, 60) == -1)
		die("paced: the clean-up did not finish");
	printf("left=%zu\n", map_n);
	print_common();
	return 0;
}

static int
drive(void)
{
	const char	*ports = arg("ports", NULL), *p;
	int		 i, k;

	D.mode = arg("mode", "saturate");
	for (p = ports; *p && D.ninst < MAX_INST; p = strchr(p, ',') ?
	    strchr(p, ',') + 1 : p + strlen(p))
		D.ports[D.ninst++] = atoi(p);
	D.token = arg("token", NULL);
	D.vq = arg("vq", "8001");
	D.conns = (int)iarg("conns", "16");
	D.agents = (int)iarg("agents", "10000");
	D.waiting = (int)iarg("waiting", "1000");
	D.skills = (int)iarg("skills", "8");
	D.dnbase = (long)iarg("dnbase", "100000");
	D.loginbase = (long)iarg("loginbase", "200000");
	D.warm = darg("warm", "3");
	D.secs = darg("secs", "10");
	D.rate = darg("rate", "500");
	D.routings = iarg("routings", "0");
	D.seq = (unsigned)iarg("seed", "1");
	D.freed_ms = xmalloc((size_t)D.agents * sizeof(uint64_t));
	map_cap = 1 << 17;
	map = xmalloc(map_cap * sizeof(*map));
	if ((D.ep = epoll_create1(0)) == -1)
		die("epoll_create1");
	D.hc = xmalloc((size_t)(D.ninst * D.conns) * sizeof(*D.hc));
	for (i = 0; i < D.ninst; i++) {
		for (k = 0; k < D.conns; k++) {
			struct hconn	*c = &D.hc[i * D.conns + k];

			c->inst = i;
			c->fd = tcp_connect(D.ports[i]);
			ep_add(c->fd, FD_HTTP, i * D.conns + k, EPOLLIN);
		}
		feed_open(&D.feeds[i], i);
	}
	/* the feeds answer their heads before anything is queued */
	for (i = 0; i < D.ninst; i++)
		while (D.feeds[i].st == 0)
			turn(5);
	if (strcmp(D.mode, "paced") == 0) {
		D.rfd = tcp_connect((int)iarg("redis", NULL));
		ep_add(D.rfd, FD_REDIS, 0, EPOLLIN);
		D.rd = redisReaderCreate();
		D.k_state = arg("kstate", NULL);
		D.k_events = arg("kevents", NULL);
		D.ready_us = xmalloc((size_t)D.agents * sizeof(uint64_t));
		D.ready_ms = xmalloc((size_t)D.agents * sizeof(uint64_t));
		D.resv_us = xmalloc((size_t)D.agents * sizeof(uint64_t));
		D.resv_ms = xmalloc((size_t)D.agents * sizeof(uint64_t));
		D.in_win = xmalloc((size_t)D.agents * sizeof(int));
		return drive_paced();
	}
	return drive_saturate();
}

/* ================================================================ ref */

/*
 * The reference: per routing the four scripts tenantd runs for a task
 * routed from the queue, with tenantd's arguments (store.c): queue (no
 * agent free), reserve (person, dn, ttl), accept (no person, hold 8 h,
 * day), end (completed, from accepted).  Lock step: each turn appends
 * the next command of every routing in flight, then reads every reply.
 */
enum rstep { RS_RESERVE, RS_ACCEPT, RS_END, RS_QUEUE };

struct chain {
	int		 step;
	uint64_t	 ix;
	int		 agent;
};

static struct {
	const char	*P, *A, *doc, *sha[4], *vq, *day, *tag;
	char		 ttl[24];
	long		 dnbase, personbase;
	uint64_t	*waitq;		/* a ring of interaction numbers */
	size_t		 wcap, whead, wn;
	int		*freeq;
	size_t		 fcap, fhead, fn;
	uint64_t	 next_ix;
} R;

static void
ref_id(uint64_t ix, char *out)
{
	snprintf(out, ID_MAX, "%8.8s-%04x-4%03x-8%03x-%012" PRIx64, R.tag,
	    (unsigned)((ix >> 48) & 0xffff), (unsigned)((ix >> 36) & 0xfff),
	    (unsigned)((ix >> 24) & 0xfff), (uint64_t)(ix & 0xffffffffffffULL));
}

static char *
ref_doc(const char *id)
{
	const char	*at = strstr(R.doc, "@ID@");
	size_t		 n = strlen(R.doc) + strlen(id);
	char		*d = xmalloc(n);

	if (at == NULL)
		die("the document has no @ID@");
	snprintf(d, n, "%.*s%s%s", (int)(at - R.doc), R.doc, id, at + 4);
	return d;
}

static void
ref_append(redisContext *c, struct chain *ch)
{
	char		 id[ID_MAX], dn[24], person[24];
	char		*doc = NULL;
	const char	*a[16];
	int		 n = 0;

	ref_id(ch->ix, id);
	snprintf(dn, sizeof(dn), "%ld", R.dnbase + ch->agent);
	snprintf(person, sizeof(person), "%ld", R.personbase + ch->agent);
	a[n++] = "EVALSHA";
	a[n++] = R.sha[ch->step];
	a[n++] = "0";
	a[n++] = R.P;
	a[n++] = R.A;
	a[n++] = id;
	switch (ch->step) {
	case RS_QUEUE:
		doc = ref_doc(id);
		a[n++] = doc;
		a[n++] = R.vq;
		a[n++] = "";
		a[n++] = "";
		a[n++] = R.ttl;
		break;
	case RS_RESERVE:
		a[n++] = person;
		a[n++] = dn;
		a[n++] = R.ttl;
		break;
	case RS_ACCEPT:
		a[n++] = "";
		a[n++] = "28800000";
		a[n++] = R.day;
		break;
	case RS_END:
		a[n++] = "completed";
		a[n++] = ",accepted,";
		a[n++] = "";
		a[n++] = "completed";
		break;
	}
	if (redisAppendCommandArgv(c, n, a, NULL) != REDIS_OK)
		die("redisAppendCommandArgv: %s", c->errstr);
	free(doc);
}

static void
ref_queue_new(redisContext *c, struct chain *ch)
{
	ch->ix = R.next_ix++;
	ch->step = RS_QUEUE;
}

static int
ref(void)
{
	redisContext	*c;
	redisReply	*rep;
	struct chain	*ch;
	int		 depth, agents, waiting, i, k;
	double		 warm, secs;
	uint64_t	 t0, wstart, wend, t;
	long long	 routed = 0, bad = 0, all = 0, win_all = 0;
	int		 marked = 0;
	const char	*want[4] = { "reserved", "accepted", "completed",
			    "queued" };

	R.P = arg("prefix", NULL);
	R.A = arg("agentprefix", NULL);
	R.doc = arg("doc", NULL);
	R.sha[RS_QUEUE] = arg("sha_queue", NULL);
	R.sha[RS_RESERVE] = arg("sha_reserve", NULL);
	R.sha[RS_ACCEPT] = arg("sha_accept", NULL);
	R.sha[RS_END] = arg("sha_end", NULL);
	R.vq = arg("vq", NULL);
	R.day = arg("day", NULL);
	R.tag = arg("tag", "0000beef");
	snprintf(R.ttl, sizeof(R.ttl), "%s", arg("ttl", "30000"));
	R.dnbase = (long)iarg("dnbase", "100000");
	R.personbase = (long)iarg("personbase", "100");
	agents = (int)iarg("agents", "10000");
	waiting = (int)iarg("waiting", "1000");
	depth = (int)iarg("depth", "64");
	warm = darg("warm", "1");
	secs = darg("secs", "5");
	if (depth > agents || depth > waiting)
		die("depth must be at most agents and waiting");
	c = redisConnect("127.0.0.1", (int)iarg("redis", NULL));
	if (c == NULL || c->err)
		die("redis: %s", c ? c->errstr : "?");
	R.wcap = (size_t)waiting + (size_t)depth + 1;
	R.waitq = xmalloc(R.wcap * sizeof(uint64_t));
	R.fcap = (size_t)agents;
	R.freeq = xmalloc(R.fcap * sizeof(int));
	for (i = 0; i < agents; i++)
		R.freeq[R.fn++] = i;
	R.next_ix = 1;
	/* the waiting ones: queued, pipelined */
	ch = xmalloc((size_t)depth * sizeof(*ch));
	for (i = 0; i < waiting; i++) {
		struct chain	q = { RS_QUEUE, R.next_ix++, 0 };

		ref_append(c, &q);
		R.waitq[(R.whead + R.wn++) % R.wcap] = q.ix;
	}
	for (i = 0; i < waiting; i++) {
		if (redisGetReply(c, (void **)&rep) != REDIS_OK)
			die("redis: %s", c->errstr);
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
		    rep->element[0]->integer != 1)
			die("the queue script refused: %s", rep->type ==
			    REDIS_REPLY_ERROR ? rep->str : "?");
		freeReplyObject(rep);
	}
	for (k = 0; k < depth; k++)
		ch[k].step = -1;	/* takes the next waiting one */
	t0 = now_us();
	wstart = t0 + (uint64_t)(warm * 1e6);
	wend = wstart + (uint64_t)(secs * 1e6);
	for (;;) {
		t = now_us();
		if (t >= wend)
			break;
		if (t >= wstart && !marked) {
			printf("mark=start\n");
			marked = 1;
		}
		for (k = 0; k < depth; k++) {
			if (ch[k].step == -1) {
				/* the oldest waiting one, the first free agent */
				ch[k].ix = R.waitq[R.whead];
				R.whead = (R.whead + 1) % R.wcap;
				R.wn--;
				ch[k].agent = R.freeq[R.fhead];
				R.fhead = (R.fhead + 1) % R.fcap;
				R.fn--;
				ch[k].step = RS_RESERVE;
			}
			ref_append(c, &ch[k]);
		}
		for (k = 0; k < depth; k++) {
			if (redisGetReply(c, (void **)&rep) != REDIS_OK)
				die("redis: %s", c->errstr);
			all++;
			if (t >= wstart)
				win_all++;
			if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
			    rep->element[0]->integer != 1 ||
			    strcmp(rep->element[1]->str, want[ch[k].step]) != 0) {
				if (bad++ < 5)
					fprintf(stderr, "routing_load: ref step %d: "
					    "%s\n", ch[k].step, rep->type ==
					    REDIS_REPLY_ERROR ? rep->str :
					    rep->type == REDIS_REPLY_ARRAY &&
					    rep->elements > 1 ?
					    rep->element[1]->str : "?");
			}
			freeReplyObject(rep);
			switch (ch[k].step) {
			case RS_RESERVE:
				ch[k].step = RS_ACCEPT;
				break;
			case RS_ACCEPT:
				ch[k].step = RS_END;
				break;
			case RS_END:
				if (t >= wstart)
					routed++;
				R.freeq[(R.fhead + R.fn++) % R.fcap] =
				    ch[k].agent;
				ref_queue_new(c, &ch[k]);
				break;
			case RS_QUEUE:
				R.waitq[(R.whead + R.wn++) % R.wcap] = ch[k].ix;
				ch[k].step = -1;
				break;
			}
		}
	}
	printf("mark=end\n");
	printf("routed=%lld\nwindow_s=%.3f\nscripts=%lld\nwin_scripts=%lld\n"
	    "bad=%lld\n", routed, (now_us() - wstart) / 1e6, all, win_all, bad);
	redisFree(c);
	return bad ? 1 : 0;
}

/*
 * pathref - the reference of the latency: the Redis work on the path from
 * an agent's EventAgentReady to its reservation event being read, done
 * back to back by a plain client, at `rate` a second: XADD of the event
 * (connection 1); XREAD of it (connection 2, as the worker's voice
 * reader); EVALSHA of the reserve script for one waiting interaction
 * (connection 3, as the worker's command connection); XREAD of the
 * reservation event (connection 4, as the worker's stream follower, which
 * feeds GET /v1/events).  No blocking read waits: each read finds its
 * entry there.
 */
static redisReply *
cmd_ok(redisContext *c, int n, const char **a)
{
	redisReply	*rep = redisCommandArgv(c, n, a, NULL);

	if (rep == NULL)
		die("redis: %s", c->errstr);
	if (rep->type == REDIS_REPLY_ERROR)
		die("redis: %s", rep->str);
	return rep;
}

static int
pathref(void)
{
	redisContext	*c[4];
	redisReply	*rep;
	struct samples	 s;
	const char	*kv = arg("kevents", NULL), *kr;
	char		 vlast[64], rlast[64], id[ID_MAX], dn[24], person[24];
	char		 ev[512], *doc;
	double		 rate = darg("rate", "500"), secs = darg("secs", "5");
	double		 warm = darg("warm", "1");
	int		 agents, n, i, k;
	uint64_t	 start, t0, t1, due, sent = 0;
	const char	*a[16];
	char		 krbuf[256];

	R.P = arg("prefix", NULL);
	R.A = arg("agentprefix", NULL);
	R.doc = arg("doc", NULL);
	R.vq = arg("vq", NULL);
	R.tag = arg("tag", "0000beef");
	R.dnbase = (long)iarg("dnbase", "100000");
	R.personbase = (long)iarg("personbase", "100");
	agents = (int)iarg("agents", "10000");
	snprintf(krbuf, sizeof(krbuf), "%sevents", R.P);
	kr = krbuf;
	memset(&s, 0, sizeof(s));
	for (k = 0; k < 4; k++) {
		c[k] = redisConnect("127.0.0.1", (int)iarg("redis", NULL));
		if (c[k] == NULL || c[k]->err)
			die("redis: %s", c[k] ? c[k]->errstr : "?");
	}
	n = (int)(rate * (warm + secs)) + 1;
	if (n > agents)
		die("pathref: rate * (warm + secs) is over the agents");
	/* the interactions to reserve, queued first */
	for (i = 0; i < n; i++) {
		ref_id((uint64_t)i + 1, id);
		doc = ref_doc(id);
		a[0] = "EVALSHA"; a[1] = arg("sha_queue", NULL); a[2] = "0";
		a[3] = R.P; a[4] = R.A; a[5] = id; a[6] = doc; a[7] = R.vq;
		a[8] = ""; a[9] = ""; a[10] = "1000";
		freeReplyObject(cmd_ok(c[2], 11, a));
		free(doc);
	}
	snprintf(vlast, sizeof(vlast), "$");
	rep = cmd_ok(c[1], 3, (const char *[]){ "XINFO", "STREAM", kv });
	for (i = 0; i + 1 < (int)rep->elements; i += 2)
		if (strcmp(rep->element[i]->str, "last-generated-id") == 0)
			snprintf(vlast, sizeof(vlast), "%s",
			    rep->element[i + 1]->str);
	freeReplyObject(rep);
	rep = cmd_ok(c[3], 3, (const char *[]){ "XINFO", "STREAM", kr });
	for (i = 0; i + 1 < (int)rep->elements; i += 2)
		if (strcmp(rep->element[i]->str, "last-generated-id") == 0)
			snprintf(rlast, sizeof(rlast), "%s",
			    rep->element[i + 1]->str);
	freeReplyObject(rep);
	start = now_us();
	for (i = 0; i < n; i++) {
		due = start + (uint64_t)((double)i * 1e6 / rate);
		while ((t0 = now_us()) < due)
			usleep(due - t0 > 200 ? 100 : 10);
		snprintf(dn, sizeof(dn), "%ld", R.dnbase + i);
		snprintf(person, sizeof(person), "%ld", R.personbase + i);
		snprintf(ev, sizeof(ev), "{\"event\":\"EventAgentReady\","
		    "\"eventId\":\"ref-%s-%" PRIu64 "\",\"region\":\"local\","
		    "\"time\":%" PRIu64 ",\"thisDN\":\"%s\",\"agentId\":\"%s\","
		    "\"workMode\":\"ManualIn\"}", dn, t0, t0 / 1000, dn, person);
		t0 = now_us();
		a[0] = "XADD"; a[1] = kv; a[2] = "MAXLEN"; a[3] = "~";
		a[4] = "1000000"; a[5] = "*"; a[6] = "event"; a[7] = ev;
		freeReplyObject(cmd_ok(c[0], 8, a));
		a[0] = "XREAD"; a[1] = "COUNT"; a[2] = "100"; a[3] = "STREAMS";
		a[4] = kv; a[5] = vlast;
		rep = cmd_ok(c[1], 6, a);
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1)
			die("pathref: the voice event is not there");
		snprintf(vlast, sizeof(vlast), "%s", rep->element[0]->element[1]->
		    element[rep->element[0]->element[1]->elements - 1]->
		    element[0]->str);
		freeReplyObject(rep);
		ref_id((uint64_t)i + 1, id);
		a[0] = "EVALSHA"; a[1] = arg("sha_reserve", NULL); a[2] = "0";
		a[3] = R.P; a[4] = R.A; a[5] = id; a[6] = person; a[7] = dn;
		a[8] = "1000";
		rep = cmd_ok(c[2], 9, a);
		if (rep->type != REDIS_REPLY_ARRAY || rep->element[0]->integer
		    != 1)
			die("pathref: reserve refused (%s)", rep->elements > 1 ?
			    rep->element[1]->str : "?");
		freeReplyObject(rep);
		a[0] = "XREAD"; a[1] = "COUNT"; a[2] = "100"; a[3] = "STREAMS";
		a[4] = kr; a[5] = rlast;
		rep = cmd_ok(c[3], 6, a);
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1)
			die("pathref: the reservation event is not there");
		snprintf(rlast, sizeof(rlast), "%s", rep->element[0]->element[1]->
		    element[rep->element[0]->element[1]->elements - 1]->
		    element[0]->str);
		freeReplyObject(rep);
		t1 = now_us();
		if ((double)(t0 - start) >= warm * 1e6)
			sample(&s, t1 - t0);
		sent++;
	}
	printf("sent=%" PRIu64 "\n", sent);
	print_samples("ready_to_read_us", &s);
	for (k = 0; k < 4; k++)
		redisFree(c[k]);
	return 0;
}

/* ================================================================ check */

struct holder {
	char		 id[ID_MAX];
	uint64_t	 until;		/* 0: held until released */
	int		 active;
};

static int
check(void)
{
	redisContext	*c;
	redisReply	*rep, *entries, *e, *f;
	struct holder	*h;
	const char	*key = arg("key", NULL);
	long		 dnbase = (long)iarg("dnbase", "100000");
	int		 agents = (int)iarg("agents", "10000");
	char		 last[64], final[64] = "", type[32], id[ID_MAX], dn[32];
	char		 num[32];
	long long	 n = 0, reserved = 0, completed = 0, violations = 0;
	long long	 after_expiry = 0, odd_accept = 0, released = 0;
	int		 eof = 0, done = 0, a;
	size_t		 i, j;
	uint64_t	 at, until;
	struct pollfd	 pfd = { 0, POLLIN, 0 };
	struct pos	 p, fp;
	char		 buf[64];

	snprintf(last, sizeof(last), "%s", arg("start", "0-0"));
	h = xmalloc((size_t)agents * sizeof(*h));
	c = redisConnect("127.0.0.1", (int)iarg("redis", NULL));
	if (c == NULL || c->err)
		die("redis: %s", c ? c->errstr : "?");
	while (!done) {
		rep = redisCommand(c, "XREAD COUNT 5000 BLOCK 100 STREAMS %s %s",
		    key, last);
		if (rep == NULL)
			die("redis: %s", c->errstr);
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
			entries = rep->element[0]->element[1];
			for (i = 0; i < entries->elements; i++) {
				e = entries->element[i];
				snprintf(last, sizeof(last), "%s",
				    e->element[0]->str);
				f = e->element[1];
				for (j = 0; j + 1 < f->elements; j += 2) {
					const char	*s = f->element[j + 1]->str;
					size_t		 len = f->element[j + 1]->len;
					const char	*dk;
					struct holder	*x;

					if (strcmp(f->element[j]->str, "e") != 0)
						continue;
					n++;
					if (jfield(s, len, "type", type,
					    sizeof(type)) == -1 || jfield(s, len,
					    "id", id, sizeof(id)) == -1)
						continue;
					dk = jfield(s, len, "dn", dn,
					    sizeof(dn)) == 0 ? "dn" : "fromDN";
					if (jfield(s, len, dk, dn, sizeof(dn)) ==
					    -1)
						continue;
					a = (int)(strtol(dn, NULL, 10) - dnbase);
					if (a < 0 || a >= agents)
						continue;
					x = &h[a];
					at = jfield(s, len, "at", num,
					    sizeof(num)) == 0 ?
					    strtoull(num, NULL, 10) : 0;
					until = jfield(s, len, "until", num,
					    sizeof(num)) == 0 ?
					    strtoull(num, NULL, 10) : 0;
					if (strcmp(type, "reserved") == 0) {
						reserved++;
						if (x->active && strcmp(x->id, id)) {
							if (x->until == 0 ||
							    x->until > at) {
								if (violations++ < 5)
									printf("violation: agent %s reserved for %s at %" PRIu64 " while %s holds it (until %" PRIu64 ") at %s\n",
									    dn, id, at, x->id, x->until, last);
							} else
								after_expiry++;
						}
						snprintf(x->id, sizeof(x->id), "%s",
						    id);
						x->until = until;
						x->active = 1;
					} else if (strcmp(type, "accepted") == 0) {
						if (!x->active || strcmp(x->id, id)) {
							odd_accept++;
							if (x->active && violations++ < 5)
								printf("violation: agent %s accepted %s while %s holds it at %s\n",
								    dn, id, x->id, last);
						}
						snprintf(x->id, sizeof(x->id), "%s",
						    id);
						x->until = 0;
						x->active = 1;
					} else if (x->active && strcmp(x->id, id) == 0) {
						/* completed, cancelled, rejected,
						 * timed-out, abandoned */
						x->active = 0;
						released++;
						if (strcmp(type, "completed") == 0)
							completed++;
					}
				}
			}
		}
		freeReplyObject(rep);
		if (!eof && poll(&pfd, 1, 0) > 0 && read(0, buf, sizeof(buf)) <= 0) {
			eof = 1;
			rep = redisCommand(c, "XREVRANGE %s + - COUNT 1", key);
			if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
			    rep->elements == 1)
				snprintf(final, sizeof(final), "%s",
				    rep->element[0]->element[0]->str);
			freeReplyObject(rep);
		}
		if (eof) {
			pos_parse(last, &p);
			pos_parse(final[0] ? final : "0-0", &fp);
			done = pos_cmp(&p, &fp) >= 0;
		}
	}
	printf("events=%lld\nreserved=%lld\ncompleted=%lld\nreleased=%lld\n"
	    "violations=%lld\nafter_expiry=%lld\nodd_accept=%lld\nlast=%s\n",
	    n, reserved, completed, released, violations, after_expiry,
	    odd_accept, last);
	redisFree(c);
	return 0;
}

int
main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		die("usage: routing_load drive|ref|check k=v ...");
	if (strcmp(argv[1], "drive") == 0)
		return drive();
	if (strcmp(argv[1], "ref") == 0)
		return ref();
	if (strcmp(argv[1], "pathref") == 0)
		return pathref();
	if (strcmp(argv[1], "check") == 0)
		return check();
	die("unknown program %s", argv[1]);
	return 1;
}
