/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_outbox - the pure parts of the outbound worker's outbox relay
 * (workers/outbound/outbox.c, included whole): a report's id (a random
 * version 4 UUID) and time, the array literal of a DELETE, the holes a
 * read leaves, and librdkafka's statistics read for a broker that is UP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../workers/outbound/outbox.c"

/* is_v4 - 8-4-4-4-12 lowercase hex, version 4, variant 10xx */
static int
is_v4(const char *s)
{
	int	i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (strchr("0123456789abcdef", s[i]) == NULL)
			return 0;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void
test_value_id_and_time(void **state)
{
	json_t		*msg = json_pack("{s:s, s:s}", "type", "group-state",
	    "id", "caller's");
	json_t		*back;
	char		 id[37], *text;
	uint64_t	 before = now_wall_us() / 1000;

	text = outbox_value(msg, id);
	assert_non_null(text);
	assert_true(is_v4(id));
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "id")), id);
	assert_true(json_integer_value(json_object_get(back, "time")) >=
	    (json_int_t)before);
	assert_true(json_integer_value(json_object_get(back, "time")) <=
	    (json_int_t)(now_wall_us() / 1000));
	assert_string_equal(json_string_value(json_object_get(back, "type")),
	    "group-state");
	assert_null(strchr(text, '\n'));
	json_decref(back);
	free(text);
	json_decref(msg);
}

static void
test_value_time_kept_ids_differ(void **state)
{
	json_t	*msg = json_pack("{s:I}", "time", (json_int_t)1234);
	char	 id1[37], id2[37], *t1, *t2;

	t1 = outbox_value(msg, id1);
	t2 = outbox_value(msg, id2);
	assert_true(json_integer_value(json_object_get(msg, "time")) == 1234);
	assert_true(is_v4(id1) && is_v4(id2));
	assert_string_not_equal(id1, id2);
	assert_string_not_equal(t1, t2);
	free(t1);
	free(t2);
	json_decref(msg);
}

static void
test_uuid_many(void **state)
{
	char	id[37];
	int	i, nib[16] = { 0 };

	/* Version and variant fixed, the rest random: every hex digit seen
	 * in the first group over a few hundred ids. */
	for (i = 0; i < 400; i++) {
		util_uuid(id);
		assert_true(is_v4(id));
		nib[strchr("0123456789abcdef", id[0]) - "0123456789abcdef"]++;
	}
	for (i = 0; i < 16; i++)
		assert_true(nib[i] > 0);
}

static void
test_seqs_array(void **state)
{
	int64_t	 v[] = { 1, 22, 9007199254740993LL };
	char	*s;

	s = seqs_array(v, 0);
	assert_string_equal(s, "{}");
	free(s);
	s = seqs_array(v, 1);
	assert_string_equal(s, "{1}");
	free(s);
	s = seqs_array(v, 3);
	assert_string_equal(s, "{1,22,9007199254740993}");
	free(s);
}

static void
test_holes(void **state)
{
	memset(&ob, 0, sizeof(ob));
	holes_seen(10, 11, 100);		/* next one: no hole */
	assert_int_equal(ob.nholes, 0);
	holes_seen(11, 14, 100);		/* 12 and 13 */
	assert_int_equal(ob.nholes, 2);
	assert_int_equal(ob.holes[0].seq, 12);
	assert_int_equal(ob.holes[1].seq, 13);
	holes_seen(14, 14 + HOLE_MAX + 1, 100);	/* a jump: not holes */
	assert_int_equal(ob.nholes, 2);
	holes_forget(12, 200);			/* found */
	assert_int_equal(ob.nholes, 1);
	assert_int_equal(ob.holes[0].seq, 13);
	holes_forget(-1, 100 + HOLE_TTL_US - 1);	/* not yet too old */
	assert_int_equal(ob.nholes, 1);
	holes_forget(-1, 100 + HOLE_TTL_US);
	assert_int_equal(ob.nholes, 0);
	holes_seen(0, HOLE_MAX, 1);		/* never more than HOLE_MAX */
	holes_seen(HOLE_MAX, 2 * HOLE_MAX, 1);
	assert_int_equal(ob.nholes, HOLE_MAX);
	memset(&ob, 0, sizeof(ob));
}

static void
test_stats_up(void **state)
{
	static const char up[] = "{\"name\":\"p\",\"brokers\":{"
	    "\"127.0.0.1:9092/bootstrap\":{\"state\":\"INIT\"},"
	    "\"127.0.0.1:9093/1\":{\"state\":\"UP\",\"nodeid\":1}}}";
	static const char down[] = "{\"brokers\":{"
	    "\"a/1\":{\"state\":\"TRY_CONNECT\"},\"b/2\":{\"state\":\"DOWN\"}}}";

	assert_true(stats_up(up, strlen(up)));
	assert_false(stats_up(down, strlen(down)));
	assert_false(stats_up("{}", 2));
	assert_false(stats_up("not json", 8));
	assert_false(stats_up("{\"brokers\":[1]}", 15));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_id_and_time),
		cmocka_unit_test(test_value_time_kept_ids_differ),
		cmocka_unit_test(test_uuid_many),
		cmocka_unit_test(test_seqs_array),
		cmocka_unit_test(test_holes),
		cmocka_unit_test(test_stats_up),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
