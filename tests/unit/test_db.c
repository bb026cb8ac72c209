/*  Unit: bf_db's one classification of a failure (retryable or
    permanent, and the SQLSTATE reported) over a table of SQLSTATEs and
    connection states, and the connection facts libpq gives it without a
    server, the reconnect gate without one, and the logging of repeated
    statement failures (one episode per SQLSTATE) on a clock of the test's
    own. The reconnect gate's behaviour against a real server is in
    tests/integration/itest_dbcrash.c.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <czmq.h>

#include "bf_db.h"
#include "bf_log.h"
#include "bf_testutil.h"

typedef struct {
    const char *server; /* the SQLSTATE the server sent, NULL: none */
    bool error;         /* an error result (or none at all) */
    bool connection_ok;
    const char *reported;
    int status;
} s_row_t;

static const s_row_t s_table[] = {
    /*  Lost connections, wherever they show up.  */
    { NULL, true, false, "08006", BF_DB_RETRY },  /* "server closed the connection unexpectedly" */
    { NULL, true, true, "08000", BF_DB_RETRY },   /* libpq's own error, status not yet BAD */
    { NULL, false, false, "08006", BF_DB_RETRY }, /* a stray result on a dead connection */
    { "", true, true, "08000", BF_DB_RETRY },
    { "08000", true, true, "08000", BF_DB_RETRY },
    { "08003", true, true, "08003", BF_DB_RETRY },
    { "08006", true, true, "08006", BF_DB_RETRY },
    { "08001", true, false, "08001", BF_DB_RETRY },
    { "08004", true, false, "08004", BF_DB_RETRY },
    { "08P01", true, false, "08P01", BF_DB_RETRY },
    { "57P01", true, false, "57P01", BF_DB_RETRY }, /* admin_shutdown */
    { "57P01", true, true, "57P01", BF_DB_RETRY },
    { "57P02", true, false, "57P02", BF_DB_RETRY }, /* crash_shutdown */
    { "57P03", true, false, "57P03", BF_DB_RETRY }, /* in recovery */
    { "57P05", true, false, "57P05", BF_DB_RETRY }, /* idle_session_timeout */
    /*  A permanent SQLSTATE on a connection that then broke: the session
        is gone, do it again on a new one.  */
    { "23505", true, false, "23505", BF_DB_RETRY },
    { "XX000", true, false, "XX000", BF_DB_RETRY },
    /*  Transaction conflicts and resources.  */
    { "40001", true, true, "40001", BF_DB_RETRY },
    { "40P01", true, true, "40P01", BF_DB_RETRY },
    { "55P03", true, true, "55P03", BF_DB_RETRY },
    { "53000", true, true, "53000", BF_DB_RETRY },
    { "53100", true, true, "53100", BF_DB_RETRY },
    { "53200", true, true, "53200", BF_DB_RETRY },
    { "53300", true, true, "53300", BF_DB_RETRY },
    /*  Permanent: the same answer every time.  */
    { "53400", true, true, "53400", BF_DB_FAIL }, /* configuration_limit_exceeded */
    { "40002", true, true, "40002", BF_DB_FAIL }, /* integrity violation at commit */
    { "40003", true, true, "40003", BF_DB_FAIL },
    { "57014", true, true, "57014", BF_DB_FAIL }, /* query_canceled (statement_timeout) */
    { "57P04", true, true, "57P04", BF_DB_FAIL }, /* database_dropped */
    { "23505", true, true, "23505", BF_DB_FAIL },
    { "23503", true, true, "23503", BF_DB_FAIL },
    { "22P02", true, true, "22P02", BF_DB_FAIL },
    { "42601", true, true, "42601", BF_DB_FAIL },
    { "42P01", true, true, "42P01", BF_DB_FAIL },
    { "42501", true, true, "42501", BF_DB_FAIL },
    { "25P02", true, true, "25P02", BF_DB_FAIL },
    { "25006", true, true, "25006", BF_DB_FAIL },
    { "0A000", true, true, "0A000", BF_DB_FAIL },
    { "54000", true, true, "54000", BF_DB_FAIL },
    { "58030", true, true, "58030", BF_DB_FAIL },
    { "XX000", true, true, "XX000", BF_DB_FAIL },
    { "XX001", true, true, "XX001", BF_DB_FAIL },
    /*  An unexpected kind of result on a good connection: a bug.  */
    { NULL, false, true, "XX000", BF_DB_FAIL },
};

static void
test_classification_table (void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_table / sizeof s_table[0]; i++) {
        const s_row_t *row = &s_table[i];
        char reported[6] = "?????";
        int status = bf_db_classify_state (row->server, row->error, row->connection_ok, reported);
        if (status != row->status || strcmp (reported, row->reported) != 0)
            fail_msg ("row %zu (%s, error %d, connection ok %d): got %s %s, want %s %s", i,
                      row->server ? row->server : "none", row->error, row->connection_ok,
                      reported, status == BF_DB_RETRY ? "retryable" : "permanent", row->reported,
                      row->status == BF_DB_RETRY ? "retryable" : "permanent");
    }
}

static void
test_sqlstate_lists (void **state)
{
    (void)state;
    assert_false (bf_db_sqlstate_retryable (NULL));
    assert_false (bf_db_sqlstate_retryable (""));
    assert_false (bf_db_sqlstate_retryable ("08"));
    assert_false (bf_db_sqlstate_retryable ("080000"));
    assert_true (bf_db_sqlstate_retryable ("08P01"));
    assert_true (bf_db_sqlstate_lost ("08006"));
    assert_true (bf_db_sqlstate_lost ("57P02"));
    assert_false (bf_db_sqlstate_lost ("57P04"));
    assert_false (bf_db_sqlstate_lost ("40001"));
    assert_false (bf_db_sqlstate_lost ("53100"));
    assert_false (bf_db_sqlstate_lost (NULL));
}

/*  What libpq hands the classifier with no server behind it: a broken
    connection and error results without SQLSTATE are retryable.  */
static void
test_libpq_facts (void **state)
{
    (void)state;
    char reported[6];
    assert_int_equal (bf_db_classify (NULL, NULL, reported), BF_DB_RETRY);
    assert_string_equal (reported, "08006");
    PGconn *bad = PQconnectdb ("host=/nonexistent-billflow-socket-dir port=1 connect_timeout=1");
    assert_non_null (bad);
    assert_int_equal (PQstatus (bad), CONNECTION_BAD);
    assert_int_equal (bf_db_classify (bad, NULL, reported), BF_DB_RETRY);
    assert_string_equal (reported, "08006");
    PGresult *res = PQmakeEmptyPGresult (bad, PGRES_FATAL_ERROR);
    assert_int_equal (bf_db_classify (bad, res, reported), BF_DB_RETRY);
    assert_string_equal (reported, "08006");
    assert_true (bf_db_lost (bad));
    assert_true (bf_db_lost (NULL));
    /*  bf_db_check keeps the classification for the caller.  */
    assert_int_equal (bf_db_check (bad, res, PGRES_COMMAND_OK, "BEGIN"), BF_DB_RETRY);
    assert_int_equal (bf_db_last_status (), BF_DB_RETRY);
    assert_string_equal (bf_db_last_sqlstate (), "08006");
    PQclear (res);
    /*  A COMMAND_OK where rows were expected, on a dead connection: the
        session is gone, so retryable.  */
    res = PQmakeEmptyPGresult (NULL, PGRES_COMMAND_OK);
    assert_int_equal (bf_db_check (bad, res, PGRES_TUPLES_OK, "a query"), BF_DB_RETRY);
    PQclear (res);
    PQfinish (bad);
}

/*  The gate with no server: attempts are spaced by the backoff and a
    caller with no time left is turned away without an attempt.  */
static void
test_gate_spaces_attempts (void **state)
{
    (void)state;
    const char *nowhere = "host=/nonexistent-billflow-socket-dir port=1 connect_timeout=1";
    bf_db_configure (200, 400, 10);
    assert_true (bf_db_available ());
    assert_null (bf_db_connect (nowhere, "test", 0));
    assert_false (bf_db_available ());
    assert_int_equal (bf_db_last_status (), BF_DB_RETRY);
    int64_t due = bf_db_connect_due ();
    int64_t now = zclock_mono ();
    assert_in_range (due - now, 150, 600);
    /*  Not due yet: turned away at once, no attempt.  */
    for (int i = 0; i < 1000; i++)
        assert_null (bf_db_connect (nowhere, "test", 0));
    assert_int_equal (bf_db_connect_due (), due);
    assert_in_range (bf_db_retry_wait_ms (0), 1, 600);
    assert_true (bf_db_retry_wait_ms (5000) >= 5000);
    /*  With a timeout, it waits for the slots: 1.5 s holds at most
        1500 / 200 + 1 attempts (floor 200 ms).  */
    int64_t start = zclock_mono ();
    assert_null (bf_db_connect (nowhere, "test", 1500));
    int64_t took = zclock_mono () - start;
    assert_in_range (took, 1000, 2500);
}

/*  Lines of text at level ("ERROR", "WARN ", "INFO "; "": any) holding
    needle.  */
static int
s_lines (const char *text, const char *level, const char *needle)
{
    int count = 0;
    char marker[16];
    snprintf (marker, sizeof marker, " %s ", level);
    for (const char *line = text; *line;) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen (line);
        char copy[2048];
        snprintf (copy, sizeof copy, "%.*s", (int)len, line);
        if ((!*level || strstr (copy, marker)) && strstr (copy, needle))
            count++;
        line += len + (end ? 1 : 0);
    }
    return count;
}

/*  A full disk: 53100 on every retry. One ERROR line, then a summary at
    most every db.unavailable_log_s, and one line when statements succeed
    again; another SQLSTATE at the same time has an episode of its own.  */
static void
test_repeated_failures_summarised (void **state)
{
    (void)state;
    bf_db_configure (100, 5000, 2); /* a summary at most every 2 s */
    const char *full = "could not extend file: No space left on device";
    int64_t t0 = 1000000;
    bf_testutil_log_capture ();
    bf_db_note_failure ("insert chunk", "53100", BF_DB_RETRY, full, t0);
    /*  30 more failures over 3 s, from several statements.  */
    for (int i = 1; i <= 30; i++)
        bf_db_note_failure (i % 2 ? "insert chunk" : "record attempts", "53100", BF_DB_RETRY, full,
                            t0 + 100 * i);
    bf_db_note_failure ("connect slot", "53300", BF_DB_RETRY, "too many clients", t0 + 1500);
    bf_db_note_failure ("connect slot", "53300", BF_DB_RETRY, "too many clients", t0 + 1600);
    /*  Statements succeed, but the last failure is not an interval old:
        the episode goes on.  */
    bf_db_note_success (t0 + 3500);
    bf_db_note_success (t0 + 4999);
    bf_db_note_success (t0 + 5000); /* quiet for 2 s: over */
    bf_db_note_success (t0 + 6000);
    char *text = bf_testutil_log_captured ();
    if (getenv ("BF_TEST_VERBOSE"))
        fputs (text, stderr);
    assert_int_equal (s_lines (text, "ERROR", "failed (SQLSTATE 53100, retryable): could not"), 1);
    assert_int_equal (s_lines (text, "WARN ", "SQLSTATE 53100"), 1);
    assert_int_equal (s_lines (text, "WARN ",
                               "database: SQLSTATE 53100 for 2 s, 21 failed statements (last: "
                               "record attempts: could not extend file"),
                      1);
    assert_int_equal (s_lines (text, "ERROR", "SQLSTATE 53300"), 1);
    assert_int_equal (
        s_lines (text, "INFO ",
                 "statements succeed again after SQLSTATE 53100 for 3.0 s, 31 failed statements"),
        1);
    assert_int_equal (
        s_lines (text, "INFO ",
                 "statements succeed again after SQLSTATE 53300 for 0.1 s, 2 failed statements"),
        1);
    /*  Nothing else: 31 + 2 failures, 5 lines.  */
    assert_int_equal (s_lines (text, "", "database: "), 5);
    free (text);

    /*  After the end, the next failure of that SQLSTATE begins a new
        episode: ERROR again. One quiet for an interval that no success
        ended is over too.  */
    bf_testutil_log_capture ();
    bf_db_note_failure ("insert chunk", "53100", BF_DB_RETRY, full, t0 + 7000);
    bf_db_note_failure ("insert chunk", "53100", BF_DB_RETRY, full, t0 + 9500);
    bf_db_note_failure ("insert chunk", "53100", BF_DB_RETRY, full, t0 + 9600);
    text = bf_testutil_log_captured ();
    assert_int_equal (s_lines (text, "ERROR", "failed (SQLSTATE 53100, retryable)"), 2);
    assert_int_equal (s_lines (text, "", "database: "), 2);
    free (text);
    bf_testutil_log_capture ();
    bf_db_note_success (t0 + 20000);
    free (bf_testutil_log_captured ());
}

/*  Permanent failures and lost connections are logged every time; the
    transaction conflicts begin their episode at WARN.  */
static void
test_failures_not_summarised (void **state)
{
    (void)state;
    bf_db_configure (100, 5000, 10);
    int64_t t0 = 5000000;
    bf_testutil_log_capture ();
    for (int i = 0; i < 3; i++) {
        bf_db_note_failure ("insert bill", "23505", BF_DB_FAIL, "duplicate key", t0 + i);
        bf_db_note_failure ("poll", "08006", BF_DB_RETRY, "server closed the connection", t0 + i);
        bf_db_note_failure ("claim", "40001", BF_DB_RETRY, "could not serialize", t0 + i);
    }
    bf_db_note_failure ("claim", NULL, BF_DB_RETRY, "no SQLSTATE", t0 + 4);
    bf_db_note_success (t0 + 20000);
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_lines (text, "ERROR", "failed (SQLSTATE 23505, permanent)"), 3);
    assert_int_equal (s_lines (text, "WARN ", "failed (SQLSTATE 08006, retryable)"), 3);
    assert_int_equal (s_lines (text, "WARN ", "failed (SQLSTATE 40001, retryable)"), 1);
    assert_int_equal (s_lines (text, "ERROR", "40001"), 0);
    assert_int_equal (s_lines (text, "WARN ", "claim failed (SQLSTATE , retryable)"), 1);
    assert_int_equal (
        s_lines (text, "INFO ", "succeed again after SQLSTATE 40001 for 0.0 s, 3 failed"), 1);
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        /*  First: it starts with the database counted as available.  */
        cmocka_unit_test (test_gate_spaces_attempts),
        cmocka_unit_test (test_classification_table),
        cmocka_unit_test (test_sqlstate_lists),
        cmocka_unit_test (test_libpq_facts),
        cmocka_unit_test (test_repeated_failures_summarised),
        cmocka_unit_test (test_failures_not_summarised),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
