/*  bf_overview — the live overview: one poller thread asks control once
    an interval (a second) for the services, the newest runs, the newest
    run's notices and its held notices, keeps the latest snapshot, and
    pushes it to every open event stream (/api/events). However many
    browsers watch, control sees one round of queries per interval.

    Readiness. The console has no database: it is ready when it reaches
    control, i.e. when control answered one of the poller's queries (any
    answer, a refusal too) within the last three intervals (at least
    BF_OVERVIEW_STALE_MIN_MS). bf_overview_ready is that /readyz check
    ("control").

    SNAPSHOT = {"at_ms", "polls", "services": <services.list>,
    "runs": <runs.list limit=5>, "deliveries": <deliveries.summary of the
    newest run's period>, "held": [{"period", "held", "held_until",
    "release_at", "scheduled_at"}], "error": null | "control unreachable"
    | "control: REASON"}; a part control did not answer is null.

    Streams. Each stream holds at most two events: the one being written
    and the newest one waiting (a newer snapshot replaces a waiting one),
    so a browser that stops reading costs two snapshots of memory and
    never slows the poller or the other streams; libmicrohttpd's
    connection timeout closes it. A stream with nothing to write is
    suspended (no busy wait) and resumed by the next snapshot, which a
    ": ping" comment line follows once a ping interval. A stream ends
    when its session does (logout, expiry).  */

#ifndef BF_OVERVIEW_H_INCLUDED
#define BF_OVERVIEW_H_INCLUDED

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_client.h"

#define BF_OVERVIEW_STALE_MIN_MS 5000

typedef struct {
    bf_client_args_t client; /* the console's own key; no on_behalf_of */
    int interval_ms;         /* between rounds (1000) */
    int ping_ms;             /* between ": ping" comment lines (15000) */
    size_t max_streams;      /* open streams at most */
    /*  Whether the session a stream was opened with is still live (asked
        before each event, on libmicrohttpd's thread; NULL: always): a
        stream ends with its session.  */
    bool (*live) (void *context, const char *token);
    void *live_context;
} bf_overview_args_t;

typedef struct bf_overview_t bf_overview_t;

/*  Starts the poller. NULL with the reason in err.  */
bf_overview_t *bf_overview_new (const bf_overview_args_t *args, char *err, size_t errsize);

/*  Stops the poller and ends every stream (each is resumed to end), then
    frees. Call before stopping libmicrohttpd, and destroy the daemon
    before freeing (bf_overview_end_streams, then the daemon, then this).  */
void bf_overview_destroy (bf_overview_t **self_p);

/*  Ends every stream (they end at their next write) and refuses new
    ones. Safe twice.  */
void bf_overview_end_streams (bf_overview_t *self);

/*  A malloc'd copy of the latest snapshot (NUL-terminated; its length in
 *len), or NULL when out of memory.  */
char *bf_overview_snapshot (bf_overview_t *self, size_t *len);

/*  Rounds made since the start.  */
uint64_t bf_overview_polls (bf_overview_t *self);

/*  Readiness from when control last answered (answered_ms, monotonic;
    0: never) at now_ms: true when it is at most stale_ms ago. The reason
    says how long ago ("control answered 0.4 s ago", "control last
    answered 12.0 s ago", "control has not answered yet"). Pure.  */
bool bf_overview_ready_at (int64_t answered_ms, int64_t now_ms, int64_t stale_ms, char *reason,
                           size_t reasonsize);

/*  How old control's last answer may be for a poll interval: three
    intervals, at least BF_OVERVIEW_STALE_MIN_MS.  */
int64_t bf_overview_stale_ms (int interval_ms);

/*  The readiness check (a bf_ready_fn, bf_health.h) of the overview arg:
    bf_overview_ready_at with the poller's last answer. Thread-safe; reads
    one atomic.  */
bool bf_overview_ready (void *arg, char *reason, size_t reasonsize);

/*  A new event-stream response for connection, opened with the session
    token (copied; args.live is asked about it before each event), which
    the caller queues and drops its reference to; or NULL when max_streams
    are open or streams have ended. The daemon must allow suspend/resume.  */
struct MHD_Response *bf_overview_stream (bf_overview_t *self, struct MHD_Connection *connection,
                                         const char *token);

#endif
