/*  test_text — bf_text: UTF-8 validation and bounded printable copies
    over a corpus of malformed and boundary inputs.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "bf_text.h"

static void
test_utf8_len (void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t avail, len;
    } cases[] = {
        { "A", 1, 1 },
        { "\xC2\xA9", 2, 2 },             /* © */
        { "\xEA\xB0\x80", 3, 3 },         /* 가 */
        { "\xF0\x9F\x98\x80", 4, 4 },     /* emoji */
        { "\xC0\x80", 2, 0 },             /* overlong NUL */
        { "\xC1\xBF", 2, 0 },             /* overlong */
        { "\xE0\x80\xAF", 3, 0 },         /* overlong '/' */
        { "\xED\xA0\x80", 3, 0 },         /* surrogate */
        { "\xF4\x90\x80\x80", 4, 0 },     /* above U+10FFFF */
        { "\xF5\x80\x80\x80", 4, 0 },
        { "\xEA\xB0", 2, 0 },             /* cut sequence */
        { "\xEA\xB0\x80", 2, 0 },         /* cut by avail */
        { "\x80", 1, 0 },                 /* lone continuation */
        { "\xFF", 1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal (bf_text_utf8_len (cases[i].bytes, cases[i].avail), cases[i].len);
    assert_true (bf_text_utf8_valid ("\xEA\xB0\x80" "abc" "\xF0\x9F\x98\x80", 10));
    assert_false (bf_text_utf8_valid ("abc\xEA\xB0", 5));
    assert_true (bf_text_utf8_valid ("", 0));
}

static void
test_prefix (void **state)
{
    (void)state;
    const char *ga = "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80"; /* 가가가 */
    assert_int_equal (bf_text_utf8_prefix (ga, 9, 9), 9);
    assert_int_equal (bf_text_utf8_prefix (ga, 9, 8), 6);
    assert_int_equal (bf_text_utf8_prefix (ga, 9, 4), 3);
    assert_int_equal (bf_text_utf8_prefix (ga, 9, 2), 0);
    assert_int_equal (bf_text_utf8_prefix ("ab\xFF" "c", 4, 3), 3);
}

/*  Every clip of every corpus entry at every size is well-formed, within
    its bound, free of control characters, and a prefix of the input when
    the input was clean.  */
static void
test_clip_corpus (void **state)
{
    (void)state;
    static const char *corpus[] = {
        "",
        "plain ascii",
        "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80"
        "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80",
        "mixed \xEC\x9A\x94\xEA\xB8\x88\xEC\xA0\x9C \xF0\x9F\x98\x80 end",
        "bad \xFF\xFE bytes \xC0\x80 and \xED\xA0\x80 surrogate",
        "cut at end \xEA\xB0",
        "line\nbreak\ttab\x1b[31mansi\x7f",
        "c1 \xC2\x85 next-line",
        "\x80\x80\x80\x80",
    };
    for (size_t c = 0; c < sizeof corpus / sizeof corpus[0]; c++)
        for (size_t max = 0; max <= 64; max++) {
            char out[BF_TEXT_CLIP_SHORT];
            memset (out, 'Z', sizeof out);
            char *r = bf_text_clip (out, sizeof out, corpus[c], max);
            assert_ptr_equal (r, out);
            size_t len = strlen (out);
            assert_true (len <= max);
            assert_true (bf_text_utf8_valid (out, len));
            for (size_t i = 0; i < len; i++)
                assert_false ((unsigned char)out[i] < 0x20 || out[i] == 0x7F);
            assert_null (strstr (out, "\xC2\x85"));
        }
}

static void
test_clip_examples (void **state)
{
    (void)state;
    char out[BF_TEXT_CLIP_SHORT];
    /*  14 × 가 (42 bytes) in 40: 12 characters and the ellipsis.  */
    const char *ga14
        = "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80"
          "\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80\xEA\xB0\x80";
    bf_text_clip (out, sizeof out, ga14, 40);
    assert_int_equal (strlen (out), 39);
    assert_memory_equal (out, ga14, 36);
    assert_string_equal (out + 36, "\xE2\x80\xA6");
    /*  Fits: unchanged, no ellipsis.  */
    assert_string_equal (bf_text_clip (out, sizeof out, ga14, 42), ga14);
    assert_string_equal (bf_text_clip (out, sizeof out, "run.start", 40), "run.start");
    assert_string_equal (bf_text_clip (out, sizeof out, NULL, 40), "");
    /*  Malformed and control bytes become U+FFFD.  */
    assert_string_equal (bf_text_clip (out, sizeof out, "a\xFF" "b\nc", 40),
                         "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c");
    /*  The bound never exceeds the buffer.  */
    char tiny[8];
    bf_text_clip (tiny, sizeof tiny, "abcdefghijkl", 1000);
    assert_int_equal (strlen (tiny), 7);
    assert_string_equal (tiny, "abcd\xE2\x80\xA6");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_utf8_len),
        cmocka_unit_test (test_prefix),
        cmocka_unit_test (test_clip_corpus),
        cmocka_unit_test (test_clip_examples),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
