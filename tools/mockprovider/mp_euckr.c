/*  mp_euckr — how long a UTF-8 text is in EUC-KR, the encoding SMS and LMS limits count in.  */

#include "mp_euckr.h"

#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "mp_utf8.h"

static pthread_key_t s_iconv_key;

static void
s_iconv_close (void *cd)
{
    iconv_close ((iconv_t)cd);
}

void
mp_euckr_init (void)
{
    pthread_key_create (&s_iconv_key, s_iconv_close);
}

long
mp_euckr_len (const char *text, size_t len, size_t *bad)
{
    size_t i = 0;
    while (i < len && !(text[i] & 0x80))
        i++;
    if (i == len)
        return (long)len; /* ASCII: one byte each */
    iconv_t cd = (iconv_t)pthread_getspecific (s_iconv_key);
    if (!cd) {
        cd = iconv_open ("EUC-KR", "UTF-8");
        if (cd == (iconv_t)-1)
            return -2;
        if (pthread_setspecific (s_iconv_key, cd) != 0) {
            iconv_close (cd);
            return -2;
        }
    }
    iconv (cd, NULL, NULL, NULL, NULL);
    char *in = (char *)text;
    size_t in_left = len;
    long total = 0;
    while (in_left > 0) {
        char out[1024];
        char *o = out;
        size_t o_left = sizeof out;
        size_t rc = iconv (cd, &in, &in_left, &o, &o_left);
        total += (long)(sizeof out - o_left);
        if (rc == (size_t)-1 && errno != E2BIG) {
            *bad = (size_t)(in - text);
            return -1;
        }
    }
    return total;
}

bool
mp_euckr_fits (const char *name, const char *text, size_t len, long limit, const char *channel,
               char *why, size_t why_size)
{
    size_t bad = 0;
    long n = mp_euckr_len (text, len, &bad);
    if (n == -2) {
        snprintf (why, why_size, "EUC-KR converter unavailable");
        return false;
    }
    if (n < 0) {
        uint32_t cp = mp_utf8_decode ((const unsigned char *)text + bad, len - bad);
        snprintf (why, why_size, "%s: character U+%04" PRIX32 " at byte %zu has no EUC-KR form",
                  name, cp, bad);
        return false;
    }
    if (n > limit) {
        snprintf (why, why_size, "%s is %ld bytes in EUC-KR; %s allows %ld", name, n, channel,
                  limit);
        return false;
    }
    return true;
}
