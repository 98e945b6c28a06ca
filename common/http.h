/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - a small HTTP/1.1 server on libevent for the metrics, config and
 * routing workers, and for the HTTP face of the session ports (events,
 * stats, outbound: common/sess.c hands a connection whose first bytes are
 * an HTTP request line to http_server_adopt): keep-alive, pipelining
 * (answered in order), whole bodies by Content-Length, bodies streamed to
 * the handler as they arrive (Content-Length or chunked), limits on header
 * and body size, deadlines for a request's head and body, idle timeouts,
 * HEAD served as GET without the body, handlers that may answer later
 * (after a database round trip), and a hook that may refuse a request from
 * its head before its body is read.
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
 * With TLS (http_server_set_tls) a connection does its handshake first,
 * against the same deadline as a head, and is then served exactly as one
 * in plaintext; with a session port's, common/sess.c does the handshake
 * and hands over the connection.
 *
 * The request parser, the chunked body decoder and the first-bytes test
 * are pure functions over a buffer, for unit tests and fuzzing.
 */
#ifndef TENANTD_HTTP_H
#define TENANTD_HTTP_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */
struct ssl_st;		/* OpenSSL's SSL */

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
	int			 chunked;	/* Transfer-Encoding: chunked */
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
 * A request with "Transfer-Encoding: chunked" (the only coding taken; any
 * other is 501, with Content-Length too 400) is never OK: once its head is
 * in, it is MORE with r->chunked set, body_len 0 and *used the head's
 * length; its body is decoded with http_chunked_next.
 */
enum http_parse_rc http_parse_request(const char *buf, size_t len,
		    size_t max_body, struct http_request *, size_t *used,
		    int *status);
/*
 * A chunked request body (RFC 9112 7.1), decoded as it arrives.  Zero the
 * struct before the body's first byte, then call http_chunked_next on
 * what came, from where the last call stopped:
 *   DATA   *data, *len: body bytes (inside buf); *used counts them and the
 *          framing before them;
 *   MORE   all of buf was framing (*used == len): more is needed;
 *   DONE   the last chunk and its trailers end at buf + *used: what
 *          follows is the next request;
 *   ERROR  the framing is malformed, or a size line or the trailers are
 *          over their limits: answer 400.
 * Chunk extensions and trailer fields are read and ignored.  A bare LF is
 * taken for CRLF, as in heads.
 */
#define HTTP_CHUNK_LINE_MAX	1024	/* a size line, extensions included */

struct http_chunked {
	int		 state;
	uint64_t	 left;		/* bytes of the chunk still to come */
	size_t		 line;		/* of the size line being read */
	size_t		 trailer;	/* bytes of trailers so far */
};

enum http_chunked_rc {
	HTTP_CHUNKED_DATA,
	HTTP_CHUNKED_MORE,
	HTTP_CHUNKED_DONE,
	HTTP_CHUNKED_ERROR,
};

enum http_chunked_rc http_chunked_next(struct http_chunked *, const char *buf,
		    size_t len, size_t *used, const char **data, size_t *dlen);

/*
 * Does a connection's first data look like HTTP?  HTTP when it begins with
 * a method token (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS) and a
 * space; MORE while what came is a strict prefix of one of those (at most
 * HTTP_SNIFF_MAX bytes are ever needed); OTHER for anything else (a JSON
 * line begins with '{' or a blank).
 */
#define HTTP_SNIFF_MAX	8	/* "OPTIONS " */

enum http_sniff {
	HTTP_SNIFF_MORE,
	HTTP_SNIFF_HTTP,
	HTTP_SNIFF_OTHER,
};

enum http_sniff	 http_sniff(const void *buf, size_t len);

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

/*
 * The server owns listen_fd and closes it on http_server_free; -1: no
 * listener, the server serves the connections given to http_server_adopt.
 */
struct http_server *http_server_new(struct event_base *, int listen_fd,
		    const struct http_limits *, http_handler *, void *);
/* Swap the listening socket (reload); the old one is closed.  -1: none. */
void		 http_server_set_listener(struct http_server *, int fd);
/*
 * Serve a connected socket (owned from this call on, even when it fails)
 * whose first len bytes were already read by someone else (common/sess.c
 * looking at them): they are served first, as if read from fd.  ssl is
 * NULL, or the TLS connection on fd whose handshake is done and whose
 * first len decrypted bytes these are (owned too).  The connection counts
 * toward max_clients like an accepted one (and may make room, or be
 * answered 503; closed, over TLS).  0, or -1 when it was turned away.
 */
int		 http_server_adopt(struct http_server *, int fd,
		    struct ssl_st *ssl, const void *already, size_t len);
/*
 * TLS on the listener from now on (common/tls.h): a connection it
 * accepts makes the handshake first, within header_timeout of the
 * accept, and is then served as any.  NULL: plaintext.  The server keeps
 * a reference to ctx; connections keep the context they began with.
 */
void		 http_server_set_tls(struct http_server *,
		    struct ssl_ctx_st *ctx);
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
 * Without a hook every body is read.  A chunked body cannot be read whole:
 * http_continue, or no hook, answers it 411 (Length Required); only a
 * streamed body (below) may be chunked.
 */
typedef void	 http_head_hook(struct http_conn *, const struct http_request *,
		    void *);
void		 http_server_set_head_hook(struct http_server *,
		    http_head_hook *, void *);
void		 http_continue(struct http_conn *);
/*
 * Streaming mode, for a server whose head hook may stream bodies: every
 * request's head goes to the hook, even one whose body (or none) came with
 * it, and a head may announce a body of up to max_stream bytes (or a
 * chunked one of any length) for the hook to take with http_body_stream.
 * http_continue still holds a whole body to max_body (413 above it).
 */
void		 http_server_set_streaming(struct http_server *,
		    uint64_t max_stream);
/*
 * Take the body of the request the head hook has (from the hook, or later
 * instead of http_continue) as it arrives, up to max_len bytes, and answer
 * it with http_respond.  cb gets, never from inside http_body_stream or
 * http_body_resume but from the event loop:
 *   len > 0                a piece of the body (data is borrowed);
 *   0                      the body is complete: answer now (or later);
 *   HTTP_BODY_ABORT        the client went away, its chunked framing was
 *                          bad (it got 400), or no byte came for
 *                          body_timeout while reading was on (it got 408);
 *   HTTP_BODY_TOO_LARGE    the body is over max_len (the client got 413).
 * After a negative len cb is not called again and the connection must not
 * be used again.  An answer given before the body is complete (a 422 after
 * a bad line, say) ends the stream: the rest of the body is not read, cb
 * is not called again, and the connection closes after the answer.  Body
 * bytes are never buffered beyond one read (64 KiB) while cb keeps up.
 */
#define HTTP_BODY_ABORT		(-1)
#define HTTP_BODY_TOO_LARGE	(-2)
typedef void	 http_body_cb(struct http_conn *, const char *data, ssize_t len,
		    void *arg);
void		 http_body_stream(struct http_conn *, uint64_t max_len,
		    http_body_cb *, void *);
/*
 * Backpressure: stop reading the socket (cb is not called until resumed;
 * no body deadline runs meanwhile), and read again.  No-ops once the body
 * is complete or the stream ended.
 */
void		 http_body_pause(struct http_conn *);
void		 http_body_resume(struct http_conn *);
/*
 * A pointer the head hook or handler leaves on its request (the
 * principal it proved, say), freed with free_fn (if not NULL) when the
 * connection's next request begins or the connection closes.
 */
void		 http_conn_set_data(struct http_conn *, void *,
		    void (*free_fn)(void *));
void		*http_conn_data(const struct http_conn *);
/* Label the request being handled, for the observer (a route, say). */
void		 http_conn_set_label(struct http_conn *, int);
/*
 * The client proved who it is (an authenticated request): its connection
 * is never closed to make room for a new one at max_clients.
 */
void		 http_conn_trust(struct http_conn *);
/* The client's address without its port ("local": a Unix socket). */
void		 http_conn_peer(const struct http_conn *, char *buf,
		    size_t len);
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
/*
 * Flow control instead of the cut, for a stream whose source can wait (a
 * COPY TO): from this call on http_stream_write queues every chunk (it
 * leaves from the loop) and returns 1 once the client's backlog reaches
 * max_output; the writer then stops until drained(arg), called from the
 * loop once the client has taken the backlog down to a quarter of that.
 * A client that takes nothing for idle_timeout meanwhile is cut off:
 * closed(arg), as when it leaves.
 */
typedef void	 http_stream_drained(void *);
void		 http_stream_flow(struct http_conn *, http_stream_drained *);
void		 http_stream_end(struct http_conn *);
/* The answer cannot be finished: close after what is queued, without the
 * last chunk (the client sees a cut body).  The conn is gone after. */
void		 http_stream_abort(struct http_conn *);
/* Stop accepting; existing connections finish their requests. */
void		 http_server_pause(struct http_server *);
/*
 * Graceful stop: stop accepting; connections with no request in hand
 * close now; the others close once their request is answered (every
 * answer from now on says Connection: close).
 */
void		 http_server_shutdown(struct http_server *);
unsigned	 http_server_clients(const struct http_server *);
void		 http_server_full(const struct http_server *, uint64_t *made_room,
		    uint64_t *turned_away);
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
