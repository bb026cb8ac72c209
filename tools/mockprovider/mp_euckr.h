/*  mp_euckr — how long a UTF-8 text is in EUC-KR, the encoding SMS and LMS limits count in.

    Sizes are measured with iconv (UTF-8 → EUC-KR); a character with no EUC-KR form (emoji,
    Hangul outside KS X 1001 such as 똠) is named in the error. One converter per thread
    (iconv_t is not thread-safe), closed when the thread ends.  */

#ifndef MP_EUCKR_H_INCLUDED
#define MP_EUCKR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  Sets up the per-thread converters. Call once before any thread measures.  */
void mp_euckr_init (void);

/*  Returns the length in EUC-KR of the UTF-8 text, -1 when a character has no EUC-KR form
    (*bad = its byte offset), or -2 when iconv is unusable.  */
long mp_euckr_len (const char *text, size_t len, size_t *bad);

/*  Checks that the field called name (len bytes of UTF-8 at text) fits limit bytes of EUC-KR
    on channel. Returns true, or false with the reason in why (why_size bytes), e.g.
    "body: character U+1F600 at byte 6 has no EUC-KR form".  */
bool mp_euckr_fits (const char *name, const char *text, size_t len, long limit, const char *channel,
                    char *why, size_t why_size);

#endif
