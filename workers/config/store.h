/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store - the config worker's tables in PostgreSQL and its writes.
 *
 * Every write runs as one transaction of one or more operations (a delete
 * with cascade updates the referrers, then deletes).  Each operation bumps
 * the tenant's single revision row and appends to the change log in the
 * same statement, so revisions are gap-free and follow commit order: the
 * revision row lock serializes writers across every instance.  References
 * are rows of cfg_ref with foreign keys, so PostgreSQL itself refuses a
 * dangling reference or the delete of a referenced object, even when two
 * instances race.
 *
 * Writers that race on several rows can deadlock (SQLSTATE 40P01), and
 * under SERIALIZABLE a transaction can be refused (40001).  PostgreSQL has
 * then rolled the whole unit back, so the store runs it again, whole, after
 * a short random delay on a timer (never blocking the loop); only when
 * every try failed so does the write (STORE_CONFLICT).
 *
 * A write whose answer was lost with the connection (after a lone
 * statement or a COMMIT was sent) may have committed.  It is never run
 * again: every change carries the write's random id (cfg_change.write_id),
 * and the store asks the change log, on the next connection, whether a
 * change with that id is there: the write then answers as committed
 * (STORE_OK), or as not written (STORE_UNAVAILABLE); only if PostgreSQL
 * cannot be asked within a few seconds is the outcome STORE_UNKNOWN.
 */
#ifndef TENANTD_CONFIG_STORE_H
#define TENANTD_CONFIG_STORE_H

#include <jansson.h>

#include "migrate.h"

struct event_base;
struct pgc;

enum store_op { STORE_CREATE, STORE_UPDATE, STORE_DELETE };

enum store_rc {
	STORE_OK = 0,
	STORE_DUPLICATE,	/* natural key taken: 409 */
	STORE_STALE,		/* version changed or object gone: 409/412 */
	STORE_REFERENCED,	/* a reference is missing, or points here */
	STORE_UNAVAILABLE,	/* PostgreSQL away: 503 */
	STORE_CONFLICT,		/* deadlock or serialization failure on every
				   try: 503 */
	STORE_FAILED,		/* anything else: 500 */
	STORE_UNKNOWN,		/* the answer was lost with the connection,
				   and PostgreSQL could not be asked again
				   in time whether it committed: 503 */
};

/* How many times a write that keeps conflicting is run in all. */
#define STORE_TRIES	6

struct store_write {
	enum store_op	 op;
	const char	*type;		/* "Person" */
	json_int_t	 dbid;		/* update, delete */
	json_int_t	 version;	/* the version being replaced */
	const char	*key;		/* natural key (create, update) */
	json_t		*data;		/* the object (create, update) */
	json_int_t	*refs;		/* dbids data refers to */
	size_t		 nrefs;
	const char	**secret_fields; /* write-only fields, hashed */
	const char	**secret_hashes;	/* NULL: clear that secret */
	size_t		 nsecrets;
};

/*
 * revision: the last revision written; dbid: the created object's (or the
 * last operation's); detail: PostgreSQL's message on failure.
 */
typedef void	 store_cb(enum store_rc, json_int_t revision, json_int_t dbid,
		    const char *detail, void *arg);

extern const struct migration	store_migrations[];
extern const int		store_nmigrations;

/* The loop retries wait on; call once, before the first write. */
void		 store_init(struct event_base *);
/* Answer every write waiting to be run again (STORE_UNAVAILABLE). */
void		 store_fini(void);
/* Writes not answered yet: running, or waiting to be run again. */
size_t		 store_pending(void);
/*
 * Run ops in one transaction; 0 when queued (cb runs once), else -1.  The
 * store keeps its own copy of ops: the caller may free them at once.
 */
int		 store_write(struct pgc *, const struct store_write *, size_t,
		    store_cb *, void *);
/* A secret's hash, for checking a password: cb gets NULL if none. */
typedef void	 store_secret_cb(const char *hash, int ok, void *arg);
int		 store_secret(struct pgc *, json_int_t dbid, const char *field,
		    store_secret_cb *, void *);
/* Drop change-log entries older than keep revisions. */
int		 store_prune(struct pgc *, json_int_t keep);

/*
 * A write's id: 32 hex digits, stored with each of its changes
 * (cfg_change.write_id), so that a write whose answer was lost with the
 * connection can be looked up.
 */
#define STORE_WID_LEN	32
#define STORE_LOOKUP_S	3	/* a lookup gives up after this long */
void		 store_write_id(char out[STORE_WID_LEN + 1]);
/*
 * Ask the change log, through pg's next connection, whether the write
 * wid committed: cb gets found 1 (with its last change's revision and
 * dbid), 0 (it did not commit), or -1 (PostgreSQL could not be asked
 * within STORE_LOOKUP_S).  Cancel before the client is freed.
 */
struct store_lookup;
typedef void	 store_lookup_cb(int found, json_int_t revision,
		    json_int_t dbid, void *arg);
struct store_lookup *store_lookup(struct pgc *, const char *wid,
		    store_lookup_cb *, void *);
void		 store_lookup_cancel(struct store_lookup *);

#endif
