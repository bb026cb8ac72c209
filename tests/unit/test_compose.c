/*  test_compose — the bytes notify sends, pinned: the JSON body (escaping
    of quotes, control characters and malformed UTF-8), the RFC 2047
    subject (encoded-words cut on character boundaries, folded lines of at
    most 78 characters), the whole MIME email; and the checks on what can
    be sent (recipients, bodies, smtp_from).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "bf_compose.h"
#include "bf_text.h"

static char *
s_json_string (const char *text)
{
    static char out[1024];
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_compose_json_string (&buf, text), 0);
    snprintf (out, sizeof out, "%s", buf.data);
    bf_text_buf_free (&buf);
    return out;
}

static void
test_json_escaping (void **state)
{
    (void)state;
    assert_string_equal (s_json_string (""), "\"\"");
    assert_string_equal (s_json_string ("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
    assert_string_equal (s_json_string ("a\nb\rc\td"), "\"a\\nb\\rc\\td\"");
    assert_string_equal (s_json_string ("\x01\x1f\x7f\b\f"),
                         "\"\\u0001\\u001f\\u007f\\u0008\\u000c\"");
    /*  Valid UTF-8 as it is, including U+0080..U+009F and 4-byte forms.  */
    assert_string_equal (s_json_string ("요금 \xC2\x85 \xF0\x9F\x98\x80 /"),
                         "\"요금 \xC2\x85 \xF0\x9F\x98\x80 /\"");
    /*  Each malformed byte as U+FFFD: stray, overlong, cut sequence,
        encoded surrogate.  */
    assert_string_equal (s_json_string ("a\377b"), "\"a\\ufffdb\"");
    assert_string_equal (s_json_string ("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    assert_string_equal (s_json_string ("x\xea\xb0"), "\"x\\ufffd\\ufffd\"");
    assert_string_equal (s_json_string ("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
}

static void
test_json_body (void **state)
{
    (void)state;
    bf_send_request_t sms = { .delivery_id = 1,
                              .kind = BF_SEND_SMS,
                              .to = "010-1234-5678",
                              .title = "ignored",
                              .text = "10월 요금 \"17,793원\"" };
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_compose_json (&buf, &sms), 0);
    assert_string_equal (buf.data, "{\"channel\":\"SMS\",\"to\":\"010-1234-5678\",\"title\":null,"
                                   "\"body\":\"10월 요금 \\\"17,793원\\\"\"}");
    bf_text_buf_reset (&buf);
    bf_send_request_t lms = sms;
    lms.kind = BF_SEND_LMS;
    lms.title = "제목\n";
    assert_int_equal (bf_compose_json (&buf, &lms), 0);
    assert_string_equal (buf.data, "{\"channel\":\"LMS\",\"to\":\"010-1234-5678\",\"title\":"
                                   "\"제목\\n\",\"body\":\"10월 요금 \\\"17,793원\\\"\"}");
    bf_text_buf_reset (&buf);
    bf_send_request_t push = { .delivery_id = 2, .kind = BF_SEND_PUSH, .to = "tok", .text = "b" };
    assert_int_equal (bf_compose_json (&buf, &push), 0);
    assert_string_equal (buf.data,
                         "{\"channel\":\"PUSH\",\"to\":\"tok\",\"title\":null,\"body\":\"b\"}");
    bf_text_buf_free (&buf);
}

//  Checks a Subject header: lines of at most 78 characters, CRLF folded,
//  every encoded-word's bytes valid UTF-8 on their own (for a title
//  without malformed bytes) and all of them together equal to expected.
static void
s_check_subject (const char *title, const char *expected, int words)
{
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_compose_subject (&buf, title), 0);
    assert_true (strncmp (buf.data, "Subject: =?UTF-8?B?", 19) == 0);
    assert_true (buf.len >= 2 && strcmp (buf.data + buf.len - 2, "\r\n") == 0);
    char decoded[1024] = "";
    size_t used = 0;
    int count = 0;
    const char *line = buf.data;
    while (*line) {
        const char *end = strstr (line, "\r\n");
        assert_non_null (end);
        assert_true (end - line <= 78);
        const char *word = strstr (line, "=?UTF-8?B?");
        assert_non_null (word);
        word += 10;
        const char *close = strstr (word, "?=");
        assert_true (close && close + 2 == end);
        unsigned char bytes[64];
        size_t n = 0;
        assert_int_equal (sodium_base642bin (bytes, sizeof bytes, word, (size_t)(close - word),
                                             NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL),
                          0);
        assert_true (n <= 39);
        if (bf_text_utf8_valid (expected, strlen (expected)))
            assert_true (bf_text_utf8_valid ((const char *)bytes, n));
        memcpy (decoded + used, bytes, n);
        used += n;
        count++;
        line = end + 2;
        if (*line)
            assert_int_equal (*line, ' ');
    }
    decoded[used] = '\0';
    assert_string_equal (decoded, expected);
    assert_int_equal (count, words);
    bf_text_buf_free (&buf);
}

static void
test_subject (void **state)
{
    (void)state;
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_compose_subject (&buf, "hi"), 0);
    assert_string_equal (buf.data, "Subject: =?UTF-8?B?aGk=?=\r\n");
    bf_text_buf_reset (&buf);
    /*  No empty encoded word (RFC 2047: its text is at least one
        character); an empty Subject is a valid unstructured field.  */
    assert_int_equal (bf_compose_subject (&buf, ""), 0);
    assert_string_equal (buf.data, "Subject:\r\n");
    bf_text_buf_free (&buf);

    /*  39 bytes fit one word; 20 Hangul syllables (60 bytes) take 13 + 7.  */
    s_check_subject ("abcdefghijklmnopqrstuvwxyz0123456789abc",
                     "abcdefghijklmnopqrstuvwxyz0123456789abc", 1);
    char hangul[256] = "", mixed[256] = "a", emoji[256] = "";
    for (int i = 0; i < 20; i++)
        strcat (hangul, "\xEA\xB0\x80");
    s_check_subject (hangul, hangul, 2);
    /*  1 + 12 x 3 = 37 bytes: the 13th syllable would split at byte 39.  */
    strcat (mixed, hangul);
    s_check_subject (mixed, mixed, 2);
    for (int i = 0; i < 30; i++)
        strcat (emoji, "\xF0\x9F\x98\x80");
    s_check_subject (emoji, emoji, 4); /* 9 + 9 + 9 + 3 four-byte characters */
    /*  Control characters (header injection) become spaces.  */
    s_check_subject ("bill\r\nBcc: x@y.z\t!", "bill  Bcc: x@y.z !", 1);
    /*  A malformed byte counts as one character.  */
    s_check_subject ("\377abc", "\377abc", 1);
}

static void
test_email (void **state)
{
    (void)state;
    bf_send_request_t request = { .delivery_id = 777,
                                  .kind = BF_SEND_EMAIL,
                                  .to = "hong@example.com",
                                  .title = "hi",
                                  .text = "a\nb\r\nc",
                                  .date_s = 1790000000 };
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_compose_email (&buf, &request, "Billing <bill@example.com>"), 0);
    assert_string_equal (buf.data, "Date: Mon, 21 Sep 2026 14:13:20 +0000\r\n"
                                   "From: Billing <bill@example.com>\r\n"
                                   "To: hong@example.com\r\n"
                                   "Subject: =?UTF-8?B?aGk=?=\r\n"
                                   "Message-ID: <777@billflow>\r\n"
                                   "MIME-Version: 1.0\r\n"
                                   "Auto-Submitted: auto-generated\r\n"
                                   "Content-Type: text/plain; charset=UTF-8\r\n"
                                   "Content-Transfer-Encoding: base64\r\n\r\n"
                                   "YQ0KYg0KYw==\r\n");
    bf_text_buf_reset (&buf);
    request.html = "<p>x</p>";
    assert_int_equal (bf_compose_email (&buf, &request, "bill@example.com"), 0);
    assert_non_null (strstr (buf.data, "Content-Type: multipart/alternative; "
                                       "boundary=\"=_bf_777\"\r\n\r\n--=_bf_777\r\n"
                                       "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null (strstr (buf.data, "YQ0KYg0KYw==\r\n--=_bf_777\r\n"
                                       "Content-Type: text/html; charset=UTF-8\r\n"
                                       "Content-Transfer-Encoding: base64\r\n\r\n"
                                       "PHA+eDwvcD4=\r\n--=_bf_777--\r\n"));
    /*  Same request, same bytes (the idempotency contract).  */
    bf_text_buf_t again = { 0 };
    assert_int_equal (bf_compose_email (&again, &request, "bill@example.com"), 0);
    assert_string_equal (again.data, buf.data);
    bf_text_buf_free (&again);
    bf_text_buf_free (&buf);

    /*  A long body: 76-character base64 lines.  */
    char body[400];
    memset (body, 'z', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    request.text = body;
    request.html = NULL;
    assert_int_equal (bf_compose_email (&buf, &request, "bill@example.com"), 0);
    const char *part = strstr (buf.data, "\r\n\r\n") + 4;
    for (const char *line = part; *line;) {
        const char *end = strstr (line, "\r\n");
        assert_non_null (end);
        assert_true (end - line <= 76);
        line = end + 2;
    }
    bf_text_buf_free (&buf);
}

static void
test_invalid (void **state)
{
    (void)state;
    static const struct {
        bf_send_kind_t kind;
        const char *to, *text, *html, *why;
    } cases[] = {
        { BF_SEND_EMAIL, "hong@example.com", "t", NULL, NULL },
        { BF_SEND_EMAIL, "hong@example.com", NULL, "<p>", NULL },
        { BF_SEND_EMAIL, "hong@example.com", NULL, NULL, "no text or html body" },
        { BF_SEND_EMAIL, NULL, "t", NULL, "no recipient" },
        { BF_SEND_EMAIL, "", "t", NULL, "no recipient" },
        { BF_SEND_EMAIL, "a@b\r\nBcc: c@d", "t", NULL, "email address has forbidden characters" },
        { BF_SEND_EMAIL, "a b@c", "t", NULL, "email address has forbidden characters" },
        { BF_SEND_EMAIL, "<a@b>", "t", NULL, "email address has forbidden characters" },
        { BF_SEND_EMAIL, "ab", "t", NULL, "malformed email address" },
        { BF_SEND_EMAIL, "@b", "t", NULL, "malformed email address" },
        { BF_SEND_EMAIL, "a@", "t", NULL, "malformed email address" },
        { BF_SEND_EMAIL, "a@b@c", "t", NULL, "malformed email address" },
        { BF_SEND_SMS, "010-1234-5678", "t", NULL, NULL },
        { BF_SEND_LMS, "+82 (10) 1234 5678", "t", NULL, NULL },
        { BF_SEND_SMS, "010-1234-5678", "", NULL, "no body text" },
        { BF_SEND_SMS, "010-1234-5678", NULL, NULL, "no body text" },
        { BF_SEND_SMS, "12", "t", NULL, "malformed phone number" },
        { BF_SEND_SMS, "010x1234", "t", NULL, "malformed phone number" },
        { BF_SEND_SMS, "010\n1234", "t", NULL, "recipient has control characters" },
        { BF_SEND_SMS, "012345678901234567890123456789012", "t", NULL, "malformed phone number" },
        { BF_SEND_PUSH, "token-1", "t", NULL, NULL },
        { BF_SEND_PUSH, "tok en", "t", NULL, "malformed push token" },
        { BF_SEND_PUSH, "tok\x7f", "t", NULL, "recipient has control characters" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_send_request_t request = { .delivery_id = 1,
                                      .kind = cases[i].kind,
                                      .to = cases[i].to,
                                      .text = cases[i].text,
                                      .html = cases[i].html };
        const char *why = bf_compose_invalid (&request);
        if (!cases[i].why != !why || (why && strcmp (why, cases[i].why) != 0))
            fail_msg ("case %zu (%s): got %s", i, cases[i].to ? cases[i].to : "NULL",
                      why ? why : "valid");
    }
    /*  Length limits: an email address of 254 bytes passes, 255 not; a
        push token of 4096 passes, 4097 not.  */
    char *long_to = malloc (4100);
    assert_non_null (long_to);
    memset (long_to, 'a', 4099);
    long_to[4099] = '\0';
    bf_send_request_t request
        = { .delivery_id = 1, .kind = BF_SEND_EMAIL, .to = long_to, .text = "t" };
    memcpy (long_to + 250, "@b.c", 5);
    assert_null (bf_compose_invalid (&request));
    memcpy (long_to + 251, "@b.c", 5);
    assert_string_equal (bf_compose_invalid (&request), "email address too long");
    memset (long_to, 'a', 4099);
    long_to[4096] = '\0';
    request.kind = BF_SEND_PUSH;
    assert_null (bf_compose_invalid (&request));
    long_to[4096] = 'a';
    long_to[4097] = '\0';
    assert_string_equal (bf_compose_invalid (&request), "malformed push token");
    free (long_to);
}

static void
test_mail_from (void **state)
{
    (void)state;
    char *address = NULL;
    const char *why = NULL;
    assert_int_equal (bf_compose_mail_from ("Billing <bill@example.com>", &address, &why), 0);
    assert_string_equal (address, "bill@example.com");
    free (address);
    assert_int_equal (bf_compose_mail_from ("bill@example.com", &address, &why), 0);
    assert_string_equal (address, "bill@example.com");
    free (address);
    static const char *const bad[][2] = {
        { "billing", "smtp_from must be an email address" },
        { "bill@example.com\r\nBcc: x@y", "smtp_from must be an email address" },
        { "요금 <bill@example.com>", "smtp_from must be ASCII" },
        { "Billing <> bill@example.com", "smtp_from has no address inside <>" },
        { "Billing <bill@example.com", "smtp_from has no address inside <>" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (bf_compose_mail_from (bad[i][0], &address, &why), -1);
        assert_null (address);
        assert_string_equal (why, bad[i][1]);
    }
    assert_int_equal (bf_compose_mail_from (NULL, &address, &why), -1);
    assert_string_equal (why, "smtp_from must be an email address");
    assert_true (bf_compose_has_ctl ("a\x7f"));
    assert_true (bf_compose_has_ctl ("\ta"));
    assert_false (bf_compose_has_ctl ("요금 a b"));
}

int
main (void)
{
    if (sodium_init () < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_json_escaping), cmocka_unit_test (test_json_body),
        cmocka_unit_test (test_subject),       cmocka_unit_test (test_email),
        cmocka_unit_test (test_invalid),       cmocka_unit_test (test_mail_from),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
