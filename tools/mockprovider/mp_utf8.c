/*  mp_utf8 — reading and writing single UTF-8 characters.  */

#include "mp_utf8.h"

size_t
mp_utf8_len (const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
#define S_CONT(i) ((i) < n && (p[i] & 0xc0) == 0x80)
    if (c >= 0xc2 && c <= 0xdf)
        return S_CONT (1) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || !S_CONT (1) || !S_CONT (2))
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0;
        if (c == 0xed && p[1] > 0x9f)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || !S_CONT (1) || !S_CONT (2) || !S_CONT (3))
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0;
        if (c == 0xf4 && p[1] > 0x8f)
            return 0;
        return 4;
    }
#undef S_CONT
    return 0;
}

uint32_t
mp_utf8_decode (const unsigned char *p, size_t n)
{
    size_t len = mp_utf8_len (p, n);
    if (len == 1)
        return p[0];
    if (len == 2)
        return ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
    if (len == 3)
        return ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    if (len == 4)
        return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12)
               | ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    return 0xfffd;
}

size_t
mp_utf8_put (char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}
