/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store - SQL of the config worker.  Tables:
 *
 *   cfg_object    one row per object: dbid, type, natural key, version,
 *                 the object as JSON (no secrets)
 *   cfg_ref       (from_dbid, to_dbid): every reference, foreign keys both
 *                 ways; deleting an object drops its own references
 *   cfg_secret    password and secret hashes, never in cfg_object or the log
 *   cfg_revision  the one row holding the last revision
 *   cfg_change    the change log: revision, op, type, dbid, object after
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgc.h"
#include "store.h"
#include "util.h"

const struct migration store_migrations[] = {
	{ 1,
	  "CREATE SEQUENCE cfg_dbid_seq;"
	  "CREATE TABLE cfg_object ("
	  " dbid bigint PRIMARY KEY,"
	  " type text NOT NULL,"
	  " key text NOT NULL,"
	  " version integer NOT NULL,"
	  " data jsonb NOT NULL,"
	  " UNIQUE (type, key));"
	  "CREATE TABLE cfg_ref ("
	  " from_dbid bigint NOT NULL REFERENCES cfg_object (dbid)"
	  "  ON DELETE CASCADE,"
	  " to_dbid bigint NOT NULL REFERENCES cfg_object (dbid));"
	  "CREATE INDEX cfg_ref_from ON cfg_ref (from_dbid);"
	  "CREATE INDEX cfg_ref_to ON cfg_ref (to_dbid);"
	  "CREATE TABLE cfg_secret ("
	  " dbid bigint NOT NULL REFERENCES cfg_object (dbid)"
	  "  ON DELETE CASCADE,"
	  " field text NOT NULL,"
	  " hash text NOT NULL,"
	  " PRIMARY KEY (dbid, field));"
	  "CREATE TABLE cfg_revision ("
	  " id integer PRIMARY KEY CHECK (id = 1),"
	  " revision bigint NOT NULL);"
	  "INSERT INTO cfg_revision VALUES (1, 0);"
	  "CREATE TABLE cfg_change ("
	  " revision bigint PRIMARY KEY,"
	  " op text NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),"
	  " type text NOT NULL,"
	  " dbid bigint NOT NULL,"
	  " object jsonb,"
	  " at timestamptz NOT NULL DEFAULT now());" },
	/* Imports check references at commit, in any order of objects. */
	{ 2,
	  "ALTER TABLE cfg_ref ALTER CONSTRAINT cfg_ref_to_dbid_fkey"
	  " DEFERRABLE INITIALLY IMMEDIATE;"
	  "ALTER TABLE cfg_ref ALTER CONSTRAINT cfg_ref_from_dbid_fkey"
	  " DEFERRABLE INITIALLY IMMEDIATE;" },
};
const int store_nmigrations = NELEM(store_migrations);

/*
 * The revision and change-log part every write ends with: it bumps the
 * revision only if the operation touched its row (obj is not empty).
 */
#define LOG_CHANGE(op)							\
	" rev AS (UPDATE cfg_revision SET revision = revision + 1"	\
	"  WHERE id = 1 AND EXISTS (SELECT 1 FROM obj)"			\
	"  RETURNING revision)"						\
	" INSERT INTO cfg_change (revision, op, type, dbid, object)"	\
	" SELECT rev.revision, '" op "', $1, obj.dbid, obj.data"	\
	" FROM rev, obj RETURNING revision, dbid"

/* $1 type, $2 key, $3 data, $4 refs, $5 secret fields, $6 hashes */
static const char create_sql[] =
    "WITH id AS (SELECT nextval('cfg_dbid_seq') AS dbid),"
    " obj AS (INSERT INTO cfg_object (dbid, type, key, version, data)"
    "  SELECT id.dbid, $1, $2, 1, $3::jsonb || jsonb_build_object("
    "   'dbid', id.dbid, 'version', 1) FROM id RETURNING dbid, data),"
    " ref AS (INSERT INTO cfg_ref (from_dbid, to_dbid)"
    "  SELECT obj.dbid, unnest($4::bigint[]) FROM obj),"
    " sec AS (INSERT INTO cfg_secret (dbid, field, hash)"
    "  SELECT obj.dbid, s.f, s.h FROM obj,"
    "   unnest($5::text[], $6::text[]) AS s (f, h) WHERE s.h IS NOT NULL),"
    LOG_CHANGE("created");

/* ... and $7 dbid, $8 the version replaced */
static const char update_sql[] =
    "WITH obj AS (UPDATE cfg_object SET key = $2, version = version + 1,"
    "  data = $3::jsonb || jsonb_build_object('dbid', dbid,"
    "   'version', version + 1)"
    "  WHERE dbid = $7 AND type = $1 AND version = $8"
    "  RETURNING dbid, data),"
    " dr AS (DELETE FROM cfg_ref WHERE from_dbid IN (SELECT dbid FROM obj)),"
    " ir AS (INSERT INTO cfg_ref (from_dbid, to_dbid)"
    "  SELECT obj.dbid, unnest($4::bigint[]) FROM obj),"
    " sec AS (INSERT INTO cfg_secret (dbid, field, hash)"
    "  SELECT obj.dbid, s.f, s.h FROM obj,"
    "   unnest($5::text[], $6::text[]) AS s (f, h) WHERE s.h IS NOT NULL"
    "  ON CONFLICT (dbid, field) DO UPDATE SET hash = EXCLUDED.hash),"
    " clr AS (DELETE FROM cfg_secret WHERE dbid IN (SELECT dbid FROM obj)"
    "  AND field IN (SELECT s.f FROM unnest($5::text[], $6::text[])"
    "   AS s (f, h) WHERE s.h IS NULL)),"
    LOG_CHANGE("updated");

/* $1 type, $7 dbid, $8 version */
static const char delete_sql[] =
    "WITH obj AS (DELETE FROM cfg_object"
    "  WHERE dbid = $7 AND type = $1 AND version = $8"
    "  RETURNING dbid, NULL::jsonb AS data),"
    " unused AS (SELECT $2::text, $3::text, $4::text, $5::text, $6::text),"
    LOG_CHANGE("deleted");

struct batch {
	struct pgc_txn	*txn;		/* several operations */
	size_t		 left;		/* operations not answered yet */
	enum store_rc	 rc;
	json_int_t	 revision;
	json_int_t	 dbid;
	char		 detail[512];
	store_cb	*cb;
	void		*arg;
};

/* pg_array - a PostgreSQL array literal of integers or quoted strings */
static char *
pg_array(const json_int_t *ints, const char **strs, size_t n)
{
	char	*buf = NULL, *q;
	size_t	 len = 0, i;
	FILE	*f = open_memstream(&buf, &len);

	if (f == NULL)
		fatal("open_memstream");
	fputc('{', f);
	for (i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', f);
		if (ints != NULL) {
			fprintf(f, "%lld", (long long)ints[i]);
			continue;
		}
		if (strs[i] == NULL) {
			fputs("NULL", f);
			continue;
		}
		fputc('"', f);
		for (q = (char *)strs[i]; *q != '\0'; q++) {
			if (*q == '"' || *q == '\\')
				fputc('\\', f);
			fputc(*q, f);
		}
		fputc('"', f);
	}
	fputc('}', f);
	if (fclose(f) != 0)
		fatal("pg_array");
	return buf;
}

/* classify - what a failed statement means to a client */
static enum store_rc
classify(const PGresult *res)
{
	const char	*state;

	if (res == NULL)
		return STORE_UNAVAILABLE;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state == NULL)
		return STORE_FAILED;
	if (strcmp(state, "23505") == 0)
		return STORE_DUPLICATE;
	if (strcmp(state, "23503") == 0)
		return STORE_REFERENCED;
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0)
		return STORE_UNAVAILABLE;
	return STORE_FAILED;
}

/* op_cb - one operation ran: note its revision or its failure */
static void
op_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	if (b->rc != STORE_OK)
		return;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		b->rc = classify(res);
		snprintf(b->detail, sizeof(b->detail), "%s", res == NULL ?
		    "PostgreSQL is unavailable" : PQresultErrorMessage(res));
		b->detail[strcspn(b->detail, "\n")] = '\0';
		return;
	}
	if (PQntuples(res) != 1) {
		b->rc = STORE_STALE;
		snprintf(b->detail, sizeof(b->detail), "the object changed or "
		    "was deleted meanwhile");
		return;
	}
	b->revision = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	b->dbid = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
}

static void	end_cb(struct pgc *, const PGresult *, void *);

/*
 * txn_op_cb - an operation of a transaction answered; after the last,
 * commit only if every one did what it was for: an update that found its
 * object changed raises no error in PostgreSQL, so COMMIT would keep the
 * others (half a cascade).
 */
static void
txn_op_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	op_cb(p, res, b);
	if (--b->left > 0)
		return;
	if (b->rc == STORE_OK)
		pgc_commit(b->txn, end_cb, b);
	else
		pgc_rollback(b->txn, end_cb, b);
}

/* end_cb - COMMIT or ROLLBACK ran: report the batch */
static void
end_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	if (b->rc == STORE_OK && (res == NULL ||
	    PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus((PGresult *)res), "COMMIT") != 0)) {
		b->rc = res == NULL ? STORE_UNAVAILABLE : STORE_FAILED;
		snprintf(b->detail, sizeof(b->detail), "commit failed");
	}
	b->cb(b->rc, b->revision, b->dbid, b->detail, b->arg);
	free(b);
}

/*
 * queue_op - one operation's statement with its eight parameters, alone
 * on pg or inside transaction t; -1 if it could not be queued.
 */
static int
queue_op(struct pgc *pg, struct pgc_txn *t, const struct store_write *w,
    struct batch *b, pgc_result_cb *cb)
{
	int		 rc;
	const char	*params[8];
	char		*data = NULL, *refs, *fields, *hashes, dbid[24], ver[24];
	const char	*sql = w->op == STORE_CREATE ? create_sql :
			    w->op == STORE_UPDATE ? update_sql : delete_sql;

	if (w->data != NULL)
		data = json_dumps(w->data, JSON_COMPACT);
	refs = pg_array(w->refs, NULL, w->nrefs);
	fields = pg_array(NULL, w->secret_fields, w->nsecrets);
	hashes = pg_array(NULL, w->secret_hashes, w->nsecrets);
	snprintf(dbid, sizeof(dbid), "%lld", (long long)w->dbid);
	snprintf(ver, sizeof(ver), "%lld", (long long)w->version);
	params[0] = w->type;
	params[1] = w->key != NULL ? w->key : "";
	params[2] = data != NULL ? data : "{}";
	params[3] = refs;
	params[4] = fields;
	params[5] = hashes;
	params[6] = dbid;
	params[7] = ver;
	/* create_sql uses six parameters; PostgreSQL wants exactly those. */
	if (t != NULL)
		rc = pgc_txn_query(t, sql, w->op == STORE_CREATE ? 6 : 8,
		    params, cb, b);
	else
		rc = pgc_query(pg, sql, w->op == STORE_CREATE ? 6 : 8, params,
		    cb, b);
	free(data);
	free(refs);
	free(fields);
	free(hashes);
	return rc;
}

/* one_cb - a lone operation ran as its own transaction */
static void
one_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	op_cb(p, res, b);
	b->cb(b->rc, b->revision, b->dbid, b->detail, b->arg);
	free(b);
}

/*
 * store_write - run ops as one transaction.  A single statement is a
 * transaction by itself: it goes without BEGIN and COMMIT, two round
 * trips fewer for the common write.
 */
int
store_write(struct pgc *pg, const struct store_write *ops, size_t n,
    store_cb *cb, void *arg)
{
	struct pgc_txn	*t = NULL;
	struct batch	*b;
	size_t		 i;

	if (n > 1 && (t = pgc_begin(pg)) == NULL)
		return -1;
	b = xcalloc(1, sizeof(*b));
	b->cb = cb;
	b->arg = arg;
	if (n == 1) {
		if (queue_op(pg, NULL, &ops[0], b, one_cb) == -1) {
			free(b);
			return -1;
		}
		return 0;
	}
	b->txn = t;
	b->left = n;
	for (i = 0; i < n; i++)
		if (queue_op(NULL, t, &ops[i], b, txn_op_cb) == -1) {
			/* Those queued still answer; this one counts failed. */
			b->rc = STORE_UNAVAILABLE;
			snprintf(b->detail, sizeof(b->detail), "too many "
			    "queries waiting for PostgreSQL");
			b->left -= n - i;
			if (b->left == 0)
				pgc_rollback(t, end_cb, b);
			break;
		}
	return 0;
}

struct secret_q {
	store_secret_cb	*cb;
	void		*arg;
};

static void
secret_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct secret_q	*q = arg;
	int		 ok = res != NULL && PQresultStatus(res) ==
			    PGRES_TUPLES_OK;

	q->cb(ok && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL, ok,
	    q->arg);
	free(q);
}

/* store_secret - the hash of one write-only field */
int
store_secret(struct pgc *pg, json_int_t dbid, const char *field,
    store_secret_cb *cb, void *arg)
{
	struct secret_q	*q = xcalloc(1, sizeof(*q));
	char		 id[24];
	const char	*params[2] = { id, field };

	snprintf(id, sizeof(id), "%lld", (long long)dbid);
	q->cb = cb;
	q->arg = arg;
	if (pgc_query(pg, "SELECT hash FROM cfg_secret WHERE dbid = $1 AND "
	    "field = $2", 2, params, secret_cb, q) == -1) {
		free(q);
		return -1;
	}
	return 0;
}

/* store_prune - keep the last keep revisions of the change log */
int
store_prune(struct pgc *pg, json_int_t keep)
{
	char		 k[24];
	const char	*params[1] = { k };

	snprintf(k, sizeof(k), "%lld", (long long)keep);
	return pgc_query(pg, "DELETE FROM cfg_change WHERE revision <= "
	    "(SELECT revision FROM cfg_revision) - $1::bigint", 1, params,
	    NULL, NULL);
}

struct oldest_q {
	store_oldest_cb	*cb;
	void		*arg;
};

static void
oldest_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct oldest_q	*q = arg;
	json_int_t	 v = -1;

	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	q->cb(v, q->arg);
	free(q);
}

/* store_oldest - the first revision still in the change log */
int
store_oldest(struct pgc *pg, store_oldest_cb *cb, void *arg)
{
	struct oldest_q	*q = xcalloc(1, sizeof(*q));

	q->cb = cb;
	q->arg = arg;
	if (pgc_query(pg, "SELECT min(revision) FROM cfg_change", 0, NULL,
	    oldest_cb, q) == -1) {
		free(q);
		return -1;
	}
	return 0;
}
