/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import - POST /v1/import: many objects created or updated in one
 * transaction, all or nothing.
 *
 * The body is NDJSON, one {"type": "Person", "object": {...}} per line.
 * An object whose natural key exists is replaced (as by PUT, keeping its
 * secrets unless given); any other is created.  New objects may refer to
 * each other with negative placeholder dbids: an object that says
 * "dbid": -7 gets a real dbid, and every -7 elsewhere in the import
 * becomes that dbid.
 */
#ifndef TENANTD_CONFIG_IMPORT_H
#define TENANTD_CONFIG_IMPORT_H

#include <stddef.h>

#include <jansson.h>

#include "auth.h"

struct event_base;

/*
 * The end of an import: status 200 with answer {"created", "updated",
 * "revision"}, or an error status with answer as the error body (422
 * with per-line errors, 409, 503).  The answer is the callback's to keep.
 */
typedef void	 import_cb(int status, json_t *answer, json_int_t revision,
		    void *arg);

/*
 * Start an import of body (copied) for principal who, on its own
 * PostgreSQL connection.  Returns -1 if one is already running.
 */
int		 import_start(struct event_base *, const char *conninfo,
		    const char *password, const char *body, size_t len,
		    const struct principal *who, import_cb *, void *arg);
int		 import_running(void);
/* Drop a running import (stop): its transaction rolls back. */
void		 import_abort(void);

#endif
