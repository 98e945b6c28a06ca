/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate - the config worker's rules for a client's object, over the
 * tables of common/schema.c: the shapes of strings, the checks of every
 * field and of the rules that span fields, the normalization (defaults,
 * nulls, the default name), RFC 7396 merge patches, cutting references to
 * an object being deleted, and the list filters of GET.
 *
 * Validation is two passes over a client's object: check everything
 * without touching it (first error wins, in table order, unknown keys
 * first), then fill defaults.  The type's rule (type_checks) runs last, on
 * the normalized object, since its rules need the defaults.  Everything
 * here is pure: no I/O and no state, so the unit tests and the fuzz
 * target call it directly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "expr.h"
#include "schema.h"
#include "util.h"
#include "validate.h"

struct shape {
	int		(*ok)(const char *, size_t);
	const char	*what;
};

struct filter {
	const char	*key;
	const char	*field;
	const char	*sub;		/* compared in the entries of a list */
};

struct entry {
	json_int_t	key;
	size_t		idx;
};

static int	check_object(const struct cfg_field *, const json_t *,
		    const char *, const char *, struct cfg_error *);
static json_int_t permission_key(const struct cfg_field *, const json_t *);
static int	permission_check(const json_t *, const char *,
		    struct cfg_error *);
static int	check_ids(const json_t *, int, json_int_t, json_int_t,
		    struct cfg_error *);
static void	fill(const struct cfg_field *, json_t *);
static void	fill_name(const struct cfg_type *, json_t *);
static void	merge(json_t *, const json_t *);
static int	ref_is(const struct cfg_field *, const json_t *,
		    const json_t *, enum cfg_kind, json_int_t);
static int	unref_array(const struct cfg_field *, json_t *, enum cfg_kind,
		    json_int_t);
static const struct filter *filter_find(const struct cfg_type *,
		    const char *);
static const struct cfg_field *filter_field(const struct cfg_type *,
		    const struct filter *, const struct cfg_field **);
static int	filter_value(const struct cfg_field *, const char *,
		    json_int_t *);
static const char *filter_what(const struct cfg_field *, char *, size_t);
static int	filter_eq(const struct cfg_field *, const json_t *,
		    const char *, json_int_t);

/*
 * String shapes.
 */

/* ctl - a C0 control character or DEL */
static int
ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* shape_line - no control characters */
static int
shape_line(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (ctl(s[i]))
			return 0;
	return 1;
}

/* shape_name - one line, not starting or ending with a space */
static int
shape_name(const char *s, size_t n)
{
	return shape_line(s, n) && (n == 0 || (s[0] != ' ' && s[n - 1] != ' '));
}

/* shape_text - several lines: tab, CR and LF allowed */
static int
shape_text(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (ctl(s[i]) && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

/* shape_any - secrets: anything but NUL, checked by the caller */
static int
shape_any(const char *s, size_t n)
{
	return 1;
}

/* shape_dial - what a phone or DN number holds */
static int
shape_dial(const char *s, size_t n)
{
	return strspn(s, "0123456789+*#") == n;
}

/* shape_ident - a lowercase SQL identifier outside pg_ */
static int
shape_ident(const char *s, size_t n)
{
	if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return 0;
	return strncmp(s, "pg_", 3) != 0;
}

/* shape_tz - an IANA zone name; never a path that leaves the zone tree */
static int
shape_tz(const char *s, size_t n)
{
	static const char	 ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_+-/";

	if (n == 0 || strspn(s, ok) != n)
		return 0;
	return s[0] != '/' && s[0] != '-' && s[n - 1] != '/' &&
	    strstr(s, "//") == NULL;
}

/* shape_email - local@domain, one line, no spaces */
static int
shape_email(const char *s, size_t n)
{
	const char	*at = memchr(s, '@', n);

	if (!shape_line(s, n) || memchr(s, ' ', n) != NULL || at == NULL)
		return 0;
	return at != s && at != s + n - 1 &&
	    memchr(at + 1, '@', n - (at + 1 - s)) == NULL;
}

/* any_skill - at write time every name may be a skill (one created in the
 * same import, say): the routing worker names the unknown ones */
static int
any_skill(const char *name, size_t len, void *arg)
{
	return 0;
}

/* skills_error - why s is not a skill expression, or NULL */
static const char *
skills_error(const char *s, char *buf, size_t len)
{
	struct rexpr	*e;
	size_t		 pos;

	if ((e = rexpr_compile(s, any_skill, NULL, buf, len, &pos)) == NULL)
		return buf;
	rexpr_free(e);
	return NULL;
}

/* shape_skills - a skill expression (checked whole by skills_error) */
static int
shape_skills(const char *s, size_t n)
{
	return shape_line(s, n);
}

/* shape_collection - one of the REST collection names */
static int
shape_collection(const char *s, size_t n)
{
	return cfg_type_by_collection(s, n) != NULL;
}

static const struct shape shapes[] = {
	[CFG_SH_LINE] = { shape_line,
	    "must not hold control characters" },
	[CFG_SH_NAME] = { shape_name,
	    "must not hold control characters nor start or end with a space" },
	[CFG_SH_TEXT] = { shape_text,
	    "must not hold control characters other than tab and newline" },
	[CFG_SH_ANY] = { shape_any, "" },
	[CFG_SH_DIAL] = { shape_dial,
	    "must hold only digits, +, * and #" },
	[CFG_SH_IDENT] = { shape_ident,
	    "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*) "
	    "not starting with pg_" },
	[CFG_SH_TZ] = { shape_tz,
	    "must be an IANA time zone name such as Europe/Paris" },
	[CFG_SH_EMAIL] = { shape_email,
	    "must be an email address such as jdoe@example.com" },
	[CFG_SH_COLLECTION] = { shape_collection,
	    "must be a collection name such as persons or dns" },
	[CFG_SH_SKILLS] = { shape_skills,
	    "must be a skill expression such as Sales>=5 & English" },
};

/*
 * List filters: every type has name, state and folder, then these.
 */

static const struct filter common_filters[] = {
	{ "name", "name", NULL }, { "state", "state", NULL },
	{ "folder", "folder", NULL }, { NULL, NULL, NULL }
};
static const struct filter no_filters[] = { { NULL, NULL, NULL } };
static const struct filter tenant_filters[] = {
	{ "timeZone", "timeZone", NULL }, { NULL, NULL, NULL }
};
static const struct filter person_filters[] = {
	{ "userName", "userName", NULL }, { "firstName", "firstName", NULL },
	{ "lastName", "lastName", NULL }, { "employeeId", "employeeId", NULL },
	{ "externalId", "externalId", NULL },
	{ "emailAddress", "emailAddress", NULL },
	{ "isAgent", "isAgent", NULL }, { "skill", "skills", "skill" },
	{ "agentLogin", "agentLogins", "agentLogin" },
	{ "place", "place", NULL }, { NULL, NULL, NULL }
};
static const struct filter agent_login_filters[] = {
	{ "switch", "switch", NULL }, { "loginCode", "loginCode", NULL },
	{ NULL, NULL, NULL }
};
static const struct filter switch_filters[] = {
	{ "type", "type", NULL }, { NULL, NULL, NULL }
};
static const struct filter dn_filters[] = {
	{ "switch", "switch", NULL }, { "number", "number", NULL },
	{ "type", "type", NULL }, { "association", "association", NULL },
	{ NULL, NULL, NULL }
};
static const struct filter place_filters[] = {
	{ "dn", "dns", NULL }, { NULL, NULL, NULL }
};
static const struct filter agent_group_filters[] = {
	{ "member", "members", NULL }, { "supervisor", "supervisors", NULL },
	{ NULL, NULL, NULL }
};
static const struct filter member_filters[] = {
	{ "member", "members", NULL }, { NULL, NULL, NULL }
};
static const struct filter typed_filters[] = {
	{ "type", "type", NULL }, { NULL, NULL, NULL }
};
static const struct filter access_group_filters[] = {
	{ "member", "members", NULL },
	{ "application", "applications", NULL }, { NULL, NULL, NULL }
};
static const struct filter folder_filters[] = {
	{ "parent", "parent", NULL }, { NULL, NULL, NULL }
};
static const struct filter time_zone_filters[] = {
	{ "tzName", "tzName", NULL }, { NULL, NULL, NULL }
};
static const struct filter campaign_filters[] = {
	{ "callingList", "callingLists", "callingList" }, { NULL, NULL, NULL }
};
static const struct filter campaign_group_filters[] = {
	{ "campaign", "campaign", NULL }, { "group", "group", NULL },
	{ "dialMode", "dialMode", NULL }, { "origDN", "origDN", NULL },
	{ NULL, NULL, NULL }
};
static const struct filter calling_list_filters[] = {
	{ "format", "format", NULL }, { "treatment", "treatments", NULL },
	{ "timeZone", "timeZone", NULL }, { "tableName", "tableName", NULL },
	{ NULL, NULL, NULL }
};
static const struct filter treatment_filters[] = {
	{ "callResult", "callResult", NULL }, { "action", "action", NULL },
	{ NULL, NULL, NULL }
};
static const struct filter format_filters[] = {
	{ "field", "fields", NULL }, { NULL, NULL, NULL }
};
static const struct filter field_filters[] = {
	{ "dataType", "dataType", NULL }, { "fieldType", "fieldType", NULL },
	{ NULL, NULL, NULL }
};


/* jok - jansson allocation that never fails quietly */
static json_t *
jok(json_t *v)
{
	if (v == NULL)
		fatalx("jansson: out of memory");
	return v;
}


/* fail - fill err (when given) and return -1 */
static int __attribute__((format(printf, 5, 6)))
fail(struct cfg_error *err, int status, const char *code, const char *field,
    const char *fmt, ...)
{
	va_list	 ap;
	char	 what[sizeof(err->message)];

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	err->status = status;
	snprintf(err->code, sizeof(err->code), "%s", code);
	snprintf(err->field, sizeof(err->field), "%s", field);
	if (snprintf(err->message, sizeof(err->message), "%s: %s",
	    field[0] != '\0' ? field : "body", what) >=
	    (int)sizeof(err->message))
		memcpy(err->message + sizeof(err->message) - 4, "...", 4);
	return -1;
}


/* absent - a key that is missing or null */
static int
absent(const json_t *v)
{
	return v == NULL || json_is_null(v);
}


/* ref_what - how a reference is described in errors */
static const char *
ref_what(const struct cfg_field *f, char *buf, size_t size)
{
	const char	*tn = cfg_type_name(cfg_type_at(f->target));

	if (f->flags & CFG_F_DYN)
		snprintf(buf, size, "a dbid (an integer from 1 to 2^53-1)");
	else
		snprintf(buf, size, "%s %s dbid (an integer from 1 to 2^53-1)",
		    strchr("AEIOU", tn[0]) != NULL ? "an" : "a", tn);
	return buf;
}

/* enum_what - "one of a, b, c" as far as it fits */
static const char *
enum_what(const char *const *values, char *buf, size_t size)
{
	size_t	i, n;

	/* The length is measured, not taken from snprintf: a cut text's
	 * return would run past the buffer. */
	snprintf(buf, size, "one of");
	for (i = 0; values[i] != NULL; i++) {
		n = strlen(buf);
		if (n + strlen(values[i]) + 8 > size) {
			snprintf(buf + n, size - n, " ...");
			break;
		}
		snprintf(buf + n, size - n, "%s %s", i ? "," : "", values[i]);
	}
	return buf;
}

/* enum_index - position of s (len bytes) in values, or -1 */
static int
enum_index(const char *const *values, const char *s, size_t len)
{
	int	i;

	for (i = 0; values[i] != NULL; i++)
		if (strlen(values[i]) == len && memcmp(values[i], s, len) == 0)
			return i;
	return -1;
}

/* enum_of - position of a JSON string in values, or -1 */
static int
enum_of(const char *const *values, const json_t *v)
{
	return enum_index(values, json_string_value(v), json_string_length(v));
}


/*
 * Rules that span fields, run on the normalized object.
 */

/* folder_check - folders nest by parent, never in themselves */
static int
folder_check(json_t *obj, int creating, json_int_t dbid,
    struct cfg_error *err)
{
	const json_t	*parent = json_object_get(obj, "parent");
	const json_t	*folder = json_object_get(obj, "folder");

	if (folder != NULL && !json_is_null(folder))
		return fail(err, 422, "BadValue", "folder",
		    "must be null: a Folder is placed by its parent");
	if (!creating && json_is_integer(parent) &&
	    json_integer_value(parent) == dbid)
		return fail(err, 422, "BadValue", "parent",
		    "must not be the folder itself");
	return 0;
}

/* field_check - varchar and char need a length, other types have none */
static int
field_check(json_t *obj, int creating, json_int_t dbid, struct cfg_error *err)
{
	const char	*dt = json_string_value(json_object_get(obj, "dataType"));
	int		 sized, has;

	sized = strcmp(dt, "varchar") == 0 || strcmp(dt, "char") == 0;
	has = json_object_get(obj, "length") != NULL;
	if (sized && !has)
		return fail(err, 422, "Missing", "length",
		    "is required for %s: an integer from 1 to 4000", dt);
	if (!sized && has)
		return fail(err, 422, "BadValue", "length",
		    "must be absent: only varchar and char have a length");
	return 0;
}

/* calling_list_check - the dialing window does not cross midnight */
static int
calling_list_check(json_t *obj, int creating, json_int_t dbid,
    struct cfg_error *err)
{
	json_int_t	from, until;

	from = json_integer_value(json_object_get(obj, "timeFrom"));
	until = json_integer_value(json_object_get(obj, "timeUntil"));
	if (from >= until)
		return fail(err, 422, "BadValue", "timeUntil",
		    "must be after timeFrom (%lld): a window cannot cross "
		    "midnight", (long long)from);
	return 0;
}

/* treatment_check - RetryAt takes a time of day ("time", or "interval"
 * for objects made before "time" was) */
static int
treatment_check(json_t *obj, int creating, json_int_t dbid,
    struct cfg_error *err)
{
	const char	*action;

	action = json_string_value(json_object_get(obj, "action"));
	/* Its time is "time" (bounded by the schema), else "interval". */
	if (strcmp(action, "RetryAt") == 0 &&
	    !json_is_integer(json_object_get(obj, "time")) &&
	    json_integer_value(json_object_get(obj, "interval")) > CFG_DAY_LAST)
		return fail(err, 422, "OutOfRange", "interval",
		    "with RetryAt, must be a time of day in seconds from 0 "
		    "to %d", CFG_DAY_LAST);
	return 0;
}

/* The dialer's goal per optimization method: its default and bound. */
static const struct optimize {
	const char	*method;
	json_int_t	 def, max;
	const char	*unit;
} optimizations[] = {
	{ "BusyFactor", 80, 100, "a percentage" },
	{ "OverdialRate", 3, 100, "a percentage" },
	{ "AverageWaitTime", 10, 3600, "seconds" },
};

/* campaign_group_check - optimizeGoal defaults and bounds per method */
static int
campaign_group_check(json_t *obj, int creating, json_int_t dbid,
    struct cfg_error *err)
{
	const char	*by;
	const json_t	*goal;
	size_t		 i;

	by = json_string_value(json_object_get(obj, "optimizeBy"));
	goal = json_object_get(obj, "optimizeGoal");
	for (i = 0; i < NELEM(optimizations); i++) {
		if (strcmp(by, optimizations[i].method) != 0)
			continue;
		if (goal == NULL)
			json_object_set_new(obj, "optimizeGoal",
			    json_integer(optimizations[i].def));
		else if (json_integer_value(goal) > optimizations[i].max)
			return fail(err, 422, "OutOfRange", "optimizeGoal",
			    "with %s, must be %s from 1 to %lld", by,
			    optimizations[i].unit,
			    (long long)optimizations[i].max);
	}
	return 0;
}

/* permission_key - one permission per collection and object */
static json_int_t
permission_key(const struct cfg_field *f, const json_t *entry)
{
	enum cfg_kind	kind;
	json_int_t	id = 0;

	if (cfg_ref_target(cfg_field_find(f->sub, "dbid", 4), entry,
	    &kind) == -1)
		return -1;
	if (cfg_ref_id(json_object_get(entry, "dbid"), &id) == -1)
		id = 0;
	return (json_int_t)kind * (CFG_DBID_MAX + 1) + id;
}

/* permission_check - creating cannot be granted on one existing object */
static int
permission_check(const json_t *entry, const char *path,
    struct cfg_error *err)
{
	const json_t	*id = json_object_get(entry, "dbid");
	const json_t	*r;
	char		 p[CFG_PATH_LEN];
	size_t		 i;

	if (id == NULL || json_is_null(id))
		return 0;
	json_array_foreach(json_object_get(entry, "rights"), i, r) {
		if (strcmp(json_string_value(r), "create") == 0) {
			cfg_path_key(p, path, "dbid", 4);
			return fail(err, 422, "BadValue", p, "must be absent "
			    "when rights hold create: there is no object yet");
		}
	}
	return 0;
}


/* The rules that span fields, by kind; run on the normalized object. */
static int (*const type_checks[CFG_NTYPES])(json_t *, int, json_int_t,
    struct cfg_error *) = {
	[CFG_FOLDER] = folder_check,
	[CFG_CAMPAIGN_GROUP] = campaign_group_check,
	[CFG_CALLING_LIST] = calling_list_check,
	[CFG_TREATMENT] = treatment_check,
	[CFG_FIELD] = field_check,
};

static const struct filter *const type_filters[CFG_NTYPES] = {
	[CFG_TENANT] = tenant_filters,
	[CFG_PERSON] = person_filters,
	[CFG_AGENT_LOGIN] = agent_login_filters,
	[CFG_SWITCH] = switch_filters,
	[CFG_DN] = dn_filters,
	[CFG_PLACE] = place_filters,
	[CFG_SKILL] = no_filters,
	[CFG_AGENT_GROUP] = agent_group_filters,
	[CFG_PLACE_GROUP] = member_filters,
	[CFG_DN_GROUP] = member_filters,
	[CFG_APPLICATION] = typed_filters,
	[CFG_TRANSACTION] = typed_filters,
	[CFG_ACCESS_GROUP] = access_group_filters,
	[CFG_FOLDER] = folder_filters,
	[CFG_TIME_ZONE] = time_zone_filters,
	[CFG_CAMPAIGN] = campaign_filters,
	[CFG_CAMPAIGN_GROUP] = campaign_group_filters,
	[CFG_CALLING_LIST] = calling_list_filters,
	[CFG_TREATMENT] = treatment_filters,
	[CFG_FORMAT] = format_filters,
	[CFG_FIELD] = field_filters,
};

/*
 * The API.
 */

/* cfg_validate - check a client's whole object, then normalize it */
int
cfg_validate(const struct cfg_type *t, json_t *obj, int creating,
    json_int_t dbid, json_int_t version, struct cfg_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (!json_is_object(obj))
		return fail(err, 400, "WrongType", "",
		    "must be a JSON object");
	if (check_object(t->fields, obj, "", t->name, err) == -1 ||
	    check_ids(obj, creating, dbid, version, err) == -1)
		return -1;
	fill(t->fields, obj);
	fill_name(t, obj);
	if (type_checks[t->kind] != NULL &&
	    type_checks[t->kind](obj, creating, dbid, err) == -1)
		return -1;
	return 0;
}


/* merge - RFC 7396 section 2, onto an object we own */
static void
merge(json_t *target, const json_t *patch)
{
	const char	*key;
	json_t		*v, *t;
	size_t		 len;

	json_object_keylen_foreach((json_t *)patch, key, len, v) {
		if (json_is_null(v)) {
			json_object_deln(target, key, len);
		} else if (json_is_object(v)) {
			t = json_object_getn(target, key, len);
			if (!json_is_object(t)) {
				t = jok(json_object());
				json_object_setn_new(target, key, len, t);
			}
			merge(t, v);
		} else {
			json_object_setn_new(target, key, len,
			    jok(json_deep_copy(v)));
		}
	}
}

/* cfg_merge_patch - a PATCH body applied to a copy of the object */
json_t *
cfg_merge_patch(const json_t *current, const json_t *patch,
    struct cfg_error *err)
{
	json_t	*target;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (!json_is_object(patch)) {
		fail(err, 400, "WrongType", "",
		    "a merge patch must be a JSON object");
		return NULL;
	}
	if (json_is_object(current))
		target = jok(json_deep_copy(current));
	else
		target = jok(json_object());
	merge(target, patch);
	return target;
}


/* cfg_unref - cut obj's references to an object being deleted */
int
cfg_unref(const struct cfg_type *t, json_t *obj, enum cfg_kind target,
    json_int_t dbid, struct cfg_error *err)
{
	const struct cfg_field	*f;
	json_t			*v;
	int			 n = 0;

	if (!json_is_object(obj))
		return 0;
	/* refuse before changing anything */
	for (f = t->fields; f->name != NULL; f++)
		if (f->type == CFG_FT_REF && (f->flags & CFG_F_REQ) &&
		    ref_is(f, obj, json_object_get(obj, f->name), target, dbid))
			return fail(err, 409, "RequiredRef", f->name,
			    "is required and refers to %s %lld: delete this "
			    "%s too, or keep it",
			    cfg_type_name(cfg_type_at(target)),
			    (long long)dbid, t->name);
	for (f = t->fields; f->name != NULL; f++) {
		v = json_object_get(obj, f->name);
		if (f->type == CFG_FT_REF && ref_is(f, obj, v, target, dbid)) {
			json_object_set_new(obj, f->name, jok(json_null()));
			n++;
		} else if (json_is_array(v) &&
		    (f->type == CFG_FT_REFS || f->type == CFG_FT_LIST))
			n += unref_array(f, v, target, dbid);
	}
	return n;
}


/* cfg_public - a copy of obj fit for output */
json_t *
cfg_public(const struct cfg_type *t, const json_t *obj)
{
	const struct cfg_field	*f;
	json_t			*copy;

	copy = jok(json_deep_copy(obj));
	if (!json_is_object(copy))
		return copy;
	for (f = t->fields; f->name != NULL; f++)
		if (f->flags & CFG_F_WO)
			json_object_del(copy, f->name);
	return copy;
}

/* cfg_filter_allowed - key is a list filter of the type */

int
cfg_filter_allowed(const struct cfg_type *t, const char *key)
{
	return filter_find(t, key) != NULL;
}

/* cfg_filter_check - a filter the type has, with a well-formed value */
int
cfg_filter_check(const struct cfg_type *t, const char *key,
    const char *value, struct cfg_error *err)
{
	const struct filter	*fl;
	const struct cfg_field	*f, *list;
	json_int_t		 n;
	char			 buf[200];

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if ((fl = filter_find(t, key)) == NULL)
		return fail(err, 400, "UnknownFilter", key ? key : "",
		    "is not a filter of %s", t->collection);
	f = filter_field(t, fl, &list);
	if (value == NULL || filter_value(f, value, &n) == -1)
		return fail(err, 400, "BadFilter", key, "must be %s",
		    filter_what(f, buf, sizeof(buf)));
	return 0;
}

/* cfg_filter_field - the top-level field a filter looks at */
const char *
cfg_filter_field(const struct cfg_type *t, const char *key)
{
	const struct filter	*fl = filter_find(t, key);

	return fl != NULL ? fl->field : NULL;
}

/* cfg_filter_match - obj passes the filter key=value */
int
cfg_filter_match(const struct cfg_type *t, const json_t *obj,
    const char *key, const char *value)
{
	const char	*field = cfg_filter_field(t, key);

	if (field == NULL || !json_is_object(obj))
		return 0;
	return cfg_filter_match_value(t, json_object_get(obj, field), key,
	    value);
}

/* cfg_filter_match_value - the field's value v passes key=value */
int
cfg_filter_match_value(const struct cfg_type *t, const json_t *v,
    const char *key, const char *value)
{
	const struct filter	*fl;
	const struct cfg_field	*f, *list;
	const json_t		*e;
	json_int_t		 n;
	size_t			 i;

	if ((fl = filter_find(t, key)) == NULL || value == NULL)
		return 0;
	f = filter_field(t, fl, &list);
	if (filter_value(f, value, &n) == -1)
		return 0;
	if (list == NULL && f->type != CFG_FT_REFS)
		return filter_eq(f, v, value, n);
	json_array_foreach(v, i, e) {
		if (list != NULL && filter_eq(f, json_object_get(e, f->name),
		    value, n))
			return 1;
		if (list == NULL && filter_eq(f, e, value, n))
			return 1;
	}
	return 0;
}


/*
 * Validation: checks of one value.
 */

/* check_int - an integer within the field's range */
static int
check_int(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	json_int_t	n;

	if (!json_is_integer(v))
		return fail(err, 422, "WrongType", path,
		    "must be an integer from %lld to %lld",
		    (long long)f->min, (long long)f->max);
	n = json_integer_value(v);
	if (n < f->min || n > f->max)
		return fail(err, 422, "OutOfRange", path,
		    "must be an integer from %lld to %lld",
		    (long long)f->min, (long long)f->max);
	return 0;
}

/* check_string - length in bytes, no NUL, then the field's shape */
static int
check_string(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	const char	*s;
	size_t		 n;
	char		 why[256];

	if (!json_is_string(v))
		return fail(err, 422, "WrongType", path, "must be a string");
	s = json_string_value(v);
	n = json_string_length(v);
	if (memchr(s, '\0', n) != NULL)
		return fail(err, 422, "BadValue", path,
		    "must not hold a NUL character");
	if ((json_int_t)n < f->min || (json_int_t)n > f->max) {
		if (f->min == 0)
			return fail(err, 422, "OutOfRange", path,
			    "must be at most %lld bytes long",
			    (long long)f->max);
		return fail(err, 422, "OutOfRange", path,
		    "must be %lld to %lld bytes long", (long long)f->min,
		    (long long)f->max);
	}
	if (!shapes[f->shape].ok(s, n))
		return fail(err, 422, "BadValue", path, "%s",
		    shapes[f->shape].what);
	if (f->shape == CFG_SH_SKILLS && skills_error(s, why, sizeof(why)))
		return fail(err, 422, "BadValue", path, "must be a skill "
		    "expression: %s", why);
	return 0;
}

/* check_enum - one of the field's values */
static int
check_enum(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	char	buf[200];

	if (!json_is_string(v))
		return fail(err, 422, "WrongType", path, "must be %s",
		    enum_what(f->values, buf, sizeof(buf)));
	if (enum_of(f->values, v) == -1)
		return fail(err, 422, "BadValue", path, "must be %s",
		    enum_what(f->values, buf, sizeof(buf)));
	return 0;
}

/* check_enums - an array of distinct values, at least min of them */
static int
check_enums(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	const json_t	*e;
	char		 p[CFG_PATH_LEN], buf[200];
	unsigned	 seen = 0;
	size_t		 i;
	int		 k;

	if (!json_is_array(v) || json_array_size(v) < (size_t)f->min)
		return fail(err, 422, json_is_array(v) ? "BadValue" :
		    "WrongType", path, "must be an array of at least %lld "
		    "distinct values, each %s", (long long)f->min,
		    enum_what(f->values, buf, sizeof(buf)));
	json_array_foreach(v, i, e) {
		cfg_path_idx(p, path, i);
		if (check_enum(f, e, p, err) == -1)
			return -1;
		k = enum_of(f->values, e);
		if (seen & (1u << k))
			return fail(err, 422, "Duplicate", p,
			    "%s is listed twice", json_string_value(e));
		seen |= 1u << k;
	}
	return 0;
}

/* check_ref - a dbid */
static int
check_ref(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	json_int_t	id;
	char		buf[96];

	if (!json_is_integer(v))
		return fail(err, 422, "WrongType", path, "must be %s",
		    ref_what(f, buf, sizeof(buf)));
	if (cfg_ref_id(v, &id) == -1)
		return fail(err, 422, "OutOfRange", path, "must be %s",
		    ref_what(f, buf, sizeof(buf)));
	return 0;
}

/* entry_cmp - order by key, then by position */
static int
entry_cmp(const void *a, const void *b)
{
	const struct entry	*x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * first_dup - the first entry (in array order) repeating an earlier one,
 * and that earlier one; sorting keeps a 100,000-member group O(n log n).
 */
static int
first_dup(struct entry *e, size_t n, size_t *dup, size_t *orig)
{
	size_t	i, start = 0;
	int	found = 0;

	qsort(e, n, sizeof(*e), entry_cmp);
	for (i = 1; i < n; i++) {
		if (e[i].key != e[i - 1].key) {
			start = i;
			continue;
		}
		if (i == start + 1 && (!found || e[i].idx < *dup)) {
			*dup = e[i].idx;
			*orig = e[start].idx;
			found = 1;
		}
	}
	return found;
}

/* entry_key - the key of a list entry or reference, or -1 */
static json_int_t
entry_key(const struct cfg_field *f, const json_t *e)
{
	json_int_t	id;

	if (f->type == CFG_FT_LIST && f->rule == CFG_RULE_PERMISSION)
		return permission_key(f, e);
	if (f->type == CFG_FT_LIST)
		e = json_object_get(e, f->uniq);
	return cfg_ref_id(e, &id) == 0 ? id : -1;
}

/* check_dups - no reference or list entry twice */
static int
check_dups(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	struct entry	*e;
	char		 p[CFG_PATH_LEN], q[CFG_PATH_LEN];
	size_t		 i, m = 0, dup = 0, orig = 0;
	json_int_t	 k;
	int		 found;

	if (f->type == CFG_FT_LIST && f->uniq == NULL &&
	    f->rule == CFG_RULE_NONE)
		return 0;
	e = xcalloc(json_array_size(v), sizeof(*e));
	for (i = 0; i < json_array_size(v); i++)
		if ((k = entry_key(f, json_array_get(v, i))) >= 0)
			e[m++] = (struct entry){ k, i };
	found = first_dup(e, m, &dup, &orig);
	free(e);
	if (!found)
		return 0;
	cfg_path_idx(p, path, dup);
	if (f->uniq != NULL)
		cfg_path_key(p, p, f->uniq, strlen(f->uniq));
	cfg_path_idx(q, path, orig);
	return fail(err, 422, "Duplicate", p, "duplicate of %s", q);
}

/* check_refs - an array of distinct dbids */
static int
check_refs(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	const json_t	*e;
	char		 p[CFG_PATH_LEN], buf[96];
	size_t		 i;

	if (!json_is_array(v))
		return fail(err, 422, "WrongType", path, "must be an array, "
		    "each %s", ref_what(f, buf, sizeof(buf)));
	json_array_foreach(v, i, e) {
		cfg_path_idx(p, path, i);
		if (check_ref(f, e, p, err) == -1)
			return -1;
	}
	return check_dups(f, v, path, err);
}

/* check_opt_name - a section or key name of an options object */
static int
check_opt_name(const char *key, size_t len, const char *path,
    struct cfg_error *err)
{
	if (len == 0 || len > CFG_LEN_NAME || memchr(key, '\0', len) != NULL ||
	    !shape_line(key, len))
		return fail(err, 422, "BadValue", path, "names must be 1 to %d "
		    "bytes long without control characters", CFG_LEN_NAME);
	return 0;
}

/* check_opt_value - a string or a number */
static int
check_opt_value(const json_t *v, const char *path, struct cfg_error *err)
{
	if (json_is_number(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, 422, "WrongType", path,
		    "must be a string or a number");
	if (json_string_length(v) > CFG_LEN_TEXT ||
	    memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
		return fail(err, 422, "OutOfRange", path, "must be at most %d "
		    "bytes long, without NUL", CFG_LEN_TEXT);
	return 0;
}

/* check_section - one section: key -> string | number */
static int
check_section(const json_t *sec, const char *path, struct cfg_error *err)
{
	const char	*key;
	json_t		*v;
	size_t		 len;
	char		 p[CFG_PATH_LEN];

	if (!json_is_object(sec))
		return fail(err, 422, "WrongType", path, "must be an object "
		    "of keys to strings or numbers");
	json_object_keylen_foreach((json_t *)sec, key, len, v) {
		cfg_path_key(p, path, key, len);
		if (check_opt_name(key, len, p, err) == -1 ||
		    check_opt_value(v, p, err) == -1)
			return -1;
	}
	return 0;
}

/* check_options - exactly two levels: section -> key -> value */
static int
check_options(const json_t *v, const char *path, struct cfg_error *err)
{
	const char	*key;
	json_t		*sec;
	size_t		 len;
	char		 p[CFG_PATH_LEN];

	if (!json_is_object(v))
		return fail(err, 422, "WrongType", path, "must be an object of "
		    "sections, each an object of keys to strings or numbers");
	json_object_keylen_foreach((json_t *)v, key, len, sec) {
		cfg_path_key(p, path, key, len);
		if (check_opt_name(key, len, p, err) == -1 ||
		    check_section(sec, p, err) == -1)
			return -1;
	}
	return 0;
}

/* check_list - an array of objects of the sub-fields */
static int
check_list(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	const json_t	*e;
	char		 p[CFG_PATH_LEN];
	size_t		 i;

	if (!json_is_array(v))
		return fail(err, 422, "WrongType", path,
		    "must be an array of objects");
	json_array_foreach(v, i, e) {
		cfg_path_idx(p, path, i);
		if (!json_is_object(e))
			return fail(err, 422, "WrongType", p,
			    "must be an object");
		if (check_object(f->sub, e, p, NULL, err) == -1)
			return -1;
		if (f->rule == CFG_RULE_PERMISSION &&
		    permission_check(e, p, err) == -1)
			return -1;
	}
	return check_dups(f, v, path, err);
}

/* check_value - one present, non-null value against its field */
static int
check_value(const struct cfg_field *f, const json_t *v, const char *path,
    struct cfg_error *err)
{
	switch (f->type) {
	case CFG_FT_ID:
	case CFG_FT_INT:
		return check_int(f, v, path, err);
	case CFG_FT_STRING:
		return check_string(f, v, path, err);
	case CFG_FT_BOOL:
		if (!json_is_boolean(v))
			return fail(err, 422, "WrongType", path,
			    "must be true or false");
		return 0;
	case CFG_FT_ENUM:
		return check_enum(f, v, path, err);
	case CFG_FT_ENUMS:
		return check_enums(f, v, path, err);
	case CFG_FT_REF:
		return check_ref(f, v, path, err);
	case CFG_FT_REFS:
		return check_refs(f, v, path, err);
	case CFG_FT_OPTIONS:
		return check_options(v, path, err);
	case CFG_FT_LIST:
		return check_list(f, v, path, err);
	}
	return 0;
}

/* check_object - unknown keys first, then every field in table order */
static int
check_object(const struct cfg_field *fs, const json_t *obj, const char *path,
    const char *tname, struct cfg_error *err)
{
	const struct cfg_field	*f;
	const char		*key;
	json_t			*v;
	size_t			 len;
	char			 p[CFG_PATH_LEN];

	json_object_keylen_foreach((json_t *)obj, key, len, v) {
		if (cfg_field_find(fs, key, len) != NULL)
			continue;
		cfg_path_key(p, path, key, len);
		if (tname != NULL)
			return fail(err, 422, "UnknownField", p,
			    "is not a field of %s", tname);
		return fail(err, 422, "UnknownField", p,
		    "is not a known field");
	}
	for (f = fs; f->name != NULL; f++) {
		v = json_object_get(obj, f->name);
		cfg_path_key(p, path, f->name, strlen(f->name));
		if (absent(v) && (f->flags & CFG_F_REQ))
			return fail(err, 422, "Missing", p, "is required");
		if (!absent(v) && check_value(f, v, p, err) == -1)
			return -1;
	}
	return 0;
}

/* check_ids - dbid and version belong to the server */
static int
check_ids(const json_t *obj, int creating, json_int_t dbid,
    json_int_t version, struct cfg_error *err)
{
	const json_t	*v;

	if (!absent(v = json_object_get(obj, "dbid"))) {
		if (creating)
			return fail(err, 422, "ReadOnly", "dbid",
			    "is assigned by the server: leave it out");
		if (json_integer_value(v) != dbid)
			return fail(err, 422, "ReadOnly", "dbid", "is read-only:"
			    " must be %lld or left out", (long long)dbid);
	}
	if (!absent(v = json_object_get(obj, "version"))) {
		if (creating)
			return fail(err, 422, "ReadOnly", "version",
			    "is managed by the server: leave it out");
		if (json_integer_value(v) != version)
			return fail(err, 409, "VersionMismatch", "version",
			    "is %lld now, not %lld: read the object again",
			    (long long)version,
			    (long long)json_integer_value(v));
	}
	return 0;
}


/*
 * Validation: normalization.
 */

/* fill_default - the value of a field the client left out, if any */
static void
fill_default(const struct cfg_field *f, json_t *obj)
{
	json_t	*d = NULL;

	switch (f->type) {
	case CFG_FT_INT:
		if (f->flags & CFG_F_DEF)
			d = json_integer(f->idef);
		break;
	case CFG_FT_BOOL:
		d = json_boolean(f->idef);
		break;
	case CFG_FT_STRING:
	case CFG_FT_ENUM:
		if (f->sdef != NULL)
			d = json_string(f->sdef);
		break;
	case CFG_FT_REF:
		d = json_null();
		break;
	case CFG_FT_ENUMS:
	case CFG_FT_REFS:
	case CFG_FT_LIST:
		d = json_array();
		break;
	case CFG_FT_OPTIONS:
		d = json_object();
		break;
	case CFG_FT_ID:
		break;
	}
	if (d != NULL)
		json_object_set_new(obj, f->name, jok(d));
}

/* fill - drop null optional values, add defaults, into list entries too */
static void
fill(const struct cfg_field *fs, json_t *obj)
{
	const struct cfg_field	*f;
	json_t			*v, *e;
	size_t			 i;

	for (f = fs; f->name != NULL; f++) {
		v = json_object_get(obj, f->name);
		if (json_is_null(v) && f->type != CFG_FT_REF &&
		    !(f->flags & CFG_F_WO)) {
			json_object_del(obj, f->name);
			v = NULL;
		}
		if (v == NULL)
			fill_default(f, obj);
		else if (f->type == CFG_FT_LIST)
			json_array_foreach(v, i, e)
				fill(f->sub, e);
	}
}

/* fill_name - the name defaults to the natural key */
static void
fill_name(const struct cfg_type *t, json_t *obj)
{
	const json_t	*k;

	if (json_object_get(obj, "name") != NULL ||
	    (k = json_object_get(obj, t->key)) == NULL)
		return;
	json_object_set_new(obj, "name", jok(json_copy((json_t *)k)));
}


/*
 * References.
 */

/* ref_is - v is a reference of field f in obj to (target, dbid) */
static int
ref_is(const struct cfg_field *f, const json_t *obj, const json_t *v,
    enum cfg_kind target, json_int_t dbid)
{
	enum cfg_kind	kind;
	json_int_t	id;

	return cfg_ref_id(v, &id) == 0 && id == dbid &&
	    cfg_ref_target(f, obj, &kind) == 0 && kind == target;
}


/* entry_refers - a list entry with a reference to (target, dbid) */
static int
entry_refers(const struct cfg_field *fs, const json_t *e, enum cfg_kind target,
    json_int_t dbid)
{
	for (; fs->name != NULL; fs++)
		if (fs->type == CFG_FT_REF &&
		    ref_is(fs, e, json_object_get(e, fs->name), target, dbid))
			return 1;
	return 0;
}

/* unref_array - drop the entries referring to (target, dbid) */
static int
unref_array(const struct cfg_field *f, json_t *v, enum cfg_kind target,
    json_int_t dbid)
{
	const json_t	*e;
	size_t		 i;
	int		 n = 0;

	if (f->type == CFG_FT_REFS && f->target != target)
		return 0;
	for (i = json_array_size(v); i-- > 0; ) {
		e = json_array_get(v, i);
		if ((f->type == CFG_FT_REFS && ref_is(f, NULL, e, target, dbid)) ||
		    (f->type == CFG_FT_LIST && json_is_object(e) &&
		    entry_refers(f->sub, e, target, dbid))) {
			json_array_remove(v, i);
			n++;
		}
	}
	return n;
}


/*
 * Filters.
 */

/* filter_find - a filter of the type, common ones first */
static const struct filter *
filter_find(const struct cfg_type *t, const char *key)
{
	const struct filter	*fl;

	if (key == NULL)
		return NULL;
	for (fl = common_filters; fl->key != NULL; fl++)
		if (strcmp(fl->key, key) == 0)
			return fl;
	for (fl = type_filters[t->kind]; fl->key != NULL; fl++)
		if (strcmp(fl->key, key) == 0)
			return fl;
	return NULL;
}

/* filter_field - the field a filter compares; *list the list holding it */
static const struct cfg_field *
filter_field(const struct cfg_type *t, const struct filter *fl,
    const struct cfg_field **list)
{
	const struct cfg_field	*f;

	f = cfg_field_find(t->fields, fl->field, strlen(fl->field));
	*list = NULL;
	if (fl->sub == NULL)
		return f;
	*list = f;
	return cfg_field_find(f->sub, fl->sub, strlen(fl->sub));
}

/* parse_int - a whole decimal integer within [min, max] */
static int
parse_int(const char *s, json_int_t min, json_int_t max, json_int_t *n)
{
	char		*end;
	long long	 v;

	if (*s != '-' && (*s < '0' || *s > '9'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*n = v;
	return 0;
}

/* filter_value - parse a query value for field f; null refs give 0 */
static int
filter_value(const struct cfg_field *f, const char *value, json_int_t *n)
{
	*n = 0;
	switch (f->type) {
	case CFG_FT_STRING:
		return 0;
	case CFG_FT_ENUM:
		return enum_index(f->values, value, strlen(value)) == -1 ? -1 : 0;
	case CFG_FT_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
			*n = value[0] == 't';
			return 0;
		}
		return -1;
	case CFG_FT_REF:
		if (strcmp(value, "null") == 0 && !(f->flags & CFG_F_REQ))
			return 0;
		/* FALLTHROUGH */
	case CFG_FT_REFS:
		return parse_int(value, 1, CFG_DBID_MAX, n);
	default:
		return parse_int(value, f->min, f->max, n);
	}
}

/* filter_what - what a filter's value must look like */
static const char *
filter_what(const struct cfg_field *f, char *buf, size_t size)
{
	char	ref[96];

	switch (f->type) {
	case CFG_FT_STRING:
		return "a string";
	case CFG_FT_BOOL:
		return "true or false";
	case CFG_FT_ENUM:
		return enum_what(f->values, buf, size);
	case CFG_FT_REF:
		if (!(f->flags & CFG_F_REQ)) {
			snprintf(buf, size, "null or %s",
			    ref_what(f, ref, sizeof(ref)));
			return buf;
		}
		/* FALLTHROUGH */
	case CFG_FT_REFS:
		return ref_what(f, buf, size);
	default:
		snprintf(buf, size, "an integer from %lld to %lld",
		    (long long)f->min, (long long)f->max);
		return buf;
	}
}

/* filter_eq - a value equals the parsed query value */
static int
filter_eq(const struct cfg_field *f, const json_t *v, const char *value,
    json_int_t n)
{
	switch (f->type) {
	case CFG_FT_STRING:
	case CFG_FT_ENUM:
		return json_is_string(v) &&
		    json_string_length(v) == strlen(value) &&
		    strcmp(json_string_value(v), value) == 0;
	case CFG_FT_BOOL:
		return json_is_boolean(v) && json_is_true(v) == (n == 1);
	case CFG_FT_REF:
		if (n == 0)
			return absent(v);
		/* FALLTHROUGH */
	default:
		return json_is_integer(v) && json_integer_value(v) == n;
	}
}

