/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial - the dialler's pace (docs/outbound.md, "The dialler").
 *
 * Every tick, for each Running group, pacing.c says how many calls to
 * place; the dialler leases that many records from one of the campaign's
 * lists (shares decide which), with their "dialed" reports, in one
 * transaction, and call.c places a call per record.  A lease is the
 * record's status Retrieved with this instance's name and an expiry,
 * taken with FOR UPDATE SKIP LOCKED: another instance never takes a
 * leased record; ours are renewed while their calls last, and a dead
 * instance's expire (the sweep gives their records back).  Only Ready
 * records whose time has come, inside the list's window and the record's
 * own (in its time zone), not on the do-not-call list, and the first
 * undone one of their chain, are leased.  Every stats interval the
 * groups' figures go to Kafka and to the metrics, and the predictive gain
 * moves toward the group's goal.
 *
 * The calls themselves are call.c's, their outcomes outcome.c's;
 * dial_int.h holds what the three share.
 *
 * What it touches: the calling lists' tables and ocs_outbox on the
 * worker's PostgreSQL connection.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgc.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "outbound_int.h"
#include "pacing.h"
#include "treat.h"
#include "window.h"
#include "dial_int.h"

#define SWEEP_MS		5000
#define EMPTY_RETRY_MS		2000
#define LEASE_BATCH_MAX		500
#define FIG_DECAY		0.5	/* what a window keeps of the last */
#define CTL_DECAY		0.7	/* the gain's memory, per interval */
#define HIT_AFTER_MS		40000	/* the longest ring, and more */

/* A lease on its way. */
struct lease {
	json_int_t	 group;
	json_int_t	 campaign;
	json_int_t	 list;
	struct pgc_txn	*txn;
	struct call	**calls;
	size_t		 n;
};

struct dial_metrics	 dial_m;
static uint64_t		 swept_ms, renewed_ms, stats_ms;
static struct metric	*m_inprogress, *m_health, *m_status, *m_unhealthy;

static void	 free_call(const char *, void *, void *);
static void	 pace(struct group *, void *);
static void	 age_of(const char *, void *, void *);
static double	 expected_answers(struct group *);
static void	 forecast_calls(struct group *, struct pace_plan *);
static unsigned	 ready_agents(struct group *);
static void	 steer(struct group *);
static void	 lease(struct group *, unsigned);
static struct glist	*glist(struct group *, json_int_t);
static void	 free_glist(const char *, void *, void *);
static void	 glists_free(void);
static int	 list_empty(struct group *, json_int_t, uint64_t);
static double	 list_count(struct group *, json_int_t);
static void	 zone_arrays(time_t, char **, char **);
static json_int_t	 list_zone(json_int_t);
static void	 lease_list(struct group *, json_int_t, json_int_t, unsigned);
static void	 leased(struct pgc *, const PGresult *, void *);
static void	 lease_committed(struct pgc *, const PGresult *, void *);
static void	 check_exhausted(struct group *);
static void	 renew(void);
static void	 sweep(void);
static void	 group_metrics(struct group *, double, double, double);
static void	 report_stats(struct group *, void *);
static void	 finished(struct pgc *, const PGresult *, void *);
static int	 list_window_open(json_int_t, time_t);

/* ---- start, stop ---- */

void
dial_start(const struct conf *c)
{
	struct voice_cbs	cbs = { call_on_voice, call_on_link, NULL };

	dial_m.dialed = metrics_counter("tenantd_outbound_calls_dialed_total",
	    "Calls the dialler placed.", NULL);
	dial_m.live = metrics_counter("tenantd_outbound_calls_answered_total",
	    "Dialled calls a person answered.", NULL);
	dial_m.abandoned = metrics_counter(
	    "tenantd_outbound_calls_abandoned_total",
	    "Answered calls dropped for want of an agent, or hung up "
	    "waiting.", NULL);
	m_inprogress = metrics_gauge("tenantd_outbound_calls_in_progress",
	    "Dialled calls not yet finished.", NULL);
	m_health = metrics_gauge("tenant_ocs_health_level",
	    "3 healthy; below 2 unhealthy.", NULL);
	m_status = metrics_gauge("tenant_ocs_connection_status",
	    "1 when PostgreSQL, Redis, the voice side and Kafka are all "
	    "reachable.", NULL);
	m_unhealthy = metrics_counter("tenant_ocs_campaign_groups_unhealthy",
	    "Campaign groups that went unhealthy (no agents, no records, no "
	    "channels, errors).", NULL);
	voice_on_gap(call_on_gap);
	voice_start(ob.base, c, &cbs, NULL);
}

void
dial_stop(void)
{
}

static void
free_call(const char *k, void *v, void *arg)
{
	call_free(v);
}

void
dial_cleanup(void)
{
	outcomes_cleanup();
	dial_givebacks_clear();
	glists_free();
	voice_stop();
	strmap_clear(&dial_conns);
	strmap_each(&dial_calls, free_call, NULL);
	strmap_clear(&dial_calls);
}

/* ---- the tick ---- */

void
dial_tick(void)
{
	uint64_t	now = now_wall_us() / 1000;
	int		up = pgc_state(ob.pg) == PGC_UP && voice_link_up() &&
			    outbox_kafka_up();

	dial_givebacks_flush();
	if (!ob.stopping)
		groups_each(call_connect_waiting, NULL);
	if (!ob.stopping && voice_link_up())
		groups_each(pace, NULL);
	if (now - swept_ms >= SWEEP_MS) {
		swept_ms = now;
		sweep();
	}
	if (now - renewed_ms >= (uint64_t)(ob_conf()->lease_time * 1000 / 3)) {
		renewed_ms = now;
		renew();
	}
	if (now - stats_ms >= (uint64_t)(ob_conf()->stats_interval * 1000)) {
		stats_ms = now;
		groups_each(report_stats, NULL);
	}
	metric_set(m_inprogress, (double)dial_calls.n);
	metric_set(m_status, up ? 1 : 0);
	metric_set(m_health, up ? 3 : pgc_state(ob.pg) == PGC_UP ? 2 : 1);
}

/* ---- pacing and leasing ---- */

/* unhealthy - count a group going unhealthy once per reason */
void
dial_unhealthy(struct group *g, unsigned bit, const char *why)
{
	if (g->unhealthy & bit)
		return;
	g->unhealthy |= bit;
	metric_add(m_unhealthy, 1);
	log_warnx("outbound: campaign group %lld is unhealthy: %s",
	    (long long)g->dbid, why);
}

static void
pace(struct group *g, void *arg)
{
	const struct cobj	*o = cache_get(g->dbid);
	struct roster_count	 ac;
	struct pace_in		 in;
	struct pace_plan	 plan;
	json_t			*v;
	json_int_t		 agroup;
	double			 dt = 0.2;

	if (g->state != G_RUNNING) {
		if ((g->state == G_STOPPING || g->state == G_UNLOADING) &&
		    g->dialing + g->waiting + g->connected == 0 &&
		    g->leasing == 0)
			groups_idle(g);
		return;
	}
	if (o == NULL || !o->enabled)
		return;
	memset(&in, 0, sizeof(in));
	in.mode = pace_mode_parse(g->mode);
	v = cobj_get(o, "group");
	agroup = json_integer_value(v);
	json_decref(v);
	memset(&ac, 0, sizeof(ac));
	if (!pace_agentless(in.mode)) {
		if (!roster_known())
			return;
		roster_count(agroup, &ac);
		in.ready = ac.ready;
		in.busy = ac.busy + ac.not_ready;
		in.logged_in = ac.logged_in;
		g->fig.busy_s += (ac.busy + ac.not_ready) * dt;
		g->fig.avail_s += ac.logged_in * dt;
		if (ac.logged_in == 0)
			dial_unhealthy(g, 1, "no agent logged in");
		else
			g->unhealthy &= ~1u;
	}
	v = cobj_get(o, "numOfChannels");
	in.channels = (unsigned)json_integer_value(v);
	json_decref(v);
	v = cobj_get(o, "maxQueueSize");
	in.max_queue = (unsigned)json_integer_value(v);
	json_decref(v);
	if (pace_agentless(in.mode)) {
		/* The IVR's ports are its agents. */
		in.ready = in.channels > g->connected ? in.channels -
		    g->connected : 0;
		in.busy = g->connected;
		in.logged_in = in.channels;
	}
	in.dialing = g->dialing + g->leasing;
	in.waiting = g->waiting;
	in.connected = g->connected;
	in.ratio = ob_conf()->progressive_ratio;
	in.min_agents = ob_conf()->predictive_min_agents;
	in.goal = g->optimize_goal;
	/* The first calls' outcomes are the quick ones (busy before an
	 * answer, an answer before a ring timeout): until calls of every
	 * length have ended, the hit ratio is not known. */
	if (g->paced_from_ms == 0)
		g->paced_from_ms = now_wall_us() / 1000;
	in.hit = now_wall_us() / 1000 - g->paced_from_ms >= HIT_AFTER_MS ?
	    pace_hit(&g->samples) : -1;
	in.ttc = g->fig.live > 0 ? g->fig.ttc_s / g->fig.live : 12;
	in.aht = g->fig.handled > 0 ? g->fig.busy_s / g->fig.handled : 30;
	in.k = g->k;
	in.grace = ob_conf()->abandon_timeout;
	if (in.hit >= 0 && in.mode == PM_PREDICTIVE) {
		memset(&plan, 0, sizeof(plan));
		roster_plan(agroup, &plan);
		forecast_calls(g, &plan);
		in.plan = &plan;
	} else
		in.expect = in.hit >= 0 ? expected_answers(g) : -1;
	lease(g, pace_calls(&in));
}

struct ages {
	json_int_t	 group;
	double		*v;
	struct call	**c;
	size_t		 n, cap;
	uint64_t	 now;
	unsigned	 waiting;	/* answered, no agent taken yet */
};

static void
age_of(const char *k, void *v, void *arg)
{
	struct call	*c = v;
	struct ages	*a = arg;

	if (c->group != a->group)
		return;
	if (c->state == C_WAITING)
		a->waiting++;
	if (c->state != C_DIALING)
		return;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
		a->c = xrealloc(a->c, a->cap * sizeof(*a->c));
	}
	a->c[a->n] = c;
	a->v[a->n++] = (a->now - c->dialed_ms) / 1000.0;
}

/*
 * forecast_calls - the group's calls and answers into the forecast; then,
 * with more answers due in the next seconds than agents to take them,
 * the calls that have rung long enough and are likeliest to be answered
 * are hung up (workers.outbound.predictive_cut_after; the FTC's rule asks
 * 15 s of ringing before a dialler hangs up an unanswered call).  An
 * answer waiting on a call being routed has its agent taken already: it
 * is counted with the agents, not with the answers.
 */
static void
forecast_calls(struct group *g, struct pace_plan *p)
{
	struct ages	 a = { g->dbid, NULL, NULL, 0, 0, now_wall_us() /
			    1000, 0 };
	int		 after = ob_conf()->predictive_cut_after;
	unsigned char	*cut;
	size_t		 i;

	strmap_each(&dial_calls, age_of, &a);
	pace_plan_calls(p, &g->samples, a.v, a.n, g->leasing, a.waiting);
	if (after > 0 && a.n > 0) {
		cut = xcalloc(a.n, 1);
		if (pace_cuts(p, &g->samples, a.v, a.n, after,
		    ob_conf()->abandon_timeout, cut) > 0)
			for (i = 0; i < a.n; i++)
				if (cut[i]) {
					g->fig.total_cut++;
					call_cut(a.c[i]);
				}
		free(cut);
	}
	free(a.c);
	free(a.v);
}

/* expected_answers - the live answers the group's calls placed will
 * still bring, from how long each has rung (pacing.c) */
static double
expected_answers(struct group *g)
{
	struct ages	a = { g->dbid, NULL, NULL, 0, 0, now_wall_us() / 1000,
			    0 };
	double		e;

	strmap_each(&dial_calls, age_of, &a);
	e = pace_expect(&g->samples, a.v, a.n) + g->leasing * pace_hit(
	    &g->samples);
	free(a.c);
	free(a.v);
	return e;
}

/*
 * lease - take up to n records of the group's campaign, from the list
 * whose share is least used, into calls.
 */
static void
lease(struct group *g, unsigned n)
{
	const struct cobj	*o = cache_get(g->dbid), *camp;
	json_t			*v, *lists, *e;
	json_int_t		 list = 0, best_list = 0;
	double			 best = 0, share;
	size_t			 i;
	uint64_t		 now = now_wall_us() / 1000;
	int			 empty = 0, closed = 0;

	if (n == 0 || g->leasing > 0 || now < g->next_lease_ms ||
	    pgc_state(ob.pg) != PGC_UP || dial_givebacks_pending())
		return;
	v = cobj_get(o, "origDN");
	if (dial_dn_number(cache_get(json_integer_value(v)), NULL, 0) == -1) {
		json_decref(v);
		dial_unhealthy(g, 4, "no origination DN (origDN)");
		return;
	}
	json_decref(v);
	g->unhealthy &= ~4u;
	v = cobj_get(o, "campaign");
	camp = cache_get(json_integer_value(v));
	json_decref(v);
	if (camp == NULL || (lists = cobj_get(camp, "callingLists")) == NULL) {
		dial_unhealthy(g, 2, "its campaign has no calling list");
		return;
	}
	/* Shares: the list furthest behind its share goes next. */
	json_array_foreach(lists, i, e) {
		list = json_integer_value(json_object_get(e, "callingList"));
		share = (double)json_integer_value(json_object_get(e,
		    "share"));
		if (json_is_false(json_object_get(e, "isActive")) ||
		    lists_table(list) == NULL)
			continue;
		if (!list_window_open(list, (time_t)(now / 1000))) {
			closed++;
			continue;
		}
		if (list_empty(g, list, now)) {
			empty++;
			continue;
		}
		if (share <= 0)
			share = 10;
		share = (list_count(g, list) + 1) / share;
		if (best_list == 0 || share < best) {
			best = share;
			best_list = list;
		}
	}
	json_decref(lists);
	if (best_list == 0) {
		/* Only lists whose window is open can say nothing is left. */
		if (empty > 0 && closed == 0) {
			if (g->empty_ms == 0)
				g->empty_ms = now;
			check_exhausted(g);
		}
		return;
	}
	if (n > LEASE_BATCH_MAX)
		n = LEASE_BATCH_MAX;
	lease_list(g, camp->dbid, best_list, n);
}

/* Per group and list: how many were dialled, when it was found empty. */
struct glist {
	double		 count;
	uint64_t	 empty_until;
};
static struct strmap	 glists;	/* "<group>:<list>" -> glist */

static struct glist *
glist(struct group *g, json_int_t list)
{
	char		 key[48];
	struct glist	*l;

	snprintf(key, sizeof(key), "%lld:%lld", (long long)g->dbid,
	    (long long)list);
	if ((l = strmap_get(&glists, key)) == NULL) {
		l = xcalloc(1, sizeof(*l));
		strmap_put(&glists, key, l);
	}
	return l;
}

static void
free_glist(const char *k, void *v, void *arg)
{
	free(v);
}

static void
glists_free(void)
{
	strmap_each(&glists, free_glist, NULL);
	strmap_clear(&glists);
}

static int
list_empty(struct group *g, json_int_t list, uint64_t now)
{
	return glist(g, list)->empty_until > now;
}

static double
list_count(struct group *g, json_int_t list)
{
	return glist(g, list)->count;
}

/*
 * The zones' times of day now, for the records' own windows: every
 * TimeZone of the configuration, as two arrays ("{1,2}", "{3600,7200}").
 */
static void
zone_arrays(time_t now, char **ids, char **sods)
{
	const struct cobj *const	*v;
	json_t				*name;
	size_t				 n, i, a = 0, b = 0, cap;
	int				 sod;

	v = cache_list(CFG_TIME_ZONE, &n);
	cap = 32 + n * 24;
	*ids = xmalloc(cap);
	*sods = xmalloc(cap);
	a += (size_t)snprintf(*ids, cap, "{");
	b += (size_t)snprintf(*sods, cap, "{");
	for (i = 0; i < n; i++) {
		name = cobj_get(v[i], "tzName");
		sod = window_sod(json_string_value(name), now);
		json_decref(name);
		if (sod < 0)
			continue;
		a += (size_t)snprintf(*ids + a, cap - a, "%s%lld",
		    a > 1 ? "," : "", (long long)v[i]->dbid);
		b += (size_t)snprintf(*sods + b, cap - b, "%s%d",
		    b > 1 ? "," : "", sod);
	}
	snprintf(*ids + a, cap - a, "}");
	snprintf(*sods + b, cap - b, "}");
	window_reset();
}

static json_int_t
list_zone(json_int_t list)
{
	const struct cobj		*l = cache_get(list);
	const struct cobj *const	*t;
	json_t				*v;
	json_int_t			 tz = 0;
	size_t				 n;

	if (l != NULL && (v = cobj_get(l, "timeZone")) != NULL) {
		tz = json_integer_value(v);
		json_decref(v);
	}
	if (tz == 0 && (t = cache_list(CFG_TENANT, &n)) != NULL && n > 0 &&
	    (v = cobj_get(t[0], "timeZone")) != NULL) {
		tz = json_integer_value(v);
		json_decref(v);
	}
	return tz;
}

/* lease_list - the lease of up to n records of list, with their reports */
static void
lease_list(struct group *g, json_int_t camp, json_int_t list, unsigned n)
{
	const char	*table = lists_table(list);
	const char	*cust = lists_customer_column(list);
	struct lease	*l;
	char		*sql, *ids, *sods, until[24], now_s[24], cid[24];
	char		 gid[24], lz[24], lim[16];
	const char	*p[9];
	time_t		 now = time(NULL);

	if ((l = xcalloc(1, sizeof(*l))) == NULL ||
	    (l->txn = pgc_begin(ob.pg)) == NULL) {
		free(l);
		return;
	}
	l->group = g->dbid;
	l->campaign = camp;
	l->list = list;
	zone_arrays(now, &ids, &sods);
	snprintf(until, sizeof(until), "%llu", (unsigned long long)
	    (now_wall_us() / 1000 + (uint64_t)(ob_conf()->lease_time * 1000)));
	snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
	snprintf(cid, sizeof(cid), "%lld", (long long)camp);
	snprintf(gid, sizeof(gid), "%lld", (long long)g->dbid);
	snprintf(lz, sizeof(lz), "%lld", (long long)list_zone(list));
	snprintf(lim, sizeof(lim), "%u", n);
	p[0] = ob.owner;
	p[1] = until;
	p[2] = now_s;
	p[3] = cid;
	p[4] = gid;
	p[5] = ids;
	p[6] = sods;
	p[7] = lz;
	p[8] = lim;
	sql = xasprintf(
	    "UPDATE %1$s r SET record_status = 2, lease_owner = $1, "
	    "lease_until = $2, attempt = r.attempt + 1, call_time = $3, "
	    "campaign_id = $4, group_id = $5 "
	    "WHERE r.record_id IN (SELECT c.record_id FROM %1$s c "
	    "LEFT JOIN unnest($6::bigint[], $7::int[]) AS z(id, sod) "
	    "ON z.id = COALESCE(c.tz_dbid, $8::bigint) "
	    "WHERE c.record_status = 1 AND c.record_type IN (2, 3, 6) "
	    "AND COALESCE(c.dial_sched_time, 0) <= $3::integer "
	    "AND (c.daily_from IS NULL OR c.daily_till IS NULL "
	    "OR c.daily_from = c.daily_till "
	    "OR (c.daily_from < c.daily_till AND z.sod >= c.daily_from "
	    "AND z.sod < c.daily_till) "
	    "OR (c.daily_from > c.daily_till AND (z.sod >= c.daily_from "
	    "OR z.sod < c.daily_till))) "
	    "AND NOT EXISTS (SELECT 1 FROM %1$s x WHERE x.chain_id = "
	    "c.chain_id AND x.record_id <> c.record_id AND (x.record_status "
	    "= 2 OR (x.record_status = 1 AND x.chain_n < c.chain_n))) "
	    "AND NOT EXISTS (SELECT 1 FROM ocs_dnc d WHERE d.kind = 1 AND "
	    "d.value = c.contact_info) %2$s%3$s%4$s"
	    "ORDER BY c.dial_sched_time NULLS FIRST, c.record_id "
	    "LIMIT $9::integer FOR UPDATE OF c SKIP LOCKED) "
	    "RETURNING r.record_id, r.contact_info, r.contact_info_type, "
	    "r.attempt, r.chain_id, r.tz_dbid, r.treatments",
	    table, cust != NULL ? "AND NOT EXISTS (SELECT 1 FROM ocs_dnc e "
	    "WHERE e.kind = 2 AND e.value = c." : "",
	    cust != NULL ? cust : "", cust != NULL ? "::text) " : "");
	g->leasing = n;
	if (pgc_txn_query(l->txn, sql, 9, p, leased, l) == -1) {
		g->leasing = 0;
		pgc_rollback(l->txn, NULL, NULL);
		free(l);
	}
	free(sql);
	free(ids);
	free(sods);
}

static void
leased(struct pgc *pg, const PGresult *r, void *arg)
{
	struct lease	*l = arg;
	struct group	*g = groups_get(l->group);
	const struct cobj *o = cache_get(l->group);
	struct call	*c;
	json_t		*msg, *mode;
	char		*key;
	int		 i, n;
	uint64_t	 now = now_wall_us() / 1000;

	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
		if (r != NULL)
			log_warnx("outbound: records of calling list %lld "
			    "could not be leased: %s", (long long)l->list,
			    PQresultErrorMessage(r));
		pgc_rollback(l->txn, lease_committed, l);
		return;
	}
	n = PQntuples(r);
	if (n == 0 && g != NULL)
		glist(g, l->list)->empty_until = now + EMPTY_RETRY_MS;
	l->calls = xcalloc((size_t)n + 1, sizeof(*l->calls));
	mode = o != NULL ? cobj_get(o, "dialMode") : NULL;
	for (i = 0; i < n; i++) {
		c = xcalloc(1, sizeof(*c));
		util_uuid(c->guid);
		snprintf(c->request, sizeof(c->request), "ob-%s", c->guid);
		c->group = l->group;
		c->campaign = l->campaign;
		c->list = l->list;
		c->record = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		snprintf(c->phone, sizeof(c->phone), "%s", PQgetvalue(r, i, 1));
		c->phone_type = atoi(PQgetvalue(r, i, 2));
		c->attempt = atoi(PQgetvalue(r, i, 3));
		c->chain = strtoll(PQgetvalue(r, i, 4), NULL, 10);
		c->tz = strtoll(PQgetvalue(r, i, 5), NULL, 10);
		c->history = xstrdup(PQgetvalue(r, i, 6));
		snprintf(c->mode, sizeof(c->mode), "%s", g != NULL ? g->mode :
		    json_string_value(mode) ?: "");
		c->dialed_ms = now;
		l->calls[l->n++] = c;
		msg = call_report(c, "dialed");
		key = xasprintf("%lld:%lld", (long long)c->list,
		    (long long)c->chain);
		outbox_put(l->txn, key, msg);
		free(key);
		json_decref(msg);
	}
	json_decref(mode);
	pgc_commit(l->txn, lease_committed, l);
}

static void
lease_committed(struct pgc *pg, const PGresult *r, void *arg)
{
	struct lease	*l = arg;
	struct group	*g = groups_get(l->group);
	size_t		 i;
	int		 ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK &&
			    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") == 0;

	if (g != NULL)
		g->leasing = 0;
	if (!ok && r == NULL && l->n > 0)
		log_warnx("outbound: the answer to the lease of %zu record(s) "
		    "of calling list %lld was lost with the connection: they "
		    "are given back if it took effect", l->n,
		    (long long)l->list);
	for (i = 0; i < l->n; i++) {
		if (!ok && r == NULL) {
			/* in doubt: the COMMIT may have run */
			dial_giveback(l->calls[i]);
			continue;
		}
		if (!ok) {		/* nothing was leased */
			call_free(l->calls[i]);
			continue;
		}
		if (g == NULL || g->state != G_RUNNING || ob.stopping) {
			dial_giveback(l->calls[i]);	/* not to dial now */
			continue;
		}
		glist(g, l->list)->count++;
		g->empty_ms = 0;
		g->unhealthy &= ~2u;
		call_place(l->calls[i]);
	}
	if (ok)
		outbox_kick();
	free(l->calls);
	free(l);
}

/* check_exhausted - auto-completion: is any record left to dial? */
static void
check_exhausted(struct group *g)
{
	if (g->dialing + g->waiting + g->connected + g->leasing == 0 &&
	    g->empty_ms != 0 &&
	    now_wall_us() / 1000 - g->empty_ms >= EMPTY_RETRY_MS * 2) {
		dial_unhealthy(g, 2, "no dialable record");
		if (g->auto_completion)
			groups_exhausted(g);
	}
}

/* ---- leases: renewed while ours, given back once expired ---- */

static void
renew(void)
{
	const struct cobj *const	*v;
	size_t				 n, i;
	const char			*table, *p[2];
	char				*sql, until[24];

	if (dial_calls.n == 0 && outcomes_pending() == 0)
		return;
	snprintf(until, sizeof(until), "%llu", (unsigned long long)
	    (now_wall_us() / 1000 + (uint64_t)(ob_conf()->lease_time * 1000)));
	p[0] = ob.owner;
	p[1] = until;
	v = cache_list(CFG_CALLING_LIST, &n);
	for (i = 0; i < n; i++) {
		if ((table = lists_table(v[i]->dbid)) == NULL)
			continue;
		sql = xasprintf("UPDATE %s SET lease_until = $2 WHERE "
		    "lease_owner = $1 AND record_status = 2", table);
		pgc_query(ob.pg, sql, 2, p, NULL, NULL);
		free(sql);
	}
}

static void
sweep(void)
{
	const struct cobj *const	*v;
	size_t				 n, i;
	const char			*table, *p[2];
	char				*sql, now[24];

	if (pgc_state(ob.pg) != PGC_UP)
		return;
	snprintf(now, sizeof(now), "%llu", (unsigned long long)
	    (now_wall_us() / 1000));
	p[0] = now;
	p[1] = ob.owner;
	v = cache_list(CFG_CALLING_LIST, &n);
	for (i = 0; i < n; i++) {
		if ((table = lists_table(v[i]->dbid)) == NULL)
			continue;
		/* Ours are renewed, or waiting for their outcome's write. */
		sql = xasprintf("UPDATE %s SET record_status = 1, lease_owner = "
		    "NULL, lease_until = NULL WHERE record_status = 2 AND "
		    "lease_until < $1 AND lease_owner <> $2", table);
		pgc_query(ob.pg, sql, 2, p, NULL, NULL);
		free(sql);
	}
}

/* ---- reports and figures ---- */

/* ready_agents - the group's agents free now (its IVR ports, agentless) */
static unsigned
ready_agents(struct group *g)
{
	const struct cobj	*o = cache_get(g->dbid);
	struct roster_count	 rc;
	json_t			*v;

	if (o == NULL)
		return 0;
	if (pace_agentless(pace_mode_parse(g->mode))) {
		v = cobj_get(o, "numOfChannels");
		rc.ready = (unsigned)json_integer_value(v);
		json_decref(v);
		return rc.ready > g->connected ? rc.ready - g->connected : 0;
	}
	v = cobj_get(o, "group");
	roster_count(json_integer_value(v), &rc);
	json_decref(v);
	return rc.ready;
}

/* group_metrics - the group's series, labelled with its dbid */
static void
group_metrics(struct group *g, double rate, double hit, double over)
{
	char	lab[48];

	if (g->m_calls == NULL) {
		snprintf(lab, sizeof(lab), "campaign_group=\"%lld\"",
		    (long long)g->dbid);
		g->m_calls = metrics_gauge("tenant_ocs_calls_in_progress",
		    "A campaign group's dialled calls not yet finished.", lab);
		g->m_rate = metrics_gauge("tenant_ocs_dial_rate",
		    "A campaign group's attempts finished per second, over "
		    "the last stats interval (decayed).", lab);
		g->m_hit = metrics_gauge("tenant_ocs_hit_ratio",
		    "A campaign group's live answers per attempt.", lab);
		g->m_abandon = metrics_gauge("tenant_ocs_abandon_rate",
		    "A campaign group's abandoned calls per live answer.", lab);
	}
	metric_set(g->m_calls, (double)(g->dialing + g->waiting +
	    g->connected));
	metric_set(g->m_rate, rate);
	metric_set(g->m_hit, hit);
	metric_set(g->m_abandon, over);
}

/*
 * steer - move the predictive gain toward the goal.  An overdial goal
 * steers on the interval's counts (pace_adjust: every abandon takes a
 * little off, every live answer gives its share back), so the abandons
 * settle at the goal's share over any stretch of the run.  A busy factor
 * or wait goal steers on the measurements: down on what the short window
 * shows, up on the longer memory (CTL_DECAY), slowly, while it stays
 * below the goal.
 */
static void
steer(struct group *g)
{
	struct figures	*f = &g->fig, *c = &g->ctl, *b = &g->base;
	enum pace_goal	 goal = pace_goal_parse(g->optimize_by);
	double		 over, busy, wait, nk, up, live;

	c->live = c->live * CTL_DECAY + (f->live - b->live);
	c->abandoned = c->abandoned * CTL_DECAY + (f->abandoned -
	    b->abandoned);
	c->busy_s = c->busy_s * CTL_DECAY + (f->busy_s - b->busy_s);
	c->avail_s = c->avail_s * CTL_DECAY + (f->avail_s - b->avail_s);
	c->wait_s = c->wait_s * CTL_DECAY + (f->wait_s - b->wait_s);
	over = c->live > 0 ? c->abandoned / fmax(c->live, c->abandoned) : 0;
	busy = c->avail_s > 0 ? c->busy_s / c->avail_s : 0;
	wait = c->live > 0 ? c->wait_s / c->live : 0;
	nk = g->k;
	if (goal == PG_OVERDIAL) {
		live = f->live - b->live;
		if (live > 0)
			nk = pace_adjust(g->k, goal, g->optimize_goal,
			    (f->abandoned - b->abandoned) / live, 0, 0, live);
	} else {
		if (f->live > 0)
			nk = pace_adjust(g->k, goal, g->optimize_goal,
			    f->abandoned / fmax(f->live, f->abandoned),
			    f->avail_s > 0 ? f->busy_s / f->avail_s : 0,
			    f->wait_s / f->live, f->live);
		if (nk >= g->k && c->live > 0) {
			up = pace_adjust(g->k, goal, g->optimize_goal, over,
			    busy, wait, c->live);
			nk = up > g->k ? fmin(nk, up) : g->k;	/* else hold */
		}
	}
	if (g->state == G_RUNNING && c->live > 0) {
		g->k = nk;
		log_debug("outbound: campaign group %lld: gain %.3f (abandoned "
		    "%.1f%%, busy %.1f%%, wait %.1f s over %.0f answers)",
		    (long long)g->dbid, g->k, over * 100, busy * 100, wait,
		    c->live);
	}
}

/* counted - the Ready records left in a group's lists */
static void
counted(struct pgc *pg, const PGresult *r, void *arg)
{
	struct group	*g = groups_get((json_int_t)(intptr_t)arg);

	if (g != NULL && r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK &&
	    PQntuples(r) == 1)
		g->left = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
}

/*
 * count_left - count the Ready records of the group's active lists (the
 * partial index of Ready records answers it), for the next report's
 * GSW_STAT_TIME_TO_COMPLETE
 */
static void
count_left(struct group *g)
{
	const struct cobj	*o = cache_get(g->dbid), *camp;
	json_t			*v, *lists, *e;
	const char		*table;
	char			*sql = NULL, *more;
	size_t			 i;

	if (o == NULL || pgc_state(ob.pg) != PGC_UP)
		return;
	v = cobj_get(o, "campaign");
	camp = cache_get(json_integer_value(v));
	json_decref(v);
	if (camp == NULL || (lists = cobj_get(camp, "callingLists")) == NULL)
		return;
	json_array_foreach(lists, i, e) {
		if (json_is_false(json_object_get(e, "isActive")) ||
		    (table = lists_table(json_integer_value(json_object_get(e,
		    "callingList")))) == NULL)
			continue;
		more = xasprintf("%s%s(SELECT count(*) FROM %s WHERE "
		    "record_status = 1)", sql ? sql : "SELECT ", sql ? " + " :
		    "", table);
		free(sql);
		sql = more;
	}
	json_decref(lists);
	if (sql == NULL)
		g->left = 0;
	else
		pgc_query(ob.pg, sql, 0, NULL, counted,
		    (void *)(intptr_t)g->dbid);
	free(sql);
}

/* report_stats - the group's figures to Kafka, and the pacing's gain */
static void
report_stats(struct group *g, void *arg)
{
	struct figures	*f = &g->fig;
	struct pgc_txn	*txn;
	json_t		*msg;
	char		*key;
	double		 hit = f->dialed > 0 ? f->live / f->dialed : 0;
	/* Every abandoned call was answered first: a window that holds the
	 * abandon and no longer all of its answer counts it as one. */
	double		 over = f->live > 0 || f->abandoned > 0 ?
			    f->abandoned / fmax(f->live, f->abandoned) : 0;
	double		 busy = f->avail_s > 0 ? f->busy_s / f->avail_s : 0;
	double		 rate;

	rate = f->dialed * (1 - FIG_DECAY) / ob_conf()->stats_interval;
	group_metrics(g, rate, hit, over);
	steer(g);
	if (g->state == G_RUNNING)
		count_left(g);
	if (g->state != G_NOT_LOADED && (txn = pgc_begin(ob.pg)) != NULL) {
		msg = json_pack("{s:s, s:s, s:I, s:s, s:f, s:f, s:f, s:f, "
		    "s:i, s:f, s:f}",
		    "type", "group-stats", "tenant", ob.tenant,
		    "campaignGroup", (json_int_t)g->dbid, "state",
		    group_state_name(g->state),
		    "GSW_STAT_BUSY_FACTOR", busy * 100,
		    "GSW_STAT_HIT_RATIO", hit * 100,
		    "GSW_STAT_OVERDIAL_RATE", over * 100,
		    "GSW_STAT_TIME_TO_COMPLETE", g->left >= 0 && rate > 0 ?
		    g->left / rate : -1.0,
		    "callsInProgress", (int)(g->dialing + g->waiting +
		    g->connected),
		    "dialRate", rate,
		    "gain", g->k);
		json_object_set_new(msg, "readyAgents",
		    json_integer(ready_agents(g)));
		key = xasprintf("group:%lld", (long long)g->dbid);
		outbox_put(txn, key, msg);
		free(key);
		json_decref(msg);
		pgc_commit(txn, finished, NULL);
	}
	/* The window slides: half of the last one stays. */
	f->dialed *= FIG_DECAY;
	f->live *= FIG_DECAY;
	f->abandoned *= FIG_DECAY;
	f->ttc_s *= FIG_DECAY;
	f->handled *= FIG_DECAY;
	f->busy_s *= FIG_DECAY;
	f->avail_s *= FIG_DECAY;
	f->wait_s *= FIG_DECAY;
	g->base = *f;
}

static void
finished(struct pgc *pg, const PGresult *r, void *arg)
{
	if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") == 0)
		outbox_kick();
}

/* zone_of - the IANA name of a record's zone: its own, else the list's,
 * else the tenant's, else UTC */
const char *
dial_zone(json_int_t tz, json_int_t list)
{
	static char		 name[128];
	const struct cobj	*z;
	json_t			*v;

	if (tz <= 0)
		tz = list_zone(list);
	snprintf(name, sizeof(name), "UTC");
	if ((z = cache_get(tz)) != NULL && (v = cobj_get(z, "tzName")) !=
	    NULL) {
		if (window_tz_valid(json_string_value(v)))
			snprintf(name, sizeof(name), "%s",
			    json_string_value(v));
		json_decref(v);
	}
	return name;
}

/* list_window_open - inside the list's timeFrom..timeUntil, its zone */
static int
list_window_open(json_int_t list, time_t now)
{
	const struct cobj	*l = cache_get(list);
	json_t			*a, *b;
	int			 from, till, sod, open;

	if (l == NULL)
		return 0;
	a = cobj_get(l, "timeFrom");
	b = cobj_get(l, "timeUntil");
	from = a != NULL ? (int)json_integer_value(a) : 28800;
	till = b != NULL ? (int)json_integer_value(b) : 72000;
	json_decref(a);
	json_decref(b);
	sod = window_sod(dial_zone(0, list), now);
	open = sod >= 0 && window_in(sod, from, till);
	window_reset();
	return open;
}
