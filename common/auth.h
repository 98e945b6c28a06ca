/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth - bearer tokens shared by every worker and instance of a tenant.
 *
 * The config API issues a token when a Person's userName/password or an
 * Application's name/secret is right; the token lives in Redis with an
 * expiry (tenantd:{<tenant>}:token:<token>), so any worker of any instance
 * accepts it, until it expires or is revoked.  Each principal's live tokens
 * are also kept in a sorted set (tenantd:{<tenant>}:tokens:<dbid>, each
 * token scored by its expiry), added in the same atomic step as the token,
 * so that all of them can be revoked at once when its password or secret
 * changes.  The admin token from
 * security.admin_token_file is always accepted.  Password hashes are
 * crypt(3) strings (yescrypt), checked in constant time.
 */
#ifndef TENANTD_AUTH_H
#define TENANTD_AUTH_H

#include <stdint.h>

#include <jansson.h>

struct conf_redis;

/* An issued token: 32 random bytes, in lowercase hex. */
#define AUTH_TOKEN_LEN	64
/* A token's id, to name it without its secret: SHA-1, in hex. */
#define AUTH_ID_LEN	40

struct event_base;
struct auth;

enum principal_kind {
	PRINCIPAL_ADMIN = 0,
	PRINCIPAL_PERSON,
	PRINCIPAL_APPLICATION,
};

struct principal {
	enum principal_kind	 kind;
	json_int_t		 dbid;		/* 0 for the admin */
	char			 name[256];
};

/* principal NULL: no such token (unavailable: Redis could not be asked) */
typedef void	 auth_check_cb(const struct principal *, int unavailable,
		    void *arg);
/* token NULL: could not be stored (Redis away) */
typedef void	 auth_issue_cb(const char *token, void *arg);
/* ok 0: Redis could not be asked now; it is asked again in the background */
typedef void	 auth_revoke_cb(int ok, void *arg);

struct auth	*auth_new(struct event_base *, const struct conf_redis *,
		    const char *tenant_id);
void		 auth_free(struct auth *);
void		 auth_set_admin_token(struct auth *, const char *);
/* Is token the admin token?  Constant time. */
int		 auth_is_admin(const struct auth *, const char *token,
		    size_t len);
/* Look a token up (the admin token answers at once). */
void		 auth_check(struct auth *, const char *token, size_t len,
		    auth_check_cb *, void *arg);
/*
 * The same, with the wall-clock time the token expires (0: never, the
 * admin token), for sessions, which outlive a check.
 */
typedef void	 auth_expiry_cb(const struct principal *, uint64_t expires_us,
		    int unavailable, void *arg);
void		 auth_check_expiry(struct auth *, const char *token,
		    size_t len, auth_expiry_cb *, void *arg);
/*
 * The same, through the token's refreshes: a token refreshed answers for
 * its last successor, so that what was opened with it (a session, a
 * feed) goes on; a request is checked with the others.
 */
void		 auth_check_follow(struct auth *, const char *token,
		    size_t len, auth_expiry_cb *, void *arg);
/*
 * The channel on which a revocation or a dropped token is announced, in
 * the same atomic step: its message is the principal's dbid.  free(3) it.
 */
char		*auth_channel(const char *tenant_id);
/* Issue a token for p, valid ttl seconds. */
void		 auth_issue(struct auth *, const struct principal *,
		    unsigned ttl, auth_issue_cb *, void *arg);
/*
 * Revoke every token of principal dbid, in one atomic step.  cb (which
 * may be NULL) is called once Redis has answered, or failed to: a failed
 * revocation is tried again every second, for ttl seconds (the longest
 * life of a token issued before), while the auth lives.
 */
void		 auth_revoke(struct auth *, json_int_t dbid, unsigned ttl,
		    auth_revoke_cb *, void *arg);
/* Drop one token of principal dbid (no answer is awaited). */
void		 auth_drop(struct auth *, json_int_t dbid, const char *token);
/* The id of a token (tenantd:{<tenant>}:tokenid:<id> names it). */
void		 auth_token_id(const char *token, char id[AUTH_ID_LEN + 1]);
/*
 * Refresh old (a live token of principal dbid): a new token valid ttl
 * seconds; old serves no request from now on.  cb gets the new token, ""
 * when old was not live, NULL when Redis could not be asked.
 */
void		 auth_refresh(struct auth *, const char *old, json_int_t dbid,
		    unsigned ttl, auth_issue_cb *, void *arg);
/* n: tokens ended (0: no such id), -1: Redis could not be asked */
typedef void	 auth_end_cb(int n, void *arg);
/* End the token of that id, and what it was refreshed into. */
void		 auth_end(struct auth *, const char *id, auth_end_cb *,
		    void *arg);
/* crypt(3) hash of a secret with a fresh yescrypt salt; NULL on failure. */
char		*auth_hash(const char *secret);
/* Does secret match hash?  Constant time in the hash's length. */
int		 auth_verify(const char *secret, const char *hash);

#endif
