/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - the HTTP routes of port 5050 (docs/openapi/outbound.yaml), once
 * common/svc.c has checked the request's token:
 *
 *   /v1/calling-lists/{dbid}/records          GET (query), POST (import)
 *   /v1/calling-lists/{dbid}/records/{id}     GET, PATCH, DELETE
 *   /v1/calling-lists/{dbid}/export           GET (CSV or NDJSON)
 *   /v1/dnc                                   POST (one, or a bulk body)
 *   /v1/dnc/{value}                           GET, DELETE
 *   /v1/campaign-groups/{dbid}                GET        (control.c)
 *   /v1/campaign-groups/{dbid}/{action}       POST       (control.c)
 *
 * Rights are those of the config API: read or update on the CallingList;
 * read or update on the Tenant object for the DNC list.  An import or a
 * bulk DNC body is streamed (import.c); every other body is read whole.
 * Errors are the config API's {"error": code, "message": ...}.
 *
 * What it may touch: nothing itself; it hands each request on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cache.h"
#include "http.h"
#include "import.h"
#include "lists.h"
#include "obhttp.h"
#include "outbound_int.h"
#include "svc.h"
#include "util.h"

enum route {
	R_NONE = 0,
	R_RECORDS,		/* /v1/calling-lists/{dbid}/records */
	R_RECORD,		/* .../records/{id} */
	R_EXPORT,		/* .../export */
	R_DNC,			/* /v1/dnc */
	R_DNC_ONE,		/* /v1/dnc/{value} */
	R_GROUP,		/* /v1/campaign-groups/{dbid} */
	R_GROUP_ACTION,		/* .../{action} */
};

enum body_kind { B_NONE = 0, B_JSON, B_CSV, B_NDJSON, B_OTHER };

struct req {
	enum route	 route;
	json_int_t	 dbid;
	long long	 id;
	const char	*seg;		/* the last segment: value or action */
	size_t		 seglen;
	struct olist	*list;
};

static const char *const actions[] = { "load", "start", "stop", "unload",
    "force-unload", "set-dialing-mode", NULL };

/* number - a positive decimal of at most 16 digits, or -1 */
static long long
number(const char *s, size_t n, long long max)
{
	long long	v = 0;
	size_t		i;

	if (n == 0 || n > 16)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= max ? v : -1;
}

/* seg - the next path segment after *p, up to end */
static int
seg(const char **p, const char *end, const char **s, size_t *n)
{
	const char	*q;

	if (*p >= end || **p != '/')
		return 0;
	(*p)++;
	q = memchr(*p, '/', (size_t)(end - *p));
	*s = *p;
	*n = (size_t)((q != NULL ? q : end) - *p);
	*p += *n;
	return 1;
}

#define IS(s, n, lit)	((n) == sizeof(lit) - 1 && memcmp(s, lit, n) == 0)

/* parse - the route of a path, or R_NONE */
static void
parse(const struct http_request *r, struct req *q)
{
	const char	*p = r->target, *end = r->target + r->path_len, *s[5];
	size_t		 n[5];
	int		 k = 0;

	memset(q, 0, sizeof(*q));
	while (k < 5 && seg(&p, end, &s[k], &n[k]))
		k++;
	if (p != end || k < 2 || !IS(s[0], n[0], "v1"))
		return;
	if (IS(s[1], n[1], "dnc")) {
		q->route = k == 2 ? R_DNC : k == 3 && n[2] > 0 ? R_DNC_ONE :
		    R_NONE;
		q->seg = k == 3 ? s[2] : NULL;
		q->seglen = k == 3 ? n[2] : 0;
		return;
	}
	if (k < 3 || (q->dbid = number(s[2], n[2], CFG_DBID_MAX)) == -1)
		return;
	if (IS(s[1], n[1], "campaign-groups")) {
		q->route = k == 3 ? R_GROUP : k == 4 ? R_GROUP_ACTION : R_NONE;
		q->seg = k == 4 ? s[3] : NULL;
		q->seglen = k == 4 ? n[3] : 0;
		return;
	}
	if (!IS(s[1], n[1], "calling-lists") || k < 4)
		return;
	if (k == 4 && IS(s[3], n[3], "records"))
		q->route = R_RECORDS;
	else if (k == 4 && IS(s[3], n[3], "export"))
		q->route = R_EXPORT;
	else if (k == 5 && IS(s[3], n[3], "records") &&
	    (q->id = number(s[4], n[4], 2147483647LL)) != -1)
		q->route = R_RECORD;
}

/* allowed - the methods of a route, for 405 */
static const char *
allowed(enum route r)
{
	switch (r) {
	case R_RECORDS:
		return "GET, POST";
	case R_RECORD:
		return "GET, PATCH, DELETE";
	case R_DNC:
	case R_GROUP_ACTION:
		return "POST";
	case R_DNC_ONE:
		return "GET, DELETE";
	default:
		return "GET";
	}
}

/* method_ok - the method is one of the route's */
static int
method_ok(const struct http_request *r, enum route route)
{
	const char	*a = allowed(route), *m;
	char		 name[16];

	if (r->method_len >= sizeof(name))
		return 0;
	memcpy(name, r->method, r->method_len);
	name[r->method_len] = '\0';
	for (m = strstr(a, name); m != NULL; m = strstr(m + 1, name))
		if ((m == a || m[-1] == ' ') && (m[r->method_len] == ',' ||
		    m[r->method_len] == '\0'))
			return 1;
	return 0;
}

static enum body_kind
body_kind(const struct http_request *r)
{
	const char	*v;
	size_t		 n;

	if ((v = http_header(r, "Content-Type", &n)) == NULL)
		return B_NONE;
	if (n >= 8 && strncasecmp(v, "text/csv", 8) == 0)
		return B_CSV;
	if ((n >= 20 && strncasecmp(v, "application/x-ndjson", 20) == 0) ||
	    (n >= 20 && strncasecmp(v, "application/ndjson", 18) == 0))
		return B_NDJSON;
	if (n >= 16 && strncasecmp(v, "application/json", 16) == 0)
		return B_JSON;
	return B_OTHER;
}

/* tenant - the Tenant object's dbid (the DNC list's rights), or 0 */
static json_int_t
tenant(void)
{
	const struct cobj *const	*v;
	size_t				 n;

	v = cache_list(CFG_TENANT, &n);
	return n > 0 ? v[0]->dbid : 0;
}

/*
 * check - the route, method, rights, list and body type of a request:
 * 0 to go on, -1 after answering it
 */
static int
check(struct http_conn *c, const struct http_request *r,
    const struct principal *who, struct req *q)
{
	int	read = http_method_is(r, "GET"), right;

	parse(r, q);
	if (q->route == R_NONE) {
		svc_http_error(c, 404, "NotFound", "no such route");
		return -1;
	}
	if (!method_ok(r, q->route)) {
		char *extra = xasprintf("Allow: %s\r\n", allowed(q->route));
		char *body = xasprintf("{\"error\":\"MethodNotAllowed\","
		    "\"message\":\"allowed here: %s\"}", allowed(q->route));

		http_respond(c, 405, "application/json", extra, body,
		    strlen(body));
		free(extra);
		free(body);
		return -1;
	}
	if (q->route == R_GROUP || q->route == R_GROUP_ACTION)
		return 0;		/* control.c checks its own */
	right = read ? RIGHT_READ : RIGHT_UPDATE;
	if (q->route == R_DNC || q->route == R_DNC_ONE) {
		if (!svc_principal_can(who, CFG_TENANT, tenant(), right)) {
			svc_http_error(c, 403, "Forbidden", "no %s right on the "
			    "tenant (the do-not-call list)",
			    access_right_name(right));
			return -1;
		}
		return 0;
	}
	if ((q->list = lists_get(q->dbid)) == NULL) {
		svc_http_error(c, 404, "NotFound", "no CallingList with dbid "
		    "%lld", (long long)q->dbid);
		return -1;
	}
	if (!svc_principal_can(who, CFG_CALLING_LIST, q->dbid, right)) {
		svc_http_error(c, 403, "Forbidden", "no %s right on "
		    "calling-lists", access_right_name(right));
		return -1;
	}
	if (!lists_ready(q->list)) {
		svc_http_error(c, 503, "NotReady", "the calling list's table "
		    "is %s", q->list->bad != NULL ? "unusable: its format is "
		    "refused" : "being made; retry");
		return -1;
	}
	return 0;
}

/* streamed - an import or a bulk DNC body, taken as it arrives */
static int
streamed(const struct http_request *r, const struct req *q)
{
	enum body_kind	b = body_kind(r);

	return http_method_is(r, "POST") && (b == B_CSV || b == B_NDJSON) &&
	    (q->route == R_RECORDS || q->route == R_DNC);
}

/* obhttp_head - see outbound_int.h */
int
obhttp_head(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct req	q;

	if (check(c, r, who, &q) == -1)
		return SVC_HTTP_ANSWERED;
	if (q.route == R_RECORDS && http_method_is(r, "POST")) {
		if (!streamed(r, &q)) {
			svc_http_error(c, 415, "UnsupportedMediaType",
			    "records are imported as text/csv or "
			    "application/x-ndjson");
			return SVC_HTTP_ANSWERED;
		}
		if (q.list->importing) {
			svc_http_error(c, 409, "ImportRunning", "another import "
			    "into this calling list is running");
			return SVC_HTTP_ANSWERED;
		}
	}
	return streamed(r, &q) ? SVC_HTTP_STREAM : SVC_HTTP_WHOLE;
}

/* group_action - POST /v1/campaign-groups/{dbid}/{action} */
static void
group_action(struct http_conn *c, const struct http_request *r,
    const struct principal *who, const struct req *q)
{
	char	 a[24];
	json_t	*body;
	size_t	 i;

	for (i = 0; actions[i] != NULL; i++)
		if (q->seglen == strlen(actions[i]) && memcmp(q->seg,
		    actions[i], q->seglen) == 0)
			break;
	if (actions[i] == NULL) {
		svc_http_error(c, 404, "NotFound", "no such action (load, "
		    "start, stop, unload, force-unload, set-dialing-mode)");
		return;
	}
	if ((body = svc_json_body(c, r, 1)) == NULL)
		return;
	snprintf(a, sizeof(a), "%s", actions[i]);
	control_http(c, who, q->dbid, a, body);
	json_decref(body);
}

/* dnc_path - the path's value, percent-decoded, into buf */
static int
dnc_path(const struct req *q, char *buf, size_t len, size_t *n)
{
	size_t	i, k = 0;
	char	h[3] = { 0 };

	for (i = 0; i < q->seglen && k + 1 < len; i++) {
		if (q->seg[i] != '%') {
			buf[k++] = q->seg[i];
			continue;
		}
		if (i + 2 >= q->seglen)
			return -1;
		h[0] = q->seg[i + 1];
		h[1] = q->seg[i + 2];
		if (strspn(h, "0123456789abcdefABCDEF") != 2)
			return -1;
		buf[k++] = (char)strtol(h, NULL, 16);
		i += 2;
	}
	*n = k;
	return i == q->seglen ? 0 : -1;
}

static void
dnc_route(struct http_conn *c, const struct http_request *r,
    const struct req *q)
{
	char	 v[1024], kind[16];
	size_t	 n;
	int	 k;
	json_t	*body;

	if (q->route == R_DNC) {
		if (streamed(r, q)) {
			import_dnc(c, body_kind(r) == B_NDJSON);
			return;
		}
		if ((body = svc_json_body(c, r, 0)) == NULL)
			return;
		dnc_add(c, body);
		json_decref(body);
		return;
	}
	k = http_query(r, "kind", kind, sizeof(kind));
	if (k == -1 || (k == 1 && strcmp(kind, "customer") != 0 &&
	    strcmp(kind, "phone") != 0) || dnc_path(q, v, sizeof(v), &n)) {
		svc_http_error(c, 400, "BadParameter", "kind is phone or "
		    "customer; the value is percent-encoded");
		return;
	}
	dnc_one(c, http_method_is(r, "DELETE"), v, n, k == 1 &&
	    strcmp(kind, "customer") == 0);
}

/* wants_ndjson - ?format=ndjson, or Accept: application/x-ndjson */
static int
wants_ndjson(const struct http_request *r)
{
	char		 f[16];
	const char	*a;
	size_t		 n;

	if (http_query(r, "format", f, sizeof(f)) == 1)
		return strcmp(f, "ndjson") == 0;
	a = http_header(r, "Accept", &n);
	return a != NULL && memmem(a, n, "ndjson", 6) != NULL;
}

/* obhttp_request - see outbound_int.h */
void
obhttp_request(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct req	 q;
	json_t		*body;

	if (check(c, r, who, &q) == -1)
		return;
	switch (q.route) {
	case R_RECORDS:
		if (http_method_is(r, "POST"))
			import_records(c, q.list, body_kind(r) == B_NDJSON);
		else
			records_query(c, r, q.list);
		break;
	case R_RECORD:
		if (http_method_is(r, "GET"))
			records_get(c, q.list, q.id);
		else if (http_method_is(r, "DELETE"))
			records_delete(c, q.list, q.id);
		else if ((body = svc_json_body(c, r, 0)) != NULL) {
			records_patch(c, q.list, q.id, body);
			json_decref(body);
		}
		break;
	case R_EXPORT:
		export_list(c, q.list, wants_ndjson(r));
		break;
	case R_DNC:
	case R_DNC_ONE:
		dnc_route(c, r, &q);
		break;
	case R_GROUP:
		control_http(c, who, q.dbid, NULL, NULL);
		break;
	case R_GROUP_ACTION:
		group_action(c, r, who, &q);
		break;
	case R_NONE:
		break;
	}
}
