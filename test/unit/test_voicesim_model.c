/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_voicesim_model - the voice simulator's switch (tools/voicesim):
 * the directory built from configuration objects, every request answered
 * with the events of docs/voice-redis.md in order (requestId on the first
 * one, errors that change nothing), the state of each event's DN right
 * after it, queues and routing points (those the routing worker routes:
 * EventRouteRequest, RequestRouteCall, EventRouteUsed), timers, and a
 * seeded traffic run
 * that gives the same events however the clock is stepped, its states
 * flushed once per batch as voicesim writes them.  Every state flushed is
 * checked against the replay of the events before it (lib/vsreplay).
 * Both files are included whole: they are pure.
 */
#include "../../tools/voicesim/dir.c"
#include "../../tools/voicesim/model.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"
#include "vsreplay.h"

#define T0	1764140000000ULL

struct sink {
	json_t		*events;	/* copies, in order */
	json_t		*states;	/* per event: [dn, its state right
					 * after it, or null]; [null, null]
					 * for an event with no DN */
	struct vsreplay	*replay;	/* of the events */
	int		 batched;	/* flushed by the test, not per
					 * event */
	size_t		 flushed;	/* states flushed in batches */
};

static struct dir	*D;
static struct vs	*M;
static struct sink	 S;
static int		 nreq;
static char		 rid[32];

/* J - parse JSON written with ' for " */
static json_t *
J(const char *text)
{
	json_error_t	 je;
	json_t		*v;
	char		*s, *p;

	s = xstrdup(text);
	for (p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(s, 0, &je);
	if (v == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	free(s);
	return v;
}

/* sink_emit - keep a copy of each event; unless batched, flush at once:
 * the state of its DN right after it */
static void
sink_emit(const struct vs_out *o, void *arg)
{
	struct sink	*s = arg;
	struct vsr_one	 one = { s->replay, NULL };

	json_array_append_new(s->events, json_deep_copy(o->event));
	vsr_event(s->replay, o->event);
	if (s->batched)
		return;
	vs_flush(M, vsr_keep, &one);
	json_array_append_new(s->states, one.pair ? one.pair :
	    json_pack("[n, n]"));
}

/* check_one - a state flushed at the end of a batch, or one of all */
static void
check_one(const char *dn, json_t *st, void *arg)
{
	vsr_check(S.replay, dn, st);
	S.flushed++;
}

/* flush - the end of a batch: the states due, as voicesim writes them */
static void
flush(void)
{
	vs_flush(M, check_one, NULL);
}

/* check_all - every DN's state matches the events, and no DN is missing */
static void
check_all(void)
{
	size_t	n = S.flushed;

	vs_each_state(M, check_one, NULL);
	assert_int_equal(S.flushed - n, vsr_dns(S.replay));
	S.flushed = n;
}

/* add - one configuration object */
static void
add(const char *type, json_int_t dbid, const char *obj)
{
	json_t	*j = J(obj);

	dir_apply(D, type, dbid, j);
	json_decref(j);
}

/* tenant - switch 1; phones 5001-5004 (dbids 10-13) on places 40-43;
 * queue 6000, routing point 6100, trunk 8000; agents 7001-7004 */
static void
tenant(void)
{
	char	buf[256];
	int	i;

	add("Switch", 1, "{'name':'sw'}");
	add("DN", 20, "{'number':'6000','type':'ACDQueue','switch':1}");
	add("DN", 21, "{'number':'6100','type':'RoutingPoint','switch':1}");
	add("DN", 22, "{'number':'8000','type':'Trunk','switch':1}");
	for (i = 0; i < 4; i++) {
		snprintf(buf, sizeof(buf), "{'number':'500%d','type':"
		    "'Extension','switch':1}", i + 1);
		add("DN", 10 + i, buf);
		snprintf(buf, sizeof(buf), "{'loginCode':'700%d','switch':1}",
		    i + 1);
		add("AgentLogin", 30 + i, buf);
		snprintf(buf, sizeof(buf), "{'name':'p%d','dns':[%d]}", i,
		    10 + i);
		add("Place", 40 + i, buf);
		snprintf(buf, sizeof(buf), "{'userName':'a%d','isAgent':true,"
		    "'place':%d,'agentLogins':[{'agentLogin':%d}]}", i, 40 + i,
		    30 + i);
		add("Person", 60 - i, buf);	/* agent 4 first by dbid */
	}
}

static const struct vs_params params = {
	.region = "local", .boot = "0123456789abcdef", .seed = 1,
	.ring_ms = 1000, .patience_ms = 30000, .talk_ms = 5000,
	.wrap_ms = 2000, .break_ms = 3000, .notready = 0.2,
	.external_min = 7, .busy_suffix = "0199",
};

/* setup_with - the test tenant and a model with p */
static int
setup_with(const struct vs_params *p)
{
	D = dir_new();
	tenant();
	S.events = json_array();
	S.states = json_array();
	S.replay = vsr_new();
	S.batched = 0;
	S.flushed = 0;
	M = vs_new(p, D, sink_emit, &S);
	nreq = 0;
	return 0;
}

/* setup - the test tenant and a model with the default params */
static int
setup(void **st)
{
	return setup_with(&params);
}

/* teardown - free the model, the tenant and the events */
static int
teardown(void **st)
{
	vs_free(M);
	dir_free(D);
	json_decref(S.events);
	json_decref(S.states);
	vsr_free(S.replay);
	return 0;
}

/* req - send a request (JSON with '), at time T0; returns its requestId */
static const char *
req(const char *text)
{
	json_t	*j = J(text);

	snprintf(rid, sizeof(rid), "r%d", ++nreq);
	json_object_set_new(j, "requestId", json_string(rid));
	vs_request(M, j, T0);
	json_decref(j);
	return rid;
}

/* trace - "EventX@dn ..." of the events seen so far */
static char *
trace(void)
{
	static char	 buf[4096];
	json_t		*e;
	size_t		 i, n = 0;

	buf[0] = '\0';
	json_array_foreach(S.events, i, e)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s@%s",
		    i ? " " : "",
		    json_string_value(json_object_get(e, "event")),
		    json_string_value(json_object_get(e, "thisDN")) ?
		    json_string_value(json_object_get(e, "thisDN")) : "-");
	return buf;
}

/* clear - forget the events seen so far */
static void
clear(void)
{
	json_array_clear(S.events);
	json_array_clear(S.states);
}

/* ev - event i, or fail */
static json_t *
ev(size_t i)
{
	json_t	*e = json_array_get(S.events, i);

	if (e == NULL)
		fail_msg("no event %zu: %s", i, trace());
	return e;
}

/* f - string member name of event i */
static const char *
f(size_t i, const char *name)
{
	return json_string_value(json_object_get(ev(i), name));
}

/* expect - the trace is want; only the first event has the requestId */
static void
expect(const char *want, const char *r)
{
	size_t	i;

	assert_string_equal(trace(), want);
	assert_string_equal(f(0, "requestId"), r);
	for (i = 1; i < json_array_size(S.events); i++)
		assert_null(f(i, "requestId"));
}

/* error_is - the request got exactly one EventError with code */
static void
error_is(const char *r, const char *code)
{
	assert_int_equal(json_array_size(S.events), 1);
	assert_string_equal(f(0, "event"), "EventError");
	assert_string_equal(f(0, "code"), code);
	assert_string_equal(f(0, "requestId"), r);
	assert_true(json_is_null(json_array_get(json_array_get(S.states, 0),
	    0)));
	clear();
}

/* state_of - the state written with event i: the call's state there */
static const char *
state_of(size_t i)
{
	json_t	*st = json_array_get(json_array_get(S.states, i), 1);

	st = json_array_get(json_object_get(st, "calls"), 0);
	return json_string_value(json_object_get(st, "state"));
}

/* reqf - req with printf */
static const char *
reqf(const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return req(buf);
}

/* connect - 5001 calls 5002, 5002 answers: the connId */
static char *
connect(void)
{
	static char	conn[17];

	req("{'request':'RequestMakeCall','dn':'5001','destination':'5002'}");
	snprintf(conn, sizeof(conn), "%s", f(0, "connId"));
	clear();
	reqf("{'request':'RequestAnswerCall','dn':'5002','connId':'%s'}",
	    conn);
	clear();
	return conn;
}

/* test_dir - lookups, disabled and deleted objects, the agents */
static void
test_dir(void **st)
{
	struct dir_agent	a[8];

	assert_int_equal(dir_dn(D, "5001")->kind, VOICE_DN_PHONE);
	assert_int_equal(dir_dn(D, "6100")->kind, VOICE_DN_RP);
	assert_int_equal(dir_dn(D, "8000")->kind, VOICE_DN_OTHER);
	assert_null(dir_dn(D, "5999"));
	assert_true(dir_login_ok(D, "7001", 1));
	assert_false(dir_login_ok(D, "7001", 2));
	assert_int_equal(dir_agents(D, a, 8), 4);
	assert_string_equal(a[0].login, "7004");	/* person dbid 57 */
	assert_string_equal(a[0].dn, "5004");
	assert_string_equal(dir_first_queue(D, 1)->number, "6000");
	/* disabled is gone; delete is gone; a person without place is not
	 * an agent the generator can use */
	add("DN", 13, "{'number':'5004','type':'Extension','switch':1,"
	    "'state':'disabled'}");
	assert_null(dir_dn(D, "5004"));
	assert_int_equal(dir_agents(D, a, 8), 3);
	dir_apply(D, "AgentLogin", 30, NULL);
	assert_false(dir_login_ok(D, "7001", 1));
	assert_int_equal(dir_agents(D, a, 8), 2);
	add("DN", 13, "{'number':'5004','type':'Extension','switch':1}");
	assert_int_equal(dir_count(D, VOICE_DN_PHONE), 4);
	dir_reset(D);
	assert_null(dir_dn(D, "5001"));
}

/* test_make_answer_hold_release - a call's life: events, ids, roles, state */
static void
test_make_answer_hold_release(void **st)
{
	const char	*r;
	char		 conn[17];

	r = req("{'request':'RequestMakeCall','dn':'5001','destination':"
	    "'5002','userData':{'k':'v'}}");
	expect("EventDialing@5001 EventRinging@5002", r);
	assert_string_equal(f(0, "connId"), "0123450000000001");
	assert_string_equal(f(0, "eventId"), "local:0123456789abcdef:1");
	assert_string_equal(f(1, "eventId"), "local:0123456789abcdef:2");
	assert_string_equal(f(0, "callType"), "Internal");
	assert_string_equal(f(0, "otherDN"), "5002");
	assert_string_equal(f(0, "thisDNRole"), "Origination");
	assert_string_equal(f(1, "otherDNRole"), "Origination");
	assert_string_equal(f(1, "callThreadId"), f(1, "callId"));
	assert_int_equal(json_integer_value(json_object_get(ev(0), "time")),
	    T0);
	assert_string_equal(state_of(0), "Dialing");
	assert_string_equal(state_of(1), "Ringing");
	snprintf(conn, sizeof(conn), "%s", f(0, "connId"));
	clear();
	r = reqf("{'request':'RequestAnswerCall','dn':'5002','connId':'%s'}",
	    conn);
	expect("EventEstablished@5002 EventEstablished@5001", r);
	assert_string_equal(state_of(1), "Established");
	clear();
	r = reqf("{'request':'RequestHoldCall','dn':'5002','connId':'%s'}",
	    conn);
	expect("EventHeld@5002", r);
	assert_string_equal(state_of(0), "Held");
	clear();
	r = reqf("{'request':'RequestRetrieveCall','dn':'5002','connId':'%s'}",
	    conn);
	expect("EventRetrieved@5002", r);
	clear();
	r = reqf("{'request':'RequestReleaseCall','dn':'5001','connId':'%s'}",
	    conn);
	expect("EventReleased@5001 EventReleased@5002", r);
	assert_string_equal(f(0, "cause"), "Normal");
	assert_string_equal(json_object_get(json_object_get(ev(1), "userData"),
	    "k") ? "v" : "", "v");
	/* the state fields go away with the last call */
	assert_true(json_is_null(json_array_get(json_array_get(S.states, 1),
	    1)));
	assert_int_equal(vs_calls(M), 0);
}

/* test_errors - every error code; a failed request changes nothing */
static void
test_errors(void **st)
{
	char		 conn[17];
	const char	*r;

	r = req("{'request':'RequestMakeCall','dn':'9999','destination':"
	    "'5002'}");
	error_is(r, "UnknownDN");
	error_is(req("{'request':'RequestMakeCall','dn':'5001','destination':"
	    "'123'}"), "UnknownDN");
	error_is(req("{'request':'RequestMakeCall','dn':'5001','destination':"
	    "'8000'}"), "UnknownDN");
	error_is(req("{'request':'RequestMakeCall','dn':'5001','destination':"
	    "'5001'}"), "InvalidState");
	error_is(req("{'request':'RequestMakeCall','dn':'6000','destination':"
	    "'5001'}"), "InvalidState");
	error_is(req("{'request':'RequestMakeCall','dn':'5001'}"),
	    "BadRequest");
	error_is(req("{'request':'RequestMakeCall','dn':5001,'destination':"
	    "'5002'}"), "BadRequest");
	error_is(req("{'request':'RequestMakeCall','dn':'5001','destination':"
	    "'+15550199'}"), "Busy");
	error_is(req("{'request':'Nope','dn':'5001'}"), "BadRequest");
	error_is(req("{'request':'RequestAnswerCall','dn':'5001','connId':"
	    "'ffffffffffffffff'}"), "NoSuchCall");
	error_is(req("{'request':'RequestAnswerCall','dn':'5001','connId':"
	    "'0123456789abcdef0'}"), "BadRequest");
	req("{'request':'RequestMakeCall','dn':'5001','destination':'5002'}");
	snprintf(conn, sizeof(conn), "%s", f(0, "connId"));
	clear();
	error_is(req("{'request':'RequestMakeCall','dn':'5003','destination':"
	    "'5002'}"), "Busy");
	error_is(reqf("{'request':'RequestAnswerCall','dn':'5001','connId':"
	    "'%s'}", conn), "InvalidState");
	error_is(reqf("{'request':'RequestInitiateTransfer','dn':'5001',"
	    "'connId':'%s','destination':'5003'}", conn), "InvalidState");
	error_is(reqf("{'request':'RequestCompleteTransfer','dn':'5001',"
	    "'connId':'%s','consultConnId':'%s'}", conn, conn),
	    "InvalidState");
	error_is(reqf("{'request':'RequestAttachUserData','dn':'5001',"
	    "'connId':'%s','userData':[1]}", conn), "BadRequest");
	/* no requestId: BadRequest without one */
	vs_bad_request(M, NULL, "request is not JSON", T0);
	assert_null(f(0, "requestId"));
	assert_string_equal(f(0, "code"), "BadRequest");
	clear();
	/* nothing changed */
	assert_int_equal(vs_calls(M), 1);
}

/* test_transfer - two-step and single-step transfers */
static void
test_transfer(void **st)
{
	char		 c1[17], c2[17];
	const char	*r;

	snprintf(c1, sizeof(c1), "%s", connect());
	r = reqf("{'request':'RequestInitiateTransfer','dn':'5002','connId':"
	    "'%s','destination':'5003','userData':{'t':1}}", c1);
	expect("EventHeld@5002 EventDialing@5002 EventRinging@5003", r);
	snprintf(c2, sizeof(c2), "%s", f(1, "connId"));
	assert_string_not_equal(c1, c2);
	assert_string_equal(f(1, "callType"), "Consult");
	assert_string_equal(f(1, "callThreadId"), f(0, "callThreadId"));
	assert_non_null(json_object_get(json_object_get(ev(2), "userData"),
	    "t"));
	clear();
	r = reqf("{'request':'RequestCompleteTransfer','dn':'5002','connId':"
	    "'%s','consultConnId':'%s'}", c1, c2);
	expect("EventReleased@5002 EventReleased@5002 EventPartyChanged@5001 "
	    "EventPartyChanged@5003", r);
	assert_string_equal(f(0, "cause"), "Transferred");
	assert_string_equal(f(2, "connId"), c1);
	assert_string_equal(f(2, "otherDN"), "5003");
	assert_string_equal(f(2, "thirdDN"), "5002");
	assert_string_equal(f(3, "previousConnId"), c2);
	assert_string_equal(state_of(3), "Ringing");
	clear();
	r = reqf("{'request':'RequestAnswerCall','dn':'5003','connId':'%s'}",
	    c1);
	expect("EventEstablished@5003", r);
	clear();
	/* single step to the queue, with an agent ready */
	req("{'request':'RequestAgentLogin','dn':'5004','agentId':'7004',"
	    "'workMode':'ManualIn'}");
	clear();
	r = reqf("{'request':'RequestSingleStepTransfer','dn':'5003',"
	    "'connId':'%s','destination':'6000'}", c1);
	expect("EventReleased@5003 EventPartyChanged@5001 EventQueued@6000 "
	    "EventDiverted@6000 EventRinging@5004", r);
}

/* test_conference - a conference with an outside party that answers by timer */
static void
test_conference(void **st)
{
	char		 c1[17], c2[17];
	const char	*r;

	snprintf(c1, sizeof(c1), "%s", connect());
	reqf("{'request':'RequestInitiateConference','dn':'5001','connId':"
	    "'%s','destination':'+15550100'}", c1);
	assert_string_equal(trace(), "EventHeld@5001 EventDialing@5001");
	snprintf(c2, sizeof(c2), "%s", f(1, "connId"));
	clear();
	/* the outside party answers after the ring time */
	assert_int_equal(vs_next_due(M), T0 + 1000);
	vs_run(M, T0 + 999);
	assert_string_equal(trace(), "");
	vs_run(M, T0 + 1000);
	assert_string_equal(trace(), "EventEstablished@5001");
	clear();
	r = reqf("{'request':'RequestCompleteConference','dn':'5001',"
	    "'connId':'%s','consultConnId':'%s'}", c1, c2);
	expect("EventReleased@5001 EventRetrieved@5001 EventPartyAdded@5001 "
	    "EventPartyAdded@5002", r);
	assert_string_equal(f(2, "thirdDN"), "+15550100");
	assert_string_equal(f(3, "thisDNRole"), "ConferenceMember");
	clear();
	/* the outside party hangs up: the two others go on */
	r = reqf("{'request':'SimRelease','connId':'%s'}", c1);
	expect("EventPartyDeleted@5001 EventPartyDeleted@5002", r);
	clear();
	r = reqf("{'request':'RequestReleaseCall','dn':'5002','connId':'%s'}",
	    c1);
	expect("EventReleased@5002 EventReleased@5001", r);
	assert_int_equal(vs_calls(M), 0);
}

/* test_user_data - attach keeps, update replaces, delete removes */
static void
test_user_data(void **st)
{
	char		 c[17];
	const char	*r;
	json_t		*want;

	snprintf(c, sizeof(c), "%s", connect());
	r = reqf("{'request':'RequestAttachUserData','dn':'5001','connId':"
	    "'%s','userData':{'a':1}}", c);
	expect("EventAttachedDataChanged@5001 EventAttachedDataChanged@5002",
	    r);
	clear();
	reqf("{'request':'RequestAttachUserData','dn':'5001','connId':'%s',"
	    "'userData':{'a':2,'b':{'c':[1]}}}", c);
	want = J("{'a':1,'b':{'c':[1]}}");
	assert_true(json_equal(json_object_get(ev(0), "userData"), want));
	json_decref(want);
	clear();
	reqf("{'request':'RequestUpdateUserData','dn':'5002','connId':'%s',"
	    "'userData':{'a':2}}", c);
	clear();
	reqf("{'request':'RequestDeleteUserData','dn':'5002','connId':'%s',"
	    "'keys':['b','zz']}", c);
	want = J("{'a':2}");
	assert_true(json_equal(json_object_get(ev(1), "userData"), want));
	clear();
	reqf("{'request':'RequestHoldCall','dn':'5002','connId':'%s'}", c);
	assert_true(json_equal(json_object_get(ev(0), "userData"), want));
	json_decref(want);
	clear();
	r = req("{'request':'RequestSendUserEvent','dn':'5003','userData':"
	    "{'x':'y'}}");
	expect("EventUserEvent@5003", r);
	assert_true(json_is_null(json_array_get(json_array_get(S.states, 0),
	    0)));
}

/* test_agents - login, ready, not ready, logout and their errors */
static void
test_agents(void **st)
{
	const char	*r;

	error_is(req("{'request':'RequestAgentLogin','dn':'5001','agentId':"
	    "'7999'}"), "UnknownAgent");
	error_is(req("{'request':'RequestAgentLogin','dn':'5001'}"),
	    "BadRequest");
	error_is(req("{'request':'RequestAgentNotReady','dn':'5001'}"),
	    "AgentNotLoggedIn");
	r = req("{'request':'RequestAgentLogin','dn':'5001','agentId':'7001'}");
	expect("EventAgentLogin@5001 EventAgentNotReady@5001", r);
	assert_string_equal(f(0, "agentId"), "7001");
	clear();
	error_is(req("{'request':'RequestAgentLogin','dn':'5001','agentId':"
	    "'7002'}"), "AgentAlreadyLoggedIn");
	error_is(req("{'request':'RequestAgentLogin','dn':'5002','agentId':"
	    "'7001'}"), "AgentAlreadyLoggedIn");
	error_is(req("{'request':'RequestAgentReady','dn':'5001','workMode':"
	    "'Busy'}"), "BadRequest");
	r = req("{'request':'RequestAgentReady','dn':'5001'}");
	expect("EventAgentReady@5001", r);
	assert_string_equal(f(0, "workMode"), "ManualIn");
	clear();
	r = req("{'request':'RequestAgentNotReady','dn':'5001','workMode':"
	    "'AfterCallWork','reason':42}");
	expect("EventAgentNotReady@5001", r);
	assert_string_equal(f(0, "reason"), "42");
	clear();
	error_is(req("{'request':'RequestAgentLogout','dn':'5001','agentId':"
	    "'7002'}"), "AgentNotLoggedIn");
	r = req("{'request':'RequestAgentLogout','dn':'5001'}");
	expect("EventAgentLogout@5001", r);
	assert_string_equal(f(0, "agentId"), "7001");
	assert_true(json_is_null(json_array_get(json_array_get(S.states, 0),
	    1)));
}

/* test_inbound - routing point, queue, longest idle agent, patience */
static void
test_inbound(void **st)
{
	const char	*r;

	req("{'request':'RequestAgentLogin','dn':'5003','agentId':'7003',"
	    "'workMode':'ManualIn'}");
	req("{'request':'RequestAgentLogin','dn':'5001','agentId':'7001',"
	    "'workMode':'ManualIn'}");
	clear();
	r = req("{'request':'SimInboundCall','from':'+15550123','to':'6100'}");
	expect("EventRinging@6100 EventDiverted@6100 EventQueued@6000 "
	    "EventDiverted@6000 EventRinging@5003", r);
	assert_string_equal(f(4, "otherDN"), "+15550123");
	assert_string_equal(f(4, "callType"), "Inbound");
	assert_string_equal(f(4, "agentId"), "7003");
	clear();
	r = req("{'request':'SimInboundCall','to':'6000','patience':2}");
	expect("EventQueued@6000 EventDiverted@6000 EventRinging@5001", r);
	clear();
	r = req("{'request':'SimInboundCall','to':'6000','patience':2}");
	expect("EventQueued@6000", r);
	clear();
	vs_run(M, T0 + 2000);
	/* both unanswered calls are abandoned; the queued one reached 5001
	 * once it was free, just before its caller gave up */
	assert_string_equal(trace(), "EventAbandoned@5001 EventDiverted@6000 "
	    "EventRinging@5001 EventAbandoned@5001");
	assert_string_equal(f(0, "cause"), "Abandoned");
	assert_int_equal(vs_calls(M), 1);
	clear();
	error_is(req("{'request':'SimInboundCall','to':'8000'}"), "UnknownDN");
	error_is(req("{'request':'SimInboundCall','to':'5003'}"), "Busy");
	error_is(req("{'request':'SimInboundCall','to':'6000','patience':"
	    "'x'}"), "BadRequest");
}

/* routed_rp - virtual queue 6300 (dbid 23) and routing point 6200 (dbid
 * 24), which names it: the routing worker routes 6200's calls */
static void
routed_rp(void)
{
	add("DN", 23, "{'number':'6300','type':'VirtualQueue','switch':1}");
	add("DN", 24, "{'number':'6200','type':'RoutingPoint','switch':1,"
	    "'virtualQueue':23}");
}

/* role_of - the role of the call in the state written with event i */
static const char *
role_of(size_t i)
{
	json_t	*st = json_array_get(json_array_get(S.states, i), 1);

	st = json_array_get(json_object_get(st, "calls"), 0);
	return json_string_value(json_object_get(st, "role"));
}

/* state_gone - the state written with event i deletes the DN's field */
static void
state_gone(size_t i)
{
	assert_true(json_is_null(json_array_get(json_array_get(S.states, i),
	    1)));
}

/*
 * test_route_request - an inbound call at a routing point with a
 * virtualQueue asks the routing worker (EventRouteRequest) and waits,
 * ringing; RequestRouteCall sends it on (EventRouteUsed) to an agent's
 * phone, who answers.  No EventRinging, no EventDiverted on the RP.
 */
static void
test_route_request(void **st)
{
	const char	*r;
	char		 c[17];
	json_t		*want = J("{'Segment':'Gold'}");

	routed_rp();
	assert_true(dir_routed(dir_dn(D, "6200")));
	assert_false(dir_routed(dir_dn(D, "6100")));
	assert_false(dir_routed(dir_dn(D, "6300")));
	req("{'request':'RequestAgentLogin','dn':'5003','agentId':'7003',"
	    "'workMode':'ManualIn'}");
	clear();
	r = req("{'request':'SimInboundCall','from':'+15550123','to':'6200',"
	    "'userData':{'Segment':'Gold'}}");
	expect("EventRouteRequest@6200", r);
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	assert_string_equal(f(0, "thisDNRole"), "RoutingPoint");
	assert_string_equal(f(0, "otherDN"), "+15550123");
	assert_string_equal(f(0, "otherDNRole"), "Origination");
	assert_string_equal(f(0, "dnis"), "6200");
	assert_string_equal(f(0, "callType"), "Inbound");
	assert_non_null(f(0, "callId"));
	assert_non_null(f(0, "callThreadId"));
	assert_null(f(0, "thirdDN"));
	assert_true(json_equal(json_object_get(ev(0), "userData"), want));
	assert_string_equal(state_of(0), "Ringing");
	assert_string_equal(role_of(0), "RoutingPoint");
	clear();
	/* the agent is Ready and idle, the queue 6000 has her: nothing moves
	 * until the routing worker says where */
	vs_run(M, T0 + 5000);
	assert_string_equal(trace(), "");
	r = reqf("{'request':'RequestRouteCall','dn':'6200','connId':'%s',"
	    "'destination':'5003'}", c);
	expect("EventRouteUsed@6200 EventRinging@5003", r);
	assert_string_equal(f(0, "connId"), c);
	assert_string_equal(f(0, "thirdDN"), "5003");
	assert_string_equal(f(0, "otherDN"), "+15550123");
	assert_string_equal(f(0, "thisDNRole"), "RoutingPoint");
	assert_null(f(0, "cause"));
	assert_true(json_equal(json_object_get(ev(0), "userData"), want));
	state_gone(0);
	assert_string_equal(f(1, "otherDN"), "+15550123");
	assert_string_equal(f(1, "thirdDN"), "6200");
	assert_string_equal(f(1, "agentId"), "7003");
	assert_string_equal(f(1, "callType"), "Inbound");
	assert_true(json_equal(json_object_get(ev(1), "userData"), want));
	assert_string_equal(state_of(1), "Ringing");
	clear();
	r = reqf("{'request':'RequestAnswerCall','dn':'5003','connId':'%s'}",
	    c);
	expect("EventEstablished@5003", r);
	clear();
	/* the caller hangs up: only the phone hears of it */
	r = reqf("{'request':'SimRelease','connId':'%s'}", c);
	expect("EventReleased@5003", r);
	assert_int_equal(vs_calls(M), 0);
	check_all();
	json_decref(want);
}

/*
 * test_route_request_other_ways - a call reaches the routed RP from a
 * phone (RequestMakeCall), by a transfer, and from the traffic generator;
 * it is routed to a queue and to an outside number
 */
static void
test_route_request_other_ways(void **st)
{
	const char	*r;
	char		 c[17], c2[17];

	routed_rp();
	r = req("{'request':'RequestMakeCall','dn':'5001','destination':"
	    "'6200','userData':{'k':1}}");
	expect("EventDialing@5001 EventRouteRequest@6200", r);
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	assert_string_equal(f(1, "otherDN"), "5001");
	assert_string_equal(f(1, "callType"), "Internal");
	assert_string_equal(f(1, "dnis"), "6200");
	assert_string_equal(state_of(1), "Ringing");
	clear();
	/* routed to the queue: the dialing phone is told who has the call */
	r = reqf("{'request':'RequestRouteCall','dn':'6200','connId':'%s',"
	    "'destination':'6000'}", c);
	expect("EventRouteUsed@6200 EventPartyChanged@5001 EventQueued@6000",
	    r);
	assert_string_equal(f(0, "thirdDN"), "6000");
	assert_string_equal(f(0, "otherDN"), "5001");
	assert_string_equal(f(1, "otherDN"), "6000");
	assert_string_equal(f(1, "thirdDN"), "6200");
	assert_string_equal(f(2, "thirdDN"), "6200");
	assert_string_equal(f(2, "otherDN"), "5001");
	clear();
	/* a single-step transfer to the RP: it asks, with the transferring
	 * DN as thirdDN */
	req("{'request':'RequestMakeCall','dn':'5003','destination':'5004'}");
	snprintf(c2, sizeof(c2), "%s", f(0, "connId"));
	reqf("{'request':'RequestAnswerCall','dn':'5004','connId':'%s'}", c2);
	clear();
	r = reqf("{'request':'RequestSingleStepTransfer','dn':'5004',"
	    "'connId':'%s','destination':'6200'}", c2);
	expect("EventReleased@5004 EventPartyChanged@5003 "
	    "EventRouteRequest@6200", r);
	assert_string_equal(f(2, "connId"), c2);
	assert_string_equal(f(2, "otherDN"), "5003");
	assert_string_equal(f(2, "thirdDN"), "5004");
	assert_string_equal(f(2, "callType"), "Internal");
	assert_string_equal(state_of(2), "Ringing");
	clear();
	/* an outside destination rings out; no tenant DN is left to tell */
	reqf("{'request':'SimInboundCall','to':'6200','patience':0}");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	r = reqf("{'request':'RequestRouteCall','dn':'6200','connId':'%s',"
	    "'destination':'+15550177'}", c);
	expect("EventRouteUsed@6200", r);
	assert_string_equal(f(0, "thirdDN"), "+15550177");
	/* 6200 still holds the transferred call */
	assert_string_equal(state_of(0), "Ringing");
	assert_int_equal(vs_calls(M), 3);
	check_all();
}

/*
 * test_route_request_traffic - generated calls sent to the routed RP ask
 * the routing worker; unrouted, each waits until its caller gives up
 */
static void
test_route_request_traffic(void **st)
{
	struct vs_params	 p = params;
	json_t			*e;
	size_t			 i, asked = 0, gone = 0;

	p.rate = 1;
	p.target = "6200";
	teardown(NULL);
	setup_with(&p);
	routed_rp();
	vs_synced(M, T0);
	for (uint64_t t = T0; t <= T0 + 600000; t += 1000)
		vs_run(M, t);
	json_array_foreach(S.events, i, e) {
		assert_string_equal(json_string_value(json_object_get(e,
		    "thisDN")), "6200");
		if (strcmp(json_string_value(json_object_get(e, "event")),
		    "EventRouteRequest") == 0)
			asked++;
		else {
			assert_string_equal(json_string_value(json_object_get(e,
			    "event")), "EventAbandoned");
			gone++;
		}
	}
	assert_true(asked > 400 && asked < 800);
	assert_true(gone > 0 && gone <= asked && asked - gone < 150);
	assert_int_equal(vs_calls(M), asked - gone);
	check_all();
}

/*
 * test_route_request_abandoned - the caller gives up while the call waits
 * at the routed RP (patience, or hangs up): EventAbandoned there, as in a
 * queue
 */
static void
test_route_request_abandoned(void **st)
{
	const char	*r;
	char		 c[17];

	routed_rp();
	req("{'request':'SimInboundCall','to':'6200','patience':2}");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	vs_run(M, T0 + 1999);
	assert_string_equal(trace(), "");
	vs_run(M, T0 + 2000);
	assert_string_equal(trace(), "EventAbandoned@6200");
	assert_string_equal(f(0, "connId"), c);
	assert_string_equal(f(0, "cause"), "Abandoned");
	assert_string_equal(f(0, "thisDNRole"), "RoutingPoint");
	state_gone(0);
	clear();
	/* too late to route it */
	error_is(reqf("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s','destination':'5001'}", c), "NoSuchCall");
	/* SimRelease of the caller */
	req("{'request':'SimInboundCall','to':'6200','from':'+15550124'}");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	r = reqf("{'request':'SimRelease','connId':'%s'}", c);
	expect("EventAbandoned@6200", r);
	assert_string_equal(f(0, "cause"), "Abandoned");
	assert_string_equal(f(0, "connId"), c);
	state_gone(0);
	assert_int_equal(vs_calls(M), 0);
	check_all();
}

/*
 * test_route_request_errors - RequestRouteCall that cannot be done gets
 * one EventError with its requestId and the call waits on at the RP
 */
static void
test_route_request_errors(void **st)
{
	const char	*r;
	char		 c[17];

	routed_rp();
	req("{'request':'SimInboundCall','to':'6200'}");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	error_is(reqf("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s','destination':'4242'}", c), "UnknownDN");
	error_is(reqf("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s','destination':'8000'}", c), "UnknownDN");
	error_is(reqf("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s','destination':'6200'}", c), "InvalidState");
	error_is(reqf("{'request':'RequestRouteCall','dn':'6100','connId':"
	    "'%s','destination':'5001'}", c), "NoSuchCall");
	error_is(req("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'0123450000000099','destination':'5001'}"), "NoSuchCall");
	error_is(reqf("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s'}", c), "BadRequest");
	req("{'request':'RequestMakeCall','dn':'5001','destination':'5002'}");
	clear();
	error_is(reqf("{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s','destination':'5002'}", c), "Busy");
	/* nothing changed: it waits, and can still be routed */
	assert_int_equal(vs_calls(M), 2);
	check_all();
	r = reqf("{'request':'RequestRouteCall','dn':'6200','connId':'%s',"
	    "'destination':'5003'}", c);
	expect("EventRouteUsed@6200 EventRinging@5003", r);
	check_all();
}

/*
 * test_route_request_config - a routing point follows its configuration:
 * without a virtualQueue voicesim diverts its calls to the queue itself,
 * with one the routing worker is asked; a call asked about keeps waiting
 * for the routing worker when the virtualQueue goes
 */
static void
test_route_request_config(void **st)
{
	const char	*r;
	char		 c[17];

	add("DN", 23, "{'number':'6300','type':'VirtualQueue','switch':1}");
	r = req("{'request':'SimInboundCall','to':'6100'}");
	expect("EventRinging@6100 EventDiverted@6100 EventQueued@6000", r);
	clear();
	add("DN", 21, "{'number':'6100','type':'RoutingPoint','switch':1,"
	    "'virtualQueue':23}");
	r = req("{'request':'SimInboundCall','to':'6100'}");
	expect("EventRouteRequest@6100", r);
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	/* VirtualRoutingPoint too */
	add("DN", 25, "{'number':'6101','type':'VirtualRoutingPoint',"
	    "'switch':1,'virtualQueue':23}");
	r = req("{'request':'SimInboundCall','to':'6101'}");
	expect("EventRouteRequest@6101", r);
	clear();
	add("DN", 21, "{'number':'6100','type':'RoutingPoint','switch':1}");
	r = req("{'request':'SimInboundCall','to':'6100'}");
	expect("EventRinging@6100 EventDiverted@6100 EventQueued@6000", r);
	clear();
	r = reqf("{'request':'RequestRouteCall','dn':'6100','connId':'%s',"
	    "'destination':'5001'}", c);
	expect("EventRouteUsed@6100 EventRinging@5001", r);
	check_all();
}

static void
collect(const char *dn, json_t *st, void *arg)
{
	vsr_check(S.replay, dn, st);
	if (json_object_get(arg, dn) != NULL)
		fail_msg("DN %s flushed twice", dn);
	json_object_set_new(arg, dn, st ? json_incref(st) : json_null());
}

/* test_batch - flushed at the end of a batch, each DN that its events were
 * about comes once, with its state at the end; then none is due */
static void
test_batch(void **st)
{
	json_t	*got = json_object(), *c;

	S.batched = 1;
	req("{'request':'RequestAgentLogin','dn':'5003','agentId':'7003',"
	    "'workMode':'ManualIn'}");
	req("{'request':'SimInboundCall','from':'+15550123','to':'6100'}");
	req("{'request':'SimInboundCall','to':'6000','patience':2}");
	assert_string_equal(trace(), "EventAgentLogin@5003 "
	    "EventAgentReady@5003 EventRinging@6100 EventDiverted@6100 "
	    "EventQueued@6000 EventDiverted@6000 EventRinging@5003 "
	    "EventQueued@6000");
	vs_flush(M, collect, got);
	assert_int_equal(json_object_size(got), 3);
	assert_true(json_is_null(json_object_get(got, "6100")));
	c = json_object_get(json_object_get(got, "6000"), "calls");
	assert_int_equal(json_array_size(c), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(c,
	    0), "state")), "Queued");
	c = json_object_get(got, "5003");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c,
	    "agent"), "state")), "Ready");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(c, "calls"), 0), "state")), "Ringing");
	json_object_clear(got);
	vs_flush(M, collect, got);
	assert_int_equal(json_object_size(got), 0);
	/* the queued caller gives up: 6000's field goes */
	vs_run(M, T0 + 2000);
	vs_flush(M, collect, got);
	assert_int_equal(json_object_size(got), 1);
	assert_true(json_is_null(json_object_get(got, "6000")));
	check_all();
	json_decref(got);
}

/* run_traffic - a seeded run for 120 s stepped by step ms: its trace */
static char *
run_traffic(uint64_t step)
{
	struct vs_params	 p = params;
	json_t			*e;
	char			*out, *s;
	size_t			 i, n = 0, len = 1;

	p.seed = 99;
	p.agents = 3;
	p.rate = 0.5;
	p.notready = 0.3;
	teardown(NULL);
	setup_with(&p);
	S.batched = 1;
	vs_synced(M, T0);
	flush();
	for (uint64_t t = T0; t < T0 + 120000; t += step) {
		vs_run(M, t);
		flush();
		if (t % 10000 == 0)
			check_all();
	}
	check_all();
	json_array_foreach(S.events, i, e)
		len += 64;
	out = xcalloc(1, len);
	json_array_foreach(S.events, i, e) {
		s = out + n;
		n += (size_t)snprintf(s, len - n, "%s@%s:%s ",
		    json_string_value(json_object_get(e, "event")),
		    json_string_value(json_object_get(e, "thisDN")),
		    json_string_value(json_object_get(e, "otherDN")) ?
		    json_string_value(json_object_get(e, "otherDN")) : "");
	}
	return out;
}

/* test_traffic_deterministic - same seed, same run, however stepped */
static void
test_traffic_deterministic(void **st)
{
	char	*a, *b;

	a = run_traffic(1);
	b = run_traffic(777);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "EventAgentLogin@5004"));
	assert_non_null(strstr(a, "EventQueued@6000"));
	assert_non_null(strstr(a, "EventEstablished@500"));
	assert_non_null(strstr(a, "EventAgentNotReady@500"));
	assert_null(strstr(a, "EventAgentLogin@5001"));	/* only 3 */
	free(a);
	free(b);
}

/* test_ln - the logarithm behind exponential draws */
static void
test_ln(void **st)
{
	assert_true(ln(1.0) == 0.0);
	assert_true(ln(0.5) + 0.6931471805599453 < 1e-12 &&
	    ln(0.5) + 0.6931471805599453 > -1e-12);
	assert_true(ln(1e-9) + 20.72326583694641 < 1e-9 &&
	    ln(1e-9) + 20.72326583694641 > -1e-9);
	assert_true(ln(0.9) + 0.10536051565782628 < 1e-12 &&
	    ln(0.9) + 0.10536051565782628 > -1e-12);
}

/* main - set up, run the loop, clean up */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_make_answer_hold_release,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conference, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_user_data, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_agents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_request, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_route_request_other_ways,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_request_traffic,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_request_abandoned,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_request_errors,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_request_config,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_traffic_deterministic,
		    setup, teardown),
		cmocka_unit_test(test_ln),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
