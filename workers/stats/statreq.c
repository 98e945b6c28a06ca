/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statreq - RequestOpenStatistic checked: the object, the statistic, the
 * profile and the notification mode, in the order the client's errors
 * come in (docs/stats.md "Requests").  Pure: it reads only the request,
 * the options passed in and what find answers; it opens nothing and
 * touches neither the model nor the rights (session.c does).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sess.h"
#include "statreq.h"

static int	find_type(const json_t *, const json_t *, struct stype *,
		    char *, size_t);
static int	parse_notify(const json_t *, struct statreq_notify *);
static int	fail(struct statreq_err *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* statreq_check - the whole request, as the worker checks it */
int
statreq_check(const json_t *req, const json_t *options,
    statreq_find_fn *find, void *arg, struct statreq *r,
    struct statreq_err *err)
{
	if (statreq_object(req, find, arg, r, err) == -1)
		return -1;
	return statreq_statistic(req, options, r, err);
}

/* statreq_object - which object, and does the configuration have it */
int
statreq_object(const json_t *req, statreq_find_fn *find, void *arg,
    struct statreq *r, struct statreq_err *err)
{
	const json_t	*obj = json_object_get(req, "object");
	int		 k;

	memset(r, 0, sizeof(*r));
	r->otype = json_string_value(json_object_get(obj, "type"));
	r->oid = json_string_value(json_object_get(obj, "id"));
	if (r->otype == NULL || (k = object_kind_by_name(r->otype)) == -1)
		return fail(err, "UnknownObject", "object: {\"type\": "
		    "\"Agent\" | \"Place\" | \"GroupAgents\" | "
		    "\"GroupPlaces\" | \"Queue\" | \"RoutingPoint\" | "
		    "\"GroupQueues\" | \"Tenant\", \"id\": \"...\"}");
	r->kind = (enum object_kind)k;
	if (r->kind == OBJ_TENANT)
		return 0;
	if (r->oid == NULL)
		return fail(err, "UnknownObject", "object.id: required for %s",
		    r->otype);
	if (find(r->kind, r->oid, &r->dbid, arg) == -1 || r->dbid <= 0)
		return fail(err, "UnknownObject", "no %s %s in the tenant's "
		    "configuration", r->otype, r->oid);
	return 0;
}

/* statreq_statistic - the type, whether it fits the object, the profile,
 * the notification mode */
int
statreq_statistic(const json_t *req, const json_t *options,
    struct statreq *r, struct statreq_err *err)
{
	char	why[256];
	int	rc;

	if ((rc = find_type(json_object_get(req, "statistic"), options, &r->t,
	    why, sizeof(why))) != 0)
		return fail(err, rc == 1 ? "UnknownStatistic" :
		    SESS_ERR_BAD_ARGUMENT, "%s", why);
	if (!(r->t.objects & OB(r->kind)))
		return fail(err, "NotApplicable", "%s is not a statistic of a "
		    "%s", r->t.name, r->otype);
	if (profile_parse(json_object_get(req, "profile"), &r->p, why,
	    sizeof(why)) == -1)
		return fail(err, "BadProfile", "%s", why);
	if (r->p.kind == PROF_SINCE_LOGIN && r->kind != OBJ_AGENT)
		return fail(err, "BadProfile", "profile: SinceLogin is for an "
		    "Agent");
	if (parse_notify(json_object_get(req, "notify"), &r->n) == -1)
		return fail(err, "BadNotify", "notify: {\"mode\": \"changes\", "
		    "\"insensitivity\": P} | {\"mode\": \"periodic\", "
		    "\"interval\": S (0.1 to 86400)} | {\"mode\": \"reset\"} "
		    "| {\"mode\": \"none\"}");
	return 0;
}

/*
 * find_type - an inline definition, a section "stat:<name>" of the
 * options (which replaces a shipped type of that name), or a shipped
 * type.  1: no such type; -1: not a type.
 */
static int
find_type(const json_t *st, const json_t *options, struct stype *t,
    char *why, size_t len)
{
	const struct stype	*b;
	const json_t		*sec;
	char			 name[96];

	if (json_is_object(st))
		return stype_parse(st, "inline", t, why, len);
	if (!json_is_string(st)) {
		snprintf(why, len, "statistic: a type's name or a definition");
		return -1;
	}
	snprintf(name, sizeof(name), "stat:%s", json_string_value(st));
	if ((sec = json_object_get(options, name)) != NULL)
		return stype_parse(sec, json_string_value(st), t, why, len);
	if ((b = stype_builtin(json_string_value(st))) == NULL) {
		snprintf(why, len, "statistic: no type %s",
		    json_string_value(st));
		return 1;
	}
	*t = *b;
	return 0;
}

/* parse_notify - the notification mode; changes when there is none */
static int
parse_notify(const json_t *v, struct statreq_notify *n)
{
	const char	*mode;

	memset(n, 0, sizeof(*n));
	n->mode = NM_CHANGES;
	if (v == NULL)
		return 0;
	if (!json_is_object(v) || (mode = json_string_value(json_object_get(v,
	    "mode"))) == NULL)
		return -1;
	if (strcmp(mode, "changes") == 0) {
		n->insensitivity = json_number_value(json_object_get(v,
		    "insensitivity"));
		return n->insensitivity < 0 || n->insensitivity > 100 ? -1 : 0;
	}
	if (strcmp(mode, "periodic") == 0) {
		n->mode = NM_PERIODIC;
		n->interval = json_number_value(json_object_get(v,
		    "interval"));
		return n->interval >= 0.1 && n->interval <= 86400 ? 0 : -1;
	}
	if (strcmp(mode, "reset") == 0)
		n->mode = NM_RESET;
	else if (strcmp(mode, "none") == 0)
		n->mode = NM_NONE;
	else
		return -1;
	return 0;
}

/* fail - the error's code and message; -1 */
static int
fail(struct statreq_err *err, const char *code, const char *fmt, ...)
{
	va_list	ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}
