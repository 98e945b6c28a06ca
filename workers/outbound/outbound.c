/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound worker - the tenant's Outbound Contact Server on
 * workers.outbound.listen (docs/outbound.md): calling lists in
 * PostgreSQL, campaign groups controlled in the session protocol and over
 * HTTP on the same port, a dialler that places calls through the voice
 * side, and every attempt reported to Kafka.  This file is the worker:
 * its start, reload and stop, its tables' migrations, the configuration
 * follower's callbacks and the tick; outbound_int.h maps the files that
 * do the work.
 *
 * What it may touch: in PostgreSQL, its own tables (ocs_*) and the
 * calling lists' tables; in Redis, the voice streams (events read,
 * requests written, the voice side's state hash read, through
 * common/voice.c), its agent reservations (tenantd:{<t>}:agent:*, shared with the
 * routing worker, so that no agent is given two things),
 * tokens (through svc); Kafka, through outbox.c; the metrics registry.  The frame every session worker shares
 * (common/svc.c) follows the configuration, answers RequestOpen and the
 * HTTP requests' tokens, keeps each session's rights true, and reloads,
 * drains and stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "outbound_int.h"
#include "outbound_worker.h"
#include "outbox.h"
#include "pgc.h"
#include "rds.h"
#include "svc.h"
#include "util.h"
#include "voice.h"
#include "worker.h"

#define TICK_MS			200
#define MIGRATE_RETRY_S		2

static int	 ob_start(struct event_base *, const struct conf *, int);
static int	 ob_reload_check(const struct conf *, char *, size_t);
static void	 ob_stop(void);
static int	 ob_drained(void);
static void	 ob_cleanup(void);
static enum sess_open on_open(struct sess *, json_t *, const char **);
static void	 on_change(const struct cfg_change *);
static void	 on_synced(json_int_t, int);
static void	 on_tick(evutil_socket_t, short, void *);
static void	 migrate(evutil_socket_t, short, void *);
static void	 migrated(int, int, void *);

const struct worker_ops outbound_worker_ops = {
	.start = ob_start,
	.reload_check = ob_reload_check,
	.reload_apply = svc_reload,
	.listen = svc_listen,
	.stop = svc_stop,
	.cleanup = svc_cleanup,
};

/* The session frame (common/svc.c), with the outbound worker's parts. */
static const struct svc_ops ops = {
	.open = on_open,
	.request = control_request,
	.closed = control_closed,
	.change = on_change,
	.synced = on_synced,
	.stop = ob_stop,
	.drained = ob_drained,
	.cleanup = ob_cleanup,
	.http_head = obhttp_head,
	.http = obhttp_request,
	.stop_message = "tenantd is stopping; reconnect: the campaign groups "
	    "go on",
};

/*
 * The worker's own tables; the lists' tables and ocs_dnc belong to
 * lists.c (owner "outbound_lists").
 */
static const struct migration migrations[] = {
	{ 1,
	  "CREATE TABLE ocs_group_state ("
	  " group_dbid bigint PRIMARY KEY,"
	  " state text NOT NULL,"
	  " dial_mode text,"
	  " optimize_by text,"
	  " optimize_goal integer,"
	  " auto_completion boolean NOT NULL DEFAULT false,"
	  " updated timestamptz NOT NULL DEFAULT now());"
	  "CREATE TABLE ocs_outbox ("
	  " seq bigserial PRIMARY KEY,"
	  " id uuid NOT NULL,"
	  " key text NOT NULL,"
	  " value text NOT NULL,"
	  " created timestamptz NOT NULL DEFAULT now());" },
	{ 2, outbox_migration_2 },
};

struct ob_env		 ob;
static struct event	*ev_tick, *ev_migrate;

/* ---- start, reload, stop ---- */

static int
ob_start(struct event_base *b, const struct conf *c, int fd)
{
	struct timeval	tv = util_tv(TICK_MS / 1000.0);
	char		host[128];

	ob.base = b;
	ob.tenant = xstrdup(c->tenant_id);
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	ob.owner = xasprintf("%s/%u/%llx", host, (unsigned)getpid(),
	    (unsigned long long)now_wall_us());
	if ((ob.pg = pgc_new(b, c->pg_conninfo, c->pg_password, NULL,
	    NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	ob.kv = rds_new_conf(b, &c->redis, NULL, NULL);
	rds_set_name(ob.kv, "redis (agent reservations)");
	if (outbox_start(b, c) == -1)
		return -1;
	roster_start(c);
	dial_start(c);
	if (svc_start(b, c, WORKER_OUTBOUND, fd, &ops) == -1)
		return -1;
	ev_migrate = evtimer_new(b, migrate, NULL);
	migrate(-1, 0, NULL);
	ev_tick = event_new(b, -1, EV_PERSIST, on_tick, NULL);
	event_add(ev_tick, &tv);
	return 0;
}

const struct conf_worker *
ob_conf(void)
{
	return &worker_conf()->workers[WORKER_OUTBOUND];
}

static int
ob_reload_check(const struct conf *next, char *why, size_t len)
{
	return voice_reload_check(worker_conf(), next, "outbound", why, len);
}

/* ob_stop - place no more calls; the groups stay as they are for the
 * next worker (the frame then closes the sessions) */
static void
ob_stop(void)
{
	ob.stopping = 1;
	dial_stop();
	outbox_stop();
}

/* ob_drained - exit once what is being written has been written */
static int
ob_drained(void)
{
	return ((pgc_queued(ob.pg) == 0 && !dial_givebacks_pending()) ||
	    pgc_state(ob.pg) != PGC_UP) && outbox_drained();
}

static void
ob_cleanup(void)
{
	ob.stopping = 1;
	dial_cleanup();
	groups_cleanup();
	roster_cleanup();
	lists_cleanup();
	outbox_cleanup();
	pgc_free(ob.pg);
	ob.pg = NULL;
	rds_free(ob.kv);
	ob.kv = NULL;
	if (ev_tick != NULL)
		event_free(ev_tick);
	if (ev_migrate != NULL)
		event_free(ev_migrate);
	ev_tick = ev_migrate = NULL;
	free(ob.owner);
	free(ob.tenant);
	ob.owner = ob.tenant = NULL;
}

/* ---- the tables ---- */

static void
migrate(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { MIGRATE_RETRY_S, 0 };

	if (migrate_run(ob.pg, "outbound", migrations,
	    (int)(sizeof(migrations) / sizeof(migrations[0])), migrated,
	    NULL) == -1)
		evtimer_add(ev_migrate, &tv);
}

static void
migrated(int ok, int version, void *arg)
{
	struct timeval	tv = { MIGRATE_RETRY_S, 0 };

	if (!ok) {
		evtimer_add(ev_migrate, &tv);
		return;
	}
	ob.migrated = 1;
	if (ob.loaded)
		groups_restore();
}

/* ---- sessions ---- */

/*
 * on_open - served once the worker's tables are there and the groups'
 * states read from them: a desktop that opened before would be told its
 * running group is NotLoaded
 */
static enum sess_open
on_open(struct sess *s, json_t *req, const char **why)
{
	if (ob.migrated && ob.restored)
		return SESS_OPEN_ACCEPT;
	*why = ob.migrated ? "the outbound worker is reading the campaign "
	    "groups' states" : "the outbound worker's tables are not ready yet";
	return SESS_OPEN_UNAVAILABLE;
}

/* ---- the configuration ---- */

static void
on_change(const struct cfg_change *ch)
{
	roster_invalidate();
}

static void
on_synced(json_int_t rev, int first)
{
	ob.loaded = 1;
	lists_sync();
	groups_config();
	if (first && ob.migrated)
		groups_restore();
}

/* ---- the tick ---- */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (!ob.loaded || !ob.migrated)
		return;
	roster_tick();
	dial_tick();
	groups_tick();
}
