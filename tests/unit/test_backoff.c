/*  Unit: the dispatcher's retry delays — exponential, capped, jittered.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_doubles_per_attempt_within_jitter),
        cmocka_unit_test (test_capped_at_max),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
