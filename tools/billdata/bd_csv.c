/*  bd_csv — streaming RFC 4180 reader and writer.

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
    - bd_csv_error returns "" until the first error, then the message of
      the last error until the next one.  */

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd_csv.h"
#include "bf_text.h"

#define BD_CSV_BLOCK      (1u << 20) /* file read size */
#define BD_CSV_MAX_RECORD (1u << 20) /* raw bytes per record */
#define BD_CSV_MAX_FIELDS 256
#define BD_CSV_NO_FIELD   SIZE_MAX /* offset of an empty (NULL) field */

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

struct bd_csv_t {
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

    bf_text_buf_t record; /* decoded fields, each NUL-terminated */
    size_t offsets[BD_CSV_MAX_FIELDS];
    char *fields[BD_CSV_MAX_FIELDS];

    const char *error;
    long error_line;
    long error_column;
    char error_text[96];
};

static bd_csv_t *
s_alloc (void)
{
    bd_csv_t *self = (bd_csv_t *)calloc (1, sizeof (bd_csv_t));
    if (!self)
        return NULL;
    if (bf_text_buf_reserve (&self->record, 4095)) {
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
bd_csv_t *
bd_csv_open (const char *path, char *err, size_t errsize)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        if (err && errsize)
            snprintf (err, errsize, "%s: %s", path, strerror (errno));
        return NULL;
    }
    bd_csv_t *self = s_alloc ();
    if (self)
        self->block = (unsigned char *)malloc (BD_CSV_BLOCK);
    if (!self || !self->block) {
        if (err && errsize)
            snprintf (err, errsize, "%s: out of memory", path);
        fclose (file);
        bd_csv_destroy (&self);
        return NULL;
    }
    self->file = file;
    self->buf = self->block;
    return self;
}

/*  Reader over len bytes at data; the caller keeps data alive and
    unchanged while the reader exists. Returns NULL when out of memory.  */
bd_csv_t *
bd_csv_new_mem (const char *data, size_t len)
{
    assert (data || len == 0);
    bd_csv_t *self = s_alloc ();
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
bd_csv_destroy (bd_csv_t **self_p)
{
    assert (self_p);
    bd_csv_t *self = *self_p;
    if (!self)
        return;
    if (self->file)
        fclose (self->file);
    free (self->block);
    bf_text_buf_free (&self->record);
    free (self);
    *self_p = NULL;
}

/*  Makes buf[pos] readable. Returns false at the end of input (or after a
    read error, which is recorded in read_errno).  */
static bool
s_refill (bd_csv_t *self)
{
    if (self->pos < self->end)
        return true;
    if (self->eof)
        return false;
    self->base += (long long)self->end;
    self->pos = 0;
    self->end = fread (self->block, 1, BD_CSV_BLOCK, self->file);
    if (self->end < BD_CSV_BLOCK) {
        if (ferror (self->file))
            self->read_errno = errno ? errno : EIO;
        self->eof = true;
    }
    return self->end > 0;
}

static inline long
s_column (const bd_csv_t *self, long long at)
{
    return (long)(at - self->line_start + 1);
}

static inline long long
s_offset (const bd_csv_t *self)
{
    return self->base + (long long)self->pos;
}

/*  Called with buf[pos - 1] == '\n' just consumed.  */
static inline void
s_newline (bd_csv_t *self)
{
    self->line++;
    self->line_start = s_offset (self);
}

static int
s_fail (bd_csv_t *self, const char *message, long line, long column)
{
    self->error = message;
    self->error_line = line;
    self->error_column = column;
    self->resync = true;
    return -1;
}

/*  Error at the byte under the cursor (or at the end of input).  */
static int
s_fail_here (bd_csv_t *self, const char *message)
{
    return s_fail (self, message, self->line, s_column (self, s_offset (self)));
}

/*  Skips through the next LF (or to the end of input).  */
static void
s_skip_line (bd_csv_t *self)
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

/*  Room for extra more bytes plus a terminating NUL in the record buffer:
    the common case (room left) without a call.  */
static inline int
s_reserve (bd_csv_t *self, size_t extra)
{
    if (self->record.len + extra < self->record.cap)
        return 0;
    return bf_text_buf_reserve (&self->record, extra);
}

/*  Ends the current field (the buffer always has room for its NUL).  */
static inline void
s_end_field (bd_csv_t *self, size_t *nfields, size_t *field_start)
{
    self->offsets[*nfields] = self->record.len == *field_start ? BD_CSV_NO_FIELD : *field_start;
    (*nfields)++;
    self->record.data[self->record.len++] = '\0';
    *field_start = self->record.len;
}

/*  Copies the run of bytes of class mask starting at pos (stopping before
    the record limit) into the record. Returns the run length, or
    (size_t) -1 when the record buffer cannot grow.  */
static inline size_t
s_copy_run (bd_csv_t *self, unsigned char mask, long long limit)
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
        memcpy (self->record.data + self->record.len, start, n);
        self->record.len += n;
        self->pos += n;
    }
    return n;
}

//  ---------------------------------------------------------------------------
//  One record, byte by byte: bd_csv_next feeds each byte to the step of
//  the state it is in. Every step returns S_GO_ON, S_RECORD (the record is
//  complete), or -1 (reported with s_fail).

#define S_GO_ON  2
#define S_RECORD 1

/*  The record being read.  */
typedef struct {
    s_state_t state;
    size_t nfields;
    size_t field_start;            /* record offset of the current field */
    bool blank;                    /* the record is an empty line */
    bf_text_utf8_state_t utf8;     /* the character being read */
    long quote_line, quote_column; /* where the open quoted field began */
    long long cr_at;               /* input offset of the CR in S_AFTER_CR */
    long long limit;               /* input offset the record must end before */
} s_record_t;

/*  Skips the byte order mark on the first call, and the rest of a line
    after an error.  */
static void
s_begin (bd_csv_t *self)
{
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
}

/*  One byte of field data that the fast path did not take.  */
static int
s_content (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    if (c == '\0')
        return s_fail_here (self, "NUL byte in field");
    if (bf_text_utf8_step (&r->utf8, c))
        return s_fail_here (self, "invalid UTF-8");
    self->record.data[self->record.len++] = (char)c;
    self->pos++;
    return S_GO_ON;
}

/*  c (',', LF or CR outside quotes) ended a field.  */
static int
s_delimiter (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    if (c == ',') {
        if (r->nfields == BD_CSV_MAX_FIELDS)
            return s_fail_here (self, "too many fields");
        self->pos++;
        r->state = S_FIELD_START;
        return S_GO_ON;
    }
    if (c == '\r') {
        r->cr_at = s_offset (self);
        self->pos++;
        r->state = S_AFTER_CR;
        return S_GO_ON;
    }
    self->pos++;
    s_newline (self);
    return S_RECORD;
}

static int
s_field_start (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    if (c == '"') {
        r->quote_line = self->line;
        r->quote_column = s_column (self, s_offset (self));
        self->pos++;
        r->state = S_QUOTED;
        return S_GO_ON;
    }
    if (c == ',' || c == '\n' || c == '\r') {
        r->blank = r->nfields == 0 && c != ',';
        s_end_field (self, &r->nfields, &r->field_start);
        return s_delimiter (self, r, c);
    }
    r->state = S_UNQUOTED;
    return S_GO_ON;
}

/*  The fast path: when no character is open, copies the run of plain
    bytes (class mask) at the cursor. Returns S_GO_ON when it copied some,
    0 when the byte at the cursor needs the slow path, or -1.  */
static int
s_plain_run (bd_csv_t *self, s_record_t *r, unsigned char mask)
{
    if (r->utf8.need != 0)
        return 0;
    size_t n = s_copy_run (self, mask, r->limit);
    if (n == (size_t)-1)
        return s_fail_here (self, "out of memory");
    return n ? S_GO_ON : 0;
}

static int
s_unquoted (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    int run = s_plain_run (self, r, S_PLAIN_UNQUOTED);
    if (run)
        return run;
    if (c == ',' || c == '\n' || c == '\r' || c == '"') {
        if (r->utf8.need)
            return s_fail_here (self, "invalid UTF-8");
        if (c == '"')
            return s_fail_here (self, "quote in unquoted field");
        s_end_field (self, &r->nfields, &r->field_start);
        return s_delimiter (self, r, c);
    }
    return s_content (self, r, c);
}

static int
s_quoted (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    int run = s_plain_run (self, r, S_PLAIN_QUOTED);
    if (run)
        return run;
    if (c == '"' || c == '\n') {
        if (r->utf8.need)
            return s_fail_here (self, "invalid UTF-8");
        self->pos++;
        if (c == '"')
            r->state = S_AFTER_QUOTE;
        else {
            self->record.data[self->record.len++] = '\n';
            s_newline (self);
        }
        return S_GO_ON;
    }
    return s_content (self, r, c);
}

static int
s_after_quote (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    if (c == '"') {
        self->record.data[self->record.len++] = '"';
        self->pos++;
        r->state = S_QUOTED;
        return S_GO_ON;
    }
    if (c == ',' || c == '\n' || c == '\r') {
        s_end_field (self, &r->nfields, &r->field_start);
        return s_delimiter (self, r, c);
    }
    return s_fail_here (self, "unexpected character after closing quote");
}

static int
s_after_cr (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    if (c != '\n')
        return s_fail (self, "bare carriage return", self->line, s_column (self, r->cr_at));
    self->pos++;
    s_newline (self);
    return S_RECORD;
}

/*  Feeds the byte under the cursor to the step of the current state.  */
static int
s_step (bd_csv_t *self, s_record_t *r, unsigned char c)
{
    if (r->state == S_AFTER_CR)
        return s_after_cr (self, r, c);
    if (s_offset (self) >= r->limit && (r->state == S_QUOTED || (c != '\n' && c != '\r')))
        return s_fail_here (self, "record too long");
    if (s_reserve (self, 1))
        return s_fail_here (self, "out of memory");
    switch (r->state) {
        case S_FIELD_START:
            return s_field_start (self, r, c);
        case S_UNQUOTED:
            return s_unquoted (self, r, c);
        case S_QUOTED:
            return s_quoted (self, r, c);
        case S_AFTER_QUOTE:
            return s_after_quote (self, r, c);
        case S_AFTER_CR:
            break; /* handled above */
    }
    assert (false);
    return -1;
}

static int
s_read_error (bd_csv_t *self)
{
    snprintf (self->error_text, sizeof (self->error_text), "read error: %s",
              strerror (self->read_errno));
    self->done = true;
    return s_fail_here (self, self->error_text);
}

/*  The input ended inside the record: S_RECORD when that ends it, 0 when
    no record starts here, or -1.  */
static int
s_end_of_input (bd_csv_t *self, s_record_t *r)
{
    if (self->read_errno)
        return s_read_error (self);
    switch (r->state) {
        case S_FIELD_START:
            if (r->nfields == 0)
                return 0; /* no record starts here */
            break;
        case S_UNQUOTED:
            if (r->utf8.need)
                return s_fail_here (self, "invalid UTF-8");
            break;
        case S_QUOTED:
            return s_fail (self, "unterminated quoted field", r->quote_line, r->quote_column);
        case S_AFTER_QUOTE:
            break;
        case S_AFTER_CR:
            return s_fail (self, "bare carriage return", self->line, s_column (self, r->cr_at));
    }
    s_end_field (self, &r->nfields, &r->field_start);
    return S_RECORD;
}

/*  Hands out a complete record: 1, or 0 for a blank last line.  */
static int
s_finish (bd_csv_t *self, s_record_t *r, char ***fields, size_t *count)
{
    if (r->blank && !s_refill (self)) {
        if (self->read_errno)
            return s_read_error (self);
        return 0; /* a blank last line is not a record */
    }
    for (size_t i = 0; i < r->nfields; i++)
        self->fields[i]
            = self->offsets[i] == BD_CSV_NO_FIELD ? NULL : self->record.data + self->offsets[i];
    *fields = self->fields;
    *count = r->nfields;
    return 1;
}

/*  Reads the next record; see bd_csv.h.  */
int
bd_csv_next (bd_csv_t *self, char ***fields, size_t *count)
{
    assert (self);
    assert (fields);
    assert (count);
    *fields = NULL;
    *count = 0;
    if (self->done)
        return 0;
    s_begin (self);
    s_record_t r = { .state = S_FIELD_START, .limit = s_offset (self) + BD_CSV_MAX_RECORD };
    self->record.len = 0;
    self->record_line = self->line;
    int rc = S_GO_ON;
    while (rc == S_GO_ON) {
        if (self->pos == self->end && !s_refill (self))
            rc = s_end_of_input (self, &r);
        else
            rc = s_step (self, &r, self->buf[self->pos]);
    }
    return rc == S_RECORD ? s_finish (self, &r, fields, count) : rc;
}

long
bd_csv_line (const bd_csv_t *self)
{
    assert (self);
    return self->record_line;
}

const char *
bd_csv_error (const bd_csv_t *self)
{
    assert (self);
    return self->error;
}

long
bd_csv_error_line (const bd_csv_t *self)
{
    assert (self);
    return self->error_line;
}

long
bd_csv_error_column (const bd_csv_t *self)
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

/*  Writes one record; see bd_csv.h. A record of one empty field is written
    as "" so that it reads back as a record rather than a blank line.  */
int
bd_csv_write (FILE *out, const char *const *fields, size_t count)
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
