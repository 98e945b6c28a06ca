/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache - a worker's in-memory copy of the tenant's configuration: every
 * object by dbid, by natural key, and per type in dbid order for lists.
 * The config worker serves reads from it; the events worker looks DNs,
 * agent logins and access groups up in it.
 * An object is kept as the text it is served as (serialized once, when
 * it arrives), with what the hot paths need beside it: its version, state,
 * natural key and outgoing references.  The JSON tree is kept only for
 * the few small types read on every request (access groups, folders, the
 * tenant); any other is parsed when asked for (cobj_json).  A person
 * costs about 500 bytes instead of 3 KB as a tree.  Fed only by the change
 * follower (common/cfgfollow.c), in revision order.  One per process.
 */
#ifndef TENANTD_CACHE_H
#define TENANTD_CACHE_H

#include <stddef.h>

#include <jansson.h>

struct cobj {
	json_int_t	 dbid;
	json_int_t	 version;
	int		 kind;		/* enum cfg_kind */
	int		 enabled;	/* "state": "enabled" */
	char		*key;		/* natural key, or NULL */
	json_int_t	*refs;		/* dbids it refers to */
	size_t		 nrefs;
	json_t		*tree;		/* kept for the few types above */
	size_t		 len;
	char		 text[];	/* the object serialized, no secrets */
};

void		 cache_init(int nkinds);
void		 cache_reset(void);
void		 cache_free(void);
struct cfg_change;

/*
 * One object of a snapshot, or one change, as the follower hands it over
 * (common/cfgfollow.h): put or deleted.  -1 for a type this version does
 * not know (logged, ignored).  Every worker that caches configuration
 * feeds its cache with this.
 */
int		 cache_apply(const struct cfg_change *);
/* Insert or replace; takes the reference to obj. */
void		 cache_put(int kind, json_int_t dbid, json_t *obj);
void		 cache_del(json_int_t dbid);
const struct cobj *cache_get(json_int_t dbid);
/* The object of kind whose natural key is key. */
const struct cobj *cache_find(int kind, const char *key);
/* The objects of a kind in ascending dbid order. */
const struct cobj *const *cache_list(int kind, size_t *n);
/* Index of the first object of kind whose dbid is greater than after. */
size_t		 cache_after(int kind, json_int_t after);
size_t		 cache_size(void);
/* The object as a JSON tree: a new reference the caller must release. */
json_t		*cobj_json(const struct cobj *);
/* One top-level field (a new reference), or NULL when o lacks it. */
json_t		*cobj_get(const struct cobj *, const char *field);
/* An integer field, or dflt when o lacks it (or it is no integer). */
json_int_t	 cobj_int(const struct cobj *, const char *field,
		    json_int_t dflt);
/* 1 if o refers to dbid. */
int		 cobj_refers(const struct cobj *, json_int_t dbid);

#endif
