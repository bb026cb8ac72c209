/*  itest_link — bf_link, the services' link to control, run in-process
    against a stand-in control (bf_testdb) and a real test database:

    - several endpoints, one of them a standby that binds nothing: the link
      registers and every command comes through (ZMQ_IMMEDIATE);
    - control answers heartbeats: the link stays; control stops answering:
      after about three intervals the link reconnects and registers again,
      and keeps doing so until control answers;
    - CURVE: a link whose key is in the allowed list registers through a
      CURVE ROUTER and the ZAP handler; a key not in the list, or a wrong
      idea of control's key, gets nothing through; a link without its key
      file, or with a secret key file others can read, does not start;
    - a command that meets an unreachable database, or a transient failure,
      is answered FAILED with retryable set and nothing recorded.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf_curve.h"
#include "bf_link.h"
#include "bf_log.h"
#include "bf_testdb.h"
#include "bf_text.h"
#include "bf_wire.h"

#define S_BEAT 100 /* heartbeat interval of the links under test, ms */

//  --------------------------------------------------------------------------
//  A verb table of our own

/*  test.echo: answers {"echo": value}; value "flaky" fails for a passing
    reason (BF_LINK_RETRY).  */
static bf_link_status_t
s_echo (void *context, PGconn *conn, const Billflow__Command *cmd, char *result, size_t resultsize,
        char *error, size_t errorsize)
{
    (void)context;
    (void)conn;
    const char *value = bf_link_arg (cmd, "value");
    if (value && !strcmp (value, "flaky")) {
        snprintf (error, errorsize, "flaky");
        return BF_LINK_RETRY;
    }
    /*  "fail:TEXT": refused, with TEXT cut by bytes the way a careless
        verb cuts it (possibly inside a character).  */
    if (value && !strncmp (value, "fail:", 5)) {
        snprintf (error, errorsize, "bad value '%.40s'", value + 5);
        return BF_LINK_FAILED;
    }
    /*  A value holding '"' makes a result that is not JSON, which
        applied_command refuses (SQLSTATE 22P02).  */
    snprintf (result, resultsize, "{\"echo\": \"%s\"}", value ? value : "");
    return BF_LINK_OK;
}

static const bf_link_verb_t s_verbs[] = {
    { "test.echo", false, s_echo },
    { NULL, false, NULL },
};

static zactor_t *
s_link_start (const char *conninfo, const char *endpoints, const char *server_key,
              const char *key_file)
{
    bf_link_args_t args = { .conninfo = conninfo,
                            .endpoint = endpoints,
                            .service = "settle",
                            .instance = "itest-link",
                            .heartbeat_ms = S_BEAT,
                            .verbs = s_verbs,
                            .context = NULL,
                            .server_key = server_key,
                            .key_file = key_file };
    zactor_t *link = zactor_new (bf_link_actor, &args);
    assert_non_null (link);
    return link;
}

/*  Field index of the link's STATS: 0 applied, 1 replayed, 2 failed,
    3 rejected frames, 4 reconnects.  */
static long
s_link_stat (zactor_t *link, int index)
{
    zstr_send (link, "STATS");
    zmsg_t *msg = zmsg_recv (link);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 5);
    long value = -1;
    for (int i = 0; i <= index; i++) {
        char *text = zmsg_popstr (msg);
        if (i == index)
            value = strtol (text, NULL, 10);
        free (text);
    }
    zmsg_destroy (&msg);
    return value;
}

/*  True when the actor has ended (it failed to start): what comes back on
    its pipe is the thread's final signal, not an answer.  */
static bool
s_actor_ended (zactor_t *actor)
{
    zsock_set_sndtimeo (actor, 100);
    zsock_set_rcvtimeo (actor, 2000);
    zstr_send (actor, "STATS");
    zmsg_t *msg = zmsg_recv (actor);
    bool ended = !msg || zmsg_signal (msg) >= 0;
    zmsg_destroy (&msg);
    return ended;
}

static Billflow__CommandReply *
s_echo_command (bf_test_control_t *control, const char *db, bf_wire_msg_t *in, const char *id,
                const char *value, bool store)
{
    Billflow__CommandReply *r = bf_test_control_command (control, db, in, id, "settle", "test.echo",
                                                         "value", value, store);
    assert_non_null (r);
    return r;
}

//  --------------------------------------------------------------------------
//  Endpoints and liveness

static void
test_reregisters_when_control_goes_quiet (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    //  A standby control: its endpoint is listed, nothing is bound there.
    bf_test_control_t control, standby;
    assert_int_equal (bf_test_control_bind (&control), 0);
    assert_int_equal (bf_test_control_bind (&standby), 0);
    int standby_port = standby.port;
    bf_test_control_close (&standby);
    assert_int_not_equal (standby_port, control.port);
    char endpoints[128];
    snprintf (endpoints, sizeof endpoints, "tcp://127.0.0.1:%d, tcp://127.0.0.1:%d", standby_port,
              control.port);
    zactor_t *link = s_link_start (db, endpoints, NULL, NULL);
    assert_int_equal (bf_test_control_registered (&control, "settle", 15000), 0);

    //  Heartbeats answered: no reconnect, no second registration.
    assert_int_equal (bf_test_control_registered (&control, "settle", 10 * S_BEAT), -1);
    assert_int_equal (s_link_stat (link, 4), 0);
    //  Every command comes through: nothing waits for the standby.
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    for (int i = 0; i < 6; i++) {
        char id[32], value[16], expect[48];
        snprintf (id, sizeof id, "link-echo-%d", i);
        snprintf (value, sizeof value, "v%d", i);
        snprintf (expect, sizeof expect, "\"echo\": \"v%d\"", i);
        Billflow__CommandReply *r = s_echo_command (&control, db, &in, id, value, true);
        assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
        assert_false (r->retryable);
        assert_non_null (strstr (r->result, expect));
    }

    //  Control goes quiet: about three intervals later the link registers
    //  again, and again every three intervals while control stays quiet.
    bf_test_control_answer_heartbeats (&control, false);
    int64_t quiet_at = zclock_mono ();
    assert_int_equal (bf_test_control_registered (&control, "settle", 3000), 0);
    int64_t waited = zclock_mono () - quiet_at;
    fprintf (stderr, "# registered again %lld ms after control went quiet\n", (long long)waited);
    assert_true (waited >= 3 * S_BEAT - S_BEAT - 20);
    assert_true (s_link_stat (link, 4) >= 1);
    int64_t first_again = zclock_mono ();
    assert_int_equal (bf_test_control_registered (&control, "settle", 3000), 0);
    waited = zclock_mono () - first_again;
    assert_true (waited >= 3 * S_BEAT - 20);
    assert_true (s_link_stat (link, 4) >= 2);

    //  Control answers again: commands reach the new connection, and the
    //  link stays put.
    bf_test_control_answer_heartbeats (&control, true);
    Billflow__CommandReply *r = s_echo_command (&control, db, &in, "link-echo-back", "back", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    long reconnects = s_link_stat (link, 4);
    zclock_sleep (10 * S_BEAT);
    assert_int_equal (s_link_stat (link, 4), reconnects);
    //  The same command_id again: the stored answer.
    r = s_echo_command (&control, db, &in, "link-echo-back", "back", false);
    assert_true (r->replayed);

    bf_wire_msg_reset (&in);
    zactor_destroy (&link);
    bf_test_control_close (&control);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  CURVE

static void
test_curve (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    char *dir = bf_test_mkdtemp ();
    char allowed[41], intruder[41], err[512];
    assert_int_equal (bf_curve_keygen (dir, "settle-1", allowed, err, sizeof err), 0);
    assert_int_equal (bf_curve_keygen (dir, "intruder", intruder, err, sizeof err), 0);
    char list[256], text[256], secret[256], intruder_secret[256];
    snprintf (list, sizeof list, "%s/allowed_keys", dir);
    snprintf (text, sizeof text, "settle-1 service %s\n", allowed);
    assert_int_equal (bf_test_write (list, text), 0);
    snprintf (secret, sizeof secret, "%s/settle-1.key_secret", dir);
    snprintf (intruder_secret, sizeof intruder_secret, "%s/intruder.key_secret", dir);

    bf_zap_args_t zargs = { .allowed_keys = list };
    zactor_t *zap = zactor_new (bf_zap_actor, &zargs);
    zcert_t *server = zcert_new ();
    bf_test_control_t control;
    assert_int_equal (bf_test_control_bind_curve (&control, server), 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", control.port);

    //  The listed key registers, and commands work through CURVE.
    zactor_t *link = s_link_start (db, endpoint, zcert_public_txt (server), secret);
    assert_int_equal (bf_test_control_registered (&control, "settle", 5000), 0);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    Billflow__CommandReply *r = s_echo_command (&control, db, &in, "curve-echo-1", "sealed", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_int_equal (s_link_stat (link, 4), 0);
    zactor_destroy (&link);

    //  A key not in the list: nothing arrives; the ZAP handler reports it.
    link = s_link_start (db, endpoint, zcert_public_txt (server), intruder_secret);
    assert_int_equal (bf_test_control_registered (&control, "settle", 1500), -1);
    zsock_set_rcvtimeo (zap, 1000);
    bool reported = false;
    zmsg_t *msg;
    while (!reported && (msg = zmsg_recv (zap))) {
        char *kind = zmsg_popstr (msg), *key = zmsg_popstr (msg);
        reported = kind && key && !strcmp (kind, "REFUSED") && !strcmp (key, intruder);
        free (kind);
        free (key);
        zmsg_destroy (&msg);
    }
    assert_true (reported);
    zactor_destroy (&link);

    //  The right key pair but the wrong idea of control's key: nothing.
    zcert_t *impostor = zcert_new ();
    link = s_link_start (db, endpoint, zcert_public_txt (impostor), secret);
    assert_int_equal (bf_test_control_registered (&control, "settle", 1500), -1);
    zactor_destroy (&link);
    zcert_destroy (&impostor);

    //  Misconfigured links do not start.
    link = s_link_start (db, endpoint, zcert_public_txt (server), NULL);
    assert_true (s_actor_ended (link));
    zactor_destroy (&link);
    link = s_link_start (db, endpoint, "not a key", secret);
    assert_true (s_actor_ended (link));
    zactor_destroy (&link);
    assert_int_equal (chmod (secret, 0644), 0);
    link = s_link_start (db, endpoint, zcert_public_txt (server), secret);
    assert_true (s_actor_ended (link));
    zactor_destroy (&link);
    //  A link without CURVE starts, but a CURVE control hears nothing
    //  from it.
    link = s_link_start (db, endpoint, NULL, NULL);
    assert_false (s_actor_ended (link));
    assert_int_equal (bf_test_control_registered (&control, "settle", 1000), -1);
    zactor_destroy (&link);

    bf_wire_msg_reset (&in);
    bf_test_control_close (&control);
    zcert_destroy (&server);
    zactor_destroy (&zap);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

//  --------------------------------------------------------------------------
//  Retryable failures

static void
test_retryable (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    bf_test_control_t control;
    assert_int_equal (bf_test_control_bind (&control), 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", control.port);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;

    //  A database nobody listens for.
    zactor_t *link = s_link_start ("host=127.0.0.1 port=1 dbname=nowhere", endpoint, NULL, NULL);
    assert_int_equal (bf_test_control_registered (&control, "settle", 5000), 0);
    Billflow__CommandReply *r = s_echo_command (&control, db, &in, "retry-down-1", "x", false);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_true (r->retryable);
    assert_false (r->replayed);
    assert_true (!strncmp (r->error, "retryable: ", strlen ("retryable: ")));
    zactor_destroy (&link);

    //  A transient failure of the verb: retryable, nothing recorded; the
    //  same command_id then runs.
    link = s_link_start (db, endpoint, NULL, NULL);
    assert_int_equal (bf_test_control_registered (&control, "settle", 5000), 0);
    r = s_echo_command (&control, db, &in, "retry-flaky-1", "flaky", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_true (r->retryable);
    assert_true (!strncmp (r->error, "retryable: ", strlen ("retryable: ")));
    PGconn *conn = bf_testdb_connect (db);
    assert_non_null (conn);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM applied_command"
                                              " WHERE command_id = 'retry-flaky-1'"),
                      0);
    r = s_echo_command (&control, db, &in, "retry-flaky-1", "fine", false);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_false (r->retryable);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM applied_command"
                                              " WHERE command_id = 'retry-flaky-1'"),
                      1);
    //  Failures for good are not retryable.
    r = bf_test_control_command (&control, db, &in, "retry-unknown-1", "settle", "test.nope", NULL,
                                 NULL, true);
    assert_non_null (r);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_false (r->retryable);
    PQfinish (conn);
    zactor_destroy (&link);

    bf_wire_msg_reset (&in);
    bf_test_control_close (&control);
    bf_testdb_drop (&db);
}

/*  An outcome PostgreSQL refuses for good (a result that is not JSON; an
    error cut inside a character) is not "retryable": the link stores and
    answers a FAILED outcome (issue 11, defect 2), so control does not
    forward it again forever.  */
static void
test_unstorable_outcome (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    bf_test_control_t control;
    assert_int_equal (bf_test_control_bind (&control), 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", control.port);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    zactor_t *link = s_link_start (db, endpoint, NULL, NULL);
    assert_int_equal (bf_test_control_registered (&control, "settle", 5000), 0);
    PGconn *conn = bf_testdb_connect (db);
    assert_non_null (conn);

    Billflow__CommandReply *r
        = s_echo_command (&control, db, &in, "unstorable-1", "bad\"json", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_false (r->retryable);
    assert_non_null (strstr (r->error, "could not be stored (SQLSTATE 22P02)"));
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM applied_command"
                                              " WHERE command_id = 'unstorable-1'"
                                              " AND status = 'FAILED' AND error LIKE '%22P02%'"),
                      1);
    /*  Asked again: the stored answer, not another attempt.  */
    r = s_echo_command (&control, db, &in, "unstorable-1", "bad\"json", false);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_true (r->replayed);

    /*  14 x U+AC00 cut at 40 bytes: the stored error is whole characters.  */
    char value[64] = "fail:";
    for (int i = 0; i < 14; i++)
        strcat (value, "\xea\xb0\x80");
    r = s_echo_command (&control, db, &in, "cut-1", value, true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_false (r->retryable);
    assert_true (bf_text_utf8_valid (r->error, strlen (r->error)));
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM applied_command"
                                              " WHERE command_id = 'cut-1' AND status = 'FAILED'"
                                              " AND error LIKE 'bad value %'"),
                      1);
    PQfinish (conn);
    zactor_destroy (&link);
    bf_wire_msg_reset (&in);
    bf_test_control_close (&control);
    bf_testdb_drop (&db);
}

int
main (void)
{
    bf_log_init ("itest_link", BF_LOG_INFO, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_reregisters_when_control_goes_quiet),
        cmocka_unit_test (test_curve),
        cmocka_unit_test (test_retryable),
        cmocka_unit_test (test_unstorable_outcome),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
