/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idmap - a map from non-zero 64-bit integers to pointers: open
 * addressing with linear probing, kept at most half full, backward-shift
 * deletion (no tombstones).  For ids, dbids and keys built from them,
 * where a string map would format and compare text on every lookup.
 */
#ifndef TENANTD_IDMAP_H
#define TENANTD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
	uint64_t	 key;		/* 0: empty */
	void		*val;
};

struct idmap {
	struct idmap_slot	*s;
	size_t			 cap;	/* a power of two, or 0 */
	size_t			 n;
};

void	*idmap_get(const struct idmap *, uint64_t key);
/* Insert or replace; the value replaced, or NULL.  key must not be 0. */
void	*idmap_put(struct idmap *, uint64_t key, void *val);
/* Remove; the value it had, or NULL. */
void	*idmap_del(struct idmap *, uint64_t key);
/* f may not change the map. */
void	 idmap_each(const struct idmap *, void (*f)(uint64_t, void *, void *),
	    void *arg);
/* Forget every entry (values untouched) and free the table. */
void	 idmap_clear(struct idmap *);

#endif
