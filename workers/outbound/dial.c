/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial - the dialler (docs/outbound.md, "The dialler").
 *
 * Every tick, for each Running group, pacing.c says how many calls to
 * place; the dialler leases that many records from one of the campaign's
 * lists (shares decide which), with their "dialed" reports, in one
 * transaction, then asks the voice side for a predictive call per record.
 * A lease is the record's status Retrieved with this instance's name and
 * an expiry, taken with FOR UPDATE SKIP LOCKED: another instance never
 * takes a leased record, and a dead instance's leases expire (the sweep
 * gives their records back).  Only Ready records whose time has come,
 * inside the list's window and the record's own (in its time zone), not
 * on the do-not-call list, and the first undone one of their chain, are
 * leased.
 *
 * The call's outcome comes back on the voice event stream: a person
 * answered (the call is routed to the group's ready agent idle the
 * longest, or, with none free within workers.outbound.abandon_timeout,
 * dropped: counted abandoned), or busy, no answer, a machine, a fax, a
 * SIT tone.  The outcome goes through the list's treatments (treat.c) to
 * the record, with the "finished" attempt report and the record's (and
 * the chain's) in one transaction.
 *
 * What it touches: the calling lists' tables and ocs_outbox on the
 * worker's PostgreSQL connection; voice requests (through voice.c).
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

#define RING_TIMEOUT_S		25
#define SWEEP_MS		5000
#define EMPTY_RETRY_MS		2000
#define LEASE_BATCH_MAX		500
#define FIG_DECAY		0.5	/* what a window keeps of the last */

enum call_state {
	C_DIALING,	/* placed, no outcome yet */
	C_WAITING,	/* a person answered; no agent yet */
	C_ROUTING,	/* being routed to an agent or the IVR */
	C_CONNECTED,	/* with an agent or the IVR */
};

/* One attempt: a record leased and dialled. */
struct call {
	char		 guid[37];
	char		 request[48];	/* its requestId */
	char		 conn[24];	/* its connId, once dialled */
	json_int_t	 group;
	json_int_t	 campaign;
	json_int_t	 list;
	json_int_t	 record;
	json_int_t	 chain;
	json_int_t	 tz;		/* the record's zone, 0: the list's */
	int		 attempt;
	int		 phone_type;
	char		 phone[129];
	char		 orig[64];	/* the origination DN */
	char		*history;	/* its treatments column */
	char		 mode[24];
	enum call_state	 state;
	uint64_t	 dialed_ms;
	uint64_t	 answered_ms;
	uint64_t	 connected_ms;
	struct agent	*agent;		/* reserved, while routing */
	char		 agent_dn[64];
	char		 agent_id[64];
	struct event	*timer;		/* abandon timeout */
};

/* A lease on its way. */
struct lease {
	json_int_t	 group;
	json_int_t	 campaign;
	json_int_t	 list;
	struct pgc_txn	*txn;
	struct call	**calls;
	size_t		 n;
};

/* An attempt's outcome, until PostgreSQL has it. */
struct outcome {
	json_int_t	 list;
	char		 rid[24];
	char		 res[16];
	char		 status[16];
	char		 sched[24];	/* "": unchanged */
	char		 chain[24];
	char		 history[256];
	char		 agent[64];
	int		 final_chain;
	char		*key;		/* of its reports */
	json_t		*msgs;		/* its reports */
	int		 tries;
	struct event	*retry;
	LIST_ENTRY(outcome) entry;
};
static LIST_HEAD(, outcome) outcomes = LIST_HEAD_INITIALIZER(outcomes);
static unsigned		 pending_outcomes;

static void	outcome_write(struct outcome *);
static void	outcome_written(struct pgc *, const PGresult *, void *);
static void	outcome_retry(struct outcome *);
static void	outcome_free(struct outcome *);

static struct strmap	 by_request;	/* requestId -> call */
static struct strmap	 by_conn;	/* connId -> call */
static uint64_t		 seq;
static uint64_t		 swept_ms, renewed_ms, stats_ms;
static struct metric	*m_dialed, *m_live, *m_abandoned, *m_inprogress;
static struct metric	*m_health, *m_status, *m_unhealthy;

static void	on_voice(struct voice_event *, void *);
static void	on_link(int, void *);
static void	on_gap(int, const char *, void *);
static void	pace(struct group *, void *);
static void	lease(struct group *, unsigned);
static void	leased(struct pgc *, const PGresult *, void *);
static void	lease_committed(struct pgc *, const PGresult *, void *);
static void	place(struct call *);
static void	placed(int, void *);
static void	answered(struct call *);
static void	connect_waiting(struct group *, void *);
static void	route(struct call *, const char *dn);
static void	on_abandon(evutil_socket_t, short, void *);
static void	finish(struct call *, int result);
static void	finished(struct pgc *, const PGresult *, void *);
static void	call_free(struct call *);
static void	report_stats(struct group *, void *);
static void	sweep(void);
static json_t	*attempt_report(const struct call *, const char *phase);
static const char *zone_of(json_int_t tz, json_int_t list);
static int	 list_window_open(json_int_t list, time_t now);
static int	 result_of_cause(const char *);
static void	 send_request(const char *name, const char *dn,
		    const char *conn, const char *dest, const char *reqid);
static int	 list_empty(struct group *, json_int_t, uint64_t);
static double	 list_count(struct group *, json_int_t);
static void	 check_exhausted(struct group *);
static void	 lease_list(struct group *, json_int_t, json_int_t, unsigned);
static void	 renew(void);
static void	 glists_free(void);
static double	 expected_answers(struct group *);
static int	 dn_number(const struct cobj *, char *, size_t);
static void	 sent(int, void *);
static void	 group_metrics(struct group *, double, double, double);

/* ---- start, stop ---- */

void
dial_start(const struct conf *c)
{
	struct voice_cbs	cbs = { on_voice, on_link, NULL };

	m_dialed = metrics_counter("tenantd_outbound_calls_dialed_total",
	    "Calls the dialler placed.", NULL);
	m_live = metrics_counter("tenantd_outbound_calls_answered_total",
	    "Dialled calls a person answered.", NULL);
	m_abandoned = metrics_counter(
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
	voice_on_gap(on_gap);
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
	struct outcome	*o, *next;

	/* A write still out is answered (NULL) by pgc_free, later, and
	 * freed then (the worker is stopping): only those waiting for a
	 * retry are freed here. */
	for (o = LIST_FIRST(&outcomes); o != NULL; o = next) {
		next = LIST_NEXT(o, entry);
		if (o->retry != NULL)
			outcome_free(o);
	}
	glists_free();
	voice_stop();
	strmap_clear(&by_conn);
	strmap_each(&by_request, free_call, NULL);
	strmap_clear(&by_request);
}

/* ---- the tick ---- */

void
dial_tick(void)
{
	uint64_t	now = now_wall_us() / 1000;
	int		up = pgc_state(ob.pg) == PGC_UP && voice_link_up() &&
			    outbox_kafka_up();

	if (!ob.stopping)
		groups_each(connect_waiting, NULL);
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
	metric_set(m_inprogress, (double)by_request.n);
	metric_set(m_status, up ? 1 : 0);
	metric_set(m_health, up ? 3 : pgc_state(ob.pg) == PGC_UP ? 2 : 1);
}

/* ---- pacing and leasing ---- */

/* unhealthy - count a group going unhealthy once per reason */
static void
unhealthy(struct group *g, unsigned bit, const char *why)
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
			unhealthy(g, 1, "no agent logged in");
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
	in.hit = pace_hit(&g->samples);
	in.expect = in.hit >= 0 ? expected_answers(g) : -1;
	in.ttc = g->fig.live > 0 ? g->fig.ttc_s / g->fig.live : 12;
	in.aht = g->fig.handled > 0 ? g->fig.busy_s / g->fig.handled : 30;
	in.k = g->k;
	lease(g, pace_calls(&in));
}

struct ages {
	json_int_t	 group;
	double		*v;
	size_t		 n, cap;
	uint64_t	 now;
};

static void
age_of(const char *k, void *v, void *arg)
{
	struct call	*c = v;
	struct ages	*a = arg;

	if (c->group != a->group || c->state != C_DIALING)
		return;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = (a->now - c->dialed_ms) / 1000.0;
}

/* expected_answers - the live answers the group's calls placed will
 * still bring, from how long each has rung (pacing.c) */
static double
expected_answers(struct group *g)
{
	struct ages	a = { g->dbid, NULL, 0, 0, now_wall_us() / 1000 };
	double		e;

	strmap_each(&by_request, age_of, &a);
	e = pace_expect(&g->samples, a.v, a.n) + g->leasing * pace_hit(
	    &g->samples);
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

	if (n == 0 || g->leasing > 0 || now < g->next_lease_ms ||
	    pgc_state(ob.pg) != PGC_UP)
		return;
	v = cobj_get(o, "campaign");
	camp = cache_get(json_integer_value(v));
	json_decref(v);
	if (camp == NULL || (lists = cobj_get(camp, "callingLists")) == NULL) {
		unhealthy(g, 2, "its campaign has no calling list");
		return;
	}
	/* Shares: the list furthest behind its share goes next. */
	json_array_foreach(lists, i, e) {
		list = json_integer_value(json_object_get(e, "callingList"));
		share = (double)json_integer_value(json_object_get(e,
		    "share"));
		if (json_is_false(json_object_get(e, "isActive")) ||
		    lists_table(list) == NULL ||
		    !list_window_open(list, (time_t)(now / 1000)) ||
		    list_empty(g, list, now))
			continue;
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
		if (g->empty_ms == 0)
			g->empty_ms = now;
		check_exhausted(g);
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
		msg = attempt_report(c, "dialed");
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
	for (i = 0; i < l->n; i++) {
		if (!ok || g == NULL || g->state != G_RUNNING || ob.stopping) {
			/* Not ours after all; a committed lease expires. */
			call_free(l->calls[i]);
			continue;
		}
		glist(g, l->list)->count++;
		g->empty_ms = 0;
		g->unhealthy &= ~2u;
		place(l->calls[i]);
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
		unhealthy(g, 2, "no dialable record");
		if (g->auto_completion)
			groups_exhausted(g);
	}
}

/* ---- calls ---- */

static void
place(struct call *c)
{
	struct group		*g = groups_get(c->group);
	const struct cobj	*o = cache_get(c->group), *dn, *camp, *list;
	json_t			*req, *ud, *v;
	const char		*tz;

	v = cobj_get(o, "origDN");
	dn = cache_get(json_integer_value(v));
	json_decref(v);
	if (dn_number(dn, c->orig, sizeof(c->orig)) == -1) {
		unhealthy(g, 4, "no origination DN");
		dial_giveback(c);
		return;
	}
	camp = cache_get(c->campaign);
	list = cache_get(c->list);
	tz = zone_of(c->tz, c->list);
	ud = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:I, s:I, "
	    "s:s, s:s}",
	    "GSW_RECORD_HANDLE", c->guid,
	    "GSW_CAMPAIGN_NAME", camp != NULL && camp->key ? camp->key : "",
	    "GSW_CALLING_LIST", list != NULL && list->key ? list->key : "",
	    "GSW_CAMPAIGN_GROUP_NAME", o->key != NULL ? o->key : "",
	    "GSW_PHONE", c->phone,
	    "GSW_PHONE_TYPE", c->phone_type,
	    "GSW_ATTEMPTS", c->attempt,
	    "GSW_CALL_ATTEMPT_GUID", c->guid,
	    "GSW_CHAIN_ID", (json_int_t)c->chain,
	    "GSW_RECORD_ID", (json_int_t)c->record,
	    "GSW_TZ_NAME", tz,
	    "GSW_DIAL_MODE", c->mode);
	req = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:o}",
	    "request", "RequestMakePredictiveCall", "requestId", c->request,
	    "dn", c->orig, "destination", c->phone,
	    "ringTimeout", RING_TIMEOUT_S, "cpd", 1, "userData", ud);
	if ((v = cobj_get(o, "callerId")) != NULL)
		json_object_set_new(req, "callerId", v);
	strmap_put(&by_request, c->request, c);
	log_debug("outbound: dialling record %lld of list %lld (%s), attempt "
	    "%d, request %s", (long long)c->record, (long long)c->list,
	    c->phone, c->attempt, c->request);
	c->state = C_DIALING;
	g->dialing++;
	g->fig.total_dialed++;
	metric_add(m_dialed, 1);
	voice_send(req, placed, xstrdup(c->request));
	json_decref(req);
}

/* placed - Redis took the request, or not: then the record goes back */
static void
placed(int ok, void *arg)
{
	char		*id = arg;
	struct call	*c = strmap_get(&by_request, id);

	free(id);
	if (ok || c == NULL)
		return;
	dial_giveback(c);
}

/* dial_giveback - the record was not dialled: Ready again, as it was */
void
dial_giveback(struct call *c)
{
	const char	*table = lists_table(c->list);
	char		*sql, rid[24];
	const char	*p[2];
	struct group	*g = groups_get(c->group);

	if (g != NULL && c->state == C_DIALING && strmap_get(&by_request,
	    c->request) == c)
		g->dialing--;
	if (table != NULL) {
		snprintf(rid, sizeof(rid), "%lld", (long long)c->record);
		p[0] = rid;
		p[1] = ob.owner;
		sql = xasprintf("UPDATE %s SET record_status = 1, attempt = "
		    "GREATEST(attempt - 1, 0), lease_owner = NULL, lease_until "
		    "= NULL WHERE record_id = $1 AND lease_owner = $2", table);
		pgc_query(ob.pg, sql, 2, p, NULL, NULL);
		free(sql);
	}
	call_free(c);
}

/* ---- the voice side's news ---- */

static void
on_link(int up, void *arg)
{
	roster_link(up);
}

static void
on_gap(int region, const char *why, void *arg)
{
	if (region == 0)
		roster_gap();
}

static void
on_voice(struct voice_event *v, void *arg)
{
	roster_voice(v);
	dial_voice(v);
}

void
dial_voice(struct voice_event *v)
{
	struct call	*c = NULL;
	json_t		*o;
	const char	*conn, *cause, *res;
	struct group	*g;

	if (v->region != 0 || (o = voice_event_json(v)) == NULL)
		return;
	conn = json_string_value(json_object_get(o, "connId"));
	if (strncmp(v->request_id, "ob-", 3) == 0)
		c = strmap_get(&by_request, v->request_id);
	else if (strncmp(v->request_id, "obr-", 4) == 0) {
		char	id[48];

		snprintf(id, sizeof(id), "ob-%s", v->request_id + 4);
		c = strmap_get(&by_request, id);
	}
	if (c == NULL && conn != NULL)
		c = strmap_get(&by_conn, conn);
	if (c == NULL)
		return;
	g = groups_get(c->group);
	cause = json_string_value(json_object_get(o, "cause"));
	if (strcmp(v->name, "EventError") == 0) {
		if (c->state == C_ROUTING) {	/* the agent is gone: next */
			roster_untake(c->agent);
			c->agent = NULL;
			c->state = C_WAITING;
			return;
		}
		finish(c, strcmp(json_string_value(json_object_get(o,
		    "code")) ?: "", "UnknownDN") == 0 ? 11 : 3);
		return;
	}
	if (strcmp(v->name, "EventDialing") == 0 && conn != NULL &&
	    c->conn[0] == '\0') {
		snprintf(c->conn, sizeof(c->conn), "%s", conn);
		strmap_put(&by_conn, c->conn, c);
		return;
	}
	if (c->state == C_CONNECTED || c->state == C_ROUTING) {
		/* At the agent: its end is the attempt's. */
		if ((strcmp(v->name, "EventReleased") == 0 ||
		    strcmp(v->name, "EventAbandoned") == 0) &&
		    strcmp(v->dn, c->agent_dn) == 0 &&
		    c->state == C_CONNECTED) {
			finish(c, 33);
			return;
		}
		if (strcmp(v->name, "EventReleased") == 0 && cause != NULL &&
		    strcmp(cause, "Transferred") == 0 && c->state == C_ROUTING) {
			c->state = C_CONNECTED;
			c->connected_ms = now_wall_us() / 1000;
			if (g != NULL) {
				g->waiting--;
				g->connected++;
				g->fig.wait_s += (c->connected_ms -
				    c->answered_ms) / 1000.0;
			}
			roster_untake(c->agent);
			c->agent = NULL;
			if (pace_agentless(pace_mode_parse(c->mode)))
				finish(c, 33);
			return;
		}
		if (strcmp(v->name, "EventAbandoned") == 0 &&
		    c->state == C_ROUTING) {
			if (g != NULL)
				g->fig.abandoned++, g->fig.total_abandoned++;
			metric_add(m_abandoned, 1);
			finish(c, 21);
		}
		return;
	}
	if (strcmp(v->name, "EventEstablished") == 0) {
		res = json_string_value(json_object_get(o, "callResult"));
		if (res == NULL || strcmp(res, "Answer") == 0) {
			answered(c);
			return;
		}
		/* A machine or a fax the voice side did not drop: drop it. */
		send_request("RequestReleaseCall", v->dn, c->conn, NULL, NULL);
		finish(c, result_of_cause(res));
		return;
	}
	if (strcmp(v->name, "EventAbandoned") == 0 ||
	    strcmp(v->name, "EventReleased") == 0) {
		if (c->state == C_WAITING) {	/* hung up waiting */
			if (g != NULL)
				g->fig.abandoned++, g->fig.total_abandoned++;
			metric_add(m_abandoned, 1);
			finish(c, 21);
			return;
		}
		finish(c, result_of_cause(cause));
	}
}

/* answered - a person: to an agent (or the IVR) now, or wait a little */
static void
answered(struct call *c)
{
	struct group	*g = groups_get(c->group);
	struct timeval	 tv = util_tv(ob_conf()->abandon_timeout);

	c->answered_ms = now_wall_us() / 1000;
	c->state = C_WAITING;
	if (g != NULL) {
		g->dialing--;
		g->waiting++;
		g->fig.live++;
		g->fig.total_live++;
		g->fig.ttc_s += (c->answered_ms - c->dialed_ms) / 1000.0;
		pace_sample(&g->samples, (c->answered_ms - c->dialed_ms) /
		    1000.0, 1);
	}
	metric_add(m_live, 1);
	c->timer = evtimer_new(ob.base, on_abandon, c);
	evtimer_add(c->timer, &tv);
	if (g != NULL)
		connect_waiting(g, NULL);
}

struct waiting {
	struct group	*g;
	struct call	*oldest;
};

static void
find_waiting(const char *k, void *v, void *arg)
{
	struct call	*c = v;
	struct waiting	*w = arg;

	if (c->group == w->g->dbid && c->state == C_WAITING &&
	    (w->oldest == NULL || c->answered_ms < w->oldest->answered_ms))
		w->oldest = c;
}

/* connect_waiting - the group's answered calls to its free agents,
 * oldest first */
static void
connect_waiting(struct group *g, void *arg)
{
	const struct cobj	*o = cache_get(g->dbid), *ivr;
	struct waiting		 w;
	struct agent		*a;
	json_t			*v;
	json_int_t		 agroup;

	if (g->waiting == 0 || o == NULL)
		return;
	v = cobj_get(o, "group");
	agroup = json_integer_value(v);
	json_decref(v);
	for (;;) {
		w.g = g;
		w.oldest = NULL;
		strmap_each(&by_request, find_waiting, &w);
		if (w.oldest == NULL)
			return;
		if (pace_agentless(pace_mode_parse(w.oldest->mode))) {
			v = cobj_get(o, "ivrDN");
			if (v == NULL)
				v = cobj_get(o, "origDN");
			ivr = cache_get(json_integer_value(v));
			json_decref(v);
			if (dn_number(ivr, w.oldest->agent_dn,
			    sizeof(w.oldest->agent_dn)) == -1)
				return;
			route(w.oldest, w.oldest->agent_dn);
			continue;
		}
		if ((a = roster_take(agroup)) == NULL)
			return;
		w.oldest->agent = a;
		snprintf(w.oldest->agent_dn, sizeof(w.oldest->agent_dn), "%s",
		    a->dn);
		snprintf(w.oldest->agent_id, sizeof(w.oldest->agent_id), "%s",
		    a->login);
		route(w.oldest, a->dn);
	}
}

static void
route(struct call *c, const char *dn)
{
	char	id[48];

	c->state = C_ROUTING;
	log_debug("outbound: record %lld: the call %s to %s", (long long)
	    c->record, c->conn, dn);
	if (c->timer != NULL)
		evtimer_del(c->timer);
	snprintf(id, sizeof(id), "obr-%s", c->guid);
	send_request("RequestRouteCall", c->orig, c->conn, dn, id);
}

/* on_abandon - no agent in time: drop the call (the FTC's abandon) */
static void
on_abandon(evutil_socket_t fd, short what, void *arg)
{
	struct call	*c = arg;
	struct group	*g = groups_get(c->group);

	if (c->state != C_WAITING)
		return;
	send_request("RequestReleaseCall", c->orig, c->conn, NULL, NULL);
	if (g != NULL)
		g->fig.abandoned++, g->fig.total_abandoned++;
	metric_add(m_abandoned, 1);
	finish(c, 26);
}

/* ---- outcomes ---- */

/* The list's treatments, as treat.c takes them. */
static size_t
treatments_of(json_int_t list, struct treatment *t, size_t max)
{
	const struct cobj	*l = cache_get(list), *o;
	json_t			*refs, *e, *v;
	size_t			 i, n = 0;

	if (l == NULL || (refs = cobj_get(l, "treatments")) == NULL)
		return 0;
	json_array_foreach(refs, i, e) {
		if (n == max || (o = cache_get(json_integer_value(e))) ==
		    NULL || !o->enabled || o->kind != CFG_TREATMENT)
			continue;
		memset(&t[n], 0, sizeof(t[n]));
		t[n].dbid = o->dbid;
		v = cobj_get(o, "callResult");
		t[n].result = treat_result_code(json_string_value(v));
		json_decref(v);
		v = cobj_get(o, "action");
		t[n].action = (enum treat_action)treat_action_parse(
		    json_string_value(v));
		json_decref(v);
#define INT_OF(f, dst) do {						\
		v = cobj_get(o, f);					\
		dst = (int)json_integer_value(v);			\
		json_decref(v);						\
	} while (0)
		INT_OF("interval", t[n].interval);
		INT_OF("increment", t[n].increment);
		INT_OF("attempts", t[n].attempts);
		INT_OF("time", t[n].time);
		INT_OF("cycle", t[n].cycle);
#undef INT_OF
		if ((int)t[n].action >= 0 && t[n].result >= 0)
			n++;
	}
	json_decref(refs);
	return n;
}



/*
 * finish - the attempt is over with result (a call_result code): the
 * record after its treatment, the reports, in one transaction.
 */
static void
finish(struct call *c, int result)
{
	const struct cobj	*l = cache_get(c->list);
	struct group		*g = groups_get(c->group);
	struct treatment	 t[64];
	struct treat_in		 in;
	struct treat_out	 out;
	struct outcome		*o;
	json_t			*msg, *v;
	uint64_t		 now = now_wall_us() / 1000;

	if (g != NULL) {
		if (c->state == C_DIALING) {
			g->dialing--;
			pace_sample(&g->samples, (now - c->dialed_ms) / 1000.0,
			    0);
		}
		else if (c->state == C_WAITING || c->state == C_ROUTING)
			g->waiting--;
		else
			g->connected--;
		g->fig.dialed++;
		if (c->state == C_CONNECTED && c->connected_ms > 0)
			g->fig.handled++;
	}
	roster_untake(c->agent);
	c->agent = NULL;
	log_debug("outbound: record %lld of list %lld: call result %d",
	    (long long)c->record, (long long)c->list, result);
	memset(&in, 0, sizeof(in));
	in.result = result;
	in.attempt = c->attempt;
	v = l != NULL ? cobj_get(l, "maxAttempts") : NULL;
	in.max_attempts = v != NULL ? (int)json_integer_value(v) : 10;
	json_decref(v);
	in.history = c->history;
	in.t = t;
	in.nt = treatments_of(c->list, t, 64);
	in.now = (time_t)(now / 1000);
	in.tz = zone_of(c->tz, c->list);
	treat_apply(&in, &out);
	window_reset();
	o = xcalloc(1, sizeof(*o));
	LIST_INSERT_HEAD(&outcomes, o, entry);
	o->list = c->list;
	snprintf(o->rid, sizeof(o->rid), "%lld", (long long)c->record);
	snprintf(o->res, sizeof(o->res), "%d", result);
	snprintf(o->status, sizeof(o->status), "%d", out.record_status);
	if (out.sched != 0)
		snprintf(o->sched, sizeof(o->sched), "%lld",
		    (long long)out.sched);
	snprintf(o->chain, sizeof(o->chain), "%lld", (long long)c->chain);
	snprintf(o->history, sizeof(o->history), "%s", out.history);
	snprintf(o->agent, sizeof(o->agent), "%s", c->agent_id);
	o->final_chain = out.chain == TC_FINAL;
	o->key = xasprintf("%lld:%lld", (long long)c->list,
	    (long long)c->chain);
	o->msgs = json_array();
	msg = attempt_report(c, "finished");
	json_object_set_new(msg, "callResult", json_integer(result));
	json_object_set_new(msg, "callResultName",
	    json_string(treat_result_name(result)));
	json_object_set_new(msg, "duration", json_real((double)(now -
	    c->dialed_ms) / 1000.0));
	if (c->agent_dn[0] != '\0') {
		json_object_set_new(msg, "dn", json_string(c->agent_dn));
		json_object_set_new(msg, "agent", json_string(c->agent_id));
	}
	json_array_append_new(o->msgs, msg);
	msg = json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:i, s:s, s:s}",
	    "type", "record", "tenant", ob.tenant,
	    "callingList", (json_int_t)c->list, "record_id",
	    (json_int_t)c->record, "chain_id", (json_int_t)c->chain,
	    "record_status", out.record_status, "call_result", result,
	    "attempt", c->attempt, "treatments", out.history,
	    "treatment", out.action);
	if (out.sched != 0)
		json_object_set_new(msg, "dial_sched_time",
		    json_integer((json_int_t)out.sched));
	json_array_append_new(o->msgs, msg);
	if (o->final_chain)
		json_array_append_new(o->msgs, json_pack("{s:s, s:s, s:I, "
		    "s:I, s:i, s:i}", "type", "chain", "tenant", ob.tenant,
		    "callingList", (json_int_t)c->list, "chainId",
		    (json_int_t)c->chain, "recordStatus", out.record_status,
		    "callResult", result));
	call_free(c);
	outcome_write(o);
}

/*
 * outcome_write - the record's update and its reports, in one
 * transaction; tried again every second while PostgreSQL does not take
 * it (the lease is renewed meanwhile, so no one else dials the record).
 */
static void
outcome_write(struct outcome *o)
{
	const char	*table = lists_table(o->list);
	struct pgc_txn	*txn;
	const char	*p[7];
	char		*sql;
	json_t		*msg;
	size_t		 i;

	if (table == NULL || pgc_state(ob.pg) != PGC_UP ||
	    (txn = pgc_begin(ob.pg)) == NULL) {
		outcome_retry(o);
		return;
	}
	p[0] = o->rid;
	p[1] = ob.owner;
	p[2] = o->status;
	p[3] = o->res;
	p[4] = o->sched[0] != '\0' ? o->sched : NULL;
	p[5] = o->history;
	p[6] = o->agent[0] != '\0' ? o->agent : NULL;
	/* A record cancelled meanwhile stays cancelled. */
	sql = xasprintf("UPDATE %s SET record_status = CASE WHEN "
	    "record_status = 5 THEN 5 ELSE $3::integer END, call_result = "
	    "$4, dial_sched_time = COALESCE($5::integer, dial_sched_time), "
	    "treatments = $6, agent_id = COALESCE($7, agent_id), lease_owner "
	    "= NULL, lease_until = NULL WHERE record_id = $1 AND lease_owner "
	    "= $2", table);
	pgc_txn_query(txn, sql, 7, p, NULL, NULL);
	free(sql);
	if (o->final_chain) {
		p[0] = o->chain;
		p[1] = o->rid;
		sql = xasprintf("UPDATE %s SET record_status = 7 WHERE "
		    "chain_id = $1 AND record_id <> $2 AND record_status = 1",
		    table);
		pgc_txn_query(txn, sql, 2, p, NULL, NULL);
		free(sql);
	}
	json_array_foreach(o->msgs, i, msg)
		outbox_put(txn, o->key, msg);
	pending_outcomes++;
	pgc_commit(txn, outcome_written, o);
}

static void
outcome_written(struct pgc *pg, const PGresult *r, void *arg)
{
	struct outcome	*o = arg;

	pending_outcomes--;
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") != 0) {
		outcome_retry(o);
		return;
	}
	outbox_kick();
	outcome_free(o);
}

static void
on_outcome_retry(evutil_socket_t fd, short what, void *arg)
{
	struct outcome	*o = arg;

	event_free(o->retry);
	o->retry = NULL;
	outcome_write(o);
}

static void
outcome_retry(struct outcome *o)
{
	struct timeval	tv = { 1, 0 };

	if (o->tries++ == 0)
		log_warnx("outbound: the outcome of record %s of calling list "
		    "%lld waits for PostgreSQL", o->rid, (long long)o->list);
	if (ob.stopping) {	/* the lease expires: dialled again later */
		outcome_free(o);
		return;
	}
	pending_outcomes++;
	o->retry = evtimer_new(ob.base, on_outcome_retry, o);
	evtimer_add(o->retry, &tv);
}

static void
outcome_free(struct outcome *o)
{
	if (o->retry != NULL) {
		event_free(o->retry);
		pending_outcomes--;
	}
	LIST_REMOVE(o, entry);
	json_decref(o->msgs);
	free(o->key);
	free(o);
}

static void
finished(struct pgc *pg, const PGresult *r, void *arg)
{
	if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") == 0)
		outbox_kick();
}

static void
call_free(struct call *c)
{
	if (strmap_get(&by_request, c->request) == c)
		strmap_del(&by_request, c->request);
	if (c->conn[0] != '\0' && strmap_get(&by_conn, c->conn) == c)
		strmap_del(&by_conn, c->conn);
	roster_untake(c->agent);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->history);
	free(c);
}

struct forget {
	struct group	*g;
	struct call	*c;
};

static void
find_group_call(const char *k, void *v, void *arg)
{
	struct forget	*f = arg;
	struct call	*c = v;

	if (f->c == NULL && c->group == f->g->dbid)
		f->c = c;
}

/* dial_forget - force-unload: release what still rings, records back */
void
dial_forget(struct group *g)
{
	struct forget	f = { g, NULL };

	for (;;) {
		f.c = NULL;
		strmap_each(&by_request, find_group_call, &f);
		if (f.c == NULL)
			break;
		if (f.c->state == C_DIALING || f.c->state == C_WAITING)
			send_request("RequestReleaseCall", f.c->orig, f.c->conn,
			    NULL, NULL);
		f.c->state = C_DIALING;
		dial_giveback(f.c);
	}
	g->dialing = g->waiting = g->connected = 0;
}

/* ---- leases: renewed while ours, given back once expired ---- */

static void
renew(void)
{
	const struct cobj *const	*v;
	size_t				 n, i;
	const char			*table, *p[2];
	char				*sql, until[24];

	if (by_request.n == 0 && pending_outcomes == 0)
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
	const char			*table, *p[1];
	char				*sql, now[24];

	if (pgc_state(ob.pg) != PGC_UP)
		return;
	snprintf(now, sizeof(now), "%llu", (unsigned long long)
	    (now_wall_us() / 1000));
	p[0] = now;
	v = cache_list(CFG_CALLING_LIST, &n);
	for (i = 0; i < n; i++) {
		if ((table = lists_table(v[i]->dbid)) == NULL)
			continue;
		sql = xasprintf("UPDATE %s SET record_status = 1, lease_owner = "
		    "NULL, lease_until = NULL WHERE record_status = 2 AND "
		    "lease_until < $1", table);
		pgc_query(ob.pg, sql, 1, p, NULL, NULL);
		free(sql);
	}
}

/* ---- reports and figures ---- */

static json_t *
attempt_report(const struct call *c, const char *phase)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, "
	    "s:s, s:i, s:s, s:s}",
	    "type", "attempt", "tenant", ob.tenant, "phase", phase,
	    "attemptGuid", c->guid, "campaignGroup", (json_int_t)c->group,
	    "campaign", (json_int_t)c->campaign, "callingList",
	    (json_int_t)c->list, "recordId", (json_int_t)c->record,
	    "chainId", (json_int_t)c->chain, "phone", c->phone,
	    "attempt", c->attempt, "dialMode", c->mode, "connId", c->conn);
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

/* report_stats - the group's figures to Kafka, and the pacing's gain */
static void
report_stats(struct group *g, void *arg)
{
	struct figures	*f = &g->fig;
	struct pgc_txn	*txn;
	json_t		*msg;
	char		*key;
	double		 hit = f->dialed > 0 ? f->live / f->dialed : 0;
	double		 over = f->live > 0 ? f->abandoned / f->live : 0;
	double		 busy = f->avail_s > 0 ? f->busy_s / f->avail_s : 0;
	double		 wait = f->live > 0 ? f->wait_s / f->live : 0;

	group_metrics(g, f->dialed / ob_conf()->stats_interval, hit, over);
	if (g->state == G_RUNNING && f->live > 0)
		g->k = pace_adjust(g->k, pace_goal_parse(g->optimize_by),
		    g->optimize_goal, over, busy, wait, f->live);
	if (g->state != G_NOT_LOADED && (txn = pgc_begin(ob.pg)) != NULL) {
		msg = json_pack("{s:s, s:s, s:I, s:s, s:f, s:f, s:f, s:f, "
		    "s:i, s:f, s:f}",
		    "type", "group-stats", "tenant", ob.tenant,
		    "campaignGroup", (json_int_t)g->dbid, "state",
		    group_state_name(g->state),
		    "GSW_STAT_BUSY_FACTOR", busy * 100,
		    "GSW_STAT_HIT_RATIO", hit * 100,
		    "GSW_STAT_OVERDIAL_RATE", over * 100,
		    "GSW_STAT_TIME_TO_COMPLETE", -1.0,
		    "callsInProgress", (int)(g->dialing + g->waiting +
		    g->connected),
		    "dialRate", f->dialed / ob_conf()->stats_interval,
		    "gain", g->k);
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
}

/* ---- small helpers ---- */

/* dn_number - a DN object's number (its key is "<switch>/<number>") */
static int
dn_number(const struct cobj *dn, char *out, size_t len)
{
	json_t	*v;
	int	 rc = -1;

	if (dn == NULL || dn->kind != CFG_DN || !dn->enabled ||
	    (v = cobj_get(dn, "number")) == NULL)
		return -1;
	if (json_is_string(v)) {
		snprintf(out, len, "%s", json_string_value(v));
		rc = 0;
	}
	json_decref(v);
	return rc;
}

/* zone_of - the IANA name of a record's zone: its own, else the list's,
 * else the tenant's, else UTC */
static const char *
zone_of(json_int_t tz, json_int_t list)
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
	sod = window_sod(zone_of(0, list), now);
	open = sod >= 0 && window_in(sod, from, till);
	window_reset();
	return open;
}

/* result_of_cause - a released call's cause as a call_result */
static int
result_of_cause(const char *cause)
{
	int	code;

	if (cause == NULL)
		return 28;
	if (strcmp(cause, "Silence") == 0)
		return 32;
	if (strcmp(cause, "NoRingback") == 0)
		return 37;
	if (strcmp(cause, "Normal") == 0)
		return 19;	/* Cleared */
	code = treat_result_code(cause);
	return code > 0 ? code : 28;
}

static void
send_request(const char *name, const char *dn, const char *conn,
    const char *dest, const char *reqid)
{
	json_t	*req;
	char	 id[48];

	if (reqid == NULL) {
		snprintf(id, sizeof(id), "obx-%llu", (unsigned long long)++seq);
		reqid = id;
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "request", name, "requestId",
	    reqid, "dn", dn, "connId", conn);
	if (dest != NULL)
		json_object_set_new(req, "destination", json_string(dest));
	voice_send(req, sent, NULL);
	json_decref(req);
}

/* sent - a request without a record at stake: a lost one is seen in its
 * call's outcome (the customer hangs up, the lease expires) */
static void
sent(int ok, void *arg)
{
	if (!ok)
		log_warnx("outbound: a request to the voice side was lost");
}
