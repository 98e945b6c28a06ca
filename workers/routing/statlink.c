/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statlink - expected wait from the stats worker's queue statistics
 * (URS's aqt=stat), as URS asks Stat Server: the routing worker is a
 * client of the local stats worker's session port (workers.stats.listen;
 * 127.0.0.1 when it listens on every address; docs/protocol.md), opened
 * with the admin token, through common/sessclient.c, which keeps the
 * link alive and makes it again with backoff.  When that port speaks TLS,
 * so does the link, trusting exactly the port's certificate and showing
 * it when the port asks for a client's (common/tls.h tls_client_own); a
 * new certificate there makes the link again.
 *
 * The stats worker counts the virtual queues' calls from this worker's
 * event stream (docs/stats.md "Virtual queues").  For every virtual
 * queue this file opens, on its VirtualQueue DN's Queue object, the
 * expected wait of the first in line (docs/stats.md, EstimWaitTime with
 * no actions: the interval over the calls distributed in it), over a
 * Sliding window of 300 s in steps of 10 s, told every second; the
 * expected wait of position p is p times the latest value, so that of
 * the one that would come now (p = waiting + 1) is the stats worker's
 * ExpectedWaitTime.  -1 (unknown) when the stats worker is not
 * configured, the link is down, the statistic is not open or not valid,
 * or nothing was distributed in the window.
 *
 * A statistic the stats worker refuses (it does not know the DN yet: the
 * two workers follow the configuration each on its own) is asked again
 * with backoff; one for a queue removed is closed.
 *
 * What it touches: its link, memory; it reads the configuration cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cache.h"
#include "conf.h"
#include "idmap.h"
#include "log.h"
#include "schema.h"
#include "sess.h"
#include "tls.h"
#include "util.h"
#include "worker.h"
#include "routing_int.h"

#define WINDOW_S	300	/* the statistic's Sliding window */
#define STEP_S		10
#define EVERY_S		1	/* its EventInfo */
#define PING_MS		10000
#define RETRY_MIN_MS	500
#define RETRY_MAX_MS	30000
#define TICK_MS		1000

/* One virtual queue's statistic. */
struct vqstat {
	json_int_t	 dbid;		/* the VirtualQueue DN */
	char		 number[RT_DN_MAX];
	json_int_t	 sid;		/* statisticId; 0: not open */
	unsigned	 gen;		/* the open a reply is for; 0 none */
	int		 opening;
	int		 valid;
	int		 has;		/* a value came */
	double		 value;		/* s, for position 1; < 0 unknown */
	uint64_t	 retry_ms;	/* open again from then */
	unsigned	 tries;
	int		 seen;		/* still a virtual queue */
};

/* What a RequestOpenStatistic's reply is for. */
struct opening {
	json_int_t	 dbid;
	unsigned	 gen;
};

static void	connect_stats(void);
static void	disconnect(void);
static int	moved(void);
static void	on_tick(evutil_socket_t, short, void *);
static void	on_up(struct sess_client *, json_t *, void *);
static void	on_event(struct sess_client *, json_t *, void *);
static void	on_down(struct sess_client *, const char *, void *);
static void	opened(struct sess_client *, json_t *, void *);
static void	open_due(void);
static void	open_one(struct vqstat *);
static void	close_sid(json_int_t);
static void	forget(struct vqstat *);
static void	retry_later(struct vqstat *);

static struct sess_client	*cl;
static struct event		*ev_tick;
static struct idmap		 by_dbid;	/* dbid -> vqstat */
static struct idmap		 by_sid;	/* statisticId -> vqstat */
static int			 up;
static int			 configured;	/* the queues are known */
static unsigned			 opens;		/* RequestOpenStatistic sent */
/* Where the link goes, to follow a reload. */
static char			 at_host[256], at_port[16];
static char			*at_token;
static struct ssl_ctx_st	*at_tls;	/* the port's, linked to */

/* statlink_start - the tick; the link waits for the virtual queues */
void
statlink_start(void)
{
	struct timeval	tv = util_tv(TICK_MS / 1000.0);

	ev_tick = event_new(rt.base, -1, EV_PERSIST, on_tick, NULL);
	event_add(ev_tick, &tv);
}

static void
free_vqstat(uint64_t k, void *v, void *arg)
{
	free(v);
}

void
statlink_cleanup(void)
{
	disconnect();		/* replies waiting get NULL: maps still there */
	idmap_each(&by_dbid, free_vqstat, NULL);
	idmap_clear(&by_dbid);
	idmap_clear(&by_sid);
	if (ev_tick != NULL)
		event_free(ev_tick);
	ev_tick = NULL;
	free(at_token);
	at_token = NULL;
	tls_ctx_free(at_tls);
	at_tls = NULL;
	configured = 0;
}

/* ---- the expected wait ---- */

/* statlink_ewt - pos times the first in line's expected wait, or -1 */
double
statlink_ewt(const struct vq *q, unsigned pos)
{
	const struct vqstat	*v = idmap_get(&by_dbid, (uint64_t)q->dbid);

	if (!up || v == NULL || v->sid == 0 || !v->has || !v->valid ||
	    v->value < 0)
		return -1;
	return v->value * pos;
}

/* ---- the virtual queues ---- */

static void
unseen(uint64_t k, void *v, void *arg)
{
	((struct vqstat *)v)->seen = 0;
}

/* see - a virtual queue the worker knows: its statistic, made if new,
 * made again if its number changed */
static void
see(json_int_t dbid, const char *number)
{
	struct vqstat	*v = idmap_get(&by_dbid, (uint64_t)dbid);

	if (v == NULL) {
		v = xcalloc(1, sizeof(*v));
		v->dbid = dbid;
		idmap_put(&by_dbid, (uint64_t)dbid, v);
	} else if (strcmp(v->number, number) != 0) {
		if (v->sid != 0) {
			close_sid(v->sid);
			idmap_del(&by_sid, (uint64_t)v->sid);
		}
		v->sid = 0;
		v->has = v->opening = 0;
		v->gen = 0;		/* a reply on its way is for the old */
		v->tries = 0;
		v->retry_ms = 0;
	}
	snprintf(v->number, sizeof(v->number), "%s", number);
	v->seen = 1;
}

struct gone {
	struct vqstat	**v;
	size_t		  n;
};

static void
collect_gone(uint64_t k, void *v, void *arg)
{
	struct gone	*g = arg;

	if (!((struct vqstat *)v)->seen)
		g->v[g->n++] = v;
}

/*
 * statlink_config - the virtual queues changed: a statistic for each new
 * one, none for those gone
 */
void
statlink_config(void)
{
	const struct cobj *const	*list;
	struct gone			 g;
	json_t				*type, *num;
	size_t				 n, i;

	idmap_each(&by_dbid, unseen, NULL);
	list = cache_list(CFG_DN, &n);
	for (i = 0; i < n; i++) {
		type = cobj_get(list[i], "type");
		num = cobj_get(list[i], "number");
		if (list[i]->enabled && json_is_string(num) &&
		    json_is_string(type) && strcmp(json_string_value(type),
		    "VirtualQueue") == 0 && queue_vq_dbid(list[i]->dbid) !=
		    NULL)
			see(list[i]->dbid, json_string_value(num));
		json_decref(type);
		json_decref(num);
	}
	g.v = xcalloc(by_dbid.n + 1, sizeof(*g.v));
	g.n = 0;
	idmap_each(&by_dbid, collect_gone, &g);
	for (i = 0; i < g.n; i++)
		forget(g.v[i]);
	free(g.v);
	/* The link, once there is something to ask (the stats worker loads
	 * the same configuration meanwhile). */
	if (!configured && worker_conf()->workers[WORKER_STATS].enabled &&
	    worker_conf()->admin_token == NULL)
		log_warnx("routing: no admin token: the stats worker cannot be "
		    "asked, and aqt=stat is unknown");
	configured = 1;
	if (moved()) {
		disconnect();
		connect_stats();
	}
	open_due();
}

/* forget - a queue gone: its statistic closed */
static void
forget(struct vqstat *v)
{
	if (v->sid != 0) {
		close_sid(v->sid);
		idmap_del(&by_sid, (uint64_t)v->sid);
	}
	idmap_del(&by_dbid, (uint64_t)v->dbid);
	free(v);
}

/* ---- the link ---- */

/* addr_of - where the stats worker is reached, from its listen address */
static void
addr_of(const struct conf_addr *a, char *host, size_t len)
{
	if (a->host[0] == '\0' || strcmp(a->host, "0.0.0.0") == 0 ||
	    strcmp(a->host, "*") == 0)
		snprintf(host, len, "127.0.0.1");
	else if (strcmp(a->host, "::") == 0)
		snprintf(host, len, "::1");
	else
		snprintf(host, len, "%s", a->host);
}

/* connect_stats - a link to the stats worker, if it is configured */
static void
connect_stats(void)
{
	const struct conf		*c = worker_conf();
	const struct conf_worker	*w = &c->workers[WORKER_STATS];
	struct sess_client_conf		 sc;
	struct sess_client_handlers	 h = { on_up, on_event, on_down };

	at_host[0] = at_port[0] = '\0';
	free(at_token);
	at_token = NULL;
	tls_ctx_free(at_tls);
	at_tls = NULL;
	if (!w->enabled || c->admin_token == NULL)
		return;
	addr_of(&w->listen, at_host, sizeof(at_host));
	snprintf(at_port, sizeof(at_port), "%d", w->listen.port);
	at_token = xstrdup(c->admin_token);
	memset(&sc, 0, sizeof(sc));
	sc.host = at_host;
	sc.port = at_port;
	sc.token = at_token;
	sc.client = "tenantd-routing";
	sc.ping_ms = PING_MS;
	if (w->tls.ctx != NULL) {
		at_tls = tls_ctx_ref(w->tls.ctx);
		sc.tls = tls_client_own(at_tls);
	}
	cl = sess_client_new(rt.base, &sc, &h, NULL);
	tls_ctx_free(sc.tls);	/* the client keeps its own reference */
}

static void
reset_one(uint64_t k, void *v, void *arg)
{
	struct vqstat	*s = v;

	s->sid = 0;
	s->has = s->opening = 0;
	s->tries = 0;
	s->retry_ms = 0;
}

/* disconnect - no link: nothing is open */
static void
disconnect(void)
{
	sess_client_free(cl);
	cl = NULL;
	up = 0;
	idmap_clear(&by_sid);
	idmap_each(&by_dbid, reset_one, NULL);
}

/* moved - the stats worker's address, certificate or the admin token changed (a
 * reload) */
static int
moved(void)
{
	const struct conf		*c = worker_conf();
	const struct conf_worker	*w = &c->workers[WORKER_STATS];
	char				 host[256], port[16];

	if (!w->enabled || c->admin_token == NULL)
		return cl != NULL;
	addr_of(&w->listen, host, sizeof(host));
	snprintf(port, sizeof(port), "%d", w->listen.port);
	return cl == NULL || strcmp(host, at_host) != 0 ||
	    strcmp(port, at_port) != 0 || at_token == NULL ||
	    strcmp(c->admin_token, at_token) != 0 ||
	    !tls_same_cert(w->tls.ctx, at_tls);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (configured && moved()) {
		disconnect();
		connect_stats();
	}
	open_due();
}

static void
on_up(struct sess_client *c, json_t *opened_ev, void *arg)
{
	up = 1;
	idmap_each(&by_dbid, reset_one, NULL);
	open_due();
}

static void
on_down(struct sess_client *c, const char *why, void *arg)
{
	up = 0;
	idmap_clear(&by_sid);
	idmap_each(&by_dbid, reset_one, NULL);
}

/* on_event - a value, a change of validity, a statistic closed */
static void
on_event(struct sess_client *c, json_t *ev, void *arg)
{
	const char	*name = json_string_value(json_object_get(ev, "event"));
	json_int_t	 sid = json_integer_value(json_object_get(ev,
			    "statisticId"));
	struct vqstat	*v = sid > 0 ? idmap_get(&by_sid, (uint64_t)sid) :
			    NULL;

	if (name == NULL || v == NULL)
		return;
	if (strcmp(name, "EventInfo") == 0 &&
	    json_is_number(json_object_get(ev, "value"))) {
		v->value = json_number_value(json_object_get(ev, "value"));
		v->has = 1;
	} else if (strcmp(name, "EventStatisticInvalid") == 0)
		v->valid = 0;
	else if (strcmp(name, "EventStatisticValid") == 0)
		v->valid = 1;
	else if (strcmp(name, "EventStatisticClosed") == 0) {
		log_info("routing: the stats worker closed the statistic of "
		    "virtual queue %s: %s", v->number, json_string_value(
		    json_object_get(ev, "message")) ?: "-");
		idmap_del(&by_sid, (uint64_t)sid);
		v->sid = 0;
		v->has = 0;
		retry_later(v);
	}
}

/* ---- opening and closing ---- */

static void
due(uint64_t k, void *v, void *arg)
{
	struct vqstat	*s = v;

	if (s->sid == 0 && !s->opening && s->retry_ms <= *(uint64_t *)arg)
		open_one(s);
}

/* open_due - every statistic not open that may be asked now */
static void
open_due(void)
{
	uint64_t	now = now_wall_us() / 1000;

	if (up && sess_client_is_up(cl))
		idmap_each(&by_dbid, due, &now);
}

/* open_one - RequestOpenStatistic for v's queue */
static void
open_one(struct vqstat *v)
{
	struct opening	*o = xmalloc(sizeof(*o));
	json_t		*req;

	if (++opens == 0)	/* never one of a queue gone and back */
		opens = 1;
	v->gen = opens;
	o->dbid = v->dbid;
	o->gen = v->gen;
	req = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:i, s:i},"
	    " s:{s:s, s:i}}", "request", "RequestOpenStatistic", "object",
	    "type", "Queue", "id", v->number, "statistic", "category",
	    "EstimWaitTime", "per", "CallDistributed", "profile", "type",
	    "Sliding", "window", WINDOW_S, "step", STEP_S, "notify", "mode",
	    "periodic", "interval", EVERY_S);
	if (sess_client_request(cl, req, opened, o) == -1)
		free(o);
	else
		v->opening = 1;
	json_decref(req);
}

/* opened - EventStatisticOpened, or why not */
static void
opened(struct sess_client *c, json_t *reply, void *arg)
{
	struct opening	*o = arg;
	struct vqstat	*v = idmap_get(&by_dbid, (uint64_t)o->dbid);
	const char	*name = json_string_value(json_object_get(reply,
			    "event"));
	json_int_t	 sid = json_integer_value(json_object_get(reply,
			    "statisticId"));
	int		 ours = v != NULL && v->gen == o->gen;

	free(o);
	if (ours)
		v->opening = 0;
	if (reply == NULL || name == NULL)
		return;			/* the link is lost: opened again */
	if (strcmp(name, "EventStatisticOpened") == 0 && sid > 0) {
		if (!ours) {		/* for a queue gone, or renumbered */
			close_sid(sid);
			return;
		}
		v->sid = sid;
		v->value = json_number_value(json_object_get(reply, "value"));
		v->has = json_is_number(json_object_get(reply, "value"));
		v->valid = json_is_true(json_object_get(reply, "valid"));
		v->tries = 0;
		idmap_put(&by_sid, (uint64_t)sid, v);
		return;
	}
	if (!ours)
		return;
	if (v->tries == 0)
		log_warnx("routing: the stats worker did not open the "
		    "expected wait of virtual queue %s: %s: %s; asking again",
		    v->number, json_string_value(json_object_get(reply,
		    "code")) ?: name, json_string_value(json_object_get(reply,
		    "message")) ?: "-");
	retry_later(v);
}

/* retry_later - ask again after a delay that doubles, up to 30 s */
static void
retry_later(struct vqstat *v)
{
	uint64_t	ms = RETRY_MIN_MS;
	unsigned	i;

	for (i = 0; i < v->tries && ms < RETRY_MAX_MS; i++)
		ms *= 2;
	if (ms > RETRY_MAX_MS)
		ms = RETRY_MAX_MS;
	v->tries++;
	v->retry_ms = now_wall_us() / 1000 + ms;
}

/* close_sid - a statistic no longer wanted */
static void
close_sid(json_int_t sid)
{
	json_t	*req;

	if (!up || !sess_client_is_up(cl))
		return;
	req = json_pack("{s:s, s:I}", "request", "RequestCloseStatistic",
	    "statisticId", sid);
	sess_client_request(cl, req, NULL, NULL);
	json_decref(req);
}
