/* SPDX-License-Identifier: Apache-2.0 */
/*
 * write - the config worker's write path (docs/architecture.md, "The
 * write path"): POST, PUT, PATCH and DELETE of an object, a delete's
 * cascade, and POST /v1/import (import.c does the work).
 *
 * A write is checked against the cache (target, right, If-Match,
 * references), validated and normalized (validate.c), its write-only
 * fields hashed on the thread pool, then handed to the store (store.c),
 * one SQL statement per operation.  Once committed, its revision is
 * announced on Redis, the principal's tokens revoked when its secret
 * changed, and the request parked (changes.c) until the cache holds the
 * revision, so a client always reads its own writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cache.h"
#include "cfgfollow.h"
#include "config_int.h"
#include "import.h"
#include "log.h"
#include "offload.h"
#include "rds.h"
#include "store.h"
#include "throttle.h"
#include "util.h"
#include "worker.h"

/* A reference of an object being written, checked against the cache. */
struct refcheck {
	json_int_t	*v;
	size_t		 n;
	char		 field[128];
	int		 bad;
	enum cfg_kind	 want;
	json_int_t	 dbid;
};

/* One operation, ready for the store. */
struct prepared {
	struct store_write	 w;
	struct refcheck		 refs;
	char			*key;
	char			*fields[4];
	char			*hashes[4];
};

/* A write being prepared: its operations, and how to answer. */
struct job {
	struct cfgw		*w;
	struct http_conn	*conn;
	struct prepared		*p;
	size_t			 n;
	int			 status;
	int			 if_match;
	json_int_t		 dbid;
	int			 hash_failed;
};

/* An object that refers to one being deleted, and where. */
struct referrer {
	const struct cobj	*o;
	char			 field[128];
};

struct referrers {
	struct referrer		*v;
	size_t			 n;
	json_int_t		 target;
	int			 hit;
	char			 field[128];
};

/* What a write being committed needs when its answer comes. */
struct write_ctx {
	struct cfgw		*w;
	struct http_conn	*conn;
	int			 status;	/* on success */
	int			 if_match;	/* 412 rather than 409 */
	json_int_t		 dbid;		/* update, delete */
	json_int_t		 revoke;	/* principal whose tokens end */
};

/* A committed write whose answer waits for a token revocation. */
struct revoking {
	struct cfgw		*w;
	struct http_conn	*conn;
	json_int_t		 revision;
	json_int_t		 dbid;
	int			 status;
};

static json_int_t	 if_match(const struct http_request *);
static const struct cobj *target(struct http_conn *, const struct cfg_type *,
			    json_int_t, json_int_t, int, const struct grants *);
static void		 keep_cleared_secrets(const struct cfg_type *,
			    const json_t *, json_t *);
static int		 folder_cycle(json_int_t, const json_t *);
static void		 find_referrers(const struct cobj *,
			    struct referrers *);
static void		 reply_referenced(struct http_conn *, const struct cobj *,
			    const struct referrers *, const char *);
static int		 cascade(struct http_conn *, const struct cobj *,
			    struct referrers *, struct prepared *,
			    const struct grants *);
static int		 prepare(struct http_conn *, const struct cfg_type *,
			    json_t *, struct prepared *);
static struct job	*job_new(struct cfgw *, struct http_conn *, size_t, int,
			    int, json_int_t);
static void		 job_free(struct job *);
static void		 job_run(struct job *);
static void		 tenant_created(enum store_rc, json_int_t, json_int_t,
			    const char *, void *);
static void		 imported(int, json_t *, json_int_t, void *);
static void		 refcheck_cb(const char *, enum cfg_kind, json_int_t,
			    void *);
static void		 referrer_cb(const char *, enum cfg_kind, json_int_t,
			    void *);
static void		 prepared_clear(struct prepared *);
static int		 take_secrets(struct http_conn *,
			    const struct cfg_type *, json_t *,
			    struct prepared *);
static void		 hash_job(void *);
static void		 hashed(void *);
static int		 ends_tokens(const struct store_write *);
static void		 job_store(struct job *);
static void		 wrote(enum store_rc, json_int_t, json_int_t,
			    const char *, void *);
static void		 revoke_tokens(struct cfgw *, struct http_conn *,
			    json_int_t, json_int_t, int, json_int_t);
static void		 revoked(int, void *);

/* write_create - POST /v1/{collection} */
void
write_create(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, const struct grants *g)
{
	struct cfg_error	 e;
	struct job		*j;
	json_t			*obj;

	if (cfg_type_kind(t) == CFG_TENANT) {
		reply_not_allowed(c, "GET");
		return;
	}
	if (!access_can(g, cfg_type_kind(t), 0, RIGHT_CREATE)) {
		reply_forbidden(c, RIGHT_CREATE, t);
		return;
	}
	if ((obj = parse_body(c, r)) == NULL)
		return;
	if (cfg_validate(t, obj, 1, 0, 0, &e) == -1) {
		json_decref(obj);
		reply_cfg_error(c, &e);
		return;
	}
	j = job_new(w, c, 1, 201, 0, 0);
	j->p[0].w.op = STORE_CREATE;
	if (prepare(c, t, obj, &j->p[0]) == 0)
		job_run(j);
	else
		job_free(j);
}

/* write_update - PUT (replace) or PATCH (merge patch) of one object */
void
write_update(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, json_int_t dbid, int patch,
    const struct grants *g)
{
	const struct cobj	*o;
	struct cfg_error	 e;
	struct job		*j;
	json_t			*body, *obj, *cur;
	json_int_t		 want = if_match(r);

	if ((o = target(c, t, dbid, want, RIGHT_UPDATE, g)) == NULL)
		return;
	if ((body = parse_body(c, r)) == NULL)
		return;
	if (patch) {
		cur = cobj_json(o);
		obj = cfg_merge_patch(cur, body, &e);
		json_decref(cur);
		keep_cleared_secrets(t, body, obj);
		json_decref(body);
	} else
		obj = body;
	if (obj == NULL || cfg_validate(t, obj, 0, dbid, o->version, &e) ==
	    -1) {
		json_decref(obj);
		reply_cfg_error(c, &e);
		return;
	}
	if (cfg_type_kind(t) == CFG_FOLDER && folder_cycle(dbid, obj)) {
		json_decref(obj);
		reply_error(c, 422, "BadValue", "parent", "parent: a folder "
		    "cannot be placed inside itself or its own subfolders");
		return;
	}
	j = job_new(w, c, 1, 200, want != 0, dbid);
	j->p[0].w.op = STORE_UPDATE;
	j->p[0].w.dbid = dbid;
	j->p[0].w.version = o->version;
	if (prepare(c, t, obj, &j->p[0]) == 0)
		job_run(j);
	else
		job_free(j);
}

/* write_delete - DELETE, refused while referenced unless ?cascade=true */
void
write_delete(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct cfg_type *t, json_int_t dbid, const struct grants *g)
{
	const struct cobj	*o;
	struct referrers	 rs;
	struct job		*j;
	char			 v[8];
	json_int_t		 want = if_match(r);
	int			 cas;

	memset(&rs, 0, sizeof(rs));
	if (cfg_type_kind(t) == CFG_TENANT) {
		reply_not_allowed(c, "GET, PUT, PATCH");
		return;
	}
	if ((o = target(c, t, dbid, want, RIGHT_DELETE, g)) == NULL)
		return;
	cas = http_query(r, "cascade", v, sizeof(v)) == 1 &&
	    strcmp(v, "true") == 0;
	find_referrers(o, &rs);
	if (rs.n > 0 && !cas)
		reply_referenced(c, o, &rs, "other objects refer to this one; "
		    "change them first or delete with ?cascade=true");
	else if (rs.n >= 63)
		reply_referenced(c, o, &rs, "too many referrers for one "
		    "cascade (at most 62); change some of them first");
	else {
		j = job_new(w, c, rs.n + 1, 204, want != 0, dbid);
		if (cascade(c, o, &rs, j->p, g) == 0) {
			j->p[rs.n].w.op = STORE_DELETE;
			j->p[rs.n].w.type = cfg_type_name(t);
			j->p[rs.n].w.dbid = dbid;
			j->p[rs.n].w.version = o->version;
			job_run(j);
		} else
			job_free(j);
	}
	free(rs.v);
}

/* write_import - POST /v1/import (import.c) */
void
write_import(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	const struct conf	*cf = worker_conf();

	/* One import at a time per worker: import_start refuses a second. */
	if (w->importing != NULL || import_start(w->base, cf->pg_conninfo,
	    cf->pg_password, r->body, r->body_len, who, imported, w) == -1)
		reply_error(c, 409, "ImportRunning", NULL, "an import is "
		    "running on this worker; retry when it is done");
	else
		w->importing = c;
}

/*
 * write_ensure_tenant - the served tenant is an object like any other,
 * made from tenant.name the first time an instance loads an empty tenant.
 */
void
write_ensure_tenant(struct cfgw *w)
{
	struct store_write	 op;
	char			*key;
	size_t			 n;

	cache_list(CFG_TENANT, &n);
	if (n > 0)
		return;
	memset(&op, 0, sizeof(op));
	op.op = STORE_CREATE;
	op.type = cfg_type_name(cfg_type_at(CFG_TENANT));
	op.data = json_pack("{s:s}", "name", worker_conf()->tenant_name);
	if (cfg_validate(cfg_type_at(CFG_TENANT), op.data, 1, 0, 0, NULL) ==
	    0 && (key = cfg_key(cfg_type_at(CFG_TENANT), op.data)) != NULL) {
		op.key = key;
		store_write(w->pg, &op, 1, tenant_created, w);
		free(key);
	}
	json_decref(op.data);
}

/* if_match - the version an If-Match header asks for, 0 if none */
static json_int_t
if_match(const struct http_request *r)
{
	const char	*v;
	size_t		 len;

	if ((v = http_header(r, "If-Match", &len)) == NULL)
		return 0;
	if (len == 1 && v[0] == '*')
		return 0;	/* any version of an object that exists */
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
		v++;
		len -= 2;
	}
	return parse_dbid(v, len) > 0 ? parse_dbid(v, len) : -1;
}

/*
 * target - the object a change or delete is for, if it exists, the
 * principal has the right, and If-Match (want, 0 if absent) agrees;
 * else answer and return NULL.
 */
static const struct cobj *
target(struct http_conn *c, const struct cfg_type *t, json_int_t dbid,
    json_int_t want, int right, const struct grants *g)
{
	const struct cobj	*o;

	if ((o = read_lookup(c, t, dbid)) == NULL)
		return NULL;
	if (!access_can(g, cfg_type_kind(t), dbid, right)) {
		reply_forbidden(c, right, t);
		return NULL;
	}
	if (want != 0 && want != o->version) {
		reply_error(c, 412, "PreconditionFailed", NULL, "If-Match "
		    "asks for version %lld; the object is at version %lld",
		    (long long)want, (long long)o->version);
		return NULL;
	}
	return o;
}

/*
 * keep_cleared_secrets - a merge patch drops null members, but a null
 * write-only field in a PATCH means "clear it": put it back for the store.
 */
static void
keep_cleared_secrets(const struct cfg_type *t, const json_t *patch,
    json_t *obj)
{
	const char	*k;
	json_t		*v;

	if (obj == NULL)
		return;
	json_object_foreach((json_t *)patch, k, v)
		if (json_is_null(v) && cfg_is_write_only(t, k))
			json_object_set_new(obj, k, json_null());
}

/* folder_cycle - would folder dbid, placed under obj's parent, loop? */
static int
folder_cycle(json_int_t dbid, const json_t *obj)
{
	const struct cobj	*o;
	json_int_t		 p;
	size_t			 steps = cache_size();

	p = json_integer_value(json_object_get(obj, "parent"));
	while (p != 0 && steps-- > 0) {
		if (p == dbid)
			return 1;
		if ((o = cache_get(p)) == NULL)
			return 0;
		p = json_integer_value(json_object_get(o->tree, "parent"));
	}
	return 0;
}

/* referrer_cb - note the field through which an object refers to the target */
static void
referrer_cb(const char *field, enum cfg_kind kind, json_int_t dbid,
    void *arg)
{
	struct referrers	*rs = arg;

	if (dbid == rs->target && !rs->hit) {
		rs->hit = 1;
		snprintf(rs->field, sizeof(rs->field), "%s", field);
	}
}

/* find_referrers - every cached object that refers to target */
static void
find_referrers(const struct cobj *target, struct referrers *rs)
{
	const struct cobj *const	*v;
	const struct cfg_type		*t;
	json_t				*obj;
	size_t				 n, i;
	int				 k;

	rs->target = target->dbid;
	for (k = 0; k < CFG_NTYPES; k++) {
		t = cfg_type_at(k);
		if (!cfg_type_refers(t, target->kind))
			continue;
		v = cache_list(k, &n);
		for (i = 0; i < n; i++) {
			if (!cobj_refers(v[i], target->dbid))
				continue;
			/* Which field: parsed for the few that refer. */
			obj = cobj_json(v[i]);
			rs->hit = 0;
			cfg_refs(t, obj, referrer_cb, rs);
			json_decref(obj);
			rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
			rs->v[rs->n].o = v[i];
			memcpy(rs->v[rs->n].field, rs->field,
			    sizeof(rs->field));
			rs->n++;
		}
	}
}

/* reply_referenced - 409 listing who refers to the object */
static void
reply_referenced(struct http_conn *c, const struct cobj *o,
    const struct referrers *rs, const char *why)
{
	json_t	*j, *list = json_array();
	char	*text;
	size_t	 i;

	for (i = 0; i < rs->n && i < 100; i++)
		json_array_append_new(list, json_pack("{s:s, s:I, s:s}",
		    "type", cfg_type_name(cfg_type_at(rs->v[i].o->kind)),
		    "dbid", rs->v[i].o->dbid, "field", rs->v[i].field));
	j = json_pack("{s:s, s:s, s:I, s:o}", "error", "Referenced",
	    "message", why, "count", (json_int_t)rs->n, "referrers", list);
	text = json_dumps(j, JSON_COMPACT);
	reply_json(c, 409, NULL, text, strlen(text));
	free(text);
	json_decref(j);
}

/*
 * cascade - updates that cut every reference to o, then its delete; the
 * principal needs the update right on every referrer.
 */
static int
cascade(struct http_conn *c, const struct cobj *o, struct referrers *rs,
    struct prepared *p, const struct grants *g)
{
	const struct cfg_type	*t;
	struct cfg_error	 e;
	json_t			*obj;
	size_t			 i;

	for (i = 0; i < rs->n; i++) {
		t = cfg_type_at(rs->v[i].o->kind);
		if (!access_can(g, rs->v[i].o->kind, rs->v[i].o->dbid,
		    RIGHT_UPDATE)) {
			reply_forbidden(c, RIGHT_UPDATE, t);
			return -1;
		}
		obj = cobj_json(rs->v[i].o);
		if (cfg_unref(t, obj, o->kind, o->dbid, &e) == -1) {
			json_decref(obj);
			reply_error(c, 409, "RequiredRef", rs->v[i].field,
			    "%s %lld needs this object in %s: delete or change "
			    "it first", cfg_type_name(t),
			    (long long)rs->v[i].o->dbid, rs->v[i].field);
			return -1;
		}
		p[i].w.op = STORE_UPDATE;
		p[i].w.dbid = rs->v[i].o->dbid;
		p[i].w.version = rs->v[i].o->version;
		if (prepare(c, t, obj, &p[i]) == -1)
			return -1;
	}
	return 0;
}

/* refcheck_cb - a reference must name a cached object of its kind */
static void
refcheck_cb(const char *field, enum cfg_kind target, json_int_t dbid,
    void *arg)
{
	struct refcheck		*rc = arg;
	const struct cobj	*o = cache_get(dbid);

	if (!rc->bad && (o == NULL || o->kind != (int)target)) {
		rc->bad = 1;
		snprintf(rc->field, sizeof(rc->field), "%s", field);
		rc->want = target;
		rc->dbid = dbid;
	}
	rc->v = xrealloc(rc->v, (rc->n + 1) * sizeof(*rc->v));
	rc->v[rc->n++] = dbid;
}

/* prepared_clear - free an operation, wiping its plain secrets */
static void
prepared_clear(struct prepared *p)
{
	size_t	i;

	free(p->refs.v);
	free(p->key);
	for (i = 0; i < p->w.nsecrets; i++) {
		free(p->fields[i]);
		if (p->hashes[i] != NULL)
			explicit_bzero(p->hashes[i], strlen(p->hashes[i]));
		free(p->hashes[i]);
	}
	json_decref(p->w.data);
	memset(p, 0, sizeof(*p));
}

/* take_secrets - take write-only fields out of obj, to be hashed */
static int
take_secrets(struct http_conn *c, const struct cfg_type *t, json_t *obj,
    struct prepared *p)
{
	const char	*k;
	json_t		*v;
	void		*tmp;

	json_object_foreach_safe(obj, tmp, k, v) {
		if (!cfg_is_write_only(t, k))
			continue;
		/* The plain value, hashed off the loop before the write. */
		/* null clears the secret: a NULL hash tells the store. */
		if ((json_is_string(v) || json_is_null(v)) &&
		    p->w.nsecrets < NELEM(p->fields)) {
			p->hashes[p->w.nsecrets] = json_is_null(v) ? NULL :
			    xstrdup(json_string_value(v));
			p->fields[p->w.nsecrets++] = xstrdup(k);
		}
		json_object_del(obj, k);
	}
	p->w.secret_fields = (const char **)p->fields;
	p->w.secret_hashes = (const char **)p->hashes;
	return 0;
}

/*
 * prepare - the checks every create and update shares: the object is
 * valid (validated by the caller), its references exist, its secrets are
 * hashed; fills p for store_write.  Answers and returns -1 on failure.
 */
static int
prepare(struct http_conn *c, const struct cfg_type *t, json_t *obj,
    struct prepared *p)
{
	p->w.type = cfg_type_name(t);
	p->w.data = obj;
	cfg_refs(t, obj, refcheck_cb, &p->refs);
	if (p->refs.bad) {
		reply_error(c, 422, "BadReference", p->refs.field, "%s: no %s "
		    "with dbid %lld", p->refs.field,
		    cfg_type_name(cfg_type_at(p->refs.want)),
		    (long long)p->refs.dbid);
		return -1;
	}
	p->w.refs = p->refs.v;
	p->w.nrefs = p->refs.n;
	if (take_secrets(c, t, obj, p) == -1)
		return -1;
	if ((p->key = cfg_key(t, obj)) == NULL) {
		reply_error(c, 422, "Missing", NULL, "the object has no name "
		    "(natural key)");
		return -1;
	}
	p->w.key = p->key;
	return 0;
}

/* job_new - a write of n operations, answered with status */
static struct job *
job_new(struct cfgw *w, struct http_conn *c, size_t n, int status,
    int if_match, json_int_t dbid)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->w = w;
	j->conn = c;
	j->p = xcalloc(n, sizeof(*j->p));
	j->n = n;
	j->status = status;
	j->if_match = if_match;
	j->dbid = dbid;
	return j;
}

/* job_free - forget a write that was stored or refused */
static void
job_free(struct job *j)
{
	size_t	i;

	for (i = 0; i < j->n; i++)
		prepared_clear(&j->p[i]);
	free(j->p);
	free(j);
}

/* job_run - hash secrets off the loop if there are any, then store */
static void
job_run(struct job *j)
{
	size_t	i, k;

	for (i = 0; i < j->n; i++)
		for (k = 0; k < j->p[i].w.nsecrets; k++)
			if (j->p[i].hashes[k] != NULL) {
				j->w->busy_jobs++;
				offload(hash_job, hashed, j);
				return;
			}
	job_store(j);
}

/* hash_job - on a pool thread: replace every plain secret by its hash */
static void
hash_job(void *arg)
{
	struct job	*j = arg;
	size_t		 i, k;
	char		*h;

	for (i = 0; i < j->n; i++)
		for (k = 0; k < j->p[i].w.nsecrets; k++) {
			if (j->p[i].hashes[k] == NULL)
				continue;	/* a secret being cleared */
			if ((h = auth_hash(j->p[i].hashes[k])) == NULL)
				j->hash_failed = 1;
			explicit_bzero(j->p[i].hashes[k],
			    strlen(j->p[i].hashes[k]));
			free(j->p[i].hashes[k]);
			j->p[i].hashes[k] = h != NULL ? h : xstrdup("*");
		}
}

/* hashed - back on the loop: store, unless stopping or a hash failed */
static void
hashed(void *arg)
{
	struct job	*j = arg;

	j->w->busy_jobs--;
	if (offload_cancelled()) {
		reply_error(j->conn, 503, "Unavailable", NULL, "the worker is "
		    "stopping; nothing was written, retry later");
		job_free(j);
	} else if (j->hash_failed) {
		reply_error(j->conn, 500, "Internal", NULL, "a secret could "
		    "not be hashed; nothing was written");
		job_free(j);
	} else
		job_store(j);
}

/*
 * ends_tokens - whether an operation ends its object's tokens: it sets or
 * clears a write-only field (only a Person's password and an
 * Application's secret are), or deletes a Person or an Application.  At
 * most one operation of a write does: the update, or the delete at the
 * end of a cascade (the referrers it changes keep their secrets).
 */
static int
ends_tokens(const struct store_write *op)
{
	const struct cfg_type	*t = cfg_type_by_name(op->type,
				    strlen(op->type));
	int			 k = t != NULL ? (int)cfg_type_kind(t) : -1;

	if (k != CFG_PERSON && k != CFG_APPLICATION)
		return 0;
	return (op->op == STORE_UPDATE && op->nsecrets > 0) ||
	    op->op == STORE_DELETE;
}

/* job_store - hand the prepared operations to the store */
static void
job_store(struct job *j)
{
	struct write_ctx	*wc = xcalloc(1, sizeof(*wc));
	struct store_write	*ops = xcalloc(j->n, sizeof(*ops));
	size_t			 i;

	for (i = 0; i < j->n; i++) {
		ops[i] = j->p[i].w;
		if (ends_tokens(&ops[i]))
			wc->revoke = ops[i].dbid;
	}
	wc->w = j->w;
	wc->conn = j->conn;
	wc->status = j->status;
	wc->if_match = j->if_match;
	wc->dbid = j->dbid;
	if (store_write(j->w->pg, ops, j->n, wrote, wc) == -1) {
		free(wc);
		reply_error(j->conn, 503, "Unavailable", NULL, "too many "
		    "writes waiting for PostgreSQL; retry later");
	}
	free(ops);
	job_free(j);
}

/* wrote - the write committed (or not): announce it and wait for it */
static void
wrote(enum store_rc rc, json_int_t rev, json_int_t dbid, const char *detail,
    void *arg)
{
	struct write_ctx	*wc = arg;
	struct cfgw		*w = wc->w;
	struct http_conn	*c = wc->conn;
	int			 status = wc->status, if_match = wc->if_match;
	json_int_t		 revoke = wc->revoke;

	if (wc->dbid != 0)
		dbid = wc->dbid;
	free(wc);
	switch (rc) {
	case STORE_OK:
		rds_command(w->pub, NULL, NULL, "PUBLISH %s %lld", w->channel,
		    (long long)rev);
		if (revoke != 0)
			revoke_tokens(w, c, rev, dbid, status, revoke);
		else
			changes_park_write(w, c, rev, dbid, status, NULL);
		cfgfollow_poke(w->follow);
		return;
	case STORE_DUPLICATE:
		reply_error(c, 409, "Duplicate", NULL, "an object of this type "
		    "with the same name (natural key) exists");
		return;
	case STORE_STALE:
		reply_error(c, if_match ? 412 : 409, if_match ?
		    "PreconditionFailed" : "VersionMismatch", NULL, "%s",
		    detail);
		return;
	case STORE_REFERENCED:
		reply_error(c, 409, "Referenced", NULL, "a reference changed "
		    "meanwhile: %s", detail);
		return;
	case STORE_UNAVAILABLE:
		reply_error(c, 503, "Unavailable", NULL, "PostgreSQL is "
		    "unavailable; nothing was written, retry later");
		return;
	case STORE_UNKNOWN:
		/* Never "nothing was written": it may well have been. */
		reply_error(c, 503, "Unavailable", NULL, "PostgreSQL was lost "
		    "before it confirmed the write, and could not be asked "
		    "again whether it committed: the write may have been "
		    "committed; read the object or GET /v1/changes before "
		    "retrying");
		return;
	case STORE_CONFLICT:
		log_warnx("write aborted on all %d tries (%s); answering 503",
		    STORE_TRIES, detail);
		reply_error(c, 503, "Conflict", NULL, "the write collided with "
		    "concurrent writes: PostgreSQL aborted each of its %d tries "
		    "(deadlock or serialization failure); nothing was written, "
		    "retry later", STORE_TRIES);
		return;
	case STORE_FAILED:
		log_warnx("write failed: %s", detail);
		reply_error(c, 500, "Internal", NULL, "the write failed; "
		    "nothing was written");
		return;
	}
}

/*
 * revoke_tokens - a committed write changed or cleared the password or
 * secret of a principal, or deleted it: end its tokens before answering,
 * so that once the client has its answer no instance takes the old ones.
 * If Redis cannot be asked, the answer goes anyway (the write is
 * committed), and auth tries again in the background.
 */
static void
revoke_tokens(struct cfgw *w, struct http_conn *c, json_int_t rev,
    json_int_t dbid, int status, json_int_t principal)
{
	struct revoking		*r = xcalloc(1, sizeof(*r));
	const struct cobj	*o = cache_get(principal);
	char			 user[300];

	/* a new password is the operator's way out of a locked user name */
	if (o != NULL && o->key != NULL && (o->kind == CFG_PERSON ||
	    o->kind == CFG_APPLICATION)) {
		snprintf(user, sizeof(user), "%c:%s", o->kind == CFG_PERSON ?
		    'p' : 'a', o->key);
		throttle_forget(w->throttle, user);
	}
	r->w = w;
	r->conn = c;
	r->revision = rev;
	r->dbid = dbid;
	r->status = status;
	w->busy_jobs++;
	auth_revoke(w->auth, principal, worker_conf()->workers[WORKER_CONFIG].
	    token_ttl, revoked, r);
}

/* revoked - the principal's tokens are gone: answer once cached */
static void
revoked(int ok, void *arg)
{
	struct revoking	*r = arg;
	struct cfgw	*w = r->w;

	w->busy_jobs--;
	changes_park_write(w, r->conn, r->revision, r->dbid, r->status, NULL);
	/* The cache may have caught up meanwhile. */
	if (!w->dying)
		changes_wake(w);
	free(r);
}

/* tenant_created - the tenant object is made (or was already there) */
static void
tenant_created(enum store_rc rc, json_int_t rev, json_int_t dbid,
    const char *detail, void *arg)
{
	struct cfgw	*w = arg;

	/* Another instance may have made it first: that is as good. */
	if (rc == STORE_OK)
		cfgfollow_poke(w->follow);
	else if (rc != STORE_DUPLICATE)
		log_warnx("cannot create the tenant object: %s", detail);
}

/* imported - the import ended: answer once the cache holds it */
static void
imported(int status, json_t *answer, json_int_t rev, void *arg)
{
	struct cfgw		*w = arg;
	struct http_conn	*c = w->importing;
	char			*text = json_dumps(answer, JSON_COMPACT);

	w->importing = NULL;
	json_decref(answer);
	if (status != 200 || w->dying) {
		reply_json(c, w->dying ? 503 : status, NULL, text,
		    strlen(text));
		free(text);
		return;
	}
	rds_command(w->pub, NULL, NULL, "PUBLISH %s %lld", w->channel,
	    (long long)rev);
	changes_park_write(w, c, rev, 0, 200, text);
	cfgfollow_poke(w->follow);
}
