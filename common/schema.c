/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema - the configuration object model (docs/config-api.md, "Object
 * types"), as every worker that caches configuration needs it: one table
 * of object types (name, REST collection, fields, natural key), the field
 * tables (JSON type, limits, default, flags, what a reference points to),
 * and the few functions every cache needs over them: a type by kind, name
 * or collection, an object's references, its natural key.
 *
 * The rules a client's object must follow (validation, merge patch, list
 * filters) are the config worker's: workers/config/validate.c reads the
 * same tables.  Adding a field is one line of a table here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "schema.h"
#include "util.h"

static void	path_put(char *, size_t *, const char *, size_t);
static void	walk_refs(const struct cfg_field *, const json_t *,
		    const char *, cfg_ref_cb *, void *);
static int	fields_refer(const struct cfg_field *, enum cfg_kind);

/*
 * Enumerations.
 */

static const char *const state_values[] = { "enabled", "disabled", NULL };
static const char *const dn_types[] = { "Extension", "ACDPosition",
    "RoutingPoint", "VirtualRoutingPoint", "ACDQueue", "VirtualQueue",
    "RoutingQueue", "Trunk", "TrunkGroup", "VoIPService", "ServiceNumber",
    "Chat", "Email", NULL };
static const char *const route_strategies[] = { "LongestIdle",
    "MostSkilled", "RoundRobin", "FewestCalls", NULL };
static const char *const transaction_types[] = { "List",
    "BusinessAttribute", "Script", "Filter", "Formula", "Grouping", "Macro",
    "Schedule", NULL };
static const char *const rights[] = { "read", "create", "update", "delete",
    NULL };
static const char *const dial_modes[] = { "Preview", "Progressive",
    "Predictive", "Power", "PushPreview", "ProgressiveGVP", "PredictiveGVP",
    "PowerGVP", NULL };
static const char *const optimize_methods[] = { "BusyFactor",
    "OverdialRate", "AverageWaitTime", NULL };
static const char *const call_results[] = { "Answer", "Busy", "NoAnswer",
    "AnsweringMachine", "Fax", "SitDetected", "SitInvalidNumber",
    "SitVacant", "SitIntercept", "SitNoCircuit", "SitReorder",
    "SitUnknown", "Dropped", "DroppedNoAnswer", "Abandoned", "WrongParty",
    "WrongNumber", "NoDialTone", "NoRingback", "NoEstablished",
    "PagerDetected", "SilenceDetected", "AllTrunksBusy", "Cancelled",
    "DoNotCall", "GeneralError", "SystemError", NULL };
static const char *const treatment_actions[] = { "RetryIn", "RetryAt",
    "NoTreatment", "Redial", "NextInChain", "MarkAsAgentError", NULL };
static const char *const data_types[] = { "varchar", "char", "int",
    "float", "datetime", NULL };
static const char *const field_types[] = { "Custom", "RecordId",
    "ContactInfo", "ContactInfoType", "RecordType", "RecordStatus",
    "CallResult", "Attempt", "DialSchedTime", "CallTime", "DailyFrom",
    "DailyTill", "TimeZone", "ChainId", "ChainN", "AgentId", NULL };

/*
 * Field tables.
 */

#define FEND		{ .name = NULL }
#define FSTR(n, fl, lo, hi, sh)						\
	{ .name = (n), .type = CFG_FT_STRING, .flags = (fl), .min = (lo),	\
	  .max = (hi), .shape = (sh) }
#define FINT(n, fl, lo, hi)						\
	{ .name = (n), .type = CFG_FT_INT, .flags = (fl), .min = (lo),	\
	  .max = (hi) }
#define FINTD(n, lo, hi, d)						\
	{ .name = (n), .type = CFG_FT_INT, .flags = CFG_F_DEF, .min = (lo),	\
	  .max = (hi), .idef = (d) }
#define FBOOL(n, d)							\
	{ .name = (n), .type = CFG_FT_BOOL, .flags = CFG_F_DEF, .idef = (d) }
#define FENUM(n, fl, v)							\
	{ .name = (n), .type = CFG_FT_ENUM, .flags = (fl), .values = (v) }
#define FENUMD(n, v, d)							\
	{ .name = (n), .type = CFG_FT_ENUM, .flags = CFG_F_DEF, .values = (v),	\
	  .sdef = (d) }
#define FREF(n, fl, k)							\
	{ .name = (n), .type = CFG_FT_REF, .flags = (fl), .target = (k) }
#define FREFS(n, k)							\
	{ .name = (n), .type = CFG_FT_REFS, .target = (k) }
#define FOPTS(n)							\
	{ .name = (n), .type = CFG_FT_OPTIONS }
#define FLIST(n, s, u)							\
	{ .name = (n), .type = CFG_FT_LIST, .sub = (s), .uniq = (u) }
#define FNAME(fl)	FSTR("name", (fl), 1, CFG_LEN_NAME, CFG_SH_NAME)

/* Every type starts with these, then its name. */
#define COMMON								\
	{ .name = "dbid", .type = CFG_FT_ID, .min = 1, .max = CFG_DBID_MAX }, \
	{ .name = "version", .type = CFG_FT_ID, .min = 0,			\
	  .max = CFG_DBID_MAX },					\
	FENUMD("state", state_values, "enabled"),			\
	FREF("folder", 0, CFG_FOLDER),					\
	FOPTS("userProperties")

static const struct cfg_field tenant_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREF("timeZone", 0, CFG_TIME_ZONE),
	FEND
};

static const struct cfg_field person_skill_fields[] = {
	FREF("skill", CFG_F_REQ, CFG_SKILL),
	FINT("level", CFG_F_REQ, 0, 10),
	FEND
};

static const struct cfg_field person_login_fields[] = {
	FREF("agentLogin", CFG_F_REQ, CFG_AGENT_LOGIN),
	FEND
};

static const struct cfg_field person_fields[] = {
	COMMON, FNAME(0),
	FSTR("userName", CFG_F_REQ, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FSTR("firstName", 0, 0, CFG_LEN_NAME, CFG_SH_LINE),
	FSTR("lastName", 0, 0, CFG_LEN_NAME, CFG_SH_LINE),
	FSTR("employeeId", 0, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FSTR("externalId", 0, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FSTR("emailAddress", 0, 3, CFG_LEN_NAME, CFG_SH_EMAIL),
	FBOOL("isAgent", 0),
	FSTR("password", CFG_F_WO, 1, CFG_LEN_SECRET, CFG_SH_ANY),
	FLIST("skills", person_skill_fields, "skill"),
	FLIST("agentLogins", person_login_fields, "agentLogin"),
	FREF("place", 0, CFG_PLACE),
	FEND
};

static const struct cfg_field agent_login_fields[] = {
	COMMON, FNAME(0),
	FSTR("loginCode", CFG_F_REQ, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FREF("switch", CFG_F_REQ, CFG_SWITCH),
	FEND
};

static const struct cfg_field switch_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FSTR("type", 0, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FEND
};

static const struct cfg_field dn_fields[] = {
	COMMON, FNAME(0),
	FSTR("number", CFG_F_REQ, 1, CFG_LEN_DIAL, CFG_SH_DIAL),
	FENUM("type", CFG_F_REQ, dn_types),
	FREF("switch", CFG_F_REQ, CFG_SWITCH),
	FSTR("association", 0, 1, CFG_LEN_NAME, CFG_SH_NAME),
	/* A RoutingPoint with a virtualQueue is routed by the routing
	 * worker (docs/routing.md); a VirtualQueue ages its waiting
	 * interactions' priority. */
	FREF("virtualQueue", 0, CFG_DN),
	FSTR("routeTarget", 0, 1, CFG_LEN_TEXT, CFG_SH_SKILLS),
	FREF("routeAgentGroup", 0, CFG_AGENT_GROUP),
	FREF("routePlaceGroup", 0, CFG_PLACE_GROUP),
	FENUMD("routeStrategy", route_strategies, "LongestIdle"),
	FINTD("routePriority", 0, 1000000, 0),
	FINTD("routeTimeout", 1, 86400, 120),
	FSTR("defaultDestination", 0, 1, CFG_LEN_DIAL, CFG_SH_DIAL),
	FINTD("priorityIncrement", 0, 1000000, 0),
	FINTD("priorityInterval", 1, 86400, 60),
	FEND
};

static const struct cfg_field place_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREFS("dns", CFG_DN),
	FEND
};

static const struct cfg_field skill_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FEND
};

static const struct cfg_field agent_group_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREFS("members", CFG_PERSON),
	FREFS("supervisors", CFG_PERSON),
	FSTR("skillExpression", 0, 1, CFG_LEN_TEXT, CFG_SH_SKILLS),
	FEND
};

static const struct cfg_field place_group_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREFS("members", CFG_PLACE),
	FEND
};

static const struct cfg_field dn_group_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREFS("members", CFG_DN),
	FEND
};

static const struct cfg_field application_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FSTR("type", CFG_F_REQ, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FOPTS("options"),
	FSTR("secret", CFG_F_WO, 1, CFG_LEN_SECRET, CFG_SH_ANY),
	FEND
};

static const struct cfg_field transaction_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FENUM("type", CFG_F_REQ, transaction_types),
	FSTR("alias", 0, 1, CFG_LEN_NAME, CFG_SH_NAME),
	FSTR("description", 0, 0, CFG_LEN_TEXT, CFG_SH_TEXT),
	FOPTS("options"),
	FEND
};

static const struct cfg_field permission_fields[] = {
	FSTR("collection", CFG_F_REQ, 1, CFG_LEN_NAME, CFG_SH_COLLECTION),
	{ .name = "rights", .type = CFG_FT_ENUMS, .flags = CFG_F_REQ, .min = 1,
	  .values = rights },
	{ .name = "dbid", .type = CFG_FT_REF, .flags = CFG_F_DYN },
	FEND
};

static const struct cfg_field access_group_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREFS("members", CFG_PERSON),
	FREFS("applications", CFG_APPLICATION),
	{ .name = "permissions", .type = CFG_FT_LIST, .sub = permission_fields,
	  .rule = CFG_RULE_PERMISSION },
	FEND
};

static const struct cfg_field folder_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREF("parent", 0, CFG_FOLDER),
	FEND
};

static const struct cfg_field time_zone_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FSTR("tzName", CFG_F_REQ, 1, CFG_LEN_TZ, CFG_SH_TZ),
	FEND
};

static const struct cfg_field campaign_list_fields[] = {
	FREF("callingList", CFG_F_REQ, CFG_CALLING_LIST),
	FINTD("share", 1, 100, 10),
	FBOOL("isActive", 1),
	FEND
};

static const struct cfg_field campaign_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FLIST("callingLists", campaign_list_fields, "callingList"),
	FSTR("description", 0, 0, CFG_LEN_TEXT, CFG_SH_TEXT),
	FEND
};

static const struct cfg_field campaign_group_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREF("campaign", CFG_F_REQ, CFG_CAMPAIGN),
	FREF("group", CFG_F_REQ, CFG_AGENT_GROUP),
	FENUMD("dialMode", dial_modes, "Preview"),
	FINTD("maxQueueSize", 0, 100000, 0),
	FINTD("numOfChannels", 0, 10000, 10),
	FENUMD("optimizeBy", optimize_methods, "OverdialRate"),
	FINT("optimizeGoal", 0, 1, 3600),
	FREF("origDN", 0, CFG_DN),
	FREF("ivrDN", 0, CFG_DN),
	FSTR("callerId", 0, 1, CFG_LEN_DIAL, CFG_SH_DIAL),
	FEND
};

static const struct cfg_field calling_list_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREF("format", CFG_F_REQ, CFG_FORMAT),
	FSTR("tableName", CFG_F_REQ, 1, CFG_LEN_IDENT, CFG_SH_IDENT),
	FINTD("timeFrom", 0, CFG_DAY_LAST, 28800),
	FINTD("timeUntil", 0, CFG_DAY_LAST, 72000),
	FREFS("treatments", CFG_TREATMENT),
	FINTD("maxAttempts", 1, 100, 10),
	FREF("timeZone", 0, CFG_TIME_ZONE),
	FSTR("description", 0, 0, CFG_LEN_TEXT, CFG_SH_TEXT),
	FEND
};

static const struct cfg_field treatment_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FENUM("callResult", CFG_F_REQ, call_results),
	FENUM("action", CFG_F_REQ, treatment_actions),
	FINTD("interval", 0, 31536000, 0),
	FINTD("increment", 0, 31536000, 0),
	FINTD("attempts", 1, 1000, 1),
	FINT("time", 0, 0, CFG_DAY_LAST),
	FINTD("cycle", 1, 1000, 1),
	FEND
};

static const struct cfg_field format_fields[] = {
	COMMON, FNAME(CFG_F_REQ),
	FREFS("fields", CFG_FIELD),
	FSTR("description", 0, 0, CFG_LEN_TEXT, CFG_SH_TEXT),
	FEND
};

static const struct cfg_field field_fields[] = {
	COMMON, FSTR("name", CFG_F_REQ, 1, CFG_LEN_IDENT, CFG_SH_IDENT),
	FENUM("dataType", CFG_F_REQ, data_types),
	FINT("length", 0, 1, 4000),
	FENUMD("fieldType", field_types, "Custom"),
	FSTR("defaultValue", 0, 0, CFG_LEN_NAME, CFG_SH_LINE),
	FBOOL("isNullable", 1),
	FBOOL("isPrimaryKey", 0),
	FBOOL("isUnique", 0),
	FSTR("description", 0, 0, CFG_LEN_TEXT, CFG_SH_TEXT),
	FEND
};

static const struct cfg_type types[CFG_NTYPES] = {
	[CFG_TENANT] = { CFG_TENANT, "Tenant", "tenants",
	    tenant_fields, "name", NULL },
	[CFG_PERSON] = { CFG_PERSON, "Person", "persons",
	    person_fields, "userName", NULL },
	[CFG_AGENT_LOGIN] = { CFG_AGENT_LOGIN, "AgentLogin", "agent-logins",
	    agent_login_fields, "loginCode", "switch" },
	[CFG_SWITCH] = { CFG_SWITCH, "Switch", "switches",
	    switch_fields, "name", NULL },
	[CFG_DN] = { CFG_DN, "DN", "dns",
	    dn_fields, "number", "switch" },
	[CFG_PLACE] = { CFG_PLACE, "Place", "places",
	    place_fields, "name", NULL },
	[CFG_SKILL] = { CFG_SKILL, "Skill", "skills",
	    skill_fields, "name", NULL },
	[CFG_AGENT_GROUP] = { CFG_AGENT_GROUP, "AgentGroup", "agent-groups",
	    agent_group_fields, "name", NULL },
	[CFG_PLACE_GROUP] = { CFG_PLACE_GROUP, "PlaceGroup", "place-groups",
	    place_group_fields, "name", NULL },
	[CFG_DN_GROUP] = { CFG_DN_GROUP, "DNGroup", "dn-groups",
	    dn_group_fields, "name", NULL },
	[CFG_APPLICATION] = { CFG_APPLICATION, "Application", "applications",
	    application_fields, "name", NULL },
	[CFG_TRANSACTION] = { CFG_TRANSACTION, "Transaction", "transactions",
	    transaction_fields, "name", NULL },
	[CFG_ACCESS_GROUP] = { CFG_ACCESS_GROUP, "AccessGroup", "access-groups",
	    access_group_fields, "name", NULL },
	[CFG_FOLDER] = { CFG_FOLDER, "Folder", "folders",
	    folder_fields, "name", NULL },
	[CFG_TIME_ZONE] = { CFG_TIME_ZONE, "TimeZone", "time-zones",
	    time_zone_fields, "name", NULL },
	[CFG_CAMPAIGN] = { CFG_CAMPAIGN, "Campaign", "campaigns",
	    campaign_fields, "name", NULL },
	[CFG_CAMPAIGN_GROUP] = { CFG_CAMPAIGN_GROUP, "CampaignGroup", "campaign-groups",
	    campaign_group_fields, "name", NULL },
	[CFG_CALLING_LIST] = { CFG_CALLING_LIST, "CallingList", "calling-lists",
	    calling_list_fields, "name", NULL },
	[CFG_TREATMENT] = { CFG_TREATMENT, "Treatment", "treatments",
	    treatment_fields, "name", NULL },
	[CFG_FORMAT] = { CFG_FORMAT, "Format", "formats",
	    format_fields, "name", NULL },
	[CFG_FIELD] = { CFG_FIELD, "Field", "fields",
	    field_fields, "name", NULL },
};

/*
 * The API.
 */


/* cfg_type_at - the type of a kind */
const struct cfg_type *
cfg_type_at(enum cfg_kind kind)
{
	if ((unsigned)kind >= CFG_NTYPES)
		return NULL;
	return &types[kind];
}

/* cfg_type_by_collection - the type served at /v1/<collection> */
const struct cfg_type *
cfg_type_by_collection(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < CFG_NTYPES; i++)
		if (strlen(types[i].collection) == len &&
		    memcmp(types[i].collection, s, len) == 0)
			return &types[i];
	return NULL;
}

/* cfg_type_by_name - the type called name ("Person"), as in changes */
const struct cfg_type *
cfg_type_by_name(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < CFG_NTYPES; i++)
		if (strlen(types[i].name) == len &&
		    memcmp(types[i].name, s, len) == 0)
			return &types[i];
	return NULL;
}

/* cfg_type_kind - the kind of a type */
enum cfg_kind
cfg_type_kind(const struct cfg_type *t)
{
	return t->kind;
}

/* cfg_type_name - "Person" */
const char *
cfg_type_name(const struct cfg_type *t)
{
	return t->name;
}

/* cfg_type_collection - "persons" */
const char *
cfg_type_collection(const struct cfg_type *t)
{
	return t->collection;
}

/* fields_refer - a field table with a reference that can point at kind */
static int
fields_refer(const struct cfg_field *fs, enum cfg_kind target)
{
	for (; fs->name != NULL; fs++) {
		if ((fs->type == CFG_FT_REF || fs->type == CFG_FT_REFS) &&
		    ((fs->flags & CFG_F_DYN) || fs->target == target))
			return 1;
		if (fs->type == CFG_FT_LIST && fields_refer(fs->sub, target))
			return 1;
	}
	return 0;
}

/* cfg_type_refers - objects of t may refer to objects of kind target */
int
cfg_type_refers(const struct cfg_type *t, enum cfg_kind target)
{
	return fields_refer(t->fields, target);
}


/* cfg_refs - every reference held by obj */
void
cfg_refs(const struct cfg_type *t, const json_t *obj, cfg_ref_cb *cb,
    void *arg)
{
	if (json_is_object(obj))
		walk_refs(t->fields, obj, "", cb, arg);
}


/* cfg_key - the natural key: the key field, after its scope's dbid */
char *
cfg_key(const struct cfg_type *t, const json_t *obj)
{
	const json_t	*k, *s;

	k = json_object_get(obj, t->key);
	if (!json_is_string(k))
		return NULL;
	if (t->scope == NULL)
		return xstrdup(json_string_value(k));
	s = json_object_get(obj, t->scope);
	if (!json_is_integer(s))
		return NULL;
	return xasprintf("%lld/%s", (long long)json_integer_value(s),
	    json_string_value(k));
}

/* cfg_is_write_only - a field accepted on input, never output */
int
cfg_is_write_only(const struct cfg_type *t, const char *field)
{
	const struct cfg_field	*f;

	f = cfg_field_find(t->fields, field, strlen(field));
	return f != NULL && (f->flags & CFG_F_WO);
}


/*
 * References and paths, shared with the validator.
 */

/* path_put - append len bytes of s to the path of length *n, cut to fit */
static void
path_put(char *dst, size_t *n, const char *s, size_t len)
{
	if (len > CFG_PATH_LEN - 1 - *n)
		len = CFG_PATH_LEN - 1 - *n;
	memcpy(dst + *n, s, len);
	*n += len;
	dst[*n] = '\0';
}

/* path_key - parent.key, or key at the top; dst may be parent */
void
cfg_path_key(char *dst, const char *parent, const char *key, size_t len)
{
	size_t	n = strlen(parent);

	memmove(dst, parent, n + 1);
	if (n > 0)
		path_put(dst, &n, ".", 1);
	path_put(dst, &n, key, len);
}

/* path_idx - parent[i] */
void
cfg_path_idx(char *dst, const char *parent, size_t i)
{
	char	num[32];
	size_t	n = strlen(parent);

	memmove(dst, parent, n + 1);
	snprintf(num, sizeof(num), "[%zu]", i);
	path_put(dst, &n, num, strlen(num));
}


/* field_find - a field of the table by name (key may hold NUL bytes) */
const struct cfg_field *
cfg_field_find(const struct cfg_field *fs, const char *key, size_t len)
{
	for (; fs->name != NULL; fs++)
		if (strlen(fs->name) == len && memcmp(fs->name, key, len) == 0)
			return fs;
	return NULL;
}


/* ref_id - a value that is a valid dbid */
int
cfg_ref_id(const json_t *v, json_int_t *id)
{
	if (!json_is_integer(v))
		return -1;
	*id = json_integer_value(v);
	return *id >= 1 && *id <= CFG_DBID_MAX ? 0 : -1;
}

/* ref_target - the kind a reference field points to in obj */
int
cfg_ref_target(const struct cfg_field *f, const json_t *obj, enum cfg_kind *kind)
{
	const struct cfg_type	*t;
	const json_t		*c;

	if (!(f->flags & CFG_F_DYN)) {
		*kind = f->target;
		return 0;
	}
	c = json_object_get(obj, "collection");
	if (!json_is_string(c) || (t = cfg_type_by_collection(
	    json_string_value(c), json_string_length(c))) == NULL)
		return -1;
	*kind = t->kind;
	return 0;
}


/* walk_refs - call cb for every reference of the fields in obj */
static void
walk_refs(const struct cfg_field *fs, const json_t *obj, const char *path,
    cfg_ref_cb *cb, void *arg)
{
	const struct cfg_field	*f;
	const json_t		*v, *e;
	enum cfg_kind		 kind;
	json_int_t		 id;
	char			 p[CFG_PATH_LEN], q[CFG_PATH_LEN];
	size_t			 i;

	for (f = fs; f->name != NULL; f++) {
		if ((v = json_object_get(obj, f->name)) == NULL)
			continue;
		cfg_path_key(p, path, f->name, strlen(f->name));
		if (f->type == CFG_FT_REF && cfg_ref_id(v, &id) == 0 &&
		    cfg_ref_target(f, obj, &kind) == 0)
			cb(p, kind, id, arg);
		if (f->type != CFG_FT_REFS && f->type != CFG_FT_LIST)
			continue;
		json_array_foreach(v, i, e) {
			cfg_path_idx(q, p, i);
			if (f->type == CFG_FT_REFS && cfg_ref_id(e, &id) == 0)
				cb(q, f->target, id, arg);
			else if (f->type == CFG_FT_LIST && json_is_object(e))
				walk_refs(f->sub, e, q, cb, arg);
		}
	}
}

