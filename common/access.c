/* SPDX-License-Identifier: Apache-2.0 */
/*
 * access - rights computed per request by scanning the access groups:
 * there are few groups, and a change to one applies at once.
 */
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cache.h"
#include "util.h"

static const struct {
	const char	*name;
	int		 bit;
} right_names[] = {
	{ "read", RIGHT_READ }, { "create", RIGHT_CREATE },
	{ "update", RIGHT_UPDATE }, { "delete", RIGHT_DELETE },
};

const char *
access_right_name(int right)
{
	size_t	i;

	for (i = 0; i < NELEM(right_names); i++)
		if (right_names[i].bit == right)
			return right_names[i].name;
	return "?";
}

/* member - does list (of dbids) hold dbid? */
static int
member(const json_t *list, json_int_t dbid)
{
	size_t	 i;
	json_t	*v;

	json_array_foreach(list, i, v)
		if (json_integer_value(v) == dbid)
			return 1;
	return 0;
}

/* add_permission - one permission entry of a group the principal is in */
static void
add_permission(struct grants *g, const json_t *perm)
{
	const struct cfg_type	*t;
	const char		*col;
	json_t			*rights, *r, *dbid;
	size_t			 i, j;
	int			 bits = 0;

	col = json_string_value(json_object_get(perm, "collection"));
	if (col == NULL || (t = cfg_type_by_collection(col, strlen(col))) ==
	    NULL)
		return;
	rights = json_object_get(perm, "rights");
	json_array_foreach(rights, i, r)
		for (j = 0; j < NELEM(right_names); j++)
			if (json_is_string(r) && strcmp(json_string_value(r),
			    right_names[j].name) == 0)
				bits |= right_names[j].bit;
	dbid = json_object_get(perm, "dbid");
	if (!json_is_integer(dbid)) {
		g->collection[cfg_type_kind(t)] |= bits;
		return;
	}
	i = cfg_type_kind(t);
	g->objects[i] = xrealloc(g->objects[i], (g->nobjects[i] + 1) *
	    sizeof(struct grant));
	g->objects[i][g->nobjects[i]].dbid = json_integer_value(dbid);
	g->objects[i][g->nobjects[i]].rights = bits;
	g->nobjects[i]++;
}

/* access_grants - the union of the principal's groups' permissions */
void
access_grants(const struct principal *p, struct grants *g)
{
	const struct cobj *const	*v;
	const char			*list;
	json_t				*perm;
	size_t				 n, i, j;

	memset(g, 0, sizeof(*g));
	if (p->kind == PRINCIPAL_ADMIN) {
		g->admin = 1;
		return;
	}
	list = p->kind == PRINCIPAL_PERSON ? "members" : "applications";
	v = cache_list(CFG_ACCESS_GROUP, &n);
	for (i = 0; i < n; i++) {
		if (!member(json_object_get(v[i]->tree, list), p->dbid) ||
		    strcmp(json_string_value(json_object_get(v[i]->tree,
		    "state")), "enabled") != 0)
			continue;
		json_array_foreach(json_object_get(v[i]->tree, "permissions"),
		    j, perm)
			add_permission(g, perm);
	}
}

void
access_clear(struct grants *g)
{
	int	i;

	for (i = 0; i < CFG_NTYPES; i++)
		free(g->objects[i]);
	memset(g, 0, sizeof(*g));
}

/* access_can - may the principal exercise right on (kind, dbid)? */
int
access_can(const struct grants *g, enum cfg_kind k, json_int_t dbid,
    int right)
{
	size_t	i;

	if (g->admin || (g->collection[k] & right))
		return 1;
	for (i = 0; i < g->nobjects[k]; i++)
		if (g->objects[k][i].dbid == dbid &&
		    (g->objects[k][i].rights & right))
			return 1;
	return 0;
}

int
access_any(const struct grants *g, enum cfg_kind k, int right)
{
	size_t	i;

	if (g->admin || (g->collection[k] & right))
		return 1;
	for (i = 0; i < g->nobjects[k]; i++)
		if (g->objects[k][i].rights & right)
			return 1;
	return 0;
}

/* rights_json - ["read", ...] of a bit set */
static json_t *
rights_json(int bits)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < NELEM(right_names); i++)
		if (bits & right_names[i].bit)
			json_array_append_new(a, json_string(
			    right_names[i].name));
	return a;
}

/* access_describe - the permissions, as access groups spell them */
json_t *
access_describe(const struct grants *g)
{
	json_t	*a = json_array();
	size_t	 i;
	int	 k;

	for (k = 0; k < CFG_NTYPES; k++) {
		const char *col = cfg_type_collection(cfg_type_at(k));

		if (g->admin || g->collection[k])
			json_array_append_new(a, json_pack("{s:s, s:o}",
			    "collection", col, "rights", rights_json(g->admin ?
			    0xf : g->collection[k])));
		for (i = 0; !g->admin && i < g->nobjects[k]; i++)
			json_array_append_new(a, json_pack("{s:s, s:o, s:I}",
			    "collection", col, "rights", rights_json(
			    g->objects[k][i].rights), "dbid",
			    g->objects[k][i].dbid));
	}
	return a;
}
