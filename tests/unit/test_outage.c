/*  Unit: whose a failed send is (bf_outage_attributed): the provider's
    outage, not counted against the notice's retry budget, or the notice's
    own. The rule must not depend on the breaker having opened (issue 16:
    an outage too short or too early to open it left notices FAILED).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bf_outage.h"

static bool
s_attributed (bf_outcome_t outcome, bool provider_wide, int64_t started_ms, int64_t last_success_ms,
              bf_breaker_state_t breaker)
{
    bf_outage_facts_t facts = { outcome, provider_wide, started_ms, last_success_ms, breaker };
    return bf_outage_attributed (&facts);
}

/*  The breaker closed: a provider-wide failure is the outage's exactly
    when the provider has had no success since the attempt started (none
    at all included); a success at or after the start makes it the
    notice's.  */
static void
test_no_success_since_start (void **state)
{
    (void)state;
    bf_outcome_t kinds[] = { BF_OUTCOME_TRANSIENT, BF_OUTCOME_THROTTLED };
    for (int k = 0; k < 2; k++) {
        assert_true (s_attributed (kinds[k], true, 10000, 0, BF_BREAKER_CLOSED));
        assert_true (s_attributed (kinds[k], true, 10000, 9999, BF_BREAKER_CLOSED));
        assert_false (s_attributed (kinds[k], true, 10000, 10000, BF_BREAKER_CLOSED));
        assert_false (s_attributed (kinds[k], true, 10000, 10001, BF_BREAKER_CLOSED));
        assert_false (s_attributed (kinds[k], true, 10000, INT64_MAX, BF_BREAKER_CLOSED));
    }
}

/*  A failure about the message (an SMTP 4xx to RCPT, a 2xx without a
    message id) is the notice's with the breaker closed, however long the
    provider has been quiet.  */
static void
test_message_failures_count (void **state)
{
    (void)state;
    assert_false (s_attributed (BF_OUTCOME_TRANSIENT, false, 10000, 0, BF_BREAKER_CLOSED));
    assert_false (s_attributed (BF_OUTCOME_TRANSIENT, false, 10000, 5000, BF_BREAKER_CLOSED));
    assert_false (s_attributed (BF_OUTCOME_THROTTLED, false, 10000, 0, BF_BREAKER_CLOSED));
}

/*  The open or half-open breaker (today's rule) still makes any transient
    failure the outage's, even with a success since its start (sends in
    flight when the breaker opened); a 429 there needs the provider-wide
    rule.  */
static void
test_breaker_not_closed (void **state)
{
    (void)state;
    bf_breaker_state_t states[] = { BF_BREAKER_OPEN, BF_BREAKER_HALF_OPEN };
    for (int i = 0; i < 2; i++) {
        assert_true (s_attributed (BF_OUTCOME_TRANSIENT, true, 10000, 20000, states[i]));
        assert_true (s_attributed (BF_OUTCOME_TRANSIENT, false, 10000, 20000, states[i]));
        assert_false (s_attributed (BF_OUTCOME_THROTTLED, true, 10000, 20000, states[i]));
        assert_true (s_attributed (BF_OUTCOME_THROTTLED, true, 10000, 0, states[i]));
    }
}

/*  Delivered, duplicate, permanent and possibly delivered are never the
    outage's.  */
static void
test_other_outcomes_never (void **state)
{
    (void)state;
    bf_outcome_t others[]
        = { BF_OUTCOME_DELIVERED, BF_OUTCOME_DUPLICATE, BF_OUTCOME_PERMANENT, BF_OUTCOME_UNKNOWN };
    bf_breaker_state_t states[] = { BF_BREAKER_CLOSED, BF_BREAKER_OPEN, BF_BREAKER_HALF_OPEN };
    for (int o = 0; o < 4; o++)
        for (int b = 0; b < 3; b++) {
            assert_false (s_attributed (others[o], true, 10000, 0, states[b]));
            assert_false (s_attributed (others[o], false, 10000, 0, states[b]));
        }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_no_success_since_start),
        cmocka_unit_test (test_message_failures_count),
        cmocka_unit_test (test_breaker_not_closed),
        cmocka_unit_test (test_other_outcomes_never),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
