/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dir - the tenant configuration as the simulated switch sees it.
 *
 * Each type is an array of pointers sorted by dbid; an object whose state
 * is "disabled" is held as if it were deleted.  Lookups by DN number scan
 * the DNs: a simulator serves hundreds of DNs, not millions.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"
#include "util.h"

struct login {
	json_int_t	 dbid;
	char		*code;
	json_int_t	 sw;
};

struct person {
	json_int_t	 dbid;
	int		 agent;
	json_int_t	*logins;
	size_t		 nlogins;
	json_int_t	 place;
};

struct place {
	json_int_t	 dbid;
	json_int_t	*dns;
	size_t		 ndns;
};

struct table {
	void		**v;		/* each starts with its dbid */
	size_t		 n, cap;
	void		(*free)(void *);
};

struct dir {
	struct table	 dns, logins, persons, places;
};

static void	dn_free(void *);
static void	login_free(void *);
static void	person_free(void *);
static void	place_free(void *);

/* dir_new - an empty directory */
struct dir *
dir_new(void)
{
	struct dir	*d;

	d = xcalloc(1, sizeof(*d));
	d->dns.free = dn_free;
	d->logins.free = login_free;
	d->persons.free = person_free;
	d->places.free = place_free;
	return d;
}

/* table_clear - free every entry of t */
static void
table_clear(struct table *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		t->free(t->v[i]);
	t->n = 0;
}

/* dir_free - free the directory; NULL does nothing */
void
dir_free(struct dir *d)
{
	if (d == NULL)
		return;
	dir_reset(d);
	free(d->dns.v);
	free(d->logins.v);
	free(d->persons.v);
	free(d->places.v);
	free(d);
}

/* dir_reset - forget every object */
void
dir_reset(struct dir *d)
{
	table_clear(&d->dns);
	table_clear(&d->logins);
	table_clear(&d->persons);
	table_clear(&d->places);
}

/* table_pos - where dbid is, or would go, in t; *found says which */
static size_t
table_pos(const struct table *t, json_int_t dbid, int *found)
{
	size_t		lo = 0, hi = t->n, mid;
	json_int_t	k;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		k = *(const json_int_t *)t->v[mid];
		if (k == dbid) {
			*found = 1;
			return mid;
		}
		if (k < dbid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

/* table_get - the entry with dbid, or NULL */
static void *
table_get(const struct table *t, json_int_t dbid)
{
	int	found;
	size_t	i;

	i = table_pos(t, dbid, &found);
	return found ? t->v[i] : NULL;
}

/* table_put - insert or replace (freeing the old) entry e; NULL deletes */
static void
table_put(struct table *t, json_int_t dbid, void *e)
{
	int	found;
	size_t	i;

	i = table_pos(t, dbid, &found);
	if (found) {
		t->free(t->v[i]);
		if (e != NULL) {
			t->v[i] = e;
			return;
		}
		memmove(&t->v[i], &t->v[i + 1],
		    (t->n - i - 1) * sizeof(void *));
		t->n--;
		return;
	}
	if (e == NULL)
		return;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = xrealloc(t->v, t->cap * sizeof(void *));
	}
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(void *));
	t->v[i] = e;
	t->n++;
}

/* dn_free - free a DN entry */
static void
dn_free(void *p)
{
	struct dir_dn	*dn = p;

	free(dn->number);
	free(dn);
}

/* login_free - free an agent login entry */
static void
login_free(void *p)
{
	struct login	*l = p;

	free(l->code);
	free(l);
}

/* person_free - free a person entry */
static void
person_free(void *p)
{
	struct person	*pe = p;

	free(pe->logins);
	free(pe);
}

/* place_free - free a place entry */
static void
place_free(void *p)
{
	struct place	*pl = p;

	free(pl->dns);
	free(pl);
}

/* ref - a reference field as a dbid; 0 when unset */
static json_int_t
ref(const json_t *obj, const char *name)
{
	json_t	*v = json_object_get(obj, name);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* refs - the dbids of a list; of objects' member sub when sub is set */
static json_int_t *
refs(const json_t *obj, const char *name, const char *sub, size_t *n)
{
	json_t		*a = json_object_get(obj, name), *v;
	json_int_t	*out;
	size_t		 i;

	*n = 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return NULL;
	out = xcalloc(json_array_size(a), sizeof(*out));
	json_array_foreach(a, i, v) {
		if (sub != NULL)
			v = json_object_get(v, sub);
		if (json_is_integer(v))
			out[(*n)++] = json_integer_value(v);
	}
	return out;
}

/* make_dn - a DN entry from its object, or NULL if it lacks a number */
static void *
make_dn(json_int_t dbid, const json_t *obj)
{
	struct dir_dn	*dn;
	const char	*num;

	if ((num = json_string_value(json_object_get(obj, "number"))) == NULL)
		return NULL;
	dn = xcalloc(1, sizeof(*dn));
	dn->dbid = dbid;
	dn->number = xstrdup(num);
	dn->kind = voice_dn_kind(json_string_value(json_object_get(obj,
	    "type")));
	dn->sw = ref(obj, "switch");
	dn->vq = ref(obj, "virtualQueue");
	return dn;
}

/* make_login - an agent login entry from its object, or NULL without a code */
static void *
make_login(json_int_t dbid, const json_t *obj)
{
	struct login	*l;
	const char	*code;

	code = json_string_value(json_object_get(obj, "loginCode"));
	if (code == NULL)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->dbid = dbid;
	l->code = xstrdup(code);
	l->sw = ref(obj, "switch");
	return l;
}

/* make_person - a person entry from its object */
static void *
make_person(json_int_t dbid, const json_t *obj)
{
	struct person	*p;

	p = xcalloc(1, sizeof(*p));
	p->dbid = dbid;
	p->agent = json_is_true(json_object_get(obj, "isAgent"));
	p->logins = refs(obj, "agentLogins", "agentLogin", &p->nlogins);
	p->place = ref(obj, "place");
	return p;
}

/* make_place - a place entry from its object */
static void *
make_place(json_int_t dbid, const json_t *obj)
{
	struct place	*p;

	p = xcalloc(1, sizeof(*p));
	p->dbid = dbid;
	p->dns = refs(obj, "dns", NULL, &p->ndns);
	return p;
}

/* dir_apply - one object or change; a disabled object counts as gone */
void
dir_apply(struct dir *d, const char *type, json_int_t dbid,
    const json_t *obj)
{
	static const struct {
		const char	*type;
		size_t		 off;
		void		*(*make)(json_int_t, const json_t *);
	} types[] = {
		{ "DN", offsetof(struct dir, dns), make_dn },
		{ "AgentLogin", offsetof(struct dir, logins), make_login },
		{ "Person", offsetof(struct dir, persons), make_person },
		{ "Place", offsetof(struct dir, places), make_place },
	};
	const char	*state;
	size_t		 i;

	for (i = 0; i < NELEM(types); i++)
		if (strcmp(type, types[i].type) == 0)
			break;
	if (i == NELEM(types))
		return;
	state = json_string_value(json_object_get(obj, "state"));
	if (obj != NULL && state != NULL && strcmp(state, "disabled") == 0)
		obj = NULL;
	table_put((struct table *)((char *)d + types[i].off), dbid,
	    obj != NULL ? types[i].make(dbid, obj) : NULL);
}

/* dir_dn - the DN with that number, lowest dbid first */
const struct dir_dn *
dir_dn(const struct dir *d, const char *number)
{
	const struct dir_dn	*dn;
	size_t			 i;

	for (i = 0; i < d->dns.n; i++) {
		dn = d->dns.v[i];
		if (strcmp(dn->number, number) == 0)
			return dn;
	}
	return NULL;
}

/* dir_login_ok - an agent login with that code on switch sw exists */
int
dir_login_ok(const struct dir *d, const char *code, json_int_t sw)
{
	const struct login	*l;
	size_t			 i;

	for (i = 0; i < d->logins.n; i++) {
		l = d->logins.v[i];
		if (l->sw == sw && strcmp(l->code, code) == 0)
			return 1;
	}
	return 0;
}

/* dir_nth - the n-th DN of a kind, in dbid order */
const struct dir_dn *
dir_nth(const struct dir *d, enum voice_dn kind, size_t n)
{
	const struct dir_dn	*dn;
	size_t			 i;

	for (i = 0; i < d->dns.n; i++) {
		dn = d->dns.v[i];
		if (dn->kind == kind && n-- == 0)
			return dn;
	}
	return NULL;
}

/* dir_count - how many DNs of a kind */
size_t
dir_count(const struct dir *d, enum voice_dn kind)
{
	size_t	i, n = 0;

	for (i = 0; i < d->dns.n; i++)
		if (((const struct dir_dn *)d->dns.v[i])->kind == kind)
			n++;
	return n;
}

/* dir_routed - a routing point whose calls the routing worker routes */
int
dir_routed(const struct dir_dn *dn)
{
	return dn->kind == VOICE_DN_RP && dn->vq != 0;
}

/* dir_first_queue - where a routing point of switch sw sends its calls */
const struct dir_dn *
dir_first_queue(const struct dir *d, json_int_t sw)
{
	const struct dir_dn	*dn;
	size_t			 i;

	for (i = 0; i < d->dns.n; i++) {
		dn = d->dns.v[i];
		if (dn->kind == VOICE_DN_QUEUE && dn->sw == sw)
			return dn;
	}
	return NULL;
}

/* place_phone - the first phone DN of place pl on switch sw */
static const struct dir_dn *
place_phone(const struct dir *d, const struct place *pl, json_int_t sw)
{
	const struct dir_dn	*dn;
	size_t			 i;

	for (i = 0; i < pl->ndns; i++) {
		dn = table_get(&d->dns, pl->dns[i]);
		if (dn != NULL && dn->kind == VOICE_DN_PHONE && dn->sw == sw)
			return dn;
	}
	return NULL;
}

/* person_agent - the login and DN person p would work with, if any */
static int
person_agent(const struct dir *d, const struct person *p,
    struct dir_agent *out)
{
	const struct place	*pl;
	const struct login	*l;
	const struct dir_dn	*dn;
	size_t			 i;

	if (!p->agent || (pl = table_get(&d->places, p->place)) == NULL)
		return 0;
	for (i = 0; i < p->nlogins; i++) {
		if ((l = table_get(&d->logins, p->logins[i])) == NULL)
			continue;
		if ((dn = place_phone(d, pl, l->sw)) == NULL)
			continue;
		out->person = p->dbid;
		out->login = l->code;
		out->dn = dn->number;
		return 1;
	}
	return 0;
}

/* dir_agents - the agents the traffic generator may use */
size_t
dir_agents(const struct dir *d, struct dir_agent *out, size_t max)
{
	struct dir_agent	 a;
	size_t			 i, n = 0;

	for (i = 0; i < d->persons.n; i++) {
		if (!person_agent(d, d->persons.v[i], &a))
			continue;
		if (n < max)
			out[n] = a;
		n++;
	}
	return n;
}
