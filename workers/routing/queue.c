/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue - the interactions in memory, and the matching of the waiting
 * ones with free agents.
 *
 * Memory follows Redis, never the other way: the snapshot store.c reads,
 * then each routing event of the stream (every instance's, this one's
 * too) replaces what is known of its interaction.  An instance that
 * decides acts through a script of store.c, which checks again in Redis.
 *
 * Which waiting interaction goes first: the highest effective priority,
 * priority + increment * floor(waited / interval) with the virtual
 * queue's increment and interval, then the one that has waited longest.
 * Which agent it gets: among the free agents its target fits (the target,
 * and each widening step whose time has come), by its strategy: longest
 * idle, most skilled (the highest level among the expression's skills),
 * round robin (the next person by dbid after the last one the queue gave
 * an interaction to, on this instance), or fewest calls accepted today;
 * ties go to the longest idle.  An agent who rejected an interaction, or
 * let its reservation run out, is not offered it again for a while.
 *
 * Matching runs once per turn of the loop after something changed: a new
 * or returned interaction looks for its agent among the free ones; an
 * agent who became free looks for the first waiting interaction it fits.
 * Everything is matched again when the configuration changes, when
 * a widening step's time or a skip's end comes, and after a snapshot.
 *
 * The timers: an interaction that waits past its timeout ends timed out
 * (a routing point's call then goes to its default destination, rp.c);
 * a reservation past its expiry returns the interaction to its queue; a
 * widening step's time matches the interaction again.  Every instance
 * runs them; the scripts make sure each happens once.  Each interaction
 * is in a heap by its next deadline, so the tick looks only at those
 * whose time has come, however many wait.
 *
 * What it touches: memory; Redis through store.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "routing_int.h"

static struct strmap	 ixs;		/* id -> struct ix */
static struct strmap	 by_conn;	/* a call's connId -> struct ix */
static struct idmap	 vqs;		/* dbid -> struct vq */
static struct strmap	 vq_numbers;	/* number -> struct vq */
static struct event	*ev_kick;
static int		 full;		/* match everything again */
static json_t		*dirty_ix;	/* ids to match, as an array */
static struct agent	**dirty_agents;
static size_t		 ndirty_agents, cap_dirty_agents;
static uint64_t		 next_wake_ms;	/* a skip ends */
static struct heap	 timers;	/* interactions by their next deadline */

static void	kick(evutil_socket_t, short, void *);
static void	ix_free(struct ix *);
static void	ix_remove(struct ix *);
static void	wait_remove(struct ix *);
static void	vq_gauge(struct vq *);
static void	from_doc(struct ix *, json_t *);
static void	schedule(struct ix *);

static const char *const state_names[] = { "queued", "reserved",
    "accepted", "ended" };

const char *
ix_state_name(enum ix_state s)
{
	return state_names[s];
}

void
queue_start(void)
{
	ev_kick = event_new(rt.base, -1, 0, kick, NULL);
	dirty_ix = json_array();
}

static void
free_ix(const char *k, void *v, void *arg)
{
	ix_free(v);
}

static void
free_vq(uint64_t k, void *v, void *arg)
{
	free(v);
}

void
queue_cleanup(void)
{
	strmap_each(&ixs, free_ix, NULL);
	strmap_clear(&ixs);
	strmap_clear(&by_conn);
	idmap_each(&vqs, free_vq, NULL);
	idmap_clear(&vqs);
	strmap_clear(&vq_numbers);
	if (ev_kick != NULL)
		event_free(ev_kick);
	ev_kick = NULL;
	heap_clear(&timers);
	json_decref(dirty_ix);
	dirty_ix = NULL;
	free(dirty_agents);
	dirty_agents = NULL;
	ndirty_agents = cap_dirty_agents = 0;
}

/* ---- the virtual queues ---- */

static struct vq *
vq_get(json_int_t dbid)
{
	struct vq	*q;

	if ((q = idmap_get(&vqs, (uint64_t)dbid)) == NULL) {
		q = xcalloc(1, sizeof(*q));
		q->dbid = dbid;
		q->interval = 60;
		TAILQ_INIT(&q->list);
		TAILQ_INIT(&q->wait);
		idmap_put(&vqs, (uint64_t)dbid, q);
	}
	return q;
}

static void
reparse(const char *k, void *v, void *arg)
{
	struct ix	*x = v;
	json_t		*d = json_loads(x->doc, 0, NULL);

	if (d != NULL)
		from_doc(x, d);
	json_decref(d);
}

static void
vq_gauge_each(uint64_t k, void *v, void *arg)
{
	vq_gauge(v);
}

/* queue_config - the VirtualQueue DNs: numbers and aging */
void
queue_config(void)
{
	const struct cobj *const	*v;
	size_t				 n, i;
	json_t				*type, *num;
	struct vq			*q;

	strmap_clear(&vq_numbers);
	v = cache_list(CFG_DN, &n);
	for (i = 0; i < n; i++) {
		type = cobj_get(v[i], "type");
		num = cobj_get(v[i], "number");
		if (v[i]->enabled && json_is_string(type) && json_is_string(num)
		    && strcmp(json_string_value(type), "VirtualQueue") == 0) {
			q = vq_get(v[i]->dbid);
			snprintf(q->number, sizeof(q->number), "%s",
			    json_string_value(num));
			q->increment = cobj_int(v[i], "priorityIncrement", 0);
			q->interval = cobj_int(v[i], "priorityInterval", 60);
			if (q->interval < 1)
				q->interval = 1;
			strmap_put(&vq_numbers, q->number, q);
		}
		json_decref(type);
		json_decref(num);
	}
	/* targets name skills and groups: parse them again (a snapshot read
	 * before the configuration was loaded could not) */
	strmap_each(&ixs, reparse, NULL);
	idmap_each(&vqs, vq_gauge_each, NULL);
	full = 1;
	queue_kick();
	statlink_config();
}

struct vq *
queue_vq(const char *number)
{
	return strmap_get(&vq_numbers, number);
}

struct vq *
queue_vq_dbid(json_int_t dbid)
{
	struct vq	*q = idmap_get(&vqs, (uint64_t)dbid);

	return q != NULL && q->number[0] != '\0' && strmap_get(&vq_numbers,
	    q->number) == q ? q : NULL;
}

struct ix *
queue_ix(const char *id)
{
	return strmap_get(&ixs, id);
}

struct ix *
queue_call(const char *conn)
{
	return strmap_get(&by_conn, conn);
}

/* ---- an interaction's document ---- */

/*
 * queue_doc - a request's body checked and written as the document Redis
 * keeps: {"virtualQueue", "vq", "target", "steps", "strategy",
 * "priority", "timeout", "userData", ["connId", "routingPoint"]}.
 */
char *
queue_doc(json_t *b, const char *id, int *status, char *why, size_t len)
{
	const char	*k, *number;
	json_t		*v, *e, *doc, *steps;
	struct target	 t;
	struct vq	*q;
	json_int_t	 prio = 0, timeout = 3600;
	size_t		 i;
	char		*text;
	static const char *const known[] = { "virtualQueue", "target",
	    "steps", "strategy", "priority", "timeout", "userData", "connId",
	    "routingPoint", NULL };

	*status = 422;
	json_object_foreach(b, k, v) {
		for (i = 0; known[i] != NULL && strcmp(known[i], k) != 0; i++)
			;
		if (known[i] == NULL) {
			snprintf(why, len, "unknown field \"%s\"", k);
			return NULL;
		}
	}
	v = json_object_get(b, "virtualQueue");
	if (!json_is_string(v)) {
		snprintf(why, len, "virtualQueue (a VirtualQueue DN's number) "
		    "is required");
		return NULL;
	}
	number = json_string_value(v);
	if ((q = queue_vq(number)) == NULL) {
		*status = 404;
		snprintf(why, len, "no virtual queue %.64s", number);
		return NULL;
	}
	if (target_parse(json_object_get(b, "target"), &t, why, len) == -1)
		return NULL;
	target_free(&t);
	if ((v = json_object_get(b, "priority")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000000000) {
			snprintf(why, len, "priority must be an integer from 0 "
			    "to 1000000000");
			return NULL;
		}
		prio = json_integer_value(v);
	}
	if ((v = json_object_get(b, "timeout")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 604800) {
			snprintf(why, len, "timeout must be an integer number "
			    "of seconds from 1 to 604800");
			return NULL;
		}
		timeout = json_integer_value(v);
	}
	if ((v = json_object_get(b, "strategy")) != NULL &&
	    (!json_is_string(v) || (int)strategy_parse(json_string_value(v))
	    < 0)) {
		snprintf(why, len, "strategy must be LongestIdle, "
		    "MostSkilled, RoundRobin or FewestCalls");
		return NULL;
	}
	steps = json_object_get(b, "steps");
	if (steps != NULL && (!json_is_array(steps) ||
	    json_array_size(steps) > RT_STEPS_MAX)) {
		snprintf(why, len, "steps must be an array of at most %d "
		    "{\"after\": s, \"target\": ...}", RT_STEPS_MAX);
		return NULL;
	}
	json_array_foreach(steps, i, e) {
		v = json_object_get(e, "after");
		if (!json_is_object(e) || !json_is_number(v) ||
		    json_number_value(v) < 0 || json_number_value(v) > 604800 ||
		    json_object_size(e) != 2 + (json_object_get(e,
		    "strategy") != NULL) ||
		    json_object_get(e, "target") == NULL) {
			snprintf(why, len, "steps[%zu] must be {\"after\": "
			    "seconds, \"target\": ..., [\"strategy\": ...]}",
			    i);
			return NULL;
		}
		if ((v = json_object_get(e, "strategy")) != NULL &&
		    (!json_is_string(v) || (int)strategy_parse(
		    json_string_value(v)) < 0)) {
			snprintf(why, len, "steps[%zu].strategy must be "
			    "LongestIdle, MostSkilled, RoundRobin or "
			    "FewestCalls", i);
			return NULL;
		}
		if (target_parse(json_object_get(e, "target"), &t, why,
		    len) == -1) {
			char	tmp[512];

			snprintf(tmp, sizeof(tmp), "steps[%zu].%s", i, why);
			snprintf(why, len, "%s", tmp);
			return NULL;
		}
		target_free(&t);
	}
	v = json_object_get(b, "userData");
	if (v != NULL && !json_is_object(v)) {
		snprintf(why, len, "userData must be an object");
		return NULL;
	}
	doc = json_pack("{s:s, s:s, s:I, s:O?, s:O?, s:s, s:I, s:I, s:O?}",
	    "id", id, "virtualQueue", q->number, "vq", (json_int_t)q->dbid,
	    "target", json_object_get(b, "target"), "steps", steps,
	    "strategy", json_is_string(json_object_get(b, "strategy")) ?
	    json_string_value(json_object_get(b, "strategy")) : "LongestIdle",
	    "priority", prio, "timeout", timeout, "userData", v);
	if (json_is_null(json_object_get(doc, "target")))
		json_object_del(doc, "target");
	if (json_is_null(json_object_get(doc, "steps")))
		json_object_del(doc, "steps");
	if (json_is_null(json_object_get(doc, "userData")))
		json_object_del(doc, "userData");
	if (json_is_string(json_object_get(b, "connId")))
		json_object_set(doc, "connId", json_object_get(b, "connId"));
	if (json_is_string(json_object_get(b, "routingPoint")))
		json_object_set(doc, "routingPoint", json_object_get(b,
		    "routingPoint"));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text != NULL && strlen(text) > rt.user_data_max) {
		*status = 413;
		snprintf(why, len, "the interaction is %zu bytes; at most %zu "
		    "(userData too large)", strlen(text), rt.user_data_max);
		free(text);
		return NULL;
	}
	*status = 0;
	return text;
}

/* from_doc - the parts of a document that routing reads */
static void
from_doc(struct ix *x, json_t *d)
{
	json_t		*steps, *e;
	size_t		 i;
	char		 why[256];
	const char	*s;

	for (i = 0; i < (size_t)x->nsteps; i++)
		target_free(&x->steps[i].t);
	x->nsteps = 1;
	x->vq_dbid = json_integer_value(json_object_get(d, "vq"));
	x->priority = json_integer_value(json_object_get(d, "priority"));
	x->timeout_ms = x->created_ms + (uint64_t)json_integer_value(
	    json_object_get(d, "timeout")) * 1000;
	x->steps[0].after = 0;
	x->steps[0].strategy = (int)strategy_parse(json_string_value(
	    json_object_get(d, "strategy")));
	if (x->steps[0].strategy < 0)
		x->steps[0].strategy = ST_LONGEST_IDLE;
	if (target_parse(json_object_get(d, "target"), &x->steps[0].t, why,
	    sizeof(why)) == -1) {
		/* the configuration changed since (or is not loaded yet:
		 * queue_config parses it again): nobody fits */
		if (rt.loaded)
			log_warnx("routing: interaction %s: %s", x->id, why);
		x->steps[0].t.kind = TG_AGENT;
		x->steps[0].t.dbid = -1;
	}
	steps = json_object_get(d, "steps");
	json_array_foreach(steps, i, e) {
		if (x->nsteps > RT_STEPS_MAX)
			break;
		if (target_parse(json_object_get(e, "target"),
		    &x->steps[x->nsteps].t, why, sizeof(why)) == -1)
			continue;
		x->steps[x->nsteps].strategy = (int)strategy_parse(
		    json_string_value(json_object_get(e, "strategy")));
		x->steps[x->nsteps++].after = json_number_value(
		    json_object_get(e, "after"));
	}
	s = json_string_value(json_object_get(d, "connId"));
	snprintf(x->conn, sizeof(x->conn), "%s", s ?: "");
	s = json_string_value(json_object_get(d, "routingPoint"));
	snprintf(x->rp, sizeof(x->rp), "%s", s ?: "");
}

/* ---- memory follows the events ---- */

static void
unhold(struct ix *x)
{
	struct agent	*a;

	if (x->dn[0] != '\0' && (a = pool_at(x->dn)) != NULL &&
	    strcmp(a->holds, x->id) == 0) {
		a->holds[0] = '\0';
		if (x->state == IX_ACCEPTED)	/* a task done: idle from now */
			a->since_ms = now_wall_us() / 1000;
		pool_update(a);
	}
}

static void
hold(struct ix *x, const char *dn)
{
	struct agent	*a;

	if (strcmp(x->dn, dn) != 0)
		unhold(x);
	snprintf(x->dn, sizeof(x->dn), "%s", dn);
	if ((a = pool_at(dn)) != NULL) {
		snprintf(a->holds, sizeof(a->holds), "%s", x->id);
		pool_update(a);
	}
}

static void
ix_free(struct ix *x)
{
	int	i;

	heap_del(&timers, &x->due);
	for (i = 0; i < x->nsteps; i++)
		target_free(&x->steps[i].t);
	free(x->doc);
	free(x);
}

static void
ix_remove(struct ix *x)
{
	unhold(x);
	if (x->vq != NULL) {
		TAILQ_REMOVE(&x->vq->list, x, entry);
		if (x->state == IX_QUEUED)
			wait_remove(x);
	}
	strmap_del(&ixs, x->id);
	if (x->conn[0] != '\0' && strmap_get(&by_conn, x->conn) == x)
		strmap_del(&by_conn, x->conn);
	ix_free(x);
}

/*
 * in_order - does x go before y in their queue's list of waiting ones?
 * The order without aging: priority, then age, then arrival, then id.
 * It never changes while both wait (the document's priority changes only
 * by an update, which takes x out and puts it back), so the list is kept
 * sorted by it: for a queue that does not age it is the queue's order
 * itself, and its head is served first (ix_for) and a position is a
 * count of the ones ahead (queue_position).
 */
static int
in_order(const struct ix *x, const struct ix *y)
{
	if (x->priority != y->priority)
		return x->priority > y->priority;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms;
	if (x->seq != y->seq)
		return x->seq < y->seq;
	return strcmp(x->id, y->id) < 0;
}

/* wait_insert - into its queue's sorted list, looked for from the tail,
 * where a new interaction goes */
static void
wait_insert(struct ix *x)
{
	struct ix	*y;

	for (y = TAILQ_LAST(&x->vq->wait, ix_list); y != NULL && in_order(x,
	    y); y = TAILQ_PREV(y, ix_list, wentry))
		;
	if (y == NULL)
		TAILQ_INSERT_HEAD(&x->vq->wait, x, wentry);
	else
		TAILQ_INSERT_AFTER(&x->vq->wait, y, x, wentry);
	x->vq->waiting++;
}

static void
wait_remove(struct ix *x)
{
	TAILQ_REMOVE(&x->vq->wait, x, wentry);
	x->vq->waiting--;
}

static void
set_state(struct ix *x, enum ix_state s)
{
	if (x->vq != NULL && x->state == IX_QUEUED && s != IX_QUEUED)
		wait_remove(x);
	if (x->vq != NULL && x->state != IX_QUEUED && s == IX_QUEUED)
		wait_insert(x);
	x->state = s;
}

static enum ix_state
state_of(const char *s)
{
	if (s == NULL)
		return IX_ENDED;
	if (strcmp(s, "queued") == 0)
		return IX_QUEUED;
	if (strcmp(s, "reserved") == 0)
		return IX_RESERVED;
	if (strcmp(s, "accepted") == 0)
		return IX_ACCEPTED;
	return IX_ENDED;
}

static void
dirty(struct ix *x)
{
	json_array_append_new(dirty_ix, json_string(x->id));
	queue_kick();
}

static char *
span_dup(const char *p, size_t n)
{
	char	*s = xmalloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* learn - an interaction's state as an event or the snapshot carries it
 * (type "state" for the snapshot); returns it, or NULL when it ended */
static struct ix *
learn(const struct rtev *e, const char *type)
{
	enum ix_state	 s = state_of(e->state[0] != '\0' ? e->state : NULL);
	struct ix	*x;
	json_t		*doc = NULL;
	enum ix_state	 was;

	if (e->id[0] == '\0' || e->doc == NULL)
		return NULL;
	x = strmap_get(&ixs, e->id);
	if (s == IX_ENDED) {
		if (x != NULL)
			ix_remove(x);
		return NULL;
	}
	if (x == NULL || strcmp(type, "updated") == 0) {
		/* the document is read only when it is new or changed */
		doc = json_loadb(e->doc, e->doclen, 0, NULL);
		if (!json_is_object(doc)) {
			json_decref(doc);
			return NULL;
		}
	}
	if (x == NULL) {
		x = xcalloc(1, sizeof(*x));
		snprintf(x->id, sizeof(x->id), "%s", e->id);
		x->state = IX_ENDED;	/* counted in below */
		x->created_ms = (uint64_t)e->created;
		x->seq = (uint64_t)e->seq;
		from_doc(x, doc);
		x->vq = vq_get(x->vq_dbid);
		TAILQ_INSERT_TAIL(&x->vq->list, x, entry);
		strmap_put(&ixs, x->id, x);
		if (x->conn[0] != '\0')
			strmap_put(&by_conn, x->conn, x);
		x->doc = span_dup(e->doc, e->doclen);
	} else if (doc != NULL) {
		/* its priority may change: its place in the sorted list too */
		if (x->state == IX_QUEUED && x->vq != NULL)
			wait_remove(x);
		from_doc(x, doc);
		if (x->state == IX_QUEUED && x->vq != NULL)
			wait_insert(x);
		free(x->doc);
		x->doc = span_dup(e->doc, e->doclen);
	}
	json_decref(doc);
	was = x->state;
	x->version++;
	set_state(x, s);
	x->skip = e->skip;
	x->skip_ms = (uint64_t)e->skipu;
	if (x->skip_ms > 0 && (next_wake_ms == 0 || x->skip_ms <
	    next_wake_ms))
		next_wake_ms = x->skip_ms;
	if (s == IX_QUEUED) {
		unhold(x);
		x->dn[0] = '\0';
		x->agent = 0;
		x->until_ms = 0;
		if (was != IX_QUEUED)
			dirty(x);
	} else {
		x->agent = e->agent;
		x->until_ms = (uint64_t)e->until;
		if (s == IX_ACCEPTED && x->conn[0] != '\0') {
			/* a call: the agent is busy with it on the voice side */
			unhold(x);
			snprintf(x->dn, sizeof(x->dn), "%s", e->dn);
		} else if (e->dn[0] != '\0')
			hold(x, e->dn);
	}
	schedule(x);
	return x;
}

/* jstr - a string field of o into buf, "" when it is not one */
static void
jstr(json_t *o, const char *k, char *buf, size_t len)
{
	const char	*v = json_string_value(json_object_get(o, k));

	if (v == NULL || strlen(v) >= len)
		v = "";
	snprintf(buf, len, "%s", v);
}

/*
 * from_json - an event's fields from its jansson tree: the snapshot's, and
 * an event rtev_parse does not read in place.  *text holds the document's
 * text; the caller frees it.  An id too long is left "", so nothing is
 * learnt of it.
 */
static void
from_json(json_t *o, struct rtev *e, char **text)
{
	json_t	*d = json_object_get(o, "interaction");

	memset(e, 0, sizeof(*e));
	jstr(o, "type", e->type, sizeof(e->type));
	jstr(o, "id", e->id, sizeof(e->id));
	jstr(o, "state", e->state, sizeof(e->state));
	jstr(o, "dn", e->dn, sizeof(e->dn));
	e->at = json_integer_value(json_object_get(o, "at"));
	e->created = json_integer_value(json_object_get(o, "created"));
	e->seq = json_integer_value(json_object_get(o, "seq"));
	e->agent = json_integer_value(json_object_get(o, "agent"));
	e->until = json_integer_value(json_object_get(o, "until"));
	e->skip = json_integer_value(json_object_get(o, "skip"));
	e->skipu = json_integer_value(json_object_get(o, "skipUntil"));
	e->vq = json_integer_value(json_object_get(d, "vq"));
	*text = json_is_object(d) ? json_dumps(d, JSON_COMPACT) : NULL;
	e->doc = *text;
	e->doclen = *text != NULL ? strlen(*text) : 0;
}

/* queue_reset - Redis is away: nothing is decided until it is back */
void
queue_reset(void)
{
	full = 1;
}

static void
drop_all(const char *k, void *v, void *arg)
{
	struct ix	*x = v;

	unhold(x);
	if (x->vq != NULL)
		TAILQ_REMOVE(&x->vq->list, x, entry);
	ix_free(x);
}

static void
zero_waiting(uint64_t k, void *v, void *arg)
{
	struct vq	*q = v;

	q->waiting = 0;
	TAILQ_INIT(&q->wait);
}

void
queue_load(json_t *calls, json_t *list)
{
	json_t		*o;
	size_t		 i;
	struct rtev	 e;
	char		*text;

	strmap_each(&ixs, drop_all, NULL);
	strmap_clear(&ixs);
	strmap_clear(&by_conn);
	idmap_each(&vqs, zero_waiting, NULL);
	pool_calls(calls);
	json_array_foreach(list, i, o) {
		from_json(o, &e, &text);
		learn(&e, "state");
		free(text);
	}
	idmap_each(&vqs, vq_gauge_each, NULL);
	full = 1;
	queue_kick();
}

/* queue_event - a routing event from the stream: read in place, or by
 * jansson when rtev_parse does not take it */
void
queue_event(const char *pos, const char *text, size_t len)
{
	json_t		*o = NULL;
	char		*doc = NULL;
	const char	*type;
	struct rtev	 e;
	struct ix	*x;
	struct vq	*oq;
	uint64_t	 at, created, acc;

	if (rtev_parse(text, len, &e) == -1) {
		if ((o = json_loadb(text, len, 0, NULL)) == NULL)
			return;
		from_json(o, &e, &doc);
		json_decref(o);
	}
	type = e.type;
	at = (uint64_t)e.at;
	created = (uint64_t)e.created;
	if (type[0] == '\0') {
		free(doc);
		return;
	}
	x = strmap_get(&ixs, e.id);
	acc = x != NULL ? x->accepted_ms : 0;
	oq = x != NULL ? x->vq : NULL;
	x = learn(&e, type);
	rthttp_seen(e.id);
	if (strcmp(type, "reserved") == 0) {
		metric_observe(rt_m.time_to_route, at > created ?
		    (at - created) / 1000.0 : 0);
		if (x != NULL && x->vq != NULL)
			ewt_left(x->vq, at);
	} else if (strcmp(type, "accepted") == 0) {
		metric_inc(rt_m.routed);
		pool_count_call(e.agent);
		if (x != NULL)
			x->accepted_ms = at;
	} else if (strcmp(type, "rejected") == 0)
		metric_inc(rt_m.rejected);
	else if (strcmp(type, "timed-out") == 0 && x != NULL)
		metric_inc(rt_m.expired);	/* a reservation */
	else if (strcmp(type, "timed-out") == 0)
		metric_inc(rt_m.timed_out);
	else if (strcmp(type, "abandoned") == 0)
		metric_inc(rt_m.abandoned);
	else if (strcmp(type, "cancelled") == 0)
		metric_inc(rt_m.cancelled);
	else if (strcmp(type, "completed") == 0 && oq != NULL && acc > 0 &&
	    at > acc)
		ewt_handled(oq, (at - acc) / 1000.0);
	if (oq != NULL || (x != NULL && x->vq != NULL))
		vq_gauge(oq != NULL ? oq : x->vq);
	feed_event(pos, type, text, len, e.vq);
	free(doc);
}

/* vq_gauge - the queue's waiting count, as a metric labelled with it */
static void
vq_gauge(struct vq *q)
{
	char	l[96];

	if (q->m_waiting == NULL && q->number[0] != '\0') {
		snprintf(l, sizeof(l), "virtual_queue=\"%s\"", q->number);
		q->m_waiting = metrics_gauge("tenantd_routing_waiting",
		    "Interactions waiting in a virtual queue.", l);
	}
	metric_set(q->m_waiting, q->waiting);
}

/* ---- order and position ---- */

long long
queue_effective_priority(const struct ix *x, uint64_t now)
{
	const struct vq	*q = x->vq;
	uint64_t	 waited = now > x->created_ms ? now - x->created_ms : 0;

	if (q == NULL || q->increment == 0)
		return x->priority;
	return x->priority + q->increment * (long long)(waited / 1000 /
	    (uint64_t)q->interval);
}

/* before - does x go before y? */
static int
before(const struct ix *x, const struct ix *y, uint64_t now)
{
	long long	px = queue_effective_priority(x, now);
	long long	py = queue_effective_priority(y, now);

	if (px != py)
		return px > py;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms;
	if (x->seq != y->seq)
		return x->seq < y->seq;
	return strcmp(x->id, y->id) < 0;
}

/*
 * queue_position - without aging the sorted list is the order: count the
 * ones ahead from whichever end is nearer (a new interaction is at the
 * tail: one step).  With aging, compare it with every one.
 */
unsigned
queue_position(const struct ix *x)
{
	const struct ix	*h, *t, *y;
	uint64_t	 now;
	unsigned	 n;

	if (x->state != IX_QUEUED || x->vq == NULL)
		return 0;
	if (x->vq->increment == 0) {
		h = TAILQ_FIRST(&x->vq->wait);
		t = TAILQ_LAST(&x->vq->wait, ix_list);
		for (n = 0; h != NULL && t != NULL; n++) {
			if (h == x)
				return n + 1;
			if (t == x)
				return x->vq->waiting - n;
			h = TAILQ_NEXT(h, wentry);
			t = TAILQ_PREV(t, ix_list, wentry);
		}
		fatalx("routing: interaction %s not in its queue's list",
		    x->id);
	}
	now = now_wall_us() / 1000;
	n = 1;
	TAILQ_FOREACH(y, &x->vq->wait, wentry)
		if (y != x && before(y, x, now))
			n++;
	return n;
}

/* ---- matching ---- */

void
queue_kick(void)
{
	if (ev_kick != NULL)
		event_active(ev_kick, 0, 0);
}

/* waited - how long x has waited, in s (what a step's "after" counts) */
static double
waited_s(const struct ix *x, uint64_t now)
{
	return now > x->created_ms ? (now - x->created_ms) / 1000.0 : 0;
}

/* fits - may agent a have x now? */
static int
fits(const struct ix *x, const struct agent *a, uint64_t now)
{
	double	waited = waited_s(x, now);
	int	i;

	if (x->skip == a->person && x->skip_ms > now)
		return 0;
	for (i = 0; i < x->nsteps; i++)
		if (x->steps[i].after <= waited &&
		    target_match(&x->steps[i].t, a))
			return 1;
	return 0;
}

static int
score(const struct ix *x, const struct agent *a, uint64_t now)
{
	double	waited = waited_s(x, now);
	int	i, s, best = -1;

	for (i = 0; i < x->nsteps; i++)
		if (x->steps[i].after <= waited &&
		    (s = target_score(&x->steps[i].t, a)) > best)
			best = s;
	return best;
}

/*
 * in_force - the strategy that picks x's agent now: that of the latest
 * step in force that names one (the greatest "after"; on a tie the later
 * in the list), else the interaction's (step 0's, always named)
 */
static enum strategy
in_force(const struct ix *x, uint64_t now)
{
	double	waited = waited_s(x, now);
	double	at = -1;
	int	i, st = ST_LONGEST_IDLE;

	for (i = 0; i < x->nsteps; i++)
		if (x->steps[i].strategy >= 0 && x->steps[i].after <=
		    waited && x->steps[i].after >= at) {
			at = x->steps[i].after;
			st = x->steps[i].strategy;
		}
	return (enum strategy)st;
}

/* better - is agent a a better choice for x than b (NULL: none yet), by
 * strategy st? */
static int
better(const struct ix *x, enum strategy st, const struct agent *a,
    const struct agent *b, uint64_t now)
{
	const struct vq	*q = x->vq;
	int		 sa, sb;
	unsigned	 ca, cb;

	if (b == NULL)
		return 1;
	switch (st) {
	case ST_MOST_SKILLED:
		if ((sa = score(x, a, now)) != (sb = score(x, b, now)))
			return sa > sb;
		break;
	case ST_ROUND_ROBIN:
		/* the first person after the last one given, wrapping */
		if ((a->person > q->rr) != (b->person > q->rr))
			return a->person > q->rr;
		return a->person < b->person;
	case ST_FEWEST_CALLS:
		if ((ca = pool_calls_today(a->person)) !=
		    (cb = pool_calls_today(b->person)))
			return ca < cb;
		break;
	case ST_LONGEST_IDLE:
		break;
	}
	if (a->since_ms != b->since_ms)
		return a->since_ms < b->since_ms;
	return strcmp(a->dn, b->dn) < 0;
}

struct try {
	char		 id[RT_ID_MAX];
	char		 dn[RT_DN_MAX];
};

static void
reserved(int rc, const char *why, void *arg)
{
	struct try	*t = arg;
	struct agent	*a = pool_at(t->dn);
	struct ix	*x = strmap_get(&ixs, t->id);

	if (x != NULL)
		x->trying = 0;
	if (a != NULL) {
		a->trying = 0;
		if (rc == 1) {
			snprintf(a->holds, sizeof(a->holds), "%s", t->id);
			if (x != NULL && x->vq != NULL)
				x->vq->rr = a->person;
		} else if (rc == 0 && why != NULL && strcmp(why, "agent") == 0)
			pool_taken(a, 2000);
		pool_update(a);
	}
	if (rc == 1 && x != NULL && x->conn[0] != '\0')
		rp_route(x->conn, x->rp, t->dn, t->id);
	if (rc != 1 && x != NULL && x->state == IX_QUEUED)
		dirty(x);
	free(t);
}

/* take - reserve agent a for x */
static void
take(struct ix *x, struct agent *a)
{
	struct try	*t = xcalloc(1, sizeof(*t));

	snprintf(t->id, sizeof(t->id), "%s", x->id);
	snprintf(t->dn, sizeof(t->dn), "%s", a->dn);
	x->trying = 1;
	a->trying = 1;
	pool_update(a);
	store_reserve(x->id, a->person, a->dn, reserved, t);
}

/* agent_for - the best free agent for x, or NULL */
static struct agent *
agent_for(const struct ix *x, uint64_t now)
{
	struct agent	*a, *best = NULL;
	enum strategy	 st = in_force(x, now);

	TAILQ_FOREACH(a, &pool_free, free_entry)
		if (fits(x, a, now)) {
			if (st == ST_LONGEST_IDLE)
				return a;	/* the list's order is its */
			if (better(x, st, a, best, now))
				best = a;
		}
	return best;
}

static int
waiting(const struct ix *x)
{
	return x->state == IX_QUEUED && !x->trying && !x->ending &&
	    x->vq != NULL;
}

/* ix_for - the first waiting interaction agent a fits, or NULL */
static struct ix *
ix_for(const struct agent *a, uint64_t now)
{
	struct ix	*x, *best = NULL;
	struct vq	*q;
	size_t		 i;

	for (i = 0; i < vqs.cap; i++) {
		if ((q = vqs.s[i].val) == NULL)
			continue;
		TAILQ_FOREACH(x, &q->wait, wentry) {
			if (best != NULL && !before(x, best, now)) {
				/* sorted without aging: none after goes first */
				if (q->increment == 0)
					break;
				continue;
			}
			if (waiting(x) && fits(x, a, now))
				best = x;
		}
	}
	return best;
}

static uint64_t	sort_now;

static int
by_order(const void *p, const void *q)
{
	const struct ix	*x = *(struct ix *const *)p;
	const struct ix	*y = *(struct ix *const *)q;

	return before(x, y, sort_now) ? -1 : before(y, x, sort_now) ? 1 : 0;
}

static void
collect(const char *k, void *v, void *arg)
{
	json_t	*a = arg;

	if (waiting(v))
		json_array_append_new(a, json_string(k));
}

/* match - the interactions named, in queue order, each to its agent */
static void
match(json_t *ids, uint64_t now)
{
	struct ix	**v, *x;
	struct agent	*a;
	json_t		*e;
	size_t		 i, n = 0;

	v = xcalloc(json_array_size(ids) + 1, sizeof(*v));
	json_array_foreach(ids, i, e)
		if ((x = strmap_get(&ixs, json_string_value(e))) != NULL &&
		    waiting(x))
			v[n++] = x;
	sort_now = now;
	qsort(v, n, sizeof(*v), by_order);
	for (i = 0; i < n && !TAILQ_EMPTY(&pool_free); i++)
		if (waiting(v[i]) && (a = agent_for(v[i], now)) != NULL)
			take(v[i], a);
	free(v);
}

void
queue_agent_free(struct agent *a)
{
	if (ndirty_agents == cap_dirty_agents) {
		cap_dirty_agents = cap_dirty_agents ? cap_dirty_agents * 2 :
		    64;
		dirty_agents = xrealloc(dirty_agents, cap_dirty_agents *
		    sizeof(*dirty_agents));
	}
	dirty_agents[ndirty_agents++] = a;
	queue_kick();
}

static void
kick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	 now = now_wall_us() / 1000;
	json_t		*ids;
	struct ix	*x;
	size_t		 i;

	if (!store_ready() || !pool_known() || rt.stopping)
		return;		/* kicked again once they are */
	if (full) {
		full = 0;
		json_array_clear(dirty_ix);
		ndirty_agents = 0;
		ids = json_array();
		strmap_each(&ixs, collect, ids);
		match(ids, now);
		json_decref(ids);
		return;
	}
	if (json_array_size(dirty_ix) > 0) {
		ids = dirty_ix;
		dirty_ix = json_array();
		match(ids, now);
		json_decref(ids);
	}
	for (i = 0; i < ndirty_agents; i++)
		if (dirty_agents[i]->free &&
		    (x = ix_for(dirty_agents[i], now)) != NULL)
			take(x, dirty_agents[i]);
	ndirty_agents = 0;
}

/* ---- new interactions ---- */

struct create {
	char		 id[RT_ID_MAX];
	char		 dn[RT_DN_MAX];
	char		 conn[RT_CONN_MAX];
	char		 rp[RT_DN_MAX];
	json_int_t	 vq;
	store_cb	*cb;
	void		*arg;
};

static void
created(int rc, const char *why, void *arg)
{
	struct create	*k = arg;
	struct agent	*a = k->dn[0] != '\0' ? pool_at(k->dn) : NULL;
	struct vq	*q;
	int		 got = rc == 1 && why != NULL &&
			    strcmp(why, "reserved") == 0;

	if (a != NULL) {
		a->trying = 0;
		if (got) {
			snprintf(a->holds, sizeof(a->holds), "%s", k->id);
			if ((q = queue_vq_dbid(k->vq)) != NULL)
				q->rr = a->person;
		}
		else if (rc == 1)
			pool_taken(a, 2000);	/* someone else has its key */
		pool_update(a);
	}
	if (got && k->conn[0] != '\0')
		rp_route(k->conn, k->rp, k->dn, k->id);
	k->cb(rc, why, k->arg);
	free(k);
}

/*
 * queue_create - a new interaction (its document checked by queue_doc):
 * its row in PostgreSQL first (journal.c), then in Redis, reserved at once
 * for the best free agent it fits, in the same script, else queued.  cb as
 * for the store's scripts ("reserved" or "queued"); -1 and nothing queued
 * when either cannot take it.
 */
struct pending_create {
	char		 id[RT_ID_MAX];
	char		*doc;
	json_int_t	 vq;
	store_cb	*cb;
	void		*arg;
};

static void
journalled(int rc, const char *why, void *arg)
{
	struct pending_create	*p = arg;
	struct create		*k;
	struct ix		 x;
	struct agent		*a = NULL;
	struct vq		*q = queue_vq_dbid(p->vq);
	json_t			*d;
	uint64_t		 now = now_wall_us() / 1000;
	int			 i;

	if (rc != 1 || q == NULL) {
		p->cb(-1, "postgres", p->arg);
		free(p->doc);
		free(p);
		return;
	}
	memset(&x, 0, sizeof(x));
	snprintf(x.id, sizeof(x.id), "%s", p->id);
	x.created_ms = now;
	x.vq = q;
	/* its target (and connId) matter only when some agent is free: with
	 * none, as when every agent is busy, the document is not read */
	if (store_ready() && pool_known() && !rt.stopping &&
	    !TAILQ_EMPTY(&pool_free)) {
		d = json_loads(p->doc, 0, NULL);
		from_doc(&x, d);
		json_decref(d);
		a = agent_for(&x, now);
	}
	k = xcalloc(1, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", p->id);
	snprintf(k->conn, sizeof(k->conn), "%s", x.conn);
	snprintf(k->rp, sizeof(k->rp), "%s", x.rp);
	k->vq = q->dbid;
	k->cb = p->cb;
	k->arg = p->arg;
	if (a != NULL) {
		snprintf(k->dn, sizeof(k->dn), "%s", a->dn);
		a->trying = 1;
		pool_update(a);
	}
	for (i = 0; i < x.nsteps; i++)
		target_free(&x.steps[i].t);
	store_queue(p->id, p->doc, q->dbid, a != NULL ? a->person : 0,
	    a != NULL ? a->dn : "", created, k);
	free(p->doc);
	free(p);
}

void
queue_create(const char *id, const char *doc, struct vq *q, store_cb *cb,
    void *arg)
{
	struct pending_create	*p = xcalloc(1, sizeof(*p));

	snprintf(p->id, sizeof(p->id), "%s", id);
	p->doc = xstrdup(doc);
	p->vq = q->dbid;
	p->cb = cb;
	p->arg = arg;
	journal_put(id, doc, q->dbid, journalled, p);
}

/* ---- timers ---- */

struct ending {
	char	id[RT_ID_MAX];
	char	conn[RT_CONN_MAX];
	char	rp[RT_DN_MAX];
};

static void
ended(int rc, const char *why, void *arg)
{
	struct ending	*e = arg;
	struct ix	*x = strmap_get(&ixs, e->id);

	if (x != NULL) {
		x->ending = 0;
		schedule(x);
		if (x->state == IX_QUEUED)
			dirty(x);
	}
	if (rc == 1 && e->conn[0] != '\0')
		rp_timed_out(e->conn, e->rp);
	free(e);
}

static void
expired(int rc, const char *why, void *arg)
{
	struct ix	*x = strmap_get(&ixs, arg);

	if (x != NULL) {
		x->ending = 0;
		schedule(x);
		if (x->state == IX_QUEUED)	/* matched when it was not */
			dirty(x);
	}
	free(arg);
}

/* next step - when x's next widening step applies, or 0 */
static uint64_t
next_step(const struct ix *x, uint64_t now)
{
	uint64_t	t, best = 0;
	int		i;

	for (i = 1; i < x->nsteps; i++) {
		t = x->created_ms + (uint64_t)(x->steps[i].after * 1000);
		if (t > now && (best == 0 || t < best))
			best = t;
	}
	return best;
}

/* due_of - when x next needs the tick, 0: never (or it is ending) */
static uint64_t
due_of(const struct ix *x, uint64_t now)
{
	uint64_t	t = 0, s;

	if (x->ending)
		return 0;
	if (x->state == IX_QUEUED) {
		t = x->timeout_ms;
		if ((s = next_step(x, now)) > 0 && (t == 0 || s < t))
			t = s;
	} else if (x->state == IX_RESERVED)
		t = x->until_ms;
	return t;
}

/* schedule - x into the timers at its next deadline, or out of them */
static void
schedule(struct ix *x)
{
	uint64_t	t = due_of(x, now_wall_us() / 1000);

	if (t == 0)
		heap_del(&timers, &x->due);
	else
		heap_set(&timers, &x->due, t);
}

/* due_now - x's deadline has come: end it, return it, or match it with
 * its target widened */
static void
due_now(struct ix *x, uint64_t now)
{
	struct ending	*e;

	if (x->state == IX_QUEUED && x->timeout_ms > 0 &&
	    now >= x->timeout_ms) {
		x->ending = 1;
		e = xcalloc(1, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", x->id);
		snprintf(e->conn, sizeof(e->conn), "%s", x->conn);
		snprintf(e->rp, sizeof(e->rp), "%s", x->rp);
		store_end(x->id, "timed-out", 0, ended, e);
	} else if (x->state == IX_RESERVED && x->until_ms > 0 &&
	    now >= x->until_ms) {
		x->ending = 1;
		store_expire(x->id, expired, xstrdup(x->id));
	} else if (x->state == IX_QUEUED)
		dirty(x);	/* a widening step */
	schedule(x);
}

void
queue_tick(void)
{
	uint64_t		 now = now_wall_us() / 1000;
	struct heap_node	*n;

	if (!store_ready())
		return;
	if (next_wake_ms > 0 && now >= next_wake_ms) {
		next_wake_ms = 0;
		full = 1;
		queue_kick();
	}
	while ((n = heap_top(&timers)) != NULL && n->key <= now) {
		heap_del(&timers, n);
		due_now((struct ix *)(void *)((char *)n - offsetof(struct ix,
		    due)), now);
	}
}
