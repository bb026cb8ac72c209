/*  bf_text — UTF-8 text that comes from outside: validate it, and make a
    bounded, printable copy that never cuts a character.

    Every place that puts outside text (a command argument, a verb, a key
    name, a provider's reason) into a log line, an error reply or a
    database row goes through bf_text_clip: a printf precision such as
    "%.40s" cuts bytes, and half a character then makes the row invalid
    UTF-8 (PostgreSQL refuses it with SQLSTATE 22021) and the log line
    unreadable. Pure functions; thread-safe.  */

#ifndef BF_TEXT_H_INCLUDED
#define BF_TEXT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  Length (1..4) of the well-formed UTF-8 sequence at p, or 0 when the
    bytes at p are not one: overlong forms, surrogates, code points above
    U+10FFFF and sequences cut by avail count as malformed.  */
size_t bf_text_utf8_len (const char *p, size_t avail);

/*  True when the len bytes at text are well-formed UTF-8 (NUL bytes are
    well-formed; callers that need C strings check for them).  */
bool bf_text_utf8_valid (const char *text, size_t len);

/*  The longest prefix of the len bytes at text that is at most max bytes
    long and does not end inside a well-formed character. Malformed bytes
    count as one-byte units.  */
size_t bf_text_utf8_prefix (const char *text, size_t len, size_t max);

/*  Writes into out (outsize > 0) a copy of text (NULL reads as "") that is
    well-formed, printable UTF-8: malformed bytes and control characters
    (C0, DEL, C1) become U+FFFD. When the copy of the text would exceed
    max_bytes, it is cut on a character boundary to make room for a
    trailing U+2026 ("…"), so the result is at most max_bytes long (and
    always shorter than outsize). Returns out, for use as a "%s"
    argument.  */
char *bf_text_clip (char *out, size_t outsize, const char *text, size_t max_bytes);

/*  Convenience buffer for bf_text_clip: room for 64 characters of
    outside text and the ellipsis.  */
#define BF_TEXT_CLIP_SHORT 80
#define BF_TEXT_CLIP_LONG  260

/*  bf_text_clip into a buffer of BF_TEXT_CLIP_LONG bytes that lives until
    the end of the enclosing block (a compound literal), for a "%s"
    argument of one log or error line: bf_warn ("... '%s'", BF_TEXT_SHOW
    (id, 64)). max_bytes is capped at BF_TEXT_CLIP_LONG - 1.  */
#define BF_TEXT_SHOW(text, max_bytes)                                                           \
    bf_text_clip ((char[BF_TEXT_CLIP_LONG]){ 0 }, BF_TEXT_CLIP_LONG, (text), (max_bytes))

#endif
