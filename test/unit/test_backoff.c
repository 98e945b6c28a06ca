/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_backoff - capped exponential backoff: the exact sequence without
 * jitter (base, 2x, 4x, ... capped at max), reset, peek not counting a
 * failure, and jittered delays staying within [d * (1 - j%), d].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static void
test_sequence_no_jitter(void **state)
{
	static const uint64_t	want[] = { 100, 200, 400, 800, 1600, 3200,
	    5000, 5000, 5000 };
	struct backoff		b;
	size_t			i;

	backoff_init(&b, 100, 5000, 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(backoff_next(&b), want[i]);
	assert_int_equal(b.attempt, 9);
}

static void
test_never_exceeds_max(void **state)
{
	struct backoff	b;
	uint64_t	d, prev = 0;
	int		i;

	/* Many more failures than bits in a uint64_t: no overflow to 0. */
	backoff_init(&b, 1000, 30000000, 0);
	for (i = 0; i < 200; i++) {
		d = backoff_next(&b);
		assert_true(d <= 30000000);
		assert_true(d >= prev);
		prev = d;
	}
	assert_int_equal(prev, 30000000);
}

static void
test_max_below_base(void **state)
{
	struct backoff	b;

	/* A cap under the first delay is raised to it. */
	backoff_init(&b, 500, 10, 0);
	assert_int_equal(backoff_next(&b), 500);
	assert_int_equal(backoff_next(&b), 500);
}

static void
test_reset(void **state)
{
	struct backoff	b;

	backoff_init(&b, 10, 1000, 0);
	assert_int_equal(backoff_next(&b), 10);
	assert_int_equal(backoff_next(&b), 20);
	assert_int_equal(backoff_next(&b), 40);
	backoff_reset(&b);
	assert_int_equal(b.attempt, 0);
	assert_int_equal(backoff_next(&b), 10);
	assert_int_equal(backoff_next(&b), 20);
}

static void
test_peek_does_not_count(void **state)
{
	struct backoff	b;

	backoff_init(&b, 10, 1000, 0);
	assert_int_equal(backoff_peek(&b), 10);
	assert_int_equal(backoff_peek(&b), 10);
	assert_int_equal(b.attempt, 0);
	assert_int_equal(backoff_next(&b), 10);
	assert_int_equal(backoff_peek(&b), 20);
	assert_int_equal(backoff_peek(&b), 20);
	assert_int_equal(backoff_next(&b), 20);
	assert_int_equal(b.attempt, 2);
}

/* check_jitter - every delay within [d * (1 - pct%), d], not all equal */
static void
check_jitter(unsigned pct)
{
	struct backoff	b;
	uint64_t	d, want, lo, min = UINT64_MAX, max = 0;
	int		i;

	backoff_init(&b, 100000, 100000, pct);
	for (i = 0; i < 1000; i++) {
		want = backoff_peek(&b);
		assert_int_equal(want, 100000);
		lo = want - want * pct / 100;
		d = backoff_next(&b);
		assert_in_range(d, lo, want);
		min = d < min ? d : min;
		max = d > max ? d : max;
	}
	/* The jitter really varies and really uses most of its range. */
	assert_true(max - min > 100000 * pct / 100 / 2);
}

static void
test_jitter_range(void **state)
{
	check_jitter(10);
	check_jitter(50);
	check_jitter(100);
}

static void
test_jitter_on_growing_delays(void **state)
{
	struct backoff	b;
	uint64_t	d, want;
	int		i;

	backoff_init(&b, 1000, 64000, 25);
	for (i = 0; i < 20; i++) {
		want = backoff_peek(&b);
		d = backoff_next(&b);
		assert_in_range(d, want - want * 25 / 100, want);
	}
	assert_int_equal(backoff_peek(&b), 64000);
}

static void
test_jitter_pct_clamped(void **state)
{
	struct backoff	b;
	int		i;

	backoff_init(&b, 1000, 1000, 250);
	assert_int_equal(b.jitter_pct, 100);
	for (i = 0; i < 100; i++)
		assert_in_range(backoff_next(&b), 0, 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence_no_jitter),
		cmocka_unit_test(test_never_exceeds_max),
		cmocka_unit_test(test_max_below_base),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_peek_does_not_count),
		cmocka_unit_test(test_jitter_range),
		cmocka_unit_test(test_jitter_on_growing_delays),
		cmocka_unit_test(test_jitter_pct_clamped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
