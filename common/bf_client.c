/*  bf_client — a client of control with Lazy Pirate retries (bf_client.h).

    One attempt: wait (in short slices, so that SIGINT/SIGTERM are noticed)
    until the DEALER may send — with ZMQ_IMMEDIATE that means a connection
    to some control is up — then send without blocking, then wait for the
    matching CMD.REPLY until the attempt's deadline. The whole attempt,
    connecting included, takes at most timeout_ms. A timed-out attempt
    throws the socket away (its queue and any half-open connection with it)
    and the next attempt starts on a fresh one, with the same Command.  */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_client.h"
#include "bf_curve.h"
#include "bf_log.h"
#include "bf_text.h"
#include "bf_wire.h"
#include "bf_zmq.h"
#include "bf_text.h"

/*  Replies may carry lists of up to 500 rows: allow more than the services'
    default payload limit.  */
#define S_MAX_REPLY ((size_t)16 << 20)

/*  Longest single wait, so that an interrupt is seen promptly even when
    the signal did not interrupt zmq_poll.  */
#define S_SLICE_MS 100

struct bf_client_t {
    char *endpoints;
    char *server_key; /* NULL: no CURVE */
    zcert_t *cert;
    int timeout_ms;
    int retries;
    int wait_ms;
    zsock_t *sock;
    uint64_t seq;
    char *on_behalf_of, *on_behalf_role; /* NULL: not sent */
};

typedef enum {
    S_WAIT_READY = 0,
    S_WAIT_TIMEOUT = 1,
    S_WAIT_INTERRUPTED = 2,
    S_WAIT_ERROR = 3,
} s_wait_t;

static bool
s_interrupted (void)
{
    return zsys_interrupted != 0;
}

/*  Opens a fresh DEALER connected to every endpoint. Returns NULL with a
    reason in err.  */
static zsock_t *
s_connect (bf_client_t *self, char *err, size_t errsize)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock) {
        bf_err_set (err, errsize, "cannot create a ZeroMQ socket: %s", zmq_strerror (errno));
        return NULL;
    }
    zsock_set_linger (sock, 0);
    zsock_set_immediate (sock, 1);
    zsock_set_sndtimeo (sock, 0);
    //  A control gone silent is noticed and connected to again (bf_zmq.h).
    bf_zmq_heartbeat (sock);
    if (self->server_key
        && bf_curve_client (sock, self->cert, self->server_key, err, errsize) != 0) {
        zsock_destroy (&sock);
        return NULL;
    }
    char *list = strdup (self->endpoints);
    if (!list) {
        zsock_destroy (&sock);
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    int connected = 0;
    char *save = NULL;
    for (char *ep = strtok_r (list, ",", &save); ep; ep = strtok_r (NULL, ",", &save)) {
        while (*ep == ' ' || *ep == '\t')
            ep++;
        size_t len = strlen (ep);
        while (len > 0 && (ep[len - 1] == ' ' || ep[len - 1] == '\t'))
            ep[--len] = 0;
        if (!*ep)
            continue;
        if (zsock_connect (sock, "%s", ep) != 0) {
            bf_err_set (err, errsize, "cannot connect to '%s': %s", ep, zmq_strerror (errno));
            free (list);
            zsock_destroy (&sock);
            return NULL;
        }
        connected++;
    }
    free (list);
    if (connected == 0) {
        zsock_destroy (&sock);
        bf_err_set (err, errsize, "no control endpoint given");
        return NULL;
    }
    return sock;
}

bf_client_t *
bf_client_new (const bf_client_args_t *args, char *err, size_t errsize)
{
    if (err && errsize)
        *err = 0;
    if (!args || !args->endpoints || !*args->endpoints) {
        bf_err_set (err, errsize, "no control endpoint given (control.endpoint)");
        return NULL;
    }
    if (args->timeout_ms <= 0 || args->retries < 0) {
        bf_err_set (err, errsize, "timeout must be positive and retries not negative");
        return NULL;
    }
    bf_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    self->timeout_ms = args->timeout_ms;
    self->retries = args->retries;
    self->wait_ms = args->wait_ms > 0 ? args->wait_ms : BF_CLIENT_WAIT_MS;
    self->endpoints = strdup (args->endpoints);
    if (!self->endpoints) {
        bf_err_set (err, errsize, "out of memory");
        goto failed;
    }
    if (args->server_key && *args->server_key) {
        if (!args->key_file || !*args->key_file) {
            bf_err_set (err, errsize,
                        "a server key is set (control.server_key) but no client key file:"
                        " give --key FILE or set control.client_key_file");
            goto failed;
        }
        if (!bf_curve_key_parse (args->server_key, NULL)) {
            bf_err_set (err, errsize,
                        "the server key (control.server_key) is not a Z85 public key of 40"
                        " characters");
            goto failed;
        }
        self->server_key = strdup (args->server_key);
        if (!self->server_key) {
            bf_err_set (err, errsize, "out of memory");
            goto failed;
        }
        char why[256] = "";
        self->cert = bf_curve_load_secret (args->key_file, why, sizeof why);
        if (!self->cert) {
            bf_err_set (err, errsize, "cannot load the client key file '%s': %s", args->key_file,
                        why);
            goto failed;
        }
    }
    if ((args->on_behalf_of && !(self->on_behalf_of = strdup (args->on_behalf_of)))
        || (args->on_behalf_role && !(self->on_behalf_role = strdup (args->on_behalf_role)))) {
        bf_err_set (err, errsize, "out of memory");
        goto failed;
    }
    self->sock = s_connect (self, err, errsize);
    if (!self->sock)
        goto failed;
    return self;

failed:
    bf_client_destroy (&self);
    return NULL;
}

void
bf_client_destroy (bf_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_client_t *self = *self_p;
    zsock_destroy (&self->sock);
    zcert_destroy (&self->cert);
    free (self->server_key);
    free (self->endpoints);
    free (self->on_behalf_of);
    free (self->on_behalf_role);
    free (self);
    *self_p = NULL;
}

const char *
bf_client_status_name (int status)
{
    switch (status) {
    case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK:
        return "OK";
    case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED:
        return "ACCEPTED";
    case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED:
        return "FAILED";
    case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED:
        return "REJECTED";
    default:
        return "UNSPECIFIED";
    }
}

void
bf_client_timeout (bf_client_t *self, int timeout_ms, int retries)
{
    if (timeout_ms > 0)
        self->timeout_ms = timeout_ms;
    if (retries >= 0)
        self->retries = retries;
}

int
bf_client_behalf (bf_client_t *self, const char *on_behalf_of, const char *on_behalf_role)
{
    free (self->on_behalf_of);
    free (self->on_behalf_role);
    self->on_behalf_of = on_behalf_of && *on_behalf_of ? strdup (on_behalf_of) : NULL;
    self->on_behalf_role = on_behalf_role && *on_behalf_role ? strdup (on_behalf_role) : NULL;
    if ((on_behalf_of && *on_behalf_of && !self->on_behalf_of)
        || (on_behalf_role && *on_behalf_role && !self->on_behalf_role)) {
        free (self->on_behalf_of);
        free (self->on_behalf_role);
        self->on_behalf_of = self->on_behalf_role = NULL;
        return -1;
    }
    return 0;
}

/*  Waits until sock has events (ZMQ_POLLIN or ZMQ_POLLOUT) or the deadline
    (zclock_mono ms) passes.  */
static s_wait_t
s_poll (zsock_t *sock, short events, int64_t deadline)
{
    zmq_pollitem_t item = { zsock_resolve (sock), 0, events, 0 };
    while (true) {
        if (s_interrupted ())
            return S_WAIT_INTERRUPTED;
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return S_WAIT_TIMEOUT;
        int rc = zmq_poll (&item, 1, left < S_SLICE_MS ? (long)left : S_SLICE_MS);
        if (rc < 0) {
            if (errno == EINTR)
                continue; /* the loop head checks the flag */
            return S_WAIT_ERROR;
        }
        if (rc > 0 && (item.revents & events))
            return S_WAIT_READY;
    }
}

/*  While a queued command runs, how often the request is repeated.  */
#define S_RESEND_MS 2000

/*  First pause after a "busy" answer without a hint (an older control);
    it doubles with each one (to 32x, S_BUSY_PAUSE_MAX_MS).  */
#define S_BUSY_PAUSE_MS     250
#define S_BUSY_PAUSE_MAX_MS (S_BUSY_PAUSE_MS << 5)

/*  The least pause after a hinted "busy" answer.  */
#define S_BUSY_PAUSE_MIN_MS 2

/*  An ACCEPTED answer saying the command is queued for (or running in) a
    live service: {"queued_for": "settle"}.  */
static bool
s_queued (const Billflow__CommandReply *reply)
{
    return reply && reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED
           && reply->result && strstr (reply->result, "\"queued_for\"");
}

/*  Receives until an answer to command_id arrives or the deadline passes.
    Other messages (stale answers, garbage) are dropped.  */
static int
s_await (bf_client_t *self, const char *command_id, int64_t deadline,
         Billflow__CommandReply **reply, char *err, size_t errsize)
{
    while (true) {
        s_wait_t w = s_poll (self->sock, ZMQ_POLLIN, deadline);
        if (w == S_WAIT_TIMEOUT)
            return BF_CLIENT_NO_ANSWER;
        if (w == S_WAIT_INTERRUPTED) {
            bf_err_set (err, errsize, "interrupted");
            return BF_CLIENT_INTERRUPTED;
        }
        if (w == S_WAIT_ERROR) {
            bf_err_set (err, errsize, "cannot receive: %s", zmq_strerror (errno));
            return BF_CLIENT_ERROR;
        }
        /*  Drain what is queued without blocking.  */
        while (zsock_events (self->sock) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (self->sock);
            if (!msg)
                break;
            bf_wire_msg_t in = BF_WIRE_MSG_INIT;
            char why[256];
            int rc = bf_wire_recv (&msg, S_MAX_REPLY, &in, why, sizeof why);
            if (rc != BF_WIRE_OK) {
                bf_debug ("bf_client: dropping an undecodable message from control (%s): %s",
                          bf_wire_rc_name (rc), why);
                continue;
            }
            Billflow__CommandReply *answer = bf_wire_command_reply (&in);
            if (!answer) {
                bf_debug ("bf_client: dropping a %s message from control",
                          bf_msg_type_name (in.type));
                bf_wire_msg_reset (&in);
                continue;
            }
            if (strcmp (answer->command_id, command_id) != 0) {
                bf_debug ("bf_client: dropping a stale answer to command %s",
                          BF_TEXT_SHOW (answer->command_id, 64));
                bf_wire_msg_reset (&in);
                continue;
            }
            /*  Take the body over: bf_wire unpacks with the default
                allocator, so the caller's free_unpacked (reply, NULL) fits.  */
            *reply = answer;
            in.body = NULL;
            bf_wire_msg_reset (&in);
            return BF_CLIENT_ANSWERED;
        }
    }
}

/*  A request on its way: what bf_client_request was given and what its
    attempts have seen so far.  */
typedef struct {
    const char *command_id;
    zmsg_t *request;                /* [CMD][seq][Command], sent again as it is */
    Billflow__CommandReply **reply; /* the caller's */
    int *attempts;                  /* the caller's; may be NULL */
    /*  After an acknowledgement ("queued": stored, its service is working
        on it) the outcome follows on the same socket. While waiting for it
        the request is repeated every S_RESEND_MS (control may have
        restarted and forgotten who waits; a repeat is answered from the
        store), until wait_until; then the caller gets the acknowledgement.  */
    Billflow__CommandReply *ack;
    int64_t wait_until;
    int sent, misses, busy;
    char *err;
    size_t errsize;
} s_request_t;

/*  The request message of a command: NULL with a reason in err.  */
static zmsg_t *
s_encode (bf_client_t *self, const char *command_id, const char *target, const char *verb,
          size_t nargs, const char *const *keys, const char *const *values, char *err,
          size_t errsize)
{
    Billflow__Argument *argv = nargs ? calloc (nargs, sizeof *argv) : NULL;
    Billflow__Argument **argp = nargs ? calloc (nargs, sizeof *argp) : NULL;
    if (nargs && (!argv || !argp)) {
        free (argv);
        free (argp);
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nargs; i++) {
        billflow__argument__init (&argv[i]);
        argv[i].key = (char *)keys[i];
        argv[i].value = (char *)values[i];
        argp[i] = &argv[i];
    }
    Billflow__Command cmd;
    billflow__command__init (&cmd);
    cmd.schema_version = BF_SCHEMA_VERSION;
    cmd.command_id = (char *)command_id;
    cmd.target = (char *)target;
    cmd.verb = (char *)verb;
    cmd.n_args = nargs;
    cmd.args = argp;
    cmd.issued_at_ms = zclock_time ();
    cmd.on_behalf_of = self->on_behalf_of ? self->on_behalf_of : (char *)"";
    cmd.on_behalf_role = self->on_behalf_role ? self->on_behalf_role : (char *)"";
    uint64_t seq = ++self->seq;
    zmsg_t *request = bf_wire_encode (BF_MSG_CMD, seq, &cmd.base);
    free (argp);
    free (argv);
    if (!request)
        bf_err_set (err, errsize, "cannot encode the request (see the log)");
    return request;
}

/*  One attempt: from the second on, on a fresh socket (Lazy Pirate); waits
    until the request can go, sends it, and waits for the answer until the
    attempt's deadline.  */
static int
s_attempt (bf_client_t *self, s_request_t *req, int attempt)
{
    if (attempt > 1) {
        zsock_destroy (&self->sock);
        self->sock = s_connect (self, req->err, req->errsize);
        if (!self->sock)
            return BF_CLIENT_ERROR;
        bf_debug ("bf_client: no answer to %s; attempt %d", req->command_id, attempt);
    }
    if (req->attempts)
        *req->attempts = attempt;
    int patience = req->ack && self->timeout_ms < S_RESEND_MS ? S_RESEND_MS : self->timeout_ms;
    int64_t deadline = zclock_mono () + patience;
    if (req->ack && deadline > req->wait_until)
        deadline = req->wait_until;
    s_wait_t w = s_poll (self->sock, ZMQ_POLLOUT, deadline);
    if (w == S_WAIT_INTERRUPTED) {
        bf_err_set (req->err, req->errsize, "interrupted");
        return BF_CLIENT_INTERRUPTED;
    }
    if (w == S_WAIT_ERROR) {
        bf_err_set (req->err, req->errsize, "cannot send: %s", zmq_strerror (errno));
        return BF_CLIENT_ERROR;
    }
    if (w != S_WAIT_READY)
        return BF_CLIENT_NO_ANSWER;
    zmsg_t *copy = zmsg_dup (req->request);
    if (!copy || zmsg_send (&copy, self->sock) != 0) {
        /*  The connection went away between poll and send: count the
            attempt and wait out its time like a lost answer.  */
        bf_debug ("bf_client: sending attempt %d failed: %s", attempt, zmq_strerror (errno));
        zmsg_destroy (&copy);
    } else
        req->sent++;
    return s_await (self, req->command_id, deadline, req->reply, req->err, req->errsize);
}

/*  While the answer (rc) is an acknowledgement, keeps it as req->ack and
    waits for the outcome, at most until wait_until. Returns the last
    s_await's result.  */
static int
s_follow_ack (bf_client_t *self, s_request_t *req, int rc)
{
    while (rc == BF_CLIENT_ANSWERED && s_queued (*req->reply)) {
        if (req->ack)
            billflow__command_reply__free_unpacked (req->ack, NULL);
        req->ack = *req->reply;
        *req->reply = NULL;
        if (!req->wait_until)
            req->wait_until = zclock_mono () + self->wait_ms;
        req->misses = 0;
        int64_t deadline
            = zclock_mono () + (self->timeout_ms < S_RESEND_MS ? S_RESEND_MS : self->timeout_ms);
        if (deadline > req->wait_until)
            deadline = req->wait_until;
        rc = s_await (self, req->command_id, deadline, req->reply, req->err, req->errsize);
    }
    return rc;
}

/*  control is over this key's rate, or its reporter is full: nothing was
    stored or run. Drops the busy answer and pauses (growing with each one)
    before the request is asked again, with the same command_id, so a
    repeat is safe anyway. BF_CLIENT_INTERRUPTED when a signal ends the
    pause.  */
static int
s_pause_busy (s_request_t *req)
{
    int pause = bf_client_busy_pause_ms ((*req->reply)->retry_after_ms, req->busy,
                                         (uint32_t)zclock_usecs ());
    req->busy++;
    bf_debug ("bf_client: control is busy (%s); asking again in %d ms", (*req->reply)->error,
              pause);
    billflow__command_reply__free_unpacked (*req->reply, NULL);
    *req->reply = NULL;
    int64_t until = zclock_mono () + pause;
    for (int64_t now = zclock_mono (); !zsys_interrupted && now < until; now = zclock_mono ())
        zclock_sleep (until - now < 20 ? (int)(until - now) : 20);
    if (zsys_interrupted) {
        bf_err_set (req->err, req->errsize, "interrupted");
        return BF_CLIENT_INTERRUPTED;
    }
    return BF_CLIENT_NO_ANSWER;
}

/*  Attempts until an outcome, an error or an interruption, or until the
    retries are spent; then hands over the acknowledgement if one came.  */
static int
s_exchange (bf_client_t *self, s_request_t *req)
{
    int rc = BF_CLIENT_NO_ANSWER;
    for (int attempt = 1;; attempt++) {
        rc = s_follow_ack (self, req, s_attempt (self, req, attempt));
        if (rc == BF_CLIENT_ANSWERED && bf_client_busy (*req->reply) && req->busy < self->retries) {
            rc = s_pause_busy (req);
            if (rc == BF_CLIENT_INTERRUPTED)
                break;
            continue;
        }
        if (rc != BF_CLIENT_NO_ANSWER)
            break; /* an outcome, an error or an interruption */
        if (req->ack) {
            if (zclock_mono () >= req->wait_until) {
                *req->reply = req->ack;
                req->ack = NULL;
                rc = BF_CLIENT_ANSWERED;
                break;
            }
            continue; /* control went quiet while it works: ask again */
        }
        if (++req->misses > self->retries)
            break;
    }
    return rc;
}

int
bf_client_request (bf_client_t *self, const char *command_id, const char *target, const char *verb,
                   size_t nargs, const char *const *keys, const char *const *values,
                   Billflow__CommandReply **reply, int *attempts, char *err, size_t errsize)
{
    assert (self);
    assert (reply);
    *reply = NULL;
    if (attempts)
        *attempts = 0;
    if (err && errsize)
        *err = 0;
    if (!command_id || !*command_id || !target || !verb || (nargs > 0 && (!keys || !values))) {
        bf_err_set (err, errsize, "a request needs a command id, a target and a verb");
        return BF_CLIENT_ERROR;
    }
    s_request_t req = { .command_id = command_id,
                        .reply = reply,
                        .attempts = attempts,
                        .err = err,
                        .errsize = errsize };
    req.request = s_encode (self, command_id, target, verb, nargs, keys, values, err, errsize);
    if (!req.request)
        return BF_CLIENT_ERROR;
    int64_t started = zclock_mono ();
    int rc = s_exchange (self, &req);
    if (req.ack)
        billflow__command_reply__free_unpacked (req.ack, NULL);
    zmsg_destroy (&req.request);
    if (rc == BF_CLIENT_NO_ANSWER) {
        double seconds = (double)(zclock_mono () - started) / 1000.0;
        int tries = self->retries + 1;
        if (req.sent == 0)
            bf_err_set (err, errsize,
                        "no connection to control at %s could be made in %d attempt%s"
                        " (%.1f s)",
                        self->endpoints, tries, tries == 1 ? "" : "s", seconds);
        else
            bf_err_set (err, errsize, "no answer from control at %s after %d attempt%s (%.1f s)",
                        self->endpoints, tries, tries == 1 ? "" : "s", seconds);
    }
    return rc;
}

int
bf_client_busy_pause_ms (uint32_t retry_after_ms, int busy, uint32_t random)
{
    if (!retry_after_ms)
        return S_BUSY_PAUSE_MS << (busy < 5 ? (busy > 0 ? busy : 0) : 5);
    uint32_t pause = retry_after_ms < S_BUSY_PAUSE_MIN_MS ? S_BUSY_PAUSE_MIN_MS : retry_after_ms;
    if (pause > S_BUSY_PAUSE_MAX_MS)
        pause = S_BUSY_PAUSE_MAX_MS;
    /*  Up to a quarter more (at least 1 ms), so the callers one busy
        answer turned away do not all come back in the same millisecond.  */
    pause += random % (pause / 4 + 2);
    return pause > S_BUSY_PAUSE_MAX_MS ? S_BUSY_PAUSE_MAX_MS : (int)pause;
}

bool
bf_client_busy (const Billflow__CommandReply *reply)
{
    return reply && reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED
           && reply->retryable && reply->error && !strncmp (reply->error, "busy:", 5);
}

bool
bf_client_queued (const Billflow__CommandReply *reply)
{
    return s_queued (reply);
}

int
bf_client_wait (bf_client_t *self, const char *command_id, int timeout_ms,
                Billflow__CommandReply **reply, char *err, size_t errsize)
{
    assert (self);
    assert (reply);
    *reply = NULL;
    if (err && errsize)
        *err = 0;
    if (!command_id || !*command_id) {
        bf_err_set (err, errsize, "no command id to wait for");
        return BF_CLIENT_ERROR;
    }
    int rc = s_await (self, command_id, zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0), reply,
                      err, errsize);
    if (rc == BF_CLIENT_NO_ANSWER)
        bf_err_set (err, errsize, "no answer to %s from control within %d ms", command_id,
                    timeout_ms);
    return rc;
}
