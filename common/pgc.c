/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgc - a non-blocking PostgreSQL client on a libevent loop.
 *
 * The connection is made with PQconnectStartParams and PQconnectPoll, each
 * poll step waiting on whichever socket libpq uses at that moment (it
 * changes when libpq moves to the next address of a host).  Once up, one
 * persistent read event watches the socket, so that a server that goes away
 * while the client is idle is noticed at once; a write event is added only
 * while PQflush has output pending.  Queries run one at a time: the head of
 * the queue, or while a transaction holds the connection, the next query
 * of that transaction.
 *
 * The reconnecting, the outage log lines and the freeing from a callback
 * are link's (link.h): failures are handed to callbacks from its deferred
 * event, never from the caller's stack, and pgc_free from a callback only
 * marks the client dying: the outermost event handler frees it on its way
 * out.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "link.h"
#include "log.h"
#include "pgc.h"
#include "strmap.h"
#include "util.h"

#define PGC_QUEUE_LIMIT		10000
#define PGC_MAX_PARAMS		65535

#define PGCQ_BEGIN	0x01	/* the BEGIN of a transaction */
#define PGCQ_END	0x02	/* its COMMIT or ROLLBACK */
#define PGCQ_PREPARING	0x04	/* its PREPARE is out */

struct pgc_query {
	TAILQ_ENTRY(pgc_query)	 entry;
	struct pgc_txn		*txn;
	int			 flags;
	char			*sql;
	char			*name;		/* a prepared statement's */
	int			 nparams;
	char			**params;
	pgc_result_cb		*cb;
	void			*arg;
};
TAILQ_HEAD(pgc_queries, pgc_query);

struct pgc_txn {
	TAILQ_ENTRY(pgc_txn)	 entry;
	struct pgc		*pgc;
	int			 failed;	/* its connection is gone */
	int			 ended;		/* COMMIT or ROLLBACK queued */
};

struct pgc {
	struct link		 link;		/* name, state, retries */
	struct event_base	*base;
	char			*conninfo;
	char			*password;
	pgc_state_cb		*state_cb;
	void			*state_arg;
	PGconn			*conn;
	struct event		*ev_io;		/* connect step, then reads */
	struct event		*ev_wr;		/* output pending */
	struct pgc_queries	 queue;		/* not yet sent */
	struct pgc_queries	 failed;	/* to be answered NULL */
	size_t			 nqueue;
	size_t			 queue_limit;
	struct pgc_query	*inflight;
	PGresult		*last;		/* latest result of inflight */
	struct pgc_txn		*txn;		/* holds the connection */
	TAILQ_HEAD(, pgc_txn)	 txns;
	struct strmap		 prepared;	/* names, on this connection */
	char			 why[256];
};

_Static_assert(PGC_DOWN == (int)LINK_DOWN && PGC_CONNECTING ==
    (int)LINK_CONNECTING && PGC_UP == (int)LINK_UP, "pgc_state is link_state");

static void	pgc_connect(void *);
static void	pgc_kick(struct pgc *);
static void	pgc_send(struct pgc *, struct pgc_query *);
static void	pgc_lost(void *, const char *);
static void	pgc_on_defer(void *);
static void	pgc_destroy(void *);
static void	pgc_on_state(void *, enum link_state);
static void	pgc_on_connect(evutil_socket_t, short, void *);
static void	pgc_on_io(evutil_socket_t, short, void *);

static const struct link_ops pgc_link_ops = {
	.connect = pgc_connect, .lost = pgc_lost, .defer = pgc_on_defer,
	.destroy = pgc_destroy, .state = pgc_on_state,
};

/* pgc_line - the first line of a libpq message, for one log line */
static const char *
pgc_line(struct pgc *p, const char *msg)
{
	snprintf(p->why, sizeof(p->why), "%.*s", (int)strcspn(msg, "\n"),
	    msg);
	return p->why[0] != '\0' ? p->why : "connection failed";
}

/* pgc_why - libpq's last error on the connection */
static const char *
pgc_why(struct pgc *p)
{
	return pgc_line(p, p->conn != NULL ? PQerrorMessage(p->conn) : "");
}

/* pgc_label - "postgres host:port/dbname" from conninfo, without secrets */
static char *
pgc_label(const char *conninfo, char **err)
{
	PQconninfoOption	*opts, *o;
	const char		*host = NULL, *port = NULL, *db = NULL;
	char			*label;

	if ((opts = PQconninfoParse(conninfo, err)) == NULL)
		return NULL;
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0 ||
		    (host == NULL && strcmp(o->keyword, "hostaddr") == 0))
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	label = xasprintf("postgres %s:%s/%s", host ? host : "local",
	    port ? port : "5432", db ? db : "default");
	PQconninfoFree(opts);
	return label;
}

/* pgc_new - a client that starts connecting once the loop runs */
struct pgc *
pgc_new(struct event_base *base, const char *conninfo, const char *password,
    pgc_state_cb *cb, void *arg)
{
	struct pgc	*p;
	char		*err = NULL, *label;

	if ((label = pgc_label(conninfo, &err)) == NULL) {
		if (err == NULL)
			fatalx("pgc: out of memory");
		log_warnx("postgres: bad conninfo: %.*s",
		    (int)strcspn(err, "\n"), err);
		PQfreemem(err);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->conninfo = xstrdup(conninfo);
	p->password = password != NULL ? xstrdup(password) : NULL;
	p->state_cb = cb;
	p->state_arg = arg;
	p->queue_limit = PGC_QUEUE_LIMIT;
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->failed);
	TAILQ_INIT(&p->txns);
	link_init(&p->link, base, label, &pgc_link_ops, p);
	return p;
}

/* pgc_set_connect_timeout - how long a connect attempt may take */
void
pgc_set_connect_timeout(struct pgc *p, unsigned ms)
{
	link_set_connect_timeout(&p->link, ms);
}

/* pgc_set_queue_limit - how many queries may wait or run; 0 for no limit */
void
pgc_set_queue_limit(struct pgc *p, size_t limit)
{
	p->queue_limit = limit;
}

/* pgc_set_backoff - the first and the largest delay between attempts */
void
pgc_set_backoff(struct pgc *p, unsigned base_ms, unsigned max_ms)
{
	link_set_backoff(&p->link, base_ms, max_ms);
}

/* pgc_state - down, connecting or up, for health and metrics */
enum pgc_state
pgc_state(const struct pgc *p)
{
	return (enum pgc_state)link_state(&p->link);
}

/* pgc_name - the name used in log lines */
const char *
pgc_name(const struct pgc *p)
{
	return link_name(&p->link);
}

/* pgc_queued - queries waiting or running */
size_t
pgc_queued(const struct pgc *p)
{
	return p->nqueue + (p->inflight != NULL);
}

/* pgc_up_now - whether the connection is up and the client not dying */
static int
pgc_up_now(const struct pgc *p)
{
	return link_state(&p->link) == LINK_UP && !link_dying(&p->link);
}

/* pgc_on_state - report a state change to the creator of the client */
static void
pgc_on_state(void *arg, enum link_state s)
{
	struct pgc	*p = arg;

	if (p->state_cb != NULL)
		p->state_cb(p, (enum pgc_state)s, p->state_arg);
}

/* pgc_query_new - copy a query, its SQL and parameters */
static struct pgc_query *
pgc_query_new(struct pgc_txn *t, int flags, const char *sql, int nparams,
    const char *const *params, pgc_result_cb *cb, void *arg)
{
	struct pgc_query	*q;
	int			 i;

	q = xcalloc(1, sizeof(*q));
	q->txn = t;
	q->flags = flags;
	q->sql = xstrdup(sql);
	q->nparams = nparams;
	if (nparams > 0)
		q->params = xcalloc((size_t)nparams, sizeof(char *));
	for (i = 0; i < nparams; i++)
		if (params[i] != NULL)
			q->params[i] = xstrdup(params[i]);
	q->cb = cb;
	q->arg = arg;
	return q;
}

/* pgc_query_free - free a query and its copies */
static void
pgc_query_free(struct pgc_query *q)
{
	int	i;

	for (i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	free(q->name);
	free(q);
}

/* pgc_txn_fail - a transaction lost its connection: fail what it queued */
static void
pgc_txn_fail(struct pgc *p, struct pgc_txn *t)
{
	struct pgc_query	*q, *next;

	t->failed = 1;
	if (p->txn == t)
		p->txn = NULL;
	for (q = TAILQ_FIRST(&p->queue); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->txn != t)
			continue;
		TAILQ_REMOVE(&p->queue, q, entry);
		p->nqueue--;
		TAILQ_INSERT_TAIL(&p->failed, q, entry);
	}
	link_defer(&p->link);
}

/* pgc_deliver - hand a query its result, then forget it */
static void
pgc_deliver(struct pgc *p, struct pgc_query *q, const PGresult *res)
{
	struct pgc_txn	*t = q->txn;

	if (t != NULL && !t->failed && (res == NULL ||
	    ((q->flags & PGCQ_BEGIN) &&
	    PQresultStatus(res) != PGRES_COMMAND_OK)))
		pgc_txn_fail(p, t);
	if (t != NULL && (q->flags & PGCQ_END) && p->txn == t)
		p->txn = NULL;
	if (q->cb != NULL) {
		link_enter(&p->link);
		q->cb(p, res, q->arg);
		link_return(&p->link);
	}
	if (t != NULL && (q->flags & PGCQ_END)) {
		TAILQ_REMOVE(&p->txns, t, entry);
		free(t);
	}
	pgc_query_free(q);
}

/* pgc_fail_all - answer NULL to every query of a list, in order */
static void
pgc_fail_all(struct pgc *p, struct pgc_queries *list)
{
	struct pgc_query	*q;

	while ((q = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, q, entry);
		pgc_deliver(p, q, NULL);
	}
}

/* pgc_close - drop the connection and its events */
static void
pgc_close(struct pgc *p)
{
	if (p->ev_io != NULL)
		event_free(p->ev_io);
	if (p->ev_wr != NULL)
		event_free(p->ev_wr);
	p->ev_io = p->ev_wr = NULL;
	PQclear(p->last);
	p->last = NULL;
	if (p->conn != NULL)
		PQfinish(p->conn);
	p->conn = NULL;
	strmap_clear(&p->prepared);	/* a new session has none */
}

/* pgc_unsend - put the running query back at the head of the queue */
static void
pgc_unsend(struct pgc *p)
{
	if (p->inflight == NULL)
		return;
	p->inflight->flags &= ~PGCQ_PREPARING;
	TAILQ_INSERT_HEAD(&p->queue, p->inflight, entry);
	p->nqueue++;
	p->inflight = NULL;
}

/*
 * pgc_lost - the connection failed or broke.  Every query not answered yet
 * gets NULL, since whether it ran is unknown, and every open transaction is
 * void; a new connection is tried after the backoff delay.
 */
static void
pgc_lost(void *arg, const char *why)
{
	struct pgc	*p = arg;
	struct pgc_txn	*t;

	pgc_close(p);
	pgc_unsend(p);
	TAILQ_CONCAT(&p->failed, &p->queue, entry);
	p->nqueue = 0;
	p->txn = NULL;
	TAILQ_FOREACH(t, &p->txns, entry)
		t->failed = 1;
	link_defer(&p->link);
	link_down(&p->link, why);
}

/* pgc_watch - wait for libpq's current socket to become ready for what */
static void
pgc_watch(struct pgc *p, short what)
{
	int	fd = PQsocket(p->conn);

	if (p->ev_io != NULL)
		event_free(p->ev_io);
	p->ev_io = NULL;
	if (fd < 0) {
		pgc_lost(p, "no socket");
		return;
	}
	if ((p->ev_io = event_new(p->base, fd, what, pgc_on_connect,
	    p)) == NULL || event_add(p->ev_io, NULL) == -1)
		fatalx("pgc: cannot watch fd %d", fd);
}

/* pgc_notice - server notices go to the log, not to stderr as libpq does */
static void
pgc_notice(void *arg, const char *msg)
{
	struct pgc	*p = arg;

	log_debug("%s: %.*s", pgc_name(p), (int)strcspn(msg, "\n"), msg);
}

/* pgc_connect - start a connection attempt */
static void
pgc_connect(void *arg)
{
	struct pgc	*p = arg;
	/*
	 * Later keywords win: conninfo overrides the application name and
	 * the options, and the password overrides conninfo; a NULL value is
	 * ignored.  JIT is off by default: tenantd's queries are short, and
	 * a misestimated plan must not cost a 10 ms compile per query.
	 */
	const char	*kw[] = { "fallback_application_name", "options",
			    "dbname", "password", NULL };
	const char	*val[] = { "tenantd", "-c jit=off", p->conninfo,
			    p->password, NULL };

	if ((p->conn = PQconnectStartParams(kw, val, 1)) == NULL)
		fatalx("pgc: out of memory");
	PQsetNoticeProcessor(p->conn, pgc_notice, p);
	if (PQstatus(p->conn) == CONNECTION_BAD) {
		pgc_lost(p, pgc_why(p));
		return;
	}
	link_attempt(&p->link);
	pgc_watch(p, EV_WRITE);
}

/* pgc_up - the connection is ready: watch it, report, start sending */
static void
pgc_up(struct pgc *p)
{
	int	fd = PQsocket(p->conn);

	if (PQsetnonblocking(p->conn, 1) != 0) {
		pgc_lost(p, pgc_why(p));
		return;
	}
	event_free(p->ev_io);
	p->ev_io = event_new(p->base, fd, EV_READ | EV_PERSIST, pgc_on_io, p);
	p->ev_wr = event_new(p->base, fd, EV_WRITE, pgc_on_io, p);
	if (p->ev_io == NULL || p->ev_wr == NULL ||
	    event_add(p->ev_io, NULL) == -1)
		fatalx("pgc: cannot watch fd %d", fd);
	link_up(&p->link);
	pgc_kick(p);
}

/* pgc_step - one PQconnectPoll step */
static void
pgc_step(struct pgc *p)
{
	switch (PQconnectPoll(p->conn)) {
	case PGRES_POLLING_READING:
		pgc_watch(p, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		pgc_watch(p, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		pgc_up(p);
		break;
	default:
		pgc_lost(p, pgc_why(p));
		break;
	}
}

/* pgc_flush - push pending output; 0, or -1 when the connection broke */
static int
pgc_flush(struct pgc *p)
{
	switch (PQflush(p->conn)) {
	case 0:
		return 0;
	case 1:
		event_add(p->ev_wr, NULL);
		return 0;
	default:
		pgc_lost(p, pgc_why(p));
		return -1;
	}
}

/* pgc_next - the query to send next, respecting a running transaction */
static struct pgc_query *
pgc_next(struct pgc *p)
{
	struct pgc_query	*q;

	if (p->txn == NULL)
		return TAILQ_FIRST(&p->queue);
	TAILQ_FOREACH(q, &p->queue, entry)
		if (q->txn == p->txn)
			return q;
	return NULL;
}

/* pgc_kick - send the next query if the connection is up and idle */
static void
pgc_kick(struct pgc *p)
{
	struct pgc_query	*q;

	if (!pgc_up_now(p) || p->inflight != NULL || (q = pgc_next(p)) == NULL)
		return;
	TAILQ_REMOVE(&p->queue, q, entry);
	p->nqueue--;
	p->inflight = q;
	if (q->txn != NULL)
		p->txn = q->txn;
	pgc_send(p, q);
}

/* pgc_send - send q, the query now in flight: a named one is prepared
 * first when this connection has not prepared it yet */
static void
pgc_send(struct pgc *p, struct pgc_query *q)
{
	int	ok;

	if (q->name != NULL && strmap_get(&p->prepared, q->name) == NULL) {
		q->flags |= PGCQ_PREPARING;
		ok = PQsendPrepare(p->conn, q->name, q->sql, q->nparams, NULL);
	} else if (q->name != NULL)
		ok = PQsendQueryPrepared(p->conn, q->name, q->nparams,
		    (const char *const *)q->params, NULL, NULL, 0);
	else if (q->nparams == 0)
		ok = PQsendQuery(p->conn, q->sql);
	else
		ok = PQsendQueryParams(p->conn, q->sql, q->nparams, NULL,
		    (const char *const *)q->params, NULL, NULL, 0);
	if (!ok)
		pgc_lost(p, pgc_why(p));
	else
		pgc_flush(p);
}

/*
 * pgc_ended - whether a result ends the session rather than answers the
 * query: a FATAL or PANIC error (the server terminates the backend, as on
 * shutdown or pg_terminate_backend), or any error on a broken connection.
 */
static int
pgc_ended(struct pgc *p, const PGresult *res)
{
	const char	*sev;

	if (res == NULL)
		return PQstatus(p->conn) == CONNECTION_BAD;
	if (PQresultStatus(res) != PGRES_FATAL_ERROR)
		return 0;
	if (PQstatus(p->conn) == CONNECTION_BAD)
		return 1;
	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	return sev != NULL && (strcmp(sev, "FATAL") == 0 ||
	    strcmp(sev, "PANIC") == 0);
}

/*
 * pgc_complete - the running query has all its results.  When they say
 * that the session ended, they are not the query's answer: whether it ran
 * is unknown, so it gets NULL.
 */
static void
pgc_complete(struct pgc *p)
{
	struct pgc_query	*q = p->inflight;
	PGresult		*res = p->last;
	const char		*state;

	if (pgc_ended(p, res)) {
		pgc_lost(p, pgc_line(p, res != NULL ?
		    PQresultErrorMessage(res) : PQerrorMessage(p->conn)));
		return;
	}
	if ((q->flags & PGCQ_PREPARING) && res != NULL &&
	    PQresultStatus(res) == PGRES_COMMAND_OK) {
		/* prepared: now the query itself */
		q->flags &= ~PGCQ_PREPARING;
		strmap_put(&p->prepared, q->name, (void *)1);
		PQclear(res);
		p->last = NULL;
		pgc_send(p, q);
		return;
	}
	p->inflight = NULL;
	p->last = NULL;
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (q->name != NULL && state != NULL && strcmp(state, "26000") == 0)
		strmap_del(&p->prepared, q->name);	/* gone: again next time */
	pgc_deliver(p, q, res);
	PQclear(res);
	pgc_kick(p);
}

/* pgc_collect - take every result libpq can give without blocking */
static void
pgc_collect(struct pgc *p)
{
	PGresult	*res;

	while (pgc_up_now(p) && p->inflight != NULL && !PQisBusy(p->conn)) {
		if ((res = PQgetResult(p->conn)) == NULL) {
			pgc_complete(p);
			continue;
		}
		PQclear(p->last);
		p->last = res;
		switch (PQresultStatus(res)) {
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			pgc_lost(p, "COPY is not supported");
			return;
		default:
			break;
		}
	}
	if (pgc_up_now(p) && PQstatus(p->conn) == CONNECTION_BAD)
		pgc_lost(p, pgc_why(p));
}

/* pgc_on_connect - the socket is ready for the next connect step */
static void
pgc_on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct pgc	*p = arg;

	link_enter(&p->link);
	pgc_step(p);
	link_leave(&p->link);
}

/* pgc_read - input, or the server went away */
static void
pgc_read(struct pgc *p)
{
	PGnotify	*n;

	if (!PQconsumeInput(p->conn)) {
		pgc_lost(p, pgc_why(p));
		return;
	}
	while ((n = PQnotifies(p->conn)) != NULL)
		PQfreemem(n);
	if (event_pending(p->ev_wr, EV_WRITE, NULL) && pgc_flush(p) == -1)
		return;
	pgc_collect(p);
}

/* pgc_on_io - the up connection has input, or room for pending output */
static void
pgc_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct pgc	*p = arg;

	link_enter(&p->link);
	if (what & EV_READ)
		pgc_read(p);
	else
		pgc_flush(p);
	link_leave(&p->link);
}

/* pgc_on_defer - answer failed queries, then send what is queued */
static void
pgc_on_defer(void *arg)
{
	struct pgc		*p = arg;
	struct pgc_queries	 batch;

	/* only this batch: a caller retrying at once waits a loop turn */
	TAILQ_INIT(&batch);
	TAILQ_CONCAT(&batch, &p->failed, entry);
	pgc_fail_all(p, &batch);
	pgc_kick(p);
}

/* pgc_full - whether the queue is at its limit */
static int
pgc_full(const struct pgc *p)
{
	return p->queue_limit != 0 && pgc_queued(p) >= p->queue_limit;
}

/* pgc_enqueue - queue a query, or fail it from the loop when down */
static int
pgc_enqueue(struct pgc *p, struct pgc_query *q)
{
	if (link_state(&p->link) == LINK_DOWN ||
	    (q->txn != NULL && q->txn->failed))
		TAILQ_INSERT_TAIL(&p->failed, q, entry);
	else {
		TAILQ_INSERT_TAIL(&p->queue, q, entry);
		p->nqueue++;
	}
	link_defer(&p->link);
	return 0;
}

/* pgc_query - queue a parameterised query */
int
pgc_query(struct pgc *p, const char *sql, int nparams,
    const char *const *params, pgc_result_cb *cb, void *arg)
{
	if (link_dying(&p->link) || pgc_full(p) || nparams < 0 ||
	    nparams > PGC_MAX_PARAMS || (nparams > 0 && params == NULL))
		return -1;
	return pgc_enqueue(p, pgc_query_new(NULL, 0, sql, nparams, params,
	    cb, arg));
}

int
pgc_query_named(struct pgc *p, const char *name, const char *sql,
    int nparams, const char *const *params, pgc_result_cb *cb, void *arg)
{
	struct pgc_query	*q;

	if (link_dying(&p->link) || pgc_full(p) || nparams < 0 ||
	    nparams > PGC_MAX_PARAMS || (nparams > 0 && params == NULL))
		return -1;
	q = pgc_query_new(NULL, 0, sql, nparams, params, cb, arg);
	q->name = xstrdup(name);
	return pgc_enqueue(p, q);
}

/* pgc_ping - a health probe through the whole queue */
int
pgc_ping(struct pgc *p, pgc_result_cb *cb, void *arg)
{
	return pgc_query(p, "SELECT 1", 0, NULL, cb, arg);
}

/* pgc_begin - queue a BEGIN and return the transaction */
struct pgc_txn *
pgc_begin(struct pgc *p)
{
	struct pgc_txn	*t;

	if (link_dying(&p->link) || pgc_full(p))
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->pgc = p;
	t->failed = link_state(&p->link) == LINK_DOWN;
	TAILQ_INSERT_TAIL(&p->txns, t, entry);
	pgc_enqueue(p, pgc_query_new(t, PGCQ_BEGIN, "BEGIN", 0, NULL, NULL,
	    NULL));
	return t;
}

/* pgc_txn_query - queue a query inside a transaction */
int
pgc_txn_query(struct pgc_txn *t, const char *sql, int nparams,
    const char *const *params, pgc_result_cb *cb, void *arg)
{
	if (t->ended || link_dying(&t->pgc->link) || nparams < 0 ||
	    nparams > PGC_MAX_PARAMS || (nparams > 0 && params == NULL))
		return -1;
	return pgc_enqueue(t->pgc, pgc_query_new(t, 0, sql, nparams, params,
	    cb, arg));
}

/* pgc_txn_end - queue the COMMIT or ROLLBACK that ends a transaction */
static int
pgc_txn_end(struct pgc_txn *t, const char *sql, pgc_result_cb *cb,
    void *arg)
{
	if (t->ended || link_dying(&t->pgc->link))
		return -1;
	t->ended = 1;
	return pgc_enqueue(t->pgc, pgc_query_new(t, PGCQ_END, sql, 0, NULL,
	    cb, arg));
}

/* pgc_commit - queue the COMMIT that ends a transaction */
int
pgc_commit(struct pgc_txn *t, pgc_result_cb *cb, void *arg)
{
	return pgc_txn_end(t, "COMMIT", cb, arg);
}

/* pgc_rollback - queue the ROLLBACK that ends a transaction */
int
pgc_rollback(struct pgc_txn *t, pgc_result_cb *cb, void *arg)
{
	return pgc_txn_end(t, "ROLLBACK", cb, arg);
}

/* pgc_destroy - answer NULL to everything pending and free the client */
static void
pgc_destroy(void *arg)
{
	struct pgc	*p = arg;
	struct pgc_txn	*t;

	pgc_close(p);
	pgc_unsend(p);
	TAILQ_CONCAT(&p->failed, &p->queue, entry);
	pgc_fail_all(p, &p->failed);
	while ((t = TAILQ_FIRST(&p->txns)) != NULL) {
		TAILQ_REMOVE(&p->txns, t, entry);
		free(t);
	}
	link_free(&p->link);
	free(p->conninfo);
	if (p->password != NULL) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	free(p);
}

/* pgc_free - close and free; from a callback, once the callback returns */
void
pgc_free(struct pgc *p)
{
	if (p != NULL && link_kill(&p->link))
		link_reap(&p->link);
}
