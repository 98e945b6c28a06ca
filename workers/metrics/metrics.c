/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics worker - serves the tenant's health and metrics on
 * workers.metrics.listen:
 *
 *   GET /metrics        every series of the shared registry, Prometheus text
 *   GET /healthz        200 while the master and the workers live
 *   GET /readyz         200 when every enabled worker is ready and
 *                       PostgreSQL and Redis answer, else 503 saying why
 *   GET /tenant/health  the same facts as JSON
 *
 * It reads the process table and the registry from shared memory, with no
 * round trip to the master or the other workers.  PostgreSQL and Redis are
 * probed from here once a second, on this worker's own connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "metrics_worker.h"
#include "pgc.h"
#include "rds.h"
#include "util.h"

#define PROBE_INTERVAL_US	1000000
#define PROBE_TIMEOUT_US	3000000
#define MASTER_STALE_US		5000000
#define IDLE_TIMEOUT_S		60.0

enum health { HEALTH_FAILED = 0, HEALTH_DEGRADED = 1, HEALTH_HEALTHY = 2 };

struct probe {
	const char	*name;
	int		 up;
	int		 in_flight;
	uint64_t	 sent_us;
};

struct worker_series {
	struct metric	*up;
	struct metric	*uptime;
	struct metric	*rss;
};

static int	 metrics_start(struct event_base *, const struct conf *, int);
static int	 metrics_reload_check(const struct conf *, char *, size_t);
static void	 metrics_reload_apply(const struct conf *, const struct conf *);
static void	 metrics_listen(int);
static void	 metrics_stop(void);
static void	 metrics_cleanup(void);

const struct worker_ops metrics_worker_ops = {
	metrics_start,
	metrics_reload_check,
	metrics_reload_apply,
	metrics_listen,
	metrics_stop,
	metrics_cleanup,
};

static struct event_base	*base;
static struct http_server	*http;
static struct pgc		*pg;
static struct rds		*redis;
static struct event		*ev_probe;
static struct probe		 pg_probe = { "postgres", 0, 0, 0 };
static struct probe		 redis_probe = { "redis", 0, 0, 0 };
static struct worker_series	 wseries[WORKER_MAX];
static struct metric		*m_health, *m_redis_state, *m_pg_up;
static struct metric		*m_master_uptime, *m_master_rss, *m_scrapes;
static struct metric		*m_clients;
static char			*render_buf;
static size_t			 render_cap;
static long			 page_size;

static void	handle(struct http_conn *, const struct http_request *,
		    void *);
static void	head_seen(struct http_conn *, const struct http_request *,
		    void *);
static void	on_probe(evutil_socket_t, short, void *);
static void	update_rss(void);

/* http_limits_of - this worker's HTTP limits from the configuration */
static struct http_limits
http_limits_of(const struct conf *c)
{
	struct http_limits	l = { 0 };

	/*
	 * A body up to this is read with its head (and refused with 405);
	 * one that comes later is refused from the head (head_seen).  The
	 * head and body deadlines are http.c's defaults.
	 */
	l.max_body = 65536;
	l.max_output = 4 << 20;
	l.max_clients = c->workers[WORKER_METRICS].max_clients;
	l.idle_timeout = IDLE_TIMEOUT_S;
	return l;
}

/* register_series - the gauges this worker computes at scrape time */
static void
register_series(const struct conf *c)
{
	char	labels[64];
	int	i;

	for (i = 0; i < WORKER_MAX; i++) {
		if (!c->workers[i].enabled || wseries[i].up != NULL)
			continue;
		snprintf(labels, sizeof(labels), "worker=\"%s\"",
		    conf_worker_name(i));
		wseries[i].up = metrics_gauge("tenantd_worker_up",
		    "1 when the worker is running and ready, else 0.", labels);
		wseries[i].uptime = metrics_gauge(
		    "tenantd_worker_uptime_seconds",
		    "Seconds since the worker process started.", labels);
		wseries[i].rss = metrics_gauge(
		    "tenantd_worker_resident_memory_bytes",
		    "Resident memory of the worker process.", labels);
	}
}

/* pg_state - pgc reports a connection change */
static void
pg_state(struct pgc *c, enum pgc_state st, void *arg)
{
	if (st == PGC_DOWN)
		pg_probe.up = 0;
}

/* redis_state - rds reports a connection change */
static void
redis_state(struct rds *r, enum rds_state st, void *arg)
{
	if (st == RDS_DOWN)
		redis_probe.up = 0;
}

/* connect_deps - this worker's own PostgreSQL and Redis connections */
static void
connect_deps(const struct conf *c)
{
	pg = pgc_new(base, c->pg_conninfo, c->pg_password, pg_state, NULL);
	if (pg == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	pgc_set_connect_timeout(pg, 2000);
	pgc_set_backoff(pg, 100, 2000);
	redis = rds_new_conf(base, &c->redis, redis_state, NULL);
	rds_set_connect_timeout(redis, 2000);
	rds_set_backoff(redis, 100, 2000);
}

/*
 * bench_series - TENANTD_BENCH_SERIES=N registers N extra series, so that
 * test/bench can measure a scrape of a realistically large registry before
 * the other workers exist to fill it.  Half are integer counters, half
 * fractional gauges, in families of 50.  Not for production.
 */
static void
bench_series(void)
{
	const char	*env = getenv("TENANTD_BENCH_SERIES");
	char		 name[64], labels[64];
	long		 n, i;

	if (env == NULL || (n = strtol(env, NULL, 10)) <= 0)
		return;
	if (n > 5000)
		n = 5000;
	for (i = 0; i < n; i++) {
		snprintf(labels, sizeof(labels), "queue=\"q%ld\",media=\"voice\"",
		    i);
		if (i % 2 == 0) {
			snprintf(name, sizeof(name),
			    "tenantd_bench_events_%ld_total", i / 100);
			metric_add(metrics_counter(name, "Benchmark series.",
			    labels), (double)(i * 7919 % 100000));
		} else {
			snprintf(name, sizeof(name),
			    "tenantd_bench_level_%ld", i / 100);
			metric_set(metrics_gauge(name, "Benchmark series.",
			    labels), (double)i / 7.0);
		}
	}
	log_info("registered %ld benchmark series", n);
}

/* metrics_start - listen, connect, and say we are ready */
static int
metrics_start(struct event_base *b, const struct conf *c, int fd)
{
	struct http_limits	 l = http_limits_of(c);
	struct timeval		 tv;

	base = b;
	page_size = sysconf(_SC_PAGESIZE);
	register_series(c);
	m_health = metrics_gauge("tenant_service_health_level",
	    "Tenant service health: 2 healthy, 1 degraded, 0 failed.", NULL);
	m_redis_state = metrics_gauge("tenant_redis_state",
	    "Local Redis connection: 2 connected, 0 not connected.", NULL);
	m_pg_up = metrics_gauge("tenantd_postgres_up",
	    "1 when PostgreSQL answers the health probe, else 0.", NULL);
	m_master_uptime = metrics_gauge("tenantd_master_uptime_seconds",
	    "Seconds since the master process started.", NULL);
	m_master_rss = metrics_gauge("tenantd_master_resident_memory_bytes",
	    "Resident memory of the master process.", NULL);
	m_scrapes = metrics_counter("tenantd_metrics_scrapes_total",
	    "Requests for /metrics.", NULL);
	m_clients = metrics_gauge("tenantd_metrics_clients",
	    "Open connections to the metrics port.", NULL);
	bench_series();
	connect_deps(c);
	http = http_server_new(base, fd, &l, handle, NULL);
	http_server_set_tls(http, c->workers[WORKER_METRICS].tls.ctx);
	http_server_set_head_hook(http, head_seen, NULL);
	ev_probe = event_new(base, -1, EV_PERSIST, on_probe, NULL);
	tv = util_tv_us(PROBE_INTERVAL_US);
	event_add(ev_probe, &tv);
	on_probe(-1, 0, NULL);
	worker_ready();
	return 0;
}

/* metrics_reload_check - a new conninfo must parse before we commit */
static int
metrics_reload_check(const struct conf *next, char *why, size_t len)
{
	PQconninfoOption	*o;
	char			*err = NULL;

	if ((o = PQconninfoParse(next->pg_conninfo, &err)) == NULL) {
		snprintf(why, len, "postgres.conninfo: %s",
		    err ? err : "does not parse");
		PQfreemem(err);
		return -1;
	}
	PQconninfoFree(o);
	return 0;
}

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* metrics_reload_apply - reconnect only what changed */
static void
metrics_reload_apply(const struct conf *next, const struct conf *prev)
{
	struct http_limits	l = http_limits_of(next);

	http_server_set_limits(http, &l);
	/* new connections get the new certificate; open ones keep theirs */
	http_server_set_tls(http, next->workers[WORKER_METRICS].tls.ctx);
	register_series(next);
	if (!same(next->pg_conninfo, prev->pg_conninfo) ||
	    !same(next->pg_password, prev->pg_password) ||
	    !conf_redis_equal(&next->redis, &prev->redis)) {
		log_info("dependency settings changed; reconnecting");
		pgc_free(pg);
		rds_free(redis);
		pg_probe.up = pg_probe.in_flight = 0;
		redis_probe.up = redis_probe.in_flight = 0;
		connect_deps(next);
	}
}

static void
metrics_listen(int fd)
{
	http_server_set_listener(http, fd);
	log_info("listening on a new socket");
}

/* metrics_stop - nothing to drain: answers are synchronous */
static void
metrics_stop(void)
{
	worker_exit(0);
}

static void
metrics_cleanup(void)
{
	http_server_free(http);
	http = NULL;
	pgc_free(pg);
	pg = NULL;
	rds_free(redis);
	redis = NULL;
	if (ev_probe != NULL)
		event_free(ev_probe);
	ev_probe = NULL;
	free(render_buf);
	render_buf = NULL;
}

/* probe_done - record a probe's answer */
static void
probe_done(struct probe *p, int ok)
{
	if (ok && !p->up)
		log_info("%s answers", p->name);
	p->up = ok;
	p->in_flight = 0;
}

static void
pg_probe_cb(struct pgc *c, const PGresult *res, void *arg)
{
	probe_done(&pg_probe, res != NULL &&
	    PQresultStatus(res) == PGRES_TUPLES_OK);
}

static void
redis_probe_cb(struct rds *r, const redisReply *reply, void *arg)
{
	probe_done(&redis_probe, reply != NULL &&
	    reply->type == REDIS_REPLY_STATUS);
}

/* probe_due - may a new probe be sent?  A lost answer counts as down */
static int
probe_due(struct probe *p, uint64_t now)
{
	if (p->in_flight && now - p->sent_us > PROBE_TIMEOUT_US) {
		if (p->up)
			log_warnx("%s did not answer the health probe",
			    p->name);
		p->up = 0;
	}
	if (p->in_flight)
		return 0;
	p->in_flight = 1;
	p->sent_us = now;
	return 1;
}

/* on_probe - once a second: ask PostgreSQL and Redis if they answer */
static void
on_probe(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	now = now_mono_us();

	update_rss();
	if (probe_due(&pg_probe, now) && pgc_ping(pg, pg_probe_cb, NULL) == -1)
		pg_probe.in_flight = 0;
	if (probe_due(&redis_probe, now) && rds_ping(redis, redis_probe_cb, NULL) ==
	    -1)
		redis_probe.in_flight = 0;
}

/* rss_of - resident memory of a process, from /proc */
static double
rss_of(pid_t pid)
{
	char	path[64], buf[128];
	long	size, resident;
	FILE	*f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL ||
	    sscanf(buf, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (double)resident * (double)page_size;
}

/* master_alive - the master's tick is recent and it is our parent */
static int
master_alive(const struct metrics_status *s, uint64_t now)
{
	return getppid() == s->master.pid &&
	    now - s->master.heartbeat_us < MASTER_STALE_US;
}

/* health_level - 2 healthy, 1 degraded, 0 failed */
static enum health
health_level(const struct metrics_status *s, uint64_t now)
{
	int	i, ready = 0, enabled = 0, failed = 0;

	if (!master_alive(s, now))
		return HEALTH_FAILED;
	for (i = 0; i < WORKER_MAX; i++) {
		if (!s->workers[i].enabled)
			continue;
		enabled++;
		ready += s->workers[i].state == PROC_READY;
		failed += s->workers[i].state == PROC_FAILED;
	}
	if (failed > 0 || ready == 0)
		return HEALTH_FAILED;
	if (ready < enabled || !pg_probe.up || !redis_probe.up)
		return HEALTH_DEGRADED;
	return HEALTH_HEALTHY;
}

/*
 * update_rss - resident memory of every process, once a second: reading
 * /proc on every scrape would cost more than the rest of the scrape.
 */
static void
update_rss(void)
{
	const struct metrics_status	*s = metrics_status();
	int				 i;

	for (i = 0; i < WORKER_MAX; i++)
		metric_set(wseries[i].rss, rss_of(s->workers[i].pid));
	metric_set(m_master_rss, rss_of(s->master.pid));
}

/* update_gauges - the values computed at scrape time */
static void
update_gauges(void)
{
	const struct metrics_status	*s = metrics_status();
	uint64_t			 now = now_mono_us();
	int				 i;

	for (i = 0; i < WORKER_MAX; i++) {
		const struct proc_status *w = &s->workers[i];
		int up = w->enabled && w->state == PROC_READY && w->pid > 0;

		metric_set(wseries[i].up, up);
		metric_set(wseries[i].uptime, w->pid > 0 ?
		    (double)(now - w->started_us) / 1e6 : 0);
		/* A process the once-a-second update has not seen yet. */
		if (w->pid > 0 && metric_get(wseries[i].rss) == 0)
			metric_set(wseries[i].rss, rss_of(w->pid));
	}
	if (metric_get(m_master_rss) == 0)
		metric_set(m_master_rss, rss_of(s->master.pid));
	metric_set(m_master_uptime, (double)(now - s->master.started_us) /
	    1e6);
	metric_set(m_health, health_level(s, now));
	metric_set(m_redis_state, redis_probe.up ? 2 : 0);
	metric_set(m_pg_up, pg_probe.up);
	metric_set(m_clients, http_server_clients(http));
}

/* serve_metrics - render the registry, growing the buffer as needed */
static void
serve_metrics(struct http_conn *c)
{
	size_t	len;

	metric_inc(m_scrapes);
	update_gauges();
	while ((len = metrics_render(render_buf, render_cap)) > render_cap) {
		render_cap = len + len / 4 + 4096;
		render_buf = xrealloc(render_buf, render_cap);
	}
	http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
	    render_buf, len);
}

/* not_ready - append why the instance is not ready; returns the count */
static int
not_ready(const struct metrics_status *s, char *buf, size_t cap)
{
	static const char *const names[] = { "stopped", "starting", "ready",
	    "stopping", "restarting", "failed" };
	size_t	n = 0;
	int	i, count = 0;

	for (i = 0; i < WORKER_MAX; i++) {
		if (!s->workers[i].enabled || s->workers[i].state == PROC_READY)
			continue;
		count++;
		n += (size_t)snprintf(buf + n, cap - n, "worker %s: %s\n",
		    conf_worker_name(i), names[s->workers[i].state]);
	}
	if (!pg_probe.up && ++count)
		n += (size_t)snprintf(buf + n, cap - n, "postgres: down\n");
	if (!redis_probe.up && ++count)
		n += (size_t)snprintf(buf + n, cap - n, "redis: down\n");
	return count;
}

static void
serve_readyz(struct http_conn *c)
{
	char	buf[1024];

	if (not_ready(metrics_status(), buf, sizeof(buf)) == 0)
		http_respond(c, 200, "text/plain", NULL, "ready\n", 6);
	else
		http_respond(c, 503, "text/plain", NULL, buf, strlen(buf));
}

/* serve_healthz - alive: the master ticks and no worker gave up */
static void
serve_healthz(struct http_conn *c)
{
	const struct metrics_status	*s = metrics_status();
	char				 buf[256];
	int				 i;

	if (!master_alive(s, now_mono_us())) {
		http_respond(c, 503, "text/plain", NULL, "master: not alive\n",
		    18);
		return;
	}
	for (i = 0; i < WORKER_MAX; i++)
		if (s->workers[i].enabled && s->workers[i].state ==
		    PROC_FAILED) {
			snprintf(buf, sizeof(buf), "worker %s: failed\n",
			    conf_worker_name(i));
			http_respond(c, 503, "text/plain", NULL, buf,
			    strlen(buf));
			return;
		}
	http_respond(c, 200, "text/plain", NULL, "ok\n", 3);
}

/* health_json - /tenant/health */
static json_t *
health_json(void)
{
	static const char *const states[] = { "stopped", "starting", "ready",
	    "stopping", "restarting", "failed" };
	static const char *const levels[] = { "failed", "degraded", "healthy" };
	const struct metrics_status	*s = metrics_status();
	const struct conf		*c = worker_conf();
	uint64_t			 now = now_mono_us();
	json_t				*workers = json_object(), *w;
	int				 i;

	for (i = 0; i < WORKER_MAX; i++) {
		const struct proc_status *p = &s->workers[i];

		if (!p->enabled)
			continue;
		w = json_pack("{s:s, s:I, s:f, s:I}", "state",
		    states[p->state], "pid", (json_int_t)p->pid,
		    "uptime_seconds", p->pid > 0 ?
		    (double)(now - p->started_us) / 1e6 : 0.0, "restarts",
		    (json_int_t)p->restarts);
		json_object_set_new(workers, conf_worker_name(i), w);
	}
	return json_pack("{s:s, s:{s:s, s:s}, s:{s:I, s:f}, s:o, "
	    "s:{s:{s:s}, s:{s:s}}}",
	    "status", levels[health_level(s, now)],
	    "tenant", "id", c->tenant_id, "name", c->tenant_name,
	    "master", "pid", (json_int_t)s->master.pid, "uptime_seconds",
	    (double)(now - s->master.started_us) / 1e6,
	    "workers", workers,
	    "dependencies", "postgres", "state", pg_probe.up ? "up" : "down",
	    "redis", "state", redis_probe.up ? "up" : "down");
}

static void
serve_health(struct http_conn *c)
{
	json_t	*j = health_json();
	char	*text = json_dumps(j, JSON_COMPACT);

	http_respond(c, 200, "application/json", NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

/* not_allowed - 405: only GET (and so HEAD) is served here */
static void
not_allowed(struct http_conn *c)
{
	http_respond(c, 405, "text/plain", "Allow: GET, HEAD\r\n",
	    "method not allowed\n", 19);
}

/*
 * head_seen - a body is still to come: no route here takes one, so only
 * a GET's is read (and ignored); anything else is refused unread
 */
static void
head_seen(struct http_conn *c, const struct http_request *r, void *arg)
{
	if (http_method_is(r, "GET"))
		http_continue(c);
	else
		not_allowed(c);
}

/* handle - route one request (HEAD arrives as GET) */
static void
handle(struct http_conn *c, const struct http_request *r, void *arg)
{
	static const char	 nf[] = "not found; try /metrics, /healthz, "
	    "/readyz or /tenant/health\n";

	if (!http_method_is(r, "GET")) {
		not_allowed(c);
		return;
	}
	if (http_path_is(r, "/metrics"))
		serve_metrics(c);
	else if (http_path_is(r, "/healthz"))
		serve_healthz(c);
	else if (http_path_is(r, "/readyz"))
		serve_readyz(c);
	else if (http_path_is(r, "/tenant/health"))
		serve_health(c);
	else
		http_respond(c, 404, "text/plain", NULL, nf, sizeof(nf) - 1);
}
