/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sess_int - what the session server (sess.c) and client (sessclient.c)
 * share beyond sess.h; nothing else includes it.
 */
#ifndef TENANTD_SESS_INT_H
#define TENANTD_SESS_INT_H

#include <stddef.h>

#include <jansson.h>

#include "sess.h"

#define SESS_MSG_MAX		512
#define SESS_READ_MIN		16384	/* input read ahead, at least */
#define SESS_DECODE_FLAGS	(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

struct evbuffer;

/* Decode a line whose name is in field ("request" or "event"). */
int		 sess_decode_kind(const char *line, size_t len,
		    const char *field, struct sess_request *out,
		    const char **code, char *msg, size_t msglen);
/* One event line in a new evbuffer, or NULL. */
struct evbuffer	*sess_encode_evb(const json_t *event);
/* Small request and answer lines must not wait for Nagle. */
void		 sess_set_nodelay(int fd);

#endif
