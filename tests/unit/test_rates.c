/*  Unit: run.rates (services/control/bf_rates.h) without a database — the
    points of a sample series (at most the limit whatever the length, the
    changes add up to the totals, gaps have no rate, evenly spaced) and the
    query's argument checks (run_id required, a positive integer, nothing
    else), which control makes before it touches the database.  */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_query.h"
#include "bf_rates.h"

/*  n samples one second apart from t = 100, bills growing by bills_step
    and notices by notices_step a second.  */
static bf_rates_sample_t *
s_series (size_t n, int64_t bills_step, int64_t notices_step)
{
    bf_rates_sample_t *s = calloc (n, sizeof *s);
    assert_non_null (s);
    for (size_t i = 0; i < n; i++)
        s[i] = (bf_rates_sample_t){ 100.0 + (double)i, (int64_t)i * bills_step,
                                    (int64_t)i * notices_step, false };
    return s;
}

static void
s_sums (const bf_rates_point_t *p, size_t n, int64_t *bills, int64_t *notices, double *seconds)
{
    *bills = *notices = 0;
    *seconds = 0;
    for (size_t i = 0; i < n; i++) {
        *bills += p[i].bills;
        *notices += p[i].notices;
        *seconds += p[i].seconds;
    }
}

/*  A short run: one point per second, each the second's change.  */
static void
test_short_run_every_interval (void **state)
{
    (void)state;
    bf_rates_sample_t *s = s_series (61, 250, 40);
    bf_rates_point_t out[BF_RATES_POINTS];
    size_t n = bf_rates_points (s, 61, BF_RATES_POINTS, out);
    assert_int_equal (n, 60);
    for (size_t i = 0; i < n; i++) {
        assert_true (fabs (out[i].t - (double)(i + 1)) < 1e-9);
        assert_true (fabs (out[i].seconds - 1.0) < 1e-9);
        assert_int_equal (out[i].bills, 250);
        assert_int_equal (out[i].notices, 40);
        assert_false (out[i].gap);
    }
    free (s);
}

/*  An hour at one sample a second: at most the limit, evenly spaced, and
    the changes add up to the run's totals over its whole length.  */
static void
test_long_run_downsampled (void **state)
{
    (void)state;
    size_t len = 3601;
    bf_rates_sample_t *s = s_series (len, 7, 3);
    /*  Irregular spacing: a sample late now and then.  */
    for (size_t i = 1; i < len; i += 7)
        s[i].t += 0.4;
    bf_rates_point_t out[BF_RATES_POINTS];
    size_t n = bf_rates_points (s, len, BF_RATES_POINTS, out);
    assert_true (n <= BF_RATES_POINTS);
    assert_true (n >= BF_RATES_POINTS - 1);
    int64_t bills, notices;
    double seconds;
    s_sums (out, n, &bills, &notices, &seconds);
    assert_int_equal (bills, s[len - 1].bills);
    assert_int_equal (notices, s[len - 1].notices);
    assert_true (fabs (seconds - 3600.0) < 1e-6);
    assert_true (fabs (out[n - 1].t - 3600.0) < 1e-6);
    for (size_t i = 0; i < n; i++) {
        assert_true (out[i].seconds >= 5.0 && out[i].seconds <= 7.0);
        assert_true (fabs ((double)out[i].bills / out[i].seconds - 7.0) < 0.5);
    }
    /*  Tighter limits hold too.  */
    assert_int_equal (bf_rates_points (s, len, 10, out), 10);
    assert_int_equal (bf_rates_points (s, len, 1, out), 1);
    assert_int_equal (out[0].bills, s[len - 1].bills);
    free (s);
}

/*  A failover: 20 s without samples. The interval over it has its change
    but is a gap; the others are not.  */
static void
test_gap_has_no_rate (void **state)
{
    (void)state;
    bf_rates_sample_t *s = s_series (60, 100, 10);
    for (size_t i = 30; i < 60; i++)
        s[i].t += 20.0;
    s[30].gap = true;
    bf_rates_point_t out[BF_RATES_POINTS];
    size_t n = bf_rates_points (s, 60, BF_RATES_POINTS, out);
    assert_int_equal (n, 59);
    int gaps = 0;
    for (size_t i = 0; i < n; i++)
        if (out[i].gap) {
            gaps++;
            assert_true (fabs (out[i].seconds - 21.0) < 1e-9);
            assert_int_equal (out[i].bills, 100);
        }
    assert_int_equal (gaps, 1);
    /*  Downsampled, the gap marks the interval that holds it.  */
    n = bf_rates_points (s, 60, 4, out);
    assert_int_equal (n, 4);
    gaps = 0;
    for (size_t i = 0; i < n; i++)
        gaps += out[i].gap;
    assert_int_equal (gaps, 1);
    int64_t bills, notices;
    double seconds;
    s_sums (out, n, &bills, &notices, &seconds);
    assert_int_equal (bills, 5900);
    assert_int_equal (notices, 590);
    free (s);
}

/*  What run.rates' query hands bf_rates_points for samples s: the newest
    sample at or before each of points + 1 evenly spaced instants from the
    first to the last (a sample comes once per instant it is the newest
    for). picks must hold points + 1.  */
static void
s_picks (const bf_rates_sample_t *s, size_t n, size_t points, bf_rates_sample_t *picks)
{
    size_t at = 0;
    for (size_t i = 0; i <= points; i++) {
        double instant = i == points ? s[n - 1].t
                                     : s[0].t + (s[n - 1].t - s[0].t) * (double)i / (double)points;
        while (at + 1 < n && s[at + 1].t <= instant)
            at++;
        picks[i] = s[at];
    }
}

/*  A run that settles before the sampler's first sample (595 bills in
    0.4 s, as the console's browser test): the start row (bills 0), the
    first sample 0.6 s later with every bill, then a second apart while
    its notices go out, then one late sample (a gap). Through the query's
    picks, the first point is the run's start to the first sample with
    every bill and a positive rate; rate x seconds adds up to the bills.
    Read right after the first sample, it is the one point. A first
    sample more than the gap interval late gives the same change with no
    rate.  */
static void
test_run_done_before_first_sample (void **state)
{
    (void)state;
    bf_rates_sample_t s[14] = { { 0.0, 0, 0, false }, { 0.6, 595, 0, false } };
    for (size_t i = 2; i < 13; i++)
        s[i] = (bf_rates_sample_t){ 0.6 + (double)(i - 1), 595, (int64_t)(i - 1) * 90, false };
    s[13] = (bf_rates_sample_t){ 20.0, 595, 991, true };
    bf_rates_sample_t picks[BF_RATES_POINTS + 1];
    bf_rates_point_t out[BF_RATES_POINTS];
    s_picks (s, 14, BF_RATES_POINTS, picks);
    size_t n = bf_rates_points (picks, BF_RATES_POINTS + 1, BF_RATES_POINTS, out);
    assert_int_equal (n, 13);
    assert_true (fabs (out[0].t - 0.6) < 1e-9);
    assert_true (fabs (out[0].seconds - 0.6) < 1e-9);
    assert_int_equal (out[0].bills, 595);
    assert_false (out[0].gap);
    assert_true ((double)out[0].bills / out[0].seconds > 990.0);
    /*  As itest_rates: the rates (3 decimals, as run.rates answers them)
        times the intervals add up to the bills outside the gap.  */
    double billed = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true (i == 0 || out[i].bills == 0);
        assert_true (out[i].gap == (i == n - 1));
        if (!out[i].gap)
            billed
                += round ((double)out[i].bills / out[i].seconds * 1000.0) / 1000.0 * out[i].seconds;
    }
    assert_true (fabs (billed - 595.0) < 0.01);
    int64_t bills, notices;
    double seconds;
    s_sums (out, n, &bills, &notices, &seconds);
    assert_int_equal (bills, 595);
    assert_int_equal (notices, 991);
    assert_true (fabs (seconds - 20.0) < 1e-9);

    /*  Read when only the start row and the first sample exist.  */
    s_picks (s, 2, BF_RATES_POINTS, picks);
    n = bf_rates_points (picks, BF_RATES_POINTS + 1, BF_RATES_POINTS, out);
    assert_int_equal (n, 1);
    assert_int_equal (out[0].bills, 595);
    assert_true (fabs (out[0].seconds - 0.6) < 1e-9);
    assert_false (out[0].gap);

    /*  No active control when it ran: the first sample came 5 s late.  */
    bf_rates_sample_t late[]
        = { { 0.0, 0, 0, false }, { 5.0, 595, 0, true }, { 6.0, 595, 90, false } };
    s_picks (late, 3, BF_RATES_POINTS, picks);
    n = bf_rates_points (picks, BF_RATES_POINTS + 1, BF_RATES_POINTS, out);
    assert_int_equal (n, 2);
    assert_int_equal (out[0].bills, 595);
    assert_true (out[0].gap);
    assert_false (out[1].gap);
}

/*  Too few samples, repeated instants, and samples out of order.  */
static void
test_degenerate_series (void **state)
{
    (void)state;
    bf_rates_point_t out[BF_RATES_POINTS];
    bf_rates_sample_t one[] = { { 5.0, 10, 0, false } };
    assert_int_equal (bf_rates_points (one, 1, BF_RATES_POINTS, out), 0);
    assert_int_equal (bf_rates_points (NULL, 0, BF_RATES_POINTS, out), 0);
    bf_rates_sample_t same[] = { { 5.0, 0, 0, false }, { 5.0, 10, 0, false } };
    assert_int_equal (bf_rates_points (same, 2, BF_RATES_POINTS, out), 0);
    /*  The series ends where time goes backwards.  */
    bf_rates_sample_t back[] = {
        { 1.0, 0, 0, false }, { 2.0, 10, 1, false }, { 3.0, 30, 2, false }, { 0.5, 99, 9, false }
    };
    size_t n = bf_rates_points (back, 4, BF_RATES_POINTS, out);
    assert_int_equal (n, 2);
    assert_int_equal (out[0].bills + out[1].bills, 30);
    assert_int_equal (bf_rates_points (back, 4, 0, out), 0);
}

/*  run.rates through bf_query: the arguments are refused before the
    database is asked; good ones then need it (RETRY without one).  */
static int
s_ask (const char *key, const char *value, char *err, size_t errsize)
{
    Billflow__Argument arg = BILLFLOW__ARGUMENT__INIT;
    Billflow__Argument *args[] = { &arg };
    arg.key = (char *)key;
    arg.value = (char *)value;
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    cmd.verb = "run.rates";
    cmd.n_args = key ? 1 : 0;
    cmd.args = key ? args : NULL;
    char *json = NULL;
    bf_query_ctx_t ctx = { 0 };
    int rc = bf_query (NULL, &ctx, &cmd, &json, err, errsize);
    assert_null (json);
    return rc;
}

static void
test_query_arguments (void **state)
{
    (void)state;
    char err[256];
    assert_int_equal (s_ask (NULL, NULL, err, sizeof err), BF_QUERY_BAD);
    assert_string_equal (err, "run.rates needs run_id");
    const char *bad[] = { "0", "-1", "abc", "1.5", "", "99999999999999999999", "7; DROP TABLE x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (s_ask ("run_id", bad[i], err, sizeof err), BF_QUERY_BAD);
        assert_non_null (strstr (err, "run_id: expected a positive integer"));
    }
    assert_int_equal (s_ask ("period", "2026-10", err, sizeof err), BF_QUERY_BAD);
    assert_non_null (strstr (err, "unknown argument \"period\" for run.rates (accepted: run_id)"));
    assert_int_equal (s_ask ("run_id", "7", err, sizeof err), BF_QUERY_RETRY);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_short_run_every_interval),
        cmocka_unit_test (test_long_run_downsampled),
        cmocka_unit_test (test_gap_has_no_rate),
        cmocka_unit_test (test_run_done_before_first_sample),
        cmocka_unit_test (test_degenerate_series),
        cmocka_unit_test (test_query_arguments),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
