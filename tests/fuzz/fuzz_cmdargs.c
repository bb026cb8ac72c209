/*  fuzz_cmdargs — fuzz target for command argument parsing
    (bf_cmdargs_id, bf_cmdargs_id_list, bf_cmdargs_period), for libFuzzer
    or the standalone driver in fuzz_main.c.

    Input format (the seed corpus in corpus/cmdargs/ uses it too): the
    whole input is one argument value, NUL bytes and all (a value ends at
    the first NUL, as a protobuf string handed to C does). Every parser sees
    it.

    Besides "no crash, no leak", the target checks the contract: a rejected
    value leaves a reason that names the argument and is well-formed UTF-8;
    an accepted id or list prints back to exactly the input (so nothing
    was skipped: "1 32" is never 132), and a list holds no id twice; an
    accepted period formats back to the input. A broken contract abort()s.  */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_cmdargs.h"
#include "bf_text.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_require (bool condition)
{
    if (!condition)
        abort ();
}

static void
s_check_reason (const char *err, const char *name)
{
    s_require (strstr (err, name) != NULL);
    s_require (bf_text_utf8_valid (err, strlen (err)));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    if (!text)
        return 0;
    memcpy (text, data, size);
    text[size] = 0;
    size_t len = strlen (text);
    char err[512];

    int64_t id;
    if (bf_cmdargs_id ("run_id", text, &id, err, sizeof err) == 0) {
        char back[32];
        snprintf (back, sizeof back, "%" PRId64, id);
        s_require (id > 0 && strcmp (back, text) == 0);
    } else
        s_check_reason (err, "run_id");

    static int64_t ids[BF_CMDARGS_MAX_IDS];
    size_t count = 0;
    if (bf_cmdargs_id_list ("ids", text, ids, BF_CMDARGS_MAX_IDS, &count, err, sizeof err) == 0) {
        s_require (count >= 1 && count <= BF_CMDARGS_MAX_IDS);
        char *back = malloc (len + 1);
        s_require (back != NULL);
        size_t used = 0;
        for (size_t i = 0; i < count; i++) {
            s_require (ids[i] > 0);
            for (size_t j = 0; j < i; j++)
                s_require (ids[j] != ids[i]);
            int n = snprintf (back + used, len + 1 - used, "%s%" PRId64, i ? "," : "", ids[i]);
            s_require (n > 0 && used + (size_t)n <= len);
            used += (size_t)n;
        }
        s_require (used == len && memcmp (back, text, len) == 0);
        free (back);
    } else {
        s_require (count == 0);
        s_check_reason (err, "ids");
    }

    bf_period_t period;
    if (bf_cmdargs_period ("period", text, &period, err, sizeof err) == 0) {
        char back[8];
        s_require (strcmp (bf_period_format (period, back), text) == 0);
    } else
        s_check_reason (err, "period");

    free (text);
    return 0;
}
