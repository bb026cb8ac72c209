/*  bf_settle_metrics — registration and updates of settle's metrics.  */

#include <pthread.h>
#include <time.h>

#include "bf_metrics.h"
#include "bf_settle_metrics.h"

static bf_series_t *s_claimed, *s_committed, *s_lost, *s_subscribers, *s_bills, *s_amount,
    *s_errors, *s_duration, *s_runs, *s_relay_seq, *s_unpublished, *s_replay_requests,
    *s_replay_events;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static _Thread_local double s_claimed_at; /* CLOCK_MONOTONIC seconds, 0 = none */

static void
s_init (void)
{
    /*  A chunk is 1,000 subscribers by default: from 50 ms to minutes.  */
    static const double bounds[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120 };
    s_claimed = bf_metric_series (bf_metrics_counter (
        "billflow_settle_chunks_claimed_total", "Chunks claimed by this process's workers.", NULL));
    s_committed = bf_metric_series (bf_metrics_counter (
        "billflow_settle_chunks_committed_total", "Chunks settled and committed.", NULL));
    s_lost = bf_metric_series (bf_metrics_counter (
        "billflow_settle_chunks_lost_total",
        "Chunks taken over because an earlier holder's lease expired.", NULL));
    s_subscribers = bf_metric_series (bf_metrics_counter (
        "billflow_settle_subscribers_rated_total",
        "Subscribers rated in committed chunks (with or without a rating error).", NULL));
    s_bills = bf_metric_series (bf_metrics_counter ("billflow_bills_written_total",
                                                    "Bills written in committed chunks.", NULL));
    s_amount = bf_metric_series (bf_metrics_counter ("billflow_billed_won_total",
                                                     "Amount billed in committed chunks, in won.",
                                                     NULL));
    s_errors = bf_metric_series (bf_metrics_counter (
        "billflow_settle_rating_errors_total",
        "Subscribers that failed rating in committed chunks.", NULL));
    s_duration = bf_metric_series (bf_metrics_histogram (
        "billflow_settle_chunk_duration_seconds",
        "Time from claiming a chunk to committing it, in seconds.", NULL, bounds,
        sizeof bounds / sizeof bounds[0]));
    s_runs = bf_metric_series (bf_metrics_counter (
        "billflow_settle_runs_started_total",
        "Settlement runs this process created (command or --once).", NULL));
    s_relay_seq = bf_metric_series (bf_metrics_gauge (
        "billflow_relay_last_sequence",
        "Highest event sequence the relay knows committed (published by the leader).", NULL));
    s_unpublished = bf_metric_series (bf_metrics_gauge (
        "billflow_outbox_unpublished",
        "Outbox rows committed and not yet published, as the leading relay last saw them"
        " (0 on a standby).",
        NULL));
    s_replay_requests = bf_metric_series (bf_metrics_counter (
        "billflow_replay_requests_total", "Replay requests received (whatever the answer).",
        NULL));
    s_replay_events = bf_metric_series (bf_metrics_counter (
        "billflow_replay_events_total", "Events sent in replay answers.", NULL));
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
bf_settle_metrics_init (void)
{
    pthread_once (&s_once, s_init);
}

void
bf_settle_metrics_claimed (int attempts)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (s_claimed);
    if (attempts > 1)
        bf_counter_inc (s_lost);
    s_claimed_at = s_now ();
}

void
bf_settle_metrics_committed (int64_t subscribers, size_t bills, int64_t amount_won,
                             size_t rating_errors)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (s_committed);
    bf_counter_add (s_subscribers, subscribers > 0 ? (uint64_t)subscribers : 0);
    bf_counter_add (s_bills, bills);
    /*  A counter cannot go down: a negative chunk total (credits) is not
        counted; the bill table stays the source of truth.  */
    bf_counter_add (s_amount, amount_won > 0 ? (uint64_t)amount_won : 0);
    bf_counter_add (s_errors, rating_errors);
    if (s_claimed_at > 0)
        bf_histogram_observe (s_duration, s_now () - s_claimed_at);
    s_claimed_at = 0;
}

void
bf_settle_metrics_run_started (void)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (s_runs);
}

void
bf_settle_metrics_relay (uint64_t last_seq, int64_t unpublished)
{
    pthread_once (&s_once, s_init);
    bf_gauge_set (s_relay_seq, (double)last_seq);
    bf_gauge_set (s_unpublished, unpublished > 0 ? (double)unpublished : 0);
}

void
bf_settle_metrics_replay_request (void)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (s_replay_requests);
}

void
bf_settle_metrics_replay_events (size_t n)
{
    pthread_once (&s_once, s_init);
    bf_counter_add (s_replay_events, n);
}
