/*  itest_control — control and billctl against the real binaries (G6, G8):
    one execution per command_id under 100 concurrent submissions, a crash
    between storing and forwarding, a target that is down, services going
    down and coming back, CURVE refusal, malformed frames, roles, billctl's
    exit codes, failover between two control processes, and a console key
    acting on behalf of people (issue 15).  */

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_client.h"
#include "bf_curve.h"
#include "bf_pii.h"
#include "bf_testdb.h"
#include "bf_testproc.h"
#include "bf_teststack.h"
#include "bf_wire.h"

#define PERIOD "2026-10"

static bf_stack_t s_stack;

static int
s_setup (void **state)
{
    (void)state;
    bf_stack_init (&s_stack);
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (s_stack.db, &out,
                                          "generate --subscribers 300 --period " PERIOD
                                          " --seed 7"),
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

static int64_t
s_now_ms (void)
{
    return bf_stack_now_ms ();
}

static void
s_key_path (char *out, size_t outsize, const char *name)
{
    bf_stack_key_path (&s_stack, name, out, outsize);
}

static void
s_control_init (int i, const char *fault)
{
    bf_stack_control_init (&s_stack, i, fault);
}

static int64_t
s_wait_scalar (const char *sql, int64_t want, int timeout_ms)
{
    return bf_stack_wait_scalar (&s_stack, sql, want, timeout_ms);
}

static void
s_wait_active (int i)
{
    assert_int_equal (bf_stack_wait_active (&s_stack, i, 15000), 0);
}

static void
s_wait_registered (const char *service)
{
    assert_int_equal (bf_stack_wait_registered (&s_stack, service, 15000), 0);
}

static bf_client_t *
s_client (const char *key_name, const char *endpoints, int timeout_ms, int retries)
{
    (void)endpoints;
    bf_client_t *client = bf_stack_client (&s_stack, key_name, timeout_ms, retries);
    assert_non_null (client);
    return client;
}

/*  A client with the named key that sends on_behalf_of name and
    on_behalf_role role with every request (NULL: not sent).  */
static bf_client_t *
s_behalf_client (const char *key_name, const char *name, const char *role)
{
    char path[600], err[256];
    s_key_path (path, sizeof path, key_name);
    bf_client_args_t args = { .endpoints = s_stack.endpoints,
                              .server_key = s_stack.control_key,
                              .key_file = path,
                              .timeout_ms = 3000,
                              .retries = 2,
                              .on_behalf_of = name,
                              .on_behalf_role = role };
    bf_client_t *client = bf_client_new (&args, err, sizeof err);
    if (!client)
        fail_msg ("bf_client_new: %s", err);
    return client;
}

/*  One request with at most one argument.  */
static int
s_request (bf_client_t *client, const char *id, const char *target, const char *verb,
           const char *key, const char *value, Billflow__CommandReply **reply)
{
    char err[256];
    const char *keys[] = { key }, *values[] = { value };
    return bf_client_request (client, id, target, verb, key ? 1 : 0, keys, values, reply, NULL, err,
                              sizeof err);
}

/*  One request with at most one argument (key = value, or NULL) whose
    answer must have status; error_part, when given, must be in its error.
    Returns whether the answer was a replay.  */
static bool
s_expect (bf_client_t *client, const char *id, const char *target, const char *verb,
          const char *key, const char *value, Billflow__CommandReply__Status status,
          const char *error_part)
{
    Billflow__CommandReply *reply = NULL;
    assert_int_equal (s_request (client, id, target, verb, key, value, &reply), BF_CLIENT_ANSWERED);
    if (reply->status != status)
        print_error ("%s %s: status %d (%s)\n", id, verb, reply->status, reply->error);
    assert_int_equal (reply->status, status);
    if (error_part)
        assert_non_null (strstr (reply->error, error_part));
    bool replayed = reply->replayed;
    billflow__command_reply__free_unpacked (reply, NULL);
    return replayed;
}

/*  A query's result parsed, after asserting it was answered OK.  */
static json_t *
s_query (bf_client_t *client, const char *verb)
{
    char id[40];
    snprintf (id, sizeof id, "q-%lld", (long long)s_now_ms ());
    Billflow__CommandReply *reply = NULL;
    assert_int_equal (s_request (client, id, "control", verb, NULL, NULL, &reply),
                      BF_CLIENT_ANSWERED);
    if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK)
        print_error ("%s: %s\n", verb, reply->error);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    json_error_t jerr;
    json_t *doc = json_loads (reply->result, 0, &jerr);
    assert_non_null (doc);
    billflow__command_reply__free_unpacked (reply, NULL);
    return doc;
}

/*  "up" of the first services.list entry of service, or -1 when absent.  */
static int
s_service_up (bf_client_t *client, const char *service)
{
    json_t *doc = s_query (client, "services.list");
    json_t *list = json_object_get (doc, "services"), *item;
    size_t i;
    int up = -1;
    json_array_foreach (list, i, item)
    {
        if (!strcmp (json_string_value (json_object_get (item, "service")), service)) {
            up = json_is_true (json_object_get (item, "up"));
            break;
        }
    }
    json_decref (doc);
    return up;
}

static int64_t
s_runs (void)
{
    return bf_testdb_scalar (s_stack.conn,
                             "SELECT count (*) FROM settlement_run WHERE period = '" PERIOD "'");
}

/*  --- G6: 100 concurrent submissions of one command_id ------------------ */

static void
test_concurrent_submissions (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");

    enum { N = 100 };
    char err[256], path[2][600];
    s_key_path (path[0], sizeof path[0], "ops-a");
    s_key_path (path[1], sizeof path[1], "ops-b");
    zcert_t *certs[2] = { bf_curve_load_secret (path[0], err, sizeof err),
                          bf_curve_load_secret (path[1], err, sizeof err) };
    assert_non_null (certs[0]);
    assert_non_null (certs[1]);
    zsock_t *socks[N];
    zpoller_t *poller = zpoller_new (NULL);
    for (int i = 0; i < N; i++) {
        socks[i] = zsock_new (ZMQ_DEALER);
        assert_int_equal (bf_curve_client (socks[i], certs[i % 2], s->control_key, err, sizeof err),
                          0);
        assert_int_equal (zsock_connect (socks[i], "%s", s->endpoints), 0);
        zpoller_add (poller, socks[i]);
    }
    Billflow__Argument arg = BILLFLOW__ARGUMENT__INIT, *args[] = { &arg };
    arg.key = "period";
    arg.value = PERIOD;
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    cmd.schema_version = BF_SCHEMA_VERSION;
    cmd.command_id = "concurrent-1";
    cmd.target = "settle";
    cmd.verb = "run.start";
    cmd.n_args = 1;
    cmd.args = args;
    for (int i = 0; i < N; i++)
        assert_int_equal (bf_wire_send (socks[i], BF_MSG_CMD, 0, &cmd.base), 0);

    char *results[N] = { NULL };
    int answered = 0, originals = 0;
    int64_t until = s_now_ms () + 30000;
    while (answered < N && s_now_ms () < until) {
        zsock_t *which = zpoller_wait (poller, 500);
        if (!which)
            continue;
        int i = 0;
        while (socks[i] != which)
            i++;
        zmsg_t *msg = zmsg_recv (which);
        bf_wire_msg_t in = BF_WIRE_MSG_INIT;
        assert_int_equal (bf_wire_recv (&msg, 0, &in, err, sizeof err), 0);
        Billflow__CommandReply *reply = bf_wire_command_reply (&in);
        assert_non_null (reply);
        assert_string_equal (reply->command_id, "concurrent-1");
        if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED) {
            assert_null (results[i]);
            assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
            results[i] = strdup (reply->result);
            originals += !reply->replayed;
            answered++;
        }
        bf_wire_msg_reset (&in);
    }
    assert_int_equal (answered, N);
    assert_int_equal (originals, 1);
    for (int i = 1; i < N; i++)
        assert_string_equal (results[i], results[0]);
    assert_non_null (strstr (results[0], "\"outcome\""));
    /*  One execution: one run, one application, one stored outcome.  */
    assert_int_equal (s_runs (), 1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM applied_command"
                                                 " WHERE command_id = 'concurrent-1'"),
                      1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM command"
                                                 " WHERE command_id = 'concurrent-1'"
                                                 " AND state = 'DONE'"),
                      1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM audit_log"
                                                 " WHERE command_id = 'concurrent-1'"
                                                 " AND outcome = 'received'"),
                      1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM audit_log"
                                                 " WHERE command_id = 'concurrent-1'"
                                                 " AND outcome = 'repeated'"),
                      N - 1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM audit_log"
                                                 " WHERE command_id = 'concurrent-1'"
                                                 " AND outcome = 'done'"
                                                 " AND actor IN ('ops-a', 'ops-b')"),
                      1);
    for (int i = 0; i < N; i++) {
        free (results[i]);
        zsock_destroy (&socks[i]);
    }
    zpoller_destroy (&poller);
    zcert_destroy (&certs[0]);
    zcert_destroy (&certs[1]);

    /*  After completion, from another client: the stored answer, nothing run.  */
    bf_client_t *client = s_client ("ops-b", NULL, 2000, 3);
    assert_true (s_expect (client, "concurrent-1", "settle", "run.start", "period", PERIOD,
                           BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL));
    /*  And after a control restart.  */
    bf_proc_kill (&s->control[0]);
    bf_proc_start (&s->control[0]);
    assert_true (s_expect (client, "concurrent-1", "settle", "run.start", "period", PERIOD,
                           BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL));
    assert_int_equal (s_runs (), 1);
    bf_client_destroy (&client);
}

/*  --- control killed between storing and forwarding --------------------- */

typedef struct {
    bf_client_t *client;
    const char *id;
    int rc, attempts;
    Billflow__CommandReply *reply;
} s_async_t;

static void *
s_async_request (void *arg)
{
    s_async_t *a = arg;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { PERIOD };
    a->rc = bf_client_request (a->client, a->id, "settle", "run.start", 1, keys, values, &a->reply,
                               &a->attempts, err, sizeof err);
    return NULL;
}

/*  Arms fault in control, sends run.start with id from a client that
    keeps repeating it, waits for control to die at the fault, checks the
    command's stored state, restarts control, and checks the client got the
    outcome and the command ran once and was forwarded once. Returns whether
    the answer was a replay.  */
static bool
s_crash_and_recover (const char *fault, const char *id, const char *stored_state)
{
    bf_stack_t *s = &s_stack;
    s_control_init (0, fault);
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");
    s_async_t a = { .client = s_client ("ops-a", NULL, 500, 60), .id = id };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_async_request, &a), 0);
    assert_int_equal (bf_proc_wait (&s->control[0], 15000), 128 + SIGKILL);
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT state FROM command WHERE command_id = '%s'", id);
    char state[16] = "";
    assert_int_equal (bf_testdb_text (s->conn, sql, state, sizeof state), 0);
    assert_string_equal (state, stored_state);
    if (!strcmp (stored_state, "RECEIVED"))
        assert_int_equal (s_runs (), 0);
    s_control_init (0, NULL);
    bf_proc_start (&s->control[0]);
    assert_int_equal (pthread_join (thread, NULL), 0);
    assert_int_equal (a.rc, BF_CLIENT_ANSWERED);
    assert_int_equal (a.reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_true (a.attempts >= 2);
    assert_non_null (strstr (a.reply->result, "\"started\""));
    bool replayed = a.reply->replayed;
    billflow__command_reply__free_unpacked (a.reply, NULL);
    bf_client_destroy (&a.client);
    assert_int_equal (s_runs (), 1);
    snprintf (sql, sizeof sql, "SELECT count (*) FROM applied_command WHERE command_id = '%s'", id);
    assert_int_equal (bf_testdb_scalar (s->conn, sql), 1);
    snprintf (sql, sizeof sql, "SELECT forwards FROM command WHERE command_id = '%s'", id);
    assert_int_equal (bf_testdb_scalar (s->conn, sql), 1);
    return replayed;
}

/*  control dies right after storing the command: restarted, it forwards
    the stored command, and the client, still repeating the id, gets the
    result.  */
static void
test_crash_between_store_and_forward (void **state)
{
    (void)state;
    s_crash_and_recover ("control.after_store", "crash-1", "RECEIVED");
}

/*  control dies after storing the outcome, before answering: the client,
    repeating, gets the stored outcome from the restarted control.  */
static void
test_crash_before_answer (void **state)
{
    (void)state;
    assert_true (s_crash_and_recover ("control.before_answer", "crash-2", "DONE"));
}

/*  control will not start without its keys, or with a list it cannot
    parse: exit 2 and a message naming the problem (G8).  */
static void
test_bad_configuration (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    char command[2048], out[600], list[600];
    snprintf (out, sizeof out, "%s/control-bad.out", s->dir);
    snprintf (command, sizeof command,
              "env -u BILLFLOW_CONTROL_KEY_FILE BILLFLOW_DB_CONNINFO='%s' \"$BF_CONTROL\""
              " > '%s' 2>&1",
              s->db, out);
    int status = system (command);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    char *text = bf_test_slurp (out);
    assert_non_null (strstr (text, "control.key_file"));
    free (text);
    snprintf (list, sizeof list, "%s/bad_keys", s->dir);
    assert_int_equal (bf_test_write (list, "ops-a operator not-a-key\n"), 0);
    char key[600];
    s_key_path (key, sizeof key, "control");
    snprintf (command, sizeof command,
              "BILLFLOW_CONTROL_KEY_FILE='%s' BILLFLOW_CONTROL_ALLOWED_KEYS='%s'"
              " BILLFLOW_DB_CONNINFO='%s' \"$BF_CONTROL\" > '%s' 2>&1",
              key, list, s->db, out);
    status = system (command);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    text = bf_test_slurp (out);
    assert_non_null (strstr (text, ":1:"));
    free (text);
}

/*  --- a command for a service that is down waits for it ------------------ */

/*  A half-started notify: with a PII key file it cannot use, or an SMTP
    URL its senders refuse, every dispatcher failed while notify said
    "running", registered and showed up in `billctl services`. Now start-up
    stops: exit 2, a message naming the setting, and no registration.  */
static void
test_half_started_notify_refused (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    char bad_key[600];
    snprintf (bad_key, sizeof bad_key, "%s/bad-pii.key", s->dir);
    assert_int_equal (bf_test_write (bad_key, "not a key\n"), 0);
    chmod (bad_key, 0600);
    static const char *const settings[] = { "pii.key_file", "notify.smtp_url" };
    static bf_proc_t p;
    for (int i = 0; i < 2; i++) {
        p = s->notify;
        snprintf (p.log, sizeof p.log, "%s/notify-bad-%d.log", s->dir, i);
        if (i == 0)
            bf_proc_env (&p, "BILLFLOW_PII_KEY_FILE=%s", bad_key);
        else
            bf_proc_env (&p, "BILLFLOW_NOTIFY_SMTP_URL=ftp://x");
        bf_proc_start (&p);
        int rc = bf_proc_wait (&p, 20000);
        if (rc < 0)
            bf_proc_kill (&p); /* still running: the defect */
        char *log = bf_test_slurp (p.log);
        if (rc != 2 || !log || !strstr (log, settings[i]))
            fail_msg ("notify with a bad %s: exit %d, output:\n%s", settings[i], rc,
                      log ? log : "(none)");
        free (log);
    }
    assert_int_equal (bf_testdb_scalar (s->conn,
                                        "SELECT count(*) FROM service_instance"
                                        " WHERE service = 'notify'"),
                      0);
}

static void
test_target_down (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_client_t *client = s_client ("ops-a", NULL, 2000, 3);
    Billflow__CommandReply *reply = NULL;
    assert_int_equal (s_request (client, "down-1", "settle", "run.start", "period", PERIOD, &reply),
                      BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED);
    assert_non_null (strstr (reply->result, "settle"));
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM command"
                                                 " WHERE command_id = 'down-1'"
                                                 " AND state = 'RECEIVED'"),
                      1);
    /*  It waits, persisted, across a control restart too.  */
    bf_proc_kill (&s->control[0]);
    bf_proc_start (&s->control[0]);
    usleep (500000);
    assert_int_equal (s_runs (), 0);
    bf_proc_start (&s->settle[0]);
    assert_int_equal (s_wait_scalar ("SELECT count (*) FROM command WHERE command_id = 'down-1'"
                                     " AND state = 'DONE'",
                                     1, 15000),
                      1);
    assert_int_equal (s_runs (), 1);
    assert_true (s_expect (client, "down-1", "settle", "run.start", "period", PERIOD,
                           BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL));
    bf_client_destroy (&client);
}

/*  --- services: down after three missed heartbeats, back when they return - */

static void
test_services_down_and_back (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->settle[0]);
    bf_proc_start (&s->notify);
    s_wait_registered ("settle");
    s_wait_registered ("notify");
    bf_client_t *client = s_client ("viewer", NULL, 2000, 3);
    assert_int_equal (s_service_up (client, "settle"), 1);
    assert_int_equal (s_service_up (client, "notify"), 1);

    bf_proc_kill (&s->settle[0]);
    usleep (900000); /* > 3 x 200 ms */
    assert_int_equal (s_service_up (client, "settle"), 0);
    assert_int_equal (s_service_up (client, "notify"), 1);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");
    assert_int_equal (s_service_up (client, "settle"), 1);

    /*  control restarts: the services notice its silence and register
        again with the new process.  */
    bf_proc_kill (&s->control[0]);
    long from = bf_proc_log_size (&s->control[0]);
    bf_proc_start (&s->control[0]);
    assert_true (bf_proc_wait_log (&s->control[0], "settle instance settle-1", from, 10000));
    assert_true (bf_proc_wait_log (&s->control[0], "notify instance notify-1", from, 10000));
    assert_int_equal (s_service_up (client, "settle"), 1);

    /*  And a command still reaches notify through the new control.  */
    bf_client_t *ops = s_client ("ops-a", NULL, 2000, 3);
    s_expect (ops, "pause-1", "notify", "dispatch.pause", NULL, NULL,
              BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT paused::int FROM dispatch_state"), 1);
    s_expect (ops, "resume-1", "notify", "dispatch.resume", NULL, NULL,
              BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT paused::int FROM dispatch_state"), 0);
    bf_client_destroy (&ops);
    bf_client_destroy (&client);
}

/*  --- CURVE: unknown keys get nothing ------------------------------------ */

static void
test_unknown_key_refused (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    Billflow__CommandReply *reply = NULL;
    bf_client_t *intruder = s_client ("intruder", NULL, 300, 1);
    assert_int_equal (
        s_request (intruder, "intruder-1", "control", "services.list", NULL, NULL, &reply),
        BF_CLIENT_NO_ANSWER);
    bf_client_destroy (&intruder);
    bf_client_t *plain = s_client (NULL, NULL, 300, 1);
    assert_int_equal (s_request (plain, "plain-1", "control", "services.list", NULL, NULL, &reply),
                      BF_CLIENT_NO_ANSWER);
    bf_client_destroy (&plain);
    assert_true (s_wait_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'unknown'"
                                " AND outcome = 'refused'",
                                1, 5000)
                 >= 1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM command"), 0);
    bf_client_t *client = s_client ("viewer", NULL, 2000, 3);
    json_t *doc = s_query (client, "control.status");
    assert_true (json_integer_value (json_object_get (json_object_get (doc, "keys"), "refused"))
                 >= 1);
    json_decref (doc);
    bf_client_destroy (&client);
}

/*  --- G8: malformed frames are counted and dropped ----------------------- */

static void
test_malformed_frames (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    char err[256], path[600];
    s_key_path (path, sizeof path, "ops-a");
    zcert_t *cert = bf_curve_load_secret (path, err, sizeof err);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_int_equal (bf_curve_client (dealer, cert, s->control_key, err, sizeof err), 0);
    assert_int_equal (zsock_connect (dealer, "%s", s->endpoints), 0);
    zstr_send (dealer, "hello");                              /* one frame */
    zstr_sendx (dealer, "NOPE", "12345678", "x", NULL);       /* unknown type */
    zstr_sendx (dealer, "CMD", "1234", "x", NULL);            /* bad seq */
    zstr_sendx (dealer, "CMD", "12345678", "\xff\xff", NULL); /* not a protobuf */
    size_t big = BF_WIRE_MAX_PAYLOAD + 10;
    char *payload = calloc (1, big);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "CMD");
    zmsg_addmem (msg, "\0\0\0\0\0\0\0\0", 8);
    zmsg_addmem (msg, payload, big);
    zmsg_send (&msg, dealer);
    free (payload);
    /*  control is still there and answers.  */
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    cmd.schema_version = BF_SCHEMA_VERSION;
    cmd.command_id = "status-after-garbage";
    cmd.target = "control";
    cmd.verb = "control.status";
    assert_int_equal (bf_wire_send (dealer, BF_MSG_CMD, 0, &cmd.base), 0);
    zsock_set_rcvtimeo (dealer, 10000);
    msg = zmsg_recv (dealer);
    assert_non_null (msg);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    assert_int_equal (bf_wire_recv (&msg, 0, &in, err, sizeof err), 0);
    Billflow__CommandReply *reply = bf_wire_command_reply (&in);
    assert_non_null (reply);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    json_error_t jerr;
    json_t *doc = json_loads (reply->result, 0, &jerr);
    assert_non_null (doc);
    json_t *frames = json_object_get (doc, "frames");
    assert_int_equal (json_integer_value (json_object_get (frames, "rejected")), 5);
    json_t *by = json_object_get (frames, "by_reason");
    assert_int_equal (json_integer_value (json_object_get (by, "frames")), 1);
    assert_int_equal (json_integer_value (json_object_get (by, "type")), 1);
    assert_int_equal (json_integer_value (json_object_get (by, "seq")), 1);
    assert_int_equal (json_integer_value (json_object_get (by, "protobuf")), 1);
    assert_int_equal (json_integer_value (json_object_get (by, "too_big")), 1);
    json_decref (doc);
    bf_wire_msg_reset (&in);
    zsock_destroy (&dealer);
    zcert_destroy (&cert);
    assert_true (bf_proc_wait_log (&s->control[0], "dropped", 0, 1000));
    assert_int_equal (kill (s->control[0].pid, 0), 0);
}

/*  Issue 11 defect 9: a run.report whose payload carries protobuf field 0
    ("80 00", which protobuf-c accepts once but refuses re-encoded) at the
    top level, or inside its period argument, is answered with its own
    command_id, like any run.report.  */
static void
test_report_with_field_zero (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    char err[256], path[600];
    s_key_path (path, sizeof path, "ops-a");
    zcert_t *cert = bf_curve_load_secret (path, err, sizeof err);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_int_equal (bf_curve_client (dealer, cert, s->control_key, err, sizeof err), 0);
    assert_int_equal (zsock_connect (dealer, "%s", s->endpoints), 0);
    zsock_set_rcvtimeo (dealer, 30000); //  generous: a loaded CI machine, ASan
    static const uint8_t field_zero[] = { 0x80, 0x00, 0x01 };
    for (int nested = 0; nested < 2; nested++) {
        char id[40];
        snprintf (id, sizeof id, "report-field-zero-%d", nested);
        Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
        cmd.schema_version = BF_SCHEMA_VERSION;
        cmd.command_id = id;
        cmd.target = "control";
        cmd.verb = "run.report";
        uint8_t payload[512];
        size_t size = billflow__command__pack (&cmd, payload);
        //  The argument period = PERIOD by hand: field 5, length-delimited,
        //  holding key (field 1) and value (field 2), then field 0 inside
        //  it or after the whole message.
        uint8_t arg[64];
        size_t alen = 0;
        arg[alen++] = 0x0a;
        arg[alen++] = 6;
        memcpy (arg + alen, "period", 6), alen += 6;
        arg[alen++] = 0x12;
        arg[alen++] = (uint8_t)strlen (PERIOD);
        memcpy (arg + alen, PERIOD, strlen (PERIOD)), alen += strlen (PERIOD);
        if (nested)
            memcpy (arg + alen, field_zero, sizeof field_zero), alen += sizeof field_zero;
        payload[size++] = 0x2a;
        payload[size++] = (uint8_t)alen;
        memcpy (payload + size, arg, alen), size += alen;
        if (!nested)
            memcpy (payload + size, field_zero, sizeof field_zero), size += sizeof field_zero;
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, "CMD");
        zmsg_addmem (msg, "\0\0\0\0\0\0\0\0", 8);
        zmsg_addmem (msg, payload, size);
        assert_int_equal (zmsg_send (&msg, dealer), 0);

        msg = zmsg_recv (dealer);
        if (!msg) {
            char *log = bf_test_slurp (s->control[0].log);
            print_error ("%s: no answer in 30 s; control's log:\n%s\n", id, log ? log : "-");
            free (log);
        }
        assert_non_null (msg);
        bf_wire_msg_t in = BF_WIRE_MSG_INIT;
        assert_int_equal (bf_wire_recv (&msg, 0, &in, err, sizeof err), 0);
        Billflow__CommandReply *reply = bf_wire_command_reply (&in);
        assert_non_null (reply);
        assert_string_equal (reply->command_id, id);
        //  Answered as a report of PERIOD: a document, or why there is none.
        if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK)
            print_error ("%s: status %d: %s\n", id, reply->status, reply->error);
        assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
        json_error_t jerr;
        json_t *doc = json_loads (reply->result, 0, &jerr);
        assert_non_null (doc);
        json_decref (doc);
        bf_wire_msg_reset (&in);
    }
    zsock_destroy (&dealer);
    zcert_destroy (&cert);
    assert_int_equal (kill (s->control[0].pid, 0), 0);
}

/*  --- roles and rejections ----------------------------------------------- */

static void
test_roles_and_rejections (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    const Billflow__CommandReply__Status rejected
        = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED;
    bf_client_t *viewer = s_client ("viewer", NULL, 2000, 3);
    s_expect (viewer, "viewer-1", "settle", "run.start", "period", PERIOD, rejected, "may not");
    s_expect (viewer, "viewer-2", "control", "runs.list", "period", PERIOD,
              BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    bf_client_destroy (&viewer);
    bf_client_t *ops = s_client ("ops-a", NULL, 2000, 3);
    s_expect (ops, "ops-1", "settle", "run.explode", "period", PERIOD, rejected, "unknown verb");
    s_expect (ops, "ops 2", "settle", "run.start", "period", PERIOD, rejected, "command_id");
    s_expect (ops, "ops-3", "notify", "run.start", "period", PERIOD, rejected, "settle verb");
    /*  A query with a bad argument: FAILED, and nothing stored.  */
    s_expect (ops, "ops-4", "control", "runs.list", "period", "2026-13",
              BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL);
    bf_client_destroy (&ops);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM audit_log"
                                                 " WHERE outcome = 'rejected'"),
                      4);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM command"), 0);
}

/*  --- billctl: exit codes ------------------------------------------------ */

/*  Runs billctl with args (a shell word list) with the key key_name
    against endpoints; output into out. Returns the exit code; *ms the time
    it took.  */
static int
s_billctl_as (const char *key_name, const char *endpoints, char **out, int64_t *ms,
              const char *args)
{
    char path[600], output[600];
    s_key_path (path, sizeof path, key_name);
    snprintf (output, sizeof output, "%s/billctl.out", s_stack.dir);
    /*  Sized to fit its arguments, which have no bound here: a fixed buffer could cut the
        command short (and fails -Wformat-truncation in release builds).  */
    char *command = zsys_sprintf (
        "\"$BF_BILLCTL\" --control '%s' --server-key '%s' --key '%s' %s > '%s' 2>&1", endpoints,
        s_stack.control_key, path, args, output);
    assert_non_null (command);
    int64_t start = s_now_ms ();
    int status = system (command);
    zstr_free (&command);
    if (ms)
        *ms = s_now_ms () - start;
    *out = bf_test_slurp (output);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/*  s_billctl_as with ops-a, an operator.  */
static int
s_billctl (const char *endpoints, char **out, int64_t *ms, const char *args)
{
    return s_billctl_as ("ops-a", endpoints, out, ms, args);
}

static void
test_billctl (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    char *out = NULL, dead[64];
    int64_t ms = 0;
    /*  Nothing listening: exit 5 with a clear message, within its timeout.  */
    snprintf (dead, sizeof dead, "tcp://127.0.0.1:%d", bf_proc_free_port ());
    assert_int_equal (s_billctl (dead, &out, &ms,
                                 "--timeout 300 --retries 2 run start " PERIOD
                                 " --command-id dead-1"),
                      5);
    assert_non_null (strstr (out, "dead-1"));
    assert_true (ms < 3000);
    free (out);

    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");
    assert_int_equal (
        s_billctl (s->endpoints, &out, NULL, "run start " PERIOD " --command-id cli-1"), 0);
    assert_non_null (strstr (out, "cli-1"));
    free (out);
    assert_int_equal (
        s_billctl (s->endpoints, &out, NULL, "--json run start " PERIOD " --command-id cli-1"), 0);
    assert_non_null (strstr (out, "\"replayed\""));
    free (out);
    assert_int_equal (s_runs (), 1);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "--json commands --id cli-1"), 0);
    assert_non_null (strstr (out, "DONE"));
    free (out);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "services"), 0);
    assert_non_null (strstr (out, "settle-1"));
    free (out);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "audit"), 0);
    assert_non_null (strstr (out, "cli-1"));
    free (out);
    /*  notify is down: stored, waiting, exit 3. settle refuses: exit 1.
        A bad period never leaves billctl: exit 2.  */
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "notify retry --run 999999"), 3);
    assert_non_null (strstr (out, "notify"));
    free (out);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "run stop 2031-01"), 1);
    free (out);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "run start 2026-13"), 2);
    free (out);

    /*  The subscriber queries: found by the phone as typed, masked; bad
        ids never leave billctl.  */
    char err[128], phone[32] = "", typed[64], args[256];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (pii);
    PGresult *res = PQexec (s->conn, "SELECT id, phone_enc FROM subscriber ORDER BY id LIMIT 1");
    assert_int_equal (PQntuples (res), 1);
    size_t len = 0;
    unsigned char *sealed = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, 0, 1), &len);
    int64_t id = atoll (PQgetvalue (res, 0, 0));
    assert_int_equal (bf_pii_open (pii, "phone", (uint64_t)id, sealed, len, phone, sizeof phone),
                      11);
    PQfreemem (sealed);
    PQclear (res);
    bf_pii_destroy (&pii);
    snprintf (typed, sizeof typed, "%.3s-%.4s-%.4s", phone, phone + 3, phone + 7);
    snprintf (args, sizeof args, "--json subscriber find --phone '%s'", typed);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, args), 0);
    char expect[64];
    snprintf (expect, sizeof expect, "\"subscriber_id\":%lld", (long long)id);
    if (!strstr (out, expect) || strstr (out, phone) || strstr (out, typed))
        fail_msg ("subscriber find --phone: %s", out);
    free (out);
    snprintf (args, sizeof args, "subscriber timeline %lld", (long long)id);
    snprintf (expect, sizeof expect, "Subscriber %lld", (long long)id);
    const struct {
        const char *args, *says;
        int exit;
    } runs[] = {
        { args, expect, 0 },
        { "bill show 987654321", "No such bill.", 0 },
        { "subscriber find --id -1", "--id", 2 },
        { "bill show \"1' OR '1'='1\"", "BILL_ID", 2 },
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        int rc = s_billctl (s->endpoints, &out, NULL, runs[i].args);
        if (rc != runs[i].exit || !strstr (out, runs[i].says) || strstr (out, phone + 3))
            fail_msg ("billctl %s: exit %d: %s", runs[i].args, rc, out);
        free (out);
    }
}

/*  --- billctl run start --previous-month: the monthly CronJob ----------- */

/*  The CronJob of deploy/k8s runs `billctl run start --previous-month`; a
    retried or doubled job runs it again. Both start the one run of the
    month before this one (Asia/Seoul), under the one command id
    run-start-PERIOD: the second is answered from control's store.  */
static void
test_billctl_previous_month (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    //  The previous month in Seoul (UTC+9), computed here independently.
    time_t now = time (NULL) + 9 * 3600;
    struct tm seoul;
    gmtime_r (&now, &seoul);
    int year = seoul.tm_year + 1900, month = seoul.tm_mon; //  tm_mon is 0-based: the month before
    if (month == 0) {
        month = 12;
        year--;
    }
    char period[24], id[48], sql[256];
    snprintf (period, sizeof period, "%04d-%02d", year, month);
    snprintf (id, sizeof id, "run-start-%s", period);

    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");
    char *out = NULL;
    assert_int_equal (s_billctl (s->endpoints, &out, NULL,
                                 "--json run start --previous-month --tz Asia/Seoul"),
                      0);
    if (!strstr (out, id) || !strstr (out, "\"replayed\":false"))
        fail_msg ("first run start --previous-month: %s", out);
    free (out);
    assert_int_equal (s_billctl (s->endpoints, &out, NULL, "--json run start --previous-month"),
                      0);
    if (!strstr (out, id) || !strstr (out, "\"replayed\":true"))
        fail_msg ("second run start --previous-month: %s", out);
    free (out);
    snprintf (sql, sizeof sql, "SELECT count (*) FROM settlement_run WHERE period = '%s'", period);
    assert_int_equal (bf_testdb_scalar (s->conn, sql), 1);
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM command WHERE verb = 'run.start' AND command_id = '%s'", id);
    assert_int_equal (bf_testdb_scalar (s->conn, sql), 1);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM command"
                                                 " WHERE verb = 'run.start'"),
                      1);
    //  A bad zone never leaves billctl.
    assert_int_equal (s_billctl (s->endpoints, &out, NULL,
                                 "run start --previous-month --tz Mars/Olympus_Mons"),
                      2);
    assert_non_null (strstr (out, "no such zone"));
    free (out);
}

/*  --- failover between two control processes ----------------------------- */

static void
test_failover (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_stack_both_controls (s);
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->control[1]);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");
    char leader[64] = "";
    assert_int_equal (
        bf_testdb_text (s->conn, "SELECT instance_id FROM control_leader", leader, sizeof leader),
        0);
    assert_string_equal (leader, "control-1");
    bf_client_t *client = s_client ("ops-a", NULL, 1000, 10);
    Billflow__CommandReply *reply = NULL;
    s_expect (client, "fo-1", "settle", "run.start", "period", PERIOD,
              BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);

    /*  The active one dies; the standby takes over; clients and services
        find it.  */
    bf_proc_kill (&s->control[0]);
    s_wait_active (1);
    assert_int_equal (
        bf_testdb_text (s->conn, "SELECT instance_id FROM control_leader", leader, sizeof leader),
        0);
    assert_string_equal (leader, "control-2");
    assert_int_equal (
        s_request (client, "fo-2", "settle", "run.start", "period", "2026-11", &reply),
        BF_CLIENT_ANSWERED);
    if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK)
        print_error ("fo-2: %d %s %s\n", reply->status, reply->result, reply->error);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_int_equal (s_request (client, "fo-1", "settle", "run.start", "period", PERIOD, &reply),
                      BF_CLIENT_ANSWERED);
    assert_true (reply->replayed);
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_int_equal (s_service_up (client, "settle"), 1);
    assert_int_equal (s_runs (), 1);
    bf_client_destroy (&client);
}

/*  --- on behalf of a person (issue 15) ------------------------------------ */

static int64_t
s_scalar (const char *sql)
{
    return bf_testdb_scalar (s_stack.conn, sql);
}

/*  Starts control 1 and, when asked, settle and notify, and waits until
    they are up.  */
static void
s_start_with (bool settle, bool notify)
{
    bf_proc_start (&s_stack.control[0]);
    s_wait_active (0);
    if (settle)
        bf_proc_start (&s_stack.settle[0]);
    if (notify)
        bf_proc_start (&s_stack.notify);
    if (settle)
        s_wait_registered ("settle");
    if (notify)
        s_wait_registered ("notify");
}

/*  The console key acts for kim, an operator (stored and audited as
    console/kim: the issued_by services get is the stored client), and for
    lee, a viewer (queries answered, a forged command refused and audited
    as console/lee); on its own it is a viewer.  */
static void
test_console_acts_for_people (void **state)
{
    (void)state;
    const Billflow__CommandReply__Status ok = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    const Billflow__CommandReply__Status rejected
        = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED;
    s_start_with (true, true);

    bf_client_t *kim = s_behalf_client ("console", "kim", "operator");
    s_expect (kim, "kim-start", "settle", "run.start", "period", PERIOD, ok, NULL);
    s_expect (kim, "kim-pause", "notify", "dispatch.pause", NULL, NULL, ok, NULL);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
    assert_int_equal (s_runs (), 1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE client = 'console/kim'"
                                " AND command_id IN ('kim-start', 'kim-pause') AND state = 'DONE'"),
                      2);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/kim'"
                                " AND outcome = 'received'"),
                      2);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console'"), 0);
    /*  Her trail, by actor: audit.list takes console/NAME.  */
    Billflow__CommandReply *reply = NULL;
    assert_int_equal (
        s_request (kim, "q-1", "control", "audit.list", "actor", "console/kim", &reply),
        BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, ok);
    json_t *doc = json_loads (reply->result, 0, NULL);
    billflow__command_reply__free_unpacked (reply, NULL);
    json_t *rows = json_object_get (doc, "audit"), *row;
    size_t i;
    assert_true (json_array_size (rows) >= 2);
    json_array_foreach (rows, i, row)
        assert_string_equal (json_string_value (json_object_get (row, "actor")), "console/kim");
    json_decref (doc);
    bf_client_destroy (&kim);

    bf_client_t *lee = s_behalf_client ("console", "lee", "viewer");
    s_expect (lee, "q-2", "control", "runs.list", "period", PERIOD, ok, NULL);
    s_expect (lee, "lee-resume", "notify", "dispatch.resume", NULL, NULL, rejected,
              "may not send dispatch.resume");
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/lee'"
                                " AND command_id = 'lee-resume' AND outcome = 'refused'"
                                " AND verb = 'dispatch.resume'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id = 'lee-resume'"),
                      0);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
    bf_client_destroy (&lee);

    /*  Naming nobody: a viewer, so no anonymous command.  */
    bf_client_t *console = s_behalf_client ("console", NULL, NULL);
    s_expect (console, "q-3", "control", "services.list", NULL, NULL, ok, NULL);
    s_expect (console, "anon-resume", "notify", "dispatch.resume", NULL, NULL, rejected, "may not");
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console'"
                                " AND command_id = 'anon-resume'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id = 'anon-resume'"),
                      0);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
    bf_client_destroy (&console);
}

/*  Asks services.list n times back to back with client (no retries, so a
    "busy" answer comes back as it is); counts the busy answers and keeps
    the largest retry_after_ms hint among them.  */
static int
s_flood_queries (bf_client_t *client, const char *prefix, int n, uint32_t *max_hint)
{
    int busy = 0;
    for (int i = 0; i < n; i++) {
        char id[48];
        snprintf (id, sizeof id, "%s-%d", prefix, i);
        Billflow__CommandReply *reply = NULL;
        assert_int_equal (s_request (client, id, "control", "services.list", NULL, NULL, &reply),
                          BF_CLIENT_ANSWERED);
        if (bf_client_busy (reply)) {
            busy++;
            if (reply->retry_after_ms > *max_hint)
                *max_hint = reply->retry_after_ms;
        } else
            assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
        billflow__command_reply__free_unpacked (reply, NULL);
    }
    return busy;
}

/*  The console key speaks for every operator at once, so it has its own
    rate (control.console_rate 1000/s, burst 2000): 400 queries back to back
    pass, while a viewer key asking the same is held to client_rate (50/s,
    burst 100) and its "busy" answers carry retry_after_ms, the wait
    control's bucket computed (1000/50 ms at most, rounded up).  */
static void
test_console_key_rate (void **state)
{
    (void)state;
    s_start_with (false, false);
    bf_client_t *console = s_client ("console", NULL, 3000, 0);
    bf_client_t *viewer = s_client ("viewer", NULL, 3000, 0);
    uint32_t hint = 0;
    int64_t started = s_now_ms ();
    int busy = s_flood_queries (console, "console-rate", 400, &hint);
    print_message ("# console key: 400 queries in %lld ms, %d busy\n",
                   (long long)(s_now_ms () - started), busy);
    assert_int_equal (busy, 0);
    /*  The viewer is over 100 + 50/s unless 400 answers took over 6 s.  */
    started = s_now_ms ();
    busy = s_flood_queries (viewer, "viewer-rate", 400, &hint);
    int64_t took = s_now_ms () - started;
    print_message ("# viewer key: 400 queries in %lld ms, %d busy, hint up to %u ms\n",
                   (long long)took, busy, hint);
    assert_true (took < 6000);
    assert_true (busy > 0);
    assert_in_range (hint, 1, 1000 / 50 + 1);
    bf_client_destroy (&console);
    bf_client_destroy (&viewer);
}

/*  on_behalf_ fields from keys that are not console keys, and malformed
    ones from the console key: refused, logged, audited under the key's own
    name (never with the name sent), counted; nothing stored.  */
static void
test_on_behalf_refused (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    const Billflow__CommandReply__Status rejected
        = BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED;
    s_start_with (false, false);
    long from = bf_proc_log_size (&s->control[0]);

    bf_client_t *ops = s_behalf_client ("ops-a", "kim", "operator");
    s_expect (ops, "ops-forged", "settle", "run.start", "period", PERIOD, rejected,
              "only a console key");
    bf_client_destroy (&ops);
    /*  Not even a question.  */
    bf_client_t *viewer = s_behalf_client ("viewer", "kim", "operator");
    s_expect (viewer, "viewer-forged", "control", "runs.list", NULL, NULL, rejected,
              "only a console key");
    bf_client_destroy (&viewer);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'ops-a'"
                                " AND command_id = 'ops-forged' AND outcome = 'refused'"
                                " AND detail LIKE 'only a console key%'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'viewer'"
                                " AND command_id = 'viewer-forged' AND outcome = 'refused'"),
                      1);
    assert_true (bf_proc_wait_log (&s->control[0], "only a console key", from, 5000));

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
        bf_client_t *client = s_behalf_client ("console", bad[i].name, bad[i].role);
        s_expect (client, bad[i].id, "notify", "dispatch.pause", NULL, NULL, rejected, bad[i].why);
        bf_client_destroy (&client);
    }
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console'"
                                " AND command_id LIKE 'bad-%' AND outcome = 'refused'"),
                      (int64_t)n);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor LIKE 'console/%'"), 0);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command"), 0);

    bf_client_t *console = s_behalf_client ("console", NULL, NULL);
    json_t *doc = s_query (console, "control.status");
    json_t *limits = json_object_get (doc, "limits");
    assert_int_equal (json_integer_value (json_object_get (limits, "on_behalf_refused")),
                      (json_int_t)n + 2);
    json_decref (doc);
    bf_client_destroy (&console);
}

static void
test_billctl_on_behalf (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    s_start_with (false, true);
    char *out = NULL;
    assert_int_equal (s_billctl_as ("console", s->endpoints, &out, NULL,
                                    "--on-behalf-of kim --as-role operator notify pause"
                                    " --command-id cli-kim"),
                      0);
    free (out);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/kim'"
                                " AND command_id = 'cli-kim' AND outcome = 'received'"),
                      1);
    assert_int_equal (s_billctl_as ("console", s->endpoints, &out, NULL,
                                    "--on-behalf-of lee --as-role viewer notify resume"),
                      4);
    assert_non_null (strstr (out, "may not"));
    free (out);
    assert_int_equal (s_billctl_as ("console", s->endpoints, &out, NULL,
                                    "--on-behalf-of lee --as-role viewer audit"
                                    " --actor console/kim"),
                      0);
    assert_non_null (strstr (out, "cli-kim"));
    free (out);
    /*  From an operator's key control refuses; a bad name never leaves.  */
    assert_int_equal (
        s_billctl (s->endpoints, &out, NULL, "--on-behalf-of kim --as-role operator notify resume"),
        4);
    assert_non_null (strstr (out, "only a console key"));
    free (out);
    assert_int_equal (s_billctl_as ("console", s->endpoints, &out, NULL,
                                    "--on-behalf-of 'kim park' --as-role viewer services"),
                      2);
    free (out);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), 1);
}

/*  --- templates and scheduled release (issue 15) ------------------------- */

/*  One request with n arguments; asserts its status (and that error_part
    is in its error). Returns the reply; the caller frees it.  */
static Billflow__CommandReply *
s_call (bf_client_t *client, const char *id, const char *target, const char *verb, size_t n,
        const char *const *keys, const char *const *values,
        Billflow__CommandReply__Status status, const char *error_part)
{
    char err[256];
    Billflow__CommandReply *reply = NULL;
    assert_int_equal (bf_client_request (client, id, target, verb, n, keys, values, &reply, NULL,
                                         err, sizeof err),
                      BF_CLIENT_ANSWERED);
    if (reply->status != status)
        print_error ("%s %s: status %d (%s)\n", id, verb, reply->status, reply->error);
    assert_int_equal (reply->status, status);
    if (error_part && !strstr (reply->error, error_part))
        fail_msg ("%s: '%s' is not in the error '%s'", verb, error_part, reply->error);
    return reply;
}

/*  Whether the JSON text result has key with the string (or integer, as
    text) value.  */
static bool
s_result_is (const char *result, const char *key, const char *value)
{
    json_t *doc = json_loads (result ? result : "", 0, NULL);
    json_t *v = json_object_get (doc, key);
    char text[64] = "";
    if (json_is_string (v))
        snprintf (text, sizeof text, "%s", json_string_value (v));
    else if (json_is_integer (v))
        snprintf (text, sizeof text, "%lld", (long long)json_integer_value (v));
    else if (json_is_boolean (v))
        snprintf (text, sizeof text, "%s", json_is_true (v) ? "true" : "false");
    json_decref (doc);
    if (strcmp (text, value))
        print_error ("%s: %s is '%s', not '%s'\n", result ? result : "(none)", key, text, value);
    return !strcmp (text, value);
}

/*  Sends notify's command verb twice with command id id: the first is run
    (its result's key is value), the second is the stored answer; one
    application, audited as received, done and repeated.  */
static void
s_twice_once (bf_client_t *ops, const char *id, const char *verb, size_t n,
              const char *const *keys, const char *const *values, const char *key,
              const char *value)
{
    for (int i = 0; i < 2; i++) {
        Billflow__CommandReply *reply = s_call (ops, id, "notify", verb, n, keys, values,
                                                BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
        assert_int_equal (reply->replayed, i == 1);
        assert_true (s_result_is (reply->result, key, value));
        billflow__command_reply__free_unpacked (reply, NULL);
    }
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT count (*) FROM applied_command WHERE command_id = '%s'", id);
    assert_int_equal (bf_testdb_scalar (s_stack.conn, sql), 1);
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM audit_log WHERE command_id = '%s'"
              " AND outcome IN ('received', 'done', 'repeated')",
              id);
    assert_int_equal (bf_testdb_scalar (s_stack.conn, sql), 3);
}

/*  The stack with the period settled through control, dispatch paused (as
    stored, before notify starts), notify up with its clock at 10:00 local
    and every notice ingested; then the run scheduled for 11:00 (twice with
    one command id: applied once) and dispatch resumed: nothing may go out.
    Returns the number of notices.  */
static int64_t
s_scheduled_run (bf_client_t *ops)
{
    bf_stack_t *s = &s_stack;
    bf_stack_mock_start (s, "");
    bf_proc_start (&s->control[0]);
    s_wait_active (0);
    bf_proc_start (&s->settle[0]);
    s_wait_registered ("settle");
    assert_string_equal (bf_testdb_exec (s->conn, "UPDATE dispatch_state SET paused = true"),
                         "00000");
    const char *pk[] = { "period", "at" }, *pv[] = { PERIOD, "2026-11-02T11:00" };
    Billflow__CommandReply *reply = s_call (ops, "sched-start", "settle", "run.start", 1, pk, pv,
                                            BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    billflow__command_reply__free_unpacked (reply, NULL);
    s_wait_scalar ("SELECT count (*) FROM settlement_run WHERE state = 'COMPLETED'", 1, 60000);
    bf_proc_start (&s->notify);
    s_wait_registered ("notify");

    /*  A bad time is refused with the reason; nothing is stored.  */
    const char *bad[] = { PERIOD, "2026-11-02 11:00" };
    reply = s_call (ops, "sched-bad", "notify", "run.schedule", 2, pk, bad,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, "at: expected YYYY-MM-DDTHH:MM");
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM run_schedule"), 0);

    s_twice_once (ops, "sched-1", "run.schedule", 2, pk, pv, "outcome", "scheduled");
    /*  11:00 local (UTC+9) is 02:00 UTC.  */
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM run_schedule"
                                                 " WHERE release_at = '2026-11-02T02:00:00Z'"
                                                 " AND at_local = '2026-11-02T11:00'"),
                      1);
    int64_t notices = bf_testdb_scalar (s->conn, "SELECT count (*) FROM bill b"
                                                 " JOIN subscriber x ON x.id = b.subscriber_id,"
                                                 " unnest (x.channels) c");
    assert_true (notices > 0);
    s_wait_scalar ("SELECT count (*) FROM delivery", notices, 30000);

    reply = s_call (ops, "sched-resume", "notify", "dispatch.resume", 0, NULL, NULL,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    billflow__command_reply__free_unpacked (reply, NULL);
    usleep (3000000);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM delivery_attempt"), 0);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM delivery WHERE state IN"
                                                 " ('SENDING', 'RETRY', 'DELIVERED', 'FAILED')"),
                      0);
    /*  They wait as HELD notices, with the reason, until 11:00.  */
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM delivery"
                                                 " WHERE state = 'HELD' AND not_before ="
                                                 " '2026-11-02T02:00:00Z' AND hold_reason ="
                                                 " 'scheduled release (2026-11-02T11:00 local)'"),
                      notices);
    return notices;
}

/*  Waits until every notice went out (or is held by its subscriber's own
    quiet hours, which still apply after a release) and some were
    delivered.  */
static void
s_wait_released (int64_t notices)
{
    assert_int_equal (s_wait_scalar ("SELECT count (*) FROM delivery WHERE fallback_of IS NULL"
                                     " AND (state IN ('DELIVERED', 'FAILED')"
                                     "      OR (state = 'HELD' AND hold_reason LIKE 'quiet%'))",
                                     notices, 60000),
                      notices);
    assert_true (bf_testdb_scalar (s_stack.conn,
                                   "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'")
                 > 0);
}

/*  run.show with the period, parsed.  */
static json_t *
s_run_show (bf_client_t *client)
{
    const char *k[] = { "period" }, *v[] = { PERIOD };
    char id[40];
    snprintf (id, sizeof id, "q-%lld", (long long)s_now_ms ());
    Billflow__CommandReply *reply = s_call (client, id, "control", "run.show", 1, k, v,
                                            BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    json_t *doc = json_loads (reply->result, 0, NULL);
    assert_non_null (doc);
    billflow__command_reply__free_unpacked (reply, NULL);
    return doc;
}

/*  Held until the release time: notify restarted with its clock past it
    sends them (the schedule is durable across the restart).  */
static void
test_run_schedule_release (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_client_t *ops = s_client ("ops-a", NULL, 5000, 3);
    int64_t notices = s_scheduled_run (ops);
    json_t *doc = s_run_show (ops);
    json_t *schedule = json_object_get (doc, "schedule");
    assert_true (json_is_object (schedule));
    assert_string_equal (json_string_value (json_object_get (schedule, "at")), "2026-11-02T11:00");
    assert_string_equal (json_string_value (json_object_get (schedule, "command_id")), "sched-1");
    json_decref (doc);

    /*  Still before it after a restart (10:59); then past it (11:01).  */
    bf_proc_kill (&s->notify);
    bf_proc_env (&s->notify, "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:59");
    bf_proc_start (&s->notify);
    s_wait_registered ("notify");
    usleep (2000000);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM delivery_attempt"), 0);
    bf_proc_kill (&s->notify);
    bf_proc_env (&s->notify, "BILLFLOW_NOTIFY_CLOCK=2026-11-02T11:01");
    bf_proc_start (&s->notify);
    s_wait_registered ("notify");
    s_wait_released (notices);
    bf_client_destroy (&ops);
}

/*  run.unschedule releases a held run; templates: publish (idempotent,
    checked, audited), list, show, preview (masked, with the bill's lines).  */
static void
test_run_unschedule_and_templates (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_client_t *ops = s_client ("ops-a", NULL, 5000, 3);
    int64_t notices = s_scheduled_run (ops);

    const char *uk[] = { "period" }, *uv[] = { PERIOD };
    Billflow__CommandReply *reply
        = s_call (ops, "unsched-1", "notify", "run.unschedule", 1, uk, uv,
                  BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    assert_true (s_result_is (reply->result, "outcome", "unscheduled"));
    billflow__command_reply__free_unpacked (reply, NULL);
    s_wait_released (notices);
    json_t *doc = s_run_show (ops);
    assert_true (json_is_null (json_object_get (doc, "schedule")));
    json_decref (doc);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM audit_log"
                                                 " WHERE command_id = 'unsched-1'"
                                                 " AND outcome = 'done'"),
                      1);

    /*  A template the checker refuses: its message, nothing stored.  */
    const char *tk[] = { "channel", "subject", "body" };
    const char *broken[] = { "PUSH", "{{period_label}} 요금", "{{nmae}} 고객님" };
    reply = s_call (ops, "tpl-bad", "notify", "template.publish", 3, tk, broken,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, "unknown variable \"nmae\"");
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM template"
                                                 " WHERE channel = 'PUSH'"),
                      1);

    /*  Published twice with one command id: one new version, active.  */
    const char *good[] = { "PUSH", "{{period_label}} 요금 안내",
                           "{{#name}}{{name}} {{/name}}고객님, {{total}}원입니다." };
    s_twice_once (ops, "tpl-1", "template.publish", 3, tk, good, "version", "2");
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT count (*) FROM template"
                                                 " WHERE channel = 'PUSH'"),
                      2);
    assert_int_equal (bf_testdb_scalar (s->conn, "SELECT version FROM template"
                                                 " WHERE channel = 'PUSH' AND active"),
                      2);

    /*  templates.list: who published it; template.show: its texts.  */
    bf_client_t *viewer = s_client ("viewer", NULL, 5000, 3);
    const char *ck[] = { "channel", "version" }, *cv[] = { "PUSH", "2" };
    reply = s_call (viewer, "q-list", "control", "templates.list", 1, ck, cv,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    doc = json_loads (reply->result, 0, NULL);
    billflow__command_reply__free_unpacked (reply, NULL);
    json_t *list = json_object_get (doc, "templates");
    assert_int_equal (json_array_size (list), 2);
    json_t *first = json_array_get (list, 0);
    assert_int_equal (json_integer_value (json_object_get (first, "version")), 2);
    assert_true (json_is_true (json_object_get (first, "active")));
    assert_string_equal (json_string_value (json_object_get (first, "client")), "ops-a");
    assert_string_equal (json_string_value (json_object_get (first, "published_by")), "tpl-1");
    assert_true (json_is_false (json_object_get (json_array_get (list, 1), "active")));
    json_decref (doc);
    reply = s_call (viewer, "q-show", "control", "template.show", 2, ck, cv,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    doc = json_loads (reply->result, 0, NULL);
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_string_equal (json_string_value (json_object_get (doc, "body")), good[2]);
    json_decref (doc);

    /*  template.preview of the stored email template for a bill: the
        contact masked, the bill's lines shown with their labels.  */
    char bill[32], subscriber[32];
    assert_int_equal (bf_testdb_text (s->conn,
                                      "SELECT b.bill_id FROM bill b JOIN subscriber x"
                                      " ON x.id = b.subscriber_id WHERE b.line_count >= 3"
                                      " AND x.email_enc IS NOT NULL ORDER BY b.bill_id LIMIT 1",
                                      bill, sizeof bill),
                      0);
    const char *pk[] = { "channel", "version", "bill_id" }, *pv[] = { "EMAIL", "1", bill };
    reply = s_call (viewer, "q-preview", "control", "template.preview", 3, pk, pv,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    doc = json_loads (reply->result, 0, NULL);
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_non_null (doc);
    const char *to = json_string_value (json_object_get (doc, "to"));
    assert_non_null (to);
    assert_non_null (strstr (to, "***"));
    assert_string_equal (json_string_value (json_object_get (doc, "sent_as")), "EMAIL");
    const char *body = json_string_value (json_object_get (doc, "body"));
    const char *preview = json_string_value (json_object_get (doc, "preview"));
    assert_non_null (strstr (preview, to));
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT subscriber_id FROM bill WHERE bill_id = %s", bill);
    assert_int_equal (bf_testdb_text (s->conn, sql, subscriber, sizeof subscriber), 0);
    snprintf (sql, sizeof sql,
              "SELECT label FROM bill_line WHERE period = '" PERIOD "' AND subscriber_id = %s"
              " ORDER BY line_no",
              subscriber);
    PGresult *res = PQexec (s->conn, sql);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_true (PQntuples (res) >= 3);
    assert_int_equal (json_integer_value (json_object_get (doc, "lines")), PQntuples (res));
    for (int r = 0; r < PQntuples (res); r++)
        if (!strstr (body, PQgetvalue (res, r, 0)) || !strstr (preview, PQgetvalue (res, r, 0)))
            fail_msg ("line '%s' is not in the preview", PQgetvalue (res, r, 0));
    PQclear (res);
    json_decref (doc);

    /*  A draft SMS: rendered, or refused with the checker's message.  */
    const char *dk[] = { "channel", "bill_id", "subject", "body", "short_body" };
    const char *dv[] = { "SMS", bill, "[빌플로우] {{month_label}} 요금", "{{total}}원 {{due_short}}",
                         "{{total}}원" };
    reply = s_call (viewer, "q-draft", "control", "template.preview", 5, dk, dv,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, NULL);
    assert_true (s_result_is (reply->result, "sent_as", "SMS"));
    assert_true (s_result_is (reply->result, "draft", "true"));
    billflow__command_reply__free_unpacked (reply, NULL);
    const char *dbad[] = { "SMS", bill, "[빌플로우]", "{{#lines}}{{label}}", "x" };
    reply = s_call (viewer, "q-draft-bad", "control", "template.preview", 5, dk, dbad,
                    BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, "template refused: body:");
    billflow__command_reply__free_unpacked (reply, NULL);
    bf_client_destroy (&viewer);
    bf_client_destroy (&ops);
}

int
main (void)
{
    zsys_init ();
    zsys_set_linger (0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_concurrent_submissions, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_between_store_and_forward, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_before_answer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_configuration, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_target_down, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_half_started_notify_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_services_down_and_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_key_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_malformed_frames, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_report_with_field_zero, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_roles_and_rejections, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_billctl, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_billctl_previous_month, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_console_acts_for_people, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_on_behalf_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_console_key_rate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_billctl_on_behalf, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_run_schedule_release, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_run_unschedule_and_templates, s_setup, s_teardown),
    };
    /*  BF_TEST_FILTER=NAME runs only the tests matching NAME.  */
    if (getenv ("BF_TEST_FILTER"))
        cmocka_set_test_filter (getenv ("BF_TEST_FILTER"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
