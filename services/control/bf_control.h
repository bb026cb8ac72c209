/*  bf_control — the operations server (design.md "control"; G6, G8).

    One actor per control process. Several processes may run: exactly one
    is active, elected by a session-level advisory lock on its PostgreSQL
    connection (released by the server when the process or its connection
    dies); the others are standbys that try to take the lock every
    election_ms. Only the active control binds its ROUTER, so clients and
    services that list every control endpoint (ZMQ_IMMEDIATE) reach it, and
    reach the new one after a failover. An active control that loses its
    database connection steps down at once and competes again.

    The ROUTER is a CURVE server; the ZAP handler (bf_curve.h) admits only
    the keys of the allowed list and tags each frame with the key's name
    and role. Operators ("operator") send commands and queries, viewers
    queries, services ("service") register, heartbeat and answer. A console
    key ("console") acts on behalf of a person with that person's role,
    audited as "console/NAME", or as a viewer when it names nobody;
    on_behalf_ fields from any other key are refused (bf_behalf.h).

    A command (bf_verbs.h, not a query) from a client:
      1. is validated (id, verb, target, role) — else REJECTED, audited;
      2. is stored: INSERT into `command` keyed by command_id, audited, in
         one transaction, before anything else. A command_id already there
         is not stored again: the client gets the stored outcome
         (replayed), or waits with the others for the one in flight;
      3. is forwarded to a live instance of its target, oldest first, one
         at a time per target; the service applies it and records the id in
         the same transaction as its effect (bf_link), so a command forwarded
         twice (control restarted, reply lost, timeout) runs once;
      4. its answer is stored (state DONE/FAILED, result), audited, and sent
         to every client waiting for that command_id.
    A command for a service that is down is answered ACCEPTED and waits,
    stored, until an instance of the service registers or heartbeats.
    A retryable failure (the service's database was unavailable) or no
    answer in time leaves the command open; it is forwarded again after a
    pause of 1 s times its attempts, while later commands for the same
    service go first, and after command_attempts forwards it ends FAILED
    with the last reason. Only the instance a command was forwarded to may
    answer it; a service key registers only as the service (and instance
    glob) its allowed-list entry is bound to.

    Limits (docs/control.md "Limits"): a token bucket per key name
    (client_rate, client_burst) answers a flood "busy:" (FAILED, retryable)
    before any database work; run.report hand-offs to the reporter are
    bounded per key and in all and never block; replies never block.
    Rejected commands leave one audit row each, their client-supplied text
    made printable and capped (bf_text_clip), the cap noted in detail.

    A query is answered from PostgreSQL (bf_query.h) every time, never
    stored. Malformed frames are counted (control.status) and dropped.

    Pipe protocol (besides the zactor contract): "STATUS" -> "active" or
    "standby".  */

#ifndef BF_CONTROL_H_INCLUDED
#define BF_CONTROL_H_INCLUDED

#include <czmq.h>

#include "bf_config.h"
#include "bf_pii.h"

typedef struct {
    const char *conninfo;
    const char *bind;         /* where to listen while active */
    const char *key_file;     /* control's secret key file */
    const char *allowed_keys; /* the allowed-keys list */
    const char *instance;     /* this process's name */
    int heartbeat_ms;         /* the services' heartbeat interval */
    int command_timeout_ms;   /* forwarded without answer: forward again */
    int election_ms;
    const bf_pii_t *pii; /* for masked contacts in queries; may be NULL */
    /*  Hardening (docs/control.md "Limits"); 0 takes the default.  */
    int client_rate;          /* frames per second and key (token bucket rate) */
    int client_burst;         /* ... and its depth */
    int console_rate;         /* the same for a key with the console role */
    int console_burst;        /* ... (it speaks for every operator at once) */
    int command_attempts;     /* forwards of one command before it is FAILED */
    int max_request_bytes;    /* largest command or query a client may send */
    int metrics_ms;           /* cluster-wide metrics refresh (bf_control_metrics.h); 0: 5000 */
    int rates_retention_days; /* rate samples of runs ended longer ago are deleted; 0: kept */
} bf_control_args_t;

/*  zactor body. Signals 0 when started (active or standby), -1 when the
    key file or the allowed list cannot be used.  */
void bf_control_actor (zsock_t *pipe, void *args);

/*  Fills *args from control's settings (docs/configuration.md): the
    database, control.bind, its key file and allowed list, heartbeat,
    command timeout, election interval and the limits. instance and pii
    (may be NULL) are the caller's. Strings point into config.  */
void bf_control_args_from_config (bf_control_args_t *args, const bf_config_t *config,
                                  const char *instance, const bf_pii_t *pii);

#endif
