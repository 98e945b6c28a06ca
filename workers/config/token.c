/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token - bearer tokens on the config API (docs/config-api.md, "Tokens"):
 *
 *   POST /v1/auth/token   {"userName", "password"} or {"application",
 *                         "secret"}: the hash is read from PostgreSQL,
 *                         compared on the thread pool, the token stored
 *                         in Redis (common/auth.c), and the hash read
 *                         again, so that a password changed meanwhile
 *                         cannot leave a token its revocation missed;
 *                         each attempt counted first (common/throttle.c):
 *                         after security.login_delay_after failures a
 *                         refusal waits security.login_delay, after
 *                         security.login_refuse_after it is 429 at once
 *
 * and the check of every other request's "Authorization: Bearer": the
 * admin token at once, any other in Redis, and then its principal must
 * still exist in the cache and be enabled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config_int.h"
#include "log.h"
#include "offload.h"
#include "store.h"
#include "throttle.h"
#include "util.h"
#include "worker.h"

/* A token request, from its body to its answer. */
struct token_req {
	struct cfgw		*w;
	struct http_conn	*conn;
	struct principal	 who;
	char			*secret;
	char			*hash;
	int			 ok;
	int			 slow;		/* a refusal waits */
	unsigned		 ttl;
	char			 user[260];	/* what attempts count by */
	char			 addr[THROTTLE_HOST_MAX];
	char			 token[AUTH_TOKEN_LEN + 1];
};

/* A request whose token is being looked up in Redis. */
struct authing {
	struct cfgw		*w;
	struct http_conn	*conn;
	struct http_request	*req;	/* a copy: the original is gone */
	authed_fn		*then;
};

static const struct cobj *find_principal(enum cfg_kind, const char *);
static void		 hash_cb(const char *, int, void *);
static void		 verify_job(void *);
static void		 verified(void *);
static void		 issued_cb(const char *, void *);
static void		 rechecked(const char *, int, void *);
static void		 token_answer(struct token_req *);
static const char	*secret_field(const struct principal *);
static void		 token_req_free(struct token_req *);
static int		 still_valid(const struct principal *);
static void		 authed(const struct principal *, int, void *);
static void		 throttled(enum throttle_verdict, unsigned, void *);
static void		 token_fail(struct token_req *);
static void		 token_refuse(void *);

/*
 * token_request - POST /v1/auth/token with {"userName", "password"} or
 * {"application", "secret"}: a bearer token with an expiry.
 */
void
token_request(struct cfgw *w, struct http_conn *c, const struct http_request *r)
{
	struct token_req	*t;
	const char		*user = NULL, *app = NULL, *secret = NULL;
	json_t			*body;
	int			 person;

	if ((body = parse_body(c, r)) == NULL)
		return;
	if (json_unpack(body, "{s:s, s:s !}", "userName", &user, "password",
	    &secret) != 0 && json_unpack(body, "{s:s, s:s !}", "application",
	    &app, "secret", &secret) != 0) {
		json_decref(body);
		reply_error(c, 422, "BadValue", NULL, "send {\"userName\", "
		    "\"password\"} or {\"application\", \"secret\"}");
		return;
	}
	person = user != NULL;
	t = xcalloc(1, sizeof(*t));
	t->w = w;
	t->conn = c;
	t->who.kind = person ? PRINCIPAL_PERSON : PRINCIPAL_APPLICATION;
	snprintf(t->who.name, sizeof(t->who.name), "%s", person ? user : app);
	/* a person and an application may share a name: not their counts */
	snprintf(t->user, sizeof(t->user), "%c:%s", person ? 'p' : 'a',
	    t->who.name);
	http_conn_peer(c, t->addr, sizeof(t->addr));
	t->secret = xstrdup(secret);
	t->ttl = worker_conf()->workers[WORKER_CONFIG].token_ttl;
	json_decref(body);
	w->busy_jobs++;
	throttle_attempt(w->throttle, t->user, t->addr, throttled, t);
}

/*
 * throttled - the attempt is counted: refused at once when there were
 * too many, else the secret is looked at
 */
static void
throttled(enum throttle_verdict v, unsigned retry_after, void *arg)
{
	struct token_req	*t = arg;
	const struct cobj	*o;
	char			 extra[64], *text;
	json_t			*j;

	t->w->busy_jobs--;
	if (t->w->dying) {
		reply_error(t->conn, 503, "Unavailable", NULL, "stopping");
		token_req_free(t);
		return;
	}
	if (v == THROTTLE_REFUSE) {
		log_info("token refused for %s from %s: too many failed "
		    "attempts; retry in %u s", t->who.name, t->addr,
		    retry_after);
		snprintf(extra, sizeof(extra), "Retry-After: %u\r\n",
		    retry_after);
		text = json_dumps(j = json_pack("{s:s, s:s}", "error",
		    "TooManyAttempts", "message", "too many failed attempts "
		    "for this user name or address; retry later"),
		    JSON_COMPACT);
		reply_json(t->conn, 429, extra, text, strlen(text));
		free(text);
		json_decref(j);
		token_req_free(t);
		return;
	}
	t->slow = v == THROTTLE_SLOW;
	o = find_principal(t->who.kind == PRINCIPAL_PERSON ? CFG_PERSON :
	    CFG_APPLICATION, t->who.name);
	if (o == NULL) {
		token_fail(t);
		return;
	}
	t->who.dbid = o->dbid;
	if (store_secret(t->w->pg, o->dbid, secret_field(&t->who), hash_cb,
	    t) == -1) {
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "busy; retry later");
		token_req_free(t);
	}
}

/*
 * token_fail - wrong credentials: 401, after the delay when this user or
 * address failed often (a timer: the loop goes on meanwhile)
 */
static void
token_fail(struct token_req *t)
{
	log_info("token refused for %s from %s", t->who.name, t->addr);
	if (!t->slow) {
		token_refuse(t);
		return;
	}
	t->w->busy_jobs++;
	throttle_delay(t->w->throttle, token_refuse, t);
}

static void
token_refuse(void *arg)
{
	struct token_req	*t = arg;

	if (t->slow)
		t->w->busy_jobs--;
	reply_error(t->conn, 401, "Unauthorized", NULL, "invalid credentials");
	token_req_free(t);
}

/* token_authenticate - check the bearer token, then call then */
void
token_authenticate(struct cfgw *w, struct http_conn *c,
    const struct http_request *r, authed_fn *then)
{
	static const struct principal admin = { PRINCIPAL_ADMIN, 0, "admin" };
	struct authing	*a;
	const char	*v;
	size_t		 len;

	v = http_header(r, "Authorization", &len);
	if (v == NULL || len < 8 || strncasecmp(v, "Bearer ", 7) != 0) {
		reply_error(c, 401, "Unauthorized", NULL, "send "
		    "Authorization: Bearer <token>");
		return;
	}
	if (auth_is_admin(w->auth, v + 7, len - 7)) {
		then(w, c, r, &admin);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->w = w;
	a->conn = c;
	a->req = http_request_copy(r);
	a->then = then;
	v = http_header(a->req, "Authorization", &len);
	auth_check(w->auth, v + 7, len - 7, authed, a);
}

/*
 * find_principal - an enabled Person by userName, or Application by name:
 * the natural keys of their types.
 */
static const struct cobj *
find_principal(enum cfg_kind k, const char *name)
{
	const struct cobj	*o = cache_find(k, name);

	return o != NULL && o->enabled ? o : NULL;
}

/* token_reply - 200 with a token that was issued or refreshed */
void
token_reply(struct http_conn *c, const char *token, unsigned ttl,
    const struct principal *who)
{
	json_t	*j;
	char	*text, id[AUTH_ID_LEN + 1];

	auth_token_id(token, id);
	j = json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:I, s:s}}", "token",
	    token, "tokenId", id, "tokenType", "Bearer", "expiresIn",
	    (int)ttl, "principal", "kind", who->kind == PRINCIPAL_PERSON ?
	    "person" : "application", "dbid", who->dbid, "name", who->name);
	text = json_dumps(j, JSON_COMPACT);
	reply_json(c, 200, "Cache-Control: no-store\r\n", text, strlen(text));
	free(text);
	json_decref(j);
}

static void
token_answer(struct token_req *t)
{
	token_reply(t->conn, t->token, t->ttl, &t->who);
}

/* issued_cb - the token is stored: check the secret did not change */
static void
issued_cb(const char *token, void *arg)
{
	struct token_req	*t = arg;

	if (token == NULL) {
		t->w->busy_jobs--;
		reply_error(t->conn, 503, "Unavailable", NULL, "the token "
		    "cannot be stored now (Redis unavailable); retry later");
		token_req_free(t);
		return;
	}
	snprintf(t->token, sizeof(t->token), "%s", token);
	if (t->w->dying || store_secret(t->w->pg, t->who.dbid,
	    secret_field(&t->who), rechecked, t) == -1) {
		t->w->busy_jobs--;
		auth_drop(t->w->auth, t->who.dbid, t->token);
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "busy; retry later");
		token_req_free(t);
	}
}

/*
 * rechecked - the hash read again after the token was stored.  If the
 * password changed since it was checked, the change's revocation may have
 * run before the token was stored, and missed it: drop it here.  Either
 * the revocation saw the token, or this read sees the new hash.
 */
static void
rechecked(const char *hash, int ok, void *arg)
{
	struct token_req	*t = arg;

	t->w->busy_jobs--;
	if (ok && hash != NULL && strcmp(hash, t->hash) == 0) {
		throttle_success(t->w->throttle, t->user, t->addr);
		token_answer(t);
		token_req_free(t);
		return;
	}
	auth_drop(t->w->auth, t->who.dbid, t->token);
	if (!ok)
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "unavailable; retry later");
	else {
		log_info("token refused for %s: its %s changed meanwhile",
		    t->who.name, secret_field(&t->who));
		reply_error(t->conn, 401, "Unauthorized", NULL, "invalid "
		    "credentials");
	}
	token_req_free(t);
}

/* verify_job - on a pool thread: the slow hash comparison */
static void
verify_job(void *arg)
{
	struct token_req	*t = arg;

	t->ok = t->hash != NULL && auth_verify(t->secret, t->hash);
}

/* verified - the comparison is done: issue a token, or refuse */
static void
verified(void *arg)
{
	struct token_req	*t = arg;

	t->w->busy_jobs--;
	if (offload_cancelled()) {
		reply_error(t->conn, 503, "Unavailable", NULL, "the worker is "
		    "stopping; retry later");
		token_req_free(t);
	} else if (!t->ok)
		token_fail(t);
	else {
		t->w->busy_jobs++;
		auth_issue(t->w->auth, &t->who, t->ttl, issued_cb, t);
	}
}

/* hash_cb - the stored hash arrived: compare off the loop */
static void
hash_cb(const char *hash, int ok, void *arg)
{
	struct token_req	*t = arg;

	if (!ok) {
		reply_error(t->conn, 503, "Unavailable", NULL, "PostgreSQL is "
		    "unavailable; retry later");
		token_req_free(t);
		return;
	}
	t->hash = hash != NULL ? xstrdup(hash) : NULL;
	t->w->busy_jobs++;
	offload(verify_job, verified, t);
}

/* secret_field - the write-only field a principal logs in with */
static const char *
secret_field(const struct principal *who)
{
	return who->kind == PRINCIPAL_PERSON ? "password" : "secret";
}

/* token_req_free - forget a token request, wiping its secrets */
static void
token_req_free(struct token_req *t)
{
	if (t->secret != NULL) {
		explicit_bzero(t->secret, strlen(t->secret));
		free(t->secret);
	}
	free(t->hash);
	explicit_bzero(t->token, sizeof(t->token));
	free(t);
}

/*
 * still_valid - the principal behind a token must still exist and be
 * enabled: disabling or deleting a person ends its tokens at once.
 */
static int
still_valid(const struct principal *who)
{
	const struct cobj	*o = cache_get(who->dbid);

	return o != NULL && o->enabled && o->kind == (who->kind ==
	    PRINCIPAL_PERSON ? CFG_PERSON : CFG_APPLICATION);
}

/* authed - the token check answered */
static void
authed(const struct principal *who, int unavailable, void *arg)
{
	struct authing	*a = arg;

	if (a->w->dying)
		reply_error(a->conn, 503, "Unavailable", NULL, "stopping");
	else if (who != NULL && !still_valid(who))
		reply_error(a->conn, 401, "Unauthorized", NULL, "the token's "
		    "%s is disabled or deleted", who->kind == PRINCIPAL_PERSON ?
		    "person" : "application");
	else if (who != NULL)
		a->then(a->w, a->conn, a->req, who);
	else if (unavailable)
		reply_error(a->conn, 503, "Unavailable", NULL, "tokens cannot "
		    "be checked now (Redis unavailable); retry later");
	else
		reply_error(a->conn, 401, "Unauthorized", NULL, "invalid or "
		    "expired token");
	free(a->req);
	free(a);
}
