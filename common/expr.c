/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expr - skill expressions (the grammar is in expr.h): a recursive-descent
 * parser that emits a postfix program, and the program's evaluation for
 * one agent, which runs thousands of times per routing decision.
 *
 * A leaf pushes one truth value, NOT flips the top, AND and OR fold the
 * top into the value under it.  Every comparison but != is a range of
 * levels [lo, hi] with lo >= 0, so an agent lacking the skill (a negative
 * level) is outside all of them; != has its own op.  The stack never
 * holds more values than the program has leaves, so rexpr_match keeps it
 * on the C stack and allocates nothing.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "util.h"

#define SHOW_MAX	64	/* bytes of a name shown in a message */

enum rx_code {
	RX_TRUE = 0,
	RX_IN,		/* has the skill at a level in [lo, hi] */
	RX_NE,		/* has the skill at a level other than lo */
	RX_NOT,
	RX_AND,
	RX_OR,
};

struct rx_op {
	int		 code;
	int		 skill;
	int		 lo, hi;
};

/* One allocation: the struct, then the program, then both id lists. */
struct rexpr {
	const struct rx_op	*prog;
	size_t			 nprog;
	const int		*skills;	/* distinct, as they first appear */
	size_t			 nskills;
	const int		*positive;	/* those rexpr_score looks at */
	size_t			 npositive;
	int			 needs_skill;
};

struct parser {
	const char	*s;		/* NUL-terminated, len bytes */
	size_t		 len;
	size_t		 at;
	int		 depth;
	rexpr_skill_cb	*skill;
	void		*arg;
	struct rx_op	*prog;
	size_t		 nprog, cap;
	size_t		 nleaves;
	int		 skills[REXPR_OPERANDS_MAX];
	size_t		 nskills;
	int		 positive[REXPR_OPERANDS_MAX];
	size_t		 npositive;
	char		 name[REXPR_TEXT_MAX];	/* a quoted name, unescaped */
	char		*err;
	size_t		 errlen;
	size_t		*pos;
};

static int	 or_expr(struct parser *, int);

/* ---- messages ---- */

/* u8len - the length of the valid UTF-8 sequence at s, 0 if there is none */
static size_t
u8len(const unsigned char *s, size_t n)
{
	unsigned	 cp;
	size_t		 len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * show - a name as a message quotes it: \" and \\ escaped, a byte that is
 * neither printable ASCII nor part of valid UTF-8 as ?, cut after
 * SHOW_MAX bytes with "...".  Messages end up in JSON, which must be
 * UTF-8, and in logs.
 */
static void
show(char out[SHOW_MAX + 4], const char *name, size_t len)
{
	const unsigned char	*s = (const unsigned char *)name;
	size_t			 i = 0, o = 0, n;

	while (i < len) {
		n = u8len(s + i, len - i);
		if (n <= 1 && (n == 0 || s[i] < 0x20 || s[i] == 0x7f))
			n = 0;
		if (o + (n == 0 ? 1 : n) + (s[i] == '"' || s[i] == '\\') >
		    SHOW_MAX)
			break;
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\')
			out[o++] = '\\';
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	if (i < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* cut_utf8 - drop the last sequence when snprintf cut it in two */
static void
cut_utf8(char *s)
{
	size_t	 n = strlen(s), i = n;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && (unsigned char)s[i - 1] >= 0x80 &&
	    u8len((unsigned char *)s + i - 1, n - i + 1) != n - i + 1)
		s[i - 1] = '\0';
}

/* set_error - the message and where, for the caller; always -1 */
static int __attribute__((format(printf, 3, 4)))
set_error(struct parser *p, size_t at, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (p->pos != NULL)
		*p->pos = at;
	if (p->err == NULL || p->errlen == 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		p->err[0] = '\0';
	else if ((size_t)n >= p->errlen)
		cut_utf8(p->err);
	return -1;
}

/* fail - a message that ends with the position; -1 */
static int __attribute__((format(printf, 3, 4)))
fail(struct parser *p, size_t at, const char *fmt, ...)
{
	char	 msg[REXPR_ERR_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return set_error(p, at, "%s at %zu", msg, at);
}

/* ---- the parser ---- */

/* ws - past any whitespace */
static void
ws(struct parser *p)
{
	while (p->s[p->at] == ' ' || p->s[p->at] == '\t' ||
	    p->s[p->at] == '\n' || p->s[p->at] == '\r')
		p->at++;
}

/* namech - whether c may be in a bare name */
static int
namech(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
	    (unsigned char)c >= 0x80;
}

/* emit - one op at the end of the program */
static void
emit(struct parser *p, int code, int skill, int lo, int hi)
{
	struct rx_op	*o;

	if (p->nprog == p->cap) {
		p->cap = p->cap == 0 ? 32 : p->cap * 2;
		p->prog = xrealloc(p->prog, p->cap * sizeof(*p->prog));
	}
	o = &p->prog[p->nprog++];
	o->code = code;
	o->skill = skill;
	o->lo = lo;
	o->hi = hi;
}

/* add_id - id into a list of at most REXPR_OPERANDS_MAX distinct ids */
static void
add_id(int *ids, size_t *n, int id)
{
	size_t	 i;

	for (i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	ids[(*n)++] = id;
}

/* read_name - a bare or quoted name at p->at, unescaped; p->at after it */
static int
read_name(struct parser *p, const char **name, size_t *len)
{
	const char	*s = p->s;
	size_t		 start = p->at, i, n = 0;

	if (s[start] != '"') {
		for (i = start; namech(s[i]); i++)
			;
		*name = s + start;
		*len = i - start;
		p->at = i;
		return 0;
	}
	for (i = start + 1; s[i] != '"'; i++) {
		if (s[i] == '\0' || (s[i] == '\\' && s[i + 1] == '\0'))
			return fail(p, start, "unterminated quoted name");
		if (s[i] == '\\' && s[i + 1] != '"' && s[i + 1] != '\\')
			return fail(p, i, "bad escape in a quoted name "
			    "(only \\\" and \\\\)");
		if (s[i] == '\\')
			i++;
		p->name[n++] = s[i];
	}
	if (n == 0)
		return fail(p, start, "empty skill name");
	*name = p->name;
	*len = n;
	p->at = i + 1;
	return 0;
}

/* is_cmp - whether a comparison operator starts at s */
static int
is_cmp(const char *s)
{
	return s[0] == '=' || s[0] == '<' || s[0] == '>' ||
	    (s[0] == '!' && s[1] == '=');
}

/*
 * comparison - the comparison at p->at, if any, and its level, as op's
 * code and range; p->at after it.  0 when there is none, -1 on error.
 */
static int
comparison(struct parser *p, struct rx_op *op)
{
	const char	*s = p->s + p->at;
	size_t		 oplen, num;
	long		 v = 0;

	if (!is_cmp(s))
		return 0;
	oplen = s[1] == '=' ? 2 : 1;
	p->at += oplen;
	ws(p);
	num = p->at;
	while (p->s[p->at] >= '0' && p->s[p->at] <= '9') {
		if (v <= REXPR_LEVEL_MAX)
			v = v * 10 + (p->s[p->at] - '0');
		p->at++;
	}
	if (p->at == num || namech(p->s[p->at]) || p->s[p->at] == '"')
		return fail(p, num, "expected an integer level after %.*s",
		    (int)oplen, s);
	if (v > REXPR_LEVEL_MAX)
		return fail(p, num, "level over %d", REXPR_LEVEL_MAX);
	op->code = RX_IN;
	op->lo = 0;
	op->hi = INT_MAX;
	if (s[0] == '=')
		op->lo = op->hi = (int)v;
	else if (s[0] == '!') {
		op->code = RX_NE;
		op->lo = (int)v;
	} else if (s[0] == '<')
		op->hi = oplen == 2 ? (int)v : (int)v - 1;
	else
		op->lo = oplen == 2 ? (int)v : (int)v + 1;
	return 1;
}

/* operand - true, or a skill with an optional comparison: one leaf */
static int
operand(struct parser *p, int neg)
{
	struct rx_op	 op = { RX_IN, -1, 0, INT_MAX };
	char		 shown[SHOW_MAX + 4];
	const char	*nm = NULL;
	size_t		 start = p->at, len = 0;
	int		 quoted = p->s[start] == '"', keyword;

	if (p->nleaves++ == REXPR_OPERANDS_MAX)
		return fail(p, start, "too many operands (over %d)",
		    REXPR_OPERANDS_MAX);
	if (read_name(p, &nm, &len) == -1)
		return -1;
	keyword = !quoted && len == 4 && memcmp(nm, "true", 4) == 0;
	if (!keyword) {
		op.skill = p->skill != NULL ? p->skill(nm, len, p->arg) : -1;
		if (op.skill < 0) {
			show(shown, nm, len);
			return fail(p, start, "unknown skill \"%s\"", shown);
		}
	}
	ws(p);
	if (keyword) {
		if (is_cmp(p->s + p->at))
			return fail(p, p->at, "true cannot be compared");
		emit(p, RX_TRUE, -1, 0, 0);
		return 0;
	}
	if (comparison(p, &op) == -1)
		return -1;
	add_id(p->skills, &p->nskills, op.skill);
	if (!neg)
		add_id(p->positive, &p->npositive, op.skill);
	emit(p, op.code, op.skill, op.lo, op.hi);
	return 0;
}

/* primary - a parenthesised expression or an operand */
static int
primary(struct parser *p, int neg)
{
	size_t	 open;
	int	 c;

	ws(p);
	c = p->s[p->at];
	if (c == '"' || namech(c))
		return operand(p, neg);
	if (c != '(')
		return fail(p, p->at, "expected a skill name");
	if (p->depth == REXPR_DEPTH_MAX)
		return fail(p, p->at, "expression too deeply nested");
	open = p->at++;
	p->depth++;
	if (or_expr(p, neg) == -1)
		return -1;
	ws(p);
	if (p->s[p->at] == '\0')
		return fail(p, open, "unbalanced parenthesis");
	if (p->s[p->at] != ')')
		return fail(p, p->at, "expected &, | or )");
	p->at++;
	p->depth--;
	return 0;
}

/*
 * unary - any number of ! and a primary.  A loop, not recursion, so a run
 * of ! costs no depth; one NOT for an odd run.  neg says whether the
 * primary sits under an odd number of ! in all: its skills are not scored.
 */
static int
unary(struct parser *p, int neg)
{
	int	 nots = 0;

	for (ws(p); p->s[p->at] == '!'; ws(p)) {
		p->at++;
		nots ^= 1;
	}
	if (primary(p, neg ^ nots) == -1)
		return -1;
	if (nots)
		emit(p, RX_NOT, -1, 0, 0);
	return 0;
}

/* and_expr - unaries joined by & or && */
static int
and_expr(struct parser *p, int neg)
{
	if (unary(p, neg) == -1)
		return -1;
	for (;;) {
		ws(p);
		if (p->s[p->at] != '&')
			return 0;
		p->at += p->s[p->at + 1] == '&' ? 2 : 1;
		if (unary(p, neg) == -1)
			return -1;
		emit(p, RX_AND, -1, 0, 0);
	}
}

/* or_expr - and_exprs joined by | or || */
static int
or_expr(struct parser *p, int neg)
{
	if (and_expr(p, neg) == -1)
		return -1;
	for (;;) {
		ws(p);
		if (p->s[p->at] != '|')
			return 0;
		p->at += p->s[p->at + 1] == '|' ? 2 : 1;
		if (and_expr(p, neg) == -1)
			return -1;
		emit(p, RX_OR, -1, 0, 0);
	}
}

/* lacks_all - the level callback of an agent without any skill */
static int
lacks_all(int skill, void *arg)
{
	return -1;
}

/* build - the expression from a parser that read all of its text */
static struct rexpr *
build(const struct parser *p)
{
	struct rexpr	*e;
	struct rx_op	*prog;
	int		*ids;

	e = xmalloc(sizeof(*e) + p->nprog * sizeof(*prog) +
	    (p->nskills + p->npositive) * sizeof(*ids));
	prog = (struct rx_op *)(e + 1);
	ids = (int *)(prog + p->nprog);
	memcpy(prog, p->prog, p->nprog * sizeof(*prog));
	memcpy(ids, p->skills, p->nskills * sizeof(*ids));
	memcpy(ids + p->nskills, p->positive, p->npositive * sizeof(*ids));
	e->prog = prog;
	e->nprog = p->nprog;
	e->skills = ids;
	e->nskills = p->nskills;
	e->positive = ids + p->nskills;
	e->npositive = p->npositive;
	/* It depends on its skills only: an agent with none of them
	 * evaluates as one without any skill. */
	e->needs_skill = !rexpr_match(e, lacks_all, NULL);
	return e;
}

/* parse - the whole text; 0 when it is a valid expression */
static int
parse(struct parser *p)
{
	if (p->len > REXPR_TEXT_MAX)
		return fail(p, REXPR_TEXT_MAX, "expression too long "
		    "(over %d bytes)", REXPR_TEXT_MAX);
	ws(p);
	if (p->at == p->len)
		return set_error(p, 0, "empty expression");
	if (or_expr(p, 0) == -1)
		return -1;
	ws(p);
	if (p->s[p->at] == ')')
		return fail(p, p->at, "unbalanced parenthesis");
	if (p->at != p->len)
		return fail(p, p->at, "trailing input");
	return 0;
}

struct rexpr *
rexpr_compile(const char *text, rexpr_skill_cb *skill, void *arg, char *err,
    size_t errlen, size_t *pos)
{
	struct parser	*p = xcalloc(1, sizeof(*p));
	struct rexpr	*e = NULL;

	p->s = text != NULL ? text : "";
	p->len = strnlen(p->s, REXPR_TEXT_MAX + 1);
	p->skill = skill;
	p->arg = arg;
	p->err = err;
	p->errlen = errlen;
	p->pos = pos;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (pos != NULL)
		*pos = 0;
	if (parse(p) == 0)
		e = build(p);
	free(p->prog);
	free(p);
	return e;
}

void
rexpr_free(struct rexpr *e)
{
	free(e);
}

/* ---- evaluation ---- */

int
rexpr_match(const struct rexpr *e, rexpr_level_cb *level, void *arg)
{
	unsigned char		 st[REXPR_OPERANDS_MAX];
	const struct rx_op	*o, *end = e->prog + e->nprog;
	size_t			 sp = 0;
	int			 lv;

	for (o = e->prog; o < end; o++) {
		switch (o->code) {
		case RX_TRUE:
			st[sp++] = 1;
			break;
		case RX_IN:
			lv = level(o->skill, arg);
			st[sp++] = lv >= o->lo && lv <= o->hi;
			break;
		case RX_NE:
			lv = level(o->skill, arg);
			st[sp++] = lv >= 0 && lv != o->lo;
			break;
		case RX_NOT:
			st[sp - 1] ^= 1;
			break;
		case RX_AND:
			sp--;
			st[sp - 1] &= st[sp];
			break;
		case RX_OR:
			sp--;
			st[sp - 1] |= st[sp];
			break;
		}
	}
	return st[0];
}

int
rexpr_score(const struct rexpr *e, rexpr_level_cb *level, void *arg)
{
	size_t	 i;
	int	 best = -1, lv;

	for (i = 0; i < e->npositive; i++)
		if ((lv = level(e->positive[i], arg)) > best)
			best = lv;
	return best;
}

const int *
rexpr_skills(const struct rexpr *e, size_t *n)
{
	*n = e->nskills;
	return e->skills;
}

int
rexpr_needs_skill(const struct rexpr *e)
{
	return e->needs_skill;
}
