/*  bf_console_metrics — the console's metrics (bf_console_metrics.h).  */

#include <pthread.h>
#include <string.h>

#include "bf_console_metrics.h"
#include "bf_metrics.h"

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static bf_series_t *s_polls, *s_streams, *s_queue_full, *s_session_limited;
static bf_metric_t *s_requests, *s_logins;

static const char *const s_routes[] = { "index", "static",  "login",    "logout", "me",
                                        "query", "command", "overview", "events", "other" };
static const char *const s_classes[] = { "2xx", "3xx", "4xx", "5xx" };
static bf_series_t *s_request_series[sizeof s_routes / sizeof s_routes[0]][4];
static const char *const s_outcomes[] = { "ok", "wrong", "limited", "bad_request" };
static bf_series_t *s_login_series[4];

static void
s_init (void)
{
    bf_metrics_init ();
    s_polls = bf_metric_series (bf_metrics_counter (
        "billflow_console_polls_total",
        "Rounds of the overview poller (one a second for every browser together).", NULL));
    s_streams = bf_metric_series (
        bf_metrics_gauge ("billflow_console_streams", "Open /api/events streams.", NULL));
    s_queue_full = bf_metric_series (bf_metrics_counter (
        "billflow_console_queue_full_total",
        "Requests answered 503 because the console's worker queue was full.", NULL));
    s_session_limited = bf_metric_series (
        bf_metrics_counter ("billflow_console_session_limited_total",
                            "Query and command requests answered 429 because their session was over"
                            " console.session_rate.",
                            NULL));
    s_requests
        = bf_metrics_counter ("billflow_console_requests_total",
                              "Requests answered by route and status class.", "route,status");
    for (size_t r = 0; r < sizeof s_routes / sizeof s_routes[0]; r++)
        for (size_t c = 0; c < 4; c++)
            s_request_series[r][c] = bf_metric_series (s_requests, s_routes[r], s_classes[c]);
    s_logins
        = bf_metrics_counter ("billflow_console_logins_total", "Logins by outcome.", "outcome");
    for (size_t o = 0; o < 4; o++)
        s_login_series[o] = bf_metric_series (s_logins, s_outcomes[o]);
}

void
bf_console_metrics_init (void)
{
    pthread_once (&s_once, s_init);
}

void
bf_console_metrics_poll (void)
{
    bf_console_metrics_init ();
    bf_counter_inc (s_polls);
}

void
bf_console_metrics_streams (int delta)
{
    bf_console_metrics_init ();
    bf_gauge_add (s_streams, delta);
}

void
bf_console_metrics_request (const char *route, unsigned int status)
{
    bf_console_metrics_init ();
    size_t r = sizeof s_routes / sizeof s_routes[0] - 1;
    for (size_t i = 0; i < r; i++)
        if (route && !strcmp (route, s_routes[i]))
            r = i;
    size_t c = status >= 500 ? 3 : status >= 400 ? 2 : status >= 300 ? 1 : 0;
    bf_counter_inc (s_request_series[r][c]);
}

void
bf_console_metrics_login (const char *outcome)
{
    bf_console_metrics_init ();
    for (size_t o = 0; o < 4; o++)
        if (outcome && !strcmp (outcome, s_outcomes[o]))
            bf_counter_inc (s_login_series[o]);
}

void
bf_console_metrics_queue_full (void)
{
    bf_console_metrics_init ();
    bf_counter_inc (s_queue_full);
}

void
bf_console_metrics_session_limited (void)
{
    bf_console_metrics_init ();
    bf_counter_inc (s_session_limited);
}
