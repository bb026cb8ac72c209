/*  bf_text — the one home of text primitives: UTF-8 validate, decode and
    cut on a character boundary; a bounded, printable copy of outside text;
    a growable buffer with UTF-8 and base64 (libsodium) appenders.

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
#include <stdint.h>

/*  Length (1..4) of the well-formed UTF-8 sequence at p, or 0 when the
    bytes at p are not one: overlong forms, surrogates, code points above
    U+10FFFF and sequences cut by avail count as malformed.  */
size_t bf_text_utf8_len (const char *p, size_t avail);

/*  Like bf_text_utf8_len, and stores the sequence's code point in *cp
    when it is well-formed (cp untouched when 0 is returned).  */
size_t bf_text_utf8_decode (const char *p, size_t avail, uint32_t *cp);

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

//  ---------------------------------------------------------------------------
//  A growable byte buffer. Zero-initialise it ({ 0 }); data is always
//  NUL-terminated once anything was added (and NULL before). Every adder
//  returns 0, or -1 when memory ran out, leaving the buffer as it was. Not
//  thread-safe: one buffer, one thread.

typedef struct {
    char *data;
    size_t len, cap;
} bf_text_buf_t;

//  Makes room for more bytes (and the NUL) beyond len.
int bf_text_buf_reserve (bf_text_buf_t *self, size_t more);

//  Appends len bytes (which may hold NULs).
int bf_text_buf_add (bf_text_buf_t *self, const void *data, size_t len);

//  Appends a C string.
int bf_text_buf_str (bf_text_buf_t *self, const char *text);

//  Appends printf output.
int bf_text_buf_fmt (bf_text_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Appends the UTF-8 encoding of code point cp (at most U+10FFFF and not a
//  surrogate; anything else appends U+FFFD).
int bf_text_buf_utf8 (bf_text_buf_t *self, uint32_t cp);

//  Appends the base64 (RFC 4648, with padding) of len bytes at data,
//  encoded by libsodium. With wrap, as MIME wants it (RFC 2045 §6.8): a
//  CRLF after every 76 characters and after the last line.
int bf_text_buf_base64 (bf_text_buf_t *self, const void *data, size_t len, bool wrap);

//  Empties the buffer and keeps its memory.
void bf_text_buf_reset (bf_text_buf_t *self);

//  Frees the memory; the buffer is empty and reusable afterwards.
void bf_text_buf_free (bf_text_buf_t *self);

#endif
