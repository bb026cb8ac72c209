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

#include <stdbool.h>
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

typedef struct {
    int rounds;
    const char *period;
    bool explain;
} s_options_t;

/*  The command line into opts; false after a usage message.  */
static bool
s_parse (int argc, char *argv[], s_options_t *opts)
{
    *opts = (s_options_t){ .rounds = 200, .period = "2026-10", .explain = false };
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "-n") && i + 1 < argc)
            opts->rounds = atoi (argv[++i]);
        else if (!strcmp (argv[i], "-p") && i + 1 < argc)
            opts->period = argv[++i];
        else if (!strcmp (argv[i], "--explain"))
            opts->explain = true;
        else {
            fprintf (stderr, "usage: query_bench [-n ROUNDS] [-p PERIOD] [--explain]\n");
            return false;
        }
    }
    if (opts->rounds < 1 || opts->rounds > 100000) {
        fprintf (stderr, "query_bench: -n takes 1..100000\n");
        return false;
    }
    return true;
}

/*  The PII key of the environment, as the services read it, in *pii (NULL
    without one). false when it is set but cannot be loaded.  */
static bool
s_load_pii (bf_pii_t **pii)
{
    const char *key_file = getenv ("BILLFLOW_PII_KEY_FILE");
    const char *key_hex = getenv ("BILLFLOW_PII_KEY");
    *pii = NULL;
    if (!(key_file && *key_file) && !(key_hex && *key_hex))
        return true;
    char err[512];
    *pii = bf_pii_load (key_file ? key_file : "", key_hex ? key_hex : "", err, sizeof err);
    if (!*pii)
        fprintf (stderr, "query_bench: %s\n", err);
    return *pii != NULL;
}

/*  Makes the server log each statement's plan (auto_explain) to this
    client, which prints it.  */
static void
s_explain_on (PGconn *conn)
{
    PQsetNoticeProcessor (conn, s_notice, NULL);
    PQclear (PQexec (conn, "LOAD 'auto_explain'"));
    PQclear (PQexec (conn, "SET auto_explain.log_min_duration = 0"));
    PQclear (PQexec (conn, "SET auto_explain.log_analyze = on"));
    PQclear (PQexec (conn, "SET auto_explain.log_buffers = on"));
    PQclear (PQexec (conn, "SET client_min_messages = log"));
}

/*  Runs query c rounds times, each time into times[]; *bytes is the size
    of its JSON answer. false (reported) when a run fails.  */
static bool
s_run_case (PGconn *conn, bf_query_ctx_t *ctx, const s_case_t *c, int rounds, double *times,
            size_t *bytes)
{
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    Billflow__Argument args[2], *argp[2] = { &args[0], &args[1] };
    cmd.verb = (char *)c->verb;
    const char *keys[] = { c->key1, c->key2 };
    const char *values[] = { c->value1, c->value2 };
    for (int a = 0; a < 2 && keys[a]; a++) {
        billflow__argument__init (&args[a]);
        args[a].key = (char *)keys[a];
        args[a].value = (char *)values[a];
        cmd.n_args++;
    }
    cmd.args = argp;
    for (int r = 0; r < rounds; r++) {
        char *json = NULL;
        char err[512];
        double t0 = s_now_ms ();
        int rc = bf_query (conn, ctx, &cmd, &json, err, sizeof err);
        times[r] = s_now_ms () - t0;
        if (rc != BF_QUERY_OK) {
            fprintf (stderr, "query_bench: %s: %s\n", c->label, err);
            return false;
        }
        *bytes = strlen (json);
        free (json);
    }
    return true;
}

/*  A line of the table: min, median, p99 and max of times (sorted here).  */
static void
s_print_times (const char *label, double *times, int rounds, size_t bytes)
{
    qsort (times, (size_t)rounds, sizeof *times, s_cmp);
    int p99 = (int)((rounds - 1) * 0.99 + 0.5);
    printf ("%-34s %8.2f %8.2f %8.2f %8.2f %8zu\n", label, times[0], times[rounds / 2], times[p99],
            times[rounds - 1], bytes);
}

/*  Times (or explains) every query. Returns the exit status.  */
static int
s_bench (PGconn *conn, bf_pii_t *pii, const s_options_t *opts)
{
    const char *period = opts->period;
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
    int rounds = opts->explain ? 1 : opts->rounds;
    bf_query_ctx_t ctx = { pii, 1000 };
    double *times = calloc ((size_t)rounds, sizeof *times);
    if (!opts->explain)
        printf ("%-34s %8s %8s %8s %8s %8s\n", "query", "min_ms", "median", "p99_ms", "max_ms",
                "bytes");
    int status = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0] && times; c++) {
        size_t bytes = 0;
        if (!s_run_case (conn, &ctx, &cases[c], rounds, times, &bytes)) {
            status = 1;
            break;
        }
        if (!opts->explain)
            s_print_times (cases[c].label, times, rounds, bytes);
    }
    free (times);
    return status;
}

int
main (int argc, char *argv[])
{
    s_options_t opts;
    if (!s_parse (argc, argv, &opts))
        return 2;
    bf_log_init ("query_bench", BF_LOG_WARN, false);
    bf_pii_t *pii;
    if (!s_load_pii (&pii))
        return 1;
    PGconn *conn = PQconnectdb ("");
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "query_bench: %s", PQerrorMessage (conn));
        PQfinish (conn);
        bf_pii_destroy (&pii);
        return 1;
    }
    if (opts.explain)
        s_explain_on (conn);
    int status = s_bench (conn, pii, &opts);
    PQfinish (conn);
    bf_pii_destroy (&pii);
    return status;
}
