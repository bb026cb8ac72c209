/*  fuzz_billctl_args — fuzz target for billctl's command line parser
    (bf_billctl_parse in services/billctl/bf_billctl_args.c).
    Input: the arguments after the program name, separated by NUL bytes
    (at most 32; an input with no NUL is one argument).

    Contract checked: the result is 0 or BF_BILLCTL_EXIT_USAGE; a refusal
    has a one-line reason; an accepted line names a known command, at most
    BF_BILLCTL_MAX_ARGS request arguments each with key and value, and
    every string it returns is a NUL-terminated string; the help text of
    the command prints. argv is never modified.  */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bf_billctl.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define S_MAX_ARGS 32

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *parts[S_MAX_ARGS], *buffer;
    size_t count = bf_fuzz_split (data, size, parts, S_MAX_ARGS, &buffer);
    //  Each argument its own exact heap copy, so over-reads are caught.
    char *argv[S_MAX_ARGS + 2];
    char *shadow[S_MAX_ARGS + 2];
    argv[0] = strdup ("billctl");
    for (size_t i = 0; i < count; i++)
        argv[i + 1] = strdup (parts[i]);
    argv[count + 1] = NULL;
    for (size_t i = 0; i <= count; i++) {
        bf_fuzz_require (argv[i] != NULL);
        shadow[i] = strdup (argv[i]);
        bf_fuzz_require (shadow[i] != NULL);
    }

    bf_billctl_opts_t opts;
    char err[256];
    memset (err, 'x', sizeof err);
    int rc = bf_billctl_parse ((int)count + 1, argv, &opts, err, sizeof err);
    bf_fuzz_require (rc == 0 || rc == BF_BILLCTL_EXIT_USAGE);
    if (rc != 0) {
        bf_fuzz_require (memchr (err, 0, sizeof err) && err[0] && !strchr (err, '\n'));
    } else {
        bf_fuzz_require (opts.cmd < BF_BILLCTL_COUNT);
        bf_fuzz_require (opts.nargs <= BF_BILLCTL_MAX_ARGS);
        for (size_t i = 0; i < opts.nargs; i++)
            bf_fuzz_require (opts.keys[i] && opts.values[i] && strlen (opts.keys[i]) > 0
                             && strlen (opts.values[i]) < 1u << 20);
        const char *strings[] = { opts.config_path, opts.control, opts.server_key,
                                  opts.key_file, opts.timeout, opts.retries, opts.command_id,
                                  opts.log_level, opts.period, opts.name, opts.dir, opts.run_id,
                                  opts.ids, opts.channel, opts.limit, opts.id, opts.state,
                                  opts.target, opts.actor, opts.interval, opts.req_target,
                                  opts.req_verb };
        for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
            if (strings[i])
                (void)strlen (strings[i]);
        char *help = NULL;
        size_t help_size = 0;
        FILE *out = open_memstream (&help, &help_size);
        bf_fuzz_require (out != NULL);
        bf_billctl_help (out, opts.cmd);
        bf_fuzz_require (fclose (out) == 0 && help_size > 0);
        free (help);
        bf_fuzz_require (bf_billctl_synopsis (opts.cmd) != NULL);
    }
    for (size_t i = 0; i <= count; i++) {
        bf_fuzz_require (strcmp (argv[i], shadow[i]) == 0);
        free (argv[i]);
        free (shadow[i]);
    }
    free (buffer);
    return 0;
}
