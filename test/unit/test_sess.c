/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sess - the session protocol: pure framing and decoding first, then
 * a real server on a libevent loop, driven through loopback sockets the
 * way a client would, then the client against that server.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

#include "log.h"
#include "sess.h"
#include "util.h"

#define MAX_LINE	1024
#define WAIT_MS		2000	/* generous: valgrind is slow */
#define FLOOD_BYTES	4096

/* WAIT_UNTIL - pump the server until cond holds, or fail */
#define WAIT_UNTIL(fx, cond) do {					\
	uint64_t _end = now_mono_us() + WAIT_MS * 1000;			\
	while (!(cond) && now_mono_us() < _end)				\
		pump((fx), -1);						\
	assert_true(cond);						\
} while (0)

/*
 * Pure functions.
 */

/* frame - sess_frame_next over a C string */
static enum sess_frame
frame(const char *s, size_t max, size_t *ll, size_t *used)
{
	return sess_frame_next(s, strlen(s), max, ll, used);
}

/* test_frame_partial - no line until its newline has come */
static void
test_frame_partial(void **state)
{
	size_t	ll, used;

	assert_int_equal(frame("", 16, &ll, &used), SESS_FRAME_MORE);
	assert_int_equal(frame("{\"request\":", 16, &ll, &used),
	    SESS_FRAME_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(frame("{\"a\":1}\n{\"b\"", 16, &ll, &used),
	    SESS_FRAME_LINE);
	assert_int_equal(ll, 7);
	assert_int_equal(used, 8);
}

/* test_frame_several - several lines in one buffer, one at a time */
static void
test_frame_several(void **state)
{
	const char	*buf = "a\nbb\r\nccc\nd";
	size_t		 len = strlen(buf), off = 0, ll, used;
	const size_t	 want[] = { 1, 2, 3 };
	int		 i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(sess_frame_next(buf + off, len - off, 16,
		    &ll, &used), SESS_FRAME_LINE);
		assert_int_equal(ll, want[i]);
		assert_int_equal(buf[off], "abc"[i]);
		off += used;
	}
	assert_int_equal(off, len - 1);
	assert_int_equal(sess_frame_next(buf + off, len - off, 16, &ll,
	    &used), SESS_FRAME_MORE);
}

/* test_frame_limits - exactly max_line passes, max_line + 1 does not */
static void
test_frame_limits(void **state)
{
	size_t	ll, used;

	/* max_line counts the line without its "\r\n" */
	assert_int_equal(frame("12345678\n", 8, &ll, &used), SESS_FRAME_LINE);
	assert_int_equal(ll, 8);
	assert_int_equal(frame("12345678\r\n", 8, &ll, &used),
	    SESS_FRAME_LINE);
	assert_int_equal(ll, 8);
	assert_int_equal(used, 10);
	assert_int_equal(frame("123456789\n", 8, &ll, &used),
	    SESS_FRAME_TOO_LONG);
	assert_int_equal(frame("123456789\r\n", 8, &ll, &used),
	    SESS_FRAME_TOO_LONG);
	/* without a newline: known as soon as it cannot fit */
	assert_int_equal(frame("12345678", 8, &ll, &used), SESS_FRAME_MORE);
	assert_int_equal(frame("12345678\r", 8, &ll, &used), SESS_FRAME_MORE);
	assert_int_equal(frame("123456789", 8, &ll, &used),
	    SESS_FRAME_TOO_LONG);
	assert_int_equal(frame("12345678\rx", 8, &ll, &used),
	    SESS_FRAME_TOO_LONG);
	/* a long line after a short one is the next call's business */
	assert_int_equal(frame("1\n123456789012", 8, &ll, &used),
	    SESS_FRAME_LINE);
	assert_int_equal(ll, 1);
}

/* test_frame_crlf_empty - CRLF, lone CR, empty and blank lines */
static void
test_frame_crlf_empty(void **state)
{
	size_t	ll, used;

	assert_int_equal(frame("abc\r\n", 16, &ll, &used), SESS_FRAME_LINE);
	assert_int_equal(ll, 3);
	assert_int_equal(used, 5);
	/* only the "\r" right before "\n" goes */
	assert_int_equal(frame("a\rb\n", 16, &ll, &used), SESS_FRAME_LINE);
	assert_int_equal(ll, 3);
	assert_int_equal(frame("\n", 16, &ll, &used), SESS_FRAME_LINE);
	assert_int_equal(ll, 0);
	assert_int_equal(used, 1);
	assert_int_equal(frame("\r\n", 16, &ll, &used), SESS_FRAME_LINE);
	assert_int_equal(ll, 0);
	assert_int_equal(used, 2);
	assert_true(sess_line_blank("", 0));
	assert_true(sess_line_blank(" \t ", 3));
	assert_false(sess_line_blank(" {} ", 4));
}

/* decode_err - decode s, expect failure with code, return the ref seen */
static json_int_t
decode_err(const char *s, const char *want)
{
	struct sess_request	 rq;
	const char		*code = NULL;
	char			 msg[256] = "";

	assert_int_equal(sess_decode(s, strlen(s), &rq, &code, msg,
	    sizeof(msg)), -1);
	assert_null(rq.obj);
	assert_non_null(code);
	assert_string_equal(code, want);
	assert_true(strlen(msg) > 0);
	return rq.ref;
}

/* test_decode_ok - a good request, with and without ref */
static void
test_decode_ok(void **state)
{
	const char		*s;
	struct sess_request	 rq;
	const char		*code;
	char			 msg[128];

	s = "{\"request\":\"RequestX\",\"ref\":7,\"a\":1}";
	assert_int_equal(sess_decode(s, strlen(s), &rq, &code, msg,
	    sizeof(msg)), 0);
	assert_string_equal(rq.name, "RequestX");
	assert_int_equal(rq.ref, 7);
	assert_int_equal(json_integer_value(json_object_get(rq.obj, "a")), 1);
	sess_request_clear(&rq);
	assert_null(rq.obj);
	/* no ref, or a null one: answers carry none */
	s = "{\"request\":\"RequestX\",\"ref\":null}";
	assert_int_equal(sess_decode(s, strlen(s), &rq, &code, msg,
	    sizeof(msg)), 0);
	assert_int_equal(rq.ref, SESS_NOREF);
	sess_request_clear(&rq);
	s = "{\"request\":\"RequestX\",\"ref\":9007199254740991}";
	assert_int_equal(sess_decode(s, strlen(s), &rq, &code, msg,
	    sizeof(msg)), 0);
	assert_int_equal(rq.ref, SESS_REF_MAX);
	sess_request_clear(&rq);
}

/* test_decode_missing_request - no usable "request": the ref is still echoed */
static void
test_decode_missing_request(void **state)
{
	assert_int_equal(decode_err("{\"ref\":3}", SESS_ERR_BAD_REQUEST), 3);
	assert_int_equal(decode_err("{\"request\":5,\"ref\":4}",
	    SESS_ERR_BAD_REQUEST), 4);
	assert_int_equal(decode_err("{\"request\":\"\"}", SESS_ERR_BAD_REQUEST),
	    SESS_NOREF);
	assert_int_equal(decode_err("{\"request\":null,\"ref\":0}",
	    SESS_ERR_BAD_REQUEST), 0);
}

/* test_decode_not_object - valid JSON that is not an object */
static void
test_decode_not_object(void **state)
{
	decode_err("[1,2]", SESS_ERR_NOT_OBJECT);
	decode_err("\"RequestPing\"", SESS_ERR_NOT_OBJECT);
	decode_err("5", SESS_ERR_NOT_OBJECT);
	decode_err("null", SESS_ERR_NOT_OBJECT);
}

/* test_decode_bad_json - syntax, UTF-8, NUL, duplicate keys */
static void
test_decode_bad_json(void **state)
{
	decode_err("{\"request\":", SESS_ERR_BAD_JSON);
	decode_err("hello", SESS_ERR_BAD_JSON);
	decode_err("{} {}", SESS_ERR_BAD_JSON);
	decode_err("{\"request\":\"R\xff\"}", SESS_ERR_BAD_JSON);
	decode_err("{\"request\":\"R\\u0000\"}", SESS_ERR_BAD_JSON);
	decode_err("{\"request\":\"A\",\"request\":\"B\"}", SESS_ERR_BAD_JSON);
	/* a NUL byte inside the line */
	{
		struct sess_request	 rq;
		const char		*code;
		char			 msg[64];

		assert_int_equal(sess_decode("{}\0{}", 5, &rq, &code, msg,
		    sizeof(msg)), -1);
		assert_string_equal(code, SESS_ERR_BAD_JSON);
	}
}

/* test_decode_bad_ref - ref of the wrong type or range */
static void
test_decode_bad_ref(void **state)
{
	decode_err("{\"request\":\"R\",\"ref\":\"1\"}", SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":1.5}", SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":1.0}", SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":-1}", SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":true}", SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":[1]}", SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":9007199254740992}",
	    SESS_ERR_BAD_REF);
	/* the ref is checked before the name, and is not echoed when bad */
	assert_int_equal(decode_err("{\"ref\":\"x\"}", SESS_ERR_BAD_REF),
	    SESS_NOREF);
}

/* test_decode_huge_numbers - numbers jansson cannot hold, or refs too big */
static void
test_decode_huge_numbers(void **state)
{
	decode_err("{\"request\":\"R\",\"ref\":99999999999999999999999}",
	    SESS_ERR_BAD_JSON);
	decode_err("{\"request\":\"R\",\"ref\":1e400}", SESS_ERR_BAD_JSON);
	decode_err("{\"request\":\"R\",\"x\":-1e999}", SESS_ERR_BAD_JSON);
	decode_err("{\"request\":\"R\",\"ref\":9223372036854775807}",
	    SESS_ERR_BAD_REF);
	decode_err("{\"request\":\"R\",\"ref\":-9223372036854775808}",
	    SESS_ERR_BAD_REF);
}

/* test_encode - one line, newline last, round trip */
static void
test_encode(void **state)
{
	json_t	*e, *back;
	char	*line;
	size_t	 len;

	e = json_pack("{s:s, s:s, s:I}", "event", "EventX", "text",
	    "two\nlines \xc3\xa9", "ref", (json_int_t)12);
	line = sess_encode(e, &len);
	assert_non_null(line);
	assert_int_equal(len, strlen(line));
	assert_int_equal(line[len - 1], '\n');
	assert_ptr_equal(memchr(line, '\n', len), line + len - 1);
	assert_int_equal(strncmp(line, "{\"event\":\"EventX\"", 17), 0);
	back = json_loads(line, 0, NULL);
	assert_true(json_equal(back, e));
	json_decref(back);
	free(line);
	json_decref(e);
	e = json_pack("[i]", 1);
	assert_null(sess_encode(e, &len));
	json_decref(e);
}

/* test_error_new - EventError shape, bad UTF-8 in a message */
static void
test_error_new(void **state)
{
	json_t	*e;

	e = sess_error_new(SESS_NOREF, "BadJson", "oops");
	assert_null(json_object_get(e, "ref"));
	assert_string_equal(json_string_value(json_object_get(e, "event")),
	    "EventError");
	json_decref(e);
	/* a message cut inside a UTF-8 sequence still makes a string */
	e = sess_error_new(5, "X", "caf\xc3");
	assert_int_equal(json_integer_value(json_object_get(e, "ref")), 5);
	assert_string_equal(json_string_value(json_object_get(e, "message")),
	    "caf?");
	json_decref(e);
}

/*
 * The server on a real event loop.
 */

struct cl {
	int	fd;
	size_t	len;
	char	buf[256 * 1024];
	int	lines;		/* counted by cl_drain */
};

struct fx {
	struct event_base	*base;
	struct sess_server	*srv;
	struct sess_limits	 lim;
	int			 port;
	int			 closed;	/* closed hook calls */
	int			 live;		/* sessions with data */
	struct sess		*pending;	/* open left pending */
	struct sess		*open[8];	/* opened, for the flood */
	struct event		*flood;
	struct cl		*cls[8];
};

/* fx_remember - keep an opened session for the flood */
static void
fx_remember(struct fx *fx, struct sess *s, int add)
{
	size_t	i;

	for (i = 0; i < NELEM(fx->open); i++)
		if (add ? fx->open[i] == NULL : fx->open[i] == s) {
			fx->open[i] = add ? s : NULL;
			return;
		}
}

/* h_open - "good" opens, "later" is left pending, anything else refused */
static enum sess_open
h_open(struct sess *s, json_t *req, json_t *extra, void *arg,
    const char **why)
{
	struct fx	*fx = arg;
	const char	*tok = json_string_value(json_object_get(req, "token"));

	if (sess_data(s) != NULL) {	/* left by an open not accepted */
		free(sess_data(s));
		sess_set_data(s, NULL);
		fx->live--;
	}
	if (strcmp(tok, "malformed") == 0) {
		*why = "bad field";
		return SESS_OPEN_BAD_REQUEST;
	}
	if (strcmp(tok, "later") == 0) {
		fx->pending = s;
		sess_set_data(s, xstrdup("pending"));
		fx->live++;
		return SESS_OPEN_PENDING;
	}
	if (strcmp(tok, "good") != 0) {
		*why = "bad token";
		return SESS_OPEN_REFUSE;
	}
	json_object_set_new(extra, "tenant", json_string("t1"));
	json_object_set_new(extra, "event", json_string("Overridden"));
	sess_set_data(s, xstrdup(sess_client_name(s)));
	fx->live++;
	fx_remember(fx, s, 1);
	return SESS_OPEN_ACCEPT;
}

/* h_request - RequestEcho, RequestBye, or UnknownRequest */
static void
h_request(struct sess *s, const char *name, json_int_t ref, json_t *req,
    void *arg)
{
	json_t	*e;

	if (strcmp(name, "RequestEcho") == 0) {
		e = json_pack("{s:s, s:O?}", "event", "EventEcho", "data",
		    json_object_get(req, "data"));
		sess_reply(s, ref, e);
		json_decref(e);
	} else if (strcmp(name, "RequestBye") == 0)
		sess_close(s);
	else
		sess_send_error(s, ref, SESS_ERR_UNKNOWN, "unknown request %s",
		    name);
}

/* h_closed - free what open attached */
static void
h_closed(struct sess *s, void *arg)
{
	struct fx	*fx = arg;

	fx->closed++;
	fx->live--;
	fx_remember(fx, s, 0);
	if (fx->pending == s)
		fx->pending = NULL;
	free(sess_data(s));
}

static const struct sess_handlers handlers = { h_open, h_request, h_closed };

/* listen_loopback - a listening socket on 127.0.0.1, port chosen */
static int
listen_loopback(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* fx_start - a server with the fixture's limits */
static void
fx_start(struct fx *fx)
{
	int	fd = listen_loopback(&fx->port);

	fx->srv = sess_server_new(fx->base, fd, &fx->lim, &handlers, fx);
	assert_non_null(fx->srv);
}

/* setup - a loop and default limits; the server starts in each test */
static int
setup(void **state)
{
	struct fx	*fx = xcalloc(1, sizeof(*fx));

	fx->base = event_base_new();
	fx->lim.max_line = MAX_LINE;
	fx->lim.max_output = 64 * 1024;
	fx->lim.max_clients = 8;
	fx->lim.open_timeout_ms = 5000;
	*state = fx;
	return 0;
}

/* teardown - free all; no worker state may be left */
static int
teardown(void **state)
{
	struct fx	*fx = *state;
	size_t		 i;

	sess_server_free(fx->srv);
	/* every accepted or pending open was told it closed */
	assert_int_equal(fx->live, 0);
	if (fx->flood != NULL)
		event_free(fx->flood);
	for (i = 0; i < NELEM(fx->cls); i++)
		if (fx->cls[i] != NULL) {
			if (fx->cls[i]->fd != -1)
				close(fx->cls[i]->fd);
			free(fx->cls[i]);
		}
	event_base_free(fx->base);
	free(fx);
	return 0;
}

/* pump - run the server loop once, then wait up to 1 ms on fd */
static void
pump(struct fx *fx, int fd)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };

	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	if (fd != -1)
		poll(&pfd, 1, 1);
	else
		usleep(1000);
}

/* pump_ms - run the server loop for a while */
static void
pump_ms(struct fx *fx, unsigned ms)
{
	uint64_t	end = now_mono_us() + (uint64_t)ms * 1000;

	while (now_mono_us() < end)
		pump(fx, -1);
}

/* cl_add - wrap a connected fd */
static struct cl *
cl_add(struct fx *fx, int fd)
{
	struct cl	*c = xcalloc(1, sizeof(*c));
	size_t		 i;

	c->fd = fd;
	for (i = 0; i < NELEM(fx->cls) && fx->cls[i] != NULL; i++)
		;
	assert_true(i < NELEM(fx->cls));
	fx->cls[i] = c;
	return c;
}

/* cl_connect - a TCP client of the fixture's server */
static struct cl *
cl_connect(struct fx *fx)
{
	struct sockaddr_in	sin;
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(fx->port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return cl_add(fx, fd);
}

/* cl_send - write all of s */
static void
cl_send(struct cl *c, const char *s)
{
	size_t	len = strlen(s), off = 0;
	ssize_t	n;

	while (off < len) {
		n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
		assert_true(n > 0);
		off += (size_t)n;
	}
}

/* cl_fill - read what is there; 0 on EOF or reset */
static int
cl_fill(struct cl *c)
{
	ssize_t	n;

	if (c->len == sizeof(c->buf))
		return 1;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len,
	    MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno == ECONNRESET))
		return 0;
	if (n > 0)
		c->len += (size_t)n;
	return 1;
}

/* cl_line - the next line as JSON, pumping the server; fails on timeout */
static json_t *
cl_line(struct fx *fx, struct cl *c)
{
	uint64_t	 end = now_mono_us() + WAIT_MS * 1000;
	char		*nl;
	json_t		*j;
	json_error_t	 err;
	size_t		 n;

	while ((nl = memchr(c->buf, '\n', c->len)) == NULL) {
		if (now_mono_us() > end)
			fail_msg("no line from the server");
		pump(fx, c->fd);
		if (!cl_fill(c) && memchr(c->buf, '\n', c->len) == NULL)
			fail_msg("EOF instead of a line");
	}
	n = (size_t)(nl - c->buf) + 1;
	j = json_loadb(c->buf, n, 0, &err);
	if (j == NULL)
		fail_msg("server sent bad JSON: %s", err.text);
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return j;
}

/* cl_expect - the next line is event name with ref (or none if < 0) */
static json_t *
cl_expect(struct fx *fx, struct cl *c, const char *name, json_int_t ref)
{
	json_t	*j = cl_line(fx, c), *r;

	assert_string_equal(json_string_value(json_object_get(j, "event")),
	    name);
	r = json_object_get(j, "ref");
	if (ref < 0)
		assert_null(r);
	else
		assert_int_equal(json_integer_value(r), ref);
	return j;
}

/* cl_error - the next line is EventError code with ref */
static void
cl_error(struct fx *fx, struct cl *c, const char *code, json_int_t ref)
{
	json_t	*j = cl_expect(fx, c, "EventError", ref);

	assert_string_equal(json_string_value(json_object_get(j, "code")),
	    code);
	assert_non_null(json_string_value(json_object_get(j, "message")));
	json_decref(j);
}

/* cl_ok - the next line is name with ref; discard it */
static void
cl_ok(struct fx *fx, struct cl *c, const char *name, json_int_t ref)
{
	json_decref(cl_expect(fx, c, name, ref));
}

/* cl_eof - wait for the server to close, then close too; 1 if it did */
static int
cl_eof(struct fx *fx, struct cl *c)
{
	uint64_t	end = now_mono_us() + WAIT_MS * 1000;

	while (now_mono_us() < end) {
		pump(fx, c->fd);
		c->len = 0;
		if (!cl_fill(c)) {
			close(c->fd);
			c->fd = -1;
			return 1;
		}
	}
	return 0;
}

/* cl_quiet - nothing arrives for ms */
static int
cl_quiet(struct fx *fx, struct cl *c, unsigned ms)
{
	uint64_t	end = now_mono_us() + (uint64_t)ms * 1000;

	while (now_mono_us() < end) {
		pump(fx, c->fd);
		if (!cl_fill(c) || c->len > 0)
			return 0;
	}
	return 1;
}

/* cl_open - open with a good token as ref 1 */
static void
cl_open(struct fx *fx, struct cl *c)
{
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":1,\"token\":\"good\","
	    "\"client\":\"test\"}\n");
	cl_ok(fx, c, "EventOpened", 1);
}

/* test_open_required - nothing before RequestOpen, then open, ping */
static void
test_open_required(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;
	json_t		*j;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestPing\",\"ref\":1}\n");
	cl_error(fx, c, SESS_ERR_NOT_OPENED, 1);
	cl_send(c, "{\"request\":\"RequestEcho\",\"ref\":2}\n");
	cl_error(fx, c, SESS_ERR_NOT_OPENED, 2);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":3,\"token\":\"good\","
	    "\"client\":\"pulse\"}\n");
	j = cl_expect(fx, c, "EventOpened", 3);
	assert_string_equal(json_string_value(json_object_get(j, "tenant")),
	    "t1");
	assert_int_equal(json_integer_value(json_object_get(j, "protocol")),
	    SESS_PROTOCOL_VERSION);
	json_decref(j);
	cl_send(c, "{\"request\":\"RequestPing\",\"ref\":4}\n");
	cl_ok(fx, c, "EventPong", 4);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":5,\"token\":\"good\","
	    "\"client\":\"pulse\"}\n");
	cl_error(fx, c, SESS_ERR_ALREADY_OPENED, 5);
	assert_int_equal(sess_server_stats(fx->srv)->opened, 1);
	assert_int_equal(sess_server_stats(fx->srv)->protocol_errors, 2);
	assert_int_equal(sess_server_stats(fx->srv)->current, 1);
}

/* test_open_refused - Unauthorized, then close, no closed hook */
static void
test_open_refused(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;
	json_t		*j;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":8,\"token\":\"bad\","
	    "\"client\":\"pulse\"}\n");
	j = cl_expect(fx, c, "EventError", 8);
	assert_string_equal(json_string_value(json_object_get(j, "code")),
	    SESS_ERR_UNAUTHORIZED);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "bad token");
	json_decref(j);
	assert_true(cl_eof(fx, c));
	WAIT_UNTIL(fx, sess_server_stats(fx->srv)->current == 0);
	assert_int_equal(sess_server_stats(fx->srv)->refused, 1);
	assert_int_equal(fx->closed, 0);	/* never opened */
}

/* test_open_bad_fields - RequestOpen without token or client is retried */
static void
test_open_bad_fields(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":1,"
	    "\"client\":\"x\"}\n");
	cl_error(fx, c, SESS_ERR_BAD_REQUEST, 1);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":2,\"token\":\"good\","
	    "\"client\":7}\n");
	cl_error(fx, c, SESS_ERR_BAD_REQUEST, 2);
	cl_open(fx, c);
}

/* test_errors_keep_link - input errors echo the ref and keep the link */
static void
test_errors_keep_link(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;
	json_t		*j;

	fx_start(fx);
	c = cl_connect(fx);
	cl_open(fx, c);
	cl_send(c, "{\"ref\":42}\n");
	cl_error(fx, c, SESS_ERR_BAD_REQUEST, 42);
	cl_send(c, "not json\n");
	cl_error(fx, c, SESS_ERR_BAD_JSON, -1);
	cl_send(c, "[1]\r\n");
	cl_error(fx, c, SESS_ERR_NOT_OBJECT, -1);
	cl_send(c, "{\"request\":\"RequestPing\",\"ref\":\"7\"}\n");
	cl_error(fx, c, SESS_ERR_BAD_REF, -1);
	cl_send(c, "{\"request\":\"RequestNope\",\"ref\":9}\n");
	cl_error(fx, c, SESS_ERR_UNKNOWN, 9);
	/* empty and blank lines are ignored: the next answer is the pong */
	cl_send(c, "\n\r\n \t \n{\"request\":\"RequestPing\",\"ref\":10}\n");
	cl_ok(fx, c, "EventPong", 10);
	/* a request without ref gets an answer without ref */
	cl_send(c, "{\"request\":\"RequestEcho\",\"data\":\"d\"}\n");
	j = cl_expect(fx, c, "EventEcho", -1);
	assert_string_equal(json_string_value(json_object_get(j, "data")),
	    "d");
	json_decref(j);
	assert_int_equal(sess_server_stats(fx->srv)->protocol_errors, 4);
}

/* test_partial_and_pipelined - a request in two pieces, three in one */
static void
test_partial_and_pipelined(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;

	fx_start(fx);
	c = cl_connect(fx);
	cl_open(fx, c);
	cl_send(c, "{\"request\":\"Req");
	assert_true(cl_quiet(fx, c, 20));
	cl_send(c, "uestPing\",\"ref\":5}\n{\"request\":\"RequestPing\","
	    "\"ref\":6}\n{\"request\":\"RequestPing\",\"ref\":7}\n");
	cl_ok(fx, c, "EventPong", 5);
	cl_ok(fx, c, "EventPong", 6);
	cl_ok(fx, c, "EventPong", 7);
}

/* padded_ping - a ping line of exactly len bytes before its newline */
static char *
padded_ping(size_t len)
{
	const char	*head = "{\"request\":\"RequestPing\",\"ref\":3,"
			    "\"p\":\"";
	char		*s = xmalloc(len + 2);
	size_t		 h = strlen(head);

	memcpy(s, head, h);
	memset(s + h, 'x', len - h - 2);
	memcpy(s + len - 2, "\"}\n", 4);
	return s;
}

/* test_line_too_long - exactly max_line served, one more closes */
static void
test_line_too_long(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;
	char		*s;

	fx_start(fx);
	c = cl_connect(fx);
	cl_open(fx, c);
	s = padded_ping(MAX_LINE);
	assert_int_equal(strlen(s), MAX_LINE + 1);
	cl_send(c, s);
	cl_ok(fx, c, "EventPong", 3);
	free(s);
	/* one more byte, and more data behind it: error, then close */
	s = padded_ping(MAX_LINE + 1);
	cl_send(c, s);
	cl_send(c, s);
	free(s);
	cl_error(fx, c, SESS_ERR_LINE_TOO_LONG, -1);
	assert_true(cl_eof(fx, c));
	WAIT_UNTIL(fx, fx->closed == 1);
	assert_int_equal(sess_server_stats(fx->srv)->protocol_errors, 1);
}

/* test_line_too_long_no_newline - a flood without newline closes early */
static void
test_line_too_long_no_newline(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;
	char		*big;
	size_t		 len = 64 * 1024;
	uint64_t	 end;

	/* the input fills to its high-water mark (16 KiB) before the error */
	fx->lim.max_line = 16382;
	fx_start(fx);
	c = cl_connect(fx);
	big = xmalloc(len + 1);
	memset(big, 'x', len);
	big[len] = '\0';
	cl_send(c, big);	/* even before RequestOpen */
	free(big);
	cl_error(fx, c, SESS_ERR_LINE_TOO_LONG, -1);
	assert_true(cl_eof(fx, c));
	/* our close is seen at once, not when the linger time runs out */
	end = now_mono_us() + SESS_LINGER_MS * 1000 / 2;
	while (sess_server_stats(fx->srv)->current > 0 && now_mono_us() < end)
		pump(fx, -1);
	assert_int_equal(sess_server_stats(fx->srv)->current, 0);
}

/* test_half_close - a client that shuts down writing gets its answers */
static void
test_half_close(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":1,\"token\":\"good\","
	    "\"client\":\"nc\"}\n{\"request\":\"RequestPing\",\"ref\":2}\n");
	shutdown(c->fd, SHUT_WR);
	cl_ok(fx, c, "EventOpened", 1);
	cl_ok(fx, c, "EventPong", 2);
	assert_true(cl_eof(fx, c));
}

/* test_server_close - sess_close flushes answers queued before it */
static void
test_server_close(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;

	fx_start(fx);
	c = cl_connect(fx);
	cl_open(fx, c);
	cl_send(c, "{\"request\":\"RequestEcho\",\"ref\":2}\n"
	    "{\"request\":\"RequestBye\",\"ref\":3}\n"
	    "{\"request\":\"RequestPing\",\"ref\":4}\n");
	/* the answer before sess_close is flushed, nothing after it */
	cl_ok(fx, c, "EventEcho", 2);
	assert_true(cl_eof(fx, c));
	WAIT_UNTIL(fx, fx->closed == 1);
}

/* flood_cb - push a FLOOD_BYTES event to every opened session */
static void
flood_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fx	*fx = arg;
	char		 pad[FLOOD_BYTES];
	json_t		*e;
	char		*line;
	size_t		 i, len;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	e = json_pack("{s:s, s:s}", "event", "EventFlood", "pad", pad);
	line = sess_encode(e, &len);
	for (i = 0; i < NELEM(fx->open); i++)
		if (fx->open[i] != NULL)
			sess_send_line(fx->open[i], line, len);
	free(line);
	json_decref(e);
}

/* cl_drain - read and count whole lines */
static void
cl_drain(struct cl *c)
{
	char	*nl;
	size_t	 n;

	cl_fill(c);
	while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		n = (size_t)(nl - c->buf) + 1;
		c->lines++;
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
	}
}

/* test_slow_client - a client that does not read is cut, others served */
static void
test_slow_client(void **state)
{
	struct fx	*fx = *state;
	struct cl	*fast, *slow;
	struct timeval	 tv = { 0, 1000 };
	uint64_t	 end;
	int		 sv[2], small = 16 * 1024, before;

	fx_start(fx);
	fast = cl_connect(fx);
	cl_open(fx, fast);
	/* the slow one on a socketpair with small buffers, so it fills fast */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(sess_server_adopt(fx->srv, sv[0], "slow"), 0);
	slow = cl_add(fx, sv[1]);
	cl_open(fx, slow);
	fx->flood = event_new(fx->base, -1, EV_PERSIST, flood_cb, fx);
	event_add(fx->flood, &tv);
	end = now_mono_us() + WAIT_MS * 1000;
	while (sess_server_stats(fx->srv)->slow_cut == 0 &&
	    now_mono_us() < end) {
		pump(fx, fast->fd);
		cl_drain(fast);
	}
	assert_int_equal(sess_server_stats(fx->srv)->slow_cut, 1);
	/* the fast one is still served, then still answers */
	before = fast->lines;
	end = now_mono_us() + 100 * 1000;
	while (now_mono_us() < end) {
		pump(fx, fast->fd);
		cl_drain(fast);
	}
	assert_true(fast->lines > before);
	assert_true(fast->lines > (int)(fx->lim.max_output / FLOOD_BYTES));
	event_del(fx->flood);
	pump_ms(fx, 5);
	assert_int_equal(fx->closed, 1);
	assert_int_equal(sess_server_stats(fx->srv)->slow_cut, 1);
	assert_int_equal(sess_server_stats(fx->srv)->current, 1);
	/* the cut one sees its connection end */
	assert_true(cl_eof(fx, slow));
}

/* test_max_clients - over max_clients: TooManyClients; a freed place serves */
static void
test_max_clients(void **state)
{
	struct fx	*fx = *state;
	struct cl	*a, *b, *c, *d;

	fx->lim.max_clients = 2;
	fx_start(fx);
	a = cl_connect(fx);
	cl_open(fx, a);
	b = cl_connect(fx);
	cl_open(fx, b);
	c = cl_connect(fx);
	cl_error(fx, c, SESS_ERR_TOO_MANY, -1);
	assert_true(cl_eof(fx, c));
	assert_int_equal(sess_server_stats(fx->srv)->too_many, 1);
	/* a place freed is a place taken */
	close(a->fd);
	a->fd = -1;
	WAIT_UNTIL(fx, sess_server_stats(fx->srv)->current == 1);
	d = cl_connect(fx);
	cl_open(fx, d);
	cl_send(b, "{\"request\":\"RequestPing\",\"ref\":2}\n");
	cl_ok(fx, b, "EventPong", 2);
}

/*
 * test_make_room - at max_clients, a new connection takes the place of the
 * one that waited longest without opening; opened ones are never taken
 */
static void
test_make_room(void **state)
{
	struct fx	*fx = *state;
	struct cl	*silent, *later, *a, *b, *c;

	fx->lim.max_clients = 3;
	fx_start(fx);
	silent = cl_connect(fx);
	WAIT_UNTIL(fx, sess_server_stats(fx->srv)->current == 1);
	later = cl_connect(fx);
	cl_send(later, "{\"req");
	WAIT_UNTIL(fx, sess_server_stats(fx->srv)->current == 2);
	a = cl_connect(fx);
	cl_open(fx, a);
	/* full: the silent one, the oldest unopened, makes room */
	b = cl_connect(fx);
	cl_open(fx, b);
	cl_error(fx, silent, SESS_ERR_TOO_MANY, -1);
	assert_true(cl_eof(fx, silent));
	assert_int_equal(sess_server_stats(fx->srv)->evicted, 1);
	/* then the half-spoken one */
	c = cl_connect(fx);
	cl_open(fx, c);
	cl_error(fx, later, SESS_ERR_TOO_MANY, -1);
	assert_true(cl_eof(fx, later));
	/* all opened: the next is turned away, the opened keep their place */
	silent = cl_connect(fx);
	cl_error(fx, silent, SESS_ERR_TOO_MANY, -1);
	assert_true(cl_eof(fx, silent));
	assert_int_equal(sess_server_stats(fx->srv)->too_many, 1);
	assert_int_equal(sess_server_stats(fx->srv)->evicted, 2);
	cl_send(a, "{\"request\":\"RequestPing\",\"ref\":2}\n");
	cl_ok(fx, a, "EventPong", 2);
	cl_send(b, "{\"request\":\"RequestPing\",\"ref\":2}\n");
	cl_ok(fx, b, "EventPong", 2);
}

/* test_open_timeout - no RequestOpen in time: OpenTimeout and close */
static void
test_open_timeout(void **state)
{
	struct fx	*fx = *state;
	struct cl	*idle, *opened;

	fx->lim.open_timeout_ms = 100;
	fx_start(fx);
	idle = cl_connect(fx);
	opened = cl_connect(fx);
	cl_open(fx, opened);
	cl_error(fx, idle, SESS_ERR_OPEN_TIMEOUT, -1);
	assert_true(cl_eof(fx, idle));
	assert_int_equal(sess_server_stats(fx->srv)->timed_out, 1);
	/* an opened link is not bound by open_timeout */
	pump_ms(fx, 150);
	cl_send(opened, "{\"request\":\"RequestPing\",\"ref\":2}\n");
	cl_ok(fx, opened, "EventPong", 2);
}

/* test_idle_timeout - pings keep an open link, silence closes it */
static void
test_idle_timeout(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;
	int		 i;

	fx->lim.idle_timeout_ms = 150;
	fx_start(fx);
	c = cl_connect(fx);
	cl_open(fx, c);
	/* pings keep it alive past the idle timeout */
	for (i = 0; i < 4; i++) {
		pump_ms(fx, 60);
		cl_send(c, "{\"request\":\"RequestPing\",\"ref\":2}\n");
		cl_ok(fx, c, "EventPong", 2);
	}
	cl_error(fx, c, SESS_ERR_IDLE_TIMEOUT, -1);
	assert_true(cl_eof(fx, c));
	assert_int_equal(sess_server_stats(fx->srv)->timed_out, 1);
}

/* test_open_pending - a late open serves what waited; a leaver is closed */
static void
test_open_pending(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c, *d;
	json_t		*extra;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":1,\"token\":\"later\","
	    "\"client\":\"wfm\"}\n{\"request\":\"RequestPing\",\"ref\":2}\n");
	assert_true(cl_quiet(fx, c, 30));
	assert_non_null(fx->pending);
	extra = json_pack("{s:s}", "agent", "a1");
	sess_open_done(fx->pending, SESS_OPEN_ACCEPT, extra, NULL);
	sess_open_done(fx->pending, SESS_OPEN_REFUSE, NULL, "ignored");
	fx->pending = NULL;
	json_decref(extra);
	/* the ping waited behind the open */
	json_decref(cl_expect(fx, c, "EventOpened", 1));
	cl_ok(fx, c, "EventPong", 2);
	/* a pending open whose client leaves is reported closed */
	d = cl_connect(fx);
	cl_send(d, "{\"request\":\"RequestOpen\",\"ref\":1,\"token\":\"later\","
	    "\"client\":\"wfm\"}\n");
	WAIT_UNTIL(fx, fx->pending != NULL);
	close(d->fd);
	d->fd = -1;
	WAIT_UNTIL(fx, fx->closed == 1);
	assert_null(fx->pending);
}

/* test_open_pending_refused - a late refusal closes */
static void
test_open_pending_refused(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":1,\"token\":\"later\","
	    "\"client\":\"wfm\"}\n");
	WAIT_UNTIL(fx, fx->pending != NULL);
	sess_open_done(fx->pending, SESS_OPEN_REFUSE, NULL, "expired");
	cl_error(fx, c, SESS_ERR_UNAUTHORIZED, 1);
	assert_true(cl_eof(fx, c));
	WAIT_UNTIL(fx, fx->closed == 1);
}

/*
 * test_open_not_now - Unavailable and BadRequest leave the link waiting
 * for another RequestOpen, which may then succeed on it
 */
static void
test_open_not_now(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c;

	fx_start(fx);
	c = cl_connect(fx);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":1,\"token\":\"later\","
	    "\"client\":\"wfm\"}\n{\"request\":\"RequestPing\",\"ref\":2}\n");
	WAIT_UNTIL(fx, fx->pending != NULL);
	sess_open_done(fx->pending, SESS_OPEN_UNAVAILABLE, NULL, "Redis away");
	cl_error(fx, c, SESS_ERR_UNAVAILABLE, 1);
	cl_error(fx, c, SESS_ERR_NOT_OPENED, 2);	/* served, not dropped */
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":3,\"token\":"
	    "\"malformed\",\"client\":\"wfm\"}\n");
	cl_error(fx, c, SESS_ERR_BAD_REQUEST, 3);
	cl_send(c, "{\"request\":\"RequestOpen\",\"ref\":4,\"token\":\"good\","
	    "\"client\":\"wfm\"}\n");
	json_decref(cl_expect(fx, c, "EventOpened", 4));
	cl_send(c, "{\"request\":\"RequestPing\",\"ref\":5}\n");
	cl_ok(fx, c, "EventPong", 5);
	assert_int_equal(fx->closed, 0);
}

/* test_close_all - graceful stop: error to all, close after flushing */
static void
test_close_all(void **state)
{
	struct fx	*fx = *state;
	struct cl	*a, *b;

	fx_start(fx);
	a = cl_connect(fx);
	cl_open(fx, a);
	b = cl_connect(fx);
	pump_ms(fx, 5);
	sess_server_pause(fx->srv);
	sess_server_close_all(fx->srv, "ShuttingDown", "bye");
	cl_error(fx, a, "ShuttingDown", -1);
	cl_error(fx, b, "ShuttingDown", -1);
	assert_true(cl_eof(fx, a));
	assert_true(cl_eof(fx, b));
	WAIT_UNTIL(fx, sess_server_stats(fx->srv)->current == 0);
	assert_int_equal(fx->closed, 1);
}

/* test_set_listener - a new listening socket keeps clients, drops the old */
static void
test_set_listener(void **state)
{
	struct fx		*fx = *state;
	struct cl		*a, *b;
	struct sockaddr_in	 sin;
	int			 old, fd;

	fx_start(fx);
	a = cl_connect(fx);
	cl_open(fx, a);
	old = fx->port;
	fd = listen_loopback(&fx->port);
	assert_int_equal(sess_server_set_listener(fx->srv, fd), 0);
	b = cl_connect(fx);
	cl_open(fx, b);
	cl_send(a, "{\"request\":\"RequestPing\",\"ref\":2}\n");
	cl_ok(fx, a, "EventPong", 2);
	/* the old socket is closed */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(old);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), -1);
	close(fd);
}

/* test_free_with_sessions - freeing the server closes and reports all */
static void
test_free_with_sessions(void **state)
{
	struct fx	*fx = *state;
	struct cl	*a;

	fx_start(fx);
	a = cl_connect(fx);
	cl_open(fx, a);
	cl_connect(fx);
	pump_ms(fx, 5);
	sess_server_free(fx->srv);
	fx->srv = NULL;
	assert_int_equal(fx->closed, 1);
	assert_true(cl_eof(fx, a));
}

/*
 * The client against the server.
 */

struct clx {
	int	 up, down, events, replies, nulls;
	char	 data[32];
};

/* x_up - client handler: EventOpened with the worker's fields */
static void
x_up(struct sess_client *c, json_t *opened, void *arg)
{
	struct clx	*x = arg;

	assert_string_equal(json_string_value(json_object_get(opened,
	    "tenant")), "t1");
	x->up++;
}

/* x_event - client handler: count unsolicited events */
static void
x_event(struct sess_client *c, json_t *ev, void *arg)
{
	((struct clx *)arg)->events++;
}

/* x_down - client handler: count lost links */
static void
x_down(struct sess_client *c, const char *why, void *arg)
{
	((struct clx *)arg)->down++;
}

/* x_reply - client reply callback: count answers and NULLs */
static void
x_reply(struct sess_client *c, json_t *reply, void *arg)
{
	struct clx	*x = arg;

	if (reply == NULL) {
		x->nulls++;
		return;
	}
	x->replies++;
	snprintf(x->data, sizeof(x->data), "%s",
	    json_string_value(json_object_get(reply, "data")));
}

/* wait_for - pump until *v reaches want */
static void
wait_for(struct fx *fx, int *v, int want)
{
	uint64_t	end = now_mono_us() + WAIT_MS * 1000;

	while (*v < want && now_mono_us() < end)
		pump(fx, -1);
	assert_int_equal(*v, want);
}

/* test_client - request/answer, pings, loss and reconnect */
static void
test_client(void **state)
{
	struct fx			*fx = *state;
	struct sess_client		*c;
	struct clx			 x = { 0 };
	struct sess_client_conf		 conf = { 0 };
	struct sess_client_handlers	 h = { x_up, x_event, x_down };
	char				 port[8];
	json_t				*req;
	json_int_t			 ref;

	fx_start(fx);
	snprintf(port, sizeof(port), "%d", fx->port);
	conf.host = "127.0.0.1";
	conf.port = port;
	conf.token = "good";
	conf.client = "outbound";
	conf.ping_ms = 20;
	conf.backoff_min_us = 10000;
	c = sess_client_new(fx->base, &conf, &h, &x);
	req = json_pack("{s:s}", "request", "RequestEcho");
	assert_int_equal(sess_client_request(c, req, x_reply, &x), -1);
	wait_for(fx, &x.up, 1);
	json_object_set_new(req, "data", json_string("hello"));
	ref = sess_client_request(c, req, x_reply, &x);
	assert_true(ref > 0);
	wait_for(fx, &x.replies, 1);
	assert_string_equal(x.data, "hello");
	/* pings run and are answered */
	pump_ms(fx, 60);
	assert_int_equal(x.down, 0);
	/* the server drops everyone: a pending request gets NULL, then up */
	sess_client_request(c, req, x_reply, &x);
	sess_server_close_all(fx->srv, "ShuttingDown", "bye");
	wait_for(fx, &x.down, 1);
	wait_for(fx, &x.up, 2);
	assert_true(x.nulls + x.replies == 2);
	assert_int_equal(x.events, 1);	/* the unsolicited EventError */
	json_decref(req);
	sess_client_free(c);
}

/* test_client_refused - a refused client keeps retrying, never up */
static void
test_client_refused(void **state)
{
	struct fx			*fx = *state;
	struct sess_client		*c;
	struct clx			 x = { 0 };
	struct sess_client_conf		 conf = { 0 };
	struct sess_client_handlers	 h = { x_up, x_event, x_down };
	char				 port[8];

	fx_start(fx);
	snprintf(port, sizeof(port), "%d", fx->port);
	conf.host = "127.0.0.1";
	conf.port = port;
	conf.token = "bad";
	conf.client = "outbound";
	conf.backoff_min_us = 10000;
	c = sess_client_new(fx->base, &conf, &h, &x);
	WAIT_UNTIL(fx, sess_server_stats(fx->srv)->refused >= 2);
	assert_int_equal(x.up, 0);
	assert_false(sess_client_is_up(c));
	sess_client_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_partial),
		cmocka_unit_test(test_frame_several),
		cmocka_unit_test(test_frame_limits),
		cmocka_unit_test(test_frame_crlf_empty),
		cmocka_unit_test(test_decode_ok),
		cmocka_unit_test(test_decode_missing_request),
		cmocka_unit_test(test_decode_not_object),
		cmocka_unit_test(test_decode_bad_json),
		cmocka_unit_test(test_decode_bad_ref),
		cmocka_unit_test(test_decode_huge_numbers),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_error_new),
#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_open_required),
		T(test_open_refused),
		T(test_open_bad_fields),
		T(test_errors_keep_link),
		T(test_partial_and_pipelined),
		T(test_line_too_long),
		T(test_line_too_long_no_newline),
		T(test_half_close),
		T(test_server_close),
		T(test_slow_client),
		T(test_max_clients),
		T(test_make_room),
		T(test_open_timeout),
		T(test_idle_timeout),
		T(test_open_pending),
		T(test_open_pending_refused),
		T(test_open_not_now),
		T(test_close_all),
		T(test_set_listener),
		T(test_free_with_sessions),
		T(test_client),
		T(test_client_refused),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
