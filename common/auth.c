/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth - tokens in Redis, hashes with crypt(3).
 *
 * A token is 32 random bytes in hex.  Its Redis value is the principal as
 * JSON: {"kind": "person"|"application", "dbid": n, "name": "..."}.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <hiredis/hiredis.h>

#include "auth.h"
#include "log.h"
#include "rds.h"
#include "util.h"

#define TOKEN_BYTES	32
#define TOKEN_MAX	128

struct auth {
	struct rds	*redis;
	char		*prefix;	/* tenantd:{<tenant>}:token: */
	char		*admin;
};

struct check {
	struct auth	*a;
	auth_check_cb	*cb;
	void		*arg;
};

struct issue {
	char		 token[2 * TOKEN_BYTES + 1];
	auth_issue_cb	*cb;
	void		*arg;
};

static const char *const kinds[] = { "admin", "person", "application" };

/* auth_new - tokens of one tenant, on a Redis command connection */
struct auth *
auth_new(struct event_base *base, const char *host, int port,
    const char *password, const char *tenant_id)
{
	struct auth	*a = xcalloc(1, sizeof(*a));

	a->redis = rds_new(base, host, port, password, NULL, NULL);
	rds_set_name(a->redis, "redis (tokens)");
	a->prefix = xasprintf("tenantd:{%s}:token:", tenant_id);
	return a;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	rds_free(a->redis);
	free(a->prefix);
	free(a->admin);
	free(a);
}

void
auth_set_admin_token(struct auth *a, const char *token)
{
	free(a->admin);
	a->admin = token != NULL ? xstrdup(token) : NULL;
}

/* same - constant-time comparison of a secret with what was sent */
static int
same(const char *secret, const char *s, size_t len)
{
	size_t		sl = strlen(secret), i;
	unsigned char	d = sl != len;

	for (i = 0; i < sl; i++)
		d |= (unsigned char)secret[i] ^ (unsigned char)(i < len ?
		    s[i] : 0);
	return d == 0;
}

int
auth_is_admin(const struct auth *a, const char *token, size_t len)
{
	return a->admin != NULL && same(a->admin, token, len);
}

/* parse_principal - a token's Redis value */
static int
parse_principal(const char *s, size_t len, struct principal *p)
{
	json_t		*j = json_loadb(s, len, 0, NULL);
	const char	*kind = NULL, *name = NULL;
	json_int_t	 dbid = 0;
	int		 rc = -1;

	if (j != NULL && json_unpack(j, "{s:s, s:I, s:s}", "kind", &kind,
	    "dbid", &dbid, "name", &name) == 0) {
		p->kind = strcmp(kind, "person") == 0 ? PRINCIPAL_PERSON :
		    PRINCIPAL_APPLICATION;
		p->dbid = dbid;
		snprintf(p->name, sizeof(p->name), "%s", name);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static void
check_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct check		*c = arg;
	struct principal	 p;

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		c->cb(NULL, 1, c->arg);
	else if (reply->type != REDIS_REPLY_STRING ||
	    parse_principal(reply->str, reply->len, &p) == -1)
		c->cb(NULL, 0, c->arg);
	else
		c->cb(&p, 0, c->arg);
	free(c);
}

/* auth_check - who a token stands for */
void
auth_check(struct auth *a, const char *token, size_t len, auth_check_cb *cb,
    void *arg)
{
	struct principal	 admin;
	struct check		*c;
	size_t			 i;

	if (auth_is_admin(a, token, len)) {
		memset(&admin, 0, sizeof(admin));
		admin.kind = PRINCIPAL_ADMIN;
		snprintf(admin.name, sizeof(admin.name), "admin");
		cb(&admin, 0, arg);
		return;
	}
	for (i = 0; i < len; i++)
		if (!((token[i] >= '0' && token[i] <= '9') ||
		    (token[i] >= 'a' && token[i] <= 'f')))
			break;
	if (len != 2 * TOKEN_BYTES || i != len) {
		cb(NULL, 0, arg);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->a = a;
	c->cb = cb;
	c->arg = arg;
	if (rds_command(a->redis, check_cb, c, "GET %s%b", a->prefix, token,
	    len) == -1) {
		free(c);
		cb(NULL, 1, arg);
	}
}

static void
issue_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct issue	*is = arg;

	is->cb(reply != NULL && reply->type == REDIS_REPLY_STATUS ?
	    is->token : NULL, is->arg);
	free(is);
}

/* auth_issue - a new random token for p, stored with its expiry */
void
auth_issue(struct auth *a, const struct principal *p, unsigned ttl,
    auth_issue_cb *cb, void *arg)
{
	unsigned char	 raw[TOKEN_BYTES];
	struct issue	*is;
	char		*value;
	json_t		*j;
	size_t		 i;

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		fatal("getrandom");
	is = xcalloc(1, sizeof(*is));
	for (i = 0; i < sizeof(raw); i++)
		snprintf(is->token + 2 * i, 3, "%02x", raw[i]);
	is->cb = cb;
	is->arg = arg;
	j = json_pack("{s:s, s:I, s:s}", "kind", kinds[p->kind], "dbid",
	    p->dbid, "name", p->name);
	value = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (rds_command(a->redis, issue_cb, is, "SET %s%s %s EX %u NX",
	    a->prefix, is->token, value, ttl) == -1) {
		free(is);
		cb(NULL, arg);
	}
	free(value);
}

/* auth_hash - a fresh yescrypt hash */
char *
auth_hash(const char *secret)
{
	struct crypt_data	*cd = xcalloc(1, sizeof(*cd));
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	char			*h = NULL;

	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) != NULL &&
	    crypt_r(secret, salt, cd) != NULL && cd->output[0] != '*')
		h = xstrdup(cd->output);
	free(cd);
	return h;
}

/* auth_verify - does secret hash to hash? */
int
auth_verify(const char *secret, const char *hash)
{
	struct crypt_data	*cd = xcalloc(1, sizeof(*cd));
	int			 ok = 0;

	if (crypt_r(secret, hash, cd) != NULL && cd->output[0] != '*')
		ok = same(hash, cd->output, strlen(cd->output));
	free(cd);
	return ok;
}
