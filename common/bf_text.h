/*  bf_text — the one home of text primitives: UTF-8 validate, decode
    (whole or byte by byte) and cut on a character boundary; a bounded,
    printable copy of outside text; a growable buffer with UTF-8 and base64
    (libsodium) appenders; a bounded writer into the caller's array.

    Every place that puts outside text (a command argument, a verb, a key
    name, a provider's reason) into a log line, an error reply or a
    database row goes through bf_text_clip: a printf precision such as
    "%.40s" cuts bytes, and half a character then makes the row invalid
    UTF-8 (PostgreSQL refuses it with SQLSTATE 22021) and the log line
    unreadable. The UTF-8 and clip functions are pure and thread-safe; a
    buffer or a writer belongs to one thread. No module keeps a copy of
    any of these (common/README.md).  */

#ifndef BF_TEXT_H_INCLUDED
#define BF_TEXT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Length (1..4) of the well-formed UTF-8 sequence at p, or 0 when the
    bytes at p are not one: overlong forms, surrogates, code points above
    U+10FFFF and sequences cut by avail count as malformed.  */
size_t bf_text_utf8_len (const char *p, size_t avail);

/*  A UTF-8 check fed one byte at a time, for input that arrives in
    pieces (a CSV reader's blocks). Zero-initialise it ({ 0 }): need is
    the number of continuation bytes still due (0 between characters), lo
    and hi the range the next one must fall in.  */
typedef struct {
    unsigned char need, lo, hi;
} bf_text_utf8_state_t;

/*  Feeds byte to state under the rules of bf_text_utf8_len. Returns 0
    when the byte may come next (state advanced), or -1 when it cannot (a
    continuation byte where none is due, a lead byte C0, C1 or F5..FF, an
    overlong form, a surrogate, above U+10FFFF, or any other byte where a
    continuation byte is due); state is then unchanged. At the end of the
    input, state->need > 0 means a character was cut. Inline because a
    reader calls it for every non-ASCII byte.  */
static inline int
bf_text_utf8_step (bf_text_utf8_state_t *state, unsigned char byte)
{
    if (state->need > 0) {
        if (byte < state->lo || byte > state->hi)
            return -1;
        state->need--;
        state->lo = 0x80;
        state->hi = 0xBF;
        return 0;
    }
    if (byte < 0x80)
        return 0;
    unsigned char need, lo = 0x80, hi = 0xBF;
    if (byte >= 0xC2 && byte <= 0xDF)
        need = 1;
    else if (byte >= 0xE0 && byte <= 0xEF) {
        need = 2;
        if (byte == 0xE0)
            lo = 0xA0; /* no overlong 3-byte forms */
        else if (byte == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (byte >= 0xF0 && byte <= 0xF4) {
        need = 3;
        if (byte == 0xF0)
            lo = 0x90; /* no overlong 4-byte forms */
        else if (byte == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return -1; /* continuation byte, C0, C1, F5..FF */
    state->need = need;
    state->lo = lo;
    state->hi = hi;
    return 0;
}

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

//  Like bf_text_buf_free, for a buffer that held a secret: zeroes the
//  bytes first (sodium_memzero, which the compiler cannot drop). Copies a
//  realloc left behind while the buffer grew are not reached: reserve the
//  room first when that matters.
void bf_text_buf_wipe (bf_text_buf_t *self);

//  ---------------------------------------------------------------------------
//  A bounded writer into the caller's array, for text that must not
//  allocate (a log line) or that fails as a whole when it does not fit (a
//  rendered notice). Initialise it with BF_TEXT_OUT (data, size). It never
//  writes past data[size - 1] and keeps data NUL-terminated (when size >
//  0); need counts every byte an add asked for, so need > len tells the
//  text was cut. data may be NULL with size 0: then only need counts (a
//  dry run). Not thread-safe: one writer, one thread.

typedef struct {
    char *data;
    size_t size;
    size_t len;  /* bytes written, without the NUL */
    size_t need; /* bytes asked for, without the NUL */
} bf_text_out_t;

#define BF_TEXT_OUT(data, size) ((bf_text_out_t){ (data), (size), 0, 0 })

//  Appends the len bytes at bytes, or as many of them as fit (a cut may
//  fall inside a character: callers that show a cut text check need).
void bf_text_out_add (bf_text_out_t *self, const void *bytes, size_t len);

//  Appends a C string the same way.
void bf_text_out_str (bf_text_out_t *self, const char *text);

//  True when every byte asked for was written.
bool bf_text_out_fits (const bf_text_out_t *self);

#endif
