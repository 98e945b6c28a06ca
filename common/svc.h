/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc - the frame of a worker that serves the session protocol (events
 * 8000, stats 2060, outbound 5050): what each such worker does the same
 * way, written once, so that its main file says only what is particular
 * to it.
 *
 *   - the configuration: a PostgreSQL connection of its own, the change
 *     follower (common/cfgfollow.c) feeding the process's cache
 *     (common/cache.c); the worker is ready once it is loaded;
 *   - RequestOpen: the token looked up (common/auth.c) and the session's
 *     rights kept true while it lasts (common/rights.c): a revoked token,
 *     a disabled or deleted principal end it; the worker hears when a
 *     session's grants change, to withdraw what it may no longer see;
 *   - the listener (common/sess.c) with the worker's limits, and two
 *     metrics: tenant_<name>_clients (sessions open) and
 *     tenantd_<name>_slow_clients_total (cut for not reading);
 *   - HTTP/1.1 on the same port (a connection whose first bytes are an
 *     HTTP request line, common/http.c): GET /healthz without a token,
 *     every other request after its "Authorization: Bearer" token was
 *     checked as the config API checks it, then the worker's http_head
 *     and http hooks (below);
 *   - TLS on the port when its section has a tls group (common/tls.h),
 *     its certificate loaded again at every reload;
 *   - reload (limits, admin token), a new listening socket, the graceful
 *     stop (EventError Shutdown to every session after what is queued for
 *     it, then exit once all are gone), and the cleanup.
 *
 * The worker keeps its per-session state with svc_set_data/svc_data (the
 * session's own data belongs to this module).  One per process.
 */
#ifndef TENANTD_SVC_H
#define TENANTD_SVC_H

#include <stdarg.h>

#include <jansson.h>

#include "access.h"
#include "auth.h"
#include "conf.h"
#include "sess.h"

struct event_base;
struct cfg_change;
struct http_conn;
struct http_request;

/* What the worker's http_head says of a request. */
enum svc_http {
	SVC_HTTP_WHOLE = 0,	/* read the body whole, then call http() */
	SVC_HTTP_STREAM,	/* call http() now: it takes the body */
	SVC_HTTP_ANSWERED,	/* http_head answered it (http_respond) */
};

struct svc_ops {
	/*
	 * RequestOpen, before its token is looked up: the worker's own
	 * fields (NULL: none).  ACCEPT goes on; UNAVAILABLE or BAD_REQUEST
	 * refuse, and the link waits for another open.  The worker's data
	 * is still set from an open that was not accepted, or NULL.
	 */
	enum sess_open	(*open)(struct sess *, json_t *req, const char **why);
	/* The token is good: add the worker's fields to EventOpened. */
	void	(*opened)(struct sess *, json_t *extra);
	/* A request after RequestOpen (but RequestPing); req is borrowed. */
	void	(*request)(struct sess *, const char *name, json_int_t ref,
		    json_t *req);
	/* The session is gone (its data may be NULL): free the data. */
	void	(*closed)(struct sess *);
	/* Its grants changed: withdraw what it may no longer see. */
	void	(*rights_changed)(struct sess *);
	/* A change applied to the cache; NULL: a snapshot begins. */
	void	(*change)(const struct cfg_change *);
	/* Everything up to rev is applied; first: the configuration is in. */
	void	(*synced)(json_int_t rev, int first);
	/* Graceful stop, before the sessions are told (NULL: nothing). */
	void	(*stop)(void);
	/* Cleanup, once the sessions are closed, before the frame's own. */
	void	(*cleanup)(void);
	/* After a stop, may the worker exit once its sessions are gone?
	 * (NULL: yes.)  Asked every 50 ms. */
	int	(*drained)(void);
	/* What EventError Shutdown says to clients. */
	const char	*stop_message;

	/*
	 * HTTP on the session port.  A request reaches the worker once its
	 * token was checked (the admin token, or one the config API issued,
	 * whose principal still exists, enabled), before its body is read:
	 * http_head says SVC_HTTP_WHOLE to get the whole body (up to the
	 * section's max_body; a chunked one gets 411) in http(),
	 * SVC_HTTP_STREAM to have http() called at once (body NULL) and take
	 * the body with http_body_stream (common/http.h), or answers with
	 * http_respond and says SVC_HTTP_ANSWERED.  NULL: WHOLE.  A HEAD
	 * request is seen as a GET.  The principal stays valid until the
	 * connection's next request or its close; the request only during
	 * the call (http_request_copy keeps it).
	 */
	int	(*http_head)(struct http_conn *, const struct http_request *,
		    const struct principal *);
	/* The request.  NULL: every path but /healthz answers 404. */
	void	(*http)(struct http_conn *, const struct http_request *,
		    const struct principal *);
};

/*
 * Start the frame for worker class w, serving listen_fd (owned).  -1 when
 * the listener cannot be made; exits 2 when postgres.conninfo does not
 * parse.
 */
int		 svc_start(struct event_base *, const struct conf *,
		    enum worker_class w, int listen_fd, const struct svc_ops *);
/* The worker_ops parts: reload's second phase, listen, stop, cleanup. */
void		 svc_reload(const struct conf *next, const struct conf *prev);
void		 svc_listen(int fd);
void		 svc_stop(void);
void		 svc_cleanup(void);

void		 svc_set_data(struct sess *, void *);
void		*svc_data(const struct sess *);
/* Who the session's principal is (after the open was accepted). */
const struct principal *svc_who(const struct sess *);
/* May it exercise right on (kind, dbid), now? */
int		 svc_can(const struct sess *, enum cfg_kind, json_int_t dbid,
		    int right);
/* Does its principal still exist, enabled? */
int		 svc_valid(const struct sess *);

/*
 * May principal (from an HTTP request) exercise right on (kind, dbid),
 * now: its grants computed from the cache's access groups at this call,
 * and its person or application still existing, enabled.
 */
int		 svc_principal_can(const struct principal *, enum cfg_kind,
		    json_int_t dbid, int right);
/*
 * A request's whole body as a JSON object (a new reference), or NULL once
 * a 400 was answered (malformed JSON, not an object).  optional: no body
 * is an empty object.
 */
json_t		*svc_json_body(struct http_conn *, const struct http_request *,
		    int optional);
/*
 * Who a token stands for now, as every request's is checked: for a long
 * HTTP stream that asks again from time to time whether its token still
 * holds (revoked, expired).
 */
void		 svc_token_check(const char *token, size_t len,
		    auth_check_cb *, void *arg);
/*
 * An HTTP error in the config API's shape (docs/config-api.md, "Errors"):
 * {"error": code, "message": ...}, with WWW-Authenticate on a 401 and
 * Retry-After on a 503.
 */
void		 svc_http_error(struct http_conn *, int status,
		    const char *code, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));

#endif
