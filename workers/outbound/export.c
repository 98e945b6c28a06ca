/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export - a calling list's records, ordered by record_id, as CSV with a
 * header or as NDJSON: COPY ... TO STDOUT on a PostgreSQL connection of
 * its own (pgx.c), each row handed to the client as a chunk as it comes.
 *
 * Backpressure instead of a cut: once the client's unsent backlog reaches
 * max_output, rows stop being read (they wait in the socket, then in
 * PostgreSQL), and they are read again once the client has taken it down
 * to a quarter of that (http_stream_flow).  So a slow client gets the
 * whole list and the worker holds at most about max_output for it; one
 * that takes nothing for the idle timeout is cut off.  An export cut short
 * on PostgreSQL's side closes without the last chunk.
 *
 * What it may touch: the lists' tables, read, on its connection.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "csv.h"
#include "http.h"
#include "import.h"
#include "lists.h"
#include "log.h"
#include "pgx.h"
#include "svc.h"
#include "util.h"

struct exp {
	struct http_conn *conn;
	struct pgx	*x;
	int		 ndjson;
	int		 streaming;
	int		 gone;
	char		*table;
	char		*sql;
	struct exp	*next;
};

static struct exp	*exps;

static void
exp_free(struct exp *e)
{
	struct exp	**p;

	for (p = &exps; *p != NULL; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	pgx_free(e->x);
	free(e->table);
	free(e->sql);
	free(e);
}

/* exp_closed - the client left, or was cut off, during the export */
static void
exp_closed(void *arg)
{
	struct exp	*e = arg;

	e->gone = 1;
	pgx_copy_stop(e->x);
}

/* exp_drained - the client took most of what waited: read rows again */
static void
exp_drained(void *arg)
{
	struct exp	*e = arg;

	pgx_copy_resume(e->x);
}

/* exp_write - one row to the client; rows wait while its backlog is full */
static void
exp_write(struct exp *e, const char *row, size_t n)
{
	switch (http_stream_write(e->conn, row, n)) {
	case -1:
		exp_closed(e);
		break;
	case 1:
		pgx_copy_pause(e->x);
		break;
	}
}

static void
exp_rows(const char *buf, size_t n, void *arg)
{
	struct exp	*e = arg;
	char		*s;

	if (e->gone)
		return;
	if (e->ndjson) {
		s = xmalloc(n);
		memcpy(s, buf, n);
		n = csv_copy_unescape(s, n);
		exp_write(e, s, n);
		free(s);
	} else
		exp_write(e, buf, n);
}

static void
exp_done(struct pgx *x, PGresult *res, void *arg)
{
	struct exp	*e = arg;

	if (e->gone) {
		exp_free(e);
		return;
	}
	if (res != NULL && PQresultStatus(res) == PGRES_COPY_OUT) {
		if (http_stream_begin(e->conn, 200, e->ndjson ?
		    "application/x-ndjson" : "text/csv; charset=utf-8",
		    exp_closed, e) == -1) {
			exp_free(e);
			return;
		}
		e->streaming = 1;
		if (!e->gone)	/* it may have left as the head went */
			http_stream_flow(e->conn, exp_drained);
		pgx_copy_out(x, exp_rows, exp_done);
		return;
	}
	if (!e->streaming) {
		if (res == NULL)
			svc_http_error(e->conn, 503, "Unavailable",
			    "PostgreSQL is unavailable, retry later");
		else
			svc_http_error(e->conn, 500, "Internal", "%s",
			    PQresultErrorMessage(res));
	} else {
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_warnx("export of %s cut short: %s", e->table,
			    res != NULL ? PQresultErrorMessage(res) :
			    "PostgreSQL was lost");
			http_stream_abort(e->conn);	/* not a whole one */
		} else
			http_stream_end(e->conn);
	}
	exp_free(e);
}

/* exp_connected - COPY the columns a client sees, ordered by record_id */
static void
exp_connected(struct pgx *x, PGresult *res, void *arg)
{
	struct exp	*e = arg;

	if (!x->up) {
		exp_done(x, NULL, e);
		return;
	}
	pgx_query(x, e->sql, 0, NULL, exp_done);
}

void
export_list(struct http_conn *c, struct olist *l, int ndjson)
{
	struct exp	*e = xcalloc(1, sizeof(*e));
	char		*cols = lists_cols_sql(l->cols, l->ncols), *sql;

	if (ndjson)
		sql = xasprintf("COPY (SELECT row_to_json(r) FROM (SELECT %s "
		    "FROM %s ORDER BY record_id) r) TO STDOUT", cols, l->table);
	else
		sql = xasprintf("COPY (SELECT %s FROM %s ORDER BY record_id) "
		    "TO STDOUT WITH (FORMAT csv, HEADER)", cols, l->table);
	free(cols);
	e->conn = c;
	e->ndjson = ndjson;
	e->table = xstrdup(l->table);
	e->next = exps;
	exps = e;
	e->sql = sql;
	e->x = pgx_open(exp_connected, e);
}

void
export_cleanup(void)
{
	while (exps != NULL)
		exp_free(exps);
}
