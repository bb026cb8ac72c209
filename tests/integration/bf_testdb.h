/*  bf_testdb — support for the integration suite: a fresh database per test
    inside the throwaway cluster that scripts/pgtmp started (the PG*
    environment points at it), and a runner for the real billdata binary.  */

#ifndef BF_TESTDB_H_INCLUDED
#define BF_TESTDB_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  A fixed PII key for tests (never used outside them).  */
#define BF_TEST_PII_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/*  Creates database bftest_<pid>_<n>; with migrate, applies the schema.
    Returns its conninfo (free with bf_testdb_drop), or NULL.  */
char *bf_testdb_create (bool migrate);
void bf_testdb_drop (char **conninfo_p);
PGconn *bf_testdb_connect (const char *conninfo);

/*  First column of the first row of sql as an integer (-1 on error).  */
int64_t bf_testdb_scalar (PGconn *conn, const char *sql);
/*  Same as text into out; returns 0 or -1.  */
int bf_testdb_text (PGconn *conn, const char *sql, char *out, size_t outsize);
/*  Runs sql; returns the SQLSTATE ("00000" on success) in a static buffer.  */
const char *bf_testdb_exec (PGconn *conn, const char *sql);

/*  Runs `$BF_BILLDATA ARGS` (a shell word list) against conninfo with the test
    PII key; stdout and stderr go to *output (malloc'd, caller frees).
    Returns the exit status, or -1 when it could not run.  */
int bf_testdb_billdata (const char *conninfo, char **output, const char *args_format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  A fresh temporary directory (malloc'd path); bf_test_rmdir removes it.  */
char *bf_test_mkdtemp (void);
void bf_test_rmdir (char **path_p);
/*  Whole file into a malloc'd NUL-terminated buffer, or NULL.  */
char *bf_test_slurp (const char *path);
int bf_test_write (const char *path, const char *text);

#endif
