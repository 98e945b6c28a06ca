/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgc - a non-blocking PostgreSQL client on a worker's libevent loop.
 *
 * One pgc is one connection.  Queries are queued and run one at a time, in
 * the order they were queued; each callback gets the query's result, or
 * NULL when the outcome is unknown: the client was down, or the connection
 * was lost before the answer came.  The caller decides whether to retry,
 * typically once the state callback reports PGC_UP again.  A failed or lost
 * connection is retried with capped exponential backoff; the outage is
 * logged once and the recovery once.
 *
 * Callbacks are never called from inside pgc_query and friends, only from
 * the loop (or from pgc_free, which hands NULL to every pending query).
 * The PGresult is borrowed: pgc clears it when the callback returns.  With
 * nparams 0 the SQL may hold several statements (simple query protocol) and
 * the callback gets the last result, which is the error if one failed.
 * COPY is not supported.  pgc_free may be called from any callback.
 *
 * A transaction (pgc_begin) holds the connection from its BEGIN until its
 * COMMIT or ROLLBACK has run: other queries wait behind it, so end it
 * promptly.  It must be ended by pgc_commit or pgc_rollback, whose callback
 * is its last; after a lost connection its queries and its end get NULL.
 * COMMIT of a transaction in which a statement failed reports success with
 * the command tag "ROLLBACK" (PQcmdStatus), as PostgreSQL does.
 *
 * Nothing here blocks the loop, save what libpq itself does when a
 * connection starts: a host name (not an address) is resolved with
 * getaddrinfo(3).  Use hostaddr= or a socket directory where that matters.
 */
#ifndef TENANTD_PGC_H
#define TENANTD_PGC_H

#include <stddef.h>

#include <libpq-fe.h>

enum pgc_state {
	PGC_DOWN = 0,		/* waiting to retry; queries get NULL */
	PGC_CONNECTING,		/* queries are queued */
	PGC_UP,
};

struct event_base;
struct pgc;
struct pgc_txn;

/* res: the result, borrowed until return, or NULL (outcome unknown) */
typedef void	 pgc_result_cb(struct pgc *, const PGresult *res, void *arg);
typedef void	 pgc_state_cb(struct pgc *, enum pgc_state, void *arg);

/*
 * Connect on base using conninfo (a libpq connection string or URI) and,
 * when not NULL, password, which overrides any password in conninfo.  The
 * client starts CONNECTING; the first attempt runs from the loop.  Returns
 * NULL when conninfo does not parse.
 */
struct pgc	*pgc_new(struct event_base *, const char *conninfo,
		    const char *password, pgc_state_cb *, void *arg);
void		 pgc_free(struct pgc *);

/* Tuning; the defaults are 5 s, 100 ms to 10 s, and 10000 queries. */
void		 pgc_set_connect_timeout(struct pgc *, unsigned ms);
void		 pgc_set_backoff(struct pgc *, unsigned base_ms, unsigned max_ms);
void		 pgc_set_queue_limit(struct pgc *, size_t);	/* 0: none */

enum pgc_state	 pgc_state(const struct pgc *);
const char	*pgc_name(const struct pgc *);	/* "postgres host:port/db" */
size_t		 pgc_queued(const struct pgc *);

/*
 * Queue sql with nparams text parameters (a NULL one is SQL NULL).  Returns
 * 0 when queued: cb (which may be NULL) will be called exactly once.
 * Returns -1, and cb is never called, when the queue is full, nparams is
 * out of range or the client is being freed.
 */
int		 pgc_query(struct pgc *, const char *sql, int nparams,
		    const char *const *params, pgc_result_cb *, void *arg);
/*
 * The same, as a statement prepared under name on the connection: the
 * first use on each connection prepares it (one more round trip), later
 * ones only bind and run it, without PostgreSQL parsing and planning the
 * text again.  One name is one text: never give a name two.  A failed
 * PREPARE is the query's answer.
 */
int		 pgc_query_named(struct pgc *, const char *name, const char *sql,
		    int nparams, const char *const *params, pgc_result_cb *,
		    void *arg);
/* A health probe: SELECT 1. */
int		 pgc_ping(struct pgc *, pgc_result_cb *, void *arg);

/* Queue a BEGIN; NULL when the queue is full or the client being freed. */
struct pgc_txn	*pgc_begin(struct pgc *);
int		 pgc_txn_query(struct pgc_txn *, const char *sql, int nparams,
		    const char *const *params, pgc_result_cb *, void *arg);
/* End the transaction; its callback is its last, and frees it.  -1 if it
 * was already ended or the client is being freed. */
int		 pgc_commit(struct pgc_txn *, pgc_result_cb *, void *arg);
int		 pgc_rollback(struct pgc_txn *, pgc_result_cb *, void *arg);

#endif
