/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate - versioned schema migrations of one owner (a worker) in
 * PostgreSQL, safe when several tenantd instances start at once.
 */
#ifndef TENANTD_MIGRATE_H
#define TENANTD_MIGRATE_H

struct pgc;

struct migration {
	int		 version;	/* ascending, from 1, never reused */
	const char	*sql;		/* one or more statements */
};

/*
 * ok: 1 when the schema is at the latest version, 0 when it could not be
 * brought there (the reason was logged; the caller retries later).
 */
typedef void	 migrate_cb(int ok, int version, void *arg);

/*
 * Bring owner's tables to the latest version, in one transaction that
 * holds an advisory lock on owner: a second instance waits, then finds
 * nothing left to do.  A database newer than this binary is refused.
 */
int	migrate_run(struct pgc *, const char *owner, const struct migration *,
	    int n, migrate_cb *, void *arg);

#endif
