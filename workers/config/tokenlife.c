/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokenlife - the life of an issued token after POST /v1/auth/token
 * (docs/config-api.md, "Tokens"), each request authenticated first:
 *
 *   POST   /v1/auth/refresh       a new token (new expiry) for the one
 *                                 sent; the old one serves no request
 *                                 from that instant (common/auth.c)
 *   POST   /v1/auth/logout        end the token sent: 204
 *   DELETE /v1/auth/tokens/{id}   the admin ends one token by its id (the
 *                                 "tokenId" of its answer; never the
 *                                 secret in a URL): 204, or 404
 *
 * Ending a token announces its principal on the revocation channel, so
 * sessions and feeds opened with it end as for any revocation
 * (common/rights.c).  The admin token is configured, not issued: it is
 * neither refreshed nor logged out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define TOKENS_PATH	"/v1/auth/tokens/"

/* A refresh or an ending, waiting for Redis. */
struct life {
	struct cfgw		*w;
	struct http_conn	*conn;
	struct principal	 who;
	unsigned		 ttl;
	int			 logout;
};

static void	refresh(struct cfgw *, struct http_conn *,
		    const struct http_request *, const struct principal *);
static void	end_token(struct cfgw *, struct http_conn *,
		    const struct principal *, const char *id, int logout);

/*
 * tokenlife_route - answer the request if its path is one of ours; 0
 * when it is not
 */
int
tokenlife_route(struct cfgw *w, struct http_conn *c,
    const struct http_request *r, const struct principal *who)
{
	const char	*v;
	char		 id[AUTH_ID_LEN + 1], tok[AUTH_TOKEN_LEN + 1];
	size_t		 len, n = sizeof(TOKENS_PATH) - 1, i;

	if (http_path_is(r, "/v1/auth/refresh")) {
		if (!http_method_is(r, "POST"))
			reply_not_allowed(c, "POST");
		else
			refresh(w, c, r, who);
		return 1;
	}
	if (http_path_is(r, "/v1/auth/logout")) {
		if (!http_method_is(r, "POST")) {
			reply_not_allowed(c, "POST");
			return 1;
		}
		v = http_header(r, "Authorization", &len);
		if (who->kind == PRINCIPAL_ADMIN || v == NULL || len !=
		    7 + AUTH_TOKEN_LEN) {
			reply_error(c, 422, "BadValue", NULL, "the admin token "
			    "is configured (security.admin_token_file), not "
			    "issued: it cannot be logged out");
			return 1;
		}
		snprintf(tok, sizeof(tok), "%.*s", AUTH_TOKEN_LEN, v + 7);
		auth_token_id(tok, id);
		explicit_bzero(tok, sizeof(tok));
		end_token(w, c, who, id, 1);
		return 1;
	}
	if (r->path_len < n || memcmp(r->target, TOKENS_PATH, n) != 0)
		return 0;
	if (!http_method_is(r, "DELETE")) {
		reply_not_allowed(c, "DELETE");
		return 1;
	}
	if (who->kind != PRINCIPAL_ADMIN) {
		reply_error(c, 403, "Forbidden", NULL, "only the admin token "
		    "may end another's token; end your own with POST "
		    "/v1/auth/logout");
		return 1;
	}
	for (i = n; i < r->path_len; i++)
		if (!((r->target[i] >= '0' && r->target[i] <= '9') ||
		    (r->target[i] >= 'a' && r->target[i] <= 'f')))
			break;
	if (r->path_len - n != AUTH_ID_LEN || i != r->path_len) {
		reply_error(c, 400, "BadValue", NULL, "a token id is %d "
		    "lowercase hex digits (the tokenId its answer gave)",
		    AUTH_ID_LEN);
		return 1;
	}
	snprintf(id, sizeof(id), "%.*s", AUTH_ID_LEN, r->target + n);
	end_token(w, c, who, id, 0);
	return 1;
}

/* refreshed - Redis ran the refresh */
static void
refreshed(const char *token, void *arg)
{
	struct life	*l = arg;

	l->w->busy_jobs--;
	if (token == NULL)
		reply_error(l->conn, 503, "Unavailable", NULL, "the token "
		    "cannot be refreshed now (Redis unavailable); retry later");
	else if (*token == '\0')
		reply_error(l->conn, 401, "Unauthorized", NULL, "invalid or "
		    "expired token (refreshed already?)");
	else {
		log_info("token of %s refreshed", l->who.name);
		token_reply(l->conn, token, l->ttl, &l->who);
	}
	free(l);
}

/*
 * refresh - POST /v1/auth/refresh: token_authenticate found the token
 * live and its principal enabled; the script checks it is still live
 * when it replaces it, in one step, so a token is refreshed once.
 */
static void
refresh(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct life	*l;
	const char	*v;
	char		 old[AUTH_TOKEN_LEN + 1];
	size_t		 len;

	v = http_header(r, "Authorization", &len);
	if (who->kind == PRINCIPAL_ADMIN || v == NULL ||
	    len != 7 + AUTH_TOKEN_LEN) {
		reply_error(c, 422, "BadValue", NULL, "the admin token is "
		    "configured (security.admin_token_file), not issued: it "
		    "cannot be refreshed");
		return;
	}
	snprintf(old, sizeof(old), "%.*s", AUTH_TOKEN_LEN, v + 7);
	l = xcalloc(1, sizeof(*l));
	l->w = w;
	l->conn = c;
	l->who = *who;
	l->ttl = worker_conf()->workers[WORKER_CONFIG].token_ttl;
	w->busy_jobs++;
	auth_refresh(w->auth, old, who->dbid, l->ttl, refreshed, l);
	explicit_bzero(old, sizeof(old));
}

/* ended - Redis ended the token, or found none */
static void
ended(int n, void *arg)
{
	struct life	*l = arg;

	l->w->busy_jobs--;
	if (n < 0)
		reply_error(l->conn, 503, "Unavailable", NULL, "the token "
		    "cannot be ended now (Redis unavailable); retry later");
	else if (n == 0)
		reply_error(l->conn, 404, "NotFound", NULL, "no live token "
		    "has that id");
	else {
		log_info("a token ended by %s (%s)", l->who.name, l->logout ?
		    "logout" : "revoked");
		http_respond(l->conn, 204, NULL, NULL, NULL, 0);
	}
	free(l);
}

static void
end_token(struct cfgw *w, struct http_conn *c, const struct principal *who,
    const char *id, int logout)
{
	struct life	*l = xcalloc(1, sizeof(*l));

	l->w = w;
	l->conn = c;
	l->who = *who;
	l->logout = logout;
	w->busy_jobs++;
	auth_end(w->auth, id, ended, l);
}
