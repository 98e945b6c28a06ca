/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache - an open-addressing hash of dbid -> object (linear probing,
 * backward-shift deletion, so no tombstones) and one sorted array of
 * object pointers per kind.  dbids grow, so an insert is nearly always an
 * append; a delete shifts the tail of one array.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "util.h"

struct kind_list {
	struct cobj	**v;
	size_t		  n;
	size_t		  cap;
};

static struct cobj	**slots;	/* hash table, power of two */
static size_t		  nslots;
static size_t		  count;
static struct kind_list	 *kinds;
static int		  nkinds;

static size_t
hash(json_int_t dbid)
{
	uint64_t	x = (uint64_t)dbid * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x >> 32) & (nslots - 1);
}

void
cache_init(int n)
{
	nkinds = n;
	kinds = xcalloc((size_t)n, sizeof(*kinds));
	nslots = 1024;
	slots = xcalloc(nslots, sizeof(*slots));
}

static void
cobj_free(struct cobj *o)
{
	json_decref(o->obj);
	free(o->text);
	free(o);
}

/* cache_reset - forget every object (a new snapshot follows) */
void
cache_reset(void)
{
	size_t	i;

	for (i = 0; i < nslots; i++)
		if (slots[i] != NULL) {
			cobj_free(slots[i]);
			slots[i] = NULL;
		}
	for (i = 0; i < (size_t)nkinds; i++)
		kinds[i].n = 0;
	count = 0;
}

void
cache_free(void)
{
	int	i;

	if (slots == NULL)
		return;
	cache_reset();
	for (i = 0; i < nkinds; i++)
		free(kinds[i].v);
	free(kinds);
	free(slots);
	slots = NULL;
	kinds = NULL;
}

/* find - the slot holding dbid, or the empty slot where it would go */
static size_t
find(json_int_t dbid)
{
	size_t	i = hash(dbid);

	while (slots[i] != NULL && slots[i]->dbid != dbid)
		i = (i + 1) & (nslots - 1);
	return i;
}

/* grow - double the table when it is half full */
static void
grow(void)
{
	struct cobj	**old = slots;
	size_t		  n = nslots, i;

	nslots *= 2;
	slots = xcalloc(nslots, sizeof(*slots));
	for (i = 0; i < n; i++)
		if (old[i] != NULL)
			slots[find(old[i]->dbid)] = old[i];
	free(old);
}

/* list_pos - where dbid is, or goes, in a kind's sorted array */
static size_t
list_pos(const struct kind_list *l, json_int_t dbid)
{
	size_t	lo = 0, hi = l->n, mid;

	if (l->n > 0 && l->v[l->n - 1]->dbid < dbid)
		return l->n;
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (l->v[mid]->dbid < dbid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
list_insert(struct kind_list *l, struct cobj *o)
{
	size_t	i = list_pos(l, o->dbid);

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof(*l->v));
	l->v[i] = o;
	l->n++;
}

static void
list_remove(struct kind_list *l, json_int_t dbid)
{
	size_t	i = list_pos(l, dbid);

	if (i < l->n && l->v[i]->dbid == dbid) {
		memmove(l->v + i, l->v + i + 1, (l->n - i - 1) *
		    sizeof(*l->v));
		l->n--;
	}
}

/* cache_put - insert or replace an object, serializing it once */
void
cache_put(int kind, json_int_t dbid, json_t *obj)
{
	struct cobj	*o;
	json_t		*v;
	size_t		 i;

	cache_del(dbid);
	if (2 * (count + 1) > nslots)
		grow();
	o = xcalloc(1, sizeof(*o));
	o->dbid = dbid;
	o->kind = kind;
	o->obj = obj;
	v = json_object_get(obj, "version");
	o->version = json_is_integer(v) ? json_integer_value(v) : 0;
	o->text = json_dumps(obj, JSON_COMPACT);
	if (o->text == NULL)
		fatalx("cache: cannot serialize object %lld", (long long)dbid);
	o->len = strlen(o->text);
	i = find(dbid);
	slots[i] = o;
	count++;
	list_insert(&kinds[kind], o);
}

/* cache_del - remove an object; backward shift keeps probes unbroken */
void
cache_del(json_int_t dbid)
{
	size_t		 i = find(dbid), j, k;
	struct cobj	*o = slots[i];

	if (o == NULL)
		return;
	list_remove(&kinds[o->kind], dbid);
	cobj_free(o);
	slots[i] = NULL;
	count--;
	for (j = (i + 1) & (nslots - 1); slots[j] != NULL;
	    j = (j + 1) & (nslots - 1)) {
		k = hash(slots[j]->dbid);
		/* Move j back to i unless its home lies in (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			slots[i] = slots[j];
			slots[j] = NULL;
			i = j;
		}
	}
}

const struct cobj *
cache_get(json_int_t dbid)
{
	return slots[find(dbid)];
}

const struct cobj *const *
cache_list(int kind, size_t *n)
{
	*n = kinds[kind].n;
	return (const struct cobj *const *)kinds[kind].v;
}

size_t
cache_after(int kind, json_int_t after)
{
	return list_pos(&kinds[kind], after + 1);
}

size_t
cache_size(void)
{
	return count;
}
