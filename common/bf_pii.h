/*  bf_pii — personal data (email, phone, push token) encrypted at rest.

    Authenticated encryption with libsodium's XChaCha20-Poly1305 (IETF). Each
    sealed value is  version(1) || nonce(24) || ciphertext || tag(16), and is
    bound (as associated data) to the field name and the subscriber id, so a
    value copied to another row or column fails to open. A keyed hash
    (BLAKE2b, 32 bytes, separate subkey) of the normalised value supports
    lookups without decrypting. Decrypt only where a message is actually sent.

    The master key is 32 bytes, given as 64 hex characters in a key file or in
    the environment (see docs/configuration.md). Subkeys are derived with
    crypto_kdf; the master key is wiped from memory on destroy.  */

#ifndef BF_PII_H_INCLUDED
#define BF_PII_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct bf_pii_t bf_pii_t;

#define BF_PII_KEY_HEX_LEN 64
#define BF_PII_HASH_LEN    32
#define BF_PII_OVERHEAD    (1 + 24 + 16)

/*  Creates a context from 64 hex characters (surrounding whitespace ignored).
    Returns NULL and writes a reason into err when the key is malformed or
    libsodium cannot initialise.  */
bf_pii_t *bf_pii_new (const char *key_hex, char *err, size_t errsize);

/*  Loads the key: from key_file when it is non-empty, else from key_hex when
    non-empty; NULL with a reason in err when neither gives a valid key or the
    file is unreadable or readable by group/others.  */
bf_pii_t *bf_pii_load (const char *key_file, const char *key_hex, char *err, size_t errsize);

/*  Wipes the keys and frees the context; sets *self_p to NULL, safe twice.  */
void bf_pii_destroy (bf_pii_t **self_p);

/*  Fresh random key as 64 hex chars + NUL into out (size >= 65).  */
void bf_pii_keygen (char *out, size_t outsize);

/*  Seals plain (len bytes) into out, which must hold len + BF_PII_OVERHEAD.
    field is the column name ("email", "phone", "push_token"); subject is the
    subscriber id. Returns the sealed length, or 0 when out is too small.  */
size_t bf_pii_seal (const bf_pii_t *self, const char *field, uint64_t subject, const char *plain,
                    size_t len, uint8_t *out, size_t outsize);

/*  Opens a sealed value into out as a NUL-terminated string. Returns the plain
    length, or -1 when the value was tampered with, sealed under another key,
    field or subject, has an unknown version, or does not fit out.  */
long bf_pii_open (const bf_pii_t *self, const char *field, uint64_t subject, const uint8_t *sealed,
                  size_t len, char *out, size_t outsize);

/*  Keyed lookup hash of value after normalisation (emails: trimmed and
    lower-cased ASCII; phones: digits only; other fields: as given). The
    field name is hashed too, so equal values in two fields hash apart.  */
void bf_pii_hash (const bf_pii_t *self, const char *field, const char *value,
                  uint8_t out[BF_PII_HASH_LEN]);

/*  A phone number as an operator types it, reduced to the digits its
    lookup hash was made of: those of a Korean mobile number as billdata
    stores them (01X and 7 or 8 more digits). Spaces, '-', '.', '(' and ')'
    between digits are dropped; a leading "+82" (the country code) stands
    for the national number's leading 0 ("+82 10-1234-5678" is
    01012345678). Writes the digits and a NUL into out (outsize >= 12) and
    returns their count, or -1 when text is not such a number (any other
    character, too few or too many digits, another prefix, over 32 bytes).
    Pure; thread-safe.  */
int bf_pii_phone_normal (const char *text, char *out, size_t outsize);

#endif
