/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seen - the ids of the last N events delivered, to drop an event that
 * comes a second time (the same event written to two regions).  A fixed
 * ring and an open-addressing index over it: the oldest id is forgotten
 * when a new one comes and the ring is full.
 *
 * An id is kept as a 128-bit digest, not as text: the memory is fixed
 * when the set is made (24 bytes an entry, ids of any length), nothing is
 * allocated per event, and a set made with prefault touches all of it at
 * once, so that a worker's resident size does not creep for the hour or
 * more it takes to fill the ring.  Two ids are taken for one only if both
 * 64-bit halves of their digests agree (with N = 65,536, about one event
 * in 2^112).
 */
#ifndef TENANTD_SEEN_H
#define TENANTD_SEEN_H

#include <stddef.h>

struct seen;

/* prefault: take the memory now (a long-lived set), not as it fills */
struct seen	*seen_new(size_t capacity, int prefault);
void		 seen_free(struct seen *);
/* 1 if id is new (and is now remembered), 0 if it was seen. */
int		 seen_add(struct seen *, const char *id);
int		 seen_has(const struct seen *, const char *id);

#endif
