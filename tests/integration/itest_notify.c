/*  Integration: the notify binary with the real settle binary, the mock
    provider and PostgreSQL.
    - every bill's notice is delivered once per channel (the mock provider
      accepts exactly one message per recipient and channel), although
      providers fail transiently, one email address is rejected for good
      (its notice falls back to SMS), notify is killed with SIGKILL
      mid-dispatch, two notify processes then work at once, and every event
      is ingested a second time (G4); every attempt is recorded (G5);
    - quiet hours hold notices (visible state and reason) and release them,
      in bill order, when the window ends;
    - a killed notify's claims are taken over within seconds, and four
      dispatchers racing for one queue never claim a notice twice.  */

#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "bf_billctl.h"
#include "bf_curve.h"
#include "bf_pii.h"
#include "bf_query.h"
#include "bf_report.h"
#include "bf_testdb.h"
#include "bf_wire.h"

#define S_MAX_CHILDREN 8

static pid_t s_children[S_MAX_CHILDREN];

static void
s_track (pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (!s_children[i]) {
            s_children[i] = pid;
            return;
        }
}

static void
s_untrack (pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

/*  Ends every process a test started and did not stop.  */
static int
s_teardown (void **state)
{
    (void)state;
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            kill (s_children[i], SIGKILL);
            waitpid (s_children[i], NULL, 0);
            s_children[i] = 0;
        }
    return 0;
}

/*  Starts binary with extra environment (NULL-terminated "NAME=value"),
    output to log. Returns its pid.  */
static pid_t
s_spawn (const char *binary, const char *const *env, const char *log, const char *arg)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        for (size_t i = 0; env && env[i]; i++)
            putenv ((char *)env[i]);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
        }
        execl (binary, binary, arg, (char *)NULL);
        _exit (127);
    }
    s_track (pid);
    return pid;
}

static int
s_stop (pid_t pid, int sig)
{
    kill (pid, sig);
    int status = 0;
    waitpid (pid, &status, 0);
    s_untrack (pid);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

typedef struct {
    char *db;
    char *dir;
    pid_t mock;
    int http_port, smtp_port;
    char env[24][256]; /* shared notify environment */
    int nenv;
} s_stack_t;

static void
s_env (s_stack_t *s, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (s->env[s->nenv++], sizeof s->env[0], format, args);
    va_end (args);
}

/*  Removes the shared notify environment's entries that start with prefix
    (a setting the test wants at its default).  */
static void
s_env_drop (s_stack_t *s, const char *prefix)
{
    int kept = 0;
    for (int i = 0; i < s->nenv; i++)
        if (strncmp (s->env[i], prefix, strlen (prefix)) != 0)
            memmove (s->env[kept++], s->env[i], sizeof s->env[0]);
    s->nenv = kept;
}

/*  Milliseconds on the monotonic clock.  */
static int64_t
s_mono_ms (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*  Starts the mock provider with flags; reads its ports.  */
static void
s_mock_start (s_stack_t *s, const char *flags)
{
    char command[1024], path[512];
    snprintf (path, sizeof path, "%s/mock.out", s->dir);
    snprintf (command, sizeof command,
              "exec '%s' --http-port 0 --smtp-port 0 %s > '%s' 2> '%s/mock.err'",
              getenv ("BF_MOCKPROVIDER"), flags, path, s->dir);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        execl ("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit (127);
    }
    s_track (pid);
    s->mock = pid;
    for (int i = 0; i < 100; i++) {
        char *out = bf_test_slurp (path);
        if (out && sscanf (out, "http=%d smtp=%d", &s->http_port, &s->smtp_port) == 2
            && strstr (out, "ready")) {
            free (out);
            return;
        }
        free (out);
        usleep (100000);
    }
    fail_msg ("the mock provider did not start");
}

static size_t
s_collect (char *data, size_t size, size_t n, void *user)
{
    char **buf = user;
    size_t old = *buf ? strlen (*buf) : 0;
    char *grown = realloc (*buf, old + size * n + 1);
    memcpy (grown + old, data, size * n);
    grown[old + size * n] = 0;
    *buf = grown;
    return size * n;
}

/*  The mock provider's report (JSON text, caller frees).  */
static char *
s_report (const s_stack_t *s)
{
    char url[128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/v1/report", s->http_port);
    CURL *curl = curl_easy_init ();
    char *body = NULL;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    assert_int_equal (curl_easy_perform (curl), CURLE_OK);
    curl_easy_cleanup (curl);
    assert_non_null (body);
    return body;
}

/*  Integer after "key": inside the object of channel in the report.  */
static long
s_report_value (const char *report, const char *channel, const char *key)
{
    char needle[64];
    snprintf (needle, sizeof needle, "\"%s\"", channel);
    const char *at = strstr (report, needle);
    assert_non_null (at);
    snprintf (needle, sizeof needle, "\"%s\"", key);
    at = strstr (at, needle);
    assert_non_null (at);
    at = strchr (at, ':');
    return strtol (at + 1, NULL, 10);
}

/*  Settles a month of n subscribers, then starts the settle service so its
    replay serves the events; notify's environment is prepared.  */
static void
s_stack_start (s_stack_t *s, int n, const char *mock_flags)
{
    memset (s, 0, sizeof *s);
    s->db = bf_testdb_create (true);
    s->dir = bf_test_mkdtemp ();
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (s->db, &out,
                                          "generate --subscribers %d --period 2026-10"
                                          " --seed 21",
                                          n),
                      0);
    free (out);
    /*  The event stream is CURVE only: settle serves with its key, and
        notify's key is the one service key in the list.  */
    char settle_pub[BF_CURVE_KEY_TXT], path[600];
    assert_int_equal (bf_test_stream_keys (s->dir, settle_pub), 0);
    snprintf (path, sizeof path, "%s/stream_allowed_keys", s->dir);
    char command[2048];
    snprintf (command, sizeof command,
              "BILLFLOW_DB_CONNINFO='%s' BILLFLOW_SETTLE_PUB_ENDPOINT='ipc://%s/pub'"
              " BILLFLOW_SETTLE_KEY_FILE='%s/settle.key_secret'"
              " BILLFLOW_SETTLE_ALLOWED_KEYS='%s/stream_allowed_keys'"
              " \"$BF_SETTLE\" --once --period 2026-10 > '%s/settle-once.log' 2>&1",
              s->db, s->dir, s->dir, s->dir, s->dir);
    assert_int_equal (system (command), 0);
    s_mock_start (s, mock_flags);

    static char settle_env[5][700];
    snprintf (settle_env[0], sizeof settle_env[0], "BILLFLOW_DB_CONNINFO=%s", s->db);
    snprintf (settle_env[1], sizeof settle_env[1], "BILLFLOW_SETTLE_PUB_ENDPOINT=ipc://%s/pub",
              s->dir);
    snprintf (settle_env[2], sizeof settle_env[2],
              "BILLFLOW_SETTLE_REPLAY_ENDPOINT=ipc://%s/replay", s->dir);
    snprintf (settle_env[3], sizeof settle_env[3], "BILLFLOW_SETTLE_KEY_FILE=%s/settle.key_secret",
              s->dir);
    snprintf (settle_env[4], sizeof settle_env[4], "BILLFLOW_SETTLE_ALLOWED_KEYS=%s", path);
    const char *senv[]
        = { settle_env[0], settle_env[1], settle_env[2], settle_env[3], settle_env[4], NULL };
    char log[512];
    snprintf (log, sizeof log, "%s/settle.log", s->dir);
    s_spawn (getenv ("BF_SETTLE"), senv, log, NULL);

    s_env (s, "BILLFLOW_DB_CONNINFO=%s", s->db);
    s_env (s, "BILLFLOW_PII_KEY=%s", BF_TEST_PII_KEY);
    s_env (s, "BILLFLOW_NOTIFY_SETTLE_PUB_ENDPOINTS=ipc://%s/pub", s->dir);
    s_env (s, "BILLFLOW_NOTIFY_SETTLE_REPLAY_ENDPOINTS=ipc://%s/replay", s->dir);
    s_env (s, "BILLFLOW_NOTIFY_SETTLE_SERVER_KEY=%s", settle_pub);
    s_env (s, "BILLFLOW_NOTIFY_KEY_FILE=%s/notify.key_secret", s->dir);
    s_env (s, "BILLFLOW_NOTIFY_SMTP_URL=smtp://127.0.0.1:%d", s->smtp_port);
    s_env (s, "BILLFLOW_NOTIFY_SMS_URL=http://127.0.0.1:%d", s->http_port);
    s_env (s, "BILLFLOW_NOTIFY_PUSH_URL=http://127.0.0.1:%d", s->http_port);
    s_env (s, "BILLFLOW_NOTIFY_BACKOFF_BASE_MS=200");
    s_env (s, "BILLFLOW_NOTIFY_BACKOFF_MAX_MS=1000");
    s_env (s, "BILLFLOW_NOTIFY_LEASE_MS=8000");
    s_env (s, "BILLFLOW_NOTIFY_BREAKER_OPEN_MS=2000");
    s_env (s, "BILLFLOW_NOTIFY_POLL_MS=50");
    s_env (s, "BILLFLOW_NOTIFY_BREAKER_ERROR_PCT=90");
}

static void
s_stack_stop (s_stack_t *s)
{
    s_teardown (NULL);
    bf_test_rmdir (&s->dir);
    bf_testdb_drop (&s->db);
}

/*  Starts notify with the stack's environment plus extra (NULL-ended).  */
static pid_t
s_notify (s_stack_t *s, const char *const *extra, const char *logname)
{
    const char *env[40];
    int n = 0;
    for (int i = 0; i < s->nenv; i++)
        env[n++] = s->env[i];
    for (int i = 0; extra && extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    char log[512];
    snprintf (log, sizeof log, "%s/%s", s->dir, logname);
    return s_spawn (getenv ("BF_NOTIFY"), env, log, NULL);
}

/*  Waits up to seconds for notify pid, armed with a BF_FAULT, to kill
    itself (SIGKILL) at the fault point.  */
static void
s_wait_fault_kill (pid_t pid, int seconds)
{
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < seconds * 50 && (done = waitpid (pid, &status, WNOHANG)) == 0; i++)
        usleep (20000);
    assert_int_equal (done, pid);
    s_untrack (pid);
    assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
}

/*  The text of the log file name in the stack's directory; the caller
    frees it.  */
static char *
s_slurp_log (const s_stack_t *s, const char *name)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", s->dir, name);
    char *text = bf_test_slurp (path);
    assert_non_null (text);
    return text;
}

/*  Waits until every bill has its deliveries and each is final or held by
    a rule the operator can see (G4): subscribers' own quiet hours.  */
static void
s_wait_final (PGconn *conn, int seconds)
{
    int64_t open = -1, expected = -1, have = -1;
    for (int i = 0; i < seconds * 10; i++) {
        expected = bf_testdb_scalar (conn, "SELECT count(*) FROM bill b"
                                           " JOIN subscriber s ON s.id = b.subscriber_id,"
                                           " unnest (s.channels) c");
        have = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE fallback_of IS NULL");
        open = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                       " WHERE state NOT IN ('DELIVERED', 'FAILED', 'HELD')");
        if (have == expected && open == 0)
            return;
        usleep (100000);
    }
    fail_msg ("deliveries not final after %d s: %lld of %lld created, %lld open", seconds,
              (long long)have, (long long)expected, (long long)open);
}

static void
test_every_bill_notified_once (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 1500,
                   "--email-latency-ms 20 --email-fail-pct 10 --sms-fail-pct 5 --push-fail-pct 5"
                   " --throttle-pct 2 --garbage-pct 2 --reject-recipient yoon.eunseo2@daum.net"
                   " --seed 3");
    PGconn *conn = bf_testdb_connect (s.db);
    /*  Subscriber 2 (EMAIL+PUSH) has the rejected address: their email
        fails for good and falls back to an SMS they would not get otherwise.  */
    const char *day[]
        = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00", "BF_FAULT=dispatch.after_send:300",
            "BILLFLOW_NOTIFY_DISPATCHERS=2", NULL };
    pid_t first = s_notify (&s, day, "notify-1.log");
    s_wait_fault_kill (first, 30);
    /*  The kill left claimed notices (SENDING as control shows them: a claim
        no longer writes the delivery row, db/016_dispatch_claim.sql).  */
    assert_true (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d"
                                         " WHERE delivery_shown_state (d.id, d.state) = 'SENDING'")
                 > 0);

    /*  Two notify processes finish the job together.  */
    const char *again[]
        = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00", "BILLFLOW_NOTIFY_DISPATCHERS=1", NULL };
    pid_t a = s_notify (&s, again, "notify-2.log");
    pid_t b = s_notify (&s, again, "notify-3.log");
    s_wait_final (conn, 120);

    /*  Every event once more: with the cursor back at 0, a new notify
        ingests the whole month again; nothing changes.  */
    int64_t deliveries = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery");
    assert_int_equal (s_stop (a, SIGTERM), 0);
    assert_int_equal (s_stop (b, SIGTERM), 0);
    assert_string_equal (bf_testdb_exec (conn, "UPDATE notify_cursor SET last_seq = 0"), "00000");
    int64_t bills = bf_testdb_scalar (conn, "SELECT count(*) FROM bill");
    pid_t c = s_notify (&s, again, "notify-4.log");
    for (int i = 0;
         i < 300 && bf_testdb_scalar (conn, "SELECT last_seq FROM notify_cursor") < bills; i++)
        usleep (100000);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT last_seq FROM notify_cursor"), bills);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"), deliveries);
    assert_int_equal (s_stop (c, SIGTERM), 0);

    /*  G4: every notice final; an email fails only with an SMS fallback
        that was delivered.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d WHERE"
                                              " d.state = 'FAILED' AND NOT (d.channel = 'EMAIL'"
                                              " AND EXISTS (SELECT 1 FROM delivery f WHERE"
                                              " f.bill_id = d.bill_id AND f.channel = 'SMS'"
                                              " AND f.state = 'DELIVERED'))"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery e JOIN delivery f"
                                              " ON f.fallback_of = e.id WHERE e.subscriber_id = 2"
                                              " AND e.channel = 'EMAIL' AND e.state = 'FAILED'"
                                              " AND f.channel = 'SMS' AND f.state = 'DELIVERED'"),
                      1);
    /*  G5: every delivered notice has its accepted attempt on record, and
        every attempt names its provider and outcome.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d WHERE"
                                              " d.state = 'DELIVERED' AND NOT EXISTS (SELECT 1"
                                              " FROM delivery_attempt a WHERE a.delivery_id = d.id"
                                              " AND a.outcome IN ('DELIVERED', 'DUPLICATE'))"),
                      0);
    assert_true (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt"
                                         " WHERE outcome IN ('TRANSIENT', 'THROTTLED')")
                 > 0);

    /*  The rejected address (550 at RCPT) was tried once, never again.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt a JOIN"
                                              " delivery e ON e.id = a.delivery_id"
                                              " WHERE e.subscriber_id = 2 AND e.channel = 'EMAIL'"),
                      1);

    /*  SMS, LMS and push: the provider accepted exactly one message per
        recipient (Idempotency-Key). Email has no idempotency at the server
        (the mock delivers a resent Message-ID again, as mail servers do): a
        second copy may only come from a send whose attempt the SIGKILL kept
        from being recorded, and there are at most as many as such lost
        attempts.  */
    char *report = s_report (&s);
    assert_int_equal (s_report_value (report, "sms", "recipients_over_one_total"), 0);
    assert_int_equal (s_report_value (report, "lms", "recipients_over_one_total"), 0);
    assert_int_equal (s_report_value (report, "push", "recipients_over_one_total"), 0);
    int64_t lost = bf_testdb_scalar (conn, "SELECT coalesce (sum (d.attempts - (SELECT count(*)"
                                           " FROM delivery_attempt a WHERE a.delivery_id = d.id)),"
                                           " 0) FROM delivery d WHERE d.channel = 'EMAIL'");
    long email_copies = s_report_value (report, "email", "duplicate_deliveries");
    printf ("# email: %ld second copies, %lld attempts lost to the kill\n", email_copies,
            (long long)lost);
    assert_true (email_copies <= lost);
    assert_true (s_report_value (report, "email", "recipients_over_one_total") <= lost);
    long email = s_report_value (report, "email", "accepted") - email_copies;
    long sms
        = s_report_value (report, "sms", "accepted") + s_report_value (report, "lms", "accepted");
    long push = s_report_value (report, "push", "accepted");
    assert_int_equal (email,
                      bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE channel = 'EMAIL' AND state = 'DELIVERED'"));
    assert_int_equal (sms,
                      bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE channel = 'SMS' AND state = 'DELIVERED'"));
    assert_int_equal (push,
                      bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE channel = 'PUSH' AND state = 'DELIVERED'"));
    /*  The kill left sends the provider had accepted but notify had not
        recorded: they came back as duplicates, not as second messages.  */
    assert_true (s_report_value (report, "email", "duplicate_deliveries")
                     + s_report_value (report, "sms", "duplicates")
                     + s_report_value (report, "lms", "duplicates")
                     + s_report_value (report, "push", "duplicates")
                 > 0);
    free (report);
    PQfinish (conn);
    s_stack_stop (&s);
}

/*  Issue 10, defects 3 and 4, end to end. The mail server wants AUTH and
    lists it last in its EHLO reply; a quarter of the emails get the reply
    to the end of DATA after 2.5 s, past notify's end-of-data timeout (set
    to 0.5 s here; 10 min by default). Every email is delivered or possibly
    delivered; no possibly delivered one is sent again within the policy's
    delay (1 h), none falls back to SMS, and the report counts them.  */
static void
test_slow_mail_server_gets_one_copy (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 200,
                   "--email-latency-ms 0 --email-fail-pct 0 --email-slow-pct 25"
                   " --email-slow-ms 2500 --smtp-user relay --smtp-password pw --seed 5");
    PGconn *conn = bf_testdb_connect (s.db);
    const char *env[] = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00",
                          "BILLFLOW_NOTIFY_SMTP_USERNAME=relay",
                          "BILLFLOW_NOTIFY_SMTP_PASSWORD=pw",
                          "BILLFLOW_NOTIFY_SMTP_ALLOW_PLAIN_AUTH=true",
                          "BILLFLOW_NOTIFY_SMTP_END_TIMEOUT_MS=500",
                          "BILLFLOW_NOTIFY_SMTP_COMMAND_TIMEOUT_MS=3000",
                          NULL };
    pid_t pid = s_notify (&s, env, "notify-slow.log");
    int64_t expected = bf_testdb_scalar (conn, "SELECT count(*) FROM bill b JOIN subscriber s"
                                               " ON s.id = b.subscriber_id, unnest (s.channels) c");
    /*  Settled when every notice is delivered, held by the subscriber's
        quiet hours, or waits for its resend after a possibly delivered
        attempt (an hour after notify's clock, 10:00 in Seoul).  */
    const char *settled_sql
        = "SELECT count(*) FROM delivery d WHERE d.state IN ('DELIVERED', 'HELD')"
          " OR (d.state = 'RETRY'"
          " AND EXISTS (SELECT 1 FROM delivery_attempt a WHERE a.delivery_id = d.id"
          " AND a.outcome = 'UNKNOWN'))";
    int64_t settled = 0;
    for (int i = 0; i < 600 && settled < expected; i++) {
        settled = bf_testdb_scalar (conn, settled_sql);
        usleep (100000);
    }
    if (settled < expected)
        fail_msg ("%lld of %lld notices delivered or possibly delivered (see notify-slow.log)",
                  (long long)settled, (long long)expected);
    /*  Time for a wrong fast retry (backoff 200..1000 ms) to happen.  */
    sleep (4);
    assert_int_equal (bf_testdb_scalar (conn, settled_sql), expected);

    /*  The mail server has every email once: the possibly delivered ones
        were in fact taken, and no second copy went.  */
    char *report = s_report (&s);
    printf ("# slow server: the mail server got %ld second copies\n",
            s_report_value (report, "email", "duplicate_deliveries"));
    assert_int_equal (s_report_value (report, "email", "duplicate_deliveries"), 0);
    assert_int_equal (s_report_value (report, "email", "recipients_over_one_total"), 0);
    assert_int_equal (s_report_value (report, "email", "accepted"),
                      bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE channel = 'EMAIL'"
                                              " AND state IN ('DELIVERED', 'RETRY')"));
    free (report);

    int64_t unknown = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt"
                                              " WHERE outcome = 'UNKNOWN'");
    int64_t waiting = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d WHERE"
                                              " d.channel = 'EMAIL' AND d.state = 'RETRY'"
                                              " AND d.not_before >= timestamptz"
                                              " '2026-11-02 11:00+09' - interval '5 min'"
                                              " AND d.last_error LIKE 'possibly delivered: "
                                              "timeout after 500 ms: waiting for the reply to"
                                              " the end of the message'");
    printf ("# slow server: %lld emails possibly delivered, %lld waiting 1 h for a resend\n",
            (long long)unknown, (long long)waiting);
    assert_true (unknown > 0);
    assert_int_equal (waiting, unknown);
    /*  One attempt each: no fast retry, and no SMS in place of the email.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt a"
                                              " JOIN delivery d ON d.id = a.delivery_id"
                                              " WHERE d.state = 'RETRY'"
                                              " AND a.outcome <> 'UNKNOWN'"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE fallback_of IS NOT NULL"),
                      0);

    /*  The reconciliation report counts them as possible duplicates.  */
    json_t *doc = NULL;
    char err[256];
    assert_int_equal (bf_report (conn, "2026-10", &doc, err, sizeof err), 0);
    json_t *possible = json_object_get (doc, "possible_duplicates");
    assert_int_equal (json_integer_value (json_object_get (possible, "notices")), unknown);
    assert_int_equal (json_integer_value (json_object_get (possible, "awaiting_resend")), unknown);
    assert_int_equal (json_integer_value (json_object_get (possible, "delivered")), 0);
    json_t *email = json_object_get (
        json_object_get (json_object_get (doc, "attempts"), "by_channel"), "EMAIL");
    assert_int_equal (json_integer_value (json_object_get (email, "UNKNOWN")), unknown);
    json_decref (doc);
    assert_int_equal (s_stop (pid, SIGTERM), 0);

    /*  AUTH over plain smtp:// without the explicit setting: notify refuses
        to start (exit 2), naming the setting; nothing is claimed.  */
    const char *plain[]
        = { "BILLFLOW_NOTIFY_SMTP_USERNAME=relay", "BILLFLOW_NOTIFY_SMTP_PASSWORD=pw", NULL };
    int64_t attempts = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt");
    pid = s_notify (&s, plain, "notify-plain.log");
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && (done = waitpid (pid, &status, WNOHANG)) == 0; i++)
        usleep (50000);
    assert_int_equal (done, pid);
    s_untrack (pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 2);
    char *log = s_slurp_log (&s, "notify-plain.log");
    assert_non_null (strstr (log, "notify.smtp_allow_plain_auth"));
    assert_null (strstr (log, "=pw"));
    free (log);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt"), attempts);
    PQfinish (conn);
    s_stack_stop (&s);
}

/*  The policy's resend, with a short delay: a server that answers every
    end of data too late gets each email twice (the attempt and its one
    resend, same Message-ID), never a third time, and no SMS in addition.  */
static void
test_possibly_delivered_resent_once (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 40,
                   "--email-latency-ms 0 --email-fail-pct 0 --email-slow-pct 100"
                   " --email-slow-ms 1500 --seed 7");
    PGconn *conn = bf_testdb_connect (s.db);
    const char *env[]
        = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00", "BILLFLOW_NOTIFY_SMTP_END_TIMEOUT_MS=300",
            "BILLFLOW_NOTIFY_EMAIL_UNKNOWN_RETRY_MS=1000", NULL };
    pid_t pid = s_notify (&s, env, "notify-resend.log");
    int64_t emails = bf_testdb_scalar (conn, "SELECT count(*) FROM bill b JOIN subscriber s"
                                             " ON s.id = b.subscriber_id, unnest (s.channels) c"
                                             " WHERE c = 'EMAIL'");
    const char *done_sql = "SELECT count(*) FROM delivery WHERE channel = 'EMAIL'"
                           " AND state IN ('FAILED', 'HELD')";
    int64_t done = 0;
    for (int i = 0; i < 300 && done < emails; i++) {
        done = bf_testdb_scalar (conn, done_sql);
        usleep (100000);
    }
    assert_true (emails > 0);
    assert_int_equal (done, emails);
    sleep (2); /* a wrong third send would go now */
    int64_t failed = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE"
                                             " channel = 'EMAIL' AND state = 'FAILED'"
                                             " AND last_error LIKE 'possibly delivered: %'");
    int64_t twice = bf_testdb_scalar (conn, "SELECT count(*) FROM (SELECT delivery_id FROM"
                                            " delivery_attempt GROUP BY delivery_id HAVING"
                                            " count(*) = 2 AND bool_and (outcome = 'UNKNOWN'))"
                                            " x");
    char *report = s_report (&s);
    long copies = s_report_value (report, "email", "duplicate_deliveries");
    printf ("# every reply late: %lld emails, %lld failed after one resend, mail server got "
            "%ld second copies\n",
            (long long)emails, (long long)failed, copies);
    assert_true (failed > 0);
    assert_int_equal (twice, failed);
    assert_int_equal (copies, failed);
    assert_int_equal (s_report_value (report, "email", "accepted"), 2 * failed);
    free (report);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE fallback_of IS NOT NULL"),
                      0);
    assert_int_equal (s_stop (pid, SIGTERM), 0);
    PQfinish (conn);
    s_stack_stop (&s);
}

/*  How long after a dispatcher's death its notices may wait at the
    default notify.lease_ms (60 s): its session ends with the process, so
    the notify.takeover_grace_ms (5 s) after the taker first sees the
    session's lock free, a second for the takeover poll, the taker's own
    start, the mock's one-second email and slack for a loaded machine; far
    below the lease, which is what the takeover waited before db/018.  */
#define S_TAKEOVER_BOUND_MS 25000

/*  A SIGKILLed notify's claimed notices are taken over by another notify
    within seconds at the production lease (the dead dispatcher's session
    lock is gone: db/018), not after the lease's minute; each is then sent
    and recorded once more (G4), and no claim is left behind.  */
static void
test_killed_dispatcher_taken_over_in_seconds (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 300, "--email-latency-ms 1000 --email-fail-pct 0");
    s_env_drop (&s, "BILLFLOW_NOTIFY_LEASE_MS=");
    s_env (&s, "BILLFLOW_NOTIFY_LEASE_MS=60000");
    PGconn *conn = bf_testdb_connect (s.db);
    const char *dying[]
        = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00", "BF_FAULT=dispatch.after_send:150",
            "BILLFLOW_NOTIFY_DISPATCHERS=1", NULL };
    pid_t first = s_notify (&s, dying, "notify-dying.log");
    s_wait_fault_kill (first, 12);
    int64_t killed = s_mono_ms ();
    /*  Emails were in flight (a second each) when it died: claimed.  */
    int64_t claimed = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d"
                                              " WHERE delivery_shown_state (d.id, d.state)"
                                              " = 'SENDING'");
    assert_true (claimed > 0);

    const char *taker[]
        = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00", "BILLFLOW_NOTIFY_DISPATCHERS=1", NULL };
    pid_t second = s_notify (&s, taker, "notify-taker.log");
    s_wait_final (conn, 120);
    int64_t waited = s_mono_ms () - killed;
    print_message ("# takeover: %lld claimed notices of the killed notify, all final %lld ms"
                   " after the kill (bound %d ms)\n",
                   (long long)claimed, (long long)waited, S_TAKEOVER_BOUND_MS);
    assert_true (waited <= S_TAKEOVER_BOUND_MS);
    /*  Taken over because the session ended, not because the lease ran out.  */
    char *log = s_slurp_log (&s, "notify-taker.log");
    assert_non_null (strstr (log, "whose database session ended"));
    assert_null (strstr (log, "which stopped renewing its lease"));
    free (log);
    /*  Delivered, but for subscribers whose own quiet hours hold them.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE state <> 'DELIVERED' AND NOT (state = 'HELD'"
                                              " AND hold_reason = 'quiet hours (subscriber)')"),
                      0);
    /*  Each notice's delivering attempt carries its attempts: an attempt
        the kill left unrecorded is counted (it may have gone out), as a
        re-claimed notice's always was.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d"
                                              " WHERE d.state = 'DELIVERED'"
                                              " AND NOT EXISTS (SELECT 1 FROM delivery_attempt a"
                                              " WHERE a.delivery_id = d.id"
                                              " AND a.attempt_no = d.attempts"
                                              " AND a.outcome IN ('DELIVERED', 'DUPLICATE'))"),
                      0);
    assert_int_equal (s_stop (second, SIGTERM), 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM dispatch_claim"), 0);
    PQfinish (conn);
    s_stack_stop (&s);
}

/*  A dispatcher whose connection breaks (its backend terminated while
    another notify runs) reconnects, takes a new session's lock and keeps
    its claims as long as it is back within notify.takeover_grace_ms. The
    test holds the broken dispatcher's row for 2 s (its reconnect waits in
    d_alive with the new session's lock taken and the old pid still in the
    row): with the default 5 s grace nothing is taken over, each notice has
    one attempt and the mock got no second copy; with the grace at 0 the
    other notify takes the claims of the ended session (so the grace is
    what keeps them).  */
static void
s_break_dispatcher (PGconn *conn, pid_t notify_pid)
{
    char like[64], sql[256];
    snprintf (like, sizeof like, "'%%:%d:%%'", (int)notify_pid);
    snprintf (sql, sizeof sql,
              "SELECT count(*) FROM (SELECT 1 FROM dispatcher WHERE owner LIKE %s"
              " AND alive_until > now () FOR UPDATE) x",
              like);
    assert_string_equal (bf_testdb_exec (conn, "BEGIN"), "00000");
    assert_int_equal (bf_testdb_scalar (conn, sql), 1);
    snprintf (sql, sizeof sql,
              "SELECT count (pg_terminate_backend (session_pid)) FROM dispatcher"
              " WHERE owner LIKE %s AND alive_until > now ()",
              like);
    assert_int_equal (bf_testdb_scalar (conn, sql), 1);
    sleep (2);
    assert_string_equal (bf_testdb_exec (conn, "COMMIT"), "00000");
}

static int64_t
s_broken_sessions_run (int grace_ms, char **taker_log)
{
    s_stack_t s;
    s_stack_start (&s, 300, "--email-latency-ms 1000 --email-fail-pct 0");
    s_env_drop (&s, "BILLFLOW_NOTIFY_LEASE_MS=");
    s_env (&s, "BILLFLOW_NOTIFY_LEASE_MS=60000");
    char grace[64];
    snprintf (grace, sizeof grace, "BILLFLOW_NOTIFY_TAKEOVER_GRACE_MS=%d", grace_ms);
    PGconn *conn = bf_testdb_connect (s.db);
    /*  30 sends a second per channel: dispatch lasts about 10 s.  */
    const char *env[] = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00",
                          "BILLFLOW_NOTIFY_DISPATCHERS=1",
                          "BILLFLOW_NOTIFY_EMAIL_RATE=30",
                          "BILLFLOW_NOTIFY_SMS_RATE=30",
                          "BILLFLOW_NOTIFY_PUSH_RATE=30",
                          grace,
                          NULL };
    pid_t a = s_notify (&s, env, "notify-a.log");
    char claims[160];
    snprintf (claims, sizeof claims,
              "SELECT count(*) FROM dispatch_claim WHERE owner LIKE '%%:%d:%%'", (int)a);
    assert_true (bf_testdb_wait_scalar (conn, claims, 1, 30000) >= 1);
    pid_t b = s_notify (&s, env, "notify-b.log");
    assert_true (bf_testdb_wait_scalar (
                     conn, "SELECT count(*) FROM dispatcher WHERE alive_until > now ()", 2, 30000)
                 >= 2);
    s_break_dispatcher (conn, a);
    s_wait_final (conn, 120);
    assert_int_equal (s_stop (a, SIGTERM), 0);
    assert_int_equal (s_stop (b, SIGTERM), 0);
    *taker_log = s_slurp_log (&s, "notify-b.log");
    char *report = s_report (&s);
    int64_t copies = s_report_value (report, "email", "duplicate_deliveries");
    free (report);
    /*  Notices with more than their one attempt (a takeover counts one).  */
    int64_t extra = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                            " WHERE state = 'DELIVERED' AND attempts > 1");
    printf ("# broken session, grace %d ms: %lld notices with a second attempt, %lld second"
            " emails\n",
            grace_ms, (long long)extra, (long long)copies);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM dispatch_claim"), 0);
    PQfinish (conn);
    s_stack_stop (&s);
    return extra + copies;
}

static void
test_broken_connection_keeps_claims (void **state)
{
    (void)state;
    char *log = NULL;
    assert_int_equal (s_broken_sessions_run (5000, &log), 0);
    assert_null (strstr (log, "took over"));
    free (log);
    /*  Without the grace, the broken session's claims are taken.  */
    assert_true (s_broken_sessions_run (0, &log) > 0);
    assert_non_null (strstr (log, "whose database session ended"));
    free (log);
}

/*  Four dispatchers (two processes) claim from one queue in small batches
    as fast as they can: no notice is claimed by two of them at once, so
    each is sent once (the mock sees no repeated key or Message-ID) and has
    exactly one attempt; no claim is left when they stop.  */
static void
test_two_dispatchers_never_share_a_claim (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 800, "--email-latency-ms 30 --email-fail-pct 0");
    s_env_drop (&s, "BILLFLOW_NOTIFY_POLL_MS=");
    PGconn *conn = bf_testdb_connect (s.db);
    const char *env[] = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00", "BILLFLOW_NOTIFY_DISPATCHERS=2",
                          "BILLFLOW_NOTIFY_BATCH=7", "BILLFLOW_NOTIFY_POLL_MS=10", NULL };
    pid_t a = s_notify (&s, env, "notify-a.log");
    pid_t b = s_notify (&s, env, "notify-b.log");
    s_wait_final (conn, 120);
    assert_int_equal (s_stop (a, SIGTERM), 0);
    assert_int_equal (s_stop (b, SIGTERM), 0);
    /*  Delivered, but for subscribers whose own quiet hours hold them.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE state <> 'DELIVERED' AND NOT (state = 'HELD'"
                                              " AND hold_reason = 'quiet hours (subscriber)')"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d"
                                              " WHERE d.attempts <> (d.state = 'DELIVERED')::int"
                                              " OR (SELECT count(*) FROM delivery_attempt x"
                                              " WHERE x.delivery_id = d.id) <> d.attempts"),
                      0);
    char *report = s_report (&s);
    assert_int_equal (s_report_value (report, "email", "duplicate_deliveries"), 0);
    assert_int_equal (s_report_value (report, "email", "duplicates"), 0);
    assert_int_equal (s_report_value (report, "sms", "duplicates"), 0);
    assert_int_equal (s_report_value (report, "lms", "duplicates"), 0);
    assert_int_equal (s_report_value (report, "push", "duplicates"), 0);
    assert_int_equal (s_report_value (report, "email", "accepted")
                          + s_report_value (report, "sms", "accepted")
                          + s_report_value (report, "lms", "accepted")
                          + s_report_value (report, "push", "accepted"),
                      bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE state = 'DELIVERED'"));
    free (report);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM dispatch_claim"), 0);
    PQfinish (conn);
    s_stack_stop (&s);
}

static void
test_quiet_hours_hold_and_release_in_bill_order (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 120, "--email-latency-ms 0");
    PGconn *conn = bf_testdb_connect (s.db);
    const char *night[] = { "BILLFLOW_NOTIFY_CLOCK=2026-11-02T22:30", NULL };
    pid_t pid = s_notify (&s, night, "notify-night.log");
    int64_t expected = bf_testdb_scalar (conn, "SELECT count(*) FROM bill b JOIN subscriber s"
                                               " ON s.id = b.subscriber_id, unnest (s.channels) c");
    int64_t held = 0;
    for (int i = 0; i < 200 && held < expected; i++) {
        held = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE state = 'HELD'");
        usleep (100000);
    }
    assert_int_equal (held, expected);
    /*  Visible to the operator: why, and until when — 08:00 Seoul time, or
        later for subscribers whose own window lasts longer.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE hold_reason"
                                              " NOT LIKE 'quiet hours (%)' OR not_before <"
                                              " '2026-11-03 08:00:00+09'"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn,
                                        "SELECT count(*) FROM delivery d JOIN subscriber s"
                                        " ON s.id = d.subscriber_id WHERE s.quiet_start IS NULL"
                                        " AND (d.not_before <> '2026-11-03 08:00:00+09'"
                                        " OR d.hold_reason <> 'quiet hours (system)')"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt"), 0);
    assert_int_equal (s_stop (pid, SIGTERM), 0);
    char *report = s_report (&s);
    assert_int_equal (s_report_value (report, "sms", "accepted"), 0);
    free (report);

    /*  14:00: released, one at a time per provider, in bill order.  */
    const char *morning[] = { "BILLFLOW_NOTIFY_CLOCK=2026-11-03T14:00",
                              "BILLFLOW_NOTIFY_DISPATCHERS=1",
                              "BILLFLOW_NOTIFY_BATCH=10",
                              "BILLFLOW_NOTIFY_EMAIL_CONCURRENCY=1",
                              "BILLFLOW_NOTIFY_SMS_CONCURRENCY=1",
                              "BILLFLOW_NOTIFY_PUSH_CONCURRENCY=1",
                              NULL };
    pid = s_notify (&s, morning, "notify-morning.log");
    int64_t waiting = -1;
    for (int i = 0; i < 600 && waiting != 0; i++) {
        usleep (100000);
        waiting = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE state NOT IN"
                                          " ('DELIVERED', 'FAILED', 'HELD') OR (state = 'HELD'"
                                          " AND hold_reason = 'quiet hours (system)')");
    }
    assert_int_equal (waiting, 0);
    assert_int_equal (s_stop (pid, SIGTERM), 0);
    /*  Delivered, except where the subscriber's own window still holds.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE state <> 'DELIVERED' AND NOT (state = 'HELD'"
                                              " AND hold_reason = 'quiet hours (subscriber)')"),
                      0);
    assert_true (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                         " WHERE state = 'DELIVERED'")
                 > 150);
    /*  Notices released together (the system window's end: everyone
        without a window of their own) went out in bill order, per channel.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM (SELECT d.channel, d.bill_id,"
                                              " lag (d.bill_id) OVER (PARTITION BY d.channel"
                                              "   ORDER BY a.started_at, a.id) AS prev"
                                              " FROM delivery d JOIN delivery_attempt a"
                                              " ON a.delivery_id = d.id AND a.attempt_no = 1"
                                              " JOIN subscriber s ON s.id = d.subscriber_id"
                                              " WHERE s.quiet_start IS NULL) x"
                                              " WHERE prev > bill_id"),
                      0);
    PQfinish (conn);
    s_stack_stop (&s);
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
test_commands_through_the_control_link (void **state)
{
    (void)state;
    s_stack_t s;
    /*  Slow enough that a pause lands mid-stream: 300 ms per send, five at
        a time per provider.  */
    s_stack_start (&s, 300,
                   "--email-latency-ms 0 --sms-latency-ms 300 --lms-latency-ms 300"
                   " --push-latency-ms 300 --reject-recipient yoon.eunseo2@daum.net");
    PGconn *conn = bf_testdb_connect (s.db);
    bf_test_control_t control;
    assert_int_equal (bf_test_control_bind (&control), 0);
    char endpoint[80];
    snprintf (endpoint, sizeof endpoint, "BILLFLOW_CONTROL_ENDPOINT=tcp://127.0.0.1:%d",
              control.port);
    const char *env[] = { endpoint,
                          "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00",
                          "BILLFLOW_NOTIFY_DISPATCHERS=1",
                          "BILLFLOW_CONTROL_HEARTBEAT_MS=200",
                          "BILLFLOW_NOTIFY_SMS_CONCURRENCY=5",
                          "BILLFLOW_NOTIFY_PUSH_CONCURRENCY=5",
                          "BILLFLOW_NOTIFY_EMAIL_CONCURRENCY=5",
                          "BILLFLOW_NOTIFY_BATCH=20",
                          NULL };
    pid_t pid = s_notify (&s, env, "notify-cmd.log");
    assert_int_equal (bf_test_control_registered (&control, "notify", 10000), 0);
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;

    /*  Paused, nothing more is sent; the switch is in the database.  */
    Billflow__CommandReply *r = bf_test_control_command (&control, s.db, &in, "n-pause-1", "notify",
                                                         "dispatch.pause", NULL, NULL, true);
    assert_non_null (r);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    usleep (2500000); /* the dispatcher sees the switch (1 s); in-flight sends finish */
    int64_t before = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt");
    usleep (1500000);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt"), before);
    assert_true (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE state = 'PENDING'")
                 > 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT paused::int FROM dispatch_state"), 1);

    r = bf_test_control_command (&control, s.db, &in, "n-resume-1", "notify", "dispatch.resume",
                                 NULL, NULL, true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    s_wait_final (conn, 60);

    /*  Retry: the failed email goes out again (and fails again: the address
        is still rejected), with fresh attempts; its SMS fallback stays one.  */
    char id[32], ids[64];
    assert_int_equal (bf_testdb_text (conn,
                                      "SELECT id FROM delivery WHERE subscriber_id = 2"
                                      " AND channel = 'EMAIL' AND state = 'FAILED'",
                                      id, sizeof id),
                      0);
    r = bf_test_control_command (&control, s.db, &in, "n-retry-1", "notify", "deliveries.retry",
                                 "ids", id, true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_true (s_json_has (r->result, "\"deliveries\":1"));
    char first[256];
    snprintf (first, sizeof first, "%s", r->result);
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM delivery_attempt WHERE delivery_id = %s", id);
    for (int i = 0; i < 100 && bf_testdb_scalar (conn, sql) < 2; i++)
        usleep (100000);
    assert_int_equal (bf_testdb_scalar (conn, sql), 2);
    s_wait_final (conn, 30);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE"
                                              " subscriber_id = 2 AND channel = 'SMS'"),
                      1);
    /*  G6: the same command_id again answers the same and does nothing.  */
    r = bf_test_control_command (&control, s.db, &in, "n-retry-1", "notify", "deliveries.retry",
                                 "ids", id, false);
    assert_true (r->replayed);
    assert_string_equal (r->result, first);
    assert_int_equal (bf_testdb_scalar (conn, sql), 2);
    /*  A delivered notice is never sent again.  */
    assert_int_equal (bf_testdb_text (conn,
                                      "SELECT id FROM delivery WHERE state = 'DELIVERED'"
                                      " ORDER BY id LIMIT 1",
                                      ids, sizeof ids),
                      0);
    r = bf_test_control_command (&control, s.db, &in, "n-retry-2", "notify", "deliveries.retry",
                                 "ids", ids, true);
    assert_true (s_json_has (r->result, "\"deliveries\":0"));
    /*  Bad input: an unknown verb, ids that are not ids.  */
    r = bf_test_control_command (&control, s.db, &in, "n-x-1", "notify", "dispatch.explode", NULL,
                                 NULL, true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    r = bf_test_control_command (&control, s.db, &in, "n-bad-1", "notify", "deliveries.retry",
                                 "ids", "1;DROP", true);
    assert_int_equal (r->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED);
    bf_wire_msg_reset (&in);
    assert_int_equal (s_stop (pid, SIGTERM), 0);
    bf_test_control_close (&control);
    PQfinish (conn);
    s_stack_stop (&s);
}

//  --------------------------------------------------------------------------
//  A provider that echoes the destination in its reason (G9)

/*  The reason a real SMS provider gave, spaces and all: the old masking
    split on spaces and let every group through.  */
#define S_LEAKY_REASON "invalid destination 010 0378 3194 (+82 10 0378 3194)"

typedef struct {
    int fd, port;
    pthread_t thread;
    volatile int answered;
} s_leaky_t;

/*  Answers every HTTP request with 422 and S_LEAKY_REASON.  */
static void *
s_leaky_run (void *arg)
{
    s_leaky_t *self = arg;
    static const char body[] = "{\"error\":\"" S_LEAKY_REASON "\"}";
    for (;;) {
        int c = accept (self->fd, NULL, NULL);
        if (c < 0)
            break; /* the listening socket was shut down */
        char buf[65536];
        size_t used = 0;
        long want = -1;
        for (;;) {
            ssize_t n = recv (c, buf + used, sizeof buf - 1 - used, 0);
            if (n <= 0)
                break;
            used += (size_t)n;
            buf[used] = 0;
            char *end = strstr (buf, "\r\n\r\n");
            if (end && want < 0) {
                char *cl = strcasestr (buf, "Content-Length:");
                want = (long)(end + 4 - buf) + (cl && cl < end ? strtol (cl + 15, NULL, 10) : 0);
            }
            if (want >= 0 && (long)used >= want)
                break;
        }
        char reply[512];
        int len = snprintf (reply, sizeof reply,
                            "HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json"
                            "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                            sizeof body - 1, body);
        if (send (c, reply, (size_t)len, MSG_NOSIGNAL) == len)
            self->answered++;
        close (c);
    }
    return NULL;
}

static void
s_leaky_start (s_leaky_t *self)
{
    memset (self, 0, sizeof *self);
    self->fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (self->fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (self->fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal (listen (self->fd, 64), 0);
    socklen_t alen = sizeof addr;
    assert_int_equal (getsockname (self->fd, (struct sockaddr *)&addr, &alen), 0);
    self->port = ntohs (addr.sin_port);
    assert_int_equal (pthread_create (&self->thread, NULL, s_leaky_run, self), 0);
}

static void
s_leaky_stop (s_leaky_t *self)
{
    shutdown (self->fd, SHUT_RDWR);
    pthread_join (self->thread, NULL);
    close (self->fd);
}

/*  Runs a failures query as control answers it (bf_query) and renders it
    as billctl does, table and --json; returns the three texts joined.  */
static char *
s_failures_everywhere (PGconn *conn)
{
    char err[512];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (pii);
    bf_query_ctx_t ctx = { pii, 1000 };
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    Billflow__Argument limit = BILLFLOW__ARGUMENT__INIT, *argp[1] = { &limit };
    limit.key = "limit";
    limit.value = "500";
    cmd.verb = "deliveries.failures";
    cmd.command_id = "q-1";
    cmd.target = "control";
    cmd.n_args = 1;
    cmd.args = argp;
    char *json = NULL;
    if (bf_query (conn, &ctx, &cmd, &json, err, sizeof err) != BF_QUERY_OK)
        fail_msg ("deliveries.failures: %s", err);
    char *table = NULL, *line = NULL;
    size_t table_size = 0, line_size = 0;
    FILE *out = open_memstream (&table, &table_size);
    assert_int_equal (bf_billctl_render (out, "deliveries.failures", json, err, sizeof err), 0);
    fclose (out);
    out = open_memstream (&line, &line_size);
    assert_int_equal (bf_billctl_result_json (out, json, err, sizeof err), 0);
    fclose (out);
    size_t size = strlen (json) + table_size + line_size + 8;
    char *all = malloc (size);
    snprintf (all, size, "%s\n%s\n%s", json, table, line);
    free (json);
    free (table);
    free (line);
    bf_pii_destroy (&pii);
    return all;
}

static void
test_provider_reason_with_phone_is_masked (void **state)
{
    (void)state;
    s_stack_t s;
    s_stack_start (&s, 60, "--email-latency-ms 0");
    s_leaky_t leaky;
    s_leaky_start (&leaky);
    PGconn *conn = bf_testdb_connect (s.db);
    char sms_url[80];
    snprintf (sms_url, sizeof sms_url, "BILLFLOW_NOTIFY_SMS_URL=http://127.0.0.1:%d", leaky.port);
    const char *env[] = { sms_url, "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00",
                          "BILLFLOW_NOTIFY_DISPATCHERS=1", NULL };
    pid_t pid = s_notify (&s, env, "notify-leaky.log");
    s_wait_final (conn, 60);
    assert_true (leaky.answered > 0);

    /*  The reason's digits are in clear nowhere (checked first: this is
        what leaked), and the reason itself arrived, masked.  */
    const char *positive[] = { "SELECT count(*) FROM delivery WHERE state = 'FAILED'"
                               " AND last_error LIKE '%010-****-3194%'",
                               "SELECT count(*) FROM delivery_attempt"
                               " WHERE error LIKE '%010-****-3194%'" };
    /*  Not in the rows, ...  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE last_error ~ '0378|03783194|1003783194'"),
                      0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt"
                                              " WHERE error ~ '0378|03783194|1003783194'"),
                      0);
    for (int i = 0; i < 2; i++)
        assert_true (bf_testdb_scalar (conn, positive[i]) > 0);
    /*  ... not in the failures query nor billctl's table and --json, ...  */
    char *shown = s_failures_everywhere (conn);
    assert_non_null (strstr (shown, "010-****-3194"));
    if (strstr (shown, "0378"))
        fail_msg ("failures output shows the number:\n%s", shown);
    free (shown);
    assert_int_equal (s_stop (pid, SIGTERM), 0);
    /*  ... not in notify's log.  */
    char log[512];
    snprintf (log, sizeof log, "%s/notify-leaky.log", s.dir);
    char *text = bf_test_slurp (log);
    assert_non_null (text);
    if (strstr (text, "0378"))
        fail_msg ("notify's log shows the number:\n%s", text);
    free (text);
    s_leaky_stop (&leaky);
    PQfinish (conn);
    s_stack_stop (&s);
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_every_bill_notified_once, s_teardown),
        cmocka_unit_test_teardown (test_slow_mail_server_gets_one_copy, s_teardown),
        cmocka_unit_test_teardown (test_possibly_delivered_resent_once, s_teardown),
        cmocka_unit_test_teardown (test_quiet_hours_hold_and_release_in_bill_order, s_teardown),
        cmocka_unit_test_teardown (test_killed_dispatcher_taken_over_in_seconds, s_teardown),
        cmocka_unit_test_teardown (test_broken_connection_keeps_claims, s_teardown),
        cmocka_unit_test_teardown (test_two_dispatchers_never_share_a_claim, s_teardown),
        cmocka_unit_test_teardown (test_commands_through_the_control_link, s_teardown),
        cmocka_unit_test_teardown (test_provider_reason_with_phone_is_masked, s_teardown),
    };
    //  BF_TEST_FILTER=test_name (a glob) runs only the matching tests.
    if (getenv ("BF_TEST_FILTER"))
        cmocka_set_test_filter (getenv ("BF_TEST_FILTER"));
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return rc;
}
