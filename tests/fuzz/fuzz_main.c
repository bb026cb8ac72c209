/*  fuzz_main — standalone driver for a libFuzzer-style target, so fuzz
    corpora run as ordinary regression tests without clang's libFuzzer.

    Usage: fuzz_xxx PATH...  Each PATH that is a directory has each regular
    file in it (sorted by name, dot-files skipped) run through
    LLVMFuzzerTestOneInput once; a PATH that is a file is run itself.
    A crash or sanitizer report ends the process; otherwise it prints
    "<program>: N inputs" and exits 0, or 1 when a path could not be read
    or no input was found at all (an empty corpus tests nothing).  */

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Runs one file through the target. Returns 0, or -1 when unreadable.
static int
s_run_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (file == NULL) {
        fprintf (stderr, "%s: %s\n", path, strerror (errno));
        return -1;
    }
    size_t size = 0, capacity = 4096;
    uint8_t *data = malloc (capacity);
    while (data) {
        size_t got = fread (data + size, 1, capacity - size, file);
        size += got;
        if (size < capacity)
            break;
        uint8_t *bigger = realloc (data, capacity * 2);
        if (bigger == NULL) {
            free (data);
            data = NULL;
            break;
        }
        data = bigger;
        capacity *= 2;
    }
    bool failed = data == NULL || ferror (file);
    fclose (file);
    if (failed) {
        fprintf (stderr, "%s: cannot read\n", path);
        free (data);
        return -1;
    }
    //  An exactly-sized copy, so the sanitizers catch reads past the end.
    uint8_t *exact = malloc (size ? size : 1);
    if (exact == NULL) {
        free (data);
        return -1;
    }
    memcpy (exact, data, size);
    free (data);
    LLVMFuzzerTestOneInput (exact, size);
    free (exact);
    return 0;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

//  Runs every regular file of dir; adds to *count. Returns failures.
static int
s_run_dir (const char *dir, size_t *count)
{
    DIR *handle = opendir (dir);
    if (handle == NULL) {
        fprintf (stderr, "%s: %s\n", dir, strerror (errno));
        return 1;
    }
    char **names = NULL;
    size_t used = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (used == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **bigger = realloc (names, capacity * sizeof *names);
            if (bigger == NULL)
                break;
            names = bigger;
        }
        names[used] = strdup (entry->d_name);
        if (names[used])
            used++;
    }
    closedir (handle);
    if (used > 0)
        qsort (names, used, sizeof *names, s_compare_names);

    int failures = 0;
    for (size_t i = 0; i < used; i++) {
        size_t length = strlen (dir) + strlen (names[i]) + 2;
        char *path = malloc (length);
        struct stat info;
        if (path) {
            snprintf (path, length, "%s/%s", dir, names[i]);
            if (stat (path, &info) == 0 && S_ISREG (info.st_mode)) {
                if (s_run_file (path) == 0)
                    (*count)++;
                else
                    failures++;
            }
        } else
            failures++;
        free (path);
        free (names[i]);
    }
    free (names);
    return failures;
}

int
main (int argc, char *argv[])
{
    const char *program = strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0];
    if (argc < 2) {
        fprintf (stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", program);
        return 2;
    }
    size_t count = 0;
    int failures = 0;
    for (int i = 1; i < argc; i++) {
        struct stat info;
        if (stat (argv[i], &info) != 0) {
            fprintf (stderr, "%s: %s\n", argv[i], strerror (errno));
            failures++;
        } else if (S_ISDIR (info.st_mode))
            failures += s_run_dir (argv[i], &count);
        else if (s_run_file (argv[i]) == 0)
            count++;
        else
            failures++;
    }
    printf ("%s: %zu inputs\n", program, count);
    if (count == 0)
        fprintf (stderr, "%s: no inputs found\n", program);
    return failures == 0 && count > 0 ? 0 : 1;
}
