/*  bf_euckr — UTF-8 text counted and fitted in EUC-KR bytes.

    The provider counts SMS and LMS limits in EUC-KR bytes
    (docs/provider-api.md). Rule for characters EUC-KR cannot encode
    (emoji, Hangul syllables outside KS X 1001 such as "똠", most Latin
    accents): they are sent as '?' and count 1 byte. Pure functions,
    thread-safe: iconv descriptors are opened per call (glibc loads its
    converter once per process).  */

#ifndef BF_EUCKR_H_INCLUDED
#define BF_EUCKR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  UTF-8 bytes that n EUC-KR bytes need at most, with the NUL: 1.5 times
    (2 -> 3 for Hangul).  */
#define BF_EUCKR_UTF8_SIZE(n) ((n)*3 / 2 + 1)

/*  EUC-KR length of a UTF-8 string under the rule above; *replaced (may be
    NULL) gets the number of characters sent as '?'. Returns -1 for NULL or
    invalid UTF-8, or when the system has no EUC-KR converter.  */
long bf_euckr_bytes (const char *utf8, size_t *replaced);

typedef struct {
    size_t bytes;    /* EUC-KR length of out */
    size_t replaced; /* characters written as '?' */
    bool cut;        /* the input did not fit max_bytes */
} bf_euckr_fit_t;

/*  Writes into out the sendable form of utf8 (unencodable characters
    replaced by '?') that fits max_bytes EUC-KR bytes. When the whole text
    does not fit, it is cut at a character boundary, and with ellipsis "…"
    (2 bytes in EUC-KR) is appended within max_bytes when max_bytes >= 2.
    out needs BF_EUCKR_UTF8_SIZE (max_bytes) bytes at most. Returns 0 and
    fills *fit (may be NULL), or -1 (out "") for invalid UTF-8, no
    converter, or out too small.  */
int bf_euckr_fit (const char *utf8, size_t max_bytes, bool ellipsis, char *out, size_t outsize,
                  bf_euckr_fit_t *fit);

/*  True when utf8 holds a character EUC-KR cannot encode: *at gets the
    byte offset of the first one and *len its UTF-8 length. False when
    there is none, and for NULL, invalid UTF-8 up to that point or no
    converter (at and len untouched).  */
bool bf_euckr_unencodable (const char *utf8, size_t *at, size_t *len);

#endif
