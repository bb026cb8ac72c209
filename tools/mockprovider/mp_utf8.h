/*  mp_utf8 — reading and writing single UTF-8 characters.

    The mock's own reading of UTF-8 (it shares no code with billflow): the JSON parser checks
    and writes characters with it, the EUC-KR check names the character it cannot convert.
    Pure functions; thread-safe.  */

#ifndef MP_UTF8_H_INCLUDED
#define MP_UTF8_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  Length (1..4) of the well-formed UTF-8 sequence at p (at most n bytes), 0 when it is not
    one (overlong forms, surrogates and code points above U+10FFFF are not).  */
size_t mp_utf8_len (const unsigned char *p, size_t n);

/*  The code point of the sequence at p (at most n bytes), U+FFFD when it is not well-formed.  */
uint32_t mp_utf8_decode (const unsigned char *p, size_t n);

/*  Writes cp (at most U+10FFFF) as UTF-8 into out, which has room for 4 bytes. Returns the
    bytes written.  */
size_t mp_utf8_put (char *out, uint32_t cp);

#endif
