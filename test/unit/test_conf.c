/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_conf - configuration loading: the shipped conf/tenantd.conf loads;
 * every class of error gives NULL and "FILE:LINE: reason" with the line of
 * the offending setting; secrets are read from their files; defaults are
 * filled; conf_dump output loads back to an equal configuration and dumps
 * to the same text; conf_addr_parse on its own.
 *
 * Test configurations are written to a mkdtemp directory, removed at the end.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#define UUID	"7c9e6679-7425-40de-944b-e07fc1f90ae7"
/* A minimal valid configuration, one section per line (lines 1-3). */
#define TENANT	"tenant = { id = \"" UUID "\"; name = \"t1\"; };\n"
#define PG	"postgres = { conninfo = \"dbname=t1\"; };\n"
#define WORKERS	\
	"workers = { metrics = { listen = \"127.0.0.1:15000\"; }; };\n"
#define BASE	TENANT PG WORKERS

static char	dir[] = "/tmp/test_conf.XXXXXX";
static char	path[PATH_MAX];	/* the configuration under test */
static char	err[CONF_ERR_MAX];

/* tmp - a path inside the temporary directory */
static const char *
tmp(const char *name)
{
	static char	buf[4][PATH_MAX];
	static int	i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* write_file - create a file in the temporary directory */
static const char *
write_file(const char *name, const char *text)
{
	const char	*p = tmp(name);
	FILE		*f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0 || *text == '\0', 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

/* load - write text as the configuration file and load it */
static struct conf *
load(const char *text)
{
	snprintf(path, sizeof(path), "%s", write_file("t.conf", text));
	err[0] = '\0';
	return conf_load(path, err, sizeof(err));
}

/* expect_error - loading text fails with exactly "FILE:line: reason" */
static void
expect_error(const char *text, int line, const char *reason)
{
	char		 want[CONF_ERR_MAX + PATH_MAX];
	struct conf	*c = load(text);

	if (c != NULL)
		fail_msg("loaded, wanted \"%s\"", reason);
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, reason);
	assert_string_equal(err, want);
}

/* expect_error_has - loading fails at line with a reason containing part */
static void
expect_error_has(const char *text, int line, const char *part)
{
	char		 want[PATH_MAX + 32];
	struct conf	*c = load(text);

	if (c != NULL)
		fail_msg("loaded, wanted an error with \"%s\"", part);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    strstr(err + strlen(want), part) == NULL)
		fail_msg("got \"%s\", wanted \"%s...%s...\"", err, want, part);
}

/* load_ok - text loads; fails the test with the error otherwise */
static struct conf *
load_ok(const char *text)
{
	struct conf	*c = load(text);

	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

static int
group_setup(void **state)
{
	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	DIR		*d = opendir(dir);
	struct dirent	*e;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (unlink(tmp(e->d_name)) == -1)
			rmdir(tmp(e->d_name));
	}
	closedir(d);
	return rmdir(dir);
}

/*
 * Loading what ships, defaults and secrets.
 */

/* shipped_path - conf/tenantd.conf from the tree's top, wherever run */
static const char *
shipped_path(void)
{
	static char	p[PATH_MAX + 32];
	char		exe[PATH_MAX], *slash;
	ssize_t		n;

	if (access("conf/tenantd.conf", R_OK) == 0)
		return "conf/tenantd.conf";
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	while ((slash = strrchr(exe, '/')) != NULL && slash != exe) {
		*slash = '\0';
		snprintf(p, sizeof(p), "%s/conf/tenantd.conf", exe);
		if (access(p, R_OK) == 0)
			return p;
	}
	fail_msg("conf/tenantd.conf not found");
	return NULL;
}

/*
 * default_conf_path - a copy of the shipped file in the test directory,
 * beside the admin.token it names (make run and the package create it;
 * a clean checkout has none).
 */
static const char *
default_conf_path(void)
{
	char	*text;
	int	 e;

	if ((text = util_read_file(shipped_path(), 1 << 20, &e)) == NULL)
		fail_msg("cannot read conf/tenantd.conf: %s", strerror(e));
	write_file("shipped.conf", text);
	write_file("admin.token", "shipped-test-token\n");
	free(text);
	return tmp("shipped.conf");
}

static void
test_load_default_file(void **state)
{
	struct conf	*c;
	int		 w;

	c = conf_load(default_conf_path(), err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->path, default_conf_path());
	assert_string_equal(c->tenant_id, UUID);
	assert_string_equal(c->tenant_name, "t100");
	assert_string_equal(c->pg_conninfo,
	    "host=127.0.0.1 port=5432 dbname=t100 user=tenantd");
	assert_string_equal(c->kafka_brokers, "mock");
	assert_string_equal(c->admin_token, "shipped-test-token");
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_true(c->workers[WORKER_METRICS].enabled);
	assert_string_equal(c->workers[WORKER_METRICS].listen.host,
	    "127.0.0.1");
	assert_int_equal(c->workers[WORKER_METRICS].listen.port, 15000);
	for (w = 0; w < WORKER_MAX; w++)
		if (!conf_worker_built((enum worker_class)w))
			assert_false(c->workers[w].enabled);
	conf_free(c);
}

static void
test_defaults(void **state)
{
	struct conf		*c = load_ok(BASE);
	struct conf_worker	*w = c->workers;

	assert_true(c->heartbeat_interval == 1.0);
	assert_true(c->heartbeat_timeout == 10.0);
	assert_true(c->stop_timeout == 10.0);
	assert_true(c->restart_delay_max == 30.0);
	assert_true(c->throttle_delay == 1.0);
	assert_string_equal(c->redis.name, "local");
	assert_string_equal(c->redis.host, "127.0.0.1");
	assert_int_equal(c->redis.port, 6379);
	assert_null(c->redis.password);
	assert_int_equal(c->nremotes, 0);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_int_equal(c->log_format, LOG_FMT_LOGFMT);
	assert_null(c->log_file);
	assert_null(c->pg_password);
	assert_null(c->kafka_brokers);
	assert_null(c->admin_token);
	assert_null(c->user);
	assert_int_equal(w[WORKER_METRICS].max_clients, 256);
	assert_false(w[WORKER_CONFIG].enabled);
	assert_string_equal(w[WORKER_CONFIG].listen.host, "0.0.0.0");
	assert_int_equal(w[WORKER_CONFIG].listen.port, 8888);
	assert_int_equal(w[WORKER_CONFIG].max_body, 1048576);
	assert_true(w[WORKER_CONFIG].header_timeout == 10.0);
	assert_true(w[WORKER_CONFIG].body_timeout == 10.0);
	assert_true(w[WORKER_ROUTING].header_timeout == 10.0);
	assert_int_equal(w[WORKER_EVENTS].listen.port, 8000);
	assert_int_equal(w[WORKER_EVENTS].max_line, 65536);
	assert_int_equal(w[WORKER_EVENTS].max_output, 4194304);
	assert_int_equal(w[WORKER_EVENTS].user_data_max, 16384);
	assert_true(w[WORKER_EVENTS].logout_grace == 60.0);
	assert_true(w[WORKER_STATS].open_timeout == 10.0);
	assert_int_equal(w[WORKER_STATS].listen.port, 2060);
	assert_int_equal(w[WORKER_OUTBOUND].listen.port, 5050);
	assert_string_equal(w[WORKER_OUTBOUND].interaction_server.host,
	    "127.0.0.1");
	assert_int_equal(w[WORKER_OUTBOUND].interaction_server.port, 7120);
	assert_string_equal(w[WORKER_OUTBOUND].kafka_topic,
	    "tenantd.outbound");
	assert_int_equal(w[WORKER_OUTBOUND].predictive_cut_after, 15);
	assert_int_equal(w[WORKER_ROUTING].listen.port, 5580);
	assert_true(w[WORKER_ROUTING].reservation_ttl == 30.0);
	conf_free(c);
}

static void
test_values_applied(void **state)
{
	struct conf	*c = load_ok(TENANT PG WORKERS
	    "log = { level = \"debug\"; format = \"json\"; "
	    "file = \"/var/log/t.log\"; };\n"
	    "supervisor = { heartbeat_interval = 2; stop_timeout = 0.5; };\n"
	    "redis = { host = \"10.0.0.1\"; port = 6380; };\n"
	    "kafka = { brokers = \"k:9092\"; sasl_username = \"u\"; };\n"
	    "security = { user = \"nobody\"; group = \"nogroup\"; };\n");

	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->log_format, LOG_FMT_JSON);
	assert_string_equal(c->log_file, "/var/log/t.log");
	assert_true(c->heartbeat_interval == 2.0);
	assert_true(c->stop_timeout == 0.5);
	assert_true(c->heartbeat_timeout == 10.0);
	assert_string_equal(c->redis.host, "10.0.0.1");
	assert_int_equal(c->redis.port, 6380);
	assert_string_equal(c->kafka_sasl_username, "u");
	assert_string_equal(c->user, "nobody");
	assert_string_equal(c->group, "nogroup");
	conf_free(c);
}

static void
test_sizes(void **state)
{
	struct conf	*c = load_ok(TENANT PG
	    "workers = { metrics = {};\n"
	    "  config = { enabled = false; max_body = \"64k\"; };\n"
	    "  events = { enabled = false; max_line = \"2MB\"; "
	    "max_output = 123; user_data_max = \"1g\"; }; };\n");
	assert_int_equal(c->workers[WORKER_CONFIG].max_body, 65536);
	assert_int_equal(c->workers[WORKER_EVENTS].max_line, 2 << 20);
	assert_int_equal(c->workers[WORKER_EVENTS].max_output, 123);
	assert_int_equal(c->workers[WORKER_EVENTS].user_data_max, 1 << 30);
	conf_free(c);
}

static void
test_secrets(void **state)
{
	char		 text[2048];
	struct conf	*c;

	write_file("pg.pw", "s3cret\n");
	write_file("redis.pw", "r3dis\r\n");
	write_file("admin.tok", "tok\n\n");
	snprintf(text, sizeof(text), TENANT WORKERS
	    "postgres = { conninfo = \"dbname=x\"; password_file = \"%s\"; };\n"
	    "redis = { password_file = \"%s\"; };\n"
	    "security = { admin_token_file = \"%s\"; };\n",
	    tmp("pg.pw"), tmp("redis.pw"), tmp("admin.tok"));
	c = load_ok(text);
	assert_string_equal(c->pg_password_file, tmp("pg.pw"));
	assert_string_equal(c->pg_password, "s3cret");
	assert_string_equal(c->redis.password, "r3dis");
	assert_string_equal(c->admin_token, "tok");
	conf_free(c);
}

/*
 * Errors, each with its line.
 */

static void
test_err_missing_file(void **state)
{
	char		want[PATH_MAX + 64];
	struct conf	*c;

	c = conf_load(tmp("nonexistent.conf"), err, sizeof(err));
	assert_null(c);
	snprintf(want, sizeof(want), "%s:0: cannot read the file: "
	    "No such file or directory", tmp("nonexistent.conf"));
	assert_string_equal(err, want);
}

static void
test_err_unknown_section(void **state)
{
	expect_error(BASE "\n\nbogus = { a = 1; };\n", 6,
	    "unknown section bogus");
	expect_error(TENANT "tenants = 1;\n" PG WORKERS, 2,
	    "unknown section tenants");
}

static void
test_err_unknown_key(void **state)
{
	expect_error(TENANT "postgres = {\n  conninfo = \"dbname=x\";\n"
	    "  hots = \"y\";\n};\n" WORKERS, 4, "unknown key postgres.hots");
	expect_error(TENANT PG "workers = {\n  metrics = {\n"
	    "    listen = \"127.0.0.1:1\";\n    max_body = 5;\n  };\n};\n", 6,
	    "unknown key workers.metrics.max_body");
	expect_error(BASE "redis = {\n  remote = (\n    { name = \"a\";\n"
	    "      host = \"h\"; colour = 1; }\n  );\n};\n", 7,
	    "unknown key redis.remote[0].colour");
	expect_error(BASE "supervisor = { heartbeat = 1.0; };\n", 4,
	    "unknown key supervisor.heartbeat");
}

static void
test_err_unknown_worker(void **state)
{
	expect_error_has(TENANT PG "workers = {\n  metrics = {};\n"
	    "  mettrics = {};\n};\n", 5,
	    "unknown worker class workers.mettrics");
}

static void
test_err_wrong_type(void **state)
{
	expect_error(BASE "redis = {\n  port = \"6379\";\n};\n", 5,
	    "redis.port must be an integer, not a string");
	expect_error("tenant = { id = \"" UUID "\";\n name = 5; };\n" PG
	    WORKERS, 2, "tenant.name must be a string, not an integer");
	expect_error(BASE "supervisor = {\n\n  heartbeat_interval = "
	    "\"1.0\";\n};\n", 6, "supervisor.heartbeat_interval must be a "
	    "number, not a string");
	expect_error(BASE "log = { level = 3; };\n", 4,
	    "log.level must be a string, not an integer");
	expect_error("tenant = 5;\n" PG WORKERS, 1,
	    "tenant must be a group { ... }, not an integer");
	expect_error(BASE "redis = { remote = { name = \"x\"; }; };\n", 4,
	    "redis.remote must be a list ( { name = ...; host = ...; }, ... ), "
	    "not a group");
	expect_error_has(TENANT PG "workers = {\n  metrics = {\n"
	    "    enabled = 1;\n  };\n};\n", 5,
	    "enabled must be true or false, not an integer");
	expect_error_has(TENANT PG "workers = { metrics = {\n"
	    "    max_clients = 1.5; }; };\n", 4,
	    "max_clients must be an integer, not a number");
	expect_error_has(TENANT PG "workers = { metrics = {\n"
	    "    listen = 15000; }; };\n", 4,
	    "listen must be a string, not an integer");
	expect_error_has(TENANT PG "workers = { metrics = {};\n"
	    "  config = { enabled = false; max_body = true; }; };\n", 4,
	    "max_body must be a size (integer or string like \"64k\"), "
	    "not a boolean");
	expect_error_has(TENANT PG "workers = { metrics = {};\n"
	    "  config = { enabled = false; max_body = \"12q\"; }; };\n", 4,
	    "max_body must be a positive size in bytes");
}

static void
test_err_ranges(void **state)
{
	expect_error(BASE "redis = { port = 0; };\n", 4,
	    "redis.port must be a port (1-65535)");
	expect_error(BASE "redis = { port = 65536; };\n", 4,
	    "redis.port must be a port (1-65535)");
	expect_error(BASE "supervisor = { stop_timeout = 0; };\n", 4,
	    "supervisor.stop_timeout must be between 0 and 86400 seconds");
	expect_error(BASE "supervisor = { stop_timeout = 86401.0; };\n", 4,
	    "supervisor.stop_timeout must be between 0 and 86400 seconds");
	expect_error_has(TENANT PG "workers = { metrics = {\n"
	    "    max_clients = 0; }; };\n", 4,
	    "max_clients must be a positive integer");
	/* 0 is "never cut"; negative and past an hour are refused */
	expect_error_has(TENANT PG "workers = { outbound = { enabled = false;\n"
	    "    predictive_cut_after = -1; };\n  metrics = { listen = "
	    "\"127.0.0.1:15000\"; }; };\n", 4,
	    "predictive_cut_after must be between 0 (never) and 3600");
	expect_error_has(TENANT PG "workers = { outbound = { enabled = false;\n"
	    "    predictive_cut_after = 3601; };\n  metrics = { listen = "
	    "\"127.0.0.1:15000\"; }; };\n", 4,
	    "predictive_cut_after must be between 0 (never) and 3600");
	conf_free(load_ok(TENANT PG "workers = { metrics = { listen = "
	    "\"127.0.0.1:15000\"; };\n  outbound = { enabled = false;\n"
	    "    predictive_cut_after = 0; }; };\n"));
}

/* bad_listen - a metrics listen address that must be refused at line 4 */
static void
bad_listen(const char *addr)
{
	char	text[1024], part[256];

	snprintf(text, sizeof(text), TENANT PG "workers = {\n  metrics = {\n"
	    "    listen = \"%s\";\n  };\n};\n", addr);
	snprintf(part, sizeof(part), "listen \"%s\" is not a valid address "
	    "(want \"host:port\" or \"[v6]:port\", port 1-65535)", addr);
	expect_error_has(text, 5, part);
}

static void
test_err_bad_address(void **state)
{
	bad_listen("nohost");
	bad_listen("1.2.3.4:0");
	bad_listen("1.2.3.4:70000");
	bad_listen("[::1]80");
	bad_listen("::1:80");
	bad_listen(":80");
	bad_listen("");
}

static void
test_err_missing_required(void **state)
{
	expect_error("tenant = {\n  name = \"x\";\n};\n" PG WORKERS, 1,
	    "missing required value tenant.id");
	expect_error(TENANT "\npostgres = {\n  password_file = \"/x\";\n};\n"
	    WORKERS, 3, "missing required value postgres.conninfo");
	expect_error(PG WORKERS, 1, "missing required section tenant");
	expect_error(TENANT WORKERS, 1, "missing required section postgres");
	expect_error(TENANT PG, 1, "missing required section workers");
	expect_error(BASE "redis = { remote = (\n  { name = \"a\"; },\n"
	    "  { host = \"b\"; }\n); };\n", 5,
	    "missing required value redis.remote[0].host (or "
	    "redis.remote[0].sentinels and redis.remote[0].master_name)");
	expect_error(TENANT "postgres = { conninfo = \"\"; };\n" WORKERS, 2,
	    "postgres.conninfo must not be empty");
}

static void
test_err_bad_uuid(void **state)
{
	static const char *const bad[] = {
		"not-a-uuid",
		"7c9e6679-7425-40de-944b-e07fc1f90ae",
		"7c9e6679-7425-40de-944b-e07fc1f90ae77",
		"7c9e6679x7425-40de-944b-e07fc1f90ae7",
		"7c9e6679-7425-40de-944b-e07fc1f90aeg",
		"{7c9e6679-7425-40de-944b-e07fc1f90ae}",
		"",
	};
	char		 text[512], reason[256];
	struct conf	*c;
	size_t		 i;

	for (i = 0; i < NELEM(bad); i++) {
		snprintf(text, sizeof(text), "\ntenant = {\n  name = \"x\";\n"
		    "  id = \"%s\";\n};\n" PG WORKERS, bad[i]);
		snprintf(reason, sizeof(reason), "tenant.id \"%s\" must be a "
		    "UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", bad[i]);
		expect_error(text, 4, reason);
	}
	/* Upper-case hexadecimal is a UUID too. */
	c = load_ok("tenant = { id = \"7C9E6679-7425-40DE-944B-E07FC1F90AE7\";"
	    " name = \"x\"; };\n" PG WORKERS);
	conf_free(c);
}

/* secret_error - postgres.password_file = file fails at line 3 */
static void
secret_error(const char *file, const char *reason_fmt)
{
	char	text[1024], reason[PATH_MAX + 128];

	snprintf(text, sizeof(text), TENANT "postgres = {\n  conninfo = \"dbname=x\";"
	    "\n  password_file = \"%s\";\n};\n" WORKERS, file);
	snprintf(reason, sizeof(reason), reason_fmt, file);
	expect_error(text, 4, reason);
}

static void
test_err_secret_files(void **state)
{
	char	big[5000];

	secret_error(tmp("missing.pw"), "postgres.password_file: cannot read "
	    "secret file %s: No such file or directory");
	secret_error(write_file("empty.pw", ""),
	    "postgres.password_file: secret file %s is empty");
	secret_error(write_file("newline.pw", "\n"),
	    "postgres.password_file: secret file %s is empty");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	secret_error(write_file("big.pw", big), "postgres.password_file: "
	    "cannot read secret file %s: larger than 4096 bytes");
	assert_int_equal(mkdir(tmp("adir"), 0700), 0);
	secret_error(tmp("adir"), "postgres.password_file: cannot read "
	    "secret file %s: Is a directory");
}

/* unbuilt - a worker class this binary lacks, or -1 */
static int
unbuilt(void)
{
	int	w;

	for (w = 0; w < WORKER_MAX; w++)
		if (!conf_worker_built((enum worker_class)w))
			return w;
	return -1;
}

static void
test_err_worker_not_built(void **state)
{
	char		 text[1024], reason[512];
	const char	*name;
	struct conf	*c;
	int		 w = unbuilt();

	if (w == -1)
		skip();
	name = conf_worker_name((enum worker_class)w);
	snprintf(reason, sizeof(reason), "workers.%s: the %s worker is not "
	    "built into this version of tenantd; set enabled = false or "
	    "remove the section", name, name);
	snprintf(text, sizeof(text), TENANT PG "workers = {\n  metrics = {};\n"
	    "  %s = { listen = \"0.0.0.0:1\"; };\n};\n", name);
	expect_error(text, 5, reason);
	snprintf(text, sizeof(text), TENANT PG "workers = {\n  metrics = {};\n"
	    "\n  %s = { enabled = true; };\n};\n", name);
	expect_error(text, 6, reason);
	assert_non_null(strstr(err, "not built"));
	/* Disabled, it loads. */
	snprintf(text, sizeof(text), TENANT PG "workers = {\n  metrics = {};\n"
	    "  %s = { enabled = false; };\n};\n", name);
	c = load_ok(text);
	assert_false(c->workers[w].enabled);
	conf_free(c);
}

static void
test_err_no_worker(void **state)
{
	expect_error(TENANT PG "\nworkers = {\n  metrics = { enabled = false; "
	    "};\n};\n", 4, "no worker is enabled in workers");
	expect_error(TENANT PG "workers = {};\n", 3,
	    "no worker is enabled in workers");
}

/* built_pair - two built worker classes, or skip the test */
static void
built_pair(int *a, int *b)
{
	int	w;

	*a = *b = -1;
	for (w = 0; w < WORKER_MAX; w++) {
		if (!conf_worker_built((enum worker_class)w))
			continue;
		if (*a == -1)
			*a = w;
		else if (*b == -1)
			*b = w;
	}
	if (*b == -1)
		skip();
}

static void
test_err_same_port(void **state)
{
	char	text[1024], reason[256];
	int	a, b;

	built_pair(&a, &b);
	snprintf(text, sizeof(text), TENANT PG "workers = {\n"
	    "  %s = { listen = \"127.0.0.1:9000\"; };\n"
	    "  %s = { listen = \"0.0.0.0:9000\"; };\n};\n",
	    conf_worker_name((enum worker_class)a),
	    conf_worker_name((enum worker_class)b));
	snprintf(reason, sizeof(reason), "workers.%s and workers.%s listen on "
	    "the same port 9000", conf_worker_name((enum worker_class)a),
	    conf_worker_name((enum worker_class)b));
	expect_error(text, 3, reason);
}

static void
test_disabled_worker_same_port(void **state)
{
	struct conf	*c;
	int		 w = unbuilt();

	/* A disabled worker's port does not clash with an enabled one. */
	if (w == -1)
		skip();
	c = load_ok(w == WORKER_CONFIG ? TENANT PG "workers = {\n"
	    "  metrics = { listen = \"127.0.0.1:9000\"; };\n"
	    "  config = { enabled = false; listen = \"0.0.0.0:9000\"; };\n};\n"
	    : TENANT PG "workers = {\n"
	    "  metrics = { listen = \"127.0.0.1:9000\"; };\n"
	    "  routing = { enabled = false; listen = \"0.0.0.0:9000\"; };\n"
	    "};\n");
	conf_free(c);
}

static void
test_err_log(void **state)
{
	expect_error(BASE "log = {\n  level = \"loud\";\n};\n", 5,
	    "log.level \"loud\" must be one of error, warn, info, debug");
	expect_error(BASE "log = { format = \"xml\"; };\n", 4,
	    "log.format \"xml\" must be \"logfmt\" or \"json\"");
}

static void
test_err_syntax(void **state)
{
	expect_error(BASE "oops = ;\n", 4, "syntax error");
	expect_error(TENANT "postgres = {\n  conninfo = 1 2;\n};\n" WORKERS,
	    3, "syntax error");
	/* A group left open: the error is at the end of the file. */
	expect_error(TENANT WORKERS "postgres = {\n  conninfo = \"dbname=x\";\n\n",
	    6, "syntax error");
	expect_error(TENANT TENANT PG WORKERS, 2, "duplicate setting name");
}

static void
test_err_security_group(void **state)
{
	expect_error(BASE "\nsecurity = {\n  group = \"g\";\n};\n", 5,
	    "security.group needs security.user");
}

/* test_err_cross_checks - values each valid alone, wrong together */
static void
test_err_cross_checks(void **state)
{
	expect_error(BASE "\nsecurity = {\n  user = \"no-such-user-x\";\n};\n",
	    5, "security.user no-such-user-x: no such user");
	expect_error(BASE "\nsecurity = {\n  user = \"nobody\";\n"
	    "  group = \"no-such-group-x\";\n};\n", 5,
	    "security.group no-such-group-x: no such group");
	expect_error(BASE "\nsecurity = {\n  login_delay_after = 5;\n"
	    "  login_refuse_after = 3;\n};\n", 6, "security.login_delay_after "
	    "(5) must not be above security.login_refuse_after (3)");
	expect_error(BASE "\nsecurity = {\n  login_address_delay_after = 9;\n"
	    "  login_address_refuse_after = 8;\n};\n", 6,
	    "security.login_address_delay_after (9) must not be above "
	    "security.login_address_refuse_after (8)");
	expect_error(BASE "\nsecurity = {\n  login_window = 0.5;\n};\n", 6,
	    "security.login_window must be between 1 and 86400 seconds");
	expect_error(BASE "\nsecurity = {\n  login_delay = 31;\n};\n", 6,
	    "security.login_delay must be between 0 and 30 seconds");
	expect_error(BASE "\nsecurity = {\n  login_refuse_after = -1;\n};\n",
	    5, "security.login_*_after must be 0 (never) or more");
	expect_error(BASE "supervisor = {\n  heartbeat_interval = 5.0;\n"
	    "  heartbeat_timeout = 5.0;\n};\n", 4,
	    "supervisor.heartbeat_interval (5 s) must be shorter than "
	    "supervisor.heartbeat_timeout (5 s)");
	expect_error(TENANT WORKERS "postgres = {\n  conninfo = \"x\";\n};\n",
	    3, "postgres.conninfo: missing \"=\" after \"x\" in connection "
	    "info string");
}

/* test_relative_paths - secret and log files beside the config file */
static void
test_relative_paths(void **state)
{
	struct conf	*c;
	char		 text[1024], *want, *d;

	write_file("rel.pw", "s3cret\n");
	snprintf(text, sizeof(text), TENANT WORKERS "postgres = { conninfo = "
	    "\"dbname=x\"; password_file = \"rel.pw\"; };\n"
	    "log = { file = \"t.log\"; };\n");
	c = load_ok(text);
	want = xasprintf("%s/rel.pw", dir);
	assert_string_equal(c->pg_password_file, want);
	assert_string_equal(c->pg_password, "s3cret");
	free(want);
	want = xasprintf("%s/t.log", dir);
	assert_string_equal(c->log_file, want);
	free(want);
	/* The dump names absolute paths: loading it anywhere reads them. */
	d = conf_dump(c);
	assert_non_null(strstr(d, dir));
	conf_free(c);
	assert_non_null(c = conf_load_string(d, "elsewhere/x.conf", err,
	    sizeof(err)));
	assert_string_equal(c->pg_password, "s3cret");
	conf_free(c);
	free(d);
}

/*
 * A worker's tls group: checked even when the worker is disabled (its
 * files are not read then), its paths made absolute, dumped and loaded
 * back; an enabled worker's files are read (common/tls.c tells why one
 * does not load; test_tls covers what it says of each).
 */
static void
test_tls_group(void **state)
{
	struct conf	*c;
	char		*d, *want;

	c = load_ok(TENANT PG "workers = { metrics = {}; events = {\n"
	    "  enabled = false;\n  tls = {\n    cert_file = \"no.pem\";\n"
	    "    key_file = \"no.key\";\n  };\n}; };\n");
	want = xasprintf("%s/no.pem", dir);
	assert_string_equal(c->workers[WORKER_EVENTS].tls.cert_file, want);
	free(want);
	assert_null(c->workers[WORKER_EVENTS].tls.client_ca_file);
	assert_null(c->workers[WORKER_EVENTS].tls.ctx);
	assert_null(c->workers[WORKER_METRICS].tls.cert_file);
	d = conf_dump(c);
	assert_non_null(strstr(d, "    tls = {\n      cert_file = \""));
	conf_free(c);
	assert_non_null(c = conf_load_string(d, "elsewhere/x.conf", err,
	    sizeof(err)));
	assert_non_null(strstr(c->workers[WORKER_EVENTS].tls.key_file,
	    "/no.key"));
	conf_free(c);
	free(d);

	expect_error(TENANT PG "workers = { metrics = {\n  tls = {\n"
	    "    cert_file = \"c.pem\";\n  };\n}; };\n", 4,
	    "missing required value workers.metrics.tls.key_file");
	expect_error(TENANT PG "workers = { metrics = {\n  tls = {\n"
	    "    ciphers = \"HIGH\";\n  };\n}; };\n", 5,
	    "unknown key workers.metrics.tls.ciphers");
	expect_error(TENANT PG "workers = { metrics = {\n  tls = 1;\n"
	    "}; };\n", 4, "workers.metrics.tls must be a group { ... }, "
	    "not an integer");
	expect_error_has(TENANT PG "workers = { metrics = {\n  tls = {\n"
	    "    cert_file = \"no.pem\";\n    key_file = \"no.key\";\n"
	    "  };\n}; };\n", 5, "workers.metrics.tls.cert_file: cannot read ");
}

static void
test_err_too_many_remotes(void **state)
{
	char	text[4096];
	size_t	n;
	int	i;

	n = (size_t)snprintf(text, sizeof(text), BASE "redis = { remote = (\n");
	for (i = 0; i < CONF_REMOTE_MAX + 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "  { name = \"r%d\"; host = \"h%d\"; }%s\n", i, i,
		    i < CONF_REMOTE_MAX ? "," : "");
	snprintf(text + n, sizeof(text) - n, "); };\n");
	expect_error(text, 5 + CONF_REMOTE_MAX, "redis.remote: at most 8 "
	    "remotes");
}

/* Sentinel mode: sentinels and master_name, loaded, dumped, loaded back. */
static void
test_sentinels(void **state)
{
	struct conf	*c, *c2;
	char		*d, *d2;

	c = load(BASE "redis = {\n  sentinels = [ \"127.0.0.1:26379\", "
	    "\"[::1]:26380\" ];\n  master_name = \"main\";\n"
	    "  remote = ( { name = \"eu\"; sentinels = ( \"10.0.0.9:26379\" "
	    "); master_name = \"eu-main\"; },\n"
	    "    { name = \"us\"; host = \"10.1.0.1\"; } );\n};\n");
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->redis.sentinels.n, 2);
	assert_string_equal(c->redis.sentinels.a[1].host, "::1");
	assert_int_equal(c->redis.sentinels.a[1].port, 26380);
	assert_string_equal(c->redis.master_name, "main");
	assert_null(c->redis.host);	/* nothing to connect to by mistake */
	assert_int_equal(c->remotes[0].sentinels.n, 1);
	assert_string_equal(c->remotes[0].master_name, "eu-main");
	assert_int_equal(c->remotes[1].sentinels.n, 0);
	assert_string_equal(c->remotes[1].host, "10.1.0.1");
	d = conf_dump(c);
	assert_non_null(strstr(d, "sentinels = [ \"127.0.0.1:26379\", "
	    "\"[::1]:26380\" ];"));
	c2 = conf_load_string(d, "dump", err, sizeof(err));
	if (c2 == NULL)
		fail_msg("dump does not load back: %s\n%s", err, d);
	assert_int_equal(conf_redis_equal(&c->redis, &c2->redis), 1);
	assert_int_equal(conf_redis_equal(&c->remotes[0], &c2->remotes[0]), 1);
	assert_int_equal(conf_redis_equal(&c->redis, &c2->remotes[0]), 0);
	d2 = conf_dump(c2);
	assert_string_equal(d, d2);
	free(d);
	free(d2);
	conf_free(c);
	conf_free(c2);
}

/* Sentinel mode: what does not make sense is refused, with the line. */
static void
test_err_sentinels(void **state)
{
	expect_error(BASE "redis = {\n  sentinels = [ \"127.0.0.1:26379\" ];"
	    "\n};\n", 5, "redis.sentinels needs redis.master_name (the name "
	    "the sentinels monitor the master by)");
	expect_error(BASE "redis = {\n  master_name = \"main\";\n};\n", 5,
	    "redis.master_name needs redis.sentinels (the sentinels to ask "
	    "for it)");
	expect_error(BASE "redis = {\n  sentinels = [ \"127.0.0.1:26379\" ];"
	    "\n  master_name = \"m\";\n  host = \"10.0.0.1\";\n};\n", 7,
	    "redis.host and redis.sentinels exclude each other: the "
	    "sentinels name the master");
	expect_error(BASE "redis = {\n  sentinels = [ \"127.0.0.1\" ];\n"
	    "  master_name = \"m\";\n};\n", 5, "redis.sentinels[0] "
	    "\"127.0.0.1\" is not a valid address (want \"host:port\" or "
	    "\"[v6]:port\", port 1-65535)");
	expect_error(BASE "redis = {\n  sentinels = \"127.0.0.1:26379\";\n"
	    "  master_name = \"m\";\n};\n", 5, "redis.sentinels must be a "
	    "list of \"host:port\" strings, as [ \"10.0.0.1:26379\", ... ], "
	    "not a string");
	expect_error(BASE "redis = {\n  sentinels = [ ];\n"
	    "  master_name = \"m\";\n};\n", 5, "redis.sentinels must name at "
	    "least one address");
	expect_error(BASE "redis = { remote = (\n  { name = \"a\"; "
	    "sentinels = [ \"127.0.0.1:1\" ]; port = 7000;\n"
	    "    master_name = \"m\"; }\n); };\n", 5,
	    "redis.remote[0].port and redis.remote[0].sentinels exclude each "
	    "other: the sentinels name the master");
}

static void
test_err_load_string(void **state)
{
	struct conf	*c;

	c = conf_load_string(BASE "bogus = 1;\n", "master", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err, "master:4: unknown section bogus");
	c = conf_load_string(BASE "x = ;\n", "master", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err, "master:4: syntax error");
	c = conf_load_string("", "master", err, sizeof(err));
	assert_null(c);
	assert_string_equal(err, "master:1: missing required section tenant");
}

static void
test_err_truncated_message(void **state)
{
	char		 small[16];
	struct conf	*c;

	/* A short error buffer is filled, terminated, never overrun. */
	memset(small, 'Z', sizeof(small));
	c = conf_load_string(BASE "bogus = 1;\n", "master", small, 12);
	assert_null(c);
	assert_string_equal(small, "master:4: u");
	assert_int_equal(small[12], 'Z');
}

/*
 * conf_dump round trip.
 */

static void
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
redis_eq(const struct conf_redis *a, const struct conf_redis *b)
{
	str_eq(a->name, b->name);
	str_eq(a->host, b->host);
	assert_int_equal(a->port, b->port);
	str_eq(a->password_file, b->password_file);
	str_eq(a->password, b->password);
}

static void
addr_eq(const struct conf_addr *a, const struct conf_addr *b)
{
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->port, b->port);
	assert_true(conf_addr_equal(a, b));
}

static void
worker_eq(const struct conf_worker *a, const struct conf_worker *b)
{
	assert_int_equal(a->enabled, b->enabled);
	addr_eq(&a->listen, &b->listen);
	assert_int_equal(a->max_line, b->max_line);
	assert_int_equal(a->max_output, b->max_output);
	assert_int_equal(a->max_body, b->max_body);
	assert_int_equal(a->max_clients, b->max_clients);
	assert_true(a->open_timeout == b->open_timeout);
	addr_eq(&a->interaction_server, &b->interaction_server);
	str_eq(a->kafka_topic, b->kafka_topic);
	assert_int_equal(a->user_data_max, b->user_data_max);
	assert_true(a->logout_grace == b->logout_grace);
	assert_true(a->reservation_ttl == b->reservation_ttl);
}

/* conf_eq - every field but the path */
static void
conf_eq(const struct conf *a, const struct conf *b)
{
	int	i;

	str_eq(a->tenant_id, b->tenant_id);
	str_eq(a->tenant_name, b->tenant_name);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_format, b->log_format);
	str_eq(a->log_file, b->log_file);
	str_eq(a->pg_conninfo, b->pg_conninfo);
	str_eq(a->pg_password_file, b->pg_password_file);
	str_eq(a->pg_password, b->pg_password);
	redis_eq(&a->redis, &b->redis);
	assert_int_equal(a->nremotes, b->nremotes);
	for (i = 0; i < a->nremotes; i++)
		redis_eq(&a->remotes[i], &b->remotes[i]);
	str_eq(a->kafka_brokers, b->kafka_brokers);
	str_eq(a->kafka_sasl_username, b->kafka_sasl_username);
	str_eq(a->kafka_sasl_password_file, b->kafka_sasl_password_file);
	str_eq(a->kafka_sasl_password, b->kafka_sasl_password);
	assert_int_equal(a->nkafka_props, b->nkafka_props);
	for (i = 0; i < (int)a->nkafka_props; i++) {
		str_eq(a->kafka_props[i].key, b->kafka_props[i].key);
		str_eq(a->kafka_props[i].name, b->kafka_props[i].name);
		str_eq(a->kafka_props[i].value, b->kafka_props[i].value);
	}
	str_eq(a->admin_token_file, b->admin_token_file);
	str_eq(a->admin_token, b->admin_token);
	str_eq(a->user, b->user);
	str_eq(a->group, b->group);
	assert_true(a->heartbeat_interval == b->heartbeat_interval);
	assert_true(a->heartbeat_timeout == b->heartbeat_timeout);
	assert_true(a->stop_timeout == b->stop_timeout);
	assert_true(a->restart_delay_max == b->restart_delay_max);
	assert_true(a->throttle_delay == b->throttle_delay);
	for (i = 0; i < WORKER_MAX; i++)
		worker_eq(&a->workers[i], &b->workers[i]);
}

/* round_trip - dump c, load the dump, compare, dump again: same text */
static void
round_trip(struct conf *c)
{
	struct conf	*c2;
	char		*d1, *d2;

	d1 = conf_dump(c);
	c2 = conf_load_string(d1, "dump", err, sizeof(err));
	if (c2 == NULL)
		fail_msg("the dump does not load: %s\n%s", err, d1);
	assert_string_equal(c2->path, "dump");
	conf_eq(c, c2);
	d2 = conf_dump(c2);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	conf_free(c2);
	conf_free(c);
}

static void
test_dump_default_file(void **state)
{
	struct conf	*c;

	if ((c = conf_load(default_conf_path(), err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	round_trip(c);
}

static void
test_dump_minimal(void **state)
{
	round_trip(load_ok(BASE));
}

static void
test_dump_everything(void **state)
{
	char	text[4096];

	write_file("pg2.pw", "pgpass\n");
	write_file("r2.pw", "remotepass");
	write_file("k.pw", "kafkapass");
	write_file("a.tok", "admintoken");
	snprintf(text, sizeof(text),
	    "tenant = { id = \"" UUID "\"; name = \"q\\\"uo\\\\te\\tx\"; };\n"
	    "log = { level = \"warn\"; format = \"json\"; file = \"/l\"; };\n"
	    "postgres = { conninfo = \"host=/run/pg dbname='x y'\";\n"
	    "  password_file = \"%s\"; };\n"
	    "redis = { host = \"::1\"; port = 7000;\n"
	    "  remote = (\n"
	    "    { name = \"eu-west\"; host = \"10.1.2.3\"; },\n"
	    "    { name = \"us\"; host = \"h2\"; port = 6390;\n"
	    "      password_file = \"%s\"; }\n"
	    "  );\n};\n"
	    "kafka = { brokers = \"a:1,b:2\"; sasl_username = \"ku\";\n"
	    "  sasl_password_file = \"%s\"; security_protocol = \"SSL\";"
	    " retries = 7; };\n"
	    "security = { admin_token_file = \"%s\"; user = \"nobody\";"
	    " group = \"nogroup\"; };\n"
	    "supervisor = { heartbeat_interval = 0.25; heartbeat_timeout = 3;"
	    " stop_timeout = 2.5; restart_delay_max = 120.0;"
	    " throttle_delay = 0.5; };\n"
	    "workers = {\n"
	    "  metrics = { listen = \"[::1]:15001\"; max_clients = 7; };\n"
	    "  config = { enabled = false; listen = \"*:8889\";"
	    " max_body = \"4k\"; };\n"
	    "  events = { enabled = false; max_line = 1000;"
	    " logout_grace = 1.5; };\n"
	    "  outbound = { enabled = false;"
	    " interaction_server = \"[fe80::1]:7121\";"
	    " kafka_topic = \"ob\"; };\n"
	    "  routing = { enabled = false; reservation_ttl = 45; };\n"
	    "};\n", tmp("pg2.pw"), tmp("r2.pw"), tmp("k.pw"), tmp("a.tok"));
	round_trip(load_ok(text));
}

static void
test_dump_content(void **state)
{
	struct conf	*c = load_ok(BASE
	    "redis = { remote = ( { name = \"eu\"; host = \"h\"; } ); };\n");
	char		*d = conf_dump(c);

	/* Defaults are spelled out; secrets themselves never are. */
	assert_non_null(strstr(d, "\n  heartbeat_interval = 1.0;\n"));
	assert_non_null(strstr(d, "\n  port = 6379;\n"));
	assert_non_null(strstr(d, "\n  remote = (\n    {\n      name = \"eu\";"
	    "\n      host = \"h\";\n      port = 6379;\n    }\n  );\n"));
	assert_non_null(strstr(d, "    listen = \"127.0.0.1:15000\";\n"));
	assert_non_null(strstr(d, "    max_clients = 256;\n"));
	assert_non_null(strstr(d, "  routing = {\n    enabled = false;\n"));
	assert_int_equal(c->nremotes, 1);
	assert_string_equal(c->remotes[0].name, "eu");
	assert_int_equal(c->remotes[0].port, 6379);
	free(d);
	round_trip(c);
}

static void
test_dump_secret_not_printed(void **state)
{
	char		 text[1024];
	struct conf	*c;
	char		*d;

	write_file("hidden.pw", "TOPSECRET\n");
	snprintf(text, sizeof(text), TENANT WORKERS "postgres = { conninfo = "
	    "\"dbname=x\"; password_file = \"%s\"; };\n", tmp("hidden.pw"));
	c = load_ok(text);
	d = conf_dump(c);
	assert_null(strstr(d, "TOPSECRET"));
	assert_non_null(strstr(d, tmp("hidden.pw")));
	free(d);
	round_trip(c);
}

/*
 * kafka.*: any key that is not the section's own is a librdkafka property,
 * underscores for dots, checked by librdkafka.
 */
static void
test_kafka_name(void **state)
{
	char	name[32];

	assert_int_equal(conf_kafka_name("security_protocol", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "security.protocol");
	assert_int_equal(conf_kafka_name("ssl_ca_location", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "ssl.ca.location");
	assert_int_equal(conf_kafka_name("linger", name, sizeof(name)), 0);
	assert_string_equal(name, "linger");
	assert_int_equal(conf_kafka_name("", name, sizeof(name)), -1);
	assert_int_equal(conf_kafka_name("abcdef", name, 6), -1);
	assert_int_equal(conf_kafka_name("abcde", name, 6), 0);
	assert_string_equal(name, "abcde");
	assert_non_null(conf_kafka_reserved("enable.idempotence"));
	assert_non_null(conf_kafka_reserved("bootstrap.servers"));
	assert_null(conf_kafka_reserved("security.protocol"));
}

static void
test_kafka_props(void **state)
{
	struct conf	*c = load_ok(BASE
	    "kafka = { brokers = \"k:9092\"; security_protocol = \"SSL\";\n"
	    "  linger_ms = 20; enable_ssl_certificate_verification = false;\n"
	    "  sasl_username = \"u\"; };\n");

	assert_string_equal(c->kafka_brokers, "k:9092");
	assert_string_equal(c->kafka_sasl_username, "u");
	assert_int_equal(c->nkafka_props, 3);
	assert_string_equal(c->kafka_props[0].key, "security_protocol");
	assert_string_equal(c->kafka_props[0].name, "security.protocol");
	assert_string_equal(c->kafka_props[0].value, "SSL");
	assert_string_equal(c->kafka_props[1].name, "linger.ms");
	assert_string_equal(c->kafka_props[1].value, "20");
	assert_string_equal(c->kafka_props[2].name,
	    "enable.ssl.certificate.verification");
	assert_string_equal(c->kafka_props[2].value, "false");
	round_trip(c);
}

static void
test_err_kafka_props(void **state)
{
	expect_error(BASE "kafka = {\n  brokers = \"k:1\";\n"
	    "  no_such_thing = \"x\";\n};\n", 6, "kafka.no_such_thing "
	    "(no.such.thing): No such configuration property: "
	    "\"no.such.thing\"");
	expect_error_has(BASE "kafka = {\n  security_protocol = \"TLS\";\n};\n",
	    5, "kafka.security_protocol (security.protocol): Invalid value");
	expect_error_has(BASE "kafka = {\n  linger_ms = -5;\n};\n", 5,
	    "kafka.linger_ms (linger.ms): ");
	expect_error(BASE "kafka = {\n  enable_idempotence = false;\n};\n", 5,
	    "kafka.enable_idempotence (enable.idempotence) cannot be set: "
	    "tenantd sets it (true)");
	expect_error(BASE "kafka = { bootstrap_servers = \"x:1\"; };\n", 4,
	    "kafka.bootstrap_servers (bootstrap.servers) cannot be set: use "
	    "kafka.brokers");
	expect_error(BASE "kafka = { sasl_password = \"pw\"; };\n", 4,
	    "kafka.sasl_password (sasl.password) cannot be set: use "
	    "kafka.sasl_password_file");
	expect_error(BASE "kafka = {\n  client_id = { a = 1; };\n};\n", 5,
	    "kafka.client_id must be a string, a number or a boolean, "
	    "not a group");
	expect_error(BASE "kafka = {\n  brokers = 5;\n};\n", 5,
	    "kafka.brokers must be a string, not an integer");
}

/*
 * conf_addr_parse and the worker names.
 */

static void
addr_ok(const char *s, const char *host, int port)
{
	struct conf_addr	a;

	memset(&a, 0, sizeof(a));
	if (conf_addr_parse(s, &a) != 0)
		fail_msg("\"%s\" refused", s);
	assert_string_equal(a.host, host);
	assert_int_equal(a.port, port);
}

static void
addr_bad(const char *s)
{
	struct conf_addr	a;

	if (conf_addr_parse(s, &a) != -1)
		fail_msg("\"%s\" accepted", s);
}

static void
test_addr_parse(void **state)
{
	char	longhost[300], host255[256];

	addr_ok("1.2.3.4:80", "1.2.3.4", 80);
	addr_ok("[::1]:8080", "::1", 8080);
	addr_ok("[2001:db8::10]:1", "2001:db8::10", 1);
	addr_ok("*:80", "0.0.0.0", 80);
	addr_ok("localhost:65535", "localhost", 65535);
	addr_ok("db.example.com:5432", "db.example.com", 5432);
	addr_bad("nohost");
	addr_bad("1.2.3.4:0");
	addr_bad("1.2.3.4:70000");
	addr_bad("1.2.3.4:-1");
	addr_bad("1.2.3.4:99999999999999999999");
	addr_bad("[::1]80");
	addr_bad("[::1]");
	addr_bad("[::1]:");
	addr_bad("[]:80");
	addr_bad("[::1:80");
	addr_bad("::1:80");
	addr_bad(":80");
	addr_bad("1.2.3.4:");
	addr_bad("1.2.3.4:80x");
	addr_bad("1.2.3.4:80 ");
	addr_bad("a b:80");
	addr_bad("a/b:80");
	addr_bad("");
	memset(longhost, 'h', 256);
	snprintf(longhost + 256, sizeof(longhost) - 256, ":80");
	addr_bad(longhost);
	/* 255 bytes is the longest host that fits. */
	memset(host255, 'h', 255);
	host255[255] = '\0';
	snprintf(longhost, sizeof(longhost), "%s:80", host255);
	addr_ok(longhost, host255, 80);
}

static void
test_addr_equal(void **state)
{
	struct conf_addr	a, b;

	assert_int_equal(conf_addr_parse("*:80", &a), 0);
	assert_int_equal(conf_addr_parse("0.0.0.0:80", &b), 0);
	assert_true(conf_addr_equal(&a, &b));
	assert_int_equal(conf_addr_parse("0.0.0.0:81", &b), 0);
	assert_false(conf_addr_equal(&a, &b));
	assert_int_equal(conf_addr_parse("[::]:80", &b), 0);
	assert_false(conf_addr_equal(&a, &b));
}

static void
test_worker_names(void **state)
{
	int	w;

	assert_string_equal(conf_worker_name(WORKER_METRICS), "metrics");
	assert_string_equal(conf_worker_name(WORKER_ROUTING), "routing");
	for (w = 0; w < WORKER_MAX; w++)
		assert_int_equal(conf_worker_by_name(
		    conf_worker_name((enum worker_class)w)), w);
	assert_int_equal(conf_worker_by_name("nope"), -1);
	assert_int_equal(conf_worker_by_name(""), -1);
	assert_true(conf_worker_built(WORKER_METRICS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_default_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_applied),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_err_missing_file),
		cmocka_unit_test(test_err_unknown_section),
		cmocka_unit_test(test_err_unknown_key),
		cmocka_unit_test(test_err_unknown_worker),
		cmocka_unit_test(test_err_wrong_type),
		cmocka_unit_test(test_err_ranges),
		cmocka_unit_test(test_err_bad_address),
		cmocka_unit_test(test_err_missing_required),
		cmocka_unit_test(test_err_bad_uuid),
		cmocka_unit_test(test_err_secret_files),
		cmocka_unit_test(test_err_worker_not_built),
		cmocka_unit_test(test_err_no_worker),
		cmocka_unit_test(test_err_same_port),
		cmocka_unit_test(test_err_cross_checks),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_tls_group),
		cmocka_unit_test(test_disabled_worker_same_port),
		cmocka_unit_test(test_err_log),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_err_security_group),
		cmocka_unit_test(test_err_too_many_remotes),
		cmocka_unit_test(test_sentinels),
		cmocka_unit_test(test_err_sentinels),
		cmocka_unit_test(test_err_load_string),
		cmocka_unit_test(test_err_truncated_message),
		cmocka_unit_test(test_dump_default_file),
		cmocka_unit_test(test_dump_minimal),
		cmocka_unit_test(test_dump_everything),
		cmocka_unit_test(test_dump_content),
		cmocka_unit_test(test_dump_secret_not_printed),
		cmocka_unit_test(test_kafka_name),
		cmocka_unit_test(test_kafka_props),
		cmocka_unit_test(test_err_kafka_props),
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_addr_equal),
		cmocka_unit_test(test_worker_names),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
