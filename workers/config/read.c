/* SPDX-License-Identifier: Apache-2.0 */
/*
 * read - the config worker's reads, all served from the cache, never from
 * PostgreSQL: GET of one object, a list page with its filters and cursor,
 * the export of everything a principal may read, and whoami.  Each cached
 * object is kept as its JSON text, so a read copies bytes and never
 * encodes JSON per request (DESIGN.md §8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cache.h"
#include "config_int.h"
#include "log.h"

#define LIST_LIMIT_DEFAULT	100
#define LIST_LIMIT_MAX		10000
#define FILTERS_MAX		8

struct filter {
	char	key[64];
	char	val[256];
};

static int	list_params(struct http_conn *, const struct http_request *,
		    const struct cfg_type *, int *, json_int_t *,
		    struct filter *, int *);
static int	matches(const struct cfg_type *, const struct cobj *,
		    const struct filter *, int);

/*
 * read_list - {"revision": R, "items": [...], "next": dbid}: objects in
 * dbid order after the cursor; "next" is there when more may follow.
 */
void
read_list(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, const struct grants *g)
{
	const struct cobj *const	*v;
	struct filter			 fs[FILTERS_MAX];
	char				*buf = NULL;
	size_t				 len = 0, n, i;
	json_int_t			 after, last = 0;
	int				 limit, nf, count = 0;
	FILE				*f;

	if (!access_any(g, cfg_type_kind(t), RIGHT_READ)) {
		reply_forbidden(c, RIGHT_READ, t);
		return;
	}
	if (list_params(c, r, t, &limit, &after, fs, &nf) == -1)
		return;
	v = cache_list(cfg_type_kind(t), &n);
	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	fprintf(f, "{\"revision\":%lld,\"items\":[", (long long)w->revision);
	for (i = cache_after(cfg_type_kind(t), after); i < n; i++) {
		if (!matches(t, v[i], fs, nf) || !access_can(g,
		    cfg_type_kind(t), v[i]->dbid, RIGHT_READ))
			continue;
		if (count == limit)
			break;
		if (count++ > 0)
			fputc(',', f);
		fwrite(v[i]->text, 1, v[i]->len, f);
		last = v[i]->dbid;
	}
	fputc(']', f);
	if (i < n)
		fprintf(f, ",\"next\":%lld", (long long)last);
	fputc('}', f);
	if (fclose(f) != 0)
		fatal("list");
	reply_json(c, 200, NULL, buf, len);
	free(buf);
}

/* read_one - GET /v1/{collection}/{dbid} */
void
read_one(struct http_conn *c, const struct cfg_type *t, json_int_t dbid,
    const struct grants *g)
{
	const struct cobj	*o;

	if ((o = read_lookup(c, t, dbid)) == NULL)
		return;
	if (access_can(g, o->kind, dbid, RIGHT_READ))
		reply_object(c, 200, o);
	else
		reply_forbidden(c, RIGHT_READ, t);
}

/* read_lookup - the object at dbid if it is of type t, else answer 404 */
const struct cobj *
read_lookup(struct http_conn *c, const struct cfg_type *t, json_int_t dbid)
{
	const struct cobj	*o = cache_get(dbid);

	if (o == NULL || o->kind != (int)cfg_type_kind(t)) {
		reply_error(c, 404, "NotFound", NULL, "no %s with dbid %lld",
		    cfg_type_name(t), (long long)dbid);
		return NULL;
	}
	return o;
}

/*
 * read_export - GET /v1/export: every object the principal may read, by
 * collection, at one revision: {"revision": R, "objects": {...}}.
 */
void
read_export(struct cfgw *w, struct http_conn *c, const struct grants *g)
{
	const struct cobj *const	*v;
	char				*buf = NULL;
	size_t				 len = 0, n, i;
	int				 k, first;
	FILE				*f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	fprintf(f, "{\"revision\":%lld,\"objects\":{", (long long)w->revision);
	for (k = 0; k < CFG_NTYPES; k++) {
		fprintf(f, "%s\"%s\":[", k > 0 ? "," : "",
		    cfg_type_collection(cfg_type_at(k)));
		v = cache_list(k, &n);
		for (i = 0, first = 1; i < n; i++) {
			if (!access_can(g, k, v[i]->dbid, RIGHT_READ))
				continue;
			if (!first)
				fputc(',', f);
			first = 0;
			fwrite(v[i]->text, 1, v[i]->len, f);
		}
		fputc(']', f);
	}
	fputs("}}", f);
	if (fclose(f) != 0)
		fatal("export");
	reply_json(c, 200, "Content-Disposition: attachment; "
	    "filename=\"tenant-export.json\"\r\n", buf, len);
	free(buf);
}

/* read_whoami - GET /v1/whoami: the principal and its permissions */
void
read_whoami(struct http_conn *c, const struct principal *who,
    const struct grants *g)
{
	static const char *const kinds[] = { "admin", "person",
	    "application" };
	json_t	*j;
	char	*text;

	j = json_pack("{s:s, s:s, s:o}", "kind", kinds[who->kind], "name",
	    who->name, "permissions", access_describe(g));
	if (who->kind != PRINCIPAL_ADMIN)
		json_object_set_new(j, "dbid", json_integer(who->dbid));
	text = json_dumps(j, JSON_COMPACT);
	reply_json(c, 200, NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

/*
 * read_number_param - an optional integer parameter from min to max, left
 * as it was when absent; answers 400 and returns -1 when it is not one.
 */
int
read_number_param(struct http_conn *c, const struct http_request *r,
    const char *name, json_int_t min, json_int_t max, json_int_t *out)
{
	char		v[24];
	json_int_t	n = 0;
	size_t		i;
	int		rc = http_query(r, name, v, sizeof(v));

	if (rc == 0)
		return 0;
	for (i = 0; rc == 1 && v[i] != '\0' && n <= max; i++)
		if (v[i] >= '0' && v[i] <= '9')
			n = n * 10 + (v[i] - '0');
		else
			rc = -1;
	if (rc == -1 || i == 0 || n < min || n > max) {
		reply_error(c, 400, "BadParameter", name, "%s: must be an "
		    "integer from %lld to %lld", name, (long long)min,
		    (long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

/* list_params - limit, after and the filters of a list request */
static int
list_params(struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, int *limit, json_int_t *after,
    struct filter *fs, int *nf)
{
	struct cfg_error	e;
	struct filter		f;
	size_t			pos = 0;
	int			rc;
	json_int_t		n = LIST_LIMIT_DEFAULT;

	if (read_number_param(c, r, "limit", 1, LIST_LIMIT_MAX, &n) == -1)
		return -1;
	*limit = (int)n;
	*after = 0;
	*nf = 0;
	while ((rc = http_query_next(r, &pos, f.key, sizeof(f.key), f.val,
	    sizeof(f.val))) == 1) {
		if (strcmp(f.key, "limit") == 0)
			continue;
		else if (strcmp(f.key, "after") == 0) {
			if ((*after = parse_dbid(f.val, strlen(f.val))) < 0) {
				reply_error(c, 400, "BadParameter", "after",
				    "after: must be a dbid");
				return -1;
			}
		} else if (cfg_filter_check(t, f.key, f.val, &e) == -1) {
			reply_cfg_error(c, &e);
			return -1;
		} else if (*nf == FILTERS_MAX) {
			reply_error(c, 400, "BadParameter", NULL, "at most %d "
			    "filters", FILTERS_MAX);
			return -1;
		} else
			fs[(*nf)++] = f;
	}
	if (rc == -1) {
		reply_error(c, 400, "BadParameter", NULL, "malformed query "
		    "string");
		return -1;
	}
	return 0;
}

/* matches - o passes every filter; only the fields they name are parsed */
static int
matches(const struct cfg_type *t, const struct cobj *o,
    const struct filter *fs, int nf)
{
	json_t	*v;
	int	 i, ok = 1;

	for (i = 0; i < nf && ok; i++) {
		v = cobj_get(o, cfg_filter_field(t, fs[i].key));
		ok = cfg_filter_match_value(t, v, fs[i].key, fs[i].val);
		json_decref(v);
	}
	return ok;
}
