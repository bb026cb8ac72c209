/*  bf_label — the words a bill line shows (see bf_label.h).  */

#include <stdio.h>
#include <string.h>

#include "bf_label.h"

/*  Keep in step with db/008_content.sql (the backfill) and docs/templates.md.  */
static const struct {
    const char *code;
    const char *label;
} s_fixed[] = {
    { "OVERAGE_DATA", "데이터 초과 사용료" },
    { "OVERAGE_VOICE", "음성 초과 사용료" },
    { "OVERAGE_SMS", "문자 초과 사용료" },
    { "DISC_CONTRACT", "선택약정 할인" },
    { "DISC_FAMILY", "가족결합 할인" },
    { "DISC_LOYALTY", "장기고객 할인" },
    { "DISC_WELFARE", "복지 할인" },
    { "CHARGE:DEVICE_INSTALLMENT", "단말기 할부금" },
    { "CHARGE:MICRO_PAYMENT", "소액결제" },
    { "CHARGE:CONTENT", "콘텐츠 이용료" },
    { "CHARGE:ADJUSTMENT", "요금 조정" },
    { "CREDIT_CARRY", "다음 달 이월 크레딧" },
    { "VAT", "부가가치세" },
    { "ARREARS", "미납 요금" },
    { "ROUNDING", "원 단위 절사" },
};

const char *
bf_label_fixed (const char *code)
{
    if (!code)
        return NULL;
    for (size_t i = 0; i < sizeof s_fixed / sizeof s_fixed[0]; i++)
        if (strcmp (code, s_fixed[i].code) == 0)
            return s_fixed[i].label;
    return NULL;
}

const char *
bf_label_line (const char *code, const char *name, char *buf, size_t bufsize)
{
    if (!code)
        return "";
    const char *fixed = bf_label_fixed (code);
    if (fixed)
        return fixed;
    static const struct {
        const char *prefix;
        const char *generic;
    } named[] = {
        { "PLAN:", "요금제" },
        { "ADDON:", "부가서비스" },
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t plen = strlen (named[i].prefix);
        if (strncmp (code, named[i].prefix, plen) != 0 || code[plen] == 0)
            continue;
        if (name && *name)
            return name;
        if (!buf || bufsize == 0)
            return code;
        int n = snprintf (buf, bufsize, "%s (%s)", named[i].generic, code + plen);
        return (n < 0 || (size_t)n >= bufsize) ? code : buf;
    }
    return code;
}
