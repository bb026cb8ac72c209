/*  test_console_routes — the console's routes and input checks
    (services/console/bf_route.c): methods and paths, query-string
    arguments, the login and command bodies (size, UTF-8, shape), how
    control's answers become statuses, and the embedded files
    (bf_assets.c) against services/console/web/.  */

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "bf_assets.h"
#include "bf_date.h"
#include "bf_overview.h"
#include "bf_route.h"

static int
s_match (const char *method, const char *url, bf_route_t *route)
{
    return bf_route_match (method, url, route);
}

static void
test_match (void **state)
{
    (void)state;
    bf_route_t r;
    assert_int_equal (s_match ("GET", "/", &r), 0);
    assert_int_equal (r.kind, BF_ROUTE_INDEX);
    assert_false (r.api);
    assert_int_equal (s_match ("HEAD", "/", &r), 0);
    assert_int_equal (s_match ("GET", "/static/app.js", &r), 0);
    assert_int_equal (r.kind, BF_ROUTE_STATIC);
    assert_string_equal (r.name, "app.js");
    assert_int_equal (s_match ("GET", "/static/", &r), 404);
    assert_int_equal (s_match ("POST", "/api/login", &r), 0);
    assert_int_equal (r.kind, BF_ROUTE_LOGIN);
    assert_int_equal (s_match ("GET", "/api/login", &r), 405);
    assert_true (r.api);
    assert_int_equal (s_match ("POST", "/api/logout", &r), 0);
    assert_int_equal (s_match ("GET", "/api/me", &r), 0);
    assert_int_equal (r.kind, BF_ROUTE_ME);
    assert_int_equal (s_match ("POST", "/api/me", &r), 405);
    assert_int_equal (s_match ("GET", "/api/overview", &r), 0);
    assert_int_equal (s_match ("GET", "/api/events", &r), 0);
    assert_int_equal (r.kind, BF_ROUTE_EVENTS);
    /*  Every query verb under /api/query/, every command under /api/command/,
        and never the other way round.  */
    size_t queries = 0, commands = 0;
    for (size_t i = 0; bf_verb_at (i); i++) {
        const bf_verb_t *verb = bf_verb_at (i);
        char url[128];
        snprintf (url, sizeof url, "/api/query/%s", verb->verb);
        assert_int_equal (s_match ("GET", url, &r), verb->query ? 0 : 404);
        if (verb->query) {
            assert_int_equal (r.kind, BF_ROUTE_QUERY);
            assert_ptr_equal (r.verb, verb);
            assert_false (r.post);
            /*  A query may be POSTed (its arguments in the body).  */
            assert_int_equal (s_match ("POST", url, &r), 0);
            assert_int_equal (r.kind, BF_ROUTE_QUERY);
            assert_true (r.post);
            assert_int_equal (s_match ("PUT", url, &r), 405);
            queries++;
        }
        snprintf (url, sizeof url, "/api/command/%s", verb->verb);
        assert_int_equal (s_match ("POST", url, &r), verb->query ? 404 : 0);
        if (!verb->query) {
            assert_int_equal (r.kind, BF_ROUTE_COMMAND);
            assert_int_equal (s_match ("GET", url, &r), 405);
            commands++;
        }
    }
    assert_true (queries >= 15);
    assert_true (commands >= 9);
    assert_int_equal (s_match ("GET", "/api/query/runs.list", &r), 0);
    assert_string_equal (r.verb->verb, "runs.list");
    /*  The Run page's chart reads run.rates: a query, for viewers too;
        not a command.  */
    assert_int_equal (s_match ("GET", "/api/query/run.rates", &r), 0);
    assert_string_equal (r.verb->verb, "run.rates");
    assert_true (bf_verb_allowed (r.verb, "viewer"));
    assert_int_equal (s_match ("POST", "/api/command/run.rates", &r), 404);
    assert_int_equal (s_match ("GET", "/api/query/", &r), 404);
    assert_int_equal (s_match ("GET", "/api/query/nope", &r), 404);
    assert_int_equal (s_match ("GET", "/api/query/runs.list/x", &r), 404);
    assert_int_equal (s_match ("GET", "/api/query/RUNS.LIST", &r), 404);
    assert_int_equal (s_match ("POST", "/api/command/run.start ", &r), 404);
    assert_int_equal (s_match ("GET", "/api/nothing", &r), 404);
    assert_true (r.api);
    assert_int_equal (s_match ("GET", "/nothing", &r), 404);
    assert_false (r.api);
    assert_int_equal (s_match ("DELETE", "/api/me", &r), 405);
    assert_int_equal (s_match ("PUT", "/api/command/run.start", &r), 405);
    char long_url[BF_ROUTE_URL_MAX + 16];
    memset (long_url, 'a', sizeof long_url - 1);
    long_url[0] = '/';
    long_url[sizeof long_url - 1] = 0;
    assert_int_equal (s_match ("GET", long_url, &r), 414);
}

/*  Adds key=value and asserts the outcome (part in the reason when
    refused).  */
static void
s_arg (bf_route_args_t *args, const char *key, const char *value, size_t value_len,
       const char *part)
{
    char err[256] = "";
    int rc = bf_route_arg_add (args, key, strlen (key), value, value_len, err, sizeof err);
    if (!part) {
        if (rc != 0)
            fail_msg ("%s refused: %s", key, err);
        return;
    }
    if (rc == 0)
        fail_msg ("%s accepted", key);
    if (!strstr (err, part))
        fail_msg ("reason '%s' lacks '%s'", err, part);
}

static void
test_args (void **state)
{
    (void)state;
    bf_route_args_t args;
    memset (&args, 0, sizeof args);
    s_arg (&args, "period", "2026-11", 7, NULL);
    s_arg (&args, "email", "kim@example.com", 15, NULL);
    s_arg (&args, "name", "김민수", strlen ("김민수"), NULL);
    assert_int_equal (args.count, 3);
    assert_string_equal (args.keys[0], "period");
    assert_string_equal (args.values[1], "kim@example.com");
    const char *keys[BF_ROUTE_ARGS_MAX], *values[BF_ROUTE_ARGS_MAX];
    bf_route_arg_arrays (&args, keys, values);
    assert_string_equal (keys[2], "name");
    assert_string_equal (values[2], "김민수");
    /*  Hostile keys.  */
    s_arg (&args, "Period", "x", 1, "argument names");
    s_arg (&args, "per-iod", "x", 1, "argument names");
    s_arg (&args, "period1", "x", 1, "argument names");
    s_arg (&args, "", "x", 1, "argument names");
    s_arg (&args, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x", 1, "argument names"); /* 33 */
    s_arg (&args, "p\xc3\xa9riod", "x", 1, "argument names");
    s_arg (&args, "period", "2026-12", 7, "given twice");
    /*  Hostile values.  */
    s_arg (&args, "limit", NULL, 0, "has no value");
    s_arg (&args, "limit", "\xff", 1, "not valid UTF-8");
    s_arg (&args, "limit", "\xc3", 1, "not valid UTF-8");
    s_arg (&args, "limit", "\xed\xa0\x80", 3, "not valid UTF-8"); /* a surrogate */
    s_arg (&args, "limit", "1\0002", 3, "control character");
    s_arg (&args, "limit", "a\nb", 3, "control character");
    char big[BF_ROUTE_VALUE_MAX + 2];
    memset (big, 'x', sizeof big);
    s_arg (&args, "limit", big, BF_ROUTE_VALUE_MAX + 1, "longer than");
    s_arg (&args, "limit", big, BF_ROUTE_VALUE_MAX, NULL);
    assert_int_equal (args.count, 4);
    /*  At most BF_ROUTE_ARGS_MAX.  */
    char key[8];
    for (size_t i = args.count; i < BF_ROUTE_ARGS_MAX; i++) {
        snprintf (key, sizeof key, "k%c", (char)('a' + i));
        s_arg (&args, key, "v", 1, NULL);
    }
    s_arg (&args, "zz", "v", 1, "more than");
    /*  The reason never quotes a value.  */
    char err[256];
    bf_route_args_t fresh;
    memset (&fresh, 0, sizeof fresh);
    assert_int_equal (
        bf_route_arg_add (&fresh, "email", 5, "kim@example.com\n", 16, err, sizeof err), -1);
    assert_null (strstr (err, "kim@"));
}

static void
test_body_check (void **state)
{
    (void)state;
    char err[256];
    assert_int_equal (bf_route_body_check ("{}", 2, 64, err, sizeof err), 0);
    assert_int_equal (bf_route_body_check ("{\"a\":\"\xff\"}", 9, 64, err, sizeof err), -1);
    assert_non_null (strstr (err, "not valid UTF-8"));
    assert_int_equal (bf_route_body_check ("0123456789", 10, 9, err, sizeof err), -1);
    assert_non_null (strstr (err, "larger than 9"));
}

static void
test_login_body (void **state)
{
    (void)state;
    char name[65], password[1025], err[256];
    const char *good = "{\"name\":\"kim\",\"password\":\"pa\\u00dfword\"}";
    assert_int_equal (bf_route_login_body (good, strlen (good), name, password, err, sizeof err),
                      0);
    assert_string_equal (name, "kim");
    assert_string_equal (password, "pa\xc3\x9fword");
    static const struct {
        const char *body, *part;
    } bad[] = {
        { "", "not JSON" },
        { "[]", "a JSON object" },
        { "{\"name\":\"kim\"}", "\"password\" must be a string" },
        { "{\"name\":1,\"password\":\"x\"}", "\"name\" must be a string" },
        { "{\"name\":\"\",\"password\":\"x\"}", "\"name\" must be 1 to 64" },
        { "{\"name\":\"k\\u0000m\",\"password\":\"x\"}", "not allowed" },
        { "{\"name\":\"kim\",\"password\":\"x\",\"admin\":true}", "unexpected member" },
        { "{\"name\":\"kim\",\"name\":\"lee\",\"password\":\"x\"}", "not JSON" },
        { "{\"name\":\"kim\",\"password\":\"x\"", "not JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal (bf_route_login_body (bad[i].body, strlen (bad[i].body), name, password,
                                               err, sizeof err),
                          -1);
        if (!strstr (err, bad[i].part))
            fail_msg ("%s: reason '%s' lacks '%s'", bad[i].body, err, bad[i].part);
    }
    /*  Invalid UTF-8, and a name over 64 bytes.  */
    const char *bad_utf8 = "{\"name\":\"k\xffm\",\"password\":\"x\"}";
    assert_int_equal (
        bf_route_login_body (bad_utf8, strlen (bad_utf8), name, password, err, sizeof err), -1);
    assert_non_null (strstr (err, "not valid UTF-8"));
    char body[256];
    snprintf (body, sizeof body, "{\"name\":\"%065d\",\"password\":\"x\"}", 0);
    assert_int_equal (bf_route_login_body (body, strlen (body), name, password, err, sizeof err),
                      -1);
    /*  The reason never quotes the password.  */
    const char *secret = "{\"name\":\"kim\",\"password\":\"hunter2\",\"x\":1}";
    assert_int_equal (
        bf_route_login_body (secret, strlen (secret), name, password, err, sizeof err), -1);
    assert_null (strstr (err, "hunter2"));
}

/*  Asserts a command body (or with query, a query's POST body) is
    refused with part in the reason, which quotes no contact.  */
static void
s_body_refused (const char *body, bool query, const char *part)
{
    char id[BF_ROUTE_ID_MAX + 1], err[256] = "";
    bf_route_args_t args;
    int rc = query ? bf_route_query_body (body, strlen (body), &args, err, sizeof err)
                   : bf_route_command_body (body, strlen (body), id, &args, err, sizeof err);
    if (rc != -1)
        fail_msg ("%s: accepted", body);
    if (!strstr (err, part))
        fail_msg ("%s: reason '%s' lacks '%s'", body, err, part);
    if (strstr (err, "kim@example"))
        fail_msg ("%s: the reason quotes the contact: %s", body, err);
}

static void
test_command_body (void **state)
{
    (void)state;
    char id[BF_ROUTE_ID_MAX + 1], err[256];
    bf_route_args_t args;
    const char *good = "{\"command_id\":\"0b7e-11:x.y_z\",\"args\":{\"period\":\"2026-11\","
                       "\"limit\":10}}";
    assert_int_equal (bf_route_command_body (good, strlen (good), id, &args, err, sizeof err), 0);
    assert_string_equal (id, "0b7e-11:x.y_z");
    assert_int_equal (args.count, 2);
    assert_string_equal (args.keys[0], "period");
    assert_string_equal (args.values[1], "10");
    const char *no_args = "{\"command_id\":\"abc\"}";
    assert_int_equal (bf_route_command_body (no_args, strlen (no_args), id, &args, err, sizeof err),
                      0);
    assert_int_equal (args.count, 0);
    static const struct {
        const char *body, *part;
    } bad[] = {
        { "{}", "\"command_id\" must be a string" },
        { "{\"command_id\":\"a b\"}", "\"command_id\" must be 1-128" },
        { "{\"command_id\":\"a/b\"}", "\"command_id\" must be 1-128" },
        { "{\"command_id\":\"a\",\"args\":[]}", "\"args\" must be an object" },
        { "{\"command_id\":\"a\",\"args\":{\"period\":{\"x\":1}}}", "must be a string" },
        { "{\"command_id\":\"a\",\"args\":{\"period\":[\"2026-11\"]}}", "must be a string" },
        { "{\"command_id\":\"a\",\"args\":{\"period\":1.5}}", "must be a string" },
        { "{\"command_id\":\"a\",\"args\":{\"Period\":\"x\"}}", "argument names" },
        { "{\"command_id\":\"a\",\"args\":{\"period\":\"a\\u0001\"}}", "control character" },
        { "{\"command_id\":\"a\",\"verb\":\"run.stop\"}", "unexpected member" },
        { "{\"command_id\":\"a\",\"args\":{\"p\":\"1\",\"p\":\"2\"}}", "not JSON" },
        { "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
          "a JSON object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_body_refused (bad[i].body, false, bad[i].part);
    char long_id[256];
    snprintf (long_id, sizeof long_id, "{\"command_id\":\"%0129d\"}", 0);
    assert_int_equal (bf_route_command_body (long_id, strlen (long_id), id, &args, err, sizeof err),
                      -1);
    /*  Deep nesting is refused (jansson's depth limit or the shape), not
        a crash.  */
    size_t depth = 100000;
    char *deep = malloc (2 * depth + 1);
    memset (deep, '[', depth);
    memset (deep + depth, ']', depth);
    deep[2 * depth] = 0;
    assert_int_equal (bf_route_command_body (deep, 2 * depth, id, &args, err, sizeof err), -1);
    free (deep);
}

/*  A query's POST body: {"args": {...}}, checked as a command's args;
    no reason quotes a value or an odd member name.  */
static void
test_query_body (void **state)
{
    (void)state;
    char err[256];
    bf_route_args_t args;
    const char *good = "{\"args\":{\"email\":\"kim@example.com\"}}";
    assert_int_equal (bf_route_query_body (good, strlen (good), &args, err, sizeof err), 0);
    assert_int_equal (args.count, 1);
    assert_string_equal (args.keys[0], "email");
    assert_string_equal (args.values[0], "kim@example.com");
    const char *number = "{\"args\":{\"subscriber_id\":42}}";
    assert_int_equal (bf_route_query_body (number, strlen (number), &args, err, sizeof err), 0);
    assert_string_equal (args.values[0], "42");
    assert_int_equal (bf_route_query_body ("{}", 2, &args, err, sizeof err), 0);
    assert_int_equal (args.count, 0);
    static const struct {
        const char *body, *part;
    } bad[] = {
        { "", "not JSON" },
        { "[]", "a JSON object" },
        { "{\"args\":[\"kim@example.com\"]}", "\"args\" must be an object" },
        { "{\"args\":{\"email\":[\"kim@example.com\"]}}", "must be a string" },
        { "{\"args\":{\"Email\":\"kim@example.com\"}}", "argument names" },
        { "{\"args\":{\"email\":\"kim@example.com\\n\"}}", "control character" },
        { "{\"args\":{},\"command_id\":\"x\"}", "unexpected member \"command_id\"" },
        { "{\"args\":{},\"kim@example.com\":1}", "unexpected member (its name not shown)" },
        { "{\"args\":{\"email\":\"kim@example.com\" \"phone\":1}}", "not JSON" },
        { "{\"args\":{\"email\":\"kim@example.com\",\"email\":\"x\"}}", "not JSON" },
        { "{\"args\":{\"email\":kim@example.com}}", "not JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_body_refused (bad[i].body, true, bad[i].part);
}

static Billflow__CommandReply
s_reply (Billflow__CommandReply__Status status, bool retryable, const char *result)
{
    Billflow__CommandReply reply = BILLFLOW__COMMAND_REPLY__INIT;
    reply.status = status;
    reply.retryable = retryable;
    reply.result = (char *)(result ? result : "");
    reply.error = (char *)"why";
    return reply;
}

static void
test_statuses (void **state)
{
    (void)state;
    const bf_verb_t *runs = bf_verb_find ("runs.list");
    const bf_verb_t *start = bf_verb_find ("run.start");
    Billflow__CommandReply r;
    r = s_reply (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, false, "{}");
    assert_int_equal (bf_route_query_status (&r, runs, "viewer"), 200);
    r = s_reply (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED, false, NULL);
    assert_int_equal (bf_route_query_status (&r, runs, "viewer"), 400);
    assert_false (bf_route_refused (&r, runs, "viewer"));
    assert_true (bf_route_refused (&r, start, "viewer"));
    assert_false (bf_route_refused (&r, start, "operator"));
    r = s_reply (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, true, NULL);
    assert_int_equal (bf_route_query_status (&r, runs, "operator"), 503);
    r = s_reply (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, false, NULL);
    assert_int_equal (bf_route_query_status (&r, runs, "operator"), 400);
    r = s_reply (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, false, "{\"run_id\":7}");
    r.replayed = true;
    char *text = bf_route_command_json (&r);
    json_t *root = json_loads (text, 0, NULL);
    assert_non_null (root);
    assert_string_equal (json_string_value (json_object_get (root, "status")), "OK");
    assert_int_equal (
        json_integer_value (json_object_get (json_object_get (root, "result"), "run_id")), 7);
    assert_true (json_is_true (json_object_get (root, "replayed")));
    assert_true (json_is_false (json_object_get (root, "retryable")));
    assert_string_equal (json_string_value (json_object_get (root, "error")), "why");
    json_decref (root);
    free (text);
    r = s_reply (BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED, false, NULL);
    text = bf_route_command_json (&r);
    root = json_loads (text, 0, NULL);
    assert_true (json_is_null (json_object_get (root, "result")));
    assert_string_equal (json_string_value (json_object_get (root, "status")), "REJECTED");
    json_decref (root);
    free (text);
    text = bf_route_error_json ("not \"logged\" in");
    assert_string_equal (text, "{\"error\":\"not \\\"logged\\\" in\"}");
    free (text);
}

/*  Every file of services/console/web/ (but meson.build) is embedded, and
    nothing else but Chart.js.  */
static void
test_assets (void **state)
{
    (void)state;
    const char *root = getenv ("BF_SOURCE_ROOT");
    assert_non_null (root);
    char path[1024];
    snprintf (path, sizeof path, "%s/services/console/web", root);
    DIR *dir = opendir (path);
    assert_non_null (dir);
    size_t files = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name[0] == '.' || !strcmp (entry->d_name, "meson.build"))
            continue;
        if (!bf_assets_find (entry->d_name))
            fail_msg ("services/console/web/%s is not listed in web/meson.build", entry->d_name);
        files++;
    }
    closedir (dir);
    assert_int_equal (bf_assets_count, files + 2);
    assert_non_null (bf_assets_find ("index.html"));
    const bf_asset_t *chart = bf_assets_find ("chart.esm.js");
    assert_non_null (chart);
    assert_true (chart->size > 100000);
    assert_non_null (bf_assets_find ("chunks/helpers.segment.js"));
    assert_null (bf_assets_find ("../meson.build"));
    assert_null (bf_assets_find ("/index.html"));
    assert_null (bf_assets_find ("chunks\\x"));
    assert_null (bf_assets_find (""));
    assert_null (bf_assets_find ("index.html\n"));
    assert_string_equal (bf_assets_type ("a.js"), "text/javascript; charset=utf-8");
    assert_string_equal (bf_assets_type ("a.css"), "text/css; charset=utf-8");
    assert_string_equal (bf_assets_type ("a.svg"), "image/svg+xml");
    assert_string_equal (bf_assets_type ("index.html"), "text/html; charset=utf-8");
    assert_string_equal (bf_assets_type ("x"), "application/octet-stream");
}

/*  /readyz's "control" check: control answered the poller lately.  */
static void
test_ready (void **state)
{
    (void)state;
    char reason[160];
    assert_false (bf_overview_ready_at (0, 100000, 5000, reason, sizeof reason));
    assert_string_equal (reason, "control has not answered yet");
    assert_true (bf_overview_ready_at (99600, 100000, 5000, reason, sizeof reason));
    assert_string_equal (reason, "control answered 0.4 s ago");
    assert_true (bf_overview_ready_at (95000, 100000, 5000, reason, sizeof reason));
    assert_false (bf_overview_ready_at (88000, 100000, 5000, reason, sizeof reason));
    assert_string_equal (reason, "control last answered 12.0 s ago");
    /*  A clock read before the answer was stored: not in the future.  */
    assert_true (bf_overview_ready_at (100010, 100000, 5000, reason, sizeof reason));
    assert_string_equal (reason, "control answered 0.0 s ago");
    assert_int_equal (bf_overview_stale_ms (1000), BF_OVERVIEW_STALE_MIN_MS);
    assert_int_equal (bf_overview_stale_ms (2500), 7500);
}

/*  The forms of period, run_id, ids and at, checked before a command is
    sent; the reasons name the key and quote no value.  */
static void
test_command_args (void **state)
{
    (void)state;
    /*  2026-12-07T06:00 UTC.  */
    const int64_t now_ms = ((int64_t)bf_day_from_ymd (2026, 12, 7) * 1440 + 360) * 60000;
    static const struct {
        const char *key, *value, *part; /* part NULL: accepted */
    } cases[] = {
        { "period", "2026-10", NULL },
        { "period", "2026-13", "period must be" },
        { "run_id", "12", NULL },
        { "run_id", "-3", "run_id must be" },
        { "run_id", "abc", "run_id must be" },
        { "ids", "3,1,2", NULL },
        { "ids", "9223372036854775807", NULL },
        { "ids", "1,a", "ids must be" },
        { "ids", "5,5", "ids must be" },
        { "ids", "-5", "ids must be" },
        { "ids", "99999999999999999999", "ids must be" },
        { "ids", "007", "ids must be" },
        { "ids", "", "ids must be" },
        { "ids", "1,,2", "ids must be" },
        { "at", "2026-12-08T10:00", NULL },
        { "at", "2026-12-06T07:00", NULL },
        { "at", "2027-12-07T05:00", NULL },
        { "at", "tomorrow", "at must be" },
        { "at", "2026-02-30T10:00", "at must be" },
        { "at", "2026-12-08T24:00", "at must be" },
        { "at", "2026-12-04T10:00", "too far from now" },
        { "at", "1970-01-01T00:00", "too far from now" },
        { "at", "2027-12-10T10:00", "too far from now" },
        { "at", "9999-12-31T23:59", "too far from now" },
        { "channel", "anything", NULL }, /* notify's to check */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_route_args_t args = { 0 };
        char err[256] = "";
        assert_int_equal (bf_route_arg_add (&args, cases[i].key, strlen (cases[i].key),
                                            cases[i].value, strlen (cases[i].value), err,
                                            sizeof err),
                          0);
        int rc = bf_route_command_args_check (&args, now_ms, err, sizeof err);
        if (!cases[i].part) {
            if (rc != 0)
                fail_msg ("%s=%s refused: %s", cases[i].key, cases[i].value, err);
            continue;
        }
        if (rc != -1 || !strstr (err, cases[i].part))
            fail_msg ("%s=%s: rc %d, '%s' lacks '%s'", cases[i].key, cases[i].value, rc, err,
                      cases[i].part);
        if (*cases[i].value && strstr (err, cases[i].value))
            fail_msg ("%s=%s: the reason quotes the value: %s", cases[i].key, cases[i].value, err);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_match),        cmocka_unit_test (test_args),
        cmocka_unit_test (test_body_check),   cmocka_unit_test (test_login_body),
        cmocka_unit_test (test_command_body), cmocka_unit_test (test_statuses),
        cmocka_unit_test (test_assets),       cmocka_unit_test (test_ready),
        cmocka_unit_test (test_query_body),   cmocka_unit_test (test_command_args),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
