/*  bf_text — UTF-8 validation and bounded printable copies (see bf_text.h).  */

#include <string.h>

#include "bf_text.h"

static const char s_replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
static const char s_ellipsis[] = "\xE2\x80\xA6";    /* U+2026 */

size_t
bf_text_utf8_len (const char *text, size_t avail)
{
    const unsigned char *p = (const unsigned char *)text;
    if (avail == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
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
