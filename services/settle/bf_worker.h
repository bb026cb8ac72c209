/*  bf_worker — settle's rating worker actor (design.md "settle"; G1, G2, G7).

    Loop: claim one chunk of a RUNNING run (FOR UPDATE SKIP LOCKED, with a
    lease so a dead worker's chunk is reclaimed once the lease expires), read
    the chunk's inputs in bulk (one query per table, never per subscriber),
    rate every subscriber (bf_rating), and write the chunk's bills, bill lines,
    outbox events and rating errors with COPY, with the chunk's DONE mark and
    the run's counters, in ONE transaction — which commits only while the
    worker still holds the chunk's lease. A subscriber that already has a
    bill for the period is skipped, so re-running a chunk adds nothing (G1).

    Pipe protocol: the zactor contract (ready signal, "$TERM": finishes the
    chunk in hand first), plus "STATS" -> chunks, subscribers, bills, errors
    handled by this worker (four decimal strings).
    Fault points: worker.mid_copy (bills sent, lines not), worker.before_commit,
    worker.after_commit.  */

#ifndef BF_WORKER_H_INCLUDED
#define BF_WORKER_H_INCLUDED

#include <czmq.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "bf_config.h"

typedef struct {
    const char *conninfo;
    const char *worker_id; /* unique per worker: "host:pid:w1" */
    int lease_ms;
    int poll_ms; /* idle wait; connection attempts back off 0.1 s .. 5 s */
} bf_worker_args_t;

void bf_worker_actor (zsock_t *pipe, void *args);

/*  Fills *args from settle's settings (db.conninfo, settle.lease_ms,
    settle.poll_ms); worker_id is the caller's. Strings point into config.  */
void bf_worker_args_from_config (bf_worker_args_t *args, const bf_config_t *config);

#endif
