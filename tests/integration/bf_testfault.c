/*  bf_testfault — database faults for a test stack, and a faulted cycle's
    checks (bf_testfault.h).  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
bf_fault_checksum (PGconn *conn, const char *period, char *out, size_t outsize)
{
    char sql[1024];
    snprintf (sql, sizeof sql,
              "SELECT count (*) || ':' || sum (hashtextextended (x, 7)::numeric) FROM ("
              " SELECT 'b' || subscriber_id || ',' || total || ',' || due_date || ',' || line_count"
              "  AS x FROM bill WHERE period = '%s'"
              " UNION ALL"
              " SELECT 'l' || subscriber_id || ',' || line_no || ',' || code || ',' || amount"
              "  FROM bill_line WHERE period = '%s') t",
              period, period);
    return bf_testdb_text (conn, sql, out, outsize);
}

int
bf_fault_reference (int subscribers, uint64_t seed, const char *period, char *out, size_t outsize)
{
    char *db = bf_testdb_create (true), *text = NULL;
    if (!db)
        return -1;
    int rc = bf_testdb_billdata (db, &text, "generate --subscribers %d --period %s --seed %llu",
                                 subscribers, period, (unsigned long long)seed);
    free (text);
    if (rc == 0)
        rc = bf_testdb_settle_once (db, period);
    if (rc == 0) {
        PGconn *conn = bf_testdb_connect (db);
        rc = conn ? bf_fault_checksum (conn, period, out, outsize) : -1;
        PQfinish (conn);
    }
    bf_testdb_drop (&db);
    return rc == 0 ? 0 : -1;
}

int64_t
bf_fault_scalar (bf_stack_t *s, const char *sql)
{
    if (PQstatus (s->conn) != CONNECTION_OK)
        PQreset (s->conn);
    if (PQstatus (s->conn) != CONNECTION_OK)
        return -1;
    int64_t value = bf_testdb_scalar (s->conn, sql);
    /*  The session may have died under the query: once more on a new one.  */
    if (value < 0 && PQstatus (s->conn) != CONNECTION_OK) {
        PQreset (s->conn);
        value = bf_testdb_scalar (s->conn, sql);
    }
    return value;
}

bool
bf_fault_cycle_done (bf_stack_t *s, const char *period)
{
    char sql[512];
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM settlement_run WHERE period = '%s' AND state = 'COMPLETED'",
              period);
    if (bf_fault_scalar (s, sql) < 1)
        return false;
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM bill b WHERE b.period = '%s' AND NOT EXISTS"
              " (SELECT 1 FROM delivery d WHERE d.period = b.period AND d.bill_id = b.bill_id)",
              period);
    if (bf_fault_scalar (s, sql) != 0)
        return false;
    return bf_fault_scalar (s, "SELECT count (*) FROM delivery WHERE state NOT IN"
                               " ('DELIVERED', 'FAILED', 'CANCELLED', 'HELD')")
           == 0;
}

int
bf_fault_kill_backend (bf_stack_t *s, const char *app, const char *query_prefix, int timeout_ms)
{
    const char *params[] = { app, query_prefix ? query_prefix : "", query_prefix ? "f" : "t" };
    int64_t until = bf_stack_now_ms () + timeout_ms;
    while (bf_stack_now_ms () < until) {
        if (PQstatus (s->conn) != CONNECTION_OK)
            PQreset (s->conn);
        PGresult *res = PQexecParams (
            s->conn,
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
        if (bf_fault_scalar (s, "SELECT 1") == 1)
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
    bf_proc_start (&s->control[0]);
    if (bf_stack_wait_active (s, 0, 15000) != 0)
        return fprintf (stderr, "bf_fault: control did not become active\n"), NULL;
    bf_proc_start (&s->settle[0]);
    bf_proc_start (&s->settle[1]);
    bf_proc_start (&s->notify);
    if (bf_stack_wait_registered (s, "settle", 15000) != 0
        || bf_stack_wait_registered (s, "notify", 15000) != 0)
        return fprintf (stderr, "bf_fault: settle or notify did not register\n"), NULL;
    bf_client_t *client = bf_stack_client (s, "ops-a", 1000, 30);
    if (!client)
        return NULL;
    Billflow__CommandReply *reply = NULL;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { period };
    int rc = bf_client_request (client, command_id, "settle", "run.start", 1, keys, values, &reply,
                                NULL, err, sizeof err);
    bool ok = rc == BF_CLIENT_ANSWERED
              && reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    if (!ok)
        fprintf (stderr, "bf_fault: run.start: %s\n",
                 rc == BF_CLIENT_ANSWERED ? reply->error : err);
    if (reply)
        billflow__command_reply__free_unpacked (reply, NULL);
    if (!ok)
        bf_client_destroy (&client);
    return client;
}

void
bf_fault_vnote (const char *tag, int64_t started, const char *format, va_list args)
{
    char line[1024];
    vsnprintf (line, sizeof line, format, args);
    printf ("# %s +%.1fs: %s\n", tag, (double)(bf_stack_now_ms () - started) / 1000.0, line);
    fflush (stdout);
}
