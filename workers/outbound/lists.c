/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lists - the calling lists' tables (docs/outbound.md, "Calling-list
 * tables"), made and altered from the configuration: every CallingList
 * in the cache, its Format and Fields, gives the table it must have (the
 * mandatory columns, lease_owner and lease_until, then the custom
 * fields); each list whose table is not that yet is brought there in one
 * transaction on ob.pg, one list at a time:
 *
 *   lock     pg_advisory_xact_lock on a fixed key: two instances starting
 *            together make the same table once
 *   look     what ocs_lists says the worker made for the list, and whether
 *            the table is another list's, or not a list's at all
 *   make     CREATE TABLE / ADD COLUMN / CREATE INDEX, all IF NOT EXISTS;
 *            nothing is ever dropped; a renamed table or a removed field
 *            is logged once (at warn), as ocs_lists then forgets it
 *   note     ocs_lists gets the table and its columns
 *
 * A format that cannot be a table (a custom field named as a mandatory
 * column, two fields of one name, a bad default) is logged as an error
 * and its list stays unusable until it is put right.
 *
 * What it may touch: ocs_lists, ocs_dnc (its migrations, owner
 * "outbound_lists") and the lists' tables, through ob.pg; the cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cache.h"
#include "log.h"
#include "migrate.h"
#include "outbound_int.h"
#include "import.h"
#include "lists.h"
#include "pgc.h"
#include "schema.h"
#include "util.h"

#define RETRY_S		5
#define LOCK_KEY	"SELECT pg_advisory_xact_lock(hashtext(" \
			"'tenantd:outbound_lists:ddl'))"

static const struct migration migrations[] = {
	{ 1,
	  "CREATE TABLE ocs_lists ("
	  " list_dbid bigint PRIMARY KEY,"
	  " table_name text NOT NULL,"
	  " columns jsonb NOT NULL,"
	  " updated timestamptz NOT NULL DEFAULT now());"
	  "CREATE TABLE ocs_dnc ("
	  " kind smallint NOT NULL,"
	  " value text NOT NULL,"
	  " added timestamptz NOT NULL DEFAULT now(),"
	  " PRIMARY KEY (kind, value));" },
};

/* A Field's fieldType and the mandatory column it describes. */
static const struct {
	const char	*type;
	const char	*column;
} described[] = {
	{ "RecordId", "record_id" }, { "ContactInfo", "contact_info" },
	{ "ContactInfoType", "contact_info_type" },
	{ "RecordType", "record_type" }, { "RecordStatus", "record_status" },
	{ "CallResult", "call_result" }, { "Attempt", "attempt" },
	{ "DialSchedTime", "dial_sched_time" }, { "CallTime", "call_time" },
	{ "DailyFrom", "daily_from" }, { "DailyTill", "daily_till" },
	{ "TimeZone", "tz_dbid" }, { "ChainId", "chain_id" },
	{ "ChainN", "chain_n" }, { "AgentId", "agent_id" },
};

static struct olist	**lists;
static size_t		  nlists;
static int		  migrating, migrated, syncing, again;
static struct olist	 *cur;		/* being made */
static struct pgc_txn	 *txn;
static int		  txn_failed;
static struct event	 *ev_retry;

static void	sync_next(void);

/* ---- what a list's table must be ---- */

const char *
lists_quote(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "\"%s\"", name);
	return buf;
}

/* ident_ok - a name the schema allows: [a-z_][a-z0-9_]* */
static int
ident_ok(const char *s)
{
	size_t	n = strlen(s);

	return n > 0 && n < CSV_NAME_MAX && strspn(s,
	    "abcdefghijklmnopqrstuvwxyz0123456789_") == n &&
	    !(s[0] >= '0' && s[0] <= '9');
}

static const char *
jstr(const json_t *o, const char *k, const char *def)
{
	const json_t	*v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : def;
}

/* field_type - a Field's dataType as a column type */
static int
field_type(const json_t *f, struct csv_col *c)
{
	static const char *const names[] = { "int", "varchar", "char",
	    "float", "datetime" };
	static const enum csv_type types[] = { CT_INT, CT_VARCHAR, CT_CHAR,
	    CT_FLOAT, CT_DATETIME };
	const char	*t = jstr(f, "dataType", "");
	json_t		*l = json_object_get(f, "length");
	size_t		 i;

	for (i = 0; i < 5; i++)
		if (strcmp(t, names[i]) == 0)
			break;
	if (i == 5)
		return -1;
	c->type = types[i];
	c->length = json_is_integer(l) ? (int)json_integer_value(l) :
	    c->type == CT_CHAR ? 1 : 255;
	return 0;
}

/* describes - a non-Custom field naming its own mandatory column */
static int
describes(const char *ftype, const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(described) / sizeof(described[0]); i++)
		if (strcmp(described[i].type, ftype) == 0)
			return strcmp(described[i].column, name) == 0;
	return 0;
}

/* add_field - one Field of the format as a column; -1 with why */
static int
add_field(struct olist *l, const json_t *f, char **defs, char *why,
    size_t wlen)
{
	struct csv_col	*c = &l->cols[l->ncols];
	const char	*name = jstr(f, "name", ""), *ft = jstr(f, "fieldType",
			    "Custom"), *def = jstr(f, "defaultValue", NULL);
	char		 out[CSV_FIELD_MAX + 16], msg[200];
	size_t		 i, n;

	if (strcmp(ft, "Custom") != 0 || csv_reserved(name) != -1) {
		if (describes(ft, name))
			return 0;
		snprintf(why, wlen, "field \"%s\" (%s) %s", name, ft,
		    csv_reserved(name) != -1 ? "is named as a column every "
		    "list has" : "does not name the column of its fieldType");
		return -1;
	}
	for (i = 0; i < l->ncols; i++)
		if (strcasecmp(l->cols[i].name, name) == 0) {
			snprintf(why, wlen, "two fields named \"%s\"", name);
			return -1;
		}
	memset(c, 0, sizeof(*c));
	if (!ident_ok(name) || field_type(f, c) == -1) {
		snprintf(why, wlen, "field \"%s\": a bad name or dataType",
		    name);
		return -1;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->custom = 1;
	c->notnull = json_is_false(json_object_get(f, "isNullable"));
	if (def != NULL && *def != '\0') {
		if (csv_value(c, def, strlen(def), out, &n, msg, sizeof(msg))) {
			snprintf(why, wlen, "field \"%s\": defaultValue: %s",
			    name, msg);
			return -1;
		}
		defs[l->ncols] = xmalloc(n + 1);
		memcpy(defs[l->ncols], out, n);
		defs[l->ncols][n] = '\0';
		c->def = defs[l->ncols];
	}
	l->ncols++;
	return 0;
}

/* add_fields - the format's fields after the mandatory columns */
static int
add_fields(struct olist *l, json_int_t format, char **defs, char *why,
    size_t wlen)
{
	const struct cobj	*fo = cache_get(format), *fd;
	json_t			*fj, *fs, *v, *f;
	size_t			 i;
	int			 rc = 0;

	if (fo == NULL || fo->kind != CFG_FORMAT) {
		snprintf(why, wlen, "its format %lld is not in the "
		    "configuration", (long long)format);
		return -1;
	}
	fj = cobj_json(fo);
	fs = json_object_get(fj, "fields");
	json_array_foreach(fs, i, v) {
		fd = json_is_integer(v) ? cache_get(json_integer_value(v)) :
		    NULL;
		if (fd == NULL || fd->kind != CFG_FIELD)
			continue;
		if (l->ncols == CSV_FIELDS_MAX) {
			snprintf(why, wlen, "more than %d columns",
			    CSV_FIELDS_MAX);
			rc = -1;
			break;
		}
		f = cobj_json(fd);
		rc = add_field(l, f, defs, why, wlen);
		json_decref(f);
		if (rc == -1)
			break;
	}
	json_decref(fj);
	return rc;
}

/* col_sql - a column's definition, for CREATE TABLE or ADD COLUMN */
static void
col_sql(FILE *f, const struct csv_col *c, int is_new)
{
	char	t[32], *lit, *p;

	fprintf(f, "\"%s\" %s", c->name, csv_sql_type(c, t, sizeof(t)));
	if (c->def != NULL) {
		/* Checked by csv_value; quoted as a literal all the same. */
		fputs(" DEFAULT '", f);
		lit = xstrdup(c->def);
		for (p = lit; *p != '\0'; p++) {
			if (*p == '\'')
				fputc('\'', f);
			fputc(*p, f);
		}
		free(lit);
		fputc('\'', f);
	}
	if (c->notnull && (is_new || c->def != NULL))
		fputs(" NOT NULL", f);
	if (!c->custom && strcmp(c->name, "record_id") == 0)
		fputs(" PRIMARY KEY", f);
}

/* index_name - "<table>_<what>", cut to fit NAMEDATALEN with a hash */
static void
index_name(char *buf, size_t len, const char *table, const char *what)
{
	unsigned	h = 2166136261u;
	const char	*p;

	for (p = table; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	if (strlen(table) + strlen(what) + 1 <= 63)
		snprintf(buf, len, "\"%s_%s\"", table, what);
	else
		snprintf(buf, len, "\"%.40s_%08x_%s\"", table, h, what);
}

/* ddl - every statement that brings the table where it must be */
static char *
ddl(const struct olist *l)
{
	char	*s = NULL, ix[160];
	size_t	 n = 0, i;
	FILE	*f = open_memstream(&s, &n);

	if (f == NULL)
		fatal("open_memstream");
	fprintf(f, "CREATE TABLE IF NOT EXISTS %s (", l->table);
	for (i = 0; i < csv_nmandatory; i++) {
		col_sql(f, &l->cols[i], 1);
		fputs(", ", f);
	}
	fputs("lease_owner text, lease_until bigint", f);
	for (; i < l->ncols; i++) {
		fputs(", ", f);
		col_sql(f, &l->cols[i], 1);
	}
	fputs(");\n", f);
	for (i = csv_nmandatory; i < l->ncols; i++) {
		fprintf(f, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS ",
		    l->table);
		col_sql(f, &l->cols[i], 0);
		fputs(";\n", f);
	}
	index_name(ix, sizeof(ix), l->table_raw, "sched");
	fprintf(f, "CREATE INDEX IF NOT EXISTS %s ON %s (record_status, "
	    "dial_sched_time);\n", ix, l->table);
	/* The dialler's lease reads Ready records in this order and stops
	 * at its batch (workers/outbound/dial.c). */
	index_name(ix, sizeof(ix), l->table_raw, "ready");
	fprintf(f, "CREATE INDEX IF NOT EXISTS %s ON %s (dial_sched_time "
	    "NULLS FIRST, record_id) WHERE record_status = 1;\n", ix, l->table);
	index_name(ix, sizeof(ix), l->table_raw, "chain");
	fprintf(f, "CREATE INDEX IF NOT EXISTS %s ON %s (chain_id, chain_n);\n",
	    ix, l->table);
	index_name(ix, sizeof(ix), l->table_raw, "contact");
	fprintf(f, "CREATE INDEX IF NOT EXISTS %s ON %s (contact_info);\n", ix,
	    l->table);
	if (l->customer != NULL) {
		index_name(ix, sizeof(ix), l->table_raw, "customer");
		fprintf(f, "CREATE INDEX IF NOT EXISTS %s ON %s (%s);\n", ix,
		    l->table, l->customer);
	}
	if (fclose(f) != 0)
		fatal("open_memstream");
	return s;
}

/* olist_clear - forget what the configuration said of a list */
static void
olist_clear(struct olist *l)
{
	size_t	i;

	for (i = 0; i < l->ncols; i++)
		free((char *)l->cols[i].def);
	free(l->cols);
	free(l->table);
	free(l->table_raw);
	free(l->customer);
	free(l->bad);
	free(l->want);
	l->cols = NULL;
	l->table = l->table_raw = l->customer = l->bad = l->want = NULL;
	l->ncols = 0;
}

/* olist_build - the table the list must have, or why it cannot */
static void
olist_build(struct olist *l, const json_t *o)
{
	const char	*cust = ob_conf()->customer_id_field;
	const char	*table = jstr(o, "tableName", "");
	char		 why[300], q[80], *defs[CSV_FIELDS_MAX + 1];
	json_t		*fmt = json_object_get(o, "format");
	size_t		 i;

	olist_clear(l);
	l->cols = xcalloc(CSV_FIELDS_MAX, sizeof(*l->cols));
	memcpy(l->cols, csv_mandatory, csv_nmandatory * sizeof(*l->cols));
	memset(defs, 0, sizeof(defs));
	for (i = 0; i < csv_nmandatory; i++)	/* owned, as custom ones */
		l->cols[i].def = csv_mandatory[i].def != NULL ?
		    xstrdup(csv_mandatory[i].def) : NULL;
	l->ncols = csv_nmandatory;
	if (!ident_ok(table)) {
		l->bad = xasprintf("tableName \"%s\" is not a lowercase SQL "
		    "identifier", table);
		return;
	}
	l->table_raw = xstrdup(table);
	l->table = xstrdup(lists_quote(table, q, sizeof(q)));
	if (add_fields(l, json_is_integer(fmt) ? json_integer_value(fmt) : 0,
	    defs, why, sizeof(why)) == -1) {
		for (i = csv_nmandatory; i < CSV_FIELDS_MAX; i++)
			free(defs[i]);
		l->ncols = csv_nmandatory;
		l->bad = xstrdup(why);
		return;
	}
	for (i = csv_nmandatory; cust != NULL && i < l->ncols; i++)
		if (strcmp(l->cols[i].name, cust) == 0)
			l->customer = xstrdup(lists_quote(cust, q, sizeof(q)));
	l->want = ddl(l);
}

/* ---- the API ---- */

struct olist *
lists_get(json_int_t dbid)
{
	size_t	i;

	for (i = 0; i < nlists; i++)
		if (lists[i]->dbid == dbid && lists[i]->live)
			return lists[i];
	return NULL;
}

int
lists_ready(const struct olist *l)
{
	return l != NULL && l->bad == NULL && l->want != NULL &&
	    l->made != NULL && strcmp(l->want, l->made) == 0;
}

const char *
lists_table(json_int_t dbid)
{
	struct olist	*l = lists_get(dbid);

	return lists_ready(l) ? l->table : NULL;
}

const char *
lists_customer_column(json_int_t dbid)
{
	struct olist	*l = lists_get(dbid);

	return l != NULL && l->bad == NULL ? l->customer : NULL;
}

struct csv_col *
lists_cols_copy(const struct olist *l, size_t *n)
{
	struct csv_col	*c = xcalloc(l->ncols + 1, sizeof(*c));
	size_t		 i;

	memcpy(c, l->cols, l->ncols * sizeof(*c));
	for (i = 0; i < l->ncols; i++)
		if (c[i].def != NULL)
			c[i].def = xstrdup(c[i].def);
	*n = l->ncols;
	return c;
}

/* lists_cols_sql - columns' names, quoted, comma separated */
char *
lists_cols_sql(const struct csv_col *cols, size_t ncols)
{
	char	*s = NULL;
	size_t	 n = 0, i;
	FILE	*f = open_memstream(&s, &n);

	if (f == NULL)
		fatal("open_memstream");
	for (i = 0; i < ncols; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", cols[i].name);
	if (fclose(f) != 0)
		fatal("open_memstream");
	return s;
}

int
lists_tz_ok(long long dbid, void *arg)
{
	const struct cobj	*o = cache_get((json_int_t)dbid);

	return o != NULL && o->kind == CFG_TIME_ZONE;
}

/* olist_find - the list of dbid, live or not, made if absent */
static struct olist *
olist_find(json_int_t dbid)
{
	size_t	i;

	for (i = 0; i < nlists; i++)
		if (lists[i]->dbid == dbid)
			return lists[i];
	lists = xrealloc(lists, (nlists + 1) * sizeof(*lists));
	lists[nlists] = xcalloc(1, sizeof(**lists));
	lists[nlists]->dbid = dbid;
	return lists[nlists++];
}

/* ---- making the tables ---- */

static void
retry(evutil_socket_t fd, short what, void *arg)
{
	lists_sync();
}

static void
retry_later(void)
{
	struct timeval	tv = { RETRY_S, 0 };

	if (ev_retry == NULL)
		ev_retry = evtimer_new(ob.base, retry, NULL);
	evtimer_add(ev_retry, &tv);
}

/* made - the list's transaction ended */
static void
made(struct pgc *p, const PGresult *res, void *arg)
{
	struct olist	*l = cur;

	cur = NULL;
	txn = NULL;
	if (!txn_failed && res != NULL && PQresultStatus(res) ==
	    PGRES_COMMAND_OK && strcmp(PQcmdStatus((PGresult *)res),
	    "COMMIT") == 0) {
		free(l->made);
		l->made = xstrdup(l->want);
		log_info("calling list %lld: table %s ready (%zu columns)",
		    (long long)l->dbid, l->table, l->ncols + 2);
	} else if (!txn_failed)
		retry_later();
	sync_next();
}

/* step_cb - a statement of the transaction: note a failure */
static void
step_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct olist	*l = arg;

	if (txn_failed)
		return;
	if (res == NULL) {
		txn_failed = 1;		/* PostgreSQL away: pgc said so */
		retry_later();
	} else if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		txn_failed = 1;
		log_warnx("calling list %lld: table %s not made yet, retrying "
		    "in %d s: %s", (long long)l->dbid, l->table, RETRY_S,
		    PQresultErrorMessage(res));
		retry_later();
	}
}

/* columns_json - the columns the table has now, for ocs_lists */
static char *
columns_json(const struct olist *l)
{
	json_t	*a = json_array();
	char	 t[32], *s;
	size_t	 i;

	for (i = 0; i < l->ncols; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "name",
		    l->cols[i].name, "type", csv_sql_type(&l->cols[i], t,
		    sizeof(t))));
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* forgotten - a field ocs_lists has that the format lost: said once */
static void
forgotten(const struct olist *l, const char *old_table, const char *old)
{
	json_t	*a = json_loads(old, 0, NULL), *v;
	size_t	 i, k;

	if (old_table != NULL && strcmp(old_table, l->table_raw) != 0)
		log_warnx("calling list %lld: its table is now %s; the old "
		    "table \"%s\" stays until an operator drops it",
		    (long long)l->dbid, l->table, old_table);
	json_array_foreach(a, i, v) {
		const char *n = jstr(v, "name", "");

		for (k = 0; k < l->ncols; k++)
			if (strcmp(l->cols[k].name, n) == 0)
				break;
		if (k == l->ncols && old_table != NULL &&
		    strcmp(old_table, l->table_raw) == 0)
			log_warnx("calling list %lld: field \"%s\" left its "
			    "format; column %s.\"%s\" stays, no longer imported "
			    "or exported", (long long)l->dbid, n, l->table, n);
	}
	json_decref(a);
}

/* looked - what ocs_lists and the catalogue say: make the table, or not */
static void
looked(struct pgc *p, const PGresult *res, void *arg)
{
	struct olist	*l = arg;
	char		 id[24], *cols;
	const char	*params[3];

	step_cb(p, res, l);
	if (txn_failed || PQntuples(res) != 1) {
		txn_failed = 1;
		pgc_rollback(txn, made, NULL);
		return;
	}
	if (!PQgetisnull(res, 0, 2) || (strcmp(PQgetvalue(res, 0, 3), "t") ==
	    0 && strcmp(PQgetvalue(res, 0, 4), "t") != 0)) {
		log_warnx("calling list %lld is unusable: table %s is %s",
		    (long long)l->dbid, l->table, PQgetisnull(res, 0, 2) ?
		    "not a calling list's" : "another calling list's");
		l->bad = xstrdup("its table is not its own");
		txn_failed = 1;
		pgc_rollback(txn, made, NULL);
		return;
	}
	if (!PQgetisnull(res, 0, 0))
		forgotten(l, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	pgc_txn_query(txn, l->want, 0, NULL, step_cb, l);
	snprintf(id, sizeof(id), "%lld", (long long)l->dbid);
	cols = columns_json(l);
	params[0] = id;
	params[1] = l->table_raw;
	params[2] = cols;
	pgc_txn_query(txn, "INSERT INTO ocs_lists (list_dbid, table_name, "
	    "columns) VALUES ($1, $2, $3) ON CONFLICT (list_dbid) DO UPDATE "
	    "SET table_name = EXCLUDED.table_name, columns = EXCLUDED.columns,"
	    " updated = now()", 3, params, step_cb, l);
	free(cols);
	pgc_commit(txn, made, NULL);
}

/* make - the transaction that brings one list's table where it must be */
static void
make(struct olist *l)
{
	char		 id[24];
	const char	*params[2] = { id, l->table_raw };

	if ((txn = pgc_begin(ob.pg)) == NULL) {
		retry_later();
		return;
	}
	cur = l;
	txn_failed = 0;
	snprintf(id, sizeof(id), "%lld", (long long)l->dbid);
	pgc_txn_query(txn, LOCK_KEY, 0, NULL, step_cb, l);
	/* An import holds its table: do not wait for it, come back. */
	pgc_txn_query(txn, "SET LOCAL lock_timeout = '3s'", 0, NULL, step_cb,
	    l);
	pgc_txn_query(txn, "SELECT (SELECT table_name FROM ocs_lists WHERE "
	    "list_dbid = $1), (SELECT columns::text FROM ocs_lists WHERE "
	    "list_dbid = $1), (SELECT list_dbid FROM ocs_lists WHERE "
	    "table_name = $2 AND list_dbid <> $1 LIMIT 1), "
	    "to_regclass(quote_ident($2)) IS NOT NULL, EXISTS (SELECT 1 FROM "
	    "pg_attribute WHERE attrelid = to_regclass(quote_ident($2)) AND "
	    "attname = 'lease_until' AND NOT attisdropped)", 2, params,
	    looked, l);
}

/* sync_next - the next list whose table is not what it must be */
static void
sync_next(void)
{
	size_t	i;

	if (cur != NULL)
		return;
	for (i = 0; i < nlists; i++) {
		struct olist *l = lists[i];

		if (l->live && l->bad == NULL && l->want != NULL &&
		    !lists_ready(l) && !l->tried) {
			l->tried = 1;
			make(l);
			return;
		}
	}
	syncing = 0;
	ob.lists_synced = 1;
	if (again) {
		again = 0;
		lists_sync();
	}
}

/* refresh - every list of the configuration, as its table must be */
static void
refresh(void)
{
	const struct cobj *const	*v;
	struct olist			*l;
	json_t				*o;
	char				*old_bad;
	size_t				 n, i;

	for (i = 0; i < nlists; i++)
		lists[i]->live = 0;
	v = cache_list(CFG_CALLING_LIST, &n);
	for (i = 0; i < n; i++) {
		l = olist_find(v[i]->dbid);
		old_bad = l->bad != NULL ? xstrdup(l->bad) : NULL;
		o = cobj_json(v[i]);
		olist_build(l, o);
		l->live = 1;
		l->tried = 0;
		if (l->bad != NULL && (old_bad == NULL ||
		    strcmp(old_bad, l->bad) != 0))
			log_warnx("calling list %lld (%s) is unusable: %s",
			    (long long)l->dbid, jstr(o, "name", "?"), l->bad);
		json_decref(o);
		free(old_bad);
	}
}

static void
migrated_cb(int ok, int version, void *arg)
{
	migrating = 0;
	if (!ok) {
		retry_later();
		return;
	}
	migrated = 1;
	lists_sync();
}

void
lists_sync(void)
{
	if (ob.pg == NULL)
		return;
	if (!migrated) {
		if (!migrating && migrate_run(ob.pg, "outbound_lists",
		    migrations, (int)(sizeof(migrations) /
		    sizeof(migrations[0])), migrated_cb, NULL) == 0)
			migrating = 1;
		else if (!migrating)
			retry_later();
		return;
	}
	if (syncing) {
		again = 1;
		return;
	}
	syncing = 1;
	refresh();
	sync_next();
}

void
lists_cleanup(void)
{
	size_t	i;

	import_cleanup();
	export_cleanup();
	for (i = 0; i < nlists; i++) {
		olist_clear(lists[i]);
		free(lists[i]->made);
		free(lists[i]);
	}
	free(lists);
	lists = NULL;
	nlists = 0;
	if (ev_retry != NULL)
		event_free(ev_retry);
	ev_retry = NULL;
	cur = NULL;
	txn = NULL;
	migrating = migrated = syncing = again = 0;
	ob.lists_synced = 0;
}
