/*  bf_ingest — the ingest actor: settle's events in seq order, each once,
    into deliveries.

    State, in seq terms:

        cursor    last seq committed (ours or another process's), as last
                  read from or written to notify_cursor
        contig    cursor < seq <= contig are all in the window: the next
                  run to ingest
        tail      highest seq known to exist (live events, heartbeats,
                  replay's last_published_seq)

    The window is a ring of events for cursor < seq <= cursor + size,
    indexed by seq modulo its size (a slot holding another seq is empty).
    Live events and replayed ones go into it; what does not fit is dropped
    and fetched again later. Whenever contig < tail something is missing:
    the hole [contig + 1, next event held) is asked from replay, within the
    credit, one request at a time. A replayed copy replaces a live one: the
    durable outbox is the authority.

    Why one request at a time: the credit bounds what replay may send us
    unasked-for, and the next request goes out the moment the previous one
    is answered, before the events are written, so replay's reads overlap
    our transactions.

    Why no sleeping for batches: every loop turn first drains what the
    sockets hold, then ingests one contiguous run of up to `batch` events.
    Under load, events pile up while a transaction runs, so runs grow to
    `batch` by themselves; when idle an event is ingested at once.

    Why ordering survives several ingest processes: every run's transaction
    locks the cursor row and starts after the stored value, so the runs of
    all processes together commit each seq once, in order. A stored cursor
    behind ours means someone reset it: we resync to it and fetch again
    (the unique key makes the repeats harmless, G4).  */

#include "bf_ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_curve.h"
#include "bf_db.h"
#include "bf_fault.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_notify_metrics.h"
#include "bf_uuid.h"
#include "bf_wire.h"
#include "bf_text.h"
#include "bf_zmq.h"

#define S_APP_NAME "notify-ingest"

#define S_DEFAULT_CREDIT     2000
#define S_DEFAULT_BATCH      500
#define S_DEFAULT_HB_TIMEOUT 3000
/*  The window holds at least this many events, and at least two credits
    and two batches: one request answered while one run is written.  */
#define S_WINDOW_MIN ((uint64_t)1 << 16)
/*  The relay's PUB queues up to 100000; so may we while a transaction runs. */
#define S_SUB_RCVHWM 100000
/*  A frame a bit over the wire limit is counted as too big; a far bigger
    one makes libzmq drop the peer.  */
#define S_SUB_MAXMSGSIZE    (2 * (int)BF_WIRE_MAX_PAYLOAD)
#define S_DEALER_MAXMSGSIZE (4 * (int)BF_WIRE_MAX_PAYLOAD)
/*  Replay requests: unanswered for max(heartbeat timeout, this) = lost.  */
#define S_FETCH_TIMEOUT_MIN_MS 1000
#define S_BACKOFF_MIN_MS       100
#define S_BACKOFF_MAX_MS       5000
/*  Longest poll: deadlines are recomputed at least this often.  */
#define S_POLL_MAX_MS 1000
/*  Longest wait for the cursor row lock held by another process.  */
#define S_LOCK_TIMEOUT "'5s'"
/*  Rejected frames are logged at most this many times per second.  */
#define S_REJECT_LOGS_PER_S 5

/*  Prepared on every new connection.  */
static const bf_db_statement_t s_statements[] = {
    { "ingest_ensure",
      "INSERT INTO notify_cursor (consumer) VALUES ($1) ON CONFLICT (consumer) DO NOTHING", 1 },
    { "ingest_cursor", "SELECT last_seq FROM notify_cursor WHERE consumer = $1", 1 },
    //  The run's transaction, in this order.
    { "ingest_lock", "SELECT last_seq FROM notify_cursor WHERE consumer = $1 FOR UPDATE", 1 },
    //  One row per (event, channel): $2..$6 are parallel arrays. Answers
    //  the rows it inserted per channel (EMAIL, SMS, PUSH), for the metrics.
    //  A bill of a run with a release time (run.schedule) is created HELD
    //  until it (run_schedule, one row per run, found by the bill's run).
    { "ingest_insert",
      "WITH u AS (SELECT * FROM unnest ($2::bigint[], $3::text[], $4::bigint[], $5::bigint[],"
      "      $6::text[]) AS u(seq, period, bill_id, subscriber_id, channel)),"
      /*  Only for a bill that exists (db/019: no foreign key checks it). A
          run's schedule is one row per run, found by the bill's run.  */
      " m AS (SELECT u.*, s.release_at, s.at_local FROM u"
      "      JOIN bill b ON b.period = u.period AND b.bill_id = u.bill_id"
      "      LEFT JOIN run_schedule s ON s.run_id = b.run_id),"
      " ins AS (INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose,"
      "      state, not_before, hold_reason, event_seq)"
      " SELECT m.period, m.bill_id, m.subscriber_id, m.channel, $1,"
      " CASE WHEN m.release_at IS NULL THEN 'PENDING' ELSE 'HELD' END,"
      " coalesce (m.release_at, now()),"
      " CASE WHEN m.release_at IS NOT NULL"
      "      THEN 'scheduled release (' || m.at_local || ' local)' END, m.seq"
      " FROM m ON CONFLICT (bill_id, channel, purpose) DO NOTHING RETURNING channel)"
      " SELECT count(*) FILTER (WHERE channel = 'EMAIL'), count(*) FILTER (WHERE channel = 'SMS'),"
      " count(*) FILTER (WHERE channel = 'PUSH'),"
      /*  Events that name no bill: how many, and the first (seq, bill).  */
      " (SELECT count(DISTINCT seq) FROM u WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.seq = u.seq)),"
      " (SELECT min(seq) || ' (bill ' || min(bill_id) || ' of ' || min(period) || ')' FROM u"
      "  WHERE u.seq = (SELECT min(seq) FROM u WHERE NOT EXISTS"
      "                 (SELECT 1 FROM m WHERE m.seq = u.seq)))"
      " FROM ins",
      6 },
    { "ingest_advance",
      "UPDATE notify_cursor SET last_seq = $2, updated_at = now() WHERE consumer = $1", 2 },
};

/*  Channel enum values (proto/billflow.proto) to delivery.channel.  */
static const char *const s_channel_names[] = { NULL, "EMAIL", "SMS", "PUSH" };
#define S_CHANNELS 4

/*  One buffered event: what a delivery needs of it.  */
typedef struct {
    uint64_t seq; //  0: empty
    uint64_t bill_id;
    uint64_t subscriber_id;
    char period[8];   //  "YYYY-MM"
    uint8_t channels; //  bit (1 << channel value)
    bool replayed;    //  this copy came from replay
} s_slot_t;

/*  A growing text buffer for array literals.  */
typedef struct {
    bf_text_buf_t buf;
    bool failed; //  out of memory somewhere since the last reset
} s_text_t;

typedef struct {
    zsock_t *dealer;
    char *endpoint;
} s_peer_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *sub;
    zpoller_t *poller;
    s_peer_t *peers;
    size_t n_peers;
    size_t peer; //  the replay endpoint asked next
    char *conninfo;
    char *consumer;
    char *purpose;
    int credit;
    int batch;
    int hb_timeout;
    int fetch_timeout;

    PGconn *conn; //  NULL while disconnected
    int64_t reconnect_at;

    bool have_cursor; //  cursor was read at least once
    uint64_t cursor;
    uint64_t contig;
    uint64_t tail;
    s_slot_t *window;
    uint64_t wsize; //  a power of two

    int64_t process_at; //  no run before this (after a failure)
    int process_backoff;
    uint64_t suspect_end; //  a run up to here failed: go one event at a time

    char req_id[BF_UUID_LEN + 1]; //  outstanding request, "" when none
    uint64_t req_from;
    uint64_t req_end; //  exclusive
    int64_t req_deadline;
    size_t req_peer;
    int64_t fetch_at; //  no request before this (after a failure)
    int fetch_backoff;
    int64_t last_heard; //  last valid message on SUB, or last tail check

    s_text_t arrays[5]; //  seqs, periods, bill ids, subscriber ids, channels

    uint64_t ingested;
    uint64_t duplicates;
    uint64_t filled;
    uint64_t unexpected; //  decodable, but not what the socket should carry
    bf_wire_stats_t wire;
    //  Warnings about what arrives (rejected frames, events naming unknown
    //  channels): at most S_REJECT_LOGS_PER_S a second, the rest summed up.
    bf_log_limit_t warn_limit;
    bool terminated;
} s_ingest_t;

//  --------------------------------------------------------------------------
//  Helpers

static int
s_positive_or (int value, int fallback)
{
    return value > 0 ? value : fallback;
}

static int
s_double (int backoff)
{
    return backoff * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : backoff * 2;
}

static void
s_text_reset (s_text_t *self)
{
    bf_text_buf_reset (&self->buf);
    self->failed = false;
}

static void
s_text_put (s_text_t *self, const char *data, size_t len)
{
    if (!self->failed && bf_text_buf_add (&self->buf, data, len))
        self->failed = true;
}

static void
s_text_u64 (s_text_t *self, uint64_t value)
{
    char digits[24];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    s_text_put (self, digits + at, sizeof digits - at);
}

//  Splits a comma-separated list into trimmed, non-empty items.
static char **
s_split (const char *list, size_t *count)
{
    *count = 0;
    char *copy = strdup (list ? list : "");
    if (copy == NULL)
        return NULL;
    size_t cap = 1;
    for (const char *p = copy; *p; p++)
        cap += *p == ',';
    char **items = calloc (cap, sizeof *items);
    if (items == NULL) {
        free (copy);
        return NULL;
    }
    char *save = NULL;
    for (char *item = strtok_r (copy, ",", &save); item; item = strtok_r (NULL, ",", &save)) {
        while (*item == ' ' || *item == '\t')
            item++;
        size_t len = strlen (item);
        while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            item[--len] = '\0';
        if (len && (items[*count] = strdup (item)) != NULL)
            (*count)++;
    }
    free (copy);
    return items;
}

static void
s_split_free (char **items, size_t count)
{
    for (size_t i = 0; items && i < count; i++)
        free (items[i]);
    free (items);
}

//  Logs a rejected frame (limited).
static void
s_log_rejected (s_ingest_t *self, const char *where, const char *what, const char *why)
{
    bf_log_limited (&self->warn_limit, BF_LOG_WARN, "ingest: rejected %s from %s: %s", what, where,
                    why);
}

//  --------------------------------------------------------------------------
//  Window

static s_slot_t *
s_slot (s_ingest_t *self, uint64_t seq)
{
    return &self->window[seq & (self->wsize - 1)];
}

static bool
s_held (s_ingest_t *self, uint64_t seq)
{
    return seq > self->cursor && seq <= self->cursor + self->wsize
           && s_slot (self, seq)->seq == seq;
}

static void
s_advance_contig (s_ingest_t *self)
{
    if (self->contig < self->cursor)
        self->contig = self->cursor;
    while (s_held (self, self->contig + 1))
        self->contig++;
}

static void
s_window_clear (s_ingest_t *self)
{
    memset (self->window, 0, self->wsize * sizeof *self->window);
    self->contig = self->cursor;
}

static void
s_saw_tail (s_ingest_t *self, uint64_t seq)
{
    if (seq > self->tail)
        self->tail = seq;
}

//  Takes the stored cursor value: ahead of ours, the events up to it are
//  done (another process, or our own commit whose reply was lost); behind
//  ours, someone reset it, and everything after it is fetched again.
static void
s_resync (s_ingest_t *self, uint64_t stored)
{
    if (!self->have_cursor) {
        self->have_cursor = true;
        self->cursor = stored;
        s_window_clear (self);
        bf_info ("ingest: consumer '%s' resumes after seq %" PRIu64, self->consumer, stored);
    } else if (stored > self->cursor) {
        self->cursor = stored;
        s_advance_contig (self);
    } else if (stored < self->cursor) {
        bf_warn ("ingest: stored cursor of '%s' is %" PRIu64 ", behind ours (%" PRIu64
                 "); resyncing to it",
                 self->consumer, stored, self->cursor);
        self->cursor = stored;
        s_window_clear (self);
    }
    if (self->suspect_end <= self->cursor)
        self->suspect_end = 0;
}

//  Validates and buffers one event. Returns 0, or -1 when the event can
//  never be written (ids beyond bigint) — counted as rejected by the caller.
static int
s_hold (s_ingest_t *self, uint64_t seq, const Billflow__BillSettled *bill, bool replayed,
        const char *where)
{
    if (bill->bill_id > INT64_MAX || bill->subscriber_id > INT64_MAX || seq > INT64_MAX
        || strlen (bill->period) != 7) {
        s_log_rejected (self, where, "event", "ids out of range");
        return -1;
    }
    if (seq <= self->cursor) {
        self->duplicates++;
        return 0;
    }
    if (seq > self->cursor + self->wsize)
        return 0; //  no room: fetched again when the window moves
    s_slot_t *slot = s_slot (self, seq);
    if (slot->seq == seq && (slot->replayed || !replayed))
        return 0; //  already held; only replay's copy replaces a live one
    uint8_t channels = 0;
    for (size_t i = 0; i < bill->n_channels; i++) {
        int channel = (int)bill->channels[i];
        if (channel > 0 && channel < S_CHANNELS)
            channels |= (uint8_t)(1u << channel);
        else
            bf_log_limited (&self->warn_limit, BF_LOG_WARN,
                            "ingest: event seq %" PRIu64 " (bill %" PRIu64
                            ") names unknown channel %d; ignored",
                            seq, bill->bill_id, channel);
    }
    if (channels == 0)
        bf_log_limited (&self->warn_limit, BF_LOG_WARN,
                        "ingest: event seq %" PRIu64 " (bill %" PRIu64
                        ") has no known channel: no delivery",
                        seq, bill->bill_id);
    slot->seq = seq;
    slot->bill_id = bill->bill_id;
    slot->subscriber_id = bill->subscriber_id;
    memcpy (slot->period, bill->period, 7);
    slot->period[7] = '\0';
    slot->channels = channels;
    slot->replayed = replayed;
    if (seq == self->contig + 1)
        s_advance_contig (self);
    return 0;
}

//  s_hold, with the event's run, period and bill on its log lines
//  (docs/observability.md, "Logs").
static int
s_store (s_ingest_t *self, uint64_t seq, const Billflow__BillSettled *bill, bool replayed,
         const char *where)
{
    if (bill->run_id <= INT64_MAX)
        bf_log_ctx_int ("run_id", (int64_t)bill->run_id);
    bf_log_ctx_set ("period", "%s", BF_TEXT_SHOW (bill->period, 16));
    if (bill->bill_id <= INT64_MAX)
        bf_log_ctx_int ("bill_id", (int64_t)bill->bill_id);
    int rc = s_hold (self, seq, bill, replayed, where);
    bf_log_ctx_clear ();
    return rc;
}

//  --------------------------------------------------------------------------
//  Database

static void
s_disconnect (s_ingest_t *self)
{
    if (self->conn) {
        bf_warn ("ingest: database connection lost (%s); reconnecting", bf_db_last_message ());
        PQfinish (self->conn);
        self->conn = NULL;
    }
    self->reconnect_at = zclock_mono () + bf_db_retry_wait_ms (S_BACKOFF_MIN_MS);
}

//  After a failed statement: true (and disconnected) when the session is
//  gone.
static bool
s_session_lost (s_ingest_t *self)
{
    if (!bf_db_lost (self->conn))
        return false;
    s_disconnect (self);
    return true;
}

//  Creates the cursor row when missing and resyncs to its value. Returns
//  0 or -1 (logged; the session may be gone).
static int
s_read_cursor (s_ingest_t *self)
{
    const char *params[] = { self->consumer };
    PGresult *res = bf_db_query_prepared (self->conn, "ingest_ensure", 1, params, PGRES_COMMAND_OK,
                                          "ingest cursor row");
    if (res == NULL)
        return -1;
    PQclear (res);
    res = bf_db_query_prepared (self->conn, "ingest_cursor", 1, params, PGRES_TUPLES_OK,
                                "ingest cursor");
    if (res == NULL)
        return -1;
    int rc = -1;
    if (PQntuples (res) == 1) {
        s_resync (self, strtoull (PQgetvalue (res, 0, 0), NULL, 10));
        rc = 0;
    } else
        bf_error ("ingest: cursor row of '%s' vanished", self->consumer);
    PQclear (res);
    return rc;
}

//  One connection attempt; on success the cursor is read.
static void
s_connect (s_ingest_t *self)
{
    PGconn *conn = bf_db_connect (self->conninfo, S_APP_NAME, 0);
    //  A process stuck inside its run must not hold us (and our pipe) for
    //  longer than this: the wait fails and is retried.
    if (conn
        && bf_db_exec (conn, "SET lock_timeout = " S_LOCK_TIMEOUT, "ingest session") != BF_DB_OK) {
        PQfinish (conn);
        conn = NULL;
    }
    if (conn
        && bf_db_prepare_all (conn, s_statements, sizeof s_statements / sizeof s_statements[0])
               != BF_DB_OK) {
        PQfinish (conn);
        conn = NULL;
    }
    if (conn == NULL) {
        //  The process's reconnect gate paces the attempts (bf_db.h).
        self->reconnect_at = zclock_mono () + bf_db_retry_wait_ms (S_BACKOFF_MIN_MS);
        return;
    }
    self->conn = conn;
    if (s_read_cursor (self) != 0) {
        PQfinish (self->conn);
        self->conn = NULL;
        self->reconnect_at = zclock_mono () + bf_db_retry_wait_ms (S_BACKOFF_MIN_MS);
        return;
    }
    self->process_at = 0;
    bf_info ("ingest: connected to the database; cursor at seq %" PRIu64, self->cursor);
}

//  Fills the parameter arrays with the deliveries of seq from..last.
//  Returns the number of rows, or -1 when memory ran out.
static int
s_build_rows (s_ingest_t *self, uint64_t from, uint64_t last)
{
    s_text_t *seqs = &self->arrays[0], *periods = &self->arrays[1], *bills = &self->arrays[2],
             *subscribers = &self->arrays[3], *channels = &self->arrays[4];
    for (int i = 0; i < 5; i++) {
        s_text_reset (&self->arrays[i]);
        s_text_put (&self->arrays[i], "{", 1);
    }
    int rows = 0;
    for (uint64_t seq = from; seq <= last; seq++) {
        const s_slot_t *slot = s_slot (self, seq);
        for (int channel = 1; channel < S_CHANNELS; channel++) {
            if (!(slot->channels & (1u << channel)))
                continue;
            const char *sep = rows ? "," : "";
            s_text_put (seqs, sep, rows ? 1 : 0);
            s_text_u64 (seqs, seq);
            s_text_put (periods, sep, rows ? 1 : 0);
            s_text_put (periods, slot->period, 7);
            s_text_put (bills, sep, rows ? 1 : 0);
            s_text_u64 (bills, slot->bill_id);
            s_text_put (subscribers, sep, rows ? 1 : 0);
            s_text_u64 (subscribers, slot->subscriber_id);
            s_text_put (channels, sep, rows ? 1 : 0);
            s_text_put (channels, s_channel_names[channel], strlen (s_channel_names[channel]));
            rows++;
        }
    }
    bool failed = false;
    for (int i = 0; i < 5; i++) {
        s_text_put (&self->arrays[i], "}", 1);
        failed |= self->arrays[i].failed;
    }
    return failed ? -1 : rows;
}

//  After a failed run [first, last]: what to do next. why: the reason
//  when it is not the database's last error (an event naming a bill that
//  is not in the database), or NULL.
static void
s_run_failed (s_ingest_t *self, uint64_t first, uint64_t last, const char *why)
{
    if (!why && s_session_lost (self))
        return; //  reconnect, then resume from the stored cursor
    int64_t now = zclock_mono ();
    //  Transient: serialization, deadlock, ... and lock_timeout (55P03).
    if (!why
        && (bf_db_last_status () == BF_DB_RETRY || strcmp (bf_db_last_sqlstate (), "55P03") == 0)) {
        self->process_at = now + self->process_backoff;
        self->process_backoff = s_double (self->process_backoff);
        return;
    }
    char reason[600];
    if (why)
        snprintf (reason, sizeof reason, "%s", why);
    else
        snprintf (reason, sizeof reason, "SQLSTATE %s: %s", bf_db_last_sqlstate (),
                  bf_db_last_message ());
    if (last > first) {
        //  Find the event at fault: one event per transaction from here.
        bf_warn ("ingest: run of seq %" PRIu64 "..%" PRIu64 " failed (%s);"
                 " retrying one event at a time",
                 first, last, why ? why : bf_db_last_sqlstate ());
        self->suspect_end = last;
        return;
    }
    const s_slot_t *slot = s_slot (self, first);
    bf_log_field ("period", "%s", slot->period);
    bf_log_field_int ("bill_id", (int64_t)slot->bill_id);
    bf_error ("ingest: event seq %" PRIu64 " (period %s, bill %" PRIu64 ") cannot be ingested"
              " (%s); not skipping it: retrying in %d ms",
              first, slot->period, slot->bill_id, reason, self->process_backoff);
    //  Its buffered copy may be the culprit: take replay's next time.
    s_slot (self, first)->seq = 0;
    self->contig = self->cursor;
    self->suspect_end = first;
    self->process_at = now + self->process_backoff;
    self->process_backoff = s_double (self->process_backoff);
}

//  Ingests seq first..last (all held) in one transaction. Returns 0 when
//  the cursor moved (or was resynced), -1 on failure (handled).
static int
s_ingest_run (s_ingest_t *self, uint64_t first, uint64_t last)
{
    PGresult *res = NULL;
    const char *consumer[] = { self->consumer };
    if (bf_db_begin (self->conn) != BF_DB_OK)
        goto failed;
    res = bf_db_query_prepared (self->conn, "ingest_lock", 1, consumer, PGRES_TUPLES_OK,
                                "ingest cursor lock");
    if (res == NULL)
        goto failed;
    if (PQntuples (res) != 1) {
        //  The row was deleted under us: recreate it at 0 and start over.
        PQclear (res);
        bf_db_rollback (self->conn);
        bf_warn ("ingest: cursor row of '%s' is gone; recreating it", self->consumer);
        if (s_read_cursor (self) != 0 && !s_session_lost (self)) {
            self->process_at = zclock_mono () + self->process_backoff;
            self->process_backoff = s_double (self->process_backoff);
        }
        return -1;
    }
    uint64_t stored = strtoull (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    res = NULL;
    if (stored < self->cursor || stored >= last) {
        //  Reset under us, or another process ingested the whole run.
        bf_db_rollback (self->conn);
        if (stored >= last)
            self->duplicates += last - self->cursor;
        s_resync (self, stored);
        return 0;
    }
    //  Another process may have ingested the start of the run.
    uint64_t from = stored + 1 > first ? stored + 1 : first;
    int rows = s_build_rows (self, from, last);
    if (rows < 0) {
        bf_error ("ingest: out of memory for a run of %" PRIu64 " events", last - from + 1);
        bf_db_rollback (self->conn);
        self->process_at = zclock_mono () + self->process_backoff;
        self->process_backoff = s_double (self->process_backoff);
        return -1;
    }
    uint64_t created[BF_NOTIFY_METRICS_CHANNELS] = { 0 };
    if (rows > 0) {
        const char *params[] = { self->purpose,
                                 self->arrays[0].buf.data,
                                 self->arrays[1].buf.data,
                                 self->arrays[2].buf.data,
                                 self->arrays[3].buf.data,
                                 self->arrays[4].buf.data };
        res = bf_db_query_prepared (self->conn, "ingest_insert", 6, params, PGRES_TUPLES_OK,
                                    "delivery insert");
        if (res == NULL)
            goto failed;
        for (int c = 0; c < BF_NOTIFY_METRICS_CHANNELS && PQntuples (res) == 1; c++)
            created[c] = strtoull (PQgetvalue (res, 0, c), NULL, 10);
        /*  An event whose bill is not in the database is not skipped (its
            subscriber would never hear of it): the run fails as it did on
            the foreign key it replaces (db/019), and the event is retried
            alone until its bill is there.  */
        uint64_t no_bill
            = PQntuples (res) == 1 && PQnfields (res) > BF_NOTIFY_METRICS_CHANNELS + 1
                  ? strtoull (PQgetvalue (res, 0, BF_NOTIFY_METRICS_CHANNELS), NULL, 10)
                  : 0;
        if (no_bill > 0) {
            char why[256];
            snprintf (why, sizeof why,
                      "%" PRIu64 " event(s) name a bill that is not in the database, the first"
                      " seq %s",
                      no_bill, PQgetvalue (res, 0, BF_NOTIFY_METRICS_CHANNELS + 1));
            PQclear (res);
            bf_db_rollback (self->conn);
            s_run_failed (self, first, last, why);
            return -1;
        }
        PQclear (res);
    }
    char last_text[24];
    snprintf (last_text, sizeof last_text, "%" PRIu64, last);
    const char *advance[] = { self->consumer, last_text };
    res = bf_db_query_prepared (self->conn, "ingest_advance", 2, advance, PGRES_COMMAND_OK,
                                "ingest cursor advance");
    if (res == NULL)
        goto failed;
    PQclear (res);
    res = NULL;
    bf_fault ("ingest.before_commit");
    //  A failed COMMIT has an unknown outcome: the reconnect reads it back.
    if (bf_db_commit (self->conn) != BF_DB_OK)
        goto failed;
    bf_fault ("ingest.after_commit");

    uint64_t replayed = 0;
    for (uint64_t seq = from; seq <= last; seq++)
        replayed += s_slot (self, seq)->replayed;
    bf_notify_metrics_ingested (last - from + 1, replayed, created);
    self->filled += replayed;
    self->duplicates += from - first;
    self->ingested += last - from + 1;
    self->cursor = last;
    s_advance_contig (self);
    if (self->suspect_end <= last)
        self->suspect_end = 0;
    self->process_backoff = S_BACKOFF_MIN_MS;
    bf_debug ("ingest: seq %" PRIu64 "..%" PRIu64 " ingested, %d deliveries offered", from, last,
              rows);
    return 0;

failed:
    PQclear (res);
    bf_db_rollback (self->conn);
    s_run_failed (self, first, last, NULL);
    return -1;
}

//  Ingests the next contiguous run, when there is one and nothing holds it
//  back. Returns true when it did.
static bool
s_process (s_ingest_t *self)
{
    if (self->conn == NULL || !self->have_cursor || self->contig <= self->cursor
        || zclock_mono () < self->process_at)
        return false;
    uint64_t first = self->cursor + 1;
    uint64_t limit = self->suspect_end >= first ? 1 : (uint64_t)self->batch;
    uint64_t last = self->contig - self->cursor > limit ? self->cursor + limit : self->contig;
    return s_ingest_run (self, first, last) == 0;
}

//  --------------------------------------------------------------------------
//  Replay requests

//  A request failed (refused, unanswered, unsendable): next endpoint, later.
static void
s_fetch_failed (s_ingest_t *self)
{
    self->req_id[0] = '\0';
    self->peer = (self->req_peer + 1) % self->n_peers;
    self->fetch_at = zclock_mono () + self->fetch_backoff;
    self->fetch_backoff = s_double (self->fetch_backoff);
}

//  Sends ReplayFetch{from, count} to the current endpoint, or the next one
//  that takes it (DEALERs only queue to connected peers). Returns 0 or -1.
static int
s_send_fetch (s_ingest_t *self, uint64_t from, uint32_t count)
{
    Billflow__ReplayFetch fetch = BILLFLOW__REPLAY_FETCH__INIT;
    fetch.schema_version = BF_SCHEMA_VERSION;
    fetch.request_id = bf_uuid_v4 (self->req_id);
    fetch.from_seq = from;
    fetch.count = count;
    if (fetch.request_id == NULL)
        return -1;
    for (size_t tries = 0; tries < self->n_peers; tries++) {
        size_t peer = (self->peer + tries) % self->n_peers;
        zmsg_t *msg = bf_wire_encode (BF_MSG_RPL_FETCH, 0, &fetch.base);
        if (msg == NULL)
            break;
        if (zmsg_send (&msg, self->peers[peer].dealer) == 0) {
            self->req_peer = peer;
            self->peer = peer;
            self->req_from = from;
            self->req_end = from + count;
            self->req_deadline = zclock_mono () + self->fetch_timeout;
            return 0;
        }
        zmsg_destroy (&msg);
        bf_debug ("ingest: replay %s not connected", self->peers[peer].endpoint);
    }
    self->req_id[0] = '\0';
    return -1;
}

//  When the next request may go out: its deadline while one is
//  outstanding; INT64_MAX when none is wanted.
static int64_t
s_fetch_due (s_ingest_t *self)
{
    if (!self->have_cursor || self->n_peers == 0)
        return INT64_MAX;
    if (self->req_id[0])
        return self->req_deadline;
    uint64_t from = self->contig + 1;
    if (from > self->cursor + self->wsize)
        return INT64_MAX; //  the window is full: a run must move it first
    int64_t at = from <= self->tail ? 0 : self->last_heard + self->hb_timeout;
    return at > self->fetch_at ? at : self->fetch_at;
}

//  Asks replay for the first hole when there is one, or, when the stream
//  has been silent for heartbeat_timeout_ms, for whatever follows what we
//  hold (the tail check; also the catch-up at start).
static void
s_fetch (s_ingest_t *self)
{
    int64_t now = zclock_mono ();
    if (s_fetch_due (self) > now)
        return;
    if (self->req_id[0]) {
        size_t next = (self->req_peer + 1) % self->n_peers;
        bf_warn ("ingest: replay %s did not answer the request from seq %" PRIu64 " within"
                 " %d ms; asking %s in %d ms",
                 self->peers[self->req_peer].endpoint, self->req_from, self->fetch_timeout,
                 self->peers[next].endpoint, self->fetch_backoff);
        s_fetch_failed (self);
        return;
    }
    uint64_t from = self->contig + 1;
    bool check = from > self->tail;
    uint64_t count = self->cursor + self->wsize - from + 1;
    if (count > (uint64_t)self->credit)
        count = (uint64_t)self->credit;
    if (!check) {
        if (count > self->tail - from + 1)
            count = self->tail - from + 1;
        //  Only the hole: what follows it is held already.
        for (uint64_t seq = from + 1; seq < from + count; seq++)
            if (s_held (self, seq)) {
                count = seq - from;
                break;
            }
    }
    if (s_send_fetch (self, from, (uint32_t)count) != 0) {
        //  None is connected (yet): the same order again, later.
        if (self->fetch_backoff >= S_BACKOFF_MAX_MS)
            bf_warn ("ingest: no replay endpoint is connected; retrying in %d ms",
                     self->fetch_backoff);
        self->fetch_at = now + self->fetch_backoff;
        self->fetch_backoff = s_double (self->fetch_backoff);
        return;
    }
    if (check)
        self->last_heard = now;
    bf_debug ("ingest: asked %s for seq %" PRIu64 " count %" PRIu64 "%s",
              self->peers[self->req_peer].endpoint, from, count, check ? " (tail check)" : "");
}

static void
s_on_reply (s_ingest_t *self, size_t peer, zmsg_t *msg)
{
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    char err[256];
    int rc = bf_wire_recv (&msg, 0, &m, err, sizeof err);
    bf_wire_stats_count (&self->wire, rc);
    if (rc != BF_WIRE_OK) {
        s_log_rejected (self, self->peers[peer].endpoint, bf_wire_rc_name (rc), err);
        return;
    }
    const Billflow__ReplayBatch *batch = bf_wire_replay_batch (&m);
    if (batch == NULL) {
        self->unexpected++;
        s_log_rejected (self, self->peers[peer].endpoint, bf_msg_type_name (m.type),
                        "expected RPL.BATCH");
        bf_wire_msg_reset (&m);
        return;
    }
    if (self->req_id[0] == '\0' || peer != self->req_peer
        || strcmp (batch->request_id, self->req_id) != 0) {
        bf_debug ("ingest: late reply '%s' ignored", BF_TEXT_SHOW (batch->request_id, 64));
        bf_wire_msg_reset (&m);
        return;
    }
    uint64_t published = batch->last_published_seq;
    if (batch->status != BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK) {
        bool bad = batch->status == BILLFLOW__REPLAY_BATCH__STATUS__STATUS_BAD_REQUEST;
        bf_warn ("ingest: replay %s refused seq %" PRIu64 " count %" PRIu64 " (%s: %s);"
                 " retrying in %d ms",
                 self->peers[peer].endpoint, self->req_from, self->req_end - self->req_from,
                 bad ? "BAD_REQUEST" : "UNAVAILABLE", BF_TEXT_SHOW (batch->error, 200),
                 self->fetch_backoff);
        //  Asked beyond replay's tail: what told us of it was wrong.
        if (bad && self->req_from > published + 1)
            self->tail = published;
        s_fetch_failed (self);
        bf_wire_msg_reset (&m);
        return;
    }
    bool rejected = false;
    for (size_t i = 0; i < batch->n_events && !rejected; i++)
        if (s_store (self, batch->events[i]->seq, batch->events[i]->event, true,
                     self->peers[peer].endpoint)
            != 0)
            rejected = true;
    if (rejected) {
        self->unexpected++;
        s_fetch_failed (self);
        bf_wire_msg_reset (&m);
        return;
    }
    bool done;
    if (batch->n_events == 0) {
        //  Nothing at req_from: the authority on the tail has spoken.
        if (published < self->req_from)
            self->tail = published;
        done = true;
    } else {
        uint64_t next = batch->events[batch->n_events - 1]->seq + 1;
        s_saw_tail (self, next - 1);
        uint64_t end = published + 1 < self->req_end ? published + 1 : self->req_end;
        done = next >= end;
    }
    s_saw_tail (self, published);
    self->req_deadline = zclock_mono () + self->fetch_timeout;
    if (done) {
        self->req_id[0] = '\0';
        if (self->contig >= self->req_from || self->tail < self->req_from)
            self->fetch_backoff = S_BACKOFF_MIN_MS;
        else {
            bf_warn ("ingest: replay %s answered without seq %" PRIu64 "; retrying in %d ms",
                     self->peers[peer].endpoint, self->req_from, self->fetch_backoff);
            s_fetch_failed (self);
        }
    }
    bf_wire_msg_reset (&m);
}

//  --------------------------------------------------------------------------
//  Live events

static void
s_on_live (s_ingest_t *self, zmsg_t *msg)
{
    bf_wire_msg_t m = BF_WIRE_MSG_INIT;
    char err[256];
    int rc = bf_wire_recv (&msg, 0, &m, err, sizeof err);
    bf_wire_stats_count (&self->wire, rc);
    if (rc != BF_WIRE_OK) {
        s_log_rejected (self, "the event stream", bf_wire_rc_name (rc), err);
        return;
    }
    const Billflow__BillSettled *bill = bf_wire_bill_settled (&m);
    const Billflow__RelayHeartbeat *hb = bf_wire_relay_heartbeat (&m);
    if (bill && m.seq == 0) {
        self->unexpected++;
        s_log_rejected (self, "the event stream", "event", "seq is 0");
    } else if (bill) {
        self->last_heard = zclock_mono ();
        //  Before the cursor is known an event is only a hint: the catch-up
        //  from replay brings it.
        if (!self->have_cursor)
            s_saw_tail (self, m.seq);
        else if (s_store (self, m.seq, bill, false, "the event stream") == 0)
            s_saw_tail (self, m.seq);
        else
            self->unexpected++;
    } else if (hb) {
        self->last_heard = zclock_mono ();
        s_saw_tail (self, hb->last_seq);
    } else {
        self->unexpected++;
        s_log_rejected (self, "the event stream", bf_msg_type_name (m.type),
                        "not an event or heartbeat");
    }
    bf_wire_msg_reset (&m);
}

//  Reads what the sockets hold, up to a few batches' worth of live events.
static void
s_drain (s_ingest_t *self)
{
    int budget = 4 * self->batch;
    zmsg_t *msg;
    while (budget-- > 0 && (msg = zmsg_recv (self->sub)) != NULL)
        s_on_live (self, msg);
    for (size_t i = 0; i < self->n_peers; i++) {
        int replies = 64;
        while (replies-- > 0 && (msg = zmsg_recv (self->peers[i].dealer)) != NULL)
            s_on_reply (self, i, msg);
    }
}

//  --------------------------------------------------------------------------
//  Actor

static void
s_ingest_destroy (s_ingest_t **self_p)
{
    s_ingest_t *self = *self_p;
    if (self == NULL)
        return;
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->sub);
    for (size_t i = 0; self->peers && i < self->n_peers; i++) {
        zsock_destroy (&self->peers[i].dealer);
        free (self->peers[i].endpoint);
    }
    free (self->peers);
    PQfinish (self->conn);
    for (int i = 0; i < 5; i++)
        bf_text_buf_free (&self->arrays[i].buf);
    free (self->window);
    free (self->conninfo);
    free (self->consumer);
    free (self->purpose);
    free (self);
    *self_p = NULL;
}

//  Sockets created and connected. NULL (logged) on failure.
static s_ingest_t *
s_ingest_new (zsock_t *pipe, const bf_ingest_args_t *args)
{
    s_ingest_t *self = calloc (1, sizeof *self);
    if (self)
        self->warn_limit
            = BF_LOG_LIMIT_INIT ("ingest", "rejected frames", S_REJECT_LOGS_PER_S, 1000);
    if (self == NULL)
        return NULL;
    self->pipe = pipe;
    self->conninfo = strdup (args->conninfo ? args->conninfo : "");
    self->consumer = strdup (args->consumer && *args->consumer ? args->consumer : "notify");
    self->purpose = strdup (args->purpose && *args->purpose ? args->purpose : "BILL_ISSUED");
    self->credit = s_positive_or (args->replay_credit, S_DEFAULT_CREDIT);
    self->batch = s_positive_or (args->batch, S_DEFAULT_BATCH);
    self->hb_timeout = s_positive_or (args->heartbeat_timeout_ms, S_DEFAULT_HB_TIMEOUT);
    self->fetch_timeout
        = self->hb_timeout > S_FETCH_TIMEOUT_MIN_MS ? self->hb_timeout : S_FETCH_TIMEOUT_MIN_MS;
    self->process_backoff = S_BACKOFF_MIN_MS;
    self->fetch_backoff = S_BACKOFF_MIN_MS;
    self->wsize = S_WINDOW_MIN;
    while (self->wsize < 2 * (uint64_t)self->credit + 2 * (uint64_t)self->batch)
        self->wsize *= 2;
    self->window = calloc (self->wsize, sizeof *self->window);
    self->sub = zsock_new (ZMQ_SUB);
    self->poller = zpoller_new (pipe, NULL);
    if (!self->conninfo || !self->consumer || !self->purpose || !self->window || !self->sub
        || !self->poller) {
        bf_error ("ingest: out of memory at start");
        s_ingest_destroy (&self);
        return NULL;
    }
    //  Only main reacts to signals; $TERM ends the actor.
    zpoller_set_nonstop (self->poller, true);

    //  A settle gone silent is noticed, and connected to again (bf_zmq.h).
    bf_zmq_heartbeat (self->sub);
    zsock_set_rcvhwm (self->sub, S_SUB_RCVHWM);
    zsock_set_maxmsgsize (self->sub, S_SUB_MAXMSGSIZE);
    zsock_set_linger (self->sub, 0);
    zsock_set_rcvtimeo (self->sub, 0); //  reads happen after the poller said so
    zsock_set_subscribe (self->sub, bf_msg_type_name (BF_MSG_EVT_BILL));
    zsock_set_subscribe (self->sub, bf_msg_type_name (BF_MSG_EVT_HB));
    //  settle serves the stream over CURVE only (docs/settle.md).
    char err[256];
    if (args->cert && bf_curve_client (self->sub, args->cert, args->server_key, err, sizeof err))
        bf_error ("ingest: event stream: %s", err);
    size_t n = 0;
    char **endpoints = s_split (args->pub_endpoints, &n);
    for (size_t i = 0; endpoints && i < n; i++)
        if (zsock_connect (self->sub, "%s", endpoints[i]) != 0)
            bf_error ("ingest: cannot connect to event endpoint '%s': %s", endpoints[i],
                      zmq_strerror (zmq_errno ()));
    if (endpoints == NULL || n == 0)
        bf_error ("ingest: no settle event endpoint configured: only replay will be heard");
    s_split_free (endpoints, n);
    zpoller_add (self->poller, self->sub);

    endpoints = s_split (args->replay_endpoints, &n);
    self->peers = calloc (n ? n : 1, sizeof *self->peers);
    for (size_t i = 0; endpoints && self->peers && i < n; i++) {
        zsock_t *dealer = zsock_new (ZMQ_DEALER);
        if (dealer == NULL)
            break;
        //  Requests go only to a connected replay (else try the next one);
        //  a reply cut by a close is asked for again.
        zsock_set_immediate (dealer, 1);
        zsock_set_linger (dealer, 0);
        zsock_set_sndtimeo (dealer, 0);
        zsock_set_rcvtimeo (dealer, 0);
        bf_zmq_heartbeat (dealer);
        zsock_set_maxmsgsize (dealer, S_DEALER_MAXMSGSIZE);
        if (args->cert && bf_curve_client (dealer, args->cert, args->server_key, err, sizeof err))
            bf_error ("ingest: replay: %s", err);
        if (zsock_connect (dealer, "%s", endpoints[i]) != 0) {
            bf_error ("ingest: cannot connect to replay endpoint '%s': %s", endpoints[i],
                      zmq_strerror (zmq_errno ()));
            zsock_destroy (&dealer);
            continue;
        }
        self->peers[self->n_peers].dealer = dealer;
        self->peers[self->n_peers].endpoint = endpoints[i];
        endpoints[i] = NULL;
        zpoller_add (self->poller, dealer);
        self->n_peers++;
    }
    s_split_free (endpoints, n);
    if (self->n_peers == 0)
        bf_error ("ingest: no replay endpoint usable: gaps cannot be filled");
    return self;
}

static void
s_handle_pipe (s_ingest_t *self)
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
        char cursor[24], ingested[24], duplicates[24], filled[24], rejected[24];
        snprintf (cursor, sizeof cursor, "%" PRIu64, self->cursor);
        snprintf (ingested, sizeof ingested, "%" PRIu64, self->ingested);
        snprintf (duplicates, sizeof duplicates, "%" PRIu64, self->duplicates);
        snprintf (filled, sizeof filled, "%" PRIu64, self->filled);
        snprintf (rejected, sizeof rejected, "%" PRIu64, self->wire.rejected + self->unexpected);
        zstr_sendx (self->pipe, cursor, ingested, duplicates, filled, rejected, NULL);
    } else
        bf_warn ("ingest: unknown pipe command '%s'", command ? command : "");
    zstr_free (&command);
    zmsg_destroy (&msg);
}

//  Milliseconds until something is due (0: now).
static int
s_wait_ms (s_ingest_t *self)
{
    int64_t now = zclock_mono ();
    int64_t due = now + S_POLL_MAX_MS;
    if (self->conn == NULL && self->reconnect_at < due)
        due = self->reconnect_at;
    if (self->conn && self->have_cursor && self->contig > self->cursor && self->process_at < due)
        due = self->process_at;
    int64_t fetch = s_fetch_due (self);
    if (fetch < due)
        due = fetch;
    return due <= now ? 0 : (int)(due - now);
}

void
bf_ingest_actor (zsock_t *pipe, void *args)
{
    assert (args); //  programmer error: zactor_new (bf_ingest_actor, &args)
    s_ingest_t *self = s_ingest_new (pipe, (const bf_ingest_args_t *)args);
    if (self == NULL) {
        bf_actor_fail (pipe, ((const bf_ingest_args_t *)args)->status, "ingest could not start");
        char *command;
        while ((command = zstr_recv (pipe)) && !streq (command, "$TERM"))
            zstr_free (&command);
        zstr_free (&command);
        return;
    }
    //  The first tail check (the catch-up) goes out once the cursor is read.
    self->last_heard = zclock_mono () - self->hb_timeout;
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        void *which = bf_health_zpoller_wait ("ingest", self->poller, s_wait_ms (self));
        if (which == self->pipe) {
            s_handle_pipe (self);
            if (self->terminated)
                break;
        } else if (which == NULL && zpoller_terminated (self->poller) && zmq_errno () == ETERM)
            break; //  the ZeroMQ context is gone
        s_drain (self);
        if (self->conn == NULL && zclock_mono () >= self->reconnect_at)
            s_connect (self); //  one attempt per turn: the pipe stays answered
        //  The next request goes out before this run is written.
        s_fetch (self);
        s_process (self);
        s_fetch (self);
        if (self->have_cursor)
            bf_notify_metrics_ingest_lag (self->tail, self->cursor);
    }
    s_ingest_destroy (&self);
}

/*  --- arguments from the configuration -------------------------------- */

/*  notify's key pair for reading settle's event stream (served over CURVE
    only), checked with settle's public key. Returns the key pair, or NULL
    with a reason naming the setting in err.  */
static zcert_t *
s_stream_cert (const bf_config_t *config, char *err, size_t errsize)
{
    const char *server_key = bf_config_str (config, "notify.settle_server_key");
    const char *key_file = bf_config_str (config, "notify.key_file");
    const char *key_setting = "notify.key_file";
    if (!*key_file) {
        key_file = bf_config_str (config, "control.client_key_file");
        key_setting = "control.client_key_file";
    }
    if (!*server_key) {
        bf_err_set (err, errsize,
                    "notify.settle_server_key is required: settle serves its event stream over"
                    " CURVE only (docs/notify.md)");
        return NULL;
    }
    if (!bf_curve_key_parse (server_key, NULL)) {
        bf_err_set (err, errsize, "notify.settle_server_key is not 40 Z85 characters");
        return NULL;
    }
    if (!*key_file) {
        bf_err_set (err, errsize,
                    "notify.key_file (or control.client_key_file) is required to read settle's"
                    " event stream (docs/notify.md)");
        return NULL;
    }
    char why[512];
    zcert_t *cert = bf_curve_load_secret (key_file, why, sizeof why);
    if (!cert)
        bf_err_set (err, errsize, "%s: %s", key_setting, why);
    return cert;
}

int
bf_ingest_args_from_config (bf_ingest_args_t *args, const bf_config_t *config, char *err,
                            size_t errsize)
{
    memset (args, 0, sizeof *args);
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->pub_endpoints = bf_config_str (config, "notify.settle_pub_endpoints");
    args->replay_endpoints = bf_config_str (config, "notify.settle_replay_endpoints");
    args->consumer = bf_config_str (config, "notify.consumer");
    args->replay_credit = (int)bf_config_int (config, "notify.replay_credit");
    args->batch = (int)bf_config_int (config, "notify.ingest_batch");
    args->heartbeat_timeout_ms = (int)bf_config_int (config, "notify.ingest_silence_ms");
    args->server_key = bf_config_str (config, "notify.settle_server_key");
    args->cert = s_stream_cert (config, err, errsize);
    return args->cert ? 0 : -1;
}
