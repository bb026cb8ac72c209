/*  bf_route — the console's routes and input checks (bf_route.h).  */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_client.h"
#include "bf_cmdargs.h"
#include "bf_log.h"
#include "bf_route.h"
#include "bf_text.h"

/*  How far from the console's clock a command's "at" may be, in minutes:
    notify's window (bf_notify_cmd.c) widened by a day each way.  */
#define S_AT_PAST_MIN  (2 * 1440)
#define S_AT_AHEAD_MIN (367 * 1440)

/*  The verb of "/api/query/VERB" with the right kind, or NULL.  */
static const bf_verb_t *
s_verb (const char *name, bool query)
{
    const bf_verb_t *verb = bf_verb_find (name);
    return verb && verb->query == query ? verb : NULL;
}

int
bf_route_match (const char *method, const char *url, bf_route_t *route)
{
    memset (route, 0, sizeof *route);
    if (!url || strnlen (url, BF_ROUTE_URL_MAX + 1) > BF_ROUTE_URL_MAX)
        return 414;
    bool get = !strcmp (method, "GET") || !strcmp (method, "HEAD");
    bool post = !strcmp (method, "POST");
    bool want_post;
    route->api = !strncmp (url, "/api/", 5);
    if (!strcmp (url, "/") || !strcmp (url, "/index.html")) {
        route->kind = BF_ROUTE_INDEX;
        want_post = false;
    } else if (!strncmp (url, "/static/", 8) && url[8]) {
        route->kind = BF_ROUTE_STATIC;
        route->name = url + 8;
        want_post = false;
    } else if (!strcmp (url, "/api/login")) {
        route->kind = BF_ROUTE_LOGIN;
        want_post = true;
    } else if (!strcmp (url, "/api/logout")) {
        route->kind = BF_ROUTE_LOGOUT;
        want_post = true;
    } else if (!strcmp (url, "/api/me")) {
        route->kind = BF_ROUTE_ME;
        want_post = false;
    } else if (!strcmp (url, "/api/overview")) {
        route->kind = BF_ROUTE_OVERVIEW;
        want_post = false;
    } else if (!strcmp (url, "/api/events")) {
        route->kind = BF_ROUTE_EVENTS;
        want_post = false;
    } else if (!strncmp (url, "/api/query/", 11) && (route->verb = s_verb (url + 11, true))) {
        route->kind = BF_ROUTE_QUERY;
        want_post = post; /* either */
    } else if (!strncmp (url, "/api/command/", 13) && (route->verb = s_verb (url + 13, false))) {
        route->kind = BF_ROUTE_COMMAND;
        want_post = true;
    } else
        return 404;
    if (want_post ? !post : !get)
        return 405;
    route->post = post;
    return 0;
}

static bool
s_key_ok (const char *key, size_t len)
{
    if (len < 1 || len > BF_ROUTE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_'))
            return false;
    return true;
}

int
bf_route_arg_add (bf_route_args_t *args, const char *key, size_t key_len, const char *value,
                  size_t value_len, char *err, size_t errsize)
{
    if (!key || !s_key_ok (key, key_len))
        return bf_err_set (err, errsize, "argument names are 1-%d of a-z and _", BF_ROUTE_KEY_MAX);
    char shown[BF_ROUTE_KEY_MAX + 1];
    memcpy (shown, key, key_len);
    shown[key_len] = 0;
    if (!value)
        return bf_err_set (err, errsize, "argument %s has no value (%s=VALUE)", shown, shown);
    if (value_len > BF_ROUTE_VALUE_MAX)
        return bf_err_set (err, errsize, "the value of %s is longer than %d bytes", shown,
                           BF_ROUTE_VALUE_MAX);
    if (!bf_text_utf8_valid (value, value_len))
        return bf_err_set (err, errsize, "the value of %s is not valid UTF-8", shown);
    for (size_t i = 0; i < value_len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7F)
            return bf_err_set (err, errsize, "the value of %s holds a control character", shown);
    for (size_t i = 0; i < args->count; i++)
        if (!strcmp (args->keys[i], shown))
            return bf_err_set (err, errsize, "argument %s is given twice", shown);
    if (args->count == BF_ROUTE_ARGS_MAX)
        return bf_err_set (err, errsize, "more than %d arguments", BF_ROUTE_ARGS_MAX);
    memcpy (args->keys[args->count], shown, key_len + 1);
    memcpy (args->values[args->count], value, value_len);
    args->values[args->count][value_len] = 0;
    args->count++;
    return 0;
}

void
bf_route_arg_arrays (const bf_route_args_t *args, const char *keys[BF_ROUTE_ARGS_MAX],
                     const char *values[BF_ROUTE_ARGS_MAX])
{
    for (size_t i = 0; i < args->count; i++) {
        keys[i] = args->keys[i];
        values[i] = args->values[i];
    }
}

int
bf_route_body_check (const char *body, size_t len, size_t max, char *err, size_t errsize)
{
    if (len > max)
        return bf_err_set (err, errsize, "the body is larger than %zu bytes", max);
    if (!bf_text_utf8_valid (body, len))
        return bf_err_set (err, errsize, "the body is not valid UTF-8");
    return 0;
}

/*  Parses body as one JSON object. NULL with a reason in err.  */
static json_t *
s_object (const char *body, size_t len, char *err, size_t errsize)
{
    if (!bf_text_utf8_valid (body, len)) {
        bf_err_set (err, errsize, "the body is not valid UTF-8");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /*  jansson quotes the token it stopped at ("... near 'TOKEN'"):
            a password or a contact. The reason (logged, answered) ends
            before it.  */
        char *near = strstr (jerr.text, " near ");
        if (near)
            *near = 0;
        bf_err_set (err, errsize, "the body is not JSON: %s (at byte %d)", jerr.text,
                    jerr.position);
        return NULL;
    }
    if (!json_is_object (root)) {
        json_decref (root);
        bf_err_set (err, errsize, "the body must be a JSON object");
        return NULL;
    }
    return root;
}

/*  Copies the string member key of root into out (at most max bytes).  */
static int
s_string (json_t *root, const char *key, char *out, size_t max, char *err, size_t errsize)
{
    json_t *value = json_object_get (root, key);
    if (!json_is_string (value))
        return bf_err_set (err, errsize, "\"%s\" must be a string", key);
    size_t len = json_string_length (value);
    if (len == 0 || len > max || memchr (json_string_value (value), 0, len))
        return bf_err_set (err, errsize, "\"%s\" must be 1 to %zu bytes, without NUL", key, max);
    memcpy (out, json_string_value (value), len + 1);
    return 0;
}

/*  Refuses any member of root that is not in the NULL-terminated list.  */
static int
s_only (json_t *root, const char *const *allowed, char *err, size_t errsize)
{
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = !strcmp (key, allowed[i]);
        if (!known) {
            /*  Named only when it is a plain word: a member name could
                be anything typed, a contact too.  */
            bool word = strlen (key) <= 32 && *key;
            for (const char *c = key; *c && word; c++)
                word = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
                       || (*c >= '0' && *c <= '9') || *c == '_';
            return word ? bf_err_set (err, errsize, "unexpected member \"%s\"", key)
                        : bf_err_set (err, errsize, "unexpected member (its name not shown)");
        }
    }
    return 0;
}

int
bf_route_login_body (const char *body, size_t len, char name[65], char password[1025], char *err,
                     size_t errsize)
{
    static const char *const allowed[] = { "name", "password", NULL };
    json_t *root = s_object (body, len, err, errsize);
    if (!root)
        return -1;
    int rc = s_only (root, allowed, err, errsize);
    if (rc == 0)
        rc = s_string (root, "name", name, 64, err, errsize);
    if (rc == 0)
        rc = s_string (root, "password", password, 1024, err, errsize);
    json_decref (root);
    return rc;
}

static bool
s_command_id_ok (const char *id)
{
    size_t len = strlen (id);
    if (len < 1 || len > BF_ROUTE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
              || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/*  The members of the "args" object into args.  */
static int
s_command_args (json_t *object, bf_route_args_t *args, char *err, size_t errsize)
{
    if (!object)
        return 0;
    if (!json_is_object (object))
        return bf_err_set (err, errsize, "\"args\" must be an object of strings");
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value)
    {
        char number[32];
        const char *text;
        size_t len;
        if (json_is_string (value)) {
            text = json_string_value (value);
            len = json_string_length (value);
        } else if (json_is_integer (value)) {
            len = (size_t)snprintf (number, sizeof number, "%" JSON_INTEGER_FORMAT,
                                    json_integer_value (value));
            text = number;
        } else
            return bf_err_set (err, errsize, "every value of \"args\" must be a string");
        if (bf_route_arg_add (args, key, strlen (key), text, len, err, errsize) != 0)
            return -1;
    }
    return 0;
}

/*  A body of the members "args" and, when command_id is not NULL,
    "command_id" (required, checked): the arguments into args.  */
static int
s_args_body (const char *body, size_t len, char *command_id, bf_route_args_t *args, char *err,
             size_t errsize)
{
    static const char *const with_id[] = { "command_id", "args", NULL };
    static const char *const args_only[] = { "args", NULL };
    memset (args, 0, sizeof *args);
    json_t *root = s_object (body, len, err, errsize);
    if (!root)
        return -1;
    int rc = s_only (root, command_id ? with_id : args_only, err, errsize);
    if (rc == 0 && command_id) {
        rc = s_string (root, "command_id", command_id, BF_ROUTE_ID_MAX, err, errsize);
        if (rc == 0 && !s_command_id_ok (command_id))
            rc = bf_err_set (err, errsize, "\"command_id\" must be 1-%d of A-Z a-z 0-9 . _ : -",
                             BF_ROUTE_ID_MAX);
    }
    if (rc == 0)
        rc = s_command_args (json_object_get (root, "args"), args, err, errsize);
    json_decref (root);
    return rc;
}

int
bf_route_command_body (const char *body, size_t len, char command_id[BF_ROUTE_ID_MAX + 1],
                       bf_route_args_t *args, char *err, size_t errsize)
{
    return s_args_body (body, len, command_id, args, err, errsize);
}

int
bf_route_command_args_check (const bf_route_args_t *args, int64_t now_ms, char *err, size_t errsize)
{
    /*  bf_cmdargs' reasons quote the value: the verdict is kept, the reason
        written here names the key only.  */
    char why[256];
    for (size_t i = 0; i < args->count; i++) {
        const char *key = args->keys[i], *value = args->values[i];
        if (!strcmp (key, "period")) {
            bf_period_t period;
            if (bf_cmdargs_period (key, value, &period, why, sizeof why) != 0)
                return bf_err_set (err, errsize, "period must be a month YYYY-MM");
        } else if (!strcmp (key, "run_id")) {
            int64_t id;
            if (bf_cmdargs_id (key, value, &id, why, sizeof why) != 0)
                return bf_err_set (err, errsize,
                                   "run_id must be a positive decimal integer (no sign, spaces"
                                   " or leading zeros, at most 19 digits)");
        } else if (!strcmp (key, "ids")) {
            int64_t ids[BF_CMDARGS_MAX_IDS];
            size_t count;
            if (bf_cmdargs_id_list (key, value, ids, BF_CMDARGS_MAX_IDS, &count, why, sizeof why)
                != 0)
                return bf_err_set (err, errsize,
                                   "ids must be 1 to %d positive decimal integers (no sign,"
                                   " spaces or leading zeros, at most 19 digits) separated by"
                                   " commas, each once",
                                   BF_CMDARGS_MAX_IDS);
        } else if (!strcmp (key, "at")) {
            int64_t minutes;
            if (bf_cmdargs_local_time (key, value, &minutes, why, sizeof why) != 0)
                return bf_err_set (err, errsize,
                                   "at must be a local time YYYY-MM-DDTHH:MM (a real date,"
                                   " 00:00 to 23:59)");
            /*  Coarse: the console knows neither notify's UTC offset (at
                most 14 h either way) nor its clock; notify checks the
                exact window (a day back, 366 days ahead) with both.  */
            int64_t now_min = now_ms / 60000;
            if (minutes < now_min - S_AT_PAST_MIN || minutes > now_min + S_AT_AHEAD_MIN)
                return bf_err_set (err, errsize,
                                   "at is too far from now: a release is at most a day in the"
                                   " past and 366 days ahead");
        }
    }
    return 0;
}

int
bf_route_query_body (const char *body, size_t len, bf_route_args_t *args, char *err,
                     size_t errsize)
{
    return s_args_body (body, len, NULL, args, err, errsize);
}

bool
bf_route_refused (const Billflow__CommandReply *reply, const bf_verb_t *verb, const char *role)
{
    return reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED
           && !bf_verb_allowed (verb, role);
}

int
bf_route_query_status (const Billflow__CommandReply *reply, const bf_verb_t *verb, const char *role)
{
    switch (reply->status) {
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK:
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED:
            return 200;
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED:
            return bf_route_refused (reply, verb, role) ? 403 : 400;
        case BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED:
            return reply->retryable ? 503 : 400;
        default:
            return 503;
    }
}

char *
bf_route_command_json (const Billflow__CommandReply *reply)
{
    json_t *result = NULL;
    if (reply->result && *reply->result)
        result = json_loads (reply->result, JSON_DECODE_ANY, NULL);
    /*  FAILED stands for any status this console does not know: the page
        shows the error.  */
    const char *status = bf_client_status_name (reply->status);
    if (!strcmp (status, "UNSPECIFIED"))
        status = "FAILED";
    json_t *root
        = json_pack ("{s:s, s:o, s:s, s:b, s:b}", "status", status, "result",
                     result ? result : json_null (), "error", reply->error ? reply->error : "",
                     "replayed", (int)reply->replayed, "retryable", (int)reply->retryable);
    char *text = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    return text;
}

char *
bf_route_error_json (const char *message)
{
    char cut[520];
    bf_text_clip (cut, sizeof cut, message ? message : "", 512);
    json_t *root = json_pack ("{s:s}", "error", cut);
    char *text = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    return text;
}
