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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
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
#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "pgc.h"
#include "util.h"

#define PG_BIN		"/usr/lib/postgresql/15/bin"
#define PG_PASSWORD	"s3cret"

#define WAIT_FOR(cond, ms) do {						\
	uint64_t dl_ = now_mono_us() + (uint64_t)(ms) * 1000;		\
	while (!(cond) && now_mono_us() < dl_)				\
		event_base_loop(base, EVLOOP_ONCE);			\
} while (0)

struct watch {
	enum pgc_state	 state;
	int		 ups, downs, attempts;
	uint64_t	 start, first_down;
	uint64_t	 at[64];	/* when each attempt started */
};

/* One query's answer, kept after the PGresult is cleared. */
struct ans {
	int		 calls, null, status, seq;
	char		 v[3][64];	/* first row, first three columns */
	char		 sqlstate[8];
	char		 tag[32];
};

static char			 pg_dir[64];
static pid_t			 pg_pid = -1;
static int			 pg_port;
static uid_t			 pg_uid;
static gid_t			 pg_gid;
static int			 as_postgres;
static struct event_base	*base;
static struct event		*tick;
static unsigned			 ticks;
static int			 logfd = -1;
static int			 seq;		/* order of answers */
static char			 conninfo[128];	/* trusted */
static char			 secret[128];	/* needs PG_PASSWORD */

/* free_port - a loopback port nobody listens on right now */
static int
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd, port = -1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd != -1 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* spawn - run argv as the postgres user, output to log, dying with us */
static pid_t
spawn(char *const argv[], const char *log)
{
	pid_t	parent = getpid(), pid;
	int	fd;

	if ((pid = fork()) != 0)
		return pid;
	if (as_postgres && (setgroups(0, NULL) == -1 ||
	    setgid(pg_gid) == -1 || setuid(pg_uid) == -1))
		_exit(126);
	/* after setuid, which clears it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execv(argv[0], argv);
	_exit(127);
}

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
	if ((pid = spawn(argv, log)) == -1 || waitpid(pid, &status, 0) == -1 ||
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
	if (pg_pid > 0) {
		kill(pg_pid, SIGQUIT);
		waitpid(pg_pid, NULL, 0);
	}
	pg_pid = -1;
}

/* pg_start - start the postmaster and wait until it takes connections */
static int
pg_start(void)
{
	char		 data[96], log[96], port[16], sock[96];
	char		 ping[256];
	char		*argv[] = { PG_BIN "/postgres", "-D", data, "-p", port,
		    "-k", pg_dir, "-c", "listen_addresses=127.0.0.1", "-c",
		    "fsync=off", NULL };
	uint64_t	 dl = now_mono_us() + 15000000;

	snprintf(data, sizeof(data), "%s/data", pg_dir);
	snprintf(log, sizeof(log), "%s/postgres.log", pg_dir);
	snprintf(port, sizeof(port), "%d", pg_port);
	snprintf(sock, sizeof(sock), "%s", pg_dir);
	snprintf(ping, sizeof(ping), "host=%s port=%d dbname=postgres "
	    "user=postgres", sock, pg_port);
	if ((pg_pid = spawn(argv, log)) == -1)
		return -1;
	while (now_mono_us() < dl) {
		if (waitpid(pg_pid, NULL, WNOHANG) == pg_pid) {
			pg_pid = -1;
			break;
		}
		if (PQping(ping) == PQPING_OK)
			return 0;
		usleep(20000);
	}
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
	if ((as_postgres = geteuid() == 0)) {
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
	if (as_postgres && chown(pg_dir, pg_uid, pg_gid) == -1)
		return -1;
	pg_port = free_port();
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d "
	    "dbname=postgres user=postgres", pg_port);
	snprintf(secret, sizeof(secret), "postgresql://secret@127.0.0.1:%d/"
	    "postgres?application_name=pgc-test", pg_port);
	if (pg_initdb() == -1 || pg_start() == -1 || pg_role() == -1)
		return -1;
	return 0;
}

/* on_tick - a timer that only proves the loop keeps running */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	ticks++;
}

/* spin - run the loop for ms milliseconds */
static void
spin(unsigned ms)
{
	uint64_t	dl = now_mono_us() + ms * 1000ULL;

	while (now_mono_us() < dl)
		event_base_loop(base, EVLOOP_ONCE);
}

/* on_state - count state changes and when attempts start */
static void
on_state(struct pgc *p, enum pgc_state s, void *arg)
{
	struct watch	*w = arg;

	w->state = s;
	if (s == PGC_UP)
		w->ups++;
	else if (s == PGC_DOWN && w->downs++ == 0)
		w->first_down = now_mono_us();
	else if (s == PGC_CONNECTING && w->attempts < 64)
		w->at[w->attempts++] = now_mono_us();
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
client(const char *ci, const char *password, struct watch *w)
{
	struct pgc	*p;

	memset(w, 0, sizeof(*w));
	w->state = PGC_CONNECTING;
	w->start = now_mono_us();
	p = pgc_new(base, ci, password, on_state, w);
	assert_non_null(p);
	pgc_set_backoff(p, 20, 160);
	pgc_set_connect_timeout(p, 5000);
	return p;
}

/* up - a client of the test server, waited for until up */
static struct pgc *
up(struct watch *w)
{
	struct pgc	*p = client(conninfo, NULL, w);

	WAIT_FOR(w->state == PGC_UP, 10000);
	assert_int_equal(w->state, PGC_UP);
	return p;
}

/* log_capture - send log lines to a memory file from now on */
static void
log_capture(void)
{
	logfd = memfd_create("log", 0);
	assert_true(logfd != -1);
	log_set_fd(logfd);
}

/* log_count - lines of the captured log about client name, holding what */
static int
log_count(const char *name, const char *what)
{
	struct stat	 st;
	char		*buf, *line, *save = NULL, *a;
	int		 n = 0;

	a = xasprintf("msg=\"%s: ", name);
	assert_int_equal(fstat(logfd, &st), 0);
	buf = xcalloc(1, (size_t)st.st_size + 1);
	assert_int_equal(pread(logfd, buf, (size_t)st.st_size, 0),
	    st.st_size);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) != NULL && strstr(line, what) != NULL)
			n++;
	free(buf);
	free(a);
	return n;
}

/* log_release - log to stderr again */
static void
log_release(void)
{
	log_set_fd(-1);
	if (logfd != -1)
		close(logfd);
	logfd = -1;
}

/* test_query - parameters, NULL, several statements, the probe */
static void
test_query(void **state)
{
	const char	*params[] = { "40", "2", "y", NULL };
	struct watch	 w;
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
	WAIT_FOR(ping.calls == 1, 10000);
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
	assert_null(pgc_new(base, "nonsense", NULL, NULL, NULL));
	pgc_free(p);
}

/* test_order - answers come in queue order; an error stops nothing */
static void
test_order(void **state)
{
	static struct ans	 a[200];
	struct watch		 w;
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
	WAIT_FOR(a[199].calls == 1, 10000);
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
	struct watch	 w;
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
	WAIT_FOR(seen.calls == 1, 10000);
	assert_int_equal(c.commit.calls, 1);
	assert_string_equal(c.commit.tag, "COMMIT");
	assert_true(c.insert.seq < c.commit.seq && c.commit.seq < seen.seq);
	assert_string_equal(seen.v[0], "10");

	t = pgc_begin(p);
	pgc_txn_query(t, "INSERT INTO tx VALUES (5)", 0, NULL, on_ans, &ins);
	pgc_rollback(t, on_ans, &rb);
	pgc_query(p, "SELECT sum(a) FROM tx", 0, NULL, on_ans, &after);
	WAIT_FOR(after.calls == 1, 10000);
	assert_string_equal(ins.tag, "INSERT 0 1");
	assert_string_equal(rb.tag, "ROLLBACK");
	assert_string_equal(after.v[0], "10");

	t = pgc_begin(p);
	pgc_txn_query(t, "SELECT 1 / 0", 0, NULL, on_ans, &bad);
	pgc_commit(t, on_ans, &bc);
	WAIT_FOR(bc.calls == 1, 10000);
	assert_int_equal(bad.status, PGRES_FATAL_ERROR);
	assert_string_equal(bc.tag, "ROLLBACK");
	pgc_query(p, "DROP TABLE tx", 0, NULL, NULL, NULL);
	pgc_free(p);
}

/* test_queue_limit - a full queue refuses, and takes again once drained */
static void
test_queue_limit(void **state)
{
	struct watch	 w;
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
	WAIT_FOR(a[2].calls == 1, 10000);
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
	struct watch	 w;
	struct ans	 sleep = { 0 }, q[3], ins = { 0 }, tq = { 0 }, tc = { 0 };
	struct ans	 down = { 0 }, back = { 0 };
	struct pgc_txn	*t;
	struct pgc	*p;
	int		 i;

	memset(q, 0, sizeof(q));
	p = up(&w);
	log_capture();
	t = pgc_begin(p);
	pgc_txn_query(t, "SELECT 1", 0, NULL, on_ans, &ins);
	WAIT_FOR(ins.calls == 1, 5000);
	pgc_txn_query(t, "SELECT pg_sleep(30)", 0, NULL, on_ans, &sleep);
	for (i = 0; i < 3; i++)
		pgc_ping(p, on_ans, &q[i]);
	spin(100);
	pg_stop();
	WAIT_FOR(w.state == PGC_DOWN && q[2].calls == 1, 5000);
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
	spin(500);
	assert_int_equal(tq.null + tc.null + down.null, 3);
	assert_true(w.downs >= 3);

	assert_int_equal(pg_start(), 0);
	WAIT_FOR(w.ups == 2, 10000);
	assert_int_equal(w.state, PGC_UP);
	pgc_ping(p, on_ans, &back);
	WAIT_FOR(back.calls == 1, 5000);
	assert_string_equal(back.v[0], "1");
	assert_int_equal(log_count(pgc_name(p), "level=warn"), 1);
	assert_int_equal(log_count(pgc_name(p), "up again"), 1);
	log_release();
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
	struct watch	 w, wk;
	struct ans	 pid = { 0 }, sleep = { 0 }, kill = { 0 }, back = { 0 };
	const char	*params[] = { pid.v[0] };
	struct pgc	*p, *k;

	p = up(&w);
	k = up(&wk);
	pgc_query(p, "SELECT pg_backend_pid()", 0, NULL, on_ans, &pid);
	pgc_query(p, "SELECT pg_sleep(30)", 0, NULL, on_ans, &sleep);
	WAIT_FOR(pid.calls == 1, 5000);
	spin(50);
	pgc_query(k, "SELECT pg_terminate_backend($1::int)", 1, params,
	    on_ans, &kill);
	WAIT_FOR(sleep.calls == 1 && kill.calls == 1, 5000);
	assert_string_equal(kill.v[0], "t");
	assert_int_equal(sleep.null, 1);
	WAIT_FOR(w.ups == 2, 5000);
	assert_int_equal(w.downs, 1);
	pgc_ping(p, on_ans, &back);
	WAIT_FOR(back.calls == 1, 5000);
	assert_string_equal(back.v[0], "1");
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
	struct watch	 w;
	struct ans	 a = { 0 };
	struct pgc	*p;
	char		 ci[128];
	unsigned	 t0 = ticks;

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x",
	    free_port());
	p = client(ci, NULL, &w);
	pgc_query(p, "SELECT 1", 0, NULL, on_ans, &a);
	spin(1000);
	assert_int_equal(w.ups, 0);
	assert_int_equal(w.state == PGC_UP, 0);
	assert_int_equal(a.null, 1);
	assert_true(w.attempts >= 4);
	assert_true(ticks - t0 >= 20);
	/* each delay at least 1.6 times the one before, until the cap */
	assert_true(w.at[2] - w.at[1] > w.at[1] - w.at[0]);
	assert_true(w.at[w.attempts - 1] - w.at[w.attempts - 2] >= 100000);
	pgc_free(p);
}

/* test_connect_timeout - a server that accepts but never answers */
static void
test_connect_timeout(void **state)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct watch		 w;
	struct pgc		*p;
	char			 ci[128];
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x "
	    "sslmode=disable gssencmode=disable", ntohs(sin.sin_port));
	p = client(ci, NULL, &w);
	pgc_set_connect_timeout(p, 200);
	WAIT_FOR(w.downs == 1, 3000);
	assert_int_equal(w.ups, 0);
	assert_true(w.first_down - w.start >= 190000);
	assert_true(w.first_down - w.start < 1500000);
	pgc_free(p);
	close(fd);
}

/* test_bad_password - refused logins: down, and said once */
static void
test_bad_password(void **state)
{
	struct watch	 w;
	struct pgc	*p;

	log_capture();
	p = client(secret, "wrong", &w);
	WAIT_FOR(w.downs >= 2, 5000);
	assert_int_equal(w.ups, 0);
	assert_int_equal(log_count(pgc_name(p), "password authentication "
	    "failed"), 1);
	log_release();
	pgc_free(p);
}

/* on_free_me - free the client from inside a result callback */
static void
on_free_me(struct pgc *p, const PGresult *res, void *arg)
{
	on_ans(p, res, arg);
	pgc_free(p);
}

/* on_state_free - free the client from inside its state callback */
static void
on_state_free(struct pgc *p, enum pgc_state s, void *arg)
{
	if (s == PGC_DOWN) {
		*(int *)arg = 1;
		pgc_free(p);
	}
}

/* test_pgc_free - pending queries get NULL; pgc_free works from callbacks */
static void
test_pgc_free(void **state)
{
	struct watch	 w;
	struct ans	 a = { 0 }, b = { 0 }, c = { 0 };
	struct pgc	*p;
	char		 ci[128];
	int		 freed = 0;

	p = up(&w);
	pgc_query(p, "SELECT pg_sleep(10)", 0, NULL, on_ans, &a);
	pgc_begin(p);
	spin(50);
	pgc_free(p);
	assert_int_equal(a.null, 1);

	p = up(&w);
	pgc_ping(p, on_free_me, &b);
	pgc_ping(p, on_ans, &c);
	WAIT_FOR(c.calls == 1, 5000);
	assert_string_equal(b.v[0], "1");
	assert_int_equal(c.null, 1);

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d", free_port());
	p = pgc_new(base, ci, NULL, on_state_free, &freed);
	WAIT_FOR(freed == 1, 5000);
	assert_int_equal(freed, 1);
	spin(20);
}

/* setup - make and start the cluster, and the loop */
static int
setup(void **state)
{
	log_init("test", LOG_LVL_INFO, LOG_FMT_LOGFMT);
	if (pg_setup() == -1)
		return -1;
	base = event_base_new();
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick, &(struct timeval){ 0, 10000 });
	return 0;
}

/* teardown - stop the cluster and remove it */
static int
teardown(void **state)
{
	pg_cleanup();
	if (tick != NULL)
		event_free(tick);
	if (base != NULL)
		event_base_free(base);
	return 0;
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
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_bad_password),
		cmocka_unit_test(test_pgc_free),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
