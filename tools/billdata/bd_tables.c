/*  bd_tables — column lists of docs/data-format.md.  */

#include <string.h>

#include "bd_tables.h"

const bd_table_def_t bd_tables[BD_TABLE_COUNT] = {
    [BD_PLANS] = { "plans.csv",
                   9,
                   { "code", "name", "monthly_fee", "data_mb", "voice_min", "sms", "data_rate_mwon",
                     "voice_rate_mwon", "sms_rate_mwon" } },
    [BD_ADDONS] = { "addons.csv", 3, { "code", "name", "monthly_fee" } },
    [BD_SUBSCRIBERS] = { "subscribers.csv",
                         14,
                         { "id", "name", "email", "phone", "activated_on", "terminated_on",
                           "customer_since", "family_id", "welfare_grade", "pay_day", "channels",
                           "quiet_start", "quiet_end", "push_token" } },
    [BD_PLAN_ASSIGNMENTS]
    = { "plan_assignments.csv", 4, { "subscriber_id", "plan_code", "valid_from", "valid_to" } },
    [BD_ADDON_SUBSCRIPTIONS]
    = { "addon_subscriptions.csv", 4, { "subscriber_id", "addon_code", "valid_from", "valid_to" } },
    [BD_CONTRACTS] = { "contracts.csv", 4, { "subscriber_id", "kind", "valid_from", "valid_to" } },
    [BD_USAGE] = { "usage.csv", 4, { "subscriber_id", "period", "kind", "quantity" } },
    [BD_CHARGES] = { "charges.csv", 5, { "subscriber_id", "period", "kind", "amount", "taxable" } },
    [BD_ARREARS] = { "arrears.csv", 3, { "subscriber_id", "period", "amount" } },
};

int
bd_table_column (bd_table_t t, const char *name)
{
    for (size_t i = 0; i < bd_tables[t].ncols; i++)
        if (strcmp (bd_tables[t].cols[i], name) == 0)
            return (int)i;
    return -1;
}
