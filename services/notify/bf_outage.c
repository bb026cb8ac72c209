/*  bf_outage — the rule that tells a provider's outage from a notice's own
    failure (see bf_outage.h).  */

#include "bf_outage.h"

bool
bf_outage_attributed (const bf_outage_facts_t *facts)
{
    if (facts->outcome != BF_OUTCOME_TRANSIENT && facts->outcome != BF_OUTCOME_THROTTLED)
        return false;
    if (facts->outcome == BF_OUTCOME_TRANSIENT && facts->breaker != BF_BREAKER_CLOSED)
        return true;
    return facts->provider_wide && facts->last_success_ms < facts->started_ms;
}
