/*  =========================================================================
    bf_pii - personal data encrypted at rest (XChaCha20-Poly1305) and keyed
    lookup hashes (BLAKE2b).

    Keys: two 32-byte subkeys are derived from the master key with
    crypto_kdf (context "bfpii-v1"): id 1 encrypts, id 2 keys the lookup
    hash. The master key is wiped as soon as they exist; the subkeys are
    wiped on destroy.

    Sealed value (version 1):
        version (1 byte, 0x01) || nonce (24 random bytes) || ciphertext || tag (16)
    Associated data, authenticated but not stored:
        version (1) || field name (its bytes, no NUL) || 0x00 || subject (8 bytes, big-endian)
    The 0x00 separator cannot occur in a field name, so (field, subject)
    pairs map to distinct associated data.

    Lookup hash: BLAKE2b-256 keyed with subkey 2 over
        field name || 0x00 || normalised value
    so equal values in different fields do not share a hash.

    A context is read-only after bf_pii_new: seal, open and hash may be
    called from several threads at once.
    =========================================================================
*/

#include "bf_log.h"
#include "bf_pii.h"
#include "bf_secfile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_VERSION      0x01
#define S_KDF_CONTEXT  "bfpii-v1"
#define S_SUBKEY_SEAL  1
#define S_SUBKEY_HASH  2
#define S_NONCE_LEN    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define S_TAG_LEN      crypto_aead_xchacha20poly1305_ietf_ABYTES
#define S_KEY_FILE_MAX 256 //  64 hex characters and some white space

_Static_assert(BF_PII_OVERHEAD == 1 + S_NONCE_LEN + S_TAG_LEN, "overhead");
_Static_assert(sizeof (S_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "aead key");
_Static_assert(crypto_kdf_KEYBYTES == 32, "kdf key");

struct bf_pii_t {
    uint8_t seal_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    uint8_t hash_key[crypto_generichash_KEYBYTES];
};

static bool
s_is_space (char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool
s_is_hex (char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

//  Decodes key text (len bytes, not necessarily NUL-terminated) into master.
//  The message never quotes the key.

static int
s_parse_key (const char *text, size_t len, uint8_t *master, char *err, size_t errsize)
{
    while (len > 0 && s_is_space (*text)) {
        text++;
        len--;
    }
    while (len > 0 && s_is_space (text[len - 1]))
        len--;
    if (len == 0) {
        bf_err_set (err, errsize, "PII key is empty (expected %d hex characters)",
                    BF_PII_KEY_HEX_LEN);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (!s_is_hex (text[i])) {
            bf_err_set (err, errsize, "PII key has a non-hex character at position %zu", i + 1);
            return -1;
        }
    if (len != BF_PII_KEY_HEX_LEN) {
        bf_err_set (err, errsize, "PII key has %zu hex characters, expected %d", len,
                    BF_PII_KEY_HEX_LEN);
        return -1;
    }
    size_t bin_len = 0;
    if (sodium_hex2bin (master, crypto_kdf_KEYBYTES, text, len, NULL, &bin_len, NULL) != 0
        || bin_len != crypto_kdf_KEYBYTES) {
        bf_err_set (err, errsize, "PII key is not valid hex");
        return -1;
    }
    return 0;
}

static bf_pii_t *
s_new_from_master (const uint8_t *master, char *err, size_t errsize)
{
    bf_pii_t *self = (bf_pii_t *)calloc (1, sizeof (bf_pii_t));
    if (!self) {
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    if (crypto_kdf_derive_from_key (self->seal_key, sizeof self->seal_key, S_SUBKEY_SEAL,
                                    S_KDF_CONTEXT, master)
            != 0
        || crypto_kdf_derive_from_key (self->hash_key, sizeof self->hash_key, S_SUBKEY_HASH,
                                       S_KDF_CONTEXT, master)
               != 0) {
        bf_err_set (err, errsize, "cannot derive PII subkeys");
        bf_pii_destroy (&self);
        return NULL;
    }
    return self;
}

static int
s_sodium_ready (char *err, size_t errsize)
{
    if (sodium_init () < 0) {
        bf_err_set (err, errsize, "libsodium cannot initialise");
        return -1;
    }
    return 0;
}

bf_pii_t *
bf_pii_new (const char *key_hex, char *err, size_t errsize)
{
    if (s_sodium_ready (err, errsize) != 0)
        return NULL;
    if (!key_hex) {
        bf_err_set (err, errsize, "no PII key given");
        return NULL;
    }
    uint8_t master[crypto_kdf_KEYBYTES];
    bf_pii_t *self = NULL;
    if (s_parse_key (key_hex, strlen (key_hex), master, err, errsize) == 0)
        self = s_new_from_master (master, err, errsize);
    sodium_memzero (master, sizeof master);
    return self;
}

bf_pii_t *
bf_pii_load (const char *key_file, const char *key_hex, char *err, size_t errsize)
{
    if (s_sodium_ready (err, errsize) != 0)
        return NULL;
    if (!key_file || !*key_file) {
        if (!key_hex || !*key_hex) {
            bf_err_set (err, errsize, "no PII key: set pii.key_file (or pii.key)");
            return NULL;
        }
        return bf_pii_new (key_hex, err, errsize);
    }
    //  Check the file that was opened, not the name, so nothing can swap it
    //  between the check and the read.
    int fd = open (key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        bf_err_set (err, errsize, "cannot open PII key file '%s': %s", key_file, strerror (errno));
        return NULL;
    }
    /*  One rule for files holding secrets (bf_secfile.h).  */
    if (bf_secfile_check (fd, "PII key file", key_file, err, errsize) != 0) {
        close (fd);
        return NULL;
    }
    char text[S_KEY_FILE_MAX + 1];
    size_t len = 0;
    bool failed = false;
    while (len < sizeof text) {
        ssize_t n = read (fd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bf_err_set (err, errsize, "cannot read PII key file '%s': %s", key_file,
                        strerror (errno));
            failed = true;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close (fd);
    if (!failed && len > S_KEY_FILE_MAX) {
        bf_err_set (err, errsize, "PII key file '%s' is too long for a key (over %d bytes)",
                    key_file, S_KEY_FILE_MAX);
        failed = true;
    }
    bf_pii_t *self = NULL;
    if (!failed) {
        uint8_t master[crypto_kdf_KEYBYTES];
        char reason[160];
        if (s_parse_key (text, len, master, reason, sizeof reason) == 0)
            self = s_new_from_master (master, err, errsize);
        else
            bf_err_set (err, errsize, "PII key file '%s': %s", key_file, reason);
        sodium_memzero (master, sizeof master);
    }
    sodium_memzero (text, sizeof text);
    return self;
}

void
bf_pii_destroy (bf_pii_t **self_p)
{
    assert (self_p);
    bf_pii_t *self = *self_p;
    if (!self)
        return;
    sodium_memzero (self, sizeof (bf_pii_t));
    free (self);
    *self_p = NULL;
}

void
bf_pii_keygen (char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return;
    out[0] = 0;
    if (outsize < BF_PII_KEY_HEX_LEN + 1 || sodium_init () < 0)
        return;
    uint8_t key[crypto_kdf_KEYBYTES];
    randombytes_buf (key, sizeof key);
    sodium_bin2hex (out, outsize, key, sizeof key);
    sodium_memzero (key, sizeof key);
}

//  Associated data for (field, subject); returns its length. field is cut
//  at 200 bytes, far beyond any column name.

#define S_AD_MAX (1 + 200 + 1 + 8)

static size_t
s_build_ad (const char *field, uint64_t subject, uint8_t *ad)
{
    assert (strlen (field) <= 200);
    size_t field_len = strnlen (field, 200);
    size_t len = 0;
    ad[len++] = S_VERSION;
    memcpy (ad + len, field, field_len);
    len += field_len;
    ad[len++] = 0;
    for (int shift = 56; shift >= 0; shift -= 8)
        ad[len++] = (uint8_t)(subject >> shift);
    return len;
}

size_t
bf_pii_seal (const bf_pii_t *self, const char *field, uint64_t subject, const char *plain,
             size_t len, uint8_t *out, size_t outsize)
{
    assert (self);
    assert (field);
    assert (plain || len == 0);
    assert (out || outsize == 0);
    if (len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX
        || len > SIZE_MAX - BF_PII_OVERHEAD || outsize < len + BF_PII_OVERHEAD)
        return 0;
    uint8_t ad[S_AD_MAX];
    size_t ad_len = s_build_ad (field, subject, ad);
    out[0] = S_VERSION;
    uint8_t *nonce = out + 1;
    randombytes_buf (nonce, S_NONCE_LEN);
    unsigned long long cipher_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt (out + 1 + S_NONCE_LEN, &cipher_len,
                                                (const unsigned char *)(plain ? plain : ""), len,
                                                ad, ad_len, NULL, nonce, self->seal_key);
    return 1 + S_NONCE_LEN + (size_t)cipher_len;
}

long
bf_pii_open (const bf_pii_t *self, const char *field, uint64_t subject, const uint8_t *sealed,
             size_t len, char *out, size_t outsize)
{
    assert (self);
    assert (field);
    if (out && outsize > 0)
        out[0] = 0;
    if (!sealed || len < BF_PII_OVERHEAD || sealed[0] != S_VERSION)
        return -1;
    size_t plain_len = len - BF_PII_OVERHEAD;
    if (!out || outsize < plain_len + 1 || plain_len > LONG_MAX)
        return -1;
    uint8_t ad[S_AD_MAX];
    size_t ad_len = s_build_ad (field, subject, ad);
    unsigned long long opened_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt ((unsigned char *)out, &opened_len, NULL,
                                                    sealed + 1 + S_NONCE_LEN, len - 1 - S_NONCE_LEN,
                                                    ad, ad_len, sealed + 1, self->seal_key)
        != 0) {
        sodium_memzero (out, outsize);
        return -1;
    }
    out[opened_len] = 0;
    return (long)opened_len;
}

//  Feeds bytes to the hash in chunks after normalising them for field.

void
bf_pii_hash (const bf_pii_t *self, const char *field, const char *value,
             uint8_t out[BF_PII_HASH_LEN])
{
    assert (self);
    assert (field);
    assert (out);
    if (!value)
        value = "";
    crypto_generichash_state state;
    crypto_generichash_init (&state, self->hash_key, sizeof self->hash_key, BF_PII_HASH_LEN);
    crypto_generichash_update (&state, (const unsigned char *)field, strlen (field));
    crypto_generichash_update (&state, (const unsigned char *)"", 1);

    size_t len = strlen (value);
    bool is_email = strcmp (field, "email") == 0;
    bool is_phone = strcmp (field, "phone") == 0;
    if (is_email) {
        while (len > 0 && s_is_space (*value)) {
            value++;
            len--;
        }
        while (len > 0 && s_is_space (value[len - 1]))
            len--;
    }
    if (!is_email && !is_phone)
        crypto_generichash_update (&state, (const unsigned char *)value, len);
    else {
        unsigned char chunk[256];
        size_t used = 0;
        for (size_t i = 0; i < len; i++) {
            char c = value[i];
            if (is_phone) {
                if (c < '0' || c > '9')
                    continue;
            } else if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            chunk[used++] = (unsigned char)c;
            if (used == sizeof chunk) {
                crypto_generichash_update (&state, chunk, used);
                used = 0;
            }
        }
        crypto_generichash_update (&state, chunk, used);
        sodium_memzero (chunk, sizeof chunk);
    }
    crypto_generichash_final (&state, out, BF_PII_HASH_LEN);
    sodium_memzero (&state, sizeof state);
}

int
bf_pii_phone_normal (const char *text, char *out, size_t outsize)
{
    if (!text || !out || outsize < 12 || strlen (text) > 32)
        return -1;
    size_t n = 0;
    const char *p = text;
    while (*p == ' ')
        p++;
    if (!strncmp (p, "+82", 3)) {
        out[n++] = '0';
        p += 3;
    }
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= outsize)
                return -1;
            out[n++] = *p;
        } else if (!strchr (" -.()", *p))
            return -1;
    }
    out[n] = 0;
    /*  "+82 010..." (the 0 typed twice) is a common slip: one 0 only.  */
    if (n >= 2 && !strncmp (text + strspn (text, " "), "+82", 3) && out[1] == '0') {
        memmove (out + 1, out + 2, n - 1);
        n--;
    }
    if ((n != 10 && n != 11) || out[0] != '0' || out[1] != '1' || !strchr ("016789", out[2])) {
        out[0] = 0;
        return -1;
    }
    return (int)n;
}
