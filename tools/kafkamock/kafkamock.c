/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafkamock - librdkafka's mock Kafka cluster as a process, for tests and
 * benchmarks (test/e2e/kafkahelp.py, test/bench/outbox_bench.py).
 *
 *   kafkamock [--brokers N] [--topic T [--partitions P]]
 *
 * Prints the cluster's bootstrap servers on stdout (one line), then reads
 * commands on stdin, one per line, and answers each with one line:
 *   down   every broker disconnects and refuses connections ("ok down")
 *   up     they accept connections again ("ok up")
 * The cluster keeps what it holds through down and up.  It runs until
 * SIGTERM or SIGINT; the end of stdin only ends the commands.
 *
 * It touches nothing but its own loopback ports.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t	 quit;

static void	 usage(void) __attribute__((noreturn));
static rd_kafka_t *holder_new(void);
static int	 command(rd_kafka_mock_cluster_t *, const char *);
static void	 serve(rd_kafka_mock_cluster_t *);

static void
on_signal(int sig)
{
	quit = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: kafkamock [--brokers N] [--topic T "
	    "[--partitions P]]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "topic", required_argument, NULL, 't' },
		{ "partitions", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction	 sa;
	rd_kafka_mock_cluster_t	*mc;
	rd_kafka_t		*rk;
	const char		*topic = NULL;
	int			 ch, brokers = 1, partitions = 4;

	while ((ch = getopt_long(argc, argv, "b:t:p:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b': brokers = atoi(optarg); break;
		case 't': topic = optarg; break;
		case 'p': partitions = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || brokers < 1 || brokers > 64 || partitions < 1)
		usage();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rk = holder_new();
	if ((mc = rd_kafka_mock_cluster_new(rk, brokers)) == NULL) {
		fprintf(stderr, "kafkamock: cannot start the mock cluster\n");
		return 1;
	}
	if (topic != NULL && rd_kafka_mock_topic_create(mc, topic, partitions,
	    brokers < 3 ? brokers : 3) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafkamock: cannot create topic %s\n", topic);
		return 1;
	}
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	serve(mc);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}

/* holder_new - the client instance a mock cluster needs to live in */
static rd_kafka_t *
holder_new(void)
{
	rd_kafka_conf_t	*conf = rd_kafka_conf_new();
	rd_kafka_t	*rk;
	char		 errstr[512];

	/* It never connects anywhere; only its threads serve the mock. */
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr))) == NULL) {
		fprintf(stderr, "kafkamock: %s\n", errstr);
		exit(1);
	}
	return rk;
}

/* command - one line from stdin; its answer on stdout */
static int
command(rd_kafka_mock_cluster_t *mc, const char *line)
{
	rd_kafka_resp_err_t	err;

	if (strcmp(line, "down") == 0)
		err = rd_kafka_mock_broker_set_down(mc, -1);
	else if (strcmp(line, "up") == 0)
		err = rd_kafka_mock_broker_set_up(mc, -1);
	else if (line[0] == '\0')
		return 0;
	else {
		printf("error unknown command %s\n", line);
		return -1;
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		printf("error %s: %s\n", line, rd_kafka_err2str(err));
	else
		printf("ok %s\n", line);
	return 0;
}

/* serve - commands until a signal; stdin's end is not one */
static void
serve(rd_kafka_mock_cluster_t *mc)
{
	struct pollfd	 pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char		 buf[256];

	while (!quit) {
		if (pfd.fd != -1 && poll(&pfd, 1, 200) == 1) {
			if (fgets(buf, sizeof(buf), stdin) == NULL) {
				pfd.fd = -1;
				continue;
			}
			buf[strcspn(buf, "\r\n")] = '\0';
			command(mc, buf);
			fflush(stdout);
		} else if (pfd.fd == -1)
			poll(NULL, 0, 200);
	}
}
