/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema - the config worker's object model: one table of object types and
 * their fields, and pure functions over jansson values that validate and
 * normalize an object, merge-patch it, list and cut its references, give
 * its natural key, strip its write-only fields and match list filters.
 *
 * No I/O and no global state.  What needs the other objects (a name being
 * unique, a reference pointing at an object that exists, folder cycles) is
 * the store's job; cfg_key and cfg_refs give it what it needs to check.
 * docs/config-api.md, "Object types", documents every type and field.
 */
#ifndef TENANTD_CFG_SCHEMA_H
#define TENANTD_CFG_SCHEMA_H

#include <jansson.h>

enum cfg_kind {
	CFG_TENANT = 0,
	CFG_PERSON,
	CFG_AGENT_LOGIN,
	CFG_SWITCH,
	CFG_DN,
	CFG_PLACE,
	CFG_SKILL,
	CFG_AGENT_GROUP,
	CFG_PLACE_GROUP,
	CFG_DN_GROUP,
	CFG_APPLICATION,
	CFG_TRANSACTION,
	CFG_ACCESS_GROUP,
	CFG_FOLDER,
	CFG_TIME_ZONE,
	CFG_CAMPAIGN,
	CFG_CAMPAIGN_GROUP,
	CFG_CALLING_LIST,
	CFG_TREATMENT,
	CFG_FORMAT,
	CFG_FIELD,
	CFG_NTYPES
};

/* dbids (and references) are integers from 1 to 2^53 - 1: JSON-safe */
#define CFG_DBID_MAX	9007199254740991LL

struct cfg_type;

/*
 * A validation failure, ready for the API's error body:
 * {"error": code, "message": message, "field": field}.
 *
 *   status code             when
 *   400    WrongType        the body (or a merge patch) is not an object
 *   422    UnknownField     a key the type does not have
 *   422    WrongType        a value of the wrong JSON type
 *   422    Missing          a required field is absent or null
 *   422    OutOfRange       an integer out of range, a string too long
 *   422    BadValue         not an allowed enum value, a bad shape, a
 *                           rule between fields
 *   422    ReadOnly         dbid or version on create, another dbid
 *   422    Duplicate        the same entry twice in a list
 *   409    VersionMismatch  version in the body is not the current one
 *   409    RequiredRef      cfg_unref: a required reference (field)
 *   400    UnknownFilter    cfg_filter_check: key not a filter of the type
 *   400    BadFilter        cfg_filter_check: value of the wrong form
 *
 * field is the JSON path ("skills[1].level", "userProperties.sip.port",
 * "" for the whole body); message starts with it: "skills[1].level: must
 * be an integer from 0 to 10".
 */
struct cfg_error {
	int	status;
	char	code[32];
	char	field[128];
	char	message[256];
};

/* Called once per reference: its JSON path, the kind it points to, dbid. */
typedef void	cfg_ref_cb(const char *field, enum cfg_kind target,
		    json_int_t dbid, void *arg);

/* The type table: NULL for an unknown kind, collection or name. */
const struct cfg_type	*cfg_type_at(enum cfg_kind);
const struct cfg_type	*cfg_type_by_collection(const char *, size_t);
const struct cfg_type	*cfg_type_by_name(const char *, size_t);
enum cfg_kind		 cfg_type_kind(const struct cfg_type *);
const char		*cfg_type_name(const struct cfg_type *);	/* "DN" */
const char		*cfg_type_collection(const struct cfg_type *);	/* "dns" */
/* 1 if objects of the type can refer to objects of kind target. */
int			 cfg_type_refers(const struct cfg_type *,
			    enum cfg_kind target);

/*
 * Check obj, a whole object as a client sent it for a create (creating
 * set) or a full replace of object dbid at version, and normalize it in
 * place: defaults added, null optional fields removed (references and
 * write-only fields keep null), the key-default name filled.  Returns 0,
 * or -1 with err (NULL allowed); on -1 obj may hold added defaults.
 */
int	 cfg_validate(const struct cfg_type *, json_t *obj, int creating,
	    json_int_t dbid, json_int_t version, struct cfg_error *);

/* RFC 7396: patch applied to a copy of current; NULL (400) if patch is
 * not an object.  Validate the result. */
json_t	*cfg_merge_patch(const json_t *current, const json_t *patch,
	    struct cfg_error *);

void	 cfg_refs(const struct cfg_type *, const json_t *, cfg_ref_cb *,
	    void *arg);
/*
 * Remove every reference to (target, dbid): list entries are dropped,
 * optional references set to null.  Returns how many went, or -1 (409,
 * RequiredRef) leaving obj untouched when a required reference points
 * there: the referrer must be deleted too, or the delete refused.
 */
int	 cfg_unref(const struct cfg_type *, json_t *, enum cfg_kind target,
	    json_int_t dbid, struct cfg_error *);

/* The natural key, unique per type: "jdoe", "12/5001"; malloc'ed, or
 * NULL when obj lacks it. */
char	*cfg_key(const struct cfg_type *, const json_t *);

int	 cfg_is_write_only(const struct cfg_type *, const char *field);
/* A deep copy of obj without its write-only fields. */
json_t	*cfg_public(const struct cfg_type *, const json_t *);

/* GET list filters: ?key=value, values as sent in the query string. */
int	 cfg_filter_allowed(const struct cfg_type *, const char *key);
int	 cfg_filter_check(const struct cfg_type *, const char *key,
	    const char *value, struct cfg_error *);
int	 cfg_filter_match(const struct cfg_type *, const json_t *,
	    const char *key, const char *value);
/* The same, given only the value of the field the filter looks at
 * (cfg_filter_field; NULL when obj lacks it). */
const char *cfg_filter_field(const struct cfg_type *, const char *key);
int	 cfg_filter_match_value(const struct cfg_type *, const json_t *v,
	    const char *key, const char *value);

#endif
