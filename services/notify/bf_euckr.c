/*  bf_euckr — UTF-8 text counted and fitted in EUC-KR bytes (see
    bf_euckr.h).

    A character is 1 byte when ASCII and 2 bytes when EUC-KR (KS X 1001)
    can encode it; the unit test checks that against iconv for every code
    point of the BMP. C1 controls (U+0080..U+009F), which glibc passes
    through as single bytes, count as unencodable. Which characters cannot
    be encoded is iconv's answer: the remainder of the text is converted
    in one call, which stops at the first such character; only then does
    the walk call iconv again, so a whole notice costs a call or two.  */

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "bf_euckr.h"
#include "bf_text.h"

#define S_ELLIPSIS "\xe2\x80\xa6" /* U+2026 "…": 3 bytes UTF-8, 2 bytes EUC-KR */

/*  A walk over UTF-8 text, one character at a time, with each character's
    EUC-KR size. bad is the offset of the next character EUC-KR cannot
    encode (len when there is none), found by iconv.  */
typedef struct {
    iconv_t cd;
    const char *text;
    size_t len;
    size_t pos;
    size_t bad;
} s_euckr_t;

/*  Offset of the first character at or after from that iconv cannot
    convert (or that is not UTF-8), or len.  */
static size_t
s_euckr_find_bad (s_euckr_t *self, size_t from)
{
    char *in = (char *)self->text + from;
    size_t inleft = self->len - from;
    while (inleft > 0) {
        char buf[512];
        char *outp = buf;
        size_t outleft = sizeof buf;
        if (iconv (self->cd, &in, &inleft, &outp, &outleft) != (size_t)-1)
            break;
        if (errno != E2BIG) {
            iconv (self->cd, NULL, NULL, NULL, NULL);
            return (size_t)(in - self->text);
        }
    }
    return self->len;
}

static int
s_euckr_open (s_euckr_t *self, const char *text)
{
    self->cd = iconv_open ("EUC-KR", "UTF-8");
    if (self->cd == (iconv_t)-1)
        return -1;
    self->text = text;
    self->len = strlen (text);
    self->pos = 0;
    self->bad = s_euckr_find_bad (self, 0);
    return 0;
}

static void
s_euckr_close (s_euckr_t *self)
{
    iconv_close (self->cd);
}

/*  Next character: 1 with its UTF-8 length in *n, its EUC-KR size in
    *bytes and *unencodable set when it goes as '?'; 0 at the end; -1 when
    the text is not valid UTF-8.  */
static int
s_euckr_next (s_euckr_t *self, size_t *n, size_t *bytes, bool *unencodable)
{
    if (self->pos >= self->len)
        return 0;
    uint32_t cp;
    *n = bf_text_utf8_decode (self->text + self->pos, self->len - self->pos, &cp);
    if (*n == 0)
        return -1;
    //  glibc passes C1 controls through as single bytes; no gateway shows
    //  them as text, so they go as '?' like any other unencodable character.
    *unencodable = self->pos == self->bad || (cp >= 0x80 && cp <= 0x9F);
    *bytes = (*unencodable || cp < 0x80) ? 1 : 2;
    self->pos += *n;
    if (self->pos - *n == self->bad)
        self->bad = s_euckr_find_bad (self, self->pos);
    return 1;
}

long
bf_euckr_bytes (const char *utf8, size_t *replaced)
{
    if (replaced)
        *replaced = 0;
    if (!utf8)
        return -1;
    s_euckr_t walk;
    if (s_euckr_open (&walk, utf8) != 0)
        return -1;
    size_t total = 0, bad = 0, n, bytes;
    bool unencodable;
    int rc;
    while ((rc = s_euckr_next (&walk, &n, &bytes, &unencodable)) == 1) {
        total += bytes;
        bad += unencodable;
    }
    s_euckr_close (&walk);
    if (rc < 0)
        return -1;
    if (replaced)
        *replaced = bad;
    return (long)total;
}

int
bf_euckr_fit (const char *utf8, size_t max_bytes, bool ellipsis, char *out, size_t outsize,
              bf_euckr_fit_t *fit)
{
    if (fit)
        *fit = (bf_euckr_fit_t){ 0 };
    if (!out || outsize == 0)
        return -1;
    out[0] = 0;
    if (!utf8)
        return -1;
    s_euckr_t walk;
    if (s_euckr_open (&walk, utf8) != 0)
        return -1;

    //  Copies characters while they fit max_bytes, remembering the state
    //  after the last character that leaves room for the ellipsis; a
    //  character that does not fit ends the walk and the text is cut. Once
    //  that state is settled, the characters after it are only needed when
    //  the text is not cut, so running out of room there is not yet an
    //  error.
    bool mark = ellipsis && max_bytes >= 2;
    size_t mark_budget = mark ? max_bytes - 2 : max_bytes;
    size_t written = 0, used = 0, replaced = 0;
    size_t mark_written = 0, mark_used = 0, mark_replaced = 0;
    bool cut = false, settled = false, overflow = false;
    size_t n, bytes;
    bool unencodable;
    int rc;
    while ((rc = s_euckr_next (&walk, &n, &bytes, &unencodable)) == 1) {
        if (used + bytes > max_bytes) {
            cut = true;
            break;
        }
        settled = settled || used + bytes > mark_budget;
        const char *src = unencodable ? "?" : utf8 + walk.pos - n;
        size_t srclen = unencodable ? 1 : n;
        overflow = overflow || written + srclen + 1 > outsize;
        if (overflow && !settled) {
            rc = -1;
            break;
        }
        if (!overflow) {
            memcpy (out + written, src, srclen);
            written += srclen;
        }
        used += bytes;
        replaced += unencodable;
        if (!settled) {
            mark_written = written;
            mark_used = used;
            mark_replaced = replaced;
        }
    }
    s_euckr_close (&walk);
    if (rc < 0 || (overflow && !(cut && mark))) {
        out[0] = 0;
        return -1;
    }
    if (cut && mark) {
        written = mark_written;
        used = mark_used + 2;
        replaced = mark_replaced;
        if (written + strlen (S_ELLIPSIS) + 1 > outsize) {
            out[0] = 0;
            return -1;
        }
        memcpy (out + written, S_ELLIPSIS, strlen (S_ELLIPSIS));
        written += strlen (S_ELLIPSIS);
    }
    out[written] = 0;
    if (fit)
        *fit = (bf_euckr_fit_t){ .bytes = used, .replaced = replaced, .cut = cut };
    return 0;
}

bool
bf_euckr_unencodable (const char *utf8, size_t *at, size_t *len)
{
    if (!utf8)
        return false;
    s_euckr_t walk;
    if (s_euckr_open (&walk, utf8) != 0)
        return false;
    size_t n = 0, bytes;
    bool unencodable = false;
    while (s_euckr_next (&walk, &n, &bytes, &unencodable) == 1 && !unencodable)
        ;
    if (unencodable) {
        *at = walk.pos - n;
        *len = n;
    }
    s_euckr_close (&walk);
    return unencodable;
}
