/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache - the maps every process shares (common/idmap.c for dbid ->
 * object, common/strmap.c per kind for natural key -> object), and one
 * sorted array of object pointers per kind.  dbids grow, so an insert is
 * nearly always an append; a delete shifts the tail of one array.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cfgfollow.h"
#include "idmap.h"
#include "log.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"

struct kind_list {
	struct cobj	**v;
	size_t		  n;
	size_t		  cap;
};

/*
 * Objects by dbid (the common integer map) and by natural key (one string
 * map per kind, since a key is unique within its type).
 */
static struct idmap	  by_dbid;
static struct strmap	 *by_key;	/* [kind] */
static struct kind_list	 *kinds;
static int		  nkinds;

/* Types small and read on every request: their trees stay parsed. */
static int
keeps_tree(int kind)
{
	return kind == CFG_ACCESS_GROUP || kind == CFG_FOLDER ||
	    kind == CFG_TENANT;
}

void
cache_init(int n)
{
	nkinds = n;
	kinds = xcalloc((size_t)n, sizeof(*kinds));
	by_key = xcalloc((size_t)n, sizeof(*by_key));
}

static void
cobj_free(struct cobj *o)
{
	json_decref(o->tree);
	free(o->key);
	free(o->refs);
	free(o);
}

static void
free_one(uint64_t dbid, void *o, void *arg)
{
	cobj_free(o);
}

/* cache_reset - forget every object (a new snapshot follows) */
void
cache_reset(void)
{
	size_t	i;

	if (kinds == NULL)
		return;
	idmap_each(&by_dbid, free_one, NULL);
	idmap_clear(&by_dbid);
	for (i = 0; i < (size_t)nkinds; i++) {
		strmap_clear(&by_key[i]);
		kinds[i].n = 0;
	}
}

void
cache_free(void)
{
	int	i;

	if (kinds == NULL)
		return;
	cache_reset();
	for (i = 0; i < nkinds; i++)
		free(kinds[i].v);
	free(kinds);
	free(by_key);
	kinds = NULL;
	by_key = NULL;
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

	idmap_put(&by_dbid, (uint64_t)dbid, o);
	/* A key is unique per type; the store says so.  Should two ever
	 * meet here mid-change, the later one wins the index. */
	if (o->key != NULL)
		strmap_put(&by_key[kind], o->key, o);
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
	struct cobj	*o = idmap_del(&by_dbid, (uint64_t)dbid);

	if (o == NULL)
		return;
	if (o->key != NULL && strmap_get(&by_key[o->kind], o->key) == o)
		strmap_del(&by_key[o->kind], o->key);
	list_remove(&kinds[o->kind], dbid);
	cobj_free(o);
}

const struct cobj *
cache_get(json_int_t dbid)
{
	return dbid > 0 ? idmap_get(&by_dbid, (uint64_t)dbid) : NULL;
}

const struct cobj *
cache_find(int kind, const char *key)
{
	return strmap_get(&by_key[kind], key);
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
	return by_dbid.n;
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

json_int_t
cobj_int(const struct cobj *o, const char *f, json_int_t dflt)
{
	json_t		*v = cobj_get(o, f);
	json_int_t	 n = json_is_integer(v) ? json_integer_value(v) : dflt;

	json_decref(v);
	return n;
}
