/*  Unit: bf_db's one classification of a failure (retryable or
    permanent, and the SQLSTATE reported) over a table of SQLSTATEs and
    connection states, and the connection facts libpq gives it without a
    server. The reconnect gate's behaviour against a real server is in
    tests/integration/itest_dbcrash.c.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <czmq.h>

#include "bf_db.h"

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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        /*  First: it starts with the database counted as available.  */
        cmocka_unit_test (test_gate_spaces_attempts),
        cmocka_unit_test (test_classification_table),
        cmocka_unit_test (test_sqlstate_lists),
        cmocka_unit_test (test_libpq_facts),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
