/*  test_date — bf_date day numbers, parsers, periods and overlaps.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "bf_date.h"

static bf_day_t
s_parse (const char *text)
{
    bf_day_t day = -12345;
    assert_int_equal (bf_date_parse (text, &day), 0);
    return day;
}

static void
test_known_days (void **state)
{
    (void)state;
    assert_int_equal (bf_day_from_ymd (1970, 1, 1), 0);
    assert_int_equal (bf_day_from_ymd (1970, 1, 2), 1);
    assert_int_equal (bf_day_from_ymd (1969, 12, 31), -1);
    assert_int_equal (bf_day_from_ymd (2000, 3, 1), 11017);
    assert_int_equal (bf_day_from_ymd (2024, 2, 29), 19782);
    assert_int_equal (bf_day_from_ymd (2026, 2, 1), 20485);
    assert_int_equal (bf_day_from_ymd (2026, 10, 31), 20757);
    assert_int_equal (bf_day_from_ymd (1900, 1, 1), -25567);
    assert_int_equal (bf_day_from_ymd (9999, 12, 31), 2932896);
    /*  day 0 is the last day of the month before  */
    assert_int_equal (bf_day_from_ymd (2024, 3, 0), bf_day_from_ymd (2024, 2, 29));

    assert_int_equal (s_parse ("2026-10-31"), 20757);
    assert_int_equal (s_parse ("1900-01-01"), -25567);
    assert_int_equal (s_parse ("9999-12-31"), 2932896);

    int y, m, d;
    bf_day_to_ymd (11017, &y, &m, &d);
    assert_int_equal (y, 2000);
    assert_int_equal (m, 3);
    assert_int_equal (d, 1);
    bf_day_to_ymd (-25567, &y, &m, &d);
    assert_int_equal (y, 1900);
    assert_int_equal (m, 1);
    assert_int_equal (d, 1);

    char out[11];
    assert_string_equal (bf_date_format (0, out), "1970-01-01");
    assert_string_equal (bf_date_format (20757, out), "2026-10-31");
    assert_string_equal (bf_date_format (-25567, out), "1900-01-01");
    assert_string_equal (bf_date_format (2932896, out), "9999-12-31");
    assert_string_equal (bf_date_format (2932897, out), "????"
                                                        "-"
                                                        "??"
                                                        "-"
                                                        "??"); /* year 10000 */
}

/*  Every day from 1900-01-01 to 2100-12-31: consecutive numbers, and
    number -> ymd -> text -> number round trips.  */
static void
test_round_trip_1900_2100 (void **state)
{
    (void)state;
    bf_day_t expected = bf_day_from_ymd (1900, 1, 1);
    long total = 0;
    for (int year = 1900; year <= 2100; year++) {
        for (int month = 1; month <= 12; month++) {
            for (int mday = 1; mday <= bf_days_in_month (year, month); mday++) {
                bf_day_t day = bf_day_from_ymd (year, month, mday);
                assert_int_equal (day, expected);
                int y, m, d;
                bf_day_to_ymd (day, &y, &m, &d);
                assert_int_equal (y, year);
                assert_int_equal (m, month);
                assert_int_equal (d, mday);
                char text[11];
                char want[32];
                snprintf (want, sizeof (want), "%04d-%02d-%02d", year, month, mday);
                assert_string_equal (bf_date_format (day, text), want);
                assert_int_equal (s_parse (text), day);
                expected++;
                total++;
            }
        }
    }
    /*  201 years, 49 of them leap (2000 is, 1900 and 2100 are not)  */
    assert_int_equal (total, 201 * 365 + 49);
    assert_int_equal (expected, bf_day_from_ymd (2101, 1, 1));
}

static void
test_leap_years (void **state)
{
    (void)state;
    assert_false (bf_is_leap_year (1900));
    assert_true (bf_is_leap_year (2000));
    assert_true (bf_is_leap_year (2024));
    assert_false (bf_is_leap_year (2026));
    assert_false (bf_is_leap_year (2100));
    assert_true (bf_is_leap_year (2400));

    assert_int_equal (bf_days_in_month (1900, 2), 28);
    assert_int_equal (bf_days_in_month (2000, 2), 29);
    assert_int_equal (bf_days_in_month (2024, 2), 29);
    assert_int_equal (bf_days_in_month (2026, 2), 28);
    assert_int_equal (bf_days_in_month (2026, 1), 31);
    assert_int_equal (bf_days_in_month (2026, 4), 30);
    assert_int_equal (bf_days_in_month (2026, 6), 30);
    assert_int_equal (bf_days_in_month (2026, 9), 30);
    assert_int_equal (bf_days_in_month (2026, 11), 30);
    assert_int_equal (bf_days_in_month (2026, 12), 31);
    assert_int_equal (bf_days_in_month (2026, 0), 0);
    assert_int_equal (bf_days_in_month (2026, 13), 0);

    bf_day_t day;
    assert_int_equal (bf_date_parse ("2024-02-29", &day), 0);
    assert_int_equal (bf_date_parse ("2000-02-29", &day), 0);
    assert_int_equal (bf_date_parse ("1900-02-29", &day), -1);
    assert_int_equal (bf_date_parse ("2026-02-29", &day), -1);
}

static void
test_date_parse_rejects (void **state)
{
    (void)state;
    const char *bad[] = {
        "2026-2-01",   "2026-02-30",  "2026-13-01", "2026-00-10", "20260101",   "2026-01-01x",
        " 2026-01-01", "1899-12-31",  "2026-01-1",  "2026-01-00", "2026-04-31", "2026/01/01",
        "2026-01-01 ", "+026-01-01",  "2026-0a-01", "",           "2026",       "2026-01",
        "2026-01-",    "10000-01-01", "2026-1-1",   "2026--1-01",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        bf_day_t day = 777;
        if (bf_date_parse (bad[i], &day) != -1)
            fail_msg ("accepted \"%s\"", bad[i]);
        assert_int_equal (day, 777); /* untouched */
    }
    bf_day_t day = 777;
    assert_int_equal (bf_date_parse (NULL, &day), -1);
    assert_int_equal (day, 777);
}

static void
test_periods (void **state)
{
    (void)state;
    bf_period_t p = { 0, 0 };
    assert_int_equal (bf_period_parse ("2026-02", &p), 0);
    assert_int_equal (p.year, 2026);
    assert_int_equal (p.month, 2);
    char out[8];
    assert_string_equal (bf_period_format (p, out), "2026-02");
    assert_int_equal (bf_period_first_day (p), s_parse ("2026-02-01"));
    assert_int_equal (bf_period_end_day (p), s_parse ("2026-03-01"));
    assert_int_equal (bf_period_days (p), 28);

    bf_period_t leap = { 2024, 2 };
    assert_int_equal (bf_period_days (leap), 29);
    assert_int_equal (bf_period_end_day (leap) - bf_period_first_day (leap), 29);

    bf_period_t dec = { 2025, 12 };
    bf_period_t next = bf_period_next (dec);
    assert_int_equal (next.year, 2026);
    assert_int_equal (next.month, 1);
    assert_int_equal (bf_period_end_day (dec), s_parse ("2026-01-01"));
    assert_int_equal (bf_period_days (dec), 31);
    next = bf_period_next (p);
    assert_int_equal (next.year, 2026);
    assert_int_equal (next.month, 3);

    bf_period_t first = { 1900, 1 };
    assert_string_equal (bf_period_format (first, out), "1900-01");
    bf_period_t bad_month = { 2026, 13 };
    assert_string_equal (bf_period_format (bad_month, out), "2026-??");

    assert_int_equal (bf_period_parse ("9999-12", &p), 0);
    assert_int_equal (p.year, 9999);
    assert_int_equal (p.month, 12);
    const char *bad[] = {
        "2026-2",   "2026-13",  "2026-00", "1899-12", "202602",  "2026-02-01",
        "2026-02 ", " 2026-02", "",        "2026-",   "2026-1a",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        bf_period_t q = { 1, 1 };
        if (bf_period_parse (bad[i], &q) != -1)
            fail_msg ("accepted \"%s\"", bad[i]);
        assert_int_equal (q.year, 1);
    }
}

static void
test_overlap (void **state)
{
    (void)state;
    bf_period_t p = { 2026, 3 }; /* 31 days */
    bf_day_t lo = bf_period_first_day (p), hi = bf_period_end_day (p);
    bf_day_t mar10 = s_parse ("2026-03-10");
    bf_day_t feb1 = s_parse ("2026-02-01");
    bf_day_t apr5 = s_parse ("2026-04-05");

    assert_int_equal (bf_days_overlap (feb1, BF_DAY_OPEN, lo, hi), 31); /* open end */
    assert_int_equal (bf_days_overlap (mar10, BF_DAY_OPEN, lo, hi), 22);
    assert_int_equal (bf_days_overlap (feb1, mar10, lo, hi), 9);
    assert_int_equal (bf_days_overlap (mar10, mar10 + 1, lo, hi), 1);
    assert_int_equal (bf_days_overlap (lo, hi, lo, hi), 31);
    assert_int_equal (bf_days_overlap (mar10, apr5, lo, hi), 22);
    /*  disjoint, touching and empty ranges  */
    assert_int_equal (bf_days_overlap (feb1, lo, lo, hi), 0);
    assert_int_equal (bf_days_overlap (hi, apr5, lo, hi), 0);
    assert_int_equal (bf_days_overlap (apr5, BF_DAY_OPEN, lo, hi), 0);
    assert_int_equal (bf_days_overlap (mar10, mar10, lo, hi), 0);
    assert_int_equal (bf_days_overlap (apr5, feb1, lo, hi), 0); /* reversed */
    /*  both open: saturates instead of overflowing  */
    assert_int_equal (bf_days_overlap (INT32_MIN, BF_DAY_OPEN, INT32_MIN, BF_DAY_OPEN), INT32_MAX);
}

static void
test_times (void **state)
{
    (void)state;
    int minutes = -1;
    assert_int_equal (bf_time_parse ("00:00", &minutes), 0);
    assert_int_equal (minutes, 0);
    assert_int_equal (bf_time_parse ("23:59", &minutes), 0);
    assert_int_equal (minutes, 23 * 60 + 59);
    assert_int_equal (bf_time_parse ("07:30", &minutes), 0);
    assert_int_equal (minutes, 450);

    const char *bad[] = {
        "24:00", "7:00", "12:60", "07:5",  "0700",  "07:00 ",   " 07:00",
        "07-00", "",     "ab:cd", "07:0a", "-1:00", "07:00:00",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        minutes = 999;
        if (bf_time_parse (bad[i], &minutes) != -1)
            fail_msg ("accepted \"%s\"", bad[i]);
        assert_int_equal (minutes, 999);
    }
    assert_int_equal (bf_time_parse (NULL, &minutes), -1);

    char out[6];
    assert_string_equal (bf_time_format (0, out), "00:00");
    assert_string_equal (bf_time_format (450, out), "07:30");
    assert_string_equal (bf_time_format (1439, out), "23:59");
    assert_string_equal (bf_time_format (1440, out), "??:??");
    assert_string_equal (bf_time_format (-1, out), "??:??");
    for (int m = 0; m < 24 * 60; m++) {
        int back = -1;
        assert_int_equal (bf_time_parse (bf_time_format (m, out), &back), 0);
        assert_int_equal (back, m);
    }
}

/*  since= and until= of control's lists: a date (midnight UTC) or RFC 3339
    with Z or an offset, to the microsecond; nothing else.  */
static void
test_timestamps (void **state)
{
    (void)state;
    int64_t us = -1;
    const int64_t day = 20393; /* 2025-11-01 */
    assert_int_equal (bf_date_parse ("2025-11-01", &(bf_day_t){ 0 }), 0);
    assert_int_equal (bf_timestamp_parse ("2025-11-01", &us), 0);
    assert_true (us == day * 86400 * 1000000);
    assert_int_equal (bf_timestamp_parse ("2025-11-01T00:00:00Z", &us), 0);
    assert_true (us == day * 86400 * 1000000);
    assert_int_equal (bf_timestamp_parse ("2025-11-01T09:00:00+09:00", &us), 0);
    assert_true (us == day * 86400 * 1000000);
    assert_int_equal (bf_timestamp_parse ("2025-10-31T23:30:00-00:30", &us), 0);
    assert_true (us == day * 86400 * 1000000);
    assert_int_equal (bf_timestamp_parse ("2025-11-01T01:02:03.5Z", &us), 0);
    assert_true (us == (day * 86400 + 3723) * 1000000 + 500000);
    assert_int_equal (bf_timestamp_parse ("2025-11-01T01:02:03.000007Z", &us), 0);
    assert_true (us == (day * 86400 + 3723) * 1000000 + 7);

    const char *bad[] = {
        "",
        "2025-11",
        "2025-11-31",
        "2025-11-01 ",
        " 2025-11-01",
        "2025-11-01 00:00:00Z",
        "2025-11-01t00:00:00Z",
        "2025-11-01T00:00:00z",
        "2025-11-01T00:00:00",
        "2025-11-01T00:00Z",
        "2025-11-01T24:00:00Z",
        "2025-11-01T23:60:00Z",
        "2025-11-01T23:59:60Z",
        "2025-11-01T00:00:00.Z",
        "2025-11-01T00:00:00.1234567Z",
        "2025-11-01T00:00:00+0900",
        "2025-11-01T00:00:00+24:00",
        "2025-11-01T00:00:00+09:60",
        "2025-11-01T00:00:00+09:00 ",
        "2025-11-01T00:00:00Z\n",
        "2025-11-01T00:00:00ZZ",
        "1899-12-31",
        "\xff\xfe-11-01",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        us = 999;
        if (bf_timestamp_parse (bad[i], &us) != -1)
            fail_msg ("accepted \"%s\"", bad[i]);
        assert_true (us == 999);
    }
    assert_int_equal (bf_timestamp_parse (NULL, &us), -1);

    char out[28];
    assert_int_equal (bf_timestamp_parse ("2025-11-01T09:00:00.25+09:00", &us), 0);
    assert_string_equal (bf_timestamp_format (us, out), "2025-11-01T00:00:00.250000Z");
    assert_string_equal (bf_timestamp_format (0, out), "1970-01-01T00:00:00.000000Z");
    int64_t back = -1;
    assert_int_equal (bf_timestamp_parse ("2026-02-28T23:59:59.999999Z", &us), 0);
    assert_int_equal (bf_timestamp_parse (bf_timestamp_format (us, out), &back), 0);
    assert_true (back == us);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_known_days), cmocka_unit_test (test_round_trip_1900_2100),
        cmocka_unit_test (test_leap_years), cmocka_unit_test (test_date_parse_rejects),
        cmocka_unit_test (test_periods),    cmocka_unit_test (test_overlap),
        cmocka_unit_test (test_times),      cmocka_unit_test (test_timestamps),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
