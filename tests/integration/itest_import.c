/*  Integration: `billdata import` on a real PostgreSQL — a small dataset
    loads exactly; every kind of broken input is reported with file, line,
    column and reason and loads nothing; re-import needs --replace, which
    replaces without duplicating.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bf_pii.h"
#include "bf_testdb.h"

static char *
s_fixture_copy (void)
{
    char *dir = bf_test_mkdtemp ();
    assert_non_null (dir);
    char command[1024];
    snprintf (command, sizeof command, "cp '%s'/tests/integration/data/small/*.csv '%s'/",
              getenv ("BF_SOURCE_ROOT"), dir);
    assert_int_equal (system (command), 0);
    return dir;
}

/*  Replaces the first occurrence of find in dir/file with replace.  */
static void
s_edit (const char *dir, const char *file, const char *find, const char *replace)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, file);
    char *text = bf_test_slurp (path);
    assert_non_null (text);
    char *at = strstr (text, find);
    if (!at)
        fail_msg ("fixture %s has no '%s'", file, find);
    size_t len = strlen (text) - strlen (find) + strlen (replace) + 1;
    char *out = malloc (len);
    snprintf (out, len, "%.*s%s%s", (int)(at - text), text, replace, at + strlen (find));
    assert_int_equal (bf_test_write (path, out), 0);
    free (text);
    free (out);
}

static void
s_expect_in (const char *output, const char *needle)
{
    if (!strstr (output, needle))
        fail_msg ("expected '%s' in output:\n%s", needle, output);
}

static void
test_import_loads_everything (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    char *dir = s_fixture_copy ();
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, &out, "import '%s'", dir), 0);
    s_expect_in (out, "import committed");
    free (out);

    PGconn *conn = bf_testdb_connect (db);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM plan"), 3);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM addon"), 2);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM subscriber"), 5);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM plan_assignment"), 6);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM addon_subscription"), 2);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM contract"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM usage_record"), 8);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM usage_record_2026_10"), 8);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM charge"), 5);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT sum(amount) FROM arrears"), 15000);

    char text[256];
    assert_int_equal (
        bf_testdb_text (conn, "SELECT name FROM subscriber WHERE id = 2", text, sizeof text), 0);
    assert_string_equal (text, "김, 영희");
    bf_testdb_text (conn, "SELECT name FROM subscriber WHERE id = 5", text, sizeof text);
    assert_string_equal (text, "최\"지우\"");
    bf_testdb_text (conn, "SELECT name FROM addon WHERE code = 'FREE_CLOUD'", text, sizeof text);
    assert_string_equal (text, "클라우드 \"무료\"");
    bf_testdb_text (conn, "SELECT channels::text FROM subscriber WHERE id = 4", text, sizeof text);
    assert_string_equal (text, "{EMAIL,SMS,PUSH}");
    bf_testdb_text (conn,
                    "SELECT data_mb = 12288 AND voice_min IS NULL AND sms IS NULL FROM plan WHERE "
                    "code = '5G_59'",
                    text, sizeof text);
    assert_string_equal (text, "t");
    /*  Charges keep file order within a subscriber (billing-rules step 6).  */
    bf_testdb_text (conn,
                    "SELECT string_agg (kind, ',' ORDER BY seq) FROM charge"
                    " WHERE subscriber_id = 1",
                    text, sizeof text);
    assert_string_equal (text, "DEVICE_INSTALLMENT,MICRO_PAYMENT,CONTENT");

    /*  Contacts are sealed at rest: no plain text in the row, and they open
        with the key under their own field and subscriber.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM subscriber WHERE"
                                              " position ('example'::bytea IN email_enc) > 0"
                                              " OR position ('5678'::bytea IN phone_enc) > 0"),
                      0);
    PGresult *res = PQexecParams (conn,
                                  "SELECT email_enc, email_hash, phone_enc FROM subscriber"
                                  " WHERE id = 1",
                                  0, NULL, NULL, NULL, NULL, 1);
    assert_int_equal (PQntuples (res), 1);
    char err[128];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (pii);
    char plain[256];
    assert_true (bf_pii_open (pii, "email", 1, (const uint8_t *)PQgetvalue (res, 0, 0),
                              (size_t)PQgetlength (res, 0, 0), plain, sizeof plain)
                 > 0);
    assert_string_equal (plain, "hong.gildong@example.com");
    assert_true (bf_pii_open (pii, "phone", 1, (const uint8_t *)PQgetvalue (res, 0, 2),
                              (size_t)PQgetlength (res, 0, 2), plain, sizeof plain)
                 > 0);
    assert_string_equal (plain, "01012345678");
    assert_int_equal (bf_pii_open (pii, "email", 2, (const uint8_t *)PQgetvalue (res, 0, 0),
                                   (size_t)PQgetlength (res, 0, 0), plain, sizeof plain),
                      -1);
    uint8_t hash[BF_PII_HASH_LEN];
    bf_pii_hash (pii, "email", " Hong.Gildong@EXAMPLE.com ", hash);
    assert_int_equal (PQgetlength (res, 0, 1), BF_PII_HASH_LEN);
    assert_memory_equal (PQgetvalue (res, 0, 1), hash, BF_PII_HASH_LEN);
    PQclear (res);
    bf_pii_destroy (&pii);
    PQfinish (conn);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

static void
test_reimport_needs_replace (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    char *dir = s_fixture_copy ();
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, NULL, "import '%s'", dir), 0);

    assert_int_equal (bf_testdb_billdata (db, &out, "import '%s'", dir), 1);
    s_expect_in (out, "plans.csv:2: column code: plan LTE_43 already exists");
    free (out);

    /*  Without plans and add-ons, the subscriber collisions show.  */
    char path[512];
    snprintf (path, sizeof path, "%s/plans.csv", dir);
    remove (path);
    snprintf (path, sizeof path, "%s/addons.csv", dir);
    remove (path);
    assert_int_equal (bf_testdb_billdata (db, &out, "import '%s'", dir), 1);
    s_expect_in (out, "subscribers.csv:2: column id: subscriber 1 already exists");
    s_expect_in (out, "subscribers.csv:6: column id: subscriber 5 already exists");
    free (out);

    /*  --replace: new values in, nothing doubled, other periods kept.  */
    PGconn *conn = bf_testdb_connect (db);
    assert_string_equal (bf_testdb_exec (conn, "SELECT bf_ensure_period ('2026-09')"), "00000");
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO usage_record VALUES"
                                               " ('2026-09', 1, 'SMS', 7)"),
                         "00000");
    s_edit (dir, "subscribers.csv", "홍길동", "홍길순");
    s_edit (dir, "usage.csv", "1,2026-10,SMS,40", "1,2026-10,SMS,41");
    assert_int_equal (bf_testdb_billdata (db, &out, "import --replace '%s'", dir), 0);
    free (out);
    char text[128];
    bf_testdb_text (conn, "SELECT name FROM subscriber WHERE id = 1", text, sizeof text);
    assert_string_equal (text, "홍길순");
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM subscriber"), 5);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM plan_assignment"), 6);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM usage_record_2026_10"), 8);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM charge"), 5);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM arrears"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT quantity FROM usage_record WHERE"
                                              " subscriber_id = 1 AND kind = 'SMS'"
                                              " AND period = '2026-10'"),
                      41);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT quantity FROM usage_record WHERE"
                                              " period = '2026-09'"),
                      7);
    PQfinish (conn);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

typedef struct {
    const char *file, *find, *replace, *expect;
} s_broken_t;

/*  Each case breaks one thing; the message must name file, line, column.  */
static const s_broken_t s_broken[] = {
    { "subscribers.csv", ",10,EMAIL,", ",7,EMAIL,",
      "subscribers.csv:4: column pay_day: 7 is not one of 5, 10, 15, 20, 25" },
    { "subscribers.csv", "010-3456-7890", "010-3456-789x",
      "subscribers.csv:4: column phone: '***' is not a Korean mobile number" },
    { "subscribers.csv", "2019-03-15", "2019-02-30",
      "subscribers.csv:2: column activated_on: '2019-02-30' is not a date" },
    { "subscribers.csv", "lee@example.com", "",
      "subscribers.csv:4: column email: is required: "
      "channels include EMAIL" },
    { "subscribers.csv", "EMAIL+PUSH", "EMAIL+FAX", "subscribers.csv:2: column channels:" },
    { "subscribers.csv", "22:00,07:00", "22:00,",
      "subscribers.csv:3: column quiet_end: "
      "quiet_start and quiet_end come together" },
    { "subscribers.csv", "\n5,", "\n4,",
      "subscribers.csv:6: column id: subscriber 4 appears twice" },
    { "subscribers.csv", ",SENIOR,", ",RICH,", "subscribers.csv:3: column welfare_grade:" },
    { "subscribers.csv", "2021-05-01,2026-10-20,2021-05-01", "2021-05-01,2021-05-01,2021-05-01",
      "subscribers.csv:4: column terminated_on: 2021-05-01 is not after activated_on" },
    { "plan_assignments.csv", "2,LTE_43", "2,NOPE",
      "plan_assignments.csv:4: column plan_code: plan NOPE is neither in this import" },
    { "plan_assignments.csv", "1,5G_59,2026-10-11,", "1,5G_59,2026-10-01,",
      "plan_assignments.csv:3: column valid_from: plan assignment of subscriber 1 overlaps the "
      "one on line 2" },
    { "plan_assignments.csv", "2026-09-01", "2014-09-01",
      "plan_assignments.csv:7: column valid_to: 2014-09-01 is not after valid_from" },
    { "addon_subscriptions.csv", "1,VCOLORING", "1,RINGTONE",
      "addon_subscriptions.csv:2: column addon_code: add-on RINGTONE is neither" },
    { "contracts.csv", "SELECTIVE_25", "SELECTIVE_30",
      "contracts.csv:2: column kind: 'SELECTIVE_30' is not a contract kind" },
    { "usage.csv", "3,2026-10,DATA_MB", "99,2026-10,DATA_MB",
      "usage.csv:8: column subscriber_id: subscriber 99 is not in this import's subscribers.csv" },
    { "usage.csv", "4,2026-10,SMS,0", "4,2026-10,SMS,-1", "usage.csv:9: column quantity:" },
    { "usage.csv", "2,2026-10,DATA_MB", "2,2026-13,DATA_MB",
      "usage.csv:6: column period: '2026-13' is not a period" },
    { "usage.csv", "1,2026-10,SMS", "1,2026-10,MMS", "usage.csv:5: column kind:" },
    { "charges.csv", "CONTENT,5500,true", "CONTENT,5500,false",
      "charges.csv:6: column taxable: CONTENT charges are taxable" },
    { "charges.csv", "MICRO_PAYMENT,12000", "MICRO_PAYMENT,-12000",
      "charges.csv:4: column amount: -12000 is out of range" },
    { "arrears.csv", "15000", "15000\n1,2026-10,5",
      "arrears.csv:3: column period: arrears row for this period of subscriber 1 overlaps" },
    { "plans.csv", "43000", "43,000", "plans.csv:2: 10 fields where the header has 9" },
    { "plans.csv", "LTE 데이터 43", "\"LTE 43",
      "plans.csv:3: column 8: unexpected character after closing quote" },
    { "plans.csv", "sms_rate_mwon", "sms_rate",
      "plans.csv:1: unknown column 'sms_rate' in header" },
    { "addons.csv", "name,code,monthly_fee", "name,code",
      "addons.csv:1: missing column 'monthly_fee' in header" },
    { "charges.csv", "ADJUSTMENT,-1000", "REFUND,-1000", "charges.csv:3: column kind:" },
};

static void
test_broken_input_is_reported_and_loads_nothing (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    for (size_t i = 0; i < sizeof s_broken / sizeof s_broken[0]; i++) {
        const s_broken_t *b = &s_broken[i];
        char *dir = s_fixture_copy ();
        s_edit (dir, b->file, b->find, b->replace);
        char *out = NULL;
        int rc = bf_testdb_billdata (db, &out, "import '%s'", dir);
        if (rc != 1)
            fail_msg ("case %zu (%s): exit %d, output:\n%s", i, b->expect, rc, out);
        s_expect_in (out, b->expect);
        s_expect_in (out, "nothing loaded");
        free (out);
        assert_int_equal (bf_testdb_scalar (conn, "SELECT (SELECT count(*) FROM subscriber)"
                                                  " + (SELECT count(*) FROM plan)"
                                                  " + (SELECT count(*) FROM usage_record)"),
                          0);
        bf_test_rmdir (&dir);
    }
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_every_error_in_one_pass_up_to_the_limit (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    char *dir = s_fixture_copy ();
    s_edit (dir, "usage.csv", "1,2026-10,DATA_MB,6000", "1,2026-10,DATA_MB,x");
    s_edit (dir, "usage.csv", "2,2026-10,DATA_MB", "2,2026-1,DATA_MB");
    s_edit (dir, "charges.csv", "5,2026-10", "6,2026-10");
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, &out, "import '%s'", dir), 1);
    s_expect_in (out, "3 errors");
    s_expect_in (out, "usage.csv:2: column quantity: 'x' is not an integer");
    s_expect_in (out, "usage.csv:6: column period:");
    s_expect_in (out, "charges.csv:5: column subscriber_id: subscriber 6 is not in");
    free (out);
    assert_int_equal (bf_testdb_billdata (db, &out, "import --max-errors 2 '%s'", dir), 1);
    s_expect_in (out, "stopped reading after 2 errors");
    assert_null (strstr (out, "charges.csv:5"));
    free (out);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

static void
test_missing_subscribers_and_bad_arguments (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    char *dir = s_fixture_copy ();
    char path[512], *out = NULL;
    snprintf (path, sizeof path, "%s/subscribers.csv", dir);
    remove (path);
    assert_int_equal (bf_testdb_billdata (db, &out, "import '%s'", dir), 1);
    s_expect_in (out, "subscribers.csv is required");
    free (out);
    assert_int_equal (bf_testdb_billdata (db, &out, "import"), 2);
    s_expect_in (out, "import needs exactly one directory");
    free (out);
    assert_int_equal (bf_testdb_billdata (db, &out, "import --max-errors zero '%s'", dir), 2);
    free (out);
    assert_int_equal (bf_testdb_billdata ("dbname=bftest_does_not_exist", &out, "import '%s'", dir),
                      3);
    free (out);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_import_loads_everything),
        cmocka_unit_test (test_reimport_needs_replace),
        cmocka_unit_test (test_broken_input_is_reported_and_loads_nothing),
        cmocka_unit_test (test_every_error_in_one_pass_up_to_the_limit),
        cmocka_unit_test (test_missing_subscribers_and_bad_arguments),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
