/*  bf_client — a client of control: one command or query at a time, with
    Lazy Pirate retries (billctl uses it; so do the tests).

    A DEALER connected to every endpoint of control.endpoint (comma-
    separated; ZMQ_IMMEDIATE, so only a control that is up and bound gets
    the request), as a CURVE client when a server key is given. A request
    is [CMD][seq][Command]; the answer is [CMD.REPLY][seq][CommandReply]
    with the same command_id (answers to other ids, left over from earlier
    attempts, are dropped). When no answer comes within timeout_ms, the
    socket is closed and opened again and the same Command (same
    command_id) is sent again, up to retries times; then the request fails
    with BF_CLIENT_NO_ANSWER. Repeating a command is safe: control executes
    a command_id once (G6).  */

#ifndef BF_CLIENT_H_INCLUDED
#define BF_CLIENT_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "billflow.pb-c.h"

typedef struct {
    const char *endpoints;  /* "tcp://a:7100,tcp://b:7100" */
    const char *server_key; /* Z85 public key of control; NULL/"": no CURVE */
    const char *key_file;   /* this client's secret key file (with server_key) */
    int timeout_ms;         /* per attempt */
    int retries;            /* extra attempts after the first */
    int wait_ms;            /* after "queued": wait this long for the outcome
                               (0: BF_CLIENT_WAIT_MS) */
    /*  Sent with every request as given (copied; NULL: not sent): the
        person a console key acts for and that person's role (bf_behalf.h).
        control checks them and refuses them from any other key.  */
    const char *on_behalf_of;
    const char *on_behalf_role;
} bf_client_args_t;

#define BF_CLIENT_WAIT_MS 60000

typedef struct bf_client_t bf_client_t;

/*  NULL with a reason in err (unreadable key file, bad server key).  */
bf_client_t *bf_client_new (const bf_client_args_t *args, char *err, size_t errsize);
void bf_client_destroy (bf_client_t **self_p);

/*  Sets the person the following requests act for and that person's role
    (copied; NULL or "": not sent), as on_behalf_of/on_behalf_role in
    bf_client_args_t: a console that serves several people sets them
    before each request. Returns 0, or -1 when out of memory (both are
    then unset).  */
int bf_client_behalf (bf_client_t *self, const char *on_behalf_of, const char *on_behalf_role);

/*  Sets timeout_ms (positive) and retries (not negative) for the
    following requests, as in bf_client_args_t: a console gives a slow
    query (bf_verb_t.slow) a long timeout and no resend, then sets its
    usual ones back.  */
void bf_client_timeout (bf_client_t *self, int timeout_ms, int retries);

typedef enum {
    BF_CLIENT_ANSWERED = 0,     /* *reply holds control's answer */
    BF_CLIENT_NO_ANSWER = -1,   /* no answer after every attempt */
    BF_CLIENT_ERROR = -2,       /* could not build or send the request */
    BF_CLIENT_INTERRUPTED = -3, /* SIGINT/SIGTERM while waiting */
} bf_client_rc_t;

/*  Sends a command: target/verb from the catalogue (bf_verbs.h), args as
    nargs key/value pairs (keys[i] = values[i]), command_id the caller's
    (must not be NULL). On BF_CLIENT_ANSWERED *reply is the unpacked answer,
    which the caller frees with billflow__command_reply__free_unpacked
    (reply, NULL). attempts (may be NULL) gets the number of sends.  */
int bf_client_request (bf_client_t *self, const char *command_id, const char *target,
                       const char *verb, size_t nargs, const char *const *keys,
                       const char *const *values, Billflow__CommandReply **reply, int *attempts,
                       char *err, size_t errsize);

/*  A CommandReply status as its name: "OK", "ACCEPTED", "FAILED",
    "REJECTED", or "UNSPECIFIED" for any other value (billctl's --json,
    the console's answers).  */
const char *bf_client_status_name (int status);

/*  True when reply is control's "busy" answer (FAILED, retryable, the
    error starting "busy:"): the key is over its rate limit or its slow
    queries are queued already; nothing was stored or run. bf_client_request
    asks again after bf_client_busy_pause_ms, up to retries times, and
    returns the busy answer when control stays busy.  */
bool bf_client_busy (const Billflow__CommandReply *reply);

/*  How long bf_client_request pauses after its busy-th (from 0) "busy"
    answer. With control's hint (retry_after_ms > 0: the wait its token
    bucket computed) that hint, at least 2 ms, plus up to a quarter more
    drawn from random (so turned-away callers spread out), capped at 8 s;
    without one (an older control) 250 ms doubling with each answer up
    to 8 s, as before the hint existed.  */
int bf_client_busy_pause_ms (uint32_t retry_after_ms, int busy, uint32_t random);

/*  True when reply is control's acknowledgement "stored; its service is
    working on it" (ACCEPTED, {"queued_for": target}) rather than an
    outcome. bf_client_request waits for the outcome after one, up to
    wait_ms, and returns the acknowledgement only when none came.  */
bool bf_client_queued (const Billflow__CommandReply *reply);

/*  A pending answer that arrives after the request returned (for example a
    final answer after ACCEPTED): waits up to timeout_ms for an answer to
    command_id. Same results as bf_client_request, without resending.  */
int bf_client_wait (bf_client_t *self, const char *command_id, int timeout_ms,
                    Billflow__CommandReply **reply, char *err, size_t errsize);

#endif
