/*  fuzz_util — small helpers shared by the fuzz targets (header only, so
    each target stays one .c file that scripts/fuzz finds by its name).

    Inputs that carry several strings separate them with NUL bytes:
    bf_fuzz_split cuts a copy of the input there. Parsers that only read
    files get the input through bf_fuzz_file: one private 0600 file in a
    0700 directory made once per process, rewritten for each input.  */

#ifndef BF_FUZZ_UTIL_H_INCLUDED
#define BF_FUZZ_UTIL_H_INCLUDED

#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*  A broken contract is a finding: says which, and aborts, so libFuzzer
    saves the input.  */
#define bf_fuzz_require(condition) bf_fuzz_require_at ((condition), #condition, __LINE__)

static inline void
bf_fuzz_require_at (bool condition, const char *text, int line)
{
    if (!condition) {
        fprintf (stderr, "fuzz contract broken at line %d: %s\n", line, text);
        abort ();
    }
}

/*  Splits data at NUL bytes into at most max strings (the last one keeps
    any further NULs cut off). Returns the count; parts[i] point into
    *buffer (a heap copy the caller frees); missing parts are NULL.  */
static inline size_t
bf_fuzz_split (const uint8_t *data, size_t size, char **parts, size_t max, char **buffer)
{
    char *copy = malloc (size + 1);
    bf_fuzz_require (copy != NULL);
    if (size)
        memcpy (copy, data, size);
    copy[size] = '\0';
    *buffer = copy;
    size_t count = 0, at = 0;
    for (size_t i = 0; i < max; i++)
        parts[i] = NULL;
    while (count < max && at <= size) {
        parts[count++] = copy + at;
        size_t len = strlen (copy + at);
        at += len + 1;
    }
    return count;
}

/*  Writes data into this process's scratch file and returns its path
    (static storage). The directory is removed when the process ends.  */
static char s_fuzz_dir[PATH_MAX];
static char s_fuzz_path[PATH_MAX + 8];

static inline void
s_fuzz_cleanup (void)
{
    unlink (s_fuzz_path);
    rmdir (s_fuzz_dir);
}

static inline const char *
bf_fuzz_file (const uint8_t *data, size_t size)
{
    if (!s_fuzz_dir[0]) {
        const char *tmp = getenv ("TMPDIR");
        //  A TMPDIR too long for a path is the machine's problem, not a
        //  finding: said so, and the fuzzer stops (exit 2).
        int n = snprintf (s_fuzz_dir, sizeof s_fuzz_dir, "%s/bffuzz.XXXXXX",
                          tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof s_fuzz_dir || !mkdtemp (s_fuzz_dir)) {
            fprintf (stderr, "fuzz: cannot make a scratch directory under '%s'\n",
                     tmp && *tmp ? tmp : "/tmp");
            exit (2);
        }
        snprintf (s_fuzz_path, sizeof s_fuzz_path, "%s/input", s_fuzz_dir);
        atexit (s_fuzz_cleanup);
    }
    FILE *file = fopen (s_fuzz_path, "wb");
    bf_fuzz_require (file != NULL);
    bf_fuzz_require (fchmod (fileno (file), 0600) == 0);
    bf_fuzz_require (size == 0 || fwrite (data, 1, size, file) == size);
    bf_fuzz_require (fclose (file) == 0);
    return s_fuzz_path;
}

#endif
