/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache - two open-addressing hashes (linear probing, backward-shift
 * deletion, so no tombstones): dbid -> object and (kind, natural key) ->
 * object; and one sorted array of object pointers per kind.  dbids grow,
 * so an insert is nearly always an append; a delete shifts the tail of
 * one array.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cfgfollow.h"
#include "log.h"
#include "schema.h"
#include "util.h"

struct kind_list {
	struct cobj	**v;
	size_t		  n;
	size_t		  cap;
};

/* A hash of object pointers; by_key holds only objects with a key. */
struct table {
	struct cobj	**slot;		/* power of two */
	size_t		  n;
	size_t		  count;
	int		  by_key;
};

static struct table	  by_dbid = { .by_key = 0 };
static struct table	  by_key = { .by_key = 1 };
static struct kind_list	 *kinds;
static int		  nkinds;

/* Types small and read on every request: their trees stay parsed. */
static int
keeps_tree(int kind)
{
	return kind == CFG_ACCESS_GROUP || kind == CFG_FOLDER ||
	    kind == CFG_TENANT;
}

static size_t
mix(uint64_t x)
{
	x *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(x >> 32);
}

static size_t
key_hash(int kind, const char *key)
{
	uint64_t	h = 1469598103934665603ULL ^ (uint64_t)kind;

	while (*key != '\0')
		h = (h ^ (unsigned char)*key++) * 1099511628211ULL;
	return mix(h);
}

/* home - the slot o belongs in, were it free */
static size_t
home(const struct table *t, const struct cobj *o)
{
	return (t->by_key ? key_hash(o->kind, o->key) :
	    mix((uint64_t)o->dbid)) & (t->n - 1);
}

/* dbid_slot - the slot holding dbid, or the empty one where it goes */
static size_t
dbid_slot(json_int_t dbid)
{
	size_t	i = mix((uint64_t)dbid) & (by_dbid.n - 1);

	while (by_dbid.slot[i] != NULL && by_dbid.slot[i]->dbid != dbid)
		i = (i + 1) & (by_dbid.n - 1);
	return i;
}

/* key_slot - the slot holding (kind, key), or the empty one */
static size_t
key_slot(int kind, const char *key)
{
	struct cobj	*o;
	size_t		 i = key_hash(kind, key) & (by_key.n - 1);

	while ((o = by_key.slot[i]) != NULL && (o->kind != kind ||
	    strcmp(o->key, key) != 0))
		i = (i + 1) & (by_key.n - 1);
	return i;
}

static size_t
slot_of(const struct table *t, const struct cobj *o)
{
	return t->by_key ? key_slot(o->kind, o->key) : dbid_slot(o->dbid);
}

static void
table_init(struct table *t)
{
	t->n = 1024;
	t->count = 0;
	t->slot = xcalloc(t->n, sizeof(*t->slot));
}

static void
table_add(struct table *t, struct cobj *o)
{
	struct cobj	**old = t->slot;
	size_t		  n = t->n, i;

	if (2 * (t->count + 1) > t->n) {	/* keep it half empty */
		t->n *= 2;
		t->slot = xcalloc(t->n, sizeof(*t->slot));
		for (i = 0; i < n; i++)
			if (old[i] != NULL)
				t->slot[slot_of(t, old[i])] = old[i];
		free(old);
	}
	t->slot[slot_of(t, o)] = o;
	t->count++;
}

/* table_remove - empty slot i; backward shift keeps probes unbroken */
static void
table_remove(struct table *t, size_t i)
{
	size_t	j, k, mask = t->n - 1;

	t->slot[i] = NULL;
	t->count--;
	for (j = (i + 1) & mask; t->slot[j] != NULL; j = (j + 1) & mask) {
		k = home(t, t->slot[j]);
		/* Move j back to i unless its home lies in (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			t->slot[i] = t->slot[j];
			t->slot[j] = NULL;
			i = j;
		}
	}
}

void
cache_init(int n)
{
	nkinds = n;
	kinds = xcalloc((size_t)n, sizeof(*kinds));
	table_init(&by_dbid);
	table_init(&by_key);
}

static void
cobj_free(struct cobj *o)
{
	json_decref(o->tree);
	free(o->key);
	free(o->refs);
	free(o);
}

/* cache_reset - forget every object (a new snapshot follows) */
void
cache_reset(void)
{
	size_t	i;

	for (i = 0; i < by_dbid.n; i++)
		if (by_dbid.slot[i] != NULL) {
			cobj_free(by_dbid.slot[i]);
			by_dbid.slot[i] = NULL;
		}
	memset(by_key.slot, 0, by_key.n * sizeof(*by_key.slot));
	by_dbid.count = by_key.count = 0;
	for (i = 0; i < (size_t)nkinds; i++)
		kinds[i].n = 0;
}

void
cache_free(void)
{
	int	i;

	if (by_dbid.slot == NULL)
		return;
	cache_reset();
	for (i = 0; i < nkinds; i++)
		free(kinds[i].v);
	free(kinds);
	free(by_dbid.slot);
	free(by_key.slot);
	by_dbid.slot = by_key.slot = NULL;
	kinds = NULL;
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

/* add_ref - note one outgoing reference (cfg_refs callback) */
static void
add_ref(const char *field, enum cfg_kind target, json_int_t dbid, void *arg)
{
	struct cobj	*o = arg;

	o->refs = xrealloc(o->refs, (o->nrefs + 1) * sizeof(*o->refs));
	o->refs[o->nrefs++] = dbid;
}

/* cache_put - insert or replace an object, serializing it once */
void
cache_put(int kind, json_int_t dbid, json_t *obj)
{
	const struct cfg_type	*t = cfg_type_at(kind);
	struct cobj		*o;
	json_t			*v;
	char			*text;
	const char		*state;
	size_t			 len;

	cache_del(dbid);
	if ((text = json_dumps(obj, JSON_COMPACT)) == NULL)
		fatalx("cache: cannot serialize object %lld", (long long)dbid);
	len = strlen(text);
	o = xcalloc(1, sizeof(*o) + len + 1);
	memcpy(o->text, text, len + 1);
	o->len = len;
	free(text);
	o->dbid = dbid;
	o->kind = kind;
	v = json_object_get(obj, "version");
	o->version = json_is_integer(v) ? json_integer_value(v) : 0;
	state = json_string_value(json_object_get(obj, "state"));
	o->enabled = state == NULL || strcmp(state, "enabled") == 0;
	o->key = cfg_key(t, obj);
	cfg_refs(t, obj, add_ref, o);
	if (keeps_tree(kind))
		o->tree = obj;
	else
		json_decref(obj);

	table_add(&by_dbid, o);
	if (o->key != NULL) {
		/* A key is unique per type; the store says so.  Should two
		 * ever meet here mid-change, the later one wins the index. */
		size_t	i = key_slot(kind, o->key);

		if (by_key.slot[i] != NULL)
			table_remove(&by_key, i);
		table_add(&by_key, o);
	}
	list_insert(&kinds[kind], o);
}

/* cache_apply - a change from the follower, applied */
int
cache_apply(const struct cfg_change *ch)
{
	const struct cfg_type	*t = cfg_type_by_name(ch->type,
				    strlen(ch->type));

	if (t == NULL) {
		log_warnx("revision %lld: unknown type %s; ignored",
		    (long long)ch->revision, ch->type);
		return -1;
	}
	if (ch->op == CFG_OP_DELETED)
		cache_del(ch->dbid);
	else
		cache_put(cfg_type_kind(t), ch->dbid, json_incref(ch->object));
	return 0;
}

/* cache_del - remove an object */
void
cache_del(json_int_t dbid)
{
	size_t		 i = dbid_slot(dbid), k;
	struct cobj	*o = by_dbid.slot[i];

	if (o == NULL)
		return;
	table_remove(&by_dbid, i);
	if (o->key != NULL) {
		k = key_slot(o->kind, o->key);
		if (by_key.slot[k] == o)
			table_remove(&by_key, k);
	}
	list_remove(&kinds[o->kind], dbid);
	cobj_free(o);
}

const struct cobj *
cache_get(json_int_t dbid)
{
	return by_dbid.slot[dbid_slot(dbid)];
}

const struct cobj *
cache_find(int kind, const char *key)
{
	return by_key.slot[key_slot(kind, key)];
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
	return by_dbid.count;
}

json_t *
cobj_json(const struct cobj *o)
{
	json_t	*j;

	if (o->tree != NULL)
		return json_incref(o->tree);
	if ((j = json_loadb(o->text, o->len, 0, NULL)) == NULL)
		fatalx("cache: object %lld does not parse", (long long)o->dbid);
	return j;
}

/*
 * skip - past the JSON value at s.  The text is jansson's compact output
 * of a valid object, so no whitespace and no error to look for.
 */
static const char *
skip(const char *s)
{
	int	depth = 0;

	do {
		if (*s == '"') {
			for (s++; *s != '"'; s++)
				if (*s == '\\')
					s++;
		} else if (*s == '{' || *s == '[')
			depth++;
		else if (*s == '}' || *s == ']')
			depth--;
		else if (depth == 0) {	/* a number, true, false, null */
			while (*s != ',' && *s != '}' && *s != ']' &&
			    *s != '\0')
				s++;
			return s;
		}
		s++;
	} while (depth > 0);
	return s;
}

/*
 * cobj_get - one top-level field, found in the text and only that value
 * parsed: a list filter looks at one field of every object of a type.
 */
json_t *
cobj_get(const struct cobj *o, const char *field)
{
	const char	*s = o->text, *k, *v;
	size_t		 flen = strlen(field);

	if (o->tree != NULL)
		return json_incref(json_object_get(o->tree, field));
	if (*s++ != '{')
		return NULL;
	while (*s == '"') {
		k = s + 1;
		s = skip(s);		/* past the key */
		v = s + 1;		/* past the ':' */
		s = skip(v);
		/* Field names need no escapes: a plain compare will do. */
		if ((size_t)(v - 2 - k) == flen && memcmp(k, field, flen) == 0)
			return json_loadb(v, (size_t)(s - v), JSON_DECODE_ANY,
			    NULL);
		if (*s == ',')
			s++;
	}
	return NULL;
}

int
cobj_refers(const struct cobj *o, json_int_t dbid)
{
	size_t	i;

	for (i = 0; i < o->nrefs; i++)
		if (o->refs[i] == dbid)
			return 1;
	return 0;
}
