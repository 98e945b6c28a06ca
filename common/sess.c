/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sess - the TCP session protocol (DESIGN.md section 3, docs/protocol.md).
 *
 * The server handles RequestOpen (through the worker's open hook) and
 * RequestPing itself and passes every other request to the worker.  A
 * session moves NEW -> (PENDING) -> OPEN -> CLOSING -> LINGER -> DEAD.
 * CLOSING flushes what is queued, LINGER half-closes and drains input so
 * that the peer sees the last EventError rather than a reset, DEAD waits
 * for the event loop to free it: a session is never freed inside a sess_
 * call made by the worker, so a worker may send to a list of sessions
 * while some of them get cut.
 *
 * One socket, three faces (DESIGN.md section 3): with an HTTP server set
 * (sess_server_set_http), a new connection's first bytes decide what it
 * speaks.  While they are a strict prefix of an HTTP method and a space
 * it waits (for at most 8 bytes, within the open timeout); an HTTP
 * request line hands the socket, with what was read, to the HTTP server
 * (common/http.c), and the session is gone without a word; anything else
 * is the session protocol from then on.
 *
 * TLS (sess_server_set_tls): a connection is libevent's OpenSSL
 * bufferevent on the socket, accepting; the handshake must end within the
 * open timeout (the session is dropped without a word otherwise), and
 * what the session sees, the first bytes sniffed included, is decrypted.
 * Such a session owns its socket and SSL itself, rather than its
 * bufferevent, so that one that speaks HTTP hands both to the HTTP server
 * as they are.
 *
 * The client, which speaks the same protocol to a peer server, is in
 * sessclient.c; what the two share beyond sess.h is in sess_int.h.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "net.h"
#include "sess.h"
#include "sess_int.h"
#include "tls.h"
#include "util.h"

#define SESS_PEER_MAX		64
#define SESS_TOKEN_MAX		4096

enum sess_state {
	SESS_NEW,		/* waiting for RequestOpen */
	SESS_PENDING,		/* the open hook has not decided yet */
	SESS_OPEN,
	SESS_CLOSING,		/* flushing output */
	SESS_LINGER,		/* write side shut, draining input */
	SESS_DEAD,		/* freed by the next loop iteration */
};

struct sess {
	TAILQ_ENTRY(sess)	 entry;
	struct sess_server	*srv;
	struct bufferevent	*bev;
	struct ssl_st		*ssl;	/* TLS, owned with fd; or NULL */
	int			 fd;	/* TLS: the socket, owned; else -1 */
	int			 handshaking; /* TLS, before its first byte */
	struct event		*timer;	/* open timeout, then linger deadline */
	struct event		*wake;	/* activated: resume input, or free */
	enum sess_state		 state;
	int			 decided; /* its first bytes were looked at */
	int			 owed;	/* the closed hook is due */
	json_int_t		 open_ref;
	uint64_t		 id;
	char			*client;
	void			*data;
	const char		*why;	/* close reason, for the log */
	char			 peer[SESS_PEER_MAX];
};

TAILQ_HEAD(sess_list, sess);

struct sess_server {
	struct event_base	*base;
	struct evconnlistener	*lev;
	struct event		*retry;	/* accept again after EMFILE */
	struct net_pause	 pause;
	struct sess_limits	 lim;
	struct sess_handlers	 h;
	void			*arg;
	struct sess_list	 list;
	struct sess_stats	 st;
	struct http_server	*http;	/* the HTTP face, or NULL */
	struct ssl_ctx_st	*tls;	/* new connections: TLS */
	uint64_t		 next_id;
	int			 paused;
};

struct sess_buf {
	char	*p;
	size_t	 len, cap;
};

static void	sess_line(struct sess *, const char *, size_t);
static void	sess_kill(struct sess *, const char *);
static void	sess_destroy(struct sess *);
static void	sess_tls_error(struct sess *);
static int	sess_push(struct sess *, const char *, size_t);

/*
 * Pure functions: framing, decoding, encoding.
 */

/* sess_frame_next - find the first line of buf, bounded by max_line */
enum sess_frame
sess_frame_next(const char *buf, size_t len, size_t max_line,
    size_t *line_len, size_t *consumed)
{
	const char	*nl;
	size_t		 n, scan;

	*line_len = *consumed = 0;
	/* the longest good line is max_line bytes, then "\r\n" */
	scan = len > max_line + 2 ? max_line + 2 : len;
	if ((nl = memchr(buf, '\n', scan)) == NULL) {
		if (len > max_line + 1 ||
		    (len == max_line + 1 && buf[max_line] != '\r'))
			return SESS_FRAME_TOO_LONG;
		return SESS_FRAME_MORE;
	}
	n = (size_t)(nl - buf);
	*consumed = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > max_line)
		return SESS_FRAME_TOO_LONG;
	*line_len = n;
	return SESS_FRAME_LINE;
}

/* sess_line_blank - an empty or all-blank line, which is ignored */
int
sess_line_blank(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

/* sess_type_name - the JSON type of j, for error messages */
static const char *
sess_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	default:
		return "an object";
	}
}

/* sess_decode_ref - read "ref": absent or null is SESS_NOREF */
static int
sess_decode_ref(const json_t *obj, json_int_t *ref)
{
	const json_t	*j = json_object_get(obj, "ref");

	*ref = SESS_NOREF;
	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    json_integer_value(j) > SESS_REF_MAX)
		return -1;
	*ref = json_integer_value(j);
	return 0;
}

/* sess_decode_kind - decode a line whose name is in field (request/event) */
int
sess_decode_kind(const char *line, size_t len, const char *field,
    struct sess_request *out, const char **code, char *msg, size_t msglen)
{
	json_error_t	 err;
	json_t		*root, *name;

	memset(out, 0, sizeof(*out));
	out->ref = SESS_NOREF;
	if ((root = json_loadb(line, len, SESS_DECODE_FLAGS, &err)) == NULL) {
		*code = SESS_ERR_BAD_JSON;
		snprintf(msg, msglen, "invalid JSON at byte %d: %s",
		    err.position, err.text);
		return -1;
	}
	if (!json_is_object(root)) {
		*code = SESS_ERR_NOT_OBJECT;
		snprintf(msg, msglen, "a line must hold a JSON object, not %s",
		    sess_type_name(root));
		goto fail;
	}
	if (sess_decode_ref(root, &out->ref) == -1) {
		*code = SESS_ERR_BAD_REF;
		snprintf(msg, msglen, "\"ref\" must be an integer from 0 to "
		    "%lld", (long long)SESS_REF_MAX);
		goto fail;
	}
	name = json_object_get(root, field);
	if (!json_is_string(name) || json_string_length(name) == 0) {
		*code = SESS_ERR_BAD_REQUEST;
		snprintf(msg, msglen, "\"%s\" must be a non-empty string",
		    field);
		goto fail;
	}
	out->obj = root;
	out->name = json_string_value(name);
	return 0;
fail:
	json_decref(root);
	return -1;
}

/* sess_decode - decode one request line */
int
sess_decode(const char *line, size_t len, struct sess_request *out,
    const char **code, char *msg, size_t msglen)
{
	return sess_decode_kind(line, len, "request", out, code, msg, msglen);
}

/* sess_request_clear - release a decoded request */
void
sess_request_clear(struct sess_request *rq)
{
	json_decref(rq->obj);
	rq->obj = NULL;
	rq->name = NULL;
	rq->ref = SESS_NOREF;
}

/* sess_buf_add - json_dump_callback sink into a growing buffer */
static int
sess_buf_add(const char *data, size_t n, void *arg)
{
	struct sess_buf	*b = arg;

	if (b->len + n > b->cap) {
		b->cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n + 64;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

/* sess_encode - one event as a compact line with its newline */
char *
sess_encode(const json_t *event, size_t *lenp)
{
	struct sess_buf	b = { NULL, 0, 0 };

	if (!json_is_object(event) ||
	    json_dump_callback(event, sess_buf_add, &b, JSON_COMPACT) == -1) {
		free(b.p);
		return NULL;
	}
	sess_buf_add("\n", 2, &b);	/* and the NUL */
	if (lenp != NULL)
		*lenp = b.len - 1;
	return b.p;
}

/* sess_text - a JSON string from text that may hold bad or cut UTF-8 */
static json_t *
sess_text(const char *s)
{
	json_t	*j;
	char	*copy, *p;

	if ((j = json_string(s)) != NULL)
		return j;
	copy = xstrdup(s);
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* sess_error_new - an EventError object */
json_t *
sess_error_new(json_int_t ref, const char *code, const char *message)
{
	json_t	*e = json_object();

	json_object_set_new(e, "event", json_string("EventError"));
	if (ref >= 0)
		json_object_set_new(e, "ref", json_integer(ref));
	json_object_set_new(e, "code", sess_text(code));
	json_object_set_new(e, "message", sess_text(message));
	return e;
}

/* sess_evb_add - json_dump_callback sink into an evbuffer */
static int
sess_evb_add(const char *data, size_t n, void *arg)
{
	return evbuffer_add(arg, data, n);
}

/* sess_encode_evb - one event line into a new evbuffer, or NULL */
struct evbuffer *
sess_encode_evb(const json_t *event)
{
	struct evbuffer	*b;

	if ((b = evbuffer_new()) == NULL)
		fatalx("sess: evbuffer_new");
	if (!json_is_object(event) ||
	    json_dump_callback(event, sess_evb_add, b, JSON_COMPACT) == -1 ||
	    evbuffer_add(b, "\n", 1) == -1) {
		log_warnx("sess: event cannot be encoded");
		evbuffer_free(b);
		return NULL;
	}
	return b;
}

/* sess_set_nodelay - small request/answer lines must not wait for Nagle */
void
sess_set_nodelay(int fd)
{
	int	one = 1;

	/* fails harmlessly on Unix sockets */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

/* sess_limits_fix - copy limits, putting defaults in the zero fields */
static void
sess_limits_fix(struct sess_limits *dst, const struct sess_limits *src)
{
	static const struct sess_limits zero;

	*dst = src != NULL ? *src : zero;
	if (dst->max_line == 0)
		dst->max_line = SESS_DEFAULT_MAX_LINE;
	if (dst->max_output == 0)
		dst->max_output = SESS_DEFAULT_MAX_OUTPUT;
	if (dst->max_clients == 0)
		dst->max_clients = SESS_DEFAULT_MAX_CLIENTS;
	if (dst->open_timeout_ms == 0)
		dst->open_timeout_ms = SESS_DEFAULT_OPEN_TIMEOUT_MS;
}

/*
 * Sessions.
 */

/* sess_writable - whether the worker may still queue output */
static int
sess_writable(const struct sess *s)
{
	return s->state <= SESS_OPEN;
}

/*
 * sess_push - queue an encoded line, cutting a client that does not read.
 * The bytes are copied onto the end of the output buffer: for the short
 * lines of a fan-out that is one memcpy, no allocation.
 */
static int
sess_push(struct sess *s, const char *line, size_t len)
{
	struct sess_server	*srv = s->srv;
	struct evbuffer		*out = bufferevent_get_output(s->bev);
	size_t			 queued = evbuffer_get_length(out);

	if (queued > 0 && queued + len > srv->lim.max_output) {
		srv->st.slow_cut++;
		log_warnx("sess %llu: peer %s client %s does not read, "
		    "%zu bytes queued: cut", (unsigned long long)s->id,
		    s->peer, s->client ? s->client : "-", queued);
		sess_kill(s, "slow client");
		return -1;
	}
	return bufferevent_write(s->bev, line, len);
}

/* sess_send - queue an event (borrowed) */
int
sess_send(struct sess *s, const json_t *event)
{
	struct evbuffer	*b;
	int		 r;

	if (!sess_writable(s))
		return -1;
	if ((b = sess_encode_evb(event)) == NULL)
		return -1;
	r = sess_push(s, (const char *)evbuffer_pullup(b, -1),
	    evbuffer_get_length(b));
	evbuffer_free(b);
	return r;
}

/* sess_reply - set "ref" in event, then send it */
int
sess_reply(struct sess *s, json_int_t ref, json_t *event)
{
	if (ref >= 0)
		json_object_set_new(event, "ref", json_integer(ref));
	return sess_send(s, event);
}

/* sess_send_line - queue a line encoded once for many sessions */
int
sess_send_line(struct sess *s, const char *line, size_t len)
{
	if (!sess_writable(s))
		return -1;
	if (len == 0 || line[len - 1] != '\n')
		fatalx("sess_send_line: line without its newline");
	return sess_push(s, line, len);
}

/* sess_send_error - queue an EventError with a formatted message */
void
sess_send_error(struct sess *s, json_int_t ref, const char *code,
    const char *fmt, ...)
{
	char	 msg[SESS_MSG_MAX];
	va_list	 ap;
	json_t	*e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = sess_error_new(ref, code, msg);
	sess_send(s, e);
	json_decref(e);
}

/* sess_linger - output flushed: half-close and drain until EOF or timer */
static void
sess_linger(struct sess *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);

	s->state = SESS_LINGER;
	if (s->ssl != NULL)
		tls_shutdown(s->ssl);
	if (shutdown(bufferevent_getfd(s->bev), SHUT_WR) == -1) {
		sess_kill(s, s->why);
		return;
	}
	/* a full input would stop reading, and EOF would go unseen */
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
	bufferevent_enable(s->bev, EV_READ);
}

/* sess_close_why - close after flushing, remembering the reason */
static void
sess_close_why(struct sess *s, const char *why)
{
	struct timeval	tv = util_tv(SESS_LINGER_MS / 1000.0);

	if (s->state >= SESS_CLOSING)
		return;
	if (s->handshaking) {
		/* TLS: nothing queued can leave before a handshake */
		sess_kill(s, why);
		return;
	}
	s->state = SESS_CLOSING;
	s->why = why;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	/* a peer that never reads cannot hold the session open */
	evtimer_add(s->timer, &tv);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		sess_linger(s);
}

/* sess_close - stop reading, flush, then close */
void
sess_close(struct sess *s)
{
	sess_close_why(s, "closed by server");
}

/* sess_kill - drop the connection now; free on the next loop iteration */
static void
sess_kill(struct sess *s, const char *why)
{
	if (s->state == SESS_DEAD)
		return;
	s->state = SESS_DEAD;
	s->why = why;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	evtimer_del(s->timer);
	event_active(s->wake, EV_TIMEOUT, 1);
}

/* sess_destroy - unlink, tell the worker, free */
static void
sess_destroy(struct sess *s)
{
	struct sess_server	*srv = s->srv;

	TAILQ_REMOVE(&srv->list, s, entry);
	srv->st.current--;
	s->state = SESS_DEAD;
	if (s->client != NULL)
		log_info("sess %llu: peer %s client %s closed: %s",
		    (unsigned long long)s->id, s->peer, s->client,
		    s->why ? s->why : "server stopped");
	else
		log_debug("sess %llu: peer %s closed: %s",
		    (unsigned long long)s->id, s->peer,
		    s->why ? s->why : "server stopped");
	if (s->owed && srv->h.closed != NULL)
		srv->h.closed(s, srv->arg);
	bufferevent_free(s->bev);
	if (s->ssl != NULL)
		tls_free(s->ssl);
	if (s->fd != -1)
		close(s->fd);
	event_free(s->timer);
	event_free(s->wake);
	free(s->client);
	free(s);
}

/* sess_opened - accept the open: EventOpened, then serve requests */
static void
sess_opened(struct sess *s, json_t *extra)
{
	struct sess_server	*srv = s->srv;
	struct timeval		 tv = util_tv(srv->lim.idle_timeout_ms / 1000.0);
	json_t			*e;

	s->state = SESS_OPEN;
	s->owed = 1;
	srv->st.opened++;
	evtimer_del(s->timer);
	if (srv->lim.idle_timeout_ms > 0)
		bufferevent_set_timeouts(s->bev, &tv, NULL);
	e = json_object();
	json_object_set_new(e, "event", json_string("EventOpened"));
	if (s->open_ref >= 0)
		json_object_set_new(e, "ref", json_integer(s->open_ref));
	json_object_set_new(e, "protocol", json_integer(SESS_PROTOCOL_VERSION));
	if (extra != NULL)
		json_object_update_missing(e, extra);
	log_info("sess %llu: peer %s client %s opened",
	    (unsigned long long)s->id, s->peer, s->client);
	sess_send(s, e);
	json_decref(e);
}

/*
 * sess_refused - refuse the open.  Credentials refused: Unauthorized, then
 * close.  Otherwise the link waits for another RequestOpen (within the
 * open timeout, which still runs).
 */
static void
sess_refused(struct sess *s, enum sess_open r, const char *why,
    json_t *extra)
{
	const char	*code = r == SESS_OPEN_UNAVAILABLE ?
			    SESS_ERR_UNAVAILABLE : r == SESS_OPEN_BAD_REQUEST ?
			    SESS_ERR_BAD_REQUEST : r == SESS_OPEN_THROTTLED ?
			    SESS_ERR_TOO_MANY_ATTEMPTS : SESS_ERR_UNAUTHORIZED;
	json_t		*e;

	s->srv->st.refused++;
	if (why == NULL)
		why = "invalid credentials";
	log_info("sess %llu: peer %s client %s refused (%s): %s",
	    (unsigned long long)s->id, s->peer, s->client, code, why);
	e = sess_error_new(s->open_ref, code, why);
	if (extra != NULL)
		json_object_update_missing(e, extra);
	sess_send(s, e);
	json_decref(e);
	if (r == SESS_OPEN_UNAVAILABLE || r == SESS_OPEN_BAD_REQUEST) {
		s->state = SESS_NEW;
		free(s->client);
		s->client = NULL;
		/* what came behind the refused open is served now */
		event_active(s->wake, EV_TIMEOUT, 1);
		return;
	}
	sess_close_why(s, "unauthorized");
}

/* sess_open_done - the worker's late answer to a pending open */
void
sess_open_done(struct sess *s, enum sess_open r, json_t *extra,
    const char *why)
{
	if (s->state != SESS_PENDING)
		return;
	if (r == SESS_OPEN_ACCEPT) {
		sess_opened(s, extra);
		/* requests that came behind RequestOpen wait in the input */
		event_active(s->wake, EV_TIMEOUT, 1);
	} else
		sess_refused(s, r, why, extra);
}

/* sess_open_string - a string field of RequestOpen, or NULL */
static const char *
sess_open_string(const json_t *req, const char *key, size_t max)
{
	const json_t	*j = json_object_get(req, key);

	if (!json_is_string(j) || json_string_length(j) == 0 ||
	    json_string_length(j) > max)
		return NULL;
	return json_string_value(j);
}

/* sess_do_open - RequestOpen: check its fields, ask the worker */
static void
sess_do_open(struct sess *s, struct sess_request *rq)
{
	struct sess_server	*srv = s->srv;
	const char		*client, *why = NULL;
	json_t			*extra;
	enum sess_open		 r;

	client = sess_open_string(rq->obj, "client", SESS_CLIENT_NAME_MAX);
	if (client == NULL ||
	    sess_open_string(rq->obj, "token", SESS_TOKEN_MAX) == NULL) {
		srv->st.protocol_errors++;
		sess_send_error(s, rq->ref, SESS_ERR_BAD_REQUEST,
		    "RequestOpen needs string \"token\" and \"client\" "
		    "(at most %d bytes)", SESS_CLIENT_NAME_MAX);
		return;
	}
	s->client = xstrdup(client);
	s->open_ref = rq->ref;
	s->state = SESS_PENDING;	/* the hook may call sess_open_done */
	extra = json_object();
	r = srv->h.open(s, rq->obj, extra, srv->arg, &why);
	/* the worker may keep its data for another open: it hears the end */
	if (r == SESS_OPEN_PENDING || r == SESS_OPEN_UNAVAILABLE ||
	    r == SESS_OPEN_BAD_REQUEST)
		s->owed = 1;
	if (r != SESS_OPEN_PENDING && s->state == SESS_PENDING) {
		if (r == SESS_OPEN_ACCEPT)
			sess_opened(s, extra);
		else
			sess_refused(s, r, why, NULL);
	}
	json_decref(extra);
}

/* sess_dispatch - route one decoded request by name and state */
static void
sess_dispatch(struct sess *s, struct sess_request *rq)
{
	struct sess_server	*srv = s->srv;
	json_t			*e;

	if (strcmp(rq->name, "RequestOpen") == 0) {
		if (s->state == SESS_NEW)
			sess_do_open(s, rq);
		else
			sess_send_error(s, rq->ref, SESS_ERR_ALREADY_OPENED,
			    "the session is already open");
	} else if (s->state != SESS_OPEN) {
		srv->st.protocol_errors++;
		sess_send_error(s, rq->ref, SESS_ERR_NOT_OPENED,
		    "the first request must be RequestOpen");
	} else if (strcmp(rq->name, "RequestPing") == 0) {
		e = json_pack("{s:s}", "event", "EventPong");
		sess_reply(s, rq->ref, e);
		json_decref(e);
	} else
		srv->h.request(s, rq->name, rq->ref, rq->obj, srv->arg);
}

/* sess_line - decode and dispatch one line */
static void
sess_line(struct sess *s, const char *line, size_t len)
{
	struct sess_request	 rq;
	const char		*code;
	char			 msg[SESS_MSG_MAX];

	if (sess_line_blank(line, len))
		return;
	if (sess_decode(line, len, &rq, &code, msg, sizeof(msg)) == -1) {
		s->srv->st.protocol_errors++;
		sess_send_error(s, rq.ref, code, "%s", msg);
		return;
	}
	sess_dispatch(s, &rq);
	sess_request_clear(&rq);
}

/*
 * sess_to_http - the connection speaks HTTP: its socket and what was read
 * go to the HTTP server; the session is gone (no closed hook: it never
 * opened)
 */
static void
sess_to_http(struct sess *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	size_t		 len = evbuffer_get_length(in);
	struct ssl_st	*ssl = s->ssl;
	int		 fd = bufferevent_getfd(s->bev);

	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	if (ssl != NULL) {
		/* the socket and the SSL are the session's: they go whole */
		s->ssl = NULL;
		s->fd = -1;
	} else if (fd == -1 || bufferevent_setfd(s->bev, -1) == -1) {
		sess_kill(s, "cannot hand the socket to HTTP");
		return;
	}
	log_debug("sess %llu: peer %s speaks HTTP", (unsigned long long)s->id,
	    s->peer);
	http_server_adopt(s->srv->http, fd, ssl, evbuffer_pullup(in, -1),
	    len);
	evbuffer_drain(in, len);
	sess_kill(s, "handed to HTTP");
}

/*
 * sess_face - the first bytes of a connection decide what it speaks.  1
 * when there is nothing more for the session protocol to do now: gone to
 * HTTP, or too few bytes to tell.
 */
static int
sess_face(struct sess *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	size_t		 len = evbuffer_get_length(in);
	const void	*buf;

	if (s->decided)
		return 0;
	if (s->srv->http == NULL) {
		s->decided = 1;
		return 0;
	}
	if (len > HTTP_SNIFF_MAX)
		len = HTTP_SNIFF_MAX;
	buf = evbuffer_pullup(in, (ssize_t)len);
	switch (http_sniff(buf, len)) {
	case HTTP_SNIFF_MORE:
		return 1;
	case HTTP_SNIFF_HTTP:
		s->decided = 1;
		sess_to_http(s);
		return 1;
	default:
		s->decided = 1;
		return 0;
	}
}

/* sess_process - serve every complete line in the input */
static void
sess_process(struct sess *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	const char	*buf;
	size_t		 len, line_len, used;

	if (s->state == SESS_NEW && evbuffer_get_length(in) > 0 &&
	    sess_face(s))
		return;
	while ((s->state == SESS_NEW || s->state == SESS_OPEN) &&
	    (len = evbuffer_get_length(in)) > 0) {
		/* contiguous after the first call: drain keeps it so */
		buf = (const char *)evbuffer_pullup(in, -1);
		switch (sess_frame_next(buf, len, s->srv->lim.max_line,
		    &line_len, &used)) {
		case SESS_FRAME_MORE:
			return;
		case SESS_FRAME_TOO_LONG:
			s->srv->st.protocol_errors++;
			sess_send_error(s, SESS_NOREF, SESS_ERR_LINE_TOO_LONG,
			    "a line may hold at most %zu bytes",
			    s->srv->lim.max_line);
			sess_close_why(s, "line too long");
			return;
		case SESS_FRAME_LINE:
			sess_line(s, buf, line_len);
			evbuffer_drain(in, used);
			break;
		}
	}
}

/* sess_read_cb - input: serve it, keep it while the open is pending */
static void
sess_read_cb(struct bufferevent *bev, void *arg)
{
	struct sess	*s = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	if (s->state == SESS_NEW || s->state == SESS_OPEN)
		sess_process(s);
	else if (s->state != SESS_PENDING)
		evbuffer_drain(in, evbuffer_get_length(in));
}

/* sess_watermark - read no more than a full line needs: backpressure */
static void
sess_watermark(struct sess *s)
{
	size_t	high = s->srv->lim.max_line + 2;

	bufferevent_setwatermark(s->bev, EV_READ, 0,
	    high < SESS_READ_MIN ? SESS_READ_MIN : high);
}

/* sess_write_cb - output drained: a closing session may now linger */
static void
sess_write_cb(struct bufferevent *bev, void *arg)
{
	struct sess	*s = arg;

	if (s->state == SESS_CLOSING)
		sess_linger(s);
}

/* sess_tls_error - why a TLS connection failed, for the debug log */
static void
sess_tls_error(struct sess *s)
{
	unsigned long	e;
	char		buf[256];

	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_debug("sess %llu: peer %s: TLS %s: %s",
		    (unsigned long long)s->id, s->peer, s->handshaking ?
		    "handshake failed" : "error", buf);
	}
}

/* sess_event_cb - EOF, error or idle timeout on the connection */
static void
sess_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sess	*s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->handshaking = 0;	/* TLS: the session may begin */
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->ssl != NULL)
		sess_tls_error(s);
	if ((what & BEV_EVENT_TIMEOUT) && s->state == SESS_OPEN) {
		s->srv->st.timed_out++;
		sess_send_error(s, SESS_NOREF, SESS_ERR_IDLE_TIMEOUT,
		    "no input for %u ms", s->srv->lim.idle_timeout_ms);
		sess_close_why(s, "idle timeout");
	} else if ((what & BEV_EVENT_EOF) && s->state < SESS_CLOSING)
		/* a half-closed client still gets the answers queued */
		sess_close_why(s, "closed by client");
	else if (what & BEV_EVENT_ERROR)
		sess_kill(s, "connection error");
	else if (what & BEV_EVENT_EOF)
		sess_kill(s, s->why != NULL ? s->why : "closed by client");
}

/* sess_timer_cb - open timeout, or the end of a close that lingers */
static void
sess_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess	*s = arg;

	if (s->handshaking) {
		/* nothing can be said to it before the handshake */
		s->srv->st.timed_out++;
		sess_kill(s, "TLS handshake timeout");
	} else if (s->state == SESS_NEW || s->state == SESS_PENDING) {
		s->srv->st.timed_out++;
		sess_send_error(s, SESS_NOREF, SESS_ERR_OPEN_TIMEOUT,
		    "no RequestOpen accepted within %u ms",
		    s->srv->lim.open_timeout_ms);
		sess_close_why(s, "open timeout");
	} else if (s->state == SESS_CLOSING || s->state == SESS_LINGER)
		sess_kill(s, s->why);
}

/* sess_wake_cb - free a dead session, or serve input left by a late open */
static void
sess_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess	*s = arg;

	if (s->state == SESS_DEAD)
		sess_destroy(s);
	else if (s->state == SESS_OPEN || s->state == SESS_NEW)
		sess_process(s);
}

/*
 * sess_turn_away - refuse a connection over max_clients, without blocking
 * (over TLS, by closing it: there is no room to make the handshake in)
 */
static void
sess_turn_away(struct sess_server *srv, int fd)
{
	json_t	*e;
	char	*line, msg[64];
	size_t	 len;

	srv->st.too_many++;
	if (srv->tls != NULL) {
		close(fd);
		return;
	}
	snprintf(msg, sizeof(msg), "at most %u clients", srv->lim.max_clients);
	e = sess_error_new(SESS_NOREF, SESS_ERR_TOO_MANY, msg);
	if ((line = sess_encode(e, &len)) != NULL &&
	    send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_debug("sess: turning a client away: %s", strerror(errno));
	free(line);
	json_decref(e);
	close(fd);
}

/*
 * sess_tls_bev - the session's bufferevent over TLS, accepting.  The
 * session owns the socket and the SSL (see sess_to_http); a client that
 * closes without close_notify has closed.
 */
static void
sess_tls_bev(struct sess *s, int fd)
{
	s->ssl = tls_accept_new(s->srv->tls, fd);
	s->fd = fd;
	s->handshaking = 1;
	s->bev = bufferevent_openssl_socket_new(s->srv->base, fd, s->ssl,
	    BUFFEREVENT_SSL_ACCEPTING, 0);
	if (s->bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
}

/*
 * sess_make_room - at max_clients, close the connection that has waited
 * longest without asking to open (the list is oldest first), telling it
 * why.  Connections that say nothing, or too little to tell what they
 * speak, then cannot keep a session out; nor can a burst of connections
 * accepted before their first bytes were read.  0 when every connection
 * has opened or is opening.
 */
static int
sess_make_room(struct sess_server *srv)
{
	struct sess	*s;
	struct evbuffer	*out;
	char		 junk[4096];
	int		 fd, i;

	TAILQ_FOREACH(s, &srv->list, entry)
		if (s->state == SESS_NEW)
			break;
	if (s == NULL)
		return 0;
	if (srv->st.evicted++ == 0 || srv->st.evicted % 1000 == 0)
		log_warnx("sess: %u connections (max_clients): closing those "
		    "that waited longest without opening, to make room "
		    "(%llu so far)", srv->lim.max_clients,
		    (unsigned long long)srv->st.evicted);
	if (s->ssl == NULL) {
		fd = bufferevent_getfd(s->bev);
		sess_send_error(s, SESS_NOREF, SESS_ERR_TOO_MANY,
		    "closed to make room: at most %u clients, and this one "
		    "had not opened", srv->lim.max_clients);
		/* what fits in the socket now (the bufferevent keeps its
		 * output's start frozen to all but itself); closed at once */
		out = bufferevent_get_output(s->bev);
		evbuffer_unfreeze(out, 1);
		evbuffer_write(out, fd);
		/* unread bytes would make the close a reset, losing that */
		for (i = 0; i < 16 && recv(fd, junk, sizeof(junk),
		    MSG_DONTWAIT) > 0; i++)
			;
	}
	s->why = "closed to make room";
	sess_destroy(s);
	return 1;
}

/* sess_start - a new session on a connected non-blocking socket */
static int
sess_start(struct sess_server *srv, int fd, const char *peer)
{
	struct timeval	 tv = util_tv(srv->lim.open_timeout_ms / 1000.0);
	struct sess	*s;

	if (srv->st.current >= srv->lim.max_clients && !sess_make_room(srv)) {
		sess_turn_away(srv, fd);
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->id = ++srv->next_id;
	s->open_ref = SESS_NOREF;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->fd = -1;
	if (srv->tls != NULL)
		sess_tls_bev(s, fd);
	else
		s->bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	s->timer = evtimer_new(srv->base, sess_timer_cb, s);
	s->wake = event_new(srv->base, -1, 0, sess_wake_cb, s);
	if (s->bev == NULL || s->timer == NULL || s->wake == NULL)
		fatalx("sess: out of memory for a session");
	sess_set_nodelay(fd);
	bufferevent_setcb(s->bev, sess_read_cb, sess_write_cb, sess_event_cb,
	    s);
	sess_watermark(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	evtimer_add(s->timer, &tv);
	TAILQ_INSERT_TAIL(&srv->list, s, entry);
	srv->st.accepted++;
	srv->st.current++;
	log_debug("sess %llu: peer %s connected", (unsigned long long)s->id,
	    s->peer);
	return 0;
}

/* sess_peer_name - "addr:port" of a socket address */
static void
sess_peer_name(const struct sockaddr *sa, int salen, char *buf, size_t len)
{
	char	host[INET6_ADDRSTRLEN], port[8];

	if (sa->sa_family == AF_UNIX ||
	    getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port,
	    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, len, "local");
	else if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%s", host, port);
	else
		snprintf(buf, len, "%s:%s", host, port);
}

/* sess_accept_cb - a new connection from the listener */
static void
sess_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct sess_server	*srv = arg;
	char			 peer[SESS_PEER_MAX];

	net_pause_ok(&srv->pause, "sess");
	sess_peer_name(sa, salen, peer, sizeof(peer));
	sess_start(arg, fd, peer);
}

/* sess_accept_error_cb - out of descriptors: pause accept, do not spin */
static void
sess_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct sess_server	*srv = arg;
	struct timeval		 tv;

	tv = net_pause_failed(&srv->pause, "sess", EVUTIL_SOCKET_ERROR(),
	    (unsigned)srv->st.current);
	evconnlistener_disable(lev);
	evtimer_add(srv->retry, &tv);
}

/* sess_retry_cb - accept again after a pause for EMFILE */
static void
sess_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess_server	*srv = arg;

	if (srv->lev != NULL && !srv->paused)
		evconnlistener_enable(srv->lev);
}

/*
 * Server.
 */

/* sess_server_new - a server on listen_fd (owned), or NULL */
struct sess_server *
sess_server_new(struct event_base *base, int listen_fd,
    const struct sess_limits *lim, const struct sess_handlers *h, void *arg)
{
	struct sess_server	*srv;

	if (h == NULL || h->open == NULL || h->request == NULL)
		fatalx("sess_server_new: the open and request hooks are "
		    "required");
	srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->h = *h;
	srv->arg = arg;
	sess_limits_fix(&srv->lim, lim);
	TAILQ_INIT(&srv->list);
	if ((srv->retry = evtimer_new(base, sess_retry_cb, srv)) == NULL)
		fatalx("sess: evtimer_new");
	if (sess_server_set_listener(srv, listen_fd) == -1) {
		sess_server_free(srv);
		return NULL;
	}
	return srv;
}

/* sess_server_set_listener - accept on listen_fd (owned) from now on */
int
sess_server_set_listener(struct sess_server *srv, int listen_fd)
{
	unsigned	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	if (srv->lev != NULL)
		evconnlistener_free(srv->lev);
	srv->lev = NULL;
	evtimer_del(srv->retry);
	if (listen_fd == -1)
		return 0;
	if (srv->paused)
		flags |= LEV_OPT_DISABLED;
	if (evutil_make_socket_nonblocking(listen_fd) == -1 ||
	    (srv->lev = evconnlistener_new(srv->base, sess_accept_cb, srv,
	    flags, 0, listen_fd)) == NULL) {
		log_warn("sess: listener on fd %d", listen_fd);
		close(listen_fd);
		return -1;
	}
	evconnlistener_set_error_cb(srv->lev, sess_accept_error_cb);
	return 0;
}

/* sess_limits_of - the session protocol keys of a worker's section */
struct sess_limits
sess_limits_of(const struct conf_worker *w)
{
	struct sess_limits	l;

	memset(&l, 0, sizeof(l));
	l.max_line = w->max_line;
	l.max_output = w->max_output;
	l.max_clients = w->max_clients;
	l.open_timeout_ms = (unsigned)(w->open_timeout * 1000);
	return l;
}

/* sess_server_set_limits - new limits; sessions keep their connection */
void
sess_server_set_limits(struct sess_server *srv, const struct sess_limits *lim)
{
	struct sess	*s;
	struct timeval	 tv;

	sess_limits_fix(&srv->lim, lim);
	tv = util_tv(srv->lim.idle_timeout_ms / 1000.0);
	TAILQ_FOREACH(s, &srv->list, entry) {
		sess_watermark(s);
		if (s->state == SESS_OPEN)
			bufferevent_set_timeouts(s->bev,
			    srv->lim.idle_timeout_ms ? &tv : NULL, NULL);
	}
}

/* sess_server_pause - stop accepting; sessions go on */
void
sess_server_pause(struct sess_server *srv)
{
	srv->paused = 1;
	evtimer_del(srv->retry);
	if (srv->lev != NULL)
		evconnlistener_disable(srv->lev);
}

/* sess_server_close_all - close every session after flushing */
void
sess_server_close_all(struct sess_server *srv, const char *code,
    const char *message)
{
	struct sess	*s;

	TAILQ_FOREACH(s, &srv->list, entry) {
		if (code != NULL)
			sess_send_error(s, SESS_NOREF, code, "%s",
			    message ? message : code);
		sess_close_why(s, "server closing");
	}
}

/* sess_server_set_tls - new connections speak TLS with ctx (NULL: not) */
void
sess_server_set_tls(struct sess_server *srv, struct ssl_ctx_st *ctx)
{
	struct ssl_ctx_st	*old = srv->tls;

	srv->tls = tls_ctx_ref(ctx);
	tls_ctx_free(old);
}

/* sess_server_set_http - connections speaking HTTP go to http (or none) */
void
sess_server_set_http(struct sess_server *srv, struct http_server *http)
{
	srv->http = http;
}

/* sess_server_adopt - serve an already connected socket */
int
sess_server_adopt(struct sess_server *srv, int fd, const char *peer)
{
	if (evutil_make_socket_nonblocking(fd) == -1) {
		close(fd);
		return -1;
	}
	return sess_start(srv, fd, peer ? peer : "local");
}

/* sess_server_free - drop every session and the listener */
void
sess_server_free(struct sess_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->lev != NULL)
		evconnlistener_free(srv->lev);
	while (!TAILQ_EMPTY(&srv->list))
		sess_destroy(TAILQ_FIRST(&srv->list));
	event_free(srv->retry);
	tls_ctx_free(srv->tls);
	free(srv);
}

/* sess_server_stats - counters for the metrics registry */
const struct sess_stats *
sess_server_stats(const struct sess_server *srv)
{
	return &srv->st;
}

/* sess_set_data - attach the worker's state to a session */
void
sess_set_data(struct sess *s, void *data)
{
	s->data = data;
}

/* sess_data - the worker's state of a session */
void *
sess_data(const struct sess *s)
{
	return s->data;
}

/* sess_client_name - the "client" of RequestOpen, NULL before it */
const char *
sess_client_name(const struct sess *s)
{
	return s->client;
}

/* sess_id - a number unique within this server, for logs */
/* sess_peer - "addr:port" of the client, or "local" */
const char *
sess_peer(const struct sess *s)
{
	return s->peer;
}

uint64_t
sess_id(const struct sess *s)
{
	return s->id;
}
