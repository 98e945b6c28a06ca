/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value - a statistic's value, worked out once and written as text for
 * every subscriber (common/jwrite.c): a number from the accumulator, an
 * agent's or a place's CurrentState from the model, or an agent's
 * CurrentAgentStatus from its voice state, the other media the
 * interaction server reports (RequestAgentMediaState, kept here) and its
 * capacity rule (docs/stats.md "Multimedia agent status").
 *
 * It reads the model, the configuration (index.c, the cache) and the
 * statistic's accumulator; it writes only the media states.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "stats_int.h"

static void	 current_state(const struct statistic *, struct jw *);
static void	 state_text(struct jw *, const struct agent_state *,
		    const char *);
static const char *agent_login_of(json_int_t, struct agent_state *);
static json_t	*agent_status(const struct statistic *);
static json_t	*capacity_rule(json_int_t);
static int	 limit_of(const json_t *, const char *);

static struct idmap	 media;		/* person dbid -> media_state */

/* value_get - the statistic's value, formatted once for every subscriber */
void
value_get(const struct statistic *m, double now, struct value *v)
{
	json_t	*j;
	char	*text;

	jw_init(&v->w, v->buf, sizeof(v->buf));
	v->text = v->buf;
	v->is_num = 0;
	v->num = 0;
	if (m->t.cat == CAT_CURRENT_STATE) {
		current_state(m, &v->w);
		v->text = v->w.p;
		return;
	}
	if (m->t.cat == CAT_AGENT_STATUS) {
		j = agent_status(m);
		if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
			fatalx("stats: a value cannot be encoded");
		jw_raw(&v->w, text, strlen(text));
		free(text);
		json_decref(j);
		v->text = v->w.p;
		return;
	}
	v->is_num = 1;
	v->num = acc_value(m->acc, now);
	if (m->t.cat == CAT_CURRENT_NUMBER || m->t.cat == CAT_TOTAL_NUMBER) {
		v->num = (double)llround(v->num);
		jw_int(&v->w, (long long)v->num);
	} else {
		v->num = round(v->num * 1000) / 1000;
		snprintf(v->buf, sizeof(v->buf), "%.3f", v->num);
	}
}

void
value_free(struct value *v)
{
	jw_free(&v->w);
}

/* value_json - the value as a tree, for a reply built as one */
json_t *
value_json(const struct value *v, const struct statistic *m)
{
	json_t	*j;

	if (!v->is_num) {
		if ((j = json_loads(v->text, 0, NULL)) == NULL)
			fatalx("stats: a value does not parse: %s", v->text);
		return j;
	}
	if (m->t.cat == CAT_CURRENT_NUMBER || m->t.cat == CAT_TOTAL_NUMBER)
		return json_integer((json_int_t)v->num);
	return json_real(v->num);
}

/* value_person_state - CurrentState of a person, as its JSON text */
void
value_person_state(json_int_t person, struct jw *w)
{
	struct agent_state	 st;
	const char		*agent;

	memset(&st, 0, sizeof(st));
	st.state = "LoggedOut";
	agent = agent_login_of(person, &st);
	state_text(w, &st, agent);
}

/* value_media - the other media of a person (made when create), or NULL */
struct media_state *
value_media(json_int_t person, int create)
{
	struct media_state	*ms;

	if ((ms = idmap_get(&media, (uint64_t)person)) == NULL && create) {
		ms = xcalloc(1, sizeof(*ms));
		idmap_put(&media, (uint64_t)person, ms);
	}
	return ms;
}

static void
free_media(uint64_t k, void *v, void *arg)
{
	free(v);
}

void
value_cleanup(void)
{
	idmap_each(&media, free_media, NULL);
	idmap_clear(&media);
}

/* current_state - CurrentState of an agent or a place */
static void
current_state(const struct statistic *m, struct jw *w)
{
	struct agent_state	 st;
	const char		*agent = NULL, *num;
	const json_t		*dns, *e;
	size_t			 i;

	if (m->kind == OBJ_AGENT) {
		value_person_state(m->dbid, w);
		return;
	}
	memset(&st, 0, sizeof(st));
	st.state = "LoggedOut";
	dns = index_list('L', m->dbid);
	json_array_foreach(dns, i, e) {
		num = json_string_value(e);
		if ((agent = model_dn_agent(stats_env.model, num)) != NULL) {
			model_agent_state(stats_env.model, agent, &st);
			break;
		}
	}
	state_text(w, &st, agent);
}

/* state_text - an agent's state as the JSON object of its value */
static void
state_text(struct jw *w, const struct agent_state *st, const char *agent)
{
	jw_lit(w, "{\"state\":");
	jw_str(w, st->state);
	jw_lit(w, ",\"since\":");
	jw_int(w, llround(st->since * 1000));
	if (agent != NULL) {
		jw_lit(w, ",\"agentId\":");
		jw_str(w, agent);
	}
	if (st->reason != NULL) {
		jw_lit(w, ",\"reason\":");
		jw_str(w, st->reason);
	}
	if (st->work_mode != NULL) {
		jw_lit(w, ",\"workMode\":");
		jw_str(w, st->work_mode);
	}
	if (st->dn != NULL) {
		jw_lit(w, ",\"dn\":");
		jw_str(w, st->dn);
	}
	if (st->conn_id != NULL) {
		jw_lit(w, ",\"connId\":");
		jw_str(w, st->conn_id);
	}
	jw_lit(w, "}");
}

/* agent_login_of - the login code a person is logged in with, if any */
static const char *
agent_login_of(json_int_t person, struct agent_state *st)
{
	const json_t	*codes = index_list('P', person), *e;
	const char	*code;
	size_t		 i;

	json_array_foreach(codes, i, e) {
		code = json_string_value(e);
		if (model_agent_state(stats_env.model, code, st) == 0 &&
		    strcmp(st->state, "LoggedOut") != 0)
			return code;
	}
	return NULL;
}

/* agent_status - CurrentAgentStatus: what each medium can take more of */
static json_t *
agent_status(const struct statistic *m)
{
	struct media_state	*ms;
	struct agent_state	 st;
	json_t			*rule = capacity_rule(m->dbid);
	json_t			*out, *med, *can;
	const char		*ex = json_string_value(json_object_get(rule,
				    "exclusive")), *k;
	struct media		 all[MEDIA_MAX + 1];
	int			 n = 0, i, busy_ex = 0, busy_other = 0;
	json_t			*v;

	memset(&st, 0, sizeof(st));
	st.state = "LoggedOut";
	agent_login_of(m->dbid, &st);
	snprintf(all[0].name, sizeof(all[0].name), "voice");
	snprintf(all[0].state, sizeof(all[0].state), "%s",
	    strcmp(st.state, "LoggedOut") == 0 ? "LoggedOut" :
	    strcmp(st.state, "Ready") == 0 || st.conn_id != NULL ? "Ready" :
	    "NotReady");
	all[0].interactions = st.conn_id != NULL ? 1 : 0;
	n = 1;
	if ((ms = value_media(m->dbid, 0)) != NULL)
		for (i = 0; i < ms->n && n < MEDIA_MAX + 1; i++)
			all[n++] = ms->v[i];
	/* Rules may name media nobody reported: they are logged out. */
	json_object_foreach(rule, k, v) {
		if (strcmp(k, "exclusive") == 0)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(all[i].name, k) == 0)
				break;
		if (i == n && n < MEDIA_MAX + 1) {
			snprintf(all[n].name, sizeof(all[n].name), "%s", k);
			snprintf(all[n].state, sizeof(all[n].state),
			    "LoggedOut");
			all[n++].interactions = 0;
		}
	}
	for (i = 0; i < n; i++)
		if (all[i].interactions > 0) {
			if (ex != NULL && strcmp(all[i].name, ex) == 0)
				busy_ex = 1;
			else
				busy_other = 1;
		}
	out = json_object();
	med = json_object();
	can = json_array();
	for (i = 0; i < n; i++) {
		int	cap = limit_of(rule, all[i].name);
		int	avail = cap - all[i].interactions;
		int	is_ex = ex != NULL && strcmp(all[i].name, ex) == 0;

		if (avail < 0)
			avail = 0;
		if (strcmp(all[i].state, "Ready") != 0 || busy_ex ||
		    (is_ex && busy_other))
			avail = 0;
		json_object_set_new(med, all[i].name, json_pack("{s:s, s:i, "
		    "s:i, s:i}", "state", all[i].state, "interactions",
		    all[i].interactions, "capacity", cap, "available", avail));
		if (avail > 0)
			json_array_append_new(can, json_string(all[i].name));
	}
	json_object_set_new(out, "media", med);
	json_object_set_new(out, "canTake", can);
	json_decref(rule);
	return out;
}

/* capacity_rule - the person's capacity rule, from the stats Application */
static json_t *
capacity_rule(json_int_t person)
{
	const struct cobj	*o;
	json_t			*opts, *up, *rule, *name;
	const char		*rn = "default";
	char			 sec[160];

	o = cache_get(person);
	up = o != NULL ? cobj_get(o, "userProperties") : NULL;
	name = json_object_get(json_object_get(up, "stats"), "capacityRule");
	if (json_is_string(name))
		rn = json_string_value(name);
	snprintf(sec, sizeof(sec), "capacity:%s", rn);
	opts = index_app_options();
	rule = json_incref(json_object_get(opts, sec));
	json_decref(opts);
	json_decref(up);
	if (rule == NULL)
		rule = json_pack("{s:i}", "voice", 1);
	return rule;
}

static int
limit_of(const json_t *rule, const char *medium)
{
	const json_t	*v = json_object_get(rule, medium);

	if (json_is_integer(v))
		return (int)json_integer_value(v);
	if (json_is_string(v))
		return atoi(json_string_value(v));
	return 0;
}
