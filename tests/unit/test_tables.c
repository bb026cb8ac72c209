/*  test_tables — bd_tables column lists and the CSV row sink.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bd_tables.h"
#include "bd_csv.h"
#include "bf_log.h"

/*  --- Helpers ----------------------------------------------------------- */

static char *
s_temp_dir (void)
{
    char *dir = strdup ("/tmp/test_tables_XXXXXX");
    assert_non_null (dir);
    assert_non_null (mkdtemp (dir));
    return dir;
}

static char *
s_path (const char *dir, const char *file)
{
    size_t size = strlen (dir) + strlen (file) + 2;
    char *path = malloc (size);
    assert_non_null (path);
    snprintf (path, size, "%s/%s", dir, file);
    return path;
}

static void
s_remove_dir (char *dir)
{
    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        char *path = s_path (dir, bd_tables[t].file);
        unlink (path);
        free (path);
    }
    rmdir (dir);
    free (dir);
}

static bool
s_exists (const char *dir, const char *file)
{
    char *path = s_path (dir, file);
    bool exists = access (path, F_OK) == 0;
    free (path);
    return exists;
}

/*  Next record of csv must be want[0..n); empty strings read back as NULL. */
static void
s_expect_row (bd_csv_t *csv, const char *const *want, size_t n)
{
    char **fields;
    size_t count;
    int rc = bd_csv_next (csv, &fields, &count);
    if (rc < 0)
        print_error ("%s at %ld:%ld\n", bd_csv_error (csv), bd_csv_error_line (csv),
                     bd_csv_error_column (csv));
    assert_int_equal (rc, 1);
    assert_int_equal (count, n);
    for (size_t i = 0; i < n; i++) {
        if (!want[i] || !*want[i])
            assert_null (fields[i]);
        else {
            assert_non_null (fields[i]);
            assert_string_equal (fields[i], want[i]);
        }
    }
}

static bd_csv_t *
s_open_table (const char *dir, bd_table_t table)
{
    char *path = s_path (dir, bd_tables[table].file);
    char err[256] = "";
    bd_csv_t *csv = bd_csv_open (path, err, sizeof (err));
    if (!csv)
        print_error ("%s\n", err);
    assert_non_null (csv);
    free (path);
    return csv;
}

static void
s_expect_end (bd_csv_t *csv)
{
    char **fields;
    size_t count;
    assert_int_equal (bd_csv_next (csv, &fields, &count), 0);
}

/*  Captures what bf_log writes while a test runs.  */
static FILE *s_log;

static void
s_log_capture (void)
{
    s_log = tmpfile ();
    assert_non_null (s_log);
    bf_log_set_fd (fileno (s_log));
}

/*  Returns true when the captured log contains text; stops capturing.  */
static bool
s_log_release (const char *text)
{
    bf_log_set_fd (2);
    char buffer[4096] = "";
    rewind (s_log);
    size_t n = fread (buffer, 1, sizeof (buffer) - 1, s_log);
    buffer[n] = '\0';
    fclose (s_log);
    s_log = NULL;
    return strstr (buffer, text) != NULL;
}

/*  --- bd_tables --------------------------------------------------------- */

static void
test_table_column (void **state)
{
    (void)state;
    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, "id"), 0);
    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, "email"), 2);
    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, "push_token"), 13);
    assert_int_equal (bd_table_column (BD_PLANS, "code"), 0);
    assert_int_equal (bd_table_column (BD_PLANS, "sms_rate_mwon"), 8);
    assert_int_equal (bd_table_column (BD_CHARGES, "taxable"), 4);
    assert_int_equal (bd_table_column (BD_ARREARS, "amount"), 2);
    assert_int_equal (bd_table_column (BD_USAGE, "quantity"), 3);

    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, "ID"), -1); /* exact case */
    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, "id "), -1);
    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, ""), -1);
    assert_int_equal (bd_table_column (BD_SUBSCRIBERS, "plan_code"), -1); /* other table */
    assert_int_equal (bd_table_column (BD_ADDONS, "data_mb"), -1);
}

static void
test_table_definitions (void **state)
{
    (void)state;
    static const struct {
        const char *file;
        size_t ncols;
    } want[BD_TABLE_COUNT] = {
        [BD_PLANS] = { "plans.csv", 9 },
        [BD_ADDONS] = { "addons.csv", 3 },
        [BD_SUBSCRIBERS] = { "subscribers.csv", 14 },
        [BD_PLAN_ASSIGNMENTS] = { "plan_assignments.csv", 4 },
        [BD_ADDON_SUBSCRIPTIONS] = { "addon_subscriptions.csv", 4 },
        [BD_CONTRACTS] = { "contracts.csv", 4 },
        [BD_USAGE] = { "usage.csv", 4 },
        [BD_CHARGES] = { "charges.csv", 5 },
        [BD_ARREARS] = { "arrears.csv", 3 },
    };
    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        const bd_table_def_t *def = &bd_tables[t];
        assert_string_equal (def->file, want[t].file);
        assert_int_equal (def->ncols, want[t].ncols);
        assert_true (def->ncols <= BD_MAX_COLUMNS);
        for (size_t i = 0; i < def->ncols; i++) {
            assert_non_null (def->cols[i]);
            /*  each name maps back to its own index: no duplicates  */
            assert_int_equal (bd_table_column ((bd_table_t)t, def->cols[i]), (int)i);
        }
        for (size_t i = def->ncols; i < BD_MAX_COLUMNS; i++)
            assert_null (def->cols[i]);
    }
    /*  references load before referrers  */
    assert_true (BD_PLANS < BD_PLAN_ASSIGNMENTS);
    assert_true (BD_ADDONS < BD_ADDON_SUBSCRIPTIONS);
    assert_true (BD_SUBSCRIBERS < BD_PLAN_ASSIGNMENTS);
}

/*  --- CSV sink ---------------------------------------------------------- */

static void
test_sink_writes_tables (void **state)
{
    (void)state;
    char *dir = s_temp_dir ();

    /*  A stale file is truncated, not appended to.  */
    char *stale = s_path (dir, "plans.csv");
    FILE *file = fopen (stale, "w");
    assert_non_null (file);
    fputs ("junk,junk\nmore junk\nand more\n", file);
    fclose (file);
    free (stale);

    bd_sink_t *sink = bd_csv_sink_new (dir);
    assert_non_null (sink);

    const char *plan1[]
        = { "BASIC", "Basic, \"5G\"", "33000", "10240", NULL, "", "20", "1800", "22000" };
    const char *plan2[] = { "UNLIM", "무제한\n요금제", "89000", NULL, NULL, NULL, "0", "0", "0" };
    assert_int_equal (sink->begin (sink, BD_PLANS), 0);
    assert_int_equal (sink->row (sink, plan1), 0);
    assert_int_equal (sink->row (sink, plan2), 0);
    assert_int_equal (sink->end (sink, BD_PLANS), 0);

    /*  BD_ADDONS skipped: no file. A table with no rows: header only.  */
    assert_int_equal (sink->begin (sink, BD_SUBSCRIBERS), 0);
    assert_int_equal (sink->end (sink, BD_SUBSCRIBERS), 0);

    /*  Enough rows to pass the 1 MiB stdio buffer several times.  */
    assert_int_equal (sink->begin (sink, BD_USAGE), 0);
    char id[32], quantity[32];
    const char *usage[] = { id, "2026-03", "DATA_MB", quantity };
    for (int i = 1; i <= 100000; i++) {
        snprintf (id, sizeof (id), "%d", i);
        snprintf (quantity, sizeof (quantity), "%d", i * 7);
        assert_int_equal (sink->row (sink, usage), 0);
    }
    assert_int_equal (sink->end (sink, BD_USAGE), 0);

    assert_int_equal (bd_csv_sink_destroy (&sink), 0);
    assert_null (sink);
    assert_int_equal (bd_csv_sink_destroy (&sink), 0); /* safe twice */

    assert_false (s_exists (dir, "addons.csv"));
    bd_csv_t *csv = s_open_table (dir, BD_PLANS);
    s_expect_row (csv, bd_tables[BD_PLANS].cols, bd_tables[BD_PLANS].ncols);
    s_expect_row (csv, plan1, 9);
    s_expect_row (csv, plan2, 9);
    assert_int_equal (bd_csv_line (csv), 3);
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_open_table (dir, BD_SUBSCRIBERS);
    s_expect_row (csv, bd_tables[BD_SUBSCRIBERS].cols, 14);
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_open_table (dir, BD_USAGE);
    s_expect_row (csv, bd_tables[BD_USAGE].cols, 4);
    for (int i = 1; i <= 100000; i++) {
        snprintf (id, sizeof (id), "%d", i);
        snprintf (quantity, sizeof (quantity), "%d", i * 7);
        s_expect_row (csv, usage, 4);
    }
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    s_remove_dir (dir);
}

static void
test_sink_bad_dir (void **state)
{
    (void)state;
    s_log_capture ();
    assert_null (bd_csv_sink_new ("/nonexistent/billflow/dir"));
    assert_true (s_log_release ("/nonexistent/billflow/dir"));

    /*  A regular file is not a directory.  */
    char *dir = s_temp_dir ();
    char *path = s_path (dir, "plans.csv");
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fclose (file);
    s_log_capture ();
    assert_null (bd_csv_sink_new (path));
    assert_true (s_log_release ("not a directory"));
    free (path);
    s_remove_dir (dir);
}

static void
test_sink_create_fails (void **state)
{
    (void)state;
    char *dir = s_temp_dir ();
    bd_sink_t *sink = bd_csv_sink_new (dir);
    assert_non_null (sink);
    assert_int_equal (rmdir (dir), 0); /* the directory goes away */

    s_log_capture ();
    assert_int_equal (sink->begin (sink, BD_ADDONS), -1);
    assert_true (s_log_release ("addons.csv"));
    const char *row[] = { "A", "Addon", "1000" };
    assert_int_equal (sink->row (sink, row), -1);
    assert_int_equal (sink->end (sink, BD_ADDONS), -1);
    assert_int_equal (bd_csv_sink_destroy (&sink), -1);
    assert_null (sink);
    free (dir);
}

static void
test_sink_write_fails (void **state)
{
    (void)state;
    if (access ("/dev/full", W_OK) != 0)
        skip ();
    char *dir = s_temp_dir ();
    char *path = s_path (dir, "arrears.csv");
    assert_int_equal (symlink ("/dev/full", path), 0);

    bd_sink_t *sink = bd_csv_sink_new (dir);
    assert_non_null (sink);
    s_log_capture ();
    /*  The header and rows sit in the stdio buffer; the close fails.  */
    assert_int_equal (sink->begin (sink, BD_ARREARS), 0);
    const char *row[] = { "1", "2026-03", "5000" };
    assert_int_equal (sink->row (sink, row), 0);
    assert_int_equal (sink->end (sink, BD_ARREARS), -1);
    assert_true (s_log_release ("arrears.csv"));
    /*  Later tables still work; destroy reports the earlier failure.  */
    assert_int_equal (sink->begin (sink, BD_USAGE), 0);
    assert_int_equal (sink->end (sink, BD_USAGE), 0);
    assert_int_equal (bd_csv_sink_destroy (&sink), -1);

    /*  Rows beyond the buffer fail while writing.  */
    sink = bd_csv_sink_new (dir);
    assert_non_null (sink);
    s_log_capture ();
    assert_int_equal (sink->begin (sink, BD_ARREARS), 0);
    int rc = 0;
    for (int i = 0; i < 200000 && rc == 0; i++)
        rc = sink->row (sink, row);
    assert_int_equal (rc, -1);
    assert_int_equal (sink->row (sink, row), -1); /* stays failed */
    assert_int_equal (sink->end (sink, BD_ARREARS), -1);
    assert_true (s_log_release ("write failed"));
    assert_int_equal (bd_csv_sink_destroy (&sink), -1);

    /*  A table left open is closed by destroy.  */
    sink = bd_csv_sink_new (dir);
    assert_non_null (sink);
    assert_int_equal (sink->begin (sink, BD_USAGE), 0);
    const char *usage[] = { "9", "2026-03", "SMS", "3" };
    assert_int_equal (sink->row (sink, usage), 0);
    assert_int_equal (bd_csv_sink_destroy (&sink), 0);
    bd_csv_t *csv = s_open_table (dir, BD_USAGE);
    s_expect_row (csv, bd_tables[BD_USAGE].cols, 4);
    s_expect_row (csv, usage, 4);
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    free (path);
    s_remove_dir (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_table_column),       cmocka_unit_test (test_table_definitions),
        cmocka_unit_test (test_sink_writes_tables), cmocka_unit_test (test_sink_bad_dir),
        cmocka_unit_test (test_sink_create_fails),  cmocka_unit_test (test_sink_write_fails),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
