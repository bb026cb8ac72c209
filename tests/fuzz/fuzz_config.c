/*  fuzz_config — fuzz target for the config file reader
    (bf_config_load_file in common/bf_config.c). Input: the file's bytes,
    written to a private 0600 scratch file (the reader reads a path).

    Contract checked: a refused file gives -1 and a reason naming the file;
    an accepted one dumps (bf_config_dump) one line per setting, and that
    dump, read back as a config file (secret lines left out: the dump
    never shows them), gives every non-secret setting the same value.  */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bf_config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static bool
s_same_values (const bf_config_t *a, const bf_config_t *b)
{
    for (size_t i = 0; i < bf_settings_count (); i++) {
        const bf_setting_t *setting = bf_settings_get (i);
        if (setting->secret)
            continue;
        switch (setting->type) {
            case BF_CFG_STRING:
            case BF_CFG_ENUM:
                if (strcmp (bf_config_str (a, setting->key), bf_config_str (b, setting->key)))
                    return false;
                break;
            case BF_CFG_INT:
                if (bf_config_int (a, setting->key) != bf_config_int (b, setting->key))
                    return false;
                break;
            case BF_CFG_BOOL:
                if (bf_config_bool (a, setting->key) != bf_config_bool (b, setting->key))
                    return false;
                break;
        }
    }
    return true;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *path = bf_fuzz_file (data, size);
    bf_config_t *config = bf_config_new ();
    bf_fuzz_require (config != NULL);
    char err[512] = "";
    int rc = bf_config_load_file (config, path, err, sizeof err);
    if (rc != 0) {
        bf_fuzz_require (rc == -1 && strstr (err, path) != NULL);
        bf_config_destroy (&config);
        return 0;
    }
    char *dump = NULL;
    size_t dump_size = 0;
    FILE *out = open_memstream (&dump, &dump_size);
    bf_fuzz_require (out != NULL);
    bf_config_dump (config, out);
    bf_fuzz_require (fclose (out) == 0);

    //  The dump without its secret lines, as a config file again.
    char *again = malloc (dump_size + 1);
    bf_fuzz_require (again != NULL);
    size_t used = 0, lines = 0;
    for (char *line = dump; line < dump + dump_size;) {
        char *end = memchr (line, '\n', (size_t)(dump + dump_size - line));
        bf_fuzz_require (end != NULL);
        lines++;
        size_t len = (size_t)(end - line) + 1;
        char key[128];
        bf_fuzz_require (sscanf (line, "%127s", key) == 1);
        const bf_setting_t *setting = bf_settings_find (key);
        bf_fuzz_require (setting != NULL);
        if (!setting->secret) {
            memcpy (again + used, line, len);
            used += len;
        }
        line = end + 1;
    }
    bf_fuzz_require (lines == bf_settings_count ());
    const char *path2 = bf_fuzz_file ((const uint8_t *)again, used);
    bf_config_t *reread = bf_config_new ();
    bf_fuzz_require (reread != NULL);
    bf_fuzz_require (bf_config_load_file (reread, path2, err, sizeof err) == 0);
    bf_fuzz_require (s_same_values (config, reread));

    bf_config_destroy (&reread);
    free (again);
    free (dump);
    bf_config_destroy (&config);
    return 0;
}
