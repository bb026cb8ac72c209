/*  Unit: the migrations compiled into the binaries are exactly the files of
    db/, in order, with the text on disk (db/meson.build lists them by hand).  */

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bf_migrate.h"

static int
s_cmp (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

static void
test_embedded_migrations_match_db_dir (void **state)
{
    (void)state;
    const char *root = getenv ("BF_SOURCE_ROOT");
    assert_non_null (root);
    char path[1024];
    snprintf (path, sizeof path, "%s/db", root);
    DIR *dir = opendir (path);
    assert_non_null (dir);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir (dir)) != NULL && n < 256) {
        size_t len = strlen (e->d_name);
        if (len > 4 && strcmp (e->d_name + len - 4, ".sql") == 0)
            names[n++] = strdup (e->d_name);
    }
    closedir (dir);
    qsort (names, n, sizeof names[0], s_cmp);
    assert_int_equal (n, bf_migrations_count);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal (names[i], bf_migrations[i].name);
        /*  Numbered 001_, 002_, ... without gaps.  */
        char prefix[24];
        snprintf (prefix, sizeof prefix, "%03zu_", i + 1);
        assert_memory_equal (names[i], prefix, 4);
        snprintf (path, sizeof path, "%s/db/%s", root, names[i]);
        FILE *f = fopen (path, "rb");
        assert_non_null (f);
        fseek (f, 0, SEEK_END);
        long size = ftell (f);
        fseek (f, 0, SEEK_SET);
        char *text = malloc ((size_t)size + 1);
        assert_int_equal (fread (text, 1, (size_t)size, f), (size_t)size);
        text[size] = 0;
        fclose (f);
        assert_string_equal (text, bf_migrations[i].sql);
        free (text);
        free (names[i]);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_embedded_migrations_match_db_dir),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
