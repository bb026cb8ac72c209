/*  test_reply — the provider-reply reader: what it takes from a body
    (message_id, the first reason-like string in body order, escapes
    decoded, values cut on a character boundary) and every strictness
    rule (one object, size, depth, duplicate keys, NUL raw or escaped,
    invalid UTF-8, lone surrogates, control characters, trailing bytes,
    bad numbers); then bf_reply_read's cleaning and masking of reasons
    and of garbage bodies.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_reply.h"
#include "bf_text.h"

static char s_id[128], s_reason[BF_REPLY_RAW_REASON_MAX];

static int
s_parse (const char *body)
{
    memset (s_id, 'x', sizeof s_id);
    memset (s_reason, 'x', sizeof s_reason);
    return bf_reply_parse (body, strlen (body), s_id, sizeof s_id, s_reason, sizeof s_reason);
}

static void
s_accepts (const char *body, const char *id, const char *reason)
{
    if (s_parse (body) != 0)
        fail_msg ("refused: %s", body);
    assert_string_equal (s_id, id);
    assert_string_equal (s_reason, reason);
}

static void
s_refuses (const char *body, size_t len)
{
    memset (s_id, 'x', sizeof s_id);
    memset (s_reason, 'x', sizeof s_reason);
    if (bf_reply_parse (body, len, s_id, sizeof s_id, s_reason, sizeof s_reason) != -1)
        fail_msg ("accepted: %.*s", (int)len, body);
    assert_string_equal (s_id, "");
    assert_string_equal (s_reason, "");
}

static void
test_reads_id_and_reason (void **state)
{
    (void)state;
    s_accepts ("{\"message_id\":\"msg-0001\",\"status\":\"accepted\"}", "msg-0001", "");
    s_accepts ("  \r\n\t{ \"message_id\" : \"x\" , \"detail\" : \"\\\"q\\\"\\n\" }  ", "x",
               "\"q\"\n");
    /*  The first reason-like string in body order; other types skipped.  */
    s_accepts ("{\"error\":\"x\",\"reason\":\"second\"}", "", "x");
    s_accepts ("{\"reason\":5,\"message\":\"m\",\"error\":\"e\"}", "", "m");
    s_accepts ("{\"detail\":null,\"error\":\"e\"}", "", "e");
    /*  Nested members and other keys are not read.  */
    s_accepts ("{\"error\":{\"message\":\"deep\"},\"data\":{\"message_id\":\"in\"}}", "", "");
    s_accepts ("{\"message_id\":5}", "", "");
    s_accepts ("{\"message_id\":\"\"}", "", "");
    s_accepts ("{}", "", "");
    /*  Escapes decoded; a control character stays for bf_reply_read.  */
    s_accepts ("{\"message_id\":\"m\\u00e9\\ud83d\\ude00\\/\"}", "m\xC3\xA9\xF0\x9F\x98\x80/", "");
    s_accepts ("{\"message_id\":\"\\u0001ctl\"}", "\001ctl", "");
    /*  Nested values of every kind; numbers in any legal form.  */
    s_accepts ("{\"a\":[1,2,{\"b\":null,\"c\":[true,false]}],\"n\":-1.5e+10,\"z\":0,"
               "\"big\":123456789012345678901234567890,\"message_id\":\"ok\"}",
               "ok", "");
    /*  Either output may be NULL.  */
    assert_int_equal (bf_reply_parse ("{\"message_id\":\"a\"}", 18, NULL, 0, NULL, 0), 0);
}

static void
test_cuts_on_character_boundary (void **state)
{
    (void)state;
    /*  100 x U+AC00 (3 bytes each): 42 fit in 127 bytes.  */
    char body[512] = "{\"message_id\":\"";
    for (int i = 0; i < 100; i++)
        strcat (body, "\xEA\xB0\x80");
    strcat (body, "\"}");
    assert_int_equal (s_parse (body), 0);
    assert_int_equal (strlen (s_id), 126);
    assert_true (bf_text_utf8_valid (s_id, strlen (s_id)));
    char small[8];
    assert_int_equal (bf_reply_parse (body, strlen (body), small, sizeof small, NULL, 0), 0);
    assert_string_equal (small, "\xEA\xB0\x80\xEA\xB0\x80");
    /*  An ASCII id longer than the buffer: its first 127 bytes.  */
    char longid[300] = "{\"message_id\":\"";
    memset (longid + strlen (longid), 'a', 200);
    strcpy (longid + 15 + 200, "\"}");
    assert_int_equal (s_parse (longid), 0);
    assert_int_equal (strlen (s_id), 127);
}

static void
test_strictness (void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "", "   ", "garbage{", "[\"message_id\",\"a\"]", "\"message_id\"", "null",
        "{\"message_id\":\"a\"}}", "{\"message_id\":\"a\"} {}", "{\"message_id\":\"a\",}",
        "{\"message_id\":\"a\\x\"}", "{\"message_id\":\"a\"", "{message_id:\"a\"}",
        "{'message_id':'a'}", "{\"reason\":\"a\tb\"}", /* raw control character in a string */
        "{\"reason\":\"\xff\xfe\"}",                   /* invalid UTF-8 */
        "{\"reason\":\"\xc0\xaf\"}",                   /* overlong */
        "{\"reason\":\"\xed\xa0\x80\"}",               /* an encoded surrogate */
        "{\"message_id\":\"\\udc00\\ud800x\"}",        /* lone surrogate escapes */
        "{\"message_id\":\"a\\u0000b\"}",              /* NUL as an escape */
        "{\"n\":01}", "{\"n\":1.}", "{\"n\":.5}", "{\"n\":+1}", "{\"n\":1e999}", "{\"n\":NaN}",
        "{\"b\":True}",
        /*  Duplicate keys, at the top and nested.  */
        "{\"message_id\":\"a\",\"message_id\":\"b\"}",
        "{\"message_id\":\"a\",\"x\":{\"k\":1,\"k\":2}}",
        "\xEF\xBB\xBF{\"message_id\":\"a\"}", /* a byte order mark */
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        s_refuses (bodies[i], strlen (bodies[i]));
    /*  A raw NUL, inside or after the object.  */
    s_refuses ("{\"message_id\":\"a\0b\"}", 20);
    s_refuses ("{\"message_id\":\"a\"}\0", 19);
    s_refuses ("{\"a{\":[-9\0,{}]}", 15);
    /*  NULL body.  */
    assert_int_equal (bf_reply_parse (NULL, 5, s_id, sizeof s_id, NULL, 0), -1);
    assert_string_equal (s_id, "");
}

static void
test_limits (void **state)
{
    (void)state;
    /*  Depth: the object and 31 arrays inside it pass; 32 arrays do not.  */
    char deep[256];
    for (int arrays = 31; arrays <= 32; arrays++) {
        size_t n = 0;
        n += (size_t)sprintf (deep + n, "{\"a\":");
        for (int i = 0; i < arrays; i++)
            deep[n++] = '[';
        for (int i = 0; i < arrays; i++)
            deep[n++] = ']';
        n += (size_t)sprintf (deep + n, ",\"message_id\":\"d\"}");
        int rc = bf_reply_parse (deep, n, s_id, sizeof s_id, NULL, 0);
        assert_int_equal (rc, arrays == 31 ? 0 : -1);
    }
    /*  Size: 64 KiB is read, one byte more is not.  */
    size_t size = BF_REPLY_BODY_MAX + 1;
    char *big = malloc (size);
    assert_non_null (big);
    const char *head = "{\"message_id\":\"big\",\"pad\":\"";
    memcpy (big, head, strlen (head));
    memset (big + strlen (head), 'x', size - strlen (head));
    memcpy (big + BF_REPLY_BODY_MAX - 2, "\"}", 2);
    assert_int_equal (bf_reply_parse (big, BF_REPLY_BODY_MAX, s_id, sizeof s_id, NULL, 0), 0);
    assert_string_equal (s_id, "big");
    memcpy (big + BF_REPLY_BODY_MAX - 2, " \"}", 3);
    assert_int_equal (bf_reply_parse (big, size, s_id, sizeof s_id, NULL, 0), -1);
    free (big);
}

//  bf_reply_read of a C string into one reply kept between calls.
static const bf_reply_t *
s_read (const char *body, bool truncated, const char *contact)
{
    static bf_reply_t reply;
    memset (&reply, 'x', sizeof reply);
    bf_reply_read (&reply, body, strlen (body), truncated, contact);
    return &reply;
}

static void
test_read_cleans_and_masks (void **state)
{
    (void)state;
    const bf_reply_t *got = s_read (
        "{\"message_id\":\"\\u0001ctl\\u007f\",\"detail\":\"body\\ttoo\\nlong\"}", false, NULL);
    assert_true (got->parsed);
    assert_string_equal (got->message_id, "?ctl?");
    assert_string_equal (got->reason, "body too long");
    got = s_read ("{\"error\":\"invalid number 010-1234-5678, also 01099998888 / x@y.kr\"}", false,
                  NULL);
    assert_string_equal (got->reason,
                         "invalid number 010-****-5678, also 010-****-8888 / x***@y.kr");
    got = s_read ("{\"error\":\"token abcdefghijklmnopqrstuvwxyz0123 and secret-contact refused\"}",
                  false, "secret-contact");
    assert_string_equal (got->reason, "token abcdef\xE2\x80\xA6 and *** refused");

    /*  Not JSON: the body stands for the reason, one line.  */
    got = s_read ("<html>Unprocessable\r\n\r\nEntity</html>", false, NULL);
    assert_false (got->parsed);
    assert_string_equal (got->message_id, "");
    assert_string_equal (got->reason, "<html>Unprocessable Entity</html>");
    /*  A truncated body is not parsed even when its bytes would be.  */
    got = s_read ("{\"message_id\":\"m\"}", true, NULL);
    assert_false (got->parsed);
    assert_string_equal (got->message_id, "");
    assert_string_equal (got->reason, "{\"message_id\":\"m\"}");
    /*  Empty: nothing.  */
    got = s_read ("", false, NULL);
    assert_false (got->parsed);
    assert_string_equal (got->reason, "");

    bf_reply_t reply;
    /*  Long reasons: cut to fit on a character boundary; a garbage body
        is read for its first 400 bytes only.  */
    char longbody[2048] = "{\"reason\":\"";
    for (int i = 0; i < 150; i++)
        strcat (longbody, "\xEA\xB0\x80");
    strcat (longbody, "\"}");
    bf_reply_read (&reply, longbody, strlen (longbody), false, NULL);
    assert_int_equal (strlen (reply.reason), 198);
    assert_true (bf_text_utf8_valid (reply.reason, strlen (reply.reason)));
    char garbage[1001];
    for (size_t i = 0; i < 1000; i++)
        garbage[i] = "ab "[i % 3];
    memcpy (garbage + 99, " 010-1234-5678 ", 15);
    bf_reply_read (&reply, garbage, 1000, false, NULL);
    assert_int_equal (strlen (reply.reason), BF_REPLY_REASON_MAX - 1);
    assert_non_null (strstr (reply.reason, "010-****-5678"));
    assert_null (strstr (reply.reason, "1234"));
    /*  Past byte 400, nothing is read.  */
    memset (garbage, ' ', 1000);
    garbage[0] = 'a';
    memcpy (garbage + 400, "tail-marker", 11);
    bf_reply_read (&reply, garbage, 1000, false, NULL);
    assert_string_equal (reply.reason, "a");
    bf_reply_read (&reply, garbage, 411, false, NULL);
    assert_string_equal (reply.reason, "a");
}

/*  A contact that a cut would split is masked whole or left out, never
    shown in part: the reason is masked before it is cut, and a garbage
    body's 400-byte window does not cut a contact in two.  */
static void
test_read_never_cuts_a_contact (void **state)
{
    (void)state;
    bf_reply_t reply;
    /*  A reason over the raw 400 bytes, white space before the contacts
        (an indented page quoted in a reason).  */
    char body[2048] = "{\"reason\":\"refused";
    for (int i = 0; i < 370; i++)
        strcat (body, " ");
    strcat (body, "hong.gildong@example.com 010-1234-5678 own.contact\"}");
    bf_reply_read (&reply, body, strlen (body), false, "own.contact");
    assert_true (reply.parsed);
    assert_string_equal (reply.reason, "refused h***@example.com 010-****-5678 ***");
    /*  Garbage whose byte 400 falls inside an address, then a number,
        then the request's own contact.  */
    const char *tails[] = { "hong.gildong@example.com", "010-1234-5678", "own.contact" };
    for (size_t t = 0; t < 3; t++) {
        for (size_t at = 380; at < 400; at++) {
            char garbage[1000];
            memset (garbage, ' ', sizeof garbage);
            memcpy (garbage, "oops", 4);
            memcpy (garbage + at, tails[t], strlen (tails[t]));
            bf_reply_read (&reply, garbage, sizeof garbage, false, "own.contact");
            assert_false (reply.parsed);
            if (at + strlen (tails[t]) <= 400)
                assert_string_not_equal (reply.reason, "oops");
            else
                assert_string_equal (reply.reason, "oops");
            assert_null (strstr (reply.reason, "hong"));
            assert_null (strstr (reply.reason, "1234"));
            assert_null (strstr (reply.reason, "own"));
        }
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_reads_id_and_reason),
        cmocka_unit_test (test_cuts_on_character_boundary),
        cmocka_unit_test (test_strictness),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_read_cleans_and_masks),
        cmocka_unit_test (test_read_never_cuts_a_contact),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
