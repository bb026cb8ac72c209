/*  test_mask — bf_mask over the corpus in tests/unit/data/mask_corpus.txt
    (path in argv[1], given by meson): contacts in free text (every
    spacing, hyphenation, dots, parentheses, +82 / 82 / 0082, with and
    without the leading 0, mobile and landline, next to Hangul), emails
    with unusual local parts, look-alikes that must stay as they are
    (amounts, dates, ids, times, uuids), overlong input, and the known-
    contact maskers. Expected outputs are written out by hand; every cut
    of every free-text row is checked to be a prefix of the whole. A last
    check asserts that no run of a number's digits survives anywhere.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_mask.h"
#include "bf_testutil.h"
#include "bf_text.h"

static const char *s_corpus_path;

static const char *const s_ops[]
    = { "mask", "mask-tokens", "mask-contact", "email", "phone", "token", "has", NULL };

/*  Every cut of the free-text mask (outsize 1 up to the whole) is a
    prefix of the whole result, so a masked form is whole or absent and
    nothing after a cut leaks; a well-formed input stays well-formed.  */
static void
s_check_cuts (const bf_testutil_row_t *row, const char *in, size_t len, const char *contact,
              unsigned flags, const char *whole)
{
    size_t whole_len = strlen (whole);
    bool valid = bf_text_utf8_valid (in, len);
    char out[160];
    for (size_t size = 1; size <= whole_len + 1 && size <= sizeof out; size++) {
        memset (out, '#', sizeof out);
        size_t n = bf_mask_text_n (in, len, contact, flags, out, size);
        if (n >= size || n != strlen (out) || memcmp (out, whole, n) != 0)
            bf_testutil_row_fail (row, "cut at %zu: \"%s\" is no prefix of the whole", size, out);
        if (valid && !bf_text_utf8_valid (out, n))
            bf_testutil_row_fail (row, "cut at %zu splits a character", size);
    }
}

static void
s_row (const bf_testutil_row_t *row, size_t op, void *arg)
{
    (void)arg;
    bool contact_op = strcmp (s_ops[op], "mask-contact") == 0;
    if (row->count != (contact_op ? 4u : 3u))
        bf_testutil_row_fail (row, "%zu fields", row->count);
    const char *contact = contact_op ? row->field[1] : NULL;
    const char *in = row->field[contact_op ? 2 : 1];
    size_t in_len = row->len[contact_op ? 2 : 1];
    const char *want = row->field[row->count - 1];
    static char out[16384];
    const char *op_name = s_ops[op];
    if (strcmp (op_name, "email") == 0)
        bf_mask_email (in, out, BF_MASK_MAX);
    else if (strcmp (op_name, "phone") == 0)
        bf_mask_phone (in, out, BF_MASK_MAX);
    else if (strcmp (op_name, "token") == 0)
        bf_mask_token (in, out, BF_MASK_MAX);
    else if (strcmp (op_name, "has") == 0)
        snprintf (out, sizeof out, "%s", bf_mask_text_has_contact (in) ? "yes" : "no");
    else {
        unsigned flags = strcmp (op_name, "mask-tokens") == 0 ? BF_MASK_TOKENS : 0;
        bf_mask_text (in, in_len, contact, flags, out, sizeof out);
        s_check_cuts (row, in, in_len, contact, flags, out);
    }
    if (strcmp (out, want) != 0)
        bf_testutil_row_fail (row, "%s of \"%s\": got \"%s\", expected \"%s\"", op_name, in, out,
                              want);
}

static void
test_corpus (void **state)
{
    (void)state;
    bf_testutil_corpus (s_corpus_path, s_ops, s_row, NULL, 100, 2);
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

/*  BF_MASK_ONE_LINE: controls and runs of blanks become one space,
    malformed bytes '?', ends trimmed, then masked (the cleaning the
    sender's scrubber did; it is bf_mask's now).  */
static char *
s_mask (const char *text, const char *contact, unsigned flags)
{
    static char out[1024];
    return bf_mask_text (text, strlen (text), contact, flags, out, sizeof out);
}

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


int
main (int argc, char **argv)
{
    s_corpus_path = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_corpus),
        cmocka_unit_test (test_random_groupings),
        cmocka_unit_test (test_one_line),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
