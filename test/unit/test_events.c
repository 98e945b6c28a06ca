/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_events - the pure parts of the events worker: the set of event
 * ids that drops an event delivered already (checked against a plain
 * model, with eviction of the oldest), stream ids as numbers, and the
 * reading of a stream entry's "event" field.
 */
#include "../../common/seen.c"
#include "../../common/voice.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void
test_seen_basic(void **state)
{
	struct seen	*s = seen_new(3);

	assert_true(seen_add(s, "a"));
	assert_false(seen_add(s, "a"));
	assert_true(seen_add(s, "b"));
	assert_true(seen_add(s, "c"));
	assert_true(seen_has(s, "a"));
	assert_true(seen_add(s, "d"));		/* "a" is forgotten */
	assert_false(seen_has(s, "a"));
	assert_true(seen_has(s, "b"));
	assert_true(seen_has(s, "d"));
	assert_true(seen_add(s, "a"));
	assert_false(seen_has(s, "b"));
	seen_free(s);
}

/* The set knows exactly the last cap distinct ids added. */
static void
test_seen_model(void **state)
{
	enum { CAP = 500, IDS = 3000, STEPS = 40000 };
	static char	 ring[CAP][16];
	struct seen	*s = seen_new(CAP);
	unsigned	 r = 7;
	size_t		 next = 0, n = 0, i, k;
	char		 id[16];
	int		 in;

	for (k = 0; k < STEPS; k++) {
		r = r * 1103515245 + 12345;
		snprintf(id, sizeof(id), "e%u", (r >> 8) % IDS);
		for (i = 0, in = 0; i < n; i++)
			if (strcmp(ring[i], id) == 0)
				in = 1;
		assert_int_equal(seen_has(s, id), in);
		assert_int_equal(seen_add(s, id), !in);
		if (!in) {
			snprintf(ring[next], sizeof(ring[next]), "%s", id);
			next = (next + 1) % CAP;
			if (n < CAP)
				n++;
		}
	}
	for (i = 0; i < n; i++)
		assert_true(seen_has(s, ring[i]));
	seen_free(s);
}

static void
test_sid(void **state)
{
	struct sid	a, b;
	char		buf[64];

	assert_int_equal(sid_parse("1764140000000-3", &a), 0);
	assert_true(a.ms == 1764140000000ULL && a.seq == 3);
	assert_int_equal(sid_parse("17", &b), 0);
	assert_true(b.ms == 17 && b.seq == 0);
	assert_true(sid_cmp(&a, &b) > 0 && sid_cmp(&b, &a) < 0);
	assert_int_equal(sid_parse("9-10", &b), 0);
	assert_int_equal(sid_parse("9-9", &a), 0);
	assert_true(sid_cmp(&a, &b) < 0);	/* numbers, not text */
	assert_int_equal(sid_cmp(&a, &a), 0);
	sid_format(&b, buf, sizeof(buf));
	assert_string_equal(buf, "9-10");
	assert_int_equal(sid_parse("", &a), -1);
	assert_int_equal(sid_parse("-1", &a), -1);
	assert_int_equal(sid_parse("1-", &a), -1);
	assert_int_equal(sid_parse("1-2-3", &a), -1);
	assert_int_equal(sid_parse("x", &a), -1);
	assert_int_equal(sid_parse(NULL, &a), -1);
}

/* entry - a fake XREAD entry's field array */
static redisReply *
entry(const char *field, const char *value)
{
	redisReply	*f = calloc(1, sizeof(*f)), **e = calloc(2, sizeof(*e));

	f->type = REDIS_REPLY_ARRAY;
	f->elements = 2;
	f->element = e;
	e[0] = calloc(1, sizeof(**e));
	e[0]->type = REDIS_REPLY_STRING;
	e[0]->str = strdup(field);
	e[0]->len = strlen(field);
	e[1] = calloc(1, sizeof(**e));
	e[1]->type = REDIS_REPLY_STRING;
	e[1]->str = strdup(value);
	e[1]->len = strlen(value);
	return f;
}

static void
entry_free(redisReply *f)
{
	size_t	i;

	for (i = 0; i < f->elements; i++) {
		free(f->element[i]->str);
		free(f->element[i]);
	}
	free(f->element);
	free(f);
}

static void
test_parse_entry(void **state)
{
	const char	*why, *raw;
	redisReply	*f;
	json_t		*j;
	size_t		 len;

	f = entry("event", "{\"event\":\"EventRinging\",\"eventId\":\"x-1\"}");
	j = voice_parse_entry(f, &raw, &len, &why);
	assert_non_null(j);
	assert_int_equal(len, strlen(f->element[1]->str));
	assert_ptr_equal(raw, f->element[1]->str);
	json_decref(j);
	entry_free(f);
	f = entry("event", "{\"event\":\"EventRinging\"}");	/* no eventId */
	assert_null(voice_parse_entry(f, &raw, &len, &why));
	entry_free(f);
	f = entry("event", "{\"event\":1,\"eventId\":\"x\"}");
	assert_null(voice_parse_entry(f, &raw, &len, &why));
	entry_free(f);
	f = entry("event", "[1]");
	assert_null(voice_parse_entry(f, &raw, &len, &why));
	entry_free(f);
	f = entry("event", "{\"event\":\"E\",\"eventId\":\"a\",\"eventId\":\"b\"}");
	assert_null(voice_parse_entry(f, &raw, &len, &why));	/* duplicate key */
	entry_free(f);
	f = entry("data", "{\"event\":\"E\",\"eventId\":\"a\"}");
	assert_null(voice_parse_entry(f, &raw, &len, &why));
	assert_non_null(strstr(why, "no \"event\" field"));
	entry_free(f);
	assert_null(voice_parse_entry(NULL, &raw, &len, &why));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seen_basic),
		cmocka_unit_test(test_seen_model),
		cmocka_unit_test(test_sid),
		cmocka_unit_test(test_parse_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
