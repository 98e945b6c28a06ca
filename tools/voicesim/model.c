/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model - the simulated switch.
 *
 * A call is a list of parties; a party is a DN of the tenant (internal: it
 * gets events and has a field in voice:state) or an outside number.  Each
 * request handler checks everything first and answers with one EventError
 * when something is wrong, so a failed request changes nothing; then it
 * changes the call step by step, emitting each event right after its step
 * and marking thisDN due; vs_flush builds each due DN's state once, from
 * the DN index (its calls, in id order, and its agent), instead of a scan
 * of every call per event.  The first event emitted while a request is
 * handled carries its requestId (vs->reqid).
 *
 * What the parties see follows Genesys T-Server: hold and retrieve are
 * told to the DN that asked only; a completed transfer releases the
 * transferring DN from both calls and tells each remaining party
 * EventPartyChanged; a completed conference EventPartyAdded.  Calls waiting
 * in a queue go, oldest first, to the Ready agent idle the longest.
 *
 * A routing point rings and diverts its calls to a queue at once, unless
 * its configuration names a virtualQueue: then tenantd's routing worker
 * routes it, and a call arriving there gets EventRouteRequest and waits
 * (Ringing, in voice:state) for RequestRouteCall, which the routing point
 * answers with EventRouteUsed, leaving the call to the destination.
 *
 * The traffic generator (vs_params.rate, .agents) lives here too, as
 * timers: arrivals, agents answering, talking, wrapping up, taking breaks.
 *
 * Predictive calls (RequestMakePredictiveCall, docs/outbound.md) play the
 * customers of an outbound dialler: what the called party will do is drawn
 * when the request comes (--outbound-mix, the ring time), and told by a
 * timer: the call is answered and waits at the origination DN for
 * RequestRouteCall, or it is released with the cause.
 */
#include <sys/queue.h>
#include <sys/types.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"
#include "idmap.h"
#include "log.h"
#include "model.h"
#include "strmap.h"
#include "util.h"

#define DN_MAX		65	/* a DN number, as the schema allows */
#define ID_MAX		65	/* agent login codes we keep */
#define MODE_MAX	16
#define REASON_MAX	65

enum pstate { PS_DIALING, PS_RINGING, PS_ESTABLISHED, PS_HELD, PS_QUEUED };
enum role { R_ORIG, R_DEST, R_CONF, R_RP, R_QUEUE };
enum ctype { CT_INBOUND, CT_OUTBOUND, CT_INTERNAL, CT_CONSULT };
enum astate { AS_NOTREADY, AS_READY };
enum tkind {
	T_EXT_ANSWER,		/* an outside number answers */
	T_PATIENCE,		/* an inbound caller gives up */
	T_AUTO_ANSWER,		/* a generated agent answers */
	T_TALK_END,		/* a generated agent hangs up */
	T_WRAP_END,		/* after call work is over */
	T_BREAK_END,		/* a not-ready break is over */
	T_ARRIVAL,		/* the next generated inbound call */
	T_PRED_RESULT,		/* a predictive call's called party is heard */
	T_OUT_PATIENCE,		/* its customer, answered, gives up waiting */
};
/* What a predictive call's customer is waiting for, once answered. */
enum wait {
	W_NONE,			/* nothing: not answered, or talking */
	W_AT_DN,		/* RequestRouteCall at the origination DN */
	W_ROUTED,		/* routed: an agent to answer */
};
/* How a called party's outcome comes about. */
enum okind {
	OK_PERSON,		/* answers after the ring time: established */
	OK_DETECTED,		/* answers; CPD drops it, else established */
	OK_EARLY,		/* a tone after busy_after_ms: released */
	OK_RINGOUT,		/* rings until the request's ringTimeout */
};

static const char *const pstate_names[] = { "Dialing", "Ringing",
    "Established", "Held", "Queued" };
static const char *const role_names[] = { "Origination", "Destination",
    "ConferenceMember", "RoutingPoint", "Queue" };
static const char *const ctype_names[] = { "Inbound", "Outbound",
    "Internal", "Consult" };
static const char *const work_modes[] = { "Unknown", "AutoIn", "ManualIn",
    "AfterCallWork", "AuxWork" };
static const char *const break_reasons[] = { "Break", "Lunch", "Training",
    "Meeting" };
static const char *const segments[] = { "Gold", "Silver", "Bronze" };

/* In enum vs_outcome order: the --outbound-mix key, the callResult of
 * EventEstablished or cause of EventReleased (docs/outbound.md). */
static const struct {
	const char	*key;
	const char	*result;
	enum okind	 kind;
} outcomes[VS_OC_N] = {
	[VS_OC_ANSWER] =	{ "answer", "Answer", OK_PERSON },
	[VS_OC_MACHINE] =	{ "machine", "AnsweringMachine", OK_DETECTED },
	[VS_OC_FAX] =		{ "fax", "Fax", OK_DETECTED },
	[VS_OC_SILENCE] =	{ "silence", "Silence", OK_DETECTED },
	[VS_OC_BUSY] =		{ "busy", "Busy", OK_EARLY },
	[VS_OC_SIT] =		{ "sit", "SitInvalidNumber", OK_EARLY },
	[VS_OC_VACANT] =	{ "vacant", "SitVacant", OK_EARLY },
	[VS_OC_INTERCEPT] =	{ "intercept", "SitIntercept", OK_EARLY },
	[VS_OC_NOCIRCUIT] =	{ "nocircuit", "SitNoCircuit", OK_EARLY },
	[VS_OC_REORDER] =	{ "reorder", "SitReorder", OK_EARLY },
	[VS_OC_SITUNKNOWN] =	{ "situnknown", "SitUnknown", OK_EARLY },
	[VS_OC_ALLTRUNKS] =	{ "alltrunksbusy", "AllTrunksBusy", OK_EARLY },
	[VS_OC_NORINGBACK] =	{ "noringback", "NoRingback", OK_EARLY },
	[VS_OC_NOANSWER] =	{ "noanswer", "NoAnswer", OK_RINGOUT },
};

struct party {
	char		 dn[DN_MAX];
	int		 internal;	/* a tenant DN: events and state */
	enum pstate	 state;
	enum role	 role;
	uint64_t	 since;
	int		 routed;	/* a routing point that told the routing
					 * worker (EventRouteRequest): it leaves
					 * with EventRouteUsed */
};

struct call {
	TAILQ_ENTRY(call) entry;
	uint64_t	 id;		/* for timers; never reused */
	char		 connid[17];
	char		 callid[24];
	char		 thread[24];
	enum ctype	 type;
	json_t		*ud;
	struct party	*p;
	size_t		 np, cap;
	uint64_t	 consult_of;	/* id of the call this consults for */
	int		 established;	/* answered once */
	int		 pred;		/* a predictive call */
	int		 cpd;		/* call progress detection asked */
	enum vs_outcome	 oc;		/* its called party's outcome */
	enum wait	 wait;
};
TAILQ_HEAD(calls, call);

struct line {
	char		 dn[DN_MAX];
	char		 agent[ID_MAX];
	enum astate	 state;
	char		 mode[MODE_MAX];
	char		 reason[REASON_MAX];	/* "": none */
	uint64_t	 since;
	uint64_t	 idle_since;	/* for the longest-idle choice */
	int		 generated;	/* driven by the traffic generator */
};

/*
 * The index of a tenant DN: the calls it is a party of, in the order of
 * their ids (as its state lists them), each with how many of the call's
 * parties are that DN; its agent; and whether its field in voice:state is
 * due at the next vs_flush.  An entry goes once it has none of these.
 */
struct dncall {
	struct call	*c;
	unsigned	 n;
};

struct dnrec {
	struct dncall	*calls;
	size_t		 ncalls, cap;
	struct line	*line;
	int		 due;
	char		 dn[DN_MAX];
};

struct timer {
	uint64_t	 due, seq;
	enum tkind	 kind;
	uint64_t	 call;
	char		 dn[DN_MAX];
};

struct vs {
	struct vs_params p;
	struct dir	*dir;
	vs_emit_cb	*emit;
	void		*arg;
	struct calls	 calls;
	struct idmap	 ids;		/* call id -> call */
	struct strmap	 dns;		/* DN -> struct dnrec */
	struct dnrec	**due;		/* DNs whose state is to be written */
	size_t		 ndue, capdue;
	struct line	**lines;
	size_t		 nlines, caplines;
	struct timer	*heap;
	size_t		 nheap, capheap;
	uint64_t	 now;		/* the model's clock (ms) */
	uint64_t	 wall;		/* for the events' time */
	uint64_t	 evseq, tseq, callseq;
	uint64_t	 rng;
	const char	*reqid;		/* for the next event, then NULL */
	int		 started;
	uint64_t	 nevents;
	size_t		 ncalls;
	const char	*note;		/* for the next event, then NULL */
	char		 notebuf[256];
	/* predictive calls: made, each outcome, and what became of them */
	uint64_t	 npred, results[VS_OC_N], routed, abandoned, released;
};

typedef void	 req_fn(struct vs *, const json_t *);

static void	 distribute(struct vs *);
static void	 hang_up(struct vs *, struct call *, size_t, const char *);
static void	 deliver(struct vs *, struct call *, size_t, const char *);
static void	 after_call(struct vs *, const char *);
static void	 end_call(struct vs *, struct call *, int, const char *);

/* ---- set up ---- */

/* vs_new - a switch with no calls and no agents */
struct vs *
vs_new(const struct vs_params *p, struct dir *dir, vs_emit_cb *emit,
    void *arg)
{
	struct vs	*m;

	m = xcalloc(1, sizeof(*m));
	m->p = *p;
	m->dir = dir;
	m->emit = emit;
	m->arg = arg;
	m->rng = p->seed;
	TAILQ_INIT(&m->calls);
	return m;
}

static void	 call_free(struct vs *, struct call *);

/* rec_free - one entry of the DN index, at the end */
static void
rec_free(const char *dn, void *val, void *arg)
{
	struct dnrec	*r = val;

	free(r->calls);
	free(r);
}

/* vs_free - drop every call, agent and timer; NULL does nothing */
void
vs_free(struct vs *m)
{
	struct call	*c;
	size_t		 i;

	if (m == NULL)
		return;
	while ((c = TAILQ_FIRST(&m->calls)) != NULL)
		call_free(m, c);
	for (i = 0; i < m->nlines; i++)
		free(m->lines[i]);
	strmap_each(&m->dns, rec_free, NULL);
	strmap_clear(&m->dns);
	idmap_clear(&m->ids);
	free(m->due);
	free(m->lines);
	free(m->heap);
	free(m);
}

/* vs_events - how many events were emitted */
uint64_t
vs_events(const struct vs *m)
{
	return m->nevents;
}

/* vs_calls - how many calls are up */
size_t
vs_calls(const struct vs *m)
{
	return m->ncalls;
}

/* vs_outbound_summary - the predictive calls in one line */
void
vs_outbound_summary(const struct vs *m, char *buf, size_t len)
{
	size_t	i, n;

	n = (size_t)snprintf(buf, len, "%llu predictive calls",
	    (unsigned long long)m->npred);
	for (i = 0; i < VS_OC_N && n < len; i++)
		if (m->results[i] > 0)
			n += (size_t)snprintf(buf + n, len - n, ", %s %llu",
			    outcomes[i].result,
			    (unsigned long long)m->results[i]);
	if (n < len)
		snprintf(buf + n, len - n, "; routed %llu, abandoned %llu, "
		    "released by the dialler %llu",
		    (unsigned long long)m->routed,
		    (unsigned long long)m->abandoned,
		    (unsigned long long)m->released);
}

/* vs_outcome_key - the --outbound-mix key of an outcome */
const char *
vs_outcome_key(enum vs_outcome oc)
{
	return oc < VS_OC_N ? outcomes[oc].key : NULL;
}

/* vs_outcome_parse - the outcome of a --outbound-mix key, or -1 */
int
vs_outcome_parse(const char *key)
{
	size_t	i;

	for (i = 0; i < VS_OC_N; i++)
		if (strcmp(key, outcomes[i].key) == 0)
			return (int)i;
	return -1;
}

/* ---- random numbers: splitmix64, so a seed fixes the run ---- */

/* rnd - the next 64 random bits */
static uint64_t
rnd(struct vs *m)
{
	uint64_t	z = (m->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* unif - uniform on [0, 1) */
static double
unif(struct vs *m)
{
	return (double)(rnd(m) >> 11) * (1.0 / 9007199254740992.0);
}

/* ln - natural logarithm of x in (0, 1], without libm */
static double
ln(double x)
{
	double	k = 0, y, y2, sum = 0, term;
	int	i;

	while (x < 0.5) {
		x *= 2;
		k++;
	}
	/* ln x = 2 atanh((x - 1) / (x + 1)), |y| <= 1/3 here */
	y = (x - 1) / (x + 1);
	y2 = y * y;
	term = y;
	for (i = 1; i < 40; i += 2) {
		sum += term / i;
		term *= y2;
	}
	return 2 * sum - k * 0.69314718055994530942;
}

/* draw - a duration with the given mean */
static uint64_t
draw(struct vs *m, uint64_t mean, enum vs_dist dist)
{
	switch (dist) {
	case VS_DIST_FIXED:
		return mean;
	case VS_DIST_UNIFORM:
		return (uint64_t)(unif(m) * 2.0 * (double)mean);
	default:
		return (uint64_t)(-(double)mean * ln(1.0 - unif(m)));
	}
}

/* ---- timers: a binary heap on (due, seq) ---- */

/* t_less - does timer a run before b */
static int
t_less(const struct timer *a, const struct timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* t_swap - swap two heap slots */
static void
t_swap(struct timer *a, struct timer *b)
{
	struct timer	t = *a;

	*a = *b;
	*b = t;
}

/* schedule - run a timer of kind after ms */
static void
schedule(struct vs *m, uint64_t ms, enum tkind kind, uint64_t call,
    const char *dn)
{
	struct timer	*t;
	size_t		 i;

	if (m->nheap == m->capheap) {
		m->capheap = m->capheap ? m->capheap * 2 : 64;
		m->heap = xrealloc(m->heap, m->capheap * sizeof(*m->heap));
	}
	i = m->nheap++;
	t = &m->heap[i];
	memset(t, 0, sizeof(*t));
	t->due = m->now + ms;
	t->seq = ++m->tseq;
	t->kind = kind;
	t->call = call;
	if (dn != NULL)
		snprintf(t->dn, sizeof(t->dn), "%s", dn);
	while (i > 0 && t_less(&m->heap[i], &m->heap[(i - 1) / 2])) {
		t_swap(&m->heap[i], &m->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
}

/* unschedule - take the first timer off the heap into *t */
static void
unschedule(struct vs *m, struct timer *t)
{
	size_t	i = 0, l, s;

	*t = m->heap[0];
	m->heap[0] = m->heap[--m->nheap];
	for (;;) {
		l = 2 * i + 1;
		s = i;
		if (l < m->nheap && t_less(&m->heap[l], &m->heap[s]))
			s = l;
		if (l + 1 < m->nheap && t_less(&m->heap[l + 1], &m->heap[s]))
			s = l + 1;
		if (s == i)
			break;
		t_swap(&m->heap[i], &m->heap[s]);
		i = s;
	}
}

/* vs_next_due - when the next timer is due; 0 when none is */
uint64_t
vs_next_due(const struct vs *m)
{
	return m->nheap ? m->heap[0].due : 0;
}

/* ---- the DN index: a DN's calls and agent, and the states due ---- */

/* rec_get - dn's entry, or NULL */
static struct dnrec *
rec_get(const struct vs *m, const char *dn)
{
	return strmap_get(&m->dns, dn);
}

/* rec_at - dn's entry, made if need be */
static struct dnrec *
rec_at(struct vs *m, const char *dn)
{
	struct dnrec	*r;

	if ((r = strmap_get(&m->dns, dn)) != NULL)
		return r;
	r = xcalloc(1, sizeof(*r));
	snprintf(r->dn, sizeof(r->dn), "%s", dn);
	strmap_put(&m->dns, dn, r);
	return r;
}

/* rec_gc - forget r once it has no call, no agent and no state due */
static void
rec_gc(struct vs *m, struct dnrec *r)
{
	if (r->ncalls > 0 || r->line != NULL || r->due)
		return;
	strmap_del(&m->dns, r->dn);
	free(r->calls);
	free(r);
}

/* rec_find - where call c is in r's calls, or would go: by id */
static size_t
rec_find(const struct dnrec *r, const struct call *c)
{
	size_t	lo = 0, hi = r->ncalls, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->calls[mid].c->id < c->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* dn_join - one more party of c is dn */
static void
dn_join(struct vs *m, const char *dn, struct call *c)
{
	struct dnrec	*r = rec_at(m, dn);
	size_t		 k = rec_find(r, c);

	if (k < r->ncalls && r->calls[k].c == c) {
		r->calls[k].n++;
		return;
	}
	if (r->ncalls == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4;
		r->calls = xrealloc(r->calls, r->cap * sizeof(*r->calls));
	}
	memmove(&r->calls[k + 1], &r->calls[k],
	    (r->ncalls - k) * sizeof(*r->calls));
	r->calls[k].c = c;
	r->calls[k].n = 1;
	r->ncalls++;
}

/* dn_leave - a party of c that was dn is gone */
static void
dn_leave(struct vs *m, const char *dn, struct call *c)
{
	struct dnrec	*r = rec_get(m, dn);
	size_t		 k;

	if (r == NULL || (k = rec_find(r, c)) == r->ncalls ||
	    r->calls[k].c != c)
		fatalx("call %s is not in the index of DN %s",
		    c->connid, dn);
	if (--r->calls[k].n > 0)
		return;
	memmove(&r->calls[k], &r->calls[k + 1],
	    (r->ncalls - k - 1) * sizeof(*r->calls));
	r->ncalls--;
	rec_gc(m, r);
}

/* dn_due - dn's state is to be written at the next vs_flush */
static void
dn_due(struct vs *m, const char *dn)
{
	struct dnrec	*r = rec_at(m, dn);

	if (r->due)
		return;
	if (m->ndue == m->capdue) {
		m->capdue = m->capdue ? m->capdue * 2 : 16;
		m->due = xrealloc(m->due, m->capdue * sizeof(*m->due));
	}
	r->due = 1;
	m->due[m->ndue++] = r;
}

/* ---- lines (DNs with an agent) ---- */

/* line_get - the agent logged in on dn, or NULL */
static struct line *
line_get(const struct vs *m, const char *dn)
{
	const struct dnrec	*r = rec_get(m, dn);

	return r != NULL ? r->line : NULL;
}

/* line_by_agent - the line agent is logged in on, or NULL */
static struct line *
line_by_agent(const struct vs *m, const char *agent)
{
	size_t	i;

	for (i = 0; i < m->nlines; i++)
		if (strcmp(m->lines[i]->agent, agent) == 0)
			return m->lines[i];
	return NULL;
}

/* line_add - log agent in on dn, not ready */
static struct line *
line_add(struct vs *m, const char *dn, const char *agent, const char *mode)
{
	struct line	*l;

	if (m->nlines == m->caplines) {
		m->caplines = m->caplines ? m->caplines * 2 : 16;
		m->lines = xrealloc(m->lines, m->caplines * sizeof(*m->lines));
	}
	l = xcalloc(1, sizeof(*l));
	snprintf(l->dn, sizeof(l->dn), "%s", dn);
	snprintf(l->agent, sizeof(l->agent), "%s", agent);
	snprintf(l->mode, sizeof(l->mode), "%s", mode);
	l->state = AS_NOTREADY;
	l->since = l->idle_since = m->now;
	m->lines[m->nlines++] = l;
	rec_at(m, dn)->line = l;
	return l;
}

/* line_del - log the agent on l out */
static void
line_del(struct vs *m, struct line *l)
{
	struct dnrec	*r = rec_get(m, l->dn);
	size_t		 i;

	if (r != NULL && r->line == l) {
		r->line = NULL;
		rec_gc(m, r);
	}
	for (i = 0; i < m->nlines; i++)
		if (m->lines[i] == l) {
			memmove(&m->lines[i], &m->lines[i + 1],
			    (m->nlines - i - 1) * sizeof(*m->lines));
			m->nlines--;
			break;
		}
	free(l);
}

/* ---- calls ---- */

/* call_new - a call with a fresh connId and call id */
static struct call *
call_new(struct vs *m, enum ctype type, const json_t *ud)
{
	struct call	*c;

	c = xcalloc(1, sizeof(*c));
	c->id = ++m->callseq;
	/* the boot id's first 6 digits keep connIds apart across restarts */
	snprintf(c->connid, sizeof(c->connid), "%.6s%010llx", m->p.boot,
	    (unsigned long long)c->id);
	snprintf(c->callid, sizeof(c->callid), "%llu",
	    (unsigned long long)c->id);
	snprintf(c->thread, sizeof(c->thread), "%s", c->callid);
	c->type = type;
	c->ud = ud != NULL ? json_deep_copy(ud) : json_object();
	TAILQ_INSERT_TAIL(&m->calls, c, entry);
	idmap_put(&m->ids, c->id, c);
	m->ncalls++;
	return c;
}

/* call_free - forget call c, and the parties it still has */
static void
call_free(struct vs *m, struct call *c)
{
	size_t	i;

	for (i = 0; i < c->np; i++)
		if (c->p[i].internal)
			dn_leave(m, c->p[i].dn, c);
	idmap_del(&m->ids, c->id);
	TAILQ_REMOVE(&m->calls, c, entry);
	json_decref(c->ud);
	free(c->p);
	free(c);
	m->ncalls--;
}

/* call_by_id - the call with that internal id, or NULL */
static struct call *
call_by_id(const struct vs *m, uint64_t id)
{
	return id != 0 ? idmap_get(&m->ids, id) : NULL;
}

/* call_by_connid - the call with that connId (the boot id's first 6
 * digits, then its id in hex), or NULL */
static struct call *
call_by_connid(const struct vs *m, const char *connid)
{
	struct call	*c;
	char		*end;
	uint64_t	 id;

	if (strlen(connid) <= 6 || !isxdigit((unsigned char)connid[6]))
		return NULL;
	id = strtoull(connid + 6, &end, 16);
	if (*end != '\0' || (c = call_by_id(m, id)) == NULL)
		return NULL;
	return strcmp(c->connid, connid) == 0 ? c : NULL;
}

/* party_add - dn joins c; returns its index */
static size_t
party_add(struct vs *m, struct call *c, const char *dn, enum pstate state,
    enum role role)
{
	struct party	*p;

	if (c->np == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 4;
		c->p = xrealloc(c->p, c->cap * sizeof(*c->p));
	}
	p = &c->p[c->np];
	memset(p, 0, sizeof(*p));
	snprintf(p->dn, sizeof(p->dn), "%s", dn);
	p->internal = dir_dn(m->dir, dn) != NULL;
	p->state = state;
	p->role = role;
	p->since = m->now;
	if (p->internal)
		dn_join(m, dn, c);
	return c->np++;
}

/* party_del - party i leaves c's list */
static void
party_del(struct vs *m, struct call *c, size_t i)
{
	if (c->p[i].internal)
		dn_leave(m, c->p[i].dn, c);
	memmove(&c->p[i], &c->p[i + 1], (c->np - i - 1) * sizeof(*c->p));
	c->np--;
}

/* party_find - the index of dn in c, or -1 */
static ssize_t
party_find(const struct call *c, const char *dn)
{
	size_t	i;

	for (i = 0; i < c->np; i++)
		if (strcmp(c->p[i].dn, dn) == 0)
			return (ssize_t)i;
	return -1;
}

/* other_party - who a party talks to: the first other one, or -1 */
static ssize_t
other_party(const struct call *c, size_t i)
{
	size_t	j;

	for (j = 0; j < c->np; j++)
		if (j != i)
			return (ssize_t)j;
	return -1;
}

/* dn_busy - has dn any call; with active, any call not on hold */
static int
dn_busy(const struct vs *m, const char *dn, int active)
{
	const struct dnrec	*r = rec_get(m, dn);
	const struct call	*c;
	size_t			 k;

	for (k = 0; r != NULL && k < r->ncalls; k++) {
		c = r->calls[k].c;
		if (!active || c->p[party_find(c, dn)].state != PS_HELD)
			return 1;
	}
	return 0;
}

/* ---- state: the value of a DN's field in voice:state ---- */

/* call_state - one call as a DN's state shows it */
static json_t *
call_state(const struct call *c, size_t i)
{
	json_t	*j, *parties;
	ssize_t	 o = other_party(c, i);
	size_t	 k;

	parties = json_array();
	for (k = 0; k < c->np; k++)
		json_array_append_new(parties, json_string(c->p[k].dn));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:O, s:I}",
	    "connId", c->connid, "callId", c->callid,
	    "callThreadId", c->thread, "state", pstate_names[c->p[i].state],
	    "role", role_names[c->p[i].role], "callType", ctype_names[c->type],
	    "parties", parties, "userData", c->ud,
	    "since", (json_int_t)c->p[i].since);
	if (o != -1)
		json_object_set_new(j, "otherDN", json_string(c->p[o].dn));
	return j;
}

/* agent_state - the agent object of a DN's state */
static json_t *
agent_state(const struct line *l)
{
	return json_pack("{s:s, s:s, s:s, s:s?, s:I}", "agentId", l->agent,
	    "state", l->state == AS_READY ? "Ready" : "NotReady",
	    "workMode", l->mode, "reason", l->reason[0] ? l->reason : NULL,
	    "since", (json_int_t)l->since);
}

/* dn_state - the state of r's DN now; NULL when it has no agent nor call */
static json_t *
dn_state(const struct dnrec *r)
{
	const struct call	*c;
	json_t			*calls;
	size_t			 k;

	if (r->line == NULL && r->ncalls == 0)
		return NULL;
	calls = json_array();
	for (k = 0; k < r->ncalls; k++) {
		c = r->calls[k].c;
		json_array_append_new(calls, call_state(c,
		    (size_t)party_find(c, r->dn)));
	}
	return json_pack("{s:s, s:o, s:o}", "dn", r->dn, "agent",
	    r->line != NULL ? agent_state(r->line) : json_pack("{s:n, s:s}",
	    "agentId", "state", "LoggedOut"), "calls", calls);
}

struct each {
	vs_state_cb	*cb;
	void		*arg;
};

/* each_state - one entry of the index for vs_each_state */
static void
each_state(const char *dn, void *val, void *arg)
{
	struct each	*e = arg;
	json_t		*st = dn_state(val);

	if (st != NULL)
		e->cb(dn, st, e->arg);
	json_decref(st);
}

/* vs_each_state - hand every DN with an agent or a call to cb */
void
vs_each_state(struct vs *m, vs_state_cb *cb, void *arg)
{
	struct each	e = { cb, arg };

	strmap_each(&m->dns, each_state, &e);
}

/* vs_flush - hand cb the state, as it is now, of each DN that an event
 * was about since the last flush; NULL: it has no agent and no call */
void
vs_flush(struct vs *m, vs_state_cb *cb, void *arg)
{
	struct dnrec	*r;
	json_t		*st;
	size_t		 i;

	for (i = 0; i < m->ndue; i++) {
		r = m->due[i];
		st = dn_state(r);
		cb(r->dn, st, arg);
		json_decref(st);
		r->due = 0;
		rec_gc(m, r);
	}
	m->ndue = 0;
}

/* ---- events ---- */

/* ev_new - an event about dn (NULL: none), with the requestId if due */
static json_t *
ev_new(struct vs *m, const char *name, const char *dn)
{
	const struct line	*l;
	json_t			*j;

	j = json_object();
	json_object_set_new(j, "event", json_string(name));
	json_object_set_new(j, "eventId", json_string_nocheck(""));
	json_object_set_new(j, "region", json_string(m->p.region));
	json_object_set_new(j, "time", json_integer((json_int_t)m->wall));
	if (m->reqid != NULL) {
		json_object_set_new(j, "requestId", json_string(m->reqid));
		m->reqid = NULL;
	}
	if (dn != NULL) {
		json_object_set_new(j, "thisDN", json_string(dn));
		if ((l = line_get(m, dn)) != NULL)
			json_object_set_new(j, "agentId",
			    json_string(l->agent));
	}
	return j;
}

/* ev_call - a call event about party i of c */
static json_t *
ev_call(struct vs *m, const char *name, const struct call *c, size_t i,
    const char *third)
{
	json_t	*j;
	ssize_t	 o = other_party(c, i);

	j = ev_new(m, name, c->p[i].dn);
	json_object_set_new(j, "connId", json_string(c->connid));
	json_object_set_new(j, "callId", json_string(c->callid));
	json_object_set_new(j, "callThreadId", json_string(c->thread));
	json_object_set_new(j, "thisDNRole",
	    json_string(role_names[c->p[i].role]));
	if (o != -1) {
		json_object_set_new(j, "otherDN", json_string(c->p[o].dn));
		json_object_set_new(j, "otherDNRole",
		    json_string(role_names[c->p[o].role]));
	}
	if (third != NULL)
		json_object_set_new(j, "thirdDN", json_string(third));
	json_object_set_new(j, "callType", json_string(ctype_names[c->type]));
	json_object_set_new(j, "userData", json_deep_copy(c->ud));
	return j;
}

/* out - stamp the eventId and emit ev; dn's state is due at the next
 * vs_flush */
static void
out(struct vs *m, json_t *ev, const char *dn)
{
	struct vs_out	 o;
	char		 id[160];

	snprintf(id, sizeof(id), "%s:%s:%llu", m->p.region, m->p.boot,
	    (unsigned long long)++m->evseq);
	json_object_set_new(ev, "eventId", json_string(id));
	if (dn != NULL)
		dn_due(m, dn);
	o.event = ev;
	o.note = m->note;
	m->note = NULL;
	m->emit(&o, m->arg);
	m->nevents++;
	json_decref(ev);
}

/* out_call - emit ev about party i of c; only tenant DNs get events */
static void
out_call(struct vs *m, const char *name, const struct call *c, size_t i,
    const char *third, const char *cause)
{
	json_t	*ev;

	if (!c->p[i].internal)
		return;
	ev = ev_call(m, name, c, i, third);
	if (cause != NULL)
		json_object_set_new(ev, "cause", json_string(cause));
	out(m, ev, c->p[i].dn);
}

/* error - answer the request with EventError */
static void __attribute__((format(printf, 4, 5)))
error(struct vs *m, const char *dn, const char *code, const char *fmt, ...)
{
	json_t	*ev;
	char	 msg[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev = ev_new(m, "EventError", dn);
	json_object_set_new(ev, "code", json_string(code));
	json_object_set_new(ev, "message", json_string(msg));
	out(m, ev, NULL);
}

/* note - a line on predictive call c for the debug log, told with the
 * next event */
static void __attribute__((format(printf, 3, 4)))
note(struct vs *m, const struct call *c, const char *fmt, ...)
{
	char	 what[160];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(m->notebuf, sizeof(m->notebuf), "predictive call %s: %s",
	    c->connid, what);
	m->note = m->notebuf;
}

/* agent_event - EventAgentX about the agent on l */
static void
agent_event(struct vs *m, const char *name, const struct line *l)
{
	json_t	*ev;

	ev = ev_new(m, name, l->dn);
	json_object_set_new(ev, "agentId", json_string(l->agent));
	json_object_set_new(ev, "workMode", json_string(l->mode));
	if (l->reason[0] != '\0')
		json_object_set_new(ev, "reason", json_string(l->reason));
	out(m, ev, l->dn);
}

/* ---- what happens to calls ---- */

/* set_ready - the agent on l becomes Ready in mode */
static void
set_ready(struct vs *m, struct line *l, const char *mode)
{
	l->state = AS_READY;
	snprintf(l->mode, sizeof(l->mode), "%s", mode);
	l->reason[0] = '\0';
	l->since = l->idle_since = m->now;
	agent_event(m, "EventAgentReady", l);
}

/* set_not_ready - the agent on l becomes NotReady */
static void
set_not_ready(struct vs *m, struct line *l, const char *mode,
    const char *reason)
{
	l->state = AS_NOTREADY;
	snprintf(l->mode, sizeof(l->mode), "%s", mode);
	snprintf(l->reason, sizeof(l->reason), "%s", reason ? reason : "");
	l->since = m->now;
	agent_event(m, "EventAgentNotReady", l);
}

/* after_call - a generated agent wraps up after a call */
static void
after_call(struct vs *m, const char *dn)
{
	struct line	*l = line_get(m, dn);

	if (l == NULL || !l->generated)
		return;
	set_not_ready(m, l, "AfterCallWork", NULL);
	schedule(m, m->p.wrap_ms, T_WRAP_END, 0, dn);
}

/* ring - party i of c rings on a phone; a generated agent will answer */
static void
ring(struct vs *m, struct call *c, size_t i, const char *third)
{
	const struct line	*l;

	c->p[i].state = PS_RINGING;
	out_call(m, "EventRinging", c, i, third, NULL);
	if ((l = line_get(m, c->p[i].dn)) != NULL && l->generated)
		schedule(m, c->pred ? m->p.agent_answer_ms : m->p.ring_ms,
		    T_AUTO_ANSWER, c->id, l->dn);
}

/* enqueue - party i of c, a queue, holds the call for an agent */
static void
enqueue(struct vs *m, struct call *c, size_t i, const char *third)
{
	c->p[i].state = PS_QUEUED;
	c->p[i].role = R_QUEUE;
	out_call(m, "EventQueued", c, i, third, NULL);
}

/* route_queue - where a routing point sends its calls */
static const struct dir_dn *
route_queue(const struct vs *m, const struct dir_dn *rp)
{
	const struct dir_dn	*q;

	if (m->p.queue != NULL && (q = dir_dn(m->dir, m->p.queue)) != NULL &&
	    q->kind == VOICE_DN_QUEUE)
		return q;
	return dir_first_queue(m->dir, rp->sw);
}

/* route - party i of c, a routing point, rings, then diverts to a queue */
static void
route(struct vs *m, struct call *c, size_t i, const struct dir_dn *rp,
    const char *third)
{
	const struct dir_dn	*q;
	json_t			*ev;
	size_t			 j;

	c->p[i].state = PS_RINGING;
	c->p[i].role = R_RP;
	out_call(m, "EventRinging", c, i, third, NULL);
	if ((q = route_queue(m, rp)) == NULL)
		return;		/* rings on until the caller gives up */
	ev = ev_call(m, "EventDiverted", c, i, q->number);
	json_object_set_new(ev, "cause", json_string("Normal"));
	party_del(m, c, i);
	out(m, ev, rp->number);
	j = party_add(m, c, q->number, PS_QUEUED, R_QUEUE);
	enqueue(m, c, j, rp->number);
}

/*
 * route_request - party i of c is a routing point that the routing worker
 * routes: it asks, and the call waits there, ringing, for RequestRouteCall
 * (or its caller's patience).  dnis is the number the call arrived on.
 */
static void
route_request(struct vs *m, struct call *c, size_t i, const char *third)
{
	json_t	*ev;

	c->p[i].state = PS_RINGING;
	c->p[i].role = R_RP;
	c->p[i].routed = 1;
	ev = ev_call(m, "EventRouteRequest", c, i, third);
	json_object_set_new(ev, "dnis", json_string(c->p[i].dn));
	out(m, ev, c->p[i].dn);
}

/* deliver - party i of c is where the call goes: ring, route or queue */
static void
deliver(struct vs *m, struct call *c, size_t i, const char *third)
{
	const struct dir_dn	*d = dir_dn(m->dir, c->p[i].dn);

	if (d == NULL) {
		c->p[i].state = PS_RINGING;
		schedule(m, m->p.ring_ms, T_EXT_ANSWER, c->id, c->p[i].dn);
	} else if (dir_routed(d))
		route_request(m, c, i, third);
	else if (d->kind == VOICE_DN_RP)
		route(m, c, i, d, third);
	else if (d->kind == VOICE_DN_QUEUE)
		enqueue(m, c, i, third);
	else
		ring(m, c, i, third);
}

/* answer - party i of c answers; the parties dialing are connected */
static void
answer(struct vs *m, struct call *c, size_t i)
{
	size_t	j;

	c->established = 1;
	c->wait = W_NONE;
	c->p[i].state = PS_ESTABLISHED;
	c->p[i].since = m->now;
	out_call(m, "EventEstablished", c, i, NULL, NULL);
	for (j = 0; j < c->np; j++)
		if (j != i && c->p[j].state == PS_DIALING) {
			c->p[j].state = PS_ESTABLISHED;
			c->p[j].since = m->now;
			out_call(m, "EventEstablished", c, j, NULL, NULL);
		}
}

/* talkers - the parties of c that are neither queues nor routing points */
static size_t
talkers(const struct call *c)
{
	size_t	i, n = 0;

	for (i = 0; i < c->np; i++)
		if (c->p[i].role != R_RP && c->p[i].role != R_QUEUE)
			n++;
	return n;
}

/*
 * end_call - the call is over for every party left: EventAbandoned, or
 * EventReleased with cause (NULL: Normal).  Generated agents wrap up after
 * a call that was answered, not after one abandoned.
 */
static void
end_call(struct vs *m, struct call *c, int abandoned, const char *cause)
{
	char	 dn[DN_MAX];
	json_t	*ev;

	if (cause == NULL)
		cause = abandoned ? "Abandoned" : "Normal";
	while (c->np > 0) {
		if (!c->p[0].internal) {
			party_del(m, c, 0);
			continue;
		}
		snprintf(dn, sizeof(dn), "%s", c->p[0].dn);
		ev = ev_call(m, abandoned ? "EventAbandoned" : "EventReleased",
		    c, 0, NULL);
		json_object_set_new(ev, "cause", json_string(cause));
		party_del(m, c, 0);
		out(m, ev, dn);
		if (c->established && !abandoned)
			after_call(m, dn);
	}
	call_free(m, c);
}

/*
 * hang_up - party i leaves c.  A call keeps going while two parties talk;
 * a conference member leaving is told to the others.  A caller leaving an
 * unanswered call abandons it: the others get EventAbandoned; so does the
 * customer of a predictive call who leaves before an agent answered.
 */
static void
hang_up(struct vs *m, struct call *c, size_t i, const char *cause)
{
	struct party	 left = c->p[i];
	json_t		*ev;
	size_t		 j;
	int		 gave_up;

	if (left.internal) {
		ev = ev_call(m, "EventReleased", c, i, NULL);
		json_object_set_new(ev, "cause", json_string(cause));
		party_del(m, c, i);
		out(m, ev, left.dn);
		if (c->established)
			after_call(m, left.dn);
	} else
		party_del(m, c, i);
	if (talkers(c) >= 2) {
		for (j = 0; j < c->np; j++)
			out_call(m, "EventPartyDeleted", c, j, left.dn, NULL);
		return;
	}
	gave_up = c->wait != W_NONE && !left.internal;
	if (gave_up) {
		m->abandoned++;
		note(m, c, "%s hung up before an agent answered", left.dn);
	}
	end_call(m, c, gave_up || (!c->established && left.role == R_ORIG),
	    NULL);
}

/* idle_agent - the Ready agent of switch sw idle the longest, or NULL */
static struct line *
idle_agent(struct vs *m, json_int_t sw)
{
	struct line		*l, *best = NULL;
	const struct dir_dn	*d;
	size_t			 i;

	for (i = 0; i < m->nlines; i++) {
		l = m->lines[i];
		if (l->state != AS_READY || dn_busy(m, l->dn, 0))
			continue;
		if ((d = dir_dn(m->dir, l->dn)) == NULL || d->sw != sw)
			continue;
		if (best == NULL || l->idle_since < best->idle_since)
			best = l;
	}
	return best;
}

/* assign - the queue at party i of c hands the call to the agent on l */
static void
assign(struct vs *m, struct call *c, size_t i, struct line *l)
{
	char	 q[DN_MAX];
	json_t	*ev;
	size_t	 j;

	snprintf(q, sizeof(q), "%s", c->p[i].dn);
	ev = ev_call(m, "EventDiverted", c, i, l->dn);
	json_object_set_new(ev, "cause", json_string("Normal"));
	party_del(m, c, i);
	out(m, ev, q);
	j = party_add(m, c, l->dn, PS_RINGING, R_DEST);
	ring(m, c, j, q);
}

/* distribute - hand queued calls, oldest first, to idle agents */
static void
distribute(struct vs *m)
{
	const struct dir_dn	*q;
	struct call		*c;
	struct line		*l;
	size_t			 i;

	TAILQ_FOREACH(c, &m->calls, entry)
		for (i = 0; i < c->np; i++) {
			if (c->p[i].state != PS_QUEUED)
				continue;
			if ((q = dir_dn(m->dir, c->p[i].dn)) == NULL ||
			    (l = idle_agent(m, q->sw)) == NULL)
				break;
			assign(m, c, i, l);
			break;
		}
}

/* move_parties - the parties of c2 but dn join c (transfer, conference) */
static void
move_parties(struct vs *m, struct call *c, struct call *c2, const char *dn)
{
	size_t	i, j;

	for (i = 0; i < c2->np; i++) {
		if (strcmp(c2->p[i].dn, dn) == 0)
			continue;
		j = party_add(m, c, c2->p[i].dn, c2->p[i].state, c2->p[i].role);
		c->p[j].since = c2->p[i].since;
		c->p[j].routed = c2->p[i].routed;
	}
	/* an outside party still ringing answers on the call it joined */
	for (i = 0; i < m->nheap; i++)
		if (m->heap[i].call == c2->id)
			m->heap[i].call = c->id;
	call_free(m, c2);
}

/* ---- checking requests ---- */

struct ctx {
	const char		*dn;
	const struct dir_dn	*d;
	struct call		*c;
	size_t			 i;
};

/* str_field - member name as a string of 1 to max-1 bytes, or NULL when
 * absent and optional; -1 after answering BadRequest */
static int
str_field(struct vs *m, const json_t *req, const char *dn, const char *name,
    int required, size_t max, const char **out)
{
	json_t	*v = json_object_get(req, name);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		error(m, dn, "BadRequest", "%s is missing", name);
		return -1;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) >= max) {
		error(m, dn, "BadRequest", "%s must be a string of 1 to %zu "
		    "bytes", name, max - 1);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* obj_field - member name as an object, or NULL when absent and optional */
static int
obj_field(struct vs *m, const json_t *req, const char *dn, const char *name,
    int required, const json_t **out)
{
	json_t	*v = json_object_get(req, name);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		error(m, dn, "BadRequest", "%s is missing", name);
		return -1;
	}
	if (!json_is_object(v)) {
		error(m, dn, "BadRequest", "%s must be an object", name);
		return -1;
	}
	*out = v;
	return 0;
}

/* need_dn - the request's dn, a DN of the tenant */
static int
need_dn(struct vs *m, const json_t *req, struct ctx *x)
{
	if (str_field(m, req, NULL, "dn", 1, DN_MAX, &x->dn) == -1)
		return -1;
	if ((x->d = dir_dn(m->dir, x->dn)) == NULL) {
		error(m, x->dn, "UnknownDN", "DN %s is not known to the switch",
		    x->dn);
		return -1;
	}
	return 0;
}

/* need_call - dn, and the call named by member field that dn is on */
static int
need_call(struct vs *m, const json_t *req, const char *field, struct ctx *x)
{
	const char	*connid;
	ssize_t		 i;

	if (need_dn(m, req, x) == -1 ||
	    str_field(m, req, x->dn, field, 1, 17, &connid) == -1)
		return -1;
	if ((x->c = call_by_connid(m, connid)) == NULL ||
	    (i = party_find(x->c, x->dn)) == -1) {
		error(m, x->dn, "NoSuchCall", "no call %s on DN %s", connid,
		    x->dn);
		return -1;
	}
	x->i = (size_t)i;
	return 0;
}

/* need_state - party x->i is in one of two states */
static int
need_state(struct vs *m, const struct ctx *x, enum pstate a, enum pstate b)
{
	enum pstate	s = x->c->p[x->i].state;

	if (s == a || s == b)
		return 0;
	error(m, x->dn, "InvalidState", "call %s is %s on DN %s",
	    x->c->connid, pstate_names[s], x->dn);
	return -1;
}

/* outside - does dest look like a number outside the switch? */
static int
outside(const struct vs *m, const char *dest)
{
	const char	*s = dest + (dest[0] == '+');

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return 0;
	return dest[0] == '+' || strlen(dest) >= m->p.external_min;
}

/* outside_busy - is that outside number busy? */
static int
outside_busy(const struct vs *m, const char *dest)
{
	size_t	n = m->p.busy_suffix ? strlen(m->p.busy_suffix) : 0;

	if (m->p.external_busy)
		return 1;
	return n > 0 && strlen(dest) >= n &&
	    strcmp(dest + strlen(dest) - n, m->p.busy_suffix) == 0;
}

/* check_dest - may dn call dest now? */
static int
check_dest(struct vs *m, const char *dn, const char *dest)
{
	const struct dir_dn	*d = dir_dn(m->dir, dest);

	if (strcmp(dn, dest) == 0) {
		error(m, dn, "InvalidState", "DN %s cannot call itself", dn);
		return -1;
	}
	if (d == NULL && !outside(m, dest)) {
		error(m, dn, "UnknownDN", "destination %s is not known to the "
		    "switch", dest);
		return -1;
	}
	if (d != NULL && d->kind == VOICE_DN_OTHER) {
		error(m, dn, "UnknownDN", "destination %s cannot take calls",
		    dest);
		return -1;
	}
	if ((d != NULL && d->kind == VOICE_DN_PHONE && dn_busy(m, dest, 0)) ||
	    (d == NULL && outside_busy(m, dest))) {
		error(m, dn, "Busy", "destination %s is busy", dest);
		return -1;
	}
	return 0;
}

/* need_phone - x->d is a phone; routing points and queues do not dial */
static int
need_phone(struct vs *m, const struct ctx *x)
{
	if (x->d->kind == VOICE_DN_PHONE)
		return 0;
	error(m, x->dn, "InvalidState", "DN %s is not a phone", x->dn);
	return -1;
}

/* ---- call requests ---- */

/* req_make_call - RequestMakeCall: dial destination from dn */
static void
req_make_call(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	const char	*dest;
	const json_t	*ud;
	struct call	*c;
	size_t		 i, j;

	if (need_dn(m, req, &x) == -1 || need_phone(m, &x) == -1 ||
	    str_field(m, req, x.dn, "destination", 1, DN_MAX, &dest) == -1 ||
	    obj_field(m, req, x.dn, "userData", 0, &ud) == -1)
		return;
	if (dn_busy(m, x.dn, 1)) {
		error(m, x.dn, "InvalidState", "DN %s is on a call", x.dn);
		return;
	}
	if (check_dest(m, x.dn, dest) == -1)
		return;
	c = call_new(m, dir_dn(m->dir, dest) ? CT_INTERNAL : CT_OUTBOUND, ud);
	i = party_add(m, c, x.dn, PS_DIALING, R_ORIG);
	j = party_add(m, c, dest, PS_DIALING, R_DEST);
	out_call(m, "EventDialing", c, i, NULL, NULL);
	deliver(m, c, j, NULL);
}

/* req_answer - RequestAnswerCall: dn answers its ringing call */
static void
req_answer(struct vs *m, const json_t *req)
{
	struct ctx	x;

	if (need_call(m, req, "connId", &x) == -1 ||
	    need_state(m, &x, PS_RINGING, PS_RINGING) == -1)
		return;
	answer(m, x.c, x.i);
}

/* req_release - RequestReleaseCall: dn leaves the call; a predictive
 * call's customer, dialled or waiting, goes with it */
static void
req_release(struct vs *m, const json_t *req)
{
	struct ctx	x;

	if (need_call(m, req, "connId", &x) == -1)
		return;
	if (x.c->pred && x.c->p[x.i].role == R_ORIG &&
	    (x.c->wait == W_AT_DN || !x.c->established)) {
		m->released++;
		note(m, x.c, "released by %s", x.dn);
	}
	hang_up(m, x.c, x.i, "Normal");
}

/* req_hold - RequestHoldCall: dn holds an established call */
static void
req_hold(struct vs *m, const json_t *req)
{
	struct ctx	x;

	if (need_call(m, req, "connId", &x) == -1 ||
	    need_state(m, &x, PS_ESTABLISHED, PS_ESTABLISHED) == -1)
		return;
	x.c->p[x.i].state = PS_HELD;
	out_call(m, "EventHeld", x.c, x.i, NULL, NULL);
}

/* req_retrieve - RequestRetrieveCall: dn takes a held call back */
static void
req_retrieve(struct vs *m, const json_t *req)
{
	struct ctx	x;

	if (need_call(m, req, "connId", &x) == -1 ||
	    need_state(m, &x, PS_HELD, PS_HELD) == -1)
		return;
	x.c->p[x.i].state = PS_ESTABLISHED;
	out_call(m, "EventRetrieved", x.c, x.i, NULL, NULL);
}

/* consult - hold the call and dial dest on a consultation call */
static void
consult(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	const char	*dest;
	const json_t	*ud;
	struct call	*c2;
	size_t		 i, j;

	if (need_call(m, req, "connId", &x) == -1 ||
	    need_state(m, &x, PS_ESTABLISHED, PS_HELD) == -1 ||
	    str_field(m, req, x.dn, "destination", 1, DN_MAX, &dest) == -1 ||
	    obj_field(m, req, x.dn, "userData", 0, &ud) == -1 ||
	    check_dest(m, x.dn, dest) == -1)
		return;
	if (x.c->p[x.i].state == PS_ESTABLISHED) {
		x.c->p[x.i].state = PS_HELD;
		out_call(m, "EventHeld", x.c, x.i, NULL, NULL);
	}
	c2 = call_new(m, CT_CONSULT, x.c->ud);
	if (ud != NULL)
		json_object_update(c2->ud, (json_t *)ud);
	snprintf(c2->thread, sizeof(c2->thread), "%s", x.c->thread);
	c2->consult_of = x.c->id;
	i = party_add(m, c2, x.dn, PS_DIALING, R_ORIG);
	j = party_add(m, c2, dest, PS_DIALING, R_DEST);
	out_call(m, "EventDialing", c2, i, NULL, NULL);
	deliver(m, c2, j, NULL);
}

/* need_consult - the held call and its consultation call, both on dn */
static int
need_consult(struct vs *m, const json_t *req, struct ctx *x, struct ctx *y)
{
	if (need_call(m, req, "connId", x) == -1 ||
	    need_state(m, x, PS_HELD, PS_HELD) == -1 ||
	    need_call(m, req, "consultConnId", y) == -1)
		return -1;
	if (y->c->consult_of != x->c->id) {
		error(m, x->dn, "InvalidState", "call %s is not a consultation "
		    "of call %s", y->c->connid, x->c->connid);
		return -1;
	}
	return 0;
}

/* release_quietly - party i of c is released with cause; no one else told */
static void
release_quietly(struct vs *m, struct call *c, size_t i, const char *cause)
{
	char	 dn[DN_MAX];
	json_t	*ev;

	snprintf(dn, sizeof(dn), "%s", c->p[i].dn);
	ev = ev_call(m, "EventReleased", c, i, NULL);
	json_object_set_new(ev, "cause", json_string(cause));
	party_del(m, c, i);
	out(m, ev, dn);
}

/* req_complete_transfer - dn leaves both calls; its parties meet */
static void
req_complete_transfer(struct vs *m, const json_t *req)
{
	struct ctx	 x, y;
	char		 dn[DN_MAX], prev[17];
	size_t		 j, n;
	json_t		*ev;

	if (need_consult(m, req, &x, &y) == -1)
		return;
	snprintf(dn, sizeof(dn), "%s", x.dn);
	snprintf(prev, sizeof(prev), "%s", y.c->connid);
	release_quietly(m, x.c, x.i, "Transferred");
	release_quietly(m, y.c, y.i, "Transferred");
	n = x.c->np;
	move_parties(m, x.c, y.c, dn);
	if (talkers(x.c) < 2) {
		end_call(m, x.c, 0, NULL);
		return;
	}
	for (j = 0; j < x.c->np; j++) {
		if (!x.c->p[j].internal)
			continue;
		ev = ev_call(m, "EventPartyChanged", x.c, j, dn);
		if (j >= n)
			json_object_set_new(ev, "previousConnId",
			    json_string(prev));
		out(m, ev, x.c->p[j].dn);
	}
}

/* route_used - the routing point at party i of c routed the call to dest:
 * EventRouteUsed ends its part, as EventReleased would */
static void
route_used(struct vs *m, struct call *c, size_t i, const char *dest)
{
	char	 dn[DN_MAX];
	json_t	*ev;

	snprintf(dn, sizeof(dn), "%s", c->p[i].dn);
	ev = ev_call(m, "EventRouteUsed", c, i, dest);
	party_del(m, c, i);
	out(m, ev, dn);
}

/* need_routable - established or held; with route, also a call ringing
 * at a routing point (the routing worker routes those) */
static int
need_routable(struct vs *m, const struct ctx *x, int route)
{
	if (route && x->c->p[x->i].role == R_RP)
		return need_state(m, x, PS_RINGING, PS_ESTABLISHED);
	return need_state(m, x, PS_ESTABLISHED, PS_HELD);
}

/*
 * single_step - dn leaves; destination takes its place.  Both
 * RequestSingleStepTransfer and RequestRouteCall: a predictive call that
 * waits at its origination DN goes on to the agent; a routing point that
 * asked the routing worker leaves with EventRouteUsed, any other DN with
 * EventReleased.
 */
static void
single_step(struct vs *m, const json_t *req, int route)
{
	struct ctx	 x;
	const char	*dest;
	char		 dn[DN_MAX];
	size_t		 j, k;

	if (need_call(m, req, "connId", &x) == -1 ||
	    need_routable(m, &x, route) == -1 ||
	    str_field(m, req, x.dn, "destination", 1, DN_MAX, &dest) == -1 ||
	    check_dest(m, x.dn, dest) == -1)
		return;
	if (x.c->wait == W_AT_DN && x.c->p[x.i].role == R_ORIG) {
		x.c->wait = W_ROUTED;
		m->routed++;
		note(m, x.c, "routed by %s to %s", x.dn, dest);
	}
	snprintf(dn, sizeof(dn), "%s", x.dn);
	if (x.c->p[x.i].routed)
		route_used(m, x.c, x.i, dest);
	else
		release_quietly(m, x.c, x.i, "Transferred");
	if (talkers(x.c) == 0) {
		end_call(m, x.c, 0, NULL);
		return;
	}
	j = party_add(m, x.c, dest, PS_DIALING, R_DEST);
	for (k = 0; k < j; k++)
		out_call(m, "EventPartyChanged", x.c, k, dn, NULL);
	deliver(m, x.c, j, dn);
}

/* req_single_step - RequestSingleStepTransfer */
static void
req_single_step(struct vs *m, const json_t *req)
{
	single_step(m, req, 0);
}

/* req_route - RequestRouteCall */
static void
req_route(struct vs *m, const json_t *req)
{
	single_step(m, req, 1);
}

/* ---- predictive calls: the customers of an outbound dialler ---- */

/* draw_outcome - what the next called party does, by the mix's weights */
static enum vs_outcome
draw_outcome(struct vs *m)
{
	uint64_t	total = 0, r = rnd(m);
	size_t		i;

	for (i = 0; i < VS_OC_N; i++)
		total += m->p.mix[i];
	if (total == 0)
		return VS_OC_ANSWER;
	r %= total;
	for (i = 0; r >= m->p.mix[i]; i++)
		r -= m->p.mix[i];
	return (enum vs_outcome)i;
}

/* draw_ring - how long until a person or a machine answers: uniform */
static uint64_t
draw_ring(struct vs *m)
{
	uint64_t	lo = m->p.out_ring_min_ms, hi = m->p.out_ring_max_ms;
	uint64_t	r = rnd(m);

	return hi > lo ? lo + r % (hi - lo + 1) : lo;
}

/* pred_fields - ringTimeout (s, > 0, default 25) and cpd (default false) */
static int
pred_fields(struct vs *m, const json_t *req, const char *dn,
    uint64_t *timeout, int *cpd)
{
	json_t	*t = json_object_get(req, "ringTimeout");
	json_t	*d = json_object_get(req, "cpd");

	*timeout = 25000;
	*cpd = 0;
	if (t != NULL && !json_is_null(t)) {
		if (!json_is_number(t) || json_number_value(t) <= 0) {
			error(m, dn, "BadRequest", "ringTimeout must be a "
			    "positive number of seconds");
			return -1;
		}
		*timeout = (uint64_t)(json_number_value(t) * 1000);
	}
	if (d != NULL && !json_is_null(d)) {
		if (!json_is_boolean(d)) {
			error(m, dn, "BadRequest", "cpd must be true or false");
			return -1;
		}
		*cpd = json_is_true(d);
	}
	return 0;
}

/* check_customer - a predictive call dials outside numbers only */
static int
check_customer(struct vs *m, const char *dn, const char *dest)
{
	if (dir_dn(m->dir, dest) != NULL) {
		error(m, dn, "InvalidState", "destination %s is a DN of the "
		    "tenant: a predictive call dials outside numbers", dest);
		return -1;
	}
	if (!outside(m, dest)) {
		error(m, dn, "UnknownDN", "destination %s is not known to the "
		    "switch", dest);
		return -1;
	}
	return 0;
}

/*
 * req_predictive - RequestMakePredictiveCall: any DN of the tenant dials a
 * customer.  The outcome is drawn now (two draws per call, whatever the
 * outcome, so one call's number never shifts the next one's); busy
 * numbers (--external-busy, --busy-suffix) are Busy whatever was drawn; a
 * ring time past ringTimeout is NoAnswer at ringTimeout.
 */
static void
req_predictive(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	const char	*dest, *cid;
	const json_t	*ud;
	struct call	*c;
	enum vs_outcome	 oc;
	uint64_t	 timeout, ring, after;
	int		 cpd;
	size_t		 i;

	if (need_dn(m, req, &x) == -1 ||
	    str_field(m, req, x.dn, "destination", 1, DN_MAX, &dest) == -1 ||
	    str_field(m, req, x.dn, "callerId", 0, DN_MAX, &cid) == -1 ||
	    obj_field(m, req, x.dn, "userData", 0, &ud) == -1 ||
	    pred_fields(m, req, x.dn, &timeout, &cpd) == -1 ||
	    check_customer(m, x.dn, dest) == -1)
		return;
	oc = draw_outcome(m);
	ring = draw_ring(m);
	if (outside_busy(m, dest))
		oc = VS_OC_BUSY;
	if (outcomes[oc].kind == OK_EARLY)
		after = m->p.busy_after_ms;
	else if (outcomes[oc].kind == OK_RINGOUT || ring > timeout) {
		oc = VS_OC_NOANSWER;
		after = timeout;
	} else
		after = ring;
	c = call_new(m, CT_OUTBOUND, ud);
	c->pred = 1;
	c->cpd = cpd;
	c->oc = oc;
	m->npred++;
	i = party_add(m, c, x.dn, PS_DIALING, R_ORIG);
	party_add(m, c, dest, PS_RINGING, R_DEST);
	out_call(m, "EventDialing", c, i, NULL, NULL);
	schedule(m, after, T_PRED_RESULT, c->id, dest);
}

/*
 * pred_result - the called party i of predictive call c is heard from.  A
 * person, or a machine when CPD was not asked for, is established at the
 * origination DN with the callResult and waits there; anything else ends
 * the call with the result as the cause.
 */
static void
pred_result(struct vs *m, struct call *c, size_t i, enum vs_outcome oc)
{
	const char	*res = outcomes[oc].result;
	json_t		*ev;
	ssize_t		 o = other_party(c, i);

	m->results[oc]++;
	note(m, c, "%s -> %s: %s after %llu ms", o != -1 ? c->p[o].dn : "-",
	    c->p[i].dn, res, (unsigned long long)(m->now - c->p[i].since));
	if (outcomes[oc].kind != OK_PERSON &&
	    (outcomes[oc].kind != OK_DETECTED || c->cpd)) {
		end_call(m, c, 0, res);
		return;
	}
	c->established = 1;
	c->wait = W_AT_DN;
	c->p[i].state = PS_ESTABLISHED;
	c->p[i].since = m->now;
	if (o != -1) {
		c->p[o].state = PS_ESTABLISHED;
		c->p[o].since = m->now;
		ev = ev_call(m, "EventEstablished", c, (size_t)o, NULL);
		json_object_set_new(ev, "callResult", json_string(res));
		out(m, ev, c->p[o].dn);
	}
	if (m->p.out_patience_ms > 0)
		schedule(m, m->p.out_patience_ms, T_OUT_PATIENCE, c->id,
		    c->p[i].dn);
}

/* req_complete_conference - the consulted party joins the first call */
static void
req_complete_conference(struct vs *m, const json_t *req)
{
	struct ctx	 x, y;
	char		 dn[DN_MAX], prev[17], added[DN_MAX];
	ssize_t		 o;
	size_t		 j, n;
	json_t		*ev;

	if (need_consult(m, req, &x, &y) == -1)
		return;
	if ((o = other_party(y.c, y.i)) == -1 ||
	    y.c->p[o].state != PS_ESTABLISHED) {
		error(m, x.dn, "InvalidState", "consultation call %s is not "
		    "established", y.c->connid);
		return;
	}
	snprintf(dn, sizeof(dn), "%s", x.dn);
	snprintf(prev, sizeof(prev), "%s", y.c->connid);
	snprintf(added, sizeof(added), "%s", y.c->p[o].dn);
	release_quietly(m, y.c, y.i, "Normal");
	n = x.c->np;
	move_parties(m, x.c, y.c, dn);
	x.c->p[x.i].state = PS_ESTABLISHED;
	out_call(m, "EventRetrieved", x.c, x.i, NULL, NULL);
	for (j = 0; j < x.c->np; j++)
		x.c->p[j].role = R_CONF;
	for (j = 0; j < x.c->np; j++) {
		if (!x.c->p[j].internal)
			continue;
		ev = ev_call(m, "EventPartyAdded", x.c, j, added);
		if (j >= n)
			json_object_set_new(ev, "previousConnId",
			    json_string(prev));
		out(m, ev, x.c->p[j].dn);
	}
}

/* ---- attached data ---- */

/* data_changed - tell every party of c, dn first, its new userData */
static void
data_changed(struct vs *m, struct call *c, size_t i)
{
	size_t	j;

	out_call(m, "EventAttachedDataChanged", c, i, NULL, NULL);
	for (j = 0; j < c->np; j++)
		if (j != i)
			out_call(m, "EventAttachedDataChanged", c, j, NULL,
			    NULL);
}

/* attach - Attach adds keys the call lacks; Update adds and replaces */
static void
attach(struct vs *m, const json_t *req, int replace)
{
	struct ctx	 x;
	const json_t	*ud;

	if (need_call(m, req, "connId", &x) == -1 ||
	    obj_field(m, req, x.dn, "userData", 1, &ud) == -1)
		return;
	if (replace)
		json_object_update(x.c->ud, (json_t *)ud);
	else
		json_object_update_missing(x.c->ud, (json_t *)ud);
	data_changed(m, x.c, x.i);
}

/* req_attach - RequestAttachUserData */
static void
req_attach(struct vs *m, const json_t *req)
{
	attach(m, req, 0);
}

/* req_update - RequestUpdateUserData */
static void
req_update(struct vs *m, const json_t *req)
{
	attach(m, req, 1);
}

/* req_delete_data - RequestDeleteUserData: some keys, or all */
static void
req_delete_data(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	json_t		*keys, *k;
	size_t		 i;

	if (need_call(m, req, "connId", &x) == -1)
		return;
	keys = json_object_get(req, "keys");
	if (keys != NULL && !json_is_null(keys)) {
		json_array_foreach(keys, i, k)
			if (!json_is_string(k))
				break;
		if (!json_is_array(keys) || i < json_array_size(keys)) {
			error(m, x.dn, "BadRequest", "keys must be an array "
			    "of strings");
			return;
		}
		json_array_foreach(keys, i, k)
			json_object_del(x.c->ud, json_string_value(k));
	} else
		json_object_clear(x.c->ud);
	data_changed(m, x.c, x.i);
}

/* req_user_event - RequestSendUserEvent: EventUserEvent on dn */
static void
req_user_event(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	const json_t	*ud;
	json_t		*ev;

	if (need_dn(m, req, &x) == -1 ||
	    obj_field(m, req, x.dn, "userData", 1, &ud) == -1)
		return;
	ev = ev_new(m, "EventUserEvent", x.dn);
	json_object_set_new(ev, "userData", json_deep_copy(ud));
	out(m, ev, NULL);
}

/* ---- agent requests ---- */

/* mode_field - workMode, one of work_modes, or def when absent */
static int
mode_field(struct vs *m, const json_t *req, const char *dn, const char *def,
    const char **out)
{
	size_t	i;

	if (str_field(m, req, dn, "workMode", 0, MODE_MAX, out) == -1)
		return -1;
	if (*out == NULL) {
		*out = def;
		return 0;
	}
	for (i = 0; i < NELEM(work_modes); i++)
		if (strcmp(*out, work_modes[i]) == 0)
			return 0;
	error(m, dn, "BadRequest", "workMode %s is not one of Unknown, AutoIn, "
	    "ManualIn, AfterCallWork, AuxWork", *out);
	return -1;
}

/* need_agent - dn, with an agent logged in */
static struct line *
need_agent(struct vs *m, const json_t *req, struct ctx *x)
{
	struct line	*l;

	if (need_dn(m, req, x) == -1)
		return NULL;
	if ((l = line_get(m, x->dn)) == NULL)
		error(m, x->dn, "AgentNotLoggedIn", "no agent is logged in on "
		    "DN %s", x->dn);
	return l;
}

/* login - the agent logs in on dn; Ready at once in AutoIn or ManualIn */
static struct line *
login(struct vs *m, const char *dn, const char *agent, const char *mode)
{
	struct line	*l;

	l = line_add(m, dn, agent, mode);
	agent_event(m, "EventAgentLogin", l);
	if (strcmp(mode, "AutoIn") == 0 || strcmp(mode, "ManualIn") == 0)
		set_ready(m, l, mode);
	else
		set_not_ready(m, l, mode, NULL);
	return l;
}

/* req_login - RequestAgentLogin */
static void
req_login(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	const char	*agent, *mode;

	if (need_dn(m, req, &x) == -1 || need_phone(m, &x) == -1 ||
	    str_field(m, req, x.dn, "agentId", 1, ID_MAX, &agent) == -1 ||
	    mode_field(m, req, x.dn, "Unknown", &mode) == -1)
		return;
	if (!dir_login_ok(m->dir, agent, x.d->sw)) {
		error(m, x.dn, "UnknownAgent", "agent login %s is not known on "
		    "the switch of DN %s", agent, x.dn);
		return;
	}
	if (line_get(m, x.dn) != NULL || line_by_agent(m, agent) != NULL) {
		error(m, x.dn, "AgentAlreadyLoggedIn", "%s", line_get(m, x.dn) ?
		    "an agent is logged in on this DN already" :
		    "the agent is logged in on another DN");
		return;
	}
	login(m, x.dn, agent, mode);
}

/* req_logout - RequestAgentLogout */
static void
req_logout(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	struct line	*l;
	const char	*agent;
	json_t		*ev;

	if ((l = need_agent(m, req, &x)) == NULL ||
	    str_field(m, req, x.dn, "agentId", 0, ID_MAX, &agent) == -1)
		return;
	if (agent != NULL && strcmp(agent, l->agent) != 0) {
		error(m, x.dn, "AgentNotLoggedIn", "agent %s is not logged in "
		    "on DN %s", agent, x.dn);
		return;
	}
	ev = ev_new(m, "EventAgentLogout", l->dn);
	json_object_set_new(ev, "workMode", json_string(l->mode));
	line_del(m, l);
	out(m, ev, x.dn);
}

/* req_ready - RequestAgentReady; the generator lets go of the agent */
static void
req_ready(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	struct line	*l;
	const char	*mode;

	if ((l = need_agent(m, req, &x)) == NULL ||
	    mode_field(m, req, x.dn, strcmp(l->mode, "AutoIn") == 0 ?
	    "AutoIn" : "ManualIn", &mode) == -1)
		return;
	l->generated = 0;
	set_ready(m, l, mode);
}

/* req_not_ready - RequestAgentNotReady; the generator lets go of the agent */
static void
req_not_ready(struct vs *m, const json_t *req)
{
	struct ctx	 x;
	struct line	*l;
	const char	*mode, *reason = NULL;
	json_t		*r;
	char		 buf[32];

	if ((l = need_agent(m, req, &x)) == NULL ||
	    mode_field(m, req, x.dn, "Unknown", &mode) == -1)
		return;
	r = json_object_get(req, "reason");
	if (json_is_integer(r)) {
		snprintf(buf, sizeof(buf), "%lld",
		    (long long)json_integer_value(r));
		reason = buf;
	} else if (str_field(m, req, x.dn, "reason", 0, REASON_MAX,
	    &reason) == -1)
		return;
	l->generated = 0;
	set_not_ready(m, l, mode, reason);
}

/* ---- simulator requests: what the outside world does ---- */

/* inbound - a call from outside number from arrives at DN to */
static void
inbound(struct vs *m, const char *from, const char *to, const json_t *ud,
    uint64_t patience)
{
	struct call	*c;
	size_t		 j;

	c = call_new(m, CT_INBOUND, ud);
	party_add(m, c, from, PS_DIALING, R_ORIG);
	j = party_add(m, c, to, PS_DIALING, R_DEST);
	deliver(m, c, j, NULL);
	if (patience > 0)
		schedule(m, patience, T_PATIENCE, c->id, NULL);
}

/* req_sim_inbound - SimInboundCall: an outside caller calls a DN */
static void
req_sim_inbound(struct vs *m, const json_t *req)
{
	const struct dir_dn	*d;
	const char		*from, *to;
	const json_t		*ud;
	json_t			*pat;
	uint64_t		 patience = m->p.patience_ms;

	if (str_field(m, req, NULL, "to", 1, DN_MAX, &to) == -1 ||
	    str_field(m, req, to, "from", 0, DN_MAX, &from) == -1 ||
	    obj_field(m, req, to, "userData", 0, &ud) == -1)
		return;
	if (from == NULL)
		from = "+15550100";
	pat = json_object_get(req, "patience");
	if (pat != NULL && (!json_is_number(pat) ||
	    json_number_value(pat) < 0)) {
		error(m, to, "BadRequest", "patience must be a number of "
		    "seconds");
		return;
	}
	if (pat != NULL)
		patience = (uint64_t)(json_number_value(pat) * 1000);
	if ((d = dir_dn(m->dir, to)) == NULL || d->kind == VOICE_DN_OTHER) {
		error(m, to, "UnknownDN", "DN %s does not take calls", to);
		return;
	}
	if (d->kind == VOICE_DN_PHONE && dn_busy(m, to, 0)) {
		error(m, to, "Busy", "DN %s is busy", to);
		return;
	}
	inbound(m, from, to, ud, patience);
}

/* need_sim_call - the call of connId, and the party named by dn (or the
 * first outside party when dn is absent) */
static int
need_sim_call(struct vs *m, const json_t *req, struct ctx *x)
{
	const char	*connid;
	ssize_t		 i = -1;
	size_t		 k;

	if (str_field(m, req, NULL, "connId", 1, 17, &connid) == -1 ||
	    str_field(m, req, NULL, "dn", 0, DN_MAX, &x->dn) == -1)
		return -1;
	if ((x->c = call_by_connid(m, connid)) == NULL) {
		error(m, x->dn, "NoSuchCall", "no call %s", connid);
		return -1;
	}
	if (x->dn != NULL)
		i = party_find(x->c, x->dn);
	else
		for (k = 0; k < x->c->np && i == -1; k++)
			if (!x->c->p[k].internal)
				i = (ssize_t)k;
	if (i == -1) {
		error(m, x->dn, "NoSuchCall", "call %s has no %s party",
		    connid, x->dn ? x->dn : "outside");
		return -1;
	}
	x->i = (size_t)i;
	return 0;
}

/* req_sim_release - SimRelease: a party (the outside one) hangs up */
static void
req_sim_release(struct vs *m, const json_t *req)
{
	struct ctx	x;

	if (need_sim_call(m, req, &x) == -1)
		return;
	hang_up(m, x.c, x.i, "Normal");
}

/* req_sim_answer - SimAnswer: a ringing party (the outside one) answers now */
static void
req_sim_answer(struct vs *m, const json_t *req)
{
	struct ctx	x;

	if (need_sim_call(m, req, &x) == -1)
		return;
	if (x.c->p[x.i].state != PS_RINGING) {
		error(m, x.dn, "InvalidState", "party %s of call %s does not "
		    "ring", x.c->p[x.i].dn, x.c->connid);
		return;
	}
	if (x.c->pred && !x.c->established && !x.c->p[x.i].internal)
		pred_result(m, x.c, x.i, VS_OC_ANSWER);	/* a person */
	else
		answer(m, x.c, x.i);
}

/* ---- dispatch ---- */

static const struct {
	const char	*name;
	req_fn		*fn;
} requests[] = {
	{ "RequestAgentLogin", req_login },
	{ "RequestAgentLogout", req_logout },
	{ "RequestAgentReady", req_ready },
	{ "RequestAgentNotReady", req_not_ready },
	{ "RequestMakeCall", req_make_call },
	{ "RequestAnswerCall", req_answer },
	{ "RequestReleaseCall", req_release },
	{ "RequestHoldCall", req_hold },
	{ "RequestRetrieveCall", req_retrieve },
	{ "RequestInitiateTransfer", consult },
	{ "RequestCompleteTransfer", req_complete_transfer },
	{ "RequestSingleStepTransfer", req_single_step },
	{ "RequestInitiateConference", consult },
	{ "RequestCompleteConference", req_complete_conference },
	{ "RequestAttachUserData", req_attach },
	{ "RequestUpdateUserData", req_update },
	{ "RequestDeleteUserData", req_delete_data },
	{ "RequestSendUserEvent", req_user_event },
	{ "RequestMakePredictiveCall", req_predictive },
	{ "RequestRouteCall", req_route },
	{ "SimInboundCall", req_sim_inbound },
	{ "SimRelease", req_sim_release },
	{ "SimAnswer", req_sim_answer },
};

/* vs_request - answer one request; every path emits at least one event */
void
vs_request(struct vs *m, const json_t *req, uint64_t now)
{
	const char	*name, *rid;
	size_t		 i;

	m->now = m->wall = now;
	rid = json_string_value(json_object_get(req, "requestId"));
	name = json_string_value(json_object_get(req, "request"));
	if (!json_is_object(req) || rid == NULL || name == NULL) {
		vs_bad_request(m, rid, "a request needs request and requestId "
		    "strings", now);
		return;
	}
	m->reqid = rid;
	for (i = 0; i < NELEM(requests); i++)
		if (strcmp(name, requests[i].name) == 0)
			break;
	if (i < NELEM(requests))
		requests[i].fn(m, req);
	else
		error(m, json_string_value(json_object_get(req, "dn")),
		    "BadRequest", "unknown request %s", name);
	if (m->reqid != NULL)	/* a handler that said nothing: a bug */
		error(m, NULL, "InvalidState", "request had no effect");
	m->reqid = NULL;
	m->note = NULL;
	distribute(m);
}

/* vs_bad_request - EventError BadRequest for a request that did not parse */
void
vs_bad_request(struct vs *m, const char *rid, const char *msg, uint64_t now)
{
	m->now = m->wall = now;
	m->reqid = rid;
	error(m, NULL, "BadRequest", "%s", msg);
	m->reqid = NULL;
}

/* ---- timers and the traffic generator ---- */

/* arrival - a generated inbound call, and the next one scheduled */
static void
arrival(struct vs *m)
{
	const struct dir_dn	*d = NULL;
	enum voice_dn		 kind;
	json_t			*ud;
	char			 from[32];
	size_t			 n;

	schedule(m, draw(m, (uint64_t)(1000.0 / m->p.rate), VS_DIST_EXP) + 1,
	    T_ARRIVAL, 0, NULL);
	snprintf(from, sizeof(from), "+1555%07llu",
	    (unsigned long long)(rnd(m) % 10000000));
	ud = json_pack("{s:s, s:I}", "Segment", segments[rnd(m) % 3],
	    "CustomerId", (json_int_t)(rnd(m) % 1000000));
	if (m->p.target != NULL)
		d = dir_dn(m->dir, m->p.target);
	else {
		kind = dir_count(m->dir, VOICE_DN_RP) ? VOICE_DN_RP : VOICE_DN_QUEUE;
		if ((n = dir_count(m->dir, kind)) > 0)
			d = dir_nth(m->dir, kind, rnd(m) % n);
	}
	if (d != NULL && d->kind != VOICE_DN_OTHER &&
	    (d->kind != VOICE_DN_PHONE || !dn_busy(m, d->number, 0)))
		inbound(m, from, d->number, ud,
		    draw(m, m->p.patience_ms, VS_DIST_EXP) + 1);
	json_decref(ud);
}

/* wrap_end - a generated agent is done with after call work */
static void
wrap_end(struct vs *m, struct line *l)
{
	if (unif(m) < m->p.notready) {
		set_not_ready(m, l, "AuxWork",
		    break_reasons[rnd(m) % NELEM(break_reasons)]);
		schedule(m, draw(m, m->p.break_ms, m->p.dist), T_BREAK_END,
		    0, l->dn);
	} else
		set_ready(m, l, "AutoIn");
}

/* fire - one timer; calls and agents may have gone meanwhile */
static void
fire(struct vs *m, const struct timer *t)
{
	struct call	*c = t->call ? call_by_id(m, t->call) : NULL;
	struct line	*l = t->dn[0] ? line_get(m, t->dn) : NULL;
	ssize_t		 i = c != NULL && t->dn[0] ? party_find(c, t->dn) : -1;
	size_t		 k;

	switch (t->kind) {
	case T_EXT_ANSWER:
	case T_AUTO_ANSWER:
		if (i != -1 && c->p[i].state == PS_RINGING) {
			answer(m, c, (size_t)i);
			if (t->kind == T_AUTO_ANSWER)
				schedule(m, draw(m, m->p.talk_ms, m->p.dist) +
				    1, T_TALK_END, c->id, t->dn);
		}
		break;
	case T_PATIENCE:
		if (c == NULL || c->established)
			break;
		for (k = 0; k < c->np; k++)
			if (c->p[k].role == R_ORIG && !c->p[k].internal) {
				hang_up(m, c, k, "Abandoned");
				break;
			}
		break;
	case T_TALK_END:
		if (i != -1 && c->p[i].state == PS_ESTABLISHED)
			hang_up(m, c, (size_t)i, "Normal");
		break;
	case T_WRAP_END:
		if (l != NULL && l->generated && l->state == AS_NOTREADY &&
		    strcmp(l->mode, "AfterCallWork") == 0)
			wrap_end(m, l);
		break;
	case T_BREAK_END:
		if (l != NULL && l->generated && l->state == AS_NOTREADY)
			set_ready(m, l, "AutoIn");
		break;
	case T_ARRIVAL:
		arrival(m);
		break;
	case T_PRED_RESULT:
		if (i != -1 && c->p[i].state == PS_RINGING && !c->established)
			pred_result(m, c, (size_t)i, c->oc);
		break;
	case T_OUT_PATIENCE:
		/* answered, and still no agent: the customer hangs up */
		if (i != -1 && c->wait != W_NONE)
			hang_up(m, c, (size_t)i, "Abandoned");
		break;
	}
	m->note = NULL;
}

/* vs_run - fire the timers due by now, in order, each at its due time */
void
vs_run(struct vs *m, uint64_t now)
{
	struct timer	t;

	m->wall = now;
	while (m->nheap > 0 && m->heap[0].due <= now) {
		unschedule(m, &t);
		m->now = t.due;
		fire(m, &t);
		distribute(m);
	}
}

/* vs_synced - once the configuration is there, start the traffic */
void
vs_synced(struct vs *m, uint64_t now)
{
	struct dir_agent	*a;
	size_t			 i, n;
	unsigned		 done = 0;

	if (m->started)
		return;
	m->started = 1;
	m->now = m->wall = now;
	if (m->p.agents > 0) {
		n = dir_agents(m->dir, NULL, 0);
		a = xcalloc(n + 1, sizeof(*a));
		dir_agents(m->dir, a, n);
		for (i = 0; i < n && done < m->p.agents; i++) {
			if (line_get(m, a[i].dn) != NULL ||
			    line_by_agent(m, a[i].login) != NULL)
				continue;
			login(m, a[i].dn, a[i].login, "AutoIn")->generated = 1;
			done++;
		}
		free(a);
	}
	if (m->p.rate > 0)
		schedule(m, draw(m, (uint64_t)(1000.0 / m->p.rate),
		    VS_DIST_EXP) + 1, T_ARRIVAL, 0, NULL);
	distribute(m);
}
