/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool - the agents the routing worker can give interactions to: for
 * every phone DN, who is logged in on it, whether Ready, its calls, since
 * when it is idle, and the interaction it holds (reserved for it, or a
 * task it accepted).  An agent is free when a person is logged in, Ready,
 * with no call, holding nothing, and not taken by someone else (a
 * reservation that failed because another instance or the dialler holds
 * its key): the free ones are kept in a list for the matcher.
 *
 * The voice state comes as the outbound worker's roster takes it: the
 * voice side's state hash and the stream's id in one MULTI, then the
 * events after that id (those read meanwhile wait for the cut).  What a
 * person is comes from the configuration: the login code's Person, its
 * skills (sorted, for a level looked up by binary search), its place (its
 * own, else the Place that has the DN), the AgentGroups and PlaceGroups
 * that have them as members.
 *
 * What it touches: nothing but its memory; common/voice.c reads Redis.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "expr.h"
#include "routing_int.h"

#define PENDING_MAX	100000

/* What the configuration says of a person. */
struct person {
	json_int_t		 place;
	struct skill_level	*skills;
	size_t			 nskills;
};

struct agent_list	 pool_free = TAILQ_HEAD_INITIALIZER(pool_free);

static struct strmap	 dns;		/* number -> struct agent */
static struct strmap	 logins;	/* loginCode -> person dbid + 1 */
static struct strmap	 dn_places;	/* DN number -> place dbid + 1 */
static struct idmap	 persons;	/* dbid -> struct person */
static struct idmap	 groups;	/* group dbid -> struct group */
static int		 index_stale = 1;
static int		 have_state, cutting;
static struct sid	 cut_at;
static json_t		*pending;
static unsigned		 elsewhere;	/* agents taken elsewhere, for now */
static struct idmap	 calls;		/* person -> calls accepted today */
static char		 calls_day[16];

static void	index_build(void);
static void	cut_taken(int, json_t *, const struct sid *, void *);
static void	apply(json_t *);
static struct agent *agent_get(const char *dn);
static void	set_person(struct agent *, const char *login);
static void	call_add(struct agent *, const char *conn);
static void	call_del(struct agent *, const char *conn);
static void	free_agent(const char *, void *, void *);
static void	free_person(uint64_t, void *, void *);
static void	free_group(uint64_t, void *, void *);
static const char *day(void);

void
pool_start(void)
{
	pending = json_array();
}

void
pool_cleanup(void)
{
	TAILQ_INIT(&pool_free);
	strmap_each(&dns, free_agent, NULL);
	strmap_clear(&dns);
	strmap_clear(&logins);
	strmap_clear(&dn_places);
	idmap_each(&persons, free_person, NULL);
	idmap_clear(&persons);
	idmap_each(&groups, free_group, NULL);
	idmap_clear(&groups);
	idmap_clear(&calls);
	json_decref(pending);
	pending = NULL;
	index_stale = 1;
	have_state = cutting = 0;
}

void
pool_invalidate(void)
{
	index_stale = 1;
}

void
pool_link(int up)
{
	if (up)
		pool_gap();
	else
		have_state = 0;
}

/* pool_gap - the events may have missed something: cut again, once the
 * configuration is in (the logins must find their persons) */
void
pool_gap(void)
{
	if (cutting)
		return;
	have_state = 0;
	if (!rt.loaded)
		return;
	cutting = 1;
	json_array_clear(pending);
	voice_state_cut(cut_taken, NULL);
}

static void
unelse(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;
	uint64_t	*now = arg;

	if (a->elsewhere_ms != 0 && a->elsewhere_ms <= *now) {
		a->elsewhere_ms = 0;
		elsewhere--;
		pool_update(a);
	}
}

void
pool_tick(void)
{
	uint64_t	now = now_wall_us() / 1000;

	if (index_stale)
		index_build();
	if (!have_state && !cutting && voice_link_up())
		pool_gap();
	if (elsewhere > 0)
		strmap_each(&dns, unelse, &now);
	if (strcmp(day(), calls_day) != 0) {
		idmap_clear(&calls);
		snprintf(calls_day, sizeof(calls_day), "%s", day());
	}
}

int
pool_known(void)
{
	return have_state && !cutting;
}

void
pool_voice(struct voice_event *v)
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
	apply(json_incref(o));
}

struct agent *
pool_at(const char *dn)
{
	return strmap_get(&dns, dn);
}

/* free_insert - into the free list at its place, looked for from the
 * tail, where an agent free from now goes */
static void
free_insert(struct agent *a)
{
	struct agent	*b;

	for (b = TAILQ_LAST(&pool_free, agent_list); b != NULL &&
	    (b->since_ms > a->since_ms || (b->since_ms == a->since_ms &&
	    strcmp(b->dn, a->dn) > 0)); b = TAILQ_PREV(b, agent_list,
	    free_entry))
		;
	if (b == NULL)
		TAILQ_INSERT_HEAD(&pool_free, a, free_entry);
	else
		TAILQ_INSERT_AFTER(&pool_free, b, a, free_entry);
	a->free_since = a->since_ms;
}

/* pool_update - into or out of the free list, or to its new place in it */
void
pool_update(struct agent *a)
{
	int	f = a->person != 0 && a->ready && a->ncalls == 0 &&
		    a->holds[0] == '\0' && a->elsewhere_ms == 0 && !a->trying &&
		    have_state;

	if (f && a->free && a->since_ms != a->free_since) {
		/* idle from another time: its place changes */
		TAILQ_REMOVE(&pool_free, a, free_entry);
		free_insert(a);
		return;
	}
	if (f == a->free)
		return;
	log_debug("routing: agent %s at %s (person %lld) %s", a->login, a->dn,
	    (long long)a->person, f ? "free" : "busy");
	a->free = f;
	if (f) {
		free_insert(a);
		queue_agent_free(a);
	} else
		TAILQ_REMOVE(&pool_free, a, free_entry);
}

/* pool_taken - the agent's key is someone else's for ms */
void
pool_taken(struct agent *a, long long ms)
{
	if (a->elsewhere_ms == 0)
		elsewhere++;
	a->elsewhere_ms = now_wall_us() / 1000 + (uint64_t)(ms > 0 ? ms :
	    1000);
	pool_update(a);
}

/* ---- what a person is ---- */

int
pool_level(const struct agent *a, int skill)
{
	size_t	lo = 0, hi = a->nskills, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (a->skills[mid].skill == skill)
			return a->skills[mid].level;
		if (a->skills[mid].skill < skill)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* A group (AgentGroup or PlaceGroup): its members, indexed, and an
 * AgentGroup's skill expression (its agents are the members plus every
 * agent whose skills match it, docs/config-api.md). */
struct group {
	struct idmap	 members;
	struct rexpr	*expr;
};

static struct group *
group(json_int_t dbid)
{
	struct group		*m;
	const struct cobj	*g;
	json_t			*v, *e;
	size_t			 i, pos;
	char			 err[256];

	if (index_stale)
		index_build();
	if ((m = idmap_get(&groups, (uint64_t)dbid)) != NULL)
		return m;
	m = xcalloc(1, sizeof(*m));
	idmap_put(&groups, (uint64_t)dbid, m);
	if ((g = cache_get(dbid)) == NULL || !g->enabled)
		return m;
	if ((v = cobj_get(g, "members")) != NULL)
		json_array_foreach(v, i, e)
			idmap_put(&m->members, (uint64_t)json_integer_value(e),
			    m);
	json_decref(v);
	v = cobj_get(g, "skillExpression");
	if (json_is_string(v) && (m->expr = rexpr_compile(json_string_value(v),
	    target_skill, NULL, err, sizeof(err), &pos)) == NULL)
		log_warnx("routing: agent group %lld: its skillExpression: %s",
		    (long long)dbid, err);
	json_decref(v);
	return m;
}

static int
level_of(int skill, void *arg)
{
	return pool_level(arg, skill);
}

int
pool_in_agent_group(const struct agent *a, json_int_t dbid)
{
	struct group	*g = group(dbid);

	return idmap_get(&g->members, (uint64_t)a->person) != NULL ||
	    (g->expr != NULL && rexpr_match(g->expr, level_of, (void *)a));
}

int
pool_in_place_group(json_int_t place, json_int_t dbid)
{
	return place != 0 && idmap_get(&group(dbid)->members,
	    (uint64_t)place) != NULL;
}

unsigned
pool_calls_today(json_int_t p)
{
	return (unsigned)(uintptr_t)idmap_get(&calls, (uint64_t)p);
}

void
pool_count_call(json_int_t p)
{
	idmap_put(&calls, (uint64_t)p, (void *)(uintptr_t)(
	    pool_calls_today(p) + 1));
}

/* pool_calls - the calls of today as Redis counts them (at a snapshot):
 * person -> count */
void
pool_calls(json_t *counts)
{
	const char	*k;
	json_t		*v;

	idmap_clear(&calls);
	snprintf(calls_day, sizeof(calls_day), "%s", day());
	json_object_foreach(counts, k, v)
		if (json_integer_value(v) > 0)
			idmap_put(&calls, (uint64_t)strtoull(k, NULL, 10),
			    (void *)(uintptr_t)json_integer_value(v));
}

/* day - today, in local time, as store.c names the counts */
static const char *
day(void)
{
	static char	buf[16];
	time_t		now = time(NULL);
	struct tm	tm;

	localtime_r(&now, &tm);
	strftime(buf, sizeof(buf), "%Y%m%d", &tm);
	return buf;
}

struct count {
	const struct target	*t;
	unsigned		 n, free;
};

static void
count_one(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;
	struct count	*k = arg;

	if (a->person == 0 || !target_match(k->t, a))
		return;
	k->n++;
	k->free += a->free;
}

unsigned
pool_count(const struct target *t, unsigned *free_now)
{
	struct count	k = { t, 0, 0 };

	strmap_each(&dns, count_one, &k);
	if (free_now != NULL)
		*free_now = k.free;
	return k.n;
}

/* ---- the index: logins, persons, places ---- */

static int
by_skill(const void *x, const void *y)
{
	const struct skill_level	*a = x, *b = y;

	return (a->skill > b->skill) - (a->skill < b->skill);
}

static void
index_person(const struct cobj *o)
{
	struct person	*x = xcalloc(1, sizeof(*x));
	json_t		*v, *e, *ref, *code;
	const struct cobj *login;
	size_t		 i;

	v = cobj_get(o, "place");
	x->place = json_integer_value(v);
	json_decref(v);
	if ((v = cobj_get(o, "skills")) != NULL && json_array_size(v) > 0) {
		x->skills = xcalloc(json_array_size(v), sizeof(*x->skills));
		json_array_foreach(v, i, e) {
			x->skills[x->nskills].skill = (int)json_integer_value(
			    json_object_get(e, "skill"));
			x->skills[x->nskills++].level = (int)
			    json_integer_value(json_object_get(e, "level"));
		}
		qsort(x->skills, x->nskills, sizeof(*x->skills), by_skill);
	}
	json_decref(v);
	idmap_put(&persons, (uint64_t)o->dbid, x);
	if ((v = cobj_get(o, "agentLogins")) == NULL)
		return;
	json_array_foreach(v, i, e) {
		ref = json_object_get(e, "agentLogin");
		login = cache_get(json_integer_value(ref));
		if (login == NULL || !login->enabled ||
		    (code = cobj_get(login, "loginCode")) == NULL)
			continue;
		if (json_is_string(code))
			strmap_put(&logins, json_string_value(code),
			    (void *)(intptr_t)(o->dbid + 1));
		json_decref(code);
	}
	json_decref(v);
}

static void
index_place(const struct cobj *o)
{
	const struct cobj	*d;
	json_t			*v, *e, *num;
	size_t			 i;

	if ((v = cobj_get(o, "dns")) == NULL)
		return;
	json_array_foreach(v, i, e) {
		if ((d = cache_get(json_integer_value(e))) == NULL ||
		    (num = cobj_get(d, "number")) == NULL)
			continue;
		if (json_is_string(num))
			strmap_put(&dn_places, json_string_value(num),
			    (void *)(intptr_t)(o->dbid + 1));
		json_decref(num);
	}
	json_decref(v);
}

static void
reperson(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;

	set_person(a, a->login);
}

/* index_build - everything the configuration says, read again */
static void
index_build(void)
{
	const struct cobj *const	*v;
	struct idmap			 old = persons;
	size_t				 n, i;

	index_stale = 0;
	memset(&persons, 0, sizeof(persons));
	strmap_clear(&logins);
	strmap_clear(&dn_places);
	idmap_each(&groups, free_group, NULL);
	idmap_clear(&groups);
	v = cache_list(CFG_PERSON, &n);
	for (i = 0; i < n; i++)
		if (v[i]->enabled)
			index_person(v[i]);
	v = cache_list(CFG_PLACE, &n);
	for (i = 0; i < n; i++)
		if (v[i]->enabled)
			index_place(v[i]);
	strmap_each(&dns, reperson, NULL);
	idmap_each(&old, free_person, NULL);
	idmap_clear(&old);
	queue_config();
	queue_kick();
}

/* set_person - who the login is, with what skills, where */
static void
set_person(struct agent *a, const char *login)
{
	void		*p;
	struct person	*x;

	if (login != a->login)
		snprintf(a->login, sizeof(a->login), "%s", login ?: "");
	p = a->login[0] != '\0' ? strmap_get(&logins, a->login) : NULL;
	a->person = p == NULL ? 0 : (json_int_t)(intptr_t)p - 1;
	x = a->person != 0 ? idmap_get(&persons, (uint64_t)a->person) : NULL;
	a->skills = x != NULL ? x->skills : NULL;
	a->nskills = x != NULL ? x->nskills : 0;
	p = strmap_get(&dn_places, a->dn);
	a->place = x != NULL && x->place != 0 ? x->place : p != NULL ?
	    (json_int_t)(intptr_t)p - 1 : 0;
	pool_update(a);
}

/* ---- the state: a cut, then events ---- */

static void
forget(const char *dn, void *val, void *arg)
{
	struct agent	*a = val;

	a->ready = 0;
	a->ncalls = 0;
	set_person(a, "");
}

static void
cut_taken(int ok, json_t *state, const struct sid *at, void *arg)
{
	const char	*dn, *st;
	json_t		*v, *agent, *cs, *c;
	size_t		 i;
	struct agent	*a;
	struct sid	 id;

	cutting = 0;
	if (!ok)
		return;
	if (index_stale)
		index_build();
	strmap_each(&dns, forget, NULL);
	have_state = 1;
	json_object_foreach(state, dn, v) {
		a = agent_get(dn);
		cs = json_object_get(v, "calls");
		json_array_foreach(cs, i, c)
			call_add(a, json_string_value(json_object_get(c,
			    "connId")));
		agent = json_object_get(v, "agent");
		if (json_is_object(agent)) {
			st = json_string_value(json_object_get(agent,
			    "state"));
			a->ready = st != NULL && strcmp(st, "Ready") == 0;
			a->since_ms = (uint64_t)json_integer_value(
			    json_object_get(agent, "since"));
			set_person(a, json_string_value(json_object_get(agent,
			    "agentId")));
		}
		pool_update(a);
	}
	cut_at = *at;
	json_array_foreach(pending, i, v)
		if (sid_parse(json_string_value(json_object_get(v, "_id")),
		    &id) == 0 && sid_cmp(&id, &cut_at) > 0)
			apply(json_incref(v));
	json_array_clear(pending);
	log_info("routing: the agents' states are read (%zu DNs)", dns.n);
	queue_kick();
}

/* apply - one voice event to the agents (takes o) */
static void
apply(json_t *o)
{
	const char	*name = json_string_value(json_object_get(o, "event"));
	const char	*dn = json_string_value(json_object_get(o, "thisDN"));
	const char	*conn = json_string_value(json_object_get(o,
			    "connId"));
	struct agent	*a;
	uint64_t	 t = (uint64_t)json_integer_value(json_object_get(o,
			    "time"));

	if (name == NULL || dn == NULL || !have_state) {
		json_decref(o);
		return;
	}
	a = agent_get(dn);
	if (strcmp(name, "EventAgentLogin") == 0) {
		a->ready = 0;
		a->since_ms = t;
		set_person(a, json_string_value(json_object_get(o,
		    "agentId")));
	} else if (strcmp(name, "EventAgentLogout") == 0) {
		a->ready = 0;
		set_person(a, "");
	} else if (strcmp(name, "EventAgentReady") == 0) {
		a->ready = 1;
		a->since_ms = t;
	} else if (strcmp(name, "EventAgentNotReady") == 0) {
		a->ready = 0;
		if (a->ncalls == 0)
			a->since_ms = t;
	} else if (conn != NULL && (strcmp(name, "EventReleased") == 0 ||
	    strcmp(name, "EventAbandoned") == 0 ||
	    strcmp(name, "EventRouteUsed") == 0 ||
	    strcmp(name, "EventDiverted") == 0)) {
		call_del(a, conn);
		if (a->ncalls == 0)
			a->since_ms = t;
	} else if (conn != NULL && (strcmp(name, "EventRinging") == 0 ||
	    strcmp(name, "EventDialing") == 0 ||
	    strcmp(name, "EventEstablished") == 0 ||
	    strcmp(name, "EventRouteRequest") == 0 ||
	    strcmp(name, "EventQueued") == 0)) {
		if (a->ncalls == 0)
			a->since_ms = t;
		call_add(a, conn);
	}
	pool_update(a);
	json_decref(o);
}

static struct agent *
agent_get(const char *dn)
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
	if (a->ncalls == RT_CALLS_MAX)	/* more than a phone holds: count */
		return;
	snprintf(a->conns[a->ncalls++], sizeof(a->conns[0]), "%s", conn);
}

static void
call_del(struct agent *a, const char *conn)
{
	int	i;

	for (i = 0; i < a->ncalls; i++)
		if (strcmp(a->conns[i], conn) == 0) {
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
free_person(uint64_t k, void *v, void *arg)
{
	struct person	*x = v;

	free(x->skills);
	free(x);
}

static void
free_group(uint64_t k, void *v, void *arg)
{
	struct group	*g = v;

	idmap_clear(&g->members);
	if (g->expr != NULL)
		rexpr_free(g->expr);
	free(g);
}
