/*  =========================================================================
    test_pii - bf_pii: sealing round trips, tamper and misuse detection,
    lookup hashes and their normalisation, key parsing and the key file
    permission check.
    =========================================================================
*/

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf_pii.h"

#define KEY1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static bf_pii_t *
s_new (const char *key)
{
    char err[256] = "";
    bf_pii_t *pii = bf_pii_new (key, err, sizeof err);
    if (!pii)
        fail_msg ("bf_pii_new: %s", err);
    return pii;
}

static char *
s_write_key_file (const char *content, mode_t mode)
{
    char *path = strdup ("/tmp/bf_test_pii_XXXXXX");
    assert_non_null (path);
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    size_t len = strlen (content);
    assert_int_equal (write (fd, content, len), (ssize_t)len);
    close (fd);
    assert_int_equal (chmod (path, mode), 0);
    return path;
}

static void
s_remove_file (char *path)
{
    unlink (path);
    free (path);
}

static void
test_round_trip (void **state)
{
    (void)state;
    bf_pii_t *pii = s_new (KEY1);
    static const char *const values[] = {
        "hong.gildong@example.com",
        "010-1234-5678",
        "홍길동 <홍길동@예시.한국>",
        "",
        "with\0nul", //  only the part before NUL, via strlen
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t len = strlen (values[i]);
        uint8_t sealed[256];
        size_t sealed_len = bf_pii_seal (pii, "email", 42, values[i], len, sealed, sizeof sealed);
        assert_int_equal (sealed_len, len + BF_PII_OVERHEAD);
        assert_int_equal (sealed[0], 0x01);
        //  The plain text does not appear in the sealed bytes.
        if (len > 3)
            assert_null (memmem (sealed, sealed_len, values[i], len));
        char out[256];
        memset (out, '#', sizeof out);
        long opened = bf_pii_open (pii, "email", 42, sealed, sealed_len, out, sizeof out);
        assert_int_equal (opened, (long)len);
        assert_int_equal (out[len], 0);
        assert_memory_equal (out, values[i], len);
    }
    //  Binary content with an embedded NUL survives; the length tells.
    const char binary[] = { 'a', 0, 'b', (char)0xff };
    uint8_t sealed[64];
    size_t sealed_len
        = bf_pii_seal (pii, "push_token", 7, binary, sizeof binary, sealed, sizeof sealed);
    char out[64];
    assert_int_equal (bf_pii_open (pii, "push_token", 7, sealed, sealed_len, out, sizeof out),
                      (long)sizeof binary);
    assert_memory_equal (out, binary, sizeof binary);
    bf_pii_destroy (&pii);
    assert_null (pii);
    bf_pii_destroy (&pii);
}

static void
test_sizes (void **state)
{
    (void)state;
    bf_pii_t *pii = s_new (KEY1);
    const char *value = "hong@example.com";
    size_t len = strlen (value);
    uint8_t sealed[64];
    assert_int_equal (bf_pii_seal (pii, "email", 1, value, len, sealed, len + BF_PII_OVERHEAD - 1),
                      0);
    assert_int_equal (bf_pii_seal (pii, "email", 1, value, len, sealed, 0), 0);
    size_t sealed_len = bf_pii_seal (pii, "email", 1, value, len, sealed, len + BF_PII_OVERHEAD);
    assert_int_equal (sealed_len, len + BF_PII_OVERHEAD);

    char out[64];
    //  out needs room for the terminating NUL.
    assert_int_equal (bf_pii_open (pii, "email", 1, sealed, sealed_len, out, len), -1);
    assert_int_equal (bf_pii_open (pii, "email", 1, sealed, sealed_len, out, len + 1), (long)len);
    assert_string_equal (out, value);
    //  Truncated and empty inputs.
    for (size_t cut = 0; cut < sealed_len; cut++)
        assert_int_equal (bf_pii_open (pii, "email", 1, sealed, cut, out, sizeof out), -1);
    assert_int_equal (bf_pii_open (pii, "email", 1, NULL, 0, out, sizeof out), -1);
    bf_pii_destroy (&pii);
}

static void
test_tamper (void **state)
{
    (void)state;
    bf_pii_t *pii = s_new (KEY1);
    const char *value = "01012345678";
    size_t len = strlen (value);
    uint8_t sealed[64];
    size_t sealed_len = bf_pii_seal (pii, "phone", 99, value, len, sealed, sizeof sealed);
    assert_int_equal (sealed_len, len + BF_PII_OVERHEAD);
    char out[64];
    for (size_t i = 0; i < sealed_len; i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t copy[64];
            memcpy (copy, sealed, sealed_len);
            copy[i] ^= (uint8_t)(1u << bit);
            memset (out, '#', sizeof out);
            if (bf_pii_open (pii, "phone", 99, copy, sealed_len, out, sizeof out) != -1)
                fail_msg ("flipping bit %d of byte %zu went unnoticed", bit, i);
            //  Nothing of the plain text is left in out on failure.
            assert_null (memmem (out, sizeof out, "0101", 4));
        }
    //  An appended byte is tampering too.
    uint8_t longer[65];
    memcpy (longer, sealed, sealed_len);
    longer[sealed_len] = 0;
    assert_int_equal (bf_pii_open (pii, "phone", 99, longer, sealed_len + 1, out, sizeof out), -1);
    //  And the untouched value still opens.
    assert_int_equal (bf_pii_open (pii, "phone", 99, sealed, sealed_len, out, sizeof out),
                      (long)len);
    bf_pii_destroy (&pii);
}

static void
test_wrong_key_field_subject_version (void **state)
{
    (void)state;
    bf_pii_t *pii = s_new (KEY1);
    bf_pii_t *other = s_new (KEY2);
    const char *value = "hong@example.com";
    size_t len = strlen (value);
    uint8_t sealed[64];
    size_t sealed_len = bf_pii_seal (pii, "email", 1000, value, len, sealed, sizeof sealed);
    char out[64];
    assert_int_equal (bf_pii_open (pii, "email", 1000, sealed, sealed_len, out, sizeof out),
                      (long)len);
    assert_int_equal (bf_pii_open (other, "email", 1000, sealed, sealed_len, out, sizeof out), -1);
    assert_int_equal (bf_pii_open (pii, "phone", 1000, sealed, sealed_len, out, sizeof out), -1);
    assert_int_equal (bf_pii_open (pii, "emai", 1000, sealed, sealed_len, out, sizeof out), -1);
    assert_int_equal (bf_pii_open (pii, "email ", 1000, sealed, sealed_len, out, sizeof out), -1);
    assert_int_equal (bf_pii_open (pii, "email", 1001, sealed, sealed_len, out, sizeof out), -1);
    assert_int_equal (
        bf_pii_open (pii, "email", 1000ull << 32, sealed, sealed_len, out, sizeof out), -1);
    assert_int_equal (bf_pii_open (pii, "email", 0, sealed, sealed_len, out, sizeof out), -1);

    //  Unknown versions are refused before any decryption.
    static const uint8_t versions[] = { 0x00, 0x02, 0x7f, 0xff };
    for (size_t i = 0; i < sizeof versions; i++) {
        uint8_t copy[64];
        memcpy (copy, sealed, sealed_len);
        copy[0] = versions[i];
        assert_int_equal (bf_pii_open (pii, "email", 1000, copy, sealed_len, out, sizeof out), -1);
    }
    bf_pii_destroy (&pii);
    bf_pii_destroy (&other);
}

static void
test_nonce_unique (void **state)
{
    (void)state;
    bf_pii_t *pii = s_new (KEY1);
    const char *value = "hong@example.com";
    size_t len = strlen (value);
    uint8_t a[64], b[64];
    size_t a_len = bf_pii_seal (pii, "email", 5, value, len, a, sizeof a);
    size_t b_len = bf_pii_seal (pii, "email", 5, value, len, b, sizeof b);
    assert_int_equal (a_len, b_len);
    assert_memory_not_equal (a + 1, b + 1, 24);           //  nonces
    assert_memory_not_equal (a + 25, b + 25, a_len - 25); //  ciphertext + tag
    char out[64];
    assert_int_equal (bf_pii_open (pii, "email", 5, a, a_len, out, sizeof out), (long)len);
    assert_int_equal (bf_pii_open (pii, "email", 5, b, b_len, out, sizeof out), (long)len);
    bf_pii_destroy (&pii);
}

static void
test_hash (void **state)
{
    (void)state;
    bf_pii_t *pii = s_new (KEY1);
    bf_pii_t *same = s_new ("  " KEY1 "\n");
    bf_pii_t *other = s_new (KEY2);
    uint8_t a[BF_PII_HASH_LEN], b[BF_PII_HASH_LEN];

    //  Stable per key, also across contexts made from the same key.
    bf_pii_hash (pii, "email", "hong@example.com", a);
    bf_pii_hash (same, "email", "hong@example.com", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "email", "hong@example.com", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    //  Different per key.
    bf_pii_hash (other, "email", "hong@example.com", b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);
    //  Different per value and per field.
    bf_pii_hash (pii, "email", "kim@example.com", b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "push_token", "hong@example.com", b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);

    //  Email normalisation: trimmed, ASCII lower-cased.
    bf_pii_hash (pii, "email", " Hong@Example.COM ", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "email", "\tHONG@EXAMPLE.COM\r\n", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "email", "hong @example.com", b); //  inner space kept
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);

    //  Phone normalisation: digits only.
    bf_pii_hash (pii, "phone", "010-1234-5678", a);
    bf_pii_hash (pii, "phone", "01012345678", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "phone", " 010 1234 5678 ", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "phone", "010-1234-5679", b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);

    //  Other fields: as given.
    bf_pii_hash (pii, "push_token", "AbC", a);
    bf_pii_hash (pii, "push_token", "abc", b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_hash (pii, "push_token", " AbC", b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);

    //  Long values are hashed whole (normalisation works in chunks).
    char long_a[2000], long_b[2000];
    memset (long_a, 'a', sizeof long_a - 1);
    long_a[sizeof long_a - 1] = 0;
    memcpy (long_b, long_a, sizeof long_b);
    long_b[1500] = 'A';
    bf_pii_hash (pii, "email", long_a, a);
    bf_pii_hash (pii, "email", long_b, b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    long_b[1500] = 'b';
    bf_pii_hash (pii, "email", long_b, b);
    assert_memory_not_equal (a, b, BF_PII_HASH_LEN);

    //  Hashes are not all-zero output.
    static const uint8_t zero[BF_PII_HASH_LEN] = { 0 };
    assert_memory_not_equal (a, zero, BF_PII_HASH_LEN);
    bf_pii_destroy (&pii);
    bf_pii_destroy (&same);
    bf_pii_destroy (&other);
}

static void
test_key_parsing (void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   \n",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",    //  62
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",   //  63
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0", //  65
        KEY1 KEY1,
        "g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",  //  non-hex
        "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f", //  inner space
        "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        bf_pii_t *pii = bf_pii_new (bad[i], err, sizeof err);
        if (pii)
            fail_msg ("accepted bad key %zu", i);
        assert_true (strlen (err) > 0);
        //  The message never quotes the key.
        assert_null (strstr (err, "0405060708"));
    }
    char err[256] = "";
    assert_null (bf_pii_new (NULL, err, sizeof err));
    assert_true (strlen (err) > 0);
    assert_null (bf_pii_new ("abc", NULL, 0)); //  err is optional

    char short_err[256];
    assert_null (bf_pii_new ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
                             short_err, sizeof short_err));
    assert_non_null (strstr (short_err, "63"));
    assert_non_null (strstr (short_err, "64"));

    //  Upper-case hex is the same key.
    bf_pii_t *lower = s_new (KEY2);
    bf_pii_t *upper = s_new ("FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100");
    uint8_t sealed[64];
    size_t sealed_len = bf_pii_seal (lower, "email", 3, "x@y", 3, sealed, sizeof sealed);
    char out[16];
    assert_int_equal (bf_pii_open (upper, "email", 3, sealed, sealed_len, out, sizeof out), 3);
    assert_string_equal (out, "x@y");
    bf_pii_destroy (&lower);
    bf_pii_destroy (&upper);
}

static void
test_key_file (void **state)
{
    (void)state;
    char err[512] = "";
    char *path = s_write_key_file (KEY1 "\n", 0644);
    assert_null (bf_pii_load (path, NULL, err, sizeof err));
    assert_non_null (strstr (err, path));
    assert_non_null (strstr (err, "0644"));
    assert_non_null (strstr (err, "group or others"));

    /*  Group-read is allowed when the group is this process's own (a
        Kubernetes secret under fsGroup: 0440 root:fsGroup); the file's
        group here is the test's own (bf_secfile.h).  */
    static const mode_t group_read[] = { 0640, 0440 };
    for (size_t i = 0; i < sizeof group_read / sizeof group_read[0]; i++) {
        assert_int_equal (chmod (path, group_read[i]), 0);
        bf_pii_t *pii = bf_pii_load (path, NULL, err, sizeof err);
        if (!pii)
            fail_msg ("refused mode %04o: %s", (unsigned)group_read[i], err);
        bf_pii_destroy (&pii);
    }
    static const mode_t refused[] = { 0604, 0660, 0610, 0601, 0650, 0777, 0444, 0620 };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal (chmod (path, refused[i]), 0);
        err[0] = 0;
        if (bf_pii_load (path, NULL, err, sizeof err))
            fail_msg ("accepted mode %04o", (unsigned)refused[i]);
        assert_non_null (strstr (err, path));
    }
    //  Owner-only modes are accepted; the key file wins over key_hex.
    static const mode_t accepted[] = { 0600, 0400 };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        assert_int_equal (chmod (path, accepted[i]), 0);
        bf_pii_t *loaded = bf_pii_load (path, KEY2, err, sizeof err);
        if (!loaded)
            fail_msg ("mode %04o refused: %s", (unsigned)accepted[i], err);
        bf_pii_t *direct = s_new (KEY1);
        uint8_t sealed[64];
        size_t sealed_len
            = bf_pii_seal (direct, "phone", 8, "01012345678", 11, sealed, sizeof sealed);
        char out[32];
        assert_int_equal (bf_pii_open (loaded, "phone", 8, sealed, sealed_len, out, sizeof out),
                          11);
        bf_pii_destroy (&loaded);
        bf_pii_destroy (&direct);
    }
    s_remove_file (path);

    //  Contents: surrounding white space is fine, anything else is not.
    static const struct {
        const char *content;
        bool ok;
    } contents[] = {
        { KEY1, true },        { "\n  " KEY1 "  \r\n\n", true }, { "", false },
        { KEY1 "0\n", false }, { "key=" KEY1 "\n", false },      { KEY1 "\n" KEY2 "\n", false },
    };
    for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++) {
        path = s_write_key_file (contents[i].content, 0600);
        err[0] = 0;
        bf_pii_t *pii = bf_pii_load (path, NULL, err, sizeof err);
        if ((pii != NULL) != contents[i].ok)
            fail_msg ("content case %zu: %s", i, err);
        if (!pii) {
            assert_non_null (strstr (err, path));
            assert_null (strstr (err, "0405060708"));
        }
        bf_pii_destroy (&pii);
        s_remove_file (path);
    }

    //  A huge file is refused without reading it all.
    char *huge = (char *)malloc (100001);
    memset (huge, '0', 100000);
    huge[100000] = 0;
    path = s_write_key_file (huge, 0600);
    free (huge);
    assert_null (bf_pii_load (path, NULL, err, sizeof err));
    assert_non_null (strstr (err, path));
    s_remove_file (path);

    //  Missing file, a directory, neither source, key_hex alone.
    assert_null (bf_pii_load ("/nonexistent/pii.key", KEY1, err, sizeof err));
    assert_non_null (strstr (err, "/nonexistent/pii.key"));
    assert_null (bf_pii_load ("/tmp", NULL, err, sizeof err));
    assert_non_null (strstr (err, "/tmp"));
    assert_null (bf_pii_load ("", "", err, sizeof err));
    assert_non_null (strstr (err, "pii.key_file"));
    assert_null (bf_pii_load (NULL, NULL, err, sizeof err));
    bf_pii_t *pii = bf_pii_load ("", KEY1, err, sizeof err);
    assert_non_null (pii);
    bf_pii_destroy (&pii);
    assert_null (bf_pii_load (NULL, "nothex", err, sizeof err));
}

static void
test_keygen (void **state)
{
    (void)state;
    char a[BF_PII_KEY_HEX_LEN + 1], b[BF_PII_KEY_HEX_LEN + 1];
    bf_pii_keygen (a, sizeof a);
    bf_pii_keygen (b, sizeof b);
    assert_int_equal (strlen (a), BF_PII_KEY_HEX_LEN);
    assert_int_equal (strspn (a, "0123456789abcdef"), BF_PII_KEY_HEX_LEN);
    assert_string_not_equal (a, b);
    bf_pii_t *pii = s_new (a);
    bf_pii_destroy (&pii);

    char small[BF_PII_KEY_HEX_LEN] = "junk";
    bf_pii_keygen (small, sizeof small);
    assert_string_equal (small, "");
}

/*  Phones as operators type them reduce to the digits billdata stores,
    so their lookup hash is the stored one; anything else is refused.  */
static void
test_phone_normal (void **state)
{
    (void)state;
    static const struct {
        const char *text, *digits; /* NULL: refused */
    } cases[] = {
        { "010-1234-5678", "01012345678" },
        { "01012345678", "01012345678" },
        { " 010 1234 5678 ", "01012345678" },
        { "(010) 1234.5678", "01012345678" },
        { "011-123-4567", "0111234567" },
        { "+82 10-1234-5678", "01012345678" },
        { "+821012345678", "01012345678" },
        { "+82 010-1234-5678", "01012345678" },
        { "", NULL },
        { "010-1234-567", "0101234567" }, /* 10 digits: a 3-digit middle part */
        { "010-123-45", NULL },
        { "010-1234-56789", NULL },
        { "02-123-4567", NULL },     /* a landline */
        { "015-1234-5678", NULL },   /* no such mobile prefix */
        { "+1 010 1234 5678", NULL },
        { "82 10 1234 5678", NULL }, /* a country code needs its + */
        { "010-1234-5678'; --", NULL },
        { "010\n1234\n5678", NULL },
        { "０１０12345678", NULL },   /* full-width digits */
        { "010-1234-5678 010-1234-5678", NULL },
        { "0 1 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4", NULL }, /* over 32 bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[16] = "x";
        int n = bf_pii_phone_normal (cases[i].text, out, sizeof out);
        if (!cases[i].digits) {
            if (n != -1)
                fail_msg ("'%s' accepted as %s", cases[i].text, out);
            continue;
        }
        if (n < 0)
            fail_msg ("'%s' refused", cases[i].text);
        assert_string_equal (out, cases[i].digits);
        assert_int_equal (n, (int)strlen (cases[i].digits));
    }
    char small[11];
    assert_int_equal (bf_pii_phone_normal ("010-1234-5678", small, sizeof small), -1);
    assert_int_equal (bf_pii_phone_normal (NULL, small, sizeof small), -1);

    /*  The hash of the normal form is the hash of the stored digits.  */
    char err[128];
    bf_pii_t *pii = bf_pii_new ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                err, sizeof err);
    assert_non_null (pii);
    char out[16];
    uint8_t a[BF_PII_HASH_LEN], b[BF_PII_HASH_LEN];
    assert_int_equal (bf_pii_phone_normal ("+82 10-9876-5432", out, sizeof out), 11);
    bf_pii_hash (pii, "phone", out, a);
    bf_pii_hash (pii, "phone", "01098765432", b);
    assert_memory_equal (a, b, BF_PII_HASH_LEN);
    bf_pii_destroy (&pii);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_sizes),
        cmocka_unit_test (test_tamper),
        cmocka_unit_test (test_wrong_key_field_subject_version),
        cmocka_unit_test (test_nonce_unique),
        cmocka_unit_test (test_hash),
        cmocka_unit_test (test_key_parsing),
        cmocka_unit_test (test_key_file),
        cmocka_unit_test (test_keygen),
        cmocka_unit_test (test_phone_normal),
    };
    return cmocka_run_group_tests_name ("bf_pii", tests, NULL, NULL);
}
