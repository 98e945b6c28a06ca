/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile - the model made to agree with the voice side's state hash
 * (docs/voice-redis.md) when the stream may have failed it
 * (docs/stats.md "A restart of the voice side, and events missed").
 *
 * The model follows the stream.  When the worker may have missed part of
 * it (a gap: the reader reconnected, and a Redis that restarted empty
 * lost what it had not handed over; the stream was trimmed past the
 * reader; the worker started without a snapshot), or the voice side may
 * have forgotten what the stream told (a new boot id, another than the
 * model's, from this life or the snapshot), the state hash is the truth.
 * The worker takes the hash and the stream's last id in one MULTI (a
 * cut); once its live reader has applied the events up to that id, the
 * calls, waiting calls and logged-in agents the hash does not list end,
 * and after a gap those it lists are taken in, with their modes and
 * states.  A gap waits for the voice link: a voice side that comes back
 * to an empty Redis writes its hash before its heartbeat, so a hash read
 * earlier would be empty.  Only with one region: a remote region's calls
 * are not in the local hash.
 *
 * It touches the model (through its callbacks, so that statistics count
 * what changes as they count events) and reads the hash (common/voice.c).
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "voice.h"
#include "stats_int.h"

#define CUT_BOOT	0x1	/* drop what the hash does not list */
#define CUT_GAP		0x2	/* and take in what it lists */

static void	cut_begin(void);
static void	cut_taken(int, json_t *, const struct sid *, void *);
static void	cut_check(void);
static void	cut_reached(const struct sid *);
static void	cut_again(void);
static void	cut_apply(void);

static json_t		*cut_state;	/* the hash, once taken */
static struct sid	 cut_at;	/* the stream id it goes with */
static int		 cut_tries, cut_busy;
static int		 cut_want;	/* CUT_*: a cut is due */
static int		 cut_doing;	/* what the cut under way is for */
static int		 gap_fresh;	/* no event applied since the gap */
/* The voice side's boot id, as the model knows it. */
static char		 boot_known[65];

/* reconcile_boot - the voice side's boot id, new or first seen: another
 * than the one the model knows, from this life or from the snapshot */
void
reconcile_boot(const char *boot, void *arg)
{
	if (boot_known[0] != '\0' && strcmp(boot_known, boot) != 0 &&
	    voice_nregions() == 1) {
		log_info("stats: the voice side restarted (boot %s, was %s)",
		    boot, boot_known);
		cut_tries = 0;
		cut_want |= CUT_BOOT;
		cut_begin();
	}
	reconcile_set_boot(boot);
}

/* reconcile_gap - the reader of a region may have missed events */
void
reconcile_gap(int region, const char *why, void *arg)
{
	if (voice_nregions() != 1) {
		log_warnx("stats: voice events of region %s may have been "
		    "missed (%s); with remote regions the model cannot be "
		    "checked against the local state hash",
		    voice_region_name(region), why);
		return;
	}
	log_info("stats: voice events may have been missed (%s); the model "
	    "will agree with the voice side's state hash", why);
	gap_fresh = 1;
	cut_tries = 0;
	cut_want |= CUT_GAP;
	cut_begin();
}

/* reconcile_seen - the live reader of the local region read an entry
 * (applied: new to the model); a cut waits for its id */
void
reconcile_seen(const struct voice_event *ev, int applied)
{
	if (applied)
		gap_fresh = 0;
	if (cut_state != NULL)
		cut_reached(&ev->id);
}

/* reconcile_tick - a cut whose reader was not placed yet, or one that
 * failed or kept being passed */
void
reconcile_tick(void)
{
	cut_check();
	if (cut_want != 0) {
		cut_tries = 0;
		cut_begin();
	}
}

/* reconcile_link - the voice link changed: a gap's cut waits for it */
void
reconcile_link(void)
{
	cut_begin();
}

/* reconcile_boot_known - the boot id the model reflects, or "" */
const char *
reconcile_boot_known(void)
{
	return boot_known;
}

void
reconcile_set_boot(const char *boot)
{
	snprintf(boot_known, sizeof(boot_known), "%s", boot);
}

void
reconcile_cleanup(void)
{
	json_decref(cut_state);
	cut_state = NULL;
	cut_want = cut_doing = cut_busy = gap_fresh = cut_tries = 0;
	boot_known[0] = '\0';
}

/* cut_begin - take the hash and the stream id it goes with, if one is
 * due and none is under way (a gap: once the voice link is up) */
static void
cut_begin(void)
{
	if (cut_busy || cut_state != NULL || cut_want == 0 ||
	    ((cut_want & CUT_GAP) && !stats_env.link_up))
		return;
	cut_doing = cut_want;
	cut_want = 0;
	cut_busy = 1;
	voice_state_cut(cut_taken, NULL);
}

/* cut_taken - the hash and the stream id it goes with */
static void
cut_taken(int ok, json_t *state, const struct sid *at, void *arg)
{
	cut_busy = 0;
	if (!ok || stats_env.model == NULL) {
		cut_want |= cut_doing;	/* the tick tries again */
		cut_doing = 0;
		return;
	}
	cut_state = json_incref(state);
	cut_at = *at;
	cut_check();
}

/*
 * cut_check - is the reader where the cut was taken?  The model agrees
 * with the hash when the reader is at that id; also when the stream was
 * empty, and when the reader applied nothing since a gap (what it holds
 * came before the hash was written).  Behind it: the entries will tell.
 */
static void
cut_check(void)
{
	struct sid	upto, zero = { 0, 0 };
	int		c;

	if (cut_state == NULL)
		return;
	if (sid_cmp(&cut_at, &zero) == 0) {
		cut_apply();
		return;
	}
	if (voice_read_upto(&upto) == -1)
		return;		/* not placed yet: the tick looks again */
	c = sid_cmp(&upto, &cut_at);
	if (c > 0 && (cut_doing & CUT_GAP) && gap_fresh)
		cut_apply();
	else if (c >= 0)
		cut_reached(&upto);
}

/* cut_reached - the live reader read the entry id */
static void
cut_reached(const struct sid *id)
{
	int	c = sid_cmp(id, &cut_at);

	if (c == 0)
		cut_apply();
	else if (c > 0)
		cut_again();
}

/* cut_again - the reader went past the cut unseen: a new one, a few
 * times at once, then on the tick */
static void
cut_again(void)
{
	json_decref(cut_state);
	cut_state = NULL;
	cut_want |= cut_doing;
	cut_doing = 0;
	if (++cut_tries < 5)
		cut_begin();
}

/* cut_apply - the model agrees with the hash, as of the cut */
static void
cut_apply(void)
{
	size_t	calls, agents, tcalls = 0, tagents = 0;
	double	now = stats_now();

	model_reconcile(stats_env.model, cut_state, now, &calls, &agents);
	if (cut_doing & CUT_GAP)
		model_adopt(stats_env.model, cut_state, now, &tcalls, &tagents);
	if (calls > 0 || agents > 0)
		log_info("stats: the voice side knows nothing of %zu calls and "
		    "%zu agents: they end now", calls, agents);
	if (tcalls > 0 || tagents > 0)
		log_info("stats: %zu calls and %zu agents taken from the voice "
		    "side's state (new, or in another state)", tcalls,
		    tagents);
	json_decref(cut_state);
	cut_state = NULL;
	cut_doing = 0;
}
