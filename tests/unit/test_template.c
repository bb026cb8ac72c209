/*  test_template — bf_template: the template language, the default
    templates as shipped, EUC-KR counting and fitting, the SMS/LMS/short
    form decision, and masked previews.

    The default templates are read from db/005_templates.sql itself (a small
    SQL literal reader below), so the tests render exactly what the
    migration installs; test_migrations checks that this file is the one
    compiled into the binaries. The worked example is billing-rules.md's
    (total 111,200).  */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <iconv.h>

#include "bf_sms.h"
#include "bf_template.h"
#include "bf_text.h"
#include "bf_won.h"

/*  --- Shipped templates: db/005_templates.sql -------------------------- */

typedef struct {
    char *channel, *purpose, *version, *subject, *body, *body_html, *short_body, *active;
} s_row_t;

static s_row_t s_rows[8];
static size_t s_nrows;

static void
s_sql_skip (const char **p)
{
    while (true) {
        while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
            (*p)++;
        if ((*p)[0] == '-' && (*p)[1] == '-') {
            while (**p && **p != '\n')
                (*p)++;
        } else
            return;
    }
}

/*  One SQL value: a '...' literal ('' is a quote), or a bare word (NULL ->
    NULL, anything else as its text). Fails the test on malformed input.  */
static char *
s_sql_value (const char **p)
{
    s_sql_skip (p);
    if (**p == '\'') {
        size_t cap = strlen (*p) + 1;
        char *text = malloc (cap);
        assert_non_null (text);
        size_t n = 0;
        (*p)++;
        while (true) {
            if (**p == 0)
                fail_msg ("unterminated literal in 005_templates.sql");
            if (**p == '\'' && (*p)[1] == '\'') {
                text[n++] = '\'';
                *p += 2;
            } else if (**p == '\'') {
                (*p)++;
                break;
            } else
                text[n++] = *(*p)++;
        }
        text[n] = 0;
        return text;
    }
    const char *start = *p;
    while ((**p >= 'a' && **p <= 'z') || (**p >= 'A' && **p <= 'Z') || (**p >= '0' && **p <= '9'))
        (*p)++;
    if (*p == start)
        fail_msg ("unexpected \"%.20s\" in 005_templates.sql", start);
    if ((size_t)(*p - start) == 4 && strncmp (start, "NULL", 4) == 0)
        return NULL;
    return strndup (start, (size_t)(*p - start));
}

static void
s_sql_expect (const char **p, char c)
{
    s_sql_skip (p);
    if (**p != c)
        fail_msg ("expected '%c' at \"%.20s\" in 005_templates.sql", c, *p);
    (*p)++;
}

static int
s_load_rows (void **state)
{
    (void)state;
    const char *root = getenv ("BF_SOURCE_ROOT");
    char path[1024];
    snprintf (path, sizeof path, "%s/db/005_templates.sql", root ? root : ".");
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "cannot open %s: %s (set BF_SOURCE_ROOT)\n", path, strerror (errno));
        return -1;
    }
    static char sql[64 * 1024];
    size_t len = fread (sql, 1, sizeof sql - 1, f);
    fclose (f);
    sql[len] = 0;
    const char *head = "INSERT INTO template (channel, purpose, version, subject, body, "
                       "body_html, short_body, active)";
    const char *p = strstr (sql, head);
    if (!p) {
        fprintf (stderr, "005_templates.sql: no \"%s\"\n", head);
        return -1;
    }
    p += strlen (head);
    s_sql_skip (&p);
    if (strncmp (p, "VALUES", 6) != 0)
        return -1;
    p += 6;
    while (true) {
        s_sql_expect (&p, '(');
        s_row_t *row = &s_rows[s_nrows++];
        char **fields[] = { &row->channel, &row->purpose,   &row->version,    &row->subject,
                            &row->body,    &row->body_html, &row->short_body, &row->active };
        for (size_t i = 0; i < 8; i++) {
            if (i > 0)
                s_sql_expect (&p, ',');
            *fields[i] = s_sql_value (&p);
        }
        s_sql_expect (&p, ')');
        s_sql_skip (&p);
        if (*p == ';')
            break;
        s_sql_expect (&p, ',');
        if (s_nrows == sizeof s_rows / sizeof s_rows[0])
            return -1;
    }
    return 0;
}

static int
s_free_rows (void **state)
{
    (void)state;
    for (size_t i = 0; i < s_nrows; i++) {
        s_row_t *row = &s_rows[i];
        char *fields[] = { row->channel, row->purpose,   row->version,    row->subject,
                           row->body,    row->body_html, row->short_body, row->active };
        for (size_t k = 0; k < 8; k++)
            free (fields[k]);
    }
    s_nrows = 0;
    return 0;
}

static const s_row_t *
s_row (const char *channel)
{
    for (size_t i = 0; i < s_nrows; i++)
        if (strcmp (s_rows[i].channel, channel) == 0)
            return &s_rows[i];
    fail_msg ("no %s row in 005_templates.sql", channel);
    return NULL;
}

/*  --- The worked example ------------------------------------------------ */

static const bf_template_line_t s_example_lines[] = {
    { "PLAN:LTE_43", 13870 },
    { "PLAN:5G_59", 39967 },
    { "OVERAGE_DATA", 7997 },
    { "ADDON:VCOLORING", 1277 },
    { "DISC_CONTRACT", -13459 },
    { "DISC_FAMILY", -3300 },
    { "DISC_LOYALTY", -3707 },
    { "CHARGE:DEVICE_INSTALLMENT", 31250 },
    { "CHARGE:MICRO_PAYMENT", 12000 },
    { "CHARGE:CONTENT", 5500 },
    { "VAT", 4814 },
    { "ARREARS", 15000 },
    { "ROUNDING", -9 },
};
#define S_EXAMPLE_LINES (sizeof s_example_lines / sizeof s_example_lines[0])

static int s_lookups;

static const char *
s_lookup (void *arg, const char *kind, const char *code)
{
    (void)arg;
    s_lookups++;
    if (strcmp (kind, "PLAN") == 0 && strcmp (code, "LTE_43") == 0)
        return "LTE 데이터 43";
    if (strcmp (kind, "PLAN") == 0 && strcmp (code, "5G_59") == 0)
        return "5G 슬림 59";
    if (strcmp (kind, "ADDON") == 0 && strcmp (code, "VCOLORING") == 0)
        return "V컬러링";
    return NULL;
}

static bf_template_view_t
s_example (void)
{
    return (bf_template_view_t){
        .name = "홍길동",
        .period = "2026-10",
        .total = 111200,
        .due_date = "2026-11-25",
        .bill_id = 202610000123,
        .lines = s_example_lines,
        .line_count = S_EXAMPLE_LINES,
        .lookup = s_lookup,
    };
}

static char s_out[64 * 1024];

/*  Renders and fails the test with the reason when rendering fails.  */
static const char *
s_render (const char *tmpl, const bf_template_view_t *view, bool html)
{
    char err[256] = "";
    int n = bf_template_render (tmpl, view, html, s_out, sizeof s_out, err, sizeof err);
    if (n < 0)
        fail_msg ("render failed: %s", err);
    assert_int_equal ((size_t)n, strlen (s_out));
    assert_null (strstr (s_out, "{{"));
    return s_out;
}

static size_t
s_count (const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
        count++;
    return count;
}

/*  --- Tests ------------------------------------------------------------- */

static void
test_shipped_rows (void **state)
{
    (void)state;
    assert_int_equal (s_nrows, 3);
    const char *channels[] = { "EMAIL", "SMS", "PUSH" };
    for (size_t i = 0; i < 3; i++) {
        const s_row_t *row = s_row (channels[i]);
        assert_string_equal (row->purpose, "BILL_ISSUED");
        assert_string_equal (row->version, "1");
        assert_string_equal (row->active, "true");
        bf_template_set_t set
            = { row->channel, row->subject, row->body, row->body_html, row->short_body };
        char err[256] = "";
        if (bf_template_check_set (&set, err, sizeof err) != 0)
            fail_msg ("%s: %s", row->channel, err);
        //  No personal data but the name: no contact variables exist, and
        //  the literal text holds no address or mobile number.
        const char *parts[] = { row->subject, row->body, row->body_html, row->short_body };
        for (size_t k = 0; k < 4; k++) {
            if (!parts[k])
                continue;
            assert_null (strchr (parts[k], '@'));
            assert_null (strstr (parts[k], "010"));
        }
    }
    assert_null (s_row ("EMAIL")->short_body);
    assert_non_null (s_row ("SMS")->short_body);
    assert_null (s_row ("SMS")->body_html);
}

static void
test_example_email_text (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    const s_row_t *row = s_row ("EMAIL");
    assert_string_equal (s_render (row->subject, &view, false),
                         "[빌플로우] 2026년 10월 이용요금 안내");
    assert_string_equal (s_render (row->body, &view, false),
                         "홍길동 고객님, 안녕하세요.\n"
                         "빌플로우를 이용해 주셔서 감사합니다.\n"
                         "2026년 10월 이용요금을 아래와 같이 안내해 드립니다.\n"
                         "\n"
                         "■ 청구 요약\n"
                         "  청구금액: 111,200원\n"
                         "  납부기한: 11월 25일(2026-11-25)\n"
                         "  청구번호: 202610000123\n"
                         "\n"
                         "■ 청구 내역\n"
                         "  LTE 데이터 43: 13,870원\n"
                         "  5G 슬림 59: 39,967원\n"
                         "  데이터 초과 사용료: 7,997원\n"
                         "  V컬러링: 1,277원\n"
                         "  선택약정 할인: -13,459원\n"
                         "  가족결합 할인: -3,300원\n"
                         "  장기고객 할인: -3,707원\n"
                         "  단말기 할부금: 31,250원\n"
                         "  소액결제: 12,000원\n"
                         "  콘텐츠 이용료: 5,500원\n"
                         "  부가가치세: 4,814원\n"
                         "  미납 요금: 15,000원\n"
                         "  원 단위 절사: -9원\n"
                         "  ----------------------------------------\n"
                         "  청구금액 합계: 111,200원\n"
                         "\n"
                         "※ 할인·절사 금액은 -(마이너스)로 표시됩니다.\n"
                         "※ 납부기한까지 납부되지 않은 금액은 다음 달 청구서에 미납 요금으로 "
                         "함께 청구됩니다.\n"
                         "※ 요금 문의: 빌플로우 고객센터 114 (휴대폰에서 무료)\n"
                         "\n"
                         "본 메일은 발신 전용입니다.\n");
    //  The lines really sum to the total the template prints.
    int64_t sum = 0;
    for (size_t i = 0; i < S_EXAMPLE_LINES; i++)
        sum += s_example_lines[i].amount;
    assert_int_equal (sum, 111200);
}

static void
test_example_email_html (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    const char *html = s_render (s_row ("EMAIL")->body_html, &view, true);
    assert_non_null (strstr (html, "<html lang=\"ko\">"));
    assert_non_null (strstr (html, "<meta charset=\"utf-8\">"));
    assert_non_null (strstr (html, "<title>[빌플로우] 2026년 10월 이용요금 안내</title>"));
    assert_non_null (strstr (html, "홍길동 고객님, 안녕하세요."));
    assert_non_null (strstr (html, ">111,200원</div>"));
    assert_non_null (strstr (html, "납부기한 11월 25일(2026-11-25) · 청구번호 202610000123"));
    //  One table row per line, in bill order, with label and amount.
    const char *cell = "<tr><td style=\"padding:8px;border-bottom:1px solid #e1e4e8;\">";
    assert_int_equal (s_count (html, cell), S_EXAMPLE_LINES);
    const char *rows[] = {
        "LTE 데이터 43</td>",      ">13,870</td>",  "5G 슬림 59</td>",    ">39,967</td>",
        "데이터 초과 사용료</td>", ">7,997</td>",   "V컬러링</td>",       ">1,277</td>",
        "선택약정 할인</td>",      ">-13,459</td>", "가족결합 할인</td>", ">-3,300</td>",
        "장기고객 할인</td>",      ">-3,707</td>",  "단말기 할부금</td>", ">31,250</td>",
        "소액결제</td>",           ">12,000</td>",  "콘텐츠 이용료</td>", ">5,500</td>",
        "부가가치세</td>",         ">4,814</td>",   "미납 요금</td>",     ">15,000</td>",
        "원 단위 절사</td>",       ">-9</td>",      "청구금액 합계</th>", ">111,200</th>",
    };
    const char *at = html;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *next = strstr (at, rows[i]);
        if (!next)
            fail_msg ("\"%s\" missing or out of order", rows[i]);
        at = next + strlen (rows[i]);
    }
    assert_null (strstr (html, "이번 달 청구 내역이 없습니다."));
    assert_non_null (strstr (html, "</html>"));
}

static void
test_example_sms_and_push (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    const s_row_t *sms_row = s_row ("SMS");
    const char *expected_body
        = "[빌플로우] 2026년 10월 이용요금 안내\n"
          "\n"
          "홍길동 고객님, 2026년 10월 이용요금을 안내해 드립니다.\n"
          "\n"
          "청구금액: 111,200원\n"
          "납부기한: 11월 25일\n"
          "\n"
          "[청구 내역]\n"
          "LTE 데이터 43 13,870원\n"
          "5G 슬림 59 39,967원\n"
          "데이터 초과 사용료 7,997원\n"
          "V컬러링 1,277원\n"
          "선택약정 할인 -13,459원\n"
          "가족결합 할인 -3,300원\n"
          "장기고객 할인 -3,707원\n"
          "단말기 할부금 31,250원\n"
          "소액결제 12,000원\n"
          "콘텐츠 이용료 5,500원\n"
          "부가가치세 4,814원\n"
          "미납 요금 15,000원\n"
          "원 단위 절사 -9원\n"
          "\n"
          "※ 할인 금액은 -로 표시됩니다.\n"
          "자세한 내역은 이메일 청구서나 빌플로우 앱에서 확인하실 수 있습니다.\n"
          "문의: 고객센터 114(무료)";
    char body[8192], title[256], shortb[256];
    snprintf (body, sizeof body, "%s", s_render (sms_row->body, &view, false));
    assert_string_equal (body, expected_body);
    snprintf (title, sizeof title, "%s", s_render (sms_row->subject, &view, false));
    snprintf (shortb, sizeof shortb, "%s", s_render (sms_row->short_body, &view, false));
    assert_string_equal (shortb, "[빌플로우] 10월 요금 111,200원, 납기 11/25");
    assert_int_equal (bf_euckr_bytes (shortb, NULL), 42);

    //  The itemised body is over 90 bytes: it goes as LMS, title not cut.
    static bf_sms_t sms;
    char err[256] = "";
    assert_int_equal (bf_sms_compose (body, title, shortb, &sms, err, sizeof err), 0);
    assert_int_equal (sms.kind, BF_SMS_KIND_LMS);
    assert_string_equal (bf_sms_channel (sms.kind), "LMS");
    assert_string_equal (sms.title, "[빌플로우] 2026년 10월 이용요금 안내");
    assert_int_equal (sms.title_bytes, 36);
    assert_string_equal (sms.body, expected_body);
    assert_int_equal (sms.body_bytes, (size_t)bf_euckr_bytes (expected_body, NULL));
    assert_true (sms.body_bytes > 90 && sms.body_bytes <= 2000);
    assert_false (sms.cut);
    assert_int_equal (sms.replaced, 0);

    const s_row_t *push = s_row ("PUSH");
    assert_string_equal (s_render (push->subject, &view, false), "2026년 10월 이용요금 안내");
    assert_string_equal (s_render (push->body, &view, false),
                         "홍길동 고객님, 2026년 10월 청구금액은 111,200원입니다. "
                         "납부기한은 11월 25일입니다.");

    //  No name: the greeting falls back to "고객님" in every channel.
    view.name = NULL;
    assert_string_equal (s_render (push->body, &view, false),
                         "고객님, 2026년 10월 청구금액은 111,200원입니다. "
                         "납부기한은 11월 25일입니다.");
    assert_non_null (
        strstr (s_render (sms_row->body, &view, false), "\n고객님, 2026년 10월 이용요금을"));
    assert_non_null (
        strstr (s_render (s_row ("EMAIL")->body, &view, false), "고객님, 안녕하세요.\n"));
    view.name = "";
    assert_non_null (
        strstr (s_render (s_row ("EMAIL")->body_html, &view, true), ">고객님, 안녕하세요.<br>"));
}

/*  A bill too long for LMS goes as the short form.  */
static void
test_long_bill_uses_short_form (void **state)
{
    (void)state;
    static bf_template_line_t lines[150];
    for (size_t i = 0; i < 150; i++)
        lines[i] = (bf_template_line_t){ "CHARGE:CONTENT", 1000 };
    bf_template_view_t view = s_example ();
    view.lines = lines;
    view.line_count = 150;
    view.total = 150000;
    const s_row_t *row = s_row ("SMS");
    char body[16384], title[256], shortb[256];
    snprintf (body, sizeof body, "%s", s_render (row->body, &view, false));
    snprintf (title, sizeof title, "%s", s_render (row->subject, &view, false));
    snprintf (shortb, sizeof shortb, "%s", s_render (row->short_body, &view, false));
    assert_true (bf_euckr_bytes (body, NULL) > 2000);
    static bf_sms_t sms;
    char err[256];
    assert_int_equal (bf_sms_compose (body, title, shortb, &sms, err, sizeof err), 0);
    assert_int_equal (sms.kind, BF_SMS_KIND_SHORT);
    assert_string_equal (bf_sms_channel (sms.kind), "SMS");
    assert_string_equal (sms.body, "[빌플로우] 10월 요금 150,000원, 납기 11/25");
    assert_string_equal (sms.title, "");
    assert_false (sms.cut);
}

/*  The short form fits 90 bytes and the SMS title 40 bytes for every month,
    due day and total the schema allows, and the HTML and text parts render
    for them too.  */
static void
test_shipped_limits_hold_for_any_bill (void **state)
{
    (void)state;
    const s_row_t *row = s_row ("SMS");
    const int64_t totals[] = { 0, 10, 111200, INT64_C (9999999999990), INT64_MAX };
    for (int month = 1; month <= 12; month++)
        for (int day = 5; day <= 25; day += 20)
            for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++) {
                char period[32], due[48];
                snprintf (period, sizeof period, "2026-%02d", month);
                snprintf (due, sizeof due, "%04d-%02d-%02d", month == 12 ? 2027 : 2026,
                          month % 12 + 1, day);
                bf_template_view_t view = s_example ();
                view.period = period;
                view.due_date = due;
                view.total = totals[t];
                size_t replaced = 9;
                long bytes = bf_euckr_bytes (s_render (row->short_body, &view, false), &replaced);
                assert_true (bytes > 0 && bytes <= BF_SMS_MAX_BYTES);
                assert_int_equal (replaced, 0);
                bytes = bf_euckr_bytes (s_render (row->subject, &view, false), &replaced);
                assert_true (bytes > 0 && bytes <= BF_SMS_LMS_TITLE_MAX_BYTES);
                assert_int_equal (replaced, 0);
                s_render (s_row ("EMAIL")->body_html, &view, true);
            }
}

static void
test_html_escaping (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    view.name = "<script>alert(\"x\")</script> & 'Kim'";
    const char *tmpl = "[{{name}}]";
    assert_string_equal (s_render (tmpl, &view, true),
                         "[&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                         "&#39;Kim&#39;]");
    assert_string_equal (s_render (tmpl, &view, false), "[<script>alert(\"x\")</script> & 'Kim']");
    //  Literal template text is markup: never escaped.
    assert_string_equal (s_render ("<b>{{name}}</b>&nbsp;", &view, true),
                         "<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                         "&#39;Kim&#39;</b>&nbsp;");
    //  In the shipped HTML, nothing of the name survives unescaped.
    const char *html = s_render (s_row ("EMAIL")->body_html, &view, true);
    assert_null (strstr (html, "<script>"));
    assert_non_null (strstr (html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                                   "&#39;Kim&#39; 고객님"));
    //  Labels from the catalogue are escaped too.
    static const bf_template_line_t lines[] = { { "PLAN:<A&B>", 5 } };
    view.lines = lines;
    view.line_count = 1;
    assert_string_equal (s_render ("{{#lines}}{{label}}|{{code}}{{/lines}}", &view, true),
                         "요금제 (&lt;A&amp;B&gt;)|PLAN:&lt;A&amp;B&gt;");
}

static void
test_values_are_cleaned (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    //  A line break in a value cannot reach a mail header or split an SMS.
    view.name = "홍\r\n길동\t\x7f";
    assert_string_equal (s_render ("{{name}}", &view, false), "홍  길동  ");
    view.name = "a\xff\xc0z\xea\xb0";
    assert_string_equal (s_render ("{{name}}", &view, false), "a??z??");
    assert_string_equal (s_render ("{{name}}", &view, true), "a??z??");
}

static void
test_variables (void **state)
{
    (void)state;
    static const bf_template_line_t lines[] = { { "VAT", -1 }, { "X", -1000 }, { "Y", 0 } };
    bf_template_view_t view = {
        .name = "Kim",
        .period = "2027-01",
        .total = 1234567,
        .due_date = "2027-02-05",
        .bill_id = 42,
        .lines = lines,
        .line_count = 3,
    };
    assert_string_equal (s_render ("{{ name }}|{{period}}|{{period_label}}|{{month_label}}|"
                                   "{{total}}|{{due_date}}|{{due_label}}|{{due_short}}|"
                                   "{{bill_id}}|{{line_count}}",
                                   &view, false),
                         "Kim|2027-01|2027년 1월|1월|1,234,567|2027-02-05|2월 5일|2/5|42|3");
    assert_string_equal (s_render ("{{#lines}}{{code}}={{amount}};{{/lines}}", &view, false),
                         "VAT=-1;X=-1,000;Y=0;");
    //  Sections on scalars: {{#x}} when not empty, {{^x}} when empty.
    assert_string_equal (
        s_render ("{{#name}}<{{name}}>{{/name}}{{^name}}none{{/name}}", &view, false), "<Kim>");
    assert_string_equal (s_render ("{{# lines }}{{#label}}[{{label}}]{{/label}}{{/ lines }}"
                                   "{{^lines}}no lines{{/lines}}",
                                   &view, false),
                         "[부가가치세][X][Y]");
    //  Line variables inside {{#lines}} see the bill-level ones too.
    assert_string_equal (s_render ("{{#lines}}{{name}}{{/lines}}", &view, false), "KimKimKim");

    view.name = NULL;
    view.lines = NULL;
    view.line_count = 0;
    assert_string_equal (s_render ("{{#name}}<{{name}}>{{/name}}{{^name}}none{{/name}}|"
                                   "{{#lines}}{{label}}{{/lines}}{{^lines}}no lines{{/lines}}|"
                                   "{{line_count}}",
                                   &view, false),
                         "none|no lines|0");
}

static void
test_empty_bill_in_shipped_templates (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    view.lines = NULL;
    view.line_count = 0;
    view.total = 0;
    const char *text = s_render (s_row ("EMAIL")->body, &view, false);
    assert_non_null (strstr (text, "■ 청구 내역\n  이번 달 청구 내역이 없습니다.\n  ---"));
    assert_non_null (strstr (text, "청구금액 합계: 0원"));
    const char *html = s_render (s_row ("EMAIL")->body_html, &view, true);
    assert_non_null (strstr (html, "이번 달 청구 내역이 없습니다."));
    assert_int_equal (s_count (html, "<tr><td style=\"padding:8px;border-bottom"), 0);
    assert_non_null (
        strstr (s_render (s_row ("SMS")->body, &view, false), "[청구 내역]\n청구 내역 없음\n\n"));
}

static void
test_line_labels (void **state)
{
    (void)state;
    static const struct {
        const char *code, *label;
    } cases[] = {
        { "PLAN:LTE_43", "LTE 데이터 43" },
        { "PLAN:NO_SUCH", "요금제 (NO_SUCH)" },
        { "ADDON:VCOLORING", "V컬러링" },
        { "ADDON:X1", "부가서비스 (X1)" },
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
        { "CHARGE:GIFT", "CHARGE:GIFT" },
        { "SOMETHING_NEW", "SOMETHING_NEW" },
        { "PLAN:", "PLAN:" },
        { "vat", "vat" },
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *label = bf_template_line_label (cases[i].code, s_lookup, NULL, buf, sizeof buf);
        if (strcmp (label, cases[i].label) != 0)
            fail_msg ("%s -> \"%s\", expected \"%s\"", cases[i].code, label, cases[i].label);
    }
    //  Without a lookup, plans and add-ons show their code.
    assert_string_equal (bf_template_line_label ("PLAN:LTE_43", NULL, NULL, buf, sizeof buf),
                         "요금제 (LTE_43)");
    assert_string_equal (bf_template_line_label ("ADDON:VCOLORING", NULL, NULL, buf, sizeof buf),
                         "부가서비스 (VCOLORING)");
    //  A buffer too small for the composed label: the code, never a cut label.
    assert_string_equal (bf_template_line_label ("PLAN:LTE_43", NULL, NULL, buf, 10),
                         "PLAN:LTE_43");
    assert_string_equal (bf_template_line_label ("PLAN:LTE_43", NULL, NULL, NULL, 0),
                         "PLAN:LTE_43");
    assert_string_equal (bf_template_line_label (NULL, NULL, NULL, buf, sizeof buf), "");
    //  The lookup is asked with the kind and the bare code.
    s_lookups = 0;
    bf_template_line_label ("VAT", s_lookup, NULL, buf, sizeof buf);
    assert_int_equal (s_lookups, 0);
    bf_template_line_label ("ADDON:VCOLORING", s_lookup, NULL, buf, sizeof buf);
    assert_int_equal (s_lookups, 1);
}

/*  A line that carries its stored label (bill_line.label, what settle wrote)
    shows exactly that, whatever its code and the lookup say; escaped in
    HTML like every value.  */
static void
test_stored_label_is_shown (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    static const bf_template_line_t lines[] = {
        { "PLAN:LTE_43", 13870, "LTE 데이터 43 (2025 요금제)" },
        { "VAT", 4814, "부가세" },
        { "ADDON:VCOLORING", 1277, NULL },
        { "PLAN:X", 5, "<A&B>" },
    };
    view.lines = lines;
    view.line_count = 4;
    assert_string_equal (s_render ("{{#lines}}{{label}}|{{/lines}}", &view, false),
                         "LTE 데이터 43 (2025 요금제)|부가세|V컬러링|<A&B>|");
    assert_string_equal (s_render ("{{#lines}}{{label}}|{{/lines}}", &view, true),
                         "LTE 데이터 43 (2025 요금제)|부가세|V컬러링|&lt;A&amp;B&gt;|");
}

static void
test_format_won (void **state)
{
    (void)state;
    static const struct {
        int64_t amount;
        const char *text;
    } cases[] = {
        { 0, "0" },
        { 1, "1" },
        { 999, "999" },
        { 1000, "1,000" },
        { 111200, "111,200" },
        { 999999, "999,999" },
        { 1000000, "1,000,000" },
        { -1, "-1" },
        { -999, "-999" },
        { -1000, "-1,000" },
        { -13459, "-13,459" },
        { INT64_MAX, "9,223,372,036,854,775,807" },
        { INT64_MIN, "-9,223,372,036,854,775,808" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[27];
        int n = bf_won_format (cases[i].amount, out, sizeof out);
        assert_string_equal (out, cases[i].text);
        assert_int_equal (n, (int)strlen (cases[i].text));
    }
    char out[8] = "xxxxxxx";
    assert_int_equal (bf_won_format (1000000, out, sizeof out), -1); /* needs 10 */
    assert_string_equal (out, "");
    assert_int_equal (bf_won_format (111200, out, 8), 7);
    assert_int_equal (bf_won_format (1, NULL, 0), -1);
}

static void
test_template_errors (void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *error;
    } cases[] = {
        { "Hello {{nmae}}", "line 1: unknown variable \"nmae\"" },
        { "a\nb\n{{oops}}", "line 3: unknown variable \"oops\"" },
        { "{{#lines}}x", "line 1: section \"lines\" is never closed" },
        { "x\n{{#name}}\n{{#lines}}{{/lines}}", "line 2: section \"name\" is never closed" },
        { "x{{/lines}}", "\"{{/lines}}\" closes no open section" },
        { "{{#lines}}{{#name}}{{/lines}}{{/name}}", "\"{{/lines}}\" closes section \"name\"" },
        { "{{name", "tag \"{{\" is never closed" },
        { "{{name}", "tag \"{{\" is never closed" },
        { "{{}}", "malformed tag \"{{}}\"" },
        { "{{ }}", "malformed tag" },
        { "{{#}}", "malformed tag" },
        { "{{{name}}}", "malformed tag \"{{{name}}\"" },
        { "{{Name}}", "malformed tag" },
        { "{{na-me}}", "malformed tag" },
        { "{{!comment}}", "malformed tag" },
        { "{{name}}{{label}}", "\"label\" is only known inside {{#lines}}" },
        { "{{^lines}}{{amount}}{{/lines}}", "\"amount\" is only known inside {{#lines}}" },
        { "{{#lines}}{{#lines}}{{/lines}}{{/lines}}", "{{#lines}} inside {{#lines}}" },
        { "{{lines}}", "\"lines\" is a section" },
        { "{{#name}}{{oops}}{{/name}}", "unknown variable \"oops\"" },
        { "{{^lines}}{{oops}}{{/lines}}", "unknown variable \"oops\"" },
        { "{{#lines}}{{oops}}{{/lines}}", "unknown variable \"oops\"" },
        { "ok\n\xff", "line 2: not valid UTF-8" },
        { "\xed\xa0\x80", "not valid UTF-8" },
        { "{{#a_very_long_name_that_is_far_too_long_to_be_one}}", "malformed tag" },
        { "{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}"
          "{{/name}}{{/name}}{{/name}}{{/name}}{{/name}}{{/name}}{{/name}}{{/name}}{{/name}}",
          "sections nested more than 8 deep" },
    };
    bf_template_view_t with_lines = s_example ();
    bf_template_view_t without_lines = s_example ();
    without_lines.line_count = 0;
    without_lines.name = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        if (bf_template_check (cases[i].tmpl, err, sizeof err) != -1)
            fail_msg ("check accepted \"%s\"", cases[i].tmpl);
        if (!strstr (err, cases[i].error))
            fail_msg ("\"%s\": error \"%s\", expected \"%s\"", cases[i].tmpl, err, cases[i].error);
        //  Rendering finds the same error whatever the bill, and writes nothing.
        const bf_template_view_t *views[] = { &with_lines, &without_lines };
        for (size_t v = 0; v < 2; v++) {
            char out[256] = "junk";
            err[0] = 0;
            assert_int_equal (bf_template_render (cases[i].tmpl, views[v], false, out, sizeof out,
                                                  err, sizeof err),
                              -1);
            assert_string_equal (out, "");
            if (!strstr (err, cases[i].error))
                fail_msg ("render \"%s\": \"%s\"", cases[i].tmpl, err);
        }
    }
    //  Eight levels are allowed; spaces inside tags are fine.
    char err[256] = "";
    assert_int_equal (bf_template_check ("{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}{{#name}}"
                                         "{{#name}}{{#name}}x{{/name}}{{/name}}{{/name}}{{/name}}"
                                         "{{/name}}{{/name}}{{/name}}{{/name}}",
                                         err, sizeof err),
                      0);
    assert_int_equal (
        bf_template_check ("{{ # lines }}{{ label }}{{ / lines }} }} { {x}", err, sizeof err), 0);
    assert_int_equal (bf_template_check ("", err, sizeof err), 0);
    assert_int_equal (bf_template_check (NULL, err, sizeof err), -1);
    assert_int_equal (bf_template_check ("{{oops}}", NULL, 0), -1);
}

static void
test_check_set (void **state)
{
    (void)state;
    char err[256];
    bf_template_set_t set = { "EMAIL", "s", "b", NULL, NULL };
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "body_html: missing (needed for EMAIL)");
    set.body_html = "<p>{{name}}</p>";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), 0);
    set.body_html = "<p>{{nmae}}</p>";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "body_html: line 1: unknown variable \"nmae\"");
    set.body_html = "<p>😀</p>"; /* email is UTF-8: fine */
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), 0);

    set = (bf_template_set_t){ "SMS", "t", "b", NULL, NULL };
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "short_body: missing (needed for SMS)");
    set.short_body = "";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    set.short_body = "짧게 {{total}}";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), 0);
    set.body = "요금\n안내 😀";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "body: line 2: \"😀\" cannot be sent in EUC-KR");
    set.body = "b";
    set.subject = "똠 {{name}}";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "subject: line 1: \"똠\" cannot be sent in EUC-KR");

    set = (bf_template_set_t){ "PUSH", "t", NULL, NULL, NULL };
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "body: missing (needed for PUSH)");
    set.body = "안녕 😀 {{name}}";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), 0);
    set.subject = NULL;
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);

    set.channel = "FAX";
    assert_int_equal (bf_template_check_set (&set, err, sizeof err), -1);
    assert_string_equal (err, "unknown channel \"FAX\"");
    assert_int_equal (bf_template_check_set (NULL, err, sizeof err), -1);
}

static void
test_bad_view (void **state)
{
    (void)state;
    char out[256], err[256];
    bf_template_view_t view = s_example ();
    const char *bad_periods[] = { NULL, "", "2026-13", "2026-1", "202610", "2026-10x" };
    for (size_t i = 0; i < sizeof bad_periods / sizeof bad_periods[0]; i++) {
        view.period = bad_periods[i];
        strcpy (out, "junk");
        assert_int_equal (bf_template_render ("x", &view, false, out, sizeof out, err, sizeof err),
                          -1);
        assert_string_equal (out, "");
        assert_non_null (strstr (err, "period"));
    }
    view = s_example ();
    const char *bad_dates[] = { NULL, "2026-02-30", "2026-11-25 ", "11/25" };
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        view.due_date = bad_dates[i];
        assert_int_equal (bf_template_render ("x", &view, false, out, sizeof out, err, sizeof err),
                          -1);
        assert_non_null (strstr (err, "due date"));
    }
    view = s_example ();
    view.lines = NULL;
    assert_int_equal (bf_template_render ("x", &view, false, out, sizeof out, err, sizeof err), -1);
    static const bf_template_line_t no_code[] = { { "VAT", 1 }, { NULL, 2 } };
    view.lines = no_code;
    view.line_count = 2;
    assert_int_equal (bf_template_render ("x", &view, false, out, sizeof out, err, sizeof err), -1);
    assert_string_equal (err, "view: line 2 has no code");
    assert_int_equal (bf_template_render ("x", NULL, false, out, sizeof out, err, sizeof err), -1);
    view = s_example ();
    assert_int_equal (bf_template_render (NULL, &view, false, out, sizeof out, err, sizeof err),
                      -1);
    assert_int_equal (bf_template_render ("x", &view, false, NULL, 0, err, sizeof err), -1);
    assert_int_equal (bf_template_render ("x", &view, false, out, 0, NULL, 0), -1);
}

/*  Every buffer size below the need fails cleanly; the exact need works.  */
static void
test_output_too_small (void **state)
{
    (void)state;
    bf_template_view_t view = s_example ();
    const char *tmpl = s_row ("EMAIL")->body;
    char err[256];
    static char full[8192];
    int need = bf_template_render (tmpl, &view, false, full, sizeof full, err, sizeof err);
    assert_true (need > 0);
    static char out[8192];
    for (size_t size = 1; size <= (size_t)need; size++) {
        memset (out, 'X', sizeof out);
        err[0] = 0;
        assert_int_equal (bf_template_render (tmpl, &view, false, out, size, err, sizeof err), -1);
        assert_string_equal (out, "");
        char expected[128];
        snprintf (expected, sizeof expected, "rendered text needs %d bytes, the buffer holds %zu",
                  need + 1, size);
        assert_string_equal (err, expected);
        assert_int_equal (out[size], 'X'); /* nothing written past outsize */
    }
    assert_int_equal (
        bf_template_render (tmpl, &view, false, out, (size_t)need + 1, err, sizeof err), need);
    assert_string_equal (out, full);
}

static void
test_euckr_bytes (void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long bytes;
        size_t replaced;
    } cases[] = {
        { "", 0, 0 },
        { "abc", 3, 0 },
        { "a b\n~\\", 6, 0 },
        { "가", 2, 0 },
        { "가나다", 6, 0 },
        { "가a", 3, 0 },
        { "[빌플로우] 10월 요금 111,200원, 납기 11/25", 42, 0 },
        { "…", 2, 0 },
        { "■※·", 6, 0 },
        { "😀", 1, 1 }, /* emoji: sent as '?' */
        { "a😀b", 3, 1 },
        { "똠", 1, 1 }, /* Hangul outside KS X 1001 */
        { "김똠순", 5, 1 },
        { "é", 1, 1 },
        { "😀😀가", 4, 2 },
        { "a\xc2\x85"
          "b",
          3, 1 }, /* C1 control NEL */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t replaced = 99;
        long bytes = bf_euckr_bytes (cases[i].text, &replaced);
        if (bytes != cases[i].bytes || replaced != cases[i].replaced)
            fail_msg ("\"%s\": %ld bytes, %zu replaced; expected %ld, %zu", cases[i].text, bytes,
                      replaced, cases[i].bytes, cases[i].replaced);
    }
    const char *invalid[]
        = { "\xff", "a\x80", "\xea\xb0", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "가\xea" };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        size_t replaced = 99;
        assert_int_equal (bf_euckr_bytes (invalid[i], &replaced), -1);
        assert_int_equal (replaced, 0);
    }
    assert_int_equal (bf_euckr_bytes (NULL, NULL), -1);
    assert_int_equal (bf_euckr_bytes ("가", NULL), 2);
}

/*  Every code point of the BMP (and some beyond) against iconv directly:
    what EUC-KR encodes counts its real size, the rest counts 1 ('?').  */
static void
test_euckr_matches_iconv (void **state)
{
    (void)state;
    iconv_t cd = iconv_open ("EUC-KR", "UTF-8");
    assert_true (cd != (iconv_t)-1);
    bf_text_buf_t buf = { 0 };
    size_t encodable = 0;
    for (uint32_t cp = 1; cp < 0x20000; cp += cp < 0x10000 ? 1 : 97) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        bf_text_buf_reset (&buf);
        assert_int_equal (bf_text_buf_utf8 (&buf, cp), 0);
        char *utf8 = buf.data;
        char euc[16];
        char *in = utf8, *outp = euc;
        size_t inleft = strlen (utf8), outleft = sizeof euc;
        size_t rc = iconv (cd, &in, &inleft, &outp, &outleft);
        iconv (cd, NULL, NULL, NULL, NULL);
        //  C1 controls are passed through by glibc; they go as '?'.
        bool bad = rc == (size_t)-1 || (cp >= 0x80 && cp <= 0x9F);
        long expected = bad ? 1 : (long)(sizeof euc - outleft);
        if (!bad && cp >= 0x80 && expected != 2)
            fail_msg ("U+%04X: iconv makes %ld bytes of it", cp, expected);
        size_t replaced;
        long bytes = bf_euckr_bytes (utf8, &replaced);
        if (bytes != expected || replaced != bad)
            fail_msg ("U+%04X: %ld bytes (%zu replaced), iconv says %ld", cp, bytes, replaced,
                      expected);
        encodable += !bad;
    }
    iconv_close (cd);
    bf_text_buf_free (&buf);
    //  ASCII, 2,350 Hangul syllables, 4,888 hanja and the symbols.
    assert_true (encodable > 8000);
}

/*  Fitting a mixed string to every limit: the result is always a whole
    number of characters of the sendable text, as long as possible, with
    "…" exactly when it was cut and there is room.  */
static void
test_fit_exhaustive (void **state)
{
    (void)state;
    const char *input = "A가b😀나c똠다…d 라";
    const char *sendable = "A가b?나c?다…d 라";
    size_t total = (size_t)bf_euckr_bytes (sendable, NULL);
    assert_int_equal (total, 17);
    assert_int_equal (bf_euckr_bytes (input, NULL), 17);
    //  Character boundaries of the sendable text.
    bool boundary[64] = { false };
    for (size_t i = 0; i <= strlen (sendable); i++)
        boundary[i] = ((unsigned char)sendable[i] & 0xC0) != 0x80;

    for (int ellipsis = 0; ellipsis <= 1; ellipsis++)
        for (size_t max = 0; max <= total + 2; max++) {
            char out[BF_EUCKR_UTF8_SIZE (64)];
            bf_euckr_fit_t fit;
            assert_int_equal (
                bf_euckr_fit (input, max, ellipsis, out, BF_EUCKR_UTF8_SIZE (max), &fit), 0);
            size_t replaced;
            long bytes = bf_euckr_bytes (out, &replaced);
            assert_true (bytes >= 0); /* valid UTF-8 */
            assert_int_equal ((size_t)bytes, fit.bytes);
            assert_true (fit.bytes <= max);
            assert_int_equal (replaced, 0); /* already sendable */
            assert_int_equal (fit.replaced, s_count (out, "?"));
            assert_int_equal (fit.cut, max < total);
            if (!fit.cut) {
                assert_string_equal (out, sendable);
                continue;
            }
            size_t len = strlen (out);
            bool marked = ellipsis && max >= 2;
            if (marked) {
                assert_true (len >= 3);
                assert_string_equal (out + len - 3, "…");
                len -= 3;
            }
            //  A prefix of the sendable text ending at a character boundary...
            assert_memory_equal (out, sendable, len);
            assert_true (boundary[len]);
            //  ...and the longest such prefix.
            size_t budget = marked ? max - 2 : max;
            size_t next = len + 1;
            while (!boundary[next])
                next++;
            char longer[64];
            memcpy (longer, sendable, next);
            longer[next] = 0;
            assert_true ((size_t)bf_euckr_bytes (longer, NULL) > budget);
        }
}

static void
test_fit_errors (void **state)
{
    (void)state;
    char out[16] = "junk";
    bf_euckr_fit_t fit;
    assert_int_equal (bf_euckr_fit ("가\xff", 10, false, out, sizeof out, &fit), -1);
    assert_string_equal (out, "");
    assert_int_equal (bf_euckr_fit (NULL, 10, false, out, sizeof out, &fit), -1);
    //  Out too small for what fits: an error, never a silent cut.
    strcpy (out, "junk");
    assert_int_equal (bf_euckr_fit ("가나다", 6, false, out, 9, &fit), -1);
    assert_string_equal (out, "");
    assert_int_equal (bf_euckr_fit ("가나다", 6, false, out, 10, &fit), 0);
    assert_string_equal (out, "가나다");
    assert_int_equal (bf_euckr_fit ("가나다", 6, false, out, 10, NULL), 0);
    //  "…" needs 3 UTF-8 bytes: 가 + … + NUL = 7.
    assert_int_equal (bf_euckr_fit ("가나다", 4, true, out, 6, &fit), -1);
    assert_int_equal (bf_euckr_fit ("가나다", 4, true, out, 7, &fit), 0);
    assert_string_equal (out, "가…");
    //  Room that runs out after the cut point is settled is no error when
    //  the text is cut: 가 + … fits in 7 although 가가a (8 bytes with NUL)
    //  did not, before the walk knew it would cut.
    assert_int_equal (bf_euckr_fit ("가가ab가", 5, true, out, 7, &fit), 0);
    assert_string_equal (out, "가…");
    assert_true (fit.cut);
    assert_int_equal (fit.bytes, 4);
    assert_int_equal (bf_euckr_fit ("가가ab", 6, true, out, 7, &fit), -1);
    assert_int_equal (bf_euckr_fit ("가가ab", 6, true, out, 10, &fit), 0);
    assert_string_equal (out, "가가ab");
    //  Too short a limit for a 2-byte character: empty, still cut.
    assert_int_equal (bf_euckr_fit ("가", 1, true, out, sizeof out, &fit), 0);
    assert_string_equal (out, "");
    assert_true (fit.cut);
    assert_int_equal (fit.bytes, 0);
}

/*  A string of exactly n EUC-KR bytes: Hangul, and one ASCII letter when n
    is odd.  */
static char *
s_text_of (size_t n, const char *lead)
{
    size_t leadlen = strlen (lead);
    char *text = malloc (leadlen + n * 2 + 2);
    assert_non_null (text);
    strcpy (text, lead);
    size_t have = (size_t)bf_euckr_bytes (lead, NULL);
    assert_true (have <= n);
    size_t w = leadlen;
    if ((n - have) % 2)
        text[w++] = 'a';
    for (size_t i = 0; i < (n - have) / 2; i++) {
        memcpy (text + w, "가", 3);
        w += 3;
    }
    text[w] = 0;
    assert_int_equal (bf_euckr_bytes (text, NULL), (long)n);
    return text;
}

static void
test_sms_lms_boundaries (void **state)
{
    (void)state;
    static bf_sms_t sms;
    char err[256];
    const char *title = "[빌플로우] 2026년 10월 이용요금 안내";
    const char *shortb = "[빌플로우] 10월 요금 111,200원, 납기 11/25";

    static const struct {
        size_t bytes;
        bf_sms_kind_t kind;
    } cases[] = {
        { 1, BF_SMS_KIND_SMS },    { 89, BF_SMS_KIND_SMS },     { 90, BF_SMS_KIND_SMS },
        { 91, BF_SMS_KIND_LMS },   { 92, BF_SMS_KIND_LMS },     { 1999, BF_SMS_KIND_LMS },
        { 2000, BF_SMS_KIND_LMS }, { 2001, BF_SMS_KIND_SHORT }, { 5000, BF_SMS_KIND_SHORT },
    };
    const char *leads[] = { "", "a", "[안내] " };
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            if ((long)cases[i].bytes < bf_euckr_bytes (leads[l], NULL))
                continue;
            char *body = s_text_of (cases[i].bytes, leads[l]);
            err[0] = 0;
            assert_int_equal (bf_sms_compose (body, title, shortb, &sms, err, sizeof err), 0);
            if (sms.kind != cases[i].kind)
                fail_msg ("%zu bytes: kind %d, expected %d", cases[i].bytes, sms.kind,
                          cases[i].kind);
            if (sms.kind == BF_SMS_KIND_SHORT) {
                assert_string_equal (sms.body, shortb);
                assert_int_equal (sms.body_bytes, 42);
            } else {
                assert_string_equal (sms.body, body);
                assert_int_equal (sms.body_bytes, cases[i].bytes);
            }
            if (sms.kind == BF_SMS_KIND_LMS) {
                assert_string_equal (sms.title, title);
                assert_int_equal (sms.title_bytes, 36);
            } else {
                assert_string_equal (sms.title, "");
                assert_int_equal (sms.title_bytes, 0);
            }
            assert_false (sms.cut);
            free (body);
        }

    //  Too long for LMS and no short form: the template's fault, reported.
    char *body = s_text_of (2001, "");
    assert_int_equal (bf_sms_compose (body, title, NULL, &sms, err, sizeof err), -1);
    assert_string_equal (err, "body is 2001 bytes in EUC-KR, over the LMS limit of 2000, and "
                              "the template has no short form");
    assert_int_equal (bf_sms_compose (body, title, "", &sms, err, sizeof err), -1);
    free (body);

    //  LMS titles: 40 bytes go as they are; 41 are cut at a character
    //  boundary with "…", within 40.
    static const struct {
        size_t bytes;
        const char *lead;
        size_t expected_bytes;
        bool cut;
    } titles[] = {
        { 39, "", 39, false },  { 40, "", 40, false }, { 40, "a", 40, false },
        { 41, "", 39, true },   /* a + 18 가 + … = 39: one more 가 would be 41 */
        { 42, "aa", 40, true }, /* aa + 18 가 + … */
        { 42, "", 40, true },   /* 19 가 + … */
        { 100, "", 40, true },
    };
    body = s_text_of (91, "");
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++) {
        char *t = s_text_of (titles[i].bytes, titles[i].lead);
        assert_int_equal (bf_sms_compose (body, t, shortb, &sms, err, sizeof err), 0);
        assert_int_equal (sms.kind, BF_SMS_KIND_LMS);
        assert_int_equal (sms.title_bytes, titles[i].expected_bytes);
        assert_int_equal (bf_euckr_bytes (sms.title, NULL), (long)sms.title_bytes);
        assert_int_equal (sms.cut, titles[i].cut);
        if (titles[i].cut) {
            size_t len = strlen (sms.title);
            assert_string_equal (sms.title + len - 3, "…");
            assert_memory_equal (sms.title, t, len - 3);
        } else
            assert_string_equal (sms.title, t);
        free (t);
    }
    //  No title: LMS without one.
    assert_int_equal (bf_sms_compose (body, NULL, shortb, &sms, err, sizeof err), 0);
    assert_int_equal (sms.kind, BF_SMS_KIND_LMS);
    assert_string_equal (sms.title, "");
    free (body);

    //  A short form over 90 bytes is cut with "…" and flagged.
    body = s_text_of (2001, "");
    char *longshort = s_text_of (91, "[빌플로우] ");
    assert_int_equal (bf_sms_compose (body, title, longshort, &sms, err, sizeof err), 0);
    assert_int_equal (sms.kind, BF_SMS_KIND_SHORT);
    assert_true (sms.cut);
    assert_int_equal (sms.body_bytes, 89); /* "[빌플로우] " + 38 가 = 87, + … */
    assert_int_equal (bf_euckr_bytes (sms.body, NULL), 89);
    free (longshort);
    char *exact = s_text_of (90, "[빌플로우] ");
    assert_int_equal (bf_sms_compose (body, title, exact, &sms, err, sizeof err), 0);
    assert_false (sms.cut);
    assert_string_equal (sms.body, exact);
    free (exact);
    free (body);

    //  Invalid UTF-8 anywhere is an error.
    assert_int_equal (bf_sms_compose ("\xff", title, shortb, &sms, err, sizeof err), -1);
    assert_int_equal (sms.kind, BF_SMS_KIND_SMS);
    assert_string_equal (sms.body, "");
    body = s_text_of (91, "");
    assert_int_equal (bf_sms_compose (body, "\xc0", shortb, &sms, err, sizeof err), -1);
    free (body);
    body = s_text_of (2001, "");
    assert_int_equal (bf_sms_compose (body, title, "\xc0", &sms, err, sizeof err), -1);
    free (body);
    assert_int_equal (bf_sms_compose (NULL, title, shortb, &sms, err, sizeof err), -1);
    assert_int_equal (bf_sms_compose ("x", title, shortb, NULL, err, sizeof err), -1);
    assert_string_equal (bf_sms_channel (BF_SMS_KIND_SMS), "SMS");
}

/*  Characters outside EUC-KR go as '?' and count 1 byte, at the limits too.  */
static void
test_sms_unencodable (void **state)
{
    (void)state;
    static bf_sms_t sms;
    char err[256];
    char body[256];
    memset (body, 'x', 89);
    strcpy (body + 89, "😀"); /* 89 + 1 = 90: still SMS */
    assert_int_equal (bf_sms_compose (body, "t", "s", &sms, err, sizeof err), 0);
    assert_int_equal (sms.kind, BF_SMS_KIND_SMS);
    assert_int_equal (sms.body_bytes, 90);
    assert_int_equal (sms.replaced, 1);
    assert_int_equal (strlen (sms.body), 90);
    assert_int_equal (sms.body[89], '?');

    memset (body, 'x', 90);
    strcpy (body + 90, "똠"); /* 91: LMS */
    assert_int_equal (bf_sms_compose (body, "제목 😀", "s", &sms, err, sizeof err), 0);
    assert_int_equal (sms.kind, BF_SMS_KIND_LMS);
    assert_int_equal (sms.body_bytes, 91);
    assert_string_equal (sms.title, "제목 ?");
    assert_int_equal (sms.title_bytes, 6);
    assert_int_equal (sms.replaced, 2);
    assert_null (strstr (sms.body, "똠"));
}

static void
test_preview_masks_contacts (void **state)
{
    (void)state;
    char out[4096];
    int n = bf_template_preview ("EMAIL", "hong.gildong@example.com",
                                 "[빌플로우] 2026년 10월 이용요금 안내", "본문", out, sizeof out);
    assert_int_equal (n, (int)strlen (out));
    assert_string_equal (out, "채널: EMAIL\n"
                              "받는 사람: h***@example.com\n"
                              "제목: [빌플로우] 2026년 10월 이용요금 안내\n"
                              "\n"
                              "본문");

    n = bf_template_preview ("SMS", "01012345678", NULL, "요금 안내", out, sizeof out);
    assert_string_equal (out, "채널: SMS\n받는 사람: 010-****-5678\n\n요금 안내");
    bf_template_preview ("LMS", "010-1234-5678", "t", "b", out, sizeof out);
    assert_non_null (strstr (out, "받는 사람: 010-****-5678\n"));
    bf_template_preview ("PUSH", "fcm:AAAA1234secrettoken", "t", "b", out, sizeof out);
    assert_non_null (strstr (out, "받는 사람: ***\n"));
    assert_null (strstr (out, "secret"));
    bf_template_preview ("EMAIL", "not an email", "t", "b", out, sizeof out);
    assert_non_null (strstr (out, "받는 사람: ***\n"));
    bf_template_preview ("SMS", "hong@example.com", "t", "b", out, sizeof out);
    assert_non_null (strstr (out, "받는 사람: ***\n"));

    //  Contacts inside the text (say, a name field holding an address) are
    //  masked too (an address without a dot in its domain as well: bf_mask
    //  errs on the side of masking); amounts, dates and short numbers are
    //  not contacts.
    const char *body = "홍길동(hong.gildong@example.com) 010-1234-5678, 01098765432.\n"
                       "<a@b.co> x@localhost @ a@ 청구금액 111,200원, 2026-11-25, 문의 114, "
                       "청구번호 202610000123, 0";
    bf_template_preview ("EMAIL", "hong.gildong@example.com", "Re: kim@example.org", body, out,
                         sizeof out);
    assert_string_equal (out, "채널: EMAIL\n"
                              "받는 사람: h***@example.com\n"
                              "제목: Re: k***@example.org\n"
                              "\n"
                              "홍길동(h***@example.com) 010-****-5678, 010-****-5432.\n"
                              "<a***@b.co> x***@localhost @ a@ 청구금액 111,200원, 2026-11-25, "
                              "문의 114, 청구번호 202610000123, 0");

    //  The shipped email, previewed: the subscriber's name shows, no contact.
    bf_template_view_t view = s_example ();
    view.name = "홍길동 010-2222-3333";
    char subject[256];
    snprintf (subject, sizeof subject, "%s", s_render (s_row ("EMAIL")->subject, &view, false));
    static char preview[16384];
    bf_template_preview ("EMAIL", "gildong@example.co.kr", subject,
                         s_render (s_row ("EMAIL")->body, &view, false), preview, sizeof preview);
    assert_non_null (strstr (preview, "받는 사람: g***@example.co.kr\n"));
    assert_non_null (strstr (preview, "홍길동 010-****-3333 고객님"));
    assert_null (strstr (preview, "2222"));
    assert_null (strstr (preview, "gildong@"));

    //  Too small: an error, never a cut preview, at every size.
    n = bf_template_preview ("SMS", "01012345678", "제목", "요금 안내 010-1234-5678", out,
                             sizeof out);
    assert_true (n > 0);
    char full[4096];
    snprintf (full, sizeof full, "%s", out);
    for (size_t size = 1; size <= (size_t)n; size++) {
        memset (out, 'X', sizeof out);
        assert_int_equal (bf_template_preview ("SMS", "01012345678", "제목",
                                               "요금 안내 010-1234-5678", out, size),
                          -1);
        assert_string_equal (out, "");
        assert_int_equal (out[size], 'X');
    }
    assert_int_equal (bf_template_preview ("SMS", "01012345678", "제목", "요금 안내 010-1234-5678",
                                           out, (size_t)n + 1),
                      n);
    assert_string_equal (out, full);
    assert_int_equal (bf_template_preview ("SMS", NULL, NULL, NULL, NULL, 0), -1);
    n = bf_template_preview (NULL, NULL, NULL, NULL, out, sizeof out);
    assert_string_equal (out, "채널: \n받는 사람: ***\n\n");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_shipped_rows),
        cmocka_unit_test (test_example_email_text),
        cmocka_unit_test (test_example_email_html),
        cmocka_unit_test (test_example_sms_and_push),
        cmocka_unit_test (test_long_bill_uses_short_form),
        cmocka_unit_test (test_shipped_limits_hold_for_any_bill),
        cmocka_unit_test (test_html_escaping),
        cmocka_unit_test (test_values_are_cleaned),
        cmocka_unit_test (test_variables),
        cmocka_unit_test (test_empty_bill_in_shipped_templates),
        cmocka_unit_test (test_line_labels),
        cmocka_unit_test (test_stored_label_is_shown),
        cmocka_unit_test (test_format_won),
        cmocka_unit_test (test_template_errors),
        cmocka_unit_test (test_check_set),
        cmocka_unit_test (test_bad_view),
        cmocka_unit_test (test_output_too_small),
        cmocka_unit_test (test_euckr_bytes),
        cmocka_unit_test (test_euckr_matches_iconv),
        cmocka_unit_test (test_fit_exhaustive),
        cmocka_unit_test (test_fit_errors),
        cmocka_unit_test (test_sms_lms_boundaries),
        cmocka_unit_test (test_sms_unencodable),
        cmocka_unit_test (test_preview_masks_contacts),
    };
    return cmocka_run_group_tests (tests, s_load_rows, s_free_rows);
}
