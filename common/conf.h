/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf - the tenantd configuration: loading a libconfig file, checking every
 * key against one schema (unknown keys, types, addresses, required values,
 * secret files), and printing the normalized form.  A loaded configuration
 * has one owner and is replaced whole on reload.
 */
#ifndef TENANTD_CONF_H
#define TENANTD_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct ssl_ctx_st;

enum worker_class {
	WORKER_METRICS = 0,
	WORKER_CONFIG,
	WORKER_EVENTS,
	WORKER_STATS,
	WORKER_OUTBOUND,
	WORKER_ROUTING,
	WORKER_MAX
};

#define CONF_REMOTE_MAX	8
#define CONF_SENTINEL_MAX 8
#define CONF_ERR_MAX	512

struct conf_addr {
	char		 host[256];	/* numeric IPv4/IPv6 or a name */
	int		 port;
};

/* A list of addresses, such as redis.sentinels. */
struct conf_addrs {
	struct conf_addr a[CONF_SENTINEL_MAX];
	int		 n;
};

/*
 * One Redis: host and port, or (when sentinels.n > 0) whichever server
 * the sentinels name as master_name's master (common/rds.h).
 */
struct conf_redis {
	char		*name;		/* "local", or the remote's region name */
	char		*host;
	int		 port;
	char		*password_file;
	char		*password;	/* read from password_file */
	struct conf_addrs sentinels;
	char		*master_name;
};

/*
 * A librdkafka property from the kafka section: key as written
 * (security_protocol), name as librdkafka knows it (security.protocol),
 * and its value as text.
 */
struct conf_kafka_prop {
	char		*key;
	char		*name;
	char		*value;
};

/*
 * workers.<name>.tls: the port speaks TLS (common/tls.h).  The paths are
 * absolute once loaded, and the context is built from them at load, so
 * that a configuration whose files do not load is refused as a whole.
 */
struct conf_tls {
	char		*cert_file;	/* NULL: no TLS on the port */
	char		*key_file;
	char		*client_ca_file; /* NULL: no client certificate */
	struct ssl_ctx_st *ctx;		/* OpenSSL's SSL_CTX, or NULL */
};

struct conf_worker {
	int		 enabled;	/* section present and not disabled */
	struct conf_addr listen;
	struct conf_tls	 tls;
	/* session and HTTP limits; which apply depends on the class */
	size_t		 max_line;
	size_t		 max_output;
	size_t		 max_body;
	unsigned	 max_clients;
	double		 open_timeout;
	double		 header_timeout;	/* HTTP: a request's head */
	double		 body_timeout;		/* HTTP: grace for its body */
	/* class specific */
	struct conf_addr interaction_server;	/* outbound */
	char		*kafka_topic;			/* outbound */
	double		 lease_time;			/* outbound */
	double		 abandon_timeout;		/* outbound */
	double		 stats_interval;		/* outbound */
	double		 progressive_ratio;		/* outbound */
	unsigned	 predictive_min_agents;		/* outbound */
	int		 predictive_cut_after;		/* outbound, s; 0: never */
	char		*customer_id_field;		/* outbound */
	size_t		 user_data_max;			/* events */
	double		 logout_grace;			/* events */
	unsigned	 max_registrations;		/* events */
	char		*application;			/* stats */
	unsigned	 max_statistics;		/* stats */
	unsigned	 max_client_statistics;		/* stats */
	double		 max_lag;			/* stats */
	double		 reservation_ttl;		/* routing */
	unsigned	 history;			/* config */
	unsigned	 token_ttl;			/* config */
	size_t		 max_import;			/* config */
};

struct conf {
	char		*path;

	char		*tenant_id;
	char		*tenant_name;

	enum log_level	 log_level;
	enum log_format	 log_format;
	char		*log_file;

	char		*pg_conninfo;
	char		*pg_password_file;
	char		*pg_password;

	struct conf_redis redis;
	struct conf_redis remotes[CONF_REMOTE_MAX];
	int		 nremotes;

	char		*kafka_brokers;
	char		*kafka_sasl_username;
	char		*kafka_sasl_password_file;
	char		*kafka_sasl_password;
	struct conf_kafka_prop *kafka_props;	/* every other kafka.* key */
	size_t		 nkafka_props;

	char		*admin_token_file;
	char		*admin_token;
	char		*user;
	char		*group;
	/* login throttling (common/throttle.c); 0: that stage is off */
	int		 login_delay_after;
	int		 login_refuse_after;
	int		 login_address_delay_after;
	int		 login_address_refuse_after;
	double		 login_window;		/* seconds */
	double		 login_delay;		/* seconds */

	double		 heartbeat_interval;
	double		 heartbeat_timeout;
	double		 stop_timeout;
	double		 restart_delay_max;
	double		 throttle_delay;

	struct conf_worker workers[WORKER_MAX];
};

/*
 * Load and check a configuration.  On failure NULL is returned and err holds
 * "FILE:LINE: reason".  conf_load_string does the same for text sent by the
 * master; name is used in messages.
 */
struct conf	*conf_load(const char *path, char *err, size_t errlen);
struct conf	*conf_load_string(const char *text, const char *name,
		    char *err, size_t errlen);
void		 conf_free(struct conf *);
/* The normalized configuration, every default spelled out; malloc'ed. */
char		*conf_dump(const struct conf *);

const char	*conf_worker_name(enum worker_class);
int		 conf_worker_by_name(const char *);
/* Is this worker class built into this binary? */
int		 conf_worker_built(enum worker_class);
/* Parse "host:port" or "[v6]:port"; 0 on success. */
int		 conf_addr_parse(const char *, struct conf_addr *);
int		 conf_addr_equal(const struct conf_addr *, const struct conf_addr *);
/* Do two Redis settings reach the same server alike (name aside)? */
int		 conf_redis_equal(const struct conf_redis *,
		    const struct conf_redis *);
/*
 * The librdkafka name of a kafka.* key: each '_' becomes '.'
 * (libconfig names cannot hold a dot).  0, or -1 when it does not fit.
 */
int		 conf_kafka_name(const char *key, char *name, size_t len);
/* Is this librdkafka property one tenantd sets itself?  Why, or NULL. */
const char	*conf_kafka_reserved(const char *name);

#endif
