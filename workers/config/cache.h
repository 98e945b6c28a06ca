/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache - the config worker's in-memory copy of the whole tenant: every
 * object by dbid, and per type in dbid order for lists.  Each object is
 * serialized once, when it arrives, so reads copy bytes and never encode.
 * Fed only by the change follower (common/cfgfollow.c), in revision order.
 */
#ifndef TENANTD_CONFIG_CACHE_H
#define TENANTD_CONFIG_CACHE_H

#include <stddef.h>

#include <jansson.h>

struct cobj {
	json_int_t	 dbid;
	int		 kind;		/* enum cfg_kind */
	json_int_t	 version;
	json_t		*obj;		/* as stored: no secrets */
	char		*text;		/* obj serialized */
	size_t		 len;
};

void		 cache_init(int nkinds);
void		 cache_reset(void);
void		 cache_free(void);
/* Insert or replace; takes a reference to obj. */
void		 cache_put(int kind, json_int_t dbid, json_t *obj);
void		 cache_del(json_int_t dbid);
const struct cobj *cache_get(json_int_t dbid);
/* The objects of a kind in ascending dbid order. */
const struct cobj *const *cache_list(int kind, size_t *n);
/* Index of the first object of kind whose dbid is greater than after. */
size_t		 cache_after(int kind, json_int_t after);
size_t		 cache_size(void);

#endif
