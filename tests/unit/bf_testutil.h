/*  bf_testutil — what more than one unit test needs: a quiet log for a
    cmocka group, the log captured to read back, a loopback port where
    nothing listens, scratch directories, and the reader of corpus files
    (tests/unit/data/). Every failure is a cmocka failure of the calling
    test.  */

#ifndef BF_TESTUTIL_H_INCLUDED
#define BF_TESTUTIL_H_INCLUDED

#include <stddef.h>

/*  cmocka group setup and teardown. Tests that provoke refusals on
    purpose would fill the output with log lines: they go to /dev/null
    (the group state holds that fd) unless BF_TEST_VERBOSE is set, and
    back to stderr at teardown.  */
int bf_testutil_quiet_setup (void **state);
int bf_testutil_quiet_teardown (void **state);

/*  Captures what bf_log writes: from bf_testutil_log_capture on, every
    line goes to a temporary file; bf_testutil_log_captured points bf_log
    back at stderr and returns what was written (the caller frees it).  */
void bf_testutil_log_capture (void);
char *bf_testutil_log_captured (void);

/*  Reserves a loopback port where nothing listens: a TCP socket bound to
    a port the kernel picks, never listening. Connects to it are refused,
    nobody else can bind it while the socket is open (so a test running in
    parallel cannot answer there), and no connect can meet itself on it.
    Returns the socket (close it when done) and the port in *port.  */
int bf_testutil_dead_port (int *port);

/*  A fresh directory /tmp/bf_<name>_XXXXXX (malloc'd path); remove it
    with bf_testutil_rmdir.  */
char *bf_testutil_tmpdir (const char *name);

/*  Removes the directory and the files in it (no subdirectories), frees
    the path and sets *path_p to NULL; safe on NULL.  */
void bf_testutil_rmdir (char **path_p);

/*  One row of a corpus file. The file is UTF-8 text, one row per line;
    empty lines and lines starting with '#' are skipped. Fields are
    separated by one TAB. In a field, \\ is a backslash, \t, \n and \r
    the control characters, \xHH any byte (malformed UTF-8, NUL), and
    \R<count>{text} the text (no escapes, no braces) count times, for
    overlong inputs. field[i] is NUL-terminated; len[i] counts its bytes
    (a \x00 inside is a byte like any other).  */
#define BF_TESTUTIL_FIELDS 6
typedef struct {
    const char *path;
    int line; /* 1-based line of the row in the file */
    size_t count;
    char *field[BF_TESTUTIL_FIELDS];
    size_t len[BF_TESTUTIL_FIELDS];
} bf_testutil_row_t;

/*  Calls fn for each row of the corpus at path, in order, with the index
    in ops (NULL-terminated) of the row's first field, its operation. A
    file that cannot be read, a malformed escape, a row of more than
    BF_TESTUTIL_FIELDS fields or with an operation not in ops fails the
    calling test; so does a file of fewer than min_rows rows or of fewer
    than min_each rows of some operation (a corpus that lost its rows
    must not pass).  */
void bf_testutil_corpus (const char *path, const char *const *ops,
                         void (*fn) (const bf_testutil_row_t *row, size_t op, void *arg), void *arg,
                         size_t min_rows, size_t min_each);

/*  The row's field i as an unsigned number, failing the test (with the
    file and line) when it is missing or not one.  */
size_t bf_testutil_row_size (const bf_testutil_row_t *row, size_t i);

/*  Fails the test naming the corpus file and line of row.  */
#define bf_testutil_row_fail(row, ...)                                                             \
    fail_msg ("%s:%d: %s", (row)->path, (row)->line, bf_testutil_row_text ((row), __VA_ARGS__))

/*  printf into a static buffer, for bf_testutil_row_fail.  */
const char *bf_testutil_row_text (const bf_testutil_row_t *row, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
