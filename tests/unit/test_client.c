/*  test_client — bf_client (Lazy Pirate client of control) against a
    stand-in control: a ROUTER on tcp://127.0.0.1:<free port> in an actor
    that answers, stays silent, drops the first request, sends stale
    answers or garbage first, as each test asks. The stand-in records what
    it received (command ids, verbs, arguments); the tests read the record
    after the actor is destroyed (its thread has ended by then).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "bf_client.h"
#include "bf_curve.h"
#include "bf_log.h"
#include "bf_testutil.h"
#include "bf_uuid.h"
#include "bf_wire.h"

typedef enum {
    MODE_ANSWER,     /* answer every request */
    MODE_DROP_FIRST, /* ignore the first request, answer the others */
    MODE_SILENT,     /* never answer */
    MODE_STALE,      /* an answer to another command id first, then the right one */
    MODE_GARBAGE,    /* undecodable frames first, then the right answer */
    MODE_LATE,       /* ACCEPTED at once, the final OK 300 ms later */
} control_mode_t;

#define MAX_SEEN 16

typedef struct {
    control_mode_t mode;
    zcert_t *cert; /* not NULL: a CURVE server with this key pair */
    int port;      /* set by the actor before it signals */
    int requests;
    char ids[MAX_SEEN][64];
    char verb[32];
    char target[32];
    int nargs;
    char arg0[64];
    uint32_t schema;
    int64_t issued_at_ms;
} control_t;

static zmsg_t *
s_reply (const char *command_id, uint64_t seq, Billflow__CommandReply__Status status,
         const char *result)
{
    Billflow__CommandReply reply;
    billflow__command_reply__init (&reply);
    reply.schema_version = BF_SCHEMA_VERSION;
    reply.command_id = (char *)command_id;
    reply.status = status;
    reply.result = (char *)result;
    return bf_wire_encode (BF_MSG_CMD_REPLY, seq, &reply.base);
}

/*  Runs in the actor's thread: no cmocka asserts here (a failure shows
    as a missing answer in the test thread).  */
static void
s_send_to (zsock_t *router, zframe_t *identity, zmsg_t *msg)
{
    if (!msg)
        return;
    zframe_t *copy = zframe_dup (identity);
    zmsg_prepend (msg, &copy);
    if (zmsg_send (&msg, router) != 0)
        zmsg_destroy (&msg);
}

static void
s_send_raw (zsock_t *router, zframe_t *identity, int nframes, const char *const *frames,
            const size_t *sizes)
{
    zmsg_t *msg = zmsg_new ();
    for (int i = 0; i < nframes; i++)
        zmsg_addmem (msg, frames[i], sizes[i]);
    s_send_to (router, identity, msg);
}

static void
s_handle (control_t *self, zsock_t *router)
{
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    char err[256];
    if (bf_wire_recv (&msg, 0, &in, err, sizeof err) != 0 || !bf_wire_command (&in)) {
        zframe_destroy (&identity);
        bf_wire_msg_reset (&in);
        return;
    }
    Billflow__Command *cmd = bf_wire_command (&in);
    int n = self->requests++;
    if (n < MAX_SEEN)
        snprintf (self->ids[n], sizeof self->ids[n], "%s", cmd->command_id);
    snprintf (self->verb, sizeof self->verb, "%s", cmd->verb);
    snprintf (self->target, sizeof self->target, "%s", cmd->target);
    self->nargs = (int)cmd->n_args;
    if (cmd->n_args > 0)
        snprintf (self->arg0, sizeof self->arg0, "%s=%s", cmd->args[0]->key, cmd->args[0]->value);
    self->schema = cmd->schema_version;
    self->issued_at_ms = cmd->issued_at_ms;

    bool answer = true;
    if (self->mode == MODE_SILENT || (self->mode == MODE_DROP_FIRST && n == 0))
        answer = false;
    if (self->mode == MODE_STALE)
        s_send_to (router, identity,
                   s_reply ("00000000-0000-4000-8000-00000000dead", in.seq,
                            BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, ""));
    if (self->mode == MODE_GARBAGE) {
        const char *one[] = { "junk" };
        const size_t one_size[] = { 4 };
        s_send_raw (router, identity, 1, one, one_size);
        const char *bad_payload[] = { "CMD.REPLY", "\0\0\0\0\0\0\0\1", "\xff\xff\xff\x01garbage" };
        const size_t bad_payload_size[] = { 9, 8, 11 };
        s_send_raw (router, identity, 3, bad_payload, bad_payload_size);
        const char *bad_type[] = { "NOPE", "\0\0\0\0\0\0\0\1", "x" };
        const size_t bad_type_size[] = { 4, 8, 1 };
        s_send_raw (router, identity, 3, bad_type, bad_type_size);
        const char *short_seq[] = { "CMD.REPLY", "\1", "" };
        const size_t short_seq_size[] = { 9, 1, 0 };
        s_send_raw (router, identity, 3, short_seq, short_seq_size);
        /*  A valid message of another type.  */
        Billflow__ServiceHeartbeat hb;
        billflow__service_heartbeat__init (&hb);
        hb.schema_version = BF_SCHEMA_VERSION;
        hb.event_id = (char *)"hb-1";
        zmsg_t *other = bf_wire_encode (BF_MSG_SVC_HB, 0, &hb.base);
        if (other)
            s_send_to (router, identity, other);
    }
    if (answer && self->mode == MODE_LATE) {
        s_send_to (router, identity,
                   s_reply (cmd->command_id, in.seq,
                            BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED, ""));
        zclock_sleep (300);
    }
    if (answer)
        s_send_to (router, identity,
                   s_reply (cmd->command_id, in.seq, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK,
                            "{\"ok\":true}"));
    zframe_destroy (&identity);
    bf_wire_msg_reset (&in);
}

static void
s_control_actor (zsock_t *pipe, void *args)
{
    control_t *self = (control_t *)args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (router && self->cert)
        bf_curve_server (router, self->cert);
    self->port = router ? zsock_bind (router, "tcp://127.0.0.1:*") : -1;
    zsock_signal (pipe, 0);
    if (self->port <= 0) {
        zsock_destroy (&router);
        return;
    }
    zsock_set_linger (router, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    /*  Only the test thread reacts to zsys_interrupted.  */
    zpoller_set_nonstop (poller, true);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || !strcmp (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        } else if (which == router)
            s_handle (self, router);
        else if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static zactor_t *
s_control_start_curve (control_t *control, control_mode_t mode, zcert_t *cert)
{
    memset (control, 0, sizeof *control);
    control->mode = mode;
    control->cert = cert;
    zactor_t *actor = zactor_new (s_control_actor, control);
    assert_non_null (actor);
    assert_true (control->port > 0);
    return actor;
}

static zactor_t *
s_control_start (control_t *control, control_mode_t mode)
{
    return s_control_start_curve (control, mode, NULL);
}

static char *
s_endpoint (const control_t *control, char *out, size_t outsize)
{
    snprintf (out, outsize, "tcp://127.0.0.1:%d", control->port);
    return out;
}

/*  A client of control with args (their endpoints set here).  */
static bf_client_t *
s_client_with (const control_t *control, bf_client_args_t args)
{
    char endpoint[64], err[256];
    args.endpoints = s_endpoint (control, endpoint, sizeof endpoint);
    bf_client_t *client = bf_client_new (&args, err, sizeof err);
    if (!client)
        fail_msg ("bf_client_new: %s", err);
    return client;
}

static bf_client_t *
s_client (const control_t *control, int timeout_ms, int retries)
{
    return s_client_with (control,
                          (bf_client_args_t){ .timeout_ms = timeout_ms, .retries = retries });
}

/*  A stand-in control and a client of it. After s_stop the record in
    control is safe to read.  */
typedef struct {
    control_t control;
    zactor_t *actor;
    bf_client_t *client;
} fixture_t;

static void
s_start (fixture_t *self, control_mode_t mode, int timeout_ms, int retries)
{
    self->actor = s_control_start (&self->control, mode);
    self->client = s_client (&self->control, timeout_ms, retries);
}

static void
s_stop (fixture_t *self)
{
    bf_client_destroy (&self->client);
    zactor_destroy (&self->actor);
}

static const char *s_keys[] = { "period", "limit" };
static const char *s_values[] = { "2026-10", "5" };

/*  Sends command id (target, verb, the first nargs of s_keys/s_values)
    and expects control's answer to it after attempts sends (not checked
    when 0: the client is then given no attempts counter). Returns the
    answer; the caller frees it.  */
static Billflow__CommandReply *
s_answered (bf_client_t *client, const char *id, const char *target, const char *verb, size_t nargs,
            int attempts)
{
    Billflow__CommandReply *reply = NULL;
    int sends = -1;
    char err[256];
    int rc = bf_client_request (client, id, target, verb, nargs, nargs ? s_keys : NULL,
                                nargs ? s_values : NULL, &reply, attempts ? &sends : NULL, err,
                                sizeof err);
    if (rc != BF_CLIENT_ANSWERED)
        fail_msg ("%s %s: rc %d, %s", target, verb, rc, err);
    assert_non_null (reply);
    if (attempts)
        assert_int_equal (sends, attempts);
    assert_string_equal (reply->command_id, id);
    return reply;
}

/*  A query of control's (verb, no arguments) to a stand-in in mode, with
    a new command id: answered at the first attempt. Returns the answer;
    the caller frees it.  */
static Billflow__CommandReply *
s_query_once (control_mode_t mode, const char *verb)
{
    fixture_t fx;
    s_start (&fx, mode, 2000, 0);
    char id[BF_UUID_LEN + 1];
    bf_uuid_v4 (id);
    Billflow__CommandReply *reply = s_answered (fx.client, id, "control", verb, 0, 1);
    s_stop (&fx);
    return reply;
}

//  --------------------------------------------------------------------------

static void
test_answers (void **state)
{
    (void)state;
    fixture_t fx;
    s_start (&fx, MODE_ANSWER, 2000, 2);
    char id[BF_UUID_LEN + 1];
    bf_uuid_v4 (id);
    int64_t before = zclock_time ();
    Billflow__CommandReply *reply = s_answered (fx.client, id, "control", "runs.list", 2, 1);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_string_equal (reply->result, "{\"ok\":true}");
    billflow__command_reply__free_unpacked (reply, NULL);

    /*  A second request on the same client works too.  */
    char id2[BF_UUID_LEN + 1];
    bf_uuid_v4 (id2);
    reply = s_answered (fx.client, id2, "notify", "dispatch.pause", 0, 0);
    billflow__command_reply__free_unpacked (reply, NULL);

    bf_client_destroy (&fx.client);
    assert_null (fx.client);
    s_stop (&fx); /* destroys the client again: safe twice */

    const control_t *control = &fx.control;
    assert_int_equal (control->requests, 2);
    assert_string_equal (control->ids[0], id);
    assert_string_equal (control->ids[1], id2);
    assert_string_equal (control->verb, "dispatch.pause");
    assert_string_equal (control->target, "notify");
    assert_int_equal (control->nargs, 0);
    assert_int_equal (control->schema, BF_SCHEMA_VERSION);
    assert_true (control->issued_at_ms >= before - 1000);
    assert_true (control->issued_at_ms <= zclock_time () + 1000);
}

static void
test_arguments_reach_control (void **state)
{
    (void)state;
    fixture_t fx;
    s_start (&fx, MODE_ANSWER, 2000, 0);
    billflow__command_reply__free_unpacked (
        s_answered (fx.client, "cron-run-start-2026-10", "settle", "run.start", 1, 0), NULL);
    s_stop (&fx);
    assert_string_equal (fx.control.ids[0], "cron-run-start-2026-10");
    assert_string_equal (fx.control.target, "settle");
    assert_string_equal (fx.control.verb, "run.start");
    assert_int_equal (fx.control.nargs, 1);
    assert_string_equal (fx.control.arg0, "period=2026-10");
}

static void
test_second_attempt_answered (void **state)
{
    (void)state;
    fixture_t fx;
    s_start (&fx, MODE_DROP_FIRST, 300, 3);
    char id[BF_UUID_LEN + 1];
    bf_uuid_v4 (id);
    billflow__command_reply__free_unpacked (s_answered (fx.client, id, "settle", "run.start", 1, 2),
                                            NULL);
    s_stop (&fx);
    /*  One answer for two sends of the same command.  */
    assert_int_equal (fx.control.requests, 2);
    assert_string_equal (fx.control.ids[0], id);
    assert_string_equal (fx.control.ids[1], id);
}

static void
test_no_answer (void **state)
{
    (void)state;
    const int timeout = 200, retries = 2;
    fixture_t fx;
    s_start (&fx, MODE_SILENT, timeout, retries);
    char id[BF_UUID_LEN + 1], err[256];
    bf_uuid_v4 (id);
    Billflow__CommandReply *reply = (Billflow__CommandReply *)&reply; /* must be reset */
    int attempts = 0;
    int64_t start = zclock_mono ();
    int rc = bf_client_request (fx.client, id, "notify", "dispatch.resume", 0, NULL, NULL, &reply,
                                &attempts, err, sizeof err);
    int64_t elapsed = zclock_mono () - start;
    assert_int_equal (rc, BF_CLIENT_NO_ANSWER);
    assert_null (reply);
    assert_int_equal (attempts, retries + 1);
    /*  Every attempt waits its full timeout; connecting is quick here.  */
    assert_true (elapsed >= (int64_t)timeout * (retries + 1) - 10);
    assert_true (elapsed <= (int64_t)timeout * (retries + 1) + 1500);
    assert_non_null (strstr (err, "no answer"));
    assert_non_null (strstr (err, "3 attempts"));
    char endpoint[64];
    assert_non_null (strstr (err, s_endpoint (&fx.control, endpoint, sizeof endpoint)));
    s_stop (&fx);
    assert_int_equal (fx.control.requests, retries + 1);
    for (int i = 0; i < retries + 1; i++)
        assert_string_equal (fx.control.ids[i], id);
}

static void
test_stale_answer_ignored (void **state)
{
    (void)state;
    Billflow__CommandReply *reply = s_query_once (MODE_STALE, "services.list");
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    billflow__command_reply__free_unpacked (reply, NULL);
}

static void
test_garbage_ignored (void **state)
{
    (void)state;
    Billflow__CommandReply *reply = s_query_once (MODE_GARBAGE, "audit.list");
    assert_string_equal (reply->result, "{\"ok\":true}");
    billflow__command_reply__free_unpacked (reply, NULL);
}

static void
test_wait_for_late_answer (void **state)
{
    (void)state;
    fixture_t fx;
    s_start (&fx, MODE_LATE, 2000, 0);
    char id[BF_UUID_LEN + 1], err[256];
    bf_uuid_v4 (id);
    Billflow__CommandReply *reply = s_answered (fx.client, id, "settle", "run.stop", 1, 0);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED);
    billflow__command_reply__free_unpacked (reply, NULL);
    /*  Too short a wait: nothing yet.  */
    int rc = bf_client_wait (fx.client, id, 50, &reply, err, sizeof err);
    assert_int_equal (rc, BF_CLIENT_NO_ANSWER);
    assert_null (reply);
    rc = bf_client_wait (fx.client, id, 3000, &reply, err, sizeof err);
    assert_int_equal (rc, BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_string_equal (reply->command_id, id);
    billflow__command_reply__free_unpacked (reply, NULL);
    s_stop (&fx);
    assert_int_equal (fx.control.requests, 1); /* waiting resends nothing */
}

static void
test_nothing_listening (void **state)
{
    (void)state;
    int port;
    int holder = bf_testutil_dead_port (&port);
    control_t dead = { .port = port };
    bf_client_t *client = s_client (&dead, 150, 1);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    int attempts = 0;
    int64_t start = zclock_mono ();
    int rc = bf_client_request (client, "x-1", "control", "services.list", 0, NULL, NULL, &reply,
                                &attempts, err, sizeof err);
    int64_t elapsed = zclock_mono () - start;
    assert_int_equal (rc, BF_CLIENT_NO_ANSWER);
    assert_int_equal (attempts, 2);
    assert_true (elapsed >= 290 && elapsed <= 1800);
    bf_client_destroy (&client);
    close (holder);
    assert_non_null (strstr (err, "no connection"));
}

static void
test_interrupted (void **state)
{
    (void)state;
    fixture_t fx;
    s_start (&fx, MODE_SILENT, 5000, 5);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    zsys_interrupted = 1;
    int64_t start = zclock_mono ();
    int rc = bf_client_request (fx.client, "x-2", "control", "services.list", 0, NULL, NULL, &reply,
                                NULL, err, sizeof err);
    zsys_interrupted = 0;
    assert_int_equal (rc, BF_CLIENT_INTERRUPTED);
    assert_null (reply);
    assert_true (zclock_mono () - start < 1000);
    s_stop (&fx);
}

/*  One CURVE request with the client's key file and the server key given;
    returns the bf_client_request result.  */
static int
s_curve_request (const control_t *control, const char *server_key, const char *key_file,
                 int *attempts)
{
    bf_client_args_t args
        = { .server_key = server_key, .key_file = key_file, .timeout_ms = 400, .retries = 1 };
    bf_client_t *client = s_client_with (control, args);
    char err[256];
    Billflow__CommandReply *reply = NULL;
    int rc = bf_client_request (client, "curve-1", "control", "services.list", 0, NULL, NULL,
                                &reply, attempts, err, sizeof err);
    if (reply)
        billflow__command_reply__free_unpacked (reply, NULL);
    bf_client_destroy (&client);
    return rc;
}

static void
test_curve (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("test_client");
    char control_key[BF_CURVE_KEY_TXT], ops_key[BF_CURVE_KEY_TXT], stranger_key[BF_CURVE_KEY_TXT];
    char err[256], path[512];
    assert_int_equal (bf_curve_keygen (dir, "control", control_key, err, sizeof err), 0);
    assert_int_equal (bf_curve_keygen (dir, "ops-kim", ops_key, err, sizeof err), 0);
    assert_int_equal (bf_curve_keygen (dir, "stranger", stranger_key, err, sizeof err), 0);
    char list[512];
    snprintf (list, sizeof list, "%s/allowed_keys", dir);
    FILE *file = fopen (list, "w");
    assert_non_null (file);
    fprintf (file, "ops-kim  operator  %s\n", ops_key);
    fclose (file);
    assert_int_equal (chmod (list, 0600), 0); /* private, as bf_secfile.h wants */
    bf_zap_args_t zargs = { .allowed_keys = list };
    zactor_t *zap = zactor_new (bf_zap_actor, &zargs);
    assert_non_null (zap);
    snprintf (path, sizeof path, "%s/control.key_secret", dir);
    zcert_t *cert = bf_curve_load_secret (path, err, sizeof err);
    assert_non_null (cert);
    control_t control;
    zactor_t *actor = s_control_start_curve (&control, MODE_ANSWER, cert);

    /*  An allowed key gets its answer.  */
    char ops[512], stranger[512];
    snprintf (ops, sizeof ops, "%s/ops-kim.key_secret", dir);
    snprintf (stranger, sizeof stranger, "%s/stranger.key_secret", dir);
    int attempts = 0;
    assert_int_equal (s_curve_request (&control, control_key, ops, &attempts), BF_CLIENT_ANSWERED);
    assert_int_equal (attempts, 1);
    /*  A key control does not list, or the wrong server key: the handshake
        fails, nothing reaches control, and the client gives up.  */
    assert_int_equal (s_curve_request (&control, control_key, stranger, &attempts),
                      BF_CLIENT_NO_ANSWER);
    assert_int_equal (attempts, 2);
    assert_int_equal (s_curve_request (&control, stranger_key, ops, &attempts),
                      BF_CLIENT_NO_ANSWER);

    zactor_destroy (&actor);
    zactor_destroy (&zap);
    zcert_destroy (&cert);
    assert_int_equal (control.requests, 1);
    bf_testutil_rmdir (&dir);
}

static void
test_new_errors (void **state)
{
    (void)state;
    char err[256];
    bf_client_args_t args = { .endpoints = "", .timeout_ms = 100, .retries = 0 };
    assert_null (bf_client_new (&args, err, sizeof err));
    assert_non_null (strstr (err, "endpoint"));

    args.endpoints = "tcp://127.0.0.1:1";
    args.timeout_ms = 0;
    assert_null (bf_client_new (&args, err, sizeof err));

    args.timeout_ms = 100;
    args.endpoints = "nonsense://here";
    assert_null (bf_client_new (&args, err, sizeof err));
    assert_non_null (strstr (err, "nonsense://here"));

    args.endpoints = " , ";
    assert_null (bf_client_new (&args, err, sizeof err));

    /*  A server key needs the client's own key file.  */
    args.endpoints = "tcp://127.0.0.1:1";
    args.server_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    args.key_file = NULL;
    assert_null (bf_client_new (&args, err, sizeof err));
    assert_non_null (strstr (err, "key"));

    /*  An unreadable key file, and a server key that is no key.  */
    args.key_file = "/nonexistent/ops.key_secret";
    assert_null (bf_client_new (&args, err, sizeof err));
    assert_non_null (strstr (err, "/nonexistent/ops.key_secret"));
    args.server_key = "not-a-key";
    assert_null (bf_client_new (&args, err, sizeof err));
    assert_non_null (strstr (err, "server key"));
    args.key_file = NULL;

    /*  Several endpoints, spaces around commas, no CURVE: fine.  */
    args.server_key = "";
    args.endpoints = "tcp://127.0.0.1:1, tcp://127.0.0.1:2";
    bf_client_t *client = bf_client_new (&args, err, sizeof err);
    assert_non_null (client);
    bf_client_destroy (&client);
}

/*  The pause after a "busy" answer follows control's retry_after_ms hint
    (floor 2 ms, a little jitter, cap 8 s); without a hint it is the old
    250 ms doubling to 8 s.  */
static void
test_busy_pause (void **state)
{
    (void)state;
    /*  No hint (an older control): 250, 500, ... 8000, then stays.  */
    assert_int_equal (bf_client_busy_pause_ms (0, 0, 7), 250);
    assert_int_equal (bf_client_busy_pause_ms (0, 1, 7), 500);
    assert_int_equal (bf_client_busy_pause_ms (0, 5, 7), 8000);
    assert_int_equal (bf_client_busy_pause_ms (0, 40, 7), 8000);
    /*  A hint is followed, whatever the count: from it to a quarter more.  */
    for (uint32_t r = 0; r < 1000; r += 37) {
        int pause = bf_client_busy_pause_ms (11, 3, r);
        assert_true (pause >= 11 && pause <= 11 + 11 / 4 + 1);
        pause = bf_client_busy_pause_ms (400, 0, r);
        assert_true (pause >= 400 && pause <= 501);
    }
    /*  The jitter is real: different draws, different pauses.  */
    assert_int_not_equal (bf_client_busy_pause_ms (400, 0, 0),
                          bf_client_busy_pause_ms (400, 0, 50));
    /*  A floor of 2 ms, and never more than 8 s.  */
    assert_in_range (bf_client_busy_pause_ms (1, 0, 0), 2, 3);
    assert_in_range (bf_client_busy_pause_ms (1, 0, 1), 2, 3);
    assert_int_equal (bf_client_busy_pause_ms (60000, 0, 0), 8000);
    assert_int_equal (bf_client_busy_pause_ms (7999, 0, 999), 8000);
}

static int
s_group_setup (void **state)
{
    if (getenv ("BF_TEST_VERBOSE"))
        bf_log_init ("test_client", BF_LOG_DEBUG, false);
    /*  No CZMQ signal handler: a test sets zsys_interrupted itself.  */
    zsys_handler_set (NULL);
    return bf_testutil_quiet_setup (state);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_answers),
        cmocka_unit_test (test_arguments_reach_control),
        cmocka_unit_test (test_second_attempt_answered),
        cmocka_unit_test (test_no_answer),
        cmocka_unit_test (test_stale_answer_ignored),
        cmocka_unit_test (test_garbage_ignored),
        cmocka_unit_test (test_wait_for_late_answer),
        cmocka_unit_test (test_nothing_listening),
        cmocka_unit_test (test_interrupted),
        cmocka_unit_test (test_new_errors),
        cmocka_unit_test (test_curve),
        cmocka_unit_test (test_busy_pause),
    };
    if (getenv ("BF_TEST_FILTER"))
        cmocka_set_test_filter (getenv ("BF_TEST_FILTER"));
    return cmocka_run_group_tests_name ("bf_client", tests, s_group_setup,
                                        bf_testutil_quiet_teardown);
}
