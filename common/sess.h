/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sess - the TCP session protocol of every TCP worker (events 8000, stats
 * 2060, outbound 5050) and its client (the interaction server on 7120).
 *
 * Newline-delimited JSON, one object per line.  The module frames and
 * decodes lines, enforces RequestOpen first, answers RequestPing itself,
 * closes idle unauthenticated links, cuts clients that do not read, and
 * hands every other request to the worker.  A connection whose first
 * bytes are an HTTP request line goes to the HTTP server given with
 * sess_server_set_http instead (one socket, three faces: DESIGN.md
 * section 3).  docs/protocol.md is the reference for clients.
 *
 * The framing and decoding functions are pure (no sockets) so that unit
 * tests and fuzz targets call them directly.  Sending never blocks.  The
 * process must ignore SIGPIPE (writes to a closed peer use writev(2)).
 */
#ifndef TENANTD_SESS_H
#define TENANTD_SESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct http_server;
struct sess;
struct sess_server;
struct sess_client;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */

#define SESS_PROTOCOL_VERSION	1
#define SESS_NOREF		((json_int_t)-1)	/* no "ref" */
#define SESS_REF_MAX		((json_int_t)9007199254740991LL) /* 2^53-1 */
#define SESS_CLIENT_NAME_MAX	128

/* Defaults taken by the zero fields of struct sess_limits. */
#define SESS_DEFAULT_MAX_LINE		65536
#define SESS_DEFAULT_MAX_OUTPUT		(4u * 1024 * 1024)
#define SESS_DEFAULT_MAX_CLIENTS	1024
#define SESS_DEFAULT_OPEN_TIMEOUT_MS	10000
#define SESS_LINGER_MS			2000	/* flush + drain on close */

/* Error codes sent by this module; workers reuse them where they fit. */
#define SESS_ERR_LINE_TOO_LONG	"LineTooLong"	/* closes */
#define SESS_ERR_BAD_JSON	"BadJson"
#define SESS_ERR_NOT_OBJECT	"NotObject"
#define SESS_ERR_BAD_REQUEST	"BadRequest"
#define SESS_ERR_BAD_REF	"BadRef"
#define SESS_ERR_NOT_OPENED	"NotOpened"
#define SESS_ERR_ALREADY_OPENED	"AlreadyOpened"
#define SESS_ERR_UNAUTHORIZED	"Unauthorized"	/* closes */
#define SESS_ERR_OPEN_TIMEOUT	"OpenTimeout"	/* closes */
#define SESS_ERR_IDLE_TIMEOUT	"IdleTimeout"	/* closes */
#define SESS_ERR_TOO_MANY	"TooManyClients" /* closes */
#define SESS_ERR_UNKNOWN	"UnknownRequest"
#define SESS_ERR_BAD_ARGUMENT	"BadArgument"
#define SESS_ERR_NOT_FOUND	"NotFound"
#define SESS_ERR_FORBIDDEN	"Forbidden"
#define SESS_ERR_UNAVAILABLE	"Unavailable"
#define SESS_ERR_TOO_MANY_ATTEMPTS "TooManyAttempts"	/* closes */
#define SESS_ERR_INTERNAL	"Internal"

/*
 * Pure framing and decoding.
 */
enum sess_frame {
	SESS_FRAME_LINE,	/* buf[0..line_len), then skip consumed */
	SESS_FRAME_MORE,	/* no full line yet */
	SESS_FRAME_TOO_LONG,	/* line over max_line: the stream is lost */
};

/*
 * Find the first line of buf.  line_len excludes the "\n" and an optional
 * "\r" before it; max_line bounds line_len.  TOO_LONG is reported as soon
 * as max_line + 2 bytes hold no newline, so a reader never buffers more.
 */
enum sess_frame	sess_frame_next(const char *buf, size_t len, size_t max_line,
		    size_t *line_len, size_t *consumed);
/* 1 if a line is empty or only blanks: such lines are ignored. */
int		sess_line_blank(const char *line, size_t len);

struct sess_request {
	json_t		*obj;	/* the whole request object; owned */
	const char	*name;	/* its "request" string, inside obj */
	json_int_t	 ref;	/* its "ref", or SESS_NOREF */
};

/*
 * Decode one line.  0: out holds the request (free it with
 * sess_request_clear).  -1: *code and msg say why; out->ref still holds the
 * ref when it could be read, so the error can echo it; out->obj is NULL.
 */
int		sess_decode(const char *line, size_t len,
		    struct sess_request *out, const char **code, char *msg,
		    size_t msglen);
void		sess_request_clear(struct sess_request *);
/* One compact line ending in '\n', NUL-terminated; free(3) it. */
char		*sess_encode(const json_t *event, size_t *len);
/* EventError object; ref < 0 leaves "ref" out. */
json_t		*sess_error_new(json_int_t ref, const char *code,
		    const char *message);

/*
 * Server.
 */
struct sess_limits {
	size_t		max_line;	/* bytes per line, without "\r\n" */
	size_t		max_output;	/* queued bytes before a slow cut */
	unsigned	max_clients;	/* sessions at once (make room: */
					/* the oldest unopened goes) */
	unsigned	open_timeout_ms; /* time to send RequestOpen */
	unsigned	idle_timeout_ms; /* open link with no input; 0: never */
};

/*
 * What the worker says of a RequestOpen.  Only credentials refused close
 * the link (a desktop then drops them); a backend that cannot check them
 * now, or a bad field, leave it waiting for another RequestOpen.  After
 * those two, the worker's data stays set on the session: the next open
 * finds it with sess_data.
 */
enum sess_open {
	SESS_OPEN_REFUSE = -1,	/* EventError Unauthorized, then close */
	SESS_OPEN_ACCEPT = 0,	/* EventOpened */
	SESS_OPEN_PENDING = 1,	/* the worker calls sess_open_done later */
	SESS_OPEN_UNAVAILABLE = 2, /* EventError Unavailable: retry later */
	SESS_OPEN_BAD_REQUEST = 3, /* EventError BadRequest: a bad field */
	SESS_OPEN_THROTTLED = 4, /* EventError TooManyAttempts, then close;
				    reply_extra (retryAfter) goes in it */
};

struct sess_handlers {
	/*
	 * RequestOpen with string "token" and "client".  Fields added to
	 * reply_extra go into EventOpened; *why is the refusal message.
	 * The session's data may be left from an open not accepted.
	 */
	enum sess_open	(*open)(struct sess *, json_t *req, json_t *reply_extra,
			    void *arg, const char **why);
	/* Requests after open, but RequestOpen/Ping; req is borrowed. */
	void		(*request)(struct sess *, const char *name,
			    json_int_t ref, json_t *req, void *arg);
	/*
	 * Once for every session whose open was accepted, left pending or
	 * answered Unavailable or BadRequest (not for one refused at once),
	 * from the event loop (never from inside a sess_ call of the
	 * worker) or from sess_server_free.  The session is gone after it.
	 */
	void		(*closed)(struct sess *, void *arg);
};

struct sess_stats {
	uint64_t	accepted;	/* connections taken */
	uint64_t	current;	/* sessions now */
	uint64_t	opened;		/* RequestOpen accepted */
	uint64_t	refused;	/* RequestOpen refused */
	uint64_t	slow_cut;	/* cut for not reading */
	uint64_t	protocol_errors; /* lines rejected by the module */
	uint64_t	too_many;	/* turned away at max_clients */
	uint64_t	evicted;	/* closed unopened, to make room */
	uint64_t	timed_out;	/* open or idle timeout */
};

/*
 * listen_fd must be bound and listening, or -1 for none.  The server owns
 * it from this call on, even when the call fails, and closes it on
 * sess_server_set_listener and sess_server_free.  handlers->open and
 * handlers->request are required.
 */
struct sess_server *sess_server_new(struct event_base *, int listen_fd,
		    const struct sess_limits *, const struct sess_handlers *,
		    void *arg);
/* Replace the listening socket (reload, new generation); keeps clients. */
int		sess_server_set_listener(struct sess_server *, int listen_fd);
/* A worker's session protocol keys (max_line, max_output, max_clients,
 * open_timeout: docs/configuration.md) as limits. */
struct conf_worker;
struct sess_limits sess_limits_of(const struct conf_worker *);
/* New limits for new lines and sends; max_clients/open for new links. */
void		sess_server_set_limits(struct sess_server *,
		    const struct sess_limits *);
void		sess_server_pause(struct sess_server *);  /* stop accepting */
/* Close every session after flushing, with an EventError if code. */
void		sess_server_close_all(struct sess_server *, const char *code,
		    const char *message);
/* Close every session at once, the listener too; not from a hook. */
void		sess_server_free(struct sess_server *);
const struct sess_stats *sess_server_stats(const struct sess_server *);
/*
 * The HTTP face (NULL: none, HTTP is a bad JSON line).  A connection
 * counts as a session (max_clients, current, the open timeout) until its
 * first bytes show it speaks HTTP; it is then handed to http with what
 * was read (http_server_adopt) and counts there only.  http is borrowed:
 * it must outlive the server, or be unset first.
 */
void		sess_server_set_http(struct sess_server *,
		    struct http_server *);
/*
 * TLS from now on (common/tls.h): a new connection makes the handshake
 * first, within the open timeout, then is a session (or HTTP) as any.
 * NULL: plaintext.  The server keeps a reference to ctx; connections keep
 * the context they began with.
 */
void		sess_server_set_tls(struct sess_server *,
		    struct ssl_ctx_st *ctx);
/* Take a connected socket as a new session (the server owns fd). */
int		sess_server_adopt(struct sess_server *, int fd,
		    const char *peer);

/* Finish a SESS_OPEN_PENDING open; reply_extra may be NULL (borrowed). */
void		sess_open_done(struct sess *, enum sess_open,
		    json_t *reply_extra, const char *why);

/*
 * Queue an event (borrowed).  -1 when the session is closing or gone, or
 * has just been cut because its output went over max_output.
 */
int		sess_send(struct sess *, const json_t *event);
/* The same with "ref" set in event first, unless ref < 0. */
int		sess_reply(struct sess *, json_int_t ref, json_t *event);
/* Queue a line made once by sess_encode, for fan-out to many sessions. */
int		sess_send_line(struct sess *, const char *line, size_t len);
void		sess_send_error(struct sess *, json_int_t ref, const char *code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Stop reading, flush what is queued, then close. */
void		sess_close(struct sess *);

void		 sess_set_data(struct sess *, void *);
void		*sess_data(const struct sess *);
const char	*sess_client_name(const struct sess *);	/* NULL before open */
uint64_t	 sess_id(const struct sess *);
const char	*sess_peer(const struct sess *);	/* "addr:port" */

/*
 * Client of the same protocol, reconnecting with backoff.  Requests get
 * their ref from the client; the reply (the first line carrying it) goes
 * to the request's callback, or NULL if the link is lost first.
 */
typedef void	(*sess_reply_cb)(struct sess_client *, json_t *reply,
		    void *cbarg);

struct sess_client_conf {
	const char	*host;		/* numeric address or a name */
	const char	*port;
	const char	*token;
	const char	*client;	/* our application name */
	size_t		 max_line;	/* 0: default */
	size_t		 max_output;	/* 0: default */
	unsigned	 ping_ms;	/* RequestPing period; 0: never */
	unsigned	 timeout_ms;	/* connect+open, and pong; 0: 10 s */
	uint64_t	 backoff_min_us; /* 0: 100 ms */
	uint64_t	 backoff_max_us; /* 0: 30 s */
	struct ssl_ctx_st *tls;		/* a client context; NULL: plaintext */
};

struct sess_client_handlers {
	/* EventOpened received: requests may be sent. */
	void	(*up)(struct sess_client *, json_t *opened, void *arg);
	/* Unsolicited events, and replies nobody waits for. */
	void	(*event)(struct sess_client *, json_t *event, void *arg);
	/* The link is lost; a reconnect is scheduled. */
	void	(*down)(struct sess_client *, const char *why, void *arg);
};

/* Connects at once; port is numeric; a host name uses evdns. */
struct sess_client *sess_client_new(struct event_base *,
		    const struct sess_client_conf *,
		    const struct sess_client_handlers *, void *arg);
/* Waiting requests get their callback with NULL; not from a handler. */
void		sess_client_free(struct sess_client *);
int		sess_client_is_up(const struct sess_client *);
/* Send req (borrowed; "ref" is set in it); the ref, or -1 if down. */
json_int_t	sess_client_request(struct sess_client *, json_t *req,
		    sess_reply_cb, void *cbarg);

#endif
