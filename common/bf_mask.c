/*  bf_mask — masking of contacts and of contacts inside free text (see
    bf_mask.h).  */

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "bf_mask.h"
#include "bf_text.h"

//  ---------------------------------------------------------------------------
//  One known contact. Both functions decide first whether the whole input has the
//  expected shape and only then copy the few characters they show, so a
//  malformed value is never partly echoed.

static void
s_mask_set (char *out, size_t outsize, const char *text)
{
    if (out && outsize > 0)
        snprintf (out, outsize, "%s", text);
}

static bool
s_is_space (unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

//  Trims ASCII white space: returns start, sets *len.

static const char *
s_trim (const char *text, size_t *len)
{
    size_t n = strlen (text);
    while (n > 0 && s_is_space ((unsigned char)*text)) {
        text++;
        n--;
    }
    while (n > 0 && s_is_space ((unsigned char)text[n - 1]))
        n--;
    *len = n;
    return text;
}

char *
bf_mask_email (const char *email, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    if (!email) {
        out[0] = 0;
        return out;
    }
    size_t len;
    const char *text = s_trim (email, &len);
    const unsigned char *p = (const unsigned char *)text;

    //  Exactly one '@', valid UTF-8, no control characters or spaces inside.
    size_t at = len;
    size_t ats = 0;
    for (size_t i = 0; i < len;) {
        if (p[i] <= 0x20 || p[i] == 0x7F) {
            s_mask_set (out, outsize, "***");
            return out;
        }
        if (p[i] == '@') {
            ats++;
            at = i;
        }
        size_t n = bf_text_utf8_len ((const char *)p + i, len - i);
        if (n == 0) {
            s_mask_set (out, outsize, "***");
            return out;
        }
        i += n;
    }
    if (ats != 1 || at == 0 || at == len - 1) {
        s_mask_set (out, outsize, "***");
        return out;
    }
    //  First character of the local part (one UTF-8 sequence) + "***@" + domain.
    size_t first = bf_text_utf8_len ((const char *)p, at);
    size_t domain_len = len - at - 1;
    size_t need = first + 4 + domain_len + 1;
    if (first == 0 || need > outsize) {
        s_mask_set (out, outsize, "***");
        return out;
    }
    memcpy (out, text, first);
    memcpy (out + first, "***@", 4);
    memcpy (out + first + 4, text + at + 1, domain_len);
    out[need - 1] = 0;
    return out;
}

char *
bf_mask_phone (const char *phone, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    if (!phone) {
        out[0] = 0;
        return out;
    }
    size_t len;
    const char *text = s_trim (phone, &len);

    //  Accepted: 10 or 11 digits starting with 0, either bare or grouped
    //  3-3-4 / 3-4-4 with dashes. Anything else is "***".
    char digits[12];
    size_t ndigits = 0;
    size_t group[3] = { 0, 0, 0 };
    size_t groups = 1;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            if (ndigits == 11) {
                s_mask_set (out, outsize, "***");
                return out;
            }
            digits[ndigits++] = c;
            group[groups - 1]++;
        } else if (c == '-' && groups < 3 && group[groups - 1] > 0)
            groups++;
        else {
            s_mask_set (out, outsize, "***");
            return out;
        }
    }
    bool shape_ok;
    if (groups == 1)
        shape_ok = ndigits == 10 || ndigits == 11;
    else
        shape_ok
            = groups == 3 && group[0] == 3 && (group[1] == 3 || group[1] == 4) && group[2] == 4;
    if (!shape_ok || digits[0] != '0') {
        s_mask_set (out, outsize, "***");
        return out;
    }
    char masked[16];
    snprintf (masked, sizeof masked, "%.3s-****-%.4s", digits, digits + ndigits - 4);
    if (strlen (masked) + 1 > outsize)
        s_mask_set (out, outsize, "***");
    else
        s_mask_set (out, outsize, masked);
    return out;
}

char *
bf_mask_token (const char *token, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    size_t len = token ? strlen (token) : 0;
    bool printable = len > 12;
    for (size_t i = 0; printable && i < len; i++)
        printable = token[i] > 0x20 && token[i] < 0x7F;
    /*  Six ASCII characters and "…" (3 bytes).  */
    if (printable && outsize > 9)
        snprintf (out, outsize, "%.6s\xE2\x80\xA6", token);
    else
        s_mask_set (out, outsize, "***");
    return out;
}

//  ---------------------------------------------------------------------------
//  Free text

typedef struct {
    char *out;
    size_t size, used;
    bool full; /* something did not fit: nothing more is written */
} s_sink_t;

/*  Appends len bytes whole, or marks the sink full.  */
static void
s_put (s_sink_t *sink, const char *bytes, size_t len)
{
    if (sink->full || sink->used + len + 1 > sink->size) {
        sink->full = true;
        return;
    }
    memcpy (sink->out + sink->used, bytes, len);
    sink->used += len;
}

static bool
s_is_digit (unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
s_is_word (unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
s_is_local (unsigned char c)
{
    return s_is_word (c) || c >= 0x80 || c == '.' || c == '%' || c == '+' || c == '-' || c == '\'';
}

static bool
s_is_domain (unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
           || c == '.' || c == '-';
}

static bool
s_is_token (unsigned char c)
{
    return s_is_word (c) || c == ':' || c == '.' || c == '-';
}

static bool
s_is_phone_sep (unsigned char c)
{
    return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')';
}

/*  End of a quoted local part ("john doe"@..., RFC 5321 4.1.2) that
    starts with the quote at i: the offset after its closing quote, or i
    when there is none within 64 bytes (or a control byte comes first).  */
static size_t
s_quoted_local (const unsigned char *p, size_t len, size_t i)
{
    for (size_t j = i + 1; j < len && j - i <= 64 && p[j] >= 0x20 && p[j] != 0x7F; j++) {
        if (p[j] == '\\' && j + 1 < len)
            j++;
        else if (p[j] == '"')
            return j + 1;
    }
    return i;
}

/*  An email address starting at i (a word start, or a quoted local part):
    sets *end past it.  */
static bool
s_email_at (const unsigned char *p, size_t len, size_t i, size_t *end)
{
    size_t j = i;
    if (p[i] == '"')
        j = s_quoted_local (p, len, i);
    else
        while (j < len && s_is_local (p[j]))
            j++;
    if (j == i || j >= len || p[j] != '@')
        return false;
    size_t k = j + 1;
    while (k < len && s_is_domain (p[k]))
        k++;
    while (k > j + 1 && (p[k - 1] == '.' || p[k - 1] == '-'))
        k--;
    if (k == j + 1)
        return false;
    *end = k;
    return true;
}

#define S_MAX_GROUPS 16

typedef struct {
    size_t start[S_MAX_GROUPS], end[S_MAX_GROUPS]; /* byte offsets of each digit group */
    size_t n;
    bool plus;   /* a '+' before the first group */
    size_t from; /* offset of the candidate's first byte ('+' or '(' included) */
} s_groups_t;

/*  Whether the digits N (national form, len n) are a Korean number.  */
static bool
s_korean (const char *n, size_t len)
{
    if (len < 9 || len > 11 || n[0] != '0' || n[1] == '0')
        return false;
    if (n[1] == '1')
        return len >= 10 && strchr ("016789", n[2]) != NULL;
    if (n[1] == '2')
        return len <= 10;
    return len >= 10;
}

/*  Checks groups s..e of g (in text p) as one phone number; on success
    writes its masked form into masked.  */
static bool
s_phone (const unsigned char *p, const s_groups_t *g, size_t s, size_t e, char *masked,
         size_t masksize)
{
    char d[64];
    size_t n = 0;
    size_t count = e - s + 1;
    bool small_groups = true;
    for (size_t k = s; k <= e; k++) {
        size_t glen = g->end[k] - g->start[k];
        if (n + glen >= sizeof d)
            return false;
        memcpy (d + n, p + g->start[k], glen);
        n += glen;
        if (glen > 4)
            small_groups = false;
    }
    d[n] = 0;
    if (n < 9)
        return false;
    size_t last = g->end[e] - g->start[e];
    bool plus = s == 0 && g->plus;
    /*  National form of a Korean number, if it is one.  */
    char national[sizeof d + 2];
    const char *rest = NULL;
    if (plus && strncmp (d, "82", 2) == 0)
        rest = d + 2;
    else if (!plus && strncmp (d, "0082", 4) == 0)
        rest = d + 4;
    else if (!plus && strncmp (d, "82", 2) == 0 && n >= 11)
        rest = d + 2;
    if (rest)
        snprintf (national, sizeof national, "%s%s", *rest == '0' ? "" : "0", rest);
    else if (!plus && d[0] == '0')
        snprintf (national, sizeof national, "%s", d);
    else if (!plus && count >= 2 && d[0] == '1')
        snprintf (national, sizeof national, "0%s", d);
    else
        national[0] = 0;
    bool shape = count == 1 || (small_groups && last == 4) || (count == 2 && last >= 7);
    if (national[0] && shape && s_korean (national, strlen (national))) {
        size_t nl = strlen (national);
        snprintf (masked, masksize, "%.*s-****-%s", national[1] == '2' ? 2 : 3, national,
                  national + nl - 4);
        return true;
    }
    /*  Another country's number: after a '+' only.  */
    if (plus && !rest && n <= 15 && (count == 1 || small_groups)) {
        snprintf (masked, masksize, "+%.2s-****-%s", d, d + n - 4);
        return true;
    }
    return false;
}

/*  Reads the digit groups of a phone-number candidate at i (a word start
    holding a digit, '+' or '(').  */
static bool
s_groups_at (const unsigned char *p, size_t len, size_t i, s_groups_t *g)
{
    memset (g, 0, sizeof *g);
    g->from = i;
    size_t j = i;
    /*  Leading "(", "+", "(+", "+(" in any order, at most two bytes.  */
    for (int k = 0; k < 2 && j < len && (p[j] == '+' || p[j] == '('); k++) {
        if (p[j] == '+')
            g->plus = true;
        j++;
    }
    if (j >= len || !s_is_digit (p[j]))
        return false;
    for (;;) {
        if (g->n == S_MAX_GROUPS)
            break;
        g->start[g->n] = j;
        while (j < len && s_is_digit (p[j]))
            j++;
        g->end[g->n++] = j;
        size_t k = j;
        while (k < len && k - j < 3 && s_is_phone_sep (p[k]))
            k++;
        if (k == j || k >= len || !s_is_digit (p[k]))
            break;
        j = k;
    }
    return true;
}

/*  Appends the masked form of the phone numbers in the candidate g, and
    the digits of groups that are none, as they are. Returns the offset
    after the candidate.  */
static size_t
s_put_phones (s_sink_t *sink, const unsigned char *p, size_t len, const s_groups_t *g)
{
    size_t last_end = g->end[g->n - 1];
    /*  A candidate glued to a letter at its end is part of a word.  */
    bool tail_ok = last_end >= len || !s_is_word (p[last_end]);
    size_t copied = g->from;
    size_t s = 0;
    while (s < g->n) {
        size_t found = SIZE_MAX;
        char masked[32];
        for (size_t e = g->n; e-- > s;) {
            if (e == g->n - 1 && !tail_ok)
                continue;
            if (s_phone (p, g, s, e, masked, sizeof masked)) {
                found = e;
                break;
            }
        }
        if (found == SIZE_MAX) {
            s++;
            continue;
        }
        size_t from = s == 0 ? g->from : g->start[s];
        /*  A leading '(' belongs to the number only when its ')' does.  */
        if (s == 0 && p[from] == '(' && !memchr (p + from, ')', g->end[found] - from))
            from++;
        s_put (sink, (const char *)p + copied, from - copied);
        s_put (sink, masked, strlen (masked));
        copied = g->end[found];
        s = found + 1;
    }
    s_put (sink, (const char *)p + copied, last_end - copied);
    return last_end;
}

/*  BF_MASK_ONE_LINE's cleaning into clean (room for len bytes: it never
    grows the text). Returns the cleaned length.  */
static size_t
s_one_line (const unsigned char *p, size_t len, size_t limit, size_t *clean_limit, char *clean)
{
    size_t used = 0;
    bool limit_seen = false;
    for (size_t i = 0; i < len;) {
        size_t step = bf_text_utf8_len ((const char *)p + i, len - i);
        if (!limit_seen && i + (step ? step : 1) > limit) {
            *clean_limit = used;
            limit_seen = true;
        }
        if (step == 0) {
            clean[used++] = '?';
            i++;
        } else if (step == 1 && (p[i] < 0x20 || p[i] == 0x7F || p[i] == ' ')) {
            if (used > 0 && clean[used - 1] != ' ')
                clean[used++] = ' ';
            i++;
        } else {
            memcpy (clean + used, p + i, step);
            used += step;
            i += step;
        }
    }
    while (used > 0 && clean[used - 1] == ' ')
        used--;
    if (!limit_seen || *clean_limit > used)
        *clean_limit = used;
    return used;
}

static size_t s_mask (const char *text, size_t len, size_t limit, const char *contact,
                      unsigned flags, char *out, size_t outsize, bool *left_out);

static size_t
s_mask_one_line (const char *text, size_t len, size_t limit, const char *contact, unsigned flags,
                 char *out, size_t outsize)
{
    char stack[1024];
    char *clean = len <= sizeof stack ? stack : malloc (len);
    if (!clean) {
        s_mask_set (out, outsize, "(unavailable)");
        return strlen (out);
    }
    size_t clean_limit = 0;
    bool left_out = false;
    size_t used = s_one_line ((const unsigned char *)text, len, limit, &clean_limit, clean);
    while (clean_limit > 0 && clean[clean_limit - 1] == ' ')
        clean_limit--; /* a line cut in a space run ends trimmed too */
    size_t written = s_mask (clean, used, clean_limit, contact, flags & ~BF_MASK_ONE_LINE, out,
                             outsize, &left_out);
    if (left_out)
        while (written > 0 && out[written - 1] == ' ')
            out[--written] = '\0'; /* nor before what was left out */
    if (clean != stack)
        free (clean);
    return written;
}

char *
bf_mask_text (const char *text, size_t len, const char *contact, unsigned flags, char *out,
              size_t outsize)
{
    bf_mask_text_n (text, len, contact, flags, out, outsize);
    return out;
}

size_t
bf_mask_text_n (const char *text, size_t len, const char *contact, unsigned flags, char *out,
                size_t outsize)
{
    return s_mask (text, len, len, contact, flags, out, outsize, NULL);
}

size_t
bf_mask_text_within (const char *text, size_t len, size_t limit, const char *contact,
                     unsigned flags, char *out, size_t outsize)
{
    return s_mask (text, len, limit < len ? limit : len, contact, flags, out, outsize, NULL);
}

/*  The masking of bf_mask_text_n, of the text before limit only: a unit
    (a character, a masked form's source, a word) that reaches past limit
    is left out whole, so a contact cut by limit is never shown in part.  */
static size_t
s_mask (const char *text, size_t len, size_t limit, const char *contact, unsigned flags, char *out,
        size_t outsize, bool *left_out)
{
    if (!out || outsize == 0)
        return 0;
    if ((flags & BF_MASK_ONE_LINE) && text && len > 0)
        return s_mask_one_line (text, len, limit, contact, flags, out, outsize);
    s_sink_t sink = { .out = out, .size = outsize };
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    if (!text)
        len = 0;
    size_t clen = contact ? strlen (contact) : 0;
    size_t i = 0;
    while (i < limit && !sink.full) {
        bool word_start = i == 0 || !s_is_word (p[i - 1]);
        size_t end;
        if (clen > 0 && len - i >= clen && memcmp (p + i, contact, clen) == 0) {
            if (i + clen > limit)
                break;
            s_put (&sink, "***", 3);
            i += clen;
            continue;
        }
        if ((i == 0 || !s_is_local (p[i - 1])) && (s_is_local (p[i]) || p[i] == '"')
            && s_email_at (p, len, i, &end)) {
            if (end > limit)
                break;
            char token[256], masked[BF_MASK_MAX];
            if (end - i < sizeof token) {
                memcpy (token, p + i, end - i);
                token[end - i] = 0;
                bf_mask_email (token, masked, sizeof masked);
            } else
                s_mask_set (masked, sizeof masked, "***");
            s_put (&sink, masked, strlen (masked));
            i = end;
            continue;
        }
        s_groups_t g;
        if (word_start && (s_is_digit (p[i]) || p[i] == '+' || p[i] == '(')
            && s_groups_at (p, len, i, &g)) {
            if (g.end[g.n - 1] > limit)
                break;
            i = s_put_phones (&sink, p, len, &g);
            continue;
        }
        if ((flags & BF_MASK_TOKENS) && (i == 0 || !s_is_token (p[i - 1])) && s_is_token (p[i])) {
            size_t j = i;
            while (j < len && s_is_token (p[j]))
                j++;
            if (j - i >= 24) {
                if (j > limit)
                    break;
                s_put (&sink, (const char *)p + i, 6);
                s_put (&sink, "\xE2\x80\xA6", 3);
                i = j;
                continue;
            }
        }
        /*  One character (or one malformed byte) as it is.  */
        size_t n = bf_text_utf8_len ((const char *)p + i, len - i);
        if (n == 0)
            n = 1;
        if (i + n > limit)
            break;
        s_put (&sink, (const char *)p + i, n);
        i += n;
    }
    if (left_out)
        *left_out = !sink.full && i < len;
    out[sink.used] = 0;
    return sink.used;
}

bool
bf_mask_text_has_contact (const char *text)
{
    if (!text)
        return false;
    size_t len = strlen (text);
    char stack[512];
    char *buf = len * 2 + 64 <= sizeof stack ? stack : malloc (len * 2 + 64);
    if (!buf)
        return true; /* cannot tell: assume the worst */
    bf_mask_text (text, len, NULL, 0, buf, len * 2 + 64);
    bool differs = strcmp (buf, text) != 0;
    if (buf != stack)
        free (buf);
    return differs;
}

bool
bf_mask_is_masked (const char *contact)
{
    return !contact || !*contact || strstr (contact, "***") || !strcmp (contact, "(unavailable)");
}
