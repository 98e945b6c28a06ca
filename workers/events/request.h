/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request - the call and agent requests of the events protocol, checked
 * without looking anything up: known name, fields of the right type and
 * size, a known work mode, userData within the limit.  Pure, for the
 * worker, its unit tests and its fuzz target.  Whether the DN exists and
 * the client may use it is the worker's business (the cache).
 */
#ifndef TENANTD_EVENTS_REQUEST_H
#define TENANTD_EVENTS_REQUEST_H

#include <stddef.h>

#include <jansson.h>

#define EVREQ_DN_MAX	63	/* bytes of a DN number */

/* Fields a request needs beside "dn". */
#define N_CONN		0x01	/* connId */
#define N_DEST		0x02	/* destination */
#define N_AGENT		0x04	/* agentId */
#define N_DATA		0x08	/* userData */
#define N_CONSULT	0x10	/* consultConnId */

struct request_def {
	const char	*name;
	unsigned	 need;
};

struct evreq_error {
	const char	*code;		/* EventError code */
	char		 message[256];
};

/* The definition of a request the voice side answers, or NULL. */
const struct request_def *evreq_find(const char *name);
/* Check req against d: 0, or -1 with err filled. */
int	 evreq_check(const struct request_def *d, const json_t *req,
	    size_t user_data_max, struct evreq_error *err);
/* "dn" alone (also for register, unregister, query). */
int	 evreq_check_dn(const json_t *req, struct evreq_error *err);

#endif
