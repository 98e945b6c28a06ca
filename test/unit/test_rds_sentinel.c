/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rds_sentinel - the Redis client in Sentinel mode (rds_new_conf with
 * redis.sentinels), against three real redis-server started here on free
 * loopback ports (A and C masters, B a replica of A) and a sentinel faked
 * in this process, which the test drives: what it names as master, whether
 * it answers at all, when it announces +switch-master, when it hangs up.
 * A real Sentinel's timing would make these cases slow and loose; the
 * end-to-end test (test/e2e/test_redis_sentinel.py) uses real sentinels.
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <hiredis/hiredis.h>

#include "conf.h"
#include "log.h"
#include "rds.h"
#include "testlib.h"
#include "util.h"

#define NSRV	3
enum { A, B, C };

struct rec {
	int		 calls, nulls, type;
	char		 str[128];
};

/* The fake sentinel: answers with port, or nil (0), or never (-1). */
struct fake {
	struct evconnlistener	*lis;
	int			 port;
	int			 answer;
	int			 asked;
	struct bufferevent	*subs[64];
	int			 nsubs;
	struct bufferevent	*all[64];
	int			 nall;
};

static pid_t	 srv_pid[NSRV] = { -1, -1, -1 };
static int	 srv_port[NSRV];
static struct fake fake;

/* ctl - a blocking command to server i; the reply must be freed */
static redisReply *
ctl(int i, const char *fmt, ...)
{
	struct timeval	 tv = { 2, 0 };
	redisContext	*c;
	redisReply	*r;
	va_list		 ap;

	c = redisConnectWithTimeout("127.0.0.1", srv_port[i], tv);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	assert_non_null(r);
	return r;
}

/* calls - how often server i ran cmd (INFO commandstats) */
static long
calls(int i, const char *cmd)
{
	redisReply	*r = ctl(i, "INFO commandstats");
	char		 want[64], *p;
	long		 n = 0;

	snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
	if ((p = strstr(r->str, want)) != NULL)
		n = strtol(p + strlen(want), NULL, 10);
	freeReplyObject(r);
	return n;
}

/* get - GET key on server i, or "" */
static void
get(int i, const char *key, char *out, size_t len)
{
	redisReply	*r = ctl(i, "GET %s", key);

	snprintf(out, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

/* fake_drop - forget a connection of the fake sentinel, and its reader */
static void
fake_drop(struct bufferevent *bev)
{
	void	*rd;
	int	 i;

	bufferevent_getcb(bev, NULL, NULL, NULL, &rd);
	redisReaderFree(rd);

	for (i = 0; i < fake.nsubs; i++)
		if (fake.subs[i] == bev)
			fake.subs[i] = fake.subs[--fake.nsubs];
	for (i = 0; i < fake.nall; i++)
		if (fake.all[i] == bev)
			fake.all[i] = fake.all[--fake.nall];
	bufferevent_free(bev);
}

/* fake_answer - one request, as a sentinel would answer it */
static void
fake_answer(struct bufferevent *bev, const redisReply *req)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	char		 port[16];

	if (req->type != REDIS_REPLY_ARRAY || req->elements < 1)
		return;
	if (strcasecmp(req->element[0]->str, "SUBSCRIBE") == 0) {
		if (fake.nsubs < 64)
			fake.subs[fake.nsubs++] = bev;
		evbuffer_add_printf(out, "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n"
		    "%s\r\n:1\r\n", req->element[1]->len,
		    req->element[1]->str);
		return;
	}
	if (strcasecmp(req->element[0]->str, "SENTINEL") != 0) {
		evbuffer_add_printf(out, "-ERR unknown command\r\n");
		return;
	}
	fake.asked++;
	if (fake.answer == -1)
		return;
	if (fake.answer == 0) {
		evbuffer_add_printf(out, "*-1\r\n");
		return;
	}
	snprintf(port, sizeof(port), "%d", fake.answer);
	evbuffer_add_printf(out, "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%s\r\n",
	    strlen(port), port);
}

/* fake_read - parse what came with hiredis' reader, answer each */
static void
fake_read(struct bufferevent *bev, void *arg)
{
	redisReader	*rd = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 len = evbuffer_get_length(in);
	void		*req;

	redisReaderFeed(rd, (const char *)evbuffer_pullup(in, -1), len);
	evbuffer_drain(in, len);
	while (redisReaderGetReply(rd, &req) == REDIS_OK && req != NULL) {
		fake_answer(bev, req);
		freeReplyObject(req);
	}
}

/* fake_event - the client hung up */
static void
fake_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fake_drop(bev);
}

/* fake_accept - a new client of the fake sentinel */
static void
fake_accept(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent	*bev;
	redisReader		*rd = redisReaderCreate();

	bev = bufferevent_socket_new(tl_base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, fake_read, NULL, fake_event, rd);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (fake.nall < 64)
		fake.all[fake.nall++] = bev;
}

/* fake_start - listen on a free loopback port, naming master port */
static void
fake_start(int master)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);

	memset(&fake, 0, sizeof(fake));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fake.lis = evconnlistener_new_bind(tl_base, fake_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(fake.lis);
	getsockname(evconnlistener_get_fd(fake.lis), (struct sockaddr *)&sin,
	    &len);
	fake.port = ntohs(sin.sin_port);
	fake.answer = master;
}

/* fake_hangup - close every connection, as a sentinel that restarts */
static void
fake_hangup(void)
{
	while (fake.nall > 0)
		fake_drop(fake.all[0]);
}

/* fake_stop - hang up and stop listening */
static void
fake_stop(void)
{
	fake_hangup();
	evconnlistener_free(fake.lis);
	fake.lis = NULL;
}

/* fake_switch - announce +switch-master from port from to port to */
static void
fake_switch(const char *name, int from, int to)
{
	char	msg[128];
	int	i;

	snprintf(msg, sizeof(msg), "%s 127.0.0.1 %d 127.0.0.1 %d", name,
	    from, to);
	for (i = 0; i < fake.nsubs; i++)
		evbuffer_add_printf(bufferevent_get_output(fake.subs[i]),
		    "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n"
		    "%s\r\n", strlen(msg), msg);
}

/* on_rec - record a reply */
static void
on_rec(struct rds *c, const redisReply *r, void *arg)
{
	struct rec	*rec = arg;

	rec->calls++;
	if (r == NULL) {
		rec->nulls++;
		return;
	}
	rec->type = r->type;
	if (r->str != NULL)
		snprintf(rec->str, sizeof(rec->str), "%s", r->str);
}

/* on_state - note a state change in the watch */
static void
on_state(struct rds *r, enum rds_state s, void *arg)
{
	tl_watch_note(arg, s, s == RDS_UP ? TL_UP : s == RDS_DOWN ?
	    TL_DOWN : TL_ATTEMPT);
}

/* client - a sentinel-mode client of master "m" through these ports */
static struct rds *
client(struct tl_watch *w, int n, const int *ports)
{
	struct conf_redis	 cr;
	struct rds		*c;
	int			 i;

	memset(&cr, 0, sizeof(cr));
	cr.master_name = "m";
	for (i = 0; i < n; i++) {
		snprintf(cr.sentinels.a[i].host, sizeof(cr.sentinels.a[i].host),
		    "127.0.0.1");
		cr.sentinels.a[i].port = ports[i];
	}
	cr.sentinels.n = n;
	tl_watch_init(w, RDS_CONNECTING);
	c = rds_new_conf(tl_base, &cr, on_state, w);
	rds_set_backoff(c, 20, 160);
	rds_set_connect_timeout(c, 3000);
	return c;
}

/* set_on - SET key val through c, waiting for the reply */
static void
set_on(struct rds *c, const char *key, const char *val, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(rds_command(c, on_rec, r, "SET %s %s", key, val), 0);
	TL_WAIT_FOR(r->calls == 1, 5000);
	assert_int_equal(r->calls, 1);
}

/* test_resolve - the sentinel names A: commands land on A */
static void
test_resolve(void **state)
{
	struct tl_watch	 w;
	struct rec	 r;
	struct rds	*c;
	char		 v[32];

	fake_start(srv_port[A]);
	c = client(&w, 1, &fake.port);
	set_on(c, "k1", "v1", &r);	/* parked until ROLE said master */
	assert_int_equal(r.nulls, 0);
	assert_string_equal(r.str, "OK");
	assert_int_equal(w.state, RDS_UP);
	get(A, "k1", v, sizeof(v));
	assert_string_equal(v, "v1");
	assert_int_equal(fake.asked, 1);
	assert_int_equal(fake.nsubs, 1);	/* and it listens */
	rds_free(c);
	tl_spin(50);
	assert_int_equal(fake.nall, 0);		/* hung up on free */
	fake_stop();
}

/*
 * test_skip_down - a refused and a mute sentinel are passed over, and
 * moved to the back: the next attempt asks the one that answered first.
 */
static void
test_skip_down(void **state)
{
	struct tl_watch	 w;
	struct rec	 r;
	struct rds	*c;
	int		 ports[3], fd;
	uint64_t	 t0 = now_mono_us();

	fake_start(srv_port[A]);
	ports[0] = tl_free_port();
	fd = tl_listen(&ports[1]);
	ports[2] = fake.port;
	c = client(&w, 3, ports);
	set_on(c, "k2", "v2", &r);
	assert_string_equal(r.str, "OK");
	/* the mute one costs its timeout (1 s), no more */
	assert_true(now_mono_us() - t0 < 2500000);
	assert_int_equal(w.ups, 1);
	assert_int_equal(w.downs, 0);
	fake.answer = srv_port[C];
	t0 = now_mono_us();
	fake_switch("m", srv_port[A], srv_port[C]);
	TL_WAIT_FOR(w.ups == 2, 3000);
	assert_int_equal(w.ups, 2);
	assert_true(now_mono_us() - t0 < 700000);	/* the mute one: 1 s */
	rds_free(c);
	close(fd);
	fake_stop();
}

/* test_none_answers - no sentinel knows the master: down, retrying */
static void
test_none_answers(void **state)
{
	struct tl_watch	 w;
	struct rec	 r = { 0 };
	struct rds	*c;

	fake_start(0);
	c = client(&w, 1, &fake.port);
	TL_WAIT_FOR(w.downs >= 2, 3000);
	assert_true(w.downs >= 2);
	assert_int_equal(w.ups, 0);
	assert_true(fake.asked >= 2);
	rds_command(c, on_rec, &r, "SET never x");
	TL_WAIT_FOR(r.calls == 1, 3000);
	assert_int_equal(r.nulls, 1);
	rds_free(c);
	fake_stop();
}

/*
 * test_replica_refused - the sentinel names B, a replica: ROLE says so,
 * the client stays down and writes nothing there; once the sentinel names
 * A, it comes up on A.
 */
static void
test_replica_refused(void **state)
{
	struct tl_watch	 w;
	struct rec	 r = { 0 };
	struct rds	*c;
	long		 sets = calls(B, "set");
	char		 v[32];

	fake_start(srv_port[B]);
	c = client(&w, 1, &fake.port);
	rds_command(c, on_rec, &r, "SET k3 v3");
	TL_WAIT_FOR(w.downs >= 2, 3000);
	assert_int_equal(w.ups, 0);
	TL_WAIT_FOR(r.calls == 1, 3000);
	assert_int_equal(r.nulls, 1);		/* never sent */
	assert_int_equal(calls(B, "set"), sets);
	assert_true(calls(B, "role") > 0);	/* it was asked, and refused */
	fake.answer = srv_port[A];
	TL_WAIT_FOR(w.ups == 1, 3000);
	assert_int_equal(w.ups, 1);
	set_on(c, "k3", "v3", &r);
	assert_string_equal(r.str, "OK");
	get(A, "k3", v, sizeof(v));
	assert_string_equal(v, "v3");
	rds_free(c);
	fake_stop();
}

/*
 * test_switch - +switch-master to C drops the connection to A at once,
 * although A is alive (as a paused or partitioned master would be), and
 * commands and a stream follower go on at C.
 */
static void
test_switch(void **state)
{
	struct tl_watch	 w;
	struct rec	 r;
	struct rds	*c;
	char		 v[32];
	uint64_t	 t0;

	fake_start(srv_port[A]);
	c = client(&w, 1, &fake.port);
	set_on(c, "k4", "on-a", &r);
	fake.answer = srv_port[C];
	t0 = now_mono_us();
	fake_switch("other", srv_port[A], srv_port[B]);	/* not ours */
	fake_switch("m", srv_port[A], srv_port[C]);
	TL_WAIT_FOR(w.ups == 2, 3000);
	assert_int_equal(w.ups, 2);
	assert_true(now_mono_us() - t0 < 1000000);
	set_on(c, "k4", "on-c", &r);
	assert_string_equal(r.str, "OK");
	get(C, "k4", v, sizeof(v));
	assert_string_equal(v, "on-c");
	get(A, "k4", v, sizeof(v));
	assert_string_equal(v, "on-a");
	rds_free(c);
	fake_stop();
}

/*
 * test_watch_lost - the sentinel hangs up without a word while the master
 * changed: the client asks again, and moves.
 */
static void
test_watch_lost(void **state)
{
	struct tl_watch	 w;
	struct rec	 r;
	struct rds	*c;
	char		 v[32];

	fake_start(srv_port[A]);
	c = client(&w, 1, &fake.port);
	set_on(c, "k5", "on-a", &r);
	fake.answer = srv_port[C];
	fake_hangup();
	TL_WAIT_FOR(w.ups == 2, 4000);
	assert_int_equal(w.ups, 2);
	assert_true(fake.asked >= 2);
	set_on(c, "k5", "on-c", &r);
	get(C, "k5", v, sizeof(v));
	assert_string_equal(v, "on-c");
	rds_free(c);
	fake_stop();
}

/*
 * test_readonly - the master is demoted under the client (A becomes a
 * replica of C): the write that meets READONLY gets the error, and the
 * client asks again and moves to C.
 */
static void
test_readonly(void **state)
{
	struct tl_watch	 w;
	struct rec	 r;
	struct rds	*c;
	char		 v[32];

	fake_start(srv_port[A]);
	c = client(&w, 1, &fake.port);
	set_on(c, "k6", "on-a", &r);
	freeReplyObject(ctl(A, "REPLICAOF 127.0.0.1 %d", srv_port[C]));
	fake.answer = srv_port[C];
	set_on(c, "k6", "lost", &r);
	assert_int_equal(r.type, REDIS_REPLY_ERROR);
	assert_memory_equal(r.str, "READONLY", 8);
	TL_WAIT_FOR(w.ups == 2, 3000);
	assert_int_equal(w.ups, 2);
	set_on(c, "k6", "on-c", &r);
	assert_string_equal(r.str, "OK");
	get(C, "k6", v, sizeof(v));
	assert_string_equal(v, "on-c");
	freeReplyObject(ctl(A, "REPLICAOF NO ONE"));
	rds_free(c);
	fake_stop();
}

/* test_sync - rds_connect_sync: to the master, never to a replica */
static void
test_sync(void **state)
{
	struct conf_redis	 cr;
	struct timeval		 tv = { 1, 0 };
	redisContext		*rc;
	redisReply		*rep;
	int			 a, b;

	fake_start(srv_port[A]);
	memset(&cr, 0, sizeof(cr));
	cr.master_name = "m";
	snprintf(cr.sentinels.a[0].host, sizeof(cr.sentinels.a[0].host),
	    "127.0.0.1");
	cr.sentinels.a[0].port = tl_free_port();
	snprintf(cr.sentinels.a[1].host, sizeof(cr.sentinels.a[1].host),
	    "127.0.0.1");
	cr.sentinels.a[1].port = fake.port;
	cr.sentinels.n = 2;
	/* the fake answers from this loop: serve it from a child */
	a = fork();
	assert_true(a >= 0);
	if (a == 0) {
		rc = rds_connect_sync(&cr, tv);
		if (rc == NULL)
			_exit(1);
		rep = redisCommand(rc, "SET sync yes");
		b = rep != NULL && rep->type == REDIS_REPLY_STATUS ? 0 : 2;
		freeReplyObject(rep);
		redisFree(rc);		/* valgrind checks the child too */
		_exit(b);
	}
	TL_WAIT_FOR(waitpid(a, &b, WNOHANG) == a, 5000);
	assert_true(WIFEXITED(b) && WEXITSTATUS(b) == 0);
	fake.answer = srv_port[B];
	a = fork();
	assert_true(a >= 0);
	if (a == 0) {
		rc = rds_connect_sync(&cr, tv);
		b = rc == NULL ? 0 : 1;
		if (rc != NULL)
			redisFree(rc);
		_exit(b);
	}
	TL_WAIT_FOR(waitpid(a, &b, WNOHANG) == a, 5000);
	assert_true(WIFEXITED(b) && WEXITSTATUS(b) == 0);
	fake_stop();
}

/* srv_ready - whether server *arg answers PING */
static int
srv_ready(void *arg)
{
	struct timeval	 tv = { 0, 200000 };
	redisContext	*c;
	redisReply	*r = NULL;

	c = redisConnectWithTimeout("127.0.0.1", *(int *)arg, tv);
	if (c != NULL && c->err == 0)
		r = redisCommand(c, "PING");
	if (c != NULL)
		redisFree(c);
	if (r != NULL)
		freeReplyObject(r);
	return r != NULL;
}

/* srv_stop - kill every server */
static void
srv_stop(void)
{
	int	i;

	for (i = 0; i < NSRV; i++)
		tl_kill(&srv_pid[i], SIGKILL);
}

/* srv_start - A and C masters, B a replica of A */
static int
srv_start(void)
{
	char	 port[16], master[16];
	char	*argv[] = { "redis-server", "--port", port, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no",
		    /* a replica's sync would leave dump.rdb in our directory */
		    "--repl-diskless-load", "on-empty-db",
		    NULL, NULL, NULL, NULL };
	int	 i;

	signal(SIGPIPE, SIG_IGN);
	atexit(srv_stop);
	for (i = 0; i < NSRV; i++) {
		srv_port[i] = tl_free_port();
		snprintf(port, sizeof(port), "%d", srv_port[i]);
		if (i == B) {
			snprintf(master, sizeof(master), "%d", srv_port[A]);
			argv[11] = "--replicaof";
			argv[12] = "127.0.0.1";
			argv[13] = master;
		} else
			argv[11] = NULL;
		if ((srv_pid[i] = tl_spawn(argv, "/dev/null", (uid_t)-1,
		    0)) == -1 || tl_wait_ready(&srv_pid[i], 10000, srv_ready,
		    &srv_port[i]) == -1) {
			print_error("redis-server did not start\n");
			return -1;
		}
	}
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_skip_down),
		cmocka_unit_test(test_none_answers),
		cmocka_unit_test(test_replica_refused),
		cmocka_unit_test(test_switch),
		cmocka_unit_test(test_watch_lost),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_sync),
	};

	tl_server(srv_start, srv_stop);
	return cmocka_run_group_tests(tests, tl_setup, tl_teardown);
}
