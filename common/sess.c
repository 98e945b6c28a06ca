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
 * The client at the end speaks the same protocol to a peer server and
 * reconnects with backoff.
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
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "backoff.h"
#include "conf.h"
#include "log.h"
#include "net.h"
#include "sess.h"
#include "util.h"

#define SESS_MSG_MAX		512
#define SESS_PEER_MAX		64
#define SESS_TOKEN_MAX		4096
#define SESS_READ_MIN		16384	/* input read ahead, at least */
#define SESS_DECODE_FLAGS	(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

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
	struct event		*timer;	/* open timeout, then linger deadline */
	struct event		*wake;	/* activated: resume input, or free */
	enum sess_state		 state;
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
static int
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
static struct evbuffer *
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
static void
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
sess_refused(struct sess *s, enum sess_open r, const char *why)
{
	const char	*code = r == SESS_OPEN_UNAVAILABLE ?
			    SESS_ERR_UNAVAILABLE : r == SESS_OPEN_BAD_REQUEST ?
			    SESS_ERR_BAD_REQUEST : SESS_ERR_UNAUTHORIZED;

	s->srv->st.refused++;
	if (why == NULL)
		why = "invalid credentials";
	log_info("sess %llu: peer %s client %s refused (%s): %s",
	    (unsigned long long)s->id, s->peer, s->client, code, why);
	sess_send_error(s, s->open_ref, code, "%s", why);
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
		sess_refused(s, r, why);
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
			sess_refused(s, r, why);
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

/* sess_process - serve every complete line in the input */
static void
sess_process(struct sess *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	const char	*buf;
	size_t		 len, line_len, used;

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

/* sess_event_cb - EOF, error or idle timeout on the connection */
static void
sess_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sess	*s = arg;

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

	if (s->state == SESS_NEW || s->state == SESS_PENDING) {
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

/* sess_turn_away - refuse a connection over max_clients, without blocking */
static void
sess_turn_away(struct sess_server *srv, int fd)
{
	json_t	*e;
	char	*line, msg[64];
	size_t	 len;

	srv->st.too_many++;
	snprintf(msg, sizeof(msg), "at most %u clients", srv->lim.max_clients);
	e = sess_error_new(SESS_NOREF, SESS_ERR_TOO_MANY, msg);
	if ((line = sess_encode(e, &len)) != NULL &&
	    send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_debug("sess: turning a client away: %s", strerror(errno));
	free(line);
	json_decref(e);
	close(fd);
}

/* sess_start - a new session on a connected non-blocking socket */
static int
sess_start(struct sess_server *srv, int fd, const char *peer)
{
	struct timeval	 tv = util_tv(srv->lim.open_timeout_ms / 1000.0);
	struct sess	*s;

	if (srv->st.current >= srv->lim.max_clients) {
		sess_turn_away(srv, fd);
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->id = ++srv->next_id;
	s->open_ref = SESS_NOREF;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
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
uint64_t
sess_id(const struct sess *s)
{
	return s->id;
}

/*
 * Client: one link to a peer server, opened with RequestOpen, kept alive
 * with RequestPing, re-established with backoff.  Its bufferevent defers
 * callbacks, so nothing is freed inside a call that libevent is making,
 * and a failure found inside a handler is carried out from the loop.
 */

#define SESS_CL_TIMEOUT_MS	10000
#define SESS_CL_BACKOFF_MIN_US	100000
#define SESS_CL_BACKOFF_MAX_US	30000000

enum sess_cl_state {
	SESS_CL_WAIT,		/* before the next attempt */
	SESS_CL_CONNECTING,
	SESS_CL_OPENING,	/* RequestOpen sent */
	SESS_CL_UP,
};

struct sess_pending {
	TAILQ_ENTRY(sess_pending)	 entry;
	json_int_t			 ref;
	sess_reply_cb			 cb;	/* NULL: drop the reply */
	void				*cbarg;
};

TAILQ_HEAD(sess_pending_list, sess_pending);

struct sess_client {
	struct event_base		*base;
	struct evdns_base		*dns;	/* only for a host name */
	struct bufferevent		*bev;
	struct event			*timer;	/* attempt, deadline, ping */
	struct event			*wake;	/* carry out fail_why */
	struct sess_client_conf		 conf;	/* strings owned */
	struct sess_client_handlers	 h;
	void				*arg;
	struct backoff			 bo;
	enum sess_cl_state		 state;
	json_int_t			 next_ref;
	json_int_t			 open_ref;
	uint64_t			 last_rx_us;
	const char			*fail_why;
	char				 why[SESS_MSG_MAX];
	struct sess_pending_list	 pending;
};

static void	sess_cl_connect(struct sess_client *);

/* sess_cl_arm - run the timer in ms */
static void
sess_cl_arm(struct sess_client *c, unsigned ms)
{
	struct timeval	tv = util_tv(ms / 1000.0);

	evtimer_add(c->timer, &tv);
}

/* sess_cl_fail_later - lose the link from the loop, not from here */
static void
sess_cl_fail_later(struct sess_client *c, const char *why)
{
	if (c->fail_why != NULL || c->bev == NULL)
		return;
	c->fail_why = why;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->wake, EV_TIMEOUT, 1);
}

/* sess_cl_drop_pending - answer every waiting request with NULL */
static void
sess_cl_drop_pending(struct sess_client *c)
{
	struct sess_pending_list	 list;
	struct sess_pending		*p;

	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &c->pending, entry);
	while ((p = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, p, entry);
		if (p->cb != NULL)
			p->cb(c, NULL, p->cbarg);
		free(p);
	}
}

/* sess_cl_fail - the link is lost: tell, then try again after backoff */
static void
sess_cl_fail(struct sess_client *c, const char *why)
{
	int		 was_up = c->state == SESS_CL_UP;
	uint64_t	 delay;

	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->state = SESS_CL_WAIT;
	c->fail_why = NULL;
	evtimer_del(c->timer);
	event_del(c->wake);
	delay = backoff_next(&c->bo);
	if (was_up || c->bo.attempt == 1)
		log_warnx("sess: %s:%s: %s; retrying in %llu ms",
		    c->conf.host, c->conf.port, why,
		    (unsigned long long)(delay / 1000));
	else
		log_debug("sess: %s:%s: %s", c->conf.host, c->conf.port, why);
	sess_cl_arm(c, (unsigned)(delay / 1000));
	sess_cl_drop_pending(c);
	if (was_up && c->h.down != NULL)
		c->h.down(c, why, c->arg);
}

/* sess_cl_write - queue a request line; a peer that does not read fails */
static int
sess_cl_write(struct sess_client *c, json_t *req)
{
	struct evbuffer	*b, *out = bufferevent_get_output(c->bev);
	int		 r = -1;

	if ((b = sess_encode_evb(req)) == NULL)
		return -1;
	if (evbuffer_get_length(out) > 0 && evbuffer_get_length(out) +
	    evbuffer_get_length(b) > c->conf.max_output)
		sess_cl_fail_later(c, "server does not read");
	else
		r = bufferevent_write_buffer(c->bev, b);
	evbuffer_free(b);
	return r;
}

/* sess_cl_next_ref - refs run from 1 and wrap below SESS_REF_MAX */
static json_int_t
sess_cl_next_ref(struct sess_client *c)
{
	if (c->next_ref >= SESS_REF_MAX || c->next_ref < 1)
		c->next_ref = 1;
	return c->next_ref++;
}

/* sess_cl_send - send req with a fresh ref, remembering who waits */
static json_int_t
sess_cl_send(struct sess_client *c, json_t *req, sess_reply_cb cb,
    void *cbarg)
{
	struct sess_pending	*p;
	json_int_t		 ref = sess_cl_next_ref(c);

	json_object_set_new(req, "ref", json_integer(ref));
	if (sess_cl_write(c, req) == -1)
		return -1;
	p = xcalloc(1, sizeof(*p));
	p->ref = ref;
	p->cb = cb;
	p->cbarg = cbarg;
	TAILQ_INSERT_TAIL(&c->pending, p, entry);
	return ref;
}

/* sess_client_request - send a request once the link is up */
json_int_t
sess_client_request(struct sess_client *c, json_t *req, sess_reply_cb cb,
    void *cbarg)
{
	if (!sess_client_is_up(c))
		return -1;
	return sess_cl_send(c, req, cb, cbarg);
}

/* sess_client_is_up - EventOpened received and the link not lost since */
int
sess_client_is_up(const struct sess_client *c)
{
	return c->state == SESS_CL_UP && c->fail_why == NULL;
}

/* sess_cl_opened - answer to RequestOpen */
static void
sess_cl_opened(struct sess_client *c, struct sess_request *ev)
{
	const char	*msg;

	if (strcmp(ev->name, "EventOpened") != 0) {
		msg = json_string_value(json_object_get(ev->obj, "message"));
		snprintf(c->why, sizeof(c->why), "RequestOpen refused: %s: %s",
		    ev->name, msg ? msg : "-");
		sess_cl_fail_later(c, c->why);
		return;
	}
	c->state = SESS_CL_UP;
	backoff_reset(&c->bo);
	evtimer_del(c->timer);
	if (c->conf.ping_ms > 0)
		sess_cl_arm(c, c->conf.ping_ms);
	log_info("sess: %s:%s: session open", c->conf.host, c->conf.port);
	if (c->h.up != NULL)
		c->h.up(c, ev->obj, c->arg);
}

/* sess_cl_answer - route a line with a ref to whoever waits for it */
static int
sess_cl_answer(struct sess_client *c, struct sess_request *ev)
{
	struct sess_pending	*p;

	TAILQ_FOREACH(p, &c->pending, entry)
		if (p->ref == ev->ref)
			break;
	if (p == NULL)
		return -1;
	TAILQ_REMOVE(&c->pending, p, entry);
	if (p->cb != NULL)
		p->cb(c, ev->obj, p->cbarg);
	free(p);
	return 0;
}

/* sess_cl_line - one line from the server */
static void
sess_cl_line(struct sess_client *c, const char *line, size_t len)
{
	struct sess_request	 ev;
	const char		*code;
	char			 msg[SESS_MSG_MAX];

	if (sess_line_blank(line, len))
		return;
	c->last_rx_us = now_mono_us();
	if (sess_decode_kind(line, len, "event", &ev, &code, msg,
	    sizeof(msg)) == -1) {
		log_warnx("sess: %s:%s: bad line ignored: %s: %s",
		    c->conf.host, c->conf.port, code, msg);
		return;
	}
	if (c->state == SESS_CL_OPENING && ev.ref == c->open_ref)
		sess_cl_opened(c, &ev);
	else if (c->state != SESS_CL_UP)
		log_debug("sess: %s:%s: %s before EventOpened ignored",
		    c->conf.host, c->conf.port, ev.name);
	else if (strcmp(ev.name, "EventPong") == 0)
		;	/* last_rx_us is all a pong is for */
	else if (ev.ref == SESS_NOREF || sess_cl_answer(c, &ev) == -1) {
		if (c->h.event != NULL)
			c->h.event(c, ev.obj, c->arg);
	}
	sess_request_clear(&ev);
}

/* sess_cl_read_cb - every complete line, while the link stands */
static void
sess_cl_read_cb(struct bufferevent *bev, void *arg)
{
	struct sess_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	const char		*buf;
	size_t			 len, line_len, used;
	enum sess_frame		 f;

	while (c->fail_why == NULL && (len = evbuffer_get_length(in)) > 0) {
		buf = (const char *)evbuffer_pullup(in, -1);
		f = sess_frame_next(buf, len, c->conf.max_line, &line_len,
		    &used);
		if (f == SESS_FRAME_MORE)
			return;
		if (f == SESS_FRAME_TOO_LONG) {
			sess_cl_fail_later(c, "line too long from server");
			return;
		}
		sess_cl_line(c, buf, line_len);
		evbuffer_drain(in, used);
	}
}

/* sess_cl_open - connected: send RequestOpen */
static void
sess_cl_open(struct sess_client *c)
{
	json_t	*req;

	sess_set_nodelay(bufferevent_getfd(c->bev));
	c->state = SESS_CL_OPENING;
	c->open_ref = sess_cl_next_ref(c);
	req = json_pack("{s:s, s:I, s:s, s:s}", "request", "RequestOpen",
	    "ref", (json_int_t)c->open_ref, "token", c->conf.token,
	    "client", c->conf.client);
	sess_cl_write(c, req);
	json_decref(req);
}

/* sess_cl_event_cb - connected, or the link broke */
static void
sess_cl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sess_client	*c = arg;

	if (what & BEV_EVENT_CONNECTED)
		sess_cl_open(c);
	else if (what & BEV_EVENT_EOF)
		sess_cl_fail(c, "closed by server");
	else if (what & BEV_EVENT_ERROR) {
		if (bufferevent_socket_get_dns_error(bev) != 0)
			snprintf(c->why, sizeof(c->why), "resolve: %s",
			    evutil_gai_strerror(
			    bufferevent_socket_get_dns_error(bev)));
		else
			snprintf(c->why, sizeof(c->why), "%s",
			    evutil_socket_error_to_string(
			    EVUTIL_SOCKET_ERROR()));
		sess_cl_fail(c, c->why);
	}
}

/* sess_cl_ping - keep the link alive; a silent server is lost */
static void
sess_cl_ping(struct sess_client *c)
{
	json_t		*req;
	uint64_t	 quiet = now_mono_us() - c->last_rx_us;

	if (quiet > (uint64_t)(c->conf.ping_ms + c->conf.timeout_ms) * 1000) {
		sess_cl_fail(c, "no answer to RequestPing");
		return;
	}
	req = json_pack("{s:s, s:I}", "request", "RequestPing", "ref",
	    (json_int_t)sess_cl_next_ref(c));
	sess_cl_write(c, req);
	json_decref(req);
	sess_cl_arm(c, c->conf.ping_ms);
}

/* sess_cl_timer_cb - next attempt, connect/open deadline, or ping */
static void
sess_cl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess_client	*c = arg;

	switch (c->state) {
	case SESS_CL_WAIT:
		sess_cl_connect(c);
		break;
	case SESS_CL_CONNECTING:
	case SESS_CL_OPENING:
		sess_cl_fail(c, "no EventOpened in time");
		break;
	case SESS_CL_UP:
		sess_cl_ping(c);
		break;
	}
}

/* sess_cl_wake_cb - carry out a failure found inside a handler */
static void
sess_cl_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess_client	*c = arg;

	if (c->fail_why != NULL)
		sess_cl_fail(c, c->fail_why);
}

/* sess_cl_connect - start one attempt */
static void
sess_cl_connect(struct sess_client *c)
{
	c->bev = bufferevent_socket_new(c->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		fatalx("sess: bufferevent_socket_new");
	bufferevent_setcb(c->bev, sess_cl_read_cb, NULL, sess_cl_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = SESS_CL_CONNECTING;
	c->last_rx_us = now_mono_us();
	sess_cl_arm(c, c->conf.timeout_ms);
	if (bufferevent_socket_connect_hostname(c->bev, c->dns, AF_UNSPEC,
	    c->conf.host, atoi(c->conf.port)) == -1)
		sess_cl_fail_later(c, "cannot start to connect");
}

/* sess_cl_numeric - whether host needs no resolver */
static int
sess_cl_numeric(const char *host)
{
	unsigned char	addr[16];

	return evutil_inet_pton(AF_INET, host, addr) == 1 ||
	    evutil_inet_pton(AF_INET6, host, addr) == 1;
}

/* sess_cl_conf - copy the configuration, with defaults */
static void
sess_cl_conf(struct sess_client_conf *dst, const struct sess_client_conf *src)
{
	*dst = *src;
	dst->host = xstrdup(src->host);
	dst->port = xstrdup(src->port);
	dst->token = xstrdup(src->token);
	dst->client = xstrdup(src->client);
	if (dst->max_line == 0)
		dst->max_line = SESS_DEFAULT_MAX_LINE;
	if (dst->max_output == 0)
		dst->max_output = SESS_DEFAULT_MAX_OUTPUT;
	if (dst->timeout_ms == 0)
		dst->timeout_ms = SESS_CL_TIMEOUT_MS;
	if (dst->backoff_min_us == 0)
		dst->backoff_min_us = SESS_CL_BACKOFF_MIN_US;
	if (dst->backoff_max_us == 0)
		dst->backoff_max_us = SESS_CL_BACKOFF_MAX_US;
}

/* sess_client_new - a client that connects at once and keeps trying */
struct sess_client *
sess_client_new(struct event_base *base, const struct sess_client_conf *conf,
    const struct sess_client_handlers *h, void *arg)
{
	struct sess_client	*c;

	if (conf->host == NULL || conf->port == NULL || conf->token == NULL ||
	    conf->client == NULL)
		fatalx("sess_client_new: host, port, token and client needed");
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	sess_cl_conf(&c->conf, conf);
	if (h != NULL)
		c->h = *h;
	c->arg = arg;
	TAILQ_INIT(&c->pending);
	backoff_init(&c->bo, c->conf.backoff_min_us, c->conf.backoff_max_us,
	    20);
	c->timer = evtimer_new(base, sess_cl_timer_cb, c);
	c->wake = event_new(base, -1, 0, sess_cl_wake_cb, c);
	if (c->timer == NULL || c->wake == NULL)
		fatalx("sess: evtimer_new");
	if (!sess_cl_numeric(c->conf.host) &&
	    (c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL)
		log_warnx("sess: no resolver; %s resolved by getaddrinfo",
		    c->conf.host);
	sess_cl_connect(c);
	return c;
}

/* sess_client_free - drop the link; waiting requests get NULL */
void
sess_client_free(struct sess_client *c)
{
	if (c == NULL)
		return;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->state = SESS_CL_WAIT;
	sess_cl_drop_pending(c);
	event_free(c->timer);
	event_free(c->wake);
	if (c->dns != NULL)
		evdns_base_free(c->dns, 0);
	free((char *)c->conf.host);
	free((char *)c->conf.port);
	free((char *)c->conf.token);
	free((char *)c->conf.client);
	free(c);
}
