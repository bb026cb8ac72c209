/*  bf_console_metrics — the console's metrics (docs/observability.md), on
    its observability endpoint (console.http): one call per event.

    billflow_console_polls_total counts the overview poller's rounds (one
    a second however many browsers watch: a benchmark compares it with
    the open event streams, billflow_console_streams); requests by route
    and status class; logins by outcome; the worker queues' refusals.
    Labels are fixed words, never a name or an address. Any thread.  */

#ifndef BF_CONSOLE_METRICS_H_INCLUDED
#define BF_CONSOLE_METRICS_H_INCLUDED

/*  Registers every family now, so that a scrape shows them at 0 (safe to
    call again).  */
void bf_console_metrics_init (void);

/*  The poller finished a round.  */
void bf_console_metrics_poll (void);

/*  Event streams open now: +1 or -1.  */
void bf_console_metrics_streams (int delta);

/*  A request was answered: route is bf_console's route word ("query",
    "static", ...), status the HTTP status.  */
void bf_console_metrics_request (const char *route, unsigned int status);

/*  A login ended: "ok", "wrong", "limited", "bad_request".  */
void bf_console_metrics_login (const char *outcome);

/*  A job was refused because its worker queue was full.  */
void bf_console_metrics_queue_full (void);

/*  A query or command refused 429: its session was over
    console.session_rate (billflow_console_session_limited_total).  */
void bf_console_metrics_session_limited (void);

#endif
