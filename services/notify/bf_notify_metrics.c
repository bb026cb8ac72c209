/*  bf_notify_metrics — registration and updates of notify's metrics.  */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "bf_log.h"
#include "bf_metrics.h"
#include "bf_notify_metrics.h"

#define S_CHANNELS BF_NOTIFY_METRICS_CHANNELS
#define S_OUTCOMES 5 /* sent, transient, permanent, timeout, rate_limited */
/*  As many as notify starts dispatchers (main.c MAX_DISPATCHERS).  */
#define S_SLOTS 64

static const char *const s_channel_labels[S_CHANNELS] = { "email", "sms", "push" };
static const char *const s_outcome_labels[S_OUTCOMES]
    = { "sent", "transient", "permanent", "timeout", "rate_limited" };
#define S_SMS 1

static bf_series_t *s_ingested, *s_gaps, *s_lag, *s_paused, *s_taken_over;
static bf_series_t *s_created[S_CHANNELS], *s_latency[S_CHANNELS], *s_pauses[S_CHANNELS],
    *s_held[S_CHANNELS], *s_fallbacks[S_CHANNELS];
static bf_series_t *s_attempts[S_CHANNELS][S_OUTCOMES];
static bf_series_t *s_inflight[BF_PROVIDER_COUNT], *s_breaker[BF_PROVIDER_COUNT];
static bf_series_t *s_breaker_state[BF_PROVIDER_COUNT], *s_breaker_changes[BF_PROVIDER_COUNT][3];
static bf_series_t *s_outage_attempts[S_CHANNELS], *s_outage_expired[S_CHANNELS];
static bf_series_t *s_provider_outage[BF_PROVIDER_COUNT][2]; /* rule: breaker, no_success */
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

/*  One dispatcher's published state.  */
typedef struct {
    atomic_bool used;
    atomic_int inflight[BF_PROVIDER_COUNT];
    atomic_bool open[BF_PROVIDER_COUNT];
    atomic_int state[BF_PROVIDER_COUNT]; /* 0 closed, 1 half-open, 2 open */
    atomic_bool paused;
} s_slot_t;

static s_slot_t s_slots[S_SLOTS];
static atomic_bool s_slots_full_logged;
static _Thread_local int s_my_slot = -1;
/*  The breaker changes this thread's dispatcher published last.  */
static _Thread_local bf_breaker_counts_t s_seen_changes[BF_PROVIDER_COUNT];
/*  Fallbacks inserted by this thread's flush, not yet committed.  */
static _Thread_local uint64_t s_pending_fallbacks;

/*  Scrape-time callbacks: atomics only (bf_metrics.h).  */
static double
s_sum_inflight (void *arg)
{
    int provider = (int)(intptr_t)arg;
    double sum = 0;
    for (int i = 0; i < S_SLOTS; i++)
        if (atomic_load_explicit (&s_slots[i].used, memory_order_relaxed))
            sum += atomic_load_explicit (&s_slots[i].inflight[provider], memory_order_relaxed);
    return sum;
}

static double
s_any_open (void *arg)
{
    int provider = (int)(intptr_t)arg;
    for (int i = 0; i < S_SLOTS; i++)
        if (atomic_load_explicit (&s_slots[i].used, memory_order_relaxed)
            && atomic_load_explicit (&s_slots[i].open[provider], memory_order_relaxed))
            return 1;
    return 0;
}

static double
s_max_state (void *arg)
{
    int provider = (int)(intptr_t)arg;
    int state = 0;
    for (int i = 0; i < S_SLOTS; i++)
        if (atomic_load_explicit (&s_slots[i].used, memory_order_relaxed)) {
            int mine = atomic_load_explicit (&s_slots[i].state[provider], memory_order_relaxed);
            state = mine > state ? mine : state;
        }
    return state;
}

static double
s_any_paused (void *arg)
{
    (void)arg;
    for (int i = 0; i < S_SLOTS; i++)
        if (atomic_load_explicit (&s_slots[i].used, memory_order_relaxed)
            && atomic_load_explicit (&s_slots[i].paused, memory_order_relaxed))
            return 1;
    return 0;
}

static void
s_init (void)
{
    /*  HTTP providers answer in milliseconds; an email may wait for its
        final reply up to the SMTP end-of-data timeout (10 min).  */
    static const double bounds[]
        = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600 };
    s_ingested = bf_metric_series (bf_metrics_counter (
        "billflow_notify_events_ingested_total", "Bill events ingested by this process.", NULL));
    s_lag = bf_metric_series (
        bf_metrics_gauge ("billflow_notify_ingest_lag_events",
                          "The publisher's last sequence known to ingest minus its cursor.", NULL));
    s_gaps = bf_metric_series (bf_metrics_counter (
        "billflow_notify_gaps_repaired_total",
        "Events ingested from replay rather than the live stream (gaps and catch-up).", NULL));
    bf_metric_t *created
        = bf_metrics_counter ("billflow_notify_deliveries_created_total",
                              "Deliveries created (ingest and SMS fallbacks).", "channel");
    bf_metric_t *attempts = bf_metrics_counter ("billflow_notify_send_attempts_total",
                                                "Send attempts whose result dispatch handled.",
                                                "channel,provider,outcome");
    bf_metric_t *latency
        = bf_metrics_histogram ("billflow_notify_provider_latency_seconds",
                                "Time from starting a send to its result, in seconds.", "channel",
                                bounds, sizeof bounds / sizeof bounds[0]);
    bf_metric_t *inflight = bf_metrics_gauge ("billflow_notify_requests_in_flight",
                                              "Sends started and not finished.", "provider");
    bf_metric_t *breaker = bf_metrics_gauge (
        "billflow_notify_breaker_open",
        "1 while a dispatcher's circuit breaker of the provider is open.", "provider");
    bf_metric_t *state = bf_metrics_gauge (
        "billflow_notify_breaker_state",
        "A provider's circuit breaker: 0 closed, 1 half-open, 2 open (the worst dispatcher's).",
        "provider");
    bf_metric_t *changes = bf_metrics_counter (
        "billflow_notify_breaker_changes_total",
        "Circuit breaker changes by the state entered (open counts reopenings after a failed"
        " probe).",
        "provider,to");
    bf_metric_t *outage = bf_metrics_counter (
        "billflow_notify_outage_attempts_total",
        "Failures of a provider outage (the breaker not closed, or no success of the provider"
        " since the attempt started): recorded, not counted against the retry budget.",
        "channel");
    bf_metric_t *provider_outage = bf_metrics_counter (
        "billflow_notify_provider_outage_failures_total",
        "Failures charged to the provider's outage, not to the notice, by the rule that told"
        " them: breaker (open or half-open) or no_success (none since the attempt started).",
        "provider,rule");
    bf_metric_t *expired = bf_metrics_counter (
        "billflow_notify_outage_expired_total",
        "Notices failed because their provider was still down notify.outage_window_ms after"
        " their first attempt.",
        "channel");
    bf_metric_t *pauses = bf_metrics_counter (
        "billflow_notify_rate_limit_pauses_total",
        "Provider answers 429 (the provider is paused for its Retry-After).", "channel");
    bf_metric_t *held = bf_metrics_counter ("billflow_notify_quiet_held_total",
                                            "Notices held for quiet hours.", "channel");
    s_taken_over = bf_metric_series (bf_metrics_counter (
        "billflow_notify_claims_taken_over_total",
        "Claims taken over from dead dispatchers: their database session ended"
        " notify.takeover_grace_ms ago, or they stopped renewing their lease (away from the"
        " database longer than notify.lease_ms).",
        NULL));
    bf_metric_t *fallbacks = bf_metrics_counter (
        "billflow_notify_fallbacks_total",
        "Fallback deliveries created, by their own channel (an email failed for good).", "channel");
    for (int c = 0; c < S_CHANNELS; c++) {
        const char *channel = s_channel_labels[c];
        const char *provider = bf_sender_provider_name ((bf_provider_t)c);
        s_created[c] = bf_metric_series (created, channel);
        for (int o = 0; o < S_OUTCOMES; o++)
            s_attempts[c][o] = bf_metric_series (attempts, channel, provider, s_outcome_labels[o]);
        s_latency[c] = bf_metric_series (latency, channel);
        s_pauses[c] = bf_metric_series (pauses, channel);
        s_held[c] = bf_metric_series (held, channel);
        s_fallbacks[c] = bf_metric_series (fallbacks, channel);
        s_outage_attempts[c] = bf_metric_series (outage, channel);
        s_outage_expired[c] = bf_metric_series (expired, channel);
    }
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        const char *provider = bf_sender_provider_name ((bf_provider_t)p);
        s_provider_outage[p][0] = bf_metric_series (provider_outage, provider, "breaker");
        s_provider_outage[p][1] = bf_metric_series (provider_outage, provider, "no_success");
    }
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        const char *provider = bf_sender_provider_name ((bf_provider_t)p);
        s_inflight[p] = bf_metric_series (inflight, provider);
        bf_gauge_set_fn (s_inflight[p], s_sum_inflight, (void *)(intptr_t)p);
        s_breaker[p] = bf_metric_series (breaker, provider);
        bf_gauge_set_fn (s_breaker[p], s_any_open, (void *)(intptr_t)p);
        s_breaker_state[p] = bf_metric_series (state, provider);
        bf_gauge_set_fn (s_breaker_state[p], s_max_state, (void *)(intptr_t)p);
        static const char *const to[3] = { "open", "half_open", "closed" };
        for (int t = 0; t < 3; t++)
            s_breaker_changes[p][t] = bf_metric_series (changes, provider, to[t]);
    }
    s_paused = bf_metric_series (
        bf_metrics_gauge ("billflow_notify_dispatch_paused", "1 while dispatch is paused.", NULL));
    bf_gauge_set_fn (s_paused, s_any_paused, NULL);
}

void
bf_notify_metrics_init (void)
{
    pthread_once (&s_once, s_init);
}

void
bf_notify_metrics_ingested (uint64_t events, uint64_t replayed,
                            const uint64_t created[BF_NOTIFY_METRICS_CHANNELS])
{
    pthread_once (&s_once, s_init);
    bf_counter_add (s_ingested, events);
    bf_counter_add (s_gaps, replayed);
    for (int c = 0; created && c < S_CHANNELS; c++)
        bf_counter_add (s_created[c], created[c]);
}

void
bf_notify_metrics_ingest_lag (uint64_t published, uint64_t cursor)
{
    pthread_once (&s_once, s_init);
    bf_gauge_set (s_lag, published > cursor ? (double)(published - cursor) : 0);
}

const char *
bf_notify_metrics_outcome_label (bf_outcome_t outcome)
{
    switch (outcome) {
        case BF_OUTCOME_DELIVERED:
        case BF_OUTCOME_DUPLICATE:
            return "sent";
        case BF_OUTCOME_TRANSIENT:
            return "transient";
        case BF_OUTCOME_PERMANENT:
            return "permanent";
        case BF_OUTCOME_UNKNOWN:
            return "timeout";
        case BF_OUTCOME_THROTTLED:
            return "rate_limited";
    }
    return NULL;
}

void
bf_notify_metrics_attempt (int channel, const bf_send_result_t *result)
{
    pthread_once (&s_once, s_init);
    const char *label = result ? bf_notify_metrics_outcome_label (result->outcome) : NULL;
    if (channel < 0 || channel >= S_CHANNELS || label == NULL)
        return;
    for (int o = 0; o < S_OUTCOMES; o++)
        if (strcmp (s_outcome_labels[o], label) == 0)
            bf_counter_inc (s_attempts[channel][o]);
    /*  Wall-clock times: a clock step could make it negative.  */
    int64_t ms = result->finished_ms - result->started_ms;
    bf_histogram_observe (s_latency[channel], ms > 0 ? (double)ms / 1000.0 : 0.0);
    if (result->outcome == BF_OUTCOME_THROTTLED)
        bf_counter_inc (s_pauses[channel]);
}

void
bf_notify_metrics_outage_attempt (int channel, bool breaker)
{
    pthread_once (&s_once, s_init);
    if (channel >= 0 && channel < S_CHANNELS) {
        bf_counter_inc (s_outage_attempts[channel]);
        /*  Channel c goes to provider c (SMS and LMS to the SMS provider).  */
        bf_counter_inc (s_provider_outage[channel][breaker ? 0 : 1]);
    }
}

void
bf_notify_metrics_outage_expired (int channel)
{
    pthread_once (&s_once, s_init);
    if (channel >= 0 && channel < S_CHANNELS)
        bf_counter_inc (s_outage_expired[channel]);
}

void
bf_notify_metrics_quiet_held (int channel)
{
    pthread_once (&s_once, s_init);
    if (channel >= 0 && channel < S_CHANNELS)
        bf_counter_inc (s_held[channel]);
}

void
bf_notify_metrics_taken_over (int n)
{
    pthread_once (&s_once, s_init);
    if (n > 0)
        bf_counter_add (s_taken_over, (uint64_t)n);
}

void
bf_notify_metrics_fallbacks_inserted (uint64_t n)
{
    s_pending_fallbacks = n;
}

void
bf_notify_metrics_flush_done (bool committed)
{
    pthread_once (&s_once, s_init);
    if (committed) {
        bf_counter_add (s_fallbacks[S_SMS], s_pending_fallbacks);
        bf_counter_add (s_created[S_SMS], s_pending_fallbacks);
    }
    s_pending_fallbacks = 0;
}

/*  The calling thread's slot, taken on first use; NULL when all are taken
    (logged once).  */
static s_slot_t *
s_slot (void)
{
    if (s_my_slot >= 0)
        return &s_slots[s_my_slot];
    for (int i = 0; i < S_SLOTS; i++) {
        bool expected = false;
        if (atomic_compare_exchange_strong (&s_slots[i].used, &expected, true)) {
            s_my_slot = i;
            return &s_slots[i];
        }
    }
    if (!atomic_exchange (&s_slots_full_logged, true))
        bf_warn ("notify metrics: more than %d dispatchers; the others' in-flight requests"
                 " and breakers are not shown",
                 S_SLOTS);
    return NULL;
}

void
bf_notify_metrics_dispatcher_state (const int inflight[BF_PROVIDER_COUNT],
                                    const bool breaker_open[BF_PROVIDER_COUNT], bool paused)
{
    pthread_once (&s_once, s_init);
    if (inflight == NULL) {
        if (s_my_slot >= 0) {
            s_slot_t *slot = &s_slots[s_my_slot];
            for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
                atomic_store (&slot->inflight[p], 0);
                atomic_store (&slot->open[p], false);
                atomic_store (&slot->state[p], 0);
            }
            memset (s_seen_changes, 0, sizeof s_seen_changes);
            atomic_store (&slot->paused, false);
            atomic_store (&slot->used, false);
            s_my_slot = -1;
        }
        return;
    }
    s_slot_t *slot = s_slot ();
    if (slot == NULL)
        return;
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        atomic_store_explicit (&slot->inflight[p], inflight[p], memory_order_relaxed);
        atomic_store_explicit (&slot->open[p], breaker_open && breaker_open[p],
                               memory_order_relaxed);
    }
    atomic_store_explicit (&slot->paused, paused, memory_order_relaxed);
}

//  n - *seen, and *seen = n; a count that went back (a new sender) counts from 0.
static uint64_t
s_new_changes (uint64_t n, uint64_t *seen)
{
    uint64_t added = n >= *seen ? n - *seen : n;
    *seen = n;
    return added;
}

void
bf_notify_metrics_breakers (const bf_breaker_state_t state[BF_PROVIDER_COUNT],
                            const bf_breaker_counts_t counts[BF_PROVIDER_COUNT])
{
    pthread_once (&s_once, s_init);
    s_slot_t *slot = s_slot ();
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        if (slot)
            atomic_store_explicit (&slot->state[p],
                                   state[p] == BF_BREAKER_OPEN        ? 2
                                   : state[p] == BF_BREAKER_HALF_OPEN ? 1
                                                                      : 0,
                                   memory_order_relaxed);
        bf_breaker_counts_t *seen = &s_seen_changes[p];
        bf_counter_add (s_breaker_changes[p][0], s_new_changes (counts[p].opened, &seen->opened));
        bf_counter_add (s_breaker_changes[p][1],
                        s_new_changes (counts[p].half_opened, &seen->half_opened));
        bf_counter_add (s_breaker_changes[p][2], s_new_changes (counts[p].closed, &seen->closed));
    }
}

void
bf_notify_metrics_dispatcher (const bf_sender_t *sender, bool paused)
{
    if (sender == NULL) {
        bf_notify_metrics_dispatcher_state (NULL, NULL, false);
        return;
    }
    int inflight[BF_PROVIDER_COUNT];
    bool open[BF_PROVIDER_COUNT];
    bf_breaker_state_t state[BF_PROVIDER_COUNT];
    bf_breaker_counts_t counts[BF_PROVIDER_COUNT];
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        inflight[p] = bf_sender_inflight (sender, (bf_provider_t)p);
        state[p] = bf_sender_breaker (sender, (bf_provider_t)p, &counts[p]);
        /*  Half-open (one probe allowed, or out) is not open: sends go.  */
        open[p] = state[p] == BF_BREAKER_OPEN;
    }
    bf_notify_metrics_dispatcher_state (inflight, open, paused);
    bf_notify_metrics_breakers (state, counts);
}
