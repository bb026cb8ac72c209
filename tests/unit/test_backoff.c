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
#include "bf_outage.h"

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
s_failure (bf_outcome_t outcome, bool outage, int counted)
{
    bf_dispatch_failure_t f = {
        .outcome = outcome,
        .outage = outage,
        .counted = counted,
        .max_attempts = 5,
        .email = true,
        .due_ms = 1000,
        .age_ms = 100000,
        .outage_window_ms = 3600000,
        .now_ms = 500000,
        .backoff_base_ms = 1000,
        .backoff_max_ms = 60000,
        .jitter = 32768,
        .unknown_retry_ms = 0,
    };
    return f;
}

/*  An outage's failure (transient or throttled) is RETRY at its old
    place, not counted, never FAILED or a fallback, even with the budget
    spent. The same failure of the notice's own is counted as before.  */
static void
test_outage_failure_not_counted (void **state)
{
    (void)state;
    bf_outcome_t outcomes[] = { BF_OUTCOME_TRANSIENT, BF_OUTCOME_THROTTLED };
    for (int i = 0; i < 2; i++)
        for (int counted = 1; counted <= 6; counted++) {
            bf_dispatch_failure_t f = s_failure (outcomes[i], true, counted);
            f.retry_after_ms = 30000;
            bf_dispatch_next_t next = bf_dispatch_next (&f);
            assert_string_equal (next.state, "RETRY");
            assert_true (next.outage);
            assert_false (next.expired);
            assert_false (next.fallback);
            assert_int_equal (next.not_before_ms, 1000);
        }
    /*  A place later than now (a clock set back) is cut to now.  */
    bf_dispatch_failure_t f = s_failure (BF_OUTCOME_TRANSIENT, true, 5);
    f.due_ms = f.now_ms + 60000;
    bf_dispatch_next_t next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_true (next.outage);
    assert_int_equal (next.not_before_ms, f.now_ms);
    f = s_failure (BF_OUTCOME_TRANSIENT, false, 5);
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "FAILED");
    assert_false (next.outage);
    assert_true (next.fallback);
    f = s_failure (BF_OUTCOME_TRANSIENT, false, 2);
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_false (next.outage);
    assert_int_equal (next.not_before_ms, 500000 + 2000);
}

/*  The backstop: an outage's failure of a notice notify.outage_window_ms
    old ends it FAILED, with the SMS fallback of an email (none when it may
    already have arrived), whatever its budget; one millisecond younger it
    still waits.  */
static void
test_outage_window_ends_the_wait (void **state)
{
    (void)state;
    for (int counted = 1; counted <= 6; counted++) {
        bf_dispatch_failure_t f = s_failure (BF_OUTCOME_TRANSIENT, true, counted);
        f.age_ms = f.outage_window_ms;
        bf_dispatch_next_t next = bf_dispatch_next (&f);
        assert_string_equal (next.state, "FAILED");
        assert_true (next.expired);
        assert_false (next.outage);
        assert_true (next.fallback);
        assert_int_equal (next.not_before_ms, f.now_ms);
        f.age_ms--;
        next = bf_dispatch_next (&f);
        assert_string_equal (next.state, "RETRY");
        assert_true (next.outage);
        assert_false (next.expired);
    }
    bf_dispatch_failure_t f = s_failure (BF_OUTCOME_THROTTLED, true, 1);
    f.age_ms = f.outage_window_ms + 1;
    assert_true (bf_dispatch_next (&f).expired);
    f.email = false;
    assert_false (bf_dispatch_next (&f).fallback);
    f = s_failure (BF_OUTCOME_TRANSIENT, true, 1);
    f.age_ms = f.outage_window_ms;
    f.possibly_delivered = true;
    assert_string_equal (bf_dispatch_next (&f).state, "FAILED");
    assert_false (bf_dispatch_next (&f).fallback);
    /*  The notice's own failures keep their budget: the window is not
        theirs.  */
    f = s_failure (BF_OUTCOME_TRANSIENT, false, 1);
    f.age_ms = f.outage_window_ms;
    assert_string_equal (bf_dispatch_next (&f).state, "RETRY");
    assert_false (bf_dispatch_next (&f).expired);
}

/*  The other outcomes keep their rules whatever the outage flag says.  */
static void
test_other_outcomes_unchanged (void **state)
{
    (void)state;
    bf_dispatch_failure_t f = s_failure (BF_OUTCOME_PERMANENT, true, 1);
    bf_dispatch_next_t next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "FAILED");
    assert_true (next.fallback);
    assert_false (next.outage);
    f.email = false;
    assert_false (bf_dispatch_next (&f).fallback);
    f = s_failure (BF_OUTCOME_PERMANENT, false, 1);
    f.possibly_delivered = true;
    assert_false (bf_dispatch_next (&f).fallback);
    /*  A 429 of the notice's own: the pause, at least, and counted.  */
    f = s_failure (BF_OUTCOME_THROTTLED, false, 1);
    f.retry_after_ms = 30000;
    next = bf_dispatch_next (&f);
    assert_string_equal (next.state, "RETRY");
    assert_false (next.outage);
    assert_int_equal (next.not_before_ms, 500000 + 30000);
    f.counted = 5;
    assert_string_equal (bf_dispatch_next (&f).state, "FAILED");
    /*  Possibly delivered: resent once after unknown_retry_ms, never a
        fallback, even in an outage.  */
    f = s_failure (BF_OUTCOME_UNKNOWN, true, 1);
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
    f = s_failure (BF_OUTCOME_DUPLICATE, false, 1);
    assert_string_equal (bf_dispatch_next (&f).state, "DELIVERED");
}

#define S_NOTICES 300

typedef struct {
    int delivered, failed, outage_attempts, charged, out_of_order, opened;
} s_run_t;

/*  A dispatcher, its provider's admission (breaker and back-off, as
    bf_sender drives them) and the rules (bf_outage_attributed,
    bf_dispatch_next) on a hand-driven clock: 300 notices created at 0, at
    most 5 sends in flight each 100 ms (they start together and finish
    within the tick); the provider refuses everything from down to up (ms);
    notices wait out an outage up to window ms. Counts what happened to the
    notices: charged is the failures counted against a budget of 3;
    out_of_order the notices delivered before one due earlier.  */
static s_run_t
s_simulate (int pct, int min_samples, int64_t down, int64_t up, int64_t window)
{
    s_run_t run = { 0 };
    bf_admission_config_t config = { "email", 0, pct, min_samples, 10000 };
    bf_admission_t *provider = bf_admission_new (&config, 0);
    assert_non_null (provider);
    int64_t due[S_NOTICES], last_success = 0;
    int attempts[S_NOTICES] = { 0 }, base[S_NOTICES] = { 0 }, last_delivered = -1;
    char fate[S_NOTICES] = { 0 }; /* 0 waiting, 'D' delivered, 'F' failed, 'S' in flight */
    for (int i = 0; i < S_NOTICES; i++)
        due[i] = i;
    /*  Starts at 1 s: a start at 0 would compare with "no success yet".  */
    for (int64_t now = 1000; now < 4000000 && run.delivered + run.failed < S_NOTICES; now += 100) {
        int flight[5], nflight = 0;
        bf_admit_ticket_t tickets[5];
        while (nflight < 5 && bf_admission_ready (provider, now)) {
            int pick = -1;
            for (int i = 0; i < S_NOTICES; i++)
                if (!fate[i] && due[i] <= now && (pick < 0 || due[i] < due[pick]))
                    pick = i;
            if (pick < 0)
                break;
            tickets[nflight] = bf_admission_take (provider);
            fate[pick] = 'S';
            attempts[pick]++;
            flight[nflight++] = pick;
        }
        for (int k = 0; k < nflight; k++) {
            int pick = flight[k];
            fate[pick] = 0;
            bool ok = now < down || now >= up;
            bf_admission_record (provider, tickets[k], ok ? BF_ADMIT_HEALTHY : BF_ADMIT_FAILED,
                                 now + 50);
            if (ok) {
                fate[pick] = 'D';
                run.delivered++;
                run.out_of_order += pick < last_delivered;
                last_delivered = pick;
                last_success = now + 50;
                continue;
            }
            bf_breaker_state_t breaker = bf_admission_breaker (provider, now + 50);
            bf_outage_facts_t facts = { BF_OUTCOME_TRANSIENT, true, now, last_success, breaker };
            bf_dispatch_failure_t f = s_failure (
                BF_OUTCOME_TRANSIENT, bf_outage_attributed (&facts), attempts[pick] - base[pick]);
            f.max_attempts = 3;
            f.due_ms = due[pick];
            f.age_ms = now + 50; /* created at 0 */
            f.outage_window_ms = window;
            f.now_ms = now + 50;
            if (f.outage && breaker == BF_BREAKER_CLOSED)
                bf_admission_back_off (provider, now, now + 50, 1000, 10000, 32768);
            bf_dispatch_next_t next = bf_dispatch_next (&f);
            if (next.outage) {
                base[pick]++;
                run.outage_attempts++;
            } else
                run.charged++;
            if (next.state[0] == 'F') {
                fate[pick] = 'F';
                run.failed++;
            }
            due[pick] = next.not_before_ms;
        }
    }
    run.opened = (int)bf_admission_breaker_counts (provider).opened;
    bf_admission_destroy (&provider);
    return run;
}

/*  A long outage that opens the breaker (20 samples, 50 %: the defaults):
    every notice is delivered once, none fails, no failure is charged to a
    budget, and the notices go out in their order.  */
static void
test_outage_spends_no_budget (void **state)
{
    (void)state;
    s_run_t run = s_simulate (50, 20, 2000, 302000, 3600000);
    assert_int_equal (run.delivered, S_NOTICES);
    assert_int_equal (run.failed, 0);
    assert_true (run.outage_attempts >= 29); /* the probes at least */
    assert_int_equal (run.charged, 0);
    assert_int_equal (run.out_of_order, 0);
    assert_true (run.opened >= 1);
}

/*  An outage the breaker never sees (it needs 100 samples, all failed):
    the trial's case, where the open-breaker rule alone let the failures
    count and 2 notices end FAILED. The same promises hold, and the
    provider's back-off keeps the attempts during the outage few.  */
static void
test_short_outage_breaker_closed (void **state)
{
    (void)state;
    s_run_t run = s_simulate (100, 100, 2000, 17000, 3600000);
    assert_int_equal (run.opened, 0);
    assert_int_equal (run.delivered, S_NOTICES);
    assert_int_equal (run.failed, 0);
    assert_int_equal (run.charged, 0);
    assert_int_equal (run.out_of_order, 0);
    /*  Back-offs of 1, 2, 4, 8 s (±20 %) in a 15 s outage: 4 or 5 rounds
        of at most 5 sends in flight.  */
    assert_in_range (run.outage_attempts, 1, 25);
}

/*  A provider that never comes back: every notice still ends, FAILED,
    at its first attempt after it is window (60 s) old, with the breaker
    open (one probe each 10 s: 300 notices take 3,000 s) or not (5 in
    flight each 10 s).  */
static void
test_endless_outage_ends (void **state)
{
    (void)state;
    for (int min = 20; min <= 100; min += 80) {
        s_run_t run = s_simulate (min == 20 ? 50 : 100, min, 2000, INT64_MAX, 60000);
        assert_int_equal (run.delivered + run.failed, S_NOTICES);
        assert_int_equal (run.delivered, 50); /* those sent in the second before it went down */
        assert_int_equal (run.charged, run.failed);
    }
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
        cmocka_unit_test (test_outage_window_ends_the_wait),
        cmocka_unit_test (test_other_outcomes_unchanged),
        cmocka_unit_test (test_outage_spends_no_budget),
        cmocka_unit_test (test_short_outage_breaker_closed),
        cmocka_unit_test (test_endless_outage_ends),
        cmocka_unit_test (test_dispatch_uses_the_common_backoff),
        cmocka_unit_test (test_decorrelated_bounds),
        cmocka_unit_test (test_decorrelated_grows_and_spreads),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
