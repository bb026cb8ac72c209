/*  Integration: run.report, the reconciliation report of a period
    (services/control/bf_report.h).
    - on a settled period with a re-rate run and notices crafted into every
      state: bills from the runs' counters and the bill table, runs, notices
      by channel and state, fallbacks, held notices (range and reasons),
      attempts, and the unnotified bills with every reason — counts and the
      list exactly;
    - another period's notices never leak in; a period with bills but no
      run is inconsistent; at most 100 unnotified bills are listed;
    - "final" only when the newest run completed, every bill is notified and
      nothing is in flight (held notices may remain);
    - bad arguments;
    - the period's version (db/013_report_change.sql): every kind of change
      the report reads moves it (notices inserted, deleted, moved between
      states, held ones re-timed or given another reason; attempts
      inserted, changed, deleted; runs' counters; bills), a rolled-back
      change and another period's do not; the attempt counters stay equal
      to a count of the attempts;
    - control's kept report (bf_report_cache.h): a cached answer equals a
      fresh computation; after a change wait=0 gets the old report marked
      not current and computing, a later one is current and exact; wait=1
      waits for the current one;
    - billctl run report against the real control: the readable report,
      --json, and its exit codes (1 not final, 0 final, 2 bad period).  */

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "bf_client.h"
#include "bf_db.h"
#include "bf_query.h"
#include "bf_report.h"
#include "bf_testdb.h"
#include "bf_testjson.h"
#include "bf_teststack.h"

#define PERIOD "2026-10"

//  --------------------------------------------------------------------------
//  Helpers

/*  Generates subscribers into db and settles the period with the real
    settle binary.  */
static void
s_settle (const char *db, int subscribers, int seed)
{
    char *out = NULL;
    int rc = bf_testdb_billdata (
        db, &out, "generate --subscribers %d --period " PERIOD " --seed %d", subscribers, seed);
    if (rc != 0)
        fail_msg ("generate failed: %s", out);
    free (out);
    int status = bf_testdb_settle_once (db, PERIOD);
    if (status != 0)
        fail_msg ("settle --once failed (exit %d)", status);
}

static void
s_exec (PGconn *conn, const char *sql)
{
    const char *state = bf_testdb_exec (conn, sql);
    if (strcmp (state, "00000"))
        fail_msg ("SQLSTATE %s: %s", state, sql);
}

static int64_t
s_scalar (PGconn *conn, const char *sql)
{
    int64_t v = bf_testdb_scalar (conn, sql);
    if (v < 0)
        fail_msg ("no value: %s", sql);
    return v;
}

/*  run.report with NULL-terminated key, value pairs.  */
static int
s_query (PGconn *conn, char **json, char *err, size_t errsize, ...)
{
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    Billflow__Argument args[8], *argp[8];
    cmd.verb = (char *)"run.report";
    cmd.command_id = (char *)"q-1";
    cmd.target = (char *)"control";
    va_list ap;
    va_start (ap, errsize);
    const char *key;
    while ((key = va_arg (ap, const char *)) && cmd.n_args < 8) {
        billflow__argument__init (&args[cmd.n_args]);
        args[cmd.n_args].key = (char *)key;
        args[cmd.n_args].value = va_arg (ap, char *);
        argp[cmd.n_args] = &args[cmd.n_args];
        cmd.n_args++;
    }
    va_end (ap);
    cmd.args = argp;
    err[0] = 0;
    static const bf_query_ctx_t ctx = { NULL, 1000 };
    return bf_query (conn, &ctx, &cmd, json, err, errsize);
}

/*  The report of period, which must succeed.  */
static json_t *
s_report (PGconn *conn, const char *period)
{
    char *json = NULL, err[512];
    int rc = s_query (conn, &json, err, sizeof err, "period", period, NULL);
    if (rc != BF_QUERY_OK)
        fail_msg ("run.report failed (%d): %s", rc, err);
    json_error_t jerr;
    json_t *doc = json_loads (json, 0, &jerr);
    if (!doc)
        fail_msg ("run.report: not JSON (%s): %s", jerr.text, json);
    free (json);
    return doc;
}

/*  object's keys are exactly these, in this order (NULL-terminated).  */
static void
s_keys_in_order (json_t *doc, const char *path, ...)
{
    json_t *object = bf_json_at (doc, path);
    if (!json_is_object (object))
        fail_msg ("%s is not an object", path);
    va_list ap;
    va_start (ap, path);
    void *iter = json_object_iter (object);
    const char *key;
    while ((key = va_arg (ap, const char *))) {
        if (!iter || strcmp (json_object_iter_key (iter), key))
            fail_msg ("%s: expected key '%s', got '%s'", path, key,
                      iter ? json_object_iter_key (iter) : "(end)");
        iter = json_object_iter_next (object, iter);
    }
    va_end (ap);
    if (iter)
        fail_msg ("%s: unexpected key '%s'", path, json_object_iter_key (iter));
}

/*  The channel's (or by_state's: channel NULL) counts of the 7 states.  */
static void
s_check_states (json_t *doc, const char *channel, int64_t delivered, int64_t failed,
                int64_t cancelled, int64_t pending, int64_t sending, int64_t retry, int64_t held)
{
    char path[64];
    if (channel)
        snprintf (path, sizeof path, "notices.by_channel.%s", channel);
    else
        snprintf (path, sizeof path, "notices.by_state");
    s_keys_in_order (doc, path, "DELIVERED", "FAILED", "CANCELLED", "PENDING", "SENDING", "RETRY",
                     "HELD", NULL);
    json_t *s = bf_json_at (doc, path);
    const int64_t want[] = { delivered, failed, cancelled, pending, sending, retry, held };
    const char *names[]
        = { "DELIVERED", "FAILED", "CANCELLED", "PENDING", "SENDING", "RETRY", "HELD" };
    for (size_t i = 0; i < 7; i++)
        if (bf_json_int (s, names[i]) != want[i])
            fail_msg ("%s.%s: %lld, expected %lld", path, names[i],
                      (long long)bf_json_int (s, names[i]), (long long)want[i]);
}

/*  Attempts of a channel (NULL: by_outcome) by the 6 outcomes.  */
static void
s_check_outcomes (json_t *doc, const char *channel, int64_t delivered, int64_t duplicate,
                  int64_t transient, int64_t permanent, int64_t throttled, int64_t unknown)
{
    char path[64];
    if (channel)
        snprintf (path, sizeof path, "attempts.by_channel.%s", channel);
    else
        snprintf (path, sizeof path, "attempts.by_outcome");
    s_keys_in_order (doc, path, "DELIVERED", "DUPLICATE", "TRANSIENT", "PERMANENT", "THROTTLED",
                     "UNKNOWN", NULL);
    json_t *s = bf_json_at (doc, path);
    const int64_t want[] = { delivered, duplicate, transient, permanent, throttled, unknown };
    const char *names[]
        = { "DELIVERED", "DUPLICATE", "TRANSIENT", "PERMANENT", "THROTTLED", "UNKNOWN" };
    for (size_t i = 0; i < 6; i++)
        if (bf_json_int (s, names[i]) != want[i])
            fail_msg ("%s.%s: %lld, expected %lld", path, names[i],
                      (long long)bf_json_int (s, names[i]), (long long)want[i]);
}

//  --------------------------------------------------------------------------
//  The crafted period

/*  Bills ranked by bill id into k (rn 1..B), a re-rate run that issued the
    last bill, and notices in crafted states:

    rn  notices                                        notified?
     1  EMAIL DELIVERED                                yes
     2  EMAIL FAILED + SMS fallback DELIVERED          yes
     3  EMAIL FAILED + SMS fallback FAILED             yes (failed after fallback)
     4  EMAIL FAILED + SMS fallback PENDING            no: in progress
     5  EMAIL FAILED, no fallback                      no: failed without fallback
     6  PUSH FAILED                                    no: failed without fallback
     7  EMAIL HELD (quiet hours (system))              yes (held)
     8  SMS HELD (quiet hours (subscriber))            yes (held)
     9  EMAIL RETRY                                    no: in progress
    10  EMAIL SENDING                                  no: in progress
    11  EMAIL PENDING                                  no: in progress
    12  EMAIL CANCELLED                                no: no delivery
    13  none                                           no: no delivery
    14  EMAIL FAILED + SMS fallback HELD               yes (held)
    15  EMAIL FAILED + SMS fallback CANCELLED          yes (failed after fallback)
    16  EMAIL DELIVERED + PUSH FAILED                  yes
    17  EMAIL HELD (dispatch paused)                   yes (held)
    18+ EMAIL DELIVERED                                yes

    Attempts: every delivered email 1 DELIVERED; every failed email 1
    TRANSIENT + 1 PERMANENT; the retrying email 1 TRANSIENT; the delivered
    fallback 1 THROTTLED + 1 DELIVERED (as LMS); the failed fallback 1
    PERMANENT; every failed push 1 PERMANENT. Possibly delivered (one more
    attempt, UNKNOWN): rn 1 (then delivered), 9 (awaiting its resend) and
    5 (failed, not resent).  */
static void
s_craft (PGconn *conn)
{
    s_exec (conn, "CREATE TEMP TABLE k AS SELECT period, bill_id, subscriber_id,"
                  " row_number () OVER (ORDER BY bill_id)::int AS rn FROM bill"
                  " WHERE period = '" PERIOD "'");
    /*  Run 2 re-rated the last bill.  */
    s_exec (conn, "INSERT INTO settlement_run (period, state, chunk_size, chunks_total,"
                  " chunks_done, subscribers_done, bills, amount_total, started_at, finished_at)"
                  " SELECT '" PERIOD "', 'COMPLETED', 100, 1, 1, 1, 1, total,"
                  " now () - interval '5 s', now () FROM bill WHERE period = '" PERIOD "'"
                  " ORDER BY bill_id DESC LIMIT 1");
    s_exec (conn, "UPDATE settlement_run SET bills = bills - 1, amount_total = amount_total"
                  " - (SELECT total FROM bill WHERE period = '" PERIOD "'"
                  "    ORDER BY bill_id DESC LIMIT 1) WHERE run_id = 1");
    s_exec (conn, "UPDATE bill SET run_id = 2 WHERE period = '" PERIOD "'"
                  " AND bill_id = (SELECT max (bill_id) FROM k)");

    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state,"
                  " final_at, not_before, hold_reason)"
                  " SELECT k.period, k.bill_id, k.subscriber_id, x.channel, 'BILL_ISSUED', x.state,"
                  " CASE WHEN x.state IN ('DELIVERED', 'FAILED', 'CANCELLED') THEN now () END,"
                  " coalesce (x.nb, now ()), x.reason"
                  " FROM k JOIN (VALUES"
                  "  (1, 'EMAIL', 'DELIVERED', NULL::timestamptz, NULL::text),"
                  "  (2, 'EMAIL', 'FAILED', NULL, NULL), (3, 'EMAIL', 'FAILED', NULL, NULL),"
                  "  (4, 'EMAIL', 'FAILED', NULL, NULL), (5, 'EMAIL', 'FAILED', NULL, NULL),"
                  "  (6, 'PUSH', 'FAILED', NULL, NULL),"
                  "  (7, 'EMAIL', 'HELD', '2026-11-02 12:00:00+00', 'quiet hours (system)'),"
                  "  (8, 'SMS', 'HELD', '2026-11-02 13:30:00+00', 'quiet hours (subscriber)'),"
                  "  (9, 'EMAIL', 'RETRY', NULL, NULL), (10, 'EMAIL', 'SENDING', NULL, NULL),"
                  "  (11, 'EMAIL', 'PENDING', NULL, NULL), (12, 'EMAIL', 'CANCELLED', NULL, NULL),"
                  "  (14, 'EMAIL', 'FAILED', NULL, NULL), (15, 'EMAIL', 'FAILED', NULL, NULL),"
                  "  (16, 'EMAIL', 'DELIVERED', NULL, NULL), (16, 'PUSH', 'FAILED', NULL, NULL),"
                  "  (17, 'EMAIL', 'HELD', '2026-11-03 00:00:00+00', 'dispatch paused')"
                  " ) AS x (rn, channel, state, nb, reason) ON x.rn = k.rn");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state,"
                  " final_at) SELECT period, bill_id, subscriber_id, 'EMAIL', 'BILL_ISSUED',"
                  " 'DELIVERED', now () FROM k WHERE rn >= 18");
    s_exec (conn,
            "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, fallback_of,"
            " state, final_at, not_before, hold_reason)"
            " SELECT d.period, d.bill_id, d.subscriber_id, 'SMS', d.purpose, d.id, x.state,"
            " CASE WHEN x.state IN ('DELIVERED', 'FAILED', 'CANCELLED') THEN now () END,"
            " coalesce (x.nb, now ()), x.reason"
            " FROM k JOIN delivery d ON d.bill_id = k.bill_id AND d.channel = 'EMAIL'"
            " JOIN (VALUES (2, 'DELIVERED', NULL::timestamptz, NULL::text),"
            "  (3, 'FAILED', NULL, NULL), (4, 'PENDING', NULL, NULL),"
            "  (14, 'HELD', '2026-11-02 12:00:00+00', 'quiet hours (system)'),"
            "  (15, 'CANCELLED', NULL, NULL)) AS x (rn, state, nb, reason) ON x.rn = k.rn");
    s_exec (
        conn,
        "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,"
        " started_at, finished_at, outcome)"
        " SELECT d.id, x.no, CASE WHEN d.channel = 'SMS' THEN 'LMS' ELSE d.channel END,"
        " 'mock', now (), now (), x.outcome FROM delivery d JOIN (VALUES"
        "  ('EMAIL', 'DELIVERED', false, 1, 'DELIVERED'),"
        "  ('EMAIL', 'FAILED', false, 1, 'TRANSIENT'), ('EMAIL', 'FAILED', false, 2, 'PERMANENT'),"
        "  ('EMAIL', 'RETRY', false, 1, 'TRANSIENT'),"
        "  ('SMS', 'DELIVERED', true, 1, 'THROTTLED'), ('SMS', 'DELIVERED', true, 2, 'DELIVERED'),"
        "  ('SMS', 'FAILED', true, 1, 'PERMANENT'), ('PUSH', 'FAILED', false, 1, 'PERMANENT')"
        " ) AS x (channel, state, fb, no, outcome) ON x.channel = d.channel"
        " AND x.state = d.state AND x.fb = (d.fallback_of IS NOT NULL)"
        " WHERE d.period = '" PERIOD "'");

    s_exec (conn, "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,"
                  " started_at, finished_at, outcome, error) SELECT d.id, 9, 'EMAIL', 'email',"
                  " now (), now (), 'UNKNOWN', 'timeout after 600000 ms: waiting for the reply"
                  " to the end of the message' FROM k JOIN delivery d ON d.bill_id = k.bill_id"
                  " AND d.channel = 'EMAIL' AND d.fallback_of IS NULL WHERE k.rn IN (1, 5, 9)");

    /*  2026-11: five bills without a run (copies, new ids), four notices
        pending with an attempt each, one held later than 2026-10's.  */
    s_exec (conn, "SELECT bf_ensure_period ('2026-11')");
    s_exec (conn, "INSERT INTO bill (period, subscriber_id, bill_id, run_id, total, due_date,"
                  " line_count) SELECT '2026-11', b.subscriber_id, b.bill_id + 1000000, 1,"
                  " b.total, b.due_date + 30, b.line_count FROM bill b JOIN k USING (bill_id)"
                  " WHERE k.rn <= 5");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state,"
                  " not_before, hold_reason) SELECT period, bill_id, subscriber_id,"
                  " CASE WHEN bill_id % 5 = 0 THEN 'SMS' ELSE 'EMAIL' END, 'BILL_ISSUED',"
                  " CASE WHEN bill_id = (SELECT max (bill_id) FROM bill WHERE period = '2026-11')"
                  " THEN 'HELD' ELSE 'PENDING' END, '2026-12-01 22:00:00+00', 'later'"
                  " FROM bill WHERE period = '2026-11'");
    s_exec (conn, "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,"
                  " started_at, finished_at, outcome) SELECT id, 1, channel, 'mock', now (),"
                  " now (), 'TRANSIENT' FROM delivery WHERE period = '2026-11'"
                  " AND state = 'PENDING'");
}

/*  bill_id and subscriber_id of the bill ranked rn.  */
static void
s_bill (PGconn *conn, int rn, int64_t *bill_id, int64_t *subscriber_id)
{
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT bill_id FROM k WHERE rn = %d", rn);
    *bill_id = s_scalar (conn, sql);
    snprintf (sql, sizeof sql, "SELECT subscriber_id FROM k WHERE rn = %d", rn);
    *subscriber_id = s_scalar (conn, sql);
}

/*  The unnotified list is exactly these bills (by rank), with reasons.  */
static void
s_check_unnotified (PGconn *conn, json_t *doc, const int *ranks, const char *const *reasons,
                    size_t n)
{
    json_t *list = bf_json_at (doc, "unnotified.bills");
    assert_true (json_is_array (list));
    if (json_array_size (list) != n)
        fail_msg ("unnotified: %zu bills listed, expected %zu", json_array_size (list), n);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get (list, i);
        s_keys_in_order (item, "", "bill_id", "subscriber_id", "reason", NULL);
        int64_t bill_id, subscriber_id;
        s_bill (conn, ranks[i], &bill_id, &subscriber_id);
        if (bf_json_int (item, "bill_id") != bill_id
            || bf_json_int (item, "subscriber_id") != subscriber_id
            || strcmp (bf_json_str (item, "reason"), reasons[i]))
            fail_msg ("unnotified %zu: bill %lld (%s), expected rank %d: bill %lld (%s)", i,
                      (long long)bf_json_int (item, "bill_id"), bf_json_str (item, "reason"),
                      ranks[i], (long long)bill_id, reasons[i]);
    }
}

static void
test_report_of_a_crafted_period (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    s_settle (db, 150, 11);
    PGconn *conn = bf_testdb_connect (db);
    int64_t bills = s_scalar (conn, "SELECT count(*) FROM bill WHERE period = '" PERIOD "'");
    int64_t amount = s_scalar (conn, "SELECT sum (total) FROM bill WHERE period = '" PERIOD "'");
    assert_true (bills > 100);

    /*  Settled, no notices yet: every bill unnotified ("no delivery"), the
        first 100 listed.  */
    json_t *doc = s_report (conn, PERIOD);
    s_keys_in_order (doc, "", "period", "version", "as_of", "final", "run_state", "bills", "runs",
                     "notices", "fallbacks", "held", "attempts", "possible_duplicates",
                     "unnotified", NULL);
    assert_string_equal (bf_json_str (doc, "period"), PERIOD);
    assert_false (bf_json_bool (doc, "final"));
    assert_string_equal (bf_json_str (doc, "run_state"), "COMPLETED");
    assert_int_equal (bf_json_int (doc, "bills.count"), bills);
    assert_int_equal (bf_json_int (doc, "unnotified.count"), bills);
    assert_int_equal (bf_json_int (doc, "unnotified.by_reason.no delivery"), bills);
    assert_int_equal (bf_json_int (doc, "unnotified.by_reason.in progress"), 0);
    assert_int_equal (json_array_size (bf_json_at (doc, "unnotified.bills")),
                      BF_REPORT_UNNOTIFIED_MAX);
    assert_int_equal (bf_json_int (doc, "unnotified.bills.0.bill_id"),
                      s_scalar (conn, "SELECT min (bill_id) FROM bill"));
    assert_int_equal (bf_json_int (doc, "notices.total"), 0);
    assert_true (json_is_null (bf_json_at (doc, "held.from")));
    assert_int_equal (json_array_size (bf_json_at (doc, "held.reasons")), 0);
    assert_int_equal (bf_json_int (doc, "attempts.total"), 0);
    json_decref (doc);

    s_craft (conn);
    doc = s_report (conn, PERIOD);
    assert_false (bf_json_bool (doc, "final"));
    assert_string_equal (bf_json_str (doc, "run_state"), "COMPLETED");

    /*  Bills: run 1 issued all but one, the re-rate run one; the bill
        table agrees.  */
    s_keys_in_order (doc, "bills", "count", "amount_total", "table_count", "table_amount_total",
                     "consistent", NULL);
    assert_int_equal (bf_json_int (doc, "bills.count"), bills);
    assert_int_equal (bf_json_int (doc, "bills.amount_total"), amount);
    assert_int_equal (bf_json_int (doc, "bills.table_count"), bills);
    assert_int_equal (bf_json_int (doc, "bills.table_amount_total"), amount);
    assert_true (bf_json_bool (doc, "bills.consistent"));

    /*  Runs, oldest first.  */
    assert_int_equal (json_array_size (bf_json_at (doc, "runs")), 2);
    s_keys_in_order (doc, "runs.0", "run_id", "state", "rerate", "bills", "amount_total",
                     "rating_errors", "started_at", "finished_at", "seconds", NULL);
    assert_int_equal (bf_json_int (doc, "runs.0.run_id"), 1);
    assert_string_equal (bf_json_str (doc, "runs.0.state"), "COMPLETED");
    assert_false (bf_json_bool (doc, "runs.0.rerate"));
    assert_int_equal (bf_json_int (doc, "runs.0.bills"), bills - 1);
    assert_int_equal (bf_json_int (doc, "runs.0.rating_errors"),
                      s_scalar (conn, "SELECT rating_errors FROM settlement_run WHERE run_id = 1"));
    assert_int_equal (bf_json_int (doc, "runs.1.run_id"), 2);
    assert_true (bf_json_bool (doc, "runs.1.rerate"));
    assert_int_equal (bf_json_int (doc, "runs.1.bills"), 1);
    assert_int_equal (bf_json_int (doc, "runs.0.amount_total")
                          + bf_json_int (doc, "runs.1.amount_total"),
                      amount);
    const char *started = bf_json_str (doc, "runs.1.started_at");
    assert_int_equal (strlen (started), strlen ("2026-10-01T00:00:00.000Z"));
    assert_int_equal (started[23], 'Z');
    assert_true (json_number_value (bf_json_at (doc, "runs.1.seconds")) >= 4.9);

    /*  Notices (2026-11's are not counted).  */
    s_keys_in_order (doc, "notices", "total", "finished", "unfinished", "by_state", "by_channel",
                     NULL);
    assert_int_equal (bf_json_int (doc, "notices.total"), bills + 5);
    assert_int_equal (bf_json_int (doc, "notices.finished"), bills - 3);
    assert_int_equal (bf_json_int (doc, "notices.unfinished"), 8);
    s_keys_in_order (doc, "notices.by_channel", "EMAIL", "SMS", "PUSH", NULL);
    s_check_states (doc, "EMAIL", bills - 15, 6, 1, 1, 1, 1, 2);
    s_check_states (doc, "SMS", 1, 1, 1, 1, 0, 0, 2);
    s_check_states (doc, "PUSH", 0, 2, 0, 0, 0, 0, 0);
    s_check_states (doc, NULL, bills - 14, 9, 2, 2, 1, 1, 4);

    /*  Fallbacks.  */
    s_keys_in_order (doc, "fallbacks", "failed_emails", "created", "delivered", "failed",
                     "cancelled", "unfinished", NULL);
    assert_int_equal (bf_json_int (doc, "fallbacks.failed_emails"), 6);
    assert_int_equal (bf_json_int (doc, "fallbacks.created"), 5);
    assert_int_equal (bf_json_int (doc, "fallbacks.delivered"), 1);
    assert_int_equal (bf_json_int (doc, "fallbacks.failed"), 1);
    assert_int_equal (bf_json_int (doc, "fallbacks.cancelled"), 1);
    assert_int_equal (bf_json_int (doc, "fallbacks.unfinished"), 2);

    /*  Held: how many, when they go, why (most first, then by reason).  */
    s_keys_in_order (doc, "held", "count", "from", "until", "reasons", NULL);
    assert_int_equal (bf_json_int (doc, "held.count"), 4);
    assert_string_equal (bf_json_str (doc, "held.from"), "2026-11-02T12:00:00.000Z");
    assert_string_equal (bf_json_str (doc, "held.until"), "2026-11-03T00:00:00.000Z");
    assert_int_equal (json_array_size (bf_json_at (doc, "held.reasons")), 3);
    s_keys_in_order (doc, "held.reasons.0", "reason", "count", NULL);
    assert_string_equal (bf_json_str (doc, "held.reasons.0.reason"), "quiet hours (system)");
    assert_int_equal (bf_json_int (doc, "held.reasons.0.count"), 2);
    assert_string_equal (bf_json_str (doc, "held.reasons.1.reason"), "dispatch paused");
    assert_int_equal (bf_json_int (doc, "held.reasons.1.count"), 1);
    assert_string_equal (bf_json_str (doc, "held.reasons.2.reason"), "quiet hours (subscriber)");
    assert_int_equal (bf_json_int (doc, "held.reasons.2.count"), 1);

    /*  Attempts.  */
    s_keys_in_order (doc, "attempts", "total", "by_channel", "by_outcome", NULL);
    assert_int_equal (bf_json_int (doc, "attempts.total"), bills + 6);
    s_keys_in_order (doc, "attempts.by_channel", "EMAIL", "SMS", "PUSH", NULL);
    s_check_outcomes (doc, "EMAIL", bills - 15, 0, 7, 6, 0, 3);
    s_check_outcomes (doc, "SMS", 1, 0, 0, 1, 1, 0);
    s_check_outcomes (doc, "PUSH", 0, 0, 0, 2, 0, 0);
    s_check_outcomes (doc, NULL, bills - 14, 0, 7, 9, 1, 3);

    /*  Possible duplicates: the three notices with an UNKNOWN attempt, by
        their state now.  */
    s_keys_in_order (doc, "possible_duplicates", "notices", "delivered", "awaiting_resend",
                     "not_resent", NULL);
    assert_int_equal (bf_json_int (doc, "possible_duplicates.notices"), 3);
    assert_int_equal (bf_json_int (doc, "possible_duplicates.delivered"), 1);
    assert_int_equal (bf_json_int (doc, "possible_duplicates.awaiting_resend"), 1);
    assert_int_equal (bf_json_int (doc, "possible_duplicates.not_resent"), 1);

    /*  Unnotified: exactly these, by bill id.  */
    s_keys_in_order (doc, "unnotified", "count", "by_reason", "bills", NULL);
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 8);
    s_keys_in_order (doc, "unnotified.by_reason", "no delivery", "in progress",
                     "failed without fallback", NULL);
    assert_int_equal (bf_json_int (doc, "unnotified.by_reason.no delivery"), 2);
    assert_int_equal (bf_json_int (doc, "unnotified.by_reason.in progress"), 4);
    assert_int_equal (bf_json_int (doc, "unnotified.by_reason.failed without fallback"), 2);
    static const int ranks[] = { 4, 5, 6, 9, 10, 11, 12, 13 };
    static const char *const reasons[] = { "in progress",
                                           "failed without fallback",
                                           "failed without fallback",
                                           "in progress",
                                           "in progress",
                                           "in progress",
                                           "no delivery",
                                           "no delivery" };
    s_check_unnotified (conn, doc, ranks, reasons, 8);
    json_decref (doc);

    /*  2026-11: bills without a run: inconsistent, not final; its own
        notices, held range and attempts only.  */
    doc = s_report (conn, "2026-11");
    assert_true (json_is_null (bf_json_at (doc, "run_state")));
    assert_false (bf_json_bool (doc, "final"));
    assert_int_equal (json_array_size (bf_json_at (doc, "runs")), 0);
    assert_int_equal (bf_json_int (doc, "bills.count"), 0);
    assert_int_equal (bf_json_int (doc, "bills.amount_total"), 0);
    assert_int_equal (bf_json_int (doc, "bills.table_count"), 5);
    assert_false (bf_json_bool (doc, "bills.consistent"));
    assert_int_equal (bf_json_int (doc, "notices.total"), 5);
    assert_int_equal (bf_json_int (doc, "held.count"), 1);
    assert_string_equal (bf_json_str (doc, "held.from"), "2026-12-01T22:00:00.000Z");
    assert_string_equal (bf_json_str (doc, "held.until"), "2026-12-01T22:00:00.000Z");
    assert_string_equal (bf_json_str (doc, "held.reasons.0.reason"), "later");
    assert_int_equal (bf_json_int (doc, "attempts.total"), 4);
    assert_int_equal (bf_json_int (doc, "attempts.by_outcome.TRANSIENT"), 4);
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 4);
    assert_int_equal (bf_json_int (doc, "unnotified.by_reason.in progress"), 4);
    json_decref (doc);

    /*  A period with nothing: zeros, empty lists, not final.  */
    doc = s_report (conn, "2025-01");
    assert_true (json_is_null (bf_json_at (doc, "run_state")));
    assert_false (bf_json_bool (doc, "final"));
    assert_int_equal (bf_json_int (doc, "bills.table_count"), 0);
    assert_true (bf_json_bool (doc, "bills.consistent"));
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 0);
    assert_int_equal (json_array_size (bf_json_at (doc, "unnotified.bills")), 0);
    s_check_states (doc, "SMS", 0, 0, 0, 0, 0, 0, 0);
    s_check_outcomes (doc, NULL, 0, 0, 0, 0, 0, 0);
    json_decref (doc);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

/*  Notifies the crafted period's unnotified bills: in-flight notices
    delivered, a failed fallback for rank 5's email, and new delivered
    notices for 6, 12 and 13.  */
static void
s_resolve (PGconn *conn)
{
    s_exec (conn, "UPDATE delivery SET state = 'DELIVERED', final_at = now ()"
                  " WHERE period = '" PERIOD "' AND state IN ('PENDING', 'SENDING', 'RETRY')");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose,"
                  " fallback_of, state, final_at) SELECT d.period, d.bill_id, d.subscriber_id,"
                  " 'SMS', d.purpose, d.id, 'FAILED', now () FROM k JOIN delivery d"
                  " ON d.bill_id = k.bill_id AND d.channel = 'EMAIL' WHERE k.rn = 5");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state,"
                  " final_at) SELECT period, bill_id, subscriber_id,"
                  " CASE WHEN rn = 12 THEN 'SMS' ELSE 'EMAIL' END, 'BILL_ISSUED', 'DELIVERED',"
                  " now () FROM k WHERE rn IN (6, 12, 13)");
}

static void
test_report_final (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    s_settle (db, 40, 12);
    PGconn *conn = bf_testdb_connect (db);
    s_craft (conn);
    s_resolve (conn);

    /*  Every bill notified, nothing in flight, the run completed: final,
        with the four held notices still held.  */
    json_t *doc = s_report (conn, PERIOD);
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 0);
    assert_int_equal (json_array_size (bf_json_at (doc, "unnotified.bills")), 0);
    assert_int_equal (bf_json_int (doc, "held.count"), 4);
    assert_int_equal (bf_json_int (doc, "notices.by_state.PENDING")
                          + bf_json_int (doc, "notices.by_state.RETRY")
                          + bf_json_int (doc, "notices.by_state.SENDING"),
                      0);
    assert_true (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  A notice in flight for a notified bill: not final, nobody unnotified.  */
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose)"
                  " SELECT period, bill_id, subscriber_id, 'PUSH', 'BILL_ISSUED' FROM k"
                  " WHERE rn = 1");
    doc = s_report (conn, PERIOD);
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 0);
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);
    s_exec (conn, "UPDATE delivery SET state = 'DELIVERED', final_at = now ()"
                  " WHERE state = 'PENDING' AND period = '" PERIOD "'");
    doc = s_report (conn, PERIOD);
    assert_true (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  A newer run in progress: not final.  */
    s_exec (conn, "INSERT INTO settlement_run (period, state, chunk_size, started_at)"
                  " VALUES ('" PERIOD "', 'RUNNING', 100, now ())");
    doc = s_report (conn, PERIOD);
    assert_string_equal (bf_json_str (doc, "run_state"), "RUNNING");
    assert_int_equal (json_array_size (bf_json_at (doc, "runs")), 3);
    assert_true (bf_json_bool (doc, "runs.2.rerate"));
    assert_true (json_is_null (bf_json_at (doc, "runs.2.finished_at")));
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);
    s_exec (conn, "DELETE FROM settlement_run WHERE state = 'RUNNING'");

    /*  An email cancelled after its fallback failed: the fallback is no
        longer that of a FAILED email, so the bill is unnotified again.  */
    s_exec (conn, "UPDATE delivery SET state = 'CANCELLED' WHERE channel = 'EMAIL'"
                  " AND bill_id = (SELECT bill_id FROM k WHERE rn = 3)");
    doc = s_report (conn, PERIOD);
    assert_false (bf_json_bool (doc, "final"));
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 1);
    static const int ranks[] = { 3 };
    static const char *const reasons[] = { "failed without fallback" };
    s_check_unnotified (conn, doc, ranks, reasons, 1);
    json_decref (doc);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_report_bad_arguments (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    char *json = NULL, err[512];
    assert_int_equal (s_query (conn, &json, err, sizeof err, NULL), BF_QUERY_BAD);
    assert_non_null (strstr (err, "needs period"));
    assert_null (json);
    assert_int_equal (s_query (conn, &json, err, sizeof err, "period", "2026-13", NULL),
                      BF_QUERY_BAD);
    assert_non_null (strstr (err, "period"));
    assert_int_equal (s_query (conn, &json, err, sizeof err, "period", PERIOD, "limit", "5", NULL),
                      BF_QUERY_BAD);
    assert_non_null (strstr (err, "unknown argument"));
    assert_int_equal (
        s_query (conn, &json, err, sizeof err, "period", PERIOD, "period", PERIOD, NULL),
        BF_QUERY_BAD);
    assert_non_null (strstr (err, "more than once"));
    assert_null (json);
    /*  No database: retryable.  */
    assert_int_equal (s_query (NULL, &json, err, sizeof err, "period", PERIOD, NULL),
                      BF_QUERY_RETRY);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  The period's version

static int64_t
s_version (PGconn *conn, const char *period)
{
    int64_t v = -1;
    char err[512];
    if (bf_report_version (conn, period, &v, err, sizeof err) != BF_QUERY_OK)
        fail_msg ("run.report version: %s", err);
    return v;
}

/*  attempt_count against a count of the attempts: keys that differ.  */
static int64_t
s_attempt_counters_wrong (PGconn *conn)
{
    return s_scalar (conn, "SELECT count (*) FROM"
                           " (SELECT period, channel, outcome, sum (n) AS n FROM attempt_count"
                           "  GROUP BY 1, 2, 3 HAVING sum (n) <> 0) c"
                           " FULL JOIN (SELECT d.period, d.channel, x.outcome, count (*) AS n"
                           "  FROM delivery_attempt x JOIN delivery d ON d.id = x.delivery_id"
                           "  GROUP BY 1, 2, 3) a USING (period, channel, outcome)"
                           " WHERE c.n IS DISTINCT FROM a.n");
}

static void
test_report_version_moves (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    s_settle (db, 20, 17);
    PGconn *conn = bf_testdb_connect (db);
    s_craft (conn);
    assert_int_equal (s_attempt_counters_wrong (conn), 0);

    /*  The report carries the version of its own snapshot.  */
    int64_t v = s_version (conn, PERIOD);
    assert_true (v > 0);
    json_t *doc = s_report (conn, PERIOD);
    assert_int_equal (bf_json_int (doc, "version"), v);
    assert_non_null (bf_json_str (doc, "as_of"));
    json_decref (doc);

    /*  Each kind of change the report reads, one statement each.  */
    static const char *const changes[] = {
        /* a notice inserted */
        "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose)"
        " SELECT period, bill_id, subscriber_id, 'PUSH', 'BILL_ISSUED' FROM k WHERE rn = 1",
        /* a notice moved between states */
        "UPDATE delivery SET state = 'DELIVERED', final_at = now () WHERE period = '" PERIOD "'"
        " AND state = 'PENDING' AND channel = 'PUSH'",
        /* a held notice's reason, no count moves */
        "UPDATE delivery SET hold_reason = 'operator hold' WHERE period = '" PERIOD "'"
        " AND state = 'HELD' AND channel = 'SMS'",
        /* a held notice's release, no count moves */
        "UPDATE delivery SET not_before = not_before + interval '1 hour'"
        " WHERE period = '" PERIOD "' AND state = 'HELD' AND channel = 'SMS'",
        /* a notice that no longer is a fallback */
        "UPDATE delivery SET fallback_of = NULL WHERE period = '" PERIOD "'"
        " AND fallback_of IS NOT NULL AND state = 'CANCELLED'",
        /* an attempt inserted */
        "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider, started_at,"
        " finished_at, outcome) SELECT d.id, 1, 'PUSH', 'mock', now (), now (), 'DELIVERED'"
        " FROM k JOIN delivery d ON d.bill_id = k.bill_id AND d.channel = 'PUSH' WHERE k.rn = 1",
        /* an attempt's outcome changed */
        "UPDATE delivery_attempt SET outcome = 'DELIVERED' WHERE outcome = 'UNKNOWN'"
        " AND delivery_id IN (SELECT id FROM delivery WHERE period = '" PERIOD "')",
        /* an attempt deleted */
        "DELETE FROM delivery_attempt WHERE attempt_no = 9 AND delivery_id IN"
        " (SELECT id FROM delivery WHERE period = '" PERIOD "')",
        /* a notice deleted (one without attempts) */
        "DELETE FROM delivery WHERE period = '" PERIOD "' AND channel = 'SMS' AND state = 'PENDING'"
        " AND NOT EXISTS (SELECT 1 FROM delivery_attempt a WHERE a.delivery_id = delivery.id)",
        /* a run's counters */
        "UPDATE settlement_run SET rating_errors = rating_errors + 1 WHERE period = '" PERIOD "'"
        " AND run_id = 1",
        /* a run's state */
        "UPDATE settlement_run SET state = 'FAILED' WHERE period = '" PERIOD "' AND run_id = 2",
        /* a bill */
        "UPDATE bill SET total = total + 10 WHERE period = '" PERIOD "'"
        " AND bill_id = (SELECT min (bill_id) FROM k)",
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        int64_t other = s_version (conn, "2026-11");
        s_exec (conn, changes[i]);
        int64_t now = s_version (conn, PERIOD);
        if (now <= v)
            fail_msg ("the version did not move (%lld) after: %s", (long long)v, changes[i]);
        v = now;
        assert_int_equal (s_version (conn, "2026-11"), other);
        assert_int_equal (s_attempt_counters_wrong (conn), 0);
    }
    /*  The report's attempts are the counters'.  */
    doc = s_report (conn, PERIOD);
    assert_int_equal (bf_json_int (doc, "version"), v);
    assert_int_equal (bf_json_int (doc, "attempts.total"),
                      s_scalar (conn, "SELECT count (*) FROM delivery_attempt x JOIN delivery d"
                                      " ON d.id = x.delivery_id WHERE d.period = '" PERIOD "'"));
    assert_int_equal (bf_json_int (doc, "attempts.by_channel.PUSH.DELIVERED"), 1);
    assert_int_equal (bf_json_int (doc, "attempts.by_outcome.UNKNOWN"), 0);
    json_decref (doc);

    /*  A rolled-back change leaves it; a statement that touched no row
        of the period too.  */
    s_exec (conn, "BEGIN");
    s_exec (conn, "UPDATE delivery SET state = 'CANCELLED', final_at = now ()"
                  " WHERE period = '" PERIOD "' AND state = 'RETRY'");
    s_exec (conn, "ROLLBACK");
    s_exec (conn, "UPDATE delivery SET state = 'CANCELLED' WHERE period = '1999-01'");
    assert_int_equal (s_version (conn, PERIOD), v);
    /*  Another period's changes stay there.  */
    s_exec (conn, "UPDATE delivery SET hold_reason = 'x' WHERE period = '2026-11'");
    assert_int_equal (s_version (conn, PERIOD), v);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  billctl run report against the real control

static bf_stack_t s_stack;

static int
s_setup (void **state)
{
    (void)state;
    bf_stack_init (&s_stack);
    return 0;
}

static int
s_teardown (void **state)
{
    (void)state;
    bf_stack_destroy (&s_stack);
    return 0;
}

/*  Runs billctl with args as ops-a; stdout into *out, stderr into *errout.
    Returns the exit code.  */
static int
s_billctl (char **out, char **errout, const char *args)
{
    char key[600], command[2048], stdout_path[600], stderr_path[600];
    bf_stack_key_path (&s_stack, "ops-a", key, sizeof key);
    snprintf (stdout_path, sizeof stdout_path, "%s/billctl.out", s_stack.dir);
    snprintf (stderr_path, sizeof stderr_path, "%s/billctl.err", s_stack.dir);
    snprintf (command, sizeof command,
              "\"$BF_BILLCTL\" --control '%s' --server-key '%s' --key '%s' %s > '%s' 2> '%s'",
              s_stack.endpoints, s_stack.control_key, key, args, stdout_path, stderr_path);
    int status = system (command);
    *out = bf_test_slurp (stdout_path);
    *errout = bf_test_slurp (stderr_path);
    assert_non_null (*out);
    assert_non_null (*errout);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
s_contains (const char *text, const char *needle)
{
    if (!strstr (text, needle))
        fail_msg ("output does not contain '%s':\n%s", needle, text);
}

static void
test_billctl_run_report (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    s_settle (s->db, 40, 13);
    s_craft (s->conn);
    bf_proc_start (&s->control[0]);
    assert_int_equal (bf_stack_wait_active (s, 0, 20000), 0);

    /*  Not final: the report, and exit 1.  */
    char *out = NULL, *errout = NULL, line[256];
    int64_t bill_id, subscriber_id;
    int rc = s_billctl (&out, &errout, "run report " PERIOD);
    if (rc != 1)
        fail_msg ("exit %d, expected 1:\n%s\n%s", rc, out, errout);
    s_contains (out, "Reconciliation report of " PERIOD ": NOT FINAL");
    s_contains (out, "8 bills without a final notice; 4 notices in progress");
    s_contains (out, "agrees with the runs");
    s_contains (out, "Held: 4 notices, from 2026-11-02T12:00:00.000Z until"
                     " 2026-11-03T00:00:00.000Z");
    s_contains (out, "quiet hours (subscriber)");
    s_contains (out, "Unnotified bills: 8 (no delivery 2, in progress 4, failed without"
                     " fallback 2)");
    s_bill (s->conn, 5, &bill_id, &subscriber_id);
    snprintf (line, sizeof line, "%lld  failed without fallback", (long long)subscriber_id);
    s_contains (out, line);
    s_contains (errout, "not final");
    free (out);
    free (errout);

    /*  --json: the document, and still exit 1.  */
    rc = s_billctl (&out, &errout, "--json run report " PERIOD);
    assert_int_equal (rc, 1);
    json_error_t jerr;
    json_t *doc = json_loads (out, 0, &jerr);
    if (!doc)
        fail_msg ("--json: not JSON (%s): %s", jerr.text, out);
    assert_int_equal (bf_json_int (doc, "unnotified.count"), 8);
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);
    free (out);
    free (errout);

    /*  Final: exit 0, "none".  */
    s_resolve (s->conn);
    rc = s_billctl (&out, &errout, "run report " PERIOD);
    if (rc != 0)
        fail_msg ("exit %d, expected 0:\n%s\n%s", rc, out, errout);
    s_contains (out, "Reconciliation report of " PERIOD ": FINAL");
    s_contains (out, "Unnotified bills: none");
    free (out);
    free (errout);

    /*  A bad period never leaves billctl: exit 2.  */
    assert_int_equal (s_billctl (&out, &errout, "run report 2026-13"), 2);
    s_contains (errout, "not a period");
    free (out);
    free (errout);
}

/*  run.report through control with wait=0|1; the answer's document.  */
static json_t *
s_ask (bf_client_t *client, const char *wait)
{
    static int n;
    char id[32];
    snprintf (id, sizeof id, "rep-%d", ++n);
    const char *keys[] = { "period", "wait" }, *values[] = { PERIOD, wait };
    Billflow__CommandReply *reply = NULL;
    char err[256];
    int rc = bf_client_request (client, id, "control", "run.report", 2, keys, values, &reply, NULL,
                                err, sizeof err);
    if (rc != BF_CLIENT_ANSWERED || !reply)
        fail_msg ("run.report: no answer: %s", err);
    if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK)
        fail_msg ("run.report: %s", reply->error ? reply->error : "failed");
    json_error_t jerr;
    json_t *doc = json_loads (reply->result, 0, &jerr);
    if (!doc)
        fail_msg ("run.report: not JSON (%s)", jerr.text);
    billflow__command_reply__free_unpacked (reply, NULL);
    return doc;
}

/*  a and b are the same report, apart from when and how it was answered.  */
static void
s_same_report (json_t *answered, json_t *fresh)
{
    json_t *a = json_deep_copy (answered), *b = json_deep_copy (fresh);
    const char *const volatile_keys[] = { "as_of", "current", "computing" };
    for (size_t i = 0; i < 3; i++) {
        json_object_del (a, volatile_keys[i]);
        json_object_del (b, volatile_keys[i]);
    }
    if (!json_equal (a, b)) {
        char *ta = json_dumps (a, JSON_SORT_KEYS), *tb = json_dumps (b, JSON_SORT_KEYS);
        fail_msg ("answered and fresh reports differ:\n%s\n%s", ta, tb);
    }
    json_decref (a);
    json_decref (b);
}

static void
test_report_kept_by_control (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    s_settle (s->db, 40, 19);
    s_craft (s->conn);
    bf_proc_start (&s->control[0]);
    assert_int_equal (bf_stack_wait_active (s, 0, 20000), 0);
    bf_client_t *client = bf_stack_client (s, "ops-a", 30000, 0);
    assert_non_null (client);

    /*  Nothing kept yet: wait=0 gets no figures at once, computing (the
        reporter computes meanwhile); wait=1 waits for the report, which
        equals a fresh one.  */
    json_t *first = s_ask (client, "0");
    assert_false (bf_json_bool (first, "current"));
    assert_true (bf_json_bool (first, "computing"));
    assert_true (json_is_null (json_object_get (first, "as_of")));
    assert_null (json_object_get (first, "bills"));
    json_decref (first);
    first = s_ask (client, "1");
    assert_true (bf_json_bool (first, "current"));
    assert_false (bf_json_bool (first, "computing"));
    json_t *fresh = s_report (s->conn, PERIOD);
    s_same_report (first, fresh);
    json_decref (fresh);

    /*  Unchanged period: the kept report (same snapshot), current.  */
    json_t *again = s_ask (client, "0");
    assert_true (bf_json_bool (again, "current"));
    assert_string_equal (bf_json_str (again, "as_of"), bf_json_str (first, "as_of"));
    json_decref (again);
    again = s_ask (client, "1");
    assert_string_equal (bf_json_str (again, "as_of"), bf_json_str (first, "as_of"));
    json_decref (again);

    /*  A change: wait=0 gets the kept report at once, marked not current
        and computing; a later answer is current, newer and exact.  */
    s_exec (s->conn, "UPDATE delivery SET state = 'DELIVERED', final_at = now ()"
                     " WHERE period = '" PERIOD "' AND state = 'RETRY'");
    json_t *stale = s_ask (client, "0");
    assert_false (bf_json_bool (stale, "current"));
    assert_true (bf_json_bool (stale, "computing"));
    assert_string_equal (bf_json_str (stale, "as_of"), bf_json_str (first, "as_of"));
    assert_int_equal (bf_json_int (stale, "version"), bf_json_int (first, "version"));
    json_decref (stale);
    json_t *now = NULL;
    int64_t deadline = bf_stack_now_ms () + 20000;
    while (true) {
        now = s_ask (client, "0");
        if (bf_json_bool (now, "current"))
            break;
        json_decref (now);
        if (bf_stack_now_ms () > deadline)
            fail_msg ("the report never became current again");
        usleep (50 * 1000);
    }
    assert_true (bf_json_int (now, "version") > bf_json_int (first, "version"));
    assert_int_equal (bf_json_int (now, "notices.by_state.RETRY"), 0);
    fresh = s_report (s->conn, PERIOD);
    s_same_report (now, fresh);
    json_decref (fresh);
    json_decref (now);

    /*  wait=1 after a change waits for the current report.  */
    s_exec (s->conn, "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,"
                     " started_at, finished_at, outcome) SELECT id, 7, channel, 'mock', now (),"
                     " now (), 'THROTTLED' FROM delivery WHERE period = '" PERIOD "'"
                     " AND state = 'DELIVERED' AND channel = 'EMAIL' LIMIT 3");
    now = s_ask (client, "1");
    assert_true (bf_json_bool (now, "current"));
    fresh = s_report (s->conn, PERIOD);
    s_same_report (now, fresh);
    assert_int_equal (bf_json_int (now, "attempts.by_outcome.THROTTLED"),
                      bf_json_int (first, "attempts.by_outcome.THROTTLED") + 3);
    json_decref (fresh);
    json_decref (now);

    /*  A bad wait= is refused.  */
    const char *keys[] = { "period", "wait" }, *values[] = { PERIOD, "yes" };
    Billflow__CommandReply *reply = NULL;
    char err[256];
    assert_int_equal (bf_client_request (client, "rep-bad", "control", "run.report", 2, keys,
                                         values, &reply, NULL, err, sizeof err),
                      BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_non_null (strstr (reply->error, "wait"));
    billflow__command_reply__free_unpacked (reply, NULL);
    json_decref (first);
    bf_client_destroy (&client);
}

int
main (void)
{
    zsys_init ();
    zsys_set_linger (0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_report_of_a_crafted_period),
        cmocka_unit_test (test_report_final),
        cmocka_unit_test (test_report_bad_arguments),
        cmocka_unit_test (test_report_version_moves),
        cmocka_unit_test_setup_teardown (test_billctl_run_report, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_report_kept_by_control, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
