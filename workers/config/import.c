/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import - all or nothing, without stalling the loop or other writers.
 *
 *   scan     parse every line once: shapes, placeholder dbids (declared
 *            once each); a slice of lines per loop turn
 *   dbids    one query draws real dbids for the placeholders
 *   prepare  parse again: placeholders replaced, each object validated,
 *            permissions, references, keys (existing in the cache:
 *            update; new: create; twice in the import: refused),
 *            secrets taken out
 *   hash     secrets hashed on the thread pool
 *   write    on a connection of its own, in one transaction: rows staged
 *            into a temporary table in batches, then one statement
 *            merges them into the store's tables, bumping the revision
 *            once per object; references are checked at commit
 *
 * Other writers wait only for the merge and the commit: the staging takes
 * no lock they need.  Any error: rollback, and per-line errors (up to
 * ERRORS_MAX) in a 422.
 */
#include <stdarg.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "access.h"
#include "cache.h"
#include "import.h"
#include "log.h"
#include "offload.h"
#include "pgc.h"
#include "store.h"
#include "schema.h"
#include "validate.h"
#include "util.h"

#define SLICE		2000	/* lines per loop turn */
#define BATCH		1000	/* rows per staging statement */
#define ERRORS_MAX	100

enum phase { P_SCAN, P_PREPARE, P_WRITE };

struct placeholder {
	json_int_t	 neg;		/* as written: -7 */
	size_t		 line;		/* where it is declared */
	json_int_t	 real;
	enum cfg_kind	 kind;
};

struct secret {
	size_t		 row;
	char		*field;
	char		*plain;		/* NULL once hashed, or to clear */
	char		*hash;
};

struct row {
	json_int_t	 dbid;		/* 0: drawn at staging */
	json_int_t	 version;	/* update: the version replaced */
	enum cfg_kind	 kind;
	int		 update;
	char		*key;
	char		*data;
	char		*refs;		/* "[1,2]" */
};

/* The natural keys the import has used so far. */
struct keyslot {
	char		*key;		/* "<kind>/<natural key>" */
};

struct import {
	struct event_base	*base;
	struct event		*ev_step;
	enum phase		 phase;
	char			*body;
	size_t			 len;
	size_t			 pos;
	size_t			 line;
	size_t			 lines;		/* counted by the scan */
	struct principal	 who;
	struct grants		 g;
	struct placeholder	*ph;		/* by neg */
	struct placeholder	*by_real;
	size_t			 nph;
	size_t			 phcap;
	struct keyslot		*keys;
	size_t			 nkeys;
	size_t			 keycap;
	struct row		*rows;
	size_t			 nrows;
	size_t			 rowcap;
	struct secret		*secrets;
	size_t			 nsecrets;
	size_t			 secretcap;
	int			 hash_failed;
	int			 hash_pending;
	int			 quiet;		/* parsing again: no new errors */
	json_t			*errors;
	size_t			 nerrors;
	struct pgc		*pg;
	struct pgc_txn		*txn;
	size_t			 staged;
	size_t			 secret_pos;	/* next secret to stage */
	int			 failed;
	char			 why[512];
	int			 why_status;
	json_int_t		 revision;
	size_t			 created;
	size_t			 updated;
	char			 wid[STORE_WID_LEN + 1]; /* its changes carry it */
	struct store_lookup	*lk;		/* its COMMIT's answer was lost */
	import_cb		*cb;
	void			*arg;
};

static struct import	*cur;

static void	step(evutil_socket_t, short, void *);

/*
 * next_slice - run step again on the next loop turn, after the loop has
 * looked at its sockets: an event activated from a callback would run in
 * the same turn, and slices would never let other clients in.
 */
static void
next_slice(struct import *im)
{
	struct timeval	zero = { 0, 0 };

	evtimer_add(im->ev_step, &zero);
}
static void	stage_next(struct import *);
static void	staged_cb(struct pgc *, const PGresult *, void *);

int
import_running(void)
{
	return cur != NULL;
}

/* ---- errors and the end ---- */

/* line_error - note what is wrong with the current line */
static void
line_error(struct import *im, const char *code, const char *field,
    const char *fmt, ...)
{
	char	 msg[300];
	va_list	 ap;
	json_t	*e;

	if (im->quiet)		/* said in the first pass already */
		return;
	im->nerrors++;
	if (json_array_size(im->errors) >= ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)im->line,
	    "error", code, "message", msg);
	if (field != NULL && *field != '\0')
		json_object_set_new(e, "field", json_string(field));
	json_array_append_new(im->errors, e);
}

static void
import_free(struct import *im)
{
	size_t	i;

	for (i = 0; i < im->nrows; i++) {
		free(im->rows[i].key);
		free(im->rows[i].data);
		free(im->rows[i].refs);
	}
	for (i = 0; i < im->nsecrets; i++) {
		free(im->secrets[i].field);
		if (im->secrets[i].plain != NULL)
			explicit_bzero(im->secrets[i].plain,
			    strlen(im->secrets[i].plain));
		free(im->secrets[i].plain);
		free(im->secrets[i].hash);
	}
	for (i = 0; i < im->keycap; i++)
		free(im->keys[i].key);
	free(im->keys);
	free(im->rows);
	free(im->secrets);
	free(im->ph);
	free(im->by_real);
	free(im->body);
	json_decref(im->errors);
	access_clear(&im->g);
	event_free(im->ev_step);
	if (im->lk != NULL)
		store_lookup_cancel(im->lk);
	pgc_free(im->pg);
	free(im);
}

/* finish - answer and forget the import */
static void
finish(struct import *im, int status, json_t *answer)
{
	import_cb	*cb = im->cb;
	void		*arg = im->arg;
	json_int_t	 rev = im->revision;

	cur = NULL;
	import_free(im);
	/* Give the import's memory (the body, twice) back to the system. */
	malloc_trim(0);
	cb(status, answer, rev, arg);
}

/* reject - 422 with the per-line errors */
static int
by_line(const void *a, const void *b)
{
	json_int_t	la = json_integer_value(json_object_get(
			    *(json_t *const *)a, "line"));
	json_int_t	lb = json_integer_value(json_object_get(
			    *(json_t *const *)b, "line"));

	return la < lb ? -1 : la > lb;
}

/* sort_errors - errors of both passes, in line order */
static void
sort_errors(struct import *im)
{
	size_t	 n = json_array_size(im->errors), i;
	json_t	**v = xcalloc(n + 1, sizeof(*v)), *sorted = json_array();

	for (i = 0; i < n; i++)
		v[i] = json_array_get(im->errors, i);
	qsort(v, n, sizeof(*v), by_line);
	for (i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	json_decref(im->errors);
	im->errors = sorted;
	free(v);
}

static void
reject(struct import *im)
{
	json_t	*j;

	sort_errors(im);
	j = json_pack("{s:s, s:s, s:I, s:O}", "error", "ImportRejected",
	    "message", "nothing was written; fix the lines below", "count",
	    (json_int_t)im->nerrors, "errors", im->errors);
	finish(im, 422, j);
}

static void
fail(struct import *im, int status, const char *code, const char *msg)
{
	finish(im, status, json_pack("{s:s, s:s}", "error", code, "message",
	    msg));
}

/* ---- lines ---- */

/* next_line - the next non-blank line of the body, or NULL at the end */
static char *
next_line(struct import *im, size_t *len)
{
	char	*s, *nl;

	while (im->pos < im->len) {
		s = im->body + im->pos;
		nl = memchr(s, '\n', im->len - im->pos);
		*len = nl != NULL ? (size_t)(nl - s) : im->len - im->pos;
		im->pos += *len + (nl != NULL);
		im->line++;
		if (strspn(s, " \t\r") < *len)
			return s;
	}
	return NULL;
}

/* parse_line - {"type": "...", "object": {...}}; NULL after an error */
static json_t *
parse_line(struct import *im, const char *s, size_t len,
    const struct cfg_type **t)
{
	json_error_t	 e;
	json_t		*j, *obj;
	const char	*type;

	if ((j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &e)) == NULL) {
		line_error(im, "BadJson", NULL, "malformed JSON at column %d: "
		    "%s", e.column, e.text);
		return NULL;
	}
	if (json_unpack(j, "{s:s, s:o}", "type", &type, "object", &obj) != 0 ||
	    !json_is_object(obj) || json_object_size(j) != 2) {
		line_error(im, "BadValue", NULL, "a line must be {\"type\": "
		    "\"Person\", \"object\": {...}}");
		json_decref(j);
		return NULL;
	}
	if ((*t = cfg_type_by_name(type, strlen(type))) == NULL) {
		line_error(im, "BadValue", "type", "type: no such type %s",
		    type);
		json_decref(j);
		return NULL;
	}
	json_incref(obj);
	json_decref(j);
	return obj;
}

/* ---- placeholders ---- */

static int
ph_cmp(const void *a, const void *b)
{
	json_int_t	x = ((const struct placeholder *)a)->neg;
	json_int_t	y = ((const struct placeholder *)b)->neg;

	return x < y ? -1 : x > y;
}

static int
real_cmp(const void *a, const void *b)
{
	json_int_t	x = ((const struct placeholder *)a)->real;
	json_int_t	y = ((const struct placeholder *)b)->real;

	return x < y ? -1 : x > y;
}

/* ph_find - a placeholder, once ph_sort has run */
static struct placeholder *
ph_find(struct import *im, json_int_t neg)
{
	struct placeholder	key;

	if (im->nph == 0)
		return NULL;
	key.neg = neg;
	return bsearch(&key, im->ph, im->nph, sizeof(*im->ph), ph_cmp);
}

/*
 * ph_sort - order the placeholders for lookups; one declared twice is
 * an error at its later line.
 */
static void
ph_sort(struct import *im)
{
	size_t	i;

	if (im->nph > 1)
		qsort(im->ph, im->nph, sizeof(*im->ph), ph_cmp);
	for (i = 1; i < im->nph; i++)
		if (im->ph[i].neg == im->ph[i - 1].neg) {
			im->line = im->ph[i].line > im->ph[i - 1].line ?
			    im->ph[i].line : im->ph[i - 1].line;
			line_error(im, "Duplicate", "dbid", "dbid: placeholder "
			    "%lld is declared twice", (long long)im->ph[i].neg);
		}
}

/* scan_line - count placeholder declarations */
static void
scan_line(struct import *im, const char *s, size_t len)
{
	const struct cfg_type	*t;
	json_t			*obj, *d;
	json_int_t		 v;

	if ((obj = parse_line(im, s, len, &t)) == NULL)
		return;
	d = json_object_get(obj, "dbid");
	if (json_is_integer(d) && (v = json_integer_value(d)) < 0) {
		{
			if (im->nph == im->phcap) {
				im->phcap = im->phcap ? im->phcap * 2 : 64;
				im->ph = xrealloc(im->ph, im->phcap *
				    sizeof(*im->ph));
			}
			im->ph[im->nph].neg = v;
			im->ph[im->nph].line = im->line;
			im->ph[im->nph].real = 0;
			im->ph[im->nph].kind = cfg_type_kind(t);
			im->nph++;
		}
	}
	json_decref(obj);
}

/* rewrite - every placeholder value anywhere in j becomes its dbid */
static void
rewrite(struct import *im, json_t *j)
{
	struct placeholder	*p;
	const char		*k;
	json_t			*v;
	size_t			 i;

	if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			if (json_is_integer(v) && json_integer_value(v) < 0 &&
			    (p = ph_find(im, json_integer_value(v))) != NULL)
				json_object_set_new(j, k, json_integer(p->real));
			else
				rewrite(im, v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (json_is_integer(v) && json_integer_value(v) < 0 &&
			    (p = ph_find(im, json_integer_value(v))) != NULL)
				json_array_set_new(j, i, json_integer(p->real));
			else
				rewrite(im, v);
		}
	}
}

/* ---- natural keys used in the import ---- */

static size_t
key_hash(const char *s)
{
	size_t	h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h;
}

/* key_slot - the slot of key, or the empty one where it goes */
static struct keyslot *
key_slot(struct import *im, const char *key)
{
	size_t	i = key_hash(key) & (im->keycap - 1);

	while (im->keys[i].key != NULL && strcmp(im->keys[i].key, key) != 0)
		i = (i + 1) & (im->keycap - 1);
	return &im->keys[i];
}

/* key_grow - double the key table when it is half full */
static void
key_grow(struct import *im)
{
	struct keyslot	*old = im->keys;
	size_t		 n = im->keycap, i;

	im->keycap *= 2;
	im->keys = xcalloc(im->keycap, sizeof(*im->keys));
	for (i = 0; i < n; i++)
		if (old[i].key != NULL)
			*key_slot(im, old[i].key) = old[i];
	free(old);
}

/* key_put - note a key (not there yet) as used; takes key */
static void
key_put(struct import *im, char *key)
{
	if (2 * (im->nkeys + 1) > im->keycap)
		key_grow(im);
	key_slot(im, key)->key = key;
	im->nkeys++;
}

/* ---- prepare ---- */

struct refs {
	struct import	*im;
	char		*text;
	size_t		 len;
	FILE		*f;
	int		 n;
	int		 bad;
};

static void
ref_cb(const char *field, enum cfg_kind target, json_int_t dbid, void *arg)
{
	struct refs		*r = arg;
	const struct cobj	*o = cache_get(dbid);
	int			 ok = o != NULL && o->kind == (int)target;

	if (!ok) {
		struct placeholder	 key, *p;

		key.real = dbid;
		p = r->im->nph == 0 ? NULL : bsearch(&key, r->im->by_real,
		    r->im->nph, sizeof(*r->im->by_real), real_cmp);
		ok = p != NULL && p->kind == target;
	}
	if (!ok && !r->bad) {
		r->bad = 1;
		line_error(r->im, "BadReference", field, "%s: no %s with dbid "
		    "%lld here or in the import", field,
		    cfg_type_name(cfg_type_at(target)), (long long)dbid);
	}
	fprintf(r->f, "%s%lld", r->n++ > 0 ? "," : "", (long long)dbid);
}

/* take_secrets - write-only fields out of obj, to hash later */
static void
take_secrets(struct import *im, const struct cfg_type *t, json_t *obj)
{
	const char	*k;
	json_t		*v;
	void		*tmp;

	json_object_foreach_safe(obj, tmp, k, v) {
		if (!cfg_is_write_only(t, k))
			continue;
		if (json_is_string(v) || json_is_null(v)) {
			if (im->nsecrets == im->secretcap) {
				im->secretcap = im->secretcap ?
				    im->secretcap * 2 : 256;
				im->secrets = xrealloc(im->secrets,
				    im->secretcap * sizeof(*im->secrets));
			}
			im->secrets[im->nsecrets].row = im->nrows;
			im->secrets[im->nsecrets].field = xstrdup(k);
			im->secrets[im->nsecrets].plain = json_is_null(v) ?
			    NULL : xstrdup(json_string_value(v));
			im->secrets[im->nsecrets].hash = NULL;
			im->nsecrets++;
		}
		json_object_del(obj, k);
	}
}

/*
 * validate - create or update?  An object with a positive dbid updates
 * it; else its natural key decides.  Returns -1 after an error.
 */
static int
validate(struct import *im, const struct cfg_type *t, json_t *obj,
    json_int_t ph, struct row *row)
{
	struct cfg_error	 e;
	const struct cobj	*o;
	json_t			*d = json_object_get(obj, "dbid");
	char			*k, *kk;

	if (ph != 0)
		row->dbid = ph_find(im, ph)->real;
	else if (json_is_integer(d) && json_integer_value(d) > 0) {
		o = cache_get(json_integer_value(d));
		if (o == NULL || o->kind != (int)cfg_type_kind(t)) {
			line_error(im, "NotFound", "dbid", "dbid: no %s with "
			    "dbid %lld", cfg_type_name(t),
			    (long long)json_integer_value(d));
			return -1;
		}
		row->update = 1;
		row->dbid = o->dbid;
		row->version = o->version;
	}
	if (cfg_validate(t, obj, !row->update, row->dbid, row->version,
	    &e) == -1) {
		line_error(im, e.code, e.field, "%s", e.message);
		return -1;
	}
	if ((k = cfg_key(t, obj)) == NULL) {
		line_error(im, "Missing", NULL, "the object has no natural key");
		return -1;
	}
	kk = xasprintf("%d/%s", cfg_type_kind(t), k);
	if (key_slot(im, kk)->key != NULL) {
		line_error(im, "Duplicate", NULL, "%s %s is in the import "
		    "twice", cfg_type_name(t), k);
		free(kk);
		free(k);
		return -1;
	}
	o = cache_find(cfg_type_kind(t), k);
	if (o != NULL && !row->update) {
		if (ph != 0) {
			line_error(im, "Duplicate", "dbid", "placeholder %lld: "
			    "%s %s exists already (dbid %lld); refer to it by "
			    "its dbid", (long long)ph, cfg_type_name(t), k,
			    (long long)o->dbid);
			free(kk);
			free(k);
			return -1;
		}
		row->update = 1;
		row->dbid = o->dbid;
		row->version = o->version;
		json_object_del(obj, "version");
	}
	row->key = k;
	key_put(im, kk);
	return 0;
}

/* prepare_line - one object, ready to stage */
static void
prepare_line(struct import *im, const char *s, size_t len)
{
	const struct cfg_type	*t;
	struct row		 row;
	struct refs		 r;
	json_t			*obj;

	json_t			*d;
	json_int_t		 ph = 0;

	memset(&row, 0, sizeof(row));
	im->quiet = 1;
	obj = parse_line(im, s, len, &t);
	im->quiet = 0;
	if (obj == NULL)
		return;
	/* Its own placeholder first, before references are rewritten. */
	d = json_object_get(obj, "dbid");
	if (json_is_integer(d) && json_integer_value(d) < 0) {
		ph = json_integer_value(d);
		json_object_del(obj, "dbid");
	}
	rewrite(im, obj);
	row.kind = cfg_type_kind(t);
	if (cfg_type_kind(t) == CFG_TENANT ||
	    validate(im, t, obj, ph, &row) == -1) {
		if (cfg_type_kind(t) == CFG_TENANT)
			line_error(im, "BadValue", "type", "the tenant object "
			    "cannot be imported");
		json_decref(obj);
		return;
	}
	if (!access_can(&im->g, row.kind, row.dbid, row.update ? RIGHT_UPDATE :
	    RIGHT_CREATE)) {
		line_error(im, "Forbidden", NULL, "no %s right on %s",
		    row.update ? "update" : "create", cfg_type_collection(t));
		free(row.key);
		json_decref(obj);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.im = im;
	if ((r.f = open_memstream(&r.text, &r.len)) == NULL)
		fatal("open_memstream");
	fputc('[', r.f);
	cfg_refs(t, obj, ref_cb, &r);
	fputc(']', r.f);
	fclose(r.f);
	take_secrets(im, t, obj);
	row.refs = r.text;
	row.data = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (im->nrows == im->rowcap) {
		im->rowcap = im->rowcap ? im->rowcap * 2 : 1024;
		im->rows = xrealloc(im->rows, im->rowcap * sizeof(*im->rows));
	}
	im->rows[im->nrows++] = row;
	if (row.update)
		im->updated++;
	else
		im->created++;
}

/* ---- hash ---- */

static void
hash_job(void *arg)
{
	struct import	*im = arg;
	char		*h;
	size_t		 i;

	for (i = 0; i < im->nsecrets; i++) {
		if (im->secrets[i].plain == NULL)
			continue;
		if ((h = auth_hash(im->secrets[i].plain)) == NULL)
			im->hash_failed = 1;
		im->secrets[i].hash = h;
		explicit_bzero(im->secrets[i].plain,
		    strlen(im->secrets[i].plain));
		free(im->secrets[i].plain);
		im->secrets[i].plain = NULL;
	}
}

static void	write_begin(struct import *);

static void
hashed(void *arg)
{
	struct import	*im = arg;

	im->hash_pending = 0;
	if (cur != im || offload_cancelled()) {	/* aborted meanwhile */
		if (cur == im)
			cur = NULL;
		import_free(im);
		return;
	}
	if (im->hash_failed)
		fail(im, 500, "Internal", "a secret could not be hashed; "
		    "nothing was written");
	else
		write_begin(im);
}

/* ---- write ---- */

/* Rows are staged here, then merged in one statement. */
static const char stage_table_sql[] =
    "CREATE TEMP TABLE cfg_import ("
    " n integer, dbid bigint, type text, key text, data jsonb,"
    " refs bigint[], sf text[], sh text[], ver integer, upd boolean)"
    " ON COMMIT DROP";

static const char stage_sql[] =
    "INSERT INTO cfg_import SELECT n, COALESCE(dbid, nextval('cfg_dbid_seq')),"
    " type, key, data, refs, sf, sh, ver, upd"
    " FROM jsonb_to_recordset($1::jsonb) AS x (n integer, dbid bigint,"
    " type text, key text, data jsonb, refs bigint[], sf text[], sh text[],"
    " ver integer, upd boolean)";

/*
 * The merge: one revision per row, in line order, from one bump of the
 * revision row; the object rows, references, secrets and change log;
 * the number of rows written (an update whose object changed meanwhile
 * writes nothing, and the import is rolled back) and the last revision.
 * $1 is the import's write id, stored with each change.
 */
static const char merge_sql[] =
    "WITH cnt AS (SELECT count(*) AS n FROM cfg_import),"
    " rev AS (UPDATE cfg_revision SET revision = revision + (SELECT n"
    "  FROM cnt) WHERE id = 1 RETURNING revision - (SELECT n FROM cnt)"
    "  AS base),"
    " ins AS (INSERT INTO cfg_object (dbid, type, key, version, data)"
    "  SELECT dbid, type, key, 1, data || jsonb_build_object('dbid', dbid,"
    "   'version', 1) FROM cfg_import WHERE NOT upd"
    "  RETURNING dbid, data),"
    " upd AS (UPDATE cfg_object o SET key = i.key, version = o.version + 1,"
    "  data = i.data || jsonb_build_object('dbid', o.dbid,"
    "   'version', o.version + 1)"
    "  FROM cfg_import i WHERE i.upd AND o.dbid = i.dbid AND"
    "   o.type = i.type AND o.version = i.ver"
    "  RETURNING o.dbid, o.data),"
    " dr AS (DELETE FROM cfg_ref WHERE from_dbid IN (SELECT dbid FROM upd)),"
    " ir AS (INSERT INTO cfg_ref (from_dbid, to_dbid)"
    "  SELECT dbid, unnest(refs) FROM cfg_import),"
    " sec AS (INSERT INTO cfg_secret (dbid, field, hash)"
    "  SELECT i.dbid, s.f, s.h FROM cfg_import i,"
    "   unnest(i.sf, i.sh) AS s (f, h) WHERE s.h IS NOT NULL"
    "  ON CONFLICT (dbid, field) DO UPDATE SET hash = EXCLUDED.hash),"
    " clr AS (DELETE FROM cfg_secret c USING cfg_import i,"
    "  unnest(i.sf, i.sh) AS s (f, h) WHERE s.h IS NULL AND"
    "  c.dbid = i.dbid AND c.field = s.f),"
    " ch AS (INSERT INTO cfg_change (revision, op, type, dbid, object,"
    "  write_id)"
    "  SELECT rev.base + i.n, CASE WHEN i.upd THEN 'updated'"
    "   ELSE 'created' END, i.type, i.dbid, COALESCE(a.data, b.data),"
    "   $1::uuid"
    "  FROM rev, cfg_import i LEFT JOIN ins a ON a.dbid = i.dbid"
    "   LEFT JOIN upd b ON b.dbid = i.dbid)"
    " SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd),"
    "  (SELECT base FROM rev) + (SELECT n FROM cnt)";

static void
write_failed(struct import *im, int status, const char *fmt, ...)
{
	va_list	ap;

	if (im->failed)
		return;
	im->failed = 1;
	im->why_status = status;
	va_start(ap, fmt);
	vsnprintf(im->why, sizeof(im->why), fmt, ap);
	va_end(ap);
}

/* step_cb - a staging statement (or the table) is done */
static void
step_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct import	*im = arg;

	if (res == NULL)
		write_failed(im, 503, "PostgreSQL became unavailable");
	else if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		write_failed(im, 500, "%s", PQresultErrorMessage(res));
}

/* committed - the import is in: 200 with its counts */
static void
committed(struct import *im)
{
	log_info("import: %zu created, %zu updated, up to revision %lld",
	    im->created, im->updated, (long long)im->revision);
	finish(im, 200, json_pack("{s:I, s:I, s:I}", "created",
	    (json_int_t)im->created, "updated", (json_int_t)im->updated,
	    "revision", im->revision));
}

/*
 * looked - the change log's answer on an import whose COMMIT's answer was
 * lost: it committed (found), it did not, or nobody could say in time
 */
static void
looked(int found, json_int_t revision, json_int_t dbid, void *arg)
{
	struct import	*im = arg;

	im->lk = NULL;
	if (found == 1) {
		log_info("import: the change log shows it committed");
		im->revision = revision;
		committed(im);
	} else if (found == 0)
		fail(im, 503, "Unavailable", "the connection to PostgreSQL was "
		    "lost before the import committed; nothing was written, "
		    "retry later");
	else
		fail(im, 503, "Unavailable", "PostgreSQL was lost before it "
		    "confirmed the import's commit, and could not be asked "
		    "again whether it committed: the import may have been "
		    "committed; read the objects or GET /v1/changes before "
		    "retrying");
}

static void
end_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct import	*im = arg;
	const char	*state;

	if (cur != im)		/* aborted: being freed */
		return;

	if (!im->failed && res == NULL) {
		/* The COMMIT was sent and its answer lost: ask the log. */
		log_info("import: the connection was lost before the commit's "
		    "answer; asking the change log whether it committed");
		im->lk = store_lookup(im->pg, im->wid, looked, im);
		return;
	}
	if (!im->failed && (res == NULL || PQresultStatus(res) !=
	    PGRES_COMMAND_OK || strcmp(PQcmdStatus((PGresult *)res),
	    "COMMIT") != 0)) {
		state = res != NULL ? PQresultErrorField(res,
		    PG_DIAG_SQLSTATE) : NULL;
		if (state != NULL && strcmp(state, "23503") == 0)
			write_failed(im, 409, "a reference points to an object "
			    "deleted meanwhile: %s", PQresultErrorMessage(res));
		else
			write_failed(im, res == NULL ? 503 : 500, "the commit "
			    "failed");
	}
	if (im->failed) {
		im->why[strcspn(im->why, "\n")] = '\0';
		fail(im, im->why_status, im->why_status == 503 ?
		    "Unavailable" : im->why_status == 409 ? "Conflict" :
		    "Internal", im->why);
		return;
	}
	committed(im);
}

/* merge_cb - every row went in, or the import is undone */
static void
merge_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct import	*im = arg;
	const char	*state;

	if (cur != im)		/* aborted: being freed */
		return;

	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1) {
		if ((size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10) !=
		    im->nrows)
			write_failed(im, 409, "an object changed while the "
			    "import ran; nothing was written, try again");
		im->revision = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	} else if (res != NULL && (state = PQresultErrorField(res,
	    PG_DIAG_SQLSTATE)) != NULL && strcmp(state, "23505") == 0)
		write_failed(im, 409, "a natural key was taken meanwhile: %s",
		    PQresultErrorMessage(res));
	else
		step_cb(p, res, im);
	if (im->failed)
		pgc_rollback(im->txn, end_cb, im);
	else
		pgc_commit(im->txn, end_cb, im);
}

/* json_str - s as a JSON string literal, into f */
static void
json_str(FILE *f, const char *s)
{
	json_t	*j = json_string(s);
	char	*t = json_dumps(j, JSON_ENCODE_ANY);

	fputs(t, f);
	free(t);
	json_decref(j);
}

/* stage_row - one row of a staging batch */
static void
stage_row(struct import *im, FILE *f, size_t i, size_t *si)
{
	const struct row	*r = &im->rows[i];
	size_t			 k, first = *si;

	fprintf(f, "{\"n\":%zu,\"dbid\":", i + 1);
	if (r->dbid != 0)
		fprintf(f, "%lld", (long long)r->dbid);
	else
		fputs("null", f);
	fputs(",\"type\":", f);
	json_str(f, cfg_type_name(cfg_type_at(r->kind)));
	fputs(",\"key\":", f);
	json_str(f, r->key);
	fprintf(f, ",\"data\":%s,\"refs\":%s,\"sf\":[", r->data, r->refs);
	for (k = first; k < im->nsecrets && im->secrets[k].row == i; k++) {
		if (k > first)
			fputc(',', f);
		json_str(f, im->secrets[k].field);
	}
	fputs("],\"sh\":[", f);
	for (k = first; k < im->nsecrets && im->secrets[k].row == i; k++) {
		if (k > first)
			fputc(',', f);
		if (im->secrets[k].hash != NULL)
			json_str(f, im->secrets[k].hash);
		else
			fputs("null", f);
	}
	*si = k;
	fprintf(f, "],\"ver\":%lld,\"upd\":%s}", (long long)r->version,
	    r->update ? "true" : "false");
}

/* stage_next - the next batch, or the merge once all are staged */
static void
stage_next(struct import *im)
{
	char		*buf = NULL;
	const char	*params[1];
	size_t		 len = 0, i, end;
	FILE		*f;

	if (im->failed) {
		pgc_rollback(im->txn, end_cb, im);
		return;
	}
	if (im->staged == im->nrows) {
		params[0] = im->wid;
		pgc_txn_query(im->txn, merge_sql, 1, params, merge_cb, im);
		return;
	}
	end = im->staged + BATCH < im->nrows ? im->staged + BATCH : im->nrows;
	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	fputc('[', f);
	for (i = im->staged; i < end; i++) {
		if (i > im->staged)
			fputc(',', f);
		stage_row(im, f, i, &im->secret_pos);
	}
	fputc(']', f);
	if (fclose(f) != 0)
		fatal("import");
	im->staged = end;
	params[0] = buf;
	pgc_txn_query(im->txn, stage_sql, 1, params, staged_cb, im);
	free(buf);
}

static void
staged_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct import	*im = arg;

	if (cur != im)		/* aborted: being freed */
		return;

	step_cb(p, res, im);
	stage_next(im);
}

/* write_begin - the transaction: deferred references, staging table */
static void
write_begin(struct import *im)
{
	im->phase = P_WRITE;
	if ((im->txn = pgc_begin(im->pg)) == NULL) {
		fail(im, 503, "Unavailable", "PostgreSQL is busy; retry later");
		return;
	}
	pgc_txn_query(im->txn, "SET CONSTRAINTS ALL DEFERRED", 0, NULL,
	    step_cb, im);
	pgc_txn_query(im->txn, stage_table_sql, 0, NULL, step_cb, im);
	stage_next(im);
}

/* ---- the phases, a slice per loop turn ---- */

/* dbids_cb - real dbids for the placeholders, in declaration order */
static void
dbids_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct import	*im = arg;
	size_t		 i;

	if (cur != im)
		return;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    (size_t)PQntuples(res) != im->nph) {
		fail(im, 503, "Unavailable", "PostgreSQL is unavailable; "
		    "nothing was written, retry later");
		return;
	}
	for (i = 0; i < im->nph; i++)
		im->ph[i].real = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
	/* The same placeholders by real dbid, to check references. */
	im->by_real = xcalloc(im->nph + 1, sizeof(*im->by_real));
	if (im->nph > 0)
		memcpy(im->by_real, im->ph, im->nph * sizeof(*im->ph));
	if (im->nph > 1)
		qsort(im->by_real, im->nph, sizeof(*im->by_real), real_cmp);
	im->phase = P_PREPARE;
	im->pos = 0;
	im->line = 0;
	for (im->keycap = 1024; im->keycap < 2 * (im->lines + 1);
	    im->keycap *= 2)
		;
	im->keys = xcalloc(im->keycap, sizeof(*im->keys));
	next_slice(im);
}

/* scanned - every line read once: draw the placeholders' dbids */
static void
scanned(struct import *im)
{
	char		 n[24];
	const char	*params[1] = { n };

	im->lines = im->line;
	ph_sort(im);
	/* Go on after errors too: the answer lists every bad line. */
	snprintf(n, sizeof(n), "%zu", im->nph);
	if (pgc_query(im->pg, "SELECT nextval('cfg_dbid_seq') FROM "
	    "generate_series(1, $1::integer)", 1, params, dbids_cb, im) == -1)
		fail(im, 503, "Unavailable", "PostgreSQL is busy; retry later");
}

/* prepared - every object checked: hash the secrets, then write */
static void
prepared(struct import *im)
{
	size_t	i;

	if (im->nerrors > 0) {
		reject(im);
		return;
	}
	if (im->nrows == 0) {
		fail(im, 422, "BadValue", "the import holds no object");
		return;
	}
	for (i = 0; i < im->nsecrets; i++)
		if (im->secrets[i].plain != NULL) {
			im->hash_pending = 1;
			offload(hash_job, hashed, im);
			return;
		}
	write_begin(im);
}

/* step - one slice of scanning or preparing */
static void
step(evutil_socket_t fd, short what, void *arg)
{
	struct import	*im = arg;
	char		*s;
	size_t		 len;
	int		 n;

	for (n = 0; n < SLICE; n++) {
		if ((s = next_line(im, &len)) == NULL)
			break;
		if (im->phase == P_SCAN)
			scan_line(im, s, len);
		else
			prepare_line(im, s, len);
	}
	if (n == SLICE) {
		next_slice(im);
		return;
	}
	if (im->phase == P_SCAN)
		scanned(im);
	else
		prepared(im);
}

/* import_start - see import.h */
int
import_start(struct event_base *base, const char *conninfo,
    const char *password, const char *body, size_t len,
    const struct principal *who, import_cb *cb, void *arg)
{
	struct import	*im;

	if (cur != NULL)
		return -1;
	im = xcalloc(1, sizeof(*im));
	im->base = base;
	im->body = xmalloc(len + 1);
	memcpy(im->body, body, len);
	im->body[len] = '\0';
	im->len = len;
	im->who = *who;
	access_grants(who, &im->g);
	im->errors = json_array();
	im->cb = cb;
	im->arg = arg;
	im->phase = P_SCAN;
	store_write_id(im->wid);
	/* Its own connection: the worker's stays free for everyone else. */
	if ((im->pg = pgc_new(base, conninfo, password, NULL, NULL)) == NULL)
		fatalx("import: postgres.conninfo does not parse");
	im->ev_step = event_new(base, -1, 0, step, im);
	cur = im;
	next_slice(im);
	return 0;
}

/* import_abort - forget the running import; its transaction rolls back */
void
import_abort(void)
{
	struct import	*im = cur;

	if (im == NULL)
		return;
	cur = NULL;
	/* A hash job still holds it: hashed() frees it when it comes. */
	if (im->hash_pending)
		return;
	import_free(im);
}
