/*  bf_teststack — the whole stack on the real binaries, for tests.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bf_testdb.h"
#include "bf_teststack.h"

int64_t
bf_stack_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
bf_stack_key_path (const bf_stack_t *s, const char *name, char *out, size_t outsize)
{
    snprintf (out, outsize, "%s/%s.key_secret", s->dir, name);
}

void
bf_stack_control_init (bf_stack_t *s, int i, const char *fault)
{
    char log[512], path[600];
    snprintf (log, sizeof log, "%s/control-%d.log", s->dir, i + 1);
    bf_proc_t *p = &s->control[i];
    bf_proc_init (p, getenv ("BF_CONTROL"), log);
    bf_proc_env (p, "BILLFLOW_DB_CONNINFO=%s", s->db);
    /*  An ipc socket in the stack's directory, not a TCP port picked
        ahead: another process could take that port before control binds
        it (docs/harness.md "Ports").  */
    bf_proc_env (p, "BILLFLOW_CONTROL_BIND=ipc://%s/control-%d.ipc", s->dir, i + 1);
    bf_stack_key_path (s, "control", path, sizeof path);
    bf_proc_env (p, "BILLFLOW_CONTROL_KEY_FILE=%s", path);
    bf_proc_env (p, "BILLFLOW_CONTROL_ALLOWED_KEYS=%s/allowed_keys", s->dir);
    bf_proc_env (p, "BILLFLOW_CONTROL_HEARTBEAT_MS=200");
    bf_proc_env (p, "BILLFLOW_CONTROL_ELECTION_MS=200");
    bf_proc_env (p, "BILLFLOW_CONTROL_COMMAND_TIMEOUT_MS=3000");
    bf_proc_env (p, "BILLFLOW_SERVICE_INSTANCE=control-%d", i + 1);
    bf_proc_env (p, "BILLFLOW_PII_KEY=%s", BF_TEST_PII_KEY);
    bf_proc_env (p, "BILLFLOW_LOG_LEVEL=debug");
    if (fault)
        bf_proc_env (p, "BF_FAULT=%s", fault);
}

static void
s_service_env (bf_stack_t *s, bf_proc_t *p, const char *key, const char *instance)
{
    char path[600];
    bf_proc_env (p, "BILLFLOW_DB_CONNINFO=%s", s->db);
    bf_proc_env (p, "BILLFLOW_CONTROL_ENDPOINT=%s", s->endpoints);
    bf_proc_env (p, "BILLFLOW_CONTROL_SERVER_KEY=%s", s->control_key);
    bf_stack_key_path (s, key, path, sizeof path);
    bf_proc_env (p, "BILLFLOW_CONTROL_CLIENT_KEY_FILE=%s", path);
    bf_proc_env (p, "BILLFLOW_CONTROL_HEARTBEAT_MS=200");
    bf_proc_env (p, "BILLFLOW_SERVICE_INSTANCE=%s", instance);
    bf_proc_env (p, "BILLFLOW_PII_KEY=%s", BF_TEST_PII_KEY);
}

static void
s_settle_init (bf_stack_t *s, int i)
{
    char log[512], instance[32];
    snprintf (log, sizeof log, "%s/settle-%d.log", s->dir, i + 1);
    snprintf (instance, sizeof instance, "settle-%d", i + 1);
    bf_proc_t *p = &s->settle[i];
    bf_proc_init (p, getenv ("BF_SETTLE"), log);
    s_service_env (s, p, "settle", instance);
    /*  Both settle processes bind the same ipc endpoints: only the active
        relay binds its PUB; replay endpoints are per process.  */
    bf_proc_env (p, "BILLFLOW_SETTLE_PUB_ENDPOINT=ipc://%s/pub", s->dir);
    bf_proc_env (p, "BILLFLOW_SETTLE_REPLAY_ENDPOINT=ipc://%s/replay-%d", s->dir, i + 1);
    bf_proc_env (p, "BILLFLOW_SETTLE_WORKERS=1");
    bf_proc_env (p, "BILLFLOW_SETTLE_POLL_MS=50");
    bf_proc_env (p, "BILLFLOW_SETTLE_LEASE_MS=3000");
    /*  The event stream serves CURVE with settle's key (control.client_key_file)
        to the service keys of the same list control uses.  */
    bf_proc_env (p, "BILLFLOW_SETTLE_ALLOWED_KEYS=%s/allowed_keys", s->dir);
}

static void
s_notify_init (bf_stack_t *s)
{
    char log[512];
    snprintf (log, sizeof log, "%s/notify.log", s->dir);
    bf_proc_t *p = &s->notify;
    bf_proc_init (p, getenv ("BF_NOTIFY"), log);
    s_service_env (s, p, "notify", "notify-1");
    bf_proc_env (p, "BILLFLOW_NOTIFY_SETTLE_PUB_ENDPOINTS=ipc://%s/pub", s->dir);
    bf_proc_env (p, "BILLFLOW_NOTIFY_SETTLE_REPLAY_ENDPOINTS=ipc://%s/replay-1,ipc://%s/replay-2",
                 s->dir, s->dir);
    bf_proc_env (p, "BILLFLOW_NOTIFY_SETTLE_SERVER_KEY=%s", s->settle_key);
    bf_proc_env (p, "BILLFLOW_NOTIFY_DISPATCHERS=1");
    bf_proc_env (p, "BILLFLOW_NOTIFY_LEASE_MS=5000");
    bf_proc_env (p, "BILLFLOW_NOTIFY_POLL_MS=50");
    bf_proc_env (p, "BILLFLOW_NOTIFY_BACKOFF_BASE_MS=200");
    bf_proc_env (p, "BILLFLOW_NOTIFY_BACKOFF_MAX_MS=1000");
    bf_proc_env (p, "BILLFLOW_NOTIFY_BREAKER_OPEN_MS=2000");
    bf_proc_env (p, "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00");
}

static void
s_write_keys (bf_stack_t *s)
{
    /*  settle and notify are bound to their service (settle to its
        instances settle-*); "spare" is a service key bound to nothing,
        as an old list would have it, and may register as nothing.  */
    const char *names[] = { "control", "settle",   "notify", "ops-a",  "ops-b",
                            "viewer",  "intruder", "spare",  "console" };
    const char *roles[] = { NULL,     "service", "service", "operator", "operator",
                            "viewer", NULL,      "service", "console" };
    const char *bindings[] = { "", "settle:settle-*", "notify", "", "", "", "", "", "" };
    char list[2048] = "# name role key [service binding]\n", err[256], pub[BF_CURVE_KEY_TXT];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (bf_curve_keygen (s->dir, names[i], pub, err, sizeof err) != 0) {
            fprintf (stderr, "bf_stack: keygen %s: %s\n", names[i], err);
            abort ();
        }
        if (i == 0)
            memcpy (s->control_key, pub, sizeof pub);
        if (i == 1)
            memcpy (s->settle_key, pub, sizeof pub);
        if (roles[i])
            snprintf (list + strlen (list), sizeof list - strlen (list), "%s %s %s %s\n", names[i],
                      roles[i], pub, bindings[i]);
    }
    char path[600];
    snprintf (path, sizeof path, "%s/allowed_keys", s->dir);
    bf_test_write (path, list);
}

static void
s_prepare (bf_stack_t *s)
{
    bf_stack_control_init (s, 0, NULL);
    bf_stack_control_init (s, 1, NULL);
    s_settle_init (s, 0);
    s_settle_init (s, 1);
    s_notify_init (s);
}

void
bf_stack_init (bf_stack_t *s)
{
    memset (s, 0, sizeof *s);
    s->db = bf_testdb_create (true);
    s->dir = bf_test_mkdtemp ();
    if (!s->db || !s->dir)
        abort ();
    s->conn = bf_testdb_connect (s->db);
    snprintf (s->mock_host, sizeof s->mock_host, "127.0.0.1");
    s_write_keys (s);
    snprintf (s->endpoints, sizeof s->endpoints, "ipc://%s/control-1.ipc", s->dir);
    s_prepare (s);
}

void
bf_stack_both_controls (bf_stack_t *s)
{
    snprintf (s->endpoints, sizeof s->endpoints, "ipc://%s/control-1.ipc,ipc://%s/control-2.ipc",
              s->dir, s->dir);
    s_prepare (s);
}

void
bf_stack_destroy (bf_stack_t *s)
{
    bf_proc_kill_all ();
    PQfinish (s->conn);
    s->conn = NULL;
    bf_test_rmdir (&s->dir);
    bf_testdb_drop (&s->db);
}

void
bf_stack_mock_start (bf_stack_t *s, const char *flags)
{
    char log[512], out[600];
    snprintf (log, sizeof log, "%s/mock.err", s->dir);
    snprintf (out, sizeof out, "%s/mock.out", s->dir);
    bf_proc_init (&s->mock, "/bin/sh", log);
    static char command[1024];
    snprintf (command, sizeof command,
              "exec %s \"$BF_MOCKPROVIDER\" --bind %s --http-port 0 --smtp-port 0 %s > '%s'",
              s->mock_wrap, s->mock_host, flags, out);
    s->mock.shell = command;
    bf_proc_start (&s->mock);
    for (int i = 0; i < 200; i++) {
        char *text = bf_test_slurp (out);
        if (text && sscanf (text, "http=%d smtp=%d", &s->http_port, &s->smtp_port) == 2
            && strstr (text, "ready")) {
            free (text);
            bf_proc_t *p = &s->notify;
            bf_proc_env (p, "BILLFLOW_NOTIFY_SMTP_URL=smtp://%s:%d", s->mock_host, s->smtp_port);
            bf_proc_env (p, "BILLFLOW_NOTIFY_SMS_URL=http://%s:%d", s->mock_host, s->http_port);
            bf_proc_env (p, "BILLFLOW_NOTIFY_PUSH_URL=http://%s:%d", s->mock_host, s->http_port);
            return;
        }
        free (text);
        usleep (50000);
    }
    fprintf (stderr, "bf_stack: the mock provider did not start (see %s)\n", log);
    abort ();
}

char *
bf_stack_mock_report (bf_stack_t *s)
{
    char command[1024], path[600];
    snprintf (path, sizeof path, "%s/mock.report", s->dir);
    snprintf (command, sizeof command, "curl -sf 'http://%s:%d/v1/report' -o '%s'", s->mock_host,
              s->http_port, path);
    if (system (command) != 0)
        return NULL;
    return bf_test_slurp (path);
}

bf_client_t *
bf_stack_client (const bf_stack_t *s, const char *key_name, int timeout_ms, int retries)
{
    char path[600], err[256];
    if (key_name)
        bf_stack_key_path (s, key_name, path, sizeof path);
    bf_client_args_t args = {
        .endpoints = s->endpoints,
        .server_key = key_name ? s->control_key : NULL,
        .key_file = key_name ? path : NULL,
        .timeout_ms = timeout_ms,
        .retries = retries,
    };
    bf_client_t *client = bf_client_new (&args, err, sizeof err);
    if (!client)
        fprintf (stderr, "bf_stack: bf_client_new: %s\n", err);
    return client;
}

int
bf_stack_wait_active (const bf_stack_t *s, int i, int timeout_ms)
{
    return bf_proc_wait_log (&s->control[i], "active, listening", 0, timeout_ms) ? 0 : -1;
}

int64_t
bf_stack_wait_scalar (const bf_stack_t *s, const char *sql, int64_t want, int timeout_ms)
{
    return bf_testdb_wait_scalar (s->conn, sql, want, timeout_ms);
}

int
bf_stack_wait_registered (const bf_stack_t *s, const char *service, int timeout_ms)
{
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM service_instance WHERE service = '%s'"
              " AND last_heartbeat > now () - interval '500 milliseconds'",
              service);
    return bf_stack_wait_scalar (s, sql, 1, timeout_ms) >= 1 ? 0 : -1;
}

int
bf_stack_setup (void **state)
{
    bf_stack_init (*state);
    return 0;
}

int
bf_stack_teardown (void **state)
{
    bf_stack_destroy (*state);
    return 0;
}
