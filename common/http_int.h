/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_int - what the connection side of the HTTP server (http.c) and its
 * request bodies (http_body.c: the chunked decoder, bodies streamed to
 * their handler) share beyond http.h; nothing else includes it.
 */
#ifndef TENANTD_HTTP_INT_H
#define TENANTD_HTTP_INT_H

#include <sys/queue.h>

#include <ctype.h>
#include <stdint.h>

#include "http.h"
#include "net.h"

struct evbuffer;
struct event;
struct evconnlistener;
struct ssl_ctx_st;
struct ssl_st;

/* A request body streamed to its handler (http_body_stream). */
struct http_body_in {
	http_body_cb		*cb;		/* set while the body comes */
	void			*arg;
	uint64_t		 max;
	uint64_t		 got;
	uint64_t		 left;		/* Content-Length still due */
	struct http_chunked	 dec;
	int			 chunked;
	int			 paused;
	int			 started;	/* the head is drained */
};

struct http_conn {
	TAILQ_ENTRY(http_conn)	 entry;
	struct http_server	*srv;
	int			 fd;
	struct ssl_st		*ssl;		/* TLS, or NULL: plaintext */
	int			 handshaking;	/* TLS before its first byte */
	int			 read_on_write;	/* a TLS read waits to write */
	int			 broken;	/* no close_notify: it failed */
	struct event		*ev_read;
	struct event		*ev_write;
	struct event		*ev_timer;	/* see conn_deadline */
	struct evbuffer		*in;
	struct evbuffer		*out;
	int			 busy;		/* a response is pending */
	int			 keep_alive;	/* of the pending request */
	int			 closing;	/* free once output drained */
	int			 gone;		/* peer closed while busy */
	int			 in_process;
	int			 throttled;	/* reading off: output backlog */
	int			 label;		/* of the pending request */
	int			 fresh;		/* no head complete yet */
	int			 trusted;	/* see http_conn_trust */
	int			 deciding;	/* the head hook has it */
	int			 in_body;	/* head accepted, body coming */
	int			 expect;	/* wants 100 Continue */
	int			 head_only;	/* answering HEAD */
	int			 linger;	/* drain input after the answer */
	int			 lingering;
	size_t			 head_len;	/* of the body being read */
	size_t			 need;		/* bytes the request needs */
	uint64_t		 since_us;	/* start of the current wait */
	http_stream_closed	*stream_closed;	/* set while streaming */
	void			*stream_arg;
	http_stream_drained	*stream_drained; /* see http_stream_flow */
	int			 stream_full;	/* the writer waits for it */
	uint64_t		 started_us;	/* of the pending request */
	size_t			 body_len;	/* of the head being decided */
	int			 chunked;	/* its body is chunked */
	struct http_body_in	 bin;		/* a body streamed in */
	struct event		*ev_feed;	/* hand bin what is here */
	void			*data;		/* see http_conn_set_data */
	void			(*data_free)(void *);
};

struct http_server {
	struct event_base		*base;
	struct evconnlistener		*listener;
	struct ssl_ctx_st		*tls;		/* accepted: TLS */
	struct http_limits		 limits;
	http_handler			*handler;
	void				*arg;
	http_observer			*observer;
	void				*observer_arg;
	http_body_limit			*body_limit;
	void				*body_limit_arg;
	http_head_hook			*head_hook;
	void				*head_arg;
	TAILQ_HEAD(, http_conn)		 conns;
	unsigned			 nconns;
	struct event			*ev_accept;	/* accept again */
	struct net_pause		 accept_pause;
	int				 paused;
	int				 stopping;	/* every answer closes */
	int				 streaming;	/* see set_streaming */
	uint64_t			 max_stream;
	unsigned			 evicted;	/* while full */
	uint64_t			 made_room;	/* connections closed */
	uint64_t			 turned_away;	/* and refused, ever */
};

/* http_us - seconds as microseconds */
static inline uint64_t
http_us(double seconds)
{
	return (uint64_t)(seconds * 1e6);
}

/* http_hexval - a hex digit's value, or -1 */
static inline int
http_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* http.c: the connection */
/* Answer status (a request not parsed, too slow, refused) and close. */
void		 http_conn_fail(struct http_conn *, int status);
/* 100 Continue, to a client that waits for it before sending a body. */
void		 http_conn_send_continue(struct http_conn *);
/* (Re)arm the connection's timer for what it waits for now. */
void		 http_conn_timer(struct http_conn *);

/* http_body.c: a body streamed to its handler */
/* The largest Content-Length a head may announce. */
size_t		 http_body_cap(const struct http_server *);
/* Hand the handler what is here of its body, unless it is paused. */
void		 http_body_feed(struct http_conn *);
/* The stream is over (0, or why not): the handler's last call. */
void		 http_body_tell(struct http_conn *, ssize_t code);
/* End the stream with an error: told first, then answered status. */
void		 http_body_refuse(struct http_conn *, ssize_t code, int status);
/* When the body c waits for, streamed or whole, is overdue (µs). */
uint64_t	 http_body_deadline(const struct http_conn *);

#endif
