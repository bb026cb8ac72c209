/*  Unit: the token bucket (common/bf_bucket) shared by control's per-key
    limit and the console's per-session limit — burst, refill, the wait
    it tells, and a clock that steps backwards — and the console's
    per-session use of it (bf_sessions_take): one session's flood leaves
    another's bucket full, and the warning is due once per 10 s.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bf_bucket.h"
#include "bf_session.h"

static void
test_burst_then_refused (void **state)
{
    (void)state;
    bf_bucket_t b;
    bf_bucket_init (&b, 20, 60, 1000);
    for (int i = 0; i < 60; i++)
        assert_true (bf_bucket_take (&b, 1000));
    assert_false (bf_bucket_take (&b, 1000));
    assert_false (bf_bucket_take (&b, 1000));
}

static void
test_refill_at_rate_capped_at_burst (void **state)
{
    (void)state;
    bf_bucket_t b;
    bf_bucket_init (&b, 20, 60, 0);
    for (int i = 0; i < 60; i++)
        assert_true (bf_bucket_take (&b, 0));
    /*  20/s: one token every 50 ms.  */
    assert_false (bf_bucket_take (&b, 49));
    assert_true (bf_bucket_take (&b, 50));
    assert_false (bf_bucket_take (&b, 60));
    /*  A long pause refills to burst, never beyond.  */
    int taken = 0;
    while (bf_bucket_take (&b, 1000000))
        taken++;
    assert_int_equal (taken, 60);
}

static void
test_wait_rounded_up (void **state)
{
    (void)state;
    bf_bucket_t b;
    bf_bucket_init (&b, 20, 1, 0);
    assert_true (bf_bucket_take (&b, 0));
    assert_false (bf_bucket_take (&b, 0));
    assert_in_range (bf_bucket_wait_ms (&b), 50, 51);
    assert_false (bf_bucket_take (&b, 30)); /* 0.6 of a token: 20 ms left */
    assert_in_range (bf_bucket_wait_ms (&b), 20, 21);
    /*  3/s: 333.3 ms, rounded up.  */
    bf_bucket_init (&b, 3, 1, 0);
    assert_true (bf_bucket_take (&b, 0));
    assert_false (bf_bucket_take (&b, 0));
    assert_int_equal (bf_bucket_wait_ms (&b), 334);
    /*  A full bucket waits the minimum, 1 ms, never 0.  */
    bf_bucket_init (&b, 3, 5, 0);
    assert_int_equal (bf_bucket_wait_ms (&b), 1);
}

static void
test_clock_backwards_adds_nothing (void **state)
{
    (void)state;
    bf_bucket_t b;
    bf_bucket_init (&b, 10, 2, 100000);
    assert_true (bf_bucket_take (&b, 100000));
    assert_true (bf_bucket_take (&b, 100000));
    /*  The clock steps back an hour: no tokens, none taken away either. */
    assert_false (bf_bucket_take (&b, 100000 - 3600000));
    assert_in_range (bf_bucket_wait_ms (&b), 100, 101);
    /*  Refill restarts from the new clock: 100 ms later, one token.  */
    assert_false (bf_bucket_take (&b, 100000 - 3600000 + 99));
    assert_true (bf_bucket_take (&b, 100000 - 3600000 + 100));
}

static void
test_zero_limits_raised_to_one (void **state)
{
    (void)state;
    bf_bucket_t b;
    bf_bucket_init (&b, 0, 0, 0);
    assert_true (bf_bucket_take (&b, 0));
    assert_false (bf_bucket_take (&b, 0));
    assert_true (bf_bucket_take (&b, 1000));
}

static void
test_sessions_each_have_a_bucket (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (4, 3600000, 7200000);
    assert_non_null (sessions);
    bf_sessions_set_rate (sessions, 2, 3);
    char a[BF_SESSION_TOKEN_HEX], b[BF_SESSION_TOKEN_HEX];
    assert_int_equal (bf_sessions_open (sessions, "ann", "viewer", 1000, a, NULL), 0);
    assert_int_equal (bf_sessions_open (sessions, "bob", "admin", 1000, b, NULL), 0);
    int wait_ms = -1;
    uint64_t refused = 99;
    for (int i = 0; i < 3; i++) {
        assert_true (bf_sessions_take (sessions, a, 1000, &wait_ms, &refused));
        assert_int_equal (wait_ms, 0);
        assert_int_equal (refused, 0);
    }
    /*  The first refusal warns (1 refused); the next ones wait 10 s.  */
    assert_false (bf_sessions_take (sessions, a, 1000, &wait_ms, &refused));
    assert_in_range (wait_ms, 500, 501);
    assert_int_equal (refused, 1);
    for (int i = 0; i < 5; i++) {
        assert_false (bf_sessions_take (sessions, a, 1000, &wait_ms, &refused));
        assert_int_equal (refused, 0);
    }
    /*  bob's bucket is untouched by ann's flood.  */
    for (int i = 0; i < 3; i++)
        assert_true (bf_sessions_take (sessions, b, 1000, &wait_ms, &refused));
    /*  10 s on, ann's bucket is full again; once empty, the warning counts
        the 5 refused meanwhile plus this one.  */
    for (int i = 0; i < 3; i++)
        assert_true (bf_sessions_take (sessions, a, 11000, &wait_ms, &refused));
    assert_false (bf_sessions_take (sessions, a, 11000, &wait_ms, &refused));
    assert_int_equal (refused, 6);
    /*  An unknown token is not this function's to refuse.  */
    assert_true (bf_sessions_take (sessions, "nonsense", 11000, &wait_ms, &refused));
    bf_sessions_destroy (&sessions);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_burst_then_refused),
        cmocka_unit_test (test_refill_at_rate_capped_at_burst),
        cmocka_unit_test (test_wait_rounded_up),
        cmocka_unit_test (test_clock_backwards_adds_nothing),
        cmocka_unit_test (test_zero_limits_raised_to_one),
        cmocka_unit_test (test_sessions_each_have_a_bucket),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
