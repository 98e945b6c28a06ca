/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf - load and check the configuration.
 *
 * One schema, the tables below, drives everything: which keys exist in which
 * section, their types and defaults, which are required, how to print them
 * back.  The loader walks the libconfig tree and looks every setting up in
 * the schema, so an unknown key or a wrong type is an error naming the file
 * and line, never silently ignored.  The one exception is the kafka
 * section: a key that is not its own is a librdkafka property (underscores
 * for dots), checked by librdkafka's own configuration functions.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <libconfig.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "tls.h"
#include "util.h"

#define SECRET_MAX	4096

enum ktype {
	K_STRING,	/* char * */
	K_INT,		/* int */
	K_UINT,		/* unsigned */
	K_NUMBER,	/* double, int or float accepted */
	K_BOOL,		/* int */
	K_SIZE,		/* size_t: bytes, or a string with k/m/g suffix */
	K_ADDR,		/* struct conf_addr: "host:port" */
	K_UUID,		/* char *, a UUID */
	K_LEVEL,	/* enum log_level */
	K_FORMAT,	/* enum log_format */
	K_SECRET,	/* char * path; the file is read into .secret_off */
	K_PORT,		/* int, 1..65535 */
	K_ADDRS,	/* struct conf_addrs: a list of "host:port" */
};

struct key {
	const char	*name;
	enum ktype	 type;
	size_t		 off;		/* into the section's struct */
	int		 required;
	const char	*def;		/* default as text, NULL for none */
	size_t		 secret_off;	/* K_SECRET: where the contents go */
};

#define C(field)	offsetof(struct conf, field)
#define W(field)	offsetof(struct conf_worker, field)
#define R(field)	offsetof(struct conf_redis, field)
#define T(field)	offsetof(struct conf_tls, field)
#define END		{ NULL, 0, 0, 0, NULL, 0 }

static const struct key tenant_keys[] = {
	{ "id", K_UUID, C(tenant_id), 1, NULL, 0 },
	{ "name", K_STRING, C(tenant_name), 1, NULL, 0 },
	END
};

static const struct key log_keys[] = {
	{ "level", K_LEVEL, C(log_level), 0, "info", 0 },
	{ "format", K_FORMAT, C(log_format), 0, "logfmt", 0 },
	{ "file", K_STRING, C(log_file), 0, NULL, 0 },
	END
};

static const struct key postgres_keys[] = {
	{ "conninfo", K_STRING, C(pg_conninfo), 1, NULL, 0 },
	{ "password_file", K_SECRET, C(pg_password_file), 0, NULL,
	    C(pg_password) },
	END
};

static const struct key redis_keys[] = {
	{ "host", K_STRING, R(host), 0, "127.0.0.1", 0 },
	{ "port", K_PORT, R(port), 0, "6379", 0 },
	{ "password_file", K_SECRET, R(password_file), 0, NULL, R(password) },
	{ "sentinels", K_ADDRS, R(sentinels), 0, NULL, 0 },
	{ "master_name", K_STRING, R(master_name), 0, NULL, 0 },
	END
};

/* host is required unless sentinels are given: load_redis_check */
static const struct key remote_keys[] = {
	{ "name", K_STRING, R(name), 1, NULL, 0 },
	{ "host", K_STRING, R(host), 0, NULL, 0 },
	{ "port", K_PORT, R(port), 0, "6379", 0 },
	{ "password_file", K_SECRET, R(password_file), 0, NULL, R(password) },
	{ "sentinels", K_ADDRS, R(sentinels), 0, NULL, 0 },
	{ "master_name", K_STRING, R(master_name), 0, NULL, 0 },
	END
};

static const struct key kafka_keys[] = {
	{ "brokers", K_STRING, C(kafka_brokers), 0, NULL, 0 },
	{ "sasl_username", K_STRING, C(kafka_sasl_username), 0, NULL, 0 },
	{ "sasl_password_file", K_SECRET, C(kafka_sasl_password_file), 0,
	    NULL, C(kafka_sasl_password) },
	END
};

/*
 * librdkafka properties that tenantd sets itself: the outbox's ordering
 * and delivery guarantees rest on them (docs/outbound.md), or a key of
 * the section says the same.
 */
static const struct {
	const char	*name;
	const char	*why;
} kafka_reserved[] = {
	{ "bootstrap.servers", "use kafka.brokers" },
	{ "metadata.broker.list", "use kafka.brokers" },
	{ "sasl.username", "use kafka.sasl_username" },
	{ "sasl.password", "use kafka.sasl_password_file" },
	{ "enable.idempotence", "tenantd sets it (true)" },
	{ "enable.gapless.guarantee", "tenantd sets it (true)" },
	{ "acks", "tenantd sets it (all)" },
	{ "request.required.acks", "tenantd sets it (all)" },
	{ "message.timeout.ms", "tenantd sets it (0: retried until "
	    "delivered)" },
	{ "delivery.timeout.ms", "tenantd sets it (0: retried until "
	    "delivered)" },
	{ "statistics.interval.ms", "tenantd sets it (1000: how it tells "
	    "that Kafka is back)" },
};

static const struct key security_keys[] = {
	{ "admin_token_file", K_SECRET, C(admin_token_file), 0, NULL,
	    C(admin_token) },
	{ "user", K_STRING, C(user), 0, NULL, 0 },
	{ "group", K_STRING, C(group), 0, NULL, 0 },
	{ "login_delay_after", K_INT, C(login_delay_after), 0, "5", 0 },
	{ "login_refuse_after", K_INT, C(login_refuse_after), 0, "10", 0 },
	{ "login_address_delay_after", K_INT, C(login_address_delay_after),
	    0, "50", 0 },
	{ "login_address_refuse_after", K_INT,
	    C(login_address_refuse_after), 0, "100", 0 },
	{ "login_window", K_NUMBER, C(login_window), 0, "300.0", 0 },
	{ "login_delay", K_NUMBER, C(login_delay), 0, "1.0", 0 },
	END
};

static const struct key supervisor_keys[] = {
	{ "heartbeat_interval", K_NUMBER, C(heartbeat_interval), 0, "1.0", 0 },
	{ "heartbeat_timeout", K_NUMBER, C(heartbeat_timeout), 0, "10.0", 0 },
	{ "stop_timeout", K_NUMBER, C(stop_timeout), 0, "10.0", 0 },
	{ "restart_delay_max", K_NUMBER, C(restart_delay_max), 0, "30.0", 0 },
	{ "throttle_delay", K_NUMBER, C(throttle_delay), 0, "1.0", 0 },
	END
};

/* Keys every worker section has. */
#define WORKER_KEYS(port)						\
	{ "enabled", K_BOOL, W(enabled), 0, "true", 0 },		\
	{ "listen", K_ADDR, W(listen), 0, port, 0 }

/* Keys of workers that speak the session protocol of DESIGN.md §3. */
#define SESSION_KEYS							\
	{ "max_line", K_SIZE, W(max_line), 0, "65536", 0 },		\
	{ "max_output", K_SIZE, W(max_output), 0, "4194304", 0 },	\
	{ "max_clients", K_UINT, W(max_clients), 0, "1024", 0 },	\
	{ "open_timeout", K_NUMBER, W(open_timeout), 0, "10.0", 0 }

#define HTTP_KEYS							\
	{ "max_body", K_SIZE, W(max_body), 0, "1048576", 0 },		\
	{ "max_clients", K_UINT, W(max_clients), 0, "1024", 0 },	\
	{ "header_timeout", K_NUMBER, W(header_timeout), 0, "10.0", 0 },	\
	{ "body_timeout", K_NUMBER, W(body_timeout), 0, "10.0", 0 }

static const struct key metrics_keys[] = {
	WORKER_KEYS("127.0.0.1:15000"),
	{ "max_clients", K_UINT, W(max_clients), 0, "256", 0 },
	END
};

static const struct key config_keys[] = {
	WORKER_KEYS("0.0.0.0:8888"),
	HTTP_KEYS,
	{ "history", K_UINT, W(history), 0, "100000", 0 },
	{ "token_ttl", K_UINT, W(token_ttl), 0, "3600", 0 },
	{ "max_import", K_SIZE, W(max_import), 0, "268435456", 0 },
	END
};

static const struct key events_keys[] = {
	WORKER_KEYS("0.0.0.0:8000"),
	SESSION_KEYS,
	{ "user_data_max", K_SIZE, W(user_data_max), 0, "16384", 0 },
	{ "logout_grace", K_NUMBER, W(logout_grace), 0, "60.0", 0 },
	{ "max_registrations", K_UINT, W(max_registrations), 0, "1000", 0 },
	END
};

static const struct key stats_keys[] = {
	WORKER_KEYS("0.0.0.0:2060"),
	SESSION_KEYS,
	{ "application", K_STRING, W(application), 0, "StatServer", 0 },
	{ "max_statistics", K_UINT, W(max_statistics), 0, "100000", 0 },
	{ "max_client_statistics", K_UINT, W(max_client_statistics), 0,
	    "50000", 0 },
	{ "max_lag", K_NUMBER, W(max_lag), 0, "5.0", 0 },
	END
};

static const struct key outbound_keys[] = {
	WORKER_KEYS("0.0.0.0:5050"),
	SESSION_KEYS,
	{ "interaction_server", K_ADDR, W(interaction_server), 0,
	    "127.0.0.1:7120", 0 },
	{ "max_body", K_SIZE, W(max_body), 0, "1048576", 0 },
	{ "header_timeout", K_NUMBER, W(header_timeout), 0, "10.0", 0 },
	{ "body_timeout", K_NUMBER, W(body_timeout), 0, "10.0", 0 },
	{ "max_import", K_SIZE, W(max_import), 0, "1073741824", 0 },
	{ "kafka_topic", K_STRING, W(kafka_topic), 0, "tenantd.outbound", 0 },
	{ "lease_time", K_NUMBER, W(lease_time), 0, "60.0", 0 },
	{ "abandon_timeout", K_NUMBER, W(abandon_timeout), 0, "2.0", 0 },
	{ "stats_interval", K_NUMBER, W(stats_interval), 0, "10.0", 0 },
	{ "progressive_ratio", K_NUMBER, W(progressive_ratio), 0, "1.0", 0 },
	{ "predictive_min_agents", K_UINT, W(predictive_min_agents), 0, "3",
	    0 },
	{ "predictive_cut_after", K_INT, W(predictive_cut_after), 0, "15",
	    0 },
	{ "customer_id_field", K_STRING, W(customer_id_field), 0,
	    "customer_id", 0 },
	END
};

static const struct key routing_keys[] = {
	WORKER_KEYS("0.0.0.0:5580"),
	HTTP_KEYS,
	{ "reservation_ttl", K_NUMBER, W(reservation_ttl), 0, "30.0", 0 },
	{ "user_data_max", K_SIZE, W(user_data_max), 0, "65536", 0 },
	END
};

/* workers.<name>.tls, any worker: relative paths are beside the file */
static const struct key tls_keys[] = {
	{ "cert_file", K_STRING, T(cert_file), 1, NULL, 0 },
	{ "key_file", K_STRING, T(key_file), 1, NULL, 0 },
	{ "client_ca_file", K_STRING, T(client_ca_file), 0, NULL, 0 },
	END
};

struct worker_info {
	const char		*name;
	const struct key	*keys;
	int			 built;
};

static const struct worker_info worker_info[WORKER_MAX] = {
	[WORKER_METRICS] = { "metrics", metrics_keys, 1 },
	[WORKER_CONFIG] = { "config", config_keys, 1 },
	[WORKER_EVENTS] = { "events", events_keys, 1 },
	[WORKER_STATS] = { "stats", stats_keys, 1 },
	[WORKER_OUTBOUND] = { "outbound", outbound_keys, 1 },
	[WORKER_ROUTING] = { "routing", routing_keys, 1 },
};

/* Top-level sections whose keys live in struct conf itself. */
struct section {
	const char		*name;
	const struct key	*keys;
	int			 required;
};

static const struct section sections[] = {
	{ "tenant", tenant_keys, 1 },
	{ "log", log_keys, 0 },
	{ "postgres", postgres_keys, 1 },
	{ "kafka", kafka_keys, 0 },
	{ "security", security_keys, 0 },
	{ "supervisor", supervisor_keys, 0 },
};

struct loader {
	const char	*name;		/* file name for messages */
	char		*err;
	size_t		 errlen;
	int		 failed;
};

static int	 set_value(struct loader *, const struct key *, void *,
		    config_setting_t *, const char *);

/* conf_worker_name - the section name of a worker class */
const char *
conf_worker_name(enum worker_class w)
{
	return worker_info[w].name;
}

/* conf_worker_by_name - the class of a worker section name, or -1 */
int
conf_worker_by_name(const char *name)
{
	int	i;

	for (i = 0; i < WORKER_MAX; i++)
		if (strcmp(worker_info[i].name, name) == 0)
			return i;
	return -1;
}

/* conf_worker_built - whether this binary has the worker's code */
int
conf_worker_built(enum worker_class w)
{
	return worker_info[w].built;
}

/* fail - record the first error as "FILE:LINE: reason" */
static int
fail(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	char		 reason[CONF_ERR_MAX];
	const char	*file = ld->name;
	unsigned	 line = 1;
	va_list		 ap;

	if (ld->failed)
		return -1;
	ld->failed = 1;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (s != NULL) {
		if (config_setting_source_file(s) != NULL)
			file = config_setting_source_file(s);
		if (config_setting_source_line(s) > 0)
			line = config_setting_source_line(s);
	}
	snprintf(ld->err, ld->errlen, "%s:%u: %s", file, line, reason);
	return -1;
}

/* conf_addr_parse - "host:port", "[v6addr]:port" or "*:port" */
int
conf_addr_parse(const char *s, struct conf_addr *a)
{
	const char	*colon, *host = s;
	size_t		 hlen;
	char		*end;
	long		 port;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(a->host))
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port < 1 ||
	    port > 65535)
		return -1;
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	if (strcmp(a->host, "*") == 0)
		strcpy(a->host, "0.0.0.0");
	/* A name or an address literal: nothing that needs quoting. */
	for (end = a->host; *end != '\0'; end++)
		if (!isalnum((unsigned char)*end) &&
		    strchr(".-_:%", *end) == NULL)
			return -1;
	a->port = (int)port;
	return 0;
}

int
conf_addr_equal(const struct conf_addr *a, const struct conf_addr *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* same_text - two optional strings that are equal */
static int
same_text(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* conf_redis_equal - the same server (or sentinels), the same password */
int
conf_redis_equal(const struct conf_redis *a, const struct conf_redis *b)
{
	int	i;

	if (!same_text(a->host, b->host) || a->port != b->port ||
	    !same_text(a->password, b->password) ||
	    !same_text(a->master_name, b->master_name) ||
	    a->sentinels.n != b->sentinels.n)
		return 0;
	for (i = 0; i < a->sentinels.n; i++)
		if (!conf_addr_equal(&a->sentinels.a[i], &b->sentinels.a[i]))
			return 0;
	return 1;
}

/* parse_size - bytes, or a number with a k, m or g suffix (powers of 1024) */
static int
parse_size(const char *s, size_t *out)
{
	char			*end;
	unsigned long long	 v;
	unsigned		 shift = 0;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case 'k': shift = 10; end++; break;
	case 'm': shift = 20; end++; break;
	case 'g': shift = 30; end++; break;
	default: break;
	}
	if (v > (SIZE_MAX >> 1) >> shift)
		return -1;
	v <<= shift;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v == 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* is_uuid - 8-4-4-4-12 hexadecimal digits */
static int
is_uuid(const char *s)
{
	int	i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]))
			return 0;
	}
	return s[36] == '\0';
}

static const char *
type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT: case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "something else";
	}
}

/* expect - check a setting's type, naming what was wanted */
static int
expect(struct loader *ld, config_setting_t *s, const char *path, int type,
    const char *want)
{
	int	t = config_setting_type(s);

	if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64))
		return 0;
	return fail(ld, s, "%s must be %s, not %s", path, want, type_name(t));
}

/* set_text - apply a value given as text: a default, or a string setting */
static int
set_text(const struct key *k, void *base, const char *v, const char **why)
{
	char	*p = (char *)base + k->off, *end;
	long	 l;
	double	 d;

	switch (k->type) {
	case K_STRING:
	case K_SECRET:
		free(*(char **)p);
		*(char **)p = xstrdup(v);
		return 0;
	case K_UUID:
		if (!is_uuid(v))
			return *why = "must be a UUID "
			    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", -1;
		free(*(char **)p);
		*(char **)p = xstrdup(v);
		return 0;
	case K_LEVEL:
		if (log_level_parse(v, (enum log_level *)p) == -1)
			return *why = "must be one of error, warn, info, debug",
			    -1;
		return 0;
	case K_FORMAT:
		if (log_format_parse(v, (enum log_format *)p) == -1)
			return *why = "must be \"logfmt\" or \"json\"", -1;
		return 0;
	case K_ADDR:
		if (conf_addr_parse(v, (struct conf_addr *)p) == -1)
			return *why = "is not a valid address "
			    "(want \"host:port\" or \"[v6]:port\", port "
			    "1-65535)", -1;
		return 0;
	case K_SIZE:
		if (parse_size(v, (size_t *)p) == -1)
			return *why = "must be a positive size in bytes "
			    "(suffix k, m or g allowed)", -1;
		return 0;
	case K_BOOL:
		*(int *)p = strcmp(v, "true") == 0;
		return 0;
	case K_NUMBER:
		d = strtod(v, &end);
		*(double *)p = d;
		return 0;
	case K_ADDRS:
		return *why = "has no default", -1;
	case K_INT:
	case K_UINT:
	case K_PORT:
		l = strtol(v, &end, 10);
		if (k->type == K_UINT)
			*(unsigned *)p = (unsigned)l;
		else
			*(int *)p = (int)l;
		return 0;
	}
	return -1;
}

/* set_addrs - a list (or array) of "host:port" strings, 1 to 8 of them */
static int
set_addrs(struct loader *ld, config_setting_t *s, const char *path,
    struct conf_addrs *as)
{
	config_setting_t	*e;
	const char		*v;
	int			 i, t = config_setting_type(s);

	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
		return fail(ld, s, "%s must be a list of \"host:port\" "
		    "strings, as [ \"10.0.0.1:26379\", ... ], not %s", path,
		    type_name(t));
	as->n = 0;
	for (i = 0; (e = config_setting_get_elem(s, (unsigned)i)) != NULL;
	    i++) {
		if (i >= CONF_SENTINEL_MAX)
			return fail(ld, e, "%s: at most %d addresses", path,
			    CONF_SENTINEL_MAX);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail(ld, e, "%s[%d] must be a string "
			    "\"host:port\"", path, i);
		v = config_setting_get_string(e);
		if (conf_addr_parse(v, &as->a[i]) == -1)
			return fail(ld, e, "%s[%d] \"%s\" is not a valid "
			    "address (want \"host:port\" or \"[v6]:port\", "
			    "port 1-65535)", path, i, v);
		as->n++;
	}
	if (as->n == 0)
		return fail(ld, s, "%s must name at least one address", path);
	return 0;
}

/* set_value - apply one setting of the file to its key */
static int
set_value(struct loader *ld, const struct key *k, void *base,
    config_setting_t *s, const char *section)
{
	char		 path[256], num[64];
	const char	*why = NULL;
	char		*p = (char *)base + k->off;
	long long	 ll;
	double		 d;

	snprintf(path, sizeof(path), "%s.%s", section, k->name);
	switch (k->type) {
	case K_STRING: case K_SECRET: case K_UUID: case K_LEVEL: case K_FORMAT:
	case K_ADDR:
		if (expect(ld, s, path, CONFIG_TYPE_STRING, "a string") == -1)
			return -1;
		if (k->type == K_STRING && config_setting_get_string(s)[0] == 0)
			return fail(ld, s, "%s must not be empty", path);
		if (set_text(k, base, config_setting_get_string(s), &why) == -1)
			return fail(ld, s, "%s \"%s\" %s", path,
			    config_setting_get_string(s), why);
		return 0;
	case K_SIZE:
		if (config_setting_type(s) == CONFIG_TYPE_STRING) {
			if (set_text(k, base, config_setting_get_string(s),
			    &why) == -1)
				return fail(ld, s, "%s %s", path, why);
			return 0;
		}
		if (expect(ld, s, path, CONFIG_TYPE_INT,
		    "a size (integer or string like \"64k\")") == -1)
			return -1;
		snprintf(num, sizeof(num), "%lld", config_setting_get_int64(s));
		if (set_text(k, base, num, &why) == -1)
			return fail(ld, s, "%s %s", path, why);
		return 0;
	case K_BOOL:
		if (expect(ld, s, path, CONFIG_TYPE_BOOL, "true or false") == -1)
			return -1;
		*(int *)p = config_setting_get_bool(s);
		return 0;
	case K_NUMBER:
		if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
			d = config_setting_get_float(s);
		else if (expect(ld, s, path, CONFIG_TYPE_INT, "a number") == 0)
			d = (double)config_setting_get_int64(s);
		else
			return -1;
		if (d <= 0 || d > 86400)
			return fail(ld, s, "%s must be between 0 and 86400 "
			    "seconds", path);
		*(double *)p = d;
		return 0;
	case K_INT: case K_UINT: case K_PORT:
		if (expect(ld, s, path, CONFIG_TYPE_INT, "an integer") == -1)
			return -1;
		ll = config_setting_get_int64(s);
		if (k->type == K_PORT && (ll < 1 || ll > 65535))
			return fail(ld, s, "%s must be a port (1-65535)", path);
		if (k->type == K_UINT && (ll < 1 || ll > 1000000000))
			return fail(ld, s, "%s must be a positive integer",
			    path);
		if (k->type == K_UINT)
			*(unsigned *)p = (unsigned)ll;
		else
			*(int *)p = (int)ll;
		return 0;
	case K_ADDRS:
		return set_addrs(ld, s, path, (struct conf_addrs *)p);
	}
	return fail(ld, s, "%s: unsupported key type", path);
}

/* apply_defaults - fill a section's struct with its keys' defaults */
static void
apply_defaults(const struct key *keys, void *base)
{
	const char	*why;

	for (; keys->name != NULL; keys++)
		if (keys->def != NULL)
			set_text(keys, base, keys->def, &why);
}

static const struct key *
find_key(const struct key *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/*
 * resolve - a relative path names a file beside the configuration file,
 * as "admin.token" in /etc/tenantd/tenantd.conf means
 * /etc/tenantd/admin.token; *path is replaced by the absolute one.
 */
static void
resolve(struct loader *ld, char **path)
{
	const char	*slash = strrchr(ld->name, '/');
	char		*dir, *abs, *full;

	if (*path == NULL || (*path)[0] == '/')
		return;
	/* Absolute, so that the normalized text means the same anywhere. */
	dir = slash != NULL ? xasprintf("%.*s", (int)(slash - ld->name),
	    ld->name) : xstrdup(".");
	if ((abs = realpath(dir, NULL)) == NULL)
		abs = xstrdup(dir);
	full = xasprintf("%s/%s", abs, *path);
	free(dir);
	free(abs);
	free(*path);
	*path = full;
}

/* read_secrets - read every *_file key of a section into its companion */
static int
read_secrets(struct loader *ld, config_setting_t *grp, const char *section,
    const struct key *keys, void *base)
{
	const struct key	*k;
	char			*path, *data;
	int			 err = 0;

	for (k = keys; k->name != NULL; k++) {
		if (k->type != K_SECRET ||
		    *(char **)((char *)base + k->off) == NULL)
			continue;
		resolve(ld, (char **)((char *)base + k->off));
		path = *(char **)((char *)base + k->off);
		if ((data = util_read_file(path, SECRET_MAX, &err)) == NULL)
			return fail(ld, config_setting_get_member(grp, k->name),
			    "%s.%s: cannot read secret file %s: %s",
			    section, k->name, path,
			    err == EFBIG ? "larger than 4096 bytes" :
			    strerror(err));
		if (data[0] == '\0') {
			free(data);
			return fail(ld, config_setting_get_member(grp, k->name),
			    "%s.%s: secret file %s is empty",
			    section, k->name, path);
		}
		free(*(char **)((char *)base + k->secret_off));
		*(char **)((char *)base + k->secret_off) = data;
	}
	return 0;
}

/* load_group - check and apply every setting of one group */
static int
load_group(struct loader *ld, config_setting_t *grp, const char *path,
    const struct key *keys, void *base, const char *skip)
{
	const struct key	*k;
	config_setting_t	*s;
	int			 i;

	if (expect(ld, grp, path, CONFIG_TYPE_GROUP, "a group { ... }") == -1)
		return -1;
	for (i = 0; (s = config_setting_get_elem(grp, (unsigned)i)) != NULL;
	    i++) {
		if (skip != NULL && strcmp(config_setting_name(s), skip) == 0)
			continue;
		if ((k = find_key(keys, config_setting_name(s))) == NULL)
			return fail(ld, s, "unknown key %s.%s", path,
			    config_setting_name(s));
		if (set_value(ld, k, base, s, path) == -1)
			return -1;
	}
	for (k = keys; k->name != NULL; k++)
		if (k->required && config_setting_get_member(grp, k->name) ==
		    NULL)
			return fail(ld, grp, "missing required value %s.%s",
			    path, k->name);
	return read_secrets(ld, grp, path, keys, base);
}

/* conf_kafka_name - security_protocol -> security.protocol */
int
conf_kafka_name(const char *key, char *name, size_t len)
{
	size_t	i;

	for (i = 0; key[i] != '\0'; i++) {
		if (i + 1 >= len)
			return -1;
		name[i] = key[i] == '_' ? '.' : key[i];
	}
	if (i == 0 || len == 0)
		return -1;
	name[i] = '\0';
	return 0;
}

/* conf_kafka_reserved - why a property may not be set, or NULL */
const char *
conf_kafka_reserved(const char *name)
{
	size_t	i;

	for (i = 0; i < NELEM(kafka_reserved); i++)
		if (strcmp(kafka_reserved[i].name, name) == 0)
			return kafka_reserved[i].why;
	return NULL;
}

/* kafka_text - a property's value as librdkafka takes it, or NULL */
static char *
kafka_text(config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		return xstrdup(config_setting_get_string(s));
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return xasprintf("%lld", config_setting_get_int64(s));
	case CONFIG_TYPE_FLOAT:
		return xasprintf("%g", config_setting_get_float(s));
	case CONFIG_TYPE_BOOL:
		return xstrdup(config_setting_get_bool(s) ? "true" : "false");
	default:
		return NULL;
	}
}

/*
 * load_kafka_prop - any other kafka.* key is a librdkafka property; it is
 * checked by librdkafka itself on a scratch configuration (which starts
 * no thread), so that a typo fails here and not in the worker.
 */
static int
load_kafka_prop(struct loader *ld, struct conf *c, config_setting_t *s,
    rd_kafka_conf_t *scratch)
{
	const char		*key = config_setting_name(s), *why;
	struct conf_kafka_prop	*p;
	char			 name[256], errstr[512], *value;

	if (conf_kafka_name(key, name, sizeof(name)) == -1)
		return fail(ld, s, "kafka.%s: name too long", key);
	if ((why = conf_kafka_reserved(name)) != NULL)
		return fail(ld, s, "kafka.%s (%s) cannot be set: %s", key, name,
		    why);
	if ((value = kafka_text(s)) == NULL)
		return fail(ld, s, "kafka.%s must be a string, a number or a "
		    "boolean, not %s", key, type_name(config_setting_type(s)));
	if (rd_kafka_conf_set(scratch, name, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		free(value);
		return fail(ld, s, "kafka.%s (%s): %s", key, name, errstr);
	}
	c->kafka_props = xrealloc(c->kafka_props, (c->nkafka_props + 1) *
	    sizeof(*c->kafka_props));
	p = &c->kafka_props[c->nkafka_props++];
	p->key = xstrdup(key);
	p->name = xstrdup(name);
	p->value = value;
	return 0;
}

/* load_kafka - the section's own keys, then librdkafka's properties */
static int
load_kafka(struct loader *ld, struct conf *c, config_setting_t *grp)
{
	rd_kafka_conf_t		*scratch;
	const struct key	*k;
	config_setting_t	*s;
	int			 i, rc = 0;

	if (expect(ld, grp, "kafka", CONFIG_TYPE_GROUP, "a group { ... }") ==
	    -1)
		return -1;
	scratch = rd_kafka_conf_new();
	for (i = 0; rc == 0 &&
	    (s = config_setting_get_elem(grp, (unsigned)i)) != NULL; i++) {
		if ((k = find_key(kafka_keys, config_setting_name(s))) != NULL)
			rc = set_value(ld, k, c, s, "kafka");
		else
			rc = load_kafka_prop(ld, c, s, scratch);
	}
	rd_kafka_conf_destroy(scratch);
	if (rc == -1)
		return -1;
	return read_secrets(ld, grp, "kafka", kafka_keys, c);
}

/*
 * load_redis_check - a Redis is either host and port, or sentinels and
 * master_name: a host beside sentinels would be ignored, so it is refused
 * rather than left to mislead.
 */
static int
load_redis_check(struct loader *ld, config_setting_t *grp, const char *path,
    struct conf_redis *r)
{
	config_setting_t	*host = config_setting_get_member(grp, "host");
	config_setting_t	*port = config_setting_get_member(grp, "port");

	if (r->sentinels.n == 0) {
		if (r->master_name != NULL)
			return fail(ld, config_setting_get_member(grp,
			    "master_name"), "%s.master_name needs "
			    "%s.sentinels (the sentinels to ask for it)",
			    path, path);
		if (r->host == NULL)
			return fail(ld, grp, "missing required value %s.host "
			    "(or %s.sentinels and %s.master_name)", path, path,
			    path);
		return 0;
	}
	if (r->master_name == NULL)
		return fail(ld, config_setting_get_member(grp, "sentinels"),
		    "%s.sentinels needs %s.master_name (the name the "
		    "sentinels monitor the master by)", path, path);
	if (host != NULL || port != NULL)
		return fail(ld, host != NULL ? host : port, "%s.%s and "
		    "%s.sentinels exclude each other: the sentinels name the "
		    "master", path, host != NULL ? "host" : "port", path);
	/* the default host means nothing here: no one may connect to it */
	free(r->host);
	r->host = NULL;
	return 0;
}

/* load_redis - the local Redis and the list of remote regions */
static int
load_redis(struct loader *ld, struct conf *c, config_setting_t *grp)
{
	config_setting_t	*list, *r;
	char			 path[64];
	int			 i;

	if (load_group(ld, grp, "redis", redis_keys, &c->redis, "remote") == -1)
		return -1;
	if (load_redis_check(ld, grp, "redis", &c->redis) == -1)
		return -1;
	if ((list = config_setting_get_member(grp, "remote")) == NULL)
		return 0;
	if (expect(ld, list, "redis.remote", CONFIG_TYPE_LIST,
	    "a list ( { name = ...; host = ...; }, ... )") == -1)
		return -1;
	for (i = 0; (r = config_setting_get_elem(list, (unsigned)i)) != NULL;
	    i++) {
		if (i >= CONF_REMOTE_MAX)
			return fail(ld, r, "redis.remote: at most %d remotes",
			    CONF_REMOTE_MAX);
		snprintf(path, sizeof(path), "redis.remote[%d]", i);
		apply_defaults(remote_keys, &c->remotes[i]);
		c->nremotes++;
		if (load_group(ld, r, path, remote_keys, &c->remotes[i],
		    NULL) == -1 ||
		    load_redis_check(ld, r, path, &c->remotes[i]) == -1)
			return -1;
	}
	return 0;
}

/*
 * load_tls - a worker's tls group: its files are loaded now, into the
 * port's context, so that what does not load is said here as file:line
 * (for `tenantd -t`, and for a reload, which then keeps the running
 * configuration).  A disabled worker's files are not read.
 */
static int
load_tls(struct loader *ld, config_setting_t *wgrp, const char *wpath,
    struct conf_worker *w)
{
	config_setting_t	*g = config_setting_get_member(wgrp, "tls");
	struct conf_tls		*t = &w->tls;
	const char		*which;
	char			 path[80], why[TLS_ERR_MAX];

	if (g == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s.tls", wpath);
	if (load_group(ld, g, path, tls_keys, t, NULL) == -1)
		return -1;
	resolve(ld, &t->cert_file);
	resolve(ld, &t->key_file);
	resolve(ld, &t->client_ca_file);
	if (!w->enabled)
		return 0;
	if ((t->ctx = tls_ctx_new(t, &which, why, sizeof(why))) == NULL)
		return fail(ld, config_setting_get_member(g, which), "%s.%s: %s",
		    path, which, why);
	return 0;
}

/* load_workers - one section per worker class */
static int
load_workers(struct loader *ld, struct conf *c, config_setting_t *grp)
{
	config_setting_t	*s;
	char			 path[64];
	int			 i, w, any = 0;

	if (expect(ld, grp, "workers", CONFIG_TYPE_GROUP, "a group") == -1)
		return -1;
	for (i = 0; (s = config_setting_get_elem(grp, (unsigned)i)) != NULL;
	    i++) {
		if ((w = conf_worker_by_name(config_setting_name(s))) == -1)
			return fail(ld, s, "unknown worker class workers.%s "
			    "(known: metrics, config, events, stats, outbound, "
			    "routing)", config_setting_name(s));
		snprintf(path, sizeof(path), "workers.%s", worker_info[w].name);
		c->workers[w].enabled = 1;
		if (load_group(ld, s, path, worker_info[w].keys,
		    &c->workers[w], "tls") == -1 ||
		    load_tls(ld, s, path, &c->workers[w]) == -1)
			return -1;
		if (c->workers[w].enabled && !worker_info[w].built)
			return fail(ld, s, "%s: the %s worker is not built "
			    "into this version of tenantd; set enabled = false "
			    "or remove the section", path, worker_info[w].name);
		any |= c->workers[w].enabled;
	}
	if (!any)
		return fail(ld, grp, "no worker is enabled in workers");
	return 0;
}

/* check_whole - rules that span sections */
static int
check_whole(struct loader *ld, struct conf *c, config_t *cf)
{
	config_setting_t	*root = config_root_setting(cf);
	PQconninfoOption	*opts;
	char			*perr = NULL;
	int			 i, j;

	resolve(ld, &c->log_file);
	i = c->workers[WORKER_OUTBOUND].predictive_cut_after;
	if (i < 0 || i > 3600)
		return fail(ld, config_lookup(cf,
		    "workers.outbound.predictive_cut_after"),
		    "workers.outbound.predictive_cut_after must be between 0 "
		    "(never) and 3600 seconds");
	if (c->workers[WORKER_OUTBOUND].enabled && c->kafka_brokers == NULL)
		return fail(ld, config_setting_get_member(root, "workers"),
		    "missing required value kafka.brokers (the outbound "
		    "worker reports to Kafka)");
	if (c->group != NULL && c->user == NULL)
		return fail(ld, config_setting_get_member(root, "security"),
		    "security.group needs security.user");
	if (c->user != NULL && getpwnam(c->user) == NULL)
		return fail(ld, config_setting_get_member(root, "security"),
		    "security.user %s: no such user", c->user);
	if (c->group != NULL && getgrnam(c->group) == NULL)
		return fail(ld, config_setting_get_member(root, "security"),
		    "security.group %s: no such group", c->group);
	if (c->login_delay_after < 0 || c->login_refuse_after < 0 ||
	    c->login_address_delay_after < 0 ||
	    c->login_address_refuse_after < 0)
		return fail(ld, config_setting_get_member(root, "security"),
		    "security.login_*_after must be 0 (never) or more");
	if (c->login_window < 1 || c->login_window > 86400)
		return fail(ld, config_lookup(cf, "security.login_window"),
		    "security.login_window must be between 1 and 86400 "
		    "seconds");
	if (c->login_delay < 0 || c->login_delay > 30)
		return fail(ld, config_lookup(cf, "security.login_delay"),
		    "security.login_delay must be between 0 and 30 seconds");
	if (c->login_refuse_after > 0 && c->login_delay_after >
	    c->login_refuse_after)
		return fail(ld, config_lookup(cf, "security.login_delay_after"),
		    "security.login_delay_after (%d) must not be above "
		    "security.login_refuse_after (%d)", c->login_delay_after,
		    c->login_refuse_after);
	if (c->login_address_refuse_after > 0 &&
	    c->login_address_delay_after > c->login_address_refuse_after)
		return fail(ld, config_lookup(cf,
		    "security.login_address_delay_after"),
		    "security.login_address_delay_after (%d) must not be "
		    "above security.login_address_refuse_after (%d)",
		    c->login_address_delay_after,
		    c->login_address_refuse_after);
	if (c->heartbeat_interval >= c->heartbeat_timeout)
		return fail(ld, config_setting_get_member(root, "supervisor"),
		    "supervisor.heartbeat_interval (%g s) must be shorter "
		    "than supervisor.heartbeat_timeout (%g s)",
		    c->heartbeat_interval, c->heartbeat_timeout);
	if ((opts = PQconninfoParse(c->pg_conninfo, &perr)) == NULL) {
		fail(ld, config_setting_get_member(root, "postgres"),
		    "postgres.conninfo: %s", perr != NULL ?
		    strtok(perr, "\n") : "does not parse");
		PQfreemem(perr);
		return -1;
	}
	PQconninfoFree(opts);
	for (i = 0; i < WORKER_MAX; i++)
		for (j = i + 1; j < WORKER_MAX; j++)
			if (c->workers[i].enabled && c->workers[j].enabled &&
			    c->workers[i].listen.port ==
			    c->workers[j].listen.port)
				return fail(ld, config_setting_get_member(
				    root, "workers"), "workers.%s and "
				    "workers.%s listen on the same port %d",
				    worker_info[i].name, worker_info[j].name,
				    c->workers[i].listen.port);
	return 0;
}

/* load_root - walk the top level */
static int
load_root(struct loader *ld, struct conf *c, config_t *cf)
{
	config_setting_t	*root = config_root_setting(cf), *s;
	size_t			 j;
	int			 i;

	for (i = 0; (s = config_setting_get_elem(root, (unsigned)i)) != NULL;
	    i++) {
		const char *name = config_setting_name(s);

		for (j = 0; j < NELEM(sections); j++)
			if (strcmp(sections[j].name, name) == 0)
				break;
		if (strcmp(name, "kafka") == 0) {
			if (load_kafka(ld, c, s) == -1)
				return -1;
		} else if (j < NELEM(sections)) {
			if (load_group(ld, s, name, sections[j].keys, c,
			    NULL) == -1)
				return -1;
		} else if (strcmp(name, "redis") == 0) {
			if (load_redis(ld, c, s) == -1)
				return -1;
		} else if (strcmp(name, "workers") == 0) {
			if (load_workers(ld, c, s) == -1)
				return -1;
		} else
			return fail(ld, s, "unknown section %s", name);
	}
	for (j = 0; j < NELEM(sections); j++)
		if (sections[j].required &&
		    config_setting_get_member(root, sections[j].name) == NULL)
			return fail(ld, NULL, "missing required section %s",
			    sections[j].name);
	if (config_setting_get_member(root, "workers") == NULL)
		return fail(ld, NULL, "missing required section workers");
	return check_whole(ld, c, cf);
}

/* conf_new - a configuration holding every default */
static struct conf *
conf_new(void)
{
	struct conf	*c = xcalloc(1, sizeof(*c));
	size_t		 i;

	for (i = 0; i < NELEM(sections); i++)
		apply_defaults(sections[i].keys, c);
	apply_defaults(redis_keys, &c->redis);
	c->redis.name = xstrdup("local");
	for (i = 0; i < WORKER_MAX; i++) {
		apply_defaults(worker_info[i].keys, &c->workers[i]);
		c->workers[i].enabled = 0;
	}
	return c;
}

/* load - common part of conf_load and conf_load_string */
static struct conf *
load(config_t *cf, int ok, const char *name, char *err, size_t errlen)
{
	struct loader	 ld = { name, err, errlen, 0 };
	struct conf	*c;

	if (!ok) {
		snprintf(err, errlen, "%s:%d: %s",
		    config_error_file(cf) ? config_error_file(cf) : name,
		    config_error_line(cf), config_error_type(cf) ==
		    CONFIG_ERR_FILE_IO ? strerror(errno) :
		    config_error_text(cf));
		return NULL;
	}
	c = conf_new();
	c->path = xstrdup(name);
	if (load_root(&ld, c, cf) == -1) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* conf_load - read and check a configuration file */
struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	config_t	 cf;
	struct conf	*c;
	int		 ok;

	config_init(&cf);
	errno = 0;
	ok = config_read_file(&cf, path) == CONFIG_TRUE;
	if (!ok && config_error_type(&cf) == CONFIG_ERR_FILE_IO) {
		snprintf(err, errlen, "%s:0: cannot read the file: %s", path,
		    errno ? strerror(errno) : "I/O error");
		config_destroy(&cf);
		return NULL;
	}
	c = load(&cf, ok, path, err, errlen);
	config_destroy(&cf);
	return c;
}

/* conf_load_string - the same for configuration text */
struct conf *
conf_load_string(const char *text, const char *name, char *err, size_t errlen)
{
	config_t	 cf;
	struct conf	*c;
	int		 ok;

	config_init(&cf);
	ok = config_read_string(&cf, text) == CONFIG_TRUE;
	c = load(&cf, ok, name, err, errlen);
	config_destroy(&cf);
	return c;
}

/* free_keys - free a section's strings */
static void
free_keys(const struct key *keys, void *base)
{
	for (; keys->name != NULL; keys++) {
		switch (keys->type) {
		case K_SECRET:
			free(*(char **)((char *)base + keys->secret_off));
			/* FALLTHROUGH */
		case K_STRING:
		case K_UUID:
			free(*(char **)((char *)base + keys->off));
			break;
		default:
			break;
		}
	}
}

/* conf_free - free a configuration; NULL is fine */
void
conf_free(struct conf *c)
{
	size_t	i;

	if (c == NULL)
		return;
	for (i = 0; i < NELEM(sections); i++)
		free_keys(sections[i].keys, c);
	free_keys(redis_keys, &c->redis);
	free(c->redis.name);
	for (i = 0; i < (size_t)c->nremotes; i++) {
		free_keys(remote_keys, &c->remotes[i]);
	}
	for (i = 0; i < WORKER_MAX; i++) {
		free_keys(worker_info[i].keys, &c->workers[i]);
		free_keys(tls_keys, &c->workers[i].tls);
		tls_ctx_free(c->workers[i].tls.ctx);
	}
	for (i = 0; i < c->nkafka_props; i++) {
		free(c->kafka_props[i].key);
		free(c->kafka_props[i].name);
		free(c->kafka_props[i].value);
	}
	free(c->kafka_props);
	free(c->path);
	free(c);
}

/* quote - a libconfig string literal */
static void
quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* fmt_number - the shortest text that reads back as the same double */
static const char *
fmt_number(char *buf, size_t len, double d)
{
	int	prec;

	for (prec = 6; prec < 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(buf, len, "%.17g", d);
	/* libconfig reads "1" as an integer; keep it a float. */
	if (strpbrk(buf, ".eEn") == NULL)
		strncat(buf, ".0", len - strlen(buf) - 1);
	return buf;
}

/* dump_addrs - a list of addresses as conf_load reads it back */
static void
dump_addrs(FILE *f, const struct conf_addrs *as)
{
	const struct conf_addr	*a;
	int			 i;

	fputs("[ ", f);
	for (i = 0; i < as->n; i++) {
		a = &as->a[i];
		fprintf(f, strchr(a->host, ':') ? "%s\"[%s]:%d\"" :
		    "%s\"%s:%d\"", i > 0 ? ", " : "", a->host, a->port);
	}
	fputs(" ]", f);
}

/* dump_keys - print one section's keys with their current values */
static void
dump_keys(FILE *f, const struct key *keys, const void *base, const char *ind)
{
	const char	*p;
	char		 num[40];

	for (; keys->name != NULL; keys++) {
		p = (const char *)base + keys->off;
		switch (keys->type) {
		case K_STRING: case K_SECRET: case K_UUID:
			if (*(char *const *)p == NULL)
				continue;
			fprintf(f, "%s%s = ", ind, keys->name);
			quote(f, *(char *const *)p);
			break;
		case K_LEVEL:
			fprintf(f, "%s%s = \"%s\"", ind, keys->name,
			    log_level_name(*(const enum log_level *)p));
			break;
		case K_FORMAT:
			fprintf(f, "%s%s = \"%s\"", ind, keys->name,
			    log_format_name(*(const enum log_format *)p));
			break;
		case K_ADDR: {
			const struct conf_addr *a = (const void *)p;

			fprintf(f, strchr(a->host, ':') ? "%s%s = \"[%s]:%d\"" :
			    "%s%s = \"%s:%d\"", ind, keys->name, a->host,
			    a->port);
			break;
		}
		case K_SIZE:
			fprintf(f, "%s%s = %zu", ind, keys->name,
			    *(const size_t *)p);
			break;
		case K_BOOL:
			fprintf(f, "%s%s = %s", ind, keys->name,
			    *(const int *)p ? "true" : "false");
			break;
		case K_NUMBER:
			fprintf(f, "%s%s = %s", ind, keys->name,
			    fmt_number(num, sizeof(num), *(const double *)p));
			break;
		case K_INT: case K_PORT:
			fprintf(f, "%s%s = %d", ind, keys->name,
			    *(const int *)p);
			break;
		case K_UINT:
			fprintf(f, "%s%s = %u", ind, keys->name,
			    *(const unsigned *)p);
			break;
		case K_ADDRS:
			if (((const struct conf_addrs *)p)->n == 0)
				continue;
			fprintf(f, "%s%s = ", ind, keys->name);
			dump_addrs(f, (const struct conf_addrs *)p);
			break;
		}
		fputs(";\n", f);
	}
}

/* dump_redis - a Redis's keys; host and port mean nothing beside sentinels */
static void
dump_redis(FILE *f, const struct key *keys, const struct conf_redis *r,
    const char *ind)
{
	struct key	 some[16];
	size_t		 n = 0;

	for (; keys->name != NULL && n + 1 < NELEM(some); keys++)
		if (r->sentinels.n == 0 || (strcmp(keys->name, "host") != 0 &&
		    strcmp(keys->name, "port") != 0))
			some[n++] = *keys;
	some[n].name = NULL;
	dump_keys(f, some, r, ind);
}

/* dump_kafka_props - librdkafka's properties, as they were written */
static void
dump_kafka_props(FILE *f, const struct conf *c)
{
	size_t	i;

	for (i = 0; i < c->nkafka_props; i++) {
		fprintf(f, "  %s = ", c->kafka_props[i].key);
		quote(f, c->kafka_props[i].value);
		fputs(";\n", f);
	}
}

/* conf_dump - the normalized configuration, loadable by conf_load */
char *
conf_dump(const struct conf *c)
{
	char	*buf = NULL;
	size_t	 len = 0, i;
	int	 w;
	FILE	*f = open_memstream(&buf, &len);

	if (f == NULL)
		fatal("open_memstream");
	for (i = 0; i < NELEM(sections); i++) {
		fprintf(f, "%s = {\n", sections[i].name);
		dump_keys(f, sections[i].keys, c, "  ");
		if (strcmp(sections[i].name, "kafka") == 0)
			dump_kafka_props(f, c);
		fputs("};\n", f);
		if (strcmp(sections[i].name, "postgres") != 0)
			continue;
		fputs("redis = {\n", f);
		dump_redis(f, redis_keys, &c->redis, "  ");
		if (c->nremotes > 0) {
			fputs("  remote = (\n", f);
			for (w = 0; w < c->nremotes; w++) {
				fputs("    {\n", f);
				dump_redis(f, remote_keys, &c->remotes[w],
				    "      ");
				fputs(w + 1 < c->nremotes ? "    },\n" :
				    "    }\n", f);
			}
			fputs("  );\n", f);
		}
		fputs("};\n", f);
	}
	fputs("workers = {\n", f);
	for (w = 0; w < WORKER_MAX; w++) {
		fprintf(f, "  %s = {\n", worker_info[w].name);
		dump_keys(f, worker_info[w].keys, &c->workers[w], "    ");
		if (c->workers[w].tls.cert_file != NULL) {
			fputs("    tls = {\n", f);
			dump_keys(f, tls_keys, &c->workers[w].tls, "      ");
			fputs("    };\n", f);
		}
		fputs("  };\n", f);
	}
	fputs("};\n", f);
	if (fclose(f) != 0)
		fatal("conf_dump");
	return buf;
}
