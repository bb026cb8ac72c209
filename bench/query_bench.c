/*  query_bench — times control's queries (services/control/bf_query.h) on
    the database the PG* environment points at.

        query_bench [-n ROUNDS] [-p PERIOD] [--explain]

    Runs each query ROUNDS times (default 200) on one connection, as control
    does, and prints min / median / p99 / max in milliseconds, measured
    around bf_query() (SQL, JSON, decryption and masking included). The PII
    key comes from BILLFLOW_PII_KEY_FILE or BILLFLOW_PII_KEY, as for the
    services; without one, contacts are "(unavailable)". --explain prints
    each statement's plan once (auto_explain, with row counts and buffers)
    instead of timing. Used by bench/query.sh.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf_log.h"
#include "bf_pii.h"
#include "bf_query.h"

typedef struct {
    const char *label;
    const char *verb;
    const char *key1, *value1, *key2, *value2;
} s_case_t;

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
s_notice (void *arg, const char *message)
{
    (void)arg;
    fputs (message, stdout);
}

int
main (int argc, char *argv[])
{
    int rounds = 200;
    const char *period = "2026-10";
    int explain = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "-n") && i + 1 < argc)
            rounds = atoi (argv[++i]);
        else if (!strcmp (argv[i], "-p") && i + 1 < argc)
            period = argv[++i];
        else if (!strcmp (argv[i], "--explain"))
            explain = 1;
        else {
            fprintf (stderr, "usage: query_bench [-n ROUNDS] [-p PERIOD] [--explain]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 100000) {
        fprintf (stderr, "query_bench: -n takes 1..100000\n");
        return 2;
    }
    bf_log_init ("query_bench", BF_LOG_WARN, false);

    const char *key_file = getenv ("BILLFLOW_PII_KEY_FILE");
    const char *key_hex = getenv ("BILLFLOW_PII_KEY");
    char err[512];
    bf_pii_t *pii = NULL;
    if ((key_file && *key_file) || (key_hex && *key_hex)) {
        pii = bf_pii_load (key_file ? key_file : "", key_hex ? key_hex : "", err, sizeof err);
        if (!pii) {
            fprintf (stderr, "query_bench: %s\n", err);
            return 1;
        }
    }
    PGconn *conn = PQconnectdb ("");
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "query_bench: %s", PQerrorMessage (conn));
        PQfinish (conn);
        bf_pii_destroy (&pii);
        return 1;
    }
    if (explain) {
        PQsetNoticeProcessor (conn, s_notice, NULL);
        PQclear (PQexec (conn, "LOAD 'auto_explain'"));
        PQclear (PQexec (conn, "SET auto_explain.log_min_duration = 0"));
        PQclear (PQexec (conn, "SET auto_explain.log_analyze = on"));
        PQclear (PQexec (conn, "SET auto_explain.log_buffers = on"));
        PQclear (PQexec (conn, "SET client_min_messages = log"));
        rounds = 1;
    }

    const s_case_t cases[] = {
        { "run.show period", "run.show", "period", period, NULL, NULL },
        { "deliveries.summary period", "deliveries.summary", "period", period, NULL, NULL },
        { "deliveries.summary (all)", "deliveries.summary", NULL, NULL, NULL, NULL },
        { "runs.list", "runs.list", NULL, NULL, NULL, NULL },
        { "deliveries.failures limit=50", "deliveries.failures", "limit", "50", NULL, NULL },
        { "deliveries.failures SMS limit=50", "deliveries.failures", "channel", "SMS", "limit",
          "50" },
        { "commands.list", "commands.list", NULL, NULL, NULL, NULL },
        { "commands.list state=DONE", "commands.list", "state", "DONE", NULL, NULL },
        { "audit.list", "audit.list", NULL, NULL, NULL, NULL },
        { "audit.list actor=ops-kim", "audit.list", "actor", "ops-kim", NULL, NULL },
        { "services.list", "services.list", NULL, NULL, NULL, NULL },
    };
    bf_query_ctx_t ctx = { pii, 1000 };
    double *times = calloc ((size_t)rounds, sizeof *times);
    int status = 0;
    if (!explain)
        printf ("%-34s %8s %8s %8s %8s %8s\n", "query", "min_ms", "median", "p99_ms", "max_ms",
                "bytes");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0] && times; c++) {
        Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
        Billflow__Argument args[2], *argp[2] = { &args[0], &args[1] };
        cmd.verb = (char *)cases[c].verb;
        const char *keys[] = { cases[c].key1, cases[c].key2 };
        const char *values[] = { cases[c].value1, cases[c].value2 };
        for (int a = 0; a < 2 && keys[a]; a++) {
            billflow__argument__init (&args[a]);
            args[a].key = (char *)keys[a];
            args[a].value = (char *)values[a];
            cmd.n_args++;
        }
        cmd.args = argp;
        size_t bytes = 0;
        for (int r = 0; r < rounds; r++) {
            char *json = NULL;
            double t0 = s_now_ms ();
            int rc = bf_query (conn, &ctx, &cmd, &json, err, sizeof err);
            times[r] = s_now_ms () - t0;
            if (rc != BF_QUERY_OK) {
                fprintf (stderr, "query_bench: %s: %s\n", cases[c].label, err);
                status = 1;
                break;
            }
            bytes = strlen (json);
            free (json);
        }
        if (status)
            break;
        if (explain)
            continue;
        qsort (times, (size_t)rounds, sizeof *times, s_cmp);
        int p99 = (int)((rounds - 1) * 0.99 + 0.5);
        printf ("%-34s %8.2f %8.2f %8.2f %8.2f %8zu\n", cases[c].label, times[0], times[rounds / 2],
                times[p99], times[rounds - 1], bytes);
    }
    free (times);
    PQfinish (conn);
    bf_pii_destroy (&pii);
    return status;
}
