/* SPDX-License-Identifier: Apache-2.0 */
/*
 * group - campaign groups and their states (docs/outbound.md, "Campaign
 * groups"): NotLoaded, Loaded, Running, Stopping, Unloading.
 *
 * A state change is written to ocs_group_state, with its group-state
 * report in ocs_outbox, in one transaction; only once it is committed is
 * it the group's state and told to the sessions that watch the group.  A
 * worker that starts reads the table and goes on where its predecessor
 * was: a Running group dials again, a group that was stopping or
 * unloading finishes doing so (its calls died with the old worker).  The
 * table is read again every few seconds, so that instances sharing a
 * database agree on what another instance's client asked.
 *
 * What it touches: ocs_group_state and ocs_outbox, on the worker's
 * PostgreSQL connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgc.h"
#include "schema.h"
#include "util.h"
#include "outbound_int.h"

#define POLL_MS		2000

static const char *const state_names[] = {
	[G_NOT_LOADED] = "NotLoaded",
	[G_LOADED] = "Loaded",
	[G_RUNNING] = "Running",
	[G_STOPPING] = "Stopping",
	[G_UNLOADING] = "Unloading",
};

/* A change being written. */
struct change {
	json_int_t	 dbid;
	struct group	 next;		/* what it will be */
	enum gstate	 prev;
	char		*reason;
	group_done_cb	*done;
	void		*arg;
};

static struct idmap	 groups;	/* dbid -> struct group (loaded) */
static uint64_t		 polled_ms;
static int		 polling;

static void	polled(struct pgc *, const PGresult *, void *);
static void	written(struct pgc *, const PGresult *, void *);
static void	adopt(const struct group *, enum gstate prev);
static void	free_group(uint64_t, void *, void *);
static enum gstate state_parse(const char *);

const char *
group_state_name(enum gstate s)
{
	return (unsigned)s <= G_UNLOADING ? state_names[s] : "NotLoaded";
}

static enum gstate
state_parse(const char *s)
{
	int	i;

	for (i = 0; i <= G_UNLOADING; i++)
		if (s != NULL && strcmp(s, state_names[i]) == 0)
			return (enum gstate)i;
	return G_NOT_LOADED;
}

struct group *
groups_get(json_int_t dbid)
{
	return idmap_get(&groups, (uint64_t)dbid);
}

struct each {
	void	(*f)(struct group *, void *);
	void	*arg;
};

static void
each_one(uint64_t k, void *v, void *arg)
{
	struct each	*e = arg;

	e->f(v, e->arg);
}

void
groups_each(void (*f)(struct group *, void *), void *arg)
{
	struct each	e = { f, arg };

	idmap_each(&groups, each_one, &e);
}

void
groups_cleanup(void)
{
	idmap_each(&groups, free_group, NULL);
	idmap_clear(&groups);
}

/* ---- what a group would be ---- */

/* group_describe - the figures of EventCampaignStatus and GET */
json_t *
group_describe(json_int_t dbid)
{
	const struct group	*g = groups_get(dbid);
	const struct cobj	*o = cache_get(dbid);
	json_t			*v, *mode;
	const struct figures	*f;

	v = json_pack("{s:I, s:s}", "campaignGroup", (json_int_t)dbid,
	    "state", group_state_name(g != NULL ? g->state : G_NOT_LOADED));
	if (g == NULL) {
		mode = o != NULL ? cobj_get(o, "dialMode") : NULL;
		json_object_set_new(v, "dialMode", mode != NULL ? mode :
		    json_string("Preview"));
		return v;
	}
	f = &g->fig;
	json_object_set_new(v, "dialMode", json_string(g->mode));
	json_object_set_new(v, "optimizeBy", json_string(g->optimize_by));
	json_object_set_new(v, "optimizeGoal",
	    json_integer(g->optimize_goal));
	json_object_set_new(v, "autoCompletion",
	    json_boolean(g->auto_completion));
	json_object_set_new(v, "callsInProgress",
	    json_integer(g->dialing + g->waiting + g->connected));
	json_object_set_new(v, "dialing", json_integer(g->dialing));
	json_object_set_new(v, "waiting", json_integer(g->waiting));
	json_object_set_new(v, "connected", json_integer(g->connected));
	json_object_set_new(v, "dialed", json_integer((json_int_t)
	    f->total_dialed));
	json_object_set_new(v, "answered", json_integer((json_int_t)
	    f->total_live));
	json_object_set_new(v, "abandoned", json_integer((json_int_t)
	    f->total_abandoned));
	json_object_set_new(v, "cut", json_integer((json_int_t)
	    f->total_cut));
	if (g->left >= 0)
		json_object_set_new(v, "recordsLeft", json_integer(g->left));
	json_object_set_new(v, "hitRatio", json_real(f->dialed > 0 ?
	    f->live / f->dialed : 0));
	json_object_set_new(v, "abandonRate", json_real(f->live > 0 ?
	    f->abandoned / f->live : 0));
	json_object_set_new(v, "busyFactor", json_real(f->avail_s > 0 ?
	    f->busy_s / f->avail_s : 0));
	json_object_set_new(v, "gain", json_real(g->k));
	return v;
}

/* ---- changes ---- */

/*
 * group_change - make next (its dbid, state and mode) the group's state:
 * written with its report, then adopted; done gets NULL, or an error
 * code and why (the state is unchanged).
 */
void
group_change(const struct group *next, const char *reason,
    group_done_cb *done, void *arg)
{
	struct change	*c;
	struct pgc_txn	*t;
	struct group	*cur = groups_get(next->dbid);
	char		 id[24], goal[16];
	const char	*p[6];
	json_t		*msg;
	char		*key;

	if (!ob.migrated) {
		done(NULL, "Unavailable", "the outbound worker's tables are not "
		    "ready yet", arg);
		return;
	}
	if (pgc_state(ob.pg) != PGC_UP || (t = pgc_begin(ob.pg)) == NULL) {
		done(NULL, "Unavailable", "PostgreSQL is unreachable", arg);
		return;
	}
	if (cur != NULL)
		cur->writing++;
	c = xcalloc(1, sizeof(*c));
	c->dbid = next->dbid;
	c->next = *next;
	c->prev = cur != NULL ? cur->state : G_NOT_LOADED;
	c->reason = xstrdup(reason ?: "");
	c->done = done;
	c->arg = arg;
	snprintf(id, sizeof(id), "%lld", (long long)next->dbid);
	snprintf(goal, sizeof(goal), "%d", next->optimize_goal);
	p[0] = id;
	p[1] = group_state_name(next->state);
	p[2] = next->mode;
	p[3] = next->optimize_by;
	p[4] = goal;
	p[5] = next->auto_completion ? "true" : "false";
	pgc_txn_query(t, "INSERT INTO ocs_group_state (group_dbid, state, "
	    "dial_mode, optimize_by, optimize_goal, auto_completion) "
	    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (group_dbid) DO "
	    "UPDATE SET state = $2, dial_mode = $3, optimize_by = $4, "
	    "optimize_goal = $5, auto_completion = $6, updated = now()",
	    6, p, NULL, NULL);
	msg = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}",
	    "type", "group-state", "tenant", ob.tenant,
	    "campaignGroup", (json_int_t)next->dbid,
	    "state", group_state_name(next->state),
	    "previous", group_state_name(c->prev),
	    "dialMode", next->mode, "reason", c->reason);
	key = xasprintf("group:%lld", (long long)next->dbid);
	outbox_put(t, key, msg);
	free(key);
	json_decref(msg);
	pgc_commit(t, written, c);
}

static void
written(struct pgc *pg, const PGresult *r, void *arg)
{
	struct change	*c = arg;
	struct group	*g;

	if ((g = groups_get(c->dbid)) != NULL && g->writing > 0)
		g->writing--;
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") != 0) {
		log_warnx("outbound: campaign group %lld: its state was not "
		    "written", (long long)c->dbid);
		c->done(NULL, "Unavailable", "the state could not be written "
		    "to PostgreSQL", c->arg);
	} else {
		outbox_kick();
		adopt(&c->next, c->prev);
		g = groups_get(c->dbid);
		c->done(g, NULL, NULL, c->arg);
	}
	free(c->reason);
	free(c);
}

/* adopt - next is the group's state now: keep the dialler's counts */
static void
adopt(const struct group *next, enum gstate prev)
{
	struct group	*g = groups_get(next->dbid);
	json_t		*ev;

	if (next->state == G_NOT_LOADED) {
		if (g != NULL) {
			dial_forget(g);
			if (g->m_calls != NULL) {	/* the series stay, at 0 */
				metric_set(g->m_calls, 0);
				metric_set(g->m_rate, 0);
			}
			idmap_del(&groups, (uint64_t)next->dbid);
			free(g);
		}
	} else {
		if (g == NULL) {
			g = xcalloc(1, sizeof(*g));
			g->dbid = next->dbid;
			g->k = 1.0;
			g->left = -1;
			idmap_put(&groups, (uint64_t)g->dbid, g);
		}
		g->state = next->state;
		snprintf(g->mode, sizeof(g->mode), "%s", next->mode);
		snprintf(g->optimize_by, sizeof(g->optimize_by), "%s",
		    next->optimize_by);
		g->optimize_goal = next->optimize_goal;
		g->auto_completion = next->auto_completion;
		if (prev == G_NOT_LOADED) {
			memset(&g->fig, 0, sizeof(g->fig));
			memset(&g->ctl, 0, sizeof(g->ctl));
			memset(&g->base, 0, sizeof(g->base));
		}
	}
	if (prev == next->state)
		return;
	log_info("outbound: campaign group %lld is %s (was %s)",
	    (long long)next->dbid, group_state_name(next->state),
	    group_state_name(prev));
	ev = group_describe(next->dbid);
	json_object_set_new(ev, "event", json_string("EventCampaignStatus"));
	json_object_set_new(ev, "previous",
	    json_string(group_state_name(prev)));
	control_broadcast(next->dbid, ev);
	json_decref(ev);
}

/* ---- the dialler's news ---- */

static void
noop_done(struct group *g, const char *err, const char *why, void *arg)
{
	json_t		*ev;
	json_int_t	 dbid = (json_int_t)(intptr_t)arg;

	if (err != NULL || g != NULL)
		return;
	ev = json_pack("{s:s, s:I}", "event", "EventCampaignUnloaded",
	    "campaignGroup", dbid);
	control_broadcast(dbid, ev);
	json_decref(ev);
}

/* groups_idle - the group has no call in progress left */
void
groups_idle(struct group *g)
{
	struct group	next = *g;

	if (g->writing)
		return;
	if (g->state == G_STOPPING)
		next.state = G_LOADED;
	else if (g->state == G_UNLOADING)
		next.state = G_NOT_LOADED;
	else
		return;
	group_change(&next, "calls finished", noop_done,
	    (void *)(intptr_t)g->dbid);
}

/* groups_exhausted - auto-completion: no record left to dial */
void
groups_exhausted(struct group *g)
{
	struct group	next = *g;

	if (!g->auto_completion || g->state != G_RUNNING || g->writing)
		return;
	next.state = g->dialing + g->waiting + g->connected > 0 ?
	    G_UNLOADING : G_NOT_LOADED;
	group_change(&next, "no dialable record left", noop_done,
	    (void *)(intptr_t)g->dbid);
}

/* ---- the table: at start, and every few seconds ---- */

void
groups_restore(void)
{
	polled_ms = 0;
	groups_tick();
}

void
groups_config(void)
{
	/* Nothing cached per group from the configuration: read at use. */
}

void
groups_tick(void)
{
	uint64_t	now = now_wall_us() / 1000;

	if (polling || !ob.migrated || now - polled_ms < POLL_MS)
		return;
	polled_ms = now;
	if (pgc_query(ob.pg, "SELECT group_dbid, state, dial_mode, "
	    "optimize_by, optimize_goal, auto_completion FROM ocs_group_state",
	    0, NULL, polled, NULL) == 0)
		polling = 1;
}

static void
polled(struct pgc *pg, const PGresult *r, void *arg)
{
	struct group	 next, *g;
	int		 i, n;
	static int	 first = 1;

	polling = 0;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK)
		return;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		memset(&next, 0, sizeof(next));
		next.dbid = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		next.state = state_parse(PQgetvalue(r, i, 1));
		snprintf(next.mode, sizeof(next.mode), "%s",
		    PQgetvalue(r, i, 2));
		snprintf(next.optimize_by, sizeof(next.optimize_by), "%s",
		    PQgetvalue(r, i, 3));
		next.optimize_goal = atoi(PQgetvalue(r, i, 4));
		next.auto_completion = PQgetvalue(r, i, 5)[0] == 't';
		g = groups_get(next.dbid);
		if (g != NULL && g->writing)
			continue;
		/* A predecessor's calls are gone with it. */
		if (first && g == NULL && (next.state == G_STOPPING ||
		    next.state == G_UNLOADING)) {
			adopt(&next, G_NOT_LOADED);
			if ((g = groups_get(next.dbid)) != NULL)
				groups_idle(g);
			continue;
		}
		/* Ours stop when their calls end; another's told us. */
		if (g != NULL && g->state == next.state &&
		    strcmp(g->mode, next.mode) == 0 &&
		    g->optimize_goal == next.optimize_goal &&
		    strcmp(g->optimize_by, next.optimize_by) == 0)
			continue;
		if (g == NULL && next.state == G_NOT_LOADED)
			continue;
		adopt(&next, g != NULL ? g->state : G_NOT_LOADED);
	}
	first = 0;
	ob.restored = 1;
}

static void
free_group(uint64_t k, void *v, void *arg)
{
	free(v);
}
