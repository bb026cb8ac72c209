/*  bf_cmdargs — strict parsing of control command arguments (period,
    run_id, ids), shared by the services that execute commands and by
    billctl, which checks them before it sends.

    The rule: an argument either has exactly the documented form or the
    command fails permanently with a reason that names the argument.
    Nothing is skipped, trimmed or repaired: "1 32" is not 132, " 7" is not
    7, "+7", "07", "7," and "7,,8" are not ids. An id is a decimal integer
    from 1 to INT64_MAX without sign, spaces or leading zeros; a list is
    1..BF_CMDARGS_MAX_IDS such ids joined by single commas, each id once.
    A period is "YYYY-MM" (bf_period_parse). The reason quotes the value
    through bf_text_clip, so it is well-formed UTF-8 of bounded size, fit
    for a log line, a reply and a database row. Pure functions; thread-safe.  */

#ifndef BF_CMDARGS_H_INCLUDED
#define BF_CMDARGS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "bf_date.h"
#include "billflow.pb-c.h"

#define BF_CMDARGS_MAX_IDS 1000

/*  Parses text (the value of argument name) as one id into *id. Returns 0,
    or -1 with a reason naming name in err.  */
int bf_cmdargs_id (const char *name, const char *text, int64_t *id, char *err, size_t errsize);

/*  Parses text (the value of argument name) as an id list into ids (room
    for max entries) and sets *count. Returns 0, or -1 with a reason naming
    name in err (*count is then 0).  */
int bf_cmdargs_id_list (const char *name, const char *text, int64_t *ids, size_t max,
                        size_t *count, char *err, size_t errsize);

/*  Parses text (the value of argument name) as a period. Returns 0, or -1
    with a reason naming name in err.  */
int bf_cmdargs_period (const char *name, const char *text, bf_period_t *period, char *err,
                       size_t errsize);

/*  Parses text (the value of argument name) as a local time
    "YYYY-MM-DDTHH:MM" (a real date, 00:00-23:59) into *minutes, minutes
    since 1970-01-01T00:00 of the same clock. Returns 0, or -1 with a
    reason naming name in err.  */
int bf_cmdargs_local_time (const char *name, const char *text, int64_t *minutes, char *err,
                           size_t errsize);

/*  Checks the n argument keys of a command of verb: each must be one of
    allowed (a NULL-terminated list) and appear once. Returns 0, or -1
    with a reason naming the first offending key in err.  */
int bf_cmdargs_keys (const char *verb, const char *const *keys, size_t n,
                     const char *const *allowed, char *err, size_t errsize);

/*  bf_cmdargs_keys over the arguments of cmd (verb named by cmd->verb).  */
int bf_cmdargs_check (const Billflow__Command *cmd, const char *const *allowed, char *err,
                      size_t errsize);

#endif
