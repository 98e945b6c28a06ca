/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_throttle - login throttling: what the counts mean (the user's and
 * the address's limits, the worse stage winning, 0 turning a stage off),
 * the address of a peer name, and the counts kept in memory when Redis
 * cannot be reached (a closed port): slowed after delay_after, refused
 * after refuse_after, a success forgetting the user and taking one
 * attempt off the address, the delay given by a timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf.h"
#include "throttle.h"
#include "util.h"

static const struct throttle_limits lim = { 2, 4, 3, 6, 60.0, 0.05 };

static void
test_verdicts(void **state)
{
	struct throttle_limits	off = lim;

	assert_int_equal(throttle_verdict_of(&lim, 0, 0, 0), THROTTLE_OK);
	assert_int_equal(throttle_verdict_of(&lim, 0, 1, 0), THROTTLE_OK);
	assert_int_equal(throttle_verdict_of(&lim, 0, 2, 0), THROTTLE_SLOW);
	assert_int_equal(throttle_verdict_of(&lim, 0, 4, 0), THROTTLE_REFUSE);
	assert_int_equal(throttle_verdict_of(&lim, 2, 0, 0), THROTTLE_OK);
	assert_int_equal(throttle_verdict_of(&lim, 3, 0, 0), THROTTLE_SLOW);
	assert_int_equal(throttle_verdict_of(&lim, 6, 1, 0), THROTTLE_REFUSE);
	assert_int_equal(throttle_verdict_of(&lim, 3, 4, 0), THROTTLE_REFUSE);
	assert_int_equal(throttle_verdict_of(&lim, 0, 0, 1), THROTTLE_REFUSE);
	memset(&off, 0, sizeof(off));
	assert_int_equal(throttle_verdict_of(&off, 1000, 1000, 0), THROTTLE_OK);
}

static void
test_host(void **state)
{
	char	b[THROTTLE_HOST_MAX];

	throttle_host("127.0.0.1:5000", b, sizeof(b));
	assert_string_equal(b, "127.0.0.1");
	throttle_host("[::1]:8000", b, sizeof(b));
	assert_string_equal(b, "::1");
	throttle_host("local", b, sizeof(b));
	assert_string_equal(b, "local");
	throttle_host("fe80::1", b, sizeof(b));
	assert_string_equal(b, "fe80::1");
	throttle_host("10.0.0.1", b, sizeof(b));
	assert_string_equal(b, "10.0.0.1");
	throttle_host("[::1", b, sizeof(b));	/* no ']': as it is */
	assert_string_equal(b, "[::1");
}

struct got {
	struct event_base	*base;
	enum throttle_verdict	 v;
	unsigned		 retry;
	int			 n;
};

static void
got_cb(enum throttle_verdict v, unsigned retry, void *arg)
{
	struct got	*g = arg;

	g->v = v;
	g->retry = retry;
	g->n++;
	event_base_loopbreak(g->base);
}

static enum throttle_verdict
attempt(struct throttle *t, struct got *g, const char *user, const char *addr)
{
	int	n = g->n;

	throttle_attempt(t, user, addr, got_cb, g);
	while (g->n == n)
		event_base_loop(g->base, EVLOOP_ONCE);
	return g->v;
}

static void
delayed(void *arg)
{
	struct got	*g = arg;

	g->n++;
}

static void
test_local_counts(void **state)
{
	struct event_base	*base = event_base_new();
	struct throttle		*t;
	struct got		 g = { base, THROTTLE_OK, 0, 0 };
	struct conf_redis	 cr;
	uint64_t		 t0;
	int			 n;

	/* port 1: nothing listens, so every attempt is counted locally */
	memset(&cr, 0, sizeof(cr));
	cr.host = "127.0.0.1";
	cr.port = 1;
	t = throttle_new(base, &cr, "t1");
	throttle_set_limits(t, &lim);
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_OK);
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_OK);
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_SLOW);
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_SLOW);
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_REFUSE);
	assert_true(g.retry >= 59 && g.retry <= 60);
	/* refused attempts are not counted; another user is, by address */
	assert_int_equal(attempt(t, &g, "p:b", "10.0.0.1"), THROTTLE_SLOW);
	/* a success: the user forgotten, the address one less (4) */
	throttle_success(t, "p:a", "10.0.0.1");
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_SLOW);
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.1"), THROTTLE_SLOW);
	/* the address at 6: everyone from it refused, not from elsewhere */
	assert_int_equal(attempt(t, &g, "p:c", "10.0.0.1"), THROTTLE_REFUSE);
	assert_int_equal(attempt(t, &g, "p:c", "10.0.0.2"), THROTTLE_OK);
	assert_int_equal(attempt(t, &g, NULL, "10.0.0.1"), THROTTLE_REFUSE);
	/* a new password forgets the user */
	throttle_forget(t, "p:a");
	assert_int_equal(attempt(t, &g, "p:a", "10.0.0.3"), THROTTLE_OK);
	/* the delay: from the loop, after login_delay */
	n = g.n;
	t0 = now_mono_us();
	throttle_delay(t, delayed, &g);
	while (g.n == n)
		event_base_loop(base, EVLOOP_ONCE);
	assert_true(now_mono_us() - t0 >= 45000);
	/* a delay still waiting when the throttle goes is given at once */
	n = g.n;
	throttle_delay(t, delayed, &g);
	throttle_free(t);
	assert_int_equal(g.n, n + 1);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_local_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
