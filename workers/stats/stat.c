/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stat - an accumulator holds the instances in progress that it wants
 * (id, action, start) and totals of the completed ones: one set for a
 * Growing or SinceLogin profile, a ring of buckets of `step` seconds for
 * a Sliding one.
 */
#include <sys/types.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "schema.h"
#include "stat.h"
#include "util.h"

#define BUCKETS_MAX	1440

struct tot {
	double		 count;		/* completed or happened */
	double		 time;
	double		 max;
	double		 per;		/* instances of the type's `per` */
	double		 answered;	/* ServiceFactor */
	double		 within;
	double		 late;		/* abandoned after the threshold */
	int64_t		 epoch;		/* Sliding: which step it holds */
};

struct running {
	uint64_t	 id;
	enum action	 a;
	double		 start;
	double		 c;		/* start, or the period's if later */
};

struct acc {
	struct stype	 t;
	struct profile	 p;
	uint32_t	 wants;		/* actions looked at */
	double		 period;	/* start of the period */
	struct tot	 tot;		/* Growing, SinceLogin */
	struct tot	*b;		/* Sliding */
	size_t		 nb;
	struct running	*run;		/* in progress */
	size_t		 nrun;
	size_t		 runcap;
	struct idmap	 ix;		/* id -> its index in run + 1 */
	double		 sum_c;		/* of run[].c: TotalTime in O(1) */
	double		 max_c;		/* an upper bound of run[].c */
	double		 born;		/* counting since */
};

static const char *const category_names[CAT_COUNT] = {
	"CurrentState", "CurrentNumber", "CurrentMaxTime", "TotalNumber",
	"TotalTime", "AverageTime", "MaxTime", "ServiceFactor",
	"CurrentAgentStatus", "EstimWaitTime",
};

static const char *const object_names[OBJ_COUNT] = {
	"Agent", "Place", "GroupAgents", "GroupPlaces", "Queue",
	"RoutingPoint", "GroupQueues", "Tenant",
};

static const char *
category_name(enum category c)
{
	return (unsigned)c < CAT_COUNT ? category_names[c] : "?";
}

/*
 * object_cfg_kind - the configuration type whose read right lets a
 * principal open statistics of an object kind (an agent is a Person, a
 * queue or routing point a DN); the tenant's are read on the Tenant.
 */
int
object_cfg_kind(enum object_kind k)
{
	static const int	kinds[OBJ_COUNT] = {
		[OBJ_AGENT] = CFG_PERSON, [OBJ_PLACE] = CFG_PLACE,
		[OBJ_AGENT_GROUP] = CFG_AGENT_GROUP,
		[OBJ_PLACE_GROUP] = CFG_PLACE_GROUP, [OBJ_QUEUE] = CFG_DN,
		[OBJ_RP] = CFG_DN, [OBJ_DN_GROUP] = CFG_DN_GROUP,
		[OBJ_TENANT] = CFG_TENANT,
	};

	return (unsigned)k < OBJ_COUNT ? kinds[k] : -1;
}

int
object_kind_by_name(const char *s)
{
	int	i;

	if (strcmp(s, "AgentGroup") == 0)
		return OBJ_AGENT_GROUP;
	if (strcmp(s, "PlaceGroup") == 0)
		return OBJ_PLACE_GROUP;
	if (strcmp(s, "DNGroup") == 0)
		return OBJ_DN_GROUP;
	for (i = 0; i < OBJ_COUNT; i++)
		if (strcmp(object_names[i], s) == 0)
			return i;
	return -1;
}

/* ---- types ---- */

#define A(x)	(1u << (x))

static const struct stype builtins[] = {
	{ "CurrentAgentState", CAT_CURRENT_STATE, 0, -1, 0, "", "", "",
	    OB_AGENTS },
	{ "CurrentNumberReadyAgents", CAT_CURRENT_NUMBER, A(A_READY), -1, 0,
	    "", "", "", OB_AGROUPS },
	{ "CurrentNumberNotReadyAgents", CAT_CURRENT_NUMBER, A(A_NOT_READY) |
	    A(A_ACW), -1, 0, "", "", "", OB_AGROUPS },
	{ "CurrentNumberTalkingAgents", CAT_CURRENT_NUMBER, A(A_TALKING), -1,
	    0, "", "", "", OB_AGROUPS },
	{ "CurrentNumberLoggedInAgents", CAT_CURRENT_NUMBER, A(A_LOGGED_IN),
	    -1, 0, "", "", "", OB_AGROUPS },
	{ "CurrentNumberWaitingCalls", CAT_CURRENT_NUMBER, A(A_WAITING), -1, 0,
	    "", "", "", OB_QUEUES },
	{ "CurrentMaxWaitingTime", CAT_CURRENT_MAX_TIME, A(A_WAITING), -1, 0,
	    "", "", "", OB_QUEUES },
	{ "TotalNumberInboundCalls", CAT_TOTAL_NUMBER, A(A_ENTERED), -1, 0,
	    "", "", "", OB_QUEUES | OB(OBJ_RP) },
	{ "TotalNumberAnsweredCalls", CAT_TOTAL_NUMBER, A(A_ANSWERED), -1, 0,
	    "", "", "", OB_ALL },
	{ "TotalNumberAbandonedCalls", CAT_TOTAL_NUMBER, A(A_ABANDONED), -1,
	    0, "", "", "", OB_QUEUES | OB(OBJ_RP) },
	{ "TotalTalkTime", CAT_TOTAL_TIME, A(A_TALKING), -1, 0, "", "", "",
	    OB_AGENTS | OB_AGROUPS },
	{ "AverageHandlingTime", CAT_AVERAGE_TIME, A(A_INBOUND) | A(A_ACW),
	    A_ANSWERED, 0, "", "", "", OB_AGENTS | OB_AGROUPS },
	{ "AverageSpeedOfAnswer", CAT_AVERAGE_TIME, A(A_ANSWERED), -1, 0, "",
	    "", "", OB_ALL },
	{ "ServiceFactor", CAT_SERVICE_FACTOR, A(A_ANSWERED) | A(A_ABANDONED),
	    -1, 20, "", "", "", OB_QUEUES | OB(OBJ_RP) },
	{ "TotalLoginTime", CAT_TOTAL_TIME, A(A_LOGGED_IN), -1, 0, "", "", "",
	    OB_AGENTS | OB_AGROUPS },
	{ "CurrentAgentStatus", CAT_AGENT_STATUS, 0, -1, 0, "", "", "",
	    OB(OBJ_AGENT) },
	{ "ExpectedWaitTime", CAT_ESTIM_WAIT_TIME, A(A_WAITING),
	    A_DISTRIBUTED, 0, "", "", "", OB_QUEUES | OB(OBJ_RP) },
};

size_t
stype_builtins(const struct stype **v)
{
	*v = builtins;
	return NELEM(builtins);
}

const struct stype *
stype_builtin(const char *name)
{
	size_t	i;

	for (i = 0; i < NELEM(builtins); i++)
		if (strcmp(builtins[i].name, name) == 0)
			return &builtins[i];
	return NULL;
}

/* text - a string value, or a number as text */
static const char *
text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	/* All the digits of an integer: %g would make 12345678 1.23457e+07. */
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%.15g", json_real_value(v));
		return buf;
	}
	return NULL;
}

/* parse_actions - "Ready, NotReady" or ["Ready", "NotReady"] */
static int
parse_actions(const json_t *v, uint32_t *out, char *why, size_t len)
{
	char	 buf[512], *s, *tok, *save;
	size_t	 i;
	int	 a;
	json_t	*e;

	*out = 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if (!json_is_string(e) ||
			    (a = action_by_name(json_string_value(e))) == -1) {
				snprintf(why, len, "actions: %s is not an "
				    "action", json_is_string(e) ?
				    json_string_value(e) : "a non-string");
				return -1;
			}
			*out |= A(a);
		}
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(why, len, "actions: a list of action names");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", json_string_value(v));
	for (s = buf; (tok = strtok_r(s, ", ", &save)) != NULL; s = NULL) {
		if ((a = action_by_name(tok)) == -1) {
			snprintf(why, len, "actions: %s is not an action", tok);
			return -1;
		}
		*out |= A(a);
	}
	return 0;
}

int
stype_parse(const json_t *def, const char *name, struct stype *t,
    char *why, size_t len)
{
	const char	*cat, *per, *filter, *media, *eq;
	char		 b1[32], b2[32];
	const json_t	*th;
	char		*end;
	int		 i;

	memset(t, 0, sizeof(*t));
	t->per = -1;
	t->objects = OB_ALL;
	snprintf(t->name, sizeof(t->name), "%s", name != NULL ? name : "");
	if (!json_is_object(def)) {
		snprintf(why, len, "a statistic is a type's name or an object");
		return -1;
	}
	if ((cat = text(json_object_get(def, "category"), b1,
	    sizeof(b1))) == NULL) {
		snprintf(why, len, "category: required");
		return -1;
	}
	for (i = 0; i < CAT_COUNT; i++)
		if (strcmp(category_names[i], cat) == 0)
			break;
	if (i == CAT_COUNT) {
		snprintf(why, len, "category: %s is not a category", cat);
		return -1;
	}
	t->cat = (enum category)i;
	if (t->cat == CAT_CURRENT_STATE || t->cat == CAT_AGENT_STATUS)
		t->objects = t->cat == CAT_AGENT_STATUS ? OB(OBJ_AGENT) :
		    OB_AGENTS;
	else if (json_object_get(def, "actions") == NULL &&
	    t->cat != CAT_SERVICE_FACTOR && t->cat != CAT_ESTIM_WAIT_TIME) {
		snprintf(why, len, "actions: required for %s", cat);
		return -1;
	} else if (json_object_get(def, "actions") != NULL &&
	    parse_actions(json_object_get(def, "actions"), &t->actions, why,
	    len) == -1)
		return -1;
	if (t->cat == CAT_SERVICE_FACTOR && t->actions == 0)
		t->actions = A(A_ANSWERED) | A(A_ABANDONED);
	if ((per = text(json_object_get(def, "per"), b2, sizeof(b2))) !=
	    NULL && (t->per = action_by_name(per)) == -1) {
		snprintf(why, len, "per: %s is not an action", per);
		return -1;
	}
	if (t->cat == CAT_ESTIM_WAIT_TIME && t->per < 0)
		t->per = A_DISTRIBUTED;
	th = json_object_get(def, "threshold");
	if (th != NULL) {
		t->threshold = -1;
		if (json_is_number(th))
			t->threshold = json_number_value(th);
		else if (json_is_string(th)) {
			t->threshold = strtod(json_string_value(th), &end);
			if (end == json_string_value(th) || *end != '\0')
				t->threshold = -1;	/* not a number */
		}
		if (!(t->threshold >= 0 && t->threshold < 86400)) {
			snprintf(why, len, "threshold: seconds, 0 to 86400");
			return -1;
		}
	} else if (t->cat == CAT_SERVICE_FACTOR)
		t->threshold = 20;
	if ((filter = json_string_value(json_object_get(def, "filter"))) !=
	    NULL) {
		if (strncmp(filter, "userData.", 9) != 0 ||
		    (eq = strchr(filter + 9, '=')) == NULL || eq == filter + 9 ||
		    (size_t)(eq - filter - 9) >= sizeof(t->filter_key) ||
		    strlen(eq + 1) >= sizeof(t->filter_val)) {
			snprintf(why, len, "filter: userData.<key>=<value>");
			return -1;
		}
		memcpy(t->filter_key, filter + 9, (size_t)(eq - filter - 9));
		snprintf(t->filter_val, sizeof(t->filter_val), "%s", eq + 1);
	}
	if ((media = json_string_value(json_object_get(def, "media"))) !=
	    NULL)
		snprintf(t->media, sizeof(t->media), "%s", media);
	return 0;
}

json_t *
stype_json(const struct stype *t)
{
	json_t	*j = json_pack("{s:s}", "category", category_name(t->cat));
	json_t	*acts = json_array();
	int	 i;

	for (i = 0; i < A_COUNT; i++)
		if (t->actions & A(i))
			json_array_append_new(acts, json_string(action_name(i)));
	if (json_array_size(acts) > 0)
		json_object_set_new(j, "actions", acts);
	else
		json_decref(acts);
	if (t->per >= 0)
		json_object_set_new(j, "per", json_string(action_name(t->per)));
	if (t->cat == CAT_SERVICE_FACTOR)
		json_object_set_new(j, "threshold", json_real(t->threshold));
	if (t->filter_key[0] != '\0')
		json_object_set_new(j, "filter", json_sprintf("userData.%s=%s",
		    t->filter_key, t->filter_val));
	if (t->media[0] != '\0')
		json_object_set_new(j, "media", json_string(t->media));
	acts = json_array();
	for (i = 0; i < OBJ_COUNT; i++)
		if (t->objects & OB(i))
			json_array_append_new(acts, json_string(object_names[i]));
	json_object_set_new(j, "objects", acts);
	return j;
}

/* ---- profiles ---- */

static int
parse_hhmm(const char *s, int *min)
{
	int	h, m;
	char	c;

	if (sscanf(s, "%d:%d%c", &h, &m, &c) != 2 || h < 0 || h > 23 ||
	    m < 0 || m > 59)
		return -1;
	*min = h * 60 + m;
	return 0;
}

int
profile_parse(const json_t *v, struct profile *p, char *why, size_t len)
{
	const char	*type;
	const json_t	*r, *e;
	size_t		 i;

	memset(p, 0, sizeof(*p));
	p->resets[0] = 0;
	p->nresets = 1;
	if (v == NULL)
		return 0;
	if (!json_is_object(v) || (type = json_string_value(json_object_get(v,
	    "type"))) == NULL) {
		snprintf(why, len, "profile: {\"type\": \"Growing\" | "
		    "\"Sliding\" | \"SinceLogin\", ...}");
		return -1;
	}
	if (strcmp(type, "Growing") == 0) {
		p->kind = PROF_GROWING;
		if ((r = json_object_get(v, "reset")) == NULL)
			return 0;
		if (!json_is_array(r) || json_array_size(r) >
		    PROFILE_RESETS_MAX) {
			snprintf(why, len, "profile.reset: up to %d times "
			    "\"HH:MM\"", PROFILE_RESETS_MAX);
			return -1;
		}
		p->nresets = 0;
		json_array_foreach(r, i, e)
			if (!json_is_string(e) || parse_hhmm(json_string_value(e),
			    &p->resets[p->nresets++]) == -1) {
				snprintf(why, len, "profile.reset: times "
				    "\"HH:MM\"");
				return -1;
			}
		return 0;
	}
	if (strcmp(type, "SinceLogin") == 0) {
		p->kind = PROF_SINCE_LOGIN;
		p->nresets = 0;
		return 0;
	}
	if (strcmp(type, "Sliding") != 0) {
		snprintf(why, len, "profile.type: Growing, Sliding or "
		    "SinceLogin");
		return -1;
	}
	p->kind = PROF_SLIDING;
	p->nresets = 0;
	p->window = json_number_value(json_object_get(v, "window"));
	p->step = json_object_get(v, "step") != NULL ?
	    json_number_value(json_object_get(v, "step")) : 10;
	if (!(p->step >= 1) || !(p->window >= p->step) ||
	    p->window / p->step > BUCKETS_MAX) {
		snprintf(why, len, "profile: a Sliding window of S seconds in "
		    "steps of T (1 <= T <= S, S / T <= %d)", BUCKETS_MAX);
		return -1;
	}
	return 0;
}

void
profile_key(const struct profile *p, char *buf, size_t len)
{
	size_t	n;
	int	i, r;

	if (len == 0)
		return;
	switch (p->kind) {
	case PROF_SLIDING:
		snprintf(buf, len, "S%g/%g", p->window, p->step);
		return;
	case PROF_SINCE_LOGIN:
		snprintf(buf, len, "L");
		return;
	default:
		/* Each part only if it fits whole: a cut is never counted as
		 * written. */
		snprintf(buf, len, "G");
		n = strlen(buf);
		for (i = 0; i < p->nresets; i++) {
			r = snprintf(buf + n, len - n, "%s%d", i ? "," : "",
			    p->resets[i]);
			if (r < 0 || (size_t)r >= len - n) {
				buf[n] = '\0';
				break;
			}
			n += (size_t)r;
		}
	}
}

json_t *
profile_json(const struct profile *p)
{
	json_t	*r;
	int	 i;

	switch (p->kind) {
	case PROF_SLIDING:
		return json_pack("{s:s, s:f, s:f}", "type", "Sliding", "window",
		    p->window, "step", p->step);
	case PROF_SINCE_LOGIN:
		return json_pack("{s:s}", "type", "SinceLogin");
	default:
		r = json_array();
		for (i = 0; i < p->nresets; i++)
			json_array_append_new(r, json_sprintf("%02d:%02d",
			    p->resets[i] / 60, p->resets[i] % 60));
		return json_pack("{s:s, s:o}", "type", "Growing", "reset", r);
	}
}

double
profile_next_reset(const struct profile *p, double t, long gmtoff)
{
	double	 day, local = t + (double)gmtoff, best = 0, r;
	int	 i, k;

	if (p->kind != PROF_GROWING || p->nresets == 0)
		return 0;
	day = floor(local / 86400) * 86400;
	for (k = 0; k < 2; k++)
		for (i = 0; i < p->nresets; i++) {
			r = day + k * 86400 + p->resets[i] * 60.0;
			if (r > local && (best == 0 || r < best))
				best = r;
		}
	return best - (double)gmtoff;
}

/*
 * profile_period_start - when the period holding t began: the last reset
 * of a Growing profile at or before t (0 when it never resets), else t.
 * A Growing statistic made now counts what is in progress from there, so
 * its value does not depend on when it was made (a worker that restarts
 * makes it again).
 */
double
profile_period_start(const struct profile *p, double t, long gmtoff)
{
	double	 day, local = t + (double)gmtoff, best = -1, r;
	int	 i, k;

	if (p->kind != PROF_GROWING)
		return t;
	if (p->nresets == 0)
		return 0;
	day = floor(local / 86400) * 86400;
	for (k = -1; k < 1; k++)
		for (i = 0; i < p->nresets; i++) {
			r = day + k * 86400 + p->resets[i] * 60.0;
			if (r <= local && r > best)
				best = r;
		}
	return best - (double)gmtoff;
}

/* ---- accumulators ---- */

struct acc *
acc_new(const struct stype *t, const struct profile *p, double now)
{
	struct acc	*a = xcalloc(1, sizeof(*a));

	a->t = *t;
	a->p = *p;
	a->wants = t->actions;
	if (t->per >= 0)
		a->wants |= A(t->per);
	if (t->cat == CAT_SERVICE_FACTOR)
		a->wants |= A(A_ANSWERED) | A(A_ABANDONED);
	a->period = a->born = now;
	if (p->kind == PROF_SLIDING) {
		a->nb = (size_t)ceil(p->window / p->step);
		a->b = xcalloc(a->nb, sizeof(*a->b));
	}
	return a;
}

void
acc_born(struct acc *a, double t)
{
	a->born = t;
}

void
acc_free(struct acc *a)
{
	if (a == NULL)
		return;
	free(a->b);
	free(a->run);
	idmap_clear(&a->ix);
	free(a);
}

int
acc_wants(const struct acc *a, const struct inst *i)
{
	const json_t	*v;
	char		 buf[64];
	const char	*s;

	if (!(a->wants & A(i->a)))
		return 0;
	if (a->t.media[0] != '\0' && strcmp(a->t.media, "voice") != 0)
		return 0;
	if (a->t.filter_key[0] == '\0')
		return 1;
	v = json_object_get(i->user_data, a->t.filter_key);
	return (s = text(v, buf, sizeof(buf))) != NULL &&
	    strcmp(s, a->t.filter_val) == 0;
}

/*
 * bucket - the totals that an instance completed at t goes into; NULL
 * when t is older than the window its bucket now holds (an event that
 * came late must not wipe newer totals)
 */
static struct tot *
bucket(struct acc *a, double t)
{
	int64_t		 e;
	struct tot	*b;

	if (a->b == NULL)
		return &a->tot;
	e = (int64_t)floor(t / a->p.step);
	b = &a->b[(size_t)(e % (int64_t)a->nb)];
	if (b->epoch > e)
		return NULL;
	if (b->epoch != e) {
		memset(b, 0, sizeof(*b));
		b->epoch = e;
	}
	return b;
}

/* ---- the instances in progress: an array, and a hash of it by id ---- */

/* run_at - where id is in run, or -1 */
static ssize_t
run_at(const struct acc *a, uint64_t id)
{
	return (ssize_t)(uintptr_t)idmap_get(&a->ix, id) - 1;
}

/* run_index - id is at k in run */
static void
run_index(struct acc *a, uint64_t id, size_t k)
{
	idmap_put(&a->ix, id, (void *)(uintptr_t)(k + 1));
}

/* clamp - where an instance's time in the period starts */
static double
clamp(const struct acc *a, double start)
{
	return a->b == NULL && start < a->period ? a->period : start;
}

void
acc_start(struct acc *a, const struct inst *i)
{
	struct running	*r;

	if (action_is_instant(i->a) || !(a->t.actions & A(i->a)))
		return;
	if (run_at(a, i->id) >= 0)
		return;			/* seeded already */
	if (a->nrun == a->runcap) {
		a->runcap = a->runcap ? a->runcap * 2 : 8;
		a->run = xrealloc(a->run, a->runcap * sizeof(*a->run));
	}
	r = &a->run[a->nrun];
	r->id = i->id;
	r->a = i->a;
	r->start = i->start;
	r->c = clamp(a, i->start);
	a->sum_c += r->c;
	if (r->c > a->max_c)
		a->max_c = r->c;
	run_index(a, i->id, a->nrun++);
}

/* run_remove - an instance in progress ends */
static void
run_remove(struct acc *a, uint64_t id)
{
	ssize_t	k;
	size_t	last;

	if ((k = run_at(a, id)) < 0)
		return;
	a->sum_c -= a->run[k].c;
	idmap_del(&a->ix, id);
	last = --a->nrun;
	if ((size_t)k != last) {	/* the last one takes its place */
		a->run[k] = a->run[last];
		run_index(a, a->run[k].id, (size_t)k);
	}
	if (a->nrun == 0)
		a->sum_c = a->max_c = 0;
}

static void
add(struct acc *a, struct tot *b, enum action act, double counted,
    double whole, double duration)
{
	if (b == NULL)
		return;
	if (a->t.actions & A(act)) {
		b->count++;
		b->time += counted;
		if (whole > b->max)
			b->max = whole;
	}
	if (a->t.per == (int)act)
		b->per++;
	if (a->t.cat == CAT_SERVICE_FACTOR) {
		if (act == A_ANSWERED) {
			b->answered++;
			if (duration <= a->t.threshold)
				b->within++;
		} else if (act == A_ABANDONED && duration > a->t.threshold)
			b->late++;
	}
}

void
acc_end(struct acc *a, const struct inst *i, double end)
{
	double	from;

	run_remove(a, i->id);
	/* Only the part in the period (Sliding: the window) counts. */
	from = i->start > a->period ? i->start : a->period;
	if (a->b != NULL && from < end - a->p.window)
		from = end - a->p.window;
	if (end < from)
		from = end;
	add(a, bucket(a, end), i->a, end - from, end - i->start, end -
	    i->start);
}

void
acc_instant(struct acc *a, const struct inst *i, double duration)
{
	add(a, bucket(a, i->start), i->a, duration, duration, duration);
}

/* sum - the completed totals in the window */
static struct tot
sum(const struct acc *a, double now)
{
	struct tot	 s;
	int64_t		 e;
	size_t		 k;

	if (a->b == NULL)
		return a->tot;
	memset(&s, 0, sizeof(s));
	e = (int64_t)floor(now / a->p.step);
	for (k = 0; k < a->nb; k++) {
		if (a->b[k].epoch <= e - (int64_t)a->nb || a->b[k].epoch > e)
			continue;
		s.count += a->b[k].count;
		s.time += a->b[k].time;
		s.per += a->b[k].per;
		s.answered += a->b[k].answered;
		s.within += a->b[k].within;
		s.late += a->b[k].late;
		if (a->b[k].max > s.max)
			s.max = a->b[k].max;
	}
	return s;
}

/*
 * counted_from - where the interval the completed totals cover begins:
 * the window's oldest step still in (Sliding), or the period's start,
 * and not before the accumulator began to count
 */
static double
counted_from(const struct acc *a, double now)
{
	double	from = a->period;

	if (a->b != NULL)
		from = (floor(now / a->p.step) - (double)a->nb + 1) * a->p.step;
	return a->born > from ? a->born : from;
}

/*
 * estim_wait - EstimWaitTime: a new instance's expected wait, when the
 * instances of `per` (calls distributed) come at the pace they came in
 * the interval, and the `actions` in progress (calls waiting) go first:
 * (waiting + 1) x the interval / distributed.  -1 with none distributed.
 */
static double
estim_wait(const struct acc *a, const struct tot *s, double now)
{
	double	from = counted_from(a, now);

	if (s->per <= 0 || now <= from)
		return -1;
	return ((double)a->nrun + 1) * (now - from) / s->per;
}

double
acc_value(const struct acc *a, double now)
{
	struct tot	 s = sum(a, now);
	double		 v = 0, from, lo;
	size_t		 k;

	switch (a->t.cat) {
	case CAT_CURRENT_NUMBER:
		return (double)a->nrun;
	case CAT_CURRENT_MAX_TIME:
		for (k = 0; k < a->nrun; k++)
			if (now - a->run[k].start > v)
				v = now - a->run[k].start;
		return v;
	case CAT_TOTAL_NUMBER:
		return s.count;
	case CAT_TOTAL_TIME:
		if (a->b == NULL && a->max_c <= now)	/* O(1) */
			return s.time + (double)a->nrun * now - a->sum_c;
		lo = a->b != NULL ? now - a->p.window : a->period;
		for (k = 0; k < a->nrun; k++) {
			from = a->run[k].start > lo ? a->run[k].start : lo;
			if (now > from)
				v += now - from;
		}
		return s.time + v;
	case CAT_AVERAGE_TIME:
		if (a->t.per >= 0)
			return s.per > 0 ? s.time / s.per : 0;
		return s.count > 0 ? s.time / s.count : 0;
	case CAT_MAX_TIME:
		return s.max;
	case CAT_SERVICE_FACTOR:
		return s.answered + s.late > 0 ? 100.0 * s.within /
		    (s.answered + s.late) : 0;
	case CAT_ESTIM_WAIT_TIME:
		return estim_wait(a, &s, now);
	default:
		return 0;
	}
}

/* reclamp - the period moved: what runs counts from its start */
static void
reclamp(struct acc *a)
{
	size_t	k;

	a->sum_c = a->max_c = 0;
	for (k = 0; k < a->nrun; k++) {
		a->run[k].c = clamp(a, a->run[k].start);
		a->sum_c += a->run[k].c;
		if (a->run[k].c > a->max_c)
			a->max_c = a->run[k].c;
	}
}

void
acc_reset(struct acc *a, double now)
{
	memset(&a->tot, 0, sizeof(a->tot));
	if (a->b != NULL)
		memset(a->b, 0, a->nb * sizeof(*a->b));
	a->period = now;
	reclamp(a);
}

double
acc_period_start(const struct acc *a)
{
	return a->period;
}

size_t
acc_ongoing(const struct acc *a)
{
	return a->nrun;
}

json_t *
acc_save(const struct acc *a)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
	    "period", a->period, "born", a->born, "count", a->tot.count,
	    "time", a->tot.time, "max", a->tot.max, "per", a->tot.per,
	    "answered", a->tot.answered, "within", a->tot.within, "late",
	    a->tot.late);
}

int
acc_load(struct acc *a, const json_t *j)
{
	if (!json_is_object(j) || a->b != NULL)
		return -1;
	a->period = json_number_value(json_object_get(j, "period"));
	a->born = json_is_number(json_object_get(j, "born")) ?
	    json_number_value(json_object_get(j, "born")) : a->period;
	a->tot.count = json_number_value(json_object_get(j, "count"));
	a->tot.time = json_number_value(json_object_get(j, "time"));
	a->tot.max = json_number_value(json_object_get(j, "max"));
	a->tot.per = json_number_value(json_object_get(j, "per"));
	a->tot.answered = json_number_value(json_object_get(j, "answered"));
	a->tot.within = json_number_value(json_object_get(j, "within"));
	a->tot.late = json_number_value(json_object_get(j, "late"));
	reclamp(a);
	return 0;
}
