/*  =========================================================================
    bd_generate - deterministic synthetic data for a Korean mobile operator

    Same (subscribers, period, seed) -> byte-identical rows on any machine.
    Every random choice comes from an integer-only generator (xoshiro256**
    seeded through splitmix64) keyed by (seed, subscriber id, purpose), so
    no floating point, no libc rand, no clock and no locale is involved.

    Memory stays flat: each table is one pass over ids 1..N that re-derives
    the subscriber's profile from its own seeded stream. The "core" profile
    (dates, status, plan segments) is a handful of draws and is re-derived
    by every table; everything only one table needs (contact details,
    add-ons, usage, ...) has its own stream, so a table pays only for what
    it emits and the tables stay independent of each other. Family groups
    are a pure function of the id as well: fixed blocks of consecutive ids
    whose layout comes from a block-seeded stream.

    The distributions, and the billing rules each one is there to exercise,
    are documented in docs/data-generation.md; keep the two in step.
    =========================================================================
*/

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bd_generate.h"
#include "bf_log.h"

//  --- Pseudo-random numbers ----------------------------------------------

//  One stream per (seed, key, purpose). Adding a purpose never shifts the
//  draws of another, so a change to (say) usage leaves subscribers alone.
typedef enum {
    S_CORE = 1, //  status, dates, welfare, plan segments
    S_CONTACT,  //  name, channels, email, quiet hours, pay day
    S_SURNAME,  //  own surname; family members borrow the head's
    S_FAMILY,   //  keyed by block: the block's family layout
    S_TOKEN,    //  push token bytes
    S_PHONE,    //  keyed by 0: the phone permutation's round keys
    S_ADDONS,
    S_CONTRACTS,
    S_USAGE,
    S_CHARGES,
    S_ARREARS,
} s_purpose_t;

typedef struct {
    uint64_t s[4];
} s_rng_t;

static inline uint64_t
s_mix64 (uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t
s_splitmix64 (uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    return s_mix64 (*state);
}

static inline uint64_t
s_rotl (uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

//  Keys are ids or block numbers (< 2^56), so (key << 8 | purpose) is
//  injective and distinct keys never share a stream.
static inline void
s_rng_seed (s_rng_t *self, uint64_t seed, uint64_t key, s_purpose_t purpose)
{
    uint64_t state = s_mix64 (seed + 0x6a09e667f3bcc909ULL) ^ ((key << 8) | (uint64_t)purpose);
    for (int i = 0; i < 4; i++)
        self->s[i] = s_splitmix64 (&state);
}

//  xoshiro256**
static inline uint64_t
s_next (s_rng_t *self)
{
    uint64_t *s = self->s;
    uint64_t result = s_rotl (s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl (s[3], 45);
    return result;
}

//  Uniform in [0, n) by multiply-shift of the high 32 bits: no division,
//  no rejection loop, and a bias below 2^-32 * n that no test can see.
static inline uint32_t
s_below (s_rng_t *self, uint32_t n)
{
    return (uint32_t)(((s_next (self) >> 32) * (uint64_t)n) >> 32);
}

//  Uniform in [lo, hi]; lo when the range is empty. Spans stay < 2^32.
static inline int64_t
s_range (s_rng_t *self, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)s_below (self, (uint32_t)(hi - lo + 1));
}

//  True with probability permille / 1000.
static inline bool
s_chance (s_rng_t *self, uint32_t permille)
{
    return s_below (self, 1000) < permille;
}

//  Index drawn by integer weights.
static int
s_pick (s_rng_t *self, const uint16_t *weights, int count)
{
    uint32_t total = 0;
    for (int i = 0; i < count; i++)
        total += weights[i];
    uint32_t r = s_below (self, total);
    for (int i = 0; i < count; i++) {
        if (r < weights[i])
            return i;
        r -= weights[i];
    }
    return count - 1;
}

#define S_COUNT(array) ((int)(sizeof (array) / sizeof ((array)[0])))

//  --- Reference data -------------------------------------------------------

#define S_UNLIMITED -1

typedef struct {
    const char *code;
    const char *name;
    int64_t fee;
    int64_t data_mb, voice_min, sms; //  S_UNLIMITED = NULL column
    int64_t data_rate, voice_rate, sms_rate;
} s_plan_t;

//  Korean rates are 22,528 mwon/MB, 1,980 mwon/s, 22,000 mwon/SMS; the
//  senior and teen plans differ slightly so that "rates come from the last
//  segment" is visible in the bills. LTE_43 and 5G_59 are the plans of the
//  worked example in billing-rules.md.
// clang-format off
static const s_plan_t s_plans[] = {
    { "LTE_33",     "LTE 베이직 33",        33000,   1536,        200,         100,
      22528, 1980, 22000 },
    { "LTE_43",     "LTE 스탠다드 43",      43000,   4096,        300,         300,
      22528, 1980, 22000 },
    { "LTE_49",     "LTE 데이터 안심 49",   49000,   6144,        S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
    { "LTE_69",     "LTE 데이터 무제한 69", 69000,   S_UNLIMITED, S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
    { "SENIOR_33",  "시니어 안심 33",       33000,   2048,        400,         S_UNLIMITED,
      22528, 1650, 20000 },
    { "5G_TEEN_45", "5G 청소년 45",         45000,   9216,        300,         S_UNLIMITED,
      20480, 1800, 22000 },
    { "5G_49",      "5G 슬림 49",           49000,   8192,        S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
    { "5G_59",      "5G 베이직 59",         59000,   12288,       S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
    { "5G_69",      "5G 스탠다드 69",       69000,   24576,       S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
    { "5G_89",      "5G 스페셜 무제한 89",  89000,   S_UNLIMITED, S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
    { "5G_130",     "5G 플래티넘 130",      130000,  S_UNLIMITED, S_UNLIMITED, S_UNLIMITED,
      22528, 1980, 22000 },
};
// clang-format on
//  Popularity in percent, in s_plans order.
static const uint16_t s_plan_weights[] = { 9, 10, 8, 6, 4, 4, 12, 16, 15, 11, 5 };
#define S_PLAN_SENIOR 4

typedef struct {
    const char *code;
    const char *name;
    int64_t fee;
} s_addon_t;

//  SPAM_BLOCK is free: its ADDON: line must still appear, with 0 won.
static const s_addon_t s_addons[] = {
    { "VCOLORING", "V컬러링", 3300 },
    { "SPAM_BLOCK", "스팸차단", 0 },
    { "FAMILY_LOC", "가족 위치 알림", 2200 },
    { "MUSIC", "음악 스트리밍", 4400 },
    { "PHONE_CARE", "폰케어 분실·파손 보험", 5500 },
    { "OTT_PACK", "OTT 팩", 9900 },
};
static const uint16_t s_addon_weights[] = { 30, 20, 8, 15, 17, 10 };

//  Surnames with their share per mille of the population (2015 census,
//  rounded), and a common romanisation for email addresses.
typedef struct {
    const char *hangul;
    const char *roman;
} s_name_t;

static const s_name_t s_surnames[] = {
    { "김", "kim" },   { "이", "lee" },   { "박", "park" }, { "최", "choi" }, { "정", "jung" },
    { "강", "kang" },  { "조", "cho" },   { "윤", "yoon" }, { "장", "jang" }, { "임", "lim" },
    { "한", "han" },   { "오", "oh" },    { "서", "seo" },  { "신", "shin" }, { "권", "kwon" },
    { "황", "hwang" }, { "안", "ahn" },   { "송", "song" }, { "전", "jeon" }, { "홍", "hong" },
    { "유", "yoo" },   { "고", "ko" },    { "문", "moon" }, { "양", "yang" }, { "손", "son" },
    { "배", "bae" },   { "백", "baek" },  { "허", "heo" },  { "남", "nam" },  { "심", "shim" },
    { "노", "noh" },   { "하", "ha" },    { "곽", "kwak" }, { "성", "sung" }, { "차", "cha" },
    { "주", "joo" },   { "우", "woo" },   { "구", "koo" },  { "민", "min" },  { "류", "ryu" },
    { "나", "na" },    { "진", "jin" },   { "지", "ji" },   { "엄", "eom" },  { "채", "chae" },
    { "원", "won" },   { "천", "cheon" }, { "방", "bang" }, { "공", "kong" }, { "현", "hyun" },
};
static const uint16_t s_surname_weights[] = {
    215, 147, 84, 47, 43, 23, 21, 21, 20, 17, 15, 15, 15, 14, 14, 14, 13,
    13,  13,  11, 11, 9,  9,  9,  9,  8,  8,  6,  6,  5,  5,  5,  4,  4,
    4,   4,   4,  4,  3,  3,  3,  3,  3,  3,  2,  3,  2,  2,  2,  2,
};

//  Two-syllable given names across generations, equally likely.
static const s_name_t s_given_names[] = {
    { "민준", "minjun" },   { "서준", "seojun" },    { "도윤", "doyun" },
    { "예준", "yejun" },    { "시우", "siwoo" },     { "하준", "hajun" },
    { "주원", "juwon" },    { "지호", "jiho" },      { "지후", "jihu" },
    { "준우", "junwoo" },   { "준서", "junseo" },    { "도현", "dohyun" },
    { "건우", "gunwoo" },   { "현우", "hyunwoo" },   { "우진", "woojin" },
    { "선우", "sunwoo" },   { "서진", "seojin" },    { "민재", "minjae" },
    { "현준", "hyunjun" },  { "연우", "yeonwoo" },   { "유준", "yujun" },
    { "정우", "jungwoo" },  { "승우", "seungwoo" },  { "승현", "seunghyun" },
    { "시윤", "siyun" },    { "준혁", "junhyuk" },   { "은우", "eunwoo" },
    { "지환", "jihwan" },   { "승민", "seungmin" },  { "지훈", "jihoon" },
    { "민우", "minwoo" },   { "재윤", "jaeyun" },    { "수호", "suho" },
    { "태윤", "taeyun" },   { "동현", "donghyun" },  { "상훈", "sanghoon" },
    { "성민", "sungmin" },  { "정훈", "junghoon" },  { "영수", "youngsoo" },
    { "영호", "youngho" },  { "영철", "youngchul" }, { "성호", "sungho" },
    { "재현", "jaehyun" },  { "준호", "junho" },     { "광수", "kwangsoo" },
    { "진호", "jinho" },    { "서연", "seoyeon" },   { "서윤", "seoyun" },
    { "지우", "jiwoo" },    { "서현", "seohyun" },   { "민서", "minseo" },
    { "하은", "haeun" },    { "하윤", "hayun" },     { "윤서", "yunseo" },
    { "지유", "jiyu" },     { "지민", "jimin" },     { "채원", "chaewon" },
    { "수아", "sua" },      { "지아", "jia" },       { "지윤", "jiyun" },
    { "은서", "eunseo" },   { "다은", "daeun" },     { "예은", "yeeun" },
    { "수빈", "subin" },    { "소율", "soyul" },     { "예린", "yerin" },
    { "하린", "harin" },    { "지원", "jiwon" },     { "유나", "yuna" },
    { "시은", "sieun" },    { "채은", "chaeeun" },   { "윤아", "yoona" },
    { "유진", "yujin" },    { "가은", "gaeun" },     { "미경", "mikyung" },
    { "미숙", "misook" },   { "영희", "younghee" },  { "순자", "soonja" },
    { "정숙", "jungsook" }, { "은정", "eunjung" },   { "지영", "jiyoung" },
    { "수진", "sujin" },    { "혜진", "hyejin" },    { "미영", "miyoung" },
    { "경희", "kyunghee" }, { "현주", "hyunju" },    { "은영", "eunyoung" },
    { "선영", "sunyoung" }, { "정희", "junghee" },   { "민지", "minji" },
    { "수연", "suyeon" },
};

static const char *const s_domains[] = {
    "naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net", "nate.com",
};
static const uint16_t s_domain_weights[] = { 40, 25, 12, 8, 10, 5 };

#define S_CH_EMAIL 1
#define S_CH_SMS   2
#define S_CH_PUSH  4
//  Channel sets as bit masks and as text, in canonical EMAIL, SMS, PUSH order.
static const int s_channel_sets[] = {
    S_CH_SMS,
    S_CH_EMAIL,
    S_CH_PUSH,
    S_CH_EMAIL | S_CH_SMS,
    S_CH_EMAIL | S_CH_PUSH,
    S_CH_SMS | S_CH_PUSH,
    S_CH_EMAIL | S_CH_SMS | S_CH_PUSH,
};
static const char *const s_channel_texts[] = {
    "SMS", "EMAIL", "PUSH", "EMAIL+SMS", "EMAIL+PUSH", "SMS+PUSH", "EMAIL+SMS+PUSH",
};
static const uint16_t s_channel_weights[] = { 22, 12, 14, 10, 18, 12, 12 };

static const int s_pay_days[] = { 5, 10, 15, 20, 25 };
static const uint16_t s_pay_day_weights[] = { 8, 22, 12, 13, 45 };

typedef enum {
    S_WELFARE_NONE = 0,
    S_WELFARE_DISABLED,
    S_WELFARE_LOW_INCOME,
    S_WELFARE_SENIOR,
} s_welfare_t;
static const char *const s_welfare_texts[] = { NULL, "DISABLED", "LOW_INCOME", "SENIOR" };

//  Device prices in won and instalment months: DEVICE_INSTALLMENT is
//  floor(price / months), the way a handset plan splits a price.
static const int64_t s_device_prices[] = {
    1155000, 1250000, 1353000, 1799600, 990000, 649000, 399300, 275000,
};
static const int64_t s_device_months[] = { 24, 24, 30, 36 };
static const int64_t s_content_prices[] = {
    1100, 2200, 3300, 4400, 4950, 5500, 7900, 9900, 10900, 13900, 16500,
};

typedef enum {
    S_DEVICE_INSTALLMENT = 0,
    S_MICRO_PAYMENT,
    S_CONTENT,
    S_ADJUSTMENT,
} s_charge_kind_t;
static const char *const s_charge_kinds[] = {
    "DEVICE_INSTALLMENT",
    "MICRO_PAYMENT",
    "CONTENT",
    "ADJUSTMENT",
};
static const uint16_t s_charge_kind_weights[] = { 35, 25, 25, 15 };

static const char *const s_usage_kinds[] = { "DATA_MB", "VOICE_SEC", "SMS" };

//  Every weight table must match its value table, or s_pick would index
//  past the values.
_Static_assert(S_COUNT (s_plan_weights) == S_COUNT (s_plans), "plan weights");
_Static_assert(S_COUNT (s_addon_weights) == S_COUNT (s_addons), "add-on weights");
_Static_assert(S_COUNT (s_addons) <= 16, "add-on bit mask");
_Static_assert(S_COUNT (s_surname_weights) == S_COUNT (s_surnames), "surname weights");
_Static_assert(S_COUNT (s_domain_weights) == S_COUNT (s_domains), "domain weights");
_Static_assert(S_COUNT (s_channel_weights) == S_COUNT (s_channel_sets)
                   && S_COUNT (s_channel_texts) == S_COUNT (s_channel_sets),
               "channel sets");
_Static_assert(S_COUNT (s_pay_day_weights) == S_COUNT (s_pay_days), "pay day weights");
_Static_assert(S_COUNT (s_charge_kind_weights) == S_COUNT (s_charge_kinds), "charge weights");

//  --- Rates, per mille unless stated; docs/data-generation.md quotes them.

//  Status (per 10,000): the rest are active all month.
#define S_PM_GONE        80  //  terminated before the period
#define S_PM_NEW         150 //  activated inside the period
#define S_PM_LEAVING     150 //  terminated inside the period
#define S_PM_NEW_LEAVING 20  //  both inside the period

#define S_PM_DISABLED   20
#define S_PM_LOW_INCOME 15
#define S_PM_SENIOR     15

#define S_PM_PAST_CHANGE 20  //  an extra segment that ended before the period
#define S_PM_ONE_CHANGE  100 //  two segments meeting inside the period
#define S_PM_TWO_CHANGES 10  //  three segments

#define S_PM_CONTRACT     300
#define S_PM_ARREARS      50
#define S_PM_GONE_ARREARS 200
#define S_PM_GONE_CHARGES 600

#define S_PM_QUIET           200
#define S_PM_QUIET_OVERNIGHT 650
#define S_PM_SPARE_EMAIL     600 //  has an email without the EMAIL channel

#define S_BLOCK         20 //  ids per family block
#define S_BLOCK_SINGLES 12 //  so 8 of 20 ids (40 %) are in families

//  --- Generator state ---------------------------------------------------------

typedef enum {
    S_REGULAR = 0,
    S_GONE,
    S_NEW,
    S_LEAVING,
    S_NEW_LEAVING,
} s_status_t;

typedef struct {
    int plan;
    bf_day_t from, to; //  to = BF_DAY_OPEN when open-ended
} s_segment_t;

//  The core profile: what more than one table needs. Cheap to derive.
typedef struct {
    int64_t id;
    s_status_t status;
    s_welfare_t welfare;
    bf_day_t customer_since;
    bf_day_t activated_on;
    bf_day_t terminated_on; //  BF_DAY_OPEN when not terminated
    bf_day_t active_lo;     //  ACTIVE within the period: [active_lo, active_hi)
    bf_day_t active_hi;
    int active_days;
    int nsegments;
    s_segment_t segments[4];
} s_sub_t;

typedef struct {
    const bd_gen_opts_t *opts;
    bd_sink_t *sink;
    bf_day_t first; //  the period is [first, end)
    bf_day_t end;
    int days; //  D
    int year;
    char period[8];
    //  customer_since values exactly 5 and 10 years before the period's
    //  last day (the day tenure is measured to), and leap years for Feb 29
    bf_day_t five_years, ten_years;
    int leap_before_5, leap_before_10;
    uint32_t phone_keys[4];
    //  family layout of the block the last looked-up id fell in
    int64_t family_block;
    int64_t family_of[S_BLOCK];
    int64_t rows;
} s_gen_t;

//  --- Helpers -----------------------------------------------------------------

//  Decimal text of value into buf (>= 21 bytes); returns buf.
static char *
s_format_int (int64_t value, char *buf)
{
    char tmp[24];
    int len = 0;
    uint64_t magnitude = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    do {
        tmp[len++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    char *out = buf;
    if (value < 0)
        *out++ = '-';
    while (len)
        *out++ = tmp[--len];
    *out = '\0';
    return buf;
}

static char *
s_format_time (int minutes, char out[6])
{
    out[0] = (char)('0' + minutes / 600);
    out[1] = (char)('0' + minutes / 60 % 10);
    out[2] = ':';
    out[3] = (char)('0' + minutes % 60 / 10);
    out[4] = (char)('0' + minutes % 10);
    out[5] = '\0';
    return out;
}

static inline int
s_overlap (bf_day_t from, bf_day_t to, bf_day_t lo, bf_day_t hi)
{
    bf_day_t start = from > lo ? from : lo;
    bf_day_t stop = to < hi ? to : hi;
    return stop > start ? (int)(stop - start) : 0;
}

//  day moved by months calendar months, the day of month clamped to the
//  target month's length (Jan 31 + 1 month = Feb 28/29).
static bf_day_t
s_add_months (bf_day_t day, int months)
{
    int year, month, mday;
    bf_day_to_ymd (day, &year, &month, &mday);
    int serial = year * 12 + (month - 1) + months;
    year = serial / 12;
    month = serial % 12 + 1;
    int length = bf_days_in_month (year, month);
    return bf_day_from_ymd (year, month, mday < length ? mday : length);
}

static int
s_latest_leap_year (int year)
{
    while (!bf_is_leap_year (year))
        year--;
    return year;
}

static int
s_emit (s_gen_t *self, const char *const *fields)
{
    self->rows++;
    return self->sink->row (self->sink, fields) ? -1 : 0;
}

//  --- Core profile ------------------------------------------------------------

//  Tenure: a few customers sit exactly on (or one day short of) the 5- and
//  10-year loyalty thresholds, a few joined on Feb 29; the rest spread over
//  25 years. The result is before the period.
static bf_day_t
s_customer_since (s_gen_t *self, s_rng_t *rng)
{
    uint32_t r = s_below (rng, 1000);
    if (r < 10)
        return self->five_years;
    if (r < 20)
        return self->ten_years;
    if (r < 25)
        return self->five_years + 1;
    if (r < 30)
        return self->ten_years + 1;
    if (r < 35) {
        int which = (int)s_below (rng, 3);
        int year = which == 0   ? self->leap_before_5
                   : which == 1 ? self->leap_before_10
                                : s_latest_leap_year (self->year - 1 - (int)s_below (rng, 24));
        return bf_day_from_ymd (year, 2, 29);
    }
    r = s_below (rng, 100);
    if (r < 45)
        return self->first - (bf_day_t)s_range (rng, 1, 1825);
    if (r < 70)
        return self->first - (bf_day_t)s_range (rng, 1826, 3652);
    return self->first - (bf_day_t)s_range (rng, 3653, 9131);
}

static int
s_other_plan (s_rng_t *rng, int plan)
{
    int other = s_pick (rng, s_plan_weights, S_COUNT (s_plan_weights));
    if (other == plan)
        other = (plan + 1 + (int)s_below (rng, S_COUNT (s_plans) - 1)) % S_COUNT (s_plans);
    return other;
}

static void
s_sub_derive (s_gen_t *self, int64_t id, s_sub_t *sub)
{
    s_rng_t rng;
    s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_CORE);
    sub->id = id;

    uint32_t r = s_below (&rng, 10000);
    sub->status = r < S_PM_GONE                                                ? S_GONE
                  : r < S_PM_GONE + S_PM_NEW                                   ? S_NEW
                  : r < S_PM_GONE + S_PM_NEW + S_PM_LEAVING                    ? S_LEAVING
                  : r < S_PM_GONE + S_PM_NEW + S_PM_LEAVING + S_PM_NEW_LEAVING ? S_NEW_LEAVING
                                                                               : S_REGULAR;
    r = s_below (&rng, 1000);
    sub->welfare = r < S_PM_DISABLED                                   ? S_WELFARE_DISABLED
                   : r < S_PM_DISABLED + S_PM_LOW_INCOME               ? S_WELFARE_LOW_INCOME
                   : r < S_PM_DISABLED + S_PM_LOW_INCOME + S_PM_SENIOR ? S_WELFARE_SENIOR
                                                                       : S_WELFARE_NONE;

    bf_day_t since = s_customer_since (self, &rng);
    bf_day_t first = self->first, end = self->end;
    bf_day_t activated, terminated = BF_DAY_OPEN;
    switch (sub->status) {
        case S_GONE:
            //  Recent leavers: still paying off a handset for up to 6 months.
            //  terminated_on == first day of the period is active 0 days.
            terminated = first - (bf_day_t)s_range (&rng, 0, 179);
            if (since >= terminated)
                since = terminated - 1 - (bf_day_t)s_range (&rng, 0, 999);
            activated
                = s_chance (&rng, 600) ? since : (bf_day_t)s_range (&rng, since, terminated - 1);
            break;
        case S_NEW:
        case S_NEW_LEAVING:
            if (sub->status == S_NEW)
                activated = (bf_day_t)s_range (&rng, first + 1, end - 1);
            else {
                activated = (bf_day_t)s_range (&rng, first, end - 2);
                terminated = (bf_day_t)s_range (&rng, activated + 1, end - 1);
            }
            //  Most new lines are new customers; some are returning ones.
            if (s_chance (&rng, 750))
                since = activated;
            break;
        default:
            activated = s_chance (&rng, 600) ? since : (bf_day_t)s_range (&rng, since, first - 1);
            if (sub->status == S_LEAVING)
                terminated = (bf_day_t)s_range (&rng, first + 1, end - 1);
            break;
    }
    sub->customer_since = since;
    sub->activated_on = activated;
    sub->terminated_on = terminated;
    sub->active_lo = activated > first ? activated : first;
    sub->active_hi = terminated < end ? terminated : end;
    sub->active_days = s_overlap (sub->active_lo, sub->active_hi, first, end);

    //  Plan segments: the first starts at activation, the last is open or
    //  ends at termination, and they meet end to start, so they never
    //  overlap and always cover the active days.
    int plan = s_pick (&rng, s_plan_weights, S_COUNT (s_plan_weights));
    if (sub->welfare == S_WELFARE_SENIOR && s_chance (&rng, 500))
        plan = S_PLAN_SENIOR;
    int n = 0;
    bf_day_t from = activated;
    if (sub->status != S_GONE && activated < first && s_chance (&rng, S_PM_PAST_CHANGE)) {
        //  A change before the period: the older segment counts 0 days.
        bf_day_t change = (bf_day_t)s_range (&rng, activated + 1, first);
        sub->segments[n++] = (s_segment_t){ s_other_plan (&rng, plan), from, change };
        from = change;
    }
    r = s_below (&rng, 1000);
    int changes = r < S_PM_ONE_CHANGE ? 1 : r < S_PM_ONE_CHANGE + S_PM_TWO_CHANGES ? 2 : 0;
    if (sub->active_hi - sub->active_lo < changes + 1)
        changes = 0; //  no room for a change inside the active days
    bf_day_t cut = sub->active_lo;
    for (int i = 0; i < changes; i++) {
        //  Leave room for the remaining changes after this one.
        cut = (bf_day_t)s_range (&rng, cut + 1, sub->active_hi - (changes - i));
        sub->segments[n++] = (s_segment_t){ plan, from, cut };
        plan = s_other_plan (&rng, plan);
        from = cut;
    }
    sub->segments[n++] = (s_segment_t){ plan, from, terminated };
    sub->nsegments = n;
}

//  --- Family blocks -----------------------------------------------------------

//  Ways to split a block's 8 family members into families of 2..5 people,
//  with how often each is used (per 100 blocks).
static const int s_family_splits[][4] = {
    { 2, 2, 2, 2 }, { 2, 2, 4, 0 }, { 2, 3, 3, 0 }, { 3, 5, 0, 0 }, { 4, 4, 0, 0 },
};
static const uint16_t s_family_split_weights[] = { 20, 25, 30, 15, 10 };

//  family_id of id (the smallest member id), or 0 when id is not in a family.
//  Tables visit ids in order, so one cached block makes this O(1) per id.
static int64_t
s_family_id (s_gen_t *self, int64_t id)
{
    int64_t block = (id - 1) / S_BLOCK;
    if (block != self->family_block) {
        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)block, S_FAMILY);
        const int *split = s_family_splits[s_pick (&rng, s_family_split_weights,
                                                   S_COUNT (s_family_split_weights))];
        int units[4 + S_BLOCK_SINGLES];
        int nunits = 0;
        for (int i = 0; i < 4 && split[i]; i++)
            units[nunits++] = split[i];
        for (int i = 0; i < S_BLOCK_SINGLES; i++)
            units[nunits++] = 1;
        for (int i = nunits - 1; i > 0; i--) {
            int j = (int)s_below (&rng, (uint32_t)i + 1);
            int swap = units[i];
            units[i] = units[j];
            units[j] = swap;
        }
        int64_t base = block * S_BLOCK + 1;
        int pos = 0;
        for (int u = 0; u < nunits; u++) {
            int64_t head = base + pos;
            //  The last block may be cut short by N: a family left with
            //  one member is no family.
            int64_t size = units[u];
            if (head + size - 1 > self->opts->subscribers)
                size = self->opts->subscribers - head + 1;
            for (int k = 0; k < units[u]; k++)
                self->family_of[pos + k] = size >= 2 ? head : 0;
            pos += units[u];
        }
        self->family_block = block;
    }
    return self->family_of[(id - 1) % S_BLOCK];
}

//  --- Contacts ----------------------------------------------------------------

static int
s_surname (s_gen_t *self, int64_t key)
{
    s_rng_t rng;
    s_rng_seed (&rng, self->opts->seed, (uint64_t)key, S_SURNAME);
    return s_pick (&rng, s_surname_weights, S_COUNT (s_surname_weights));
}

//  010-XXXX-YYYY from a 4-round Feistel permutation of id mod 10^8 over
//  two base-10^4 halves: a bijection, so ids 1..10^8 get distinct numbers
//  that still look random.
static void
s_phone (s_gen_t *self, int64_t id, char out[14])
{
    uint32_t value = (uint32_t)(id % 100000000);
    uint32_t left = value / 10000, right = value % 10000;
    for (int round = 0; round < 4; round++) {
        uint32_t f
            = (uint32_t)(s_mix64 (((uint64_t)self->phone_keys[round] << 16) ^ right) % 10000);
        uint32_t next = (left + f) % 10000;
        left = right;
        right = next;
    }
    memcpy (out, "010-", 4);
    for (int i = 0; i < 4; i++) {
        out[7 - i] = (char)('0' + left % 10);
        left /= 10;
        out[12 - i] = (char)('0' + right % 10);
        right /= 10;
    }
    out[8] = '-';
    out[13] = '\0';
}

static void
s_push_token (s_gen_t *self, int64_t id, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    s_rng_t rng;
    s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_TOKEN);
    for (int word = 0; word < 4; word++) {
        uint64_t bits = s_next (&rng);
        for (int i = 0; i < 16; i++)
            out[word * 16 + i] = hex[(bits >> (60 - 4 * i)) & 15];
    }
    out[64] = '\0';
}

//  Email local part: a romanised name with the id appended. The id is the
//  only digit run and ends the local part, so addresses never collide.
static void
s_email (s_rng_t *rng, const s_name_t *surname, const s_name_t *given, int64_t id, char *out,
         size_t size)
{
    char digits[24];
    s_format_int (id, digits);
    const char *domain = s_domains[s_pick (rng, s_domain_weights, S_COUNT (s_domain_weights))];
    const char *a, *b, *sep;
    switch (s_below (rng, 4)) {
        case 0:
            a = given->roman;
            sep = ".";
            b = surname->roman;
            break;
        case 1:
            a = surname->roman;
            sep = "";
            b = given->roman;
            break;
        case 2:
            a = surname->roman;
            sep = ".";
            b = given->roman;
            break;
        default:
            a = given->roman;
            sep = "_";
            b = surname->roman;
            break;
    }
    size_t len = 0;
    const char *parts[] = { a, sep, b, digits, "@", domain };
    for (int i = 0; i < S_COUNT (parts); i++) {
        size_t plen = strlen (parts[i]);
        if (len + plen + 1 > size)
            break; //  cannot happen with these tables
        memcpy (out + len, parts[i], plen);
        len += plen;
    }
    out[len] = '\0';
}

//  --- Tables ------------------------------------------------------------------

static int
s_plans_table (s_gen_t *self)
{
    for (int i = 0; i < S_COUNT (s_plans); i++) {
        const s_plan_t *plan = &s_plans[i];
        char fee[24], data[24], voice[24], sms[24], data_rate[24], voice_rate[24], sms_rate[24];
        const char *fields[] = {
            plan->code,
            plan->name,
            s_format_int (plan->fee, fee),
            plan->data_mb == S_UNLIMITED ? NULL : s_format_int (plan->data_mb, data),
            plan->voice_min == S_UNLIMITED ? NULL : s_format_int (plan->voice_min, voice),
            plan->sms == S_UNLIMITED ? NULL : s_format_int (plan->sms, sms),
            s_format_int (plan->data_rate, data_rate),
            s_format_int (plan->voice_rate, voice_rate),
            s_format_int (plan->sms_rate, sms_rate),
        };
        if (s_emit (self, fields))
            return -1;
    }
    return 0;
}

static int
s_addons_table (s_gen_t *self)
{
    for (int i = 0; i < S_COUNT (s_addons); i++) {
        char fee[24];
        const char *fields[]
            = { s_addons[i].code, s_addons[i].name, s_format_int (s_addons[i].fee, fee) };
        if (s_emit (self, fields))
            return -1;
    }
    return 0;
}

static int
s_subscribers_table (s_gen_t *self)
{
    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        int64_t family = s_family_id (self, id);

        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_CONTACT);
        //  Family members often carry the head's surname (children do;
        //  Korean spouses keep their own).
        int surname = family && (family == id || s_chance (&rng, 600)) ? s_surname (self, family)
                                                                       : s_surname (self, id);
        const s_name_t *given = &s_given_names[s_below (&rng, S_COUNT (s_given_names))];
        char name[32];
        size_t slen = strlen (s_surnames[surname].hangul);
        memcpy (name, s_surnames[surname].hangul, slen);
        strcpy (name + slen, given->hangul);

        int set = s_pick (&rng, s_channel_weights, S_COUNT (s_channel_weights));
        int channels = s_channel_sets[set];
        char email[96];
        bool has_email = (channels & S_CH_EMAIL) || s_chance (&rng, S_PM_SPARE_EMAIL);
        if (has_email)
            s_email (&rng, &s_surnames[surname], given, id, email, sizeof email);
        char quiet_start[6], quiet_end[6];
        bool quiet = s_chance (&rng, S_PM_QUIET);
        if (quiet) {
            int start, stop;
            if (s_chance (&rng, S_PM_QUIET_OVERNIGHT)) {
                start = (int)s_range (&rng, 40, 47) * 30; //  20:00 .. 23:30
                stop = (int)s_range (&rng, 10, 18) * 30;  //  05:00 .. 09:00
            } else {
                start = (int)s_range (&rng, 16, 30) * 30; //  08:00 .. 15:00
                stop = start + (int)s_range (&rng, 2, 16) * 30;
            }
            s_format_time (start, quiet_start);
            s_format_time (stop, quiet_end);
        }
        int pay_day = s_pay_days[s_pick (&rng, s_pay_day_weights, S_COUNT (s_pay_day_weights))];

        char id_text[24], family_text[24], pay_text[24], phone[14], token[65];
        char activated[11], terminated[11], since[11];
        if (channels & S_CH_PUSH)
            s_push_token (self, id, token);
        s_phone (self, id, phone);
        const char *fields[] = {
            s_format_int (id, id_text),
            name,
            has_email ? email : NULL,
            phone,
            bf_date_format (sub.activated_on, activated),
            sub.terminated_on == BF_DAY_OPEN ? NULL
                                             : bf_date_format (sub.terminated_on, terminated),
            bf_date_format (sub.customer_since, since),
            family ? s_format_int (family, family_text) : NULL,
            s_welfare_texts[sub.welfare],
            s_format_int (pay_day, pay_text),
            s_channel_texts[set],
            quiet ? quiet_start : NULL,
            quiet ? quiet_end : NULL,
            (channels & S_CH_PUSH) ? token : NULL,
        };
        if (s_emit (self, fields))
            return -1;
    }
    return 0;
}

static int
s_plan_assignments_table (s_gen_t *self)
{
    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        char id_text[24], from[11], to[11];
        s_format_int (id, id_text);
        for (int i = 0; i < sub.nsegments; i++) {
            const s_segment_t *seg = &sub.segments[i];
            const char *fields[] = {
                id_text,
                s_plans[seg->plan].code,
                bf_date_format (seg->from, from),
                seg->to == BF_DAY_OPEN ? NULL : bf_date_format (seg->to, to),
            };
            if (s_emit (self, fields))
                return -1;
        }
    }
    return 0;
}

//  A validity range [from, to) around the period for a line activated on
//  `activated`: mostly started before the period and still open, some
//  starting, ending or both inside the period, a few over before it (the
//  rating must skip those).
static void
s_range_near_period (s_gen_t *self, s_rng_t *rng, bf_day_t activated, bf_day_t *from, bf_day_t *to)
{
    bf_day_t first = self->first, end = self->end;
    *to = BF_DAY_OPEN;
    if (activated >= first) {
        //  New line: nothing can start before activation.
        *from = (bf_day_t)s_range (rng, activated, end - 1);
        if (s_chance (rng, 200))
            *to = (bf_day_t)s_range (rng, *from + 1, end);
        return;
    }
    uint32_t r = s_below (rng, 100);
    if (r < 72)
        *from = (bf_day_t)s_range (rng, activated, first - 1);
    else if (r < 82)
        *from = (bf_day_t)s_range (rng, first, end - 1);
    else if (r < 90) {
        *from = (bf_day_t)s_range (rng, activated, first - 1);
        *to = (bf_day_t)s_range (rng, first + 1, end - 1);
    } else if (r < 95) {
        *from = (bf_day_t)s_range (rng, activated, first - 1);
        *to = (bf_day_t)s_range (rng, *from + 1, first);
    } else {
        *from = (bf_day_t)s_range (rng, first, end - 2);
        *to = (bf_day_t)s_range (rng, *from + 1, end - 1);
    }
}

static int
s_addon_subscriptions_table (s_gen_t *self)
{
    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        if (sub.status == S_GONE)
            continue;
        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_ADDONS);
        uint32_t r = s_below (&rng, 100);
        int count = r < 40 ? 0 : r < 72 ? 1 : r < 90 ? 2 : 3;
        int taken = 0; //  bit mask: one subscription per add-on
        char id_text[24], from_text[11], to_text[11];
        s_format_int (id, id_text);
        for (int i = 0; i < count; i++) {
            int addon = s_pick (&rng, s_addon_weights, S_COUNT (s_addon_weights));
            while (taken & (1 << addon))
                addon = (addon + 1) % S_COUNT (s_addons);
            taken |= 1 << addon;
            bf_day_t from, to;
            s_range_near_period (self, &rng, sub.activated_on, &from, &to);
            const char *fields[] = {
                id_text,
                s_addons[addon].code,
                bf_date_format (from, from_text),
                to == BF_DAY_OPEN ? NULL : bf_date_format (to, to_text),
            };
            if (s_emit (self, fields))
                return -1;
        }
    }
    return 0;
}

static int
s_contract_row (s_gen_t *self, const char *id_text, bf_day_t from, bf_day_t to)
{
    char from_text[11], to_text[11];
    const char *fields[] = { id_text, "SELECTIVE_25", bf_date_format (from, from_text),
                             bf_date_format (to, to_text) };
    return s_emit (self, fields);
}

//  선택약정 runs 12 or 24 months. Most cover the whole period; some start
//  or end inside it (partial discount days), some ended before it (no
//  discount), and half of those ending inside are renewed for 24 months
//  from the day the old one ends (two contracts summed in one period).
static int
s_contracts_table (s_gen_t *self)
{
    bf_day_t first = self->first, end = self->end;
    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        if (sub.status == S_GONE)
            continue;
        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_CONTRACTS);
        if (!s_chance (&rng, S_PM_CONTRACT))
            continue;
        char id_text[24];
        s_format_int (id, id_text);
        int months = s_chance (&rng, 750) ? 24 : 12;
        bf_day_t activated = sub.activated_on;
        if (activated >= first) {
            //  Signed with the new line.
            if (s_contract_row (self, id_text, activated, s_add_months (activated, months)))
                return -1;
            continue;
        }
        uint32_t r = s_below (&rng, 100);
        bf_day_t from, to;
        if (r < 82) {
            //  Started at most months - 1 months back, so it runs past the period.
            bf_day_t earliest = s_add_months (first, -(months - 1));
            from = (bf_day_t)s_range (&rng, activated > earliest ? activated : earliest, first);
            to = s_add_months (from, months);
        } else if (r < 88) {
            from = (bf_day_t)s_range (&rng, first + 1, end - 1);
            to = s_add_months (from, months);
        } else if (r < 94) {
            to = (bf_day_t)s_range (&rng, first + 1, end - 1);
            from = s_add_months (to, -months);
            if (from < activated)
                from = activated;
        } else {
            to = (bf_day_t)s_range (&rng, activated + 1, first);
            from = s_add_months (to, -months);
            if (from < activated)
                from = activated;
        }
        if (s_contract_row (self, id_text, from, to))
            return -1;
        if (to > first && to < end && s_chance (&rng, 500)) {
            //  Renewed back to back: the importer rejects overlapping
            //  contracts, so the discount days add up to the active days.
            if (s_contract_row (self, id_text, to, s_add_months (to, 24)))
                return -1;
        }
    }
    return 0;
}

//  Allowance of each usage kind by billing-rules.md step 2, so usage can be
//  placed exactly on, one over, or well over it. -1 = unlimited.
static void
s_allowances (const s_gen_t *self, const s_sub_t *sub, int64_t allow[3])
{
    allow[0] = allow[1] = allow[2] = 0;
    for (int i = 0; i < sub->nsegments; i++) {
        const s_segment_t *seg = &sub->segments[i];
        int days = s_overlap (seg->from, seg->to, sub->active_lo, sub->active_hi);
        if (days == 0)
            continue;
        const s_plan_t *plan = &s_plans[seg->plan];
        int64_t full[3]
            = { plan->data_mb, plan->voice_min < 0 ? -1 : plan->voice_min * 60, plan->sms };
        for (int k = 0; k < 3; k++) {
            if (full[k] < 0 || allow[k] < 0)
                allow[k] = -1;
            else
                allow[k] += full[k] * days / self->days;
        }
    }
}

static int
s_usage_table (s_gen_t *self)
{
    //  Per kind (DATA_MB, VOICE_SEC, SMS), per mille: has usage, and of a
    //  limited allowance goes over it; the largest overage; and a month of
    //  unlimited use.
    static const uint32_t present[3] = { 970, 930, 600 };
    static const uint32_t over[3] = { 130, 100, 60 };
    static const int64_t max_over[3] = { 3072, 3600, 200 };
    static const int64_t unlimited_lo[3] = { 1000, 300, 0 };
    static const int64_t unlimited_hi[3] = { 120000, 36000, 400 };

    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        if (sub.active_days == 0)
            continue;
        int64_t allow[3];
        s_allowances (self, &sub, allow);
        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_USAGE);
        char id_text[24];
        s_format_int (id, id_text);
        for (int k = 0; k < 3; k++) {
            if (!s_chance (&rng, present[k]))
                continue;
            int64_t used;
            if (allow[k] < 0)
                used = s_range (&rng, unlimited_lo[k], unlimited_hi[k]) * sub.active_days
                       / self->days;
            else {
                uint32_t r = s_below (&rng, 1000);
                if (r < over[k]) {
                    int64_t most = allow[k] / 2 < max_over[k] ? allow[k] / 2 : max_over[k];
                    used = allow[k] + s_range (&rng, 1, most > 1 ? most : 1);
                } else if (r < over[k] + 10)
                    used = allow[k]; //  on the allowance: no overage
                else if (r < over[k] + 15)
                    used = allow[k] + 1; //  one unit over
                else
                    used = allow[k] * s_range (&rng, 3, 97) / 100;
            }
            //  Mediation often delivers a month in several records.
            uint32_t split = s_below (&rng, 100);
            int64_t parts[3];
            int nparts;
            if (split < 70) {
                parts[0] = used;
                nparts = 1;
            } else if (split < 90) {
                parts[0] = s_range (&rng, 0, used);
                parts[1] = used - parts[0];
                nparts = 2;
            } else {
                int64_t a = s_range (&rng, 0, used), b = s_range (&rng, 0, used);
                if (a > b) {
                    int64_t swap = a;
                    a = b;
                    b = swap;
                }
                parts[0] = a;
                parts[1] = b - a;
                parts[2] = used - b;
                nparts = 3;
            }
            for (int p = 0; p < nparts; p++) {
                char quantity[24];
                const char *fields[] = { id_text, self->period, s_usage_kinds[k],
                                         s_format_int (parts[p], quantity) };
                if (s_emit (self, fields))
                    return -1;
            }
        }
    }
    return 0;
}

static int64_t
s_charge_amount (s_rng_t *rng, s_charge_kind_t kind)
{
    switch (kind) {
        case S_DEVICE_INSTALLMENT:
            return s_device_prices[s_below (rng, S_COUNT (s_device_prices))]
                   / s_device_months[s_below (rng, S_COUNT (s_device_months))];
        case S_MICRO_PAYMENT:
            return s_range (rng, 10, 500) * 100;
        case S_CONTENT:
            return s_content_prices[s_below (rng, S_COUNT (s_content_prices))];
        default:
            //  Rarely a large refund that drives the taxable subtotal
            //  below zero (CREDIT_CARRY); usually a small correction.
            if (s_chance (rng, 10))
                return -s_range (rng, 15000, 50000) * 10;
            return s_range (rng, -500, 300) * 10;
    }
}

static int
s_charges_table (s_gen_t *self)
{
    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_CHARGES);
        int count;
        bool installments_only = sub.status == S_GONE;
        if (installments_only)
            //  A line closed before the period still owes its handset:
            //  these make bills with charges (and maybe arrears) only.
            count = s_chance (&rng, S_PM_GONE_CHARGES) ? 1 + s_chance (&rng, 250) : 0;
        else {
            uint32_t r = s_below (&rng, 100);
            count = r < 20 ? 0 : r < 50 ? 1 : r < 80 ? 2 : 3;
        }
        char id_text[24];
        s_format_int (id, id_text);
        //  Rows go out in draw order, not grouped by kind: the bill must
        //  keep the file's order.
        for (int i = 0; i < count; i++) {
            s_charge_kind_t kind = installments_only
                                       ? S_DEVICE_INSTALLMENT
                                       : (s_charge_kind_t)s_pick (&rng, s_charge_kind_weights,
                                                                  S_COUNT (s_charge_kind_weights));
            char amount[24];
            bool taxable = kind == S_CONTENT || kind == S_ADJUSTMENT;
            const char *fields[] = { id_text, self->period, s_charge_kinds[kind],
                                     s_format_int (s_charge_amount (&rng, kind), amount),
                                     taxable ? "true" : "false" };
            if (s_emit (self, fields))
                return -1;
        }
    }
    return 0;
}

static int
s_arrears_table (s_gen_t *self)
{
    for (int64_t id = 1; id <= self->opts->subscribers; id++) {
        s_sub_t sub;
        s_sub_derive (self, id, &sub);
        s_rng_t rng;
        s_rng_seed (&rng, self->opts->seed, (uint64_t)id, S_ARREARS);
        if (!s_chance (&rng, sub.status == S_GONE ? S_PM_GONE_ARREARS : S_PM_ARREARS))
            continue;
        //  An unpaid earlier bill: a multiple of 10 won like every total.
        char id_text[24], amount[24];
        const char *fields[] = { s_format_int (id, id_text), self->period,
                                 s_format_int (s_range (&rng, 100, 30000) * 10, amount) };
        if (s_emit (self, fields))
            return -1;
    }
    return 0;
}

//  --- Entry point -------------------------------------------------------------

typedef int (s_table_fn) (s_gen_t *self);

static s_table_fn *const s_table_fns[BD_TABLE_COUNT] = {
    [BD_PLANS] = s_plans_table,
    [BD_ADDONS] = s_addons_table,
    [BD_SUBSCRIBERS] = s_subscribers_table,
    [BD_PLAN_ASSIGNMENTS] = s_plan_assignments_table,
    [BD_ADDON_SUBSCRIPTIONS] = s_addon_subscriptions_table,
    [BD_CONTRACTS] = s_contracts_table,
    [BD_USAGE] = s_usage_table,
    [BD_CHARGES] = s_charges_table,
    [BD_ARREARS] = s_arrears_table,
};

//  Emits every table in bd_table_t order into sink. Returns 0, or -1 when
//  the options are out of range (logged here) or a sink call failed
//  (logged by the sink).
int
bd_generate (const bd_gen_opts_t *opts, bd_sink_t *sink)
{
    if (!opts || !sink)
        return -1;
    //  Phone numbers are a permutation of 10^8 values; histories reach 25
    //  years back and contracts 2 years ahead, which must stay inside the
    //  years 1900..9999 that dates may have.
    if (opts->subscribers < 0 || opts->subscribers > 100000000) {
        bf_error ("generate: --subscribers must be 0..100000000, not %" PRId64, opts->subscribers);
        return -1;
    }
    if (opts->period.year < 1930 || opts->period.year > 9990 || opts->period.month < 1
        || opts->period.month > 12) {
        bf_error ("generate: period must be within 1930-01..9990-12");
        return -1;
    }

    s_gen_t self;
    memset (&self, 0, sizeof self);
    self.opts = opts;
    self.sink = sink;
    self.first = bf_period_first_day (opts->period);
    self.end = bf_period_end_day (opts->period);
    self.days = bf_period_days (opts->period);
    self.year = opts->period.year;
    bf_period_format (opts->period, self.period);
    int last_day = bf_days_in_month (self.year, opts->period.month);
    int day5 = bf_days_in_month (self.year - 5, opts->period.month);
    int day10 = bf_days_in_month (self.year - 10, opts->period.month);
    //  The anniversary is the last day of the month, clamped for a Feb 29.
    self.five_years
        = bf_day_from_ymd (self.year - 5, opts->period.month, last_day < day5 ? last_day : day5);
    self.ten_years
        = bf_day_from_ymd (self.year - 10, opts->period.month, last_day < day10 ? last_day : day10);
    self.leap_before_5 = s_latest_leap_year (self.year - 5);
    self.leap_before_10 = s_latest_leap_year (self.year - 10);
    s_rng_t rng;
    s_rng_seed (&rng, opts->seed, 0, S_PHONE);
    for (int i = 0; i < 4; i++)
        self.phone_keys[i] = (uint32_t)s_next (&rng);
    self.family_block = -1;

    for (int t = 0; t < BD_TABLE_COUNT; t++) {
        self.rows = 0;
        if (sink->begin (sink, (bd_table_t)t))
            return -1;
        if (s_table_fns[t](&self))
            return -1;
        if (sink->end (sink, (bd_table_t)t))
            return -1;
        bf_debug ("generate: %s: %" PRId64 " rows", bd_tables[t].file, self.rows);
    }
    return 0;
}
