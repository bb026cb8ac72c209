/*  bf_replay — the replay actor: answers RPL.FETCH from the durable outbox.

    Requests are checked completely before the database is touched: a
    malformed request (bad frames, wrong type, from_seq 0, count 0) is
    answered BAD_REQUEST at once, from what is in memory, and costs no
    query. A valid request joins its peer's queue (at most S_PEER_JOBS; more
    are answered UNAVAILABLE "busy"), and peers with work are served round
    robin, one slice of at most max_batch rows per peer per round: a peer
    that asks for much, or asks often, cannot hold up the others.

    Serving a request: read the tail (relay_state.last_seq: every seq up to
    it is committed, so the range below it has no holes), check the range,
    then read the rows in slices of at most max_batch and answer each slice
    as one or more RPL.BATCH replies, split where a reply would pass the
    1 MiB payload limit. Every reply of a request carries the same
    last_published_seq, so the requester knows where the answer ends: at
    min(from_seq + count, last_published_seq + 1), or at the first reply
    whose status is not OK.

    Replies are never sent blocking. ROUTER_MANDATORY makes a send to a
    peer that is gone fail at once (its queued work is dropped); a peer
    whose pipe is full (it does not read) keeps its built replies and gets
    no new slice until they went out; when it takes none for S_STALL_MS, its
    work is dropped too. So a peer that stops reading, or leaves, costs the
    others nothing.

    Warnings about rejected requests are limited to S_WARN_BURST per
    S_WARN_WINDOW_MS; the rest are counted and summed up in one line.

    Stored payloads are checked as strictly as bf_wire checks what arrives
    from the network: a row that fails is a server-side data error, answered
    UNAVAILABLE (after the valid events before it) and logged, never sent on
    to the requester as something it would reject.  */

#include "bf_replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_curve.h"
#include "bf_db.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_settle_metrics.h"
#include "bf_wire.h"
#include "bf_text.h"
#include "bf_zmq.h"

#define S_APP_NAME "settle-replay"
/*  A reply must not be lost to a close.  */
#define S_LINGER_MS 1000
/*  A ReplayFetch is a few dozen bytes; anything this big is garbage.  */
#define S_MAX_REQUEST ((size_t)64 * 1024)
/*  Inbound messages past this are dropped by libzmq (peer disconnected).  */
#define S_MAX_MSGSIZE (4 * 1024 * 1024)
/*  Messages libzmq queues per peer, each way: a reply is at most 1 MiB.  */
#define S_SNDHWM 16
#define S_RCVHWM 100
/*  Reply payload limit: what every receiver accepts.  */
#define S_MAX_REPLY        BF_WIRE_MAX_PAYLOAD
#define S_SETUP_RETRY_MS   100 /* a session that connects but fails its setup */
#define S_REBIND_MAX_MS    10000
/*  Fairness and bounds (docs/settle.md "Replay").  */
#define S_PEER_JOBS      8    /* valid requests one peer may have waiting */
#define S_MAX_PEERS      256  /* peers with work at once */
#define S_READ_BURST     32   /* requests read before the next round of work */
#define S_STALL_MS       5000 /* a peer that takes no reply this long loses its work */
#define S_RETRY_MS       10   /* retry sending to a peer whose pipe was full */
#define S_WARN_BURST     5
#define S_WARN_WINDOW_MS 10000

static const bf_db_statement_t s_statements[] = {
    { "replay_tail", "SELECT last_seq FROM relay_state", 0 },
    { "replay_range", "SELECT seq, payload FROM outbox WHERE seq >= $1 AND seq < $2 ORDER BY seq",
      2 },
};

/*  One valid request waiting or being answered.  */
typedef struct {
    char *request_id;
    uint64_t from;
    uint32_t count;
    bool started; //  the tail was read: next, end, tail, base are set
    uint64_t next, end;
    uint64_t tail; //  last_published_seq in every reply
    size_t base;   //  packed size of an OK reply without events
} s_job_t;

/*  A reply built but not yet taken by the peer's pipe.  */
typedef struct {
    zmsg_t *msg; //  without the routing id
    size_t events;
} s_out_t;

/*  A peer with work.  */
typedef struct {
    char *key; //  the routing id in hex: the peers table's key
    zframe_t *identity;
    zlist_t *jobs;         //  s_job_t *, oldest first, at most S_PEER_JOBS
    zlist_t *outbox;       //  s_out_t *, oldest first
    int64_t stalled_since; //  mono ms of the first refused send; 0: not stalled
    int64_t retry_at;
    bool gone; //  a send failed for good: drop the peer's work
} s_peer_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    zpoller_t *poller;
    char *conninfo;
    char *endpoint;
    int max_batch;

    PGconn *conn;         //  NULL while disconnected: reconnected in the background
    int64_t reconnect_at; //  mono ms: no attempt before this
    bool bound;
    int64_t rebind_at;
    int rebind_backoff;
    bool terminated;
    uint64_t tail; //  the tail last read: for replies that need no query

    zhash_t *peers; //  key -> s_peer_t *
    zlist_t *ring;  //  the same peers, in round-robin order

    //  The events of the reply being built, reused for every reply.
    Billflow__ReplayEvent *events;
    Billflow__ReplayEvent **event_ptrs;
    size_t n_events;
    size_t packed; //  bytes the pending events add to the reply

    //  Rejection warnings: at most S_WARN_BURST per window, the rest summed up.
    bf_log_limit_t warn_limit;

    uint64_t served;   //  requests answered OK to their end
    uint64_t rejected; //  requests answered BAD_REQUEST or UNAVAILABLE, or dropped
    uint64_t events_sent;
    bf_wire_stats_t wire;
} s_replay_t;

//  --------------------------------------------------------------------------
//  Helpers

static size_t
s_varint_size (size_t value)
{
    size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

//  --------------------------------------------------------------------------
//  Database

static void
s_disconnect (s_replay_t *self)
{
    if (self->conn) {
        bf_warn ("replay: database connection lost (%s); reconnecting", bf_db_last_message ());
        PQfinish (self->conn);
        self->conn = NULL;
    }
}

//  After a failed statement: drops the connection when it is broken.
static void
s_check_connection (s_replay_t *self)
{
    if (bf_db_lost (self->conn))
        s_disconnect (self);
}

//  Makes sure there is a connection; attempts are paced by the process's
//  reconnect gate (bf_db.h) so a stream of requests against a dead database
//  stays cheap. Returns 0 or -1.
static int
s_connection (s_replay_t *self, int timeout_ms)
{
    if (self->conn)
        return 0;
    if (zclock_mono () < self->reconnect_at)
        return -1;
    PGconn *conn = bf_db_connect (self->conninfo, S_APP_NAME, timeout_ms);
    if (conn
        && bf_db_prepare_all (conn, s_statements, sizeof s_statements / sizeof s_statements[0])
               != BF_DB_OK) {
        PQfinish (conn);
        conn = NULL;
    }
    if (conn == NULL) {
        //  A session that connects but cannot be set up waits the floor.
        self->reconnect_at = zclock_mono () + bf_db_retry_wait_ms (S_SETUP_RETRY_MS);
        return -1;
    }
    self->conn = conn;
    bf_info ("replay: connected to the database");
    return 0;
}

//  relay_state.last_seq into *tail (and self->tail). Returns 0, or -1 with
//  the reason in why.
static int
s_read_tail (s_replay_t *self, uint64_t *tail, char *why, size_t whysize)
{
    if (s_connection (self, 0) != 0) {
        snprintf (why, whysize, "database unavailable: %s", bf_db_last_message ());
        return -1;
    }
    PGresult *res
        = bf_db_query_prepared (self->conn, "replay_tail", 0, NULL, PGRES_TUPLES_OK, "replay tail");
    int rc = -1;
    if (res == NULL) {
        snprintf (why, whysize, "database unavailable: %s", bf_db_last_message ());
        s_check_connection (self);
    } else if (PQntuples (res) != 1) {
        snprintf (why, whysize, "relay_state holds %d rows, expected 1", PQntuples (res));
        bf_error ("replay: %s", why);
    } else {
        *tail = strtoull (PQgetvalue (res, 0, 0), NULL, 10);
        self->tail = *tail;
        rc = 0;
    }
    PQclear (res);
    return rc;
}

//  --------------------------------------------------------------------------
//  Sending

/*  Sends msg (without the routing id) to identity without blocking.
    Returns 0 (sent; msg is consumed), 1 (the peer's pipe is full; msg is
    kept) or -1 (the peer is gone, or another error; msg is kept).  */
static int
s_send_to (s_replay_t *self, zframe_t *identity, zmsg_t **msg_p)
{
    //  The routing id alone first: ROUTER_MANDATORY refuses it with EAGAIN
    //  (pipe full) or EHOSTUNREACH (no such peer) before anything is queued,
    //  so a refused message can be sent again later.
    void *handle = zsock_resolve (self->router);
    if (zmq_send (handle, zframe_data (identity), zframe_size (identity),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT)
        == -1)
        return zmq_errno () == EAGAIN ? 1 : -1;
    //  Accepted: the other frames go into the same pipe (libzmq checks the
    //  high-water mark per message, at its first frame).
    if (zmsg_send (msg_p, self->router) != 0)
        return -1;
    return 0;
}

/*  An answer that needs no query (BAD_REQUEST, busy): sent at once without
    blocking, dropped when the peer's pipe is full or the peer is gone.  */
static void
s_answer_now (s_replay_t *self, zframe_t *identity, const char *request_id,
              Billflow__ReplayBatch__Status status, const char *error)
{
    self->rejected++;
    Billflow__ReplayBatch batch;
    billflow__replay_batch__init (&batch);
    batch.schema_version = BF_SCHEMA_VERSION;
    batch.request_id = (char *)request_id;
    batch.status = status;
    batch.error = (char *)error;
    batch.last_published_seq = self->tail;
    zmsg_t *msg = bf_wire_encode (BF_MSG_RPL_BATCH, 0, &batch.base);
    if (msg && s_send_to (self, identity, &msg) != 0)
        bf_debug ("replay: an error reply to request '%s' was dropped (peer gone or not"
                  " reading)",
                  BF_TEXT_SHOW (request_id, 64));
    zmsg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Peers

static void
s_job_destroy (s_job_t **job_p)
{
    if (*job_p) {
        free ((*job_p)->request_id);
        free (*job_p);
        *job_p = NULL;
    }
}

static void
s_out_destroy (s_out_t **out_p)
{
    if (*out_p) {
        zmsg_destroy (&(*out_p)->msg);
        free (*out_p);
        *out_p = NULL;
    }
}

static void
s_peer_destroy (s_peer_t **peer_p)
{
    s_peer_t *peer = *peer_p;
    if (!peer)
        return;
    s_job_t *job;
    while (peer->jobs && (job = zlist_pop (peer->jobs)))
        s_job_destroy (&job);
    s_out_t *out;
    while (peer->outbox && (out = zlist_pop (peer->outbox)))
        s_out_destroy (&out);
    zlist_destroy (&peer->jobs);
    zlist_destroy (&peer->outbox);
    zframe_destroy (&peer->identity);
    free (peer->key);
    free (peer);
    *peer_p = NULL;
}

//  The key of a routing id: its bytes in hex, into a fresh string.
static char *
s_peer_key (zframe_t *identity)
{
    size_t size = zframe_size (identity);
    char *key = malloc (size * 2 + 1);
    if (!key)
        return NULL;
    const uint8_t *data = zframe_data (identity);
    for (size_t i = 0; i < size; i++)
        snprintf (key + 2 * i, 3, "%02x", data[i]);
    key[size * 2] = 0;
    return key;
}

//  The peer of identity, made when absent. NULL when S_MAX_PEERS have work
//  (or out of memory).
static s_peer_t *
s_peer_get (s_replay_t *self, zframe_t *identity)
{
    char *key = s_peer_key (identity);
    if (!key)
        return NULL;
    s_peer_t *peer = zhash_lookup (self->peers, key);
    if (peer || zhash_size (self->peers) >= S_MAX_PEERS) {
        free (key);
        return peer;
    }
    peer = calloc (1, sizeof *peer);
    if (peer) {
        peer->key = key;
        peer->identity = zframe_dup (identity);
        peer->jobs = zlist_new ();
        peer->outbox = zlist_new ();
    } else
        free (key);
    if (!peer || !peer->identity || !peer->jobs || !peer->outbox
        || zhash_insert (self->peers, peer->key, peer) != 0) {
        s_peer_destroy (&peer);
        return NULL;
    }
    if (zlist_append (self->ring, peer) != 0) {
        zhash_delete (self->peers, peer->key);
        s_peer_destroy (&peer);
        return NULL;
    }
    return peer;
}

//  Forgets a peer and whatever work it had (counted as rejected).
static void
s_peer_drop (s_replay_t *self, s_peer_t *peer)
{
    self->rejected += zlist_size (peer->jobs);
    zlist_remove (self->ring, peer);
    zhash_delete (self->peers, peer->key);
    s_peer_destroy (&peer);
}

//  --------------------------------------------------------------------------
//  Replies

static void
s_pending_clear (s_replay_t *self)
{
    for (size_t i = 0; i < self->n_events; i++) {
        if (self->events[i].event)
            protobuf_c_message_free_unpacked (&self->events[i].event->base, NULL);
        self->events[i].event = NULL;
    }
    self->n_events = 0;
    self->packed = 0;
}

static void
s_batch_init (Billflow__ReplayBatch *batch, const s_job_t *job,
              Billflow__ReplayBatch__Status status, const char *error)
{
    billflow__replay_batch__init (batch);
    batch->schema_version = BF_SCHEMA_VERSION;
    batch->request_id = job->request_id;
    batch->status = status;
    batch->error = (char *)(error ? error : "");
    batch->last_published_seq = job->tail;
}

/*  Builds one reply, the pending events (status OK) or an error without
    events, and queues it in the peer's outbox. Clears the pending events
    either way. Returns 0 or -1 (not encodable: a bug, logged by bf_wire).  */
static int
s_emit (s_replay_t *self, s_peer_t *peer, const s_job_t *job, Billflow__ReplayBatch__Status status,
        const char *error)
{
    Billflow__ReplayBatch batch;
    s_batch_init (&batch, job, status, error);
    uint64_t seq = 0;
    if (status == BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK && self->n_events > 0) {
        batch.n_events = self->n_events;
        batch.events = self->event_ptrs;
        seq = self->events[self->n_events - 1].seq;
    }
    size_t events = batch.n_events;
    zmsg_t *msg = bf_wire_encode (BF_MSG_RPL_BATCH, seq, &batch.base);
    s_pending_clear (self);
    s_out_t *out = msg ? calloc (1, sizeof *out) : NULL;
    if (out) {
        out->msg = msg;
        out->events = events;
    }
    if (!out || zlist_append (peer->outbox, out) != 0) {
        zmsg_destroy (&msg);
        free (out);
        return -1;
    }
    return 0;
}

/*  Sends what the peer's outbox holds, oldest first, without blocking.  */
static void
s_flush (s_replay_t *self, s_peer_t *peer)
{
    s_out_t *out;
    while ((out = zlist_first (peer->outbox))) {
        int rc = s_send_to (self, peer->identity, &out->msg);
        int64_t now = zclock_mono ();
        if (rc == 1) {
            if (!peer->stalled_since)
                peer->stalled_since = now;
            peer->retry_at = now + S_RETRY_MS;
            return;
        }
        zlist_pop (peer->outbox);
        if (rc != 0) {
            s_out_destroy (&out);
            peer->gone = true;
            return;
        }
        self->events_sent += out->events;
        bf_settle_metrics_replay_events (out->events);
        s_out_destroy (&out);
        peer->stalled_since = 0;
    }
}

/*  Adds the stored event (seq, payload) to the pending reply, queueing the
    pending reply first when the event would not fit. Returns 0, or -1 with
    the reason in why (bad stored payload).  */
static int
s_add_event (s_replay_t *self, s_peer_t *peer, const s_job_t *job, uint64_t seq,
             const uint8_t *payload, size_t len, char *why, size_t whysize)
{
    char err[256];
    Billflow__BillSettled *bill = billflow__bill_settled__unpack (NULL, len, payload);
    int rc
        = bill ? bf_wire_validate (BF_MSG_EVT_BILL, &bill->base, err, sizeof err) : BF_WIRE_EPROTO;
    if (rc != BF_WIRE_OK) {
        if (bill == NULL)
            snprintf (err, sizeof err, "%zu bytes are not a valid BillSettled", len);
        snprintf (why, whysize, "outbox seq %" PRIu64 " has a bad payload: %s", seq, err);
        if (bill)
            protobuf_c_message_free_unpacked (&bill->base, NULL);
        return -1;
    }

    Billflow__ReplayEvent probe = BILLFLOW__REPLAY_EVENT__INIT;
    probe.seq = seq;
    probe.event = bill;
    size_t inner = protobuf_c_message_get_packed_size (&probe.base);
    size_t adds = 1 + s_varint_size (inner) + inner; //  field 5 tag, length, body

    size_t base = job->base;
    if (base + adds > S_MAX_REPLY) {
        snprintf (why, whysize, "outbox seq %" PRIu64 " does not fit a reply (%zu bytes)", seq,
                  adds);
        protobuf_c_message_free_unpacked (&bill->base, NULL);
        return -1;
    }
    if (self->n_events == (size_t)self->max_batch || base + self->packed + adds > S_MAX_REPLY) {
        if (s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL) != 0) {
            snprintf (why, whysize, "cannot encode a reply");
            protobuf_c_message_free_unpacked (&bill->base, NULL);
            return -1;
        }
    }
    Billflow__ReplayEvent *event = &self->events[self->n_events++];
    billflow__replay_event__init (event);
    event->seq = seq;
    event->event = bill;
    self->packed += adds;
    return 0;
}

/*  Answers the next slice of job: at most max_batch rows. Returns 1 when the
    job is answered to its end (OK), 0 when more slices follow, -1 when it
    ended with an error reply.  */
static int
s_serve_slice (s_replay_t *self, s_peer_t *peer, s_job_t *job)
{
    char why[512];
    uint64_t next = job->next, end = job->end;
    uint64_t hi = end - next > (uint64_t)self->max_batch ? next + (uint64_t)self->max_batch : end;
    char lo_text[24], hi_text[24];
    snprintf (lo_text, sizeof lo_text, "%" PRIu64, next);
    snprintf (hi_text, sizeof hi_text, "%" PRIu64, hi);
    const char *params[] = { lo_text, hi_text };
    //  Binary results: payload arrives as its raw bytes, seq as int8.
    PGresult *res = PQexecPrepared (self->conn, "replay_range", 2, params, NULL, NULL, 1);
    if (bf_db_check (self->conn, res, PGRES_TUPLES_OK, "replay range") != BF_DB_OK) {
        PQclear (res);
        snprintf (why, sizeof why, "database unavailable: %s", bf_db_last_message ());
        s_check_connection (self);
        //  Earlier slices went out already; the error ends the answer.
        s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
        return -1;
    }
    int rows = PQntuples (res);
    bool bad = false;
    for (int i = 0; i < rows && !bad; i++) {
        uint64_t seq;
        if (!bf_db_get_int8 (res, i, 0, &seq) || seq != next) {
            snprintf (why, sizeof why, "outbox seq %" PRIu64 " is missing", next);
            bad = true;
        } else if (s_add_event (self, peer, job, seq, (const uint8_t *)PQgetvalue (res, i, 1),
                                (size_t)PQgetlength (res, i, 1), why, sizeof why)
                   != 0)
            bad = true;
        else
            next++;
    }
    if (!bad && next < hi) {
        snprintf (why, sizeof why, "outbox seq %" PRIu64 " is missing", next);
        bad = true;
    }
    PQclear (res);
    job->next = next;
    if (self->n_events > 0)
        s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL);
    if (bad) {
        //  The same stored fault answers every request that reaches it:
        //  logged within the warning limit.
        bf_log_limited (&self->warn_limit, BF_LOG_WARN, "replay: request '%s': %s",
                        BF_TEXT_SHOW (job->request_id, 64), why);
        s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
        return -1;
    }
    return next >= end ? 1 : 0;
}

/*  Starts a job: reads the tail and checks the range against it. Returns 1
    when the job is answered already (caught up: an empty OK), 0 when
    slices follow, -1 when it was answered with an error.  */
static int
s_start_job (s_replay_t *self, s_peer_t *peer, s_job_t *job)
{
    char why[512];
    uint64_t tail = 0;
    job->started = true;
    if (s_read_tail (self, &tail, why, sizeof why) != 0) {
        job->tail = 0; //  unknown
        bf_log_limited (&self->warn_limit, BF_LOG_WARN, "replay: request '%s' not served: %s",
                        BF_TEXT_SHOW (job->request_id, 64), why);
        s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
        return -1;
    }
    job->tail = tail;
    if (job->from > tail + 1) {
        snprintf (why, sizeof why,
                  "from_seq %" PRIu64 " is beyond the tail (last published seq %" PRIu64 ")",
                  job->from, tail);
        bf_log_limited (&self->warn_limit, BF_LOG_WARN, "replay: request '%s' rejected: %s",
                        BF_TEXT_SHOW (job->request_id, 64), why);
        s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST, why);
        return -1;
    }
    Billflow__ReplayBatch header;
    s_batch_init (&header, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL);
    job->base = protobuf_c_message_get_packed_size (&header.base);
    //  from <= tail + 1 < 2^63 and count < 2^32: no overflow.
    job->next = job->from;
    job->end = job->from + job->count;
    if (job->end > tail + 1)
        job->end = tail + 1;
    if (job->end == job->from) {
        //  Caught up: an empty OK says so.
        s_emit (self, peer, job, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL);
        return 1;
    }
    return 0;
}

/*  One turn of a peer: send what waits, else one slice of its oldest job.  */
static void
s_peer_turn (s_replay_t *self, s_peer_t *peer)
{
    if (zlist_size (peer->outbox) > 0) {
        s_flush (self, peer);
        return;
    }
    s_job_t *job = zlist_first (peer->jobs);
    if (!job)
        return;
    bf_log_ctx_set ("request_id", "%s", BF_TEXT_SHOW (job->request_id, 64));
    int rc = job->started ? 0 : s_start_job (self, peer, job);
    if (rc == 0 && job->next < job->end)
        rc = s_serve_slice (self, peer, job);
    s_pending_clear (self);
    if (rc != 0) {
        if (rc > 0)
            self->served++;
        else
            self->rejected++;
        bf_debug ("replay: request '%s' from %" PRIu64 " count %" PRIu32 " answered",
                  BF_TEXT_SHOW (job->request_id, 64), job->from, job->count);
        zlist_pop (peer->jobs);
        s_job_destroy (&job);
    }
    s_flush (self, peer);
    bf_log_ctx_clear ();
}

static bool
s_peer_ready (const s_peer_t *peer, int64_t now)
{
    if (zlist_size (peer->outbox) > 0)
        return now >= peer->retry_at;
    return zlist_size (peer->jobs) > 0;
}

/*  One round: a turn for each peer that is ready, in ring order; drops the
    peers that are gone, stalled too long, or done.  */
static void
s_round (s_replay_t *self)
{
    size_t n = zlist_size (self->ring);
    for (size_t i = 0; i < n; i++) {
        s_peer_t *peer = zlist_pop (self->ring);
        if (!peer)
            break;
        int64_t now = zclock_mono ();
        if (s_peer_ready (peer, now))
            s_peer_turn (self, peer);
        now = zclock_mono ();
        if (peer->gone) {
            bf_log_limited (&self->warn_limit, BF_LOG_WARN,
                            "replay: a requester left; its %zu queued requests are dropped",
                            zlist_size (peer->jobs));
            zlist_append (self->ring, peer); //  s_peer_drop removes it
            s_peer_drop (self, peer);
        } else if (peer->stalled_since && now - peer->stalled_since >= S_STALL_MS) {
            bf_log_limited (&self->warn_limit, BF_LOG_WARN,
                            "replay: a requester took no reply for %d ms; its %zu queued requests"
                            " are dropped",
                            S_STALL_MS, zlist_size (peer->jobs));
            zlist_append (self->ring, peer);
            s_peer_drop (self, peer);
        } else if (zlist_size (peer->jobs) == 0 && zlist_size (peer->outbox) == 0) {
            zlist_append (self->ring, peer);
            s_peer_drop (self, peer);
        } else
            zlist_append (self->ring, peer);
    }
}

/*  How long the actor may sleep: 0 when a peer is ready, else until the
    first retry, stall or warning summary is due; -1 for no limit.  */
static int
s_next_timeout (s_replay_t *self)
{
    int64_t now = zclock_mono ();
    int64_t due = -1;
    for (s_peer_t *peer = zlist_first (self->ring); peer; peer = zlist_next (self->ring)) {
        if (s_peer_ready (peer, now))
            return 0;
        if (zlist_size (peer->outbox) > 0) {
            int64_t at = peer->retry_at;
            if (due < 0 || at < due)
                due = at;
        }
    }
    int summary = bf_log_limit_tick (&self->warn_limit);
    if (summary >= 0 && (due < 0 || now + summary < due))
        due = now + summary;
    if (!self->bound && (due < 0 || self->rebind_at < due))
        due = self->rebind_at;
    if (!self->conn && (due < 0 || self->reconnect_at < due))
        due = self->reconnect_at;
    if (due < 0)
        return -1;
    return due <= now ? 0 : (int)(due - now);
}

//  --------------------------------------------------------------------------
//  Requests

//  The request_id of a message that fails the strict checks but still
//  unpacks as a ReplayFetch (say, schema_version missing), so the error
//  reply can carry it. Returns a fresh string, or NULL.
static char *
s_peek_request_id (zmsg_t *msg)
{
    if (zmsg_size (msg) != BF_WIRE_FRAMES)
        return NULL;
    zframe_t *type = zmsg_first (msg);
    zmsg_next (msg);
    zframe_t *payload = zmsg_next (msg);
    if (bf_msg_type_lookup (zframe_data (type), zframe_size (type)) != BF_MSG_RPL_FETCH
        || zframe_size (payload) > S_MAX_REQUEST)
        return NULL;
    static const uint8_t no_bytes[1] = { 0 };
    const uint8_t *data = zframe_size (payload) ? zframe_data (payload) : no_bytes;
    Billflow__ReplayFetch *fetch
        = billflow__replay_fetch__unpack (NULL, zframe_size (payload), data);
    char *id = NULL;
    if (fetch && fetch->request_id && fetch->request_id[0])
        id = strdup (fetch->request_id);
    if (fetch)
        billflow__replay_fetch__free_unpacked (fetch, NULL);
    return id;
}

/*  Reads one request and checks it completely, without the database: a bad
    one is answered at once, a good one joins its peer's queue.  */
static void
s_handle_request (s_replay_t *self)
{
    zmsg_t *msg = zmsg_recv (self->router);
    if (msg == NULL)
        return;
    zframe_t *identity = zmsg_pop (msg);
    if (identity == NULL) {
        zmsg_destroy (&msg);
        return;
    }
    const uint8_t *frames[BF_WIRE_FRAMES] = { NULL };
    size_t sizes[BF_WIRE_FRAMES] = { 0 };
    size_t nframes = zmsg_size (msg);
    if (nframes == BF_WIRE_FRAMES) {
        zframe_t *frame = zmsg_first (msg);
        for (int i = 0; i < BF_WIRE_FRAMES; i++, frame = zmsg_next (msg)) {
            frames[i] = zframe_data (frame);
            sizes[i] = zframe_size (frame);
        }
    }
    bf_wire_msg_t wire = BF_WIRE_MSG_INIT;
    char err[256];
    int rc = bf_wire_decode (frames, sizes, nframes, S_MAX_REQUEST, &wire, err, sizeof err);
    bf_wire_stats_count (&self->wire, rc);
    bf_settle_metrics_replay_request ();
    char *peeked = rc == BF_WIRE_OK ? NULL : s_peek_request_id (msg);
    zmsg_destroy (&msg);
    Billflow__ReplayFetch *fetch = bf_wire_replay_fetch (&wire);
    const char *request_id = fetch ? fetch->request_id : peeked ? peeked : "unknown";
    bf_log_ctx_set ("request_id", "%s", BF_TEXT_SHOW (request_id, 64));

    const Billflow__ReplayBatch__Status BAD = BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST;
    char why[512];
    if (rc != BF_WIRE_OK)
        snprintf (why, sizeof why, "malformed request (%s): %s", bf_wire_rc_name (rc), err);
    else if (fetch == NULL)
        snprintf (why, sizeof why, "expected RPL.FETCH, got %s", bf_msg_type_name (wire.type));
    else if (fetch->from_seq == 0 || fetch->count == 0)
        snprintf (why, sizeof why, "%s is 0 (sequences start at 1; count is the credit)",
                  fetch->from_seq == 0 ? "from_seq" : "count");
    else
        why[0] = 0;

    if (*why) {
        bf_log_limited (&self->warn_limit, BF_LOG_WARN, "replay: request '%s' rejected: %s",
                        BF_TEXT_SHOW (request_id, 64), why);
        s_answer_now (self, identity, request_id, BAD, why);
    } else {
        s_peer_t *peer = s_peer_get (self, identity);
        s_job_t *job = NULL;
        if (!peer)
            snprintf (why, sizeof why, "busy: %d requesters are waiting; retry later", S_MAX_PEERS);
        else if (zlist_size (peer->jobs) >= S_PEER_JOBS)
            snprintf (why, sizeof why,
                      "busy: %d requests from this requester are waiting; retry after their"
                      " answers",
                      S_PEER_JOBS);
        else if (!(job = calloc (1, sizeof *job)) || !(job->request_id = strdup (request_id))
                 || zlist_append (peer->jobs, job) != 0) {
            s_job_destroy (&job);
            snprintf (why, sizeof why, "busy: out of memory; retry later");
        }
        if (*why) {
            bf_log_limited (&self->warn_limit, BF_LOG_WARN, "replay: request '%s' not queued: %s",
                            BF_TEXT_SHOW (request_id, 64), why);
            s_answer_now (self, identity, request_id,
                          BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
            if (peer && zlist_size (peer->jobs) == 0 && zlist_size (peer->outbox) == 0)
                s_peer_drop (self, peer);
        } else {
            job->from = fetch->from_seq;
            job->count = fetch->count;
        }
    }
    bf_wire_msg_reset (&wire);
    free (peeked);
    zframe_destroy (&identity);
    bf_log_ctx_clear ();
}

//  --------------------------------------------------------------------------
//  Actor

static void
s_bind (s_replay_t *self)
{
    if (zsock_bind (self->router, "%s", self->endpoint) != -1) {
        self->bound = true;
        bf_info ("replay: answering on %s", self->endpoint);
        return;
    }
    bf_error ("replay: cannot bind %s: %s; retrying in %d ms", self->endpoint,
              zmq_strerror (zmq_errno ()), self->rebind_backoff);
    self->rebind_at = zclock_mono () + self->rebind_backoff;
    self->rebind_backoff
        = self->rebind_backoff * 2 > S_REBIND_MAX_MS ? S_REBIND_MAX_MS : self->rebind_backoff * 2;
}

static void
s_replay_destroy (s_replay_t **self_p)
{
    s_replay_t *self = *self_p;
    if (self == NULL)
        return;
    s_pending_clear (self);
    s_peer_t *peer;
    while (self->ring && (peer = zlist_pop (self->ring)))
        s_peer_destroy (&peer);
    zlist_destroy (&self->ring);
    zhash_destroy (&self->peers);
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->router);
    PQfinish (self->conn);
    free (self->events);
    free (self->event_ptrs);
    free (self->conninfo);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static s_replay_t *
s_replay_new (zsock_t *pipe, const bf_replay_args_t *args)
{
    s_replay_t *self = calloc (1, sizeof *self);
    if (self)
        self->warn_limit
            = BF_LOG_LIMIT_INIT ("replay", "rejected requests", S_WARN_BURST, S_WARN_WINDOW_MS);
    if (self == NULL)
        return NULL;
    self->pipe = pipe;
    self->max_batch = args->max_batch > 0 ? args->max_batch : 1;
    self->conninfo = strdup (args->conninfo ? args->conninfo : "");
    self->endpoint
        = strdup (args->endpoint && *args->endpoint ? args->endpoint : "tcp://127.0.0.1:7102");
    self->events = calloc ((size_t)self->max_batch, sizeof *self->events);
    self->event_ptrs = calloc ((size_t)self->max_batch, sizeof *self->event_ptrs);
    self->router = zsock_new (ZMQ_ROUTER);
    self->peers = zhash_new ();
    self->ring = zlist_new ();
    self->rebind_backoff = 1000;
    if (!self->conninfo || !self->endpoint || !self->events || !self->event_ptrs || !self->router
        || !self->peers || !self->ring) {
        s_replay_destroy (&self);
        return NULL;
    }
    for (int i = 0; i < self->max_batch; i++)
        self->event_ptrs[i] = &self->events[i];
    //  A reply to a requester that left, or does not read, fails at once
    //  (EHOSTUNREACH, EAGAIN) instead of vanishing or blocking.
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_linger (self->router, S_LINGER_MS);
    //  A requester gone silent is dropped with its queue (bf_zmq.h).
    bf_zmq_heartbeat (self->router);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndhwm (self->router, S_SNDHWM);
    zsock_set_rcvhwm (self->router, S_RCVHWM);
    zsock_set_maxmsgsize (self->router, S_MAX_MSGSIZE);
    //  Only keys in the allowed list with a role that may read events get
    //  through the handshake (the process's ZAP handler decides).
    if (args->cert)
        bf_curve_server (self->router, args->cert);
    self->poller = zpoller_new (pipe, self->router, NULL);
    if (self->poller == NULL) {
        s_replay_destroy (&self);
        return NULL;
    }
    //  Only main reacts to signals; $TERM ends the actor.
    zpoller_set_nonstop (self->poller, true);
    return self;
}

static void
s_handle_pipe (s_replay_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (msg == NULL) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr (msg);
    if (command && streq (command, "$TERM"))
        self->terminated = true;
    else if (command && streq (command, "STATS")) {
        char served[24], rejected[24], events[24];
        snprintf (served, sizeof served, "%" PRIu64, self->served);
        snprintf (rejected, sizeof rejected, "%" PRIu64, self->rejected);
        snprintf (events, sizeof events, "%" PRIu64, self->events_sent);
        zstr_sendx (self->pipe, served, rejected, events, NULL);
    } else
        bf_warn ("replay: unknown pipe command '%s'", command ? command : "");
    zstr_free (&command);
    zmsg_destroy (&msg);
}

void
bf_replay_actor (zsock_t *pipe, void *args)
{
    assert (args); //  programmer error: zactor_new (bf_replay_actor, &args)
    s_replay_t *self = s_replay_new (pipe, (const bf_replay_args_t *)args);
    if (self == NULL) {
        bf_error ("replay: out of memory at start");
        bf_actor_fail (pipe, ((const bf_replay_args_t *)args)->status,
                       "replay: out of memory at start");
        char *command;
        while ((command = zstr_recv (pipe)) && !streq (command, "$TERM"))
            zstr_free (&command);
        zstr_free (&command);
        return;
    }
    s_bind (self);
    //  A database that is down now is not fatal: requests get UNAVAILABLE,
    //  and the connection is tried again in the background (paced).
    //  The tail read now answers the bad requests that come before the
    //  first good one.
    if (s_connection (self, ((const bf_replay_args_t *)args)->connect_timeout_ms) == 0) {
        char why[512];
        uint64_t tail;
        s_read_tail (self, &tail, why, sizeof why);
    }
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        void *which = bf_health_zpoller_wait ("replay", self->poller, s_next_timeout (self));
        if (which == self->pipe)
            s_handle_pipe (self);
        else if (which == NULL && zpoller_terminated (self->poller) && zmq_errno () == ETERM)
            break; //  the ZeroMQ context is gone: nobody can talk to us
        if (self->terminated)
            break;
        //  A bounded burst of requests (cheap: no database), then one round
        //  of work, so a flood is read fast and never starves the answers.
        for (int i = 0; i < S_READ_BURST && (zsock_events (self->router) & ZMQ_POLLIN); i++)
            s_handle_request (self);
        s_round (self);
        //  A lost connection comes back in the background (paced by the
        //  process's reconnect gate), not only when the next request needs
        //  it: an idle replay must not leave the process "database
        //  unavailable" (its gate open, its log without "back") after the
        //  database has returned.
        if (!self->conn && zclock_mono () >= self->reconnect_at)
            s_connection (self, 0);
        bf_log_limit_tick (&self->warn_limit);
        if (!self->bound && zclock_mono () >= self->rebind_at)
            s_bind (self);
    }
    s_replay_destroy (&self);
}

void
bf_replay_args_from_config (bf_replay_args_t *args, const bf_config_t *config)
{
    memset (args, 0, sizeof *args);
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->endpoint = bf_config_str (config, "settle.replay_endpoint");
    args->max_batch = (int)bf_config_int (config, "settle.replay_max_batch");
    args->connect_timeout_ms = (int)bf_config_int (config, "db.connect_timeout_ms");
}
