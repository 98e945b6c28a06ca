/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routing worker - the tenant's router on workers.routing.listen
 * (docs/routing.md): interactions wait in virtual queues until an agent
 * who fits their target is free; one agent is reserved for one
 * interaction, atomically across instances; applications queue, read,
 * change and cancel interactions and follow the routing events over HTTP;
 * calls at routing points configured for tenantd are queued and routed
 * through the voice side.  This file is the worker: its start, reload
 * and stop, the configuration follower's callbacks and the tick;
 * routing_int.h maps the files that do the work.
 *
 * What it may touch: in Redis, its shared state (tenantd:{<t>}:routing:*,
 * store.c) and the agents' reservation keys (tenantd:{<t>}:agent:*,
 * shared with the outbound worker), the voice streams (events read,
 * requests written, the state hash read, through common/voice.c), tokens
 * (through svc); in PostgreSQL, its table rt_interaction (journal.c:
 * what waits, for a Redis that loses its data); the metrics registry.
 * The frame every session worker shares (common/svc.c) reads the
 * configuration, checks the HTTP requests' tokens, and reloads, drains
 * and stops.  The port speaks HTTP only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "svc.h"
#include "util.h"
#include "voice.h"
#include "worker.h"
#include "routing_int.h"
#include "routing_worker.h"

#define TICK_MS		200
#define RECHECK_TICKS	25	/* feeds' tokens: every 5 s */

static int	 rt_start(struct event_base *, const struct conf *, int);
static int	 rt_reload_check(const struct conf *, char *, size_t);
static void	 rt_reload(const struct conf *, const struct conf *);
static void	 rt_stop(void);
static void	 rt_cleanup(void);
static int	 rt_drained(void);
static enum sess_open on_open(struct sess *, json_t *, const char **);
static void	 on_change(const struct cfg_change *);
static void	 on_synced(json_int_t, int);
static void	 on_voice(struct voice_event *, void *);
static void	 on_link(int, void *);
static void	 on_gap(int, const char *, void *);
static void	 on_tick(evutil_socket_t, short, void *);

const struct worker_ops routing_worker_ops = {
	.start = rt_start,
	.reload_check = rt_reload_check,
	.reload_apply = rt_reload,
	.listen = svc_listen,
	.stop = svc_stop,
	.cleanup = svc_cleanup,
};

static const struct svc_ops ops = {
	.open = on_open,
	.change = on_change,
	.synced = on_synced,
	.stop = rt_stop,
	.cleanup = rt_cleanup,
	.drained = rt_drained,
	.http_head = rthttp_head,
	.http = rthttp_request,
	.stop_message = "tenantd is stopping",
};

struct rt_env		 rt;
struct rt_metrics	 rt_m;
static struct event	*ev_tick;
static int		 config_dirty;

static void
register_metrics(void)
{
	static const double	bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1,
				    0.5, 1, 5, 10, 30, 60, 300 };

	rt_m.routed = metrics_counter("tenantd_routing_routed_total",
	    "Interactions accepted by the agent they were reserved for.",
	    NULL);
	rt_m.abandoned = metrics_counter("tenantd_routing_abandoned_total",
	    "Calls whose caller hung up while they waited.", NULL);
	rt_m.timed_out = metrics_counter("tenantd_routing_timed_out_total",
	    "Interactions that waited past their timeout.", NULL);
	rt_m.cancelled = metrics_counter("tenantd_routing_cancelled_total",
	    "Interactions cancelled by their application.", NULL);
	rt_m.rejected = metrics_counter(
	    "tenantd_routing_reservations_rejected_total",
	    "Reservations the agent rejected.", NULL);
	rt_m.expired = metrics_counter(
	    "tenantd_routing_reservations_expired_total",
	    "Reservations that ran out before the agent accepted.", NULL);
	rt_m.swept = metrics_counter("tenantd_routing_journal_swept_total",
	    "Rows of rt_interaction found behind Redis (the interaction had "
	    "ended, or was never queued) and taken out.", NULL);
	rt_m.time_to_route = metrics_histogram(
	    "tenantd_routing_time_to_route_seconds",
	    "From queued to an agent reserved.", NULL, bounds,
	    sizeof(bounds) / sizeof(bounds[0]));
}

/* limits - the section's settings that a reload may change */
static void
limits(const struct conf *c)
{
	const struct conf_worker	*w = &c->workers[WORKER_ROUTING];

	rt.reservation_ttl = w->reservation_ttl > 0 ? w->reservation_ttl : 30;
	rt.user_data_max = w->user_data_max > 0 ? w->user_data_max : 65536;
}

static int
rt_start(struct event_base *b, const struct conf *c, int fd)
{
	struct voice_cbs		 cbs = { on_voice, on_link, NULL };
	struct timeval			 tv = util_tv(TICK_MS / 1000.0);
	char				 host[128];

	rt.base = b;
	rt.tenant = xstrdup(c->tenant_id);
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	rt.owner = xasprintf("%s/%u", host, (unsigned)getpid());
	limits(c);
	register_metrics();
	journal_start(b, c);
	store_start(b, c);
	pool_start();
	queue_start();
	feed_start();
	rp_start(c);
	statlink_start();
	voice_on_gap(on_gap);
	voice_start(b, c, &cbs, NULL);
	if (svc_start(b, c, WORKER_ROUTING, fd, &ops) == -1)
		return -1;
	ev_tick = event_new(b, -1, EV_PERSIST, on_tick, NULL);
	event_add(ev_tick, &tv);
	return 0;
}

static int
rt_reload_check(const struct conf *next, char *why, size_t len)
{
	return voice_reload_check(worker_conf(), next, "routing", why, len);
}

static void
rt_reload(const struct conf *next, const struct conf *prev)
{
	limits(next);
	svc_reload(next, prev);
}

static void
rt_stop(void)
{
	rt.stopping = 1;
	feed_cleanup();
}

/* rt_drained - exit once the journal has written what it holds */
static int
rt_drained(void)
{
	return journal_drained();
}

static void
rt_cleanup(void)
{
	rt.stopping = 1;
	voice_stop();
	rthttp_cleanup();
	feed_cleanup();
	rp_cleanup();
	statlink_cleanup();
	queue_cleanup();
	pool_cleanup();
	store_cleanup();
	journal_cleanup();
	if (ev_tick != NULL)
		event_free(ev_tick);
	ev_tick = NULL;
	free(rt.tenant);
	free(rt.owner);
	rt.tenant = rt.owner = NULL;
}

/* on_open - the port speaks HTTP only */
static enum sess_open
on_open(struct sess *s, json_t *req, const char **why)
{
	*why = "the routing port speaks HTTP (docs/routing.md)";
	return SESS_OPEN_BAD_REQUEST;
}

/* ---- the configuration ---- */

static void
on_change(const struct cfg_change *ch)
{
	config_dirty = 1;
}

static void
on_synced(json_int_t rev, int first)
{
	rt.loaded = 1;
	if (first || config_dirty) {
		config_dirty = 0;
		pool_invalidate();
		queue_config();
		rp_config();
	}
}

/* ---- the voice side ---- */

static void
on_voice(struct voice_event *v, void *arg)
{
	pool_voice(v);
	rp_voice(v);
}

static void
on_link(int up, void *arg)
{
	pool_link(up);
}

static void
on_gap(int region, const char *why, void *arg)
{
	if (region == 0)
		pool_gap();
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	static unsigned	n;

	if (!rt.loaded)
		return;
	pool_tick();
	queue_tick();
	if (++n % RECHECK_TICKS == 0)
		feed_recheck();
}
