/*  Integration: the outbox relay and the replay actor (G2, G3, G8) against
    a real PostgreSQL and real ZeroMQ sockets, both actors in-process.

    Each test gets a fresh migrated database and writes outbox rows directly
    with BillSettled payloads packed here. Subscribers are either a raw SUB
    (to see exactly what the relay publishes) or s_follower, the
    subscriber-side logic notify's ingest needs: live events, gap and tail
    detection from seq and heartbeats, and credit-limited replay fetches.
    The crash tests run a relay in a child process (this binary, started
    with --relay-child) whose BF_FAULT point SIGKILLs it.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_metrics.h"
#include "bf_relay.h"
#include "bf_replay.h"
#include "bf_testdb.h"
#include "bf_testproc.h"
#include "bf_uuid.h"
#include "bf_wire.h"

extern char **environ;

#define S_POLL_MS      50
#define S_HEARTBEAT_MS 100
#define S_PERIOD       "2024-03"

//  --------------------------------------------------------------------------
//  Fixtures: endpoints (bf_test_ipc_endpoint), outbox rows, actors

//  A valid BillSettled for bill_id, packed; event_id is written to
//  event_id. pad > 0 makes due_date that long (size tests). Caller frees.
static uint8_t *
s_pack_bill (uint64_t bill_id, size_t pad, char event_id[BF_UUID_LEN + 1], size_t *len)
{
    Billflow__BillSettled bill = BILLFLOW__BILL_SETTLED__INIT;
    Billflow__Channel channels[] = { BILLFLOW__CHANNEL__CHANNEL_EMAIL };
    assert_non_null (bf_uuid_v4 (event_id));
    char *due = NULL;
    if (pad) {
        due = malloc (pad + 1);
        assert_non_null (due);
        memset (due, '9', pad);
        due[pad] = '\0';
    }
    bill.schema_version = BF_SCHEMA_VERSION;
    bill.event_id = event_id;
    bill.bill_id = bill_id;
    bill.subscriber_id = 1000000 + bill_id;
    bill.period = (char *)S_PERIOD;
    bill.total = (int64_t)bill_id * 1000;
    bill.due_date = due ? due : (char *)"2024-04-25";
    bill.n_channels = 1;
    bill.channels = channels;
    bill.run_id = 1;
    bill.line_count = 3;
    *len = protobuf_c_message_get_packed_size (&bill.base);
    uint8_t *bytes = malloc (*len);
    assert_non_null (bytes);
    assert_int_equal (protobuf_c_message_pack (&bill.base, bytes), *len);
    free (due);
    return bytes;
}

//  Inserts one outbox row with the given payload (any bytes) and event_id.
static void
s_insert_payload (PGconn *conn, uint64_t bill_id, const char *event_id, const uint8_t *payload,
                  size_t len)
{
    char bill_text[24], subscriber_text[24];
    snprintf (bill_text, sizeof bill_text, "%" PRIu64, bill_id);
    snprintf (subscriber_text, sizeof subscriber_text, "%" PRIu64, 1000000 + bill_id);
    const char *values[] = { event_id, bill_text, subscriber_text, (const char *)payload };
    int lengths[] = { 0, 0, 0, (int)len };
    int formats[] = { 0, 0, 0, 1 };
    PGresult *res = PQexecParams (conn,
                                  "INSERT INTO outbox (event_id, topic, period, bill_id,"
                                  " subscriber_id, payload) VALUES ($1, 'EVT.BILL', '" S_PERIOD
                                  "', $2, $3, $4)",
                                  4, NULL, values, lengths, formats, 0);
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        fail_msg ("outbox insert: %s", PQresultErrorMessage (res));
    PQclear (res);
}

//  Inserts one outbox row with a valid BillSettled for bill_id.
static void
s_insert (PGconn *conn, uint64_t bill_id)
{
    char event_id[BF_UUID_LEN + 1];
    size_t len;
    uint8_t *payload = s_pack_bill (bill_id, 0, event_id, &len);
    s_insert_payload (conn, bill_id, event_id, payload, len);
    free (payload);
}

static void
s_insert_many (PGconn *conn, uint64_t first_bill, int count)
{
    assert_string_equal (bf_testdb_exec (conn, "BEGIN"), "00000");
    for (int i = 0; i < count; i++)
        s_insert (conn, first_bill + (uint64_t)i);
    assert_string_equal (bf_testdb_exec (conn, "COMMIT"), "00000");
}

//  Sequences every unsequenced row by id, as a relay that died before
//  publishing would have left them (no relay running).
static void
s_sequence_by_hand (PGconn *conn)
{
    assert_string_equal (bf_testdb_exec (conn,
                                         "UPDATE outbox o SET seq = s.last_seq + r.n,"
                                         " sequenced_at = now() FROM relay_state s,"
                                         " (SELECT id, row_number() OVER (ORDER BY id) AS n"
                                         " FROM outbox WHERE seq IS NULL) r WHERE o.id = r.id"),
                         "00000");
    assert_string_equal (bf_testdb_exec (conn, "UPDATE relay_state SET last_seq ="
                                               " (SELECT coalesce(max(seq), 0) FROM outbox)"),
                         "00000");
}

//  The value of the unlabelled series name in this process's exposition
//  (the relay and replay actors run in it); -1 when absent.
static double
s_metric (const char *name)
{
    char *text = bf_metrics_render (NULL);
    assert_non_null (text);
    char key[128];
    snprintf (key, sizeof key, "\n%s ", name);
    const char *at = strstr (text, key);
    double value = at ? strtod (at + strlen (key), NULL) : -1;
    free (text);
    return value;
}

static int64_t
s_last_seq (PGconn *conn)
{
    return bf_testdb_scalar (conn, "SELECT last_seq FROM relay_state");
}

//  Waits until relay_state.last_seq reaches n.
static void
s_wait_last_seq (PGconn *conn, int64_t n, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (s_last_seq (conn) < n && zclock_mono () < deadline)
        zclock_sleep (10);
    assert_int_equal (s_last_seq (conn), n);
}

static zactor_t *
s_relay_start (const char *db, const char *endpoint, const char *relay_id, int batch)
{
    bf_relay_args_t args = { .conninfo = db,
                             .pub_endpoint = endpoint,
                             .relay_id = relay_id,
                             .batch = batch,
                             .heartbeat_ms = S_HEARTBEAT_MS,
                             .poll_ms = S_POLL_MS,
                             .connect_timeout_ms = 5000 };
    zactor_t *relay = zactor_new (bf_relay_actor, &args);
    assert_non_null (relay);
    zsock_set_rcvtimeo (relay, 5000);
    return relay;
}

//  STATUS: true when leader; the last_seq it reports into *seq.
static bool
s_relay_status (zactor_t *relay, uint64_t *seq)
{
    assert_int_equal (zstr_send (relay, "STATUS"), 0);
    char *state = NULL, *seq_text = NULL;
    assert_int_equal (zstr_recvx (relay, &state, &seq_text, NULL), 2);
    assert_true (streq (state, "LEADER") || streq (state, "STANDBY"));
    bool leader = streq (state, "LEADER");
    if (seq)
        *seq = strtoull (seq_text, NULL, 10);
    zstr_free (&state);
    zstr_free (&seq_text);
    return leader;
}

//  Waits up to timeout_ms for relay to report `leader`. Returns the time
//  it took in ms, or -1.
static int64_t
s_wait_leadership (zactor_t *relay, bool leader, int timeout_ms)
{
    int64_t start = zclock_mono ();
    while (zclock_mono () - start <= timeout_ms) {
        if (s_relay_status (relay, NULL) == leader)
            return zclock_mono () - start;
        zclock_sleep (10);
    }
    return -1;
}

static zactor_t *
s_replay_start (const char *db, const char *endpoint, int max_batch)
{
    bf_replay_args_t args = {
        .conninfo = db, .endpoint = endpoint, .max_batch = max_batch, .connect_timeout_ms = 5000
    };
    zactor_t *replay = zactor_new (bf_replay_actor, &args);
    assert_non_null (replay);
    zsock_set_rcvtimeo (replay, 5000);
    return replay;
}

static void
s_replay_stats (zactor_t *replay, uint64_t *served, uint64_t *rejected, uint64_t *events)
{
    assert_int_equal (zstr_send (replay, "STATS"), 0);
    char *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal (zstr_recvx (replay, &a, &b, &c, NULL), 3);
    *served = strtoull (a, NULL, 10);
    *rejected = strtoull (b, NULL, 10);
    *events = strtoull (c, NULL, 10);
    zstr_free (&a);
    zstr_free (&b);
    zstr_free (&c);
}

//  pid of the backend serving application_name in this database.
static int64_t
s_backend_pid (PGconn *conn, const char *app)
{
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT coalesce(max(pid), -1) FROM pg_stat_activity WHERE datname ="
              " current_database() AND application_name = '%s'",
              app);
    return bf_testdb_scalar (conn, sql);
}

static void
s_kill_backend (PGconn *conn, const char *app)
{
    int64_t pid = s_backend_pid (conn, app);
    assert_true (pid > 0);
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend(%" PRId64 ", 5000)", pid);
    char out[8];
    assert_int_equal (bf_testdb_text (conn, sql, out, sizeof out), 0);
    assert_string_equal (out, "t");
}

//  --------------------------------------------------------------------------
//  Raw SUB: what the relay publishes, exactly

static zsock_t *
s_sub_new (const char *endpoint, int rcvhwm)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert_non_null (sub);
    if (rcvhwm > 0)
        zsock_set_rcvhwm (sub, rcvhwm);
    zsock_set_subscribe (sub, "EVT.BILL");
    zsock_set_subscribe (sub, "EVT.HB");
    assert_int_equal (zsock_connect (sub, "%s", endpoint), 0);
    return sub;
}

//  Next wire message within timeout_ms, decoded into out (raw frames kept
//  in *raw when raw is not NULL). Returns false on timeout.
static bool
s_recv (zsock_t *sock, int timeout_ms, bf_wire_msg_t *out, zmsg_t **raw)
{
    zsock_set_rcvtimeo (sock, timeout_ms);
    zmsg_t *msg = zmsg_recv (sock);
    if (msg == NULL)
        return false;
    if (raw)
        *raw = zmsg_dup (msg);
    char err[256];
    int rc = bf_wire_recv (&msg, 0, out, err, sizeof err);
    if (rc != BF_WIRE_OK)
        fail_msg ("undecodable message from the relay: %s", err);
    return true;
}

//  Waits for a heartbeat with last_seq >= at_least; returns its last_seq.
//  Fails when an event arrives and events_allowed is false.
static uint64_t
s_wait_heartbeat (zsock_t *sub, uint64_t at_least, bool events_allowed, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    while (zclock_mono () < deadline) {
        if (!s_recv (sub, (int)(deadline - zclock_mono ()) + 1, &m, NULL))
            break;
        if (m.type == BF_MSG_EVT_BILL && !events_allowed)
            fail_msg ("unexpected event seq %" PRIu64, m.seq);
        Billflow__RelayHeartbeat *hb = bf_wire_relay_heartbeat (&m);
        if (hb && hb->last_seq >= at_least) {
            uint64_t seq = hb->last_seq;
            bf_wire_msg_reset (&m);
            return seq;
        }
    }
    bf_wire_msg_reset (&m);
    fail_msg ("no heartbeat with last_seq >= %" PRIu64 " within %d ms", at_least, timeout_ms);
    return 0;
}

//  Receives events until seq `last`; each must be the next in order from
//  `first`. Their event_ids go to ids[seq - first] when ids is not NULL.
static void
s_sub_expect (zsock_t *sub, uint64_t first, uint64_t last, char (*ids)[BF_UUID_LEN + 1],
              int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    uint64_t next = first;
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    while (next <= last) {
        int left = (int)(deadline - zclock_mono ());
        if (left <= 0 || !s_recv (sub, left, &m, NULL))
            fail_msg ("got events up to seq %" PRIu64 ", expected up to %" PRIu64, next - 1, last);
        Billflow__BillSettled *bill = bf_wire_bill_settled (&m);
        if (bill == NULL)
            continue;
        if (m.seq != next)
            fail_msg ("expected seq %" PRIu64 ", got %" PRIu64 " (gap or duplicate)", next, m.seq);
        if (ids)
            snprintf (ids[next - first], BF_UUID_LEN + 1, "%s", bill->event_id);
        next++;
    }
    bf_wire_msg_reset (&m);
}

//  No event within ms (heartbeats are fine).
static void
s_sub_quiet (zsock_t *sub, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    int left;
    while ((left = (int)(deadline - zclock_mono ())) > 0 && s_recv (sub, left, &m, NULL))
        if (m.type == BF_MSG_EVT_BILL)
            fail_msg ("unexpected event seq %" PRIu64, m.seq);
    bf_wire_msg_reset (&m);
}

//  --------------------------------------------------------------------------
//  s_follower — the subscriber side of G3, as notify's ingest will do it.
//
//  It needs events in seq order, each once, starting at `next`. Live events
//  with seq == next are delivered; older ones are duplicates; a newer one
//  reveals a gap (PUB dropped something, or the follower joined late) and
//  is dropped in favour of replay. A heartbeat's last_seq reveals tail loss
//  (the last events were lost and nothing follows). Whenever the known tail
//  is past next, it asks replay for [next, next + credit) with a fresh
//  request_id; replies to older requests are ignored, and a request that
//  is not answered in time is given up and asked again.

typedef struct {
    uint64_t seq;
    uint64_t bill_id;
    char event_id[BF_UUID_LEN + 1];
} s_event_t;

typedef struct {
    zsock_t *sub;
    zsock_t *dealer;
    zpoller_t *poller;
    uint64_t next;                    //  next seq the application needs
    uint64_t tail;                    //  highest seq known to exist
    uint32_t credit;                  //  events per fetch
    char request_id[BF_UUID_LEN + 1]; //  outstanding fetch, "" when none
    uint64_t request_end;             //  exclusive end of what it asked for
    int64_t request_deadline;         //  give up on it after this (mono ms)
    int64_t retry_at;                 //  no fetch before this (after errors)

    //  Test knobs: lose every drop_every-th live event, and every live
    //  event with seq >= drop_from (tail loss). 0 = off.
    uint64_t drop_every;
    uint64_t drop_from;
    uint64_t live_seen;

    size_t live, replayed, duplicates, dropped, heartbeats, fetches, errors;
    s_event_t *events; //  what the application got, in order
    size_t n_events;
    size_t cap;
} s_follower_t;

//  rcvhwm 0 keeps the ZeroMQ default.
static s_follower_t *
s_follower_new (const char *pub_endpoint, const char *replay_endpoint, uint32_t credit, int rcvhwm)
{
    s_follower_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    self->sub = s_sub_new (pub_endpoint, rcvhwm);
    self->dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (self->dealer);
    assert_int_equal (zsock_connect (self->dealer, "%s", replay_endpoint), 0);
    self->poller = zpoller_new (self->sub, self->dealer, NULL);
    assert_non_null (self->poller);
    self->next = 1;
    self->credit = credit;
    return self;
}

//  Listens to one more relay endpoint (another settle process's).
static void
s_follower_connect (s_follower_t *self, const char *pub_endpoint)
{
    assert_int_equal (zsock_connect (self->sub, "%s", pub_endpoint), 0);
}

static void
s_follower_destroy (s_follower_t **self_p)
{
    s_follower_t *self = *self_p;
    if (self == NULL)
        return;
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->sub);
    zsock_destroy (&self->dealer);
    free (self->events);
    free (self);
    *self_p = NULL;
}

//  The application: must get exactly the next seq.
static void
s_follower_deliver (s_follower_t *self, uint64_t seq, const Billflow__BillSettled *bill)
{
    if (seq != self->next)
        fail_msg ("follower delivered seq %" PRIu64 ", needed %" PRIu64, seq, self->next);
    if (self->n_events == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->events = realloc (self->events, self->cap * sizeof *self->events);
        assert_non_null (self->events);
    }
    s_event_t *event = &self->events[self->n_events++];
    event->seq = seq;
    event->bill_id = bill->bill_id;
    snprintf (event->event_id, sizeof event->event_id, "%s", bill->event_id);
    self->next++;
}

static void
s_follower_saw_tail (s_follower_t *self, uint64_t seq)
{
    if (seq > self->tail)
        self->tail = seq;
}

static void
s_follower_on_live (s_follower_t *self, const bf_wire_msg_t *m)
{
    const Billflow__RelayHeartbeat *hb = bf_wire_relay_heartbeat (m);
    if (hb) {
        self->heartbeats++;
        s_follower_saw_tail (self, hb->last_seq);
        return;
    }
    const Billflow__BillSettled *bill = bf_wire_bill_settled (m);
    if (bill == NULL)
        return;
    self->live_seen++;
    if ((self->drop_every && self->live_seen % self->drop_every == 0)
        || (self->drop_from && m->seq >= self->drop_from)) {
        self->dropped++;
        return;
    }
    s_follower_saw_tail (self, m->seq);
    if (m->seq < self->next)
        self->duplicates++;
    else if (m->seq == self->next) {
        self->live++;
        s_follower_deliver (self, m->seq, bill);
    }
    //  else: a gap; replay fills it, this one included.
}

static void
s_follower_on_reply (s_follower_t *self, const bf_wire_msg_t *m)
{
    const Billflow__ReplayBatch *batch = bf_wire_replay_batch (m);
    if (batch == NULL || self->request_id[0] == '\0'
        || strcmp (batch->request_id, self->request_id) != 0)
        return; //  not ours, or a request already given up
    s_follower_saw_tail (self, batch->last_published_seq);
    if (batch->status != BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK) {
        self->errors++;
        self->request_id[0] = '\0';
        self->retry_at = zclock_mono () + 100;
        return;
    }
    for (size_t i = 0; i < batch->n_events; i++) {
        const Billflow__ReplayEvent *event = batch->events[i];
        if (event->seq < self->next)
            self->duplicates++;
        else if (event->seq == self->next) {
            self->replayed++;
            s_follower_deliver (self, event->seq, event->event);
        } else
            fail_msg ("replay skipped from %" PRIu64 " to %" PRIu64, self->next, event->seq);
    }
    uint64_t end = self->request_end;
    if (end > batch->last_published_seq + 1)
        end = batch->last_published_seq + 1;
    if (batch->n_events == 0 || self->next >= end)
        self->request_id[0] = '\0'; //  answered in full
}

static void
s_follower_fetch (s_follower_t *self)
{
    int64_t now = zclock_mono ();
    if (self->request_id[0] && now > self->request_deadline)
        self->request_id[0] = '\0';
    if (self->request_id[0] || self->tail < self->next || now < self->retry_at)
        return;
    uint64_t want = self->tail - self->next + 1;
    Billflow__ReplayFetch fetch = BILLFLOW__REPLAY_FETCH__INIT;
    fetch.schema_version = BF_SCHEMA_VERSION;
    fetch.request_id = bf_uuid_v4 (self->request_id);
    fetch.from_seq = self->next;
    fetch.count = want < self->credit ? (uint32_t)want : self->credit;
    assert_int_equal (bf_wire_send (self->dealer, BF_MSG_RPL_FETCH, 0, &fetch.base), 0);
    self->request_end = fetch.from_seq + fetch.count;
    self->request_deadline = now + 2000;
    self->fetches++;
}

//  Handles whatever arrives within ms.
static void
s_follower_pump (s_follower_t *self, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    do {
        s_follower_fetch (self);
        int left = (int)(deadline - zclock_mono ());
        void *which = zpoller_wait (self->poller, left < 0 ? 0 : left > 20 ? 20 : left);
        if (which == NULL)
            continue;
        zmsg_t *msg = zmsg_recv (which);
        char err[256];
        if (bf_wire_recv (&msg, 0, &m, err, sizeof err) != BF_WIRE_OK)
            fail_msg ("follower: undecodable message: %s", err);
        if (which == self->sub)
            s_follower_on_live (self, &m);
        else
            s_follower_on_reply (self, &m);
    } while (zclock_mono () < deadline);
    bf_wire_msg_reset (&m);
}

//  Pumps until the application has every seq up to last.
static void
s_follower_wait (s_follower_t *self, uint64_t last, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (self->next <= last && zclock_mono () < deadline)
        s_follower_pump (self, 20);
    if (self->next <= last)
        fail_msg ("follower reached seq %" PRIu64 " of %" PRIu64 " (live %zu, replayed %zu,"
                  " fetches %zu, errors %zu)",
                  self->next - 1, last, self->live, self->replayed, self->fetches, self->errors);
}

//  The application got seq 1..n, each once, and each is the outbox row
//  with that seq.
static void
s_follower_check (const s_follower_t *self, PGconn *conn, uint64_t n)
{
    assert_int_equal (self->n_events, n);
    PGresult *res = PQexec (conn, "SELECT seq, event_id, bill_id FROM outbox"
                                  " WHERE seq IS NOT NULL ORDER BY seq");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), (int)n);
    for (uint64_t i = 0; i < n; i++) {
        const s_event_t *event = &self->events[i];
        assert_int_equal (event->seq, i + 1);
        assert_int_equal (strtoull (PQgetvalue (res, (int)i, 0), NULL, 10), i + 1);
        assert_string_equal (event->event_id, PQgetvalue (res, (int)i, 1));
        assert_int_equal (event->bill_id, strtoull (PQgetvalue (res, (int)i, 2), NULL, 10));
    }
    PQclear (res);
}

//  --------------------------------------------------------------------------
//  G2: nothing is published before its transaction commits

static void
test_uncommitted_never_published (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    PGconn *writer = bf_testdb_connect (db);
    char endpoint[64];
    bf_test_ipc_endpoint (endpoint, sizeof endpoint);
    zactor_t *relay = s_relay_start (db, endpoint, "relay-g2", 100);
    assert_true (s_relay_status (relay, NULL));
    zsock_t *sub = s_sub_new (endpoint, 0);
    assert_int_equal (s_wait_heartbeat (sub, 0, false, 3000), 0);

    //  A row in an open transaction stays invisible to the relay.
    char event_id[BF_UUID_LEN + 1];
    size_t len;
    uint8_t *payload = s_pack_bill (501, 0, event_id, &len);
    assert_string_equal (bf_testdb_exec (writer, "BEGIN"), "00000");
    s_insert_payload (writer, 501, event_id, payload, len);
    s_sub_quiet (sub, 10 * S_POLL_MS);
    assert_int_equal (bf_testdb_scalar (writer, "SELECT count(*) FROM outbox WHERE seq IS NULL"),
                      1);
    assert_int_equal (s_last_seq (conn), 0);
    assert_int_equal (s_wait_heartbeat (sub, 0, false, 1000), 0);

    //  After COMMIT: published with the next seq, the stored bytes as is.
    assert_string_equal (bf_testdb_exec (writer, "COMMIT"), "00000");
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    zmsg_t *raw = NULL;
    int64_t deadline = zclock_mono () + 3000;
    while (zclock_mono () < deadline && s_recv (sub, 3000, &m, &raw) && m.type != BF_MSG_EVT_BILL)
        zmsg_destroy (&raw);
    assert_int_equal (m.type, BF_MSG_EVT_BILL);
    assert_int_equal (m.seq, 1);
    assert_string_equal (bf_wire_bill_settled (&m)->event_id, event_id);
    zframe_t *body = zmsg_last (raw);
    assert_int_equal (zframe_size (body), len);
    assert_memory_equal (zframe_data (body), payload, len);
    zmsg_destroy (&raw);
    bf_wire_msg_reset (&m);
    free (payload);
    assert_int_equal (s_last_seq (conn), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox WHERE seq = 1"
                                              " AND sequenced_at IS NOT NULL"),
                      1);

    //  A sequencing transaction that fails at COMMIT (a deferred trigger
    //  refuses it) publishes nothing and gives out no seq.
    assert_string_equal (
        bf_testdb_exec (conn,
                        "CREATE TABLE test_fail (x int);"
                        " CREATE FUNCTION test_fail () RETURNS trigger LANGUAGE plpgsql AS $$"
                        " BEGIN IF EXISTS (SELECT 1 FROM test_fail) THEN"
                        " RAISE EXCEPTION 'injected commit failure'; END IF; RETURN NULL; END $$;"
                        " CREATE CONSTRAINT TRIGGER test_fail AFTER UPDATE ON relay_state"
                        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail ();"
                        " INSERT INTO test_fail VALUES (1)"),
        "00000");
    s_insert_many (conn, 502, 3);
    s_sub_quiet (sub, 10 * S_POLL_MS);
    assert_int_equal (s_wait_heartbeat (sub, 0, false, 1000), 1);
    assert_int_equal (s_last_seq (conn), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox WHERE seq IS NULL"), 3);
    assert_true (s_relay_status (relay, NULL)); //  a failed batch costs no leadership

    assert_string_equal (bf_testdb_exec (conn, "DELETE FROM test_fail"), "00000");
    s_sub_expect (sub, 2, 4, NULL, 3000);
    assert_int_equal (s_wait_heartbeat (sub, 4, false, 1000), 4);
    assert_int_equal (s_last_seq (conn), 4);

    zsock_destroy (&sub);
    zactor_destroy (&relay);
    PQfinish (writer);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Sequences: gapless, ordered, one per row, in commit (visibility) order

static void
test_gapless_across_concurrent_commits (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    enum { WRITERS = 3, ROWS = 6, EXTRA = 5, N = WRITERS * ROWS + EXTRA };
    PGconn *writers[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        writers[w] = bf_testdb_connect (db);
        assert_non_null (writers[w]);
        assert_string_equal (bf_testdb_exec (writers[w], "BEGIN"), "00000");
    }
    char endpoint[64];
    bf_test_ipc_endpoint (endpoint, sizeof endpoint);
    //  A batch of 4 makes the relay loop over several transactions.
    zactor_t *relay = s_relay_start (db, endpoint, "relay-seq", 4);
    zsock_t *sub = s_sub_new (endpoint, 0);
    s_wait_heartbeat (sub, 0, false, 3000);

    //  Ids interleave across the writers: w0, w1, w2, w0, w1, w2 ...
    for (int r = 0; r < ROWS; r++)
        for (int w = 0; w < WRITERS; w++)
            s_insert (writers[w], (uint64_t)(100 * (w + 1) + r));
    //  Commit in another order than the ids: the last writer first, then
    //  rows committed on their own, then the others at once.
    assert_string_equal (bf_testdb_exec (writers[2], "COMMIT"), "00000");
    s_wait_last_seq (conn, ROWS, 3000);
    for (int i = 0; i < EXTRA; i++)
        s_insert (conn, 900 + (uint64_t)i);
    s_wait_last_seq (conn, ROWS + EXTRA, 3000);
    assert_string_equal (bf_testdb_exec (writers[0], "COMMIT"), "00000");
    assert_string_equal (bf_testdb_exec (writers[1], "COMMIT"), "00000");

    char ids[N][BF_UUID_LEN + 1];
    s_sub_expect (sub, 1, N, ids, 5000);
    s_sub_quiet (sub, 5 * S_POLL_MS); //  and nothing twice
    assert_int_equal (s_last_seq (conn), N);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(DISTINCT seq) FROM outbox"), N);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox WHERE seq IS NULL"), 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT min(seq) FROM outbox"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT max(seq) FROM outbox"), N);
    //  What was published under each seq is that row.
    PGresult *res = PQexec (conn, "SELECT event_id FROM outbox ORDER BY seq");
    assert_int_equal (PQntuples (res), N);
    for (int i = 0; i < N; i++)
        assert_string_equal (PQgetvalue (res, i, 0), ids[i]);
    PQclear (res);
    //  Sequenced as committed, not by id: the last writer's rows first,
    //  then the rows committed on their own; within a batch by id.
    assert_int_equal (
        bf_testdb_scalar (conn, "SELECT max(seq) FROM outbox WHERE bill_id BETWEEN 300 AND 399"),
        ROWS);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT min(seq) FROM outbox WHERE bill_id >= 900"),
                      ROWS + 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM (SELECT seq, row_number()"
                                              " OVER (ORDER BY id) AS n FROM outbox"
                                              " WHERE bill_id BETWEEN 300 AND 399) t"
                                              " WHERE seq <> n"),
                      0);
    char relay_id[32];
    assert_int_equal (
        bf_testdb_text (conn, "SELECT relay_id FROM relay_state", relay_id, sizeof relay_id), 0);
    assert_string_equal (relay_id, "relay-seq");

    zsock_destroy (&sub);
    zactor_destroy (&relay);
    for (int w = 0; w < WRITERS; w++)
        PQfinish (writers[w]);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Heartbeats carry the last committed seq, also one a dead leader left

static void
test_heartbeat_carries_last_seq (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    //  A leader that died after its commit, before publishing, left 1..3.
    s_insert_many (conn, 1, 3);
    s_sequence_by_hand (conn);
    assert_int_equal (s_last_seq (conn), 3);

    char endpoint[64];
    bf_test_ipc_endpoint (endpoint, sizeof endpoint);
    zactor_t *relay = s_relay_start (db, endpoint, "relay-hb", 100);
    uint64_t seq;
    assert_true (s_relay_status (relay, &seq));
    assert_int_equal (seq, 3);
    zsock_t *sub = s_sub_new (endpoint, 0);

    //  Heartbeats tell the tail; 1..3 are not published again (replay
    //  has them). Count heartbeats over a second, checking each.
    int heartbeats = 0;
    char previous_id[BF_UUID_LEN + 1] = "";
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    s_wait_heartbeat (sub, 3, false, 3000);
    int64_t start = zclock_mono ();
    while (zclock_mono () - start < 1000 && s_recv (sub, 1000, &m, NULL)) {
        if (m.type == BF_MSG_EVT_BILL)
            fail_msg ("seq %" PRIu64 " was published again", m.seq);
        Billflow__RelayHeartbeat *hb = bf_wire_relay_heartbeat (&m);
        assert_non_null (hb);
        assert_int_equal (m.seq, 0);
        assert_int_equal (hb->schema_version, BF_SCHEMA_VERSION);
        assert_int_equal (hb->last_seq, 3);
        assert_string_equal (hb->relay_id, "relay-hb");
        assert_true (bf_uuid_valid (hb->event_id));
        assert_string_not_equal (hb->event_id, previous_id);
        snprintf (previous_id, sizeof previous_id, "%s", hb->event_id);
        assert_true (llabs (hb->sent_at_ms - zclock_time ()) < 5000);
        heartbeats++;
    }
    bf_wire_msg_reset (&m);
    //  About every S_HEARTBEAT_MS.
    assert_in_range (heartbeats, 1000 / S_HEARTBEAT_MS / 2, 1000 / S_HEARTBEAT_MS * 2);

    //  New rows continue after the tail, and the heartbeat follows.
    s_insert_many (conn, 10, 4);
    s_sub_expect (sub, 4, 7, NULL, 3000);
    assert_int_equal (s_wait_heartbeat (sub, 7, false, 1000), 7);
    assert_true (s_relay_status (relay, &seq));
    assert_int_equal (seq, 7);

    zsock_destroy (&sub);
    zactor_destroy (&relay);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  G3: late and lossy subscribers recover everything through replay

static void
test_late_and_lossy_subscribers_recover (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    char pub[64], rpl[64];
    bf_test_ipc_endpoint (pub, sizeof pub);
    bf_test_ipc_endpoint (rpl, sizeof rpl);
    zactor_t *relay = s_relay_start (db, pub, "relay-g3", 10);
    zactor_t *replay = s_replay_start (db, rpl, 4);

    //  Published before anyone listens.
    s_insert_many (conn, 1, 25);
    s_wait_last_seq (conn, 25, 3000);

    //  A late joiner learns the tail from a heartbeat; credit 7 against
    //  replies of at most 4 events.
    s_follower_t *late = s_follower_new (pub, rpl, 7, 0);
    s_follower_wait (late, 25, 5000);
    assert_int_equal (late->live, 0);
    assert_int_equal (late->replayed, 25);
    assert_true (late->fetches >= 4);

    //  A lossy one with a tiny receive queue: loses every third live event
    //  and, from seq 50 on, every one (the tail only heartbeats reveal).
    s_follower_t *lossy = s_follower_new (pub, rpl, 7, 1);
    lossy->drop_every = 3;
    lossy->drop_from = 50;
    s_follower_wait (lossy, 25, 5000);
    for (int i = 0; i < 30; i++) {
        s_insert (conn, 100 + (uint64_t)i);
        if (i % 5 == 4) {
            s_follower_pump (lossy, 2 * S_POLL_MS);
            s_follower_pump (late, 0);
        }
    }
    s_follower_wait (lossy, 55, 5000);
    s_follower_wait (late, 55, 5000);
    s_follower_pump (lossy, 5 * S_HEARTBEAT_MS); //  nothing more, nothing twice
    s_follower_check (lossy, conn, 55);
    s_follower_check (late, conn, 55);
    assert_true (lossy->dropped >= 10);
    assert_true (lossy->live > 0);
    assert_true (lossy->replayed >= 25 + 10);

    uint64_t served, rejected, events;
    s_replay_stats (replay, &served, &rejected, &events);
    assert_true (served >= lossy->fetches - lossy->errors);
    assert_int_equal (rejected, 0);
    assert_true (events >= late->replayed + lossy->replayed);

    s_follower_destroy (&lossy);
    s_follower_destroy (&late);
    zactor_destroy (&replay);
    zactor_destroy (&relay);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Failover: one leader; the standby takes over and continues the sequence

//  How many of the relays say LEADER.
static int
s_leaders (zactor_t **relays, int n)
{
    int leaders = 0;
    for (int i = 0; i < n; i++)
        leaders += relays[i] && s_relay_status (relays[i], NULL);
    return leaders;
}

//  pid of the session holding the relay lock in this database, or -1.
static int64_t
s_lock_holder (PGconn *conn)
{
    return bf_testdb_scalar (conn, "SELECT coalesce(max(l.pid), -1) FROM pg_locks l"
                                   " JOIN pg_database d ON d.oid = l.database"
                                   " WHERE l.locktype = 'advisory' AND l.granted"
                                   " AND d.datname = current_database()");
}

//  Two settle processes, each relay with its own endpoint (as two pods);
//  the subscriber listens to both.
static void
test_failover (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    char pub_a[64], pub_b[64], rpl[64];
    bf_test_ipc_endpoint (pub_a, sizeof pub_a);
    bf_test_ipc_endpoint (pub_b, sizeof pub_b);
    bf_test_ipc_endpoint (rpl, sizeof rpl);
    zactor_t *relays[2];
    relays[0] = s_relay_start (db, pub_a, "relay-a", 3);
    relays[1] = s_relay_start (db, pub_b, "relay-b", 3);
    zactor_t *replay = s_replay_start (db, rpl, 5);
    //  Exactly one leader, and it stays so.
    for (int i = 0; i < 5; i++) {
        assert_true (s_relay_status (relays[0], NULL));
        assert_false (s_relay_status (relays[1], NULL));
        zclock_sleep (S_POLL_MS);
    }
    s_follower_t *follower = s_follower_new (pub_a, rpl, 50, 0);
    s_follower_connect (follower, pub_b);
    s_insert_many (conn, 1, 10);
    s_follower_wait (follower, 10, 5000);

    //  The leader goes away while rows are waiting.
    s_insert_many (conn, 11, 10);
    zactor_destroy (&relays[0]);
    int64_t took = s_wait_leadership (relays[1], true, 2000);
    assert_true (took >= 0);
    s_insert_many (conn, 21, 10);
    s_follower_wait (follower, 30, 5000);
    s_follower_pump (follower, 5 * S_HEARTBEAT_MS);
    s_follower_check (follower, conn, 30);
    uint64_t seq;
    assert_true (s_relay_status (relays[1], &seq));
    assert_int_equal (seq, 30);
    assert_int_equal (s_last_seq (conn), 30);
    char relay_id[32];
    assert_int_equal (
        bf_testdb_text (conn, "SELECT relay_id FROM relay_state", relay_id, sizeof relay_id), 0);
    assert_string_equal (relay_id, "relay-b");

    s_follower_destroy (&follower);
    zactor_destroy (&replay);
    zactor_destroy (&relays[1]);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  The leader's database session dies: it stands down at once (the lock
//  went with the session, and the standby may take it), one relay leads
//  again on a fresh session, and the sequence goes on without a gap.
static void
test_relay_survives_connection_loss (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    char pub_a[64], pub_b[64], rpl[64];
    bf_test_ipc_endpoint (pub_a, sizeof pub_a);
    bf_test_ipc_endpoint (pub_b, sizeof pub_b);
    bf_test_ipc_endpoint (rpl, sizeof rpl);
    zactor_t *relays[2];
    relays[0] = s_relay_start (db, pub_a, "relay-a", 100);
    relays[1] = s_relay_start (db, pub_b, "relay-b", 100);
    zactor_t *replay = s_replay_start (db, rpl, 100);
    s_follower_t *follower = s_follower_new (pub_a, rpl, 100, 0);
    s_follower_connect (follower, pub_b);
    s_insert_many (conn, 1, 5);
    s_follower_wait (follower, 5, 5000);
    assert_int_equal (s_leaders (relays, 2), 1);

    int64_t old_holder = s_lock_holder (conn);
    assert_true (old_holder > 0);
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend(%" PRId64 ", 5000)", old_holder);
    char out[8];
    assert_int_equal (bf_testdb_text (conn, sql, out, sizeof out), 0);
    assert_string_equal (out, "t");
    s_insert_many (conn, 6, 5);

    //  The old leader notices at its next poll; from then on never two
    //  leaders, and soon one leads on a new session.
    zclock_sleep (3 * S_POLL_MS);
    int64_t deadline = zclock_mono () + 2000;
    int64_t holder = -1;
    while (zclock_mono () < deadline) {
        assert_true (s_leaders (relays, 2) <= 1);
        holder = s_lock_holder (conn);
        if (holder > 0 && holder != old_holder && s_leaders (relays, 2) == 1)
            break;
        zclock_sleep (5);
    }
    assert_true (holder > 0 && holder != old_holder);
    for (int i = 0; i < 10; i++) {
        assert_int_equal (s_leaders (relays, 2), 1);
        zclock_sleep (S_POLL_MS / 2);
    }
    s_follower_wait (follower, 10, 5000);
    s_follower_pump (follower, 3 * S_HEARTBEAT_MS);
    s_follower_check (follower, conn, 10);
    assert_int_equal (s_last_seq (conn), 10);

    s_follower_destroy (&follower);
    zactor_destroy (&replay);
    zactor_destroy (&relays[0]);
    zactor_destroy (&relays[1]);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Crash points: a relay killed after its commit, or mid-publish

//  The child: one relay actor until killed (or 30 s pass).
static int
s_relay_child (char **argv)
{
    bf_log_init ("relay-child", BF_LOG_WARN, false);
    bf_relay_args_t args = { .conninfo = argv[0],
                             .pub_endpoint = argv[1],
                             .relay_id = argv[2],
                             .batch = 100,
                             .heartbeat_ms = S_HEARTBEAT_MS,
                             .poll_ms = S_POLL_MS,
                             .connect_timeout_ms = 5000 };
    zactor_t *relay = zactor_new (bf_relay_actor, &args);
    for (int i = 0; i < 300; i++)
        zclock_sleep (100);
    zactor_destroy (&relay);
    return 0;
}

static pid_t
s_spawn_relay_child (const char *db, const char *endpoint, const char *fault)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc (n + 2, sizeof *envp);
    assert_non_null (envp);
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp (environ[i], "BF_FAULT=", 9) != 0)
            envp[used++] = environ[i];
    char fault_var[128];
    snprintf (fault_var, sizeof fault_var, "BF_FAULT=%s", fault);
    envp[used++] = fault_var;
    char *argv[] = { (char *)"itest_relay", (char *)"--relay-child", (char *)db,
                     (char *)endpoint,      (char *)"relay-child",   NULL };
    pid_t pid;
    assert_int_equal (posix_spawn (&pid, "/proc/self/exe", NULL, NULL, argv, envp), 0);
    free (envp);
    return pid;
}

static void
test_crash_points (void **state)
{
    (void)state;
    //  Killed on its second batch: the first went out live, the second
    //  was committed and then not published (after_commit) or published
    //  only in part (mid_publish).
    const char *faults[] = { "relay.after_commit:2", "relay.mid_publish:2" };
    for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++) {
        char *db = bf_testdb_create (true);
        assert_non_null (db);
        PGconn *conn = bf_testdb_connect (db);
        char pub[64], rpl[64];
        bf_test_ipc_endpoint (pub, sizeof pub);
        bf_test_ipc_endpoint (rpl, sizeof rpl);
        zactor_t *replay = s_replay_start (db, rpl, 3);
        pid_t child = s_spawn_relay_child (db, pub, faults[f]);
        int64_t deadline = zclock_mono () + 5000;
        while (s_lock_holder (conn) < 0 && zclock_mono () < deadline)
            zclock_sleep (20);
        if (waitpid (child, NULL, WNOHANG) != 0)
            fail_msg ("%s: the child relay did not start", faults[f]);
        zactor_t *standby = s_relay_start (db, pub, "relay-standby", 100);
        assert_false (s_relay_status (standby, NULL));
        s_follower_t *follower = s_follower_new (pub, rpl, 100, 0);
        deadline = zclock_mono () + 3000;
        while (follower->heartbeats == 0 && zclock_mono () < deadline)
            s_follower_pump (follower, 10); //  subscribed: events will arrive live

        s_insert_many (conn, 1, 5);
        s_follower_wait (follower, 5, 5000);
        assert_int_equal (follower->live, 5);
        s_insert_many (conn, 6, 5);
        int status = 0;
        deadline = zclock_mono () + 5000;
        pid_t done;
        while ((done = waitpid (child, &status, WNOHANG)) == 0 && zclock_mono () < deadline)
            zclock_sleep (10);
        if (done != child) {
            kill (child, SIGKILL);
            waitpid (child, &status, 0);
            fail_msg ("%s: the child relay was not killed at its fault point", faults[f]);
        }
        assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
        assert_int_equal (s_last_seq (conn), 10); //  the second batch committed

        assert_true (s_wait_leadership (standby, true, 2000) >= 0);
        s_follower_wait (follower, 10, 5000);
        s_insert_many (conn, 11, 3);
        s_follower_wait (follower, 13, 5000);
        s_follower_pump (follower, 3 * S_HEARTBEAT_MS);
        s_follower_check (follower, conn, 13);
        //  6..10 came from replay (6 may have come live at mid_publish).
        assert_true (follower->replayed >= 4);

        s_follower_destroy (&follower);
        zactor_destroy (&standby);
        zactor_destroy (&replay);
        PQfinish (conn);
        bf_testdb_drop (&db);
    }
}

//  --------------------------------------------------------------------------
//  Replay: bad requests get errors, good ones still get answers (G8)

//  Sends msg on dealer and returns the one reply, decoded into out.
static void
s_ask (zsock_t *dealer, zmsg_t **msg_p, bf_wire_msg_t *out)
{
    assert_int_equal (zmsg_send (msg_p, dealer), 0);
    if (!s_recv (dealer, 3000, out, NULL))
        fail_msg ("no reply from replay");
    assert_int_equal (out->type, BF_MSG_RPL_BATCH);
}

static zmsg_t *
s_frames (int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, count);
    for (int i = 0; i < count; i++) {
        const void *data = va_arg (args, const void *);
        size_t size = va_arg (args, size_t);
        zmsg_addmem (msg, data, size);
    }
    va_end (args);
    return msg;
}

//  [type][seq 0][ReplayFetch packed as is, no checks].
static zmsg_t *
s_fetch_raw (const char *type, uint32_t schema, const char *request_id, uint64_t from,
             uint32_t count)
{
    Billflow__ReplayFetch fetch = BILLFLOW__REPLAY_FETCH__INIT;
    fetch.schema_version = schema;
    fetch.request_id = (char *)request_id;
    fetch.from_seq = from;
    fetch.count = count;
    uint8_t payload[256];
    size_t size = protobuf_c_message_pack (&fetch.base, payload);
    return s_frames (3, type, strlen (type), "\0\0\0\0\0\0\0\0", (size_t)8, payload, size);
}

//  Expects an error reply with this status, request_id and error text.
static void
s_expect_error (zsock_t *dealer, zmsg_t *msg, Billflow__ReplayBatch__Status status,
                const char *request_id, const char *error_part, uint64_t tail)
{
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    s_ask (dealer, &msg, &m);
    Billflow__ReplayBatch *batch = bf_wire_replay_batch (&m);
    if (batch->status != status)
        fail_msg ("expected status %d, got %d (%s)", status, batch->status, batch->error);
    assert_string_equal (batch->request_id, request_id);
    if (!strstr (batch->error, error_part))
        fail_msg ("error '%s' lacks '%s'", batch->error, error_part);
    assert_int_equal (batch->n_events, 0);
    assert_int_equal (batch->last_published_seq, tail);
    assert_int_equal (m.seq, 0);
    bf_wire_msg_reset (&m);
}

//  Fetches [from, from + count) and expects seqs from..last in replies of
//  at most per_reply events, each reply's frame seq its last event's.
static void
s_expect_events (zsock_t *dealer, const char *request_id, uint64_t from, uint32_t count,
                 uint64_t last, size_t per_reply)
{
    zmsg_t *msg = s_fetch_raw ("RPL.FETCH", BF_SCHEMA_VERSION, request_id, from, count);
    assert_int_equal (zmsg_send (&msg, dealer), 0);
    uint64_t next = from;
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    while (next <= last) {
        if (!s_recv (dealer, 3000, &m, NULL))
            fail_msg ("%s: replies stopped at seq %" PRIu64, request_id, next);
        Billflow__ReplayBatch *batch = bf_wire_replay_batch (&m);
        assert_non_null (batch);
        if (batch->status != BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK)
            fail_msg ("%s: status %d: %s", request_id, batch->status, batch->error);
        assert_string_equal (batch->request_id, request_id);
        assert_true (batch->n_events >= 1 && batch->n_events <= per_reply);
        for (size_t i = 0; i < batch->n_events; i++)
            assert_int_equal (batch->events[i]->seq, next++);
        assert_int_equal (m.seq, next - 1);
    }
    bf_wire_msg_reset (&m);
    //  Nothing past the credit.
    zsock_set_rcvtimeo (dealer, 3 * S_POLL_MS);
    zmsg_t *extra = zmsg_recv (dealer);
    assert_null (extra);
}

//  --------------------------------------------------------------------------
//  The relay's gauges: the backlog seen while it works through a burst in
//  small batches, none once it is through; the last sequence

static void
test_relay_gauges (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    enum { N = 3000 };
    char endpoint[64];
    bf_test_ipc_endpoint (endpoint, sizeof endpoint);
    zactor_t *relay = s_relay_start (db, endpoint, "relay-gauges", 5);
    assert_true (s_wait_leadership (relay, true, 5000) >= 0);
    //  One burst, committed at once: the relay needs N / 5 transactions.
    s_insert_many (conn, 1, N);
    double seen = 0;
    int64_t deadline = zclock_mono () + 30000;
    while (s_last_seq (conn) < N && zclock_mono () < deadline) {
        double backlog = s_metric ("billflow_outbox_unpublished");
        assert_true (backlog >= 0 && backlog <= N);
        if (backlog > seen)
            seen = backlog;
        zclock_sleep (2);
    }
    assert_int_equal (s_last_seq (conn), N);
    printf ("# largest backlog seen %.0f of %d\n", seen, N);
    assert_true (seen > 0);
    //  Through: nothing waits, and the gauge says so after the next poll.
    deadline = zclock_mono () + 5000;
    while ((s_metric ("billflow_outbox_unpublished") != 0
            || s_metric ("billflow_relay_last_sequence") != N)
           && zclock_mono () < deadline)
        zclock_sleep (10);
    assert_true (s_metric ("billflow_outbox_unpublished") == 0);
    assert_true (s_metric ("billflow_relay_last_sequence") == N);
    zactor_destroy (&relay);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_replay_bad_requests (void **state)
{
    (void)state;
    typedef Billflow__ReplayBatch__Status status_t;
    const status_t BAD = BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST;
    const status_t DOWN = BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    s_insert_many (conn, 1, 5);
    s_sequence_by_hand (conn);
    char rpl[64];
    bf_test_ipc_endpoint (rpl, sizeof rpl);
    double requests_before = s_metric ("billflow_replay_requests_total");
    double events_before = s_metric ("billflow_replay_events_total");
    zactor_t *replay = s_replay_start (db, rpl, 2);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_int_equal (zsock_connect (dealer, "%s", rpl), 0);
    const char *zero = "\0\0\0\0\0\0\0\0";

    //  Undecodable: no request_id to read.
    s_expect_error (dealer, s_frames (1, "hello", (size_t)5), BAD, "unknown", "frames", 5);
    s_expect_error (dealer, s_frames (1, "", (size_t)0), BAD, "unknown", "frames", 5);
    s_expect_error (dealer, s_frames (2, "RPL.FETCH", (size_t)9, zero, (size_t)8), BAD, "unknown",
                    "frames", 5);
    zmsg_t *four = s_fetch_raw ("RPL.FETCH", 1, "r-four", 1, 1);
    zmsg_addstr (four, "extra");
    s_expect_error (dealer, four, BAD, "unknown", "frames", 5);
    s_expect_error (dealer, s_fetch_raw ("RPL.NOPE", 1, "r-type", 1, 1), BAD, "unknown",
                    "unknown frame type", 5);
    s_expect_error (
        dealer, s_frames (3, "RPL.FETCH", (size_t)9, zero, (size_t)8, "\xff\xff\xff", (size_t)3),
        BAD, "unknown", "protobuf", 5);
    static uint8_t big[100 * 1024];
    memset (big, 0x01, sizeof big);
    s_expect_error (dealer, s_frames (3, "RPL.FETCH", (size_t)9, zero, (size_t)8, big, sizeof big),
                    BAD, "unknown", "exceeds", 5);
    //  Not a request at all (a valid heartbeat).
    Billflow__RelayHeartbeat hb = BILLFLOW__RELAY_HEARTBEAT__INIT;
    hb.schema_version = BF_SCHEMA_VERSION;
    hb.event_id = (char *)"hb-1";
    s_expect_error (dealer, bf_wire_encode (BF_MSG_EVT_HB, 0, &hb.base), BAD, "unknown",
                    "expected RPL.FETCH", 5);

    //  Malformed, but the request_id is readable: the reply carries it.
    zmsg_t *short_seq = s_fetch_raw ("RPL.FETCH", 1, "r-seq", 1, 1);
    zmsg_first (short_seq);
    zframe_t *seq_frame = zmsg_next (short_seq);
    zframe_reset (seq_frame, "\0\0\0", 3);
    s_expect_error (dealer, short_seq, BAD, "r-seq", "seq frame", 5);
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 0, "r-schema", 1, 1), BAD, "r-schema",
                    "schema_version", 5);
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 9, "r-newer", 1, 1), BAD, "r-newer", "newer",
                    5);
    //  Out of range.
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 1, "r-count0", 1, 0), BAD, "r-count0",
                    "count is 0", 5);
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 1, "r-from0", 0, 10), BAD, "r-from0",
                    "from_seq is 0", 5);
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 1, "r-beyond", 7, 10), BAD, "r-beyond",
                    "beyond the tail", 5);

    //  Caught up: OK with no events.
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    zmsg_t *msg = s_fetch_raw ("RPL.FETCH", 1, "r-caught-up", 6, 10);
    s_ask (dealer, &msg, &m);
    Billflow__ReplayBatch *batch = bf_wire_replay_batch (&m);
    assert_int_equal (batch->status, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK);
    assert_string_equal (batch->request_id, "r-caught-up");
    assert_int_equal (batch->n_events, 0);
    assert_int_equal (batch->last_published_seq, 5);
    bf_wire_msg_reset (&m);

    //  Good requests are still answered: more credit than events, and
    //  less; max_batch 2 per reply.
    s_expect_events (dealer, "r-all", 2, 100, 5, 2);
    s_expect_events (dealer, "r-credit", 1, 3, 3, 2);

    //  A second peer is answered while the first sends garbage.
    zsock_t *other = zsock_new (ZMQ_DEALER);
    assert_int_equal (zsock_connect (other, "%s", rpl), 0);
    zmsg_t *garbage = s_frames (1, "x", (size_t)1);
    assert_int_equal (zmsg_send (&garbage, dealer), 0);
    s_expect_events (other, "r-other", 5, 1, 5, 2);
    assert_true (s_recv (dealer, 3000, &m, NULL));
    assert_int_equal (bf_wire_replay_batch (&m)->status, BAD);
    bf_wire_msg_reset (&m);
    zsock_destroy (&other);

    uint64_t served, rejected, events;
    s_replay_stats (replay, &served, &rejected, &events);
    assert_int_equal (served, 4);
    assert_int_equal (rejected, 15);
    assert_int_equal (events, 4 + 3 + 1);
    //  The metrics count the same: every request received, every event sent.
    assert_true (s_metric ("billflow_replay_requests_total") - requests_before == 4 + 15);
    assert_true (s_metric ("billflow_replay_events_total") - events_before == 4 + 3 + 1);

    //  The database session dies: UNAVAILABLE, then it reconnects.
    s_kill_backend (conn, "settle-replay");
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 1, "r-down", 1, 1), DOWN, "r-down",
                    "database", 0);
    s_expect_events (dealer, "r-back", 1, 2, 2, 2);

    //  A stored payload that fails the wire checks is a server-side data
    //  error: the events before it, then UNAVAILABLE with the reason. Seq 6
    //  unpacks but breaks a content rule (bill_id 0); seq 7 is no protobuf.
    char event_id[BF_UUID_LEN + 1];
    size_t len;
    uint8_t *invalid = s_pack_bill (0, 0, event_id, &len);
    s_insert_payload (conn, 0, event_id, invalid, len);
    free (invalid);
    bf_uuid_v4 (event_id);
    s_insert_payload (conn, 7, event_id, (const uint8_t *)"\x08\x01\x12", 3);
    s_sequence_by_hand (conn);
    msg = s_fetch_raw ("RPL.FETCH", 1, "r-corrupt", 5, 10);
    s_ask (dealer, &msg, &m);
    batch = bf_wire_replay_batch (&m);
    assert_int_equal (batch->status, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK);
    assert_int_equal (batch->n_events, 1);
    assert_int_equal (batch->events[0]->seq, 5);
    bf_wire_msg_reset (&m);
    assert_true (s_recv (dealer, 3000, &m, NULL));
    batch = bf_wire_replay_batch (&m);
    assert_int_equal (batch->status, DOWN);
    assert_string_equal (batch->request_id, "r-corrupt");
    if (!strstr (batch->error, "outbox seq 6") || !strstr (batch->error, "bill_id is 0"))
        fail_msg ("error '%s' does not name seq 6 and its fault", batch->error);
    assert_int_equal (batch->last_published_seq, 7);
    bf_wire_msg_reset (&m);
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 1, "r-garbage", 7, 1), DOWN, "r-garbage",
                    "outbox seq 7 has a bad payload", 7);
    s_expect_events (dealer, "r-after", 4, 2, 5, 2);

    zsock_destroy (&dealer);
    zactor_destroy (&replay);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  Replies stay under the 1 MiB payload limit whatever max_batch says.
static void
test_replay_reply_size (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    enum { N = 6 };
    for (int i = 1; i <= N; i++) {
        char event_id[BF_UUID_LEN + 1];
        size_t len;
        uint8_t *payload = s_pack_bill ((uint64_t)i, 400 * 1024, event_id, &len);
        s_insert_payload (conn, (uint64_t)i, event_id, payload, len);
        free (payload);
    }
    //  One event too big for any reply.
    char event_id[BF_UUID_LEN + 1];
    size_t len;
    uint8_t *payload = s_pack_bill (N + 1, BF_WIRE_MAX_PAYLOAD, event_id, &len);
    s_insert_payload (conn, N + 1, event_id, payload, len);
    free (payload);
    s_sequence_by_hand (conn);
    char rpl[64];
    bf_test_ipc_endpoint (rpl, sizeof rpl);
    zactor_t *replay = s_replay_start (db, rpl, 100);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_int_equal (zsock_connect (dealer, "%s", rpl), 0);

    zmsg_t *msg = s_fetch_raw ("RPL.FETCH", 1, "r-big", 1, N);
    assert_int_equal (zmsg_send (&msg, dealer), 0);
    uint64_t next = 1;
    int replies = 0;
    while (next <= N) {
        bf_wire_msg_t m = BF_WIRE_MSG_INIT;
        zmsg_t *raw = NULL;
        assert_true (s_recv (dealer, 5000, &m, &raw));
        assert_true (zframe_size (zmsg_last (raw)) <= BF_WIRE_MAX_PAYLOAD);
        zmsg_destroy (&raw);
        Billflow__ReplayBatch *batch = bf_wire_replay_batch (&m);
        assert_int_equal (batch->status, BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK);
        //  Two 400 KiB events fit a reply, three do not.
        assert_true (batch->n_events == 2);
        for (size_t i = 0; i < batch->n_events; i++)
            assert_int_equal (batch->events[i]->seq, next++);
        bf_wire_msg_reset (&m);
        replies++;
    }
    assert_int_equal (replies, N / 2);
    s_expect_error (dealer, s_fetch_raw ("RPL.FETCH", 1, "r-huge", N + 1, 1),
                    BILLFLOW__REPLAY_BATCH__STATUS__STATUS_UNAVAILABLE, "r-huge", "does not fit",
                    N + 1);

    zsock_destroy (&dealer);
    zactor_destroy (&replay);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

int
main (int argc, char **argv)
{
    if (argc == 5 && streq (argv[1], "--relay-child"))
        return s_relay_child (argv + 2);
    bf_log_init ("itest_relay", getenv ("BF_TEST_VERBOSE") ? BF_LOG_DEBUG : BF_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_uncommitted_never_published),
        cmocka_unit_test (test_gapless_across_concurrent_commits),
        cmocka_unit_test (test_heartbeat_carries_last_seq),
        cmocka_unit_test (test_late_and_lossy_subscribers_recover),
        cmocka_unit_test (test_failover),
        cmocka_unit_test (test_relay_survives_connection_loss),
        cmocka_unit_test (test_crash_points),
        cmocka_unit_test (test_relay_gauges),
        cmocka_unit_test (test_replay_bad_requests),
        cmocka_unit_test (test_replay_reply_size),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
