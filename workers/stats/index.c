/* SPDX-License-Identifier: Apache-2.0 */
/*
 * index - what the configuration says, in the shape the stats worker
 * asks it: a login code's person, a DN number's dbid, kind and place, the
 * groups of a person, place or DN, a person's login codes and employeeId,
 * and which objects an action instance counts for.  Built from the
 * configuration cache (common/cache.c) when it is first asked after a
 * change, keyed by integers where it can (common/idmap.c), since the
 * voice events ask it for every instance.
 *
 * It reads the configuration cache and worker_conf(); it writes nothing
 * but its own maps.
 */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "idmap.h"
#include "schema.h"
#include "strmap.h"
#include "voice.h"
#include "worker.h"
#include "stats_int.h"

static void	index_build(void);
static void	index_groups(enum cfg_kind, char);
static void	index_persons(void);
static void	index_dns(void);
static void	index_places(void);
static enum dn_kind kind_of(const char *);
static uint64_t	lkey(char, json_int_t);
static void	ix_put_dbid(struct strmap *, const char *, json_int_t);
static json_int_t ix_get_dbid(const struct strmap *, const char *);
static void	ix_list(char, json_int_t, json_t *);
static void	target(struct targets *, enum object_kind, json_int_t);
static void	groups_of(struct targets *, char, json_int_t,
		    enum object_kind);

static struct strmap	 ix_login;	/* login code -> person dbid */
static struct strmap	 ix_employee;	/* employeeId/userName -> person */
static struct strmap	 ix_dn;		/* DN number -> dninfo */
static struct idmap	 ix_lists;	/* lkey(prefix, dbid) -> json array */
static struct idmap	 ix_eid;	/* person dbid -> its employeeId */
static int		 ix_stale = 1;

/* index_invalidate - the configuration changed: build again when asked */
void
index_invalidate(void)
{
	ix_stale = 1;
}

int
index_is_stale(void)
{
	return ix_stale;
}

/* index_fresh - built, if the configuration changed since */
void
index_fresh(void)
{
	if (ix_stale)
		index_build();
}

/* index_dn - what the configuration says of a DN number, or NULL */
const struct dninfo *
index_dn(const char *number)
{
	index_fresh();
	return strmap_get(&ix_dn, number);
}

/* index_dn_kind - what a DN number is, for the model */
enum dn_kind
index_dn_kind(const char *number, void *arg)
{
	const struct dninfo	*d = index_dn(number);

	return d != NULL ? d->kind : DNK_UNKNOWN;
}

/* index_person_of_login - the person of a login code, or 0 */
json_int_t
index_person_of_login(const char *code)
{
	index_fresh();
	return ix_get_dbid(&ix_login, code);
}

/* index_list - a person's login codes ('P'), a place's DN numbers ('L'),
 * the groups a person ('p'), a place ('l') or a DN ('d') is in; or NULL */
const json_t *
index_list(char prefix, json_int_t dbid)
{
	index_fresh();
	return idmap_get(&ix_lists, lkey(prefix, dbid));
}

/* index_eid - a person's employeeId (or userName), or NULL */
const char *
index_eid(json_int_t person)
{
	index_fresh();
	return idmap_get(&ix_eid, (uint64_t)person);
}

struct each_login {
	void	(*fn)(json_int_t, void *);
	void	 *arg;
};

static void
each_login(const char *code, void *v, void *arg)
{
	struct each_login	*el = arg;

	el->fn(*(json_int_t *)v, el->arg);
}

/* index_each_login - the person of every login code */
void
index_each_login(void (*fn)(json_int_t, void *), void *arg)
{
	struct each_login	el = { fn, arg };

	index_fresh();
	strmap_each(&ix_login, each_login, &el);
}

/* index_object_find - (type, id) as a client names it; dbid 0 for the
 * tenant */
int
index_object_find(enum object_kind k, const char *id, json_int_t *dbid)
{
	static const enum cfg_kind by_name[OBJ_COUNT] = {
		[OBJ_PLACE] = CFG_PLACE, [OBJ_AGENT_GROUP] = CFG_AGENT_GROUP,
		[OBJ_PLACE_GROUP] = CFG_PLACE_GROUP,
		[OBJ_DN_GROUP] = CFG_DN_GROUP,
	};
	const struct cobj	*o;
	const struct dninfo	*d;

	index_fresh();
	*dbid = 0;
	switch (k) {
	case OBJ_AGENT:
		*dbid = ix_get_dbid(&ix_employee, id);
		break;
	case OBJ_PLACE:
	case OBJ_AGENT_GROUP:
	case OBJ_PLACE_GROUP:
	case OBJ_DN_GROUP:
		o = cache_find(by_name[k], id);
		*dbid = o != NULL ? o->dbid : 0;
		break;
	case OBJ_QUEUE:
	case OBJ_RP:
		if ((d = index_dn(id)) != NULL && d->kind == (k == OBJ_QUEUE ?
		    DNK_QUEUE : DNK_RP))
			*dbid = d->dbid;
		break;
	case OBJ_TENANT:
		return 0;
	default:
		break;
	}
	return *dbid > 0 ? 0 : -1;
}

/* index_object_exists - a statistic's object is still in the
 * configuration */
int
index_object_exists(enum object_kind k, json_int_t dbid)
{
	const struct cobj	*o;

	if (k == OBJ_TENANT)
		return 1;
	return (o = cache_get(dbid)) != NULL && o->kind == object_cfg_kind(k);
}

/*
 * index_targets - the objects an instance counts for: an agent's, the
 * tenant, the person, its agent groups, the place of its DN and the
 * place's groups; a queue's or routing point's, the tenant, the DN and
 * its DN groups.  A call counts once for the tenant and once for a DN
 * group, however many of its DNs it passed.
 */
void
index_targets(const struct inst *i, struct targets *t)
{
	const struct dninfo	*d, *prior;
	const json_t		*groups, *had, *g, *e;
	json_int_t		 person;
	size_t			 k, n;

	index_fresh();
	t->n = 0;
	if (i->of_agent || !i->repeat)	/* the tenant counts a call once */
		target(t, OBJ_TENANT, 0);
	d = i->dn != NULL ? strmap_get(&ix_dn, i->dn) : NULL;
	if (i->of_agent) {
		person = i->agent != NULL ? ix_get_dbid(&ix_login, i->agent) :
		    0;
		if (person > 0) {
			target(t, OBJ_AGENT, person);
			groups_of(t, 'p', person, OBJ_AGENT_GROUP);
		}
		if (d != NULL && d->place > 0) {
			target(t, OBJ_PLACE, d->place);
			groups_of(t, 'l', d->place, OBJ_PLACE_GROUP);
		}
		return;
	}
	if (d == NULL)
		return;
	target(t, d->kind == DNK_RP ? OBJ_RP : OBJ_QUEUE, d->dbid);
	/* A DN group counts a call once, like the tenant: not again at a
	 * queue of the group it reached through a routing point of it. */
	prior = i->repeat && i->prior != NULL ? strmap_get(&ix_dn, i->prior) :
	    NULL;
	had = prior != NULL ? idmap_get(&ix_lists, lkey('d', prior->dbid)) :
	    NULL;
	groups = idmap_get(&ix_lists, lkey('d', d->dbid));
	json_array_foreach(groups, k, g) {
		json_array_foreach(had, n, e)
			if (json_integer_value(e) == json_integer_value(g))
				break;
		if (n == json_array_size(had))
			target(t, OBJ_DN_GROUP, json_integer_value(g));
	}
}

/* index_app_options - the options of the stats worker's Application
 * (types "stat:<name>", capacity rules "capacity:<name>"), or NULL */
json_t *
index_app_options(void)
{
	const struct cobj	*app;

	app = cache_find(CFG_APPLICATION,
	    worker_conf()->workers[WORKER_STATS].application);
	return app != NULL ? cobj_get(app, "options") : NULL;
}

static void
free_json(uint64_t k, void *v, void *arg)
{
	json_decref(v);
}

static void
free_value(uint64_t k, void *v, void *arg)
{
	free(v);
}

static void
free_plain(const char *k, void *v, void *arg)
{
	free(v);
}

/* index_clear - every map empty (before a build, and at the end) */
void
index_clear(void)
{
	idmap_each(&ix_lists, free_json, NULL);
	idmap_clear(&ix_lists);
	idmap_each(&ix_eid, free_value, NULL);
	idmap_clear(&ix_eid);
	strmap_each(&ix_login, free_plain, NULL);
	strmap_each(&ix_employee, free_plain, NULL);
	strmap_each(&ix_dn, free_plain, NULL);
	strmap_clear(&ix_login);
	strmap_clear(&ix_employee);
	strmap_clear(&ix_dn);
}

/* index_build - who is in which group, whose login, which DN where */
static void
index_build(void)
{
	index_clear();
	index_persons();
	index_dns();
	index_places();
	index_groups(CFG_AGENT_GROUP, 'p');
	index_groups(CFG_PLACE_GROUP, 'l');
	index_groups(CFG_DN_GROUP, 'd');
	ix_stale = 0;
}

/* index_persons - each person's employeeId (else userName), login codes */
static void
index_persons(void)
{
	const struct cobj *const	*v;
	const struct cobj		*o;
	size_t				 n, i, j;
	json_t				*x;
	const char			*s;

	v = cache_list(CFG_PERSON, &n);
	for (i = 0; i < n; i++) {
		x = cobj_get(v[i], "employeeId");
		s = json_string_value(x);
		if (s == NULL) {
			json_decref(x);
			x = cobj_get(v[i], "userName");
			s = json_string_value(x);
		}
		if (s != NULL) {
			ix_put_dbid(&ix_employee, s, v[i]->dbid);
			idmap_put(&ix_eid, (uint64_t)v[i]->dbid, xstrdup(s));
		}
		json_decref(x);
		for (j = 0; j < v[i]->nrefs; j++) {
			if ((o = cache_get(v[i]->refs[j])) == NULL ||
			    o->kind != CFG_AGENT_LOGIN)
				continue;
			x = cobj_get(o, "loginCode");
			if (json_string_value(x) != NULL) {
				ix_put_dbid(&ix_login, json_string_value(x),
				    v[i]->dbid);
				ix_list('P', v[i]->dbid, json_incref(x));
			}
			json_decref(x);
		}
	}
}

/* index_dns - each DN number's dbid and kind */
static void
index_dns(void)
{
	const struct cobj *const	*v;
	struct dninfo			*d;
	size_t				 n, i;
	json_t				*x, *e;

	v = cache_list(CFG_DN, &n);
	for (i = 0; i < n; i++) {
		x = cobj_get(v[i], "number");
		e = cobj_get(v[i], "type");
		if (json_string_value(x) != NULL) {
			d = xcalloc(1, sizeof(*d));
			d->dbid = v[i]->dbid;
			d->kind = kind_of(json_string_value(e));
			d->virtual_queue = json_string_value(e) != NULL &&
			    strcmp(json_string_value(e), "VirtualQueue") == 0;
			free(strmap_put(&ix_dn, json_string_value(x), d));
		}
		json_decref(e);
		json_decref(x);
	}
}

/* index_places - the place of each DN, the DN numbers of each place */
static void
index_places(void)
{
	const struct cobj *const	*v;
	const struct cobj		*o;
	struct dninfo			*d;
	size_t				 n, i, j;
	json_t				*x, *e, *num;

	v = cache_list(CFG_PLACE, &n);
	for (i = 0; i < n; i++) {
		x = cobj_get(v[i], "dns");
		json_array_foreach(x, j, e) {
			if ((o = cache_get(json_integer_value(e))) == NULL)
				continue;
			num = cobj_get(o, "number");
			if ((d = strmap_get(&ix_dn, json_string_value(num) ?
			    json_string_value(num) : "")) != NULL) {
				d->place = v[i]->dbid;
				ix_list('L', v[i]->dbid, json_incref(num));
			}
			json_decref(num);
		}
		json_decref(x);
	}
}

/* index_groups - the groups of a kind each member is in */
static void
index_groups(enum cfg_kind kind, char prefix)
{
	const struct cobj *const	*v;
	size_t				 n, i, j;
	json_t				*members, *e;

	v = cache_list(kind, &n);
	for (i = 0; i < n; i++) {
		if (!v[i]->enabled)
			continue;
		members = cobj_get(v[i], "members");
		json_array_foreach(members, j, e)
			ix_list(prefix, json_integer_value(e),
			    json_integer(v[i]->dbid));
		json_decref(members);
	}
}

/*
 * kind_of - what a DN's type makes it for the model (common/voice.c
 * classifies): a queue, a routing point, or else a DN where agents are.
 */
static enum dn_kind
kind_of(const char *type)
{
	switch (voice_dn_kind(type)) {
	case VOICE_DN_QUEUE:
		return DNK_QUEUE;
	case VOICE_DN_RP:
		return DNK_RP;
	default:
		return DNK_PHONE;
	}
}

/* lkey - the key of a list of the index (prefix: which list) */
static uint64_t
lkey(char prefix, json_int_t dbid)
{
	return (uint64_t)(unsigned char)prefix << 56 | (uint64_t)dbid;
}

static void
ix_put_dbid(struct strmap *m, const char *key, json_int_t dbid)
{
	json_int_t	*v = xmalloc(sizeof(*v));

	*v = dbid;
	free(strmap_put(m, key, v));
}

static json_int_t
ix_get_dbid(const struct strmap *m, const char *key)
{
	json_int_t	*v = strmap_get(m, key);

	return v != NULL ? *v : 0;
}

/* ix_list - add v to the list under prefix + dbid */
static void
ix_list(char prefix, json_int_t dbid, json_t *v)
{
	json_t	*a;

	if ((a = idmap_get(&ix_lists, lkey(prefix, dbid))) == NULL) {
		a = json_array();
		idmap_put(&ix_lists, lkey(prefix, dbid), a);
	}
	json_array_append_new(a, v);
}

static void
target(struct targets *t, enum object_kind k, json_int_t dbid)
{
	if (t->n < (int)NELEM(t->k)) {
		t->k[t->n] = k;
		t->dbid[t->n] = dbid;
		t->n++;
	}
}

/* groups_of - the groups a member is in, as targets */
static void
groups_of(struct targets *t, char prefix, json_int_t member,
    enum object_kind k)
{
	const json_t	*a = idmap_get(&ix_lists, lkey(prefix, member)), *e;
	size_t		 i;

	json_array_foreach(a, i, e)
		target(t, k, json_integer_value(e));
}
