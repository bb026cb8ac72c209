/*  fuzz_keyring — fuzz target for the allowed-keys file (bf_keyring_load
    in common/bf_curve.c). Input: the file's bytes, written to a private
    0600 scratch file (the loader reads a path).

    Contract checked: a refused file gives NULL and a "path:line: reason"
    (or "path: reason") error; a loaded list finds each 40-character Z85
    word of the file either not at all or as an entry holding exactly that
    key, with a known role and NUL-terminated name and role.  */

#include <czmq.h>
#include <stdint.h>
#include <string.h>

#include "bf_curve.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *path = bf_fuzz_file (data, size);
    char err[512] = "";
    bf_keyring_t *ring = bf_keyring_load (path, err, sizeof err);
    if (!ring) {
        bf_fuzz_require (strncmp (err, path, strlen (path)) == 0 && strlen (err) > strlen (path));
        return 0;
    }
    size_t entries = bf_keyring_size (ring);
    char *words[1], *buffer;
    bf_fuzz_split (data, size, words, 1, &buffer);
    size_t found = 0;
    char *save = NULL;
    for (char *word = strtok_r (words[0], " \t\r\n\v\f", &save); word;
         word = strtok_r (NULL, " \t\r\n\v\f", &save)) {
        uint8_t key[32];
        if (!bf_curve_key_parse (word, key))
            continue;
        const bf_keyring_entry_t *entry = bf_keyring_find (ring, key);
        if (!entry)
            continue;
        found++;
        bf_fuzz_require (memcmp (entry->key, key, sizeof key) == 0);
        bf_fuzz_require (strcmp (entry->key_txt, word) == 0);
        bf_fuzz_require (memchr (entry->name, 0, sizeof entry->name) && entry->name[0]);
        bf_fuzz_require (memchr (entry->role, 0, sizeof entry->role));
        bf_fuzz_require (!strcmp (entry->role, "operator") || !strcmp (entry->role, "viewer")
                         || !strcmp (entry->role, "service"));
    }
    //  Every entry came from a word of the file.
    bf_fuzz_require (found >= entries);
    free (buffer);
    bf_keyring_destroy (&ring);
    bf_fuzz_require (ring == NULL);
    return 0;
}
