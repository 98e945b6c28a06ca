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
 *
 * A write keeps its statements as text until it is answered, so that a
 * deadlock victim (40P01) or a serialization failure (40001) can be run
 * again whole, from a timer.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"
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
	/*
	 * Each write's changes carry the write's own random id, so that a
	 * write whose answer was lost with the connection can be looked up.
	 * No index: that is rare, and the lookup reads the log backwards from
	 * its end, where the write is; every write would pay for an index.
	 */
	{ 3,
	  "ALTER TABLE cfg_change ADD COLUMN write_id uuid;" },
};
const int store_nmigrations = NELEM(store_migrations);

/*
 * The revision and change-log part every write ends with: it bumps the
 * revision only if the operation touched its row (obj is not empty), and
 * stores the write's id (parameter wid) with the change.
 */
#define LOG_CHANGE(op, wid)						\
	" rev AS (UPDATE cfg_revision SET revision = revision + 1"	\
	"  WHERE id = 1 AND EXISTS (SELECT 1 FROM obj)"			\
	"  RETURNING revision)"						\
	" INSERT INTO cfg_change (revision, op, type, dbid, object,"	\
	"  write_id)"							\
	" SELECT rev.revision, '" op "', $1, obj.dbid, obj.data,"	\
	" " wid "::uuid"						\
	" FROM rev, obj RETURNING revision, dbid"

/* $1 type, $2 key, $3 data, $4 refs, $5 secret fields, $6 hashes,
 * $7 write id */
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
    LOG_CHANGE("created", "$7");

/* ... and $7 dbid, $8 the version replaced, $9 write id */
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
    LOG_CHANGE("updated", "$9");

/* $1 type, $7 dbid, $8 version, $9 write id */
static const char delete_sql[] =
    "WITH obj AS (DELETE FROM cfg_object"
    "  WHERE dbid = $7 AND type = $1 AND version = $8"
    "  RETURNING dbid, NULL::jsonb AS data),"
    " unused AS (SELECT $2::text, $3::text, $4::text, $5::text, $6::text),"
    LOG_CHANGE("deleted", "$9");

/*
 * After a lost connection: did the write commit?  The revision row is
 * taken first, so that a commit still in flight on the lost connection's
 * backend ends before the change log is read; lock_timeout bounds the
 * wait when that backend is stuck.
 */
static const char lookup_lock_sql[] =
    "SET LOCAL lock_timeout = '1s';"
    "SELECT 1 FROM cfg_revision WHERE id = 1 FOR SHARE";
static const char lookup_sql[] =
    "SELECT revision, dbid FROM cfg_change WHERE write_id = $1::uuid"
    " ORDER BY revision DESC LIMIT 1";

/* The first retry waits 10 to 20 ms; each next one twice as long. */
#define RETRY_BASE_US	20000
/* How often a write whose answer was lost is looked up. */
#define LOOKUP_EVERY_US	250000

/* One operation's statement and parameters, kept to run it again. */
struct stmt {
	const char	*sql;
	int		 nparams;
	char		*params[9];
};

/*
 * A write, from store_write until its callback has run: its statements,
 * and how the current try goes.
 */
struct batch {
	TAILQ_ENTRY(batch)	 entry;
	struct pgc		*pg;
	struct stmt		*stmts;
	size_t			 n;
	int			 tries;		/* runs started */
	struct event		*ev_retry;	/* waiting to run again */
	struct pgc_txn		*txn;		/* several operations */
	size_t			 left;		/* operations not answered yet */
	enum store_rc		 rc;
	json_int_t		 revision;
	json_int_t		 dbid;
	char			 detail[512];
	store_cb		*cb;
	void			*arg;
	char			 wid[STORE_WID_LEN + 1]; /* its changes carry it */
	int			 unsent;	/* client down: nothing sent */
	int			 lost;		/* its answer lost: unknown */
	struct store_lookup	*lk;		/* asking whether it committed */
};

/* A write whose answer was lost, being looked up in the change log. */
struct store_lookup {
	struct pgc		*pg;
	char			 wid[STORE_WID_LEN + 1];
	store_lookup_cb		*cb;
	void			*arg;
	struct event		*ev_retry;
	struct event		*ev_deadline;
	int			 looking;	/* a lookup transaction is out */
	int			 done;		/* answered or cancelled */
	int			 found;		/* this try: -1 unknown, 0, 1 */
	json_int_t		 revision;
	json_int_t		 dbid;
};
TAILQ_HEAD(batch_list, batch);

static struct event_base	*base;
static struct batch_list	 batches = TAILQ_HEAD_INITIALIZER(batches);
static size_t			 nbatches;
static struct metric		*m_retries;

static void	lookup_try(struct store_lookup *);
static void	lookup_free(struct store_lookup *);
static void	lookup_retry(evutil_socket_t, short, void *);
static void	lookup_give_up(evutil_socket_t, short, void *);
static void	batch_looked(int, json_int_t, json_int_t, void *);

/* store_init - the loop that retry timers run on, and the retry counter */
void
store_init(struct event_base *b)
{
	base = b;
	m_retries = metrics_counter("tenantd_config_write_retries_total",
	    "Writes run again after a deadlock or a serialization failure.",
	    NULL);
}

/* store_pending - writes whose callback has not run yet */
size_t
store_pending(void)
{
	return nbatches;
}

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

/*
 * stmt_fill - one operation's statement with its eight parameters, as
 * text of its own: the caller's operation may be gone when it runs again.
 */
static void
stmt_fill(struct stmt *st, const struct store_write *w, const char *wid)
{
	st->sql = w->op == STORE_CREATE ? create_sql :
	    w->op == STORE_UPDATE ? update_sql : delete_sql;
	/* create_sql uses seven parameters; PostgreSQL wants exactly those. */
	st->nparams = w->op == STORE_CREATE ? 7 : 9;
	st->params[0] = xstrdup(w->type);
	st->params[1] = xstrdup(w->key != NULL ? w->key : "");
	st->params[2] = w->data != NULL ? json_dumps(w->data, JSON_COMPACT) :
	    xstrdup("{}");
	if (st->params[2] == NULL)
		fatalx("store: cannot encode an object");
	st->params[3] = pg_array(w->refs, NULL, w->nrefs);
	st->params[4] = pg_array(NULL, w->secret_fields, w->nsecrets);
	st->params[5] = pg_array(NULL, w->secret_hashes, w->nsecrets);
	if (w->op == STORE_CREATE) {
		st->params[6] = xstrdup(wid);
		return;
	}
	st->params[6] = xasprintf("%lld", (long long)w->dbid);
	st->params[7] = xasprintf("%lld", (long long)w->version);
	st->params[8] = xstrdup(wid);
}

/* stmt_clear - free a statement's parameters; hashes are wiped first */
static void
stmt_clear(struct stmt *st)
{
	size_t	i;

	explicit_bzero(st->params[5], strlen(st->params[5]));
	for (i = 0; i < NELEM(st->params); i++)
		free(st->params[i]);
}

/* batch_free - forget a write whose callback has run */
static void
batch_free(struct batch *b)
{
	size_t	i;

	TAILQ_REMOVE(&batches, b, entry);
	nbatches--;
	for (i = 0; i < b->n; i++)
		stmt_clear(&b->stmts[i]);
	free(b->stmts);
	if (b->ev_retry != NULL)
		event_free(b->ev_retry);
	free(b);
}

/* batch_report - call back with the outcome, then forget the write */
static void
batch_report(struct batch *b)
{
	b->cb(b->rc, b->revision, b->dbid, b->detail, b->arg);
	batch_free(b);
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
	/* deadlock_detected, serialization_failure: rolled back whole */
	if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)
		return STORE_CONFLICT;
	return STORE_FAILED;
}

/* failed - note why a statement of the write failed */
static void
failed(struct batch *b, const PGresult *res)
{
	b->rc = classify(res);
	snprintf(b->detail, sizeof(b->detail), "%s", res == NULL ?
	    "PostgreSQL is unavailable" : PQresultErrorMessage(res));
	b->detail[strcspn(b->detail, "\n")] = '\0';
}

/* op_cb - one operation ran: note its revision or its failure */
static void
op_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	if (b->rc != STORE_OK)
		return;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		failed(b, res);
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

static int	batch_run(struct batch *);

/* on_retry - the delay after a conflict is over: run the write again */
static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct batch	*b = arg;

	if (batch_run(b) == -1) {
		b->rc = STORE_UNAVAILABLE;
		snprintf(b->detail, sizeof(b->detail), "too many queries "
		    "waiting for PostgreSQL");
		batch_report(b);
	}
}

/*
 * batch_done - a try ended.  PostgreSQL rolled a deadlock victim or a
 * serialization failure back whole, so it is run again, after a random
 * delay that grows with each try: the writers it met get out of the way,
 * and two victims of one deadlock do not meet again in step.
 */
static void
batch_done(struct batch *b)
{
	struct timeval	tv;
	uint32_t	d;

	if (b->rc == STORE_UNAVAILABLE && b->lost && !b->unsent &&
	    base != NULL) {
		log_info("write %s: the connection was lost before its answer; "
		    "asking the change log whether it committed", b->wid);
		b->lk = store_lookup(b->pg, b->wid, batch_looked, b);
		return;
	}
	if (b->rc != STORE_CONFLICT || b->tries >= STORE_TRIES ||
	    base == NULL) {
		batch_report(b);
		return;
	}
	d = RETRY_BASE_US << (b->tries - 1);
	d = d / 2 + arc4random_uniform(d / 2 + 1);
	log_debug("write: %s; running it again in %u ms (try %d of %d)",
	    b->detail, d / 1000, b->tries + 1, STORE_TRIES);
	metric_inc(m_retries);
	if (b->ev_retry == NULL)
		b->ev_retry = evtimer_new(base, on_retry, b);
	tv = util_tv_us(d);
	evtimer_add(b->ev_retry, &tv);
}

/* end_cb - COMMIT or ROLLBACK ran: the try is over */
static void
end_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	b->txn = NULL;
	/* The COMMIT was sent, and its answer lost: it may have committed. */
	if (b->rc == STORE_OK && res == NULL)
		b->lost = 1;
	if (b->rc == STORE_OK && (res == NULL ||
	    PQresultStatus(res) != PGRES_COMMAND_OK)) {
		/* Under SERIALIZABLE, COMMIT itself may be refused (40001). */
		failed(b, res);
	} else if (b->rc == STORE_OK &&
	    strcmp(PQcmdStatus((PGresult *)res), "COMMIT") != 0) {
		b->rc = STORE_FAILED;
		snprintf(b->detail, sizeof(b->detail), "commit failed");
	}
	batch_done(b);
}

/* txn_end - queue the COMMIT or ROLLBACK; if it cannot be, end the try */
static void
txn_end(struct batch *b)
{
	int	rc;

	if (b->rc == STORE_OK)
		rc = pgc_commit(b->txn, end_cb, b);
	else
		rc = pgc_rollback(b->txn, end_cb, b);
	if (rc == -1) {
		/* The client is being freed: nothing was committed. */
		b->txn = NULL;
		if (b->rc == STORE_OK || b->rc == STORE_CONFLICT) {
			b->rc = STORE_UNAVAILABLE;
			snprintf(b->detail, sizeof(b->detail), "PostgreSQL "
			    "client stopped");
		}
		batch_report(b);
	}
}

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
	if (--b->left == 0)
		txn_end(b);
}

/* one_cb - a lone operation ran as its own transaction */
static void
one_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct batch	*b = arg;

	/* A lone statement is its own transaction: lost, it may have run. */
	if (res == NULL)
		b->lost = 1;
	op_cb(p, res, b);
	batch_done(b);
}

/*
 * batch_run - one try of the write: a single statement is a transaction
 * by itself, and goes without BEGIN and COMMIT, two round trips fewer for
 * the common write; several go between BEGIN and COMMIT.  -1 if nothing
 * could be queued (the callback is then not called).
 */
static int
batch_run(struct batch *b)
{
	size_t	i;

	b->tries++;
	b->rc = STORE_OK;
	b->revision = b->dbid = 0;
	b->detail[0] = '\0';
	/* A client that is down sends nothing: it fails every query. */
	b->unsent = pgc_state(b->pg) == PGC_DOWN;
	if (b->n == 1)
		return pgc_query(b->pg, b->stmts[0].sql, b->stmts[0].nparams,
		    (const char *const *)b->stmts[0].params, one_cb, b);
	if ((b->txn = pgc_begin(b->pg)) == NULL)
		return -1;
	b->left = b->n;
	for (i = 0; i < b->n; i++)
		if (pgc_txn_query(b->txn, b->stmts[i].sql,
		    b->stmts[i].nparams, (const char *const *)b->stmts[i].params,
		    txn_op_cb, b) == -1) {
			/* Those queued still answer; this one counts failed. */
			b->rc = STORE_UNAVAILABLE;
			snprintf(b->detail, sizeof(b->detail), "too many "
			    "queries waiting for PostgreSQL");
			b->left -= b->n - i;
			if (b->left == 0)
				txn_end(b);
			break;
		}
	return 0;
}

/*
 * batch_looked - the change log's answer on a write whose answer was
 * lost: committed (found), not committed, or not known in time
 */
static void
batch_looked(int found, json_int_t revision, json_int_t dbid, void *arg)
{
	struct batch	*b = arg;

	b->lk = NULL;
	if (found == 1) {
		log_info("write %s: the change log shows it committed "
		    "(revision %lld)", b->wid, (long long)revision);
		b->rc = STORE_OK;
		b->revision = revision;
		b->dbid = dbid;
		b->detail[0] = '\0';
	} else if (found == 0)
		snprintf(b->detail, sizeof(b->detail), "the connection to "
		    "PostgreSQL was lost, and the write was not committed");
	else {
		log_warnx("write %s: PostgreSQL did not come back within %d s "
		    "to say whether it committed", b->wid, STORE_LOOKUP_S);
		b->rc = STORE_UNKNOWN;
		snprintf(b->detail, sizeof(b->detail), "PostgreSQL was lost "
		    "before it confirmed the write, and has not come back to "
		    "say whether it committed");
	}
	batch_report(b);
}

/* store_write_id - 16 random bytes in hex: the id a write's changes carry */
void
store_write_id(char out[STORE_WID_LEN + 1])
{
	unsigned char	r[STORE_WID_LEN / 2];
	size_t		i;

	arc4random_buf(r, sizeof(r));
	for (i = 0; i < sizeof(r); i++) {
		out[2 * i] = "0123456789abcdef"[r[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
	}
	out[STORE_WID_LEN] = '\0';
}

/*
 * store_lookup - a write's answer was lost with the connection: it may
 * have committed.  Ask the change log, through the client's next
 * connection, for a change with the write's id, until STORE_LOOKUP_S
 * passes; cb runs once (unless cancelled).
 */
struct store_lookup *
store_lookup(struct pgc *pg, const char *wid, store_lookup_cb *cb, void *arg)
{
	struct store_lookup	*lk = xcalloc(1, sizeof(*lk));
	struct timeval		 tv = { STORE_LOOKUP_S, 0 };

	lk->pg = pg;
	snprintf(lk->wid, sizeof(lk->wid), "%s", wid);
	lk->cb = cb;
	lk->arg = arg;
	lk->ev_retry = evtimer_new(base, lookup_retry, lk);
	lk->ev_deadline = evtimer_new(base, lookup_give_up, lk);
	evtimer_add(lk->ev_deadline, &tv);
	lookup_try(lk);
	return lk;
}

/*
 * store_lookup_cancel - cb will not run; call before the client is freed
 * (its last callbacks then free the lookup)
 */
void
store_lookup_cancel(struct store_lookup *lk)
{
	lk->done = 1;
	evtimer_del(lk->ev_retry);
	evtimer_del(lk->ev_deadline);
	if (!lk->looking)
		lookup_free(lk);
}

static void
lookup_free(struct store_lookup *lk)
{
	event_free(lk->ev_retry);
	event_free(lk->ev_deadline);
	free(lk);
}

/* lookup_finish - answer once; the lookup goes once no query is out */
static void
lookup_finish(struct store_lookup *lk, int found)
{
	lk->done = 1;
	evtimer_del(lk->ev_retry);
	evtimer_del(lk->ev_deadline);
	lk->cb(found, lk->revision, lk->dbid, lk->arg);
	if (!lk->looking)
		lookup_free(lk);
}

/* lookup_give_up - the deadline: the outcome is unknown */
static void
lookup_give_up(evutil_socket_t fd, short what, void *arg)
{
	lookup_finish(arg, -1);
}

static void
lookup_retry(evutil_socket_t fd, short what, void *arg)
{
	lookup_try(arg);
}

/* lookup_again - one more try after a short wait, until the deadline */
static void
lookup_again(struct store_lookup *lk)
{
	struct timeval	tv = { 0, LOOKUP_EVERY_US };

	evtimer_add(lk->ev_retry, &tv);
}

/* lookup_lock_cb - the revision row is ours: nothing is in flight */
static void
lookup_lock_cb(struct pgc *p, const PGresult *res, void *arg)
{
}

/* lookup_cb - the change log's answer: the write's last change, or none */
static void
lookup_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct store_lookup	*lk = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		return;
	lk->found = PQntuples(res) == 1;
	if (lk->found) {
		lk->revision = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		lk->dbid = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
}

/*
 * lookup_end_cb - a try ended.  Its answer counts only if it committed:
 * the lock was had, so nothing of the write was still in flight.
 */
static void
lookup_end_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct store_lookup	*lk = arg;
	int			 ok = res != NULL && PQresultStatus(res) ==
				    PGRES_COMMAND_OK && strcmp(PQcmdStatus(
				    (PGresult *)res), "COMMIT") == 0;

	lk->looking = 0;
	if (lk->done)
		lookup_free(lk);
	else if (ok && lk->found != -1)
		lookup_finish(lk, lk->found);
	else if (base == NULL)
		lookup_finish(lk, -1);
	else
		lookup_again(lk);
}

/* lookup_try - one try, in a transaction of its own */
static void
lookup_try(struct store_lookup *lk)
{
	const char	*params[1] = { lk->wid };
	struct pgc_txn	*txn;

	lk->found = -1;
	if ((txn = pgc_begin(lk->pg)) == NULL) {
		lookup_again(lk);
		return;
	}
	lk->looking = 1;
	pgc_txn_query(txn, lookup_lock_sql, 0, NULL, lookup_lock_cb, lk);
	pgc_txn_query(txn, lookup_sql, 1, params, lookup_cb, lk);
	if (pgc_commit(txn, lookup_end_cb, lk) == -1) {
		/* Only when the client is being freed: nothing will come. */
		lk->looking = 0;
		lookup_again(lk);
	}
}

/* store_write - run ops as one transaction, again if it conflicts */
int
store_write(struct pgc *pg, const struct store_write *ops, size_t n,
    store_cb *cb, void *arg)
{
	struct batch	*b;
	size_t		 i;

	b = xcalloc(1, sizeof(*b));
	b->pg = pg;
	b->n = n;
	store_write_id(b->wid);
	b->stmts = xcalloc(n, sizeof(*b->stmts));
	for (i = 0; i < n; i++)
		stmt_fill(&b->stmts[i], &ops[i], b->wid);
	b->cb = cb;
	b->arg = arg;
	TAILQ_INSERT_TAIL(&batches, b, entry);
	nbatches++;
	if (batch_run(b) == -1) {
		batch_free(b);
		return -1;
	}
	return 0;
}

/*
 * store_fini - at exit: writes waiting to run again are answered as if
 * PostgreSQL were away (nothing of them is committed).  Those running are
 * answered by the PostgreSQL client when it is freed.
 */
void
store_fini(void)
{
	struct batch	*b, *next;

	for (b = TAILQ_FIRST(&batches); b != NULL; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (b->lk != NULL) {
			store_lookup_cancel(b->lk);
			b->lk = NULL;
		} else if (b->ev_retry == NULL ||
		    !evtimer_pending(b->ev_retry, NULL))
			continue;
		if (b->lost) {
			b->rc = STORE_UNKNOWN;
			snprintf(b->detail, sizeof(b->detail), "the worker "
			    "stopped before PostgreSQL could say whether the "
			    "write committed");
		} else {
			b->rc = STORE_UNAVAILABLE;
			snprintf(b->detail, sizeof(b->detail), "the worker is "
			    "stopping");
		}
		batch_report(b);
	}
	base = NULL;
}

struct secret_q {
	store_secret_cb	*cb;
	void		*arg;
};

/* secret_cb - the hash, or NULL if the principal has none */
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
