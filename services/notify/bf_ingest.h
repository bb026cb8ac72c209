/*  bf_ingest — notify's ingest actor: settle's bill events in, deliveries
    out (design.md "notify", guarantees G3, G4, G8).

    A SUB socket connects to every settle PUB endpoint (only the active
    relay binds one) and takes [EVT.BILL][seq][BillSettled] and
    [EVT.HB][0][RelayHeartbeat]; one DEALER per replay endpoint asks
    [RPL.FETCH][0][ReplayFetch] for what the live stream did not bring.

    Order: events are ingested strictly in seq order, each once, starting
    after the stored cursor (notify_cursor.last_seq of `consumer`; the row
    is created at 0 when missing). Live events ahead of the cursor are
    buffered in a bounded window; a live seq past a hole, a heartbeat whose
    last_seq is past what the window holds, or silence for
    heartbeat_timeout_ms (a tail check) makes the actor fetch the missing
    range from replay, at most replay_credit events per request and one
    request outstanding. At start it catches up from replay the same way.
    A request that is refused (BAD_REQUEST, UNAVAILABLE) or not answered
    within max(heartbeat_timeout_ms, 1 s) is retried with backoff on the
    next replay endpoint, with a warning.

    Ingesting a contiguous run of up to `batch` events is one transaction:
    lock the cursor row (FOR UPDATE: several notify processes may ingest
    the same stream; what another one already ingested is skipped), insert
    one delivery per channel of every event (purpose, state PENDING,
    not_before now(), event_seq) with ON CONFLICT (bill_id, channel,
    purpose) DO NOTHING in one multi-row statement, advance the cursor,
    commit. A run is whatever is contiguous when the actor gets to it: no
    event waits for a batch to fill.

    Nothing is skipped: an event that decodes but cannot be inserted (its
    bill does not exist, say) is logged as an ERROR with its seq and retried
    with backoff, its buffered copy replaced by replay's; the cursor stays
    before it. A lost database connection is retried one attempt at a time
    with backoff while the pipe is answered; ingest resumes from the stored
    cursor. Frames that fail bf_wire decoding are counted, logged (rate
    limited) and dropped.

    Fault points: ingest.before_commit, ingest.after_commit.

    Pipe protocol: the zactor contract (ready signal once the sockets are
    connected, "$TERM"), plus
      "STATUS" -> five decimal strings: cursor (last seq ingested; 0 until
                  the cursor has been read), events ingested by this actor,
                  duplicates ignored (events at or below the cursor, live or
                  replayed, and runs another process had already ingested),
                  gaps filled (events ingested from replay, not live),
                  rejected frames (undecodable or unexpected messages).  */

#ifndef BF_INGEST_H_INCLUDED
#define BF_INGEST_H_INCLUDED

#include <czmq.h>

#include "bf_actor.h"
#include "bf_config.h"

typedef struct {
    const char *conninfo;
    /*  comma-separated: SUB connects to every settle PUB (only the active
        relay binds)  */
    const char *pub_endpoints;
    const char *replay_endpoints; /* comma-separated replay ROUTERs (any answers the same) */
    const char *consumer;         /* notify_cursor.consumer */
    const char *purpose;          /* "BILL_ISSUED" */
    int replay_credit;            /* events per FETCH */
    int batch;                    /* events per transaction (e.g. 500) */
    /*  no event or heartbeat for this long: check the tail via replay  */
    int heartbeat_timeout_ms;
    bf_actor_status_t *status; /* a failed start is recorded here (bf_actor.h); may be NULL */
    /*  CURVE client key pair and settle's public key (Z85) for PUB and
        replay; cert NULL: no CURVE (in-process tests). Only read during
        zactor_new.  */
    zcert_t *cert;
    const char *server_key;
} bf_ingest_args_t;

/*  zactor function: zactor_new (bf_ingest_actor, &args). args (and its
    strings) need only live until zactor_new returns. Non-positive numbers
    take defaults (credit 2000, batch 500, heartbeat timeout 3000 ms); empty
    consumer / purpose mean "notify" / "BILL_ISSUED". Pipe "STATUS" ->
    cursor (last_seq ingested), events ingested, duplicates ignored, gaps
    filled, rejected frames (decimal strings; see above).  */
void bf_ingest_actor (zsock_t *pipe, void *args);

/*  Fills *args from notify's settings (docs/configuration.md): the
    database, settle's PUB and replay endpoints, the consumer, credit,
    batch and silence, and the CURVE key pair for the event stream
    (notify.key_file, or control.client_key_file) with settle's public key
    (notify.settle_server_key), both required. purpose and status are the
    caller's. Strings point into config; args->cert is the caller's to
    destroy once the actor started. Returns 0, or -1 with the reason
    (naming the setting) in err.  */
int bf_ingest_args_from_config (bf_ingest_args_t *args, const bf_config_t *config, char *err,
                                size_t errsize);

#endif
