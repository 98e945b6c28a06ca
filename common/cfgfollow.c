/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfgfollow - snapshot, then follow the change log.
 *
 * Tables read (owned by the config worker's migrations):
 *   cfg_object (dbid, type, data jsonb)       the objects
 *   cfg_revision (revision)                   the last committed revision
 *   cfg_change (revision, op, type, dbid, object jsonb)
 * One query runs at a time; a poke while one runs asks for another after.
 *
 * The config worker makes those tables.  A worker that starts before it
 * did, on a new database, finds no cfg_revision (undefined_table, 42P01):
 * before the first snapshot that is "not yet", said once at info, and
 * looked at again every second like any failed read.  Every read that
 * fails in a row counts (cfgfollow_failures), for the metric that says a
 * worker cannot read the configuration.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "cfgfollow.h"
#include "conf.h"
#include "log.h"
#include "pgc.h"
#include "rds.h"
#include "util.h"

#define BATCH		"1000"
#define BATCH_N		1000
#define POLL_US		1000000
#define UNDEFINED_TABLE	"42P01"

struct cfgfollow {
	struct event_base	*base;
	struct pgc		*pg;
	struct rds		*sub;
	struct event		*ev_poll;
	struct cfgfollow_cbs	 cbs;
	void			*arg;
	json_int_t		 revision;	/* -1: no snapshot yet */
	json_int_t		 snap_revision;	/* of the snapshot being read */
	unsigned long		 failures;	/* reads failed in a row */
	int			 told_no_schema; /* "waiting for" logged */
	int			 busy;		/* a query is out */
	int			 again;		/* poked while busy */
	int			 need_snapshot;
	int			 dying;
	int			 owns_pg;	/* cfgfollow_open made it */
};

static void	run(struct cfgfollow *);

static const char *const op_names[] = { "snapshot", "created", "updated",
    "deleted" };

/* cfgfollow_channel - where writers announce a new revision */
char *
cfgfollow_channel(const char *tenant_id)
{
	return xasprintf("tenantd:{%s}:config", tenant_id);
}

static int
op_parse(const char *s, enum cfg_op *op)
{
	int	i;

	for (i = CFG_OP_CREATED; i <= CFG_OP_DELETED; i++)
		if (strcmp(s, op_names[i]) == 0) {
			*op = (enum cfg_op)i;
			return 0;
		}
	return -1;
}

/*
 * done - a query finished.  After a success, run again at once if there
 * is more to read or someone poked meanwhile; after a failure (PostgreSQL
 * away) leave it to the once-a-second timer, not a tight loop.
 */
static void
done(struct cfgfollow *f, int ok, int more)
{
	f->busy = 0;
	if (f->dying)
		return;
	f->failures = ok ? 0 : f->failures + 1;
	if (ok && (more || f->again || f->need_snapshot)) {
		f->again = 0;
		run(f);
	}
}

static int
result_ok(const PGresult *res, const char *what)
{
	if (res == NULL)
		return 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warnx("config follow: %s: %s", what,
		    PQresultErrorMessage(res));
		return 0;
	}
	return 1;
}

/* emit - hand one row's object to the caller */
static int
emit(struct cfgfollow *f, struct cfg_change *c, const char *text)
{
	json_error_t	 e;

	c->object = NULL;
	if (text != NULL && (c->object = json_loads(text, 0, &e)) == NULL) {
		log_warnx("config follow: revision %lld: bad object: %s",
		    (long long)c->revision, e.text);
		return -1;
	}
	f->cbs.change(c, f->arg);
	json_decref(c->object);
	return 0;
}

/* changes_cb - apply a batch of the change log */
static void
changes_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct cfgfollow	*f = arg;
	struct cfg_change	 c;
	int			 i, n;

	if (!result_ok(res, "reading the change log")) {
		done(f, 0, 0);
		return;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		c.revision = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (c.revision != f->revision + 1) {
			log_warnx("config follow: revision %lld is no longer "
			    "in the change log; loading a new snapshot",
			    (long long)f->revision + 1);
			f->need_snapshot = 1;
			break;
		}
		if (op_parse(PQgetvalue(res, i, 1), &c.op) == -1)
			fatalx("config follow: bad op at revision %lld",
			    (long long)c.revision);
		c.type = PQgetvalue(res, i, 2);
		c.dbid = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		if (emit(f, &c, PQgetisnull(res, i, 4) ? NULL :
		    PQgetvalue(res, i, 4)) == -1) {
			f->need_snapshot = 1;
			break;
		}
		f->revision = c.revision;
	}
	if (n > 0 && !f->need_snapshot) {
		f->failures = 0;
		f->cbs.synced(f->revision, f->arg);
	}
	done(f, 1, n == BATCH_N);
}

/* catch_up - read the change log after the last revision applied */
static void
catch_up(struct cfgfollow *f)
{
	char		 rev[24];
	const char	*params[1] = { rev };

	snprintf(rev, sizeof(rev), "%lld", (long long)f->revision);
	if (pgc_query(f->pg, "SELECT revision, op, type, dbid, object::text "
	    "FROM cfg_change WHERE revision > $1 ORDER BY revision LIMIT "
	    BATCH, 1, params, changes_cb, f) == 0)
		f->busy = 1;
}

/*
 * no_schema_yet - the config worker has not made its tables yet: only
 * before the first snapshot is that expected
 */
static int
no_schema_yet(struct cfgfollow *f, const PGresult *res)
{
	const char	*state;

	if (f->revision >= 0 || res == NULL ||
	    PQresultStatus(res) != PGRES_FATAL_ERROR ||
	    (state = PQresultErrorField(res, PG_DIAG_SQLSTATE)) == NULL ||
	    strcmp(state, UNDEFINED_TABLE) != 0)
		return 0;
	if (!f->told_no_schema)
		log_info("config follow: the configuration tables do not exist "
		    "yet; waiting for the config worker to make them");
	f->told_no_schema = 1;
	return 1;
}

/* snap_revision_cb - the revision the snapshot reflects */
static void
snap_revision_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct cfgfollow	*f = arg;

	if (no_schema_yet(f, res))
		f->snap_revision = -1;
	else if (result_ok(res, "reading the revision") && PQntuples(res) == 1)
		f->snap_revision = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		f->snap_revision = -1;	/* marks a failed snapshot */
}

/* snap_objects_cb - every object, at that same revision */
static void
snap_objects_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct cfgfollow	*f = arg;
	struct cfg_change	 c;
	int			 i, n;

	/* A failed snapshot keeps the copy held so far. */
	if (f->snap_revision < 0 || !result_ok(res, "reading the objects")) {
		f->snap_revision = -1;
		return;
	}
	/* Reset and refill in one callback: nobody sees an empty copy. */
	f->revision = f->snap_revision;
	f->cbs.reset(f->arg);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		c.revision = f->revision;
		c.op = CFG_OP_SNAPSHOT;
		c.type = PQgetvalue(res, i, 0);
		c.dbid = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		emit(f, &c, PQgetvalue(res, i, 2));
	}
	log_info("config follow: snapshot of %d objects at revision %lld", n,
	    (long long)f->revision);
}

/* snap_end_cb - the snapshot transaction ended */
static void
snap_end_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct cfgfollow	*f = arg;
	int			 ok;

	ok = f->snap_revision >= 0 && f->revision == f->snap_revision &&
	    result_ok(res, "ending the snapshot");
	if (ok) {
		f->need_snapshot = 0;
		f->failures = 0;	/* before synced: it may be asked */
		f->cbs.synced(f->revision, f->arg);
	}
	done(f, ok, 0);
}

/* snapshot - objects and revision from one REPEATABLE READ transaction */
static void
snapshot(struct cfgfollow *f)
{
	struct pgc_txn	*t;

	if ((t = pgc_begin(f->pg)) == NULL)
		return;
	f->busy = 1;
	f->snap_revision = -1;
	pgc_txn_query(t, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, "
	    "READ ONLY", 0, NULL, NULL, NULL);
	pgc_txn_query(t, "SELECT revision FROM cfg_revision", 0, NULL,
	    snap_revision_cb, f);
	pgc_txn_query(t, "SELECT type, dbid, data::text FROM cfg_object "
	    "ORDER BY dbid", 0, NULL, snap_objects_cb, f);
	pgc_commit(t, snap_end_cb, f);
}

/* run - the next query: a snapshot if needed, else the log */
static void
run(struct cfgfollow *f)
{
	if (f->busy) {
		f->again = 1;
		return;
	}
	if (f->revision < 0 || f->need_snapshot)
		snapshot(f);
	else
		catch_up(f);
}

void
cfgfollow_poke(struct cfgfollow *f)
{
	run(f);
}

/* cfgfollow_failures - reads failed in a row; 0 once one succeeds */
unsigned long
cfgfollow_failures(const struct cfgfollow *f)
{
	return f->failures;
}

/* on_message - a writer announced a revision; look if it is new */
static void
on_message(struct rds *r, const char *channel, const char *data, size_t len,
    void *arg)
{
	struct cfgfollow	*f = arg;

	if (strtoll(data, NULL, 10) > f->revision)
		run(f);
}

/* on_redis - after a reconnect, messages may have been lost: look */
static void
on_redis(struct rds *r, enum rds_state st, void *arg)
{
	if (st == RDS_UP)
		run(arg);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	run(arg);
}

/* cfgfollow_new - start following; see cfgfollow.h */
struct cfgfollow *
cfgfollow_new(struct event_base *base, struct pgc *pg,
    const struct conf_redis *cr, const char *tenant_id,
    const struct cfgfollow_cbs *cbs, void *arg)
{
	struct cfgfollow	*f = xcalloc(1, sizeof(*f));
	struct timeval		 tv = { 0, POLL_US };
	char			*channel = cfgfollow_channel(tenant_id);

	f->base = base;
	f->pg = pg;
	f->cbs = *cbs;
	f->arg = arg;
	f->revision = -1;
	f->sub = rds_new_conf(base, cr, on_redis, f);
	rds_set_name(f->sub, "redis (config changes)");
	rds_subscribe(f->sub, channel, on_message, f);
	free(channel);
	f->ev_poll = event_new(base, -1, EV_PERSIST, on_poll, f);
	event_add(f->ev_poll, &tv);
	run(f);
	return f;
}

/*
 * cfgfollow_open - a PostgreSQL connection of its own, from the
 * configuration's postgres and redis sections, and the follower on it
 */
struct cfgfollow *
cfgfollow_open(struct event_base *base, const struct conf *c,
    const struct cfgfollow_cbs *cbs, void *arg)
{
	struct cfgfollow	*f;
	struct pgc		*pg;

	if ((pg = pgc_new(base, c->pg_conninfo, c->pg_password, NULL,
	    NULL)) == NULL)
		return NULL;
	f = cfgfollow_new(base, pg, &c->redis, c->tenant_id, cbs, arg);
	f->owns_pg = 1;
	return f;
}

/* cfgfollow_free - stop; queries in flight find dying set */
void
cfgfollow_free(struct cfgfollow *f)
{
	if (f == NULL)
		return;
	if (f->owns_pg) {
		f->owns_pg = 0;
		pgc_free(f->pg);	/* its callbacks still need f */
	}
	f->dying = 1;
	event_free(f->ev_poll);
	rds_free(f->sub);
	/* A query still queued on pg holds f: the caller frees pg first. */
	free(f);
}
