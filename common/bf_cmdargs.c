/*  bf_cmdargs — strict command argument parsing (see bf_cmdargs.h).  */

#include <stdbool.h>
#include <string.h>

#include "bf_cmdargs.h"
#include "bf_log.h"
#include "bf_text.h"

/*  Bytes of a value quoted in a reason.  */
#define S_SHOWN 40

/*  Reads one id from *p up to a ',' or the end; advances *p past it.
    Returns 0 or -1 (not an id).  */
static int
s_id_at (const char **p, int64_t *id)
{
    const char *s = *p;
    if (*s < '1' || *s > '9')
        return -1; /* empty, sign, space, leading zero, anything else */
    int64_t value = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        int digit = *s - '0';
        if (value > (INT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *p = s;
    *id = value;
    return 0;
}

int
bf_cmdargs_id (const char *name, const char *text, int64_t *id, char *err, size_t errsize)
{
    char shown[BF_TEXT_CLIP_SHORT];
    if (!text)
        return bf_err_set (err, errsize, "%s is missing", name);
    const char *p = text;
    if (s_id_at (&p, id) != 0 || *p != '\0')
        return bf_err_set (err, errsize,
                           "%s must be a positive decimal integer (no sign, spaces or leading"
                           " zeros), not '%s'",
                           name, bf_text_clip (shown, sizeof shown, text, S_SHOWN));
    return 0;
}

int
bf_cmdargs_id_list (const char *name, const char *text, int64_t *ids, size_t max,
                    size_t *count, char *err, size_t errsize)
{
    char shown[BF_TEXT_CLIP_SHORT];
    *count = 0;
    if (!text || !*text)
        return bf_err_set (err, errsize, "%s is empty: give ids separated by commas (1,2,3)",
                           name);
    if (max > BF_CMDARGS_MAX_IDS)
        max = BF_CMDARGS_MAX_IDS;
    const char *p = text;
    size_t n = 0;
    for (;;) {
        int64_t id;
        if (s_id_at (&p, &id) != 0 || (*p != ',' && *p != '\0'))
            return bf_err_set (err, errsize,
                               "%s must be positive decimal integers separated by commas (no"
                               " spaces, signs, leading zeros or empty items), not '%s'",
                               name, bf_text_clip (shown, sizeof shown, text, S_SHOWN));
        if (n == max)
            return bf_err_set (err, errsize, "%s holds more than %zu ids", name, max);
        for (size_t i = 0; i < n; i++)
            if (ids[i] == id)
                return bf_err_set (err, errsize, "%s names id %lld twice", name,
                                   (long long)id);
        ids[n++] = id;
        if (*p == '\0')
            break;
        p++; /* the comma; an id must follow */
    }
    *count = n;
    return 0;
}

int
bf_cmdargs_period (const char *name, const char *text, bf_period_t *period, char *err,
                   size_t errsize)
{
    char shown[BF_TEXT_CLIP_SHORT];
    if (!text)
        return bf_err_set (err, errsize, "%s is missing", name);
    if (bf_period_parse (text, period) != 0)
        return bf_err_set (err, errsize, "%s: '%s' is not a period (YYYY-MM)", name,
                           bf_text_clip (shown, sizeof shown, text, S_SHOWN));
    return 0;
}

int
bf_cmdargs_local_time (const char *name, const char *text, int64_t *minutes, char *err,
                       size_t errsize)
{
    char shown[BF_TEXT_CLIP_SHORT];
    char date[11] = "";
    int of_day = 0;
    bf_day_t day = 0;
    bool form = text && strlen (text) == 16 && text[10] == 'T';
    if (form)
        memcpy (date, text, 10);
    if (!form || bf_date_parse (date, &day) != 0 || bf_time_parse (text + 11, &of_day) != 0)
        return bf_err_set (err, errsize, "%s: expected YYYY-MM-DDTHH:MM (local time), got '%s'",
                           name, bf_text_clip (shown, sizeof shown, text ? text : "", S_SHOWN));
    *minutes = (int64_t)day * 1440 + of_day;
    return 0;
}

int
bf_cmdargs_keys (const char *verb, const char *const *keys, size_t n,
                 const char *const *allowed, char *err, size_t errsize)
{
    char shown[BF_TEXT_CLIP_SHORT];
    for (size_t i = 0; i < n; i++) {
        const char *key = keys[i] ? keys[i] : "";
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp (*a, key) == 0;
        if (!known)
            return bf_err_set (err, errsize, "%s takes no argument '%s'", verb,
                               bf_text_clip (shown, sizeof shown, key, S_SHOWN));
        for (size_t j = 0; j < i; j++)
            if (keys[j] && strcmp (keys[j], key) == 0)
                return bf_err_set (err, errsize, "%s: argument '%s' is given twice", verb,
                                   bf_text_clip (shown, sizeof shown, key, S_SHOWN));
    }
    return 0;
}

int
bf_cmdargs_check (const Billflow__Command *cmd, const char *const *allowed, char *err,
                  size_t errsize)
{
    char verb[BF_TEXT_CLIP_SHORT];
    bf_text_clip (verb, sizeof verb, cmd->verb, S_SHOWN);
    const char *keys[16];
    if (cmd->n_args > sizeof keys / sizeof keys[0])
        return bf_err_set (err, errsize, "%s takes at most %zu arguments, not %zu", verb,
                           sizeof keys / sizeof keys[0], cmd->n_args);
    for (size_t i = 0; i < cmd->n_args; i++)
        keys[i] = cmd->args[i] ? cmd->args[i]->key : NULL;
    return bf_cmdargs_keys (verb, keys, cmd->n_args, allowed, err, errsize);
}
