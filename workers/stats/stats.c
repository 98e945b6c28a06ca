/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats worker - real-time statistics on workers.stats.listen, in the
 * session protocol (docs/stats.md).
 *
 * The voice events of every region (common/voice.c) feed the model
 * (model.c: agents, calls, queues), which tells what starts, ends and
 * happens.  A statistic is an object, a type, a profile and an
 * accumulator (stat.c); clients that open the same one share it.  An
 * action reaches the statistics of every object it counts for (an
 * agent's: the agent, its place, its groups, the tenant); statistics that
 * changed notify their subscribers once the events at hand are applied.
 *
 * What it may touch: the voice streams (read), its own keys in Redis
 * (tenantd:{<tenant>}:stats:*: the model's snapshot with the stream
 * positions it reflects, and the Growing totals, written every 5 s by a
 * short-lived forked child so that the loop never waits), tokens, the
 * configuration cache, the metrics registry.  Nothing in PostgreSQL but
 * reading the configuration.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "access.h"
#include "auth.h"
#include "cache.h"
#include "cfgfollow.h"
#include "idmap.h"
#include "jscan.h"
#include "jwrite.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "pgc.h"
#include "rds.h"
#include "rights.h"
#include "schema.h"
#include "seen.h"
#include "sess.h"
#include "stat.h"
#include "stats_worker.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"

#define TICK_MS			1000
#define SAVE_EVERY_S		5	/* model snapshot and totals */
#define MEDIA_MAX		8

struct client;

/* One client's interest in a metric. */
struct sub {
	struct client		*c;
	struct statistic		*m;
	json_int_t		 id;		/* statisticId */
	enum { N_CHANGES, N_PERIODIC, N_RESET, N_NONE } mode;
	double			 insensitivity;	/* percent */
	double			 interval;
	int			 has_last;	/* a value was sent */
	int			 last_is_num;
	double			 last_num;	/* the value last sent */
	char			*last_text;	/* the same, when not a number */
	struct event		*timer;		/* periodic */
	LIST_ENTRY(sub)		 m_entry;
	LIST_ENTRY(sub)		 c_entry;
};

struct statistic {
	char			*key;
	enum object_kind	 kind;
	json_int_t		 dbid;		/* 0: the tenant */
	char			*id;		/* as the client named it */
	struct stype		 t;
	struct profile		 p;
	struct acc		*acc;
	double			 next_reset;
	int			 dirty;
	uint64_t		 changed;	/* save epoch of the last change */
	int			 valid;
	LIST_HEAD(, sub)	 subs;
	TAILQ_ENTRY(statistic)	 dirty_entry;
};

/* The statistics open on one object. */
struct node {
	struct statistic	**v;
	size_t			  n, cap;
};

struct client {
	struct sess		*s;
	struct rights_sess	 rs;		/* who, and what it may do */
	size_t			 nsubs;
	LIST_HEAD(, sub)	 subs;
};

/* Another medium of an agent, as the interaction server reports it. */
struct media {
	char	 name[32];
	char	 state[16];
	int	 interactions;
};

struct media_state {
	struct media	 v[MEDIA_MAX];
	int		 n;
};

static int	 stats_start(struct event_base *, const struct conf *, int);
static int	 stats_reload_check(const struct conf *, char *, size_t);
static void	 stats_reload_apply(const struct conf *, const struct conf *);
static void	 stats_listen(int);
static void	 stats_stop(void);
static void	 stats_cleanup(void);

const struct worker_ops stats_worker_ops = {
	.start = stats_start,
	.reload_check = stats_reload_check,
	.reload_apply = stats_reload_apply,
	.listen = stats_listen,
	.stop = stats_stop,
	.cleanup = stats_cleanup,
};

static struct event_base	*base;
static struct sess_server	*srv;
static struct pgc		*pg;
static struct cfgfollow		*follow;
static struct auth		*auth;
static struct rights		*rights;
static struct rds		*kv;		/* snapshots, totals */
static struct model		*model;
static struct seen		*seen;
static struct strmap		 metrics;	/* key -> metric */
static struct idmap		 by_object;	/* okey(kind, dbid) -> node */
static struct idmap		 media;		/* person dbid -> media_state */
static TAILQ_HEAD(, statistic)	 dirty = TAILQ_HEAD_INITIALIZER(dirty);
static struct event		*ev_tick, *ev_flush, *ev_drain, *ev_load;
static char			*k_model, *k_growing;
static json_int_t		 next_stat_id;
static size_t			 nsubs;
static int			 ready, voice_started, model_dirty, link_up;
static int			 index_stale = 1;
static double			 lag;
static uint64_t			 last_save_us;
static pid_t			 saver;		/* the saving child */
/* Saves by epoch: a statistic changed in epoch save_from or later is
 * not saved yet; a save takes those, and the epoch moves on. */
static uint64_t			 save_epoch = 1, save_from = 1, saver_from;
static double			 reset_min;	/* the next reset of any */
static int			 saver_model;	/* it saves the model too */

/* The members of an event the model reads, beyond those every worker
 * routes by: voice_read_also finds them in the pass that checks it. */
static const char *const model_members[] = { "agentId", "workMode",
    "reason", "connId", "previousConnId", "callType", "userData" };

/* Configuration indexes, rebuilt when the configuration changes. */
static struct strmap	 ix_login;	/* login code -> person dbid */
static struct strmap	 ix_employee;	/* employeeId/userName -> person */
static struct strmap	 ix_dn;		/* DN number -> dninfo */
static struct idmap	 ix_lists;	/* lkey(prefix, dbid) -> json array */
static struct idmap	 ix_eid;	/* person dbid -> its employeeId */

/* Agent states to write to Redis (stats:agents). */
static struct idmap	 st_dirty;	/* person dbid -> its st_list slot */
static json_int_t	*st_list;
static size_t		 st_n, st_cap;
static int		 st_inflight, st_resync = 1;
static char		*k_agents;

/* The voice side's state hash, to make the model agree with once the
 * live reader is where it was taken (a new boot of the voice side, or
 * events the reader may have missed). */
#define CUT_BOOT	0x1	/* drop what the hash does not list */
#define CUT_GAP		0x2	/* and take in what it lists */
static json_t		*cut_state;
static struct sid	 cut_at;
static int		 cut_tries, cut_busy;
static int		 cut_want;	/* CUT_*: a cut is due */
static int		 cut_doing;	/* what the cut under way is for */
static int		 gap_fresh;	/* no event applied since the gap */
static int		 start_gap;	/* no snapshot: the stream's start unread */
static char		 boot_known[65];	/* the voice side's, the model's */

static struct metric	*m_open, *m_notified, *m_events, *m_refused,
			*m_lag, *m_clients;

static void	on_request(struct sess *, const char *, json_int_t, json_t *,
		    void *);
static enum sess_open on_open(struct sess *, json_t *, json_t *, void *,
		    const char **);
static void	on_closed(struct sess *, void *);
static void	on_opened(struct rights_sess *, enum sess_open, const char *,
		    void *);
static void	on_rights_changed(struct rights_sess *, void *);
static void	on_voice_event(struct voice_event *, void *);
static void	on_link(int, void *);
static void	on_boot(const char *, void *);
static void	on_gap(int, const char *, void *);
static void	cut_begin(void);
static void	cut_check(void);
static void	cut_reached(const struct sid *);
static void	schedule_flush(void);

static void	statistic_drop(struct statistic *);
static void	seed_metric(struct statistic *);
static void	agent_changed(json_int_t);
static void	states_write(void);
static void	index_fresh(void);
static void	note_reset(double);
static void	on_load(evutil_socket_t, short, void *);
static long	gmtoff_at(double);
static struct statistic *statistic_get(enum object_kind, json_int_t,
		    const char *, const struct stype *, const struct profile *,
		    int, int *);

/* keeps_counting - a Growing total lives on without subscribers */
static int
keeps_counting(const struct statistic *m)
{
	return m->p.kind == PROF_GROWING && m->t.cat != CAT_CURRENT_STATE &&
	    m->t.cat != CAT_AGENT_STATUS;
}

/* ---- configuration indexes ---- */

/* A DN number as the configuration has it. */
struct dninfo {
	json_int_t	 dbid;
	json_int_t	 place;		/* the place it is in, or 0 */
	enum dn_kind	 kind;
};

/* lkey - the key of a list of the index (prefix: which list) */
static uint64_t
lkey(char prefix, json_int_t dbid)
{
	return (uint64_t)(unsigned char)prefix << 56 | (uint64_t)dbid;
}

static void
free_json(uint64_t k, void *v, void *arg)
{
	json_decref(v);
}

static void
free_plain(const char *k, void *v, void *arg)
{
	free(v);
}

/* free_value - a value the map owns, for idmap_each */
static void
free_value(uint64_t k, void *v, void *arg)
{
	free(v);
}

/* node_free - a node of by_object, for idmap_each */
static void
node_free(uint64_t k, void *v, void *arg)
{
	struct node	*nd = v;

	free(nd->v);
	free(nd);
}

static void
ix_clear(void)
{
	idmap_each(&ix_lists, free_json, NULL);
	idmap_clear(&ix_lists);
	idmap_each(&ix_eid, free_value, NULL);
	idmap_clear(&ix_eid);
	strmap_each(&ix_login, free_plain, NULL);
	strmap_each(&ix_employee, free_plain, NULL);
	strmap_each(&ix_dn, free_plain, NULL);
	strmap_clear(&ix_login);
	strmap_clear(&ix_employee);
	strmap_clear(&ix_dn);
}

static void
ix_put_dbid(struct strmap *m, const char *key, json_int_t dbid)
{
	json_int_t	*v = xmalloc(sizeof(*v));

	*v = dbid;
	free(strmap_put(m, key, v));
}

static json_int_t
ix_get_dbid(const struct strmap *m, const char *key)
{
	json_int_t	*v = strmap_get(m, key);

	return v != NULL ? *v : 0;
}

/* ix_list - add v to the list under prefix + dbid: a person's login codes
 * ('P'), a place's DN numbers ('L'), the groups a person ('p'), a place
 * ('l') or a DN ('d') is in */
static void
ix_list(char prefix, json_int_t dbid, json_t *v)
{
	json_t	*a;

	if ((a = idmap_get(&ix_lists, lkey(prefix, dbid))) == NULL) {
		a = json_array();
		idmap_put(&ix_lists, lkey(prefix, dbid), a);
	}
	json_array_append_new(a, v);
}

/* ix_lookup - the list under prefix + dbid, or NULL */
static const json_t *
ix_lookup(char prefix, json_int_t dbid)
{
	index_fresh();
	return idmap_get(&ix_lists, lkey(prefix, dbid));
}

static void
index_groups(enum cfg_kind kind, char prefix)
{
	const struct cobj *const	*v;
	size_t				 n, i, j;
	json_t				*members, *e;

	v = cache_list(kind, &n);
	for (i = 0; i < n; i++) {
		if (!v[i]->enabled)
			continue;
		members = cobj_get(v[i], "members");
		json_array_foreach(members, j, e)
			ix_list(prefix, json_integer_value(e),
			    json_integer(v[i]->dbid));
		json_decref(members);
	}
}

/* kind_of - what a DN's type makes it for the model */
static enum dn_kind
kind_of(const char *type)
{
	if (type == NULL)
		return DNK_PHONE;
	if (strcmp(type, "ACDQueue") == 0 || strcmp(type, "VirtualQueue") ==
	    0 || strcmp(type, "RoutingQueue") == 0)
		return DNK_QUEUE;
	if (strcmp(type, "RoutingPoint") == 0 ||
	    strcmp(type, "VirtualRoutingPoint") == 0)
		return DNK_RP;
	return DNK_PHONE;
}

/* index_build - who is in which group, whose login, which DN where */
static void
index_build(void)
{
	const struct cobj *const	*v;
	const struct cobj		*o;
	struct dninfo			*d;
	size_t				 n, i, j;
	json_t				*x, *e;
	const char			*s;

	ix_clear();
	v = cache_list(CFG_PERSON, &n);
	for (i = 0; i < n; i++) {
		x = cobj_get(v[i], "employeeId");
		s = json_string_value(x);
		if (s == NULL) {
			json_decref(x);
			x = cobj_get(v[i], "userName");
			s = json_string_value(x);
		}
		if (s != NULL) {
			ix_put_dbid(&ix_employee, s, v[i]->dbid);
			idmap_put(&ix_eid, (uint64_t)v[i]->dbid, xstrdup(s));
		}
		json_decref(x);
		for (j = 0; j < v[i]->nrefs; j++) {
			if ((o = cache_get(v[i]->refs[j])) == NULL ||
			    o->kind != CFG_AGENT_LOGIN)
				continue;
			x = cobj_get(o, "loginCode");
			if (json_string_value(x) != NULL) {
				ix_put_dbid(&ix_login, json_string_value(x),
				    v[i]->dbid);
				ix_list('P', v[i]->dbid, json_incref(x));
			}
			json_decref(x);
		}
	}
	v = cache_list(CFG_DN, &n);
	for (i = 0; i < n; i++) {
		x = cobj_get(v[i], "number");
		e = cobj_get(v[i], "type");
		if (json_string_value(x) != NULL) {
			d = xcalloc(1, sizeof(*d));
			d->dbid = v[i]->dbid;
			d->kind = kind_of(json_string_value(e));
			free(strmap_put(&ix_dn, json_string_value(x), d));
		}
		json_decref(e);
		json_decref(x);
	}
	v = cache_list(CFG_PLACE, &n);
	for (i = 0; i < n; i++) {
		x = cobj_get(v[i], "dns");
		json_array_foreach(x, j, e) {
			json_t	*num;

			if ((o = cache_get(json_integer_value(e))) == NULL)
				continue;
			num = cobj_get(o, "number");
			if ((d = strmap_get(&ix_dn, json_string_value(num) ?
			    json_string_value(num) : "")) != NULL) {
				d->place = v[i]->dbid;
				ix_list('L', v[i]->dbid, json_incref(num));
			}
			json_decref(num);
		}
		json_decref(x);
	}
	index_groups(CFG_AGENT_GROUP, 'p');
	index_groups(CFG_PLACE_GROUP, 'l');
	index_groups(CFG_DN_GROUP, 'd');
	index_stale = 0;
}

static void
index_fresh(void)
{
	if (index_stale)
		index_build();
}

/* dn_info - what the configuration says of a DN number, or NULL */
static const struct dninfo *
dn_info(const char *number)
{
	index_fresh();
	return strmap_get(&ix_dn, number);
}

/* dn_kind - what the configuration says a DN number is */
static enum dn_kind
dn_kind(const char *number, void *arg)
{
	const struct dninfo	*d = dn_info(number);

	return d != NULL ? d->kind : DNK_UNKNOWN;
}

/* ---- objects ---- */

/* object_find - (type, id) as a client names it; dbid 0 for the tenant */
static int
object_find(enum object_kind k, const char *id, json_int_t *dbid)
{
	const struct cobj	*o;
	const struct dninfo	*d;

	index_fresh();
	*dbid = 0;
	switch (k) {
	case OBJ_AGENT:
		*dbid = ix_get_dbid(&ix_employee, id);
		break;
	case OBJ_PLACE:
		o = cache_find(CFG_PLACE, id);
		*dbid = o != NULL ? o->dbid : 0;
		break;
	case OBJ_AGENT_GROUP:
		o = cache_find(CFG_AGENT_GROUP, id);
		*dbid = o != NULL ? o->dbid : 0;
		break;
	case OBJ_PLACE_GROUP:
		o = cache_find(CFG_PLACE_GROUP, id);
		*dbid = o != NULL ? o->dbid : 0;
		break;
	case OBJ_DN_GROUP:
		o = cache_find(CFG_DN_GROUP, id);
		*dbid = o != NULL ? o->dbid : 0;
		break;
	case OBJ_QUEUE:
	case OBJ_RP:
		if ((d = dn_info(id)) != NULL && d->kind == (k == OBJ_QUEUE ?
		    DNK_QUEUE : DNK_RP))
			*dbid = d->dbid;
		break;
	case OBJ_TENANT:
		return 0;
	default:
		break;
	}
	return *dbid > 0 ? 0 : -1;
}

/* okey - the key of an object in by_object */
static uint64_t
okey(enum object_kind k, json_int_t dbid)
{
	return (uint64_t)(k + 1) << 56 | (uint64_t)dbid;
}

/* metrics_of - the statistics open on one object, or NULL */
static const struct node *
metrics_of(enum object_kind k, json_int_t dbid)
{
	return idmap_get(&by_object, okey(k, dbid));
}

/* The objects an instance counts for. */
struct targets {
	enum object_kind	 k[64];
	json_int_t		 dbid[64];
	int			 n;
};

static void
target(struct targets *t, enum object_kind k, json_int_t dbid)
{
	if (t->n < (int)NELEM(t->k)) {
		t->k[t->n] = k;
		t->dbid[t->n] = dbid;
		t->n++;
	}
}

static void
groups_of(struct targets *t, char prefix, json_int_t member,
    enum object_kind k)
{
	const json_t	*a = idmap_get(&ix_lists, lkey(prefix, member)), *e;
	size_t		 i;

	json_array_foreach(a, i, e)
		target(t, k, json_integer_value(e));
}

static void
targets_of(const struct inst *i, struct targets *t)
{
	const struct dninfo	*d, *prior;
	const json_t		*groups, *had, *g, *e;
	json_int_t		 person;
	size_t			 k, n;

	index_fresh();
	t->n = 0;
	if (i->of_agent || !i->repeat)	/* the tenant counts a call once */
		target(t, OBJ_TENANT, 0);
	d = i->dn != NULL ? strmap_get(&ix_dn, i->dn) : NULL;
	if (i->of_agent) {
		person = i->agent != NULL ? ix_get_dbid(&ix_login, i->agent) :
		    0;
		if (person > 0) {
			target(t, OBJ_AGENT, person);
			groups_of(t, 'p', person, OBJ_AGENT_GROUP);
		}
		if (d != NULL && d->place > 0) {
			target(t, OBJ_PLACE, d->place);
			groups_of(t, 'l', d->place, OBJ_PLACE_GROUP);
		}
		return;
	}
	if (d == NULL)
		return;
	target(t, d->kind == DNK_RP ? OBJ_RP : OBJ_QUEUE, d->dbid);
	/* A DN group counts a call once, like the tenant: not again at a
	 * queue of the group it reached through a routing point of it. */
	prior = i->repeat && i->prior != NULL ? strmap_get(&ix_dn, i->prior) :
	    NULL;
	had = prior != NULL ? idmap_get(&ix_lists, lkey('d', prior->dbid)) :
	    NULL;
	groups = idmap_get(&ix_lists, lkey('d', d->dbid));
	json_array_foreach(groups, k, g) {
		json_array_foreach(had, n, e)
			if (json_integer_value(e) == json_integer_value(g))
				break;
		if (n == json_array_size(had))
			target(t, OBJ_DN_GROUP, json_integer_value(g));
	}
}

/* ---- the model's news reaches the metrics ---- */

static void
mark(struct statistic *m)
{
	m->changed = save_epoch;
	if (m->dirty)
		return;
	m->dirty = 1;
	TAILQ_INSERT_TAIL(&dirty, m, dirty_entry);
	schedule_flush();
}

enum feed { F_START, F_END, F_INSTANT };

static void
feed(const struct inst *i, enum feed how, double arg)
{
	struct targets		 t;
	struct statistic	*m;
	const struct node	*nd;
	size_t			 k;
	int			 n;

	targets_of(i, &t);
	for (n = 0; n < t.n; n++) {
		if ((nd = metrics_of(t.k[n], t.dbid[n])) == NULL)
			continue;
		for (k = 0; k < nd->n; k++) {
			m = nd->v[k];
			/* A login starts the agent's SinceLogin period. */
			if (how == F_START && i->a == A_LOGGED_IN &&
			    t.k[n] == OBJ_AGENT && m->p.kind ==
			    PROF_SINCE_LOGIN) {
				acc_reset(m->acc, i->start);
				mark(m);
			}
			if (!acc_wants(m->acc, i))
				continue;
			if (how == F_START)
				acc_start(m->acc, i);
			else if (how == F_END)
				acc_end(m->acc, i, arg);
			else
				acc_instant(m->acc, i, arg);
			mark(m);
		}
	}
}

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

/* on_state - an agent's state changed: its CurrentState metrics */
static void
on_state(const char *agent, void *arg)
{
	struct agent_state	 st;
	const struct dninfo	*d;
	const struct node	*nd;
	json_int_t		 person;
	size_t			 k;

	index_fresh();
	model_dirty = 1;
	model_agent_state(model, agent, &st);
	person = ix_get_dbid(&ix_login, agent);
	agent_changed(person);
	if ((nd = metrics_of(OBJ_AGENT, person)) != NULL)
		for (k = 0; k < nd->n; k++)
			if (nd->v[k]->t.cat == CAT_CURRENT_STATE ||
			    nd->v[k]->t.cat == CAT_AGENT_STATUS)
				mark(nd->v[k]);
	if (st.dn != NULL && (d = strmap_get(&ix_dn, st.dn)) != NULL &&
	    (nd = metrics_of(OBJ_PLACE, d->place)) != NULL)
		for (k = 0; k < nd->n; k++)
			if (nd->v[k]->t.cat == CAT_CURRENT_STATE)
				mark(nd->v[k]);
}

/* ---- values ---- */

static double
now_s(void)
{
	return (double)now_wall_us() / 1e6;
}

/* agent_login_of - the login code a person is logged in with, if any */
static const char *
agent_login_of(json_int_t person, struct agent_state *st)
{
	const json_t	*codes = ix_lookup('P', person), *e;
	const char	*code;
	size_t		 i;

	json_array_foreach(codes, i, e) {
		code = json_string_value(e);
		if (model_agent_state(model, code, st) == 0 &&
		    strcmp(st->state, "LoggedOut") != 0)
			return code;
	}
	return NULL;
}

/* state_text - an agent's state as the JSON object of its value */
static void
state_text(struct jw *w, const struct agent_state *st, const char *agent)
{
	jw_lit(w, "{\"state\":");
	jw_str(w, st->state);
	jw_lit(w, ",\"since\":");
	jw_int(w, llround(st->since * 1000));
	if (agent != NULL) {
		jw_lit(w, ",\"agentId\":");
		jw_str(w, agent);
	}
	if (st->reason != NULL) {
		jw_lit(w, ",\"reason\":");
		jw_str(w, st->reason);
	}
	if (st->work_mode != NULL) {
		jw_lit(w, ",\"workMode\":");
		jw_str(w, st->work_mode);
	}
	if (st->dn != NULL) {
		jw_lit(w, ",\"dn\":");
		jw_str(w, st->dn);
	}
	if (st->conn_id != NULL) {
		jw_lit(w, ",\"connId\":");
		jw_str(w, st->conn_id);
	}
	jw_lit(w, "}");
}

/* person_state - CurrentState of a person */
static void
person_state(json_int_t person, struct jw *w)
{
	struct agent_state	 st;
	const char		*agent;

	memset(&st, 0, sizeof(st));
	st.state = "LoggedOut";
	agent = agent_login_of(person, &st);
	state_text(w, &st, agent);
}

/* current_state - CurrentState of an agent or a place */
static void
current_state(const struct statistic *m, struct jw *w)
{
	struct agent_state	 st;
	const char		*agent = NULL, *num;
	const json_t		*dns, *e;
	size_t			 i;

	if (m->kind == OBJ_AGENT) {
		person_state(m->dbid, w);
		return;
	}
	memset(&st, 0, sizeof(st));
	st.state = "LoggedOut";
	dns = ix_lookup('L', m->dbid);
	json_array_foreach(dns, i, e) {
		num = json_string_value(e);
		if ((agent = model_dn_agent(model, num)) != NULL) {
			model_agent_state(model, agent, &st);
			break;
		}
	}
	state_text(w, &st, agent);
}

/* capacity - the person's capacity rule, from the stats Application */
static json_t *
capacity_rule(json_int_t person)
{
	const struct cobj	*app, *o;
	json_t			*opts, *up, *rule, *name;
	const char		*rn = "default";
	char			 sec[160];

	o = cache_get(person);
	up = o != NULL ? cobj_get(o, "userProperties") : NULL;
	name = json_object_get(json_object_get(up, "stats"), "capacityRule");
	if (json_is_string(name))
		rn = json_string_value(name);
	snprintf(sec, sizeof(sec), "capacity:%s", rn);
	app = cache_find(CFG_APPLICATION,
	    worker_conf()->workers[WORKER_STATS].application);
	opts = app != NULL ? cobj_get(app, "options") : NULL;
	rule = json_incref(json_object_get(opts, sec));
	json_decref(opts);
	json_decref(up);
	if (rule == NULL)
		rule = json_pack("{s:i}", "voice", 1);
	return rule;
}

static int
limit_of(const json_t *rule, const char *medium)
{
	const json_t	*v = json_object_get(rule, medium);

	if (json_is_integer(v))
		return (int)json_integer_value(v);
	if (json_is_string(v))
		return atoi(json_string_value(v));
	return 0;
}

/* agent_status - CurrentAgentStatus: what each medium can take more of */
static json_t *
agent_status(const struct statistic *m)
{
	struct media_state	*ms;
	struct agent_state	 st;
	json_t			*rule = capacity_rule(m->dbid), *out, *med, *can;
	const char		*ex = json_string_value(json_object_get(rule,
				    "exclusive")), *k;
	struct media		 all[MEDIA_MAX + 1];
	int			 n = 0, i, busy_ex = 0, busy_other = 0;
	json_t			*v;

	memset(&st, 0, sizeof(st));
	st.state = "LoggedOut";
	agent_login_of(m->dbid, &st);
	snprintf(all[0].name, sizeof(all[0].name), "voice");
	snprintf(all[0].state, sizeof(all[0].state), "%s",
	    strcmp(st.state, "LoggedOut") == 0 ? "LoggedOut" :
	    strcmp(st.state, "Ready") == 0 || st.conn_id != NULL ? "Ready" :
	    "NotReady");
	all[0].interactions = st.conn_id != NULL ? 1 : 0;
	n = 1;
	if ((ms = idmap_get(&media, (uint64_t)m->dbid)) != NULL)
		for (i = 0; i < ms->n && n < MEDIA_MAX + 1; i++)
			all[n++] = ms->v[i];
	/* Rules may name media nobody reported: they are logged out. */
	json_object_foreach(rule, k, v) {
		if (strcmp(k, "exclusive") == 0)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(all[i].name, k) == 0)
				break;
		if (i == n && n < MEDIA_MAX + 1) {
			snprintf(all[n].name, sizeof(all[n].name), "%s", k);
			snprintf(all[n].state, sizeof(all[n].state),
			    "LoggedOut");
			all[n++].interactions = 0;
		}
	}
	for (i = 0; i < n; i++)
		if (all[i].interactions > 0) {
			if (ex != NULL && strcmp(all[i].name, ex) == 0)
				busy_ex = 1;
			else
				busy_other = 1;
		}
	out = json_object();
	med = json_object();
	can = json_array();
	for (i = 0; i < n; i++) {
		int	cap = limit_of(rule, all[i].name);
		int	avail = cap - all[i].interactions;
		int	is_ex = ex != NULL && strcmp(all[i].name, ex) == 0;

		if (avail < 0)
			avail = 0;
		if (strcmp(all[i].state, "Ready") != 0 || busy_ex ||
		    (is_ex && busy_other))
			avail = 0;
		json_object_set_new(med, all[i].name, json_pack("{s:s, s:i, "
		    "s:i, s:i}", "state", all[i].state, "interactions",
		    all[i].interactions, "capacity", cap, "available", avail));
		if (avail > 0)
			json_array_append_new(can, json_string(all[i].name));
	}
	json_object_set_new(out, "media", med);
	json_object_set_new(out, "canTake", can);
	json_decref(rule);
	return out;
}

/* ---- notifications ---- */

/* A value as sent: a number, or an object's compact JSON text. */
struct value {
	int		 is_num;
	double		 num;
	const char	*text;
	struct jw	 w;
	char		 buf[256];
};

/* value_get - the statistic's value, formatted once for every subscriber */
static void
value_get(const struct statistic *m, double now, struct value *v)
{
	json_t	*j;
	char	*text;

	jw_init(&v->w, v->buf, sizeof(v->buf));
	v->text = v->buf;
	v->is_num = 0;
	v->num = 0;
	if (m->t.cat == CAT_CURRENT_STATE) {
		current_state(m, &v->w);
		v->text = v->w.p;
		return;
	}
	if (m->t.cat == CAT_AGENT_STATUS) {
		j = agent_status(m);
		if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
			fatalx("stats: a value cannot be encoded");
		jw_raw(&v->w, text, strlen(text));
		free(text);
		json_decref(j);
		v->text = v->w.p;
		return;
	}
	v->is_num = 1;
	v->num = acc_value(m->acc, now);
	if (m->t.cat == CAT_CURRENT_NUMBER || m->t.cat == CAT_TOTAL_NUMBER) {
		v->num = (double)llround(v->num);
		jw_int(&v->w, (long long)v->num);
	} else {
		v->num = round(v->num * 1000) / 1000;
		snprintf(v->buf, sizeof(v->buf), "%.3f", v->num);
	}
}

static void
value_free(struct value *v)
{
	jw_free(&v->w);
}

/* value_json - the value as a tree, for a reply built as one */
static json_t *
value_json(const struct value *v, const struct statistic *m)
{
	json_t	*j;

	if (!v->is_num) {
		if ((j = json_loads(v->text, 0, NULL)) == NULL)
			fatalx("stats: a value does not parse: %s", v->text);
		return j;
	}
	if (m->t.cat == CAT_CURRENT_NUMBER || m->t.cat == CAT_TOTAL_NUMBER)
		return json_integer((json_int_t)v->num);
	return json_real(v->num);
}

/* send_info - EventInfo, written straight as its line */
static void
send_info(struct sub *s, const struct value *v, json_int_t ref)
{
	struct jw	 w;
	char		 buf[512];

	jw_init(&w, buf, sizeof(buf));
	jw_lit(&w, "{\"event\":\"EventInfo\",\"statisticId\":");
	jw_int(&w, s->id);
	jw_lit(&w, ",\"value\":");
	jw_raw(&w, v->text, strlen(v->text));
	jw_lit(&w, ",\"time\":");
	jw_int(&w, (long long)(now_wall_us() / 1000));
	if (ref >= 0) {
		jw_lit(&w, ",\"ref\":");
		jw_int(&w, ref);
	}
	jw_lit(&w, "}\n");
	sess_send_line(s->c->s, w.p, w.n);
	jw_free(&w);
	if (ref < 0) {			/* a peek sets no new baseline */
		s->has_last = 1;
		s->last_is_num = v->is_num;
		s->last_num = v->num;
		free(s->last_text);
		s->last_text = v->is_num ? NULL : xstrdup(v->text);
	}
	metric_inc(m_notified);
}

/* changed - far enough from what the client last got */
static int
changed(const struct sub *s, const struct value *v)
{
	double	a = s->last_num, b = v->num;

	if (!s->has_last || v->is_num != s->last_is_num)
		return 1;
	if (!v->is_num)
		return strcmp(v->text, s->last_text) != 0;
	if (a == b)
		return 0;
	if (s->insensitivity <= 0 || a == 0)
		return 1;
	return fabs(b - a) * 100.0 / fabs(a) > s->insensitivity;
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct statistic	*m;
	struct sub		*s;
	struct value		 v;
	double			 now = now_s();

	while ((m = TAILQ_FIRST(&dirty)) != NULL) {
		TAILQ_REMOVE(&dirty, m, dirty_entry);
		m->dirty = 0;
		if (!m->valid || LIST_EMPTY(&m->subs))
			continue;
		value_get(m, now, &v);
		LIST_FOREACH(s, &m->subs, m_entry)
			if (s->mode == N_CHANGES && changed(s, &v))
				send_info(s, &v, SESS_NOREF);
		value_free(&v);
	}
	states_write();
}

static void
schedule_flush(void)
{
	struct timeval	zero = { 0, 0 };

	if (ev_flush != NULL && !evtimer_pending(ev_flush, NULL))
		evtimer_add(ev_flush, &zero);
}

static void
on_periodic(evutil_socket_t fd, short what, void *arg)
{
	struct sub	*s = arg;
	struct value	 v;

	if (!s->m->valid)
		return;
	value_get(s->m, now_s(), &v);
	send_info(s, &v, SESS_NOREF);
	value_free(&v);
}

/* ---- agent states in Redis ---- */

/*
 * stats:agents holds every agent's CurrentAgentState by employeeId, for
 * the routing worker and other instances.  A changed state is written
 * once the events at hand are applied; while a write is out, changes
 * gather for the next.  After a failed write, and at start, the whole
 * hash is written again.
 */

/* agent_changed - person's state is to be written */
static void
agent_changed(json_int_t person)
{
	if (person <= 0 || idmap_get(&st_dirty, (uint64_t)person) != NULL)
		return;
	idmap_put(&st_dirty, (uint64_t)person, &st_dirty);
	if (st_n == st_cap) {
		st_cap = st_cap ? st_cap * 2 : 256;
		st_list = xrealloc(st_list, st_cap * sizeof(*st_list));
	}
	st_list[st_n++] = person;
	schedule_flush();
}

/* states_written - a write of agent states answered */
static void
states_written(struct rds *r, const redisReply *rep, void *arg)
{
	st_inflight = 0;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		if (!st_resync)
			log_warnx("stats: agent states not written to Redis "
			    "(%s); all of them will be, once it answers",
			    rep != NULL ? rep->str : "no connection");
		st_resync = 1;
	} else if (st_n > 0 || st_resync)
		schedule_flush();
}

/* on_kv_state - a Redis that comes back may have lost the hash */
static void
on_kv_state(struct rds *r, enum rds_state state, void *arg)
{
	if (state == RDS_UP) {
		st_resync = 1;
		schedule_flush();
	}
}

/* every_agent - for strmap_each over the login codes */
static void
every_agent(const char *code, void *v, void *arg)
{
	agent_changed(*(json_int_t *)v);
}

/* states_write - the changed agent states to Redis, in one command */
static void
states_write(void)
{
	const char	**argv;
	size_t		 *len, i, n = 0;
	struct jw	  w;
	char		  buf[256];
	const char	 *eid;
	char		**texts;
	int		  ok;

	if (st_inflight || !voice_started || rds_state(kv) != RDS_UP)
		return;
	if (st_resync) {
		index_fresh();
		strmap_each(&ix_login, every_agent, NULL);
	}
	if (st_n == 0 && !st_resync)
		return;
	argv = xcalloc(2 + 2 * st_n, sizeof(*argv));
	len = xcalloc(2 + 2 * st_n, sizeof(*len));
	texts = xcalloc(st_n + 1, sizeof(*texts));
	argv[0] = "HSET";
	argv[1] = k_agents;
	for (i = 0; i < st_n; i++) {
		idmap_del(&st_dirty, (uint64_t)st_list[i]);
		if ((eid = idmap_get(&ix_eid, (uint64_t)st_list[i])) == NULL)
			continue;
		jw_init(&w, buf, sizeof(buf));
		person_state(st_list[i], &w);
		texts[n] = xstrdup(w.p);
		jw_free(&w);
		argv[2 + 2 * n] = eid;
		argv[3 + 2 * n] = texts[n];
		n++;
	}
	st_n = 0;
	for (i = 0; i < 2 + 2 * n; i++)
		len[i] = strlen(argv[i]);
	if (n == 0) {
		/* A whole write of no agent at all: none in the hash. */
		if (st_resync && rds_command(kv, NULL, NULL, "DEL %s",
		    k_agents) == 0)
			st_resync = 0;
	} else {
		/* All of them: the hash is replaced, at once for a reader. */
		if (st_resync) {
			rds_command(kv, NULL, NULL, "MULTI");
			rds_command(kv, NULL, NULL, "DEL %s", k_agents);
		}
		ok = rds_command_argv(kv, st_resync ? NULL : states_written,
		    NULL, 2 + 2 * (int)n, argv, len) == 0;
		if (st_resync)
			rds_command(kv, ok ? states_written : NULL, NULL,
			    ok ? "EXEC" : "DISCARD");
		st_inflight = ok;
		st_resync = !ok;
	}
	for (i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(argv);
	free(len);
}

/* ---- Growing totals kept over a restart ---- */

static void
loaded_cb(struct rds *r, const redisReply *rep, void *arg)
{
	char		*key = arg;
	struct statistic	*m = strmap_get(&metrics, key);
	json_t		*j;

	free(key);
	if (m == NULL || rep == NULL || rep->type != REDIS_REPLY_STRING)
		return;
	j = json_loadb(rep->str, rep->len, 0, NULL);
	/* The same period only: the reset it was heading for. */
	if (j != NULL && json_number_value(json_object_get(j, "nextReset")) ==
	    m->next_reset && acc_load(m->acc, json_object_get(j, "acc")) == 0)
		mark(m);
	json_decref(j);
}

/* ---- saving: the model's snapshot and the Growing totals ---- */

/* saved_text - what is kept of a Growing statistic: enough to remake it */
static char *
saved_text(const struct statistic *m)
{
	json_t	*j;
	char	*text;

	j = json_pack("{s:f, s:o, s:i, s:I, s:s, s:s, s:o, s:o}", "nextReset",
	    m->next_reset, "acc", acc_save(m->acc), "kind", (int)m->kind,
	    "dbid", m->dbid, "id", m->id, "name", m->t.name, "type",
	    stype_json(&m->t), "profile", profile_json(&m->p));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* snapshot_text - the model with the stream positions it reflects */
static char *
snapshot_text(void)
{
	json_t	*j, *pos;
	char	*text, id[64];
	int	 i;

	j = json_pack("{s:o}", "model", model_dump(model));
	pos = json_object();
	for (i = 0; i < voice_nregions(); i++) {
		sid_format(voice_region_position(i), id, sizeof(id));
		json_object_set_new(pos, voice_region_name(i), json_string(id));
	}
	json_object_set_new(j, "positions", pos);
	if (boot_known[0] != '\0')
		json_object_set_new(j, "boot", json_string(boot_known));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

struct child_save {
	redisContext	*rc;
	int		 n;		/* commands sent */
};

static void
child_total(const char *key, void *v, void *arg)
{
	struct statistic	*m = v;
	struct child_save	*cs = arg;
	char			*text;

	if (!keeps_counting(m) || m->changed < save_from)
		return;
	text = saved_text(m);
	redisAppendCommand(cs->rc, "HSET %s %s %s", k_growing, key, text);
	free(text);
	cs->n++;
}

/*
 * child_save - in the child: serialize and write, blocking, then exit.
 * It touches nothing of the parent's but memory it reads.
 */
static void __attribute__((noreturn))
child_save(int model_too)
{
	const struct conf	*c = worker_conf();
	struct timeval		 tv = { 5, 0 };
	struct child_save	 cs;
	redisReply		*rep;
	char			*text;
	int			 ok = 1;

	/* The parent serves clients meanwhile: let it go first.  Its
	 * sockets are the parent's: a client that leaves, or a worker that
	 * dies, must not find them held open by the child. */
	(void)setpriority(PRIO_PROCESS, 0, 19);
	closefrom(3);
	cs.n = 0;
	cs.rc = c->redis.host[0] == '/' ? redisConnectUnixWithTimeout(
	    c->redis.host, tv) : redisConnectWithTimeout(c->redis.host,
	    c->redis.port, tv);
	if (cs.rc == NULL || cs.rc->err)
		_exit(1);
	redisSetTimeout(cs.rc, tv);
	if (c->redis.password != NULL) {
		redisAppendCommand(cs.rc, "AUTH %s", c->redis.password);
		cs.n++;
	}
	if (model_too) {
		text = snapshot_text();
		redisAppendCommand(cs.rc, "SET %s %s", k_model, text);
		free(text);
		cs.n++;
	}
	strmap_each(&metrics, child_total, &cs);
	while (cs.n-- > 0) {
		if (redisGetReply(cs.rc, (void **)&rep) != REDIS_OK) {
			ok = 0;
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR)
			ok = 0;
		freeReplyObject(rep);
	}
	_exit(ok ? 0 : 1);
}

/*
 * persist - save what changed from a forked child: the fork hands it the
 * state as it is now (pages shared until written), and the loop goes on
 * while it serializes 10,000 agents and the totals, which would stall the
 * loop for a good part of a second.  One child at a time; reaped by
 * the tick.  wait: for a stop, block until it is done.
 */
static void
persist(int wait)
{
	int	model_too = model_dirty && voice_started;
	pid_t	pid;

	if (saver > 0 || rds_state(kv) != RDS_UP)
		return;
	if ((pid = fork()) == -1) {
		log_warn("stats: fork to save the state");
		return;
	}
	if (pid == 0)
		child_save(model_too);
	saver = pid;
	saver_model = model_too;
	if (model_too)
		model_dirty = 0;
	/* What changes from now on goes in the next save. */
	saver_from = save_from;
	save_from = ++save_epoch;
	if (wait) {
		int	status;

		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		saver = 0;
	}
}

/* reap - the saving child is done: if it failed, save all again */
static void
reap(void)
{
	int	status;
	pid_t	r;

	if (saver <= 0)
		return;
	if ((r = waitpid(saver, &status, WNOHANG)) == 0)
		return;
	if (r == saver && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		log_warnx("stats: saving the state to Redis failed; again at "
		    "the next tick");
		if (saver_model)
			model_dirty = 1;
		save_from = saver_from;		/* those changes again */
	}
	saver = 0;
}

/* Where each region's stream is read from after a restart. */
static char	*resume_from[VOICE_REGIONS_MAX];

/*
 * start_voice - the model and totals are back: read the events since.
 * Without a snapshot the reader starts at the stream's end, and what
 * came before (agents logged in, calls up) is known only from the state
 * hash: that is a gap too.
 */
static void
start_voice(void)
{
	struct voice_cbs	vc = { on_voice_event, on_link, on_boot };
	int			i;

	voice_read_also(model_members, NELEM(model_members));
	voice_on_gap(on_gap);
	voice_start_from(base, worker_conf(), resume_from, &vc, NULL);
	voice_started = 1;
	for (i = 0; i < VOICE_REGIONS_MAX; i++) {
		free(resume_from[i]);
		resume_from[i] = NULL;
	}
	if (start_gap)
		on_gap(0, "no snapshot of the model: the events before the "
		    "stream's end were not read", NULL);
}

/*
 * reseed - a statistic opened before the model was restored was seeded
 * from an empty model, and a restore tells no one what it starts: it
 * counts what the restored model holds in progress now.  (It is not
 * valid yet: the voice link comes up only after the restore, and then
 * its subscribers get EventStatisticValid with this value.)
 */
static void
reseed(const char *key, void *v, void *arg)
{
	struct statistic	*m = v;

	seed_metric(m);
	mark(m);
}

/*
 * totals_restored - the Growing totals of the last worker come back as
 * statistics, before the events since the snapshot are read again, so
 * that those events count in them.
 */
static void
totals_restored(struct rds *r, const redisReply *rep, void *arg)
{
	struct statistic	*m;
	struct stype		 t;
	struct profile		 p;
	json_t			*j;
	char			 why[256];
	double			 now = now_s();
	size_t			 i, n = 0;
	int			 created;

	for (i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    i + 1 < rep->elements; i += 2) {
		j = json_loadb(rep->element[i + 1]->str,
		    rep->element[i + 1]->len, 0, NULL);
		if (j == NULL || stype_parse(json_object_get(j, "type"),
		    json_string_value(json_object_get(j, "name")), &t, why,
		    sizeof(why)) == -1 || profile_parse(json_object_get(j,
		    "profile"), &p, why, sizeof(why)) == -1 ||
		    json_string_value(json_object_get(j, "id")) == NULL ||
		    json_number_value(json_object_get(j, "nextReset")) !=
		    profile_next_reset(&p, now, gmtoff_at(now))) {
			/* Of an older period, or unreadable: gone. */
			rds_command(kv, NULL, NULL, "HDEL %s %s", k_growing,
			    rep->element[i]->str);
			json_decref(j);
			continue;
		}
		m = statistic_get((enum object_kind)json_integer_value(
		    json_object_get(j, "kind")), json_integer_value(
		    json_object_get(j, "dbid")), json_string_value(
		    json_object_get(j, "id")), &t, &p, 0, &created);
		acc_load(m->acc, json_object_get(j, "acc"));
		n++;
		json_decref(j);
	}
	if (n > 0)
		log_info("%zu Growing totals restored", n);
	start_voice();
}

/*
 * restored - the last worker's model, with the stream positions it
 * reflects: the reader goes on from there, so no event is applied twice
 * or missed.  Statistics opened meanwhile are seeded again (reseed).  No
 * snapshot: the worker starts at the stream's end and takes what is going
 * on from the state hash (start_gap).
 */
static void
restored(struct rds *r, const redisReply *rep, void *arg)
{
	const struct conf	*c = worker_conf();
	json_t			*j = NULL, *pos;
	int			 i, n = 1 + c->nremotes;

	if (rep == NULL || (rep->type != REDIS_REPLY_STRING &&
	    rep->type != REDIS_REPLY_NIL)) {
		struct timeval	tv = { 1, 0 };

		evtimer_add(ev_load, &tv);	/* Redis away: again */
		return;
	}
	if (rep->type == REDIS_REPLY_STRING &&
	    (j = json_loadb(rep->str, rep->len, 0, NULL)) != NULL &&
	    model_restore(model, json_object_get(j, "model")) == 0) {
		pos = json_object_get(j, "positions");
		for (i = 0; i < n; i++) {
			const char *p = json_string_value(json_object_get(pos,
			    i == 0 ? c->redis.name : c->remotes[i - 1].name));

			resume_from[i] = p != NULL ? xstrdup(p) : NULL;
		}
		log_info("agent states restored from the snapshot; reading "
		    "the voice events since");
		snprintf(boot_known, sizeof(boot_known), "%s",
		    json_string_value(json_object_get(j, "boot")) != NULL ?
		    json_string_value(json_object_get(j, "boot")) : "");
		strmap_each(&metrics, reseed, NULL);
	} else
		start_gap = 1;
	json_decref(j);
	index_fresh();
	if (rds_command(kv, totals_restored, NULL, "HGETALL %s",
	    k_growing) == -1)
		start_voice();
}

static void
on_load(evutil_socket_t fd, short what, void *arg)
{
	if (rds_command(kv, restored, NULL, "GET %s", k_model) == -1) {
		struct timeval	tv = { 1, 0 };

		evtimer_add(ev_load, &tv);
	}
}

/* ---- the tick: resets, snapshots, lag ---- */

static long
gmtoff_at(double t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	localtime_r(&tt, &tm);
	return tm.tm_gmtoff;
}

/* note_reset - the tick walks the statistics only when one is due */
static void
note_reset(double t)
{
	if (t > 0 && (reset_min == 0 || t < reset_min))
		reset_min = t;
}

static void
reset_due(const char *key, void *v, void *arg)
{
	struct statistic	*m = v;
	double		 now = *(double *)arg;
	struct sub	*s;
	struct value	 val;

	if (m->p.kind != PROF_GROWING || m->next_reset == 0)
		return;
	if (now < m->next_reset) {
		note_reset(m->next_reset);
		return;
	}
	value_get(m, now, &val);
	LIST_FOREACH(s, &m->subs, m_entry)
		if (s->mode == N_RESET && m->valid)
			send_info(s, &val, SESS_NOREF);
	value_free(&val);
	acc_reset(m->acc, m->next_reset);
	m->next_reset = profile_next_reset(&m->p, now, gmtoff_at(now));
	note_reset(m->next_reset);
	if (LIST_EMPTY(&m->subs)) {	/* kept for its total: done */
		rds_command(kv, NULL, NULL, "HDEL %s %s", k_growing, m->key);
		statistic_drop(m);
		return;
	}
	mark(m);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	const struct sess_stats	*st = sess_server_stats(srv);
	uint64_t		 us = now_wall_us();
	double			 now = (double)us / 1e6;

	if (reset_min > 0 && now >= reset_min) {
		reset_min = 0;		/* reset_due finds the next one */
		strmap_each(&metrics, reset_due, &now);
	}
	reap();
	states_write();		/* Redis back after a failed write */
	cut_check();		/* the reader was not placed yet */
	if (cut_want != 0) {	/* a cut failed, or the reader kept passing */
		cut_tries = 0;
		cut_begin();
	}
	if (us - last_save_us >= SAVE_EVERY_S * 1000000ULL) {
		last_save_us = us;
		persist(0);
	}
	lag *= 0.5;		/* no events for a while: no lag */
	metric_set(m_lag, lag);
	metric_set(m_open, (double)nsubs);
	metric_set(m_clients, (double)st->current);
}

/* ---- voice ---- */

/*
 * event_of - the members the model reads, from that pass (no tree); -1
 * when one of them has escapes or is too long, and the tree must tell.
 * *ud: the userData parsed, to free after.
 */
static int
event_of(const struct voice_event *ev, struct model_event *me, char *buf,
    size_t len, json_t **ud)
{
	const struct jscan_field *f = ev->more;
	const char		**to[] = { &me->agent_id, &me->work_mode,
				    &me->reason, &me->conn_id,
				    &me->prev_conn_id, &me->call_type };
	size_t			 i, used = 0;

	*ud = NULL;
	if (ev->obj != NULL)
		return -1;
	me->name = ev->name;
	me->dn = ev->dn[0] != '\0' ? ev->dn : NULL;
	me->has_time = ev->has_time;
	me->time_ms = ev->time_ms;
	for (i = 0; i < NELEM(to); i++) {
		*to[i] = NULL;
		if (f[i].type == JSCAN_STRING_ESCAPED ||
		    (f[i].type == JSCAN_STRING && used + f[i].len >= len))
			return -1;
		if (f[i].type != JSCAN_STRING)
			continue;
		memcpy(buf + used, f[i].val, f[i].len);
		buf[used + f[i].len] = '\0';
		*to[i] = buf + used;
		used += f[i].len + 1;
	}
	me->user_data = NULL;
	/* Agents' events and a call's release do not look at it. */
	if (f[6].type == JSCAN_OTHER && f[6].val[0] == '{' &&
	    strncmp(me->name, "EventAgent", 10) != 0 &&
	    strcmp(me->name, "EventReleased") != 0) {
		if ((*ud = json_loadb(f[6].val, f[6].len, 0, NULL)) == NULL)
			return -1;
		me->user_data = *ud;
	}
	return 0;
}

/* apply - one new event to the model */
static void
apply(struct voice_event *ev)
{
	struct model_event	 me;
	json_t			*ud;
	char			 buf[1024];
	double			 now = now_s();

	metric_inc(m_events);
	if (ev->has_time)
		lag = now - (double)ev->time_ms / 1000.0;
	if (lag < 0)
		lag = 0;
	model_dirty = 1;
	if (event_of(ev, &me, buf, sizeof(buf), &ud) == -1) {
		json_decref(ud);
		ud = NULL;
		model_event_of(voice_event_json(ev), &me);
	}
	model_apply_event(model, &me, now);
	json_decref(ud);
}

/* on_voice_event - an entry of a region's stream; a cut of the local
 * region waits for its id (one seen before was applied already) */
static void
on_voice_event(struct voice_event *ev, void *arg)
{
	if (seen_add(seen, ev->event_id)) {
		apply(ev);
		if (ev->region == 0)
			gap_fresh = 0;
	}
	if (cut_state != NULL && ev->region == 0)
		cut_reached(&ev->id);
}

/* ---- the model agrees with the voice side's state hash ---- */

/*
 * The model follows the stream.  When the worker may have missed part of
 * it (a gap: the reader reconnected, and a Redis that restarted empty
 * lost what it had not handed over; the stream was trimmed past the
 * reader; the worker started without a snapshot), or the voice side may
 * have forgotten what the stream told (a new boot id, another than the
 * model's, from this life or the snapshot), the state hash is the truth.
 * The worker takes the hash and the stream's last id in one MULTI (a
 * cut); once its live reader has applied the events up to that id, the
 * calls, waiting calls and logged-in agents the hash does not list end,
 * and after a gap those it lists are taken in, with their modes and
 * states.  A gap waits for the voice link: a voice side that comes back
 * to an empty Redis writes its hash before its heartbeat, so a hash read
 * earlier would be empty.  Only with one region: a remote region's calls
 * are not in the local hash.
 */

static void	cut_taken(int, json_t *, const struct sid *, void *);

/* cut_apply - the model agrees with the hash, as of the cut */
static void
cut_apply(void)
{
	size_t	calls, agents, tcalls = 0, tagents = 0;
	double	now = now_s();

	model_reconcile(model, cut_state, now, &calls, &agents);
	if (cut_doing & CUT_GAP)
		model_adopt(model, cut_state, now, &tcalls, &tagents);
	if (calls > 0 || agents > 0)
		log_info("stats: the voice side knows nothing of %zu calls and "
		    "%zu agents: they end now", calls, agents);
	if (tcalls > 0 || tagents > 0)
		log_info("stats: %zu calls and %zu agents taken from the voice "
		    "side's state (new, or in another state)", tcalls,
		    tagents);
	json_decref(cut_state);
	cut_state = NULL;
	cut_doing = 0;
}

/* cut_begin - take the hash and the stream id it goes with, if one is
 * due and none is under way (a gap: once the voice link is up) */
static void
cut_begin(void)
{
	if (cut_busy || cut_state != NULL || cut_want == 0 ||
	    ((cut_want & CUT_GAP) && !link_up))
		return;
	cut_doing = cut_want;
	cut_want = 0;
	cut_busy = 1;
	voice_state_cut(cut_taken, NULL);
}

/* cut_again - the reader went past the cut unseen: a new one, a few
 * times at once, then on the tick */
static void
cut_again(void)
{
	json_decref(cut_state);
	cut_state = NULL;
	cut_want |= cut_doing;
	cut_doing = 0;
	if (++cut_tries < 5)
		cut_begin();
}

/* cut_reached - the live reader read the entry id */
static void
cut_reached(const struct sid *id)
{
	int	c = sid_cmp(id, &cut_at);

	if (c == 0)
		cut_apply();
	else if (c > 0)
		cut_again();
}

/*
 * cut_check - is the reader where the cut was taken?  The model agrees
 * with the hash when the reader is at that id; also when the stream was
 * empty, and when the reader applied nothing since a gap (what it holds
 * came before the hash was written).  Behind it: the entries will tell.
 */
static void
cut_check(void)
{
	struct sid	upto, zero = { 0, 0 };
	int		c;

	if (cut_state == NULL)
		return;
	if (sid_cmp(&cut_at, &zero) == 0) {
		cut_apply();
		return;
	}
	if (voice_read_upto(&upto) == -1)
		return;		/* not placed yet: the tick looks again */
	c = sid_cmp(&upto, &cut_at);
	if (c > 0 && (cut_doing & CUT_GAP) && gap_fresh)
		cut_apply();
	else if (c >= 0)
		cut_reached(&upto);
}

/* cut_taken - the hash and the stream id it goes with */
static void
cut_taken(int ok, json_t *state, const struct sid *at, void *arg)
{
	cut_busy = 0;
	if (!ok || model == NULL) {
		cut_want |= cut_doing;	/* the tick tries again */
		cut_doing = 0;
		return;
	}
	cut_state = json_incref(state);
	cut_at = *at;
	cut_check();
}

/* on_boot - the voice side's boot id, new or first seen: another than
 * the one the model knows, from this life or from the snapshot */
static void
on_boot(const char *boot, void *arg)
{
	if (boot_known[0] != '\0' && strcmp(boot_known, boot) != 0 &&
	    voice_nregions() == 1) {
		log_info("stats: the voice side restarted (boot %s, was %s)",
		    boot, boot_known);
		cut_tries = 0;
		cut_want |= CUT_BOOT;
		cut_begin();
	}
	snprintf(boot_known, sizeof(boot_known), "%s", boot);
}

/* on_gap - the reader of a region may have missed events */
static void
on_gap(int region, const char *why, void *arg)
{
	if (voice_nregions() != 1) {
		log_warnx("stats: voice events of region %s may have been "
		    "missed (%s); with remote regions the model cannot be "
		    "checked against the local state hash",
		    voice_region_name(region), why);
		return;
	}
	log_info("stats: voice events may have been missed (%s); the model "
	    "will agree with the voice side's state hash", why);
	gap_fresh = 1;
	cut_tries = 0;
	cut_want |= CUT_GAP;
	cut_begin();
}

/* object_exists - the statistic's object is still in the configuration */
static int
object_exists(const struct statistic *m)
{
	static const enum cfg_kind kinds[OBJ_COUNT] = {
		[OBJ_AGENT] = CFG_PERSON, [OBJ_PLACE] = CFG_PLACE,
		[OBJ_AGENT_GROUP] = CFG_AGENT_GROUP,
		[OBJ_PLACE_GROUP] = CFG_PLACE_GROUP, [OBJ_QUEUE] = CFG_DN,
		[OBJ_RP] = CFG_DN, [OBJ_DN_GROUP] = CFG_DN_GROUP,
	};
	const struct cobj	*o;

	if (m->kind == OBJ_TENANT)
		return 1;
	return (o = cache_get(m->dbid)) != NULL && o->kind ==
	    (int)kinds[m->kind];
}

/*
 * validity - a statistic's value can be known while the voice link is up
 * and its object exists; subscribers hear when that changes.
 */
static void
validity(const char *key, void *v, void *arg)
{
	struct statistic	*m = v;
	int			 exists = object_exists(m);
	int			 up = link_up && exists;
	struct sub		*s;
	struct value		 val;
	json_t			*e;

	if (m->valid == up)
		return;
	m->valid = up;
	if (up)
		value_get(m, now_s(), &val);
	LIST_FOREACH(s, &m->subs, m_entry) {
		e = json_pack("{s:s, s:I}", "event", up ?
		    "EventStatisticValid" : "EventStatisticInvalid",
		    "statisticId", s->id);
		if (!up)
			json_object_set_new(e, "reason", json_string(!exists ?
			    "the object was deleted from the configuration" :
			    "the voice link is down"));
		sess_send(s->c->s, e);
		json_decref(e);
		if (up && s->mode != N_NONE)
			send_info(s, &val, SESS_NOREF);
	}
	if (up)
		value_free(&val);
}

static void
on_link(int up, void *arg)
{
	link_up = up;
	strmap_each(&metrics, validity, NULL);
	cut_begin();		/* a gap waits for the link */
}

/* ---- configuration ---- */

static void
on_reset(void *arg)
{
	cache_reset();
	rights_change(rights, NULL);
	index_stale = 1;
}

static void
on_change(const struct cfg_change *ch, void *arg)
{
	if (cache_apply(ch) == 0)
		index_stale = 1;
	rights_change(rights, ch);
}

static void
tz_follow(void)
{
	const struct cobj *const	*v;
	const struct cobj		*z;
	json_t				*ref, *name;
	size_t				 n;
	static char			 cur[128];
	const char			*tz = "UTC";

	v = cache_list(CFG_TENANT, &n);
	if (n > 0) {
		ref = cobj_get(v[0], "timeZone");
		if ((z = cache_get(json_integer_value(ref))) != NULL) {
			name = cobj_get(z, "tzName");
			if (json_string_value(name) != NULL) {
				snprintf(cur, sizeof(cur), "%s",
				    json_string_value(name));
				tz = cur;
			}
			json_decref(name);
		}
		json_decref(ref);
	}
	if (getenv("TZ") == NULL || strcmp(getenv("TZ"), tz) != 0) {
		setenv("TZ", tz, 1);
		tzset();
	}
}

static void
on_synced(json_int_t rev, void *arg)
{
	tz_follow();
	if (index_stale)	/* objects may have gone, or come back */
		strmap_each(&metrics, validity, NULL);
	if (ready)
		return;
	ready = 1;
	rights_synced(rights);
	log_info("configuration loaded at revision %lld; serving",
	    (long long)rev);
	worker_ready();
	on_load(-1, 0, NULL);	/* the model and totals of the last worker */
}

/* ---- start, reload, stop ---- */

static void
register_metrics(void)
{
	m_clients = metrics_gauge("tenant_stats_clients",
	    "Sessions open on the statistics port.", NULL);
	m_open = metrics_gauge("tenantd_stats_open_statistics",
	    "Statistics open (one per client and statisticId).", NULL);
	m_notified = metrics_counter("tenantd_stats_notifications_total",
	    "EventInfo sent.", NULL);
	m_events = metrics_counter("tenantd_stats_voice_events_total",
	    "Voice events applied to the model.", NULL);
	m_refused = metrics_counter("tenantd_stats_refused_total",
	    "RequestOpenStatistic refused for the worker's limits or lag.",
	    NULL);
	m_lag = metrics_gauge("tenantd_stats_lag_seconds",
	    "How old the last voice event was when it was applied.", NULL);
}

static int
stats_start(struct event_base *b, const struct conf *c, int fd)
{
	struct sess_limits	 l = sess_limits_of(&c->workers[WORKER_STATS]);
	struct sess_handlers	 h = { on_open, on_request, on_closed };
	struct cfgfollow_cbs	 fc = { on_reset, on_change, on_synced };
	struct rights_cbs	 rc = { on_opened, on_rights_changed };
	struct model_cbs	 mc = { dn_kind, on_start, on_end, on_instant,
				    on_state };
	struct timeval		 tv = { TICK_MS / 1000, 0 };

	base = b;
	register_metrics();
	seen = seen_new(65536);
	model = model_new(&mc, NULL);
	cache_init(CFG_NTYPES);
	k_model = xasprintf("tenantd:{%s}:stats:model", c->tenant_id);
	k_growing = xasprintf("tenantd:{%s}:stats:growing", c->tenant_id);
	k_agents = xasprintf("tenantd:{%s}:stats:agents", c->tenant_id);
	if ((pg = pgc_new(base, c->pg_conninfo, c->pg_password, NULL,
	    NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	follow = cfgfollow_new(base, pg, c->redis.host, c->redis.port,
	    c->redis.password, c->tenant_id, &fc, NULL);
	auth = auth_new(base, c->redis.host, c->redis.port, c->redis.password,
	    c->tenant_id);
	auth_set_admin_token(auth, c->admin_token);
	rights = rights_new(base, auth, c->redis.host, c->redis.port,
	    c->redis.password, c->tenant_id, &rc, NULL);
	kv = rds_new(base, c->redis.host, c->redis.port, c->redis.password,
	    on_kv_state, NULL);
	rds_set_name(kv, "redis (statistics state)");
	if ((srv = sess_server_new(base, fd, &l, &h, NULL)) == NULL)
		return -1;
	ev_flush = evtimer_new(base, on_flush, NULL);
	ev_load = evtimer_new(base, on_load, NULL);
	ev_tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(ev_tick, &tv);
	return 0;
}

static int
stats_reload_check(const struct conf *next, char *why, size_t len)
{
	return voice_reload_check(worker_conf(), next, "stats", why, len);
}

static void
stats_reload_apply(const struct conf *next, const struct conf *prev)
{
	struct sess_limits	l = sess_limits_of(&next->workers[WORKER_STATS]);

	sess_server_set_limits(srv, &l);
	auth_set_admin_token(auth, next->admin_token);
	if (strcmp(next->admin_token, prev->admin_token) != 0)
		rights_recheck_all(rights);
}

static void
stats_listen(int fd)
{
	sess_server_set_listener(srv, fd);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	if (sess_server_stats(srv)->current == 0 && rds_state(kv) != RDS_CONNECTING)
		worker_exit(0);
}

/* stats_stop - keep the state for the next worker, then close sessions */
static void
stats_stop(void)
{
	struct timeval	tv = { 0, 50000 };

	/* The next worker starts from here: wait for the last save. */
	reap();
	if (saver > 0) {
		int	status;

		waitpid(saver, &status, 0);
		saver = 0;
	}
	model_dirty = 1;
	persist(1);
	sess_server_pause(srv);
	sess_server_close_all(srv, "Shutdown", "tenantd is stopping; "
	    "reconnect and open the statistics again");
	ev_drain = event_new(base, -1, EV_PERSIST, on_drain, NULL);
	event_add(ev_drain, &tv);
}

static void
statistic_free(struct statistic *m)
{
	free(m->key);
	free(m->id);
	acc_free(m->acc);
	free(m);
}

static void
free_statistic(const char *k, void *v, void *arg)
{
	statistic_free(v);
}

static void
stats_cleanup(void)
{
	if (srv != NULL)
		sess_server_free(srv);
	srv = NULL;
	voice_stop();
	rights_free(rights);
	auth_free(auth);
	rds_free(kv);
	pgc_free(pg);
	cfgfollow_free(follow);
	model_free(model);
	strmap_each(&metrics, free_statistic, NULL);
	strmap_clear(&metrics);
	idmap_each(&by_object, node_free, NULL);
	idmap_clear(&by_object);
	idmap_each(&media, free_value, NULL);
	idmap_clear(&media);
	ix_clear();
	cache_free();
	seen_free(seen);
	free(k_model);
	free(k_growing);
	free(k_agents);
	json_decref(cut_state);
	cut_state = NULL;
	cut_want = cut_doing = cut_busy = gap_fresh = start_gap = 0;
	boot_known[0] = '\0';
	idmap_clear(&st_dirty);
	free(st_list);
	st_list = NULL;
	st_n = st_cap = 0;
	if (ev_tick != NULL)
		event_free(ev_tick);
	if (ev_flush != NULL)
		event_free(ev_flush);
	if (ev_load != NULL)
		event_free(ev_load);
	if (ev_drain != NULL)
		event_free(ev_drain);
}

/* ---- sessions ---- */

/* on_opened - the token is looked up: open, or refuse */
static void
on_opened(struct rights_sess *rs, enum sess_open res, const char *why,
    void *arg)
{
	sess_open_done(rs->s, res, NULL, why);
}

/*
 * on_open - RequestOpen: the token is looked up (common/rights.c).  A
 * session whose open was not accepted keeps its client for the next try.
 */
static enum sess_open
on_open(struct sess *s, json_t *req, json_t *extra, void *arg,
    const char **why)
{
	const char	*token = json_string_value(json_object_get(req,
			    "token"));
	struct client	*c = sess_data(s);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->s = s;
		LIST_INIT(&c->subs);
		sess_set_data(s, c);
	}
	return rights_open(rights, &c->rs, s, token, why);
}

static void
sub_free(struct sub *s)
{
	struct statistic	*m = s->m;

	LIST_REMOVE(s, m_entry);
	LIST_REMOVE(s, c_entry);
	s->c->nsubs--;
	nsubs--;
	if (s->timer != NULL)
		event_free(s->timer);
	free(s->last_text);
	free(s);
	/* A Growing total nobody watches goes on counting until its reset:
	 * a wallboard that comes back finds it right. */
	if (LIST_EMPTY(&m->subs) && !keeps_counting(m))
		statistic_drop(m);
}

/* statistic_drop - forget a statistic nobody has open */
static void
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
		node_free(0, nd, NULL);
	}
	if (m->dirty)
		TAILQ_REMOVE(&dirty, m, dirty_entry);
	strmap_del(&metrics, m->key);
	statistic_free(m);
}

static void
on_closed(struct sess *s, void *arg)
{
	struct client	*c = sess_data(s);

	if (c == NULL)
		return;
	while (!LIST_EMPTY(&c->subs))
		sub_free(LIST_FIRST(&c->subs));
	rights_close(rights, &c->rs);
	sess_set_data(s, NULL);
	free(c);
}

/*
 * may_read - may the client read the object of a statistic now?  The
 * tenant's statistics need read on the Tenant object (or on all tenants).
 */
static int
may_read(struct client *c, enum object_kind k, json_int_t dbid)
{
	const struct cobj *const	*t;
	size_t				 n;

	if (k == OBJ_TENANT) {
		t = cache_list(CFG_TENANT, &n);
		dbid = n > 0 ? t[0]->dbid : 0;
	}
	return rights_can(rights, &c->rs, object_cfg_kind(k), dbid,
	    RIGHT_READ);
}

/*
 * on_rights_changed - the access groups changed: a statistic whose object
 * the session may no longer read is closed, and the session told why,
 * so that none of its values reach it from now on.
 */
static void
on_rights_changed(struct rights_sess *rs, void *arg)
{
	struct client	*c = sess_data(rs->s);
	struct sub	*s, *next;
	json_t		*e;

	for (s = LIST_FIRST(&c->subs); s != NULL; s = next) {
		next = LIST_NEXT(s, c_entry);
		if (may_read(c, s->m->kind, s->m->dbid))
			continue;
		e = json_pack("{s:s, s:I, s:s, s:s}", "event",
		    "EventStatisticClosed", "statisticId", s->id, "reason",
		    "Forbidden", "message", "no read right on its object any "
		    "more");
		sess_send(c->s, e);
		json_decref(e);
		sub_free(s);
	}
}

/* ---- opening a statistic ---- */

/* seed - an instance in progress that the new metric counts */
static void
seed(const struct inst *i, void *arg)
{
	struct statistic	*m = arg;
	struct targets	 t;
	int		 n;

	if (!acc_wants(m->acc, i))
		return;
	targets_of(i, &t);
	for (n = 0; n < t.n; n++)
		if (t.k[n] == m->kind && t.dbid[n] == m->dbid) {
			acc_start(m->acc, i);
			return;
		}
}

static void
seed_person(json_int_t person, struct statistic *m)
{
	const json_t	*codes = ix_lookup('P', person), *e;
	size_t		 i;

	json_array_foreach(codes, i, e)
		model_each_of_agent(model, json_string_value(e), seed, m);
}

/* seed_metric - what is in progress now, for a new metric */
static void
seed_metric(struct statistic *m)
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
	model_each(model, seed, m);
}

static struct statistic *
statistic_get(enum object_kind k, json_int_t dbid, const char *id,
    const struct stype *t, const struct profile *p, int load, int *created)
{
	struct statistic	*m;
	struct node		*nd;
	char		 pk[64], *key;
	json_t		*tj;
	char		*tdef;
	double		 now = now_s();

	struct stype	 kt = *t;

	/* Which objects a type applies to is not part of its identity. */
	kt.objects = 0;
	profile_key(p, pk, sizeof(pk));
	tj = stype_json(&kt);
	tdef = json_dumps(tj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(tj);
	key = xasprintf("%d/%lld/%s/%s/%s", (int)k, (long long)dbid, t->name,
	    pk, tdef);
	free(tdef);
	*created = 0;
	if ((m = strmap_get(&metrics, key)) != NULL) {
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
	m->acc = acc_new(t, p, profile_period_start(p, now, gmtoff_at(now)));
	m->next_reset = profile_next_reset(p, now, gmtoff_at(now));
	note_reset(m->next_reset);
	m->valid = link_up;
	LIST_INIT(&m->subs);
	strmap_put(&metrics, key, m);
	if ((nd = idmap_get(&by_object, okey(k, dbid))) == NULL) {
		nd = xcalloc(1, sizeof(*nd));
		idmap_put(&by_object, okey(k, dbid), nd);
	}
	if (nd->n == nd->cap) {
		nd->cap = nd->cap ? nd->cap * 2 : 4;
		nd->v = xrealloc(nd->v, nd->cap * sizeof(*nd->v));
	}
	nd->v[nd->n++] = m;
	seed_metric(m);
	if (load && keeps_counting(m))
		rds_command(kv, loaded_cb, xstrdup(key), "HGET %s %s",
		    k_growing, key);
	return m;
}

/* find_type - a shipped type, one from the Application's options, or inline */
static int
find_type(const json_t *st, struct stype *t, char *why, size_t len)
{
	const struct cobj	*app;
	const struct stype	*b;
	json_t			*opts, *sec;
	char			 name[96];
	int			 rc;

	if (json_is_object(st))
		return stype_parse(st, "inline", t, why, len);
	if (!json_is_string(st)) {
		snprintf(why, len, "statistic: a type's name or a definition");
		return -1;
	}
	snprintf(name, sizeof(name), "stat:%s", json_string_value(st));
	app = cache_find(CFG_APPLICATION,
	    worker_conf()->workers[WORKER_STATS].application);
	opts = app != NULL ? cobj_get(app, "options") : NULL;
	if ((sec = json_object_get(opts, name)) != NULL) {
		rc = stype_parse(sec, json_string_value(st), t, why, len);
		json_decref(opts);
		return rc;
	}
	json_decref(opts);
	if ((b = stype_builtin(json_string_value(st))) == NULL) {
		snprintf(why, len, "statistic: no type %s",
		    json_string_value(st));
		return 1;
	}
	*t = *b;
	return 0;
}

static int
parse_notify(const json_t *v, struct sub *s, char *why, size_t len)
{
	const char	*mode;

	s->mode = N_CHANGES;
	if (v == NULL)
		return 0;
	if (!json_is_object(v) || (mode = json_string_value(json_object_get(v,
	    "mode"))) == NULL)
		goto bad;
	if (strcmp(mode, "changes") == 0) {
		s->insensitivity = json_number_value(json_object_get(v,
		    "insensitivity"));
		if (s->insensitivity < 0 || s->insensitivity > 100)
			goto bad;
	} else if (strcmp(mode, "periodic") == 0) {
		s->mode = N_PERIODIC;
		s->interval = json_number_value(json_object_get(v,
		    "interval"));
		if (!(s->interval >= 0.1 && s->interval <= 86400))
			goto bad;
	} else if (strcmp(mode, "reset") == 0)
		s->mode = N_RESET;
	else if (strcmp(mode, "none") == 0)
		s->mode = N_NONE;
	else
		goto bad;
	return 0;
bad:
	snprintf(why, len, "notify: {\"mode\": \"changes\", \"insensitivity\": "
	    "P} | {\"mode\": \"periodic\", \"interval\": S (0.1 to 86400)} | "
	    "{\"mode\": \"reset\"} | {\"mode\": \"none\"}");
	return -1;
}

static void
do_open_statistic(struct client *c, json_int_t ref, json_t *req)
{
	const struct conf_worker *w = &worker_conf()->workers[WORKER_STATS];
	json_t			*obj = json_object_get(req, "object");
	const char		*otype = json_string_value(json_object_get(obj,
				    "type"));
	const char		*oid = json_string_value(json_object_get(obj,
				    "id"));
	struct stype		 t;
	struct profile		 p;
	struct sub		 tmpl, *s;
	struct statistic		*m;
	json_int_t		 dbid;
	json_t			*e;
	struct value		 val;
	char			 why[256];
	int			 k, created, rc;

	if (otype == NULL || (k = object_kind_by_name(otype)) == -1) {
		sess_send_error(c->s, ref, "UnknownObject", "object: "
		    "{\"type\": \"Agent\" | \"Place\" | \"GroupAgents\" | "
		    "\"GroupPlaces\" | \"Queue\" | \"RoutingPoint\" | "
		    "\"GroupQueues\" | \"Tenant\", \"id\": \"...\"}");
		return;
	}
	if (oid == NULL && k != OBJ_TENANT) {
		sess_send_error(c->s, ref, "UnknownObject", "object.id: "
		    "required for %s", otype);
		return;
	}
	if (object_find(k, oid, &dbid) == -1) {
		sess_send_error(c->s, ref, "UnknownObject", "no %s %s in the "
		    "tenant's configuration", otype, oid);
		return;
	}
	if (!may_read(c, k, dbid)) {
		sess_send_error(c->s, ref, SESS_ERR_FORBIDDEN, "object: %s may "
		    "not read %s %s (no read right on it)", c->rs.who.name,
		    otype, oid != NULL ? oid : "");
		return;
	}
	if ((rc = find_type(json_object_get(req, "statistic"), &t, why,
	    sizeof(why))) != 0) {
		sess_send_error(c->s, ref, rc == 1 ? "UnknownStatistic" :
		    SESS_ERR_BAD_ARGUMENT, "%s", why);
		return;
	}
	if (!(t.objects & OB(k))) {
		sess_send_error(c->s, ref, "NotApplicable", "%s is not a "
		    "statistic of a %s", t.name, otype);
		return;
	}
	if (profile_parse(json_object_get(req, "profile"), &p, why,
	    sizeof(why)) == -1 || (p.kind == PROF_SINCE_LOGIN &&
	    k != OBJ_AGENT)) {
		sess_send_error(c->s, ref, "BadProfile", "%s", p.kind ==
		    PROF_SINCE_LOGIN ? "profile: SinceLogin is for an Agent" :
		    why);
		return;
	}
	memset(&tmpl, 0, sizeof(tmpl));
	if (parse_notify(json_object_get(req, "notify"), &tmpl, why,
	    sizeof(why)) == -1) {
		sess_send_error(c->s, ref, "BadNotify", "%s", why);
		return;
	}
	if (nsubs >= w->max_statistics || c->nsubs >=
	    w->max_client_statistics || lag > w->max_lag) {
		metric_inc(m_refused);
		if (lag > w->max_lag)
			sess_send_error(c->s, ref, "TooManyStatistics", "the "
			    "worker is %.1f s behind the voice events; no new "
			    "statistic until it catches up", lag);
		else
			sess_send_error(c->s, ref, "TooManyStatistics", "at "
			    "most %u statistics (%u per client) are open",
			    w->max_statistics, w->max_client_statistics);
		return;
	}
	m = statistic_get(k, dbid, oid != NULL ? oid : "", &t, &p, 1,
	    &created);
	s = xcalloc(1, sizeof(*s));
	*s = tmpl;
	s->c = c;
	s->m = m;
	s->id = ++next_stat_id;
	LIST_INSERT_HEAD(&m->subs, s, m_entry);
	LIST_INSERT_HEAD(&c->subs, s, c_entry);
	c->nsubs++;
	nsubs++;
	value_get(m, now_s(), &val);
	e = json_pack("{s:s, s:I, s:o, s:b}", "event", "EventStatisticOpened",
	    "statisticId", s->id, "value", value_json(&val, m), "valid",
	    m->valid);
	sess_reply(c->s, ref, e);
	json_decref(e);
	/* The baseline of changes: what the client just got. */
	s->has_last = 1;
	s->last_is_num = val.is_num;
	s->last_num = val.num;
	s->last_text = val.is_num ? NULL : xstrdup(val.text);
	value_free(&val);
	if (s->mode == N_PERIODIC) {
		struct timeval	tv;

		tv.tv_sec = (time_t)s->interval;
		tv.tv_usec = (suseconds_t)((s->interval - (double)tv.tv_sec) *
		    1e6);
		s->timer = event_new(base, -1, EV_PERSIST, on_periodic, s);
		event_add(s->timer, &tv);
	}
}

static struct sub *
sub_find(struct client *c, json_int_t ref, json_t *req)
{
	json_t		*id = json_object_get(req, "statisticId");
	struct sub	*s;

	if (!json_is_integer(id)) {
		sess_send_error(c->s, ref, SESS_ERR_BAD_ARGUMENT, "statisticId: "
		    "the id EventStatisticOpened gave");
		return NULL;
	}
	LIST_FOREACH(s, &c->subs, c_entry)
		if (s->id == json_integer_value(id))
			return s;
	sess_send_error(c->s, ref, "NoSuchStatistic", "statistic %lld is not "
	    "open on this session", (long long)json_integer_value(id));
	return NULL;
}

static void
do_peek(struct client *c, json_int_t ref, json_t *req)
{
	struct sub	*s = sub_find(c, ref, req);
	struct value	 v;

	if (s == NULL)
		return;
	value_get(s->m, now_s(), &v);
	send_info(s, &v, ref);
	value_free(&v);
}

static void
do_close(struct client *c, json_int_t ref, json_t *req)
{
	struct sub	*s = sub_find(c, ref, req);
	json_t		*e;

	if (s == NULL)
		return;
	e = json_pack("{s:s, s:I}", "event", "EventStatisticClosed",
	    "statisticId", s->id);
	sub_free(s);
	sess_reply(c->s, ref, e);
	json_decref(e);
}

static void
do_types(struct client *c, json_int_t ref)
{
	const struct stype	*b;
	const struct cobj	*app;
	struct stype		 t;
	json_t			*types = json_object(), *opts, *sec, *e;
	const char		*k;
	char			 why[256];
	size_t			 n, i;

	n = stype_builtins(&b);
	for (i = 0; i < n; i++)
		json_object_set_new(types, b[i].name, stype_json(&b[i]));
	app = cache_find(CFG_APPLICATION,
	    worker_conf()->workers[WORKER_STATS].application);
	opts = app != NULL ? cobj_get(app, "options") : NULL;
	json_object_foreach(opts, k, sec)
		if (strncmp(k, "stat:", 5) == 0 &&
		    stype_parse(sec, k + 5, &t, why, sizeof(why)) == 0)
			json_object_set_new(types, k + 5, stype_json(&t));
	json_decref(opts);
	e = json_pack("{s:s, s:o}", "event", "EventStatisticTypes", "types",
	    types);
	sess_reply(c->s, ref, e);
	json_decref(e);
}

/* do_media - the interaction server reports an agent's medium */
static void
do_media(struct client *c, json_int_t ref, json_t *req)
{
	const char		*agent = json_string_value(json_object_get(req,
				    "agent"));
	const char		*med = json_string_value(json_object_get(req,
				    "media"));
	const char		*state = json_string_value(json_object_get(req,
				    "state"));
	json_t			*n = json_object_get(req, "interactions");
	struct media_state	*ms;
	const struct node	*nd;
	json_int_t		 person;
	json_t			*e;
	size_t			 k;
	int			 i;

	if (agent == NULL || med == NULL || strlen(med) >= 32 ||
	    strcmp(med, "voice") == 0 || state == NULL ||
	    (strcmp(state, "LoggedOut") != 0 && strcmp(state, "Ready") != 0 &&
	    strcmp(state, "NotReady") != 0) || (n != NULL &&
	    (!json_is_integer(n) || json_integer_value(n) < 0 ||
	    json_integer_value(n) > 1000))) {
		sess_send_error(c->s, ref, SESS_ERR_BAD_ARGUMENT, "agent "
		    "(employeeId), media (not voice: it comes from the voice "
		    "events), state (LoggedOut, Ready, NotReady), "
		    "interactions (0 to 1000)");
		return;
	}
	if (object_find(OBJ_AGENT, agent, &person) == -1) {
		sess_send_error(c->s, ref, "UnknownObject", "no agent %s",
		    agent);
		return;
	}
	if (!rights_can(rights, &c->rs, CFG_PERSON, person, RIGHT_UPDATE)) {
		sess_send_error(c->s, ref, SESS_ERR_FORBIDDEN, "agent: %s may "
		    "not change the state of agent %s (no update right on "
		    "that person)", c->rs.who.name, agent);
		return;
	}
	if ((ms = idmap_get(&media, (uint64_t)person)) == NULL) {
		ms = xcalloc(1, sizeof(*ms));
		idmap_put(&media, (uint64_t)person, ms);
	}
	for (i = 0; i < ms->n; i++)
		if (strcmp(ms->v[i].name, med) == 0)
			break;
	if (i == ms->n) {
		if (ms->n == MEDIA_MAX) {
			sess_send_error(c->s, ref, SESS_ERR_BAD_ARGUMENT, "at "
			    "most %d media per agent", MEDIA_MAX);
			return;
		}
		snprintf(ms->v[ms->n++].name, sizeof(ms->v[0].name), "%s", med);
	}
	snprintf(ms->v[i].state, sizeof(ms->v[i].state), "%s", state);
	ms->v[i].interactions = n != NULL ? (int)json_integer_value(n) : 0;
	if ((nd = metrics_of(OBJ_AGENT, person)) != NULL)
		for (k = 0; k < nd->n; k++)
			if (nd->v[k]->t.cat == CAT_AGENT_STATUS)
				mark(nd->v[k]);
	e = json_pack("{s:s}", "event", "EventAck");
	sess_reply(c->s, ref, e);
	json_decref(e);
}

static void
on_request(struct sess *s, const char *name, json_int_t ref, json_t *req,
    void *arg)
{
	struct client	*c = sess_data(s);

	if (strcmp(name, "RequestOpenStatistic") == 0)
		do_open_statistic(c, ref, req);
	else if (strcmp(name, "RequestPeekStatistic") == 0)
		do_peek(c, ref, req);
	else if (strcmp(name, "RequestCloseStatistic") == 0)
		do_close(c, ref, req);
	else if (strcmp(name, "RequestGetStatisticTypes") == 0)
		do_types(c, ref);
	else if (strcmp(name, "RequestAgentMediaState") == 0)
		do_media(c, ref, req);
	else
		sess_send_error(s, ref, SESS_ERR_UNKNOWN, "no request %s in the "
		    "statistics protocol", name);
}
