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
 *
 * PostgreSQL is the truth (store.c).  Reads are served from the cache
 * (cache.c), which only the change follower (common/cfgfollow.c) feeds, in
 * revision order, exactly as on every other instance.  A write commits,
 * announces its revision on Redis, and answers once the cache has caught
 * up with it, so a client always reads its own writes.
 */
#include <crypt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "access.h"
#include "auth.h"
#include "cache.h"
#include "cfgfollow.h"
#include "config_worker.h"
#include "http.h"
#include "import.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "migrate.h"
#include "pgc.h"
#include "rds.h"
#include "schema.h"
#include "store.h"
#include "util.h"

#define LIST_LIMIT_DEFAULT	100
#define LIST_LIMIT_MAX		10000
#define CHANGES_LIMIT		1000
#define WAIT_MAX_S		60
#define WRITE_WAIT_S		5
#define PRUNE_INTERVAL_S	60
#define MIGRATE_RETRY_S		1
#define IDLE_TIMEOUT_S		120.0
#define TOKEN_BODY_MAX		8192

/* Routes, as labels of tenantd_config_requests_total. */
enum route {
	R_OTHER = 0, R_LIST, R_GET, R_CREATE, R_REPLACE, R_PATCH, R_DELETE,
	R_CHANGES, R_MAX
};
static const char *const route_names[R_MAX] = { "other", "list", "get",
    "create", "replace", "patch", "delete", "changes" };

/* One counter per route and status, registered on first use. */
struct route_count {
	int		 status;
	struct metric	*m;
};
#define STATUSES_MAX	24

/* A request parked until the cache reaches a revision. */
struct parked {
	TAILQ_ENTRY(parked)	 entry;
	struct http_conn	*conn;
	json_int_t		 revision;	/* write: wait for; poll: since */
	json_int_t		 dbid;		/* write: the object answered */
	int			 status;	/* write: 200, 201 or 204 */
	int			 limit;		/* poll */
	int			 is_poll;
	char			*answer;	/* write: a body of its own */
	struct principal	 who;		/* poll */
	struct event		*ev_timeout;
};
TAILQ_HEAD(parked_list, parked);

/*
 * A client following the change log forever: one JSON change per line.
 * A stream is read in batches from PostgreSQL when the cache moves on;
 * it may outlive its connection while a query is out (dead is then set).
 */
struct stream {
	TAILQ_ENTRY(stream)	 entry;
	struct http_conn	*conn;
	struct principal	 who;
	json_int_t		 sent;		/* last revision passed on */
	int			 started;	/* headers sent */
	int			 busy;		/* a query is out */
	int			 again;
	int			 dead;
};
TAILQ_HEAD(stream_list, stream);

static struct stream_list	 streams = TAILQ_HEAD_INITIALIZER(streams);

/* What a write being committed needs when its answer comes. */
struct write_ctx {
	struct http_conn	*conn;
	int			 status;	/* on success */
	int			 if_match;	/* 412 rather than 409 */
	json_int_t		 dbid;		/* update, delete */
	json_int_t		 revoke;	/* principal whose tokens end */
};

/* A committed write whose answer waits for a token revocation. */
struct revoking {
	struct http_conn	*conn;
	json_int_t		 revision;
	json_int_t		 dbid;
	int			 status;
};

static int	 config_start(struct event_base *, const struct conf *, int);
static int	 config_reload_check(const struct conf *, char *, size_t);
static void	 config_reload_apply(const struct conf *, const struct conf *);
static void	 config_listen(int);
static void	 config_stop(void);
static void	 config_cleanup(void);

const struct worker_ops config_worker_ops = {
	config_start,
	config_reload_check,
	config_reload_apply,
	config_listen,
	config_stop,
	config_cleanup,
};

static struct event_base	*base;
static struct http_server	*http;
static struct pgc		*pg;
static struct rds		*pub;
static struct auth		*auth;
static struct cfgfollow		*follow;
static struct event		*ev_migrate, *ev_prune, *ev_drain;
static struct parked_list	 parked = TAILQ_HEAD_INITIALIZER(parked);
/* Secrets being hashed or compared on the pool, tokens being stored. */
static int			 busy_jobs;
static char			*channel;
static int			 migrated, loaded, dying;
static json_int_t		 revision = -1;	/* the cache's */
static struct metric		*m_clients, *m_objects, *m_revision;
static struct metric		*m_catchups, *m_latency;
static struct route_count	 counts[R_MAX][STATUSES_MAX];

static void	handle(struct http_conn *, const struct http_request *,
		    void *);
static void	head(struct http_conn *, const struct http_request *,
		    void *);
static void	stream_free(struct stream *);
static void	on_parked_timeout(evutil_socket_t, short, void *);
static void	migrate(evutil_socket_t, short, void *);
static void	on_prune(evutil_socket_t, short, void *);

/* ---- start and configuration ---- */

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

/* config_start - connect, migrate, load; serve 503 until loaded */
static int
config_start(struct event_base *b, const struct conf *c, int fd)
{
	struct http_limits	l = limits_of(c);
	struct timeval		tv = { PRUNE_INTERVAL_S, 0 };

	base = b;
	register_metrics();
	if ((pg = pgc_new(base, c->pg_conninfo, c->pg_password, NULL,
	    NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	pub = rds_new(base, c->redis.host, c->redis.port, c->redis.password,
	    NULL, NULL);
	rds_set_name(pub, "redis (config announcements)");
	channel = cfgfollow_channel(c->tenant_id);
	auth = auth_new(base, c->redis.host, c->redis.port, c->redis.password,
	    c->tenant_id);
	auth_set_admin_token(auth, c->admin_token);
	http = http_server_new(base, fd, &l, handle, NULL);
	http_server_set_observer(http, observe, NULL);
	http_server_set_body_limit(http, body_limit, NULL);
	http_server_set_head_hook(http, head, NULL);
	offload_init(base, 2);
	store_init(base);
	ev_migrate = evtimer_new(base, migrate, NULL);
	ev_prune = event_new(base, -1, EV_PERSIST, on_prune, NULL);
	event_add(ev_prune, &tv);
	migrate(-1, 0, NULL);
	return 0;
}

static int
config_reload_check(const struct conf *next, char *why, size_t len)
{
	if (strcmp(next->tenant_id, worker_conf()->tenant_id) != 0) {
		snprintf(why, len, "tenant.id cannot change while running");
		return -1;
	}
	return 0;
}

static void
config_reload_apply(const struct conf *next, const struct conf *prev)
{
	struct http_limits	l = limits_of(next);

	http_server_set_limits(http, &l);
	auth_set_admin_token(auth, next->admin_token);
}

static void
config_listen(int fd)
{
	http_server_set_listener(http, fd);
}

/*
 * on_drain - during a graceful stop: exit once no write is in flight and
 * no answer waits (the runtime's deadline ends it otherwise).
 */
static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct parked	*p;
	int		 writes = 0;

	TAILQ_FOREACH(p, &parked, entry)
		writes += !p->is_poll;
	if (writes == 0 && busy_jobs == 0 && !import_running() &&
	    store_pending() == 0 && (pg == NULL || pgc_queued(pg) == 0))
		worker_exit(0);
}

/*
 * config_stop - stop taking requests; end the streams and long polls
 * with what there is; let committed writes get their answers.
 */
static void
config_stop(void)
{
	struct timeval	 tv = { 0, 50000 };
	struct stream	*st, *nst;
	struct parked	*p, *np;

	http_server_pause(http);
	for (st = TAILQ_FIRST(&streams); st != NULL; st = nst) {
		nst = TAILQ_NEXT(st, entry);
		if (st->started && !st->dead && !st->busy) {
			http_stream_end(st->conn);
			stream_free(st);
		}
	}
	for (p = TAILQ_FIRST(&parked); p != NULL; p = np) {
		np = TAILQ_NEXT(p, entry);
		if (p->is_poll) {
			event_del(p->ev_timeout);
			on_parked_timeout(-1, 0, p);
		}
	}
	ev_drain = event_new(base, -1, EV_PERSIST, on_drain, NULL);
	event_add(ev_drain, &tv);
	on_drain(-1, 0, NULL);
}

static void
parked_free(struct parked *p)
{
	TAILQ_REMOVE(&parked, p, entry);
	event_free(p->ev_timeout);
	free(p->answer);
	free(p);
}

static void
config_cleanup(void)
{
	struct parked	*p;
	struct pgc	*old = pg;

	/*
	 * Order matters: the clients' pending callbacks still answer HTTP
	 * requests, so they go first, while the connections exist; dying
	 * makes any request they would start answer 503 instead.
	 */
	dying = 1;
	offload_fini();
	pgc_free(old);
	pg = NULL;
	store_fini();
	cfgfollow_free(follow);
	follow = NULL;
	auth_free(auth);
	auth = NULL;
	rds_free(pub);
	pub = NULL;
	import_abort();
	while ((p = TAILQ_FIRST(&parked)) != NULL)
		parked_free(p);
	while (TAILQ_FIRST(&streams) != NULL)
		stream_free(TAILQ_FIRST(&streams));
	http_server_free(http);
	http = NULL;
	if (ev_migrate != NULL)
		event_free(ev_migrate);
	if (ev_prune != NULL)
		event_free(ev_prune);
	if (ev_drain != NULL)
		event_free(ev_drain);
	ev_migrate = ev_prune = ev_drain = NULL;
	cache_free();
	free(channel);
	channel = NULL;
}

/* ---- the cache, fed by the follower ---- */

static void	wake(void);

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

static void
tenant_created(enum store_rc rc, json_int_t rev, json_int_t dbid,
    const char *detail, void *arg)
{
	/* Another instance may have made it first: that is as good. */
	if (rc == STORE_OK)
		cfgfollow_poke(follow);
	else if (rc != STORE_DUPLICATE)
		log_warnx("cannot create the tenant object: %s", detail);
}

/*
 * ensure_tenant - the served tenant is an object like any other, made
 * from tenant.name the first time an instance loads an empty tenant.
 */
static void
ensure_tenant(void)
{
	struct store_write	 w;
	char			*key;
	size_t			 n;

	cache_list(CFG_TENANT, &n);
	if (n > 0)
		return;
	memset(&w, 0, sizeof(w));
	w.op = STORE_CREATE;
	w.type = cfg_type_name(cfg_type_at(CFG_TENANT));
	w.data = json_pack("{s:s}", "name", worker_conf()->tenant_name);
	if (cfg_validate(cfg_type_at(CFG_TENANT), w.data, 1, 0, 0, NULL) == 0 &&
	    (key = cfg_key(cfg_type_at(CFG_TENANT), w.data)) != NULL) {
		w.key = key;
		store_write(pg, &w, 1, tenant_created, NULL);
		free(key);
	}
	json_decref(w.data);
}

/* on_synced - the cache reflects rev: answer who waited for it */
static void
on_synced(json_int_t rev, void *arg)
{
	if (rev != revision)
		metric_inc(m_catchups);
	revision = rev;
	metric_set(m_revision, (double)rev);
	metric_set(m_objects, (double)cache_size());
	if (!loaded) {
		loaded = 1;
		log_info("configuration loaded: %zu objects at revision %lld",
		    cache_size(), (long long)rev);
		ensure_tenant();
		worker_ready();
	}
	wake();
}

static void
migrated_cb(int ok, int version, void *arg)
{
	struct timeval			tv = { MIGRATE_RETRY_S, 0 };
	static const struct cfgfollow_cbs cbs = { on_reset, on_change,
					    on_synced };
	const struct conf		*c = worker_conf();

	if (!ok) {
		evtimer_add(ev_migrate, &tv);
		return;
	}
	migrated = 1;
	cache_init(CFG_NTYPES);
	follow = cfgfollow_new(base, pg, c->redis.host, c->redis.port,
	    c->redis.password, c->tenant_id, &cbs, NULL);
}

/* migrate - bring the tables up to date; retried while PostgreSQL is away */
static void
migrate(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { MIGRATE_RETRY_S, 0 };

	if (migrate_run(pg, "config", store_migrations, store_nmigrations,
	    migrated_cb, NULL) == -1)
		evtimer_add(ev_migrate, &tv);
}

static void
on_prune(evutil_socket_t fd, short what, void *arg)
{
	if (migrated)
		store_prune(pg, (json_int_t)worker_conf()->
		    workers[WORKER_CONFIG].history);
}

/* ---- answers ---- */

/* reply_json - an answer with a JSON body */
static void
reply_json(struct http_conn *c, int status, const char *extra,
    const char *body, size_t len)
{
	http_respond(c, status, "application/json", extra, body, len);
}

/* reply_error - {"error": code, "message": ..., "field": ...} */
static void
reply_error(struct http_conn *c, int status, const char *code,
    const char *field, const char *fmt, ...)
{
	char	 msg[512], *text;
	va_list	 ap;
	json_t	*j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	if (field != NULL)
		json_object_set_new(j, "field", json_string(field));
	text = json_dumps(j, JSON_COMPACT);
	reply_json(c, status, status == 401 ?
	    "WWW-Authenticate: Bearer realm=\"tenantd\"\r\n" : NULL, text,
	    strlen(text));
	free(text);
	json_decref(j);
}

static void
reply_cfg_error(struct http_conn *c, const struct cfg_error *e)
{
	reply_error(c, e->status, e->code, e->field[0] ? e->field : NULL,
	    "%s", e->message);
}

/* reply_object - one cached object, with its version as ETag */
static void
reply_object(struct http_conn *c, int status, const struct cobj *o)
{
	char	extra[256];

	if (status == 201)
		snprintf(extra, sizeof(extra), "ETag: \"%lld\"\r\nLocation: "
		    "/v1/%s/%lld\r\n", (long long)o->version,
		    cfg_type_collection(cfg_type_at(o->kind)),
		    (long long)o->dbid);
	else
		snprintf(extra, sizeof(extra), "ETag: \"%lld\"\r\n",
		    (long long)o->version);
	reply_json(c, status, extra, o->text, o->len);
}

/* not_allowed - 405 with the methods that are */
static void
not_allowed(struct http_conn *c, const char *allow)
{
	char	extra[64], body[128];
	int	n;

	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	n = snprintf(body, sizeof(body), "{\"error\":\"MethodNotAllowed\","
	    "\"message\":\"allowed here: %s\"}", allow);
	reply_json(c, 405, extra, body, (size_t)n);
}

/* forbidden - 403 naming what is missing */
static void
forbidden(struct http_conn *c, int right, const struct cfg_type *t)
{
	reply_error(c, 403, "Forbidden", NULL, "no %s right on %s",
	    access_right_name(right), cfg_type_collection(t));
}

/* ---- the change log ---- */

/*
 * Changes after $1, at most $2, with the oldest and latest revisions.
 * Scalar subqueries, not a join: before cfg_revision is first analyzed the
 * planner guesses it large, and a join would cost enough to be compiled
 * by PostgreSQL's JIT on every read (10 ms each).
 */
static const char changes_sql[] =
    "SELECT c.revision, c.op, c.type, c.dbid, c.object::text,"
    " (SELECT min(revision) FROM cfg_change),"
    " (SELECT revision FROM cfg_revision WHERE id = 1) "
    "FROM (SELECT 1) one LEFT JOIN LATERAL ("
    " SELECT * FROM cfg_change WHERE revision > $1::bigint"
    " ORDER BY revision LIMIT $2::integer) c ON true "
    "ORDER BY c.revision";

struct changes_q {
	struct http_conn	*conn;
	json_int_t		 since;
	int			 limit;
	struct principal	 who;
};

/* readable - may the principal see change row i? */
static int
readable(const struct grants *g, const PGresult *res, int i)
{
	const char		*type = PQgetvalue(res, i, 2);
	const struct cfg_type	*t = cfg_type_by_name(type, strlen(type));

	return t != NULL && access_can(g, cfg_type_kind(t),
	    strtoll(PQgetvalue(res, i, 3), NULL, 10), RIGHT_READ);
}

/* print_change - change row i as one JSON object */
static void
print_change(FILE *f, const PGresult *res, int i)
{
	fprintf(f, "{\"revision\":%s,\"op\":\"%s\",\"type\":\"%s\","
	    "\"dbid\":%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
	    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
	if (!PQgetisnull(res, i, 4))
		fprintf(f, ",\"object\":%s", PQgetvalue(res, i, 4));
	fputc('}', f);
}

/* gone - answer 410 if since is older than the change log keeps */
static int
gone(struct http_conn *c, const PGresult *res, json_int_t since)
{
	json_int_t	oldest, latest;
	char		body[200];
	int		m;

	oldest = PQgetisnull(res, 0, 5) ? -1 :
	    strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	latest = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	if (since >= latest || (oldest != -1 && since >= oldest - 1))
		return 0;
	m = snprintf(body, sizeof(body), "{\"error\":\"Gone\",\"message\":"
	    "\"revision %lld is no longer in the change log; reload and follow "
	    "from the revision of the list\",\"oldest\":%lld}",
	    (long long)since + 1, (long long)(oldest == -1 ? latest : oldest));
	reply_json(c, 410, NULL, body, (size_t)m);
	return 1;
}

static int
result_rows(const PGresult *res)
{
	return res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) >= 1;
}

/* changes_cb - {"revision": latest, "changes": [...]}, or 410 */
static void
changes_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct changes_q	*q = arg;
	struct grants		 g;
	char			*buf = NULL;
	size_t			 len = 0;
	FILE			*f;
	json_int_t		 latest;
	int			 i, n, shown = 0;

	if (!result_rows(res)) {
		reply_error(q->conn, 503, "Unavailable", NULL, "the change "
		    "log cannot be read now: PostgreSQL is unavailable");
		free(q);
		return;
	}
	if (gone(q->conn, res, q->since)) {
		free(q);
		return;
	}
	latest = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	access_grants(&q->who, &g);
	fprintf(f, "{\"revision\":%lld,\"changes\":[", (long long)latest);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 0) || !readable(&g, res, i))
			continue;
		if (shown++ > 0)
			fputc(',', f);
		print_change(f, res, i);
	}
	/*
	 * Where to go on from, even when none of these changes was readable:
	 * the last one read if the page was full, else the latest revision.
	 */
	fprintf(f, "],\"next\":%lld}", (long long)(n >= q->limit &&
	    !PQgetisnull(res, n - 1, 0) ? strtoll(PQgetvalue(res, n - 1, 0),
	    NULL, 10) : q->since > latest ? q->since : latest));
	access_clear(&g);
	if (fclose(f) != 0)
		fatal("changes");
	reply_json(q->conn, 200, NULL, buf, len);
	free(buf);
	free(q);
}

/* changes_query - read up to limit changes after since */
static void
changes_query(struct http_conn *c, const struct principal *who,
    json_int_t since, int limit)
{
	struct changes_q	*q = xcalloc(1, sizeof(*q));
	char			 s[24], l[16];
	const char		*params[2] = { s, l };

	q->conn = c;
	q->since = since;
	q->limit = limit;
	q->who = *who;
	snprintf(s, sizeof(s), "%lld", (long long)since);
	snprintf(l, sizeof(l), "%d", limit);
	if (pgc_query(pg, changes_sql, 2, params, changes_cb, q) == -1) {
		free(q);
		reply_error(c, 503, "Unavailable", NULL, "too many queries "
		    "waiting for PostgreSQL; retry later");
	}
}

/* ---- streams: Accept: application/x-ndjson ---- */

static void	stream_pump(struct stream *);
static void	stream_free(struct stream *);

static void
stream_free(struct stream *st)
{
	TAILQ_REMOVE(&streams, st, entry);
	free(st);
}

/* stream_closed - the client went away */
static void
stream_closed(void *arg)
{
	struct stream	*st = arg;

	st->dead = 1;
	st->conn = NULL;
	if (!st->busy)
		stream_free(st);
}

/* stream_rows - pass a batch on; -1 if the client was cut off */
static int
stream_rows(struct stream *st, const PGresult *res)
{
	struct grants	 g;
	char		*line = NULL;
	size_t		 len = 0;
	FILE		*f;
	int		 i, n = PQntuples(res), rc = 0;

	access_grants(&st->who, &g);
	for (i = 0; i < n && rc == 0 && !st->dead; i++) {
		if (PQgetisnull(res, i, 0))
			continue;
		st->sent = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (!readable(&g, res, i))
			continue;
		if ((f = open_memstream(&line, &len)) == NULL)
			fatal("open_memstream");
		print_change(f, res, i);
		fputc('\n', f);
		if (fclose(f) != 0)
			fatal("stream");
		rc = http_stream_write(st->conn, line, len);
		free(line);
		line = NULL;
	}
	access_clear(&g);
	return rc;
}

/* stream_fell_behind - has pruning passed what the stream sent? */
static int
stream_fell_behind(const struct stream *st, const PGresult *res)
{
	json_int_t	oldest;

	if (PQgetisnull(res, 0, 5))
		return 0;
	oldest = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	return st->sent < oldest - 1;
}

/* stream_cb - a batch of the change log arrived */
static void
stream_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct stream	*st = arg;
	int		 full;

	/*
	 * busy stays set until the end: a write may find the client gone,
	 * and stream_closed must then only mark the stream, not free it.
	 */
	if (st->dead)
		goto drop;
	if (!result_rows(res)) {
		if (st->started) {
			st->busy = 0;	/* waits for the next change */
			return;
		}
		reply_error(st->conn, 503, "Unavailable", NULL, "the change "
		    "log cannot be read now");
		goto drop;
	}
	if (!st->started) {
		if (gone(st->conn, res, st->sent))
			goto drop;
		st->started = 1;
		if (http_stream_begin(st->conn, 200, "application/x-ndjson",
		    stream_closed, st) == -1 || st->dead)
			goto drop;
	}
	if (stream_fell_behind(st, res)) {
		/* It would skip pruned changes: end it; a new one gets 410. */
		http_stream_end(st->conn);
		goto drop;
	}
	full = PQntuples(res) >= CHANGES_LIMIT;
	if (stream_rows(st, res) == -1 || st->dead)
		goto drop;
	st->busy = 0;
	if (full || st->again) {
		st->again = 0;
		stream_pump(st);
	}
	return;
drop:
	stream_free(st);
}

/* stream_pump - read what the stream has not passed on yet */
static void
stream_pump(struct stream *st)
{
	char		 s[24], l[16];
	const char	*params[2] = { s, l };

	if (st->busy) {
		st->again = 1;
		return;
	}
	snprintf(s, sizeof(s), "%lld", (long long)st->sent);
	snprintf(l, sizeof(l), "%d", CHANGES_LIMIT);
	if (pgc_query(pg, changes_sql, 2, params, stream_cb, st) == 0)
		st->busy = 1;
	else if (!st->started) {
		reply_error(st->conn, 503, "Unavailable", NULL, "too many "
		    "queries waiting for PostgreSQL; retry later");
		stream_free(st);
	}
}

/* stream_start - GET /v1/changes with Accept: application/x-ndjson */
static void
stream_start(struct http_conn *c, const struct principal *who,
    json_int_t since)
{
	struct stream	*st = xcalloc(1, sizeof(*st));

	st->conn = c;
	st->who = *who;
	st->sent = since;
	TAILQ_INSERT_TAIL(&streams, st, entry);
	stream_pump(st);
}

/* wake_streams - the cache moved on: so may the streams */
static void
wake_streams(void)
{
	struct stream	*st, *next;

	for (st = TAILQ_FIRST(&streams); st != NULL; st = next) {
		next = TAILQ_NEXT(st, entry);
		if (st->started && !st->dead && st->sent < revision)
			stream_pump(st);
	}
}

/* ---- parked requests ---- */

static void
on_parked_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct parked	*p = arg;
	char		 body[96];
	int		 n;

	if (p->is_poll)
		changes_query(p->conn, &p->who, p->revision, p->limit);
	else if (p->answer != NULL)
		reply_json(p->conn, p->status, NULL, p->answer,
		    strlen(p->answer));
	else {
		/* Committed, but the cache is behind: say so plainly. */
		n = snprintf(body, sizeof(body), "{\"dbid\":%lld,"
		    "\"revision\":%lld}", (long long)p->dbid,
		    (long long)p->revision);
		reply_json(p->conn, p->status == 204 ? 200 : p->status, NULL,
		    body, (size_t)n);
	}
	parked_free(p);
}

/* park - answer c once the cache reaches (or, polling, passes) rev */
static void
park(struct http_conn *c, int is_poll, json_int_t rev, json_int_t dbid,
    int status, int limit, int wait_s, const struct principal *who)
{
	struct parked	*p = xcalloc(1, sizeof(*p));
	struct timeval	 tv = { wait_s, 0 };

	if (who != NULL)
		p->who = *who;
	p->conn = c;
	p->is_poll = is_poll;
	p->revision = rev;
	p->dbid = dbid;
	p->status = status;
	p->limit = limit;
	p->ev_timeout = evtimer_new(base, on_parked_timeout, p);
	evtimer_add(p->ev_timeout, &tv);
	TAILQ_INSERT_TAIL(&parked, p, entry);
}

/* wake - answer every parked request the cache now satisfies */
static void
wake(void)
{
	wake_streams();
	struct parked		*p, *next;
	const struct cobj	*o;

	for (p = TAILQ_FIRST(&parked); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->is_poll ? revision <= p->revision :
		    revision < p->revision)
			continue;
		if (p->is_poll)
			changes_query(p->conn, &p->who, p->revision, p->limit);
		else if (p->answer != NULL)
			reply_json(p->conn, p->status, NULL, p->answer,
			    strlen(p->answer));
		else if (p->status == 204)
			http_respond(p->conn, 204, NULL, NULL, NULL, 0);
		else if ((o = cache_get(p->dbid)) != NULL)
			reply_object(p->conn, p->status, o);
		else
			reply_error(p->conn, 409, "Deleted", NULL, "object "
			    "%lld was deleted by a later change",
			    (long long)p->dbid);
		parked_free(p);
	}
}

/* ---- reads ---- */

/* parse_dbid - a positive decimal dbid, or -1 */
static json_int_t
parse_dbid(const char *s, size_t n)
{
	json_int_t	v = 0;
	size_t		i;

	if (n == 0 || n > 16)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= CFG_DBID_MAX ? v : -1;
}

/*
 * number_param - an optional integer parameter from min to max, left as
 * it was when absent; answers 400 and returns -1 when it is not one.
 */
static int
number_param(struct http_conn *c, const struct http_request *r,
    const char *name, json_int_t min, json_int_t max, json_int_t *out)
{
	char		v[24];
	json_int_t	n = 0;
	size_t		i;
	int		rc = http_query(r, name, v, sizeof(v));

	if (rc == 0)
		return 0;
	for (i = 0; rc == 1 && v[i] != '\0' && n <= max; i++)
		if (v[i] >= '0' && v[i] <= '9')
			n = n * 10 + (v[i] - '0');
		else
			rc = -1;
	if (rc == -1 || i == 0 || n < min || n > max) {
		reply_error(c, 400, "BadParameter", name, "%s: must be an "
		    "integer from %lld to %lld", name, (long long)min,
		    (long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

struct filter {
	char	key[64];
	char	val[256];
};

#define FILTERS_MAX	8

/* list_params - limit, after and the filters of a list request */
static int
list_params(struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, int *limit, json_int_t *after,
    struct filter *fs, int *nf)
{
	struct cfg_error	e;
	struct filter		f;
	size_t			pos = 0;
	int			rc;

	json_int_t		n = LIST_LIMIT_DEFAULT;

	if (number_param(c, r, "limit", 1, LIST_LIMIT_MAX, &n) == -1)
		return -1;
	*limit = (int)n;
	*after = 0;
	*nf = 0;
	while ((rc = http_query_next(r, &pos, f.key, sizeof(f.key), f.val,
	    sizeof(f.val))) == 1) {
		if (strcmp(f.key, "limit") == 0)
			continue;
		else if (strcmp(f.key, "after") == 0) {
			if ((*after = parse_dbid(f.val, strlen(f.val))) < 0) {
				reply_error(c, 400, "BadParameter", "after",
				    "after: must be a dbid");
				return -1;
			}
		} else if (cfg_filter_check(t, f.key, f.val, &e) == -1) {
			reply_cfg_error(c, &e);
			return -1;
		} else if (*nf == FILTERS_MAX) {
			reply_error(c, 400, "BadParameter", NULL, "at most %d "
			    "filters", FILTERS_MAX);
			return -1;
		} else
			fs[(*nf)++] = f;
	}
	if (rc == -1) {
		reply_error(c, 400, "BadParameter", NULL, "malformed query "
		    "string");
		return -1;
	}
	return 0;
}

/* matches - o passes every filter; only the fields they name are parsed */
static int
matches(const struct cfg_type *t, const struct cobj *o,
    const struct filter *fs, int nf)
{
	json_t	*v;
	int	 i, ok = 1;

	for (i = 0; i < nf && ok; i++) {
		v = cobj_get(o, cfg_filter_field(t, fs[i].key));
		ok = cfg_filter_match_value(t, v, fs[i].key, fs[i].val);
		json_decref(v);
	}
	return ok;
}

/*
 * do_list - {"revision": R, "items": [...], "next": dbid}: objects in dbid
 * order after the cursor; "next" is there when more may follow.
 */
static void
do_list(struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, const struct grants *g)
{
	const struct cobj *const	*v;
	struct filter			 fs[FILTERS_MAX];
	char				*buf = NULL;
	size_t				 len = 0, n, i;
	json_int_t			 after, last = 0;
	int				 limit, nf, count = 0;
	FILE				*f;

	if (!access_any(g, cfg_type_kind(t), RIGHT_READ)) {
		forbidden(c, RIGHT_READ, t);
		return;
	}
	if (list_params(c, r, t, &limit, &after, fs, &nf) == -1)
		return;
	v = cache_list(cfg_type_kind(t), &n);
	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	fprintf(f, "{\"revision\":%lld,\"items\":[", (long long)revision);
	for (i = cache_after(cfg_type_kind(t), after); i < n; i++) {
		if (!matches(t, v[i], fs, nf) || !access_can(g,
		    cfg_type_kind(t), v[i]->dbid, RIGHT_READ))
			continue;
		if (count == limit)
			break;
		if (count++ > 0)
			fputc(',', f);
		fwrite(v[i]->text, 1, v[i]->len, f);
		last = v[i]->dbid;
	}
	fputc(']', f);
	if (i < n)
		fprintf(f, ",\"next\":%lld", (long long)last);
	fputc('}', f);
	if (fclose(f) != 0)
		fatal("list");
	reply_json(c, 200, NULL, buf, len);
	free(buf);
}

/* lookup - the object at dbid if it is of type t, else answer 404 */
static const struct cobj *
lookup(struct http_conn *c, const struct cfg_type *t, json_int_t dbid)
{
	const struct cobj	*o = cache_get(dbid);

	if (o == NULL || o->kind != (int)cfg_type_kind(t)) {
		reply_error(c, 404, "NotFound", NULL, "no %s with dbid %lld",
		    cfg_type_name(t), (long long)dbid);
		return NULL;
	}
	return o;
}

/* do_changes - GET /v1/changes?since=R[&wait=S][&limit=N] */
static void
do_changes(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	const char	*v2;
	size_t		 alen;
	json_int_t	 since = 0, n = 0;
	int		 wait_s, limit;

	if (number_param(c, r, "since", 0, CFG_DBID_MAX, &since) == -1 ||
	    number_param(c, r, "wait", 0, WAIT_MAX_S, &n) == -1)
		return;
	wait_s = (int)n;
	n = CHANGES_LIMIT;
	if (number_param(c, r, "limit", 1, CHANGES_LIMIT, &n) == -1)
		return;
	limit = (int)n;
	if ((v2 = http_header(r, "Accept", &alen)) != NULL && alen >= 20 &&
	    memmem(v2, alen, "application/x-ndjson", 20) != NULL)
		stream_start(c, who, since);
	else if (wait_s > 0 && since >= revision)
		park(c, 1, since, 0, 200, limit, wait_s, who);
	else
		changes_query(c, who, since, limit);
}

/* ---- writes ---- */

/* revoked - the principal's tokens are gone: answer once cached */
static void
revoked(int ok, void *arg)
{
	struct revoking	*r = arg;

	busy_jobs--;
	park(r->conn, 0, r->revision, r->dbid, r->status, 0, WRITE_WAIT_S,
	    NULL);
	/* The cache may have caught up meanwhile. */
	if (!dying)
		wake();
	free(r);
}

/*
 * revoke_tokens - a committed write changed or cleared the password or
 * secret of a principal, or deleted it: end its tokens before answering,
 * so that once the client has its answer no instance takes the old ones.
 * If Redis cannot be asked, the answer goes anyway (the write is
 * committed), and auth tries again in the background.
 */
static void
revoke_tokens(struct http_conn *c, json_int_t rev, json_int_t dbid,
    int status, json_int_t principal)
{
	struct revoking	*r = xcalloc(1, sizeof(*r));

	r->conn = c;
	r->revision = rev;
	r->dbid = dbid;
	r->status = status;
	busy_jobs++;
	auth_revoke(auth, principal, worker_conf()->workers[WORKER_CONFIG].
	    token_ttl, revoked, r);
}

/* wrote - the write committed (or not): announce it and wait for it */
static void
wrote(enum store_rc rc, json_int_t rev, json_int_t dbid, const char *detail,
    void *arg)
{
	struct write_ctx	*w = arg;
	struct http_conn	*c = w->conn;
	int			 status = w->status, if_match = w->if_match;
	json_int_t		 revoke = w->revoke;

	if (w->dbid != 0)
		dbid = w->dbid;
	free(w);
	switch (rc) {
	case STORE_OK:
		rds_command(pub, NULL, NULL, "PUBLISH %s %lld", channel,
		    (long long)rev);
		if (revoke != 0)
			revoke_tokens(c, rev, dbid, status, revoke);
		else
			park(c, 0, rev, dbid, status, 0, WRITE_WAIT_S, NULL);
		cfgfollow_poke(follow);
		return;
	case STORE_DUPLICATE:
		reply_error(c, 409, "Duplicate", NULL, "an object of this type "
		    "with the same name (natural key) exists");
		return;
	case STORE_STALE:
		reply_error(c, if_match ? 412 : 409, if_match ?
		    "PreconditionFailed" : "VersionMismatch", NULL, "%s",
		    detail);
		return;
	case STORE_REFERENCED:
		reply_error(c, 409, "Referenced", NULL, "a reference changed "
		    "meanwhile: %s", detail);
		return;
	case STORE_UNAVAILABLE:
		reply_error(c, 503, "Unavailable", NULL, "PostgreSQL is "
		    "unavailable; nothing was written, retry later");
		return;
	case STORE_CONFLICT:
		log_warnx("write aborted on all %d tries (%s); answering 503",
		    STORE_TRIES, detail);
		reply_error(c, 503, "Conflict", NULL, "the write collided with "
		    "concurrent writes: PostgreSQL aborted each of its %d tries "
		    "(deadlock or serialization failure); nothing was written, "
		    "retry later", STORE_TRIES);
		return;
	case STORE_FAILED:
		log_warnx("write failed: %s", detail);
		reply_error(c, 500, "Internal", NULL, "the write failed; "
		    "nothing was written");
		return;
	}
}

/* parse_body - the request body as a JSON object, else answer 400 */
static json_t *
parse_body(struct http_conn *c, const struct http_request *r)
{
	json_error_t	 e;
	json_t		*j;

	j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL) {
		reply_error(c, 400, "BadJson", NULL, "malformed JSON at line "
		    "%d, column %d: %s", e.line, e.column, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		reply_error(c, 400, "WrongType", NULL, "the body must be a "
		    "JSON object");
		return NULL;
	}
	return j;
}

struct refcheck {
	json_int_t	*v;
	size_t		 n;
	char		 field[128];
	int		 bad;
	enum cfg_kind	 want;
	json_int_t	 dbid;
};

static void
refcheck_cb(const char *field, enum cfg_kind target, json_int_t dbid,
    void *arg)
{
	struct refcheck		*rc = arg;
	const struct cobj	*o = cache_get(dbid);

	if (!rc->bad && (o == NULL || o->kind != (int)target)) {
		rc->bad = 1;
		snprintf(rc->field, sizeof(rc->field), "%s", field);
		rc->want = target;
		rc->dbid = dbid;
	}
	rc->v = xrealloc(rc->v, (rc->n + 1) * sizeof(*rc->v));
	rc->v[rc->n++] = dbid;
}

struct prepared {
	struct store_write	 w;
	struct refcheck		 refs;
	char			*key;
	char			*fields[4];
	char			*hashes[4];
};

static void
prepared_clear(struct prepared *p)
{
	size_t	i;

	free(p->refs.v);
	free(p->key);
	for (i = 0; i < p->w.nsecrets; i++) {
		free(p->fields[i]);
		if (p->hashes[i] != NULL)
			explicit_bzero(p->hashes[i], strlen(p->hashes[i]));
		free(p->hashes[i]);
	}
	json_decref(p->w.data);
	memset(p, 0, sizeof(*p));
}

/* take_secrets - take write-only fields out of obj, to be hashed */
static int
take_secrets(struct http_conn *c, const struct cfg_type *t, json_t *obj,
    struct prepared *p)
{
	const char	*k;
	json_t		*v;
	void		*tmp;

	json_object_foreach_safe(obj, tmp, k, v) {
		if (!cfg_is_write_only(t, k))
			continue;
		/* The plain value, hashed off the loop before the write. */
		/* null clears the secret: a NULL hash tells the store. */
		if ((json_is_string(v) || json_is_null(v)) &&
		    p->w.nsecrets < NELEM(p->fields)) {
			p->hashes[p->w.nsecrets] = json_is_null(v) ? NULL :
			    xstrdup(json_string_value(v));
			p->fields[p->w.nsecrets++] = xstrdup(k);
		}
		json_object_del(obj, k);
	}
	p->w.secret_fields = (const char **)p->fields;
	p->w.secret_hashes = (const char **)p->hashes;
	return 0;
}

/*
 * prepare - the checks every create and update shares: the object is
 * valid (validated by the caller), its references exist, its secrets are
 * hashed; fills p for store_write.  Answers and returns -1 on failure.
 */
static int
prepare(struct http_conn *c, const struct cfg_type *t, json_t *obj,
    struct prepared *p)
{
	p->w.type = cfg_type_name(t);
	p->w.data = obj;
	cfg_refs(t, obj, refcheck_cb, &p->refs);
	if (p->refs.bad) {
		reply_error(c, 422, "BadReference", p->refs.field, "%s: no %s "
		    "with dbid %lld", p->refs.field,
		    cfg_type_name(cfg_type_at(p->refs.want)),
		    (long long)p->refs.dbid);
		return -1;
	}
	p->w.refs = p->refs.v;
	p->w.nrefs = p->refs.n;
	if (take_secrets(c, t, obj, p) == -1)
		return -1;
	if ((p->key = cfg_key(t, obj)) == NULL) {
		reply_error(c, 422, "Missing", NULL, "the object has no name "
		    "(natural key)");
		return -1;
	}
	p->w.key = p->key;
	return 0;
}

/* A write being prepared: its operations, and how to answer. */
struct job {
	struct http_conn	*conn;
	struct prepared		*p;
	size_t			 n;
	int			 status;
	int			 if_match;
	json_int_t		 dbid;
	int			 hash_failed;
};

static struct job *
job_new(struct http_conn *c, size_t n, int status, int if_match,
    json_int_t dbid)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->conn = c;
	j->p = xcalloc(n, sizeof(*j->p));
	j->n = n;
	j->status = status;
	j->if_match = if_match;
	j->dbid = dbid;
	return j;
}

static void
job_free(struct job *j)
{
	size_t	i;

	for (i = 0; i < j->n; i++)
		prepared_clear(&j->p[i]);
	free(j->p);
	free(j);
}

/*
 * ends_tokens - whether an operation ends its object's tokens: it sets or
 * clears a write-only field (only a Person's password and an
 * Application's secret are), or deletes a Person or an Application.  At
 * most one operation of a write does: the update, or the delete at the
 * end of a cascade (the referrers it changes keep their secrets).
 */
static int
ends_tokens(const struct store_write *w)
{
	const struct cfg_type	*t = cfg_type_by_name(w->type,
				    strlen(w->type));
	int			 k = t != NULL ? (int)cfg_type_kind(t) : -1;

	if (k != CFG_PERSON && k != CFG_APPLICATION)
		return 0;
	return (w->op == STORE_UPDATE && w->nsecrets > 0) ||
	    w->op == STORE_DELETE;
}

/* job_store - hand the prepared operations to the store */
static void
job_store(struct job *j)
{
	struct write_ctx	*w = xcalloc(1, sizeof(*w));
	struct store_write	*ops = xcalloc(j->n, sizeof(*ops));
	size_t			 i;

	for (i = 0; i < j->n; i++) {
		ops[i] = j->p[i].w;
		if (ends_tokens(&ops[i]))
			w->revoke = ops[i].dbid;
	}
	w->conn = j->conn;
	w->status = j->status;
	w->if_match = j->if_match;
	w->dbid = j->dbid;
	if (store_write(pg, ops, j->n, wrote, w) == -1) {
		free(w);
		reply_error(j->conn, 503, "Unavailable", NULL, "too many "
		    "writes waiting for PostgreSQL; retry later");
	}
	free(ops);
	job_free(j);
}

/* hash_job - on a pool thread: replace every plain secret by its hash */
static void
hash_job(void *arg)
{
	struct job	*j = arg;
	size_t		 i, k;
	char		*h;

	for (i = 0; i < j->n; i++)
		for (k = 0; k < j->p[i].w.nsecrets; k++) {
			if (j->p[i].hashes[k] == NULL)
				continue;	/* a secret being cleared */
			if ((h = auth_hash(j->p[i].hashes[k])) == NULL)
				j->hash_failed = 1;
			explicit_bzero(j->p[i].hashes[k],
			    strlen(j->p[i].hashes[k]));
			free(j->p[i].hashes[k]);
			j->p[i].hashes[k] = h != NULL ? h : xstrdup("*");
		}
}

static void
hashed(void *arg)
{
	struct job	*j = arg;

	busy_jobs--;
	if (offload_cancelled()) {
		reply_error(j->conn, 503, "Unavailable", NULL, "the worker is "
		    "stopping; nothing was written, retry later");
		job_free(j);
	} else if (j->hash_failed) {
		reply_error(j->conn, 500, "Internal", NULL, "a secret could "
		    "not be hashed; nothing was written");
		job_free(j);
	} else
		job_store(j);
}

/* job_run - hash secrets off the loop if there are any, then store */
static void
job_run(struct job *j)
{
	size_t	i;

	size_t	k;

	for (i = 0; i < j->n; i++)
		for (k = 0; k < j->p[i].w.nsecrets; k++)
			if (j->p[i].hashes[k] != NULL) {
				busy_jobs++;
				offload(hash_job, hashed, j);
				return;
			}
	job_store(j);
}

/* do_create - POST /v1/{collection} */
static void
do_create(struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, const struct grants *g)
{
	struct cfg_error	 e;
	struct job		*j;
	json_t			*obj;

	if (cfg_type_kind(t) == CFG_TENANT) {
		not_allowed(c, "GET");
		return;
	}
	if (!access_can(g, cfg_type_kind(t), 0, RIGHT_CREATE)) {
		forbidden(c, RIGHT_CREATE, t);
		return;
	}
	if ((obj = parse_body(c, r)) == NULL)
		return;
	if (cfg_validate(t, obj, 1, 0, 0, &e) == -1) {
		json_decref(obj);
		reply_cfg_error(c, &e);
		return;
	}
	j = job_new(c, 1, 201, 0, 0);
	j->p[0].w.op = STORE_CREATE;
	if (prepare(c, t, obj, &j->p[0]) == 0)
		job_run(j);
	else
		job_free(j);
}

/* if_match - the version an If-Match header asks for, 0 if none */
static json_int_t
if_match(const struct http_request *r)
{
	const char	*v;
	size_t		 len;

	if ((v = http_header(r, "If-Match", &len)) == NULL)
		return 0;
	if (len == 1 && v[0] == '*')
		return 0;	/* any version of an object that exists */
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
		v++;
		len -= 2;
	}
	return parse_dbid(v, len) > 0 ? parse_dbid(v, len) : -1;
}

/*
 * target - the object a change or delete is for, if it exists, the
 * principal has the right, and If-Match (want, 0 if absent) agrees;
 * else answer and return NULL.
 */
static const struct cobj *
target(struct http_conn *c, const struct cfg_type *t, json_int_t dbid,
    json_int_t want, int right, const struct grants *g)
{
	const struct cobj	*o;

	if ((o = lookup(c, t, dbid)) == NULL)
		return NULL;
	if (!access_can(g, cfg_type_kind(t), dbid, right)) {
		forbidden(c, right, t);
		return NULL;
	}
	if (want != 0 && want != o->version) {
		reply_error(c, 412, "PreconditionFailed", NULL, "If-Match "
		    "asks for version %lld; the object is at version %lld",
		    (long long)want, (long long)o->version);
		return NULL;
	}
	return o;
}

/*
 * keep_cleared_secrets - a merge patch drops null members, but a null
 * write-only field in a PATCH means "clear it": put it back for the store.
 */
static void
keep_cleared_secrets(const struct cfg_type *t, const json_t *patch,
    json_t *obj)
{
	const char	*k;
	json_t		*v;

	if (obj == NULL)
		return;
	json_object_foreach((json_t *)patch, k, v)
		if (json_is_null(v) && cfg_is_write_only(t, k))
			json_object_set_new(obj, k, json_null());
}

/* folder_cycle - would folder dbid, placed under obj's parent, loop? */
static int
folder_cycle(json_int_t dbid, const json_t *obj)
{
	const struct cobj	*o;
	json_int_t		 p;
	size_t			 steps = cache_size();

	p = json_integer_value(json_object_get(obj, "parent"));
	while (p != 0 && steps-- > 0) {
		if (p == dbid)
			return 1;
		if ((o = cache_get(p)) == NULL)
			return 0;
		p = json_integer_value(json_object_get(o->tree, "parent"));
	}
	return 0;
}

/* do_update - PUT (replace) or PATCH (merge patch) of one object */
static void
do_update(struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, json_int_t dbid, int patch,
    const struct grants *g)
{
	const struct cobj	*o;
	struct cfg_error	 e;
	struct job		*j;
	json_t			*body, *obj;
	json_int_t		 want = if_match(r);

	if ((o = target(c, t, dbid, want, RIGHT_UPDATE, g)) == NULL)
		return;
	if ((body = parse_body(c, r)) == NULL)
		return;
	if (patch) {
		json_t	*cur = cobj_json(o);

		obj = cfg_merge_patch(cur, body, &e);
		json_decref(cur);
		keep_cleared_secrets(t, body, obj);
		json_decref(body);
	} else
		obj = body;
	if (obj == NULL || cfg_validate(t, obj, 0, dbid, o->version, &e) ==
	    -1) {
		json_decref(obj);
		reply_cfg_error(c, &e);
		return;
	}
	if (cfg_type_kind(t) == CFG_FOLDER && folder_cycle(dbid, obj)) {
		json_decref(obj);
		reply_error(c, 422, "BadValue", "parent", "parent: a folder "
		    "cannot be placed inside itself or its own subfolders");
		return;
	}
	j = job_new(c, 1, 200, want != 0, dbid);
	j->p[0].w.op = STORE_UPDATE;
	j->p[0].w.dbid = dbid;
	j->p[0].w.version = o->version;
	if (prepare(c, t, obj, &j->p[0]) == 0)
		job_run(j);
	else
		job_free(j);
}

/* ---- delete ---- */

struct referrer {
	const struct cobj	*o;
	char			 field[128];
};

struct referrers {
	struct referrer		*v;
	size_t			 n;
	json_int_t		 target;
	int			 hit;
	char			 field[128];
};

static void
referrer_cb(const char *field, enum cfg_kind kind, json_int_t dbid,
    void *arg)
{
	struct referrers	*rs = arg;

	if (dbid == rs->target && !rs->hit) {
		rs->hit = 1;
		snprintf(rs->field, sizeof(rs->field), "%s", field);
	}
}

/* find_referrers - every cached object that refers to target */
static void
find_referrers(const struct cobj *target, struct referrers *rs)
{
	const struct cobj *const	*v;
	const struct cfg_type		*t;
	json_t				*obj;
	size_t				 n, i;
	int				 k;

	rs->target = target->dbid;
	for (k = 0; k < CFG_NTYPES; k++) {
		t = cfg_type_at(k);
		if (!cfg_type_refers(t, target->kind))
			continue;
		v = cache_list(k, &n);
		for (i = 0; i < n; i++) {
			if (!cobj_refers(v[i], target->dbid))
				continue;
			/* Which field: parsed for the few that refer. */
			obj = cobj_json(v[i]);
			rs->hit = 0;
			cfg_refs(t, obj, referrer_cb, rs);
			json_decref(obj);
			rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
			rs->v[rs->n].o = v[i];
			memcpy(rs->v[rs->n].field, rs->field,
			    sizeof(rs->field));
			rs->n++;
		}
	}
}

/* reply_referenced - 409 listing who refers to the object */
static void
reply_referenced(struct http_conn *c, const struct cobj *o,
    const struct referrers *rs, const char *why)
{
	json_t	*j, *list = json_array();
	char	*text;
	size_t	 i;

	for (i = 0; i < rs->n && i < 100; i++)
		json_array_append_new(list, json_pack("{s:s, s:I, s:s}",
		    "type", cfg_type_name(cfg_type_at(rs->v[i].o->kind)),
		    "dbid", rs->v[i].o->dbid, "field", rs->v[i].field));
	j = json_pack("{s:s, s:s, s:I, s:o}", "error", "Referenced",
	    "message", why, "count", (json_int_t)rs->n, "referrers", list);
	text = json_dumps(j, JSON_COMPACT);
	reply_json(c, 409, NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

/*
 * cascade - updates that cut every reference to o, then its delete; the
 * principal needs the update right on every referrer.
 */
static int
cascade(struct http_conn *c, const struct cobj *o, struct referrers *rs,
    struct prepared *p, const struct grants *g)
{
	const struct cfg_type	*t;
	struct cfg_error	 e;
	json_t			*obj;
	size_t			 i;

	for (i = 0; i < rs->n; i++) {
		t = cfg_type_at(rs->v[i].o->kind);
		if (!access_can(g, rs->v[i].o->kind, rs->v[i].o->dbid,
		    RIGHT_UPDATE)) {
			forbidden(c, RIGHT_UPDATE, t);
			return -1;
		}
		obj = cobj_json(rs->v[i].o);
		if (cfg_unref(t, obj, o->kind, o->dbid, &e) == -1) {
			json_decref(obj);
			reply_error(c, 409, "RequiredRef", rs->v[i].field,
			    "%s %lld needs this object in %s: delete or change "
			    "it first", cfg_type_name(t),
			    (long long)rs->v[i].o->dbid, rs->v[i].field);
			return -1;
		}
		p[i].w.op = STORE_UPDATE;
		p[i].w.dbid = rs->v[i].o->dbid;
		p[i].w.version = rs->v[i].o->version;
		if (prepare(c, t, obj, &p[i]) == -1)
			return -1;
	}
	return 0;
}

/* do_delete - DELETE, refused while referenced unless ?cascade=true */
static void
do_delete(struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, json_int_t dbid, const struct grants *g)
{
	const struct cobj	*o;
	struct referrers	 rs;
	struct job		*j;
	char			 v[8];
	json_int_t		 want = if_match(r);
	int			 cas;

	memset(&rs, 0, sizeof(rs));
	if (cfg_type_kind(t) == CFG_TENANT) {
		not_allowed(c, "GET, PUT, PATCH");
		return;
	}
	if ((o = target(c, t, dbid, want, RIGHT_DELETE, g)) == NULL)
		return;
	cas = http_query(r, "cascade", v, sizeof(v)) == 1 &&
	    strcmp(v, "true") == 0;
	find_referrers(o, &rs);
	if (rs.n > 0 && !cas)
		reply_referenced(c, o, &rs, "other objects refer to this one; "
		    "change them first or delete with ?cascade=true");
	else if (rs.n >= 63)
		reply_referenced(c, o, &rs, "too many referrers for one "
		    "cascade (at most 62); change some of them first");
	else {
		j = job_new(c, rs.n + 1, 204, want != 0, dbid);
		if (cascade(c, o, &rs, j->p, g) == 0) {
			j->p[rs.n].w.op = STORE_DELETE;
			j->p[rs.n].w.type = cfg_type_name(t);
			j->p[rs.n].w.dbid = dbid;
			j->p[rs.n].w.version = o->version;
			job_run(j);
		} else
			job_free(j);
	}
	free(rs.v);
}

/* ---- import ---- */

/* imported - the import ended: answer once the cache holds it */
static void
imported(int status, json_t *answer, json_int_t rev, void *arg)
{
	struct http_conn	*c = arg;
	struct parked		*p;
	char			*text = json_dumps(answer, JSON_COMPACT);

	json_decref(answer);
	if (status != 200 || dying) {
		reply_json(c, dying ? 503 : status, NULL, text, strlen(text));
		free(text);
		return;
	}
	rds_command(pub, NULL, NULL, "PUBLISH %s %lld", channel,
	    (long long)rev);
	park(c, 0, rev, 0, 200, 0, WRITE_WAIT_S, NULL);
	p = TAILQ_LAST(&parked, parked_list);
	p->answer = text;
	cfgfollow_poke(follow);
}

/* do_import - POST /v1/import (import.c) */
static void
do_import(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	const struct conf	*cf = worker_conf();

	if (import_start(base, cf->pg_conninfo, cf->pg_password, r->body,
	    r->body_len, who, imported, c) == -1)
		reply_error(c, 409, "ImportRunning", NULL, "an import is "
		    "running on this worker; retry when it is done");
}

/* ---- export ---- */

/*
 * do_export - GET /v1/export: every object the principal may read, by
 * collection, at one revision: {"revision": R, "objects": {...}}.
 */
static void
do_export(struct http_conn *c, const struct grants *g)
{
	const struct cobj *const	*v;
	char				*buf = NULL;
	size_t				 len = 0, n, i;
	int				 k, first;
	FILE				*f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	fprintf(f, "{\"revision\":%lld,\"objects\":{", (long long)revision);
	for (k = 0; k < CFG_NTYPES; k++) {
		fprintf(f, "%s\"%s\":[", k > 0 ? "," : "",
		    cfg_type_collection(cfg_type_at(k)));
		v = cache_list(k, &n);
		for (i = 0, first = 1; i < n; i++) {
			if (!access_can(g, k, v[i]->dbid, RIGHT_READ))
				continue;
			if (!first)
				fputc(',', f);
			first = 0;
			fwrite(v[i]->text, 1, v[i]->len, f);
		}
		fputc(']', f);
	}
	fputs("}}", f);
	if (fclose(f) != 0)
		fatal("export");
	reply_json(c, 200, "Content-Disposition: attachment; "
	    "filename=\"tenant-export.json\"\r\n", buf, len);
	free(buf);
}

/* ---- tokens ---- */

struct token_req {
	struct http_conn	*conn;
	struct principal	 who;
	char			*secret;
	char			*hash;
	int			 ok;
	unsigned		 ttl;
	char			 token[AUTH_TOKEN_LEN + 1];
};

static void
token_req_free(struct token_req *t)
{
	if (t->secret != NULL) {
		explicit_bzero(t->secret, strlen(t->secret));
		free(t->secret);
	}
	free(t->hash);
	explicit_bzero(t->token, sizeof(t->token));
	free(t);
}

/* secret_field - the write-only field a principal logs in with */
static const char *
secret_field(const struct principal *who)
{
	return who->kind == PRINCIPAL_PERSON ? "password" : "secret";
}

/* token_answer - 200 with the token that was issued */
static void
token_answer(struct token_req *t)
{
	json_t	*j;
	char	*text;

	j = json_pack("{s:s, s:s, s:i, s:{s:s, s:I, s:s}}", "token",
	    t->token, "tokenType", "Bearer", "expiresIn", (int)t->ttl,
	    "principal", "kind", t->who.kind == PRINCIPAL_PERSON ?
	    "person" : "application", "dbid", t->who.dbid, "name",
	    t->who.name);
	text = json_dumps(j, JSON_COMPACT);
	reply_json(t->conn, 200, "Cache-Control: no-store\r\n", text,
	    strlen(text));
	free(text);
	json_decref(j);
}

/*
 * rechecked - the hash read again after the token was stored.  If the
 * password changed since it was checked, the change's revocation may have
 * run before the token was stored, and missed it: drop it here.  Either
 * the revocation saw the token, or this read sees the new hash.
 */
static void
rechecked(const char *hash, int ok, void *arg)
{
	struct token_req	*t = arg;

	busy_jobs--;
	if (ok && hash != NULL && strcmp(hash, t->hash) == 0) {
		token_answer(t);
		token_req_free(t);
		return;
	}
	auth_drop(auth, t->who.dbid, t->token);
	if (!ok)
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "unavailable; retry later");
	else {
		log_info("token refused for %s: its %s changed meanwhile",
		    t->who.name, secret_field(&t->who));
		reply_error(t->conn, 401, "Unauthorized", NULL, "invalid "
		    "credentials");
	}
	token_req_free(t);
}

/* issued_cb - the token is stored: check the secret did not change */
static void
issued_cb(const char *token, void *arg)
{
	struct token_req	*t = arg;

	if (token == NULL) {
		busy_jobs--;
		reply_error(t->conn, 503, "Unavailable", NULL, "the token "
		    "cannot be stored now (Redis unavailable); retry later");
		token_req_free(t);
		return;
	}
	snprintf(t->token, sizeof(t->token), "%s", token);
	if (dying || store_secret(pg, t->who.dbid, secret_field(&t->who),
	    rechecked, t) == -1) {
		busy_jobs--;
		auth_drop(auth, t->who.dbid, t->token);
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "busy; retry later");
		token_req_free(t);
	}
}

/* verify_job - on a pool thread: the slow hash comparison */
static void
verify_job(void *arg)
{
	struct token_req	*t = arg;

	t->ok = t->hash != NULL && auth_verify(t->secret, t->hash);
}

static void
verified(void *arg)
{
	struct token_req	*t = arg;

	busy_jobs--;
	if (offload_cancelled()) {
		reply_error(t->conn, 503, "Unavailable", NULL, "the worker is "
		    "stopping; retry later");
		token_req_free(t);
	} else if (!t->ok) {
		log_info("token refused for %s", t->who.name);
		reply_error(t->conn, 401, "Unauthorized", NULL, "invalid "
		    "credentials");
		token_req_free(t);
	} else {
		busy_jobs++;
		auth_issue(auth, &t->who, t->ttl, issued_cb, t);
	}
}

/* hash_cb - the stored hash arrived: compare off the loop */
static void
hash_cb(const char *hash, int ok, void *arg)
{
	struct token_req	*t = arg;

	if (!ok) {
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "unavailable; retry later");
		token_req_free(t);
		return;
	}
	t->hash = hash != NULL ? xstrdup(hash) : NULL;
	busy_jobs++;
	offload(verify_job, verified, t);
}

/*
 * find_principal - an enabled Person by userName, or Application by name:
 * the natural keys of their types.
 */
static const struct cobj *
find_principal(enum cfg_kind k, const char *name)
{
	const struct cobj	*o = cache_find(k, name);

	return o != NULL && o->enabled ? o : NULL;
}

/*
 * do_token - POST /v1/auth/token with {"userName", "password"} or
 * {"application", "secret"}: a bearer token with an expiry.
 */
static void
do_token(struct http_conn *c, const struct http_request *r)
{
	const struct cobj	*o = NULL;
	struct token_req	*t;
	const char		*user = NULL, *app = NULL, *secret = NULL;
	json_t			*body;
	int			 person;

	if ((body = parse_body(c, r)) == NULL)
		return;
	if (json_unpack(body, "{s:s, s:s !}", "userName", &user, "password",
	    &secret) != 0 && json_unpack(body, "{s:s, s:s !}", "application",
	    &app, "secret", &secret) != 0) {
		json_decref(body);
		reply_error(c, 422, "BadValue", NULL, "send {\"userName\", "
		    "\"password\"} or {\"application\", \"secret\"}");
		return;
	}
	person = user != NULL;
	o = find_principal(person ? CFG_PERSON : CFG_APPLICATION,
	    person ? user : app);
	if (o == NULL) {
		json_decref(body);
		reply_error(c, 401, "Unauthorized", NULL, "invalid credentials");
		return;
	}
	t = xcalloc(1, sizeof(*t));
	t->conn = c;
	t->who.kind = person ? PRINCIPAL_PERSON : PRINCIPAL_APPLICATION;
	t->who.dbid = o->dbid;
	snprintf(t->who.name, sizeof(t->who.name), "%s", person ? user : app);
	t->secret = xstrdup(secret);
	t->ttl = worker_conf()->workers[WORKER_CONFIG].token_ttl;
	json_decref(body);
	if (store_secret(pg, o->dbid, secret_field(&t->who), hash_cb,
	    t) == -1) {
		reply_error(c, 503, "Unavailable", NULL, "PostgreSQL is busy; "
		    "retry later");
		token_req_free(t);
	}
}

/* do_whoami - GET /v1/whoami: the principal and its permissions */
static void
do_whoami(struct http_conn *c, const struct principal *who,
    const struct grants *g)
{
	static const char *const kinds[] = { "admin", "person",
	    "application" };
	json_t	*j;
	char	*text;

	j = json_pack("{s:s, s:s, s:o}", "kind", kinds[who->kind], "name",
	    who->name, "permissions", access_describe(g));
	if (who->kind != PRINCIPAL_ADMIN)
		json_object_set_new(j, "dbid", json_integer(who->dbid));
	text = json_dumps(j, JSON_COMPACT);
	reply_json(c, 200, NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

/* ---- routing ---- */

/* route - /v1/{collection}[/{dbid}] */
static void
route(struct http_conn *c, const struct http_request *r,
    const struct grants *g)
{
	const struct cfg_type	*t;
	const char		*p = r->target + 4, *end = r->target +
				    r->path_len, *slash;
	json_int_t		 dbid = 0;
	const struct cobj	*o;

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
		do_list(c, r, t, g);
	} else if (dbid == 0 && http_method_is(r, "POST")) {
		http_conn_set_label(c, R_CREATE);
		do_create(c, r, t, g);
	} else if (dbid != 0 && http_method_is(r, "GET")) {
		http_conn_set_label(c, R_GET);
		if ((o = lookup(c, t, dbid)) == NULL)
			return;
		if (access_can(g, o->kind, dbid, RIGHT_READ))
			reply_object(c, 200, o);
		else
			forbidden(c, RIGHT_READ, t);
	} else if (dbid != 0 && http_method_is(r, "PUT")) {
		http_conn_set_label(c, R_REPLACE);
		do_update(c, r, t, dbid, 0, g);
	} else if (dbid != 0 && http_method_is(r, "PATCH")) {
		http_conn_set_label(c, R_PATCH);
		do_update(c, r, t, dbid, 1, g);
	} else if (dbid != 0 && http_method_is(r, "DELETE")) {
		http_conn_set_label(c, R_DELETE);
		do_delete(c, r, t, dbid, g);
	} else
		not_allowed(c, dbid == 0 ? "GET, POST" :
		    "GET, PUT, PATCH, DELETE");
}

/* dispatch - an authenticated request */
static void
dispatch(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct grants	g;

	/* Authenticated: never pushed out to make room for a stranger. */
	http_conn_trust(c);
	access_grants(who, &g);
	if (http_path_is(r, "/v1/whoami")) {
		if (http_method_is(r, "GET"))
			do_whoami(c, who, &g);
		else
			not_allowed(c, "GET");
	}
	else if (http_path_is(r, "/v1/import")) {
		if (http_method_is(r, "POST"))
			do_import(c, r, who);
		else
			not_allowed(c, "POST");
	} else if (http_path_is(r, "/v1/export")) {
		if (http_method_is(r, "GET"))
			do_export(c, &g);
		else
			not_allowed(c, "GET");
	}
	else if (http_path_is(r, "/v1/changes")) {
		http_conn_set_label(c, R_CHANGES);
		if (http_method_is(r, "GET"))
			do_changes(c, r, who);
		else
			not_allowed(c, "GET");
	} else
		route(c, r, &g);
	access_clear(&g);
}

/* What to do with a request once its token is good. */
typedef void	 authed_fn(struct http_conn *, const struct http_request *,
		    const struct principal *);

struct authing {
	struct http_conn	*conn;
	struct http_request	*req;	/* a copy: the original is gone */
	authed_fn		*then;
};

/*
 * still_valid - the principal behind a token must still exist and be
 * enabled: disabling or deleting a person ends its tokens at once.
 */
static int
still_valid(const struct principal *who)
{
	const struct cobj	*o = cache_get(who->dbid);

	return o != NULL && o->enabled && o->kind == (who->kind ==
	    PRINCIPAL_PERSON ? CFG_PERSON : CFG_APPLICATION);
}

/* authed - the token check answered */
static void
authed(const struct principal *who, int unavailable, void *arg)
{
	struct authing	*a = arg;

	if (dying)
		reply_error(a->conn, 503, "Unavailable", NULL, "stopping");
	else if (who != NULL && !still_valid(who))
		reply_error(a->conn, 401, "Unauthorized", NULL, "the token's "
		    "%s is disabled or deleted", who->kind == PRINCIPAL_PERSON ?
		    "person" : "application");
	else if (who != NULL)
		a->then(a->conn, a->req, who);
	else if (unavailable)
		reply_error(a->conn, 503, "Unavailable", NULL, "tokens cannot "
		    "be checked now (Redis unavailable); retry later");
	else
		reply_error(a->conn, 401, "Unauthorized", NULL, "invalid or "
		    "expired token");
	free(a->req);
	free(a);
}

/*
 * admit - what every request passes before its token is looked at;
 * 0 when it was answered
 */
static int
admit(struct http_conn *c, const struct http_request *r)
{
	metric_set(m_clients, http_server_clients(http));
	if (r->path_len < 4 || memcmp(r->target, "/v1/", 4) != 0) {
		reply_error(c, 404, "NotFound", NULL, "the API lives under /v1/");
		return 0;
	}
	if (dying) {
		reply_error(c, 503, "Unavailable", NULL, "the worker is "
		    "stopping; retry later");
		return 0;
	}
	if (!loaded) {
		reply_error(c, 503, "Unavailable", NULL, "the configuration is "
		    "not loaded yet (PostgreSQL unavailable?); retry later");
		return 0;
	}
	return 1;
}

/* authenticate - check the bearer token, then call then */
static void
authenticate(struct http_conn *c, const struct http_request *r,
    authed_fn *then)
{
	static const struct principal admin = { PRINCIPAL_ADMIN, 0, "admin" };
	struct authing	*a;
	const char	*v;
	size_t		 len;

	v = http_header(r, "Authorization", &len);
	if (v == NULL || len < 8 || strncasecmp(v, "Bearer ", 7) != 0) {
		reply_error(c, 401, "Unauthorized", NULL, "send "
		    "Authorization: Bearer <token>");
		return;
	}
	if (auth_is_admin(auth, v + 7, len - 7)) {
		then(c, r, &admin);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->conn = c;
	a->req = http_request_copy(r);
	a->then = then;
	v = http_header(a->req, "Authorization", &len);
	auth_check(auth, v + 7, len - 7, authed, a);
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

/*
 * head_authed - the head of a request with a body has a good token: let
 * the body come.  The whole request is checked again once it is in
 * (rights are those of that moment, and a long upload may outlive a
 * token).
 */
static void
head_authed(struct http_conn *c, const struct http_request *r,
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

/*
 * head - a request whose body is still to come: nothing unauthenticated
 * may make the worker read and hold a body (an import may be 256 MiB),
 * so its token, and for an import its right, are checked first.  Only a
 * token request, which has no token, is read at once, within max_body.
 */
static void
head(struct http_conn *c, const struct http_request *r, void *arg)
{
	if (!admit(c, r))
		return;
	if (http_path_is(r, "/v1/auth/token") && http_method_is(r, "POST"))
		http_continue(c);
	else
		authenticate(c, r, head_authed);
}

/* handle - every whole request: loaded?  authenticated?  then dispatch */
static void
handle(struct http_conn *c, const struct http_request *r, void *arg)
{
	if (!admit(c, r))
		return;
	if (http_path_is(r, "/v1/auth/token") && http_method_is(r, "POST"))
		do_token(c, r);
	else
		authenticate(c, r, dispatch);
}
