/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rds - the Redis client against a real redis-server, started here on
 * a free loopback port: commands, AUTH, pub/sub, stream following, and what
 * a client sees when the server is killed and started again, or when its
 * connection is killed.  A missing redis-server fails the test.
 */
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
#include <hiredis/hiredis.h>

#include "log.h"
#include "rds.h"
#include "testlib.h"
#include "util.h"

struct rec {
	int		 calls, nulls, type;
	int		 sent;		/* a NULL's rds_reply_sent */
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

static pid_t		 srv_pid = -1;
static int		 srv_port;
static redisContext	*ctl;

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

/* srv_stop - kill the server like a crash would, and forget ctl */
static void
srv_stop(void)
{
	if (ctl != NULL)
		redisFree(ctl);
	ctl = NULL;
	tl_kill(&srv_pid, SIGKILL);
}

/* srv_ready - whether the server answers PING: then ctl is connected */
static int
srv_ready(void *arg)
{
	struct timeval	 tv = { 0, 200000 };
	redisReply	*r;

	if ((ctl = redisConnectWithTimeout("127.0.0.1", srv_port,
	    tv)) != NULL && ctl->err == 0 &&
	    (r = redisCommand(ctl, "PING")) != NULL) {
		freeReplyObject(r);
		return 1;
	}
	if (ctl != NULL)
		redisFree(ctl);
	ctl = NULL;
	return 0;
}

/* srv_start - start redis-server on srv_port and connect ctl to it */
static int
srv_start(void)
{
	char	 port[16];
	char	*argv[] = { "redis-server", "--port", port, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no", NULL };

	snprintf(port, sizeof(port), "%d", srv_port);
	if ((srv_pid = tl_spawn(argv, "/dev/null", (uid_t)-1, 0)) == -1)
		return -1;
	if (tl_wait_ready(&srv_pid, 10000, srv_ready, NULL) == 0)
		return 0;
	if (srv_pid == -1)
		print_error("redis-server exited at once\n");
	else
		print_error("redis-server did not answer on port %d\n",
		    srv_port);
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

/* on_rec - record a reply: scalars, or the first two array strings */
static void
on_rec(struct rds *c, const redisReply *r, void *arg)
{
	struct rec	*rec = arg;
	size_t		 i;

	rec->calls++;
	if (r == NULL) {
		rec->nulls++;
		rec->sent = rds_reply_sent(c);
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

/* on_state - note a state change in the watch; free the client if told */
static void
on_state(struct rds *r, enum rds_state s, void *arg)
{
	if (tl_watch_note(arg, s, s == RDS_UP ? TL_UP : s == RDS_DOWN ?
	    TL_DOWN : TL_ATTEMPT))
		rds_free(r);
}

/* client - a client with a name, a fast backoff and a state watch */
static struct rds *
client(const char *name, int port, const char *password,
    struct tl_watch *w)
{
	struct rds	*c;

	tl_watch_init(w, RDS_CONNECTING);
	c = rds_new(tl_base, "127.0.0.1", port, password, on_state, w);
	rds_set_name(c, name);
	rds_set_backoff(c, 20, 160);
	rds_set_connect_timeout(c, 2000);
	return c;
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
	struct tl_watch	 w;
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
	TL_WAIT_FOR(pong.calls == 1, 5000);
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
	tl_spin(50);
	assert_int_equal(pend.calls, 0);
	rds_free(c);
	assert_int_equal(pend.calls, 1);
	assert_int_equal(pend.nulls, 1);
}

/* test_auth - AUTH after connect; a wrong or missing password stays down */
static void
test_auth(void **state)
{
	struct tl_watch	 wg, wb, wn;
	struct rec	 ok = { 0 }, bad = { 0 };
	struct rds	*good, *wrong, *none;

	freeReplyObject(ctl_cmd("CONFIG SET requirepass s3cret"));
	good = client("rds-good", srv_port, "s3cret", &wg);
	wrong = client("rds-wrong", srv_port, "nope", &wb);
	none = client("rds-none", srv_port, NULL, &wn);
	TL_WAIT_FOR(wg.ups == 1 && wb.downs >= 2 && wn.downs >= 2, 5000);
	assert_int_equal(wg.state, RDS_UP);
	assert_int_equal(wb.ups, 0);
	assert_int_equal(wn.ups, 0);
	rds_command(good, on_rec, &ok, "SET k v");
	rds_command(wrong, on_rec, &bad, "SET k v");
	TL_WAIT_FOR(ok.calls == 1 && bad.calls == 1, 5000);
	assert_string_equal(ok.str, "OK");
	assert_int_equal(bad.nulls, 1);
	/* the server no longer wants a password: the retry gets through */
	freeReplyObject(ctl_cmd("CONFIG SET requirepass %s", ""));
	TL_WAIT_FOR(wn.ups == 1, 5000);
	assert_int_equal(wn.state, RDS_UP);
	rds_free(good);
	rds_free(wrong);
	rds_free(none);
}

/* test_subscribe - channel and pattern messages reach their callbacks */
static void
test_subscribe(void **state)
{
	struct tl_watch	 w;
	struct msgs	 m = { 0 }, pm = { 0 };
	struct rds	*s;

	s = client("rds-sub", srv_port, NULL, &w);
	assert_int_equal(rds_subscribe(s, "chan", on_msg, &m), 0);
	assert_int_equal(rds_psubscribe(s, "pat.*", on_msg, &pm), 0);
	assert_int_equal(rds_subscribe(s, "chan", on_msg, &m), -1);
	assert_int_equal(rds_command(s, NULL, NULL, "PING"), -1);
	TL_WAIT_FOR(w.state == RDS_UP && numsub("chan") == 1 &&
	    ctl_int("PUBSUB NUMPAT") == 1, 5000);
	assert_int_equal(ctl_int("PUBLISH chan %b", "he\0lo", (size_t)5), 1);
	assert_int_equal(ctl_int("PUBLISH pat.x hi"), 1);
	TL_WAIT_FOR(m.n == 1 && pm.n == 1, 5000);
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
	struct tl_watch	 wc, ws, wf;
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
	TL_WAIT_FOR(seen.n == 3 && numsub("news") == 1 && wc.ups == 1, 5000);
	assert_seq(&seen, 3);

	tl_log_capture();
	rds_command(c, on_rec, &blocked, "BLPOP nothing 30");
	tl_spin(50);
	srv_stop();
	TL_WAIT_FOR(wc.state == RDS_DOWN && ws.state == RDS_DOWN &&
	    wf.state == RDS_DOWN && blocked.calls == 1, 5000);
	assert_int_equal(blocked.nulls, 1);
	assert_int_equal(blocked.sent, 1);	/* it may have run */
	assert_int_equal(rds_command(c, on_rec, &down, "PING"), 0);
	assert_int_equal(down.calls, 0);
	tl_spin(600);	/* several failed attempts */
	assert_int_equal(down.nulls, 1);
	assert_int_equal(down.sent, 0);		/* it never left */
	assert_true(wc.downs >= 3);

	assert_int_equal(srv_start(), 0);
	TL_WAIT_FOR(wc.ups == 2 && ws.ups == 2 && wf.ups == 2, 5000);
	assert_int_equal(wc.state, RDS_UP);
	TL_WAIT_FOR(numsub("news") == 1, 5000);
	assert_int_equal(ctl_int("PUBLISH news again"), 1);
	for (i = 4; i <= 6; i++)
		xadd("st", i, NULL, 0);
	rds_command(c, on_rec, &after, "PING");
	TL_WAIT_FOR(m.n == 1 && seen.n == 6 && after.calls == 1, 5000);
	assert_string_equal(m.data[0], "again");
	assert_string_equal(after.str, "PONG");
	tl_spin(300);	/* nothing more comes */
	assert_seq(&seen, 6);
	for (i = 0; i < 3; i++) {
		assert_int_equal(tl_log_count(names[i], "level=warn"), 1);
		assert_int_equal(tl_log_count(names[i], "up again"), 1);
	}
	tl_log_release();
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
	struct tl_watch	 wf, wg;
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
	TL_WAIT_FOR(seen.n == 3 && strcmp(rds_stream_last_id(g), "$") != 0,
	    5000);
	assert_seq(&seen, 3);

	freeReplyObject(ctl_cmd("CLIENT KILL TYPE normal"));
	for (i = 4; i <= 250; i++)
		xadd("st2", i, id, sizeof(id));
	xadd("st3", 1, NULL, 0);
	TL_WAIT_FOR(seen.n == 250 && fresh.n == 1, 5000);
	tl_spin(300);
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
	struct tl_watch	 w;
	struct rec	 r = { 0 };
	struct rds	*c;
	unsigned	 t0 = tl_ticks;

	c = client("rds-refused", tl_free_port(), NULL, &w);
	tl_spin(1000);
	tl_assert_retrying(&w, t0);
	assert_int_not_equal(w.state, RDS_UP);
	rds_command(c, on_rec, &r, "PING");
	tl_spin(50);
	assert_int_equal(r.nulls, 1);
	assert_int_equal(r.sent, 0);
	rds_free(c);
}

/* test_connect_timeout - a server that accepts but never answers */
static void
test_connect_timeout(void **state)
{
	struct tl_watch	 w;
	struct rds	*c;
	int		 fd, port;

	fd = tl_listen(&port);
	c = client("rds-mute", port, NULL, &w);
	rds_set_connect_timeout(c, 200);
	TL_WAIT_FOR(w.downs == 1, 3000);
	tl_assert_timed_out(&w);
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

/* test_free_in_callback - rds_free from a reply or a state callback */
static void
test_free_in_callback(void **state)
{
	struct rec	 first = { 0 }, second = { 0 };
	struct tl_watch	 w;
	struct rds	*c;

	c = client("rds-free", srv_port, NULL, &w);
	rds_command(c, on_free_me, &first, "PING");
	rds_command(c, on_rec, &second, "PING");
	TL_WAIT_FOR(first.calls == 1 && second.calls == 1, 5000);
	assert_int_equal(second.nulls, 1);
	tl_spin(20);

	tl_watch_init(&w, RDS_CONNECTING);
	w.free_on_down = 1;
	c = rds_new(tl_base, "127.0.0.1", tl_free_port(), NULL, on_state, &w);
	TL_WAIT_FOR(w.freed, 5000);
	assert_int_equal(w.freed, 1);
	tl_spin(20);
}

/* srv_setup - start redis-server for every test */
static int
srv_setup(void)
{
	if (!in_path("redis-server")) {
		print_error("redis-server is not installed (apt-get install "
		    "redis-server): this test needs a real server\n");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(srv_stop);
	srv_port = tl_free_port();
	return srv_start();
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

	tl_server(srv_setup, srv_stop);
	return cmocka_run_group_tests(tests, tl_setup, tl_teardown);
}
