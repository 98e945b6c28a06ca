/* SPDX-License-Identifier: Apache-2.0 */
/*
 * records - a calling list's records over HTTP, through ob.pg with
 * parameters: a query (filters, paging by record_id), one record read,
 * changed (its columns checked as an import line is) or deleted.  A
 * record being dialled (record_status 2 Retrieved, its lease running) is
 * neither changed nor deleted: 409.  lease_* are never shown or set.
 *
 * What it may touch: the lists' tables, through ob.pg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lists.h"
#include "obhttp.h"
#include "outbound_int.h"
#include "pgc.h"
#include "svc.h"
#include "util.h"

#define LIMIT_DEFAULT	100
#define LIMIT_MAX	10000
#define PARAMS_MAX	(CSV_FIELDS_MAX + 8)

/* The record is being dialled now. */
#define BUSY	"(record_status = 2 AND lease_until IS NOT NULL AND " \
		"lease_until > (extract(epoch FROM clock_timestamp()) * 1000)" \
		"::bigint)"

struct rreq {
	struct http_conn *conn;
	long long	 id;
	int		 del;
	char		*params[PARAMS_MAX];
	int		 nparams;
};

static void
rreq_free(struct rreq *r)
{
	int	i;

	for (i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r);
}

static void
db_down(struct http_conn *c, const PGresult *res)
{
	if (res == NULL)
		svc_http_error(c, 503, "Unavailable", "PostgreSQL is "
		    "unavailable, retry later");
	else
		svc_http_error(c, 500, "Internal", "%s",
		    PQresultErrorMessage(res));
}

/* run - the query; its one text value is the answer's body */
static void
run(struct rreq *r, const char *sql, pgc_result_cb *cb)
{
	if (pgc_query(ob.pg, sql, r->nparams, (const char *const *)r->params,
	    cb, r) == -1) {
		db_down(r->conn, NULL);
		rreq_free(r);
	}
}

static void
param(struct rreq *r, const char *s, size_t len)
{
	r->params[r->nparams] = s == NULL ? NULL : xmalloc(len + 1);
	if (s != NULL) {
		memcpy(r->params[r->nparams], s, len);
		r->params[r->nparams][len] = '\0';
	}
	r->nparams++;
}

static void
json_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct rreq	*r = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		db_down(r->conn, res);
	else if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
		svc_http_error(r->conn, 404, "NotFound", "no record %lld in "
		    "this calling list", r->id);
	else
		http_respond(r->conn, 200, "application/json", NULL,
		    PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	rreq_free(r);
}

/* filter - one query filter, checked as its column's value */
static int
filter(struct rreq *r, const struct http_request *q, const char *name,
    const struct csv_col *c, FILE *w, const char *cond)
{
	char	v[256], out[300], why[200];
	size_t	n;
	int	rc = http_query(q, name, v, sizeof(v));

	if (rc == 0)
		return 0;
	if (rc == -1 || csv_value(c, v, strlen(v), out, &n, why,
	    sizeof(why)) != 0) {
		svc_http_error(r->conn, 400, "BadParameter", "%s: %s", name,
		    rc == -1 ? "malformed" : why);
		return -1;
	}
	param(r, out, n);
	fprintf(w, " AND %s $%d", cond, r->nparams);
	return 0;
}

/* limit - ?limit=, 1 to LIMIT_MAX (default LIMIT_DEFAULT); -1 if bad */
static long
limit(const struct http_request *q)
{
	char	v[32], *end;
	long	n;
	int	rc = http_query(q, "limit", v, sizeof(v));

	if (rc == 0)
		return LIMIT_DEFAULT;
	n = rc == 1 ? strtol(v, &end, 10) : -1;
	return rc == 1 && *end == '\0' && v[0] != '\0' && n >= 1 &&
	    n <= LIMIT_MAX ? n : -1;
}

/* filters - the WHERE conditions of a query; -1 after answering 400 */
static int
filters(struct rreq *r, const struct http_request *q, struct olist *l,
    FILE *w)
{
	static const struct csv_col after_col = { "after", CT_INT, 0,
	    CK_NONNEG, 0, NULL, 0 }, cust_col = { "customer_id", CT_VARCHAR,
	    4000, CK_NONE, 0, NULL, 0 };
	char	cond[96], v[8];

	if (filter(r, q, "record_status", &csv_mandatory[4], w,
	    "record_status =") || filter(r, q, "contact_info",
	    &csv_mandatory[1], w, "contact_info =") || filter(r, q,
	    "chain_id", &csv_mandatory[CSV_COL_CHAIN_ID], w, "chain_id =") ||
	    filter(r, q, "after", &after_col, w, "record_id >"))
		return -1;
	if (l->customer == NULL) {
		if (http_query(q, "customer_id", v, sizeof(v)) == 0)
			return 0;
		svc_http_error(r->conn, 400, "BadParameter", "customer_id: "
		    "this list's format has no customer id field");
		return -1;
	}
	snprintf(cond, sizeof(cond), "%s =", l->customer);
	return filter(r, q, "customer_id", &cust_col, w, cond);
}

/* records_query - GET .../records?record_status=&...&limit=&after= */
void
records_query(struct http_conn *c, const struct http_request *q,
    struct olist *l)
{
	struct rreq	*r = xcalloc(1, sizeof(*r));
	char		*where = NULL, *cols, *sql;
	size_t		 n = 0;
	FILE		*w = open_memstream(&where, &n);
	long		 lim = limit(q);
	int		 bad;

	r->conn = c;
	if (w == NULL)
		fatal("open_memstream");
	bad = filters(r, q, l, w);
	fclose(w);
	if (!bad && lim == -1) {
		svc_http_error(c, 400, "BadParameter", "limit: an integer from "
		    "1 to %d", LIMIT_MAX);
		bad = 1;
	}
	if (bad) {
		free(where);
		rreq_free(r);
		return;
	}
	cols = lists_cols_sql(l->cols, l->ncols);
	sql = xasprintf("SELECT COALESCE(json_agg(row_to_json(r) ORDER BY "
	    "r.record_id), '[]') FROM (SELECT %s FROM %s WHERE true%s ORDER "
	    "BY record_id LIMIT %ld) r", cols, l->table, where, lim);
	run(r, sql, json_cb);
	free(sql);
	free(cols);
	free(where);
}

/* records_get - GET .../records/{id} */
void
records_get(struct http_conn *c, struct olist *l, long long id)
{
	struct rreq	*r = xcalloc(1, sizeof(*r));
	char		*cols = lists_cols_sql(l->cols, l->ncols), *sql, v[24];

	r->conn = c;
	r->id = id;
	param(r, v, (size_t)snprintf(v, sizeof(v), "%lld", id));
	sql = xasprintf("SELECT row_to_json(r) FROM (SELECT %s FROM %s WHERE "
	    "record_id = $1) r", cols, l->table);
	run(r, sql, json_cb);
	free(sql);
	free(cols);
}

/* changed_cb - (busy, the record after) or (busy, deleted count) */
static void
changed_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct rreq	*r = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQntuples(res) != 1)
		db_down(r->conn, res);
	else if (PQgetisnull(res, 0, 0))
		svc_http_error(r->conn, 404, "NotFound", "no record %lld in "
		    "this calling list", r->id);
	else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		svc_http_error(r->conn, 409, "RecordBusy", "record %lld is "
		    "being dialled; try again once its call is over", r->id);
	else if (r->del)
		http_respond(r->conn, 204, NULL, NULL, NULL, 0);
	else
		http_respond(r->conn, 200, "application/json", NULL,
		    PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
	rreq_free(r);
}

/* set_one - one column of a PATCH body, checked; -1 after answering */
static int
set_one(struct rreq *r, struct olist *l, const char *k, const json_t *v,
    FILE *w)
{
	const struct csv_col	*c = NULL;
	const char		*s;
	char			 buf[32], out[CSV_FIELD_MAX + 16], why[200];
	size_t			 i, len, n;
	int			 rc;

	for (i = 0; i < l->ncols && c == NULL; i++)
		if (strcmp(l->cols[i].name, k) == 0)
			c = &l->cols[i];
	if (c == NULL || i - 1 == CSV_COL_RECORD_ID) {
		svc_http_error(r->conn, 422, c == NULL ? "UnknownColumn" :
		    "ReadOnly", c == NULL ? "unknown column \"%.64s\"" :
		    "%s cannot be changed", k);
		return -1;
	}
	if (csv_json_text(v, buf, sizeof(buf), &s, &len) == -1 ||
	    len > CSV_FIELD_MAX) {
		svc_http_error(r->conn, 422, "BadValue", "%s: must be a string, "
		    "a number or null", k);
		return -1;
	}
	rc = csv_value(c, s != NULL ? s : "", len, out, &n, why, sizeof(why));
	if (rc == 0 && c->check == CK_TZ && (out[n] = '\0',
	    !lists_tz_ok(atoll(out), NULL)))
		rc = -1, snprintf(why, sizeof(why), "no TimeZone with dbid %.20s",
		    out);
	if (rc == -1) {
		svc_http_error(r->conn, 422, "BadValue", "%s: %s", k, why);
		return -1;
	}
	param(r, rc == 1 ? NULL : out, n);
	fprintf(w, "%s\"%s\" = $%d", r->nparams > 2 ? ", " : "", c->name,
	    r->nparams);
	return 0;
}

/* records_patch - PATCH .../records/{id}: the columns in the body */
void
records_patch(struct http_conn *c, struct olist *l, long long id,
    json_t *body)
{
	struct rreq	*r = xcalloc(1, sizeof(*r));
	char		*set = NULL, *cols, *sql, v[24];
	const char	*k;
	json_t		*val;
	size_t		 n = 0;
	FILE		*w = open_memstream(&set, &n);
	int		 bad = 0;

	r->conn = c;
	r->id = id;
	param(r, v, (size_t)snprintf(v, sizeof(v), "%lld", id));
	if (w == NULL)
		fatal("open_memstream");
	json_object_foreach(body, k, val)
		if ((bad = set_one(r, l, k, val, w)) != 0)
			break;
	fclose(w);
	if (!bad && json_object_size(body) == 0) {
		svc_http_error(c, 422, "BadValue", "the body sets no column");
		bad = 1;
	}
	if (bad) {
		free(set);
		rreq_free(r);
		return;
	}
	cols = lists_cols_sql(l->cols, l->ncols);
	sql = xasprintf("WITH cur AS (SELECT " BUSY " AS busy FROM %s WHERE "
	    "record_id = $1), u AS (UPDATE %s SET %s WHERE record_id = $1 AND "
	    "NOT " BUSY " RETURNING %s) SELECT (SELECT busy FROM cur), "
	    "(SELECT row_to_json(u) FROM u)", l->table, l->table, set, cols);
	run(r, sql, changed_cb);
	free(sql);
	free(cols);
	free(set);
}

/* records_delete - DELETE .../records/{id} */
void
records_delete(struct http_conn *c, struct olist *l, long long id)
{
	struct rreq	*r = xcalloc(1, sizeof(*r));
	char		*sql, v[24];

	r->conn = c;
	r->id = id;
	r->del = 1;
	param(r, v, (size_t)snprintf(v, sizeof(v), "%lld", id));
	sql = xasprintf("WITH cur AS (SELECT " BUSY " AS busy FROM %s WHERE "
	    "record_id = $1), d AS (DELETE FROM %s WHERE record_id = $1 AND "
	    "NOT " BUSY " RETURNING 1) SELECT (SELECT busy FROM cur), "
	    "(SELECT count(*) FROM d)", l->table, l->table);
	run(r, sql, changed_cb);
	free(sql);
}
