/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_outbox - the pure parts of the outbound worker's outbox relay
 * (workers/outbound/outbox.c, included whole): a report's id (a random
 * version 4 UUID) and time, the array literal of the holes, the ring of
 * messages in flight, the runs of delivered seqs kept per partition (never
 * a seq not delivered) with the arrays a DELETE and a truncation's check
 * name, which partition's rows are cleared and how, where a read stops
 * before kept rows and skips them, the migration's partition key, the
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

static void
test_ring(void **state)
{
	struct ring	 r = { 0 };
	struct seqs	 done = { 0 };
	uintptr_t	 t[10000];
	size_t		 i;

	assert_true(ring_low(&r) == INT64_MAX);
	/* Beyond its first size, reported out of order: done gets the
	 * delivered ones as the oldest leave, in the order produced. */
	for (i = 0; i < 10000; i++)
		t[i] = ring_push(&r, 100 + (int64_t)i);
	assert_true(r.cap >= 10000);
	assert_true(ring_low(&r) == 100);
	assert_true(ring_report(&r, t[1], 1, &done) == 101);
	assert_true(ring_low(&r) == 100);
	assert_int_equal(done.n, 0);
	assert_true(ring_report(&r, t[0], 1, &done) == 100);
	assert_true(ring_low(&r) == 102);
	assert_int_equal(done.n, 2);
	assert_true(done.v[0] == 100 && done.v[1] == 101);
	assert_true(ring_report(&r, t[3], 0, &done) == 103);	/* failed */
	for (i = 9999; i >= 4; i--)
		assert_true(ring_report(&r, t[i], 1, &done) ==
		    100 + (int64_t)i);
	assert_true(ring_low(&r) == 102);
	assert_int_equal(done.n, 2);
	assert_true(ring_report(&r, t[2], 1, &done) == 102);
	assert_true(ring_low(&r) == INT64_MAX);
	/* 102, then 104..10099: not the failed 103. */
	assert_int_equal(done.n, 2 + 1 + 9996);
	assert_true(done.v[2] == 102 && done.v[3] == 104);
	assert_true(done.v[done.n - 1] == 10099);
	/* Tickets of before, or never given: not the ring's. */
	assert_true(ring_report(&r, t[5], 1, &done) == -1);
	assert_true(ring_report(&r, r.tail, 1, &done) == -1);
	/* Around the end of the array, and a producer freed. */
	for (i = 0; i < 3 * r.cap / 2; i++) {
		t[0] = ring_push(&r, 7);
		assert_true(ring_report(&r, t[0], 1, &done) == 7);
	}
	t[0] = ring_push(&r, 8);
	r.head = r.tail;
	assert_true(ring_report(&r, t[0], 1, &done) == -1);
	assert_true(ring_low(&r) == INT64_MAX);
	free(r.v);
	free(done.v);
}

/* runs_of - the runs of r as "lo-hi lo-hi ..." */
static char *
runs_of(const struct runs *r)
{
	char	*buf = xmalloc(r->n * 42 + 1), *p = buf;
	size_t	 i;

	*p = '\0';
	for (i = 0; i < r->n; i++)
		p += sprintf(p, i ? " %lld-%lld" : "%lld-%lld",
		    (long long)r->v[i].lo, (long long)r->v[i].hi);
	return buf;
}

static void
test_runs_add(void **state)
{
	struct runs	 r = { 0 };
	char		*s;

	runs_add(&r, 10, 12);
	runs_add(&r, 20, 20);
	runs_add(&r, 5, 5);		/* before the first */
	runs_add(&r, 14, 15);		/* between, touching neither */
	s = runs_of(&r);
	assert_string_equal(s, "5-5 10-12 14-15 20-20");
	free(s);
	assert_int_equal(r.nseq, 7);
	runs_add(&r, 13, 13);		/* joins 10-12 and 14-15 */
	runs_add(&r, 21, 21);		/* extends the last */
	runs_add(&r, 11, 11);		/* already there */
	s = runs_of(&r);
	assert_string_equal(s, "5-5 10-15 20-21");
	free(s);
	assert_int_equal(r.nseq, 9);
	runs_add(&r, 4, 30);		/* covers them all */
	s = runs_of(&r);
	assert_string_equal(s, "4-30");
	free(s);
	assert_int_equal(r.nseq, 27);
	assert_true(runs_has(&r, 4) && runs_has(&r, 30) && runs_has(&r, 17));
	assert_false(runs_has(&r, 3) || runs_has(&r, 31));
	free(r.v);
}

/* Random seqs in random order: the runs are exactly the seqs added. */
static void
test_runs_exact(void **state)
{
	struct runs	 r = { 0 };
	unsigned char	 in[3000];
	size_t		 i, round, n;
	long long	 k;

	srandom(7);
	for (round = 0; round < 100; round++) {
		memset(in, 0, sizeof(in));
		r.n = r.nseq = 0;
		for (i = 0; i < 2000; i++) {
			k = random() % (long long)sizeof(in);
			n = (size_t)(random() % 4);	/* a few at a time */
			for (; n > 0 && k + (long long)n > (long long)sizeof(in);
			    n--)
				;
			if (n == 0)
				continue;
			memset(in + k, 1, n);
			runs_add(&r, 1000 + k, 1000 + k + (long long)n - 1);
		}
		for (i = 1; i < r.n; i++)	/* in order, apart */
			assert_true(r.v[i].lo > r.v[i - 1].hi + 1);
		for (n = 0, k = 0; k < (long long)sizeof(in); k++) {
			assert_int_equal(runs_has(&r, 1000 + k), in[k]);
			n += in[k];
		}
		assert_int_equal(r.nseq, n);
		assert_false(runs_has(&r, 999));
		assert_false(runs_has(&r, 1000 + (long long)sizeof(in)));
	}
	free(r.v);
}

static void
test_runs_arrays_and_gaps(void **state)
{
	struct runs	 r = { 0 };
	char		*lo, *hi;

	runs_add(&r, 3, 5);
	runs_add(&r, 7, 7);
	runs_add(&r, 9007199254740992LL, 9007199254740993LL);
	runs_arrays(&r, &lo, &hi);
	assert_string_equal(lo, "{3,7,9007199254740992}");
	assert_string_equal(hi, "{5,7,9007199254740993}");
	free(lo);
	free(hi);
	/* Every seq in no run: before, between, after. */
	runs_gaps(&r, &lo, &hi);
	assert_string_equal(lo,
	    "{-9223372036854775808,6,8,9007199254740994}");
	assert_string_equal(hi, "{2,6,9007199254740991,9223372036854775807}");
	free(lo);
	free(hi);
	free(r.v);
	memset(&r, 0, sizeof(r));
	runs_gaps(&r, &lo, &hi);		/* none: every seq */
	assert_string_equal(lo, "{-9223372036854775808}");
	assert_string_equal(hi, "{9223372036854775807}");
	free(lo);
	free(hi);
}

static void
test_part_of(void **state)
{
	assert_int_equal(part_of(1), 0);
	assert_int_equal(part_of(PART_SLICE - 1), 0);
	assert_int_equal(part_of(PART_SLICE), 1);
	assert_int_equal(part_of((int64_t)PART_SLICE * PART_COUNT - 1),
	    PART_COUNT - 1);
	assert_int_equal(part_of((int64_t)PART_SLICE * PART_COUNT), 0);
	assert_int_equal(part_of((int64_t)PART_SLICE * (PART_COUNT + 3) + 5),
	    3);
}

/* parts_free - the kept runs freed, ob zeroed */
static void
parts_free(void)
{
	size_t	i;

	for (i = 0; i < PART_COUNT; i++)
		free(ob.parts[i].kept.v);
	free(ob.done.v);
	free(ob.sent.v);
	memset(&ob, 0, sizeof(ob));
}

static void
test_file_done(void **state)
{
	const int64_t	 s = PART_SLICE;
	int64_t		 d[] = { s + 2, s - 1, s, s + 1, 5, 4, 2 * s + 7,
	    (int64_t)PART_COUNT * s + 1, 3 * s };
	size_t		 i;
	char		*t, want[128];

	memset(&ob, 0, sizeof(ob));
	for (i = 0; i < NELEM(d); i++)
		seqs_add(&ob.done, d[i]);
	/* Partition 3 is being cleared: 3 * s waits in done. */
	ob.clearing = 1;
	ob.clr_part = 3;
	file_done();
	assert_int_equal(ob.done.n, 1);
	assert_true(ob.done.v[0] == 3 * s);
	/* s - 1 and s are consecutive but in two partitions; the ring's
	 * second lap is in the first partition again. */
	snprintf(want, sizeof(want), "4-5 %lld-%lld %lld-%lld",
	    (long long)s - 1, (long long)s - 1, (long long)PART_COUNT * s + 1,
	    (long long)PART_COUNT * s + 1);
	t = runs_of(&ob.parts[0].kept);
	assert_string_equal(t, want);
	free(t);
	snprintf(want, sizeof(want), "%lld-%lld", (long long)s,
	    (long long)s + 2);
	t = runs_of(&ob.parts[1].kept);
	assert_string_equal(t, want);
	free(t);
	assert_int_equal(ob.parts[2].kept.nseq, 1);
	assert_true(ob.kept_hi == (int64_t)PART_COUNT * s + 1);
	assert_true(kept(5) && kept(s + 2) && !kept(3) && !kept(s + 3));
	assert_int_equal(kept_total(), 8);
	ob.clearing = 0;
	file_done();
	assert_int_equal(ob.done.n, 0);
	assert_true(kept(3 * s));
	parts_free();
}

/* A relay that read up to seen and has every seq in flight[] in flight. */
static void
relay_at(int64_t seen, const int64_t *flight, size_t n)
{
	size_t	i;

	ob.seen_hi = seen;
	for (i = 0; i < n; i++)
		ring_push(&ob.sent, flight[i]);
	ob.inflight = n;
}

static void
test_clear_pick(void **state)
{
	const int64_t	 s = PART_SLICE;
	int64_t		 fl[] = { s - 10 };
	int		 j = -1;

	memset(&ob, 0, sizeof(ob));
	/* Slice 0 all delivered but one row, still in flight; slice 1
	 * being read: partition 0 is not sealed yet. */
	runs_add(&ob.parts[0].kept, 1, s - 11);
	runs_add(&ob.parts[0].kept, s - 9, s - 1);
	runs_add(&ob.parts[1].kept, s, s + 500);
	relay_at(s + 4000, fl, 1);
	assert_int_equal(clear_pick(0, 0, &j), CLEAR_NONE);
	/* Its report came: partition 0 is truncated (the check finds the
	 * gap's row if it failed). */
	ring_report(&ob.sent, 0, 1, &ob.done);
	ob.done.n = 0;
	ob.inflight = 0;
	assert_int_equal(clear_pick(0, 0, &j), CLEAR_TRUNCATE);
	assert_int_equal(j, 0);
	/* A try failed: not again for a second; then again; after
	 * CLEAR_TRIES, a DELETE. */
	ob.parts[0].fails = 1;
	ob.parts[0].retry_us = 1000;
	assert_int_equal(clear_pick(999, 0, &j), CLEAR_NONE);
	assert_int_equal(clear_pick(1000, 0, &j), CLEAR_TRUNCATE);
	ob.parts[0].fails = CLEAR_TRIES;
	assert_int_equal(clear_pick(1000, 0, &j), CLEAR_DELETE);
	assert_int_equal(j, 0);
	ob.parts[0].kept.n = ob.parts[0].kept.nseq = 0;
	/* Partition 1 is the slice being written: only when idle; a few
	 * rows are deleted, many truncated, unless a try failed. */
	assert_int_equal(clear_pick(1000, 0, &j), CLEAR_NONE);
	assert_int_equal(clear_pick(1000, 1, &j), CLEAR_DELETE);
	assert_int_equal(j, 1);
	runs_add(&ob.parts[1].kept, s + 501, s + 501 + TRUNC_MIN);
	assert_int_equal(clear_pick(1000, 1, &j), CLEAR_TRUNCATE);
	ob.parts[1].fails = 1;
	assert_int_equal(clear_pick(1000, 1, &j), CLEAR_DELETE);
	/* Slice 1 sealed by a read of slice 2: truncated without waiting
	 * for idle. */
	ob.parts[1].fails = 0;
	ob.seen_hi = 2 * s;
	assert_int_equal(clear_pick(1000, 0, &j), CLEAR_TRUNCATE);
	assert_int_equal(j, 1);
	parts_free();
}

static void
test_kept_next(void **state)
{
	const int64_t	 s = PART_SLICE;
	int64_t		 end = 0;

	memset(&ob, 0, sizeof(ob));
	assert_true(kept_next(0, &end) == INT64_MAX);
	/* Slice 0 kept but 1 and 7, slice 1's first half: one stretch
	 * across two partitions after 7. */
	runs_add(&ob.parts[0].kept, 2, 6);
	runs_add(&ob.parts[0].kept, 8, s - 1);
	runs_add(&ob.parts[1].kept, s, s + s / 2);
	runs_add(&ob.parts[3].kept, 3 * s + 10, 3 * s + 20);
	ob.kept_hi = 3 * s + 20;
	assert_true(kept_next(0, &end) == 2 && end == 6);
	assert_true(kept_next(2, &end) == 3 && end == 6);
	assert_true(kept_next(6, &end) == 8 && end == s + s / 2);
	assert_true(kept_next(7, &end) == 8 && end == s + s / 2);
	assert_true(kept_next(s + 5, &end) == s + 6 && end == s + s / 2);
	assert_true(kept_next(s + s / 2, &end) == 3 * s + 10 &&
	    end == 3 * s + 20);
	assert_true(kept_next(3 * s + 20, &end) == INT64_MAX);
	/* A read from 0 that found 1 stops at 2 and goes on after the
	 * stretch; 7 was read past: a hole. */
	pos_take(1, 5);
	pos_skip(2, 6, 5);
	assert_true(ob.pos.cursor == 6 && ob.pos.nholes == 0);
	pos_skip(8, s + s / 2, 5);
	assert_true(ob.pos.cursor == s + s / 2);
	assert_int_equal(ob.pos.nholes, 1);
	assert_true(ob.pos.holes[0].seq == 7);
	parts_free();
}

static void
test_migration_layout(void **state)
{
	char	want[64];

	/* The SQL's partition key is the one part_of computes. */
	snprintf(want, sizeof(want), "(seq / %d %% %d)", PART_SLICE,
	    PART_COUNT);
	assert_non_null(strstr(outbox_migration_2, want));
	snprintf(want, sizeof(want), "FOR i IN 0..%d - 1", PART_COUNT);
	assert_non_null(strstr(outbox_migration_2, want));
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
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_runs_add),
		cmocka_unit_test(test_runs_exact),
		cmocka_unit_test(test_runs_arrays_and_gaps),
		cmocka_unit_test(test_part_of),
		cmocka_unit_test(test_file_done),
		cmocka_unit_test(test_clear_pick),
		cmocka_unit_test(test_kept_next),
		cmocka_unit_test(test_migration_layout),
		cmocka_unit_test(test_pos_take),
		cmocka_unit_test(test_holes),
		cmocka_unit_test(test_stats_up),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
