/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - a small HTTP/1.1 server on libevent for the metrics, config and
 * routing workers: keep-alive, pipelining (answered in order), bodies by
 * Content-Length, limits on header and body size, deadlines for a
 * request's head and body, idle timeouts, HEAD served as GET without the
 * body, handlers that may answer later (after a database round trip), and
 * a hook that may refuse a request from its head before its body is read.
 *
 * Against clients that hold connections without finishing requests
 * (slowloris): a head must arrive within header_timeout of its first
 * byte (of the accept, for a new connection), a body within body_timeout
 * plus a second per HTTP_BODY_MIN_RATE bytes, else 408 and close; and at
 * max_clients a new connection takes the place of the one that has waited
 * longest without a request in hand and without being trusted
 * (http_conn_trust), so only trusted or busy connections can fill the
 * server.
 *
 * The request parser is a pure function over a buffer, for unit tests and
 * fuzzing.
 */
#ifndef TENANTD_HTTP_H
#define TENANTD_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define HTTP_HEADERS_MAX	48
#define HTTP_HEADER_BYTES_MAX	16384

struct http_header {
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};

struct http_request {
	const char		*method;
	size_t			 method_len;
	const char		*target;	/* path and query */
	size_t			 target_len;
	size_t			 path_len;	/* target up to '?' */
	int			 minor;		/* HTTP/1.minor */
	int			 keep_alive;
	struct http_header	 headers[HTTP_HEADERS_MAX];
	int			 nheaders;
	const char		*body;		/* NULL until all is read */
	size_t			 body_len;	/* from Content-Length */
};

/* A body must arrive at this rate (bytes/s) on average, after a grace. */
#define HTTP_BODY_MIN_RATE	1024

enum http_parse_rc {
	HTTP_PARSE_OK = 0,
	HTTP_PARSE_MORE,
	HTTP_PARSE_ERROR,	/* *status says which: 400, 413, 431, 501, 505 */
};

/*
 * On HTTP_PARSE_OK *used is the request's length; on HTTP_PARSE_MORE it
 * is the length the whole request will have once its headers are in
 * (0 before), so a caller need not parse again until it has that much.
 */
enum http_parse_rc http_parse_request(const char *buf, size_t len,
		    size_t max_body, struct http_request *, size_t *used,
		    int *status);
/* The value of a header (case-insensitive name), or NULL. */
const char	*http_header(const struct http_request *, const char *name,
		    size_t *len);
int		 http_method_is(const struct http_request *, const char *);
/*
 * The value of query parameter name, percent-decoded ('+' is a space),
 * into out.  1 when found, 0 when absent, -1 when malformed or too long.
 */
int		 http_query(const struct http_request *, const char *name,
		    char *out, size_t outlen);
/*
 * Walk the query parameters: *pos starts at 0.  1 with the next key and
 * value decoded, 0 at the end, -1 when one is malformed or too long.
 */
int		 http_query_next(const struct http_request *, size_t *pos,
		    char *key, size_t keylen, char *val, size_t vallen);
int		 http_path_is(const struct http_request *, const char *);
const char	*http_status_text(int);
/*
 * A copy of a request that outlives its handler (one allocation, freed
 * with free(3)), for a handler that must wait before it can decide, such
 * as for a token check.
 */
struct http_request *http_request_copy(const struct http_request *);

struct http_server;
struct http_conn;

typedef void	 http_handler(struct http_conn *, const struct http_request *,
		    void *);

struct http_limits {
	size_t		 max_body;
	size_t		 max_output;	/* stop reading above this backlog */
	unsigned	 max_clients;
	double		 idle_timeout;	/* seconds between requests */
	double		 header_timeout; /* seconds for a head; 0: 10 */
	double		 body_timeout;	/* seconds of grace for a body; 0: 10 */
};

/* The server owns listen_fd and closes it on http_server_free. */
struct http_server *http_server_new(struct event_base *, int listen_fd,
		    const struct http_limits *, http_handler *, void *);
/* Swap the listening socket (reload); the old one is closed. */
void		 http_server_set_listener(struct http_server *, int fd);
void		 http_server_set_limits(struct http_server *,
		    const struct http_limits *);
/*
 * Called at every answer with its status, the seconds since its request
 * was read, and the label its handler set (0 if none): for metrics.
 */
typedef void	 http_observer(int status, double seconds, int label, void *);
void		 http_server_set_observer(struct http_server *,
		    http_observer *, void *);
/*
 * A smaller body limit for some requests, decided from the headers
 * before the body is read: 413 at once when Content-Length exceeds it.
 */
typedef size_t	 http_body_limit(const struct http_request *, void *);
void		 http_server_set_body_limit(struct http_server *,
		    http_body_limit *, void *);
/*
 * A request whose body has not all arrived with its head is first shown
 * to the head hook (body NULL, body_len set, keep_alive not yet known),
 * and reading stops.  The hook, at once or later, either calls
 * http_continue, and the handler gets the whole request once its body is
 * in, or answers it with http_respond: the body is then never read, the
 * connection closes, and the handler never sees the request.  A client
 * that sent "Expect: 100-continue" gets "100 Continue" at http_continue.
 * Without a hook every body is read.
 */
typedef void	 http_head_hook(struct http_conn *, const struct http_request *,
		    void *);
void		 http_server_set_head_hook(struct http_server *,
		    http_head_hook *, void *);
void		 http_continue(struct http_conn *);
/* Label the request being handled, for the observer (a route, say). */
void		 http_conn_set_label(struct http_conn *, int);
/*
 * The client proved who it is (an authenticated request): its connection
 * is never closed to make room for a new one at max_clients.
 */
void		 http_conn_trust(struct http_conn *);
/*
 * A streamed answer (chunked): begin, write any number of times, end.
 * closed(arg) is called if the client goes away first; after it, and
 * after http_stream_write returned -1 (the client does not read fast
 * enough and was cut off), the connection must not be used again.
 */
typedef void	 http_stream_closed(void *);
/*
 * -1 when the stream must not be written, and the connection must not be
 * used again: the client left, or it asked with HEAD (the status and
 * headers were its whole answer).
 */
int		 http_stream_begin(struct http_conn *, int status,
		    const char *content_type, http_stream_closed *, void *);
int		 http_stream_write(struct http_conn *, const void *, size_t);
void		 http_stream_end(struct http_conn *);
/* Stop accepting; existing connections finish their requests. */
void		 http_server_pause(struct http_server *);
unsigned	 http_server_clients(const struct http_server *);
void		 http_server_free(struct http_server *);

/*
 * Answer the request being handled.  Exactly one response per request;
 * it may be sent after the handler returned.  extra_headers is NULL or
 * "Name: value\r\n" lines.  Handlers see a HEAD request as a GET; its
 * answer keeps the status and headers, Content-Length included, and
 * leaves the body out.
 */
void		 http_respond(struct http_conn *, int status,
		    const char *content_type, const char *extra_headers,
		    const void *body, size_t len);

#endif
