/*  test_text — bf_text: UTF-8 validation, decoding and bounded printable
    copies over a corpus of malformed and boundary inputs; the growable
    buffer, code point encoding and base64 (RFC 4648 vectors, MIME lines).  */

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

//  decode agrees with utf8_len on every sequence, and yields the code point.
static void
test_decode (void **state)
{
    (void)state;
    struct {
        const char *bytes;
        size_t len;
        uint32_t cp;
    } good[] = {
        { "A", 1, 0x41 },
        { "\xC2\xA9", 2, 0xA9 },
        { "\xED\x9F\xBF", 3, 0xD7FF },
        { "\xEA\xB0\x80", 3, 0xAC00 },       /* 가 */
        { "\xEF\xBF\xBD", 3, 0xFFFD },
        { "\xF0\x9F\x98\x80", 4, 0x1F600 },
        { "\xF4\x8F\xBF\xBF", 4, 0x10FFFF },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint32_t cp = 0;
        assert_int_equal (bf_text_utf8_decode (good[i].bytes, good[i].len, &cp), good[i].len);
        assert_int_equal (cp, good[i].cp);
    }
    const char *bad[] = { "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "\xE0\x80\x80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp = 7;
        assert_int_equal (bf_text_utf8_decode (bad[i], strlen (bad[i]), &cp), 0);
        assert_int_equal (cp, 7);
    }
    uint32_t cp = 7;
    assert_int_equal (bf_text_utf8_decode ("\xEA\xB0", 2, &cp), 0); /* cut */
}

//  Encoding every scalar value and decoding it again is the identity;
//  surrogates and values beyond U+10FFFF encode as U+FFFD.
static void
test_buf_utf8_roundtrip (void **state)
{
    (void)state;
    bf_text_buf_t buf = { 0 };
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x11000 ? 1 : 97)) {
        bf_text_buf_reset (&buf);
        assert_int_equal (bf_text_buf_utf8 (&buf, cp), 0);
        uint32_t back = 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            assert_string_equal (buf.data, "\xEF\xBF\xBD");
            continue;
        }
        assert_int_equal (bf_text_utf8_decode (buf.data, buf.len, &back), buf.len);
        assert_int_equal (back, cp);
    }
    bf_text_buf_reset (&buf);
    assert_int_equal (bf_text_buf_utf8 (&buf, 0x110000), 0);
    assert_string_equal (buf.data, "\xEF\xBF\xBD");
    bf_text_buf_free (&buf);
    assert_null (buf.data);
}

static void
test_buf_append (void **state)
{
    (void)state;
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_text_buf_str (&buf, "청구"), 0);
    assert_int_equal (bf_text_buf_fmt (&buf, " %d원", 12345), 0);
    assert_int_equal (bf_text_buf_add (&buf, "\0x", 2), 0);
    assert_int_equal (buf.len, strlen ("청구 12345원") + 2);
    assert_memory_equal (buf.data, "청구 12345원\0x", buf.len + 1);
    //  Growth past the first allocation keeps every byte.
    bf_text_buf_reset (&buf);
    for (int i = 0; i < 10000; i++)
        assert_int_equal (bf_text_buf_fmt (&buf, "%04d", i % 10000), 0);
    assert_int_equal (buf.len, 40000);
    assert_memory_equal (buf.data + 4 * 9999, "9999", 5);
    //  A request for more than memory can hold fails and leaves the buffer.
    assert_int_equal (bf_text_buf_reserve (&buf, SIZE_MAX - 8), -1);
    assert_int_equal (buf.len, 40000);
    bf_text_buf_free (&buf);
}

//  RFC 4648 §10 test vectors, and MIME wrapping at 76 characters.
static void
test_buf_base64 (void **state)
{
    (void)state;
    const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    bf_text_buf_t buf = { 0 };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        bf_text_buf_reset (&buf);
        assert_int_equal (bf_text_buf_base64 (&buf, in[i], strlen (in[i]), false), 0);
        assert_string_equal (buf.data ? buf.data : "", out[i]);
    }
    unsigned char data[200];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    bf_text_buf_t flat = { 0 };
    bf_text_buf_reset (&buf);
    assert_int_equal (bf_text_buf_base64 (&flat, data, sizeof data, false), 0);
    assert_int_equal (bf_text_buf_base64 (&buf, data, sizeof data, true), 0);
    //  Lines of 76 characters, each ending in CRLF; joined they are the flat form.
    size_t lines = 0, joined = 0;
    for (char *line = buf.data; *line; lines++) {
        char *end = strstr (line, "\r\n");
        assert_non_null (end);
        size_t n = (size_t)(end - line);
        assert_true (n <= 76);
        if (end[2])
            assert_int_equal (n, 76);
        assert_memory_equal (line, flat.data + joined, n);
        joined += n;
        line = end + 2;
    }
    assert_int_equal (joined, flat.len);
    assert_int_equal (lines, (sizeof data + 56) / 57);
    bf_text_buf_free (&flat);
    bf_text_buf_free (&buf);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_utf8_len),
        cmocka_unit_test (test_prefix),
        cmocka_unit_test (test_clip_corpus),
        cmocka_unit_test (test_clip_examples),
        cmocka_unit_test (test_decode),
        cmocka_unit_test (test_buf_utf8_roundtrip),
        cmocka_unit_test (test_buf_append),
        cmocka_unit_test (test_buf_base64),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
