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

/*  The period and the days of it the line is active: ACTIVE ∩ period is
    [active_from, active_to), empty when active_days is 0.  */
typedef struct {
    bf_day_t first, end; /* the period, [first, end) */
    int64_t period_days;
    bf_day_t active_from, active_to;
    int64_t active_days;
} s_window_t;

/*  What the first pass finds: the counted plan segments sorted by
    valid_from, the add-on subscriptions in bill order (indexes into the
    input, each with its days in ACTIVE ∩ period) and the contract days.  */
typedef struct {
    size_t counted[S_PERIOD_DAYS_MAX];
    int64_t counted_days[S_PERIOD_DAYS_MAX];
    size_t ncounted;
    size_t addons[BF_RATING_MAX_LINES];
    int64_t addon_days[BF_RATING_MAX_LINES];
    size_t naddons;
    int64_t contract_days;
} s_terms_t;

/*  The amounts the later steps build on, as the steps compute them.  */
typedef struct {
    int64_t plan_fee, overage, addon_fee, discounts, taxable, non_taxable;
} s_sums_t;

/*  Checks the period and every input that does not depend on it.  */
static int
s_check_inputs (const bf_rating_input_t *input, bf_period_t period, char *err, size_t errsize)
{
    if (period.year < 1900 || period.year > 9999 || period.month < 1 || period.month > 12)
        return bf_err_set (err, errsize, "period %d-%02d outside 1900-01..9999-12", period.year,
                           period.month);
    if (s_check_subscriber (input, err, errsize))
        return -1;
    if ((input->nplans > 0 && !input->plans) || (input->naddons > 0 && !input->addons)
        || (input->ncontracts > 0 && !input->contracts))
        return bf_err_set (err, errsize, "plans, add-ons or contracts missing");
    return 0;
}

static s_window_t
s_window (const bf_rating_input_t *input, bf_period_t period)
{
    s_window_t w;
    w.first = bf_period_first_day (period);
    w.end = bf_period_end_day (period);
    w.period_days = bf_period_days (period);
    w.active_from = input->activated_on > w.first ? input->activated_on : w.first;
    w.active_to = input->terminated_on < w.end ? input->terminated_on : w.end;
    w.active_days = bf_days_overlap (input->activated_on, input->terminated_on, w.first, w.end);
    return w;
}

/*  The plan segments that meet the period, into meeting (room for
    S_PERIOD_DAYS_MAX + 1). Overlaps are looked for among them, whether or
    not the line is active on those days.  */
static int
s_meeting_plans (const bf_rating_input_t *input, const s_window_t *w, size_t *meeting,
                 size_t *nmeeting, char *err, size_t errsize)
{
    *nmeeting = 0;
    for (size_t i = 0; i < input->nplans; i++) {
        const bf_rating_plan_t *plan = &input->plans[i];
        if (s_check_range (plan->from, plan->to, "plan segment", i, err, errsize))
            return -1;
        if (*nmeeting < S_PERIOD_DAYS_MAX + 1
            && bf_days_overlap (plan->from, plan->to, w->first, w->end))
            meeting[(*nmeeting)++] = i;
    }
    for (size_t a = 0; a < *nmeeting; a++) {
        for (size_t b = a + 1; b < *nmeeting; b++) {
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
    assert (*nmeeting <= S_PERIOD_DAYS_MAX);
    return 0;
}

/*  Counted segments: the meeting ones with active days, sorted by
    valid_from (distinct: no overlaps).  */
static int
s_count_plans (const bf_rating_input_t *input, const s_window_t *w, s_terms_t *terms, char *err,
               size_t errsize)
{
    size_t meeting[S_PERIOD_DAYS_MAX + 1];
    size_t nmeeting;
    if (s_meeting_plans (input, w, meeting, &nmeeting, err, errsize))
        return -1;
    terms->ncounted = 0;
    for (size_t m = 0; m < nmeeting; m++) {
        const bf_rating_plan_t *plan = &input->plans[meeting[m]];
        int64_t days = bf_days_overlap (plan->from, plan->to, w->active_from, w->active_to);
        if (days == 0)
            continue;
        if (s_check_plan (plan, meeting[m], err, errsize))
            return -1;
        size_t at = terms->ncounted++;
        for (; at > 0 && input->plans[terms->counted[at - 1]].from > plan->from; at--) {
            terms->counted[at] = terms->counted[at - 1];
            terms->counted_days[at] = terms->counted_days[at - 1];
        }
        terms->counted[at] = meeting[m];
        terms->counted_days[at] = days;
    }
    if (w->active_days > 0 && terms->ncounted == 0)
        return bf_err_set (err, errsize, "active for %" PRId64 " days of the period but no plan",
                           w->active_days);
    if (terms->ncounted == 0 && (input->used_data_mb || input->used_voice_sec || input->used_sms))
        return bf_err_set (err, errsize, "usage in a period without any plan segment");
    return 0;
}

/*  Add-on subscriptions with days in ACTIVE ∩ period, in bill order.  */
static int
s_count_addons (const bf_rating_input_t *input, const s_window_t *w, s_terms_t *terms, char *err,
                size_t errsize)
{
    terms->naddons = 0;
    for (size_t i = 0; i < input->naddons; i++) {
        const bf_rating_addon_t *addon = &input->addons[i];
        if (s_check_range (addon->from, addon->to, "add-on subscription", i, err, errsize))
            return -1;
        int64_t days = bf_days_overlap (addon->from, addon->to, w->active_from, w->active_to);
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
        if (terms->naddons == BF_RATING_MAX_LINES)
            return bf_err_set (err, errsize, "too many bill lines (at most %d)",
                               BF_RATING_MAX_LINES);
        size_t at = terms->naddons++;
        for (; at > 0 && s_addon_before (addon, &input->addons[terms->addons[at - 1]]); at--) {
            terms->addons[at] = terms->addons[at - 1];
            terms->addon_days[at] = terms->addon_days[at - 1];
        }
        terms->addons[at] = i;
        terms->addon_days[at] = days;
    }
    return 0;
}

/*  Contract days, summed as billing-rules says; the cap keeps the discount
    at 25 % even if contracts overlap (the importer refuses that).  */
static int
s_count_contract_days (const bf_rating_input_t *input, const s_window_t *w, s_terms_t *terms,
                       char *err, size_t errsize)
{
    int64_t days = 0;
    for (size_t i = 0; i < input->ncontracts; i++) {
        const bf_rating_contract_t *contract = &input->contracts[i];
        if (s_check_range (contract->from, contract->to, "contract", i, err, errsize))
            return -1;
        days += bf_days_overlap (contract->from, contract->to, w->active_from, w->active_to);
    }
    terms->contract_days = s_min (days, w->active_days);
    return 0;
}

/*  Appends line prefix+code with monthly_fee prorated to days of
    period_days, and adds the amount to *sum.  */
static int
s_push_prorated (bf_bill_t *bill, const char *prefix, const char *code, int64_t monthly_fee,
                 int64_t days, int64_t period_days, int64_t *sum, char *err, size_t errsize)
{
    int64_t amount = s_floor_div (monthly_fee * days, period_days);
    if (s_push (bill, prefix, code, amount, err, errsize))
        return -1;
    *sum += amount;
    return 0;
}

/*  Step 1, plan fee: a line per counted segment, prorated.  */
static int
s_bill_plans (const bf_rating_input_t *input, const s_window_t *w, const s_terms_t *terms,
              bf_bill_t *bill, s_sums_t *sums, char *err, size_t errsize)
{
    for (size_t c = 0; c < terms->ncounted; c++) {
        const bf_rating_plan_t *plan = &input->plans[terms->counted[c]];
        if (s_push_prorated (bill, "PLAN:", plan->plan_code, plan->monthly_fee,
                             terms->counted_days[c], w->period_days, &sums->plan_fee, err, errsize))
            return -1;
    }
    return 0;
}

/*  Steps 2 and 3: the allowances of the counted segments, and overage at
    the rates of the latest one. Nothing counted means no usage (checked
    in the first pass): allowances 0, no overage.  */
static int
s_bill_overage (const bf_rating_input_t *input, const s_window_t *w, const s_terms_t *terms,
                bf_bill_t *bill, s_sums_t *sums, char *err, size_t errsize)
{
    int64_t allow_data = 0, allow_voice = 0, allow_sms = 0;
    for (size_t c = 0; c < terms->ncounted; c++) {
        const bf_rating_plan_t *plan = &input->plans[terms->counted[c]];
        int64_t voice_sec
            = plan->voice_min == BF_RATING_UNLIMITED ? BF_RATING_UNLIMITED : plan->voice_min * 60;
        s_add_allowance (&allow_data, plan->data_mb, terms->counted_days[c], w->period_days);
        s_add_allowance (&allow_voice, voice_sec, terms->counted_days[c], w->period_days);
        s_add_allowance (&allow_sms, plan->sms, terms->counted_days[c], w->period_days);
    }
    if (terms->ncounted == 0)
        return 0;
    const bf_rating_plan_t *latest = &input->plans[terms->counted[terms->ncounted - 1]];
    int64_t data = s_overage (input->used_data_mb, allow_data, latest->data_rate_mwon);
    int64_t voice = s_overage (input->used_voice_sec, allow_voice, latest->voice_rate_mwon);
    int64_t sms = s_overage (input->used_sms, allow_sms, latest->sms_rate_mwon);
    if (s_push_nonzero (bill, "OVERAGE_DATA", data, err, errsize)
        || s_push_nonzero (bill, "OVERAGE_VOICE", voice, err, errsize)
        || s_push_nonzero (bill, "OVERAGE_SMS", sms, err, errsize))
        return -1;
    sums->overage = data + voice + sms;
    return 0;
}

/*  Step 4, add-ons: a line per subscription, prorated.  */
static int
s_bill_addons (const bf_rating_input_t *input, const s_window_t *w, const s_terms_t *terms,
               bf_bill_t *bill, s_sums_t *sums, char *err, size_t errsize)
{
    for (size_t a = 0; a < terms->naddons; a++) {
        const bf_rating_addon_t *addon = &input->addons[terms->addons[a]];
        if (s_push_prorated (bill, "ADDON:", addon->addon_code, addon->monthly_fee,
                             terms->addon_days[a], w->period_days, &sums->addon_fee, err, errsize))
            return -1;
    }
    return 0;
}

/*  The welfare discount of base (a positive amount; 0 when base is not).  */
static int64_t
s_welfare_amount (bf_welfare_t welfare, int64_t base)
{
    if (base <= 0)
        return 0;
    switch (welfare) {
        case BF_WELFARE_DISABLED:
            return s_floor_div (base * 35, 100);
        case BF_WELFARE_LOW_INCOME:
            return s_min (base, 26000);
        case BF_WELFARE_SENIOR:
            return s_min (s_floor_div (base * 50, 100), 11000);
        case BF_WELFARE_NONE:
            break;
    }
    return 0;
}

/*  Step 5, discounts: computed as positive amounts, each on what the ones
    before it left, and written as negative lines.  */
static int
s_bill_discounts (const bf_rating_input_t *input, const s_window_t *w, const s_terms_t *terms,
                  bf_bill_t *bill, s_sums_t *sums, char *err, size_t errsize)
{
    int64_t plan_fee = sums->plan_fee;
    int64_t contract = 0;
    if (w->active_days > 0)
        contract = s_floor_div (plan_fee * 25 * terms->contract_days, 100 * w->active_days);
    int64_t family = s_min (s_family_amount (input->family_active), plan_fee - contract);
    int tenure = bf_rating_tenure_years (input->customer_since, w->end - 1);
    int64_t loyalty_percent = tenure >= 10 ? 10 : tenure >= 5 ? 5 : 0;
    int64_t loyalty = s_floor_div ((plan_fee - contract - family) * loyalty_percent, 100);
    int64_t base = plan_fee - contract - family - loyalty + sums->addon_fee;
    int64_t welfare = s_welfare_amount (input->welfare, base);
    if (s_push_nonzero (bill, "DISC_CONTRACT", -contract, err, errsize)
        || s_push_nonzero (bill, "DISC_FAMILY", -family, err, errsize)
        || s_push_nonzero (bill, "DISC_LOYALTY", -loyalty, err, errsize)
        || s_push_nonzero (bill, "DISC_WELFARE", -welfare, err, errsize))
        return -1;
    sums->discounts = contract + family + loyalty + welfare;
    return 0;
}

/*  Step 6, charges, in row order, summed by taxability.  */
static int
s_bill_charges (const bf_rating_input_t *input, bf_bill_t *bill, s_sums_t *sums, char *err,
                size_t errsize)
{
    for (size_t i = 0; i < input->ncharges; i++) {
        const bf_rating_charge_t *charge = &input->charges[i];
        if (s_push (bill, s_charge_codes[charge->kind], NULL, charge->amount, err, errsize))
            return -1;
        if (charge->taxable)
            sums->taxable += charge->amount;
        else
            sums->non_taxable += charge->amount;
    }
    return 0;
}

/*  Steps 7 to 10: the taxable subtotal (a credit beyond it is carried, not
    applied this month), VAT, arrears and rounding; sets bill->total.  */
static int
s_bill_total (const bf_rating_input_t *input, const s_sums_t *sums, bf_bill_t *bill, char *err,
              size_t errsize)
{
    int64_t subtotal
        = sums->plan_fee + sums->addon_fee + sums->overage - sums->discounts + sums->taxable;
    if (subtotal < 0) {
        if (s_push (bill, "CREDIT_CARRY", NULL, -subtotal, err, errsize))
            return -1;
        subtotal = 0;
    }
    int64_t vat = s_floor_div (subtotal * 10, 100);
    if (s_push_nonzero (bill, "VAT", vat, err, errsize)
        || s_push_nonzero (bill, "ARREARS", input->arrears, err, errsize))
        return -1;
    int64_t before_rounding = subtotal + vat + sums->non_taxable + input->arrears;
    if (before_rounding < 0)
        return bf_err_set (err, errsize, "negative total %" PRId64, before_rounding);
    int64_t rounding = -(before_rounding % 10);
    if (s_push_nonzero (bill, "ROUNDING", rounding, err, errsize))
        return -1;
    bill->total = before_rounding + rounding;
    return 0;
}

int
bf_rating_rate (const bf_rating_input_t *input, bf_period_t period, bf_bill_t *bill, char *err,
                size_t errsize)
{
    assert (input);
    assert (bill);
    if (err && errsize > 0)
        err[0] = '\0';

    //  First pass: validate, find what is counted. bill is untouched on error.
    if (s_check_inputs (input, period, err, errsize))
        return -1;
    const s_window_t w = s_window (input, period);
    s_terms_t terms;
    if (s_count_plans (input, &w, &terms, err, errsize)
        || s_count_addons (input, &w, &terms, err, errsize)
        || s_count_contract_days (input, &w, &terms, err, errsize))
        return -1;

    bill->nlines = 0;
    bill->total = 0;
    bf_period_t next = bf_period_next (period);
    bill->due_date = bf_day_from_ymd (next.year, next.month, input->pay_day);
    bill->has_bill = w.active_days > 0 || input->ncharges > 0 || input->has_arrears;
    if (!bill->has_bill)
        return 0;

    //  Second pass: the billing-rules steps in order, one line at a time.
    s_sums_t sums = { 0 };
    if (s_bill_plans (input, &w, &terms, bill, &sums, err, errsize)
        || s_bill_overage (input, &w, &terms, bill, &sums, err, errsize)
        || s_bill_addons (input, &w, &terms, bill, &sums, err, errsize)
        || s_bill_discounts (input, &w, &terms, bill, &sums, err, errsize)
        || s_bill_charges (input, bill, &sums, err, errsize)
        || s_bill_total (input, &sums, bill, err, errsize))
        return -1;

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
