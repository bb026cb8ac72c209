/*  bf_replay — the replay actor: answers RPL.FETCH from the durable outbox.

    One request is served to its end before the next is read: read the tail
    (relay_state.last_seq: every seq up to it is committed, so the range
    below it has no holes), check the range, then read the rows in slices
    of at most max_batch and send each slice as one or more RPL.BATCH
    replies, splitting where a reply would pass the 1 MiB payload limit.
    Every reply of a request carries the same last_published_seq, so the
    requester knows where the answer ends: at min(from_seq + count,
    last_published_seq + 1), or at the first reply whose status is not OK.

    Stored payloads are checked as strictly as bf_wire checks what arrives
    from the network: a row that fails is a server-side data error, answered
    UNAVAILABLE (after the valid events before it) and logged, never sent on
    to the requester as something it would reject.  */

#include "bf_replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_db.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_wire.h"

#define S_APP_NAME "settle-replay"
/*  A reply must not be lost to a close; a stuck requester must not stall
    the others for long.  */
#define S_LINGER_MS   1000
#define S_SNDTIMEO_MS 1000
/*  A ReplayFetch is a few dozen bytes; anything this big is garbage.  */
#define S_MAX_REQUEST ((size_t)64 * 1024)
/*  Inbound messages past this are dropped by libzmq (peer disconnected).  */
#define S_MAX_MSGSIZE (4 * 1024 * 1024)
/*  Reply payload limit: what every receiver accepts.  */
#define S_MAX_REPLY        BF_WIRE_MAX_PAYLOAD
#define S_RECONNECT_MIN_MS 100
#define S_RECONNECT_MAX_MS 5000
#define S_REBIND_MAX_MS    10000

static const bf_db_statement_t s_statements[] = {
    { "replay_tail", "SELECT last_seq FROM relay_state", 0 },
    { "replay_range", "SELECT seq, payload FROM outbox WHERE seq >= $1 AND seq < $2 ORDER BY seq",
      2 },
};

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    zpoller_t *poller;
    char *conninfo;
    char *endpoint;
    int max_batch;

    PGconn *conn;          //  NULL while disconnected
    int64_t reconnect_at;  //  mono ms: no attempt before this
    int reconnect_backoff; //  ms
    bool bound;
    int64_t rebind_at;
    int rebind_backoff;
    bool terminated;

    //  One pending reply, reused for every batch.
    Billflow__ReplayEvent *events;
    Billflow__ReplayEvent **event_ptrs;
    size_t n_events;
    size_t packed; //  bytes the pending events add to the reply

    uint64_t served;   //  requests answered OK to their end
    uint64_t rejected; //  requests answered BAD_REQUEST or UNAVAILABLE
    uint64_t events_sent;
    bf_wire_stats_t wire;
} s_replay_t;

/*  What one request is being answered with.  */
typedef struct {
    zframe_t *identity; //  the requester's routing id
    const char *request_id;
    uint64_t tail; //  last_published_seq in every reply
    size_t base;   //  packed size of an OK reply without events
    bool gone;     //  a send failed: stop answering this request
} s_request_t;

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
        bf_warn ("replay: database connection lost (%s); reconnecting on demand",
                 bf_db_last_message ());
        PQfinish (self->conn);
        self->conn = NULL;
    }
}

//  After a failed statement: drops the connection when it is broken.
static void
s_check_connection (s_replay_t *self)
{
    if (self->conn == NULL || PQstatus (self->conn) != CONNECTION_OK
        || strncmp (bf_db_last_sqlstate (), "08", 2) == 0
        || strncmp (bf_db_last_sqlstate (), "57P", 3) == 0)
        s_disconnect (self);
}

//  Makes sure there is a connection; attempts are paced by a backoff so a
//  stream of requests against a dead database stays cheap. Returns 0 or -1.
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
        self->reconnect_at = zclock_mono () + self->reconnect_backoff;
        self->reconnect_backoff = self->reconnect_backoff * 2 > S_RECONNECT_MAX_MS
                                      ? S_RECONNECT_MAX_MS
                                      : self->reconnect_backoff * 2;
        return -1;
    }
    self->conn = conn;
    self->reconnect_backoff = S_RECONNECT_MIN_MS;
    bf_info ("replay: connected to the database");
    return 0;
}

//  relay_state.last_seq into *tail. Returns 0, or -1 with the reason in
//  why.
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
        rc = 0;
    }
    PQclear (res);
    return rc;
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
s_batch_init (Billflow__ReplayBatch *batch, const s_request_t *request,
              Billflow__ReplayBatch__Status status, const char *error)
{
    billflow__replay_batch__init (batch);
    batch->schema_version = BF_SCHEMA_VERSION;
    batch->request_id = (char *)request->request_id;
    batch->status = status;
    batch->error = (char *)(error ? error : "");
    batch->last_published_seq = request->tail;
}

//  Sends one reply: the pending events (status OK), or an error without
//  events. Clears the pending events either way. Returns 0 or -1 (the
//  requester is gone or stuck; request->gone is set).
static int
s_send (s_replay_t *self, s_request_t *request, Billflow__ReplayBatch__Status status,
        const char *error)
{
    Billflow__ReplayBatch batch;
    s_batch_init (&batch, request, status, error);
    uint64_t seq = 0;
    if (status == BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK && self->n_events > 0) {
        batch.n_events = self->n_events;
        batch.events = self->event_ptrs;
        seq = self->events[self->n_events - 1].seq;
    }
    size_t sent = batch.n_events;
    zmsg_t *msg = bf_wire_encode (BF_MSG_RPL_BATCH, seq, &batch.base);
    s_pending_clear (self);
    if (msg == NULL) {
        //  bf_wire_encode logged why; a bug here, not the requester's fault.
        request->gone = true;
        return -1;
    }
    zframe_t *identity = zframe_dup (request->identity);
    zmsg_prepend (msg, &identity);
    if (zmsg_send (&msg, self->router) != 0) {
        bf_warn ("replay: cannot answer request '%.64s': %s", request->request_id,
                 zmq_strerror (zmq_errno ()));
        zmsg_destroy (&msg);
        request->gone = true;
        return -1;
    }
    self->events_sent += sent;
    return 0;
}

//  Answers with an error and counts the rejection.
static void
s_reject (s_replay_t *self, s_request_t *request, Billflow__ReplayBatch__Status status,
          const char *error)
{
    self->rejected++;
    if (!request->gone)
        s_send (self, request, status, error);
}

//  Adds the stored event (seq, payload) to the pending reply, sending the
//  pending reply first when the event would not fit. Returns 0, or -1 with
//  the reason in why (bad stored payload, or the requester is gone).
static int
s_add_event (s_replay_t *self, s_request_t *request, uint64_t seq, const uint8_t *payload,
             size_t len, char *why, size_t whysize)
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

    size_t base = request->base;
    if (base + adds > S_MAX_REPLY) {
        snprintf (why, whysize, "outbox seq %" PRIu64 " does not fit a reply (%zu bytes)", seq,
                  adds);
        protobuf_c_message_free_unpacked (&bill->base, NULL);
        return -1;
    }
    if (self->n_events == (size_t)self->max_batch || base + self->packed + adds > S_MAX_REPLY) {
        if (s_send (self, request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL) != 0) {
            snprintf (why, whysize, "requester gone");
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

//  Sends [from, end) in slices of max_batch rows. Returns 0, or -1 after
//  answering with an error (or finding the requester gone).
static int
s_serve_range (s_replay_t *self, s_request_t *request, uint64_t from, uint64_t end)
{
    char why[512];
    uint64_t next = from;
    while (next < end && !request->gone) {
        uint64_t hi
            = end - next > (uint64_t)self->max_batch ? next + (uint64_t)self->max_batch : end;
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
            s_reject (self, request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
            return -1;
        }
        int rows = PQntuples (res);
        bool bad = false;
        for (int i = 0; i < rows && !bad; i++) {
            uint64_t seq;
            if (!bf_db_get_int8 (res, i, 0, &seq) || seq != next) {
                snprintf (why, sizeof why, "outbox seq %" PRIu64 " is missing", next);
                bad = true;
            } else if (s_add_event (self, request, seq, (const uint8_t *)PQgetvalue (res, i, 1),
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
        if (bad) {
            if (request->gone) {
                self->rejected++;
                return -1;
            }
            bf_error ("replay: request '%.64s': %s", request->request_id, why);
            if (self->n_events > 0)
                s_send (self, request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL);
            s_reject (self, request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
            return -1;
        }
        if (self->n_events > 0)
            s_send (self, request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL);
    }
    if (request->gone) {
        self->rejected++;
        return -1;
    }
    return 0;
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

static void
s_handle_request (s_replay_t *self)
{
    zmsg_t *msg = zmsg_recv (self->router);
    if (msg == NULL)
        return;
    s_request_t request = { zmsg_pop (msg), "unknown", 0, 0, false };
    if (request.identity == NULL) {
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
    char *peeked = rc == BF_WIRE_OK ? NULL : s_peek_request_id (msg);
    zmsg_destroy (&msg);
    Billflow__ReplayFetch *fetch = bf_wire_replay_fetch (&wire);
    if (fetch)
        request.request_id = fetch->request_id;
    else if (peeked)
        request.request_id = peeked;

    char why[512];
    uint64_t tail = 0;
    //  The tail goes into every reply, errors included; a request that is
    //  bad on its own is BAD_REQUEST even while the database is down.
    bool have_tail = s_read_tail (self, &tail, why, sizeof why) == 0;
    request.tail = tail;

    if (rc != BF_WIRE_OK) {
        snprintf (why, sizeof why, "malformed request (%s): %s", bf_wire_rc_name (rc), err);
        bf_warn ("replay: request '%.64s' rejected: %s", request.request_id, why);
        s_reject (self, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST, why);
    } else if (fetch == NULL) {
        snprintf (why, sizeof why, "expected RPL.FETCH, got %s", bf_msg_type_name (wire.type));
        bf_warn ("replay: request rejected: %s", why);
        s_reject (self, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST, why);
    } else if (fetch->from_seq == 0 || fetch->count == 0) {
        snprintf (why, sizeof why, "%s is 0 (sequences start at 1; count is the credit)",
                  fetch->from_seq == 0 ? "from_seq" : "count");
        bf_warn ("replay: request '%.64s' rejected: %s", request.request_id, why);
        s_reject (self, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST, why);
    } else if (!have_tail) {
        bf_warn ("replay: request '%.64s' not served: %s", request.request_id, why);
        s_reject (self, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, why);
    } else if (fetch->from_seq > tail + 1) {
        snprintf (why, sizeof why,
                  "from_seq %" PRIu64 " is beyond the tail (last published seq %" PRIu64 ")",
                  fetch->from_seq, tail);
        bf_warn ("replay: request '%.64s' rejected: %s", request.request_id, why);
        s_reject (self, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST, why);
    } else {
        //  from_seq <= tail + 1 < 2^63 and count < 2^32: no overflow.
        Billflow__ReplayBatch header;
        s_batch_init (&header, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL);
        request.base = protobuf_c_message_get_packed_size (&header.base);
        uint64_t end = fetch->from_seq + fetch->count;
        if (end > tail + 1)
            end = tail + 1;
        if (end == fetch->from_seq) {
            //  Caught up: an empty OK says so.
            if (s_send (self, &request, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK, NULL) == 0)
                self->served++;
        } else if (s_serve_range (self, &request, fetch->from_seq, end) == 0)
            self->served++;
        bf_debug ("replay: request '%.64s' from %" PRIu64 " count %" PRIu32 " answered",
                  request.request_id, fetch->from_seq, fetch->count);
    }
    s_pending_clear (self);
    bf_wire_msg_reset (&wire);
    free (peeked);
    zframe_destroy (&request.identity);
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
    if (self == NULL)
        return NULL;
    self->pipe = pipe;
    self->max_batch = args->max_batch > 0 ? args->max_batch : 1;
    self->conninfo = strdup (args->conninfo ? args->conninfo : "");
    self->endpoint = strdup (args->endpoint && *args->endpoint ? args->endpoint : "tcp://*:7102");
    self->events = calloc ((size_t)self->max_batch, sizeof *self->events);
    self->event_ptrs = calloc ((size_t)self->max_batch, sizeof *self->event_ptrs);
    self->router = zsock_new (ZMQ_ROUTER);
    self->reconnect_backoff = S_RECONNECT_MIN_MS;
    self->rebind_backoff = 1000;
    if (!self->conninfo || !self->endpoint || !self->events || !self->event_ptrs || !self->router) {
        s_replay_destroy (&self);
        return NULL;
    }
    for (int i = 0; i < self->max_batch; i++)
        self->event_ptrs[i] = &self->events[i];
    //  A reply to a requester that left fails loudly instead of vanishing.
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_linger (self->router, S_LINGER_MS);
    zsock_set_sndtimeo (self->router, S_SNDTIMEO_MS);
    zsock_set_maxmsgsize (self->router, S_MAX_MSGSIZE);
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
        zsock_signal (pipe, 0);
        char *command;
        while ((command = zstr_recv (pipe)) && !streq (command, "$TERM"))
            zstr_free (&command);
        zstr_free (&command);
        return;
    }
    s_bind (self);
    //  A database that is down now is not fatal: requests get UNAVAILABLE
    //  and each one tries again (paced).
    s_connection (self, ((const bf_replay_args_t *)args)->connect_timeout_ms);
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        int timeout = -1;
        if (!self->bound) {
            int64_t wait = self->rebind_at - zclock_mono ();
            timeout = wait < 0 ? 0 : (int)wait;
        }
        void *which = bf_health_zpoller_wait ("replay", self->poller, timeout);
        if (which == self->pipe)
            s_handle_pipe (self);
        else if (which == self->router)
            s_handle_request (self);
        else if (zpoller_terminated (self->poller) && zmq_errno () == ETERM)
            break; //  the ZeroMQ context is gone: nobody can talk to us
        if (!self->bound && !self->terminated && zclock_mono () >= self->rebind_at)
            s_bind (self);
    }
    s_replay_destroy (&self);
}
