/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_stats - the pure parts of the stats worker against docs/stats.md,
 * with every expected value worked out by hand: the model (the action
 * instances and derived agent states that voice events give, told through
 * its callbacks and logged as text), the statistic types and profiles,
 * the accumulators one category at a time, and the two together over a
 * realistic stretch of a contact center's day.
 *
 * Times: every event carries its "time" in ms, BASE + s seconds; the log
 * and the comments give s.  Numbers starting with 7 are queues, with 8
 * routing points, the others phones.
 */
#include "../../workers/stats/model.c"
#include "../../workers/stats/stat.c"
#include "../../workers/stats/statreq.c"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BASE	1764140000.0	/* 2025-11-26 06:53:20 UTC */
#define DAY0	1764115200.0	/* 2025-11-26 00:00 UTC */

#define assert_near(a, b)						\
	assert_true(fabs((double)(a) - (double)(b)) < 1e-6)

/* The model's callbacks, logged one line each. */
struct rec {
	char		 log[16384];
	size_t		 len;
	uint64_t	 live[256];	/* ids started and not ended */
	size_t		 nlive;
};

/* rel - t as seconds after BASE, to the ms */
static double
rel(double t)
{
	return round((t - BASE) * 1000) / 1000;
}

/* rec_add - one line in the log */
static void
rec_add(struct rec *r, const struct inst *i, const char *fmt, ...)
{
	va_list	 ap;
	char	*ud;

	va_start(ap, fmt);
	r->len += (size_t)vsnprintf(r->log + r->len, sizeof(r->log) - r->len,
	    fmt, ap);
	va_end(ap);
	assert_true(r->len < sizeof(r->log));
	if (i != NULL && i->user_data != NULL) {
		ud = json_dumps(i->user_data, JSON_COMPACT | JSON_SORT_KEYS);
		r->len += (size_t)snprintf(r->log + r->len,
		    sizeof(r->log) - r->len, " ud=%s", ud);
		free(ud);
	}
	r->len += (size_t)snprintf(r->log + r->len, sizeof(r->log) - r->len,
	    "\n");
	assert_true(r->len < sizeof(r->log));
}

/* kind - the test's numbering plan */
static enum dn_kind
kind(const char *dn, void *arg)
{
	return dn[0] == '7' ? DNK_QUEUE : dn[0] == '8' ? DNK_RP : DNK_PHONE;
}

/* on_start - log a start; its id must be new */
static void
on_start(const struct inst *i, void *arg)
{
	struct rec	*r = arg;
	size_t		 k;

	assert_false(action_is_instant(i->a));
	for (k = 0; k < r->nlive; k++)
		assert_true(r->live[k] != i->id);
	assert_true(r->nlive < NELEM(r->live));
	r->live[r->nlive++] = i->id;
	rec_add(r, i, "start %s %s %s %g", action_name(i->a),
	    i->agent != NULL ? i->agent : "-", i->dn, rel(i->start));
}

/* on_end - log an end; it must end what started */
static void
on_end(const struct inst *i, double end, void *arg)
{
	struct rec	*r = arg;
	size_t		 k;

	for (k = 0; k < r->nlive && r->live[k] != i->id; k++)
		;
	assert_true(k < r->nlive);
	r->live[k] = r->live[--r->nlive];
	assert_true(end >= i->start);
	rec_add(r, i, "end %s %s %s %g..%g", action_name(i->a),
	    i->agent != NULL ? i->agent : "-", i->dn, rel(i->start), rel(end));
}

/* on_instant - log an instant action and its wait */
static void
on_instant(const struct inst *i, double duration, void *arg)
{
	assert_true(action_is_instant(i->a));
	rec_add(arg, i, "instant %s %s %s %g wait=%g", action_name(i->a),
	    i->agent != NULL ? i->agent : "-", i->dn, rel(i->start),
	    round(duration * 1000) / 1000);
}

/* on_state - log that an agent's derived state changed */
static void
on_state(const char *agent, void *arg)
{
	rec_add(arg, NULL, "state %s", agent);
}

static const struct model_cbs rec_cbs = {
	kind, on_start, on_end, on_instant, on_state
};

/* expect - the log since the last look is exactly want */
static void
expect(struct rec *r, const char *want)
{
	assert_string_equal(r->log, want);
	r->len = 0;
	r->log[0] = '\0';
}

/* cmp_line - qsort order of lines */
static int
cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorted - the lines of s in order, one string (free it) */
static char *
sorted(const char *s)
{
	char	*copy = xstrdup(s), *lines[256], *p, *save, *out;
	size_t	 n = 0, i, len = strlen(s) + 1;

	for (p = strtok_r(copy, "\n", &save); p != NULL;
	    p = strtok_r(NULL, "\n", &save)) {
		assert_true(n < NELEM(lines));
		lines[n++] = p;
	}
	qsort(lines, n, sizeof(*lines), cmp_line);
	out = xcalloc(1, len);
	for (i = 0, p = out; i < n; i++)
		p += snprintf(p, len - (size_t)(p - out), "%s\n", lines[i]);
	free(copy);
	return out;
}

/* expect_set - the log since the last look has want's lines, any order */
static void
expect_set(struct rec *r, const char *want)
{
	char	*a = sorted(r->log), *b = sorted(want);

	assert_string_equal(a, b);
	free(a);
	free(b);
	r->len = 0;
	r->log[0] = '\0';
}

/* ev - apply one event, written with ' for ", at BASE + s */
static void
ev(struct model *m, double s, const char *fmt, ...)
{
	char		 buf[1024], *p;
	va_list		 ap;
	json_t		*e;
	json_error_t	 err;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (p = buf; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	if ((e = json_loads(buf, 0, &err)) == NULL)
		fail_msg("%s: %s", buf, err.text);
	json_object_set_new(e, "time", json_integer(
	    (json_int_t)llround((BASE + s) * 1000)));
	model_apply(m, e, 1.0);		/* the event's time must win */
	json_decref(e);
}

/* agent - an agent event on a DN; more: further fields, ",'k':v" */
static void
agent(struct model *m, double s, const char *name, const char *dn,
    const char *id, const char *more)
{
	ev(m, s, "{'event':'%s','thisDN':'%s','agentId':'%s'%s}", name, dn,
	    id, more != NULL ? more : "");
}

/* call - a call event on a DN */
static void
call(struct model *m, double s, const char *name, const char *dn,
    const char *conn, const char *more)
{
	ev(m, s, "{'event':'%s','thisDN':'%s','connId':'%s','callId':'1'%s}",
	    name, dn, conn, more != NULL ? more : "");
}

/* check_state - an agent's CurrentAgentState */
static void
check_state(struct model *m, const char *id, const char *state,
    double since, const char *reason, const char *wm, const char *dn,
    const char *conn)
{
	struct agent_state	st;

	assert_int_equal(model_agent_state(m, id, &st), 0);
	assert_string_equal(st.state, state);
	assert_near(rel(st.since), since);
#define STR_OR_NULL(x, y) do {						\
	if ((y) == NULL)						\
		assert_null(x);						\
	else {								\
		assert_non_null(x);					\
		assert_string_equal(x, y);				\
	}								\
} while (0)
	STR_OR_NULL(st.reason, reason);
	STR_OR_NULL(st.work_mode, wm);
	STR_OR_NULL(st.dn, dn);
	STR_OR_NULL(st.conn_id, conn);
}

/* ---- the model ---- */

/*
 * test_model_agent - login, Ready, NotReady with reasons, after-call
 * work, logout, login again, and a login taking another's DN
 */
static void
test_model_agent(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	struct agent_state st;

	assert_int_equal(model_agent_state(m, "A1", &st), -1);
	assert_string_equal(st.state, "LoggedOut");

	agent(m, 0, "EventAgentLogin", "5001", "A1", ",'workMode':'ManualIn'");
	expect(&r, "start LoggedIn A1 5001 0\n"
	    "start NotReady A1 5001 0\n"
	    "state A1\n");
	check_state(m, "A1", "NotReady", 0, NULL, "ManualIn", "5001", NULL);
	assert_string_equal(model_dn_agent(m, "5001"), "A1");

	agent(m, 5, "EventAgentReady", "5001", "A1", ",'workMode':'ManualIn'");
	expect(&r, "end NotReady A1 5001 0..5\n"
	    "start Ready A1 5001 5\n"
	    "state A1\n");
	check_state(m, "A1", "Ready", 5, NULL, "ManualIn", "5001", NULL);

	agent(m, 20, "EventAgentNotReady", "5001", "A1",
	    ",'workMode':'AuxWork','reason':'Lunch'");
	expect(&r, "end Ready A1 5001 5..20\n"
	    "start NotReady A1 5001 20\n"
	    "state A1\n");
	check_state(m, "A1", "NotReady", 20, "Lunch", "AuxWork", "5001", NULL);

	/* Another reason: still NotReady since 20, but the value changed. */
	agent(m, 25, "EventAgentNotReady", "5001", "A1",
	    ",'workMode':'AuxWork','reason':'Break'");
	expect(&r, "state A1\n");
	check_state(m, "A1", "NotReady", 20, "Break", "AuxWork", "5001", NULL);

	agent(m, 30, "EventAgentNotReady", "5001", "A1",
	    ",'workMode':'AfterCallWork'");
	expect(&r, "end NotReady A1 5001 20..30\n"
	    "start AfterCallWork A1 5001 30\n"
	    "state A1\n");
	check_state(m, "A1", "AfterCallWork", 30, NULL, "AfterCallWork",
	    "5001", NULL);

	agent(m, 50, "EventAgentReady", "5001", "A1", ",'workMode':'ManualIn'");
	expect(&r, "end AfterCallWork A1 5001 30..50\n"
	    "start Ready A1 5001 50\n"
	    "state A1\n");

	agent(m, 55, "EventAgentNotReady", "5001", "A1",
	    ",'workMode':'AuxWork','reason':'Lunch'");
	expect(&r, "end Ready A1 5001 50..55\n"
	    "start NotReady A1 5001 55\n"
	    "state A1\n");

	/* A logout event without agentId: the DN's agent. */
	ev(m, 60, "{'event':'EventAgentLogout','thisDN':'5001'}");
	expect(&r, "end NotReady A1 5001 55..60\n"
	    "state A1\n"
	    "end LoggedIn A1 5001 0..60\n");
	check_state(m, "A1", "LoggedOut", 60, NULL, NULL, NULL, NULL);
	assert_null(model_dn_agent(m, "5001"));

	/* Logged in again: NotReady with no reason left from before. */
	agent(m, 70, "EventAgentLogin", "5002", "A1", NULL);
	expect(&r, "start LoggedIn A1 5002 70\n"
	    "start NotReady A1 5002 70\n"
	    "state A1\n");
	check_state(m, "A1", "NotReady", 70, NULL, NULL, "5002", NULL);

	/* A Ready with no login seen: the agent was there already. */
	agent(m, 80, "EventAgentReady", "5003", "A2", NULL);
	expect(&r, "start LoggedIn A2 5003 80\n"
	    "start NotReady A2 5003 80\n"
	    "state A2\n"
	    "end NotReady A2 5003 80..80\n"
	    "start Ready A2 5003 80\n"
	    "state A2\n");

	/* A1 logs in on A2's DN: A2 is logged out of it. */
	agent(m, 90, "EventAgentLogin", "5003", "A1", NULL);
	expect(&r, "end NotReady A1 5002 70..90\n"
	    "state A1\n"
	    "end LoggedIn A1 5002 70..90\n"
	    "end Ready A2 5003 80..90\n"
	    "state A2\n"
	    "end LoggedIn A2 5003 80..90\n"
	    "start LoggedIn A1 5003 90\n"
	    "start NotReady A1 5003 90\n"
	    "state A1\n");
	check_state(m, "A2", "LoggedOut", 90, NULL, NULL, NULL, NULL);
	assert_string_equal(model_dn_agent(m, "5003"), "A1");
	model_free(m);
}

/*
 * test_model_ready_calls - Ready ends while a call is on the DN and
 * starts again after; the states Dialing, Talking, Ringing; a call's
 * type names its action.
 */
static void
test_model_ready_calls(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 agents, calls;

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 0, "EventAgentReady", "5001", "A1", NULL);
	expect(&r, "start LoggedIn A1 5001 0\nstart NotReady A1 5001 0\n"
	    "state A1\nend NotReady A1 5001 0..0\nstart Ready A1 5001 0\n"
	    "state A1\n");

	/* An outbound call: Dialing 10..14, Talking/CallOutbound 14..30. */
	call(m, 10, "EventDialing", "5001", "c1", ",'callType':'Outbound'");
	expect(&r, "start Dialing A1 5001 10\n"
	    "end Ready A1 5001 0..10\n"
	    "state A1\n");
	check_state(m, "A1", "Dialing", 10, NULL, NULL, "5001", "c1");
	call(m, 14, "EventEstablished", "5001", "c1", ",'callType':'Outbound'");
	expect(&r, "end Dialing A1 5001 10..14\n"
	    "start Talking A1 5001 14\n"
	    "start CallOutbound A1 5001 14\n"
	    "state A1\n");
	check_state(m, "A1", "Talking", 14, NULL, NULL, "5001", "c1");
	assert_int_equal(model_count(m, &agents, &calls), 1);
	assert_int_equal(agents, 1);
	assert_int_equal(calls, 1);

	/* A second call rings while talking: Talking wins. */
	call(m, 20, "EventRinging", "5001", "c2", ",'callType':'Internal'");
	expect(&r, "start Ringing A1 5001 20\n");
	check_state(m, "A1", "Talking", 14, NULL, NULL, "5001", "c1");

	call(m, 30, "EventReleased", "5001", "c1", NULL);
	expect(&r, "end CallOutbound A1 5001 14..30\n"
	    "end Talking A1 5001 14..30\n"
	    "state A1\n");
	check_state(m, "A1", "Ringing", 30, NULL, NULL, "5001", "c2");

	/* Not answered: released while ringing; no Talking, Ready again. */
	call(m, 36, "EventReleased", "5001", "c2", NULL);
	expect(&r, "end Ringing A1 5001 20..36\n"
	    "start Ready A1 5001 36\n"
	    "state A1\n");
	check_state(m, "A1", "Ready", 36, NULL, NULL, "5001", NULL);

	/* Events about calls the model does not follow change nothing. */
	call(m, 40, "EventHeld", "5001", "zz", NULL);
	call(m, 40, "EventReleased", "5001", "zz", NULL);
	ev(m, 40, "{'event':'EventRinging','thisDN':'5001'}");
	ev(m, 40, "{'event':'EventRinging','connId':'c9'}");
	ev(m, 40, "{'thisDN':'5001','connId':'c9'}");
	expect(&r, "");
	model_count(m, NULL, &calls);
	assert_int_equal(calls, 0);

	/* An internal call answered: CallInternal, no CallAnswered. */
	call(m, 50, "EventRinging", "5001", "c3", ",'callType':'Internal'");
	call(m, 52, "EventEstablished", "5001", "c3", NULL);
	call(m, 60, "EventReleased", "5001", "c3", NULL);
	expect(&r, "start Ringing A1 5001 50\n"
	    "end Ready A1 5001 36..50\n"
	    "state A1\n"
	    "end Ringing A1 5001 50..52\n"
	    "start Talking A1 5001 52\n"
	    "start CallInternal A1 5001 52\n"
	    "state A1\n"
	    "end CallInternal A1 5001 52..60\n"
	    "end Talking A1 5001 52..60\n"
	    "start Ready A1 5001 60\n"
	    "state A1\n");
	model_free(m);
}

/*
 * test_model_inbound - an inbound call: it rings on the routing point
 * 8000 at 10 and is diverted at 12 to the queue 7000, where it waits
 * until 20; it rings at A1 (5001) from 20, is answered at 25 (15 s after
 * it first entered), held from 40 to 50, released at 85.
 */
static void
test_model_inbound(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	const char	*ud = ",'callType':'Inbound',"
			    "'userData':{'Segment':'Gold'}";
	const char	*g = " ud={\"Segment\":\"Gold\"}";
	char		 want[2048];

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 5, "EventAgentReady", "5001", "A1", NULL);
	expect(&r, "start LoggedIn A1 5001 0\nstart NotReady A1 5001 0\n"
	    "state A1\nend NotReady A1 5001 0..5\nstart Ready A1 5001 5\n"
	    "state A1\n");

	call(m, 10, "EventRinging", "8000", "c1", ud);
	snprintf(want, sizeof(want), "instant CallEntered - 8000 10 wait=0%s\n",
	    g);
	expect(&r, want);
	call(m, 12, "EventDiverted", "8000", "c1", ud);
	snprintf(want, sizeof(want),
	    "instant CallDistributed - 8000 12 wait=2%s\n", g);
	expect(&r, want);
	call(m, 12, "EventQueued", "7000", "c1", ud);
	snprintf(want, sizeof(want), "start CallWaiting - 7000 12%s\n"
	    "instant CallEntered - 7000 12 wait=0%s\n", g, g);
	expect(&r, want);

	call(m, 20, "EventDiverted", "7000", "c1", ud);
	snprintf(want, sizeof(want),
	    "instant CallDistributed - 7000 20 wait=8%s\n"
	    "end CallWaiting - 7000 12..20%s\n", g, g);
	expect(&r, want);

	call(m, 20, "EventRinging", "5001", "c1", ud);
	snprintf(want, sizeof(want), "start Ringing A1 5001 20%s\n"
	    "end Ready A1 5001 5..20\n"
	    "state A1\n", g);
	expect(&r, want);
	check_state(m, "A1", "Ringing", 20, NULL, NULL, "5001", "c1");

	/* Answered 15 s after it entered the routing point at 10. */
	call(m, 25, "EventEstablished", "5001", "c1", ud);
	snprintf(want, sizeof(want), "end Ringing A1 5001 20..25%s\n"
	    "start Talking A1 5001 25%s\n"
	    "start CallInbound A1 5001 25%s\n"
	    "instant CallAnswered A1 5001 25 wait=15%s\n"
	    "instant CallAnswered - 7000 25 wait=15%s\n"
	    "instant CallAnswered - 8000 25 wait=15%s\n"
	    "state A1\n", g, g, g, g, g, g);
	expect(&r, want);
	check_state(m, "A1", "Talking", 25, NULL, NULL, "5001", "c1");

	call(m, 40, "EventHeld", "5001", "c1", NULL);
	snprintf(want, sizeof(want), "start OnHold A1 5001 40%s\n"
	    "state A1\n", g);
	expect(&r, want);
	check_state(m, "A1", "OnHold", 40, NULL, NULL, "5001", "c1");

	call(m, 50, "EventRetrieved", "5001", "c1", NULL);
	snprintf(want, sizeof(want), "end OnHold A1 5001 40..50%s\n"
	    "state A1\n", g);
	expect(&r, want);
	check_state(m, "A1", "Talking", 50, NULL, NULL, "5001", "c1");

	call(m, 85, "EventReleased", "5001", "c1", NULL);
	snprintf(want, sizeof(want), "end CallInbound A1 5001 25..85%s\n"
	    "end Talking A1 5001 25..85%s\n"
	    "start Ready A1 5001 85\n"
	    "state A1\n", g, g);
	expect(&r, want);
	check_state(m, "A1", "Ready", 85, NULL, NULL, "5001", NULL);

	/* A call that rang at A1 directly: answered after its 3 s ringing. */
	call(m, 100, "EventRinging", "5001", "c2", ",'callType':'Inbound'");
	call(m, 103, "EventEstablished", "5001", "c2", NULL);
	expect(&r, "start Ringing A1 5001 100\n"
	    "end Ready A1 5001 85..100\n"
	    "state A1\n"
	    "end Ringing A1 5001 100..103\n"
	    "start Talking A1 5001 103\n"
	    "start CallInbound A1 5001 103\n"
	    "instant CallAnswered A1 5001 103 wait=3\n"
	    "state A1\n");
	model_free(m);
}

/* each_line - model_each etc. into a text, one instance a line */
static void
each_line(const struct inst *i, void *arg)
{
	struct rec	*r = arg;

	rec_add(r, i, "%s %d %s %s %g", action_name(i->a), i->of_agent,
	    i->agent != NULL ? i->agent : "-", i->dn, rel(i->start));
}

/* test_model_abandoned - calls abandoned in the queue and on the RP */
static void
test_model_abandoned(void **state)
{
	struct rec	 r = { .len = 0 };
	struct rec	 e = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 n = 0;
	json_t		*dump;

	call(m, 10, "EventRinging", "8000", "c2", ",'callType':'Inbound'");
	call(m, 11, "EventDiverted", "8000", "c2", NULL);
	call(m, 11, "EventQueued", "7000", "c2", NULL);
	call(m, 15, "EventQueued", "7000", "c3", NULL);
	expect(&r, "instant CallEntered - 8000 10 wait=0\n"
	    "instant CallDistributed - 8000 11 wait=1\n"
	    "start CallWaiting - 7000 11\n"
	    "instant CallEntered - 7000 11 wait=0\n"
	    "start CallWaiting - 7000 15\n"
	    "instant CallEntered - 7000 15 wait=0\n");
	/* Two calls wait in 7000; queued twice is still one. */
	call(m, 16, "EventQueued", "7000", "c3", NULL);
	expect(&r, "");
	model_each_of_dn(m, "7000", each_line, &e);
	expect_set(&e, "CallWaiting 0 - 7000 11\nCallWaiting 0 - 7000 15\n");

	/* The caller hangs up after 30 s in the queue. */
	call(m, 41, "EventAbandoned", "7000", "c2", ",'cause':'Abandoned'");
	expect(&r, "instant CallAbandoned - 7000 41 wait=30\n"
	    "end CallWaiting - 7000 11..41\n");
	/* Released from the queue (not abandoned): the wait just ends. */
	call(m, 45, "EventReleased", "7000", "c3", NULL);
	expect(&r, "end CallWaiting - 7000 15..45\n");
	call(m, 46, "EventAbandoned", "7000", "c3", NULL);
	expect(&r, "");

	/* Abandoned on the routing point, 3 s after it entered. */
	call(m, 50, "EventRinging", "8000", "c4", ",'callType':'Inbound'");
	call(m, 53, "EventAbandoned", "8000", "c4", NULL);
	expect(&r, "instant CallEntered - 8000 50 wait=0\n"
	    "instant CallAbandoned - 8000 53 wait=3\n");

	/* Nothing is left waiting nor remembered as entered. */
	dump = model_dump(m);
	n = json_array_size(json_object_get(dump, "entries")) +
	    json_array_size(json_object_get(dump, "dns"));
	assert_int_equal(n, 0);
	json_decref(dump);
	model_free(m);
}

/*
 * test_model_routed - a routing point that the routing worker routes:
 * EventRouteRequest is the call entering it, EventRouteUsed the call
 * distributed from it (to an agent, who answers, and to a queue), and
 * EventAbandoned the caller giving up there
 */
static void
test_model_routed(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	json_t		*dump;

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 5, "EventAgentReady", "5001", "A1", NULL);
	r.len = 0;
	r.log[0] = '\0';

	call(m, 10, "EventRouteRequest", "8100", "c1",
	    ",'callType':'Inbound','dnis':'8100'");
	expect(&r, "instant CallEntered - 8100 10 wait=0\n");
	call(m, 14, "EventRouteUsed", "8100", "c1", ",'thirdDN':'5001'");
	expect(&r, "instant CallDistributed - 8100 14 wait=4\n");
	call(m, 14, "EventRinging", "5001", "c1",
	    ",'callType':'Inbound','thirdDN':'8100'");
	expect(&r, "start Ringing A1 5001 14\n"
	    "end Ready A1 5001 5..14\n"
	    "state A1\n");
	/* answered 6 s after it entered the routing point */
	call(m, 16, "EventEstablished", "5001", "c1", NULL);
	expect(&r, "end Ringing A1 5001 14..16\n"
	    "start Talking A1 5001 16\n"
	    "start CallInbound A1 5001 16\n"
	    "instant CallAnswered A1 5001 16 wait=6\n"
	    "instant CallAnswered - 8100 16 wait=6\n"
	    "state A1\n");

	/* the caller gives up at the routing point after 5 s */
	call(m, 20, "EventRouteRequest", "8100", "c2",
	    ",'callType':'Inbound'");
	call(m, 25, "EventAbandoned", "8100", "c2", ",'cause':'Abandoned'");
	expect(&r, "instant CallEntered - 8100 20 wait=0\n"
	    "instant CallAbandoned - 8100 25 wait=5\n");

	/* routed to a queue, where it waits */
	call(m, 30, "EventRouteRequest", "8100", "c3",
	    ",'callType':'Inbound'");
	call(m, 31, "EventRouteUsed", "8100", "c3", ",'thirdDN':'7000'");
	call(m, 31, "EventQueued", "7000", "c3", NULL);
	expect(&r, "instant CallEntered - 8100 30 wait=0\n"
	    "instant CallDistributed - 8100 31 wait=1\n"
	    "start CallWaiting - 7000 31\n"
	    "instant CallEntered - 7000 31 wait=0\n");
	call(m, 40, "EventAbandoned", "7000", "c3", ",'cause':'Abandoned'");
	expect(&r, "instant CallAbandoned - 7000 40 wait=9\n"
	    "end CallWaiting - 7000 31..40\n");

	/* only the answered call's agent side is left */
	dump = model_dump(m);
	assert_int_equal(json_array_size(json_object_get(dump, "entries")), 0);
	json_decref(dump);
	model_free(m);
}

/*
 * test_model_party_changed - a blind transfer through a consultation
 * call: the party on 5002 that answered the consultation c2 is merged
 * into c1 (EventPartyChanged, previousConnId): one call, whose
 * instances go on.
 */
static void
test_model_party_changed(void **state)
{
	struct rec	 r = { .len = 0 }, e = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 calls;

	agent(m, 0, "EventAgentLogin", "5002", "A2", NULL);
	call(m, 21, "EventRinging", "5002", "c2", ",'callType':'Consult'");
	call(m, 25, "EventEstablished", "5002", "c2", NULL);
	check_state(m, "A2", "Talking", 25, NULL, NULL, "5002", "c2");
	r.len = 0;
	r.log[0] = '\0';

	call(m, 30, "EventPartyChanged", "5002", "c1",
	    ",'previousConnId':'c2','callType':'Inbound'");
	expect(&r, "state A2\n");	/* the connId changed */
	check_state(m, "A2", "Talking", 25, NULL, NULL, "5002", "c1");
	model_count(m, NULL, &calls);
	assert_int_equal(calls, 1);
	model_each_of_agent(m, "A2", each_line, &e);
	expect_set(&e, "LoggedIn 1 A2 5002 0\n"
	    "NotReady 1 A2 5002 0\n"
	    "Talking 1 A2 5002 25\n"
	    "CallConsult 1 A2 5002 25\n");

	call(m, 60, "EventReleased", "5002", "c1", NULL);
	expect(&r, "end CallConsult A2 5002 25..60\n"
	    "end Talking A2 5002 25..60\n"
	    "state A2\n");
	model_count(m, NULL, &calls);
	assert_int_equal(calls, 0);

	/* Both calls already on the DN: the previous one goes. */
	call(m, 70, "EventRinging", "5002", "c5", ",'callType':'Inbound'");
	call(m, 71, "EventRinging", "5002", "c6", ",'callType':'Consult'");
	r.len = 0;
	r.log[0] = '\0';
	call(m, 72, "EventPartyAdded", "5002", "c5", ",'previousConnId':'c6'");
	expect(&r, "end Ringing A2 5002 71..72\n");
	model_count(m, NULL, &calls);
	assert_int_equal(calls, 1);
	check_state(m, "A2", "Ringing", 70, NULL, NULL, "5002", "c5");
	model_free(m);
}

/*
 * test_model_user_data - userData is carried into the instances; a
 * change reaches the ones that start after it
 */
static void
test_model_user_data(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	call(m, 10, "EventQueued", "7000", "c1",
	    ",'userData':{'Segment':'Gold','Priority':5}");
	/* Changed while waiting: the next instances carry the new data. */
	call(m, 12, "EventAttachedDataChanged", "7000", "c1",
	    ",'userData':{'Segment':'Silver','Priority':5}");
	call(m, 15, "EventDiverted", "7000", "c1", NULL);
	call(m, 15, "EventRinging", "5001", "c1",
	    ",'callType':'Inbound','userData':{'Segment':'Silver'}");
	call(m, 20, "EventEstablished", "5001", "c1", NULL);
	call(m, 30, "EventAttachedDataChanged", "5001", "c1",
	    ",'userData':{'Segment':'Silver','Case':7}");
	call(m, 31, "EventHeld", "5001", "c1", NULL);
	expect(&r, "start LoggedIn A1 5001 0\nstart NotReady A1 5001 0\n"
	    "state A1\n"
	    "start CallWaiting - 7000 10 ud={\"Priority\":5,"
	    "\"Segment\":\"Gold\"}\n"
	    "instant CallEntered - 7000 10 wait=0 ud={\"Priority\":5,"
	    "\"Segment\":\"Gold\"}\n"
	    "instant CallDistributed - 7000 15 wait=5 ud={\"Priority\":5,"
	    "\"Segment\":\"Silver\"}\n"
	    "end CallWaiting - 7000 10..15 ud={\"Priority\":5,"
	    "\"Segment\":\"Gold\"}\n"
	    "start Ringing A1 5001 15 ud={\"Segment\":\"Silver\"}\n"
	    "state A1\n"
	    "end Ringing A1 5001 15..20 ud={\"Segment\":\"Silver\"}\n"
	    "start Talking A1 5001 20 ud={\"Segment\":\"Silver\"}\n"
	    "start CallInbound A1 5001 20 ud={\"Segment\":\"Silver\"}\n"
	    "instant CallAnswered A1 5001 20 wait=10 ud={\"Segment\":"
	    "\"Silver\"}\n"
	    "instant CallAnswered - 7000 20 wait=10 ud={\"Segment\":"
	    "\"Silver\"}\n"
	    "state A1\n"
	    "start OnHold A1 5001 31 ud={\"Case\":7,\"Segment\":\"Silver\"}\n"
	    "state A1\n");
	model_free(m);
}

/*
 * test_model_reconcile - against the voice side's state hash: what it
 * lists stays (agent, call, waiting call), what it does not list ends,
 * agents it names otherwise are logged out
 */
static void
test_model_reconcile(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 calls, agents;
	json_t		*st;

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 0, "EventAgentReady", "5001", "A1", NULL);
	agent(m, 0, "EventAgentLogin", "5002", "A2", NULL);
	agent(m, 0, "EventAgentLogin", "5003", "A3", NULL);
	call(m, 10, "EventRinging", "5001", "c1", ",'callType':'Inbound'");
	call(m, 12, "EventEstablished", "5001", "c1", NULL);
	call(m, 11, "EventRinging", "5002", "c3", ",'callType':'Inbound'");
	call(m, 20, "EventQueued", "7000", "c2", NULL);
	call(m, 21, "EventQueued", "7000", "c4", NULL);
	r.len = 0;
	r.log[0] = '\0';

	/* A1 and its call stay; A2 stays without c3; A3 is on 5003 for the
	 * model but another agent for the voice side; c4 waits, c2 not. */
	st = json_pack("{s:{s:{s:s}, s:[{s:s}]}, s:{s:{s:s}, s:[]}, "
	    "s:{s:{s:s}}, s:{s:[{s:s}]}}",
	    "5001", "agent", "agentId", "A1", "calls", "connId", "c1",
	    "5002", "agent", "agentId", "A2", "calls",
	    "5003", "agent", "agentId", "A9",
	    "7000", "calls", "connId", "c4");
	model_reconcile(m, st, BASE + 50, &calls, &agents);
	json_decref(st);
	assert_int_equal(calls, 2);
	assert_int_equal(agents, 1);
	expect_set(&r, "end Ringing A2 5002 11..50\n"
	    "state A2\n"
	    "end NotReady A3 5003 0..50\n"
	    "state A3\n"
	    "end LoggedIn A3 5003 0..50\n"
	    "end CallWaiting - 7000 20..50\n");
	model_count(m, NULL, &calls);
	assert_int_equal(calls, 1);
	check_state(m, "A1", "Talking", 12, NULL, NULL, "5001", "c1");
	check_state(m, "A2", "NotReady", 50, NULL, NULL, "5002", NULL);
	check_state(m, "A3", "LoggedOut", 50, NULL, NULL, NULL, NULL);

	/* Again: nothing more to drop. */
	st = json_pack("{s:{s:{s:s}, s:[{s:s}]}, s:{s:{s:s}}, s:{s:[{s:s}]}}",
	    "5001", "agent", "agentId", "A1", "calls", "connId", "c1",
	    "5002", "agent", "agentId", "A2", "7000", "calls", "connId", "c4");
	model_reconcile(m, st, BASE + 60, &calls, &agents);
	json_decref(st);
	assert_int_equal(calls + agents, 0);
	model_free(m);
}

/*
 * test_model_adopt - after missed events, what the state hash lists is
 * taken in, from its own "since": an agent the model did not have, an
 * agent in another mode, a call on a phone in another state or new, a
 * call waiting in a queue; routing points and what agrees are left alone
 */
static void
test_model_adopt(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 calls, agents;
	json_t		*st;
	double		 ms = BASE * 1000;

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 0, "EventAgentReady", "5001", "A1", NULL);
	call(m, 10, "EventRinging", "5001", "c1", ",'callType':'Inbound'");
	agent(m, 0, "EventAgentLogin", "5002", "A2", NULL);
	r.len = 0;
	r.log[0] = '\0';

	st = json_pack("{s:{s:{s:s, s:s, s:s, s:f}, s:[{s:s, s:s, s:s, "
	    "s:f}]}, s:{s:{s:s, s:s, s:f}}, s:{s:{s:s, s:s, s:s, s:s, s:f}},"
	    " s:{s:[{s:s, s:s, s:f}]}, s:{s:[{s:s, s:s}]}}",
	    "5001", "agent", "agentId", "A1", "state", "Ready", "workMode",
	    "AutoIn", "since", ms, "calls", "connId", "c1", "state",
	    "Established", "callType", "Inbound", "since", ms + 30000,
	    "5002", "agent", "agentId", "A2", "state", "Ready", "since",
	    ms + 35000,
	    "5003", "agent", "agentId", "A3", "state", "NotReady", "workMode",
	    "AuxWork", "reason", "Break", "since", ms + 20000,
	    "7000", "calls", "connId", "c6", "state", "Queued", "since",
	    ms + 45000,
	    "8000", "calls", "connId", "c7", "state", "Ringing");
	model_adopt(m, st, BASE + 50, &calls, &agents);
	assert_int_equal(calls, 2);		/* c1 answered, c6 waits */
	assert_int_equal(agents, 3);		/* A1's workMode, A2, A3 */
	expect_set(&r, "state A1\n"
	    "end Ringing A1 5001 10..30\n"
	    "start Talking A1 5001 30\n"
	    "start CallInbound A1 5001 30\n"
	    "state A1\n"
	    "end NotReady A2 5002 0..35\n"
	    "start Ready A2 5002 35\n"
	    "state A2\n"
	    "start LoggedIn A3 5003 20\n"
	    "start NotReady A3 5003 20\n"
	    "state A3\n"
	    "state A3\n"		/* its reason */
	    "start CallWaiting - 7000 45\n");
	check_state(m, "A1", "Talking", 50, NULL, "AutoIn", "5001", "c1");
	check_state(m, "A2", "Ready", 35, NULL, NULL, "5002", NULL);
	check_state(m, "A3", "NotReady", 20, "Break", "AuxWork", "5003",
	    NULL);

	/* Again: it all agrees now. */
	model_adopt(m, st, BASE + 60, &calls, &agents);
	assert_int_equal(calls + agents, 0);
	expect(&r, "");
	json_decref(st);
	model_free(m);
}

/*
 * test_model_clear_calls - the voice side restarted: every call and wait
 * ends, the agent is Ready again, entries are forgotten
 */
static void
test_model_clear_calls(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 calls;
	json_t		*dump;

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 0, "EventAgentReady", "5001", "A1", NULL);
	agent(m, 0, "EventAgentLogin", "5002", "A2", NULL);
	call(m, 5, "EventRinging", "8000", "c0", ",'callType':'Inbound'");
	call(m, 10, "EventRinging", "5001", "c1", ",'callType':'Inbound'");
	call(m, 12, "EventEstablished", "5001", "c1", NULL);
	call(m, 20, "EventQueued", "7000", "c2", NULL);
	r.len = 0;
	r.log[0] = '\0';

	model_clear_calls(m, BASE + 50);
	expect_set(&r, "end CallInbound A1 5001 12..50\n"
	    "end Talking A1 5001 12..50\n"
	    "start Ready A1 5001 50\n"
	    "state A1\n"
	    "end CallWaiting - 7000 20..50\n");
	model_count(m, NULL, &calls);
	assert_int_equal(calls, 0);
	check_state(m, "A1", "Ready", 50, NULL, NULL, "5001", NULL);
	check_state(m, "A2", "NotReady", 0, NULL, NULL, "5002", NULL);
	dump = model_dump(m);
	assert_int_equal(json_array_size(json_object_get(dump, "entries")), 0);
	assert_int_equal(json_array_size(json_object_get(dump, "dns")), 0);
	assert_int_equal(json_array_size(json_object_get(dump, "agents")), 2);
	json_decref(dump);

	/* The old routing point entry is forgotten: c0 answered later
	 * counts its ringing only. */
	call(m, 60, "EventRinging", "5002", "c0", ",'callType':'Inbound'");
	call(m, 62, "EventEstablished", "5002", "c0", NULL);
	assert_non_null(strstr(r.log, "instant CallAnswered A2 5002 62 "
	    "wait=2\n"));
	assert_null(strstr(r.log, "8000"));
	model_free(m);
}

/* play_rest - the same events after the snapshot, for both models */
static void
play_rest(struct model *m)
{
	call(m, 130, "EventRetrieved", "5001", "c1", NULL);
	call(m, 140, "EventReleased", "5001", "c1", NULL);
	call(m, 150, "EventDiverted", "8000", "c9", NULL);
	call(m, 150, "EventQueued", "7000", "c9", NULL);
	call(m, 160, "EventDiverted", "7000", "c8", NULL);
	call(m, 160, "EventRinging", "5002", "c8", ",'callType':'Inbound'");
	call(m, 170, "EventEstablished", "5002", "c8", NULL);
	agent(m, 175, "EventAgentReady", "5002", "A2", NULL);
	call(m, 180, "EventReleased", "5002", "c8", NULL);
	agent(m, 190, "EventAgentLogout", "5001", "A1", NULL);
}

/* seed_live - an instance restored quietly, known to have started */
static void
seed_live(const struct inst *i, void *arg)
{
	struct rec	*r = arg;

	assert_true(r->nlive < NELEM(r->live));
	r->live[r->nlive++] = i->id;
}

/*
 * test_model_dump_restore - snapshot and restore: the same instances,
 * states, and the same actions from the events that follow
 */
static void
test_model_dump_restore(void **state)
{
	struct rec	 r = { .len = 0 }, r2 = { .len = 0 };
	struct rec	 e = { .len = 0 }, e2 = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r), *m2;
	struct agent_state s1, s2;
	const char	*ids[] = { "A1", "A2", "A3" };
	json_t		*dump, *back;
	char		*text;
	size_t		 i, c1, c2;

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 5, "EventAgentReady", "5001", "A1", NULL);
	agent(m, 0, "EventAgentLogin", "5002", "A2", NULL);
	agent(m, 30, "EventAgentNotReady", "5002", "A2",
	    ",'workMode':'AuxWork','reason':'Lunch'");
	agent(m, 0, "EventAgentLogin", "5003", "A3", NULL);
	agent(m, 40, "EventAgentLogout", "5003", "A3", NULL);
	call(m, 90, "EventRinging", "8000", "c1", ",'callType':'Inbound'");
	call(m, 91, "EventDiverted", "8000", "c1", NULL);
	call(m, 91, "EventQueued", "7000", "c1", NULL);
	call(m, 95, "EventDiverted", "7000", "c1", NULL);
	call(m, 95, "EventRinging", "5001", "c1",
	    ",'callType':'Inbound','userData':{'Segment':'Gold'}");
	call(m, 100, "EventEstablished", "5001", "c1", NULL);
	call(m, 110, "EventHeld", "5001", "c1", NULL);
	call(m, 100, "EventRinging", "8000", "c9", ",'callType':'Inbound'");
	call(m, 101, "EventQueued", "7000", "c8",
	    ",'userData':{'Priority':2}");

	dump = model_dump(m);
	text = json_dumps(dump, JSON_COMPACT);
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	m2 = model_new(&rec_cbs, &r2);
	assert_int_equal(model_restore(m2, back), 0);
	assert_int_equal(model_restore(m2, NULL) == -1, 1);
	expect(&r2, "");		/* restoring tells nothing */
	model_each(m2, seed_live, &r2);
	r.len = 0;
	r.log[0] = '\0';

	model_each(m, each_line, &e);
	model_each(m2, each_line, &e2);
	assert_true(e.len > 0);
	{
		char	*a = sorted(e.log), *b = sorted(e2.log);

		assert_string_equal(a, b);
		assert_string_equal(a,
		    "CallInbound 1 A1 5001 100 ud={\"Segment\":\"Gold\"}\n"
		    "CallWaiting 0 - 7000 101 ud={\"Priority\":2}\n"
		    "LoggedIn 1 A1 5001 0\n"
		    "LoggedIn 1 A2 5002 0\n"
		    "NotReady 1 A2 5002 0\n"	/* NotReady since login */
		    "OnHold 1 A1 5001 110 ud={\"Segment\":\"Gold\"}\n"
		    "Talking 1 A1 5001 100 ud={\"Segment\":\"Gold\"}\n");
		free(a);
		free(b);
	}
	for (i = 0; i < NELEM(ids); i++) {
		assert_int_equal(model_agent_state(m, ids[i], &s1), 0);
		assert_int_equal(model_agent_state(m2, ids[i], &s2),
		    i < 2 ? 0 : -1);	/* A3 logged out: not kept */
		assert_string_equal(s1.state, s2.state);
		if (i < 2)	/* when A3 logged out is not kept */
			assert_near(s1.since, s2.since);
		assert_true((s1.reason == NULL) == (s2.reason == NULL));
		if (s1.reason != NULL)
			assert_string_equal(s1.reason, s2.reason);
		assert_true((s1.conn_id == NULL) == (s2.conn_id == NULL));
		if (s1.conn_id != NULL)
			assert_string_equal(s1.conn_id, s2.conn_id);
	}
	check_state(m2, "A1", "OnHold", 110, NULL, NULL, "5001", "c1");
	check_state(m2, "A2", "NotReady", 0, "Lunch", "AuxWork", "5002",
	    NULL);
	model_count(m, NULL, &c1);
	model_count(m2, NULL, &c2);
	assert_int_equal(c1, c2);
	assert_string_equal(model_dn_agent(m2, "5002"), "A2");

	/* What follows gives the same actions in both. */
	play_rest(m);
	play_rest(m2);
	assert_string_equal(r.log, r2.log);
	/* c8 entered 7000 at 101 and was answered at 170: 69 s; c9 had
	 * rung on 8000 since 100 when diverted at 150: 50 s. */
	assert_non_null(strstr(r2.log, "instant CallAnswered A2 5002 170 "
	    "wait=69"));
	assert_non_null(strstr(r2.log, "end CallInbound A1 5001 100..140"));
	assert_non_null(strstr(r2.log, "instant CallDistributed - 8000 150 "
	    "wait=50"));
	json_decref(dump);
	json_decref(back);
	free(text);
	model_free(m);
	model_free(m2);
}

/* ---- virtual queues: the routing events ---- */

/* on_instant_r - on_instant, and whether the tenant counted it before */
static void
on_instant_r(const struct inst *i, double duration, void *arg)
{
	assert_true(action_is_instant(i->a));
	rec_add(arg, i, "instant %s %s %s %g wait=%g%s%s", action_name(i->a),
	    i->agent != NULL ? i->agent : "-", i->dn, rel(i->start),
	    round(duration * 1000) / 1000, i->repeat ? " repeat=" : "",
	    i->repeat ? (i->prior != NULL ? i->prior : "-") : "");
}

static const struct model_cbs vq_cbs = {
	kind, on_start, on_end, on_instant_r, on_state
};

/*
 * rev - a routing event as the routing worker writes it (' for "), at
 * BASE + s, of interaction id created at BASE + c, in virtual queue vq;
 * doc: more members of its document, more: of the event (",'k':v")
 */
static void
rev(struct model *m, double s, const char *type, const char *id,
    const char *st, const char *vq, double c, const char *doc,
    const char *more)
{
	char			 buf[1024], *p;
	json_t			*e;
	json_error_t		 err;
	struct model_vq_event	 ve;

	snprintf(buf, sizeof(buf), "{'type':'%s','id':'%s','state':'%s',"
	    "'at':%lld,'created':%lld,'seq':1%s,'interaction':{'id':'%s',"
	    "'virtualQueue':'%s','vq':1%s%s,'strategy':'LongestIdle',"
	    "'priority':0,'timeout':3600%s}}", type, id, st,
	    llround((BASE + s) * 1000), llround((BASE + c) * 1000),
	    more != NULL ? more : "", id, vq, vq, "", doc != NULL ? doc : "");
	for (p = buf; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	if ((e = json_loads(buf, 0, &err)) == NULL)
		fail_msg("%s: %s", buf, err.text);
	assert_int_equal(model_vq_event_of(e, &ve), 0);
	model_apply_vq(m, &ve, 1.0);	/* the event's time must win */
	json_decref(e);
}

/*
 * test_model_vq - interactions that are not calls, through every change
 * of state: entered and waiting when queued, distributed when an agent is
 * reserved, entered again when it comes back (the queue counts it again,
 * the tenant not), answered when accepted, abandoned when it ends while
 * waiting (cancelled, timed out), nothing when it ends with an agent;
 * restored by a Redis that lost it: waiting since created, not entered
 */
static void
test_model_vq(void **state)
{
	struct rec		 r = { .len = 0 };
	struct model		*m = model_new(&vq_cbs, &r);
	struct model_vq_event	 ve;
	json_t			*e;
	size_t			 w;

	rev(m, 10, "queued", "i1", "queued", "7500", 10,
	    ",'userData':{'k':1}", NULL);
	expect(&r, "start CallWaiting - 7500 10 ud={\"k\":1}\n"
	    "instant CallEntered - 7500 10 wait=0 ud={\"k\":1}\n");
	rev(m, 12, "queued", "i2", "queued", "7500", 12, NULL, NULL);
	rev(m, 12, "queued", "i2", "queued", "7500", 12, NULL, NULL);
	expect(&r, "start CallWaiting - 7500 12\n"
	    "instant CallEntered - 7500 12 wait=0\n");	/* once */
	/* A new document: its userData from now on. */
	rev(m, 13, "updated", "i2", "queued", "7500", 12,
	    ",'userData':{'k':2}", NULL);
	expect(&r, "");
	assert_int_equal(model_vq_count(m, &w), 2);
	assert_int_equal(w, 2);

	/* Reserved at 20: distributed after 10 s. */
	rev(m, 20, "reserved", "i1", "reserved", "7500", 10,
	    ",'userData':{'k':1}", ",'agent':5,'dn':'5001','until':0");
	expect(&r, "instant CallDistributed - 7500 20 wait=10 ud={\"k\":1}\n"
	    "end CallWaiting - 7500 10..20 ud={\"k\":1}\n");
	/* Rejected at 25: it enters again, for the queue only. */
	rev(m, 25, "rejected", "i1", "queued", "7500", 10,
	    ",'userData':{'k':1}", ",'from':5");
	expect(&r, "start CallWaiting - 7500 25 ud={\"k\":1}\n"
	    "instant CallEntered - 7500 25 wait=0 repeat=7500 "
	    "ud={\"k\":1}\n");
	/* Reserved again, the reservation runs out: the same. */
	rev(m, 28, "reserved", "i1", "reserved", "7500", 10, NULL, NULL);
	rev(m, 30, "timed-out", "i1", "queued", "7500", 10, NULL, NULL);
	expect(&r, "instant CallDistributed - 7500 28 wait=3 ud={\"k\":1}\n"
	    "end CallWaiting - 7500 25..28 ud={\"k\":1}\n"
	    "start CallWaiting - 7500 30\n"
	    "instant CallEntered - 7500 30 wait=0 repeat=7500\n");
	/* Reserved, accepted: answered 22 s after it was created. */
	rev(m, 31, "reserved", "i1", "reserved", "7500", 10, NULL, NULL);
	rev(m, 32, "accepted", "i1", "accepted", "7500", 10,
	    ",'userData':{'k':3}", NULL);
	rev(m, 90, "completed", "i1", "completed", "7500", 10, NULL, NULL);
	expect(&r, "instant CallDistributed - 7500 31 wait=1\n"
	    "end CallWaiting - 7500 30..31\n"
	    "instant CallAnswered - 7500 32 wait=22 ud={\"k\":3}\n");
	/* Cancelled while waiting: abandoned after 28 s. */
	rev(m, 40, "cancelled", "i2", "cancelled", "7500", 12, NULL, NULL);
	/* (The wait keeps the userData it started with, as a voice call's
	 * in a queue does.) */
	expect(&r, "instant CallAbandoned - 7500 40 wait=28 ud={\"k\":2}\n"
	    "end CallWaiting - 7500 12..40\n");
	/* Timed out while waiting: abandoned too. */
	rev(m, 50, "queued", "i3", "queued", "7500", 50, NULL, NULL);
	rev(m, 60, "timed-out", "i3", "timed-out", "7500", 50, NULL, NULL);
	expect(&r, "start CallWaiting - 7500 50\n"
	    "instant CallEntered - 7500 50 wait=0\n"
	    "instant CallAbandoned - 7500 60 wait=10\n"
	    "end CallWaiting - 7500 50..60\n");
	/* Cancelled with an agent: not an abandon of the queue. */
	rev(m, 61, "queued", "i7", "queued", "7500", 61, NULL, NULL);
	rev(m, 62, "reserved", "i7", "reserved", "7500", 61, NULL, NULL);
	rev(m, 63, "cancelled", "i7", "cancelled", "7500", 61, NULL, NULL);
	expect(&r, "start CallWaiting - 7500 61\n"
	    "instant CallEntered - 7500 61 wait=0\n"
	    "instant CallDistributed - 7500 62 wait=1\n"
	    "end CallWaiting - 7500 61..62\n");
	/* Its queued and reserved missed: nothing made up; the answer seen
	 * counts. */
	rev(m, 70, "reserved", "i4", "reserved", "7500", 65, NULL, NULL);
	rev(m, 71, "accepted", "i4", "accepted", "7500", 65, NULL, NULL);
	rev(m, 72, "completed", "i4", "completed", "7500", 65, NULL, NULL);
	expect(&r, "instant CallAnswered - 7500 71 wait=6\n");
	/* An event of one the model never knew that ends it: nothing. */
	rev(m, 73, "cancelled", "i8", "cancelled", "7500", 65, NULL, NULL);
	expect(&r, "");
	/* Put back by a Redis that lost it: it waited since created. */
	rev(m, 80, "queued", "i5", "queued", "7500", 5, NULL,
	    ",'restored':true");
	expect(&r, "start CallWaiting - 7500 5\n");
	/* Known and waiting: restored changes nothing. */
	rev(m, 81, "queued", "i5", "queued", "7500", 5, NULL,
	    ",'restored':true");
	expect(&r, "");
	/* Moved to another queue: it left the first, entered the other. */
	rev(m, 85, "updated", "i5", "queued", "7501", 5, NULL, NULL);
	expect(&r, "end CallWaiting - 7500 5..85\n"
	    "start CallWaiting - 7501 85\n"
	    "instant CallEntered - 7501 85 wait=0\n");
	assert_int_equal(model_vq_count(m, &w), 1);
	assert_int_equal(w, 1);

	/* Not an event the model can use: no id, state or queue. */
	e = json_pack("{s:s, s:s, s:{s:s}}", "type", "queued", "state",
	    "queued", "interaction", "virtualQueue", "7500");
	assert_int_equal(model_vq_event_of(e, &ve), -1);
	json_decref(e);
	e = json_pack("{s:s, s:s, s:s, s:{}}", "type", "queued", "id", "x",
	    "state", "queued", "interaction");
	assert_int_equal(model_vq_event_of(e, &ve), -1);
	json_decref(e);
	model_free(m);
}

/*
 * test_model_vq_calls - a routing point's calls in a virtual queue, with
 * the voice events of the routing point and the agent's phone: the
 * tenant counts a call's entry and abandon once (the routing point's),
 * the virtual queue's copy of the answer comes from the agent's phone,
 * and a call that timed out of the virtual queue into an ACD queue is
 * that queue's call when answered
 */
static void
test_model_vq_calls(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&vq_cbs, &r);
	const char	*rp = ",'connId':'c1','routingPoint':'8000'";

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 0, "EventAgentReady", "5001", "A1", NULL);
	call(m, 10, "EventRouteRequest", "8000", "c1",
	    ",'callType':'Inbound'");
	r.len = 0;
	r.log[0] = '\0';
	rev(m, 10.5, "queued", "rp-c1-1", "queued", "7500", 10.5, rp, NULL);
	expect(&r, "start CallWaiting - 7500 10.5\n"
	    "instant CallEntered - 7500 10.5 wait=0 repeat=8000\n");
	rev(m, 15, "reserved", "rp-c1-1", "reserved", "7500", 10.5, rp, NULL);
	expect(&r, "instant CallDistributed - 7500 15 wait=4.5\n"
	    "end CallWaiting - 7500 10.5..15\n");
	call(m, 15.1, "EventRouteUsed", "8000", "c1", NULL);
	call(m, 15.2, "EventRinging", "5001", "c1", ",'callType':'Inbound'");
	call(m, 18, "EventEstablished", "5001", "c1", NULL);
	/* Answered 8 s after it entered the routing point: the agent's,
	 * and the copies of the virtual queue and the routing point. */
	assert_non_null(strstr(r.log, "instant CallAnswered A1 5001 18 "
	    "wait=8\n"));
	assert_non_null(strstr(r.log, "instant CallAnswered - 7500 18 wait=8 "
	    "repeat=-\n"));
	assert_non_null(strstr(r.log, "instant CallAnswered - 8000 18 wait=8 "
	    "repeat=7500\n"));
	r.len = 0;
	r.log[0] = '\0';
	/* Accepted, completed: the phone said it all. */
	rev(m, 18.1, "accepted", "rp-c1-1", "accepted", "7500", 10.5, rp,
	    NULL);
	rev(m, 60, "completed", "rp-c1-1", "completed", "7500", 10.5, rp,
	    NULL);
	expect(&r, "");

	/* The caller hangs up while waiting: the routing point's abandon;
	 * the virtual queue's is not the tenant's again. */
	rp = ",'connId':'c2','routingPoint':'8000'";
	call(m, 100, "EventRouteRequest", "8000", "c2",
	    ",'callType':'Inbound'");
	rev(m, 100, "queued", "rp-c2-1", "queued", "7500", 100, rp, NULL);
	rev(m, 130, "abandoned", "rp-c2-1", "abandoned", "7500", 100, rp,
	    NULL);
	call(m, 130, "EventAbandoned", "8000", "c2", NULL);
	expect(&r, "instant CallEntered - 8000 100 wait=0\n"
	    "start CallWaiting - 7500 100\n"
	    "instant CallEntered - 7500 100 wait=0 repeat=8000\n"
	    "instant CallAbandoned - 7500 130 wait=30 repeat=8000\n"
	    "end CallWaiting - 7500 100..130\n"
	    "instant CallAbandoned - 8000 130 wait=30\n");

	/* Timed out of the virtual queue, to the ACD queue 7000: an abandon
	 * of the virtual queue (the tenant's: nobody else counts it), and
	 * the call is 7000's when answered. */
	rp = ",'connId':'c3','routingPoint':'8000'";
	call(m, 200, "EventRouteRequest", "8000", "c3",
	    ",'callType':'Inbound'");
	rev(m, 200, "queued", "rp-c3-1", "queued", "7500", 200, rp, NULL);
	rev(m, 320, "timed-out", "rp-c3-1", "timed-out", "7500", 200, rp,
	    NULL);
	call(m, 320, "EventRouteUsed", "8000", "c3", NULL);
	call(m, 320, "EventQueued", "7000", "c3", NULL);
	expect(&r, "instant CallEntered - 8000 200 wait=0\n"
	    "start CallWaiting - 7500 200\n"
	    "instant CallEntered - 7500 200 wait=0 repeat=8000\n"
	    "instant CallAbandoned - 7500 320 wait=120\n"
	    "end CallWaiting - 7500 200..320\n"
	    "instant CallDistributed - 8000 320 wait=120\n"
	    "start CallWaiting - 7000 320\n"
	    "instant CallEntered - 7000 320 wait=0 repeat=8000\n");
	call(m, 330, "EventDiverted", "7000", "c3", NULL);
	call(m, 330, "EventRinging", "5001", "c3", ",'callType':'Inbound'");
	call(m, 335, "EventEstablished", "5001", "c3", NULL);
	assert_non_null(strstr(r.log, "instant CallAnswered - 7000 335 "
	    "wait=135 repeat=-\n"));
	assert_null(strstr(r.log, "CallAnswered - 7500"));
	model_free(m);
}

/*
 * test_model_vq_voice_side - the virtual queues are the routing worker's:
 * a reconcile with the voice state hash, or a restart of the voice side,
 * leaves their interactions waiting
 */
static void
test_model_vq_voice_side(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&rec_cbs, &r);
	size_t		 calls, agents, w;
	json_t		*st;

	rev(m, 10, "queued", "i1", "queued", "7500", 10, NULL, NULL);
	call(m, 11, "EventQueued", "7500", "c1", NULL);	/* the voice side's */
	call(m, 12, "EventQueued", "7000", "c2", NULL);
	r.len = 0;
	r.log[0] = '\0';
	st = json_object();
	model_reconcile(m, st, BASE + 50, &calls, &agents);
	json_decref(st);
	assert_int_equal(calls, 2);
	expect_set(&r, "end CallWaiting - 7500 11..50\n"
	    "end CallWaiting - 7000 12..50\n");
	model_clear_calls(m, BASE + 60);
	expect(&r, "");
	assert_int_equal(model_vq_count(m, &w), 1);
	assert_int_equal(w, 1);
	rev(m, 70, "reserved", "i1", "reserved", "7500", 10, NULL, NULL);
	expect(&r, "instant CallDistributed - 7500 70 wait=60\n"
	    "end CallWaiting - 7500 10..70\n");
	model_free(m);
}

/* live - the routing state of one interaction, as the cut gives it */
static json_t *
live(const char *id, const char *st, const char *vq, double c)
{
	return json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "id", id, "state",
	    st, "created", (json_int_t)llround((BASE + c) * 1000),
	    "interaction", "id", id, "virtualQueue", vq);
}

/*
 * test_model_vq_reconcile - after missed routing events: what the
 * routing state does not list ends, what it lists in another state
 * changes (back waiting: from now), what the model lacks is taken in
 * (waiting since created); nothing instant is made up
 */
static void
test_model_vq_reconcile(void **state)
{
	struct rec	 r = { .len = 0 };
	struct model	*m = model_new(&vq_cbs, &r);
	json_t		*l;
	size_t		 ended, taken, w;

	rev(m, 10, "queued", "i1", "queued", "7500", 10, NULL, NULL);
	rev(m, 11, "queued", "i2", "queued", "7500", 11, NULL, NULL);
	rev(m, 12, "reserved", "i2", "reserved", "7500", 11, NULL, NULL);
	rev(m, 13, "queued", "i3", "queued", "7500", 13, NULL, NULL);
	rev(m, 14, "queued", "i4", "queued", "7501", 14, NULL, NULL);
	rev(m, 15, "reserved", "i4", "reserved", "7501", 14, NULL, NULL);
	rev(m, 16, "queued", "i9", "queued", "7500", 16, NULL, NULL);
	r.len = 0;
	r.log[0] = '\0';
	l = json_array();
	json_array_append_new(l, live("i1", "queued", "7500", 10));
	json_array_append_new(l, live("i2", "queued", "7500", 11));
	json_array_append_new(l, live("i4", "reserved", "7501", 14));
	json_array_append_new(l, live("i5", "queued", "7500", 20));
	json_array_append_new(l, live("i6", "accepted", "7500", 21));
	json_array_append_new(l, live("i9", "queued", "7501", 16));
	json_array_append_new(l, live("i8", "completed", "7500", 22));
	model_vq_reconcile(m, l, BASE + 50, &ended, &taken);
	/* i3 is not listed and i9 is elsewhere: they end; i2 is back, i5,
	 * i6 and i9 (in 7501) are taken in. */
	assert_int_equal(ended, 2);
	assert_int_equal(taken, 4);
	expect_set(&r, "end CallWaiting - 7500 13..50\n"
	    "end CallWaiting - 7500 16..50\n"
	    "start CallWaiting - 7500 50\n"
	    "start CallWaiting - 7500 20\n"
	    "start CallWaiting - 7501 16\n");
	assert_int_equal(model_vq_count(m, &w), 6);
	assert_int_equal(w, 4);
	/* Again: it agrees. */
	model_vq_reconcile(m, l, BASE + 60, &ended, &taken);
	assert_int_equal(ended + taken, 0);
	expect(&r, "");
	json_decref(l);
	/* What follows counts as usual. */
	rev(m, 70, "reserved", "i5", "reserved", "7500", 20, NULL, NULL);
	rev(m, 71, "completed", "i6", "completed", "7500", 21, NULL, NULL);
	expect(&r, "instant CallDistributed - 7500 70 wait=50\n"
	    "end CallWaiting - 7500 20..70\n");
	/* Nothing listed: everything ends. */
	l = json_array();
	model_vq_reconcile(m, l, BASE + 80, &ended, &taken);
	json_decref(l);
	assert_int_equal(ended, 5);
	assert_int_equal(model_vq_count(m, &w), 0);
	model_free(m);
}

/*
 * test_model_vq_dump_restore - the virtual queues' interactions in the
 * snapshot: the same waits after a restore, and the same actions from
 * the routing events that follow
 */
static void
test_model_vq_dump_restore(void **state)
{
	struct rec	 r = { .len = 0 }, r2 = { .len = 0 };
	struct rec	 e = { .len = 0 }, e2 = { .len = 0 };
	struct model	*m = model_new(&vq_cbs, &r), *m2;
	json_t		*dump, *back;
	char		*text, *a, *b;
	size_t		 w1, w2;
	const char	*rp = ",'connId':'c1','routingPoint':'8000'";

	rev(m, 10, "queued", "i1", "queued", "7500", 10,
	    ",'userData':{'k':1}", NULL);
	rev(m, 11, "queued", "i2", "queued", "7500", 11, NULL, NULL);
	rev(m, 12, "reserved", "i2", "reserved", "7500", 11, NULL, NULL);
	call(m, 13, "EventRouteRequest", "8000", "c1",
	    ",'callType':'Inbound'");
	rev(m, 13, "queued", "rp-c1-1", "queued", "7500", 13, rp, NULL);
	call(m, 14, "EventQueued", "7000", "c9", NULL);

	dump = model_dump(m);
	text = json_dumps(dump, JSON_COMPACT);
	back = json_loads(text, 0, NULL);
	m2 = model_new(&vq_cbs, &r2);
	assert_int_equal(model_restore(m2, back), 0);
	expect(&r2, "");
	model_each(m2, seed_live, &r2);
	r.len = 0;
	r.log[0] = '\0';
	model_each(m, each_line, &e);
	model_each(m2, each_line, &e2);
	a = sorted(e.log);
	b = sorted(e2.log);
	assert_string_equal(a, b);
	assert_string_equal(a, "CallWaiting 0 - 7000 14\n"
	    "CallWaiting 0 - 7500 10 ud={\"k\":1}\n"
	    "CallWaiting 0 - 7500 13\n");
	free(a);
	free(b);
	assert_int_equal(model_vq_count(m, &w1), model_vq_count(m2, &w2));
	assert_int_equal(w1, w2);

	/* What follows gives the same actions in both. */
	rev(m, 20, "accepted", "i2", "accepted", "7500", 11, NULL, NULL);
	rev(m2, 20, "accepted", "i2", "accepted", "7500", 11, NULL, NULL);
	rev(m, 21, "reserved", "i1", "reserved", "7500", 10, NULL, NULL);
	rev(m2, 21, "reserved", "i1", "reserved", "7500", 10, NULL, NULL);
	rev(m, 22, "abandoned", "rp-c1-1", "abandoned", "7500", 13, rp, NULL);
	rev(m2, 22, "abandoned", "rp-c1-1", "abandoned", "7500", 13, rp,
	    NULL);
	assert_string_equal(r.log, r2.log);
	assert_string_equal(r.log,
	    "instant CallAnswered - 7500 20 wait=9\n"
	    "instant CallDistributed - 7500 21 wait=11 ud={\"k\":1}\n"
	    "end CallWaiting - 7500 10..21 ud={\"k\":1}\n"
	    "instant CallAbandoned - 7500 22 wait=9 repeat=8000\n"
	    "end CallWaiting - 7500 13..22\n");
	/* The call's entry came back: the routing point's abandon is timed
	 * from it. */
	r2.len = 0;
	r2.log[0] = '\0';
	call(m2, 30, "EventAbandoned", "8000", "c1", NULL);
	expect(&r2, "instant CallAbandoned - 8000 30 wait=17\n");
	json_decref(dump);
	json_decref(back);
	free(text);
	model_free(m);
	model_free(m2);
}

/* ---- types and profiles ---- */

/* test_stype_builtin - the shipped types, as docs/stats.md lists them */
static void
test_stype_builtin(void **state)
{
	static const struct {
		const char	*name;
		enum category	 cat;
		uint32_t	 actions;
		int		 per;
	} want[] = {
		{ "CurrentAgentState", CAT_CURRENT_STATE, 0, -1 },
		{ "CurrentNumberReadyAgents", CAT_CURRENT_NUMBER, A(A_READY),
		    -1 },
		{ "CurrentNumberNotReadyAgents", CAT_CURRENT_NUMBER,
		    A(A_NOT_READY) | A(A_ACW), -1 },
		{ "CurrentNumberTalkingAgents", CAT_CURRENT_NUMBER,
		    A(A_TALKING), -1 },
		{ "CurrentNumberLoggedInAgents", CAT_CURRENT_NUMBER,
		    A(A_LOGGED_IN), -1 },
		{ "CurrentNumberWaitingCalls", CAT_CURRENT_NUMBER,
		    A(A_WAITING), -1 },
		{ "CurrentMaxWaitingTime", CAT_CURRENT_MAX_TIME, A(A_WAITING),
		    -1 },
		{ "TotalNumberInboundCalls", CAT_TOTAL_NUMBER, A(A_ENTERED),
		    -1 },
		{ "TotalNumberAnsweredCalls", CAT_TOTAL_NUMBER, A(A_ANSWERED),
		    -1 },
		{ "TotalNumberAbandonedCalls", CAT_TOTAL_NUMBER,
		    A(A_ABANDONED), -1 },
		{ "TotalTalkTime", CAT_TOTAL_TIME, A(A_TALKING), -1 },
		{ "AverageHandlingTime", CAT_AVERAGE_TIME, A(A_INBOUND) |
		    A(A_ACW), A_ANSWERED },
		{ "AverageSpeedOfAnswer", CAT_AVERAGE_TIME, A(A_ANSWERED), -1 },
		{ "ServiceFactor", CAT_SERVICE_FACTOR, A(A_ANSWERED) |
		    A(A_ABANDONED), -1 },
		{ "TotalLoginTime", CAT_TOTAL_TIME, A(A_LOGGED_IN), -1 },
		{ "CurrentAgentStatus", CAT_AGENT_STATUS, 0, -1 },
		{ "ExpectedWaitTime", CAT_ESTIM_WAIT_TIME, A(A_WAITING),
		    A_DISTRIBUTED },
	};
	const struct stype	*all, *t;
	json_t			*j;
	char			*s;
	size_t			 i;

	assert_int_equal(stype_builtins(&all), NELEM(want));
	for (i = 0; i < NELEM(want); i++) {
		t = stype_builtin(want[i].name);
		assert_non_null(t);
		assert_int_equal(t->cat, want[i].cat);
		assert_int_equal(t->actions, want[i].actions);
		assert_int_equal(t->per, want[i].per);
	}
	assert_near(stype_builtin("ServiceFactor")->threshold, 20);
	assert_true(stype_builtin("CurrentNumberWaitingCalls")->objects &
	    OB(OBJ_QUEUE));
	assert_false(stype_builtin("CurrentNumberWaitingCalls")->objects &
	    OB(OBJ_AGENT));
	assert_true(stype_builtin("CurrentAgentState")->objects &
	    OB(OBJ_PLACE));
	assert_null(stype_builtin("NoSuchType"));
	assert_null(stype_builtin(""));

	j = stype_json(stype_builtin("AverageHandlingTime"));
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"category\":\"AverageTime\",\"actions\":"
	    "[\"AfterCallWork\",\"CallInbound\"],\"per\":\"CallAnswered\","
	    "\"objects\":[\"Agent\",\"Place\",\"GroupAgents\",\"GroupPlaces\","
	    "\"Tenant\"]}");
	free(s);
	json_decref(j);

	assert_int_equal(object_kind_by_name("AgentGroup"), OBJ_AGENT_GROUP);
	assert_int_equal(object_kind_by_name("DNGroup"), OBJ_DN_GROUP);
	assert_int_equal(object_kind_by_name("Queue"), OBJ_QUEUE);
	assert_int_equal(object_kind_by_name("queue"), -1);
	assert_int_equal(action_by_name("CallAbandoned"), A_ABANDONED);
	assert_int_equal(action_by_name("Abandoned"), -1);
}

/* parse - stype_parse of a JSON text written with ' for " */
static int
parse(const char *src, struct stype *t, char *why, size_t len)
{
	char	 buf[512], *p;
	json_t	*j;
	int	 rc;

	snprintf(buf, sizeof(buf), "%s", src);
	for (p = buf; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(buf, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	why[0] = '\0';
	rc = stype_parse(j, "T", t, why, len);
	json_decref(j);
	return rc;
}

/* test_stype_parse - inline and options-section types; errors say why */
static void
test_stype_parse(void **state)
{
	static const struct {
		const char	*def;
		const char	*why;	/* a part of the error */
	} bad[] = {
		{ "'TotalNumber'", "object" },
		{ "{}", "category: required" },
		{ "{'category':'Bogus','actions':'Ready'}", "Bogus" },
		{ "{'category':'TotalNumber'}", "actions: required" },
		{ "{'category':'TotalNumber','actions':'Ready, Sleeping'}",
		    "Sleeping" },
		{ "{'category':'TotalNumber','actions':['Ready',3]}",
		    "non-string" },
		{ "{'category':'TotalNumber','actions':7}", "actions" },
		{ "{'category':'AverageTime','actions':'Talking',"
		    "'per':'Nothing'}", "per: Nothing" },
		{ "{'category':'ServiceFactor','threshold':-1}", "threshold" },
		{ "{'category':'ServiceFactor','threshold':'86400'}",
		    "threshold" },
		{ "{'category':'ServiceFactor','threshold':'soon'}",
		    "threshold" },
		{ "{'category':'ServiceFactor','threshold':true}",
		    "threshold" },
		{ "{'category':'TotalNumber','actions':'CallAnswered',"
		    "'filter':'Segment=Gold'}", "filter" },
		{ "{'category':'TotalNumber','actions':'CallAnswered',"
		    "'filter':'userData.=Gold'}", "filter" },
		{ "{'category':'TotalNumber','actions':'CallAnswered',"
		    "'filter':'userData.Segment'}", "filter" },
	};
	struct stype	 t;
	char		 why[256];
	size_t		 i;

	/* Inline, as a client sends it. */
	assert_int_equal(parse("{'category':'TotalNumber','actions':"
	    "['CallAnswered'],'filter':'userData.Segment=Gold',"
	    "'media':'voice'}", &t, why, sizeof(why)), 0);
	assert_string_equal(t.name, "T");
	assert_int_equal(t.cat, CAT_TOTAL_NUMBER);
	assert_int_equal(t.actions, A(A_ANSWERED));
	assert_int_equal(t.per, -1);
	assert_string_equal(t.filter_key, "Segment");
	assert_string_equal(t.filter_val, "Gold");
	assert_string_equal(t.media, "voice");
	assert_int_equal(t.objects, OB_ALL);

	/* An options section: every value a string. */
	assert_int_equal(parse("{'category':'CurrentNumber','actions':"
	    "'Ready, NotReady'}", &t, why, sizeof(why)), 0);
	assert_int_equal(t.actions, A(A_READY) | A(A_NOT_READY));
	assert_int_equal(parse("{'category':'AverageTime','actions':"
	    "'CallInbound,AfterCallWork','per':'CallAnswered'}", &t, why,
	    sizeof(why)), 0);
	assert_int_equal(t.actions, A(A_INBOUND) | A(A_ACW));
	assert_int_equal(t.per, A_ANSWERED);
	assert_int_equal(parse("{'category':'ServiceFactor','threshold':'30'}",
	    &t, why, sizeof(why)), 0);
	assert_int_equal(t.actions, A(A_ANSWERED) | A(A_ABANDONED));
	assert_near(t.threshold, 30);
	assert_int_equal(parse("{'category':'ServiceFactor','threshold':12.5}",
	    &t, why, sizeof(why)), 0);
	assert_near(t.threshold, 12.5);
	assert_int_equal(parse("{'category':'ServiceFactor'}", &t, why,
	    sizeof(why)), 0);
	assert_near(t.threshold, 20);
	assert_int_equal(parse("{'category':'TotalNumber','actions':"
	    "'CallAnswered','filter':'userData.Priority=5'}", &t, why,
	    sizeof(why)), 0);
	assert_string_equal(t.filter_key, "Priority");
	assert_string_equal(t.filter_val, "5");
	assert_int_equal(parse("{'category':'CurrentState'}", &t, why,
	    sizeof(why)), 0);
	assert_int_equal(t.objects, OB_AGENTS);

	for (i = 0; i < NELEM(bad); i++) {
		if (parse(bad[i].def, &t, why, sizeof(why)) != -1)
			fail_msg("%s accepted", bad[i].def);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("%s: \"%s\" does not say %s", bad[i].def, why,
			    bad[i].why);
	}
}

/* prof - profile_parse of a JSON text written with ' for " */
static int
prof(const char *src, struct profile *p, char *why, size_t len)
{
	char	 buf[512], *s;
	json_t	*j;
	int	 rc;

	snprintf(buf, sizeof(buf), "%s", src);
	for (s = buf; *s != '\0'; s++)
		if (*s == '\'')
			*s = '"';
	j = json_loads(buf, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	why[0] = '\0';
	rc = profile_parse(j, p, why, len);
	json_decref(j);
	return rc;
}

/* test_profile_parse - Growing with resets, Sliding, SinceLogin; errors */
static void
test_profile_parse(void **state)
{
	static const char *const bad[] = {
		"'Growing'", "{}", "{'type':'Weekly'}",
		"{'type':'Growing','reset':'00:00'}",
		"{'type':'Growing','reset':['24:00']}",
		"{'type':'Growing','reset':['7']}",
		"{'type':'Growing','reset':['07:60']}",
		"{'type':'Growing','reset':['07:00x']}",
		"{'type':'Growing','reset':[700]}",
		"{'type':'Growing','reset':['0:00','1:00','2:00','3:00',"
		    "'4:00','5:00','6:00','7:00','8:00']}",
		"{'type':'Sliding'}",
		"{'type':'Sliding','window':5}",
		"{'type':'Sliding','window':60,'step':0.5}",
		"{'type':'Sliding','window':86400,'step':10}",
	};
	struct profile	 p;
	char		 why[256], key[64];
	size_t		 i;

	assert_int_equal(profile_parse(NULL, &p, why, sizeof(why)), 0);
	assert_int_equal(p.kind, PROF_GROWING);
	assert_int_equal(p.nresets, 1);
	assert_int_equal(p.resets[0], 0);
	assert_int_equal(prof("{'type':'Growing','reset':['00:00','12:30']}",
	    &p, why, sizeof(why)), 0);
	assert_int_equal(p.nresets, 2);
	assert_int_equal(p.resets[1], 12 * 60 + 30);
	profile_key(&p, key, sizeof(key));
	assert_string_equal(key, "G0,750");
	assert_int_equal(prof("{'type':'Growing','reset':[]}", &p, why,
	    sizeof(why)), 0);
	assert_int_equal(p.nresets, 0);
	assert_int_equal(prof("{'type':'Sliding','window':300}", &p, why,
	    sizeof(why)), 0);
	assert_int_equal(p.kind, PROF_SLIDING);
	assert_near(p.window, 300);
	assert_near(p.step, 10);
	assert_int_equal(prof("{'type':'Sliding','window':60,'step':15}", &p,
	    why, sizeof(why)), 0);
	assert_near(p.step, 15);
	profile_key(&p, key, sizeof(key));
	assert_string_equal(key, "S60/15");
	assert_int_equal(prof("{'type':'SinceLogin'}", &p, why, sizeof(why)),
	    0);
	assert_int_equal(p.kind, PROF_SINCE_LOGIN);
	for (i = 0; i < NELEM(bad); i++) {
		if (prof(bad[i], &p, why, sizeof(why)) != -1)
			fail_msg("%s accepted", bad[i]);
		assert_true(strncmp(why, "profile", 7) == 0);
	}
}

/* test_profile_next_reset - in UTC and other zones, across midnight */
static void
test_profile_next_reset(void **state)
{
	struct profile	 p;
	char		 why[256];

	/* BASE is 06:53:20 UTC: the next 00:00 UTC is DAY0 + 1 day. */
	profile_parse(NULL, &p, why, sizeof(why));
	assert_near(profile_next_reset(&p, BASE, 0), DAY0 + 86400);
	/* At a reset, the one after it. */
	assert_near(profile_next_reset(&p, DAY0, 0), DAY0 + 86400);
	/* 23:59 UTC: a minute later, across midnight. */
	assert_near(profile_next_reset(&p, DAY0 + 86340, 0), DAY0 + 86400);
	/* UTC+2: 08:53:20 local; local midnight is 22:00 UTC. */
	assert_near(profile_next_reset(&p, BASE, 7200), DAY0 + 86400 - 7200);
	/* UTC+2 at 23:00 UTC, 01:00 local the next day: 22:00 UTC next. */
	assert_near(profile_next_reset(&p, DAY0 + 82800, 7200),
	    DAY0 + 2 * 86400 - 7200);
	/* UTC-5 at 03:00 UTC, 22:00 local the day before: 05:00 UTC. */
	assert_near(profile_next_reset(&p, DAY0 + 3 * 3600, -18000),
	    DAY0 + 5 * 3600);
	/* 00:00 and 12:30: from 06:53:20 the 12:30 comes first. */
	prof("{'type':'Growing','reset':['12:30','00:00']}", &p, why,
	    sizeof(why));
	assert_near(profile_next_reset(&p, BASE, 0), DAY0 + 45000);
	assert_near(profile_next_reset(&p, DAY0 + 45000, 0), DAY0 + 86400);
	/* 12:30 in UTC-5 is 17:30 UTC. */
	assert_near(profile_next_reset(&p, BASE, -18000), DAY0 + 63000);
	prof("{'type':'Growing','reset':[]}", &p, why, sizeof(why));
	assert_near(profile_next_reset(&p, BASE, 0), 0);
	prof("{'type':'Sliding','window':60}", &p, why, sizeof(why));
	assert_near(profile_next_reset(&p, BASE, 0), 0);
	prof("{'type':'SinceLogin'}", &p, why, sizeof(why));
	assert_near(profile_next_reset(&p, BASE, 0), 0);
}

/* test_profile_period_start - where a Growing period began: its last reset */
static void
test_profile_period_start(void **state)
{
	struct profile	 p;
	char		 why[256];

	profile_parse(NULL, &p, why, sizeof(why));
	assert_near(profile_period_start(&p, BASE, 0), DAY0);
	/* At a reset, that reset. */
	assert_near(profile_period_start(&p, DAY0, 0), DAY0);
	assert_near(profile_period_start(&p, DAY0 + 86399, 0), DAY0);
	/* UTC+2: 08:53:20 local; local midnight was 22:00 UTC the day
	 * before.  UTC-5 at 03:00 UTC: 22:00 local, midnight 05:00 UTC the
	 * day before. */
	assert_near(profile_period_start(&p, BASE, 7200), DAY0 - 7200);
	assert_near(profile_period_start(&p, DAY0 + 3 * 3600, -18000),
	    DAY0 - 86400 + 5 * 3600);
	prof("{'type':'Growing','reset':['12:30','00:00']}", &p, why,
	    sizeof(why));
	assert_near(profile_period_start(&p, BASE, 0), DAY0);
	assert_near(profile_period_start(&p, DAY0 + 50000, 0), DAY0 + 45000);
	prof("{'type':'Growing','reset':[]}", &p, why, sizeof(why));
	assert_near(profile_period_start(&p, BASE, 0), 0);
	prof("{'type':'Sliding','window':60}", &p, why, sizeof(why));
	assert_near(profile_period_start(&p, BASE, 0), BASE);
	prof("{'type':'SinceLogin'}", &p, why, sizeof(why));
	assert_near(profile_period_start(&p, BASE, 0), BASE);
}

/* ---- accumulators ---- */

static struct profile	growing;

/* mk - an instance; s: its start (BASE + s) */
static struct inst *
mk(struct inst *i, uint64_t id, enum action a, double s, const json_t *ud)
{
	memset(i, 0, sizeof(*i));
	i->id = id;
	i->a = a;
	i->of_agent = 1;
	i->agent = "A1";
	i->dn = "5001";
	i->start = BASE + s;
	i->user_data = ud;
	return i;
}

/* custom - a type from its definition, ' for " */
static struct stype
custom(const char *def)
{
	struct stype	t;
	char		why[256];

	if (parse(def, &t, why, sizeof(why)) == -1)
		fail_msg("%s: %s", def, why);
	return t;
}

/* test_acc_current - CurrentNumber and CurrentMaxTime */
static void
test_acc_current(void **state)
{
	struct acc	*a;
	struct inst	 i1, i2, i3;

	a = acc_new(stype_builtin("CurrentNumberReadyAgents"), &growing, BASE);
	assert_true(acc_wants(a, mk(&i1, 1, A_READY, 0, NULL)));
	assert_false(acc_wants(a, mk(&i3, 3, A_NOT_READY, 5, NULL)));
	acc_start(a, &i1);
	acc_start(a, mk(&i2, 2, A_READY, 10, NULL));
	acc_start(a, &i2);		/* the same one twice */
	acc_start(a, &i3);		/* not its action */
	assert_near(acc_value(a, BASE + 15), 2);
	assert_int_equal(acc_ongoing(a), 2);
	acc_end(a, &i1, BASE + 20);
	assert_near(acc_value(a, BASE + 20), 1);
	acc_free(a);

	/* The oldest wait: 25 s, then 15 s once it ended, then none. */
	a = acc_new(stype_builtin("CurrentMaxWaitingTime"), &growing, BASE);
	acc_start(a, mk(&i1, 1, A_WAITING, 0, NULL));
	acc_start(a, mk(&i2, 2, A_WAITING, 10, NULL));
	assert_near(acc_value(a, BASE + 25), 25);
	acc_end(a, &i1, BASE + 25);
	assert_near(acc_value(a, BASE + 25), 15);
	acc_end(a, &i2, BASE + 30);
	assert_near(acc_value(a, BASE + 40), 0);
	acc_free(a);
	acc_free(NULL);
}

/*
 * test_acc_total - TotalNumber, TotalTime with its running part, and
 * only the part inside the period after acc_reset
 */
static void
test_acc_total(void **state)
{
	struct stype	 tn = custom("{'category':'TotalNumber',"
			    "'actions':'Ready'}");
	struct acc	*a, *n;
	struct inst	 i1, i2, i3;

	a = acc_new(stype_builtin("TotalNumberAnsweredCalls"), &growing, BASE);
	acc_instant(a, mk(&i1, 1, A_ANSWERED, 10, NULL), 5);
	acc_instant(a, mk(&i1, 2, A_ANSWERED, 20, NULL), 5);
	acc_instant(a, mk(&i1, 3, A_ANSWERED, 30, NULL), 5);
	assert_near(acc_value(a, BASE + 40), 3);
	acc_free(a);

	/* A duration counts once completed, not while it runs. */
	n = acc_new(&tn, &growing, BASE);
	acc_start(n, mk(&i1, 1, A_READY, 0, NULL));
	assert_near(acc_value(n, BASE + 10), 0);
	acc_end(n, &i1, BASE + 10);
	assert_near(acc_value(n, BASE + 10), 1);
	acc_free(n);

	/* Talking 10..40 done (30 s), one from 50 runs: at 70, 30 + 20. */
	a = acc_new(stype_builtin("TotalTalkTime"), &growing, BASE);
	acc_start(a, mk(&i1, 1, A_TALKING, 10, NULL));
	acc_end(a, &i1, BASE + 40);
	acc_start(a, mk(&i2, 2, A_TALKING, 50, NULL));
	assert_near(acc_value(a, BASE + 70), 50);
	/* A new period at 100: only what runs, from 100, counts. */
	acc_reset(a, BASE + 100);
	assert_near(acc_period_start(a), BASE + 100);
	assert_near(acc_value(a, BASE + 100), 0);
	assert_near(acc_value(a, BASE + 130), 30);
	/* It ends at 140: 40 s of it in the period (not 90). */
	acc_end(a, &i2, BASE + 140);
	assert_near(acc_value(a, BASE + 150), 40);
	/* One within the period, 110..120: 10 s more. */
	acc_start(a, mk(&i3, 3, A_TALKING, 110, NULL));
	acc_end(a, &i3, BASE + 120);
	assert_near(acc_value(a, BASE + 150), 50);
	acc_free(a);
}

/* test_acc_average_max - AverageTime with and without per; MaxTime */
static void
test_acc_average_max(void **state)
{
	struct stype	 mt = custom("{'category':'MaxTime','actions':"
			    "'Talking'}");
	struct acc	*aht, *asa, *max;
	struct inst	 i;

	/* Speed of answer: waits 15 and 45, 30 on average. */
	asa = acc_new(stype_builtin("AverageSpeedOfAnswer"), &growing, BASE);
	assert_near(acc_value(asa, BASE), 0);
	acc_instant(asa, mk(&i, 1, A_ANSWERED, 25, NULL), 15);
	acc_instant(asa, mk(&i, 2, A_ANSWERED, 195, NULL), 45);
	assert_near(acc_value(asa, BASE + 200), 30);
	acc_free(asa);

	/*
	 * Handling: inbound talk 25..85 (60) and ACW 85..100 (15), then
	 * 195..255 (60) and 255..275 (20), two calls answered: (60 + 15 +
	 * 60 + 20) / 2 = 77.5.  Before any is answered: 0.
	 */
	aht = acc_new(stype_builtin("AverageHandlingTime"), &growing, BASE);
	assert_true(acc_wants(aht, mk(&i, 1, A_ANSWERED, 25, NULL)));
	assert_false(acc_wants(aht, mk(&i, 1, A_TALKING, 25, NULL)));
	acc_start(aht, mk(&i, 1, A_INBOUND, 25, NULL));
	acc_end(aht, &i, BASE + 85);
	assert_near(acc_value(aht, BASE + 85), 0);
	acc_instant(aht, mk(&i, 2, A_ANSWERED, 25, NULL), 15);
	acc_start(aht, mk(&i, 3, A_ACW, 85, NULL));
	acc_end(aht, &i, BASE + 100);
	assert_near(acc_value(aht, BASE + 100), 75);
	acc_instant(aht, mk(&i, 4, A_ANSWERED, 195, NULL), 45);
	acc_start(aht, mk(&i, 5, A_INBOUND, 195, NULL));
	acc_end(aht, &i, BASE + 255);
	acc_start(aht, mk(&i, 6, A_ACW, 255, NULL));
	acc_end(aht, &i, BASE + 275);
	assert_near(acc_value(aht, BASE + 300), 77.5);
	acc_free(aht);

	/* The longest completed: 60 of 30, 60, 20; a running 100 not. */
	max = acc_new(&mt, &growing, BASE);
	acc_start(max, mk(&i, 9, A_TALKING, 0, NULL));
	acc_start(max, mk(&i, 1, A_TALKING, 10, NULL));
	acc_end(max, &i, BASE + 40);
	acc_start(max, mk(&i, 2, A_TALKING, 40, NULL));
	acc_end(max, &i, BASE + 100);
	acc_start(max, mk(&i, 3, A_TALKING, 100, NULL));
	acc_end(max, &i, BASE + 120);
	assert_near(acc_value(max, BASE + 120), 60);
	acc_free(max);
}

/*
 * test_acc_service_factor - threshold 20: answered after 15, 20 (within:
 * not more than 20) and 45; abandoned after 30 (late), 5 and 20 (not
 * late, so left out): 2 within of 3 answered + 1 late = 50 %.
 */
static void
test_acc_service_factor(void **state)
{
	struct stype	 t30 = custom("{'category':'ServiceFactor',"
			    "'threshold':'30'}");
	struct acc	*a, *b;
	struct inst	 i;

	a = acc_new(stype_builtin("ServiceFactor"), &growing, BASE);
	b = acc_new(&t30, &growing, BASE);
	assert_near(acc_value(a, BASE), 0);
	acc_instant(a, mk(&i, 1, A_ANSWERED, 10, NULL), 15);
	acc_instant(a, mk(&i, 2, A_ANSWERED, 20, NULL), 20);
	acc_instant(a, mk(&i, 3, A_ANSWERED, 30, NULL), 45);
	acc_instant(a, mk(&i, 4, A_ABANDONED, 40, NULL), 30);
	acc_instant(a, mk(&i, 5, A_ABANDONED, 50, NULL), 5);
	acc_instant(a, mk(&i, 6, A_ABANDONED, 60, NULL), 20);
	assert_near(acc_value(a, BASE + 60), 50);
	/* Threshold 30: 2 within of 3 answered, none late: 66.67 %. */
	acc_instant(b, mk(&i, 1, A_ANSWERED, 10, NULL), 15);
	acc_instant(b, mk(&i, 2, A_ANSWERED, 20, NULL), 20);
	acc_instant(b, mk(&i, 3, A_ANSWERED, 30, NULL), 45);
	acc_instant(b, mk(&i, 4, A_ABANDONED, 40, NULL), 30);
	assert_near(acc_value(b, BASE + 60), 200.0 / 3);
	acc_free(a);
	acc_free(b);
}

/*
 * test_acc_sliding - Sliding windows: values leave as time passes, buckets
 * are reused, a late event older than the window is dropped, a duration
 * counts no more than the window
 */
static void
test_acc_sliding(void **state)
{
	struct profile	 p;
	struct acc	*a;
	struct inst	 i, r;
	json_t		*j;
	char		 why[128];

	/* 60 s in steps of 10: six buckets. */
	assert_int_equal(prof("{'type':'Sliding','window':60,'step':10}", &p,
	    why, sizeof(why)), 0);
	a = acc_new(stype_builtin("TotalNumberAnsweredCalls"), &p, BASE);
	acc_instant(a, mk(&i, 1, A_ANSWERED, 5, NULL), 1);
	acc_instant(a, mk(&i, 2, A_ANSWERED, 15, NULL), 1);
	assert_near(acc_value(a, BASE + 20), 2);
	/* At 65 the one of 5 left; the one of 65 takes its bucket. */
	acc_instant(a, mk(&i, 3, A_ANSWERED, 65, NULL), 1);
	assert_near(acc_value(a, BASE + 65), 2);
	assert_near(acc_value(a, BASE + 75), 1);	/* 15 left too */
	assert_near(acc_value(a, BASE + 200), 0);
	/* 125 reuses that bucket again: the 65 is not in it. */
	acc_instant(a, mk(&i, 4, A_ANSWERED, 125, NULL), 1);
	assert_near(acc_value(a, BASE + 125), 1);
	/* An event of 62 that comes late belongs to the bucket 125 holds:
	 * it is out of the window and must not wipe the newer one. */
	acc_instant(a, mk(&i, 5, A_ANSWERED, 62, NULL), 1);
	assert_near(acc_value(a, BASE + 125), 1);
	/* One of 100, late but in the window, counts. */
	acc_instant(a, mk(&i, 6, A_ANSWERED, 100, NULL), 1);
	assert_near(acc_value(a, BASE + 125), 2);
	/* Nothing of a Sliding one is kept. */
	j = acc_save(a);
	assert_int_equal(acc_load(a, j), -1);
	json_decref(j);
	acc_free(a);

	/* TotalTime: a running one counts its last 60 s at most. */
	a = acc_new(stype_builtin("TotalTalkTime"), &p, BASE);
	acc_start(a, mk(&r, 1, A_TALKING, 0, NULL));
	assert_near(acc_value(a, BASE + 30), 30);
	acc_start(a, mk(&i, 2, A_TALKING, 30, NULL));
	acc_end(a, &i, BASE + 50);
	/* At 100: 20 (30..50, in the bucket of 50) + 60 of the running. */
	assert_near(acc_value(a, BASE + 100), 80);
	/* At 120 the bucket of 50 has left: 60. */
	assert_near(acc_value(a, BASE + 120), 60);
	/* It ends at 130 after 130 s: no more than the window counts. */
	acc_end(a, &r, BASE + 130);
	assert_near(acc_value(a, BASE + 130), 60);
	assert_near(acc_value(a, BASE + 200), 0);
	acc_free(a);
}

/*
 * test_acc_estim_wait - EstimWaitTime: (waiting + 1) x the interval /
 * distributed in it; the interval begins at the period's start or the
 * window's oldest step, not before the accumulator began to count; -1
 * with nothing distributed; without actions, the first in line's
 */
static void
test_acc_estim_wait(void **state)
{
	struct stype	 first = custom("{'category':'EstimWaitTime'}");
	struct profile	 p;
	struct acc	*a, *b;
	struct inst	 i1, i2, i3, d;
	json_t		*j;
	char		 why[128];

	assert_int_equal(first.actions, 0);
	assert_int_equal(first.per, A_DISTRIBUTED);

	/* Growing since BASE, counting from 100. */
	a = acc_new(stype_builtin("ExpectedWaitTime"), &growing, BASE);
	acc_born(a, BASE + 100);
	assert_near(acc_value(a, BASE + 150), -1);	/* none distributed */
	acc_start(a, mk(&i1, 1, A_WAITING, 100, NULL));
	acc_start(a, mk(&i2, 2, A_WAITING, 110, NULL));
	acc_start(a, mk(&i3, 3, A_WAITING, 120, NULL));
	acc_instant(a, mk(&d, 4, A_DISTRIBUTED, 130, NULL), 30);
	acc_instant(a, mk(&d, 5, A_DISTRIBUTED, 160, NULL), 60);
	/* Two in 100 s, three waiting: (3 + 1) x 100 / 2. */
	assert_near(acc_value(a, BASE + 200), 200);
	acc_end(a, &i1, BASE + 200);
	assert_near(acc_value(a, BASE + 200), 150);
	/* Time goes by: 3 x 140 / 2. */
	assert_near(acc_value(a, BASE + 240), 210);
	/* Kept over a restart with when it began to count. */
	j = acc_save(a);
	b = acc_new(stype_builtin("ExpectedWaitTime"), &growing, BASE);
	assert_int_equal(acc_load(b, j), 0);
	acc_start(b, &i2);
	acc_start(b, &i3);
	assert_near(acc_value(b, BASE + 240), 210);
	json_decref(j);
	acc_free(b);
	/* A reset: the new period is the interval. */
	acc_reset(a, BASE + 300);
	acc_instant(a, mk(&d, 6, A_DISTRIBUTED, 310, NULL), 5);
	assert_near(acc_value(a, BASE + 320), 3 * 20.0 / 1);
	acc_free(a);

	/* The first in line, over 60 s in steps of 10 (BASE is a multiple
	 * of 10): from 30 on, the window reaches back before the start. */
	assert_int_equal(prof("{'type':'Sliding','window':60,'step':10}", &p,
	    why, sizeof(why)), 0);
	a = acc_new(&first, &p, BASE);
	acc_start(a, mk(&i1, 1, A_WAITING, 1, NULL));	/* not an action */
	acc_instant(a, mk(&d, 2, A_DISTRIBUTED, 5, NULL), 1);
	acc_instant(a, mk(&d, 3, A_DISTRIBUTED, 15, NULL), 1);
	acc_instant(a, mk(&d, 4, A_DISTRIBUTED, 25, NULL), 1);
	assert_near(acc_value(a, BASE + 30), 10);
	/* At 95 the window holds the steps from 40: none of those. */
	assert_near(acc_value(a, BASE + 95), -1);
	acc_instant(a, mk(&d, 5, A_DISTRIBUTED, 70, NULL), 1);
	acc_instant(a, mk(&d, 6, A_DISTRIBUTED, 90, NULL), 1);
	assert_near(acc_value(a, BASE + 95), 55.0 / 2);
	acc_free(a);

	/* Its definition, and what it is for. */
	j = stype_json(stype_builtin("ExpectedWaitTime"));
	{
		char	*t = json_dumps(j, JSON_COMPACT);

		assert_string_equal(t, "{\"category\":\"EstimWaitTime\","
		    "\"actions\":[\"CallWaiting\"],\"per\":"
		    "\"CallDistributed\",\"objects\":[\"Queue\","
		    "\"RoutingPoint\",\"GroupQueues\",\"Tenant\"]}");
		free(t);
	}
	json_decref(j);
	first = custom("{'category':'EstimWaitTime','actions':'CallWaiting',"
	    "'per':'CallAbandoned'}");
	assert_int_equal(first.per, A_ABANDONED);
}

/* test_acc_filter - filters on userData, strings and numbers; media */
static void
test_acc_filter(void **state)
{
	struct stype	 gold = custom("{'category':'TotalNumber','actions':"
			    "'CallAnswered','filter':'userData.Segment=Gold'}");
	struct stype	 prio = custom("{'category':'TotalNumber','actions':"
			    "'CallAnswered','filter':'userData.Priority=5'}");
	struct stype	 acct = custom("{'category':'TotalNumber','actions':"
			    "'CallAnswered','filter':'userData.Account="
			    "12345678'}");
	struct stype	 chat = custom("{'category':'TotalNumber','actions':"
			    "'CallAnswered','media':'chat'}");
	struct stype	 voice = custom("{'category':'TotalNumber','actions':"
			    "'CallAnswered','media':'voice'}");
	json_t		*g = json_pack("{s:s, s:i, s:I}", "Segment", "Gold",
			    "Priority", 5, "Account", (json_int_t)12345678);
	json_t		*s = json_pack("{s:s, s:s}", "Segment", "Silver",
			    "Priority", "5");
	json_t		*r = json_pack("{s:f}", "Priority", 5.0);
	json_t		*o = json_pack("{s:{s:s}}", "Segment", "x", "Gold");
	struct acc	*a;
	struct inst	 i;

	a = acc_new(&gold, &growing, BASE);
	assert_true(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, g)));
	assert_false(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, s)));
	assert_false(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, r)));
	assert_false(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, o)));
	assert_false(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, NULL)));
	assert_false(acc_wants(a, mk(&i, 1, A_ABANDONED, 0, g)));
	acc_free(a);
	a = acc_new(&prio, &growing, BASE);
	assert_true(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, g)));	/* 5 */
	assert_true(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, s)));	/* "5" */
	assert_true(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, r)));	/* 5.0 */
	assert_false(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, o)));
	acc_free(a);
	a = acc_new(&acct, &growing, BASE);
	assert_true(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, g)));
	acc_free(a);
	a = acc_new(&chat, &growing, BASE);
	assert_false(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, g)));
	acc_free(a);
	a = acc_new(&voice, &growing, BASE);
	assert_true(acc_wants(a, mk(&i, 1, A_ANSWERED, 0, g)));
	acc_free(a);
	json_decref(g);
	json_decref(s);
	json_decref(r);
	json_decref(o);
}

/* test_acc_save_load - the completed part kept over a restart */
static void
test_acc_save_load(void **state)
{
	struct acc	*a, *b;
	struct inst	 i;
	json_t		*j, *back;
	char		*text;

	a = acc_new(stype_builtin("ServiceFactor"), &growing, BASE);
	acc_instant(a, mk(&i, 1, A_ANSWERED, 10, NULL), 15);
	acc_instant(a, mk(&i, 2, A_ANSWERED, 20, NULL), 45);
	acc_instant(a, mk(&i, 3, A_ABANDONED, 30, NULL), 30);
	assert_near(acc_value(a, BASE + 40), 100.0 / 3);
	j = acc_save(a);
	text = json_dumps(j, JSON_COMPACT);
	back = json_loads(text, 0, NULL);
	b = acc_new(stype_builtin("ServiceFactor"), &growing, BASE + 500);
	assert_int_equal(acc_load(b, back), 0);
	assert_near(acc_value(b, BASE + 600), 100.0 / 3);
	assert_near(acc_period_start(b), BASE);
	assert_int_equal(acc_load(b, NULL), -1);
	json_decref(j);
	json_decref(back);
	free(text);
	acc_free(a);
	acc_free(b);

	/* AHT keeps its time and its per. */
	a = acc_new(stype_builtin("AverageHandlingTime"), &growing, BASE);
	acc_start(a, mk(&i, 1, A_INBOUND, 0, NULL));
	acc_end(a, &i, BASE + 90);
	acc_instant(a, mk(&i, 2, A_ANSWERED, 0, NULL), 3);
	acc_instant(a, mk(&i, 3, A_ANSWERED, 100, NULL), 3);
	j = acc_save(a);
	b = acc_new(stype_builtin("AverageHandlingTime"), &growing, BASE);
	assert_int_equal(acc_load(b, j), 0);
	assert_near(acc_value(b, BASE + 200), 45);
	json_decref(j);
	acc_free(a);
	acc_free(b);
}

/* ---- the model and the accumulators together ---- */

/* One statistic of the scenario: its subject and its accumulator. */
struct sub {
	const char	*name;
	const char	*agent;		/* this agent's, or */
	const char	*dn;		/* this queue's, or */
	int		 agents;	/* every agent's (Tenant) */
	const char	*type;		/* a shipped type's name, or a
					 * definition: "{...}" */
	const char	*profile;	/* or NULL: Growing */
	struct acc	*acc;
};

struct world {
	struct sub	*subs;
	size_t		 nsubs;
};

/* covers - is the instance about the statistic's object? */
static int
covers(const struct sub *s, const struct inst *i)
{
	if (s->agents)
		return i->of_agent;
	if (s->agent != NULL)
		return i->of_agent && i->agent != NULL &&
		    strcmp(i->agent, s->agent) == 0;
	return !i->of_agent && strcmp(i->dn, s->dn) == 0;
}

/* w_start - the worker's part: hand a start to the statistics */
static void
w_start(const struct inst *i, void *arg)
{
	struct world	*w = arg;
	size_t		 k;

	for (k = 0; k < w->nsubs; k++)
		if (covers(&w->subs[k], i) && acc_wants(w->subs[k].acc, i))
			acc_start(w->subs[k].acc, i);
}

/* w_end - the same for an end */
static void
w_end(const struct inst *i, double end, void *arg)
{
	struct world	*w = arg;
	size_t		 k;

	for (k = 0; k < w->nsubs; k++)
		if (covers(&w->subs[k], i) && acc_wants(w->subs[k].acc, i))
			acc_end(w->subs[k].acc, i, end);
}

/* w_instant - the same for an instant action */
static void
w_instant(const struct inst *i, double duration, void *arg)
{
	struct world	*w = arg;
	size_t		 k;

	for (k = 0; k < w->nsubs; k++)
		if (covers(&w->subs[k], i) && acc_wants(w->subs[k].acc, i))
			acc_instant(w->subs[k].acc, i, duration);
}

/* val - a statistic's value at BASE + s */
static double
val(struct world *w, const char *name, double s)
{
	size_t	k;

	for (k = 0; k < w->nsubs; k++)
		if (strcmp(w->subs[k].name, name) == 0)
			return acc_value(w->subs[k].acc, BASE + s);
	fail_msg("no statistic %s", name);
	return -1;
}

#define CHECK(w, name, s, want) do {					\
	double	v_ = val(w, name, s);					\
	if (fabs(v_ - (want)) > 1e-6)					\
		fail_msg("%s at %g: %g, not %g", name, (double)(s), v_,	\
		    (double)(want));					\
} while (0)

/*
 * test_together - the model drives the accumulators as the worker
 * would.  Agents A1 (5001) and A2 (5002); calls enter the routing point
 * 8000 and wait in the queue 7000.  Statistics open at 0, Growing from 0.
 *
 *   0    A1 and A2 log in; A2 Ready
 *   5    A1 Ready
 *   C1 (Segment Gold, Priority 5): enters 8000 at 10, queued 12..20,
 *        rings at A1 20, answered 25 (wait 15), held 40..50, released
 *        85; A1 in ACW 86..100, then Ready
 *   C2 (Silver, 1): enters 110, queued 111, abandoned 141 (30 in queue)
 *   C3 (Silver, 5): enters 150, queued 150..190, rings at A1 190,
 *        answered 195 (wait 45), released 255; ACW 256..275, Ready
 *   C4 (none): enters 300, queued 301, abandoned 305 (4 in queue)
 *
 * A1 is Ready 5..20, 85..86, 100..190, 255..256 and from 275 on.
 */
static void
test_together(void **state)
{
	struct sub	 subs[] = {
#define AG(n, t)	{ n, "A1", NULL, 0, t, NULL, NULL }
#define QU(n, t)	{ n, NULL, "7000", 0, t, NULL, NULL }
#define RP(n, t)	{ n, NULL, "8000", 0, t, NULL, NULL }
#define TE(n, t)	{ n, NULL, NULL, 1, t, NULL, NULL }
		AG("A1 answered", "TotalNumberAnsweredCalls"),
		AG("A1 talk", "TotalTalkTime"),
		AG("A1 AHT", "AverageHandlingTime"),
		AG("A1 ASA", "AverageSpeedOfAnswer"),
		AG("A1 login", "TotalLoginTime"),
		AG("A1 ready time",
		    "{'category':'TotalTime','actions':'Ready'}"),
		AG("A1 ready max", "{'category':'MaxTime','actions':'Ready'}"),
		AG("A1 ready count",
		    "{'category':'TotalNumber','actions':'Ready'}"),
		AG("A1 hold", "{'category':'TotalTime','actions':'OnHold'}"),
		QU("Q entered", "TotalNumberInboundCalls"),
		QU("Q answered", "TotalNumberAnsweredCalls"),
		QU("Q abandoned", "TotalNumberAbandonedCalls"),
		QU("Q SF", "ServiceFactor"),
		QU("Q ASA", "AverageSpeedOfAnswer"),
		QU("Q waiting", "CurrentNumberWaitingCalls"),
		QU("Q max waiting", "CurrentMaxWaitingTime"),
		QU("Q longest wait",
		    "{'category':'MaxTime','actions':'CallWaiting'}"),
		QU("Q wait time",
		    "{'category':'TotalTime','actions':'CallWaiting'}"),
		QU("Q answered Gold", "{'category':'TotalNumber','actions':"
		    "'CallAnswered','filter':'userData.Segment=Gold'}"),
		QU("Q answered P5", "{'category':'TotalNumber','actions':"
		    "'CallAnswered','filter':'userData.Priority=5'}"),
		{ "Q answered 60s", NULL, "7000", 0,
		    "TotalNumberAnsweredCalls",
		    "{'type':'Sliding','window':60,'step':10}", NULL },
		RP("RP entered", "TotalNumberInboundCalls"),
		RP("RP distributed",
		    "{'category':'TotalNumber','actions':'CallDistributed'}"),
		RP("RP answered", "TotalNumberAnsweredCalls"),
		TE("T ready", "CurrentNumberReadyAgents"),
		TE("T logged in", "CurrentNumberLoggedInAgents"),
#undef AG
#undef QU
#undef RP
#undef TE
	};
	struct world	 w = { subs, NELEM(subs) };
	struct model_cbs cbs = { kind, w_start, w_end, w_instant, NULL };
	struct model	*m;
	struct profile	 p;
	struct stype	 t;
	struct acc	*reload;
	json_t		*saved;
	char		 why[256];
	size_t		 k;
	const char	*c1 = ",'callType':'Inbound','userData':"
			    "{'Segment':'Gold','Priority':5}";
	const char	*c2 = ",'callType':'Inbound','userData':"
			    "{'Segment':'Silver','Priority':1}";
	const char	*c3 = ",'callType':'Inbound','userData':"
			    "{'Segment':'Silver','Priority':5}";

	for (k = 0; k < NELEM(subs); k++) {
		if (subs[k].type[0] == '{')
			t = custom(subs[k].type);
		else
			t = *stype_builtin(subs[k].type);
		if (subs[k].profile != NULL)
			assert_int_equal(prof(subs[k].profile, &p, why,
			    sizeof(why)), 0);
		else
			profile_parse(NULL, &p, why, sizeof(why));
		subs[k].acc = acc_new(&t, &p, BASE);
	}
	m = model_new(&cbs, &w);

	agent(m, 0, "EventAgentLogin", "5001", "A1", NULL);
	agent(m, 0, "EventAgentLogin", "5002", "A2", NULL);
	agent(m, 0, "EventAgentReady", "5002", "A2", NULL);
	agent(m, 5, "EventAgentReady", "5001", "A1", NULL);
	CHECK(&w, "T ready", 5, 2);
	CHECK(&w, "T logged in", 5, 2);

	call(m, 10, "EventRinging", "8000", "c1", c1);
	call(m, 12, "EventDiverted", "8000", "c1", c1);
	call(m, 12, "EventQueued", "7000", "c1", c1);
	CHECK(&w, "Q waiting", 15, 1);
	CHECK(&w, "Q max waiting", 15, 3);		/* 15 - 12 */
	call(m, 20, "EventDiverted", "7000", "c1", c1);
	call(m, 20, "EventRinging", "5001", "c1", c1);
	CHECK(&w, "Q waiting", 20, 0);
	CHECK(&w, "T ready", 20, 1);			/* A1 rings */
	call(m, 25, "EventEstablished", "5001", "c1", c1);
	call(m, 40, "EventHeld", "5001", "c1", c1);
	call(m, 50, "EventRetrieved", "5001", "c1", c1);
	/* The talk so far, running: 60 - 25; the hold, 40..50. */
	CHECK(&w, "A1 talk", 60, 35);
	CHECK(&w, "A1 hold", 60, 10);
	CHECK(&w, "Q answered 60s", 60, 1);	/* 25 in (0, 60] */
	call(m, 85, "EventReleased", "5001", "c1", c1);
	agent(m, 86, "EventAgentNotReady", "5001", "A1",
	    ",'workMode':'AfterCallWork'");
	CHECK(&w, "Q answered 60s", 90, 0);	/* 25 left at 90 */
	CHECK(&w, "T ready", 90, 1);			/* A1 in ACW */
	agent(m, 100, "EventAgentReady", "5001", "A1", NULL);

	call(m, 110, "EventRinging", "8000", "c2", c2);
	call(m, 111, "EventDiverted", "8000", "c2", c2);
	call(m, 111, "EventQueued", "7000", "c2", c2);
	call(m, 141, "EventAbandoned", "7000", "c2", c2);

	call(m, 150, "EventRinging", "8000", "c3", c3);
	call(m, 150, "EventDiverted", "8000", "c3", c3);
	call(m, 150, "EventQueued", "7000", "c3", c3);
	CHECK(&w, "Q waiting", 160, 1);
	CHECK(&w, "Q max waiting", 160, 10);
	CHECK(&w, "T ready", 160, 2);
	/* SF so far: C1 within 20, C2 abandoned late: 1 / (1 + 1). */
	CHECK(&w, "Q SF", 160, 50);
	call(m, 190, "EventDiverted", "7000", "c3", c3);
	call(m, 190, "EventRinging", "5001", "c3", c3);
	call(m, 195, "EventEstablished", "5001", "c3", c3);
	CHECK(&w, "Q answered 60s", 200, 1);		/* 195 */
	call(m, 255, "EventReleased", "5001", "c3", c3);
	agent(m, 256, "EventAgentNotReady", "5001", "A1",
	    ",'workMode':'AfterCallWork'");
	agent(m, 275, "EventAgentReady", "5001", "A1", NULL);

	call(m, 300, "EventRinging", "8000", "c4", ",'callType':'Inbound'");
	call(m, 301, "EventDiverted", "8000", "c4", NULL);
	call(m, 301, "EventQueued", "7000", "c4", NULL);
	call(m, 305, "EventAbandoned", "7000", "c4", NULL);

	/* A1 answered C1 and C3. */
	CHECK(&w, "A1 answered", 400, 2);
	/* Talking 25..85 and 195..255. */
	CHECK(&w, "A1 talk", 400, 120);
	/* (60 + 60 inbound + 14 + 19 ACW) / 2 answered = 153 / 2. */
	CHECK(&w, "A1 AHT", 400, 76.5);
	/* Waits 15 and 45. */
	CHECK(&w, "A1 ASA", 400, 30);
	/* Logged in since 0, still. */
	CHECK(&w, "A1 login", 400, 400);
	/* Ready 15 + 1 + 90 + 1 done, and 275..400 running: 232. */
	CHECK(&w, "A1 ready time", 400, 232);
	CHECK(&w, "A1 ready max", 400, 90);
	CHECK(&w, "A1 ready count", 400, 4);
	CHECK(&w, "A1 hold", 400, 10);
	/* Queued: C1..C4; answered C1 and C3; abandoned C2 and C4. */
	CHECK(&w, "Q entered", 400, 4);
	CHECK(&w, "Q answered", 400, 2);
	CHECK(&w, "Q abandoned", 400, 2);
	/* Within 20: C1 (15); C3 (45) not; late abandoned: C2 (30), not
	 * C4 (4): 1 / (2 + 1). */
	CHECK(&w, "Q SF", 400, 100.0 / 3);
	CHECK(&w, "Q ASA", 400, 30);
	CHECK(&w, "Q waiting", 400, 0);
	CHECK(&w, "Q max waiting", 400, 0);
	/* Waits 12..20, 111..141, 150..190, 301..305: 8, 30, 40, 4. */
	CHECK(&w, "Q longest wait", 400, 40);
	CHECK(&w, "Q wait time", 400, 82);
	CHECK(&w, "Q answered Gold", 400, 1);		/* C1 */
	CHECK(&w, "Q answered P5", 400, 2);		/* C1, C3 */
	CHECK(&w, "Q answered 60s", 400, 0);
	CHECK(&w, "RP entered", 400, 4);
	CHECK(&w, "RP distributed", 400, 4);
	CHECK(&w, "RP answered", 400, 2);
	CHECK(&w, "T ready", 400, 2);
	CHECK(&w, "T logged in", 400, 2);

	/* The SF kept over a restart. */
	saved = acc_save(subs[12].acc);
	reload = acc_new(stype_builtin("ServiceFactor"), &growing, BASE + 400);
	assert_int_equal(acc_load(reload, saved), 0);
	assert_near(acc_value(reload, BASE + 400), 100.0 / 3);
	json_decref(saved);
	acc_free(reload);

	/* Midnight for the talk time at 400: a new period, from 0 again;
	 * A1 then talks 410..430 on an outbound call. */
	acc_reset(subs[1].acc, BASE + 400);
	call(m, 410, "EventDialing", "5001", "c5", ",'callType':'Outbound'");
	call(m, 412, "EventEstablished", "5001", "c5", NULL);
	CHECK(&w, "A1 talk", 420, 8);
	call(m, 430, "EventReleased", "5001", "c5", NULL);
	CHECK(&w, "A1 talk", 440, 18);
	CHECK(&w, "A1 answered", 440, 2);		/* outbound: no */
	/* A1 logs out at 500: login time 500, one fewer logged in. */
	agent(m, 500, "EventAgentLogout", "5001", "A1", NULL);
	CHECK(&w, "A1 login", 600, 500);
	CHECK(&w, "T logged in", 600, 1);
	CHECK(&w, "T ready", 600, 1);

	model_free(m);
	for (k = 0; k < NELEM(subs); k++)
		acc_free(subs[k].acc);
}

/* ---- RequestOpenStatistic checked (statreq) ---- */

/* sr_find - a configuration of two objects: Agent E1, Queue 7000 */
static int
sr_find(enum object_kind k, const char *id, json_int_t *dbid, void *arg)
{
	int	*asked = arg;

	(*asked)++;
	if (k == OBJ_AGENT && strcmp(id, "E1") == 0)
		*dbid = 10;
	else if (k == OBJ_QUEUE && strcmp(id, "7000") == 0)
		*dbid = 20;
	else
		return -1;
	return 0;
}

/* sr_json - JSON with ' for " */
static json_t *
sr_json(const char *src)
{
	char	 buf[1024], *s;
	json_t	*j;

	snprintf(buf, sizeof(buf), "%s", src);
	for (s = buf; *s != '\0'; s++)
		if (*s == '\'')
			*s = '"';
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	return j;
}

/* sr_check - the request's error code ("" when it passes); the message
 * must hold want_msg */
static const char *
sr_check(const char *req, struct statreq *r, const char *want_msg)
{
	static char		 code[64];
	json_t			*j = sr_json(req), *opts;
	struct statreq_err	 err;
	int			 asked = 0, rc;

	opts = sr_json("{'stat:Custom': {'category': 'TotalNumber', "
	    "'actions': 'CallAnswered'}, 'stat:Broken': {'category': "
	    "'Nope'}, 'stat:CurrentAgentState': {'category': 'TotalNumber', "
	    "'actions': 'CallAbandoned'}}");
	memset(&err, 0, sizeof(err));
	rc = statreq_check(j, opts, sr_find, &asked, r, &err);
	if (rc == 0) {
		code[0] = '\0';
		assert_null(err.code);
	} else {
		assert_int_equal(rc, -1);
		assert_non_null(err.code);
		snprintf(code, sizeof(code), "%s", err.code);
		if (want_msg != NULL && strstr(err.msg, want_msg) == NULL)
			fail_msg("%s: message \"%s\" lacks \"%s\"", req, err.msg,
			    want_msg);
	}
	/* The tenant is never looked up. */
	if (r->kind == OBJ_TENANT && rc == 0)
		assert_int_equal(asked, 0);
	json_decref(opts);
	json_decref(j);
	return code;
}

/* test_statreq_good - requests that pass, and what they open */
static void
test_statreq_good(void **state)
{
	struct statreq	r;

	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime'}", &r, NULL), "");
	assert_int_equal(r.kind, OBJ_AGENT);
	assert_int_equal(r.dbid, 10);
	assert_string_equal(r.t.name, "TotalTalkTime");
	assert_int_equal(r.t.cat, CAT_TOTAL_TIME);
	assert_int_equal(r.p.kind, PROF_GROWING);
	assert_int_equal(r.p.nresets, 1);
	assert_int_equal(r.n.mode, NM_CHANGES);
	assert_near(r.n.insensitivity, 0);

	/* A queue, a type from the options, Sliding, periodic. */
	assert_string_equal(sr_check("{'object': {'type': 'Queue', 'id': "
	    "'7000'}, 'statistic': 'Custom', 'profile': {'type': 'Sliding', "
	    "'window': 600, 'step': 60}, 'notify': {'mode': 'periodic', "
	    "'interval': 2.5}}", &r, NULL), "");
	assert_int_equal(r.kind, OBJ_QUEUE);
	assert_int_equal(r.dbid, 20);
	assert_string_equal(r.t.name, "Custom");
	assert_int_equal(r.t.cat, CAT_TOTAL_NUMBER);
	assert_int_equal(r.p.kind, PROF_SLIDING);
	assert_near(r.p.window, 600);
	assert_int_equal(r.n.mode, NM_PERIODIC);
	assert_near(r.n.interval, 2.5);

	/* The options' type replaces the shipped one of its name. */
	assert_string_equal(sr_check("{'object': {'type': 'Tenant'}, "
	    "'statistic': 'CurrentAgentState'}", &r, NULL), "");
	assert_int_equal(r.kind, OBJ_TENANT);
	assert_int_equal(r.dbid, 0);
	assert_null(r.oid);
	assert_int_equal(r.t.cat, CAT_TOTAL_NUMBER);

	/* Inline, the old names of groups, SinceLogin on an agent, the
	 * other modes. */
	assert_string_equal(sr_check("{'object': {'type': 'Tenant', 'id': "
	    "'t100'}, 'statistic': {'category': 'CurrentNumber', 'actions': "
	    "'Ready'}, 'notify': {'mode': 'changes', 'insensitivity': 10}}",
	    &r, NULL), "");
	assert_int_equal(r.t.cat, CAT_CURRENT_NUMBER);
	assert_string_equal(r.t.name, "inline");
	assert_near(r.n.insensitivity, 10);
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalLoginTime', 'profile': {'type': "
	    "'SinceLogin'}, 'notify': {'mode': 'reset'}}", &r, NULL), "");
	assert_int_equal(r.p.kind, PROF_SINCE_LOGIN);
	assert_int_equal(r.n.mode, NM_RESET);
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'CurrentAgentStatus', 'notify': {'mode': "
	    "'none'}}", &r, NULL), "");
	assert_int_equal(r.n.mode, NM_NONE);
}

/* test_statreq_errors - every error answer, its message, and which comes
 * first */
static void
test_statreq_errors(void **state)
{
	struct statreq	r;

	/* UnknownObject: none, a kind that is none, no id, not there. */
	assert_string_equal(sr_check("{'statistic': 'TotalTalkTime'}", &r,
	    "object: {\"type\": \"Agent\""), "UnknownObject");
	assert_string_equal(sr_check("{'object': {'type': 'Robot', 'id': "
	    "'R2'}, 'statistic': 'TotalTalkTime'}", &r, "\"Tenant\""),
	    "UnknownObject");
	assert_string_equal(sr_check("{'object': {'type': 'Agent'}, "
	    "'statistic': 'TotalTalkTime'}", &r,
	    "object.id: required for Agent"), "UnknownObject");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E9'}, 'statistic': 'TotalTalkTime'}", &r,
	    "no Agent E9 in the tenant's configuration"), "UnknownObject");
	/* A queue's number is not a routing point's. */
	assert_string_equal(sr_check("{'object': {'type': 'RoutingPoint', "
	    "'id': '7000'}, 'statistic': 'TotalNumberInboundCalls'}", &r,
	    "no RoutingPoint 7000"), "UnknownObject");
	/* The object comes first. */
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E9'}, 'statistic': 'NoSuchType', 'notify': 7}", &r, NULL),
	    "UnknownObject");

	/* UnknownStatistic; BadArgument: not a type, a bad definition. */
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'NoSuchType'}", &r,
	    "statistic: no type NoSuchType"), "UnknownStatistic");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}}", &r, "statistic: a type's name or a definition"),
	    SESS_ERR_BAD_ARGUMENT);
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 42}", &r, "statistic:"),
	    SESS_ERR_BAD_ARGUMENT);
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': {'category': 'Often'}}", &r,
	    "category: Often is not a category"), SESS_ERR_BAD_ARGUMENT);
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'Broken'}", &r,
	    "category: Nope is not a category"), SESS_ERR_BAD_ARGUMENT);

	/* NotApplicable: a queue's statistic of an agent. */
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'CurrentNumberWaitingCalls'}", &r,
	    "CurrentNumberWaitingCalls is not a statistic of a Agent"),
	    "NotApplicable");
	assert_string_equal(sr_check("{'object': {'type': 'Queue', 'id': "
	    "'7000'}, 'statistic': 'CurrentAgentState'}", &r, NULL), "");
	assert_string_equal(sr_check("{'object': {'type': 'Queue', 'id': "
	    "'7000'}, 'statistic': 'CurrentAgentStatus'}", &r,
	    "is not a statistic of a Queue"), "NotApplicable");

	/* BadProfile: not a profile; SinceLogin but for an Agent. */
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'profile': {'type': "
	    "'Monthly'}}", &r, "profile.type: Growing, Sliding or SinceLogin"),
	    "BadProfile");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'profile': 'Growing'}", &r,
	    "profile: {\"type\""), "BadProfile");
	assert_string_equal(sr_check("{'object': {'type': 'Queue', 'id': "
	    "'7000'}, 'statistic': 'TotalNumberAnsweredCalls', 'profile': "
	    "{'type': 'SinceLogin'}}", &r,
	    "profile: SinceLogin is for an Agent"), "BadProfile");
	assert_string_equal(sr_check("{'object': {'type': 'Tenant'}, "
	    "'statistic': 'TotalNumberAnsweredCalls', 'profile': {'type': "
	    "'SinceLogin'}}", &r, "SinceLogin is for an Agent"),
	    "BadProfile");
	/* The profile before the notification mode. */
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'profile': 1, 'notify': "
	    "1}", &r, NULL), "BadProfile");

	/* BadNotify: not an object, no mode, an unknown one, out of range. */
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': 'changes'}", &r,
	    "notify: {\"mode\": \"changes\""), "BadNotify");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': {}}", &r, NULL),
	    "BadNotify");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': {'mode': "
	    "'loud'}}", &r, NULL), "BadNotify");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': {'mode': "
	    "'periodic', 'interval': 0.05}}", &r, "(0.1 to 86400)"),
	    "BadNotify");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': {'mode': "
	    "'periodic'}}", &r, NULL), "BadNotify");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': {'mode': "
	    "'changes', 'insensitivity': 150}}", &r, NULL), "BadNotify");
	assert_string_equal(sr_check("{'object': {'type': 'Agent', 'id': "
	    "'E1'}, 'statistic': 'TotalTalkTime', 'notify': {'mode': "
	    "'changes', 'insensitivity': -1}}", &r, NULL), "BadNotify");
}

/* test_statreq_object_only - the first half alone, as the worker calls it
 * before the rights: nothing of the statistic is read */
static void
test_statreq_object_only(void **state)
{
	json_t			*j = sr_json("{'object': {'type': "
				    "'GroupAgents', 'id': 'G1'}, 'statistic': "
				    "'NoSuchType'}");
	struct statreq		 r;
	struct statreq_err	 err;
	int			 asked = 0;

	assert_int_equal(statreq_object(j, sr_find, &asked, &r, &err), -1);
	assert_int_equal(asked, 1);
	assert_string_equal(err.code, "UnknownObject");
	assert_string_equal(err.msg, "no GroupAgents G1 in the tenant's "
	    "configuration");
	json_decref(j);
	j = sr_json("{'object': {'type': 'AgentGroup', 'id': 'G1'}}");
	assert_int_equal(statreq_object(j, sr_find, &asked, &r, &err), -1);
	assert_int_equal(r.kind, OBJ_AGENT_GROUP);
	json_decref(j);
	j = sr_json("{'object': {'type': 'Agent', 'id': 'E1'}, "
	    "'statistic': 'NoSuchType'}");
	assert_int_equal(statreq_object(j, sr_find, &asked, &r, &err), 0);
	assert_int_equal(r.dbid, 10);
	assert_string_equal(r.otype, "Agent");
	assert_string_equal(r.oid, "E1");
	json_decref(j);
}

/* test_profile_key_cut - a buffer too short holds only whole parts */
static void
test_profile_key_cut(void **state)
{
	struct profile	p;
	char		key[PROFILE_KEY_MAX], small[6];
	int		i;

	memset(&p, 0, sizeof(p));
	p.kind = PROF_GROWING;
	p.nresets = PROFILE_RESETS_MAX;
	for (i = 0; i < PROFILE_RESETS_MAX; i++)
		p.resets[i] = 1432 + i;
	profile_key(&p, key, sizeof(key));
	assert_string_equal(key,
	    "G1432,1433,1434,1435,1436,1437,1438,1439");
	memset(small, 'x', sizeof(small));
	profile_key(&p, small, sizeof(small));
	assert_string_equal(small, "G1432");
	profile_key(&p, small, 5);
	assert_string_equal(small, "G");
	profile_key(&p, small, 1);
	assert_string_equal(small, "");
}

/* main - every test; growing: the default profile */
/* test_object_rights - the type whose read right opens each object kind */
static void
test_object_rights(void **state)
{
	assert_int_equal(object_cfg_kind(OBJ_AGENT), CFG_PERSON);
	assert_int_equal(object_cfg_kind(OBJ_PLACE), CFG_PLACE);
	assert_int_equal(object_cfg_kind(OBJ_AGENT_GROUP), CFG_AGENT_GROUP);
	assert_int_equal(object_cfg_kind(OBJ_PLACE_GROUP), CFG_PLACE_GROUP);
	assert_int_equal(object_cfg_kind(OBJ_QUEUE), CFG_DN);
	assert_int_equal(object_cfg_kind(OBJ_RP), CFG_DN);
	assert_int_equal(object_cfg_kind(OBJ_DN_GROUP), CFG_DN_GROUP);
	assert_int_equal(object_cfg_kind(OBJ_TENANT), CFG_TENANT);
	assert_int_equal(object_cfg_kind(OBJ_COUNT), -1);
	assert_int_equal(object_cfg_kind((enum object_kind)-1), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_agent),
		cmocka_unit_test(test_model_ready_calls),
		cmocka_unit_test(test_model_inbound),
		cmocka_unit_test(test_model_abandoned),
		cmocka_unit_test(test_model_routed),
		cmocka_unit_test(test_model_party_changed),
		cmocka_unit_test(test_model_user_data),
		cmocka_unit_test(test_model_clear_calls),
		cmocka_unit_test(test_model_reconcile),
		cmocka_unit_test(test_model_adopt),
		cmocka_unit_test(test_model_dump_restore),
		cmocka_unit_test(test_model_vq),
		cmocka_unit_test(test_model_vq_calls),
		cmocka_unit_test(test_model_vq_voice_side),
		cmocka_unit_test(test_model_vq_reconcile),
		cmocka_unit_test(test_model_vq_dump_restore),
		cmocka_unit_test(test_stype_builtin),
		cmocka_unit_test(test_stype_parse),
		cmocka_unit_test(test_profile_parse),
		cmocka_unit_test(test_profile_next_reset),
		cmocka_unit_test(test_profile_period_start),
		cmocka_unit_test(test_acc_current),
		cmocka_unit_test(test_acc_total),
		cmocka_unit_test(test_acc_average_max),
		cmocka_unit_test(test_acc_service_factor),
		cmocka_unit_test(test_acc_sliding),
		cmocka_unit_test(test_acc_estim_wait),
		cmocka_unit_test(test_acc_filter),
		cmocka_unit_test(test_acc_save_load),
		cmocka_unit_test(test_together),
		cmocka_unit_test(test_object_rights),
		cmocka_unit_test(test_statreq_good),
		cmocka_unit_test(test_statreq_errors),
		cmocka_unit_test(test_statreq_object_only),
		cmocka_unit_test(test_profile_key_cut),
	};

	profile_parse(NULL, &growing, NULL, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
