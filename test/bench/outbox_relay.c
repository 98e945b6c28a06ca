/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbox_relay - the outbound worker's outbox relay (workers/outbound/
 * outbox.c) alone, for test/bench/outbox_bench.py: it relays ocs_outbox
 * of postgres.conninfo to kafka.brokers, workers.outbound.kafka_topic, as
 * the worker would, with a private metrics registry.
 *
 *   outbox_relay CONF [N]
 *   outbox_relay -m
 *
 * With N it exits 0 once N reports were delivered and cleared from the
 * table; else it runs until SIGTERM or SIGINT (and stops as the worker
 * does: what is in flight for up to 2 s).  -m prints the SQL of the
 * worker's migration 2 of ocs_outbox (the partitioned table), which the
 * bench runs on the table of migration 1.
 *
 * Built by outbox_bench.py: cc ... outbox_relay.c workers/outbound/outbox.c
 * libcommon.a.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "util.h"

static struct event_base	*base;
static struct metric		*reports;
static double			 want;
static int			 stopping;

/* on_poll - every 10 ms: the stop's end, or the N reports' */
static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	if (stopping && outbox_drained())
		event_base_loopbreak(base);
	if (want > 0 && metric_get(reports) >= want && outbox_drained())
		event_base_loopbreak(base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	stopping = 1;
	outbox_stop();
}

int
main(int argc, char **argv)
{
	struct event	*ev_poll, *ev_term, *ev_int;
	struct timeval	 tv = util_tv(0.01);
	struct conf	*c;
	char		 err[CONF_ERR_MAX];

	if (argc == 2 && strcmp(argv[1], "-m") == 0) {
		printf("%s\n", outbox_migration_2);
		return 0;
	}
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: outbox_relay CONF [N] | -m\n");
		return 2;
	}
	want = argc == 3 ? atof(argv[2]) : 0;
	if ((c = conf_load(argv[1], err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	log_init("outbox", c->log_level, c->log_format);
	if (c->log_file != NULL) {
		int	fd = log_open_file(c->log_file);

		if (fd == -1)
			fatal("%s", c->log_file);
		log_set_fd(fd);
		close(fd);
	}
	signal(SIGPIPE, SIG_IGN);
	if (metrics_init_private(64) == -1)
		fatalx("metrics");
	base = event_base_new();
	if (outbox_start(base, c) == -1)
		return 1;
	reports = metrics_counter("tenantd_outbound_reports_total", "", NULL);
	ev_poll = event_new(base, -1, EV_PERSIST, on_poll, NULL);
	event_add(ev_poll, &tv);
	ev_term = evsignal_new(base, SIGTERM, on_signal, NULL);
	ev_int = evsignal_new(base, SIGINT, on_signal, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_base_dispatch(base);
	outbox_cleanup();
	event_free(ev_poll);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(base);
	conf_free(c);
	metrics_fini();
	return 0;
}
