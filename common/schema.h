/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema - the configuration object model every worker that caches
 * configuration shares: one table of object types and their fields, and
 * the pure functions every cache needs over it: a type by kind, name or
 * collection, the references an object holds, its natural key, whether a
 * field is write-only.
 *
 * The table rows themselves (struct cfg_type, struct cfg_field) are here
 * for the config worker's validator (workers/config/validate.h), which
 * checks a client's object against them; other workers only look types
 * up.  No I/O and no global state.  docs/config-api.md, "Object types",
 * documents every type and field.
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

#define CFG_LEN_NAME	255	/* names, keys and most strings, in bytes */
#define CFG_LEN_TEXT	4096	/* descriptions, expressions, option values */
#define CFG_LEN_SECRET	1024	/* passwords, secrets, before hashing */
#define CFG_LEN_DIAL	64	/* DN numbers, caller ids */
#define CFG_LEN_IDENT	63	/* SQL identifiers (NAMEDATALEN - 1) */
#define CFG_LEN_TZ	64
#define CFG_DAY_LAST	86399	/* seconds since midnight */
#define CFG_PATH_LEN	128	/* a JSON path: "skills[1].level" */

enum cfg_ftype {
	CFG_FT_ID,		/* dbid, version: server-managed integers */
	CFG_FT_STRING,
	CFG_FT_INT,
	CFG_FT_BOOL,
	CFG_FT_ENUM,
	CFG_FT_ENUMS,		/* array of distinct enum values, >= min */
	CFG_FT_REF,		/* dbid of an object of kind target, or null */
	CFG_FT_REFS,		/* array of distinct references */
	CFG_FT_OPTIONS,		/* section -> key -> string | number */
	CFG_FT_LIST,		/* array of objects, each of fields sub */
};

#define CFG_F_REQ	0x01	/* present and not null */
#define CFG_F_WO	0x02	/* write-only: never output */
#define CFG_F_DEF	0x04	/* idef or sdef is the default */
#define CFG_F_DYN	0x08	/* CFG_FT_REF: sibling "collection" names the kind */

/* What a string must look like (validate.c holds the checks). */
enum cfg_shape {
	CFG_SH_ANY = 0, CFG_SH_LINE, CFG_SH_NAME, CFG_SH_TEXT, CFG_SH_DIAL,
	CFG_SH_IDENT, CFG_SH_TZ, CFG_SH_EMAIL, CFG_SH_COLLECTION,
	CFG_SH_SKILLS	/* a skill expression (common/expr.h) */
};

/* A rule on the entries of a list beyond their fields (validate.c). */
enum cfg_rule {
	CFG_RULE_NONE = 0,
	CFG_RULE_PERMISSION,	/* one per collection and object; create only
				   on a whole collection */
};

/* One field of a type, or of the entries of a list field. */
struct cfg_field {
	const char		*name;
	enum cfg_ftype		 type;
	unsigned		 flags;
	json_int_t		 min, max;	/* integer range, string bytes */
	const char *const	*values;	/* CFG_FT_ENUM, CFG_FT_ENUMS */
	enum cfg_kind		 target;	/* CFG_FT_REF, CFG_FT_REFS */
	enum cfg_shape		 shape;		/* CFG_FT_STRING */
	const struct cfg_field	*sub;		/* CFG_FT_LIST entries */
	const char		*uniq;		/* CFG_FT_LIST: the ref keying
						   an entry */
	enum cfg_rule		 rule;		/* CFG_FT_LIST */
	json_int_t		 idef;
	const char		*sdef;
};

/* One row of the type table. */
struct cfg_type {
	enum cfg_kind		 kind;
	const char		*name;
	const char		*collection;
	const struct cfg_field	*fields;	/* ends with a NULL name */
	const char		*key;		/* natural key; default of name */
	const char		*scope;		/* key unique within this ref */
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

void	 cfg_refs(const struct cfg_type *, const json_t *, cfg_ref_cb *,
	    void *arg);
/* The natural key, unique per type: "jdoe", "12/5001"; malloc'ed, or
 * NULL when obj lacks it. */
char	*cfg_key(const struct cfg_type *, const json_t *);

int	 cfg_is_write_only(const struct cfg_type *, const char *field);

/* Shared with the validator: JSON paths, fields, references. */
void	 cfg_path_key(char *dst, const char *parent, const char *key,
	    size_t len);			/* parent.key; dst may be parent */
void	 cfg_path_idx(char *dst, const char *parent, size_t i); /* [i] */
const struct cfg_field *cfg_field_find(const struct cfg_field *,
	    const char *key, size_t len);
/* v is a valid dbid: 0 and *id, else -1 */
int	 cfg_ref_id(const json_t *v, json_int_t *id);
/* The kind reference field f points to in obj: 0, else -1 */
int	 cfg_ref_target(const struct cfg_field *f, const json_t *obj,
	    enum cfg_kind *kind);

#endif
