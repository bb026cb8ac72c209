/*  bf_link — a service's link to control (design.md "control"; G6, G8).

    A DEALER connected to control's ROUTER — to each endpoint of a
    comma-separated list, with ZMQ_IMMEDIATE so that nothing queues for a
    control that is not there (a standby control binds nothing). With a
    server key it is a CURVE client (bf_curve.h) with the key pair of
    key_file. It registers ([SVC.REG]) once connected and sends [SVC.HB]
    every heartbeat interval (a heartbeat names the service and instance, so
    a restarted control knows the service again without a new
    registration). It takes [CMD][0][Command] frames and answers each with
    [CMD.REPLY][0][CommandReply].

    Control answers every heartbeat with its own [SVC.HB] (service
    "control"); any frame from control counts as life. After three
    heartbeat intervals without one the link logs it (once), drops the
    DEALER, connects a new one and registers again — every three intervals
    until control answers, which is logged too.

    Exactly once per command_id: an effectful verb runs inside a transaction
    that also inserts the command_id into applied_command (with its status
    and result); a command_id found there is answered with the stored result
    (replayed = true) and nothing runs. Two deliveries racing each other: the
    loser's insert violates the key, its effect rolls back, and it answers
    with the winner's stored result. Query verbs (read-only) are not
    recorded. An unknown verb or a command for another service is answered
    FAILED; frames that do not decode are logged, counted and dropped. A
    command that could not run for a passing reason (database unavailable,
    a transient failure) is answered FAILED with retryable set and an error
    starting "retryable: ": nothing was recorded, so it may come again. An
    outcome that can never be stored as it is (SQLSTATE class 22, 23 but
    23505, or 54: a result that is not JSON, say) is not retryable: the
    effect is rolled back, and a FAILED outcome naming the SQLSTATE is
    recorded and answered instead. Errors are stored and answered through
    bf_text_clip (bf_text.h): printable, whole characters.

    Pipe protocol: the zactor contract, plus "STATS" -> commands applied,
    replayed, failed, rejected frames, reconnects (decimal strings).

    Start-up fails (logged; the actor signals 1 and ends) when an endpoint
    does not parse, when server_key is not a Z85 key, or when server_key is
    set without a readable, private key_file.  */

#ifndef BF_LINK_H_INCLUDED
#define BF_LINK_H_INCLUDED

#include <czmq.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "bf_config.h"
#include "billflow.pb-c.h"

typedef enum {
    BF_LINK_OK = 0, /* applied; result holds a JSON document */
    BF_LINK_FAILED, /* refused or failed for good (bad arguments, wrong state): recorded */
    BF_LINK_RETRY,  /* transient (database); not recorded, so a retry executes it */
} bf_link_status_t;

/*  Applies cmd inside the open transaction on conn. Writes a JSON document
    into result (BF_LINK_OK) or a message into error.  */
typedef bf_link_status_t (*bf_link_apply_fn) (void *context, PGconn *conn,
                                              const Billflow__Command *cmd, char *result,
                                              size_t resultsize, char *error, size_t errorsize);

typedef struct {
    const char *verb; /* "run.start"; NULL ends the table */
    bool query;       /* read-only: runs every time, not recorded */
    bf_link_apply_fn apply;
} bf_link_verb_t;

typedef struct {
    const char *conninfo;
    const char *endpoint; /* control's ROUTER(s): "tcp://control-0:7100,tcp://control-1:7100" */
    const char *service;  /* "settle" */
    const char *instance;
    int heartbeat_ms;
    const bf_link_verb_t *verbs;
    void *context;          /* passed to every apply; must outlive the actor */
    const char *server_key; /* control's public key (Z85); NULL or "": no CURVE */
    const char *key_file;   /* this service's secret key file; needed with server_key */
} bf_link_args_t;

void bf_link_actor (zsock_t *pipe, void *args);

/*  Starts the actor and makes sure it runs (zactor_new cannot tell a
    failed start): NULL, after the actor logged why, when it ended.  */
zactor_t *bf_link_start (const bf_link_args_t *args);

/*  Value of argument key in cmd, or NULL.  */
const char *bf_link_arg (const Billflow__Command *cmd, const char *key);

/*  Fills *args from the settings every service shares (db.conninfo,
    control.endpoint, control.heartbeat_ms, control.server_key,
    control.client_key_file) for service's instance, with its verbs and
    their context. Strings point into config. The link is wanted when
    args->endpoint is not empty.  */
void bf_link_args_from_config (bf_link_args_t *args, const bf_config_t *config, const char *service,
                               const char *instance, const bf_link_verb_t *verbs, void *context);

#endif
