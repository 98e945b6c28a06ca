/* SPDX-License-Identifier: Apache-2.0 */
/*
 * treat - what a call result does to a record (docs/outbound.md,
 * "Treatments"): pure.
 *
 * The list's treatments for a call result, in the list's order, make a
 * sequence: each one applies `attempts` times in a row, then the next
 * one; the whole sequence `cycle` times (the first treatment's cycle).
 * The record's `treatments` column keeps how far along it is, per call
 * result ("6:2,7:1": two treatments applied for Busy, one for No
 * Answer).  Past the end of its sequence, past the list's maxAttempts, or
 * with no treatment for its result, a record is done (Updated), and so is
 * its chain: its other Ready records become Chain Updated, as OCS does.
 * An answered call ends the chain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "treat.h"
#include "window.h"

/* The configuration's call result names and their GctiCallState codes. */
static const struct {
	const char	*name;
	int		 code;
} results[] = {
	{ "Answer", 33 }, { "Busy", 6 }, { "NoAnswer", 7 },
	{ "AnsweringMachine", 9 }, { "Fax", 17 }, { "SitDetected", 8 },
	{ "SitInvalidNumber", 11 }, { "SitVacant", 12 },
	{ "SitIntercept", 13 }, { "SitNoCircuit", 15 }, { "SitReorder", 16 },
	{ "SitUnknown", 14 }, { "Dropped", 26 }, { "DroppedNoAnswer", 27 },
	{ "Abandoned", 21 }, { "WrongParty", 40 }, { "WrongNumber", 53 },
	{ "NoDialTone", 35 }, { "NoRingback", 37 }, { "NoEstablished", 38 },
	{ "PagerDetected", 39 }, { "SilenceDetected", 32 },
	{ "AllTrunksBusy", 10 }, { "Cancelled", 52 }, { "DoNotCall", 51 },
	{ "GeneralError", 3 }, { "SystemError", 4 }, { "Unknown", 28 },
};

static const char *const actions[] = {
	[TA_NONE] = "NoTreatment", [TA_RETRY_IN] = "RetryIn",
	[TA_RETRY_AT] = "RetryAt", [TA_REDIAL] = "Redial",
	[TA_NEXT_IN_CHAIN] = "NextInChain",
	[TA_AGENT_ERROR] = "MarkAsAgentError",
};

int
treat_result_code(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < sizeof(results) / sizeof(results[0]);
	    i++)
		if (strcmp(results[i].name, name) == 0)
			return results[i].code;
	return -1;
}

const char *
treat_result_name(int code)
{
	size_t	i;

	for (i = 0; i < sizeof(results) / sizeof(results[0]); i++)
		if (results[i].code == code)
			return results[i].name;
	return "";
}

int
treat_action_parse(const char *s)
{
	int	i;

	for (i = 0; s != NULL && i <= TA_AGENT_ERROR; i++)
		if (strcmp(actions[i], s) == 0)
			return i;
	return -1;
}

/* A result that ends the record whatever the treatments say. */
int
treat_is_final_result(int code)
{
	return code == 33 || code == 51 || code == 52 || code == 53 ||
	    code == 40;
}

/* history_get - how many treatments were applied for result */
static int
history_get(const char *h, int result)
{
	const char	*p = h;
	int		 r, n, used;

	while (p != NULL && *p != '\0') {
		if (sscanf(p, "%d:%d%n", &r, &n, &used) != 2)
			return 0;
		if (r == result)
			return n < 0 ? 0 : n;
		p += used;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* history_set - h with result's count set to n, into out */
static void
history_set(const char *h, int result, int n, char *out, size_t len)
{
	const char	*p = h;
	int		 r, c, used;
	size_t		 o = 0;

	out[0] = '\0';
	while (p != NULL && *p != '\0' && sscanf(p, "%d:%d%n", &r, &c,
	    &used) == 2) {
		if (r != result && o < len)
			o += (size_t)snprintf(out + o, len - o, "%s%d:%d",
			    o > 0 ? "," : "", r, c);
		p += used;
		if (*p == ',')
			p++;
	}
	if (o < len)
		snprintf(out + o, len - o, "%s%d:%d", o > 0 ? "," : "", result,
		    n);
}

static void
done(struct treat_out *o, int status)
{
	o->record_status = status;
	o->chain = TC_FINAL;
}

void
treat_apply(const struct treat_in *in, struct treat_out *o)
{
	const struct treatment	*seq[64], *t = NULL;
	size_t			 n = 0, i;
	int			 k, total = 0, pos, cycles, nth = 0;

	memset(o, 0, sizeof(*o));
	o->action = "None";
	snprintf(o->history, sizeof(o->history), "%s", in->history ?: "");
	for (i = 0; i < in->nt && n < 64; i++)
		if (in->t[i].result == in->result) {
			seq[n++] = &in->t[i];
			total += in->t[i].attempts > 0 ? in->t[i].attempts : 1;
		}
	if (treat_is_final_result(in->result) || n == 0) {
		done(o, 3);
		return;
	}
	k = history_get(in->history, in->result);
	cycles = seq[0]->cycle > 0 ? seq[0]->cycle : 1;
	if (k >= total * cycles) {
		done(o, 3);
		return;
	}
	/* The k-th application: which treatment, its how-manieth. */
	pos = k % total;
	for (i = 0; i < n; i++) {
		int	a = seq[i]->attempts > 0 ? seq[i]->attempts : 1;

		if (pos < a) {
			t = seq[i];
			nth = pos;
			break;
		}
		pos -= a;
	}
	history_set(in->history, in->result, k + 1, o->history,
	    sizeof(o->history));
	o->applied = t->dbid;
	o->action = actions[t->action];
	switch (t->action) {
	case TA_RETRY_IN:
	case TA_RETRY_AT:
	case TA_REDIAL:
		if (in->attempt >= in->max_attempts) {
			done(o, 3);
			return;
		}
		o->record_status = 1;
		if (t->action == TA_RETRY_IN)
			o->sched = in->now + t->interval +
			    (time_t)t->increment * nth;
		else if (t->action == TA_RETRY_AT) {
			o->sched = window_next_at(in->tz, in->now, t->time);
			if (o->sched == (time_t)-1)
				o->sched = in->now + 86400;
		} else
			o->sched = in->now;
		return;
	case TA_NEXT_IN_CHAIN:
		o->record_status = 3;
		o->chain = TC_NEXT;
		return;
	case TA_AGENT_ERROR:
		done(o, 6);
		return;
	case TA_NONE:
	default:
		done(o, 3);
		return;
	}
}
