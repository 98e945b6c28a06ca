/* SPDX-License-Identifier: Apache-2.0 */
/*
 * target - whom an interaction is for: a skill expression (expr.c) over
 * the configuration's Skills, an AgentGroup, a PlaceGroup, one Person, or
 * any agent; and the strategies that pick one of the free agents who fit.
 *
 * What it touches: the configuration cache, read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "schema.h"
#include "util.h"
#include "expr.h"
#include "routing_int.h"

static const char *const strategies[] = { "LongestIdle", "MostSkilled",
    "RoundRobin", "FewestCalls", NULL };

/* target_skill - a Skill's dbid by name, from the cache (expr.h's
 * rexpr_skill_cb) */
int
target_skill(const char *name, size_t len, void *arg)
{
	const struct cobj	*o;
	char			 buf[256];

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if ((o = cache_find(CFG_SKILL, buf)) == NULL || !o->enabled ||
	    o->dbid > 0x7fffffff)
		return -1;
	return (int)o->dbid;
}

/* ref - {"<field>": dbid} naming an enabled object of kind */
static int
ref(const json_t *v, const char *field, enum cfg_kind kind, json_int_t *dbid,
    char *why, size_t len)
{
	const struct cobj	*o;

	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		snprintf(why, len, "target.%s must be a dbid", field);
		return -1;
	}
	o = cache_get(json_integer_value(v));
	if (o == NULL || o->kind != (int)kind || !o->enabled) {
		snprintf(why, len, "target.%s: no such %s: %lld", field,
		    cfg_type_name(cfg_type_at(kind)), (long long)json_integer_value(v));
		return -1;
	}
	*dbid = o->dbid;
	return 0;
}

int
target_parse(const json_t *v, struct target *t, char *why, size_t len)
{
	char	err[256];
	size_t	pos;

	memset(t, 0, sizeof(*t));
	if (v == NULL || json_is_null(v)) {
		t->kind = TG_ANY;
		return 0;
	}
	if (json_is_string(v)) {
		t->kind = TG_EXPR;
		t->expr = rexpr_compile(json_string_value(v), target_skill, NULL,
		    err, sizeof(err), &pos);
		if (t->expr == NULL) {
			snprintf(why, len, "target: %s", err);
			return -1;
		}
		t->text = xstrdup(json_string_value(v));
		return 0;
	}
	if (!json_is_object(v) || json_object_size(v) != 1) {
		snprintf(why, len, "target must be a skill expression or one "
		    "of {\"agentGroup\": dbid}, {\"placeGroup\": dbid}, "
		    "{\"agent\": dbid}");
		return -1;
	}
	if (json_object_get(v, "agentGroup") != NULL) {
		t->kind = TG_AGENT_GROUP;
		return ref(json_object_get(v, "agentGroup"), "agentGroup",
		    CFG_AGENT_GROUP, &t->dbid, why, len);
	}
	if (json_object_get(v, "placeGroup") != NULL) {
		t->kind = TG_PLACE_GROUP;
		return ref(json_object_get(v, "placeGroup"), "placeGroup",
		    CFG_PLACE_GROUP, &t->dbid, why, len);
	}
	if (json_object_get(v, "agent") != NULL) {
		t->kind = TG_AGENT;
		return ref(json_object_get(v, "agent"), "agent", CFG_PERSON,
		    &t->dbid, why, len);
	}
	snprintf(why, len, "target: unknown kind \"%s\" (agentGroup, "
	    "placeGroup or agent)", json_object_iter_key(json_object_iter(
	    (json_t *)v)));
	return -1;
}

void
target_free(struct target *t)
{
	if (t->expr != NULL)
		rexpr_free(t->expr);
	free(t->text);
	memset(t, 0, sizeof(*t));
}

static int
level(int skill, void *arg)
{
	return pool_level(arg, skill);
}

int
target_match(const struct target *t, const struct agent *a)
{
	switch (t->kind) {
	case TG_ANY:
		return 1;
	case TG_EXPR:
		return rexpr_match(t->expr, level, (void *)a);
	case TG_AGENT_GROUP:
		return pool_in_agent_group(a, t->dbid);
	case TG_PLACE_GROUP:
		return pool_in_place_group(a->place, t->dbid);
	case TG_AGENT:
		return a->person == t->dbid;
	}
	return 0;
}

int
target_score(const struct target *t, const struct agent *a)
{
	if (t->kind != TG_EXPR)
		return -1;
	return rexpr_score(t->expr, level, (void *)a);
}

enum strategy
strategy_parse(const char *s)
{
	int	i;

	for (i = 0; s != NULL && strategies[i] != NULL; i++)
		if (strcmp(s, strategies[i]) == 0)
			return (enum strategy)i;
	return (enum strategy)-1;
}
