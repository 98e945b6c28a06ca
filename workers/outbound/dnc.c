/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dnc - the do-not-call list (ocs_dnc: kind 1 a phone number, 2 a
 * customer id): one entry added, read or removed over HTTP through ob.pg,
 * and the checks of an entry that a bulk body (import.c) shares.  The
 * dialler reads ocs_dnc itself.
 *
 * What it may touch: ocs_dnc, through ob.pg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "import.h"
#include "log.h"
#include "obhttp.h"
#include "outbound_int.h"
#include "pgc.h"
#include "svc.h"
#include "util.h"

#define CUSTOMER_MAX	255

/* The column a customer id is checked against. */
static const struct csv_col customer_col = { "customerId", CT_VARCHAR,
    CUSTOMER_MAX, CK_NONE, 1, NULL, 0 };

int
dnc_csv_header(const struct csv_field *f, size_t n, int *at_phone,
    int *at_customer, char *why, size_t wlen)
{
	size_t	i;
	int	*at;

	*at_phone = *at_customer = -1;
	for (i = 0; i < n; i++) {
		if (f[i].len == 5 && strncasecmp(f[i].s, "phone", 5) == 0)
			at = at_phone;
		else if (f[i].len == 10 && strncasecmp(f[i].s, "customerId",
		    10) == 0)
			at = at_customer;
		else {
			snprintf(why, wlen, "unknown column \"%.*s\" (phone, "
			    "customerId)", (int)(f[i].len > 64 ? 64 :
			    f[i].len), f[i].s);
			return -1;
		}
		if (*at != -1) {
			snprintf(why, wlen, "a column is there twice");
			return -1;
		}
		*at = (int)i;
	}
	return 0;
}

/* dnc_value - an entry's kind and value, checked; -1 with why */
static int
dnc_value(const char *phone, size_t plen, const char *cust, size_t clen,
    int *kind, char *out, size_t *olen, char *why, size_t wlen)
{
	char	msg[200];

	if ((plen > 0) == (clen > 0)) {
		snprintf(why, wlen, "an entry is a phone or a customerId");
		return -1;
	}
	*kind = plen > 0 ? 1 : 2;
	if (clen > CSV_FIELD_MAX || csv_value(plen > 0 ? &csv_mandatory[1] :
	    &customer_col, plen > 0 ? phone : cust, plen > 0 ? plen : clen,
	    out, olen, msg, sizeof(msg)) != 0) {
		snprintf(why, wlen, "%s: %s", plen > 0 ? "phone" :
		    "customerId", clen > CSV_FIELD_MAX ? "too long" : msg);
		return -1;
	}
	return 0;
}

int
dnc_entry(const char *phone, size_t plen, const char *cust, size_t clen,
    struct csv_buf *out, char *why, size_t wlen)
{
	char	v[CSV_FIELD_MAX + 16];
	size_t	n;
	int	kind;

	if (dnc_value(phone, plen, cust, clen, &kind, v, &n, why, wlen) == -1)
		return -1;
	csv_buf_add(out, kind == 1 ? "1\t" : "2\t", 2);
	csv_copy_text(out, v, n);
	csv_buf_add(out, "\n", 1);
	return 0;
}

/* ---- one entry ---- */

struct dreq {
	struct http_conn *conn;
	int		 kind;
	char		 value[CSV_FIELD_MAX + 16];
};

static struct dreq *
dreq_new(struct http_conn *c, int kind, const char *v, size_t n)
{
	struct dreq	*d = xcalloc(1, sizeof(*d));

	d->conn = c;
	d->kind = kind;
	memcpy(d->value, v, n);
	d->value[n] = '\0';
	return d;
}

/* entry_json - {"kind": "phone", "value": ..., "added": ...} */
static void
entry_reply(struct dreq *d, int status, const char *added)
{
	json_t	*j = json_pack("{s:s, s:s}", "kind", d->kind == 1 ? "phone" :
		    "customer", "value", d->value);
	char	*s;

	if (added != NULL)
		json_object_set_new(j, "added", json_string(added));
	s = json_dumps(j, JSON_COMPACT);
	http_respond(d->conn, status, "application/json", NULL, s, strlen(s));
	free(s);
	json_decref(j);
}

static void
db_down(struct dreq *d, const PGresult *res)
{
	if (res == NULL)
		svc_http_error(d->conn, 503, "Unavailable", "PostgreSQL is "
		    "unavailable, retry later");
	else
		svc_http_error(d->conn, 500, "Internal", "%s",
		    PQresultErrorMessage(res));
}

static void
added_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct dreq	*d = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		db_down(d, res);
	else
		entry_reply(d, PQntuples(res) == 1 ? 201 : 200, NULL);
	free(d);
}

/* dnc_add - POST /v1/dnc {"phone": ...} or {"customerId": ...} */
void
dnc_add(struct http_conn *c, json_t *body)
{
	const char	*p = NULL, *cu = NULL, *params[2];
	size_t		 pl = 0, cl = 0, n;
	char		 v[CSV_FIELD_MAX + 16], why[300], k[4];
	int		 kind;
	struct dreq	*d;

	if (json_unpack(body, "{s?s%, s?s%!}", "phone", &p, &pl, "customerId",
	    &cu, &cl) != 0) {
		svc_http_error(c, 422, "BadValue", "the body must be {\"phone\":"
		    " \"...\"} or {\"customerId\": \"...\"}");
		return;
	}
	if (dnc_value(p, pl, cu, cl, &kind, v, &n, why, sizeof(why)) == -1) {
		svc_http_error(c, 422, "BadValue", "%s", why);
		return;
	}
	d = dreq_new(c, kind, v, n);
	snprintf(k, sizeof(k), "%d", kind);
	params[0] = k;
	params[1] = d->value;
	if (pgc_query(ob.pg, "INSERT INTO ocs_dnc (kind, value) VALUES ($1, "
	    "$2) ON CONFLICT DO NOTHING RETURNING 1", 2, params, added_cb,
	    d) == -1) {
		db_down(d, NULL);
		free(d);
	}
}

static void
got_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct dreq	*d = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		db_down(d, res);
	else if (PQntuples(res) == 0)
		svc_http_error(d->conn, 404, "NotFound", "%s is not on the "
		    "do-not-call list", d->value);
	else
		entry_reply(d, 200, PQgetvalue(res, 0, 0));
	free(d);
}

static void
removed_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct dreq	*d = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		db_down(d, res);
	else if (strcmp(PQcmdTuples((PGresult *)res), "0") == 0)
		svc_http_error(d->conn, 404, "NotFound", "%s is not on the "
		    "do-not-call list", d->value);
	else
		http_respond(d->conn, 204, NULL, NULL, NULL, 0);
	free(d);
}

/* dnc_one - GET or DELETE /v1/dnc/{value}[?kind=customer] */
void
dnc_one(struct http_conn *c, int del, const char *value, size_t len,
    int customer)
{
	const char	*params[2];
	char		 v[CSV_FIELD_MAX + 16], why[300], k[4];
	size_t		 n;
	int		 kind;
	struct dreq	*d;

	if (dnc_value(customer ? NULL : value, customer ? 0 : len, customer ?
	    value : NULL, customer ? len : 0, &kind, v, &n, why,
	    sizeof(why)) == -1) {
		svc_http_error(c, 400, "BadValue", "%s", why);
		return;
	}
	d = dreq_new(c, kind, v, n);
	snprintf(k, sizeof(k), "%d", kind);
	params[0] = k;
	params[1] = d->value;
	if (pgc_query(ob.pg, del ? "DELETE FROM ocs_dnc WHERE kind = $1 AND "
	    "value = $2" : "SELECT to_char(added AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ocs_dnc WHERE kind = $1 "
	    "AND value = $2", 2, params, del ? removed_cb : got_cb, d) == -1) {
		db_down(d, NULL);
		free(d);
	}
}
