/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_schema - the config object model: every type takes a minimal and a
 * full object, defaults are filled, each error comes with its code, status
 * and field path, write-only fields never come out, merge patches follow
 * RFC 7396, references are listed and cut, keys and filters work.  The
 * modules (common/schema.c, workers/config/validate.c) are included
 * whole, so the tables themselves are checked too.
 */
#include "../../common/schema.c"
#include "../../workers/config/validate.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* J - parse JSON written with ' for " (no apostrophes in test data) */
static json_t *
J(const char *text)
{
	json_error_t	 je;
	json_t		*v;
	char		*s, *p;

	s = xstrdup(text);
	for (p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (v == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	free(s);
	return v;
}

/* T - the type of a kind */
static const struct cfg_type *
T(enum cfg_kind k)
{
	const struct cfg_type	*t = cfg_type_at(k);

	assert_non_null(t);
	return t;
}

/* valid - validate a create, failing the test on error */
static json_t *
valid(enum cfg_kind k, const char *text)
{
	struct cfg_error	 err;
	json_t			*o = J(text);

	if (cfg_validate(T(k), o, 1, 0, 0, &err) != 0)
		fail_msg("%s %s: %d %s %s", cfg_type_name(T(k)), text,
		    err.status, err.code, err.message);
	return o;
}

/* str - a string member, or NULL */
static const char *
str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* num - an integer member, or -1 when absent or not an integer */
static json_int_t
num(const json_t *o, const char *key)
{
	const json_t	*v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/*
 * The type table.
 */

static void
test_types_table(void **state)
{
	static const char *const cols[CFG_NTYPES] = { "tenants", "persons",
	    "agent-logins", "switches", "dns", "places", "skills",
	    "agent-groups", "place-groups", "dn-groups", "applications",
	    "transactions", "access-groups", "folders", "time-zones",
	    "campaigns", "campaign-groups", "calling-lists", "treatments",
	    "formats", "fields" };
	const struct cfg_type	*t;
	const char		*n;
	int			 k;

	for (k = 0; k < CFG_NTYPES; k++) {
		t = T(k);
		assert_int_equal(cfg_type_kind(t), k);
		assert_string_equal(cfg_type_collection(t), cols[k]);
		assert_ptr_equal(cfg_type_by_collection(cols[k],
		    strlen(cols[k])), t);
		n = cfg_type_name(t);
		assert_ptr_equal(cfg_type_by_name(n, strlen(n)), t);
	}
	assert_string_equal(cfg_type_name(T(CFG_DN)), "DN");
	assert_string_equal(cfg_type_name(T(CFG_AGENT_LOGIN)), "AgentLogin");
	assert_null(cfg_type_at(CFG_NTYPES));
	assert_null(cfg_type_at((enum cfg_kind)-1));
	assert_null(cfg_type_by_collection("person", 6));
	assert_null(cfg_type_by_collection("persons", 6));
	assert_null(cfg_type_by_collection("personsX", 8));
	assert_null(cfg_type_by_name("person", 6));
}

/* camel - a field name in camelCase: lowercase first, letters/digits */
static int
camel(const char *s)
{
	if (*s < 'a' || *s > 'z')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == strlen(s);
}

/* check_table - one field table is coherent */
static void
check_table(const struct cfg_field *fs)
{
	const struct cfg_field	*f, *g;

	for (f = fs; f->name != NULL; f++) {
		assert_true(camel(f->name));
		for (g = f + 1; g->name != NULL; g++)
			assert_string_not_equal(f->name, g->name);
		if (f->type == CFG_FT_STRING)
			assert_non_null(shapes[f->shape].ok);
		if (f->type == CFG_FT_ENUM || f->type == CFG_FT_ENUMS)
			assert_non_null(f->values);
		if ((f->flags & CFG_F_DEF) && f->type == CFG_FT_ENUM)
			assert_int_not_equal(enum_index(f->values, f->sdef,
			    strlen(f->sdef)), -1);
		if (f->type != CFG_FT_LIST)
			continue;
		check_table(f->sub);
		if (f->uniq != NULL)
			assert_int_equal(cfg_field_find(f->sub, f->uniq,
			    strlen(f->uniq))->type, CFG_FT_REF);
	}
}

static void
test_tables_coherent(void **state)
{
	static const char *const common[] = { "dbid", "version", "state",
	    "folder", "userProperties", "name" };
	const struct filter	*fl;
	const struct cfg_field	*f, *list;
	size_t			 i;
	int			 k;

	for (k = 0; k < CFG_NTYPES; k++) {
		/* every type starts with the common fields, then name */
		for (i = 0; i < NELEM(common); i++)
			assert_string_equal(types[k].fields[i].name, common[i]);
		check_table(types[k].fields);
		assert_non_null(cfg_field_find(types[k].fields, types[k].key,
		    strlen(types[k].key)));
		/* every filter compares a field that exists */
		for (fl = type_filters[k]; fl->key != NULL; fl++) {
			f = filter_field(&types[k], fl, &list);
			assert_non_null(f);
			assert_true(fl->sub == NULL || list->type == CFG_FT_LIST);
			assert_false(f->flags & CFG_F_WO);
			assert_true(cfg_filter_allowed(&types[k], fl->key));
		}
	}
}

static void
test_type_refers(void **state)
{
	int	k;

	assert_true(cfg_type_refers(T(CFG_PERSON), CFG_SKILL));
	assert_true(cfg_type_refers(T(CFG_PERSON), CFG_AGENT_LOGIN));
	assert_true(cfg_type_refers(T(CFG_PERSON), CFG_PLACE));
	assert_false(cfg_type_refers(T(CFG_PERSON), CFG_DN));
	assert_true(cfg_type_refers(T(CFG_DN), CFG_SWITCH));
	assert_false(cfg_type_refers(T(CFG_SKILL), CFG_PERSON));
	assert_true(cfg_type_refers(T(CFG_CALLING_LIST), CFG_TREATMENT));
	/* every object sits in a folder; access groups may name anything */
	for (k = 0; k < CFG_NTYPES; k++) {
		assert_true(cfg_type_refers(T(k), CFG_FOLDER));
		assert_true(cfg_type_refers(T(CFG_ACCESS_GROUP), k));
	}
}

/*
 * Minimal and full objects of every type.
 */

static const char *const minimal[CFG_NTYPES] = {
	[CFG_TENANT] = "{'name': 'acme'}",
	[CFG_PERSON] = "{'userName': 'jdoe'}",
	[CFG_AGENT_LOGIN] = "{'loginCode': '1001', 'switch': 12}",
	[CFG_SWITCH] = "{'name': 'sip'}",
	[CFG_DN] = "{'number': '5001', 'type': 'Extension', 'switch': 12}",
	[CFG_PLACE] = "{'name': 'desk-1'}",
	[CFG_SKILL] = "{'name': 'French'}",
	[CFG_AGENT_GROUP] = "{'name': 'Sales'}",
	[CFG_PLACE_GROUP] = "{'name': 'Floor 1'}",
	[CFG_DN_GROUP] = "{'name': 'Queues'}",
	[CFG_APPLICATION] = "{'name': 'stat', 'type': 'StatServer'}",
	[CFG_TRANSACTION] = "{'name': 'Reasons', 'type': 'List'}",
	[CFG_ACCESS_GROUP] = "{'name': 'Admins'}",
	[CFG_FOLDER] = "{'name': 'EMEA'}",
	[CFG_TIME_ZONE] = "{'name': 'Paris', 'tzName': 'Europe/Paris'}",
	[CFG_CAMPAIGN] = "{'name': 'Renewals'}",
	[CFG_CAMPAIGN_GROUP] = "{'name': 'Renewals@Sales', 'campaign': 3,"
	    " 'group': 4}",
	[CFG_CALLING_LIST] = "{'name': 'Leads', 'format': 5,"
	    " 'tableName': 'leads_2024'}",
	[CFG_TREATMENT] = "{'name': 'Busy retry', 'callResult': 'Busy',"
	    " 'action': 'RetryIn'}",
	[CFG_FORMAT] = "{'name': 'Basic'}",
	[CFG_FIELD] = "{'name': 'phone', 'dataType': 'varchar', 'length': 32}",
};

#define FULL_COMMON	"'state': 'disabled', 'folder': 9, " \
	"'userProperties': {'sip': {'port': 5060, 'host': 'pbx'}, 'x': {}}, "

static const char *const full[CFG_NTYPES] = {
	[CFG_TENANT] = "{" FULL_COMMON "'name': 'acme', 'timeZone': 8}",
	[CFG_PERSON] = "{" FULL_COMMON "'name': 'John Doe',"
	    " 'userName': 'jdoe', 'firstName': 'John', 'lastName': 'Doe',"
	    " 'employeeId': 'E042', 'externalId': 'sso-42',"
	    " 'emailAddress': 'jdoe@example.com', 'isAgent': true,"
	    " 'password': 's3cret', 'skills': [{'skill': 5, 'level': 0},"
	    " {'skill': 6, 'level': 10}], 'agentLogins': [{'agentLogin': 7}],"
	    " 'place': 8}",
	[CFG_AGENT_LOGIN] = "{" FULL_COMMON "'name': 'login 1001',"
	    " 'loginCode': '1001', 'switch': 12}",
	[CFG_SWITCH] = "{" FULL_COMMON "'name': 'sip', 'type': 'SIPSwitch'}",
	[CFG_DN] = "{" FULL_COMMON "'name': 'Sales queue', 'number': '+33*1#',"
	    " 'type': 'ACDQueue', 'switch': 12, 'association': '8000',"
	    " 'virtualQueue': 9, 'routeTarget': 'French > 5',"
	    " 'routeAgentGroup': 10, 'routePlaceGroup': 11,"
	    " 'routeStrategy': 'MostSkilled', 'routePriority': 5,"
	    " 'routeTimeout': 30, 'defaultDestination': '7000',"
	    " 'priorityIncrement': 1, 'priorityInterval': 10}",
	[CFG_PLACE] = "{" FULL_COMMON "'name': 'desk-1', 'dns': [1, 2, 3]}",
	[CFG_SKILL] = "{" FULL_COMMON "'name': 'French'}",
	[CFG_AGENT_GROUP] = "{" FULL_COMMON "'name': 'Sales',"
	    " 'members': [1, 2], 'supervisors': [2],"
	    " 'skillExpression': 'French > 5 & Sales > 3'}",
	[CFG_PLACE_GROUP] = "{" FULL_COMMON "'name': 'F1', 'members': [4]}",
	[CFG_DN_GROUP] = "{" FULL_COMMON "'name': 'Q', 'members': [4, 5]}",
	[CFG_APPLICATION] = "{" FULL_COMMON "'name': 'stat',"
	    " 'type': 'StatServer', 'options': {'log': {'verbose': 'all'}},"
	    " 'secret': 'app-secret'}",
	[CFG_TRANSACTION] = "{" FULL_COMMON "'name': 'Reasons',"
	    " 'type': 'BusinessAttribute', 'alias': 'reasons',"
	    " 'description': 'line 1\\nline 2', 'options': {'a': {'b': 1.5}}}",
	[CFG_ACCESS_GROUP] = "{" FULL_COMMON "'name': 'Admins',"
	    " 'members': [1], 'applications': [2], 'permissions': ["
	    " {'collection': 'persons', 'rights': ['read', 'update'],"
	    " 'dbid': null},"
	    " {'collection': 'persons', 'rights': ['delete'], 'dbid': 7},"
	    " {'collection': 'dns', 'rights': ['read', 'create', 'update',"
	    " 'delete'], 'dbid': null}]}",
	[CFG_FOLDER] = "{'state': 'disabled', 'folder': null,"
	    " 'userProperties': {}, 'name': 'EMEA', 'parent': 2}",
	[CFG_TIME_ZONE] = "{" FULL_COMMON "'name': 'NY',"
	    " 'tzName': 'America/New_York'}",
	[CFG_CAMPAIGN] = "{" FULL_COMMON "'name': 'Renewals',"
	    " 'callingLists': [{'callingList': 6, 'share': 100,"
	    " 'isActive': false}], 'description': 'Q3'}",
	[CFG_CAMPAIGN_GROUP] = "{" FULL_COMMON "'name': 'R@S',"
	    " 'campaign': 3, 'group': 4, 'dialMode': 'Predictive',"
	    " 'maxQueueSize': 0, 'numOfChannels': 30,"
	    " 'optimizeBy': 'BusyFactor', 'optimizeGoal': 85, 'origDN': 7,"
	    " 'ivrDN': 8, 'callerId': '+18005550100'}",
	[CFG_CALLING_LIST] = "{" FULL_COMMON "'name': 'Leads', 'format': 5,"
	    " 'tableName': '_leads', 'timeFrom': 0, 'timeUntil': 86399,"
	    " 'treatments': [1, 2], 'maxAttempts': 100, 'timeZone': 3,"
	    " 'description': ''}",
	[CFG_TREATMENT] = "{" FULL_COMMON "'name': 'Tomorrow',"
	    " 'callResult': 'AnsweringMachine', 'action': 'RetryAt',"
	    " 'interval': 86399, 'increment': 60, 'attempts': 3, 'time': 36000,"
	    " 'cycle': 2}",
	[CFG_FORMAT] = "{" FULL_COMMON "'name': 'Basic', 'fields': [1, 2],"
	    " 'description': 'd'}",
	[CFG_FIELD] = "{" FULL_COMMON "'name': 'amount', 'dataType': 'varchar',"
	    " 'length': 12,"
	    " 'fieldType': 'Custom', 'defaultValue': '0', 'isNullable': false,"
	    " 'isPrimaryKey': false, 'isUnique': true, 'description': 'EUR'}",
};

static void
test_minimal_every_type(void **state)
{
	struct cfg_error	 err;
	json_t			*o, *again;
	int			 k;

	for (k = 0; k < CFG_NTYPES; k++) {
		o = valid(k, minimal[k]);
		assert_string_equal(str(o, "state"), "enabled");
		assert_true(json_is_null(json_object_get(o, "folder")));
		assert_int_equal(json_object_size(json_object_get(o,
		    "userProperties")), 0);
		assert_non_null(str(o, "name"));
		/* a normalized object is a fixed point, also as an update */
		again = json_deep_copy(o);
		json_object_set_new(again, "dbid", json_integer(77));
		json_object_set_new(again, "version", json_integer(3));
		assert_int_equal(cfg_validate(T(k), again, 0, 77, 3, &err), 0);
		json_object_del(again, "dbid");
		json_object_del(again, "version");
		assert_true(json_equal(again, o));
		json_decref(again);
		json_decref(o);
	}
}

static void
test_full_every_type(void **state)
{
	const struct cfg_field	*f;
	json_t			*in, *o;
	int			 k;

	for (k = 0; k < CFG_NTYPES; k++) {
		in = J(full[k]);
		/* "full" must mean it: every field but dbid and version */
		for (f = types[k].fields + 2; f->name != NULL; f++)
			if (json_object_get(in, f->name) == NULL)
				fail_msg("%s full object lacks %s",
				    types[k].name, f->name);
		o = valid(k, full[k]);
		/* nothing given was changed */
		if (!json_equal(in, o))
			fail_msg("%s changed by validation",
			    types[k].name);
		json_decref(in);
		json_decref(o);
	}
}

/*
 * Defaults.
 */

static void
test_defaults_person(void **state)
{
	json_t	*o = valid(CFG_PERSON,
	    "{'userName': 'jdoe', 'firstName': null, 'place': null}");

	assert_string_equal(str(o, "name"), "jdoe");
	assert_true(json_is_false(json_object_get(o, "isAgent")));
	assert_int_equal(json_array_size(json_object_get(o, "skills")), 0);
	assert_true(json_is_array(json_object_get(o, "agentLogins")));
	assert_true(json_is_null(json_object_get(o, "place")));
	assert_null(json_object_get(o, "firstName"));	/* null: unset */
	assert_null(json_object_get(o, "password"));
	assert_null(json_object_get(o, "employeeId"));
	assert_null(json_object_get(o, "dbid"));
	json_decref(o);

	/* an explicit name is kept */
	o = valid(CFG_PERSON, "{'userName': 'jdoe', 'name': 'John'}");
	assert_string_equal(str(o, "name"), "John");
	json_decref(o);
}

static void
test_defaults_key_names(void **state)
{
	json_t	*o;

	o = valid(CFG_DN, minimal[CFG_DN]);
	assert_string_equal(str(o, "name"), "5001");
	json_decref(o);
	o = valid(CFG_AGENT_LOGIN, minimal[CFG_AGENT_LOGIN]);
	assert_string_equal(str(o, "name"), "1001");
	json_decref(o);
}

static void
test_defaults_outbound(void **state)
{
	json_t	*o;

	o = valid(CFG_CALLING_LIST, minimal[CFG_CALLING_LIST]);
	assert_int_equal(num(o, "timeFrom"), 28800);
	assert_int_equal(num(o, "timeUntil"), 72000);
	assert_int_equal(num(o, "maxAttempts"), 10);
	assert_true(json_is_null(json_object_get(o, "timeZone")));
	assert_true(json_is_array(json_object_get(o, "treatments")));
	json_decref(o);

	o = valid(CFG_CAMPAIGN,
	    "{'name': 'c', 'callingLists': [{'callingList': 6}]}");
	assert_int_equal(num(json_array_get(json_object_get(o,
	    "callingLists"), 0), "share"), 10);
	assert_true(json_is_true(json_object_get(json_array_get(
	    json_object_get(o, "callingLists"), 0), "isActive")));
	json_decref(o);

	o = valid(CFG_CAMPAIGN_GROUP, minimal[CFG_CAMPAIGN_GROUP]);
	assert_string_equal(str(o, "dialMode"), "Preview");
	assert_string_equal(str(o, "optimizeBy"), "OverdialRate");
	assert_int_equal(num(o, "optimizeGoal"), 3);
	assert_int_equal(num(o, "maxQueueSize"), 0);
	assert_int_equal(num(o, "numOfChannels"), 10);
	assert_true(json_is_null(json_object_get(o, "origDN")));
	json_decref(o);
	o = valid(CFG_CAMPAIGN_GROUP, "{'name': 'g', 'campaign': 3,"
	    " 'group': 4, 'optimizeBy': 'BusyFactor'}");
	assert_int_equal(num(o, "optimizeGoal"), 80);
	json_decref(o);

	o = valid(CFG_TREATMENT, minimal[CFG_TREATMENT]);
	assert_int_equal(num(o, "interval"), 0);
	assert_int_equal(num(o, "attempts"), 1);
	json_decref(o);

	o = valid(CFG_FIELD, "{'name': 'n', 'dataType': 'int'}");
	assert_string_equal(str(o, "fieldType"), "Custom");
	assert_true(json_is_true(json_object_get(o, "isNullable")));
	assert_true(json_is_false(json_object_get(o, "isPrimaryKey")));
	assert_null(json_object_get(o, "length"));
	json_decref(o);

	o = valid(CFG_ACCESS_GROUP, "{'name': 'a', 'permissions':"
	    " [{'collection': 'skills', 'rights': ['read']}]}");
	assert_true(json_is_null(json_object_get(json_array_get(
	    json_object_get(o, "permissions"), 0), "dbid")));
	json_decref(o);
}

/*
 * Errors: code, status, field path, message.
 */

struct bad {
	enum cfg_kind	 kind;
	const char	*json;
	int		 status;
	const char	*code;
	const char	*field;
	const char	*message;	/* a substring of it */
};

#define PERSON(x)	"{'userName': 'jdoe', " x "}"

static const struct bad bad_creates[] = {
	/* not an object */
	{ CFG_SKILL, "[]", 400, "WrongType", "", "body: must be a JSON" },
	{ CFG_SKILL, "'x'", 400, "WrongType", "", "object" },
	/* unknown fields, at the top and in list entries */
	{ CFG_PERSON, PERSON("'foo': 1"), 422, "UnknownField", "foo",
	    "foo: is not a field of Person" },
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1, 'level': 1,"
	    " 'bogus': 2}]"), 422, "UnknownField", "skills[0].bogus",
	    "known field" },
	{ CFG_SKILL, "{'name': 'a', 'Name': 'b'}", 422, "UnknownField",
	    "Name", NULL },
	/* wrong JSON types */
	{ CFG_PERSON, PERSON("'isAgent': 'yes'"), 422, "WrongType",
	    "isAgent", "isAgent: must be true or false" },
	{ CFG_PERSON, PERSON("'isAgent': 1"), 422, "WrongType", "isAgent",
	    NULL },
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1, 'level': 2},"
	    " {'skill': 2, 'level': '5'}]"), 422, "WrongType",
	    "skills[1].level", "skills[1].level: must be an integer from 0 "
	    "to 10" },
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1, 'level': 5.0}]"), 422,
	    "WrongType", "skills[0].level", NULL },
	{ CFG_PERSON, PERSON("'skills': {'skill': 1}"), 422, "WrongType",
	    "skills", "must be an array of objects" },
	{ CFG_PERSON, PERSON("'skills': [5]"), 422, "WrongType",
	    "skills[0]", "must be an object" },
	{ CFG_PERSON, "{'userName': 42}", 422, "WrongType", "userName",
	    "must be a string" },
	{ CFG_PERSON, PERSON("'place': '8'"), 422, "WrongType", "place",
	    "place: must be a Place dbid" },
	{ CFG_DN, "{'number': '1', 'type': 'Trunk', 'switch': true}", 422,
	    "WrongType", "switch", "must be a Switch dbid" },
	{ CFG_AGENT_GROUP, "{'name': 'g', 'members': [1, '2']}", 422,
	    "WrongType", "members[1]", "must be a Person dbid" },
	{ CFG_AGENT_GROUP, "{'name': 'g', 'supervisors': 3}", 422,
	    "WrongType", "supervisors", "must be an array" },
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1, 'level': 1}],"
	    " 'agentLogins': [{'agentLogin': 1.5}]"), 422, "WrongType",
	    "agentLogins[0].agentLogin", "an AgentLogin dbid" },
	{ CFG_SKILL, "{'name': 'a', 'state': true}", 422, "WrongType",
	    "state", "one of enabled, disabled" },
	{ CFG_SKILL, "{'name': 'a', 'userProperties': []}", 422, "WrongType",
	    "userProperties", "sections" },
	{ CFG_SKILL, "{'name': 'a', 'userProperties': {'s': 1}}", 422,
	    "WrongType", "userProperties.s", NULL },
	{ CFG_SKILL, "{'name': 'a', 'userProperties': {'s': {'k': {}}}}",
	    422, "WrongType", "userProperties.s.k",
	    "must be a string or a number" },
	{ CFG_SKILL, "{'name': 'a', 'userProperties': {'s': {'k': true}}}",
	    422, "WrongType", "userProperties.s.k", NULL },
	{ CFG_APPLICATION, "{'name': 'a', 'type': 't',"
	    " 'options': {'s': {'k': null}}}", 422, "WrongType",
	    "options.s.k", NULL },
	{ CFG_PERSON, PERSON("'password': 1234"), 422, "WrongType",
	    "password", NULL },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'collection':"
	    " 'dns', 'rights': 'read'}]}", 422, "WrongType",
	    "permissions[0].rights", "array of at least 1" },
	/* required */
	{ CFG_PERSON, "{}", 422, "Missing", "userName",
	    "userName: is required" },
	{ CFG_PERSON, "{'userName': null}", 422, "Missing", "userName", NULL },
	{ CFG_SKILL, "{'name': null}", 422, "Missing", "name", NULL },
	{ CFG_DN, "{'number': '1', 'type': 'Trunk'}", 422, "Missing",
	    "switch", NULL },
	{ CFG_DN, "{'switch': 1, 'type': 'Trunk'}", 422, "Missing",
	    "number", NULL },
	{ CFG_AGENT_LOGIN, "{'switch': 1}", 422, "Missing", "loginCode",
	    NULL },
	{ CFG_APPLICATION, "{'name': 'a'}", 422, "Missing", "type", NULL },
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1}]"), 422, "Missing",
	    "skills[0].level", NULL },
	{ CFG_CAMPAIGN_GROUP, "{'name': 'g', 'campaign': 1}", 422, "Missing",
	    "group", NULL },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1}", 422, "Missing",
	    "tableName", NULL },
	{ CFG_FIELD, "{'name': 'f', 'dataType': 'char'}", 422, "Missing",
	    "length", "is required for char" },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'rights':"
	    " ['read']}]}", 422, "Missing", "permissions[0].collection",
	    NULL },
	/* ranges */
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1, 'level': 2},"
	    " {'skill': 2, 'level': 11}]"), 422, "OutOfRange",
	    "skills[1].level", "skills[1].level: must be an integer from 0 "
	    "to 10" },
	{ CFG_PERSON, PERSON("'skills': [{'skill': 1, 'level': -1}]"), 422,
	    "OutOfRange", "skills[0].level", NULL },
	{ CFG_PERSON, PERSON("'place': 0"), 422, "OutOfRange", "place",
	    NULL },
	{ CFG_PERSON, PERSON("'place': 9007199254740992"), 422, "OutOfRange",
	    "place", NULL },
	{ CFG_PERSON, PERSON("'password': ''"), 422, "OutOfRange",
	    "password", NULL },
	{ CFG_SKILL, "{'name': ''}", 422, "OutOfRange", "name",
	    "must be 1 to 255 bytes long" },
	{ CFG_CAMPAIGN, "{'name': 'c', 'callingLists': [{'callingList': 1,"
	    " 'share': 0}]}", 422, "OutOfRange", "callingLists[0].share",
	    "from 1 to 100" },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName': 't',"
	    " 'maxAttempts': 101}", 422, "OutOfRange", "maxAttempts", NULL },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName': 't',"
	    " 'timeUntil': 86400}", 422, "OutOfRange", "timeUntil",
	    "from 0 to 86399" },
	{ CFG_CAMPAIGN_GROUP, "{'name': 'g', 'campaign': 1, 'group': 2,"
	    " 'maxQueueSize': -1}", 422, "OutOfRange", "maxQueueSize", NULL },
	{ CFG_TREATMENT, "{'name': 't', 'callResult': 'Busy', 'action':"
	    " 'RetryIn', 'attempts': 0}", 422, "OutOfRange", "attempts",
	    NULL },
	{ CFG_FIELD, "{'name': 'f', 'dataType': 'varchar', 'length': 4001}",
	    422, "OutOfRange", "length", NULL },
	{ CFG_TREATMENT, "{'name': 't', 'callResult': 'Busy', 'action':"
	    " 'RetryAt', 'interval': 86400}", 422, "OutOfRange", "interval",
	    "with RetryAt" },
	{ CFG_CAMPAIGN_GROUP, "{'name': 'g', 'campaign': 1, 'group': 2,"
	    " 'optimizeBy': 'BusyFactor', 'optimizeGoal': 101}", 422,
	    "OutOfRange", "optimizeGoal", "percentage" },
	/* values and shapes */
	{ CFG_DN, "{'number': '1', 'type': 'Phone', 'switch': 1}", 422,
	    "BadValue", "type", "one of Extension, ACDPosition" },
	{ CFG_DN, "{'number': '12a', 'type': 'Trunk', 'switch': 1}", 422,
	    "BadValue", "number", "digits" },
	{ CFG_SKILL, "{'name': 'a', 'state': 'Enabled'}", 422, "BadValue",
	    "state", NULL },
	{ CFG_SKILL, "{'name': ' Sales'}", 422, "BadValue", "name", NULL },
	{ CFG_SKILL, "{'name': 'Sales '}", 422, "BadValue", "name", NULL },
	{ CFG_SKILL, "{'name': 'a\\nb'}", 422, "BadValue", "name",
	    "control characters" },
	{ CFG_PERSON, PERSON("'emailAddress': 'jdoe'"), 422, "BadValue",
	    "emailAddress", NULL },
	{ CFG_PERSON, PERSON("'emailAddress': 'a@b@c'"), 422, "BadValue",
	    "emailAddress", NULL },
	{ CFG_TIME_ZONE, "{'name': 'z', 'tzName': '../etc/passwd'}", 422,
	    "BadValue", "tzName", "IANA" },
	{ CFG_TIME_ZONE, "{'name': 'z', 'tzName': '/etc/localtime'}", 422,
	    "BadValue", "tzName", NULL },
	{ CFG_TIME_ZONE, "{'name': 'z', 'tzName': 'Europe//Paris'}", 422,
	    "BadValue", "tzName", NULL },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName':"
	    " 'Leads'}", 422, "BadValue", "tableName", "SQL identifier" },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName':"
	    " 'pg_class'}", 422, "BadValue", "tableName", NULL },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName':"
	    " 'x; drop table t'}", 422, "BadValue", "tableName", NULL },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName': 't',"
	    " 'timeFrom': 72000, 'timeUntil': 28800}", 422, "BadValue",
	    "timeUntil", "midnight" },
	{ CFG_CALLING_LIST, "{'name': 'l', 'format': 1, 'tableName': 't',"
	    " 'timeFrom': 72000}", 422, "BadValue", "timeUntil", NULL },
	{ CFG_FIELD, "{'name': 'f', 'dataType': 'int', 'length': 4}", 422,
	    "BadValue", "length", "only varchar and char" },
	{ CFG_FIELD, "{'name': 'Phone', 'dataType': 'int'}", 422,
	    "BadValue", "name", NULL },
	{ CFG_FOLDER, "{'name': 'f', 'folder': 3}", 422, "BadValue",
	    "folder", "placed by its parent" },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'collection':"
	    " 'people', 'rights': ['read']}]}", 422, "BadValue",
	    "permissions[0].collection", "collection name" },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'collection':"
	    " 'dns', 'rights': ['read', 'fly']}]}", 422, "BadValue",
	    "permissions[0].rights[1]", "one of read, create, update" },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'collection':"
	    " 'dns', 'rights': []}]}", 422, "BadValue",
	    "permissions[0].rights", NULL },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'collection':"
	    " 'dns', 'rights': ['create'], 'dbid': 4}]}", 422, "BadValue",
	    "permissions[0].dbid", "create" },
	{ CFG_SKILL, "{'name': 'a', 'userProperties': {'': {}}}", 422,
	    "BadValue", "userProperties.", "1 to 255 bytes" },
	{ CFG_SKILL, "{'name': 'a', 'userProperties': {'s': {'\\u0001':"
	    " 1}}}", 422, "BadValue", "userProperties.s.\001", NULL },
	/* server-managed fields */
	{ CFG_SKILL, "{'name': 'a', 'dbid': 4}", 422, "ReadOnly", "dbid",
	    "assigned by the server" },
	{ CFG_SKILL, "{'name': 'a', 'version': 1}", 422, "ReadOnly",
	    "version", NULL },
	{ CFG_SKILL, "{'name': 'a', 'dbid': 'x'}", 422, "WrongType", "dbid",
	    NULL },
	/* duplicates */
	{ CFG_PERSON, PERSON("'skills': [{'skill': 5, 'level': 1},"
	    " {'skill': 6, 'level': 1}, {'skill': 5, 'level': 9}]"), 422,
	    "Duplicate", "skills[2].skill", "duplicate of skills[0]" },
	{ CFG_PERSON, PERSON("'agentLogins': [{'agentLogin': 1},"
	    " {'agentLogin': 1}]"), 422, "Duplicate",
	    "agentLogins[1].agentLogin", NULL },
	{ CFG_AGENT_GROUP, "{'name': 'g', 'members': [3, 1, 2, 1, 3]}", 422,
	    "Duplicate", "members[3]", "duplicate of members[1]" },
	/* the first repeat in array order, whatever the values */
	{ CFG_AGENT_GROUP, "{'name': 'g', 'members': [5, 1, 5, 1]}", 422,
	    "Duplicate", "members[2]", "duplicate of members[0]" },
	{ CFG_CAMPAIGN, "{'name': 'c', 'callingLists': [{'callingList': 1},"
	    " {'callingList': 1}]}", 422, "Duplicate",
	    "callingLists[1].callingList", NULL },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': [{'collection':"
	    " 'dns', 'rights': ['read', 'read']}]}", 422, "Duplicate",
	    "permissions[0].rights[1]", NULL },
	{ CFG_ACCESS_GROUP, "{'name': 'a', 'permissions': ["
	    "{'collection': 'dns', 'rights': ['read'], 'dbid': 4},"
	    "{'collection': 'dns', 'rights': ['read']},"
	    "{'collection': 'skills', 'rights': ['read'], 'dbid': 4},"
	    "{'collection': 'dns', 'rights': ['update'], 'dbid': 4}]}",
	    422, "Duplicate", "permissions[3]", "duplicate of permissions[0]" },
};

/* expect - validate and compare the error with b */
static void
expect(const struct bad *b, int creating, json_int_t dbid,
    json_int_t version)
{
	struct cfg_error	 err;
	json_t			*o = J(b->json);

	memset(&err, 0x55, sizeof(err));
	if (cfg_validate(T(b->kind), o, creating, dbid, version, &err) == 0)
		fail_msg("%s accepted", b->json);
	if (err.status != b->status || strcmp(err.code, b->code) != 0 ||
	    strcmp(err.field, b->field) != 0)
		fail_msg("%s: got %d %s '%s' (%s), want %d %s '%s'", b->json,
		    err.status, err.code, err.field, err.message, b->status,
		    b->code, b->field);
	/* the message names the field, and says what was expected */
	if (b->field[0] != '\0')
		assert_memory_equal(err.message, b->field, strlen(b->field));
	if (b->message != NULL && strstr(err.message, b->message) == NULL)
		fail_msg("%s: message '%s' lacks '%s'", b->json, err.message,
		    b->message);
	assert_true(strlen(err.message) < sizeof(err.message));
	json_decref(o);
}

static void
test_errors_create(void **state)
{
	size_t	i;

	for (i = 0; i < NELEM(bad_creates); i++)
		expect(&bad_creates[i], 1, 0, 0);
}

static const struct bad bad_updates[] = {
	{ CFG_SKILL, "{'name': 'a', 'dbid': 13}", 422, "ReadOnly", "dbid",
	    "must be 12 or left out" },
	{ CFG_SKILL, "{'name': 'a', 'dbid': 12, 'version': 4}", 409,
	    "VersionMismatch", "version", "is 5 now, not 4" },
	{ CFG_FOLDER, "{'name': 'f', 'parent': 12}", 422, "BadValue",
	    "parent", "itself" },
};

static void
test_errors_update(void **state)
{
	struct cfg_error	 err;
	size_t			 i;
	json_t			*o;

	for (i = 0; i < NELEM(bad_updates); i++)
		expect(&bad_updates[i], 0, 12, 5);
	/* the right dbid and version, or none, pass */
	o = J("{'name': 'a', 'dbid': 12, 'version': 5}");
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 0, 12, 5, &err), 0);
	assert_int_equal(num(o, "dbid"), 12);
	json_decref(o);
	o = J("{'name': 'a', 'dbid': null}");
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 0, 12, 5, &err), 0);
	assert_null(json_object_get(o, "dbid"));
	json_decref(o);
	/* a folder's parent may be another folder on update */
	o = J("{'name': 'f', 'parent': 11}");
	assert_int_equal(cfg_validate(T(CFG_FOLDER), o, 0, 12, 5, &err), 0);
	json_decref(o);
}

static void
test_errors_strings(void **state)
{
	struct cfg_error	 err;
	char			 name[300];
	json_t			*o;

	/* 255 bytes pass, 256 do not; limits count bytes of UTF-8 */
	memset(name, 'x', 255);
	name[255] = '\0';
	o = json_pack("{s:s}", "name", name);
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 1, 0, 0, &err), 0);
	json_decref(o);
	name[255] = 'x', name[256] = '\0';
	o = json_pack("{s:s}", "name", name);
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 1, 0, 0, &err), -1);
	assert_string_equal(err.code, "OutOfRange");
	json_decref(o);
	o = valid(CFG_SKILL, "{'name': 'Fran\\u00e7ais \\u65e5\\u672c'}");
	json_decref(o);

	/* a NUL inside a string (jansson allows it when built by hand) */
	o = json_object();
	json_object_set_new(o, "name", json_stringn("a\0b", 3));
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 1, 0, 0, &err), -1);
	assert_string_equal(err.code, "BadValue");
	assert_string_equal(err.field, "name");
	json_decref(o);
	/* also in a secret, where no shape would catch it: crypt(3) would
	 * hash "a" alone */
	o = json_pack("{s:s}", "userName", "j");
	json_object_set_new(o, "password", json_stringn("a\0b", 3));
	assert_int_equal(cfg_validate(T(CFG_PERSON), o, 1, 0, 0, &err), -1);
	assert_string_equal(err.code, "BadValue");
	assert_string_equal(err.message,
	    "password: must not hold a NUL character");
	json_decref(o);

	/* a key with a NUL is not the field its prefix names */
	o = json_pack("{s:s}", "name", "a");
	json_object_setn_new(o, "name\0x", 6, json_string("b"));
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 1, 0, 0, &err), -1);
	assert_string_equal(err.code, "UnknownField");
	json_decref(o);

	/* a NULL err is allowed */
	o = J("{}");
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 1, 0, 0, NULL), -1);
	json_decref(o);
}

static void
test_error_long_path(void **state)
{
	struct cfg_error	 err;
	char			 key[200];
	json_t			*o;

	/* a path longer than err.field is cut, never overflowed */
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	o = json_pack("{s:s, s:{s:{s:b}}}", "name", "a", "userProperties",
	    key, key, 1);
	assert_int_equal(cfg_validate(T(CFG_SKILL), o, 1, 0, 0, &err), -1);
	assert_string_equal(err.code, "WrongType");
	assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
	assert_memory_equal(err.field, "userProperties.kkk", 18);
	assert_memory_equal(err.message, err.field, strlen(err.field));
	assert_non_null(strstr(err.message, ": must be a string or a number"));
	json_decref(o);

	/* so is a message too long for err.message, marked with ... */
	memset(&err, 0, sizeof(err));
	assert_int_equal((fail)(&err, 422, "BadValue", key, "%s", key), -1);
	assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
	assert_string_equal(err.message + sizeof(err.message) - 4, "...");
	assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
}

static void
test_big_list(void **state)
{
	struct cfg_error	 err;
	json_t			*o, *m;
	int			 i;

	/* 100,000 members: fast, and the one duplicate is found */
	o = J("{'name': 'big'}");
	m = json_array();
	for (i = 1; i <= 100000; i++)
		json_array_append_new(m, json_integer(i));
	json_object_set_new(o, "members", m);
	assert_int_equal(cfg_validate(T(CFG_AGENT_GROUP), o, 1, 0, 0, &err),
	    0);
	json_array_append_new(m, json_integer(99999));
	assert_int_equal(cfg_validate(T(CFG_AGENT_GROUP), o, 1, 0, 0, &err),
	    -1);
	assert_string_equal(err.field, "members[100000]");
	assert_string_equal(err.message,
	    "members[100000]: duplicate of members[99998]");
	json_decref(o);
}

/*
 * Write-only fields.
 */

static void
test_write_only(void **state)
{
	json_t	*o, *p;

	assert_true(cfg_is_write_only(T(CFG_PERSON), "password"));
	assert_true(cfg_is_write_only(T(CFG_APPLICATION), "secret"));
	assert_false(cfg_is_write_only(T(CFG_PERSON), "userName"));
	assert_false(cfg_is_write_only(T(CFG_PERSON), "secret"));
	assert_false(cfg_is_write_only(T(CFG_SKILL), "password"));

	o = valid(CFG_PERSON, full[CFG_PERSON]);
	p = cfg_public(T(CFG_PERSON), o);
	assert_null(json_object_get(p, "password"));
	assert_string_equal(str(o, "password"), "s3cret");	/* a copy */
	json_object_del(o, "password");
	assert_true(json_equal(o, p));
	json_decref(p);
	json_decref(o);

	o = valid(CFG_APPLICATION, full[CFG_APPLICATION]);
	p = cfg_public(T(CFG_APPLICATION), o);
	assert_null(json_object_get(p, "secret"));
	assert_non_null(json_object_get(p, "options"));
	json_decref(p);
	json_decref(o);

	/* null keeps: it tells the worker to clear the secret */
	o = valid(CFG_PERSON, "{'userName': 'a', 'password': null}");
	assert_true(json_is_null(json_object_get(o, "password")));
	p = cfg_public(T(CFG_PERSON), o);
	assert_null(json_object_get(p, "password"));
	json_decref(p);
	json_decref(o);
}

/*
 * Merge patch (RFC 7396 appendix A, and what PATCH relies on).
 */

static void
test_merge_patch(void **state)
{
	static const char *const cases[][3] = {
		{ "{'a': 'b'}", "{'a': 'c'}", "{'a': 'c'}" },
		{ "{'a': 'b'}", "{'b': 'c'}", "{'a': 'b', 'b': 'c'}" },
		{ "{'a': 'b'}", "{'a': null}", "{}" },
		{ "{'a': 'b', 'b': 'c'}", "{'a': null}", "{'b': 'c'}" },
		{ "{'a': ['b']}", "{'a': 'c'}", "{'a': 'c'}" },
		{ "{'a': 'c'}", "{'a': ['b']}", "{'a': ['b']}" },
		{ "{'a': {'b': 'c'}}", "{'a': {'b': 'd', 'c': null}}",
		    "{'a': {'b': 'd'}}" },
		{ "{'a': [{'b': 'c'}]}", "{'a': [1]}", "{'a': [1]}" },
		{ "['a', 'b']", "{'a': 'c'}", "{'a': 'c'}" },
		{ "{'e': null}", "{'a': 1}", "{'e': null, 'a': 1}" },
		{ "{}", "{'a': {'bb': {'ccc': null}}}", "{'a': {'bb': {}}}" },
		{ "{'a': 'x'}", "{'a': {'b': null, 'c': 1}}",
		    "{'a': {'c': 1}}" },
		/* a person: skills replaced whole, properties merged */
		{ "{'userName': 'j', 'skills': [{'skill': 1, 'level': 1}],"
		    " 'userProperties': {'s': {'a': 1, 'b': 2}}}",
		  "{'skills': [], 'userProperties': {'s': {'a': null,"
		    " 'c': 3}, 't': {}}}",
		  "{'userName': 'j', 'skills': [],"
		    " 'userProperties': {'s': {'b': 2, 'c': 3}, 't': {}}}" },
	};
	struct cfg_error	 err;
	json_t			*cur, *patch, *want, *got, *before;
	size_t			 i;

	for (i = 0; i < NELEM(cases); i++) {
		cur = J(cases[i][0]);
		patch = J(cases[i][1]);
		want = J(cases[i][2]);
		before = json_deep_copy(cur);
		got = cfg_merge_patch(cur, patch, &err);
		assert_non_null(got);
		if (!json_equal(got, want))
			fail_msg("case %zu: %s", i, json_dumps(got, 0));
		assert_true(json_equal(cur, before));	/* untouched */
		/* no sharing: changing the result leaves the inputs alone */
		json_object_clear(got);
		assert_true(json_equal(cur, before));
		json_decref(got);
		json_decref(before);
		json_decref(want);
		json_decref(patch);
		json_decref(cur);
	}
	cur = J("{'a': 1}");
	patch = J("['a']");
	assert_null(cfg_merge_patch(cur, patch, &err));
	assert_int_equal(err.status, 400);
	assert_string_equal(err.code, "WrongType");
	json_decref(patch);
	patch = J("null");
	assert_null(cfg_merge_patch(cur, patch, NULL));
	json_decref(patch);
	json_decref(cur);
}

static void
test_merge_then_validate(void **state)
{
	struct cfg_error	 err;
	json_t			*cur, *patch, *got;

	/* PATCH flow: merge onto the public object, then validate */
	cur = valid(CFG_PERSON, full[CFG_PERSON]);
	json_object_set_new(cur, "dbid", json_integer(40));
	json_object_set_new(cur, "version", json_integer(2));
	patch = J("{'place': null, 'firstName': null, 'isAgent': false}");
	got = cfg_merge_patch(cur, patch, &err);
	assert_int_equal(cfg_validate(T(CFG_PERSON), got, 0, 40, 2, &err), 0);
	assert_true(json_is_null(json_object_get(got, "place")));
	assert_null(json_object_get(got, "firstName"));
	json_decref(got);
	json_decref(patch);

	/* a stale version in the patch is a conflict */
	patch = J("{'version': 1, 'lastName': 'Roe'}");
	got = cfg_merge_patch(cur, patch, &err);
	assert_int_equal(cfg_validate(T(CFG_PERSON), got, 0, 40, 2, &err), -1);
	assert_int_equal(err.status, 409);
	json_decref(got);
	json_decref(patch);
	json_decref(cur);
}

/*
 * References.
 */

struct seen {
	char	buf[1024];
};

/* collect - one "path>Kind:dbid " per reference */
static void
collect(const char *field, enum cfg_kind target, json_int_t dbid, void *arg)
{
	struct seen	*s = arg;
	size_t		 n = strlen(s->buf);

	snprintf(s->buf + n, sizeof(s->buf) - n, "%s>%s:%lld ", field,
	    cfg_type_name(T(target)), (long long)dbid);
}

/* refs_of - the references of an object, as a string */
static void
refs_are(enum cfg_kind k, const char *json, const char *want)
{
	struct seen	 s = { "" };
	json_t		*o = valid(k, json);

	cfg_refs(T(k), o, collect, &s);
	assert_string_equal(s.buf, want);
	json_decref(o);
}

static void
test_refs(void **state)
{
	struct seen	 s = { "" };
	json_t		*o;

	refs_are(CFG_PERSON, full[CFG_PERSON], "folder>Folder:9 "
	    "skills[0].skill>Skill:5 skills[1].skill>Skill:6 "
	    "agentLogins[0].agentLogin>AgentLogin:7 place>Place:8 ");
	refs_are(CFG_PERSON, minimal[CFG_PERSON], "");
	refs_are(CFG_PLACE, full[CFG_PLACE], "folder>Folder:9 dns[0]>DN:1 "
	    "dns[1]>DN:2 dns[2]>DN:3 ");
	refs_are(CFG_AGENT_GROUP, full[CFG_AGENT_GROUP], "folder>Folder:9 "
	    "members[0]>Person:1 members[1]>Person:2 "
	    "supervisors[0]>Person:2 ");
	refs_are(CFG_CAMPAIGN_GROUP, full[CFG_CAMPAIGN_GROUP],
	    "folder>Folder:9 campaign>Campaign:3 group>AgentGroup:4 "
	    "origDN>DN:7 ivrDN>DN:8 ");
	refs_are(CFG_CALLING_LIST, full[CFG_CALLING_LIST], "folder>Folder:9 "
	    "format>Format:5 treatments[0]>Treatment:1 "
	    "treatments[1]>Treatment:2 timeZone>TimeZone:3 ");
	refs_are(CFG_ACCESS_GROUP, full[CFG_ACCESS_GROUP], "folder>Folder:9 "
	    "members[0]>Person:1 applications[0]>Application:2 "
	    "permissions[1].dbid>Person:7 ");
	refs_are(CFG_CAMPAIGN, full[CFG_CAMPAIGN], "folder>Folder:9 "
	    "callingLists[0].callingList>CallingList:6 ");
	refs_are(CFG_FOLDER, full[CFG_FOLDER], "parent>Folder:2 ");
	refs_are(CFG_DN, full[CFG_DN], "folder>Folder:9 switch>Switch:12 "
	    "virtualQueue>DN:9 routeAgentGroup>AgentGroup:10 "
	    "routePlaceGroup>PlaceGroup:11 ");

	/* garbage is skipped, not followed */
	o = J("{'place': 'x', 'skills': [1, {'skill': -4}, {'skill': 2}],"
	    " 'agentLogins': {'agentLogin': 3}}");
	cfg_refs(T(CFG_PERSON), o, collect, &s);
	assert_string_equal(s.buf, "skills[2].skill>Skill:2 ");
	json_decref(o);
}

/* unref - cut, expecting n removals and then the object want */
static void
unref(enum cfg_kind k, const char *json, enum cfg_kind target,
    json_int_t dbid, int n, const char *want)
{
	struct cfg_error	 err;
	json_t			*o = valid(k, json), *w = J(want);
	json_t			*expect = json_deep_copy(o);

	json_object_update(expect, w);
	assert_int_equal(cfg_unref(T(k), o, target, dbid, &err), n);
	if (!json_equal(o, expect))
		fail_msg("unref: %s", json_dumps(o, JSON_SORT_KEYS));
	/* the result is still a valid object */
	assert_int_equal(cfg_validate(T(k), o, 1, 0, 0, &err), 0);
	json_decref(expect);
	json_decref(w);
	json_decref(o);
}

static void
test_unref(void **state)
{
	unref(CFG_PERSON, full[CFG_PERSON], CFG_SKILL, 5, 1,
	    "{'skills': [{'skill': 6, 'level': 10}]}");
	unref(CFG_PERSON, full[CFG_PERSON], CFG_PLACE, 8, 1,
	    "{'place': null}");
	unref(CFG_PERSON, full[CFG_PERSON], CFG_AGENT_LOGIN, 7, 1,
	    "{'agentLogins': []}");
	unref(CFG_PERSON, full[CFG_PERSON], CFG_FOLDER, 9, 1,
	    "{'folder': null}");
	/* the same dbid of another kind is not a reference */
	unref(CFG_PERSON, full[CFG_PERSON], CFG_PLACE, 5, 0, "{}");
	unref(CFG_PERSON, full[CFG_PERSON], CFG_SKILL, 8, 0, "{}");
	unref(CFG_AGENT_GROUP, full[CFG_AGENT_GROUP], CFG_PERSON, 2, 2,
	    "{'members': [1], 'supervisors': []}");
	unref(CFG_PLACE, full[CFG_PLACE], CFG_DN, 2, 1, "{'dns': [1, 3]}");
	unref(CFG_CALLING_LIST, full[CFG_CALLING_LIST], CFG_TREATMENT, 1, 1,
	    "{'treatments': [2]}");
	unref(CFG_CALLING_LIST, full[CFG_CALLING_LIST], CFG_TIME_ZONE, 3, 1,
	    "{'timeZone': null}");
	unref(CFG_CAMPAIGN, full[CFG_CAMPAIGN], CFG_CALLING_LIST, 6, 1,
	    "{'callingLists': []}");
	unref(CFG_CAMPAIGN_GROUP, full[CFG_CAMPAIGN_GROUP], CFG_DN, 7, 1,
	    "{'origDN': null}");
	unref(CFG_FOLDER, full[CFG_FOLDER], CFG_FOLDER, 2, 1,
	    "{'parent': null}");
	/* a permission on a deleted object goes, not its restriction */
	unref(CFG_ACCESS_GROUP, full[CFG_ACCESS_GROUP], CFG_PERSON, 7, 1,
	    "{'permissions': [{'collection': 'persons', 'rights': ['read',"
	    " 'update'], 'dbid': null}, {'collection': 'dns', 'rights':"
	    " ['read', 'create', 'update', 'delete'], 'dbid': null}]}");
	unref(CFG_ACCESS_GROUP, full[CFG_ACCESS_GROUP], CFG_DN, 7, 0, "{}");
}

/* refused - a required reference: -1, err names it, obj unchanged */
static void
refused(enum cfg_kind k, const char *json, enum cfg_kind target,
    json_int_t dbid, const char *field)
{
	struct cfg_error	 err;
	json_t			*o = valid(k, json), *before = json_deep_copy(o);

	assert_int_equal(cfg_unref(T(k), o, target, dbid, &err), -1);
	assert_int_equal(err.status, 409);
	assert_string_equal(err.code, "RequiredRef");
	assert_string_equal(err.field, field);
	assert_true(json_equal(o, before));
	json_decref(before);
	json_decref(o);
}

static void
test_unref_required(void **state)
{
	json_t	*o;

	refused(CFG_DN, full[CFG_DN], CFG_SWITCH, 12, "switch");
	refused(CFG_AGENT_LOGIN, full[CFG_AGENT_LOGIN], CFG_SWITCH, 12,
	    "switch");
	refused(CFG_CAMPAIGN_GROUP, full[CFG_CAMPAIGN_GROUP], CFG_CAMPAIGN, 3,
	    "campaign");
	refused(CFG_CAMPAIGN_GROUP, full[CFG_CAMPAIGN_GROUP], CFG_AGENT_GROUP,
	    4, "group");
	refused(CFG_CALLING_LIST, full[CFG_CALLING_LIST], CFG_FORMAT, 5,
	    "format");
	/* the refusal comes first: the folder ref was not cut either */
	o = valid(CFG_DN, "{'number': '1', 'type': 'Trunk', 'switch': 9,"
	    " 'folder': 9}");
	assert_int_equal(cfg_unref(T(CFG_DN), o, CFG_SWITCH, 9, NULL), -1);
	assert_int_equal(num(o, "folder"), 9);
	json_decref(o);
}

/*
 * Keys and filters.
 */

static void
test_keys(void **state)
{
	static const struct {
		enum cfg_kind	 kind;
		const char	*json;
		const char	*key;
	} cases[] = {
		{ CFG_PERSON, "{'userName': 'jdoe', 'name': 'John'}", "jdoe" },
		{ CFG_DN, "{'number': '5001', 'switch': 12}", "12/5001" },
		{ CFG_AGENT_LOGIN, "{'loginCode': 'a/b', 'switch': 3}",
		    "3/a/b" },
		{ CFG_SKILL, "{'name': 'French'}", "French" },
		{ CFG_FIELD, "{'name': 'phone'}", "phone" },
		{ CFG_PERSON, "{'name': 'John'}", NULL },
		{ CFG_DN, "{'number': '5001'}", NULL },
		{ CFG_DN, "{'number': '5001', 'switch': '12'}", NULL },
		{ CFG_SKILL, "{'name': 3}", NULL },
		{ CFG_SKILL, "[]", NULL },
	};
	json_t	*o;
	char	*k;
	size_t	 i;

	for (i = 0; i < NELEM(cases); i++) {
		o = J(cases[i].json);
		k = cfg_key(T(cases[i].kind), o);
		if (cases[i].key == NULL)
			assert_null(k);
		else
			assert_string_equal(k, cases[i].key);
		free(k);
		json_decref(o);
	}
}

static void
test_filters_allowed(void **state)
{
	static const char *const person[] = { "name", "state", "folder",
	    "userName", "employeeId", "isAgent", "skill", "agentLogin",
	    "place", "emailAddress" };
	size_t	i;

	for (i = 0; i < NELEM(person); i++)
		assert_true(cfg_filter_allowed(T(CFG_PERSON), person[i]));
	assert_false(cfg_filter_allowed(T(CFG_PERSON), "password"));
	assert_false(cfg_filter_allowed(T(CFG_PERSON), "switch"));
	assert_false(cfg_filter_allowed(T(CFG_PERSON), "limit"));
	assert_false(cfg_filter_allowed(T(CFG_PERSON), ""));
	assert_false(cfg_filter_allowed(T(CFG_PERSON), NULL));
	assert_true(cfg_filter_allowed(T(CFG_DN), "switch"));
	assert_true(cfg_filter_allowed(T(CFG_DN), "number"));
	assert_true(cfg_filter_allowed(T(CFG_DN), "type"));
	assert_true(cfg_filter_allowed(T(CFG_AGENT_LOGIN), "loginCode"));
	assert_true(cfg_filter_allowed(T(CFG_AGENT_GROUP), "member"));
	assert_false(cfg_filter_allowed(T(CFG_SKILL), "type"));
	assert_false(cfg_filter_allowed(T(CFG_APPLICATION), "secret"));
}

static void
test_filters_check(void **state)
{
	static const struct {
		enum cfg_kind	 kind;
		const char	*key, *value, *code;
	} cases[] = {
		{ CFG_PERSON, "isAgent", "true", NULL },
		{ CFG_PERSON, "isAgent", "false", NULL },
		{ CFG_PERSON, "isAgent", "1", "BadFilter" },
		{ CFG_PERSON, "isAgent", "maybe", "BadFilter" },
		{ CFG_PERSON, "skill", "5", NULL },
		{ CFG_PERSON, "skill", "abc", "BadFilter" },
		{ CFG_PERSON, "skill", "5x", "BadFilter" },
		{ CFG_PERSON, "skill", "0", "BadFilter" },
		{ CFG_PERSON, "skill", " 5", "BadFilter" },
		{ CFG_PERSON, "skill", "99999999999999999999", "BadFilter" },
		{ CFG_PERSON, "place", "null", NULL },
		{ CFG_PERSON, "employeeId", "E'; drop table x; --", NULL },
		{ CFG_PERSON, "state", "enabled", NULL },
		{ CFG_PERSON, "state", "on", "BadFilter" },
		{ CFG_PERSON, "bogus", "1", "UnknownFilter" },
		{ CFG_DN, "switch", "null", "BadFilter" },	/* required */
		{ CFG_DN, "type", "Phone", "BadFilter" },
		{ CFG_DN, "type", "RoutingPoint", NULL },
		{ CFG_DN, "number", "5001", NULL },
		{ CFG_PERSON, "name", NULL, "BadFilter" },
	};
	struct cfg_error	err;
	size_t			i;
	int			r;

	for (i = 0; i < NELEM(cases); i++) {
		r = cfg_filter_check(T(cases[i].kind), cases[i].key,
		    cases[i].value, &err);
		if (cases[i].code == NULL) {
			assert_int_equal(r, 0);
			continue;
		}
		assert_int_equal(r, -1);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.code, cases[i].code);
		assert_string_equal(err.field, cases[i].key);
	}
	cfg_filter_check(T(CFG_PERSON), "isAgent", "x", &err);
	assert_string_equal(err.message, "isAgent: must be true or false");
	cfg_filter_check(T(CFG_PERSON), "place", "x", &err);
	assert_non_null(strstr(err.message, "null or a Place dbid"));
}

static void
test_filters_match(void **state)
{
	static const struct {
		const char	*key, *value;
		int		 match;
	} cases[] = {
		{ "name", "John Doe", 1 }, { "name", "John", 0 },
		{ "name", "john doe", 0 }, { "userName", "jdoe", 1 },
		{ "state", "disabled", 1 }, { "state", "enabled", 0 },
		{ "folder", "9", 1 }, { "folder", "null", 0 },
		{ "isAgent", "true", 1 }, { "isAgent", "false", 0 },
		{ "skill", "5", 1 }, { "skill", "6", 1 }, { "skill", "7", 0 },
		{ "agentLogin", "7", 1 }, { "agentLogin", "5", 0 },
		{ "place", "8", 1 }, { "place", "null", 0 },
		{ "employeeId", "E042", 1 }, { "employeeId", "E04", 0 },
		{ "emailAddress", "jdoe@example.com", 1 },
		{ "isAgent", "bad", 0 }, { "bogus", "1", 0 },
	};
	json_t	*o = valid(CFG_PERSON, full[CFG_PERSON]), *m;
	size_t	 i;

	for (i = 0; i < NELEM(cases); i++)
		if (cfg_filter_match(T(CFG_PERSON), o, cases[i].key,
		    cases[i].value) != cases[i].match)
			fail_msg("%s=%s", cases[i].key, cases[i].value);
	json_decref(o);

	m = valid(CFG_PERSON, minimal[CFG_PERSON]);
	assert_true(cfg_filter_match(T(CFG_PERSON), m, "folder", "null"));
	assert_true(cfg_filter_match(T(CFG_PERSON), m, "place", "null"));
	assert_true(cfg_filter_match(T(CFG_PERSON), m, "isAgent", "false"));
	assert_false(cfg_filter_match(T(CFG_PERSON), m, "skill", "5"));
	assert_false(cfg_filter_match(T(CFG_PERSON), m, "employeeId", ""));
	json_decref(m);

	o = valid(CFG_DN, full[CFG_DN]);
	assert_true(cfg_filter_match(T(CFG_DN), o, "switch", "12"));
	assert_false(cfg_filter_match(T(CFG_DN), o, "switch", "1"));
	assert_true(cfg_filter_match(T(CFG_DN), o, "type", "ACDQueue"));
	assert_true(cfg_filter_match(T(CFG_DN), o, "number", "+33*1#"));
	json_decref(o);
	o = valid(CFG_AGENT_GROUP, full[CFG_AGENT_GROUP]);
	assert_true(cfg_filter_match(T(CFG_AGENT_GROUP), o, "member", "2"));
	assert_false(cfg_filter_match(T(CFG_AGENT_GROUP), o, "member", "3"));
	assert_true(cfg_filter_match(T(CFG_AGENT_GROUP), o, "supervisor",
	    "2"));
	assert_false(cfg_filter_match(T(CFG_AGENT_GROUP), o, "supervisor",
	    "1"));
	json_decref(o);
	/* not an object: no match, no crash */
	o = J("[1]");
	assert_false(cfg_filter_match(T(CFG_PERSON), o, "skill", "1"));
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_table),
		cmocka_unit_test(test_tables_coherent),
		cmocka_unit_test(test_type_refers),
		cmocka_unit_test(test_minimal_every_type),
		cmocka_unit_test(test_full_every_type),
		cmocka_unit_test(test_defaults_person),
		cmocka_unit_test(test_defaults_key_names),
		cmocka_unit_test(test_defaults_outbound),
		cmocka_unit_test(test_errors_create),
		cmocka_unit_test(test_errors_update),
		cmocka_unit_test(test_errors_strings),
		cmocka_unit_test(test_error_long_path),
		cmocka_unit_test(test_big_list),
		cmocka_unit_test(test_write_only),
		cmocka_unit_test(test_merge_patch),
		cmocka_unit_test(test_merge_then_validate),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_unref),
		cmocka_unit_test(test_unref_required),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_filters_allowed),
		cmocka_unit_test(test_filters_check),
		cmocka_unit_test(test_filters_match),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
