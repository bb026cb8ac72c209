/*  test_csv — bd_csv reader and writer.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bd_csv.h"
#include "bf_text.h"

#define MIB (1024u * 1024u)

/*  --- Helpers ----------------------------------------------------------- */

/*  Next record must be want[0..n) starting on line.  */
static void
s_expect_record (bd_csv_t *csv, long line, const char *const *want, size_t n)
{
    char **fields = NULL;
    size_t count = 0;
    int rc = bd_csv_next (csv, &fields, &count);
    if (rc != 1)
        print_error ("expected a record at line %ld, got %d (%s at %ld:%ld)\n", line, rc,
                     bd_csv_error (csv), bd_csv_error_line (csv), bd_csv_error_column (csv));
    assert_int_equal (rc, 1);
    assert_int_equal (bd_csv_line (csv), line);
    assert_int_equal (count, n);
    for (size_t i = 0; i < n; i++) {
        if (want[i] == NULL)
            assert_null (fields[i]);
        else {
            assert_non_null (fields[i]);
            assert_string_equal (fields[i], want[i]);
        }
    }
}

#define EXPECT_RECORD(csv, line, ...)                                                              \
    s_expect_record ((csv), (line), (const char *[]){ __VA_ARGS__ },                               \
                     sizeof ((const char *[]){ __VA_ARGS__ }) / sizeof (const char *))

static void
s_expect_error (bd_csv_t *csv, const char *message, long line, long column)
{
    char **fields = NULL;
    size_t count = 99;
    int rc = bd_csv_next (csv, &fields, &count);
    assert_int_equal (rc, -1);
    assert_string_equal (bd_csv_error (csv), message);
    assert_int_equal (bd_csv_error_line (csv), line);
    assert_int_equal (bd_csv_error_column (csv), column);
    assert_null (fields);
    assert_int_equal (count, 0);
}

static void
s_expect_end (bd_csv_t *csv)
{
    char **fields = NULL;
    size_t count = 99;
    assert_int_equal (bd_csv_next (csv, &fields, &count), 0);
    assert_int_equal (count, 0);
    /*  and it stays at the end  */
    assert_int_equal (bd_csv_next (csv, &fields, &count), 0);
}

static bd_csv_t *
s_mem (const char *text)
{
    bd_csv_t *csv = bd_csv_new_mem (text, strlen (text));
    assert_non_null (csv);
    return csv;
}

/*  Writes len bytes to a new temporary file; returns its malloc'd path.  */
static char *
s_temp_file (const void *data, size_t len)
{
    char *path = strdup ("/tmp/test_csv_XXXXXX");
    assert_non_null (path);
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    FILE *file = fdopen (fd, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, len, file), len);
    assert_int_equal (fclose (file), 0);
    return path;
}

static bd_csv_t *
s_open (const char *path)
{
    char err[256] = "";
    bd_csv_t *csv = bd_csv_open (path, err, sizeof (err));
    assert_non_null (csv);
    return csv;
}

/*  Generated inputs grow in a bf_text_buf_t; a test stops when memory
    runs out.  */
typedef bf_text_buf_t s_text_t;

static void
s_add (s_text_t *text, const char *bytes, size_t len)
{
    assert_int_equal (bf_text_buf_add (text, bytes, len), 0);
}

static void
s_adds (s_text_t *text, const char *bytes)
{
    s_add (text, bytes, strlen (bytes));
}

static void
s_add_repeat (s_text_t *text, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s_add (text, &c, 1);
}

/*  --- Reader: well-formed input ----------------------------------------- */

static void
test_plain_rows (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("id,name,amount\n1,kim,100\n2,lee,-5\n");
    EXPECT_RECORD (csv, 1, "id", "name", "amount");
    EXPECT_RECORD (csv, 2, "1", "kim", "100");
    EXPECT_RECORD (csv, 3, "2", "lee", "-5");
    s_expect_end (csv);
    assert_string_equal (bd_csv_error (csv), "");
    bd_csv_destroy (&csv);
    assert_null (csv);
    bd_csv_destroy (&csv); /* safe twice */
}

static void
test_quoted_fields (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("\"a,b\",\"say \"\"hi\"\"\",\"x\ny\",z\n" /* lines 1-2 */
                           "\"p\r\nq\",w\n"                          /* lines 3-4 */
                           "\"\"\"\",\"\",\",\"\n"                   /* line 5 */
                           "last,row\n");                            /* line 6 */
    EXPECT_RECORD (csv, 1, "a,b", "say \"hi\"", "x\ny", "z");
    EXPECT_RECORD (csv, 3, "p\r\nq", "w");
    EXPECT_RECORD (csv, 5, "\"", NULL, ",");
    EXPECT_RECORD (csv, 6, "last", "row");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_crlf (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("a,b\r\n\"c\",d\r\ne,\r\n\r\nf\r\n");
    EXPECT_RECORD (csv, 1, "a", "b");
    EXPECT_RECORD (csv, 2, "c", "d");
    EXPECT_RECORD (csv, 3, "e", NULL);
    EXPECT_RECORD (csv, 4, NULL); /* blank line in the middle */
    EXPECT_RECORD (csv, 5, "f");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_bom (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("\xEF\xBB\xBFid,name\n1,\xEF\xBB\xBFx\n");
    EXPECT_RECORD (csv, 1, "id", "name");
    EXPECT_RECORD (csv, 2, "1", "\xEF\xBB\xBFx"); /* only the first BOM is skipped */
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    /*  Columns on the first line count from after the BOM.  */
    csv = s_mem ("\xEF\xBB\xBF"
                 "ab\"c\nok\n");
    s_expect_error (csv, "quote in unquoted field", 1, 3);
    EXPECT_RECORD (csv, 2, "ok");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("\xEF\xBB\xBF");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_empty_fields (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem (",a,,\"\",b,\n\"\"\n");
    EXPECT_RECORD (csv, 1, NULL, "a", NULL, NULL, "b", NULL);
    EXPECT_RECORD (csv, 2, NULL); /* "" alone is a record, even last */
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    /*  Blank lines: a record with one NULL field, except the last one.  */
    csv = s_mem ("a\n\n\nb\n\n");
    EXPECT_RECORD (csv, 1, "a");
    EXPECT_RECORD (csv, 2, NULL);
    EXPECT_RECORD (csv, 3, NULL);
    EXPECT_RECORD (csv, 4, "b");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    const char *nothing[] = { "", "\n", "\r\n" };
    for (size_t i = 0; i < sizeof (nothing) / sizeof (nothing[0]); i++) {
        csv = s_mem (nothing[i]);
        s_expect_end (csv);
        bd_csv_destroy (&csv);
    }
    csv = bd_csv_new_mem (NULL, 0);
    assert_non_null (csv);
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_no_trailing_newline (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("a,b\nc,d");
    EXPECT_RECORD (csv, 1, "a", "b");
    EXPECT_RECORD (csv, 2, "c", "d");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("a,\"b\"");
    EXPECT_RECORD (csv, 1, "a", "b");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("a,");
    EXPECT_RECORD (csv, 1, "a", NULL);
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_utf8_valid (void **state)
{
    (void)state;
    /*  2-, 3- and 4-byte sequences, at field edges and inside quotes.  */
    bd_csv_t *csv = s_mem ("홍길동,\"김, 철수\",caf\xC3\xA9,\xF0\x9F\x98\x80\n"
                           "\xEF\xBF\xBF,\xF4\x8F\xBF\xBF,\xED\x9F\xBF\n");
    EXPECT_RECORD (csv, 1, "홍길동", "김, 철수", "caf\xC3\xA9", "\xF0\x9F\x98\x80");
    EXPECT_RECORD (csv, 2, "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

/*  --- Reader: errors and recovery --------------------------------------- */

static void
test_error_kinds (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("ab\"c,d\nok\n");
    s_expect_error (csv, "quote in unquoted field", 1, 3);
    EXPECT_RECORD (csv, 2, "ok");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("x,\"ab\"c,d\nok\n");
    s_expect_error (csv, "unexpected character after closing quote", 1, 7);
    EXPECT_RECORD (csv, 2, "ok");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("x,\"ab\" \nok\n"); /* a space is a character too */
    s_expect_error (csv, "unexpected character after closing quote", 1, 7);
    EXPECT_RECORD (csv, 2, "ok");
    bd_csv_destroy (&csv);

    csv = s_mem ("ok\nab\rc\nok2\n");
    EXPECT_RECORD (csv, 1, "ok");
    s_expect_error (csv, "bare carriage return", 2, 3);
    EXPECT_RECORD (csv, 3, "ok2");
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("a,\"b\"\r\r\nok\n"); /* CR after a closing quote */
    s_expect_error (csv, "bare carriage return", 1, 6);
    EXPECT_RECORD (csv, 2, "ok");
    bd_csv_destroy (&csv);

    csv = s_mem ("ok\na\r"); /* CR at the end of input */
    EXPECT_RECORD (csv, 1, "ok");
    s_expect_error (csv, "bare carriage return", 2, 2);
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    const char nul[] = "a\0b,c\nok\n";
    csv = bd_csv_new_mem (nul, sizeof (nul) - 1);
    s_expect_error (csv, "NUL byte in field", 1, 2);
    EXPECT_RECORD (csv, 2, "ok");
    bd_csv_destroy (&csv);
}

static void
test_unterminated_quote (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("ok\nx,\"abc,\ndef\n\nmore\n");
    EXPECT_RECORD (csv, 1, "ok");
    s_expect_error (csv, "unterminated quoted field", 2, 3);
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    csv = s_mem ("\"");
    s_expect_error (csv, "unterminated quoted field", 1, 1);
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_invalid_utf8 (void **state)
{
    (void)state;
    struct {
        const char *text;
        long column;
    } cases[] = {
        { "a,b\xC3(,c\n", 5 },       /* lead byte, then ASCII */
        { "a,b\x80\n", 4 },          /* lone continuation byte */
        { "\xC0\x80\n", 1 },         /* overlong NUL */
        { "\xC1\xBF\n", 1 },         /* overlong */
        { "\xE0\x80\x80\n", 2 },     /* overlong 3-byte */
        { "\xED\xA0\x80\n", 2 },     /* surrogate U+D800 */
        { "\xF0\x80\x80\x80\n", 2 }, /* overlong 4-byte */
        { "\xF4\x90\x80\x80\n", 2 }, /* above U+10FFFF */
        { "\xF5\x80\x80\x80\n", 1 }, /* never a lead byte */
        { "\xFF\n", 1 },
        { "\"ab\xE2\x82\",x\n", 6 }, /* cut short by the closing quote */
        { "\"ab\xE2\n\",x\n", 5 },   /* cut short by a quoted LF */
        { "ab\xE2\x82,x\n", 5 },     /* cut short by a comma */
        { "ab\xE2\x82\n", 5 },       /* cut short by the line end */
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        bd_csv_t *csv = s_mem (cases[i].text);
        s_expect_error (csv, "invalid UTF-8", 1, cases[i].column);
        bd_csv_destroy (&csv);
    }
    /*  Cut short by the end of input, then nothing more.  */
    bd_csv_t *csv = s_mem ("ok\nab\xE2\x82");
    EXPECT_RECORD (csv, 1, "ok");
    s_expect_error (csv, "invalid UTF-8", 2, 5);
    s_expect_end (csv);
    bd_csv_destroy (&csv);

    /*  The reader goes on after the bad row.  */
    csv = s_mem ("a\nb\xFF\nc\n");
    EXPECT_RECORD (csv, 1, "a");
    s_expect_error (csv, "invalid UTF-8", 2, 2);
    EXPECT_RECORD (csv, 3, "c");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

static void
test_recovery_between_good_rows (void **state)
{
    (void)state;
    bd_csv_t *csv = s_mem ("h1,h2\n"        /* 1 */
                           "a,\"b\"x\n"     /* 2: bad */
                           "c,d\n"          /* 3 */
                           "e\"f,g\n"       /* 4: bad */
                           "\"h\ri\",\"j\n" /* 5-6: multi-line */
                           "k\"\n"
                           "k,l\rm\n" /* 7: bad */
                           "n,o\n");  /* 8 */
    long error_lines[3];
    long error_columns[3];
    const char *errors[3];
    size_t nerrors = 0, nrecords = 0;
    long record_lines[8];
    char first[8][8];
    char **fields;
    size_t count;
    int rc;
    while ((rc = bd_csv_next (csv, &fields, &count)) != 0) {
        if (rc < 0) {
            assert_true (nerrors < 3);
            errors[nerrors] = bd_csv_error (csv);
            error_lines[nerrors] = bd_csv_error_line (csv);
            error_columns[nerrors] = bd_csv_error_column (csv);
            nerrors++;
            continue;
        }
        assert_true (nrecords < 8);
        assert_int_equal (count, 2);
        record_lines[nrecords] = bd_csv_line (csv);
        snprintf (first[nrecords], sizeof (first[0]), "%s", fields[0]);
        nrecords++;
    }
    assert_int_equal (nerrors, 3);
    assert_string_equal (errors[0], "unexpected character after closing quote");
    assert_int_equal (error_lines[0], 2);
    assert_int_equal (error_columns[0], 6);
    assert_string_equal (errors[1], "quote in unquoted field");
    assert_int_equal (error_lines[1], 4);
    assert_int_equal (error_columns[1], 2);
    assert_string_equal (errors[2], "bare carriage return");
    assert_int_equal (error_lines[2], 7);
    assert_int_equal (error_columns[2], 4);

    assert_int_equal (nrecords, 4);
    assert_string_equal (first[0], "h1");
    assert_int_equal (record_lines[0], 1);
    assert_string_equal (first[1], "c");
    assert_int_equal (record_lines[1], 3);
    assert_string_equal (first[2], "h\ri");
    assert_int_equal (record_lines[2], 5);
    assert_string_equal (first[3], "n");
    assert_int_equal (record_lines[3], 8);
    bd_csv_destroy (&csv);
}

static void
test_field_limit (void **state)
{
    (void)state;
    s_text_t text = { 0 };
    for (int i = 0; i < 256; i++)
        s_adds (&text, i ? ",f" : "f");
    s_adds (&text, "\n");
    size_t ok_len = text.len;
    for (int i = 0; i < 257; i++)
        s_adds (&text, i ? ",f" : "f");
    s_adds (&text, "\nlast\n");

    bd_csv_t *csv = bd_csv_new_mem (text.data, text.len);
    assert_non_null (csv);
    char **fields;
    size_t count;
    assert_int_equal (bd_csv_next (csv, &fields, &count), 1);
    assert_int_equal (count, 256);
    assert_string_equal (fields[255], "f");
    /*  The 256th comma would open field 257.  */
    s_expect_error (csv, "too many fields", 2, (long)ok_len);
    EXPECT_RECORD (csv, 3, "last");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
    bf_text_buf_free (&text);
}

static void
test_record_too_long (void **state)
{
    (void)state;
    s_text_t text = { 0 };
    /*  Exactly 1 MiB of raw bytes is fine, quoted or not.  */
    s_add_repeat (&text, 'a', MIB - 2);
    s_adds (&text, ",b\n\"");
    s_add_repeat (&text, 'q', MIB - 2);
    s_adds (&text, "\"\r\n");
    /*  One more byte is not; the reader goes on with the next line.  */
    s_add_repeat (&text, 'c', MIB + 1);
    s_adds (&text, "\nafter,1\n\"");
    s_add_repeat (&text, 'd', MIB - 1);
    s_adds (&text, "\"\nend\n");

    bd_csv_t *csv = bd_csv_new_mem (text.data, text.len);
    assert_non_null (csv);
    char **fields;
    size_t count;
    assert_int_equal (bd_csv_next (csv, &fields, &count), 1);
    assert_int_equal (count, 2);
    assert_int_equal (strlen (fields[0]), MIB - 2);
    assert_string_equal (fields[1], "b");
    assert_int_equal (bd_csv_next (csv, &fields, &count), 1);
    assert_int_equal (count, 1);
    assert_int_equal (strlen (fields[0]), MIB - 2);
    assert_int_equal (bd_csv_line (csv), 2);
    s_expect_error (csv, "record too long", 3, (long)MIB + 1);
    EXPECT_RECORD (csv, 4, "after", "1");
    s_expect_error (csv, "record too long", 5, (long)MIB + 1); /* the closing quote */
    EXPECT_RECORD (csv, 6, "end");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
    bf_text_buf_free (&text);
}

/*  --- Reader over files: block refills ---------------------------------- */

static void
test_open_missing (void **state)
{
    (void)state;
    char err[256] = "";
    bd_csv_t *csv = bd_csv_open ("/nonexistent/dir/x.csv", err, sizeof (err));
    assert_null (csv);
    assert_non_null (strstr (err, "/nonexistent/dir/x.csv"));
    assert_non_null (strstr (err, "No such file"));
    assert_null (bd_csv_open ("/nonexistent/dir/x.csv", NULL, 0));
}

/*  fopen accepts a directory on Linux; the first read fails.  */
static void
test_read_error (void **state)
{
    (void)state;
    char err[256] = "";
    bd_csv_t *csv = bd_csv_open ("/tmp", err, sizeof (err));
    if (!csv)
        skip ();
    s_expect_error (csv, "read error: Is a directory", 1, 1);
    s_expect_end (csv);
    bd_csv_destroy (&csv);
}

/*  Puts tail so that its byte split_at lands on the first byte of the
    second 1 MiB block, after a padding record "pppp...\n" (line 1).  */
static char *
s_file_split (const char *tail, size_t split_at)
{
    s_text_t text = { 0 };
    s_add_repeat (&text, 'p', MIB - split_at - 1);
    s_adds (&text, "\n");
    s_adds (&text, tail);
    assert_int_equal (text.len - strlen (tail) + split_at, MIB);
    char *path = s_temp_file (text.data, text.len);
    bf_text_buf_free (&text);
    return path;
}

static void
s_skip_padding (bd_csv_t *csv)
{
    char **fields;
    size_t count;
    assert_int_equal (bd_csv_next (csv, &fields, &count), 1);
    assert_int_equal (count, 1);
    assert_int_equal (bd_csv_line (csv), 1);
}

static void
test_block_boundaries (void **state)
{
    (void)state;
    const char *tail = "\"a\"\"b\",\"x,\ny\"\r\nk\xEA\xB9\x80,z\r\n";
    /*  Every split point of the tail: doubled quote, quoted LF, CRLF,
        a 3-byte character, the closing quote before a comma.  */
    for (size_t split = 0; split <= strlen (tail); split++) {
        char *path = s_file_split (tail, split);
        bd_csv_t *csv = s_open (path);
        s_skip_padding (csv);
        EXPECT_RECORD (csv, 2, "a\"b", "x,\ny");
        EXPECT_RECORD (csv, 4, "k\xEA\xB9\x80", "z");
        s_expect_end (csv);
        bd_csv_destroy (&csv);
        unlink (path);
        free (path);
    }
    /*  A bare CR as the last byte of a block.  */
    char *path = s_file_split ("ab\rc\nok\n", 3);
    bd_csv_t *csv = s_open (path);
    s_skip_padding (csv);
    s_expect_error (csv, "bare carriage return", 2, 3);
    EXPECT_RECORD (csv, 3, "ok");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
    unlink (path);
    free (path);

    /*  A UTF-8 sequence cut by the end of the file, right after a refill.  */
    path = s_file_split ("ab\xE2\x82", 3);
    csv = s_open (path);
    s_skip_padding (csv);
    s_expect_error (csv, "invalid UTF-8", 2, 5);
    s_expect_end (csv);
    bd_csv_destroy (&csv);
    unlink (path);
    free (path);
}

/*  A few MiB of random records (field pieces chosen to stress the parser,
    LF or CRLF endings), read from a file and from memory.  */
static void
test_random_file (void **state)
{
    (void)state;
    static const char *pieces[] = {
        "plain", "with,comma", "q\"uote", "multi\nline", "cr\r\nlf", "홍길동", "\xF0\x9F\x98\x80",
        "",      "12345",      "a b",     "\"",          "\r",
    };
    const size_t npieces = sizeof (pieces) / sizeof (pieces[0]);
    enum { ROWS = 60000, COLS = 6 };
    char **expected = calloc ((size_t)ROWS * COLS, sizeof (char *));
    long *lines = calloc (ROWS, sizeof (long));
    assert_non_null (expected);
    assert_non_null (lines);

    s_text_t text = { 0 };
    uint32_t seed = 12345;
    long line = 1;
    for (size_t r = 0; r < ROWS; r++) {
        lines[r] = line;
        for (size_t c = 0; c < COLS; c++) {
            seed = seed * 1103515245u + 12345u;
            const char *a = pieces[(seed >> 8) % npieces];
            const char *b = pieces[(seed >> 16) % npieces];
            size_t len = strlen (a) + strlen (b);
            char *value = malloc (len + 1);
            assert_non_null (value);
            snprintf (value, len + 1, "%s%s", a, b);
            bool must_quote = strpbrk (value, ",\"\r\n") != NULL;
            if (c)
                s_adds (&text, ",");
            if (must_quote || (seed >> 28) % 2) {
                s_adds (&text, "\"");
                for (const char *p = value; *p; p++) {
                    s_add (&text, p, 1);
                    if (*p == '"')
                        s_add (&text, p, 1); /* doubled */
                }
                s_adds (&text, "\"");
            } else
                s_adds (&text, value);
            for (const char *p = value; *p; p++)
                line += *p == '\n';
            if (len == 0) {
                free (value);
                value = NULL;
            }
            expected[r * COLS + c] = value;
        }
        s_adds (&text, (seed >> 24) % 2 ? "\r\n" : "\n");
        line++;
    }
    assert_true (text.len > 3 * MIB);

    char *path = s_temp_file (text.data, text.len);
    bd_csv_t *readers[2] = { s_open (path), bd_csv_new_mem (text.data, text.len) };
    for (int k = 0; k < 2; k++) {
        bd_csv_t *csv = readers[k];
        assert_non_null (csv);
        for (size_t r = 0; r < ROWS; r++)
            s_expect_record (csv, lines[r], (const char *const *)expected + r * COLS, COLS);
        s_expect_end (csv);
        bd_csv_destroy (&csv);
    }
    unlink (path);
    free (path);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
        free (expected[i]);
    free (expected);
    free (lines);
    bf_text_buf_free (&text);
}

static void
test_long_record_in_file (void **state)
{
    (void)state;
    s_text_t text = { 0 };
    s_adds (&text, "first\n\"");
    s_add_repeat (&text, 'x', 2 * MIB); /* spans three blocks */
    s_adds (&text, "\"\nsecond,2\n");
    char *path = s_temp_file (text.data, text.len);
    bd_csv_t *csv = s_open (path);
    EXPECT_RECORD (csv, 1, "first");
    s_expect_error (csv, "record too long", 2, (long)MIB + 1);
    EXPECT_RECORD (csv, 3, "second", "2");
    s_expect_end (csv);
    bd_csv_destroy (&csv);
    unlink (path);
    free (path);
    bf_text_buf_free (&text);
}

/*  --- Writer ------------------------------------------------------------ */

static char *
s_write_to_string (const char *const *fields, size_t count, size_t *len)
{
    char *data = NULL;
    FILE *out = open_memstream (&data, len);
    assert_non_null (out);
    assert_int_equal (bd_csv_write (out, fields, count), 0);
    assert_int_equal (fclose (out), 0);
    return data;
}

static void
test_writer_format (void **state)
{
    (void)state;
    size_t len;
    const char *row[] = { "a", "b,c", "d\"e", NULL, "", "x\ny", "cr\r", " sp " };
    char *out = s_write_to_string (row, 8, &len);
    assert_string_equal (out, "a,\"b,c\",\"d\"\"e\",,,\"x\ny\",\"cr\r\", sp \n");
    assert_int_equal (len, strlen (out));
    free (out);

    const char *lone[] = { NULL };
    out = s_write_to_string (lone, 1, &len);
    assert_string_equal (out, "\"\"\n");
    free (out);

    out = s_write_to_string (NULL, 0, &len);
    assert_string_equal (out, "\n");
    free (out);

    FILE *full = fopen ("/dev/full", "w");
    if (full) {
        setvbuf (full, NULL, _IONBF, 0);
        const char *one[] = { "x" };
        assert_int_equal (bd_csv_write (full, one, 1), -1);
        fclose (full);
    }
}

static void
test_round_trip (void **state)
{
    (void)state;
    const char *tricky[] = {
        NULL,
        "plain",
        "a,b",
        "say \"hi\"",
        "\"",
        "\"\"",
        "line\nbreak",
        "cr\rx",
        "crlf\r\n",
        "\r\n",
        " spaced ",
        "홍길동",
        "trailing,",
        ",",
        "",
        "\xF0\x9F\x98\x80",
    };
    const size_t n = sizeof (tricky) / sizeof (tricky[0]);
    char *data = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&data, &len);
    assert_non_null (out);
    assert_int_equal (bd_csv_write (out, tricky, n), 0);
    for (size_t i = 0; i < n; i++) /* each alone, too */
        assert_int_equal (bd_csv_write (out, tricky + i, 1), 0);
    assert_int_equal (fclose (out), 0);

    bd_csv_t *csv = bd_csv_new_mem (data, len);
    assert_non_null (csv);
    char **fields;
    size_t count;
    for (size_t pass = 0; pass <= n; pass++) {
        const char *const *want = pass == 0 ? tricky : tricky + pass - 1;
        size_t nwant = pass == 0 ? n : 1;
        assert_int_equal (bd_csv_next (csv, &fields, &count), 1);
        assert_int_equal (count, nwant);
        for (size_t i = 0; i < nwant; i++) {
            if (!want[i] || !*want[i])
                assert_null (fields[i]);
            else
                assert_string_equal (fields[i], want[i]);
        }
    }
    s_expect_end (csv);
    bd_csv_destroy (&csv);
    free (data);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_plain_rows),
        cmocka_unit_test (test_quoted_fields),
        cmocka_unit_test (test_crlf),
        cmocka_unit_test (test_bom),
        cmocka_unit_test (test_empty_fields),
        cmocka_unit_test (test_no_trailing_newline),
        cmocka_unit_test (test_utf8_valid),
        cmocka_unit_test (test_error_kinds),
        cmocka_unit_test (test_unterminated_quote),
        cmocka_unit_test (test_invalid_utf8),
        cmocka_unit_test (test_recovery_between_good_rows),
        cmocka_unit_test (test_field_limit),
        cmocka_unit_test (test_record_too_long),
        cmocka_unit_test (test_open_missing),
        cmocka_unit_test (test_read_error),
        cmocka_unit_test (test_block_boundaries),
        cmocka_unit_test (test_random_file),
        cmocka_unit_test (test_long_record_in_file),
        cmocka_unit_test (test_writer_format),
        cmocka_unit_test (test_round_trip),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
