/*  query_bench — times control's queries (services/control/bf_query.h) on
    the database the PG* environment points at.

        query_bench [-n ROUNDS] [-p PERIOD] [-o TEXT] [--explain | --sample]

    Runs each query ROUNDS times (default 200) on one connection, as control
    does, and prints min / median / p99 / max in milliseconds, measured
    around bf_query() (SQL, JSON, decryption and masking included). The PII
    key comes from BILLFLOW_PII_KEY_FILE or BILLFLOW_PII_KEY, as for the
    services; without one, contacts are "(unavailable)". --explain prints
    each statement's plan once (auto_explain, with row counts and buffers)
    instead of timing; -o runs only the queries whose verb contains TEXT.

    The subscriber and bill queries (subscriber.find, subscriber.timeline,
    bill.show) ask for a different subscriber each round: ROUNDS of them,
    spread over the id range, each with a bill of PERIOD; their phones and
    emails are opened with the PII key beforehand (not timed), so the
    lookups by contact need it. --sample prints that sample instead, one
    "ID<TAB>BILL_ID<TAB>PHONE<TAB>EMAIL" line per subscriber (an empty field
    when it has no email), for a load that asks what a person would ask.
    Used by bench/query.sh and bench/console.sh.  */

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_bench.h"
#include "bf_log.h"
#include "bf_pii.h"
#include "bf_query.h"

typedef struct {
    const char *label;
    const char *verb;
    const char *key1, *value1, *key2, *value2;
    char **values1; /* when not NULL: value1 of round r is values1[r % nvalues] */
    const char *key3, *value3, *key4, *value4, *key5, *value5; /* more filters */
} s_case_t;

/*  The sampled subscribers: ids, bill ids of the period, phones as
    people type them (010-1234-5678), emails (of those that have one).  */
typedef struct {
    int n, nemails;
    char **ids, **bill_ids, **phones, **emails;
} s_sample_t;

static void
s_notice (void *arg, const char *message)
{
    (void)arg;
    fputs (message, stdout);
}

typedef struct {
    int rounds;
    const char *period;
    const char *only;
    bool explain;
    bool sample;
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
        else if (!strcmp (argv[i], "-o") && i + 1 < argc)
            opts->only = argv[++i];
        else if (!strcmp (argv[i], "--explain"))
            opts->explain = true;
        else if (!strcmp (argv[i], "--sample"))
            opts->sample = true;
        else {
            fprintf (stderr, "usage: query_bench [-n ROUNDS] [-p PERIOD] [-o TEXT] "
                             "[--explain | --sample]\n");
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
    Billflow__Argument args[5], *argp[5] = { &args[0], &args[1], &args[2], &args[3], &args[4] };
    cmd.verb = (char *)c->verb;
    const char *keys[] = { c->key1, c->key2, c->key3, c->key4, c->key5 };
    const char *values[] = { c->value1, c->value2, c->value3, c->value4, c->value5 };
    for (int a = 0; a < 5 && keys[a]; a++) {
        billflow__argument__init (&args[a]);
        args[a].key = (char *)keys[a];
        args[a].value = (char *)values[a];
        cmd.n_args++;
    }
    cmd.args = argp;
    size_t nvalues = 0;
    while (c->values1 && c->values1[nvalues])
        nvalues++;
    if (c->values1 && !nvalues) {
        fprintf (stderr, "query_bench: %s: no sample to ask for\n", c->label);
        return false;
    }
    for (int r = 0; r < rounds; r++) {
        if (nvalues)
            args[0].value = c->values1[(size_t)r % nvalues];
        char *json = NULL;
        char err[512];
        double t0 = bf_bench_now_ms ();
        int rc = bf_query (conn, ctx, &cmd, &json, err, sizeof err);
        times[r] = bf_bench_now_ms () - t0;
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
    bf_bench_sort (times, rounds);
    printf ("%-34s %8.2f %8.2f %8.2f %8.2f %8zu\n", label, times[0], times[rounds / 2],
            bf_bench_p99 (times, rounds), times[rounds - 1], bytes);
}

static char *
s_opened (bf_pii_t *pii, const PGresult *res, int row, int col, const char *field)
{
    if (!pii || PQgetisnull (res, row, col))
        return NULL;
    size_t len = 0;
    unsigned char *sealed
        = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, row, col), &len);
    char plain[512];
    long n = sealed ? bf_pii_open (pii, field, strtoull (PQgetvalue (res, row, 0), NULL, 10),
                                   sealed, len, plain, sizeof plain)
                    : -1;
    PQfreemem (sealed);
    char *copy = NULL;
    if (n > 0 && !strcmp (field, "phone") && n == 11) {
        copy = malloc (16);
        if (copy)
            snprintf (copy, 16, "%.3s-%.4s-%.4s", plain, plain + 3, plain + 7);
    } else if (n > 0)
        copy = strdup (plain);
    sodium_memzero (plain, sizeof plain);
    return copy;
}

/*  Samples n subscribers of the period's bills, spread over the ids.  */
static bool
s_sample (PGconn *conn, bf_pii_t *pii, const char *period, int n, s_sample_t *sample)
{
    memset (sample, 0, sizeof *sample);
    char count[16];
    snprintf (count, sizeof count, "%d", n);
    const char *params[] = { period, count };
    PGresult *res = PQexecParams (
        conn,
        "WITH k AS (SELECT greatest (1, (SELECT max (id) FROM subscriber) / $2::int) AS step)"
        " SELECT s.id, b.bill_id, s.phone_enc, s.email_enc FROM subscriber s"
        " JOIN bill b ON b.period = $1 AND b.subscriber_id = s.id"
        " WHERE s.id % (SELECT step FROM k) = 0 ORDER BY s.id LIMIT $2::int",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) == 0) {
        fprintf (stderr, "query_bench: no subscribers with bills of %s to sample: %s", period,
                 PQresultErrorMessage (res));
        PQclear (res);
        return false;
    }
    int rows = PQntuples (res);
    sample->ids = calloc ((size_t)rows + 1, sizeof (char *));
    sample->bill_ids = calloc ((size_t)rows + 1, sizeof (char *));
    sample->phones = calloc ((size_t)rows + 1, sizeof (char *));
    sample->emails = calloc ((size_t)rows + 1, sizeof (char *));
    if (!sample->ids || !sample->bill_ids || !sample->phones || !sample->emails) {
        PQclear (res);
        return false;
    }
    int nphones = 0;
    for (int r = 0; r < rows; r++) {
        sample->ids[r] = strdup (PQgetvalue (res, r, 0));
        sample->bill_ids[r] = strdup (PQgetvalue (res, r, 1));
        char *phone = s_opened (pii, res, r, 2, "phone");
        if (phone)
            sample->phones[nphones++] = phone;
        char *email = s_opened (pii, res, r, 3, "email");
        if (email)
            sample->emails[sample->nemails++] = email;
    }
    sample->n = rows;
    PQclear (res);
    return true;
}

static void
s_sample_free (s_sample_t *sample)
{
    char **lists[] = { sample->ids, sample->bill_ids, sample->phones, sample->emails };
    for (size_t l = 0; l < 4; l++) {
        for (size_t i = 0; lists[l] && lists[l][i]; i++)
            free (lists[l][i]);
        free (lists[l]);
    }
    memset (sample, 0, sizeof *sample);
}

/*  Times (or explains) every query. Returns the exit status.  */
static int
s_bench (PGconn *conn, bf_pii_t *pii, const s_options_t *opts)
{
    const char *period = opts->period;
    s_sample_t sample;
    /*  Without a sample only the cases that need one fail (s_run_case), so
        bench/audit.sh times the lists on a database of commands alone.  */
    if (!s_sample (conn, pii, period, opts->explain ? 1 : opts->rounds, &sample)) {
        s_sample_free (&sample);
        if (opts->sample)
            return 1;
    }
    if (opts->sample) {
        bool phones = true, emails = true;
        for (int i = 0; i < sample.n; i++) {
            phones = phones && sample.phones[i];
            emails = emails && sample.emails[i];
            printf ("%s\t%s\t%s\t%s\n", sample.ids[i], sample.bill_ids[i],
                    phones ? sample.phones[i] : "", emails ? sample.emails[i] : "");
        }
        s_sample_free (&sample);
        return 0;
    }
    /*  run.rates asks for the period's newest run (bench/query.sh gives it
        an hour, then a week, of samples).  */
    char run_id[24] = "0";
    const char *pp[] = { period };
    PGresult *res = PQexecParams (conn,
                                  "SELECT coalesce (max (run_id), 0)::text FROM settlement_run"
                                  " WHERE period = $1",
                                  1, NULL, pp, NULL, NULL, 0);
    if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1)
        snprintf (run_id, sizeof run_id, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    if (opts->explain)
        s_explain_on (conn);
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
        /*  The filters of issue 15's page 7 (bench/audit.sh's data: a rare
            actor, verb and state; a day; an old window; all combined; the
            page after a row in the middle).  */
        { "commands.list actor (1 %)", "commands.list", "actor", "console/rare", "limit", "100" },
        { "commands.list verb (2 %)", "commands.list", "verb", "run.resume", "limit", "100" },
        { "commands.list state (0.1 %)", "commands.list", "state", "REJECTED", "limit", "100" },
        { "commands.list a day", "commands.list", "since", "2026-06-01", "until", "2026-06-02",
          NULL, "limit", "100" },
        { "commands.list until January", "commands.list", "until", "2026-02-01", "limit", "100" },
        { "commands.list all five", "commands.list", "actor", "console/kim", "verb",
          "dispatch.pause", NULL, "state", "DONE", "since", "2026-03-01T00:00:00+09:00", "until",
          "2026-09-01" },
        { "commands.list all five, none", "commands.list", "actor", "console/kim", "verb",
          "run.resume", NULL, "state", "REJECTED", "since", "2026-03-01T00:00:00+09:00", "until",
          "2026-09-01" },
        { "commands.list rare x rare", "commands.list", "actor", "console/rare", "state",
          "REJECTED" },
        { "commands.list next page", "commands.list", "actor", "ops-kim", "before_id", "cmd-100000",
          NULL, "limit", "100" },
        { "audit.list actor (1 %)", "audit.list", "actor", "console/rare", "limit", "100" },
        { "audit.list verb (2 %)", "audit.list", "verb", "run.resume", "limit", "100" },
        { "audit.list state (0.1 %)", "audit.list", "state", "refused", "limit", "100" },
        { "audit.list a day", "audit.list", "since", "2026-06-01", "until", "2026-06-02", NULL,
          "limit", "100" },
        { "audit.list until January", "audit.list", "until", "2026-02-01", "limit", "100" },
        { "audit.list all five", "audit.list", "actor", "console/kim", "verb", "dispatch.pause",
          NULL, "state", "done", "since", "2026-03-01T00:00:00+09:00", "until", "2026-09-01" },
        { "audit.list all five, none", "audit.list", "actor", "console/kim", "verb", "run.start",
          NULL, "state", "done", "since", "2026-03-01T00:00:00+09:00", "until", "2026-09-01" },
        { "audit.list rare x rare", "audit.list", "actor", "console/rare", "state", "refused" },
        { "audit.list next page", "audit.list", "actor", "ops-kim", "before_id", "500000", NULL,
          "limit", "100" },
        { "services.list", "services.list", NULL, NULL, NULL, NULL },
        { "run.rates run_id", "run.rates", "run_id", run_id, NULL, NULL },
        { "subscriber.find subscriber_id", "subscriber.find", "subscriber_id", NULL, NULL, NULL,
          sample.ids },
        { "subscriber.find phone", "subscriber.find", "phone", NULL, NULL, NULL, sample.phones },
        { "subscriber.find email", "subscriber.find", "email", NULL, NULL, NULL, sample.emails },
        { "subscriber.timeline", "subscriber.timeline", "subscriber_id", NULL, NULL, NULL,
          sample.ids },
        { "bill.show bill_id", "bill.show", "bill_id", NULL, NULL, NULL, sample.bill_ids },
        { "bill.show period subscriber_id", "bill.show", "subscriber_id", NULL, "period", period,
          sample.ids },
    };
    int rounds = opts->explain ? 1 : opts->rounds;
    bf_query_ctx_t ctx = { pii, 1000 };
    double *times = calloc ((size_t)rounds, sizeof *times);
    if (!opts->explain)
        printf ("%-34s %8s %8s %8s %8s %8s\n", "query", "min_ms", "median", "p99_ms", "max_ms",
                "bytes");
    int status = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0] && times; c++) {
        if (opts->only && !strstr (cases[c].verb, opts->only))
            continue;
        size_t bytes = 0;
        if (!s_run_case (conn, &ctx, &cases[c], rounds, times, &bytes)) {
            status = 1;
            break;
        }
        if (!opts->explain)
            s_print_times (cases[c].label, times, rounds, bytes);
    }
    free (times);
    s_sample_free (&sample);
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
    int status = s_bench (conn, pii, &opts);
    PQfinish (conn);
    bf_pii_destroy (&pii);
    return status;
}
