/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc - the frame of a session worker (svc.h).
 *
 * Each session's data, for the session module, is a struct svc_sess: its
 * rights (common/rights.c) and the worker's own pointer.  The frame
 * answers RequestOpen with the worker's open hook, then the token, and
 * hands every later request to the worker.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cache.h"
#include "cfgfollow.h"
#include "log.h"
#include "metrics.h"
#include "rights.h"
#include "svc.h"
#include "util.h"
#include "worker.h"

#define SVC_SWEEP_MS	1000	/* metrics */
#define SVC_DRAIN_MS	50	/* a stop looks for the last session */

/* What the frame keeps of a session. */
struct svc_sess {
	struct rights_sess	 rs;
	void			*data;		/* the worker's */
};

static struct event_base	*base;
static const struct svc_ops	*ops;
static struct sess_server	*srv;
static struct cfgfollow		*follow;
static struct auth		*auth;
static struct rights		*rights;
static struct event		*ev_sweep, *ev_drain;
static struct metric		*m_clients, *m_slow;
static enum worker_class	 wclass;
static uint64_t			 slow_seen;	/* slow_cut counted */
static int			 ready;

static enum sess_open on_open(struct sess *, json_t *, json_t *, void *,
		    const char **);
static void	on_request(struct sess *, const char *, json_int_t, json_t *,
		    void *);
static void	on_closed(struct sess *, void *);
static void	on_opened(struct rights_sess *, enum sess_open, const char *,
		    void *);
static void	on_rights_changed(struct rights_sess *, void *);
static void	on_reset(void *);
static void	on_change(const struct cfg_change *, void *);
static void	on_synced(json_int_t, void *);
static void	on_sweep(evutil_socket_t, short, void *);

/* ---- start, reload, stop ---- */

/* register_metrics - the two every session port has, named after it */
static void
register_metrics(const char *name)
{
	char	n[64], help[128];

	snprintf(n, sizeof(n), "tenant_%s_clients", name);
	snprintf(help, sizeof(help), "Sessions open on the %s port.", name);
	m_clients = metrics_gauge(n, help, NULL);
	snprintf(n, sizeof(n), "tenantd_%s_slow_clients_total", name);
	m_slow = metrics_counter(n, "Clients cut because they did not read "
	    "what was sent to them.", NULL);
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

	base = b;
	ops = o;
	wclass = w;
	register_metrics(conf_worker_name(w));
	cache_init(CFG_NTYPES);
	if ((follow = cfgfollow_open(base, c, &fc, NULL)) == NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	auth = auth_new(base, c->redis.host, c->redis.port, c->redis.password,
	    c->tenant_id);
	auth_set_admin_token(auth, c->admin_token);
	rights = rights_new(base, auth, c->redis.host, c->redis.port,
	    c->redis.password, c->tenant_id, &rc, NULL);
	if ((srv = sess_server_new(base, fd, &l, &h, NULL)) == NULL)
		return -1;
	ev_sweep = event_new(base, -1, EV_PERSIST, on_sweep, NULL);
	event_add(ev_sweep, &tv);
	return 0;
}

/* svc_reload - new limits; sessions of an admin token replaced end */
void
svc_reload(const struct conf *next, const struct conf *prev)
{
	struct sess_limits	l = sess_limits_of(&next->workers[wclass]);

	sess_server_set_limits(srv, &l);
	auth_set_admin_token(auth, next->admin_token);
	if (strcmp(next->admin_token, prev->admin_token) != 0)
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
	    (ops->drained == NULL || ops->drained()))
		worker_exit(0);
}

/*
 * svc_stop - the worker's own stop first; then stop accepting, and tell
 * every session after what is queued for it; exit once all are gone.
 */
void
svc_stop(void)
{
	struct timeval	tv = util_tv(SVC_DRAIN_MS / 1000.0);

	if (ops->stop != NULL)
		ops->stop();
	sess_server_pause(srv);
	sess_server_close_all(srv, "Shutdown", ops->stop_message);
	ev_drain = event_new(base, -1, EV_PERSIST, on_drain, NULL);
	event_add(ev_drain, &tv);
}

/* svc_cleanup - sessions first (their hooks need the rest), then all */
void
svc_cleanup(void)
{
	if (srv != NULL)
		sess_server_free(srv);	/* closes every session */
	srv = NULL;
	if (ops != NULL && ops->cleanup != NULL)
		ops->cleanup();
	rights_free(rights);
	auth_free(auth);
	cfgfollow_free(follow);
	cache_free();
	if (ev_sweep != NULL)
		event_free(ev_sweep);
	if (ev_drain != NULL)
		event_free(ev_drain);
	rights = NULL;
	auth = NULL;
	follow = NULL;
	ev_sweep = ev_drain = NULL;
}

/* on_sweep - the session metrics */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	const struct sess_stats	*st = sess_server_stats(srv);

	metric_set(m_clients, (double)st->current);
	/* Added, not set: the registry outlives the worker, and a counter
	 * must not go back when a new one starts from zero. */
	metric_add(m_slow, (double)(st->slow_cut - slow_seen));
	slow_seen = st->slow_cut;
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
 * on_open - RequestOpen: the worker's fields, then the token.  A session
 * whose open was not accepted keeps its state for the next try.
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
		sess_set_data(s, ss);
	}
	if (ops->open != NULL && (r = ops->open(s, req, why)) !=
	    SESS_OPEN_ACCEPT)
		/* the credentials are not the worker's to refuse */
		return r == SESS_OPEN_UNAVAILABLE ? r : SESS_OPEN_BAD_REQUEST;
	return rights_open(rights, &ss->rs, s, token, why);
}

/* on_opened - the token is looked up: open, or refuse */
static void
on_opened(struct rights_sess *rs, enum sess_open res, const char *why,
    void *arg)
{
	json_t	*extra;

	if (res != SESS_OPEN_ACCEPT) {
		sess_open_done(rs->s, res, NULL, why);
		return;
	}
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
