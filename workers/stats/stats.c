/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats worker - real-time statistics on workers.stats.listen, in the
 * session protocol (docs/stats.md).  This file is the worker: its start,
 * reload and stop, the configuration follower's callbacks, and the tick;
 * stats_int.h maps the files that do the work.
 *
 * The voice events of every region (voicefeed.c) feed the model (model.c:
 * agents, calls, queues), which tells what starts, ends and happens.  A
 * statistic is an object, a type, a profile and an accumulator (stat.c,
 * statistic.c); clients that open the same one share it (session.c).  An
 * action reaches the statistics of every object it counts for (index.c);
 * statistics that changed notify their subscribers once the events at
 * hand are applied (subscribers.c).
 *
 * What it may touch: the voice streams (read), its own keys in Redis
 * (tenantd:{<tenant>}:stats:*: the model's snapshot with the stream
 * positions it reflects and the Growing totals, save.c; every agent's
 * state, agentstates.c), tokens, the configuration cache, the metrics
 * registry.  Nothing in PostgreSQL but reading the configuration.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth.h"
#include "cache.h"
#include "cfgfollow.h"
#include "log.h"
#include "metrics.h"
#include "pgc.h"
#include "sess.h"
#include "stats_worker.h"
#include "voice.h"
#include "stats_int.h"

#define TICK_MS			1000

static int	 stats_start(struct event_base *, const struct conf *, int);
static int	 stats_reload_check(const struct conf *, char *, size_t);
static void	 stats_reload_apply(const struct conf *, const struct conf *);
static void	 stats_listen(int);
static void	 stats_stop(void);
static void	 stats_cleanup(void);
static void	 on_reset(void *);
static void	 on_change(const struct cfg_change *, void *);
static void	 on_synced(json_int_t, void *);
static void	 on_tick(evutil_socket_t, short, void *);
static void	 on_drain(evutil_socket_t, short, void *);
static void	 register_metrics(void);
static void	 tz_follow(void);

const struct worker_ops stats_worker_ops = {
	.start = stats_start,
	.reload_check = stats_reload_check,
	.reload_apply = stats_reload_apply,
	.listen = stats_listen,
	.stop = stats_stop,
	.cleanup = stats_cleanup,
};

struct stats_env	 stats_env;

static struct sess_server	*srv;
static struct pgc		*pg;
static struct cfgfollow		*follow;
static struct auth		*auth;
static struct event		*ev_tick, *ev_drain;
static int			 ready;
static uint64_t			 slow_seen;	/* sess slow_cut counted */
static struct metric		*m_open, *m_lag, *m_clients, *m_slow;

/* ---- start, reload, stop ---- */

static int
stats_start(struct event_base *b, const struct conf *c, int fd)
{
	struct sess_limits	 l = sess_limits_of(&c->workers[WORKER_STATS]);
	struct cfgfollow_cbs	 fc = { on_reset, on_change, on_synced };
	struct timeval		 tv = { TICK_MS / 1000, 0 };

	stats_env.base = b;
	register_metrics();
	stats_env.model = model_new(&statistic_model_cbs, NULL);
	cache_init(CFG_NTYPES);
	if ((pg = pgc_new(stats_env.base, c->pg_conninfo, c->pg_password, NULL,
	    NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	follow = cfgfollow_new(stats_env.base, pg, c->redis.host, c->redis.port,
	    c->redis.password, c->tenant_id, &fc, NULL);
	auth = auth_new(stats_env.base, c->redis.host, c->redis.port,
	    c->redis.password, c->tenant_id);
	auth_set_admin_token(auth, c->admin_token);
	stats_env.rights = rights_new(stats_env.base, auth, c->redis.host,
	    c->redis.port, c->redis.password, c->tenant_id,
	    &session_rights_cbs, NULL);
	stats_env.kv = rds_new(stats_env.base, c->redis.host, c->redis.port,
	    c->redis.password, agents_kv_state, NULL);
	rds_set_name(stats_env.kv, "redis (statistics state)");
	if ((srv = sess_server_new(stats_env.base, fd, &l, &session_handlers,
	    NULL)) == NULL)
		return -1;
	subs_init();
	save_init(c);
	agents_init(c);
	ev_tick = event_new(stats_env.base, -1, EV_PERSIST, on_tick, NULL);
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
	struct sess_limits	l;

	l = sess_limits_of(&next->workers[WORKER_STATS]);

	sess_server_set_limits(srv, &l);
	auth_set_admin_token(auth, next->admin_token);
	if (strcmp(next->admin_token, prev->admin_token) != 0)
		rights_recheck_all(stats_env.rights);
}

static void
stats_listen(int fd)
{
	sess_server_set_listener(srv, fd);
}

/* stats_stop - keep the state for the next worker, then close sessions */
static void
stats_stop(void)
{
	struct timeval	tv = { 0, 50000 };

	save_stop();
	sess_server_pause(srv);
	sess_server_close_all(srv, "Shutdown", "tenantd is stopping; "
	    "reconnect and open the statistics again");
	ev_drain = event_new(stats_env.base, -1, EV_PERSIST, on_drain, NULL);
	event_add(ev_drain, &tv);
}

static void
stats_cleanup(void)
{
	if (srv != NULL)
		sess_server_free(srv);
	srv = NULL;
	voicefeed_cleanup();
	rights_free(stats_env.rights);
	auth_free(auth);
	rds_free(stats_env.kv);
	pgc_free(pg);
	cfgfollow_free(follow);
	model_free(stats_env.model);
	statistic_cleanup();
	value_cleanup();
	index_clear();
	cache_free();
	save_cleanup();
	agents_cleanup();
	reconcile_cleanup();
	subs_cleanup();
	if (ev_tick != NULL)
		event_free(ev_tick);
	if (ev_drain != NULL)
		event_free(ev_drain);
	ev_tick = ev_drain = NULL;
}

/* ---- the configuration ---- */

static void
on_reset(void *arg)
{
	cache_reset();
	rights_change(stats_env.rights, NULL);
	index_invalidate();
}

static void
on_change(const struct cfg_change *ch, void *arg)
{
	if (cache_apply(ch) == 0)
		index_invalidate();
	rights_change(stats_env.rights, ch);
}

/* on_synced - the configuration is loaded (or caught up): serve, then
 * bring back the model and totals of the last worker */
static void
on_synced(json_int_t rev, void *arg)
{
	tz_follow();
	if (index_is_stale())	/* objects may have gone, or come back */
		subs_validity();
	if (ready)
		return;
	ready = 1;
	rights_synced(stats_env.rights);
	log_info("configuration loaded at revision %lld; serving",
	    (long long)rev);
	worker_ready();
	save_load();
}

/* ---- the tick: resets, snapshots, cuts, metrics ---- */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	const struct sess_stats	*st = sess_server_stats(srv);
	uint64_t		 us = now_wall_us();

	subs_resets((double)us / 1e6);
	agents_write();		/* Redis back after a failed write */
	reconcile_tick();
	save_tick(us);		/* after the cut: the snapshot holds it */
	stats_env.lag *= 0.5;		/* no events for a while: no lag */
	metric_set(m_lag, stats_env.lag);
	metric_set(m_open, (double)stats_env.nsubs);
	metric_set(m_clients, (double)st->current);
	/* Added, not set: the registry outlives the worker, and a counter
	 * must not go back when a new one starts from zero. */
	metric_add(m_slow, (double)(st->slow_cut - slow_seen));
	slow_seen = st->slow_cut;
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	if (sess_server_stats(srv)->current == 0 &&
	    rds_state(stats_env.kv) != RDS_CONNECTING)
		worker_exit(0);
}

/* ---- helpers ---- */

static void
register_metrics(void)
{
	m_clients = metrics_gauge("tenant_stats_clients",
	    "Sessions open on the statistics port.", NULL);
	m_open = metrics_gauge("tenantd_stats_open_statistics",
	    "Statistics open (one per client and statisticId).", NULL);
	stats_env.m_notified = metrics_counter(
	    "tenantd_stats_notifications_total", "EventInfo sent.", NULL);
	stats_env.m_events = metrics_counter("tenantd_stats_voice_events_total",
	    "Voice events applied to the model.", NULL);
	stats_env.m_refused = metrics_counter("tenantd_stats_refused_total",
	    "RequestOpenStatistic refused for the worker's limits or lag.",
	    NULL);
	m_lag = metrics_gauge("tenantd_stats_lag_seconds",
	    "How old the last voice event was when it was applied.", NULL);
	m_slow = metrics_counter("tenantd_stats_slow_clients_total",
	    "Clients cut because they did not read their notifications.",
	    NULL);
}

/* tz_follow - the tenant's time zone is the process's, for the resets */
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
