/*  bf_notify_metrics — notify's metrics (docs/observability.md), one call
    per event so that the ingest and dispatch code each need one line.

    Channels are numbered as dispatch numbers them: 0 EMAIL, 1 SMS,
    2 PUSH; their label values are "email", "sms", "push". Each channel
    has one provider (bf_sender_provider_name of it), so attempts are
    labelled by both without a fourth dimension.

    Attempt outcomes (bf_outcome_t, the delivery_attempt.outcome column)
    map to the label `outcome` as follows:
        DELIVERED, DUPLICATE  -> sent
        TRANSIENT             -> transient
        PERMANENT             -> permanent
        THROTTLED             -> rate_limited
        UNKNOWN               -> timeout (an email whose final reply timed
                                 out or was lost: possibly delivered)

    Thread-safe: the ingest actor and every dispatcher actor call these
    from their own threads (bf_metrics atomics). Figures that only count
    once a transaction commits (fallbacks) are held per thread until the
    caller says how its flush ended. In-flight requests, breakers and the
    pause switch are published by each dispatcher from its own thread into
    a slot of its own; scrapes add (in flight) or take the maximum (breaker
    open, paused) over the slots, reading atomics only — never the
    database, never a sender.  */

#ifndef BF_NOTIFY_METRICS_H_INCLUDED
#define BF_NOTIFY_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "bf_sender.h"

#define BF_NOTIFY_METRICS_CHANNELS 3 /* EMAIL, SMS, PUSH */

/*  Registers every notify metric now, so that a scrape shows them at 0
    before the first event (safe to call again).  */
void bf_notify_metrics_init (void);

/*  Ingest committed a run: events ingested by this process, how many of
    them came from replay rather than the live stream, and the deliveries
    the run created per channel (rows the database inserted, not offered).  */
void bf_notify_metrics_ingested (uint64_t events, uint64_t replayed,
                                 const uint64_t created[BF_NOTIFY_METRICS_CHANNELS]);

/*  Ingest's view of the stream: the publisher's last seq it knows of and
    its cursor; the lag gauge is their difference (0 when not ahead).  */
void bf_notify_metrics_ingest_lag (uint64_t published, uint64_t cursor);

/*  Dispatch handled a finished send of a delivery of channel: counts the
    attempt by outcome, observes the provider latency (finished - started),
    and counts a 429 pause (THROTTLED). Out-of-range values are ignored.  */
void bf_notify_metrics_attempt (int channel, const bf_send_result_t *result);

/*  Dispatch held a delivery of channel for quiet hours.  */
void bf_notify_metrics_quiet_held (int channel);

/*  Dispatch took over n claims of dispatchers that stopped renewing their
    lease.  */
void bf_notify_metrics_taken_over (int n);

/*  Dispatch's flush inserted n SMS fallbacks (the INSERT's command tag),
    not yet committed: held on this thread until bf_notify_metrics_flush_done
    (a second call replaces the figure).  */
void bf_notify_metrics_fallbacks_inserted (uint64_t n);

/*  Dispatch's flush ended: committed counts what this thread holds
    (fallbacks, and their deliveries created); otherwise it is dropped.  */
void bf_notify_metrics_flush_done (bool committed);

/*  A dispatcher publishes its sender's in-flight requests and breaker
    states and the pause switch it last read (call it every loop turn, on
    the dispatcher's thread). sender NULL: the dispatcher stopped; its slot
    is freed and counts no more.  */
void bf_notify_metrics_dispatcher (const bf_sender_t *sender, bool paused);

/*  The same from plain values (what bf_notify_metrics_dispatcher reads of
    the sender); inflight NULL frees the calling thread's slot. For tests.  */
void bf_notify_metrics_dispatcher_state (const int inflight[BF_PROVIDER_COUNT],
                                         const bool breaker_open[BF_PROVIDER_COUNT], bool paused);

/*  A dispatcher publishes its breakers (bf_notify_metrics_dispatcher does
    it from the sender): each provider's state, shown as the worst over the
    dispatchers in billflow_notify_breaker_state (0 closed, 1 half-open,
    2 open), and its changes since the sender was made; the changes counter
    grows by what is new since this thread's last call (a count lower than
    the last, from a new sender, counts from 0). For tests.  */
void bf_notify_metrics_breakers (const bf_breaker_state_t state[BF_PROVIDER_COUNT],
                                 const bf_breaker_counts_t counts[BF_PROVIDER_COUNT]);

/*  Dispatch recorded a failure of a delivery of channel that was its
    provider's outage (bf_outage.h), not counted against the notice's retry
    budget: told by the breaker (open or half-open) when breaker, else by
    the provider having had no success since the attempt started.  */
void bf_notify_metrics_outage_attempt (int channel, bool breaker);

/*  Dispatch failed a delivery of channel because its provider was still
    down notify.outage_window_ms after its first attempt.  */
void bf_notify_metrics_outage_expired (int channel);

/*  The `outcome` label value of outcome (see above); NULL when unknown.  */
const char *bf_notify_metrics_outcome_label (bf_outcome_t outcome);

#endif
