/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rds - the Redis client against a real redis-server, started here on
 * a free loopback port: commands, AUTH, pub/sub, stream following, and what
 * a client sees when the server is killed and started again, or when its
 * connection is killed.  A missing redis-server fails the test.
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
#include <hiredis/hiredis.h>

#include "log.h"
#include "rds.h"
#include "util.h"

#define WAIT_FOR(cond, ms) do {						\
	uint64_t dl_ = now_mono_us() + (uint64_t)(ms) * 1000;		\
	while (!(cond) && now_mono_us() < dl_)				\
		event_base_loop(base, EVLOOP_ONCE);			\
} while (0)

struct watch {
	enum rds_state	 state;
	int		 ups, downs, attempts;
	uint64_t	 start, first_down;
	uint64_t	 at[64];	/* when each attempt started */
};

struct rec {
	int		 calls, nulls, type;
	long long	 ints[64];
	int		 nints;
	char		 str[128];
	size_t		 len, elements;
};

struct msgs {
	int		 n;
	char		 chan[8][32];
	char		 data[8][32];
	size_t		 len[8];
};

struct seen {
	int		 n;
	int		 vals[512];
};

static pid_t			 srv_pid = -1;
static int			 srv_port;
static redisContext		*ctl;
static struct event_base	*base;
static struct event		*tick;
static unsigned			 ticks;
static int			 logfd = -1;

/* in_path - whether prog is an executable in $PATH */
static int
in_path(const char *prog)
{
	char	*path, *dir, *save = NULL, buf[4096];
	int	 found = 0;

	path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	for (dir = strtok_r(path, ":", &save); dir && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", dir, prog);
		found = access(buf, X_OK) == 0;
	}
	free(path);
	return found;
}

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

/* srv_stop - kill the server like a crash would, and forget ctl */
static void
srv_stop(void)
{
	if (ctl != NULL)
		redisFree(ctl);
	ctl = NULL;
	if (srv_pid > 0) {
		kill(srv_pid, SIGKILL);
		waitpid(srv_pid, NULL, 0);
	}
	srv_pid = -1;
}

/* srv_exec - the child: die with the test, quiet, become redis-server */
static void
srv_exec(pid_t parent)
{
	char	 port[16];
	char	*argv[] = { "redis-server", "--port", port, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no", NULL };
	int	 fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	snprintf(port, sizeof(port), "%d", srv_port);
	execvp(argv[0], argv);
	_exit(127);
}

/* srv_start - start redis-server on srv_port and connect ctl to it */
static int
srv_start(void)
{
	pid_t		 parent = getpid();
	uint64_t	 dl = now_mono_us() + 10000000;
	struct timeval	 tv = { 0, 200000 };
	redisReply	*r;

	if ((srv_pid = fork()) == -1)
		return -1;
	if (srv_pid == 0)
		srv_exec(parent);
	while (now_mono_us() < dl) {
		if (waitpid(srv_pid, NULL, WNOHANG) == srv_pid) {
			srv_pid = -1;
			print_error("redis-server exited at once\n");
			return -1;
		}
		if ((ctl = redisConnectWithTimeout("127.0.0.1", srv_port,
		    tv)) != NULL && ctl->err == 0 &&
		    (r = redisCommand(ctl, "PING")) != NULL) {
			freeReplyObject(r);
			return 0;
		}
		if (ctl != NULL)
			redisFree(ctl);
		ctl = NULL;
		usleep(20000);
	}
	print_error("redis-server did not answer on port %d\n", srv_port);
	return -1;
}

/* ctl_cmd - a command on the control connection, which must not fail */
static redisReply *
ctl_cmd(const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;

	va_start(ap, fmt);
	r = redisvCommand(ctl, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	return r;
}

/* ctl_int - an integer reply of the control connection */
static long long
ctl_int(const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;
	long long	 v;

	va_start(ap, fmt);
	r = redisvCommand(ctl, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* numsub - subscribers of a channel, as the server counts them */
static long long
numsub(const char *channel)
{
	redisReply	*r = ctl_cmd("PUBSUB NUMSUB %s", channel);
	long long	 n = r->element[1]->integer;

	freeReplyObject(r);
	return n;
}

/* xadd - add entry n to a stream; returns its id in id */
static void
xadd(const char *key, int n, char *id, size_t idlen)
{
	redisReply	*r = ctl_cmd("XADD %s * n %d", key, n);

	if (id != NULL)
		snprintf(id, idlen, "%s", r->str);
	freeReplyObject(r);
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
on_state(struct rds *r, enum rds_state s, void *arg)
{
	struct watch	*w = arg;

	w->state = s;
	if (s == RDS_UP)
		w->ups++;
	else if (s == RDS_DOWN && w->downs++ == 0)
		w->first_down = now_mono_us();
	else if (s == RDS_CONNECTING && w->attempts < 64)
		w->at[w->attempts++] = now_mono_us();
}

/* on_rec - record a reply: scalars, or the first two array strings */
static void
on_rec(struct rds *c, const redisReply *r, void *arg)
{
	struct rec	*rec = arg;
	size_t		 i;

	rec->calls++;
	if (r == NULL) {
		rec->nulls++;
		return;
	}
	rec->type = r->type;
	rec->len = r->len;
	rec->elements = r->elements;
	if (r->type == REDIS_REPLY_INTEGER && rec->nints < 64)
		rec->ints[rec->nints++] = r->integer;
	if (r->str != NULL)
		memcpy(rec->str, r->str, r->len < 127 ? r->len : 127);
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && i < 2;
	    i++)
		snprintf(rec->str + strlen(rec->str),
		    sizeof(rec->str) - strlen(rec->str), "%s|",
		    r->element[i]->str);
}

/* on_msg - keep up to 8 pub/sub messages */
static void
on_msg(struct rds *c, const char *chan, const char *data, size_t len,
    void *arg)
{
	struct msgs	*m = arg;

	if (m->n >= 8)
		return;
	snprintf(m->chan[m->n], sizeof(m->chan[0]), "%s", chan);
	memcpy(m->data[m->n], data, len < 31 ? len : 31);
	m->len[m->n++] = len;
}

/* on_entry - keep the n field of each stream entry */
static void
on_entry(struct rds *c, const char *id, const redisReply *fields,
    void *arg)
{
	struct seen	*s = arg;

	assert_int_equal(fields->type, REDIS_REPLY_ARRAY);
	assert_int_equal(fields->elements, 2);
	assert_string_equal(fields->element[0]->str, "n");
	if (s->n < 512)
		s->vals[s->n++] = atoi(fields->element[1]->str);
}

/* client - a client with a name, a fast backoff and a state watch */
static struct rds *
client(const char *name, int port, const char *password, struct watch *w)
{
	struct rds	*c;

	memset(w, 0, sizeof(*w));
	w->state = RDS_CONNECTING;
	w->start = now_mono_us();
	c = rds_new(base, "127.0.0.1", port, password, on_state, w);
	rds_set_name(c, name);
	rds_set_backoff(c, 20, 160);
	rds_set_connect_timeout(c, 2000);
	return c;
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

/* assert_seq - the entries seen are exactly 1..n, in order */
static void
assert_seq(const struct seen *s, int n)
{
	int	i;

	assert_int_equal(s->n, n);
	for (i = 0; i < n; i++)
		assert_int_equal(s->vals[i], i + 1);
}

/* test_commands - replies in order, binary safety, errors, NULL on free */
static void
test_commands(void **state)
{
	struct watch	 w;
	struct rec	 incr = { 0 }, list = { 0 }, err = { 0 }, bin = { 0 };
	struct rec	 pong = { 0 }, pend = { 0 };
	const char	*argv[] = { "SET", "bin", "a\0b" };
	size_t		 lens[] = { 3, 3, 3 };
	struct rds	*c;
	int		 i;

	c = client("rds-cmd", srv_port, NULL, &w);
	assert_int_equal(rds_state(c), RDS_CONNECTING);
	/* queued while connecting, answered in order once up */
	assert_int_equal(rds_command(c, NULL, NULL, "DEL ctr lst"), 0);
	for (i = 0; i < 50; i++)
		assert_int_equal(rds_command(c, on_rec, &incr, "INCR ctr"), 0);
	rds_command(c, NULL, NULL, "RPUSH lst %s %s", "a b", "c");
	rds_command(c, on_rec, &list, "LRANGE lst 0 -1");
	rds_command(c, on_rec, &err, "INCR lst");
	rds_command_argv(c, NULL, NULL, 3, argv, lens);
	rds_command(c, on_rec, &bin, "GET bin");
	rds_ping(c, on_rec, &pong);
	assert_int_equal(incr.calls, 0);
	WAIT_FOR(pong.calls == 1, 5000);
	assert_int_equal(w.state, RDS_UP);
	assert_int_equal(w.ups, 1);
	assert_int_equal(incr.calls, 50);
	assert_int_equal(incr.nulls, 0);
	for (i = 0; i < 50; i++)
		assert_int_equal(incr.ints[i], i + 1);
	assert_int_equal(list.elements, 2);
	assert_string_equal(list.str, "a b|c|");
	assert_int_equal(err.type, REDIS_REPLY_ERROR);
	assert_memory_equal(err.str, "WRONGTYPE", 9);
	assert_int_equal(bin.len, 3);
	assert_memory_equal(bin.str, "a\0b", 3);
	assert_string_equal(pong.str, "PONG");
	/* a command connection cannot also subscribe or follow */
	assert_int_equal(rds_subscribe(c, "x", on_msg, NULL), -1);
	assert_int_equal(rds_stream_follow(c, "s", "0", 0, 0, on_entry, NULL),
	    -1);
	/* rds_free answers what is pending with NULL */
	rds_command(c, on_rec, &pend, "BLPOP nothing 5");
	spin(50);
	assert_int_equal(pend.calls, 0);
	rds_free(c);
	assert_int_equal(pend.calls, 1);
	assert_int_equal(pend.nulls, 1);
}

/* test_auth - AUTH after connect; a wrong or missing password stays down */
static void
test_auth(void **state)
{
	struct watch	 wg, wb, wn;
	struct rec	 ok = { 0 }, bad = { 0 };
	struct rds	*good, *wrong, *none;

	freeReplyObject(ctl_cmd("CONFIG SET requirepass s3cret"));
	good = client("rds-good", srv_port, "s3cret", &wg);
	wrong = client("rds-wrong", srv_port, "nope", &wb);
	none = client("rds-none", srv_port, NULL, &wn);
	WAIT_FOR(wg.ups == 1 && wb.downs >= 2 && wn.downs >= 2, 5000);
	assert_int_equal(wg.state, RDS_UP);
	assert_int_equal(wb.ups, 0);
	assert_int_equal(wn.ups, 0);
	rds_command(good, on_rec, &ok, "SET k v");
	rds_command(wrong, on_rec, &bad, "SET k v");
	WAIT_FOR(ok.calls == 1 && bad.calls == 1, 5000);
	assert_string_equal(ok.str, "OK");
	assert_int_equal(bad.nulls, 1);
	/* the server no longer wants a password: the retry gets through */
	freeReplyObject(ctl_cmd("CONFIG SET requirepass %s", ""));
	WAIT_FOR(wn.ups == 1, 5000);
	assert_int_equal(wn.state, RDS_UP);
	rds_free(good);
	rds_free(wrong);
	rds_free(none);
}

/* test_subscribe - channel and pattern messages reach their callbacks */
static void
test_subscribe(void **state)
{
	struct watch	 w;
	struct msgs	 m = { 0 }, pm = { 0 };
	struct rds	*s;

	s = client("rds-sub", srv_port, NULL, &w);
	assert_int_equal(rds_subscribe(s, "chan", on_msg, &m), 0);
	assert_int_equal(rds_psubscribe(s, "pat.*", on_msg, &pm), 0);
	assert_int_equal(rds_subscribe(s, "chan", on_msg, &m), -1);
	assert_int_equal(rds_command(s, NULL, NULL, "PING"), -1);
	WAIT_FOR(w.state == RDS_UP && numsub("chan") == 1 &&
	    ctl_int("PUBSUB NUMPAT") == 1, 5000);
	assert_int_equal(ctl_int("PUBLISH chan %b", "he\0lo", (size_t)5), 1);
	assert_int_equal(ctl_int("PUBLISH pat.x hi"), 1);
	WAIT_FOR(m.n == 1 && pm.n == 1, 5000);
	assert_string_equal(m.chan[0], "chan");
	assert_int_equal(m.len[0], 5);
	assert_memory_equal(m.data[0], "he\0lo", 5);
	assert_string_equal(pm.chan[0], "pat.x");
	assert_string_equal(pm.data[0], "hi");
	rds_free(s);
}

/*
 * test_server_restart - kill redis-server: every client goes down and
 * commands fail with NULL; start it again on the same port: every client
 * is up again, the subscription works without a new rds_subscribe, the
 * stream goes on without a loss or a duplicate, and each client logged
 * the outage once and the recovery once.
 */
static void
test_server_restart(void **state)
{
	const char	*names[] = { "rds-c", "rds-s", "rds-f" };
	struct watch	 wc, ws, wf;
	struct rec	 blocked = { 0 }, down = { 0 }, after = { 0 };
	struct msgs	 m = { 0 };
	struct seen	 seen = { 0 };
	struct rds	*c, *s, *f;
	int		 i;

	freeReplyObject(ctl_cmd("DEL st"));
	c = client(names[0], srv_port, NULL, &wc);
	s = client(names[1], srv_port, NULL, &ws);
	f = client(names[2], srv_port, NULL, &wf);
	rds_subscribe(s, "news", on_msg, &m);
	rds_stream_follow(f, "st", "0", 200, 0, on_entry, &seen);
	for (i = 1; i <= 3; i++)
		xadd("st", i, NULL, 0);
	WAIT_FOR(seen.n == 3 && numsub("news") == 1 && wc.ups == 1, 5000);
	assert_seq(&seen, 3);

	log_capture();
	rds_command(c, on_rec, &blocked, "BLPOP nothing 30");
	spin(50);
	srv_stop();
	WAIT_FOR(wc.state == RDS_DOWN && ws.state == RDS_DOWN &&
	    wf.state == RDS_DOWN && blocked.calls == 1, 5000);
	assert_int_equal(blocked.nulls, 1);
	assert_int_equal(rds_command(c, on_rec, &down, "PING"), 0);
	assert_int_equal(down.calls, 0);
	spin(600);	/* several failed attempts */
	assert_int_equal(down.nulls, 1);
	assert_true(wc.downs >= 3);

	assert_int_equal(srv_start(), 0);
	WAIT_FOR(wc.ups == 2 && ws.ups == 2 && wf.ups == 2, 5000);
	assert_int_equal(wc.state, RDS_UP);
	WAIT_FOR(numsub("news") == 1, 5000);
	assert_int_equal(ctl_int("PUBLISH news again"), 1);
	for (i = 4; i <= 6; i++)
		xadd("st", i, NULL, 0);
	rds_command(c, on_rec, &after, "PING");
	WAIT_FOR(m.n == 1 && seen.n == 6 && after.calls == 1, 5000);
	assert_string_equal(m.data[0], "again");
	assert_string_equal(after.str, "PONG");
	spin(300);	/* nothing more comes */
	assert_seq(&seen, 6);
	for (i = 0; i < 3; i++) {
		assert_int_equal(log_count(names[i], "level=warn"), 1);
		assert_int_equal(log_count(names[i], "up again"), 1);
	}
	log_release();
	rds_free(c);
	rds_free(s);
	rds_free(f);
}

/*
 * test_stream_client_kill - the follower's connection is killed while
 * entries keep coming, some in batches larger than COUNT: every entry
 * arrives once, in order.  A follower from "$" skips what was there before
 * it started, even when its connection is killed before any new entry.
 */
static void
test_stream_client_kill(void **state)
{
	struct watch	 wf, wg;
	struct seen	 seen = { 0 }, fresh = { 0 };
	struct rds	*f, *g;
	char		 id[64];
	int		 i;

	freeReplyObject(ctl_cmd("DEL st2 st3"));
	xadd("st3", 100, NULL, 0);
	f = client("rds-f2", srv_port, NULL, &wf);
	g = client("rds-g", srv_port, NULL, &wg);
	rds_stream_follow(f, "st2", "0", 100, 10, on_entry, &seen);
	rds_stream_follow(g, "st3", "$", 100, 0, on_entry, &fresh);
	for (i = 1; i <= 3; i++)
		xadd("st2", i, NULL, 0);
	WAIT_FOR(seen.n == 3 && strcmp(rds_stream_last_id(g), "$") != 0,
	    5000);
	assert_seq(&seen, 3);

	freeReplyObject(ctl_cmd("CLIENT KILL TYPE normal"));
	for (i = 4; i <= 250; i++)
		xadd("st2", i, id, sizeof(id));
	xadd("st3", 1, NULL, 0);
	WAIT_FOR(seen.n == 250 && fresh.n == 1, 5000);
	spin(300);
	assert_int_equal(wf.ups, 2);
	assert_int_equal(wg.ups, 2);
	assert_seq(&seen, 250);
	assert_seq(&fresh, 1);
	assert_string_equal(rds_stream_last_id(f), id);
	rds_free(f);
	rds_free(g);
}

/*
 * test_refused - nothing listens: the client stays down, retrying with
 * growing delays, commands get NULL, and the loop keeps running.
 */
static void
test_refused(void **state)
{
	struct watch	 w;
	struct rec	 r = { 0 };
	struct rds	*c;
	unsigned	 t0 = ticks;

	c = client("rds-refused", free_port(), NULL, &w);
	spin(1000);
	assert_int_equal(w.ups, 0);
	assert_int_equal(w.state == RDS_UP, 0);
	assert_true(w.attempts >= 4);
	assert_true(ticks - t0 >= 20);
	/* each delay at least 1.6 times the one before, until the cap */
	assert_true(w.at[2] - w.at[1] > w.at[1] - w.at[0]);
	assert_true(w.at[w.attempts - 1] - w.at[w.attempts - 2] >= 100000);
	rds_command(c, on_rec, &r, "PING");
	spin(50);
	assert_int_equal(r.nulls, 1);
	rds_free(c);
}

/* test_connect_timeout - a server that accepts but never answers */
static void
test_connect_timeout(void **state)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct watch		 w;
	struct rds		*c;
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	c = client("rds-mute", ntohs(sin.sin_port), NULL, &w);
	rds_set_connect_timeout(c, 200);
	WAIT_FOR(w.downs == 1, 3000);
	assert_int_equal(w.ups, 0);
	assert_true(w.first_down - w.start >= 190000);
	assert_true(w.first_down - w.start < 1500000);
	rds_free(c);
	close(fd);
}

/* on_free_me - free the client from inside a reply callback */
static void
on_free_me(struct rds *c, const redisReply *r, void *arg)
{
	struct rec	*rec = arg;

	rec->calls++;
	rds_free(c);
}

/* on_state_free - free the client from inside its state callback */
static void
on_state_free(struct rds *c, enum rds_state s, void *arg)
{
	if (s == RDS_DOWN) {
		*(int *)arg = 1;
		rds_free(c);
	}
}

/* test_free_in_callback - rds_free from a reply or a state callback */
static void
test_free_in_callback(void **state)
{
	struct watch	 w;
	struct rec	 first = { 0 }, second = { 0 };
	struct rds	*c;
	int		 freed = 0;

	c = client("rds-free", srv_port, NULL, &w);
	rds_command(c, on_free_me, &first, "PING");
	rds_command(c, on_rec, &second, "PING");
	WAIT_FOR(first.calls == 1 && second.calls == 1, 5000);
	assert_int_equal(second.nulls, 1);
	spin(20);

	c = rds_new(base, "127.0.0.1", free_port(), NULL, on_state_free,
	    &freed);
	WAIT_FOR(freed == 1, 5000);
	assert_int_equal(freed, 1);
	spin(20);
}

/* setup - start redis-server and the loop */
static int
setup(void **state)
{
	if (!in_path("redis-server")) {
		print_error("redis-server is not installed (apt-get install "
		    "redis-server): this test needs a real server\n");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init("test", LOG_LVL_INFO, LOG_FMT_LOGFMT);
	atexit(srv_stop);
	srv_port = free_port();
	if (srv_start() == -1)
		return -1;
	base = event_base_new();
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick, &(struct timeval){ 0, 10000 });
	return 0;
}

/* teardown - kill redis-server */
static int
teardown(void **state)
{
	srv_stop();
	if (tick != NULL)
		event_free(tick);
	if (base != NULL)
		event_base_free(base);
	return 0;
}

/* main - run every test against one redis-server */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_subscribe),
		cmocka_unit_test(test_server_restart),
		cmocka_unit_test(test_stream_client_kill),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_free_in_callback),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
