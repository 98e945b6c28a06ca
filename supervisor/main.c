/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tenantd - command line: run, check or print the configuration.
 *
 *   tenantd -c FILE      run in the foreground
 *   tenantd -t -c FILE   check the configuration (exit 0 or 1)
 *   tenantd -T -c FILE   check it and print it normalized
 *   tenantd -V | -h
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"

#define DEFAULT_CONF	"/etc/tenantd/tenantd.conf"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tenantd [-tTVh] [-c file]\n"
	    "  -c file  configuration file (default %s)\n"
	    "  -t       check the configuration and exit\n"
	    "  -T       check the configuration, print it normalized, exit\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n", DEFAULT_CONF);
}

int
main(int argc, char **argv)
{
	const char	*path = DEFAULT_CONF;
	char		 err[CONF_ERR_MAX], *dump;
	struct conf	*conf;
	int		 ch, test = 0, print = 0;

	while ((ch = getopt(argc, argv, "c:tTVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'T':
			test = print = 1;
			break;
		case 'V':
			printf("tenantd %s\n", TENANTD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((conf = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return test ? 1 : 2;
	}
	if (test) {
		if (print) {
			dump = conf_dump(conf);
			fputs(dump, stdout);
			free(dump);
		}
		fprintf(stderr, "tenantd: configuration %s is valid\n", path);
		conf_free(conf);
		return 0;
	}
	proctitle_init(argc, argv);
	return master_run(conf);
}
