/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics - a shared-memory registry rendered in the Prometheus text format.
 *
 * Layout: a header (lock, process status table, counts), an array of
 * families (name, help, type, first and last series) and an array of series
 * slots.  A slot holds its rendered line prefix ("name{labels} ") and its
 * value as the bits of a double, updated atomically.  Registration takes a
 * process-shared robust mutex (a worker may die holding it); updates and
 * rendering take no lock: a family or series is linked in only after it is
 * fully written, with release/acquire ordering.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define FAMILY_MAX	512
#define NAME_MAX_LEN	128
#define HELP_MAX_LEN	256
#define PREFIX_MAX	384
#define NONE		UINT32_MAX

struct family {
	char		 name[NAME_MAX_LEN];
	char		 header[2 * NAME_MAX_LEN + 2 * HELP_MAX_LEN + 48];
	uint32_t	 header_len;	/* "# HELP ...\n# TYPE ...\n" */
	int		 type;
	uint32_t	 first;		/* atomic */
	uint32_t	 last;		/* under the lock */
};

struct series {
	uint32_t	 family;
	uint32_t	 next;		/* atomic */
	uint32_t	 nbuckets;	/* histogram head: buckets before +Inf */
	uint32_t	 prefix_len;
	double		 le;		/* histogram bucket bound */
	uint64_t	 value;		/* atomic, bits of a double */
	char		 prefix[PREFIX_MAX];
};

struct region {
	pthread_mutex_t		 lock;
	struct metrics_status	 status;
	uint32_t		 nfamilies;	/* atomic */
	uint32_t		 nseries;	/* atomic */
	uint32_t		 max_series;
	struct family		 families[FAMILY_MAX];
	struct series		 series[];
};

/*
 * The text of each value as last rendered, private to the rendering
 * process: formatting a double costs a microsecond, and most values do
 * not change between two scrapes.
 */
struct value_text {
	uint64_t	 bits;
	uint8_t		 len;
	char		 text[31];
};

static struct region	*reg;
static size_t		 reg_size;
static struct value_text *render_cache;

static int
map_region(size_t max_series, int flags)
{
	pthread_mutexattr_t	a;

	reg_size = sizeof(*reg) + max_series * sizeof(struct series);
	reg = mmap(NULL, reg_size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (reg == MAP_FAILED) {
		reg = NULL;
		return -1;
	}
	reg->max_series = (uint32_t)max_series;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&reg->lock, &a);
	pthread_mutexattr_destroy(&a);
	return 0;
}

/* metrics_init - map the region every process of this instance shares */
int
metrics_init(size_t max_series)
{
	return map_region(max_series, MAP_SHARED | MAP_ANONYMOUS);
}

/* metrics_init_private - a region for one process (tests, tools) */
int
metrics_init_private(size_t max_series)
{
	return map_region(max_series, MAP_PRIVATE | MAP_ANONYMOUS);
}

void
metrics_fini(void)
{
	if (reg != NULL)
		munmap(reg, reg_size);
	reg = NULL;
	free(render_cache);
	render_cache = NULL;
}

struct metrics_status *
metrics_status(void)
{
	return reg != NULL ? &reg->status : NULL;
}

size_t
metrics_count(void)
{
	return reg != NULL ? __atomic_load_n(&reg->nseries, __ATOMIC_ACQUIRE) :
	    0;
}

/* metrics_valid_name - [a-zA-Z_:][a-zA-Z0-9_:]* */
int
metrics_valid_name(const char *s)
{
	const char	*p;

	if (s == NULL || *s == '\0' || strlen(s) >= NAME_MAX_LEN - 16)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    *p == '_' || *p == ':' || (p > s && *p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

/* metrics_valid_labels - name="value"(,name="value")*, values escaped */
int
metrics_valid_labels(const char *s)
{
	const char	*p = s;

	while (*p != '\0') {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    *p == '_'))
			return 0;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_')
			p++;
		if (p[0] != '=' || p[1] != '"')
			return 0;
		for (p += 2; *p != '"'; p++) {
			if (*p == '\0' || *p == '\n')
				return 0;
			if (*p == '\\' && *++p == '\0')
				return 0;
		}
		if (*++p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return 0;
	}
	return 1;
}

static void
lock(void)
{
	if (pthread_mutex_lock(&reg->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&reg->lock);
}

static void
unlock(void)
{
	pthread_mutex_unlock(&reg->lock);
}

static const char *
type_text(int type)
{
	return type == METRIC_COUNTER ? "counter" : type == METRIC_GAUGE ?
	    "gauge" : "histogram";
}

/*
 * make_header - "# HELP name text\n# TYPE name type\n", rendered once at
 * registration rather than at every scrape; help escapes \\ and newline.
 */
static void
make_header(struct family *f, const char *name, const char *help)
{
	size_t	n, i;

	n = (size_t)snprintf(f->header, sizeof(f->header), "# HELP %s ",
	    name);
	for (i = 0; help[i] != '\0' && i < HELP_MAX_LEN; i++) {
		if (help[i] == '\\' || help[i] == '\n') {
			f->header[n++] = '\\';
			f->header[n++] = help[i] == '\n' ? 'n' : '\\';
		} else
			f->header[n++] = help[i];
	}
	n += (size_t)snprintf(f->header + n, sizeof(f->header) - n,
	    "\n# TYPE %s %s\n", name, type_text(f->type));
	f->header_len = (uint32_t)n;
}

/* family_get - find or create a family; NULL on a type clash or no room */
static struct family *
family_get(const char *name, const char *help, int type)
{
	struct family	*f;
	uint32_t	 i, n = reg->nfamilies;

	for (i = 0; i < n; i++) {
		f = &reg->families[i];
		if (strcmp(f->name, name) == 0)
			return f->type == type ? f : NULL;
	}
	if (n == FAMILY_MAX)
		return NULL;
	f = &reg->families[n];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	make_header(f, name, help);
	f->first = f->last = NONE;
	__atomic_store_n(&reg->nfamilies, n + 1, __ATOMIC_RELEASE);
	return f;
}

/* series_find - a series of family f whose prefix is p */
static struct series *
series_find(struct family *f, const char *p)
{
	uint32_t	i;

	for (i = f->first; i != NONE; i = reg->series[i].next)
		if (strcmp(reg->series[i].prefix, p) == 0)
			return &reg->series[i];
	return NULL;
}

/* series_add - fill a free slot and link it at the end of its family */
static struct series *
series_add(struct family *f, const char *prefix, double le)
{
	uint32_t	 i = reg->nseries;
	struct series	*s;

	if (i == reg->max_series)
		return NULL;
	s = &reg->series[i];
	s->family = (uint32_t)(f - reg->families);
	s->next = NONE;
	s->le = le;
	s->value = 0;
	snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
	s->prefix_len = (uint32_t)strlen(s->prefix);
	__atomic_store_n(&reg->nseries, i + 1, __ATOMIC_RELEASE);
	if (f->last == NONE)
		__atomic_store_n(&f->first, i, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&reg->series[f->last].next, i,
		    __ATOMIC_RELEASE);
	f->last = i;
	return s;
}

/* make_prefix - "name{labels} " or "name{labels,le="x"} " */
static int
make_prefix(char *out, size_t cap, const char *name, const char *suffix,
    const char *labels, const char *le)
{
	int	n;
	int	hl = labels != NULL && *labels != '\0';

	if (le != NULL)
		n = snprintf(out, cap, "%s%s{%s%sle=\"%s\"} ", name, suffix,
		    hl ? labels : "", hl ? "," : "", le);
	else if (hl)
		n = snprintf(out, cap, "%s%s{%s} ", name, suffix, labels);
	else
		n = snprintf(out, cap, "%s%s ", name, suffix);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* reg_plain - register a counter or gauge series */
static struct metric *
reg_plain(const char *name, const char *help, const char *labels, int type)
{
	char		 p[PREFIX_MAX];
	struct family	*f;
	struct series	*s = NULL;

	if (reg == NULL || !metrics_valid_name(name) ||
	    (labels != NULL && !metrics_valid_labels(labels)) ||
	    make_prefix(p, sizeof(p), name, "", labels, NULL) == -1)
		return NULL;
	lock();
	if ((f = family_get(name, help, type)) != NULL &&
	    (s = series_find(f, p)) == NULL)
		s = series_add(f, p, 0);
	unlock();
	if (s == NULL)
		log_warnx("metrics: cannot register %s{%s}", name,
		    labels ? labels : "");
	return (struct metric *)s;
}

struct metric *
metrics_counter(const char *name, const char *help, const char *labels)
{
	return reg_plain(name, help, labels, METRIC_COUNTER);
}

struct metric *
metrics_gauge(const char *name, const char *help, const char *labels)
{
	return reg_plain(name, help, labels, METRIC_GAUGE);
}

/* hist_fits - does every line prefix of the histogram fit in a slot? */
static int
hist_fits(const char *name, const char *labels, const double *bounds,
    size_t nb)
{
	char	p[PREFIX_MAX], le[32];
	size_t	i;

	for (i = 0; i <= nb; i++) {
		if (i < nb)
			snprintf(le, sizeof(le), "%.15g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		if (make_prefix(p, sizeof(p), name, "_bucket", labels, le) == -1)
			return 0;
	}
	return make_prefix(p, sizeof(p), name, "_count", labels, NULL) == 0;
}

/* hist_add - the bucket, sum and count slots of one histogram series */
static struct series *
hist_add(struct family *f, const char *name, const char *labels,
    const double *bounds, size_t nb)
{
	char		 p[PREFIX_MAX], le[32];
	struct series	*head = NULL, *s;
	size_t		 i;

	/* All or nothing: a half-added histogram would be found again. */
	if (reg->nseries + nb + 3 > reg->max_series ||
	    !hist_fits(name, labels, bounds, nb))
		return NULL;
	for (i = 0; i <= nb; i++) {
		if (i < nb)
			snprintf(le, sizeof(le), "%.15g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		if (make_prefix(p, sizeof(p), name, "_bucket", labels, le) == -1)
			return NULL;
		s = series_add(f, p, i < nb ? bounds[i] : INFINITY);
		if (head == NULL)
			head = s;
	}
	if (make_prefix(p, sizeof(p), name, "_sum", labels, NULL) == -1)
		return NULL;
	series_add(f, p, 0);
	make_prefix(p, sizeof(p), name, "_count", labels, NULL);
	series_add(f, p, 0);
	head->nbuckets = (uint32_t)nb;
	return head;
}

/* metrics_histogram - register a histogram with ascending bounds */
struct metric *
metrics_histogram(const char *name, const char *help, const char *labels,
    const double *bounds, size_t nb)
{
	char		 p[PREFIX_MAX], le[32];
	struct family	*f;
	struct series	*s = NULL;
	size_t		 i;

	for (i = 1; i < nb; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return NULL;
	if (reg == NULL || nb == 0 || !metrics_valid_name(name) ||
	    (labels != NULL && !metrics_valid_labels(labels)))
		return NULL;
	snprintf(le, sizeof(le), "%.15g", bounds[0]);
	if (make_prefix(p, sizeof(p), name, "_bucket", labels, le) == -1)
		return NULL;
	lock();
	if ((f = family_get(name, help, METRIC_HISTOGRAM)) != NULL &&
	    (s = series_find(f, p)) == NULL)
		s = hist_add(f, name, labels, bounds, nb);
	unlock();
	return (struct metric *)s;
}

static double
load_value(const struct series *s)
{
	uint64_t	bits = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
	double		d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* add_value - atomic add on a double */
static void
add_value(struct series *s, double v)
{
	uint64_t	old = __atomic_load_n(&s->value, __ATOMIC_RELAXED), nbits;
	double		d;

	do {
		memcpy(&d, &old, sizeof(d));
		d += v;
		memcpy(&nbits, &d, sizeof(d));
	} while (!__atomic_compare_exchange_n(&s->value, &old, nbits, 1,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void
metric_inc(struct metric *m)
{
	if (m != NULL)
		add_value((struct series *)m, 1);
}

void
metric_add(struct metric *m, double v)
{
	if (m != NULL)
		add_value((struct series *)m, v);
}

void
metric_follow(struct metric_follower *f, uint64_t total)
{
	metric_add(f->m, (double)(total - f->seen));
	f->seen = total;
}

void
metric_set(struct metric *m, double v)
{
	uint64_t	bits;

	if (m == NULL)
		return;
	memcpy(&bits, &v, sizeof(bits));
	__atomic_store_n(&((struct series *)m)->value, bits, __ATOMIC_RELAXED);
}

double
metric_get(const struct metric *m)
{
	return m != NULL ? load_value((const struct series *)m) : 0;
}

/* metric_observe - count v in every bucket whose bound is >= v */
void
metric_observe(struct metric *m, double v)
{
	struct series	*s = (struct series *)m;
	uint32_t	 i, nb;

	if (s == NULL)
		return;
	nb = s->nbuckets;
	for (i = 0; i <= nb; i++)
		if (v <= s[i].le)
			add_value(&s[i], 1);
	add_value(&s[nb + 1], v);
	add_value(&s[nb + 2], 1);
}

/* fmt_value - a sample value; integers fast, the rest with %.15g */
static size_t
fmt_value(char *out, double v)
{
	char		 tmp[24];
	uint64_t	 u;
	size_t		 n = 0, i = 0;

	if (isnan(v))
		return (size_t)sprintf(out, "NaN");
	if (isinf(v))
		return (size_t)sprintf(out, v > 0 ? "+Inf" : "-Inf");
	if (v != floor(v) || fabs(v) >= 1e15)
		return (size_t)sprintf(out, "%.15g", v);
	if (v < 0) {
		out[n++] = '-';
		v = -v;
	}
	u = (uint64_t)v;
	do {
		tmp[i++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	while (i > 0)
		out[n++] = tmp[--i];
	return n;
}

/* put - append to buf while there is room; always count the length */
static void
put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + n <= cap)
		memcpy(buf + *len, s, n);
	*len += n;
}


/* value_text - the text of series j's value, formatted only if changed */
static const struct value_text *
value_text(uint32_t j, const struct series *s)
{
	struct value_text	*vt = &render_cache[j];
	uint64_t		 bits = __atomic_load_n(&s->value,
				    __ATOMIC_RELAXED);
	double			 d;

	if (vt->len == 0 || vt->bits != bits) {
		memcpy(&d, &bits, sizeof(d));
		vt->bits = bits;
		vt->len = (uint8_t)fmt_value(vt->text, d);
		vt->text[vt->len++] = '\n';
	}
	return vt;
}

/* metrics_render - the whole registry as Prometheus text */
size_t
metrics_render(char *buf, size_t cap)
{
	const struct family	*f;
	const struct series	*s;
	const struct value_text	*vt;
	size_t			 len = 0;
	uint32_t		 i, nf, j;

	if (reg == NULL)
		return 0;
	if (render_cache == NULL)
		render_cache = xcalloc(reg->max_series, sizeof(*render_cache));
	nf = __atomic_load_n(&reg->nfamilies, __ATOMIC_ACQUIRE);
	for (i = 0; i < nf; i++) {
		f = &reg->families[i];
		if ((j = __atomic_load_n(&f->first, __ATOMIC_ACQUIRE)) == NONE)
			continue;
		put(buf, cap, &len, f->header, f->header_len);
		for (; j != NONE; j = __atomic_load_n(&s->next,
		    __ATOMIC_ACQUIRE)) {
			s = &reg->series[j];
			put(buf, cap, &len, s->prefix, s->prefix_len);
			vt = value_text(j, s);
			put(buf, cap, &len, vt->text, vt->len);
		}
	}
	return len;
}
