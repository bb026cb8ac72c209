/*  test_text — bf_text: UTF-8 length, decoding, validation, the byte-at-a-
    time check, prefixes and bounded printable copies over the corpus in
    tests/unit/data/text_corpus.txt (path in argv[1], given by meson:
    malformed and boundary sequences, cuts inside characters, Korean text,
    overlong input); the growable buffer, code point encoding and base64
    (RFC 4648 vectors, MIME lines), and the bounded writer.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_testutil.h"
#include "bf_text.h"

//  ---------------------------------------------------------------------------
//  The corpus (tests/unit/data/text_corpus.txt; its header describes the
//  rows). Every row's input also goes through the invariants below.

static const char *s_corpus_path;

static const char *const s_ops[] = { "len", "decode", "valid", "prefix", "clip", "input", NULL };

/*  bf_text_utf8_step fed the bytes one by one accepts exactly what
    bf_text_utf8_valid accepts.  */
static void
s_check_step (const bf_testutil_row_t *row, const char *bytes, size_t len)
{
    bf_text_utf8_state_t state = { 0 };
    bool ok = true;
    for (size_t i = 0; i < len && ok; i++)
        ok = bf_text_utf8_step (&state, (unsigned char)bytes[i]) == 0;
    ok = ok && state.need == 0;
    if (ok != bf_text_utf8_valid (bytes, len))
        bf_testutil_row_fail (row, "step says %s, valid says the opposite",
                              ok ? "valid" : "invalid");
}

/*  Every clip at every bound is well-formed, within its bound, free of
    control characters and, when the input is clean and fits, the input
    itself. Every prefix ends on a character boundary within its bound.  */
static void
s_check_invariants (const bf_testutil_row_t *row, const char *bytes, size_t len)
{
    s_check_step (row, bytes, len);
    size_t clen = strlen (bytes); /* clip reads a C string */
    for (size_t max = 0; max <= 64; max++) {
        char out[BF_TEXT_CLIP_SHORT];
        memset (out, 'Z', sizeof out);
        if (bf_text_clip (out, sizeof out, bytes, max) != out)
            bf_testutil_row_fail (row, "clip did not return out");
        size_t n = strlen (out);
        if (n > max || !bf_text_utf8_valid (out, n) || strstr (out, "\xC2\x85"))
            bf_testutil_row_fail (row, "clip at %zu: %zu bytes, or not clean UTF-8", max, n);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7F)
                bf_testutil_row_fail (row, "clip at %zu keeps control byte 0x%02x", max, out[i]);
        size_t p = bf_text_utf8_prefix (bytes, len, max);
        if (p > max || p > len
            || (p < len && bf_text_utf8_valid (bytes, len) && !bf_text_utf8_valid (bytes, p)))
            bf_testutil_row_fail (row, "prefix at %zu is %zu", max, p);
    }
    char whole[BF_TEXT_CLIP_LONG];
    bool clean = bf_text_utf8_valid (bytes, clen);
    for (size_t i = 0; clean && i < clen; i++)
        clean = (unsigned char)bytes[i] >= 0x20 && bytes[i] != 0x7F
                && !((unsigned char)bytes[i] == 0xC2 && i + 1 < clen
                     && (unsigned char)bytes[i + 1] < 0xA0);
    if (clean && clen < sizeof whole
        && strcmp (bf_text_clip (whole, sizeof whole, bytes, clen), bytes) != 0)
        bf_testutil_row_fail (row, "a clean input that fits is not copied as it is");
}

static void
s_row (const bf_testutil_row_t *row, size_t op, void *arg)
{
    (void)arg;
    (void)op;
    if (row->count < 2)
        bf_testutil_row_fail (row, "no input");
    const char *in = row->field[1];
    size_t in_len = row->len[1];
    s_check_invariants (row, in, in_len);
    if (strcmp (row->field[0], "len") == 0) {
        /*  len INPUT AVAIL EXPECTED: AVAIL "-" is the whole input.  */
        size_t avail = strcmp (row->field[2], "-") == 0 ? in_len : bf_testutil_row_size (row, 2);
        size_t want = bf_testutil_row_size (row, 3);
        size_t got = bf_text_utf8_len (in, avail);
        if (got != want)
            bf_testutil_row_fail (row, "utf8_len %zu, expected %zu", got, want);
    } else if (strcmp (row->field[0], "decode") == 0) {
        /*  decode INPUT LENGTH CODEPOINT: CODEPOINT "-" when LENGTH is 0
            (the code point is then left alone).  */
        size_t want = bf_testutil_row_size (row, 2);
        uint32_t cp = 0xDEAD;
        size_t got = bf_text_utf8_decode (in, in_len, &cp);
        uint32_t want_cp = want ? (uint32_t)strtoul (row->field[3], NULL, 16) : 0xDEAD;
        if (got != want || cp != want_cp)
            bf_testutil_row_fail (row, "decode %zu U+%04X, expected %zu U+%04X", got, cp, want,
                                  want_cp);
        if (got != bf_text_utf8_len (in, in_len))
            bf_testutil_row_fail (row, "decode and utf8_len disagree");
    } else if (strcmp (row->field[0], "valid") == 0) {
        bool want = strcmp (row->field[2], "yes") == 0;
        if (bf_text_utf8_valid (in, in_len) != want)
            bf_testutil_row_fail (row, "valid is not %s", row->field[2]);
    } else if (strcmp (row->field[0], "prefix") == 0) {
        size_t max = bf_testutil_row_size (row, 2), want = bf_testutil_row_size (row, 3);
        size_t got = bf_text_utf8_prefix (in, in_len, max);
        if (got != want)
            bf_testutil_row_fail (row, "prefix %zu, expected %zu", got, want);
    } else if (strcmp (row->field[0], "clip") == 0) {
        /*  clip INPUT MAX OUTSIZE EXPECTED  */
        size_t max = bf_testutil_row_size (row, 2), outsize = bf_testutil_row_size (row, 3);
        char *out = malloc (outsize + 1);
        assert_non_null (out);
        const char *text = strcmp (in, "(null)") == 0 ? NULL : in;
        bf_text_clip (out, outsize, text, max);
        if (row->count < 5 || strcmp (out, row->field[4]) != 0)
            bf_testutil_row_fail (row, "clip gave \"%s\"", out);
        free (out);
    }
}

static void
test_corpus (void **state)
{
    (void)state;
    bf_testutil_corpus (s_corpus_path, s_ops, s_row, NULL, 100, 5);
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

//  The bounded writer: never past size - 1, always terminated, need counts
//  what was asked; a dry run (NULL, 0) only counts.
static void
test_out (void **state)
{
    (void)state;
    char data[8];
    memset (data, 'Z', sizeof data);
    bf_text_out_t out = BF_TEXT_OUT (data, sizeof data);
    bf_text_out_str (&out, "abc");
    assert_true (bf_text_out_fits (&out));
    assert_string_equal (data, "abc");
    bf_text_out_add (&out, "defgh", 5);
    assert_false (bf_text_out_fits (&out));
    assert_int_equal (out.len, 7);
    assert_int_equal (out.need, 8);
    assert_string_equal (data, "abcdefg");
    bf_text_out_str (&out, "more");
    assert_int_equal (out.len, 7);
    assert_int_equal (out.need, 12);
    bf_text_out_t dry = BF_TEXT_OUT (NULL, 0);
    bf_text_out_str (&dry, "가나다");
    assert_int_equal (dry.need, 9);
    assert_int_equal (dry.len, 0);
    //  A wiped buffer is empty and reusable.
    bf_text_buf_t secret = { 0 };
    assert_int_equal (bf_text_buf_str (&secret, "password"), 0);
    bf_text_buf_wipe (&secret);
    assert_null (secret.data);
    assert_int_equal (secret.len + secret.cap, 0);
    assert_int_equal (bf_text_buf_str (&secret, "x"), 0);
    bf_text_buf_wipe (&secret);
}

int
main (int argc, char **argv)
{
    s_corpus_path = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_corpus),     cmocka_unit_test (test_buf_utf8_roundtrip),
        cmocka_unit_test (test_buf_append), cmocka_unit_test (test_buf_base64),
        cmocka_unit_test (test_out),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
