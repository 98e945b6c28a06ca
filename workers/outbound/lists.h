/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lists - what lists.c knows of each calling list's table, for the files
 * that read and write records (import.c, records.c, http.c).
 */
#ifndef TENANTD_OB_LISTS_H
#define TENANTD_OB_LISTS_H

#include <jansson.h>

#include "csv.h"

struct olist {
	json_int_t	 dbid;
	char		*table;		/* quoted, for SQL */
	char		*table_raw;
	struct csv_col	*cols;		/* a client's columns, table order */
	size_t		 ncols;
	char		*customer;	/* the customer-id column, quoted */
	char		*bad;		/* why its format is refused */
	char		*want;		/* the table it must have */
	char		*made;		/* the table made (same text), or NULL */
	int		 importing;
	int		 tried;		/* made in this sync, or failed */
	int		 live;		/* in the configuration */
};

/* The list of that dbid in the configuration, ready or not, or NULL. */
struct olist	*lists_get(json_int_t dbid);
/* Its table exists with its columns. */
int		 lists_ready(const struct olist *);
/* A copy of its columns that outlives a change of its format. */
struct csv_col	*lists_cols_copy(const struct olist *, size_t *n);
/* Columns' names for SQL (l->cols: those a client sees), to free. */
char		*lists_cols_sql(const struct csv_col *, size_t n);
/* csv_tz_cb: a TimeZone with that dbid is in the configuration. */
int		 lists_tz_ok(long long, void *);
/* "name" for SQL, of a name checked to be [a-z0-9_]+, into buf. */
const char	*lists_quote(const char *name, char *buf, size_t len);

#endif
