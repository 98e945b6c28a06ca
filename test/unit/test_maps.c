/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_maps - the small containers of common/.  idmap and strmap are
 * checked against a plain model after every one of many random puts,
 * replaces, deletes and gets; keys come from small sets (ids that differ
 * only in their high bits, strings that are prefixes of each other), so
 * clusters and chains form, grow, wrap and are cut in the middle.
 * jwrite's strings are checked against jansson's own text, its integers
 * against printf, and its buffer as it moves from the caller's to the
 * heap and back.  heap is checked against a model of which nodes are in
 * it and with what keys, its order and back-pointers after every step.
 * (seen is checked against a plain ring in test_events.)
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "heap.h"
#include "idmap.h"
#include "jwrite.h"
#include "strmap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define RANDOM_OPS	200000
#define PHASE_OPS	4000		/* ops between changes of the mix */
#define CLEAR_OPS	50000		/* ops between clears */
#define SWEEP_OPS	64		/* ops between gets of absent keys */

#define UNIV		512		/* most keys in a model's universe */
#define IK_MAX		UNIV
#define SK_MAX		256
#define SK_LEN		320

/*
 * What a map entry's value points at.  A value of the random tests is
 * &vals[k * UNIV + i] for its key's index i, so a visit finds its key
 * in the model without a search.
 */
static char		 vals[16 * UNIV];

static uint64_t		 rng;

/* The idmap model: one slot per key of a fixed, sorted universe. */
static uint64_t		 ikeys[IK_MAX];
static size_t		 nikeys;
struct imodel {
	void		*val[IK_MAX];	/* NULL: absent */
	unsigned char	 seen[IK_MAX];
	size_t		 n;
	size_t		 visits;
};

/* The strmap model, the same over sorted strings. */
static char		 skeys[SK_MAX][SK_LEN];
static size_t		 nskeys;
struct smodel {
	void		*val[SK_MAX];
	unsigned char	 seen[SK_MAX];
	size_t		 n;
	size_t		 visits;
};

/* What a strmap_each callback that removes entries works on. */
struct sdel {
	struct strmap	*m;
	struct smodel	*md;
	int		 all;		/* remove all, else one in two */
};

/*
 * What a test allocates, freed by teardown even when an assertion cuts
 * the test short, so that valgrind speaks only of the code under test.
 */
static struct idmap	 t_im;
static struct strmap	 t_sm;
static void		*t_md;		/* a model */
static struct jw	 t_w;
static char		*t_text;	/* jansson's text */
static char		*t_buf;		/* a long string, an expected text */

/* teardown - free what a test left */
static int
teardown(void **state)
{
	idmap_clear(&t_im);
	strmap_clear(&t_sm);
	free(t_md);
	t_md = NULL;
	/* Not jw_free: the caller's buffer was on a stack now gone. */
	if (t_w.p != t_w.own)
		free(t_w.p);
	memset(&t_w, 0, sizeof(t_w));
	free(t_text);
	free(t_buf);
	t_text = t_buf = NULL;
	return 0;
}

/* rnd - the next of a fixed xorshift64* sequence */
static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

/* rnd_below - a number in [0, n) */
static size_t
rnd_below(size_t n)
{
	return (size_t)(rnd() % n);
}

/* rnd_val - a value for the key of index i, one of 15 */
static void *
rnd_val(size_t i)
{
	return &vals[(1 + rnd_below(sizeof(vals) / UNIV - 1)) * UNIV + i];
}

/* val_index - the index of the key a value was made for */
static size_t
val_index(const void *val)
{
	uintptr_t	p = (uintptr_t)val, base = (uintptr_t)vals;

	assert_true(p >= base + UNIV && p < base + sizeof(vals));
	return (size_t)(p - base) % UNIV;
}

/* mix - the chance in 100 of a put and of a delete in a phase */
static void
mix(size_t op, unsigned *pput, unsigned *pdel)
{
	static const unsigned	 put[] = { 70, 25, 45, 90, 10 };
	static const unsigned	 del[] = { 20, 65, 45, 5, 85 };
	size_t			 ph = (op / PHASE_OPS) % NELEM(put);

	*pput = put[ph];
	*pdel = del[ph];
}

/* u64_cmp - qsort order of uint64_t */
static int
u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ikeys_add - one more key in the idmap universe */
static void
ikeys_add(uint64_t key)
{
	assert_true(nikeys < IK_MAX);
	assert_int_not_equal(key, 0);
	ikeys[nikeys++] = key;
}

/* ikeys_build - small ids, ids differing only in high bits, wide ids */
static void
ikeys_build(void)
{
	size_t		i, j;
	uint64_t	h, d;

	nikeys = 0;
	for (i = 1; i <= 96; i++)
		ikeys_add(i);
	for (h = 1; h <= 16; h++)
		for (d = 1; d <= 4; d++)
			ikeys_add(h << 56 | d);
	for (h = 1; h <= 16; h++) {
		ikeys_add(h << 48 | 1);
		ikeys_add(h << 40);
		ikeys_add(h << 32);
	}
	ikeys_add(1ULL << 63);
	ikeys_add(UINT64_MAX);
	ikeys_add(UINT64_MAX - 1);
	rng = 0x1d2c3b4a59687766ULL;
	for (i = 0; i < 48; i++)
		ikeys_add(rnd() | 1);
	qsort(ikeys, nikeys, sizeof(ikeys[0]), u64_cmp);
	for (i = j = 1; i < nikeys; i++)
		if (ikeys[i] != ikeys[j - 1])
			ikeys[j++] = ikeys[i];
	nikeys = j;
}

/* imodel_visit - idmap_each callback: a live entry, seen only once */
static void
imodel_visit(uint64_t key, void *val, void *arg)
{
	struct imodel	*md = arg;
	size_t		 i = val_index(val);

	assert_true(i < nikeys);
	assert_int_equal(key, ikeys[i]);
	assert_non_null(md->val[i]);
	assert_ptr_equal(val, md->val[i]);
	assert_false(md->seen[i]);
	md->seen[i] = 1;
	md->visits++;
}

/*
 * idmap_check - the map holds what the model holds, and nothing else.
 * idmap_each proves the set of entries; the gets, of every key when
 * sweep is set and else of the live ones, prove the lookups.
 */
static void
idmap_check(const struct idmap *m, struct imodel *md, int sweep)
{
	size_t	i;

	assert_int_equal(m->n, md->n);
	assert_true(m->cap == 0 || (m->cap & (m->cap - 1)) == 0);
	assert_true(2 * m->n <= m->cap);
	for (i = 0; i < nikeys; i++)
		if (sweep || md->val[i] != NULL)
			assert_ptr_equal(idmap_get(m, ikeys[i]), md->val[i]);
	assert_null(idmap_get(m, 0));
	md->visits = 0;
	memset(md->seen, 0, sizeof(md->seen));
	idmap_each(m, imodel_visit, md);
	assert_int_equal(md->visits, md->n);
}

/* idmap_step - a random put, delete or get of key i; its neighbours */
static void
idmap_step(struct idmap *m, struct imodel *md, size_t i, unsigned pput,
    unsigned pdel)
{
	unsigned	 r = (unsigned)rnd_below(100);
	void		*v;
	size_t		 j;

	if (r < pput) {
		v = rnd_val(i);
		assert_ptr_equal(idmap_put(m, ikeys[i], v), md->val[i]);
		if (md->val[i] == NULL)
			md->n++;
		md->val[i] = v;
	} else if (r < pput + pdel) {
		assert_ptr_equal(idmap_del(m, ikeys[i]), md->val[i]);
		if (md->val[i] != NULL)
			md->n--;
		md->val[i] = NULL;
	} else
		assert_ptr_equal(idmap_get(m, ikeys[i]), md->val[i]);
	for (j = i > 0 ? i - 1 : 0; j <= i + 1 && j < nikeys; j++)
		assert_ptr_equal(idmap_get(m, ikeys[j]), md->val[j]);
}

/* count_visit - idmap_each callback that only counts */
static void
count_visit(uint64_t key, void *val, void *arg)
{
	(*(size_t *)arg)++;
}

/* test_idmap_empty - a zeroed map answers NULL and visits nothing */
static void
test_idmap_empty(void **state)
{
	struct idmap	*m = &t_im;
	size_t		n = 0;

	assert_null(idmap_get(m, 1));
	assert_null(idmap_get(m, 0));
	assert_null(idmap_get(m, UINT64_MAX));
	assert_null(idmap_del(m, 1));
	assert_null(idmap_del(m, 0));
	idmap_each(m, count_visit, &n);
	assert_int_equal(n, 0);
	idmap_clear(m);
	assert_int_equal(m->n, 0);
	assert_null(m->s);

	/* Emptied by deletes, not cleared: still answers NULL. */
	assert_null(idmap_put(m, 7, &vals[1]));
	assert_ptr_equal(idmap_del(m, 7), &vals[1]);
	assert_int_equal(m->n, 0);
	assert_null(idmap_get(m, 7));
	assert_null(idmap_del(m, 7));
	assert_null(idmap_get(m, 0));
	assert_null(idmap_del(m, 0));
	idmap_clear(m);
}

/* test_idmap_grow - from empty to many keys, each still found */
static void
test_idmap_grow(void **state)
{
	struct idmap	*m = &t_im;
	size_t		i, n, cap = 0, grows = 0;
	const size_t	nkeys = 20000;

	/* Small ids, ids shifted into the high half, one in each two. */
	for (i = 1; i <= nkeys; i++) {
		assert_null(idmap_put(m, i % 2 ? i : (uint64_t)i << 40,
		    &vals[i % sizeof(vals)]));
		assert_int_equal(m->n, i);
		assert_true(2 * m->n <= m->cap);
		if (m->cap != cap) {
			grows++;
			cap = m->cap;
		}
	}
	assert_true(grows >= 10);
	for (i = 1; i <= nkeys; i++)
		assert_ptr_equal(idmap_get(m, i % 2 ? i : (uint64_t)i << 40),
		    &vals[i % sizeof(vals)]);
	assert_null(idmap_get(m, 0));
	assert_null(idmap_get(m, nkeys + 1));
	assert_null(idmap_get(m, 2));
	assert_null(idmap_del(m, 0));

	/* Every third one out, the rest still there. */
	for (i = 1; i <= nkeys; i += 3)
		assert_ptr_equal(idmap_del(m, i % 2 ? i : (uint64_t)i << 40),
		    &vals[i % sizeof(vals)]);
	for (i = 1; i <= nkeys; i++)
		assert_ptr_equal(idmap_get(m, i % 2 ? i : (uint64_t)i << 40),
		    i % 3 == 1 ? NULL : &vals[i % sizeof(vals)]);
	n = 0;
	idmap_each(m, count_visit, &n);
	assert_int_equal(n, m->n);
	assert_int_equal(n, nkeys - (nkeys + 2) / 3);

	idmap_clear(m);
	assert_int_equal(m->n, 0);
	assert_int_equal(m->cap, 0);
	assert_null(idmap_get(m, 2));
	n = 0;
	idmap_each(m, count_visit, &n);
	assert_int_equal(n, 0);
	/* Usable again after a clear. */
	assert_null(idmap_put(m, 2, &vals[2]));
	assert_ptr_equal(idmap_get(m, 2), &vals[2]);
	idmap_clear(m);
}

/* test_idmap_random - many random operations against the model */
static void
test_idmap_random(void **state)
{
	struct idmap	*m = &t_im;
	struct imodel	*md;
	size_t		 op, i, window = 0;
	unsigned	 pput = 0, pdel = 0;

	ikeys_build();
	t_md = md = calloc(1, sizeof(*md));
	assert_non_null(md);
	rng = 0x9e3779b97f4a7c15ULL;
	idmap_check(m, md, 1);
	for (op = 0; op < RANDOM_OPS; op++) {
		if (op % PHASE_OPS == 0) {
			mix(op, &pput, &pdel);
			/* Now and then a few keys only, worked hard. */
			window = (op / PHASE_OPS) % 3 == 2 ? 12 : nikeys;
		}
		if (op % CLEAR_OPS == CLEAR_OPS - 1) {
			idmap_clear(m);
			memset(md->val, 0, sizeof(md->val));
			md->n = 0;
			idmap_check(m, md, 1);
		}
		i = rnd_below(window);
		if (window < nikeys)
			i = (i * 37 + op / PHASE_OPS) % nikeys;
		idmap_step(m, md, i, pput, pdel);
		idmap_check(m, md, op % SWEEP_OPS == 0);
	}
	idmap_clear(m);
}

/*
 * test_idmap_wrap - seven keys that differ only in their high bits, in a
 * table of 16 slots, under random puts and deletes: for one family or
 * another the cluster runs past the last slot into the first, and a
 * delete must shift keys back across that edge.
 */
static void
test_idmap_wrap(void **state)
{
	struct idmap	*m = &t_im;
	struct imodel	*md;
	size_t		 op, i, fam, wrapped = 0;

	t_md = md = calloc(1, sizeof(*md));
	assert_non_null(md);
	rng = 0x0123456789abcdefULL;
	for (fam = 1; fam <= 64; fam++) {
		memset(md, 0, sizeof(*md));
		nikeys = 0;
		for (i = 1; i <= 7; i++)
			ikeys_add((uint64_t)i << 56 | fam);
		for (op = 0; op < 400; op++) {
			idmap_step(m, md, rnd_below(nikeys), 55, 40);
			idmap_check(m, md, 1);
			if (m->cap != 0 && m->s[0].key != 0 &&
			    m->s[m->cap - 1].key != 0)
				wrapped++;
		}
		idmap_clear(m);
	}
	/* The test did cross the edge. */
	assert_true(wrapped > 0);
}

/* str_cmp - qsort order of strings */
static int
str_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* skeys_add - one more key in the strmap universe */
static void
skeys_add(const char *key)
{
	assert_true(nskeys < SK_MAX);
	assert_true(strlen(key) < SK_LEN);
	strcpy(skeys[nskeys++], key);
}

/* skeys_build - "", prefixes of "conn-", "conn-N", long and UTF-8 keys */
static void
skeys_build(void)
{
	static const char	*fixed[] = { "", "c", "co", "con", "conn",
	    "conn-", "caf\xc3\xa9", "\xe2\x82\xac", "conn-1 ", "Conn-1",
	    "-1", "1" };
	char			 k[SK_LEN];
	size_t			 i;

	nskeys = 0;
	for (i = 0; i < NELEM(fixed); i++)
		skeys_add(fixed[i]);
	for (i = 0; i < 120; i++) {
		snprintf(k, sizeof(k), "conn-%zu", i);
		skeys_add(k);
	}
	memset(k, 'x', 300);
	k[300] = '\0';
	skeys_add(k);
	k[299] = '\0';
	skeys_add(k);
	k[298] = 'y';
	skeys_add(k);
	qsort(skeys, nskeys, sizeof(skeys[0]), str_cmp);
	for (i = 1; i < nskeys; i++)
		assert_true(strcmp(skeys[i - 1], skeys[i]) < 0);
}

/* smodel_visit - strmap_each callback: a live entry, seen only once */
static void
smodel_visit(const char *key, void *val, void *arg)
{
	struct smodel	*md = arg;
	size_t		 i = val_index(val);

	assert_true(i < nskeys);
	assert_string_equal(key, skeys[i]);
	assert_non_null(md->val[i]);
	assert_ptr_equal(val, md->val[i]);
	assert_false(md->seen[i]);
	md->seen[i] = 1;
	md->visits++;
}

/* strmap_check - the map holds what the model holds, as idmap_check */
static void
strmap_check(const struct strmap *m, struct smodel *md, int sweep)
{
	size_t	i;

	assert_int_equal(m->n, md->n);
	for (i = 0; i < nskeys; i++)
		if (sweep || md->val[i] != NULL)
			assert_ptr_equal(strmap_get(m, skeys[i]), md->val[i]);
	assert_null(strmap_get(m, "conn-120"));
	assert_null(strmap_get(m, "conn-00"));
	md->visits = 0;
	memset(md->seen, 0, sizeof(md->seen));
	strmap_each(m, smodel_visit, md);
	assert_int_equal(md->visits, md->n);
}

/* strmap_step - a random put, delete or get of key i; its neighbours */
static void
strmap_step(struct strmap *m, struct smodel *md, size_t i, unsigned pput,
    unsigned pdel)
{
	char		 k[SK_LEN];
	unsigned	 r = (unsigned)rnd_below(100);
	void		*v;
	size_t		 j;

	/* The map gets a key it must copy, overwritten right after. */
	strcpy(k, skeys[i]);
	if (r < pput) {
		v = rnd_val(i);
		assert_ptr_equal(strmap_put(m, k, v), md->val[i]);
		if (md->val[i] == NULL)
			md->n++;
		md->val[i] = v;
	} else if (r < pput + pdel) {
		assert_ptr_equal(strmap_del(m, k), md->val[i]);
		if (md->val[i] != NULL)
			md->n--;
		md->val[i] = NULL;
	} else
		assert_ptr_equal(strmap_get(m, k), md->val[i]);
	memset(k, '#', sizeof(k) - 1);
	k[sizeof(k) - 1] = '\0';
	for (j = i > 0 ? i - 1 : 0; j <= i + 1 && j < nskeys; j++)
		assert_ptr_equal(strmap_get(m, skeys[j]), md->val[j]);
}

/* smodel_fill - every key of the universe in map and model */
static void
smodel_fill(struct strmap *m, struct smodel *md)
{
	size_t	i;

	for (i = 0; i < nskeys; i++) {
		md->val[i] = &vals[UNIV + i];
		assert_null(strmap_put(m, skeys[i], md->val[i]));
	}
	md->n = nskeys;
	strmap_check(m, md, 1);
}

/* sdel_visit - strmap_each callback removing the entry it is given */
static void
sdel_visit(const char *key, void *val, void *arg)
{
	struct sdel	*a = arg;
	size_t		 i = val_index(val);

	assert_true(i < nskeys);
	assert_string_equal(key, skeys[i]);
	/* key is the entry's own copy: not to be read once it is gone. */
	assert_ptr_equal(val, a->md->val[i]);
	assert_false(a->md->seen[i]);
	a->md->seen[i] = 1;
	a->md->visits++;
	if (a->all || i % 2 == 0) {
		assert_ptr_equal(strmap_del(a->m, key), val);
		a->md->val[i] = NULL;
		a->md->n--;
	}
}

/* test_strmap_empty - a zeroed map answers NULL and visits nothing */
static void
test_strmap_empty(void **state)
{
	struct strmap	*m = &t_sm;
	struct smodel	md = { 0 };

	assert_null(strmap_get(m, ""));
	assert_null(strmap_get(m, "conn-1"));
	assert_null(strmap_del(m, ""));
	assert_null(strmap_del(m, "conn-1"));
	strmap_each(m, smodel_visit, &md);
	assert_int_equal(md.visits, 0);
	strmap_clear(m);
	assert_int_equal(m->n, 0);

	/* "" is a key like any other, and not a prefix of the others. */
	assert_null(strmap_put(m, "", &vals[1]));
	assert_null(strmap_get(m, "c"));
	assert_null(strmap_put(m, "c", &vals[2]));
	assert_ptr_equal(strmap_put(m, "", &vals[3]), &vals[1]);
	assert_ptr_equal(strmap_get(m, ""), &vals[3]);
	assert_ptr_equal(strmap_get(m, "c"), &vals[2]);
	assert_int_equal(m->n, 2);
	assert_ptr_equal(strmap_del(m, ""), &vals[3]);
	assert_null(strmap_del(m, ""));
	assert_null(strmap_get(m, ""));
	assert_ptr_equal(strmap_get(m, "c"), &vals[2]);
	assert_null(strmap_del(m, "co"));
	assert_ptr_equal(strmap_del(m, "c"), &vals[2]);
	assert_int_equal(m->n, 0);
	assert_null(strmap_get(m, "c"));
	strmap_clear(m);
}

/* key_visit - strmap_each callback: the one key is "conn-7" */
static void
key_visit(const char *key, void *val, void *arg)
{
	assert_string_equal(key, "conn-7");
	assert_ptr_equal(val, &vals[7]);
	(*(size_t *)arg)++;
}

/* test_strmap_copies_key - a key given to put may be reused at once */
static void
test_strmap_copies_key(void **state)
{
	struct strmap	*m = &t_sm;
	char		*k;
	size_t		 n = 0;

	k = t_buf = strdup("conn-7");
	assert_non_null(k);
	assert_null(strmap_put(m, k, &vals[7]));
	strcpy(k, "conn-8");
	assert_null(strmap_get(m, "conn-8"));
	free(k);
	t_buf = NULL;
	assert_ptr_equal(strmap_get(m, "conn-7"), &vals[7]);
	strmap_each(m, key_visit, &n);
	assert_int_equal(n, 1);
	strmap_clear(m);
}

/* test_strmap_random - many random operations against the model */
static void
test_strmap_random(void **state)
{
	struct strmap	*m = &t_sm;
	struct smodel	*md;
	size_t		 op, i, window = 0;
	unsigned	 pput = 0, pdel = 0;

	skeys_build();
	t_md = md = calloc(1, sizeof(*md));
	assert_non_null(md);
	rng = 0x5851f42d4c957f2dULL;
	strmap_check(m, md, 1);
	for (op = 0; op < RANDOM_OPS; op++) {
		if (op % PHASE_OPS == 0) {
			mix(op, &pput, &pdel);
			window = (op / PHASE_OPS) % 3 == 2 ? 12 : nskeys;
		}
		if (op % CLEAR_OPS == CLEAR_OPS - 1) {
			strmap_clear(m);
			memset(md->val, 0, sizeof(md->val));
			md->n = 0;
			strmap_check(m, md, 1);
		}
		i = rnd_below(window);
		if (window < nskeys)
			i = (i * 17 + op / PHASE_OPS) % nskeys;
		strmap_step(m, md, i, pput, pdel);
		strmap_check(m, md, op % SWEEP_OPS == 0);
	}
	strmap_clear(m);
}

/* test_strmap_each_removes - strmap_each may drop the entry it is on */
static void
test_strmap_each_removes(void **state)
{
	struct strmap	*m = &t_sm;
	struct smodel	*md;
	struct sdel	 a;
	size_t		 i;

	skeys_build();
	t_md = md = calloc(1, sizeof(*md));
	assert_non_null(md);
	a.m = m;
	a.md = md;

	/* One in two removed on the way, each entry visited once. */
	smodel_fill(m, md);
	a.all = 0;
	memset(md->seen, 0, sizeof(md->seen));
	md->visits = 0;
	strmap_each(m, sdel_visit, &a);
	assert_int_equal(md->visits, nskeys);
	for (i = 0; i < nskeys; i++)
		assert_true(md->seen[i]);
	assert_int_equal(md->n, nskeys / 2);
	strmap_check(m, md, 1);

	/* Then all of them. */
	a.all = 1;
	memset(md->seen, 0, sizeof(md->seen));
	md->visits = 0;
	strmap_each(m, sdel_visit, &a);
	assert_int_equal(md->visits, nskeys / 2);
	assert_int_equal(m->n, 0);
	assert_int_equal(md->n, 0);
	strmap_check(m, md, 1);

	/* Filled again, and all removed in one pass. */
	smodel_fill(m, md);
	memset(md->seen, 0, sizeof(md->seen));
	md->visits = 0;
	strmap_each(m, sdel_visit, &a);
	assert_int_equal(md->visits, nskeys);
	assert_int_equal(m->n, 0);
	strmap_check(m, md, 1);
	strmap_clear(m);
}

/* test_strmap_clear - forgets every entry, the map usable again */
static void
test_strmap_clear(void **state)
{
	struct strmap	*m = &t_sm;
	struct smodel	*md;

	skeys_build();
	t_md = md = calloc(1, sizeof(*md));
	assert_non_null(md);
	smodel_fill(m, md);
	strmap_clear(m);
	assert_int_equal(m->n, 0);
	memset(md->val, 0, sizeof(md->val));
	md->n = 0;
	strmap_check(m, md, 1);
	assert_null(strmap_del(m, "conn-1"));
	smodel_fill(m, md);
	strmap_clear(m);
	strmap_clear(m);
	assert_null(strmap_get(m, ""));
}

/* jansson_text - s as jansson writes a JSON string */
static char *
jansson_text(const char *s)
{
	json_t	*j;
	char	*t;

	j = json_string(s);
	assert_non_null(j);
	t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(t);
	json_decref(j);
	return t;
}

/* check_str - jw_str writes s as jansson does */
static void
check_str(const char *s)
{
	struct jw	*w = &t_w;
	char		 buf[32];

	jw_init(w, buf, sizeof(buf));
	jw_str(w, s);
	t_text = jansson_text(s);
	assert_string_equal(w->p, t_text);
	assert_int_equal(w->n, strlen(t_text));
	free(t_text);
	t_text = NULL;
	jw_free(w);
}

/* put_utf8 - c in UTF-8 at p; how many bytes */
static size_t
put_utf8(char *p, uint32_t c)
{
	if (c < 0x80) {
		p[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		p[0] = (char)(0xc0 | c >> 6);
		p[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		p[0] = (char)(0xe0 | c >> 12);
		p[1] = (char)(0x80 | (c >> 6 & 0x3f));
		p[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | c >> 18);
	p[1] = (char)(0x80 | (c >> 12 & 0x3f));
	p[2] = (char)(0x80 | (c >> 6 & 0x3f));
	p[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* rnd_char - a code point, often one JSON must escape or that is odd */
static uint32_t
rnd_char(void)
{
	static const uint32_t	 odd[] = { '"', '\\', '/', 0x7f, 0x80, 0x7ff,
	    0x800, 0xfffd, 0xffff, 0x10000, 0x10ffff, 0x2028, 0x2029 };
	uint32_t		 c;

	switch (rnd_below(8)) {
	case 0:
	case 1:
		return 1 + (uint32_t)rnd_below(0x1f);
	case 2:
		return odd[rnd_below(NELEM(odd))];
	case 3:
		return 0x80 + (uint32_t)rnd_below(0x800 - 0x80);
	case 4:
		do
			c = 0x800 + (uint32_t)rnd_below(0x10000 - 0x800);
		while (c >= 0xd800 && c <= 0xdfff);
		return c;
	case 5:
		return 0x10000 + (uint32_t)rnd_below(0x110000 - 0x10000);
	default:
		return 0x20 + (uint32_t)rnd_below(0x7f - 0x20);
	}
}

/* test_jw_str_each_char - every ASCII character alone, and in a run */
static void
test_jw_str_each_char(void **state)
{
	char	s[4], all[128];
	int	c;

	check_str("");
	for (c = 1; c < 0x80; c++) {
		s[0] = 'a';
		s[1] = (char)c;
		s[2] = 'b';
		s[3] = '\0';
		check_str(s);
		check_str(s + 1);
		all[c - 1] = (char)c;
	}
	all[127] = '\0';
	check_str(all);
}

/* test_jw_str_random - random UTF-8 strings, as jansson writes them */
static void
test_jw_str_random(void **state)
{
	char	s[4 * 64 + 1], *big, *p;
	size_t	i, j, len;

	rng = 0xda942042e4dd58b5ULL;
	for (i = 0; i < 20000; i++) {
		len = rnd_below(64);
		for (p = s, j = 0; j < len; j++)
			p += put_utf8(p, rnd_char());
		*p = '\0';
		check_str(s);
	}
	/* One long string, far past any buffer. */
	big = t_buf = malloc(4 * 5000 + 1);
	assert_non_null(big);
	for (p = big, j = 0; j < 5000; j++)
		p += put_utf8(p, rnd_char());
	*p = '\0';
	check_str(big);
	free(big);
	t_buf = NULL;
}

/* test_jw_int - integers as printf writes them */
static void
test_jw_int(void **state)
{
	static const long long	 fixed[] = { 0, 1, -1, 9, -9, 10, -10, 99,
	    100, -100, 12345, INT_MAX, INT_MIN, (long long)INT_MAX + 1,
	    (long long)INT_MIN - 1, 999999999999999999LL,
	    1000000000000000000LL, -1000000000000000000LL, LLONG_MAX,
	    LLONG_MAX - 1, LLONG_MIN, LLONG_MIN + 1 };
	struct jw		*w = &t_w;
	char			 buf[8], want[64];
	long long		 v;
	size_t			 i;

	rng = 0x2545f4914f6cdd1dULL;
	for (i = 0; i < NELEM(fixed) + 20000; i++) {
		if (i < NELEM(fixed))
			v = fixed[i];
		else
			v = (long long)(rnd() >> rnd_below(64));
		if (i >= NELEM(fixed) && rnd_below(2) && v != LLONG_MIN)
			v = -v;
		snprintf(want, sizeof(want), "%lld", v);
		jw_init(w, buf, sizeof(buf));
		jw_int(w, v);
		assert_string_equal(w->p, want);
		assert_int_equal(w->n, strlen(want));
		/* After other text, too. */
		jw_lit(w, ",");
		jw_int(w, v);
		assert_int_equal(w->n, 2 * strlen(want) + 1);
		assert_memory_equal(w->p + strlen(want) + 1, want,
		    strlen(want) + 1);
		jw_free(w);
	}
}

/* test_jw_lit - a literal goes in as it is, without its NUL */
static void
test_jw_lit(void **state)
{
	struct jw	*w = &t_w;
	char		 buf[64];

	jw_init(w, buf, sizeof(buf));
	assert_ptr_equal(w->p, buf);
	assert_int_equal(w->n, 0);
	assert_string_equal(w->p, "");
	jw_lit(w, "{\"a\":");
	assert_int_equal(w->n, 5);
	assert_string_equal(w->p, "{\"a\":");
	jw_lit(w, "");
	assert_int_equal(w->n, 5);
	jw_int(w, -3);
	jw_lit(w, ",\"b\":");
	jw_str(w, "x/y");
	jw_lit(w, "}");
	assert_string_equal(w->p, "{\"a\":-3,\"b\":\"x/y\"}");
	assert_int_equal(w->n, strlen(w->p));
	/* It fit: the text is still in the caller's buffer. */
	assert_ptr_equal(w->p, buf);
	jw_free(w);
	assert_ptr_equal(w->p, buf);
	assert_int_equal(w->n, 0);
}

/* guard_ok - nothing written outside the caller's cap bytes */
static void
guard_ok(const unsigned char *area, size_t areasz, size_t off, size_t cap)
{
	size_t	i;

	for (i = 0; i < areasz; i++) {
		if (i >= off && i < off + cap)
			continue;
		if (area[i] != 0x5a) {
			print_error("byte %zu of a %zu-byte caller buffer "
			    "written: 0x%02x\n", i - off, cap, area[i]);
			fail();
		}
	}
}

/* grow_with - from a cap-byte buffer to many KB, the text always right */
static void
grow_with(size_t cap)
{
	static const char	 esc[] = "\"conn-\\\"x\\\"\\\\/\\n\\t\"";
	unsigned char		 area[64];
	char			*buf = (char *)area + 16, *want;
	struct jw		*w = &t_w;
	size_t			 n = 0, i, len;

	assert_true(16 + cap <= sizeof(area));
	want = t_buf = malloc(65536);
	assert_non_null(want);
	memset(area, 0x5a, sizeof(area));
	jw_init(w, buf, cap);
	assert_ptr_equal(w->p, buf);
	assert_int_equal(buf[0], '\0');
	for (i = 0; n < 16384; i++) {
		switch (i % 5) {
		case 0:
			jw_lit(w, "{\"id\":");
			memcpy(want + n, "{\"id\":", 6);
			n += 6;
			break;
		case 1:
			jw_int(w, (long long)i * -7919);
			n += (size_t)snprintf(want + n, 65536 - n, "%lld",
			    (long long)i * -7919);
			break;
		case 2:
			jw_str(w, "conn-\"x\"\\/\n\t");
			memcpy(want + n, esc, sizeof(esc) - 1);
			n += sizeof(esc) - 1;
			break;
		case 3:
			/* Now and then one piece bigger than all before it. */
			len = i % 40 == 3 ? 1000 + i : 2;
			memset(want + n, 'a' + (int)(i % 26), len);
			jw_raw(w, want + n, len);
			n += len;
			break;
		default:
			jw_lit(w, "},");
			memcpy(want + n, "},", 2);
			n += 2;
			break;
		}
		want[n] = '\0';
		assert_int_equal(w->n, n);
		assert_true(w->cap >= w->n + 1);
		assert_memory_equal(w->p, want, n + 1);
		assert_int_equal(strlen(w->p), n);
		guard_ok(area, sizeof(area), 16, cap);
	}
	assert_ptr_not_equal(w->p, buf);
	jw_free(w);
	assert_ptr_equal(w->p, buf);
	assert_int_equal(w->n, 0);
	assert_int_equal(buf[0], '\0');
	guard_ok(area, sizeof(area), 16, cap);
	/* Written to again: what fits stays in the caller's buffer. */
	jw_lit(w, "ok");
	assert_string_equal(w->p, "ok");
	assert_int_equal(w->n, 2);
	if (cap > 2)
		assert_ptr_equal(w->p, buf);
	guard_ok(area, sizeof(area), 16, cap);
	/* What does not fit moves to the heap again. */
	jw_lit(w, "-twenty-one-bytes-more");
	assert_string_equal(w->p, "ok-twenty-one-bytes-more");
	guard_ok(area, sizeof(area), 16, cap);
	assert_ptr_not_equal(w->p, buf);
	jw_free(w);
	assert_ptr_equal(w->p, buf);
	assert_int_equal(buf[0], '\0');
	guard_ok(area, sizeof(area), 16, cap);
	free(want);
	t_buf = NULL;
}

/* test_jw_grow - from a 1-byte and a 16-byte buffer to the heap */
static void
test_jw_grow(void **state)
{
	grow_with(1);
	grow_with(16);
}

/* ---- heap ---- */

#define HN		300		/* nodes */
#define HEAP_OPS	200000

struct hnode {
	struct heap_node n;
	int		 in;		/* the model: is it in? */
	uint64_t	 key;
};

/* heap_ok - every node's back-pointer, the heap order, the model */
static void
heap_ok(const struct heap *h, const struct hnode *v)
{
	size_t			 i, in = 0;
	const struct heap_node	*top = heap_top(h);
	uint64_t		 min = UINT64_MAX;

	for (i = 0; i < h->n; i++) {
		assert_int_equal(h->v[i]->at, i + 1);
		if (i > 0)
			assert_true(h->v[(i - 1) / 2]->key <= h->v[i]->key);
	}
	for (i = 0; i < HN; i++) {
		assert_int_equal(heap_in(&v[i].n), v[i].in);
		if (!v[i].in)
			continue;
		in++;
		assert_true(v[i].n.key == v[i].key);
		if (v[i].key < min)
			min = v[i].key;
	}
	assert_int_equal(h->n, in);
	if (in == 0)
		assert_null(top);
	else
		assert_true(top != NULL && top->key == min);
}

/* test_heap_random - sets, moves (up, down, to the same key), deletes
 * (of nodes in and out) and pops of the top, with keys from a small range
 * so that many are equal */
static void
test_heap_random(void **state)
{
	struct heap	 h = { 0 };
	struct hnode	*v = calloc(HN, sizeof(*v));
	struct heap_node *t;
	size_t		 op, i;
	unsigned	 r;

	assert_non_null(v);
	rng = 0x2545f4914f6cdd1dULL;
	for (op = 0; op < HEAP_OPS; op++) {
		i = rnd_below(HN);
		r = (unsigned)rnd_below(10);
		if (r < 5) {
			v[i].key = rnd_below(op % 3 == 0 ? 8 : 1000);
			v[i].in = 1;
			heap_set(&h, &v[i].n, v[i].key);
		} else if (r < 8) {
			heap_del(&h, &v[i].n);
			v[i].in = 0;
		} else if ((t = heap_top(&h)) != NULL) {
			heap_del(&h, t);
			((struct hnode *)t)->in = 0;
		}
		heap_ok(&h, v);
		if (op % 50000 == 49999) {
			heap_clear(&h);
			for (i = 0; i < HN; i++)
				v[i].in = 0;
			heap_ok(&h, v);
		}
	}
	heap_clear(&h);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_idmap_empty, teardown),
		cmocka_unit_test_teardown(test_idmap_grow, teardown),
		cmocka_unit_test_teardown(test_idmap_random, teardown),
		cmocka_unit_test_teardown(test_idmap_wrap, teardown),
		cmocka_unit_test_teardown(test_strmap_empty, teardown),
		cmocka_unit_test_teardown(test_strmap_copies_key, teardown),
		cmocka_unit_test_teardown(test_strmap_random, teardown),
		cmocka_unit_test_teardown(test_strmap_each_removes, teardown),
		cmocka_unit_test_teardown(test_strmap_clear, teardown),
		cmocka_unit_test_teardown(test_jw_str_each_char, teardown),
		cmocka_unit_test_teardown(test_jw_str_random, teardown),
		cmocka_unit_test_teardown(test_jw_int, teardown),
		cmocka_unit_test_teardown(test_jw_lit, teardown),
		cmocka_unit_test_teardown(test_jw_grow, teardown),
		cmocka_unit_test_teardown(test_heap_random, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
