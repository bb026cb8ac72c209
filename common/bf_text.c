/*  bf_text — UTF-8 validation and decoding, bounded printable copies, the
    growable buffer and the bounded writer (see bf_text.h).  */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "bf_text.h"

static const char s_replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
static const char s_ellipsis[] = "\xE2\x80\xA6";    /* U+2026 */

size_t
bf_text_utf8_len (const char *text, size_t avail)
{
    const unsigned char *p = (const unsigned char *)text;
    if (avail == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    //  One rule for whole strings and byte streams: bf_text_utf8_step.
    bf_text_utf8_state_t state = { 0 };
    if (bf_text_utf8_step (&state, p[0]))
        return 0;
    size_t need = (size_t)state.need + 1;
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++)
        if (bf_text_utf8_step (&state, p[i]))
            return 0;
    return need;
}

size_t
bf_text_utf8_decode (const char *text, size_t avail, uint32_t *cp)
{
    size_t n = bf_text_utf8_len (text, avail);
    if (n == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)text;
    static const unsigned char lead_mask[5] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
    uint32_t value = p[0] & lead_mask[n];
    for (size_t i = 1; i < n; i++)
        value = (value << 6) | (p[i] & 0x3F);
    *cp = value;
    return n;
}

bool
bf_text_utf8_valid (const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = bf_text_utf8_len (text + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t
bf_text_utf8_prefix (const char *text, size_t len, size_t max)
{
    size_t i = 0;
    while (i < len) {
        size_t n = bf_text_utf8_len (text + i, len - i);
        if (n == 0)
            n = 1;
        if (i + n > max)
            break;
        i += n;
    }
    return i;
}

/*  True for the code point of the n-byte sequence at p being a control
    character: C0, DEL or C1 (U+0080..U+009F, encoded C2 80..C2 9F).  */
static bool
s_is_control (const unsigned char *p, size_t n)
{
    if (n == 1)
        return p[0] < 0x20 || p[0] == 0x7F;
    return n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
}

char *
bf_text_clip (char *out, size_t outsize, const char *text, size_t max_bytes)
{
    if (!out || outsize == 0)
        return out;
    if (!text)
        text = "";
    if (max_bytes > outsize - 1)
        max_bytes = outsize - 1;
    /*  Room kept for the ellipsis once we know the copy will not fit.  */
    size_t room = max_bytes >= sizeof s_ellipsis - 1 ? max_bytes - (sizeof s_ellipsis - 1) : 0;
    size_t len = strlen (text), used = 0, i = 0;
    bool cut = false;
    size_t at_room = 0; /* bytes written when the output first passed room */
    bool marked = false;
    while (i < len) {
        const unsigned char *p = (const unsigned char *)text + i;
        size_t n = bf_text_utf8_len (text + i, len - i);
        const char *put = text + i;
        size_t put_len = n;
        if (n == 0 || s_is_control (p, n)) {
            put = s_replacement;
            put_len = sizeof s_replacement - 1;
            if (n == 0)
                n = 1;
        }
        if (!marked && used + put_len > room) {
            at_room = used;
            marked = true;
        }
        if (used + put_len > max_bytes) {
            cut = true;
            break;
        }
        memcpy (out + used, put, put_len);
        used += put_len;
        i += n;
    }
    if (cut) {
        used = at_room;
        if (max_bytes >= sizeof s_ellipsis - 1) {
            memcpy (out + used, s_ellipsis, sizeof s_ellipsis - 1);
            used += sizeof s_ellipsis - 1;
        }
    }
    out[used] = 0;
    return out;
}

//  ---------------------------------------------------------------------------
//  Growable buffer

int
bf_text_buf_reserve (bf_text_buf_t *self, size_t more)
{
    if (more > SIZE_MAX / 2 - self->len - 1)
        return -1;
    if (self->len + more + 1 <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->len + more + 1)
        cap *= 2;
    char *data = realloc (self->data, cap);
    if (!data)
        return -1;
    self->data = data;
    self->cap = cap;
    return 0;
}

int
bf_text_buf_add (bf_text_buf_t *self, const void *data, size_t len)
{
    if (bf_text_buf_reserve (self, len))
        return -1;
    if (len)
        memcpy (self->data + self->len, data, len);
    self->len += len;
    self->data[self->len] = '\0';
    return 0;
}

int
bf_text_buf_str (bf_text_buf_t *self, const char *text)
{
    return bf_text_buf_add (self, text, strlen (text));
}

int
bf_text_buf_fmt (bf_text_buf_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int need = vsnprintf (NULL, 0, format, args);
    va_end (args);
    if (need < 0 || bf_text_buf_reserve (self, (size_t)need))
        return -1;
    va_start (args, format);
    vsnprintf (self->data + self->len, (size_t)need + 1, format, args);
    va_end (args);
    self->len += (size_t)need;
    return 0;
}

int
bf_text_buf_utf8 (bf_text_buf_t *self, uint32_t cp)
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return bf_text_buf_add (self, s_replacement, sizeof s_replacement - 1);
    unsigned char out[4];
    size_t len;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        len = 1;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 4;
    }
    return bf_text_buf_add (self, out, len);
}

//  57 input bytes (a multiple of 3) make one 76-character line, so the
//  lines' concatenation is the base64 of the whole.
#define S_B64_LINE_IN 57

int
bf_text_buf_base64 (bf_text_buf_t *self, const void *data, size_t len, bool wrap)
{
    const unsigned char *bytes = data;
    size_t start = self->len;
    for (size_t at = 0; at < len; at += S_B64_LINE_IN) {
        size_t take = len - at < S_B64_LINE_IN ? len - at : S_B64_LINE_IN;
        char line[sodium_base64_ENCODED_LEN (S_B64_LINE_IN, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64 (line, sizeof line, bytes + at, take, sodium_base64_VARIANT_ORIGINAL);
        if (bf_text_buf_str (self, line) || (wrap && bf_text_buf_add (self, "\r\n", 2))) {
            self->len = start;
            if (self->data)
                self->data[start] = '\0';
            return -1;
        }
    }
    return 0;
}

void
bf_text_buf_reset (bf_text_buf_t *self)
{
    self->len = 0;
    if (self->data)
        self->data[0] = '\0';
}

void
bf_text_buf_free (bf_text_buf_t *self)
{
    free (self->data);
    self->data = NULL;
    self->len = self->cap = 0;
}

void
bf_text_buf_wipe (bf_text_buf_t *self)
{
    if (self->data)
        sodium_memzero (self->data, self->cap);
    bf_text_buf_free (self);
}

//  ---------------------------------------------------------------------------
//  Bounded writer

void
bf_text_out_add (bf_text_out_t *self, const void *bytes, size_t len)
{
    self->need += len;
    if (self->size == 0)
        return;
    size_t room = self->size - 1 - self->len;
    size_t take = len < room ? len : room;
    if (take)
        memcpy (self->data + self->len, bytes, take);
    self->len += take;
    self->data[self->len] = '\0';
}

void
bf_text_out_str (bf_text_out_t *self, const char *text)
{
    bf_text_out_add (self, text, strlen (text));
}

bool
bf_text_out_fits (const bf_text_out_t *self)
{
    return self->need == self->len;
}
