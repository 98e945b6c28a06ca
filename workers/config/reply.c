/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reply - the config worker's answers: a JSON body, an error body
 * {"error": code, "message": ..., "field": ...} (docs/config-api.md,
 * "Errors"), a cached object with its version as ETag; and the two
 * parsers every route shares, a dbid in a path and a JSON object body.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cache.h"
#include "config_int.h"
#include "log.h"
#include "util.h"

/* reply_json - an answer with a JSON body */
void
reply_json(struct http_conn *c, int status, const char *extra,
    const char *body, size_t len)
{
	http_respond(c, status, "application/json", extra, body, len);
}

/* reply_error - {"error": code, "message": ..., "field": ...} */
void
reply_error(struct http_conn *c, int status, const char *code,
    const char *field, const char *fmt, ...)
{
	char	 msg[512], *text;
	va_list	 ap;
	json_t	*j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	if (field != NULL)
		json_object_set_new(j, "field", json_string(field));
	text = json_dumps(j, JSON_COMPACT);
	/* a 503 says when to come back: every one is worth a retry */
	reply_json(c, status, status == 401 ?
	    "WWW-Authenticate: Bearer realm=\"tenantd\"\r\n" : status == 503 ?
	    "Retry-After: 1\r\n" : NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

/* reply_cfg_error - a validation failure, as the validator worded it */
void
reply_cfg_error(struct http_conn *c, const struct cfg_error *e)
{
	reply_error(c, e->status, e->code, e->field[0] ? e->field : NULL,
	    "%s", e->message);
}

/* reply_object - one cached object, with its version as ETag */
void
reply_object(struct http_conn *c, int status, const struct cobj *o)
{
	char	extra[256];

	if (status == 201)
		snprintf(extra, sizeof(extra), "ETag: \"%lld\"\r\nLocation: "
		    "/v1/%s/%lld\r\n", (long long)o->version,
		    cfg_type_collection(cfg_type_at(o->kind)),
		    (long long)o->dbid);
	else
		snprintf(extra, sizeof(extra), "ETag: \"%lld\"\r\n",
		    (long long)o->version);
	reply_json(c, status, extra, o->text, o->len);
}

/* reply_printf - an answer whose JSON body is printed, never cut */
void
reply_printf(struct http_conn *c, int status, const char *extra,
    const char *fmt, ...)
{
	char	*body;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (n == -1)
		fatal("vasprintf");
	reply_json(c, status, extra, body, (size_t)n);
	free(body);
}

/* reply_not_allowed - 405 with the methods that are */
void
reply_not_allowed(struct http_conn *c, const char *allow)
{
	char	*extra = xasprintf("Allow: %s\r\n", allow);

	reply_printf(c, 405, extra, "{\"error\":\"MethodNotAllowed\","
	    "\"message\":\"allowed here: %s\"}", allow);
	free(extra);
}

/* reply_forbidden - 403 naming what is missing */
void
reply_forbidden(struct http_conn *c, int right, const struct cfg_type *t)
{
	reply_error(c, 403, "Forbidden", NULL, "no %s right on %s",
	    access_right_name(right), cfg_type_collection(t));
}

/* parse_dbid - a positive decimal dbid, or -1 */
json_int_t
parse_dbid(const char *s, size_t n)
{
	json_int_t	v = 0;
	size_t		i;

	if (n == 0 || n > 16)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= CFG_DBID_MAX ? v : -1;
}

/* parse_body - the request body as a JSON object, else answer 400 */
json_t *
parse_body(struct http_conn *c, const struct http_request *r)
{
	json_error_t	 e;
	json_t		*j;

	j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL) {
		reply_error(c, 400, "BadJson", NULL, "malformed JSON at line "
		    "%d, column %d: %s", e.line, e.column, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		reply_error(c, 400, "WrongType", NULL, "the body must be a "
		    "JSON object");
		return NULL;
	}
	return j;
}
