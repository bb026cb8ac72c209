/*  bf_rating — one subscriber's monthly bill, as docs/billing-rules.md says,
    with the points it leaves open fixed in docs/rating.md.

    bf_rating_rate works in two passes. The first validates everything the
    bill depends on and finds the counted plan segments and add-on
    subscriptions (sorted on small stack arrays: no allocation); the second
    walks the billing-rules steps in order, appending each line as it is
    computed, so the line order is the step order by construction.

    Overflow. Every input is checked against the importer's caps
    (docs/data-import.md): money and quantities at most 10^12, rates at most
    10^6 mwon. The largest products are then an overage, 10^12 × 10^6 =
    10^18, below INT64_MAX (9.2 × 10^18), and a voice allowance,
    10^12 × 60 × 31 < 2 × 10^15. A bill has at most BF_RATING_MAX_LINES
    lines, so every sum stays below 10^17. The caller's usage sums are held
    to the same 10^12 cap as a single usage row.  */

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bf_log.h"
#include "bf_rating.h"

#define S_MONEY_MAX    INT64_C (1000000000000) /* won */
#define S_QUANTITY_MAX INT64_C (1000000000000) /* MB, seconds, messages, minutes */
#define S_RATE_MAX     INT64_C (1000000)       /* milli-won per unit */
#define S_CODE_LEN_MAX 32                      /* plan and add-on codes, as imported */

/*  A period has at most 31 days. Pairwise disjoint segments that each have
    a day in it are therefore at most 31; a 32nd proves an overlap.  */
#define S_PERIOD_DAYS_MAX 31

static const char *s_charge_codes[] = {
    [BF_CHARGE_DEVICE_INSTALLMENT] = "CHARGE:DEVICE_INSTALLMENT",
    [BF_CHARGE_MICRO_PAYMENT] = "CHARGE:MICRO_PAYMENT",
    [BF_CHARGE_CONTENT] = "CHARGE:CONTENT",
    [BF_CHARGE_ADJUSTMENT] = "CHARGE:ADJUSTMENT",
};

/*  Taxability is a property of the kind (billing-rules.md, Inputs).  */
static const bool s_charge_taxable[] = {
    [BF_CHARGE_DEVICE_INSTALLMENT] = false,
    [BF_CHARGE_MICRO_PAYMENT] = false,
    [BF_CHARGE_CONTENT] = true,
    [BF_CHARGE_ADJUSTMENT] = true,
};

/*  floor (a / b) for b > 0, whatever the sign of a: C division truncates
    toward zero, billing-rules floors toward minus infinity.  */
static int64_t
s_floor_div (int64_t a, int64_t b)
{
    assert (b > 0);
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t
s_min (int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/*  "YYYY-MM-DD", or "open" for an open end, for error messages.  */
static const char *
s_day_text (bf_day_t day, char out[11])
{
    if (day == BF_DAY_OPEN)
        return strcpy (out, "open");
    return bf_date_format (day, out);
}

/*  A code as the importer accepts it: 1-32 of A-Z a-z 0-9 _ -. Checked
    before a code is quoted in a message or copied into a line code.  */
static bool
s_code_ok (const char *code)
{
    if (!code)
        return false;
    size_t len = 0;
    for (; code[len]; len++) {
        char c = code[len];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '_' || c == '-';
        if (!ok || len == S_CODE_LEN_MAX)
            return false;
    }
    return len > 0;
}

/*  Checks value against 0..max (and, when unlimited_ok, the unlimited
    marker). The message names owner (a "plan"/"add-on" and its code, or
    NULL) and field; it is only formatted on failure, as this runs for every
    plan term of every bill.  */
static int
s_check_value (int64_t value, int64_t max, bool unlimited_ok, const char *owner, const char *code,
               const char *field, char *err, size_t errsize)
{
    if ((value >= 0 && value <= max) || (unlimited_ok && value == BF_RATING_UNLIMITED))
        return 0;
    return bf_err_set (err, errsize,
                       "%s%s%s%s%s %" PRId64 " outside 0..%" PRId64 " (the importer's limit)",
                       owner ? owner : "", owner ? " " : "", owner ? code : "", owner ? ": " : "",
                       field, value, max);
}

/*  A validity range [from, to) must be non-empty, as the importer ensures;
    anything else is a loader bug that would silently drop days.  */
static int
s_check_range (bf_day_t from, bf_day_t to, const char *what, size_t index, char *err,
               size_t errsize)
{
    if (from < to)
        return 0;
    char a[11], b[11];
    return bf_err_set (err, errsize, "%s %zu: empty range [%s, %s)", what, index,
                       s_day_text (from, a), s_day_text (to, b));
}

/*  Appends line prefix+code (code may be NULL) with amount.  */
static int
s_push (bf_bill_t *bill, const char *prefix, const char *code, int64_t amount, char *err,
        size_t errsize)
{
    if (bill->nlines == BF_RATING_MAX_LINES)
        return bf_err_set (err, errsize, "too many bill lines (at most %d)", BF_RATING_MAX_LINES);
    bf_bill_line_t *line = &bill->lines[bill->nlines++];
    snprintf (line->code, sizeof line->code, "%s%s", prefix, code ? code : "");
    line->amount = amount;
    return 0;
}

/*  Appends a line that billing-rules omits when its amount is 0.  */
static int
s_push_nonzero (bf_bill_t *bill, const char *code, int64_t amount, char *err, size_t errsize)
{
    return amount == 0 ? 0 : s_push (bill, code, NULL, amount, err, errsize);
}

/*  Checks the plan terms of counted segment number index.  */
static int
s_check_plan (const bf_rating_plan_t *plan, size_t index, char *err, size_t errsize)
{
    if (!s_code_ok (plan->plan_code))
        return bf_err_set (err, errsize, "plan segment %zu with an invalid plan code", index);
    if (!plan->known)
        return bf_err_set (err, errsize, "unknown plan %s", plan->plan_code);
    const struct {
        int64_t value, max;
        bool unlimited_ok;
        const char *field;
    } checks[] = {
        { plan->monthly_fee, S_MONEY_MAX, false, "monthly_fee" },
        { plan->data_mb, S_QUANTITY_MAX, true, "data_mb" },
        { plan->voice_min, S_QUANTITY_MAX, true, "voice_min" },
        { plan->sms, S_QUANTITY_MAX, true, "sms" },
        { plan->data_rate_mwon, S_RATE_MAX, false, "data_rate_mwon" },
        { plan->voice_rate_mwon, S_RATE_MAX, false, "voice_rate_mwon" },
        { plan->sms_rate_mwon, S_RATE_MAX, false, "sms_rate_mwon" },
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (s_check_value (checks[i].value, checks[i].max, checks[i].unlimited_ok, "plan",
                           plan->plan_code, checks[i].field, err, errsize))
            return -1;
    }
    return 0;
}

/*  Checks the subscriber's scalar inputs, usage, arrears and charges.  */
static int
s_check_subscriber (const bf_rating_input_t *input, char *err, size_t errsize)
{
    int pay_day = input->pay_day;
    if (pay_day != 5 && pay_day != 10 && pay_day != 15 && pay_day != 20 && pay_day != 25)
        return bf_err_set (err, errsize, "pay_day %d is not one of 5, 10, 15, 20, 25", pay_day);
    if (input->welfare < BF_WELFARE_NONE || input->welfare > BF_WELFARE_SENIOR)
        return bf_err_set (err, errsize, "unknown welfare grade %d", (int)input->welfare);
    if (input->family_active < 0)
        return bf_err_set (err, errsize, "family_active %d is negative", input->family_active);
    if (input->activated_on >= input->terminated_on) {
        char a[11], b[11];
        return bf_err_set (err, errsize, "terminated_on %s not after activated_on %s",
                           s_day_text (input->terminated_on, a),
                           s_day_text (input->activated_on, b));
    }
    if (s_check_value (input->used_data_mb, S_QUANTITY_MAX, false, NULL, NULL, "used_data_mb", err,
                       errsize)
        || s_check_value (input->used_voice_sec, S_QUANTITY_MAX, false, NULL, NULL,
                          "used_voice_sec", err, errsize)
        || s_check_value (input->used_sms, S_QUANTITY_MAX, false, NULL, NULL, "used_sms", err,
                          errsize))
        return -1;
    if (!input->has_arrears && input->arrears != 0)
        return bf_err_set (err, errsize, "arrears %" PRId64 " without an arrears row",
                           input->arrears);
    if (s_check_value (input->arrears, S_MONEY_MAX, false, NULL, NULL, "arrears", err, errsize))
        return -1;
    if (input->ncharges > 0 && !input->charges)
        return bf_err_set (err, errsize, "charges missing");
    for (size_t i = 0; i < input->ncharges; i++) {
        const bf_rating_charge_t *charge = &input->charges[i];
        if (charge->kind < BF_CHARGE_DEVICE_INSTALLMENT || charge->kind > BF_CHARGE_ADJUSTMENT)
            return bf_err_set (err, errsize, "charge %zu: unknown kind %d", i, (int)charge->kind);
        const char *name = s_charge_codes[charge->kind] + strlen ("CHARGE:");
        if (charge->taxable != s_charge_taxable[charge->kind])
            return bf_err_set (err, errsize, "charge %zu: %s must %s taxable", i, name,
                               s_charge_taxable[charge->kind] ? "be" : "not be");
        int64_t low = charge->kind == BF_CHARGE_ADJUSTMENT ? -S_MONEY_MAX : 0;
        if (charge->amount < low || charge->amount > S_MONEY_MAX)
            return bf_err_set (err, errsize,
                               "charge %zu: %s amount %" PRId64 " outside %" PRId64 "..%" PRId64
                               " (the importer's limit)",
                               i, name, charge->amount, low, S_MONEY_MAX);
    }
    return 0;
}

/*  Adds a segment's prorated allowance to *allow; unlimited is sticky.  */
static void
s_add_allowance (int64_t *allow, int64_t per_month, int64_t days, int64_t period_days)
{
    if (*allow == BF_RATING_UNLIMITED || per_month == BF_RATING_UNLIMITED)
        *allow = BF_RATING_UNLIMITED;
    else
        *allow += s_floor_div (per_month * days, period_days);
}

static int64_t
s_overage (int64_t used, int64_t allow, int64_t rate_mwon)
{
    if (allow == BF_RATING_UNLIMITED || used <= allow)
        return 0;
    return s_floor_div ((used - allow) * rate_mwon, 1000);
}

static int64_t
s_family_amount (int active_members)
{
    if (active_members >= 5)
        return 5500;
    if (active_members >= 2)
        return 1100 * (int64_t)active_members;
    return 0;
}

/*  Add-on order: valid_from, then code in byte (C collation) order.  */
static bool
s_addon_before (const bf_rating_addon_t *a, const bf_rating_addon_t *b)
{
    if (a->from != b->from)
        return a->from < b->from;
    return strcmp (a->addon_code, b->addon_code) < 0;
}

int
bf_rating_rate (const bf_rating_input_t *input, bf_period_t period, bf_bill_t *bill, char *err,
                size_t errsize)
{
    assert (input);
    assert (bill);
    if (err && errsize > 0)
        err[0] = '\0';
    if (period.year < 1900 || period.year > 9999 || period.month < 1 || period.month > 12)
        return bf_err_set (err, errsize, "period %d-%02d outside 1900-01..9999-12", period.year,
                           period.month);
    if (s_check_subscriber (input, err, errsize))
        return -1;
    if ((input->nplans > 0 && !input->plans) || (input->naddons > 0 && !input->addons)
        || (input->ncontracts > 0 && !input->contracts))
        return bf_err_set (err, errsize, "plans, add-ons or contracts missing");

    const bf_day_t first = bf_period_first_day (period);
    const bf_day_t end = bf_period_end_day (period);
    const int64_t period_days = bf_period_days (period);
    //  ACTIVE ∩ period = [active_from, active_to); empty when active_days = 0
    const bf_day_t active_from = input->activated_on > first ? input->activated_on : first;
    const bf_day_t active_to = input->terminated_on < end ? input->terminated_on : end;
    const int64_t active_days
        = bf_days_overlap (input->activated_on, input->terminated_on, first, end);

    //  Plan segments. Overlaps are looked for among the segments that meet
    //  the period, whether or not the line is active on those days.
    size_t meeting[S_PERIOD_DAYS_MAX + 1];
    size_t nmeeting = 0;
    for (size_t i = 0; i < input->nplans; i++) {
        const bf_rating_plan_t *plan = &input->plans[i];
        if (s_check_range (plan->from, plan->to, "plan segment", i, err, errsize))
            return -1;
        if (nmeeting < S_PERIOD_DAYS_MAX + 1 && bf_days_overlap (plan->from, plan->to, first, end))
            meeting[nmeeting++] = i;
    }
    for (size_t a = 0; a < nmeeting; a++) {
        for (size_t b = a + 1; b < nmeeting; b++) {
            const bf_rating_plan_t *pa = &input->plans[meeting[a]];
            const bf_rating_plan_t *pb = &input->plans[meeting[b]];
            if (bf_days_overlap (pa->from, pa->to, pb->from, pb->to) > 0) {
                char t[4][11];
                return bf_err_set (err, errsize, "plan segments [%s, %s) and [%s, %s) overlap",
                                   s_day_text (pa->from, t[0]), s_day_text (pa->to, t[1]),
                                   s_day_text (pb->from, t[2]), s_day_text (pb->to, t[3]));
            }
        }
    }
    assert (nmeeting <= S_PERIOD_DAYS_MAX);

    //  Counted segments, sorted by valid_from (distinct: no overlaps).
    size_t counted[S_PERIOD_DAYS_MAX];
    int64_t counted_days[S_PERIOD_DAYS_MAX];
    size_t ncounted = 0;
    for (size_t m = 0; m < nmeeting; m++) {
        const bf_rating_plan_t *plan = &input->plans[meeting[m]];
        int64_t days = bf_days_overlap (plan->from, plan->to, active_from, active_to);
        if (days == 0)
            continue;
        if (s_check_plan (plan, meeting[m], err, errsize))
            return -1;
        size_t at = ncounted++;
        for (; at > 0 && input->plans[counted[at - 1]].from > plan->from; at--) {
            counted[at] = counted[at - 1];
            counted_days[at] = counted_days[at - 1];
        }
        counted[at] = meeting[m];
        counted_days[at] = days;
    }
    if (active_days > 0 && ncounted == 0)
        return bf_err_set (err, errsize, "active for %" PRId64 " days of the period but no plan",
                           active_days);
    if (ncounted == 0 && (input->used_data_mb || input->used_voice_sec || input->used_sms))
        return bf_err_set (err, errsize, "usage in a period without any plan segment");

    //  Add-on subscriptions with days in ACTIVE ∩ period, in bill order.
    size_t addons[BF_RATING_MAX_LINES];
    int64_t addon_days[BF_RATING_MAX_LINES];
    size_t naddons = 0;
    for (size_t i = 0; i < input->naddons; i++) {
        const bf_rating_addon_t *addon = &input->addons[i];
        if (s_check_range (addon->from, addon->to, "add-on subscription", i, err, errsize))
            return -1;
        int64_t days = bf_days_overlap (addon->from, addon->to, active_from, active_to);
        if (days == 0)
            continue;
        if (!s_code_ok (addon->addon_code))
            return bf_err_set (err, errsize, "add-on subscription %zu with an invalid add-on code",
                               i);
        if (!addon->known)
            return bf_err_set (err, errsize, "unknown add-on %s", addon->addon_code);
        if (s_check_value (addon->monthly_fee, S_MONEY_MAX, false, "add-on", addon->addon_code,
                           "monthly_fee", err, errsize))
            return -1;
        if (naddons == BF_RATING_MAX_LINES)
            return bf_err_set (err, errsize, "too many bill lines (at most %d)",
                               BF_RATING_MAX_LINES);
        size_t at = naddons++;
        for (; at > 0 && s_addon_before (addon, &input->addons[addons[at - 1]]); at--) {
            addons[at] = addons[at - 1];
            addon_days[at] = addon_days[at - 1];
        }
        addons[at] = i;
        addon_days[at] = days;
    }

    //  Contract days, summed as billing-rules says; the cap keeps the
    //  discount at 25 % even if contracts overlap (the importer refuses that).
    int64_t contract_days = 0;
    for (size_t i = 0; i < input->ncontracts; i++) {
        const bf_rating_contract_t *contract = &input->contracts[i];
        if (s_check_range (contract->from, contract->to, "contract", i, err, errsize))
            return -1;
        contract_days += bf_days_overlap (contract->from, contract->to, active_from, active_to);
    }
    contract_days = s_min (contract_days, active_days);

    bill->nlines = 0;
    bill->total = 0;
    bf_period_t next = bf_period_next (period);
    bill->due_date = bf_day_from_ymd (next.year, next.month, input->pay_day);
    bill->has_bill = active_days > 0 || input->ncharges > 0 || input->has_arrears;
    if (!bill->has_bill)
        return 0;

    //  1. Plan fee
    int64_t plan_fee = 0;
    for (size_t c = 0; c < ncounted; c++) {
        const bf_rating_plan_t *plan = &input->plans[counted[c]];
        int64_t amount = s_floor_div (plan->monthly_fee * counted_days[c], period_days);
        if (s_push (bill, "PLAN:", plan->plan_code, amount, err, errsize))
            return -1;
        plan_fee += amount;
    }

    //  2. Allowances (0 and no overage when nothing is counted: no usage then)
    int64_t allow_data = 0, allow_voice = 0, allow_sms = 0;
    for (size_t c = 0; c < ncounted; c++) {
        const bf_rating_plan_t *plan = &input->plans[counted[c]];
        int64_t voice_sec
            = plan->voice_min == BF_RATING_UNLIMITED ? BF_RATING_UNLIMITED : plan->voice_min * 60;
        s_add_allowance (&allow_data, plan->data_mb, counted_days[c], period_days);
        s_add_allowance (&allow_voice, voice_sec, counted_days[c], period_days);
        s_add_allowance (&allow_sms, plan->sms, counted_days[c], period_days);
    }

    //  3. Overage at the rates of the latest counted segment
    int64_t overage = 0;
    if (ncounted > 0) {
        const bf_rating_plan_t *latest = &input->plans[counted[ncounted - 1]];
        int64_t data = s_overage (input->used_data_mb, allow_data, latest->data_rate_mwon);
        int64_t voice = s_overage (input->used_voice_sec, allow_voice, latest->voice_rate_mwon);
        int64_t sms = s_overage (input->used_sms, allow_sms, latest->sms_rate_mwon);
        if (s_push_nonzero (bill, "OVERAGE_DATA", data, err, errsize)
            || s_push_nonzero (bill, "OVERAGE_VOICE", voice, err, errsize)
            || s_push_nonzero (bill, "OVERAGE_SMS", sms, err, errsize))
            return -1;
        overage = data + voice + sms;
    }

    //  4. Add-ons
    int64_t addon_fee = 0;
    for (size_t a = 0; a < naddons; a++) {
        const bf_rating_addon_t *addon = &input->addons[addons[a]];
        int64_t amount = s_floor_div (addon->monthly_fee * addon_days[a], period_days);
        if (s_push (bill, "ADDON:", addon->addon_code, amount, err, errsize))
            return -1;
        addon_fee += amount;
    }

    //  5. Discounts, as positive amounts until they become lines
    int64_t contract = 0;
    if (active_days > 0)
        contract = s_floor_div (plan_fee * 25 * contract_days, 100 * active_days);
    int64_t family = s_min (s_family_amount (input->family_active), plan_fee - contract);
    int tenure = bf_rating_tenure_years (input->customer_since, end - 1);
    int64_t loyalty_percent = tenure >= 10 ? 10 : tenure >= 5 ? 5 : 0;
    int64_t loyalty = s_floor_div ((plan_fee - contract - family) * loyalty_percent, 100);
    int64_t base = plan_fee - contract - family - loyalty + addon_fee;
    int64_t welfare = 0;
    if (base > 0) {
        switch (input->welfare) {
            case BF_WELFARE_DISABLED:
                welfare = s_floor_div (base * 35, 100);
                break;
            case BF_WELFARE_LOW_INCOME:
                welfare = s_min (base, 26000);
                break;
            case BF_WELFARE_SENIOR:
                welfare = s_min (s_floor_div (base * 50, 100), 11000);
                break;
            case BF_WELFARE_NONE:
                break;
        }
    }
    if (s_push_nonzero (bill, "DISC_CONTRACT", -contract, err, errsize)
        || s_push_nonzero (bill, "DISC_FAMILY", -family, err, errsize)
        || s_push_nonzero (bill, "DISC_LOYALTY", -loyalty, err, errsize)
        || s_push_nonzero (bill, "DISC_WELFARE", -welfare, err, errsize))
        return -1;
    int64_t discounts = contract + family + loyalty + welfare;

    //  6. Charges, in row order
    int64_t taxable = 0, non_taxable = 0;
    for (size_t i = 0; i < input->ncharges; i++) {
        const bf_rating_charge_t *charge = &input->charges[i];
        if (s_push (bill, s_charge_codes[charge->kind], NULL, charge->amount, err, errsize))
            return -1;
        if (charge->taxable)
            taxable += charge->amount;
        else
            non_taxable += charge->amount;
    }

    //  7. Taxable subtotal; a credit beyond it is not applied this month
    int64_t subtotal = plan_fee + addon_fee + overage - discounts + taxable;
    if (subtotal < 0) {
        if (s_push (bill, "CREDIT_CARRY", NULL, -subtotal, err, errsize))
            return -1;
        subtotal = 0;
    }

    //  8. VAT, 9. arrears, 10. rounding
    int64_t vat = s_floor_div (subtotal * 10, 100);
    if (s_push_nonzero (bill, "VAT", vat, err, errsize)
        || s_push_nonzero (bill, "ARREARS", input->arrears, err, errsize))
        return -1;
    int64_t before_rounding = subtotal + vat + non_taxable + input->arrears;
    if (before_rounding < 0)
        return bf_err_set (err, errsize, "negative total %" PRId64, before_rounding);
    int64_t rounding = -(before_rounding % 10);
    if (s_push_nonzero (bill, "ROUNDING", rounding, err, errsize))
        return -1;
    bill->total = before_rounding + rounding;

#ifndef NDEBUG
    int64_t sum = 0;
    for (size_t i = 0; i < bill->nlines; i++)
        sum += bill->lines[i].amount;
    assert (sum == bill->total);
#endif
    return 0;
}

/*  The y-th anniversary of year-month-mday. A 29 February falls on
    28 February in a year without one (민법 제160조 ③).  */
static bf_day_t
s_anniversary (int year, int month, int mday, int years)
{
    int dim = bf_days_in_month (year + years, month);
    return bf_day_from_ymd (year + years, month, mday < dim ? mday : dim);
}

int
bf_rating_tenure_years (bf_day_t since, bf_day_t day)
{
    if (day < since)
        return 0;
    int since_year, since_month, since_mday, year, month, mday;
    bf_day_to_ymd (since, &since_year, &since_month, &since_mday);
    bf_day_to_ymd (day, &year, &month, &mday);
    int years = year - since_year;
    if (s_anniversary (since_year, since_month, since_mday, years) > day)
        years--;
    return years;
}
