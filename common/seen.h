/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seen - the ids of the last N events delivered, to drop an event that
 * comes a second time (the same event written to two regions).  A fixed
 * ring of ids and an open-addressing index over it: the oldest id is
 * forgotten when a new one comes and the ring is full.
 */
#ifndef TENANTD_SEEN_H
#define TENANTD_SEEN_H

#include <stddef.h>

struct seen;

struct seen	*seen_new(size_t capacity);
void		 seen_free(struct seen *);
/* 1 if id is new (and is now remembered), 0 if it was seen. */
int		 seen_add(struct seen *, const char *id);
int		 seen_has(const struct seen *, const char *id);

#endif
