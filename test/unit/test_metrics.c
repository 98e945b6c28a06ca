/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics - the metrics registry: registering counters, gauges and
 * histograms (again: the same series, value kept), refusals (type clash,
 * bad names and labels, full registry), the exact Prometheus text output,
 * rendering into a buffer too small, and a counter shared across fork.
 */
#include <sys/wait.h>

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define SERIES_MAX	64

static int
setup(void **state)
{
	return metrics_init_private(SERIES_MAX);
}

static int
teardown(void **state)
{
	metrics_fini();
	return 0;
}

/* render - the whole registry as a malloc'ed string */
static char *
render(void)
{
	size_t	 need = metrics_render(NULL, 0), got;
	char	*buf = xmalloc(need + 1);

	got = metrics_render(buf, need);
	assert_int_equal(got, need);
	buf[got] = '\0';
	return buf;
}

/* rendered_value - the sample value on the line starting with prefix */
static double
rendered_value(const char *prefix)
{
	char	*out = render(), *line, *end;
	double	 v;

	for (line = strstr(out, prefix); line != NULL && line != out &&
	    line[-1] != '\n'; line = strstr(line + 1, prefix))
		;
	if (line == NULL)
		fail_msg("no line \"%s\" in:\n%s", prefix, out);
	v = strtod(line + strlen(prefix), &end);
	if (end == line + strlen(prefix) || *end != '\n')
		fail_msg("bad value on the line \"%s\"", prefix);
	free(out);
	return v;
}

/* expect_render - the registry renders exactly as want */
static void
expect_render(const char *want)
{
	char	*got = render();

	assert_string_equal(got, want);
	free(got);
}

static void
test_counter(void **state)
{
	struct metric	*m;

	m = metrics_counter("t_requests_total", "Requests.", NULL);
	assert_non_null(m);
	assert_true(metric_get(m) == 0);
	metric_inc(m);
	metric_inc(m);
	metric_add(m, 40);
	assert_true(metric_get(m) == 42);
	assert_int_equal(metrics_count(), 1);
	expect_render("# HELP t_requests_total Requests.\n"
	    "# TYPE t_requests_total counter\n"
	    "t_requests_total 42\n");
}

static void
test_gauge(void **state)
{
	struct metric	*g = metrics_gauge("t_temp", "Temperature.",
	    "room=\"a\"");

	assert_non_null(g);
	metric_set(g, 21.5);
	assert_true(metric_get(g) == 21.5);
	metric_add(g, -1.5);
	assert_true(metric_get(g) == 20);
	metric_set(g, -3);
	expect_render("# HELP t_temp Temperature.\n"
	    "# TYPE t_temp gauge\n"
	    "t_temp{room=\"a\"} -3\n");
	metric_set(g, 21.25);
	expect_render("# HELP t_temp Temperature.\n"
	    "# TYPE t_temp gauge\n"
	    "t_temp{room=\"a\"} 21.25\n");
	/* Other values in any form that reads back to them. */
	metric_set(g, 0.1);
	assert_true(fabs(rendered_value("t_temp{room=\"a\"} ") - 0.1) <
	    1e-15);
	metric_set(g, 1e20);
	assert_true(rendered_value("t_temp{room=\"a\"} ") == 1e20);
	metric_set(g, -2.5e-7);
	assert_true(fabs(rendered_value("t_temp{room=\"a\"} ") + 2.5e-7) <
	    1e-20);
	metric_set(g, INFINITY);
	expect_render("# HELP t_temp Temperature.\n"
	    "# TYPE t_temp gauge\n"
	    "t_temp{room=\"a\"} +Inf\n");
	metric_set(g, NAN);
	expect_render("# HELP t_temp Temperature.\n"
	    "# TYPE t_temp gauge\n"
	    "t_temp{room=\"a\"} NaN\n");
}

static void
test_reregister_same_series(void **state)
{
	struct metric	*a, *b, *other;

	a = metrics_counter("t_restarts_total", "Restarts.", "w=\"config\"");
	metric_add(a, 5);
	/* A restarted worker registers again: same slot, value kept. */
	b = metrics_counter("t_restarts_total", "Other help.", "w=\"config\"");
	assert_ptr_equal(a, b);
	assert_true(metric_get(b) == 5);
	metric_inc(b);
	assert_true(metric_get(a) == 6);
	other = metrics_counter("t_restarts_total", "Restarts.",
	    "w=\"events\"");
	assert_non_null(other);
	assert_ptr_not_equal(other, a);
	assert_true(metric_get(other) == 0);
	assert_int_equal(metrics_count(), 2);
	/* The first help text stays; HELP and TYPE once per family. */
	expect_render("# HELP t_restarts_total Restarts.\n"
	    "# TYPE t_restarts_total counter\n"
	    "t_restarts_total{w=\"config\"} 6\n"
	    "t_restarts_total{w=\"events\"} 0\n");
}

static void
test_type_clash(void **state)
{
	static const double	b[] = { 1 };

	assert_non_null(metrics_counter("t_x", "X.", NULL));
	assert_null(metrics_gauge("t_x", "X.", NULL));
	assert_null(metrics_gauge("t_x", "X.", "a=\"b\""));
	assert_null(metrics_histogram("t_x", "X.", NULL, b, 1));
	assert_non_null(metrics_gauge("t_y", "Y.", NULL));
	assert_null(metrics_counter("t_y", "Y.", NULL));
	assert_int_equal(metrics_count(), 2);
}

static void
test_invalid_names(void **state)
{
	static const char *const bad[] = { "", "1abc", "a-b", "a b", "a.b",
	    "é", "a{b}" };
	char	long_name[200];
	size_t	i;

	for (i = 0; i < NELEM(bad); i++) {
		assert_false(metrics_valid_name(bad[i]));
		assert_null(metrics_counter(bad[i], "h", NULL));
	}
	assert_false(metrics_valid_name(NULL));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_null(metrics_counter(long_name, "h", NULL));
	assert_true(metrics_valid_name("a"));
	assert_true(metrics_valid_name("_a:b_9"));
	assert_true(metrics_valid_name("tenantd_http_requests_total"));
	assert_int_equal(metrics_count(), 0);
}

static void
test_invalid_labels(void **state)
{
	static const char *const bad[] = { "a", "a=", "a=b", "a=\"b",
	    "a=\"b\"c=\"d\"", "1a=\"b\"", "a-b=\"c\"",
	    "a=\"b\nc\"", "a=\"b\\", "=\"b\"", "a =\"b\"", ",a=\"b\"" };
	static const char *const good[] = { "", "a=\"\"", "a=\"b\"",
	    "a=\"b\",c_2=\"d e\"", "a=\"q\\\"uote\"", "a=\"back\\\\\"",
	    "_x=\"1\"" };
	size_t			 i;

	for (i = 0; i < NELEM(bad); i++) {
		if (metrics_valid_labels(bad[i]))
			fail_msg("accepted labels '%s'", bad[i]);
		assert_null(metrics_counter("t_c", "h", bad[i]));
	}
	for (i = 0; i < NELEM(good); i++) {
		if (!metrics_valid_labels(good[i]))
			fail_msg("refused labels '%s'", good[i]);
		assert_non_null(metrics_counter("t_c", "h", good[i]));
	}
	/* "" and NULL are the same series. */
	assert_int_equal(metrics_count(), NELEM(good));
	assert_ptr_equal(metrics_counter("t_c", "h", NULL),
	    metrics_counter("t_c", "h", ""));
}

static void
test_histogram(void **state)
{
	static const double	b[] = { 0.25, 0.5, 1 };
	struct metric		*h;

	h = metrics_histogram("t_latency_seconds", "Latency.",
	    "path=\"/x\"", b, NELEM(b));
	assert_non_null(h);
	metric_observe(h, 0.125);
	metric_observe(h, 0.25);	/* le is inclusive */
	metric_observe(h, 0.75);
	metric_observe(h, 7);
	/* Registered again: the same series, counts kept. */
	assert_ptr_equal(metrics_histogram("t_latency_seconds", "Latency.",
	    "path=\"/x\"", b, NELEM(b)), h);
	assert_int_equal(metrics_count(), NELEM(b) + 3);
	expect_render("# HELP t_latency_seconds Latency.\n"
	    "# TYPE t_latency_seconds histogram\n"
	    "t_latency_seconds_bucket{path=\"/x\",le=\"0.25\"} 2\n"
	    "t_latency_seconds_bucket{path=\"/x\",le=\"0.5\"} 2\n"
	    "t_latency_seconds_bucket{path=\"/x\",le=\"1\"} 3\n"
	    "t_latency_seconds_bucket{path=\"/x\",le=\"+Inf\"} 4\n"
	    "t_latency_seconds_sum{path=\"/x\"} 8.125\n"
	    "t_latency_seconds_count{path=\"/x\"} 4\n");
}

static void
test_histogram_no_labels(void **state)
{
	static const double	b[] = { 1, 2, 4 };
	struct metric		*h;

	h = metrics_histogram("t_sizes", "Sizes.", NULL, b, NELEM(b));
	assert_non_null(h);
	metric_observe(h, 3);
	metric_observe(h, 3);
	metric_observe(h, 1);
	expect_render("# HELP t_sizes Sizes.\n"
	    "# TYPE t_sizes histogram\n"
	    "t_sizes_bucket{le=\"1\"} 1\n"
	    "t_sizes_bucket{le=\"2\"} 1\n"
	    "t_sizes_bucket{le=\"4\"} 3\n"
	    "t_sizes_bucket{le=\"+Inf\"} 3\n"
	    "t_sizes_sum 7\n"
	    "t_sizes_count 3\n");
}

static void
test_histogram_refused(void **state)
{
	static const double	down[] = { 1, 0.5 }, same[] = { 1, 1 };
	static const double	ok[] = { 1 };

	assert_null(metrics_histogram("t_h", "h", NULL, down, 2));
	assert_null(metrics_histogram("t_h", "h", NULL, same, 2));
	assert_null(metrics_histogram("t_h", "h", NULL, ok, 0));
	assert_null(metrics_histogram("bad name", "h", NULL, ok, 1));
	assert_null(metrics_histogram("t_h", "h", "bad", ok, 1));
	assert_int_equal(metrics_count(), 0);
	/* Updates accept the NULL a refused registration returns. */
	metric_observe(NULL, 1);
	metric_inc(NULL);
	metric_add(NULL, 1);
	metric_set(NULL, 1);
	assert_true(metric_get(NULL) == 0);
}

static void
test_render_families(void **state)
{
	struct metric	*a1, *b1, *a2;

	/* Series of one family render together, in registration order. */
	a1 = metrics_counter("t_a_total", "A.", "k=\"1\"");
	b1 = metrics_gauge("t_b", "B with \\ and\nnewline.", NULL);
	a2 = metrics_counter("t_a_total", "A.", "k=\"2\"");
	metric_add(a1, 1);
	metric_set(b1, 2);
	metric_add(a2, 3);
	expect_render("# HELP t_a_total A.\n"
	    "# TYPE t_a_total counter\n"
	    "t_a_total{k=\"1\"} 1\n"
	    "t_a_total{k=\"2\"} 3\n"
	    "# HELP t_b B with \\\\ and\\nnewline.\n"
	    "# TYPE t_b gauge\n"
	    "t_b 2\n");
}

static void
test_render_small_buffer(void **state)
{
	static const char	want[] = "# HELP t_n N.\n# TYPE t_n counter\n"
	    "t_n 12345\n";
	char			buf[sizeof(want) + 8];
	size_t			n;

	metric_add(metrics_counter("t_n", "N.", NULL), 12345);
	assert_int_equal(metrics_render(NULL, 0), sizeof(want) - 1);
	/* Too small: the needed size, and nothing written past cap. */
	memset(buf, '#', sizeof(buf));
	n = metrics_render(buf, 10);
	assert_int_equal(n, sizeof(want) - 1);
	assert_int_equal(buf[10], '#');
	memset(buf, '#', sizeof(buf));
	n = metrics_render(buf, sizeof(want) - 2);
	assert_int_equal(n, sizeof(want) - 1);
	assert_int_equal(buf[sizeof(want) - 2], '#');
	/* Exactly enough. */
	n = metrics_render(buf, sizeof(want) - 1);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, n);
	assert_int_equal(buf[n], '#');
}

static void
test_integer_values(void **state)
{
	struct metric	*g = metrics_gauge("t_i", "I.", NULL);
	char		*out;

	metric_set(g, 999999999999999.0);
	out = render();
	assert_non_null(strstr(out, "\nt_i 999999999999999\n"));
	free(out);
	metric_set(g, -0.0);
	out = render();
	assert_non_null(strstr(out, "\nt_i 0\n"));
	free(out);
	metric_set(g, -42);
	out = render();
	assert_non_null(strstr(out, "\nt_i -42\n"));
	free(out);
	metric_set(g, 1e15);
	assert_true(rendered_value("t_i ") == 1e15);
}

static void
test_registry_full(void **state)
{
	static const double	b[] = { 1, 2, 3 };
	char			name[32];
	int			i;

	for (i = 0; i < SERIES_MAX - 2; i++) {
		snprintf(name, sizeof(name), "t_full_%d", i);
		assert_non_null(metrics_counter(name, "f", NULL));
	}
	/* A histogram needs 6 slots; only 2 are left: none are taken. */
	assert_null(metrics_histogram("t_hist", "h", NULL, b, 3));
	assert_int_equal(metrics_count(), SERIES_MAX - 2);
	assert_non_null(metrics_counter("t_last1", "f", NULL));
	assert_non_null(metrics_counter("t_last2", "f", NULL));
	assert_null(metrics_counter("t_one_more", "f", NULL));
	/* Existing series are still found. */
	assert_non_null(metrics_counter("t_full_0", "f", NULL));
	assert_int_equal(metrics_count(), SERIES_MAX);
}

static void
test_status_table(void **state)
{
	struct metrics_status	*st = metrics_status();

	assert_non_null(st);
	assert_int_equal(st->reloads_ok, 0);
	st->workers[WORKER_METRICS].restarts = 3;
	assert_int_equal(metrics_status()->workers[WORKER_METRICS].restarts,
	    3);
}

static void
test_not_initialized(void **state)
{
	assert_null(metrics_status());
	assert_null(metrics_counter("t_a", "a", NULL));
	assert_int_equal(metrics_render(NULL, 0), 0);
	assert_int_equal(metrics_count(), 0);
}

static void
test_shared_across_fork(void **state)
{
	struct metric	*c, *late;
	pid_t		 pid;
	int		 st, i;

	assert_int_equal(metrics_init(SERIES_MAX), 0);
	c = metrics_counter("t_forked_total", "F.", NULL);
	assert_non_null(c);
	if ((pid = fork()) == 0) {
		for (i = 0; i < 1000; i++)
			metric_inc(c);
		/* A series the child registers is seen by the parent. */
		metric_set(metrics_gauge("t_child", "C.", NULL), 7);
		_exit(0);
	}
	assert_true(pid > 0);
	for (i = 0; i < 1000; i++)
		metric_inc(c);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(metric_get(c) == 2000);
	late = metrics_gauge("t_child", "C.", NULL);
	assert_non_null(late);
	assert_true(metric_get(late) == 7);
	assert_int_equal(metrics_count(), 2);
	metrics_fini();
}

static void
test_private_not_shared(void **state)
{
	struct metric	*c = metrics_counter("t_priv_total", "P.", NULL);
	pid_t		 pid;
	int		 st;

	metric_add(c, 5);
	if ((pid = fork()) == 0) {
		metric_add(c, 100);
		_exit(metric_get(c) == 105 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(metric_get(c) == 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gauge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reregister_same_series,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_type_clash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid_labels, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_histogram_no_labels,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_render_families, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_render_small_buffer,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_integer_values, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_registry_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status_table, setup,
		    teardown),
		cmocka_unit_test(test_not_initialized),
		cmocka_unit_test(test_shared_across_fork),
		cmocka_unit_test_setup_teardown(test_private_not_shared,
		    setup, teardown),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
