/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate - the config worker's rules for a client's object, over the
 * type table of common/schema.h: validation and normalization, RFC 7396
 * merge patches, cutting references to an object being deleted, and the
 * list filters of GET /v1/{collection}.  Pure functions over jansson
 * values; errors come as struct cfg_error, ready for the API's error body.
 */
#ifndef TENANTD_CONFIG_VALIDATE_H
#define TENANTD_CONFIG_VALIDATE_H

#include <jansson.h>

#include "schema.h"

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
	char	field[CFG_PATH_LEN];
	char	message[256];
};

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

/*
 * Remove every reference to (target, dbid): list entries are dropped,
 * optional references set to null.  Returns how many went, or -1 (409,
 * RequiredRef) leaving obj untouched when a required reference points
 * there: the referrer must be deleted too, or the delete refused.
 */
int	 cfg_unref(const struct cfg_type *, json_t *, enum cfg_kind target,
	    json_int_t dbid, struct cfg_error *);

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
