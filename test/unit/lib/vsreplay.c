/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vsreplay - voice:state replayed from the events.  Per DN: "calls", an
 * object from connId to {state, userData}, and "agent", {agentId, state,
 * workMode}; a DN with neither is dropped.  A call event sets the state
 * its name says (EventDialing: Dialing, EventRetrieved: Established,
 * EventRouteRequest: Ringing, ...) and the userData it carries;
 * EventReleased, EventAbandoned, EventDiverted and EventRouteUsed take the
 * call off thisDN; a previousConnId (a completed
 * transfer or conference) moves the DN's entry to the call it joined.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vsreplay.h"
#include "util.h"

struct vsreplay {
	json_t	*dns;		/* dn -> {calls, agent} */
};

/* The state a call event leaves its DN's call in; NULL: as it was. */
static const struct {
	const char	*event;
	const char	*state;
} call_states[] = {
	{ "EventDialing", "Dialing" },
	{ "EventRinging", "Ringing" },
	{ "EventRouteRequest", "Ringing" },
	{ "EventQueued", "Queued" },
	{ "EventEstablished", "Established" },
	{ "EventHeld", "Held" },
	{ "EventRetrieved", "Established" },
};

/* vsr_new - nothing replayed yet */
struct vsreplay *
vsr_new(void)
{
	struct vsreplay	*r = xcalloc(1, sizeof(*r));

	r->dns = json_object();
	return r;
}

/* vsr_free - NULL does nothing */
void
vsr_free(struct vsreplay *r)
{
	if (r == NULL)
		return;
	json_decref(r->dns);
	free(r);
}

/* vsr_dns - DNs with a call or an agent */
size_t
vsr_dns(const struct vsreplay *r)
{
	return json_object_size(r->dns);
}

/* dn_of - dn's entry, made if need be */
static json_t *
dn_of(struct vsreplay *r, const char *dn)
{
	json_t	*d = json_object_get(r->dns, dn);

	if (d == NULL) {
		d = json_pack("{s:{}}", "calls");
		json_object_set_new(r->dns, dn, d);
	}
	return d;
}

/* call_event - a call event on dn */
static void
call_event(json_t *d, const char *name, const char *conn, const json_t *ev)
{
	json_t		*calls = json_object_get(d, "calls"), *c;
	const char	*prev, *st = NULL;
	size_t		 i;

	if (strcmp(name, "EventReleased") == 0 ||
	    strcmp(name, "EventAbandoned") == 0 ||
	    strcmp(name, "EventDiverted") == 0 ||
	    strcmp(name, "EventRouteUsed") == 0) {
		json_object_del(calls, conn);
		return;
	}
	prev = json_string_value(json_object_get(ev, "previousConnId"));
	if (prev != NULL && (c = json_object_get(calls, prev)) != NULL) {
		json_object_set(calls, conn, c);
		json_object_del(calls, prev);
	}
	if ((c = json_object_get(calls, conn)) == NULL) {
		/* an event on a call the DN is not on: no state to match */
		c = json_pack("{s:s}", "state", "(none)");
		json_object_set_new(calls, conn, c);
	}
	for (i = 0; i < sizeof(call_states) / sizeof(call_states[0]); i++)
		if (strcmp(name, call_states[i].event) == 0)
			st = call_states[i].state;
	if (st != NULL)
		json_object_set_new(c, "state", json_string(st));
	json_object_set_new(c, "userData",
	    json_deep_copy(json_object_get(ev, "userData")));
}

/* agent_event - an agent event on dn */
static void
agent_event(json_t *d, const char *name, const json_t *ev)
{
	const char	*st = "NotReady";

	if (strcmp(name, "EventAgentLogout") == 0) {
		json_object_del(d, "agent");
		return;
	}
	if (strcmp(name, "EventAgentReady") == 0)
		st = "Ready";
	json_object_set_new(d, "agent", json_pack("{s:O, s:s, s:O}",
	    "agentId", json_object_get(ev, "agentId"), "state", st,
	    "workMode", json_object_get(ev, "workMode")));
}

/* vsr_event - one event */
void
vsr_event(struct vsreplay *r, const json_t *ev)
{
	const char	*name = json_string_value(json_object_get(ev, "event"));
	const char	*dn = json_string_value(json_object_get(ev, "thisDN"));
	const char	*conn = json_string_value(json_object_get(ev, "connId"));
	json_t		*d;

	assert_non_null(name);
	if (dn == NULL || strcmp(name, "EventError") == 0 ||
	    strcmp(name, "EventUserEvent") == 0)
		return;
	d = dn_of(r, dn);
	if (strncmp(name, "EventAgent", 10) == 0)
		agent_event(d, name, ev);
	else if (conn != NULL)
		call_event(d, name, conn, ev);
	if (json_object_size(json_object_get(d, "calls")) == 0 &&
	    json_object_get(d, "agent") == NULL)
		json_object_del(r->dns, dn);
}

/* check_calls - the calls of a written state against the replay's */
static void
check_calls(const char *dn, const json_t *want, const json_t *calls)
{
	const json_t	*c, *w;
	const char	*conn;
	size_t		 i;

	if (json_array_size(calls) != json_object_size(want))
		fail_msg("DN %s: %zu calls written, %zu replayed", dn,
		    json_array_size(calls), json_object_size(want));
	json_array_foreach(calls, i, c) {
		conn = json_string_value(json_object_get(c, "connId"));
		w = conn != NULL ? json_object_get(want, conn) : NULL;
		if (w == NULL)
			fail_msg("DN %s: call %s written, not replayed", dn,
			    conn ? conn : "(no connId)");
		if (!json_equal(json_object_get(c, "state"),
		    json_object_get(w, "state")))
			fail_msg("DN %s call %s: state %s written, %s "
			    "replayed", dn, conn, json_string_value(
			    json_object_get(c, "state")), json_string_value(
			    json_object_get(w, "state")));
		if (!json_equal(json_object_get(c, "userData"),
		    json_object_get(w, "userData")))
			fail_msg("DN %s call %s: userData differs", dn, conn);
	}
}

void
vsr_keep(const char *dn, json_t *state, void *arg)
{
	struct vsr_one	*one = arg;

	if (one->pair != NULL)
		fail_msg("an event made two DNs due: %s and %s",
		    json_string_value(json_array_get(one->pair, 0)), dn);
	vsr_check(one->replay, dn, state);
	one->pair = json_pack("[s, O?]", dn, state);
}

/* vsr_check - dn's written state is the replay's */
void
vsr_check(struct vsreplay *r, const char *dn, const json_t *state)
{
	const json_t	*d = json_object_get(r->dns, dn), *a, *want;

	if (state == NULL) {
		if (d != NULL)
			fail_msg("DN %s: field deleted, but the events leave "
			    "it %zu calls%s", dn, json_object_size(
			    json_object_get(d, "calls")), json_object_get(d,
			    "agent") ? " and an agent" : "");
		return;
	}
	if (d == NULL)
		fail_msg("DN %s: a state written, but the events leave it "
		    "nothing", dn);
	assert_string_equal(json_string_value(json_object_get(state, "dn")),
	    dn);
	check_calls(dn, json_object_get(d, "calls"),
	    json_object_get(state, "calls"));
	a = json_object_get(state, "agent");
	if ((want = json_object_get(d, "agent")) == NULL) {
		assert_string_equal(json_string_value(json_object_get(a,
		    "state")), "LoggedOut");
		return;
	}
	if (!json_equal(json_object_get(a, "agentId"),
	    json_object_get(want, "agentId")) ||
	    !json_equal(json_object_get(a, "state"),
	    json_object_get(want, "state")) ||
	    !json_equal(json_object_get(a, "workMode"),
	    json_object_get(want, "workMode")))
		fail_msg("DN %s: agent %s written, %s replayed", dn,
		    json_dumps(a, JSON_COMPACT), json_dumps(want,
		    JSON_COMPACT));
}
