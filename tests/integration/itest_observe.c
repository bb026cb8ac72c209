/*  Integration: settle's observability endpoint on a real PostgreSQL.
    - during a run /healthz answers 200, and afterwards the scraped figures
      (bills, won, subscribers, chunks) equal the database's;
    - unknown paths get 404, other methods 405;
    - /readyz turns 503 naming PostgreSQL while the database refuses
      connections (its connections terminated, new ones not allowed), and
      200 again once it accepts them;
    - control: the leader and the standby are both ready, each says its
      role in /readyz and billflow_control_leader; when the leader dies the
      standby's role and gauge turn to leader;
    - notify: ready, and its ingest and dispatch actors are in /healthz;
    - /readyz 503 while a PostgreSQL server of the test's own is really
      stopped (scripts/pgtmp halt), 200 after it is started again;
    - an abusive HTTP client (slowloris, a flood of connections, huge
      headers) against settle's endpoint during a run: the run takes about
      as long as one without it, 404/405 still answer;
    - the active control's cluster-wide gauges equal the database after a
      small cycle (deliveries per state and channel, chunks); the standby
      exports none of them, and the one that takes over does;
    - notify's figures after a cycle through the mock providers (some
      emails refused for good and falling back to SMS, 429s, garbage
      replies) equal the database's: deliveries created per channel,
      attempts per channel and outcome, quiet-hours holds, events ingested
      against events published; ingest lag, requests in flight, breakers
      and the pause switch back at 0;
    - logs in JSON: every line one object; settle's lines about a chunk
      carry run_id, period and chunk, its database failures sqlstate;
      control's lines about a command carry command_id, verb and actor,
      and the line of the service that applied it command_id and verb.  */

#include <arpa/inet.h>
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <math.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "bf_client.h"
#include "bf_db.h"
#include "bf_run.h"
#include "bf_curve.h"
#include "bf_testdb.h"
#include "bf_testproc.h"
#include "bf_teststack.h"
#include "bf_testjson.h"

#define PERIOD "2026-10"

/*  How long the clean run of test_settle_endpoint took (the abusive
    client's run is compared with it); 0 until it ran.  */
static int64_t s_baseline_ms;

/*  One request to 127.0.0.1:port; the status (0 when none) and the body
    (after the headers) in out.  */
static int
s_http (int port, const char *method, const char *path, char *out, size_t outsize)
{
    out[0] = 0;
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close (fd);
        return 0;
    }
    char request[256];
    int n = snprintf (request, sizeof request,
                      "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", method, path);
    if (send (fd, request, (size_t)n, MSG_NOSIGNAL) != n) {
        close (fd);
        return 0;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < outsize && (r = recv (fd, out + got, outsize - 1 - got, 0)) > 0)
        got += (size_t)r;
    out[got] = 0;
    close (fd);
    int status = 0;
    if (sscanf (out, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    char *body = strstr (out, "\r\n\r\n");
    if (body)
        memmove (out, body + 4, strlen (body + 4) + 1);
    return status;
}

/*  The value of the unlabelled sample name in an exposition; NAN when
    absent.  */
static double
s_sample (const char *text, const char *name)
{
    char key[320];
    int n = snprintf (key, sizeof key, "\n%s ", name);
    if (n < 0 || (size_t) n >= sizeof key)
        return NAN;             /*  a name this long is in no exposition  */
    const char *at = strstr (text, key);
    return at ? strtod (at + strlen (key), NULL) : NAN;
}

/*  Polls path until it answers want (up to timeout_ms); returns the last
    status.  */
static int
s_wait_status (int port, const char *path, int want, int timeout_ms, char *out, size_t outsize)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    int status;
    while ((status = s_http (port, "GET", path, out, outsize)) != want
           && zclock_mono () < deadline)
        zclock_sleep (100);
    return status;
}

/*  Reads the JSON log at path: fails the test on a line that is not one
    JSON object. Returns the number of lines whose fields match every pair
    of want (key, value, ..., NULL): an integer field matches its decimal
    text, a string field its text; a value ending in '*' matches any
    text that starts with what precedes it ("*": any value).  */
static int
s_log_count (const char *path, const char *const *want)
{
    char *text = bf_test_slurp (path);
    assert_non_null (text);
    int lines = 0, matched = 0;
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *doc = json_loads (line, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object (doc))
            fail_msg ("%s: not a JSON object (%s): %s", path, jerr.text, line);
        lines++;
        bool match = true;
        for (int i = 0; want[i] && match; i += 2) {
            json_t *field = json_object_get (doc, want[i]);
            char number[32];
            const char *value = json_is_string (field) ? json_string_value (field) : NULL;
            if (json_is_integer (field)) {
                snprintf (number, sizeof number, "%lld", (long long)json_integer_value (field));
                value = number;
            }
            size_t prefix = strlen (want[i + 1]) - 1; //  "08*": starts with "08"
            match = value
                    && (want[i + 1][prefix] == '*' ? !strncmp (want[i + 1], value, prefix)
                                                   : !strcmp (want[i + 1], value));
        }
        matched += match;
        json_decref (doc);
    }
    assert_true (lines > 0);
    free (text);
    return matched;
}

/*  Prepares settle (not started) on db, serving HTTP on a port the kernel
    picks (s_port_of), its stream keys in dir, its log dir/settle.log.  */
static void
s_settle_prepare (bf_proc_t *settle, const char *dir, const char *db)
{
    char log[600];
    snprintf (log, sizeof log, "%s/settle.log", dir);
    bf_proc_init (settle, getenv ("BF_SETTLE"), log);
    bf_proc_env (settle, "BILLFLOW_DB_CONNINFO=%s", db);
    bf_proc_env (settle, "BILLFLOW_PII_KEY=%s", BF_TEST_PII_KEY);
    bf_proc_env (settle, "BILLFLOW_SETTLE_HTTP=127.0.0.1:0");
    bf_proc_env (settle, "BILLFLOW_SETTLE_PUB_ENDPOINT=tcp://127.0.0.1:*");
    bf_proc_env (settle, "BILLFLOW_SETTLE_REPLAY_ENDPOINT=tcp://127.0.0.1:*");
    bf_proc_env (settle, "BILLFLOW_SETTLE_WORKERS=2");
    char settle_pub[BF_CURVE_KEY_TXT];
    assert_int_equal (bf_test_stream_keys (dir, settle_pub), 0);
    bf_proc_env (settle, "BILLFLOW_SETTLE_KEY_FILE=%s/settle.key_secret", dir);
    bf_proc_env (settle, "BILLFLOW_SETTLE_ALLOWED_KEYS=%s/stream_allowed_keys", dir);
    bf_proc_env (settle, "BILLFLOW_SETTLE_POLL_MS=100");
    bf_proc_env (settle, "BILLFLOW_LOG_FORMAT=json");
    bf_proc_env (settle, "BILLFLOW_LOG_LEVEL=debug");
}

/*  A fresh database with 10,000 subscribers of PERIOD (seed 7): the same
    data for the clean run and the abused one.  */
static char *
s_settle_db (void)
{
    char *db = bf_testdb_create (true);
    assert_non_null (db);
    char *output = NULL;
    assert_int_equal (bf_testdb_billdata (db, &output, "generate --subscribers 10000 --period "
                                                       PERIOD " --seed 7"),
                      0);
    free (output);
    return db;
}

/*  The HTTP port p was started on (127.0.0.1:0): the one its log names
    (bf_proc_log_port). No port is picked ahead, so none can be taken
    before p binds it.  */
static int
s_port_of (const bf_proc_t *p)
{
    int port = bf_proc_log_port (p, "http: serving", 0, 20000);
    assert_true (port > 0);
    return port;
}

/*  Starts settle (s_settle_prepare) and waits until /readyz says 200; the
    last body in body. Returns its HTTP port.  */
static int
s_settle_up (bf_proc_t *settle, const char *dir, const char *db, char *body, size_t bodysize)
{
    s_settle_prepare (settle, dir, db);
    bf_proc_start (settle);
    int port = s_port_of (settle);
    assert_int_equal (s_wait_status (port, "/readyz", 200, 15000, body, bodysize), 200);
    return port;
}

/*  Starts the run of PERIOD (chunks of 100) as control would. Returns its
    id; sql gets the statement that reads 1 once it completed.  */
static int64_t
s_start_run (PGconn *conn, char *sql, size_t sqlsize)
{
    int64_t run_id = 0;
    char err[256];
    assert_int_equal (bf_db_begin (conn), BF_DB_OK);
    assert_int_equal (bf_run_start (conn, PERIOD, 100, NULL, &run_id, err, sizeof err),
                      BF_RUN_STARTED);
    assert_int_equal (bf_db_commit (conn), BF_DB_OK);
    snprintf (sql, sqlsize,
              "SELECT (state = 'COMPLETED')::int FROM settlement_run WHERE run_id = %lld",
              (long long)run_id);
    return run_id;
}

/*  settle on a fresh database of s_settle_db, ready.  */
typedef struct {
    char *db, *dir;
    int port;
    bf_proc_t settle;
} s_settle_t;

static void
s_settle_ready (s_settle_t *f, char *body, size_t bodysize)
{
    f->db = s_settle_db ();
    f->dir = bf_test_mkdtemp ();
    f->port = s_settle_up (&f->settle, f->dir, f->db, body, bodysize);
}

static void
test_settle_endpoint (void **state)
{
    (void)state;
    static char body[1 << 17];
    s_settle_t f;
    s_settle_ready (&f, body, sizeof body);
    char *db = f.db, *dir = f.dir;
    int port = f.port;
    char log[600];
    snprintf (log, sizeof log, "%s/settle.log", dir);
    assert_non_null (strstr (body, "settle ready\n"));
    assert_non_null (strstr (body, "postgresql: ok"));
    /*  Nothing settled yet: the settle metrics are there, at 0.  */
    assert_int_equal (s_http (port, "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_bills_written_total") == 0);

    /*  Start the run as control would; the service's workers settle it.  */
    PGconn *conn = bf_testdb_connect (db);
    assert_non_null (conn);
    char sql[256];
    int64_t started = zclock_mono ();
    int64_t run_id = s_start_run (conn, sql, sizeof sql);
    int64_t deadline = zclock_mono () + 120000;
    int live_checks = 0;
    while (bf_testdb_scalar (conn, sql) != 1) {
        assert_true (zclock_mono () < deadline);
        /*  Liveness answers while the workers work.  */
        assert_int_equal (s_http (port, "GET", "/healthz", body, sizeof body), 200);
        live_checks++;
        zclock_sleep (50);
    }
    assert_true (live_checks > 0);
    s_baseline_ms = zclock_mono () - started;

    /*  The scraped figures are the database's.  */
    assert_int_equal (s_http (port, "GET", "/metrics", body, sizeof body), 200);
    int64_t bills = bf_testdb_scalar (conn, "SELECT count(*) FROM bill");
    int64_t won = bf_testdb_scalar (conn, "SELECT coalesce (sum (total), 0) FROM bill");
    int64_t subscribers = bf_testdb_scalar (conn, "SELECT count(*) FROM subscriber");
    snprintf (sql, sizeof sql, "SELECT chunks_total FROM settlement_run WHERE run_id = %lld",
              (long long)run_id);
    int64_t chunks = bf_testdb_scalar (conn, sql);
    assert_true (bills > 0);
    assert_true (s_sample (body, "billflow_bills_written_total") == (double)bills);
    assert_true (s_sample (body, "billflow_billed_won_total") == (double)won);
    assert_true (s_sample (body, "billflow_settle_chunks_committed_total") == (double)chunks);
    assert_true (s_sample (body, "billflow_settle_chunk_duration_seconds_count") == (double)chunks);
    assert_true (s_sample (body, "billflow_settle_subscribers_rated_total")
                 == (double)subscribers);
    assert_true (s_sample (body, "billflow_settle_rating_errors_total")
                 == (double)bf_testdb_scalar (conn, "SELECT count(*) FROM rating_error"));
    assert_true (s_sample (body, "billflow_settle_chunks_claimed_total") >= (double)chunks);

    /*  Every chunk's lines name the run, its period and the chunk; no line
        names a chunk without its run.  */
    char run_text[24];
    snprintf (run_text, sizeof run_text, "%lld", (long long)run_id);
    assert_true (s_log_count (log, (const char *[]){ "run_id", run_text, "period", PERIOD, "chunk",
                                                     "*", NULL })
                 >= chunks);
    assert_int_equal (s_log_count (log, (const char *[]){ "chunk", "*", NULL }),
                      s_log_count (log, (const char *[]){ "chunk", "*", "run_id", run_text,
                                                          "period", PERIOD, NULL }));
    assert_int_equal (s_log_count (log, (const char *[]){ "sqlstate", "*", NULL }), 0);

    /*  Paths and methods on the real service.  */
    assert_int_equal (s_http (port, "GET", "/nothing", body, sizeof body), 404);
    assert_int_equal (s_http (port, "POST", "/metrics", body, sizeof body), 405);
    assert_int_equal (s_http (port, "DELETE", "/readyz", body, sizeof body), 405);

    /*  The database refuses connections: not ready, naming PostgreSQL.  */
    PGconn *admin = bf_testdb_connect ("dbname=postgres");
    assert_non_null (admin);
    const char *name = strstr (db, "dbname=") + 7;
    snprintf (sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS false", name);
    assert_string_equal (bf_testdb_exec (admin, sql), "00000");
    PQfinish (conn);
    snprintf (sql, sizeof sql,
              "SELECT count(pg_terminate_backend (pid)) FROM pg_stat_activity WHERE datname = '%s'",
              name);
    assert_true (bf_testdb_scalar (admin, sql) >= 0);
    assert_int_equal (s_wait_status (port, "/readyz", 503, 15000, body, sizeof body), 503);
    assert_non_null (strstr (body, "settle NOT READY\n"));
    assert_non_null (strstr (body, "postgresql: FAIL"));
    /*  Alive all the same: liveness is not readiness.  */
    assert_int_equal (s_http (port, "GET", "/healthz", body, sizeof body), 200);
    snprintf (sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS true", name);
    assert_string_equal (bf_testdb_exec (admin, sql), "00000");
    assert_int_equal (s_wait_status (port, "/readyz", 200, 20000, body, sizeof body), 200);
    assert_non_null (strstr (body, "postgresql: ok"));
    assert_int_equal (s_http (port, "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_bills_written_total") == (double)bills);
    PQfinish (admin);
    /*  The failures while the database refused connections carry their
        SQLSTATE as a field (a connection class, 08xxx or 57Pxx).  */
    assert_true (s_log_count (log, (const char *[]){ "sqlstate", "*", NULL }) > 0);
    assert_int_equal (s_log_count (log, (const char *[]){ "sqlstate", "*", NULL }),
                      s_log_count (log, (const char *[]){ "sqlstate", "08*", NULL })
                          + s_log_count (log, (const char *[]){ "sqlstate", "57P*", NULL }));


    assert_int_equal (bf_proc_stop (&f.settle, 20000), 0);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

/*  Waits until path's body holds text; returns whether it did.  */
static bool
s_wait_body (int port, const char *path, const char *text, int timeout_ms, char *out,
             size_t outsize)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        s_http (port, "GET", path, out, outsize);
        if (strstr (out, text))
            return true;
        if (zclock_mono () >= deadline)
            return false;
        zclock_sleep (100);
    }
}

static void
test_control_roles_and_notify (void **state)
{
    (void)state;
    bf_stack_t s;
    bf_stack_init (&s);
    bf_stack_both_controls (&s);
    for (int i = 0; i < 2; i++)
        bf_proc_env (&s.control[i], "BILLFLOW_CONTROL_HTTP=127.0.0.1:0");
    bf_proc_env (&s.notify, "BILLFLOW_NOTIFY_HTTP=127.0.0.1:0");
    bf_proc_env (&s.control[0], "BILLFLOW_LOG_FORMAT=json");
    bf_proc_env (&s.notify, "BILLFLOW_LOG_FORMAT=json");
    bf_proc_start (&s.control[0]);
    assert_int_equal (bf_stack_wait_active (&s, 0, 20000), 0);
    bf_proc_start (&s.control[1]);
    int port[2] = { s_port_of (&s.control[0]), s_port_of (&s.control[1]) };
    static char body[1 << 16];
    assert_true (s_wait_body (port[0], "/readyz", "role: leader\n", 10000, body, sizeof body));
    assert_non_null (strstr (body, "control ready\n"));
    /*  The standby is ready: being standby is not being unready.  */
    assert_true (s_wait_body (port[1], "/readyz", "role: standby\n", 10000, body, sizeof body));
    assert_int_equal (s_http (port[1], "GET", "/readyz", body, sizeof body), 200);
    assert_int_equal (s_http (port[1], "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_control_leader") == 0);
    assert_int_equal (s_http (port[0], "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_control_leader") == 1);
    assert_int_equal (s_http (port[0], "GET", "/healthz", body, sizeof body), 200);
    assert_non_null (strstr (body, "ok: 1 actor turning"));

    bf_proc_start (&s.notify);
    int nport = s_port_of (&s.notify);
    assert_int_equal (s_wait_status (nport, "/readyz", 200, 20000, body, sizeof body), 200);
    assert_non_null (strstr (body, "notify ready\n"));
    assert_int_equal (s_http (nport, "GET", "/healthz", body, sizeof body), 200);
    assert_non_null (strstr (body, "notify live\nok: "));
    assert_int_equal (s_http (nport, "GET", "/metrics", body, sizeof body), 200);
    assert_non_null (strstr (body, "\nbillflow_build_info{version=\""));

    /*  A command through the leader: its lines carry command_id and verb,
        and who sent what: the operator's key, then notify's answering.  */
    assert_int_equal (bf_stack_wait_registered (&s, "notify", 20000), 0);
    bf_client_t *client = bf_stack_client (&s, "ops-a", 5000, 3);
    assert_non_null (client);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    assert_int_equal (bf_client_request (client, "log-fields-1", "notify", "dispatch.resume", 0,
                                         NULL, NULL, &reply, NULL, err, sizeof err),
                      BF_CLIENT_ANSWERED);
    if (reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED) {
        billflow__command_reply__free_unpacked (reply, NULL);
        reply = NULL;
        assert_int_equal (bf_client_wait (client, "log-fields-1", 15000, &reply, err, sizeof err),
                          BF_CLIENT_ANSWERED);
    }
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    billflow__command_reply__free_unpacked (reply, NULL);
    bf_client_destroy (&client);
    const char *const by_operator[]
        = { "command_id", "log-fields-1", "verb", "dispatch.resume", "actor", "ops-a", NULL };
    const char *const by_notify[]
        = { "command_id", "log-fields-1", "verb", "dispatch.resume", "actor", "notify", NULL };
    assert_true (s_log_count (s.control[0].log, by_operator) >= 1); /* stored */
    assert_true (s_log_count (s.control[0].log, by_notify) >= 1);   /* DONE */
    assert_true (
        s_log_count (s.control[0].log, (const char *[]){ "command_id", "log-fields-1", NULL })
        >= 3); /* stored, forwarded, DONE */
    /*  notify's own line applying it (logged before its answer).  */
    assert_true (s_log_count (s.notify.log, (const char *[]){ "command_id", "log-fields-1", "verb",
                                                              "dispatch.resume", NULL })
                 >= 1);

    /*  The leader dies: the standby takes over and says so.  */
    bf_proc_kill (&s.control[0]);
    assert_true (s_wait_body (port[1], "/readyz", "role: leader\n", 30000, body, sizeof body));
    assert_int_equal (s_http (port[1], "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_control_leader") == 1);
    bf_stack_destroy (&s);
}

/*  --- PostgreSQL really stopped ----------------------------------------- */

/*  The test's own cluster (scripts/pgtmp start DIR), removed by the
    teardown when a test fails half-way.  */
static char s_private_pg[600];

/*  Runs `scripts/pgtmp ARGS` from the source tree; true when it exits 0.  */
static bool
s_pgtmp (const char *args)
{
    char command[1400];
    snprintf (command, sizeof command, "'%s/scripts/pgtmp' %s >/dev/null",
              getenv ("BF_SOURCE_ROOT"), args);
    return system (command) == 0;
}

static void
test_readyz_postgres_stopped (void **state)
{
    (void)state;
    char *dir = bf_test_mkdtemp ();
    assert_non_null (dir);
    /*  The server runs as postgres when the tests run as root.  */
    assert_int_equal (chmod (dir, 0755), 0);
    snprintf (s_private_pg, sizeof s_private_pg, "%s/pg", dir);
    char args[800];
    snprintf (args, sizeof args, "start --fast '%s'", s_private_pg);
    assert_true (s_pgtmp (args));
    char path[700], db[900];
    snprintf (path, sizeof path, "%s/port", s_private_pg);
    char *port_text = bf_test_slurp (path);
    assert_non_null (port_text);
    snprintf (db, sizeof db, "host=%s port=%d user=postgres dbname=postgres", s_private_pg,
              atoi (port_text));
    free (port_text);
    char *output = NULL;
    assert_int_equal (bf_testdb_billdata (db, &output, "migrate"), 0);
    free (output);

    bf_proc_t settle;
    static char body[1 << 16];
    int port = s_settle_up (&settle, dir, db, body, sizeof body);
    assert_non_null (strstr (body, "postgresql: ok"));

    /*  The server itself stops (fast shutdown: every connection cut).  */
    snprintf (args, sizeof args, "halt '%s'", s_private_pg);
    assert_true (s_pgtmp (args));
    assert_int_equal (s_wait_status (port, "/readyz", 503, 15000, body, sizeof body), 503);
    assert_non_null (strstr (body, "settle NOT READY\n"));
    assert_non_null (strstr (body, "postgresql: FAIL"));
    /*  And stays so while the server is down, alive all the same.  */
    zclock_sleep (1500);
    assert_int_equal (s_http (port, "GET", "/readyz", body, sizeof body), 503);
    assert_non_null (strstr (body, "postgresql: FAIL (down for "));
    assert_int_equal (s_http (port, "GET", "/healthz", body, sizeof body), 200);

    snprintf (args, sizeof args, "restart '%s'", s_private_pg);
    assert_true (s_pgtmp (args));
    assert_int_equal (s_wait_status (port, "/readyz", 200, 30000, body, sizeof body), 200);
    assert_non_null (strstr (body, "postgresql: ok"));
    assert_non_null (strstr (body, "actors: ok (yes)"));

    assert_int_equal (bf_proc_stop (&settle, 20000), 0);
    snprintf (args, sizeof args, "stop '%s'", s_private_pg);
    assert_true (s_pgtmp (args));
    s_private_pg[0] = 0;
    bf_test_rmdir (&dir);
}

/*  --- an abusive HTTP client during a run ------------------------------- */

typedef struct {
    int port;
    atomic_bool stop;
    atomic_int dripped;  /* header lines the slowloris connections sent */
    atomic_int flooded;  /* connections of the floods */
    atomic_int too_big;  /* huge-header requests answered 431 */
} s_abuse_t;

/*  A connection to 127.0.0.1:port from the loopback address `from`; -1
    when refused.  */
static int
s_connect_from (const char *from, int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 2, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in local = { .sin_family = AF_INET };
    inet_pton (AF_INET, from, &local.sin_addr);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind (fd, (struct sockaddr *)&local, sizeof local) != 0
        || connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

/*  From 127.0.0.2: eight slowloris connections (a header line every half
    second, never the end of the headers) and a flood of 200 connections
    every half second; from 127.0.0.3: a request with 64 KiB of headers
    three times a second.  */
static void *
s_abuser (void *arg)
{
    s_abuse_t *self = arg;
    enum { SLOW = 8, FLOOD = 200, BIG = 64 * 1024 };
    int slow[SLOW];
    for (int i = 0; i < SLOW; i++)
        slow[i] = -1;
    static char big[BIG + 256];
    int n = snprintf (big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset (big + n, 'a', BIG);
    memcpy (big + n + BIG, "\r\n\r\n", 4);
    size_t big_len = (size_t)n + BIG + 4;
    int64_t drip_at = 0, flood_at = 0, big_at = 0;
    while (!atomic_load (&self->stop)) {
        int64_t now = zclock_mono ();
        if (now >= drip_at) {
            for (int i = 0; i < SLOW; i++) {
                const char *line = "X-Drip: 1\r\n";
                if (slow[i] < 0) {
                    slow[i] = s_connect_from ("127.0.0.2", self->port);
                    line = "GET /metrics HTTP/1.1\r\nHost: t\r\n";
                }
                if (slow[i] >= 0 && send (slow[i], line, strlen (line), MSG_NOSIGNAL) > 0)
                    atomic_fetch_add (&self->dripped, 1);
                else if (slow[i] >= 0) {
                    close (slow[i]);
                    slow[i] = -1;
                }
            }
            drip_at = now + 500;
        }
        if (now >= flood_at) {
            int fds[FLOOD];
            for (int i = 0; i < FLOOD; i++)
                if ((fds[i] = s_connect_from ("127.0.0.2", self->port)) >= 0)
                    atomic_fetch_add (&self->flooded, 1);
            for (int i = 0; i < FLOOD; i++)
                if (fds[i] >= 0)
                    close (fds[i]);
            flood_at = now + 500;
        }
        if (now >= big_at) {
            int fd = s_connect_from ("127.0.0.3", self->port);
            if (fd >= 0) {
                char answer[64] = "";
                send (fd, big, big_len, MSG_NOSIGNAL);
                if (recv (fd, answer, sizeof answer - 1, 0) > 0
                    && !strncmp (answer, "HTTP/1.1 431", 12))
                    atomic_fetch_add (&self->too_big, 1);
                close (fd);
            }
            big_at = now + 300;
        }
        zclock_sleep (20);
    }
    for (int i = 0; i < SLOW; i++)
        if (slow[i] >= 0)
            close (slow[i]);
    return NULL;
}

static void
test_abusive_client_during_run (void **state)
{
    (void)state;
    assert_true (s_baseline_ms > 0); /* test_settle_endpoint ran first */
    static char body[1 << 17];
    s_settle_t f;
    s_settle_ready (&f, body, sizeof body);
    char *db = f.db, *dir = f.dir;
    int port = f.port;

    static s_abuse_t abuse;
    abuse.port = port;
    atomic_store (&abuse.stop, false);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_abuser, &abuse), 0);
    zclock_sleep (1000); /* the slowloris connections are in place */

    PGconn *conn = bf_testdb_connect (db);
    assert_non_null (conn);
    char sql[256];
    int64_t started = zclock_mono ();
    s_start_run (conn, sql, sizeof sql);
    int checks = 0;
    while (bf_testdb_scalar (conn, sql) != 1) {
        assert_true (zclock_mono () < started + 120000);
        /*  Another client still gets its answers, errors included.  */
        assert_int_equal (s_http (port, "GET", "/healthz", body, sizeof body), 200);
        assert_int_equal (s_http (port, "GET", "/nothing", body, sizeof body), 404);
        assert_int_equal (s_http (port, "POST", "/metrics", body, sizeof body), 405);
        checks++;
        zclock_sleep (50);
    }
    int64_t abused_ms = zclock_mono () - started;
    assert_int_equal (s_http (port, "GET", "/metrics", body, sizeof body), 200);
    atomic_store (&abuse.stop, true);
    pthread_join (thread, NULL);
    printf ("# run without the abusive client %lld ms, with it %lld ms; %d header lines"
            " dripped, %d flood connections, %d huge requests answered 431, %d checks\n",
            (long long)s_baseline_ms, (long long)abused_ms, atomic_load (&abuse.dripped),
            atomic_load (&abuse.flooded), atomic_load (&abuse.too_big), checks);
    assert_true (checks > 0);
    assert_true (atomic_load (&abuse.dripped) > 16);
    assert_true (atomic_load (&abuse.flooded) > 0);
    assert_true (atomic_load (&abuse.too_big) > 0);
    /*  Not noticeably slower: at most twice the clean run, plus 5 s for a
        loaded machine.  */
    assert_true (abused_ms <= 2 * s_baseline_ms + 5000);
    assert_true (s_sample (body, "billflow_bills_written_total")
                 == (double)bf_testdb_scalar (conn, "SELECT count(*) FROM bill"));
    PQfinish (conn);
    assert_int_equal (bf_proc_stop (&f.settle, 20000), 0);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

/*  --- control's cluster-wide gauges -------------------------------------- */

/*  True when the exposition has no sample or HELP line of family.  */
static bool
s_absent (const char *text, const char *family)
{
    char key[160];
    snprintf (key, sizeof key, "\n%s", family);
    for (const char *at = strstr (text, key); at; at = strstr (at + 1, key)) {
        char next = at[strlen (key)];
        if (next == ' ' || next == '{')
            return false;
    }
    snprintf (key, sizeof key, "# HELP %s ", family);
    return strstr (text, key) == NULL;
}

/*  True when control's billflow_deliveries equal the database's deliveries
    per state and channel, and the chunk gauges the newest run's chunks.  */
static bool
s_gauges_match (PGconn *conn, const char *text)
{
    PGresult *res = PQexec (conn, "SELECT state, channel, count(*) FROM delivery GROUP BY 1, 2");
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) == 0) {
        PQclear (res);
        return false;
    }
    bool match = true;
    double total = 0, gauges = 0;
    for (int i = 0; i < PQntuples (res); i++) {
        char key[160];
        snprintf (key, sizeof key, "billflow_deliveries{state=\"%s\",channel=\"%s\"}",
                  PQgetvalue (res, i, 0), PQgetvalue (res, i, 1));
        double want = atof (PQgetvalue (res, i, 2));
        total += want;
        if (s_sample (text, key) != want)
            match = false;
    }
    PQclear (res);
    /*  No other pair holds deliveries.  */
    for (const char *at = strstr (text, "\nbillflow_deliveries{"); at;
         at = strstr (at + 1, "\nbillflow_deliveries{"))
        gauges += strtod (strchr (at, '}') + 1, NULL);
    const char *done
        = "SELECT count(*) FROM settlement_chunk WHERE state = 'DONE'"
          " AND run_id = (SELECT max (run_id) FROM settlement_run)";
    return match && gauges == total
           && s_sample (text, "billflow_run_chunks{state=\"DONE\"}")
                  == (double)bf_testdb_scalar (conn, done)
           && s_sample (text, "billflow_run_chunks{state=\"PENDING\"}") == 0
           && s_sample (text, "billflow_run_oldest_unfinished_age_seconds") == 0
           && s_sample (text, "billflow_notices_held_overdue")
                  == (double)bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                                     " WHERE state = 'HELD'"
                                                     " AND not_before < now ()");
}

static const char *s_cluster_families[] = { "billflow_deliveries", "billflow_run_chunks",
                                            "billflow_run_oldest_unfinished_age_seconds",
                                            "billflow_notices_held_overdue" };

static void
test_control_cluster_gauges (void **state)
{
    (void)state;
    bf_stack_t s;
    bf_stack_init (&s);
    bf_stack_both_controls (&s);
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (s.db, &out,
                                          "generate --subscribers 300 --period " PERIOD
                                          " --seed 11"),
                      0);
    free (out);
    for (int i = 0; i < 2; i++) {
        bf_proc_env (&s.control[i], "BILLFLOW_CONTROL_HTTP=127.0.0.1:0");
        bf_proc_env (&s.control[i], "BILLFLOW_CONTROL_METRICS_MS=500");
    }
    bf_stack_mock_start (&s, "");
    bf_proc_start (&s.control[0]);
    assert_int_equal (bf_stack_wait_active (&s, 0, 20000), 0);
    bf_proc_start (&s.control[1]);
    int port[2] = { s_port_of (&s.control[0]), s_port_of (&s.control[1]) };
    bf_proc_start (&s.settle[0]);
    bf_proc_start (&s.notify);
    assert_int_equal (bf_stack_wait_registered (&s, "settle", 15000), 0);
    assert_int_equal (bf_stack_wait_registered (&s, "notify", 15000), 0);
    static char body[1 << 17];
    assert_true (s_wait_body (port[1], "/readyz", "role: standby\n", 10000, body, sizeof body));

    bf_client_t *client = bf_stack_client (&s, "ops-a", 2000, 10);
    assert_non_null (client);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { PERIOD };
    assert_int_equal (bf_client_request (client, "observe-start", "settle", "run.start", 1, keys,
                                         values, &reply, NULL, err, sizeof err),
                      BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    billflow__command_reply__free_unpacked (reply, NULL);
    /*  The same id again: answered from the store.  */
    assert_int_equal (bf_client_request (client, "observe-start", "settle", "run.start", 1, keys,
                                         values, &reply, NULL, err, sizeof err),
                      BF_CLIENT_ANSWERED);
    billflow__command_reply__free_unpacked (reply, NULL);
    assert_int_equal (bf_client_request (client, "observe-summary", "control",
                                         "deliveries.summary", 0, NULL, NULL, &reply, NULL, err,
                                         sizeof err),
                      BF_CLIENT_ANSWERED);
    billflow__command_reply__free_unpacked (reply, NULL);
    bf_client_destroy (&client);
    /*  A key that is not listed: its CURVE handshake is refused.  */
    bf_client_t *intruder = bf_stack_client (&s, "intruder", 300, 0);
    if (intruder) {
        bf_client_request (intruder, "observe-intruder", "control", "control.status", 0, NULL,
                           NULL, &reply, NULL, err, sizeof err);
        bf_client_destroy (&intruder);
    }

    /*  The cycle: every bill has its notices, none still on its way.  */
    assert_int_equal (
        bf_stack_wait_scalar (&s,
                              "SELECT (count(*) > 0 AND count(*) FILTER (WHERE state IN"
                              " ('PENDING', 'SENDING', 'RETRY')) = 0 AND count(DISTINCT bill_id)"
                              " = (SELECT count(*) FROM bill))::int FROM delivery",
                              1, 120000),
        1);
    assert_int_equal (bf_testdb_scalar (s.conn, "SELECT count(*) FROM settlement_run"
                                                " WHERE state <> 'COMPLETED'"),
                      0);
    bool match = false;
    for (int64_t deadline = zclock_mono () + 15000; !match && zclock_mono () < deadline;) {
        s_http (port[0], "GET", "/metrics", body, sizeof body);
        match = s_gauges_match (s.conn, body);
        if (!match)
            zclock_sleep (200);
    }
    if (!match)
        printf ("# control's exposition:\n%s\n", body);
    assert_true (match);
    /*  control's own figures.  */
    assert_true (s_sample (body, "billflow_control_commands_total{verb=\"run.start\","
                                 "outcome=\"stored\"}")
                 == 1);
    assert_true (s_sample (body, "billflow_control_commands_total{verb=\"run.start\","
                                 "outcome=\"done\"}")
                 == 1);
    assert_true (s_sample (body, "billflow_control_commands_repeated_total") >= 1);
    assert_true (s_sample (body, "billflow_control_queries_total{verb=\"deliveries.summary\"}")
                 >= 1);
    assert_true (s_sample (body, "billflow_control_curve_refused_total") >= 1);
    assert_true (s_sample (body, "billflow_control_instances{service=\"settle\",state=\"up\"}")
                 == 1);
    assert_true (s_sample (body, "billflow_control_instances{service=\"notify\",state=\"up\"}")
                 == 1);

    /*  The standby exports none of the cluster-wide figures.  */
    assert_int_equal (s_http (port[1], "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_control_leader") == 0);
    for (size_t i = 0; i < sizeof s_cluster_families / sizeof s_cluster_families[0]; i++)
        assert_true (s_absent (body, s_cluster_families[i]));

    /*  The leader dies: the new one exports them, the same figures.  */
    bf_proc_kill (&s.control[0]);
    assert_true (s_wait_body (port[1], "/readyz", "role: leader\n", 30000, body, sizeof body));
    match = false;
    for (int64_t deadline = zclock_mono () + 15000; !match && zclock_mono () < deadline;) {
        s_http (port[1], "GET", "/metrics", body, sizeof body);
        match = s_gauges_match (s.conn, body);
        if (!match)
            zclock_sleep (200);
    }
    assert_true (match);
    bf_stack_destroy (&s);
}

/*  Whether notify's sample family{labels} (labels "" for none) is there
    and equals want; else the difference in why.  */
static bool
s_figure (const char *text, const char *family, const char *labels, double want, char *why,
          size_t whysize)
{
    char key[256];
    int n = labels[0] ? snprintf (key, sizeof key, "%s{%s}", family, labels)
                      : snprintf (key, sizeof key, "%s", family);
    double value = n > 0 && (size_t)n < sizeof key ? s_sample (text, key) : NAN;
    if (value == want)
        return true;
    snprintf (why, whysize, "%.200s is %g, not %g", key, value, want);
    return false;
}

/*  Compares notify's scrape with the database; "" when every figure
    matches, else the first difference in why.  */
static void
s_notify_figures (PGconn *conn, const char *text, char *why, size_t whysize)
{
    static const char *channels[] = { "EMAIL", "SMS", "PUSH" };
    static const char *lower[] = { "email", "sms", "push" };
    /*  delivery_attempt.outcome -> the `outcome` label (bf_notify_metrics.h):
        DELIVERED and DUPLICATE are "sent" (accepted by the provider),
        THROTTLED is "rate_limited" (429), UNKNOWN "timeout" (possibly
        delivered), TRANSIENT and PERMANENT keep their names.  */
    static const char *outcomes[][2] = {
        { "sent", "'DELIVERED','DUPLICATE'" }, { "transient", "'TRANSIENT'" },
        { "permanent", "'PERMANENT'" },        { "timeout", "'UNKNOWN'" },
        { "rate_limited", "'THROTTLED'" },
    };
    /*  Per channel: family, then the count(*) it must equal (%s: channel).  */
    static const char *per_channel[][2] = {
        { "billflow_notify_deliveries_created_total", "" },
        { "billflow_notify_fallbacks_total", " AND d.fallback_of IS NOT NULL" },
        { "billflow_notify_quiet_held_total",
          " AND d.state = 'HELD' AND d.hold_reason LIKE 'quiet hours%'" },
    };
    char labels[160], sql[512];
    why[0] = 0;
    if (!s_figure (
            text, "billflow_notify_events_ingested_total", "",
            (double)bf_testdb_scalar (conn, "SELECT count(*) FROM outbox WHERE seq IS NOT NULL"),
            why, whysize))
        return;
    for (int c = 0; c < 3; c++) {
        snprintf (labels, sizeof labels, "channel=\"%s\"", lower[c]);
        for (size_t f = 0; f < sizeof per_channel / sizeof per_channel[0]; f++) {
            snprintf (sql, sizeof sql, "SELECT count(*) FROM delivery d WHERE d.channel = '%s'%s",
                      channels[c], per_channel[f][1]);
            if (!s_figure (text, per_channel[f][0], labels, (double)bf_testdb_scalar (conn, sql),
                           why, whysize))
                return;
        }
        /*  Every attempt is observed once by the latency histogram.  */
        snprintf (sql, sizeof sql,
                  "SELECT count(*) FROM delivery_attempt a JOIN delivery d"
                  " ON d.id = a.delivery_id WHERE d.channel = '%s'",
                  channels[c]);
        if (!s_figure (text, "billflow_notify_provider_latency_seconds_count", labels,
                       (double)bf_testdb_scalar (conn, sql), why, whysize))
            return;
        for (size_t o = 0; o < sizeof outcomes / sizeof outcomes[0]; o++) {
            snprintf (sql, sizeof sql,
                      "SELECT count(*) FROM delivery_attempt a JOIN delivery d"
                      " ON d.id = a.delivery_id WHERE d.channel = '%s' AND a.outcome IN (%s)",
                      channels[c], outcomes[o][1]);
            double want = (double)bf_testdb_scalar (conn, sql);
            snprintf (labels, sizeof labels, "channel=\"%s\",provider=\"%s\",outcome=\"%s\"",
                      lower[c], lower[c], outcomes[o][0]);
            if (!s_figure (text, "billflow_notify_send_attempts_total", labels, want, why, whysize))
                return;
            /*  Every 429 is a pause.  */
            snprintf (labels, sizeof labels, "channel=\"%s\"", lower[c]);
            if (!strcmp (outcomes[o][0], "rate_limited")
                && !s_figure (text, "billflow_notify_rate_limit_pauses_total", labels, want, why,
                              whysize))
                return;
        }
        /*  The end: nothing in flight, no breaker open.  */
        snprintf (labels, sizeof labels, "provider=\"%s\"", lower[c]);
        if (!s_figure (text, "billflow_notify_requests_in_flight", labels, 0, why, whysize)
            || !s_figure (text, "billflow_notify_breaker_open", labels, 0, why, whysize))
            return;
    }
    if (s_figure (text, "billflow_notify_ingest_lag_events", "", 0, why, whysize))
        s_figure (text, "billflow_notify_dispatch_paused", "", 0, why, whysize);
}

static void
test_notify_figures (void **state)
{
    (void)state;
    bf_stack_t s;
    bf_stack_init (&s);
    char *out = NULL;
    assert_int_equal (
        bf_testdb_billdata (s.db, &out, "generate --subscribers 400 --period " PERIOD " --seed 11"),
        0);
    free (out);
    /*  Emails refused for good at RCPT (their notices fall back to SMS),
        SMS refused with 422; HTTP 429s and garbage replies (transient).  */
    bf_stack_mock_start (&s, "--email-latency-ms 5 --fail-mode permanent --email-fail-pct 8"
                             " --sms-fail-pct 3 --throttle-pct 4 --garbage-pct 4 --seed 5");
    bf_proc_env (&s.notify, "BILLFLOW_NOTIFY_HTTP=127.0.0.1:0");
    bf_proc_start (&s.control[0]);
    assert_int_equal (bf_stack_wait_active (&s, 0, 20000), 0);
    bf_proc_start (&s.settle[0]);
    bf_proc_start (&s.notify);
    int nport = s_port_of (&s.notify);
    assert_int_equal (bf_stack_wait_registered (&s, "settle", 20000), 0);
    assert_int_equal (bf_stack_wait_registered (&s, "notify", 20000), 0);
    static char body[1 << 17];
    assert_int_equal (s_wait_status (nport, "/readyz", 200, 20000, body, sizeof body), 200);
    /*  Before any event every figure is there, at 0.  */
    assert_int_equal (s_http (nport, "GET", "/metrics", body, sizeof body), 200);
    assert_true (s_sample (body, "billflow_notify_events_ingested_total") == 0);
    assert_true (s_sample (body, "billflow_notify_requests_in_flight{provider=\"sms\"}") == 0);

    bf_client_t *client = bf_stack_client (&s, "ops-a", 1000, 30);
    assert_non_null (client);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { PERIOD };
    assert_int_equal (bf_client_request (client, "observe-start", "settle", "run.start", 1, keys,
                                         values, &reply, NULL, err, sizeof err),
                      BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    billflow__command_reply__free_unpacked (reply, NULL);
    bf_client_destroy (&client);

    /*  The cycle ends: the run completed, every bill has its deliveries,
        none is still to be sent, and the cursor is at the last event.  */
    const char *done
        = "SELECT ((SELECT count(*) FROM settlement_run WHERE period = '" PERIOD "'"
          " AND state = 'COMPLETED') = 1"
          " AND NOT EXISTS (SELECT 1 FROM bill b WHERE NOT EXISTS"
          "   (SELECT 1 FROM delivery d WHERE d.period = b.period AND d.bill_id = b.bill_id))"
          " AND NOT EXISTS (SELECT 1 FROM delivery WHERE state NOT IN"
          "   ('DELIVERED', 'FAILED', 'CANCELLED', 'HELD'))"
          " AND (SELECT max(last_seq) FROM notify_cursor)"
          "   = (SELECT count(*) FROM outbox WHERE seq IS NOT NULL))::int";
    assert_int_equal (bf_stack_wait_scalar (&s, done, 1, 180000), 1);
    assert_true (bf_testdb_scalar (s.conn, "SELECT count(*) FROM bill") > 0);
    /*  The mix happened: without it the comparison below proves less.  */
    assert_true (bf_testdb_scalar (s.conn, "SELECT count(*) FROM delivery"
                                           " WHERE fallback_of IS NOT NULL")
                 > 0);
    assert_true (bf_testdb_scalar (s.conn, "SELECT count(*) FROM delivery_attempt"
                                           " WHERE outcome = 'THROTTLED'")
                 > 0);
    assert_true (bf_testdb_scalar (s.conn, "SELECT count(*) FROM delivery_attempt"
                                           " WHERE outcome = 'TRANSIENT'")
                 > 0);

    /*  Counters move right after their commit, gauges within a loop turn
        and a heartbeat: compare until equal, for a few seconds.  */
    char why[256] = "no scrape";
    int64_t deadline = zclock_mono () + 10000;
    do {
        if (s_http (nport, "GET", "/metrics", body, sizeof body) == 200)
            s_notify_figures (s.conn, body, why, sizeof why);
        if (why[0])
            zclock_sleep (200);
    } while (why[0] && zclock_mono () < deadline);
    if (why[0])
        fail_msg ("notify's figures differ from the database: %s", why);
    /*  Only low-cardinality labels.  */
    assert_null (strstr (body, "subscriber"));
    assert_null (strstr (body, "bill_id"));
    assert_null (strstr (body, "delivery_id"));
    bf_stack_destroy (&s);
}

static int
s_teardown (void **state)
{
    (void)state;
    bf_proc_kill_all ();
    if (*s_private_pg) {
        char args[800];
        snprintf (args, sizeof args, "stop '%s'", s_private_pg);
        s_pgtmp (args);
        s_private_pg[0] = 0;
    }
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_settle_endpoint, s_teardown),
        cmocka_unit_test_teardown (test_control_roles_and_notify, s_teardown),
        cmocka_unit_test_teardown (test_readyz_postgres_stopped, s_teardown),
        cmocka_unit_test_teardown (test_abusive_client_during_run, s_teardown),
        cmocka_unit_test_teardown (test_control_cluster_gauges, s_teardown),
        cmocka_unit_test_teardown (test_notify_figures, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
