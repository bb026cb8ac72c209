/*  Integration: the settle binary on a real PostgreSQL.
    - the worked example of billing-rules.md comes out to the won, end to end
      (import, settle --once, export-bills);
    - re-running a period adds nothing (G1); every bill has one event, and
      event sequences are gapless (G2, G3 on the database side);
    - killed with SIGKILL at each fault point and started again, a run ends
      with exactly the bills of an uninterrupted run (G7);
    - two settle processes share one run;
    - a subscriber whose data breaks a rule is recorded, the run goes on, and
      it is re-rated after the data is fixed;
    - commands through the control link: start, status, stop, resume, a
      repeated command_id, an unknown verb, garbage frames (G6, G8).  */

#include <czmq.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "bf_testdb.h"
#include "bf_text.h"
#include "bf_uuid.h"
#include "bf_wire.h"

/*  Runs the settle binary with extra environment (NULL-terminated list of
    "NAME=value"); blocks until it exits. Returns its exit status, or
    128 + signal when a signal ended it; output goes to *output.  */
static int
s_settle (const char *db, char **output, const char *const *env, const char *args)
{
    char envs[2048] = "";
    for (size_t i = 0; env && env[i]; i++) {
        strcat (envs, env[i]);
        strcat (envs, " ");
    }
    char command[4096];
    snprintf (command, sizeof command,
              "env %s BILLFLOW_DB_CONNINFO='%s' BILLFLOW_DB_CONNECT_TIMEOUT_MS=5000"
              " BILLFLOW_SETTLE_PUB_ENDPOINT='tcp://127.0.0.1:*' BILLFLOW_SETTLE_POLL_MS=50"
              " BILLFLOW_SETTLE_HEARTBEAT_MS=200"
              " sh -c 'exec \"$BF_SETTLE\" %s' 2>&1",
              envs, db, args);
    FILE *pipe = popen (command, "r");
    assert_non_null (pipe);
    bf_text_buf_t out = { 0 };
    size_t n;
    while (bf_text_buf_reserve (&out, 4096) == 0
           && (n = fread (out.data + out.len, 1, 4096, pipe)) > 0)
        out.len += n;
    assert_int_equal (bf_text_buf_add (&out, "", 0), 0); /* terminated, also when nothing came */
    char *buf = out.data;
    int status = pclose (pipe);
    int rc = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    fprintf (stderr, "# settle %s (%s) -> %d\n", args, envs, rc);
    if (output)
        *output = buf;
    else
        free (buf);
    return rc;
}

static char *
s_db_with_data (int subscribers, int seed)
{
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    char *out = NULL;
    int rc = bf_testdb_billdata (db, &out, "generate --subscribers %d --period 2026-10 --seed %d",
                                 subscribers, seed);
    if (rc != 0)
        fail_msg ("generate failed: %s", out);
    free (out);
    return db;
}

/*  Digest of every bill and line of the period (ids and times excluded).  */
static void
s_digest (const char *db, char out[64])
{
    PGconn *conn = bf_testdb_connect (db);
    assert_int_equal (
        bf_testdb_text (conn,
                        "SELECT md5 (coalesce ((SELECT string_agg (concat_ws (',', subscriber_id,"
                        " total, due_date, line_count), ';' ORDER BY subscriber_id) FROM bill"
                        " WHERE period = '2026-10'), '') || '|' ||"
                        " coalesce ((SELECT string_agg (concat_ws (',', subscriber_id, line_no,"
                        " code, amount), ';' ORDER BY subscriber_id, line_no) FROM bill_line"
                        " WHERE period = '2026-10'), ''))",
                        out, 64),
        0);
    PQfinish (conn);
}

/*  What must hold after any run: one event per bill, gapless sequences,
    lines summing to totals, totals multiples of 10.  */
static void
s_check_invariants (const char *db)
{
    PGconn *conn = bf_testdb_connect (db);
    int64_t bills = bf_testdb_scalar (conn, "SELECT count(*) FROM bill");
    assert_true (bills > 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox"), bills);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(DISTINCT (period, bill_id))"
                                              " FROM outbox"),
                      bills);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox o WHERE NOT EXISTS"
                                              " (SELECT 1 FROM bill b WHERE b.period = o.period"
                                              " AND b.bill_id = o.bill_id"
                                              " AND b.subscriber_id = o.subscriber_id)"),
                      0);
    /*  Every event sequenced, 1..N without a gap.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox WHERE seq IS NULL"), 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT max(seq) FROM outbox"), bills);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT last_seq FROM relay_state"), bills);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM bill b WHERE total <>"
                                              " (SELECT sum(amount) FROM bill_line l WHERE"
                                              " l.period = b.period AND l.subscriber_id ="
                                              " b.subscriber_id) OR line_count <> (SELECT count(*)"
                                              " FROM bill_line l WHERE l.period = b.period AND"
                                              " l.subscriber_id = b.subscriber_id)"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM bill WHERE total % 10 <> 0"
                                              " OR total < 0"),
                      0);
    PQfinish (conn);
}

static void
test_worked_example_end_to_end (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    char *out = NULL;
    char command[1024];
    snprintf (command, sizeof command, "import '%s/tests/integration/data/small'",
              getenv ("BF_SOURCE_ROOT"));
    assert_int_equal (bf_testdb_billdata (db, &out, "%s", command), 0);
    free (out);
    assert_int_equal (s_settle (db, &out, NULL, "--once --period 2026-10"), 0);
    assert_non_null (strstr (out, "COMPLETED"));
    free (out);

    char *dir = bf_test_mkdtemp ();
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period 2026-10 '%s'", dir), 0);
    free (out);
    char path[512];
    snprintf (path, sizeof path, "%s/bill_lines.csv", dir);
    char *lines = bf_test_slurp (path);
    /*  docs/billing-rules.md, worked example: every line, in order.  */
    /*  Labels: the catalogue's names at settlement (plans.csv, addons.csv)
        and the fixed labels of docs/templates.md.  */
    const char *expected = "1,2026-10,1,PLAN:LTE_43,13870,LTE 데이터 43\n"
                           "1,2026-10,2,PLAN:5G_59,39967,\"5G 스탠다드, 59\"\n"
                           "1,2026-10,3,OVERAGE_DATA,7997,데이터 초과 사용료\n"
                           "1,2026-10,4,ADDON:VCOLORING,1277,V컬러링\n"
                           "1,2026-10,5,DISC_CONTRACT,-13459,선택약정 할인\n"
                           "1,2026-10,6,DISC_FAMILY,-3300,가족결합 할인\n"
                           "1,2026-10,7,DISC_LOYALTY,-3707,장기고객 할인\n"
                           "1,2026-10,8,CHARGE:DEVICE_INSTALLMENT,31250,단말기 할부금\n"
                           "1,2026-10,9,CHARGE:MICRO_PAYMENT,12000,소액결제\n"
                           "1,2026-10,10,CHARGE:CONTENT,5500,콘텐츠 이용료\n"
                           "1,2026-10,11,VAT,4814,부가가치세\n"
                           "1,2026-10,12,ARREARS,15000,미납 요금\n"
                           "1,2026-10,13,ROUNDING,-9,원 단위 절사\n"
                           "2,2026-10,1,";
    if (!strstr (lines, expected))
        fail_msg ("subscriber 1's lines differ from the worked example:\n%s", lines);
    snprintf (path, sizeof path, "%s/bills.csv", dir);
    char *bills = bf_test_slurp (path);
    assert_non_null (strstr (bills, "\n1,2026-10,111200,2026-11-25,13\n"));
    /*  Subscriber 5 left in September but still owes an installment: a
        charges-only bill; subscriber 4 started on the 11th.  */
    assert_non_null (strstr (bills, "\n5,2026-10,20000,2026-11-20,1\n"));
    free (lines);
    free (bills);
    bf_test_rmdir (&dir);
    s_check_invariants (db);
    bf_testdb_drop (&db);
}

static void
test_rerun_adds_nothing (void **state)
{
    (void)state;
    char *db = s_db_with_data (3000, 5);
    char *out = NULL;
    const char *env[] = { "BILLFLOW_SETTLE_CHUNK_SIZE=250", NULL };
    assert_int_equal (s_settle (db, &out, env, "--once --period 2026-10"), 0);
    free (out);
    s_check_invariants (db);
    char before[64], after[64];
    s_digest (db, before);
    PGconn *conn = bf_testdb_connect (db);
    int64_t bills = bf_testdb_scalar (conn, "SELECT count(*) FROM bill");
    assert_in_range (bills, 2800, 3000);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT chunks_total FROM settlement_run"), 12);

    assert_int_equal (s_settle (db, &out, env, "--once --period 2026-10"), 0);
    assert_non_null (strstr (out, "already settled"));
    free (out);
    s_digest (db, after);
    assert_string_equal (before, after);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM settlement_run"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM outbox"), bills);

    /*  Bad arguments are refused with a message and exit 2.  */
    assert_int_equal (s_settle (db, &out, NULL, "--once --period 2026-13"), 2);
    assert_non_null (strstr (out, "not a period"));
    free (out);
    assert_int_equal (s_settle (db, &out, NULL, "--once"), 2);
    free (out);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_killed_runs_resume_to_the_same_bills (void **state)
{
    (void)state;
    char *clean = s_db_with_data (4000, 9);
    const char *base_env[] = { "BILLFLOW_SETTLE_CHUNK_SIZE=200", NULL };
    assert_int_equal (s_settle (clean, NULL, base_env, "--once --period 2026-10"), 0);
    char expected[64];
    s_digest (clean, expected);
    bf_testdb_drop (&clean);

    static const char *faults[]
        = { "worker.mid_copy:3", "worker.before_commit:4", "worker.after_commit:5",
            "relay.after_commit:2", "relay.mid_publish:3" };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        char *db = s_db_with_data (4000, 9);
        char fault[128];
        snprintf (fault, sizeof fault, "BF_FAULT=%s", faults[i]);
        const char *crash_env[] = { "BILLFLOW_SETTLE_CHUNK_SIZE=200", "BILLFLOW_SETTLE_WORKERS=2",
                                    "BILLFLOW_SETTLE_LEASE_MS=1000", fault, NULL };
        char *out = NULL;
        int rc = s_settle (db, &out, crash_env, "--once --period 2026-10");
        if (rc != 128 + SIGKILL)
            fail_msg ("%s: expected death by SIGKILL, got %d:\n%s", faults[i], rc, out);
        free (out);
        const char *resume_env[]
            = { "BILLFLOW_SETTLE_CHUNK_SIZE=200", "BILLFLOW_SETTLE_LEASE_MS=1000", NULL };
        rc = s_settle (db, &out, resume_env, "--once --period 2026-10");
        if (rc != 0)
            fail_msg ("%s: resume exited %d:\n%s", faults[i], rc, out);
        free (out);
        char got[64];
        s_digest (db, got);
        if (strcmp (got, expected) != 0)
            fail_msg ("%s: bills after kill and resume differ from a clean run", faults[i]);
        s_check_invariants (db);
        bf_testdb_drop (&db);
    }
}

static void
test_two_processes_share_a_run (void **state)
{
    (void)state;
    char *db = s_db_with_data (6000, 3);
    char command[4096];
    snprintf (command, sizeof command,
              "run () { BILLFLOW_DB_CONNINFO='%s' BILLFLOW_SETTLE_CHUNK_SIZE=100"
              " BILLFLOW_SETTLE_WORKERS=1 BILLFLOW_SETTLE_POLL_MS=50"
              " BILLFLOW_SETTLE_PUB_ENDPOINT='tcp://127.0.0.1:*'"
              " \"$BF_SETTLE\" --once --period 2026-10 >/dev/null 2>&1; };"
              " run & a=$!; run & b=$!; s=0; wait $a || s=1; wait $b || s=1; exit $s",
              db);
    assert_int_equal (system (command), 0);
    s_check_invariants (db);
    PGconn *conn = bf_testdb_connect (db);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM settlement_run"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM settlement_chunk"
                                              " WHERE state <> 'DONE'"),
                      0);
    /*  Both processes took chunks.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(DISTINCT regexp_replace (done_by,"
                                              " ':w[0-9]+$', '')) FROM settlement_chunk"),
                      2);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

static void
test_rating_errors_are_recorded_and_rerated (void **state)
{
    (void)state;
    char *db = s_db_with_data (1500, 4);
    PGconn *conn = bf_testdb_connect (db);
    /*  Two broken subscribers: an assignment to a plan that does not exist,
        and overlapping plan segments.  */
    assert_string_equal (bf_testdb_exec (conn, "UPDATE plan_assignment SET plan_code = 'GONE'"
                                               " WHERE subscriber_id = 7"),
                         "00000");
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO plan_assignment SELECT subscriber_id,"
                                               " plan_code, valid_from + 1, NULL FROM"
                                               " plan_assignment WHERE subscriber_id = 11"
                                               " ORDER BY valid_from DESC LIMIT 1"),
                         "00000");
    char *out = NULL;
    const char *env[] = { "BILLFLOW_SETTLE_CHUNK_SIZE=100", NULL };
    assert_int_equal (s_settle (db, &out, env, "--once --period 2026-10"), 3);
    assert_non_null (strstr (out, "2 rating errors"));
    free (out);
    char reason[256];
    bf_testdb_text (conn, "SELECT reason FROM rating_error WHERE subscriber_id = 7", reason,
                    sizeof reason);
    assert_non_null (strstr (reason, "GONE"));
    bf_testdb_text (conn, "SELECT reason FROM rating_error WHERE subscriber_id = 11", reason,
                    sizeof reason);
    assert_non_null (strstr (reason, "overlap"));
    int64_t bills = bf_testdb_scalar (conn, "SELECT count(*) FROM bill");
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM bill WHERE subscriber_id"
                                              " IN (7, 11)"),
                      0);
    char before[64];
    s_digest (db, before);

    /*  Fix one of them; a new run re-rates only the chunks holding them.  */
    assert_string_equal (bf_testdb_exec (conn, "UPDATE plan_assignment SET plan_code = 'LTE_43'"
                                               " WHERE subscriber_id = 7"),
                         "00000");
    assert_int_equal (s_settle (db, &out, env, "--once --period 2026-10"), 3);
    assert_non_null (strstr (out, "re-rate"));
    assert_non_null (strstr (out, "1 rating error"));
    free (out);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM bill"), bills + 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM rating_error"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT chunks_total FROM settlement_run"
                                              " ORDER BY run_id DESC LIMIT 1"),
                      1);
    /*  Nobody else's bill changed.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM bill WHERE subscriber_id <> 7"
                                              " AND run_id <> 1"),
                      0);
    PQfinish (conn);
    bf_testdb_drop (&db);
    (void)before;
}

/*  --- commands through the control link -------------------------------- */

/*  The settle service a test started; the teardown ends it if the test
    failed before stopping it.  */
static pid_t s_child;

static int
s_teardown_child (void **state)
{
    (void)state;
    if (s_child > 0) {
        kill (s_child, SIGKILL);
        waitpid (s_child, NULL, 0);
        s_child = 0;
    }
    return 0;
}

typedef struct {
    bf_test_control_t control;
    char *db;
    pid_t pid;
} s_control_t;

static void
s_control_start (s_control_t *c, int subscribers)
{
    c->db = s_db_with_data (subscribers, 8);
    assert_int_equal (bf_test_control_bind (&c->control), 0);
    char endpoint[64], replay[64], conninfo[160];
    snprintf (endpoint, sizeof endpoint, "BILLFLOW_CONTROL_ENDPOINT=tcp://127.0.0.1:%d",
              c->control.port);
    snprintf (replay, sizeof replay, "BILLFLOW_SETTLE_REPLAY_ENDPOINT=tcp://127.0.0.1:*");
    snprintf (conninfo, sizeof conninfo, "BILLFLOW_DB_CONNINFO=%s", c->db);
    c->pid = fork ();
    assert_true (c->pid >= 0);
    s_child = c->pid;
    if (c->pid == 0) {
        char *envp[] = { endpoint,
                         replay,
                         conninfo,
                         "BILLFLOW_SETTLE_PUB_ENDPOINT=tcp://127.0.0.1:*",
                         "BILLFLOW_SETTLE_CHUNK_SIZE=50",
                         "BILLFLOW_SETTLE_POLL_MS=50",
                         "BILLFLOW_CONTROL_HEARTBEAT_MS=200",
                         "BILLFLOW_SETTLE_WORKERS=1",
                         NULL };
        /*  Keep the cluster's PG* settings: the conninfo names only dbname.  */
        for (char **e = envp; *e; e++)
            putenv (*e);
        execl (getenv ("BF_SETTLE"), "settle", NULL);
        _exit (127);
    }
    assert_int_equal (bf_test_control_registered (&c->control, "settle", 10000), 0);
}

static void
s_control_stop (s_control_t *c)
{
    kill (c->pid, SIGTERM);
    int status = 0;
    waitpid (c->pid, &status, 0);
    s_child = 0;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    bf_test_control_close (&c->control);
    bf_testdb_drop (&c->db);
}

/*  Sends a settle command (stored first, as control does); its reply.  */
static Billflow__CommandReply *
s_command (s_control_t *c, bf_wire_msg_t *in, const char *id, const char *verb, const char *period,
           bool store)
{
    Billflow__CommandReply *r = bf_test_control_command (&c->control, c->db, in, id, "settle", verb,
                                                         period ? "period" : NULL, period, store);
    assert_non_null (r);
    return r;
}

/*  True when json (any spacing) contains needle (written without spaces).  */
static bool
s_json_has (const char *json, const char *needle)
{
    char *flat = strdup (json), *out = flat;
    for (const char *p = json; *p; p++)
        if (*p != ' ')
            *out++ = *p;
    *out = 0;
    bool found = strstr (flat, needle) != NULL;
    if (!found)
        fprintf (stderr, "# '%s' not in %s\n", needle, json);
    free (flat);
    return found;
}

static void
s_wait_state (s_control_t *c, const char *state)
{
    PGconn *conn = bf_testdb_connect (c->db);
    char got[32] = "";
    for (int i = 0; i < 300 && strcmp (got, state); i++) {
        bf_testdb_text (conn, "SELECT state FROM settlement_run ORDER BY run_id DESC LIMIT 1", got,
                        sizeof got);
        zclock_sleep (50);
    }
    assert_string_equal (got, state);
    PQfinish (conn);
}

static void
test_commands_through_the_control_link (void **state)
{
    (void)state;
    s_control_t c = { 0 };
    s_control_start (&c, 8000);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;

    Billflow__CommandReply *r = s_command (&c, &in, "cmd-start-1", "run.start", "2026-10", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_true (s_json_has (r->result, "\"outcome\":\"started\""));
    assert_false (r->replayed);
    char first[1024];
    snprintf (first, sizeof first, "%s", r->result);

    r = s_command (&c, &in, "cmd-stop-1", "run.stop", "2026-10", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_true (s_json_has (r->result, "\"outcome\":\"changed\""));
    s_wait_state (&c, "STOPPED");

    r = s_command (&c, &in, "cmd-resume-1", "run.resume", "2026-10", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    s_wait_state (&c, "COMPLETED");

    /*  G6: the same command_id again executes nothing, answers the same.  */
    r = s_command (&c, &in, "cmd-start-1", "run.start", "2026-10", false);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_true (r->replayed);
    assert_string_equal (r->result, first);
    PGconn *conn = bf_testdb_connect (c.db);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM settlement_run"), 1);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM applied_command"), 3);

    /*  A new command_id for a settled period: nothing to do.  */
    r = s_command (&c, &in, "cmd-start-2", "run.start", "2026-10", true);
    assert_true (s_json_has (r->result, "\"outcome\":\"already_settled\""));

    /*  G8: unknown verb, bad period, garbage frames: errors, and it lives.  */
    r = s_command (&c, &in, "cmd-x-1", "run.explode", "2026-10", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_non_null (strstr (r->error, "unknown verb"));
    r = s_command (&c, &in, "cmd-bad-1", "run.start", "2026-13", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    assert_non_null (strstr (r->error, "not a period"));
    r = s_command (&c, &in, "cmd-bad-1", "run.start", "2026-13", false);
    assert_true (r->replayed);
    const char *garbage[] = { "CMD", "not eight bytes", "\x01\x02\x03" };
    bf_test_control_send_raw (&c.control, garbage, 3);
    const char *lonely[] = { "lonely frame" };
    bf_test_control_send_raw (&c.control, lonely, 1);
    r = s_command (&c, &in, "cmd-alive-1", "run.start", "2026-10", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_true (s_json_has (r->result, "\"state\":\"COMPLETED\""));
    bf_wire_msg_reset (&in);
    PQfinish (conn);
    s_check_invariants (c.db);
    s_control_stop (&c);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_worked_example_end_to_end),
        cmocka_unit_test (test_rerun_adds_nothing),
        cmocka_unit_test (test_killed_runs_resume_to_the_same_bills),
        cmocka_unit_test (test_two_processes_share_a_run),
        cmocka_unit_test (test_rating_errors_are_recorded_and_rerated),
        cmocka_unit_test_teardown (test_commands_through_the_control_link, s_teardown_child),
    };
    //  settle serves its event stream over CURVE only: every settle started
    //  here gets a key pair and an empty list through the environment.
    char *keys = bf_test_mkdtemp ();
    if (!keys || bf_test_settle_keys_env (keys) != 0)
        return 1;
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    bf_test_rmdir (&keys);
    return rc;
}
