/*  test_admission — bf_admission on a hand-driven clock: the token
    bucket's burst and refill, the 429 pause, the breaker's closed → open
    (error share over at least min samples, in the last 60 s), open →
    half-open after the open time, the probe closing or reopening it, and
    a clock that goes backwards or jumps by years; the breaker's changes
    counted through a provider outage.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bf_admission.h"
#include "bf_testutil.h"

static bf_admission_t *
s_new (int rate, int pct, int min, int open_ms, int64_t now)
{
    bf_admission_config_t config = { "test", rate, pct, min, open_ms };
    bf_admission_t *self = bf_admission_new (&config, now);
    assert_non_null (self);
    return self;
}

//  Takes tokens while ready at now; returns how many.
static int
s_drain (bf_admission_t *self, int64_t now)
{
    int taken = 0;
    while (bf_admission_ready (self, now) && taken < 1000000) {
        bf_admission_take (self);
        taken++;
    }
    return taken;
}

static void
s_record_n (bf_admission_t *self, int n, bf_admit_result_t result, int64_t now)
{
    for (int i = 0; i < n; i++)
        bf_admission_record (self, bf_admission_take (self), result, now);
}

static void
test_config_refused (void **state)
{
    (void)state;
    const bf_admission_config_t bad[] = {
        { "x", -1, 50, 20, 1000 }, { "x", 10, 0, 20, 1000 },   { "x", 10, 101, 20, 1000 },
        { "x", 10, 50, 0, 1000 },  { "x", 10, 50, 101, 1000 }, { "x", 10, 50, 20, 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null (bf_admission_new (&bad[i], 0));
    assert_null (bf_admission_new (NULL, 0));
    bf_admission_t *self = s_new (10, 100, 100, 1, 0);
    bf_admission_destroy (&self);
    assert_null (self);
    bf_admission_destroy (&self);
    bf_admission_destroy (NULL);
}

static void
test_bucket_burst_and_refill (void **state)
{
    (void)state;
    /*  50/s: a burst of 5, then one token every 20 ms.  */
    bf_admission_t *self = s_new (50, 50, 20, 1000, 1000);
    assert_int_equal (s_drain (self, 1000), 5);
    assert_int_equal (bf_admission_wait_ms (self, 1000), 21);
    assert_false (bf_admission_ready (self, 1019));
    assert_true (bf_admission_ready (self, 1021));
    bf_admission_take (self);
    assert_false (bf_admission_ready (self, 1021));
    /*  A long idle refills to the burst, no further.  */
    assert_int_equal (s_drain (self, 600000), 5);
    bf_admission_destroy (&self);

    /*  Under 10/s the burst is one token; 0 is unlimited.  */
    self = s_new (5, 50, 20, 1000, 0);
    assert_int_equal (s_drain (self, 0), 1);
    assert_int_equal (bf_admission_wait_ms (self, 0), 201);
    assert_int_equal (s_drain (self, 200), 1);
    bf_admission_destroy (&self);
    self = s_new (0, 50, 20, 1000, 0);
    assert_int_equal (s_drain (self, 0), 1000000);
    bf_admission_destroy (&self);

    /*  Any one second carries at most 1.1 x rate: 100/s stepped by 1 ms.  */
    self = s_new (100, 50, 20, 1000, 0);
    int sent = 0;
    for (int64_t t = 0; t < 1000; t++)
        sent += s_drain (self, t);
    assert_in_range (sent, 105, 110);
    bf_admission_destroy (&self);
}

static void
test_pause (void **state)
{
    (void)state;
    bf_admission_t *self = s_new (0, 50, 20, 1000, 0);
    assert_false (bf_admission_pause (self, 0, 1000));
    assert_false (bf_admission_pause (self, -5, 1000));
    assert_true (bf_admission_pause (self, 7000, 1000));
    assert_false (bf_admission_ready (self, 1000));
    assert_int_equal (bf_admission_wait_ms (self, 2000), 6000);
    assert_false (bf_admission_ready (self, 7999));
    /*  A shorter pause does not cut the one in force; a longer one extends it.  */
    assert_false (bf_admission_pause (self, 100, 2000));
    assert_false (bf_admission_ready (self, 7999));
    assert_true (bf_admission_ready (self, 8000));
    assert_true (bf_admission_pause (self, 3000, 7000));
    assert_false (bf_admission_ready (self, 9999));
    assert_true (bf_admission_ready (self, 10000));
    /*  A pause outlasts the token wait in bf_admission_wait_ms.  */
    bf_admission_destroy (&self);
    self = s_new (10, 50, 20, 1000, 0);
    s_drain (self, 0);
    assert_true (bf_admission_pause (self, 500, 0));
    assert_int_equal (bf_admission_wait_ms (self, 0), 500);
    bf_admission_destroy (&self);
}

/*  The provider's back-off after an outage's failure: base, then doubling
    per failed round up to max (jitter 32768: the nominal value); sends in
    flight when it was set make no step; a healthy result starts again
    from base; a longer pause in force stays.  */
static void
test_back_off (void **state)
{
    (void)state;
    bf_admission_t *self = s_new (0, 50, 20, 10000, 0);
    assert_int_equal (bf_admission_back_off (self, 0, 0, 0, 8000, 32768), 0); /* no base: none */
    assert_true (bf_admission_ready (self, 0));
    assert_int_equal (bf_admission_back_off (self, 900, 1000, 1000, 8000, 32768), 1000);
    assert_false (bf_admission_ready (self, 1999));
    assert_int_equal (bf_admission_wait_ms (self, 1500), 500);
    /*  Started before (or with) the back-off: in flight then, no step.  */
    assert_int_equal (bf_admission_back_off (self, 950, 1200, 1000, 8000, 32768), 0);
    assert_int_equal (bf_admission_back_off (self, 1000, 1200, 1000, 8000, 32768), 0);
    assert_true (bf_admission_ready (self, 2000));
    /*  Each later round doubles, up to max.  */
    int64_t at = 2000;
    int64_t expect[] = { 2000, 4000, 8000, 8000 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal (bf_admission_back_off (self, at, at + 10, 1000, 8000, 32768), expect[i]);
        assert_false (bf_admission_ready (self, at + 10 + expect[i] - 1));
        at += 10 + expect[i];
        assert_true (bf_admission_ready (self, at));
    }
    /*  A healthy result (a permanent reply counts: the provider answered)
        ends the sequence.  */
    bf_admission_record (self, bf_admission_take (self), BF_ADMIT_HEALTHY, at);
    assert_int_equal (bf_admission_back_off (self, at + 1, at + 2, 1000, 8000, 32768), 1000);
    /*  A failed or throttled result does not.  */
    at += 1002;
    bf_admission_record (self, bf_admission_take (self), BF_ADMIT_FAILED, at);
    bf_admission_record (self, bf_admission_take (self), BF_ADMIT_THROTTLED, at);
    assert_int_equal (bf_admission_back_off (self, at + 1, at + 2, 1000, 8000, 32768), 2000);
    /*  A 429 pause that reaches further is not cut.  */
    at += 2002;
    assert_true (bf_admission_pause (self, 60000, at));
    assert_int_equal (bf_admission_back_off (self, at + 1, at + 2, 1000, 8000, 32768), 4000);
    assert_false (bf_admission_ready (self, at + 59999));
    assert_true (bf_admission_ready (self, at + 60000));
    bf_admission_destroy (&self);
}

//  One step of a breaker scenario: count results at a time, then the state.
typedef struct {
    int count;
    bf_admit_result_t result;
    int64_t at_ms;
    bf_breaker_state_t after;
} s_step_t;

static void
s_scenario (const char *name, int pct, const s_step_t *steps, size_t n)
{
    bf_admission_t *self = s_new (0, pct, 20, 30000, 0);
    for (size_t i = 0; i < n; i++) {
        s_record_n (self, steps[i].count, steps[i].result, steps[i].at_ms);
        bf_breaker_state_t state = bf_admission_breaker (self, steps[i].at_ms);
        if (state != steps[i].after)
            fail_msg ("%s, step %zu: breaker %s, expected %s", name, i,
                      bf_admission_breaker_name (state),
                      bf_admission_breaker_name (steps[i].after));
    }
    bf_admission_destroy (&self);
}

#define S_SCENARIO(name, pct, ...)                                                                 \
    do {                                                                                           \
        const s_step_t steps[] = { __VA_ARGS__ };                                                  \
        s_scenario (name, pct, steps, sizeof steps / sizeof steps[0]);                             \
    } while (0)

static void
test_breaker_opens_on_error_share (void **state)
{
    (void)state;
    const bf_admit_result_t ok = BF_ADMIT_HEALTHY, failed = BF_ADMIT_FAILED;
    const bf_breaker_state_t closed = BF_BREAKER_CLOSED, open = BF_BREAKER_OPEN;
    /*  19 failures are under the minimum of 20 samples; the 20th opens.  */
    S_SCENARIO ("minimum", 50, { 19, failed, 100, closed }, { 1, failed, 100, open });
    /*  The share: 9 of 20 (45 %) and 10 of 21 stay closed, throttled
        results are no samples, 11 of 22 opens.  */
    S_SCENARIO ("share", 50, { 11, ok, 0, closed }, { 9, failed, 0, closed },
                { 1, failed, 0, closed }, { 50, BF_ADMIT_THROTTLED, 0, closed },
                { 1, failed, 0, open });
    /*  Samples older than 60 s do not count.  */
    S_SCENARIO ("age", 50, { 19, failed, 0, closed }, { 1, failed, 60001, closed },
                { 19, failed, 60001, open });
    /*  The window holds the last 100: old healthy ones fall out.  */
    S_SCENARIO ("window", 60, { 100, ok, 0, closed }, { 59, failed, 0, closed },
                { 1, failed, 0, open });

    /*  While open: no sends, and the wait is the open time.  */
    bf_admission_t *self = s_new (0, 50, 20, 30000, 0);
    s_record_n (self, 20, failed, 100);
    assert_string_equal (bf_admission_breaker_name (bf_admission_breaker (self, 100)), "open");
    assert_false (bf_admission_ready (self, 100));
    assert_int_equal (bf_admission_wait_ms (self, 100), 30000);
    bf_admission_destroy (&self);
}

static void
test_breaker_half_open_probe (void **state)
{
    (void)state;
    bf_admission_t *self = s_new (0, 50, 20, 30000, 0);
    bf_admit_ticket_t old = bf_admission_take (self); /* started while closed */
    s_record_n (self, 20, BF_ADMIT_FAILED, 1000);
    assert_false (bf_admission_ready (self, 30999));
    assert_int_equal (bf_admission_breaker (self, 31000), BF_BREAKER_HALF_OPEN);
    assert_true (bf_admission_ready (self, 31000));
    bf_admit_ticket_t probe = bf_admission_take (self);
    assert_true (probe.probe);
    /*  One probe only: nothing else until it ends, and no time helps.  */
    assert_false (bf_admission_ready (self, 31000));
    assert_int_equal (bf_admission_wait_ms (self, 31000), -1);
    /*  A throttled probe leaves it half-open with a new probe allowed.  */
    bf_admission_record (self, probe, BF_ADMIT_THROTTLED, 31500);
    assert_int_equal (bf_admission_breaker (self, 31500), BF_BREAKER_HALF_OPEN);
    assert_true (bf_admission_ready (self, 31500));
    /*  A failed probe reopens it for the open time.  */
    probe = bf_admission_take (self);
    bf_admission_record (self, probe, BF_ADMIT_FAILED, 32000);
    assert_int_equal (bf_admission_breaker (self, 32000), BF_BREAKER_OPEN);
    assert_false (bf_admission_ready (self, 61999));
    assert_true (bf_admission_ready (self, 62000));
    /*  A healthy probe closes it with an empty window.  */
    probe = bf_admission_take (self);
    assert_true (probe.probe);
    bf_admission_record (self, probe, BF_ADMIT_HEALTHY, 62100);
    assert_int_equal (bf_admission_breaker (self, 62100), BF_BREAKER_CLOSED);
    assert_string_equal (bf_admission_breaker_name (BF_BREAKER_CLOSED), "closed");
    s_record_n (self, 19, BF_ADMIT_FAILED, 62100);
    assert_int_equal (bf_admission_breaker (self, 62100), BF_BREAKER_CLOSED);
    /*  A send started before the close does not count after it.  */
    bf_admission_record (self, old, BF_ADMIT_FAILED, 62100);
    assert_int_equal (bf_admission_breaker (self, 62100), BF_BREAKER_CLOSED);
    s_record_n (self, 1, BF_ADMIT_FAILED, 62100);
    assert_int_equal (bf_admission_breaker (self, 62100), BF_BREAKER_OPEN);
    bf_admission_destroy (&self);
}

static void
test_clock_backwards (void **state)
{
    (void)state;
    /*  The bucket: no tokens from a clock going back, and the count goes
        on from the new time instead of waiting for the old one.  */
    bf_admission_t *self = s_new (50, 50, 20, 30000, 10000);
    s_drain (self, 10000);
    assert_false (bf_admission_ready (self, 5000));
    assert_false (bf_admission_ready (self, 5019));
    assert_true (bf_admission_ready (self, 5021));
    bf_admission_destroy (&self);

    /*  A pause is never longer than it was set for.  */
    self = s_new (0, 50, 20, 30000, 0);
    assert_true (bf_admission_pause (self, 7000, 100000));
    assert_false (bf_admission_ready (self, 0));
    assert_int_equal (bf_admission_wait_ms (self, 0), 7000);
    assert_false (bf_admission_ready (self, 6999));
    assert_true (bf_admission_ready (self, 7000));
    bf_admission_destroy (&self);

    /*  Nor is an opening; a sample "from the future" still counts.  */
    self = s_new (0, 50, 20, 30000, 0);
    s_record_n (self, 19, BF_ADMIT_FAILED, 100000);
    s_record_n (self, 1, BF_ADMIT_FAILED, 50);
    assert_int_equal (bf_admission_breaker (self, 50), BF_BREAKER_OPEN);
    assert_false (bf_admission_ready (self, 0));
    assert_int_equal (bf_admission_wait_ms (self, 0), 30000);
    assert_true (bf_admission_ready (self, 30000));
    bf_admission_destroy (&self);
}

static void
test_clock_huge_gaps (void **state)
{
    (void)state;
    const int64_t far = INT64_MAX / 2;
    bf_admission_t *self = s_new (1000, 50, 20, 30000, INT64_MIN + 5);
    assert_int_equal (s_drain (self, INT64_MIN + 5), 100);
    /*  Years later: the burst, not years of tokens.  */
    assert_int_equal (s_drain (self, far), 100);
    /*  A pause and an opening at the end of time saturate, never wrap.  */
    assert_true (bf_admission_pause (self, 3600000, INT64_MAX - 10));
    assert_false (bf_admission_ready (self, INT64_MAX - 1));
    assert_true (bf_admission_wait_ms (self, INT64_MAX - 1) >= 1);
    bf_admission_destroy (&self);

    self = s_new (0, 50, 20, 30000, 0);
    s_record_n (self, 20, BF_ADMIT_FAILED, INT64_MAX - 10);
    assert_int_equal (bf_admission_breaker (self, INT64_MAX - 10), BF_BREAKER_OPEN);
    assert_true (bf_admission_ready (self, INT64_MAX));
    bf_admission_destroy (&self);

    /*  Old samples age out over a jump; the open breaker is half-open.  */
    self = s_new (0, 50, 20, 30000, 0);
    s_record_n (self, 19, BF_ADMIT_FAILED, INT64_MIN + 1);
    s_record_n (self, 1, BF_ADMIT_FAILED, far);
    assert_int_equal (bf_admission_breaker (self, far), BF_BREAKER_CLOSED);
    s_record_n (self, 19, BF_ADMIT_FAILED, far);
    assert_int_equal (bf_admission_breaker (self, far + 30000), BF_BREAKER_HALF_OPEN);
    assert_true (bf_admission_ready (self, far + 30000));
    bf_admission_destroy (&self);
}

/*  A provider down for 5 minutes, sends refused at once: the breaker opens
    once on the failures, then every open time turns half-open and its probe
    reopens it, until a probe after the outage closes it; each change is
    counted once, and no send but the probes goes out while it is open.  */
static void
test_breaker_counts_through_an_outage (void **state)
{
    (void)state;
    bf_admission_t *self = s_new (0, 50, 20, 10000, 0);
    bf_breaker_counts_t counts = bf_admission_breaker_counts (self);
    assert_true (counts.opened == 0 && counts.half_opened == 0 && counts.closed == 0);
    const int64_t down = 60000, up = down + 300000;
    int64_t now = down;
    s_record_n (self, 20, BF_ADMIT_FAILED, now);
    assert_int_equal (bf_admission_breaker (self, now), BF_BREAKER_OPEN);
    int probes = 0, sent_while_open = 0;
    for (now = down; now < up + 60000; now += 100) {
        if (!bf_admission_ready (self, now))
            continue;
        bf_admit_ticket_t ticket = bf_admission_take (self);
        if (!ticket.probe) {
            assert_true (now >= up); /* closed again only after the outage */
            bf_admission_record (self, ticket, BF_ADMIT_HEALTHY, now);
            continue;
        }
        probes++;
        bf_admission_record (self, ticket, now < up ? BF_ADMIT_FAILED : BF_ADMIT_HEALTHY, now);
        if (now < up && bf_admission_breaker (self, now) != BF_BREAKER_OPEN)
            sent_while_open++;
    }
    assert_int_equal (sent_while_open, 0);
    /*  Half-open at 10 s, 20 s, ... 300 s after the start (30 probes, the
        last one at the recovery instant succeeds).  */
    counts = bf_admission_breaker_counts (self);
    assert_int_equal (probes, 30);
    assert_int_equal (counts.half_opened, 30);
    assert_int_equal (counts.opened, 30); /* the first opening and 29 reopenings */
    assert_int_equal (counts.closed, 1);
    assert_int_equal (bf_admission_breaker (self, now), BF_BREAKER_CLOSED);
    counts = bf_admission_breaker_counts (NULL);
    assert_true (counts.opened == 0 && counts.half_opened == 0 && counts.closed == 0);
    bf_admission_destroy (&self);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_config_refused),
        cmocka_unit_test (test_bucket_burst_and_refill),
        cmocka_unit_test (test_pause),
        cmocka_unit_test (test_back_off),
        cmocka_unit_test (test_breaker_opens_on_error_share),
        cmocka_unit_test (test_breaker_half_open_probe),
        cmocka_unit_test (test_clock_backwards),
        cmocka_unit_test (test_clock_huge_gaps),
        cmocka_unit_test (test_breaker_counts_through_an_outage),
    };
    return cmocka_run_group_tests (tests, bf_testutil_quiet_setup, bf_testutil_quiet_teardown);
}
