/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_body - request bodies that are not read whole: the chunked body
 * decoder (a pure function over a buffer, for unit tests and fuzzing),
 * and bodies streamed to their handler as they arrive (http_body_stream),
 * with pause and resume for a handler that cannot take more yet, and the
 * deadlines a body is read against.  The connection they come on is
 * http.c's; http_int.h is what the two share.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "http.h"
#include "http_int.h"
#include "log.h"
#include "util.h"

#define BODY_TIMEOUT_S		10.0	/* when the limits give 0 */

static int	body_give(struct http_conn *, const char *, size_t);
static int	body_chunked(struct http_conn *);

/*
 * The chunked body decoder.  One byte at a time through the framing; the
 * data of a chunk is handed out whole, as it lies in the buffer.
 */
enum {
	CK_SIZE0,	/* the first hex digit of a size */
	CK_SIZE,	/* more digits, extensions or the line's end */
	CK_EXT,		/* a chunk extension, ignored */
	CK_SIZE_LF,	/* "\n" after "\r" */
	CK_DATA,
	CK_DATA_CR,	/* the CRLF after a chunk's data */
	CK_DATA_LF,
	CK_TRAILER,	/* the start of a trailer line or the final CRLF */
	CK_TRAILER_LINE,
	CK_TRAILER_LF,
	CK_LAST_LF,
	CK_DONE,
	CK_ERROR,
};

/* is_ctl - a control character a framing line may not hold */
static int
is_ctl(int c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* chunk_size_byte - one byte of a size line; -1 if malformed */
static int
chunk_size_byte(struct http_chunked *k, int c)
{
	int	h = http_hexval(c);

	if (++k->line > HTTP_CHUNK_LINE_MAX)
		return -1;
	switch (k->state) {
	case CK_SIZE0:
		if (h < 0)
			return -1;
		k->left = (uint64_t)h;
		k->state = CK_SIZE;
		return 0;
	case CK_SIZE:
		if (h >= 0) {
			if (k->left >> 56)	/* no body is that long */
				return -1;
			k->left = k->left << 4 | (uint64_t)h;
			return 0;
		}
		if (c == ';' || c == ' ' || c == '\t')
			k->state = CK_EXT;
		else if (c == '\r')
			k->state = CK_SIZE_LF;
		else if (c != '\n')
			return -1;
		break;
	case CK_EXT:
		if (c == '\r')
			k->state = CK_SIZE_LF;
		else if (c != '\n')
			return is_ctl(c) ? -1 : 0;
		break;
	case CK_SIZE_LF:
		if (c != '\n')
			return -1;
		break;
	}
	if (c == '\n') {
		k->line = 0;
		k->state = k->left == 0 ? CK_TRAILER : CK_DATA;
	}
	return 0;
}

/* chunk_trailer_byte - one byte of the trailers; -1 if malformed */
static int
chunk_trailer_byte(struct http_chunked *k, int c)
{
	if (++k->trailer > HTTP_HEADER_BYTES_MAX)
		return -1;
	switch (k->state) {
	case CK_TRAILER:
		if (c == '\r')
			k->state = CK_LAST_LF;
		else if (c == '\n')
			k->state = CK_DONE;
		else if (is_ctl(c) || c == ' ')
			return -1;
		else
			k->state = CK_TRAILER_LINE;
		return 0;
	case CK_TRAILER_LINE:
		if (c == '\r')
			k->state = CK_TRAILER_LF;
		else if (c == '\n')
			k->state = CK_TRAILER;
		else if (is_ctl(c))
			return -1;
		return 0;
	case CK_TRAILER_LF:
		if (c != '\n')
			return -1;
		k->state = CK_TRAILER;
		return 0;
	case CK_LAST_LF:
		if (c != '\n')
			return -1;
		k->state = CK_DONE;
		return 0;
	}
	return -1;
}

/* chunk_byte - one byte of framing; -1 if malformed */
static int
chunk_byte(struct http_chunked *k, int c)
{
	switch (k->state) {
	case CK_SIZE0:
	case CK_SIZE:
	case CK_EXT:
	case CK_SIZE_LF:
		return chunk_size_byte(k, c);
	case CK_DATA_CR:
		if (c == '\r') {
			k->state = CK_DATA_LF;
			return 0;
		}
		/* FALLTHROUGH */
	case CK_DATA_LF:
		if (c != '\n')
			return -1;
		k->state = CK_SIZE0;
		return 0;
	default:
		return chunk_trailer_byte(k, c);
	}
}

/* http_chunked_next - decode what came of a chunked body (http.h) */
enum http_chunked_rc
http_chunked_next(struct http_chunked *k, const char *buf, size_t len,
    size_t *used, const char **data, size_t *dlen)
{
	size_t	i = 0, n;

	*data = NULL;
	*dlen = 0;
	while (i < len && k->state != CK_DONE && k->state != CK_ERROR) {
		if (k->state == CK_DATA) {
			n = len - i < k->left ? len - i : (size_t)k->left;
			if ((k->left -= n) == 0)
				k->state = CK_DATA_CR;
			*data = buf + i;
			*dlen = n;
			*used = i + n;
			return HTTP_CHUNKED_DATA;
		}
		if (chunk_byte(k, (unsigned char)buf[i++]) == -1)
			k->state = CK_ERROR;
	}
	*used = i;
	if (k->state == CK_DONE)
		return HTTP_CHUNKED_DONE;
	return k->state == CK_ERROR ? HTTP_CHUNKED_ERROR : HTTP_CHUNKED_MORE;
}

/*
 * Bodies streamed to their handler.
 */

/* http_body_cap - the largest Content-Length a head may announce */
size_t
http_body_cap(const struct http_server *srv)
{
	if (!srv->streaming || srv->max_stream <= srv->limits.max_body)
		return srv->limits.max_body;
	return srv->max_stream > SIZE_MAX ? SIZE_MAX : (size_t)srv->max_stream;
}

/* http_body_tell - the stream is over (0, or why not): the last call */
void
http_body_tell(struct http_conn *c, ssize_t code)
{
	http_body_cb	*cb = c->bin.cb;

	c->bin.cb = NULL;
	cb(c, NULL, code, c->bin.arg);
}

/* http_body_refuse - end the stream with an error: told, then answered */
void
http_body_refuse(struct http_conn *c, ssize_t code, int status)
{
	http_body_tell(c, code);
	http_conn_fail(c, status);
}

/* body_give - a piece to the handler; 0 when the stream goes on */
static int
body_give(struct http_conn *c, const char *p, size_t n)
{
	struct http_body_in	*b = &c->bin;

	if (b->got + n > b->max) {
		http_body_refuse(c, HTTP_BODY_TOO_LARGE, 413);
		return -1;
	}
	b->got += n;
	b->cb(c, p, (ssize_t)n, b->arg);
	/* an answer given meanwhile ended the stream, and drained input */
	return b->cb != NULL ? 0 : -1;
}

/* body_chunked - hand on what came of a chunked body; 0: more to come */
static int
body_chunked(struct http_conn *c)
{
	const char	*p, *data;
	size_t		 used, n;

	p = (const char *)evbuffer_pullup(c->in, -1);
	switch (http_chunked_next(&c->bin.dec, p, evbuffer_get_length(c->in),
	    &used, &data, &n)) {
	case HTTP_CHUNKED_DATA:
		if (body_give(c, data, n) == 0)
			evbuffer_drain(c->in, used);
		return 0;
	case HTTP_CHUNKED_MORE:
		evbuffer_drain(c->in, used);
		return -1;
	case HTTP_CHUNKED_DONE:
		evbuffer_drain(c->in, used);
		http_body_tell(c, 0);
		return -1;
	default:
		http_body_refuse(c, HTTP_BODY_ABORT, 400);
		return -1;
	}
}

/* http_body_feed - hand the handler what is here of its body */
void
http_body_feed(struct http_conn *c)
{
	struct http_body_in	*b = &c->bin;
	const char		*p;
	size_t			 len, n;

	if (b->cb == NULL || b->paused)
		return;
	if (!b->started) {
		b->started = 1;
		evbuffer_drain(c->in, c->head_len);
		if (!b->chunked && b->left > b->max) {
			http_body_refuse(c, HTTP_BODY_TOO_LARGE, 413);
			return;
		}
	}
	while (b->cb != NULL && !b->paused) {
		len = evbuffer_get_length(c->in);
		if (!b->chunked && b->left == 0) {
			http_body_tell(c, 0);
			return;
		}
		if (len == 0)
			return;
		if (b->chunked) {
			if (body_chunked(c) == -1)
				return;
			continue;
		}
		n = len < b->left ? len : (size_t)b->left;
		p = (const char *)evbuffer_pullup(c->in, (ssize_t)n);
		b->left -= n;
		if (body_give(c, p, n) == 0)
			evbuffer_drain(c->in, n);
	}
}

/* http_body_stream - the head hook takes the body as it comes */
void
http_body_stream(struct http_conn *c, uint64_t max, http_body_cb *cb,
    void *arg)
{
	if (!c->deciding)
		fatalx("http: a body streamed without a head to decide on");
	c->deciding = 0;
	c->head_only = 0;
	memset(&c->bin, 0, sizeof(c->bin));
	c->bin.cb = cb;
	c->bin.arg = arg;
	c->bin.max = max;
	c->bin.left = c->body_len;
	c->bin.chunked = c->chunked;
	c->since_us = now_mono_us();
	if (!c->gone) {
		http_conn_send_continue(c);
		event_add(c->ev_read, NULL);
	}
	/* never from inside this call: the handler may not be ready */
	event_active(c->ev_feed, EV_TIMEOUT, 1);
}

void
http_body_pause(struct http_conn *c)
{
	if (c->bin.cb == NULL || c->bin.paused)
		return;
	c->bin.paused = 1;
	event_del(c->ev_read);
	http_conn_timer(c);
}

void
http_body_resume(struct http_conn *c)
{
	if (c->bin.cb == NULL || !c->bin.paused)
		return;
	c->bin.paused = 0;
	c->since_us = now_mono_us();
	event_add(c->ev_read, NULL);
	event_active(c->ev_feed, EV_TIMEOUT, 1);
	http_conn_timer(c);
}

/*
 * http_body_deadline - when the body c waits for is overdue: a streamed
 * one must keep coming while it is read (none while paused), a whole one
 * has a grace plus a second per HTTP_BODY_MIN_RATE bytes come
 */
uint64_t
http_body_deadline(const struct http_conn *c)
{
	const struct http_limits	*l = &c->srv->limits;
	uint64_t			 grace, have, got;

	grace = http_us(l->body_timeout > 0 ? l->body_timeout : BODY_TIMEOUT_S);
	if (c->bin.cb != NULL)
		return c->bin.paused ? UINT64_MAX : c->since_us + grace;
	have = evbuffer_get_length(c->in);
	got = have > c->head_len ? have - c->head_len : 0;
	return c->since_us + grace + got * 1000000 / HTTP_BODY_MIN_RATE;
}

void
http_server_set_streaming(struct http_server *srv, uint64_t max_stream)
{
	srv->streaming = 1;
	srv->max_stream = max_stream;
}
