/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate - apply pending migrations inside one transaction:
 *
 *   BEGIN
 *   SELECT pg_advisory_xact_lock(hashtext('tenantd:migrations'))
 *   SELECT pg_advisory_xact_lock(hashtext('tenantd:' || owner))
 *   CREATE TABLE IF NOT EXISTS tenantd_migrations (...)
 *   SELECT max(version) FROM tenantd_migrations WHERE owner = $1
 *   <each pending migration>; INSERT INTO tenantd_migrations ...
 *   COMMIT
 *
 * The lock serializes instances starting together; the second sees the
 * first's versions once it gets the lock.  Any failure rolls everything
 * back, so a half-applied migration never exists.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "migrate.h"
#include "pgc.h"
#include "util.h"

struct run {
	struct pgc_txn		*txn;
	char			*owner;
	const struct migration	*m;
	int			 n;
	int			 from;		/* version found */
	int			 failed;
	char			 why[256];
	migrate_cb		*cb;
	void			*arg;
};

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS tenantd_migrations ("
    " owner text NOT NULL,"
    " version integer NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (owner, version))";

/* step_cb - note the first failure of any statement */
static void
step_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct run	*r = arg;
	ExecStatusType	 st;

	if (r->failed)
		return;
	if (res == NULL) {
		r->failed = 1;
		snprintf(r->why, sizeof(r->why), "connection lost");
		return;
	}
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		r->failed = 1;
		snprintf(r->why, sizeof(r->why), "%s",
		    PQresultErrorMessage(res));
		r->why[strcspn(r->why, "\n")] = '\0';
	}
}

/* end_cb - COMMIT (or ROLLBACK) ran: report */
static void
end_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct run	*r = arg;
	int		 ok = !r->failed && res != NULL &&
			    PQresultStatus(res) == PGRES_COMMAND_OK &&
			    strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0;
	int		 latest = r->n > 0 ? r->m[r->n - 1].version : 0;

	if (ok && r->from < latest)
		log_info("%s: schema migrated from version %d to %d", r->owner,
		    r->from, latest);
	else if (!ok)
		log_warnx("%s: schema migration failed: %s", r->owner,
		    r->failed ? r->why : "commit failed");
	r->cb(ok, ok ? latest : r->from, r->arg);
	free(r->owner);
	free(r);
}

/* queue_pending - the current version is known: apply what is newer */
static void
queue_pending(struct run *r)
{
	char		 v[16];
	const char	*params[2];
	int		 i;

	params[0] = r->owner;
	params[1] = v;
	for (i = 0; i < r->n; i++) {
		if (r->m[i].version <= r->from)
			continue;
		snprintf(v, sizeof(v), "%d", r->m[i].version);
		pgc_txn_query(r->txn, r->m[i].sql, 0, NULL, step_cb, r);
		pgc_txn_query(r->txn, "INSERT INTO tenantd_migrations "
		    "(owner, version) VALUES ($1, $2)", 2, params, step_cb, r);
	}
}

/* version_cb - the version in the database decides what runs */
static void
version_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct run	*r = arg;
	int		 latest = r->n > 0 ? r->m[r->n - 1].version : 0;

	step_cb(p, res, r);
	if (!r->failed && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		r->from = atoi(PQgetvalue(res, 0, 0));
	if (!r->failed && r->from > latest) {
		r->failed = 1;
		snprintf(r->why, sizeof(r->why), "the database is at version "
		    "%d, newer than this tenantd (%d)", r->from, latest);
	}
	if (!r->failed)
		queue_pending(r);
	if (r->failed)
		pgc_rollback(r->txn, end_cb, r);
	else
		pgc_commit(r->txn, end_cb, r);
}

/* migrate_run - start the migration transaction; see migrate.h */
int
migrate_run(struct pgc *p, const char *owner, const struct migration *m,
    int n, migrate_cb *cb, void *arg)
{
	struct run	*r;
	const char	*params[1];

	r = xcalloc(1, sizeof(*r));
	if ((r->txn = pgc_begin(p)) == NULL) {
		free(r);
		return -1;
	}
	r->owner = xstrdup(owner);
	r->m = m;
	r->n = n;
	r->cb = cb;
	r->arg = arg;
	params[0] = r->owner;
	/* Owners' migrations wait for each other too: CREATE TABLE IF NOT
	 * EXISTS of the shared table is not safe when two run at once. */
	pgc_txn_query(r->txn, "SELECT pg_advisory_xact_lock(hashtext("
	    "'tenantd:migrations'))", 0, NULL, step_cb, r);
	pgc_txn_query(r->txn, "SELECT pg_advisory_xact_lock(hashtext("
	    "'tenantd:' || $1))", 1, params, step_cb, r);
	pgc_txn_query(r->txn, create_sql, 0, NULL, step_cb, r);
	pgc_txn_query(r->txn, "SELECT max(version) FROM tenantd_migrations "
	    "WHERE owner = $1", 1, params, version_cb, r);
	return 0;
}
