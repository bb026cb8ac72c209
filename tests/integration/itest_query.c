/*  Integration: control's queries (services/control/bf_query.h) and the
    delivery counters behind them (db/006_delivery_count.sql).
    - delivery_count equals count(*) grouped after INSERT, COPY, many-row
      UPDATEs, rolled-back work, DELETE and TRUNCATE, and under concurrent
      writers, none of which waits for another's counter rows;
    - every query's document on a settled period, with values checked
      against the tables; run.show's "final" turns true only when the run,
      its events and its notices are all done;
    - the queries read counters and indexes, not the deliveries;
    - failures show masked contacts, never the plain ones;
    - services are up or down by the age of their heartbeat;
    - commands.list and audit.list return exactly the rows their filters
      (actor, verb, state, since, until) select, and page through before_id;
    - bad arguments of every kind, and database failures.  */

#include <jansson.h>
#include <pthread.h>
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

#include "bf_db.h"
#include "bf_log.h"
#include "bf_mask.h"
#include "bf_pii.h"
#include "bf_query.h"
#include "bf_testdb.h"
#include "bf_testjson.h"

#define PERIOD "2026-10"

//  --------------------------------------------------------------------------
//  Helpers

/*  A fresh database with subscribers generated and the period settled by
    the real settle binary.  */
static char *
s_settled_db (int subscribers, int seed)
{
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    char *out = NULL;
    int rc = bf_testdb_billdata (
        db, &out, "generate --subscribers %d --period " PERIOD " --seed %d", subscribers, seed);
    if (rc != 0)
        fail_msg ("generate failed: %s", out);
    free (out);
    int status = bf_testdb_settle_once (db, PERIOD);
    if (status != 0)
        fail_msg ("settle --once failed (exit %d)", status);
    return db;
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

/*  Keys of delivery_count (summed over shards) whose figures differ from
    count(*) grouped over delivery: 0 when the counters are exact.  */
static int64_t
s_counter_mismatches (PGconn *conn)
{
    return bf_testdb_scalar (
        conn,
        "SELECT count(*) FROM"
        " (SELECT period, channel, state, sum (n) AS n, sum (fallbacks) AS f"
        "  FROM delivery_count GROUP BY 1, 2, 3 HAVING sum (n) <> 0 OR sum (fallbacks) <> 0) c"
        " FULL JOIN (SELECT period, channel, state, count(*) AS n, count (fallback_of) AS f"
        "  FROM delivery GROUP BY 1, 2, 3) d USING (period, channel, state)"
        " WHERE c.n IS DISTINCT FROM d.n OR c.f IS DISTINCT FROM d.f");
}

#define assert_counters_exact(conn) assert_int_equal (s_counter_mismatches (conn), 0)

/*  One notice per bill and channel of the subscriber, PENDING.  */
static void
s_create_deliveries (PGconn *conn)
{
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose,"
                  " event_seq)"
                  " SELECT b.period, b.bill_id, b.subscriber_id, c, 'BILL_ISSUED', o.seq"
                  " FROM bill b JOIN subscriber s ON s.id = b.subscriber_id"
                  " JOIN outbox o ON o.period = b.period AND o.bill_id = b.bill_id,"
                  " unnest (s.channels) c");
}

/*  Runs verb with NULL-terminated key, value pairs. *json is set on OK.  */
static int
s_query (PGconn *conn, const bf_query_ctx_t *ctx, char **json, char *err, size_t errsize,
         const char *verb, ...)
{
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    Billflow__Argument args[8], *argp[8];
    cmd.verb = (char *)verb;
    cmd.command_id = (char *)"q-1";
    cmd.target = (char *)"control";
    va_list ap;
    va_start (ap, verb);
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
    return bf_query (conn, ctx, &cmd, json, err, errsize);
}

/*  The document of a query that must succeed.  */
static json_t *
s_doc (PGconn *conn, const bf_query_ctx_t *ctx, const char *verb, const char *k1, const char *v1,
       const char *k2, const char *v2)
{
    char *json = NULL, err[512];
    int rc = s_query (conn, ctx, &json, err, sizeof err, verb, k1, v1, k2, v2, NULL);
    if (rc != BF_QUERY_OK)
        fail_msg ("%s failed (%d): %s", verb, rc, err);
    assert_non_null (json);
    json_error_t jerr;
    json_t *doc = json_loads (json, 0, &jerr);
    if (!doc)
        fail_msg ("%s: not JSON (%s): %s", verb, jerr.text, json);
    free (json);
    return doc;
}

/*  True when object has exactly the keys listed (NULL-terminated).  */
static bool
s_has_keys (json_t *object, ...)
{
    if (!json_is_object (object))
        return false;
    va_list ap;
    va_start (ap, object);
    size_t n = 0;
    bool ok = true;
    const char *key;
    while ((key = va_arg (ap, const char *))) {
        n++;
        if (!json_object_get (object, key)) {
            fprintf (stderr, "# missing key %s\n", key);
            ok = false;
        }
    }
    va_end (ap);
    return ok && json_object_size (object) == n;
}

static const bf_query_ctx_t s_no_pii = { NULL, 1000 };

//  --------------------------------------------------------------------------
//  Counters

static void
test_counters_follow_every_statement (void **state)
{
    (void)state;
    char *db = s_settled_db (300, 5);
    PGconn *conn = bf_testdb_connect (db);
    assert_non_null (conn);
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM delivery_count"), 0);

    /*  INSERT ... SELECT, many rows in one statement.  */
    s_create_deliveries (conn);
    int64_t total = s_scalar (conn, "SELECT count(*) FROM delivery");
    assert_true (total > 300);
    assert_counters_exact (conn);

    /*  INSERT ... ON CONFLICT DO NOTHING adding nothing, as a redelivered
        event does.  */
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose)"
                  " SELECT period, bill_id, subscriber_id, channel, purpose FROM delivery"
                  " ON CONFLICT DO NOTHING");
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM delivery"), total);
    assert_counters_exact (conn);

    /*  COPY (a second purpose, so the unique key allows the rows).  */
    PGresult *bills = PQexec (conn, "SELECT period, bill_id, subscriber_id FROM bill");
    assert_int_equal (PQresultStatus (bills), PGRES_TUPLES_OK);
    bf_copy_t *copy = bf_copy_begin (conn, "COPY delivery (period, bill_id, subscriber_id,"
                                           " channel, purpose, state, final_at) FROM STDIN");
    assert_non_null (copy);
    for (int i = 0; i < PQntuples (bills); i++) {
        bf_copy_str (copy, PQgetvalue (bills, i, 0));
        bf_copy_str (copy, PQgetvalue (bills, i, 1));
        bf_copy_str (copy, PQgetvalue (bills, i, 2));
        bf_copy_str (copy, i % 2 ? "SMS" : "PUSH");
        bf_copy_str (copy, "REMINDER");
        bf_copy_str (copy, i % 5 ? "PENDING" : "CANCELLED");
        bf_copy_str (copy, i % 5 ? NULL : "2026-11-01 00:00:00+00");
        assert_int_equal (bf_copy_row_end (copy), BF_DB_OK);
    }
    int copied = PQntuples (bills);
    PQclear (bills);
    assert_int_equal (bf_copy_end (&copy, NULL), BF_DB_OK);
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM delivery"), total + copied);
    assert_int_equal (
        s_scalar (conn, "SELECT sum (n) FROM delivery_count WHERE state = 'CANCELLED'"),
        (copied + 4) / 5);
    assert_counters_exact (conn);

    /*  UPDATEs of many rows, moving them between several states at once.  */
    s_exec (conn, "UPDATE delivery SET state = CASE id % 4 WHEN 0 THEN 'SENDING'"
                  " WHEN 1 THEN 'RETRY' WHEN 2 THEN 'HELD' ELSE state END"
                  " WHERE state = 'PENDING'");
    assert_counters_exact (conn);
    s_exec (conn, "UPDATE delivery SET state = CASE WHEN id % 10 = 3 THEN 'FAILED'"
                  " ELSE 'DELIVERED' END, final_at = now () WHERE state = 'SENDING'");
    assert_counters_exact (conn);

    /*  An UPDATE that moves nothing between states writes no counter.  */
    s_exec (conn, "BEGIN");
    int64_t versions
        = s_scalar (conn, "SELECT coalesce (sum (n_tup_upd + n_tup_ins), 0)"
                          " FROM pg_stat_xact_user_tables WHERE relname = 'delivery_count'");
    s_exec (conn, "UPDATE delivery SET last_error = 'note', updated_at = now ()");
    assert_int_equal (s_scalar (conn, "SELECT coalesce (sum (n_tup_upd + n_tup_ins), 0)"
                                      " FROM pg_stat_xact_user_tables"
                                      " WHERE relname = 'delivery_count'"),
                      versions);
    s_exec (conn, "COMMIT");
    assert_counters_exact (conn);

    /*  SMS fallbacks of failed emails, counted apart as well.  */
    s_exec (conn, "UPDATE delivery SET state = 'FAILED', final_at = now ()"
                  " WHERE channel = 'EMAIL' AND purpose = 'BILL_ISSUED' AND id % 3 = 0");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose,"
                  " fallback_of) SELECT period, bill_id, subscriber_id, 'SMS', 'FALLBACK', id"
                  " FROM delivery WHERE state = 'FAILED' AND channel = 'EMAIL'");
    int64_t fallbacks
        = s_scalar (conn, "SELECT count(*) FROM delivery WHERE fallback_of IS NOT NULL");
    assert_true (fallbacks > 0);
    assert_int_equal (s_scalar (conn, "SELECT sum (fallbacks) FROM delivery_count"), fallbacks);
    assert_counters_exact (conn);

    /*  Work rolled back leaves the counters as they were.  */
    s_exec (conn, "BEGIN");
    s_exec (conn, "UPDATE delivery SET state = 'CANCELLED', final_at = now ()"
                  " WHERE state <> 'CANCELLED'");
    s_exec (conn, "DELETE FROM delivery WHERE fallback_of IS NOT NULL");
    s_exec (conn, "ROLLBACK");
    assert_counters_exact (conn);

    /*  DELETE, fallbacks first (they reference the failed emails).  */
    s_exec (conn, "DELETE FROM delivery WHERE fallback_of IS NOT NULL OR purpose = 'REMINDER'");
    assert_int_equal (s_scalar (conn, "SELECT sum (fallbacks) FROM delivery_count"), 0);
    assert_counters_exact (conn);
    s_exec (conn, "DELETE FROM delivery WHERE id % 2 = 0");
    assert_counters_exact (conn);

    /*  TRUNCATE empties them.  */
    s_exec (conn, "TRUNCATE delivery CASCADE");
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM delivery_count"), 0);
    s_create_deliveries (conn);
    assert_counters_exact (conn);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

typedef struct {
    const char *db;
    int k; /* this writer's deliveries: id % 4 = k */
    int rounds;
    char error[256];
} s_writer_t;

/*  Moves its deliveries PENDING -> SENDING -> RETRY -> PENDING ..., two
    statements a transaction, as a dispatcher's flush does.  */
static void *
s_writer (void *arg)
{
    s_writer_t *self = arg;
    PGconn *conn = PQconnectdb (self->db);
    if (PQstatus (conn) != CONNECTION_OK) {
        snprintf (self->error, sizeof self->error, "connect: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    char sql[512];
    snprintf (sql, sizeof sql,
              "BEGIN;"
              " UPDATE delivery SET state = CASE state WHEN 'PENDING' THEN 'SENDING'"
              "   WHEN 'SENDING' THEN 'RETRY' ELSE 'PENDING' END WHERE id %% 4 = %d;"
              " UPDATE delivery SET state = 'HELD' WHERE id %% 4 = %d AND id %% 7 = 0;"
              " UPDATE delivery SET state = 'PENDING' WHERE id %% 4 = %d AND state = 'HELD';"
              " COMMIT",
              self->k, self->k, self->k);
    for (int i = 0; i < self->rounds && !self->error[0]; i++) {
        PGresult *res = PQexec (conn, sql);
        if (PQresultStatus (res) != PGRES_COMMAND_OK)
            snprintf (self->error, sizeof self->error, "round %d: %s", i,
                      PQresultErrorMessage (res));
        PQclear (res);
    }
    PQfinish (conn);
    return NULL;
}

static void
test_counters_under_concurrent_writers (void **state)
{
    (void)state;
    char *db = s_settled_db (400, 6);
    PGconn *conn = bf_testdb_connect (db);
    s_create_deliveries (conn);

    enum { N = 4 };
    s_writer_t writers[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        writers[i] = (s_writer_t){ db, i, 40, "" };
        assert_int_equal (pthread_create (&threads[i], NULL, s_writer, &writers[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join (threads[i], NULL);
        if (writers[i].error[0])
            fail_msg ("writer %d: %s", i, writers[i].error);
    }
    assert_counters_exact (conn);
    assert_true (s_scalar (conn, "SELECT count (DISTINCT shard) FROM delivery_count") > 1);

    /*  A writer never waits for another's counter rows: hold the shard a
        second connection would start with, lock its rows too, and that
        connection's writes still go through at once, into another shard.  */
    PGconn *other = bf_testdb_connect (db);
    int64_t home = s_scalar (other, "SELECT pg_backend_pid () % 16");
    char sql[512];
    s_exec (conn, "BEGIN");
    snprintf (sql, sizeof sql, "SELECT pg_advisory_xact_lock (1650877539, %lld)", (long long)home);
    s_exec (conn, sql);
    snprintf (sql, sizeof sql,
              "INSERT INTO delivery_count (period, channel, state, shard, n)"
              " SELECT '" PERIOD "', c, s, %lld, 0 FROM unnest (ARRAY['EMAIL', 'SMS', 'PUSH']) c,"
              " unnest (ARRAY['PENDING', 'SENDING', 'RETRY', 'HELD', 'DELIVERED']) s"
              " ON CONFLICT (period, channel, state, shard) DO UPDATE SET n = delivery_count.n",
              (long long)home);
    s_exec (conn, sql);
    s_exec (other, "SET lock_timeout = '2s'");
    s_exec (other, "UPDATE delivery SET state = 'DELIVERED', final_at = now () WHERE id % 5 = 0");
    s_exec (other, "UPDATE delivery SET state = 'SENDING' WHERE state = 'PENDING' AND id % 5 = 1");
    s_exec (conn, "COMMIT");
    assert_counters_exact (conn);

    PQfinish (other);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Documents

static void
s_check_run (json_t *run, PGconn *conn)
{
    assert_true (s_has_keys (run, "run_id", "period", "state", "rerate", "chunk_size",
                             "chunks_total", "chunks_done", "subscribers_done", "bills",
                             "amount_total", "rating_errors", "command_id", "created_at",
                             "started_at", "finished_at", "seconds", NULL));
    assert_int_equal (bf_json_int (run, "run_id"),
                      s_scalar (conn, "SELECT max (run_id) FROM settlement_run"));
    assert_string_equal (bf_json_str (run, "period"), PERIOD);
    assert_string_equal (bf_json_str (run, "state"), "COMPLETED");
    assert_false (bf_json_bool (run, "rerate"));
    assert_int_equal (bf_json_int (run, "bills"), s_scalar (conn, "SELECT count(*) FROM bill"));
    assert_int_equal (bf_json_int (run, "amount_total"),
                      s_scalar (conn, "SELECT sum (total) FROM bill"));
    assert_int_equal (bf_json_int (run, "subscribers_done"),
                      s_scalar (conn, "SELECT count(*) FROM subscriber"));
    assert_int_equal (bf_json_int (run, "chunks_done"), bf_json_int (run, "chunks_total"));
    assert_int_equal (bf_json_int (run, "rating_errors"),
                      s_scalar (conn, "SELECT count(*) FROM rating_error"));
    assert_true (json_is_null (bf_json_at (run, "command_id")));
    /*  RFC 3339 UTC.  */
    const char *created = bf_json_str (run, "created_at");
    assert_int_equal (strlen (created), strlen ("2026-10-01T00:00:00.000Z"));
    assert_int_equal (created[10], 'T');
    assert_int_equal (created[23], 'Z');
    assert_true (json_is_string (bf_json_at (run, "finished_at")));
    assert_true (json_is_number (bf_json_at (run, "seconds")));
    assert_true (json_number_value (bf_json_at (run, "seconds")) >= 0);
}

static void
test_run_show_and_runs_list (void **state)
{
    (void)state;
    char *db = s_settled_db (250, 7);
    PGconn *conn = bf_testdb_connect (db);
    int64_t bills = s_scalar (conn, "SELECT count(*) FROM bill");

    /*  Settled, nothing ingested: not final.  */
    json_t *doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_true (s_has_keys (doc, "run", "schedule", "notices", "events", "rating_errors", "final",
                             NULL));
    assert_true (json_is_null (bf_json_at (doc, "schedule"))); /* no run.schedule */
    s_check_run (bf_json_at (doc, "run"), conn);
    assert_true (s_has_keys (bf_json_at (doc, "notices"), "total", "by_state", "by_channel",
                             "fallbacks", "held_until", NULL));
    assert_int_equal (bf_json_int (doc, "notices.total"), 0);
    assert_int_equal (json_object_size (bf_json_at (doc, "notices.by_state")), 0);
    assert_true (json_is_null (bf_json_at (doc, "notices.held_until")));
    assert_true (s_has_keys (bf_json_at (doc, "events"), "published_seq", "ingested_seq",
                             "unsequenced", NULL));
    assert_int_equal (bf_json_int (doc, "events.published_seq"), bills);
    assert_int_equal (bf_json_int (doc, "events.ingested_seq"), 0);
    assert_false (bf_json_bool (doc, "events.unsequenced"));
    assert_true (json_is_array (bf_json_at (doc, "rating_errors")));
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  By run_id, the same run; an unknown run is null with no notices.  */
    doc = s_doc (conn, &s_no_pii, "run.show", "run_id", "1", NULL, NULL);
    s_check_run (bf_json_at (doc, "run"), conn);
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "run.show", "run_id", "99", NULL, NULL);
    assert_true (json_is_null (bf_json_at (doc, "run")));
    assert_int_equal (bf_json_int (doc, "notices.total"), 0);
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  Rating errors: the first 10 of the period, by subscriber.  */
    s_exec (conn, "INSERT INTO rating_error (period, subscriber_id, run_id, reason)"
                  " SELECT '" PERIOD "', id, 1, 'reason \"' || id || '\"' FROM subscriber"
                  " WHERE id % 20 = 0");
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    json_t *errors = bf_json_at (doc, "rating_errors");
    assert_int_equal (json_array_size (errors), 10);
    assert_true (s_has_keys (json_array_get (errors, 0), "subscriber_id", "reason", NULL));
    int64_t first = s_scalar (conn, "SELECT min (subscriber_id) FROM rating_error");
    assert_int_equal (bf_json_int (doc, "rating_errors.0.subscriber_id"), first);
    char reason[64];
    snprintf (reason, sizeof reason, "reason \"%lld\"", (long long)first);
    assert_string_equal (bf_json_str (doc, "rating_errors.0.reason"), reason);
    assert_true (bf_json_int (doc, "rating_errors.1.subscriber_id") > first);
    json_decref (doc);
    s_exec (conn, "DELETE FROM rating_error");

    /*  Ingested, notices pending: not final.  */
    s_exec (conn, "INSERT INTO notify_cursor (consumer, last_seq)"
                  " SELECT 'notify', last_seq FROM relay_state");
    s_create_deliveries (conn);
    int64_t notices = s_scalar (conn, "SELECT count(*) FROM delivery");
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_int_equal (bf_json_int (doc, "events.ingested_seq"), bills);
    assert_int_equal (bf_json_int (doc, "notices.total"), notices);
    assert_int_equal (bf_json_int (doc, "notices.by_state.PENDING"), notices);
    assert_int_equal (bf_json_int (doc, "notices.by_channel.EMAIL.PENDING"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE channel = 'EMAIL'"));
    assert_int_equal (bf_json_int (doc, "notices.by_channel.PUSH.PENDING"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE channel = 'PUSH'"));
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  Delivered, failed with SMS fallbacks delivered, some held: final —
        held notices are held by a rule the operator sees (held_until), and
        do not keep the period open (G4).  */
    s_exec (conn, "UPDATE delivery SET state = CASE WHEN id % 9 = 0 AND channel = 'EMAIL'"
                  " THEN 'FAILED' ELSE 'DELIVERED' END, final_at = now ()");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose,"
                  " fallback_of, state, final_at) SELECT period, bill_id, subscriber_id, 'SMS',"
                  " 'FALLBACK', id, 'DELIVERED', now () FROM delivery WHERE state = 'FAILED'");
    s_exec (conn,
            "UPDATE delivery SET state = 'HELD', final_at = NULL,"
            " not_before = '2026-11-02 21:00:00+00'::timestamptz + (id % 5) * interval '1 minute'"
            " WHERE id % 6 = 1 AND state = 'DELIVERED'");
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_int_equal (bf_json_int (doc, "notices.total"),
                      s_scalar (conn, "SELECT count(*) FROM delivery"));
    assert_int_equal (bf_json_int (doc, "notices.by_state.HELD"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE state = 'HELD'"));
    assert_int_equal (bf_json_int (doc, "notices.by_state.FAILED"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE state = 'FAILED'"));
    assert_null (bf_json_at (doc, "notices.by_state.PENDING")); /* zero: omitted */
    assert_int_equal (
        bf_json_int (doc, "notices.fallbacks"),
        s_scalar (conn, "SELECT count(*) FROM delivery WHERE fallback_of IS NOT NULL"));
    assert_true (bf_json_int (doc, "notices.fallbacks") > 0);
    assert_string_equal (bf_json_str (doc, "notices.held_until"), "2026-11-02T21:00:00.000Z");
    assert_true (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  One retrying: not final.  */
    s_exec (conn, "UPDATE delivery SET state = 'RETRY', final_at = NULL"
                  " WHERE id = (SELECT min (id) FROM delivery WHERE state = 'DELIVERED')");
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  Released and delivered: final.  */
    s_exec (conn, "UPDATE delivery SET state = 'DELIVERED', final_at = now ()"
                  " WHERE state = 'RETRY'");
    s_exec (conn, "UPDATE delivery SET state = 'DELIVERED', final_at = now ()"
                  " WHERE state = 'HELD'");
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_true (json_is_null (bf_json_at (doc, "notices.held_until")));
    assert_true (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  An unsequenced event makes it not final again.  */
    s_exec (conn, "INSERT INTO outbox (event_id, topic, period, bill_id, subscriber_id, payload)"
                  " VALUES (gen_random_uuid (), 'BILL', '" PERIOD "', 0, 1, '\\x00')");
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_true (bf_json_bool (doc, "events.unsequenced"));
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);

    /*  runs.list: newest first, limit, period filter; a re-rating run.  */
    s_exec (conn, "INSERT INTO settlement_run (period, state, chunk_size, command_id, started_at)"
                  " VALUES ('" PERIOD "', 'RUNNING', 100, 'cron-2026-10', now ())");
    doc = s_doc (conn, &s_no_pii, "runs.list", NULL, NULL, NULL, NULL);
    assert_int_equal (json_array_size (bf_json_at (doc, "runs")), 2);
    assert_int_equal (bf_json_int (doc, "runs.0.run_id"), 2);
    assert_true (bf_json_bool (doc, "runs.0.rerate"));
    assert_string_equal (bf_json_str (doc, "runs.0.command_id"), "cron-2026-10");
    assert_true (json_is_null (bf_json_at (doc, "runs.0.finished_at")));
    assert_int_equal (bf_json_int (doc, "runs.1.run_id"), 1);
    assert_false (bf_json_bool (doc, "runs.1.rerate"));
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "runs.list", "limit", "1", "period", PERIOD);
    assert_int_equal (json_array_size (bf_json_at (doc, "runs")), 1);
    assert_int_equal (bf_json_int (doc, "runs.0.run_id"), 2);
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "runs.list", "period", "2026-11", NULL, NULL);
    assert_true (s_has_keys (doc, "runs", NULL));
    assert_int_equal (json_array_size (bf_json_at (doc, "runs")), 0);
    json_decref (doc);
    /*  run.show by period shows the newest run.  */
    doc = s_doc (conn, &s_no_pii, "run.show", "period", PERIOD, NULL, NULL);
    assert_int_equal (bf_json_int (doc, "run.run_id"), 2);
    assert_false (bf_json_bool (doc, "final"));
    json_decref (doc);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_deliveries_summary (void **state)
{
    (void)state;
    char *db = s_settled_db (200, 8);
    PGconn *conn = bf_testdb_connect (db);
    s_create_deliveries (conn);
    /*  A second period's notices (bills of 2026-11 as copies).  */
    s_exec (conn, "SELECT bf_ensure_period ('2026-11')");
    s_exec (conn, "INSERT INTO bill (period, subscriber_id, bill_id, run_id, total, due_date,"
                  " line_count) SELECT '2026-11', subscriber_id, bill_id, run_id, total,"
                  " due_date + 30, line_count FROM bill WHERE subscriber_id % 2 = 0");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state,"
                  " not_before) SELECT '2026-11', bill_id, subscriber_id, 'SMS', 'NOV', 'HELD',"
                  " '2026-12-01 22:00:00+00' FROM bill WHERE period = '2026-11'");
    s_exec (conn, "UPDATE delivery SET state = 'HELD', not_before = '2026-11-01 22:30:00+00'"
                  " WHERE period = '" PERIOD "' AND id % 10 = 0");

    json_t *doc = s_doc (conn, &s_no_pii, "deliveries.summary", "period", PERIOD, NULL, NULL);
    assert_true (s_has_keys (doc, "period", "paused", "notices", NULL));
    assert_string_equal (bf_json_str (doc, "period"), PERIOD);
    assert_false (bf_json_bool (doc, "paused"));
    assert_int_equal (bf_json_int (doc, "notices.total"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE period = '" PERIOD "'"));
    assert_int_equal (bf_json_int (doc, "notices.by_state.HELD"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE period = '" PERIOD "'"
                                      " AND state = 'HELD'"));
    assert_string_equal (bf_json_str (doc, "notices.held_until"), "2026-11-01T22:30:00.000Z");
    assert_int_equal (bf_json_int (doc, "notices.fallbacks"), 0);
    json_decref (doc);

    /*  Every period; paused.  */
    s_exec (conn, "UPDATE dispatch_state SET paused = true");
    doc = s_doc (conn, &s_no_pii, "deliveries.summary", NULL, NULL, NULL, NULL);
    assert_true (json_is_null (bf_json_at (doc, "period")));
    assert_true (bf_json_bool (doc, "paused"));
    assert_int_equal (bf_json_int (doc, "notices.total"),
                      s_scalar (conn, "SELECT count(*) FROM delivery"));
    assert_int_equal (bf_json_int (doc, "notices.by_channel.SMS.HELD"),
                      s_scalar (conn, "SELECT count(*) FROM delivery WHERE channel = 'SMS'"
                                      " AND state = 'HELD'"));
    assert_string_equal (bf_json_str (doc, "notices.held_until"), "2026-11-01T22:30:00.000Z");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "deliveries.summary", "period", "2026-11", NULL, NULL);
    assert_string_equal (bf_json_str (doc, "notices.held_until"), "2026-12-01T22:00:00.000Z");
    assert_true (s_has_keys (bf_json_at (doc, "notices.by_channel"), "SMS", NULL));
    json_decref (doc);
    /*  A period without notices.  */
    doc = s_doc (conn, &s_no_pii, "deliveries.summary", "period", "2025-01", NULL, NULL);
    assert_int_equal (bf_json_int (doc, "notices.total"), 0);
    assert_int_equal (json_object_size (bf_json_at (doc, "notices.by_channel")), 0);
    json_decref (doc);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void s_open_contact (PGconn *conn, const bf_pii_t *pii, const char *field, int64_t id,
                            char *out, size_t outsize);

/*  Rows of the tables whose names match pattern (a regular expression)
    read since the transaction began; their sequential scans into
    *seq_scans.  */
static int64_t
s_rows_read (PGconn *conn, const char *pattern, int64_t *seq_scans)
{
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT coalesce (sum (seq_scan), 0) FROM pg_stat_xact_user_tables"
              " WHERE relname ~ '%s'",
              pattern);
    *seq_scans = s_scalar (conn, sql);
    snprintf (sql, sizeof sql,
              "SELECT coalesce (sum (seq_tup_read + idx_tup_fetch), 0)"
              " FROM pg_stat_xact_user_tables WHERE relname ~ '%s'",
              pattern);
    return s_scalar (conn, sql);
}

static void
test_queries_read_counters_not_rows (void **state)
{
    (void)state;
    char *db = s_settled_db (3000, 9);
    PGconn *conn = bf_testdb_connect (db);
    s_create_deliveries (conn);
    s_exec (conn, "UPDATE delivery SET state = CASE id % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'HELD'"
                  " ELSE 'DELIVERED' END, final_at = CASE WHEN id % 20 = 1 THEN NULL"
                  " ELSE now () - id * interval '1 s' END,"
                  " not_before = now () + id * interval '1 s'");
    s_exec (conn, "ANALYZE");
    int64_t deliveries = s_scalar (conn, "SELECT count(*) FROM delivery");
    assert_true (deliveries > 3000);

    static const struct {
        const char *verb, *key, *value;
        int64_t max_rows; /* of delivery read */
    } cases[] = {
        { "run.show", "period", PERIOD, 1 },
        { "deliveries.summary", "period", PERIOD, 1 },
        { "deliveries.summary", NULL, NULL, 1 },
        { "runs.list", NULL, NULL, 0 },
        /*  At most limit per (period, channel), and each one's fallback.  */
        { "deliveries.failures", "limit", "50", 3 * 50 * 2 },
        { "deliveries.failures", "channel", "SMS", 20 * 2 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /*  The backend flushes its table statistics only between
            transactions, so the difference inside one is the query's.  */
        s_exec (conn, "BEGIN");
        int64_t scans0 = 0, bill_scans0 = 0;
        int64_t read0 = s_rows_read (conn, "^delivery$", &scans0);
        int64_t bill_read0 = s_rows_read (conn, "^bill_[0-9]{4}_", &bill_scans0);
        json_t *doc
            = s_doc (conn, &s_no_pii, cases[i].verb, cases[i].key, cases[i].value, NULL, NULL);
        json_decref (doc);
        int64_t seq_scans = 0;
        int64_t read = s_rows_read (conn, "^delivery$", &seq_scans) - read0;
        seq_scans -= scans0;
        fprintf (stderr, "# %s %s: %lld delivery rows read, %lld seq scans\n", cases[i].verb,
                 cases[i].key ? cases[i].key : "", (long long)read, (long long)seq_scans);
        assert_int_equal (seq_scans, 0);
        assert_true (read <= cases[i].max_rows);
        /*  bill is partitioned: its statistics are the partition's.  */
        int64_t bill_scans = 0;
        assert_int_equal (s_rows_read (conn, "^bill_[0-9]{4}_", &bill_scans) - bill_read0, 0);
        assert_int_equal (bill_scans - bill_scans0, 0);
        s_exec (conn, "COMMIT");
    }

    /*  The subscriber and bill queries go by index: no table or partition
        is scanned whole, and they read a handful of rows. (An attempt for
        every notice first: an empty table is cheaper to scan.)  */
    s_exec (conn, "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,"
                  " started_at, finished_at, outcome) SELECT id, 1, channel, 'mock', now (),"
                  " now (), 'DELIVERED' FROM delivery");
    s_exec (conn, "ANALYZE delivery_attempt");
    char err[256], phone[64], bill_id[24];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    bf_query_ctx_t ctx = { pii, 1000 };
    s_open_contact (conn, pii, "phone", 1500, phone, sizeof phone);
    snprintf (bill_id, sizeof bill_id, "%lld",
              (long long)s_scalar (conn, "SELECT max (bill_id) FROM bill"));
    static const char tables[]
        = "^(subscriber|delivery|delivery_attempt|bill_[0-9]{4}_.*|bill_line_[0-9]{4}_.*)$";
    const struct {
        const char *verb, *key, *value, *key2, *value2;
    } lookups[] = {
        { "subscriber.find", "subscriber_id", "1500", NULL, NULL },
        { "subscriber.find", "phone", phone, NULL, NULL },
        { "subscriber.timeline", "subscriber_id", "1500", NULL, NULL },
        { "bill.show", "bill_id", bill_id, NULL, NULL },
        { "bill.show", "period", PERIOD, "subscriber_id", "1500" },
    };
    for (size_t i = 0; i < sizeof lookups / sizeof lookups[0]; i++) {
        s_exec (conn, "BEGIN");
        int64_t scans0 = 0;
        int64_t read0 = s_rows_read (conn, tables, &scans0);
        json_t *doc = s_doc (conn, &ctx, lookups[i].verb, lookups[i].key, lookups[i].value,
                             lookups[i].key2, lookups[i].value2);
        json_decref (doc);
        int64_t seq_scans = 0;
        int64_t read = s_rows_read (conn, tables, &seq_scans) - read0;
        seq_scans -= scans0;
        fprintf (stderr, "# %s %s: %lld rows read, %lld seq scans\n", lookups[i].verb,
                 lookups[i].key, (long long)read, (long long)seq_scans);
        if (seq_scans != 0) {
            char scanned[512];
            char sql[512];
            snprintf (sql, sizeof sql,
                      "SELECT string_agg (relname || ' ' || seq_scan, ', ')"
                      " FROM pg_stat_xact_user_tables WHERE seq_scan > 0 AND relname ~ '%s'",
                      tables);
            bf_testdb_text (conn, sql, scanned, sizeof scanned);
            fail_msg ("%s scans tables whole: %s", lookups[i].verb, scanned);
        }
        assert_true (read <= 60);
        s_exec (conn, "COMMIT");
    }
    bf_pii_destroy (&pii);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Failures and contacts

static void
test_failures_show_masked_contacts (void **state)
{
    (void)state;
    char *db = s_settled_db (120, 10);
    PGconn *conn = bf_testdb_connect (db);
    s_create_deliveries (conn);
    /*  Fail every third notice, one second apart, newest = highest id;
        with an error text that needs escaping.  */
    s_exec (conn, "UPDATE delivery SET state = 'FAILED', attempts = 3,"
                  " final_at = '2026-11-01 10:00:00+00'::timestamptz + id * interval '1 s',"
                  " last_error = 'provider said \"no\", ' || E'it''s \\n\\t\\\\ 사용자 없음 ' || id"
                  " WHERE id % 3 = 0");
    /*  SMS fallbacks as notify adds them: not where the bill has an SMS
        notice already.  */
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose,"
                  " fallback_of) SELECT period, bill_id, subscriber_id, 'SMS', purpose, id"
                  " FROM delivery WHERE state = 'FAILED' AND channel = 'EMAIL'"
                  " ON CONFLICT (bill_id, channel, purpose) DO NOTHING");
    assert_true (s_scalar (conn, "SELECT count(*) FROM delivery WHERE fallback_of IS NOT NULL")
                 > 0);

    char err[256];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (pii);
    bf_query_ctx_t ctx = { pii, 1000 };
    json_t *doc = s_doc (conn, &ctx, "deliveries.failures", "limit", "500", NULL, NULL);
    char *text = json_dumps (doc, 0);
    json_t *list = bf_json_at (doc, "failures");
    int64_t failed = s_scalar (conn, "SELECT count(*) FROM delivery WHERE state = 'FAILED'");
    assert_true (failed > 20);
    assert_int_equal ((int64_t)json_array_size (list), failed);

    PGresult *res = PQexec (conn, "SELECT d.id, d.channel, s.id, s.email_enc, s.phone_enc,"
                                  " d.last_error, f.id FROM delivery d"
                                  " JOIN subscriber s ON s.id = d.subscriber_id"
                                  " LEFT JOIN delivery f ON f.fallback_of = d.id"
                                  " WHERE d.state = 'FAILED' ORDER BY d.final_at DESC, d.id DESC");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    int seen[3] = { 0 };
    for (int i = 0; i < PQntuples (res); i++) {
        json_t *item = json_array_get (list, (size_t)i);
        assert_true (s_has_keys (item, "id", "period", "bill_id", "subscriber_id", "channel",
                                 "attempts", "last_error", "contact", "final_at", "fallback_id",
                                 NULL));
        assert_int_equal (bf_json_int (item, "id"), strtoll (PQgetvalue (res, i, 0), NULL, 10));
        assert_int_equal (bf_json_int (item, "attempts"), 3);
        assert_string_equal (bf_json_str (item, "last_error"), PQgetvalue (res, i, 5));
        const char *channel = PQgetvalue (res, i, 1);
        assert_string_equal (bf_json_str (item, "channel"), channel);
        if (PQgetisnull (res, i, 6))
            assert_true (json_is_null (bf_json_at (item, "fallback_id")));
        else
            assert_int_equal (bf_json_int (item, "fallback_id"),
                              strtoll (PQgetvalue (res, i, 6), NULL, 10));
        const char *contact = bf_json_str (item, "contact");
        uint64_t subject = strtoull (PQgetvalue (res, i, 2), NULL, 10);
        if (!strcmp (channel, "PUSH")) {
            assert_string_equal (contact, "-");
            seen[2]++;
            continue;
        }
        bool email = !strcmp (channel, "EMAIL");
        size_t len = 0;
        unsigned char *sealed
            = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, i, email ? 3 : 4), &len);
        char plain[256], masked[BF_MASK_MAX];
        assert_true (
            bf_pii_open (pii, email ? "email" : "phone", subject, sealed, len, plain, sizeof plain)
            > 0);
        PQfreemem (sealed);
        if (email)
            bf_mask_email (plain, masked, sizeof masked);
        else
            bf_mask_phone (plain, masked, sizeof masked);
        assert_string_equal (contact, masked);
        assert_string_not_equal (contact, plain);
        /*  Never the plain contact, anywhere in the document.  */
        assert_null (strstr (text, plain));
        seen[email ? 0 : 1]++;
    }
    assert_true (seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    PQclear (res);
    free (text);
    json_decref (doc);

    /*  Newest first, limit, channel and period filters.  */
    doc = s_doc (conn, &ctx, "deliveries.failures", "channel", "EMAIL", "limit", "5");
    list = bf_json_at (doc, "failures");
    assert_int_equal (json_array_size (list), 5);
    assert_int_equal (bf_json_int (doc, "failures.0.id"),
                      s_scalar (conn, "SELECT max (id) FROM delivery WHERE state = 'FAILED'"
                                      " AND channel = 'EMAIL'"));
    for (size_t i = 0; i < 5; i++) {
        json_t *item = json_array_get (list, i);
        assert_string_equal (bf_json_str (item, "channel"), "EMAIL");
        assert_non_null (strchr (bf_json_str (item, "contact"), '@'));
        if (i > 0)
            assert_true (strcmp (bf_json_str (item, "final_at"),
                                 bf_json_str (json_array_get (list, i - 1), "final_at"))
                         < 0);
    }
    json_decref (doc);
    doc = s_doc (conn, &ctx, "deliveries.failures", NULL, NULL, NULL, NULL);
    assert_int_equal (json_array_size (bf_json_at (doc, "failures")), 20); /* the default limit */
    json_decref (doc);
    doc = s_doc (conn, &ctx, "deliveries.failures", "period", "2026-09", NULL, NULL);
    assert_int_equal (json_array_size (bf_json_at (doc, "failures")), 0);
    json_decref (doc);

    /*  Without a PII key, or with another key: "(unavailable)".  */
    doc = s_doc (conn, &s_no_pii, "deliveries.failures", "channel", "SMS", NULL, NULL);
    assert_true (json_array_size (bf_json_at (doc, "failures")) > 0);
    assert_string_equal (bf_json_str (doc, "failures.0.contact"), "(unavailable)");
    json_decref (doc);
    char other_key[BF_PII_KEY_HEX_LEN + 1];
    bf_pii_keygen (other_key, sizeof other_key);
    bf_pii_t *other = bf_pii_new (other_key, err, sizeof err);
    bf_query_ctx_t other_ctx = { other, 1000 };
    doc = s_doc (conn, &other_ctx, "deliveries.failures", "channel", "EMAIL", NULL, NULL);
    assert_string_equal (bf_json_str (doc, "failures.0.contact"), "(unavailable)");
    json_decref (doc);

    bf_pii_destroy (&other);
    bf_pii_destroy (&pii);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Subscribers and bills

/*  verb with these arguments (NULL ends them early) is refused with an
    error that says needle.  */
static void
s_assert_bad (PGconn *conn, const bf_query_ctx_t *ctx, const char *verb, const char *const *kv,
              const char *needle)
{
    char *json = NULL, err[512];
    int rc = s_query (conn, ctx, &json, err, sizeof err, verb, kv[0], kv[1], kv[2], kv[3], NULL);
    if (rc != BF_QUERY_BAD || json || !strstr (err, needle))
        fail_msg ("%s %s=%s: rc %d, '%s' does not say '%s'", verb, kv[0] ? kv[0] : "",
                  kv[1] ? kv[1] : "", rc, err, needle);
    assert_true (strlen (err) < 200);
    for (const char *p = err; *p; p++)
        assert_true ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

/*  The clear contact field ("email", "phone") of subscriber id, opened
    here from its sealed column, into out ("" when it has none).  */
static void
s_open_contact (PGconn *conn, const bf_pii_t *pii, const char *field, int64_t id, char *out,
                size_t outsize)
{
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT %s_enc FROM subscriber WHERE id = %lld", field,
              (long long)id);
    PGresult *res = PQexec (conn, sql);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), 1);
    out[0] = 0;
    if (!PQgetisnull (res, 0, 0)) {
        size_t len = 0;
        unsigned char *sealed = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, 0, 0),
                                                 &len);
        assert_true (bf_pii_open (pii, field, (uint64_t)id, sealed, len, out, outsize) > 0);
        PQfreemem (sealed);
    }
    PQclear (res);
}

/*  The one subscriber a subscriber.find finds, checked: its id, its
    masked contacts, and no clear contact anywhere in the document.  */
static void
s_assert_found (PGconn *conn, const bf_query_ctx_t *ctx, const char *key, const char *value,
                int64_t id, const char *email, const char *phone)
{
    json_t *doc = s_doc (conn, ctx, "subscriber.find", key, value, NULL, NULL);
    char *text = json_dumps (doc, 0);
    json_t *list = bf_json_at (doc, "subscribers");
    if (json_array_size (list) != 1)
        fail_msg ("subscriber.find %s=%s: %s", key, value, text);
    json_t *sub = json_array_get (list, 0);
    assert_true (s_has_keys (sub, "subscriber_id", "email", "phone", "push", "channels",
                             "activated_on", "terminated_on", NULL));
    assert_int_equal (bf_json_int (sub, "subscriber_id"), id);
    char masked[BF_MASK_MAX];
    assert_string_equal (bf_json_str (sub, "phone"), bf_mask_phone (phone, masked, sizeof masked));
    if (*email)
        assert_string_equal (bf_json_str (sub, "email"),
                             bf_mask_email (email, masked, sizeof masked));
    else
        assert_true (json_is_null (bf_json_at (sub, "email")));
    if (*email)
        assert_null (strstr (text, email));
    assert_null (strstr (text, phone));
    assert_null (strstr (text, phone + 3)); /* nor its last 8 digits */
    free (text);
    json_decref (doc);
}

static void
test_subscriber_find (void **state)
{
    (void)state;
    char *db = s_settled_db (200, 11);
    PGconn *conn = bf_testdb_connect (db);
    char err[512];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (pii);
    bf_query_ctx_t ctx = { pii, 1000 };

    /*  Subscribers with and without an email.  */
    int64_t with = s_scalar (conn, "SELECT min (id) FROM subscriber WHERE email_enc IS NOT NULL");
    int64_t without = s_scalar (conn, "SELECT min (id) FROM subscriber WHERE email_enc IS NULL");
    int64_t ids[] = { with, without };
    for (size_t i = 0; i < 2; i++) {
        char email[256], phone[64], id_text[24];
        s_open_contact (conn, pii, "email", ids[i], email, sizeof email);
        s_open_contact (conn, pii, "phone", ids[i], phone, sizeof phone);
        assert_int_equal (strlen (phone), 11);
        snprintf (id_text, sizeof id_text, "%lld", (long long)ids[i]);
        s_assert_found (conn, &ctx, "subscriber_id", id_text, ids[i], email, phone);
        s_assert_found (conn, &ctx, "phone", phone, ids[i], email, phone);
        /*  Typed as people type it: dashes, the country code.  */
        char typed[64];
        snprintf (typed, sizeof typed, "%.3s-%.4s-%.4s", phone, phone + 3, phone + 7);
        s_assert_found (conn, &ctx, "phone", typed, ids[i], email, phone);
        snprintf (typed, sizeof typed, "+82 %.2s %.4s %.4s", phone + 1, phone + 3, phone + 7);
        s_assert_found (conn, &ctx, "phone", typed, ids[i], email, phone);
        if (!*email)
            continue;
        s_assert_found (conn, &ctx, "email", email, ids[i], email, phone);
        /*  The hash ignores case, as the importer's does.  */
        char upper[256];
        snprintf (upper, sizeof upper, "%s", email);
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        s_assert_found (conn, &ctx, "email", upper, ids[i], email, phone);
    }

    /*  Not found: an empty list.  */
    static const char *const none[][2] = {
        { "subscriber_id", "999999999" },
        { "email", "nobody@nowhere.example" },
        { "phone", "010-0000-0001" },
        /*  SQL-ish text is only ever hashed.  */
        { "email", "x@y.com';DROP\\TABLE--" },
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        json_t *doc = s_doc (conn, &ctx, "subscriber.find", none[i][0], none[i][1], NULL, NULL);
        assert_int_equal (json_array_size (bf_json_at (doc, "subscribers")), 0);
        json_decref (doc);
    }
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM subscriber"), 200);

    /*  Bad arguments: a clear error naming the argument.  */
    char huge[5000];
    memset (huge, '7', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    static const char *const bad[][3] = {
        { "subscriber_id", "-1", "subscriber_id: expected a positive integer" },
        { "subscriber_id", "0", "subscriber_id: expected a positive integer" },
        { "subscriber_id", "1 OR 1=1", "subscriber_id: expected a positive integer" },
        { "subscriber_id", "99999999999999999999", "subscriber_id: expected a positive integer" },
        { "email", "no-at-sign", "email: expected an email address" },
        { "email", "a b@example.com", "email: expected an email address" },
        { "email", "\xff\xfe@example.com", "email: expected an email address" },
        { "email", "a@b@example.com", "email: expected an email address" },
        { "phone", "' OR ''='", "phone: expected a Korean mobile number" },
        { "phone", "02-123-4567", "phone: expected a Korean mobile number" },
        { "phone", "010-1234-5678\n", "phone: expected a Korean mobile number" },
        { "phone", NULL, "phone: expected a Korean mobile number" },
        { "name", "kim", "unknown argument \"name\" for subscriber.find" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kv[] = { bad[i][0], bad[i][1] ? bad[i][1] : huge, NULL, NULL };
        s_assert_bad (conn, &ctx, "subscriber.find", kv, bad[i][2]);
    }
    const char *none_given[] = { NULL, NULL, NULL, NULL };
    s_assert_bad (conn, &ctx, "subscriber.find", none_given, "takes one of subscriber_id");
    const char *two[] = { "subscriber_id", "1", "phone", "01012345678" };
    s_assert_bad (conn, &ctx, "subscriber.find", two, "only one");
    /*  No key, no lookup by contact (and never by decrypting).  */
    const char *by_phone[] = { "phone", "010-1234-5678", NULL, NULL };
    s_assert_bad (conn, &s_no_pii, "subscriber.find", by_phone, "PII key");
    json_t *doc = s_doc (conn, &s_no_pii, "subscriber.find", "subscriber_id", "1", NULL, NULL);
    assert_string_equal (bf_json_str (doc, "subscribers.0.phone"), "(unavailable)");
    json_decref (doc);

    bf_pii_destroy (&pii);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

/*  A database of subscribers with bills in two periods, notices and
    attempts, and the query context with the PII key.  */
typedef struct {
    char *db;
    PGconn *conn;
    bf_pii_t *pii;
    bf_query_ctx_t ctx;
} s_history_t;

static void
s_history_open (s_history_t *self)
{
    char *db = s_settled_db (150, 12);
    PGconn *conn = bf_testdb_connect (db);
    char err[256];
    self->pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (self->pii);
    self->ctx = (bf_query_ctx_t){ self->pii, 1000 };
    s_create_deliveries (conn);
    /*  2026-11: copies of the bills of even subscribers, new bill ids,
        their lines too.  */
    s_exec (conn, "SELECT bf_ensure_period ('2026-11')");
    s_exec (conn, "INSERT INTO bill (period, subscriber_id, bill_id, run_id, total, due_date,"
                  " line_count) SELECT '2026-11', subscriber_id, bill_id + 1000000, run_id,"
                  " total + 10, due_date + 30, line_count FROM bill WHERE subscriber_id % 2 = 0");
    s_exec (conn, "INSERT INTO bill_line (period, subscriber_id, line_no, code, amount, label)"
                  " SELECT '2026-11', l.subscriber_id, l.line_no, l.code, l.amount + 1, l.label"
                  " FROM bill_line l JOIN bill b ON b.period = '2026-11'"
                  " AND b.subscriber_id = l.subscriber_id WHERE l.period = '" PERIOD "'");
    s_exec (conn, "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose, state,"
                  " attempts, last_error, final_at) SELECT period, bill_id, subscriber_id, 'SMS',"
                  " 'BILL_ISSUED', 'FAILED', 2, 'rejected: 010-9876-5432 unknown', now ()"
                  " FROM bill WHERE period = '2026-11'");
    /*  Attempts: two for every third notice, the second one naming a
        phone number the answer must mask.  */
    s_exec (conn, "INSERT INTO delivery_attempt (delivery_id, attempt_no, sent_as, provider,"
                  " started_at, finished_at, outcome, status_code, error)"
                  " SELECT d.id, n, CASE d.channel WHEN 'SMS' THEN 'LMS' ELSE d.channel END,"
                  " 'mock-' || lower (d.channel), '2026-11-02 09:00:00+00'::timestamptz"
                  " + n * interval '1 min', '2026-11-02 09:00:01+00'::timestamptz"
                  " + n * interval '1 min', CASE n WHEN 1 THEN 'TRANSIENT' ELSE 'DELIVERED' END,"
                  " CASE n WHEN 1 THEN 503 ELSE 200 END,"
                  " CASE n WHEN 1 THEN 'busy, call 010-2222-3333' END"
                  " FROM delivery d, generate_series (1, 2) n WHERE d.id % 3 = 0");
    self->conn = conn;
    self->db = db;
}

static void
s_history_close (s_history_t *self)
{
    bf_pii_destroy (&self->pii);
    PQfinish (self->conn);
    bf_testdb_drop (&self->db);
}


/*  Checks a NOTICES list against the deliveries of (period, bill_id) and
    their attempts, read here from the tables.  */
static void
s_assert_notices (PGconn *conn, json_t *notices, const char *period, int64_t bill_id)
{
    char sql[512];
    snprintf (sql, sizeof sql,
              "SELECT d.id, d.channel, d.state, d.attempts, coalesce (d.last_error, ''),"
              " (SELECT count(*) FROM delivery_attempt a WHERE a.delivery_id = d.id)"
              " FROM delivery d WHERE d.period = '%s' AND d.bill_id = %lld ORDER BY d.id DESC",
              period, (long long)bill_id);
    PGresult *res = PQexec (conn, sql);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal ((int)json_array_size (notices), PQntuples (res));
    for (int r = 0; r < PQntuples (res); r++) {
        json_t *n = json_array_get (notices, (size_t)r);
        assert_true (s_has_keys (n, "id", "channel", "purpose", "state", "attempts", "contact",
                                 "fallback_of", "hold_reason", "not_before", "last_error",
                                 "created_at", "final_at", "attempt_log", NULL));
        assert_int_equal (bf_json_int (n, "id"), atoll (PQgetvalue (res, r, 0)));
        assert_string_equal (bf_json_str (n, "channel"), PQgetvalue (res, r, 1));
        assert_string_equal (bf_json_str (n, "state"), PQgetvalue (res, r, 2));
        assert_int_equal (bf_json_int (n, "attempts"), atoll (PQgetvalue (res, r, 3)));
        if (*PQgetvalue (res, r, 4))
            assert_string_equal (bf_json_str (n, "last_error"), "rejected: 010-****-5432 unknown");
        const char *contact = bf_json_str (n, "contact");
        assert_true (bf_mask_is_masked (contact) || !strcmp (contact, "-"));
        if (!strcmp (PQgetvalue (res, r, 1), "PUSH"))
            assert_string_equal (contact, "-");
        else
            assert_non_null (strstr (contact, "***"));
        json_t *log = bf_json_at (n, "attempt_log");
        assert_int_equal ((int64_t)json_array_size (log), atoll (PQgetvalue (res, r, 5)));
        for (size_t a = 0; a < json_array_size (log); a++) {
            json_t *at = json_array_get (log, a);
            int64_t no = (int64_t)(json_array_size (log) - a); /* newest first */
            assert_int_equal (bf_json_int (at, "attempt_no"), no);
            assert_string_equal (bf_json_str (at, "outcome"), no == 1 ? "TRANSIENT" : "DELIVERED");
            assert_non_null (strstr (bf_json_str (at, "provider"), "mock-"));
            if (no == 1)
                assert_string_equal (bf_json_str (at, "error"), "busy, call 010-****-3333");
            else
                assert_true (json_is_null (bf_json_at (at, "error")));
            assert_non_null (bf_json_str (at, "started_at"));
            assert_non_null (bf_json_str (at, "finished_at"));
        }
    }
    PQclear (res);
}

static void
test_subscriber_timeline (void **state)
{
    (void)state;
    s_history_t h;
    s_history_open (&h);
    PGconn *conn = h.conn;
    bf_pii_t *pii = h.pii;
    const bf_query_ctx_t ctx = h.ctx;

    /*  An even subscriber with an email: two bills.  */
    int64_t id = s_scalar (conn, "SELECT min (subscriber_id) FROM bill b JOIN subscriber s"
                                 " ON s.id = b.subscriber_id WHERE b.period = '2026-11'"
                                 " AND s.email_enc IS NOT NULL AND 'EMAIL' = ANY (s.channels)");
    char id_text[24], email[256], phone[64];
    snprintf (id_text, sizeof id_text, "%lld", (long long)id);
    s_open_contact (conn, pii, "email", id, email, sizeof email);
    s_open_contact (conn, pii, "phone", id, phone, sizeof phone);
    json_t *doc = s_doc (conn, &ctx, "subscriber.timeline", "subscriber_id", id_text, NULL, NULL);
    char *text = json_dumps (doc, 0);
    assert_true (s_has_keys (doc, "subscriber", "bills", "more", NULL));
    assert_int_equal (bf_json_int (doc, "subscriber.subscriber_id"), id);
    assert_false (bf_json_bool (doc, "more"));
    assert_null (strstr (text, email));
    assert_null (strstr (text, phone + 3));
    assert_null (strstr (text, "2222-3333"));

    char sql[512];
    snprintf (sql, sizeof sql,
              "SELECT period, bill_id, total, due_date, run_id FROM bill"
              " WHERE subscriber_id = %lld ORDER BY period DESC",
              (long long)id);
    PGresult *res = PQexec (conn, sql);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), 2);
    json_t *bills = bf_json_at (doc, "bills");
    assert_int_equal ((int)json_array_size (bills), PQntuples (res));
    int notices = 0;
    for (int r = 0; r < PQntuples (res); r++) {
        json_t *b = json_array_get (bills, (size_t)r);
        assert_true (s_has_keys (b, "period", "bill_id", "subscriber_id", "run_id", "total",
                                 "due_date", "line_count", "issued_at", "notices", NULL));
        assert_string_equal (bf_json_str (b, "period"), PQgetvalue (res, r, 0));
        assert_int_equal (bf_json_int (b, "bill_id"), atoll (PQgetvalue (res, r, 1)));
        assert_int_equal (bf_json_int (b, "total"), atoll (PQgetvalue (res, r, 2)));
        assert_string_equal (bf_json_str (b, "due_date"), PQgetvalue (res, r, 3));
        assert_int_equal (bf_json_int (b, "run_id"), atoll (PQgetvalue (res, r, 4)));
        s_assert_notices (conn, bf_json_at (b, "notices"), PQgetvalue (res, r, 0),
                          atoll (PQgetvalue (res, r, 1)));
        notices += (int)json_array_size (bf_json_at (b, "notices"));
    }
    assert_true (notices >= 3);
    PQclear (res);
    free (text);
    json_decref (doc);

    /*  Bounded: limit=1 gives the newest bill and says there is more.  */
    doc = s_doc (conn, &ctx, "subscriber.timeline", "subscriber_id", id_text, "limit", "1");
    assert_int_equal (json_array_size (bf_json_at (doc, "bills")), 1);
    assert_string_equal (bf_json_str (doc, "bills.0.period"), "2026-11");
    assert_true (bf_json_bool (doc, "more"));
    json_decref (doc);

    /*  Unknown subscriber: null and no bills.  */
    doc = s_doc (conn, &ctx, "subscriber.timeline", "subscriber_id", "424242", NULL, NULL);
    assert_true (json_is_null (bf_json_at (doc, "subscriber")));
    assert_int_equal (json_array_size (bf_json_at (doc, "bills")), 0);
    json_decref (doc);

    static const char *const bad[][5] = {
        { "subscriber_id", "-5", NULL, NULL, "subscriber_id: expected a positive integer" },
        { "subscriber_id", "", NULL, NULL, "subscriber_id: expected a positive integer" },
        { "limit", "0", NULL, NULL, "limit: expected an integer from 1 to 500" },
        { "bill_id", "1", NULL, NULL, "unknown argument \"bill_id\" for subscriber.timeline" },
        { "limit", "5", NULL, NULL, "needs subscriber_id" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_assert_bad (conn, &ctx, "subscriber.timeline", bad[i], bad[i][4]);
    s_history_close (&h);
}

/*  bill.show's statement equals the bill and its lines in the tables.  */
static void
s_assert_statement (PGconn *conn, json_t *doc, const char *period, int64_t subscriber_id)
{
    char sql[512];
    snprintf (sql, sizeof sql,
              "SELECT bill_id, total, due_date, line_count FROM bill"
              " WHERE period = '%s' AND subscriber_id = %lld",
              period, (long long)subscriber_id);
    PGresult *res = PQexec (conn, sql);
    assert_int_equal (PQntuples (res), 1);
    json_t *bill = bf_json_at (doc, "bill");
    assert_true (s_has_keys (bill, "period", "bill_id", "subscriber_id", "run_id", "total",
                             "due_date", "line_count", "issued_at", "lines", "notices", NULL));
    assert_string_equal (bf_json_str (bill, "period"), period);
    assert_int_equal (bf_json_int (bill, "bill_id"), atoll (PQgetvalue (res, 0, 0)));
    assert_int_equal (bf_json_int (bill, "total"), atoll (PQgetvalue (res, 0, 1)));
    assert_string_equal (bf_json_str (bill, "due_date"), PQgetvalue (res, 0, 2));
    int64_t bill_id = atoll (PQgetvalue (res, 0, 0));
    int line_count = atoi (PQgetvalue (res, 0, 3));
    PQclear (res);
    assert_int_equal (bf_json_int (doc, "subscriber.subscriber_id"), subscriber_id);

    snprintf (sql, sizeof sql,
              "SELECT line_no, code, label, amount FROM bill_line"
              " WHERE period = '%s' AND subscriber_id = %lld ORDER BY line_no",
              period, (long long)subscriber_id);
    res = PQexec (conn, sql);
    json_t *lines = bf_json_at (bill, "lines");
    assert_int_equal ((int)json_array_size (lines), PQntuples (res));
    assert_int_equal (PQntuples (res), line_count);
    assert_true (line_count > 0);
    for (int r = 0; r < PQntuples (res); r++) {
        json_t *l = json_array_get (lines, (size_t)r);
        assert_true (s_has_keys (l, "line_no", "code", "label", "amount", NULL));
        assert_int_equal (bf_json_int (l, "line_no"), atoll (PQgetvalue (res, r, 0)));
        assert_string_equal (bf_json_str (l, "code"), PQgetvalue (res, r, 1));
        assert_string_equal (bf_json_str (l, "label"), PQgetvalue (res, r, 2));
        assert_int_equal (bf_json_int (l, "amount"), atoll (PQgetvalue (res, r, 3)));
    }
    PQclear (res);
    s_assert_notices (conn, bf_json_at (bill, "notices"), period, bill_id);
}

static void
test_bill_show (void **state)
{
    (void)state;
    s_history_t h;
    s_history_open (&h);

    int64_t id = s_scalar (h.conn, "SELECT min (subscriber_id) FROM bill WHERE period = '2026-11'"
                                 " AND line_count > 3");
    char id_text[24], bill_text[24], email[256], phone[64];
    snprintf (id_text, sizeof id_text, "%lld", (long long)id);
    s_open_contact (h.conn, h.pii, "email", id, email, sizeof email);
    s_open_contact (h.conn, h.pii, "phone", id, phone, sizeof phone);
    static const char *const periods[] = { PERIOD, "2026-11" };
    for (size_t p = 0; p < 2; p++) {
        char sql[256];
        snprintf (sql, sizeof sql,
                  "SELECT bill_id FROM bill WHERE period = '%s' AND subscriber_id = %lld",
                  periods[p], (long long)id);
        snprintf (bill_text, sizeof bill_text, "%lld", (long long)s_scalar (h.conn, sql));
        json_t *doc = s_doc (h.conn, &h.ctx, "bill.show", "bill_id", bill_text, NULL, NULL);
        assert_true (s_has_keys (doc, "bill", "subscriber", NULL));
        s_assert_statement (h.conn, doc, periods[p], id);
        char *text = json_dumps (doc, 0);
        if (*email)
            assert_null (strstr (text, email));
        assert_null (strstr (text, phone + 3));
        free (text);
        json_decref (doc);
        doc = s_doc (h.conn, &h.ctx, "bill.show", "period", periods[p], "subscriber_id", id_text);
        s_assert_statement (h.conn, doc, periods[p], id);
        json_decref (doc);
    }

    /*  Not found: null.  */
    json_t *doc = s_doc (h.conn, &h.ctx, "bill.show", "bill_id", "987654321", NULL, NULL);
    assert_true (json_is_null (bf_json_at (doc, "bill")));
    assert_true (json_is_null (bf_json_at (doc, "subscriber")));
    json_decref (doc);
    doc = s_doc (h.conn, &h.ctx, "bill.show", "period", "2025-01", "subscriber_id", id_text);
    assert_true (json_is_null (bf_json_at (doc, "bill")));
    json_decref (doc);

    static const char *const bad[][5] = {
        { "bill_id", "-1", NULL, NULL, "bill_id: expected a positive integer" },
        { "bill_id", "1e9", NULL, NULL, "bill_id: expected a positive integer" },
        { "period", "2026-13", "subscriber_id", "1", "period: expected a period YYYY-MM" },
        { "period", "2026-10", NULL, NULL, "bill.show takes bill_id=N, or period" },
        { "subscriber_id", "1", NULL, NULL, "bill.show takes bill_id=N, or period" },
        { "bill_id", "1", "period", "2026-10", "bill.show takes bill_id=N, or period" },
        { "bill_id", "1", "bill_id", "2", "bill_id: given more than once" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_assert_bad (h.conn, &h.ctx, "bill.show", bad[i], bad[i][4]);
    s_history_close (&h);
}

//  --------------------------------------------------------------------------
//  Services, commands, audit

static void
test_services_list_up_and_down (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    json_t *doc = s_doc (conn, &s_no_pii, "services.list", NULL, NULL, NULL, NULL);
    assert_true (s_has_keys (doc, "services", NULL));
    assert_int_equal (json_array_size (bf_json_at (doc, "services")), 0);
    json_decref (doc);

    s_exec (conn, "INSERT INTO service_instance (instance_id, service, key_name, pid, version,"
                  " verbs, last_heartbeat, state) VALUES"
                  " ('settle-a', 'settle', 'settle-1', 101, '0.1.0', '{run.start,run.stop}',"
                  "  now () - interval '500 ms', '{\"relay\": \"active\", \"workers\": 2}'),"
                  " ('settle-b', 'settle', 'settle-2', 102, '0.1.0', '{run.start}',"
                  "  now () - interval '10 s', '{}'),"
                  " ('notify-a', 'notify', 'notify-1', 201, '0.1.0', '{dispatch.pause}',"
                  "  now () - interval '2500 ms', '{\"paused\": false}')");
    bf_query_ctx_t ctx = { NULL, 1000 };
    doc = s_doc (conn, &ctx, "services.list", NULL, NULL, NULL, NULL);
    json_t *list = bf_json_at (doc, "services");
    assert_int_equal (json_array_size (list), 3);
    json_t *item;
    size_t i;
    int found = 0;
    json_array_foreach (list, i, item)
    {
        assert_true (s_has_keys (item, "service", "instance_id", "pid", "version", "verbs",
                                 "registered_at", "last_heartbeat", "age_ms", "up", "leader",
                                 "state", NULL));
        /*  No relay has published and no control runs: nobody leads;
            notify has no leader at all.  */
        if (!strcmp (bf_json_str (item, "service"), "notify"))
            assert_true (json_is_null (bf_json_at (item, "leader")));
        else
            assert_false (bf_json_bool (item, "leader"));
        const char *id = bf_json_str (item, "instance_id");
        int64_t age = bf_json_int (item, "age_ms");
        if (!strcmp (id, "settle-a")) {
            assert_true (bf_json_bool (item, "up"));
            assert_true (age >= 500 && age < 2500);
            assert_int_equal (bf_json_int (item, "pid"), 101);
            assert_int_equal (json_array_size (bf_json_at (item, "verbs")), 2);
            assert_string_equal (bf_json_str (item, "verbs.1"), "run.stop");
            assert_string_equal (bf_json_str (item, "state.relay"), "active");
            assert_int_equal (bf_json_int (item, "state.workers"), 2);
            found++;
        } else if (!strcmp (id, "settle-b")) {
            assert_false (bf_json_bool (item, "up"));
            assert_true (age >= 10000);
            assert_int_equal (json_object_size (bf_json_at (item, "state")), 0);
            found++;
        } else if (!strcmp (id, "notify-a")) {
            assert_true (bf_json_bool (item, "up")); /* 2.5 s < 3 x 1 s */
            assert_string_equal (bf_json_str (item, "service"), "notify");
            assert_false (bf_json_bool (item, "state.paused"));
            found++;
        }
    }
    assert_int_equal (found, 3);
    json_decref (doc);

    /*  With a shorter heartbeat, notify-a is down.  */
    ctx.heartbeat_ms = 500;
    doc = s_doc (conn, &ctx, "services.list", NULL, NULL, NULL, NULL);
    json_array_foreach (bf_json_at (doc, "services"), i,
                        item) if (!strcmp (bf_json_str (item, "instance_id"), "notify-a"))
        assert_false (bf_json_bool (item, "up"));
    json_decref (doc);

    /*  Leaders: the relay that published last, and the control that
        control_leader names; control's processes are listed first.  */
    s_exec (conn, "UPDATE relay_state SET relay_id = 'settle-b'");
    s_exec (conn, "INSERT INTO control_instance (instance_id, pid, bind, last_heartbeat) VALUES"
                  " ('control-1', 301, 'tcp://*:7100', now () - interval '20 s'),"
                  " ('control-2', 302, 'tcp://*:7101', now ())");
    s_exec (conn, "UPDATE control_leader SET instance_id = 'control-2', since = now ()");
    ctx.heartbeat_ms = 1000;
    doc = s_doc (conn, &ctx, "services.list", NULL, NULL, NULL, NULL);
    list = bf_json_at (doc, "services");
    assert_int_equal (json_array_size (list), 5);
    assert_string_equal (bf_json_str (doc, "services.0.service"), "control");
    assert_string_equal (bf_json_str (doc, "services.0.instance_id"), "control-2");
    assert_true (bf_json_bool (doc, "services.0.leader"));
    assert_true (bf_json_bool (doc, "services.0.up"));
    assert_string_equal (bf_json_str (doc, "services.0.state.bind"), "tcp://*:7101");
    assert_string_equal (bf_json_str (doc, "services.1.instance_id"), "control-1");
    assert_false (bf_json_bool (doc, "services.1.leader"));
    assert_false (bf_json_bool (doc, "services.1.up"));
    assert_int_equal (bf_json_int (doc, "services.1.pid"), 301);
    json_array_foreach (list, i, item)
    {
        const char *id = bf_json_str (item, "instance_id");
        if (!strcmp (id, "settle-b"))
            assert_string_equal (bf_json_str (item, "leader"), "relay");
        else if (!strcmp (id, "settle-a"))
            assert_false (bf_json_bool (item, "leader"));
    }
    json_decref (doc);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_commands_and_audit_lists (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    s_exec (conn, "INSERT INTO command (command_id, client, target, verb, args, state, result,"
                  " error, received_at, forwarded_at, completed_at) VALUES"
                  " ('c-1', 'ops-kim', 'settle', 'run.start', '{\"period\": \"2026-10\"}', 'DONE',"
                  "  '{\"outcome\": \"started\"}', NULL, '2026-11-01 00:00:01+00',"
                  "  '2026-11-01 00:00:02+00', '2026-11-01 00:00:03+00'),"
                  " ('c-2', 'ops-kim', 'notify', 'dispatch.pause', '{}', 'FAILED', NULL,"
                  "  'the \"notify\" service said: no\n', '2026-11-01 00:00:04+00', NULL,"
                  "  '2026-11-01 00:00:05+00'),"
                  " ('c-3', 'cron', 'settle', 'run.start', '{\"period\": \"2026-11\"}',"
                  "  'RECEIVED', NULL, NULL, '2026-11-01 00:00:06+00', NULL, NULL)");
    json_t *doc = s_doc (conn, &s_no_pii, "commands.list", NULL, NULL, NULL, NULL);
    json_t *list = bf_json_at (doc, "commands");
    assert_int_equal (json_array_size (list), 3);
    assert_true (s_has_keys (json_array_get (list, 0), "command_id", "client", "target", "verb",
                             "args", "state", "result", "error", "received_at", "forwarded_at",
                             "completed_at", NULL));
    assert_string_equal (bf_json_str (doc, "commands.0.command_id"), "c-3");
    assert_string_equal (bf_json_str (doc, "commands.0.args.period"), "2026-11");
    assert_true (json_is_null (bf_json_at (doc, "commands.0.result")));
    assert_true (json_is_null (bf_json_at (doc, "commands.0.completed_at")));
    assert_string_equal (bf_json_str (doc, "commands.1.error"),
                         "the \"notify\" service said: no\n");
    assert_string_equal (bf_json_str (doc, "commands.2.result.outcome"), "started");
    assert_string_equal (bf_json_str (doc, "commands.2.received_at"), "2026-11-01T00:00:01.000Z");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "commands.list", "target", "settle", "limit", "1");
    assert_int_equal (json_array_size (bf_json_at (doc, "commands")), 1);
    assert_string_equal (bf_json_str (doc, "commands.0.command_id"), "c-3");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "commands.list", "state", "DONE", "target", "settle");
    assert_int_equal (json_array_size (bf_json_at (doc, "commands")), 1);
    assert_string_equal (bf_json_str (doc, "commands.0.command_id"), "c-1");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "commands.list", "command_id", "c-2", NULL, NULL);
    assert_int_equal (json_array_size (bf_json_at (doc, "commands")), 1);
    assert_string_equal (bf_json_str (doc, "commands.0.state"), "FAILED");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "commands.list", "command_id", "c-9", NULL, NULL);
    assert_int_equal (json_array_size (bf_json_at (doc, "commands")), 0);
    json_decref (doc);

    s_exec (conn, "INSERT INTO audit_log (at, actor, command_id, target, verb, args, outcome,"
                  " detail) SELECT '2026-11-01 00:00:00+00'::timestamptz + i * interval '1 s',"
                  " CASE WHEN i % 3 = 0 THEN 'dashboard' ELSE 'ops-kim' END,"
                  " CASE WHEN i % 2 = 0 THEN 'c-' || i END, 'settle', 'run.start',"
                  " '{\"period\": \"2026-10\"}', 'OK', 'detail <' || i || '>'"
                  " FROM generate_series (1, 30) i");
    s_exec (conn, "INSERT INTO audit_log (actor, outcome, detail)"
                  " VALUES ('unknown', 'REFUSED', 'key \"abc\" refused')");
    doc = s_doc (conn, &s_no_pii, "audit.list", NULL, NULL, NULL, NULL);
    list = bf_json_at (doc, "audit");
    assert_int_equal (json_array_size (list), 20);
    assert_true (s_has_keys (json_array_get (list, 0), "id", "at", "actor", "command_id", "target",
                             "verb", "args", "outcome", "detail", NULL));
    assert_int_equal (bf_json_int (doc, "audit.0.id"), 31);
    assert_string_equal (bf_json_str (doc, "audit.0.detail"), "key \"abc\" refused");
    assert_true (json_is_null (bf_json_at (doc, "audit.0.args")));
    assert_int_equal (bf_json_int (doc, "audit.1.id"), 30);
    assert_string_equal (bf_json_str (doc, "audit.1.args.period"), "2026-10");
    assert_string_equal (bf_json_str (doc, "audit.1.at"), "2026-11-01T00:00:30.000Z");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "audit.list", "actor", "dashboard", "limit", "500");
    list = bf_json_at (doc, "audit");
    assert_int_equal (json_array_size (list), 10);
    json_t *item;
    size_t i;
    json_array_foreach (list, i, item)
        assert_string_equal (bf_json_str (item, "actor"), "dashboard");
    json_decref (doc);
    doc = s_doc (conn, &s_no_pii, "audit.list", "command_id", "c-12", "actor", "dashboard");
    assert_int_equal (json_array_size (bf_json_at (doc, "audit")), 1);
    assert_string_equal (bf_json_str (doc, "audit.0.detail"), "detail <12>");
    json_decref (doc);

    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Commands and audit: filters

/*  Rows 1..S_FILTER_ROWS of the filter tests: row i is minute i of
    2026-11-01 (UTC), its actor, verb and state chosen by i so that every
    combination occurs.  */
#define S_FILTER_ROWS 240

static const char *const s_filter_actors[] = { "console/kim", "ops-kim", "cron" };
static const char *const s_filter_verbs[]
    = { "run.start", "run.stop", "dispatch.pause", "deliveries.retry" };
static const char *const s_command_states[]
    = { "RECEIVED", "FORWARDED", "DONE", "FAILED", "REJECTED" };
static const char *const s_audit_outcomes[]
    = { "received", "done", "failed", "refused", "rejected", "repeated" };

/*  A filter: NULL or -1 for "not given". since and until are minutes,
    before a row number.  */
typedef struct {
    const char *actor, *verb, *state;
    int since, until, before, limit;
} s_filter_t;

/*  Sets args[*n] to key=value and counts it.  */
static void
s_filter_arg (Billflow__Argument *args, size_t *n, const char *key, const char *value)
{
    billflow__argument__init (&args[*n]);
    args[*n].key = (char *)key;
    args[*n].value = (char *)value;
    (*n)++;
}

/*  The argument list of filter f for verb (before: "c-NNN" for commands,
    the row number for audit; since and until as RFC 3339 with an offset,
    to check the offset is applied).  */
static size_t
s_filter_args (const s_filter_t *f, bool commands, Billflow__Argument *args, char bufs[4][40])
{
    size_t n = 0;
    if (f->actor)
        s_filter_arg (args, &n, "actor", f->actor);
    if (f->verb)
        s_filter_arg (args, &n, "verb", f->verb);
    if (f->state)
        s_filter_arg (args, &n, "state", f->state);
    if (f->since >= 0) {
        /*  Minute m in Seoul time is minute m + 540 there.  */
        snprintf (bufs[0], 40, "2026-11-01T%02d:%02d:00+09:00", (f->since + 540) / 60,
                  (f->since + 540) % 60);
        s_filter_arg (args, &n, "since", bufs[0]);
    }
    if (f->until >= 0) {
        snprintf (bufs[1], 40, "2026-11-01T%02d:%02d:00Z", f->until / 60, f->until % 60);
        s_filter_arg (args, &n, "until", bufs[1]);
    }
    if (f->before >= 0) {
        snprintf (bufs[2], 40, commands ? "c-%03d" : "%d", f->before);
        s_filter_arg (args, &n, "before_id", bufs[2]);
    }
    snprintf (bufs[3], 40, "%d", f->limit > 0 ? f->limit : 500);
    s_filter_arg (args, &n, "limit", bufs[3]);
    return n;
}

/*  The rows f selects, newest first, as control's list must have them:
    "c-240,c-237,..." for commands, "240,237,..." for audit.  */
static void
s_filter_expect (const s_filter_t *f, bool commands, char *out, size_t outsize)
{
    out[0] = '\0';
    int limit = f->limit > 0 ? f->limit : 500, found = 0;
    for (int i = S_FILTER_ROWS; i >= 1 && found < limit; i--) {
        const char *state = commands ? s_command_states[i % 5] : s_audit_outcomes[i % 6];
        if ((f->actor && strcmp (f->actor, s_filter_actors[i % 3]))
            || (f->verb && strcmp (f->verb, s_filter_verbs[i % 4]))
            || (f->state && strcmp (f->state, state)) || (f->since >= 0 && i < f->since)
            || (f->until >= 0 && i >= f->until) || (f->before >= 0 && i >= f->before))
            continue;
        snprintf (out + strlen (out), outsize - strlen (out), commands ? "%sc-%03d" : "%s%d",
                  found ? "," : "", i);
        found++;
    }
}

/*  Runs verb with filter f and returns its rows' keys as s_filter_expect
    writes them.  */
static void
s_filter_answer (PGconn *conn, const s_filter_t *f, bool commands, char *out, size_t outsize)
{
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    Billflow__Argument args[8], *argp[8];
    char bufs[4][40];
    cmd.verb = (char *)(commands ? "commands.list" : "audit.list");
    cmd.command_id = (char *)"q-1";
    cmd.target = (char *)"control";
    cmd.n_args = s_filter_args (f, commands, args, bufs);
    for (size_t i = 0; i < cmd.n_args; i++)
        argp[i] = &args[i];
    cmd.args = argp;
    char *json = NULL, err[512];
    int rc = bf_query (conn, &s_no_pii, &cmd, &json, err, sizeof err);
    if (rc != BF_QUERY_OK)
        fail_msg ("%s failed (%d): %s", cmd.verb, rc, err);
    json_t *doc = json_loads (json, 0, NULL);
    free (json);
    assert_non_null (doc);
    out[0] = '\0';
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get (doc, commands ? "commands" : "audit"), i, row)
    {
        if (commands)
            snprintf (out + strlen (out), outsize - strlen (out), "%s%s", i ? "," : "",
                      bf_json_str (row, "command_id"));
        else
            snprintf (out + strlen (out), outsize - strlen (out), "%s%lld", i ? "," : "",
                      (long long)bf_json_int (row, "id"));
    }
    json_decref (doc);
}

/*  Each filter alone, in pairs and all together, and pages of older rows
    through before_id: exactly the rows the filter selects, newest first.  */
static void
s_check_filters (PGconn *conn, bool commands)
{
    const char *state_a = commands ? "DONE" : "failed";
    const char *state_b = commands ? "REJECTED" : "repeated";
    const s_filter_t cases[] = {
        { NULL, NULL, NULL, -1, -1, -1, 0 },
        { "ops-kim", NULL, NULL, -1, -1, -1, 0 },
        { "console/kim", NULL, NULL, -1, -1, -1, 0 },
        { "nobody", NULL, NULL, -1, -1, -1, 0 },
        { NULL, "run.stop", NULL, -1, -1, -1, 0 },
        { NULL, "run.resume", NULL, -1, -1, -1, 0 },
        { NULL, NULL, state_a, -1, -1, -1, 0 },
        { NULL, NULL, state_b, -1, -1, -1, 0 },
        { NULL, NULL, NULL, 100, -1, -1, 0 },
        { NULL, NULL, NULL, -1, 30, -1, 0 },
        { NULL, NULL, NULL, 61, 62, -1, 0 },
        { NULL, NULL, NULL, -1, -1, 120, 0 },
        { NULL, NULL, NULL, -1, -1, 120, 7 },
        { "cron", "dispatch.pause", NULL, -1, -1, -1, 0 },
        { "ops-kim", NULL, state_a, 20, 200, -1, 0 },
        { NULL, "run.start", state_b, -1, 150, -1, 0 },
        { "console/kim", "deliveries.retry", state_a, 10, 230, -1, 0 },
        { "console/kim", "deliveries.retry", state_a, 10, 230, 150, 0 },
        { "ops-kim", "run.stop", NULL, 5, 235, 200, 3 },
    };
    char want[4096], got[4096];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        s_filter_expect (&cases[c], commands, want, sizeof want);
        s_filter_answer (conn, &cases[c], commands, got, sizeof got);
        if (strcmp (want, got))
            fail_msg ("%s case %zu:\n want %s\n  got %s", commands ? "commands" : "audit", c, want,
                      got);
    }
    /*  Paging: limit 4, then before_id = the last row of each page, until
        an empty page; the pages are the whole filtered list in order.  */
    s_filter_t f = { "ops-kim", NULL, NULL, 40, -1, -1, 4 };
    char whole[4096] = "", page[1024];
    for (int pages = 0;; pages++) {
        assert_true (pages < 40);
        s_filter_answer (conn, &f, commands, page, sizeof page);
        if (!page[0])
            break;
        snprintf (whole + strlen (whole), sizeof whole - strlen (whole), "%s%s",
                  whole[0] ? "," : "", page);
        const char *last = strrchr (page, ',') ? strrchr (page, ',') + 1 : page;
        f.before = atoi (commands ? last + 2 : last);
    }
    f.limit = 0;
    f.before = -1;
    s_filter_expect (&f, commands, want, sizeof want);
    assert_string_equal (whole, want);
}

/*  Rows 1..S_FILTER_ROWS into command (commands) or audit_log.  */
static void
s_filter_rows (PGconn *conn, bool commands)
{
    const char *const *st = commands ? s_command_states : s_audit_outcomes;
    char states[128];
    snprintf (states, sizeof states, "'%s', '%s', '%s', '%s', '%s'%s%s%s", st[0], st[1], st[2],
              st[3], st[4], commands ? "" : ", '", commands ? "" : st[5], commands ? "" : "'");
    char sql[1024];
    snprintf (sql, sizeof sql,
              "%s SELECT %s, '2026-11-01 00:00:00+00'::timestamptz + i * interval '1 min',"
              " (ARRAY['%s', '%s', '%s'])[i %% 3 + 1], 'settle',"
              " (ARRAY['%s', '%s', '%s', '%s'])[i %% 4 + 1], (ARRAY[%s])[i %% %d + 1]"
              " FROM generate_series (1, %d) i",
              commands ? "INSERT INTO command (command_id, received_at, client, target, verb,"
                         " state)"
                       : "INSERT INTO audit_log (id, at, actor, target, verb, outcome)"
                         " OVERRIDING SYSTEM VALUE",
              commands ? "'c-' || lpad (i::text, 3, '0')" : "i", s_filter_actors[0],
              s_filter_actors[1], s_filter_actors[2], s_filter_verbs[0], s_filter_verbs[1],
              s_filter_verbs[2], s_filter_verbs[3], states, commands ? 5 : 6, S_FILTER_ROWS);
    s_exec (conn, sql);
}

static void
test_commands_list_filters (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    s_filter_rows (conn, true);
    s_check_filters (conn, true);
    /*  An unknown before_id: nothing is older than it.  */
    json_t *doc = s_doc (conn, &s_no_pii, "commands.list", "before_id", "c-999", NULL, NULL);
    assert_int_equal (json_array_size (bf_json_at (doc, "commands")), 0);
    json_decref (doc);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_audit_list_filters (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    s_filter_rows (conn, false);
    s_check_filters (conn, false);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Bad arguments, database failures

static void
test_bad_arguments (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    static const struct {
        const char *verb, *k1, *v1, *k2, *v2;
        const char *expect; /* in the error */
    } cases[] = {
        { "runs.list", "period", "2026-13", NULL, NULL, "period: expected a period YYYY-MM" },
        { "runs.list", "period", "2026-1", NULL, NULL, "period:" },
        { "runs.list", "period", "", NULL, NULL, "period:" },
        { "runs.list", "period", "2026-10 ", NULL, NULL, "period:" },
        { "runs.list", "limit", "0", NULL, NULL, "limit: expected an integer from 1 to 500" },
        { "runs.list", "limit", "501", NULL, NULL, "limit:" },
        { "runs.list", "limit", "-3", NULL, NULL, "limit:" },
        { "runs.list", "limit", "ten", NULL, NULL, "limit:" },
        { "runs.list", "limit", "", NULL, NULL, "limit:" },
        { "runs.list", "limit", "20", "limit", "30", "limit: given more than once" },
        { "runs.list", "run_id", "1", NULL, NULL, "unknown argument \"run_id\" for runs.list" },
        { "run.show", NULL, NULL, NULL, NULL, "run.show needs period" },
        { "run.show", "period", "2026-10", "run_id", "1", "not both" },
        { "run.show", "run_id", "0", NULL, NULL, "run_id: expected a positive integer" },
        { "run.show", "run_id", "-1", NULL, NULL, "run_id:" },
        { "run.show", "run_id", "1x", NULL, NULL, "run_id:" },
        { "run.show", "run_id", "99999999999999999999", NULL, NULL, "run_id:" },
        { "run.show", "run_id", "1", "limit", "2", "unknown argument \"limit\"" },
        { "deliveries.summary", "channel", "SMS", NULL, NULL, "unknown argument \"channel\"" },
        { "deliveries.failures", "channel", "email", NULL, NULL,
          "channel: expected EMAIL, SMS or PUSH" },
        { "deliveries.failures", "channel", "FAX", NULL, NULL, "channel:" },
        { "deliveries.failures", "state", "FAILED", NULL, NULL, "unknown argument \"state\"" },
        { "services.list", "limit", "5", NULL, NULL, "it takes no arguments" },
        { "commands.list", "state", "done", NULL, NULL, "state: expected RECEIVED" },
        { "commands.list", "target", "billing", NULL, NULL, "target: expected settle" },
        { "commands.list", "command_id", "bad id!", NULL, NULL, "command_id:" },
        { "commands.list", "command_id", "", NULL, NULL, "command_id:" },
        { "commands.list", "actor", "ops kim", NULL, NULL, "actor: expected a key name" },
        { "commands.list", "actor", "\xff\xfe", NULL, NULL, "actor:" },
        { "commands.list", "verb", "run.begin", NULL, NULL, "verb: expected a verb of the" },
        { "commands.list", "verb", "run.start\n", NULL, NULL, "verb:" },
        { "commands.list", "verb", "", NULL, NULL, "verb:" },
        { "commands.list", "state", "done", NULL, NULL, "state: expected RECEIVED" },
        { "commands.list", "before_id", "bad id!", NULL, NULL, "before_id: expected a command id" },
        { "commands.list", "since", "2026-11-01 10:00", NULL, NULL,
          "since: expected YYYY-MM-DD or an RFC 3339 time" },
        { "commands.list", "until", "2026-02-30", NULL, NULL, "until:" },
        { "commands.list", "outcome", "done", NULL, NULL, "unknown argument \"outcome\"" },
        { "audit.list", "actor", "ops kim", NULL, NULL, "actor: expected a key name" },
        { "audit.list", "actor", "ops\x01kim", NULL, NULL, "actor:" },
        { "audit.list", "state", "DONE", NULL, NULL, "state: expected received, done" },
        { "audit.list", "state", "FORWARDED", NULL, NULL, "state:" },
        { "audit.list", "verb", "\xc3\x28", NULL, NULL, "verb:" },
        { "audit.list", "since", "2026-13-01", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01T25:00:00Z", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01T10:00:00", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01T10:00:60Z", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01t10:00:00z", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01T10:00:00.1234567Z", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01T10:00:00.Z", NULL, NULL, "since:" },
        { "audit.list", "since", "2026-11-01T10:00:00+24:00", NULL, NULL, "since:" },
        { "audit.list", "until", "yesterday", NULL, NULL, "until: expected YYYY-MM-DD" },
        { "audit.list", "since", "2026-11-02", "until", "2026-11-01",
          "since: must be before until" },
        { "audit.list", "since", "2026-11-01T09:00:00+09:00", "until", "2026-11-01",
          "since: must be before until" },
        { "audit.list", "before_id", "0", NULL, NULL, "before_id: expected a positive integer" },
        { "audit.list", "before_id", "c-1", NULL, NULL, "before_id:" },
        { "audit.list", "target", "settle", NULL, NULL, "unknown argument \"target\"" },
        { "audit.list", "", "x", NULL, NULL, "unknown argument \"\"" },
        { "runs.lisst", NULL, NULL, NULL, NULL, "unknown query \"runs.lisst\"" },
        { "control.status", NULL, NULL, NULL, NULL, "unknown query" },
        { "run.start", "period", "2026-10", NULL, NULL, "unknown query" },
        { "", NULL, NULL, NULL, NULL, "unknown query" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *json = (char *)"untouched", err[256];
        int rc = s_query (conn, &s_no_pii, &json, err, sizeof err, cases[i].verb, cases[i].k1,
                          cases[i].v1, cases[i].k2, cases[i].v2, NULL);
        fprintf (stderr, "# %s %s=%s -> %d: %s\n", cases[i].verb, cases[i].k1 ? cases[i].k1 : "",
                 cases[i].v1 ? cases[i].v1 : "", rc, err);
        assert_int_equal (rc, BF_QUERY_BAD);
        assert_null (json);
        if (!strstr (err, cases[i].expect))
            fail_msg ("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].expect);
    }
    /*  What an attacker sends is not echoed raw.  */
    char *json = NULL, err[256];
    assert_int_equal (s_query (conn, &s_no_pii, &json, err, sizeof err, "runs.list", "period",
                               "\x1b[31m2026\n-10", NULL),
                      BF_QUERY_BAD);
    assert_null (strchr (err, '\x1b'));
    assert_null (strchr (err, '\n'));
    /*  Oversized filters: refused, and the error quotes at most 40 bytes.  */
    static char huge[100001];
    memset (huge, 'a', sizeof huge - 1);
    static const char *const huge_keys[][2]
        = { { "audit.list", "verb" },         { "audit.list", "actor" },
            { "audit.list", "since" },        { "audit.list", "before_id" },
            { "commands.list", "before_id" }, { "commands.list", "until" } };
    for (size_t i = 0; i < sizeof huge_keys / sizeof huge_keys[0]; i++) {
        json = NULL;
        assert_int_equal (s_query (conn, &s_no_pii, &json, err, sizeof err, huge_keys[i][0],
                                   huge_keys[i][1], huge, NULL),
                          BF_QUERY_BAD);
        assert_null (json);
        assert_non_null (strstr (err, huge_keys[i][1]));
        assert_true (strlen (err) < 200);
    }
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_database_failures (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    PGconn *admin = bf_testdb_connect (db);
    char *json = NULL, err[512];

    /*  A permanent failure: BAD, with the database's message. (The query
        reads the view over the counters, db/016_dispatch_claim.sql: the
        view, not the table it names by oid, must go.)  */
    s_exec (admin, "ALTER VIEW delivery_count_shown RENAME TO delivery_count_gone");
    assert_int_equal (s_query (conn, &s_no_pii, &json, err, sizeof err, "deliveries.summary", NULL),
                      BF_QUERY_BAD);
    assert_null (json);
    assert_non_null (strstr (err, "delivery_count"));
    s_exec (admin, "ALTER VIEW delivery_count_gone RENAME TO delivery_count_shown");
    assert_int_equal (s_query (conn, &s_no_pii, &json, err, sizeof err, "deliveries.summary", NULL),
                      BF_QUERY_OK);
    free (json);
    json = NULL;

    /*  A lost connection: RETRY.  */
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (%d)", PQbackendPID (conn));
    s_exec (admin, sql);
    usleep (100 * 1000);
    assert_int_equal (s_query (conn, &s_no_pii, &json, err, sizeof err, "runs.list", NULL),
                      BF_QUERY_RETRY);
    assert_null (json);
    assert_non_null (strstr (err, "unavailable"));
    assert_int_equal (s_query (conn, &s_no_pii, &json, err, sizeof err, "services.list", NULL),
                      BF_QUERY_RETRY);
    assert_int_equal (s_query (NULL, &s_no_pii, &json, err, sizeof err, "services.list", NULL),
                      BF_QUERY_RETRY);
    /*  Bad arguments are reported as such even without a database.  */
    assert_int_equal (
        s_query (NULL, &s_no_pii, &json, err, sizeof err, "runs.list", "limit", "0", NULL),
        BF_QUERY_BAD);

    PQfinish (admin);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

int
main (void)
{
    bf_log_init ("itest_query", BF_LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_counters_follow_every_statement),
        cmocka_unit_test (test_counters_under_concurrent_writers),
        cmocka_unit_test (test_run_show_and_runs_list),
        cmocka_unit_test (test_deliveries_summary),
        cmocka_unit_test (test_queries_read_counters_not_rows),
        cmocka_unit_test (test_failures_show_masked_contacts),
        cmocka_unit_test (test_subscriber_find),
        cmocka_unit_test (test_subscriber_timeline),
        cmocka_unit_test (test_bill_show),
        cmocka_unit_test (test_services_list_up_and_down),
        cmocka_unit_test (test_commands_and_audit_lists),
        cmocka_unit_test (test_commands_list_filters),
        cmocka_unit_test (test_audit_list_filters),
        cmocka_unit_test (test_bad_arguments),
        cmocka_unit_test (test_database_failures),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
