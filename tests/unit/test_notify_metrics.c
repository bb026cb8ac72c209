/*  bf_notify_metrics: every family at 0 after init, the outcome labels,
    attempts / latency / 429 pauses per channel, ingest figures and lag,
    fallbacks counted only when their flush commits, and the dispatcher
    slots (in flight added, breaker and pause as a maximum, a stopped
    dispatcher counting no more), the breakers' states (the worst
    dispatcher's) and changes (counted once however often published), and
    the outage's attempts, read back from the exposition.  */

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_metrics.h"
#include "bf_notify_metrics.h"

/*  The value of the sample `key` (name and labels as rendered) in a fresh
    scrape; NAN when absent.  */
static double
s_value (const char *key)
{
    char *text = bf_metrics_render (NULL);
    assert_non_null (text);
    char line[256];
    snprintf (line, sizeof line, "\n%s ", key);
    const char *at = strstr (text, line);
    double value = at ? strtod (at + strlen (line), NULL) : NAN;
    free (text);
    return value;
}

static double
s_attempts (const char *channel, const char *outcome)
{
    char key[200];
    snprintf (key, sizeof key,
              "billflow_notify_send_attempts_total{channel=\"%s\",provider=\"%s\",outcome=\"%s\"}",
              channel, channel, outcome);
    return s_value (key);
}

static void
test_registered_at_zero (void **state)
{
    (void)state;
    bf_notify_metrics_init ();
    bf_notify_metrics_init (); /* twice is fine */
    const char *zero[] = {
        "billflow_notify_events_ingested_total",
        "billflow_notify_ingest_lag_events",
        "billflow_notify_gaps_repaired_total",
        "billflow_notify_dispatch_paused",
        "billflow_notify_deliveries_created_total{channel=\"email\"}",
        "billflow_notify_deliveries_created_total{channel=\"push\"}",
        "billflow_notify_provider_latency_seconds_count{channel=\"sms\"}",
        "billflow_notify_requests_in_flight{provider=\"email\"}",
        "billflow_notify_breaker_open{provider=\"push\"}",
        "billflow_notify_rate_limit_pauses_total{channel=\"sms\"}",
        "billflow_notify_quiet_held_total{channel=\"email\"}",
        "billflow_notify_fallbacks_total{channel=\"sms\"}",
        "billflow_notify_breaker_state{provider=\"email\"}",
        "billflow_notify_breaker_changes_total{provider=\"email\",to=\"open\"}",
        "billflow_notify_breaker_changes_total{provider=\"sms\",to=\"half_open\"}",
        "billflow_notify_breaker_changes_total{provider=\"push\",to=\"closed\"}",
        "billflow_notify_outage_attempts_total{channel=\"email\"}",
    };
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (s_value (zero[i]) != 0)
            fail_msg ("%s is %g, not 0", zero[i], s_value (zero[i]));
    const char *channels[] = { "email", "sms", "push" };
    const char *outcomes[] = { "sent", "transient", "permanent", "timeout", "rate_limited" };
    for (int c = 0; c < 3; c++)
        for (int o = 0; o < 5; o++)
            assert_true (s_attempts (channels[c], outcomes[o]) == 0);
    /*  No subscriber, bill or delivery label anywhere.  */
    char *text = bf_metrics_render (NULL);
    assert_null (strstr (text, "subscriber="));
    assert_null (strstr (text, "bill="));
    assert_null (strstr (text, "delivery="));
    free (text);
}

static void
test_outcome_labels (void **state)
{
    (void)state;
    static const struct {
        bf_outcome_t outcome;
        const char *label;
    } map[] = {
        { BF_OUTCOME_DELIVERED, "sent" },      { BF_OUTCOME_DUPLICATE, "sent" },
        { BF_OUTCOME_TRANSIENT, "transient" }, { BF_OUTCOME_PERMANENT, "permanent" },
        { BF_OUTCOME_UNKNOWN, "timeout" },     { BF_OUTCOME_THROTTLED, "rate_limited" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        assert_string_equal (bf_notify_metrics_outcome_label (map[i].outcome), map[i].label);
    assert_null (bf_notify_metrics_outcome_label ((bf_outcome_t)99));
}

static void
test_attempts_latency_pauses (void **state)
{
    (void)state;
    double sent = s_attempts ("email", "sent"), timeout = s_attempts ("email", "timeout");
    double limited = s_attempts ("sms", "rate_limited"),
           pauses = s_value ("billflow_notify_rate_limit_pauses_total{channel=\"sms\"}");
    double count = s_value ("billflow_notify_provider_latency_seconds_count{channel=\"email\"}");
    double fast = s_value ("billflow_notify_provider_latency_seconds_bucket{channel=\"email\","
                           "le=\"0.25\"}");
    bf_send_result_t r
        = { .outcome = BF_OUTCOME_DELIVERED, .started_ms = 1000, .finished_ms = 1120 };
    bf_notify_metrics_attempt (0, &r);
    r.outcome = BF_OUTCOME_DUPLICATE;
    bf_notify_metrics_attempt (0, &r);
    r.outcome = BF_OUTCOME_UNKNOWN;
    r.finished_ms = 1000 + 600000; /* ten minutes */
    bf_notify_metrics_attempt (0, &r);
    r.outcome = BF_OUTCOME_THROTTLED;
    r.finished_ms = 1000;
    bf_notify_metrics_attempt (1, &r);
    /*  Ignored: no such channel, no such outcome, no result.  */
    bf_notify_metrics_attempt (3, &r);
    bf_notify_metrics_attempt (-1, &r);
    r.outcome = (bf_outcome_t)99;
    bf_notify_metrics_attempt (0, &r);
    bf_notify_metrics_attempt (0, NULL);

    assert_true (s_attempts ("email", "sent") == sent + 2);
    assert_true (s_attempts ("email", "timeout") == timeout + 1);
    assert_true (s_attempts ("sms", "rate_limited") == limited + 1);
    assert_true (s_value ("billflow_notify_rate_limit_pauses_total{channel=\"sms\"}")
                 == pauses + 1);
    assert_true (s_value ("billflow_notify_rate_limit_pauses_total{channel=\"email\"}") == 0);
    assert_true (s_value ("billflow_notify_provider_latency_seconds_count{channel=\"email\"}")
                 == count + 3);
    /*  0.12 s twice under 0.25 s; ten minutes not.  */
    assert_true (s_value ("billflow_notify_provider_latency_seconds_bucket{channel=\"email\","
                          "le=\"0.25\"}")
                 == fast + 2);
    assert_true (s_value ("billflow_notify_provider_latency_seconds_bucket{channel=\"email\","
                          "le=\"600\"}")
                 == count + 3);
}

static void
test_ingest_figures (void **state)
{
    (void)state;
    double events = s_value ("billflow_notify_events_ingested_total");
    double gaps = s_value ("billflow_notify_gaps_repaired_total");
    double email = s_value ("billflow_notify_deliveries_created_total{channel=\"email\"}");
    double push = s_value ("billflow_notify_deliveries_created_total{channel=\"push\"}");
    const uint64_t created[3] = { 10, 0, 7 };
    bf_notify_metrics_ingested (10, 3, created);
    bf_notify_metrics_ingested (5, 0, NULL);
    assert_true (s_value ("billflow_notify_events_ingested_total") == events + 15);
    assert_true (s_value ("billflow_notify_gaps_repaired_total") == gaps + 3);
    assert_true (s_value ("billflow_notify_deliveries_created_total{channel=\"email\"}")
                 == email + 10);
    assert_true (s_value ("billflow_notify_deliveries_created_total{channel=\"push\"}")
                 == push + 7);

    bf_notify_metrics_ingest_lag (120, 100);
    assert_true (s_value ("billflow_notify_ingest_lag_events") == 20);
    bf_notify_metrics_ingest_lag (100, 120); /* the cursor ahead: no lag */
    assert_true (s_value ("billflow_notify_ingest_lag_events") == 0);
}

static void
test_fallbacks_only_when_committed (void **state)
{
    (void)state;
    const char *fallbacks = "billflow_notify_fallbacks_total{channel=\"sms\"}";
    const char *sms = "billflow_notify_deliveries_created_total{channel=\"sms\"}";
    double before = s_value (fallbacks), created = s_value (sms);
    bf_notify_metrics_fallbacks_inserted (4);
    bf_notify_metrics_flush_done (false); /* rolled back */
    assert_true (s_value (fallbacks) == before);
    bf_notify_metrics_flush_done (true); /* nothing held any more */
    assert_true (s_value (fallbacks) == before);
    bf_notify_metrics_fallbacks_inserted (9);
    bf_notify_metrics_fallbacks_inserted (3); /* replaces */
    bf_notify_metrics_flush_done (true);
    assert_true (s_value (fallbacks) == before + 3);
    assert_true (s_value (sms) == created + 3);
    assert_true (s_value ("billflow_notify_fallbacks_total{channel=\"email\"}") == 0);

    double held = s_value ("billflow_notify_quiet_held_total{channel=\"push\"}");
    bf_notify_metrics_quiet_held (2);
    bf_notify_metrics_quiet_held (7); /* ignored */
    assert_true (s_value ("billflow_notify_quiet_held_total{channel=\"push\"}") == held + 1);
}

/*  A dispatcher thread: publishes its state, waits, stops when told.  */
typedef struct {
    int inflight[BF_PROVIDER_COUNT];
    bool open[BF_PROVIDER_COUNT];
    bool paused;
    pthread_barrier_t *published, *stop;
} s_dispatcher_t;

static void *
s_dispatcher (void *arg)
{
    s_dispatcher_t *d = arg;
    bf_notify_metrics_dispatcher_state (d->inflight, d->open, d->paused);
    pthread_barrier_wait (d->published);
    pthread_barrier_wait (d->stop);
    bf_notify_metrics_dispatcher_state (NULL, NULL, false);
    return NULL;
}

static void
s_expect (double email, double sms, double push, double sms_open, double paused)
{
    assert_true (s_value ("billflow_notify_requests_in_flight{provider=\"email\"}") == email);
    assert_true (s_value ("billflow_notify_requests_in_flight{provider=\"sms\"}") == sms);
    assert_true (s_value ("billflow_notify_requests_in_flight{provider=\"push\"}") == push);
    assert_true (s_value ("billflow_notify_breaker_open{provider=\"sms\"}") == sms_open);
    assert_true (s_value ("billflow_notify_breaker_open{provider=\"email\"}") == 0);
    assert_true (s_value ("billflow_notify_dispatch_paused") == paused);
}

static void
test_dispatcher_slots (void **state)
{
    (void)state;
    pthread_barrier_t published, stop_a, stop_b;
    pthread_barrier_init (&published, NULL, 3);
    pthread_barrier_init (&stop_a, NULL, 2);
    pthread_barrier_init (&stop_b, NULL, 2);
    s_dispatcher_t a = { { 2, 0, 1 }, { false, true, false }, false, &published, &stop_a };
    s_dispatcher_t b = { { 1, 3, 0 }, { false, false, false }, true, &published, &stop_b };
    pthread_t ta, tb;
    assert_int_equal (pthread_create (&ta, NULL, s_dispatcher, &a), 0);
    assert_int_equal (pthread_create (&tb, NULL, s_dispatcher, &b), 0);
    pthread_barrier_wait (&published);
    s_expect (3, 3, 1, 1, 1);
    /*  b stops: only a counts.  */
    pthread_barrier_wait (&stop_b);
    pthread_join (tb, NULL);
    s_expect (2, 0, 1, 1, 0);
    pthread_barrier_wait (&stop_a);
    pthread_join (ta, NULL);
    s_expect (0, 0, 0, 0, 0);

    /*  This thread publishes twice (one slot, the later state wins), then
        stops; a freed slot is taken again.  */
    int inflight[BF_PROVIDER_COUNT] = { 5, 0, 0 };
    bf_notify_metrics_dispatcher_state (inflight, NULL, false);
    inflight[0] = 1;
    bf_notify_metrics_dispatcher_state (inflight, NULL, true);
    s_expect (1, 0, 0, 0, 1);
    bf_notify_metrics_dispatcher_state (NULL, NULL, false);
    s_expect (0, 0, 0, 0, 0);
    bf_notify_metrics_dispatcher (NULL, false); /* stopping twice is harmless */
    s_expect (0, 0, 0, 0, 0);
    pthread_barrier_destroy (&published);
    pthread_barrier_destroy (&stop_a);
    pthread_barrier_destroy (&stop_b);
}

static double
s_changes (const char *provider, const char *to)
{
    char key[160];
    snprintf (key, sizeof key, "billflow_notify_breaker_changes_total{provider=\"%s\",to=\"%s\"}",
              provider, to);
    return s_value (key);
}

/*  A dispatcher thread that publishes one breaker state and counts.  */
typedef struct {
    bf_breaker_state_t state[BF_PROVIDER_COUNT];
    bf_breaker_counts_t counts[BF_PROVIDER_COUNT];
    pthread_barrier_t *published, *stop;
} s_breakers_t;

static void *
s_breakers (void *arg)
{
    s_breakers_t *d = arg;
    int inflight[BF_PROVIDER_COUNT] = { 0 };
    bf_notify_metrics_dispatcher_state (inflight, NULL, false);
    bf_notify_metrics_breakers (d->state, d->counts);
    pthread_barrier_wait (d->published);
    pthread_barrier_wait (d->stop);
    bf_notify_metrics_dispatcher_state (NULL, NULL, false);
    return NULL;
}

static void
test_breaker_states_and_changes (void **state)
{
    (void)state;
    double open0 = s_changes ("email", "open"), half0 = s_changes ("email", "half_open"),
           closed0 = s_changes ("email", "closed");
    bf_breaker_state_t states[BF_PROVIDER_COUNT]
        = { BF_BREAKER_OPEN, BF_BREAKER_CLOSED, BF_BREAKER_CLOSED };
    bf_breaker_counts_t counts[BF_PROVIDER_COUNT] = { { 1, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } };
    int inflight[BF_PROVIDER_COUNT] = { 0 };
    bf_notify_metrics_dispatcher_state (inflight, NULL, false);
    bf_notify_metrics_breakers (states, counts);
    assert_true (s_value ("billflow_notify_breaker_state{provider=\"email\"}") == 2);
    assert_true (s_value ("billflow_notify_breaker_state{provider=\"sms\"}") == 0);
    assert_true (s_changes ("email", "open") == open0 + 1);
    /*  Published again unchanged: nothing counted twice.  */
    bf_notify_metrics_breakers (states, counts);
    assert_true (s_changes ("email", "open") == open0 + 1);
    /*  Half-open, reopened, half-open, closed.  */
    counts[0] = (bf_breaker_counts_t){ 2, 2, 1 };
    states[0] = BF_BREAKER_CLOSED;
    bf_notify_metrics_breakers (states, counts);
    assert_true (s_changes ("email", "open") == open0 + 2);
    assert_true (s_changes ("email", "half_open") == half0 + 2);
    assert_true (s_changes ("email", "closed") == closed0 + 1);
    assert_true (s_value ("billflow_notify_breaker_state{provider=\"email\"}") == 0);
    /*  Another dispatcher half-open on email: the worst state is shown.  */
    pthread_barrier_t published, stop;
    pthread_barrier_init (&published, NULL, 2);
    pthread_barrier_init (&stop, NULL, 2);
    s_breakers_t other = { { BF_BREAKER_HALF_OPEN, BF_BREAKER_CLOSED, BF_BREAKER_CLOSED },
                           { { 1, 1, 0 }, { 0, 0, 0 }, { 0, 0, 0 } },
                           &published,
                           &stop };
    pthread_t t;
    assert_int_equal (pthread_create (&t, NULL, s_breakers, &other), 0);
    pthread_barrier_wait (&published);
    assert_true (s_value ("billflow_notify_breaker_state{provider=\"email\"}") == 1);
    assert_true (s_changes ("email", "open") == open0 + 3);
    pthread_barrier_wait (&stop);
    pthread_join (t, NULL);
    assert_true (s_value ("billflow_notify_breaker_state{provider=\"email\"}") == 0);
    /*  This dispatcher stops; a new sender's counts start from 0 again.  */
    bf_notify_metrics_dispatcher_state (NULL, NULL, false);
    bf_notify_metrics_dispatcher_state (inflight, NULL, false);
    counts[0] = (bf_breaker_counts_t){ 1, 0, 0 };
    bf_notify_metrics_breakers (states, counts);
    assert_true (s_changes ("email", "open") == open0 + 4);
    bf_notify_metrics_dispatcher_state (NULL, NULL, false);
    pthread_barrier_destroy (&published);
    pthread_barrier_destroy (&stop);

    double before = s_value ("billflow_notify_outage_attempts_total{channel=\"email\"}");
    const char *by_breaker
        = "billflow_notify_provider_outage_failures_total{provider=\"email\",rule=\"breaker\"}";
    const char *by_no_success = "billflow_notify_provider_outage_failures_total"
                                "{provider=\"email\",rule=\"no_success\"}";
    double breaker0 = s_value (by_breaker), no_success0 = s_value (by_no_success);
    bf_notify_metrics_outage_attempt (0, true);
    bf_notify_metrics_outage_attempt (0, false);
    bf_notify_metrics_outage_attempt (0, false);
    bf_notify_metrics_outage_attempt (7, true); /* ignored */
    assert_true (s_value ("billflow_notify_outage_attempts_total{channel=\"email\"}")
                 == before + 3);
    assert_true (s_value (by_breaker) == breaker0 + 1);
    assert_true (s_value (by_no_success) == no_success0 + 2);
    const char *expired = "billflow_notify_outage_expired_total{channel=\"push\"}";
    double expired0 = s_value (expired);
    bf_notify_metrics_outage_expired (2);
    bf_notify_metrics_outage_expired (-1); /* ignored */
    assert_true (s_value (expired) == expired0 + 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_registered_at_zero),
        cmocka_unit_test (test_outcome_labels),
        cmocka_unit_test (test_attempts_latency_pauses),
        cmocka_unit_test (test_ingest_figures),
        cmocka_unit_test (test_fallbacks_only_when_committed),
        cmocka_unit_test (test_dispatcher_slots),
        cmocka_unit_test (test_breaker_states_and_changes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
