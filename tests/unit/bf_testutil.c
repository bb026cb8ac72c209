/*  bf_testutil — helpers shared by the unit tests (bf_testutil.h).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_testutil.h"
#include "bf_text.h"

static FILE *s_capture;

void
bf_testutil_log_capture (void)
{
    s_capture = tmpfile ();
    assert_non_null (s_capture);
    bf_log_set_fd (fileno (s_capture));
}

char *
bf_testutil_log_captured (void)
{
    bf_log_set_fd (2);
    assert_non_null (s_capture);
    int fd = fileno (s_capture);
    off_t size = lseek (fd, 0, SEEK_END);
    assert_true (size >= 0);
    char *text = malloc ((size_t)size + 1);
    assert_non_null (text);
    assert_int_equal (pread (fd, text, (size_t)size, 0), size);
    text[size] = 0;
    fclose (s_capture);
    s_capture = NULL;
    return text;
}

int
bf_testutil_quiet_setup (void **state)
{
    static int log_fd = 2;
    if (getenv ("BF_TEST_VERBOSE") == NULL) {
        int fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            log_fd = fd;
    }
    bf_log_set_fd (log_fd);
    *state = &log_fd;
    return 0;
}

int
bf_testutil_quiet_teardown (void **state)
{
    int fd = *(int *)*state;
    bf_log_set_fd (2);
    if (fd != 2)
        close (fd);
    return 0;
}

int
bf_testutil_dead_port (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    addr.sin_port = 0;
    assert_int_equal (bind (fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs (addr.sin_port);
    return fd;
}

char *
bf_testutil_tmpdir (const char *name)
{
    char template[256];
    snprintf (template, sizeof template, "/tmp/bf_%s_XXXXXX", name);
    char *path = strdup (template);
    assert_non_null (path);
    assert_non_null (mkdtemp (path));
    return path;
}

void
bf_testutil_rmdir (char **path_p)
{
    if (!path_p || !*path_p)
        return;
    DIR *dir = opendir (*path_p);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            if (!strcmp (entry->d_name, ".") || !strcmp (entry->d_name, ".."))
                continue;
            char file[512];
            snprintf (file, sizeof file, "%s/%s", *path_p, entry->d_name);
            unlink (file);
        }
        closedir (dir);
    }
    rmdir (*path_p);
    free (*path_p);
    *path_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Corpus files

const char *
bf_testutil_row_text (const bf_testutil_row_t *row, const char *format, ...)
{
    (void)row;
    static char text[2048];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    return text;
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*  The unescaped form of the raw field [p, end) into *out (malloc'd,
    NUL-terminated) and *len. Returns 0, or -1 on a malformed escape.  */
static int
s_unescape (const char *p, const char *end, char **out, size_t *len)
{
    bf_text_buf_t buf = { 0 };
    assert_int_equal (bf_text_buf_add (&buf, "", 0), 0);
    while (p < end) {
        const char *piece = p;
        size_t piece_len = 1, times = 1;
        char byte;
        if (*p != '\\')
            p++;
        else if (p + 1 < end && strchr ("\\tnr", p[1])) {
            byte = p[1] == 't' ? '\t' : p[1] == 'n' ? '\n' : p[1] == 'r' ? '\r' : '\\';
            piece = &byte;
            p += 2;
        } else if (p + 3 < end && p[1] == 'x' && s_hex (p[2]) >= 0 && s_hex (p[3]) >= 0) {
            byte = (char)(s_hex (p[2]) * 16 + s_hex (p[3]));
            piece = &byte;
            p += 4;
        } else if (p + 1 < end && p[1] == 'R') {
            char *brace;
            times = strtoul (p + 2, &brace, 10);
            const char *close
                = brace < end && *brace == '{' ? memchr (brace, '}', (size_t)(end - brace)) : NULL;
            if (!close || times == 0) {
                bf_text_buf_free (&buf);
                return -1;
            }
            piece = brace + 1;
            piece_len = (size_t)(close - piece);
            p = close + 1;
        } else {
            bf_text_buf_free (&buf);
            return -1;
        }
        for (size_t k = 0; k < times; k++)
            assert_int_equal (bf_text_buf_add (&buf, piece, piece_len), 0);
    }
    *out = buf.data;
    *len = buf.len;
    return 0;
}

void
bf_testutil_corpus (const char *path, const char *const *ops,
                    void (*fn) (const bf_testutil_row_t *row, size_t op, void *arg), void *arg,
                    size_t min_rows, size_t min_each)
{
    size_t tally[32] = { 0 };
    if (!path)
        fail_msg ("no corpus file given (meson passes its path as the first argument)");
    FILE *file = fopen (path, "r");
    if (!file)
        fail_msg ("%s: cannot open the corpus file", path);
    char *line = NULL;
    size_t cap = 0, rows = 0;
    ssize_t got;
    int number = 0;
    while ((got = getline (&line, &cap, file)) >= 0) {
        number++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = 0;
        if (got == 0 || line[0] == '#')
            continue;
        bf_testutil_row_t row = { .path = path, .line = number };
        const char *p = line, *end = line + got;
        while (p <= end) {
            const char *tab = memchr (p, '\t', (size_t)(end - p));
            const char *stop = tab ? tab : end;
            if (row.count == BF_TESTUTIL_FIELDS)
                fail_msg ("%s:%d: more than %d fields", path, number, BF_TESTUTIL_FIELDS);
            if (s_unescape (p, stop, &row.field[row.count], &row.len[row.count]) != 0)
                fail_msg ("%s:%d: malformed escape in field %zu", path, number, row.count + 1);
            row.count++;
            p = stop + 1;
        }
        size_t op = 0;
        while (ops[op] && strcmp (ops[op], row.field[0]) != 0)
            op++;
        if (!ops[op] || op >= sizeof tally / sizeof tally[0])
            fail_msg ("%s:%d: unknown operation \"%s\"", path, number, row.field[0]);
        tally[op]++;
        fn (&row, op, arg);
        for (size_t i = 0; i < row.count; i++)
            free (row.field[i]);
        rows++;
    }
    free (line);
    fclose (file);
    if (rows < min_rows)
        fail_msg ("%s: %zu rows, fewer than %zu", path, rows, min_rows);
    for (size_t op = 0; ops[op]; op++)
        if (tally[op] < min_each)
            fail_msg ("%s: %zu \"%s\" rows, fewer than %zu", path, tally[op], ops[op], min_each);
}

size_t
bf_testutil_row_size (const bf_testutil_row_t *row, size_t i)
{
    char *end = NULL;
    if (i >= row->count || row->len[i] == 0)
        bf_testutil_row_fail (row, "field %zu missing", i + 1);
    unsigned long long value = strtoull (row->field[i], &end, 10);
    if (*end || row->field[i][0] == '-')
        bf_testutil_row_fail (row, "field %zu (\"%s\") is not a number", i + 1, row->field[i]);
    return (size_t)value;
}
