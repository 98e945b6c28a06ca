/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_schema - libFuzzer over the config object model, the code every
 * POST, PUT and PATCH body reaches.  The first byte picks the type (low
 * five bits) and the mode (create or update, NUL bytes allowed in strings);
 * the rest is the body.  Besides crashes and leaks it checks what the
 * worker relies on: an error always has a 400/409/422 status, a code and a
 * message starting with its field; an accepted object is a fixed point of
 * validation; a merge patch exists exactly for object patches; every
 * reference points at a real kind and a valid dbid; after cfg_unref no
 * reference to the cut object is left, and a refusal changes nothing;
 * cfg_public never shows a write-only field.
 */
#include "../../common/schema.c"
#include "../../workers/config/validate.c"

#include <stddef.h>
#include <stdint.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct refs {
	size_t		n;
	enum cfg_kind	kind;		/* the first one seen */
	json_int_t	dbid;
	enum cfg_kind	cut_kind;	/* counting refs to this one */
	json_int_t	cut_dbid;
	size_t		cut_left;
};

/* check - an invariant the worker relies on */
static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* check_err - a well-formed error */
static void
check_err(const struct cfg_error *err)
{
	size_t	n = strlen(err->field);

	check(err->status == 400 || err->status == 409 || err->status == 422);
	check(err->code[0] != '\0' && memchr(err->message, '\0',
	    sizeof(err->message)) != NULL);
	check(n < sizeof(err->field));
	check(n == 0 || strncmp(err->message, err->field, n) == 0);
}

/* on_ref - every reference is sane; count them and those to the cut */
static void
on_ref(const char *field, enum cfg_kind kind, json_int_t dbid, void *arg)
{
	struct refs	*r = arg;

	check(field[0] != '\0' && (unsigned)kind < CFG_NTYPES);
	check(dbid >= 1 && dbid <= CFG_DBID_MAX);
	if (r->n++ == 0) {
		r->kind = kind;
		r->dbid = dbid;
	}
	if (kind == r->cut_kind && dbid == r->cut_dbid)
		r->cut_left++;
}

/* try_validate - validate a copy; an accepted object validates again */
static void
try_validate(const struct cfg_type *t, const json_t *v, int creating)
{
	struct cfg_error	 err;
	json_t			*o = json_deep_copy(v), *again;

	if (cfg_validate(t, o, creating, 7, 3, &err) == -1) {
		check_err(&err);
		json_decref(o);
		return;
	}
	check(json_is_object(o));
	again = json_deep_copy(o);
	check(cfg_validate(t, again, creating, 7, 3, &err) == 0);
	check(json_equal(again, o));
	json_decref(again);
	json_decref(o);
}

/* try_unref - cut the first reference; none to it may remain */
static void
try_unref(const struct cfg_type *t, const json_t *v, struct refs *r)
{
	struct cfg_error	 err;
	json_t			*o = json_deep_copy(v);
	struct refs		 after = { 0 };
	int			 n;

	if (r->n == 0) {
		check(cfg_unref(t, o, CFG_SKILL, 1, &err) == 0);
		json_decref(o);
		return;
	}
	n = cfg_unref(t, o, r->kind, r->dbid, &err);
	if (n == -1) {
		check(err.status == 409 && json_equal(o, v));
		json_decref(o);
		return;
	}
	check(n >= 1);
	after.cut_kind = r->kind;
	after.cut_dbid = r->dbid;
	cfg_refs(t, o, on_ref, &after);
	check(after.cut_left == 0 && after.n + n <= r->n);
	json_decref(o);
}

/* try_public - no write-only field survives */
static void
try_public(const struct cfg_type *t, const json_t *v)
{
	const struct cfg_field	*f;
	json_t			*p = cfg_public(t, v);

	check(json_equal(p, v) || json_is_object(v));
	for (f = t->fields; f->name != NULL; f++)
		if (f->flags & CFG_F_WO)
			check(json_object_get(p, f->name) == NULL);
	json_decref(p);
}

/* try_filters - every filter of the type, with a few values */
static void
try_filters(const struct cfg_type *t, const json_t *v)
{
	static const char *const values[] = { "1", "null", "true", "x", "" };
	const struct filter	*fl;
	struct cfg_error	 err;
	size_t			 i;
	int			 ok;

	for (fl = type_filters[t->kind]; fl->key != NULL; fl++) {
		for (i = 0; i < NELEM(values); i++) {
			ok = cfg_filter_check(t, fl->key, values[i], &err);
			if (ok == -1)
				check_err(&err);
			/* a malformed value never matches */
			check(ok == 0 ||
			    !cfg_filter_match(t, v, fl->key, values[i]));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cfg_type	*t;
	struct cfg_error	 err;
	struct refs		 r = { 0 };
	json_t			*v, *m;
	char			*key;

	if (size < 1)
		return 0;
	log_init("fuzz", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	t = cfg_type_at((data[0] & 0x1f) % CFG_NTYPES);
	v = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY |
	    ((data[0] & 0x40) ? JSON_ALLOW_NUL : 0), NULL);
	if (v == NULL)
		return 0;
	try_validate(t, v, !(data[0] & 0x20));

	m = cfg_merge_patch(v, v, &err);
	check((m != NULL) == json_is_object(v));
	if (m == NULL)
		check_err(&err);
	else
		try_validate(t, m, 0);
	json_decref(m);

	r.cut_kind = CFG_NTYPES;
	cfg_refs(t, v, on_ref, &r);
	try_unref(t, v, &r);
	try_public(t, v);
	try_filters(t, v);
	key = cfg_key(t, v);
	check(key == NULL || json_is_object(v));
	free(key);
	json_decref(v);
	return 0;
}
