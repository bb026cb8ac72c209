/*  bf_relay — the outbox relay actor (design.md "settle", guarantees G2, G3).

    Exactly one relay is active across every settle process: each relay actor
    tries to take a session-level PostgreSQL advisory lock; the one that holds
    it is the leader, the others stand by and retry every poll interval, so a
    standby takes over within about a second of the leader's death.

    The leader, in a loop: in one transaction, takes committed outbox rows
    that have no sequence yet (oldest first, up to `batch`), gives them the
    next gapless sequence numbers after relay_state.last_seq, and commits;
    only then publishes them on its PUB socket as [EVT.BILL][seq][payload],
    in sequence order. Every heartbeat interval it publishes [EVT.HB][0]
    [RelayHeartbeat{last_seq}] with the highest sequence committed, so a
    subscriber can see events it missed and fetch them from replay.

    Pipe protocol (besides the zactor contract: signal when ready, "$TERM"):
      "STATUS" -> replies "LEADER" or "STANDBY", then last_seq as decimal text.
    Fault points: relay.after_commit (sequenced, not yet published),
    relay.mid_publish (after the first event of a batch is sent).  */

#ifndef BF_RELAY_H_INCLUDED
#define BF_RELAY_H_INCLUDED

#include <czmq.h>

#include "bf_actor.h"
#include "bf_config.h"

typedef struct {
    const char *conninfo;     /* libpq conninfo ("" = PG* environment) */
    const char *pub_endpoint; /* bound by the leader only, e.g. tcp://127.0.0.1:7101 */
    const char *relay_id;     /* instance name, in heartbeats and logs */
    int batch;                /* rows per sequencing transaction */
    int heartbeat_ms;
    int poll_ms; /* idle wait for new rows / standby lock retries */
    int connect_timeout_ms;
    bf_actor_status_t *status; /* a failed start is recorded here (bf_actor.h); may be NULL */
    /*  The key pair the PUB serves CURVE with (copied), after the process's
        ZAP handler started (bf_curve.h); NULL: no CURVE (in-process tests).  */
    zcert_t *cert;
} bf_relay_args_t;

/*  zactor function: zactor_new (bf_relay_actor, &args). args (and its
    strings) need only live until zactor_new returns.  */
void bf_relay_actor (zsock_t *pipe, void *args);

/*  Fills *args from settle's settings (db.conninfo, settle.pub_endpoint,
    settle.relay_batch, settle.heartbeat_ms, settle.poll_ms,
    db.connect_timeout_ms); relay_id, cert and status are the caller's.
    Strings point into config.  */
void bf_relay_args_from_config (bf_relay_args_t *args, const bf_config_t *config);

#endif
