/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_link - the reconnecting part of pgc and rds, driven by a fake owner
 * whose attempts are refused, hang, or succeed, as each test wants: the
 * order of hooks and states, the connect timeout, the backoff, the outage
 * log policy, and freeing the owner from inside its own callbacks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "link.h"
#include "log.h"
#include "testlib.h"
#include "util.h"

enum attempt {
	REFUSE,			/* link_down at once */
	HANG,			/* until the connect timeout */
	ACCEPT,			/* link_up at once */
};

struct owner {
	struct link	 link;
	struct tl_watch	 w;
	enum attempt	 attempt;
	int		 connects, losts, defers, destroys;
	int		 in_state;	/* inside the state hook */
	int		 destroyed_in_state;
	char		 why[64];	/* of the last lost hook */
};

/* o_connect - an attempt: refused, hanging, or up */
static void
o_connect(void *arg)
{
	struct owner	*o = arg;

	o->connects++;
	if (o->attempt == REFUSE)
		link_down(&o->link, "refused");
	else if (o->attempt == HANG)
		link_attempt(&o->link);
	else
		link_up(&o->link);
}

/* o_lost - the attempt timed out: the owner gives up on it */
static void
o_lost(void *arg, const char *why)
{
	struct owner	*o = arg;

	o->losts++;
	snprintf(o->why, sizeof(o->why), "%s", why);
	link_down(&o->link, why);
}

/* o_defer - count the calls of the defer hook */
static void
o_defer(void *arg)
{
	struct owner	*o = arg;

	o->defers++;
}

/* o_destroy - what an owner frees; the owner itself is the test's */
static void
o_destroy(void *arg)
{
	struct owner	*o = arg;

	o->destroys++;
	o->destroyed_in_state = o->in_state;
	link_free(&o->link);
}

/* o_state - note the change; free the owner when the watch says */
static void
o_state(void *arg, enum link_state s)
{
	struct owner	*o = arg;

	o->in_state = 1;
	if (tl_watch_note(&o->w, s, s == LINK_UP ? TL_UP : s == LINK_DOWN ?
	    TL_DOWN : TL_ATTEMPT) && link_kill(&o->link))
		link_reap(&o->link);
	o->in_state = 0;
}

static const struct link_ops o_ops = {
	.connect = o_connect, .lost = o_lost, .defer = o_defer,
	.destroy = o_destroy, .state = o_state,
};

/* o_init - an owner named name with a fast backoff */
static void
o_init(struct owner *o, const char *name, enum attempt attempt)
{
	memset(o, 0, sizeof(*o));
	o->attempt = attempt;
	tl_watch_init(&o->w, LINK_CONNECTING);
	link_init(&o->link, tl_base, xstrdup(name), &o_ops, o);
	link_set_backoff(&o->link, 20, 160);
}

/* o_free - free the owner as pgc_free does */
static void
o_free(struct owner *o)
{
	if (link_kill(&o->link))
		link_reap(&o->link);
	assert_int_equal(o->destroys, 1);
}

/* test_first_attempt - from the loop, not from link_init */
static void
test_first_attempt(void **state)
{
	struct owner	o;

	o_init(&o, "first", ACCEPT);
	assert_int_equal(link_state(&o.link), LINK_CONNECTING);
	assert_string_equal(link_name(&o.link), "first");
	assert_int_equal(o.connects, 0);
	TL_WAIT_FOR(o.w.ups == 1, 1000);
	assert_int_equal(o.connects, 1);
	assert_int_equal(link_state(&o.link), LINK_UP);
	/* the state it started in is not reported again */
	assert_int_equal(o.w.attempts, 0);
	link_set_name(&o.link, "renamed");
	assert_string_equal(link_name(&o.link), "renamed");
	o_free(&o);
}

/* test_connect_timeout - a hanging attempt is given up after the timeout */
static void
test_connect_timeout(void **state)
{
	struct owner	o;

	o_init(&o, "hang", HANG);
	link_set_connect_timeout(&o.link, 200);
	TL_WAIT_FOR(o.w.downs == 1, 3000);
	tl_assert_timed_out(&o.w);
	assert_int_equal(o.losts, 1);
	assert_string_equal(o.why, "connect timed out after 200 ms");
	/* a refused attempt is not timed out */
	o.attempt = REFUSE;
	tl_spin(400);
	assert_int_equal(o.losts, 1);
	assert_true(o.w.downs > 2);
	o_free(&o);
}

/* test_backoff - retries at growing delays; a success starts them over */
static void
test_backoff(void **state)
{
	struct owner	o;
	unsigned	t0 = tl_ticks;

	o_init(&o, "refused", REFUSE);
	tl_spin(1000);
	tl_assert_retrying(&o.w, t0);
	assert_int_equal(link_state(&o.link), LINK_DOWN);
	o.attempt = ACCEPT;
	TL_WAIT_FOR(o.w.ups == 1, 1000);
	o.attempt = REFUSE;
	link_down(&o.link, "lost");
	tl_watch_init(&o.w, LINK_DOWN);
	TL_WAIT_FOR(o.w.attempts == 2, 1000);
	/* the first delays again: 20 ms, less up to 20 % jitter */
	assert_true(o.w.at[0] - o.w.start < 100000);
	assert_true(o.w.at[1] - o.w.at[0] < 120000);
	o_free(&o);
}

/*
 * test_outage_log - an outage is logged once however many attempts fail,
 * the recovery once with its duration, the retries only at debug level;
 * the next outage is logged again.
 */
static void
test_outage_log(void **state)
{
	struct owner	o;

	tl_log_capture();
	o_init(&o, "flaky", ACCEPT);
	TL_WAIT_FOR(o.w.ups == 1, 1000);
	assert_int_equal(tl_log_count("flaky", "up"), 0);
	o.attempt = REFUSE;
	link_down(&o.link, "refused");
	TL_WAIT_FOR(o.w.attempts >= 4, 2000);
	assert_int_equal(tl_log_count("flaky", "level=warn"), 1);
	assert_int_equal(tl_log_count("flaky", "refused; will keep retrying"),
	    1);
	log_set_level(LOG_LVL_DEBUG);
	TL_WAIT_FOR(o.w.attempts >= 6, 2000);
	log_set_level(LOG_LVL_INFO);
	assert_true(tl_log_count("flaky", "level=debug") >= 1);
	o.attempt = ACCEPT;
	TL_WAIT_FOR(o.w.ups == 2, 1000);
	assert_int_equal(tl_log_count("flaky", "level=info"), 1);
	assert_int_equal(tl_log_count("flaky", "up again after"), 1);
	link_down(&o.link, "gone");
	assert_int_equal(tl_log_count("flaky", "gone; will keep retrying"), 1);
	tl_log_release();
	o_free(&o);
}

/* test_defer - the defer hook runs from the loop, once per request burst */
static void
test_defer(void **state)
{
	struct owner	o;

	o_init(&o, "defer", HANG);
	link_defer(&o.link);
	link_defer(&o.link);
	assert_int_equal(o.defers, 0);
	tl_spin(20);
	assert_int_equal(o.defers, 1);
	o_free(&o);
}

/* test_free_in_state - a free from the state hook waits for its return */
static void
test_free_in_state(void **state)
{
	struct owner	o;

	o_init(&o, "free-state", REFUSE);
	o.w.free_on_down = 1;
	TL_WAIT_FOR(o.destroys == 1, 1000);
	assert_int_equal(o.w.freed, 1);
	assert_int_equal(o.destroys, 1);
	assert_int_equal(o.destroyed_in_state, 0);
	tl_spin(100);
	assert_int_equal(o.connects, 1);
}

/*
 * test_free_in_foreign_frame - a free asked for while the owner is in use
 * by a frame that cannot finish it (link_return) happens from the loop,
 * after one last defer; no attempt or state change happens in between.
 */
static void
test_free_in_foreign_frame(void **state)
{
	struct owner	o;
	int		attempts;

	o_init(&o, "free-foreign", REFUSE);
	TL_WAIT_FOR(o.w.downs == 2, 1000);
	attempts = o.w.attempts;
	link_enter(&o.link);
	assert_int_equal(link_kill(&o.link), 1);
	assert_int_equal(link_kill(&o.link), 0);
	assert_true(link_dying(&o.link));
	link_reap(&o.link);
	link_defer(&o.link);
	link_return(&o.link);
	assert_int_equal(o.destroys, 0);
	tl_spin(50);
	assert_int_equal(o.destroys, 1);
	assert_int_equal(o.defers, 1);
	assert_int_equal(o.w.attempts, attempts);
}

/* main - every test on one loop */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_attempt),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_outage_log),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_free_in_state),
		cmocka_unit_test(test_free_in_foreign_frame),
	};

	return cmocka_run_group_tests(tests, tl_setup, tl_teardown);
}
