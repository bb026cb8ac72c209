/*  bf_outage — whose a failed send is: the notice's own, counted against
    its retry budget (notify.max_attempts), or its provider's outage, not
    counted (services/notify/README.md "Retries and provider outages";
    issue 16, "provider outage").

    The rule does not wait for the circuit breaker: a breaker needs
    notify.breaker_min_samples outcomes and a share of failures before it
    opens, so an outage that is short, or that starts while few notices are
    in flight, never opens it. Instead a failure is the provider's when it
    says nothing about this message and the provider has not delivered
    anything since the attempt started — had the provider been up, some
    other send would have gone through meanwhile. A failure while others
    to the same provider succeed is the notice's own, as before.

    Pure functions of their arguments (no clock, no state): unit-tested in
    tests/unit/test_outage.c.  */

#ifndef BF_OUTAGE_H_INCLUDED
#define BF_OUTAGE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "bf_sender.h"

/*  What the rule looks at, for one finished send.  */
typedef struct {
    bf_outcome_t outcome;
    /*  The failure is of the provider-wide kind (bf_sender.h, "Outcome
        mapping": no connection, no reply in time, 5xx or 429 over HTTP, a
        failed SMTP session set-up or 421), not one about this message
        (an SMTP 4xx to MAIL, RCPT or DATA, a 2xx without a message id).  */
    bool provider_wide;
    int64_t started_ms;         /* when the attempt started (wall clock, ms) */
    int64_t last_success_ms;    /* the provider's last success before this result; 0 = none */
    bf_breaker_state_t breaker; /* the provider's breaker, with this result counted */
} bf_outage_facts_t;

/*  True when the failed send is the provider's outage and must not count
    against the notice's budget:
    - TRANSIENT while the breaker is open or half-open (this result may
      have opened it, or be a failed probe), of any kind;
    - TRANSIENT or THROTTLED of the provider-wide kind when the provider
      has had no success since the attempt started (last_success_ms <
      started_ms), whatever the breaker.
    False for everything else: DELIVERED, DUPLICATE, PERMANENT, UNKNOWN (a
    possibly delivered email has its own rule), a failure about this
    message, and a provider-wide one while other sends to the provider
    succeeded (a success in the same millisecond as the start counts as
    after it).  */
bool bf_outage_attributed (const bf_outage_facts_t *facts);

#endif
