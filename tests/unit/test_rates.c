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
        cmocka_unit_test (test_degenerate_series),
        cmocka_unit_test (test_query_arguments),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
