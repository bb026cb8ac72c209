/*  bf_link — register, heartbeat, and apply control's commands once each.  */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_curve.h"
#include "bf_db.h"
#include "bf_health.h"
#include "bf_link.h"
#include "bf_log.h"
#include "bf_text.h"
#include "bf_uuid.h"
#include "bf_wire.h"
#include "bf_zmq.h"

/*  Heartbeat intervals without a frame from control before the link
    reconnects; how long a reply may wait for a connection to control.  */
#define S_SILENT_BEATS  3
#define S_REPLY_WAIT_MS 1000

typedef struct {
    zsock_t *pipe;
    zsock_t *dealer; /* NULL between a failed reconnect and the next */
    PGconn *conn;
    zcert_t *cert; /* our key pair when control speaks CURVE */
    bf_link_args_t args;
    char conninfo[1024], endpoints[1024], service[32], instance[128];
    char server_key[BF_CURVE_KEY_TXT];
    bool need_register; /* SVC.REG goes out once a connection is up */
    int64_t heard_at;   /* zclock_mono of the last frame from control */
    int64_t silent_since;
    bool silent; /* logged that control went quiet */
    bf_wire_stats_t wire;
    long applied, replayed, failed, reconnects;
} s_link_t;

const char *
bf_link_arg (const Billflow__Command *cmd, const char *key)
{
    for (size_t i = 0; i < cmd->n_args; i++)
        if (cmd->args[i] && cmd->args[i]->key && !strcmp (cmd->args[i]->key, key))
            return cmd->args[i]->value;
    return NULL;
}

/*  Encodes and sends msg, waiting at most wait_ms for a connection to
    control (none is a normal state: control away, or a standby). Returns 0,
    or -1 with zmq_errno () set (EAGAIN: no connection).  */
static int
s_send (s_link_t *self, bf_msg_type_t type, const ProtobufCMessage *msg, int wait_ms)
{
    if (!self->dealer) {
        errno = EAGAIN;
        return -1;
    }
    zmsg_t *wire = bf_wire_encode (type, 0, msg);
    if (!wire) {
        errno = EINVAL;
        return -1;
    }
    zsock_set_sndtimeo (self->dealer, wait_ms);
    int rc = zmsg_send (&wire, self->dealer);
    int error = zmq_errno ();
    zmsg_destroy (&wire);
    zsock_set_sndtimeo (self->dealer, 0);
    errno = error;
    return rc == 0 ? 0 : -1;
}

static void
s_send_register (s_link_t *self)
{
    Billflow__ServiceRegister reg = BILLFLOW__SERVICE_REGISTER__INIT;
    char event_id[37];
    reg.schema_version = BF_SCHEMA_VERSION;
    reg.event_id = bf_uuid_v4 (event_id);
    reg.service = self->service;
    reg.instance_id = self->instance;
    reg.version = "0.1.0";
    reg.pid = (uint32_t)getpid ();
    size_t n = 0;
    char *verbs[64];
    for (const bf_link_verb_t *v = self->args.verbs; v && v->verb && n < 64; v++)
        verbs[n++] = (char *)v->verb;
    reg.n_verbs = n;
    reg.verbs = verbs;
    if (s_send (self, BF_MSG_SVC_REG, &reg.base, 0) == 0) {
        self->need_register = false;
        bf_debug ("link: registered %s %s with control", self->service, self->instance);
    } else if (zmq_errno () != EAGAIN)
        bf_warn ("link: could not send SVC.REG: %s", zmq_strerror (zmq_errno ()));
}

static void
s_send_heartbeat (s_link_t *self)
{
    Billflow__ServiceHeartbeat hb = BILLFLOW__SERVICE_HEARTBEAT__INIT;
    char event_id[37], state[128];
    snprintf (state, sizeof state, "{\"applied\":%ld,\"replayed\":%ld,\"failed\":%ld}",
              self->applied, self->replayed, self->failed);
    hb.schema_version = BF_SCHEMA_VERSION;
    hb.event_id = bf_uuid_v4 (event_id);
    hb.service = self->service;
    hb.instance_id = self->instance;
    hb.sent_at_ms = zclock_time ();
    hb.state_json = state;
    if (s_send (self, BF_MSG_SVC_HB, &hb.base, 0) != 0)
        bf_debug ("link: heartbeat not sent: %s", zmq_strerror (zmq_errno ()));
}

static void
s_reply (s_link_t *self, const char *command_id, Billflow__CommandReply__Status status,
         const char *result, const char *error, bool replayed, bool retryable)
{
    Billflow__CommandReply reply;
    bf_wire_reply_init (&reply, command_id, status, result, error, replayed, retryable);
    if (s_send (self, BF_MSG_CMD_REPLY, &reply.base, S_REPLY_WAIT_MS) != 0)
        bf_warn ("link: could not send the reply to command %s (%s); control will ask again",
                 command_id, zmq_strerror (zmq_errno ()));
}

static bool
s_connected (s_link_t *self)
{
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK)
        return true;
    PQfinish (self->conn);
    /*  One attempt: a command during an outage is answered "retryable" at
        once, and $TERM is never kept waiting.  */
    self->conn = bf_db_connect (self->conninfo, "billflow-link", 0);
    return self->conn != NULL;
}

/*  Answers from applied_command when the command ran before. Returns true
    when it did (and replied).  */
static bool
s_replay_stored (s_link_t *self, const char *command_id)
{
    const char *params[] = { command_id };
    PGresult *res = bf_db_query (self->conn,
                                 "SELECT status, coalesce (result::text, ''), coalesce (error, '')"
                                 " FROM applied_command WHERE command_id = $1",
                                 1, params, PGRES_TUPLES_OK, "reading applied_command");
    if (!res || PQntuples (res) == 0) {
        PQclear (res);
        return false;
    }
    bool ok = !strcmp (PQgetvalue (res, 0, 0), "DONE");
    s_reply (self, command_id,
             ok ? BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK
                : BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
             PQgetvalue (res, 0, 1), PQgetvalue (res, 0, 2), true, false);
    PQclear (res);
    self->replayed++;
    bf_info ("link: command %s was applied before; answered with its stored result", command_id);
    return true;
}

/*  True for the SQLSTATEs that say "this row can never be stored as it
    is": class 22 (data exception: invalid UTF-8 22021, bad JSON 22P02,
    too long 22001), 23 (integrity) except 23505 (another delivery of the
    same id won the race: answered from what it stored), and 54 (program
    limit exceeded). Everything else (connection loss, serialization,
    deadlock, shutdown, ...) may pass and is answered "retryable".  */
static bool
s_unstorable (const char *sqlstate)
{
    if (!sqlstate || strlen (sqlstate) != 5)
        return false;
    if (!strcmp (sqlstate, "23505"))
        return false;
    return !strncmp (sqlstate, "22", 2) || !strncmp (sqlstate, "23", 2)
           || !strncmp (sqlstate, "54", 2);
}

/*  After a failed write: rolls it back and, when another delivery of
    command_id stored its outcome meanwhile, answers with that and returns
    true.  */
static bool
s_replay_after_failure (s_link_t *self, const char *command_id)
{
    bf_db_rollback (self->conn);
    bool replayed = bf_db_begin (self->conn) == BF_DB_OK && s_replay_stored (self, command_id);
    bf_db_rollback (self->conn);
    return replayed;
}

/*  The command's outcome could not be stored for good (its effect was
    rolled back): records and answers a FAILED outcome that says so, with
    the SQLSTATE and the verb's own error made printable, so the command
    is answered instead of being delivered again forever. Returns false
    when even that cannot be stored (the caller answers "retryable").  */
static bool
s_store_failure (s_link_t *self, const Billflow__Command *cmd, const char *sqlstate,
                 const char *verb_error)
{
    const char *id = cmd->command_id;
    char shown[200], error[512];
    snprintf (error, sizeof error,
              "the outcome could not be stored (SQLSTATE %s); nothing was"
              " applied%s%s",
              sqlstate, *verb_error ? ": " : "",
              bf_text_clip (shown, sizeof shown, verb_error, 160));
    if (bf_db_begin (self->conn) != BF_DB_OK)
        return false;
    const char *params[] = { id, self->service, error };
    PGresult *res = bf_db_query (self->conn,
                                 "INSERT INTO applied_command (command_id, service, status, error)"
                                 " VALUES ($1, $2, 'FAILED', $3)",
                                 3, params, PGRES_COMMAND_OK, "recording a failed command");
    bool ok = res != NULL && bf_db_commit (self->conn) == BF_DB_OK;
    PQclear (res);
    if (!ok) /* another delivery stored it meanwhile: answer with that */
        return s_replay_after_failure (self, id);
    self->failed++;
    bf_warn ("link: command %s %s: %s", id, cmd->verb, error);
    s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL, error, false, false);
    return true;
}

/*  The verb of cmd, once cmd is known to be for this service and the
    database is there; else NULL after answering FAILED (counted).  */
static const bf_link_verb_t *
s_verb_of (s_link_t *self, const Billflow__Command *cmd)
{
    const char *id = cmd->command_id;
    const bf_link_verb_t *verb = NULL;
    for (const bf_link_verb_t *v = self->args.verbs; v && v->verb; v++)
        if (cmd->verb && !strcmp (v->verb, cmd->verb))
            verb = v;
    if (cmd->target && *cmd->target && strcmp (cmd->target, self->service) != 0) {
        char shown[BF_TEXT_CLIP_SHORT];
        bf_warn ("link: command %s is for '%s', not %s", id,
                 bf_text_clip (shown, sizeof shown, cmd->target, 40), self->service);
        s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL,
                 "command sent to the wrong service", false, false);
        self->failed++;
        return NULL;
    }
    if (!verb) {
        char error[160];
        char shown[BF_TEXT_CLIP_SHORT];
        snprintf (error, sizeof error, "unknown verb '%s' for %s",
                  bf_text_clip (shown, sizeof shown, cmd->verb, 40), self->service);
        bf_warn ("link: command %s: %s", id, error);
        s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL, error, false,
                 false);
        self->failed++;
        return NULL;
    }
    if (!s_connected (self)) {
        s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL,
                 "retryable: database unavailable", false, true);
        self->failed++;
        return NULL;
    }
    return verb;
}

/*  Inserts the outcome into applied_command, in the open transaction,
    and replaces result with its stored form, so a repeated command_id
    gets byte-identical replies. Returns true when the row was written.  */
static bool
s_record (s_link_t *self, const char *id, bf_link_status_t status, char *result, size_t resultsize,
          const char *error)
{
    const char *params[]
        = { id, self->service, status == BF_LINK_OK ? "DONE" : "FAILED",
            status == BF_LINK_OK && *result ? result : NULL, status == BF_LINK_OK ? NULL : error };
    PGresult *res = bf_db_query (self->conn,
                                 "INSERT INTO applied_command (command_id, service,"
                                 " status, result, error) VALUES ($1, $2, $3, $4, $5)"
                                 " RETURNING coalesce (result::text, '')",
                                 5, params, PGRES_TUPLES_OK, "recording the command");
    if (res)
        snprintf (result, resultsize, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    return res != NULL;
}

/*  Counts, logs and answers an outcome that is committed.  */
static void
s_answer_applied (s_link_t *self, const Billflow__Command *cmd, bf_link_status_t status,
                  const char *result, const char *error)
{
    if (status == BF_LINK_OK)
        self->applied++;
    else
        self->failed++;
    bf_info ("link: command %s %s: %s", cmd->command_id, cmd->verb,
             status == BF_LINK_OK ? "done" : error);
    s_reply (self, cmd->command_id,
             status == BF_LINK_OK ? BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK
                                  : BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
             result, error, false, false);
}

typedef enum {
    S_ANSWERED, /* the command is answered */
    S_STOP,     /* the database failed: no more attempts */
    S_AGAIN,    /* the outcome was not stored: rolled back, may be tried again */
} s_attempt_t;

/*  One attempt at cmd: in one transaction, the verb's effect and its
    applied_command row (none for a query), then the answer. result (4096
    bytes) and error are the verb's buffers, kept across attempts. When
    the row could not be stored, *permanent says whether it never can be
    (its SQLSTATE in sqlstate, 6 bytes) and error holds the verb's error.  */
static s_attempt_t
s_attempt (s_link_t *self, const Billflow__Command *cmd, const bf_link_verb_t *verb, char *result,
           char *error, size_t errorsize, bool *permanent, char *sqlstate)
{
    const char *id = cmd->command_id;
    const size_t resultsize = 4096;
    if (bf_db_begin (self->conn) != BF_DB_OK)
        return S_STOP;
    if (!verb->query && s_replay_stored (self, id)) {
        bf_db_rollback (self->conn);
        return S_ANSWERED;
    }
    bf_link_status_t status
        = verb->apply (self->args.context, self->conn, cmd, result, resultsize, error, errorsize);
    if (status == BF_LINK_RETRY) {
        bf_db_rollback (self->conn);
        return S_STOP;
    }
    /*  The error text goes into a row and a reply: whatever the verb
        wrote (outside text cut anywhere), it is stored printable and
        whole characters only.  */
    char clean[512];
    snprintf (error, errorsize, "%s", bf_text_clip (clean, sizeof clean, error, sizeof clean - 1));
    bool recorded = verb->query || s_record (self, id, status, result, resultsize, error);
    if (recorded && bf_db_commit (self->conn) == BF_DB_OK) {
        s_answer_applied (self, cmd, status, result, error);
        return S_ANSWERED;
    }
    /*  A permanent failure (the outcome is not storable: SQLSTATE
        class 22 data exception, 23 integrity, ...) would fail the
        same way on every delivery and hold the command open forever:
        the effect is rolled back and a FAILED outcome is stored
        instead (s_apply).  */
    *permanent = s_unstorable (bf_db_last_sqlstate ()) && PQstatus (self->conn) == CONNECTION_OK;
    snprintf (sqlstate, 6, "%s", bf_db_last_sqlstate ());
    /*  The insert lost a race with another delivery of the same id (or
        the commit failed): the effect is rolled back; answer with what
        the winner stored, or try once more.  */
    return s_replay_after_failure (self, id) ? S_ANSWERED : S_AGAIN;
}

/*  Applies cmd once per command_id (bf_link.h): at most two attempts;
    an outcome that can never be stored is stored as FAILED instead; any
    other failure is answered "retryable".  */
static void
s_apply (s_link_t *self, const Billflow__Command *cmd)
{
    const bf_link_verb_t *verb = s_verb_of (self, cmd);
    if (!verb)
        return;
    char result[4096] = "", error[512] = "";
    bool permanent = false; /* the outcome could not be stored, for good */
    char sqlstate[6] = "";
    s_attempt_t attempt = S_AGAIN;
    for (int i = 0; i < 2 && !permanent && attempt == S_AGAIN; i++)
        attempt = s_attempt (self, cmd, verb, result, error, sizeof error, &permanent, sqlstate);
    if (attempt == S_ANSWERED)
        return;
    if (permanent && s_store_failure (self, cmd, sqlstate, error))
        return;
    char why[256];
    snprintf (error, sizeof error, "retryable: %s",
              bf_text_clip (why, sizeof why,
                            *bf_db_last_message () ? bf_db_last_message () : "database failure",
                            200));
    s_reply (self, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL, error,
             false, true);
    self->failed++;
}

static void
s_on_dealer (s_link_t *self)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return;
    //  Anything at all from control is a sign of life.
    self->heard_at = zclock_mono ();
    if (self->silent) {
        self->silent = false;
        bf_info ("link: control is back (silent for %.1f s)",
                 (double)(self->heard_at - self->silent_since) / 1000.0);
    }
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    char err[256];
    int rc = bf_wire_recv (&msg, BF_WIRE_MAX_PAYLOAD, &in, err, sizeof err);
    bf_wire_stats_count (&self->wire, rc);
    if (rc != BF_WIRE_OK) {
        bf_warn ("link: dropped a frame from control: %s", err);
        return;
    }
    const Billflow__Command *cmd = bf_wire_command (&in);
    if (cmd) {
        /*  The service's lines about the command name it, as control's do
            (docs/observability.md, "Logs").  */
        bf_log_ctx_set ("command_id", "%s", BF_TEXT_SHOW (cmd->command_id, 128));
        bf_log_ctx_set ("verb", "%s", BF_TEXT_SHOW (cmd->verb, 64));
        s_apply (self, cmd);
        bf_log_ctx_clear ();
    } else if (in.type == BF_MSG_SVC_HB)
        bf_debug ("link: heartbeat from control");
    else
        bf_warn ("link: unexpected %s frame from control", bf_msg_type_name (in.type));
    bf_wire_msg_reset (&in);
}

static bool
s_on_pipe (s_link_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command)
        return false;
    bool go_on = !streq (command, "$TERM");
    if (streq (command, "STATS")) {
        char v[5][24];
        snprintf (v[0], sizeof v[0], "%ld", self->applied);
        snprintf (v[1], sizeof v[1], "%ld", self->replayed);
        snprintf (v[2], sizeof v[2], "%ld", self->failed);
        snprintf (v[3], sizeof v[3], "%llu", (unsigned long long)self->wire.rejected);
        snprintf (v[4], sizeof v[4], "%ld", self->reconnects);
        zstr_sendx (self->pipe, v[0], v[1], v[2], v[3], v[4], NULL);
    }
    free (command);
    return go_on;
}

/*  A new DEALER connected to every endpoint. Returns 0, or -1 with the
    reason in err.  */
static int
s_dealer_open (s_link_t *self, char *err, size_t errsize)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return bf_err_set (err, errsize, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
    //  Only completed connections take messages: nothing queues for a
    //  control that is not there, and a send never blocks the actor.
    zsock_set_immediate (dealer, 1);
    zsock_set_sndtimeo (dealer, 0);
    //  Replies must not be dropped while the link stops.
    zsock_set_linger (dealer, 2000);
    //  A control gone silent is noticed and connected to again (bf_zmq.h).
    bf_zmq_heartbeat (dealer);
    if (self->cert && bf_curve_client (dealer, self->cert, self->server_key, err, errsize) != 0) {
        zsock_destroy (&dealer);
        return -1;
    }
    char list[sizeof self->endpoints], *save = NULL;
    snprintf (list, sizeof list, "%s", self->endpoints);
    int connected = 0;
    for (char *endpoint = strtok_r (list, ",", &save); endpoint;
         endpoint = strtok_r (NULL, ",", &save)) {
        while (*endpoint == ' ' || *endpoint == '\t')
            endpoint++;
        size_t len = strlen (endpoint);
        while (len > 0 && (endpoint[len - 1] == ' ' || endpoint[len - 1] == '\t'))
            endpoint[--len] = 0;
        if (!*endpoint)
            continue;
        if (zsock_connect (dealer, "%s", endpoint) != 0) {
            bf_err_set (err, errsize, "cannot connect to control at '%s': %s", endpoint,
                        zmq_strerror (zmq_errno ()));
            zsock_destroy (&dealer);
            return -1;
        }
        connected++;
    }
    if (connected == 0) {
        zsock_destroy (&dealer);
        return bf_err_set (err, errsize, "no control endpoint in '%s'", self->endpoints);
    }
    self->dealer = dealer;
    return 0;
}

/*  Control has said nothing for S_SILENT_BEATS intervals: a new DEALER
    (so every endpoint is connected afresh, and a control that forgot us
    sees a new peer) and a new registration.  */
static void
s_reconnect (s_link_t *self)
{
    int64_t now = zclock_mono ();
    if (!self->silent) {
        self->silent = true;
        self->silent_since = self->heard_at;
        bf_warn ("link: nothing from control for %lld ms; reconnecting to %s",
                 (long long)(now - self->heard_at), self->endpoints);
    } else
        bf_debug ("link: control still silent; reconnecting");
    if (self->dealer) {
        //  What is queued for a control that stopped answering is stale.
        zsock_set_linger (self->dealer, 0);
        zsock_destroy (&self->dealer);
    }
    char err[256];
    if (s_dealer_open (self, err, sizeof err) != 0)
        bf_error ("link: %s", err);
    self->reconnects++;
    self->need_register = true;
    self->heard_at = now;
}

/*  Checks the arguments and loads the key pair. Returns 0, or -1 with the
    reason in err.  */
static int
s_setup (s_link_t *self, char *err, size_t errsize)
{
    const bf_link_args_t *args = &self->args;
    if (!args->endpoint || !*args->endpoint)
        return bf_err_set (err, errsize, "no control endpoint");
    if (strlen (args->endpoint) >= sizeof self->endpoints)
        return bf_err_set (err, errsize, "control endpoint list is too long");
    if (args->heartbeat_ms <= 0)
        return bf_err_set (err, errsize, "heartbeat interval must be positive");
    snprintf (self->conninfo, sizeof self->conninfo, "%s", args->conninfo ? args->conninfo : "");
    snprintf (self->endpoints, sizeof self->endpoints, "%s", args->endpoint);
    snprintf (self->service, sizeof self->service, "%s", args->service ? args->service : "");
    snprintf (self->instance, sizeof self->instance, "%s", args->instance ? args->instance : "");
    const char *server_key = args->server_key ? args->server_key : "";
    const char *key_file = args->key_file ? args->key_file : "";
    if (*server_key) {
        if (!bf_curve_key_parse (server_key, NULL))
            return bf_err_set (err, errsize,
                               "control's public key (control.server_key) is not 40 Z85"
                               " characters");
        if (!*key_file)
            return bf_err_set (err, errsize,
                               "control.server_key is set but control.client_key_file is not:"
                               " CURVE needs this service's own key pair");
        char why[512];
        self->cert = bf_curve_load_secret (key_file, why, sizeof why);
        if (!self->cert)
            return bf_err_set (err, errsize, "control.client_key_file: %s", why);
        snprintf (self->server_key, sizeof self->server_key, "%s", server_key);
    } else if (*key_file)
        bf_warn ("link: control.client_key_file is set but control.server_key is empty:"
                 " connecting to control without CURVE");
    return s_dealer_open (self, err, errsize);
}

void
bf_link_actor (zsock_t *pipe, void *args)
{
    s_link_t self = { .pipe = pipe, .args = *(const bf_link_args_t *)args };
    char err[768];
    if (s_setup (&self, err, sizeof err) != 0) {
        bf_error ("link: cannot start: %s", err);
        zcert_destroy (&self.cert);
        zsock_signal (pipe, 1);
        return;
    }
    bf_info ("link: %s %s connecting to control at %s%s", self.service, self.instance,
             self.endpoints, self.cert ? " (CURVE)" : "");
    zsock_signal (pipe, 0);
    const int beat = self.args.heartbeat_ms;
    self.need_register = true;
    self.heard_at = zclock_mono ();
    int64_t next_beat = zclock_mono () + beat;
    bool running = true;
    while (running) {
        int64_t now = zclock_mono ();
        int64_t due = next_beat < self.heard_at + S_SILENT_BEATS * beat
                          ? next_beat
                          : self.heard_at + S_SILENT_BEATS * beat;
        zmq_pollitem_t items[2] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { self.dealer ? zsock_resolve (self.dealer) : NULL, 0,
              (short)(ZMQ_POLLIN | (self.need_register ? ZMQ_POLLOUT : 0)), 0 },
        };
        //  Not zpoller: the registration waits for POLLOUT, which says that
        //  a connection (and its CURVE handshake) is complete.
        bf_health_idle ("link");
        int rc = zmq_poll (items, self.dealer ? 2 : 1, due > now ? (long)(due - now) : 0);
        bf_health_beat ("link");
        if (rc < 0 && zmq_errno () == ETERM)
            break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
            running = s_on_pipe (&self);
        if (!running)
            break;
        if (rc > 0 && self.dealer && (items[1].revents & ZMQ_POLLIN))
            s_on_dealer (&self);
        if (self.dealer && self.need_register && (zsock_events (self.dealer) & ZMQ_POLLOUT))
            s_send_register (&self);
        now = zclock_mono ();
        if (now >= next_beat) {
            if (!self.need_register)
                s_send_heartbeat (&self);
            next_beat = now + beat;
        }
        //  A frame waiting to be read (after a long command, say) is life.
        if (now - self.heard_at >= S_SILENT_BEATS * beat
            && !(self.dealer && (zsock_events (self.dealer) & ZMQ_POLLIN)))
            s_reconnect (&self);
    }
    zsock_destroy (&self.dealer);
    zcert_destroy (&self.cert);
    PQfinish (self.conn);
}

zactor_t *
bf_link_start (const bf_link_args_t *args)
{
    zactor_t *actor = zactor_new (bf_link_actor, (void *)args);
    if (!actor)
        return NULL;
    zsock_set_rcvtimeo (zactor_sock (actor), 10000);
    zstr_send (actor, "STATS");
    zmsg_t *msg = zmsg_recv (actor);
    bool alive = msg && zmsg_signal (msg) < 0;
    zmsg_destroy (&msg);
    zsock_set_rcvtimeo (zactor_sock (actor), -1);
    /*  An actor that ended is left alone: its thread is gone and the
        process is about to exit.  */
    return alive ? actor : NULL;
}

void
bf_link_args_from_config (bf_link_args_t *args, const bf_config_t *config, const char *service,
                          const char *instance, const bf_link_verb_t *verbs, void *context)
{
    memset (args, 0, sizeof *args);
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->endpoint = bf_config_str (config, "control.endpoint");
    args->service = service;
    args->instance = instance;
    args->heartbeat_ms = (int)bf_config_int (config, "control.heartbeat_ms");
    args->verbs = verbs;
    args->context = context;
    args->server_key = bf_config_str (config, "control.server_key");
    args->key_file = bf_config_str (config, "control.client_key_file");
}
