/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats worker - real-time statistics on workers.stats.listen, in the
 * session protocol (docs/stats.md).  This file is the worker: its start,
 * reload and stop, the configuration follower's callbacks, and the tick;
 * stats_int.h maps the files that do the work.
 *
 * The voice events of every region (voicefeed.c) and the routing worker's
 * events (routingfeed.c: virtual queues) feed the model (model.c: agents,
 * calls, queues), which tells what starts, ends and happens.  A
 * statistic is an object, a type, a profile and an accumulator (stat.c,
 * statistic.c); clients that open the same one share it (session.c).  An
 * action reaches the statistics of every object it counts for (index.c);
 * statistics that changed notify their subscribers once the events at
 * hand are applied (subscribers.c).
 *
 * What it may touch: the voice streams and the routing worker's state and
 * events (read), its own keys in Redis
 * (tenantd:{<tenant>}:stats:*: the model's snapshot with the stream
 * positions it reflects and the Growing totals, save.c; every agent's
 * state, agentstates.c), tokens, the configuration cache, the metrics
 * registry.  Nothing in PostgreSQL but reading the configuration.  The
 * frame every session worker shares (common/svc.c) follows the
 * configuration, answers RequestOpen, keeps each session's rights true,
 * and reloads, drains and stops.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"
#include "sess.h"
#include "stats_worker.h"
#include "svc.h"
#include "voice.h"
#include "stats_int.h"

#define TICK_MS			1000

static int	 stats_start(struct event_base *, const struct conf *, int);
static int	 stats_reload_check(const struct conf *, char *, size_t);
static void	 stats_stop(void);
static int	 stats_drained(void);
static void	 stats_cleanup(void);
static void	 on_change(const struct cfg_change *);
static void	 on_synced(json_int_t, int);
static void	 on_tick(evutil_socket_t, short, void *);
static void	 register_metrics(void);
static void	 tz_follow(void);

const struct worker_ops stats_worker_ops = {
	.start = stats_start,
	.reload_check = stats_reload_check,
	.reload_apply = svc_reload,
	.listen = svc_listen,
	.stop = svc_stop,
	.cleanup = svc_cleanup,
};

/* The session frame (common/svc.c), with the stats worker's parts. */
static const struct svc_ops ops = {
	.open = session_open,
	.request = session_request,
	.closed = session_closed,
	.rights_changed = session_rights_changed,
	.change = on_change,
	.synced = on_synced,
	.stop = stats_stop,
	.drained = stats_drained,
	.cleanup = stats_cleanup,
	.stop_message = "tenantd is stopping; reconnect and open the "
	    "statistics again",
};

struct stats_env	 stats_env;

static struct event		*ev_tick;
static struct metric		*m_open, *m_lag;

/* ---- start, reload, stop ---- */

static int
stats_start(struct event_base *b, const struct conf *c, int fd)
{
	struct timeval	tv = util_tv(TICK_MS / 1000.0);

	stats_env.base = b;
	register_metrics();
	stats_env.model = model_new(&statistic_model_cbs, NULL);
	stats_env.kv = rds_new_conf(stats_env.base, &c->redis,
	    agents_kv_state, NULL);
	rds_set_name(stats_env.kv, "redis (statistics state)");
	if (svc_start(stats_env.base, c, WORKER_STATS, fd, &ops) == -1)
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

/* stats_stop - keep the state for the next worker (the frame then closes
 * the sessions) */
static void
stats_stop(void)
{
	save_stop();
}

/* stats_drained - exit once the last save is handed to Redis */
static int
stats_drained(void)
{
	return rds_state(stats_env.kv) != RDS_CONNECTING;
}

/* stats_cleanup - after the sessions are closed (common/svc.c) */
static void
stats_cleanup(void)
{
	voicefeed_cleanup();
	routingfeed_cleanup();
	rds_free(stats_env.kv);
	model_free(stats_env.model);
	statistic_cleanup();
	value_cleanup();
	index_clear();
	save_cleanup();
	agents_cleanup();
	reconcile_cleanup();
	subs_cleanup();
	if (ev_tick != NULL)
		event_free(ev_tick);
	ev_tick = NULL;
}

/* ---- the configuration ---- */

/* on_change - applied to the cache (NULL: a snapshot begins) */
static void
on_change(const struct cfg_change *ch)
{
	index_invalidate();
}

/* on_synced - caught up; the first time, bring back the model and the
 * totals of the last worker */
static void
on_synced(json_int_t rev, int first)
{
	tz_follow();
	if (index_is_stale())	/* objects may have gone, or come back */
		subs_validity();
	if (first)
		save_load();
}

/* ---- the tick: resets, snapshots, cuts, metrics ---- */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	us = now_wall_us();

	subs_resets((double)us / 1e6);
	agents_write();		/* Redis back after a failed write */
	reconcile_tick();
	routingfeed_tick();
	save_tick(us);		/* after the cut: the snapshot holds it */
	stats_env.lag *= 0.5;		/* no events for a while: no lag */
	metric_set(m_lag, stats_env.lag);
	metric_set(m_open, (double)stats_env.nsubs);
}

/* ---- helpers ---- */

static void
register_metrics(void)
{
	m_open = metrics_gauge("tenantd_stats_open_statistics",
	    "Statistics open (one per client and statisticId).", NULL);
	stats_env.m_notified = metrics_counter(
	    "tenantd_stats_notifications_total", "EventInfo sent.", NULL);
	stats_env.m_events = metrics_counter("tenantd_stats_voice_events_total",
	    "Voice events applied to the model.", NULL);
	stats_env.m_routing_events = metrics_counter(
	    "tenantd_stats_routing_events_total",
	    "Routing events (virtual queues) applied to the model.", NULL);
	stats_env.m_refused = metrics_counter("tenantd_stats_refused_total",
	    "RequestOpenStatistic refused for the worker's limits or lag.",
	    NULL);
	m_lag = metrics_gauge("tenantd_stats_lag_seconds",
	    "How old the last voice event was when it was applied.", NULL);
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
