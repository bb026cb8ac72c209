/*  Integration: `billdata generate` is deterministic (same seed, same bytes;
    another seed, other data), and loading it straight into the database gives
    exactly what importing its CSV files gives.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "bd_tables.h"
#include "bf_testdb.h"

#define S_N "3000"

static char *
s_generate (const char *seed)
{
    char *dir = bf_test_mkdtemp ();
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (NULL, &out,
                                          "generate --subscribers " S_N " --period 2026-02"
                                          " --seed %s --out '%s/csv'",
                                          seed, dir),
                      0);
    free (out);
    return dir;
}

static char *
s_file (const char *dir, bd_table_t t)
{
    char path[512];
    snprintf (path, sizeof path, "%s/csv/%s", dir, bd_tables[t].file);
    char *text = bf_test_slurp (path);
    assert_non_null (text);
    return text;
}

static void
test_same_seed_same_bytes_other_seed_other_data (void **state)
{
    (void)state;
    char *a = s_generate ("11"), *b = s_generate ("11"), *c = s_generate ("12");
    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        char *fa = s_file (a, (bd_table_t)t), *fb = s_file (b, (bd_table_t)t),
             *fc = s_file (c, (bd_table_t)t);
        assert_string_equal (fa, fb);
        /*  Plans and add-ons are the catalogue; every per-subscriber table
            changes with the seed.  */
        if (t >= BD_SUBSCRIBERS && strcmp (fa, fc) == 0)
            fail_msg ("%s is the same for seeds 11 and 12", bd_tables[t].file);
        free (fa);
        free (fb);
        free (fc);
    }
    char *subs = s_file (a, BD_SUBSCRIBERS);
    size_t lines = 0;
    for (char *p = subs; *p; p++)
        lines += *p == '\n';
    /*  Header plus one line per subscriber (names hold no newlines).  */
    assert_int_equal (lines, 3001);
    free (subs);
    bf_test_rmdir (&a);
    bf_test_rmdir (&b);
    bf_test_rmdir (&c);
}

/*  Everything except the sealed contacts (fresh nonces each time).  */
static const char *s_digest_sql
    = "SELECT md5 (concat_ws ('|',"
      " (SELECT string_agg (concat_ws (',', code, name, monthly_fee, data_mb, voice_min, sms,"
      "   data_rate_mwon, voice_rate_mwon, sms_rate_mwon), ';' ORDER BY code) FROM plan),"
      " (SELECT string_agg (concat_ws (',', code, name, monthly_fee), ';' ORDER BY code) FROM "
      "addon),"
      " (SELECT string_agg (concat_ws (',', id, name, encode (email_hash, 'hex'),"
      "   encode (phone_hash, 'hex'), push_token_enc IS NULL, activated_on, terminated_on,"
      "   customer_since, family_id, welfare_grade, pay_day, channels, quiet_start, quiet_end),"
      "   ';' ORDER BY id) FROM subscriber),"
      " (SELECT string_agg (concat_ws (',', subscriber_id, plan_code, valid_from, valid_to), ';'"
      "   ORDER BY subscriber_id, valid_from) FROM plan_assignment),"
      " (SELECT string_agg (concat_ws (',', subscriber_id, addon_code, valid_from, valid_to), ';'"
      "   ORDER BY subscriber_id, addon_code, valid_from) FROM addon_subscription),"
      " (SELECT string_agg (concat_ws (',', subscriber_id, kind, valid_from, valid_to), ';'"
      "   ORDER BY subscriber_id, valid_from) FROM contract),"
      " (SELECT string_agg (concat_ws (',', period, subscriber_id, kind, quantity), ';'"
      "   ORDER BY period, subscriber_id, kind, quantity) FROM usage_record),"
      " (SELECT string_agg (concat_ws (',', period, subscriber_id, kind, amount, taxable), ';'"
      "   ORDER BY period, subscriber_id, seq) FROM charge),"
      " (SELECT string_agg (concat_ws (',', period, subscriber_id, amount), ';'"
      "   ORDER BY period, subscriber_id) FROM arrears)))";

static void
test_generate_into_db_equals_import_of_its_csv (void **state)
{
    (void)state;
    char *dir = s_generate ("5");
    char *direct = bf_testdb_create (true), *imported = bf_testdb_create (true);
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (
                          direct, &out, "generate --subscribers " S_N " --period 2026-02 --seed 5"),
                      0);
    assert_non_null (strstr (out, "generate committed"));
    free (out);
    assert_int_equal (bf_testdb_billdata (imported, &out, "import '%s/csv'", dir), 0);
    free (out);

    PGconn *a = bf_testdb_connect (direct), *b = bf_testdb_connect (imported);
    char da[64], db[64];
    assert_int_equal (bf_testdb_text (a, s_digest_sql, da, sizeof da), 0);
    assert_int_equal (bf_testdb_text (b, s_digest_sql, db, sizeof db), 0);
    assert_string_equal (da, db);
    assert_int_equal (bf_testdb_scalar (a, "SELECT count(*) FROM subscriber"), 3000);

    /*  The data exercises the rules it is meant to (docs/data-generation.md),
        in broad bands for 3,000 subscribers.  */
    int64_t contracts = bf_testdb_scalar (a, "SELECT count(DISTINCT subscriber_id) FROM contract");
    assert_in_range (contracts, 600, 1200);
    int64_t families = bf_testdb_scalar (a, "SELECT count(*) FROM subscriber"
                                            " WHERE family_id IS NOT NULL");
    assert_in_range (families, 900, 1500);
    int64_t changes = bf_testdb_scalar (a, "SELECT count(*) FROM (SELECT subscriber_id FROM"
                                           " plan_assignment WHERE valid_to > '2026-02-01' OR"
                                           " valid_to IS NULL GROUP BY 1 HAVING count(*) > 1) x");
    assert_in_range (changes, 150, 600);
    assert_true (bf_testdb_scalar (a, "SELECT count(*) FROM plan WHERE data_mb IS NULL") > 0);
    assert_true (bf_testdb_scalar (a, "SELECT count(*) FROM charge WHERE amount < 0") > 0);
    assert_true (bf_testdb_scalar (a, "SELECT count(*) FROM subscriber WHERE welfare_grade"
                                      " IS NOT NULL")
                 > 50);
    assert_true (bf_testdb_scalar (a, "SELECT count(*) FROM subscriber WHERE quiet_start"
                                      " IS NOT NULL")
                 > 50);
    assert_int_equal (bf_testdb_scalar (a, "SELECT count(DISTINCT phone_hash) FROM subscriber"),
                      3000);
    PQfinish (a);
    PQfinish (b);
    bf_testdb_drop (&direct);
    bf_testdb_drop (&imported);
    bf_test_rmdir (&dir);
}

/*  The files hold contacts: written 0600 whatever the umask
    (docs/configuration.md, "Files holding secrets"); they were 0644.  */
static void
test_generated_files_are_private (void **state)
{
    (void)state;
    mode_t old = umask (022);
    char *dir = s_generate ("13");
    umask (old);
    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        char path[512];
        snprintf (path, sizeof path, "%s/csv/%s", dir, bd_tables[t].file);
        struct stat st;
        assert_int_equal (stat (path, &st), 0);
        if ((st.st_mode & 07777) != 0600)
            fail_msg ("%s has mode %04o", bd_tables[t].file, (unsigned)(st.st_mode & 07777));
    }
    bf_test_rmdir (&dir);
}

static void
test_generate_refuses_bad_arguments (void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (NULL, &out, "generate --subscribers 0 --period 2026-10"),
                      2);
    free (out);
    assert_int_equal (bf_testdb_billdata (NULL, &out, "generate --subscribers 10 --period 2026-13"),
                      2);
    assert_non_null (strstr (out, "--period YYYY-MM"));
    free (out);
    assert_int_equal (bf_testdb_billdata (NULL, &out,
                                          "generate --subscribers 10 --period 2026-10"
                                          " --seed -4"),
                      2);
    free (out);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_same_seed_same_bytes_other_seed_other_data),
        cmocka_unit_test (test_generate_into_db_equals_import_of_its_csv),
        cmocka_unit_test (test_generate_refuses_bad_arguments),
        cmocka_unit_test (test_generated_files_are_private),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
