/*  bf_dispatch — claim, hold, render, send, record (see bf_dispatch.h).

    A claim is a row of dispatch_claim (db/016_dispatch_claim.sql); the
    delivery row is written once, when its attempt ends. Outcomes are
    recorded in batches: rows go by COPY into a temporary table, then one
    statement each writes the attempts, moves the deliveries to their new
    states and deletes their claims (only while the claims are still this
    dispatcher's), and inserts the SMS fallbacks of emails that failed for
    good.  */

#include <stdlib.h>
#include <string.h>

#include "bf_backoff.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_dbfence.h"
#include "bf_dispatch.h"
#include "bf_fault.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_notify_metrics.h"
#include "bf_pii.h"
#include "bf_render.h"
#include "bf_sender_config.h"
#include "bf_text.h"

#define S_FLUSH_ROWS         500
#define S_FLUSH_MS           50
#define S_PAUSE_CHECK_MS     1000
#define S_TEMPLATE_RELOAD_MS 60000

static const char *s_sent_as_names[] = { "EMAIL", "SMS", "LMS", "PUSH" };
static const char *s_channel_names[] = { "EMAIL", "SMS", "PUSH" };
static const char *s_outcome_names[]
    = { "DELIVERED", "DUPLICATE", "TRANSIENT", "PERMANENT", "THROTTLED", "UNKNOWN" };

/*  A claimed delivery on its way.  */
typedef struct s_job_t {
    int64_t id;
    int channel; /* 0 EMAIL, 1 SMS, 2 PUSH */
    int attempt;
    int attempt_base;        /* attempts that do not count against the budget: before the
                                operator's last retry, and failures in a provider outage */
    bool possibly_delivered; /* an earlier attempt ended UNKNOWN */
    int64_t due_ms;          /* not_before before the claim: its place in the claim order */
    bool was_pending;        /* PENDING before the claim (never tried, or retried by an operator) */
    int64_t created_ms;      /* created_at, ms since the epoch: its age counts from there */
    char due[48];            /* due_ms exactly, as the database wrote it (microseconds) */
    bf_provider_t provider;
    bf_send_request_t request; /* strings owned by the job */
    bool stored;               /* request is the content kept from an earlier attempt */
    int template_version;      /* of the rendered request; 0 when stored (kept as recorded) */
    struct s_job_t *next;
    struct s_job_t *all_prev, *all_next; /* every live job: queued or in flight */
} s_job_t;

/*  One row for the record flush.  */
typedef struct {
    int64_t id;
    int attempt;
    const char *sent_as; /* NULL: no attempt (held, or failed before sending) */
    char provider[16];
    int64_t started_ms, finished_ms;
    const char *outcome;
    int status_code;
    char error[256];
    char message_id[128];
    const char *state; /* DELIVERED, FAILED, RETRY, HELD */
    int64_t not_before_ms;
    char hold_reason[64];
    bool fallback;
    bool outage;  /* a transient failure while the breaker was not closed: not counted */
    char due[48]; /* not "": not_before is this, exactly (its place before the claim) */
    /*  The content the attempt sent, to keep in delivery_content (owned;
        c_sent_as NULL when there is nothing to keep).  */
    const char *c_sent_as;
    char *c_title, *c_text, *c_html;
    int64_t c_date;
    int template_version; /* delivery.template_version; 0 = leave as it is */
} s_record_t;

/*  A dispatcher that looked dead by its session (d_dead).  */
#define S_SUSPECTS 64
typedef struct {
    char owner[128];
    int pid;
    int64_t since;
} s_suspect_t;

typedef struct {
    zsock_t *pipe;
    PGconn *conn;
    bf_sender_t *sender;
    bf_pii_t *pii;
    bf_render_t *render;
    bf_dispatch_args_t args;
    char id[96], conninfo[1024], purpose[32];
    bool paused;
    int64_t next_pause_check, next_template_reload, last_flush, next_renew;
    /*  owner: the dispatcher's name in dispatcher and dispatch_claim, its
        id and this start's time, so a restarted process (same
        service.instance) never holds its predecessor's claims.  */
    char owner[128];
    /*  The claim order's cursor (d_claim_after): the last (not_before,
        bill_id) claimed; "" = from the head; cursor_ready: the channels it
        was claimed for (a claim for other channels starts from the head:
        the cursor has passed their due notices). next_head: when to start
        from the head again; next_takeover: when to look for dead
        dispatchers' claims.  */
    char cursor_due[48], cursor_bill[24], cursor_ready[32];
    int64_t next_head, next_takeover;
    /*  Dispatchers whose session lock was seen free, and since when (mono):
        taken over once it has been free for takeover_grace_ms with the same
        session (s_query_takeover).  */
    s_suspect_t suspects[S_SUSPECTS];
    int nsuspects;
    /*  Every job not yet ended (queued or in flight), and whether the
        connection was lost since the last start: claims made by a
        statement whose answer was lost are found on reconnect.  */
    s_job_t *jobs;
    bool reconnecting;
    s_job_t *queue[BF_PROVIDER_COUNT]; /* rendered, waiting for the sender */
    s_job_t *queue_tail[BF_PROVIDER_COUNT];
    int queued;
    s_record_t *records;
    size_t nrecords, records_cap;
    unsigned jitter_state;
    int64_t stat_claimed, stat_delivered, stat_retried, stat_failed, stat_held;
} s_dispatch_t;

static int64_t
s_now (const s_dispatch_t *self)
{
    return zclock_time () + self->args.clock_offset_ms;
}

int64_t
bf_dispatch_backoff_ms (int attempts, int base_ms, int max_ms, unsigned jitter)
{
    return bf_backoff_ms (attempts, base_ms, max_ms, jitter);
}

bf_dispatch_next_t
bf_dispatch_next (const bf_dispatch_failure_t *f)
{
    bf_dispatch_next_t next = { "FAILED", f->now_ms, false, false, false };
    bool attempts_left = f->counted < f->max_attempts;
    /*  A notice the subscriber may already have (this or an earlier attempt
        ended UNKNOWN) never gets an SMS fallback.  */
    bool may_have_it = f->possibly_delivered || f->outcome == BF_OUTCOME_UNKNOWN;
    /*  An outage's failure (bf_outage.h: the breaker is not closed, or the
        provider has delivered nothing since the attempt started) is
        recorded like any attempt, not counted against the budget, and due
        again at its place in the claim order (its old not_before; now,
        should that be later: a new notice's not_before is on the
        database's clock, which notify.clock may be behind); the breaker
        or the provider's back-off holds it back until the provider
        answers. Not for ever: once the notice is outage_window_ms old,
        it fails (README.md "Retries and provider outages").  */
    if (f->outage && (f->outcome == BF_OUTCOME_TRANSIENT || f->outcome == BF_OUTCOME_THROTTLED)) {
        if (f->outage_window_ms > 0 && f->age_ms >= f->outage_window_ms) {
            next.expired = true;
            next.fallback = f->email && !may_have_it;
            return next;
        }
        next.state = "RETRY";
        next.outage = true;
        next.not_before_ms = f->due_ms < f->now_ms ? f->due_ms : f->now_ms;
        return next;
    }
    switch (f->outcome) {
        case BF_OUTCOME_DELIVERED:
        case BF_OUTCOME_DUPLICATE:
            next.state = "DELIVERED";
            break;
        case BF_OUTCOME_PERMANENT:
            next.fallback = f->email && !may_have_it;
            break;
        case BF_OUTCOME_UNKNOWN:
            /*  Possibly delivered (docs/notify.md "possibly delivered"):
                resent once, when notify.email_unknown_retry_ms has passed,
                with the same Message-ID, if attempts are left; never a fast
                retry, never a fallback, never a second resend (a server that
                is still too slow has likely taken both). 0 = never resent:
                FAILED.  */
            if (f->unknown_retry_ms > 0 && attempts_left && !f->possibly_delivered) {
                next.state = "RETRY";
                next.not_before_ms = f->now_ms + f->unknown_retry_ms;
            }
            break;
        case BF_OUTCOME_TRANSIENT:
        case BF_OUTCOME_THROTTLED:
            if (!attempts_left) {
                next.fallback = f->email && !may_have_it;
                break;
            }
            int64_t wait = bf_dispatch_backoff_ms (f->counted, f->backoff_base_ms,
                                                   f->backoff_max_ms, f->jitter);
            if (f->outcome == BF_OUTCOME_THROTTLED && f->retry_after_ms > wait)
                wait = f->retry_after_ms;
            next.state = "RETRY";
            next.not_before_ms = f->now_ms + wait;
            break;
    }
    return next;
}

static unsigned
s_jitter (s_dispatch_t *self)
{
    self->jitter_state = self->jitter_state * 1103515245u + 12345u;
    return (self->jitter_state >> 8) & 0xffff;
}

/*  A new job (the delivery's claim is held), on the list of live jobs.
    NULL when out of memory.  */
static s_job_t *
s_job_new (s_dispatch_t *self)
{
    s_job_t *job = calloc (1, sizeof *job);
    if (job) {
        job->all_next = self->jobs;
        if (self->jobs)
            self->jobs->all_prev = job;
        self->jobs = job;
    }
    return job;
}

static void
s_job_free (s_dispatch_t *self, s_job_t *job)
{
    if (job->all_prev)
        job->all_prev->all_next = job->all_next;
    else
        self->jobs = job->all_next;
    if (job->all_next)
        job->all_next->all_prev = job->all_prev;
    free ((char *)job->request.to);
    free ((char *)job->request.title);
    free ((char *)job->request.text);
    free ((char *)job->request.html);
    free (job);
}

static s_record_t *
s_record_new (s_dispatch_t *self, int64_t id, int attempt)
{
    if (self->nrecords == self->records_cap) {
        size_t cap = self->records_cap ? self->records_cap * 2 : 1024;
        s_record_t *grown = realloc (self->records, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->records = grown;
        self->records_cap = cap;
    }
    s_record_t *r = &self->records[self->nrecords++];
    memset (r, 0, sizeof *r);
    r->id = id;
    r->attempt = attempt;
    return r;
}

/*  Frees the records' kept content and empties the list.  */
static void
s_records_clear (s_dispatch_t *self)
{
    for (size_t i = 0; i < self->nrecords; i++) {
        free (self->records[i].c_title);
        free (self->records[i].c_text);
        free (self->records[i].c_html);
    }
    self->nrecords = 0;
}

/*  A delivery that ends without a send attempt (cannot render, cannot
    decrypt): FAILED, and emails fall back to SMS.  */
static void
s_fail_unsent (s_dispatch_t *self, int64_t id, int channel, int attempt, const char *why)
{
    s_record_t *r = s_record_new (self, id, attempt);
    if (!r)
        return;
    r->state = "FAILED";
    r->fallback = channel == 0;
    snprintf (r->error, sizeof r->error, "%s", why);
    r->not_before_ms = s_now (self);
    self->stat_failed++;
    bf_log_field_int ("delivery_id", id);
    bf_log_field ("channel", "%s", s_channel_names[channel]);
    bf_warn ("dispatch %s: delivery %lld failed before sending: %s", self->id, (long long)id, why);
}

/*  --- database ------------------------------------------------------------ */

/*  The first key of every dispatcher's session lock, (class, backend pid);
    db/018's dispatcher_session_alive names the same number.  */
#define S_SESSION_LOCK_CLASS "1650878052"

/*  d_claimed's columns, in order.  */
typedef enum {
    S_CLAIM_ID,
    S_CLAIM_CHANNEL,
    S_CLAIM_ATTEMPTS, /* the number of the attempt this claim makes */
    S_CLAIM_ATTEMPT_BASE,
    S_CLAIM_WAS_UNKNOWN, /* an earlier attempt ended UNKNOWN */
    S_CLAIM_DUE_MS,      /* not_before, ms since the epoch */
    S_CLAIM_WAS_PENDING, /* PENDING, and not taken over from a dead dispatcher */
    S_CLAIM_DUE,         /* not_before, as text (exact) */
    S_CLAIM_CREATED_MS,  /* created_at, ms since the epoch */
    S_CLAIM_BILL_ID,     /* with S_CLAIM_DUE: the claim order's key (the cursor) */
    S_CLAIM_TAKEN_OVER,  /* claimed by a dispatcher that died */
} s_claim_column_t;

/*  The due deliveries, in claim order (index delivery_due), that nobody
    has claimed; SENDING: a lease written by notify before db/016, run out.
    $1 owner, $2 now (ms), $3 purpose, $4 channels, $5 limit; d_claim_after
    also $6, $7: the cursor, the last (not_before, bill_id) claimed.  */
#define S_DUE_WHERE                                                                                \
    " WHERE d.state IN ('PENDING', 'RETRY', 'HELD', 'SENDING') AND d.purpose = $3"                 \
    " AND d.channel = ANY ($4::text[])"                                                            \
    " AND (d.state = 'PENDING' OR d.not_before <= to_timestamp ($2::bigint / 1000.0))"             \
    " AND NOT EXISTS (SELECT 1 FROM dispatch_claim c WHERE c.delivery_id = d.id)"
/*  A claim is a row of dispatch_claim; the delivery row is not written
    (docs/notify.md "Claims and takeover"). Its primary key decides between
    two dispatchers: ON CONFLICT skips a delivery claimed meanwhile. The
    statement's snapshot may be older than a claim that was made, ended
    and deleted meanwhile: d_claimed reads the deliveries again.  */
/*  Dispatcher w looks dead: its lease ran out, or its session's lock is
    free (db/018; the grace is the caller's).  */
#define S_DEAD_DISPATCHER                                                                          \
    " (w.alive_until < now ()"                                                                     \
    "  OR (w.session_pid IS NOT NULL AND NOT dispatcher_session_alive (w.session_pid)))"
#define S_CLAIM(after)                                                                             \
    "INSERT INTO dispatch_claim (delivery_id, owner, period, channel, fallback)"                   \
    " SELECT d.id, $1, d.period, d.channel, d.fallback_of IS NOT NULL"                             \
    " FROM delivery d" S_DUE_WHERE after " ORDER BY d.not_before, d.bill_id LIMIT $5"              \
    " ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id"

static const bf_db_statement_t s_statements[] = {
    { "d_claim", S_CLAIM (""), 5 },
    /*  From the cursor on: the claims before it (in flight, still PENDING
        in delivery_due) are not walked again at every claim. >=: a bill's
        notices of other channels share its key.  */
    { "d_claim_after", S_CLAIM (" AND (d.not_before, d.bill_id) >= ($6::timestamptz, $7::bigint)"),
      7 },
    /*  The claims of dispatcher $3, dead (its row ran out: dead, or away
        from the database longer than a lease; or its session ended,
        db/018), become this one's, marked taken over. Its death is checked
        again here: a dispatcher that reconnected meanwhile holds a new
        session's lock. FOR UPDATE SKIP LOCKED: one taker each; a claim
        another taker moved meanwhile no longer joins its old owner's row
        when it is checked again, and is skipped.  */
    { "d_takeover",
      "UPDATE dispatch_claim c SET owner = $1, taken_over = true, claimed_at = now ()"
      " FROM (SELECT x.delivery_id FROM dispatcher w JOIN dispatch_claim x ON x.owner = w.owner"
      "       WHERE w.owner = $3 AND w.owner <> $1 AND" S_DEAD_DISPATCHER
      "       LIMIT $2 FOR UPDATE OF x SKIP LOCKED) t"
      " WHERE c.delivery_id = t.delivery_id RETURNING c.delivery_id",
      3 },
    /*  The other dispatchers that hold claims and look dead: their lease
        ran out, or their session's lock is free (db/018). Columns: owner,
        session pid (0: none), lease run out. Which of them d_takeover
        takes is s_query_takeover's choice (the grace).  */
    { "d_dead",
      "SELECT w.owner, coalesce (w.session_pid, 0), w.alive_until < now () FROM dispatcher w"
      " WHERE w.owner <> $1 AND" S_DEAD_DISPATCHER
      " AND EXISTS (SELECT 1 FROM dispatch_claim c WHERE c.owner = w.owner)"
      " ORDER BY w.owner",
      1 },
    /*  This dispatcher's session lock (db/018): held while the session
        lives, freed by the server when it ends.  */
    { "d_session", "SELECT pg_try_advisory_lock (" S_SESSION_LOCK_CLASS ", pg_backend_pid ())", 0 },
    /*  Dead dispatchers that hold nothing any more are forgotten.  */
    { "d_forget",
      "DELETE FROM dispatcher w WHERE w.alive_until < now () - interval '1 minute'"
      " AND NOT EXISTS (SELECT 1 FROM dispatch_claim c WHERE c.owner = w.owner)",
      0 },
    /*  The deliveries of this dispatcher's new claims ($2), read in a new
        snapshot: a claim whose delivery is no longer due (another
        dispatcher ended an attempt of it after d_claim's snapshot was
        taken) is deleted, the others are returned in claim order
        (s_claim_column_t). A taken-over claim may have been sent by the
        dead dispatcher without a record: its attempt counts, as a
        re-claimed expired SENDING delivery's always did (its attempts
        already count it).  */
    { "d_claimed",
      "WITH x AS (SELECT d.*, c.taken_over,"
      "   d.state IN ('PENDING', 'RETRY', 'HELD', 'SENDING') AND d.purpose = $4"
      "   AND (c.taken_over OR d.state = 'PENDING'"
      "        OR d.not_before <= to_timestamp ($3::bigint / 1000.0)) AS ok"
      "   FROM dispatch_claim c JOIN delivery d ON d.id = c.delivery_id"
      "   WHERE c.delivery_id = ANY ($2::bigint[]) AND c.owner = $1),"
      " gone AS (DELETE FROM dispatch_claim c USING x"
      "   WHERE c.delivery_id = x.id AND c.owner = $1 AND NOT x.ok)"
      " SELECT x.id, x.channel,"
      "  x.attempts + 1 + x.taken_over::int, x.attempt_base,"
      "  EXISTS (SELECT 1 FROM delivery_attempt a WHERE a.delivery_id = x.id"
      "          AND a.outcome = 'UNKNOWN'),"
      "  floor (extract (epoch FROM x.not_before) * 1000)::bigint,"
      "  x.state = 'PENDING' AND NOT x.taken_over, x.not_before::text,"
      "  floor (extract (epoch FROM x.created_at) * 1000)::bigint, x.bill_id, x.taken_over"
      " FROM x WHERE x.ok ORDER BY x.not_before, x.bill_id",
      4 },
    /*  This dispatcher is alive for another lease (the database's clock),
        and while its session (its backend's pid, whose lock d_session
        took) lives: one row, whatever it holds. A live dispatcher keeps its
        claims however long their sends take; a dead one's go after the
        grace once its session has ended, or after a lease.  */
    { "d_alive",
      "INSERT INTO dispatcher (owner, alive_until, session_pid)"
      " VALUES ($1, now () + $2::int * interval '1 millisecond', pg_backend_pid ())"
      " ON CONFLICT (owner) DO UPDATE SET alive_until = excluded.alive_until,"
      " session_pid = excluded.session_pid",
      2 },
    /*  This dispatcher's claims (after a lost connection, s_reconcile).  */
    { "d_mine", "SELECT delivery_id FROM dispatch_claim WHERE owner = $1", 1 },
    /*  Stopping: what it still holds is taken over at once.  */
    { "d_retire",
      "UPDATE dispatcher SET alive_until = now () - interval '1 millisecond'"
      " WHERE owner = $1",
      1 },
    /*  Everything a message needs, for a batch of deliveries (columns:
        s_ctx_column_t); c.*: the content an earlier attempt sent, when kept.  */
    /*  Its columns, in this order, are bf_render_ctx_column_t (bf_render.h);
        d_lines' are bf_render_line_column_t, d_templates' bf_render_template_column_t.  */
    { "d_context",
      "SELECT d.id, s.name, s.email_enc, s.phone_enc, s.push_token_enc,"
      " to_char (s.quiet_start, 'HH24:MI'), to_char (s.quiet_end, 'HH24:MI'),"
      " b.total, b.due_date, b.line_count, d.period, d.bill_id, d.subscriber_id, x.ord,"
      " c.sent_as, c.title, c.body, c.body_html, c.date_s"
      " FROM unnest ($1::bigint[]) WITH ORDINALITY x (id, ord) JOIN delivery d ON d.id = x.id"
      " JOIN subscriber s ON s.id = d.subscriber_id"
      " JOIN bill b ON b.period = d.period AND b.bill_id = d.bill_id"
      " LEFT JOIN delivery_content c ON c.delivery_id = d.id",
      1 },
    /*  The lines of each bill once, however many of its deliveries (EMAIL
        and SMS of one subscriber, say) the batch holds: keyed by the bill
        (period, subscriber), never merged per subscriber.  */
    { "d_lines",
      "SELECT l.period, l.subscriber_id, l.code, l.amount, l.label"
      " FROM (SELECT DISTINCT p, s FROM unnest ($1::text[], $2::bigint[]) u (p, s)) x"
      " JOIN bill_line l ON l.period = x.p AND l.subscriber_id = x.s"
      " ORDER BY l.period, l.subscriber_id, l.line_no",
      2 },
    { "d_paused", "SELECT paused FROM dispatch_state", 0 },
    { "d_templates",
      "SELECT channel, version, coalesce (subject, ''), body, coalesce (body_html, ''),"
      " coalesce (short_body, '') FROM template WHERE purpose = $1 AND active",
      1 },
    { "d_attempts",
      "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider, started_at,"
      " finished_at, outcome, status_code, error, provider_message_id)"
      " SELECT id, attempt, sent_as, provider, to_timestamp (started_ms / 1000.0),"
      " to_timestamp (finished_ms / 1000.0), outcome, status_code, error, message_id"
      " FROM dispatch_result WHERE sent_as IS NOT NULL"
      " ON CONFLICT (delivery_id, attempt_no) DO NOTHING",
      0 },
    /*  The first attempt's content wins: later attempts send it again.  */
    { "d_contents",
      "INSERT INTO delivery_content (delivery_id, sent_as, title, body, body_html, date_s)"
      " SELECT id, c_sent_as, c_title, c_body, c_html, c_date FROM dispatch_result"
      " WHERE c_sent_as IS NOT NULL ON CONFLICT (delivery_id) DO NOTHING",
      0 },
    /*  The attempts' ends, for the claims this dispatcher still holds:
        their claims are deleted (and locked so: a takeover waits, then
        finds them gone; by primary key: $2, the records' ids) in the
        statement that writes the deliveries; a
        claim taken over meanwhile is not written (its attempt is, by
        d_attempts). A record without a state hands its claim back and
        leaves the delivery as it was (pause, an open breaker).  */
    { "d_states",
      "WITH mine AS (DELETE FROM dispatch_claim c WHERE c.delivery_id = ANY ($2::bigint[])"
      "              AND c.owner = $1 RETURNING c.delivery_id)"
      " UPDATE delivery d SET state = r.state,"
      /*  r.due: back to its place, to the microsecond (ms would reorder
          it among notices created in the same millisecond).  */
      " not_before = coalesce (r.due, to_timestamp (r.not_before_ms / 1000.0)),"
      " lease_owner = NULL, lease_until = NULL,"
      /*  The attempt this claim made counts, unless it was held (no
          attempt was made).  */
      " attempts = CASE WHEN r.state = 'HELD' OR (r.state = 'PENDING' AND r.sent_as IS NULL)"
      "  THEN r.attempt - 1 ELSE r.attempt END,"
      /*  An outage's failure is not counted against the retry budget
          (README.md "Retries and provider outages").  */
      " attempt_base = CASE WHEN r.outage THEN d.attempt_base + 1 ELSE d.attempt_base END,"
      " hold_reason = r.hold_reason,"
      /*  The current state's error only: a delivery that is DELIVERED (or
          HELD, or waiting again) shows no error of an earlier attempt;
          delivery_attempt keeps each attempt's error.  */
      " last_error = r.error,"
      " provider_message_id = coalesce (r.message_id, d.provider_message_id),"
      " template_version = coalesce (r.template_version, d.template_version),"
      " final_at = CASE WHEN r.state IN ('DELIVERED', 'FAILED') THEN now () END,"
      " updated_at = now ()"
      " FROM dispatch_result r JOIN mine m ON m.delivery_id = r.id"
      " WHERE d.id = r.id AND r.state IS NOT NULL",
      2 },
    { "d_fallbacks",
      "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, fallback_of)"
      " SELECT d.period, d.bill_id, d.subscriber_id, 'SMS', d.purpose, d.id"
      " FROM dispatch_result r JOIN delivery d ON d.id = r.id"
      " WHERE r.fallback AND d.state = 'FAILED' AND d.channel = 'EMAIL'"
      " ON CONFLICT (bill_id, channel, purpose) DO NOTHING",
      0 },
};

static void
s_disconnect (s_dispatch_t *self)
{
    PQfinish (self->conn);
    self->conn = NULL;
    self->reconnecting = true;
    self->cursor_due[0] = 0;
}

/*  After a lost connection: the claims of this dispatcher that it holds no
    job or record for (a claim whose answer the connection took, a claim
    whose context could not be read) are handed back by the next flush,
    so that no claim stays with a live dispatcher that does not know it.
    Returns 0, or -1 on a database error (logged).  */
static int
s_reconcile (s_dispatch_t *self)
{
    const char *params[] = { self->owner };
    PGresult *res = bf_db_query_prepared (self->conn, "d_mine", 1, params, PGRES_TUPLES_OK,
                                          "reading this dispatcher's claims");
    if (!res)
        return -1;
    int released = 0;
    for (int i = 0; i < PQntuples (res); i++) {
        int64_t id = strtoll (PQgetvalue (res, i, 0), NULL, 10);
        bool held = false;
        for (const s_job_t *job = self->jobs; job && !held; job = job->all_next)
            held = job->id == id;
        for (size_t k = 0; k < self->nrecords && !held; k++)
            held = self->records[k].id == id;
        if (!held && s_record_new (self, id, 0))
            released++;
    }
    PQclear (res);
    if (released > 0)
        bf_warn ("dispatch %s: %d claim(s) made before the connection was lost and not taken on:"
                 " handed back",
                 self->id, released);
    self->reconnecting = false;
    /*  A database outage stopped every dispatcher's renewals at once: the
        others get a lease to reconnect and renew before this one takes
        their claims over (docs/notify.md "The database away").  */
    self->next_takeover = zclock_mono () + self->args.lease_ms;
    return 0;
}

/*  Keeps this dispatcher alive for another lease (d_alive): its claims stay
    its own however long their sends take. Returns 0, or -1 on a database
    error (logged).  */
static int
s_alive (s_dispatch_t *self)
{
    char lease[16];
    snprintf (lease, sizeof lease, "%d", self->args.lease_ms);
    const char *params[] = { self->owner, lease };
    PGresult *res = bf_db_query_prepared (self->conn, "d_alive", 2, params, PGRES_COMMAND_OK,
                                          "renewing the dispatcher's lease");
    PQclear (res);
    if (res)
        self->next_renew = zclock_mono () + self->args.lease_ms / 3;
    return res ? 0 : -1;
}

/*  Takes this session's lock (d_session, db/018) and fences the
    connection: cut from PostgreSQL, a statement fails after lease / 2 of
    silence, before the server ends the session (about a lease) and frees
    the lock that tells the others this dispatcher is alive. Returns 0, or
    -1 on a database error (logged).  */
static int
s_lock_session (s_dispatch_t *self)
{
    bf_db_fence (self->conn, self->args.lease_ms / 2);
    PGresult *res = bf_db_query_prepared (self->conn, "d_session", 0, NULL, PGRES_TUPLES_OK,
                                          "taking the dispatcher's session lock");
    if (!res)
        return -1;
    /*  Only this session's pid is in the key: always free. Held by another
        session means a second connection of this backend, which cannot be;
        the lease still keeps the claims.  */
    if (PQntuples (res) != 1 || PQgetvalue (res, 0, 0)[0] != 't')
        bf_error ("dispatch %s: the session lock was not granted: a crash of this process will be"
                  " noticed after a lease, not at once",
                  self->id);
    PQclear (res);
    return 0;
}

static int
s_load_templates (s_dispatch_t *self)
{
    const char *params[] = { self->purpose };
    PGresult *res = bf_db_query_prepared (self->conn, "d_templates", 1, params, PGRES_TUPLES_OK,
                                          "loading templates");
    int rc = res ? bf_render_load (self->render, res) : -1;
    PQclear (res);
    self->next_template_reload = zclock_mono () + S_TEMPLATE_RELOAD_MS;
    return rc;
}

static bool
s_connect (s_dispatch_t *self)
{
    if (self->conn)
        return true;
    self->conn = bf_db_connect (self->conninfo, "notify-dispatch", 0);
    /*  The temporary table first: statements that name it are checked
        against it when they are prepared.  */
    if (self->conn
        && bf_db_exec (self->conn,
                       "CREATE TEMP TABLE dispatch_result (id bigint, attempt int, sent_as text,"
                       " provider text, started_ms bigint, finished_ms bigint, outcome text,"
                       " status_code int, error text, message_id text, state text,"
                       " not_before_ms bigint, hold_reason text, fallback boolean,"
                       " c_sent_as text, c_title text, c_body text, c_html text, c_date bigint,"
                       " template_version int, outage boolean, due timestamptz)"
                       " ON COMMIT DELETE ROWS",
                       "creating dispatch_result")
               == BF_DB_OK
        /*  The claims must read delivery_due in order from the cursor and
            stop at the batch (LIMIT). With statistics older than the queue
            (a large ingest, autovacuum not caught up) the planner takes
            the cursor's range for a few rows, reads all of it through a
            bitmap and sorts it, for every batch: 64,000 buffers for 500
            claims at a backlog of 32,000 (bench/notify.sh PG_EXPLAIN=1).
            This session's other statements read by key, so the index
            scans they get instead cost them nothing (issue 17).  */
        && bf_db_exec (self->conn, "SET enable_bitmapscan = off", "dispatcher session") == BF_DB_OK
        && bf_db_prepare_all (self->conn, s_statements,
                              sizeof s_statements / sizeof s_statements[0])
               == BF_DB_OK
        && s_lock_session (self) == 0 && s_load_templates (self) == 0 && s_alive (self) == 0
        && (!self->reconnecting || s_reconcile (self) == 0))
        return true;
    s_disconnect (self);
    return false;
}

/*  The ids of the collected records as an array literal, "{1,2}". NULL
    when out of memory; the caller frees it.  */
static char *
s_record_ids (const s_dispatch_t *self)
{
    size_t cap = self->nrecords * 21 + 3, len = 0;
    char *text = malloc (cap);
    if (!text)
        return NULL;
    text[len++] = '{';
    for (size_t i = 0; i < self->nrecords; i++)
        len += (size_t)snprintf (text + len, cap - len, "%s%lld", i ? "," : "",
                                 (long long)self->records[i].id);
    snprintf (text + len, cap - len, "}");
    return text;
}

/*  Writes the collected records in one transaction. Records are kept when
    it fails (the database is away); they are written on reconnect, and the
    lease check keeps a late write from overriding a newer owner.  */
static int
s_flush (s_dispatch_t *self)
{
    self->last_flush = zclock_mono ();
    if (self->nrecords == 0 || !s_connect (self))
        return self->nrecords == 0 ? 0 : -1;
    int rc = bf_db_begin (self->conn);
    bf_copy_t *copy
        = rc == BF_DB_OK ? bf_copy_begin (self->conn, "COPY dispatch_result FROM STDIN") : NULL;
    if (rc == BF_DB_OK && !copy)
        rc = BF_DB_FAIL;
    for (size_t i = 0; copy && i < self->nrecords && rc == BF_DB_OK; i++) {
        const s_record_t *r = &self->records[i];
        bf_copy_int (copy, r->id);
        bf_copy_int (copy, r->attempt);
        bf_copy_str (copy, r->sent_as);
        bf_copy_str (copy, r->sent_as ? r->provider : NULL);
        bf_copy_int (copy, r->started_ms);
        bf_copy_int (copy, r->finished_ms);
        bf_copy_str (copy, r->outcome);
        if (r->sent_as)
            bf_copy_int (copy, r->status_code);
        else
            bf_copy_null (copy);
        bf_copy_str (copy, r->error[0] ? r->error : NULL);
        bf_copy_str (copy, r->message_id[0] ? r->message_id : NULL);
        bf_copy_str (copy, r->state);
        bf_copy_int (copy, r->not_before_ms);
        bf_copy_str (copy, r->hold_reason[0] ? r->hold_reason : NULL);
        bf_copy_str (copy, r->fallback ? "t" : "f");
        bf_copy_str (copy, r->c_sent_as);
        bf_copy_str (copy, r->c_title);
        bf_copy_str (copy, r->c_text);
        bf_copy_str (copy, r->c_html);
        bf_copy_int (copy, r->c_date);
        if (r->template_version > 0)
            bf_copy_int (copy, r->template_version);
        else
            bf_copy_null (copy);
        bf_copy_str (copy, r->outage ? "t" : "f");
        bf_copy_str (copy, r->due[0] ? r->due : NULL);
        rc = bf_copy_row_end (copy);
    }
    if (copy)
        rc = bf_copy_end (&copy, rc == BF_DB_OK ? NULL : "flush failed");
    char *ids = s_record_ids (self);
    const char *owner[] = { self->owner, ids };
    PGresult *res = NULL;
    if (!ids)
        rc = BF_DB_FAIL;
    if (rc == BF_DB_OK) {
        res = bf_db_query_prepared (self->conn, "d_attempts", 0, NULL, PGRES_COMMAND_OK,
                                    "recording attempts");
        rc = res ? BF_DB_OK : bf_db_last_status ();
        PQclear (res);
    }
    if (rc == BF_DB_OK) {
        res = bf_db_query_prepared (self->conn, "d_contents", 0, NULL, PGRES_COMMAND_OK,
                                    "keeping sent content");
        rc = res ? BF_DB_OK : bf_db_last_status ();
        PQclear (res);
    }
    if (rc == BF_DB_OK) {
        res = bf_db_query_prepared (self->conn, "d_states", 2, owner, PGRES_COMMAND_OK,
                                    "recording delivery states");
        rc = res ? BF_DB_OK : bf_db_last_status ();
        size_t ended = 0;
        for (size_t i = 0; i < self->nrecords; i++)
            ended += self->records[i].state != NULL;
        if (res && (size_t)atol (PQcmdTuples (res)) < ended)
            bf_warn ("dispatch %s: %zu outcome(s) recorded as attempts only: their lease had "
                     "passed to another dispatcher",
                     self->id, ended - (size_t)atol (PQcmdTuples (res)));
        PQclear (res);
    }
    if (rc == BF_DB_OK) {
        res = bf_db_query_prepared (self->conn, "d_fallbacks", 0, NULL, PGRES_COMMAND_OK,
                                    "adding SMS fallbacks");
        rc = res ? BF_DB_OK : bf_db_last_status ();
        bf_notify_metrics_fallbacks_inserted (res ? strtoull (PQcmdTuples (res), NULL, 10) : 0);
        PQclear (res);
    }
    if (rc == BF_DB_OK) {
        bf_fault ("dispatch.before_record_commit");
        rc = bf_db_commit (self->conn);
    }
    free (ids);
    bf_notify_metrics_flush_done (rc == BF_DB_OK);
    if (rc != BF_DB_OK) {
        bf_db_rollback (self->conn);
        if (PQstatus (self->conn) != CONNECTION_OK)
            s_disconnect (self);
        return -1;
    }
    s_records_clear (self);
    return 0;
}

/*  --- claim, hold, render --------------------------------------------------- */

static void
s_enqueue (s_dispatch_t *self, s_job_t *job)
{
    job->next = NULL;
    if (self->queue_tail[job->provider])
        self->queue_tail[job->provider]->next = job;
    else
        self->queue[job->provider] = job;
    self->queue_tail[job->provider] = job;
    self->queued++;
}

static int
s_channel_index (const char *name)
{
    return !strcmp (name, "EMAIL") ? 0 : !strcmp (name, "SMS") ? 1 : 2;
}

/*  Decrypts a bytea text column ("\x...") sealed under field for subject.  */
static bool
s_open_contact (s_dispatch_t *self, const PGresult *res, int row, int col, const char *field,
                int64_t subject, char *out, size_t outsize)
{
    if (PQgetisnull (res, row, col))
        return false;
    size_t len = 0;
    unsigned char *sealed
        = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, row, col), &len);
    if (!sealed)
        return false;
    long n = bf_pii_open (self->pii, field, (uint64_t)subject, sealed, len, out, outsize);
    PQfreemem (sealed);
    return n >= 0;
}

/*  The request an earlier attempt of the delivery in ctx row sent, kept in
    delivery_content (d_context's BF_RENDER_CTX_SENT_AS..BF_RENDER_CTX_DATE_S), to the
    contact to: every attempt after the first sends exactly those bytes (docs/notify.md,
    "What a subscriber receives"). Returns 0 when filled, 1 when nothing
    was kept for this channel (render), -1 when out of memory.  */
static int
s_stored_content (const PGresult *ctx, int row, int channel, const char *to,
                  bf_send_request_t *request)
{
    if (PQgetisnull (ctx, row, BF_RENDER_CTX_SENT_AS))
        return 1;
    const char *as = PQgetvalue (ctx, row, BF_RENDER_CTX_SENT_AS);
    bf_send_kind_t kind;
    if (channel == 0 && !strcmp (as, "EMAIL"))
        kind = BF_SEND_EMAIL;
    else if (channel == 1 && !strcmp (as, "SMS"))
        kind = BF_SEND_SMS;
    else if (channel == 1 && !strcmp (as, "LMS"))
        kind = BF_SEND_LMS;
    else if (channel == 2 && !strcmp (as, "PUSH"))
        kind = BF_SEND_PUSH;
    else
        return 1; /* not this channel's: cannot happen through d_contents */
    memset (request, 0, sizeof *request);
    request->kind = kind;
    request->to = strdup (to);
    request->title = PQgetisnull (ctx, row, BF_RENDER_CTX_TITLE)
                         ? NULL
                         : strdup (PQgetvalue (ctx, row, BF_RENDER_CTX_TITLE));
    request->text = strdup (PQgetvalue (ctx, row, BF_RENDER_CTX_BODY));
    request->html = PQgetisnull (ctx, row, BF_RENDER_CTX_BODY_HTML)
                        ? NULL
                        : strdup (PQgetvalue (ctx, row, BF_RENDER_CTX_BODY_HTML));
    request->date_s = strtoll (PQgetvalue (ctx, row, BF_RENDER_CTX_DATE_S), NULL, 10);
    if (!request->to || !request->text
        || (!PQgetisnull (ctx, row, BF_RENDER_CTX_TITLE) && !request->title)
        || (!PQgetisnull (ctx, row, BF_RENDER_CTX_BODY_HTML) && !request->html)) {
        free ((char *)request->to);
        free ((char *)request->title);
        free ((char *)request->text);
        free ((char *)request->html);
        memset (request, 0, sizeof *request);
        return -1;
    }
    return 0;
}

/*  The channels whose provider takes work now, as a text[] literal
    ("{EMAIL,PUSH}"; room for all three in ready[32]). false when none: a
    delivery must not sit behind an open breaker or a full pipe until its
    lease runs out.  */
static bool
s_ready_channels (s_dispatch_t *self, char ready[32])
{
    static const char *channels[] = { "EMAIL", "SMS", "PUSH" };
    strcpy (ready, "{");
    for (int p = 0; p < BF_PROVIDER_COUNT; p++)
        if (bf_sender_ready (self->sender, (bf_provider_t)p) && !self->queue[p]) {
            if (ready[1])
                strcat (ready, ",");
            strcat (ready, channels[p]);
        }
    strcat (ready, "}");
    return ready[1] && ready[1] != '}';
}

/*  Appends column col of every row of res (none when res is NULL) to the
    array literal being built in *text ("{a,b" without the closing brace,
    *len its length, *cap its size; room is always left for the brace).
    Returns false when out of memory.  */
static bool
s_literal_append (char **text, size_t *len, size_t *cap, const PGresult *res, int col)
{
    for (int i = 0; res && i < PQntuples (res); i++) {
        const char *value = PQgetvalue (res, i, col);
        size_t need = *len + strlen (value) + 3;
        if (need > *cap) {
            size_t grown_cap = need * 2;
            char *grown = realloc (*text, grown_cap);
            if (!grown)
                return false;
            *text = grown;
            *cap = grown_cap;
        }
        *len += (size_t)snprintf (*text + *len, *cap - *len, "%s%s", *len > 1 ? "," : "", value);
    }
    return true;
}

/*  An array literal being built: "{" (s_literal_append, s_literal_end).
    NULL when out of memory.  */
static char *
s_literal_begin (size_t *len, size_t *cap)
{
    *len = 1;
    *cap = 64;
    char *text = malloc (*cap);
    if (text)
        strcpy (text, "{");
    return text;
}

static void
s_literal_end (char *text, size_t len)
{
    strcpy (text + len, "}");
}

/*  Column col of every row of res as a text[] literal, "{a,b,c}". NULL
    when out of memory; the caller frees it.  */
static char *
s_array_literal (const PGresult *res, int col)
{
    size_t len, cap;
    char *text = s_literal_begin (&len, &cap);
    if (text && !s_literal_append (&text, &len, &cap, res, col)) {
        free (text);
        return NULL;
    }
    if (text)
        s_literal_end (text, len);
    return text;
}

/*  Whether dispatcher row i of dead (d_dead) is to be taken over now: its
    lease ran out, or its session lock has been free for the grace with the
    same session (a dispatcher whose connection merely broke takes a new
    session, and a new lock, well within it). Records the suspect in
    next[*n] (when there is room) with the time it was first seen free.  */
static bool
s_dead_now (const s_dispatch_t *self, const PGresult *dead, int i, int64_t mono, s_suspect_t *next,
            int *n)
{
    const char *owner = PQgetvalue (dead, i, 0);
    int pid = atoi (PQgetvalue (dead, i, 1));
    if (PQgetvalue (dead, i, 2)[0] == 't')
        return true;
    int64_t since = mono;
    for (int k = 0; k < self->nsuspects; k++)
        if (self->suspects[k].pid == pid && !strcmp (self->suspects[k].owner, owner))
            since = self->suspects[k].since;
    if (*n < S_SUSPECTS) {
        snprintf (next[*n].owner, sizeof next[*n].owner, "%s", owner);
        next[*n].pid = pid;
        next[*n].since = since;
        (*n)++;
    }
    return mono - since >= self->args.takeover_grace_ms;
}

/*  The claims of dead dispatchers, up to n, become this one's
    (d_dead, then d_takeover for each dead one), and the dead that hold
    nothing are forgotten. The ids taken are appended to *ids (an array
    literal being built, s_literal_append). Returns how many were taken, or
    -1 on a database failure (logged).  */
static int
s_query_takeover (s_dispatch_t *self, int n, char **ids, size_t *len, size_t *cap)
{
    const char *mine[] = { self->owner };
    PGresult *dead = bf_db_query_prepared (self->conn, "d_dead", 1, mine, PGRES_TUPLES_OK,
                                           "looking for dead dispatchers");
    if (!dead)
        return -1;
    s_suspect_t next[S_SUSPECTS];
    int nnext = 0, taken = 0, rc = 0;
    int64_t mono = zclock_mono ();
    /*  Every row goes through s_dead_now, also past n: a suspect keeps the
        time it was first seen.  */
    for (int i = 0; i < PQntuples (dead) && rc == 0; i++) {
        if (!s_dead_now (self, dead, i, mono, next, &nnext) || taken >= n)
            continue;
        char limit[16];
        snprintf (limit, sizeof limit, "%d", n - taken);
        const char *params[] = { self->owner, limit, PQgetvalue (dead, i, 0) };
        PGresult *res = bf_db_query_prepared (self->conn, "d_takeover", 3, params, PGRES_TUPLES_OK,
                                              "taking over dead dispatchers' claims");
        if (!res) {
            rc = -1;
            break;
        }
        if (PQntuples (res) > 0) {
            bool expired = PQgetvalue (dead, i, 2)[0] == 't';
            bf_warn ("dispatch %s: took over %d claim(s) of %s, %s", self->id, PQntuples (res),
                     PQgetvalue (dead, i, 0),
                     expired ? "which stopped renewing its lease" : "whose database session ended");
            bf_notify_metrics_taken_over (PQntuples (res));
            taken += PQntuples (res);
        }
        if (!s_literal_append (ids, len, cap, res, 0))
            rc = -1;
        PQclear (res);
    }
    PQclear (dead);
    memcpy (self->suspects, next, sizeof next[0] * (size_t)nnext);
    self->nsuspects = nnext;
    if (rc != 0)
        return -1;
    PGresult *forgot = bf_db_query_prepared (self->conn, "d_forget", 0, NULL, PGRES_COMMAND_OK,
                                             "forgetting dead dispatchers");
    PQclear (forgot);
    return forgot ? taken : -1;
}

/*  d_claim / d_claim_after: up to n due deliveries of the ready channels,
    claimed by this dispatcher, from the cursor on when there is one. NULL
    on a database failure (logged).  */
static PGresult *
s_query_claim (s_dispatch_t *self, int n, const char *ready)
{
    char now[24], limit[16];
    snprintf (now, sizeof now, "%lld", (long long)s_now (self));
    snprintf (limit, sizeof limit, "%d", n);
    const char *params[]
        = { self->owner, now, self->purpose, ready, limit, self->cursor_due, self->cursor_bill };
    bool after = self->cursor_due[0] != 0;
    return bf_db_query_prepared (self->conn, after ? "d_claim_after" : "d_claim", after ? 7 : 5,
                                 params, PGRES_TUPLES_OK, "claiming deliveries");
}

/*  d_claimed: the deliveries of the claims ids ("{1,2}"), read again;
    claims whose delivery is no longer due are deleted. NULL on a database
    failure (logged).  */
static PGresult *
s_query_claimed (s_dispatch_t *self, const char *ids)
{
    char now[24];
    snprintf (now, sizeof now, "%lld", (long long)s_now (self));
    const char *params[] = { self->owner, ids, now, self->purpose };
    return bf_db_query_prepared (self->conn, "d_claimed", 4, params, PGRES_TUPLES_OK,
                                 "reading claimed deliveries");
}

/*  Claims: the dead dispatchers' claims (once a second), then up to n due
    deliveries (from the cursor, or from the head once a second and when
    the cursor's scan comes back short), all read again by d_claimed. Sets
    *scanned to what the claim statement returned; NULL on a database
    failure.  */
static PGresult *
s_claim_rows (s_dispatch_t *self, int n, int *scanned)
{
    char ready[32];
    *scanned = 0;
    int64_t mono = zclock_mono ();
    PGresult *fresh = NULL, *rows = NULL;
    size_t len, cap;
    char *ids = s_literal_begin (&len, &cap);
    if (!ids)
        return NULL;
    if (mono >= self->next_takeover) {
        self->next_takeover = mono + 1000;
        int taken = s_query_takeover (self, n, &ids, &len, &cap);
        if (taken < 0) {
            free (ids);
            return NULL;
        }
        n -= taken;
    }
    if (mono >= self->next_head) {
        self->cursor_due[0] = 0;
        self->next_head = mono + 1000;
    }
    bool ready_any = n > 0 && s_ready_channels (self, ready);
    if (ready_any && strcmp (ready, self->cursor_ready) != 0)
        self->cursor_due[0] = 0;
    bool after = self->cursor_due[0] != 0;
    if (ready_any) {
        fresh = s_query_claim (self, n, ready);
        if (!fresh) {
            free (ids);
            return NULL;
        }
        *scanned = PQntuples (fresh);
        /*  Short from the cursor: the next claim starts from the head; at
            once when the cursor found nothing.  */
        if (after && *scanned < n)
            self->cursor_due[0] = 0;
        if (after && *scanned == 0) {
            PQclear (fresh);
            fresh = s_query_claim (self, n, ready);
            if (!fresh) {
                free (ids);
                return NULL;
            }
            *scanned = PQntuples (fresh);
        }
    }
    if (s_literal_append (&ids, &len, &cap, fresh, 0) && len > 1) {
        s_literal_end (ids, len);
        rows = s_query_claimed (self, ids);
    } else if (len == 1)
        rows = PQmakeEmptyPGresult (NULL, PGRES_TUPLES_OK);
    free (ids);
    PQclear (fresh);
    /*  The cursor: the last new claim in claim order.  */
    for (int i = rows ? PQntuples (rows) - 1 : -1; i >= 0; i--)
        if (PQgetvalue (rows, i, S_CLAIM_TAKEN_OVER)[0] != 't') {
            if (*scanned >= n) {
                snprintf (self->cursor_due, sizeof self->cursor_due, "%s",
                          PQgetvalue (rows, i, S_CLAIM_DUE));
                snprintf (self->cursor_bill, sizeof self->cursor_bill, "%s",
                          PQgetvalue (rows, i, S_CLAIM_BILL_ID));
                snprintf (self->cursor_ready, sizeof self->cursor_ready, "%s", ready);
            }
            break;
        }
    return rows;
}

/*  d_context: the context of every claimed delivery, in one query; the ids
    go in claimed order (BF_RENDER_CTX_ORD).  */
static PGresult *
s_query_context (s_dispatch_t *self, const PGresult *claimed)
{
    char *ids = s_array_literal (claimed, S_CLAIM_ID);
    if (!ids)
        return NULL;
    const char *params[] = { ids };
    PGresult *ctx = bf_db_query_prepared (self->conn, "d_context", 1, params, PGRES_TUPLES_OK,
                                          "reading delivery context");
    free (ids);
    return ctx;
}

/*  d_lines: the bill lines of the context rows' bills, for the itemised
    statement (each bill read once).  */
static PGresult *
s_query_lines (s_dispatch_t *self, const PGresult *ctx)
{
    char *periods = s_array_literal (ctx, BF_RENDER_CTX_PERIOD);
    char *subs = s_array_literal (ctx, BF_RENDER_CTX_SUBSCRIBER_ID);
    PGresult *lines = NULL;
    if (periods && subs) {
        const char *params[] = { periods, subs };
        lines = bf_db_query_prepared (self->conn, "d_lines", 2, params, PGRES_TUPLES_OK,
                                      "reading bill lines");
    }
    free (periods);
    free (subs);
    return lines;
}

/*  For each of count claimed rows, its ctx row (-1 when it has none).
    NULL when out of memory; the caller frees it.  */
static int *
s_context_rows (const PGresult *ctx, int count)
{
    int *row_of = malloc ((size_t)count * sizeof *row_of);
    if (!row_of)
        return NULL;
    for (int i = 0; i < count; i++)
        row_of[i] = -1;
    for (int r = 0; r < PQntuples (ctx); r++) {
        long ord = atol (PQgetvalue (ctx, r, BF_RENDER_CTX_ORD));
        if (ord >= 1 && ord <= count)
            row_of[ord - 1] = r;
    }
    return row_of;
}

/*  Holds delivery id (of channel) for quiet hours, the system's window and the
    subscriber's own (ctx row), when now_ms is inside one: true when held.  */
static bool
s_hold_quiet (s_dispatch_t *self, const PGresult *ctx, int row, int64_t id, int channel,
              int attempt, int64_t now_ms)
{
    bf_quiet_window_t windows[2] = { self->args.system_quiet, { 0, 0 } };
    if (!PQgetisnull (ctx, row, BF_RENDER_CTX_QUIET_START))
        bf_quiet_parse (PQgetvalue (ctx, row, BF_RENDER_CTX_QUIET_START),
                        PQgetvalue (ctx, row, BF_RENDER_CTX_QUIET_END), &windows[1]);
    int64_t release = bf_quiet_release_ms (now_ms, self->args.utc_offset_min, windows, 2);
    if (!release)
        return false;
    s_record_t *r = s_record_new (self, id, attempt);
    if (r) {
        r->state = "HELD";
        r->not_before_ms = release;
        /*  Named after the subscriber's own window when it alone would hold
            the notice now.  */
        bool own = bf_quiet_release_ms (now_ms, self->args.utc_offset_min, &windows[1], 1);
        snprintf (r->hold_reason, sizeof r->hold_reason, "quiet hours (%s)",
                  own ? "subscriber" : "system");
        self->stat_held++;
        bf_notify_metrics_quiet_held (channel);
    }
    return true;
}

/*  Fills job's request to the contact to: the content an earlier attempt
    kept, or a fresh rendering (ctx row, bill lines). Returns NULL, or why
    not ("out of memory", the renderer's reason in err).  */
static const char *
s_job_content (s_dispatch_t *self, s_job_t *job, const PGresult *ctx, int row,
               const PGresult *lines, const char *to, int64_t now_ms, char *err, size_t errsize)
{
    int made = s_stored_content (ctx, row, job->channel, to, &job->request);
    if (made == 0) {
        job->stored = true;
        return NULL;
    }
    if (made < 0)
        return "out of memory";
    if (bf_render_message (self->render, job->channel, ctx, row, lines, to, &job->request, err,
                           errsize)
        != 0)
        return err;
    job->template_version = bf_render_version (self->render, job->channel);
    if (job->channel == 0)
        job->request.date_s = now_ms / 1000; /* the email's Date, kept with its content */
    return NULL;
}

/*  Takes claimed row i on: fails it (no context, no contact, no content),
    holds it for quiet hours, or queues it for the sender.  */
static void
s_take (s_dispatch_t *self, const PGresult *claimed, int i, const PGresult *ctx, int row,
        const PGresult *lines, int64_t now_ms)
{
    int64_t id = strtoll (PQgetvalue (claimed, i, S_CLAIM_ID), NULL, 10);
    int channel = s_channel_index (PQgetvalue (claimed, i, S_CLAIM_CHANNEL));
    int attempt = atoi (PQgetvalue (claimed, i, S_CLAIM_ATTEMPTS));
    if (row < 0) {
        s_fail_unsent (self, id, channel, attempt, "delivery context not found");
        return;
    }
    if (s_hold_quiet (self, ctx, row, id, channel, attempt, now_ms))
        return;

    /*  The contact is decrypted here and nowhere else.  */
    char to[600];
    static const char *fields[] = { "email", "phone", "push_token" };
    static const int cols[]
        = { BF_RENDER_CTX_EMAIL_ENC, BF_RENDER_CTX_PHONE_ENC, BF_RENDER_CTX_PUSH_TOKEN_ENC };
    int64_t subscriber = strtoll (PQgetvalue (ctx, row, BF_RENDER_CTX_SUBSCRIBER_ID), NULL, 10);
    if (!s_open_contact (self, ctx, row, cols[channel], fields[channel], subscriber, to,
                         sizeof to)) {
        s_fail_unsent (self, id, channel, attempt,
                       "the contact cannot be decrypted (key changed or data damaged)");
        return;
    }
    s_job_t *job = s_job_new (self);
    if (!job) {
        s_fail_unsent (self, id, channel, attempt, "out of memory");
        return;
    }
    job->id = id;
    job->channel = channel;
    job->attempt = attempt;
    job->attempt_base = atoi (PQgetvalue (claimed, i, S_CLAIM_ATTEMPT_BASE));
    job->possibly_delivered = PQgetvalue (claimed, i, S_CLAIM_WAS_UNKNOWN)[0] == 't';
    job->due_ms = strtoll (PQgetvalue (claimed, i, S_CLAIM_DUE_MS), NULL, 10);
    job->was_pending = PQgetvalue (claimed, i, S_CLAIM_WAS_PENDING)[0] == 't';
    snprintf (job->due, sizeof job->due, "%s", PQgetvalue (claimed, i, S_CLAIM_DUE));
    job->created_ms = strtoll (PQgetvalue (claimed, i, S_CLAIM_CREATED_MS), NULL, 10);
    char err[256];
    const char *why = s_job_content (self, job, ctx, row, lines, to, now_ms, err, sizeof err);
    if (why) {
        s_job_free (self, job);
        s_fail_unsent (self, id, channel, attempt, why);
        return;
    }
    job->request.delivery_id = id;
    job->request.attempt = attempt;
    job->request.cookie = job;
    job->provider = channel == 0   ? BF_PROVIDER_EMAIL
                    : channel == 1 ? BF_PROVIDER_SMS
                                   : BF_PROVIDER_PUSH;
    s_enqueue (self, job);
}

/*  Claims up to n due deliveries (and dead dispatchers' claims), holds or
    renders them. Returns how many the claim statement returned (0: nothing
    due), or -1 on a database failure.  */
static int
s_claim (s_dispatch_t *self, int n)
{
    int scanned = 0;
    PGresult *claimed = s_claim_rows (self, n, &scanned);
    PGresult *ctx = NULL, *lines = NULL;
    int *row_of = NULL;
    int count = claimed ? PQntuples (claimed) : -1;
    if (count <= 0)
        goto cleanup;
    self->stat_claimed += count;
    bool needs_lines = bf_render_needs_lines (self->render);
    ctx = s_query_context (self, claimed);
    if (ctx && needs_lines)
        lines = s_query_lines (self, ctx);
    if (ctx && (lines || !needs_lines))
        row_of = s_context_rows (ctx, count);
    if (!row_of) {
        count = -1;
        goto cleanup;
    }
    int64_t now_ms = s_now (self);
    for (int i = 0; i < count; i++)
        s_take (self, claimed, i, ctx, row_of[i], lines, now_ms);
cleanup:
    free (row_of);
    PQclear (claimed);
    PQclear (ctx);
    PQclear (lines);
    return count < 0 ? -1 : count > scanned ? count : scanned;
}

/*  --- sending ---------------------------------------------------------------- */

/*  Every line about job, the sender's included, carries it
    (docs/observability.md, "Logs"); bf_log_ctx_clear after.  */
static void
s_log_job (const s_job_t *job, const char *provider)
{
    bf_log_ctx_int ("delivery_id", job->id);
    bf_log_ctx_set ("channel", "%s", s_channel_names[job->channel]);
    bf_log_ctx_set ("provider", "%s", provider);
}

static void
s_submit_ready (s_dispatch_t *self)
{
    for (int p = 0; p < BF_PROVIDER_COUNT; p++)
        while (self->queue[p] && bf_sender_ready (self->sender, (bf_provider_t)p)) {
            s_job_t *job = self->queue[p];
            s_log_job (job, bf_sender_provider_name ((bf_provider_t)p));
            int rc = bf_sender_submit (self->sender, &job->request);
            bf_log_ctx_clear ();
            if (rc != 0)
                break;
            self->queue[p] = job->next;
            if (!self->queue[p])
                self->queue_tail[p] = NULL;
            self->queued--;
        }
}

/*  Hands provider p's claimed deliveries that have not gone out back: a
    record without a state, whose flush deletes the claim and leaves the
    delivery as it was before the claim (its state, its place in the claim
    order, its hold reason, its attempts). Returns how many.  */
static int
s_release_provider (s_dispatch_t *self, int p)
{
    int released = 0;
    while (self->queue[p]) {
        s_job_t *job = self->queue[p];
        self->queue[p] = job->next;
        self->queued--;
        s_record_new (self, job->id, job->attempt);
        s_job_free (self, job);
        released++;
    }
    self->queue_tail[p] = NULL;
    return released;
}

/*  Dispatch paused: claimed deliveries that have not gone out are handed
    back as they were (resume sends them). In-flight sends finish.  */
static void
s_release_queued (s_dispatch_t *self, const char *why)
{
    int n = 0;
    for (int p = 0; p < BF_PROVIDER_COUNT; p++)
        n += s_release_provider (self, p);
    if (n > 0)
        bf_info ("dispatch %s: %s: %d claimed notice(s) handed back", self->id, why, n);
}

/*  A provider whose breaker is open: its claimed deliveries that have not
    gone out are handed back as they were, in their place in the claim
    order, so that the outage spends none of their retries and the drain
    after it goes in bill order (README.md "Retries and provider outages").
    One line per release.  */
static void
s_release_blocked (s_dispatch_t *self)
{
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        if (!self->queue[p]
            || bf_sender_breaker (self->sender, (bf_provider_t)p, NULL) != BF_BREAKER_OPEN)
            continue;
        int n = s_release_provider (self, p);
        bf_info ("dispatch %s: %s breaker open: %d claimed notice(s) back to the table in their"
                 " place",
                 self->id, bf_sender_provider_name ((bf_provider_t)p), n);
    }
}

/*  An attempt that did not end DELIVERED may be followed by another (a
    retry, a later policy resend, an operator's retry): the record takes the
    job's content so that the flush keeps it in delivery_content, and every
    later attempt sends exactly it. Content that came from there already is
    not written again. Only the contact is not kept. Every record also names
    the template version the rendered content came from
    (delivery.template_version; unchanged when the content was kept).  */
static void
s_keep_content (s_record_t *r, s_job_t *job, bf_send_kind_t kind)
{
    if (r)
        r->template_version = job->template_version; /* the version that went out */
    if (!r || job->stored || !r->state || !strcmp (r->state, "DELIVERED"))
        return;
    r->c_sent_as = s_sent_as_names[kind];
    r->c_title = (char *)job->request.title;
    r->c_text = (char *)job->request.text;
    r->c_html = (char *)job->request.html;
    r->c_date = job->request.date_s;
    job->request.title = job->request.text = job->request.html = NULL;
}

static void
s_on_done (void *context, const bf_send_request_t *request, const bf_send_result_t *result)
{
    s_dispatch_t *self = context;
    s_job_t *job = request->cookie;
    s_log_job (job, result->provider_name ? result->provider_name : "unknown");
    bf_fault ("dispatch.after_send");
    bf_notify_metrics_attempt (job->channel, result);
    s_record_t *r = s_record_new (self, job->id, job->attempt);
    if (r) {
        r->sent_as = s_sent_as_names[request->kind];
        snprintf (r->provider, sizeof r->provider, "%s",
                  result->provider_name ? result->provider_name : "unknown");
        r->started_ms = result->started_ms;
        r->finished_ms = result->finished_ms;
        r->outcome = s_outcome_names[result->outcome];
        r->status_code = result->status_code;
        snprintf (r->error, sizeof r->error, "%s", result->error);
        snprintf (r->message_id, sizeof r->message_id, "%s", result->provider_message_id);
        int64_t now = s_now (self);
        r->not_before_ms = now;
        if (result->outcome == BF_OUTCOME_DELIVERED || result->outcome == BF_OUTCOME_DUPLICATE) {
            r->state = "DELIVERED";
            self->stat_delivered++;
        } else {
            bf_dispatch_failure_t failure = {
                .outcome = result->outcome,
                .outage = result->outage,
                .counted = job->attempt - job->attempt_base,
                .max_attempts = self->args.max_attempts,
                .email = job->channel == 0,
                .possibly_delivered = job->possibly_delivered,
                .due_ms = job->due_ms,
                .age_ms = result->finished_ms - job->created_ms,
                .outage_window_ms = self->args.outage_window_ms,
                .now_ms = now,
                .backoff_base_ms = self->args.backoff_base_ms,
                .backoff_max_ms = self->args.backoff_max_ms,
                .jitter = s_jitter (self),
                .retry_after_ms = result->retry_after_ms,
                .unknown_retry_ms = self->args.unknown_retry_ms,
            };
            bf_dispatch_next_t next = bf_dispatch_next (&failure);
            r->state = next.state;
            r->not_before_ms = next.not_before_ms;
            r->outage = next.outage;
            if (next.outage && next.not_before_ms == job->due_ms)
                snprintf (r->due, sizeof r->due, "%s", job->due);
            r->fallback = next.fallback;
            if (next.state[0] != 'F')
                self->stat_retried++;
            else
                self->stat_failed++;
            if (next.outage)
                bf_notify_metrics_outage_attempt (
                    job->channel,
                    bf_sender_breaker (self->sender, job->provider, NULL) != BF_BREAKER_CLOSED);
            if (next.expired) {
                bf_notify_metrics_outage_expired (job->channel);
                char error[sizeof r->error];
                snprintf (error, sizeof error, "provider down beyond notify.outage_window_ms: %s",
                          BF_TEXT_SHOW (result->error, 180));
                memcpy (r->error, error, sizeof error);
                bf_warn ("dispatch %s: delivery %lld attempt %d: the provider is still down and the"
                         " notice is older than notify.outage_window_ms (%lld ms): FAILED%s",
                         self->id, (long long)job->id, job->attempt,
                         (long long)self->args.outage_window_ms,
                         next.fallback ? ", falls back to SMS" : "");
            }
            if (result->outcome == BF_OUTCOME_UNKNOWN) {
                snprintf (r->error, sizeof r->error, "possibly delivered: %s",
                          BF_TEXT_SHOW (result->error, 200));
                bf_warn ("dispatch %s: delivery %lld attempt %d possibly delivered (%s); %s",
                         self->id, (long long)job->id, job->attempt, result->error,
                         next.state[0] == 'R' ? "resent after notify.email_unknown_retry_ms"
                                              : "not resent");
            }
        }
    }
    s_keep_content (r, job, request->kind);
    s_job_free (self, job);
    bf_log_ctx_clear ();
}

/*  --- actor -------------------------------------------------------------------- */

static bool
s_on_pipe (s_dispatch_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command)
        return false;
    bool go_on = !streq (command, "$TERM");
    if (streq (command, "STATS")) {
        char v[6][24];
        int inflight = 0;
        for (int p = 0; p < BF_PROVIDER_COUNT; p++)
            inflight += bf_sender_inflight (self->sender, (bf_provider_t)p);
        snprintf (v[0], sizeof v[0], "%lld", (long long)self->stat_claimed);
        snprintf (v[1], sizeof v[1], "%lld", (long long)self->stat_delivered);
        snprintf (v[2], sizeof v[2], "%lld", (long long)self->stat_retried);
        snprintf (v[3], sizeof v[3], "%lld", (long long)self->stat_failed);
        snprintf (v[4], sizeof v[4], "%lld", (long long)self->stat_held);
        snprintf (v[5], sizeof v[5], "%d", inflight + self->queued);
        zstr_sendx (self->pipe, v[0], v[1], v[2], v[3], v[4], v[5], NULL);
    }
    free (command);
    return go_on;
}

static int
s_capacity (s_dispatch_t *self)
{
    int free_slots = 0;
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        int room = self->args.sender.concurrency[p] - bf_sender_inflight (self->sender, p);
        free_slots += room > 0 ? room : 0;
    }
    return free_slots - self->queued;
}

/*  Sends in flight, over every provider.  */
static int
s_inflight (s_dispatch_t *self)
{
    int inflight = 0;
    for (int p = 0; p < BF_PROVIDER_COUNT; p++)
        inflight += bf_sender_inflight (self->sender, p);
    return inflight;
}

/*  Loads the PII key and makes the sender and renderer. On failure the
    start is reported failed on the pipe, what was made is freed, and false
    is returned.  */
static bool
s_start (s_dispatch_t *self)
{
    char err[256];
    self->pii = bf_pii_load (self->args.pii_key_file, self->args.pii_key_hex, err, sizeof err);
    if (!self->pii)
        bf_error ("dispatch %s: PII key: %s", self->id, err);
    self->sender = self->pii ? bf_sender_new (&self->args.sender, err, sizeof err) : NULL;
    if (self->pii && !self->sender)
        bf_error ("dispatch %s: %s", self->id, err);
    self->render = bf_render_new ();
    if (self->pii && self->sender && self->render)
        return true;
    bf_actor_fail (self->pipe, self->args.status, self->render ? err : "out of memory");
    bf_render_destroy (&self->render);
    bf_sender_destroy (&self->sender);
    bf_pii_destroy (&self->pii);
    return false;
}

/*  A failed start still honours the actor contract: wait for $TERM.  */
static void
s_await_term (zsock_t *pipe)
{
    char *command;
    while ((command = zstr_recv (pipe)) && !streq (command, "$TERM"))
        free (command);
    free (command);
}

/*  Reads the dispatch switch (d_paused); a database error disconnects.  */
static void
s_check_paused (s_dispatch_t *self)
{
    PGresult *res = bf_db_query_prepared (self->conn, "d_paused", 0, NULL, PGRES_TUPLES_OK,
                                          "reading the dispatch switch");
    if (!res) {
        s_disconnect (self);
        return;
    }
    bool paused = PQntuples (res) == 1 && PQgetvalue (res, 0, 0)[0] == 't';
    if (paused != self->paused)
        bf_info ("dispatch %s: %s", self->id, paused ? "paused" : "resumed");
    self->paused = paused;
    PQclear (res);
}

/*  One turn of the loop, connected: the periodic checks (pause switch,
    leases, templates), a claim when there is room and work is due, then
    sending, collecting outcomes and recording them. *next_claim is when to
    claim next.  */
static void
s_turn (s_dispatch_t *self, int inflight, int64_t *next_claim)
{
    int64_t mono = zclock_mono ();
    if (mono >= self->next_pause_check) {
        s_check_paused (self);
        self->next_pause_check = mono + S_PAUSE_CHECK_MS;
    }
    /*  Outcomes held while the database was away are written before the
        next claim: their claims are still this dispatcher's (its lease is
        renewed on reconnect), and ending them first keeps the order of
        issue 16: an outcome is on the row before anything else is claimed.  */
    if (self->conn && self->nrecords > 0 && mono - self->last_flush >= S_FLUSH_MS)
        s_flush (self);
    /*  Alive for another lease, before any claim: one row, whatever the
        dispatcher holds.  */
    if (self->conn && mono >= self->next_renew && s_alive (self) != 0)
        s_disconnect (self);
    if (self->conn && mono >= self->next_template_reload)
        s_load_templates (self);
    int room = s_capacity (self);
    if (self->conn && !self->paused && mono >= *next_claim && room > 0) {
        int n = s_claim (self, room < self->args.batch ? room : self->args.batch);
        if (n < 0)
            s_disconnect (self);
        /*  Nothing due: look again after poll_ms.  */
        *next_claim = n > 0 ? mono : mono + self->args.poll_ms;
    }
    if (self->paused && self->queued > 0)
        s_release_queued (self, "dispatch paused");
    if (self->queued > 0)
        s_release_blocked (self);
    /*  The fence: nothing claimed goes out once the connection is lost
        (docs/notify.md "Claims and takeover"): the session's lock, which
        tells the others this dispatcher lives, may be gone with it.  */
    if (self->conn)
        s_submit_ready (self);
    else if (self->queued > 0)
        s_release_queued (self, "connection to the database lost");
    bf_sender_poll (self->sender, inflight > 0 ? 5 : 0, s_on_done, self);
    if (self->nrecords >= S_FLUSH_ROWS
        || (self->nrecords > 0 && zclock_mono () - self->last_flush >= S_FLUSH_MS))
        s_flush (self);
}

/*  Stop: lets what is in flight finish (bounded), records it, hands the
    claimed, unsent deliveries back, ends the dispatcher's lease (what is
    still in flight is taken over at once), and frees everything.  */
static void
s_stop (s_dispatch_t *self)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline && s_inflight (self) > 0)
        bf_sender_poll (self->sender, 50, s_on_done, self);
    s_release_queued (self, "stopping");
    if (s_flush (self) == 0 && self->conn) {
        const char *params[] = { self->owner };
        PQclear (bf_db_query_prepared (self->conn, "d_retire", 1, params, PGRES_COMMAND_OK,
                                       "ending the dispatcher's lease"));
    }
    bf_notify_metrics_dispatcher (NULL, false);
    bf_sender_destroy (&self->sender);
    bf_render_destroy (&self->render);
    bf_pii_destroy (&self->pii);
    s_records_clear (self);
    free (self->records);
    PQfinish (self->conn);
}

void
bf_dispatch_actor (zsock_t *pipe, void *args)
{
    s_dispatch_t self = { .pipe = pipe, .args = *(const bf_dispatch_args_t *)args };
    snprintf (self.id, sizeof self.id, "%s", self.args.dispatcher_id);
    snprintf (self.owner, sizeof self.owner, "%s@%lld", self.args.dispatcher_id,
              (long long)zclock_time ());
    snprintf (self.conninfo, sizeof self.conninfo, "%s",
              self.args.conninfo ? self.args.conninfo : "");
    snprintf (self.purpose, sizeof self.purpose, "%s", self.args.purpose);
    self.jitter_state = (unsigned)zclock_mono () ^ (unsigned)getpid ();
    if (!s_start (&self)) {
        s_await_term (pipe);
        return;
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zpoller_set_nonstop (poller, true);
    bool running = true;
    int64_t next_claim = 0;
    while (running) {
        int inflight = s_inflight (&self);
        bf_notify_metrics_dispatcher (self.sender, self.paused);
        /*  Disconnected, only sends in flight keep the loop turning.  */
        bool busy = inflight > 0 || (self.conn && (self.queued > 0 || self.nrecords > 0));
        int64_t wait = busy ? 0 : next_claim - zclock_mono ();
        if (bf_health_zpoller_wait ("dispatch", poller, wait > 0 ? (int)wait : 0) == pipe) {
            running = s_on_pipe (&self);
            continue;
        }
        if (!s_connect (&self)) {
            /*  Nothing claimed goes out without a connection (s_turn).  */
            if (self.queued > 0)
                s_release_queued (&self, "connection to the database lost");
            /*  The process's reconnect gate paces the attempts (bf_db.h).  */
            next_claim = zclock_mono () + bf_db_retry_wait_ms (100);
            if (inflight > 0)
                bf_sender_poll (self.sender, 10, s_on_done, &self);
            continue;
        }
        s_turn (&self, inflight, &next_claim);
    }
    zpoller_destroy (&poller);
    s_stop (&self);
}

/*  --- arguments from the configuration -------------------------------- */

/*  notify.clock "YYYY-MM-DDTHH:MM" (local) into an offset from the system
    clock; "" -> 0. Returns 0 or -1.  */
static int
s_clock_offset (const char *text, int utc_offset_min, int64_t *offset_ms)
{
    *offset_ms = 0;
    if (!*text)
        return 0;
    char date[11];
    int minutes;
    if (strlen (text) != 16 || text[10] != 'T')
        return -1;
    memcpy (date, text, 10);
    date[10] = 0;
    bf_day_t day;
    if (bf_date_parse (date, &day) != 0 || bf_time_parse (text + 11, &minutes) != 0)
        return -1;
    int64_t start = ((int64_t)day * 1440 + minutes - utc_offset_min) * 60000LL;
    *offset_ms = start - zclock_time ();
    return 0;
}

/*  Each dispatcher's in-flight limits are its share of the process's.  */
static void
s_share (bf_sender_config_t *sender, int dispatchers)
{
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        int share = sender->concurrency[p] / dispatchers;
        sender->concurrency[p] = share > 0 ? share : 1;
        if (sender->rate_per_s[p] > 0) {
            int rate = sender->rate_per_s[p] / dispatchers;
            sender->rate_per_s[p] = rate > 0 ? rate : 1;
        }
    }
}

int
bf_dispatch_args_from_config (bf_dispatch_args_t *args, const bf_config_t *config, int dispatchers,
                              char *err, size_t errsize)
{
    memset (args, 0, sizeof *args);
    if (bf_quiet_parse (bf_config_str (config, "notify.quiet_start"),
                        bf_config_str (config, "notify.quiet_end"), &args->system_quiet)
        != 0)
        return bf_err_set (err, errsize,
                           "notify.quiet_start and notify.quiet_end must be "
                           "HH:MM, both or neither");
    args->utc_offset_min = (int)bf_config_int (config, "notify.utc_offset_min");
    if (s_clock_offset (bf_config_str (config, "notify.clock"), args->utc_offset_min,
                        &args->clock_offset_ms)
        != 0)
        return bf_err_set (err, errsize,
                           "notify.clock must be YYYY-MM-DDTHH:MM (local) "
                           "or empty");
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->pii_key_file = bf_config_str (config, "pii.key_file");
    args->pii_key_hex = bf_config_str (config, "pii.key");
    bf_sender_args_from_config (&args->sender, config);
    s_share (&args->sender, dispatchers > 0 ? dispatchers : 1);
    args->batch = (int)bf_config_int (config, "notify.batch");
    args->lease_ms = (int)bf_config_int (config, "notify.lease_ms");
    args->takeover_grace_ms = (int)bf_config_int (config, "notify.takeover_grace_ms");
    args->poll_ms = (int)bf_config_int (config, "notify.poll_ms");
    args->max_attempts = (int)bf_config_int (config, "notify.max_attempts");
    args->backoff_base_ms = (int)bf_config_int (config, "notify.backoff_base_ms");
    args->backoff_max_ms = (int)bf_config_int (config, "notify.backoff_max_ms");
    args->unknown_retry_ms = (int)bf_config_int (config, "notify.email_unknown_retry_ms");
    args->outage_window_ms = bf_config_int (config, "notify.outage_window_ms");
    return 0;
}

int
bf_dispatch_args_check (const bf_dispatch_args_t *args, char *err, size_t errsize)
{
    char why[512];
    bf_pii_t *pii = bf_pii_load (args->pii_key_file, args->pii_key_hex, why, sizeof why);
    if (!pii)
        return bf_err_set (err, errsize, "%s: %s",
                           args->pii_key_file && *args->pii_key_file ? "pii.key_file" : "pii.key",
                           why);
    bf_pii_destroy (&pii);
    bf_sender_t *sender = bf_sender_new (&args->sender, why, sizeof why);
    if (!sender) {
        /*  The sender names its settings without the section ("smtp_url
            must start with ..."): they are notify's.  */
        bool named = strchr (why, '_') && strchr (why, '_') < strchr (why, ' ');
        return bf_err_set (err, errsize, "%s%s", named ? "notify." : "", why);
    }
    bf_sender_destroy (&sender);
    return 0;
}
