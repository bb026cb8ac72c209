/*  bf_replay — the replay actor (design.md "settle", guarantee G3).

    A ROUTER that answers [RPL.FETCH][0][ReplayFetch{request_id, from_seq,
    count}] from the durable outbox: events with seq in [from_seq,
    from_seq + count), in order, as one or more [RPL.BATCH][last seq]
    [ReplayBatch] replies of at most max_batch events (and under the 1 MiB
    frame limit). count is the requester's credit: replay never sends more
    than it asked for, so a slow consumer is never flooded.

    Bad requests get a ReplayBatch with status BAD_REQUEST and an error text
    (malformed frames, unknown types, from_seq 0, count 0, from_seq beyond the
    published tail); a database failure gets UNAVAILABLE. Every reply carries
    last_published_seq. Every rejected request is counted and logged
    (within a limit of a few lines per 10 s, the rest summed up); the actor
    keeps running.

    Fairness and bounds (bf_replay.c, docs/settle.md "Replay under load"):
    requests are checked before any query; each peer may have a few valid
    requests waiting (more are answered UNAVAILABLE "busy"); peers are
    served round robin one slice at a time; sends never block, and the work
    of a peer that left or stopped reading is dropped.

    Pipe protocol: the zactor contract (ready signal, "$TERM"), plus
      "STATS" -> replies requests served, rejected, events sent (decimal text).  */

#ifndef BF_REPLAY_H_INCLUDED
#define BF_REPLAY_H_INCLUDED

#include <czmq.h>

#include "bf_actor.h"
#include "bf_config.h"

typedef struct {
    const char *conninfo;
    const char *endpoint; /* bound, e.g. tcp://127.0.0.1:7102 */
    int max_batch;        /* events per reply message */
    int connect_timeout_ms;
    bf_actor_status_t *status; /* a failed start is recorded here (bf_actor.h); may be NULL */
    /*  The key pair the ROUTER serves CURVE with, after the process's ZAP
        handler started (bf_curve.h); NULL: no CURVE (in-process tests).
        Only read during zactor_new.  */
    zcert_t *cert;
} bf_replay_args_t;

void bf_replay_actor (zsock_t *pipe, void *args);

/*  Fills *args from settle's settings (db.conninfo, settle.replay_endpoint,
    settle.replay_max_batch, db.connect_timeout_ms); cert and status are
    the caller's. Strings point into config.  */
void bf_replay_args_from_config (bf_replay_args_t *args, const bf_config_t *config);

#endif
