/*  bf_uuid — random (version 4) UUIDs for event and command ids.

    Text form only: 36 characters, lowercase hex in the canonical 8-4-4-4-12
    layout, e.g. "0b9c6d2e-4f1a-4c3b-9e7d-5a6b7c8d9e0f". Randomness comes
    from libsodium (randombytes_buf); the library is initialised on first
    use, once, from whichever thread gets there first.  */

#ifndef BF_UUID_H_INCLUDED
#define BF_UUID_H_INCLUDED

#include <stdbool.h>

/*  Length of the text form, without the NUL.  */
#define BF_UUID_LEN 36

/*  Writes a fresh random UUID v4 (RFC 4122 version and variant bits set)
    and its NUL into out, and returns out. Returns NULL, after logging, only
    when libsodium cannot be initialised. Thread-safe.  */
char *bf_uuid_v4 (char out[BF_UUID_LEN + 1]);

/*  True when text is exactly a canonical UUID: 36 characters, 8-4-4-4-12
    groups of lowercase hex digits separated by '-'. Any version is
    accepted; uppercase is not (ids are compared as strings). NULL -> false.  */
bool bf_uuid_valid (const char *text);

#endif
