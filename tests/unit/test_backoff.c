/*  Unit: retry delays (common/bf_backoff) — the dispatcher's exponential
    one with a spread, and the database reconnect's decorrelated jitter —
    and the dispatcher's retry rule (bf_dispatch_next): what counts against
    a notice's retry budget, and a provider outage on a hand-driven clock
    that spends none of it.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bf_admission.h"
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

static bf_dispatch_failure_t
s_failure (bf_outcome_t outcome, bf_breaker_state_t breaker, int counted)
{
    bf_dispatch_failure_t f = {
        .outcome = outcome,
        .breaker = breaker,
        .counted = counted,
        .max_attempts = 5,
        .email = true,
        .due_ms = 1000,
        .now_ms = 500000,
        .backoff_base_ms = 1000,
        .backoff_max_ms = 60000,
        .jitter = 32768,
        .unknown_retry_ms = 0,
    };
    return f;
}

/*  A transient failure while the breaker is open or half-open is the
    outage's: RETRY at its old place, not counted, never FAILED or a
    fallback, even with the budget spent. With the breaker closed the
    same failure is counted as before.  */
static void
test_outage_failure_not_counted (void **state)
{
    (void)state;
    bf_breaker_state_t states[] = { BF_BREAKER_OPEN, BF_BREAKER_HALF_OPEN };
    for (int i = 0; i < 2; i++)
        for (int counted = 1; counted <= 6; counted++) {
            bf_dispatch_failure_t f = s_failure (BF_OUTCOME_TRANSIENT, states[i], counted);
            bf_dispatch_next_t next = bf_dispatch_next (&f);
            assert_string_equal (next.state, "RETRY");
            assert_true (next.outage);
            assert_false (next.fallback);
            assert_int_equal (next.not_before_ms, 1000);
        }
    /*  A place later than now (a clock set back) is cut to now.  */
    bf_dispatch_failure_t f = s_failure (BF_OUTCOME_TRANSIENT, BF_BREAKER_OPEN, 5);
    f.due_ms = f.now_ms + 60000;
    bf_dispatch_next_t next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_true (next.outage);
    assert_int_equal (next.not_before_ms, f.now_ms);
    f = s_failure (BF_OUTCOME_TRANSIENT, BF_BREAKER_CLOSED, 5);
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "FAILED");
    assert_false (next.outage);
    assert_true (next.fallback);
    f = s_failure (BF_OUTCOME_TRANSIENT, BF_BREAKER_CLOSED, 2);
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_false (next.outage);
    assert_int_equal (next.not_before_ms, 500000 + 2000);
}

/*  The other outcomes keep their rules whatever the breaker says.  */
static void
test_other_outcomes_unchanged (void **state)
{
    (void)state;
    bf_dispatch_failure_t f = s_failure (BF_OUTCOME_PERMANENT, BF_BREAKER_OPEN, 1);
    bf_dispatch_next_t next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "FAILED");
    assert_true (next.fallback);
    assert_false (next.outage);
    f.email = false;
    assert_false (bf_dispatch_next (&f).fallback);
    f = s_failure (BF_OUTCOME_PERMANENT, BF_BREAKER_CLOSED, 1);
    f.possibly_delivered = true;
    assert_false (bf_dispatch_next (&f).fallback);
    /*  429: the pause, at least, and counted.  */
    f = s_failure (BF_OUTCOME_THROTTLED, BF_BREAKER_HALF_OPEN, 1);
    f.retry_after_ms = 30000;
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_false (next.outage);
    assert_int_equal (next.not_before_ms, 500000 + 30000);
    f.counted = 5;
    assert_string_equal (bf_dispatch_next (&f).state, "FAILED");
    /*  Possibly delivered: resent once after unknown_retry_ms, never a
        fallback, even while the breaker is open.  */
    f = s_failure (BF_OUTCOME_UNKNOWN, BF_BREAKER_OPEN, 1);
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "FAILED");
    assert_false (next.fallback);
    assert_false (next.outage);
    f.unknown_retry_ms = 600000;
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_int_equal (next.not_before_ms, 500000 + 600000);
    f.possibly_delivered = true;
    assert_string_equal (bf_dispatch_next (&f).state, "FAILED");
    f = s_failure (BF_OUTCOME_DUPLICATE, BF_BREAKER_CLOSED, 1);
    assert_string_equal (bf_dispatch_next (&f).state, "DELIVERED");
}

#define S_NOTICES 300

/*  A dispatcher and its breaker on a hand-driven clock: 300 notices, 5
    sends per 100 ms; the provider refuses everything from 1 s to 301 s.
    Every notice is delivered once, none fails, at most one failure of each
    counts against its budget of 3 (those before the breaker opened), and
    the notices whose failures were all the outage's go out in their
    order.  */
static void
test_outage_spends_no_budget (void **state)
{
    (void)state;
    bf_admission_config_t config = { "email", 0, 50, 20, 10000 };
    bf_admission_t *breaker = bf_admission_new (&config, 0);
    assert_non_null (breaker);
    int64_t due[S_NOTICES];
    int attempts[S_NOTICES] = { 0 }, base[S_NOTICES] = { 0 }, order[S_NOTICES];
    char fate[S_NOTICES] = { 0 }; /* 0 waiting, 'D' delivered, 'F' failed */
    for (int i = 0; i < S_NOTICES; i++)
        due[i] = i;
    int delivered = 0, outage_attempts = 0;
    const int64_t down = 1000, up = 301000;
    for (int64_t now = 0; now < 400000 && delivered < S_NOTICES; now += 100)
        for (int sends = 0; sends < 5 && bf_admission_ready (breaker, now); sends++) {
            int pick = -1;
            for (int i = 0; i < S_NOTICES; i++)
                if (!fate[i] && due[i] <= now && (pick < 0 || due[i] < due[pick]))
                    pick = i;
            if (pick < 0)
                break;
            bf_admit_ticket_t ticket = bf_admission_take (breaker);
            attempts[pick]++;
            bool ok = now < down || now >= up;
            bf_admission_record (breaker, ticket, ok ? BF_ADMIT_HEALTHY : BF_ADMIT_FAILED, now);
            if (ok) {
                fate[pick] = 'D';
                order[delivered++] = pick;
                continue;
            }
            bf_dispatch_failure_t f
                = s_failure (BF_OUTCOME_TRANSIENT, bf_admission_breaker (breaker, now),
                             attempts[pick] - base[pick]);
            f.max_attempts = 3;
            f.due_ms = due[pick];
            f.now_ms = now;
            bf_dispatch_next_t next = bf_dispatch_next (&f);
            if (next.outage) {
                base[pick]++;
                outage_attempts++;
            }
            if (next.state[0] == 'F')
                fate[pick] = 'F';
            due[pick] = next.not_before_ms;
        }
    assert_int_equal (delivered, S_NOTICES);
    assert_true (outage_attempts >= 29); /* the probes at least */
    int last = -1;
    for (int k = 0; k < S_NOTICES; k++) {
        int i = order[k];
        assert_int_equal (fate[i], 'D');
        assert_in_range (attempts[i] - base[i], 1, 2); /* the delivery, and at most one */
        if (attempts[i] - base[i] == 1) {
            assert_true (i > last);
            last = i;
        }
    }
    bf_admission_destroy (&breaker);
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
        cmocka_unit_test (test_outage_failure_not_counted),
        cmocka_unit_test (test_other_outcomes_unchanged),
        cmocka_unit_test (test_outage_spends_no_budget),
        cmocka_unit_test (test_dispatch_uses_the_common_backoff),
        cmocka_unit_test (test_decorrelated_bounds),
        cmocka_unit_test (test_decorrelated_grows_and_spreads),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
