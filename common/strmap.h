/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strmap - a map from strings to pointers: chained hashing, doubled when
 * as many entries as buckets; an entry keeps its key's hash, compared
 * before the key.  The map copies keys; values are the
 * caller's.
 */
#ifndef TENANTD_STRMAP_H
#define TENANTD_STRMAP_H

#include <stddef.h>

struct strmap_entry {
	void			*val;
	struct strmap_entry	*next;
	size_t			 hash;
	char			 key[];
};

struct strmap {
	struct strmap_entry	**b;
	size_t			  nb;
	size_t			  n;
};

void	*strmap_get(const struct strmap *, const char *key);
/* Insert or replace; the value replaced, or NULL. */
void	*strmap_put(struct strmap *, const char *key, void *val);
/* Remove; the value it had, or NULL. */
void	*strmap_del(struct strmap *, const char *key);
/* f may remove the entry it is given, and no other. */
void	 strmap_each(const struct strmap *, void (*f)(const char *, void *,
	    void *), void *arg);
/* Forget every entry (values untouched). */
void	 strmap_clear(struct strmap *);

#endif
