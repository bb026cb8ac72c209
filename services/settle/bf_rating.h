/*  bf_rating — one subscriber's monthly bill, exactly as docs/billing-rules.md
    says: pure functions, integer arithmetic, no I/O, no allocation.

    The caller (settle's worker) loads a subscriber's inputs for one period
    into bf_rating_input_t and gets the bill's lines in billing-rules.md order.
    Rules the contract leaves open are fixed in docs/rating.md.  */

#ifndef BF_RATING_H_INCLUDED
#define BF_RATING_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_date.h"

/*  Unlimited allowance (a NULL data_mb / voice_min / sms in the plan).  */
#define BF_RATING_UNLIMITED (-1)

/*  Most lines one bill may have; more is a rating error.  */
#define BF_RATING_MAX_LINES 96
#define BF_RATING_CODE_MAX  48

typedef enum {
    BF_WELFARE_NONE = 0,
    BF_WELFARE_DISABLED,
    BF_WELFARE_LOW_INCOME,
    BF_WELFARE_SENIOR,
} bf_welfare_t;

typedef enum {
    BF_CHARGE_DEVICE_INSTALLMENT = 0,
    BF_CHARGE_MICRO_PAYMENT,
    BF_CHARGE_CONTENT,
    BF_CHARGE_ADJUSTMENT,
} bf_charge_kind_t;

/*  One plan assignment [from, to) with its plan's terms. known is false when
    the assignment names a plan that does not exist (a rating error if the
    segment counts).  */
typedef struct {
    bf_day_t from, to; /* to = BF_DAY_OPEN when open-ended */
    const char *plan_code;
    const char *name; /* the plan's catalogue name (bill_line.label); not used in rating */
    bool known;
    int64_t monthly_fee;             /* won */
    int64_t data_mb, voice_min, sms; /* allowances, or BF_RATING_UNLIMITED */
    int64_t data_rate_mwon, voice_rate_mwon, sms_rate_mwon;
} bf_rating_plan_t;

typedef struct {
    bf_day_t from, to;
    const char *addon_code;
    const char *name; /* the add-on's catalogue name (bill_line.label); not used in rating */
    bool known;
    int64_t monthly_fee;
} bf_rating_addon_t;

typedef struct {
    bf_day_t from, to; /* a SELECTIVE_25 contract */
} bf_rating_contract_t;

typedef struct {
    bf_charge_kind_t kind;
    int64_t amount; /* won; negative only for ADJUSTMENT */
    bool taxable;
} bf_rating_charge_t;

typedef struct {
    int64_t subscriber_id;
    bf_day_t activated_on;
    bf_day_t terminated_on; /* BF_DAY_OPEN when not terminated */
    bf_day_t customer_since;
    /*  n of DISC_FAMILY: members of the subscriber's family (the subscriber
        included) with active_days > 0 in the period; 0 when no family.  */
    int family_active;
    bf_welfare_t welfare;
    int pay_day; /* 5, 10, 15, 20 or 25 */

    const bf_rating_plan_t *plans; /* any order; all of the subscriber's */
    size_t nplans;
    const bf_rating_addon_t *addons;
    size_t naddons;
    const bf_rating_contract_t *contracts;
    size_t ncontracts;

    int64_t used_data_mb, used_voice_sec, used_sms; /* sums for the period */
    const bf_rating_charge_t *charges;              /* in row order */
    size_t ncharges;
    bool has_arrears; /* an arrears row exists (even of 0) */
    int64_t arrears;
} bf_rating_input_t;

typedef struct {
    char code[BF_RATING_CODE_MAX]; /* "PLAN:LTE_43", "VAT", ... */
    int64_t amount;                /* won, signed */
} bf_bill_line_t;

typedef struct {
    bool has_bill; /* false: billing-rules says "no bill" */
    int64_t total; /* = sum of lines; >= 0, multiple of 10 */
    bf_day_t due_date;
    size_t nlines;
    bf_bill_line_t lines[BF_RATING_MAX_LINES];
} bf_bill_t;

/*  Rates input for period into bill. Returns 0 (bill->has_bill tells whether
    there is a bill), or -1 with a one-line reason in err when the input breaks
    a rule the bill cannot be computed under: overlapping plan segments, an
    unknown plan or add-on in a counted segment, usage without any counted
    plan segment, an active subscriber without a plan segment, a value outside
    the importer's limits, too many lines. A -1 leaves *bill undefined.  */
int bf_rating_rate (const bf_rating_input_t *input, bf_period_t period, bf_bill_t *bill, char *err,
                    size_t errsize);

/*  Whole years of tenure from since to day (the docs/rating.md rule for
    29 February).  */
int bf_rating_tenure_years (bf_day_t since, bf_day_t day);

#endif
