/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http - the HTTP/1.1 request parser (pure: every input is an exact
 * size heap copy, so a sanitizer sees any read past it) and then the server
 * on a real loopback socket, driven by client sockets in this process on
 * the same event_base: keep-alive, pipelining in order, answers given
 * later from a timer, Connection: close, max_clients and who makes room,
 * parse errors, HEAD, the head hook and 100 Continue, head and body
 * deadlines against clients that trickle.  The chunked body decoder and
 * the first-bytes test (pure), and bodies streamed to the handler
 * (Content-Length and chunked, pause and resume, over the limit, a client
 * gone or stalled mid-body, an answer before the end), and a socket
 * adopted with its first bytes already read.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define MAX_BODY	1024
#define WAIT_MS		3000	/* generous: valgrind is slow */

/*
 * The parser.
 */

static char	*copy;	/* the input of the last parse, exact size */

/* parse_n - http_parse_request over an exact-size copy of s[0..n) */
static enum http_parse_rc
parse_n(const char *s, size_t n, size_t max_body, struct http_request *r,
    size_t *used, int *status)
{
	free(copy);
	copy = xmalloc(n);
	memcpy(copy, s, n);
	return http_parse_request(copy, n, max_body, r, used, status);
}

/* ok - s parses whole as one request */
static void
ok(const char *s, struct http_request *r)
{
	size_t	used = 0;
	int	status = 0;

	if (parse_n(s, strlen(s), MAX_BODY, r, &used, &status) !=
	    HTTP_PARSE_OK)
		fail_msg("not OK (status %d): %s", status, s);
	assert_int_equal(used, strlen(s));
}

/* test_query - http_query and http_query_next decode the query string */
static void
test_query(void **state)
{
	struct http_request	 r;
	char			 k[16], v[16];
	size_t			 pos = 0;

	ok("GET /v1/persons?name=J%C3%B6rg+K&limit=5&flag&x=%2F HTTP/1.1"
	    "\r\n\r\n", &r);
	assert_int_equal(http_query(&r, "name", v, sizeof(v)), 1);
	assert_string_equal(v, "J\xc3\xb6rg K");
	assert_int_equal(http_query(&r, "limit", v, sizeof(v)), 1);
	assert_string_equal(v, "5");
	assert_int_equal(http_query(&r, "flag", v, sizeof(v)), 1);
	assert_string_equal(v, "");
	assert_int_equal(http_query(&r, "nam", v, sizeof(v)), 0);
	assert_int_equal(http_query(&r, "x", v, sizeof(v)), 1);
	assert_string_equal(v, "/");
	/* Too long for the buffer: refused, not cut. */
	assert_int_equal(http_query(&r, "name", v, 4), -1);
	assert_int_equal(http_query_next(&r, &pos, k, sizeof(k), v,
	    sizeof(v)), 1);
	assert_string_equal(k, "name");
	assert_int_equal(http_query_next(&r, &pos, k, sizeof(k), v,
	    sizeof(v)), 1);
	assert_string_equal(k, "limit");
	assert_string_equal(v, "5");
	assert_int_equal(http_query_next(&r, &pos, k, sizeof(k), v,
	    sizeof(v)), 1);
	assert_string_equal(k, "flag");
	assert_int_equal(http_query_next(&r, &pos, k, sizeof(k), v,
	    sizeof(v)), 1);
	assert_string_equal(k, "x");
	assert_int_equal(http_query_next(&r, &pos, k, sizeof(k), v,
	    sizeof(v)), 0);
	/* Bad escapes and NUL are malformed; no query at all is empty. */
	ok("GET /a?b=%zz HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(http_query(&r, "b", v, sizeof(v)), -1);
	ok("GET /a?b=%00 HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(http_query(&r, "b", v, sizeof(v)), -1);
	ok("GET /a?b=%4 HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(http_query(&r, "b", v, sizeof(v)), -1);
	ok("GET /a HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(http_query(&r, "b", v, sizeof(v)), 0);
	pos = 0;
	assert_int_equal(http_query_next(&r, &pos, k, sizeof(k), v,
	    sizeof(v)), 0);
}

/* bad - s is refused with status want */
static void
bad(const char *s, int want)
{
	struct http_request	r;
	size_t			used;
	int			status = 0;

	if (parse_n(s, strlen(s), MAX_BODY, &r, &used, &status) !=
	    HTTP_PARSE_ERROR)
		fail_msg("not an error: %s", s);
	if (status != want)
		fail_msg("status %d, wanted %d: %s", status, want, s);
}

/* more - s is a partial request */
static void
more(const char *s, size_t n)
{
	struct http_request	r;
	size_t			used = 12345;
	int			status = 0;

	if (parse_n(s, n, MAX_BODY, &r, &used, &status) != HTTP_PARSE_MORE)
		fail_msg("not MORE at %zu of: %s", n, s);
	/* 0 before the headers are in, else what the whole will need */
	if (used != 0 && used <= n)
		fail_msg("MORE says %zu bytes are needed, %zu are here: %s",
		    used, n, s);
}

static int
parser_teardown(void **state)
{
	free(copy);
	copy = NULL;
	return 0;
}

/* hdr_is - header name has value v */
static void
hdr_is(const struct http_request *r, const char *name, const char *v)
{
	const char	*p;
	size_t		 len = 0;

	if ((p = http_header(r, name, &len)) == NULL)
		fail_msg("no header %s", name);
	assert_int_equal(len, strlen(v));
	assert_memory_equal(p, v, len);
}

static void
test_simple_get(void **state)
{
	struct http_request	r;

	ok("GET / HTTP/1.1\r\nHost: example\r\n\r\n", &r);
	assert_int_equal(r.method_len, 3);
	assert_memory_equal(r.method, "GET", 3);
	assert_true(http_method_is(&r, "GET"));
	assert_false(http_method_is(&r, "GE"));
	assert_false(http_method_is(&r, "POST"));
	assert_int_equal(r.target_len, 1);
	assert_int_equal(r.path_len, 1);
	assert_true(http_path_is(&r, "/"));
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.keep_alive, 1);
	assert_int_equal(r.nheaders, 1);
	hdr_is(&r, "Host", "example");
	assert_int_equal(r.body_len, 0);
	/* Bare LF line ends and empty lines before the request are fine. */
	ok("\r\n\r\nGET /x HTTP/1.0\nA: b\n\n", &r);
	assert_true(http_path_is(&r, "/x"));
	assert_int_equal(r.minor, 0);
}

/* keep_alive - the keep_alive flag of a request */
static int
keep_alive(const char *s)
{
	struct http_request	r;

	ok(s, &r);
	return r.keep_alive;
}

static void
test_keep_alive(void **state)
{
	assert_int_equal(keep_alive("GET / HTTP/1.1\r\n\r\n"), 1);
	assert_int_equal(keep_alive("GET / HTTP/1.1\r\n"
	    "Connection: close\r\n\r\n"), 0);
	assert_int_equal(keep_alive("GET / HTTP/1.1\r\n"
	    "connection: Keep-Alive, CLOSE\r\n\r\n"), 0);
	assert_int_equal(keep_alive("GET / HTTP/1.1\r\n"
	    "Connection: closed\r\n\r\n"), 1);
	assert_int_equal(keep_alive("GET / HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(keep_alive("GET / HTTP/1.0\r\n"
	    "Connection: keep-alive\r\n\r\n"), 1);
	assert_int_equal(keep_alive("GET / HTTP/1.0\r\n"
	    "Connection: Keep-Alive\r\n\r\n"), 1);
	assert_int_equal(keep_alive("GET / HTTP/1.0\r\n"
	    "Connection: upgrade\r\n\r\n"), 0);
}

static void
test_path_query(void **state)
{
	struct http_request	r;

	ok("GET /a/b?x=1&y=2 HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.target_len, 12);
	assert_memory_equal(r.target, "/a/b?x=1&y=2", 12);
	assert_int_equal(r.path_len, 4);
	assert_true(http_path_is(&r, "/a/b"));
	assert_false(http_path_is(&r, "/a/b?x=1&y=2"));
	assert_false(http_path_is(&r, "/a"));
	ok("GET /? HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.path_len, 1);
	assert_int_equal(r.target_len, 2);
	ok("GET /q?a?b HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.path_len, 2);
	ok("OPTIONS * HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.target_len, 1);
	assert_true(http_method_is(&r, "OPTIONS"));
}

static void
test_headers(void **state)
{
	struct http_request	r;
	size_t			len;

	ok("POST /x HTTP/1.1\r\nHost: h\r\ncontent-TYPE:  application/json "
	    "\t\r\nX-Empty:\r\nX-Dup: one\r\nX-Dup: two\r\n\r\n", &r);
	assert_int_equal(r.nheaders, 5);
	hdr_is(&r, "Content-Type", "application/json");
	hdr_is(&r, "CONTENT-TYPE", "application/json");
	hdr_is(&r, "host", "h");
	hdr_is(&r, "x-empty", "");
	hdr_is(&r, "X-Dup", "one");
	assert_null(http_header(&r, "Content", &len));
	assert_null(http_header(&r, "Content-Types", &len));
	assert_null(http_header(&r, "Accept", &len));
	assert_int_equal(r.headers[1].name_len, 12);
	assert_memory_equal(r.headers[1].name, "content-TYPE", 12);
}

/* every_prefix - each proper prefix of s is MORE, then s is OK */
static void
every_prefix(const char *s)
{
	struct http_request	r;
	size_t			n;

	for (n = 0; n < strlen(s); n++)
		more(s, n);
	ok(s, &r);
}

static void
test_partial(void **state)
{
	every_prefix("GET /partial?q=1 HTTP/1.1\r\nHost: h\r\n"
	    "Accept: */*\r\n\r\n");
	every_prefix("POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\n"
	    "hello world");
	every_prefix("\r\nGET / HTTP/1.0\n\n");
}

static void
test_pipelined(void **state)
{
	static const char	two[] = "GET /one HTTP/1.1\r\nA: 1\r\n\r\n"
	    "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
	struct http_request	r;
	size_t			used, used2;
	int			status;

	assert_int_equal(parse_n(two, sizeof(two) - 1, MAX_BODY, &r, &used,
	    &status), HTTP_PARSE_OK);
	assert_int_equal(used, 27);
	assert_true(http_path_is(&r, "/one"));
	assert_int_equal(http_parse_request(copy + used, sizeof(two) - 1 -
	    used, MAX_BODY, &r, &used2, &status), HTTP_PARSE_OK);
	assert_true(http_path_is(&r, "/two"));
	assert_int_equal(r.body_len, 3);
	assert_memory_equal(r.body, "abc", 3);
	assert_int_equal(used + used2, sizeof(two) - 1 - 3);
	assert_int_equal(http_parse_request(copy + used + used2, 3, MAX_BODY,
	    &r, &used, &status), HTTP_PARSE_MORE);
}

static void
test_body(void **state)
{
	static const char	req[] = "PUT /b HTTP/1.1\r\n"
	    "Content-Length: 5\r\n\r\n12345";
	char			full[MAX_BODY + 128];
	struct http_request	r;
	size_t			used, hl = sizeof(req) - 1 - 5;
	int			status;

	ok(req, &r);
	assert_int_equal(r.body_len, 5);
	assert_ptr_equal(r.body, copy + hl);
	/* Headers complete, body partial: MORE at every length. */
	for (used = hl; used < sizeof(req) - 1; used++)
		more(req, used);
	/* A body of exactly max_body is fine; the next request waits. */
	snprintf(full, sizeof(full), "POST / HTTP/1.1\r\nContent-Length: "
	    "%d\r\n\r\n%0*d", MAX_BODY, MAX_BODY, 0);
	ok(full, &r);
	assert_int_equal(r.body_len, MAX_BODY);
	/* Identical duplicates agree; zero is a length. */
	ok("POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n"
	    "\r\nab", &r);
	assert_int_equal(r.body_len, 2);
	ok("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.body_len, 0);
	(void)status;
}

static void
test_errors_body_length(void **state)
{
	char	req[128];

	/* Refused on the header alone: the body is never waited for. */
	snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nContent-Length: %d\r\n"
	    "\r\n", MAX_BODY + 1);
	bad(req, 413);
	bad("POST / HTTP/1.1\r\nContent-Length: 999999999999999\r\n\r\n", 413);
	bad("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
	    "\r\nab", 400);
	bad("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
	bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
	bad("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400);
	bad("POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n", 400);
	bad("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400);
	bad("POST / HTTP/1.1\r\nContent-Length: 9999999999999999\r\n\r\n",
	    400);
	bad("POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n"
	    "Content-Length: 1\r\n\r\nx", 501);
	bad("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	    501);
	bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", 501);
	/* Both lengths, or chunked on HTTP/1.0: how long is it?  Refused. */
	bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n", 400);
	bad("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
}

static void
test_chunked_head(void **state)
{
	static const char	req[] = "POST /c HTTP/1.1\r\n"
	    "Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
	struct http_request	r;
	size_t			used, hl = strstr(req, "5\r\n") - req;
	int			status;

	/* A chunked request is never whole: its head is, and says so. */
	assert_int_equal(parse_n(req, sizeof(req) - 1, MAX_BODY, &r, &used,
	    &status), HTTP_PARSE_MORE);
	assert_int_equal(r.chunked, 1);
	assert_int_equal(r.body_len, 0);
	assert_null(r.body);
	assert_int_equal(used, hl);
	assert_int_equal(r.keep_alive, 1);
	assert_true(http_path_is(&r, "/c"));
	/* Before the head's end it is MORE with nothing known. */
	more(req, hl - 1);
}

/*
 * The chunked decoder.
 */

struct dechunk {
	char			 out[8192];
	size_t			 len;
	size_t			 used;	/* of the input, in all */
	enum http_chunked_rc	 rc;	/* the last answer */
};

/* dechunk - decode s[0..n) in pieces of step bytes (0: whole) */
static void
dechunk(const char *s, size_t n, size_t step, struct dechunk *d)
{
	struct http_chunked	 k;
	const char		*data;
	char			*piece;
	size_t			 off = 0, len, used, dlen;

	memset(&k, 0, sizeof(k));
	memset(d, 0, sizeof(*d));
	d->rc = HTTP_CHUNKED_MORE;
	while (off < n && d->rc != HTTP_CHUNKED_DONE &&
	    d->rc != HTTP_CHUNKED_ERROR) {
		len = step == 0 || n - off < step ? n - off : step;
		/* an exact-size copy: a read past it is a sanitizer report */
		piece = xmalloc(len);
		memcpy(piece, s + off, len);
		do {
			d->rc = http_chunked_next(&k, piece, len, &used, &data,
			    &dlen);
			assert_true(used <= len);
			if (d->rc == HTTP_CHUNKED_DATA) {
				assert_true(dlen > 0);
				assert_true(data >= piece &&
				    data + dlen == piece + used);
				assert_true(d->len + dlen <= sizeof(d->out));
				memcpy(d->out + d->len, data, dlen);
				d->len += dlen;
			}
			memmove(piece, piece + used, len - used);
			len -= used;
			off += used;
			d->used += used;
		} while (d->rc == HTTP_CHUNKED_DATA && len > 0);
		if (d->rc == HTTP_CHUNKED_MORE)
			assert_int_equal(len, 0);
		free(piece);
	}
}

/* chunk_ok - s decodes to want, ending at its last byte, however cut */
static void
chunk_ok(const char *s, const char *want)
{
	struct dechunk	d;
	size_t		step, n = strlen(s);

	for (step = 0; step <= 7; step++) {
		dechunk(s, n, step, &d);
		if (d.rc != HTTP_CHUNKED_DONE || d.used != n ||
		    d.len != strlen(want) || memcmp(d.out, want, d.len) != 0)
			fail_msg("step %zu: rc %d used %zu of %zu, got \"%.*s\" "
			    "for \"%s\"", step, d.rc, d.used, n, (int)d.len,
			    d.out, s);
	}
}

/* chunk_bad - s is refused, however cut */
static void
chunk_bad(const char *s, size_t n)
{
	struct dechunk	d;
	size_t		step;

	for (step = 0; step <= 3; step++) {
		dechunk(s, n, step, &d);
		if (d.rc != HTTP_CHUNKED_ERROR)
			fail_msg("step %zu: not refused (rc %d): \"%s\"", step,
			    d.rc, s);
	}
}

static void
test_chunked_decode(void **state)
{
	char		*s;
	struct dechunk	 d;

	chunk_ok("0\r\n\r\n", "");
	chunk_ok("4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks."
	    "\r\n0\r\n\r\n", "Wikipedia in\r\n\r\nchunks.");
	/* Extensions and trailers are read and ignored; hex either case. */
	chunk_ok("a;name=\"v\"; x\r\n0123456789\r\n0;last\r\n"
	    "X-Sum: 1\r\nX-More: a b\r\n\r\n", "0123456789");
	chunk_ok("A \r\n0123456789\r\n00\r\n\r\n", "0123456789");
	/* A bare LF for CRLF, as in heads. */
	chunk_ok("3\nabc\n0\n\n", "abc");
	chunk_ok("000003\r\nabc\r\n0\r\n\r\n", "abc");
	/* Not all here: MORE, with every byte taken. */
	dechunk("5\r\nhel", 6, 0, &d);
	assert_int_equal(d.rc, HTTP_CHUNKED_DATA);
	assert_int_equal(d.len, 3);
	s = "5\r\nhello\r\n0\r\n";
	dechunk(s, strlen(s), 0, &d);
	assert_int_equal(d.rc, HTTP_CHUNKED_MORE);
	assert_int_equal(d.used, strlen(s));
	/* DONE stops at the body's end: the next request is not taken. */
	s = "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
	dechunk(s, strlen(s), 0, &d);
	assert_int_equal(d.rc, HTTP_CHUNKED_DONE);
	assert_int_equal(d.used, strlen("1\r\nx\r\n0\r\n\r\n"));
	/* Malformed framing. */
	chunk_bad("", 1);			/* a NUL for a digit */
	chunk_bad("x\r\n", 3);
	chunk_bad(";\r\n", 3);
	chunk_bad("-1\r\n", 4);
	chunk_bad("3\r\nabcd\r\n", 9);		/* longer than said */
	chunk_bad("3\r\nabc\r\r\n", 9);
	chunk_bad("3\rx", 4);
	chunk_bad("3;a\x01\r\n", 6);		/* a control in an extension */
	chunk_bad("0\r\n bad\r\n\r\n", 11);	/* folded trailer */
	chunk_bad("0\r\nX: a\x7f\r\n\r\n", 11);
	chunk_bad("0\r\n\rx", 5);
	chunk_bad("1234567890abcdef0\r\n", 19);	/* no body is so long */
	/* A size line, or trailers, without end. */
	s = xmalloc(HTTP_CHUNK_LINE_MAX + 8);
	memset(s, ' ', HTTP_CHUNK_LINE_MAX + 8);
	s[0] = '1';
	chunk_bad(s, HTTP_CHUNK_LINE_MAX + 8);
	free(s);
	s = xmalloc(HTTP_HEADER_BYTES_MAX + 16);
	memcpy(s, "0\r\nX: ", 6);
	memset(s + 6, 'v', HTTP_HEADER_BYTES_MAX + 10);
	chunk_bad(s, HTTP_HEADER_BYTES_MAX + 16);
	free(s);
}

/*
 * The first bytes of a session port's connection.
 */

static void
sniff_is(const char *s, enum http_sniff want)
{
	char	*p = xmalloc(strlen(s) + 1);

	memcpy(p, s, strlen(s));	/* exact size for the sanitizer */
	if (http_sniff(p, strlen(s)) != want)
		fail_msg("\"%s\": %d, wanted %d", s, http_sniff(p, strlen(s)),
		    want);
	free(p);
}

static void
test_sniff(void **state)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT",
	    "PATCH", "DELETE", "OPTIONS" };
	char	buf[16];
	size_t	i, n;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		snprintf(buf, sizeof(buf), "%s /x", methods[i]);
		sniff_is(buf, HTTP_SNIFF_HTTP);
		buf[strlen(methods[i]) + 1] = '\0';
		sniff_is(buf, HTTP_SNIFF_HTTP);
		/* every strict prefix waits for more */
		for (n = 1; n <= strlen(methods[i]); n++) {
			buf[n] = '\0';
			sniff_is(buf, HTTP_SNIFF_MORE);
		}
	}
	sniff_is("", HTTP_SNIFF_MORE);
	assert_true(strlen("OPTIONS ") == HTTP_SNIFF_MAX);
	/* JSON lines, blanks, lower case, other methods, TLS: not HTTP. */
	sniff_is("{", HTTP_SNIFF_OTHER);
	sniff_is("{\"request\":\"RequestOpen\"}\n", HTTP_SNIFF_OTHER);
	sniff_is(" ", HTTP_SNIFF_OTHER);
	sniff_is("\r\n", HTTP_SNIFF_OTHER);
	sniff_is("\t{", HTTP_SNIFF_OTHER);
	sniff_is("get /", HTTP_SNIFF_OTHER);
	sniff_is("GETX", HTTP_SNIFF_OTHER);
	sniff_is("GET/", HTTP_SNIFF_OTHER);
	sniff_is("PRI * HTTP/2.0", HTTP_SNIFF_OTHER);
	sniff_is("CONNECT h:1", HTTP_SNIFF_OTHER);
	sniff_is("TRACE /", HTTP_SNIFF_OTHER);
	sniff_is("\x16\x03\x01", HTTP_SNIFF_OTHER);
	sniff_is("PO", HTTP_SNIFF_MORE);
	sniff_is("PX", HTTP_SNIFF_OTHER);
}

static void
test_errors_request_line(void **state)
{
	bad("GET / HTTP/2.0\r\n\r\n", 505);
	bad("GET / HTTP/1.2\r\n\r\n", 505);
	bad("GET / HTTP/1.10\r\n\r\n", 505);
	bad("GET / FTP/1.1\r\n\r\n", 400);
	bad("GET / http/1.1\r\n\r\n", 400);
	bad("GARBAGE\r\n\r\n", 400);
	bad("\x16\x03\x01\x02\x01\x01\xfc\x03\x03\n", 400);
	bad("GET\r\n\r\n", 400);
	bad("GET /\r\n\r\n", 400);
	bad(" GET / HTTP/1.1\r\n\r\n", 400);
	bad("GET  / HTTP/1.1\r\n\r\n", 400);
	bad("G(T / HTTP/1.1\r\n\r\n", 400);
	bad("GET x HTTP/1.1\r\n\r\n", 400);
	bad("GET http://h/ HTTP/1.1\r\n\r\n", 400);
	bad("GET ** HTTP/1.1\r\n\r\n", 400);
	bad("GET /a\x01 HTTP/1.1\r\n\r\n", 400);
	bad("GET /a\x7f HTTP/1.1\r\n\r\n", 400);
	bad("GET /a\tb HTTP/1.1\r\n\r\n", 400);
	bad("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400);
}

static void
test_errors_headers(void **state)
{
	bad("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\nName : x\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\nX: a\r\n\tfolded\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\n folded-first: x\r\n\r\n", 400);
	bad("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400);
}

static void
test_errors_nul_in_value(void **state)
{
	static const char	req[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
	struct http_request	r;
	size_t			used;
	int			status = 0;

	assert_int_equal(parse_n(req, sizeof(req) - 1, MAX_BODY, &r, &used,
	    &status), HTTP_PARSE_ERROR);
	assert_int_equal(status, 400);
}

/* many_headers - a request with n headers of vlen-byte values */
static char *
many_headers(int n, size_t vlen)
{
	char	*s = xmalloc(64 + (size_t)n * (vlen + 16));
	size_t	 off;
	int	 i;

	off = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
	for (i = 0; i < n; i++) {
		off += (size_t)sprintf(s + off, "X-%03d: ", i);
		memset(s + off, 'v', vlen);
		off += vlen;
		off += (size_t)sprintf(s + off, "\r\n");
	}
	sprintf(s + off, "\r\n");
	return s;
}

static void
test_errors_too_large(void **state)
{
	struct http_request	r;
	char			*s;
	size_t			 n;

	s = many_headers(HTTP_HEADERS_MAX, 1);
	ok(s, &r);
	assert_int_equal(r.nheaders, HTTP_HEADERS_MAX);
	free(s);
	s = many_headers(HTTP_HEADERS_MAX + 1, 1);
	bad(s, 431);
	free(s);
	/* 17 headers of 1000 bytes: complete, but over 16 KiB. */
	s = many_headers(17, 1000);
	bad(s, 431);
	/* The same cut short: refused before the end arrives. */
	n = strlen(s) - 100;
	assert_true(n > HTTP_HEADER_BYTES_MAX);
	assert_int_equal(parse_n(s, n, MAX_BODY, &r, &n, &(int){0}),
	    HTTP_PARSE_ERROR);
	free(s);
	/* 15 of them fit. */
	s = many_headers(15, 1000);
	ok(s, &r);
	free(s);
	/* A request line that never ends. */
	s = xmalloc(HTTP_HEADER_BYTES_MAX + 10);
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', HTTP_HEADER_BYTES_MAX + 4);
	s[HTTP_HEADER_BYTES_MAX + 9] = '\0';
	bad(s, 431);
	free(s);
}

static void
test_status_text(void **state)
{
	assert_string_equal(http_status_text(200), "OK");
	assert_string_equal(http_status_text(404), "Not Found");
	assert_string_equal(http_status_text(431),
	    "Request Header Fields Too Large");
	assert_string_equal(http_status_text(503), "Service Unavailable");
	assert_string_equal(http_status_text(299), "Unknown");
}

/*
 * The server on a loopback socket.
 */

enum mode { ANSWER_NOW, ANSWER_LATER };
/* What the head hook does with a head whose body is to come. */
enum verdict { GO_ON, REFUSE, DECIDE_LATER, STREAM };

struct fx {
	struct event_base	*base;
	struct http_server	*srv;
	int			 port;
	enum mode		 mode;
	int			 nreq;		/* handler calls */
	struct http_conn	*pending[16];	/* oldest first */
	char			*bodies[16];
	int			 npending;
	int			 nanswered;
	enum verdict		 verdict;
	int			 nheads;	/* head hook calls */
	struct http_conn	*deciding;
	/* a body streamed (verdict STREAM) */
	uint64_t		 stream_max;
	char			 got[1 << 20];
	size_t			 ngot;
	int			 npieces;
	int			 ended;		/* ends told to cb */
	ssize_t			 end;		/* the last, with what */
	size_t			 pause_at;	/* pause once past this */
	size_t			 answer_at;	/* answer 422 once past this */
	struct http_conn	*paused;
	/* an answer streamed under flow control (/flow) */
	struct http_conn	*flow;
	int			 flow_sent;	/* chunks written */
	int			 flow_full;	/* writes answered 1 */
	int			 flow_drained;	/* drained calls */
	int			 flow_closed;	/* closed calls */
};

struct cl {
	int	fd;
	char	buf[65536];
	size_t	len;
	int	eof;
};

/* pump - run the loop for up to 2 ms */
static void
pump(struct fx *fx)
{
	struct timeval	tv = { 0, 2000 };

	event_base_loopexit(fx->base, &tv);
	event_base_loop(fx->base, 0);
}

#define WAIT_UNTIL(fx, cond) do {					\
	uint64_t _end = now_mono_us() + WAIT_MS * 1000;			\
	while (!(cond) && now_mono_us() < _end)				\
		pump(fx);						\
	assert_true(cond);						\
} while (0)

/* echo - the body a request is answered with */
static char *
echo(const struct http_request *r)
{
	return xasprintf("%.*s %.*s %zu:%.*s", (int)r->method_len, r->method,
	    (int)r->target_len, r->target, r->body_len, (int)r->body_len,
	    r->body);
}

/* answer_one - answer the oldest deferred request (timer) */
static void
answer_one(evutil_socket_t fd, short what, void *arg)
{
	struct fx	*fx = arg;
	char		*body = fx->bodies[0];

	assert_true(fx->npending > 0);
	http_respond(fx->pending[0], 200, "text/plain", "X-Later: 1\r\n",
	    body, strlen(body));
	free(body);
	fx->npending--;
	memmove(fx->pending, fx->pending + 1, sizeof(fx->pending[0]) *
	    (size_t)fx->npending);
	memmove(fx->bodies, fx->bodies + 1, sizeof(fx->bodies[0]) *
	    (size_t)fx->npending);
	fx->nanswered++;
}

#define LONG_CTYPE	1500
#define FLOW_CHUNK	1000
#define FLOW_CHUNKS	2000		/* 2 MB, against a 64 KiB max_output */

/* flow_write - write /flow's chunks until the server says to wait */
static void
flow_write(struct fx *fx)
{
	char	chunk[FLOW_CHUNK];
	int	rc;

	memset(chunk, 'f', sizeof(chunk));
	while (fx->flow_sent < FLOW_CHUNKS) {
		rc = http_stream_write(fx->flow, chunk, sizeof(chunk));
		assert_int_not_equal(rc, -1);	/* never cut off */
		fx->flow_sent++;
		if (rc == 1) {
			fx->flow_full++;
			return;
		}
	}
	http_stream_end(fx->flow);
}

static void
flow_drained(void *arg)
{
	struct fx	*fx = arg;

	fx->flow_drained++;
	flow_write(fx);
}

static void
flow_closed(void *arg)
{
	struct fx	*fx = arg;

	fx->flow_closed++;
}

static void
handler(struct http_conn *c, const struct http_request *r, void *arg)
{
	struct fx	*fx = arg;
	struct timeval	 tv = { 0, 20000 };
	char		*body = echo(r);

	fx->nreq++;
	if (r->target_len == 9 && memcmp(r->target, "/longtype", 9) == 0) {
		/* A head longer than any stack buffer of the server's. */
		char	ctype[LONG_CTYPE + 1];

		memset(ctype, 'a', LONG_CTYPE);
		ctype[LONG_CTYPE] = '\0';
		http_respond(c, 200, ctype, NULL, "x", 1);
		free(body);
		fx->nanswered++;
		return;
	}
	/* /stream/end and /stream/abort: a streamed answer, finished or
	 * cut off by its source. */
	if (r->target_len >= 7 && memcmp(r->target, "/stream", 7) == 0) {
		assert_int_equal(http_stream_begin(c, 200, "text/plain", NULL,
		    NULL), 0);
		assert_int_equal(http_stream_write(c, "part", 4), 0);
		if (r->target_len == 13 && memcmp(r->target, "/stream/abort",
		    13) == 0)
			http_stream_abort(c);
		else
			http_stream_end(c);
		free(body);
		fx->nanswered++;
		return;
	}
	if (r->target_len == 5 && memcmp(r->target, "/flow", 5) == 0) {
		assert_int_equal(http_stream_begin(c, 200, "text/plain",
		    flow_closed, fx), 0);
		http_stream_flow(c, flow_drained);
		fx->flow = c;
		flow_write(fx);
		free(body);
		fx->nanswered++;
		return;
	}
	/* A client "proves itself" by asking for /trust... */
	if (r->target_len >= 6 && memcmp(r->target, "/trust", 6) == 0)
		http_conn_trust(c);
	if (fx->mode == ANSWER_NOW) {
		http_respond(c, 200, "text/plain", NULL, body, strlen(body));
		free(body);
		fx->nanswered++;
		return;
	}
	assert_true(fx->npending < 16);
	fx->pending[fx->npending] = c;
	fx->bodies[fx->npending++] = body;
	event_base_once(fx->base, -1, EV_TIMEOUT, answer_one, fx, &tv);
}

/* decide_now - the late decision of the head hook: let the body come */
static void
decide_now(evutil_socket_t fd, short what, void *arg)
{
	struct fx	*fx = arg;

	http_continue(fx->deciding);
	fx->deciding = NULL;
}

/* stream_cb - a streamed body: keep it, pause, answer early or at its end */
static void
stream_cb(struct http_conn *c, const char *data, ssize_t len, void *arg)
{
	struct fx	*fx = arg;
	char		*body;

	/* after a stream broke, its handler hears nothing more */
	assert_false(fx->ended && fx->end < 0);
	if (len > 0) {
		assert_true(fx->ngot + (size_t)len <= sizeof(fx->got));
		memcpy(fx->got + fx->ngot, data, (size_t)len);
		fx->ngot += (size_t)len;
		fx->npieces++;
		if (fx->answer_at > 0 && fx->ngot >= fx->answer_at) {
			fx->ended++;
			fx->end = -100;	/* answered: nothing may follow */
			http_respond(c, 422, "text/plain", NULL, "bad line\n",
			    9);
		} else if (fx->pause_at > 0 && fx->ngot >= fx->pause_at &&
		    fx->paused == NULL) {
			http_body_pause(c);
			fx->paused = c;
		}
		return;
	}
	fx->ended++;
	fx->end = len;
	if (len < 0)
		return;
	body = xasprintf("got %zu", fx->ngot);
	http_respond(c, 200, "text/plain", NULL, body, strlen(body));
	free(body);
}

static void
head_hook(struct http_conn *c, const struct http_request *r, void *arg)
{
	struct fx	*fx = arg;
	struct timeval	 tv = { 0, 20000 };

	fx->nheads++;
	assert_null(r->body);
	if (fx->verdict == STREAM) {
		fx->ngot = 0;
		http_body_stream(c, fx->stream_max, stream_cb, fx);
	}
	else if (fx->verdict == GO_ON)
		http_continue(c);
	else if (fx->verdict == REFUSE)
		http_respond(c, 401, "text/plain", NULL, "no\n", 3);
	else {
		fx->deciding = c;
		event_base_once(fx->base, -1, EV_TIMEOUT, decide_now, fx, &tv);
	}
}

/* listen_any - a listening loopback socket on a free port */
static int
listen_any(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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

static int
server_setup(void **state)
{
	struct fx		*fx = xcalloc(1, sizeof(*fx));
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 5.0, 0, 0 };
	int			 fd;

	fx->base = event_base_new();
	assert_non_null(fx->base);
	fd = listen_any(&fx->port);
	fx->srv = http_server_new(fx->base, fd, &lim, handler, fx);
	*state = fx;
	return 0;
}

static int
server_teardown(void **state)
{
	struct fx	*fx = *state;

	while (fx->npending > 0)
		free(fx->bodies[--fx->npending]);
	http_server_free(fx->srv);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static struct cl *
cl_connect(struct fx *fx)
{
	struct sockaddr_in	 sin;
	struct cl		*c = xcalloc(1, sizeof(*c));

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)fx->port);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	return c;
}

static void
cl_close(struct cl *c)
{
	close(c->fd);
	free(c);
}

static void
cl_send(struct cl *c, const char *s)
{
	assert_int_equal(write(c->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* cl_poll - run the server a little, then take what arrived */
static void
cl_poll(struct fx *fx, struct cl *c)
{
	ssize_t	n = -1;

	pump(fx);
	while (!c->eof && c->len < sizeof(c->buf) &&
	    (n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len)) != 0) {
		if (n < 0) {
			if (errno == ECONNRESET)
				c->eof = 1;
			break;
		}
		c->len += (size_t)n;
	}
	if (n == 0)
		c->eof = 1;
}

/* cl_expect - the next bytes from the server are exactly want */
static void
cl_expect(struct fx *fx, struct cl *c, const char *want)
{
	size_t		 n = strlen(want);
	uint64_t	 end = now_mono_us() + WAIT_MS * 1000;

	while (c->len < n && !c->eof && now_mono_us() < end)
		cl_poll(fx, c);
	if (c->len < n || memcmp(c->buf, want, n) != 0)
		fail_msg("got \"%.*s\"%s\nwanted \"%s\"", (int)c->len, c->buf,
		    c->eof ? " then EOF" : "", want);
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* cl_expect_eof - the server closes, having sent nothing more */
static void
cl_expect_eof(struct fx *fx, struct cl *c)
{
	uint64_t	end = now_mono_us() + WAIT_MS * 1000;

	while (!c->eof && now_mono_us() < end)
		cl_poll(fx, c);
	assert_true(c->eof);
	assert_int_equal(c->len, 0);
}

/* cl_expect_quiet - for a while, nothing arrives and nothing closes */
static void
cl_expect_quiet(struct fx *fx, struct cl *c)
{
	int	i;

	for (i = 0; i < 10; i++)
		cl_poll(fx, c);
	assert_int_equal(c->len, 0);
	assert_false(c->eof);
}

/* response - the exact bytes of a 200 echo answer */
static const char *
response(const char *body, int close, int later)
{
	static char	buf[4][1024];
	static int	i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "HTTP/1.1 200 OK\r\n"
	    "Content-Length: %zu\r\nContent-Type: text/plain\r\n%s%s\r\n%s",
	    strlen(body), close ? "Connection: close\r\n" : "",
	    later ? "X-Later: 1\r\n" : "", body);
	return buf[i];
}

static void
test_server_get(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	cl_send(c, "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	cl_expect(fx, c, response("GET /hello?x=1 0:", 0, 0));
	cl_expect_quiet(fx, c);
	assert_int_equal(fx->nreq, 1);
	assert_int_equal(http_server_clients(fx->srv), 1);
	cl_close(c);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
}

/* A head that does not fit the server's buffer is sent whole, not cut. */
static void
test_server_long_head(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);
	char		 want[LONG_CTYPE + 128];
	int		 n;

	n = snprintf(want, sizeof(want), "HTTP/1.1 200 OK\r\nContent-Length: 1"
	    "\r\nContent-Type: %0*d\r\n\r\nx", LONG_CTYPE, 0);
	assert_true(n > 0 && (size_t)n < sizeof(want));
	memset(want + strlen("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	    "Content-Type: "), 'a', LONG_CTYPE);
	cl_send(c, "GET /longtype HTTP/1.1\r\nHost: t\r\n\r\n");
	cl_expect(fx, c, want);
	cl_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
	cl_expect(fx, c, response("GET /hello 0:", 0, 0));
	cl_close(c);
}

static void
test_server_keep_alive(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	cl_send(c, "GET /1 HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("GET /1 0:", 0, 0));
	cl_send(c, "POST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
	cl_expect(fx, c, response("POST /2 4:body", 0, 0));
	cl_send(c, "GET /3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	cl_expect(fx, c, response("GET /3 0:", 0, 0));
	cl_expect_quiet(fx, c);
	assert_int_equal(fx->nreq, 3);
	assert_int_equal(http_server_clients(fx->srv), 1);
	cl_close(c);
}

static void
test_server_pipelined(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	cl_send(c, "GET /a HTTP/1.1\r\n\r\n"
	    "PUT /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy"
	    "GET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n");
	cl_expect(fx, c, response("GET /a 0:", 0, 0));
	cl_expect(fx, c, response("PUT /b 2:xy", 0, 0));
	cl_expect(fx, c, response("GET /c 0:", 0, 0));
	cl_expect_quiet(fx, c);
	/* The rest of the fourth request arrives later. */
	cl_send(c, "Host: h\r\n\r\n");
	cl_expect(fx, c, response("GET /d 0:", 0, 0));
	assert_int_equal(fx->nreq, 4);
	cl_close(c);
}

static void
test_server_deferred(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	fx->mode = ANSWER_LATER;
	cl_send(c, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
	    "GET /c HTTP/1.1\r\nConnection: close\r\n\r\n");
	/* One request at a time: /b is not parsed while /a is pending. */
	WAIT_UNTIL(fx, fx->nreq == 1);
	assert_int_equal(fx->nanswered, 0);
	assert_int_equal(c->len, 0);
	cl_expect(fx, c, response("GET /a 0:", 0, 1));
	cl_expect(fx, c, response("GET /b 0:", 0, 1));
	cl_expect(fx, c, response("GET /c 0:", 1, 1));
	cl_expect_eof(fx, c);
	assert_int_equal(fx->nreq, 3);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
	cl_close(c);
}

static void
test_server_deferred_client_gone(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* The client leaves while its answer is pending: no crash, no leak. */
	fx->mode = ANSWER_LATER;
	cl_send(c, "GET /gone HTTP/1.1\r\n\r\n");
	WAIT_UNTIL(fx, fx->nreq == 1);
	cl_close(c);
	WAIT_UNTIL(fx, fx->nanswered == 1);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
}

static void
test_server_connection_close(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx), *c10 = cl_connect(fx);

	cl_send(c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n"
	    "GET /ignored HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("GET /bye 0:", 1, 0));
	cl_expect_eof(fx, c);
	/* HTTP/1.0 closes by default. */
	cl_send(c10, "GET /old HTTP/1.0\r\n\r\n");
	cl_expect(fx, c10, response("GET /old 0:", 1, 0));
	cl_expect_eof(fx, c10);
	assert_int_equal(fx->nreq, 2);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
	cl_close(c);
	cl_close(c10);
}

static void
test_server_max_clients(void **state)
{
	static const char	busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct fx		*fx = *state;
	struct cl		*c[3], *extra;
	int			 i;

	/* The fixture allows 3 clients; these prove themselves. */
	for (i = 0; i < 3; i++) {
		c[i] = cl_connect(fx);
		cl_send(c[i], "GET /trust HTTP/1.1\r\n\r\n");
		cl_expect(fx, c[i], response("GET /trust 0:", 0, 0));
	}
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 3);
	extra = cl_connect(fx);
	cl_expect(fx, extra, busy);
	cl_expect_eof(fx, extra);
	cl_close(extra);
	for (i = 0; i < 3; i++) {
		cl_send(c[i], "GET /in HTTP/1.1\r\n\r\n");
		cl_expect(fx, c[i], response("GET /in 0:", 0, 0));
	}
	/* One leaves: there is room again. */
	cl_close(c[0]);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 2);
	c[0] = cl_connect(fx);
	cl_send(c[0], "GET /again HTTP/1.1\r\n\r\n");
	cl_expect(fx, c[0], response("GET /again 0:", 0, 0));
	for (i = 0; i < 3; i++)
		cl_close(c[i]);
}

static void
test_server_make_room(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c[3], *extra;
	int		 i;

	/*
	 * Full of connections that sent nothing, half a head, or only
	 * untrusted requests: a new one takes the place of the one that
	 * waited longest, and is served.
	 */
	c[0] = cl_connect(fx);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 1);
	c[1] = cl_connect(fx);
	cl_send(c[1], "GET /half HTTP/1.1\r\n");
	c[2] = cl_connect(fx);
	cl_send(c[2], "GET /plain HTTP/1.1\r\n\r\n");
	cl_expect(fx, c[2], response("GET /plain 0:", 0, 0));
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 3);
	extra = cl_connect(fx);
	cl_send(extra, "GET /new HTTP/1.1\r\n\r\n");
	cl_expect(fx, extra, response("GET /new 0:", 0, 0));
	cl_expect_eof(fx, c[0]);
	/* The next one pushes out the half head, then the idle one. */
	cl_close(c[0]);
	c[0] = cl_connect(fx);
	cl_expect_eof(fx, c[1]);
	assert_int_equal(http_server_clients(fx->srv), 3);
	/* A connection with a request in hand is never pushed out. */
	fx->mode = ANSWER_LATER;
	cl_send(extra, "GET /slow HTTP/1.1\r\n\r\n");
	cl_send(c[0], "GET /slow2 HTTP/1.1\r\n\r\n");
	WAIT_UNTIL(fx, fx->nreq == 4);
	cl_close(c[1]);
	c[1] = cl_connect(fx);
	cl_expect_eof(fx, c[2]);
	cl_expect(fx, extra, response("GET /slow 0:", 0, 1));
	cl_expect(fx, c[0], response("GET /slow2 0:", 0, 1));
	for (i = 0; i < 3; i++)
		cl_close(c[i]);
	cl_close(extra);
}

static void
test_server_parse_error(void **state)
{
	static const char	e400[] = "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Length: 16\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n400 Bad Request\n";
	struct fx		*fx = *state;
	struct cl		*c = cl_connect(fx);

	/* A good request is answered, then the bad one closes. */
	cl_send(c, "GET /fine HTTP/1.1\r\n\r\nGET nope HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("GET /fine 0:", 0, 0));
	cl_expect(fx, c, e400);
	cl_expect_eof(fx, c);
	assert_int_equal(fx->nreq, 1);
	cl_close(c);
	c = cl_connect(fx);
	cl_send(c, "POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 413 Content Too Large\r\n"
	    "Content-Length: 22\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n413 Content Too Large\n");
	cl_expect_eof(fx, c);
	cl_close(c);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
	assert_int_equal(fx->nreq, 1);
}

static void
test_server_idle_timeout(void **state)
{
	struct fx		*fx = *state;
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 0.05, 0, 0 };
	struct cl		*c;

	/* Between requests, idle_timeout: closed without a word. */
	http_server_set_limits(fx->srv, &lim);
	c = cl_connect(fx);
	cl_send(c, "GET /one HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("GET /one 0:", 0, 0));
	cl_expect_eof(fx, c);
	assert_int_equal(fx->nreq, 1);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
	cl_close(c);
}

/* cl_trickle - send a byte every 20 ms until an answer or EOF comes */
static void
cl_trickle(struct fx *fx, struct cl *c)
{
	uint64_t	end = now_mono_us() + WAIT_MS * 1000, next = 0;

	while (c->len == 0 && !c->eof && now_mono_us() < end) {
		if (now_mono_us() >= next) {
			/* The server may be gone: no SIGPIPE, no check. */
			(void)send(c->fd, "x", 1, MSG_NOSIGNAL);
			next = now_mono_us() + 20000;
		}
		cl_poll(fx, c);
	}
}

static void
test_server_header_deadline(void **state)
{
	static const char	e408[] = "HTTP/1.1 408 Request Timeout\r\n"
	    "Content-Length: 20\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\n408 Request Timeout\n";
	struct fx		*fx = *state;
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 60, 0.2, 0 };
	struct cl		*c, *quiet;
	uint64_t		 t0;

	/* A byte every 20 ms does not move the head's deadline. */
	http_server_set_limits(fx->srv, &lim);
	t0 = now_mono_us();
	quiet = cl_connect(fx);
	c = cl_connect(fx);
	cl_send(c, "GET /slowloris HTTP/1.1\r\nX-A: ");
	cl_trickle(fx, c);
	assert_true(now_mono_us() - t0 < 1000000);
	cl_expect(fx, c, e408);
	cl_expect_eof(fx, c);
	/* One that sent nothing at all is closed without a word. */
	cl_expect_eof(fx, quiet);
	assert_int_equal(fx->nreq, 0);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
	cl_close(c);
	cl_close(quiet);
}

static void
test_server_body_deadline(void **state)
{
	struct fx		*fx = *state;
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 60, 60, 0.2 };
	struct cl		*c;
	uint64_t		 t0 = now_mono_us();

	/* A body trickled far below HTTP_BODY_MIN_RATE gets 408. */
	http_server_set_limits(fx->srv, &lim);
	c = cl_connect(fx);
	cl_send(c, "PUT /b HTTP/1.1\r\nContent-Length: 1000\r\n\r\nab");
	cl_trickle(fx, c);
	assert_true(now_mono_us() - t0 < 1000000);
	cl_expect(fx, c, "HTTP/1.1 408 Request Timeout\r\n");
	assert_int_equal(fx->nreq, 0);
	cl_close(c);
}

static void
test_server_head(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* The handler sees GET; the answer has its headers, no body. */
	cl_send(c, "HEAD /h?x HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n"
	    "Content-Type: text/plain\r\n\r\n");
	cl_expect(fx, c, response("GET /after 0:", 0, 0));
	cl_expect_quiet(fx, c);
	assert_int_equal(fx->nreq, 2);
	/* Answered later, and as the last of a connection. */
	fx->mode = ANSWER_LATER;
	cl_send(c, "HEAD /late HTTP/1.1\r\nConnection: close\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
	    "Content-Type: text/plain\r\nConnection: close\r\n"
	    "X-Later: 1\r\n\r\n");
	cl_expect_eof(fx, c);
	cl_close(c);
}

static void
test_server_hook_refuses(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* Refused from the head: no 100 Continue, no body read, closed. */
	http_server_set_head_hook(fx->srv, head_hook, fx);
	fx->verdict = REFUSE;
	cl_send(c, "POST /up HTTP/1.1\r\nContent-Length: 1000\r\n"
	    "Expect: 100-continue\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n"
	    "Content-Type: text/plain\r\nConnection: close\r\n\r\nno\n");
	/* What it sends anyway is drained, then the connection closes. */
	cl_send(c, "0123456789");
	cl_expect_eof(fx, c);
	assert_int_equal(fx->nheads, 1);
	assert_int_equal(fx->nreq, 0);
	cl_close(c);
	/* A body that came with its head is not shown to the hook. */
	c = cl_connect(fx);
	cl_send(c, "POST /whole HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
	cl_expect(fx, c, response("POST /whole 2:ok", 0, 0));
	assert_int_equal(fx->nheads, 1);
	cl_close(c);
}

static void
test_server_hook_continues(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* Decided later: 100 Continue, then the body, then the answer. */
	http_server_set_head_hook(fx->srv, head_hook, fx);
	fx->verdict = DECIDE_LATER;
	cl_send(c, "PUT /up HTTP/1.1\r\nContent-Length: 4\r\n"
	    "Expect: 100-continue\r\n\r\n");
	WAIT_UNTIL(fx, fx->nheads == 1);
	assert_int_equal(c->len, 0);
	cl_expect(fx, c, "HTTP/1.1 100 Continue\r\n\r\n");
	cl_send(c, "body");
	cl_expect(fx, c, response("PUT /up 4:body", 0, 0));
	/* Without Expect, part of the body first: no 100 Continue. */
	fx->verdict = GO_ON;
	cl_send(c, "PUT /more HTTP/1.1\r\nContent-Length: 4\r\n\r\nbo");
	WAIT_UNTIL(fx, fx->nheads == 2);
	cl_send(c, "dy");
	cl_expect(fx, c, response("PUT /more 4:body", 0, 0));
	cl_expect_quiet(fx, c);
	cl_close(c);
}

static void
test_server_free_with_clients(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx), *d = cl_connect(fx);

	/* Teardown frees the server with open connections: no leak. */
	cl_send(c, "GET /x HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("GET /x 0:", 0, 0));
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 2);
	cl_send(d, "GET /partial");
	cl_poll(fx, d);
	cl_close(c);
	cl_close(d);
}

/*
 * Bodies streamed to the handler.
 */

/* stream_setup - every head to the hook, which streams bodies */
static int
stream_setup(void **state)
{
	struct fx	*fx;

	server_setup(state);
	fx = *state;
	http_server_set_head_hook(fx->srv, head_hook, fx);
	http_server_set_streaming(fx->srv, 1 << 30);
	fx->verdict = STREAM;
	fx->stream_max = sizeof(fx->got);
	return 0;
}

/* cl_send_all - write all of s[0..n), running the server when it is full */
static void
cl_send_all(struct fx *fx, struct cl *c, const char *s, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(c->fd, s, n)) < 0) {
			assert_true(errno == EAGAIN);
			pump(fx);
			continue;
		}
		s += w;
		n -= (size_t)w;
	}
}

/* pump_for - run the server for ms milliseconds */
static void
pump_for(struct fx *fx, unsigned ms)
{
	uint64_t	end = now_mono_us() + ms * 1000;

	while (now_mono_us() < end)
		pump(fx);
}

static void
test_stream_content_length(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);
	char		*big = xmalloc(300000);
	size_t		 i;
	int		 pieces;

	/* The body comes in pieces as it arrives, then its end. */
	cl_send(c, "PUT /s HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123");
	WAIT_UNTIL(fx, fx->ngot == 4);
	pieces = fx->npieces;
	cl_send(c, "456");
	WAIT_UNTIL(fx, fx->ngot == 7);
	assert_true(fx->npieces > pieces);
	assert_false(fx->ended);
	/* what follows the body is the next request, not body */
	cl_send(c, "789GET /after HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
	    "Content-Type: text/plain\r\n\r\ngot 10");
	assert_memory_equal(fx->got, "0123456789", 10);
	/* keep-alive: the GET had no body; its end is told at once */
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: text/plain\r\n\r\ngot 0");
	assert_int_equal(fx->nheads, 2);
	assert_int_equal(fx->ended, 2);
	assert_int_equal(fx->end, 0);
	/* A large one: all of it, in order, never held whole. */
	for (i = 0; i < 300000; i++)
		big[i] = (char)('a' + i % 23);
	cl_send(c, "POST /big HTTP/1.1\r\nContent-Length: 300000\r\n\r\n");
	cl_send_all(fx, c, big, 300000);
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
	    "Content-Type: text/plain\r\n\r\ngot 300000");
	assert_memory_equal(fx->got, big, 300000);
	cl_expect_quiet(fx, c);
	free(big);
	cl_close(c);
}

static void
test_stream_chunked(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* curl -T - sends this, with Expect: 100-continue. */
	cl_send(c, "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Expect: 100-continue\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 100 Continue\r\n\r\n");
	cl_send(c, "4\r\nWiki\r\n5;ext=1\r\npe");
	WAIT_UNTIL(fx, fx->ngot == 6);
	cl_send(c, "dia\r\n0\r\nX-Trailer: 1\r\n\r\nGET /n HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: text/plain\r\n\r\ngot 9");
	assert_memory_equal(fx->got, "Wikipedia", 9);
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: text/plain\r\n\r\ngot 0");
	assert_int_equal(fx->ended, 2);
	assert_int_equal(fx->end, 0);
	cl_close(c);
	/* Bad framing: the handler is told, the client gets 400. */
	c = cl_connect(fx);
	cl_send(c, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabcX");
	cl_expect(fx, c, "HTTP/1.1 400 Bad Request\r\n");
	assert_int_equal(fx->end, HTTP_BODY_ABORT);
	cl_close(c);
}

static void
test_stream_pause_resume(void **state)
{
	struct fx		*fx = *state;
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 5.0, 0, 0.2 };
	struct cl		*c = cl_connect(fx);
	int			 pieces;

	http_server_set_limits(fx->srv, &lim);
	fx->pause_at = 2;
	cl_send(c, "PUT /p HTTP/1.1\r\nContent-Length: 8\r\n\r\nab");
	WAIT_UNTIL(fx, fx->paused != NULL);
	pieces = fx->npieces;
	/* Paused: nothing more is handed on, and no deadline runs. */
	cl_send(c, "cdef");
	pump_for(fx, 600);
	assert_int_equal(fx->npieces, pieces);
	assert_int_equal(fx->ngot, 2);
	assert_false(fx->ended);
	assert_int_equal(c->len, 0);
	http_body_resume(fx->paused);
	assert_int_equal(fx->ngot, 2);	/* not from inside resume */
	WAIT_UNTIL(fx, fx->ngot == 6);
	cl_send(c, "gh");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: text/plain\r\n\r\ngot 8");
	assert_memory_equal(fx->got, "abcdefgh", 8);
	cl_close(c);
}

static void
test_stream_deadline(void **state)
{
	struct fx		*fx = *state;
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 5.0, 0, 0.3 };
	struct cl		*c = cl_connect(fx);
	int			 i;

	/* A byte every 100 ms for a second: progress keeps it going. */
	http_server_set_limits(fx->srv, &lim);
	cl_send(c, "PUT /d HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
	for (i = 0; i < 10; i++) {
		cl_send(c, "x");
		pump_for(fx, 100);
	}
	assert_false(fx->ended);
	assert_int_equal(fx->ngot, 10);
	/* Then nothing: the handler is told, the client gets 408. */
	cl_expect(fx, c, "HTTP/1.1 408 Request Timeout\r\n");
	assert_true(fx->ended);
	assert_int_equal(fx->end, HTTP_BODY_ABORT);
	cl_close(c);
}

static void
test_stream_too_large(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* Content-Length over the stream's limit: told, 413, nothing read. */
	fx->stream_max = 5;
	cl_send(c, "PUT /l HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdef");
	cl_expect(fx, c, "HTTP/1.1 413 Content Too Large\r\n");
	assert_int_equal(fx->end, HTTP_BODY_TOO_LARGE);
	assert_int_equal(fx->ngot, 0);
	cl_close(c);
	/* A chunked one that grows over it: told once past it. */
	fx->ended = 0;
	fx->end = 0;
	c = cl_connect(fx);
	cl_send(c, "PUT /l HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\r\n");
	WAIT_UNTIL(fx, fx->ngot == 3);
	cl_send(c, "3\r\ndef\r\n");
	cl_expect(fx, c, "HTTP/1.1 413 Content Too Large\r\n");
	assert_int_equal(fx->end, HTTP_BODY_TOO_LARGE);
	assert_int_equal(fx->ngot, 3);
	cl_close(c);
	/* A head over max_stream is refused by the parser, as ever. */
	fx->ended = 0;
	fx->end = 0;
	c = cl_connect(fx);
	cl_send(c, "PUT /l HTTP/1.1\r\nContent-Length: 2147483648\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 413 Content Too Large\r\n");
	assert_false(fx->ended);
	cl_close(c);
}

static void
test_stream_client_gone(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	cl_send(c, "PUT /g HTTP/1.1\r\nContent-Length: 100\r\n\r\nhalf");
	WAIT_UNTIL(fx, fx->ngot == 4);
	cl_close(c);
	WAIT_UNTIL(fx, fx->ended);
	assert_int_equal(fx->end, HTTP_BODY_ABORT);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
}

static void
test_stream_answer_early(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* 422 after a bad line: the rest is not read, and it closes. */
	fx->answer_at = 3;
	cl_send(c, "POST /e HTTP/1.1\r\nContent-Length: 100000\r\n\r\nbad");
	cl_expect(fx, c, "HTTP/1.1 422 Unprocessable Content\r\n"
	    "Content-Length: 9\r\nContent-Type: text/plain\r\n"
	    "Connection: close\r\n\r\nbad line\n");
	cl_send(c, "more of the body, unread");
	cl_expect_eof(fx, c);
	assert_int_equal(fx->ngot, 3);
	cl_close(c);
}

static void
test_stream_whole_chunked(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* Read whole (http_continue), a chunked body is 411. */
	fx->verdict = GO_ON;
	cl_send(c, "POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 411 Length Required\r\n");
	assert_int_equal(fx->nreq, 0);
	cl_close(c);
	/* So is one over max_body, though under max_stream. */
	c = cl_connect(fx);
	cl_send(c, "POST /w HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 413 Content Too Large\r\n");
	cl_close(c);
	/* A whole one is shown to the hook first, then handled. */
	c = cl_connect(fx);
	cl_send(c, "POST /w HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
	    "HEAD /h HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("POST /w 2:ok", 0, 0));
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
	    "Content-Type: text/plain\r\n\r\n");
	assert_int_equal(fx->nheads, 4);
	assert_int_equal(fx->nreq, 2);
	/* Refused from a head that was the whole request: it serves on. */
	fx->verdict = REFUSE;
	cl_send(c, "GET /r HTTP/1.1\r\n\r\nGET /r2 HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n"
	    "Content-Type: text/plain\r\n\r\nno\n");
	cl_expect(fx, c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n"
	    "Content-Type: text/plain\r\n\r\nno\n");
	cl_expect_quiet(fx, c);
	assert_int_equal(fx->nheads, 6);
	/* ... and reads what comes later */
	cl_send(c, "GET /r3 HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n"
	    "Content-Type: text/plain\r\n\r\nno\n");
	assert_int_equal(fx->nheads, 7);
	cl_close(c);
}

static void
test_no_hook_chunked(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	/* A server that does not stream answers a chunked body 411. */
	cl_send(c, "POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 411 Length Required\r\nContent-Length: 20"
	    "\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
	    "411 Length Required\n");
	cl_expect_eof(fx, c);
	cl_close(c);
}

/* A streamed answer whose source failed ends without its last chunk, and
 * the connection closes: the client cannot take it for a whole body. */
static void
test_stream_abort(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx);

	cl_send(c, "GET /stream/end HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n"
	    "4\r\npart\r\n0\r\n\r\n");
	cl_send(c, "GET /stream/abort HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n"
	    "4\r\npart\r\n");
	cl_expect_eof(fx, c);
	cl_close(c);
}

/* flow_server - max_output 64 KiB, idle_timeout 0.3 s; the client's end
 * of a socketpair with small buffers, served from its first byte */
static struct http_server *
flow_server(struct fx *fx, struct cl **out)
{
	struct http_limits	 lim = { MAX_BODY, 64 << 10, 3, 0.3, 0, 0 };
	struct http_server	*srv;
	struct cl		*c = xcalloc(1, sizeof(*c));
	int			 sv[2], small = 16384;

	srv = http_server_new(fx->base, -1, &lim, handler, fx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(http_server_adopt(srv, sv[0], NULL, NULL, 0), 0);
	c->fd = sv[1];
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	*out = c;
	return srv;
}

/* A slow client of a stream under flow control gets all of it: the
 * writer waits (write answers 1, drained resumes it), nothing is cut. */
static void
test_stream_flow_slow_client(void **state)
{
	struct fx		*fx = *state;
	struct cl		*c;
	struct http_server	*srv = flow_server(fx, &c);
	char			 buf[4096];
	size_t			 got = 0, want;
	uint64_t		 end = now_mono_us() + 5 * WAIT_MS * 1000;
	ssize_t			 n;

	want = strlen("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n") +
	    FLOW_CHUNKS * (strlen("3e8\r\n") + FLOW_CHUNK + 2) + 5;
	cl_send(c, "GET /flow HTTP/1.1\r\n\r\n");
	while (got < want && now_mono_us() < end) {
		pump(fx);
		if ((n = read(c->fd, buf, sizeof(buf))) > 0)
			got += (size_t)n;
		else if (n == 0)
			break;
	}
	assert_int_equal(got, want);
	assert_int_equal(fx->flow_sent, FLOW_CHUNKS);
	assert_true(fx->flow_full > 0);
	assert_int_equal(fx->flow_drained, fx->flow_full);
	assert_int_equal(fx->flow_closed, 0);
	/* the stream is over: the connection serves on */
	assert_int_equal(http_server_clients(srv), 1);
	cl_close(c);
	http_server_free(srv);
}

/* A client that takes nothing of a full stream is cut off after
 * idle_timeout, and the writer is told (closed), not left waiting. */
static void
test_stream_flow_stalled_client(void **state)
{
	struct fx		*fx = *state;
	struct cl		*c;
	struct http_server	*srv = flow_server(fx, &c);
	uint64_t		 t0;

	cl_send(c, "GET /flow HTTP/1.1\r\n\r\n");
	WAIT_UNTIL(fx, fx->flow_full == 1);
	t0 = now_mono_us();
	WAIT_UNTIL(fx, fx->flow_closed == 1);
	assert_true(now_mono_us() - t0 >= 250000);
	assert_int_equal(fx->flow_drained, 0);
	assert_true(fx->flow_sent < FLOW_CHUNKS);
	assert_int_equal(http_server_clients(srv), 0);
	cl_close(c);
	http_server_free(srv);
}

static void
test_adopt(void **state)
{
	struct fx		*fx = *state;
	struct http_limits	 lim = { MAX_BODY, 1 << 20, 3, 5.0, 0, 0 };
	struct http_server	*srv;
	struct cl		*c = xcalloc(1, sizeof(*c));
	int			 sv[2];

	/* No listener of its own: a socket with its first bytes read. */
	srv = http_server_new(fx->base, -1, &lim, handler, fx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(http_server_adopt(srv, sv[0], NULL, "GET /ad", 7), 0);
	c->fd = sv[1];
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(http_server_clients(srv), 1);
	cl_send(c, "opted HTTP/1.1\r\n\r\n");
	cl_expect(fx, c, response("GET /adopted 0:", 0, 0));
	/* Graceful stop: an idle connection closes at once. */
	http_server_shutdown(srv);
	assert_int_equal(http_server_clients(srv), 0);
	cl_expect_eof(fx, c);
	cl_close(c);
	http_server_free(srv);
}

static void
test_shutdown_busy(void **state)
{
	struct fx	*fx = *state;
	struct cl	*c = cl_connect(fx), *idle = cl_connect(fx);

	/* A request in hand is answered (with close), then it closes. */
	fx->mode = ANSWER_LATER;
	cl_send(c, "GET /slow HTTP/1.1\r\n\r\n");
	WAIT_UNTIL(fx, fx->npending == 1);
	http_server_shutdown(fx->srv);
	cl_expect_eof(fx, idle);
	cl_expect(fx, c, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
	    "Content-Type: text/plain\r\nConnection: close\r\n"
	    "X-Later: 1\r\n\r\nGET /slow 0:");
	cl_expect_eof(fx, c);
	WAIT_UNTIL(fx, http_server_clients(fx->srv) == 0);
	cl_close(c);
	cl_close(idle);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_simple_get, parser_teardown),
		cmocka_unit_test_teardown(test_keep_alive, parser_teardown),
		cmocka_unit_test_teardown(test_path_query, parser_teardown),
		cmocka_unit_test_teardown(test_headers, parser_teardown),
		cmocka_unit_test_teardown(test_partial, parser_teardown),
		cmocka_unit_test_teardown(test_pipelined, parser_teardown),
		cmocka_unit_test_teardown(test_body, parser_teardown),
		cmocka_unit_test_teardown(test_errors_body_length,
		    parser_teardown),
		cmocka_unit_test_teardown(test_errors_request_line,
		    parser_teardown),
		cmocka_unit_test_teardown(test_errors_headers,
		    parser_teardown),
		cmocka_unit_test_teardown(test_errors_nul_in_value,
		    parser_teardown),
		cmocka_unit_test_teardown(test_errors_too_large,
		    parser_teardown),
		cmocka_unit_test_teardown(test_chunked_head, parser_teardown),
		cmocka_unit_test(test_chunked_decode),
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_query),
		cmocka_unit_test_setup_teardown(test_server_get, server_setup,
		    server_teardown),
		cmocka_unit_test_setup_teardown(test_server_long_head,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_keep_alive,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_pipelined,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_deferred,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(
		    test_server_deferred_client_gone, server_setup,
		    server_teardown),
		cmocka_unit_test_setup_teardown(test_server_connection_close,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_max_clients,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_make_room,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_parse_error,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_idle_timeout,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_header_deadline,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_body_deadline,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_head,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_hook_refuses,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_hook_continues,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_server_free_with_clients,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_content_length,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_chunked,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_pause_resume,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_deadline,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_too_large,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_client_gone,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_answer_early,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_whole_chunked,
		    stream_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_no_hook_chunked,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_abort,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(test_stream_flow_slow_client,
		    server_setup, server_teardown),
		cmocka_unit_test_setup_teardown(
		    test_stream_flow_stalled_client, server_setup,
		    server_teardown),
		cmocka_unit_test_setup_teardown(test_adopt, server_setup,
		    server_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_busy,
		    server_setup, server_teardown),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
