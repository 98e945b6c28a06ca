/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgx - a PostgreSQL connection of an import's or an export's own, in
 * non-blocking mode on the worker's loop, for what pgc does not do: COPY
 * FROM STDIN fed as a body arrives, and COPY TO STDOUT read as fast as its
 * reader takes it.
 */
#ifndef TENANTD_OB_PGX_H
#define TENANTD_OB_PGX_H

#include <stddef.h>

#include <libpq-fe.h>

#include "csv.h"

struct event;
struct pgx;

/* res NULL: the connection failed or was lost */
typedef void	 pgx_cb(struct pgx *, PGresult *res, void *arg);
typedef void	 pgx_data_cb(const char *, size_t, void *arg);

struct pgx {
	PGconn		*conn;
	struct event	*ev_rd;
	struct event	*ev_wr;
	int		 up;
	int		 blocked;	/* output not flushed */
	pgx_cb		*cb;		/* a result is awaited */
	pgx_data_cb	*data;		/* COPY TO rows */
	void		 (*flushed)(void *);
	void		*arg;
	PGresult	*last;
	int		 copy_out;	/* 1: COPY TO rows, 2: stopped */
	int		 paused;	/* COPY TO not read meanwhile */
	int		 ending;	/* PQputCopyEnd to retry */
	char		*end_error;
};

/* Connect; cb(x, NULL, arg) once it is up (x->up) or failed (!x->up). */
struct pgx	*pgx_open(pgx_cb *cb, void *arg);
/* Close; an open transaction rolls back.  NULL does nothing. */
void		 pgx_free(struct pgx *);
/* Send a query; its last result to cb (NULL if the connection is lost). */
int		 pgx_query(struct pgx *, const char *sql, int n,
		    const char *const *params, pgx_cb *cb);
/*
 * COPY FROM data in b; 1 when it must wait for the connection to take
 * more (flushed(arg) then), -1 when the connection is gone.
 */
int		 pgx_put(struct pgx *, struct csv_buf *b,
		    void (*flushed)(void *));
/* End COPY FROM (err: abort it so); cb gets its result. */
void		 pgx_copy_end(struct pgx *, const char *err, pgx_cb *cb);
/*
 * A query answered PGRES_COPY_OUT: its rows to data as they come (read
 * at once: it may be called from here), then its result to cb.
 */
void		 pgx_copy_out(struct pgx *, pgx_data_cb *data, pgx_cb *cb);
/*
 * Backpressure: stop reading COPY TO rows, and take them again (from the
 * loop, not from inside pgx_copy_resume).  Unread, they wait in the
 * socket, then in PostgreSQL.
 */
void		 pgx_copy_pause(struct pgx *);
void		 pgx_copy_resume(struct pgx *);
/* The reader left: no more rows; cb(x, NULL, arg) follows. */
void		 pgx_copy_stop(struct pgx *);

#endif
