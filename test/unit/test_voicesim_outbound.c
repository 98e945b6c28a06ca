/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_voicesim_outbound - the voice simulator's predictive calls
 * (tools/voicesim, docs/outbound.md): RequestMakePredictiveCall and the
 * outcome of each called party on the model's clock, the answered call
 * waiting at its origination DN, RequestRouteCall to a phone, a queue or
 * a generated agent, the customer's patience, the errors, a seeded mix
 * whose proportions and order are those asked for, and a dialler's load
 * flushed in batches as voicesim writes it.  Every state flushed is
 * checked against the replay of the events before it (lib/vsreplay).
 * dir.c and model.c are included whole: they are pure.
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

static struct dir	*D;
static struct vs	*M;
static json_t		*E;		/* the events, in order */
static json_t		*S;		/* per event: [dn, its state right
					 * after it]; NULL: not kept */
static struct vsreplay	*R;		/* the events replayed */
static int		 batched;	/* flushed by the test */
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
	if ((v = json_loads(s, 0, &je)) == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, s);
	free(s);
	return v;
}

/* sink - keep a copy of each event; unless batched, flush at once: the
 * state of its DN right after it */
static void
sink(const struct vs_out *o, void *arg)
{
	struct vsr_one	one = { R, NULL };

	json_array_append_new(E, json_deep_copy(o->event));
	vsr_event(R, o->event);
	if (batched)
		return;
	vs_flush(M, vsr_keep, &one);
	if (S != NULL)
		json_array_append_new(S, one.pair ? one.pair :
		    json_pack("[n, n]"));
	else
		json_decref(one.pair);
}

/* add - one configuration object */
static void
add(const char *type, json_int_t dbid, const char *obj)
{
	json_t	*j = J(obj);

	dir_apply(D, type, dbid, j);
	json_decref(j);
}

/* tenant - phones 5001-5003 with agents 7001-7003 on places; queue 6000,
 * routing point 6100, virtual queue 6200 (origination), trunk 8000 */
static void
tenant(void)
{
	char	buf[256];
	int	i;

	add("Switch", 1, "{'name':'sw'}");
	add("DN", 20, "{'number':'6000','type':'ACDQueue','switch':1}");
	add("DN", 21, "{'number':'6100','type':'RoutingPoint','switch':1}");
	add("DN", 22, "{'number':'6200','type':'VirtualQueue','switch':1}");
	add("DN", 23, "{'number':'8000','type':'Trunk','switch':1}");
	for (i = 0; i < 3; i++) {
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
		add("Person", 50 + i, buf);
	}
}

/* Fixed ring time 4 s, busy after 2 s, patience 30 s; every one answers. */
static const struct vs_params params = {
	.region = "local", .boot = "0123456789abcdef", .seed = 1,
	.ring_ms = 1000, .patience_ms = 60000, .talk_ms = 5000,
	.wrap_ms = 2000, .break_ms = 3000, .notready = 0.5,
	.external_min = 7, .busy_suffix = "0199",
	.mix = { [VS_OC_ANSWER] = 100 },
	.out_ring_min_ms = 4000, .out_ring_max_ms = 4000,
	.busy_after_ms = 2000, .out_patience_ms = 30000,
	.agent_answer_ms = 500,
};

/* start - the test tenant and a model with p */
static void
start(const struct vs_params *p)
{
	D = dir_new();
	tenant();
	E = json_array();
	S = json_array();
	R = vsr_new();
	batched = 0;
	M = vs_new(p, D, sink, NULL);
	nreq = 0;
}

/* stop - free the model, the tenant and the events */
static void
stop(void)
{
	vs_free(M);
	dir_free(D);
	json_decref(E);
	json_decref(S);
	vsr_free(R);
	R = NULL;
	M = NULL;
	D = NULL;
}

/* setup - the default params */
static int
setup(void **st)
{
	start(&params);
	return 0;
}

/* teardown - after setup or a test's own start */
static int
teardown(void **st)
{
	stop();
	return 0;
}

/* reqf - send a request (JSON with ', printf), at time now */
static const char *
reqf(uint64_t now, const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;
	json_t	*j;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	j = J(buf);
	snprintf(rid, sizeof(rid), "r%d", ++nreq);
	json_object_set_new(j, "requestId", json_string(rid));
	vs_request(M, j, now);
	json_decref(j);
	return rid;
}

/* trace - "EventX@dn ..." of the events seen so far */
static char *
trace(void)
{
	static char	 buf[8192];
	json_t		*e;
	size_t		 i, n = 0;
	const char	*dn;

	buf[0] = '\0';
	json_array_foreach(E, i, e) {
		dn = json_string_value(json_object_get(e, "thisDN"));
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s@%s",
		    i ? " " : "", json_string_value(json_object_get(e,
		    "event")), dn ? dn : "-");
		if (n >= sizeof(buf))
			break;
	}
	return buf;
}

/* clear - forget the events seen so far */
static void
clear(void)
{
	json_array_clear(E);
	json_array_clear(S);
}

/* f - string member name of event i, or fail */
static const char *
f(size_t i, const char *name)
{
	json_t	*e = json_array_get(E, i);

	if (e == NULL)
		fail_msg("no event %zu: %s", i, trace());
	return json_string_value(json_object_get(e, name));
}

/* expect - the trace is want; only the first event has the requestId r */
static void
expect(const char *want, const char *r)
{
	size_t	i;

	assert_string_equal(trace(), want);
	if (r != NULL)
		assert_string_equal(f(0, "requestId"), r);
	for (i = r != NULL ? 1 : 0; i < json_array_size(E); i++)
		assert_null(f(i, "requestId"));
}

/* error_is - the request got exactly one EventError with code */
static void
error_is(const char *r, const char *code)
{
	assert_int_equal(json_array_size(E), 1);
	assert_string_equal(f(0, "event"), "EventError");
	assert_string_equal(f(0, "code"), code);
	assert_string_equal(f(0, "requestId"), r);
	clear();
}

/* state_of - the state of the first call written with event i */
static const char *
state_of(size_t i)
{
	json_t	*st = json_array_get(json_array_get(S, i), 1);

	st = json_array_get(json_object_get(st, "calls"), 0);
	return json_string_value(json_object_get(st, "state"));
}

/* dial - a predictive call from dn to dest with extra fields; its connId */
static const char *
dial(uint64_t now, const char *dn, const char *dest, const char *extra)
{
	static char	conn[17];

	reqf(now, "{'request':'RequestMakePredictiveCall','dn':'%s',"
	    "'destination':'%s'%s}", dn, dest, extra);
	if (strcmp(f(0, "event"), "EventDialing") != 0)
		fail_msg("not dialing: %s", trace());
	snprintf(conn, sizeof(conn), "%s", f(0, "connId"));
	clear();
	return conn;
}

/* agent_in - agent on dn, Ready */
static void
agent_in(const char *dn, const char *agent)
{
	reqf(T0, "{'request':'RequestAgentLogin','dn':'%s','agentId':'%s',"
	    "'workMode':'ManualIn'}", dn, agent);
	clear();
}

/* test_answer_and_route - dialing, answered, waiting, routed to a phone */
static void
test_answer_and_route(void **st)
{
	const char	*r;
	char		 c[17];
	json_t		*ud;

	agent_in("5002", "7002");
	r = reqf(T0, "{'request':'RequestMakePredictiveCall','dn':'6200',"
	    "'destination':'+15550100','callerId':'+15559999','ringTimeout':"
	    "25,'cpd':true,'userData':{'GSW_RECORD_HANDLE':7}}");
	expect("EventDialing@6200", r);
	assert_string_equal(f(0, "callType"), "Outbound");
	assert_string_equal(f(0, "otherDN"), "+15550100");
	assert_string_equal(f(0, "thisDNRole"), "Origination");
	assert_non_null(f(0, "callId"));
	assert_string_equal(f(0, "callThreadId"), f(0, "callId"));
	assert_string_equal(state_of(0), "Dialing");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	/* the person answers after the ring time, 4 s */
	assert_int_equal(vs_next_due(M), T0 + 4000);
	vs_run(M, T0 + 3999);
	assert_string_equal(trace(), "");
	vs_run(M, T0 + 4000);
	expect("EventEstablished@6200", NULL);
	assert_string_equal(f(0, "callResult"), "Answer");
	assert_string_equal(f(0, "connId"), c);
	assert_string_equal(state_of(0), "Established");
	clear();
	/* routed to the agent's phone: it rings there with the data */
	r = reqf(T0 + 5000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s','destination':'5002'}", c);
	expect("EventReleased@6200 EventRinging@5002", r);
	assert_string_equal(f(0, "cause"), "Transferred");
	assert_true(json_is_null(json_array_get(json_array_get(S, 0), 1)));
	assert_string_equal(f(1, "otherDN"), "+15550100");
	assert_string_equal(f(1, "thirdDN"), "6200");
	assert_string_equal(f(1, "callType"), "Outbound");
	assert_string_equal(f(1, "agentId"), "7002");
	ud = json_object_get(json_array_get(E, 1), "userData");
	assert_int_equal(json_integer_value(json_object_get(ud,
	    "GSW_RECORD_HANDLE")), 7);
	assert_string_equal(state_of(1), "Ringing");
	clear();
	r = reqf(T0 + 6000, "{'request':'RequestAnswerCall','dn':'5002',"
	    "'connId':'%s'}", c);
	expect("EventEstablished@5002", r);
	clear();
	/* the patience is over, but an agent has the call: nothing */
	vs_run(M, T0 + 40000);
	assert_string_equal(trace(), "");
	/* the customer hangs up: the phone is told, no one else */
	r = reqf(T0 + 41000, "{'request':'SimRelease','connId':'%s'}", c);
	expect("EventReleased@5002", r);
	assert_string_equal(f(0, "cause"), "Normal");
	assert_int_equal(vs_calls(M), 0);
}

/* outcome - a model with every party doing oc; one call from 8000 with
 * extra fields: the events until it is over or answered, and when */
static uint64_t
outcome(enum vs_outcome oc, const char *extra)
{
	struct vs_params	p = params;
	uint64_t		due;

	stop();
	memset(p.mix, 0, sizeof(p.mix));
	p.mix[oc] = 100;
	start(&p);
	dial(T0, "8000", "+15550100", extra);
	due = vs_next_due(M);
	vs_run(M, due);
	return due - T0;
}

/* test_outcomes - each kind of called party, with and without CPD */
static void
test_outcomes(void **st)
{
	char	line[512];

	assert_int_equal(outcome(VS_OC_BUSY, ""), 2000);
	expect("EventReleased@8000", NULL);
	assert_string_equal(f(0, "cause"), "Busy");
	assert_int_equal(vs_calls(M), 0);
	assert_true(json_is_null(json_array_get(json_array_get(S, 0), 1)));
	assert_int_equal(outcome(VS_OC_SIT, ""), 2000);
	assert_string_equal(f(0, "cause"), "SitInvalidNumber");
	/* no answer: rings until ringTimeout */
	assert_int_equal(outcome(VS_OC_NOANSWER, ",'ringTimeout':7.5"), 7500);
	expect("EventReleased@8000", NULL);
	assert_string_equal(f(0, "cause"), "NoAnswer");
	assert_int_equal(outcome(VS_OC_NOANSWER, ""), 25000);
	/* a person who would answer after the ringTimeout: NoAnswer */
	assert_int_equal(outcome(VS_OC_ANSWER, ",'ringTimeout':3"), 3000);
	assert_string_equal(f(0, "cause"), "NoAnswer");
	vs_outbound_summary(M, line, sizeof(line));
	assert_string_equal(line, "1 predictive calls, NoAnswer 1; routed 0, "
	    "abandoned 0, released by the dialler 0");
	/* a machine: dropped with CPD, established without */
	assert_int_equal(outcome(VS_OC_MACHINE, ",'cpd':true"), 4000);
	expect("EventReleased@8000", NULL);
	assert_string_equal(f(0, "cause"), "AnsweringMachine");
	assert_int_equal(outcome(VS_OC_MACHINE, ",'cpd':false"), 4000);
	expect("EventEstablished@8000", NULL);
	assert_string_equal(f(0, "callResult"), "AnsweringMachine");
	assert_string_equal(state_of(0), "Established");
	assert_int_equal(outcome(VS_OC_FAX, ""), 4000);
	assert_string_equal(f(0, "callResult"), "Fax");
	assert_int_equal(outcome(VS_OC_FAX, ",'cpd':true"), 4000);
	assert_string_equal(f(0, "cause"), "Fax");
	/* --busy-suffix wins over the mix */
	stop();
	start(&params);
	dial(T0, "8000", "+15550199", "");
	vs_run(M, T0 + 2000);
	expect("EventReleased@8000", NULL);
	assert_string_equal(f(0, "cause"), "Busy");
}

/* test_patience - answered and never routed: the customer hangs up */
static void
test_patience(void **st)
{
	char		 c[17], line[512];
	const char	*r;

	snprintf(c, sizeof(c), "%s", dial(T0, "6200", "+15550100", ""));
	vs_run(M, T0 + 4000);
	clear();
	vs_run(M, T0 + 33999);
	assert_string_equal(trace(), "");
	vs_run(M, T0 + 34000);
	expect("EventAbandoned@6200", NULL);
	assert_string_equal(f(0, "cause"), "Abandoned");
	assert_string_equal(f(0, "connId"), c);
	assert_true(json_is_null(json_array_get(json_array_get(S, 0), 1)));
	assert_int_equal(vs_calls(M), 0);
	clear();
	/* routed to a queue with no agent: the same patience runs on */
	snprintf(c, sizeof(c), "%s", dial(T0 + 40000, "6200", "+15550101",
	    ""));
	vs_run(M, T0 + 44000);
	clear();
	r = reqf(T0 + 50000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s','destination':'6000'}", c);
	expect("EventReleased@6200 EventQueued@6000", r);
	assert_string_equal(f(1, "otherDN"), "+15550101");
	clear();
	vs_run(M, T0 + 74000);
	expect("EventAbandoned@6000", NULL);
	vs_outbound_summary(M, line, sizeof(line));
	assert_string_equal(line, "2 predictive calls, Answer 2; routed 1, "
	    "abandoned 2, released by the dialler 0");
}

/* test_release_and_errors - the dialler's release; what is refused */
static void
test_release_and_errors(void **st)
{
	char		 c[17];
	const char	*r;

	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'9999','destination':'+15550100'}"), "UnknownDN");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200','destination':'5001'}"), "InvalidState");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200','destination':'123'}"), "UnknownDN");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200'}"), "BadRequest");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200','destination':'+15550100','ringTimeout':0}"),
	    "BadRequest");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200','destination':'+15550100','ringTimeout':'25'}"),
	    "BadRequest");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200','destination':'+15550100','cpd':1}"), "BadRequest");
	error_is(reqf(T0, "{'request':'RequestMakePredictiveCall','dn':"
	    "'6200','destination':'+15550100','userData':[]}"), "BadRequest");
	assert_int_equal(vs_calls(M), 0);
	/* released while it rings: the customer's outcome never comes */
	snprintf(c, sizeof(c), "%s", dial(T0, "6100", "+15550100", ""));
	error_is(reqf(T0, "{'request':'RequestRouteCall','dn':'6100',"
	    "'connId':'%s','destination':'5001'}", c), "InvalidState");
	r = reqf(T0 + 1000, "{'request':'RequestReleaseCall','dn':'6100',"
	    "'connId':'%s'}", c);
	expect("EventReleased@6100", r);
	assert_string_equal(f(0, "cause"), "Normal");
	assert_int_equal(vs_calls(M), 0);
	clear();
	vs_run(M, T0 + 60000);
	assert_string_equal(trace(), "");
	/* answered: route errors leave it waiting at the DN */
	agent_in("5001", "7001");
	snprintf(c, sizeof(c), "%s", dial(T0 + 60000, "6200", "+15550100",
	    ""));
	vs_run(M, T0 + 64000);
	clear();
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'ffffffffffffffff','destination':'5001'}"),
	    "NoSuchCall");
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'5001',"
	    "'connId':'%s','destination':'5002'}", c), "NoSuchCall");
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s','destination':'4242'}", c), "UnknownDN");
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s','destination':'8000'}", c), "UnknownDN");
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s','destination':'+15550199'}", c), "Busy");
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s'}", c), "BadRequest");
	reqf(T0 + 65000, "{'request':'RequestMakeCall','dn':'5001',"
	    "'destination':'5003'}");
	clear();
	error_is(reqf(T0 + 65000, "{'request':'RequestRouteCall','dn':'6200',"
	    "'connId':'%s','destination':'5001'}", c), "Busy");
	/* still there, still Established; the dialler lets it go */
	r = reqf(T0 + 66000, "{'request':'RequestReleaseCall','dn':'6200',"
	    "'connId':'%s'}", c);
	expect("EventReleased@6200", r);
	assert_string_equal(f(0, "cause"), "Normal");
	assert_int_equal(vs_calls(M), 1);	/* 5001's own call */
	clear();
	vs_run(M, T0 + 200000);
	assert_string_equal(trace(), "");
}

/* test_sim_answer - SimAnswer makes the customer a person, now */
static void
test_sim_answer(void **st)
{
	char		 c[17];
	const char	*r;

	snprintf(c, sizeof(c), "%s", dial(T0, "8000", "+15550100", ""));
	r = reqf(T0 + 100, "{'request':'SimAnswer','connId':'%s'}", c);
	expect("EventEstablished@8000", r);
	assert_string_equal(f(0, "callResult"), "Answer");
	clear();
	vs_run(M, T0 + 4000);		/* the drawn answer is void */
	assert_string_equal(trace(), "");
	/* the customer hangs up while waiting: abandoned */
	r = reqf(T0 + 5000, "{'request':'SimRelease','connId':'%s'}", c);
	expect("EventAbandoned@8000", r);
}

/* test_generated_agents - routed calls to generated agents, who answer
 * after agent_answer_ms, talk, wrap up, and never break with notready 0 */
static void
test_generated_agents(void **st)
{
	struct vs_params	 p = params;
	char			 c[17], *d;
	json_t			*e;
	size_t			 i, k, n = 0;
	uint64_t		 t = T0;

	stop();
	p.agents = 1;
	p.notready = 0;
	p.dist = VS_DIST_FIXED;
	start(&p);
	vs_synced(M, T0);
	expect("EventAgentLogin@5001 EventAgentReady@5001", NULL);
	clear();
	for (k = 0; k < 20; k++, t += 20000) {
		snprintf(c, sizeof(c), "%s", dial(t, "6200", "+15550100", ""));
		vs_run(M, t + 4000);
		reqf(t + 4000, "{'request':'RequestRouteCall','dn':'6200',"
		    "'connId':'%s','destination':'5001'}", c);
		vs_run(M, t + 19999);
		json_array_foreach(E, i, e) {
			d = json_dumps(e, 0);
			assert_null(strstr(d, "AuxWork"));	/* no break */
			free(d);
			n += strcmp(json_string_value(json_object_get(e,
			    "event")), "EventEstablished") == 0 &&
			    strcmp(json_string_value(json_object_get(e,
			    "thisDN")), "5001") == 0;
		}
		clear();
	}
	assert_int_equal(n, 20);
	/* one call: answer 0.5 s after ringing, 5 s talk (and the 1 ms every
	 * drawn time gets), 2 s wrap-up */
	clear();
	snprintf(c, sizeof(c), "%s", dial(t, "6200", "+15550100", ""));
	vs_run(M, t + 4000);
	reqf(t + 4000, "{'request':'RequestRouteCall','dn':'6200','connId':"
	    "'%s','destination':'5001'}", c);
	clear();
	assert_int_equal(vs_next_due(M), t + 4500);
	vs_run(M, t + 4500);
	expect("EventEstablished@5001", NULL);
	clear();
	vs_run(M, t + 9500);
	assert_string_equal(trace(), "");
	vs_run(M, t + 9501);
	expect("EventReleased@5001 EventAgentNotReady@5001", NULL);
	assert_string_equal(f(1, "workMode"), "AfterCallWork");
	clear();
	vs_run(M, t + 11501);
	expect("EventAgentReady@5001", NULL);
}

static size_t	flushed(void);

/* mix_run - n calls with a 30/15/15/40 mix: each one's result, in order.
 * The calls are placed 5 ms apart, as a dialler would, so that about 20
 * ring at once; the answered ones wait at 6200 for 30 s, hundreds of
 * them: its state is flushed every 20 calls, as voicesim writes it once a
 * batch (built with each event it was quadratic: 9 GB when kept in S, 9 s
 * when not). */
static char *
mix_run(uint64_t seed, size_t n, unsigned *count)
{
	struct vs_params	 p = params;
	size_t			 k, len = 0;
	char			*out;
	const char		*res;
	json_t			*e;
	size_t			 i;

	stop();
	memset(p.mix, 0, sizeof(p.mix));
	p.mix[VS_OC_ANSWER] = 30;
	p.mix[VS_OC_MACHINE] = 15;
	p.mix[VS_OC_BUSY] = 15;
	p.mix[VS_OC_NOANSWER] = 40;
	p.seed = seed;
	p.out_ring_min_ms = 50;
	p.out_ring_max_ms = 100;
	p.busy_after_ms = 50;
	start(&p);
	json_decref(S);
	S = NULL;
	batched = 1;
	for (k = 0; k < n; k++) {
		vs_run(M, T0 + 5 * k);
		reqf(T0 + 5 * k, "{'request':'RequestMakePredictiveCall',"
		    "'dn':'6200','destination':'+1555%07zu','ringTimeout':0.2,"
		    "'cpd':true}", k);
		if (k % 20 == 19)
			assert_int_equal(flushed(), 1);
	}
	vs_run(M, T0 + 5 * n + 1000);
	flushed();
	out = xcalloc(n + 1, 1);
	memset(count, 0, VS_OC_N * sizeof(*count));
	json_array_foreach(E, i, e) {
		if ((res = json_string_value(json_object_get(e, "callResult")))
		    == NULL)
			res = json_string_value(json_object_get(e, "cause"));
		if (res == NULL)
			continue;
		for (k = 0; k < VS_OC_N; k++)
			if (strcmp(res, outcomes[k].result) == 0)
				break;
		assert_true(k < VS_OC_N);
		count[k]++;
		/* in the order of the calls: by connId */
		out[strtoull(f(i, "connId") + 6, NULL, 16) - 1] =
		    (char)('a' + k);
		len++;
	}
	assert_int_equal(len, n);
	return out;
}

/* test_mix - the proportions asked for, and the same run for one seed */
static void
test_mix(void **st)
{
	unsigned	 a[VS_OC_N], b[VS_OC_N];
	char		*x, *y, *z;

	x = mix_run(7, 2000, a);
	y = mix_run(7, 2000, b);
	assert_string_equal(x, y);
	z = mix_run(8, 2000, b);
	assert_string_not_equal(x, z);
	assert_in_range(a[VS_OC_ANSWER], 600 - 80, 600 + 80);
	assert_in_range(a[VS_OC_MACHINE], 300 - 60, 300 + 60);
	assert_in_range(a[VS_OC_BUSY], 300 - 60, 300 + 60);
	assert_in_range(a[VS_OC_NOANSWER], 800 - 90, 800 + 90);
	assert_int_equal(a[VS_OC_ANSWER] + a[VS_OC_MACHINE] + a[VS_OC_BUSY] +
	    a[VS_OC_NOANSWER], 2000);
	free(x);
	free(y);
	free(z);
}

/* test_route_from_routing_point - the routing worker's use: a call that
 * rings at a routing point with no queue is routed to a phone */
static void
test_route_from_routing_point(void **st)
{
	const char	*r;
	char		 c[17];

	add("Switch", 2, "{'name':'sw2'}");
	add("DN", 24, "{'number':'6101','type':'RoutingPoint','switch':2}");
	reqf(T0, "{'request':'SimInboundCall','to':'6101','from':'+15550111'}");
	expect("EventRinging@6101", "r1");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	r = reqf(T0 + 100, "{'request':'RequestRouteCall','dn':'6101','connId':"
	    "'%s','destination':'5003'}", c);
	expect("EventReleased@6101 EventRinging@5003", r);
	assert_string_equal(f(0, "cause"), "Transferred");
	assert_string_equal(f(1, "otherDN"), "+15550111");
	assert_string_equal(f(1, "callType"), "Inbound");
	clear();
	/* a single-step transfer is not a routing: a ringing call is not
	 * established */
	reqf(T0, "{'request':'SimInboundCall','to':'6101'}");
	snprintf(c, sizeof(c), "%s", f(0, "connId"));
	clear();
	error_is(reqf(T0, "{'request':'RequestSingleStepTransfer','dn':'6101',"
	    "'connId':'%s','destination':'5002'}", c), "InvalidState");
}

/* count - a state flushed: as replayed; counted in arg */
static void
count(const char *dn, json_t *st, void *arg)
{
	size_t	*n = arg;

	vsr_check(R, dn, st);
	(*n)++;
}

/* flushed - the end of a batch: how many states it writes */
static size_t
flushed(void)
{
	size_t	n = 0;

	vs_flush(M, count, &n);
	return n;
}

/* route_all - route every call that the events since the last clear
 * established at 6200 to dest, in one batch */
static void
route_all(uint64_t now, const char *dest)
{
	json_t	*e, *conns = json_array(), *c;
	size_t	 i;

	json_array_foreach(E, i, e)
		if (strcmp(json_string_value(json_object_get(e, "event")),
		    "EventEstablished") == 0)
			json_array_append(conns, json_object_get(e, "connId"));
	clear();
	json_array_foreach(conns, i, c)
		reqf(now, "{'request':'RequestRouteCall','dn':'6200',"
		    "'connId':'%s','destination':'%s'}", json_string_value(c),
		    dest);
	json_decref(conns);
}

/*
 * test_dialler_batches - a dialler's load, flushed in batches as voicesim
 * writes it: every 200 ms 50 calls from 6200, answered at once and routed
 * to routing point 6101, which has no queue and holds them ringing until
 * the customer's patience (1 s) is over.  Each batch writes each DN it
 * touched once (50 events on 6200: one state), matching the events.
 */
static void
test_dialler_batches(void **st)
{
	struct vs_params	p = params;
	uint64_t		t = T0;
	size_t			tick, k, n;

	stop();
	p.out_ring_min_ms = p.out_ring_max_ms = 0;
	p.out_patience_ms = 1000;
	start(&p);
	json_decref(S);
	S = NULL;
	batched = 1;
	add("Switch", 2, "{'name':'sw2'}");
	add("DN", 24, "{'number':'6101','type':'RoutingPoint','switch':2}");
	for (tick = 0; tick < 25; tick++, t += 200) {
		for (k = 0; k < 50; k++)
			reqf(t, "{'request':'RequestMakePredictiveCall','dn':"
			    "'6200','destination':'+1555%07zu5'}",
			    tick * 50 + k);	/* never busy: not ...0199 */
		assert_int_equal(flushed(), 1);
		clear();
		vs_run(M, t);	/* answered; the oldest at 6101 give up */
		assert_int_equal(flushed(), tick < 5 ? 1 : 2);
		route_all(t, "6101");
		assert_int_equal(json_array_size(E), 100);
		assert_int_equal(flushed(), 2);
		clear();
		assert_int_equal(vs_calls(M), tick < 4 ? 50 * (tick + 1) : 250);
	}
	n = 0;
	vs_each_state(M, count, &n);
	assert_int_equal(n, vsr_dns(R));
	assert_int_equal(n, 1);			/* 6101 */
}

/* test_outcome_keys - the --outbound-mix keys */
static void
test_outcome_keys(void **st)
{
	int	i;

	for (i = 0; i < VS_OC_N; i++)
		assert_int_equal(vs_outcome_parse(vs_outcome_key(i)), i);
	assert_int_equal(vs_outcome_parse("machine"), VS_OC_MACHINE);
	assert_int_equal(vs_outcome_parse("Machine"), -1);
	assert_null(vs_outcome_key(VS_OC_N));
}

/* main - run the tests */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answer_and_route, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_outcomes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_patience, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_release_and_errors,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sim_answer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_generated_agents, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialler_batches, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_route_from_routing_point,
		    setup, teardown),
		cmocka_unit_test(test_outcome_keys),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
