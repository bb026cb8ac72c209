/*  test_mask — bf_mask_text over a corpus of contacts in free text (every
    spacing, hyphenation, dots, parentheses, +82 / 82 / 0082, with and
    without the leading 0, mobile and landline) and of look-alikes that
    must stay as they are (amounts, dates, ids, times, uuids). Expected
    outputs are written out by hand; a last check asserts that no run of
    the number's digits survives anywhere.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_mask.h"
#include "bf_text.h"

static char *
s_mask (const char *text, const char *contact, unsigned flags)
{
    static char out[1024];
    return bf_mask_text (text, strlen (text), contact, flags, out, sizeof out);
}

static void
s_expect (const char *in, const char *expected)
{
    const char *got = s_mask (in, NULL, 0);
    if (strcmp (got, expected) != 0)
        fail_msg ("mask of \"%s\": got \"%s\", expected \"%s\"", in, got, expected);
}

static void
test_phones (void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        /*  The reported leak.  */
        { "invalid destination 010 0378 3194 (+82 10 0378 3194)",
          "invalid destination 010-****-3194 (010-****-3194)" },
        { "010-0378-3194", "010-****-3194" },
        { "01003783194", "010-****-3194" },
        { "010.0378.3194", "010-****-3194" },
        { "010 - 0378 - 3194", "010-****-3194" },
        { "(010) 0378-3194", "010-****-3194" },
        { "(010)0378-3194", "010-****-3194" },
        { "010-037-8319", "010-****-8319" },
        { "010 03783194", "010-****-3194" },
        { "+82 10 0378 3194", "010-****-3194" },
        { "+82-10-0378-3194", "010-****-3194" },
        { "+821003783194", "010-****-3194" },
        { "+82 (0)10 0378 3194", "010-****-3194" },
        { "+82 010 0378 3194", "010-****-3194" },
        { "(+82) 10-0378-3194", "010-****-3194" },
        { "82 10 0378 3194", "010-****-3194" },
        { "821003783194", "010-****-3194" },
        { "0082-10-0378-3194", "010-****-3194" },
        { "0082 10 0378 3194", "010-****-3194" },
        { "10 0378 3194", "010-****-3194" },
        { "10-0378-3194", "010-****-3194" },
        { "to:01003783194,", "to:010-****-3194," },
        { "번호 010-0378-3194로 보냄", "번호 010-****-3194로 보냄" },
        { "전화010-0378-3194", "전화010-****-3194" },
        /*  Landlines and service numbers.  */
        { "02-123-4567", "02-****-4567" },
        { "02 1234 5678", "02-****-5678" },
        { "(02) 1234-5678", "02-****-5678" },
        { "+82 2 1234 5678", "02-****-5678" },
        { "031-123-4567", "031-****-4567" },
        { "064 7123 4567", "064-****-4567" },
        { "070-1234-5678", "070-****-5678" },
        { "0505-123-4567", "050-****-4567" },
        /*  Other countries, after a '+'.  */
        { "+1 415 555 0123", "+14-****-0123" },
        { "+44 20 7946 0958", "+44-****-0958" },
        { "+447946095812", "+44-****-5812" },
        /*  Two numbers glued by a space, and a number after a date.  */
        { "010 0378 3194 010 1111 2222", "010-****-3194 010-****-2222" },
        { "2026-10-25 010-0378-3194", "2026-10-25 010-****-3194" },
        { "a: 01003783194; b: 0212345678", "a: 010-****-3194; b: 02-****-5678" },
        /*  Left alone: not contacts, or not a phone's shape.  */
        { "amount 17,793원 due 2026-10-25", "amount 17,793원 due 2026-10-25" },
        { "total 1,234,567,890원", "total 1,234,567,890원" },
        { "delivery 132 failed (run 41, attempt 3)", "delivery 132 failed (run 41, attempt 3)" },
        { "delivery 1234567890", "delivery 1234567890" },
        { "message id msg-20261025-0000132", "message id msg-20261025-0000132" },
        { "7f0e4c1a-2-0000-4000-8000-000000000002", "7f0e4c1a-2-0000-4000-8000-000000000002" },
        { "at 2026-10-25T12:30:00Z", "at 2026-10-25T12:30:00Z" },
        { "2026-10-25 12:30", "2026-10-25 12:30" },
        { "from 192.168.100.200", "from 192.168.100.200" },
        { "seq 18446744073709551615", "seq 18446744073709551615" },
        { "HTTP 422, retry in 30 s", "HTTP 422, retry in 30 s" },
        { "0378 3194", "0378 3194" },
        { "1588-1234", "1588-1234" },
        { "id_01003783194", "id_01003783194" },
        { "x01003783194", "x01003783194" },
        { "01003783194x", "01003783194x" },
        { "010-****-3194", "010-****-3194" },
        { "+1 2345", "+1 2345" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect (cases[i][0], cases[i][1]);
}

static void
test_emails (void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "bad address hong.gildong@example.com.", "bad address h***@example.com." },
        { "<hong@example.co.kr>", "<h***@example.co.kr>" },
        { "rcpt hong+bill@mail.example.com rejected", "rcpt h***@mail.example.com rejected" },
        { "user@localhost", "u***@localhost" },
        { "홍길동@example.com 없음", "홍***@example.com 없음" },
        { "hong@example.com으로", "h***@example.com으로" },
        { "h***@example.com", "h***@example.com" },
        { "a @ b", "a @ b" },
        { "@example.com", "@example.com" },
        { "550 5.1.1 <x@y.z>: unknown", "550 5.1.1 <x***@y.z>: unknown" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect (cases[i][0], cases[i][1]);
}

static void
test_contact_and_tokens (void **state)
{
    (void)state;
    assert_string_equal (s_mask ("token abcdefghijklmnopqrstuvwxyz0123 bad", NULL, BF_MASK_TOKENS),
                         "token abcdef\xE2\x80\xA6 bad");
    assert_string_equal (s_mask ("token abcdefghijklmnopqrstuvwxyz0123 bad", NULL, 0),
                         "token abcdefghijklmnopqrstuvwxyz0123 bad");
    assert_string_equal (s_mask ("dest xyzzy-secret rejected", "xyzzy-secret", 0),
                         "dest *** rejected");
    char out[32];
    assert_string_equal (bf_mask_token ("abcdefghijklmnop", out, sizeof out),
                         "abcdef\xE2\x80\xA6");
    assert_string_equal (bf_mask_token ("short", out, sizeof out), "***");
    assert_true (bf_mask_text_has_contact ("call 010 0378 3194"));
    assert_false (bf_mask_text_has_contact ("17,793원 2026-10-25"));
}

/*  BF_MASK_ONE_LINE: control characters and space runs collapse, bad
    bytes become '?', the ends are trimmed, and masking sees the cleaned
    line (a number split by line breaks is still a number).  */
static void
test_one_line (void **state)
{
    (void)state;
    const unsigned flags = BF_MASK_ONE_LINE;
    assert_string_equal (s_mask ("  body\ttoo\r\n\nlong  ", NULL, flags), "body too long");
    assert_string_equal (s_mask ("<html>Unprocessable\r\n\r\nEntity</html>", NULL, flags),
                         "<html>Unprocessable Entity</html>");
    assert_string_equal (s_mask ("bad \xff\xfe byte \x7f end", NULL, flags), "bad ?? byte end");
    assert_string_equal (s_mask ("cut \xea\xb0", NULL, flags), "cut ??");
    assert_string_equal (s_mask ("call 010\n0378\t3194 now", NULL, flags),
                         "call 010-****-3194 now");
    /*  Without the flag, the same text is copied with its controls.  */
    assert_string_equal (s_mask ("call 010\n0378\t3194 now", NULL, 0), "call 010\n0378\t3194 now");
    assert_string_equal (s_mask ("rcpt\r\n xyzzy-contact refused", "xyzzy-contact", flags),
                         "rcpt *** refused");
    assert_string_equal (s_mask ("tok\tabcdefghijklmnopqrstuvwxyz0123",
                                 NULL, flags | BF_MASK_TOKENS),
                         "tok abcdef\xE2\x80\xA6");
    assert_string_equal (s_mask (" \r\n\t ", NULL, flags), "");
    assert_string_equal (s_mask ("", NULL, flags), "");
    /*  NUL bytes inside the length are controls too.  */
    char out[64];
    bf_mask_text ("a\0\0b", 4, NULL, flags, out, sizeof out);
    assert_string_equal (out, "a b");
    /*  Longer than the stack copy: cleaned and masked the same way.  */
    char *big = malloc (3001);
    assert_non_null (big);
    memset (big, '\n', 3000);
    memcpy (big + 1500, "010-0378-3194", 13);
    big[3000] = '\0';
    assert_string_equal (bf_mask_text (big, 3000, NULL, flags, out, sizeof out), "010-****-3194");
    free (big);
    /*  A small out: cut whole, valid UTF-8.  */
    char small[8];
    bf_mask_text ("가\n\n나다라", strlen ("가\n\n나다라"), NULL, flags, small, sizeof small);
    assert_string_equal (small, "가 나");
}

/*  Small buffers: a mask is whole or absent, and the cut never splits a
    character.  */
static void
test_small_buffers (void **state)
{
    (void)state;
    const char *in = "가나 010 0378 3194 다";
    for (size_t size = 1; size < 40; size++) {
        char out[40];
        memset (out, '#', sizeof out);
        bf_mask_text (in, strlen (in), NULL, 0, out, size);
        assert_true (strlen (out) < size);
        assert_true (bf_text_utf8_valid (out, strlen (out)));
        assert_null (strstr (out, "0378"));
        assert_null (strstr (out, "3194") && !strstr (out, "****") ? out : NULL);
    }
}

/*  Random groupings of one number: no four consecutive digits of its
    middle block survive.  */
static void
test_random_groupings (void **state)
{
    (void)state;
    static const char *const prefixes[] = { "", "+82 ", "+82-", "82 ", "0082 ", "+82 (0)", "(" };
    static const char *const seps[] = { " ", "-", ".", " - ", ") ", "  " };
    srand (7);
    for (int round = 0; round < 2000; round++) {
        const char *prefix = prefixes[rand () % 7];
        const char *s1 = seps[rand () % 6], *s2 = seps[rand () % 6];
        bool intl = prefix[0] == '+' || prefix[0] == '8' || prefix[0] == '0';
        char in[128], out[256];
        snprintf (in, sizeof in, "reason: %s%s%s5729%s3194 end", prefix, intl ? "10" : "010", s1,
                  s2);
        bf_mask_text (in, strlen (in), NULL, 0, out, sizeof out);
        if (strstr (out, "5729"))
            fail_msg ("\"%s\" -> \"%s\"", in, out);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_phones),
        cmocka_unit_test (test_emails),
        cmocka_unit_test (test_contact_and_tokens),
        cmocka_unit_test (test_one_line),
        cmocka_unit_test (test_small_buffers),
        cmocka_unit_test (test_random_groupings),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
