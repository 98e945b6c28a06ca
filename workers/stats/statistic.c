/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statistic - the statistics open in the worker: made when a client (or
 * a restore) first asks for one, found by their key (object, type,
 * profile) and by their object, seeded with what is in progress, fed the
 * model's news, and dropped when nobody holds them.  The model's
 * callbacks start here: an action instance reaches the statistics of
 * every object it counts for (index.c), and each one that takes it is
 * marked for its subscribers (subscribers.c).
 *
 * It touches its own maps, the model (read) and, through save.c, the
 * saved Growing totals.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "idmap.h"
#include "strmap.h"
#include "stats_int.h"

enum feed { F_START, F_END, F_INSTANT };

static void	on_start(const struct inst *, void *);
static void	on_end(const struct inst *, double, void *);
static void	on_instant(const struct inst *, double, void *);
static void	on_state(const char *, void *);
static void	feed(const struct inst *, enum feed, double);
static void	mark_agent(json_int_t, const char *);
static void	seed(const struct inst *, void *);
static void	seed_person(json_int_t, struct statistic *);
static char	*statistic_key(enum object_kind, json_int_t,
		    const struct stype *, const struct profile *);
static void	statistic_free(struct statistic *);
static uint64_t	okey(enum object_kind, json_int_t);

const struct model_cbs statistic_model_cbs = {
	index_dn_kind, on_start, on_end, on_instant, on_state
};

static struct strmap	 statistics;	/* key -> statistic */
static struct idmap	 by_object;	/* okey(kind, dbid) -> node */

/*
 * statistic_get - the statistic (object, type, profile), made and seeded
 * if nobody has it open.  load: a Growing total is looked for among the
 * saved ones, so that one made again after a restart goes on from there.
 */
struct statistic *
statistic_get(enum object_kind k, json_int_t dbid, const char *id,
    const struct stype *t, const struct profile *p, int load, int *created)
{
	struct statistic	*m;
	struct node		*nd;
	char			*key;
	double			 now = stats_now();

	key = statistic_key(k, dbid, t, p);
	*created = 0;
	if ((m = strmap_get(&statistics, key)) != NULL) {
		free(key);
		return m;
	}
	*created = 1;
	m = xcalloc(1, sizeof(*m));
	m->key = key;
	m->kind = k;
	m->dbid = dbid;
	m->id = xstrdup(id);
	m->t = *t;
	m->p = *p;
	/* A Growing period began at its last reset, not now: what is in
	 * progress counts from its own start, also in a statistic made
	 * again by a worker that restarted. */
	m->acc = acc_new(t, p, profile_period_start(p, now,
	    stats_gmtoff(now)));
	acc_born(m->acc, now);		/* what happened before is not in */
	m->next_reset = profile_next_reset(p, now, stats_gmtoff(now));
	subs_reset_at(m->next_reset);
	m->valid = statistic_link_up(m);
	LIST_INIT(&m->subs);
	strmap_put(&statistics, key, m);
	if ((nd = idmap_get(&by_object, okey(k, dbid))) == NULL) {
		nd = xcalloc(1, sizeof(*nd));
		idmap_put(&by_object, okey(k, dbid), nd);
	}
	if (nd->n == nd->cap) {
		nd->cap = nd->cap ? nd->cap * 2 : 4;
		nd->v = xrealloc(nd->v, nd->cap * sizeof(*nd->v));
	}
	nd->v[nd->n++] = m;
	statistic_seed(m);
	if (keeps_counting(m)) {
		/* Saved at the next save even if nothing counts in it by
		 * then: a worker killed later reads the events since that
		 * save again, and counts them in it. */
		m->changed = stats_env.save_epoch;
		if (load)
			save_total_load(m);
	}
	return m;
}

/* statistic_drop - forget a statistic nobody has open */
void
statistic_drop(struct statistic *m)
{
	struct node	*nd = idmap_get(&by_object, okey(m->kind, m->dbid));
	size_t		 i;

	for (i = 0; nd != NULL && i < nd->n; i++)
		if (nd->v[i] == m) {
			nd->v[i] = nd->v[--nd->n];
			break;
		}
	if (nd != NULL && nd->n == 0) {
		idmap_del(&by_object, okey(m->kind, m->dbid));
		free(nd->v);
		free(nd);
	}
	subs_forget(m);
	strmap_del(&statistics, m->key);
	statistic_free(m);
}

/* statistic_seed - what is in progress now, for a new statistic */
void
statistic_seed(struct statistic *m)
{
	const struct cobj	*o;
	json_t			*members, *e;
	size_t			 i;

	if (m->kind == OBJ_AGENT) {
		seed_person(m->dbid, m);
		return;
	}
	if (m->kind == OBJ_AGENT_GROUP && (o = cache_get(m->dbid)) != NULL) {
		members = cobj_get(o, "members");
		json_array_foreach(members, i, e)
			seed_person(json_integer_value(e), m);
		json_decref(members);
		return;
	}
	/* Places, queues, DN groups, the tenant: fewer, so everything. */
	model_each(stats_env.model, seed, m);
}

/*
 * statistic_routed - a virtual queue's calls are the routing worker's
 * events (routingfeed.c); everything else, and a group that may hold
 * both, follows the voice link
 */
int
statistic_routed(const struct statistic *m)
{
	const struct dninfo	*d;

	return m->kind == OBJ_QUEUE && (d = index_dn(m->id)) != NULL &&
	    d->dbid == m->dbid && d->virtual_queue;
}

/* statistic_link_up - the link that feeds it is up */
int
statistic_link_up(const struct statistic *m)
{
	return statistic_routed(m) ? stats_env.routing_up : stats_env.link_up;
}

/* statistic_find - the statistic of a key, or NULL */
struct statistic *
statistic_find(const char *key)
{
	return strmap_get(&statistics, key);
}

/* statistic_on - the statistics open on one object, or NULL */
const struct node *
statistic_on(enum object_kind k, json_int_t dbid)
{
	return idmap_get(&by_object, okey(k, dbid));
}

struct each {
	void	(*fn)(struct statistic *, void *);
	void	 *arg;
};

static void
each(const char *key, void *v, void *arg)
{
	struct each	*e = arg;

	e->fn(v, e->arg);
}

/* statistic_each - every statistic; fn may drop the one it is given */
void
statistic_each(void (*fn)(struct statistic *, void *), void *arg)
{
	struct each	e = { fn, arg };

	strmap_each(&statistics, each, &e);
}

static void
free_statistic(const char *k, void *v, void *arg)
{
	statistic_free(v);
}

static void
free_node(uint64_t k, void *v, void *arg)
{
	struct node	*nd = v;

	free(nd->v);
	free(nd);
}

void
statistic_cleanup(void)
{
	strmap_each(&statistics, free_statistic, NULL);
	strmap_clear(&statistics);
	idmap_each(&by_object, free_node, NULL);
	idmap_clear(&by_object);
}

/* stats_gmtoff - the time zone's offset from UTC at t, in seconds */
long
stats_gmtoff(double t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	localtime_r(&tt, &tm);
	return tm.tm_gmtoff;
}

/* ---- the model's news ---- */

static void
on_start(const struct inst *i, void *arg)
{
	feed(i, F_START, 0);
}

static void
on_end(const struct inst *i, double end, void *arg)
{
	feed(i, F_END, end);
}

static void
on_instant(const struct inst *i, double duration, void *arg)
{
	feed(i, F_INSTANT, duration);
}

/* on_state - an agent's state changed: its CurrentState statistics, and
 * its entry in stats:agents */
static void
on_state(const char *agent, void *arg)
{
	struct agent_state	 st;
	json_int_t		 person;

	stats_env.model_dirty = 1;
	model_agent_state(stats_env.model, agent, &st);
	person = index_person_of_login(agent);
	agents_changed(person);
	mark_agent(person, st.dn);
}

/* mark_agent - the CurrentState (and CurrentAgentStatus) statistics of a
 * person, and of the place of the DN it is on */
static void
mark_agent(json_int_t person, const char *dn)
{
	const struct dninfo	*d;
	const struct node	*nd;
	size_t			 k;

	if ((nd = statistic_on(OBJ_AGENT, person)) != NULL)
		for (k = 0; k < nd->n; k++)
			if (nd->v[k]->t.cat == CAT_CURRENT_STATE ||
			    nd->v[k]->t.cat == CAT_AGENT_STATUS)
				subs_mark(nd->v[k]);
	if (dn != NULL && (d = index_dn(dn)) != NULL &&
	    (nd = statistic_on(OBJ_PLACE, d->place)) != NULL)
		for (k = 0; k < nd->n; k++)
			if (nd->v[k]->t.cat == CAT_CURRENT_STATE)
				subs_mark(nd->v[k]);
}

/* feed - an instance to every statistic of every object it counts for */
static void
feed(const struct inst *i, enum feed how, double arg)
{
	struct targets		 t;
	struct statistic	*m;
	const struct node	*nd;
	size_t			 k;
	int			 n;

	index_targets(i, &t);
	for (n = 0; n < t.n; n++) {
		if ((nd = statistic_on(t.k[n], t.dbid[n])) == NULL)
			continue;
		for (k = 0; k < nd->n; k++) {
			m = nd->v[k];
			/* A login starts the agent's SinceLogin period. */
			if (how == F_START && i->a == A_LOGGED_IN &&
			    t.k[n] == OBJ_AGENT && m->p.kind ==
			    PROF_SINCE_LOGIN) {
				acc_reset(m->acc, i->start);
				subs_mark(m);
			}
			if (!acc_wants(m->acc, i))
				continue;
			if (how == F_START)
				acc_start(m->acc, i);
			else if (how == F_END)
				acc_end(m->acc, i, arg);
			else
				acc_instant(m->acc, i, arg);
			subs_mark(m);
		}
	}
}

/* ---- helpers ---- */

/* seed - an instance in progress that the new statistic counts */
static void
seed(const struct inst *i, void *arg)
{
	struct statistic	*m = arg;
	struct targets		 t;
	int			 n;

	if (!acc_wants(m->acc, i))
		return;
	index_targets(i, &t);
	for (n = 0; n < t.n; n++)
		if (t.k[n] == m->kind && t.dbid[n] == m->dbid) {
			acc_start(m->acc, i);
			return;
		}
}

static void
seed_person(json_int_t person, struct statistic *m)
{
	const json_t	*codes = index_list('P', person), *e;
	size_t		 i;

	json_array_foreach(codes, i, e)
		model_each_of_agent(stats_env.model, json_string_value(e),
		    seed, m);
}

/* statistic_key - its identity: which objects a type applies to is not
 * part of it */
static char *
statistic_key(enum object_kind k, json_int_t dbid, const struct stype *t,
    const struct profile *p)
{
	struct stype	 kt = *t;
	char		 pk[PROFILE_KEY_MAX], *tdef, *key;
	json_t		*tj;

	kt.objects = 0;
	profile_key(p, pk, sizeof(pk));
	tj = stype_json(&kt);
	tdef = json_dumps(tj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(tj);
	key = xasprintf("%d/%lld/%s/%s/%s", (int)k, (long long)dbid, t->name,
	    pk, tdef);
	free(tdef);
	return key;
}

static void
statistic_free(struct statistic *m)
{
	free(m->key);
	free(m->id);
	acc_free(m->acc);
	free(m);
}

/* okey - the key of an object in by_object */
static uint64_t
okey(enum object_kind k, json_int_t dbid)
{
	return (uint64_t)(k + 1) << 56 | (uint64_t)dbid;
}
