/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cache - the config worker's compact cache: objects by dbid, by
 * natural key and per type in dbid order stay consistent through puts,
 * replaces, renames and deletes (checked against a plain model over many
 * random operations, so the hash tables grow and shift); one field is
 * read from the text exactly as a full parse would read it; references
 * and state are noted; the trees of the small types are kept.
 */
#include "../../common/schema.c"
#include "../../common/cache.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static json_t *
person(json_int_t dbid, const char *user, const char *state)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:[{s:I, s:i}],"
	    " s:[]}", "dbid", dbid, "version", (json_int_t)1, "state", state,
	    "userName", user, "firstName", "A \"quoted\" name, {with} [marks]",
	    "isAgent", 1, "skills", "skill", (json_int_t)7, "level", 3,
	    "agentLogins");
}

static int
setup(void **state)
{
	cache_init(CFG_NTYPES);
	return 0;
}

static int
teardown(void **state)
{
	cache_free();
	return 0;
}

static void
test_put_get_find(void **state)
{
	const struct cobj	*o;
	size_t			 n;

	cache_put(CFG_PERSON, 10, person(10, "jdoe", "enabled"));
	cache_put(CFG_PERSON, 5, person(5, "asmith", "disabled"));
	o = cache_get(10);
	assert_non_null(o);
	assert_int_equal(o->kind, CFG_PERSON);
	assert_int_equal(o->version, 1);
	assert_true(o->enabled);
	assert_string_equal(o->key, "jdoe");
	assert_null(o->tree);
	assert_false(cache_get(5)->enabled);
	assert_ptr_equal(cache_find(CFG_PERSON, "jdoe"), o);
	assert_null(cache_find(CFG_PLACE, "jdoe"));
	assert_null(cache_find(CFG_PERSON, "nobody"));
	/* Lists in dbid order, cursor after a dbid. */
	assert_int_equal(cache_list(CFG_PERSON, &n)[0]->dbid, 5);
	assert_int_equal(n, 2);
	assert_int_equal(cache_after(CFG_PERSON, 5), 1);
	assert_int_equal(cache_after(CFG_PERSON, 10), 2);
	/* A rename moves the key. */
	cache_put(CFG_PERSON, 10, person(10, "jdoe2", "enabled"));
	assert_null(cache_find(CFG_PERSON, "jdoe"));
	assert_int_equal(cache_find(CFG_PERSON, "jdoe2")->dbid, 10);
	assert_int_equal(cache_size(), 2);
	cache_del(10);
	assert_null(cache_get(10));
	assert_null(cache_find(CFG_PERSON, "jdoe2"));
	assert_int_equal(cache_size(), 1);
	cache_list(CFG_PERSON, &n);
	assert_int_equal(n, 1);
}

static void
test_text_and_field(void **state)
{
	const struct cobj	*o;
	json_t			*full, *v;
	const char		*k;

	cache_put(CFG_PERSON, 3, person(3, "x\\y\"z", "enabled"));
	o = cache_get(3);
	full = json_loadb(o->text, o->len, 0, NULL);
	assert_non_null(full);
	/* Every field read alone equals the same field parsed whole. */
	json_object_foreach(full, k, v) {
		json_t	*one = cobj_get(o, k);

		assert_non_null(one);
		assert_true(json_equal(one, v));
		json_decref(one);
	}
	assert_null(cobj_get(o, "password"));
	assert_null(cobj_get(o, "user"));	/* a prefix is not a match */
	assert_string_equal(cache_find(CFG_PERSON, "x\\y\"z")->key,
	    "x\\y\"z");
	v = cobj_json(o);
	assert_true(json_equal(v, full));
	json_decref(v);
	json_decref(full);
}

static void
test_refs_and_trees(void **state)
{
	json_t	*ag, *t;

	cache_put(CFG_PERSON, 20, person(20, "ref", "enabled"));
	assert_true(cobj_refers(cache_get(20), 7));
	assert_false(cobj_refers(cache_get(20), 20));
	ag = json_pack("{s:I, s:I, s:s, s:s, s:[I], s:[]}", "dbid",
	    (json_int_t)30, "version", (json_int_t)2, "state", "enabled",
	    "name", "admins", "members", (json_int_t)20, "permissions");
	cache_put(CFG_ACCESS_GROUP, 30, ag);
	assert_ptr_equal(cache_get(30)->tree, ag);
	assert_true(cobj_refers(cache_get(30), 20));
	t = cobj_json(cache_get(30));
	assert_ptr_equal(t, ag);
	json_decref(t);
	t = cobj_get(cache_get(30), "name");
	assert_string_equal(json_string_value(t), "admins");
	json_decref(t);
}

/* Many random puts and deletes against a plain array model. */
#define MODEL	4096
static void
test_random_model(void **state)
{
	static int	 live[MODEL], name[MODEL];
	const struct cobj *const *v;
	char		 buf[32];
	size_t		 n, i, count = 0, seen;
	json_int_t	 d;
	unsigned	 r = 12345;
	int		 step;

	for (step = 0; step < 60000; step++) {
		r = r * 1103515245 + 12345;
		d = 1 + (json_int_t)((r >> 8) % MODEL);
		if ((r >> 4) % 3 == 0) {
			cache_del(d);
			count -= live[d - 1];
			live[d - 1] = 0;
		} else {
			name[d - 1] = (int)((r >> 16) % 100000);
			snprintf(buf, sizeof(buf), "u%d.%lld", name[d - 1],
			    (long long)d);
			cache_put(CFG_PERSON, d, person(d, buf, "enabled"));
			count += !live[d - 1];
			live[d - 1] = 1;
		}
	}
	assert_int_equal(cache_size(), count);
	v = cache_list(CFG_PERSON, &n);
	assert_int_equal(n, count);
	for (i = 1; i < n; i++)
		assert_true(v[i - 1]->dbid < v[i]->dbid);
	for (d = 1, seen = 0; d <= MODEL; d++) {
		snprintf(buf, sizeof(buf), "u%d.%lld", name[d - 1],
		    (long long)d);
		if (!live[d - 1]) {
			assert_null(cache_get(d));
			assert_null(cache_find(CFG_PERSON, buf));
			continue;
		}
		seen++;
		assert_int_equal(cache_get(d)->dbid, d);
		assert_ptr_equal(cache_find(CFG_PERSON, buf), cache_get(d));
	}
	assert_int_equal(seen, count);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_find, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_text_and_field, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refs_and_trees, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_random_model, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
