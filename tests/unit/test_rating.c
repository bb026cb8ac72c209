/*  test_rating — bf_rating against docs/billing-rules.md and docs/rating.md.

    Each rule has a case with exact amounts worked out in the comments; the
    worked example of billing-rules.md is checked line by line and recomputed
    by hand. A property test then rates a few hundred thousand pseudo-random
    subscribers and compares every bill with a day-by-day reference model
    written independently of bf_rating.c, besides checking the invariants
    (lines sum to the total, total a non-negative multiple of 10, step
    order, no zero optional line).  */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_rating.h"

#define UNL  BF_RATING_UNLIMITED
#define OPEN BF_DAY_OPEN

/*  --- Helpers ----------------------------------------------------------- */

static bf_day_t
s_day (int year, int month, int mday)
{
    return bf_day_from_ymd (year, month, mday);
}

static bf_period_t
s_period (int year, int month)
{
    return (bf_period_t){ year, month };
}

/*  A plan segment with the same rate for every kind.  */
static bf_rating_plan_t
s_plan (const char *code, bf_day_t from, bf_day_t to, int64_t fee, int64_t data_mb,
        int64_t voice_min, int64_t sms, int64_t rate)
{
    return (bf_rating_plan_t){ .from = from,
                               .to = to,
                               .plan_code = code,
                               .known = true,
                               .monthly_fee = fee,
                               .data_mb = data_mb,
                               .voice_min = voice_min,
                               .sms = sms,
                               .data_rate_mwon = rate,
                               .voice_rate_mwon = rate,
                               .sms_rate_mwon = rate };
}

static bf_rating_addon_t
s_addon (const char *code, bf_day_t from, bf_day_t to, int64_t fee)
{
    return (bf_rating_addon_t){
        .from = from, .to = to, .addon_code = code, .known = true, .monthly_fee = fee
    };
}

static bf_rating_charge_t
s_charge (bf_charge_kind_t kind, int64_t amount)
{
    return (bf_rating_charge_t){ .kind = kind,
                                 .amount = amount,
                                 .taxable
                                 = kind == BF_CHARGE_CONTENT || kind == BF_CHARGE_ADJUSTMENT };
}

/*  A subscriber active since 2020-01-01, customer since 2024-01-01 (no
    loyalty before 2029), no family, no welfare, pay day 25, nothing else.  */
static bf_rating_input_t
s_input (void)
{
    return (bf_rating_input_t){ .subscriber_id = 1,
                                .activated_on = s_day (2020, 1, 1),
                                .terminated_on = OPEN,
                                .customer_since = s_day (2024, 1, 1),
                                .pay_day = 25 };
}

/*  Sets the input's arrays from fixed-size arrays.  */
#define SET_PLANS(in, ...)                                                                         \
    bf_rating_plan_t plans_[] = { __VA_ARGS__ };                                                   \
    (in).plans = plans_;                                                                           \
    (in).nplans = sizeof plans_ / sizeof plans_[0]
#define SET_ADDONS(in, ...)                                                                        \
    bf_rating_addon_t addons_[] = { __VA_ARGS__ };                                                 \
    (in).addons = addons_;                                                                         \
    (in).naddons = sizeof addons_ / sizeof addons_[0]
#define SET_CONTRACTS(in, ...)                                                                     \
    bf_rating_contract_t contracts_[] = { __VA_ARGS__ };                                           \
    (in).contracts = contracts_;                                                                   \
    (in).ncontracts = sizeof contracts_ / sizeof contracts_[0]
#define SET_CHARGES(in, ...)                                                                       \
    bf_rating_charge_t charges_[] = { __VA_ARGS__ };                                               \
    (in).charges = charges_;                                                                       \
    (in).ncharges = sizeof charges_ / sizeof charges_[0]

typedef struct {
    const char *code;
    int64_t amount;
} s_line_t;

/*  Rates input, which must succeed with a bill.  */
static void
s_rate (const bf_rating_input_t *input, bf_period_t period, bf_bill_t *bill)
{
    char err[256] = "";
    memset (bill, 0x5a, sizeof *bill); /* nothing may depend on the caller clearing it */
    int rc = bf_rating_rate (input, period, bill, err, sizeof err);
    if (rc != 0)
        fail_msg ("rating failed: %s", err);
    assert_true (bill->has_bill);
}

static void
s_print_bill (const bf_bill_t *bill)
{
    for (size_t i = 0; i < bill->nlines; i++)
        print_message ("  %-28s %" PRId64 "\n", bill->lines[i].code, bill->lines[i].amount);
    print_message ("  total %" PRId64 "\n", bill->total);
}

/*  The bill must have exactly these lines, in this order, and this total.  */
static void
s_expect_lines (const bf_bill_t *bill, const s_line_t *want, size_t n, int64_t total)
{
    bool same = bill->nlines == n && bill->total == total;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp (bill->lines[i].code, want[i].code) == 0
               && bill->lines[i].amount == want[i].amount;
    if (!same) {
        print_message ("expected:\n");
        for (size_t i = 0; i < n; i++)
            print_message ("  %-28s %" PRId64 "\n", want[i].code, want[i].amount);
        print_message ("  total %" PRId64 "\ngot:\n", total);
        s_print_bill (bill);
        fail_msg ("bill differs");
    }
}

#define EXPECT_LINES(bill, total, ...)                                                             \
    s_expect_lines ((bill), (const s_line_t[]){ __VA_ARGS__ },                                     \
                    sizeof ((const s_line_t[]){ __VA_ARGS__ }) / sizeof (s_line_t), (total))

/*  Amount of the line with this code; fails when there is none.  */
static int64_t
s_amount (const bf_bill_t *bill, const char *code)
{
    for (size_t i = 0; i < bill->nlines; i++)
        if (strcmp (bill->lines[i].code, code) == 0)
            return bill->lines[i].amount;
    s_print_bill (bill);
    fail_msg ("no line %s", code);
    return 0;
}

static bool
s_has_line (const bf_bill_t *bill, const char *code)
{
    for (size_t i = 0; i < bill->nlines; i++)
        if (strcmp (bill->lines[i].code, code) == 0)
            return true;
    return false;
}

/*  Rating must fail with a reason containing want.  */
static void
s_expect_error (const bf_rating_input_t *input, bf_period_t period, const char *want)
{
    static bf_bill_t bill;
    char err[256] = "";
    int rc = bf_rating_rate (input, period, &bill, err, sizeof err);
    if (rc != -1)
        fail_msg ("expected an error containing \"%s\", got rc %d", want, rc);
    if (!strstr (err, want))
        fail_msg ("expected an error containing \"%s\", got \"%s\"", want, err);
}

/*  --- The worked example of billing-rules.md --------------------------- */

static bf_rating_input_t
s_example_input (void)
{
    static const bf_rating_plan_t plans[] = {
        /*  Given newest first: rating must put them in date order.  */
        { .from = 20737, /* 2026-10-11 */
          .to = OPEN,
          .plan_code = "5G_59",
          .known = true,
          .monthly_fee = 59000,
          .data_mb = 12288,
          .voice_min = UNL,
          .sms = UNL,
          .data_rate_mwon = 22528,
          .voice_rate_mwon = 1980,
          .sms_rate_mwon = 22000 },
        { .from = 19754, /* 2024-02-01 */
          .to = 20737,
          .plan_code = "LTE_43",
          .known = true,
          .monthly_fee = 43000,
          .data_mb = 4096,
          .voice_min = 300,
          .sms = 300,
          .data_rate_mwon = 22528,
          .voice_rate_mwon = 1980,
          .sms_rate_mwon = 22000 },
    };
    static const bf_rating_addon_t addons[] = {
        { .from = 20746,
          .to = OPEN,
          .addon_code = "VCOLORING",
          .known = true,
          .monthly_fee = 3300 },
    };
    static const bf_rating_contract_t contracts[] = { { .from = 20089, .to = 20819 } };
    static const bf_rating_charge_t charges[] = {
        { BF_CHARGE_DEVICE_INSTALLMENT, 31250, false },
        { BF_CHARGE_MICRO_PAYMENT, 12000, false },
        { BF_CHARGE_CONTENT, 5500, true },
    };
    bf_rating_input_t in = s_input ();
    in.activated_on = s_day (2019, 3, 15);
    in.customer_since = s_day (2016, 7, 1);
    in.family_active = 3;
    in.pay_day = 25;
    in.plans = plans;
    in.nplans = 2;
    in.addons = addons;
    in.naddons = 1;
    in.contracts = contracts;
    in.ncontracts = 1;
    in.used_data_mb = 6000 + 4000;
    in.used_voice_sec = 12000;
    in.used_sms = 40;
    in.charges = charges;
    in.ncharges = 3;
    in.has_arrears = true;
    in.arrears = 15000;
    return in;
}

static void
test_worked_example (void **state)
{
    (void)state;
    /*  The literal day numbers above are the dates their comments say.  */
    assert_int_equal (s_day (2026, 10, 11), 20737);
    assert_int_equal (s_day (2024, 2, 1), 19754);
    assert_int_equal (s_day (2026, 10, 20), 20746);
    assert_int_equal (s_day (2025, 1, 1), 20089);
    assert_int_equal (s_day (2027, 1, 1), 20819);

    bf_rating_input_t in = s_example_input ();
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    EXPECT_LINES (&bill, 111200, { "PLAN:LTE_43", 13870 }, { "PLAN:5G_59", 39967 },
                  { "OVERAGE_DATA", 7997 }, { "ADDON:VCOLORING", 1277 },
                  { "DISC_CONTRACT", -13459 }, { "DISC_FAMILY", -3300 }, { "DISC_LOYALTY", -3707 },
                  { "CHARGE:DEVICE_INSTALLMENT", 31250 }, { "CHARGE:MICRO_PAYMENT", 12000 },
                  { "CHARGE:CONTENT", 5500 }, { "VAT", 4814 }, { "ARREARS", 15000 },
                  { "ROUNDING", -9 });
    assert_int_equal (bill.due_date, s_day (2026, 11, 25));
}

/*  The example's numbers again, from the rules by hand, without bf_rating:
    if this disagrees with the table, the table (or this reading) is wrong.  */
static void
test_worked_example_by_hand (void **state)
{
    (void)state;
    const int64_t D = 31, lte_days = 10, g5_days = 21; /* 1..10 and 11..31 October */
    int64_t plan_lte = 43000 * lte_days / D, plan_5g = 59000 * g5_days / D;
    assert_int_equal (plan_lte, 13870);
    assert_int_equal (plan_5g, 39967);
    int64_t plan_fee = plan_lte + plan_5g;
    assert_int_equal (plan_fee, 53837);

    int64_t allow = 4096 * lte_days / D + 12288 * g5_days / D;
    assert_int_equal (allow, 1321 + 8324);
    int64_t overage = (6000 + 4000 - allow) * 22528 / 1000;
    assert_int_equal (overage, 7997);
    int64_t addon = 3300 * 12 / D; /* 20..31 October */
    assert_int_equal (addon, 1277);

    int64_t contract = plan_fee * 25 * 31 / (100 * 31);
    assert_int_equal (contract, 13459);
    int64_t family = 3300;
    int64_t loyalty = (plan_fee - contract - family) * 10 / 100;
    assert_int_equal (plan_fee - contract - family, 37078);
    assert_int_equal (loyalty, 3707);

    int64_t s = plan_fee + overage + addon - contract - family - loyalty + 5500;
    assert_int_equal (s, 48145);
    int64_t vat = s * 10 / 100;
    assert_int_equal (vat, 4814);
    int64_t t = s + vat + 31250 + 12000 + 15000;
    assert_int_equal (t, 111209);
    assert_int_equal (t - t % 10, 111200);

    bf_rating_input_t in = s_example_input ();
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (s_amount (&bill, "PLAN:LTE_43"), plan_lte);
    assert_int_equal (s_amount (&bill, "PLAN:5G_59"), plan_5g);
    assert_int_equal (s_amount (&bill, "OVERAGE_DATA"), overage);
    assert_int_equal (s_amount (&bill, "ADDON:VCOLORING"), addon);
    assert_int_equal (s_amount (&bill, "DISC_CONTRACT"), -contract);
    assert_int_equal (s_amount (&bill, "DISC_FAMILY"), -family);
    assert_int_equal (s_amount (&bill, "DISC_LOYALTY"), -loyalty);
    assert_int_equal (s_amount (&bill, "VAT"), vat);
    assert_int_equal (s_amount (&bill, "ROUNDING"), -(t % 10));
    assert_int_equal (bill.total, t - t % 10);
    /*  Voice and SMS are unlimited for the month thanks to 5G_59.  */
    assert_false (s_has_line (&bill, "OVERAGE_VOICE"));
    assert_false (s_has_line (&bill, "OVERAGE_SMS"));

    /*  Without 5G_59's unlimited voice, LTE_43's prorated 300 minutes
        (floor (18000 × 10 / 31) = 5806 s) leave 6194 s over.  */
    bf_rating_plan_t plans[2];
    memcpy (plans, in.plans, sizeof plans);
    plans[0].voice_min = 0;
    in.plans = plans;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (s_amount (&bill, "OVERAGE_VOICE"),
                      (12000 - 300 * 60 * 10 / 31) * 1980 / 1000);
    assert_int_equal (s_amount (&bill, "OVERAGE_VOICE"), 12264);
}

/*  --- Plan segments ------------------------------------------------------ */

/*  April 2026 (D = 30): A ends on the 8th, B runs 8th..20th, C starts on the
    20th; E starts after the period and F ended before it.  */
static void
test_proration_segment_ends (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    bf_rating_plan_t a
        = s_plan ("A", s_day (2026, 3, 1), s_day (2026, 4, 8), 30000, 3000, 100, 10, 999999);
    bf_rating_plan_t b
        = s_plan ("B", s_day (2026, 4, 8), s_day (2026, 4, 20), 45000, 6000, 200, 10, 999999);
    bf_rating_plan_t c
        = s_plan ("C", s_day (2026, 4, 20), s_day (2026, 6, 1), 10000, 1000, 7, 10, 0);
    c.data_rate_mwon = 10000;
    c.voice_rate_mwon = 1000;
    bf_rating_plan_t e = s_plan ("E", s_day (2026, 5, 1), OPEN, 99000, 0, 0, 0, 0);
    bf_rating_plan_t f = s_plan ("F", s_day (2025, 1, 1), s_day (2026, 3, 1), 99000, 0, 0, 0, 0);
    SET_PLANS (in, c, e, a, f, b);
    /*  data allowance 3000×7/30 + 6000×12/30 + 1000×11/30 = 700+2400+366;
        voice 6000×7/30 + 12000×12/30 + 420×11/30 = 1400+4800+154 s
        (minutes × 60 before prorating: 7 min × 11/30 would floor to 2 min);
        SMS 70/30 + 120/30 + 110/30 = 2+4+3 = 9 = used, so no line.  */
    in.used_data_mb = 3500;
    in.used_voice_sec = 6400;
    in.used_sms = 9;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    /*  S = 7000+18000+3666 + 34×10 + 46×1 = 29052, VAT 2905, T = 31957  */
    EXPECT_LINES (&bill, 31950, { "PLAN:A", 7000 }, { "PLAN:B", 18000 }, { "PLAN:C", 3666 },
                  { "OVERAGE_DATA", 340 }, { "OVERAGE_VOICE", 46 }, { "VAT", 2905 },
                  { "ROUNDING", -7 });

    /*  One more message is over at C's rate: 10 mwon floors to 0 won, so
        the line is omitted; 100 messages over cost 1 won.  */
    plans_[0].sms_rate_mwon = 10;
    in.used_sms = 10;
    s_rate (&in, s_period (2026, 4), &bill);
    assert_false (s_has_line (&bill, "OVERAGE_SMS"));
    in.used_sms = 109;
    s_rate (&in, s_period (2026, 4), &bill);
    assert_int_equal (s_amount (&bill, "OVERAGE_SMS"), 1);
}

/*  A counted segment whose prorated fee floors to 0 still has its line.  */
static void
test_zero_plan_line_listed (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("CHEAP", s_day (2020, 1, 1), s_day (2026, 4, 2), 29, 0, 0, 0, 0),
               s_plan ("FREE", s_day (2026, 4, 2), OPEN, 0, 0, 0, 0, 0));
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 0, { "PLAN:CHEAP", 0 }, { "PLAN:FREE", 0 });
}

/*  April 2026: A (unlimited data, 0 SMS) 1st..15th, B (1000 MB, 30 SMS,
    unlimited voice) from the 16th.  */
static void
test_unlimited_segment (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("A", s_day (2025, 1, 1), s_day (2026, 4, 16), 30000, UNL, 0, 0, 5000),
               s_plan ("B", s_day (2026, 4, 16), OPEN, 30000, 1000, UNL, 30, 5000));
    in.used_data_mb = 1000000000000; /* unlimited for the month: no overage */
    in.used_voice_sec = 1000000;     /* unlimited through B */
    in.used_sms = 100;               /* allowance 30 × 15/30 = 15, 85 over */
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    /*  S = 15000 + 15000 + 425 = 30425, VAT 3042, T = 33467  */
    EXPECT_LINES (&bill, 33460, { "PLAN:A", 15000 }, { "PLAN:B", 15000 }, { "OVERAGE_SMS", 425 },
                  { "VAT", 3042 }, { "ROUNDING", -7 });
}

/*  Rates come from the counted segment with the latest valid_from, whatever
    the input order; a segment after termination is not counted.  */
static void
test_rates_latest_segment (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    in.terminated_on = s_day (2026, 4, 21);
    bf_rating_plan_t early
        = s_plan ("EARLY", s_day (2025, 1, 1), s_day (2026, 4, 11), 0, 0, 0, 0, 1000000);
    bf_rating_plan_t late
        = s_plan ("LATE", s_day (2026, 4, 11), s_day (2026, 4, 25), 0, 0, 0, 0, 0);
    late.data_rate_mwon = 1500;
    late.voice_rate_mwon = 2500;
    late.sms_rate_mwon = 3500;
    bf_rating_plan_t after = s_plan ("AFTER", s_day (2026, 4, 25), OPEN, 0, 0, 0, 0, 1000000);
    SET_PLANS (in, after, late, early);
    in.used_data_mb = 1001;
    in.used_voice_sec = 1001;
    in.used_sms = 1001;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    /*  1001 × 1.5 = 1501.5, × 2.5 = 2502.5, × 3.5 = 3503.5; S = 7506  */
    EXPECT_LINES (&bill, 8250, { "PLAN:EARLY", 0 }, { "PLAN:LATE", 0 }, { "OVERAGE_DATA", 1501 },
                  { "OVERAGE_VOICE", 2502 }, { "OVERAGE_SMS", 3503 }, { "VAT", 750 },
                  { "ROUNDING", -6 });
}

/*  --- Activation, termination, contracts -------------------------------- */

/*  September 2026 (D = 30), activated on the 10th: 21 active days. The
    contract starts on the 20th: 11 of the 21 days.  */
static void
test_activation_mid_month (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    in.activated_on = s_day (2026, 9, 10);
    in.customer_since = s_day (2026, 9, 10);
    SET_PLANS (in, s_plan ("P", s_day (2026, 9, 10), OPEN, 30000, 3000, 0, 0, 1000));
    SET_ADDONS (in, s_addon ("X", s_day (2026, 9, 1), OPEN, 3000));
    SET_CONTRACTS (in, { s_day (2026, 9, 20), s_day (2028, 9, 20) });
    in.used_data_mb = 2101; /* allowance 3000 × 21/30 = 2100 */
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 9), &bill);
    /*  plan 30000×21/30 = 21000; add-on 3000×21/30 = 2100;
        contract floor (21000×25×11 / (100×21)) = 2750;
        S = 21000 + 1 + 2100 − 2750 = 20351, VAT 2035, T = 22386  */
    EXPECT_LINES (&bill, 22380, { "PLAN:P", 21000 }, { "OVERAGE_DATA", 1 }, { "ADDON:X", 2100 },
                  { "DISC_CONTRACT", -2750 }, { "VAT", 2035 }, { "ROUNDING", -6 });
    assert_int_equal (bill.due_date, s_day (2026, 10, 25));
}

/*  September 2026, terminated on the 16th: active 1st..15th.  */
static void
test_termination_mid_month (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    in.terminated_on = s_day (2026, 9, 16);
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 30000, 0, 0, 0, 0));
    SET_ADDONS (in, s_addon ("X", s_day (2026, 9, 10), OPEN, 3000),
                s_addon ("LATE", s_day (2026, 9, 16), OPEN, 3000)); /* no active day */
    SET_CONTRACTS (in, { s_day (2025, 1, 1), s_day (2027, 1, 1) });
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 9), &bill);
    /*  plan 15000, add-on 10th..15th 3000×6/30 = 600, contract 15/15 days
        → 3750; S = 11850, VAT 1185, T = 13035  */
    EXPECT_LINES (&bill, 13030, { "PLAN:P", 15000 }, { "ADDON:X", 600 }, { "DISC_CONTRACT", -3750 },
                  { "VAT", 1185 }, { "ROUNDING", -5 });

    /*  Terminated on the 1st: the line was never active in September.  */
    in.terminated_on = s_day (2026, 9, 1);
    plans_[0].to = in.terminated_on;
    s_rate (&in, s_period (2026, 8), &bill);
    assert_int_equal (s_amount (&bill, "PLAN:P"), 30000);
    bill.has_bill = true;
    char err[128];
    assert_int_equal (bf_rating_rate (&in, s_period (2026, 9), &bill, err, sizeof err), 0);
    assert_false (bill.has_bill);
}

/*  October 2026 (D = 31), whole month active, plan 31000.  */
static void
test_contract_partial (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 31000, 0, 0, 0, 0));
    SET_CONTRACTS (in, { s_day (2026, 10, 11), s_day (2026, 10, 21) });
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    /*  10 of 31 days: floor (31000×25×10 / 3100) = 2500  */
    assert_int_equal (s_amount (&bill, "DISC_CONTRACT"), -2500);

    /*  Two overlapping contracts (20 + 31 days) count at most 31.  */
    bf_rating_contract_t two[] = { { s_day (2026, 9, 1), s_day (2026, 10, 21) },
                                   { s_day (2026, 10, 1), s_day (2026, 11, 15) } };
    in.contracts = two;
    in.ncontracts = 2;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (s_amount (&bill, "DISC_CONTRACT"), -7750);

    /*  One day: floor (31000×25 / 3100) = 250; a contract after the
        period: no line.  */
    two[0] = (bf_rating_contract_t){ s_day (2026, 10, 31), s_day (2026, 11, 1) };
    two[1] = (bf_rating_contract_t){ s_day (2026, 11, 1), OPEN };
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (s_amount (&bill, "DISC_CONTRACT"), -250);
    in.ncontracts = 0;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_false (s_has_line (&bill, "DISC_CONTRACT"));
}

/*  --- Family, loyalty, welfare ------------------------------------------- */

static void
test_family_sizes (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 50000, 0, 0, 0, 0));
    const int64_t want[] = { 0, 0, 2200, 3300, 4400, 5500, 5500, 5500 };
    bf_bill_t bill;
    for (int n = 0; n < 8; n++) {
        in.family_active = n;
        s_rate (&in, s_period (2026, 10), &bill);
        if (want[n] == 0)
            assert_false (s_has_line (&bill, "DISC_FAMILY"));
        else
            assert_int_equal (s_amount (&bill, "DISC_FAMILY"), -want[n]);
        int64_t s = 50000 - want[n];
        assert_int_equal (bill.total, (s + s / 10) / 10 * 10);
    }

    /*  Plan 4000 with a contract: 1000 off, so the family discount is
        capped at 3000.  */
    plans_[0].monthly_fee = 4000;
    SET_CONTRACTS (in, { s_day (2020, 1, 1), OPEN });
    const int64_t capped[] = { 0, 0, 2200, 3000, 3000, 3000, 3000, 3000 };
    for (int n = 0; n < 8; n++) {
        in.family_active = n;
        s_rate (&in, s_period (2026, 10), &bill);
        assert_int_equal (s_amount (&bill, "DISC_CONTRACT"), -1000);
        if (capped[n] == 0)
            assert_false (s_has_line (&bill, "DISC_FAMILY"));
        else
            assert_int_equal (s_amount (&bill, "DISC_FAMILY"), -capped[n]);
    }
    /*  At the cap nothing taxable is left: the bill is 0.  */
    assert_int_equal (bill.total, 0);
    EXPECT_LINES (&bill, 0, { "PLAN:P", 4000 }, { "DISC_CONTRACT", -1000 },
                  { "DISC_FAMILY", -3000 });
}

static void
test_tenure_years (void **state)
{
    (void)state;
    /*  Ordinary dates: the anniversary itself completes the year.  */
    assert_int_equal (bf_rating_tenure_years (s_day (2021, 10, 31), s_day (2026, 10, 31)), 5);
    assert_int_equal (bf_rating_tenure_years (s_day (2021, 11, 1), s_day (2026, 10, 31)), 4);
    assert_int_equal (bf_rating_tenure_years (s_day (2016, 10, 31), s_day (2026, 10, 31)), 10);
    assert_int_equal (bf_rating_tenure_years (s_day (2016, 11, 1), s_day (2026, 10, 31)), 9);
    assert_int_equal (bf_rating_tenure_years (s_day (2026, 10, 31), s_day (2026, 10, 31)), 0);
    assert_int_equal (bf_rating_tenure_years (s_day (2026, 11, 1), s_day (2026, 10, 31)), 0);
    assert_int_equal (bf_rating_tenure_years (s_day (1990, 1, 1), s_day (2026, 10, 31)), 36);
    /*  29 February: in a year without one, the anniversary is 28 February.  */
    bf_day_t leap = s_day (2016, 2, 29);
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2026, 2, 27)), 9);
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2026, 2, 28)), 10);
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2026, 3, 1)), 10);
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2017, 2, 27)), 0);
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2017, 2, 28)), 1);
    /*  ...and 29 February itself in a leap target year.  */
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2028, 2, 28)), 11);
    assert_int_equal (bf_rating_tenure_years (leap, s_day (2028, 2, 29)), 12);
    assert_int_equal (bf_rating_tenure_years (s_day (2021, 2, 28), s_day (2026, 2, 28)), 5);
    assert_int_equal (bf_rating_tenure_years (s_day (2020, 2, 28), s_day (2024, 2, 28)), 4);
    assert_int_equal (bf_rating_tenure_years (s_day (2020, 2, 28), s_day (2024, 2, 27)), 3);
    /*  2100 is not a leap year.  */
    assert_int_equal (bf_rating_tenure_years (s_day (2096, 2, 29), s_day (2100, 2, 27)), 3);
    assert_int_equal (bf_rating_tenure_years (s_day (2096, 2, 29), s_day (2100, 2, 28)), 4);
}

/*  Loyalty counts to the period's last day; plan 40000, family of 2.  */
static void
test_loyalty (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2010, 1, 1), OPEN, 40000, 0, 0, 0, 0));
    in.activated_on = s_day (2010, 1, 1);
    in.family_active = 2;
    bf_bill_t bill;
    struct {
        bf_period_t period;
        bf_day_t since;
        int64_t loyalty;
    } cases[] = {
        /*  5 % of 40000 − 2200 = 37800 → 1890; 10 % → 3780  */
        { { 2026, 10 }, s_day (2021, 10, 31), 1890 }, /* 5 years on the 31st */
        { { 2026, 10 }, s_day (2021, 11, 1), 0 },     /* 5 years tomorrow */
        { { 2026, 10 }, s_day (2016, 10, 31), 3780 },
        { { 2026, 10 }, s_day (2016, 11, 1), 1890 },
        { { 2026, 2 }, s_day (2016, 2, 29), 3780 }, /* 28 Feb 2026 is the anniversary */
        { { 2026, 1 }, s_day (2016, 2, 29), 1890 },
        { { 2021, 2 }, s_day (2016, 2, 29), 1890 }, /* 5 years on 28 Feb 2021 */
        { { 2028, 2 }, s_day (2018, 2, 28), 3780 }, /* leap February, since 28 Feb */
        { { 2026, 2 }, s_day (2021, 3, 1), 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        in.customer_since = cases[i].since;
        s_rate (&in, cases[i].period, &bill);
        if (cases[i].loyalty == 0)
            assert_false (s_has_line (&bill, "DISC_LOYALTY"));
        else
            assert_int_equal (s_amount (&bill, "DISC_LOYALTY"), -cases[i].loyalty);
    }
    /*  Floored: 10 % of 40009 − 2200 = 37809 is 3780.9 → 3780.  */
    plans_[0].monthly_fee = 40009;
    in.customer_since = s_day (2000, 1, 1);
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (s_amount (&bill, "DISC_LOYALTY"), -3780);
}

/*  Welfare: plan (full month) and add-on given; no other discount.  */
static void
s_welfare_case (bf_welfare_t grade, int64_t plan_fee, int64_t addon_fee, int64_t used_data,
                int64_t want_welfare, int64_t want_total)
{
    bf_rating_input_t in = s_input ();
    in.welfare = grade;
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, plan_fee, 0, 0, 0, 1000));
    SET_ADDONS (in, s_addon ("X", s_day (2020, 1, 1), OPEN, addon_fee));
    in.used_data_mb = used_data;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    if (want_welfare == 0)
        assert_false (s_has_line (&bill, "DISC_WELFARE"));
    else
        assert_int_equal (s_amount (&bill, "DISC_WELFARE"), -want_welfare);
    assert_int_equal (bill.total, want_total);
}

static void
test_welfare (void **state)
{
    (void)state;
    /*  DISABLED, 35 % without cap: 30000 → 10500 (S 19500, T 21450);
        30002 → floor (10500.7) = 10500 (S 19502, VAT 1950, T 21452);
        base 300000 → 105000 (S 195000, T 214500).  */
    s_welfare_case (BF_WELFARE_DISABLED, 30000, 0, 0, 10500, 21450);
    s_welfare_case (BF_WELFARE_DISABLED, 30000, 2, 0, 10500, 21450);
    s_welfare_case (BF_WELFARE_DISABLED, 297000, 3000, 0, 105000, 214500);
    /*  LOW_INCOME, 100 % up to 26000: below the cap the bill is 0; above,
        33000 → 26000 (S 7000, T 7700); overage is not in the base: 5 MB
        at 1 won (S 5, VAT 0, T 5 → 0).  */
    s_welfare_case (BF_WELFARE_LOW_INCOME, 20000, 0, 0, 20000, 0);
    s_welfare_case (BF_WELFARE_LOW_INCOME, 15000, 3000, 0, 18000, 0);
    s_welfare_case (BF_WELFARE_LOW_INCOME, 26000, 0, 0, 26000, 0);
    s_welfare_case (BF_WELFARE_LOW_INCOME, 30000, 3000, 0, 26000, 7700);
    s_welfare_case (BF_WELFARE_LOW_INCOME, 20000, 0, 5, 20000, 0);
    s_welfare_case (BF_WELFARE_LOW_INCOME, 20000, 0, 15, 20000, 10);
    /*  SENIOR, 50 % up to 11000: 15001 → 7500 (S 7501, VAT 750, T 8251);
        22000 → 11000 exactly; 30000 → 11000 (S 19000, T 20900).  */
    s_welfare_case (BF_WELFARE_SENIOR, 15001, 0, 0, 7500, 8250);
    s_welfare_case (BF_WELFARE_SENIOR, 22000, 0, 0, 11000, 12100);
    s_welfare_case (BF_WELFARE_SENIOR, 27000, 3000, 0, 11000, 20900);
    /*  No grade, and a zero base.  */
    s_welfare_case (BF_WELFARE_NONE, 30000, 0, 0, 0, 33000);
    s_welfare_case (BF_WELFARE_SENIOR, 0, 0, 0, 0, 0);

    /*  The base is what discounts 1-3 leave: plan 40000 with a contract
        (10000), family of 2 (2200), 10 years (2780) and add-on 3000 →
        base 28020; DISABLED 9807, SENIOR 11000, LOW_INCOME 26000.  */
    bf_rating_input_t in = s_input ();
    in.customer_since = s_day (2000, 1, 1);
    in.family_active = 2;
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 40000, 0, 0, 0, 0));
    SET_ADDONS (in, s_addon ("X", s_day (2020, 1, 1), OPEN, 3000));
    SET_CONTRACTS (in, { s_day (2020, 1, 1), OPEN });
    bf_bill_t bill;
    in.welfare = BF_WELFARE_DISABLED;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 20030, { "PLAN:P", 40000 }, { "ADDON:X", 3000 },
                  { "DISC_CONTRACT", -10000 }, { "DISC_FAMILY", -2200 }, { "DISC_LOYALTY", -2780 },
                  { "DISC_WELFARE", -9807 }, { "VAT", 1821 }, { "ROUNDING", -4 });
    in.welfare = BF_WELFARE_SENIOR;
    s_rate (&in, s_period (2026, 4), &bill);
    assert_int_equal (s_amount (&bill, "DISC_WELFARE"), -11000);
    in.welfare = BF_WELFARE_LOW_INCOME;
    s_rate (&in, s_period (2026, 4), &bill);
    assert_int_equal (s_amount (&bill, "DISC_WELFARE"), -26000);
    assert_int_equal (bill.total, 2020 + 202 - 2);
}

/*  --- Charges, credit, VAT, rounding ------------------------------------- */

static void
test_credit_carry (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 30000, 0, 0, 0, 0));
    SET_CHARGES (in, s_charge (BF_CHARGE_DEVICE_INSTALLMENT, 10005),
                 s_charge (BF_CHARGE_ADJUSTMENT, -50000));
    in.has_arrears = true;
    in.arrears = 7000;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    /*  S = 30000 − 50000 = −20000: carried, not applied; no VAT; the
        installment and arrears are still due.  */
    EXPECT_LINES (&bill, 17000, { "PLAN:P", 30000 }, { "CHARGE:DEVICE_INSTALLMENT", 10005 },
                  { "CHARGE:ADJUSTMENT", -50000 }, { "CREDIT_CARRY", 20000 }, { "ARREARS", 7000 },
                  { "ROUNDING", -5 });

    /*  An adjustment that exactly cancels S leaves no CREDIT_CARRY line.  */
    charges_[1].amount = -30000;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 17000, { "PLAN:P", 30000 }, { "CHARGE:DEVICE_INSTALLMENT", 10005 },
                  { "CHARGE:ADJUSTMENT", -30000 }, { "ARREARS", 7000 }, { "ROUNDING", -5 });

    /*  A positive adjustment and content are taxed.  */
    charges_[1].amount = 1000;
    s_rate (&in, s_period (2026, 4), &bill);
    assert_int_equal (s_amount (&bill, "VAT"), 3100);
    assert_int_equal (bill.total, 31000 + 3100 + 10005 + 7000 - 5);
}

static void
test_rounding (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 12345, 0, 0, 0, 0));
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    /*  12345 + 1234 = 13579  */
    EXPECT_LINES (&bill, 13570, { "PLAN:P", 12345 }, { "VAT", 1234 }, { "ROUNDING", -9 });
    plans_[0].monthly_fee = 10000;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 11000, { "PLAN:P", 10000 }, { "VAT", 1000 });
    plans_[0].monthly_fee = 9;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 0, { "PLAN:P", 9 }, { "ROUNDING", -9 });
}

/*  Charges in row order, each listed even when 0.  */
static void
test_charges_in_row_order (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 0, 0, 0, 0, 0));
    SET_CHARGES (in, s_charge (BF_CHARGE_CONTENT, 0), s_charge (BF_CHARGE_MICRO_PAYMENT, 300),
                 s_charge (BF_CHARGE_CONTENT, 1000), s_charge (BF_CHARGE_DEVICE_INSTALLMENT, 0),
                 s_charge (BF_CHARGE_MICRO_PAYMENT, 300));
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 1700, { "PLAN:P", 0 }, { "CHARGE:CONTENT", 0 },
                  { "CHARGE:MICRO_PAYMENT", 300 }, { "CHARGE:CONTENT", 1000 },
                  { "CHARGE:DEVICE_INSTALLMENT", 0 }, { "CHARGE:MICRO_PAYMENT", 300 },
                  { "VAT", 100 });
}

/*  Add-ons ordered by valid_from, then code; free ones listed as 0.  */
static void
test_addon_order (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 0, 0, 0, 0, 0));
    SET_ADDONS (in, s_addon ("ZETA", s_day (2026, 4, 1), OPEN, 3000),
                s_addon ("FREE", s_day (2026, 4, 16), OPEN, 0),
                s_addon ("BETA", s_day (2026, 4, 16), OPEN, 1000),
                s_addon ("ALPHA", s_day (2025, 4, 16), OPEN, 999),
                s_addon ("GONE", s_day (2025, 4, 16), s_day (2026, 4, 1), 5000),
                s_addon ("NEXT", s_day (2026, 5, 1), OPEN, 5000));
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 4), &bill);
    /*  ALPHA 999, ZETA 3000, BETA 1000×15/30 = 500, FREE 0; S = 4499  */
    EXPECT_LINES (&bill, 4940, { "PLAN:P", 0 }, { "ADDON:ALPHA", 999 }, { "ADDON:ZETA", 3000 },
                  { "ADDON:BETA", 500 }, { "ADDON:FREE", 0 }, { "VAT", 449 }, { "ROUNDING", -8 });
}

/*  --- Bill or no bill --------------------------------------------------- */

/*  Terminated in August with installments still due in October.  */
static void
test_charges_only_bill (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    in.terminated_on = s_day (2026, 8, 1);
    in.customer_since = s_day (2000, 1, 1);
    in.family_active = 3;
    in.welfare = BF_WELFARE_LOW_INCOME;
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), s_day (2026, 8, 1), 50000, 0, 0, 0, 0));
    SET_ADDONS (in, s_addon ("X", s_day (2020, 1, 1), OPEN, 3000));
    SET_CONTRACTS (in, { s_day (2020, 1, 1), OPEN });
    SET_CHARGES (in, s_charge (BF_CHARGE_DEVICE_INSTALLMENT, 31250),
                 s_charge (BF_CHARGE_CONTENT, 1001));
    in.ncharges = 1;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    EXPECT_LINES (&bill, 31250, { "CHARGE:DEVICE_INSTALLMENT", 31250 });
    assert_int_equal (bill.due_date, s_day (2026, 11, 25));

    in.ncharges = 2;
    s_rate (&in, s_period (2026, 10), &bill);
    EXPECT_LINES (&bill, 32350, { "CHARGE:DEVICE_INSTALLMENT", 31250 }, { "CHARGE:CONTENT", 1001 },
                  { "VAT", 100 }, { "ROUNDING", -1 });
}

static void
test_arrears_only_bill (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    in.terminated_on = s_day (2026, 8, 1);
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), s_day (2026, 8, 1), 50000, 0, 0, 0, 0));
    in.has_arrears = true;
    in.arrears = 0;
    bf_bill_t bill;
    /*  An arrears row of 0 still makes a bill: no lines, total 0.  */
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (bill.nlines, 0);
    assert_int_equal (bill.total, 0);
    assert_int_equal (bill.due_date, s_day (2026, 11, 25));
    in.arrears = 15005;
    s_rate (&in, s_period (2026, 10), &bill);
    EXPECT_LINES (&bill, 15000, { "ARREARS", 15005 }, { "ROUNDING", -5 });
    /*  A charge row of 0 makes a bill too.  */
    in.has_arrears = false;
    in.arrears = 0;
    SET_CHARGES (in, s_charge (BF_CHARGE_MICRO_PAYMENT, 0));
    s_rate (&in, s_period (2026, 10), &bill);
    EXPECT_LINES (&bill, 0, { "CHARGE:MICRO_PAYMENT", 0 });
}

static void
test_no_bill (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 50000, 0, 0, 0, 0));
    bf_bill_t bill;
    char err[128];
    struct {
        bf_day_t activated, terminated;
        bool has_bill;
    } cases[] = {
        { s_day (2020, 1, 1), s_day (2026, 10, 1), false }, /* ended the day before */
        { s_day (2026, 11, 1), OPEN, false },               /* starts the day after */
        { s_day (2026, 10, 31), OPEN, true },               /* one day */
        { s_day (2020, 1, 1), s_day (2026, 10, 2), true },  /* one day */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        in.activated_on = cases[i].activated;
        in.terminated_on = cases[i].terminated;
        memset (&bill, 0x5a, sizeof bill);
        assert_int_equal (bf_rating_rate (&in, s_period (2026, 10), &bill, err, sizeof err), 0);
        assert_int_equal (bill.has_bill, cases[i].has_bill);
        if (!cases[i].has_bill) {
            assert_int_equal (bill.nlines, 0);
            assert_int_equal (bill.total, 0);
        } else
            assert_int_equal (s_amount (&bill, "PLAN:P"), 50000 / 31);
    }
}

/*  --- Calendar ---------------------------------------------------------- */

static void
test_february (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("A", s_day (2020, 1, 1), s_day (2028, 2, 15), 29000, 2900, 0, 0, 1000),
               s_plan ("B", s_day (2028, 2, 15), OPEN, 58000, 0, 0, 0, 1000));
    in.used_data_mb = 1500;
    bf_bill_t bill;
    /*  2028 is a leap year: D = 29; A 14 days, B 15 days; allowance
        2900×14/29 = 1400, 100 MB over at 1 won.  */
    s_rate (&in, s_period (2028, 2), &bill);
    EXPECT_LINES (&bill, 48510, { "PLAN:A", 14000 }, { "PLAN:B", 30000 }, { "OVERAGE_DATA", 100 },
                  { "VAT", 4410 });
    assert_int_equal (bill.due_date, s_day (2028, 3, 25));

    /*  2026 is not: D = 28; A 14 days, B 14 days; allowance 2900×14/28 =
        1450, 50 over; S = 43550, VAT 4355, T = 47905.  */
    plans_[0].to = plans_[1].from = s_day (2026, 2, 15);
    s_rate (&in, s_period (2026, 2), &bill);
    EXPECT_LINES (&bill, 47900, { "PLAN:A", 14500 }, { "PLAN:B", 29000 }, { "OVERAGE_DATA", 50 },
                  { "VAT", 4355 }, { "ROUNDING", -5 });
    assert_int_equal (bill.due_date, s_day (2026, 3, 25));

    /*  2100 is not a leap year either (D = 28).  */
    plans_[0].to = plans_[1].from = s_day (2100, 2, 15);
    in.used_data_mb = 0;
    s_rate (&in, s_period (2100, 2), &bill);
    assert_int_equal (s_amount (&bill, "PLAN:A"), 14500);
}

static void
test_due_dates (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 1000, 0, 0, 0, 0));
    bf_bill_t bill;
    const int days[] = { 5, 10, 15, 20, 25 };
    for (size_t i = 0; i < 5; i++) {
        in.pay_day = days[i];
        s_rate (&in, s_period (2026, 12), &bill);
        assert_int_equal (bill.due_date, s_day (2027, 1, days[i]));
        s_rate (&in, s_period (2026, 1), &bill);
        assert_int_equal (bill.due_date, s_day (2026, 2, days[i]));
    }
    /*  December: D = 31 and due in January of the next year.  */
    in.pay_day = 5;
    in.activated_on = s_day (2026, 12, 17);
    s_rate (&in, s_period (2026, 12), &bill);
    EXPECT_LINES (&bill, 530, { "PLAN:P", 483 }, { "VAT", 48 }, { "ROUNDING", -1 });
    assert_int_equal (bill.due_date, s_day (2027, 1, 5));
}

/*  --- Errors ------------------------------------------------------------- */

static void
test_overlap_errors (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("A", s_day (2020, 1, 1), s_day (2026, 10, 15), 1000, 0, 0, 0, 0),
               s_plan ("B", s_day (2026, 10, 14), OPEN, 1000, 0, 0, 0, 0),
               s_plan ("C", s_day (2026, 4, 1), OPEN, 3000, 0, 0, 0, 0));
    in.nplans = 2;
    s_expect_error (&in, s_period (2026, 10),
                    "plan segments [2020-01-01, 2026-10-15) and "
                    "[2026-10-14, open) overlap");
    /*  Checked among segments meeting the period, even on days the line
        is not active.  */
    in.activated_on = s_day (2026, 10, 20);
    s_expect_error (&in, s_period (2026, 10), "overlap");
    in.activated_on = s_day (2020, 1, 1);
    in.terminated_on = s_day (2026, 10, 1);
    s_expect_error (&in, s_period (2026, 10), "overlap");
    /*  ...but not in later periods the overlap does not reach.  */
    bf_bill_t bill;
    char err[128];
    assert_int_equal (bf_rating_rate (&in, s_period (2026, 11), &bill, err, sizeof err), 0);
    assert_false (bill.has_bill);
    in.terminated_on = OPEN;
    plans_[0].from = s_day (2026, 1, 1);
    plans_[0].to = s_day (2026, 3, 1);
    plans_[1].from = s_day (2026, 2, 1);
    plans_[1].to = s_day (2026, 4, 1);
    s_expect_error (&in, s_period (2026, 2), "overlap");
    /*  An overlap in February does not stop the bills of March (only B
        meets it) and April (only C).  */
    s_rate (&in, s_period (2026, 3), &bill);
    EXPECT_LINES (&bill, 1100, { "PLAN:B", 1000 }, { "VAT", 100 });
    in.nplans = 3;
    s_rate (&in, s_period (2026, 4), &bill);
    EXPECT_LINES (&bill, 3300, { "PLAN:C", 3000 }, { "VAT", 300 });

    /*  Identical segments, and a segment inside another.  */
    bf_rating_plan_t many[40];
    for (int i = 0; i < 40; i++)
        many[i]
            = s_plan ("M", s_day (2026, 5, 1 + i % 31), s_day (2026, 5, 2 + i % 31), 0, 0, 0, 0, 0);
    in.plans = many;
    in.nplans = 31; /* one per day of May: fine */
    s_rate (&in, s_period (2026, 5), &bill);
    assert_int_equal (bill.nlines, 31);
    in.nplans = 32; /* 32nd = 1 May again */
    s_expect_error (&in, s_period (2026, 5),
                    "plan segments [2026-05-01, 2026-05-02) and "
                    "[2026-05-01, 2026-05-02) overlap");
    in.nplans = 40;
    s_expect_error (&in, s_period (2026, 5), "overlap");
    many[0].to = OPEN;
    in.nplans = 2;
    s_expect_error (&in, s_period (2026, 5), "overlap");
}

static void
test_plan_errors (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("OLD_99", s_day (2020, 1, 1), s_day (2026, 10, 11), 1000, 0, 0, 0, 0),
               s_plan ("NEW", s_day (2026, 10, 11), OPEN, 1000, 0, 0, 0, 0));
    plans_[0].known = false;
    s_expect_error (&in, s_period (2026, 10), "unknown plan OLD_99");
    /*  An unknown plan on days the line is not active does not count:
        NEW alone, 21 days: 677, VAT 67, T = 744.  */
    in.activated_on = s_day (2026, 10, 11);
    in.customer_since = in.activated_on;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    EXPECT_LINES (&bill, 740, { "PLAN:NEW", 677 }, { "VAT", 67 }, { "ROUNDING", -4 });

    /*  Active 12th..18th while NEW starts on the 20th: no counted segment.  */
    plans_[0].known = true;
    plans_[1].from = s_day (2026, 10, 20);
    in.activated_on = s_day (2026, 10, 12);
    in.terminated_on = s_day (2026, 10, 19);
    s_expect_error (&in, s_period (2026, 10), "active for 7 days of the period but no plan");

    /*  Terminated in August with usage in October: a plan segment that
        meets October does not help, the line is not active.  */
    in.activated_on = s_day (2020, 1, 1);
    in.terminated_on = s_day (2026, 9, 1);
    in.used_voice_sec = 1;
    s_expect_error (&in, s_period (2026, 10), "usage in a period without any plan segment");
    in.nplans = 1;
    plans_[0].to = s_day (2026, 9, 1);
    s_expect_error (&in, s_period (2026, 10), "usage in a period without any plan segment");
    /*  ...also when there would be no bill, or a bill of arrears only.  */
    in.used_voice_sec = 0;
    in.used_data_mb = 1;
    s_expect_error (&in, s_period (2026, 10), "usage in a period without any plan segment");
    in.used_data_mb = 0;
    in.has_arrears = true;
    in.used_sms = 3;
    s_expect_error (&in, s_period (2026, 10), "usage in a period without any plan segment");
    in.used_sms = 0;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (bill.nlines, 0);

    /*  Bad codes of counted segments.  */
    in = s_input ();
    in.plans = plans_;
    in.nplans = 1;
    plans_[0] = s_plan ("A B", s_day (2020, 1, 1), OPEN, 1000, 0, 0, 0, 0);
    s_expect_error (&in, s_period (2026, 10), "invalid plan code");
    plans_[0].plan_code = NULL;
    s_expect_error (&in, s_period (2026, 10), "invalid plan code");
    plans_[0].plan_code = "";
    s_expect_error (&in, s_period (2026, 10), "invalid plan code");
    plans_[0].plan_code = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"; /* 33 */
    s_expect_error (&in, s_period (2026, 10), "invalid plan code");
    plans_[0].plan_code = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"; /* 32 */
    s_rate (&in, s_period (2026, 10), &bill);
    assert_string_equal (bill.lines[0].code, "PLAN:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
}

static void
test_addon_errors (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 1000, 0, 0, 0, 0));
    SET_ADDONS (in, s_addon ("GONE", s_day (2020, 1, 1), s_day (2026, 10, 1), 100),
                s_addon ("NEW", s_day (2026, 10, 5), OPEN, 100));
    addons_[0].known = false;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill); /* not counted: ignored */
    addons_[1].known = false;
    s_expect_error (&in, s_period (2026, 10), "unknown add-on NEW");
    addons_[1].known = true;
    addons_[1].addon_code = "bad/code";
    s_expect_error (&in, s_period (2026, 10), "add-on subscription 1 with an invalid add-on code");
    addons_[1].addon_code = "NEW";
    addons_[1].monthly_fee = -1;
    s_expect_error (&in, s_period (2026, 10), "add-on NEW: monthly_fee -1 outside 0..");
    addons_[1].monthly_fee = 100;
    addons_[1].to = addons_[1].from;
    s_expect_error (&in, s_period (2026, 10), "add-on subscription 1: empty range");
}

static void
test_too_many_lines (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    in.terminated_on = s_day (2026, 1, 1);
    bf_rating_charge_t charges[BF_RATING_MAX_LINES + 1];
    for (size_t i = 0; i < BF_RATING_MAX_LINES + 1; i++)
        charges[i] = s_charge (BF_CHARGE_MICRO_PAYMENT, 10);
    in.charges = charges;
    in.ncharges = BF_RATING_MAX_LINES;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (bill.nlines, BF_RATING_MAX_LINES);
    assert_int_equal (bill.total, 10 * BF_RATING_MAX_LINES);
    in.ncharges = BF_RATING_MAX_LINES + 1;
    s_expect_error (&in, s_period (2026, 10), "too many bill lines (at most 96)");
    /*  The 97th line may be a fixed one.  */
    in.ncharges = BF_RATING_MAX_LINES;
    in.has_arrears = true;
    in.arrears = 10;
    s_expect_error (&in, s_period (2026, 10), "too many bill lines");
    charges[0].amount = 11;
    in.has_arrears = false;
    in.arrears = 0;
    s_expect_error (&in, s_period (2026, 10), "too many bill lines"); /* ROUNDING */

    /*  Counted add-ons beyond the limit.  */
    in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 0, 0, 0, 0, 0));
    bf_rating_addon_t addons[BF_RATING_MAX_LINES + 1];
    for (size_t i = 0; i < BF_RATING_MAX_LINES + 1; i++)
        addons[i] = s_addon ("X", s_day (2020, 1, 1), OPEN, 0);
    in.addons = addons;
    in.naddons = BF_RATING_MAX_LINES - 1;
    s_rate (&in, s_period (2026, 10), &bill);
    assert_int_equal (bill.nlines, BF_RATING_MAX_LINES); /* the plan, 95 add-ons */
    in.naddons = BF_RATING_MAX_LINES;
    s_expect_error (&in, s_period (2026, 10), "too many bill lines");
    in.naddons = BF_RATING_MAX_LINES + 1;
    s_expect_error (&in, s_period (2026, 10), "too many bill lines");
}

static void
test_input_errors (void **state)
{
    (void)state;
    bf_rating_input_t in = s_input ();
    SET_PLANS (in, s_plan ("P", s_day (2020, 1, 1), OPEN, 1000, 0, 0, 0, 0));
    SET_CHARGES (in, s_charge (BF_CHARGE_CONTENT, 100));
    bf_period_t oct = s_period (2026, 10);
    bf_bill_t bill;
    s_rate (&in, oct, &bill);

    const int bad_days[] = { 0, 1, 4, 6, 26, 28, 30, 31, -5 };
    for (size_t i = 0; i < sizeof bad_days / sizeof bad_days[0]; i++) {
        in.pay_day = bad_days[i];
        s_expect_error (&in, oct, "is not one of 5, 10, 15, 20, 25");
    }
    in.pay_day = 25;

    s_expect_error (&in, s_period (2026, 13), "period 2026-13 outside");
    s_expect_error (&in, s_period (2026, 0), "outside 1900-01..9999-12");
    s_expect_error (&in, s_period (1899, 12), "outside 1900-01..9999-12");
    s_rate (&in, s_period (9999, 12), &bill);
    s_rate (&in, s_period (1900, 1), &bill);

    in.welfare = (bf_welfare_t)7;
    s_expect_error (&in, oct, "unknown welfare grade 7");
    in.welfare = BF_WELFARE_NONE;
    in.family_active = -1;
    s_expect_error (&in, oct, "family_active -1 is negative");
    in.family_active = 0;
    in.terminated_on = in.activated_on;
    s_expect_error (&in, oct, "terminated_on 2020-01-01 not after activated_on 2020-01-01");
    in.terminated_on = OPEN;

    /*  Limits: 10^12 for money and quantities, 10^6 mwon for rates.  */
    in.used_data_mb = 1000000000001;
    s_expect_error (&in, oct,
                    "used_data_mb 1000000000001 outside 0..1000000000000 (the "
                    "importer's limit)");
    in.used_data_mb = -1;
    s_expect_error (&in, oct, "used_data_mb -1 outside");
    in.used_data_mb = 0;
    in.used_voice_sec = -1;
    s_expect_error (&in, oct, "used_voice_sec");
    in.used_voice_sec = 0;
    in.used_sms = INT64_MAX;
    s_expect_error (&in, oct, "used_sms");
    in.used_sms = 0;
    plans_[0].monthly_fee = 1000000000001;
    s_expect_error (&in, oct, "plan P: monthly_fee 1000000000001 outside 0..1000000000000");
    plans_[0].monthly_fee = 1000;
    plans_[0].data_rate_mwon = 1000001;
    s_expect_error (&in, oct, "plan P: data_rate_mwon 1000001 outside 0..1000000");
    plans_[0].data_rate_mwon = 0;
    plans_[0].voice_min = -2;
    s_expect_error (&in, oct, "plan P: voice_min -2 outside");
    plans_[0].voice_min = UNL;
    plans_[0].sms_rate_mwon = -1;
    s_expect_error (&in, oct, "plan P: sms_rate_mwon");
    plans_[0].sms_rate_mwon = 0;
    plans_[0].to = plans_[0].from;
    s_expect_error (&in, oct, "plan segment 0: empty range [2020-01-01, 2020-01-01)");
    plans_[0].to = OPEN;

    charges_[0].amount = -1;
    s_expect_error (&in, oct, "charge 0: CONTENT amount -1 outside 0..1000000000000");
    charges_[0].amount = 1000000000001;
    s_expect_error (&in, oct, "charge 0: CONTENT amount");
    charges_[0] = s_charge (BF_CHARGE_ADJUSTMENT, -1000000000001);
    s_expect_error (&in, oct,
                    "charge 0: ADJUSTMENT amount -1000000000001 outside "
                    "-1000000000000..1000000000000");
    charges_[0].amount = -1000000000000;
    s_rate (&in, oct, &bill);
    assert_int_equal (s_amount (&bill, "CREDIT_CARRY"), 1000000000000 - 1000);
    assert_int_equal (bill.total, 0);
    charges_[0].taxable = false;
    s_expect_error (&in, oct, "charge 0: ADJUSTMENT must be taxable");
    charges_[0] = s_charge (BF_CHARGE_DEVICE_INSTALLMENT, 5);
    charges_[0].taxable = true;
    s_expect_error (&in, oct, "charge 0: DEVICE_INSTALLMENT must not be taxable");
    charges_[0].kind = (bf_charge_kind_t)9;
    s_expect_error (&in, oct, "charge 0: unknown kind 9");
    charges_[0] = s_charge (BF_CHARGE_CONTENT, 100);

    in.arrears = 5;
    s_expect_error (&in, oct, "arrears 5 without an arrears row");
    in.has_arrears = true;
    in.arrears = -5;
    s_expect_error (&in, oct, "arrears -5 outside");
    in.arrears = 5;
    s_rate (&in, oct, &bill);

    SET_CONTRACTS (in, { s_day (2026, 1, 1), s_day (2025, 1, 1) });
    s_expect_error (&in, oct, "contract 0: empty range");

    /*  err may be NULL or tiny.  */
    assert_int_equal (bf_rating_rate (&in, oct, &bill, NULL, 0), -1);
    char tiny[4] = "xyz";
    assert_int_equal (bf_rating_rate (&in, oct, &bill, tiny, sizeof tiny), -1);
    assert_string_equal (tiny, "con");
}

/*  The largest values the importer lets through: no overflow (UBSan would
    say), exact amounts.  */
static void
test_extreme_values (void **state)
{
    (void)state;
    const int64_t T12 = 1000000000000;
    bf_rating_input_t in = s_input ();
    in.customer_since = s_day (1900, 1, 1);
    in.family_active = 5;
    in.welfare = BF_WELFARE_DISABLED;
    bf_rating_plan_t p = s_plan ("MAX", s_day (1900, 1, 1), OPEN, T12, T12, T12, T12, 1000000);
    bf_rating_plan_t z
        = s_plan ("ZERO", s_day (1900, 1, 1), s_day (2026, 10, 2), T12, 0, 0, 0, 1000000);
    p.from = z.to;
    SET_PLANS (in, z, p);
    SET_ADDONS (in, s_addon ("A", s_day (1900, 1, 1), OPEN, T12),
                s_addon ("B", s_day (1900, 1, 1), OPEN, T12));
    SET_CONTRACTS (in, { s_day (1900, 1, 1), OPEN });
    SET_CHARGES (in, s_charge (BF_CHARGE_DEVICE_INSTALLMENT, T12),
                 s_charge (BF_CHARGE_CONTENT, T12), s_charge (BF_CHARGE_ADJUSTMENT, T12));
    in.used_data_mb = in.used_voice_sec = in.used_sms = T12;
    in.has_arrears = true;
    in.arrears = T12;
    bf_bill_t bill;
    s_rate (&in, s_period (2026, 10), &bill);
    /*  ZERO: 1 day, T12/31 = 32258064516; MAX: 30 days = 967741935483.
        Allowances: data 0 + T12×30/31 = 967741935483 → 32258064517 over
        at 1000 won = 32258064517000; voice 0 + T12×60×30/31 ≥ used.  */
    int64_t plan_fee = 32258064516 + 967741935483;
    int64_t data = (T12 - 967741935483) * 1000;
    int64_t sms = data;
    int64_t contract = plan_fee * 25 / 100;
    int64_t loyalty = (plan_fee - contract - 5500) / 10;
    int64_t base = plan_fee - contract - 5500 - loyalty + 2 * T12;
    int64_t welfare = base * 35 / 100;
    int64_t s = plan_fee + data + sms + 2 * T12 - contract - 5500 - loyalty - welfare + 2 * T12;
    int64_t t = s + s / 10 + T12 + T12;
    EXPECT_LINES (&bill, t - t % 10, { "PLAN:ZERO", 32258064516 }, { "PLAN:MAX", 967741935483 },
                  { "OVERAGE_DATA", data }, { "OVERAGE_SMS", sms }, { "ADDON:A", T12 },
                  { "ADDON:B", T12 }, { "DISC_CONTRACT", -contract }, { "DISC_FAMILY", -5500 },
                  { "DISC_LOYALTY", -loyalty }, { "DISC_WELFARE", -welfare },
                  { "CHARGE:DEVICE_INSTALLMENT", T12 }, { "CHARGE:CONTENT", T12 },
                  { "CHARGE:ADJUSTMENT", T12 }, { "VAT", s / 10 }, { "ARREARS", T12 },
                  { "ROUNDING", -(t % 10) });
}

/*  --- Property test ------------------------------------------------------ */

/*  splitmix64: a fixed seed gives the same inputs on every run.  */
static uint64_t s_rng_state;

static uint64_t
s_rng (void)
{
    uint64_t z = (s_rng_state += UINT64_C (0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/*  Uniform enough in lo..hi for a test.  */
static int64_t
s_rnd (int64_t lo, int64_t hi)
{
    return lo + (int64_t)(s_rng () % (uint64_t)(hi - lo + 1));
}

static bool
s_chance (int one_in)
{
    return s_rng () % (uint64_t)one_in == 0;
}

/*  A money or quantity value: mostly small, sometimes at the limits.  */
static int64_t
s_rnd_amount (int64_t small)
{
    switch (s_rnd (0, 19)) {
        case 0:
            return 0;
        case 1:
            return 1000000000000;
        case 2:
            return s_rnd (0, 1000000000000);
        default:
            return s_rnd (0, small);
    }
}

#define S_GEN_PLANS     5
#define S_GEN_ADDONS    5
#define S_GEN_CONTRACTS 2
#define S_GEN_CHARGES   5

typedef struct {
    bf_rating_input_t input;
    bf_period_t period;
    bf_rating_plan_t plans[S_GEN_PLANS];
    bf_rating_addon_t addons[S_GEN_ADDONS];
    bf_rating_contract_t contracts[S_GEN_CONTRACTS];
    bf_rating_charge_t charges[S_GEN_CHARGES];
} s_case_t;

static void
s_generate (s_case_t *c)
{
    static const char *plan_codes[] = { "P0", "P1", "P2", "P3", "P4" };
    static const char *addon_codes[] = { "A", "B", "VCOLORING", "Z-1" };
    memset (c, 0, sizeof *c);
    c->period = s_period ((int)s_rnd (1990, 2110), (int)s_rnd (1, 12));
    bf_day_t first = bf_period_first_day (c->period);
    bf_rating_input_t *in = &c->input;
    in->subscriber_id = 1;
    in->activated_on = first + (bf_day_t)s_rnd (-60, 35);
    in->terminated_on = s_chance (2) ? OPEN : in->activated_on + (bf_day_t)s_rnd (1, 70);
    if (s_chance (8)) /* a 29 February, or near one */
        in->customer_since = s_day ((int)s_rnd (1960, 2096) / 4 * 4, 2, (int)s_rnd (27, 29));
    else
        in->customer_since = in->activated_on - (bf_day_t)s_rnd (0, 6000);
    in->family_active = (int)s_rnd (0, 7);
    in->welfare = (bf_welfare_t)s_rnd (0, 3);
    in->pay_day = (int)s_rnd (1, 5) * 5;

    /*  A chain of non-overlapping segments, sometimes with gaps, in random
        array order.  */
    size_t nplans = (size_t)s_rnd (0, S_GEN_PLANS);
    bf_day_t from = first + (bf_day_t)s_rnd (-40, 10);
    for (size_t i = 0; i < nplans; i++) {
        bf_rating_plan_t *p = &c->plans[i];
        p->from = from;
        p->to = (i + 1 == nplans && s_chance (2)) ? OPEN : from + (bf_day_t)s_rnd (1, 20);
        if (p->to != OPEN)
            from = p->to + (s_chance (3) ? (bf_day_t)s_rnd (1, 5) : 0);
        p->plan_code = plan_codes[i];
        p->known = true;
        p->monthly_fee = s_rnd_amount (100000);
        p->data_mb = s_chance (4) ? UNL : s_rnd_amount (20000);
        p->voice_min = s_chance (4) ? UNL : s_rnd_amount (600);
        p->sms = s_chance (4) ? UNL : s_rnd_amount (500);
        p->data_rate_mwon = s_chance (10) ? 1000000 : s_rnd (0, 30000);
        p->voice_rate_mwon = s_chance (10) ? 1000000 : s_rnd (0, 3000);
        p->sms_rate_mwon = s_chance (10) ? 1000000 : s_rnd (0, 30000);
    }
    for (size_t i = nplans; i > 1; i--) {
        size_t j = (size_t)s_rnd (0, (int64_t)i - 1);
        bf_rating_plan_t t = c->plans[i - 1];
        c->plans[i - 1] = c->plans[j];
        c->plans[j] = t;
    }
    in->plans = c->plans;
    in->nplans = nplans;

    in->naddons = (size_t)s_rnd (0, S_GEN_ADDONS);
    for (size_t i = 0; i < in->naddons; i++) {
        bf_rating_addon_t *a = &c->addons[i];
        a->from = first + (bf_day_t)s_rnd (-40, 35);
        a->to = s_chance (2) ? OPEN : a->from + (bf_day_t)s_rnd (1, 50);
        a->addon_code = addon_codes[s_rnd (0, 3)];
        a->known = true;
        a->monthly_fee = s_rnd_amount (10000);
    }
    in->addons = c->addons;
    in->ncontracts = (size_t)s_rnd (0, S_GEN_CONTRACTS);
    for (size_t i = 0; i < in->ncontracts; i++) {
        c->contracts[i].from = first + (bf_day_t)s_rnd (-40, 35);
        c->contracts[i].to = s_chance (3) ? OPEN : c->contracts[i].from + (bf_day_t)s_rnd (1, 50);
    }
    in->contracts = c->contracts;

    if (!s_chance (3)) {
        in->used_data_mb = s_chance (3) ? 0 : s_rnd_amount (30000);
        in->used_voice_sec = s_chance (3) ? 0 : s_rnd_amount (40000);
        in->used_sms = s_chance (3) ? 0 : s_rnd_amount (1000);
    }
    in->ncharges = s_chance (2) ? 0 : (size_t)s_rnd (1, S_GEN_CHARGES);
    for (size_t i = 0; i < in->ncharges; i++) {
        bf_charge_kind_t kind = (bf_charge_kind_t)s_rnd (0, 3);
        int64_t amount = s_rnd_amount (50000);
        if (kind == BF_CHARGE_ADJUSTMENT && s_chance (2))
            amount = s_chance (5) ? -1000000000000 : -s_rnd (0, 200000);
        c->charges[i] = s_charge (kind, amount);
    }
    in->charges = c->charges;
    in->has_arrears = s_chance (4);
    in->arrears = in->has_arrears && !s_chance (3) ? s_rnd_amount (50000) : 0;
}

/*  --- The reference model: the rules again, one day at a time ------------ */

typedef struct {
    int rc;
    bool has_bill;
    bf_day_t due_date;
    size_t nlines;
    s_line_t lines[BF_RATING_MAX_LINES];
    char codes[BF_RATING_MAX_LINES][BF_RATING_CODE_MAX];
} s_ref_t;

static void
s_ref_line (s_ref_t *ref, const char *prefix, const char *name, int64_t amount, bool always)
{
    if (amount == 0 && !always)
        return;
    assert_true (ref->nlines < BF_RATING_MAX_LINES); /* generator stays well below */
    snprintf (ref->codes[ref->nlines], BF_RATING_CODE_MAX, "%s%s", prefix, name ? name : "");
    ref->lines[ref->nlines].code = ref->codes[ref->nlines];
    ref->lines[ref->nlines].amount = amount;
    ref->nlines++;
}

static bool
s_in (bf_day_t day, bf_day_t from, bf_day_t to)
{
    return day >= from && day < to;
}

/*  Whole years by comparing month and day; someone who joined on
    29 February completes a year on 28 February when there is no 29th.  */
static int
s_ref_tenure (bf_day_t since, bf_day_t day)
{
    int y1, m1, d1, y2, m2, d2;
    bf_day_to_ymd (since, &y1, &m1, &d1);
    bf_day_to_ymd (day, &y2, &m2, &d2);
    int years = y2 - y1;
    if (m2 < m1 || (m2 == m1 && d2 < d1))
        years--;
    if (m1 == 2 && d1 == 29 && m2 == 2 && d2 == 28 && bf_days_in_month (y2, 2) == 28)
        years++;
    return years < 0 ? 0 : years;
}

static void
s_reference (const bf_rating_input_t *in, bf_period_t period, s_ref_t *ref)
{
    memset (ref, 0, sizeof *ref);
    int year = period.year, month = period.month;
    int64_t D = bf_days_in_month (year, month);
    bf_day_t first = bf_day_from_ymd (year, month, 1);
    int64_t active_days = 0, plan_days[S_GEN_PLANS] = { 0 }, addon_days[S_GEN_ADDONS] = { 0 };
    int64_t contract_days = 0;
    for (bf_day_t d = first; d < first + D; d++) {
        if (!s_in (d, in->activated_on, in->terminated_on))
            continue;
        active_days++;
        for (size_t i = 0; i < in->nplans; i++)
            plan_days[i] += s_in (d, in->plans[i].from, in->plans[i].to);
        for (size_t i = 0; i < in->naddons; i++)
            addon_days[i] += s_in (d, in->addons[i].from, in->addons[i].to);
        for (size_t i = 0; i < in->ncontracts; i++)
            contract_days += s_in (d, in->contracts[i].from, in->contracts[i].to);
    }
    if (contract_days > active_days)
        contract_days = active_days;
    size_t ncounted = 0;
    for (size_t i = 0; i < in->nplans; i++)
        ncounted += plan_days[i] > 0;
    bool used = in->used_data_mb || in->used_voice_sec || in->used_sms;
    if ((active_days > 0 || used) && ncounted == 0) {
        ref->rc = -1;
        return;
    }
    ref->has_bill = active_days > 0 || in->ncharges > 0 || in->has_arrears;
    int ny = month == 12 ? year + 1 : year, nm = month == 12 ? 1 : month + 1;
    ref->due_date = bf_day_from_ymd (ny, nm, in->pay_day);
    if (!ref->has_bill)
        return;

    /*  Plans by selection: the earliest not yet taken, each time.  */
    int64_t plan_fee = 0;
    int64_t allow[3] = { 0, 0, 0 };
    bool taken[S_GEN_PLANS] = { false };
    const bf_rating_plan_t *latest = NULL;
    for (size_t k = 0; k < ncounted; k++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < in->nplans; i++)
            if (plan_days[i] > 0 && !taken[i]
                && (best == SIZE_MAX || in->plans[i].from < in->plans[best].from))
                best = i;
        taken[best] = true;
        const bf_rating_plan_t *p = &in->plans[best];
        int64_t fee = p->monthly_fee * plan_days[best] / D;
        s_ref_line (ref, "PLAN:", p->plan_code, fee, true);
        plan_fee += fee;
        int64_t per_month[3]
            = { p->data_mb, p->voice_min == UNL ? UNL : p->voice_min * 60, p->sms };
        for (int kind = 0; kind < 3; kind++)
            if (allow[kind] == UNL || per_month[kind] == UNL)
                allow[kind] = UNL;
            else
                allow[kind] += per_month[kind] * plan_days[best] / D;
        latest = p;
    }
    int64_t overage = 0;
    if (latest) {
        const int64_t usage[3] = { in->used_data_mb, in->used_voice_sec, in->used_sms };
        const int64_t rate[3]
            = { latest->data_rate_mwon, latest->voice_rate_mwon, latest->sms_rate_mwon };
        const char *names[3] = { "OVERAGE_DATA", "OVERAGE_VOICE", "OVERAGE_SMS" };
        for (int kind = 0; kind < 3; kind++) {
            int64_t amount = 0;
            if (allow[kind] != UNL && usage[kind] > allow[kind])
                amount = (usage[kind] - allow[kind]) * rate[kind] / 1000;
            s_ref_line (ref, names[kind], NULL, amount, false);
            overage += amount;
        }
    }

    /*  Add-ons by selection on (from, code, array index).  */
    int64_t addon_fee = 0;
    bool used_addon[S_GEN_ADDONS] = { false };
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < in->naddons; i++) {
            if (addon_days[i] == 0 || used_addon[i])
                continue;
            if (best == SIZE_MAX)
                best = i;
            else {
                const bf_rating_addon_t *a = &in->addons[i], *b = &in->addons[best];
                int cmp = strcmp (a->addon_code, b->addon_code);
                if (a->from < b->from || (a->from == b->from && cmp < 0))
                    best = i;
            }
        }
        if (best == SIZE_MAX)
            break;
        used_addon[best] = true;
        int64_t fee = in->addons[best].monthly_fee * addon_days[best] / D;
        s_ref_line (ref, "ADDON:", in->addons[best].addon_code, fee, true);
        addon_fee += fee;
    }

    int64_t contract = active_days ? plan_fee * 25 * contract_days / (100 * active_days) : 0;
    int n = in->family_active;
    int64_t family = n >= 5 ? 5500 : n == 4 ? 4400 : n == 3 ? 3300 : n == 2 ? 2200 : 0;
    if (family > plan_fee - contract)
        family = plan_fee - contract;
    int tenure = s_ref_tenure (in->customer_since, first + (bf_day_t)D - 1);
    int64_t loyalty = (plan_fee - contract - family)
                      * (tenure >= 10  ? 10
                         : tenure >= 5 ? 5
                                       : 0)
                      / 100;
    int64_t base = plan_fee - contract - family - loyalty + addon_fee;
    int64_t welfare = 0;
    if (in->welfare == BF_WELFARE_DISABLED)
        welfare = base * 35 / 100;
    else if (in->welfare == BF_WELFARE_LOW_INCOME)
        welfare = base < 26000 ? base : 26000;
    else if (in->welfare == BF_WELFARE_SENIOR)
        welfare = base / 2 < 11000 ? base / 2 : 11000;
    s_ref_line (ref, "DISC_CONTRACT", NULL, -contract, false);
    s_ref_line (ref, "DISC_FAMILY", NULL, -family, false);
    s_ref_line (ref, "DISC_LOYALTY", NULL, -loyalty, false);
    s_ref_line (ref, "DISC_WELFARE", NULL, -welfare, false);

    static const char *kinds[] = { "CHARGE:DEVICE_INSTALLMENT", "CHARGE:MICRO_PAYMENT",
                                   "CHARGE:CONTENT", "CHARGE:ADJUSTMENT" };
    int64_t taxable = 0, other = 0;
    for (size_t i = 0; i < in->ncharges; i++) {
        s_ref_line (ref, kinds[in->charges[i].kind], NULL, in->charges[i].amount, true);
        if (in->charges[i].kind >= BF_CHARGE_CONTENT)
            taxable += in->charges[i].amount;
        else
            other += in->charges[i].amount;
    }
    int64_t s = plan_fee + addon_fee + overage - contract - family - loyalty - welfare + taxable;
    if (s < 0) {
        s_ref_line (ref, "CREDIT_CARRY", NULL, -s, false);
        s = 0;
    }
    s_ref_line (ref, "VAT", NULL, s / 10, false);
    s_ref_line (ref, "ARREARS", NULL, in->arrears, false);
    int64_t t = s + s / 10 + other + in->arrears;
    s_ref_line (ref, "ROUNDING", NULL, -(t % 10), false);
}

/*  Step of a line code, for the order check; -1 when unknown.  */
static int
s_step (const char *code)
{
    static const char *steps[] = { "PLAN:",        "OVERAGE_DATA",  "OVERAGE_VOICE", "OVERAGE_SMS",
                                   "ADDON:",       "DISC_CONTRACT", "DISC_FAMILY",   "DISC_LOYALTY",
                                   "DISC_WELFARE", "CHARGE:",       "CREDIT_CARRY",  "VAT",
                                   "ARREARS",      "ROUNDING" };
    for (int i = 0; i < (int)(sizeof steps / sizeof steps[0]); i++) {
        size_t len = strlen (steps[i]);
        bool prefix = steps[i][len - 1] == ':';
        if (prefix ? strncmp (code, steps[i], len) == 0 : strcmp (code, steps[i]) == 0)
            return i;
    }
    return -1;
}

/*  The invariants, checked without the reference.  */
static void
s_check_invariants (const bf_bill_t *bill)
{
    int64_t sum = 0;
    int last = -1;
    for (size_t i = 0; i < bill->nlines; i++) {
        const bf_bill_line_t *line = &bill->lines[i];
        int step = s_step (line->code);
        assert_true (step >= 0);
        bool repeats = step == 0 || step == 4 || step == 9;
        assert_true (step > last || (repeats && step == last));
        last = step;
        if (!repeats)
            assert_true (line->amount != 0);
        if (step >= 5 && step <= 8)
            assert_true (line->amount < 0);
        if (step >= 10 && step <= 12)
            assert_true (line->amount > 0);
        if (step == 13)
            assert_true (line->amount < 0 && line->amount > -10);
        if (step == 0 || step == 4)
            assert_true (line->amount >= 0);
        sum += line->amount;
    }
    assert_true (sum == bill->total);
    assert_true (bill->total >= 0);
    assert_true (bill->total % 10 == 0);
}

static void
test_property (void **state)
{
    (void)state;
    long iterations = 300000;
    const char *env = getenv ("BF_RATING_ITERATIONS");
    if (env && atol (env) > 0)
        iterations = atol (env);
    s_rng_state = UINT64_C (20261031);
    static s_case_t c;
    static bf_bill_t bill;
    static s_ref_t ref;
    long bills = 0, errors = 0, none = 0;
    for (long i = 0; i < iterations; i++) {
        s_generate (&c);
        char err[256] = "";
        int rc = bf_rating_rate (&c.input, c.period, &bill, err, sizeof err);
        s_reference (&c.input, c.period, &ref);
        if (rc != ref.rc)
            fail_msg ("case %ld: rc %d, reference %d (%s)", i, rc, ref.rc, err);
        if (rc != 0) {
            errors++;
            continue;
        }
        assert_int_equal (bill.has_bill, ref.has_bill);
        assert_int_equal (bill.due_date, ref.due_date);
        if (!bill.has_bill) {
            none++;
            continue;
        }
        bills++;
        s_check_invariants (&bill);
        int64_t total = 0;
        for (size_t k = 0; k < ref.nlines; k++)
            total += ref.lines[k].amount;
        if (total % 10 != 0 || total < 0)
            fail_msg ("case %ld: reference total %" PRId64, i, total);
        if (bill.nlines != ref.nlines || bill.total != total) {
            print_message ("case %ld\n", i);
            s_expect_lines (&bill, ref.lines, ref.nlines, total);
        }
        for (size_t k = 0; k < ref.nlines; k++)
            if (strcmp (bill.lines[k].code, ref.lines[k].code) != 0
                || bill.lines[k].amount != ref.lines[k].amount) {
                print_message ("case %ld\n", i);
                s_expect_lines (&bill, ref.lines, ref.nlines, total);
            }
    }
    /*  The generator must reach every outcome often.  */
    assert_true (bills > iterations / 3);
    assert_true (errors > iterations / 100);
    assert_true (none > iterations / 200);
    print_message ("# %ld cases: %ld bills, %ld without a bill, %ld errors\n", iterations, bills,
                   none, errors);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_worked_example),
        cmocka_unit_test (test_worked_example_by_hand),
        cmocka_unit_test (test_proration_segment_ends),
        cmocka_unit_test (test_zero_plan_line_listed),
        cmocka_unit_test (test_unlimited_segment),
        cmocka_unit_test (test_rates_latest_segment),
        cmocka_unit_test (test_activation_mid_month),
        cmocka_unit_test (test_termination_mid_month),
        cmocka_unit_test (test_contract_partial),
        cmocka_unit_test (test_family_sizes),
        cmocka_unit_test (test_tenure_years),
        cmocka_unit_test (test_loyalty),
        cmocka_unit_test (test_welfare),
        cmocka_unit_test (test_credit_carry),
        cmocka_unit_test (test_rounding),
        cmocka_unit_test (test_charges_in_row_order),
        cmocka_unit_test (test_addon_order),
        cmocka_unit_test (test_charges_only_bill),
        cmocka_unit_test (test_arrears_only_bill),
        cmocka_unit_test (test_no_bill),
        cmocka_unit_test (test_february),
        cmocka_unit_test (test_due_dates),
        cmocka_unit_test (test_overlap_errors),
        cmocka_unit_test (test_plan_errors),
        cmocka_unit_test (test_addon_errors),
        cmocka_unit_test (test_too_many_lines),
        cmocka_unit_test (test_input_errors),
        cmocka_unit_test (test_extreme_values),
        cmocka_unit_test (test_property),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
