/* SPDX-License-Identifier: Apache-2.0 */
/*
 * treat - what a call result does to a record (treat.c).
 */
#ifndef TENANTD_OB_TREAT_H
#define TENANTD_OB_TREAT_H

#include <stddef.h>
#include <time.h>

enum treat_action {
	TA_NONE = 0,		/* NoTreatment */
	TA_RETRY_IN,
	TA_RETRY_AT,
	TA_REDIAL,
	TA_NEXT_IN_CHAIN,
	TA_AGENT_ERROR,		/* MarkAsAgentError */
};

/* A Treatment of the list, as the configuration has it. */
struct treatment {
	long long		 dbid;
	int			 result;	/* call_result code */
	enum treat_action	 action;
	int			 interval;	/* s */
	int			 increment;	/* s, per application */
	int			 attempts;	/* applications in a row */
	int			 time;		/* RetryAt: s after midnight */
	int			 cycle;		/* the sequence, how often */
};

enum treat_chain {
	TC_NONE = 0,		/* the chain goes on as it is */
	TC_NEXT,		/* this record is done: the next one's turn */
	TC_FINAL,		/* the chain is done: its other records too */
};

struct treat_in {
	int			 result;	/* call_result code */
	int			 attempt;	/* attempts made, this one too */
	int			 max_attempts;
	const char		*history;	/* the record's treatments */
	const struct treatment	*t;		/* the list's, in order */
	size_t			 nt;
	time_t			 now;
	const char		*tz;		/* the record's zone */
};

struct treat_out {
	int			 record_status;
	time_t			 sched;		/* 0: keep (NULL) */
	enum treat_chain	 chain;
	long long		 applied;	/* treatment dbid, 0: none */
	const char		*action;	/* its name, or "None" */
	char			 history[256];
};

int	 treat_result_code(const char *name);	/* -1: unknown */
const char *treat_result_name(int code);	/* "" when unknown */
int	 treat_action_parse(const char *);	/* -1: unknown */
int	 treat_is_final_result(int code);
void	 treat_apply(const struct treat_in *, struct treat_out *);

#endif
