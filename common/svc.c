/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc - the frame of a session worker (svc.h).
 *
 * Each session's data, for the session module, is a struct svc_sess: its
 * rights (common/rights.c) and the worker's own pointer.  The frame
 * answers RequestOpen with the worker's open hook, then the token, and
 * hands every later request to the worker.
 *
 * HTTP on the session port: the session server hands a connection that
 * speaks HTTP to an HTTP server of the frame's, which has no listener of
 * its own.  Every request's head goes to on_http_head (streaming mode of
 * common/http.c): /healthz is answered there; any other request waits
 * for the configuration (503 before), then for its bearer token (the
 * admin token at once, another looked up in Redis, then its principal
 * must still exist, enabled: as the config API does), and is handed to
 * the worker's http_head, with the principal left on the connection for
 * http().  An authenticated connection is never closed to make room at
 * max_clients.
 *
 * HTTP limits come from the worker's section: max_body, header_timeout
 * and body_timeout where it has them (outbound), else 1 MiB, open_timeout
 * for a head and 10 s for a body; max_clients and max_output as for
 * sessions; a connection idle between requests closes after open_timeout.
 * HTTP connections are counted apart from sessions: a port holds up to
 * max_clients of each (the HTTP side makes room by closing the one idle
 * and unauthenticated the longest).

 *
 * Two series carry the names the Tenant Service's alert rules use, one per
 * worker (label worker), set every second with the session metrics:
 * tenant_rq_client_state, the state of the Redis connection that carries
 * the worker's requests to the voice side (common/voice.c: 0 down, 1
 * connecting, 2 up), and tenant_tserver_configuration_retry, the reads of
 * the configuration that failed in a row (common/cfgfollow.c), 0 while
 * the worker can read it.  Both go to 0 when the worker stops.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "cache.h"
#include "cfgfollow.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "rights.h"
#include "svc.h"
#include "throttle.h"
#include "util.h"
#include "voice.h"
#include "worker.h"

#define SVC_SWEEP_MS	1000	/* metrics */
#define SVC_DRAIN_MS	50	/* a stop looks for the last session */
#define SVC_MAX_BODY	(1024 * 1024)	/* without workers.<w>.max_body */
#define SVC_RETRY_AFTER	"Retry-After: 1\r\n"

/* What the frame keeps of a session. */
struct svc_sess {
	struct rights_sess	 rs;
	void			*data;		/* the worker's */
	struct sess		*s;
	char			*token;		/* of an open being counted */
	char			 addr[THROTTLE_HOST_MAX];
	struct throttle_op	*op;		/* the attempt being counted */
	struct throttle_wait	*wait;		/* a refusal being delayed */
	int			 slow;
	int			 counted;	/* the open's attempt is */
	enum sess_open		 res;		/* the delayed refusal */
	const char		*why;
};

/* An HTTP request whose token is being looked up. */
struct svc_authing {
	TAILQ_ENTRY(svc_authing) entry;
	struct http_conn	*c;	/* NULL: the frame is gone */
	struct http_request	*r;	/* a copy */
};

static struct event_base	*base;
static const struct svc_ops	*ops;
static struct sess_server	*srv;
static struct http_server	*hsrv;
static TAILQ_HEAD(, svc_authing) authing = TAILQ_HEAD_INITIALIZER(authing);
static struct cfgfollow		*follow;
static struct auth		*auth;
static struct rights		*rights;
static struct throttle		*throttle;
static struct event		*ev_sweep, *ev_drain;
static struct metric		*m_clients, *m_rq, *m_cfg_retry;
/* The session server's counters, as metric counters. */
static struct metric_follower	 m_slow, m_refused, m_evicted;
static enum worker_class	 wclass;
static int			 ready;
static int			 stopping;

static enum sess_open on_open(struct sess *, json_t *, json_t *, void *,
		    const char **);
static void	on_request(struct sess *, const char *, json_int_t, json_t *,
		    void *);
static void	on_closed(struct sess *, void *);
static void	on_opened(struct rights_sess *, enum sess_open, const char *,
		    void *);
static void	on_rights_changed(struct rights_sess *, void *);
static void	on_throttled(enum throttle_verdict, unsigned, void *);
static void	on_reset(void *);
static void	on_change(const struct cfg_change *, void *);
static void	on_synced(json_int_t, void *);
static void	on_sweep(evutil_socket_t, short, void *);
static void	on_http_head(struct http_conn *, const struct http_request *,
		    void *);
static void	on_http(struct http_conn *, const struct http_request *,
		    void *);

/* ---- start, reload, stop ---- */

/* register_metrics - the series every session port has, named after it */
static void
register_metrics(const char *name)
{
	char	n[64], help[128];

	snprintf(n, sizeof(n), "tenant_%s_clients", name);
	snprintf(help, sizeof(help), "Sessions open on the %s port.", name);
	m_clients = metrics_gauge(n, help, NULL);
	snprintf(n, sizeof(n), "tenantd_%s_slow_clients_total", name);
	m_slow.m = metrics_counter(n, "Clients cut because they did not read "
	    "what was sent to them.", NULL);
	snprintf(n, sizeof(n), "tenantd_%s_clients_refused_total", name);
	m_refused.m = metrics_counter(n, "Connections turned away at "
	    "max_clients, every one there busy or trusted.", NULL);
	snprintf(n, sizeof(n), "tenantd_%s_clients_evicted_total", name);
	m_evicted.m = metrics_counter(n, "Connections closed before they "
	    "opened a session or sent a request, to make room for a new one "
	    "at max_clients.", NULL);
	snprintf(n, sizeof(n), "worker=\"%s\"", name);
	m_rq = metrics_gauge("tenant_rq_client_state", "The Redis connection "
	    "that carries requests to the voice side: 2 up, 1 connecting, 0 "
	    "down.", n);
	m_cfg_retry = metrics_gauge("tenant_tserver_configuration_retry",
	    "Reads of the configuration that failed in a row; 0 while the "
	    "worker can read it.", n);
	metric_set(m_rq, 0);
	metric_set(m_cfg_retry, 0);
}

/* http_limits_of - the HTTP face's limits from the worker's section */
static struct http_limits
http_limits_of(const struct conf_worker *w)
{
	struct sess_limits	sl = sess_limits_of(w);
	struct http_limits	l;
	double			open = sl.open_timeout_ms > 0 ?
				    sl.open_timeout_ms / 1000.0 :
				    SESS_DEFAULT_OPEN_TIMEOUT_MS / 1000.0;

	memset(&l, 0, sizeof(l));
	l.max_body = w->max_body > 0 ? w->max_body : SVC_MAX_BODY;
	l.max_output = sl.max_output > 0 ? sl.max_output :
	    SESS_DEFAULT_MAX_OUTPUT;
	l.max_clients = sl.max_clients > 0 ? sl.max_clients :
	    SESS_DEFAULT_MAX_CLIENTS;
	l.idle_timeout = open;
	l.header_timeout = w->header_timeout > 0 ? w->header_timeout : open;
	l.body_timeout = w->body_timeout;	/* 0: http.c's 10 s */
	return l;
}

/* http_start - the HTTP face: a server with no listener of its own */
static void
http_start(const struct conf_worker *w)
{
	struct http_limits	l = http_limits_of(w);

	hsrv = http_server_new(base, -1, &l, on_http, NULL);
	http_server_set_head_hook(hsrv, on_http_head, NULL);
	/* the worker's stream decides how large a body may be */
	http_server_set_streaming(hsrv, UINT64_MAX);
	sess_server_set_http(srv, hsrv);
}

/* svc_start - the configuration, tokens, rights, the listener */
int
svc_start(struct event_base *b, const struct conf *c, enum worker_class w,
    int fd, const struct svc_ops *o)
{
	struct sess_limits	 l = sess_limits_of(&c->workers[w]);
	struct sess_handlers	 h = { on_open, on_request, on_closed };
	struct cfgfollow_cbs	 fc = { on_reset, on_change, on_synced };
	struct rights_cbs	 rc = { on_opened, on_rights_changed };
	struct timeval		 tv = util_tv(SVC_SWEEP_MS / 1000.0);
	struct throttle_limits	 tl;

	base = b;
	ops = o;
	wclass = w;
	register_metrics(conf_worker_name(w));
	cache_init(CFG_NTYPES);
	if ((follow = cfgfollow_open(base, c, &fc, NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	auth = auth_new(base, &c->redis, c->tenant_id);
	auth_set_admin_token(auth, c->admin_token);
	rights = rights_new(base, auth, &c->redis, c->tenant_id, &rc, NULL);
	throttle = throttle_new(base, &c->redis, c->tenant_id);
	tl = throttle_limits_of(c);
	throttle_set_limits(throttle, &tl);
	if ((srv = sess_server_new(base, fd, &l, &h, NULL)) == NULL)
		return -1;
	sess_server_set_tls(srv, c->workers[w].tls.ctx);
	http_start(&c->workers[w]);
	ev_sweep = event_new(base, -1, EV_PERSIST, on_sweep, NULL);
	event_add(ev_sweep, &tv);
	return 0;
}

/* svc_reload - new limits; sessions of an admin token replaced end */
void
svc_reload(const struct conf *next, const struct conf *prev)
{
	struct sess_limits	l = sess_limits_of(&next->workers[wclass]);
	struct http_limits	hl = http_limits_of(&next->workers[wclass]);
	struct throttle_limits	tl = throttle_limits_of(next);

	sess_server_set_limits(srv, &l);
	throttle_set_limits(throttle, &tl);
	http_server_set_limits(hsrv, &hl);
	/* new connections get the new certificate; open ones keep theirs */
	sess_server_set_tls(srv, next->workers[wclass].tls.ctx);
	auth_set_admin_token(auth, next->admin_token);
	/* Either may have none (security.admin_token_file unset). */
	if ((next->admin_token == NULL) != (prev->admin_token == NULL) ||
	    (next->admin_token != NULL &&
	    strcmp(next->admin_token, prev->admin_token) != 0))
		rights_recheck_all(rights);
}

void
svc_listen(int fd)
{
	sess_server_set_listener(srv, fd);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	if (sess_server_stats(srv)->current == 0 &&
	    http_server_clients(hsrv) == 0 &&
	    (ops->drained == NULL || ops->drained()))
		worker_exit(0);
}

/*
 * svc_stop - the worker's own stop first; then stop accepting, and tell
 * every session after what is queued for it; HTTP connections finish the
 * request they have and close; exit once all are gone.
 */
void
svc_stop(void)
{
	struct timeval	tv = util_tv(SVC_DRAIN_MS / 1000.0);

	stopping = 1;
	if (ops->stop != NULL)
		ops->stop();
	sess_server_pause(srv);
	sess_server_close_all(srv, "Shutdown", ops->stop_message);
	http_server_shutdown(hsrv);
	ev_drain = event_new(base, -1, EV_PERSIST, on_drain, NULL);
	event_add(ev_drain, &tv);
}

/*
 * svc_cleanup - sessions first (their hooks need the rest), then the
 * worker, then HTTP connections (the worker forgot its requests), then all
 */
void
svc_cleanup(void)
{
	struct svc_authing	*a;

	if (srv != NULL)
		sess_server_free(srv);	/* closes every session */
	srv = NULL;
	if (ops != NULL && ops->cleanup != NULL)
		ops->cleanup();
	/* token lookups still out are answered by auth_free, to no one */
	TAILQ_FOREACH(a, &authing, entry)
		a->c = NULL;
	http_server_free(hsrv);
	hsrv = NULL;
	rights_free(rights);
	throttle_free(throttle);
	throttle = NULL;
	auth_free(auth);
	cfgfollow_free(follow);
	cache_free();
	/* A worker that is gone neither talks to the voice side nor waits
	 * for the configuration. */
	metric_set(m_rq, 0);
	metric_set(m_cfg_retry, 0);
	if (ev_sweep != NULL)
		event_free(ev_sweep);
	if (ev_drain != NULL)
		event_free(ev_drain);
	rights = NULL;
	auth = NULL;
	follow = NULL;
	ev_sweep = ev_drain = NULL;
}

/* on_sweep - the session metrics, the voice connection, the reads */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	const struct sess_stats	*st = sess_server_stats(srv);
	uint64_t		 made_room, turned_away;

	/* the port's two faces: sessions, and HTTP connections */
	http_server_full(hsrv, &made_room, &turned_away);
	metric_set(m_clients, (double)st->current);
	metric_follow(&m_slow, st->slow_cut);
	metric_follow(&m_refused, st->too_many + turned_away);
	metric_follow(&m_evicted, st->evicted + made_room);
	metric_set(m_rq, (double)voice_request_state());
	metric_set(m_cfg_retry, (double)cfgfollow_failures(follow));
}

/* ---- the configuration ---- */

static void
on_reset(void *arg)
{
	cache_reset();
	rights_change(rights, NULL);
	if (ops->change != NULL)
		ops->change(NULL);
}

/* on_change - the cache, then rights, then the worker, in revision order */
static void
on_change(const struct cfg_change *ch, void *arg)
{
	cache_apply(ch);
	rights_change(rights, ch);
	if (ops->change != NULL)
		ops->change(ch);
}

/* on_synced - the configuration is loaded: sessions may open */
static void
on_synced(json_int_t rev, void *arg)
{
	int	first = !ready;

	metric_set(m_cfg_retry, (double)cfgfollow_failures(follow));
	if (first) {
		ready = 1;
		rights_synced(rights);
		log_info("configuration loaded at revision %lld; serving",
		    (long long)rev);
		worker_ready();
	}
	if (ops->synced != NULL)
		ops->synced(rev, first);
}

/* ---- sessions ---- */

/*
 * on_open - RequestOpen: the worker's fields, then the attempt counted
 * by the client's address (throttle.h; the admin token is never counted,
 * so it cannot be locked out), then the token.  A session whose open was
 * not accepted keeps its state for the next try.
 */
static enum sess_open
on_open(struct sess *s, json_t *req, json_t *extra, void *arg,
    const char **why)
{
	const char	*token = json_string_value(json_object_get(req,
			    "token"));
	struct svc_sess	*ss = sess_data(s);
	enum sess_open	 r;

	if (ss == NULL) {
		ss = xcalloc(1, sizeof(*ss));
		ss->s = s;
		sess_set_data(s, ss);
	}
	if (ops->open != NULL && (r = ops->open(s, req, why)) !=
	    SESS_OPEN_ACCEPT)
		/* the credentials are not the worker's to refuse */
		return r == SESS_OPEN_UNAVAILABLE ? r : SESS_OPEN_BAD_REQUEST;
	ss->counted = 0;
	if (auth_is_admin(auth, token, strlen(token)))
		return rights_open(rights, &ss->rs, s, token, why);
	free(ss->token);
	ss->token = xstrdup(token);
	ss->slow = 0;
	ss->counted = 1;
	throttle_host(sess_peer(s), ss->addr, sizeof(ss->addr));
	ss->op = throttle_attempt(throttle, NULL, ss->addr, on_throttled, ss);
	return SESS_OPEN_PENDING;
}

/* on_throttled - the attempt is counted: refuse now, or see the token */
static void
on_throttled(enum throttle_verdict v, unsigned retry_after, void *arg)
{
	struct svc_sess	*ss = arg;
	const char	*why = NULL;
	enum sess_open	 r;
	json_t		*extra;

	ss->op = NULL;
	if (v == THROTTLE_REFUSE) {
		free(ss->token);
		ss->token = NULL;
		extra = json_pack("{s:i}", "retryAfter", (int)retry_after);
		sess_open_done(ss->s, SESS_OPEN_THROTTLED, extra, "too many "
		    "failed opens from this address; retry later");
		json_decref(extra);
		return;
	}
	ss->slow = v == THROTTLE_SLOW;
	r = rights_open(rights, &ss->rs, ss->s, ss->token, &why);
	free(ss->token);
	ss->token = NULL;
	if (r != SESS_OPEN_PENDING) {
		throttle_success(throttle, NULL, ss->addr);	/* not tried */
		sess_open_done(ss->s, r, NULL, why);
	}
}

/* on_refuse_late - the delay of a refused open is over */
static void
on_refuse_late(void *arg)
{
	struct svc_sess	*ss = arg;

	ss->wait = NULL;
	sess_open_done(ss->s, ss->res, NULL, ss->why);
}

/*
 * on_opened - the token is looked up: open, or refuse (after the delay
 * when this address failed often)
 */
static void
on_opened(struct rights_sess *rs, enum sess_open res, const char *why,
    void *arg)
{
	struct svc_sess	*ss = (struct svc_sess *)rs;	/* rs is its first */
	json_t		*extra;

	if (res != SESS_OPEN_ACCEPT && res != SESS_OPEN_REFUSE) {
		/* not a failure of the credentials: the attempt is void */
		if (ss->counted)
			throttle_success(throttle, NULL, ss->addr);
		sess_open_done(rs->s, res, NULL, why);
		return;
	}
	if (res == SESS_OPEN_REFUSE) {
		if (!ss->slow) {
			sess_open_done(rs->s, res, NULL, why);
			return;
		}
		ss->res = res;
		ss->why = why;
		ss->wait = throttle_delay(throttle, on_refuse_late, ss);
		return;
	}
	if (ss->counted)
		throttle_success(throttle, NULL, ss->addr);
	extra = json_object();
	if (ops->opened != NULL)
		ops->opened(rs->s, extra);
	sess_open_done(rs->s, SESS_OPEN_ACCEPT, extra, NULL);
	json_decref(extra);
}

static void
on_request(struct sess *s, const char *name, json_int_t ref, json_t *req,
    void *arg)
{
	ops->request(s, name, ref, req);
}

static void
on_rights_changed(struct rights_sess *rs, void *arg)
{
	if (ops->rights_changed != NULL)
		ops->rights_changed(rs->s);
}

static void
on_closed(struct sess *s, void *arg)
{
	struct svc_sess	*ss = sess_data(s);

	if (ss == NULL)
		return;
	throttle_cancel(ss->op);
	throttle_wait_cancel(ss->wait);
	free(ss->token);
	if (ops->closed != NULL)
		ops->closed(s);
	rights_close(rights, &ss->rs);
	sess_set_data(s, NULL);
	free(ss);
}

void
svc_set_data(struct sess *s, void *data)
{
	((struct svc_sess *)sess_data(s))->data = data;
}

void *
svc_data(const struct sess *s)
{
	struct svc_sess	*ss = sess_data(s);

	return ss != NULL ? ss->data : NULL;
}

const struct principal *
svc_who(const struct sess *s)
{
	return &((struct svc_sess *)sess_data(s))->rs.who;
}

int
svc_can(const struct sess *s, enum cfg_kind k, json_int_t dbid, int right)
{
	struct svc_sess	*ss = sess_data(s);

	return ss != NULL && rights_can(rights, &ss->rs, k, dbid, right);
}

int
svc_valid(const struct sess *s)
{
	return rights_principal_valid(svc_who(s));
}

/* ---- HTTP ---- */

/* svc_http_error - {"error": code, "message": ...} */
void
svc_http_error(struct http_conn *c, int status, const char *code,
    const char *fmt, ...)
{
	char	 msg[512], *text;
	va_list	 ap;
	json_t	*j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	if (j == NULL)	/* not UTF-8: the message is ours, the input not */
		j = json_pack("{s:s, s:s}", "error", code, "message",
		    "(a message that is not UTF-8)");
	text = json_dumps(j, JSON_COMPACT);
	http_respond(c, status, "application/json", status == 401 ?
	    "WWW-Authenticate: Bearer realm=\"tenantd\"\r\n" : status == 503 ?
	    SVC_RETRY_AFTER : NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

json_t *
svc_json_body(struct http_conn *c, const struct http_request *r,
    int optional)
{
	json_error_t	 e;
	json_t		*j;

	if (optional && r->body_len == 0)
		return json_object();
	j = json_loadb(r->body != NULL ? r->body : "", r->body_len,
	    JSON_REJECT_DUPLICATES, &e);
	if (j == NULL) {
		svc_http_error(c, 400, "BadJson", "malformed JSON at line %d, "
		    "column %d: %s", e.line, e.column, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		svc_http_error(c, 400, "WrongType", "the body must be a JSON "
		    "object");
		return NULL;
	}
	return j;
}

/* A feed's token check, through its refreshes. */
struct svc_feedcheck {
	auth_check_cb	*cb;
	void		*arg;
};

static void
feed_checked(const struct principal *who, uint64_t expires_us,
    int unavailable, void *arg)
{
	struct svc_feedcheck	*fc = arg;

	fc->cb(who, unavailable, fc->arg);
	free(fc);
}

void
svc_token_check(const char *token, size_t len, auth_check_cb *cb, void *arg)
{
	struct svc_feedcheck	*fc = xmalloc(sizeof(*fc));

	fc->cb = cb;
	fc->arg = arg;
	auth_check_follow(auth, token, len, feed_checked, fc);
}

/* svc_principal_can - its grants now, from the cache's access groups */
int
svc_principal_can(const struct principal *who, enum cfg_kind k,
    json_int_t dbid, int right)
{
	struct grants	g;
	int		ok;

	if (!rights_principal_valid(who))
		return 0;
	access_grants(who, &g);
	ok = access_can(&g, k, dbid, right);
	access_clear(&g);
	return ok;
}

/*
 * healthz - GET /healthz, without a token, for health probes: 200 once
 * the configuration is loaded and until the worker stops, else 503 (the
 * port cannot open sessions then)
 */
static void
healthz(struct http_conn *c)
{
	if (ready && !stopping)
		http_respond(c, 200, "text/plain", NULL, "ok\n", 3);
	else
		http_respond(c, 503, "text/plain", SVC_RETRY_AFTER,
		    stopping ? "stopping\n" : "loading\n", stopping ? 9 : 8);
}

/* http_authed - the token is good: the worker says what comes next */
static void
http_authed(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct principal	*p = xmalloc(sizeof(*p));
	int			 next;

	*p = *who;
	http_conn_set_data(c, p, free);
	http_conn_trust(c);
	next = ops->http_head != NULL ? ops->http_head(c, r, p) :
	    SVC_HTTP_WHOLE;
	switch (next) {
	case SVC_HTTP_WHOLE:
		http_continue(c);
		break;
	case SVC_HTTP_STREAM:
		if (ops->http == NULL)
			fatalx("svc: SVC_HTTP_STREAM without an http hook");
		ops->http(c, r, p);
		break;
	case SVC_HTTP_ANSWERED:
		break;
	default:
		fatalx("svc: http_head returned %d", next);
	}
}

/* on_http_authed - Redis answered for a token */
static void
on_http_authed(const struct principal *who, int unavailable, void *arg)
{
	struct svc_authing	*a = arg;

	TAILQ_REMOVE(&authing, a, entry);
	if (a->c == NULL)
		;	/* the frame is gone, and the connection */
	else if (who != NULL && !rights_principal_valid(who))
		svc_http_error(a->c, 401, "Unauthorized", "the token's %s is "
		    "disabled or deleted", who->kind == PRINCIPAL_PERSON ?
		    "person" : "application");
	else if (who != NULL)
		http_authed(a->c, a->r, who);
	else if (unavailable)
		svc_http_error(a->c, 503, "Unavailable", "tokens cannot be "
		    "checked now (Redis unavailable); retry later");
	else
		svc_http_error(a->c, 401, "Unauthorized", "invalid or expired "
		    "token");
	free(a->r);
	free(a);
}

/*
 * on_http_head - every request's head: /healthz; then the configuration
 * must be loaded and the bearer token good, before the worker sees it
 */
static void
on_http_head(struct http_conn *c, const struct http_request *r, void *arg)
{
	static const struct principal admin = { PRINCIPAL_ADMIN, 0, "admin" };
	struct svc_authing	*a;
	const char		*v;
	size_t			 len;

	if (http_path_is(r, "/healthz") && http_method_is(r, "GET")) {
		healthz(c);
		return;
	}
	if (!ready || stopping) {
		svc_http_error(c, 503, "Unavailable", stopping ? "the worker "
		    "is stopping; retry later" : "the configuration is not "
		    "loaded yet; retry later");
		return;
	}
	v = http_header(r, "Authorization", &len);
	if (v == NULL || len < 8 || strncasecmp(v, "Bearer ", 7) != 0) {
		svc_http_error(c, 401, "Unauthorized", "send Authorization: "
		    "Bearer <token>");
		return;
	}
	if (auth_is_admin(auth, v + 7, len - 7)) {
		http_authed(c, r, &admin);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->c = c;
	a->r = http_request_copy(r);
	TAILQ_INSERT_TAIL(&authing, a, entry);
	v = http_header(a->r, "Authorization", &len);
	auth_check(auth, v + 7, len - 7, on_http_authed, a);
}

/* on_http - a request whose whole body is here (SVC_HTTP_WHOLE) */
static void
on_http(struct http_conn *c, const struct http_request *r, void *arg)
{
	const struct principal	*who = http_conn_data(c);

	if (who == NULL)	/* every head went through on_http_head */
		fatalx("svc: an HTTP request without its principal");
	if (ops->http != NULL)
		ops->http(c, r, who);
	else
		svc_http_error(c, 404, "NotFound", "no such route: %.*s",
		    (int)r->path_len, r->target);
}
