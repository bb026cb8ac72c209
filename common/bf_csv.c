/*  bf_csv — streaming RFC 4180 reader and writer.

    The reader pulls input in 1 MiB blocks (or walks a caller's buffer) and
    decodes one record at a time into a record buffer that grows to fit the
    largest record seen and is reused afterwards: no allocation per field or
    per record in the steady state. Runs of ordinary ASCII bytes are copied
    with one table lookup per byte; only delimiters, quotes, line ends and
    non-ASCII bytes take the slow path, where UTF-8 is validated (shortest
    form, no surrogates, nothing above U+10FFFF).

    Choices the header leaves open, made here:
    - A UTF-8 byte order mark at the very start is skipped; columns on the
      first line count from the byte after it.
    - Columns are 1-based byte offsets into the physical line.
    - A NUL byte anywhere in a field is an error ("NUL byte in field"): the
      caller gets C strings, and a NUL would silently cut a field short.
    - A blank line in the middle of the input is a record with one NULL
      field (so an importer rejects it with a column-count error); a blank
      line directly before the end of input is not a record.
    - After an error the reader skips everything up to and including the
      next physical LF, whether or not it lies inside quotes, and starts
      the next record there. This is the simplest rule that always makes
      progress; an error inside a multi-line quoted field may therefore be
      followed by errors or odd records from the rest of that field.
    - A record is too long when it has more than 1 MiB of raw bytes,
      not counting its line end.
    - bf_csv_error returns "" until the first error, then the message of
      the last error until the next one.  */

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf_csv.h"

#define BF_CSV_BLOCK      (1u << 20) /* file read size */
#define BF_CSV_MAX_RECORD (1u << 20) /* raw bytes per record */
#define BF_CSV_MAX_FIELDS 256
#define BF_CSV_NO_FIELD   SIZE_MAX /* offset of an empty (NULL) field */

/*  Byte classes: bit 1 = copied as is inside an unquoted field, bit 2 =
    copied as is inside a quoted field. Zero (the slow path) for NUL, LF,
    '"' and every non-ASCII byte; CR and ',' are plain only inside quotes.  */
#define S_PLAIN_UNQUOTED 1
#define S_PLAIN_QUOTED   2
static const unsigned char s_class[256] = {
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 3, 3, 2, 3, 3, /* 00 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 10 */
    3, 3, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 3, 3, /* 20 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 30 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 40 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 50 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 60 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 70 */
    /* 80..ff: 0 */
};

/*  Parser states within one record.  */
typedef enum {
    S_FIELD_START, /* at the first byte of a field */
    S_UNQUOTED,    /* inside an unquoted field */
    S_QUOTED,      /* inside a quoted field */
    S_AFTER_QUOTE, /* saw '"' inside a quoted field: end or doubled */
    S_AFTER_CR     /* saw CR outside quotes: LF must follow */
} s_state_t;

struct bf_csv_t {
    FILE *file;               /* NULL for a memory reader */
    unsigned char *block;     /* owned read buffer (file reader) */
    const unsigned char *buf; /* current input: block or caller's memory */
    size_t pos;               /* next byte in buf */
    size_t end;               /* bytes valid in buf */
    long long base;           /* input offset of buf[0] */
    bool eof;                 /* nothing after buf[end] */
    bool started;             /* BOM check done */
    bool resync;              /* skip to the next line before reading */
    bool done;                /* a read error was reported: no more input */
    int read_errno;           /* nonzero when fread failed */

    long line;            /* physical line of buf[pos], 1-based */
    long long line_start; /* input offset of that line's first byte */
    long record_line;     /* line where the last record started */

    char *record; /* decoded fields, each NUL-terminated */
    size_t record_used;
    size_t record_size;
    size_t offsets[BF_CSV_MAX_FIELDS];
    char *fields[BF_CSV_MAX_FIELDS];

    const char *error;
    long error_line;
    long error_column;
    char error_text[96];
};

static bf_csv_t *
s_alloc (void)
{
    bf_csv_t *self = (bf_csv_t *)calloc (1, sizeof (bf_csv_t));
    if (!self)
        return NULL;
    self->record_size = 4096;
    self->record = (char *)malloc (self->record_size);
    if (!self->record) {
        free (self);
        return NULL;
    }
    self->line = 1;
    self->record_line = 1;
    self->error = "";
    return self;
}

/*  Opens path for reading. On failure writes the reason into err (when
    given) and returns NULL.  */
bf_csv_t *
bf_csv_open (const char *path, char *err, size_t errsize)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        if (err && errsize)
            snprintf (err, errsize, "%s: %s", path, strerror (errno));
        return NULL;
    }
    bf_csv_t *self = s_alloc ();
    if (self)
        self->block = (unsigned char *)malloc (BF_CSV_BLOCK);
    if (!self || !self->block) {
        if (err && errsize)
            snprintf (err, errsize, "%s: out of memory", path);
        fclose (file);
        bf_csv_destroy (&self);
        return NULL;
    }
    self->file = file;
    self->buf = self->block;
    return self;
}

/*  Reader over len bytes at data; the caller keeps data alive and
    unchanged while the reader exists. Returns NULL when out of memory.  */
bf_csv_t *
bf_csv_new_mem (const char *data, size_t len)
{
    assert (data || len == 0);
    bf_csv_t *self = s_alloc ();
    if (!self)
        return NULL;
    self->buf = (const unsigned char *)(data ? data : "");
    self->end = len;
    self->eof = true;
    return self;
}

/*  Closes the file (if any) and frees the reader; sets *self_p to NULL.
    Safe to call with *self_p already NULL.  */
void
bf_csv_destroy (bf_csv_t **self_p)
{
    assert (self_p);
    bf_csv_t *self = *self_p;
    if (!self)
        return;
    if (self->file)
        fclose (self->file);
    free (self->block);
    free (self->record);
    free (self);
    *self_p = NULL;
}

/*  Makes buf[pos] readable. Returns false at the end of input (or after a
    read error, which is recorded in read_errno).  */
static bool
s_refill (bf_csv_t *self)
{
    if (self->pos < self->end)
        return true;
    if (self->eof)
        return false;
    self->base += (long long)self->end;
    self->pos = 0;
    self->end = fread (self->block, 1, BF_CSV_BLOCK, self->file);
    if (self->end < BF_CSV_BLOCK) {
        if (ferror (self->file))
            self->read_errno = errno ? errno : EIO;
        self->eof = true;
    }
    return self->end > 0;
}

static inline long
s_column (const bf_csv_t *self, long long at)
{
    return (long)(at - self->line_start + 1);
}

static inline long long
s_offset (const bf_csv_t *self)
{
    return self->base + (long long)self->pos;
}

/*  Called with buf[pos - 1] == '\n' just consumed.  */
static inline void
s_newline (bf_csv_t *self)
{
    self->line++;
    self->line_start = s_offset (self);
}

static int
s_fail (bf_csv_t *self, const char *message, long line, long column)
{
    self->error = message;
    self->error_line = line;
    self->error_column = column;
    self->resync = true;
    return -1;
}

/*  Error at the byte under the cursor (or at the end of input).  */
static int
s_fail_here (bf_csv_t *self, const char *message)
{
    return s_fail (self, message, self->line, s_column (self, s_offset (self)));
}

/*  Skips through the next LF (or to the end of input).  */
static void
s_skip_line (bf_csv_t *self)
{
    self->resync = false;
    while (s_refill (self)) {
        const unsigned char *start = self->buf + self->pos;
        const unsigned char *lf
            = (const unsigned char *)memchr (start, '\n', self->end - self->pos);
        if (lf) {
            self->pos += (size_t)(lf - start) + 1;
            s_newline (self);
            return;
        }
        self->pos = self->end;
    }
}

/*  Room for extra more bytes plus a terminating NUL in the record buffer.  */
static inline int
s_reserve (bf_csv_t *self, size_t extra)
{
    size_t needed = self->record_used + extra + 1;
    if (needed <= self->record_size)
        return 0;
    size_t size = self->record_size;
    while (size < needed)
        size *= 2;
    char *record = (char *)realloc (self->record, size);
    if (!record)
        return -1;
    self->record = record;
    self->record_size = size;
    return 0;
}

/*  Ends the current field (the buffer always has room for its NUL).  */
static inline void
s_end_field (bf_csv_t *self, size_t *nfields, size_t *field_start)
{
    self->offsets[*nfields] = self->record_used == *field_start ? BF_CSV_NO_FIELD : *field_start;
    (*nfields)++;
    self->record[self->record_used++] = '\0';
    *field_start = self->record_used;
}

/*  Feeds one non-delimiter byte to the UTF-8 check: need is the number of
    continuation bytes still due, lo..hi the range the next one must be in.
    Returns -1 when c cannot come next.  */
static inline int
s_utf8_step (int *need, unsigned char *lo, unsigned char *hi, unsigned char c)
{
    if (*need > 0) {
        if (c < *lo || c > *hi)
            return -1;
        (*need)--;
        *lo = 0x80;
        *hi = 0xBF;
        return 0;
    }
    if (c < 0x80)
        return 0;
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        *need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        *need = 2;
        if (c == 0xE0)
            *lo = 0xA0; /* no overlong 3-byte forms */
        else if (c == 0xED)
            *hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        *need = 3;
        if (c == 0xF0)
            *lo = 0x90; /* no overlong 4-byte forms */
        else if (c == 0xF4)
            *hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return -1; /* continuation byte, C0, C1, F5..FF */
    return 0;
}

/*  Copies the run of bytes of class mask starting at pos (stopping before
    the record limit) into the record. Returns the run length, or
    (size_t) -1 when the record buffer cannot grow.  */
static inline size_t
s_copy_run (bf_csv_t *self, unsigned char mask, long long limit)
{
    size_t stop = self->end;
    long long limit_pos = limit - self->base;
    if (limit_pos < (long long)stop)
        stop = limit_pos > (long long)self->pos ? (size_t)limit_pos : self->pos;
    const unsigned char *start = self->buf + self->pos;
    const unsigned char *p = start;
    const unsigned char *last = self->buf + stop;
    while (p + 4 <= last && (s_class[p[0]] & s_class[p[1]] & s_class[p[2]] & s_class[p[3]] & mask))
        p += 4;
    while (p < last && (s_class[*p] & mask))
        p++;
    size_t n = (size_t)(p - start);
    if (n) {
        if (s_reserve (self, n))
            return (size_t)-1;
        memcpy (self->record + self->record_used, start, n);
        self->record_used += n;
        self->pos += n;
    }
    return n;
}

/*  Reads the next record; see bf_csv.h.  */
int
bf_csv_next (bf_csv_t *self, char ***fields, size_t *count)
{
    assert (self);
    assert (fields);
    assert (count);
    *fields = NULL;
    *count = 0;
    if (self->done)
        return 0;
    if (!self->started) {
        self->started = true;
        if (s_refill (self) && self->end - self->pos >= 3
            && memcmp (self->buf + self->pos, "\xEF\xBB\xBF", 3) == 0) {
            self->pos += 3;
            self->line_start = s_offset (self);
        }
    }
    if (self->resync)
        s_skip_line (self);

    s_state_t state = S_FIELD_START;
    size_t nfields = 0;
    size_t field_start = 0;
    bool blank = false; /* the record is an empty line */
    int u8_need = 0;
    unsigned char u8_lo = 0x80, u8_hi = 0xBF;
    long quote_line = 0, quote_column = 0;
    long long cr_at = 0;
    long long limit = s_offset (self) + BF_CSV_MAX_RECORD;
    self->record_used = 0;
    self->record_line = self->line;

    for (;;) {
        if (self->pos == self->end && !s_refill (self))
            goto end_of_input;
        unsigned char c = self->buf[self->pos];

        if (state == S_AFTER_CR) {
            if (c != '\n')
                return s_fail (self, "bare carriage return", self->line, s_column (self, cr_at));
            self->pos++;
            s_newline (self);
            goto end_of_record;
        }
        if (s_offset (self) >= limit && (state == S_QUOTED || (c != '\n' && c != '\r')))
            return s_fail_here (self, "record too long");
        if (s_reserve (self, 1))
            return s_fail_here (self, "out of memory");

        switch (state) {
            case S_FIELD_START:
                if (c == '"') {
                    quote_line = self->line;
                    quote_column = s_column (self, s_offset (self));
                    self->pos++;
                    state = S_QUOTED;
                } else if (c == ',' || c == '\n' || c == '\r') {
                    blank = nfields == 0 && c != ',';
                    s_end_field (self, &nfields, &field_start);
                    goto delimiter;
                } else
                    state = S_UNQUOTED;
                break;

            case S_UNQUOTED:
                if (u8_need == 0) {
                    size_t n = s_copy_run (self, S_PLAIN_UNQUOTED, limit);
                    if (n == (size_t)-1)
                        return s_fail_here (self, "out of memory");
                    if (n)
                        break;
                }
                if (c == ',' || c == '\n' || c == '\r' || c == '"') {
                    if (u8_need)
                        return s_fail_here (self, "invalid UTF-8");
                    if (c == '"')
                        return s_fail_here (self, "quote in unquoted field");
                    s_end_field (self, &nfields, &field_start);
                    goto delimiter;
                }
                goto content;

            case S_QUOTED:
                if (u8_need == 0) {
                    size_t n = s_copy_run (self, S_PLAIN_QUOTED, limit);
                    if (n == (size_t)-1)
                        return s_fail_here (self, "out of memory");
                    if (n)
                        break;
                }
                if (c == '"') {
                    if (u8_need)
                        return s_fail_here (self, "invalid UTF-8");
                    self->pos++;
                    state = S_AFTER_QUOTE;
                    break;
                }
                if (c == '\n') {
                    if (u8_need)
                        return s_fail_here (self, "invalid UTF-8");
                    self->record[self->record_used++] = '\n';
                    self->pos++;
                    s_newline (self);
                    break;
                }
                goto content;

            case S_AFTER_QUOTE:
                if (c == '"') {
                    self->record[self->record_used++] = '"';
                    self->pos++;
                    state = S_QUOTED;
                    break;
                }
                if (c == ',' || c == '\n' || c == '\r') {
                    s_end_field (self, &nfields, &field_start);
                    goto delimiter;
                }
                return s_fail_here (self, "unexpected character after closing quote");

            case S_AFTER_CR:
                assert (false); /* handled above */
                break;
        }
        continue;

    content:
        /*  One byte of field data that the fast path did not take.  */
        if (c == '\0')
            return s_fail_here (self, "NUL byte in field");
        if (s_utf8_step (&u8_need, &u8_lo, &u8_hi, c))
            return s_fail_here (self, "invalid UTF-8");
        self->record[self->record_used++] = (char)c;
        self->pos++;
        continue;

    delimiter:
        /*  c (',', LF or CR outside quotes) ended a field.  */
        if (c == ',') {
            if (nfields == BF_CSV_MAX_FIELDS)
                return s_fail_here (self, "too many fields");
            self->pos++;
            state = S_FIELD_START;
            continue;
        }
        if (c == '\r') {
            cr_at = s_offset (self);
            self->pos++;
            state = S_AFTER_CR;
            continue;
        }
        self->pos++;
        s_newline (self);
        goto end_of_record;
    }

end_of_input:
    if (self->read_errno) {
        snprintf (self->error_text, sizeof (self->error_text), "read error: %s",
                  strerror (self->read_errno));
        self->done = true;
        return s_fail_here (self, self->error_text);
    }
    switch (state) {
        case S_FIELD_START:
            if (nfields == 0)
                return 0; /* no record starts here */
            s_end_field (self, &nfields, &field_start);
            break;
        case S_UNQUOTED:
            if (u8_need)
                return s_fail_here (self, "invalid UTF-8");
            s_end_field (self, &nfields, &field_start);
            break;
        case S_QUOTED:
            return s_fail (self, "unterminated quoted field", quote_line, quote_column);
        case S_AFTER_QUOTE:
            s_end_field (self, &nfields, &field_start);
            break;
        case S_AFTER_CR:
            return s_fail (self, "bare carriage return", self->line, s_column (self, cr_at));
    }

end_of_record:
    if (blank && !s_refill (self)) {
        if (self->read_errno)
            goto end_of_input;
        return 0; /* a blank last line is not a record */
    }
    for (size_t i = 0; i < nfields; i++)
        self->fields[i]
            = self->offsets[i] == BF_CSV_NO_FIELD ? NULL : self->record + self->offsets[i];
    *fields = self->fields;
    *count = nfields;
    return 1;
}

long
bf_csv_line (const bf_csv_t *self)
{
    assert (self);
    return self->record_line;
}

const char *
bf_csv_error (const bf_csv_t *self)
{
    assert (self);
    return self->error;
}

long
bf_csv_error_line (const bf_csv_t *self)
{
    assert (self);
    return self->error_line;
}

long
bf_csv_error_column (const bf_csv_t *self)
{
    assert (self);
    return self->error_column;
}

/*  Writes one field, quoted when it has to be.  */
static int
s_write_field (FILE *out, const char *field)
{
    size_t len = strlen (field);
    if (strcspn (field, ",\"\r\n") == len)
        return fwrite (field, 1, len, out) == len ? 0 : -1;

    if (putc ('"', out) == EOF)
        return -1;
    const char *p = field;
    const char *quote;
    while ((quote = strchr (p, '"')) != NULL) {
        size_t n = (size_t)(quote - p) + 1; /* through the quote */
        if (fwrite (p, 1, n, out) != n || putc ('"', out) == EOF)
            return -1;
        p = quote + 1;
    }
    size_t n = strlen (p);
    if (fwrite (p, 1, n, out) != n || putc ('"', out) == EOF)
        return -1;
    return 0;
}

/*  Writes one record; see bf_csv.h. A record of one empty field is written
    as "" so that it reads back as a record rather than a blank line.  */
int
bf_csv_write (FILE *out, const char *const *fields, size_t count)
{
    assert (out);
    assert (fields || count == 0);
    if (count == 1 && (!fields[0] || !*fields[0]))
        return fputs ("\"\"\n", out) == EOF ? -1 : 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && putc (',', out) == EOF)
            return -1;
        if (fields[i] && *fields[i] && s_write_field (out, fields[i]))
            return -1;
    }
    return putc ('\n', out) == EOF ? -1 : 0;
}
