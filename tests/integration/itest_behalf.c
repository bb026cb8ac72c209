/*  itest_behalf — commands on behalf of a person (issue 15; docs/control.md
    "On behalf of a person") against the real binaries: a console key acts
    for an operator (audited and stored as console/NAME) and for a viewer
    (queries answered, a forged command refused and audited); a console key
    alone is a viewer; any other key sending on_behalf_ fields, and a
    console key sending malformed ones, is refused, audited and counted;
    billctl --on-behalf-of --as-role.  */

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "bf_client.h"
#include "bf_testdb.h"
#include "bf_testproc.h"
#include "bf_teststack.h"

#define PERIOD "2026-10"

static bf_stack_t s_stack;

static int
s_setup (void **state)
{
    (void)state;
    bf_stack_init (&s_stack);
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (s_stack.db, &out,
                                          "generate --subscribers 50 --period " PERIOD " --seed 7"),
                      0);
    free (out);
    return 0;
}

static int
s_teardown (void **state)
{
    (void)state;
    bf_stack_destroy (&s_stack);
    return 0;
}

/*  A client of control with the named key, sending on_behalf_of name and
    on_behalf_role role with every request (NULL: not sent).  */
static bf_client_t *
s_client (const char *key_name, const char *name, const char *role)
{
    char path[600], err[256];
    bf_stack_key_path (&s_stack, key_name, path, sizeof path);
    bf_client_args_t args = {
        .endpoints = s_stack.endpoints,
        .server_key = s_stack.control_key,
        .key_file = path,
        .timeout_ms = 3000,
        .retries = 2,
        .on_behalf_of = name,
        .on_behalf_role = role,
    };
    bf_client_t *client = bf_client_new (&args, err, sizeof err);
    if (!client)
        fail_msg ("bf_client_new: %s", err);
    return client;
}

/*  One request without arguments, or with one (key = value); its answer
    must have status, and error_part (when given) must be in its error.
    Returns the result (malloc'd; NULL when none).  */
static char *
s_expect (bf_client_t *client, const char *id, const char *target, const char *verb,
          const char *key, const char *value, Billflow__CommandReply__Status status,
          const char *error_part)
{
    char err[256];
    const char *keys[] = { key }, *values[] = { value };
    Billflow__CommandReply *reply = NULL;
    int rc = bf_client_request (client, id, target, verb, key ? 1 : 0, keys, values, &reply, NULL,
                                err, sizeof err);
    if (rc != BF_CLIENT_ANSWERED)
        fail_msg ("%s %s: no answer (%d): %s", id, verb, rc, err);
    if (reply->status != status)
        print_error ("%s %s: status %d (%s)\n", id, verb, reply->status, reply->error);
    assert_int_equal (reply->status, status);
    if (error_part && !strstr (reply->error, error_part))
        fail_msg ("%s %s: error '%s' lacks '%s'", id, verb, reply->error, error_part);
    char *result = reply->result && *reply->result ? strdup (reply->result) : NULL;
    billflow__command_reply__free_unpacked (reply, NULL);
    return result;
}

static int64_t
s_scalar (const char *sql)
{
    return bf_testdb_scalar (s_stack.conn, sql);
}

static void
s_start (bool services)
{
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    assert_int_equal (bf_stack_wait_active (s, 0, 15000), 0);
    if (!services)
        return;
    bf_proc_start (&s->settle[0]);
    bf_proc_start (&s->notify);
    assert_int_equal (bf_stack_wait_registered (s, "settle", 15000), 0);
    assert_int_equal (bf_stack_wait_registered (s, "notify", 15000), 0);
}

/*  --- a console acts for its people --------------------------------------- */

static void
test_console_acts_for_people (void **state)
{
    (void)state;
    const Billflow__CommandReply__Status ok = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    const Billflow__CommandReply__Status rejected
        = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED;
    s_start (true);

    /*  kim, an operator: her commands run, stored and audited as
        console/kim (the issued_by services get is the stored client).  */
    bf_client_t *kim = s_client ("console", "kim", "operator");
    free (s_expect (kim, "kim-start", "settle", "run.start", "period", PERIOD, ok, NULL));
    free (s_expect (kim, "kim-pause", "notify", "dispatch.pause", NULL, NULL, ok, NULL));
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM settlement_run WHERE period = '" PERIOD "'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE client = 'console/kim'"
                                " AND command_id IN ('kim-start', 'kim-pause') AND state = 'DONE'"),
                      2);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/kim'"
                                " AND outcome = 'received'"),
                      2);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console'"), 0);
    /*  Her trail, by actor: audit.list takes console/NAME.  */
    char *trail = s_expect (kim, "q-1", "control", "audit.list", "actor", "console/kim", ok, NULL);
    assert_non_null (trail);
    json_t *doc = json_loads (trail, 0, NULL);
    free (trail);
    json_t *rows = json_object_get (doc, "audit");
    assert_true (json_array_size (rows) >= 2);
    for (size_t i = 0; i < json_array_size (rows); i++)
        assert_string_equal (
            json_string_value (json_object_get (json_array_get (rows, i), "actor")), "console/kim");
    json_decref (doc);
    bf_client_destroy (&kim);

    /*  lee, a viewer: queries work; a forged command is refused and
        audited as console/lee, and nothing is stored or run.  */
    bf_client_t *lee = s_client ("console", "lee", "viewer");
    free (s_expect (lee, "q-2", "control", "runs.list", "period", PERIOD, ok, NULL));
    free (s_expect (lee, "lee-resume", "notify", "dispatch.resume", NULL, NULL, rejected,
                    "may not send dispatch.resume"));
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/lee'"
                                " AND command_id = 'lee-resume' AND outcome = 'refused'"
                                " AND verb = 'dispatch.resume'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id = 'lee-resume'"),
                      0);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
    bf_client_destroy (&lee);

    /*  The console key naming nobody is a viewer: no anonymous command.  */
    bf_client_t *console = s_client ("console", NULL, NULL);
    free (s_expect (console, "q-3", "control", "services.list", NULL, NULL, ok, NULL));
    free (s_expect (console, "anon-resume", "notify", "dispatch.resume", NULL, NULL, rejected,
                    "may not"));
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console'"
                                " AND command_id = 'anon-resume'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id = 'anon-resume'"),
                      0);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
    bf_client_destroy (&console);
}

/*  --- refused: other keys, malformed names -------------------------------- */

static void
test_on_behalf_refused (void **state)
{
    (void)state;
    const Billflow__CommandReply__Status rejected
        = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED;
    s_start (false);
    long from = bf_proc_log_size (&s_stack.control[0]);

    /*  An operator key, and a viewer key, may not speak for anyone, not
        even to ask a question.  */
    bf_client_t *ops = s_client ("ops-a", "kim", "operator");
    free (s_expect (ops, "ops-forged", "settle", "run.start", "period", PERIOD, rejected,
                    "only a console key"));
    bf_client_destroy (&ops);
    bf_client_t *viewer = s_client ("viewer", "kim", "operator");
    free (s_expect (viewer, "viewer-forged", "control", "runs.list", NULL, NULL, rejected,
                    "only a console key"));
    bf_client_destroy (&viewer);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'ops-a'"
                                " AND command_id = 'ops-forged' AND outcome = 'refused'"
                                " AND detail LIKE 'only a console key%'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'viewer'"
                                " AND command_id = 'viewer-forged' AND outcome = 'refused'"),
                      1);
    assert_true (bf_proc_wait_log (&s_stack.control[0], "only a console key", from, 5000));

    /*  Malformed names and roles from the console key: refused, audited
        under the key's own name, never with the name itself.  */
    char too_long[66];
    memset (too_long, 'k', 65);
    too_long[65] = 0;
    const struct {
        const char *id, *name, *role, *why;
    } bad[] = {
        { "bad-long", too_long, "operator", "1-64" },
        { "bad-utf8", "k\xc3\x28im", "operator", "1-64" },
        { "bad-hangul", "\xea\xb9\x80", "operator", "1-64" },
        { "bad-newline", "kim\nroot", "operator", "1-64" },
        { "bad-escape", "kim\x1b[2J", "viewer", "1-64" },
        { "bad-empty", "", "operator", "needs on_behalf_of" },
        { "bad-norole", "kim", NULL, "needs on_behalf_role" },
        { "bad-role", "kim", "admin", "operator or viewer" },
        { "bad-console", "kim", "console", "operator or viewer" },
    };
    size_t n = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < n; i++) {
        bf_client_t *client = s_client ("console", bad[i].name, bad[i].role);
        free (s_expect (client, bad[i].id, "notify", "dispatch.pause", NULL, NULL, rejected,
                        bad[i].why));
        bf_client_destroy (&client);
    }
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console'"
                                " AND command_id LIKE 'bad-%' AND outcome = 'refused'"),
                      (int64_t)n);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor LIKE 'console/%'"), 0);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command"), 0);

    /*  Counted: control.status -> limits.on_behalf_refused.  */
    bf_client_t *console = s_client ("console", NULL, NULL);
    char *status = s_expect (console, "q-status", "control", "control.status", NULL, NULL,
                             BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    json_t *doc = json_loads (status, 0, NULL);
    free (status);
    json_t *limits = json_object_get (doc, "limits");
    assert_int_equal (json_integer_value (json_object_get (limits, "on_behalf_refused")),
                      (json_int_t)n + 2);
    json_decref (doc);
    bf_client_destroy (&console);
}

/*  --- billctl --on-behalf-of ----------------------------------------------- */

/*  Runs billctl with the named key and args; returns its exit code, its
    output into *out.  */
static int
s_billctl (const char *key_name, const char *args, char **out)
{
    char path[600], output[600];
    bf_stack_key_path (&s_stack, key_name, path, sizeof path);
    snprintf (output, sizeof output, "%s/billctl.out", s_stack.dir);
    char *command = zsys_sprintf (
        "\"$BF_BILLCTL\" --control '%s' --server-key '%s' --key '%s' %s > '%s' 2>&1",
        s_stack.endpoints, s_stack.control_key, path, args, output);
    assert_non_null (command);
    int status = system (command);
    zstr_free (&command);
    *out = bf_test_slurp (output);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_billctl_on_behalf (void **state)
{
    (void)state;
    s_start (true);
    char *out = NULL;
    assert_int_equal (s_billctl ("console",
                                 "--on-behalf-of kim --as-role operator notify pause"
                                 " --command-id cli-kim",
                                 &out),
                      0);
    free (out);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/kim'"
                                " AND command_id = 'cli-kim' AND outcome = 'received'"),
                      1);
    assert_int_equal (
        s_billctl ("console", "--on-behalf-of lee --as-role viewer notify resume", &out), 4);
    assert_non_null (strstr (out, "may not"));
    free (out);
    assert_int_equal (s_billctl ("console",
                                 "--on-behalf-of lee --as-role viewer audit --actor console/kim",
                                 &out),
                      0);
    assert_non_null (strstr (out, "cli-kim"));
    free (out);
    /*  From an operator's key: control refuses (exit 4, REJECTED).  */
    assert_int_equal (
        s_billctl ("ops-a", "--on-behalf-of kim --as-role operator notify resume", &out), 4);
    assert_non_null (strstr (out, "only a console key"));
    free (out);
    /*  Malformed: a usage error, nothing sent.  */
    assert_int_equal (
        s_billctl ("console", "--on-behalf-of 'kim park' --as-role viewer services", &out), 2);
    free (out);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_console_acts_for_people, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_on_behalf_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_billctl_on_behalf, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
