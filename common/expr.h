/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expr - skill expressions: which agents an interaction may go to (a
 * routing point's routeTarget, an agent group's skillExpression), compiled
 * once into a flat postfix program and evaluated per agent without
 * allocating.  Pure: skill names and agents' levels are asked through
 * callbacks.
 *
 * Grammar (whitespace - space, tab, CR, LF - is free between tokens):
 *
 *   expr     := and { ("|" | "||") and }
 *   and      := unary { ("&" | "&&") unary }
 *   unary    := { "!" } primary
 *   primary  := "(" expr ")" | "true" | name [ cmp level ]
 *   cmp      := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
 *   level    := decimal digits, 0 to 1000000
 *   name     := one or more of A-Z a-z 0-9 _ - . and bytes >= 0x80
 *               (UTF-8 letters), or a double-quoted string of any bytes
 *               in which \" is a quote and \\ a backslash
 *
 * - So ! binds tighter than &, and & tighter than |; & and | group to the
 *   left.  A comparison belongs to its name: !Sales>5 is !(Sales>5).
 * - A name alone holds when the agent has the skill, at any level (0
 *   too).  A comparison holds when the agent has the skill at a level
 *   that compares so: an agent lacking the skill satisfies none, not even
 *   Sales!=5 or Sales<3.
 * - true holds for every agent; "true" (quoted) is a skill named true.
 * - Names are looked up as written (bytes, case kept) through the
 *   caller's callback; an unknown name is an error.
 * - Limits: 4096 bytes of text, parentheses nested 64 deep, 256 operands
 *   (names and true).
 *
 * Examples: Sales>=5 & English>3 | Support
 *           !(Tier1 | Tier2) & (French >= 7)
 *           "Tier 1" > 2 && !Trainee
 *
 * Errors name the 0-based byte offset where the text goes wrong:
 * "expected a skill name at 7", "unknown skill \"Salse\" at 0",
 * "unbalanced parenthesis at 12", "expected an integer level after >= at
 * 9", "trailing input at 15", "empty expression", ...  Names in messages
 * are cut to 64 bytes and any byte that is not printable ASCII or valid
 * UTF-8 is shown as ?, so a message is always valid UTF-8 (for JSON).
 */
#ifndef TENANTD_ROUTING_EXPR_H
#define TENANTD_ROUTING_EXPR_H

#include <stddef.h>

#define REXPR_TEXT_MAX		4096	/* bytes of text */
#define REXPR_DEPTH_MAX		64	/* nested parentheses */
#define REXPR_OPERANDS_MAX	256	/* names and true */
#define REXPR_LEVEL_MAX		1000000
#define REXPR_ERR_MAX		192	/* room for any message */

struct rexpr;

/* Name -> skill id (>= 0), or -1 when no such skill. */
typedef int	 rexpr_skill_cb(const char *name, size_t len, void *arg);
/* The agent's level of skill id, or -1 (any negative) when it lacks it. */
typedef int	 rexpr_level_cb(int skill, void *arg);

/*
 * Compile text (a C string).  NULL on a syntax error or an unknown skill,
 * with the message in err (errlen bytes, REXPR_ERR_MAX is enough; NULL
 * for none) and the byte offset in *pos (pos may be NULL).
 */
struct rexpr	*rexpr_compile(const char *text, rexpr_skill_cb *, void *arg,
		    char *err, size_t errlen, size_t *pos);
void		 rexpr_free(struct rexpr *);

/* 1 when the agent whose levels the callback gives matches, else 0. */
int		 rexpr_match(const struct rexpr *, rexpr_level_cb *, void *arg);
/*
 * For the "most skilled" strategy: the highest level the agent has among
 * the skills the expression names in a positive place (under an even
 * number of !: Sales in "Sales>3 & !Trainee", also in "!(!Sales)"), -1
 * when it has none of them.
 */
int		 rexpr_score(const struct rexpr *, rexpr_level_cb *, void *arg);
/*
 * The distinct skill ids the expression names, negated or not, in the
 * order they first appear; n set.  The array is the expression's.
 */
const int	*rexpr_skills(const struct rexpr *, size_t *n);
/*
 * 1 when only an agent with at least one of those skills can match, so
 * an index by skill finds every candidate; 0 for expressions such as
 * "true" or "!Trainee", which an agent without any skill matches.
 */
int		 rexpr_needs_skill(const struct rexpr *);

#endif
