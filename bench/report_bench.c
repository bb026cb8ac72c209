/*  report_bench — times run.report through a running control, as the
    console (wait=0) or billctl (wait=1) asks it (issue 15).

        report_bench ENDPOINT SERVER_KEY KEY_FILE [-n ROUNDS] [-p PERIOD]
                     [--wait 0|1] [--pause MS]

    Sends run.report period=PERIOD wait=W ROUNDS times (default 200, period
    2026-10, wait 0) on one client, PAUSE ms apart (default 0), and prints
    min / median / p99 / max in milliseconds around each request (the
    whole round trip: CURVE, control's version read, the kept report or
    the computation), and how many answers were "current", not current
    ("computing": the kept report while a newer one is made), or without
    figures (nothing kept yet). Control's own report cache decides what
    each request costs (services/control/bf_report_cache.h); the first
    request of a period control has not computed yet waits for the
    computation with wait=1. Used by bench/report.sh.  */

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_bench.h"
#include "bf_client.h"

static int
s_usage (void)
{
    fprintf (stderr, "usage: report_bench ENDPOINT SERVER_KEY KEY_FILE [-n ROUNDS] [-p PERIOD]"
                     " [--wait 0|1] [--pause MS]\n");
    return 2;
}

int
main (int argc, char *argv[])
{
    if (argc < 4)
        return s_usage ();
    int rounds = 200, pause_ms = 0;
    const char *period = "2026-10", *wait = "0";
    for (int i = 4; i < argc; i++) {
        if (!strcmp (argv[i], "-n") && i + 1 < argc)
            rounds = atoi (argv[++i]);
        else if (!strcmp (argv[i], "-p") && i + 1 < argc)
            period = argv[++i];
        else if (!strcmp (argv[i], "--wait") && i + 1 < argc)
            wait = argv[++i];
        else if (!strcmp (argv[i], "--pause") && i + 1 < argc)
            pause_ms = atoi (argv[++i]);
        else
            return s_usage ();
    }
    if (rounds < 1 || pause_ms < 0 || (strcmp (wait, "0") && strcmp (wait, "1")))
        return s_usage ();
    bf_client_args_t args = { .endpoints = argv[1],
                              .server_key = argv[2],
                              .key_file = argv[3],
                              .timeout_ms = 120000,
                              .retries = 0 };
    char err[256];
    bf_client_t *client = bf_client_new (&args, err, sizeof err);
    if (!client) {
        fprintf (stderr, "report_bench: %s\n", err);
        return 1;
    }
    double *times = calloc ((size_t)rounds, sizeof *times);
    int current = 0, stale = 0, empty = 0;
    size_t bytes = 0;
    for (int r = 0; r < rounds; r++) {
        char id[48];
        snprintf (id, sizeof id, "report-bench-%d-%d", (int)getpid (), r);
        const char *keys[] = { "period", "wait" }, *values[] = { period, wait };
        Billflow__CommandReply *reply = NULL;
        double t0 = bf_bench_now_ms ();
        int rc = bf_client_request (client, id, "control", "run.report", 2, keys, values, &reply,
                                    NULL, err, sizeof err);
        times[r] = bf_bench_now_ms () - t0;
        if (rc != BF_CLIENT_ANSWERED
            || reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK) {
            fprintf (stderr, "report_bench: round %d: %s\n", r,
                     rc != BF_CLIENT_ANSWERED ? err
                     : reply->error           ? reply->error
                                              : "failed");
            if (reply)
                billflow__command_reply__free_unpacked (reply, NULL);
            bf_client_destroy (&client);
            free (times);
            return 1;
        }
        json_t *doc = json_loads (reply->result, 0, NULL);
        bytes = strlen (reply->result);
        if (!json_object_get (doc, "bills"))
            empty++;
        else if (json_is_true (json_object_get (doc, "current")))
            current++;
        else
            stale++;
        json_decref (doc);
        billflow__command_reply__free_unpacked (reply, NULL);
        if (pause_ms)
            usleep ((useconds_t)pause_ms * 1000);
    }
    bf_bench_sort (times, rounds);
    printf ("run.report wait=%s: %d rounds, min %.2f median %.2f p99 %.2f max %.2f ms;"
            " current %d, not current %d, no figures yet %d; %zu bytes\n",
            wait, rounds, times[0], times[rounds / 2], bf_bench_p99 (times, rounds),
            times[rounds - 1], current, stale, empty, bytes);
    bf_client_destroy (&client);
    free (times);
    return 0;
}
