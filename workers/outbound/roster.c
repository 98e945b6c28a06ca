/* SPDX-License-Identifier: Apache-2.0 */
/*
 * roster - the agents the dialler can give calls to: for every phone DN,
 * who is logged in on it, whether Ready, whether it has a call, since
 * when it is idle, and whether the dialler is routing a call to it.
 *
 * It starts from the voice side's own state hash (voice:state, read in
 * one MULTI with the stream's last id, docs/voice-redis.md) and follows
 * the voice events after that id; events read before the cut answered
 * wait for it, so that none is applied twice or missed.  The cut is taken
 * again whenever the voice link comes back or the reader may have missed
 * entries.  An agent belongs to the campaign groups whose AgentGroup has
 * its person as a member (AgentLogin loginCode -> Person -> AgentGroup).
 *
 * For the predictive forecast it also learns how long the agents' calls
 * last (from the first call event at the phone to the release of its last
 * call) and their wrap-ups (AfterCallWork to Ready): one distribution of
 * each for the tenant's agents.
 *
 * Each cut is also handed to adopt.c, with the events after it, for the
 * calls a killed worker left.
 *
 * What it touches: nothing but its memory; voice.c reads Redis.
 */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "outbound_int.h"
#include "dial_int.h"
#include "pacing.h"

#define CALLS_MAX	4
#define PENDING_MAX	100000

static struct strmap	 dns;		/* number -> struct agent */
static struct strmap	 logins;	/* loginCode -> person dbid + 1 */
static struct idmap	 members;	/* group dbid -> struct idmap * */
static int		 index_stale = 1;
static int		 have_state;	/* a cut was applied */
static int		 cutting;
static struct sid	 cut_at;
static json_t		*pending;	/* events read while cutting */
static struct pace_dist	 talk, wrap;	/* the agents' calls, wrap-ups */

static void	index_build(void);
static void	cut_taken(int, json_t *, const struct sid *, void *);
static void	apply(json_t *);
static struct agent *agent_at(const char *dn);
static void	call_add(struct agent *, const char *conn);
static void	call_del(struct agent *, const char *conn);
static void	free_agent(const char *, void *, void *);
static void	forget_agent(const char *, void *, void *);
static void	free_members(uint64_t, void *, void *);
static void	reperson(const char *, void *, void *);
static json_int_t person_of(const char *);

void
roster_start(const struct conf *c)
{
	pending = json_array();
}

void
roster_cleanup(void)
{
	strmap_each(&dns, free_agent, NULL);
	strmap_clear(&dns);
	strmap_clear(&logins);
	idmap_each(&members, free_members, NULL);
	idmap_clear(&members);
	json_decref(pending);
	pending = NULL;
}

/* roster_invalidate - a change to the configuration: logins and groups
 * are looked up again at the next use */
void
roster_invalidate(void)
{
	index_stale = 1;
}

/* roster_link - the voice link went up or down */
void
roster_link(int up)
{
	if (up)
		roster_gap();
}

/*
 * roster_gap - the events may have missed something: cut again.  Not
 * before the configuration, the groups' states and the lists' tables are
 * in: the cut's logins must find their persons, and its calls their
 * groups and lists (adopt.c); roster_tick takes it then.
 */
void
roster_gap(void)
{
	if (cutting)
		return;
	if (!ob.loaded || !ob.restored || !ob.lists_synced) {
		have_state = 0;
		return;
	}
	cutting = 1;
	json_array_clear(pending);
	voice_state_cut(cut_taken, NULL);
}

void
roster_tick(void)
{
	if (!have_state && !cutting && voice_link_up())
		roster_gap();
}

/* roster_voice - a voice event of the local region */
void
roster_voice(struct voice_event *v)
{
	json_t	*o;

	if (v->region != 0 || (o = voice_event_json(v)) == NULL)
		return;
	if (cutting) {
		if (json_array_size(pending) < PENDING_MAX) {
			o = json_copy(o);
			json_object_set_new(o, "_id",
			    json_string(v->id_text));
			json_array_append_new(pending, o);
		}
		return;
	}
	apply(json_incref(o));	/* the event's tree stays the reader's */
}

/* ---- what the dialler asks ---- */

/* roster_known - the agents' states are known (a cut was applied) */
int
roster_known(void)
{
	return have_state && !cutting;
}

struct count {
	json_int_t		 group;
	struct roster_count	*c;
	struct agent		*best;
	uint64_t		 now_ms;
};

static void
count_one(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;
	struct count	*k = arg;

	if (a->person == 0 || !roster_in_group(a->person, k->group))
		return;
	k->c->logged_in++;
	if (a->ncalls > 0 || a->reserved || a->elsewhere_ms > k->now_ms) {
		k->c->busy++;
		if (a->ncalls > 0 && a->since_ms > 0)
			k->c->busy_ms += k->now_ms - a->since_ms;
		return;
	}
	if (!a->ready) {
		k->c->not_ready++;
		return;
	}
	k->c->ready++;
	if (k->best == NULL || a->since_ms < k->best->since_ms)
		k->best = a;
}

/* roster_count - the group's agents now */
void
roster_count(json_int_t group, struct roster_count *c)
{
	struct count	k = { group, c, NULL, now_wall_us() / 1000 };

	memset(c, 0, sizeof(*c));
	if (index_stale)
		index_build();
	strmap_each(&dns, count_one, &k);
}

/* roster_take - the group's ready agent idle the longest, reserved for a
 * call until roster_untake or its call arrives; NULL when none */
struct agent *
roster_take(json_int_t group)
{
	struct roster_count	c;
	struct count		k = { group, &c, NULL, now_wall_us() / 1000 };

	memset(&c, 0, sizeof(c));
	if (index_stale)
		index_build();
	strmap_each(&dns, count_one, &k);
	if (k.best != NULL)
		k.best->reserved = 1;
	return k.best;
}

void
roster_untake(struct agent *a)
{
	if (a != NULL)
		a->reserved = 0;
}

struct plan {
	json_int_t		 group;
	struct pace_plan	*p;
	uint64_t		 now_ms;
	struct pace_surv	 talk, wrap;
	double			*on_call, *wrapping;	/* how long so far */
	size_t			 ncall, nwrap;
};

/* elapsed - s since the agent's state began */
static double
elapsed(const struct agent *a, uint64_t now_ms)
{
	return a->since_ms > 0 && now_ms > a->since_ms ?
	    (now_ms - a->since_ms) / 1000.0 : 0;
}

/* running - the calls and wrap-ups going on, of every agent */
static void
running(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;
	struct plan	*k = arg;

	if (a->person == 0)
		return;
	if (a->ncalls > 0)
		k->on_call[k->ncall++] = elapsed(a, k->now_ms);
	else if (a->wrap && !a->ready)
		k->wrapping[k->nwrap++] = elapsed(a, k->now_ms);
}

static void
plan_one(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;
	struct plan	*k = arg;
	double		 e = elapsed(a, k->now_ms);

	if (a->person == 0 || !roster_in_group(a->person, k->group))
		return;
	if (a->ncalls > 0)
		pace_plan_agent(k->p, &k->talk, &k->wrap, PA_TALK, e);
	else if (a->reserved || a->elsewhere_ms > k->now_ms)
		pace_plan_agent(k->p, &k->talk, &k->wrap, PA_TALK, 0);
	else if (a->ready)
		pace_plan_agent(k->p, &k->talk, &k->wrap, PA_READY, 0);
	else if (a->wrap)
		pace_plan_agent(k->p, &k->talk, &k->wrap, PA_WRAP, e);
	/* else not ready: not counted */
}

/*
 * roster_plan - the group's agents into a predictive forecast: each one's
 * chance to be free by each horizon, from how long its call or wrap-up
 * has lasted and how long the tenant's calls and wrap-ups last (those
 * going on count as lasting at least that long).
 */
void
roster_plan(json_int_t group, struct pace_plan *p)
{
	struct plan	k;

	memset(&k, 0, sizeof(k));
	k.group = group;
	k.p = p;
	k.now_ms = now_wall_us() / 1000;
	if (index_stale)
		index_build();
	k.on_call = xcalloc(dns.n + 1, sizeof(double));
	k.wrapping = xcalloc(dns.n + 1, sizeof(double));
	strmap_each(&dns, running, &k);
	pace_surv_build(&k.talk, &talk, k.on_call, k.ncall);
	pace_surv_build(&k.wrap, &wrap, k.wrapping, k.nwrap);
	strmap_each(&dns, plan_one, &k);
	pace_surv_free(&k.talk);
	pace_surv_free(&k.wrap);
	free(k.on_call);
	free(k.wrapping);
}

/* roster_in_group - is person a member of the AgentGroup group? */
int
roster_in_group(json_int_t person, json_int_t group)
{
	struct idmap	*m;

	if (index_stale)
		index_build();
	if ((m = idmap_get(&members, (uint64_t)group)) == NULL) {
		const struct cobj	*g = cache_get(group);
		json_t			*v, *e;
		size_t			 i;

		m = xcalloc(1, sizeof(*m));
		idmap_put(&members, (uint64_t)group, m);
		if (g == NULL || !g->enabled ||
		    (v = cobj_get(g, "members")) == NULL)
			return 0;
		json_array_foreach(v, i, e)
			idmap_put(m, (uint64_t)json_integer_value(e), m);
		json_decref(v);
	}
	return idmap_get(m, (uint64_t)person) != NULL;
}

/* ---- the index: login codes to persons ---- */

static void
index_build(void)
{
	const struct cobj *const	*v;
	const struct cobj		*login;
	json_t				*ls, *e, *ref, *code;
	size_t				 n, i, j;

	strmap_clear(&logins);
	idmap_each(&members, free_members, NULL);
	idmap_clear(&members);
	index_stale = 0;
	v = cache_list(CFG_PERSON, &n);
	for (i = 0; i < n; i++) {
		if (!v[i]->enabled ||
		    (ls = cobj_get(v[i], "agentLogins")) == NULL)
			continue;
		json_array_foreach(ls, j, e) {
			ref = json_object_get(e, "agentLogin");
			login = cache_get(json_integer_value(ref));
			if (login == NULL || !login->enabled ||
			    (code = cobj_get(login, "loginCode")) == NULL)
				continue;
			if (json_is_string(code))
				strmap_put(&logins, json_string_value(code),
				    (void *)(intptr_t)(v[i]->dbid + 1));
			json_decref(code);
		}
		json_decref(ls);
	}
	/* A login's person may have changed, or come only now. */
	strmap_each(&dns, reperson, NULL);
}

static void
reperson(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;

	a->person = person_of(a->login);
}

static json_int_t
person_of(const char *login)
{
	void	*p;

	if (login == NULL || *login == '\0')
		return 0;
	if (index_stale)
		index_build();
	p = strmap_get(&logins, login);
	return p == NULL ? 0 : (json_int_t)(intptr_t)p - 1;
}

/* ---- the state: a cut, then events ---- */

static void
cut_taken(int ok, json_t *state, const struct sid *at, void *arg)
{
	const char	*dn;
	json_t		*v, *agent, *calls, *c;
	size_t		 i;
	struct agent	*a;
	struct sid	 id;

	cutting = 0;
	if (!ok) {
		have_state = 0;
		return;
	}
	/* Entries stay (calls being routed hold them): forget their state. */
	strmap_each(&dns, forget_agent, NULL);
	json_object_foreach(state, dn, v) {
		a = agent_at(dn);
		agent = json_object_get(v, "agent");
		if (json_is_object(agent)) {
			snprintf(a->login, sizeof(a->login), "%s",
			    json_string_value(json_object_get(agent,
			    "agentId")) ?: "");
			a->person = person_of(a->login);
			a->ready = json_is_string(json_object_get(agent,
			    "state")) && strcmp(json_string_value(
			    json_object_get(agent, "state")), "Ready") == 0;
			a->since_ms = (uint64_t)json_integer_value(
			    json_object_get(agent, "since"));
			a->wrap = !a->ready && json_is_string(json_object_get(
			    agent, "workMode")) && strcmp(json_string_value(
			    json_object_get(agent, "workMode")),
			    "AfterCallWork") == 0;
		}
		calls = json_object_get(v, "calls");
		json_array_foreach(calls, i, c)
			call_add(a, json_string_value(json_object_get(c,
			    "connId")));
	}
	cut_at = *at;
	have_state = 1;
	/* The calls a killed worker left are in the same cut (adopt.c). */
	adopt_cut(state);
	json_array_foreach(pending, i, v) {
		if (sid_parse(json_string_value(json_object_get(v, "_id")),
		    &id) == 0 && sid_cmp(&id, &cut_at) > 0) {
			adopt_event(json_incref(v));
			apply(json_incref(v));
		}
	}
	json_array_clear(pending);
	log_info("outbound: the agents' states are read (%zu DNs)", dns.n);
}

/* apply - one event to the states (takes o) */
static void
apply(json_t *o)
{
	const char	*name = json_string_value(json_object_get(o, "event"));
	const char	*dn = json_string_value(json_object_get(o, "thisDN"));
	const char	*conn = json_string_value(json_object_get(o,
			    "connId"));
	const char	*login = json_string_value(json_object_get(o,
			    "agentId"));
	const char	*mode = json_string_value(json_object_get(o,
			    "workMode"));
	struct agent	*a;
	uint64_t	 t = (uint64_t)json_integer_value(json_object_get(o,
			    "time"));

	if (name == NULL || dn == NULL || !have_state) {
		json_decref(o);
		return;
	}
	a = agent_at(dn);
	if (strcmp(name, "EventAgentLogin") == 0) {
		snprintf(a->login, sizeof(a->login), "%s", login ?: "");
		a->person = person_of(a->login);
		a->ready = 0;
		a->wrap = 0;
	} else if (strcmp(name, "EventAgentLogout") == 0) {
		a->login[0] = '\0';
		a->person = 0;
		a->ready = 0;
		a->wrap = 0;
	} else if (strcmp(name, "EventAgentReady") == 0) {
		if (a->wrap && a->ncalls == 0 && t >= a->since_ms)
			pace_dist_add(&wrap, (t - a->since_ms) / 1000.0);
		a->ready = 1;
		a->wrap = 0;
		a->since_ms = t;
	} else if (strcmp(name, "EventAgentNotReady") == 0) {
		a->ready = 0;
		a->wrap = mode != NULL && strcmp(mode, "AfterCallWork") == 0;
		if (a->ncalls == 0)
			a->since_ms = t;
	} else if (conn != NULL && (strcmp(name, "EventReleased") == 0 ||
	    strcmp(name, "EventAbandoned") == 0)) {
		call_del(a, conn);
		if (a->ncalls == 0 && a->since_ms > 0 && t >= a->since_ms &&
		    a->person != 0)
			pace_dist_add(&talk, (t - a->since_ms) / 1000.0);
		if (a->ncalls == 0)
			a->since_ms = t;
	} else if (conn != NULL && (strcmp(name, "EventRinging") == 0 ||
	    strcmp(name, "EventDialing") == 0 ||
	    strcmp(name, "EventEstablished") == 0 ||
	    strcmp(name, "EventQueued") == 0)) {
		if (a->ncalls == 0)
			a->since_ms = t;
		call_add(a, conn);
		a->reserved = 0;
	}
	json_decref(o);
}

static struct agent *
agent_at(const char *dn)
{
	struct agent	*a;

	if ((a = strmap_get(&dns, dn)) == NULL) {
		a = xcalloc(1, sizeof(*a));
		snprintf(a->dn, sizeof(a->dn), "%s", dn);
		strmap_put(&dns, dn, a);
	}
	return a;
}

static void
call_add(struct agent *a, const char *conn)
{
	int	i;

	if (conn == NULL)
		return;
	for (i = 0; i < a->ncalls; i++)
		if (strcmp(a->conns[i], conn) == 0)
			return;
	if (a->ncalls == CALLS_MAX)	/* more than a phone holds: count */
		return;
	snprintf(a->conns[a->ncalls++], sizeof(a->conns[0]), "%s", conn);
}

static void
call_del(struct agent *a, const char *conn)
{
	int	i;

	for (i = 0; i < a->ncalls; i++)
		if (strcmp(a->conns[i], conn) == 0) {
			a->conns[i][0] = '\0';
			memmove(&a->conns[i], &a->conns[i + 1],
			    (size_t)(a->ncalls - i - 1) * sizeof(a->conns[0]));
			a->ncalls--;
			return;
		}
}

static void
free_agent(const char *k, void *v, void *arg)
{
	free(v);
}

static void
forget_agent(const char *k, void *v, void *arg)
{
	struct agent	*a = v;

	a->login[0] = '\0';
	a->person = 0;
	a->ready = 0;
	a->wrap = 0;
	a->ncalls = 0;
}

static void
free_members(uint64_t k, void *v, void *arg)
{
	idmap_clear(v);
	free(v);
}
