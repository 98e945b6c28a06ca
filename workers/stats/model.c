/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model - agents by login code, DNs by number (each with its calls, or
 * for a queue the calls waiting), and the calls that entered a routing
 * point or queue (to time their answer).  Every instance in progress is
 * also on one list, to go through them.  A call waiting in a queue is
 * found by its connId, and a queue holds hundreds of them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "model.h"
#include "strmap.h"
#include "util.h"

enum mode { M_NONE = 0, M_READY, M_NOT_READY, M_ACW };
enum cstate { C_RINGING, C_DIALING, C_TALKING, C_HELD };

struct ninst {
	struct inst		 i;
	char			*agent;
	char			*dn;
	json_t			*ud;
	LIST_ENTRY(ninst)	 entry;
};

struct call {
	char		*conn;
	enum cstate	 state;
	char		*type;
	json_t		*ud;
	double		 since;
	struct ninst	*ring, *dial, *talk, *typed, *hold;
};

struct qcall {
	char		*conn;		/* routed: the interaction's id */
	double		 start;
	json_t		*ud;
	struct ninst	*wait;
	struct dn	*d;		/* the queue */
	size_t		 at;		/* in d->waiting */
	struct qcall	*next;		/* the same call in another queue */
	int		 routed;	/* a virtual queue's, from the routing
					 * events: not the voice side's */
};

struct dn {
	char		*number;
	char		*agent;		/* login code, or NULL */
	struct call	**calls;
	size_t		  ncalls;
	struct qcall	**waiting;
	size_t		  nwaiting;
};

struct agent {
	char		*id;
	char		*dn;		/* NULL when logged out */
	int		 logged_in;
	enum mode	 mode;
	char		*work_mode;
	char		*reason;
	const char	*state;		/* derived, a static string */
	double		 since;
	char		*conn;		/* the call the state is about */
	struct ninst	*login;
	struct ninst	*mode_inst;
};

/* An interaction of a virtual queue, from the routing events, until it
 * ends: waiting (q), or with an agent. */
enum vstate { V_WAITING = 0, V_RESERVED, V_ACCEPTED, V_ENDED };

struct vix {
	char		*id;
	char		*vq;		/* the VirtualQueue DN's number */
	char		*conn;		/* a routing point's call, or NULL */
	char		*rp;		/* that routing point, or NULL */
	enum vstate	 st;
	double		 created;
	struct qcall	*q;		/* while waiting */
};

/* A call that entered a routing point or a queue, until answered. */
struct entry {
	char		*conn;
	char		*rp;
	char		*queue;
	double		 t;
};

struct model {
	struct model_cbs	 cbs;
	void			*arg;
	struct strmap		 agents, dns, entries;
	struct strmap		 waiting;	/* connId -> qcall list */
	struct strmap		 vixs;		/* interaction id -> vix */
	LIST_HEAD(, ninst)	 live;
	uint64_t		 next_id;
	size_t			 ncalls;
	int			 repeat;	/* for the next instant */
	const char		*prior;		/* the same */
};

static const char *const action_names[A_COUNT] = {
	"LoggedIn", "Ready", "NotReady", "AfterCallWork", "Ringing",
	"Dialing", "Talking", "CallInbound", "CallOutbound", "CallInternal",
	"CallConsult", "OnHold", "CallAnswered", "CallWaiting", "CallEntered",
	"CallDistributed", "CallAbandoned",
};

const char *
action_name(enum action a)
{
	return (unsigned)a < A_COUNT ? action_names[a] : "?";
}

int
action_by_name(const char *s)
{
	int	i;

	for (i = 0; i < A_COUNT; i++)
		if (strcmp(action_names[i], s) == 0)
			return i;
	return -1;
}

int
action_is_instant(enum action a)
{
	return a == A_ANSWERED || a == A_ENTERED || a == A_DISTRIBUTED ||
	    a == A_ABANDONED;
}

/* ---- instances ---- */

static struct ninst *
inst_new(struct model *m, enum action a, int of_agent, const char *agent,
    const char *dn, double t, json_t *ud)
{
	struct ninst	*n = xcalloc(1, sizeof(*n));

	n->agent = agent != NULL ? xstrdup(agent) : NULL;
	n->dn = dn != NULL ? xstrdup(dn) : NULL;
	n->ud = json_incref(ud);
	n->i.id = ++m->next_id;
	n->i.a = a;
	n->i.of_agent = of_agent;
	n->i.agent = n->agent;
	n->i.dn = n->dn;
	n->i.start = t;
	n->i.user_data = n->ud;
	return n;
}

static void
inst_free(struct ninst *n)
{
	free(n->agent);
	free(n->dn);
	json_decref(n->ud);
	free(n);
}

/* start - an action begins; quiet: restoring, no callback */
static struct ninst *
start(struct model *m, enum action a, int of_agent, const char *agent,
    const char *dn, double t, json_t *ud, int quiet)
{
	struct ninst	*n = inst_new(m, a, of_agent, agent, dn, t, ud);

	LIST_INSERT_HEAD(&m->live, n, entry);
	if (!quiet && m->cbs.start != NULL)
		m->cbs.start(&n->i, m->arg);
	return n;
}

static void
end(struct model *m, struct ninst **np, double t)
{
	struct ninst	*n = *np;

	if (n == NULL)
		return;
	*np = NULL;
	LIST_REMOVE(n, entry);
	if (m->cbs.end != NULL)
		m->cbs.end(&n->i, t < n->i.start ? n->i.start : t, m->arg);
	inst_free(n);
}

/* instant - an action happens at t; nothing of it is kept */
static void
instant(struct model *m, enum action a, int of_agent, const char *agent,
    const char *dn, double t, double duration, json_t *ud)
{
	struct inst	i;

	memset(&i, 0, sizeof(i));
	i.id = ++m->next_id;
	i.a = a;
	i.of_agent = of_agent;
	i.agent = agent;
	i.dn = dn;
	i.start = t;
	i.user_data = ud;
	i.repeat = m->repeat;
	i.prior = m->prior;
	m->repeat = 0;
	m->prior = NULL;
	if (m->cbs.instant != NULL)
		m->cbs.instant(&i, duration < 0 ? 0 : duration, m->arg);
}

/* ---- lookups ---- */

static struct dn *
dn_get(struct model *m, const char *number)
{
	struct dn	*d = strmap_get(&m->dns, number);

	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->number = xstrdup(number);
		strmap_put(&m->dns, number, d);
	}
	return d;
}

static struct agent *
agent_get(struct model *m, const char *id)
{
	struct agent	*a = strmap_get(&m->agents, id);

	if (a == NULL) {
		a = xcalloc(1, sizeof(*a));
		a->id = xstrdup(id);
		a->state = "LoggedOut";
		strmap_put(&m->agents, id, a);
	}
	return a;
}

static struct call *
call_find(struct dn *d, const char *conn, size_t *at)
{
	size_t	i;

	for (i = 0; i < d->ncalls; i++)
		if (strcmp(d->calls[i]->conn, conn) == 0) {
			if (at != NULL)
				*at = i;
			return d->calls[i];
		}
	return NULL;
}

static struct call *
call_get(struct model *m, struct dn *d, const char *conn, double t)
{
	struct call	*c = call_find(d, conn, NULL);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->conn = xstrdup(conn);
		c->since = t;
		c->state = C_RINGING;
		d->calls = xrealloc(d->calls, (d->ncalls + 1) *
		    sizeof(*d->calls));
		d->calls[d->ncalls++] = c;
		m->ncalls++;
	}
	return c;
}

static const char *
dn_agent_id(const struct dn *d)
{
	return d->agent;
}

/* ---- agents ---- */

static const char *
state_of_call(const struct call *c)
{
	switch (c->state) {
	case C_RINGING:	return "Ringing";
	case C_DIALING:	return "Dialing";
	case C_TALKING:	return "Talking";
	default:	return "OnHold";
	}
}

/* derive - the agent's state: its most active call, else its mode */
static const char *
derive(struct model *m, const struct agent *a, const char **conn)
{
	static const enum cstate order[] = { C_TALKING, C_DIALING, C_RINGING,
	    C_HELD };
	struct dn	*d;
	size_t		 i, k;

	*conn = NULL;
	if (!a->logged_in)
		return "LoggedOut";
	if ((d = strmap_get(&m->dns, a->dn)) != NULL)
		for (k = 0; k < NELEM(order); k++)
			for (i = 0; i < d->ncalls; i++)
				if (d->calls[i]->state == order[k]) {
					*conn = d->calls[i]->conn;
					return state_of_call(d->calls[i]);
				}
	switch (a->mode) {
	case M_READY:		return "Ready";
	case M_ACW:		return "AfterCallWork";
	default:		return "NotReady";
	}
}

/*
 * refresh - the agent's mode instance and derived state, after a change;
 * 1 when the state callback was told
 */
static int
refresh(struct model *m, struct agent *a, double t)
{
	enum action	 want = A_COUNT;
	struct dn	*d = a->dn != NULL ? strmap_get(&m->dns, a->dn) : NULL;
	const char	*st, *conn;

	if (a->logged_in) {
		if (a->mode == M_READY && (d == NULL || d->ncalls == 0))
			want = A_READY;
		else if (a->mode == M_NOT_READY)
			want = A_NOT_READY;
		else if (a->mode == M_ACW)
			want = A_ACW;
	}
	if (a->mode_inst != NULL && a->mode_inst->i.a != want)
		end(m, &a->mode_inst, t);
	if (a->mode_inst == NULL && want != A_COUNT)
		a->mode_inst = start(m, want, 1, a->id, a->dn, t, NULL, 0);
	st = derive(m, a, &conn);
	if (st != a->state || (conn == NULL) != (a->conn == NULL) ||
	    (conn != NULL && strcmp(conn, a->conn) != 0)) {
		if (st != a->state)
			a->since = t;
		a->state = st;
		free(a->conn);
		a->conn = conn != NULL ? xstrdup(conn) : NULL;
		if (m->cbs.state != NULL)
			m->cbs.state(a->id, m->arg);
		return 1;
	}
	return 0;
}

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL ? xstrdup(s) : NULL;
}

/* same - two strings, either NULL, equal */
static int
same(const char *x, const char *y)
{
	return x == NULL || y == NULL ? x == y : strcmp(x, y) == 0;
}

static void
agent_logout(struct model *m, struct agent *a, double t)
{
	struct dn	*d;

	if (!a->logged_in)
		return;
	a->logged_in = 0;
	a->mode = M_NONE;
	refresh(m, a, t);
	end(m, &a->login, t);
	if ((d = strmap_get(&m->dns, a->dn)) != NULL && d->agent != NULL &&
	    strcmp(d->agent, a->id) == 0)
		set_str(&d->agent, NULL);
	set_str(&a->dn, NULL);
}

/* A new login starts with its own workMode and no reason of the last. */
static void
agent_login(struct model *m, struct agent *a, const char *dn, const char *wm,
    double t)
{
	struct dn	*d = dn_get(m, dn);

	if (a->logged_in && strcmp(a->dn, dn) == 0)
		return;
	agent_logout(m, a, t);
	if (d->agent != NULL && strcmp(d->agent, a->id) != 0)
		agent_logout(m, agent_get(m, d->agent), t);
	set_str(&d->agent, a->id);
	set_str(&a->dn, dn);
	set_str(&a->work_mode, wm);
	set_str(&a->reason, NULL);
	a->logged_in = 1;
	a->mode = M_NOT_READY;
	a->login = start(m, A_LOGGED_IN, 1, a->id, dn, t, NULL, 0);
	refresh(m, a, t);
}

static void
on_agent_event(struct model *m, const char *name,
    const struct model_event *e, const char *dn, double t)
{
	const char	*id = e->agent_id;
	const char	*wm = e->work_mode;
	const char	*reason = e->reason;
	const char	*why = NULL;
	struct agent	*a;
	int		 changed;

	if (id == NULL) {
		struct dn	*d = strmap_get(&m->dns, dn);

		if (d == NULL || (id = d->agent) == NULL)
			return;
	}
	a = agent_get(m, id);
	if (strcmp(name, "EventAgentLogout") == 0) {
		agent_logout(m, a, t);
		return;
	}
	/* A state without a login seen: the agent was there already. */
	agent_login(m, a, dn, wm, t);
	if (strcmp(name, "EventAgentReady") == 0)
		a->mode = M_READY;
	else if (strcmp(name, "EventAgentNotReady") == 0) {
		a->mode = wm != NULL && strcmp(wm, "AfterCallWork") == 0 ?
		    M_ACW : M_NOT_READY;
		why = reason;
	} else
		return;
	/* A new reason or workMode in the same state is a new value too. */
	changed = !same(a->reason, why) || !same(a->work_mode, wm);
	set_str(&a->reason, why);
	set_str(&a->work_mode, wm);
	if (!refresh(m, a, t) && changed && m->cbs.state != NULL)
		m->cbs.state(a->id, m->arg);
}

/* ---- calls on phones ---- */

static struct entry *
entry_get(struct model *m, const char *conn, double t)
{
	struct entry	*en = strmap_get(&m->entries, conn);

	if (en == NULL) {
		en = xcalloc(1, sizeof(*en));
		en->conn = xstrdup(conn);
		en->t = t;
		strmap_put(&m->entries, conn, en);
	}
	return en;
}

static void
entry_drop(struct model *m, const char *conn)
{
	struct entry	*en = strmap_del(&m->entries, conn);

	if (en == NULL)
		return;
	free(en->conn);
	free(en->rp);
	free(en->queue);
	free(en);
}

static void
call_free(struct model *m, struct call *c, double t)
{
	end(m, &c->hold, t);
	end(m, &c->ring, t);
	end(m, &c->dial, t);
	end(m, &c->typed, t);
	end(m, &c->talk, t);
	free(c->conn);
	free(c->type);
	json_decref(c->ud);
	free(c);
	m->ncalls--;
}

static void
call_remove(struct model *m, struct dn *d, size_t at, double t)
{
	struct call	*c = d->calls[at];

	d->calls[at] = d->calls[--d->ncalls];
	call_free(m, c, t);
}

static enum action
typed_action(const char *type)
{
	if (type == NULL)
		return A_INTERNAL;
	if (strcmp(type, "Inbound") == 0)
		return A_INBOUND;
	if (strcmp(type, "Outbound") == 0)
		return A_OUTBOUND;
	if (strcmp(type, "Consult") == 0)
		return A_CONSULT;
	return A_INTERNAL;
}

/* answered - an inbound call was answered at an agent's phone */
static void
answered(struct model *m, struct dn *d, struct call *c, double t)
{
	struct entry	*en = strmap_get(&m->entries, c->conn);
	double		 since = en != NULL ? en->t : c->since;

	instant(m, A_ANSWERED, 1, dn_agent_id(d), d->number, t, t - since,
	    c->ud);
	/* The queue's and the routing point's copies: counted already. */
	if (en != NULL && en->queue != NULL) {
		m->repeat = 1;
		instant(m, A_ANSWERED, 0, NULL, en->queue, t, t - since, c->ud);
	}
	if (en != NULL && en->rp != NULL) {
		m->repeat = 1;
		m->prior = en->queue;
		instant(m, A_ANSWERED, 0, NULL, en->rp, t, t - since, c->ud);
	}
	entry_drop(m, c->conn);
}

static void
on_phone_event(struct model *m, const char *name,
    const struct model_event *e, struct dn *d, double t)
{
	const char	*conn = e->conn_id;
	const char	*prev = e->prev_conn_id;
	const char	*type = e->call_type;
	const json_t	*ud = e->user_data;
	const char	*agent = dn_agent_id(d);
	struct call	*c, *p;
	size_t		 at;
	int		 had_call = d->ncalls > 0;

	if (conn == NULL)
		return;
	if (prev != NULL && strcmp(prev, conn) != 0 &&
	    (p = call_find(d, prev, &at)) != NULL) {
		if (call_find(d, conn, NULL) != NULL)
			call_remove(m, d, at, t);
		else
			set_str(&p->conn, conn);	/* merged into conn */
	}
	if (strcmp(name, "EventReleased") == 0 ||
	    strcmp(name, "EventAbandoned") == 0) {
		if (call_find(d, conn, &at) != NULL)
			call_remove(m, d, at, t);
		entry_drop(m, conn);
		goto done;
	}
	if (strcmp(name, "EventRinging") != 0 &&
	    strcmp(name, "EventDialing") != 0 &&
	    call_find(d, conn, NULL) == NULL &&
	    strcmp(name, "EventEstablished") != 0)
		return;		/* about a call we do not follow */
	c = call_get(m, d, conn, t);
	if (ud != NULL) {
		json_decref(c->ud);
		c->ud = json_deep_copy(ud);
	}
	if (type != NULL && c->type == NULL)
		set_str(&c->type, type);
	if (strcmp(name, "EventRinging") == 0) {
		if (c->ring == NULL && c->talk == NULL)
			c->ring = start(m, A_RINGING, 1, agent, d->number, t,
			    c->ud, 0);
		c->state = C_RINGING;
	} else if (strcmp(name, "EventDialing") == 0) {
		if (c->dial == NULL && c->talk == NULL)
			c->dial = start(m, A_DIALING, 1, agent, d->number, t,
			    c->ud, 0);
		c->state = C_DIALING;
	} else if (strcmp(name, "EventEstablished") == 0) {
		int	rang = c->ring != NULL;

		end(m, &c->ring, t);
		end(m, &c->dial, t);
		if (c->talk == NULL) {
			c->talk = start(m, A_TALKING, 1, agent, d->number, t,
			    c->ud, 0);
			c->typed = start(m, typed_action(c->type), 1, agent,
			    d->number, t, c->ud, 0);
			if (c->type != NULL && strcmp(c->type, "Inbound") == 0 &&
			    (rang || strmap_get(&m->entries, conn) != NULL))
				answered(m, d, c, t);
		}
		c->state = C_TALKING;
	} else if (strcmp(name, "EventHeld") == 0) {
		if (c->hold == NULL)
			c->hold = start(m, A_ON_HOLD, 1, agent, d->number, t,
			    c->ud, 0);
		c->state = C_HELD;
	} else if (strcmp(name, "EventRetrieved") == 0) {
		end(m, &c->hold, t);
		c->state = c->talk != NULL ? C_TALKING : c->state;
	}
done:
	if (agent != NULL && (had_call || d->ncalls > 0))
		refresh(m, agent_get(m, agent), t);
}

/* ---- queues and routing points ---- */

/* qcall_find - the call conn waiting in queue d, or NULL */
static struct qcall *
qcall_find(const struct model *m, const struct dn *d, const char *conn)
{
	struct qcall	*q;

	for (q = strmap_get(&m->waiting, conn); q != NULL; q = q->next)
		if (q->d == d)
			return q;
	return NULL;
}

/* qcall_add - the call conn waits in queue d from t; quiet: restoring */
static struct qcall *
qcall_add(struct model *m, struct dn *d, const char *conn, double t,
    const json_t *ud, int quiet)
{
	struct qcall	*q = xcalloc(1, sizeof(*q));

	q->conn = xstrdup(conn);
	q->start = t;
	q->ud = ud != NULL ? json_deep_copy(ud) : NULL;
	q->d = d;
	q->wait = start(m, A_WAITING, 0, NULL, d->number, t, q->ud, quiet);
	d->waiting = xrealloc(d->waiting, (d->nwaiting + 1) *
	    sizeof(*d->waiting));
	q->at = d->nwaiting;
	d->waiting[d->nwaiting++] = q;
	q->next = strmap_get(&m->waiting, conn);
	strmap_put(&m->waiting, conn, q);
	return q;
}

/* qcall_remove - the call leaves its queue at t */
static void
qcall_remove(struct model *m, struct qcall *q, double t)
{
	struct dn	*d = q->d;
	struct qcall	*p = strmap_get(&m->waiting, q->conn);

	d->waiting[q->at] = d->waiting[--d->nwaiting];
	d->waiting[q->at]->at = q->at;
	if (p == q) {
		if (q->next != NULL)
			strmap_put(&m->waiting, q->conn, q->next);
		else
			strmap_del(&m->waiting, q->conn);
	} else {
		while (p->next != q)
			p = p->next;
		p->next = q->next;
	}
	end(m, &q->wait, t);
	free(q->conn);
	json_decref(q->ud);
	free(q);
}

static void
on_queue_event(struct model *m, const char *name,
    const struct model_event *e, struct dn *d, int rp, double t)
{
	const char	*conn = e->conn_id;
	json_t		*ud = (json_t *)e->user_data;
	struct entry	*en;
	struct qcall	*q;
	double		 since;

	if (conn == NULL)
		return;
	if (rp) {
		en = strmap_get(&m->entries, conn);
		since = en != NULL ? en->t : t;
		/* A routing point the switch routes: EventRinging, then
		 * EventDiverted; one the routing worker routes:
		 * EventRouteRequest, then EventRouteUsed */
		if (strcmp(name, "EventRinging") == 0 ||
		    strcmp(name, "EventRouteRequest") == 0) {
			m->repeat = en != NULL;		/* entered before */
			m->prior = en != NULL ? (en->rp != NULL ? en->rp :
			    en->queue) : NULL;
			en = entry_get(m, conn, t);
			if (en->rp == NULL)
				en->rp = xstrdup(d->number);
			instant(m, A_ENTERED, 0, NULL, d->number, t, 0, ud);
		} else if (strcmp(name, "EventDiverted") == 0 ||
		    strcmp(name, "EventRouteUsed") == 0)
			instant(m, A_DISTRIBUTED, 0, NULL, d->number, t,
			    t - since, ud);
		else if (strcmp(name, "EventAbandoned") == 0) {
			instant(m, A_ABANDONED, 0, NULL, d->number, t,
			    t - since, ud);
			entry_drop(m, conn);
		} else if (strcmp(name, "EventReleased") == 0)
			entry_drop(m, conn);	/* gone: never answered */
		return;
	}
	q = qcall_find(m, d, conn);
	if (strcmp(name, "EventQueued") == 0) {
		if (q != NULL)
			return;
		en = strmap_get(&m->entries, conn);
		m->repeat = en != NULL;
		m->prior = en != NULL ? (en->queue != NULL ? en->queue :
		    en->rp) : NULL;
		en = entry_get(m, conn, t);
		if (en->queue == NULL)
			en->queue = xstrdup(d->number);
		q = qcall_add(m, d, conn, t, ud, 0);
		instant(m, A_ENTERED, 0, NULL, d->number, t, 0, q->ud);
		return;
	}
	if (q == NULL)
		return;
	if (strcmp(name, "EventDiverted") == 0) {
		instant(m, A_DISTRIBUTED, 0, NULL, d->number, t, t - q->start,
		    q->ud);
		qcall_remove(m, q, t);
	} else if (strcmp(name, "EventAbandoned") == 0) {
		instant(m, A_ABANDONED, 0, NULL, d->number, t, t - q->start,
		    q->ud);
		qcall_remove(m, q, t);
		entry_drop(m, conn);
	} else if (strcmp(name, "EventReleased") == 0) {
		qcall_remove(m, q, t);
		entry_drop(m, conn);
	} else if (strcmp(name, "EventAttachedDataChanged") == 0 &&
	    ud != NULL) {
		json_decref(q->ud);
		q->ud = json_deep_copy(ud);
	}
}

/*
 * ---- virtual queues: the routing events ----
 *
 * The routing worker's interactions wait in virtual queues; its events
 * say which state each one is in after them (docs/stats.md "Virtual
 * queues").  The model keeps each interaction it knows (vix) and turns
 * the change of state into the actions a voice call has at an ACD queue:
 * waiting (CallWaiting, CallEntered), waiting no more because an agent
 * was reserved (CallDistributed), or because it ended (CallAbandoned);
 * returned to the queue (a reservation rejected or run out), it enters
 * again.  A routing point's call is linked to the call's entry, as a
 * queue's call is, so that its answer is the virtual queue's too; an
 * interaction that is not a call is answered when it is accepted.
 */

static enum vstate
vstate_of(const char *s)
{
	if (strcmp(s, "queued") == 0)
		return V_WAITING;
	if (strcmp(s, "reserved") == 0)
		return V_RESERVED;
	if (strcmp(s, "accepted") == 0)
		return V_ACCEPTED;
	return V_ENDED;
}

/* model_vq_event_of - the members of a routing event the model reads; -1
 * when it lacks one it needs (id, state, the virtual queue) */
int
model_vq_event_of(const json_t *e, struct model_vq_event *ev)
{
	const json_t	*doc = json_object_get(e, "interaction");
	const json_t	*ud = json_object_get(doc, "userData");

	memset(ev, 0, sizeof(*ev));
	ev->type = json_string_value(json_object_get(e, "type"));
	ev->id = json_string_value(json_object_get(e, "id"));
	ev->state = json_string_value(json_object_get(e, "state"));
	ev->vq = json_string_value(json_object_get(doc, "virtualQueue"));
	ev->vq_dbid = json_integer_value(json_object_get(doc, "vq"));
	ev->conn = json_string_value(json_object_get(doc, "connId"));
	ev->rp = json_string_value(json_object_get(doc, "routingPoint"));
	ev->restored = json_is_true(json_object_get(e, "restored"));
	ev->at = json_number_value(json_object_get(e, "at")) / 1000.0;
	ev->created = json_number_value(json_object_get(e, "created")) /
	    1000.0;
	ev->user_data = json_is_object(ud) ? ud : NULL;
	return ev->id != NULL && ev->state != NULL && ev->vq != NULL &&
	    ev->vq[0] != '\0' ? 0 : -1;
}

static struct vix *
vix_new(struct model *m, const struct model_vq_event *e, enum vstate st,
    double t)
{
	struct vix	*x = xcalloc(1, sizeof(*x));

	x->id = xstrdup(e->id);
	x->vq = xstrdup(e->vq);
	x->conn = e->conn != NULL ? xstrdup(e->conn) : NULL;
	x->rp = e->rp != NULL ? xstrdup(e->rp) : NULL;
	x->st = st;
	x->created = e->created > 0 && e->created <= t ? e->created : t;
	strmap_put(&m->vixs, x->id, x);
	return x;
}

static void
vix_free(struct vix *x)
{
	free(x->id);
	free(x->vq);
	free(x->conn);
	free(x->rp);
	free(x);
}

/* vq_wait - x waits in its queue from t; quiet: restoring */
static void
vq_wait(struct model *m, struct vix *x, double t, const json_t *ud,
    int quiet)
{
	x->q = qcall_add(m, dn_get(m, x->vq), x->id, t, ud, quiet);
	x->q->routed = 1;
}

/* vq_unwait - x waits no more, at t */
static void
vq_unwait(struct model *m, struct vix *x, double t)
{
	if (x->q != NULL)
		qcall_remove(m, x->q, t);
	x->q = NULL;
}

/*
 * vq_enter - x enters its queue at t, and waits.  The first time, a
 * routing point's call counts as a call queued there counts (its entry
 * says whether the tenant had it before); again (back from an agent),
 * only the queue counts it again.
 */
static void
vq_enter(struct model *m, struct vix *x, const json_t *ud, double t,
    int again)
{
	struct entry	*en;

	if (again) {
		m->repeat = 1;
		m->prior = x->vq;
	} else if (x->conn != NULL) {
		en = strmap_get(&m->entries, x->conn);
		m->repeat = en != NULL;
		m->prior = en != NULL ? (en->queue != NULL ? en->queue :
		    en->rp) : NULL;
		en = entry_get(m, x->conn, t);
		if (en->queue == NULL)
			en->queue = xstrdup(x->vq);
	}
	vq_wait(m, x, t, ud, 0);
	instant(m, A_ENTERED, 0, NULL, x->vq, t, 0, x->q->ud);
}

/* vq_forget - x ended: a call's entry no longer names its queue (a
 * queue it goes to next may), and x is gone */
static void
vq_forget(struct model *m, struct vix *x, double t)
{
	struct entry	*en;

	vq_unwait(m, x, t);
	if (x->conn != NULL && (en = strmap_get(&m->entries, x->conn)) !=
	    NULL && en->queue != NULL && strcmp(en->queue, x->vq) == 0) {
		free(en->queue);
		en->queue = NULL;
		if (en->rp == NULL)
			entry_drop(m, x->conn);
	}
	strmap_del(&m->vixs, x->id);
	vix_free(x);
}

/* vq_answered - accepted: an interaction that is not a call is answered
 * (a call is answered at the agent's phone, and the voice events say) */
static void
vq_answered(struct model *m, struct vix *x, const json_t *ud, double t)
{
	if (x->conn == NULL)
		instant(m, A_ANSWERED, 0, NULL, x->vq, t, t - x->created,
		    (json_t *)ud);
}

/* vq_left - x waited and an agent was reserved (to), or it ended */
static void
vq_left(struct model *m, struct vix *x, const struct model_vq_event *e,
    enum vstate to, double t)
{
	double	waited = t - x->q->start;

	if (to == V_ENDED) {
		/* A caller who hung up at a routing point is that routing
		 * point's abandon first. */
		if (x->conn != NULL && x->rp != NULL && e->type != NULL &&
		    strcmp(e->type, "abandoned") == 0) {
			m->repeat = 1;
			m->prior = x->rp;
		}
		instant(m, A_ABANDONED, 0, NULL, x->vq, t, waited, x->q->ud);
		return;
	}
	instant(m, A_DISTRIBUTED, 0, NULL, x->vq, t, waited, x->q->ud);
}

/*
 * model_apply_vq - one routing event: the interaction's state before
 * (what the model knows: none, waiting, with an agent) and after (what
 * the event says) make its actions.  t: its time when it has none.
 */
void
model_apply_vq(struct model *m, const struct model_vq_event *e, double t)
{
	struct vix	*x = strmap_get(&m->vixs, e->id);
	enum vstate	 to = vstate_of(e->state);
	const json_t	*ud = e->user_data;

	if (e->at > 0)
		t = e->at;
	if (x != NULL && strcmp(x->vq, e->vq) != 0) {
		vq_forget(m, x, t);	/* moved: it left the other queue */
		x = NULL;
	}
	if (x == NULL) {
		if (to == V_ENDED)
			return;
		x = vix_new(m, e, to, t);
		if (to == V_WAITING && e->restored)	/* counted before */
			vq_wait(m, x, x->created, ud, 0);
		else if (to == V_WAITING)
			vq_enter(m, x, ud, t, 0);
		return;		/* with an agent already: missed, not made up */
	}
	if (x->q != NULL && ud != NULL) {
		json_decref(x->q->ud);
		x->q->ud = json_deep_copy(ud);
	}
	if (x->st == V_WAITING && to != V_WAITING) {
		vq_left(m, x, e, to, t);
		vq_unwait(m, x, t);
	} else if (x->st != V_WAITING && to == V_WAITING)
		vq_enter(m, x, ud, t, 1);
	if (to == V_ACCEPTED && x->st != V_ACCEPTED)
		vq_answered(m, x, ud, t);
	if (to == V_ENDED)
		vq_forget(m, x, t);
	else
		x->st = to;
}

struct vq_recon {
	struct model	*m;
	const json_t	*listed;	/* id -> its state's event */
	double		 t;
	size_t		 ended, taken;
};

/* vq_check_one - x ends unless the routing state lists it, in its queue */
static void
vq_check_one(const char *id, void *v, void *arg)
{
	struct vq_recon		*rc = arg;
	struct vix		*x = v;
	struct model_vq_event	 e;
	const json_t		*o = json_object_get(rc->listed, id);

	if (o != NULL && model_vq_event_of(o, &e) == 0 &&
	    vstate_of(e.state) != V_ENDED && strcmp(e.vq, x->vq) == 0)
		return;
	vq_forget(rc->m, x, rc->t);
	rc->ended++;
}

/* vq_take - one interaction the routing state lists: known in that
 * state, or made so (waiting since it was created, or since now when it
 * came back from an agent) */
static void
vq_take(struct vq_recon *rc, const json_t *o)
{
	struct model_vq_event	 e;
	struct vix		*x;
	enum vstate		 to;

	if (model_vq_event_of(o, &e) == -1 || (to = vstate_of(e.state)) ==
	    V_ENDED)
		return;
	if ((x = strmap_get(&rc->m->vixs, e.id)) == NULL) {
		x = vix_new(rc->m, &e, to, rc->t);
		if (to == V_WAITING)
			vq_wait(rc->m, x, x->created, e.user_data, 0);
		rc->taken++;
		return;
	}
	if (x->st == to || (x->st != V_WAITING && to != V_WAITING)) {
		x->st = to;
		return;
	}
	if (to == V_WAITING)
		vq_wait(rc->m, x, rc->t, e.user_data, 0);
	else
		vq_unwait(rc->m, x, rc->t);
	x->st = to;
	rc->taken++;
}

/*
 * model_vq_reconcile - after routing events were missed: the virtual
 * queues' interactions as the routing state lists them (an array of
 * their states, as its events carry them) at t.  What the model holds and
 * the list does not (or in another queue) ends; what the list holds is
 * taken in, in its state.  Instants missed are not made up.
 */
void
model_vq_reconcile(struct model *m, const json_t *live, double t,
    size_t *ended, size_t *taken)
{
	struct vq_recon	 rc = { m, NULL, t, 0, 0 };
	json_t		*listed = json_object();
	const json_t	*o;
	const char	*id;
	size_t		 i;

	json_array_foreach(live, i, o)
		if ((id = json_string_value(json_object_get(o, "id"))) != NULL)
			json_object_set(listed, id, (json_t *)o);
	rc.listed = listed;
	strmap_each(&m->vixs, vq_check_one, &rc);
	json_array_foreach(live, i, o)
		vq_take(&rc, o);
	json_decref(listed);
	*ended = rc.ended;
	*taken = rc.taken;
}

static void
count_waiting(const char *id, void *v, void *arg)
{
	const struct vix	*x = v;

	if (x->q != NULL)
		(*(size_t *)arg)++;
}

/* model_vq_count - the interactions of virtual queues known; *waiting:
 * those waiting */
size_t
model_vq_count(const struct model *m, size_t *waiting)
{
	size_t	n = 0;

	strmap_each(&m->vixs, count_waiting, &n);
	if (waiting != NULL)
		*waiting = n;
	return m->vixs.n;
}

/* ---- the model ---- */

struct model *
model_new(const struct model_cbs *cbs, void *arg)
{
	struct model	*m = xcalloc(1, sizeof(*m));

	m->cbs = *cbs;
	m->arg = arg;
	LIST_INIT(&m->live);
	return m;
}

/* model_event_of - the members the model reads, from an event's tree */
void
model_event_of(const json_t *e, struct model_event *ev)
{
	const json_t	*tm = json_object_get(e, "time");
	const json_t	*ud = json_object_get(e, "userData");

	ev->name = json_string_value(json_object_get(e, "event"));
	ev->dn = json_string_value(json_object_get(e, "thisDN"));
	ev->has_time = json_is_integer(tm);
	ev->time_ms = ev->has_time ? json_integer_value(tm) : 0;
	ev->agent_id = json_string_value(json_object_get(e, "agentId"));
	ev->work_mode = json_string_value(json_object_get(e, "workMode"));
	ev->reason = json_string_value(json_object_get(e, "reason"));
	ev->conn_id = json_string_value(json_object_get(e, "connId"));
	ev->prev_conn_id = json_string_value(json_object_get(e,
	    "previousConnId"));
	ev->call_type = json_string_value(json_object_get(e, "callType"));
	ev->user_data = json_is_object(ud) ? ud : NULL;
}

/* model_apply - one event, from its tree */
void
model_apply(struct model *m, const json_t *e, double t)
{
	struct model_event	ev;

	model_event_of(e, &ev);
	model_apply_event(m, &ev, t);
}

/* model_apply_event - one event: what it starts, ends and changes */
void
model_apply_event(struct model *m, const struct model_event *e, double t)
{
	const char	*name = e->name;
	const char	*dn = e->dn;
	enum dn_kind	 k;

	if (name == NULL || dn == NULL)
		return;
	if (e->has_time)
		t = (double)e->time_ms / 1000.0;
	if (strncmp(name, "EventAgent", 10) == 0) {
		on_agent_event(m, name, e, dn, t);
		return;
	}
	k = m->cbs.dn_kind != NULL ? m->cbs.dn_kind(dn, m->arg) : DNK_PHONE;
	if (k == DNK_QUEUE || k == DNK_RP)
		on_queue_event(m, name, e, dn_get(m, dn), k == DNK_RP, t);
	else
		on_phone_event(m, name, e, dn_get(m, dn), t);
}

struct clear_arg {
	struct model	*m;
	double		 t;
};

static void
clear_dn(const char *key, void *v, void *arg)
{
	struct clear_arg	*ca = arg;
	struct dn		*d = v;
	int			 had = d->ncalls > 0;
	size_t			 i;

	while (d->ncalls > 0)
		call_remove(ca->m, d, d->ncalls - 1, ca->t);
	/* A virtual queue's interactions are the routing worker's. */
	for (i = d->nwaiting; i-- > 0; )
		if (!d->waiting[i]->routed)
			qcall_remove(ca->m, d->waiting[i], ca->t);
	if (had && d->agent != NULL)
		refresh(ca->m, agent_get(ca->m, d->agent), ca->t);
}

static void
drop_entry(const char *key, void *v, void *arg)
{
	struct entry	*en = v;

	free(en->conn);
	free(en->rp);
	free(en->queue);
	free(en);
}

void
model_clear_calls(struct model *m, double t)
{
	struct clear_arg	ca = { m, t };

	strmap_each(&m->dns, clear_dn, &ca);
	strmap_each(&m->entries, drop_entry, NULL);
	strmap_clear(&m->entries);
}

struct recon {
	struct model	*m;
	const json_t	*state;
	double		 t;
	size_t		 calls, agents;
};

/* listed - the DN's state lists call conn */
static int
listed(const json_t *dn_state, const char *conn)
{
	const json_t	*c;
	size_t		 i;

	json_array_foreach(json_object_get(dn_state, "calls"), i, c)
		if (same(json_string_value(json_object_get(c, "connId")),
		    conn))
			return 1;
	return 0;
}

/* recon_dn - one DN's calls and waiting calls against its state */
static void
recon_dn(const char *key, void *v, void *arg)
{
	struct recon	*rc = arg;
	struct dn	*d = v;
	const json_t	*st = json_object_get(rc->state, d->number);
	size_t		 i, before = rc->calls;

	for (i = d->ncalls; i-- > 0; )
		if (!listed(st, d->calls[i]->conn)) {
			call_remove(rc->m, d, i, rc->t);
			rc->calls++;
		}
	for (i = d->nwaiting; i-- > 0; )
		if (!d->waiting[i]->routed &&
		    !listed(st, d->waiting[i]->conn)) {
			qcall_remove(rc->m, d->waiting[i], rc->t);
			rc->calls++;
		}
	if (rc->calls > before && d->agent != NULL)
		refresh(rc->m, agent_get(rc->m, d->agent), rc->t);
}

/* recon_agent - a logged-in agent its DN's state does not name: out */
static void
recon_agent(const char *key, void *v, void *arg)
{
	struct recon	*rc = arg;
	struct agent	*a = v;
	const json_t	*ag;

	if (!a->logged_in)
		return;
	ag = json_object_get(json_object_get(rc->state, a->dn), "agent");
	if (!same(json_string_value(json_object_get(ag, "agentId")), a->id)) {
		agent_logout(rc->m, a, rc->t);
		rc->agents++;
	}
}

/* model_reconcile - what the voice side does not know of ends */
void
model_reconcile(struct model *m, const json_t *state, double t,
    size_t *calls, size_t *agents)
{
	struct recon	rc = { m, state, t, 0, 0 };

	strmap_each(&m->dns, recon_dn, &rc);
	strmap_each(&m->agents, recon_agent, &rc);
	*calls = rc.calls;
	*agents = rc.agents;
}

/* ---- taking in what the state hash lists ---- */

struct adopt {
	struct model	*m;
	double		 t;
	size_t		 calls, agents;
};

/* since_of - a state's "since" (ms) in seconds; t when it has none, or
 * one later than t */
static double
since_of(const json_t *o, double t)
{
	const json_t	*v = json_object_get(o, "since");
	double		 s;

	if (!json_is_number(v))
		return t;
	s = json_number_value(v) / 1000.0;
	return s > 0 && s < t ? s : t;
}

/* cstate_of - a call's state as the hash names it; -1: not a phone's */
static int
cstate_of(const char *name, enum cstate *cs)
{
	static const char *const names[] = { "Ringing", "Dialing",
	    "Established", "Held" };
	static const enum cstate v[] = { C_RINGING, C_DIALING, C_TALKING,
	    C_HELD };
	size_t	i;

	for (i = 0; name != NULL && i < NELEM(names); i++)
		if (strcmp(name, names[i]) == 0) {
			*cs = v[i];
			return 0;
		}
	return -1;
}

/* adopt_agent - the agent the DN's state names, logged in there, in the
 * mode it says, since its "since" (a login's own time is not in the
 * hash: the last change of mode is the nearest known) */
static void
adopt_agent(struct adopt *ad, const char *dn, const json_t *ag)
{
	const char	*id = json_string_value(json_object_get(ag, "agentId"));
	const char	*st = json_string_value(json_object_get(ag, "state"));
	const char	*wm = json_string_value(json_object_get(ag, "workMode"));
	const char	*why = json_string_value(json_object_get(ag, "reason"));
	double		 since = since_of(ag, ad->t);
	struct agent	*a;
	enum mode	 mode;

	if (id == NULL || st == NULL || strcmp(st, "LoggedOut") == 0)
		return;
	mode = strcmp(st, "Ready") == 0 ? M_READY : wm != NULL &&
	    strcmp(wm, "AfterCallWork") == 0 ? M_ACW : M_NOT_READY;
	if (mode == M_READY)
		why = NULL;
	a = agent_get(ad->m, id);
	if (a->logged_in && strcmp(a->dn, dn) == 0 && a->mode == mode &&
	    same(a->work_mode, wm) && same(a->reason, why))
		return;
	ad->agents++;
	agent_login(ad->m, a, dn, wm, since);
	a->mode = mode;
	set_str(&a->work_mode, wm);
	set_str(&a->reason, why);
	if (!refresh(ad->m, a, since) && ad->m->cbs.state != NULL)
		ad->m->cbs.state(a->id, ad->m->arg);
}

/* call_to - a call's instances as its state wants them, from t */
static void
call_to(struct model *m, struct dn *d, struct call *c, enum cstate want,
    double t)
{
	const char	*agent = dn_agent_id(d);

	if (want != C_RINGING)
		end(m, &c->ring, t);
	if (want != C_DIALING)
		end(m, &c->dial, t);
	if (want != C_HELD)
		end(m, &c->hold, t);
	if (want == C_RINGING && c->ring == NULL && c->talk == NULL)
		c->ring = start(m, A_RINGING, 1, agent, d->number, t, c->ud, 0);
	if (want == C_DIALING && c->dial == NULL && c->talk == NULL)
		c->dial = start(m, A_DIALING, 1, agent, d->number, t, c->ud, 0);
	if ((want == C_TALKING || want == C_HELD) && c->talk == NULL) {
		c->talk = start(m, A_TALKING, 1, agent, d->number, t, c->ud, 0);
		c->typed = start(m, typed_action(c->type), 1, agent,
		    d->number, t, c->ud, 0);
	}
	if (want == C_HELD && c->hold == NULL)
		c->hold = start(m, A_ON_HOLD, 1, agent, d->number, t, c->ud, 0);
	c->state = want;
}

/* adopt_call - a call on a phone, in the state the hash says */
static void
adopt_call(struct adopt *ad, struct dn *d, const json_t *cs)
{
	const char	*conn = json_string_value(json_object_get(cs, "connId"));
	const json_t	*ud = json_object_get(cs, "userData");
	struct call	*c;
	enum cstate	 want;

	if (conn == NULL || cstate_of(json_string_value(json_object_get(cs,
	    "state")), &want) == -1)
		return;
	if ((c = call_find(d, conn, NULL)) != NULL && c->state == want)
		return;
	ad->calls++;
	if (c == NULL) {
		c = call_get(ad->m, d, conn, since_of(cs, ad->t));
		set_str(&c->type, json_string_value(json_object_get(cs,
		    "callType")));
		if (json_is_object(ud))
			c->ud = json_deep_copy(ud);
	}
	call_to(ad->m, d, c, want, since_of(cs, ad->t));
}

/* adopt_queue - the calls the hash has waiting in queue d */
static void
adopt_queue(struct adopt *ad, struct dn *d, const json_t *calls)
{
	const json_t	*cs, *ud;
	const char	*conn;
	struct entry	*en;
	size_t		 i;
	double		 since;

	json_array_foreach(calls, i, cs) {
		conn = json_string_value(json_object_get(cs, "connId"));
		if (conn == NULL || !same(json_string_value(json_object_get(cs,
		    "state")), "Queued") || qcall_find(ad->m, d, conn) != NULL)
			continue;
		since = since_of(cs, ad->t);
		ud = json_object_get(cs, "userData");
		en = entry_get(ad->m, conn, since);
		if (en->queue == NULL)
			en->queue = xstrdup(d->number);
		qcall_add(ad->m, d, conn, since, json_is_object(ud) ? ud : NULL,
		    0);
		ad->calls++;
	}
}

/* adopt_dn - one DN of the hash: its agent and calls, or its queue */
static void
adopt_dn(struct adopt *ad, const char *number, const json_t *st)
{
	struct model	*m = ad->m;
	enum dn_kind	 k = m->cbs.dn_kind != NULL ? m->cbs.dn_kind(number,
			    m->arg) : DNK_PHONE;
	const json_t	*calls = json_object_get(st, "calls"), *cs;
	struct dn	*d;
	size_t		 i, before = ad->calls;

	if (k == DNK_RP)		/* it keeps no calls here */
		return;
	d = dn_get(m, number);
	if (k == DNK_QUEUE) {
		adopt_queue(ad, d, calls);
		return;
	}
	adopt_agent(ad, number, json_object_get(st, "agent"));
	json_array_foreach(calls, i, cs)
		adopt_call(ad, d, cs);
	if (ad->calls > before && d->agent != NULL)
		refresh(m, agent_get(m, d->agent), ad->t);
}

/*
 * model_adopt - after events were missed, the model holds what the hash
 * lists: what it lacked starts (told through the callbacks, so that the
 * statistics count it), what it held in another state changes.  Instants
 * missed (a call answered, abandoned) are not made up.
 */
void
model_adopt(struct model *m, const json_t *state, double t, size_t *calls,
    size_t *agents)
{
	struct adopt	 ad = { m, t, 0, 0 };
	const char	*dn;
	const json_t	*st;

	json_object_foreach((json_t *)state, dn, st)
		adopt_dn(&ad, dn, st);
	*calls = ad.calls;
	*agents = ad.agents;
}

static void
free_dn(const char *key, void *v, void *arg)
{
	struct dn	*d = v;
	struct model	*m = arg;

	while (d->ncalls > 0)
		call_remove(m, d, d->ncalls - 1, 0);
	while (d->nwaiting > 0)
		qcall_remove(m, d->waiting[d->nwaiting - 1], 0);
	free(d->calls);
	free(d->waiting);
	free(d->agent);
	free(d->number);
	free(d);
}

static void
free_vix(const char *key, void *v, void *arg)
{
	vix_free(v);
}

static void
free_agent(const char *key, void *v, void *arg)
{
	struct agent	*a = v;

	free(a->id);
	free(a->dn);
	free(a->work_mode);
	free(a->reason);
	free(a->conn);
	free(a);
}

void
model_free(struct model *m)
{
	struct ninst	*n;

	if (m == NULL)
		return;
	m->cbs.end = NULL;
	m->cbs.state = NULL;
	strmap_each(&m->vixs, free_vix, NULL);	/* their waits: free_dn */
	strmap_each(&m->dns, free_dn, m);
	strmap_each(&m->entries, drop_entry, NULL);
	while ((n = LIST_FIRST(&m->live)) != NULL) {	/* agents' */
		LIST_REMOVE(n, entry);
		inst_free(n);
	}
	strmap_each(&m->agents, free_agent, NULL);
	strmap_clear(&m->dns);
	strmap_clear(&m->entries);
	strmap_clear(&m->agents);
	strmap_clear(&m->waiting);
	strmap_clear(&m->vixs);
	free(m);
}

int
model_agent_state(const struct model *m, const char *id,
    struct agent_state *st)
{
	const struct agent	*a = strmap_get(&m->agents, id);

	memset(st, 0, sizeof(*st));
	st->state = "LoggedOut";
	if (a == NULL)
		return -1;
	st->state = a->state;
	st->since = a->since;
	st->reason = a->logged_in ? a->reason : NULL;
	st->work_mode = a->logged_in ? a->work_mode : NULL;
	st->dn = a->dn;
	st->conn_id = a->conn;
	return 0;
}

const char *
model_dn_agent(const struct model *m, const char *dn)
{
	const struct dn	*d = strmap_get(&m->dns, dn);

	return d != NULL ? d->agent : NULL;
}

void
model_each_of_agent(const struct model *m, const char *agent,
    void (*f)(const struct inst *, void *), void *arg)
{
	const struct agent	*a = strmap_get(&m->agents, agent);
	const struct dn		*d;
	const struct call	*c;
	size_t			 i;

	if (a == NULL || !a->logged_in)
		return;
	if (a->login != NULL)
		f(&a->login->i, arg);
	if (a->mode_inst != NULL)
		f(&a->mode_inst->i, arg);
	if ((d = strmap_get(&m->dns, a->dn)) == NULL)
		return;
	for (i = 0; i < d->ncalls; i++) {
		c = d->calls[i];
		if (c->ring != NULL)
			f(&c->ring->i, arg);
		if (c->dial != NULL)
			f(&c->dial->i, arg);
		if (c->talk != NULL)
			f(&c->talk->i, arg);
		if (c->typed != NULL)
			f(&c->typed->i, arg);
		if (c->hold != NULL)
			f(&c->hold->i, arg);
	}
}

void
model_each_of_dn(const struct model *m, const char *dn,
    void (*f)(const struct inst *, void *), void *arg)
{
	const struct dn	*d = strmap_get(&m->dns, dn);
	size_t		 i;

	for (i = 0; d != NULL && i < d->nwaiting; i++)
		if (d->waiting[i]->wait != NULL)
			f(&d->waiting[i]->wait->i, arg);
}

void
model_each(const struct model *m, void (*f)(const struct inst *, void *),
    void *arg)
{
	struct ninst	*n;

	LIST_FOREACH(n, &m->live, entry)
		f(&n->i, arg);
}

size_t
model_count(const struct model *m, size_t *agents, size_t *calls)
{
	if (agents != NULL)
		*agents = m->agents.n;
	if (calls != NULL)
		*calls = m->ncalls;
	return m->dns.n;
}

/* ---- snapshots ---- */

static json_t *
inst_start_json(const struct ninst *n)
{
	return n != NULL ? json_real(n->i.start) : json_null();
}

static double
num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static void
dump_agent(const char *key, void *v, void *arg)
{
	const struct agent	*a = v;
	json_t			*out = arg;

	if (!a->logged_in)
		return;
	json_array_append_new(json_object_get(out, "agents"), json_pack(
	    "{s:s, s:s, s:i, s:s?, s:s?, s:o, s:o, s:f}", "id", a->id, "dn",
	    a->dn, "mode", a->mode, "workMode", a->work_mode, "reason",
	    a->reason, "login", inst_start_json(a->login), "modeSince",
	    inst_start_json(a->mode_inst), "since", a->since));
}

static void
dump_dn(const char *key, void *v, void *arg)
{
	const struct dn	*d = v;
	json_t		*out = arg, *calls, *waiting;
	struct call	*c;
	size_t		 i, n;

	for (i = 0, n = 0; i < d->nwaiting; i++)
		n += !d->waiting[i]->routed;	/* those: dump_vix */
	if (d->ncalls == 0 && n == 0)
		return;
	calls = json_array();
	for (i = 0; i < d->ncalls; i++) {
		c = d->calls[i];
		json_array_append_new(calls, json_pack("{s:s, s:i, s:s?, s:O?,"
		    " s:f, s:o, s:o, s:o, s:o}", "conn", c->conn, "state",
		    c->state, "type", c->type, "ud", c->ud, "since", c->since,
		    "ring", inst_start_json(c->ring), "dial",
		    inst_start_json(c->dial), "talk", inst_start_json(c->talk),
		    "hold", inst_start_json(c->hold)));
	}
	waiting = json_array();
	for (i = 0; i < d->nwaiting; i++)
		if (!d->waiting[i]->routed)
			json_array_append_new(waiting, json_pack(
			    "{s:s, s:f, s:O?}", "conn", d->waiting[i]->conn,
			    "start", d->waiting[i]->start, "ud",
			    d->waiting[i]->ud));
	json_array_append_new(json_object_get(out, "dns"), json_pack(
	    "{s:s, s:o, s:o}", "dn", d->number, "calls", calls, "waiting",
	    waiting));
}

static void
dump_entry(const char *key, void *v, void *arg)
{
	const struct entry	*en = v;

	json_array_append_new(json_object_get(arg, "entries"), json_pack(
	    "{s:s, s:s?, s:s?, s:f}", "conn", en->conn, "rp", en->rp,
	    "queue", en->queue, "t", en->t));
}

/* dump_vix - an interaction of a virtual queue, its wait if it waits */
static void
dump_vix(const char *key, void *v, void *arg)
{
	const struct vix	*x = v;

	json_array_append_new(json_object_get(arg, "vqs"), json_pack(
	    "{s:s, s:s, s:s?, s:s?, s:i, s:f, s:o, s:O?}", "id", x->id, "vq",
	    x->vq, "conn", x->conn, "rp", x->rp, "state", (int)x->st,
	    "created", x->created, "start", x->q != NULL ?
	    json_real(x->q->start) : json_null(), "ud", x->q != NULL ?
	    x->q->ud : NULL));
}

json_t *
model_dump(const struct model *m)
{
	json_t	*out = json_pack("{s:[], s:[], s:[], s:[]}", "agents", "dns",
		    "entries", "vqs");

	strmap_each(&m->agents, dump_agent, out);
	strmap_each(&m->dns, dump_dn, out);
	strmap_each(&m->entries, dump_entry, out);
	strmap_each(&m->vixs, dump_vix, out);
	return out;
}

/* restore_vqs - the virtual queues' interactions, quietly */
static void
restore_vqs(struct model *m, const json_t *vqs)
{
	struct model_vq_event	 e;
	const json_t		*v, *ud;
	struct vix		*x;
	size_t			 i;
	int			 st;

	json_array_foreach(vqs, i, v) {
		memset(&e, 0, sizeof(e));
		e.id = json_string_value(json_object_get(v, "id"));
		e.vq = json_string_value(json_object_get(v, "vq"));
		e.conn = json_string_value(json_object_get(v, "conn"));
		e.rp = json_string_value(json_object_get(v, "rp"));
		e.created = num(v, "created");
		st = (int)json_integer_value(json_object_get(v, "state"));
		if (e.id == NULL || e.vq == NULL || st < V_WAITING ||
		    st >= V_ENDED || strmap_get(&m->vixs, e.id) != NULL)
			continue;
		x = vix_new(m, &e, (enum vstate)st, e.created);
		ud = json_object_get(v, "ud");
		if (x->st == V_WAITING)
			vq_wait(m, x, json_is_number(json_object_get(v,
			    "start")) ? num(v, "start") : x->created,
			    json_is_object(ud) ? ud : NULL, 1);
	}
}

/* again - an instance restored with its start, or none */
static struct ninst *
again(struct model *m, const json_t *start_at, enum action a, int of_agent,
    const char *agent, const char *dn, json_t *ud)
{
	if (!json_is_number(start_at))
		return NULL;
	return start(m, a, of_agent, agent, dn, json_number_value(start_at),
	    ud, 1);
}

int
model_restore(struct model *m, const json_t *snap)
{
	const json_t	*v, *cv;
	struct agent	*a;
	struct dn	*d;
	struct call	*c;
	const json_t	*ud;
	struct entry	*en;
	size_t		 i, j;
	const char	*s;

	if (!json_is_object(snap))
		return -1;
	json_array_foreach(json_object_get(snap, "agents"), i, v) {
		if ((s = json_string_value(json_object_get(v, "id"))) == NULL ||
		    json_string_value(json_object_get(v, "dn")) == NULL)
			continue;
		a = agent_get(m, s);
		set_str(&a->dn, json_string_value(json_object_get(v, "dn")));
		set_str(&dn_get(m, a->dn)->agent, a->id);
		a->logged_in = 1;
		a->mode = (enum mode)json_integer_value(json_object_get(v,
		    "mode"));
		set_str(&a->work_mode, json_string_value(json_object_get(v,
		    "workMode")));
		set_str(&a->reason, json_string_value(json_object_get(v,
		    "reason")));
		a->since = num(v, "since");
		a->login = again(m, json_object_get(v, "login"), A_LOGGED_IN,
		    1, a->id, a->dn, NULL);
		a->mode_inst = again(m, json_object_get(v, "modeSince"),
		    a->mode == M_READY ? A_READY : a->mode == M_ACW ? A_ACW :
		    A_NOT_READY, 1, a->id, a->dn, NULL);
	}
	json_array_foreach(json_object_get(snap, "dns"), i, v) {
		if ((s = json_string_value(json_object_get(v, "dn"))) == NULL)
			continue;
		d = dn_get(m, s);
		json_array_foreach(json_object_get(v, "calls"), j, cv) {
			if ((s = json_string_value(json_object_get(cv,
			    "conn"))) == NULL)
				continue;
			c = call_get(m, d, s, num(cv, "since"));
			c->state = (enum cstate)json_integer_value(
			    json_object_get(cv, "state"));
			set_str(&c->type, json_string_value(json_object_get(cv,
			    "type")));
			if (json_is_object(json_object_get(cv, "ud")))
				c->ud = json_deep_copy(json_object_get(cv,
				    "ud"));
			c->ring = again(m, json_object_get(cv, "ring"),
			    A_RINGING, 1, d->agent, d->number, c->ud);
			c->dial = again(m, json_object_get(cv, "dial"),
			    A_DIALING, 1, d->agent, d->number, c->ud);
			c->talk = again(m, json_object_get(cv, "talk"),
			    A_TALKING, 1, d->agent, d->number, c->ud);
			c->typed = again(m, json_object_get(cv, "talk"),
			    typed_action(c->type), 1, d->agent, d->number,
			    c->ud);
			c->hold = again(m, json_object_get(cv, "hold"),
			    A_ON_HOLD, 1, d->agent, d->number, c->ud);
		}
		json_array_foreach(json_object_get(v, "waiting"), j, cv) {
			if ((s = json_string_value(json_object_get(cv,
			    "conn"))) == NULL)
				continue;
			ud = json_object_get(cv, "ud");
			if (qcall_find(m, d, s) == NULL)
				qcall_add(m, d, s, num(cv, "start"),
				    json_is_object(ud) ? ud : NULL, 1);
		}
	}
	json_array_foreach(json_object_get(snap, "entries"), i, v) {
		if ((s = json_string_value(json_object_get(v, "conn"))) == NULL)
			continue;
		en = entry_get(m, s, num(v, "t"));
		set_str(&en->rp, json_string_value(json_object_get(v, "rp")));
		set_str(&en->queue, json_string_value(json_object_get(v,
		    "queue")));
	}
	restore_vqs(m, json_object_get(snap, "vqs"));
	/* Derived states and their conns, as they were. */
	json_array_foreach(json_object_get(snap, "agents"), i, v) {
		const char	*conn;

		if ((s = json_string_value(json_object_get(v, "id"))) == NULL ||
		    (a = strmap_get(&m->agents, s)) == NULL)
			continue;
		a->state = derive(m, a, &conn);
		set_str(&a->conn, conn);
	}
	return 0;
}
