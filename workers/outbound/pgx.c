/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgx - a PostgreSQL connection of its own for an import or an export
 * (pgc does not do COPY, and neither may hold ob.pg): connected with
 * PQconnectStartParams and polled on the worker's loop, then non-blocking.
 * COPY FROM data waits while libpq's output is not flushed (the caller
 * pauses the body meanwhile); COPY TO rows are read while the caller
 * takes them, and wait in the socket while it has paused them.
 */
#include <stdlib.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "outbound_int.h"
#include "pgx.h"
#include "util.h"
#include "worker.h"

static void	pgx_io(evutil_socket_t, short, void *);

void
pgx_free(struct pgx *x)
{
	if (x == NULL)
		return;
	if (x->ev_rd != NULL)
		event_free(x->ev_rd);
	if (x->ev_wr != NULL)
		event_free(x->ev_wr);
	if (x->last != NULL)
		PQclear(x->last);
	if (x->conn != NULL)
		PQfinish(x->conn);	/* an open transaction rolls back */
	free(x->end_error);
	free(x);
}

/* pgx_fail - the connection is gone: the awaited result is NULL */
static void
pgx_fail(struct pgx *x)
{
	pgx_cb	*cb = x->cb;

	x->up = 0;
	x->cb = NULL;
	event_del(x->ev_rd);
	event_del(x->ev_wr);
	if (cb != NULL)
		cb(x, NULL, x->arg);
	else if (x->flushed != NULL)
		x->flushed(x->arg);
}

static void
pgx_watch(struct pgx *x, short what)
{
	event_del(x->ev_rd);
	event_del(x->ev_wr);
	event_add(what == EV_READ ? x->ev_rd : x->ev_wr, NULL);
}

struct pgx *
pgx_open(pgx_cb *cb, void *arg)
{
	const struct conf	*c = worker_conf();
	const char		*kw[] = { "fallback_application_name", "options",
				    "dbname", "password", NULL };
	const char		*val[] = { "tenantd-import",
				    "-c jit=off -c TimeZone=UTC", c->pg_conninfo,
				    c->pg_password, NULL };
	struct pgx		*x = xcalloc(1, sizeof(*x));

	x->cb = cb;
	x->arg = arg;
	if ((x->conn = PQconnectStartParams(kw, val, 1)) == NULL)
		fatalx("import: out of memory");
	x->ev_rd = event_new(ob.base, PQsocket(x->conn), EV_READ, pgx_io, x);
	x->ev_wr = event_new(ob.base, PQsocket(x->conn), EV_WRITE, pgx_io, x);
	if (PQstatus(x->conn) == CONNECTION_BAD || x->ev_rd == NULL) {
		log_warnx("import: %s", PQerrorMessage(x->conn));
		if (x->ev_rd == NULL)
			x->ev_rd = event_new(ob.base, -1, 0, pgx_io, x);
		if (x->ev_wr == NULL)
			x->ev_wr = event_new(ob.base, -1, 0, pgx_io, x);
		event_active(x->ev_wr, EV_WRITE, 0);
		return x;
	}
	pgx_watch(x, EV_WRITE);
	return x;
}

/* pgx_poll - one step of the connection's making */
static void
pgx_poll(struct pgx *x)
{
	pgx_cb	*cb;

	switch (PQconnectPoll(x->conn)) {
	case PGRES_POLLING_READING:
		pgx_watch(x, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		pgx_watch(x, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		log_warnx("import: %s", PQerrorMessage(x->conn));
		pgx_fail(x);
		return;
	}
	/* Up: reads persist from now on. */
	event_free(x->ev_rd);
	x->ev_rd = event_new(ob.base, PQsocket(x->conn), EV_READ | EV_PERSIST,
	    pgx_io, x);
	event_del(x->ev_wr);
	if (PQsetnonblocking(x->conn, 1) != 0) {
		pgx_fail(x);
		return;
	}
	event_add(x->ev_rd, NULL);
	x->up = 1;
	cb = x->cb;
	x->cb = NULL;
	cb(x, NULL, x->arg);
}

/* pgx_flush - push libpq's output; blocked until it is all out */
static int
pgx_flush(struct pgx *x)
{
	switch (PQflush(x->conn)) {
	case 0:
		x->blocked = 0;
		return 0;
	case 1:
		x->blocked = 1;
		event_add(x->ev_wr, NULL);
		return 1;
	default:
		return -1;
	}
}

int
pgx_query(struct pgx *x, const char *sql, int n, const char *const *p,
    pgx_cb *cb)
{
	x->cb = cb;
	if (!PQsendQueryParams(x->conn, sql, n, NULL, p, NULL, NULL, 0) ||
	    pgx_flush(x) == -1) {
		pgx_fail(x);
		return -1;
	}
	return 0;
}

/* pgx_results - the results there are; the awaited one to its callback */
static void
pgx_results(struct pgx *x)
{
	PGresult	*r;
	pgx_cb		*cb;

	while (x->cb != NULL && !PQisBusy(x->conn)) {
		r = PQgetResult(x->conn);
		if (r != NULL && PQresultStatus(r) != PGRES_COPY_IN &&
		    PQresultStatus(r) != PGRES_COPY_OUT) {
			if (x->last != NULL)
				PQclear(x->last);
			x->last = r;
			continue;
		}
		if (r == NULL) {
			r = x->last;
			x->last = NULL;
		}
		cb = x->cb;
		x->cb = NULL;
		if (r != NULL && PQresultStatus(r) == PGRES_COPY_OUT)
			x->copy_out = 1;
		cb(x, r, x->arg);	/* may free x */
		PQclear(r);
		return;
	}
}

/* pgx_copy_rows - COPY TO rows as they come, while not paused */
static void
pgx_copy_rows(struct pgx *x)
{
	char	*buf;
	int	 n = 0;

	while (!x->paused && (n = PQgetCopyData(x->conn, &buf, 1)) > 0) {
		x->data(buf, (size_t)n, x->arg);
		PQfreemem(buf);
		if (x->copy_out == 2)		/* stopped meanwhile */
			return;
	}
	if (n == -1 || n == -2)
		x->copy_out = 0;
}

/*
 * pgx_step - what came in: COPY TO rows (unless paused), then results; a
 * COPY TO whose reader left ends, with a NULL result
 */
static void
pgx_step(struct pgx *x)
{
	pgx_cb	*cb;

	if (x->copy_out == 1)
		pgx_copy_rows(x);
	if (x->copy_out == 2) {		/* its reader left: stop */
		cb = x->cb;
		x->copy_out = 0;
		x->cb = NULL;
		if (cb != NULL)
			cb(x, NULL, x->arg);
		return;
	}
	if (x->copy_out == 0)
		pgx_results(x);
}

static void
pgx_io(evutil_socket_t fd, short what, void *arg)
{
	struct pgx	*x = arg;
	void		 (*fl)(void *);

	if (!x->up) {
		if (PQstatus(x->conn) == CONNECTION_BAD)
			pgx_fail(x);
		else
			pgx_poll(x);
		return;
	}
	if (what & EV_WRITE) {
		if (x->ending && PQputCopyEnd(x->conn, x->end_error) != 0)
			x->ending = 0;
		if (pgx_flush(x) == -1) {
			pgx_fail(x);
			return;
		}
		if (!x->blocked && !x->ending && (fl = x->flushed) != NULL) {
			x->flushed = NULL;
			fl(x->arg);		/* may free x */
		}
		return;
	}
	if (!PQconsumeInput(x->conn)) {
		pgx_fail(x);
		return;
	}
	pgx_step(x);
}

/*
 * pgx_put - COPY data; 1 when it must wait for the connection to take
 * more (flushed(arg) then), -1 when the connection is gone
 */
int
pgx_put(struct pgx *x, struct csv_buf *b, void (*flushed)(void *))
{
	int	rc;

	if (b->len > 0) {
		rc = PQputCopyData(x->conn, b->p, (int)b->len);
		if (rc == -1)
			return -1;
		if (rc == 1)
			b->len = 0;
	}
	if ((rc = pgx_flush(x)) == -1)
		return -1;
	if (rc == 1 || b->len > 0) {
		x->blocked = 1;
		x->flushed = flushed;
		event_add(x->ev_wr, NULL);
		return 1;
	}
	return 0;
}

/* pgx_copy_end - end COPY FROM (err: abort it so); cb gets its result */
void
pgx_copy_end(struct pgx *x, const char *err, pgx_cb *cb)
{
	int	rc;

	x->cb = cb;
	free(x->end_error);
	x->end_error = err != NULL ? xstrdup(err) : NULL;
	if ((rc = PQputCopyEnd(x->conn, x->end_error)) == -1) {
		pgx_fail(x);
		return;
	}
	x->ending = rc == 0;
	if (pgx_flush(x) == -1)
		pgx_fail(x);
	else if (x->ending)
		event_add(x->ev_wr, NULL);
}

/* pgx_copy_out - the rows of a COPY TO to data, then its result to cb */
void
pgx_copy_out(struct pgx *x, pgx_data_cb *data, pgx_cb *cb)
{
	x->data = data;
	x->cb = cb;
	pgx_step(x);
}

void
pgx_copy_pause(struct pgx *x)
{
	x->paused = 1;
	event_del(x->ev_rd);
}

void
pgx_copy_resume(struct pgx *x)
{
	x->paused = 0;
	event_add(x->ev_rd, NULL);
	/* rows libpq holds already: the socket may not be readable again */
	event_active(x->ev_rd, EV_READ, 0);
}

void
pgx_copy_stop(struct pgx *x)
{
	x->copy_out = 2;
	event_active(x->ev_rd, EV_READ, 0);	/* paused, or nothing comes */
}
