/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obhttp - what the HTTP routes of port 5050 (http.c) call in records.c
 * and dnc.c, once the route, the rights and the list are checked.
 */
#ifndef TENANTD_OBHTTP_H
#define TENANTD_OBHTTP_H

#include <jansson.h>

struct http_conn;
struct http_request;
struct olist;

/* records.c */
void	records_query(struct http_conn *, const struct http_request *,
	    struct olist *);
void	records_get(struct http_conn *, struct olist *, long long id);
void	records_patch(struct http_conn *, struct olist *, long long id,
	    json_t *body);
void	records_delete(struct http_conn *, struct olist *, long long id);

/* dnc.c */
void	dnc_add(struct http_conn *, json_t *body);
void	dnc_one(struct http_conn *, int del, const char *value, size_t len,
	    int customer);

#endif
