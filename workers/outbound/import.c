/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import - records into a calling list (CSV with a header, or NDJSON),
 * and DNC entries into ocs_dnc, each on a PostgreSQL connection of its own
 * (pgx.c: pgc does not do COPY, and an import must not hold ob.pg):
 *
 *   connect  PQconnectStartParams, polled on the loop; the body waits
 *   begin    BEGIN; the list's import lock (pg_try_advisory_xact_lock: a
 *            second import of the list, on any instance, gets 409) and
 *            max(record_id), from which records without one are numbered
 *   copy     COPY ... FROM STDIN: each piece of the body is read
 *            (csv.c), each record checked and made a COPY line in C; the
 *            body is paused while libpq's output is not flushed
 *   end      COPY ends (an error message instead after a bad line, which
 *            rolls it back), then COMMIT: 200 {"imported": n}, or 422
 *            with the bad lines (up to ERRORS_MAX; the body is read on to
 *            find them, and answered early past them)
 *
 * A DNC body goes through a temporary table, then INSERT ... ON CONFLICT
 * DO NOTHING.  Nothing of a body is held but the piece being read.
 *
 * What it may touch: the lists' tables and ocs_dnc, on its connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "http.h"
#include "import.h"
#include "lists.h"
#include "log.h"
#include "outbound_int.h"
#include "pgx.h"
#include "svc.h"
#include "util.h"

#define ERRORS_MAX	100
#define SEND_AT		65536		/* COPY data sent in pieces this big */

enum imp_kind { IMP_LIST, IMP_DNC };

/* Where body lines and COPY lines part: from copy line k, line = k + d. */
struct shift {
	size_t		 k;
	long		 d;
};

struct imp {
	enum imp_kind	 kind;
	struct http_conn *conn;
	struct pgx	*x;
	json_int_t	 list;
	char		*table;
	struct csv_col	*cols;
	struct csv_map	 map;
	int		 ndjson;
	int		 header;	/* CSV header read */
	int		 at_phone, at_customer;	/* DNC columns */
	struct csv	*rd;
	struct csv_buf	 out;
	long long	 next_id;
	size_t		 rows;
	struct shift	*shifts;
	size_t		 nshifts;
	json_t		*errors;
	size_t		 nerrors;
	int		 copying;	/* COPY FROM is open */
	int		 body_done;
	int		 answered;
	struct imp	*next;
};

static struct imp	*imps;

/* imp_end - forget the import; its transaction, if any, rolls back */
static void
imp_end(struct imp *im)
{
	struct imp	**p;
	struct olist	 *l;
	size_t		  i;

	for (p = &imps; *p != NULL; p = &(*p)->next)
		if (*p == im) {
			*p = im->next;
			break;
		}
	if (im->kind == IMP_LIST && (l = lists_get(im->list)) != NULL)
		l->importing = 0;
	pgx_free(im->x);
	csv_free(im->rd);
	csv_buf_free(&im->out);
	for (i = 0; im->cols != NULL && i < im->map.ncols; i++)
		free((char *)im->cols[i].def);
	free(im->cols);
	free(im->table);
	free(im->shifts);
	json_decref(im->errors);
	free(im);
}

/* answer - the import's one answer; the import is over */
static void
answer(struct imp *im, int status, json_t *body)
{
	char	*s = json_dumps(body, JSON_COMPACT);

	http_respond(im->conn, status, "application/json", NULL, s,
	    strlen(s));
	free(s);
	json_decref(body);
	imp_end(im);
}

static void
unavailable(struct imp *im)
{
	svc_http_error(im->conn, 503, "Unavailable", "PostgreSQL is "
	    "unavailable; nothing was imported, retry later");
	imp_end(im);
}

static void
reject(struct imp *im)
{
	answer(im, 422, json_pack("{s:s, s:s, s:I, s:O}", "error",
	    "InvalidRecords", "message", im->nerrors > ERRORS_MAX ?
	    "nothing was imported; the first 100 bad lines are below" :
	    "nothing was imported; fix the lines below", "count",
	    (json_int_t)im->nerrors, "errors", im->errors));
}

/* line_error - a bad line; past ERRORS_MAX the answer goes at once */
static void
line_error(struct imp *im, size_t line, const char *why)
{
	im->nerrors++;
	if (json_array_size(im->errors) < ERRORS_MAX)
		json_array_append_new(im->errors, json_pack("{s:I, s:s}",
		    "line", (json_int_t)line, "message", why));
}

/* note_line - copy line rows+1 comes from body line `line` */
static void
note_line(struct imp *im, size_t line)
{
	long	d = (long)line - (long)(im->rows + 1);

	if (im->nshifts > 0 && im->shifts[im->nshifts - 1].d == d)
		return;
	im->shifts = xrealloc(im->shifts, (im->nshifts + 1) *
	    sizeof(*im->shifts));
	im->shifts[im->nshifts].k = im->rows + 1;
	im->shifts[im->nshifts++].d = d;
}

/* body_line - the body's line of COPY's line k */
static size_t
body_line(const struct imp *im, size_t k)
{
	size_t	i;
	long	d = 0;

	for (i = 0; i < im->nshifts && im->shifts[i].k <= k; i++)
		d = im->shifts[i].d;
	return (size_t)((long)k + d);
}

/* list_row - one record of a list's body */
static int
list_row(struct imp *im, const struct csv_row *r, char *why, size_t wlen)
{
	if (im->ndjson)
		return csv_record_json(&im->map, r->f[0].s, r->f[0].len,
		    &im->next_id, &im->out, why, wlen);
	if (!im->header) {
		im->header = 1;
		return csv_header(&im->map, r->f, r->n, why, wlen) == -1 ?
		    -2 : 1;
	}
	return csv_record(&im->map, r->f, r->n, &im->next_id, &im->out, why,
	    wlen);
}

/* dnc_row - one entry of a DNC body */
static int
dnc_row(struct imp *im, const struct csv_row *r, char *why, size_t wlen)
{
	const char	*p = NULL, *c = NULL;
	size_t		 pl = 0, cl = 0;
	json_t		*j;
	int		 rc;

	if (!im->ndjson && !im->header) {
		im->header = 1;
		return dnc_csv_header(r->f, r->n, &im->at_phone,
		    &im->at_customer, why, wlen) == -1 ? -2 : 1;
	}
	if (!im->ndjson) {
		if (r->n != (size_t)(im->at_phone >= 0) +
		    (im->at_customer >= 0)) {
			snprintf(why, wlen, "%zu fields where the header has "
			    "%d", r->n, (im->at_phone >= 0) +
			    (im->at_customer >= 0));
			return -1;
		}
		if (im->at_phone >= 0)
			p = r->f[im->at_phone].s, pl = r->f[im->at_phone].len;
		if (im->at_customer >= 0)
			c = r->f[im->at_customer].s,
			    cl = r->f[im->at_customer].len;
		return dnc_entry(p, pl, c, cl, &im->out, why, wlen);
	}
	if ((j = json_loadb(r->f[0].s, r->f[0].len, 0, NULL)) == NULL ||
	    json_unpack(j, "{s?s%, s?s%!}", "phone", &p, &pl, "customerId",
	    &c, &cl) != 0) {
		snprintf(why, wlen, "a line must be {\"phone\": \"...\"} or "
		    "{\"customerId\": \"...\"}");
		json_decref(j);
		return -1;
	}
	rc = dnc_entry(p, pl, c, cl, &im->out, why, wlen);
	json_decref(j);
	return rc;
}

/* on_row - a record of the body: checked, and a COPY line if good */
static int
on_row(const struct csv_row *r, void *arg)
{
	struct imp	*im = arg;
	char		 why[400];
	size_t		 before = im->out.len;
	int		 rc;

	if (r->error != NULL) {
		line_error(im, r->line, r->error);
		return im->nerrors > ERRORS_MAX ? -1 : 0;
	}
	rc = im->kind == IMP_LIST ? list_row(im, r, why, sizeof(why)) :
	    dnc_row(im, r, why, sizeof(why));
	if (rc < 0) {
		line_error(im, r->line, why);
		/* Past a bad header no line can be read. */
		return rc == -2 || im->nerrors > ERRORS_MAX ? -1 : 0;
	}
	if (rc == 0) {
		if (im->nerrors > 0) {
			im->out.len = before;	/* nothing more is sent */
			return 0;
		}
		note_line(im, r->line);
		im->rows++;
	}
	return 0;
}

static void	finish(struct imp *);
static void	flushed(void *);

/* send - what is ready goes to COPY; the body waits while it is out */
static void
send_out(struct imp *im)
{
	int	rc;

	if (im->nerrors > 0)
		im->out.len = 0;
	if ((rc = pgx_put(im->x, &im->out, flushed)) == -1)
		unavailable(im);
	else if (rc == 1)
		http_body_pause(im->conn);
	else if (im->body_done)
		finish(im);
	else
		http_body_resume(im->conn);
}

static void
flushed(void *arg)
{
	struct imp	*im = arg;

	if (!im->x->up)
		unavailable(im);
	else
		send_out(im);
}

/* copy_line - the COPY line PostgreSQL's error context names, or 0 */
static size_t
copy_line(const PGresult *res)
{
	const char	*ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char	*p;

	if (ctx == NULL || (p = strstr(ctx, ", line ")) == NULL)
		return 0;
	return (size_t)strtoul(p + 7, NULL, 10);
}

/* db_error - COPY or COMMIT refused: the line, when it can be told */
static void
db_error(struct imp *im, const PGresult *res)
{
	const char	*msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char	*det = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	char		 why[600];
	size_t		 k = copy_line(res);

	snprintf(why, sizeof(why), "%s%s%s", msg != NULL ? msg : "refused",
	    det != NULL ? ": " : "", det != NULL ? det : "");
	if (k > 0 && k <= im->rows) {
		line_error(im, body_line(im, k), why);
		reject(im);
		return;
	}
	svc_http_error(im->conn, 409, "Conflict", "nothing was imported: %s",
	    why);
	imp_end(im);
}

static void
committed(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;

	if (res == NULL) {
		unavailable(im);
		return;
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		db_error(im, res);
		return;
	}
	log_info("import: %zu %s into %s", im->rows, im->kind == IMP_LIST ?
	    "records" : "DNC entries", im->table);
	answer(im, 200, json_pack("{s:I}", "imported", (json_int_t)im->rows));
}

static void
merged(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;

	if (res == NULL)
		unavailable(im);
	else if (PQresultStatus(res) != PGRES_COMMAND_OK)
		db_error(im, res);
	else
		pgx_query(x, "COMMIT", 0, NULL, committed);
}

static void
copied(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;

	im->copying = 0;
	if (res == NULL)
		unavailable(im);
	else if (im->nerrors > 0)
		reject(im);
	else if (PQresultStatus(res) != PGRES_COMMAND_OK)
		db_error(im, res);
	else if (im->kind == IMP_DNC)
		pgx_query(x, "INSERT INTO ocs_dnc (kind, value) SELECT DISTINCT "
		    "kind, value FROM ocs_dnc_in ON CONFLICT DO NOTHING", 0,
		    NULL, merged);
	else
		pgx_query(x, "COMMIT", 0, NULL, committed);
}

/* finish - the body is in, and all of it went out: end COPY */
static void
finish(struct imp *im)
{
	if (im->answered)
		return;
	im->answered = 1;
	if (im->nerrors == 0 && im->rows == 0) {
		svc_http_error(im->conn, 422, "Empty", "the body holds no %s",
		    im->kind == IMP_LIST ? "record" : "entry");
		imp_end(im);
		return;
	}
	pgx_copy_end(im->x, im->nerrors > 0 ? "the import has bad lines" :
	    NULL, copied);
}

/* on_body - a piece of the body, its end, or the client gone */
static void
on_body(struct http_conn *c, const char *data, ssize_t len, void *arg)
{
	struct imp	*im = arg;

	if (len < 0) {
		imp_end(im);
		return;
	}
	if (len > 0) {
		if (csv_feed(im->rd, data, (size_t)len, on_row, im) == -1) {
			reject(im);		/* answered early */
			return;
		}
		if (im->out.len >= SEND_AT || im->x->blocked)
			send_out(im);
		return;
	}
	if (csv_finish(im->rd, on_row, im) == -1) {
		reject(im);
		return;
	}
	im->body_done = 1;
	send_out(im);
}

static void
copy_ready(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;

	if (res == NULL) {
		unavailable(im);
		return;
	}
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		log_warnx("import into %s: %s", im->table,
		    PQresultErrorMessage(res));
		svc_http_error(im->conn, 500, "Internal", "the import could "
		    "not start: %s", PQresultErrorMessage(res));
		imp_end(im);
		return;
	}
	im->copying = 1;
	http_body_resume(im->conn);
}

/* copy_sql - COPY of every column a client sees, in table order */
static char *
copy_sql(const struct imp *im)
{
	char	*cols = lists_cols_sql(im->cols, im->map.ncols);
	char	*s = xasprintf("COPY %s (%s) FROM STDIN", im->table, cols);

	free(cols);
	return s;
}

static void
locked(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;
	char		*sql;

	if (res == NULL) {
		unavailable(im);
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		svc_http_error(im->conn, 500, "Internal", "%s",
		    PQresultErrorMessage(res));
		imp_end(im);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		svc_http_error(im->conn, 409, "ImportRunning", "another import "
		    "into this calling list is running");
		imp_end(im);
		return;
	}
	im->next_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10) + 1;
	sql = copy_sql(im);
	pgx_query(x, sql, 0, NULL, copy_ready);
	free(sql);
}

/* staged - a DNC body's temporary table is there: COPY into it */
static void
staged(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		unavailable(im);
	else
		pgx_query(x, "COPY ocs_dnc_in FROM STDIN", 0, NULL,
		    copy_ready);
}

static void
begun(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;
	char		 id[24], *sql;
	const char	*p[1] = { id };

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		unavailable(im);
		return;
	}
	if (im->kind == IMP_DNC) {
		pgx_query(x, "CREATE TEMP TABLE ocs_dnc_in (kind smallint, "
		    "value text) ON COMMIT DROP", 0, NULL, staged);
		return;
	}
	snprintf(id, sizeof(id), "%lld", (long long)im->list);
	sql = xasprintf("SELECT pg_try_advisory_xact_lock(hashtext("
	    "'tenantd:outbound_import:' || $1)), (SELECT COALESCE(max("
	    "record_id), 0) FROM %s)", im->table);
	pgx_query(x, sql, 1, p, locked);
	free(sql);
}

static void
connected(struct pgx *x, PGresult *res, void *arg)
{
	struct imp	*im = arg;

	if (!x->up)
		unavailable(im);
	else
		pgx_query(x, "BEGIN", 0, NULL, begun);
}

static struct imp *
imp_new(struct http_conn *c, enum imp_kind kind, int ndjson)
{
	struct imp	*im = xcalloc(1, sizeof(*im));

	im->kind = kind;
	im->conn = c;
	im->ndjson = ndjson;
	im->rd = csv_new(ndjson ? CSV_LINES : CSV_RFC4180);
	im->errors = json_array();
	im->at_phone = im->at_customer = -1;
	im->next = imps;
	imps = im;
	/* The body waits for COPY to be open. */
	http_body_stream(c, ob_conf()->max_import, on_body, im);
	http_body_pause(c);
	im->x = pgx_open(connected, im);
	return im;
}

void
import_records(struct http_conn *c, struct olist *l, int ndjson)
{
	struct imp	*im;

	l->importing = 1;
	im = imp_new(c, IMP_LIST, ndjson);
	im->list = l->dbid;
	im->table = xstrdup(l->table);
	im->cols = lists_cols_copy(l, &im->map.ncols);
	im->map.cols = im->cols;
	im->map.tz_ok = lists_tz_ok;
}

void
import_dnc(struct http_conn *c, int ndjson)
{
	struct imp	*im = imp_new(c, IMP_DNC, ndjson);

	im->table = xstrdup("ocs_dnc");
}

void
import_cleanup(void)
{
	while (imps != NULL)
		imp_end(imps);
}
