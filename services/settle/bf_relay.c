/*  bf_relay — the outbox relay actor: leadership by advisory lock, gapless
    sequencing of committed outbox rows, publish after commit, heartbeats.

    The actor is a small state machine driven by one zpoller on its pipe and
    a few deadlines (reconnect, poll, heartbeat), so the pipe stays
    responsive between database round trips:

      disconnected --connect--> standby --try lock + bind--> leader
           ^                       ^                           |
           +---- connection lost --+------ connection lost ----+

    Why publishing waits for COMMIT (G2): the sequencing transaction is the
    only place a seq is given out. Once it commits, the events exist in the
    durable outbox with their seq, so whatever happens next (crash before or
    during publishing, lost PUB messages) a subscriber learns the tail from
    the heartbeat and fetches the rest from replay (G3). A transaction that
    fails publishes nothing; its seqs were never given out, so the sequence
    stays gapless.

    Why a lost connection ends leadership at once: the session advisory lock
    dies with the session, so another relay may already lead. Two leaders
    could not break the sequence (relay_state is locked FOR UPDATE by each
    sequencing transaction) but would publish the same events twice from two
    sockets; standing down avoids that.  */

#include "bf_relay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_curve.h"
#include "bf_db.h"
#include "bf_dbfence.h"
#include "bf_fault.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_settle_metrics.h"
#include "bf_text.h"
#include "bf_uuid.h"
#include "bf_wire.h"
#include "bf_zmq.h"

/*  Advisory lock key: the ASCII bytes of "bfrelay" read as a big-endian
    bigint. Any relay of any settle process on this database competes for
    it; advisory locks are per database.  */
#define S_LOCK_KEY "27697189231550841"

/*  Deep enough for a burst of several batches; a subscriber that still
    drops messages recovers them by replay.  */
#define S_PUB_SNDHWM 100000
/*  On a clean stop, queued events get this long to leave.  */
#define S_STOP_LINGER_MS 500
/*  Rebind backoff: starts at poll_ms, doubles up to this.  */
#define S_RECONNECT_MAX_MS 5000
#define S_APP_NAME         "settle-relay"
/*  The fence of the relay's connection: a partition is noticed within this
    many heartbeat intervals; the server frees the lock after about twice.  */
#define S_FENCE_FACTOR 3
/*  While a full batch says more rows wait, the backlog is counted at most
    this often (between counts it goes down by what was published).  */
#define S_BACKLOG_COUNT_MS 1000

/*  Prepared on every new connection.  */
static const bf_db_statement_t s_statements[] = {
    //  Standby: compete, and read the tail for STATUS on the way.
    { "relay_try_lock",
      "SELECT pg_try_advisory_lock(" S_LOCK_KEY "), (SELECT last_seq FROM relay_state)", 0 },
    //  Leader that cannot bind its socket gives the lock back.
    { "relay_unlock", "SELECT pg_advisory_unlock(" S_LOCK_KEY ")", 0 },
    //  New leader: the tail, read after the lock is ours.
    { "relay_last_seq", "SELECT last_seq FROM relay_state", 0 },
    //  Sequencing transaction, in this order.
    { "relay_lock_state", "SELECT last_seq FROM relay_state FOR UPDATE", 0 },
    { "relay_take",
      "SELECT id, payload FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $1 FOR UPDATE", 1 },
    //  $1 = ids in the order taken; the n-th id gets seq $2 + n.
    { "relay_assign",
      "UPDATE outbox AS o SET seq = $2::bigint + u.ord, sequenced_at = now()"
      " FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, ord) WHERE o.id = u.id",
      2 },
    { "relay_advance", "UPDATE relay_state SET last_seq = $1, relay_id = $2, updated_at = now()",
      2 },
    //  The backlog, counted by the leader while it is behind (metrics).
    { "relay_backlog", "SELECT count(*) FROM outbox WHERE seq IS NULL", 0 },
};

typedef struct {
    zsock_t *pipe;
    zpoller_t *poller;
    char *conninfo;
    char *pub_endpoint;
    zcert_t *cert; //  the PUB serves CURVE with it; NULL: no CURVE (tests)
    char *relay_id;
    int batch;
    int heartbeat_ms;
    int poll_ms;
    int connect_timeout_ms;

    PGconn *conn; //  NULL while disconnected
    zsock_t *pub; //  non-NULL only while leader
    bool leader;
    uint64_t last_seq;     //  highest sequence known committed
    int64_t reconnect_at; //  mono ms, while disconnected
    int bind_backoff;      //  ms: next lock attempt after a failed bind
    int64_t poll_at;       //  mono ms: next lock attempt / outbox poll
    int64_t heartbeat_at;  //  mono ms, while leader
    int64_t unpublished;   //  outbox rows waiting, as last counted (leader)
    int64_t counted_at;    //  mono ms of that count
    bool terminated;
} s_relay_t;

//  --------------------------------------------------------------------------
//  Helpers

static char *
s_strdup_or (const char *text, const char *fallback)
{
    return strdup (text && *text ? text : fallback);
}

static int
s_at_least (int value, int minimum)
{
    return value < minimum ? minimum : value;
}

static bool
s_parse_u64 (const char *text, uint64_t *value)
{
    if (text == NULL || *text < '0' || *text > '9')
        return false;
    char *end;
    unsigned long long v = strtoull (text, &end, 10);
    if (*end != '\0')
        return false;
    *value = (uint64_t)v;
    return true;
}

//  True when the last failure means the session is gone (and with it the
//  advisory lock): a broken connection, a connection-class SQLSTATE or an
//  administrator's termination.
static bool
s_session_lost (s_relay_t *self)
{
    return bf_db_lost (self->conn);
}

//  --------------------------------------------------------------------------
//  Connection and leadership

static void
s_stand_down (s_relay_t *self, const char *why)
{
    if (self->pub) {
        //  Stop publishing now: whatever is still queued is recoverable
        //  by replay, and another relay may already lead.
        zsock_set_linger (self->pub, 0);
        zsock_destroy (&self->pub);
    }
    if (self->leader)
        bf_info ("relay %s: standing down as leader (%s)", self->relay_id, why);
    self->leader = false;
}

static void
s_disconnect (s_relay_t *self, const char *why)
{
    s_stand_down (self, why);
    if (self->conn) {
        bf_warn ("relay %s: database connection lost (%s); reconnecting", self->relay_id, why);
        PQfinish (self->conn);
        self->conn = NULL;
    }
    self->reconnect_at = zclock_mono ();
}

//  Called after any failed statement: drops the session when it is gone.
//  Returns true when it was.
static bool
s_check_session (s_relay_t *self)
{
    if (!s_session_lost (self))
        return false;
    s_disconnect (self, bf_db_last_message ());
    return true;
}

//  One connection attempt (bounded by timeout_ms) and statement setup.
static void
s_connect (s_relay_t *self, int timeout_ms)
{
    PGconn *conn = bf_db_connect (self->conninfo, S_APP_NAME, timeout_ms);
    if (conn
        && bf_db_prepare_all (conn, s_statements, sizeof s_statements / sizeof s_statements[0])
               != BF_DB_OK) {
        PQfinish (conn);
        conn = NULL;
    }
    int64_t now = zclock_mono ();
    if (conn == NULL) {
        //  The process's reconnect gate paces the attempts (bf_db.h); a
        //  session that connects but cannot be set up waits a poll.
        self->reconnect_at = now + bf_db_retry_wait_ms (self->poll_ms);
        return;
    }
    //  Under a partition this relay stands down before the server frees
    //  the lock for another (bf_dbfence.h).
    bf_db_fence (conn, S_FENCE_FACTOR * self->heartbeat_ms);
    self->conn = conn;
    self->poll_at = now; //  compete right away
    bf_info ("relay %s: connected to the database; standing by", self->relay_id);
}

//  Binds the PUB socket. Returns 0, or -1 (logged) when the endpoint is
//  taken or invalid.
static int
s_bind (s_relay_t *self)
{
    zsock_t *pub = zsock_new (ZMQ_PUB);
    if (pub == NULL) {
        bf_error ("relay %s: cannot create the PUB socket", self->relay_id);
        return -1;
    }
    zsock_set_sndhwm (pub, S_PUB_SNDHWM);
    zsock_set_linger (pub, 0);
    //  A subscriber gone silent is dropped with its queue (bf_zmq.h).
    bf_zmq_heartbeat (pub);
    //  Only keys the process's ZAP handler lets in may subscribe.
    if (self->cert)
        bf_curve_server (pub, self->cert);
    if (zsock_bind (pub, "%s", self->pub_endpoint) == -1) {
        bf_error ("relay %s: cannot bind %s: %s", self->relay_id, self->pub_endpoint,
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&pub);
        return -1;
    }
    self->pub = pub;
    return 0;
}

//  Standby: tries to take the lock; on success reads the tail and binds.
static void
s_compete (s_relay_t *self)
{
    PGresult *res = bf_db_query_prepared (self->conn, "relay_try_lock", 0, NULL, PGRES_TUPLES_OK,
                                          "relay lock attempt");
    if (res == NULL) {
        s_check_session (self);
        return;
    }
    bool won = PQntuples (res) == 1 && strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    uint64_t seen;
    if (PQntuples (res) == 1 && s_parse_u64 (PQgetvalue (res, 0, 1), &seen))
        self->last_seq = seen;
    PQclear (res);
    if (!won)
        return;

    //  Read the tail again now that the lock is ours: the statement above
    //  may have looked before the previous leader's last commit.
    res = bf_db_query_prepared (self->conn, "relay_last_seq", 0, NULL, PGRES_TUPLES_OK,
                                "relay tail");
    bool ok = res && PQntuples (res) == 1 && s_parse_u64 (PQgetvalue (res, 0, 0), &seen);
    PQclear (res);
    if (!ok) {
        if (!s_check_session (self)) {
            bf_error ("relay %s: cannot read relay_state; giving up the lock", self->relay_id);
            PQclear (bf_db_query_prepared (self->conn, "relay_unlock", 0, NULL, PGRES_TUPLES_OK,
                                           "relay unlock"));
        }
        return;
    }
    self->last_seq = seen;
    if (s_bind (self) != 0) {
        //  Let a relay that can bind lead; try again soon (the endpoint
        //  may be in the middle of being released), then less often.
        self->poll_at = zclock_mono () + self->bind_backoff;
        self->bind_backoff = self->bind_backoff * 2 > S_RECONNECT_MAX_MS ? S_RECONNECT_MAX_MS
                                                                         : self->bind_backoff * 2;
        PGresult *unlock = bf_db_query_prepared (self->conn, "relay_unlock", 0, NULL,
                                                 PGRES_TUPLES_OK, "relay unlock");
        if (unlock == NULL)
            s_check_session (self);
        PQclear (unlock);
        return;
    }
    self->leader = true;
    self->bind_backoff = self->poll_ms;
    int64_t now = zclock_mono ();
    self->poll_at = now;
    self->heartbeat_at = now;
    bf_info ("relay %s: leader, publishing on %s after seq %" PRIu64, self->relay_id,
             self->pub_endpoint, self->last_seq);
}

//  --------------------------------------------------------------------------
//  Sequencing and publishing

static void
s_heartbeat (s_relay_t *self)
{
    char event_id[BF_UUID_LEN + 1];
    if (bf_uuid_v4 (event_id) == NULL)
        return;
    Billflow__RelayHeartbeat hb = BILLFLOW__RELAY_HEARTBEAT__INIT;
    hb.schema_version = BF_SCHEMA_VERSION;
    hb.event_id = event_id;
    hb.last_seq = self->last_seq;
    hb.relay_id = self->relay_id;
    hb.sent_at_ms = zclock_time ();
    //  A failed send is logged by bf_wire_send; the next one follows soon.
    bf_wire_send (self->pub, BF_MSG_EVT_HB, 0, &hb.base);
}

//  Sends the committed batch in res (rows in id order = seq order, first
//  seq `first`).
static void
s_publish (s_relay_t *self, const PGresult *res, uint64_t first)
{
    int rows = PQntuples (res);
    for (int i = 0; i < rows; i++) {
        uint64_t seq = first + (uint64_t)i;
        zmsg_t *msg = bf_wire_encode_raw (BF_MSG_EVT_BILL, seq, PQgetvalue (res, i, 1),
                                          (size_t)PQgetlength (res, i, 1));
        if (msg == NULL || zmsg_send (&msg, self->pub) != 0) {
            //  Subscribers see the gap and fetch the event from replay.
            bf_warn ("relay %s: cannot publish seq %" PRIu64, self->relay_id, seq);
            zmsg_destroy (&msg);
        }
        if (i == 0)
            bf_fault ("relay.mid_publish");
    }
}

//  The backlog after a batch of rows was published: none when the batch
//  was not full (the take saw every committed row), else counted at most
//  once per S_BACKLOG_COUNT_MS and, between counts, lowered by what went
//  out. A failed count keeps the estimate (the next statement reports a
//  lost session).
static void
s_backlog (s_relay_t *self, int rows)
{
    int64_t now = zclock_mono ();
    self->unpublished = rows < self->batch         ? 0
                        : self->unpublished > rows ? self->unpublished - rows
                                                   : 0;
    if (rows < self->batch || now - self->counted_at < S_BACKLOG_COUNT_MS)
        return;
    self->counted_at = now;
    PGresult *res = bf_db_query_prepared (self->conn, "relay_backlog", 0, NULL, PGRES_TUPLES_OK,
                                          "outbox backlog");
    uint64_t count;
    if (res && PQntuples (res) == 1 && s_parse_u64 (PQgetvalue (res, 0, 0), &count))
        self->unpublished = (int64_t)count;
    PQclear (res);
}

//  One sequencing transaction and, after its commit, the publish. Returns
//  the number of events published, 0 when there was nothing to do, -1 on
//  failure (rolled back, nothing published; the session may be gone).
static int
s_sequence (s_relay_t *self)
{
    PGresult *state = NULL;
    PGresult *taken = NULL;
    PGresult *res = NULL;
    bf_text_buf_t ids = { 0 };
    uint64_t last_seq = 0;
    int rows = 0;
    int rc = -1;

    if (bf_db_begin (self->conn) != BF_DB_OK)
        goto cleanup;
    //  Serialises sequencers, should two relays ever both think they lead.
    state = bf_db_query_prepared (self->conn, "relay_lock_state", 0, NULL, PGRES_TUPLES_OK,
                                  "relay_state lock");
    if (state == NULL)
        goto cleanup;
    if (PQntuples (state) != 1 || !s_parse_u64 (PQgetvalue (state, 0, 0), &last_seq)) {
        bf_error ("relay %s: relay_state must hold exactly one row", self->relay_id);
        goto cleanup;
    }

    char limit[16];
    snprintf (limit, sizeof limit, "%d", self->batch);
    const char *take_params[] = { limit };
    //  Binary results: payload arrives as its raw bytes, id as int8.
    taken = PQexecPrepared (self->conn, "relay_take", 1, take_params, NULL, NULL, 1);
    if (bf_db_check (self->conn, taken, PGRES_TUPLES_OK, "outbox take") != BF_DB_OK)
        goto cleanup;
    rows = PQntuples (taken);
    if (rows == 0) {
        bf_db_rollback (self->conn);
        self->last_seq = last_seq;
        self->unpublished = 0;
        rc = 0;
        goto cleanup;
    }

    int added = bf_text_buf_fmt (&ids, "{");
    for (int i = 0; i < rows && added == 0; i++) {
        uint64_t id;
        if (!bf_db_get_int8 (taken, i, 0, &id) || PQgetisnull (taken, i, 1)) {
            bf_error ("relay %s: unexpected outbox row shape", self->relay_id);
            goto cleanup;
        }
        added = bf_text_buf_fmt (&ids, "%s%" PRIu64, i ? "," : "", id);
    }
    if (added != 0 || bf_text_buf_fmt (&ids, "}") != 0) {
        bf_error ("relay %s: out of memory for a batch of %d", self->relay_id, rows);
        goto cleanup;
    }

    char base[24], tail[24];
    snprintf (base, sizeof base, "%" PRIu64, last_seq);
    snprintf (tail, sizeof tail, "%" PRIu64, last_seq + (uint64_t)rows);
    const char *assign_params[] = { ids.data, base };
    res = bf_db_query_prepared (self->conn, "relay_assign", 2, assign_params, PGRES_COMMAND_OK,
                                "outbox sequence");
    if (res == NULL)
        goto cleanup;
    if (strtol (PQcmdTuples (res), NULL, 10) != rows) {
        bf_error ("relay %s: sequenced %s outbox rows, expected %d", self->relay_id,
                  PQcmdTuples (res), rows);
        goto cleanup;
    }
    PQclear (res);
    const char *advance_params[] = { tail, self->relay_id };
    res = bf_db_query_prepared (self->conn, "relay_advance", 2, advance_params, PGRES_COMMAND_OK,
                                "relay_state advance");
    if (res == NULL)
        goto cleanup;
    //  A failed COMMIT has an unknown outcome; either way nothing is
    //  published here, and the next leader's heartbeat tells the tail.
    if (bf_db_commit (self->conn) != BF_DB_OK)
        goto cleanup;

    self->last_seq = last_seq + (uint64_t)rows;
    bf_fault ("relay.after_commit");
    s_publish (self, taken, last_seq + 1);
    s_backlog (self, rows);
    bf_debug ("relay %s: published seq %" PRIu64 "..%" PRIu64, self->relay_id, last_seq + 1,
              self->last_seq);
    rc = rows;

cleanup:
    if (rc < 0)
        bf_db_rollback (self->conn);
    PQclear (state);
    PQclear (taken);
    PQclear (res);
    bf_text_buf_free (&ids);
    return rc;
}

//  --------------------------------------------------------------------------
//  Actor

static s_relay_t *
s_relay_new (zsock_t *pipe, const bf_relay_args_t *args)
{
    s_relay_t *self = calloc (1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->pipe = pipe;
    self->conninfo = s_strdup_or (args->conninfo, "");
    self->pub_endpoint = s_strdup_or (args->pub_endpoint, "tcp://127.0.0.1:7101");
    self->relay_id = s_strdup_or (args->relay_id, "relay");
    self->batch = s_at_least (args->batch, 1);
    self->heartbeat_ms = s_at_least (args->heartbeat_ms, 1);
    self->poll_ms = s_at_least (args->poll_ms, 1);
    self->connect_timeout_ms = s_at_least (args->connect_timeout_ms, 0);
    self->bind_backoff = self->poll_ms;
    self->poller = zpoller_new (pipe, NULL);
    self->cert = args->cert ? zcert_dup (args->cert) : NULL;
    if (!self->conninfo || !self->pub_endpoint || !self->relay_id || !self->poller
        || (args->cert && !self->cert)) {
        zcert_destroy (&self->cert);
        zpoller_destroy (&self->poller);
        free (self->conninfo);
        free (self->pub_endpoint);
        free (self->relay_id);
        free (self);
        return NULL;
    }
    //  Only main reacts to signals; $TERM ends the actor.
    zpoller_set_nonstop (self->poller, true);
    return self;
}

static void
s_relay_destroy (s_relay_t **self_p)
{
    s_relay_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->pub) {
        zsock_set_linger (self->pub, S_STOP_LINGER_MS);
        zsock_destroy (&self->pub);
    }
    if (self->leader)
        bf_info ("relay %s: stopping; leadership released", self->relay_id);
    //  Closing the session releases the advisory lock.
    PQfinish (self->conn);
    zpoller_destroy (&self->poller);
    zcert_destroy (&self->cert);
    free (self->conninfo);
    free (self->pub_endpoint);
    free (self->relay_id);
    free (self);
    *self_p = NULL;
}

static void
s_handle_pipe (s_relay_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (msg == NULL) {
        self->terminated = true; //  interrupted
        return;
    }
    char *command = zmsg_popstr (msg);
    if (command && streq (command, "$TERM"))
        self->terminated = true;
    else if (command && streq (command, "STATUS")) {
        char seq[24];
        snprintf (seq, sizeof seq, "%" PRIu64, self->last_seq);
        zstr_sendx (self->pipe, self->leader ? "LEADER" : "STANDBY", seq, NULL);
    } else
        bf_warn ("relay %s: unknown pipe command '%s'", self->relay_id, command ? command : "");
    zstr_free (&command);
    zmsg_destroy (&msg);
}

//  Does whatever is due now.
static void
s_tick (s_relay_t *self)
{
    int64_t now = zclock_mono ();
    if (self->conn == NULL) {
        //  One attempt per step: the pipe must stay responsive.
        if (now >= self->reconnect_at)
            s_connect (self, 0);
        return;
    }
    if (!self->leader) {
        if (now >= self->poll_at) {
            self->poll_at = now + self->poll_ms;
            s_compete (self);
        }
        return;
    }
    if (now >= self->poll_at) {
        int published = s_sequence (self);
        if (published < 0 && s_check_session (self))
            return;
        //  A full batch means more rows may wait: go again at once.
        self->poll_at = published >= self->batch ? now : zclock_mono () + self->poll_ms;
    }
    if (self->leader && zclock_mono () >= self->heartbeat_at) {
        s_heartbeat (self);
        self->heartbeat_at = zclock_mono () + self->heartbeat_ms;
    }
}

//  Milliseconds until the next deadline.
static int
s_timeout (const s_relay_t *self)
{
    int64_t due = self->conn == NULL ? self->reconnect_at : self->poll_at;
    if (self->leader && self->heartbeat_at < due)
        due = self->heartbeat_at;
    int64_t wait = due - zclock_mono ();
    return wait < 0 ? 0 : wait > INT32_MAX ? INT32_MAX : (int)wait;
}

void
bf_relay_actor (zsock_t *pipe, void *args)
{
    assert (args); //  programmer error: zactor_new (bf_relay_actor, &args)
    s_relay_t *self = s_relay_new (pipe, (const bf_relay_args_t *)args);
    if (self == NULL) {
        bf_error ("relay: out of memory at start");
        bf_actor_fail (pipe, ((const bf_relay_args_t *)args)->status,
                       "relay: out of memory at start");
        char *command;
        while ((command = zstr_recv (pipe)) && !streq (command, "$TERM"))
            zstr_free (&command);
        zstr_free (&command);
        return;
    }
    //  Settle leadership before saying ready, so that STATUS right after
    //  zactor_new tells the truth when the database is up.
    s_connect (self, self->connect_timeout_ms);
    if (self->conn)
        s_tick (self);
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        void *which = bf_health_zpoller_wait ("relay", self->poller, s_timeout (self));
        if (which == self->pipe)
            s_handle_pipe (self);
        else if (zpoller_terminated (self->poller) && zmq_errno () == ETERM)
            break; //  the ZeroMQ context is gone: nobody can talk to us
        if (!self->terminated)
            s_tick (self);
        bf_settle_metrics_relay (self->last_seq, self->leader ? self->unpublished : -1);
    }
    s_relay_destroy (&self);
}

void
bf_relay_args_from_config (bf_relay_args_t *args, const bf_config_t *config)
{
    memset (args, 0, sizeof *args);
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->pub_endpoint = bf_config_str (config, "settle.pub_endpoint");
    args->batch = (int)bf_config_int (config, "settle.relay_batch");
    args->heartbeat_ms = (int)bf_config_int (config, "settle.heartbeat_ms");
    args->poll_ms = (int)bf_config_int (config, "settle.poll_ms");
    args->connect_timeout_ms = (int)bf_config_int (config, "db.connect_timeout_ms");
}
