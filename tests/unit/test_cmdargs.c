/*  test_cmdargs — strict command arguments (bf_cmdargs) and the command
    verbs of settle and notify fed hostile arguments: every malformed
    value is a permanent failure whose reason names the argument and is
    well-formed UTF-8 (a cut inside a character made storing the error
    fail, so the command blocked control's queue).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bf_cmdargs.h"
#include "bf_notify_cmd.h"
#include "bf_settle_cmd.h"
#include "bf_text.h"

/*  "가" (3 bytes) 14 times: "%.40s" cut the 14th character in half.  */
#define GA14                                                                                    \
    "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80"      \
    "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80"

static void
test_id (void **state)
{
    (void)state;
    char err[256];
    int64_t id;
    assert_int_equal (bf_cmdargs_id ("run_id", "132", &id, err, sizeof err), 0);
    assert_int_equal (id, 132);
    assert_int_equal (bf_cmdargs_id ("run_id", "9223372036854775807", &id, err, sizeof err), 0);
    assert_int_equal (id, INT64_MAX);
    static const char *const bad[] = { "", " 1", "1 ", "1 32", "+1", "-1", "0", "01", "1e3",
                                       "0x10", "1.0", "9223372036854775808",
                                       "99999999999999999999999", "1,2", "\xEF\xBC\x91", GA14,
                                       "1\n", "\t1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal (bf_cmdargs_id ("run_id", bad[i], &id, err, sizeof err), -1);
        assert_non_null (strstr (err, "run_id"));
        assert_true (bf_text_utf8_valid (err, strlen (err)));
    }
    assert_int_equal (bf_cmdargs_id ("run_id", NULL, &id, err, sizeof err), -1);
}

static void
test_id_list (void **state)
{
    (void)state;
    char err[256];
    int64_t ids[BF_CMDARGS_MAX_IDS];
    size_t n;
    assert_int_equal (bf_cmdargs_id_list ("ids", "1,32,7", ids, 10, &n, err, sizeof err), 0);
    assert_int_equal (n, 3);
    assert_int_equal (ids[0], 1);
    assert_int_equal (ids[1], 32);
    assert_int_equal (ids[2], 7);
    assert_int_equal (bf_cmdargs_id_list ("ids", "5", ids, 10, &n, err, sizeof err), 0);
    assert_int_equal (n, 1);

    /*  The defect: "1 32" became 132.  */
    static const char *const bad[]
        = { "1 32", "1, 32", " 1", "1 ", "", ",", "1,", ",1", "1,,2", "+1", "-1", "0", "1,0",
            "01", "1;2", "1.2", "1\t2", "1,2,1", "9223372036854775808", "1,x", GA14,
            "1\xEA\xB0\x80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        n = 99;
        assert_int_equal (bf_cmdargs_id_list ("ids", bad[i], ids, 10, &n, err, sizeof err), -1);
        assert_int_equal (n, 0);
        assert_non_null (strstr (err, "ids"));
        assert_true (bf_text_utf8_valid (err, strlen (err)));
    }
    /*  More ids than room.  */
    assert_int_equal (bf_cmdargs_id_list ("ids", "1,2,3", ids, 2, &n, err, sizeof err), -1);
    assert_non_null (strstr (err, "more than 2"));
}

static void
test_period_and_keys (void **state)
{
    (void)state;
    char err[256];
    bf_period_t p;
    assert_int_equal (bf_cmdargs_period ("period", "2026-10", &p, err, sizeof err), 0);
    assert_int_equal (p.year, 2026);
    assert_int_equal (p.month, 10);
    static const char *const bad[]
        = { "2026-13", "2026-1", " 2026-10", "2026-10 ", "2026/10", "", GA14, "2026-10\xEA" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (bf_cmdargs_period ("period", bad[i], &p, err, sizeof err), -1);
        assert_non_null (strstr (err, "period"));
        assert_true (bf_text_utf8_valid (err, strlen (err)));
    }
    static const char *const allowed[] = { "run_id", "ids", NULL };
    const char *keys[] = { "ids", "run_id", "ids" };
    assert_int_equal (bf_cmdargs_keys ("deliveries.retry", keys, 2, allowed, err, sizeof err), 0);
    assert_int_equal (bf_cmdargs_keys ("deliveries.retry", keys, 3, allowed, err, sizeof err), -1);
    assert_non_null (strstr (err, "twice"));
    const char *odd[] = { GA14 };
    assert_int_equal (bf_cmdargs_keys ("deliveries.retry", odd, 1, allowed, err, sizeof err), -1);
    assert_true (bf_text_utf8_valid (err, strlen (err)));
}

/*  Runs verb of table with the given arguments (no database: every case
    here must fail before one is needed).  */
static bf_link_status_t
s_apply (const bf_link_verb_t *table, void *context, const char *verb, size_t n,
         const char *const *keys, const char *const *values, char *error, size_t errorsize)
{
    Billflow__Argument items[4];
    Billflow__Argument *ptrs[4];
    for (size_t i = 0; i < n; i++) {
        billflow__argument__init (&items[i]);
        items[i].key = (char *)keys[i];
        items[i].value = (char *)values[i];
        ptrs[i] = &items[i];
    }
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    cmd.command_id = "c-1";
    cmd.verb = (char *)verb;
    cmd.n_args = n;
    cmd.args = ptrs;
    for (const bf_link_verb_t *v = table; v->verb; v++)
        if (!strcmp (v->verb, verb)) {
            char result[1024];
            error[0] = 0;
            return v->apply (context, NULL, &cmd, result, sizeof result, error, errorsize);
        }
    fail_msg ("no verb %s", verb);
    return BF_LINK_RETRY;
}

static void
test_settle_verbs (void **state)
{
    (void)state;
    bf_settle_cmd_t context = { .chunk_size = 100 };
    char error[512];
    const char *key[] = { "period" };
    const char *verbs[] = { "run.start", "run.stop", "run.resume" };
    static const char *const bad[] = { GA14, "2026-1", "2026-10 ", "x" };
    for (size_t v = 0; v < 3; v++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            const char *value[] = { bad[i] };
            assert_int_equal (s_apply (bf_settle_cmd_verbs, &context, verbs[v], 1, key, value,
                                       error, sizeof error),
                              BF_LINK_FAILED);
            assert_non_null (strstr (error, "period"));
            assert_true (bf_text_utf8_valid (error, strlen (error)));
        }
    /*  Unknown and missing arguments.  */
    const char *keys2[] = { "period", "ids" }, *values2[] = { "2026-10", "1" };
    assert_int_equal (s_apply (bf_settle_cmd_verbs, &context, "run.start", 2, keys2, values2,
                               error, sizeof error),
                      BF_LINK_FAILED);
    assert_non_null (strstr (error, "'ids'"));
    assert_int_equal (
        s_apply (bf_settle_cmd_verbs, &context, "run.start", 0, NULL, NULL, error, sizeof error),
        BF_LINK_FAILED);
    assert_non_null (strstr (error, "period"));
}

static void
test_notify_verbs (void **state)
{
    (void)state;
    char error[512];
    const char *run[] = { "run_id" }, *ids[] = { "ids" };
    static const char *const bad_run[] = { GA14, "1 32", "0", "-1", "+1", "01", "", "1,2" };
    for (size_t i = 0; i < sizeof bad_run / sizeof bad_run[0]; i++) {
        const char *value[] = { bad_run[i] };
        assert_int_equal (s_apply (bf_notify_cmd_verbs, NULL, "deliveries.retry", 1, run, value,
                                   error, sizeof error),
                          BF_LINK_FAILED);
        assert_non_null (strstr (error, "run_id"));
        assert_true (bf_text_utf8_valid (error, strlen (error)));
    }
    static const char *const bad_ids[] = { "1 32", GA14, "1,,2", "1,", "", "1,1", " 1", "1;2" };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        const char *value[] = { bad_ids[i] };
        assert_int_equal (s_apply (bf_notify_cmd_verbs, NULL, "deliveries.retry", 1, ids, value,
                                   error, sizeof error),
                          BF_LINK_FAILED);
        assert_non_null (strstr (error, "ids"));
        assert_true (bf_text_utf8_valid (error, strlen (error)));
    }
    const char *keys[] = { "ids", "period" }, *values[] = { "1", "2026-10" };
    assert_int_equal (s_apply (bf_notify_cmd_verbs, NULL, "deliveries.retry", 2, keys, values,
                               error, sizeof error),
                      BF_LINK_FAILED);
    assert_non_null (strstr (error, "'period'"));
    assert_int_equal (s_apply (bf_notify_cmd_verbs, NULL, "dispatch.pause", 1, ids, values, error,
                               sizeof error),
                      BF_LINK_FAILED);
    assert_non_null (strstr (error, "'ids'"));
    /*  run.schedule: the form of at, and a release a day or more in the
        past or over 366 days ahead, refused before the database is asked
        (the context is NULL: UTC, the system clock).  */
    const char *sk[] = { "period", "at" };
    static const struct {
        const char *at, *part;
    } bad_at[] = { { "tomorrow", "at: expected" },
                   { "2026-02-30T10:00", "at: expected" },
                   { "2026-12-08T24:00", "at: expected" },
                   { "1970-01-01T00:00", "in the past" },
                   { "9999-12-31T23:59", "366 days ahead" } };
    for (size_t i = 0; i < sizeof bad_at / sizeof bad_at[0]; i++) {
        const char *sv[] = { "2026-10", bad_at[i].at };
        assert_int_equal (s_apply (bf_notify_cmd_verbs, NULL, "run.schedule", 2, sk, sv, error,
                                   sizeof error),
                          BF_LINK_FAILED);
        if (!strstr (error, bad_at[i].part))
            fail_msg ("at=%s: '%s' lacks '%s'", bad_at[i].at, error, bad_at[i].part);
    }
}

static void
test_local_time (void **state)
{
    (void)state;
    char err[256];
    int64_t minutes = -1;
    assert_int_equal (bf_cmdargs_local_time ("at", "1970-01-02T01:30", &minutes, err, sizeof err),
                      0);
    assert_int_equal (minutes, 1440 + 90);
    static const char *const bad[] = { "1970-01-02 01:30", "1970-01-02T1:30", "1970-13-01T00:00",
                                       "1970-01-02T01:30:00", "", "1970-01-02T01:60" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (bf_cmdargs_local_time ("at", bad[i], &minutes, err, sizeof err), -1);
        assert_non_null (strstr (err, "at: expected YYYY-MM-DDTHH:MM"));
    }
    assert_int_equal (bf_cmdargs_local_time ("at", NULL, &minutes, err, sizeof err), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_id),
        cmocka_unit_test (test_id_list),
        cmocka_unit_test (test_period_and_keys),
        cmocka_unit_test (test_settle_verbs),
        cmocka_unit_test (test_notify_verbs),
        cmocka_unit_test (test_local_time),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
