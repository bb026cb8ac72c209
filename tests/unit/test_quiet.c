/*  Unit: quiet hours — windows crossing midnight, chained windows, offsets.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bf_date.h"
#include "bf_quiet.h"

#define KST 540
#define MIN (60LL * 1000)

/*  Epoch ms of a Seoul local date and time.  */
static int64_t
s_kst (int y, int mo, int d, int h, int mi)
{
    int64_t days = bf_day_from_ymd (y, mo, d);
    return ((days * 1440) + h * 60 + mi - KST) * MIN;
}

static void
test_inside (void **state)
{
    (void)state;
    bf_quiet_window_t night = { 21 * 60, 8 * 60 }, lunch = { 12 * 60, 13 * 60 }, none = { 0, 0 };
    assert_true (bf_quiet_inside (night, 21 * 60));
    assert_true (bf_quiet_inside (night, 23 * 60 + 59));
    assert_true (bf_quiet_inside (night, 0));
    assert_true (bf_quiet_inside (night, 7 * 60 + 59));
    assert_false (bf_quiet_inside (night, 8 * 60));
    assert_false (bf_quiet_inside (night, 20 * 60 + 59));
    assert_true (bf_quiet_inside (lunch, 12 * 60 + 30));
    assert_false (bf_quiet_inside (lunch, 13 * 60));
    assert_false (bf_quiet_inside (none, 0));
}

static void
test_release_crossing_midnight (void **state)
{
    (void)state;
    bf_quiet_window_t night = { 21 * 60, 8 * 60 };
    /*  10:00 is outside: no hold.  */
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 2, 10, 0), KST, &night, 1), 0);
    /*  22:30 on the 2nd is held until 08:00 on the 3rd; 03:15 until 08:00
        the same day; seconds inside a minute do not shift the release.  */
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 2, 22, 30), KST, &night, 1),
                      s_kst (2026, 11, 3, 8, 0));
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 3, 3, 15) + 42 * 1000, KST, &night, 1),
                      s_kst (2026, 11, 3, 8, 0));
    /*  Exactly at the end: free; exactly at the start: held.  */
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 3, 8, 0), KST, &night, 1), 0);
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 3, 21, 0), KST, &night, 1),
                      s_kst (2026, 11, 4, 8, 0));
    /*  Across a month and a year end.  */
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 12, 31, 23, 0), KST, &night, 1),
                      s_kst (2027, 1, 1, 8, 0));
}

static void
test_release_chained_windows (void **state)
{
    (void)state;
    /*  The system's night and a subscriber's own morning that starts
        before the night ends: held until the later end.  */
    bf_quiet_window_t windows[] = { { 21 * 60, 8 * 60 }, { 7 * 60, 9 * 60 + 30 } };
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 2, 23, 0), KST, windows, 2),
                      s_kst (2026, 11, 3, 9, 30));
    /*  A subscriber window that begins exactly where the system's ends.  */
    bf_quiet_window_t touching[] = { { 21 * 60, 8 * 60 }, { 8 * 60, 8 * 60 + 45 } };
    assert_int_equal (bf_quiet_release_ms (s_kst (2026, 11, 2, 6, 0), KST, touching, 2),
                      s_kst (2026, 11, 2, 8, 45));
    /*  Windows covering the whole day never release within the walk.  */
    bf_quiet_window_t all[] = { { 0, 12 * 60 }, { 12 * 60, 0 } };
    assert_true (bf_quiet_release_ms (s_kst (2026, 11, 2, 6, 0), KST, all, 2)
                 >= s_kst (2026, 11, 3, 6, 0));
}

static void
test_offsets_and_parse (void **state)
{
    (void)state;
    bf_quiet_window_t night;
    assert_int_equal (bf_quiet_parse ("21:00", "08:00", &night), 0);
    assert_int_equal (night.start, 21 * 60);
    /*  12:30 UTC is 21:30 in Seoul (held) but 12:30 in UTC (free).  */
    int64_t t = s_kst (2026, 11, 2, 21, 30);
    assert_true (bf_quiet_release_ms (t, KST, &night, 1) > 0);
    assert_int_equal (bf_quiet_release_ms (t, 0, &night, 1), 0);
    bf_quiet_window_t w;
    assert_int_equal (bf_quiet_parse (NULL, NULL, &w), 0);
    assert_int_equal (w.start, w.end);
    assert_int_equal (bf_quiet_parse ("", "", &w), 0);
    assert_int_equal (bf_quiet_parse ("21:00", "", &w), -1);
    assert_int_equal (bf_quiet_parse ("25:00", "08:00", &w), -1);
    assert_int_equal (bf_quiet_parse ("21:00", "8:00", &w), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_inside),
        cmocka_unit_test (test_release_crossing_midnight),
        cmocka_unit_test (test_release_chained_windows),
        cmocka_unit_test (test_offsets_and_parse),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
