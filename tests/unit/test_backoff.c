/*  Unit: retry delays (common/bf_backoff) — the dispatcher's exponential
    one with a spread, and the database reconnect's decorrelated jitter.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bf_backoff.h"
#include "bf_dispatch.h"

static void
test_doubles_per_attempt_within_jitter (void **state)
{
    (void)state;
    /*  jitter 0 -> factor 0.8; 65535 -> just under 1.2; 32768 -> 1.0.  */
    assert_int_equal (bf_dispatch_backoff_ms (1, 1000, 600000, 32768), 1000);
    assert_int_equal (bf_dispatch_backoff_ms (2, 1000, 600000, 32768), 2000);
    assert_int_equal (bf_dispatch_backoff_ms (3, 1000, 600000, 32768), 4000);
    assert_int_equal (bf_dispatch_backoff_ms (5, 1000, 600000, 32768), 16000);
    assert_int_equal (bf_dispatch_backoff_ms (1, 1000, 600000, 0), 800);
    assert_in_range (bf_dispatch_backoff_ms (1, 1000, 600000, 65535), 1190, 1199);
    for (unsigned j = 0; j < 65536; j += 97) {
        int64_t d = bf_dispatch_backoff_ms (3, 1000, 600000, j);
        assert_in_range (d, 3200, 4799);
    }
}

static void
test_capped_at_max (void **state)
{
    (void)state;
    assert_int_equal (bf_dispatch_backoff_ms (10, 1000, 60000, 32768), 60000);
    assert_int_equal (bf_dispatch_backoff_ms (1000, 1000, 60000, 32768), 60000);
    assert_in_range (bf_dispatch_backoff_ms (40, 5000, 600000, 65535), 600000, 719999);
    /*  The first attempt never waits longer than the base allows.  */
    assert_int_equal (bf_dispatch_backoff_ms (1, 5000, 1000, 32768), 1000);
}

static void
test_dispatch_uses_the_common_backoff (void **state)
{
    (void)state;
    for (int n = 1; n < 30; n++)
        for (unsigned j = 0; j < 65536; j += 4099)
            assert_int_equal (bf_dispatch_backoff_ms (n, 1000, 600000, j),
                              bf_backoff_ms (n, 1000, 600000, j));
}

static void
test_decorrelated_bounds (void **state)
{
    (void)state;
    /*  The first delay of an outage: [floor, 3 * floor].  */
    assert_int_equal (bf_backoff_decorrelated (0, 100, 5000, 0), 100);
    assert_int_equal (bf_backoff_decorrelated (0, 100, 5000, 200), 300);
    assert_int_equal (bf_backoff_decorrelated (0, 100, 5000, 201), 100);
    /*  Never above the ceiling, never below the floor.  */
    assert_int_equal (bf_backoff_decorrelated (4000, 100, 5000, 11899), 5000);
    assert_int_equal (bf_backoff_decorrelated (1000000, 100, 5000, 0), 100);
    assert_int_equal (bf_backoff_decorrelated (-5, 100, 5000, 7), 107);
    /*  A ceiling under the floor acts as the floor; a floor of 0 as 1.  */
    assert_int_equal (bf_backoff_decorrelated (50, 200, 100, 12345), 200);
    assert_in_range (bf_backoff_decorrelated (0, 0, 10, 12345), 1, 3);
    uint64_t rng = 42;
    int64_t delay = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t next = bf_backoff_decorrelated (delay, 100, 5000, bf_backoff_random (&rng));
        assert_in_range (next, 100, 5000);
        assert_true (next <= (delay < 100 ? 100 : delay) * 3);
        delay = next;
    }
}

/*  What the reconnect gate relies on: delays grow from the floor towards
    the ceiling, so attempts during an outage of T ms are about log(T) at
    first and T / ceiling later, and two processes do not stay in step.  */
static void
test_decorrelated_grows_and_spreads (void **state)
{
    (void)state;
    uint64_t a = 1, b = 2;
    int64_t da = 0, db = 0, elapsed = 0;
    int attempts = 0, same = 0;
    while (elapsed < 60000) {
        da = bf_backoff_decorrelated (da, 100, 5000, bf_backoff_random (&a));
        db = bf_backoff_decorrelated (db, 100, 5000, bf_backoff_random (&b));
        elapsed += da;
        attempts++;
        same += da == db;
    }
    /*  A minute away at 100..5000 ms: far fewer attempts than one per
        floor (600), more than one per ceiling (12).  */
    assert_in_range (attempts, 13, 80);
    assert_true (same < attempts / 4);
    /*  Averaged over many outages, the 10th delay is well above the floor.  */
    int64_t sum = 0;
    uint64_t r = 7;
    for (int k = 0; k < 1000; k++) {
        int64_t d = 0;
        for (int i = 0; i < 10; i++)
            d = bf_backoff_decorrelated (d, 100, 5000, bf_backoff_random (&r));
        sum += d;
    }
    assert_in_range (sum / 1000, 1000, 5000);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_doubles_per_attempt_within_jitter),
        cmocka_unit_test (test_capped_at_max),
        cmocka_unit_test (test_dispatch_uses_the_common_backoff),
        cmocka_unit_test (test_decorrelated_bounds),
        cmocka_unit_test (test_decorrelated_grows_and_spreads),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
