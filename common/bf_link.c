/*  bf_link — register, heartbeat, and apply control's commands once each.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_db.h"
#include "bf_link.h"
#include "bf_log.h"
#include "bf_uuid.h"
#include "bf_wire.h"

typedef struct {
    zsock_t *pipe;
    zsock_t *dealer;
    PGconn *conn;
    bf_link_args_t args;
    char conninfo[1024], endpoint[256], service[32], instance[128];
    bf_wire_stats_t wire;
    long applied, replayed, failed;
} s_link_t;

const char *
bf_link_arg (const Billflow__Command *cmd, const char *key)
{
    for (size_t i = 0; i < cmd->n_args; i++)
        if (cmd->args[i] && cmd->args[i]->key && !strcmp (cmd->args[i]->key, key))
            return cmd->args[i]->value;
    return NULL;
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
    bf_wire_send (self->dealer, BF_MSG_SVC_REG, 0, &reg.base);
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
    bf_wire_send (self->dealer, BF_MSG_SVC_HB, 0, &hb.base);
}

static void
s_reply (s_link_t *self, const char *command_id, Billflow__CommandReply__Status status,
         const char *result, const char *error, bool replayed)
{
    Billflow__CommandReply reply = BILLFLOW__COMMAND_REPLY__INIT;
    reply.schema_version = BF_SCHEMA_VERSION;
    reply.command_id = (char *)command_id;
    reply.status = status;
    reply.result = (char *)(result ? result : "");
    reply.error = (char *)(error ? error : "");
    reply.replayed = replayed;
    if (bf_wire_send (self->dealer, BF_MSG_CMD_REPLY, 0, &reply.base) != 0)
        bf_error ("link: could not send the reply to command %s", command_id);
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
             PQgetvalue (res, 0, 1), PQgetvalue (res, 0, 2), true);
    PQclear (res);
    self->replayed++;
    bf_info ("link: command %s was applied before; answered with its stored result", command_id);
    return true;
}

static void
s_apply (s_link_t *self, const Billflow__Command *cmd)
{
    const char *id = cmd->command_id;
    const bf_link_verb_t *verb = NULL;
    for (const bf_link_verb_t *v = self->args.verbs; v && v->verb; v++)
        if (cmd->verb && !strcmp (v->verb, cmd->verb))
            verb = v;
    if (cmd->target && *cmd->target && strcmp (cmd->target, self->service) != 0) {
        bf_warn ("link: command %s is for '%s', not %s", id, cmd->target, self->service);
        s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL,
                 "command sent to the wrong service", false);
        self->failed++;
        return;
    }
    if (!verb) {
        char error[160];
        snprintf (error, sizeof error, "unknown verb '%.40s' for %s", cmd->verb ? cmd->verb : "",
                  self->service);
        bf_warn ("link: command %s: %s", id, error);
        s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL, error, false);
        self->failed++;
        return;
    }
    if (!s_connected (self)) {
        s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL,
                 "retryable: database unavailable", false);
        self->failed++;
        return;
    }
    char result[4096] = "", error[512] = "";
    for (int attempt = 0; attempt < 2; attempt++) {
        if (bf_db_begin (self->conn) != BF_DB_OK)
            break;
        if (!verb->query && s_replay_stored (self, id)) {
            bf_db_rollback (self->conn);
            return;
        }
        bf_link_status_t status = verb->apply (self->args.context, self->conn, cmd, result,
                                               sizeof result, error, sizeof error);
        if (status == BF_LINK_RETRY) {
            bf_db_rollback (self->conn);
            break;
        }
        bool recorded = verb->query;
        if (!verb->query) {
            const char *params[] = { id, self->service, status == BF_LINK_OK ? "DONE" : "FAILED",
                                     status == BF_LINK_OK && *result ? result : NULL,
                                     status == BF_LINK_OK ? NULL : error };
            PGresult *res = bf_db_query (self->conn,
                                         "INSERT INTO applied_command (command_id, service,"
                                         " status, result, error) VALUES ($1, $2, $3, $4, $5)"
                                         " RETURNING coalesce (result::text, '')",
                                         5, params, PGRES_TUPLES_OK, "recording the command");
            recorded = res != NULL;
            /*  Answer with the stored form, so a repeated command_id gets
                byte-identical replies.  */
            if (res)
                snprintf (result, sizeof result, "%s", PQgetvalue (res, 0, 0));
            PQclear (res);
        }
        if (recorded && bf_db_commit (self->conn) == BF_DB_OK) {
            if (status == BF_LINK_OK)
                self->applied++;
            else
                self->failed++;
            bf_info ("link: command %s %s: %s", id, cmd->verb,
                     status == BF_LINK_OK ? "done" : error);
            s_reply (self, id,
                     status == BF_LINK_OK ? BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK
                                          : BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
                     result, error, false);
            return;
        }
        /*  The insert lost a race with another delivery of the same id (or
            the commit failed): the effect is rolled back; answer with what
            the winner stored, or try once more.  */
        bf_db_rollback (self->conn);
        if (bf_db_begin (self->conn) == BF_DB_OK && s_replay_stored (self, id)) {
            bf_db_rollback (self->conn);
            return;
        }
        bf_db_rollback (self->conn);
    }
    snprintf (error, sizeof error, "retryable: %s",
              *bf_db_last_message () ? bf_db_last_message () : "database failure");
    s_reply (self, id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL, error, false);
    self->failed++;
}

static void
s_on_dealer (s_link_t *self)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return;
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    char err[256];
    int rc = bf_wire_recv (&msg, BF_WIRE_MAX_PAYLOAD, &in, err, sizeof err);
    bf_wire_stats_count (&self->wire, rc);
    if (rc != BF_WIRE_OK) {
        bf_warn ("link: dropped a frame from control: %s", err);
        return;
    }
    const Billflow__Command *cmd = bf_wire_command (&in);
    if (cmd)
        s_apply (self, cmd);
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
        char v[4][24];
        snprintf (v[0], sizeof v[0], "%ld", self->applied);
        snprintf (v[1], sizeof v[1], "%ld", self->replayed);
        snprintf (v[2], sizeof v[2], "%ld", self->failed);
        snprintf (v[3], sizeof v[3], "%llu", (unsigned long long)self->wire.rejected);
        zstr_sendx (self->pipe, v[0], v[1], v[2], v[3], NULL);
    }
    free (command);
    return go_on;
}

void
bf_link_actor (zsock_t *pipe, void *args)
{
    s_link_t self = { .pipe = pipe, .args = *(const bf_link_args_t *)args };
    snprintf (self.conninfo, sizeof self.conninfo, "%s",
              self.args.conninfo ? self.args.conninfo : "");
    snprintf (self.endpoint, sizeof self.endpoint, "%s", self.args.endpoint);
    snprintf (self.service, sizeof self.service, "%s", self.args.service);
    snprintf (self.instance, sizeof self.instance, "%s", self.args.instance);
    self.dealer = zsock_new (ZMQ_DEALER);
    if (!self.dealer || zsock_connect (self.dealer, "%s", self.endpoint) != 0) {
        bf_error ("link: cannot connect to control at %s", self.endpoint);
        zsock_destroy (&self.dealer);
        zsock_signal (pipe, 1);
        return;
    }
    /*  Replies must not be dropped while control is away for a moment.  */
    zsock_set_linger (self.dealer, 2000);
    zsock_signal (pipe, 0);
    s_send_register (&self);
    int64_t next_beat = zclock_mono () + self.args.heartbeat_ms;
    zpoller_t *poller = zpoller_new (pipe, self.dealer, NULL);
    zpoller_set_nonstop (poller, true);
    bool running = true;
    while (running) {
        int64_t wait = next_beat - zclock_mono ();
        void *which = zpoller_wait (poller, wait > 0 ? (int)wait : 0);
        if (which == pipe)
            running = s_on_pipe (&self);
        else if (which == self.dealer)
            s_on_dealer (&self);
        if (zclock_mono () >= next_beat) {
            s_send_heartbeat (&self);
            next_beat = zclock_mono () + self.args.heartbeat_ms;
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self.dealer);
    PQfinish (self.conn);
}
