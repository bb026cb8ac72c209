/*  bf_testfault — database faults for a test stack (bf_testfault.h).  */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_testcycle.h"
#include "bf_testdb.h"
#include "bf_testfault.h"

int
bf_fault_durable_commits (bf_stack_t *s)
{
    const char *state
        = bf_testdb_exec (s->conn, "DO $$ BEGIN EXECUTE format ('ALTER DATABASE %I SET"
                                   " synchronous_commit = on', current_database ()); END $$");
    return strcmp (state, "00000") == 0 ? 0 : -1;
}

int
bf_fault_kill_backend (bf_stack_t *s, const char *app, const char *query_prefix, int timeout_ms)
{
    const char *params[] = { app, query_prefix ? query_prefix : "", query_prefix ? "f" : "t" };
    int64_t until = bf_stack_now_ms () + timeout_ms;
    while (bf_stack_now_ms () < until) {
        if (PQstatus (s->conn) != CONNECTION_OK)
            PQreset (s->conn);
        PGresult *res
            = PQexecParams (s->conn,
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database ()"
                            " AND application_name = $1 AND pid <> pg_backend_pid ()"
                            " AND ($3 OR (state = 'active' AND starts_with (query, $2))) LIMIT 1",
                            3, NULL, params, NULL, NULL, 0);
        int pid = PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
                      ? atoi (PQgetvalue (res, 0, 0))
                      : 0;
        PQclear (res);
        if (pid > 0 && kill (pid, SIGKILL) == 0)
            return pid;
        usleep (1000);
    }
    return -1;
}

static int
s_pgtmp (const char *verb)
{
    const char *dir = getenv ("PGHOST");
    if (!dir || dir[0] != '/')
        return -1; /* not a pgtmp cluster: nothing of ours to crash */
    char command[1024];
    snprintf (command, sizeof command, "\"$BF_SOURCE_ROOT/scripts/pgtmp\" %s '%s'", verb, dir);
    return system (command) == 0 ? 0 : -1;
}

int
bf_fault_pg_kill_all (void)
{
    return s_pgtmp ("kill");
}

int
bf_fault_pg_start (void)
{
    return s_pgtmp ("restart");
}

int64_t
bf_fault_wait_db (bf_stack_t *s, int timeout_ms)
{
    int64_t start = bf_stack_now_ms ();
    while (bf_stack_now_ms () - start < timeout_ms) {
        if (bf_cycle_scalar (s, "SELECT 1") == 1)
            return bf_stack_now_ms () - start;
        usleep (20000);
    }
    return -1;
}

int64_t
bf_fault_metric (int port, const char *series)
{
    char command[512];
    snprintf (command, sizeof command, "curl -sf 'http://127.0.0.1:%d/metrics'", port);
    FILE *in = popen (command, "r");
    if (!in)
        return -1;
    char line[1024];
    int64_t value = -1;
    size_t n = strlen (series);
    while (fgets (line, sizeof line, in))
        if (strncmp (line, series, n) == 0 && line[n] == ' ')
            value = (int64_t)strtod (line + n + 1, NULL);
    pclose (in);
    return value;
}

/*  Lines of file from byte offset from that contain text: counted, and
    the first copied into first (when not NULL).  */
static int
s_lines (const char *file, long from, const char *text, char *first, size_t firstsize)
{
    FILE *in = fopen (file, "r");
    if (!in)
        return 0;
    if (from > 0)
        fseek (in, from, SEEK_SET);
    char line[8192];
    int count = 0;
    while (fgets (line, sizeof line, in))
        if (strstr (line, text) && count++ == 0 && first) {
            line[strcspn (line, "\n")] = '\0';
            snprintf (first, firstsize, "%s", line);
        }
    fclose (in);
    return count;
}

int
bf_fault_count_lines (const char *file, long from, const char *text)
{
    return s_lines (file, from, text, NULL, 0);
}

bool
bf_fault_first_line (const char *file, long from, const char *text, char *out, size_t outsize)
{
    return s_lines (file, from, text, out, outsize) > 0;
}

bf_client_t *
bf_fault_start_cycle (bf_stack_t *s, const char *command_id, const char *period)
{
    bf_cycle_start_services (s, false);
    bf_client_t *client = bf_stack_client (s, "ops-a", 1000, 30);
    if (!client)
        return NULL;
    Billflow__CommandReply *reply = NULL;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { period };
    int rc = bf_client_request (client, command_id, "settle", "run.start", 1, keys, values, &reply,
                                NULL, err, sizeof err);
    bool ok
        = rc == BF_CLIENT_ANSWERED && reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    if (!ok)
        fprintf (stderr, "bf_fault: run.start: %s\n",
                 rc == BF_CLIENT_ANSWERED ? reply->error : err);
    if (reply)
        billflow__command_reply__free_unpacked (reply, NULL);
    if (!ok)
        bf_client_destroy (&client);
    return client;
}
