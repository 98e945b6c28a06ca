/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_outbox - the pure parts of the outbound worker's outbox relay
 * (workers/outbound/outbox.c, included whole): a report's id (a random
 * version 4 UUID) and time, the array literal of the holes, the runs of
 * delivered seqs a DELETE names (never a seq not delivered), the ring of
 * messages in flight and which delivered rows wait for older ones, the
 * read position and the holes a read leaves, and librdkafka's statistics
 * read for a broker that is UP.
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

/* runs_of - the runs lo-hi of seqs v[0..n), as "{lo..}{hi..}" */
static char *
runs_of(const int64_t *v, size_t n, size_t *nruns)
{
	struct seqs	 s = { 0 };
	char		*lo, *hi, *out;
	size_t		 i;

	for (i = 0; i < n; i++)
		seqs_add(&s, v[i]);
	seqs_sort(&s);
	*nruns = seqs_runs(&s, &lo, &hi);
	out = xmalloc(strlen(lo) + strlen(hi) + 1);
	strcpy(out, lo);
	strcat(out, hi);
	free(lo);
	free(hi);
	free(s.v);
	return out;
}

static void
test_seqs_runs(void **state)
{
	/* Out of order and twice (reports of several partitions); 6, 8 and
	 * 11 were not delivered (in flight, or holes): no run covers them. */
	int64_t	 v[] = { 12, 7, 3, 4, 9, 5, 10, 3, 9007199254740993LL,
	    9007199254740992LL };
	int64_t	 one[] = { 42 };
	char	*s;
	size_t	 n;

	s = runs_of(v, NELEM(v), &n);
	assert_string_equal(s, "{3,7,9,12,9007199254740992}"
	    "{5,7,10,12,9007199254740993}");
	assert_int_equal(n, 5);
	free(s);
	s = runs_of(one, 1, &n);
	assert_string_equal(s, "{42}{42}");
	assert_int_equal(n, 1);
	free(s);
	s = runs_of(v, 0, &n);
	assert_string_equal(s, "{}{}");
	assert_int_equal(n, 0);
	free(s);
}

/* A run never spans a seq that was not delivered: random sets. */
static void
test_seqs_runs_exact(void **state)
{
	struct seqs	 s = { 0 };
	char		*lo, *hi, *pl, *ph;
	unsigned char	 in[2000];
	size_t		 i, round, nruns;
	long long	 a, b, k;
	int		 len;

	srandom(7);
	for (round = 0; round < 200; round++) {
		memset(in, 0, sizeof(in));
		s.n = 0;
		for (i = 0; i < 1500; i++) {
			k = random() % (long long)sizeof(in);
			in[k] = 1;
			seqs_add(&s, 1000 + k);
		}
		seqs_sort(&s);
		nruns = seqs_runs(&s, &lo, &hi);
		pl = lo + 1;
		ph = hi + 1;
		for (i = 0; i < nruns; i++) {
			assert_int_equal(sscanf(pl, "%lld%n", &a, &len), 1);
			pl += len + 1;
			assert_int_equal(sscanf(ph, "%lld%n", &b, &len), 1);
			ph += len + 1;
			assert_true(a <= b);
			for (k = a; k <= b; k++) {
				assert_int_equal(in[k - 1000], 1);
				in[k - 1000] = 2;	/* covered once */
			}
		}
		for (k = 0; k < (long long)sizeof(in); k++)
			assert_int_not_equal(in[k], 1);	/* each one covered */
		free(lo);
		free(hi);
	}
	free(s.v);
}

static void
test_ring(void **state)
{
	struct ring	 r = { 0 };
	uintptr_t	 t[10000];
	size_t		 i;

	assert_true(ring_low(&r) == INT64_MAX);
	/* Beyond its first size, reported out of order. */
	for (i = 0; i < 10000; i++)
		t[i] = ring_push(&r, 100 + (int64_t)i);
	assert_true(r.cap >= 10000);
	assert_true(ring_low(&r) == 100);
	assert_true(ring_report(&r, t[1]) == 101);
	assert_true(ring_low(&r) == 100);
	assert_true(ring_report(&r, t[0]) == 100);
	assert_true(ring_low(&r) == 102);
	for (i = 9999; i >= 3; i--)
		assert_true(ring_report(&r, t[i]) == 100 + (int64_t)i);
	assert_true(ring_low(&r) == 102);
	assert_true(ring_report(&r, t[2]) == 102);
	assert_true(ring_low(&r) == INT64_MAX);
	/* Tickets of before, or never given: not the ring's. */
	assert_true(ring_report(&r, t[5]) == -1);
	assert_true(ring_report(&r, r.tail) == -1);
	/* Around the end of the array, and a producer freed. */
	for (i = 0; i < 3 * r.cap / 2; i++) {
		t[0] = ring_push(&r, 7);
		assert_true(ring_report(&r, t[0]) == 7);
	}
	t[0] = ring_push(&r, 8);
	r.head = r.tail;
	assert_true(ring_report(&r, t[0]) == -1);
	assert_true(ring_low(&r) == INT64_MAX);
	free(r.v);
}

static void
test_done_ready(void **state)
{
	int64_t	 d[] = { 14, 10, 12, 11, 16, 17 };
	size_t	 i;

	memset(&ob, 0, sizeof(ob));
	for (i = 10; i <= 17; i++)
		ring_push(&ob.sent, (int64_t)i);
	for (i = 0; i < NELEM(d); i++) {
		ring_report(&ob.sent, (uintptr_t)(d[i] - 10));
		seqs_add(&ob.done, d[i]);
	}
	/* 13 has no report: 10-12 now, 14, 16, 17 wait for it. */
	assert_int_equal(done_ready(1000), 3);
	assert_true(ob.done.v[0] == 10 && ob.done.v[2] == 12);
	assert_true(ob.held_us == 1000);
	/* The first three deleted: still waiting, not for long. */
	memmove(ob.done.v, ob.done.v + 3, 3 * sizeof(*ob.done.v));
	ob.done.n = 3;
	assert_int_equal(done_ready(1000 + HOLD_US - 1), 0);
	assert_true(ob.held_us == 1000);
	/* 13 reported (failed: not in done): 14 goes, 16 and 17 wait. */
	ring_report(&ob.sent, 3);
	assert_int_equal(done_ready(1000 + HOLD_US - 1), 1);
	/* Waited HOLD_US: all of them. */
	assert_int_equal(done_ready(1000 + HOLD_US), 3);
	assert_true(ob.held_us == 0);
	/* Nothing in flight: all at once. */
	ob.done.n = 0;
	ring_report(&ob.sent, 5);
	ring_report(&ob.sent, 6);
	ring_report(&ob.sent, 7);
	seqs_add(&ob.done, 20);
	seqs_add(&ob.done, 19);
	assert_int_equal(done_ready(5000), 2);
	assert_true(ob.done.v[0] == 19);
	assert_true(ob.held_us == 0);
	free(ob.sent.v);
	free(ob.done.v);
	memset(&ob, 0, sizeof(ob));
}

static void
test_pos_take(void **state)
{
	memset(&ob, 0, sizeof(ob));
	pos_take(100, 1);			/* the first: no hole */
	pos_take(101, 1);
	pos_take(104, 1);			/* 102, 103 */
	assert_true(ob.pos.cursor == 104);
	assert_int_equal(ob.pos.nholes, 2);
	pos_take(103, 2);			/* filled late */
	assert_true(ob.pos.cursor == 104);
	assert_int_equal(ob.pos.nholes, 1);
	assert_true(ob.pos.holes[0].seq == 102);
	pos_reset();
	assert_true(ob.pos.cursor == 0 && ob.pos.nholes == 0);
	assert_true(ob.gen == 1);
	memset(&ob, 0, sizeof(ob));
}

static void
test_holes(void **state)
{
	memset(&ob, 0, sizeof(ob));
	holes_seen(10, 11, 100);		/* next one: no hole */
	assert_int_equal(ob.pos.nholes, 0);
	holes_seen(11, 14, 100);		/* 12 and 13 */
	assert_int_equal(ob.pos.nholes, 2);
	assert_int_equal(ob.pos.holes[0].seq, 12);
	assert_int_equal(ob.pos.holes[1].seq, 13);
	holes_seen(14, 14 + HOLE_MAX + 1, 100);	/* a jump: not holes */
	assert_int_equal(ob.pos.nholes, 2);
	holes_forget(12, 200);			/* found */
	assert_int_equal(ob.pos.nholes, 1);
	assert_int_equal(ob.pos.holes[0].seq, 13);
	holes_forget(-1, 100 + HOLE_TTL_US - 1);	/* not yet too old */
	assert_int_equal(ob.pos.nholes, 1);
	holes_forget(-1, 100 + HOLE_TTL_US);
	assert_int_equal(ob.pos.nholes, 0);
	holes_seen(0, HOLE_MAX, 1);		/* never more than HOLE_MAX */
	holes_seen(HOLE_MAX, 2 * HOLE_MAX, 1);
	assert_int_equal(ob.pos.nholes, HOLE_MAX);
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
		cmocka_unit_test(test_seqs_runs),
		cmocka_unit_test(test_seqs_runs_exact),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_done_ready),
		cmocka_unit_test(test_pos_take),
		cmocka_unit_test(test_holes),
		cmocka_unit_test(test_stats_up),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
