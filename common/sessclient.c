/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sessclient - the client side of the session protocol (sess.h): one
 * link to a peer server (the interaction server on 7120, for the outbound
 * worker), opened with RequestOpen, kept alive with RequestPing, and made
 * again with backoff when it is lost.  Its framing and decoding are
 * sess.c's.  Over TLS (conf.tls), libevent's OpenSSL bufferevent filters
 * a socket bufferevent that connects; the link is up for RequestOpen once
 * the handshake is done.
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
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backoff.h"
#include "log.h"
#include "net.h"
#include "sess.h"
#include "sess_int.h"
#include "tls.h"
#include "util.h"


/*
 * Client: one link to a peer server, opened with RequestOpen, kept alive
 * with RequestPing, re-established with backoff.  Its bufferevent defers
 * callbacks, so nothing is freed inside a call that libevent is making,
 * and a failure found inside a handler is carried out from the loop.
 */

#define SESS_CL_TIMEOUT_MS	10000
#define SESS_CL_BACKOFF_MIN_US	100000
#define SESS_CL_BACKOFF_MAX_US	30000000
#define SESS_CL_STARTING_US	10000000 /* "Unavailable" that long: warn */

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
	struct bufferevent		*sock;	/* TLS: what bev filters */
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
	int				 peer_stopping;	/* it said Shutdown */
	int				 unavailable;	/* refused: Unavailable */
	int				 warn_next;	/* after an info */
	uint64_t			 unavail_since_us; /* refused so */
	int				 unavail_told;	/* warned of it */
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

/*
 * sess_cl_tell - log a lost link or a failed attempt: a warning for the
 * first failure in a row.  A server that stops in order (it said
 * Shutdown: a restart, or the whole service stopping), or that says it is
 * not ready yet (Unavailable: it is starting), is told at info; a failure
 * of another kind after it warns, and so does a server still starting
 * after SESS_CL_STARTING_US.
 */
static void
sess_cl_tell(struct sess_client *c, int was_up, const char *why,
    uint64_t delay_ms)
{
	const char	*host = c->conf.host, *port = c->conf.port;
	uint64_t	 now = now_mono_us();

	if (was_up && c->peer_stopping) {
		log_info("sess: %s:%s: the server is stopping (%s); retrying "
		    "in %llu ms", host, port, why, (unsigned long long)delay_ms);
		c->warn_next = 1;
	} else if (c->unavailable && c->unavail_since_us == 0) {
		log_info("sess: %s:%s: %s (the server is starting); retrying "
		    "in %llu ms", host, port, why, (unsigned long long)delay_ms);
		c->unavail_since_us = now;
		c->warn_next = 1;
	} else if (c->unavailable && !c->unavail_told && now -
	    c->unavail_since_us >= SESS_CL_STARTING_US) {
		log_warnx("sess: %s:%s: %s, for %llu s now; retrying in %llu ms",
		    host, port, why, (unsigned long long)((now -
		    c->unavail_since_us) / 1000000),
		    (unsigned long long)delay_ms);
		c->unavail_told = 1;
	} else if (!c->unavailable && (was_up || c->bo.attempt == 1 ||
	    c->warn_next)) {
		log_warnx("sess: %s:%s: %s; retrying in %llu ms", host, port,
		    why, (unsigned long long)delay_ms);
		c->warn_next = 0;
	} else
		log_debug("sess: %s:%s: %s", host, port, why);
}

/* sess_cl_fail - the link is lost: tell, then try again after backoff */
static void
sess_cl_fail(struct sess_client *c, const char *why)
{
	int		 was_up = c->state == SESS_CL_UP;
	uint64_t	 delay;

	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = c->sock = NULL;
	c->state = SESS_CL_WAIT;
	c->fail_why = NULL;
	evtimer_del(c->timer);
	event_del(c->wake);
	delay = backoff_next(&c->bo);
	sess_cl_tell(c, was_up, why, delay / 1000);
	c->peer_stopping = c->unavailable = 0;
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
		msg = json_string_value(json_object_get(ev->obj, "code"));
		c->unavailable = msg != NULL &&
		    strcmp(msg, SESS_ERR_UNAVAILABLE) == 0;
		msg = json_string_value(json_object_get(ev->obj, "message"));
		snprintf(c->why, sizeof(c->why), "RequestOpen refused: %s: %s",
		    ev->name, msg ? msg : "-");
		sess_cl_fail_later(c, c->why);
		return;
	}
	c->state = SESS_CL_UP;
	c->peer_stopping = c->warn_next = c->unavail_told = 0;
	c->unavail_since_us = 0;
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

/* sess_cl_shutdown - the server's EventError Shutdown: it is stopping */
static int
sess_cl_shutdown(const struct sess_request *ev)
{
	const char	*code;

	if (strcmp(ev->name, "EventError") != 0)
		return 0;
	code = json_string_value(json_object_get(ev->obj, "code"));
	return code != NULL && strcmp(code, "Shutdown") == 0;
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
	else if (ev.ref == SESS_NOREF && sess_cl_shutdown(&ev)) {
		c->peer_stopping = 1;
		if (c->h.event != NULL)
			c->h.event(c, ev.obj, c->arg);
	}
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

	sess_set_nodelay(bufferevent_getfd(c->sock != NULL ? c->sock :
	    c->bev));
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
	struct bufferevent	*sock = c->sock != NULL ? c->sock : bev;
	unsigned long		 e;

	if (what & BEV_EVENT_CONNECTED)
		sess_cl_open(c);
	else if (what & BEV_EVENT_EOF)
		sess_cl_fail(c, "closed by server");
	else if (what & BEV_EVENT_ERROR) {
		if (bufferevent_socket_get_dns_error(sock) != 0)
			snprintf(c->why, sizeof(c->why), "resolve: %s",
			    evutil_gai_strerror(
			    bufferevent_socket_get_dns_error(sock)));
		else if (c->sock != NULL &&
		    (e = bufferevent_get_openssl_error(bev)) != 0) {
			snprintf(c->why, sizeof(c->why), "TLS: ");
			ERR_error_string_n(e, c->why + 5, sizeof(c->why) - 5);
		} else
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

/* sess_cl_tls - the TLS bufferevent over the socket's, connecting */
static void
sess_cl_tls(struct sess_client *c)
{
	SSL	*ssl;

	c->sock = c->bev;
	if ((ssl = SSL_new(c->conf.tls)) == NULL)
		fatalx("sess: SSL_new failed");
	c->bev = bufferevent_openssl_filter_new(c->base, c->sock, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		fatalx("sess: bufferevent_openssl_filter_new");
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
}

/* sess_cl_connect - start one attempt */
static void
sess_cl_connect(struct sess_client *c)
{
	c->bev = bufferevent_socket_new(c->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		fatalx("sess: bufferevent_socket_new");
	if (c->conf.tls != NULL)
		sess_cl_tls(c);
	bufferevent_setcb(c->bev, sess_cl_read_cb, NULL, sess_cl_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = SESS_CL_CONNECTING;
	c->last_rx_us = now_mono_us();
	sess_cl_arm(c, c->conf.timeout_ms);
	if (bufferevent_socket_connect_hostname(c->sock != NULL ? c->sock :
	    c->bev, c->dns, AF_UNSPEC, c->conf.host, atoi(c->conf.port)) == -1)
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
	dst->tls = tls_ctx_ref(src->tls);
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
	c->bev = c->sock = NULL;
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
	tls_ctx_free(c->conf.tls);
	free(c);
}
