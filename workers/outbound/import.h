/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import - records into a calling list, and DNC entries into ocs_dnc,
 * streamed from an HTTP body into COPY on a connection of their own, all
 * or nothing; and (export.c) a list's export streamed out of COPY TO.
 */
#ifndef TENANTD_OB_IMPORT_H
#define TENANTD_OB_IMPORT_H

#include <jansson.h>

#include "csv.h"

struct http_conn;
struct olist;

/* POST /v1/calling-lists/{dbid}/records: the body is taken here. */
void	 import_records(struct http_conn *, struct olist *, int ndjson);
/* POST /v1/dnc with a CSV or NDJSON body of entries. */
void	 import_dnc(struct http_conn *, int ndjson);
/* Every import ends (the worker stops). */
void	 import_cleanup(void);

/* export.c: GET /v1/calling-lists/{dbid}/export */
void	 export_list(struct http_conn *, struct olist *, int ndjson);
/* Every export ends (the worker stops). */
void	 export_cleanup(void);

/* dnc.c: one DNC entry of a bulk body as its COPY line (kind, value). */
int	 dnc_csv_header(const struct csv_field *, size_t, int *at_phone,
	    int *at_customer, char *why, size_t);
int	 dnc_entry(const char *phone, size_t plen, const char *customer,
	    size_t clen, struct csv_buf *out, char *why, size_t);

#endif
