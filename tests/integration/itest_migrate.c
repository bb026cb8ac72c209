/*  Integration: migrations apply once, in order, also when run twice or by
    several processes at once; an edited migration is refused; the schema's
    constraints refuse what the guarantees forbid.  */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bf_migrate.h"
#include "bf_testdb.h"

static void
test_migrate_twice (void **state)
{
    (void)state;
    char *db = bf_testdb_create (false);
    assert_non_null (db);
    PGconn *conn = bf_testdb_connect (db);
    assert_int_equal (bf_migrate (conn), (int)bf_migrations_count);
    assert_int_equal (bf_migrate (conn), 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM schema_migration"),
                      (int64_t)bf_migrations_count);
    char current[128];
    assert_int_equal (bf_migrate_current (conn, current, sizeof current), 0);
    assert_string_equal (current, bf_migrations[bf_migrations_count - 1].name);
    PQfinish (conn);

    /*  The binary says the same, and is current.  */
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, &out, "migrate"), 0);
    char expected[160];
    snprintf (expected, sizeof expected, "migrate: 0 applied, schema at %s",
              bf_migrations[bf_migrations_count - 1].name);
    assert_non_null (strstr (out, expected));
    free (out);
    bf_testdb_drop (&db);
}

typedef struct {
    const char *conninfo;
    int applied;
} s_worker_t;

static void *
s_migrate_worker (void *arg)
{
    s_worker_t *w = arg;
    PGconn *conn = bf_testdb_connect (w->conninfo);
    w->applied = conn ? bf_migrate (conn) : -1;
    PQfinish (conn);
    return NULL;
}

static void
test_migrate_concurrently (void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        char *db = bf_testdb_create (false);
        assert_non_null (db);
        enum { N = 6 };
        pthread_t threads[N];
        s_worker_t workers[N];
        for (int i = 0; i < N; i++) {
            workers[i] = (s_worker_t){ db, -2 };
            pthread_create (&threads[i], NULL, s_migrate_worker, &workers[i]);
        }
        int total = 0;
        for (int i = 0; i < N; i++) {
            pthread_join (threads[i], NULL);
            assert_true (workers[i].applied >= 0);
            total += workers[i].applied;
        }
        /*  Every migration applied exactly once between them.  */
        assert_int_equal (total, (int)bf_migrations_count);
        PGconn *conn = bf_testdb_connect (db);
        assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM schema_migration"),
                          (int64_t)bf_migrations_count);
        PQfinish (conn);
        bf_testdb_drop (&db);
    }
}

static void
test_edited_migration_is_refused (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    assert_string_equal (bf_testdb_exec (conn, "UPDATE schema_migration SET checksum = 'x'"
                                               " WHERE name = '002_settlement.sql'"),
                         "00000");
    assert_int_equal (bf_migrate (conn), -1);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

/*  A minimal subscriber, bill and run to hang constraint tests on.  */
static void
s_seed (PGconn *conn)
{
    static const char *sql[] = {
        "INSERT INTO plan VALUES ('P1', 'plan', 1000, 1, 1, 1, 1, 1, 1)",
        "INSERT INTO subscriber (id, name, phone_enc, phone_hash, activated_on, customer_since,"
        " pay_day, channels) VALUES (1, 's', '\\x00', decode (repeat ('00', 32), 'hex'),"
        " '2020-01-01', '2020-01-01', 5, '{SMS}')",
        "SELECT bf_ensure_period ('2026-10')",
        "INSERT INTO settlement_run (period, state, chunk_size) VALUES ('2026-10', 'RUNNING', "
        "1000)",
        "INSERT INTO bill (period, subscriber_id, bill_id, run_id, total, due_date, line_count)"
        " VALUES ('2026-10', 1, 1, 1, 1000, '2026-11-05', 1)",
        "INSERT INTO delivery (period, bill_id, subscriber_id, channel, purpose)"
        " VALUES ('2026-10', 1, 1, 'SMS', 'BILL_ISSUED')",
        "INSERT INTO command (command_id, client, target, verb) VALUES ('c-1', 'ops', 'settle', "
        "'run.start')",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
        if (strcmp (bf_testdb_exec (conn, sql[i]), "00000") != 0)
            fail_msg ("seed failed: %s", sql[i]);
}

static void
test_constraints_refuse_duplicates (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    s_seed (conn);
    /*  G1: one bill per (subscriber, period), whatever its bill_id or run.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO bill (period, subscriber_id, bill_id,"
                                               " run_id, total, due_date, line_count) VALUES"
                                               " ('2026-10', 1, 2, 1, 500, '2026-11-05', 1)"),
                         "23505");
    /*  G4: one delivery per (bill, channel, purpose).  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO delivery (period, bill_id,"
                                               " subscriber_id, channel, purpose) VALUES"
                                               " ('2026-10', 1, 1, 'SMS', 'BILL_ISSUED')"),
                         "23505");
    /*  ... but another channel of the same bill is fine.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO delivery (period, bill_id,"
                                               " subscriber_id, channel, purpose) VALUES"
                                               " ('2026-10', 1, 1, 'EMAIL', 'BILL_ISSUED')"),
                         "00000");
    /*  G6: command_id is the primary key.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO command (command_id, client, target,"
                                               " verb) VALUES ('c-1', 'other', 'notify', 'x')"),
                         "23505");
    /*  One outbox event per bill and topic.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO outbox (event_id, topic, period,"
                                               " bill_id, subscriber_id, payload) VALUES"
                                               " (gen_random_uuid (), 'EVT.BILL', '2026-10', 1, 1,"
                                               " '\\x01')"),
                         "00000");
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO outbox (event_id, topic, period,"
                                               " bill_id, subscriber_id, payload) VALUES"
                                               " (gen_random_uuid (), 'EVT.BILL', '2026-10', 1, 1,"
                                               " '\\x01')"),
                         "23505");
    /*  One unfinished run per period.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO settlement_run (period, state,"
                                               " chunk_size) VALUES ('2026-10', 'STOPPED', 10)"),
                         "23505");
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_constraints_refuse_bad_rows (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    s_seed (conn);
    /*  Totals are non-negative multiples of 10 (billing-rules step 10).  */
    assert_string_equal (bf_testdb_exec (conn, "UPDATE bill SET total = 1005"), "23514");
    assert_string_equal (bf_testdb_exec (conn, "UPDATE bill SET total = -10"), "23514");
    /*  A bill for a period without partitions cannot be written.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO bill (period, subscriber_id, bill_id,"
                                               " run_id, total, due_date, line_count) VALUES"
                                               " ('2026-11', 1, 3, 1, 0, '2026-12-05', 0)"),
                         "23514");
    /*  EMAIL channel without an email, PUSH without a token.  */
    assert_string_equal (bf_testdb_exec (conn, "UPDATE subscriber SET channels = '{EMAIL}'"),
                         "23514");
    assert_string_equal (bf_testdb_exec (conn, "UPDATE subscriber SET channels = '{SMS,PUSH}'"),
                         "23514");
    assert_string_equal (bf_testdb_exec (conn, "UPDATE subscriber SET channels = '{FAX}'"),
                         "23514");
    assert_string_equal (bf_testdb_exec (conn, "UPDATE subscriber SET pay_day = 7"), "23514");
    /*  References hold.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO plan_assignment VALUES"
                                               " (99, 'P1', '2026-01-01', NULL)"),
                         "23503");
    /*  A notice's bill is checked where ingest makes it, not by a key
        (db/019; itest_ingest test_database_loss_and_missing_bill); the
        delivery an SMS fallback replaces, by its key.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO delivery (period, bill_id,"
                                               " subscriber_id, channel, purpose, fallback_of)"
                                               " VALUES ('2026-10', 99, 1, 'SMS', 'BILL_ISSUED',"
                                               " 424242)"),
                         "23503");
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO applied_command (command_id, service,"
                                               " status) VALUES ('never-sent', 'settle', 'DONE')"),
                         "23503");
    /*  Ranges are half-open and non-empty.  */
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO plan_assignment VALUES"
                                               " (1, 'P1', '2026-01-01', '2026-01-01')"),
                         "23514");
    /*  bf_ensure_period refuses garbage and is idempotent.  */
    assert_string_equal (bf_testdb_exec (conn, "SELECT bf_ensure_period ('2026-13')"), "22023");
    assert_string_equal (bf_testdb_exec (conn, "SELECT bf_ensure_period ('2026-10')"), "00000");
    PQfinish (conn);
    bf_testdb_drop (&db);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_migrate_twice),
        cmocka_unit_test (test_migrate_concurrently),
        cmocka_unit_test (test_edited_migration_is_refused),
        cmocka_unit_test (test_constraints_refuse_duplicates),
        cmocka_unit_test (test_constraints_refuse_bad_rows),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
