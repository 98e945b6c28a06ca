/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pgc - the PostgreSQL client against a real PostgreSQL 15, created
 * here with initdb in a temporary directory and run on a free loopback
 * port (as the postgres user when the test runs as root).  The role
 * "secret" logs in over TCP with a password (scram-sha-256), which proves
 * that conninfo and a separate password combine; the other tests use the
 * trusted postgres role, as SCRAM is slow under valgrind.  Missing
 * PostgreSQL binaries fail the test.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "log.h"
#include "pgc.h"
#include "testlib.h"
#include "util.h"

#define PG_BIN		"/usr/lib/postgresql/15/bin"
#define PG_PASSWORD	"s3cret"

/* One query's answer, kept after the PGresult is cleared. */
struct ans {
	int		 calls, null, status, seq;
	char		 v[3][64];	/* first row, first three columns */
	char		 sqlstate[8];
	char		 tag[32];
};

static char	 pg_dir[64];
static pid_t	 pg_pid = -1;
static int	 pg_port;
static uid_t	 pg_uid = (uid_t)-1;	/* postgres, when we are root */
static gid_t	 pg_gid;
static int	 seq;			/* order of answers */
static char	 conninfo[128];		/* trusted */
static char	 secret[128];		/* needs PG_PASSWORD */

/* pg_hba_secret - make the role "secret" need its password over TCP */
static int
pg_hba_secret(void)
{
	const char	 line[] = "host all secret 127.0.0.1/32 scram-sha-256\n";
	char		 path[96], old[8192];
	ssize_t		 n;
	int		 fd, rv = -1;

	snprintf(path, sizeof(path), "%s/data/pg_hba.conf", pg_dir);
	if ((fd = open(path, O_RDWR)) == -1)
		return -1;
	if ((n = read(fd, old, sizeof(old))) > 0 && n < (ssize_t)sizeof(old) &&
	    pwrite(fd, line, sizeof(line) - 1, 0) == sizeof(line) - 1 &&
	    pwrite(fd, old, (size_t)n, sizeof(line) - 1) == n)
		rv = 0;
	close(fd);
	return rv;
}

/* pg_initdb - a fresh cluster, trusting local logins but "secret" */
static int
pg_initdb(void)
{
	char	 data[96], log[96];
	char	*argv[] = { PG_BIN "/initdb", "-D", data, "-U", "postgres",
		    "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C",
		    NULL };
	pid_t	 pid;
	int	 status;

	snprintf(data, sizeof(data), "%s/data", pg_dir);
	snprintf(log, sizeof(log), "%s/initdb.log", pg_dir);
	if ((pid = tl_spawn(argv, log, pg_uid, pg_gid)) == -1 ||
	    waitpid(pid, &status, 0) == -1 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("initdb failed, see %s\n", log);
		return -1;
	}
	return pg_hba_secret();
}

/* pg_role - create the role "secret" with its password */
static int
pg_role(void)
{
	char		 ci[160];
	PGconn		*c;
	PGresult	*r;
	int		 ok;

	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=postgres "
	    "user=postgres", pg_dir, pg_port);
	c = PQconnectdb(ci);
	r = PQexec(c, "CREATE ROLE secret LOGIN SUPERUSER PASSWORD '"
	    PG_PASSWORD "'");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		print_error("CREATE ROLE: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

/* pg_stop - an immediate shutdown, as pg_ctl stop -m immediate does */
static void
pg_stop(void)
{
	tl_kill(&pg_pid, SIGQUIT);
}

/* pg_ready - whether the postmaster takes connections on conninfo arg */
static int
pg_ready(void *arg)
{
	return PQping(arg) == PQPING_OK;
}

/* pg_start - start the postmaster and wait until it takes connections */
static int
pg_start(void)
{
	char		 data[96], log[96], port[16];
	char		 ping[256];
	char		*argv[] = { PG_BIN "/postgres", "-D", data, "-p", port,
		    "-k", pg_dir, "-c", "listen_addresses=127.0.0.1", "-c",
		    "fsync=off", NULL };

	snprintf(data, sizeof(data), "%s/data", pg_dir);
	snprintf(log, sizeof(log), "%s/postgres.log", pg_dir);
	snprintf(port, sizeof(port), "%d", pg_port);
	snprintf(ping, sizeof(ping), "host=%s port=%d dbname=postgres "
	    "user=postgres", pg_dir, pg_port);
	if ((pg_pid = tl_spawn(argv, log, pg_uid, pg_gid)) == -1)
		return -1;
	if (tl_wait_ready(&pg_pid, 15000, pg_ready, ping) == 0)
		return 0;
	print_error("postgres did not start, see %s\n", log);
	return -1;
}

/* rm_one - nftw callback removing one file or directory */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* pg_cleanup - stop the server and remove its directory; runs at exit */
static void
pg_cleanup(void)
{
	pg_stop();
	if (pg_dir[0] != '\0')
		nftw(pg_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	pg_dir[0] = '\0';
}

/* pg_setup - check the binaries, make a cluster and start it */
static int
pg_setup(void)
{
	struct passwd	*pw;

	if (access(PG_BIN "/postgres", X_OK) == -1 ||
	    access(PG_BIN "/initdb", X_OK) == -1) {
		print_error("PostgreSQL 15 is not installed in " PG_BIN
		    " (apt-get install postgresql-15): this test needs a "
		    "real server\n");
		return -1;
	}
	if (geteuid() == 0) {
		/* PostgreSQL refuses to run as root */
		if ((pw = getpwnam("postgres")) == NULL) {
			print_error("running as root and no postgres user\n");
			return -1;
		}
		pg_uid = pw->pw_uid;
		pg_gid = pw->pw_gid;
	}
	snprintf(pg_dir, sizeof(pg_dir), "/tmp/tenantd-pgc-XXXXXX");
	if (mkdtemp(pg_dir) == NULL) {
		pg_dir[0] = '\0';
		return -1;
	}
	atexit(pg_cleanup);
	if (pg_uid != (uid_t)-1 && chown(pg_dir, pg_uid, pg_gid) == -1)
		return -1;
	pg_port = tl_free_port();
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d "
	    "dbname=postgres user=postgres", pg_port);
	snprintf(secret, sizeof(secret), "postgresql://secret@127.0.0.1:%d/"
	    "postgres?application_name=pgc-test", pg_port);
	if (pg_initdb() == -1 || pg_start() == -1 || pg_role() == -1)
		return -1;
	return 0;
}

/* on_state - note a state change in the watch; free the client if told */
static void
on_state(struct pgc *p, enum pgc_state s, void *arg)
{
	if (tl_watch_note(arg, s, s == PGC_UP ? TL_UP : s == PGC_DOWN ?
	    TL_DOWN : TL_ATTEMPT))
		pgc_free(p);
}

/* on_ans - keep what the tests look at from a result */
static void
on_ans(struct pgc *p, const PGresult *res, void *arg)
{
	struct ans	*a = arg;
	const char	*state;
	int		 i;

	a->calls++;
	a->seq = ++seq;
	if (res == NULL) {
		a->null = 1;
		return;
	}
	a->status = PQresultStatus(res);
	snprintf(a->tag, sizeof(a->tag), "%s", PQcmdStatus((PGresult *)res));
	if ((state = PQresultErrorField(res, PG_DIAG_SQLSTATE)) != NULL)
		snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", state);
	for (i = 0; i < 3 && i < PQnfields(res) && PQntuples(res) > 0; i++)
		snprintf(a->v[i], sizeof(a->v[i]), "%s",
		    PQgetisnull(res, 0, i) ? "(null)" :
		    PQgetvalue(res, 0, i));
}

/* client - a client with a fast backoff and a state watch */
static struct pgc *
client(const char *ci, const char *password, struct tl_watch *w)
{
	struct pgc	*p;

	tl_watch_init(w, PGC_CONNECTING);
	p = pgc_new(tl_base, ci, password, on_state, w);
	assert_non_null(p);
	pgc_set_backoff(p, 20, 160);
	pgc_set_connect_timeout(p, 5000);
	return p;
}

/* up - a client of the test server, waited for until up */
static struct pgc *
up(struct tl_watch *w)
{
	struct pgc	*p = client(conninfo, NULL, w);

	TL_WAIT_FOR(w->state == PGC_UP, 10000);
	assert_int_equal(w->state, PGC_UP);
	return p;
}

/* test_query - parameters, NULL, several statements, the probe */
static void
test_query(void **state)
{
	const char	*params[] = { "40", "2", "y", NULL };
	struct tl_watch	 w;
	struct ans	 a = { 0 }, multi = { 0 }, who = { 0 }, ping = { 0 };
	struct pgc	*p;

	p = client(secret, PG_PASSWORD, &w);
	/* queued while connecting */
	assert_int_equal(pgc_query(p, "SELECT $1::int + $2::int, 'x' || $3, "
	    "$4::text IS NULL", 4, params, on_ans, &a), 0);
	assert_int_equal(pgc_query(p, "CREATE TEMP TABLE m (a int); "
	    "INSERT INTO m VALUES (1), (2); SELECT count(*) FROM m", 0, NULL,
	    on_ans, &multi), 0);
	assert_int_equal(pgc_query(p, "SELECT current_user, "
	    "current_setting('application_name')", 0, NULL, on_ans, &who), 0);
	assert_int_equal(pgc_ping(p, on_ans, &ping), 0);
	assert_int_equal(pgc_queued(p), 4);
	assert_int_equal(a.calls, 0);
	TL_WAIT_FOR(ping.calls == 1, 10000);
	assert_int_equal(w.state, PGC_UP);
	assert_int_equal(a.status, PGRES_TUPLES_OK);
	assert_string_equal(a.v[0], "42");
	assert_string_equal(a.v[1], "xy");
	assert_string_equal(a.v[2], "t");
	assert_string_equal(multi.v[0], "2");
	assert_string_equal(who.v[0], "secret");
	assert_string_equal(who.v[1], "pgc-test");
	assert_string_equal(ping.v[0], "1");
	assert_true(a.seq < multi.seq && multi.seq < ping.seq);
	assert_int_equal(pgc_query(p, "SELECT 1", -1, NULL, on_ans, &a), -1);
	assert_int_equal(pgc_query(p, "SELECT $1", 1, NULL, on_ans, &a), -1);
	assert_null(pgc_new(tl_base, "nonsense", NULL, NULL, NULL));
	pgc_free(p);
}

/* test_order - answers come in queue order; an error stops nothing */
static void
test_order(void **state)
{
	static struct ans	 a[200];
	struct tl_watch		 w;
	struct pgc		*p;
	char			 n[16];
	const char		*params[] = { n };
	int			 i;

	memset(a, 0, sizeof(a));
	p = up(&w);
	for (i = 0; i < 200; i++) {
		snprintf(n, sizeof(n), "%d", i);
		assert_int_equal(pgc_query(p, i == 100 ? "SELECT 1 / ($1::int "
		    "- 100)" : "SELECT $1::int", 1, params, on_ans, &a[i]), 0);
	}
	TL_WAIT_FOR(a[199].calls == 1, 10000);
	for (i = 0; i < 200; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].null, 0);
		if (i > 0)
			assert_int_equal(a[i].seq, a[i - 1].seq + 1);
		if (i == 100) {
			assert_int_equal(a[i].status, PGRES_FATAL_ERROR);
			assert_string_equal(a[i].sqlstate, "22012");
		} else
			assert_int_equal(atoi(a[i].v[0]), i);
	}
	pgc_free(p);
}

struct chain {
	struct pgc_txn	*t;
	struct ans	 count, insert, commit;
};

/* on_chain_insert - commit once the dependent insert is done */
static void
on_chain_insert(struct pgc *p, const PGresult *res, void *arg)
{
	struct chain	*c = arg;

	on_ans(p, res, &c->insert);
	assert_int_equal(pgc_commit(c->t, on_ans, &c->commit), 0);
	assert_int_equal(pgc_commit(c->t, on_ans, &c->commit), -1);
}

/* on_chain_count - the next statement depends on this answer */
static void
on_chain_count(struct pgc *p, const PGresult *res, void *arg)
{
	struct chain	*c = arg;
	char		 v[16];
	const char	*params[] = { v };

	on_ans(p, res, &c->count);
	snprintf(v, sizeof(v), "%d", atoi(c->count.v[0]) + 10);
	assert_int_equal(pgc_txn_query(c->t, "INSERT INTO tx VALUES ($1)", 1,
	    params, on_chain_insert, c), 0);
}

/*
 * test_txn - a transaction holds the connection: a query queued after its
 * BEGIN runs after its COMMIT and sees its rows; a rollback leaves none;
 * a failed statement makes COMMIT a ROLLBACK.
 */
static void
test_txn(void **state)
{
	struct tl_watch	 w;
	struct chain	 c;
	struct ans	 seen = { 0 }, ins = { 0 }, rb = { 0 }, after = { 0 };
	struct ans	 bad = { 0 }, bc = { 0 }, ddl = { 0 };
	struct pgc_txn	*t;
	struct pgc	*p;

	memset(&c, 0, sizeof(c));
	p = up(&w);
	pgc_query(p, "CREATE TABLE tx (a int)", 0, NULL, on_ans, &ddl);
	assert_non_null(c.t = pgc_begin(p));
	assert_int_equal(pgc_txn_query(c.t, "SELECT count(*) FROM tx", 0, NULL,
	    on_chain_count, &c), 0);
	pgc_query(p, "SELECT sum(a) FROM tx", 0, NULL, on_ans, &seen);
	TL_WAIT_FOR(seen.calls == 1, 10000);
	assert_int_equal(c.commit.calls, 1);
	assert_string_equal(c.commit.tag, "COMMIT");
	assert_true(c.insert.seq < c.commit.seq && c.commit.seq < seen.seq);
	assert_string_equal(seen.v[0], "10");

	t = pgc_begin(p);
	pgc_txn_query(t, "INSERT INTO tx VALUES (5)", 0, NULL, on_ans, &ins);
	pgc_rollback(t, on_ans, &rb);
	pgc_query(p, "SELECT sum(a) FROM tx", 0, NULL, on_ans, &after);
	TL_WAIT_FOR(after.calls == 1, 10000);
	assert_string_equal(ins.tag, "INSERT 0 1");
	assert_string_equal(rb.tag, "ROLLBACK");
	assert_string_equal(after.v[0], "10");

	t = pgc_begin(p);
	pgc_txn_query(t, "SELECT 1 / 0", 0, NULL, on_ans, &bad);
	pgc_commit(t, on_ans, &bc);
	TL_WAIT_FOR(bc.calls == 1, 10000);
	assert_int_equal(bad.status, PGRES_FATAL_ERROR);
	assert_string_equal(bc.tag, "ROLLBACK");
	pgc_query(p, "DROP TABLE tx", 0, NULL, NULL, NULL);
	pgc_free(p);
}

/* test_queue_limit - a full queue refuses, and takes again once drained */
static void
test_queue_limit(void **state)
{
	struct tl_watch	 w;
	struct ans	 a[3];
	struct pgc	*p;
	int		 i;

	memset(a, 0, sizeof(a));
	p = client(conninfo, NULL, &w);
	pgc_set_queue_limit(p, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(pgc_ping(p, on_ans, &a[i]), 0);
	assert_int_equal(pgc_ping(p, on_ans, &a[0]), -1);
	assert_null(pgc_begin(p));
	TL_WAIT_FOR(a[2].calls == 1, 10000);
	assert_int_equal(a[0].calls + a[1].calls + a[2].calls, 3);
	assert_int_equal(pgc_queued(p), 0);
	assert_int_equal(pgc_ping(p, on_ans, &a[0]), 0);
	pgc_free(p);
	assert_int_equal(a[0].calls, 2);
}

/*
 * test_outage - stop the server under a running query, queued queries and
 * an open transaction: the client goes down, each gets NULL in order, and
 * queries while down get NULL (from the loop); start the server again: the
 * client is up and queries work.  The outage is logged once, the recovery
 * once, whatever the number of attempts.
 */
static void
test_outage(void **state)
{
	struct tl_watch	 w;
	struct ans	 sleep = { 0 }, q[3], ins = { 0 }, tq = { 0 }, tc = { 0 };
	struct ans	 down = { 0 }, back = { 0 };
	struct pgc_txn	*t;
	struct pgc	*p;
	int		 i;

	memset(q, 0, sizeof(q));
	p = up(&w);
	tl_log_capture();
	t = pgc_begin(p);
	pgc_txn_query(t, "SELECT 1", 0, NULL, on_ans, &ins);
	TL_WAIT_FOR(ins.calls == 1, 5000);
	pgc_txn_query(t, "SELECT pg_sleep(30)", 0, NULL, on_ans, &sleep);
	for (i = 0; i < 3; i++)
		pgc_ping(p, on_ans, &q[i]);
	tl_spin(100);
	pg_stop();
	TL_WAIT_FOR(w.state == PGC_DOWN && q[2].calls == 1, 5000);
	assert_int_equal(w.state, PGC_DOWN);
	assert_int_equal(sleep.null, 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(q[i].null, 1);
	assert_true(sleep.seq < q[0].seq && q[1].seq < q[2].seq);
	/* the transaction is void: what follows in it gets NULL too */
	assert_int_equal(pgc_txn_query(t, "SELECT 1", 0, NULL, on_ans, &tq), 0);
	assert_int_equal(pgc_commit(t, on_ans, &tc), 0);
	assert_int_equal(pgc_ping(p, on_ans, &down), 0);
	assert_int_equal(down.calls, 0);
	tl_spin(500);
	assert_int_equal(tq.null + tc.null + down.null, 3);
	assert_true(w.downs >= 3);

	assert_int_equal(pg_start(), 0);
	TL_WAIT_FOR(w.ups == 2, 10000);
	assert_int_equal(w.state, PGC_UP);
	pgc_ping(p, on_ans, &back);
	TL_WAIT_FOR(back.calls == 1, 5000);
	assert_string_equal(back.v[0], "1");
	assert_int_equal(tl_log_count(pgc_name(p), "level=warn"), 1);
	assert_int_equal(tl_log_count(pgc_name(p), "up again"), 1);
	tl_log_release();
	pgc_free(p);
}

/*
 * test_terminated - the server ends the session under a running query
 * (FATAL, the server stays up): the query gets NULL, and the client comes
 * back up on its own.
 */
static void
test_terminated(void **state)
{
	struct tl_watch	 w, wk;
	struct ans	 pid = { 0 }, sleep = { 0 }, kill = { 0 }, back = { 0 };
	const char	*params[] = { pid.v[0] };
	struct pgc	*p, *k;

	p = up(&w);
	k = up(&wk);
	pgc_query(p, "SELECT pg_backend_pid()", 0, NULL, on_ans, &pid);
	pgc_query(p, "SELECT pg_sleep(30)", 0, NULL, on_ans, &sleep);
	TL_WAIT_FOR(pid.calls == 1, 5000);
	tl_spin(50);
	pgc_query(k, "SELECT pg_terminate_backend($1::int)", 1, params,
	    on_ans, &kill);
	TL_WAIT_FOR(sleep.calls == 1 && kill.calls == 1, 5000);
	assert_string_equal(kill.v[0], "t");
	assert_int_equal(sleep.null, 1);
	TL_WAIT_FOR(w.ups == 2, 5000);
	assert_int_equal(w.downs, 1);
	pgc_ping(p, on_ans, &back);
	TL_WAIT_FOR(back.calls == 1, 5000);
	assert_string_equal(back.v[0], "1");
	pgc_free(p);
	pgc_free(k);
}

/*
 * test_named - a named statement is prepared once per connection and run
 * bound after; a bad one answers its error and breaks nothing; a new
 * session (the backend terminated) prepares it again; one the session
 * dropped (DEALLOCATE) fails once, 26000, and is prepared again next time.
 */
static void
test_named(void **state)
{
	struct tl_watch	 w, wk;
	struct ans	 a[6], pid = { 0 }, cnt = { 0 }, bad = { 0 },
			 kill = { 0 }, dealloc = { 0 };
	const char	*p21[] = { "21" }, *p5[] = { "5" };
	const char	*kp[] = { pid.v[0] };
	const char	 sql[] = "SELECT $1::int * 2";
	struct pgc	*p, *k;

	memset(a, 0, sizeof(a));
	p = up(&w);
	k = up(&wk);
	assert_int_equal(pgc_query_named(p, "two", sql, 1, p21, on_ans,
	    &a[0]), 0);
	assert_int_equal(pgc_query_named(p, "two", sql, 1, p5, on_ans,
	    &a[1]), 0);
	pgc_query_named(p, "bad", "SELEC 1", 0, NULL, on_ans, &bad);
	pgc_query(p, "SELECT count(*) FROM pg_prepared_statements WHERE "
	    "name = 'two'", 0, NULL, on_ans, &cnt);
	pgc_query(p, "SELECT pg_backend_pid()", 0, NULL, on_ans, &pid);
	TL_WAIT_FOR(pid.calls == 1, 5000);
	assert_string_equal(a[0].v[0], "42");
	assert_string_equal(a[1].v[0], "10");
	assert_true(a[0].seq < a[1].seq && a[1].seq < bad.seq);
	assert_int_equal(bad.status, PGRES_FATAL_ERROR);
	assert_string_equal(bad.sqlstate, "42601");
	assert_string_equal(cnt.v[0], "1");
	assert_int_equal(pgc_query_named(p, "nope", sql, -1, NULL, on_ans,
	    &a[2]), -1);

	/* a new session prepares it again */
	pgc_query(k, "SELECT pg_terminate_backend($1::int)", 1, kp, on_ans,
	    &kill);
	TL_WAIT_FOR(kill.calls == 1 && w.downs == 1, 5000);
	TL_WAIT_FOR(w.ups == 2, 5000);
	pgc_query_named(p, "two", sql, 1, p21, on_ans, &a[2]);
	TL_WAIT_FOR(a[2].calls == 1, 5000);
	assert_int_equal(a[2].null, 0);
	assert_string_equal(a[2].v[0], "42");

	/* dropped behind its back: one 26000, then prepared again */
	pgc_query(p, "DEALLOCATE two", 0, NULL, on_ans, &dealloc);
	pgc_query_named(p, "two", sql, 1, p21, on_ans, &a[3]);
	pgc_query_named(p, "two", sql, 1, p5, on_ans, &a[4]);
	TL_WAIT_FOR(a[4].calls == 1, 5000);
	assert_string_equal(dealloc.tag, "DEALLOCATE");
	assert_string_equal(a[3].sqlstate, "26000");
	assert_string_equal(a[4].v[0], "10");
	pgc_free(p);
	pgc_free(k);
}

/*
 * test_refused - nothing listens: down, retried with growing delays,
 * queries get NULL, and the loop keeps running all along.
 */
static void
test_refused(void **state)
{
	struct tl_watch	 w;
	struct ans	 a = { 0 };
	struct pgc	*p;
	char		 ci[128];
	unsigned	 t0 = tl_ticks;

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x",
	    tl_free_port());
	p = client(ci, NULL, &w);
	pgc_query(p, "SELECT 1", 0, NULL, on_ans, &a);
	tl_spin(1000);
	tl_assert_retrying(&w, t0);
	assert_int_not_equal(w.state, PGC_UP);
	assert_int_equal(a.null, 1);
	pgc_free(p);
}

/* test_connect_timeout - a server that accepts but never answers */
static void
test_connect_timeout(void **state)
{
	struct tl_watch	 w;
	struct pgc	*p;
	char		 ci[128];
	int		 fd, port;

	fd = tl_listen(&port);
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x "
	    "sslmode=disable gssencmode=disable", port);
	p = client(ci, NULL, &w);
	pgc_set_connect_timeout(p, 200);
	TL_WAIT_FOR(w.downs == 1, 3000);
	tl_assert_timed_out(&w);
	pgc_free(p);
	close(fd);
}

/* test_bad_password - refused logins: down, and said once */
static void
test_bad_password(void **state)
{
	struct tl_watch	 w;
	struct pgc	*p;

	tl_log_capture();
	p = client(secret, "wrong", &w);
	TL_WAIT_FOR(w.downs >= 2, 5000);
	assert_int_equal(w.ups, 0);
	assert_int_equal(tl_log_count(pgc_name(p), "password authentication "
	    "failed"), 1);
	tl_log_release();
	pgc_free(p);
}

/* on_free_me - free the client from inside a result callback */
static void
on_free_me(struct pgc *p, const PGresult *res, void *arg)
{
	on_ans(p, res, arg);
	pgc_free(p);
}

/* test_pgc_free - pending queries get NULL; pgc_free works from callbacks */
static void
test_pgc_free(void **state)
{
	struct tl_watch	 w;
	struct ans	 a = { 0 }, b = { 0 }, c = { 0 };
	struct pgc	*p;
	char		 ci[128];

	p = up(&w);
	pgc_query(p, "SELECT pg_sleep(10)", 0, NULL, on_ans, &a);
	pgc_begin(p);
	tl_spin(50);
	pgc_free(p);
	assert_int_equal(a.null, 1);

	p = up(&w);
	pgc_ping(p, on_free_me, &b);
	pgc_ping(p, on_ans, &c);
	TL_WAIT_FOR(c.calls == 1, 5000);
	assert_string_equal(b.v[0], "1");
	assert_int_equal(c.null, 1);

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d", tl_free_port());
	tl_watch_init(&w, PGC_CONNECTING);
	w.free_on_down = 1;
	p = pgc_new(tl_base, ci, NULL, on_state, &w);
	TL_WAIT_FOR(w.freed, 5000);
	assert_int_equal(w.freed, 1);
	tl_spin(20);
}

/* main - run every test against one cluster */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_txn),
		cmocka_unit_test(test_queue_limit),
		cmocka_unit_test(test_outage),
		cmocka_unit_test(test_terminated),
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_bad_password),
		cmocka_unit_test(test_pgc_free),
	};

	tl_server(pg_setup, pg_cleanup);
	return cmocka_run_group_tests(tests, tl_setup, tl_teardown);
}
