/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config worker - the tenant's configuration on workers.config.listen,
 * HTTP/1.1 JSON (docs/config-api.md):
 *
 *   GET    /v1/{collection}            list, with filters, limit, after
 *   GET    /v1/{collection}/{dbid}     one object; ETag is its version
 *   POST   /v1/{collection}            create: 201 and Location
 *   PUT    /v1/{collection}/{dbid}     replace
 *   PATCH  /v1/{collection}/{dbid}     JSON merge patch
 *   DELETE /v1/{collection}/{dbid}     204; 409 when referenced, unless
 *                                      ?cascade=true
 *   GET    /v1/changes?since=R[&wait=S]  the change log after R
 *   POST   /v1/import, GET /v1/export, GET /v1/whoami, POST /v1/auth/token
 *   POST   /v1/auth/refresh, POST /v1/auth/logout,
 *   DELETE /v1/auth/tokens/{id}   (tokenlife.c)
 *
 * PostgreSQL is the truth (store.c).  Reads are served from the cache
 * (cache.c), which only the change follower (common/cfgfollow.c) feeds, in
 * revision order, exactly as on every other instance.  A write commits,
 * announces its revision on Redis, and answers once the cache has caught
 * up with it, so a client always reads its own writes.
 *
 * This file holds the worker's start, reload and stop, the follower's
 * callbacks, and a request's way in: admitted, authenticated (token.c),
 * routed to read.c, write.c or changes.c.  config_int.h lists the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "access.h"
#include "cache.h"
#include "cfgfollow.h"
#include "config_int.h"
#include "config_worker.h"
#include "import.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "offload.h"
#include "pgc.h"
#include "rds.h"
#include "store.h"
#include "throttle.h"
#include "util.h"

#define PRUNE_INTERVAL_S	60
#define RECHECK_INTERVAL_S	5	/* change streams' tokens */
#define MIGRATE_RETRY_S		1
#define IDLE_TIMEOUT_S		120.0
#define TOKEN_BODY_MAX		8192
#define STATUSES_MAX		24

static const char *const route_names[R_MAX] = { "other", "list", "get",
    "create", "replace", "patch", "delete", "changes" };

/* One counter per route and status, registered on first use. */
struct route_count {
	int		 status;
	struct metric	*m;
};

static int	 config_start(struct event_base *, const struct conf *, int);
static int	 config_reload_check(const struct conf *, char *, size_t);
static void	 config_reload_apply(const struct conf *, const struct conf *);
static void	 config_listen(int);
static void	 config_stop(void);
static void	 config_cleanup(void);

static void	 handle(struct http_conn *, const struct http_request *,
		    void *);
static void	 head(struct http_conn *, const struct http_request *,
		    void *);
static int	 admit(struct cfgw *, struct http_conn *,
		    const struct http_request *);
static void	 dispatch(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);
static void	 route(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct grants *);
static void	 head_authed(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);
static int	 may_import(const struct principal *);
static struct http_limits limits_of(const struct conf *);
static void	 register_metrics(void);
static size_t	 body_limit(const struct http_request *, void *);
static void	 observe(int, double, int, void *);
static void	 on_drain(evutil_socket_t, short, void *);
static void	 on_reset(void *);
static void	 on_change(const struct cfg_change *, void *);
static void	 on_synced(json_int_t, void *);
static void	 migrate(evutil_socket_t, short, void *);
static void	 migrated_cb(int, int, void *);
static void	 on_prune(evutil_socket_t, short, void *);
static void	 on_recheck(evutil_socket_t, short, void *);

const struct worker_ops config_worker_ops = {
	config_start,
	config_reload_check,
	config_reload_apply,
	config_listen,
	config_stop,
	config_cleanup,
};

static struct cfgw		 cw = {
	.parked = TAILQ_HEAD_INITIALIZER(cw.parked),
	.streams = TAILQ_HEAD_INITIALIZER(cw.streams),
	.revision = -1,
};
static struct event		*ev_migrate, *ev_prune, *ev_drain, *ev_recheck;
static struct metric		*m_clients, *m_objects, *m_revision;
static struct metric_follower	 m_evicted, m_refused;
static struct metric		*m_catchups, *m_latency;
static struct route_count	 counts[R_MAX][STATUSES_MAX];

/* ---- start, reload, stop ---- */

/* config_start - connect, migrate, load; serve 503 until loaded */
static int
config_start(struct event_base *b, const struct conf *c, int fd)
{
	struct http_limits	l = limits_of(c);
	struct timeval		tv = { PRUNE_INTERVAL_S, 0 };
	struct throttle_limits	tl;

	cw.base = b;
	register_metrics();
	if ((cw.pg = pgc_new(b, c->pg_conninfo, c->pg_password, NULL,
	    NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	cw.pub = rds_new_conf(b, &c->redis, NULL, NULL);
	rds_set_name(cw.pub, "redis (config announcements)");
	cw.channel = cfgfollow_channel(c->tenant_id);
	cw.auth = auth_new(b, &c->redis, c->tenant_id);
	auth_set_admin_token(cw.auth, c->admin_token);
	cw.throttle = throttle_new(b, &c->redis, c->tenant_id);
	tl = throttle_limits_of(c);
	throttle_set_limits(cw.throttle, &tl);
	cw.http = http_server_new(b, fd, &l, handle, &cw);
	http_server_set_tls(cw.http, c->workers[WORKER_CONFIG].tls.ctx);
	http_server_set_observer(cw.http, observe, NULL);
	http_server_set_body_limit(cw.http, body_limit, NULL);
	http_server_set_head_hook(cw.http, head, &cw);
	offload_init(b, 2);
	store_init(b);
	ev_migrate = evtimer_new(b, migrate, &cw);
	ev_prune = event_new(b, -1, EV_PERSIST, on_prune, &cw);
	event_add(ev_prune, &tv);
	tv.tv_sec = RECHECK_INTERVAL_S;
	ev_recheck = event_new(b, -1, EV_PERSIST, on_recheck, &cw);
	event_add(ev_recheck, &tv);
	migrate(-1, 0, &cw);
	return 0;
}

/* config_reload_check - the tenant a worker serves never changes */
static int
config_reload_check(const struct conf *next, char *why, size_t len)
{
	if (strcmp(next->tenant_id, worker_conf()->tenant_id) != 0) {
		snprintf(why, len, "tenant.id cannot change while running");
		return -1;
	}
	return 0;
}

/* config_reload_apply - new limits and admin token; the rest is read
 * when used */
static void
config_reload_apply(const struct conf *next, const struct conf *prev)
{
	struct http_limits	l = limits_of(next);
	struct throttle_limits	tl = throttle_limits_of(next);

	http_server_set_limits(cw.http, &l);
	throttle_set_limits(cw.throttle, &tl);
	/* new connections get the new certificate; open ones keep theirs */
	http_server_set_tls(cw.http, next->workers[WORKER_CONFIG].tls.ctx);
	auth_set_admin_token(cw.auth, next->admin_token);
}

/* config_listen - the master handed over a new listening socket */
static void
config_listen(int fd)
{
	http_server_set_listener(cw.http, fd);
}

/*
 * config_stop - stop taking requests; end the streams and long polls
 * with what there is; let committed writes get their answers.
 */
static void
config_stop(void)
{
	struct timeval	 tv = { 0, 50000 };

	http_server_pause(cw.http);
	changes_stop(&cw);
	ev_drain = event_new(cw.base, -1, EV_PERSIST, on_drain, &cw);
	event_add(ev_drain, &tv);
	on_drain(-1, 0, &cw);
}

/* config_cleanup - at exit: answer what is pending, free everything */
static void
config_cleanup(void)
{
	/*
	 * Order matters: the clients' pending callbacks still answer HTTP
	 * requests, so they go first, while the connections exist; dying
	 * makes any request they would start answer 503 instead.
	 */
	cw.dying = 1;
	offload_fini();
	pgc_free(cw.pg);
	cw.pg = NULL;
	store_fini();
	cfgfollow_free(cw.follow);
	cw.follow = NULL;
	/* delayed refusals and pending counts are answered now */
	throttle_free(cw.throttle);
	cw.throttle = NULL;
	auth_free(cw.auth);
	cw.auth = NULL;
	rds_free(cw.pub);
	cw.pub = NULL;
	import_abort();
	cw.importing = NULL;
	changes_free(&cw);
	http_server_free(cw.http);
	cw.http = NULL;
	if (ev_migrate != NULL)
		event_free(ev_migrate);
	if (ev_prune != NULL)
		event_free(ev_prune);
	if (ev_recheck != NULL)
		event_free(ev_recheck);
	if (ev_drain != NULL)
		event_free(ev_drain);
	ev_migrate = ev_prune = ev_drain = ev_recheck = NULL;
	cache_free();
	free(cw.channel);
	cw.channel = NULL;
}

/* ---- a request's way in ---- */

/* handle - every whole request: loaded?  authenticated?  then dispatch */
static void
handle(struct http_conn *c, const struct http_request *r, void *arg)
{
	struct cfgw	*w = arg;

	if (!admit(w, c, r))
		return;
	if (http_path_is(r, "/v1/auth/token") && http_method_is(r, "POST"))
		token_request(w, c, r);
	else
		token_authenticate(w, c, r, dispatch);
}

/*
 * head - a request whose body is still to come: nothing unauthenticated
 * may make the worker read and hold a body (an import may be 256 MiB),
 * so its token, and for an import its right, are checked first.  Only a
 * token request, which has no token, is read at once, within max_body.
 */
static void
head(struct http_conn *c, const struct http_request *r, void *arg)
{
	struct cfgw	*w = arg;

	if (!admit(w, c, r))
		return;
	if (http_path_is(r, "/v1/auth/token") && http_method_is(r, "POST"))
		http_continue(c);
	else
		token_authenticate(w, c, r, head_authed);
}

/* count_clients - the connections, and what max_clients did to them */
static void
count_clients(struct cfgw *w)
{
	uint64_t	made_room, turned_away;

	metric_set(m_clients, http_server_clients(w->http));
	http_server_full(w->http, &made_room, &turned_away);
	metric_follow(&m_evicted, made_room);
	metric_follow(&m_refused, turned_away);
}

/*
 * admit - what every request passes before its token is looked at;
 * 0 when it was answered
 */
static int
admit(struct cfgw *w, struct http_conn *c, const struct http_request *r)
{
	count_clients(w);
	if (r->path_len < 4 || memcmp(r->target, "/v1/", 4) != 0) {
		reply_error(c, 404, "NotFound", NULL, "the API lives under /v1/");
		return 0;
	}
	if (w->dying) {
		reply_error(c, 503, "Unavailable", NULL, "the worker is "
		    "stopping; retry later");
		return 0;
	}
	if (!w->loaded) {
		reply_error(c, 503, "Unavailable", NULL, "the configuration is "
		    "not loaded yet (PostgreSQL unavailable?); retry later");
		return 0;
	}
	return 1;
}

/* dispatch - an authenticated request */
static void
dispatch(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct grants	g;

	/* Authenticated: never pushed out to make room for a stranger. */
	http_conn_trust(c);
	if (tokenlife_route(w, c, r, who))
		return;
	access_grants(who, &g);
	if (http_path_is(r, "/v1/whoami")) {
		if (http_method_is(r, "GET"))
			read_whoami(c, who, &g);
		else
			reply_not_allowed(c, "GET");
	} else if (http_path_is(r, "/v1/import")) {
		if (http_method_is(r, "POST"))
			write_import(w, c, r, who);
		else
			reply_not_allowed(c, "POST");
	} else if (http_path_is(r, "/v1/export")) {
		if (http_method_is(r, "GET"))
			read_export(w, c, &g);
		else
			reply_not_allowed(c, "GET");
	} else if (http_path_is(r, "/v1/changes")) {
		http_conn_set_label(c, R_CHANGES);
		if (http_method_is(r, "GET"))
			changes_get(w, c, r, who);
		else
			reply_not_allowed(c, "GET");
	} else
		route(w, c, r, &g);
	access_clear(&g);
}

/* route - /v1/{collection}[/{dbid}] */
static void
route(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct grants *g)
{
	const struct cfg_type	*t;
	const char		*p = r->target + 4, *end = r->target +
				    r->path_len, *slash;
	json_int_t		 dbid = 0;

	if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL)
		slash = end;
	if ((t = cfg_type_by_collection(p, (size_t)(slash - p))) == NULL) {
		reply_error(c, 404, "NotFound", NULL, "no such collection");
		return;
	}
	if (slash != end && (dbid = parse_dbid(slash + 1,
	    (size_t)(end - slash - 1))) < 0) {
		reply_error(c, 404, "NotFound", NULL, "not a dbid");
		return;
	}
	if (dbid == 0 && http_method_is(r, "GET")) {
		http_conn_set_label(c, R_LIST);
		read_list(w, c, r, t, g);
	} else if (dbid == 0 && http_method_is(r, "POST")) {
		http_conn_set_label(c, R_CREATE);
		write_create(w, c, r, t, g);
	} else if (dbid != 0 && http_method_is(r, "GET")) {
		http_conn_set_label(c, R_GET);
		read_one(c, t, dbid, g);
	} else if (dbid != 0 && http_method_is(r, "PUT")) {
		http_conn_set_label(c, R_REPLACE);
		write_update(w, c, r, t, dbid, 0, g);
	} else if (dbid != 0 && http_method_is(r, "PATCH")) {
		http_conn_set_label(c, R_PATCH);
		write_update(w, c, r, t, dbid, 1, g);
	} else if (dbid != 0 && http_method_is(r, "DELETE")) {
		http_conn_set_label(c, R_DELETE);
		write_delete(w, c, r, t, dbid, g);
	} else
		reply_not_allowed(c, dbid == 0 ? "GET, POST" :
		    "GET, PUT, PATCH, DELETE");
}

/*
 * head_authed - the head of a request with a body has a good token: let
 * the body come.  The whole request is checked again once it is in
 * (rights are those of that moment, and a long upload may outlive a
 * token).
 */
static void
head_authed(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	if (http_path_is(r, "/v1/import") && http_method_is(r, "POST") &&
	    !may_import(who)) {
		reply_error(c, 403, "Forbidden", NULL, "no create or update "
		    "right on any collection: nothing to import");
		return;
	}
	http_conn_trust(c);
	http_continue(c);
}

/* may_import - has the principal a right an import could use? */
static int
may_import(const struct principal *who)
{
	struct grants	g;
	int		k, ok = 0;

	access_grants(who, &g);
	for (k = 0; k < CFG_NTYPES && !ok; k++)
		ok = access_any(&g, k, RIGHT_CREATE) ||
		    access_any(&g, k, RIGHT_UPDATE);
	access_clear(&g);
	return ok;
}

/* ---- limits and metrics ---- */

/* limits_of - the HTTP server's limits from the configuration */
static struct http_limits
limits_of(const struct conf *c)
{
	struct http_limits	l;

	/* Imports may be larger; other requests are held to max_body. */
	l.max_body = c->workers[WORKER_CONFIG].max_body;
	if (c->workers[WORKER_CONFIG].max_import > l.max_body)
		l.max_body = c->workers[WORKER_CONFIG].max_import;
	l.max_output = 16 << 20;
	l.max_clients = c->workers[WORKER_CONFIG].max_clients;
	l.idle_timeout = IDLE_TIMEOUT_S;
	l.header_timeout = c->workers[WORKER_CONFIG].header_timeout;
	l.body_timeout = c->workers[WORKER_CONFIG].body_timeout;
	return l;
}

/* register_metrics - the worker's gauges and histogram */
static void
register_metrics(void)
{
	static const double buckets[] = { .0005, .001, .0025, .005, .01, .025,
	    .05, .1, .25, .5, 1, 2.5 };

	m_clients = metrics_gauge("tenant_cs_clients",
	    "Clients connected to the configuration service.", NULL);
	m_objects = metrics_gauge("tenantd_config_objects",
	    "Configuration objects in the config worker's cache.", NULL);
	m_revision = metrics_gauge("tenantd_config_revision",
	    "The configuration revision the cache reflects.", NULL);
	m_catchups = metrics_counter("tenantd_config_catchups_total",
	    "Change-log reads that brought the cache forward.", NULL);
	m_evicted.m = metrics_counter("tenantd_config_clients_evicted_total",
	    "Connections closed before they sent a request, to make room "
	    "for a new one at max_clients.", NULL);
	m_refused.m = metrics_counter("tenantd_config_clients_refused_total",
	    "Connections turned away at max_clients, every one there busy "
	    "or trusted.", NULL);
	m_latency = metrics_histogram("tenantd_config_request_duration_seconds",
	    "Time from a request to its answer.", NULL, buckets,
	    NELEM(buckets));
}

/*
 * body_limit - imports may be up to max_import, the rest max_body; a
 * token request, the one body read before any token, holds a name and a
 * password, so a few KiB are all anyone unauthenticated can make us read.
 */
static size_t
body_limit(const struct http_request *r, void *arg)
{
	const struct conf_worker	*w = &worker_conf()->workers[WORKER_CONFIG];

	if (http_path_is(r, "/v1/auth/token"))
		return w->max_body < TOKEN_BODY_MAX ? w->max_body :
		    TOKEN_BODY_MAX;
	return http_path_is(r, "/v1/import") ? w->max_import : w->max_body;
}

/* observe - count every answer by route and status, and time it */
static void
observe(int status, double seconds, int label, void *arg)
{
	struct route_count	*rc = counts[label];
	char			 labels[64];
	int			 i;

	metric_observe(m_latency, seconds);
	for (i = 0; i < STATUSES_MAX && rc[i].m != NULL; i++)
		if (rc[i].status == status) {
			metric_inc(rc[i].m);
			return;
		}
	if (i == STATUSES_MAX)
		return;
	snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"",
	    route_names[label], status);
	rc[i].status = status;
	rc[i].m = metrics_counter("tenantd_config_requests_total",
	    "Configuration API requests by route and status.", labels);
	metric_inc(rc[i].m);
}

/*
 * on_drain - during a graceful stop: exit once no write is in flight and
 * no answer waits (the runtime's deadline ends it otherwise).
 */
static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct cfgw	*w = arg;

	if (changes_writes_parked(w) == 0 && w->busy_jobs == 0 &&
	    !import_running() && store_pending() == 0 &&
	    (w->pg == NULL || pgc_queued(w->pg) == 0))
		worker_exit(0);
}

/* ---- the cache, fed by the follower ---- */

/* on_reset - a snapshot begins: the cache starts empty */
static void
on_reset(void *arg)
{
	cache_reset();
}

/* on_change - one object of a snapshot, or one change, in order */
static void
on_change(const struct cfg_change *ch, void *arg)
{
	cache_apply(ch);
}

/* on_synced - the cache reflects rev: answer who waited for it */
static void
on_synced(json_int_t rev, void *arg)
{
	struct cfgw	*w = arg;

	if (rev != w->revision)
		metric_inc(m_catchups);
	w->revision = rev;
	metric_set(m_revision, (double)rev);
	metric_set(m_objects, (double)cache_size());
	if (!w->loaded) {
		w->loaded = 1;
		log_info("configuration loaded: %zu objects at revision %lld",
		    cache_size(), (long long)rev);
		write_ensure_tenant(w);
		worker_ready();
	}
	changes_wake(w);
}

/* migrate - bring the tables up to date; retried while PostgreSQL is away */
static void
migrate(evutil_socket_t fd, short what, void *arg)
{
	struct cfgw	*w = arg;
	struct timeval	 tv = { MIGRATE_RETRY_S, 0 };

	if (migrate_run(w->pg, "config", store_migrations, store_nmigrations,
	    migrated_cb, w) == -1)
		evtimer_add(ev_migrate, &tv);
}

/* migrated_cb - the tables are ready: follow the change log */
static void
migrated_cb(int ok, int version, void *arg)
{
	static const struct cfgfollow_cbs cbs = { on_reset, on_change,
					    on_synced };
	struct cfgw			*w = arg;
	struct timeval			 tv = { MIGRATE_RETRY_S, 0 };
	const struct conf		*c = worker_conf();

	if (!ok) {
		evtimer_add(ev_migrate, &tv);
		return;
	}
	w->migrated = 1;
	cache_init(CFG_NTYPES);
	w->follow = cfgfollow_new(w->base, w->pg, &c->redis, c->tenant_id,
	    &cbs, w);
}

/* on_recheck - the change streams' tokens, asked again */
static void
on_recheck(evutil_socket_t fd, short what, void *arg)
{
	struct cfgw	*w = arg;

	count_clients(w);
	if (!w->dying)
		changes_recheck(w);
}

/* on_prune - drop the change log's history beyond workers.config.history */
static void
on_prune(evutil_socket_t fd, short what, void *arg)
{
	struct cfgw	*w = arg;

	if (w->migrated)
		store_prune(w->pg, (json_int_t)worker_conf()->
		    workers[WORKER_CONFIG].history);
}
