/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_int - what the files of the config worker share: its state, one
 * struct owned by config.c and passed to every handler, and the calls
 * one file makes into another.
 *
 *   config.c    start, reload, stop; the follower's callbacks; the
 *               request's way in: admission, token, route, dispatch
 *   reply.c     answers: JSON bodies, errors, a cached object
 *   read.c      GET of one object, lists and their filters, export, whoami
 *   write.c     create, replace, merge patch, delete (cascade), import,
 *               and what follows a commit
 *   changes.c   the change log: pages, long polls, streams; requests
 *               parked until the cache reaches a revision
 *   token.c     POST /v1/auth/token, and the bearer token of a request
 *   validate.c  the rules of an object: validation, merge patch, filters
 *   store.c     tables, migrations, write statements
 *   import.c    POST /v1/import
 */
#ifndef TENANTD_CONFIG_INT_H
#define TENANTD_CONFIG_INT_H

#include <sys/queue.h>

#include <jansson.h>

#include "auth.h"
#include "http.h"
#include "schema.h"
#include "validate.h"

#define CHANGES_LIMIT		1000	/* rows of the change log per read */
#define WRITE_WAIT_S		5	/* a write waits this long for the cache */

struct cobj;
struct grants;
struct metric;
struct parked;
struct stream;

TAILQ_HEAD(parked_list, parked);
TAILQ_HEAD(stream_list, stream);

/* The config worker: one of it per process, owned by config.c. */
struct cfgw {
	struct event_base	*base;
	struct http_server	*http;
	struct pgc		*pg;
	struct rds		*pub;		/* announcements */
	struct auth		*auth;
	struct throttle		*throttle;	/* login attempts */
	struct cfgfollow	*follow;
	char			*channel;	/* tenantd:{<tenant>}:config */
	struct parked_list	 parked;	/* writes and long polls */
	struct stream_list	 streams;
	struct http_conn	*importing;	/* whom the import answers */
	int			 busy_jobs;	/* hashing, tokens, revoking */
	int			 migrated;
	int			 loaded;	/* the first snapshot is in */
	int			 dying;		/* cleanup has begun */
	json_int_t		 revision;	/* the cache's */
};

/* Routes, as labels of tenantd_config_requests_total. */
enum route {
	R_OTHER = 0, R_LIST, R_GET, R_CREATE, R_REPLACE, R_PATCH, R_DELETE,
	R_CHANGES, R_MAX
};

/* reply.c */
void		 reply_json(struct http_conn *, int status, const char *extra,
		    const char *body, size_t len);
void		 reply_error(struct http_conn *, int status, const char *code,
		    const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));
void		 reply_printf(struct http_conn *, int status,
		    const char *extra, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
void		 reply_cfg_error(struct http_conn *, const struct cfg_error *);
void		 reply_object(struct http_conn *, int status,
		    const struct cobj *);
void		 reply_not_allowed(struct http_conn *, const char *allow);
void		 reply_forbidden(struct http_conn *, int right,
		    const struct cfg_type *);
json_int_t	 parse_dbid(const char *, size_t);
json_t		*parse_body(struct http_conn *, const struct http_request *);

/* read.c */
void		 read_list(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct cfg_type *,
		    const struct grants *);
void		 read_one(struct http_conn *, const struct cfg_type *,
		    json_int_t dbid, const struct grants *);
const struct cobj *read_lookup(struct http_conn *, const struct cfg_type *,
		    json_int_t dbid);
void		 read_export(struct cfgw *, struct http_conn *,
		    const struct grants *);
void		 read_whoami(struct http_conn *, const struct principal *,
		    const struct grants *);
int		 read_number_param(struct http_conn *,
		    const struct http_request *, const char *name,
		    json_int_t min, json_int_t max, json_int_t *out);

/* write.c */
void		 write_create(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct cfg_type *,
		    const struct grants *);
void		 write_update(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct cfg_type *,
		    json_int_t dbid, int patch, const struct grants *);
void		 write_delete(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct cfg_type *,
		    json_int_t dbid, const struct grants *);
void		 write_import(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);
void		 write_ensure_tenant(struct cfgw *);

/* changes.c */
void		 changes_get(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);
void		 changes_park_write(struct cfgw *, struct http_conn *,
		    json_int_t rev, json_int_t dbid, int status, char *answer);
void		 changes_wake(struct cfgw *);
size_t		 changes_writes_parked(const struct cfgw *);
void		 changes_stop(struct cfgw *);
void		 changes_free(struct cfgw *);
void		 changes_recheck(struct cfgw *);

/* token.c */
typedef void	 authed_fn(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);
void		 token_request(struct cfgw *, struct http_conn *,
		    const struct http_request *);
void		 token_authenticate(struct cfgw *, struct http_conn *,
		    const struct http_request *, authed_fn *);
void		 token_reply(struct http_conn *, const char *token,
		    unsigned ttl, const struct principal *);

/* tokenlife.c */
int		 tokenlife_route(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);

#endif
