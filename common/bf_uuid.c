/*  bf_uuid — random (version 4) UUIDs from libsodium.

    sodium_init is itself idempotent and thread-safe, but we still run it
    through pthread_once so the hot path is one load and a branch, and so a
    failure is logged once rather than on every call.  */

#include "bf_uuid.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>

#include "bf_log.h"

static pthread_once_t s_sodium_once = PTHREAD_ONCE_INIT;
static int s_sodium_rc = -1;

static void
s_sodium_init (void)
{
    s_sodium_rc = sodium_init () < 0 ? -1 : 0;
    if (s_sodium_rc != 0)
        bf_error ("bf_uuid: libsodium cannot be initialised");
}

//  Dash positions in the text form.
static bool
s_is_dash_at (int index)
{
    return index == 8 || index == 13 || index == 18 || index == 23;
}

char *
bf_uuid_v4 (char out[BF_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (out == NULL)
        return NULL;
    pthread_once (&s_sodium_once, s_sodium_init);
    if (s_sodium_rc != 0)
        return NULL;

    uint8_t bytes[16];
    randombytes_buf (bytes, sizeof bytes);
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | 0x40); //  version 4
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80); //  variant 10xx (RFC 4122)

    int used = 0;
    for (int i = 0; i < 16; i++) {
        if (s_is_dash_at (used))
            out[used++] = '-';
        out[used++] = hex[bytes[i] >> 4];
        out[used++] = hex[bytes[i] & 15];
    }
    out[used] = '\0';
    sodium_memzero (bytes, sizeof bytes);
    return out;
}

bool
bf_uuid_valid (const char *text)
{
    if (text == NULL)
        return false;
    for (int i = 0; i < BF_UUID_LEN; i++) {
        char c = text[i]; //  an early NUL fails either test below
        if (s_is_dash_at (i)) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return text[BF_UUID_LEN] == '\0';
}
