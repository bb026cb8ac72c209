/*  Integration: `billdata export-bills` writes the period's bills and lines
    exactly as docs/data-format.md says, from rows a test inserts (settle is
    the real writer); refuses bad periods and periods without bills.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bf_testdb.h"

static const char *s_seed[] = {
    "INSERT INTO subscriber (id, name, phone_enc, phone_hash, activated_on, customer_since,"
    " pay_day, channels) SELECT g, 's', '\\x00', decode (repeat ('00', 32), 'hex'),"
    " '2020-01-01', '2020-01-01', 5, '{SMS}' FROM generate_series (1, 3) g",
    "SELECT bf_ensure_period ('2026-10')",
    "SELECT bf_ensure_period ('2026-09')",
    "INSERT INTO settlement_run (period, state, chunk_size) VALUES ('2026-10', 'COMPLETED', 100)",
    /*  Inserted out of order: the export sorts.  */
    "INSERT INTO bill (period, subscriber_id, bill_id, run_id, total, due_date, line_count) VALUES"
    " ('2026-10', 3, 30, 1, 0, '2026-11-05', 1),"
    " ('2026-10', 1, 10, 1, 111200, '2026-11-25', 3),"
    " ('2026-09', 2, 20, 1, 5000, '2026-10-05', 1)",
    "INSERT INTO bill_line (period, subscriber_id, line_no, code, amount, label) VALUES"
    " ('2026-10', 1, 3, 'ROUNDING', -9, '원 단위 절사'),"
    " ('2026-10', 3, 1, 'CHARGE:CONTENT', 0, '콘텐츠 이용료'),"
    " ('2026-10', 1, 1, 'PLAN:LTE_43', 13870, 'LTE 43 요금제'),"
    " ('2026-10', 1, 2, 'ODD,\"CODE\"', 97339, 'ODD,\"CODE\"'),"
    " ('2026-09', 2, 1, 'PLAN:LTE_43', 5000, 'LTE 43 요금제')",
};

static void
test_export_writes_the_period (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    for (size_t i = 0; i < sizeof s_seed / sizeof s_seed[0]; i++)
        assert_string_equal (bf_testdb_exec (conn, s_seed[i]), "00000");
    char *dir = bf_test_mkdtemp ();
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period 2026-10 '%s'", dir), 0);
    assert_non_null (strstr (out, "export-bills: 2 bills, 4 lines of 2026-10"));
    free (out);

    char path[512];
    snprintf (path, sizeof path, "%s/bills.csv", dir);
    char *bills = bf_test_slurp (path);
    assert_non_null (bills);
    assert_string_equal (bills, "subscriber_id,period,total,due_date,line_count\n"
                                "1,2026-10,111200,2026-11-25,3\n"
                                "3,2026-10,0,2026-11-05,1\n");
    snprintf (path, sizeof path, "%s/bill_lines.csv", dir);
    char *lines = bf_test_slurp (path);
    assert_non_null (lines);
    assert_string_equal (lines, "subscriber_id,period,line_no,code,amount,label\n"
                                "1,2026-10,1,PLAN:LTE_43,13870,LTE 43 요금제\n"
                                "1,2026-10,2,\"ODD,\"\"CODE\"\"\",97339,\"ODD,\"\"CODE\"\"\"\n"
                                "1,2026-10,3,ROUNDING,-9,원 단위 절사\n"
                                "3,2026-10,1,CHARGE:CONTENT,0,콘텐츠 이용료\n");
    free (bills);
    free (lines);
    /*  No temporary files are left behind.  */
    snprintf (path, sizeof path, "%s/bills.csv.tmp", dir);
    assert_null (fopen (path, "r"));
    PQfinish (conn);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

static void
test_export_refuses_what_it_cannot_do (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    char *dir = bf_test_mkdtemp ();
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period 2026-10 '%s'", dir), 1);
    assert_non_null (strstr (out, "period 2026-10 has no bills"));
    free (out);
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period 2026-1 '%s'", dir), 1);
    assert_non_null (strstr (out, "'2026-1' is not a period"));
    free (out);
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period 2026-10"), 2);
    free (out);
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period 2026-10 /nonexistent"),
                      2);
    assert_non_null (strstr (out, "/nonexistent is not a directory"));
    free (out);
    char path[512];
    snprintf (path, sizeof path, "%s/bills.csv", dir);
    assert_null (fopen (path, "r"));
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_export_writes_the_period),
        cmocka_unit_test (test_export_refuses_what_it_cannot_do),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
