/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - connection handling.
 *
 * A connection handles one request at a time: while a response is pending
 * (the handler answers later) no further pipelined request is parsed, so
 * answers always leave in order.  A client that does not read its answers
 * stops being read once its output backlog passes max_output; a streamed
 * answer is cut there, or, under flow control, its writer waits for the
 * client to take most of it, which it must keep doing.
 *
 * One timer per connection holds the deadline of what it waits for: a
 * head (fixed from its first byte, not moved by each byte, or a slow
 * client could hold it forever), a body (a grace plus a minimum rate),
 * the next request (idle), or the end of a lingering close.  An answer
 * that closes without reading all the client sent shuts down the write
 * side and drains input for a moment, so the client reads the answer
 * rather than a reset.
 *
 * Out of descriptors, accept is paused with a growing delay instead of
 * being retried at once (which would spin), and logged once a minute.
 *
 * TLS sits under all this, in conn_recv and conn_send (common/tls.c), so
 * that limits, deadlines, pipelining and streams behave the same: a
 * connection of a TLS listener first makes its handshake (a fresh
 * connection's deadline bounds it, and one that waits for it may make
 * room at max_clients), then reads decrypted bytes into the same buffer.
 * A TLS read that must write first (a TLS 1.3 key update) waits for the
 * write event; the lingering close sends close_notify, then drains the
 * socket's raw bytes.
 *
 * Parsing a head, and reading a parsed request, are http_parse.c's
 * (pure functions).  Bodies that are not read whole (chunked, or
 * streamed to the handler) and the deadlines of bodies are http_body.c's;
 * http_int.h holds the structs both files read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "http.h"
#include "http_int.h"
#include "log.h"
#include "net.h"
#include "tls.h"
#include "util.h"

#define HEADER_TIMEOUT_S	10.0	/* when the limits give 0 */
#define LINGER_US		2000000

static void	conn_process(struct http_conn *);
static void	conn_flush(struct http_conn *);
static void	conn_next(struct http_conn *);
static void	conn_lost(struct http_conn *);
static void	conn_free(struct http_conn *);
static void	conn_feed(evutil_socket_t, short, void *);
static int	conn_send(struct http_conn *);
static int	stream_queued(struct http_conn *);
static int	stream_taken(struct http_conn *, size_t);

/*
 * add_printf - printf onto b, through a stack buffer when it fits (the
 * head of every answer goes this way), never cut when it does not.
 */
static void __attribute__((format(printf, 2, 3)))
add_printf(struct evbuffer *b, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(buf)) {
		evbuffer_add(b, buf, (size_t)n);
		return;
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
}

/* http_respond - queue the answer to the pending request */
void
http_respond(struct http_conn *c, int status, const char *ctype,
    const char *extra, const void *body, size_t len)
{
	if (!c->busy)
		fatalx("http: response without a pending request");
	c->busy = 0;
	if (c->bin.cb != NULL || (c->deciding && (c->chunked ||
	    c->body_len > 0))) {
		/*
		 * Refused from its head, or answered before its streamed
		 * body was all read: the rest is never read.
		 */
		c->deciding = 0;
		c->bin.cb = NULL;
		c->keep_alive = 0;
		c->linger = 1;
		c->need = 0;
		evbuffer_drain(c->in, evbuffer_get_length(c->in));
	} else if (c->deciding) {
		/* answered from a head that was all of it: serve on */
		c->deciding = 0;
		evbuffer_drain(c->in, c->head_len);
		if (!c->gone)
			event_add(c->ev_read, NULL);
	}
	if (c->srv->stopping)
		c->keep_alive = 0;
	if (c->srv->observer != NULL)
		c->srv->observer(status, (double)(now_mono_us() -
		    c->started_us) / 1e6, c->label, c->srv->observer_arg);
	if (c->gone) {
		conn_free(c);
		return;
	}
	add_printf(c->out, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s",
	    status, http_status_text(status), len,
	    ctype ? "Content-Type: " : "", ctype ? ctype : "",
	    ctype ? "\r\n" : "", c->keep_alive ? "" : "Connection: close\r\n");
	if (extra != NULL)
		evbuffer_add(c->out, extra, strlen(extra));
	evbuffer_add(c->out, "\r\n", 2);
	if (len > 0 && !c->head_only)
		evbuffer_add(c->out, body, len);
	c->head_only = 0;
	c->since_us = now_mono_us();
	if (!c->keep_alive) {
		c->closing = 1;
		event_del(c->ev_read);
	} else if (evbuffer_get_length(c->out) >= c->srv->limits.max_output) {
		c->throttled = 1;
		event_del(c->ev_read);
	}
	if (!c->in_process) {
		/* A late answer: serve what was pipelined behind it. */
		conn_process(c);
		http_conn_timer(c);
		conn_flush(c);
	}
}

/* http_stream_begin - the status line and headers of a chunked answer */
int
http_stream_begin(struct http_conn *c, int status, const char *ctype,
    http_stream_closed *closed, void *arg)
{
	if (!c->busy)
		fatalx("http: stream without a pending request");
	if (c->gone) {
		/* The client left while the stream was being prepared. */
		conn_free(c);
		return -1;
	}
	if (c->srv->observer != NULL)
		c->srv->observer(status, (double)(now_mono_us() -
		    c->started_us) / 1e6, c->label, c->srv->observer_arg);
	evbuffer_add_printf(c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n",
	    status, http_status_text(status), ctype);
	if (c->head_only) {
		/* HEAD: the headers were the answer; serve the next one. */
		c->head_only = 0;
		conn_next(c);
		return -1;
	}
	c->stream_closed = closed;
	c->stream_arg = arg;
	if (!c->in_process)
		conn_flush(c);
	return 0;
}

/*
 * http_stream_write - one chunk; -1 when the client was cut off, 1 when a
 * stream under flow control is to wait
 */
int
http_stream_write(struct http_conn *c, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (c->stream_drained == NULL &&
	    evbuffer_get_length(c->out) + len > c->srv->limits.max_output) {
		/* It does not read: drop it rather than buffer forever. */
		c->stream_closed = NULL;
		c->busy = 0;
		conn_free(c);
		return -1;
	}
	evbuffer_add_printf(c->out, "%zx\r\n", len);
	evbuffer_add(c->out, data, len);
	evbuffer_add(c->out, "\r\n", 2);
	if (c->stream_drained != NULL)
		return stream_queued(c);
	if (!c->in_process)
		conn_flush(c);
	return 0;
}

/*
 * stream_queued - a chunk of a stream under flow control is queued.  It
 * leaves from the loop: written here, it could lose the client under its
 * writer's feet.  1 when the backlog reached max_output: the writer waits
 * for stream_taken, and the client has idle_timeout to take some.
 */
static int
stream_queued(struct http_conn *c)
{
	event_add(c->ev_write, NULL);
	if (evbuffer_get_length(c->out) < c->srv->limits.max_output)
		return 0;
	if (!c->stream_full) {
		c->stream_full = 1;
		c->since_us = now_mono_us();
		http_conn_timer(c);
	}
	return 1;
}

/*
 * stream_taken - the client of a full stream took some of it (before
 * bytes waited): its deadline moves on, and once a quarter of max_output
 * or less waits, the writer is called back.  1 when it was: c may be gone.
 */
static int
stream_taken(struct http_conn *c, size_t before)
{
	size_t	left = evbuffer_get_length(c->out);

	if (left < before)
		c->since_us = now_mono_us();
	if (left > c->srv->limits.max_output / 4)
		return 0;
	c->stream_full = 0;
	if (left > 0)
		event_add(c->ev_write, NULL);
	http_conn_timer(c);
	c->stream_drained(c->stream_arg);
	return 1;
}

void
http_stream_flow(struct http_conn *c, http_stream_drained *drained)
{
	c->stream_drained = drained;
}

/* http_stream_end - the last chunk; the connection serves on */
void
http_stream_end(struct http_conn *c)
{
	evbuffer_add(c->out, "0\r\n\r\n", 5);
	c->stream_closed = NULL;
	c->stream_drained = NULL;
	c->stream_full = 0;
	conn_next(c);
}

/*
 * http_stream_abort - the answer cannot be finished (its source failed):
 * what is queued goes, then the connection closes without the last
 * chunk, so the client sees the body cut short, never a complete one
 */
void
http_stream_abort(struct http_conn *c)
{
	c->stream_closed = NULL;
	c->stream_drained = NULL;
	c->stream_full = 0;
	c->busy = 0;
	c->closing = 1;
	event_del(c->ev_read);
	if (!c->in_process)
		conn_flush(c);
}

/* conn_next - a streamed answer is over: serve what came behind it */
static void
conn_next(struct http_conn *c)
{
	c->busy = 0;
	c->since_us = now_mono_us();
	if (c->srv->stopping) {
		c->closing = 1;
		event_del(c->ev_read);
	}
	if (!c->in_process) {
		conn_process(c);
		http_conn_timer(c);
		conn_flush(c);
	}
}

/*
 * http_conn_fail - answer a request that could not be parsed or came too
 * slowly, then close, draining what the client still sends meanwhile
 */
void
http_conn_fail(struct http_conn *c, int status)
{
	char	body[128];
	int	n;

	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	n = snprintf(body, sizeof(body), "%d %s\n", status,
	    http_status_text(status));
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);	/* cut: send what fits, no more */
	c->busy = 1;
	c->keep_alive = 0;
	c->linger = 1;
	c->in_body = 0;
	c->head_only = 0;
	c->need = 0;
	c->label = 0;
	c->started_us = now_mono_us();
	http_respond(c, status, "text/plain", NULL, body, (size_t)n);
}

/* too_large - is the request's body over its own limit? */
static int
too_large(struct http_conn *c, const struct http_request *r)
{
	return c->srv->body_limit != NULL &&
	    r->body_len > c->srv->body_limit(r, c->srv->body_limit_arg);
}

/* head_as_get - handlers see HEAD as GET; http_respond drops the body */
static void
head_as_get(struct http_conn *c, struct http_request *r)
{
	c->head_only = http_method_is(r, "HEAD");
	if (c->head_only) {
		r->method = "GET";
		r->method_len = 3;
	}
}

/* wants_continue - did an HTTP/1.1 client send Expect: 100-continue? */
static int
wants_continue(const struct http_request *r)
{
	const char	*v;
	size_t		 len;

	return r->minor == 1 && (v = http_header(r, "Expect", &len)) != NULL &&
	    len == 12 && strncasecmp(v, "100-continue", 12) == 0;
}

/* http_conn_send_continue - 100 Continue, to a client that waits for it */
void
http_conn_send_continue(struct http_conn *c)
{
	static const char	go[] = "HTTP/1.1 100 Continue\r\n\r\n";

	/* A client that sent some body already is not waiting for it. */
	if (c->expect && evbuffer_get_length(c->in) <= c->head_len)
		evbuffer_add(c->out, go, sizeof(go) - 1);
	c->expect = 0;
}

/* body_begin - the head is accepted: read its body, against a deadline */
static void
body_begin(struct http_conn *c)
{
	c->in_body = 1;
	c->since_us = now_mono_us();
	http_conn_send_continue(c);
}

/*
 * whole_refused - a body that cannot be read whole: chunked (411) or
 * over max_body (413, for a server that streams larger ones).  1 when it
 * was answered so.
 */
static int
whole_refused(struct http_conn *c)
{
	if (c->chunked)
		http_conn_fail(c, 411);
	else if (c->body_len > c->srv->limits.max_body)
		http_conn_fail(c, 413);
	else
		return 0;
	return 1;
}

/* conn_data_drop - the data left on the last request goes */
static void
conn_data_drop(struct http_conn *c)
{
	if (c->data != NULL && c->data_free != NULL)
		c->data_free(c->data);
	c->data = NULL;
	c->data_free = NULL;
}

/*
 * head_arrived - a head whose body is still to come: show it to the
 * head hook, reading nothing more until it decides.  0 when the body is
 * to be read now.
 */
static int
head_arrived(struct http_conn *c, struct http_request *r, size_t used)
{
	if (too_large(c, r)) {
		http_conn_fail(c, 413);
		return -1;
	}
	conn_data_drop(c);
	c->fresh = 0;
	c->head_len = used - r->body_len;
	c->body_len = r->body_len;
	c->chunked = r->chunked;
	c->keep_alive = r->keep_alive;
	c->expect = wants_continue(r);
	if (c->srv->head_hook == NULL) {
		if (whole_refused(c))
			return -1;
		body_begin(c);
		return 0;
	}
	c->busy = 1;
	c->deciding = 1;
	c->label = 0;
	c->started_us = now_mono_us();
	head_as_get(c, r);
	r->body = NULL;		/* the hook sees the head only */
	c->srv->head_hook(c, r, c->srv->head_arg);
	/*
	 * Reading pauses while the hook decides, which it mostly does at
	 * once (http_continue or an answer): only then is it paused, not
	 * paused and resumed around every request, two epoll_ctl calls that
	 * were a tenth of the routing worker's time under load.
	 */
	if (c->deciding && !c->gone)
		event_del(c->ev_read);
	return c->in_body ? 0 : -1;
}

/* http_continue - the head hook lets the body come */
void
http_continue(struct http_conn *c)
{
	if (!c->deciding)
		fatalx("http: continue without a head to decide on");
	if (whole_refused(c))
		return;
	c->deciding = 0;
	c->busy = 0;
	c->head_only = 0;
	if (c->gone) {
		conn_free(c);
		return;
	}
	body_begin(c);
	event_add(c->ev_read, NULL);
	if (!c->in_process) {
		conn_process(c);
		http_conn_timer(c);
		conn_flush(c);
	}
}

/* dispatch - hand a whole request to the handler */
static void
dispatch(struct http_conn *c, struct http_request *r, size_t used)
{
	if (!c->in_body)	/* not shown to the head hook */
		conn_data_drop(c);
	c->busy = 1;
	c->fresh = 0;
	c->in_body = 0;
	c->keep_alive = r->keep_alive;
	c->label = 0;
	if (c->srv->observer != NULL)
		c->started_us = now_mono_us();
	head_as_get(c, r);
	c->srv->handler(c, r, c->srv->arg);
	evbuffer_drain(c->in, used);
}

/* conn_feed - from the loop: the body that is here, then the rest */
static void
conn_feed(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;

	if (c->gone) {
		/* gone while the head was decided: the stream cannot be */
		if (c->bin.cb != NULL) {
			http_body_tell(c, HTTP_BODY_ABORT);
			conn_free(c);
		}
		return;
	}
	conn_process(c);
	http_conn_timer(c);
	conn_flush(c);
}

/* conn_process - parse and dispatch requests while not waiting on one */
static void
conn_process(struct http_conn *c)
{
	struct http_request	 r;
	size_t			 len, used;
	char			*p;
	int			 status;

	c->in_process = 1;
	http_body_feed(c);
	while (!c->busy && !c->closing && !c->throttled && !c->lingering &&
	    (len = evbuffer_get_length(c->in)) > 0 && len >= c->need) {
		c->need = 0;
		used = 0;
		p = (char *)evbuffer_pullup(c->in, -1);
		switch (http_parse_request(p, len, http_body_cap(c->srv), &r,
		    &used, &status)) {
		case HTTP_PARSE_MORE:
			if (used > 0 && !c->in_body &&
			    head_arrived(c, &r, used) == -1)
				break;
			/*
			 * Do not parse (and copy together) a large body again
			 * at every read: wait until all of it is here.
			 */
			c->need = used;
			c->in_process = 0;
			return;
		case HTTP_PARSE_ERROR:
			http_conn_fail(c, status);
			break;
		case HTTP_PARSE_OK:
			/* Continued at once: parsed again, and dispatched. */
			if (c->srv->streaming && !c->in_body)
				head_arrived(c, &r, used);
			else if (too_large(c, &r))
				http_conn_fail(c, 413);
			else
				dispatch(c, &r, used);
			break;
		}
	}
	c->in_process = 0;
}

/*
 * conn_deadline - when what c waits for is overdue (monotonic µs), or
 * UINT64_MAX while its handler has the request.
 */
static uint64_t
conn_deadline(const struct http_conn *c)
{
	const struct http_limits	*l = &c->srv->limits;
	size_t				 have = evbuffer_get_length(c->in);

	if (c->lingering)
		return c->since_us + LINGER_US;
	if (c->bin.cb != NULL)
		return http_body_deadline(c);
	if (c->stream_full)	/* the client must keep taking the stream */
		return c->since_us + http_us(l->idle_timeout);
	if (c->busy)
		return UINT64_MAX;
	if (c->closing || c->throttled)
		return c->since_us + http_us(l->idle_timeout);
	if (c->in_body)
		return http_body_deadline(c);
	if (c->fresh || have > 0)
		return c->since_us + http_us(l->header_timeout > 0 ?
		    l->header_timeout : HEADER_TIMEOUT_S);
	return c->since_us + http_us(l->idle_timeout);
}

/* http_conn_timer - (re)arm the timer for the current deadline */
void
http_conn_timer(struct http_conn *c)
{
	uint64_t	now = now_mono_us(), at = conn_deadline(c);
	struct timeval	tv;

	if (at == UINT64_MAX) {
		event_del(c->ev_timer);
		return;
	}
	tv = util_tv_us(at > now ? at - now : 0);
	event_add(c->ev_timer, &tv);
}

/*
 * conn_timeout - a deadline passed (or moved on: a body that kept
 * coming earns time).  A request begun and not finished gets 408; a
 * silent or idle connection is just closed.
 */
static void
conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;

	if (conn_deadline(c) > now_mono_us()) {
		http_conn_timer(c);
		return;
	}
	if (c->bin.cb != NULL)
		http_body_refuse(c, HTTP_BODY_ABORT, 408);
	else if (c->stream_full)
		conn_lost(c);		/* it took nothing for idle_timeout */
	else if (!c->closing && !c->throttled && !c->lingering &&
	    (c->in_body || evbuffer_get_length(c->in) > 0))
		http_conn_fail(c, 408);
	else
		conn_free(c);
}

/*
 * linger_begin - the answer is out; shut down writing and drain input
 * for a moment, so that closing with unread input (which sends a reset)
 * does not destroy the answer before the client reads it.
 */
static void
linger_begin(struct http_conn *c)
{
	c->closing = 0;
	c->lingering = 1;
	c->since_us = now_mono_us();
	if (c->ssl != NULL)
		tls_shutdown(c->ssl);
	shutdown(c->fd, SHUT_WR);
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	event_add(c->ev_read, NULL);
	http_conn_timer(c);
}

/*
 * conn_flush - write what is queued now, and wait for writability only
 * when the socket is full: most answers leave in the same loop turn as
 * their request, with no event changes at all.
 */
static void
conn_flush(struct http_conn *c)
{
	size_t	queued = evbuffer_get_length(c->out);

	if (queued > 0 && conn_send(c) == -1 && errno != EAGAIN &&
	    errno != EINTR) {
		conn_lost(c);
		return;
	}
	if (c->stream_full && stream_taken(c, queued))
		return;
	if (evbuffer_get_length(c->out) > 0) {
		event_add(c->ev_write, NULL);
		return;
	}
	if (c->closing) {
		if (c->linger)
			linger_begin(c);
		else
			conn_free(c);
		return;
	}
	if (c->throttled) {
		c->throttled = 0;
		event_add(c->ev_read, NULL);
		conn_process(c);
		http_conn_timer(c);
		if (evbuffer_get_length(c->out) > 0)
			conn_flush(c);
	}
}

/* conn_lost - the peer is gone; keep c until a pending answer comes */
static void
conn_lost(struct http_conn *c)
{
	c->broken = 1;
	if (c->stream_closed != NULL) {
		c->stream_closed(c->stream_arg);
		conn_free(c);
		return;
	}
	if (c->bin.cb != NULL) {
		http_body_tell(c, HTTP_BODY_ABORT);
		conn_free(c);
		return;
	}
	if (c->busy) {
		c->gone = 1;
		event_del(c->ev_read);
		event_del(c->ev_write);
		event_del(c->ev_timer);
		return;
	}
	conn_free(c);
}

/* linger_read - drain what a closing client still sends, unbuffered */
static void
linger_read(struct http_conn *c)
{
	static char	sink[65536];
	ssize_t		n;

	n = read(c->fd, sink, sizeof(sink));
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		conn_free(c);
}

/*
 * conn_handshake - TLS first: one more step of the handshake.  1 once it
 * is done (what follows comes by the read event), 0 while it goes on,
 * -1 when it failed and c is gone.
 */
static int
conn_handshake(struct http_conn *c)
{
	char	why[TLS_ERR_MAX];
	int	want_write, r;

	if ((r = tls_handshake(c->ssl, &want_write, why, sizeof(why))) == 0) {
		if (want_write)
			event_add(c->ev_write, NULL);
		return 0;
	}
	if (r == -1) {
		log_debug("http: TLS handshake failed: %s", why);
		c->broken = 1;
		conn_free(c);
		return -1;
	}
	c->handshaking = 0;
	return 1;
}

/* conn_recv - what came, into c->in: as evbuffer_read, TLS or not */
static int
conn_recv(struct http_conn *c)
{
	int	want_write;
	ssize_t	n;

	if (c->ssl == NULL)
		return evbuffer_read(c->in, c->fd, 65536);
	n = tls_read(c->ssl, c->in, 65536, &want_write);
	if (want_write) {
		c->read_on_write = 1;
		event_add(c->ev_write, NULL);
	}
	return (int)n;
}

/* conn_send - what is queued, out: as evbuffer_write, TLS or not */
static int
conn_send(struct http_conn *c)
{
	if (c->ssl == NULL)
		return evbuffer_write(c->out, c->fd);
	return (int)tls_write(c->ssl, c->out);
}

static void
conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	int			 was_empty = evbuffer_get_length(c->in) == 0;
	int			 n;

	if (c->lingering) {
		linger_read(c);
		return;
	}
	if (c->handshaking && conn_handshake(c) != 1)
		return;
	n = conn_recv(c);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		conn_lost(c);
		return;
	}
	if (n <= 0)
		return;
	/*
	 * The first byte of a new request starts its head's deadline; every
	 * read of a streamed body moves its deadline on.
	 */
	if (c->bin.cb != NULL ||
	    (was_empty && !c->fresh && !c->busy && !c->in_body))
		c->since_us = now_mono_us();
	conn_process(c);
	http_conn_timer(c);
	conn_flush(c);
}

static void
conn_write(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;

	if (c->handshaking) {
		(void)conn_handshake(c);
		return;
	}
	if (c->read_on_write) {
		/* the read flushes after it */
		c->read_on_write = 0;
		conn_read(fd, EV_READ, c);
		return;
	}
	conn_flush(c);
}

static void
conn_free(struct http_conn *c)
{
	TAILQ_REMOVE(&c->srv->conns, c, entry);
	c->srv->nconns--;
	conn_data_drop(c);
	event_free(c->ev_feed);
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_timer);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	if (c->ssl != NULL) {
		if (!c->broken && !c->handshaking)
			tls_shutdown(c->ssl);
		tls_free(c->ssl);
	}
	close(c->fd);
	free(c);
}

/*
 * make_room - at max_clients, close the connection that has waited
 * longest with no request in hand and no proof of who its client is (see
 * http_conn_trust).  Connections that send nothing, or a head a byte at
 * a time, then cannot keep new clients out: a new one pushes the oldest
 * of them out.  0 when every connection is busy or trusted.
 */
static int
make_room(struct http_server *srv)
{
	struct http_conn	*c, *victim = NULL;

	TAILQ_FOREACH(c, &srv->conns, entry)
		if ((c->lingering || (!c->busy && !c->trusted)) &&
		    (victim == NULL || c->since_us < victim->since_us))
			victim = c;
	if (victim == NULL)
		return 0;
	srv->made_room++;
	if (srv->evicted++ == 0)
		log_warnx("http: %u connections (max_clients): closing those "
		    "that waited longest without a request, or without a "
		    "trusted one, to make room", srv->nconns);
	conn_free(victim);
	return 1;
}

/*
 * conn_new - serve fd (and ssl, its TLS or NULL), making room at
 * max_clients; NULL: turned away, with a 503 in plaintext, closed over
 * TLS (there is no room to make the handshake in)
 */
static struct http_conn *
conn_new(struct http_server *srv, int fd, struct ssl_st *ssl)
{
	static const char	 busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct http_conn	*c;
	int			 one = 1;

	if (srv->nconns < srv->limits.max_clients && srv->evicted > 0) {
		log_info("http: below max_clients again; %u connections were "
		    "closed to make room", srv->evicted);
		srv->evicted = 0;
	}
	if (srv->nconns >= srv->limits.max_clients && !make_room(srv)) {
		srv->turned_away++;
		if (ssl != NULL)
			tls_free(ssl);
		else if (write(fd, busy, sizeof(busy) - 1) < 0) {
			/* the client will see the close */
		}
		close(fd);
		return NULL;
	}
	evutil_make_socket_nonblocking(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->fd = fd;
	c->ssl = ssl;
	c->fresh = 1;
	c->since_us = now_mono_us();
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST, conn_read,
	    c);
	c->ev_write = event_new(srv->base, fd, EV_WRITE, conn_write, c);
	c->ev_timer = evtimer_new(srv->base, conn_timeout, c);
	c->ev_feed = event_new(srv->base, -1, 0, conn_feed, c);
	if (c->in == NULL || c->out == NULL || c->ev_read == NULL ||
	    c->ev_write == NULL || c->ev_timer == NULL || c->ev_feed == NULL)
		fatalx("http: out of memory");
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	event_add(c->ev_read, NULL);
	http_conn_timer(c);
	return c;
}

static void
server_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct http_server	*srv = arg;
	struct http_conn	*c;
	struct ssl_st		*ssl = NULL;

	net_pause_ok(&srv->accept_pause, "http");
	if (srv->tls != NULL)
		ssl = tls_accept_new(srv->tls, fd);
	if ((c = conn_new(srv, fd, ssl)) != NULL && ssl != NULL)
		c->handshaking = 1;
}

/* http_server_adopt - serve a socket whose first bytes were read */
int
http_server_adopt(struct http_server *srv, int fd, struct ssl_st *ssl,
    const void *already, size_t len)
{
	struct http_conn	*c;

	if (evutil_make_socket_nonblocking(fd) == -1) {
		if (ssl != NULL)
			tls_free(ssl);
		close(fd);
		return -1;
	}
	if ((c = conn_new(srv, fd, ssl)) == NULL)
		return -1;
	/* OpenSSL may hold decrypted bytes the socket no longer tells of */
	if (ssl != NULL)
		event_active(c->ev_read, EV_READ, 1);
	if (len > 0) {
		evbuffer_add(c->in, already, len);
		conn_process(c);
		http_conn_timer(c);
		conn_flush(c);
	}
	return 0;
}

/*
 * server_error - accept failed for want of descriptors or memory: stop
 * accepting for a while (100 ms, doubling to 1 s) rather than spin on a
 * listener that stays readable, and warn at most once a minute.
 */
static void
server_error(struct evconnlistener *l, void *arg)
{
	struct http_server	*srv = arg;
	struct timeval		 tv;

	tv = net_pause_failed(&srv->accept_pause, "http", EVUTIL_SOCKET_ERROR(),
	    srv->nconns);
	evconnlistener_disable(l);
	evtimer_add(srv->ev_accept, &tv);
}

/* accept_again - the pause after a failed accept is over */
static void
accept_again(evutil_socket_t fd, short what, void *arg)
{
	struct http_server	*srv = arg;

	if (srv->listener != NULL && !srv->paused)
		evconnlistener_enable(srv->listener);
}

/* http_server_new - serve on listen_fd, which the server now owns */
struct http_server *
http_server_new(struct event_base *base, int fd, const struct http_limits *lim,
    http_handler *handler, void *arg)
{
	struct http_server	*srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->limits = *lim;
	srv->handler = handler;
	srv->arg = arg;
	TAILQ_INIT(&srv->conns);
	if ((srv->ev_accept = evtimer_new(base, accept_again, srv)) == NULL)
		fatalx("http: evtimer_new");
	http_server_set_listener(srv, fd);
	return srv;
}

/* http_server_set_listener - serve a new listening socket from now on */
void
http_server_set_listener(struct http_server *srv, int fd)
{
	unsigned	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	srv->listener = NULL;
	evtimer_del(srv->ev_accept);
	srv->accept_pause.pause_us = 0;
	if (fd == -1)
		return;
	if (srv->paused)
		flags |= LEV_OPT_DISABLED;
	srv->listener = evconnlistener_new(srv->base, server_accept, srv,
	    flags, -1, fd);
	if (srv->listener == NULL)
		fatalx("http: evconnlistener_new");
	evconnlistener_set_error_cb(srv->listener, server_error);
}

/* http_server_set_tls - new connections of the listener speak TLS */
void
http_server_set_tls(struct http_server *srv, struct ssl_ctx_st *ctx)
{
	struct ssl_ctx_st	*old = srv->tls;

	srv->tls = tls_ctx_ref(ctx);
	tls_ctx_free(old);
}

void
http_server_set_observer(struct http_server *srv, http_observer *o,
    void *arg)
{
	srv->observer = o;
	srv->observer_arg = arg;
}

void
http_server_set_body_limit(struct http_server *srv, http_body_limit *fn,
    void *arg)
{
	srv->body_limit = fn;
	srv->body_limit_arg = arg;
}

void
http_server_set_head_hook(struct http_server *srv, http_head_hook *fn,
    void *arg)
{
	srv->head_hook = fn;
	srv->head_arg = arg;
}

void
http_conn_set_label(struct http_conn *c, int label)
{
	c->label = label;
}

void
http_conn_trust(struct http_conn *c)
{
	c->trusted = 1;
}

void
http_server_set_limits(struct http_server *srv, const struct http_limits *lim)
{
	srv->limits = *lim;
}

void
http_server_pause(struct http_server *srv)
{
	srv->paused = 1;
	evtimer_del(srv->ev_accept);
	if (srv->listener != NULL)
		evconnlistener_disable(srv->listener);
}

/* http_server_shutdown - graceful stop: what has no request in hand goes */
void
http_server_shutdown(struct http_server *srv)
{
	struct http_conn	*c, *next;

	http_server_pause(srv);
	srv->stopping = 1;
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->busy || c->in_body || c->closing || c->lingering)
			continue;
		if (c->throttled) {
			/* an answer is still going out: close after it */
			c->throttled = 0;
			c->closing = 1;
		} else
			conn_free(c);
	}
}

void
http_conn_set_data(struct http_conn *c, void *data, void (*free_fn)(void *))
{
	conn_data_drop(c);
	c->data = data;
	c->data_free = free_fn;
}

void *
http_conn_data(const struct http_conn *c)
{
	return c->data;
}

unsigned
http_server_clients(const struct http_server *srv)
{
	return srv->nconns;
}

/* http_server_full - connections closed to make room at max_clients, and
 * connections turned away there, since the server started */
void
http_server_full(const struct http_server *srv, uint64_t *made_room,
    uint64_t *turned_away)
{
	*made_room = srv->made_room;
	*turned_away = srv->turned_away;
}

/* http_server_free - close the listener and every connection */
void
http_server_free(struct http_server *srv)
{
	struct http_conn	*c;

	if (srv == NULL)
		return;
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_free(c);
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	event_free(srv->ev_accept);
	tls_ctx_free(srv->tls);
	free(srv);
}

/*
 * http_conn_peer - the client's address, without its port ("local" for a
 * Unix socket, or a peer already gone): what login attempts count by
 */
void
http_conn_peer(const struct http_conn *c, char *buf, size_t len)
{
	struct sockaddr_storage	ss;
	socklen_t		sl = sizeof(ss);
	char			host[NI_MAXHOST];

	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    ss.ss_family == AF_UNIX || getnameinfo((struct sockaddr *)&ss, sl,
	    host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, len, "local");
	else
		snprintf(buf, len, "%s", host);
}
