/*  bf_settle_metrics — settle's metrics (docs/observability.md), one call
    per event so that the worker and run code each need one line.

    Thread-safe: any worker thread may call these (bf_metrics atomics).
    The chunk duration is measured per thread from the claim to the
    commit.  */

#ifndef BF_SETTLE_METRICS_H_INCLUDED
#define BF_SETTLE_METRICS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  Registers every settle metric now, so that a scrape shows them at 0
    before the first chunk (safe to call again).  */
void bf_settle_metrics_init (void);

/*  A worker claimed a chunk; attempts > 1 means an earlier holder's lease
    expired (the chunk was lost by it and is taken over).  */
void bf_settle_metrics_claimed (int attempts);

/*  A worker committed a chunk with these figures.  */
void bf_settle_metrics_committed (int64_t subscribers, size_t bills, int64_t amount_won,
                                  size_t rating_errors);

/*  A run was created (inside the caller's transaction).  */
void bf_settle_metrics_run_started (void);

/*  The relay's figures after each step of its actor: the highest
    sequence it knows committed (a standby reads it while competing) and,
    while leader, the outbox rows committed and not yet sequenced and
    published (unpublished < 0: not leader, exported as 0 so that a sum
    over settle processes is the leader's figure).  */
void bf_settle_metrics_relay (uint64_t last_seq, int64_t unpublished);

/*  Replay received a request (whatever its answer).  */
void bf_settle_metrics_replay_request (void);

/*  Replay sent events (a reply of n events left for its requester).  */
void bf_settle_metrics_replay_events (size_t n);

#endif
