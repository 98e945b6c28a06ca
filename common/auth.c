/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth - tokens in Redis, hashes with crypt(3).
 *
 * A token is 32 random bytes in hex.  Its Redis value is the principal as
 * JSON: {"kind": "person"|"application", "dbid": n, "name": "..."}.
 *
 * Beside it, the principal's sorted set tenantd:{<tenant>}:tokens:<dbid>
 * holds the token, scored by the Unix time it expires.  One Lua script
 * stores both, drops the members that expired, and makes the set live at
 * least as long as its longest token; another deletes every token of the
 * set, and the set.  Scripts run atomically, so a token is never stored
 * without its entry, nor left behind by a revocation that saw the entry.
 * Every key of a tenant has the same hash tag ({<tenant>}), so a script
 * stays within one hash slot, the token keys it derives included.  The
 * issuing script reads the server's clock (TIME) before it writes, which
 * needs Redis 5 or later.
 *
 * Both scripts that end tokens publish the principal's dbid on
 * tenantd:{<tenant>}:auth in the same step, so that every session of it,
 * on any instance, looks at its token again (common/rights.c).
 */
#include <sys/queue.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "auth.h"
#include "log.h"
#include "rds.h"
#include "util.h"

#define TOKEN_BYTES	(AUTH_TOKEN_LEN / 2)
#define TOKEN_MAX	128
#define REVOKE_RETRY_S	1

/*
 * KEYS: token, set, the token's id key; ARGV: principal, ttl, token.  OK,
 * or nil if taken.
 */
static const char issue_lua[] =
    "local ttl = tonumber(ARGV[2]) "
    "if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl, 'NX') then "
    " return false end "
    "redis.call('SET', KEYS[3], ARGV[3], 'EX', ttl) "
    "local now = tonumber(redis.call('TIME')[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) "
    "redis.call('ZADD', KEYS[2], now + ttl, ARGV[3]) "
    "if redis.call('TTL', KEYS[2]) < ttl then "
    " redis.call('EXPIRE', KEYS[2], ttl) end "
    "return redis.status_reply('OK')";

/*
 * KEYS: set; ARGV: the token key prefix, the channel, the dbid.  The
 * number of tokens revoked.  The message goes out in the same atomic step,
 * so a session that hears it finds the tokens gone.
 */
static const char revoke_lua[] =
    "local tokens = redis.call('ZRANGE', KEYS[1], 0, -1) "
    "for _, t in ipairs(tokens) do redis.call('DEL', ARGV[1] .. t, "
    " ARGV[4] .. redis.sha1hex(t)) end "
    "redis.call('DEL', KEYS[1]) "
    "redis.call('PUBLISH', ARGV[2], ARGV[3]) "
    "return #tokens";

/* KEYS: token, set, id key; ARGV: token, the channel, the dbid. */
static const char drop_lua[] =
    "redis.call('ZREM', KEYS[2], ARGV[1]) "
    "local n = redis.call('DEL', KEYS[1], KEYS[3]) "
    "redis.call('PUBLISH', ARGV[2], ARGV[3]) "
    "return n";

/*
 * KEYS: token; ARGV: the token key prefix, 1 to follow refreshes.  {value
 * or false, milliseconds to live}.  A refreshed token's value is "R:"
 * and its successor: dead for a request, alive for what was opened with
 * it (a session, a feed) while its last successor lives.
 */
static const char check_lua[] =
    "local k = KEYS[1] "
    "local v = redis.call('GET', k) "
    "local i = 0 "
    "while ARGV[2] == '1' and v and string.sub(v, 1, 2) == 'R:' and "
    " i < 64 do "
    " k = ARGV[1] .. string.sub(v, 3) v = redis.call('GET', k) i = i + 1 end "
    "if v and string.sub(v, 1, 2) == 'R:' then v = false end "
    "return {v, redis.call('PTTL', k)}";

/*
 * KEYS: old token, new token, set, new id key; ARGV: ttl, new token.  The
 * principal, or nil when the old token is gone, or was refreshed already.
 * The old token's key becomes a pointer to the new one, for the rest of
 * its life, in the same step: it serves no request from now on.
 */
static const char refresh_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, 2) == 'R:' then return false end "
    "local ttl = tonumber(ARGV[1]) "
    "if not redis.call('SET', KEYS[2], v, 'EX', ttl, 'NX') then "
    " return false end "
    "redis.call('SET', KEYS[4], ARGV[2], 'EX', ttl) "
    "local p = redis.call('PTTL', KEYS[1]) "
    "if p > 0 then redis.call('SET', KEYS[1], 'R:' .. ARGV[2], 'PX', p) end "
    "local now = tonumber(redis.call('TIME')[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) "
    "redis.call('ZADD', KEYS[3], now + ttl, ARGV[2]) "
    "if redis.call('TTL', KEYS[3]) < ttl then "
    " redis.call('EXPIRE', KEYS[3], ttl) end "
    "return v";

/*
 * KEYS: the id's key; ARGV: the token key prefix, the set prefix, the id
 * key prefix, the channel, the id.  Ends the token of that id and every token it was
 * refreshed into; the number ended.  The principal's dbid is announced.
 */
static const char end_lua[] =
    "local tok = redis.call('GET', ARGV[3] .. ARGV[5]) "
    "local n = 0 "
    "while tok and n < 64 do "
    " local v = redis.call('GET', ARGV[1] .. tok) "
    " redis.call('DEL', ARGV[1] .. tok, ARGV[3] .. redis.sha1hex(tok)) "
    " if not v then break end "
    " n = n + 1 "
    " if string.sub(v, 1, 2) ~= 'R:' then "
    "  local p = cjson.decode(v) "
    "  redis.call('ZREM', ARGV[2] .. p.dbid, tok) "
    "  redis.call('PUBLISH', ARGV[4], tostring(p.dbid)) "
    "  break end "
    " tok = string.sub(v, 3) end "
    "return n";

/* A revocation: answered once, tried until it succeeds or is moot. */
struct revocation {
	TAILQ_ENTRY(revocation)	 entry;
	struct auth		*a;		/* NULL: the auth is gone */
	json_int_t		 dbid;
	uint64_t		 until_us;	/* older tokens are expired */
	int			 out;		/* a command is out */
	int			 warned;
	auth_revoke_cb		*cb;		/* NULL once called */
	void			*arg;
};
TAILQ_HEAD(revocation_list, revocation);

struct auth {
	struct rds		*redis;
	char			*prefix;	/* tenantd:{<tenant>}:token: */
	char			*set_prefix;	/* tenantd:{<tenant>}:tokens: */
	char			*id_prefix;	/* tenantd:{<tenant>}:tokenid: */
	char			*channel;	/* tenantd:{<tenant>}:auth */
	char			*admin;
	struct event		*ev_revoke;	/* tries failed revocations */
	struct revocation_list	 revocations;
};

struct check {
	struct auth	*a;
	auth_check_cb	*cb;
	auth_expiry_cb	*ecb;		/* or this, with the token's life */
	void		*arg;
	int		 follow;	/* through refreshes (check_lua) */
};

struct issue {
	char		 token[2 * TOKEN_BYTES + 1];
	auth_issue_cb	*cb;
	void		*arg;
};

static const char *const kinds[] = { "admin", "person", "application" };

static void	revoke_again(evutil_socket_t, short, void *);
static void	revocation_end(struct revocation *, int);

/* auth_new - tokens of one tenant, on a Redis command connection */
struct auth *
auth_new(struct event_base *base, const struct conf_redis *cr,
    const char *tenant_id)
{
	struct auth	*a = xcalloc(1, sizeof(*a));

	a->redis = rds_new_conf(base, cr, NULL, NULL);
	rds_set_name(a->redis, "redis (tokens)");
	a->prefix = xasprintf("tenantd:{%s}:token:", tenant_id);
	a->set_prefix = xasprintf("tenantd:{%s}:tokens:", tenant_id);
	a->id_prefix = xasprintf("tenantd:{%s}:tokenid:", tenant_id);
	a->channel = auth_channel(tenant_id);
	TAILQ_INIT(&a->revocations);
	if ((a->ev_revoke = evtimer_new(base, revoke_again, a)) == NULL)
		fatalx("auth: cannot make a timer");
	return a;
}

/*
 * auth_free - close the Redis connection (its pending commands are
 * answered) and drop the revocations still to be tried.
 */
void
auth_free(struct auth *a)
{
	struct revocation	*rv;

	if (a == NULL)
		return;
	while ((rv = TAILQ_FIRST(&a->revocations)) != NULL) {
		TAILQ_REMOVE(&a->revocations, rv, entry);
		rv->a = NULL;
		if (!rv->out)
			revocation_end(rv, 0);
	}
	rds_free(a->redis);
	event_free(a->ev_revoke);
	free(a->prefix);
	free(a->set_prefix);
	free(a->id_prefix);
	free(a->channel);
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

/* auth_channel - where revocations are announced: free(3) it */
char *
auth_channel(const char *tenant_id)
{
	return xasprintf("tenantd:{%s}:auth", tenant_id);
}

/* check_answer - the caller's callback, whichever kind it gave */
static void
check_answer(struct check *c, const struct principal *p, uint64_t expires_us,
    int unavailable)
{
	if (c->ecb != NULL)
		c->ecb(p, expires_us, unavailable, c->arg);
	else
		c->cb(p, unavailable, c->arg);
}

static void
check_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct check		*c = arg;
	const redisReply	*value = reply, *pttl = NULL;
	struct principal	 p;
	uint64_t		 expires_us = 0;

	if ((c->ecb != NULL || c->follow) && reply != NULL &&
	    reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
		value = reply->element[0];
		pttl = reply->element[1];
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR ||
	    ((c->ecb != NULL || c->follow) && pttl == NULL))
		check_answer(c, NULL, 0, 1);
	else if (value->type != REDIS_REPLY_STRING ||
	    parse_principal(value->str, value->len, &p) == -1)
		check_answer(c, NULL, 0, 0);
	else {
		if (pttl != NULL && pttl->type == REDIS_REPLY_INTEGER &&
		    pttl->integer > 0)
			expires_us = now_wall_us() +
			    (uint64_t)pttl->integer * 1000;
		check_answer(c, &p, expires_us, 0);
	}
	free(c);
}

/* check - who a token stands for, for either kind of callback */
static void
check(struct auth *a, const char *token, size_t len, struct check *c)
{
	struct principal	 admin;
	size_t			 i;
	int			 rc;

	if (auth_is_admin(a, token, len)) {
		memset(&admin, 0, sizeof(admin));
		admin.kind = PRINCIPAL_ADMIN;
		snprintf(admin.name, sizeof(admin.name), "admin");
		check_answer(c, &admin, 0, 0);
		free(c);
		return;
	}
	for (i = 0; i < len; i++)
		if (!((token[i] >= '0' && token[i] <= '9') ||
		    (token[i] >= 'a' && token[i] <= 'f')))
			break;
	if (len != 2 * TOKEN_BYTES || i != len) {
		check_answer(c, NULL, 0, 0);
		free(c);
		return;
	}
	c->a = a;
	if (c->ecb != NULL || c->follow)
		rc = rds_command(a->redis, check_cb, c, "EVAL %s 1 %s%b %s %d",
		    check_lua, a->prefix, token, len, a->prefix, c->follow);
	else
		rc = rds_command(a->redis, check_cb, c, "GET %s%b", a->prefix,
		    token, len);
	if (rc == -1) {
		check_answer(c, NULL, 0, 1);
		free(c);
	}
}

/* auth_check - who a token stands for */
void
auth_check(struct auth *a, const char *token, size_t len, auth_check_cb *cb,
    void *arg)
{
	struct check	*c = xcalloc(1, sizeof(*c));

	c->cb = cb;
	c->arg = arg;
	check(a, token, len, c);
}

/* auth_check_follow - the same, through the token's refreshes */
void
auth_check_follow(struct auth *a, const char *token, size_t len,
    auth_expiry_cb *cb, void *arg)
{
	struct check	*c = xcalloc(1, sizeof(*c));

	c->ecb = cb;
	c->arg = arg;
	c->follow = 1;
	check(a, token, len, c);
}

/* auth_check_expiry - the same, with the time the token expires */
void
auth_check_expiry(struct auth *a, const char *token, size_t len,
    auth_expiry_cb *cb, void *arg)
{
	struct check	*c = xcalloc(1, sizeof(*c));

	c->ecb = cb;
	c->arg = arg;
	check(a, token, len, c);
}

static void
issue_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct issue	*is = arg;

	is->cb(reply != NULL && reply->type == REDIS_REPLY_STATUS ?
	    is->token : NULL, is->arg);
	free(is);
}

/*
 * auth_issue - a new random token for p, stored with its expiry, and
 * entered in p's set of tokens
 */
void
auth_issue(struct auth *a, const struct principal *p, unsigned ttl,
    auth_issue_cb *cb, void *arg)
{
	unsigned char	 raw[TOKEN_BYTES];
	char		 id[AUTH_ID_LEN + 1];
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
	auth_token_id(is->token, id);
	if (rds_command(a->redis, issue_cb, is, "EVAL %s 3 %s%s %s%lld %s%s %s "
	    "%u %s", issue_lua, a->prefix, is->token, a->set_prefix,
	    (long long)p->dbid, a->id_prefix, id, value, ttl,
	    is->token) == -1) {
		free(is);
		cb(NULL, arg);
	}
	free(value);
}

/* revocation_end - answer the caller if not done yet, and forget it */
static void
revocation_end(struct revocation *rv, int ok)
{
	if (rv->cb != NULL)
		rv->cb(ok, rv->arg);
	free(rv);
}

/*
 * revoke_cb - Redis ran the revocation, or could not be asked: then the
 * caller is answered all the same (the write it made is committed), and
 * the revocation waits for the next try.
 */
static void
revoke_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct revocation	*rv = arg;
	struct timeval		 tv = { REVOKE_RETRY_S, 0 };
	int			 ok = reply != NULL &&
				    reply->type == REDIS_REPLY_INTEGER;

	rv->out = 0;
	if (rv->a == NULL) {
		revocation_end(rv, ok);
		return;
	}
	if (ok) {
		log_debug("revoked %lld token(s) of principal %lld",
		    (long long)reply->integer, (long long)rv->dbid);
		TAILQ_REMOVE(&rv->a->revocations, rv, entry);
		revocation_end(rv, 1);
		return;
	}
	if (!rv->warned)
		log_warnx("cannot revoke the tokens of principal %lld now (%s); "
		    "trying again", (long long)rv->dbid, reply == NULL ?
		    "Redis unavailable" : reply->type == REDIS_REPLY_ERROR ?
		    reply->str : "unexpected reply");
	rv->warned = 1;
	if (rv->cb != NULL) {
		rv->cb(0, rv->arg);
		rv->cb = NULL;
	}
	if (!evtimer_pending(rv->a->ev_revoke, NULL))
		evtimer_add(rv->a->ev_revoke, &tv);
}

/* revoke_send - run the revocation script for rv */
static void
revoke_send(struct auth *a, struct revocation *rv)
{
	rv->out = 1;
	if (rds_command(a->redis, revoke_cb, rv, "EVAL %s 1 %s%lld %s %s %lld "
	    "%s", revoke_lua, a->set_prefix, (long long)rv->dbid, a->prefix,
	    a->channel, (long long)rv->dbid, a->id_prefix) == -1)
		revoke_cb(a->redis, NULL, rv);
}

/*
 * revoke_again - every second while some revocation failed: try each
 * again, or give it up once every token it was for has expired anyway.
 */
static void
revoke_again(evutil_socket_t fd, short what, void *arg)
{
	struct auth		*a = arg;
	struct revocation	*rv, *next;
	uint64_t		 now = now_wall_us();

	for (rv = TAILQ_FIRST(&a->revocations); rv != NULL; rv = next) {
		next = TAILQ_NEXT(rv, entry);
		if (rv->out)
			continue;
		if (now >= rv->until_us) {
			log_info("tokens of principal %lld not revoked; they "
			    "have expired by now", (long long)rv->dbid);
			TAILQ_REMOVE(&a->revocations, rv, entry);
			revocation_end(rv, 0);
		} else
			revoke_send(a, rv);
	}
}

/* auth_revoke - end every token of principal dbid */
void
auth_revoke(struct auth *a, json_int_t dbid, unsigned ttl,
    auth_revoke_cb *cb, void *arg)
{
	struct revocation	*rv = xcalloc(1, sizeof(*rv));

	rv->a = a;
	rv->dbid = dbid;
	rv->until_us = now_wall_us() + (uint64_t)ttl * 1000000;
	rv->cb = cb;
	rv->arg = arg;
	TAILQ_INSERT_TAIL(&a->revocations, rv, entry);
	revoke_send(a, rv);
}

/* auth_drop - delete one token and its entry in its principal's set */
void
auth_drop(struct auth *a, json_int_t dbid, const char *token)
{
	char	id[AUTH_ID_LEN + 1];

	auth_token_id(token, id);
	rds_command(a->redis, NULL, NULL, "EVAL %s 3 %s%s %s%lld %s%s %s %s "
	    "%lld", drop_lua, a->prefix, token, a->set_prefix, (long long)dbid,
	    a->id_prefix, id, token, a->channel, (long long)dbid);
}

/* auth_token_id - a token's id: the SHA-1 of it, in hex */
void
auth_token_id(const char *token, char id[AUTH_ID_LEN + 1])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	n = 0, i;

	if (EVP_Digest(token, strlen(token), md, &n, EVP_sha1(), NULL) != 1 ||
	    n * 2 != AUTH_ID_LEN)
		fatalx("auth: SHA-1 failed");
	for (i = 0; i < n; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
}

struct refresh {
	char		 token[2 * TOKEN_BYTES + 1];
	auth_issue_cb	*cb;
	void		*arg;
};

static void
refresh_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct refresh	*rf = arg;

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		rf->cb(NULL, rf->arg);
	else if (reply->type != REDIS_REPLY_STRING)
		rf->cb("", rf->arg);
	else
		rf->cb(rf->token, rf->arg);
	explicit_bzero(rf->token, sizeof(rf->token));
	free(rf);
}

/*
 * auth_refresh - a new token for old's principal, valid ttl seconds; old
 * ends for requests, in the same step.  cb: the new token, "" when old
 * was not live (expired, revoked, refreshed already), NULL when Redis
 * could not be asked.
 */
void
auth_refresh(struct auth *a, const char *old, json_int_t dbid, unsigned ttl,
    auth_issue_cb *cb, void *arg)
{
	unsigned char	 raw[TOKEN_BYTES];
	char		 id[AUTH_ID_LEN + 1];
	struct refresh	*rf;
	size_t		 i;

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		fatal("getrandom");
	rf = xcalloc(1, sizeof(*rf));
	for (i = 0; i < sizeof(raw); i++)
		snprintf(rf->token + 2 * i, 3, "%02x", raw[i]);
	rf->cb = cb;
	rf->arg = arg;
	auth_token_id(rf->token, id);
	if (rds_command(a->redis, refresh_cb, rf, "EVAL %s 4 %s%s %s%s %s%lld "
	    "%s%s %u %s", refresh_lua, a->prefix, old, a->prefix, rf->token,
	    a->set_prefix, (long long)dbid, a->id_prefix, id, ttl,
	    rf->token) == -1) {
		free(rf);
		cb(NULL, arg);
	}
}

struct ending {
	auth_end_cb	*cb;
	void		*arg;
};

static void
end_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct ending	*e = arg;

	e->cb(reply == NULL || reply->type != REDIS_REPLY_INTEGER ? -1 :
	    (int)reply->integer, e->arg);
	free(e);
}

/*
 * auth_end - end the token whose id is id (and what it was refreshed
 * into); its principal's sessions look at their tokens again
 */
void
auth_end(struct auth *a, const char *id, auth_end_cb *cb, void *arg)
{
	struct ending	*e = xcalloc(1, sizeof(*e));

	e->cb = cb;
	e->arg = arg;
	/* the id's key as KEYS[1]: it routes the script to the tenant's slot */
	if (rds_command(a->redis, end_cb, e, "EVAL %s 1 %s%s %s %s %s %s %s",
	    end_lua, a->id_prefix, id, a->prefix, a->set_prefix, a->id_prefix,
	    a->channel, id) == -1) {
		free(e);
		cb(-1, arg);
	}
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
