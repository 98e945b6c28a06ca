/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_http - libFuzzer target for the HTTP request parser.  The input is
 * read as pipelined requests, request after request while they parse, with
 * a max_body taken from the first byte.  Every accepted request must point
 * inside the input and be consistent; every error must carry one of the
 * documented statuses; a request accepted whole must not be refused when
 * its last byte is still missing (the answer may not depend on how TCP cut
 * the stream).
 *
 * A request whose head says its body is chunked has the rest of the input
 * decoded as that body; with bit 2 of the first byte set the whole input
 * is.  The decoder must hand out only bytes inside what it was given, take
 * no more than that, and give the same body and the same verdict whether
 * the input comes whole, a byte at a time, or cut where the input says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* inside - [p, p + n) lies in [buf, buf + len) */
static int
inside(const char *buf, size_t len, const char *p, size_t n)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/* check_request - what http_parse_request promises about a request */
static void
check_request(const char *buf, size_t len, const struct http_request *r,
    size_t used, size_t max_body)
{
	size_t	vlen;
	int	i;

	if (used == 0 || used > len || r->body_len > max_body ||
	    !inside(buf, used, r->method, r->method_len) ||
	    !inside(buf, used, r->target, r->target_len) ||
	    r->path_len > r->target_len || r->method_len == 0 ||
	    r->target_len == 0 || (r->minor != 0 && r->minor != 1) ||
	    r->nheaders < 0 || r->nheaders > HTTP_HEADERS_MAX ||
	    (r->body_len > 0 && !inside(buf, used, r->body, r->body_len)))
		abort();
	for (i = 0; i < r->nheaders; i++)
		if (!inside(buf, used, r->headers[i].name,
		    r->headers[i].name_len) || r->headers[i].name_len == 0 ||
		    !inside(buf, used, r->headers[i].value,
		    r->headers[i].value_len))
			abort();
	(void)http_header(r, "Content-Length", &vlen);
	(void)http_path_is(r, "/metrics");
	(void)http_method_is(r, "GET");
}

/* check_prefix - the same request cut one byte short is only "more" */
static void
check_prefix(const char *buf, size_t used, size_t max_body)
{
	struct http_request	 r;
	char			*cut = malloc(used - 1 + 1);
	size_t			 u;
	int			 status;

	if (cut == NULL)
		abort();
	memcpy(cut, buf, used - 1);
	if (http_parse_request(cut, used - 1, max_body, &r, &u, &status) !=
	    HTTP_PARSE_MORE)
		abort();
	free(cut);
}

struct decoded {
	char			*out;
	size_t			 len;
	size_t			 used;
	enum http_chunked_rc	 rc;
};

/* decode - the chunked body in buf[0..len), fed step bytes at a time */
static void
decode(const char *buf, size_t len, size_t step, struct decoded *d)
{
	struct http_chunked	 k;
	const char		*data;
	char			*piece;
	size_t			 off = 0, n, used, dlen;

	memset(&k, 0, sizeof(k));
	d->out = malloc(len + 1);
	d->len = d->used = 0;
	d->rc = HTTP_CHUNKED_MORE;
	if (d->out == NULL)
		abort();
	while (off < len && (d->rc == HTTP_CHUNKED_MORE ||
	    d->rc == HTTP_CHUNKED_DATA)) {
		n = step == 0 || len - off < step ? len - off : step;
		if ((piece = malloc(n)) == NULL)
			abort();
		memcpy(piece, buf + off, n);	/* exact size: ASan sees more */
		for (;;) {
			d->rc = http_chunked_next(&k, piece, n, &used, &data,
			    &dlen);
			if (used > n || (d->rc == HTTP_CHUNKED_MORE &&
			    used != n))
				abort();
			if (d->rc == HTTP_CHUNKED_DATA) {
				if (dlen == 0 || !inside(piece, used, data,
				    dlen) || data + dlen != piece + used)
					abort();
				memcpy(d->out + d->len, data, dlen);
				d->len += dlen;
			} else if (dlen != 0 || data != NULL)
				abort();
			memmove(piece, piece + used, n - used);
			n -= used;
			off += used;
			d->used += used;
			if (d->rc != HTTP_CHUNKED_DATA || n == 0)
				break;
		}
		free(piece);
	}
}

/* check_chunked - the body and verdict do not depend on the cuts */
static void
check_chunked(const char *buf, size_t len, size_t step)
{
	struct decoded	whole, bytes, cut;

	decode(buf, len, 0, &whole);
	decode(buf, len, 1, &bytes);
	decode(buf, len, step, &cut);
	if (whole.used > len || whole.len > whole.used)
		abort();
	if (whole.rc == HTTP_CHUNKED_DATA)
		whole.rc = HTTP_CHUNKED_MORE;	/* all taken, as data */
	if (bytes.rc == HTTP_CHUNKED_DATA)
		bytes.rc = HTTP_CHUNKED_MORE;
	if (cut.rc == HTTP_CHUNKED_DATA)
		cut.rc = HTTP_CHUNKED_MORE;
	if (whole.rc != bytes.rc || whole.rc != cut.rc ||
	    whole.len != bytes.len || whole.len != cut.len ||
	    memcmp(whole.out, bytes.out, whole.len) != 0 ||
	    memcmp(whole.out, cut.out, whole.len) != 0)
		abort();
	/* where it ended (DONE, ERROR) does not move either */
	if (whole.rc != HTTP_CHUNKED_MORE && (whole.used != bytes.used ||
	    whole.used != cut.used))
		abort();
	free(whole.out);
	free(bytes.out);
	free(cut.out);
}

static int
status_ok(int status)
{
	return status == 400 || status == 413 || status == 431 ||
	    status == 501 || status == 505;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 bodies[] = { 0, 16, 1024, 1 << 20 };
	struct http_request	 r;
	const char		*buf = (const char *)data;
	size_t			 off = 0, used, max_body;
	int			 status, n = 0;

	if (size == 0)
		return 0;
	if (data[0] & 4) {
		check_chunked(buf + 1, size - 1, (data[0] >> 3) + 1);
		return 0;
	}
	max_body = bodies[data[0] & 3];
	for (;;) {
		switch (http_parse_request(buf + off, size - off, max_body, &r,
		    &used, &status)) {
		case HTTP_PARSE_OK:
			check_request(buf + off, size - off, &r, used,
			    max_body);
			if (n++ == 0)
				check_prefix(buf + off, used, max_body);
			off += used;
			continue;
		case HTTP_PARSE_MORE:
			if (r.chunked) {
				check_request(buf + off, size - off, &r, used,
				    max_body);
				check_chunked(buf + off + used, size - off -
				    used, (data[0] >> 3) + 1);
			}
			return 0;
		case HTTP_PARSE_ERROR:
			if (!status_ok(status))
				abort();
			return 0;
		default:
			abort();
		}
	}
}
